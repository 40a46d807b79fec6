/*
 * Planning a Shopify catalog sync: the shop is read product by product (catalog/catalog.h), each
 * product mapped to a Klaviyo catalog item, its variants and its collections' categories, and
 * every object compared by content hash with what Cadence last wrote (catalog_objects). What
 * differs is staged in sync_stage, what exists is noted in sync_seen (so what Cadence wrote and
 * the shop no longer has becomes a delete); once the whole shop was read the staged rows become
 * the plan's steps and bodies in one transaction. The two work tables are the connection's own
 * TEMP tables: a half-read shop is worth nothing after a crash, so they are never synced to disk
 * nor copied through the WAL, and writing them takes no lock on the database: the plan is the one
 * durable write.
 * Memory holds one product and the set of collections seen, never the catalog.
 */
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "catalog/catalog.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "plan/plan_int.h"
#include "providers/providers.h"
#include "tenant/tenant.h"

#define PRODUCTS_PER_TX 1000 /* products (about 4,000 objects) to a work-table transaction */
#define DIFF_VALUE_MAX  120

/* Klaviyo's dependency order: categories before the items that name them, items before their
 * variants; deletes the other way round. */
enum phase {
    PH_CATEGORY = 1,
    PH_ITEM,
    PH_VARIANT,
    PH_DEL_VARIANT,
    PH_DEL_ITEM,
    PH_DEL_CATEGORY,
    PH_COUNT
};

/* A staged row's key: its phase, then its place in the phase's arrival order. Three appending
 * streams instead of inserts all over an index on external ids, and the plan's order is the
 * table's own: no sort. */
#define ORD_SHIFT  40
#define ORD(ph, n) (((int64_t)(ph) << ORD_SHIFT) | (int64_t)(n))

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

/* A small open-addressing set of the collection ids staged in this sync. */
struct idset {
    char **slot;
    size_t cap, n;
};

static bool idset_add(struct idset *s, const char *id, bool *added)
{
    *added = false;
    if ((s->n + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **ns = calloc(cap, sizeof *ns);
        if (!ns)
            return false;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->slot[i])
                continue;
            size_t h = (size_t)fnv1a(s->slot[i]) & (cap - 1);
            while (ns[h])
                h = (h + 1) & (cap - 1);
            ns[h] = s->slot[i];
        }
        free(s->slot);
        s->slot = ns;
        s->cap = cap;
    }
    size_t h = (size_t)fnv1a(id) & (s->cap - 1);
    while (s->slot[h]) {
        if (strcmp(s->slot[h], id) == 0)
            return true;
        h = (h + 1) & (s->cap - 1);
    }
    if (!(s->slot[h] = strdup(id)))
        return false;
    s->n++;
    *added = true;
    return true;
}

static void idset_free(struct idset *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->slot[i]);
    free(s->slot);
}

struct sync {
    store *st;
    const char *tenant, *shop;
    char sync_id[PLAN_ID_MAX];
    struct catalog_sync_result *r;
    struct idset cats;
    EVP_MD_CTX *snapshot;     /* over every object read: kind, external id, content hash */
    EVP_MD_CTX *md[PH_COUNT]; /* per phase, over its steps in order (store_sync_plan) */
    long n[PH_COUNT];         /* steps staged per phase */
    long jobs[3][3];          /* objects per [kind][action], for the estimate */
    bool first;   /* nothing synced before: no object to compare with, nothing to delete */
    int in_tx;    /* products in the open transaction */
    bool tx_open; /* a batch of work-table writes (store_begin_work: no database lock) */
    long skipped;
    char first_skip[512];
};

static void value_text(const json_t *v, char *out, size_t n)
{
    if (!v) {
        snprintf(out, n, "(none)");
        return;
    }
    /* The common cases without a serializer (a create's summary names up to seven values, for
     * each of 200,000 objects): a plain short string, an integer, a boolean. */
    if (json_is_string(v) && json_string_length(v) + 2 <= DIFF_VALUE_MAX) {
        const char *str = json_string_value(v);
        bool plain = true;
        for (const unsigned char *c = (const unsigned char *)str; *c && plain; c++)
            plain = *c >= 0x20 && *c != '"' && *c != '\\';
        if (plain && strlen(str) == json_string_length(v)) {
            snprintf(out, n, "\"%s\"", str);
            return;
        }
    } else if (json_is_integer(v)) {
        snprintf(out, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return;
    } else if (json_is_boolean(v)) {
        snprintf(out, n, "%s", json_is_true(v) ? "true" : "false");
        return;
    }
    char *t =
        json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(10));
    if (t && strlen(t) > DIFF_VALUE_MAX)
        snprintf(out, n, "%.*s…", DIFF_VALUE_MAX, t);
    else
        snprintf(out, n, "%s", t ? t : "?");
    free(t);
}

