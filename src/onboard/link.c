/*
 * Onboarding links in the store: issue (revoking the tenant's earlier links in the same
 * transaction) and resolve. A token is looked up by its hash; expiry and revocation are checked in
 * the query, and every way of not finding a live link gives the same answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/util.h"
#include "onboard/onboard.h"

int onboard_link_ttl_from_env(int64_t *ttl_ms)
{
    const char *s = getenv("CADENCE_LINK_TTL_DAYS");
    long days = 14;
    if (s && *s) {
        char *end;
        days = strtol(s, &end, 10);
        if (*end || days < 1 || days > 365)
            return cad_fail(CAD_EINVAL, "CADENCE_LINK_TTL_DAYS must be a number of days from 1 to "
                                        "365");
    }
    *ttl_ms = (int64_t)days * 24 * 3600 * 1000;
    return CAD_OK;
}

int onboard_public_url(char *out, size_t size)
{
    const char *s = getenv("CADENCE_PUBLIC_URL");
    if (!s || !*s)
        s = "http://127.0.0.1:8080";
    if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
        return cad_fail(CAD_EINVAL, "CADENCE_PUBLIC_URL must start with http:// or https://");
    if (strpbrk(s, " \t\r\n\"'<>?#"))
        return cad_fail(CAD_EINVAL, "CADENCE_PUBLIC_URL must be a plain URL (no spaces, quotes, "
                                    "query or fragment)");
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        n--;
    if (n + 1 > size)
        return cad_fail(CAD_EINVAL, "CADENCE_PUBLIC_URL is too long");
    memcpy(out, s, n);
    out[n] = 0;
    return CAD_OK;
}

int onboard_link_issue(store *st, const char *actor, const char *tenant_id, int64_t ttl_ms,
                       char token[ONBOARD_TOKEN_LEN + 1], int64_t *expires_ms)
{
    struct tenant t;
    int rc = tenant_get(st, tenant_id, &t);
    if (rc)
        return rc;
    char tok[ONBOARD_TOKEN_LEN + 1], hash[65];
    if ((rc = onboard_token_new(tok)))
        return rc;
    onboard_token_hash(tok, hash);
    int64_t now = time_now_ms(), exp = now + ttl_ms;
    if ((rc = store_begin(st)))
        goto out;
    rc = store_exec(st,
                    "UPDATE onboarding_links SET revoked_ms = $2 "
                    "WHERE tenant_id = $1 AND revoked_ms IS NULL",
                    SV_ARGS(SV_TEXT(t.id), SV_INT(now)));
    int64_t revoked = rc ? 0 : store_changes(st);
    if (!rc)
        rc = store_exec(
            st,
            "INSERT INTO onboarding_links (token_sha256, tenant_id, created_ms, "
            "expires_ms, created_by) VALUES ($1, $2, $3, $4, $5)",
            SV_ARGS(SV_TEXT(hash), SV_TEXT(t.id), SV_INT(now), SV_INT(exp), SV_TEXT(actor)));
    if (!rc) {
        char detail[160], when[32];
        time_format_ms(exp, when, sizeof when);
        snprintf(detail, sizeof detail, "link=%.12s expires=%s revoked_links=%lld", hash, when,
                 (long long)revoked);
        struct audit_entry e = {.tenant_id = t.id,
                                .actor = actor,
                                .action = "onboarding.link",
                                .duration_ms = -1,
                                .detail = detail};
        rc = audit_append(st, &e, NULL);
    }
    if (rc) {
        store_rollback(st);
        goto out;
    }
    if ((rc = store_commit(st)))
        goto out;
    memcpy(token, tok, sizeof tok);
    if (expires_ms)
        *expires_ms = exp;
out:
    memset(tok, 0, sizeof tok);
    return rc;
}

static int link_row(void *ctx, const store_row *row)
{
    struct onboard_link *l = ctx;
    snprintf(l->tenant_id, sizeof l->tenant_id, "%s", store_row_text(row, 0));
    l->expires_ms = store_row_int(row, 1);
    return 1;
}

int onboard_link_resolve(store *st, const char *token, int64_t now_ms, struct onboard_link *out)
{
    memset(out, 0, sizeof *out);
    if (!onboard_token_wellformed(token))
        return cad_fail(CAD_ENOTFOUND, "no such onboarding link");
    onboard_token_hash(token, out->hash);
    int rc =
        store_query(st,
                    "SELECT tenant_id, expires_ms FROM onboarding_links WHERE token_sha256 = $1 "
                    "AND revoked_ms IS NULL AND expires_ms > $2",
                    SV_ARGS(SV_TEXT(out->hash), SV_INT(now_ms)), link_row, out);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        memset(out, 0, sizeof *out);
        return cad_fail(CAD_ENOTFOUND, "no such onboarding link");
    }
    snprintf(out->hash12, sizeof out->hash12, "%.12s", out->hash);
    return CAD_OK;
}

int onboard_link_for_email(void *ctx, store *st, const char *tenant_id, char *url, size_t urlsz)
{
    (void)ctx;
    char base[512], token[ONBOARD_TOKEN_LEN + 1];
    int64_t ttl_ms, expires_ms;
    int rc = onboard_public_url(base, sizeof base);
    if (rc == CAD_OK)
        rc = onboard_link_ttl_from_env(&ttl_ms);
    if (rc == CAD_OK)
        rc = onboard_link_issue(st, AUDIT_ACTOR_SYSTEM, tenant_id, ttl_ms, token, &expires_ms);
    if (rc == CAD_OK && (size_t)snprintf(url, urlsz, "%s/onboard/%s", base, token) >= urlsz)
        rc = cad_fail(CAD_EINVAL, "the onboarding URL does not fit");
    explicit_bzero(token, sizeof token);
    return rc;
}
