/*
 * AES-256-GCM as the vault uses it, shared by the vault (credentials under a tenant's DEK) and the
 * local KMS provider (DEKs under a master key). Internal to src/vault.
 *
 * Sealed form: base64(nonce[12] | ciphertext | tag[16]), a fresh random nonce per seal. The
 * associated data is a caller-built string that binds the ciphertext to where it belongs.
 */
#ifndef CADENCE_VAULT_AEAD_H
#define CADENCE_VAULT_AEAD_H

#include <stddef.h>

#include "common/secret.h"

#define VAULT_AEAD_KEY_LEN   32
#define VAULT_AEAD_NONCE_LEN 12
#define VAULT_AEAD_TAG_LEN   16

/* Seals n bytes at `plain` under the 32-byte `key`; *out is malloc'd base64 text. */
int vault_aead_seal(const cad_secret *key, const char *aad, const unsigned char *plain, size_t n,
                    char **out);

/* Opens `sealed`; CAD_ECRYPTO (with a generic message for the caller to refine) when the text is
 * malformed, was altered, or was sealed under another key or associated data. */
int vault_aead_open(const cad_secret *key, const char *aad, const char *sealed, cad_secret **out);

#endif
