/*
 * Making, storing, showing and confirming plans.
 *
 * A plan is computed against the account as it is: every object of each kind the bundle (or, with
 * --prune, Cadence's earlier pushes) touches is listed once, recorded objects are matched by id
 * (their `updated` time and our recorded content hash tell whether anything changed), others by
 * exact name or deterministic id. The plan and its steps are stored once and never updated (the
 * schema's triggers refuse it); confirmation and progress live beside them.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/util.h"
#include "kspec/kspec.h"
#include "plan/plan_int.h"
#include "tenant/tenant.h"

const char *plan_action_name(enum plan_action a)
{
    static const char *const names[] = {"create", "update", "replace", "delete", "unchanged"};
    return (unsigned)a < 5 ? names[a] : "?";
}

int plan_ttl_from_env(int64_t *ttl_ms)
{
    const char *s = getenv("CADENCE_PLAN_TTL");
    *ttl_ms = 86400LL * 1000;
    if (!s || !*s)
        return CAD_OK;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end || v < 1 || v > 2592000)
        return cad_fail(CAD_EINVAL,
                        "CADENCE_PLAN_TTL is \"%s\"; give the seconds an unconfirmed plan lives "
                        "(1 to 2592000)",
                        s);
    *ttl_ms = v * 1000;
    return CAD_OK;
}

/* ---- stored rows ---- */

static int row_plan(void *ctx, const store_row *r)
{
    struct plan_row *p = ctx;
    snprintf(p->id, sizeof p->id, "%s", store_row_text(r, 0));
    snprintf(p->tenant_id, sizeof p->tenant_id, "%s", store_row_text(r, 1));
    snprintf(p->bundle_dir, sizeof p->bundle_dir, "%s", store_row_text(r, 2));
    snprintf(p->bundle_hash, sizeof p->bundle_hash, "%s", store_row_text(r, 3));
    snprintf(p->hash, sizeof p->hash, "%s", store_row_text(r, 4));
    p->prune = store_row_int(r, 5) != 0;
    p->created_ms = store_row_int(r, 6);
    p->expires_ms = store_row_int(r, 7);
    snprintf(p->status, sizeof p->status, "%s", store_row_text(r, 8));
    snprintf(p->confirmed_by, sizeof p->confirmed_by, "%s", store_row_text(r, 9));
    p->confirmed_ms = store_row_int(r, 10);
    p->started_ms = store_row_int(r, 11);
    p->n_steps = (int)store_row_int(r, 12);
    return 1;
}

int plan_row_get(store *st, const char *id, struct plan_row *out)
{
    memset(out, 0, sizeof *out);
    int rc = store_query(st,
                         "SELECT p.id, p.tenant_id, p.bundle_dir, p.bundle_hash, p.hash, p.prune, "
                         "p.created_ms, p.expires_ms, s.status, s.confirmed_by, s.confirmed_ms, "
                         "s.started_ms, p.n_steps FROM plans p JOIN plan_state s ON s.plan_id = "
                         "p.id WHERE p.id = $1",
                         SV_ARGS(SV_TEXT(id)), row_plan, out);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return cad_fail(CAD_ENOTFOUND, "no plan \"%s\" (see `cadence plan list`)", id);
    return CAD_OK;
}

int plan_set_status(store *st, const char *id, const char *status, const char *detail)
{
    return store_exec(
        st,
        "UPDATE plan_state SET status = $2, detail = COALESCE($3, detail), "
        "updated_ms = $4 WHERE plan_id = $1",
        SV_ARGS(SV_TEXT(id), SV_TEXT(status), SV_TEXT(detail), SV_INT(time_now_ms())));
}

static int row_text(void *ctx, const store_row *r)
{
    snprintf(ctx, 256, "%s", store_row_text(r, 0));
    return 1;
}

int plan_check_stale(store *st, const struct plan_row *p)
{
    char other[256] = "";
    int64_t since = p->started_ms ? p->started_ms : p->created_ms;
    int rc =
        store_query(st,
                    "SELECT s.plan_id FROM plan_state s JOIN plans p ON p.id = s.plan_id "
                    "WHERE p.tenant_id = $1 AND s.plan_id <> $2 AND s.started_ms > $3 "
                    "ORDER BY s.started_ms LIMIT 1",
                    SV_ARGS(SV_TEXT(p->tenant_id), SV_TEXT(p->id), SV_INT(since)), row_text, other);
    if (rc < 0)
        return rc;
    if (rc > 0)
        return cad_fail(CAD_ESTATE,
                        "plan %s is stale: plan %s was applied to %s's account after it was made, "
                        "so the account is no longer what this plan was computed against; make a "
                        "new plan with `cadence plan create %s %s`",
                        p->id, other, p->tenant_id, p->tenant_id, p->bundle_dir);
    return CAD_OK;
}

bool plan_is_catalog(const struct plan_row *p)
{
    return strncmp(p->bundle_dir, PLAN_CATALOG_SOURCE, strlen(PLAN_CATALOG_SOURCE)) == 0;
}

int plan_check_bundle(const struct plan_row *p, struct bundle **out)
{
    struct bundle *b = NULL;
    struct bundle_error errs[4];
    size_t nerr = 0;
    if (out)
        *out = NULL;
    if (plan_is_catalog(p)) /* its content is stored with the plan: nothing on disk to change */
        return CAD_OK;
    int rc = bundle_load(p->bundle_dir, &b, errs, 4, &nerr);
    if (rc) {
        char line[1200] = "";
        if (nerr)
            bundle_error_format(&errs[0], line, sizeof line);
        return cad_fail(CAD_ESTATE,
                        "the bundle %s no longer loads (%zu problem%s; first: %s), so it is not "
                        "the bundle plan %s was made from; fix it and make a new plan",
                        p->bundle_dir, nerr, nerr == 1 ? "" : "s", line, p->id);
    }
    if (strcmp(b->hash, p->bundle_hash) != 0) {
        char now_hash[65];
        snprintf(now_hash, sizeof now_hash, "%s", b->hash);
        bundle_free(b);
        return cad_fail(CAD_ESTATE,
                        "the bundle %s changed since plan %s was made (its hash is now %.12s…, "
                        "the plan was made from %.12s…); nothing was changed in Klaviyo: make a "
                        "new plan with `cadence plan create %s %s`",
                        p->bundle_dir, p->id, now_hash, p->bundle_hash, p->tenant_id,
                        p->bundle_dir);
    }
    if (out)
        *out = b;
    else
        bundle_free(b);
    return CAD_OK;
}

/* ---- computing a plan ---- */

struct rec_list {
    struct plan_recorded *r;
    size_t n, cap;
};

static int row_recorded(void *ctx, const store_row *row)
{
    struct rec_list *l = ctx;
    enum asset_kind k;
    if (asset_kind_parse(store_row_text(row, 0), &k) != CAD_OK) {
        cad_err_clear();
        return 0;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct plan_recorded *p = realloc(l->r, cap * sizeof *p);
        if (!p)
            return CAD_ENOMEM;
        l->r = p;
        l->cap = cap;
    }
    struct plan_recorded *r = &l->r[l->n++];
    r->kind = k;
    r->name = strdup(store_row_text(row, 1));
    r->remote_id = strdup(store_row_text(row, 2));
    r->hash = strdup(store_row_text(row, 3));
    r->updated = store_row_is_null(row, 4) ? NULL : strdup(store_row_text(row, 4));
    return 0;
}

static int cmp_rec(const void *a, const void *b)
{
    const struct plan_recorded *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return strcmp(x->name, y->name);
}

static struct plan_recorded *rec_find(struct rec_list *l, enum asset_kind k, const char *name)
{
    struct plan_recorded key = {.kind = k, .name = (char *)name};
    return l->n ? bsearch(&key, l->r, l->n, sizeof *l->r, cmp_rec) : NULL;
}

static void rec_free(struct rec_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->r[i].name);
        free(l->r[i].remote_id);
        free(l->r[i].hash);
        free(l->r[i].updated);
    }
    free(l->r);
}

struct maker {
    struct bundle *b;
    struct remote_set sets[ASSET_KIND_COUNT];
    struct rec_list rec;
    const struct remote_obj **live; /* per asset, NULL when absent */
    int *seq_of;                    /* per asset */
};

static const char *resolve_live(void *ctx, enum asset_kind kind, const char *name)
{
    struct maker *m = ctx;
    const struct bundle_asset *a = bundle_find(m->b, kind, name);
    if (!a)
        return NULL;
    const struct remote_obj *o = m->live[a - m->b->assets];
    return o ? o->id : NULL;
}

