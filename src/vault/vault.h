/*
 * The vault: per-tenant data keys and sealed credentials.
 *
 * Each tenant has a 256-bit data key (DEK) from the CSPRNG, stored only wrapped by the KMS
 * (table tenant_keys). Credentials are sealed with AES-256-GCM under the tenant's DEK, a fresh
 * 96-bit nonce per seal, and associated data "cadence/v1|<tenant>|<kind>|<version>", so a
 * ciphertext moved to another tenant, kind or version fails to open. Sealed text is
 * base64(nonce | ciphertext | tag). Plaintext only ever exists in a cad_secret.
 *
 * Ownership: every cad_secret and char* returned through an out-parameter belongs to the caller
 * (secret_free / free).
 */
#ifndef CADENCE_VAULT_VAULT_H
#define CADENCE_VAULT_VAULT_H

#include <stdint.h>

#include "common/secret.h"
#include "store/store.h"
#include "vault/kms.h"

typedef struct vault vault;

/* Opens the vault over `st` with the KMS provider named by $CADENCE_KMS (default "local") whose
 * state lives under data_dir. With `create`, a missing master key is created (first run) and the
 * kms_state row recorded; once the store has a kms_state row, a missing master key is an error
 * (CAD_ENOTFOUND) even with `create`, since a fresh key could not unwrap the existing data keys.
 * Refuses to open (CAD_EPERM) when a master key file or its directory is accessible by group or
 * others, and (CAD_ESTATE) when the store's keys belong to another provider. */
int vault_open(vault **out, store *st, const char *data_dir, int create);
void vault_close(vault *v);
kms *vault_kms(vault *v);

/* Creates and wraps the tenant's DEK if it has none. Idempotent. */
int vault_tenant_init(vault *v, const char *tenant_id);

/* Seals `plain` for (tenant, kind, version); *out_sealed is malloc'd text. */
int vault_seal(vault *v, const char *tenant_id, const char *kind, int version,
               const cad_secret *plain, char **out_sealed);
/* Opens what vault_seal produced; CAD_ECRYPTO when it was tampered with or belongs elsewhere. */
int vault_unseal(vault *v, const char *tenant_id, const char *kind, int version, const char *sealed,
                 cad_secret **out_plain);

/* A keyed fingerprint of `plain` for showing to people: 16 hex characters of
 * HMAC-SHA256(tenant DEK-derived fingerprint key, plain). Not reversible without the DEK. */
int vault_fingerprint(vault *v, const char *tenant_id, const cad_secret *plain, char out[17]);

struct vault_rotation {
    int from_version; /* the KEK version being retired (lowest still in use) */
    int to_version;   /* the new current version */
    int rewrapped;    /* DEKs re-wrapped by this run */
    int resumed;      /* 1 when this run finished a rotation that an earlier run began */
};

/* `cadence kms rotate`: adds a KEK version, re-wraps every DEK under it (each in its own
 * transaction; credentials are untouched), then retires the old versions. An interrupted run
 * leaves old versions able to unwrap; running again finishes the same rotation. */
int vault_rotate(vault *v, struct vault_rotation *report);

#endif
