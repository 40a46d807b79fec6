/*
 * cad_secret: the only place a plaintext key, token, password or data key may live.
 *
 * The type is opaque, so it cannot be handed to printf by accident; the only text form is a mask
 * ("pk_…c3d4"). Its bytes sit in their own pages, locked in RAM where the OS allows (mlock) and
 * excluded from core dumps (MADV_DONTDUMP), and are wiped with OPENSSL_cleanse when freed.
 * Every secret is NUL-terminated so that text secrets can be handed to APIs that need a C string
 * (secret_cstr), which is the one deliberate way out.
 */
#ifndef CADENCE_COMMON_SECRET_H
#define CADENCE_COMMON_SECRET_H

#include <stdbool.h>
#include <stddef.h>

typedef struct cad_secret cad_secret;

/* Largest secret accepted anywhere (pasted keys, tokens, passwords). */
#define SECRET_MAX 4096

/* A zero-filled secret of `len` bytes. Caller owns it; free with secret_free(). */
int secret_new(cad_secret **out, size_t len);

/* A copy of `len` bytes at `data`. The caller still wipes its own copy. */
int secret_from(cad_secret **out, const void *data, size_t len);

/* Reads all of `fd` (at most `max` bytes) straight into a secret; one trailing newline (LF or CRLF)
 * is dropped. Fails with CAD_EINVAL when the input is longer than `max`. */
int secret_read_fd(cad_secret **out, int fd, size_t max);

const unsigned char *secret_data(const cad_secret *s);
unsigned char *secret_data_mut(cad_secret *s);
size_t secret_len(const cad_secret *s);

/* The secret as a NUL-terminated string, for APIs that need one (curl headers, libargon2). */
const char *secret_cstr(const cad_secret *s);

/* Writes "pk_…" + the last 4 characters (or "…" + last 4 for other secrets, "(empty)" for an empty
 * one) into buf. Never more than the last 4 characters of the secret. */
void secret_mask(const cad_secret *s, char *buf, size_t bufsize);

/* The last `n` (<= 4) characters, for display beside a key's fingerprint. */
void secret_last4(const cad_secret *s, char buf[5]);

/* Constant-time comparison. */
bool secret_equal(const cad_secret *a, const cad_secret *b);

/* Wipes, unlocks and frees. NULL is fine. */
void secret_free(cad_secret *s);

/* Process-wide hardening for a program that holds secrets: no core files, not ptrace-able by
 * other users' processes. Call once at start-up. */
void secret_harden_process(void);

#endif
