/*
 * The vault; see vault.h. Design choices:
 *
 * - A DEK is unwrapped for each operation and wiped right after; nothing is cached, so a data key
 *   lives in memory only for the length of one seal, unseal or fingerprint.
 * - kms_state in the store is the authority on which KEK version new wraps use and whether a
 *   rotation is in progress. A DEK is created, and a rotation starts, inside one write
 *   transaction that reads that state, so a DEK can never be wrapped under a version that a
 *   concurrent rotation is about to retire.
 * - Rotation is resumable: its start is recorded (current_version = new, rotating_from = old)
 *   before any DEK is re-wrapped, each DEK is re-wrapped in its own transaction, and old KEK
 *   versions are destroyed only after no DEK uses them. A run that died after the KMS added a
 *   version but before the store recorded it is recognised (the KMS is ahead of the store) and
 *   that version is adopted rather than adding another.
 * - Tenant ids and kinds may not contain '|', which keeps the associated data unambiguous.
 */
#include "vault/vault.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "vault/aead.h"

#define DEK_LEN VAULT_AEAD_KEY_LEN

struct vault {
    store *st;
    kms *k;
};

struct kms_state {
    bool found;
    char provider[64];
    int current;
    int rotating_from; /* 0 when no rotation is in progress */
};

static int state_row(void *ctx, const store_row *row)
{
    struct kms_state *s = ctx;
    s->found = true;
    snprintf(s->provider, sizeof s->provider, "%s", store_row_text(row, 0));
    s->current = (int)store_row_int(row, 1);
    s->rotating_from = store_row_is_null(row, 2) ? 0 : (int)store_row_int(row, 2);
    return 0;
}

static int read_state(store *st, struct kms_state *s)
{
    memset(s, 0, sizeof *s);
    return store_query(st,
                       "SELECT provider, current_version, rotating_from FROM kms_state "
                       "WHERE id = 1",
                       SV_NONE, state_row, s);
}

static int check_name(const char *what, const char *value)
{
    if (!value || !*value)
        return cad_fail(CAD_EINVAL, "no %s given", what);
    if (strchr(value, '|') || strlen(value) > 200)
        return cad_fail(CAD_EINVAL,
                        "the %s \"%.200s\" is not valid: at most 200 characters, no '|'", what,
                        value);
    return CAD_OK;
}

int vault_open(vault **out, store *st, const char *data_dir, int create)
{
    *out = NULL;
    struct kms_state s;
    int rc = read_state(st, &s);
    if (rc)
        return rc;
    /* Once the store records a KMS state, a missing master key is a loss to report, not a first
     * run: creating a fresh one would hide it. */
    kms *k;
    if ((rc = kms_open(&k, NULL, data_dir, create && !s.found)))
        return rc;
    int kms_current;
    if ((rc = kms_current_version(k, &kms_current)))
        goto fail;
    if (!s.found) {
        rc = store_exec(st,
                        "INSERT INTO kms_state (id, provider, current_version, rotating_from) "
                        "VALUES (1, $1, $2, NULL) ON CONFLICT (id) DO NOTHING",
                        SV_ARGS(SV_TEXT(kms_name(k)), SV_INT(kms_current)));
        if (rc == CAD_OK)
            rc = read_state(st, &s);
        if (rc == CAD_OK && !s.found)
            rc = cad_fail(CAD_EIO, "the KMS state could not be recorded in the store");
        if (rc)
            goto fail;
    }
    if (strcmp(s.provider, kms_name(k)) != 0) {
        rc = cad_fail(CAD_ESTATE,
                      "the data keys in this store are wrapped by the \"%s\" key-management "
                      "provider, but \"%s\" was selected; set CADENCE_KMS=%s",
                      s.provider, kms_name(k), s.provider);
        goto fail;
    }
    if (kms_current < s.current) {
        rc = cad_fail(CAD_ECORRUPT,
                      "the store expects master key version %d, but the \"%s\" provider's newest "
                      "is %d; restore the missing master key from a backup",
                      s.current, kms_name(k), kms_current);
        goto fail;
    }
    vault *v = calloc(1, sizeof *v);
    if (!v) {
        rc = cad_fail(CAD_ENOMEM, "out of memory");
        goto fail;
    }
    v->st = st;
    v->k = k;
    *out = v;
    return CAD_OK;
fail:
    kms_close(k);
    return rc;
}

void vault_close(vault *v)
{
    if (!v)
        return;
    kms_close(v->k);
    free(v);
}

kms *vault_kms(vault *v)
{
    return v->k;
}

