/*
 * Key verification (see verify.h). The account read goes first and alone: if Klaviyo rejects the
 * key there is no point in twelve more calls. The family reads then go out together through the
 * client's async API, so verification takes about as long as its slowest read and the rate
 * limiter (not this file) decides the spacing.
 */
#include "klaviyo/verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "keyfmt/keyfmt.h"

const struct klaviyo_scope_family klaviyo_scope_families[KLAVIYO_SCOPE_FAMILIES] = {
    {"lists", "get_lists"},         {"segments", "get_segments"}, {"templates", "get_templates"},
    {"campaigns", "get_campaigns"}, {"flows", "get_flows"},       {"profiles", "get_profiles"},
    {"forms", "get_forms"},         {"images", "get_images"},     {"catalogs", "get_catalog_items"},
    {"coupons", "get_coupons"},     {"webhooks", "get_webhooks"}, {"tags", "get_tags"},
};

static const char *const status_names[] = {
    [KLAVIYO_VERIFY_OK] = "ok",
    [KLAVIYO_VERIFY_BAD_FORMAT] = "bad_format",
    [KLAVIYO_VERIFY_REJECTED] = "rejected",
    [KLAVIYO_VERIFY_MISSING_SCOPES] = "missing_scopes",
    [KLAVIYO_VERIFY_UNREACHABLE] = "unreachable",
    [KLAVIYO_VERIFY_CHALLENGE] = "challenge",
    [KLAVIYO_VERIFY_TRANSIENT] = "transient",
    [KLAVIYO_VERIFY_FAILED] = "failed",
};

const char *klaviyo_verify_status_name(enum klaviyo_verify_status s)
{
    return (unsigned)s < sizeof status_names / sizeof status_names[0] ? status_names[s] : "?";
}

const char *klaviyo_scope_read_name(enum klaviyo_scope_read r)
{
    switch (r) {
    case KLAVIYO_READ_OK:
        return "ok";
    case KLAVIYO_READ_MISSING:
        return "missing";
    case KLAVIYO_READ_UNKNOWN:
        return "unknown";
    case KLAVIYO_READ_UNCHECKED:
        break;
    }
    return "unchecked";
}

/* snprintf for texts cut short on purpose (bounded fields). */
static void textf(char *out, size_t outsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void textf(char *out, size_t outsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, outsz, fmt, ap);
    va_end(ap);
}

static int status_rc(enum klaviyo_verify_status s)
{
    switch (s) {
    case KLAVIYO_VERIFY_OK:
        return CAD_OK;
    case KLAVIYO_VERIFY_BAD_FORMAT:
        return CAD_EINVAL;
    case KLAVIYO_VERIFY_REJECTED:
        return CAD_EAUTH;
    case KLAVIYO_VERIFY_MISSING_SCOPES:
        return CAD_EPERM;
    case KLAVIYO_VERIFY_UNREACHABLE:
    case KLAVIYO_VERIFY_CHALLENGE:
    case KLAVIYO_VERIFY_TRANSIENT:
        return CAD_ENET;
    case KLAVIYO_VERIFY_FAILED:
        break;
    }
    return CAD_EIO;
}

static int done(struct klaviyo_verify_result *out, enum klaviyo_verify_status s, const char *fmt,
                ...) __attribute__((format(printf, 3, 4)));
static int done(struct klaviyo_verify_result *out, enum klaviyo_verify_status s, const char *fmt,
                ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof out->message, fmt, ap);
    va_end(ap);
    out->status = s;
    int rc = status_rc(s);
    return rc ? cad_fail(rc, "%s", out->message) : CAD_OK;
}

/* What a failed call means for the whole verification. */
static enum klaviyo_verify_status status_of(const struct klaviyo_result *r)
{
    switch (r->outcome) {
    case KLAVIYO_OUT_OK:
        return KLAVIYO_VERIFY_OK;
    case KLAVIYO_OUT_REVOKED:
        return KLAVIYO_VERIFY_REJECTED;
    case KLAVIYO_OUT_MISSING_SCOPE:
        return KLAVIYO_VERIFY_MISSING_SCOPES;
    case KLAVIYO_OUT_UNREACHABLE:
        return KLAVIYO_VERIFY_UNREACHABLE;
    case KLAVIYO_OUT_AUTH_FAILED_ONCE:
        return KLAVIYO_VERIFY_TRANSIENT;
    case KLAVIYO_OUT_TRANSIENT:
        return r->last_class == KLAVIYO_CLASS_CHALLENGE ? KLAVIYO_VERIFY_CHALLENGE
                                                        : KLAVIYO_VERIFY_TRANSIENT;
    default:
        return KLAVIYO_VERIFY_FAILED;
    }
}

