/*
 * Verifying a Shopify token, a Postscript key or an Attentive key: one authenticated read each
 * (endpoints in providers.h), through one small synchronous door, provider_call().
 *
 * Design choices:
 * - The secret's header line ("X-Shopify-Access-Token: ..." or "Authorization: Bearer ...") is
 *   built in a cad_secret, and the header list handed to curl is made of curl_slist nodes on the
 *   stack pointing into it, not curl_slist_append copies, so no plaintext copy outlives the call.
 * - Write-ahead audit: no intent record committed, no request. The payload hash is of the exact
 *   body sent (the GraphQL query, or nothing); the endpoint is the path only.
 * - Exactly one attempt. A verification is a person's question ("does this work?"), answered
 *   now; an unreachable provider leaves the stored credential as it is.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/util.h"
#include "providers/providers.h"

const char *provider_verify_status_name(enum provider_verify_status s)
{
    switch (s) {
    case PROVIDER_VERIFY_OK:
        return "ok";
    case PROVIDER_VERIFY_BAD_FORMAT:
        return "bad_format";
    case PROVIDER_VERIFY_REJECTED:
        return "rejected";
    case PROVIDER_VERIFY_MISSING_SCOPES:
        return "missing_scopes";
    case PROVIDER_VERIFY_NOT_FOUND:
        return "not_found";
    case PROVIDER_VERIFY_UNREACHABLE:
        return "unreachable";
    case PROVIDER_VERIFY_TRANSIENT:
        return "transient";
    case PROVIDER_VERIFY_FAILED:
        return "failed";
    }
    return "unknown";
}

/* ---- configuration ---- */

static const char *env_url_name(enum provider p)
{
    switch (p) {
    case PROVIDER_SHOPIFY:
        return "CADENCE_SHOPIFY_URL";
    case PROVIDER_POSTSCRIPT:
        return "CADENCE_POSTSCRIPT_URL";
    case PROVIDER_ATTENTIVE:
        return "CADENCE_ATTENTIVE_URL";
    }
    return "CADENCE_PROVIDER_URL";
}

bool provider_host_is_loopback(const char *host)
{
    return strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 ||
           strcmp(host, "::1") == 0 || strncmp(host, "127.", 4) == 0;
}

/* scheme://host[:port] only; https, or http to loopback. Copies it without trailing '/'. */
static int base_url_check(const char *name, const char *url, char *out, size_t outsz)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *path = NULL, *query = NULL, *user = NULL;
    int rc = CAD_EINVAL;
    if (!u)
        return cad_fail(CAD_ENOMEM, "out of memory");
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        cad_fail(CAD_EINVAL, "%s is not a URL", name);
        goto out;
    }
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    curl_url_get(u, CURLUPART_USER, &user, 0);
    if (user || query || (path && strcmp(path, "/") != 0 && *path)) {
        cad_fail(CAD_EINVAL, "%s must be scheme://host[:port] only", name);
        goto out;
    }
    if (strcmp(scheme, "https") != 0 &&
        !(strcmp(scheme, "http") == 0 && provider_host_is_loopback(host))) {
        cad_fail(CAD_EINVAL, "%s must be https (plain http is allowed only for a loopback address)",
                 name);
        goto out;
    }
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    if (n >= outsz) {
        cad_fail(CAD_EINVAL, "%s is too long", name);
        goto out;
    }
    memcpy(out, url, n);
    out[n] = '\0';
    rc = CAD_OK;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(path);
    curl_free(query);
    curl_free(user);
    curl_url_cleanup(u);
    return rc;
}