struct dek_row {
    bool found;
    char provider[64];
    int version;
    char *wrapped;
};

static int dek_row_fn(void *ctx, const store_row *row)
{
    struct dek_row *r = ctx;
    snprintf(r->provider, sizeof r->provider, "%s", store_row_text(row, 0));
    r->version = (int)store_row_int(row, 1);
    r->wrapped = strdup(store_row_text(row, 2));
    if (!r->wrapped)
        return cad_fail(CAD_ENOMEM, "out of memory");
    r->found = true;
    return 0;
}

static int read_dek_row(vault *v, const char *tenant_id, struct dek_row *r)
{
    memset(r, 0, sizeof *r);
    return store_query(v->st,
                       "SELECT kms_provider, kek_version, wrapped FROM tenant_keys "
                       "WHERE tenant_id = $1",
                       SV_ARGS(SV_TEXT(tenant_id)), dek_row_fn, r);
}

static int unwrap_row(vault *v, const char *tenant_id, const struct dek_row *r, cad_secret **dek)
{
    if (strcmp(r->provider, kms_name(v->k)) != 0)
        return cad_fail(CAD_ESTATE,
                        "the data key of tenant %s is wrapped by the \"%s\" key-management "
                        "provider, but \"%s\" is in use",
                        tenant_id, r->provider, kms_name(v->k));
    int rc = kms_unwrap(v->k, r->version, tenant_id, r->wrapped, dek);
    if (rc == CAD_OK && secret_len(*dek) != DEK_LEN) {
        size_t len = secret_len(*dek);
        secret_free(*dek);
        *dek = NULL;
        return cad_fail(CAD_ECORRUPT, "the data key of tenant %s is %zu bytes instead of %d",
                        tenant_id, len, DEK_LEN);
    }
    return rc;
}

static int load_dek(vault *v, const char *tenant_id, cad_secret **dek)
{
    *dek = NULL;
    struct dek_row r;
    int rc = read_dek_row(v, tenant_id, &r);
    if (rc == CAD_OK && !r.found)
        rc = cad_fail(CAD_ENOTFOUND,
                      "tenant %s has no data key yet; it is created when the tenant is added",
                      tenant_id);
    if (rc == CAD_OK)
        rc = unwrap_row(v, tenant_id, &r, dek);
    free(r.wrapped);
    return rc;
}

static int count_row(void *ctx, const store_row *row)
{
    *(int64_t *)ctx = store_row_is_null(row, 0) ? 0 : store_row_int(row, 0);
    return 0;
}

static int create_dek(vault *v, const char *tenant_id)
{
    int64_t n = 0;
    int rc = store_query(v->st, "SELECT COUNT(*) FROM tenant_keys WHERE tenant_id = $1",
                         SV_ARGS(SV_TEXT(tenant_id)), count_row, &n);
    if (rc || n > 0)
        return rc;
    if ((rc = store_query(v->st, "SELECT COUNT(*) FROM tenants WHERE id = $1",
                          SV_ARGS(SV_TEXT(tenant_id)), count_row, &n)))
        return rc;
    if (n == 0)
        return cad_fail(CAD_ENOTFOUND, "no tenant %s", tenant_id);
    struct kms_state s;
    if ((rc = read_state(v->st, &s)))
        return rc;
    if (!s.found)
        return cad_fail(CAD_ESTATE, "the KMS state is missing from the store");
    cad_secret *dek;
    if ((rc = secret_new(&dek, DEK_LEN)))
        return rc;
    char *wrapped = NULL;
    rc = random_bytes(secret_data_mut(dek), DEK_LEN);
    if (rc == CAD_OK)
        rc = kms_wrap(v->k, s.current, tenant_id, dek, &wrapped);
    secret_free(dek);
    if (rc == CAD_OK)
        rc = store_exec(v->st,
                        "INSERT INTO tenant_keys (tenant_id, kms_provider, kek_version, wrapped, "
                        "created_ms) VALUES ($1, $2, $3, $4, $5)",
                        SV_ARGS(SV_TEXT(tenant_id), SV_TEXT(kms_name(v->k)), SV_INT(s.current),
                                SV_TEXT(wrapped), SV_INT(time_now_ms())));
    free(wrapped);
    return rc;
}

int vault_tenant_init(vault *v, const char *tenant_id)
{
    int rc = check_name("tenant id", tenant_id);
    if (rc)
        return rc;
    if ((rc = store_begin(v->st)))
        return rc;
    rc = create_dek(v, tenant_id);
    if (rc) {
        store_rollback(v->st);
        return rc;
    }
    return store_commit(v->st);
}

