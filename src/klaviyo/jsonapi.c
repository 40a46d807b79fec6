/*
 * JSON:API pieces of the Klaviyo client that need no network: error documents, filter clauses,
 * query strings, the page-size table and the same-origin check for links.next.
 *
 * Everything read here comes from outside (Klaviyo, or whatever answered in its place), so the
 * parsers accept any member they do not know, copy with bounds, and never trust a type.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "klaviyo/client.h"

static void copy_member(json_t *obj, const char *name, char *out, size_t outsz)
{
    const char *s = json_string_value(json_object_get(obj, name));
    snprintf(out, outsz, "%s", s ? s : "");
}

int klaviyo_error_parse(const char *body, size_t len, int http_status, struct klaviyo_error *out,
                        size_t *n_errors)
{
    memset(out, 0, sizeof *out);
    out->http_status = http_status;
    if (n_errors)
        *n_errors = 0;
    if (!body || len == 0)
        return cad_fail(CAD_EINVAL, "the response has no body");
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        return cad_fail(CAD_EINVAL, "the response is not JSON");
    json_t *errors = json_object_get(doc, "errors");
    json_t *first = json_array_get(errors, 0);
    if (!json_is_object(first)) {
        json_decref(doc);
        return cad_fail(CAD_EINVAL, "the response is not a JSON:API error document");
    }
    copy_member(first, "id", out->id, sizeof out->id);
    copy_member(first, "code", out->code, sizeof out->code);
    copy_member(first, "title", out->title, sizeof out->title);
    copy_member(first, "detail", out->detail, sizeof out->detail);
    json_t *source = json_object_get(first, "source");
    if (json_is_object(source)) {
        copy_member(source, "pointer", out->source_pointer, sizeof out->source_pointer);
        copy_member(source, "parameter", out->source_parameter, sizeof out->source_parameter);
    }
    if (n_errors)
        *n_errors = json_array_size(errors);
    json_decref(doc);
    return CAD_OK;
}

/* ---- filters ---- */

struct sbuf {
    char *p;
    size_t cap, len;
    bool overflow;
};

static void sb_putc(struct sbuf *b, char c)
{
    if (b->len + 1 < b->cap)
        b->p[b->len++] = c;
    else
        b->overflow = true;
    if (b->cap)
        b->p[b->len < b->cap ? b->len : b->cap - 1] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
    while (*s)
        sb_putc(b, *s++);
}

static int check_field(const char *field)
{
    if (!field || !*field)
        return cad_fail(CAD_EINVAL, "a filter needs a field name");
    for (const char *p = field; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return cad_fail(CAD_EINVAL,
                            "a filter field name may hold only letters, digits, '.', '_' and '-'");
    return CAD_OK;
}

static int quote_value(struct sbuf *b, const char *v)
{
    if (!v)
        return cad_fail(CAD_EINVAL, "a filter value is missing");
    sb_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return cad_fail(CAD_EINVAL, "a filter value may not hold control characters");
        if (*p == '"' || *p == '\\')
            sb_putc(b, '\\');
        sb_putc(b, (char)*p);
    }
    sb_putc(b, '"');
    return CAD_OK;
}

static int finish(struct sbuf *b)
{
    if (b->overflow)
        return cad_fail(CAD_EINVAL, "the filter is longer than %zu bytes", b->cap ? b->cap - 1 : 0);
    return CAD_OK;
}

int klaviyo_filter_op(char *out, size_t outsz, const char *op, const char *field, const char *value)
{
    struct sbuf b = {out, outsz, 0, false};
    if (outsz)
        out[0] = '\0';
    if (!op || !*op || strspn(op, "abcdefghijklmnopqrstuvwxyz-") != strlen(op))
        return cad_fail(CAD_EINVAL, "unknown filter operator");
    int rc = check_field(field);
    if (rc)
        return rc;
    sb_puts(&b, op);
    sb_putc(&b, '(');
    sb_puts(&b, field);
    sb_putc(&b, ',');
    if ((rc = quote_value(&b, value)))
        return rc;
    sb_putc(&b, ')');
    return finish(&b);
}

int klaviyo_filter_equals(char *out, size_t outsz, const char *field, const char *value)
{
    return klaviyo_filter_op(out, outsz, "equals", field, value);
}

int klaviyo_filter_any(char *out, size_t outsz, const char *field, const char *const *values,
                       size_t n)
{
    struct sbuf b = {out, outsz, 0, false};
    if (outsz)
        out[0] = '\0';
    int rc = check_field(field);
    if (rc)
        return rc;
    if (n == 0)
        return cad_fail(CAD_EINVAL, "any() needs at least one value");
    sb_puts(&b, "any(");
    sb_puts(&b, field);
    sb_puts(&b, ",[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_putc(&b, ',');
        if ((rc = quote_value(&b, values[i])))
            return rc;
    }
    sb_puts(&b, "])");
    return finish(&b);
}