/* One line per attribute (and relationship) that differs: `field: old -> new`. */
static char *object_diff(const json_t *old, const json_t *neu)
{
    size_t cap = 256, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    buf[0] = '\0';
    const char *parts[] = {"attributes", "relationships"};
    for (size_t p = 0; p < 2; p++) {
        const json_t *a = json_object_get(old, parts[p]), *b = json_object_get(neu, parts[p]);
        json_t *keys = json_object();
        const char *k;
        json_t *v;
        json_object_update(keys, (json_t *)a); /* the union of both sides' fields */
        json_object_update(keys, (json_t *)b);
        json_object_foreach(keys, k, v)
        {
            const json_t *x = json_object_get(a, k), *y = json_object_get(b, k);
            if (x && y && json_equal(x, y))
                continue;
            char xs[DIFF_VALUE_MAX + 8], ys[DIFF_VALUE_MAX + 8];
            value_text(x, xs, sizeof xs);
            value_text(y, ys, sizeof ys);
            size_t need = strlen(k) + strlen(xs) + strlen(ys) + 16;
            if (len + need >= cap) {
                cap = (len + need) * 2;
                char *nb = realloc(buf, cap);
                if (!nb) {
                    json_decref(keys);
                    free(buf);
                    return NULL;
                }
                buf = nb;
            }
            len += (size_t)snprintf(buf + len, cap - len, "%s: %s -> %s\n", k, xs, ys);
        }
        json_decref(keys);
    }
    return buf;
}

/* The new object's main fields, for a create. */
static char *object_summary(const json_t *obj)
{
    const json_t *a = json_object_get(obj, "attributes");
    const char *keys[] = {"title",     "name", "sku", "price", "inventory_quantity",
                          "published", "url"};
    char line[1024] = "new:";
    size_t len = strlen(line);
    for (size_t i = 0; i < CAD_ARRAY_LEN(keys) && len < sizeof line - 1; i++) {
        const json_t *v = json_object_get(a, keys[i]);
        if (!v)
            continue;
        char vs[DIFF_VALUE_MAX + 8];
        value_text(v, vs, sizeof vs);
        int w = snprintf(line + len, sizeof line - len, " %s %s,", keys[i], vs);
        if (w > 0)
            len = len + (size_t)w < sizeof line ? len + (size_t)w : sizeof line - 1;
    }
    if (line[len - 1] == ',')
        line[len - 1] = '\0';
    return strdup(line);
}

struct old_row {
    bool found;
    char hash[65];
    json_t *body;
};

static int row_old(void *ctx, const store_row *row)
{
    struct old_row *o = ctx;
    o->found = true;
    snprintf(o->hash, sizeof o->hash, "%s", store_row_text(row, 0));
    o->body = json_loads(store_row_text(row, 1), 0, NULL);
    return 0;
}

static int action_index(const char *a)
{
    return strcmp(a, "create") == 0 ? 0 : strcmp(a, "update") == 0 ? 1 : 2;
}

static int kind_index(const char *k)
{
    return strcmp(k, "catalog-item") == 0 ? 0 : strcmp(k, "catalog-variant") == 0 ? 1 : 2;
}

/* A staged step, counted and added to its phase's digest: one line, `kind ext action hash`. */
static int step_noted(struct sync *s, enum phase ph, const char *kind, const char *ext,
                      const char *action, const char *hash)
{
    if (!s->md[ph]) {
        if (!(s->md[ph] = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(s->md[ph], EVP_sha256(), NULL))
            return cad_fail(CAD_ENOMEM, "out of memory");
    }
    char line[512];
    int n = snprintf(line, sizeof line, "%s\t%s\t%s\t%s\n", kind, ext, action, hash);
    EVP_DigestUpdate(s->md[ph], line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1));
    s->n[ph]++;
    s->jobs[kind_index(kind)][action_index(action)]++;
    int a = action_index(action);
    if (a == 0)
        s->r->creates++;
    else if (a == 1)
        s->r->updates++;
    else
        s->r->deletes++;
    return CAD_OK;
}

