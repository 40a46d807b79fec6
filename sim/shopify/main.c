/*
 * cadence-shopify-sim: a stand-in for one Shopify store's Admin GraphQL API, for tests.
 *
 *   cadence-shopify-sim --listen 127.0.0.1:PORT --shop NAME --token TOKEN
 *                       [--scopes read_products,read_inventory] [--products N]
 *
 * The command line is a contract other suites rely on. It binds 127.0.0.1 only, prints the one
 * line "listening on http://127.0.0.1:PORT" and serves until SIGTERM or SIGINT.
 *
 * POST /admin/api/<version>/graphql.json with X-Shopify-Access-Token (anything else: 401, as
 * Shopify answers a wrong token). The query is recognised by what it asks for, not parsed:
 *   - products(first: N, after: "CURSOR"): N generated products with 3 variants each, as a
 *     connection with edges { cursor node }, nodes and pageInfo { hasNextPage endCursor };
 *     the arguments may also come as $first / $after variables.
 *   - anything else: { shop { name myshopifyDomain } currentAppInstallation { accessScopes
 *     { handle } } }.
 * Every answer carries extensions.cost like Shopify's cost-based throttle (a bucket of 2000
 * points restored at 100 points a second); a query costing more than what is available gets
 * the THROTTLED error instead of data. The response shape is fixed, whatever fields the query
 * selects. GET /__sim/calls reports how many GraphQL calls were answered and throttled.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "loopback.h"

#define MAX_BODY      (1u << 20)
#define BUCKET_MAX    2000.0
#define RESTORE_RATE  100.0
#define VARIANTS      3
#define PAGE_MAX      250
#define COST_SHOP     2
#define COST_PER_ITEM (1 + VARIANTS)

static struct {
    pthread_mutex_t lock;
    char shop[128];
    char domain[192];
    const char *token;
    const char *scopes;
    long products;
    double available;
    int64_t refilled_ms;
    long calls, throttled;
} sim = {.lock = PTHREAD_MUTEX_INITIALIZER, .scopes = "read_products,read_inventory"};

struct conn {
    char *buf;
    size_t len;
    bool too_big;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!text)
        return MHD_NO;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    char id[40];
    snprintf(id, sizeof id, "sim-%ld", sim.calls);
    MHD_add_response_header(r, "X-Request-Id", id);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Takes `cost` from the bucket, or reports that it cannot. Called with the lock held. */
static bool bucket_take(int cost)
{
    int64_t now = time_mono_ms();
    sim.available += (double)(now - sim.refilled_ms) / 1000.0 * RESTORE_RATE;
    if (sim.available > BUCKET_MAX)
        sim.available = BUCKET_MAX;
    sim.refilled_ms = now;
    if (sim.available < cost)
        return false;
    sim.available -= cost;
    return true;
}

static json_t *cost_ext(int requested, int actual)
{
    return json_pack("{s:{s:i,s:i,s:{s:f,s:f,s:f}}}", "cost", "requestedQueryCost", requested,
                     "actualQueryCost", actual, "throttleStatus", "maximumAvailable", BUCKET_MAX,
                     "currentlyAvailable", sim.available, "restoreRate", RESTORE_RATE);
}

/* The integer after `name` and ':' in the query text (products(first: 50)), or -1. */
static long query_int(const char *q, const char *name)
{
    const char *p = strstr(q, name);
    if (!p)
        return -1;
    p += strlen(name);
    while (*p == ' ' || *p == ':')
        p++;
    char *end;
    long v = strtol(p, &end, 10);
    return end == p ? -1 : v;
}

/* The quoted string after `name:` (after: "c12"), copied into out; false when absent. */
static bool query_str(const char *q, const char *name, char *out, size_t n)
{
    const char *p = strstr(q, name);
    if (!p)
        return false;
    p += strlen(name);
    while (*p == ' ' || *p == ':')
        p++;
    if (*p != '"')
        return false;
    const char *e = strchr(++p, '"');
    if (!e || (size_t)(e - p) >= n)
        return false;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = '\0';
    return true;
}

