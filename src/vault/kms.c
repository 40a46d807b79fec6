/*
 * KMS dispatch: picks a provider by name and forwards every call through its struct kms_ops, so
 * the vault never knows which provider holds its key-encryption keys. Adding a provider means
 * one kms_<name>.c file and one line in `providers` below.
 */
#include "vault/kms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

struct kms {
    const struct kms_ops *ops;
    void *self;
};

static const struct kms_ops *const providers[] = {
    &kms_local_ops,
};

static void known_names(char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof providers / sizeof providers[0]; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", providers[i]->name);
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
}

int kms_open(kms **out, const char *name, const char *data_dir, int create)
{
    *out = NULL;
    if (!name) {
        name = getenv("CADENCE_KMS");
        if (!name || !*name)
            name = "local";
    }
    const struct kms_ops *ops = NULL;
    for (size_t i = 0; i < sizeof providers / sizeof providers[0]; i++)
        if (strcmp(providers[i]->name, name) == 0)
            ops = providers[i];
    if (!ops) {
        char names[256];
        known_names(names, sizeof names);
        return cad_fail(CAD_EINVAL,
                        "unknown key-management provider \"%s\" (from CADENCE_KMS or the "
                        "command line); this build knows: %s",
                        name, names);
    }
    kms *k = calloc(1, sizeof *k);
    if (!k)
        return cad_fail(CAD_ENOMEM, "out of memory");
    k->ops = ops;
    int rc = ops->open(&k->self, data_dir, create);
    if (rc) {
        free(k);
        return rc;
    }
    *out = k;
    return CAD_OK;
}

void kms_close(kms *k)
{
    if (!k)
        return;
    k->ops->close(k->self);
    free(k);
}

const char *kms_name(const kms *k)
{
    return k->ops->name;
}

int kms_current_version(kms *k, int *out)
{
    return k->ops->current_version(k->self, out);
}

int kms_wrap(kms *k, int version, const char *context, const cad_secret *dek, char **out)
{
    return k->ops->wrap(k->self, version, context, dek, out);
}

int kms_unwrap(kms *k, int version, const char *context, const char *wrapped, cad_secret **out)
{
    return k->ops->unwrap(k->self, version, context, wrapped, out);
}

int kms_add_version(kms *k, int *out_version)
{
    return k->ops->add_version(k->self, out_version);
}

int kms_retire_below(kms *k, int version)
{
    return k->ops->retire_below(k->self, version);
}