/* Notes one object of the shop and stages it when it differs from what Cadence wrote. */
static int stage(struct sync *s, enum phase ph, const char *kind, json_t *obj)
{
    const char *ext =
        json_string_value(json_object_get(json_object_get(obj, "attributes"), "external_id"));
    if (!ext)
        return cad_fail(CAD_EINVAL, "a mapped %s has no external_id", kind);
    char *body = json_dumps(obj, JSON_SORT_KEYS | JSON_COMPACT);
    if (!body)
        return cad_fail(CAD_ENOMEM, "out of memory");
    char hash[65];
    sha256_hex(body, strlen(body), hash);
    EVP_DigestUpdate(s->snapshot, kind, strlen(kind) + 1);
    EVP_DigestUpdate(s->snapshot, ext, strlen(ext) + 1);
    EVP_DigestUpdate(s->snapshot, hash, 64);
    int rc = s->first ? CAD_OK
                      : store_exec(s->st,
                                   "INSERT INTO temp.sync_seen (kind, external_id) VALUES ($1, $2) "
                                   "ON CONFLICT DO NOTHING",
                                   SV_ARGS(SV_TEXT(kind), SV_TEXT(ext)));
    struct old_row old = {0};
    if (!rc && !s->first)
        rc = store_query(s->st,
                         "SELECT content_hash, body FROM catalog_objects WHERE tenant_id = $1 AND "
                         "kind = $2 AND external_id = $3",
                         SV_ARGS(SV_TEXT(s->tenant), SV_TEXT(kind), SV_TEXT(ext)), row_old, &old);
    if (!rc && old.found && strcmp(old.hash, hash) == 0) {
        s->r->unchanged++;
    } else if (!rc) {
        char *diff = old.found ? object_diff(old.body, obj) : object_summary(obj);
        const char *action = old.found ? "update" : "create";
        rc = diff
                 ? store_exec(s->st,
                              "INSERT INTO temp.sync_stage (ord, kind, external_id, action, "
                              "content_hash, body, diff) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                              SV_ARGS(SV_INT(ORD(ph, s->n[ph] + 1)), SV_TEXT(kind), SV_TEXT(ext),
                                      SV_TEXT(action), SV_TEXT(hash), SV_TEXT(body), SV_TEXT(diff)))
                 : cad_fail(CAD_ENOMEM, "out of memory");
        if (!rc)
            rc = step_noted(s, ph, kind, ext, action, hash);
        free(diff);
    }
    json_decref(old.body);
    free(body);
    return rc;
}

static int tx_step(struct sync *s)
{
    if (++s->in_tx < PRODUCTS_PER_TX)
        return CAD_OK;
    s->in_tx = 0;
    s->tx_open = false;
    return store_commit(s->st);
}

static int on_product(void *ctx, const struct shop_product *p)
{
    struct sync *s = ctx;
    char err[512];
    json_t *item = NULL, *variants = NULL;
    if (catalog_map_product(p, s->shop, &item, &variants, err, sizeof err) != CAD_OK) {
        cad_err_clear();
        if (!s->skipped++)
            snprintf(s->first_skip, sizeof s->first_skip, "%s", err);
        return 0;
    }
    s->r->products++;
    int rc = CAD_OK;
    if (!s->tx_open) {
        if ((rc = store_begin_work(s->st))) {
            json_decref(item);
            json_decref(variants);
            return rc;
        }
        s->tx_open = true;
    }
    for (size_t i = 0; i < p->n_collections && !rc; i++) {
        bool added = false;
        if (!idset_add(&s->cats, p->collection_ids[i], &added))
            rc = cad_fail(CAD_ENOMEM, "out of memory");
        if (rc || !added)
            continue;
        json_t *cat =
            catalog_map_category(p->collection_ids[i], p->collection_titles[i], err, sizeof err);
        if (!cat) {
            cad_err_clear();
            continue;
        }
        s->r->categories++;
        rc = stage(s, PH_CATEGORY, "catalog-category", cat);
        json_decref(cat);
    }
    if (!rc)
        rc = stage(s, PH_ITEM, "catalog-item", item);
    size_t i;
    json_t *v;
    json_array_foreach(variants, i, v)
    {
        if (rc)
            break;
        s->r->variants++;
        rc = stage(s, PH_VARIANT, "catalog-variant", v);
    }
    json_decref(item);
    json_decref(variants);
    return rc ? rc : tx_step(s);
}

static int create_work(store *st)
{
    int rc = store_exec(st,
                        "CREATE TEMP TABLE sync_seen (kind TEXT NOT NULL, external_id TEXT NOT "
                        "NULL, PRIMARY KEY (kind, external_id)) WITHOUT ROWID",
                        SV_NONE);
    if (!rc)
        rc = store_exec(st,
                        "CREATE TEMP TABLE sync_stage (ord INTEGER PRIMARY KEY, kind TEXT NOT "
                        "NULL, external_id TEXT NOT NULL, action TEXT NOT NULL, content_hash TEXT "
                        "NOT NULL, body TEXT NOT NULL, diff TEXT NOT NULL)",
                        SV_NONE);
    return rc;
}

static void cleanup_work(struct sync *s)
{
    if (store_exec(s->st, "DROP TABLE IF EXISTS temp.sync_seen", SV_NONE) ||
        store_exec(s->st, "DROP TABLE IF EXISTS temp.sync_stage", SV_NONE))
        cad_err_clear();
    for (int ph = 0; ph < PH_COUNT; ph++) {
        EVP_MD_CTX_free(s->md[ph]);
        s->md[ph] = NULL;
    }
}