static void copy_str(json_t *v, char *out, size_t outsz)
{
    const char *s = json_string_value(v);
    snprintf(out, outsz, "%s", s ? s : "");
}

struct family_ctx {
    struct klaviyo_verify_result *out;
    size_t index;
    enum klaviyo_verify_status *worst;
    char *worst_msg;
    size_t worst_msg_size;
};

static int severity(enum klaviyo_verify_status s)
{
    /* Which reason wins when several reads fail: the key's own problems first. */
    switch (s) {
    case KLAVIYO_VERIFY_REJECTED:
        return 6;
    case KLAVIYO_VERIFY_FAILED:
        return 5;
    case KLAVIYO_VERIFY_UNREACHABLE:
        return 4;
    case KLAVIYO_VERIFY_CHALLENGE:
        return 3;
    case KLAVIYO_VERIFY_TRANSIENT:
        return 2;
    case KLAVIYO_VERIFY_MISSING_SCOPES:
        return 1;
    default:
        return 0;
    }
}

static void family_done(void *vctx, const struct klaviyo_result *r)
{
    struct family_ctx *f = vctx;
    struct klaviyo_scope_check *sc = &f->out->scopes[f->index];
    if (r->outcome == KLAVIYO_OUT_OK) {
        sc->read = KLAVIYO_READ_OK;
        return;
    }
    sc->read =
        r->outcome == KLAVIYO_OUT_MISSING_SCOPE ? KLAVIYO_READ_MISSING : KLAVIYO_READ_UNKNOWN;
    textf(sc->detail, sizeof sc->detail, "%s", r->message);
    enum klaviyo_verify_status s = status_of(r);
    if (severity(s) > severity(*f->worst)) {
        *f->worst = s;
        textf(f->worst_msg, f->worst_msg_size, "%s", r->message);
    }
}

