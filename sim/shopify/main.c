/*
 * cadence-shopify-sim: a stand-in for one Shopify store's Admin GraphQL API, for tests.
 *
 *   cadence-shopify-sim --listen 127.0.0.1:PORT --shop NAME --token TOKEN
 *                       [--scopes read_products,read_inventory] [--products N]
 *                       [--bulk-rate R] [--bulk-fail] [--wide-product V]
 *
 * The command line is a contract other suites rely on. It binds 127.0.0.1 only, prints the one
 * line "listening on http://127.0.0.1:PORT" and serves until SIGTERM or SIGINT. --bulk-rate is
 * how many objects a bulk operation processes a second (default 50000); with --bulk-fail every
 * bulk operation ends FAILED with errorCode INTERNAL_SERVER_ERROR.
 *
 * The catalog. Products 1..N (N from --products, grown by /__sim/mutate) are generated on the fly
 * from their index i and a generation counter (0, bumped by each edit); nothing per product is
 * held but one bit (deleted) and, for edited products, an entry in a small hash (generation):
 *   id "gid://shopify/Product/<i>", title "<Adjective> <Noun> <i>" (every 7th has a "quoted"
 *   word, every 11th ends in an en dash and "Cafe Edition" with an e-acute, in UTF-8;
 *   generation g > 0 appends " (rev g)"),
 *   handle "product-<i>", descriptionHtml (<p>, <strong>, <ul><li> and &amp;), status ACTIVE
 *   (every 25th DRAFT), onlineStoreUrl "https://<shop-slug>.example/products/product-<i>" (null
 *   when DRAFT), updatedAt 2025-01-01T00:00:00Z + i seconds + g * 400 days, featuredImage { url }
 *   (null for every 20th), 3 variants (id "gid://shopify/ProductVariant/<i*10+k>", title
 *   Small/Medium/Large, sku "SKU-<i>-<k>", price "DD.99" (the first variant's goes up a dollar
 *   per generation), inventoryQuantity an integer; with --wide-product V, product 1 has V: the
 *   others' ids are 900000000 + 10000 i + k, titles "Size <k>") and 1 or 2 of 10 collections (id
 *   "gid://shopify/Collection/<c>", title "Collection <c>": c = i % 10 + 1, and for every 3rd
 *   product a second one).
 *
 * POST /admin/api/<version>/graphql.json with X-Shopify-Access-Token (anything else: 401, as
 * Shopify answers a wrong token). The query is recognised by what it asks for, not parsed, and
 * the answer's shape is fixed whatever fields the query selects. In this order:
 *   - bulkOperationRunQuery (cost 10): starts a bulk operation; the inner query is not read, the
 *     result is always the whole product feed below. { bulkOperationRunQuery { bulkOperation
 *     { id status } userErrors { field message code } } }. While one is CREATED or RUNNING
 *     another gets bulkOperation null and the userError "A bulk query operation for this app
 *     and shop is already in progress: <id>." (field null, code OPERATION_IN_PROGRESS), modelled
 *     on Shopify's API before 2026-01 (one bulk query at a time per shop). The operation reads
 *     the catalog as it is when it starts. No bulkOperationCancel.
 *   - currentBulkOperation (cost 1): the most recent bulk operation, or null.
 *   - node(id: "gid://shopify/BulkOperation/N") or bulkOperation(id: ...) (cost 1; the id may
 *     come as the $id variable): { node } / { bulkOperation }, null when unknown.
 *     A bulk operation has id, status (CREATED, then RUNNING, then COMPLETED or FAILED after
 *     objectCount / R seconds), errorCode, createdAt, completedAt, objectCount, rootObjectCount
 *     and fileSize (UnsignedInt64, so JSON strings as Shopify sends them; objectCount counts
 *     products + variants + collection links, as a running count), url, partialDataUrl, type
 *     QUERY and query. url (COMPLETED) and partialDataUrl (FAILED: the first half of the
 *     products) are http://127.0.0.1:PORT/__sim/bulk/<N>.jsonl.
 *   - productsCount (cost 1): { productsCount { count precision } }.
 *   - products(first: N, after: "CURSOR") (cost 2 + 4 a product): N products as a connection with
 *     edges { cursor node }, nodes and pageInfo { hasNextPage endCursor } (cursors "c<i>"; first
 *     outside 1..250 is an error); each product's variants and collections are connections with
 *     nodes, edges { node } and pageInfo { hasNextPage } (a product's variants: as many as the
 *     query's variants(first: K) asks, all when it names none; hasNextPage when some were left
 *     out). The arguments may also come as $first / $after variables.
 *     Deleted products are skipped.
 *   - anything else (cost 2): { shop { name myshopifyDomain } currentAppInstallation
 *     { accessScopes { handle } } }.
 * Every answer carries extensions.cost like Shopify's cost-based throttle (a bucket of 2000
 * points restored at 100 points a second); a query costing more than what is available gets
 * the THROTTLED error instead of data.
 *
 * GET /__sim/bulk/<N>.jsonl (no token, like Shopify's signed storage URL; 404 until the
 * operation has finished): the operation's result as Shopify writes it, streamed and generated
 * line by line (memory does not grow with N), Content-Type application/jsonl, Content-Length the
 * fileSize. A FAILED operation's file holds the first half. Per live product, in index order: the
 * product (its scalar fields and featuredImage, no connections), then each variant and each
 * collection as a line with "__parentId":"gid://shopify/Product/<i>". HTML's <, > and & are written
 * as JSON escapes (backslash-u003c, -u003e, -u0026), as Shopify's JSON encoder does. The catalog is
 * the one at the time the operation started.
 *
 * For tests only (no token):
 *   POST /__sim/mutate {"edit": E, "add": A, "delete": D}: edits E live products (generation
 *     + 1), deletes D others and appends A new ones, picked deterministically spread over the
 *     range and rotated from call to call (never one product twice in a call, never a deleted
 *     one; E is capped at the live products, D at what is left); the added ones are numbered on
 *     from the highest. Answers {"edited": [...], "added": [...], "deleted": [...]} with the
 *     product numbers as strings; 400 for a body that is not such an object of counts >= 0.
 *   GET /__sim/calls: {"calls", "throttled", "bulk_operations" (started), "jsonl_bytes" (served),
 *     "mutations", "products" (live)}.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "loopback.h"

#define MAX_BODY       (1u << 20)
#define BUCKET_MAX     2000.0
#define RESTORE_RATE   100.0
#define VARIANTS       3
#define COLLECTIONS    10
#define PAGE_MAX       250
#define COST_SHOP      2
#define COST_PER_ITEM  (1 + VARIANTS)
#define COST_BULK_RUN  10
#define COST_BULK_POLL 1
#define COST_COUNT     1
#define MAX_PRODUCTS   100000000L
#define BASE_EPOCH     1735689600LL /* 2025-01-01T00:00:00Z */
#define REV_SECONDS    (400LL * 86400)