/* ---- the shop's credential ---- */

/* Whether the Klaviyo account already receives Shopify data through Klaviyo's own integration
 * (its metrics say so), in r->integration_warning; "" when not. */
static void check_integration(store *st, vault *v, const char *tenant_id, const char *actor,
                              struct catalog_sync_result *r)
{
    klaviyo_client *c = NULL;
    if (plan_client_open(st, v, tenant_id, actor, &c)) {
        snprintf(r->integration_warning, sizeof r->integration_warning,
                 "could not check whether Klaviyo's own Shopify integration feeds this account: "
                 "%.300s",
                 cad_errmsg());
        cad_err_clear();
        return;
    }
    char filter[128], target[512];
    const char *kv[] = {"filter", filter, NULL};
    struct klaviyo_result res = {0};
    if (!klaviyo_filter_equals(filter, sizeof filter, "integration.name", "Shopify") &&
        !klaviyo_target(target, sizeof target, "/api/metrics", kv)) {
        struct klaviyo_request rq = {.method = "GET", .target = target};
        klaviyo_call(c, &rq, &res);
    }
    if (res.outcome == KLAVIYO_OUT_OK) {
        size_t n = json_array_size(json_object_get(res.doc, "data"));
        if (n)
            snprintf(r->integration_warning, sizeof r->integration_warning,
                     "this Klaviyo account already receives Shopify data through Klaviyo's own "
                     "Shopify integration (%zu Shopify metric%s); if that integration syncs the "
                     "catalog too, a Cadence sync would add a second, custom catalog and "
                     "duplicate every product: turn one of them off first",
                     n, n == 1 ? "" : "s");
    } else {
        snprintf(r->integration_warning, sizeof r->integration_warning,
                 "could not check whether Klaviyo's own Shopify integration feeds this account "
                 "(GET /api/metrics: %.200s); if it syncs the catalog, this sync would duplicate "
                 "it",
                 res.message);
    }
    klaviyo_result_clear(&res);
    klaviyo_client_free(c);
    cad_err_clear();
}

/* ---- storing the plan ---- */

static const char *job_op(int kind, int action)
{
    static const char *const ops[3][3] = {
        {"bulk_create_catalog_items", "bulk_update_catalog_items", "bulk_delete_catalog_items"},
        {"bulk_create_catalog_variants", "bulk_update_catalog_variants",
         "bulk_delete_catalog_variants"},
        {"bulk_create_catalog_categories", "bulk_update_catalog_categories",
         "bulk_delete_catalog_categories"}};
    return ops[kind][action];
}

static const char *const job_paths[3] = {"item", "variant", "category"};
static const char *const job_verbs[3] = {"create", "update", "delete"};

/* The plan hash: SHA-256 over a header (format, tenant, source, the snapshot of everything read)
 * and then, phase by phase in the order applied, the SHA-256 of the phase's step lines in order
 * (step_noted). Step k of the plan is the k-th line overall. */
static int catalog_plan_hash(struct sync *s, const char *snapshot_hash, char hash[65])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(md);
        return cad_fail(CAD_ENOMEM, "out of memory");
    }
    char head[512];
    int hn = snprintf(head, sizeof head, "cadence-catalog-plan/2\n%s\n%s%s\n%s\n", s->tenant,
                      PLAN_CATALOG_SOURCE, s->shop, snapshot_hash);
    EVP_DigestUpdate(md, head, (size_t)hn);
    for (int ph = PH_CATEGORY; ph < PH_COUNT; ph++) {
        unsigned char pd[32];
        if (!s->md[ph])
            continue;
        EVP_DigestFinal_ex(s->md[ph], pd, NULL);
        char line[96];
        int n = snprintf(line, sizeof line, "%d\t%ld\t", ph, s->n[ph]);
        EVP_DigestUpdate(md, line, (size_t)n);
        EVP_DigestUpdate(md, pd, sizeof pd);
    }
    unsigned char dg[32];
    EVP_DigestFinal_ex(md, dg, NULL);
    EVP_MD_CTX_free(md);
    hex_encode(dg, sizeof dg, hash);
    return CAD_OK;
}

