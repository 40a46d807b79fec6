/*
 * Reading a shop's whole catalog through Shopify's Admin GraphQL API (catalog.h).
 *
 * Design choices:
 * - Every GraphQL request goes through providers' shopify_graphql_call (the token stays in
 *   cad_secret buffers, the call is audited write-ahead as "shopify.call"); retries, throttling
 *   and the 401 re-check are decided here, one request at a time.
 * - The cost-based throttle is tracked from extensions.cost.throttleStatus of every answer: the
 *   bucket refills at restoreRate points a second, so before a query whose expected cost (the
 *   requestedQueryCost of the last query of the same shape) exceeds what should be available
 *   now, the reader sleeps for the difference instead of collecting a THROTTLED answer.
 * - Bulk mode streams the result file through curl's write callback straight into the JSONL
 *   assembler: memory does not grow with the shop. The result URL is pre-signed, so the token is
 *   never sent to it; it must be https (or http to loopback, for the stand-ins).
 * - Auto mode reads the first page in paged mode and hands it over only when it is the last one
 *   and every product on it came whole (a page carries 100 variants and 100 collections of a
 *   product; Shopify allows 2,048 variants); otherwise it discards it and runs a bulk operation,
 *   so nothing is handed over twice.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "catalog/catalog.h"
#include "catalog/catalog_int.h"
#include "common/err.h"
#include "common/util.h"
#include "providers/providers.h"

#define REPLY_MAX     (32u << 20) /* one GraphQL answer (a page of 250 products) */
#define RETRIES       4           /* for 429, 5xx and no answer */
#define THROTTLES_MAX 20          /* THROTTLED answers to one query before giving up */
#define POLL_FIRST_MS 50
#define POLL_CAP_MS   1000
#define DOWNLOAD_MS   (30L * 60 * 1000)

struct reader {
    store *st;
    const char *tenant, *actor, *shop;
    const cad_secret *token;
    struct provider_config cfg;
    struct shop_read_stats *stats;
    /* the throttle bucket as last reported */
    bool known;
    double max_avail, avail, restore;
    int64_t seen_ms;
    bool max_cost_exceeded; /* the last query cost more than any bucket allows */
};

static void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void note_throttle(struct reader *r, json_t *doc)
{
    json_t *ts = json_object_get(json_object_get(json_object_get(doc, "extensions"), "cost"),
                                 "throttleStatus");
    json_t *mx = json_object_get(ts, "maximumAvailable");
    json_t *cur = json_object_get(ts, "currentlyAvailable");
    json_t *rr = json_object_get(ts, "restoreRate");
    if (!json_is_number(mx) || !json_is_number(cur) || !json_is_number(rr) ||
        json_number_value(rr) <= 0)
        return;
    r->known = true;
    r->max_avail = json_number_value(mx);
    r->avail = json_number_value(cur);
    r->restore = json_number_value(rr);
    r->seen_ms = time_mono_ms();
}

static double requested_cost(json_t *doc)
{
    json_t *c = json_object_get(json_object_get(json_object_get(doc, "extensions"), "cost"),
                                "requestedQueryCost");
    return json_is_number(c) ? json_number_value(c) : 0;
}

static void wait_for(struct reader *r, int64_t ms)
{
    r->stats->throttled_waits++;
    r->stats->throttle_wait_ms += ms;
    sleep_ms(ms);
}

/* Waits until `cost` points should be available. */
static void throttle_before(struct reader *r, double cost)
{
    if (!r->known || cost <= 0)
        return;
    if (cost > r->max_avail)
        cost = r->max_avail;
    double now = r->avail + (double)(time_mono_ms() - r->seen_ms) / 1000.0 * r->restore;
    if (now >= cost)
        return;
    wait_for(r, (int64_t)((cost - now) / r->restore * 1000.0) + 1);
}

static bool has_error_code(json_t *errors, const char *code)
{
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        const char *c =
            json_string_value(json_object_get(json_object_get(e, "extensions"), "code"));
        if (c && strcmp(c, code) == 0)
            return true;
    }
    return false;
}

/* The first GraphQL error's message, cut short (Shopify's own text, never a secret). */
static const char *first_error(json_t *errors)
{
    const char *m = json_string_value(json_object_get(json_array_get(errors, 0), "message"));
    if (!m)
        m = json_string_value(errors);
    return m ? m : "no message";
}