/* Generations of edited products: open addressing on the product number (0 = empty slot). */
struct gens {
    long *keys;
    unsigned *vals;
    size_t cap, count;
};

/* Products 1..total; bit i-1 of `deleted` set when product i is deleted. */
struct catalog {
    long total, live;
    unsigned char *deleted;
    size_t deleted_bytes;
    struct gens gens;
};

enum bstatus { B_CREATED, B_RUNNING, B_COMPLETED, B_FAILED };

struct bulk_op {
    long n;
    int64_t created_wall_ms, created_mono_ms, duration_ms;
    bool fail;
    char *query;
    struct catalog snap; /* the catalog when the operation started */
    long limit;          /* the feed holds live products 1..limit (half of them when failing) */
    long roots, objects; /* in the feed */
    pthread_mutex_t lock;
    bool sized;
    long long file_size;
    struct bulk_op *next; /* the one before */
};

static struct {
    pthread_mutex_t lock;
    char shop[128];
    char handle[128];
    char domain[192];
    const char *token;
    const char *scopes;
    int port;
    double bulk_rate;
    bool bulk_fail;
    int wide; /* --wide-product: product 1's variant count (0: 3, like the others) */
    struct catalog cat;
    double available;
    int64_t refilled_ms;
    long calls, throttled, bulk_started, mutations;
    long long jsonl_bytes;
    struct bulk_op *ops; /* the most recent first */
} sim = {.lock = PTHREAD_MUTEX_INITIALIZER,
         .scopes = "read_products,read_inventory",
         .bulk_rate = 50000.0};

struct conn {
    char *buf;
    size_t len;
    bool too_big;
};

/* ---- a growable byte buffer ---------------------------------------------------------------- */

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static bool sb_reserve(struct sbuf *b, size_t more)
{
    if (b->oom)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
        b->oom = true;
        return false;
    }
    b->p = np;
    b->cap = cap;
    return true;
}

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (!sb_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string as Shopify writes it: UTF-8 passes through, <, > and & become backslash-u00XX. */
static void sb_json_str(struct sbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            sb_put(b, esc, 2);
        } else if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&') {
            esc[0] = '\\';
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            sb_put(b, esc, 6);
        } else {
            sb_put(b, (const char *)p, 1);
        }
    }
    sb_put(b, "\"", 1);
}

/* ---- the catalog --------------------------------------------------------------------------- */

static size_t gens_slot(const struct gens *g, long i)
{
    uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ULL;
    size_t s = (size_t)(h >> 17) & (g->cap - 1);
    while (g->keys[s] != 0 && g->keys[s] != i)
        s = (s + 1) & (g->cap - 1);
    return s;
}

static unsigned gens_get(const struct gens *g, long i)
{
    if (!g->cap)
        return 0;
    size_t s = gens_slot(g, i);
    return g->keys[s] == i ? g->vals[s] : 0;
}

static bool gens_bump(struct gens *g, long i)
{
    if ((g->count + 1) * 2 > g->cap) {
        struct gens ng = {.cap = g->cap ? g->cap * 2 : 64};
        ng.keys = calloc(ng.cap, sizeof *ng.keys);
        ng.vals = calloc(ng.cap, sizeof *ng.vals);
        if (!ng.keys || !ng.vals) {
            free(ng.keys);
            free(ng.vals);
            return false;
        }
        for (size_t k = 0; k < g->cap; k++) {
            if (g->keys[k] == 0)
                continue;
            size_t s = gens_slot(&ng, g->keys[k]);
            ng.keys[s] = g->keys[k];
            ng.vals[s] = g->vals[k];
        }
        ng.count = g->count;
        free(g->keys);
        free(g->vals);
        *g = ng;
    }
    size_t s = gens_slot(g, i);
    if (g->keys[s] != i) {
        g->keys[s] = i;
        g->vals[s] = 0;
        g->count++;
    }
    g->vals[s]++;
    return true;
}

static bool cat_deleted(const struct catalog *c, long i)
{
    return (c->deleted[(size_t)(i - 1) / 8] >> ((size_t)(i - 1) % 8)) & 1u;
}

static void cat_delete(struct catalog *c, long i)
{
    c->deleted[(size_t)(i - 1) / 8] |= (unsigned char)(1u << ((size_t)(i - 1) % 8));
    c->live--;
}