static void add_call(json_t *calls, const char *method, const char *path, const char *note)
{
    const struct kspec_op *op = kspec_find(method, path);
    json_t *c = json_pack("{s:s,s:s,s:s}", "method", method, "path", path, "operation",
                          op ? op->operation_id : "?");
    if (note)
        json_object_set_new(c, "note", json_string(note));
    json_array_append_new(calls, c);
}

static int count_template_refs(const struct bundle_asset *a)
{
    int n = 0;
    for (size_t i = 0; i < a->n_refs; i++)
        n += a->refs[i].kind == ASSET_TEMPLATE;
    return n;
}

static void step_calls(const struct bundle_asset *a, enum asset_kind kind, enum plan_action act,
                       json_t *calls)
{
    const struct kind_info *ki = kind_info(kind);
    char item[256];
    snprintf(item, sizeof item, "%s/{id}", ki->collection);
    if (kind == ASSET_CATALOG_ITEM) {
        const char *verb = act == PLAN_CREATE ? "create" : act == PLAN_DELETE ? "delete" : "update";
        char job[128], poll[160];
        snprintf(job, sizeof job, "/api/catalog-item-bulk-%s-jobs", verb);
        snprintf(poll, sizeof poll, "%s/{job_id}", job);
        if (act == PLAN_UNCHANGED)
            return;
        if (act != PLAN_CREATE)
            add_call(calls, "GET", "/api/catalog-items", "one read per 100 items (conflict check)");
        add_call(calls, "POST", job, "one bulk job per 100 items");
        add_call(calls, "GET", poll, "polled until the job completes");
        return;
    }
    if (act == PLAN_UNCHANGED)
        return;
    if (act == PLAN_UPDATE || act == PLAN_DELETE || (act == PLAN_REPLACE && ki->can_delete))
        add_call(calls, "GET", item, "conflict check: has `updated` moved?");
    if (act == PLAN_DELETE || (act == PLAN_REPLACE && ki->can_delete))
        add_call(calls, "DELETE", item, NULL);
    if (act == PLAN_CREATE || act == PLAN_REPLACE)
        add_call(calls, "POST", ki->collection, NULL);
    if (act == PLAN_UPDATE && ki->can_update)
        add_call(calls, "PATCH", item, NULL);
    if (kind == ASSET_CAMPAIGN && a) {
        if (act == PLAN_UPDATE) {
            size_t nm = json_array_size(
                json_object_get(json_object_get(a->attrs, "campaign-messages"), "data"));
            for (size_t i = 0; i < nm; i++)
                add_call(calls, "PATCH", "/api/campaign-messages/{id}", NULL);
        }
        for (int i = 0; i < count_template_refs(a); i++)
            add_call(calls, "POST", "/api/campaign-message-assign-template", NULL);
    }
    if (kind == ASSET_TAG && a && act != PLAN_DELETE) {
        bool seen[ASSET_KIND_COUNT] = {0};
        for (size_t i = 0; i < a->n_refs; i++) {
            enum asset_kind tk = a->refs[i].kind;
            if (seen[tk])
                continue;
            seen[tk] = true;
            char p[128];
            snprintf(p, sizeof p, "/api/tags/{id}/relationships/%ss", kind_info(tk)->type);
            add_call(calls, "POST", p, NULL);
        }
    }
}

/* ---- the estimate ---- */

struct opcount {
    const char *op;
    int64_t n;
};

/* Seconds the fixed windows impose on n calls of an operation started at a window's edge. */
static double op_seconds(int64_t n, const struct kspec_op *op)
{
    if (n <= 0)
        return 0;
    int64_t per_min = op->steady_per_min > 0 ? op->steady_per_min : 1000000;
    int64_t per_s = op->burst_per_s > 0 ? op->burst_per_s : 1000000;
    int64_t full = (n - 1) / per_min, rest = (n - 1) % per_min;
    int64_t rest_s = rest / per_s; /* whole seconds: the last call starts at its window's edge */
    return (double)full * 60.0 + (double)rest_s;
}

json_t *plan_estimate(const json_t *steps_calls, size_t n_catalog_jobs_create,
                      size_t n_catalog_jobs_update, size_t n_catalog_jobs_delete, int64_t *out_ms)
{
    struct opcount counts[128] = {0};
    size_t nc = 0;
    size_t i;
    json_t *calls;
    json_array_foreach(steps_calls, i, calls)
    {
        size_t j;
        json_t *c;
        json_array_foreach(calls, j, c)
        {
            const char *op = json_string_value(json_object_get(c, "operation"));
            const char *path = json_string_value(json_object_get(c, "path"));
            if (!op || strncmp(path, "/api/catalog-item", 17) == 0)
                continue;
            size_t k = 0;
            while (k < nc && strcmp(counts[k].op, op) != 0)
                k++;
            if (k == nc) {
                if (nc == 128)
                    continue;
                counts[nc].op = op;
                counts[nc++].n = 0;
            }
            counts[k].n++;
        }
    }
    static const char *const cat_ops[][2] = {
        {"bulk_create_catalog_items", "get_bulk_create_catalog_items_job"},
        {"bulk_update_catalog_items", "get_bulk_update_catalog_items_job"},
        {"bulk_delete_catalog_items", "get_bulk_delete_catalog_items_job"},
    };
    size_t jobs[3] = {n_catalog_jobs_create, n_catalog_jobs_update, n_catalog_jobs_delete};
    for (int k = 0; k < 3; k++) {
        if (!jobs[k] || nc + 2 > 128)
            continue;
        counts[nc].op = cat_ops[k][0];
        counts[nc++].n = (int64_t)jobs[k];
        counts[nc].op = cat_ops[k][1];
        counts[nc++].n = (int64_t)jobs[k];
    }
    json_t *ops = json_array();
    double worst = 0;
    int64_t worst_days = 0;
    char text[1024] = "";
    const char *worst_op = NULL;
    for (size_t k = 0; k < nc; k++) {
        const struct kspec_op *op = kspec_by_id(counts[k].op);
        if (!op)
            continue;
        double s = op_seconds(counts[k].n, op);
        int64_t days = op->daily > 0 ? (counts[k].n - 1) / op->daily : 0;
        json_t *o = json_pack("{s:s,s:I,s:i,s:i,s:f}", "operation", op->operation_id, "calls",
                              (json_int_t)counts[k].n, "burst_per_s", op->burst_per_s,
                              "steady_per_min", op->steady_per_min, "seconds", s);
        if (op->daily > 0)
            json_object_set_new(o, "daily", json_integer(op->daily));
        json_array_append_new(ops, o);
        if (days > worst_days) {
            worst_days = days;
            snprintf(text, sizeof text,
                     "this plan makes %" PRId64 " %s calls; Klaviyo allows %d a day; it will "
                     "finish %s",
                     counts[k].n, op->operation_id, op->daily,
                     days == 1 ? "tomorrow" : "in several days");
            if (days > 1) {
                size_t l = strlen(text);
                snprintf(text + l - strlen("in several days"), sizeof text - l,
                         "in %" PRId64 " days", days + 1);
            }
        }
        if (s > worst) {
            worst = s;
            worst_op = op->operation_id;
        }
    }
    int64_t ms = (int64_t)(worst * 1000) + worst_days * 86400LL * 1000;
    if (!worst_days) {
        if (worst_op)
            snprintf(text, sizeof text,
                     "at least %.0f s under Klaviyo's rate limits (slowest: %s), plus the time "
                     "the calls themselves take",
                     worst, worst_op);
        else if (nc)
            snprintf(text, sizeof text,
                     "within Klaviyo's burst limits: as long as the calls themselves take");
        else
            snprintf(text, sizeof text, "no calls: nothing to change");
    }
    *out_ms = ms;
    return json_pack("{s:I,s:s,s:o}", "seconds", (json_int_t)(ms / 1000), "text", text,
                     "operations", ops);
}

/* ---- plan_create ---- */

static int row_tenant_exists(void *ctx, const store_row *r)
{
    (void)r;
    *(int *)ctx = 1;
    return 1;
}

