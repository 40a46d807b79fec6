/*
 * Credentials: the lifecycle of each tenant's keys and their sealed storage. The transition
 * table below is the only place that decides which state changes exist.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/util.h"
#include "tenant/tenant.h"

static const char *const kind_names[CRED_KIND_COUNT] = {"klaviyo", "shopify", "postscript",
                                                        "attentive"};
static const char *const state_names[KEY_STATE_COUNT] = {"none",     "deferred", "unverified",
                                                         "verified", "invalid",  "revoked"};

const char *cred_kind_name(enum cred_kind k)
{
    return (unsigned)k < CRED_KIND_COUNT ? kind_names[k] : "?";
}

int cred_kind_parse(const char *s, enum cred_kind *out)
{
    for (int i = 0; i < CRED_KIND_COUNT; i++)
        if (s && strcmp(s, kind_names[i]) == 0) {
            *out = (enum cred_kind)i;
            return CAD_OK;
        }
    return cad_fail(CAD_EINVAL,
                    "unknown credential kind \"%s\"; use klaviyo, shopify, postscript or attentive",
                    s ? s : "");
}

const char *key_state_name(enum key_state s)
{
    return (unsigned)s < KEY_STATE_COUNT ? state_names[s] : "?";
}

int key_state_parse(const char *s, enum key_state *out)
{
    for (int i = 0; i < KEY_STATE_COUNT; i++)
        if (s && strcmp(s, state_names[i]) == 0) {
            *out = (enum key_state)i;
            return CAD_OK;
        }
    return cad_fail(CAD_ECORRUPT, "unknown key state \"%s\"", s ? s : "");
}

/* allowed[from] is a bit set of the states `from` may move to. A key that was verified can only
 * be replaced by another key (unverified/verified) or be revoked; a failed attempt at a new key
 * leaves a verified key as it is, so verified -> invalid does not exist. */
#define B(s) (1u << (s))
static const unsigned allowed[KEY_STATE_COUNT] = {
    [KEY_NONE] = B(KEY_DEFERRED) | B(KEY_UNVERIFIED) | B(KEY_VERIFIED) | B(KEY_INVALID),
    [KEY_DEFERRED] = B(KEY_DEFERRED) | B(KEY_UNVERIFIED) | B(KEY_VERIFIED) | B(KEY_INVALID),
    [KEY_UNVERIFIED] = B(KEY_UNVERIFIED) | B(KEY_VERIFIED) | B(KEY_INVALID) | B(KEY_REVOKED),
    [KEY_VERIFIED] = B(KEY_UNVERIFIED) | B(KEY_VERIFIED) | B(KEY_REVOKED),
    [KEY_INVALID] = B(KEY_DEFERRED) | B(KEY_UNVERIFIED) | B(KEY_VERIFIED) | B(KEY_INVALID),
    [KEY_REVOKED] = B(KEY_REVOKED) | B(KEY_UNVERIFIED) | B(KEY_VERIFIED) | B(KEY_INVALID),
};
#undef B

int key_state_check(enum cred_kind kind, enum key_state from, enum key_state to)
{
    if ((unsigned)from >= KEY_STATE_COUNT || (unsigned)to >= KEY_STATE_COUNT)
        return cad_fail(CAD_EINVAL, "unknown key state");
    if (allowed[from] & (1u << to))
        return CAD_OK;
    if (from == KEY_VERIFIED && to == KEY_INVALID)
        return cad_fail(CAD_ESTATE,
                        "the %s key is verified; a failed attempt does not replace it (enter a "
                        "new key, or wait for revocation to be detected)",
                        cred_kind_name(kind));
    if (to == KEY_DEFERRED)
        return cad_fail(CAD_ESTATE,
                        "the %s key is %s; only a tenant without a working key can defer it",
                        cred_kind_name(kind), key_state_name(from));
    return cad_fail(CAD_ESTATE, "the %s key cannot go from %s to %s", cred_kind_name(kind),
                    key_state_name(from), key_state_name(to));
}

#define INFO_COLUMNS                                                                               \
    "state, version, sealed IS NOT NULL, last4, fingerprint, set_ms, verified_ms, updated_ms, "    \
    "account_id, account_name, scopes, detail, extra"