static int confirm_auth(struct reader *r, int status)
{
    struct provider_reply rep;
    r->stats->queries++;
    int rc = shopify_graphql_call(r->st, &r->cfg, r->tenant, r->actor, r->shop, r->token,
                                  "{\"query\":\"{ shop { name } }\"}", 0, &rep);
    free(rep.body);
    if (rc != CAD_OK)
        return rc;
    if (rep.status == 401 || rep.status == 403)
        return cad_fail(CAD_EAUTH,
                        "Shopify rejected the access token (HTTP %d, confirmed by a second "
                        "request): it was revoked or the app was uninstalled. Install the app "
                        "again and enter the new token.",
                        status);
    return CAD_OK;
}

/* One GraphQL query with retries, throttling and the 401 re-check. *data gets the answer's
 * "data" (caller decrefs), *cost its requestedQueryCost. */
static int gql(struct reader *r, const char *body, double expected, json_t **data, double *cost)
{
    *data = NULL;
    r->max_cost_exceeded = false;
    int transient = 0, throttled = 0, auth = 0;
    for (;;) {
        throttle_before(r, expected);
        struct provider_reply rep;
        r->stats->queries++;
        int rc = shopify_graphql_call(r->st, &r->cfg, r->tenant, r->actor, r->shop, r->token, body,
                                      REPLY_MAX, &rep);
        if (rc == CAD_ENET) {
            if (++transient > RETRIES)
                return rc;
            sleep_ms(200L << transient);
            continue;
        }
        if (rc != CAD_OK)
            return rc;
        r->stats->bytes += (long long)rep.len;
        int s = rep.status;
        if (s == 401 || s == 403) {
            free(rep.body);
            if ((rc = confirm_auth(r, s)) != CAD_OK)
                return rc;
            if (++auth > 1)
                return cad_fail(CAD_EREMOTE,
                                "Shopify refused the catalog query (HTTP %d) but accepted the "
                                "token for a shop query: the token may lack read_products.",
                                s);
            continue;
        }
        if (s == 429 || s >= 500) {
            free(rep.body);
            if (++transient > RETRIES)
                return cad_fail(CAD_ENET, "Shopify kept failing (HTTP %d); try again later", s);
            sleep_ms(200L << transient);
            continue;
        }
        if (s != 200 || rep.too_big) {
            free(rep.body);
            if (s == 404)
                return cad_fail(CAD_ENOTFOUND, "Shopify has no store at %s (HTTP 404)", r->shop);
            if (s == 402 || s == 423)
                return cad_fail(CAD_EREMOTE, "the store is frozen, locked or unpaid (HTTP %d)", s);
            return cad_fail(CAD_EREMOTE, "Shopify answered %s",
                            rep.too_big ? "more than 32 MiB" : "an unexpected HTTP status");
        }
        json_t *doc = rep.body ? json_loadb(rep.body, rep.len, 0, NULL) : NULL;
        free(rep.body);
        if (!json_is_object(doc)) {
            json_decref(doc);
            return cad_fail(CAD_EREMOTE, "Shopify's answer was not a JSON object");
        }
        note_throttle(r, doc);
        *cost = requested_cost(doc);
        json_t *errors = json_object_get(doc, "errors");
        if (errors && has_error_code(errors, "THROTTLED")) {
            double need = *cost > 0 ? *cost : expected;
            json_decref(doc);
            if (++throttled > THROTTLES_MAX)
                return cad_fail(CAD_ENET, "Shopify throttled the same query %d times", throttled);
            if (r->known && need > r->avail)
                wait_for(r, (int64_t)((need - r->avail) / r->restore * 1000.0) + 1);
            else
                wait_for(r, 1000);
            continue;
        }
        if (errors && has_error_code(errors, "MAX_COST_EXCEEDED"))
            r->max_cost_exceeded = true;
        json_t *d = json_object_get(doc, "data");
        if (errors || !json_is_object(d)) {
            rc = cad_fail(CAD_EREMOTE, "Shopify reported an error: %.200s",
                          errors ? first_error(errors) : "no data in the answer");
            json_decref(doc);
            return rc;
        }
        *data = json_incref(d);
        json_decref(doc);
        return CAD_OK;
    }
}

/* ---- paged ---- */

static const char paged_query[] =
    "query($first: Int!, $after: String) { products(first: $first, after: $after) { pageInfo { "
    "hasNextPage endCursor } nodes { id title handle descriptionHtml status onlineStoreUrl "
    "updatedAt featuredMedia { preview { image { url } } } variants(first: 100) { pageInfo { "
    "hasNextPage } nodes { id title sku price inventoryQuantity inventoryPolicy image { url } } } "
    "collections(first: 100) { pageInfo { hasNextPage } nodes { id title } } } } }";