static int build_aad(char *buf, size_t size, const char *tenant_id, const char *kind, int version)
{
    int rc = check_name("tenant id", tenant_id);
    if (rc == CAD_OK)
        rc = check_name("credential kind", kind);
    if (rc == CAD_OK && version < 0)
        rc = cad_fail(CAD_EINVAL, "credential version %d is negative", version);
    if (rc == CAD_OK)
        snprintf(buf, size, "cadence/v1|%s|%s|%d", tenant_id, kind, version);
    return rc;
}

int vault_seal(vault *v, const char *tenant_id, const char *kind, int version,
               const cad_secret *plain, char **out_sealed)
{
    *out_sealed = NULL;
    char aad[512];
    int rc = build_aad(aad, sizeof aad, tenant_id, kind, version);
    if (rc)
        return rc;
    cad_secret *dek;
    if ((rc = load_dek(v, tenant_id, &dek)))
        return rc;
    rc = vault_aead_seal(dek, aad, secret_data(plain), secret_len(plain), out_sealed);
    secret_free(dek);
    return rc;
}

int vault_unseal(vault *v, const char *tenant_id, const char *kind, int version, const char *sealed,
                 cad_secret **out_plain)
{
    *out_plain = NULL;
    char aad[512];
    int rc = build_aad(aad, sizeof aad, tenant_id, kind, version);
    if (rc)
        return rc;
    cad_secret *dek;
    if ((rc = load_dek(v, tenant_id, &dek)))
        return rc;
    rc = vault_aead_open(dek, aad, sealed, out_plain);
    secret_free(dek);
    if (rc == CAD_ECRYPTO)
        return cad_fail(CAD_ECRYPTO,
                        "the sealed %s credential (version %d) of tenant %s does not open: it was "
                        "altered, or it belongs to another tenant, kind or version",
                        kind, version, tenant_id);
    return rc;
}

int vault_fingerprint(vault *v, const char *tenant_id, const cad_secret *plain, char out[17])
{
    static const char label[] = "cadence fingerprint v1";
    out[0] = '\0';
    int rc = check_name("tenant id", tenant_id);
    if (rc)
        return rc;
    cad_secret *dek, *fkey;
    if ((rc = load_dek(v, tenant_id, &dek)))
        return rc;
    if ((rc = secret_new(&fkey, SHA256_LEN))) {
        secret_free(dek);
        return rc;
    }
    hmac_sha256(secret_data(dek), secret_len(dek), label, sizeof label - 1, secret_data_mut(fkey));
    secret_free(dek);
    unsigned char mac[SHA256_LEN];
    hmac_sha256(secret_data(fkey), secret_len(fkey), secret_data(plain), secret_len(plain), mac);
    secret_free(fkey);
    hex_encode(mac, 8, out);
    OPENSSL_cleanse(mac, sizeof mac);
    return CAD_OK;
}

/* Records the start of a rotation, or finds the one in progress. Runs in one transaction. */
static int rotation_begin(vault *v, struct vault_rotation *report)
{
    struct kms_state s;
    int rc = read_state(v->st, &s);
    if (rc)
        return rc;
    if (!s.found)
        return cad_fail(CAD_ESTATE, "the KMS state is missing from the store");
    int kms_current;
    if ((rc = kms_current_version(v->k, &kms_current)))
        return rc;
    if (s.rotating_from) {
        if (kms_current < s.current)
            return cad_fail(CAD_ECORRUPT,
                            "a rotation to master key version %d is in progress, but the "
                            "provider's newest version is %d; restore the missing key",
                            s.current, kms_current);
        report->from_version = s.rotating_from;
        report->to_version = s.current;
        report->resumed = 1;
        return CAD_OK;
    }
    int64_t lowest = 0;
    if ((rc = store_query(v->st, "SELECT MIN(kek_version) FROM tenant_keys", SV_NONE, count_row,
                          &lowest)))
        return rc;
    int from = lowest > 0 && lowest < s.current ? (int)lowest : s.current;
    int to;
    if (kms_current > s.current) {
        /* An earlier run added this version and died before recording it. */
        to = kms_current;
        report->resumed = 1;
    } else if ((rc = kms_add_version(v->k, &to))) {
        return rc;
    }
    if ((rc = store_exec(v->st,
                         "UPDATE kms_state SET current_version = $1, rotating_from = $2 "
                         "WHERE id = 1",
                         SV_ARGS(SV_INT(to), SV_INT(from)))))
        return rc;
    report->from_version = from;
    report->to_version = to;
    return CAD_OK;
}