void plan_hash(const char *tenant, const char *bundle_hash, bool prune,
               const struct plan_step *steps, size_t n, char out[65])
{
    size_t cap = 256 + n * 256, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        out[0] = '\0';
        return;
    }
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(buf + len, cap - len, __VA_ARGS__);                                      \
        if (w_ > 0 && (size_t)w_ >= cap - len) {                                                   \
            cap = (cap + (size_t)w_) * 2;                                                          \
            char *nb_ = realloc(buf, cap);                                                         \
            if (!nb_) {                                                                            \
                free(buf);                                                                         \
                out[0] = '\0';                                                                     \
                return;                                                                            \
            }                                                                                      \
            buf = nb_;                                                                             \
            w_ = snprintf(buf + len, cap - len, __VA_ARGS__);                                      \
        }                                                                                          \
        if (w_ > 0)                                                                                \
            len += (size_t)w_;                                                                     \
    } while (0)
    PUT("cadence-plan/1\n%s\n%s\n%d\n", tenant, bundle_hash, prune ? 1 : 0);
    for (size_t i = 0; i < n; i++) {
        char *deps = json_dumps(steps[i].deps, JSON_COMPACT);
        PUT("%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", steps[i].seq, asset_kind_name(steps[i].kind),
            steps[i].name, plan_action_name(steps[i].action), steps[i].content_hash,
            str_or_empty(steps[i].remote_id), str_or_empty(steps[i].remote_updated),
            deps ? deps : "");
        free(deps);
    }
#undef PUT
    sha256_hex(buf, len, out);
    free(buf);
}

void plan_step_token(const char *plan_id, const char *hash, int seq, char *out, size_t n)
{
    char in[160], h[65];
    snprintf(in, sizeof in, "%s:%d", hash, seq);
    sha256_hex(in, strlen(in), h);
    snprintf(out, n, "plan:%s:%d:%.32s", plan_id, seq, h);
}

static void free_steps(struct plan_step *steps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(steps[i].deps);
        json_decref(steps[i].calls);
        free(steps[i].diff);
    }
    free(steps);
}