/* Feeds one node and its children to the assembler. */
static int feed_node(struct shop_jsonl *j, json_t *node)
{
    json_t *p = json_deep_copy(node);
    if (!json_is_object(p)) {
        json_decref(p);
        return cad_fail(CAD_EREMOTE, "a product in Shopify's answer is not an object");
    }
    json_t *vars = json_incref(json_object_get(p, "variants"));
    json_t *cols = json_incref(json_object_get(p, "collections"));
    json_object_del(p, "variants");
    json_object_del(p, "collections");
    int rc = shop_jsonl_take(j, p);
    json_t *conns[2] = {vars, cols};
    for (int k = 0; rc == CAD_OK && k < 2; k++) {
        if (json_is_true(json_object_get(json_object_get(conns[k], "pageInfo"), "hasNextPage"))) {
            rc = cad_fail(CAD_EREMOTE,
                          "product %s has more than 100 %s, more than one page can carry: read "
                          "the catalog in bulk mode",
                          json_string_value(json_object_get(p, "id")),
                          k == 0 ? "variants" : "collections");
            break;
        }
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(conns[k], "nodes"), i, c)
        {
            json_t *child = json_deep_copy(c);
            if (!json_is_object(child) ||
                json_object_set(child, "__parentId", json_object_get(p, "id")) != 0) {
                json_decref(child);
                rc = cad_fail(CAD_EREMOTE, "a variant or collection in Shopify's answer is not "
                                           "an object");
                break;
            }
            rc = shop_jsonl_take(j, child);
            json_decref(child);
            if (rc != CAD_OK)
                break;
        }
    }
    json_decref(vars);
    json_decref(cols);
    json_decref(p);
    return rc;
}

/* Whether a product on a page has more variants or collections than the page carries: paged
 * reading cannot take it, bulk reading (no per-product cap) can. */
static bool needs_bulk(json_t *nodes)
{
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        static const char *const conns[] = {"variants", "collections"};
        for (size_t k = 0; k < CAD_ARRAY_LEN(conns); k++)
            if (json_is_true(json_object_get(
                    json_object_get(json_object_get(n, conns[k]), "pageInfo"), "hasNextPage")))
                return true;
    }
    return false;
}

/* *more: in auto mode, the shop has more than one page, or a product with more variants or
 * collections than a page carries (nothing was handed over): it is read in bulk. */
static int read_paged(struct reader *r, struct shop_jsonl *j, bool probe, bool *more)
{
    *more = false;
    long page = SHOP_PAGED_MAX;
    double expected = 0;
    char *after = NULL;
    int rc = CAD_OK;
    for (;;) {
        json_t *req = json_pack("{s:s,s:{s:I,s:s?}}", "query", paged_query, "variables", "first",
                                (json_int_t)page, "after", after);
        char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
        json_decref(req);
        if (!body) {
            rc = cad_fail(CAD_ENOMEM, "out of memory");
            break;
        }
        json_t *data = NULL;
        double cost = 0;
        rc = gql(r, body, expected, &data, &cost);
        free(body);
        if (rc != CAD_OK && r->max_cost_exceeded && page > 1) {
            page /= 2;
            expected = 0;
            continue;
        }
        if (rc != CAD_OK)
            break;
        if (r->known && cost > r->max_avail && page > 1) {
            /* could never run again at this size; next time ask for less */
            page /= 2;
            cost /= 2;
        }
        expected = cost;
        json_t *prods = json_object_get(data, "products");
        json_t *nodes = json_object_get(prods, "nodes");
        json_t *info = json_object_get(prods, "pageInfo");
        bool next = json_is_true(json_object_get(info, "hasNextPage"));
        const char *cursor = json_string_value(json_object_get(info, "endCursor"));
        if (!json_is_array(nodes) || (next && !cursor)) {
            json_decref(data);
            rc = cad_fail(CAD_EREMOTE, "Shopify's products page had no nodes or no cursor");
            break;
        }
        if (probe && (next || needs_bulk(nodes))) {
            json_decref(data);
            *more = true;
            break;
        }
        probe = false;
        size_t i;
        json_t *n;
        json_array_foreach(nodes, i, n)
        {
            if ((rc = feed_node(j, n)) != CAD_OK)
                break;
        }
        free(after);
        after = next && rc == CAD_OK ? strdup(cursor) : NULL;
        json_decref(data);
        if (rc != CAD_OK || !next)
            break;
        if (!after) {
            rc = cad_fail(CAD_ENOMEM, "out of memory");
            break;
        }
    }
    free(after);
    return rc != CAD_OK || *more ? rc : shop_jsonl_finish(j);
}

/* ---- bulk ---- */