static int store_sync_plan(struct sync *s, const char *actor, int64_t ttl_ms,
                           const char *snapshot_hash)
{
    struct catalog_sync_result *r = s->r;
    char hash[65];
    int rc = catalog_plan_hash(s, snapshot_hash, hash);
    if (rc)
        return rc;
    long off[PH_COUNT] = {0}, n = 0;
    for (int ph = PH_CATEGORY; ph < PH_COUNT; ph++) {
        off[ph] = n;
        n += s->n[ph];
    }

    /* Item jobs (and their polls) are counted by plan_estimate itself; variant and category jobs
     * go in as one job call and one poll each. */
    json_t *job_calls = json_array();
    for (int k = 1; k < 3; k++)
        for (int a = 0; a < 3; a++)
            for (long jn = 0; jn < (s->jobs[k][a] + 99) / 100; jn++) {
                char path[128], poll[96];
                snprintf(path, sizeof path, "/api/catalog-%s-bulk-%s-jobs", job_paths[k],
                         job_verbs[a]);
                snprintf(poll, sizeof poll, "get_bulk_%s_%s_job", job_verbs[a],
                         k == 1 ? "variants" : "categories");
                json_array_append_new(job_calls,
                                      json_pack("[{s:s,s:s},{s:s,s:s}]", "operation", job_op(k, a),
                                                "path", path, "operation", poll, "path", path));
            }
    int64_t est_ms = 0;
    json_t *estimate = plan_estimate(job_calls, (size_t)(s->jobs[0][0] + 99) / 100,
                                     (size_t)(s->jobs[0][1] + 99) / 100,
                                     (size_t)(s->jobs[0][2] + 99) / 100, &est_ms);
    json_decref(job_calls);
    char *est = estimate ? json_dumps(estimate, JSON_COMPACT) : NULL;
    json_decref(estimate);
    if (!est)
        return cad_fail(CAD_ENOMEM, "out of memory");

    char source[256];
    snprintf(source, sizeof source, "%s%s", PLAN_CATALOG_SOURCE, s->shop);
    int64_t now = time_now_ms();
    rc = store_begin(s->st);
    if (rc) {
        free(est);
        return rc;
    }
    rc = store_exec(s->st,
                    "INSERT INTO plans (id, tenant_id, bundle_dir, bundle_hash, hash, prune, "
                    "created_ms, created_by, expires_ms, estimate_ms, estimate, n_steps) VALUES "
                    "($1, $2, $3, $4, $5, 0, $6, $7, $8, $9, $10, $11)",
                    SV_ARGS(SV_TEXT(s->sync_id), SV_TEXT(s->tenant), SV_TEXT(source),
                            SV_TEXT(snapshot_hash), SV_TEXT(hash), SV_INT(now), SV_TEXT(actor),
                            SV_INT(now + ttl_ms), SV_INT(est_ms), SV_TEXT(est), SV_INT(n)));
    free(est);
    if (!rc)
        rc = store_exec(s->st,
                        "INSERT INTO plan_state (plan_id, status, updated_ms) VALUES ($1, "
                        "'planned', $2)",
                        SV_ARGS(SV_TEXT(s->sync_id), SV_INT(now)));
        /* The steps and their objects in one statement each, in the work table's own order: a
         * step's number is its phase's offset plus its place in the phase. A step's write token
         * names plan, step and hash. */
#define SEQ_OF_ORD                                                                                 \
    "(CASE ord >> 40 WHEN 1 THEN $3 WHEN 2 THEN $4 WHEN 3 THEN $5 WHEN 4 THEN $6 WHEN 5 THEN $7 "  \
    "ELSE $8 END + (ord & 1099511627775))"
#define SEQ_ARGS                                                                                   \
    SV_INT(off[1]), SV_INT(off[2]), SV_INT(off[3]), SV_INT(off[4]), SV_INT(off[5]), SV_INT(off[6])
    if (!rc)
        rc = store_exec(
            s->st,
            "INSERT INTO plan_steps (plan_id, seq, kind, name, action, content_hash, remote_id, "
            "remote_updated, deps, calls, diff, note, token) SELECT $1, rn, kind, external_id, "
            "action, content_hash, '$custom:::$default:::' || external_id, NULL, '[]', "
            "'[{\"method\":\"POST\",\"operation\":\"bulk_' || action || '_catalog_' || CASE kind "
            "WHEN 'catalog-item' THEN 'items' WHEN 'catalog-variant' THEN 'variants' ELSE "
            "'categories' END || '\",\"path\":\"/api/' || kind || '-bulk-' || action || "
            "'-jobs\",\"per\":100}]', diff, '', 'plan:' || $1 || ':' || rn || ':' || $2 FROM "
            "(SELECT " SEQ_OF_ORD " AS rn, * FROM temp.sync_stage ORDER BY ord)",
            SV_ARGS(SV_TEXT(s->sync_id), SV_TEXT(hash), SEQ_ARGS));
    if (!rc)
        rc = store_exec(s->st,
                        "INSERT INTO plan_step_bodies (plan_id, seq, body) SELECT $1, " SEQ_OF_ORD
                        ", body FROM temp.sync_stage WHERE action != 'delete' ORDER BY ord",
                        SV_ARGS(SV_TEXT(s->sync_id), SV_TEXT(hash), SEQ_ARGS));
#undef SEQ_OF_ORD
#undef SEQ_ARGS
    if (!rc) {
        char detail[512];
        snprintf(detail, sizeof detail,
                 "catalog sync plan %s from %s: %ld steps (%ld creates, %ld updates, %ld "
                 "deletes; %ld unchanged), hash %.16s…",
                 s->sync_id, s->shop, n, r->creates, r->updates, r->deletes, r->unchanged, hash);
        struct audit_entry e = {.tenant_id = s->tenant,
                                .actor = actor,
                                .action = "plan.create",
                                .payload_sha256 = hash,
                                .duration_ms = -1,
                                .detail = detail};
        rc = audit_append(s->st, &e, NULL);
    }
    if (rc) {
        store_rollback(s->st);
        return rc;
    }
    return store_commit(s->st);
}