/* Room for `total` products (new ones live). */
static bool cat_grow(struct catalog *c, long total)
{
    size_t need = (size_t)total / 8 + 1;
    if (need > c->deleted_bytes) {
        size_t cap = c->deleted_bytes ? c->deleted_bytes : 64;
        while (cap < need)
            cap *= 2;
        unsigned char *nd = realloc(c->deleted, cap);
        if (!nd)
            return false;
        memset(nd + c->deleted_bytes, 0, cap - c->deleted_bytes);
        c->deleted = nd;
        c->deleted_bytes = cap;
    }
    c->live += total - c->total;
    c->total = total;
    return true;
}

static void cat_free(struct catalog *c)
{
    free(c->deleted);
    free(c->gens.keys);
    free(c->gens.vals);
    memset(c, 0, sizeof *c);
}

static bool cat_copy(const struct catalog *src, struct catalog *dst)
{
    *dst = *src;
    dst->deleted = malloc(src->deleted_bytes);
    dst->gens.keys = src->gens.cap ? malloc(src->gens.cap * sizeof *src->gens.keys) : NULL;
    dst->gens.vals = src->gens.cap ? malloc(src->gens.cap * sizeof *src->gens.vals) : NULL;
    if (!dst->deleted || (src->gens.cap && (!dst->gens.keys || !dst->gens.vals))) {
        cat_free(dst);
        return false;
    }
    memcpy(dst->deleted, src->deleted, src->deleted_bytes);
    if (src->gens.cap) {
        memcpy(dst->gens.keys, src->gens.keys, src->gens.cap * sizeof *src->gens.keys);
        memcpy(dst->gens.vals, src->gens.vals, src->gens.cap * sizeof *src->gens.vals);
    }
    return true;
}

/* The first live product after `after`, or 0. */
static long cat_next(const struct catalog *c, long after, long limit)
{
    for (long i = after + 1; i <= limit; i++)
        if (!cat_deleted(c, i))
            return i;
    return 0;
}

/* ---- one generated product ----------------------------------------------------------------- */

struct pinfo {
    long i;
    unsigned gen;
    bool draft, image;
    char id[48], title[160], handle[40], desc[512], url[300], updated[24], image_url[300];
    struct vinfo {
        char id[64], title[16], sku[48], price[24];
        long qty;
    } v[VARIANTS];
    int nvariants; /* VARIANTS, or --wide-product's count for product 1 */
    long dollars;
    int ncoll, coll[2];
};

static void fmt_time(long long secs, char *buf, size_t n)
{
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int collections_of(long i, int out[2])
{
    out[0] = (int)(i % COLLECTIONS) + 1;
    if (i % 3 != 0)
        return 1;
    out[1] = (int)((i / 3) % COLLECTIONS) + 1;
    if (out[1] == out[0])
        out[1] = out[0] % COLLECTIONS + 1;
    return 2;
}

/* How many variants product i has: 3, and --wide-product's count for product 1. */
static int variants_of(long i)
{
    return i == 1 && sim.wide > VARIANTS ? sim.wide : VARIANTS;
}

/* Variant k (0-based) of a product: one of the three made by pinfo_make, or one of a wide
 * product's others, made here (id 900000000 + 10000 i + k, so never one of the three's ids). */
static const struct vinfo *variant_at(const struct pinfo *p, int k, struct vinfo *tmp)
{
    if (k < VARIANTS)
        return &p->v[k];
    memset(tmp, 0, sizeof *tmp);
    snprintf(tmp->id, sizeof tmp->id, "gid://shopify/ProductVariant/%ld",
             900000000L + p->i * 10000L + k + 1);
    snprintf(tmp->title, sizeof tmp->title, "Size %d", k + 1);
    snprintf(tmp->sku, sizeof tmp->sku, "SKU-%ld-%d", p->i, k + 1);
    snprintf(tmp->price, sizeof tmp->price, "%ld.99", p->dollars + k);
    tmp->qty = k % 50;
    return tmp;
}

static void pinfo_make(long i, unsigned gen, struct pinfo *p)
{
    static const char *const adj[] = {"Alpine", "Coastal", "Summit",  "Canyon",
                                      "Harbor", "Meadow",  "Granite", "Willow",
                                      "Ember",  "Glacier", "Prairie", "Cedar"};
    static const char *const noun[] = {"Jacket",  "Backpack",     "Mug",    "Tent",    "Boots",
                                       "Lantern", "Hoodie",       "Cap",    "Blanket", "Skillet",
                                       "Socks",   "Water Bottle", "Hammock"};
    static const char *const vtitle[VARIANTS] = {"Small", "Medium", "Large"};
    memset(p, 0, sizeof *p);
    p->i = i;
    p->gen = gen;
    p->draft = i % 25 == 0;
    p->image = i % 20 != 0;
    const char *a = adj[(size_t)i % CAD_ARRAY_LEN(adj)];
    const char *nn = noun[(size_t)(i / 12) % CAD_ARRAY_LEN(noun)];
    char base[120];
    if (i % 7 == 0)
        snprintf(base, sizeof base, "%s \"Trail\" %s %ld", a, nn, i);
    else
        snprintf(base, sizeof base, "%s %s %ld", a, nn, i);
    if (i % 11 == 0) {
        size_t bl = strlen(base);
        snprintf(base + bl, sizeof base - bl, " \xe2\x80\x93 Caf\xc3\xa9 Edition");
    }
    if (gen)
        snprintf(p->title, sizeof p->title, "%s (rev %u)", base, gen);
    else
        snprintf(p->title, sizeof p->title, "%s", base);
    snprintf(p->id, sizeof p->id, "gid://shopify/Product/%ld", i);
    snprintf(p->handle, sizeof p->handle, "product-%ld", i);
    snprintf(p->desc, sizeof p->desc,
             "<p>The <strong>%s %s</strong> is made for trail &amp; town.</p>"
             "<ul><li>Item no. %ld</li><li>Ships within %ld business days</li></ul>",
             a, nn, i, 2 + i % 5);
    if (!p->draft)
        snprintf(p->url, sizeof p->url, "https://%s.example/products/product-%ld", sim.handle, i);
    fmt_time(BASE_EPOCH + i + (long long)gen * REV_SECONDS, p->updated, sizeof p->updated);
    if (p->image)
        snprintf(p->image_url, sizeof p->image_url,
                 "https://cdn.example/%s/products/product-%ld.jpg?v=%u", sim.handle, i, gen + 1);
    long dollars = 10 + (i * 37) % 90;
    p->dollars = dollars;
    p->nvariants = variants_of(i);
    for (int k = 1; k <= VARIANTS; k++) {
        snprintf(p->v[k - 1].id, sizeof p->v[k - 1].id, "gid://shopify/ProductVariant/%ld",
                 i * 10 + k);
        snprintf(p->v[k - 1].title, sizeof p->v[k - 1].title, "%s", vtitle[k - 1]);
        snprintf(p->v[k - 1].sku, sizeof p->v[k - 1].sku, "SKU-%ld-%d", i, k);
        long d = dollars + (long)(k - 1) * 5 + (k == 1 ? (long)gen : 0);
        snprintf(p->v[k - 1].price, sizeof p->v[k - 1].price, "%ld.99", d);
        p->v[k - 1].qty = i % 50 == 0 ? 0 : (i * 13 + (long)k * 7) % 50;
    }
    p->ncoll = collections_of(i, p->coll);
}

/* A product as a products page carries it, with at most vfirst of its variants (all when
 * vfirst < 0) and the variants connection's pageInfo. */
static json_t *product_json(const struct pinfo *p, long vfirst)
{
    json_t *vnodes = json_array(), *vedges = json_array();
    int nv = vfirst >= 0 && vfirst < p->nvariants ? (int)vfirst : p->nvariants;
    for (int k = 0; k < nv; k++) {
        struct vinfo tmp;
        const struct vinfo *vi = variant_at(p, k, &tmp);
        json_t *v =
            json_pack("{s:s,s:s,s:s,s:s,s:I}", "id", vi->id, "title", vi->title, "sku", vi->sku,
                      "price", vi->price, "inventoryQuantity", (json_int_t)vi->qty);
        json_array_append_new(vedges, json_pack("{s:O}", "node", v));
        json_array_append_new(vnodes, v);
    }
    json_t *cnodes = json_array(), *cedges = json_array();
    for (int k = 0; k < p->ncoll; k++) {
        char id[48], title[32];
        snprintf(id, sizeof id, "gid://shopify/Collection/%d", p->coll[k]);
        snprintf(title, sizeof title, "Collection %d", p->coll[k]);
        json_t *c = json_pack("{s:s,s:s}", "id", id, "title", title);
        json_array_append_new(cedges, json_pack("{s:O}", "node", c));
        json_array_append_new(cnodes, c);
    }
    json_t *img = p->image ? json_pack("{s:s}", "url", p->image_url) : json_null();
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s?,s:s,s:o,s:{s:o,s:o,s:{s:b}},s:{s:o,s:o,s:{s:b}}}",
                     "id", p->id, "title", p->title, "handle", p->handle, "descriptionHtml",
                     p->desc, "status", p->draft ? "DRAFT" : "ACTIVE", "onlineStoreUrl",
                     p->draft ? NULL : p->url, "updatedAt", p->updated, "featuredImage", img,
                     "variants", "nodes", vnodes, "edges", vedges, "pageInfo", "hasNextPage",
                     nv < p->nvariants, "collections", "nodes", cnodes, "edges", cedges, "pageInfo",
                     "hasNextPage", 0);
}