static const char bulk_query[] =
    "mutation { bulkOperationRunQuery(groupObjects: true, query: \"\"\"{ products { edges { node "
    "{ id title handle descriptionHtml status onlineStoreUrl updatedAt featuredMedia { preview { "
    "image { url } } } variants { edges { node { id title sku price inventoryQuantity "
    "inventoryPolicy image { url } } } } collections { edges { node { id title } } } } } } }"
    "\"\"\") { bulkOperation { id status } userErrors { field message code } } }";

static const char poll_query[] =
    "query($id: ID!) { node(id: $id) { ... on BulkOperation { id status errorCode objectCount "
    "url } } }";

static long env_ms(const char *name, long dflt, long lo, long hi)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    return errno || *end || x < lo || x > hi ? dflt : x;
}

struct download {
    struct shop_jsonl *j;
    struct shop_read_stats *stats;
    int rc;
};

static size_t on_jsonl(char *p, size_t size, size_t nmemb, void *ctx)
{
    struct download *d = ctx;
    size_t n = size * nmemb;
    d->stats->bytes += (long long)n;
    d->rc = shop_jsonl_feed(d->j, p, n);
    return d->rc == CAD_OK ? n : 0;
}

/* The result file: https (or http to loopback) only, no token, streamed into the assembler. */
static int download(struct reader *r, const char *url, struct shop_jsonl *j)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *path = NULL;
    int rc = CAD_OK;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
        rc = cad_fail(CAD_EREMOTE, "Shopify's bulk result URL is not a URL");
    else if (strcmp(scheme, "https") != 0 &&
             !(strcmp(scheme, "http") == 0 && provider_host_is_loopback(host)))
        rc = cad_fail(CAD_EREMOTE, "Shopify's bulk result URL is not https; it was not fetched");
    char endpoint[512];
    snprintf(endpoint, sizeof endpoint, "%s", path ? path : "/");
    curl_free(scheme);
    curl_free(host);
    curl_free(path);
    curl_url_cleanup(u);
    if (rc != CAD_OK)
        return rc;

    int64_t seq = 0;
    if ((rc = audit_call_begin(r->st, r->tenant, r->actor, "shopify.call", "GET", endpoint, NULL, 0,
                               &seq)) != CAD_OK)
        return rc;
    CURL *e = curl_easy_init();
    if (!e) {
        audit_call_end(r->st, seq, 0, 0, NULL, "not sent: curl_easy_init failed");
        return cad_fail(CAD_ENOMEM, "out of memory");
    }
    struct download d = {.j = j, .stats = r->stats, .rc = CAD_OK};
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, r->cfg.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     env_ms("CADENCE_SHOPIFY_DOWNLOAD_TIMEOUT_MS", DOWNLOAD_MS, 100, 86400000L));
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_jsonl);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &d);
    int64_t t0 = time_mono_ms();
    CURLcode cc = curl_easy_perform(e);
    int64_t dur = time_mono_ms() - t0;
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    if (d.rc != CAD_OK) {
        char detail[320];
        snprintf(detail, sizeof detail, "result not read: %s", shop_jsonl_error(j));
        audit_call_end(r->st, seq, (int)status, dur, NULL, detail);
        return d.rc == CAD_EINVAL
                   ? cad_fail(CAD_EINVAL, "the Shopify bulk result is malformed at %s",
                              shop_jsonl_error(j))
                   : d.rc;
    }
    if (cc != CURLE_OK) {
        char detail[CURL_ERROR_SIZE + 32];
        snprintf(detail, sizeof detail, "%s: %s", status ? "failed" : "no response",
                 errbuf[0] ? errbuf : curl_easy_strerror(cc));
        audit_call_end(r->st, seq, (int)status, dur, NULL, detail);
        return cad_fail(CAD_ENET, "the bulk result could not be downloaded (%s)",
                        errbuf[0] ? errbuf : curl_easy_strerror(cc));
    }
    if ((rc = audit_call_end(r->st, seq, (int)status, dur, NULL, NULL)) != CAD_OK)
        return rc;
    return shop_jsonl_finish(j);
}