/* A delete step, in the order staged: counted and hashed. */
static int row_delete(void *ctx, const store_row *row)
{
    struct sync *s = ctx;
    enum phase ph = (enum phase)(store_row_int(row, 0) >> ORD_SHIFT);
    if (ph < PH_DEL_VARIANT || ph >= PH_COUNT)
        return cad_fail(CAD_ECORRUPT, "a staged delete has phase %d", (int)ph);
    return step_noted(s, ph, store_row_text(row, 1), store_row_text(row, 2), "delete", "");
}

static int row_exists(void *ctx, const store_row *row)
{
    (void)row;
    *(bool *)ctx = true;
    return 0;
}

static int sync_run(store *st, store *work, vault *v, const char *tenant_id,
                    const struct catalog_sync_options *o, struct catalog_sync_result *r,
                    const char *actor, int64_t ttl_ms, bool first, bool verified);

int plan_catalog_sync(store *st, vault *v, const char *tenant_id,
                      const struct catalog_sync_options *o, struct catalog_sync_result *r)
{
    memset(r, 0, sizeof *r);
    const char *actor = o && o->actor ? o->actor : AUDIT_ACTOR_SYSTEM;
    int64_t ttl_ms = o ? o->ttl_ms : 0;
    int rc;
    if (!ttl_ms && (rc = plan_ttl_from_env(&ttl_ms)))
        return rc;
    struct credential_info ci;
    if ((rc = credential_info(st, tenant_id, CRED_SHOPIFY, &ci)))
        return rc;
    if (!ci.has_secret)
        return cad_fail(CAD_ESTATE,
                        "tenant %s has no Shopify token; the brand adds one in onboarding Step 4, "
                        "or `cadence key set %s --kind shopify --shop DOMAIN`",
                        tenant_id, tenant_id);
    if (ci.state == KEY_REVOKED || ci.state == KEY_INVALID)
        return cad_fail(CAD_EAUTH,
                        "tenant %s's Shopify token (…%s) is %s; nothing is read until a new one "
                        "is verified (`cadence key set %s --kind shopify --shop DOMAIN --verify`)",
                        tenant_id, ci.last4, ci.state == KEY_REVOKED ? "revoked" : "invalid",
                        tenant_id);
    json_t *extra = json_loads(ci.extra, 0, NULL);
    snprintf(r->shop, sizeof r->shop, "%s",
             json_string_value(json_object_get(extra, "shop"))
                 ? json_string_value(json_object_get(extra, "shop"))
                 : "");
    json_decref(extra);
    if (!r->shop[0])
        return cad_fail(CAD_ECORRUPT, "tenant %s's Shopify token has no shop domain recorded",
                        tenant_id);

    /* Before the first sync: is Klaviyo's own Shopify integration already feeding the account? */
    bool synced_before = false;
    if ((rc = store_query(st, "SELECT 1 FROM catalog_objects WHERE tenant_id = $1 LIMIT 1",
                          SV_ARGS(SV_TEXT(tenant_id)), row_exists, &synced_before)))
        return rc;
    if (!synced_before)
        check_integration(st, v, tenant_id, actor, r);

    /* The sync's own connection: its work tables, its batches, the plan. The reader's audit
     * records go through `st`, outside the batches, so a batch never has to turn into a write
     * of the shared database halfway. */
    store *work = NULL;
    if ((rc = store_open_again(st, &work)))
        return rc;
    rc = sync_run(st, work, v, tenant_id, o, r, actor, ttl_ms, !synced_before,
                  ci.state == KEY_VERIFIED);
    store_close(work);
    return rc;
}