/* ---- query strings ---- */

static void pct_encode(struct sbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            sb_putc(b, (char)*p);
        } else {
            sb_putc(b, '%');
            sb_putc(b, hex[*p >> 4]);
            sb_putc(b, hex[*p & 15]);
        }
    }
}

int klaviyo_target(char *out, size_t outsz, const char *path, const char *const *kv)
{
    struct sbuf b = {out, outsz, 0, false};
    if (outsz)
        out[0] = '\0';
    if (!path || path[0] != '/' || strpbrk(path, "?# \t\r\n"))
        return cad_fail(CAD_EINVAL, "a request path starts with / and holds no query");
    sb_puts(&b, path);
    for (size_t i = 0; kv && kv[i]; i += 2) {
        if (!kv[i + 1])
            return cad_fail(CAD_EINVAL, "query parameter \"%s\" has no value", kv[i]);
        sb_putc(&b, i ? '&' : '?');
        pct_encode(&b, kv[i]);
        sb_putc(&b, '=');
        pct_encode(&b, kv[i + 1]);
    }
    if (b.overflow)
        return cad_fail(CAD_EINVAL, "the request target is longer than %zu bytes", outsz - 1);
    return CAD_OK;
}

/* ---- page sizes ---- */

/* page[size] maxima of the collections Cadence reads, from Klaviyo's OpenAPI document (a unit
 * test checks every row against it). Endpoints without page[size] are listed with 0 so that a
 * caller asking about them gets a deliberate answer rather than a default. */
static const struct {
    const char *path;
    int max;
} page_sizes[] = {
    {"/api/templates", 10},
    {"/api/segments", 10},
    {"/api/lists", 10},
    {"/api/flows", 50},
    {"/api/tags", 50},
    {"/api/tag-groups", 25},
    {"/api/forms", 100},
    {"/api/images", 100},
    {"/api/template-universal-content", 100},
    {"/api/web-feeds", 20},
    {"/api/campaigns", 100},
    {"/api/catalog-items", 100},
    {"/api/catalog-variants", 100},
    {"/api/catalog-categories", 100},
    {"/api/coupons", 100},
    {"/api/coupon-codes", 100},
    {"/api/profiles", 100},
    {"/api/events", 1000},
    {"/api/profile-bulk-import-jobs", 100},
    {"/api/webhooks", 0},
    {"/api/metrics", 0},
    {"/api/accounts", 0},
};

int klaviyo_page_size_max(const char *path)
{
    if (!path)
        return 0;
    size_t n = strcspn(path, "?#");
    for (size_t i = 0; i < sizeof page_sizes / sizeof page_sizes[0]; i++)
        if (strlen(page_sizes[i].path) == n && strncmp(page_sizes[i].path, path, n) == 0)
            return page_sizes[i].max;
    return 0;
}

/* ---- origins ---- */

struct origin {
    char *scheme, *host, *port, *user;
};

static int origin_parse(const char *url, struct origin *o)
{
    memset(o, 0, sizeof *o);
    CURLU *u = curl_url();
    if (!u)
        return CAD_ENOMEM;
    int rc = CAD_EINVAL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &o->scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &o->host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &o->port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        curl_url_get(u, CURLUPART_USER, &o->user, 0);
        rc = CAD_OK;
    }
    curl_url_cleanup(u);
    return rc;
}

static void origin_free(struct origin *o)
{
    curl_free(o->scheme);
    curl_free(o->host);
    curl_free(o->port);
    curl_free(o->user);
}

bool klaviyo_same_origin(const char *base_url, const char *url)
{
    if (!base_url || !url)
        return false;
    /* Refuse what a URL parser might read differently from another: spaces, control characters,
     * backslashes, and anything that is not an absolute http(s) URL. */
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= 0x20 || *p == 0x7f || *p == '\\')
            return false;
    if (strncasecmp(url, "https://", 8) != 0 && strncasecmp(url, "http://", 7) != 0)
        return false;
    /* The host must follow "//" at once: parsers differ on "https:///host" (found by fuzzing). */
    if (strstr(url, "://")[3] == '/')
        return false;
    struct origin a, b;
    int ra = origin_parse(base_url, &a), rb = origin_parse(url, &b);
    bool same = ra == CAD_OK && rb == CAD_OK && !b.user && strcasecmp(a.scheme, b.scheme) == 0 &&
                strcasecmp(a.host, b.host) == 0 && strcmp(a.port, b.port) == 0;
    origin_free(&a);
    origin_free(&b);
    return same;
}
