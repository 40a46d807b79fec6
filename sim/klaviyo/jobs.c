/*
 * Asynchronous jobs: catalog bulk create/update/delete jobs (9 kinds), profile bulk imports and
 * campaign sends.
 *
 * A job is stored as a normal resource document and registered here. jobs_tick(), called at
 * the start of every request under the state lock, moves each job along on the emulated clock:
 * queued for QUEUED_MS, processing until DONE_MS, then its writes are applied in one go
 * (objects appear only when the job completes, as with Klaviyo) and it becomes complete with
 * completed_count/failed_count and per-item errors.
 *
 * Catalog jobs: 1..100 objects each, 5MB, and at most 500 catalog jobs in progress per account
 * (the 501st gets a 429 "throttled" with Retry-After; the spec states the limit but not the
 * status). Every per-item error of all nine kinds points at its object:
 * /data/attributes/<items|variants|categories>/data/<i>[/attributes/<field>|/relationships/..].
 * A variant whose item does not exist and an item linked to a missing category fail that
 * object only (400 invalid). The fault catalog_item_error_rate makes a fraction of the objects
 * of create/update jobs fail with "'title' is too long." ('name' for categories).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "sim.h"

#define QUEUED_MS       400
#define DONE_MS         1500
#define MAX_CATALOG_JOB 100
#define MAX_IN_PROGRESS 500
#define MAX_PROFILES    10000
#define MAX_JOB_BYTES   ((size_t)5 * 1024 * 1024)
#define TS_FILTERS      "greater-than,greater-or-equal,less-than,less-or-equal,equals"

struct tracked {
    struct sim_account *acct;
    char *type;
    char *id;
};

static struct tracked *tracked;
static size_t ntracked, cap_tracked;

void jobs_track(struct sim_account *a, const char *type, const char *id)
{
    if (ntracked == cap_tracked) {
        cap_tracked = cap_tracked ? cap_tracked * 2 : 32;
        tracked = realloc(tracked, cap_tracked * sizeof *tracked);
        if (!tracked)
            abort();
    }
    tracked[ntracked].acct = a;
    tracked[ntracked].type = strdup(type);
    tracked[ntracked].id = strdup(id);
    if (!tracked[ntracked].type || !tracked[ntracked].id)
        abort();
    ntracked++;
}

void jobs_reset(void)
{
    for (size_t i = 0; i < ntracked; i++) {
        free(tracked[i].type);
        free(tracked[i].id);
    }
    ntracked = 0;
}

static size_t in_progress(struct sim_account *a)
{
    size_t n = 0;
    for (size_t i = 0; i < ntracked; i++)
        n += tracked[i].acct == a && strncmp(tracked[i].type, "catalog-", 8) == 0;
    return n;
}

static json_t *job_error(const char *code, const char *title, const char *detail,
                         const char *pointer)
{
    char id[37];
    sim_id_uuid(id);
    return json_pack("{s:s,s:s,s:s,s:s,s:{s:s}}", "id", id, "code", code, "title", title, "detail",
                     detail, "source", "pointer", pointer);
}

/* "catalog-item-bulk-create-job" -> resource "catalog-item", action "create", key "items". */
struct catalog_kind {
    char job_type[64];
    char res_type[32];
    char action[8];
    const char *key;
};

static bool catalog_kind_of(const char *path, struct catalog_kind *k)
{
    /* path: /api/catalog-<res>-bulk-<action>-jobs[/{id}] */
    char res[16], action[8];
    if (sscanf(path, "/api/catalog-%15[a-z]-bulk-%7[a-z]-jobs", res, action) != 2)
        return false;
    snprintf(k->res_type, sizeof k->res_type, "catalog-%s", res);
    snprintf(k->action, sizeof k->action, "%s", action);
    snprintf(k->job_type, sizeof k->job_type, "catalog-%s-bulk-%s-job", res, action);
    k->key = strcmp(res, "item") == 0      ? "items"
             : strcmp(res, "variant") == 0 ? "variants"
                                           : "categories";
    return true;
}

