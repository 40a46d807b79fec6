/*
 * Storing the brand's other connections: the one path from a pasted Shopify token or SMS key to a
 * sealed credential, shared by `cadence key set/verify --kind ...` and the onboarding page's
 * Step 4, so both check, verify, seal, audit and record a failure the same way.
 *
 * A candidate is verified before anything is stored, so a rejected one never replaces a stored
 * credential. What a failed check means follows `cadence key verify` for Klaviyo keys: a stored
 * credential that had worked and is now rejected was revoked; a failed check of one that never
 * worked makes it invalid; a working credential is not demoted by a failed candidate; an
 * unreachable or busy provider says nothing about any credential and changes nothing.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/log.h"
#include "mail/mail.h"
#include "providers/providers.h"

enum cred_kind provider_cred_kind(enum provider p)
{
    return p == PROVIDER_SHOPIFY      ? CRED_SHOPIFY
           : p == PROVIDER_POSTSCRIPT ? CRED_POSTSCRIPT
                                      : CRED_ATTENTIVE;
}

static const char *provider_label(enum provider p)
{
    return p == PROVIDER_SHOPIFY      ? "Shopify"
           : p == PROVIDER_POSTSCRIPT ? "Postscript"
                                      : "Attentive";
}

static const char *provider_where(enum provider p)
{
    return p == PROVIDER_SHOPIFY
               ? "create a new Admin API access token (Shopify admin > Settings > Apps and "
                 "sales channels > Develop apps, with read_products and read_inventory)"
           : p == PROVIDER_POSTSCRIPT ? "create a new private API key (it starts sk_) in Postscript"
                                      : "create a new API key for the custom app in Attentive";
}

int provider_mark_revoked(store *st, const char *actor, const char *tenant_id, enum provider p,
                          const char *detail)
{
    enum cred_kind kind = provider_cred_kind(p);
    struct credential_info ci;
    struct tenant t;
    int rc = credential_info(st, tenant_id, kind, &ci);
    if (!rc)
        rc = tenant_get(st, tenant_id, &t);
    if (rc)
        return rc;
    const char *pub = getenv("CADENCE_PUBLIC_URL");
    char dedupe[160], subject[512], body[2048];
    snprintf(dedupe, sizeof dedupe, "%s-revoked:%s:v%d", provider_name(p), tenant_id, ci.version);
    snprintf(subject, sizeof subject, "%s rejected the key %s gave Cadence", provider_label(p),
             t.name);
    snprintf(body, sizeof body,
             "Hello,\n\n%s rejected the credential %s gave Cadence (ending %s): it was revoked, "
             "or the app that issued it was removed. Cadence has stopped using it, and nothing "
             "was changed with it after the rejection.\n\nTo reconnect, %s and enter it in Step 4 "
             "of your onboarding page: %s/\n\nThe Cadence team\n",
             provider_label(p), t.name, ci.last4, provider_where(p),
             pub && *pub ? pub : "http://localhost:8080");
    if ((rc = store_begin(st)))
        return rc;
    rc = credential_set_state(st, actor, tenant_id, kind, KEY_REVOKED, "key.revoked", detail);
    int64_t id = 0;
    bool is_new = false;
    if (!rc && t.email[0] && mail_addr_valid(t.email))
        rc = mail_queue(st, tenant_id, MAIL_KEY_REVOKED, dedupe, t.email, subject, body, &id,
                        &is_new);
    else if (!rc)
        cad_log(LOG_WARN, "provider.revoked",
                "tenant=%s provider=%s detail=\"no email address: ask the brand another way\"",
                tenant_id, provider_name(p));
    if (rc) {
        store_rollback(st);
        return rc;
    }
    return store_commit(st);
}

static int record_failure(store *st, const char *actor, const char *tenant_id, enum cred_kind kind,
                          const struct provider_verify_result *r, bool stored)
{
    if (r->status == PROVIDER_VERIFY_UNREACHABLE || r->status == PROVIDER_VERIFY_TRANSIENT ||
        r->status == PROVIDER_VERIFY_FAILED || r->status == PROVIDER_VERIFY_OK)
        return CAD_OK;
    struct credential_info cur;
    int rc = credential_info(st, tenant_id, kind, &cur);
    if (rc)
        return rc;
    char detail[300];
    snprintf(detail, sizeof detail, "%s (HTTP %d)", provider_verify_status_name(r->status),
             r->http_status);
    if (stored && r->status == PROVIDER_VERIFY_REJECTED && cur.state == KEY_VERIFIED) {
        enum provider p = kind == CRED_SHOPIFY      ? PROVIDER_SHOPIFY
                          : kind == CRED_POSTSCRIPT ? PROVIDER_POSTSCRIPT
                                                    : PROVIDER_ATTENTIVE;
        return provider_mark_revoked(st, actor, tenant_id, p, detail); /* and email the brand */
    }
    if (stored && r->status == PROVIDER_VERIFY_REJECTED && cur.state == KEY_REVOKED)
        return credential_set_state(st, actor, tenant_id, kind, KEY_REVOKED, "key.revoked", detail);
    if (cur.state == KEY_VERIFIED || (!stored && cur.state == KEY_UNVERIFIED))
        return CAD_OK;
    return credential_set_state(st, actor, tenant_id, kind, KEY_INVALID, "key.invalid", detail);
}