static int store_plan(store *st, const char *actor, const char *id, const char *tenant_id,
                      const struct bundle *b, bool prune, const char *hash, int64_t ttl_ms,
                      json_t *estimate, int64_t estimate_ms, struct plan_step *steps, size_t n)
{
    int64_t now = time_now_ms();
    char *est = json_dumps(estimate, JSON_COMPACT);
    if (!est)
        return cad_fail(CAD_ENOMEM, "out of memory");
    int rc = store_begin(st);
    if (rc) {
        free(est);
        return rc;
    }
    rc = store_exec(st,
                    "INSERT INTO plans (id, tenant_id, bundle_dir, bundle_hash, hash, prune, "
                    "created_ms, created_by, expires_ms, estimate_ms, estimate, n_steps) VALUES "
                    "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    SV_ARGS(SV_TEXT(id), SV_TEXT(tenant_id), SV_TEXT(b->dir), SV_TEXT(b->hash),
                            SV_TEXT(hash), SV_INT(prune), SV_INT(now), SV_TEXT(actor),
                            SV_INT(now + ttl_ms), SV_INT(estimate_ms), SV_TEXT(est),
                            SV_INT((int64_t)n)));
    free(est);
    if (!rc)
        rc = store_exec(st,
                        "INSERT INTO plan_state (plan_id, status, updated_ms) VALUES ($1, "
                        "'planned', $2)",
                        SV_ARGS(SV_TEXT(id), SV_INT(now)));
    for (size_t i = 0; i < n && !rc; i++) {
        char *deps = json_dumps(steps[i].deps, JSON_COMPACT);
        char *calls = json_dumps(steps[i].calls, JSON_COMPACT);
        char token[128];
        plan_step_token(id, hash, steps[i].seq, token, sizeof token);
        if (!deps || !calls)
            rc = cad_fail(CAD_ENOMEM, "out of memory");
        else
            rc = store_exec(
                st,
                "INSERT INTO plan_steps (plan_id, seq, kind, name, action, content_hash, "
                "remote_id, remote_updated, deps, calls, diff, note, token) VALUES ($1, $2, $3, "
                "$4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                SV_ARGS(SV_TEXT(id), SV_INT(steps[i].seq), SV_TEXT(asset_kind_name(steps[i].kind)),
                        SV_TEXT(steps[i].name), SV_TEXT(plan_action_name(steps[i].action)),
                        SV_TEXT(steps[i].content_hash), SV_TEXT(steps[i].remote_id),
                        SV_TEXT(steps[i].remote_updated), SV_TEXT(deps), SV_TEXT(calls),
                        SV_TEXT(steps[i].diff ? steps[i].diff : ""), SV_TEXT(steps[i].note),
                        SV_TEXT(token)));
        free(deps);
        free(calls);
    }
    if (!rc) {
        char detail[256];
        snprintf(detail, sizeof detail, "plan %s (%zu steps, hash %.16s…)", id, n, hash);
        struct audit_entry e = {.tenant_id = tenant_id,
                                .actor = actor,
                                .action = "plan.create",
                                .payload_sha256 = hash,
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

static bool same_updated(const char *a, const char *b)
{
    if (!a || !b)
        return true; /* the kind has no updated time, or it was not recorded */
    return strcmp(a, b) == 0;
}

enum plan_action plan_decide(const struct bundle_asset *a, const struct remote_obj *live,
                             const struct plan_recorded *r, const json_t *want, bool unresolved)
{
    if (!live)
        return PLAN_CREATE;
    const struct kind_info *ki = kind_info(a->kind);
    bool recorded_same =
        r && strcmp(r->remote_id, live->id) == 0 && strcmp(r->hash, a->content_hash) == 0;
    bool untouched = recorded_same && same_updated(r->updated, live->updated);
    bool has_opaque = false;
    for (int q = 0; q < 3 && ki->opaque[q]; q++)
        has_opaque |= json_object_get(a->attrs, ki->opaque[q]) != NULL;
    has_opaque |= json_object_get(a->attrs, "relationships") != NULL;
    bool fields_equal = !unresolved && attrs_match(ki, want, live->attrs);
    if (untouched || (fields_equal && (!has_opaque || recorded_same)) ||
        (a->kind == ASSET_IMAGE && !r && fields_equal))
        return PLAN_UNCHANGED;
    if (a->kind == ASSET_IMAGE || !ki->can_update)
        return PLAN_REPLACE;
    return PLAN_UPDATE;
}

bool plan_prunes(bool prune, enum asset_kind kind, bool in_bundle)
{
    return prune && !in_bundle && kind != ASSET_IMAGE;
}

json_t *plan_step_deps(const struct bundle *b, const struct bundle_asset *a, const int *seq_of)
{
    json_t *deps = json_array();
    for (size_t k = 0; k < a->n_refs; k++) {
        const struct bundle_asset *d = bundle_find(b, a->refs[k].kind, a->refs[k].name);
        if (!d)
            continue;
        int dseq = seq_of[d - b->assets];
        bool dup = false;
        for (size_t q = 0; q < json_array_size(deps); q++)
            dup |= json_integer_value(json_array_get(deps, q)) == dseq;
        if (dseq && !dup)
            json_array_append_new(deps, json_integer(dseq));
    }
    return deps;
}

int plan_create(store *st, vault *v, const char *tenant_id, const char *bundle_dir,
                const struct plan_create_options *o, plan_line_fn on_bundle_error, void *ctx,
                char out_id[PLAN_ID_MAX])
{
    const char *actor = o && o->actor ? o->actor : AUDIT_ACTOR_SYSTEM;
    bool prune = o && o->prune;
    int64_t ttl_ms = o ? o->ttl_ms : 0;
    int rc;
    if (ttl_ms <= 0 && (rc = plan_ttl_from_env(&ttl_ms)))
        return rc;
    int exists = 0;
    rc = store_query(st, "SELECT id FROM tenants WHERE id = $1", SV_ARGS(SV_TEXT(tenant_id)),
                     row_tenant_exists, &exists);
    if (rc < 0)
        return rc;
    if (!exists)
        return cad_fail(CAD_ENOTFOUND, "no tenant \"%s\" (see `cadence tenant list`)", tenant_id);

    enum { MAXERR = 200 };
    struct bundle_error *errs = calloc(MAXERR, sizeof *errs);
    if (!errs)
        return cad_fail(CAD_ENOMEM, "out of memory");
    size_t nerr = 0;
    struct maker m = {0};
    rc = bundle_load(bundle_dir, &m.b, errs, MAXERR, &nerr);
    if (rc) {
        for (size_t i = 0; i < nerr && i < MAXERR; i++) {
            char line[1400];
            bundle_error_format(&errs[i], line, sizeof line);
            if (on_bundle_error)
                on_bundle_error(ctx, line);
        }
        free(errs);
        if (nerr)
            return cad_fail(CAD_EINVAL, "the bundle %s has %zu problem%s; nothing was planned",
                            bundle_dir, nerr, nerr == 1 ? "" : "s");
        return rc;
    }
    free(errs);
    struct bundle *b = m.b;

    rc = store_query(st,
                     "SELECT kind, name, remote_id, content_hash, remote_updated FROM "
                     "remote_objects WHERE tenant_id = $1",
                     SV_ARGS(SV_TEXT(tenant_id)), row_recorded, &m.rec);
    if (rc < 0)
        goto out_bundle;
    if (m.rec.n)
        qsort(m.rec.r, m.rec.n, sizeof *m.rec.r, cmp_rec);

    klaviyo_client *c = NULL;
    rc = plan_client_open(st, v, tenant_id, actor, &c);
    if (rc)
        goto out_bundle;
    bool need[ASSET_KIND_COUNT] = {0};
    for (size_t i = 0; i < b->n_assets; i++)
        need[b->assets[i].kind] = true;
    if (prune)
        for (size_t i = 0; i < m.rec.n; i++)
            need[m.rec.r[i].kind] = m.rec.r[i].kind != ASSET_IMAGE;
    for (int k = 0; k < ASSET_KIND_COUNT && !rc; k++)
        if (need[k])
            rc = account_list(c, kind_info((enum asset_kind)k), &m.sets[k]);
    klaviyo_client_free(c);
    if (rc)
        goto out_sets;

    m.live = calloc(b->n_assets + 1, sizeof(const struct remote_obj *));
    m.seq_of = calloc(b->n_assets + 1, sizeof *m.seq_of);
    struct plan_step *steps = calloc(b->n_assets + m.rec.n + 1, sizeof *steps);
    if (!m.live || !m.seq_of || !steps) {
        free(steps);
        rc = cad_fail(CAD_ENOMEM, "out of memory");
        goto out_arrays;
    }
    /* Pass 1: what exists. */
    char(*notes)[512] = calloc(b->n_assets + 1, sizeof *notes);
    if (!notes) {
        free(steps);
        rc = cad_fail(CAD_ENOMEM, "out of memory");
        goto out_arrays;
    }
    for (size_t i = 0; i < b->n_assets; i++) {
        const struct bundle_asset *a = &b->assets[i];
        struct remote_set *set = &m.sets[a->kind];
        struct plan_recorded *r = rec_find(&m.rec, a->kind, a->name);
        long idx = -1;
        if (r)
            idx = remote_set_find_id(set, r->remote_id);
        if (idx < 0) {
            size_t count = 0;
            idx = remote_set_find(set, asset_key(a), &count);
            if (count > 1)
                snprintf(notes[i], sizeof notes[i],
                         "%zu objects in Klaviyo are named \"%s\"; Cadence uses %s", count,
                         asset_key(a), set->objs[idx].id);
            else if (r && idx < 0)
                snprintf(notes[i], sizeof notes[i],
                         "Cadence created it earlier as %s, but it is gone from Klaviyo",
                         r->remote_id);
        }
        m.live[i] = idx >= 0 ? &set->objs[idx] : NULL;
    }
    /* Pass 2: steps in dependency order. */
    size_t ns = 0, cat_jobs[3] = {0}, cat_n[3] = {0};
    for (size_t oi = 0; oi < b->n_assets; oi++) {
        size_t i = b->order[oi];
        const struct bundle_asset *a = &b->assets[i];
        const struct kind_info *ki = kind_info(a->kind);
        struct plan_step *s = &steps[ns];
        s->seq = (int)ns + 1;
        m.seq_of[i] = s->seq;
        s->kind = a->kind;
        s->name = a->name;
        memcpy(s->content_hash, a->content_hash, 65);
        snprintf(s->note, sizeof s->note, "%s", notes[i]);
        s->deps = plan_step_deps(b, a, m.seq_of);
        s->calls = json_array();
        const struct remote_obj *live = m.live[i];
        struct plan_recorded *r = rec_find(&m.rec, a->kind, a->name);
        bool unresolved = false;
        json_t *want = attrs_resolve(a->attrs, resolve_live, &m, &unresolved);
        if (!live) {
            s->action = plan_decide(a, NULL, r, want, unresolved);
            s->diff = diff_new(ki, want, a);
        } else {
            s->remote_id = live->id;
            s->remote_updated = live->updated;
            s->action = plan_decide(a, live, r, want, unresolved);
            if (s->action == PLAN_UNCHANGED) {
                if (!r && !s->note[0])
                    snprintf(s->note, sizeof s->note,
                             "found in Klaviyo by %s (%s); Cadence will record it",
                             strcmp(ki->lookup, "id") == 0 ? "its id" : "its exact name", live->id);
                if (a->kind == ASSET_IMAGE && !r)
                    snprintf(s->note, sizeof s->note,
                             "an image named \"%s\" exists (%s); Klaviyo cannot show whether its "
                             "bytes match, so it is kept",
                             a->name, live->id);
            } else if (s->action == PLAN_REPLACE && a->kind == ASSET_IMAGE) {
                snprintf(s->note, sizeof s->note,
                         "a new image is uploaded; Klaviyo cannot delete images, so %s stays",
                         live->id);
            } else if (s->action == PLAN_REPLACE) {
                snprintf(s->note, sizeof s->note,
                         "Klaviyo cannot update a %s%s: %s is deleted and created again", ki->type,
                         a->kind == ASSET_FLOW ? "'s definition" : "", live->id);
            }
            if (s->action != PLAN_UNCHANGED)
                s->diff = diff_attrs(ki, want, live->attrs);
            if (s->action != PLAN_UNCHANGED && r && !same_updated(r->updated, live->updated))
                snprintf(s->note + strlen(s->note), sizeof s->note - strlen(s->note),
                         "%sit was changed in Klaviyo since Cadence wrote it (updated %s)",
                         s->note[0] ? "; " : "", str_or_empty(live->updated));
        }
        json_decref(want);
        step_calls(a, a->kind, s->action, s->calls);
        if (a->kind == ASSET_CATALOG_ITEM && s->action != PLAN_UNCHANGED)
            cat_n[s->action == PLAN_CREATE ? 0 : s->action == PLAN_DELETE ? 2 : 1]++;
        ns++;
    }
    /* Prune: what Cadence pushed earlier and the bundle no longer has. */
    if (prune) {
        for (size_t i = 0; i < m.rec.n; i++) {
            struct plan_recorded *r = &m.rec.r[i];
            if (!plan_prunes(prune, r->kind, bundle_find(b, r->kind, r->name) != NULL))
                continue;
            long idx = remote_set_find_id(&m.sets[r->kind], r->remote_id);
            if (idx < 0)
                continue;
            const struct remote_obj *live = &m.sets[r->kind].objs[idx];
            struct plan_step *s = &steps[ns];
            s->seq = (int)ns + 1;
            s->kind = r->kind;
            s->name = r->name;
            s->action = PLAN_DELETE;
            snprintf(s->content_hash, sizeof s->content_hash, "%s", r->hash);
            s->remote_id = live->id;
            s->remote_updated = live->updated;
            s->deps = json_array();
            s->calls = json_array();
            s->diff = strdup("  - the whole object (no longer in the bundle)\n");
            step_calls(NULL, r->kind, PLAN_DELETE, s->calls);
            if (r->kind == ASSET_CATALOG_ITEM)
                cat_n[2]++;
            ns++;
        }
    }
    for (int k = 0; k < 3; k++)
        cat_jobs[k] = (cat_n[k] + 99) / 100;
    json_t *all_calls = json_array();
    for (size_t i = 0; i < ns; i++)
        json_array_append(all_calls, steps[i].calls);
    int64_t est_ms = 0;
    json_t *estimate = plan_estimate(all_calls, cat_jobs[0], cat_jobs[1], cat_jobs[2], &est_ms);
    json_decref(all_calls);

    char hash[65];
    plan_hash(tenant_id, b->hash, prune, steps, ns, hash);
    unsigned char rnd[6];
    char hex[13];
    rc = random_bytes(rnd, sizeof rnd);
    if (!rc) {
        hex_encode(rnd, sizeof rnd, hex);
        snprintf(out_id, PLAN_ID_MAX, "pl-%s", hex);
        rc = store_plan(st, actor, out_id, tenant_id, b, prune, hash, ttl_ms, estimate, est_ms,
                        steps, ns);
    }
    json_decref(estimate);
    free_steps(steps, ns);
    free(notes);
out_arrays:
    free(m.live);
    free(m.seq_of);
out_sets:
    for (int k = 0; k < ASSET_KIND_COUNT; k++)
        remote_set_free(&m.sets[k]);
out_bundle:
    rec_free(&m.rec);
    bundle_free(b);
    return rc < 0 ? rc : CAD_OK;
}

/* ---- showing ---- */

static const char *effective_status(const struct plan_row *p)
{
    if (strcmp(p->status, "planned") == 0 && time_now_ms() > p->expires_ms)
        return "expired";
    return p->status;
}

struct json_ctx {
    json_t *steps;
    json_t *counts;
    FILE *stream; /* plan_print_json: each step is printed and dropped */
    bool any;
    /* The last deps and calls parsed, with their text: a catalog plan's steps of one group all
     * have the same, and parsing them again for each of 200,000 steps was a fifth of printing. */
    struct {
        char *text;
        json_t *v;
        char *out; /* v printed compact, ASCII only */
    } memo[2];
    struct {
        char *p;
        size_t len, cap;
        bool oom;
    } line; /* plan_print_json: one step's JSON */
};

/* The JSON value of `text`, parsed once while it repeats (a new reference). */
static json_t *memo_loads(struct json_ctx *j, int slot, const char *text)
{
    if (j->memo[slot].text && strcmp(j->memo[slot].text, text) == 0)
        return json_deep_copy(j->memo[slot].v);
    json_t *v = json_loads(text, 0, NULL);
    char *t = v ? strdup(text) : NULL;
    if (!t)
        return v;
    free(j->memo[slot].text);
    json_decref(j->memo[slot].v);
    j->memo[slot].text = t;
    j->memo[slot].v = json_deep_copy(v);
    free(j->memo[slot].out);
    j->memo[slot].out = json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
    return v;
}

static void memo_free(struct json_ctx *j)
{
    for (int i = 0; i < 2; i++) {
        free(j->memo[i].text);
        json_decref(j->memo[i].v);
        free(j->memo[i].out);
    }
    free(j->line.p);
}

/* ---- printing a step without building it (plan_print_json: 200,000 steps of a catalog sync) */

static void line_put(struct json_ctx *j, const char *s, size_t n)
{
    if (j->line.oom)
        return;
    if (j->line.len + n + 1 > j->line.cap) {
        size_t cap = (j->line.len + n + 1) * 2;
        char *p = realloc(j->line.p, cap);
        if (!p) {
            j->line.oom = true;
            return;
        }
        j->line.p = p;
        j->line.cap = cap;
    }
    memcpy(j->line.p + j->line.len, s, n);
    j->line.len += n;
}

static void line_str(struct json_ctx *j, const char *s)
{
    line_put(j, s, strlen(s));
}

/* A JSON string as jansson prints it with JSON_ENSURE_ASCII; false on text that is not UTF-8. */
static bool line_json_string(struct json_ctx *j, const char *s)
{
    line_put(j, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        const unsigned char *run = p;
        while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        line_put(j, (const char *)run, (size_t)(p - run));
        if (!*p)
            break;
        char esc[16];
        uint32_t cp;
        int extra;
        if (*p < 0x80) {
            cp = *p;
            extra = 0;
        } else if ((*p & 0xE0) == 0xC0) {
            cp = *p & 0x1F;
            extra = 1;
        } else if ((*p & 0xF0) == 0xE0) {
            cp = *p & 0x0F;
            extra = 2;
        } else if ((*p & 0xF8) == 0xF0) {
            cp = *p & 0x07;
            extra = 3;
        } else {
            return false;
        }
        for (int k = 1; k <= extra; k++) {
            if ((p[k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[k] & 0x3F);
        }
        if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
            (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += 1 + extra;
        static const char *const short_escape[0x60] = {
            ['"'] = "\\\"", ['\\'] = "\\\\", ['\b'] = "\\b", ['\f'] = "\\f",
            ['\n'] = "\\n", ['\r'] = "\\r",  ['\t'] = "\\t"};
        if (cp < 0x60 && short_escape[cp]) {
            line_str(j, short_escape[cp]);
            continue;
        }
        if (cp < 0x10000) {
            snprintf(esc, sizeof esc, "\\u%04X", (unsigned)cp);
        } else {
            cp -= 0x10000;
            snprintf(esc, sizeof esc, "\\u%04X\\u%04X", (unsigned)(0xD800 | (cp >> 10)),
                     (unsigned)(0xDC00 | (cp & 0x3FF)));
        }
        line_str(j, esc);
    }
    line_put(j, "\"", 1);
    return true;
}

static bool line_member(struct json_ctx *j, const char *key, const char *value)
{
    line_str(j, ",\"");
    line_str(j, key);
    line_str(j, "\":");
    return line_json_string(j, value);
}

/* One step as row_step_json's object prints (the same members in the same order), written
 * straight from the row; false when a value cannot be (then the caller builds it). */
static bool step_line(struct json_ctx *j, const store_row *r)
{
    j->line.len = 0;
    j->line.oom = false;
    char num[32];
    snprintf(num, sizeof num, "{\"seq\":%" PRId64, store_row_int(r, 0));
    line_str(j, num);
    bool ok = line_member(j, "kind", store_row_text(r, 1)) &&
              line_member(j, "name", store_row_text(r, 2)) &&
              line_member(j, "action", store_row_text(r, 3)) &&
              line_member(j, "content_hash", store_row_text(r, 4));
    for (int slot = 0; slot < 2 && ok; slot++) {
        const char *text = store_row_text(r, slot == 0 ? 7 : 8);
        if (!j->memo[slot].text || strcmp(j->memo[slot].text, text) != 0)
            json_decref(memo_loads(j, slot, text)); /* parsed and printed once while it repeats */
        ok = j->memo[slot].text && strcmp(j->memo[slot].text, text) == 0 && j->memo[slot].out;
        if (ok) {
            line_str(j, slot == 0 ? ",\"deps\":" : ",\"calls\":");
            line_str(j, j->memo[slot].out);
        }
    }
    ok = ok && line_member(j, "diff", store_row_text(r, 9)) &&
         line_member(j, "note", store_row_text(r, 10)) &&
         line_member(j, "state", store_row_is_null(r, 11) ? "pending" : store_row_text(r, 11)) &&
         (store_row_is_null(r, 5) || line_member(j, "remote_id", store_row_text(r, 5))) &&
         (store_row_is_null(r, 6) || line_member(j, "remote_updated", store_row_text(r, 6))) &&
         (store_row_is_null(r, 12) || line_member(j, "result_remote_id", store_row_text(r, 12))) &&
         (store_row_is_null(r, 13) || !*store_row_text(r, 13) ||
          line_member(j, "error", store_row_text(r, 13)));
    line_put(j, "}", 1);
    return ok && !j->line.oom;
}

static int count_action(struct json_ctx *j, const char *act)
{
    if (!j->counts) /* plan_steps_json: the summary counts */
        return 0;
    json_t *n = json_object_get(j->counts, act);
    if (n)
        return json_integer_set(n, json_integer_value(n) + 1) ? CAD_ENOMEM : 0;
    return json_object_set_new(j->counts, act, json_integer(1)) ? CAD_ENOMEM : 0;
}

static int row_step_json(void *ctx, const store_row *r)
{
    struct json_ctx *j = ctx;
    if (j->stream && step_line(j, r)) {
        fputs(j->any ? "," : "", j->stream);
        j->any = true;
        if (fwrite(j->line.p, 1, j->line.len, j->stream) != j->line.len)
            return CAD_EIO;
        return count_action(j, store_row_text(r, 3));
    }
    json_t *deps = memo_loads(j, 0, store_row_text(r, 7));
    json_t *calls = memo_loads(j, 1, store_row_text(r, 8));
    json_t *s = json_pack(
        "{s:I,s:s,s:s,s:s,s:s,s:o,s:o,s:s,s:s,s:s}", "seq", (json_int_t)store_row_int(r, 0), "kind",
        store_row_text(r, 1), "name", store_row_text(r, 2), "action", store_row_text(r, 3),
        "content_hash", store_row_text(r, 4), "deps", deps ? deps : json_array(), "calls",
        calls ? calls : json_array(), "diff", store_row_text(r, 9), "note", store_row_text(r, 10),
        "state", store_row_is_null(r, 11) ? "pending" : store_row_text(r, 11));
    if (!s)
        return CAD_ENOMEM;
    if (!store_row_is_null(r, 5))
        json_object_set_new(s, "remote_id", json_string(store_row_text(r, 5)));
    if (!store_row_is_null(r, 6))
        json_object_set_new(s, "remote_updated", json_string(store_row_text(r, 6)));
    if (!store_row_is_null(r, 12))
        json_object_set_new(s, "result_remote_id", json_string(store_row_text(r, 12)));
    if (!store_row_is_null(r, 13) && *store_row_text(r, 13))
        json_object_set_new(s, "error", json_string(store_row_text(r, 13)));
    json_array_append_new(j->steps, s);
    if (count_action(j, store_row_text(r, 3)))
        return CAD_ENOMEM;
    if (j->stream) {
        fputs(j->any ? "," : "", j->stream);
        j->any = true;
        if (json_dumpf(s, j->stream, JSON_COMPACT | JSON_ENSURE_ASCII))
            return CAD_EIO;
        json_array_clear(j->steps);
    }
    return 0;
}

static int row_estimate(void *ctx, const store_row *r)
{
    *(json_t **)ctx = json_loads(store_row_text(r, 0), 0, NULL);
    return 1;
}

/* Counts of named values, one per column of a row of SUM(x = 'name') columns. */
struct named_counts {
    const char *const *names;
    size_t n;
    json_t *into; /* names with a count above zero */
    int64_t total;
};

static int row_named_counts(void *ctx, const store_row *r)
{
    struct named_counts *c = ctx;
    for (size_t i = 0; i < c->n; i++) {
        int64_t v = store_row_is_null(r, (int)i) ? 0 : store_row_int(r, (int)i);
        c->total += v;
        if (v > 0 && json_object_set_new(c->into, c->names[i], json_integer((json_int_t)v)))
            return CAD_ENOMEM;
    }
    return 1;
}

static int row_append_text(void *ctx, const store_row *r)
{
    return json_array_append_new((json_t *)ctx, json_string(store_row_text(r, 0))) ? CAD_ENOMEM : 0;
}

/* The summary's members that the whole plan decides: nsteps, counts (by action), states (by the
 * last apply's state, "pending" for steps it has not reached), each counted by the database, and
 * the names of the campaigns the plan creates or changes. */
static int plan_totals(store *st, const char *plan_id, json_t *counts, json_t *states,
                       json_t *campaigns, int64_t *nsteps)
{
    /* One pass each, with a sum per value the schema allows: a GROUP BY would sort the plan's
     * rows in memory first, and a page's memory would grow with the plan. */
    static const char *const actions[] = {"create", "update", "replace", "delete", "unchanged"};
    static const char *const reached[] = {"intent", "done", "failed", "conflict", "skipped"};
    struct named_counts ca = {actions, CAD_ARRAY_LEN(actions), counts, 0};
    struct named_counts cs = {reached, CAD_ARRAY_LEN(reached), states, 0};
    int rc = store_query(st,
                         "SELECT SUM(action = 'create'), SUM(action = 'update'), SUM(action = "
                         "'replace'), SUM(action = 'delete'), SUM(action = 'unchanged') FROM "
                         "plan_steps WHERE plan_id = $1",
                         SV_ARGS(SV_TEXT(plan_id)), row_named_counts, &ca);
    if (rc >= 0)
        rc = store_query(st,
                         "SELECT SUM(state = 'intent'), SUM(state = 'done'), SUM(state = "
                         "'failed'), SUM(state = 'conflict'), SUM(state = 'skipped') FROM "
                         "plan_step_runs WHERE plan_id = $1",
                         SV_ARGS(SV_TEXT(plan_id)), row_named_counts, &cs);
    if (rc >= 0)
        rc = store_query(st,
                         "SELECT name FROM plan_steps WHERE plan_id = $1 AND kind = 'campaign' "
                         "AND action <> 'delete' ORDER BY seq",
                         SV_ARGS(SV_TEXT(plan_id)), row_append_text, campaigns);
    if (rc < 0)
        return rc;
    *nsteps = ca.total;
    if (*nsteps > cs.total &&
        json_object_set_new(states, "pending", json_integer((json_int_t)(*nsteps - cs.total))))
        return cad_fail(CAD_ENOMEM, "out of memory");
    return CAD_OK;
}

int plan_status_get(store *st, const char *plan_id, char *status, size_t n)
{
    struct plan_row p;
    int rc = plan_row_get(st, plan_id, &p);
    if (rc == CAD_OK)
        snprintf(status, n, "%s", effective_status(&p));
    return rc;
}

int plan_steps_json(store *st, const char *plan_id, int64_t from_seq, int64_t to_seq, int64_t limit,
                    enum plan_steps_filter filter, json_t **steps)
{
    static const char *const sql[] = {
        [PLAN_STEPS_ALL] = "",
        [PLAN_STEPS_CHANGED] = "AND NOT (s.action = 'unchanged' AND COALESCE(r.error, '') = '') ",
        [PLAN_STEPS_UNCHANGED] = "AND s.action = 'unchanged' AND COALESCE(r.error, '') = '' ",
    };
    char q[1024];
    snprintf(q, sizeof q,
             "SELECT s.seq, s.kind, s.name, s.action, s.content_hash, s.remote_id, "
             "s.remote_updated, s.deps, s.calls, s.diff, s.note, r.state, r.remote_id, r.error "
             "FROM plan_steps s LEFT JOIN plan_step_runs r ON r.plan_id = s.plan_id AND r.seq = "
             "s.seq WHERE s.plan_id = $1 AND s.seq >= $2 AND s.seq < $4 %sORDER BY s.seq "
             "LIMIT $3",
             sql[filter]);
    struct json_ctx j = {.steps = json_array()};
    int rc = store_query(st, q,
                         SV_ARGS(SV_TEXT(plan_id), SV_INT(from_seq), SV_INT(limit),
                                 SV_INT(to_seq > 0 ? to_seq : INT64_MAX)),
                         row_step_json, &j);
    memo_free(&j);
    if (rc < 0 || !j.steps) {
        json_decref(j.steps);
        return rc < 0 ? rc : cad_fail(CAD_ENOMEM, "out of memory");
    }
    *steps = j.steps;
    return CAD_OK;
}

int plan_summary_json(store *st, const char *plan_id, json_t **out)
{
    struct plan_row p;
    int rc = plan_row_get(st, plan_id, &p);
    if (rc)
        return rc;
    json_t *counts = json_object(), *states = json_object(), *campaigns = json_array();
    json_t *estimate = NULL;
    int64_t nsteps = 0;
    char detail[1024] = "";
    rc = plan_totals(st, plan_id, counts, states, campaigns, &nsteps);
    if (rc >= 0)
        rc = store_query(st, "SELECT estimate FROM plans WHERE id = $1", SV_ARGS(SV_TEXT(plan_id)),
                         row_estimate, &estimate);
    if (rc >= 0)
        rc = store_query(st, "SELECT COALESCE(detail, '') FROM plan_state WHERE plan_id = $1",
                         SV_ARGS(SV_TEXT(plan_id)), row_text, detail);
    if (rc < 0) {
        json_decref(counts);
        json_decref(estimate);
        json_decref(states);
        json_decref(campaigns);
        return rc;
    }
    char created[32], expires[32];
    time_format_ms(p.created_ms, created, sizeof created);
    time_format_ms(p.expires_ms, expires, sizeof expires);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:s,s:s,s:o,s:o,s:I,s:o,s:o}", "id", p.id,
                          "hash", p.hash, "status", effective_status(&p), "tenant", p.tenant_id,
                          "bundle", p.bundle_dir, "bundle_hash", p.bundle_hash, "prune", p.prune,
                          "created", created, "expires", expires, "counts", counts, "estimate",
                          estimate ? estimate : json_object(), "nsteps", (json_int_t)nsteps,
                          "states", states, "campaigns", campaigns);
    if (!o)
        return cad_fail(CAD_ENOMEM, "out of memory");
    if (p.confirmed_ms) {
        char conf[32];
        time_format_ms(p.confirmed_ms, conf, sizeof conf);
        json_object_set_new(o, "confirmed_by", json_string(p.confirmed_by));
        json_object_set_new(o, "confirmed", json_string(conf));
    }
    if (detail[0])
        json_object_set_new(o, "detail", json_string(detail));
    *out = o;
    return CAD_OK;
}

int plan_to_json(store *st, const char *plan_id, json_t **out)
{
    json_t *o = NULL, *steps = NULL;
    int rc = plan_summary_json(st, plan_id, &o);
    if (!rc)
        rc = plan_steps_json(st, plan_id, 0, 0, -1, PLAN_STEPS_ALL, &steps);
    if (!rc && json_object_set_new(o, "steps", steps))
        rc = cad_fail(CAD_ENOMEM, "out of memory");
    if (rc) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return CAD_OK;
}

int plan_print_json(store *st, const char *plan_id, const json_t *extra, FILE *out)
{
    struct plan_row p;
    int rc = plan_row_get(st, plan_id, &p);
    if (rc)
        return rc;
    json_t *estimate = NULL;
    rc = store_query(st, "SELECT estimate FROM plans WHERE id = $1", SV_ARGS(SV_TEXT(plan_id)),
                     row_estimate, &estimate);
    if (rc < 0)
        return rc;
    char created[32], expires[32];
    time_format_ms(p.created_ms, created, sizeof created);
    time_format_ms(p.expires_ms, expires, sizeof expires);
    json_t *head =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:s,s:s,s:o}", "id", p.id, "hash", p.hash, "status",
                  effective_status(&p), "tenant", p.tenant_id, "bundle", p.bundle_dir,
                  "bundle_hash", p.bundle_hash, "prune", p.prune, "created", created, "expires",
                  expires, "estimate", estimate ? estimate : json_object());
    if (!head)
        return cad_fail(CAD_ENOMEM, "out of memory");
    if (p.confirmed_ms) {
        char conf[32];
        time_format_ms(p.confirmed_ms, conf, sizeof conf);
        json_object_set_new(head, "confirmed_by", json_string(p.confirmed_by));
        json_object_set_new(head, "confirmed", json_string(conf));
    }
    char detail[1024] = "";
    if (store_query(st, "SELECT COALESCE(detail, '') FROM plan_state WHERE plan_id = $1",
                    SV_ARGS(SV_TEXT(plan_id)), row_text, detail) < 0) {
        json_decref(head);
        return CAD_EIO;
    }
    if (detail[0])
        json_object_set_new(head, "detail", json_string(detail));
    if (extra)
        json_object_update(head, (json_t *)extra);
    /* the members above, then "steps" a step at a time, then "counts" */
    char *text = json_dumps(head, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(head);
    if (!text)
        return cad_fail(CAD_ENOMEM, "out of memory");
    text[strlen(text) - 1] = '\0';
    fprintf(out, "%s,\"steps\":[", text);
    free(text);
    struct json_ctx j = {.steps = json_array(), .counts = json_object(), .stream = out};
    rc = store_query(st,
                     "SELECT s.seq, s.kind, s.name, s.action, s.content_hash, s.remote_id, "
                     "s.remote_updated, s.deps, s.calls, s.diff, s.note, r.state, r.remote_id, "
                     "r.error FROM plan_steps s LEFT JOIN plan_step_runs r ON r.plan_id = "
                     "s.plan_id AND r.seq = s.seq WHERE s.plan_id = $1 ORDER BY s.seq",
                     SV_ARGS(SV_TEXT(plan_id)), row_step_json, &j);
    memo_free(&j);
    char *counts = json_dumps(j.counts, JSON_COMPACT);
    fprintf(out, "],\"counts\":%s}\n", counts ? counts : "{}");
    free(counts);
    json_decref(j.steps);
    json_decref(j.counts);
    if (rc < 0)
        return cad_fail(rc, "cannot print plan %s's steps", plan_id);
    return ferror(out) ? cad_fail(CAD_EIO, "cannot write the plan") : CAD_OK;
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* plan_print_text's head: the plan's members, counts and estimate. */
static void print_text_head(const json_t *plan, FILE *out)
{
#define S(k) jstr(plan, k)
    fprintf(out, "Plan %s for %s: %s\n", S("id"), S("tenant"), S("status"));
    fprintf(out, "  hash     %s\n", S("hash"));
    fprintf(out, "  bundle   %s (hash %.16s…)\n", S("bundle"), S("bundle_hash"));
    fprintf(out, "  created  %s, expires unconfirmed %s\n", S("created"), S("expires"));
    if (json_object_get(plan, "confirmed_by"))
        fprintf(out, "  confirmed by %s at %s\n", S("confirmed_by"), S("confirmed"));
    if (json_object_get(plan, "detail"))
        fprintf(out, "  %s\n", S("detail"));
#undef S
    json_t *counts = json_object_get(plan, "counts");
    fprintf(out, "  steps   ");
    static const char *const acts[] = {"create", "update", "replace", "delete", "unchanged"};
    for (int i = 0; i < 5; i++)
        fprintf(out, " %s %lld%s", acts[i],
                (long long)json_integer_value(json_object_get(counts, acts[i])),
                i < 4 ? "," : "\n");
    json_t *est = json_object_get(plan, "estimate");
    fprintf(out, "  time     %s\n",
            json_string_value(json_object_get(est, "text"))
                ? json_string_value(json_object_get(est, "text"))
                : "");
    size_t i;
    json_t *op;
    json_array_foreach(json_object_get(est, "operations"), i, op)
    {
        fprintf(out, "           %-36s %6lld calls  (%lld/s, %lld/min",
                json_string_value(json_object_get(op, "operation")),
                (long long)json_integer_value(json_object_get(op, "calls")),
                (long long)json_integer_value(json_object_get(op, "burst_per_s")),
                (long long)json_integer_value(json_object_get(op, "steady_per_min")));
        if (json_object_get(op, "daily"))
            fprintf(out, ", %lld/day", (long long)json_integer_value(json_object_get(op, "daily")));
        fprintf(out, ")\n");
    }
    fputc('\n', out);
}

/* What plan_print_text has shown so far: steps per kind as the plan names it (a bundle's asset
 * kinds, a catalog sync's catalog-item, catalog-variant and catalog-category), at most 25 each,
 * the rest counted. */
struct text_shown {
    struct {
        char kind[32];
        int shown, hidden;
    } k[24];
    int nk;
    size_t unchanged;
};

/* The counters of `kind`; kinds past the table's size share its last row. */
static int text_kind(struct text_shown *t, const char *kind)
{
    for (int i = 0; i < t->nk; i++)
        if (strcmp(t->k[i].kind, kind) == 0)
            return i;
    if (t->nk == (int)CAD_ARRAY_LEN(t->k))
        return t->nk - 1;
    snprintf(t->k[t->nk].kind, sizeof t->k[t->nk].kind, "%s", kind);
    return t->nk++;
}

static void print_text_step(const json_t *s, struct text_shown *t, FILE *out)
{
    const char *act = json_string_value(json_object_get(s, "action"));
    const char *kind = json_string_value(json_object_get(s, "kind"));
    const char *state = json_string_value(json_object_get(s, "state"));
    if (strcmp(act, "unchanged") == 0 &&
        (!state || strcmp(state, "pending") == 0 || strcmp(state, "done") == 0)) {
        t->unchanged++;
        return;
    }
    int k = text_kind(t, kind ? kind : "");
    if (t->k[k].shown >= 25) {
        t->k[k].hidden++;
        return;
    }
    t->k[k].shown++;
    fprintf(out, "%4lld. %-9s %s \"%s\"", (long long)json_integer_value(json_object_get(s, "seq")),
            act, kind, json_string_value(json_object_get(s, "name")));
    if (json_object_get(s, "remote_id"))
        fprintf(out, " (%s)", json_string_value(json_object_get(s, "remote_id")));
    if (state && strcmp(state, "pending") != 0)
        fprintf(out, " [%s]", state);
    json_t *deps = json_object_get(s, "deps");
    if (json_array_size(deps)) {
        fprintf(out, " after");
        size_t d;
        json_t *dv;
        json_array_foreach(deps, d, dv)
        {
            fprintf(out, " #%lld", (long long)json_integer_value(dv));
        }
    }
    fputc('\n', out);
    const char *note = json_string_value(json_object_get(s, "note"));
    if (note && *note)
        fprintf(out, "      note: %s\n", note);
    const char *err = json_string_value(json_object_get(s, "error"));
    if (err && *err)
        fprintf(out, "      error: %s\n", err);
    size_t c;
    json_t *call;
    json_array_foreach(json_object_get(s, "calls"), c, call)
    {
        const char *n = json_string_value(json_object_get(call, "note"));
        fprintf(out, "      call: %s %s  [%s]%s%s\n",
                json_string_value(json_object_get(call, "method")),
                json_string_value(json_object_get(call, "path")),
                json_string_value(json_object_get(call, "operation")), n ? "  " : "", n ? n : "");
    }
    const char *diff = json_string_value(json_object_get(s, "diff"));
    if (diff && *diff) {
        const char *p = diff;
        while (*p) {
            const char *e = strchr(p, '\n');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            fprintf(out, "      %.*s\n", (int)n, p);
            p += n + (e ? 1 : 0);
        }
    }
}

int plan_each_step(store *st, const char *plan_id, plan_step_fn fn, void *ctx)
{
    enum { PAGE = 1000 };
    int64_t from = 0;
    for (;;) {
        json_t *steps = NULL;
        int rc = plan_steps_json(st, plan_id, from, 0, PAGE, PLAN_STEPS_ALL, &steps);
        if (rc)
            return rc;
        size_t i, n = json_array_size(steps);
        json_t *s;
        json_array_foreach(steps, i, s)
        {
            if ((rc = fn(ctx, s)) != 0)
                break;
        }
        if (n)
            from = json_integer_value(json_object_get(json_array_get(steps, n - 1), "seq")) + 1;
        json_decref(steps);
        if (rc || n < PAGE)
            return rc < 0 ? rc : CAD_OK;
    }
}

struct text_ctx {
    struct text_shown t;
    FILE *out;
};

static int text_step(void *ctx, const json_t *s)
{
    struct text_ctx *c = ctx;
    print_text_step(s, &c->t, c->out);
    return 0;
}

int plan_print_text(store *st, const char *plan_id, FILE *out)
{
    json_t *head = NULL;
    int rc = plan_summary_json(st, plan_id, &head);
    if (rc)
        return rc;
    print_text_head(head, out);
    json_decref(head);
    struct text_ctx c = {.out = out};
    if ((rc = plan_each_step(st, plan_id, text_step, &c)))
        return rc;
    for (int k = 0; k < c.t.nk; k++)
        if (c.t.k[k].hidden)
            fprintf(out, "      … and %d more %s steps (see --json)\n", c.t.k[k].hidden,
                    c.t.k[k].kind);
    if (c.t.unchanged)
        fprintf(out, "      %zu asset%s unchanged\n", c.t.unchanged, c.t.unchanged == 1 ? "" : "s");
    return CAD_OK;
}

struct list_ctx {
    plan_fn fn;
    void *ctx;
};

static int row_list(void *ctx, const store_row *r)
{
    struct list_ctx *l = ctx;
    struct plan_row p = {0};
    snprintf(p.id, sizeof p.id, "%s", store_row_text(r, 0));
    snprintf(p.status, sizeof p.status, "%s", store_row_text(r, 2));
    p.expires_ms = store_row_int(r, 4);
    char created[32];
    time_format_ms(store_row_int(r, 3), created, sizeof created);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "id", p.id, "tenant", store_row_text(r, 1),
                          "status", effective_status(&p), "created", created, "hash",
                          store_row_text(r, 5), "steps", (json_int_t)store_row_int(r, 6));
    if (!o)
        return CAD_ENOMEM;
    int rc = l->fn(l->ctx, o);
    json_decref(o);
    return rc;
}

int plan_list(store *st, const char *tenant_id, plan_fn fn, void *ctx)
{
    struct list_ctx l = {fn, ctx};
    int rc = store_query(st,
                         "SELECT p.id, p.tenant_id, s.status, p.created_ms, p.expires_ms, p.hash, "
                         "p.n_steps FROM plans p JOIN plan_state s ON s.plan_id = p.id WHERE $1 "
                         "IS NULL OR p.tenant_id = $1 ORDER BY p.created_ms DESC, p.id",
                         SV_ARGS(SV_TEXT(tenant_id)), row_list, &l);
    return rc < 0 ? rc : CAD_OK;
}

int plan_cancel(store *st, const char *actor, const char *plan_id)
{
    struct plan_row p;
    int rc = plan_row_get(st, plan_id, &p);
    if (rc)
        return rc;
    if (strcmp(p.status, "planned") != 0 && strcmp(p.status, "confirmed") != 0 &&
        strcmp(p.status, "paused") != 0)
        return cad_fail(CAD_ESTATE,
                        "plan %s is %s; only a plan that is planned, confirmed or "
                        "paused can be cancelled",
                        plan_id, p.status);
    if ((rc = store_begin(st)))
        return rc;
    rc = plan_set_status(st, plan_id, "cancelled", "cancelled");
    if (!rc) {
        char detail[128];
        snprintf(detail, sizeof detail, "plan %s cancelled (was %s)", plan_id, p.status);
        struct audit_entry e = {.tenant_id = p.tenant_id,
                                .actor = actor,
                                .action = "plan.cancel",
                                .payload_sha256 = p.hash,
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

int plan_confirm(store *st, const char *operator_email, const char *plan_id, const char *hash)
{
    if (!operator_email || !*operator_email)
        return cad_fail(CAD_EPERM, "confirming a plan needs an operator: give --operator EMAIL "
                                   "or set CADENCE_OPERATOR");
    struct operator_info op;
    int rc = operator_get(st, operator_email, &op);
    if (rc == CAD_ENOTFOUND)
        return cad_fail(CAD_EPERM,
                        "%s is not an operator; add one with `cadence operator add` first",
                        operator_email);
    if (rc)
        return rc;
    if (op.disabled)
        return cad_fail(CAD_EPERM, "operator %s is disabled", operator_email);
    struct plan_row p;
    if ((rc = plan_row_get(st, plan_id, &p)))
        return rc;
    if (strcmp(p.status, "planned") != 0)
        return cad_fail(CAD_ESTATE, "plan %s is %s, not awaiting confirmation", plan_id, p.status);
    if (time_now_ms() > p.expires_ms)
        return cad_fail(CAD_ESTATE,
                        "plan %s expired unconfirmed; the account may have changed since it was "
                        "made: make a new plan with `cadence plan create %s %s`",
                        plan_id, p.tenant_id, p.bundle_dir);
    if (!hash || strcmp(hash, p.hash) != 0)
        return cad_fail(CAD_EPERM,
                        "the hash given (%.16s…) is not plan %s's hash; read the plan with "
                        "`cadence plan show %s` and confirm the hash it shows",
                        hash ? hash : "", plan_id, plan_id);
    if ((rc = plan_check_stale(st, &p)))
        return rc;
    if ((rc = plan_check_bundle(&p, NULL)))
        return rc;
    char detail[256];
    snprintf(detail, sizeof detail, "plan %s confirmed (%d steps, bundle %.16s…)", plan_id,
             p.n_steps, p.bundle_hash);
    return plan_record_confirm(st, &p, operator_email, operator_email, detail);
}

int plan_record_confirm(store *st, const struct plan_row *p, const char *confirmed_by,
                        const char *actor, const char *detail)
{
    int rc = store_begin(st);
    if (rc)
        return rc;
    int64_t now = time_now_ms();
    rc = store_exec(st,
                    "UPDATE plan_state SET status = 'confirmed', confirmed_by = $2, "
                    "confirmed_ms = $3, updated_ms = $3 WHERE plan_id = $1 AND status = 'planned'",
                    SV_ARGS(SV_TEXT(p->id), SV_TEXT(confirmed_by), SV_INT(now)));
    if (!rc && store_changes(st) != 1)
        rc = cad_fail(CAD_ESTATE, "plan %s changed state while it was being confirmed", p->id);
    if (!rc) {
        struct audit_entry e = {.tenant_id = p->tenant_id,
                                .actor = actor,
                                .action = "plan.confirm",
                                .payload_sha256 = p->hash,
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

struct paused_ctx {
    char (*ids)[PLAN_ID_MAX];
    int max, n;
};

static int row_paused(void *ctx, const store_row *r)
{
    struct paused_ctx *c = ctx;
    if (c->n < c->max)
        snprintf(c->ids[c->n], PLAN_ID_MAX, "%s", store_row_text(r, 0));
    c->n++;
    return 0;
}

int plan_paused(store *st, const char *tenant_id, char (*ids)[PLAN_ID_MAX], int max, int *n)
{
    struct paused_ctx c = {ids, max, 0};
    int rc = store_query(st,
                         "SELECT p.id FROM plans p JOIN plan_state s ON s.plan_id = p.id WHERE "
                         "p.tenant_id = $1 AND s.status IN ('paused', 'applying') ORDER BY "
                         "p.created_ms",
                         SV_ARGS(SV_TEXT(tenant_id)), row_paused, &c);
    *n = c.n < max ? c.n : max;
    return rc < 0 ? rc : CAD_OK;
}