static int info_row(void *ctx, const store_row *row)
{
    struct credential_info *c = ctx;
    int rc = key_state_parse(store_row_text(row, 0), &c->state);
    c->version = (int)store_row_int(row, 1);
    c->has_secret = store_row_int(row, 2) != 0;
    snprintf(c->last4, sizeof c->last4, "%s", store_row_text(row, 3));
    snprintf(c->fingerprint, sizeof c->fingerprint, "%s", store_row_text(row, 4));
    c->set_ms = store_row_int(row, 5);
    c->verified_ms = store_row_int(row, 6);
    c->updated_ms = store_row_int(row, 7);
    snprintf(c->account_id, sizeof c->account_id, "%s", store_row_text(row, 8));
    snprintf(c->account_name, sizeof c->account_name, "%s", store_row_text(row, 9));
    snprintf(c->scopes, sizeof c->scopes, "%s", store_row_text(row, 10));
    snprintf(c->detail, sizeof c->detail, "%s", store_row_text(row, 11));
    snprintf(c->extra, sizeof c->extra, "%s", store_row_text(row, 12));
    return rc;
}

int credential_info(store *st, const char *tenant_id, enum cred_kind kind,
                    struct credential_info *out)
{
    struct tenant t;
    int rc = tenant_get(st, tenant_id, &t);
    if (rc)
        return rc;
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->state = KEY_NONE;
    return store_query(
        st, "SELECT " INFO_COLUMNS " FROM credentials WHERE tenant_id = $1 AND kind = $2",
        SV_ARGS(SV_TEXT(tenant_id), SV_TEXT(cred_kind_name(kind))), info_row, out);
}

/* Ensures the (tenant, kind) row exists so later statements can be plain UPDATEs. */
static int ensure_row(store *st, const char *tenant_id, enum cred_kind kind)
{
    return store_exec(
        st,
        "INSERT INTO credentials(tenant_id, kind, updated_ms) VALUES ($1, $2, $3) "
        "ON CONFLICT (tenant_id, kind) DO NOTHING",
        SV_ARGS(SV_TEXT(tenant_id), SV_TEXT(cred_kind_name(kind)), SV_INT(time_now_ms())));
}

int credential_store(store *st, vault *v, const char *actor, const char *tenant_id,
                     enum cred_kind kind, const cad_secret *secret, enum key_state state,
                     const char *extra_json)
{
    if (state != KEY_UNVERIFIED && state != KEY_VERIFIED)
        return cad_fail(CAD_EINVAL, "a stored key is either unverified or verified");
    if (secret_len(secret) == 0)
        return cad_fail(CAD_EINVAL, "the %s key is empty; nothing was stored",
                        cred_kind_name(kind));
    struct credential_info cur;
    int rc = store_begin(st);
    if (rc)
        return rc;
    char *sealed = NULL;
    char fp[17], last4[5], detail[128];
    if ((rc = credential_info(st, tenant_id, kind, &cur)))
        goto out;
    if ((rc = key_state_check(kind, cur.state, state)))
        goto out;
    int version = cur.version + 1;
    if ((rc = vault_seal(v, tenant_id, cred_kind_name(kind), version, secret, &sealed)))
        goto out;
    if ((rc = vault_fingerprint(v, tenant_id, secret, fp)))
        goto out;
    secret_last4(secret, last4);
    int64_t now = time_now_ms();
    if ((rc = ensure_row(st, tenant_id, kind)))
        goto out;
    rc = store_exec(st,
                    "UPDATE credentials SET state = $3, version = $4, sealed = $5, last4 = $6, "
                    "fingerprint = $7, set_ms = $8, updated_ms = $8, verified_ms = NULL, "
                    "account_id = NULL, account_name = NULL, scopes = NULL, detail = NULL, "
                    "extra = $9 WHERE tenant_id = $1 AND kind = $2",
                    SV_ARGS(SV_TEXT(tenant_id), SV_TEXT(cred_kind_name(kind)),
                            SV_TEXT(key_state_name(state)), SV_INT(version), SV_TEXT(sealed),
                            SV_TEXT(last4), SV_TEXT(fp), SV_INT(now), SV_TEXT(extra_json)));
    if (rc)
        goto out;
    snprintf(detail, sizeof detail, "kind=%s version=%d fingerprint=%s", cred_kind_name(kind),
             version, fp);
    struct audit_entry e = {.tenant_id = tenant_id,
                            .actor = actor,
                            .action = "key.set",
                            .duration_ms = -1,
                            .detail = detail};
    rc = audit_append(st, &e, NULL);
out:
    free(sealed);
    if (rc) {
        store_rollback(st);
        return rc;
    }
    return store_commit(st);
}