static json_t *product(long i)
{
    json_t *variants = json_array();
    for (int k = 1; k <= VARIANTS; k++) {
        char id[64], sku[64], price[32], title[32];
        snprintf(id, sizeof id, "gid://shopify/ProductVariant/%ld", i * 10 + k);
        snprintf(sku, sizeof sku, "SKU-%ld-%d", i, k);
        snprintf(price, sizeof price, "%ld.%02d", 10 + i % 90, k * 5);
        snprintf(title, sizeof title, "%s", k == 1 ? "Small" : k == 2 ? "Medium" : "Large");
        json_array_append_new(variants, json_pack("{s:s,s:s,s:s,s:s,s:i}", "id", id, "title", title,
                                                  "sku", sku, "price", price, "inventoryQuantity",
                                                  (int)(i % 7) * k));
    }
    char id[64], title[64], handle[64], desc[128];
    snprintf(id, sizeof id, "gid://shopify/Product/%ld", i);
    snprintf(title, sizeof title, "Product %ld", i);
    snprintf(handle, sizeof handle, "product-%ld", i);
    snprintf(desc, sizeof desc, "<p>Description of <strong>product %ld</strong>.</p>", i);
    json_t *edges = json_array();
    for (size_t k = 0; k < json_array_size(variants); k++)
        json_array_append_new(edges, json_pack("{s:O}", "node", json_array_get(variants, k)));
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:{s:o,s:o}}", "id", id, "title", title, "handle",
                     handle, "status", i % 10 == 0 ? "DRAFT" : "ACTIVE", "descriptionHtml", desc,
                     "variants", "nodes", variants, "edges", edges);
}

static json_t *products_page(long first, long after)
{
    json_t *edges = json_array(), *nodes = json_array();
    long end = after + first > sim.products ? sim.products : after + first;
    char cursor[32] = "";
    for (long i = after + 1; i <= end; i++) {
        snprintf(cursor, sizeof cursor, "c%ld", i);
        json_t *p = product(i);
        json_array_append(nodes, p);
        json_array_append_new(edges, json_pack("{s:s,s:o}", "cursor", cursor, "node", p));
    }
    return json_pack("{s:{s:o,s:o,s:{s:b,s:s?}}}", "products", "edges", edges, "nodes", nodes,
                     "pageInfo", "hasNextPage",
                     end<sim.products, "endCursor", end> after ? cursor : NULL);
}

static json_t *shop_data(void)
{
    json_t *scopes = json_array();
    const char *s = sim.scopes;
    while (*s) {
        size_t n = strcspn(s, ",");
        if (n)
            json_array_append_new(scopes, json_pack("{s:s%}", "handle", s, n));
        s += n + (s[n] == ',');
    }
    return json_pack("{s:{s:s,s:s},s:{s:o}}", "shop", "name", sim.shop, "myshopifyDomain",
                     sim.domain, "currentAppInstallation", "accessScopes", scopes);
}