static void job_base(json_t *doc, size_t total)
{
    char ts[32], exp[32];
    sim_timestamp(ts);
    sim_timestamp_at(time_now_ms() + 7LL * 86400000, exp);
    json_t *a = json_object_get(doc, "attributes");
    json_object_set_new(a, "status", json_string("queued"));
    json_object_set_new(a, "created_at", json_string(ts));
    json_object_set_new(a, "total_count", json_integer((json_int_t)total));
    json_object_set_new(a, "completed_count", json_integer(0));
    json_object_set_new(a, "failed_count", json_integer(0));
    json_object_set_new(a, "completed_at", json_null());
    json_object_set_new(a, "expires_at", json_string(exp));
    json_object_set_new(japi_priv(doc), "t0", json_integer(sim_clock_ms()));
}

static void create_catalog_job(struct sim_req *r)
{
    struct catalog_kind k;
    if (!catalog_kind_of(r->op->path, &k))
        return japi_not_found(r, "job kind", r->path);
    json_t *data = japi_body_data(r, k.job_type, false);
    if (!data)
        return;
    if (r->raw_len > MAX_JOB_BYTES)
        return japi_error(r, 413, "request_too_large", "Request entity too large.",
                          "A bulk job payload may be at most 5MB.", NULL, NULL);
    json_t *items = json_object_get(json_object_get(japi_attrs(data), k.key), "data");
    char ptr[96], d[200];
    snprintf(ptr, sizeof ptr, "/data/attributes/%s/data", k.key);
    if (!json_is_array(items) || json_array_size(items) == 0 ||
        json_array_size(items) > MAX_CATALOG_JOB) {
        snprintf(d, sizeof d, "'%s.data' must hold 1 to %d objects.", k.key, MAX_CATALOG_JOB);
        return japi_bad(r, d, ptr);
    }
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *it = json_array_get(items, i);
        const char *t = json_string_value(json_object_get(it, "type"));
        snprintf(ptr, sizeof ptr, "/data/attributes/%s/data/%zu/type", k.key, i);
        if (!t || strcmp(t, k.res_type) != 0) {
            snprintf(d, sizeof d, "Each object must have type '%s'.", k.res_type);
            return japi_bad(r, d, ptr);
        }
        if (strcmp(k.action, "create") != 0 && !json_string_value(json_object_get(it, "id"))) {
            snprintf(ptr, sizeof ptr, "/data/attributes/%s/data/%zu/id", k.key, i);
            return japi_bad(r, "Each object needs an 'id'.", ptr);
        }
    }
    if (in_progress(r->acct) >= MAX_IN_PROGRESS) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", (DONE_MS + 999) / 1000);
        req_add_header(r, "Retry-After", ra);
        return japi_error(r, 429, "throttled", "Too many jobs in progress.",
                          "At most 500 catalog bulk jobs may be in progress.", NULL, NULL);
    }
    char id[27];
    do
        sim_id_ulid(id);
    while (store_get(r->acct, k.job_type, id));
    json_t *doc = japi_new_doc(k.job_type, id);
    job_base(doc, json_array_size(items));
    json_object_set_new(json_object_get(doc, "attributes"), "errors", json_array());
    json_object_set_new(doc, "relationships", json_pack("{s:{s:[]}}", k.key, "data"));
    json_object_set(japi_priv(doc), "payload", items);
    if (strcmp(k.action, "delete") != 0 && sim.faults.catalog_item_error_rate > 0)
        json_object_set_new(japi_priv(doc), "item_error_rate",
                            json_real(sim.faults.catalog_item_error_rate));
    struct sim_obj *o = store_put(r->acct, doc);
    jobs_track(r->acct, k.job_type, id);
    char prefix[96];
    snprintf(prefix, sizeof prefix, "/api/catalog-%s-bulk-%s-jobs", k.res_type + 8, k.action);
    japi_reply_obj(r, 202, o, prefix);
}

static void get_catalog_job(struct sim_req *r)
{
    struct catalog_kind k;
    if (!catalog_kind_of(r->op->path, &k))
        return japi_not_found(r, "job kind", r->path);
    struct sim_obj *o = japi_find(r, k.job_type, "job");
    if (!o)
        return;
    char prefix[96];
    snprintf(prefix, sizeof prefix, "/api/catalog-%s-bulk-%s-jobs", k.res_type + 8, k.action);
    japi_reply_obj(r, 200, o, prefix);
}