struct sealed_ctx {
    char *sealed;
    int version;
};

static int sealed_row(void *ctx, const store_row *row)
{
    struct sealed_ctx *s = ctx;
    s->sealed = cad_strdup(store_row_text(row, 0));
    s->version = (int)store_row_int(row, 1);
    return s->sealed ? 0 : CAD_ENOMEM;
}

int credential_open(store *st, vault *v, const char *tenant_id, enum cred_kind kind,
                    cad_secret **out)
{
    struct sealed_ctx s = {0};
    *out = NULL;
    int rc =
        store_query(st,
                    "SELECT sealed, version FROM credentials "
                    "WHERE tenant_id = $1 AND kind = $2 AND sealed IS NOT NULL",
                    SV_ARGS(SV_TEXT(tenant_id), SV_TEXT(cred_kind_name(kind))), sealed_row, &s);
    if (rc)
        return rc;
    if (!s.sealed)
        return cad_fail(CAD_ENOTFOUND, "tenant \"%s\" has no %s key stored", tenant_id,
                        cred_kind_name(kind));
    rc = vault_unseal(v, tenant_id, cred_kind_name(kind), s.version, s.sealed, out);
    free(s.sealed);
    return rc;
}

int credential_set_state(store *st, const char *actor, const char *tenant_id, enum cred_kind kind,
                         enum key_state to, const char *action, const char *detail)
{
    struct credential_info cur;
    int rc = store_begin(st);
    if (rc)
        return rc;
    if ((rc = credential_info(st, tenant_id, kind, &cur)))
        goto fail;
    if ((rc = key_state_check(kind, cur.state, to)))
        goto fail;
    if ((rc = ensure_row(st, tenant_id, kind)))
        goto fail;
    rc = store_exec(st,
                    "UPDATE credentials SET state = $3, detail = $4, updated_ms = $5 "
                    "WHERE tenant_id = $1 AND kind = $2",
                    SV_ARGS(SV_TEXT(tenant_id), SV_TEXT(cred_kind_name(kind)),
                            SV_TEXT(key_state_name(to)), SV_TEXT(detail), SV_INT(time_now_ms())));
    if (rc)
        goto fail;
    char note[640];
    snprintf(note, sizeof note, "kind=%s %s -> %s%s%s", cred_kind_name(kind),
             key_state_name(cur.state), key_state_name(to), detail ? ": " : "",
             detail ? detail : "");
    struct audit_entry e = {.tenant_id = tenant_id,
                            .actor = actor,
                            .action = action,
                            .duration_ms = -1,
                            .detail = note};
    if ((rc = audit_append(st, &e, NULL)))
        goto fail;
    return store_commit(st);
fail:
    store_rollback(st);
    return rc;
}

int credential_mark_verified(store *st, const char *actor, const char *tenant_id,
                             enum cred_kind kind, const char *account_id, const char *account_name,
                             const char *scopes_json)
{
    struct credential_info cur;
    int rc = store_begin(st);
    if (rc)
        return rc;
    if ((rc = credential_info(st, tenant_id, kind, &cur)))
        goto fail;
    if (!cur.has_secret) {
        rc = cad_fail(CAD_ESTATE, "tenant \"%s\" has no %s key to verify", tenant_id,
                      cred_kind_name(kind));
        goto fail;
    }
    if ((rc = key_state_check(kind, cur.state, KEY_VERIFIED)))
        goto fail;
    int64_t now = time_now_ms();
    rc = store_exec(st,
                    "UPDATE credentials SET state = 'verified', verified_ms = $3, updated_ms = $3, "
                    "account_id = $4, account_name = $5, scopes = $6, detail = NULL "
                    "WHERE tenant_id = $1 AND kind = $2",
                    SV_ARGS(SV_TEXT(tenant_id), SV_TEXT(cred_kind_name(kind)), SV_INT(now),
                            SV_TEXT(account_id), SV_TEXT(account_name), SV_TEXT(scopes_json)));
    if (rc)
        goto fail;
    char note[512];
    snprintf(note, sizeof note, "kind=%s account=%s", cred_kind_name(kind),
             account_id ? account_id : "");
    struct audit_entry e = {.tenant_id = tenant_id,
                            .actor = actor,
                            .action = "key.verified",
                            .duration_ms = -1,
                            .detail = note};
    if ((rc = audit_append(st, &e, NULL)))
        goto fail;
    return store_commit(st);
fail:
    store_rollback(st);
    return rc;
}