/* The JSONL lines of one product: the product, its variants, its collections. */
static void product_jsonl(const struct pinfo *p, struct sbuf *b)
{
    sb_puts(b, "{\"id\":");
    sb_json_str(b, p->id);
    sb_puts(b, ",\"title\":");
    sb_json_str(b, p->title);
    sb_puts(b, ",\"handle\":");
    sb_json_str(b, p->handle);
    sb_puts(b, ",\"descriptionHtml\":");
    sb_json_str(b, p->desc);
    sb_puts(b, p->draft ? ",\"status\":\"DRAFT\",\"onlineStoreUrl\":null"
                        : ",\"status\":\"ACTIVE\",\"onlineStoreUrl\":");
    if (!p->draft)
        sb_json_str(b, p->url);
    sb_puts(b, ",\"updatedAt\":");
    sb_json_str(b, p->updated);
    if (p->image) {
        sb_puts(b, ",\"featuredImage\":{\"url\":");
        sb_json_str(b, p->image_url);
        sb_puts(b, "}}\n");
    } else {
        sb_puts(b, ",\"featuredImage\":null}\n");
    }
    for (int k = 0; k < p->nvariants; k++) {
        struct vinfo tmp;
        const struct vinfo *v = variant_at(p, k, &tmp);
        sb_printf(b,
                  "{\"id\":\"%s\",\"title\":\"%s\",\"sku\":\"%s\",\"price\":\"%s\","
                  "\"inventoryQuantity\":%ld,\"__parentId\":\"%s\"}\n",
                  v->id, v->title, v->sku, v->price, v->qty, p->id);
    }
    for (int k = 0; k < p->ncoll; k++)
        sb_printf(b,
                  "{\"id\":\"gid://shopify/Collection/%d\",\"title\":\"Collection %d\","
                  "\"__parentId\":\"%s\"}\n",
                  p->coll[k], p->coll[k], p->id);
}

/* ---- HTTP helpers -------------------------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
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

/* ---- bulk operations ----------------------------------------------------------------------- */

static enum bstatus op_status(const struct bulk_op *op, int64_t now)
{
    int64_t el = now - op->created_mono_ms;
    int64_t created = op->duration_ms / 10 < 100 ? op->duration_ms / 10 : 100;
    if (el < created)
        return B_CREATED;
    if (el < op->duration_ms)
        return B_RUNNING;
    return op->fail ? B_FAILED : B_COMPLETED;
}