static void get_catalog_jobs(struct sim_req *r)
{
    struct catalog_kind k;
    if (!catalog_kind_of(r->op->path, &k))
        return japi_not_found(r, "job kind", r->path);
    char prefix[96];
    snprintf(prefix, sizeof prefix, "/api/catalog-%s-bulk-%s-jobs", k.res_type + 8, k.action);
    struct japi_list_spec spec = {
        .type = k.job_type,
        .path_prefix = prefix,
        .max_size = 100,
        .default_size = 100,
        .filters = "status:equals",
        .paginated = false,
    };
    /* No page[size] parameter; at most 100 per page, with a cursor. */
    if (req_query(r, "page[size]"))
        return japi_error(r, 400, "invalid", "Invalid input.",
                          "This endpoint does not accept page[size].", NULL, "page[size]");
    spec.paginated = true;
    japi_list(r, &spec);
}

/* A number in [0,1) fixed by --seed, the job id and the object's index (splitmix64 of an FNV-1a
 * hash), so the catalog_item_error_rate fault picks the same objects on every run. */
static double item_draw(const char *job_id, size_t i)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *c = job_id; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    uint64_t z = sim.seed ^ h ^ ((uint64_t)(i + 1) * 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / (double)(1ull << 53);
}

static void finish_catalog_job(struct sim_account *a, struct sim_obj *job)
{
    struct catalog_kind k;
    char path[96];
    snprintf(path, sizeof path, "/api/%ss", json_string_value(json_object_get(job->doc, "type")));
    if (!catalog_kind_of(path, &k))
        return;
    json_t *items = json_object_get(json_object_get(job->doc, "_"), "payload");
    json_t *attrs = json_object_get(job->doc, "attributes");
    json_t *errors = json_object_get(attrs, "errors");
    json_t *links =
        json_object_get(json_object_get(json_object_get(job->doc, "relationships"), k.key), "data");
    double fail_rate =
        json_number_value(json_object_get(json_object_get(job->doc, "_"), "item_error_rate"));
    const char *field = strcmp(k.res_type, "catalog-category") == 0 ? "name" : "title";
    long done = 0, failed = 0;
    for (size_t i = 0; i < json_array_size(items); i++) {
        struct catalog_err e;
        struct sim_obj *o = NULL;
        json_t *it = json_array_get(items, i);
        int st;
        if (fail_rate > 0 && item_draw(job->id, i) < fail_rate) {
            st = 400;
            snprintf(e.detail, sizeof e.detail, "'%s' is too long.", field);
            snprintf(e.pointer, sizeof e.pointer, "/attributes/%s", field);
        } else {
            st = catalog_apply(a, k.res_type, k.action, it, &o, &e);
        }
        if (st == 0) {
            done++;
            const char *id = o ? o->id : json_string_value(json_object_get(it, "id"));
            json_array_append_new(links, japi_linkage(k.res_type, id));
        } else {
            failed++;
            char ptr[300];
            snprintf(ptr, sizeof ptr, "/data/attributes/%s/data/%zu%s", k.key, i, e.pointer);
            json_array_append_new(errors, job_error(st == 404   ? "not_found"
                                                    : st == 409 ? "conflict"
                                                                : "invalid",
                                                    st == 404   ? "Not found"
                                                    : st == 409 ? "Conflict"
                                                                : "Invalid input",
                                                    e.detail, ptr));
        }
    }
    json_object_set_new(attrs, "completed_count", json_integer(done));
    json_object_set_new(attrs, "failed_count", json_integer(failed));
}

/* ---- profile bulk import ---- */

static bool e164(const char *p)
{
    if (!p || p[0] != '+' || strlen(p) < 8 || strlen(p) > 16)
        return false;
    for (const char *c = p + 1; *c; c++)
        if (*c < '0' || *c > '9')
            return false;
    return true;
}