int provider_config_from_env(enum provider p, struct provider_config *out)
{
    memset(out, 0, sizeof *out);
    out->connect_timeout_ms = 10000;
    out->timeout_ms = 30000;
    const char *t = getenv("CADENCE_PROVIDER_TIMEOUT_MS");
    if (t && *t) {
        char *end;
        errno = 0;
        long v = strtol(t, &end, 10);
        if (errno || *end || v < 100 || v > 600000)
            return cad_fail(CAD_EINVAL,
                            "CADENCE_PROVIDER_TIMEOUT_MS must be a whole number from 100 to "
                            "600000");
        out->timeout_ms = v;
        if (out->connect_timeout_ms > v)
            out->connect_timeout_ms = v;
    }
    const char *name = env_url_name(p);
    const char *url = getenv(name);
    if (url && *url)
        return base_url_check(name, url, out->base_url, sizeof out->base_url);
    if (p == PROVIDER_POSTSCRIPT)
        snprintf(out->base_url, sizeof out->base_url, "%s", POSTSCRIPT_DEFAULT_BASE_URL);
    else if (p == PROVIDER_ATTENTIVE)
        snprintf(out->base_url, sizeof out->base_url, "%s", ATTENTIVE_DEFAULT_BASE_URL);
    return CAD_OK;
}

/* ---- one call ---- */

#define BODY_MAX (1u << 20)