int klaviyo_verify_key(store *st, const struct klaviyo_config *cfg, const char *tenant_id,
                       const char *actor, const cad_secret *key, struct klaviyo_verify_result *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < KLAVIYO_SCOPE_FAMILIES; i++) {
        out->scopes[i].family = klaviyo_scope_families[i].family;
        out->scopes[i].operation_id = klaviyo_scope_families[i].operation_id;
    }
    struct keyfmt_result fmt;
    keyfmt_check((const char *)secret_data(key), secret_len(key), &fmt);
    if (fmt.verdict != KEYFMT_OK)
        return done(out, KLAVIYO_VERIFY_BAD_FORMAT, "%s", fmt.message);

    cad_secret *tidy = NULL;
    klaviyo_client *c = NULL;
    int rc = secret_from(&tidy, secret_data(key) + fmt.start, fmt.len);
    if (rc)
        return done(out, KLAVIYO_VERIFY_FAILED, "%s", cad_errmsg());
    rc = klaviyo_client_new(&c, st, tenant_id, actor, tidy, cfg);
    secret_free(tidy);
    if (rc)
        return done(out, KLAVIYO_VERIFY_FAILED, "%s", cad_errmsg());

    struct klaviyo_result res;
    struct klaviyo_request acc = {.method = "GET", .target = "/api/accounts"};
    klaviyo_call(c, &acc, &res);
    if (res.outcome != KLAVIYO_OUT_OK) {
        enum klaviyo_verify_status s = status_of(&res);
        if (s == KLAVIYO_VERIFY_REJECTED)
            rc = done(out, s,
                      "Klaviyo rejected the key: it is wrong or was revoked (checked twice). "
                      "Create a new private key in Klaviyo and paste it again");
        else if (s == KLAVIYO_VERIFY_MISSING_SCOPES)
            rc = done(out, s, "the key cannot read the account (it lacks accounts:read): %s",
                      res.message);
        else if (s == KLAVIYO_VERIFY_UNREACHABLE)
            rc = done(out, s,
                      "Klaviyo could not be reached; try again later (the key is not marked "
                      "invalid for this): %s",
                      res.message);
        else
            rc = done(out, s, "%s", res.message);
        goto out;
    }
    json_t *acct = json_array_get(json_object_get(res.doc, "data"), 0);
    json_t *attrs = json_object_get(acct, "attributes");
    copy_str(json_object_get(acct, "id"), out->account_id, sizeof out->account_id);
    copy_str(json_object_get(json_object_get(attrs, "contact_information"), "organization_name"),
             out->organization_name, sizeof out->organization_name);
    copy_str(json_object_get(attrs, "timezone"), out->timezone, sizeof out->timezone);
    copy_str(json_object_get(attrs, "preferred_currency"), out->currency, sizeof out->currency);
    copy_str(json_object_get(attrs, "public_api_key"), out->public_key, sizeof out->public_key);
    out->test_account = json_is_true(json_object_get(attrs, "test_account"));
    if (!out->account_id[0]) {
        rc = done(out, KLAVIYO_VERIFY_FAILED,
                  "Klaviyo's answer to GET /api/accounts holds no account id");
        goto out;
    }

    enum klaviyo_verify_status worst = KLAVIYO_VERIFY_OK;
    char worst_msg[sizeof out->message] = "";
    struct family_ctx ctx[KLAVIYO_SCOPE_FAMILIES];
    for (size_t i = 0; i < KLAVIYO_SCOPE_FAMILIES; i++) {
        const struct kspec_op *op = kspec_by_id(klaviyo_scope_families[i].operation_id);
        ctx[i] = (struct family_ctx){out, i, &worst, worst_msg, sizeof worst_msg};
        if (!op) {
            out->scopes[i].read = KLAVIYO_READ_UNKNOWN;
            textf(out->scopes[i].detail, sizeof out->scopes[i].detail,
                  "no operation %s in this revision", klaviyo_scope_families[i].operation_id);
            worst = KLAVIYO_VERIFY_FAILED;
            textf(worst_msg, sizeof worst_msg, "%s", out->scopes[i].detail);
            continue;
        }
        /* Campaign reads require a channel filter; one item per page is the cheapest read. */
        char filter[64], target[256];
        const char *kv[6] = {NULL};
        size_t k = 0;
        if (strcmp(op->operation_id, "get_campaigns") == 0 &&
            klaviyo_filter_equals(filter, sizeof filter, "messages.channel", "email") == CAD_OK) {
            kv[k++] = "filter";
            kv[k++] = filter;
        }
        if (klaviyo_page_size_max(op->path) > 0) {
            kv[k++] = "page[size]";
            kv[k++] = "1";
        }
        struct klaviyo_request rq = {.method = "GET", .target = target};
        if (klaviyo_target(target, sizeof target, op->path, kv) != CAD_OK ||
            klaviyo_submit(c, &rq, family_done, &ctx[i]) != CAD_OK) {
            out->scopes[i].read = KLAVIYO_READ_UNKNOWN;
            textf(out->scopes[i].detail, sizeof out->scopes[i].detail, "%s", cad_errmsg());
            worst = KLAVIYO_VERIFY_FAILED;
            textf(worst_msg, sizeof worst_msg, "%s", out->scopes[i].detail);
        }
    }
    if (klaviyo_run(c, -1) != CAD_OK) {
        rc = done(out, KLAVIYO_VERIFY_FAILED, "%s", cad_errmsg());
        goto out;
    }
    size_t len = 0;
    for (size_t i = 0; i < KLAVIYO_SCOPE_FAMILIES; i++)
        if (out->scopes[i].read == KLAVIYO_READ_MISSING && len < sizeof out->missing)
            len += (size_t)snprintf(out->missing + len, sizeof out->missing - len, "%s%s",
                                    len ? ", " : "", out->scopes[i].family);
    if (worst == KLAVIYO_VERIFY_MISSING_SCOPES)
        rc = done(out, worst,
                  "the key works for %s (account %s) but cannot read: %s. Create a key with "
                  "Full Access, or grant read and write on these scopes",
                  out->organization_name, out->account_id, out->missing);
    else if (worst != KLAVIYO_VERIFY_OK)
        rc = done(out, worst, "the scopes could not all be checked: %s", worst_msg);
    else
        rc = done(out, KLAVIYO_VERIFY_OK, "Verified: %s (account %s)", out->organization_name,
                  out->account_id);
out:
    klaviyo_result_clear(&res);
    klaviyo_client_free(c);
    return rc;
}

char *klaviyo_verify_scopes_json(const struct klaviyo_verify_result *r)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "accounts", json_string(r->account_id[0] ? "ok" : "unknown"));
    for (size_t i = 0; i < KLAVIYO_SCOPE_FAMILIES; i++) {
        const struct klaviyo_scope_check *s = &r->scopes[i];
        if (!s->family)
            continue;
        json_object_set_new(
            o, s->family,
            json_pack("{s:s,s:s}", "read", klaviyo_scope_read_name(s->read), "write",
                      s->read == KLAVIYO_READ_OK ? "confirmed on first write" : "unknown"));
    }
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return text;
}