static void bulk_import_profiles(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "profile-bulk-import-job", false);
    if (!data)
        return;
    if (r->raw_len > MAX_JOB_BYTES)
        return japi_error(r, 413, "request_too_large", "Request entity too large.",
                          "A bulk import payload may be at most 5MB.", NULL, NULL);
    json_t *profiles = json_object_get(json_object_get(japi_attrs(data), "profiles"), "data");
    if (!json_is_array(profiles) || json_array_size(profiles) == 0 ||
        json_array_size(profiles) > MAX_PROFILES)
        return japi_bad(r, "'profiles.data' must hold 1 to 10,000 profiles.",
                        "/data/attributes/profiles/data");
    for (size_t i = 0; i < json_array_size(profiles); i++) {
        json_t *p = json_array_get(profiles, i);
        char ptr[96];
        snprintf(ptr, sizeof ptr, "/data/attributes/profiles/data/%zu", i);
        const char *t = json_string_value(json_object_get(p, "type"));
        if (!t || strcmp(t, "profile") != 0 || !json_is_object(json_object_get(p, "attributes")))
            return japi_bad(r, "Each profile must be {\"type\":\"profile\",\"attributes\":{..}}.",
                            ptr);
        char *s = json_dumps(p, JSON_COMPACT);
        size_t n = strlen(s);
        free(s);
        if (n > (size_t)100 * 1024)
            return japi_bad(r, "A profile may be at most 100KB.", ptr);
    }
    json_t *lists =
        json_object_get(json_object_get(json_object_get(data, "relationships"), "lists"), "data");
    json_t *list_links = json_array();
    for (size_t i = 0; i < json_array_size(lists); i++) {
        const char *lid = json_string_value(json_object_get(json_array_get(lists, i), "id"));
        if (!lid || !store_get(r->acct, "list", lid)) {
            json_decref(list_links);
            return japi_bad(r, "A list in 'relationships.lists' does not exist.",
                            "/data/relationships/lists/data");
        }
        json_array_append_new(list_links, japi_linkage("list", lid));
    }
    char id[27];
    do
        sim_id_ulid(id);
    while (store_get(r->acct, "profile-bulk-import-job", id));
    json_t *doc = japi_new_doc("profile-bulk-import-job", id);
    job_base(doc, json_array_size(profiles));
    json_object_set_new(json_object_get(doc, "attributes"), "started_at", json_null());
    json_object_set_new(doc, "relationships",
                        json_pack("{s:{s:o},s:{s:[]},s:{s:[]}}", "lists", "data", list_links,
                                  "profiles", "data", "import-errors", "data"));
    json_object_set(japi_priv(doc), "payload", profiles);
    json_object_set_new(japi_priv(doc), "import_errors", json_array());
    struct sim_obj *o = store_put(r->acct, doc);
    jobs_track(r->acct, "profile-bulk-import-job", id);
    japi_reply_obj(r, 202, o, "/api/profile-bulk-import-jobs");
}

/* The profile an identifier already names, via a small index table "profile-key". */
static struct sim_obj *profile_by_key(struct sim_account *a, const char *kind, const char *v)
{
    char key[600];
    snprintf(key, sizeof key, "%s:%s", kind, v);
    struct sim_obj *k = store_get(a, "profile-key", key);
    if (!k)
        return NULL;
    return store_get(a, "profile", json_string_value(json_object_get(k->doc, "profile_id")));
}

static void profile_index(struct sim_account *a, const char *kind, const char *v, const char *pid)
{
    char key[600];
    snprintf(key, sizeof key, "%s:%s", kind, v);
    store_delete(a, "profile-key", key);
    store_put(a, json_pack("{s:s,s:s,s:s}", "type", "profile-key", "id", key, "profile_id", pid));
}