static int rewrap_one(vault *v, const char *tenant_id, int to, int *done)
{
    *done = 0;
    struct dek_row r;
    int rc = read_dek_row(v, tenant_id, &r);
    if (rc || !r.found || r.version >= to) {
        free(r.wrapped);
        return rc;
    }
    cad_secret *dek = NULL;
    char *wrapped = NULL;
    rc = unwrap_row(v, tenant_id, &r, &dek);
    if (rc == CAD_OK) {
        rc = kms_wrap(v->k, to, tenant_id, dek, &wrapped);
        secret_free(dek);
    }
    if (rc == CAD_OK)
        rc = store_exec(v->st,
                        "UPDATE tenant_keys SET kek_version = $1, wrapped = $2, rewrapped_ms = $3 "
                        "WHERE tenant_id = $4 AND kek_version = $5",
                        SV_ARGS(SV_INT(to), SV_TEXT(wrapped), SV_INT(time_now_ms()),
                                SV_TEXT(tenant_id), SV_INT(r.version)));
    if (rc == CAD_OK)
        *done = store_changes(v->st) == 1;
    free(wrapped);
    free(r.wrapped);
    return rc;
}

struct id_list {
    char **ids;
    size_t n, cap;
};

static int id_row(void *ctx, const store_row *row)
{
    struct id_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **grown = realloc(l->ids, cap * sizeof *grown);
        if (!grown)
            return cad_fail(CAD_ENOMEM, "out of memory");
        l->ids = grown;
        l->cap = cap;
    }
    l->ids[l->n] = strdup(store_row_text(row, 0));
    if (!l->ids[l->n])
        return cad_fail(CAD_ENOMEM, "out of memory");
    l->n++;
    return 0;
}

static void id_list_free(struct id_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->ids[i]);
    free(l->ids);
}

/* Re-wraps every DEK still under an older version, each in its own transaction. */
static int rewrap_all(vault *v, int to, int *rewrapped)
{
    struct id_list l = {0};
    int rc = store_query(v->st,
                         "SELECT tenant_id FROM tenant_keys WHERE kek_version < $1 "
                         "ORDER BY tenant_id",
                         SV_ARGS(SV_INT(to)), id_row, &l);
    for (size_t i = 0; rc == CAD_OK && i < l.n; i++) {
        int done;
        if ((rc = store_begin(v->st)))
            break;
        rc = rewrap_one(v, l.ids[i], to, &done);
        if (rc) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", cad_errmsg());
            store_rollback(v->st);
            rc = cad_fail(rc,
                          "re-wrapping the data key of tenant %s failed: %s; the rotation is "
                          "still in progress and running it again continues it",
                          l.ids[i], msg);
            break;
        }
        if ((rc = store_commit(v->st)))
            break;
        *rewrapped += done;
    }
    id_list_free(&l);
    return rc;
}

/* Retires the old versions once no DEK uses them and marks the rotation finished. */
static int rotation_finish(vault *v, int to)
{
    int64_t left = 0;
    int rc = store_query(v->st, "SELECT COUNT(*) FROM tenant_keys WHERE kek_version < $1",
                         SV_ARGS(SV_INT(to)), count_row, &left);
    if (rc)
        return rc;
    if (left > 0)
        return cad_fail(CAD_ESTATE,
                        "%lld data keys still use an older master key; run the rotation again",
                        (long long)left);
    if ((rc = kms_retire_below(v->k, to)))
        return rc;
    return store_exec(v->st, "UPDATE kms_state SET rotating_from = NULL WHERE id = 1", SV_NONE);
}

int vault_rotate(vault *v, struct vault_rotation *report)
{
    memset(report, 0, sizeof *report);
    int rc = store_begin(v->st);
    if (rc)
        return rc;
    if ((rc = rotation_begin(v, report))) {
        store_rollback(v->st);
        return rc;
    }
    if ((rc = store_commit(v->st)))
        return rc;
    cad_log(LOG_INFO, "kms.rotate.begin", "from=%d to=%d resumed=%d", report->from_version,
            report->to_version, report->resumed);
    if ((rc = rewrap_all(v, report->to_version, &report->rewrapped)))
        return rc;
    if ((rc = store_begin(v->st)))
        return rc;
    if ((rc = rotation_finish(v, report->to_version))) {
        store_rollback(v->st);
        return rc;
    }
    if ((rc = store_commit(v->st)))
        return rc;
    cad_log(LOG_INFO, "kms.rotate.done", "from=%d to=%d rewrapped=%d", report->from_version,
            report->to_version, report->rewrapped);
    return CAD_OK;
}
