/* Small shared helpers: time, hex and base64, SHA-256 and HMAC, randomness, files. */
#ifndef CADENCE_COMMON_UTIL_H
#define CADENCE_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAD_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Milliseconds since the Unix epoch (wall clock) and a monotonic clock in ms. */
int64_t time_now_ms(void);
int64_t time_mono_ms(void);
/* "2026-11-26T19:22:55.123Z" into buf (at least 25 bytes). */
void time_format_ms(int64_t ms, char *buf, size_t bufsize);
/* Parses an ISO-8601 UTC time ("2026-11-26", "2026-11-26T19:22", "...:55Z", "...55.123Z") or a
 * number of ms since the epoch. */
int time_parse(const char *s, int64_t *out_ms);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void hex_encode(const unsigned char *in, size_t n, char *out);
/* Decodes exactly `n` bytes of hex; CAD_EINVAL on a bad digit or length. */
int hex_decode(const char *in, unsigned char *out, size_t n);

/* Standard base64 with padding. *out is malloc'd and NUL-terminated; caller frees. */
int base64_encode(const unsigned char *in, size_t n, char **out);
/* *out is malloc'd; caller frees (and wipes, if it held a secret). */
int base64_decode(const char *in, unsigned char **out, size_t *out_len);

#define SHA256_LEN 32
void sha256(const void *data, size_t n, unsigned char out[SHA256_LEN]);
/* Hex SHA-256 (65 bytes with NUL). */
void sha256_hex(const void *data, size_t n, char out[2 * SHA256_LEN + 1]);
void hmac_sha256(const void *key, size_t key_len, const void *data, size_t n,
                 unsigned char out[SHA256_LEN]);

/* Cryptographically secure random bytes (OpenSSL's CSPRNG). */
int random_bytes(void *buf, size_t n);

/* Creates a directory and its parents with `mode` (existing ones are left as they are). */
int fs_mkdir_p(const char *path, unsigned mode);
/* Writes a file atomically (temp file, fsync, rename, fsync dir) with `mode`. */
int fs_write_atomic(const char *path, const void *data, size_t n, unsigned mode);
/* Reads a whole file (at most `max` bytes) into a malloc'd, NUL-terminated buffer. */
int fs_read_all(const char *path, size_t max, char **out, size_t *out_len);
bool fs_exists(const char *path);

/* Lower-case ASCII slug of `name` ("Acme Outdoors!" -> "acme-outdoors"), at most `max` bytes. */
void slugify(const char *name, char *out, size_t max);

/* strdup that reports failure through cad_fail. */
char *cad_strdup(const char *s);

#endif