static void finish_profile_import(struct sim_account *a, struct sim_obj *job)
{
    json_t *priv = json_object_get(job->doc, "_");
    json_t *profiles = json_object_get(priv, "payload");
    json_t *ierrs = json_object_get(priv, "import_errors");
    json_t *attrs = json_object_get(job->doc, "attributes");
    json_t *rels = json_object_get(job->doc, "relationships");
    json_t *plinks = json_object_get(json_object_get(rels, "profiles"), "data");
    json_t *elinks = json_object_get(json_object_get(rels, "import-errors"), "data");
    json_t *lists = json_object_get(json_object_get(rels, "lists"), "data");
    long done = 0, failed = 0;
    static const char *const keys[] = {"email", "phone_number", "external_id"};
    static const char *const kinds[] = {"e", "p", "x"};
    for (size_t i = 0; i < json_array_size(profiles); i++) {
        json_t *p = json_array_get(profiles, i);
        json_t *in = json_object_get(p, "attributes");
        const char *email = json_string_value(json_object_get(in, "email"));
        const char *phone = json_string_value(json_object_get(in, "phone_number"));
        const char *ext = json_string_value(json_object_get(in, "external_id"));
        const char *why = NULL, *field = NULL;
        if (!email && !phone && !ext)
            why = "A profile needs an email, phone_number or external_id.", field = "";
        else if (email && !strchr(email, '@'))
            why = "Invalid email address.", field = "/attributes/email";
        else if (phone && !e164(phone))
            why = "Invalid phone number; expected E.164.", field = "/attributes/phone_number";
        if (why) {
            failed++;
            char eid[37], ptr[160];
            sim_id_uuid(eid);
            snprintf(ptr, sizeof ptr, "/data/attributes/profiles/data/%zu%s", i, field);
            json_array_append_new(ierrs,
                                  json_pack("{s:s,s:s,s:{s:s,s:s,s:s,s:{s:s},s:O}}", "type",
                                            "import-error", "id", eid, "attributes", "code",
                                            "invalid", "title", "Invalid input", "detail", why,
                                            "source", "pointer", ptr, "original_payload", in));
            json_array_append_new(elinks, japi_linkage("import-error", eid));
            continue;
        }
        struct sim_obj *o = NULL;
        const char *vals[] = {email, phone, ext};
        for (int k = 0; k < 3 && !o; k++)
            if (vals[k])
                o = profile_by_key(a, kinds[k], vals[k]);
        if (!o) {
            char pid[27];
            do
                sim_id_ulid(pid);
            while (store_get(a, "profile", pid));
            json_t *doc = japi_new_doc("profile", pid);
            japi_touch(doc, "created", "updated", true);
            o = store_put(a, doc);
        }
        json_t *pa = json_object_get(o->doc, "attributes");
        json_t *props = json_object_get(in, "properties");
        json_t *merged = json_deep_copy(json_object_get(pa, "properties"));
        if (!json_is_object(merged)) {
            json_decref(merged);
            merged = json_object();
        }
        if (json_is_object(props))
            json_object_update(merged, props);
        json_object_update(pa, in);
        json_object_set_new(pa, "properties", merged);
        japi_touch(o->doc, "created", "updated", false);
        for (int k = 0; k < 3; k++)
            if (json_string_value(json_object_get(pa, keys[k])))
                profile_index(a, kinds[k], json_string_value(json_object_get(pa, keys[k])), o->id);
        json_array_append_new(plinks, japi_linkage("profile", o->id));
        for (size_t l = 0; l < json_array_size(lists); l++) {
            struct sim_obj *list = store_get(
                a, "list", json_string_value(json_object_get(json_array_get(lists, l), "id")));
            if (!list)
                continue;
            json_t *members = json_object_get(japi_priv(list->doc), "profile_ids");
            if (!members) {
                members = json_object();
                json_object_set_new(japi_priv(list->doc), "profile_ids", members);
            }
            json_object_set_new(members, o->id, json_true());
        }
        done++;
    }
    json_object_set_new(attrs, "completed_count", json_integer(done));
    json_object_set_new(attrs, "failed_count", json_integer(failed));
}

static void get_import_job(struct sim_req *r)
{
    struct sim_obj *o = japi_find(r, "profile-bulk-import-job", "profile bulk import job");
    if (o)
        japi_reply_obj(r, 200, o, "/api/profile-bulk-import-jobs");
}

static void get_import_jobs(struct sim_req *r)
{
    static const struct japi_list_spec spec = {
        .type = "profile-bulk-import-job",
        .path_prefix = "/api/profile-bulk-import-jobs",
        .max_size = 100,
        .default_size = 20,
        .filters = "status:equals,any[]",
        .sorts = "created_at",
        .paginated = true,
    };
    japi_list(r, &spec);
}

static void get_import_errors(struct sim_req *r)
{
    struct sim_obj *o = japi_find(r, "profile-bulk-import-job", "profile bulk import job");
    if (!o)
        return;
    json_t *errs = json_deep_copy(json_object_get(json_object_get(o->doc, "_"), "import_errors"));
    char *self = japi_self_url(r, NULL);
    r->resp = json_pack("{s:o,s:{s:s}}", "data", errs, "links", "self", self);
    free(self);
    r->status = 200;
}

/* ---- progress ---- */