struct reply {
    int status;
    char *body;
    size_t len, max;
    bool too_big;
    char request_id[128];
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx)
{
    struct reply *r = ctx;
    size_t n = size * nmemb;
    if (r->len + n > r->max) {
        r->too_big = true;
        return 0;
    }
    char *nb = realloc(r->body, r->len + n + 1);
    if (!nb)
        return 0;
    memcpy(nb + r->len, p, n);
    r->body = nb;
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

/* Keeps the provider's request id (X-Request-Id) for the audit record. */
static size_t on_header(char *p, size_t size, size_t nmemb, void *ctx)
{
    struct reply *r = ctx;
    size_t n = size * nmemb;
    static const char name[] = "x-request-id:";
    if (n > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
        const char *v = p + sizeof name - 1;
        size_t m = n - (sizeof name - 1);
        while (m > 0 && (*v == ' ' || *v == '\t')) {
            v++;
            m--;
        }
        while (m > 0 && (v[m - 1] == '\r' || v[m - 1] == '\n' || v[m - 1] == ' '))
            m--;
        size_t k = 0;
        for (size_t i = 0; i < m && k + 1 < sizeof r->request_id; i++)
            if (v[i] > 0x20 && v[i] < 0x7F)
                r->request_id[k++] = v[i];
        r->request_id[k] = '\0';
    }
    return n;
}

struct call {
    store *st;
    enum provider p;
    const char *tenant_id, *actor;
    const char *method;    /* "GET" or "POST" */
    const char *base;      /* scheme://host[:port] */
    const char *path;      /* starts with '/' */
    const char *body;      /* JSON for POST, NULL for GET */
    const char *auth_name; /* "X-Shopify-Access-Token: " or "Authorization: Bearer " */
    const cad_secret *secret;
    const struct provider_config *cfg;
};

/* Sends one request. CAD_OK when a response came (any status, in *r; the caller frees r->body),
 * CAD_ENET with a message when none did, other codes when nothing was sent. */
static int provider_call(const struct call *c, struct reply *r, size_t max)
{
    memset(r, 0, sizeof *r);
    r->max = max ? max : BODY_MAX;
    char url[1024];
    if ((size_t)snprintf(url, sizeof url, "%s%s", c->base, c->path) >= sizeof url)
        return cad_fail(CAD_EINVAL, "the %s address is too long", provider_name(c->p));
    const unsigned char *sd = secret_data(c->secret);
    size_t an = strlen(c->auth_name), sn = secret_len(c->secret);
    for (size_t i = 0; i < sn; i++)
        if (sd[i] < 0x21 || sd[i] > 0x7E)
            return cad_fail(CAD_EINVAL, "the %s credential has characters a header cannot carry",
                            provider_name(c->p));
    cad_secret *line = NULL;
    if (secret_new(&line, an + sn) != CAD_OK)
        return cad_fail(CAD_ENOMEM, "out of memory");
    memcpy(secret_data_mut(line), c->auth_name, an);
    memcpy(secret_data_mut(line) + an, sd, sn);

    char action[32];
    snprintf(action, sizeof action, "%s.call", provider_name(c->p));
    size_t body_len = c->body ? strlen(c->body) : 0;
    int64_t seq = 0;
    int rc = audit_call_begin(c->st, c->tenant_id, c->actor, action, c->method, c->path, c->body,
                              body_len, &seq);
    if (rc != CAD_OK) {
        secret_free(line);
        return rc;
    }
    CURL *e = curl_easy_init();
    if (!e) {
        audit_call_end(c->st, seq, 0, 0, NULL, "not sent: curl_easy_init failed");
        secret_free(line);
        return cad_fail(CAD_ENOMEM, "out of memory");
    }
    char ua[64];
    snprintf(ua, sizeof ua, "User-Agent: cadence/%s", CADENCE_VERSION);
    char *lines[] = {(char *)secret_cstr(line), "Accept: application/json",
                     "Content-Type: application/json", ua};
    struct curl_slist hdr[4];
    for (size_t i = 0; i < 4; i++) {
        hdr[i].data = lines[i];
        hdr[i].next = i + 1 < 4 ? &hdr[i + 1] : NULL;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->cfg->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->cfg->timeout_ms);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr);
    if (c->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    int64_t t0 = time_mono_ms();
    CURLcode cc = curl_easy_perform(e);
    int64_t dur = time_mono_ms() - t0;
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    secret_free(line);
    if (cc != CURLE_OK && !(r->too_big && status > 0)) {
        char detail[CURL_ERROR_SIZE + 64];
        snprintf(detail, sizeof detail, "no response: %s",
                 errbuf[0] ? errbuf : curl_easy_strerror(cc));
        audit_call_end(c->st, seq, 0, dur, NULL, detail);
        free(r->body);
        r->body = NULL;
        r->len = 0;
        return cad_fail(CAD_ENET, "%s could not be reached (%s)", provider_name(c->p),
                        errbuf[0] ? errbuf : curl_easy_strerror(cc));
    }
    r->status = (int)status;
    rc = audit_call_end(c->st, seq, r->status, dur, r->request_id[0] ? r->request_id : NULL,
                        r->too_big ? "response too large" : NULL);
    if (rc != CAD_OK) {
        free(r->body);
        r->body = NULL;
        return rc;
    }
    return CAD_OK;
}

/* ---- deciding ---- */

#define RESULT(out, st, ...)                                                                       \
    do {                                                                                           \
        (out)->status = (st);                                                                      \
        snprintf((out)->message, sizeof(out)->message, __VA_ARGS__);                               \
    } while (0)

static int status_rc(enum provider_verify_status s)
{
    switch (s) {
    case PROVIDER_VERIFY_OK:
        return CAD_OK;
    case PROVIDER_VERIFY_BAD_FORMAT:
        return CAD_EINVAL;
    case PROVIDER_VERIFY_REJECTED:
        return CAD_EAUTH;
    case PROVIDER_VERIFY_MISSING_SCOPES:
        return CAD_EPERM;
    case PROVIDER_VERIFY_NOT_FOUND:
        return CAD_ENOTFOUND;
    case PROVIDER_VERIFY_UNREACHABLE:
    case PROVIDER_VERIFY_TRANSIENT:
        return CAD_ENET;
    case PROVIDER_VERIFY_FAILED:
        break;
    }
    return CAD_EREMOTE;
}

static const char *display_name(enum provider p)
{
    return p == PROVIDER_SHOPIFY      ? "Shopify"
           : p == PROVIDER_POSTSCRIPT ? "Postscript"
                                      : "Attentive";
}

/* The common reading of a status that is not 200. True when it decided the outcome. */
static bool classify_status(enum provider p, const struct reply *r,
                            struct provider_verify_result *out)
{
    const char *who = display_name(p);
    int s = r->status;
    if (s == 200)
        return false;
    if (s == 401 || s == 403)
        RESULT(out, PROVIDER_VERIFY_REJECTED,
               "%s rejected the %s (HTTP %d): it is wrong, was revoked, or belongs to another "
               "account. Create a new one and enter it again.",
               who, p == PROVIDER_SHOPIFY ? "access token" : "key", s);
    else if (s == 404 && p == PROVIDER_SHOPIFY)
        RESULT(out, PROVIDER_VERIFY_NOT_FOUND,
               "Shopify has no store at this address (HTTP 404). Check the .myshopify.com "
               "address in Settings \xE2\x86\x92 Domains.");
    else if (s == 402 || s == 423)
        RESULT(out, PROVIDER_VERIFY_REJECTED,
               "%s refused access to the account (HTTP %d): the store is frozen, locked or "
               "unpaid.",
               who, s);
    else if (s == 429 || s >= 500)
        RESULT(out, PROVIDER_VERIFY_TRANSIENT,
               "%s is busy or failing (HTTP %d); this says nothing about the credential. Try "
               "again in a few minutes.",
               who, s);
    else
        RESULT(out, PROVIDER_VERIFY_FAILED, "%s answered HTTP %d, which Cadence did not expect.",
               who, s);
    return true;
}

static void copy_str(char *dst, size_t n, json_t *v)
{
    snprintf(dst, n, "%s", json_is_string(v) ? json_string_value(v) : "");
}

/* Shopify's scopes as Cadence sees them: what is needed, what is nice, what is too much. */
static void judge_scopes(json_t *handles, struct provider_verify_result *out)
{
    bool products = false, inventory = false;
    char writes[512] = "";
    size_t i;
    json_t *h;
    size_t used = 0;
    json_array_foreach(handles, i, h)
    {
        const char *s = json_string_value(json_object_get(h, "handle"));
        if (!s)
            continue;
        size_t cur = strlen(out->scopes);
        snprintf(out->scopes + cur, sizeof out->scopes - cur, "%s%s", cur ? "," : "", s);
        if (strcmp(s, "read_products") == 0 || strcmp(s, "write_products") == 0)
            products = true;
        if (strcmp(s, "read_inventory") == 0 || strcmp(s, "write_inventory") == 0)
            inventory = true;
        if (strncmp(s, "write_", 6) == 0 && used < sizeof writes)
            used +=
                (size_t)snprintf(writes + used, sizeof writes - used, "%s%s", used ? ", " : "", s);
    }
    if (!products) {
        snprintf(out->missing, sizeof out->missing, "read_products");
        RESULT(out, PROVIDER_VERIFY_MISSING_SCOPES,
               "The token works for %s but cannot read products: in the app's Configuration "
               "\xE2\x86\x92 Admin API integration, tick read_products (and read_inventory for "
               "stock), save, and install the app again to get a new token.",
               out->account_name);
        return;
    }
    size_t w = 0;
    if (writes[0])
        w += (size_t)snprintf(out->warning, sizeof out->warning,
                              "The token can also write (%s). Cadence only reads your catalog: "
                              "for least privilege, untick the write scopes in the app's "
                              "configuration and reinstall it.",
                              writes);
    if (!inventory && w < sizeof out->warning)
        snprintf(out->warning + w, sizeof out->warning - w,
                 "%sWithout read_inventory, stock levels will not be synced.", w ? " " : "");
    RESULT(out, PROVIDER_VERIFY_OK, "Verified: %s (%s)", out->account_name, out->account_id);
}

int shopify_graphql_call(store *st, const struct provider_config *cfg, const char *tenant_id,
                         const char *actor, const char *shop_domain, const cad_secret *token,
                         const char *body, size_t max_reply, struct provider_reply *out)
{
    memset(out, 0, sizeof *out);
    char host_base[512];
    if (!cfg->base_url[0] && (size_t)snprintf(host_base, sizeof host_base, "https://%s",
                                              shop_domain) >= sizeof host_base)
        return cad_fail(CAD_EINVAL, "the shop domain is too long");
    struct call c = {.st = st,
                     .p = PROVIDER_SHOPIFY,
                     .tenant_id = tenant_id,
                     .actor = actor,
                     .method = "POST",
                     .base = cfg->base_url[0] ? cfg->base_url : host_base,
                     .path = "/admin/api/" SHOPIFY_API_VERSION "/graphql.json",
                     .body = body,
                     .auth_name = "X-Shopify-Access-Token: ",
                     .secret = token,
                     .cfg = cfg};
    struct reply r;
    int rc = provider_call(&c, &r, max_reply);
    if (rc != CAD_OK)
        return rc;
    out->status = r.status;
    out->body = r.body;
    out->len = r.len;
    out->too_big = r.too_big;
    snprintf(out->request_id, sizeof out->request_id, "%s", r.request_id);
    return CAD_OK;
}

static const char shopify_query[] =
    "{\"query\":\"{ shop { name myshopifyDomain } currentAppInstallation { accessScopes { handle "
    "} } }\"}";

static void verify_shopify(const struct call *base, const char *shop,
                           struct provider_verify_result *out)
{
    char host_base[512];
    struct call c = *base;
    if (!base->cfg->base_url[0]) {
        snprintf(host_base, sizeof host_base, "https://%s", shop);
        c.base = host_base;
    }
    c.method = "POST";
    c.path = "/admin/api/" SHOPIFY_API_VERSION "/graphql.json";
    c.body = shopify_query;
    c.auth_name = "X-Shopify-Access-Token: ";
    struct reply r;
    int rc = provider_call(&c, &r, 0);
    if (rc == CAD_ENET) {
        RESULT(out, PROVIDER_VERIFY_UNREACHABLE,
               "Shopify could not be reached at %s; this says nothing about the token. Try again "
               "later. (%s)",
               shop, cad_errmsg());
        return;
    }
    if (rc != CAD_OK) {
        RESULT(out, PROVIDER_VERIFY_FAILED, "The token was not checked: %s", cad_errmsg());
        return;
    }
    out->http_status = r.status;
    if (!classify_status(PROVIDER_SHOPIFY, &r, out)) {
        json_t *doc = r.body ? json_loadb(r.body, r.len, 0, NULL) : NULL;
        json_t *data = json_object_get(doc, "data");
        json_t *shop_o = json_object_get(data, "shop");
        json_t *scopes =
            json_object_get(json_object_get(data, "currentAppInstallation"), "accessScopes");
        if (!json_is_object(shop_o) || !json_is_array(scopes)) {
            json_t *errs = json_object_get(doc, "errors");
            RESULT(out, PROVIDER_VERIFY_FAILED,
                   "Shopify's answer did not hold the shop and its access scopes%s.",
                   json_array_size(errs) ? " (it reported GraphQL errors)" : "");
        } else {
            copy_str(out->account_name, sizeof out->account_name, json_object_get(shop_o, "name"));
            copy_str(out->account_id, sizeof out->account_id,
                     json_object_get(shop_o, "myshopifyDomain"));
            judge_scopes(scopes, out);
        }
        json_decref(doc);
    }
    free(r.body);
}

static void verify_bearer(const struct call *base, const char *path,
                          struct provider_verify_result *out)
{
    enum provider p = base->p;
    const char *who = display_name(p);
    struct call c = *base;
    c.method = "GET";
    c.path = path;
    c.body = NULL;
    c.auth_name = "Authorization: Bearer ";
    struct reply r;
    int rc = provider_call(&c, &r, 0);
    if (rc == CAD_ENET) {
        RESULT(out, PROVIDER_VERIFY_UNREACHABLE,
               "%s could not be reached; this says nothing about the key. Try again later. (%s)",
               who, cad_errmsg());
        return;
    }
    if (rc != CAD_OK) {
        RESULT(out, PROVIDER_VERIFY_FAILED, "The key was not checked: %s", cad_errmsg());
        return;
    }
    out->http_status = r.status;
    if (!classify_status(p, &r, out)) {
        json_t *doc = r.body ? json_loadb(r.body, r.len, 0, NULL) : NULL;
        if (p == PROVIDER_POSTSCRIPT) {
            copy_str(out->account_id, sizeof out->account_id, json_object_get(doc, "resource_id"));
            copy_str(out->account_name, sizeof out->account_name,
                     json_object_get(doc, "resource_name"));
            const char *type = json_string_value(json_object_get(doc, "resource_type"));
            if (type && strcmp(type, "shop") != 0)
                snprintf(out->warning, sizeof out->warning,
                         "This key belongs to a Postscript %s, not a shop.", type);
        } else {
            copy_str(out->account_id, sizeof out->account_id, json_object_get(doc, "companyId"));
            copy_str(out->account_name, sizeof out->account_name,
                     json_object_get(doc, "companyName"));
        }
        if (!out->account_id[0] && !out->account_name[0])
            RESULT(out, PROVIDER_VERIFY_FAILED,
                   "%s accepted the key but its answer did not name the account.", who);
        else
            RESULT(out, PROVIDER_VERIFY_OK, "Verified: %s (%s %s)", out->account_name, who,
                   out->account_id);
        json_decref(doc);
    }
    free(r.body);
}

int provider_verify(store *st, const struct provider_config *cfg, enum provider p,
                    const char *tenant_id, const char *actor, const char *shop_domain,
                    const cad_secret *secret, struct provider_verify_result *out)
{
    memset(out, 0, sizeof *out);
    struct provider_config own;
    if (!cfg) {
        if (provider_config_from_env(p, &own) != CAD_OK) {
            RESULT(out, PROVIDER_VERIFY_FAILED, "%s", cad_errmsg());
            return CAD_EINVAL;
        }
        cfg = &own;
    }
    struct provider_key_result k;
    provider_key_check(p, (const char *)secret_data(secret), secret_len(secret), &k);
    if (k.verdict != PROVIDER_KEY_OK) {
        RESULT(out, PROVIDER_VERIFY_BAD_FORMAT, "%s", k.message);
        return CAD_EINVAL;
    }
    if (p == PROVIDER_SHOPIFY) {
        struct shopify_domain_result d;
        if (shopify_domain_normalise(shop_domain, &d) != CAD_OK) {
            RESULT(out, PROVIDER_VERIFY_BAD_FORMAT, "%s", d.message);
            return CAD_EINVAL;
        }
        snprintf(out->account_id, sizeof out->account_id, "%s", d.domain);
    }
    cad_secret *key = NULL;
    if (secret_from(&key, secret_data(secret) + k.start, k.len) != CAD_OK) {
        RESULT(out, PROVIDER_VERIFY_FAILED, "out of memory");
        return CAD_ENOMEM;
    }
    struct call c = {.st = st,
                     .p = p,
                     .tenant_id = tenant_id,
                     .actor = actor,
                     .base = cfg->base_url,
                     .secret = key,
                     .cfg = cfg};
    if (p == PROVIDER_SHOPIFY) {
        char shop[128];
        snprintf(shop, sizeof shop, "%s", out->account_id);
        out->account_id[0] = '\0';
        verify_shopify(&c, shop, out);
    } else {
        verify_bearer(&c, p == PROVIDER_POSTSCRIPT ? "/api/v2/me" : "/v1/me", out);
    }
    secret_free(key);
    return status_rc(out->status);
}

char *provider_verify_scopes_json(const struct provider_verify_result *r)
{
    json_t *o = json_object();
    json_t *scopes = json_array(), *missing = json_array();
    if (!o || !scopes || !missing) {
        json_decref(o);
        json_decref(scopes);
        json_decref(missing);
        return NULL;
    }
    const char *lists[2] = {r->scopes, r->missing};
    json_t *arrays[2] = {scopes, missing};
    for (int k = 0; k < 2; k++) {
        const char *s = lists[k];
        while (*s) {
            size_t n = strcspn(s, ",");
            json_array_append_new(arrays[k], json_stringn(s, n));
            s += n;
            if (*s == ',')
                s++;
        }
    }
    json_object_set_new(o, "scopes", scopes);
    json_object_set_new(o, "missing", missing);
    if (r->warning[0])
        json_object_set_new(o, "warning", json_string(r->warning));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}
