/*
 * Key-management providers: whatever holds the key-encryption key (KEK) that wraps each tenant's
 * data key. Providers fill one table of operations (after curl's TLS backends); the vault never
 * asks which provider it has. This build ships `local`: versioned 256-bit master keys in files
 * under $CADENCE_DATA/kms, mode 0600, in a directory of mode 0700.
 *
 * A wrapped key is text (base64), bound to a context string (the tenant id) so a wrapped DEK
 * copied to another tenant does not unwrap.
 */
#ifndef CADENCE_VAULT_KMS_H
#define CADENCE_VAULT_KMS_H

#include "common/secret.h"

typedef struct kms kms;

struct kms_ops {
    const char *name;
    /* Opens (creating on first use, when `create` is set) the provider's state under data_dir. */
    int (*open)(void **self, const char *data_dir, int create);
    void (*close)(void *self);
    /* The newest KEK version; new wraps use it. */
    int (*current_version)(void *self, int *out);
    /* Wraps `dek` under KEK `version`; *out is malloc'd base64 text. */
    int (*wrap)(void *self, int version, const char *context, const cad_secret *dek, char **out);
    int (*unwrap)(void *self, int version, const char *context, const char *wrapped,
                  cad_secret **out);
    /* Creates KEK version current+1 and makes it current; older versions still unwrap. */
    int (*add_version)(void *self, int *out_version);
    /* Destroys every version older than `version` (a rotation has completed). Refuses a
     * `version` newer than the newest, which would leave no key at all. */
    int (*retire_below)(void *self, int version);
};

/* Opens the provider `name` ("local"; NULL means $CADENCE_KMS or "local"). An unknown name is
 * CAD_EINVAL with a message listing the providers this build knows. Free with kms_close(). */
int kms_open(kms **out, const char *name, const char *data_dir, int create);
void kms_close(kms *k);
const char *kms_name(const kms *k);
int kms_current_version(kms *k, int *out);
int kms_wrap(kms *k, int version, const char *context, const cad_secret *dek, char **out);
int kms_unwrap(kms *k, int version, const char *context, const char *wrapped, cad_secret **out);
int kms_add_version(kms *k, int *out_version);
int kms_retire_below(kms *k, int version);

extern const struct kms_ops kms_local_ops;

#endif