static int read_bulk(struct reader *r, struct shop_jsonl *j)
{
    json_t *req = json_pack("{s:s}", "query", bulk_query);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body)
        return cad_fail(CAD_ENOMEM, "out of memory");
    json_t *data = NULL;
    double cost = 0;
    int rc = gql(r, body, 10, &data, &cost);
    free(body);
    if (rc != CAD_OK)
        return rc;
    json_t *run = json_object_get(data, "bulkOperationRunQuery");
    json_t *uerr = json_object_get(run, "userErrors");
    const char *id =
        json_string_value(json_object_get(json_object_get(run, "bulkOperation"), "id"));
    if (json_array_size(uerr) > 0 || !id) {
        const char *code = json_string_value(json_object_get(json_array_get(uerr, 0), "code"));
        if (code && strcmp(code, "OPERATION_IN_PROGRESS") == 0)
            rc = cad_fail(CAD_ESTATE, "another bulk query is running on this shop (another app "
                                      "or an earlier run); try again when it has finished");
        else
            rc = cad_fail(CAD_EREMOTE, "Shopify did not start the bulk query: %.200s",
                          json_array_size(uerr) ? first_error(uerr) : "no operation id");
        json_decref(data);
        return rc;
    }
    char op[128];
    snprintf(op, sizeof op, "%s", id);
    json_decref(data);

    long cap = env_ms("CADENCE_SHOPIFY_POLL_MS", POLL_CAP_MS, 1, POLL_CAP_MS);
    long delay = POLL_FIRST_MS < cap ? POLL_FIRST_MS : cap;
    double poll_cost = 1;
    int64_t t0 = time_mono_ms();
    for (;;) {
        sleep_ms(delay);
        delay = delay * 2 > cap ? cap : delay * 2;
        req = json_pack("{s:s,s:{s:s}}", "query", poll_query, "variables", "id", op);
        body = req ? json_dumps(req, JSON_COMPACT) : NULL;
        json_decref(req);
        if (!body)
            return cad_fail(CAD_ENOMEM, "out of memory");
        rc = gql(r, body, poll_cost, &data, &poll_cost);
        free(body);
        if (rc != CAD_OK)
            return rc;
        json_t *node = json_object_get(data, "node");
        const char *st = json_string_value(json_object_get(node, "status"));
        if (!st) {
            json_decref(data);
            return cad_fail(CAD_EREMOTE, "Shopify's answer about the bulk query had no status");
        }
        if (strcmp(st, "COMPLETED") == 0) {
            r->stats->bulk_wait_ms = time_mono_ms() - t0;
            const char *url = json_string_value(json_object_get(node, "url"));
            /* no url: the query matched nothing */
            rc = url ? download(r, url, j) : shop_jsonl_finish(j);
            json_decref(data);
            return rc;
        }
        if (strcmp(st, "CREATED") != 0 && strcmp(st, "RUNNING") != 0) {
            const char *code = json_string_value(json_object_get(node, "errorCode"));
            rc = cad_fail(CAD_EREMOTE, "Shopify's bulk query ended %s%s%s", st,
                          code ? " with " : "", code ? code : "");
            r->stats->bulk_wait_ms = time_mono_ms() - t0;
            json_decref(data);
            return rc;
        }
        json_decref(data);
    }
}

/* ---- the entry point ---- */

struct counting {
    shop_product_fn fn;
    void *ctx;
    struct shop_read_stats *stats;
};

static int count_product(void *ctx, const struct shop_product *p)
{
    struct counting *c = ctx;
    c->stats->products++;
    c->stats->variants += (long)p->n_variants;
    return c->fn(c->ctx, p);
}

int shop_read_catalog(store *st, const char *tenant_id, const char *actor, const char *shop_domain,
                      const cad_secret *token, enum shop_read_mode mode, shop_product_fn fn,
                      void *ctx, struct shop_read_stats *stats)
{
    struct shop_read_stats own;
    if (!stats)
        stats = &own;
    memset(stats, 0, sizeof *stats);
    if (!fn || !token || !shop_domain || !*shop_domain)
        return cad_fail(CAD_EINVAL,
                        "shop_read_catalog needs a shop domain, a token and a callback");
    struct reader r = {.st = st,
                       .tenant = tenant_id,
                       .actor = actor,
                       .shop = shop_domain,
                       .token = token,
                       .stats = stats};
    int rc = provider_config_from_env(PROVIDER_SHOPIFY, &r.cfg);
    if (rc != CAD_OK)
        return rc;
    struct counting c = {.fn = fn, .ctx = ctx, .stats = stats};
    struct shop_jsonl *j = shop_jsonl_new(count_product, &c);
    if (!j)
        return cad_fail(CAD_ENOMEM, "out of memory");
    if (mode == SHOP_READ_BULK) {
        rc = read_bulk(&r, j);
    } else {
        shop_jsonl_objects(j);
        bool more = false;
        rc = read_paged(&r, j, mode == SHOP_READ_AUTO, &more);
        if (rc == CAD_OK && more) {
            shop_jsonl_free(j);
            j = shop_jsonl_new(count_product, &c);
            rc = j ? read_bulk(&r, j) : cad_fail(CAD_ENOMEM, "out of memory");
        }
    }
    shop_jsonl_free(j);
    return rc;
}