static int sync_run(store *st, store *work, vault *v, const char *tenant_id,
                    const struct catalog_sync_options *o, struct catalog_sync_result *r,
                    const char *actor, int64_t ttl_ms, bool first, bool verified)
{
    struct sync s = {.st = work, .tenant = tenant_id, .shop = r->shop, .r = r, .first = first};
    unsigned char rnd[6];
    char hex[13];
    int rc;
    if ((rc = random_bytes(rnd, sizeof rnd)))
        return rc;
    hex_encode(rnd, sizeof rnd, hex);
    snprintf(s.sync_id, sizeof s.sync_id, "pl-%s", hex);
    if ((rc = create_work(work)))
        return rc;
    s.snapshot = EVP_MD_CTX_new();
    if (!s.snapshot || !EVP_DigestInit_ex(s.snapshot, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(s.snapshot);
        return cad_fail(CAD_ENOMEM, "out of memory");
    }
    cad_secret *token = NULL;
    if ((rc = credential_open(st, v, tenant_id, CRED_SHOPIFY, &token))) {
        EVP_MD_CTX_free(s.snapshot);
        return rc;
    }
    int64_t t0 = time_mono_ms();
    struct shop_read_stats stats = {0};
    rc = shop_read_catalog(st, tenant_id, actor, r->shop, token,
                           (enum shop_read_mode)(o ? o->read_mode : 0), on_product, &s, &stats);
    if (s.tx_open) {
        if (rc) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", cad_errmsg());
            store_rollback(work);
            rc = cad_fail(rc, "%s", msg);
        } else {
            rc = store_commit(work);
        }
    }
    secret_free(token);
    r->queries = stats.queries;
    r->throttled_waits = stats.throttled_waits;
    r->bytes = stats.bytes;
    r->read_ms = time_mono_ms() - t0;
    unsigned char dg[32];
    char snapshot_hash[65];
    EVP_DigestFinal_ex(s.snapshot, dg, NULL);
    EVP_MD_CTX_free(s.snapshot);
    hex_encode(dg, sizeof dg, snapshot_hash);
    idset_free(&s.cats);
    if (rc) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", cad_errmsg());
        cleanup_work(&s);
        if (rc == CAD_EAUTH && verified &&
            provider_mark_revoked(st, AUDIT_ACTOR_SYSTEM, tenant_id, PROVIDER_SHOPIFY,
                                  "Shopify rejected the token twice (a catalog read, then a shop "
                                  "query); catalog syncs stop until a new token is verified") !=
                CAD_OK)
            cad_log(LOG_ERROR, "catalog.revoked", "tenant=%s cannot record the revocation: %s",
                    tenant_id, cad_errmsg());
        return cad_fail(rc, "reading %s's catalog: %s", r->shop, msg);
    }
    if (s.skipped)
        cad_log(LOG_WARN, "catalog.sync",
                "tenant=%s skipped=%ld products Klaviyo would refuse; the first: %s", tenant_id,
                s.skipped, s.first_skip);

    /* What Cadence wrote and the shop no longer has. */
    int64_t t1 = time_mono_ms();
    rc = store_begin_work(work);
    if (!rc)
        rc = store_exec(
            work,
            "INSERT INTO temp.sync_stage (ord, kind, external_id, action, content_hash, body, "
            "diff) SELECT ((CASE o.kind WHEN 'catalog-variant' THEN 4 WHEN 'catalog-item' THEN 5 "
            "ELSE 6 END) << 40) + ROW_NUMBER() OVER (PARTITION BY o.kind ORDER BY o.external_id), "
            "o.kind, o.external_id, 'delete', '', '', 'no longer in the shop' FROM "
            "catalog_objects o WHERE o.tenant_id = $1 AND NOT EXISTS (SELECT 1 FROM "
            "temp.sync_seen s WHERE s.kind = o.kind AND s.external_id = o.external_id)",
            SV_ARGS(SV_TEXT(tenant_id)));
    if (!rc)
        rc = store_query(work,
                         "SELECT ord, kind, external_id FROM temp.sync_stage WHERE ord >= $1 "
                         "ORDER BY ord",
                         SV_ARGS(SV_INT(ORD(PH_DEL_VARIANT, 0))), row_delete, &s);
    if (rc) {
        store_rollback(work);
        cleanup_work(&s);
        return rc;
    }
    store_commit(work);
    if (r->creates + r->updates + r->deletes > 0)
        rc = store_sync_plan(&s, actor, ttl_ms, snapshot_hash);
    if (!rc && r->creates + r->updates + r->deletes > 0)
        snprintf(r->plan_id, sizeof r->plan_id, "%s", s.sync_id);
    cleanup_work(&s);
    r->plan_ms = time_mono_ms() - t1;
    if (rc)
        return rc;
    int64_t now = time_now_ms();
    return store_exec(
        st,
        "INSERT INTO catalog_settings (tenant_id, last_sync_ms, last_plan_id, "
        "integration_warning, updated_ms) VALUES ($1, $2, $3, $4, $2) ON CONFLICT "
        "(tenant_id) DO UPDATE SET last_sync_ms = excluded.last_sync_ms, "
        "last_plan_id = excluded.last_plan_id, integration_warning = "
        "COALESCE(excluded.integration_warning, catalog_settings.integration_warning), "
        "updated_ms = excluded.updated_ms",
        SV_ARGS(SV_TEXT(tenant_id), SV_INT(now), r->plan_id[0] ? SV_TEXT(r->plan_id) : SV_NULL,
                r->integration_warning[0] ? SV_TEXT(r->integration_warning) : SV_NULL));
}