/* The size of the operation's JSONL, computed once by generating it. */
static long long op_file_size(struct bulk_op *op)
{
    pthread_mutex_lock(&op->lock);
    if (!op->sized) {
        struct sbuf b = {0};
        long long size = 0;
        for (long i = cat_next(&op->snap, 0, op->limit); i; i = cat_next(&op->snap, i, op->limit)) {
            struct pinfo p;
            pinfo_make(i, gens_get(&op->snap.gens, i), &p);
            b.len = 0;
            product_jsonl(&p, &b);
            size += (long long)b.len;
        }
        free(b.p);
        op->file_size = size;
        op->sized = true;
    }
    long long s = op->file_size;
    pthread_mutex_unlock(&op->lock);
    return s;
}

/* Called with the lock held. */
static struct bulk_op *op_find(long n)
{
    struct bulk_op *op = sim.ops;
    while (op && op->n != n)
        op = op->next;
    return op;
}

static json_t *op_json(const struct bulk_op *op, int64_t now)
{
    static const char *const names[] = {"CREATED", "RUNNING", "COMPLETED", "FAILED"};
    enum bstatus st = op_status(op, now);
    char id[64], created[24], completed[24] = "", url[96], count[24], roots[24], size[24] = "";
    snprintf(id, sizeof id, "gid://shopify/BulkOperation/%ld", op->n);
    fmt_time(op->created_wall_ms / 1000, created, sizeof created);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/__sim/bulk/%ld.jsonl", sim.port, op->n);
    long done = op->objects, done_roots = op->roots;
    if (st == B_CREATED) {
        done = done_roots = 0;
    } else if (st == B_RUNNING && op->duration_ms > 0) {
        double f = (double)(now - op->created_mono_ms) / (double)op->duration_ms;
        done = (long)((double)op->objects * f);
        done_roots = (long)((double)op->roots * f);
    }
    snprintf(count, sizeof count, "%ld", done);
    snprintf(roots, sizeof roots, "%ld", done_roots);
    if (st == B_COMPLETED) {
        fmt_time((op->created_wall_ms + op->duration_ms) / 1000, completed, sizeof completed);
        snprintf(size, sizeof size, "%lld", op->sized ? op->file_size : 0);
    }
    return json_pack("{s:s,s:s,s:s?,s:s,s:s?,s:s,s:s,s:s?,s:s?,s:s?,s:s,s:s?}", "id", id, "status",
                     names[st], "errorCode", st == B_FAILED ? "INTERNAL_SERVER_ERROR" : NULL,
                     "createdAt", created, "completedAt", completed[0] ? completed : NULL,
                     "objectCount", count, "rootObjectCount", roots, "fileSize",
                     size[0] ? size : NULL, "url", st == B_COMPLETED ? url : NULL, "partialDataUrl",
                     st == B_FAILED ? url : NULL, "type", "QUERY", "query", op->query);
}

/* The query of a bulkOperationRunQuery: between """ and """, else the first string variable,
 * else a plain "..." argument (without escaped quotes), else "". */
static char *inner_query(const char *q, json_t *vars)
{
    const char *s = strstr(q, "\"\"\"");
    const char *e = s ? strstr(s + 3, "\"\"\"") : NULL;
    if (e)
        return strndup(s + 3, (size_t)(e - s - 3));
    const char *k;
    json_t *v;
    json_object_foreach(vars, k, v)
    {
        if (json_is_string(v))
            return strdup(json_string_value(v));
    }
    char plain[4096];
    const char *at = strstr(q, "bulkOperationRunQuery");
    return strdup(at && query_str(at, "query", plain, sizeof plain) ? plain : "");
}

/* Starts a bulk operation. Called with the lock held. */
static json_t *bulk_run(const char *q, json_t *vars, int64_t now)
{
    const struct bulk_op *last = sim.ops;
    if (last && op_status(last, now) <= B_RUNNING) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "A bulk query operation for this app and shop is already in progress: "
                 "gid://shopify/BulkOperation/%ld.",
                 last->n);
        return json_pack("{s:{s:n,s:[{s:n,s:s,s:s}]}}", "bulkOperationRunQuery", "bulkOperation",
                         "userErrors", "field", "message", msg, "code", "OPERATION_IN_PROGRESS");
    }
    struct bulk_op *op = calloc(1, sizeof *op);
    if (!op || !cat_copy(&sim.cat, &op->snap)) {
        free(op);
        return NULL;
    }
    pthread_mutex_init(&op->lock, NULL);
    op->n = last ? last->n + 1 : 1;
    op->fail = sim.bulk_fail;
    op->query = inner_query(q, vars);
    op->created_wall_ms = time_now_ms();
    op->created_mono_ms = now;
    op->limit = op->snap.total;
    if (op->fail) {
        /* the partial result: the first half of the live products */
        long half = op->snap.live / 2, seen = 0, i = 0;
        while (seen < half && (i = cat_next(&op->snap, i, op->snap.total)) != 0)
            seen++;
        op->limit = i;
    }
    for (long i = cat_next(&op->snap, 0, op->limit); i; i = cat_next(&op->snap, i, op->limit)) {
        int coll[2];
        op->roots++;
        op->objects += 1 + variants_of(i) + collections_of(i, coll);
    }
    op->duration_ms = (int64_t)((double)op->objects * 1000.0 / sim.bulk_rate);
    op->next = sim.ops;
    sim.ops = op;
    sim.bulk_started++;
    char id[64];
    snprintf(id, sizeof id, "gid://shopify/BulkOperation/%ld", op->n);
    return json_pack("{s:{s:{s:s,s:s},s:[]}}", "bulkOperationRunQuery", "bulkOperation", "id", id,
                     "status", "CREATED", "userErrors");
}