static int mark_verified(store *st, const char *actor, const char *tenant_id, enum cred_kind kind,
                         const struct provider_verify_result *r)
{
    char *scopes = provider_verify_scopes_json(r);
    if (!scopes)
        return cad_fail(CAD_ENOMEM, "out of memory");
    int rc = credential_mark_verified(st, actor, tenant_id, kind, r->account_id, r->account_name,
                                      scopes);
    free(scopes);
    return rc;
}

/* {"shop":"name.myshopify.com"}; caller frees. */
static char *shop_extra(const char *domain)
{
    json_t *o = json_pack("{s:s}", "shop", domain);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

int provider_credential_set(store *st, vault *v, const char *actor, const char *tenant_id,
                            enum provider p, const char *shop_domain, const cad_secret *raw,
                            bool verify, struct provider_set_result *out)
{
    memset(out, 0, sizeof *out);
    enum cred_kind kind = provider_cred_kind(p);
    struct shopify_domain_result shop = {0};
    if (p == PROVIDER_SHOPIFY && shopify_domain_normalise(shop_domain, &shop) != CAD_OK) {
        out->stage = PROVIDER_SET_FAILED;
        return cad_fail(CAD_EINVAL, "%s", shop.message);
    }
    provider_key_check(p, (const char *)secret_data(raw), secret_len(raw), &out->format);
    if (out->format.verdict != PROVIDER_KEY_OK) {
        out->stage = PROVIDER_SET_BAD_FORMAT;
        return CAD_EINVAL;
    }
    cad_secret *key = NULL;
    char *extra = NULL;
    int rc = secret_from(&key, secret_data(raw) + out->format.start, out->format.len);
    if (!rc && p == PROVIDER_SHOPIFY && !(extra = shop_extra(shop.domain)))
        rc = cad_fail(CAD_ENOMEM, "out of memory");
    if (rc) {
        out->stage = PROVIDER_SET_FAILED;
        goto out;
    }
    if (verify) {
        rc = provider_verify(st, NULL, p, tenant_id, actor, shop.domain, key, &out->verify);
        if (out->verify.status != PROVIDER_VERIFY_OK) {
            out->stage = PROVIDER_SET_NOT_VERIFIED;
            out->record_rc = record_failure(st, actor, tenant_id, kind, &out->verify, false);
            goto out;
        }
    }
    rc = credential_store(st, v, actor, tenant_id, kind, key,
                          verify ? KEY_VERIFIED : KEY_UNVERIFIED, extra);
    if (!rc && verify)
        rc = mark_verified(st, actor, tenant_id, kind, &out->verify);
    out->stage = rc ? PROVIDER_SET_FAILED : PROVIDER_SET_STORED;
out:
    free(extra);
    secret_free(key);
    return rc;
}

/* The shop domain recorded with a Shopify token. */
static int stored_shop(const struct credential_info *info, char *out, size_t n)
{
    json_t *doc = json_loads(info->extra, 0, NULL);
    const char *shop = json_string_value(json_object_get(doc, "shop"));
    int rc = shop ? CAD_OK : cad_fail(CAD_ENOTFOUND, "no shop domain is recorded with the token");
    if (shop)
        snprintf(out, n, "%s", shop);
    json_decref(doc);
    return rc;
}

int provider_credential_verify(store *st, vault *v, const char *actor, const char *tenant_id,
                               enum provider p, struct provider_verify_result *out)
{
    memset(out, 0, sizeof *out);
    out->status = PROVIDER_VERIFY_FAILED;
    enum cred_kind kind = provider_cred_kind(p);
    struct credential_info info;
    char shop[128] = "";
    cad_secret *key = NULL;
    int rc = credential_info(st, tenant_id, kind, &info);
    if (!rc && p == PROVIDER_SHOPIFY)
        rc = stored_shop(&info, shop, sizeof shop);
    if (!rc)
        rc = credential_open(st, v, tenant_id, kind, &key);
    if (rc)
        return rc;
    rc = provider_verify(st, NULL, p, tenant_id, actor, shop, key, out);
    secret_free(key);
    if (out->status == PROVIDER_VERIFY_OK)
        return mark_verified(st, actor, tenant_id, kind, out);
    int rec = record_failure(st, actor, tenant_id, kind, out, true);
    return rec ? rec : rc;
}