static enum MHD_Result graphql(struct MHD_Connection *c, const struct conn *cs)
{
    const char *tok = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Shopify-Access-Token");
    if (!tok || strcmp(tok, sim.token) != 0)
        return reply(c, 401,
                     json_pack("{s:s}", "errors",
                               "[API] Invalid API key or access token (unrecognized login or "
                               "wrong password)"));
    json_t *req = cs->buf ? json_loadb(cs->buf, cs->len, 0, NULL) : NULL;
    const char *q = json_string_value(json_object_get(req, "query"));
    if (!q) {
        json_decref(req);
        return reply(c, 400, json_pack("{s:s}", "errors", "Parameter Missing or Invalid"));
    }
    json_t *vars = json_object_get(req, "variables");
    bool products = strstr(q, "products") != NULL;
    long first = -1, after = 0;
    if (products) {
        first = query_int(q, "first");
        if (first < 0 && json_is_integer(json_object_get(vars, "first")))
            first = (long)json_integer_value(json_object_get(vars, "first"));
        char cur[32];
        const char *vcur = json_string_value(json_object_get(vars, "after"));
        if (query_str(q, "after", cur, sizeof cur) ||
            (vcur && snprintf(cur, sizeof cur, "%s", vcur) < (int)sizeof cur))
            after = cur[0] == 'c' ? strtol(cur + 1, NULL, 10) : 0;
    }
    json_decref(req);
    if (products && (first < 1 || first > PAGE_MAX))
        return reply(c, 200,
                     json_pack("{s:[{s:s}]}", "errors", "message",
                               "The first argument must be between 1 and 250."));
    int cost = products ? COST_SHOP + (int)first * COST_PER_ITEM : COST_SHOP;
    pthread_mutex_lock(&sim.lock);
    sim.calls++;
    json_t *doc;
    if (!bucket_take(cost)) {
        sim.throttled++;
        doc = json_pack("{s:[{s:s,s:{s:s}}],s:o}", "errors", "message", "Throttled", "extensions",
                        "code", "THROTTLED", "extensions", cost_ext(cost, 0));
    } else {
        json_t *data = products ? products_page(first, after) : shop_data();
        int actual = products ? COST_SHOP + (int)json_array_size(json_object_get(
                                                json_object_get(data, "products"), "nodes")) *
                                                COST_PER_ITEM
                              : COST_SHOP;
        sim.available += cost - actual;
        doc = json_pack("{s:o,s:o}", "data", data, "extensions", cost_ext(cost, actual));
    }
    pthread_mutex_unlock(&sim.lock);
    return reply(c, 200, doc);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    struct conn *cs = *con_cls;
    if (!cs) {
        cs = calloc(1, sizeof *cs);
        *con_cls = cs;
        return cs ? MHD_YES : MHD_NO;
    }
    if (*data_size) {
        size_t n = *data_size;
        *data_size = 0;
        if (cs->too_big || cs->len + n > MAX_BODY) {
            cs->too_big = true;
            return MHD_YES;
        }
        char *nb = realloc(cs->buf, cs->len + n + 1);
        if (!nb)
            return MHD_NO;
        memcpy(nb + cs->len, data, n);
        cs->buf = nb;
        cs->len += n;
        cs->buf[cs->len] = '\0';
        return MHD_YES;
    }
    if (strcmp(url, "/__sim/calls") == 0) {
        pthread_mutex_lock(&sim.lock);
        json_t *doc = json_pack("{s:i,s:i}", "calls", (json_int_t)sim.calls, "throttled",
                                (json_int_t)sim.throttled);
        pthread_mutex_unlock(&sim.lock);
        return reply(c, 200, doc);
    }
    const char *pre = "/admin/api/", *suf = "/graphql.json";
    size_t ul = strlen(url);
    if (strncmp(url, pre, strlen(pre)) != 0 || ul < strlen(pre) + strlen(suf) ||
        strcmp(url + ul - strlen(suf), suf) != 0)
        return reply(c, 404, json_pack("{s:s}", "errors", "Not Found"));
    if (strcmp(method, "POST") != 0)
        return reply(c, 405, json_pack("{s:s}", "errors", "Method Not Allowed"));
    if (cs->too_big)
        return reply(c, 413, json_pack("{s:s}", "errors", "Payload Too Large"));
    return graphql(c, cs);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct conn *cs = *con_cls;
    if (cs)
        free(cs->buf);
    free(cs);
    *con_cls = NULL;
}

static int usage(const char *why, const char *arg)
{
    fprintf(stderr,
            "cadence-shopify-sim: %s%s%s\nusage: cadence-shopify-sim --listen 127.0.0.1:PORT "
            "--shop NAME --token TOKEN [--scopes a,b] [--products N]\n",
            why, arg ? ": " : "", arg ? arg : "");
    return 2;
}

int main(int argc, char **argv)
{
    long port = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            return usage("missing value", a);
        const char *v = argv[++i];
        char *end;
        if (strcmp(a, "--listen") == 0) {
            if (strncmp(v, "127.0.0.1:", 10) != 0)
                return usage("--listen accepts only 127.0.0.1:PORT", v);
            port = strtol(v + 10, &end, 10);
            if (*end || end == v + 10 || port < 0 || port > 65535)
                return usage("bad port", v);
        } else if (strcmp(a, "--shop") == 0) {
            snprintf(sim.shop, sizeof sim.shop, "%s", v);
        } else if (strcmp(a, "--token") == 0) {
            sim.token = v;
        } else if (strcmp(a, "--scopes") == 0) {
            sim.scopes = v;
        } else if (strcmp(a, "--products") == 0) {
            sim.products = strtol(v, &end, 10);
            if (*end || end == v || sim.products < 0 || sim.products > 100000000)
                return usage("bad --products", v);
        } else {
            return usage("unknown option", a);
        }
    }
    if (port < 0 || !sim.shop[0] || !sim.token)
        return usage("--listen, --shop and --token are required", NULL);
    char handle[128];
    slugify(sim.shop, handle, sizeof handle);
    snprintf(sim.domain, sizeof sim.domain, "%s.myshopify.com", handle);
    sim.available = BUCKET_MAX;
    sim.refilled_ms = time_mono_ms();

    int bound = 0;
    int fd = sim_listen_loopback((int)port, &bound);
    if (fd < 0) {
        fprintf(stderr, "cadence-shopify-sim: cannot listen on 127.0.0.1:%ld: %s\n", port,
                strerror(errno));
        return 1;
    }
    sigset_t set;
    sim_block_stop_signals(&set);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL, on_request,
        NULL, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "cadence-shopify-sim: cannot start the HTTP server\n");
        return 1;
    }
    printf("listening on http://127.0.0.1:%d\n", bound);
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    close(fd);
    return 0;
}