static void finish(struct sim_account *a, struct sim_obj *job)
{
    const char *type = json_string_value(json_object_get(job->doc, "type"));
    if (strncmp(type, "catalog-", 8) == 0)
        finish_catalog_job(a, job);
    else if (strcmp(type, "profile-bulk-import-job") == 0)
        finish_profile_import(a, job);
    else if (strcmp(type, "campaign-send-job") == 0) {
        /* No campaign under the job's id (c NULL): nothing to mark sent. */
        struct sim_obj *c = store_get(a, "campaign", job->id);
        json_t *ca = c ? json_object_get(c->doc, "attributes") : NULL;
        const char *st = json_string_value(json_object_get(ca, "status"));
        if (c && st && strcmp(st, "Sending") == 0) {
            json_object_set_new(ca, "status", json_string("Sent"));
            japi_touch(c->doc, NULL, "updated_at", false);
        }
    }
    json_t *attrs = json_object_get(job->doc, "attributes");
    json_object_set_new(attrs, "status", json_string("complete"));
    if (json_object_get(attrs, "completed_at")) {
        char ts[32];
        sim_timestamp(ts);
        json_object_set_new(attrs, "completed_at", json_string(ts));
    }
    json_object_del(json_object_get(job->doc, "_"), "payload");
}

void jobs_tick(void)
{
    int64_t now = sim_clock_ms();
    size_t w = 0;
    for (size_t i = 0; i < ntracked; i++) {
        struct tracked *t = &tracked[i];
        struct sim_obj *job = store_get(t->acct, t->type, t->id);
        json_t *attrs = job ? json_object_get(job->doc, "attributes") : NULL;
        const char *status = json_string_value(json_object_get(attrs, "status"));
        bool keep = job && status && strcmp(status, "cancelled") != 0;
        if (keep) {
            int64_t t0 = json_integer_value(json_object_get(json_object_get(job->doc, "_"), "t0"));
            if (now - t0 >= DONE_MS) {
                finish(t->acct, job);
                keep = false;
            } else if (now - t0 >= QUEUED_MS && strcmp(status, "queued") == 0) {
                json_object_set_new(attrs, "status", json_string("processing"));
                if (json_object_get(attrs, "started_at")) {
                    char ts[32];
                    sim_timestamp(ts);
                    json_object_set_new(attrs, "started_at", json_string(ts));
                }
            }
        }
        if (keep) {
            tracked[w++] = *t;
        } else {
            free(t->type);
            free(t->id);
        }
    }
    ntracked = w;
}

const struct sim_route jobs_routes[] = {
    {"bulk_create_catalog_items", create_catalog_job},
    {"bulk_update_catalog_items", create_catalog_job},
    {"bulk_delete_catalog_items", create_catalog_job},
    {"bulk_create_catalog_variants", create_catalog_job},
    {"bulk_update_catalog_variants", create_catalog_job},
    {"bulk_delete_catalog_variants", create_catalog_job},
    {"bulk_create_catalog_categories", create_catalog_job},
    {"bulk_update_catalog_categories", create_catalog_job},
    {"bulk_delete_catalog_categories", create_catalog_job},
    {"get_bulk_create_catalog_items_job", get_catalog_job},
    {"get_bulk_update_catalog_items_job", get_catalog_job},
    {"get_bulk_delete_catalog_items_job", get_catalog_job},
    {"get_bulk_create_variants_job", get_catalog_job},
    {"get_bulk_update_variants_job", get_catalog_job},
    {"get_bulk_delete_variants_job", get_catalog_job},
    {"get_bulk_create_categories_job", get_catalog_job},
    {"get_bulk_update_categories_job", get_catalog_job},
    {"get_bulk_delete_categories_job", get_catalog_job},
    {"get_bulk_create_catalog_items_jobs", get_catalog_jobs},
    {"get_bulk_update_catalog_items_jobs", get_catalog_jobs},
    {"get_bulk_delete_catalog_items_jobs", get_catalog_jobs},
    {"get_bulk_create_variants_jobs", get_catalog_jobs},
    {"get_bulk_update_variants_jobs", get_catalog_jobs},
    {"get_bulk_delete_variants_jobs", get_catalog_jobs},
    {"get_bulk_create_categories_jobs", get_catalog_jobs},
    {"get_bulk_update_categories_jobs", get_catalog_jobs},
    {"get_bulk_delete_categories_jobs", get_catalog_jobs},
    {"bulk_import_profiles", bulk_import_profiles},
    {"get_bulk_import_profiles_job", get_import_job},
    {"get_bulk_import_profiles_jobs", get_import_jobs},
    {"get_errors_for_bulk_import_profiles_job", get_import_errors},
    {NULL, NULL},
};