/* ---- GraphQL ------------------------------------------------------------------------------- */

static json_t *products_page(long first, long after, long vfirst, int *count)
{
    json_t *edges = json_array(), *nodes = json_array();
    char cursor[32] = "";
    long last = after, i = after;
    *count = 0;
    while (*count < first && (i = cat_next(&sim.cat, i, sim.cat.total)) != 0) {
        snprintf(cursor, sizeof cursor, "c%ld", i);
        struct pinfo pi;
        pinfo_make(i, gens_get(&sim.cat.gens, i), &pi);
        json_t *p = product_json(&pi, vfirst);
        json_array_append(nodes, p);
        json_array_append_new(edges, json_pack("{s:s,s:o}", "cursor", cursor, "node", p));
        last = i;
        ++*count;
    }
    bool more = cat_next(&sim.cat, last, sim.cat.total) != 0;
    return json_pack("{s:{s:o,s:o,s:{s:b,s:s?}}}", "products", "edges", edges, "nodes", nodes,
                     "pageInfo", "hasNextPage", more, "endCursor", *count ? cursor : NULL);
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

enum qkind { Q_SHOP, Q_PRODUCTS, Q_COUNT, Q_BULK_RUN, Q_BULK_CURRENT, Q_BULK_NODE };

static enum qkind classify(const char *q, const char **node_at)
{
    if (strstr(q, "bulkOperationRunQuery"))
        return Q_BULK_RUN;
    if (strstr(q, "currentBulkOperation"))
        return Q_BULK_CURRENT;
    const char *n = strstr(q, "node(");
    if (!n)
        n = strstr(q, "node (");
    if (!n)
        n = strstr(q, "bulkOperation(");
    if (n) {
        *node_at = n;
        return Q_BULK_NODE;
    }
    if (strstr(q, "productsCount"))
        return Q_COUNT;
    if (strstr(q, "products"))
        return Q_PRODUCTS;
    return Q_SHOP;
}

/* The N of the node id ("gid://shopify/BulkOperation/N") in the query or $id, or 0. */
static long node_op(const char *at, json_t *vars)
{
    char id[96] = "";
    if (!query_str(at, "id", id, sizeof id)) {
        const char *v = json_string_value(json_object_get(vars, "id"));
        if (!v || snprintf(id, sizeof id, "%s", v) >= (int)sizeof id)
            return 0;
    }
    const char *pre = "gid://shopify/BulkOperation/";
    if (strncmp(id, pre, strlen(pre)) != 0)
        return 0;
    char *end;
    long n = strtol(id + strlen(pre), &end, 10);
    return *end || n < 1 ? 0 : n;
}

static int query_cost(enum qkind kind, long first)
{
    static const int base[] = {[Q_SHOP] = COST_SHOP,
                               [Q_PRODUCTS] = COST_SHOP,
                               [Q_COUNT] = COST_COUNT,
                               [Q_BULK_RUN] = COST_BULK_RUN,
                               [Q_BULK_CURRENT] = COST_BULK_POLL,
                               [Q_BULK_NODE] = COST_BULK_POLL};
    return base[kind] + (kind == Q_PRODUCTS ? (int)first * COST_PER_ITEM : 0);
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
    const char *node_at = NULL;
    enum qkind kind = classify(q, &node_at);
    long first = -1, after = 0, op_n = 0, vfirst = -1;
    if (kind == Q_PRODUCTS) {
        vfirst = query_int(q, "variants(first");
        first = query_int(q, "first");
        if (first < 0 && json_is_integer(json_object_get(vars, "first")))
            first = (long)json_integer_value(json_object_get(vars, "first"));
        char cur[32];
        const char *vcur = json_string_value(json_object_get(vars, "after"));
        if (query_str(q, "after", cur, sizeof cur) ||
            (vcur && snprintf(cur, sizeof cur, "%s", vcur) < (int)sizeof cur))
            after = cur[0] == 'c' ? strtol(cur + 1, NULL, 10) : 0;
        if (first < 1 || first > PAGE_MAX) {
            json_decref(req);
            return reply(c, 200,
                         json_pack("{s:[{s:s}]}", "errors", "message",
                                   "The first argument must be between 1 and 250."));
        }
    } else if (kind == Q_BULK_NODE) {
        op_n = node_op(node_at, vars);
    }
    int cost = query_cost(kind, first);
    int64_t now = time_mono_ms();

    /* A finished operation's file size is computed (once) before the lock is taken. */
    if (kind == Q_BULK_CURRENT || kind == Q_BULK_NODE) {
        pthread_mutex_lock(&sim.lock);
        struct bulk_op *op = kind == Q_BULK_NODE ? op_find(op_n) : sim.ops;
        pthread_mutex_unlock(&sim.lock);
        if (op && op_status(op, now) == B_COMPLETED)
            op_file_size(op);
    }

    pthread_mutex_lock(&sim.lock);
    sim.calls++;
    json_t *doc = NULL;
    if (!bucket_take(cost)) {
        sim.throttled++;
        doc = json_pack("{s:[{s:s,s:{s:s}}],s:o}", "errors", "message", "Throttled", "extensions",
                        "code", "THROTTLED", "extensions", cost_ext(cost, 0));
    } else {
        json_t *data = NULL;
        int actual = cost;
        if (kind == Q_PRODUCTS) {
            int n = 0;
            data = products_page(first, after, vfirst, &n);
            actual = COST_SHOP + n * COST_PER_ITEM;
        } else if (kind == Q_COUNT) {
            data = json_pack("{s:{s:I,s:s}}", "productsCount", "count", (json_int_t)sim.cat.live,
                             "precision", "EXACT");
        } else if (kind == Q_BULK_RUN) {
            data = bulk_run(q, vars, now);
        } else if (kind == Q_BULK_CURRENT) {
            json_t *o = sim.ops ? op_json(sim.ops, now) : json_null();
            data = json_pack("{s:o}", "currentBulkOperation", o);
        } else if (kind == Q_BULK_NODE) {
            const struct bulk_op *op = op_find(op_n);
            data = json_pack(
                "{s:o}", strstr(node_at, "bulkOperation(") == node_at ? "bulkOperation" : "node",
                op ? op_json(op, now) : json_null());
        } else {
            data = shop_data();
        }
        sim.available += cost - actual;
        if (data)
            doc = json_pack("{s:o,s:o}", "data", data, "extensions", cost_ext(cost, actual));
    }
    pthread_mutex_unlock(&sim.lock);
    json_decref(req);
    if (!doc)
        return reply(c, 500, json_pack("{s:s}", "errors", "Internal error"));
    return reply(c, 200, doc);
}

/* ---- the JSONL file ------------------------------------------------------------------------ */

struct stream {
    struct bulk_op *op;
    long at; /* the last product written */
    struct sbuf line;
    size_t off;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct stream *s = cls;
    size_t n = 0;
    while (n < max) {
        if (s->off == s->line.len) {
            long i = cat_next(&s->op->snap, s->at, s->op->limit);
            if (!i)
                break;
            s->at = i;
            s->line.len = 0;
            s->off = 0;
            struct pinfo p;
            pinfo_make(i, gens_get(&s->op->snap.gens, i), &p);
            product_jsonl(&p, &s->line);
            if (s->line.oom)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        size_t k = s->line.len - s->off < max - n ? s->line.len - s->off : max - n;
        memcpy(buf + n, s->line.p + s->off, k);
        s->off += k;
        n += k;
    }
    if (n == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    pthread_mutex_lock(&sim.lock);
    sim.jsonl_bytes += (long long)n;
    pthread_mutex_unlock(&sim.lock);
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    struct stream *s = cls;
    free(s->line.p);
    free(s);
}

static enum MHD_Result serve_jsonl(struct MHD_Connection *c, const char *name)
{
    char *end;
    long n = strtol(name, &end, 10);
    pthread_mutex_lock(&sim.lock);
    struct bulk_op *op = end != name && strcmp(end, ".jsonl") == 0 ? op_find(n) : NULL;
    pthread_mutex_unlock(&sim.lock);
    enum bstatus st = op ? op_status(op, time_mono_ms()) : B_CREATED;
    if (st != B_COMPLETED && st != B_FAILED)
        return reply(c, 404, json_pack("{s:s}", "errors", "Not Found"));
    long long size = op_file_size(op);
    struct stream *s = calloc(1, sizeof *s);
    if (!s)
        return MHD_NO;
    s->op = op;
    struct MHD_Response *r = MHD_create_response_from_callback((uint64_t)size, (size_t)64 * 1024,
                                                               stream_read, s, stream_free);
    if (!r) {
        stream_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/jsonl");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- /__sim/mutate ------------------------------------------------------------------------- */

/* Picks `count` live products not yet in `picked`, spread over 1..total, rotated by `rot`. */
static void pick(long count, long rot, unsigned char *picked, json_t *ids, long *out)
{
    long total = sim.cat.total;
    for (long j = 0; j < count; j++) {
        long t = (long)((((long long)(2 * j + 1) * total) / (2 * count) + rot) % total) + 1;
        for (long k = 0; k < total; k++) {
            long i = (t - 1 + k) % total + 1;
            size_t b = (size_t)(i - 1);
            if (cat_deleted(&sim.cat, i) || (picked[b / 8] >> (b % 8)) & 1u)
                continue;
            picked[b / 8] |= (unsigned char)(1u << (b % 8));
            out[j] = i;
            char num[24];
            snprintf(num, sizeof num, "%ld", i);
            json_array_append_new(ids, json_string(num));
            break;
        }
    }
}

static long body_count(json_t *req, const char *key)
{
    json_t *v = json_object_get(req, key);
    if (!v)
        return 0;
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (long)json_integer_value(v) : -1;
}

static enum MHD_Result mutate(struct MHD_Connection *c, const struct conn *cs)
{
    json_t *req = cs->buf ? json_loadb(cs->buf, cs->len, 0, NULL) : NULL;
    long e = body_count(req, "edit"), a = body_count(req, "add"), d = body_count(req, "delete");
    bool ok = json_is_object(req) && e >= 0 && a >= 0 && d >= 0;
    json_decref(req);
    if (!ok)
        return reply(
            c, 400,
            json_pack("{s:s}", "errors",
                      "expected {\"edit\": E, \"add\": A, \"delete\": D} with counts >= 0"));
    pthread_mutex_lock(&sim.lock);
    long live = sim.cat.live;
    if (e > live)
        e = live;
    if (d > live - e)
        d = live - e;
    if (a > MAX_PRODUCTS - sim.cat.total)
        a = MAX_PRODUCTS - sim.cat.total;
    json_t *edited = json_array(), *added = json_array(), *deleted = json_array();
    unsigned char *picked = calloc((size_t)sim.cat.total / 8 + 1, 1);
    long *chosen = malloc(((size_t)(e > d ? e : d) + 1) * sizeof *chosen);
    bool fine = picked && chosen;
    if (fine) {
        long rot = sim.cat.total ? (sim.mutations * 7919) % sim.cat.total : 0;
        pick(e, rot, picked, edited, chosen);
        for (long j = 0; j < e && fine; j++)
            fine = gens_bump(&sim.cat.gens, chosen[j]);
        pick(d, rot + (sim.cat.total / (2 * (d + 1))), picked, deleted, chosen);
        for (long j = 0; j < d; j++)
            cat_delete(&sim.cat, chosen[j]);
        long from = sim.cat.total;
        fine = fine && cat_grow(&sim.cat, from + a);
        for (long i = from + 1; fine && i <= from + a; i++) {
            char num[24];
            snprintf(num, sizeof num, "%ld", i);
            json_array_append_new(added, json_string(num));
        }
        sim.mutations++;
    }
    pthread_mutex_unlock(&sim.lock);
    free(picked);
    free(chosen);
    json_t *doc = json_pack("{s:o,s:o,s:o}", "edited", edited, "added", added, "deleted", deleted);
    if (!fine) {
        json_decref(doc);
        return reply(c, 500, json_pack("{s:s}", "errors", "out of memory"));
    }
    return reply(c, 200, doc);
}

/* ---- routing ------------------------------------------------------------------------------- */

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
        json_t *doc =
            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "calls", (json_int_t)sim.calls, "throttled",
                      (json_int_t)sim.throttled, "bulk_operations", (json_int_t)sim.bulk_started,
                      "jsonl_bytes", (json_int_t)sim.jsonl_bytes, "mutations",
                      (json_int_t)sim.mutations, "products", (json_int_t)sim.cat.live);
        pthread_mutex_unlock(&sim.lock);
        return reply(c, 200, doc);
    }
    if (strcmp(url, "/__sim/mutate") == 0) {
        if (strcmp(method, "POST") != 0)
            return reply(c, 405, json_pack("{s:s}", "errors", "Method Not Allowed"));
        if (cs->too_big)
            return reply(c, 413, json_pack("{s:s}", "errors", "Payload Too Large"));
        return mutate(c, cs);
    }
    const char *bulk = "/__sim/bulk/";
    if (strncmp(url, bulk, strlen(bulk)) == 0) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
            return reply(c, 405, json_pack("{s:s}", "errors", "Method Not Allowed"));
        return serve_jsonl(c, url + strlen(bulk));
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

#define USAGE                                                                                      \
    "usage: cadence-shopify-sim --listen 127.0.0.1:PORT --shop NAME --token TOKEN [--scopes "      \
    "a,b]\n"                                                                                       \
    "                           [--products N] [--bulk-rate OBJECTS_PER_SECOND] [--bulk-fail]\n"   \
    "                           [--wide-product V]\n"                                              \
    "  --products N     N generated products, 3 variants each, in 1-2 of 10 collections\n"         \
    "  --wide-product V product 1 has V variants (4..2048), more than one page of a products\n"    \
    "                   query carries (its variants(first: K) gets K and hasNextPage true)\n"      \
    "  --bulk-rate R    bulk operations process R objects a second (default 50000)\n"              \
    "  --bulk-fail      bulk operations end FAILED (INTERNAL_SERVER_ERROR) with partial data\n"    \
    "Serves POST /admin/api/<version>/graphql.json (products, productsCount, "                     \
    "bulkOperationRunQuery,\n"                                                                     \
    "currentBulkOperation, node(id:)), GET /__sim/bulk/<N>.jsonl, POST /__sim/mutate\n"            \
    "{\"edit\":E,\"add\":A,\"delete\":D} and GET /__sim/calls.\n"

static int usage(const char *why, const char *arg)
{
    fprintf(stderr, "cadence-shopify-sim: %s%s%s\n" USAGE, why, arg ? ": " : "", arg ? arg : "");
    return 2;
}

int main(int argc, char **argv)
{
    long port = -1, products = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (strcmp(a, "--bulk-fail") == 0) {
            sim.bulk_fail = true;
            continue;
        }
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
            products = strtol(v, &end, 10);
            if (*end || end == v || products < 0 || products > MAX_PRODUCTS)
                return usage("bad --products", v);
        } else if (strcmp(a, "--wide-product") == 0) {
            long w = strtol(v, &end, 10);
            if (*end || end == v || w <= VARIANTS || w > 2048)
                return usage("bad --wide-product (4..2048)", v);
            sim.wide = (int)w;
        } else if (strcmp(a, "--bulk-rate") == 0) {
            sim.bulk_rate = strtod(v, &end);
            if (*end || end == v || !(sim.bulk_rate > 0.0))
                return usage("bad --bulk-rate", v);
        } else {
            return usage("unknown option", a);
        }
    }
    if (port < 0 || !sim.shop[0] || !sim.token)
        return usage("--listen, --shop and --token are required", NULL);
    slugify(sim.shop, sim.handle, sizeof sim.handle);
    snprintf(sim.domain, sizeof sim.domain, "%s.myshopify.com", sim.handle);
    if (!cat_grow(&sim.cat, products)) {
        fprintf(stderr, "cadence-shopify-sim: out of memory\n");
        return 1;
    }
    sim.available = BUCKET_MAX;
    sim.refilled_ms = time_mono_ms();

    int bound = 0;
    int fd = sim_listen_loopback((int)port, &bound);
    if (fd < 0) {
        fprintf(stderr, "cadence-shopify-sim: cannot listen on 127.0.0.1:%ld: %s\n", port,
                strerror(errno));
        cat_free(&sim.cat);
        return 1;
    }
    sim.port = bound;
    sigset_t set;
    sim_block_stop_signals(&set);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL, on_request,
        NULL, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "cadence-shopify-sim: cannot start the HTTP server\n");
        close(fd);
        cat_free(&sim.cat);
        return 1;
    }
    printf("listening on http://127.0.0.1:%d\n", bound);
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    close(fd);
    while (sim.ops) {
        struct bulk_op *op = sim.ops;
        sim.ops = op->next;
        cat_free(&op->snap);
        pthread_mutex_destroy(&op->lock);
        free(op->query);
        free(op);
    }
    cat_free(&sim.cat);
    return 0;
}
