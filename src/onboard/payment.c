/*
 * Confirming a tenant's payment, and what it sets off: a brand that chose "Continue without
 * entering a key" is emailed for its key, with a fresh onboarding link, as soon as its payment is
 * confirmed. The console's button and `cadence tenant paid` both call onboard_payment_confirm(), so
 * the rule lives here once.
 *
 * Everything happens in one transaction (the store counts nested begins): the payment, the new
 * link (which revokes the old one), the outbox row and the audit records. The outbox row is
 * deduplicated on the payment's time, so the same confirmation can never queue two emails.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "audit/audit.h"
#include "common/err.h"
#include "mail/mail.h"
#include "onboard/onboard.h"

struct contact {
    char brand[256];
    char email[256];
};

static int contact_row(void *ctx, const store_row *row)
{
    struct contact *c = ctx;
    if (*store_row_text(row, 0))
        snprintf(c->brand, sizeof c->brand, "%s", store_row_text(row, 0));
    if (*store_row_text(row, 1))
        snprintf(c->email, sizeof c->email, "%s", store_row_text(row, 1));
    return 0;
}

/* Issues a fresh link and queues the key request for a paid tenant whose key is deferred. */
static int queue_key_request(store *st, const char *actor, const struct tenant *t,
                             struct onboard_payment_result *out)
{
    struct contact c;
    snprintf(c.brand, sizeof c.brand, "%s", t->name);
    snprintf(c.email, sizeof c.email, "%s", t->email);
    int rc = store_query(st,
                         "SELECT brand_name, contact_email FROM onboarding_progress "
                         "WHERE tenant_id = $1",
                         SV_ARGS(SV_TEXT(t->id)), contact_row, &c);
    if (rc)
        return rc;
    if (!c.email[0] || !mail_addr_valid(c.email)) {
        out->no_address = true;
        return CAD_OK;
    }
    int64_t ttl;
    char base[512];
    if ((rc = onboard_link_ttl_from_env(&ttl)) || (rc = onboard_public_url(base, sizeof base)))
        return rc;
    char token[ONBOARD_TOKEN_LEN + 1], url[600], dedupe[MAIL_DEDUPE_MAX];
    if ((rc = onboard_link_issue(st, actor, t->id, ttl, token, NULL)))
        return rc;
    snprintf(url, sizeof url, "%s/onboard/%s", base, token);
    OPENSSL_cleanse(token, sizeof token);
    snprintf(dedupe, sizeof dedupe, "key_request:%s:%lld", t->id, (long long)t->payment_ms);
    struct mail_message m;
    rc = mail_build_key_request(c.brand, url, &m);
    OPENSSL_cleanse(url, sizeof url);
    if (rc)
        return rc;
    bool fresh = false;
    rc = mail_queue(st, t->id, MAIL_KEY_REQUEST, dedupe, c.email, m.subject, m.body, &out->mail_id,
                    &fresh);
    mail_message_free(&m);
    if (rc)
        return rc;
    if (!fresh) /* queued before: the link just issued must not replace the one it carries */
        return cad_fail(CAD_EEXIST, "the key request for this payment was already queued");
    char detail[400];
    snprintf(detail, sizeof detail, "key request email queued to %s (outbox %lld)", c.email,
             (long long)out->mail_id);
    struct audit_entry e = {.tenant_id = t->id,
                            .actor = actor,
                            .action = "key.request",
                            .duration_ms = -1,
                            .detail = detail};
    if ((rc = audit_append(st, &e, NULL)))
        return rc;
    snprintf(out->to, sizeof out->to, "%s", c.email);
    out->key_requested = true;
    return CAD_OK;
}

int onboard_payment_confirm(store *st, const char *actor, const char *tenant_id,
                            struct onboard_payment_result *out)
{
    memset(out, 0, sizeof *out);
    int rc = store_begin(st);
    if (rc)
        return rc;
    struct tenant t;
    struct credential_info k;
    if ((rc = tenant_confirm_payment(st, actor, tenant_id, &out->was_paid)) ||
        (rc = tenant_get(st, tenant_id, &t)) || (rc = credential_info(st, t.id, CRED_KLAVIYO, &k)))
        goto fail;
    if (!out->was_paid && k.state == KEY_DEFERRED && (rc = queue_key_request(st, actor, &t, out)))
        goto fail;
    if ((rc = store_commit(st)))
        goto fail;
    return CAD_OK;
fail:
    store_rollback(st);
    memset(out, 0, sizeof *out);
    return rc;
}