/* ---- standing approval ---- */

int catalog_approval_set(store *st, const char *admin_email, const char *tenant_id, bool grant)
{
    if (!admin_email || !*admin_email)
        return cad_fail(CAD_EPERM, "a standing approval is given by an admin: give --operator "
                                   "EMAIL or set CADENCE_OPERATOR");
    struct operator_info op;
    int rc = operator_get(st, admin_email, &op);
    if (rc == CAD_ENOTFOUND)
        return cad_fail(CAD_EPERM, "%s is not an operator", admin_email);
    if (rc)
        return rc;
    if (op.disabled || op.role != ROLE_ADMIN)
        return cad_fail(CAD_EPERM, "only an enabled admin may %s a standing approval; %s is %s",
                        grant ? "give" : "withdraw", admin_email,
                        op.disabled ? "disabled" : "an operator, not an admin");
    struct tenant t;
    if ((rc = tenant_get(st, tenant_id, &t)))
        return rc;
    int64_t now = time_now_ms();
    if ((rc = store_begin(st)))
        return rc;
    rc = store_exec(st,
                    "INSERT INTO catalog_settings (tenant_id, approved_by, approved_ms, "
                    "updated_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id) DO UPDATE SET "
                    "approved_by = excluded.approved_by, approved_ms = excluded.approved_ms, "
                    "updated_ms = excluded.updated_ms",
                    SV_ARGS(SV_TEXT(tenant_id), grant ? SV_TEXT(admin_email) : SV_NULL,
                            grant ? SV_INT(now) : SV_NULL, SV_INT(now)));
    if (!rc) {
        char detail[512];
        snprintf(detail, sizeof detail,
                 grant ? "standing approval of catalog-only syncs given for %s: scheduled syncs "
                         "apply without a per-sync confirmation"
                       : "standing approval of catalog-only syncs withdrawn for %s: every sync "
                         "needs a confirmation again",
                 tenant_id);
        struct audit_entry e = {.tenant_id = tenant_id,
                                .actor = admin_email,
                                .action = "catalog.approval",
                                .duration_ms = -1,
                                .detail = detail};
        rc = audit_append(st, &e, NULL);
    }
    if (rc) {
        store_rollback(st);
        return rc;
    }
    return store_commit(st);
}

struct approval_row {
    char *by;
    int64_t *at;
};

static int row_approval(void *ctx, const store_row *row)
{
    struct approval_row *a = ctx;
    snprintf(a->by, 256, "%s", store_row_is_null(row, 0) ? "" : store_row_text(row, 0));
    if (a->at)
        *a->at = store_row_is_null(row, 1) ? 0 : store_row_int(row, 1);
    return 0;
}

int catalog_approval_get(store *st, const char *tenant_id, char by[256], int64_t *at_ms)
{
    by[0] = '\0';
    if (at_ms)
        *at_ms = 0;
    struct approval_row a = {by, at_ms};
    return store_query(st,
                       "SELECT approved_by, approved_ms FROM catalog_settings WHERE tenant_id = $1",
                       SV_ARGS(SV_TEXT(tenant_id)), row_approval, &a);
}

int plan_confirm_standing(store *st, const char *plan_id)
{
    struct plan_row p;
    int rc = plan_row_get(st, plan_id, &p);
    if (rc)
        return rc;
    if (!plan_is_catalog(&p))
        return cad_fail(CAD_ESTATE,
                        "plan %s is not a catalog sync; only those may go under a standing "
                        "approval",
                        plan_id);
    char by[256];
    if ((rc = catalog_approval_get(st, p.tenant_id, by, NULL)))
        return rc;
    if (!by[0])
        return cad_fail(CAD_ESTATE,
                        "tenant %s has no standing approval for catalog syncs; confirm plan %s "
                        "with `cadence plan confirm %s --hash %s`",
                        p.tenant_id, plan_id, plan_id, p.hash);
    if (strcmp(p.status, "planned") != 0)
        return cad_fail(CAD_ESTATE, "plan %s is %s, not awaiting confirmation", plan_id, p.status);
    if ((rc = plan_check_stale(st, &p)))
        return rc;
    char who[300], detail[512];
    snprintf(who, sizeof who, "standing approval of %s", by);
    snprintf(detail, sizeof detail,
             "catalog sync plan %s confirmed (%d steps) under the standing approval %s gave",
             plan_id, p.n_steps, by);
    return plan_record_confirm(st, &p, who, AUDIT_ACTOR_SYSTEM, detail);
}
