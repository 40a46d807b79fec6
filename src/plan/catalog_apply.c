/*
 * Applying a catalog-sync plan: its steps, in seq order, go to Klaviyo in bulk jobs of up to 100
 * objects, one (kind, action) group after the other — categories, items, variants, then the
 * deletes in reverse — because a variant needs its item and an item its categories. Within a
 * group up to JOBS_INFLIGHT jobs run at once (Klaviyo allows 500 in progress), each created,
 * followed until complete, and its per-item errors recorded against the steps they name.
 *
 * Following a job: a job's reads share the size of budget its creation has (75/s, 750/min for
 * item and variant jobs), so a poll per job makes 1,500 variant jobs wait for as many polls. A
 * create or delete job is therefore first checked through its objects, with the catalog's list
 * operation (any(ids), 100 a call, 350/s, 3,500/min): all there (all gone) means every object of
 * it succeeded. Otherwise — one missing, one still there — the job itself is polled, which says
 * whether it is still at work and why an object failed. Update jobs, and the first job of each
 * group, are always polled.
 *
 * Exactly once: a job's steps are marked `intent` before the job is created and `done` or
 * `failed` after it completed, with catalog_objects updated in the same transaction. A step found
 * in `intent` (a crash, an unknown outcome) is looked up first: catalog ids are deterministic
 * ($custom:::$default:::<external id>), so a create whose object exists is done, a delete whose
 * object is gone is done, and an update is sent again (it is idempotent). An object cannot be
 * created twice: Klaviyo refuses a second create of the same id, and such a refusal is resolved
 * by the same lookup.
 *
 * Memory: the steps of the jobs in flight (at most JOBS_INFLIGHT x 100, their objects only until
 * Klaviyo accepted the job), whatever the plan's size; steps are read from the store a job at a
 * time. Transactions: one for the intents of all jobs a loop pass creates, one for the outcomes
 * of all jobs that ended since the last pass.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "catalog/catalog.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "plan/plan_int.h"

#define JOB_MAX       100
#define JOBS_INFLIGHT 400 /* Klaviyo allows 500 catalog jobs in progress per account */
#define JOBS_UNSENT   32  /* jobs holding their objects before Klaviyo accepted them */
#define EXT_MAX       64
#define POLL_ROUNDS   600

enum { K_ITEM, K_VARIANT, K_CATEGORY };
enum { A_CREATE, A_UPDATE, A_DELETE };

static const char *const kind_names[] = {"catalog-item", "catalog-variant", "catalog-category"};
static const char *const kind_paths[] = {"item", "variant", "category"};
static const char *const kind_lists[] = {"/api/catalog-items", "/api/catalog-variants",
                                         "/api/catalog-categories"};
static const char *const kind_members[] = {"items", "variants", "categories"};
static const char *const action_names[] = {"create", "update", "delete"};

/* The groups in the order Klaviyo needs them. */
static const struct {
    int kind, action;
} groups[] = {
    {K_CATEGORY, A_CREATE}, {K_CATEGORY, A_UPDATE}, {K_ITEM, A_CREATE},
    {K_ITEM, A_UPDATE},     {K_VARIANT, A_CREATE},  {K_VARIANT, A_UPDATE},
    {K_VARIANT, A_DELETE},  {K_ITEM, A_DELETE},     {K_CATEGORY, A_DELETE},
};

enum jstage { J_LOOKUP, J_POST, J_POLL, J_VERIFY, J_FAILED_LOOKUP, J_END };

struct capply;

struct cjob {
    struct capply *a;
    int kind, action, n;
    int seq[JOB_MAX];
    char ext[JOB_MAX][EXT_MAX];
    char hash[JOB_MAX][65];
    /* the stored objects, until Klaviyo accepted the job: as text for creates (sent as they are),
     * parsed for updates (some members go); none for deletes */
    char *text[JOB_MAX];
    json_t *body[JOB_MAX];
    bool was_intent[JOB_MAX];
    bool settled[JOB_MAX]; /* outcome known: done or failed */
    bool failed[JOB_MAX];
    char *error[JOB_MAX];
    char token[160];
    enum jstage stage;
    char job_id[160];
    int64_t next_poll_ms, accepted_ms;
    bool verify; /* the next look is at the objects, not the job (see job_verified) */
    bool waiting;
    int rounds;
};

struct capply {
    store *st;
    klaviyo_client *c;
    const struct plan_row *p;
    const struct plan_apply_options *o;
    const char *actor;
    struct plan_lease *lease;
    struct cjob *jobs[JOBS_INFLIGHT];
    int njobs;
    int last_seq; /* the group's steps up to here are in jobs or ended */
    bool group_done;
    bool group_polled; /* a job of this group was (or is being) followed by job polls */
    bool revoked, lease_lost, failed_hard;
    char stop_msg[1024];
    int64_t calls, throttled, poll_ms, start_ms;
    /* How long after Klaviyo accepted it a job is first polled, so most jobs are polled once (a
     * poll counts against Klaviyo's limits like a create): a little more than the oldest age at
     * which a first poll still found a job unfinished (late_ms), which slowly forgets. */
    int64_t first_poll_ms, late_ms;
    int total, done, failed;
};

static bool halted(const struct capply *a)
{
    return a->revoked || a->lease_lost || a->failed_hard;
}

static void set_err(char **dst, const char *msg)
{
    char *copy = msg ? strdup(msg) : NULL; /* msg may be *dst itself */
    free(*dst);
    *dst = copy;
}

static void job_free(struct cjob *j)
{
    for (int i = 0; i < j->n; i++) {
        json_decref(j->body[i]);
        free(j->text[i]);
        free(j->error[i]);
    }
    free(j);
}

/* ---- loading a job's steps ---- */

struct load {
    struct cjob *j;
    int kind, action;
};

static int row_load(void *ctx, const store_row *row)
{
    struct load *l = ctx;
    struct cjob *j = l->j;
    int i = j->n++;
    j->seq[i] = (int)store_row_int(row, 0);
    snprintf(j->ext[i], EXT_MAX, "%s", store_row_text(row, 1));
    snprintf(j->hash[i], sizeof j->hash[i], "%s", store_row_text(row, 2));
    j->was_intent[i] = strcmp(store_row_text(row, 3), "intent") == 0;
    if (i == 0)
        snprintf(j->token, sizeof j->token, "%s", store_row_text(row, 4));
    if (!store_row_is_null(row, 5)) {
        json_error_t je;
        if (l->action == A_CREATE) {
            if (!(j->text[i] = strdup(store_row_text(row, 5))))
                return cad_fail(CAD_ENOMEM, "out of memory");
            return 0;
        }
        j->body[i] = json_loads(store_row_text(row, 5), 0, &je);
        if (!j->body[i])
            return cad_fail(CAD_ECORRUPT, "plan step %d's stored object is not JSON: %s", j->seq[i],
                            je.text);
    }
    return 0;
}

/* The next up to 100 unfinished steps of the group after a->last_seq; NULL when none is left. */
static struct cjob *job_load(struct capply *a, int kind, int action, int *rc)
{
    struct cjob *j = calloc(1, sizeof *j);
    if (!j) {
        *rc = cad_fail(CAD_ENOMEM, "out of memory");
        return NULL;
    }
    j->a = a;
    j->kind = kind;
    j->action = action;
    struct load l = {j, kind, action};
    *rc = store_query(a->st,
                      "SELECT s.seq, s.name, s.content_hash, r.state, s.token, b.body FROM "
                      "plan_steps s JOIN plan_step_runs r ON r.plan_id = s.plan_id AND r.seq = "
                      "s.seq LEFT JOIN plan_step_bodies b ON b.plan_id = s.plan_id AND b.seq = "
                      "s.seq WHERE s.plan_id = $1 AND s.kind = $2 AND s.action = $3 AND s.seq > "
                      "$4 AND r.state IN ('pending', 'intent') ORDER BY s.seq LIMIT 100",
                      SV_ARGS(SV_TEXT(a->p->id), SV_TEXT(kind_names[kind]),
                              SV_TEXT(action_names[action]), SV_INT(a->last_seq)),
                      row_load, &l);
    if (*rc || j->n == 0) {
        job_free(j);
        return NULL;
    }
    a->last_seq = j->seq[j->n - 1];
    return j;
}

/* ---- recording ---- */

/* The job's steps are all the group's unfinished steps in [seq[0], seq[n-1]] (job_load took the
 * next ones in order), so a statement over that range, the group's kind and action and an
 * unfinished state (`intent`, or `pending` for one a lookup found done before it was sent)
 * names exactly them: the common cases are written in a few statements instead of two per
 * step. */
#define JOB_STEPS                                                                                  \
    "SELECT seq FROM plan_steps WHERE plan_id = $1 AND seq BETWEEN $2 AND $3 AND kind = $4 AND "   \
    "action = $5"
#define JOB_ARGS(j)                                                                                \
    SV_TEXT((j)->a->p->id), SV_INT((j)->seq[0]), SV_INT((j)->seq[(j)->n - 1]),                     \
        SV_TEXT(kind_names[(j)->kind]), SV_TEXT(action_names[(j)->action])

/* All of the job's steps settled and none failed after all: its outcome in three statements. */
static int job_record_range(struct cjob *j, int64_t now)
{
    struct capply *a = j->a;
    int rc = store_exec(
        a->st,
        "UPDATE plan_step_runs SET state = 'done', remote_id = CASE WHEN $5 = 'delete' THEN NULL "
        "ELSE (SELECT '" CATALOG_KLAVIYO_PREFIX "' || s.name FROM plan_steps s WHERE s.plan_id = "
        "plan_step_runs.plan_id AND s.seq = plan_step_runs.seq) END, result_hash = (SELECT "
        "s.content_hash FROM plan_steps s WHERE s.plan_id = plan_step_runs.plan_id AND s.seq = "
        "plan_step_runs.seq), job_id = $6, error = NULL, updated_ms = $7 WHERE plan_id = $1 AND "
        "state IN ('pending', 'intent') AND seq IN (" JOB_STEPS ")",
        SV_ARGS(JOB_ARGS(j), j->job_id[0] ? SV_TEXT(j->job_id) : SV_NULL, SV_INT(now)));
    if (rc)
        return rc;
    if (j->action == A_DELETE)
        return store_exec(a->st,
                          "DELETE FROM catalog_objects WHERE tenant_id = $6 AND kind = $4 AND "
                          "external_id IN (SELECT name FROM plan_steps WHERE plan_id = $1 AND seq "
                          "BETWEEN $2 AND $3 AND kind = $4 AND action = $5)",
                          SV_ARGS(JOB_ARGS(j), SV_TEXT(a->p->tenant_id)));
    return store_exec(a->st,
                      "INSERT INTO catalog_objects (tenant_id, kind, external_id, content_hash, "
                      "body, plan_id, updated_ms) SELECT $6, s.kind, s.name, s.content_hash, "
                      "b.body, s.plan_id, $7 FROM plan_steps s JOIN plan_step_bodies b ON "
                      "b.plan_id = s.plan_id AND b.seq = s.seq JOIN plan_step_runs r ON r.plan_id "
                      "= s.plan_id AND r.seq = s.seq WHERE s.plan_id = $1 AND s.seq BETWEEN $2 "
                      "AND $3 AND s.kind = $4 AND s.action = $5 AND r.state = 'done' AND "
                      "r.updated_ms = $7 ON CONFLICT (tenant_id, kind, external_id) DO UPDATE "
                      "SET content_hash = excluded.content_hash, body = excluded.body, plan_id = "
                      "excluded.plan_id, updated_ms = excluded.updated_ms",
                      SV_ARGS(JOB_ARGS(j), SV_TEXT(a->p->tenant_id), SV_INT(now)));
}

/* Writes the outcome of every settled step of the job, with catalog_objects, inside the caller's
 * transaction. */
static int job_record(struct cjob *j, int64_t now)
{
    struct capply *a = j->a;
    bool all_done = j->n > 0;
    for (int i = 0; i < j->n && all_done; i++)
        all_done = j->settled[i] && !j->failed[i];
    if (all_done)
        return job_record_range(j, now);
    int rc = CAD_OK;
    for (int i = 0; i < j->n && !rc; i++) {
        if (!j->settled[i])
            continue;
        char rid[300];
        catalog_klaviyo_id(j->ext[i], rid, sizeof rid);
        rc = store_exec(a->st,
                        "UPDATE plan_step_runs SET state = $3, remote_id = $4, result_hash = $5, "
                        "job_id = $6, error = $7, updated_ms = $8 WHERE plan_id = $1 AND seq = $2",
                        SV_ARGS(SV_TEXT(a->p->id), SV_INT(j->seq[i]),
                                SV_TEXT(j->failed[i] ? "failed" : "done"),
                                j->action == A_DELETE ? SV_NULL : SV_TEXT(rid), SV_TEXT(j->hash[i]),
                                j->job_id[0] ? SV_TEXT(j->job_id) : SV_NULL,
                                j->error[i] ? SV_TEXT(j->error[i]) : SV_NULL, SV_INT(now)));
        if (rc || j->failed[i])
            continue;
        if (j->action == A_DELETE)
            rc = store_exec(a->st,
                            "DELETE FROM catalog_objects WHERE tenant_id = $1 AND kind = $2 AND "
                            "external_id = $3",
                            SV_ARGS(SV_TEXT(a->p->tenant_id), SV_TEXT(kind_names[j->kind]),
                                    SV_TEXT(j->ext[i])));
        else
            rc = store_exec(a->st,
                            "INSERT INTO catalog_objects (tenant_id, kind, external_id, "
                            "content_hash, body, plan_id, updated_ms) SELECT $1, $2, $3, $4, "
                            "b.body, b.plan_id, $6 FROM plan_step_bodies b WHERE b.plan_id = $5 "
                            "AND b.seq = $7 ON CONFLICT (tenant_id, kind, external_id) DO UPDATE "
                            "SET content_hash = excluded.content_hash, body = excluded.body, "
                            "plan_id = excluded.plan_id, updated_ms = excluded.updated_ms",
                            SV_ARGS(SV_TEXT(a->p->tenant_id), SV_TEXT(kind_names[j->kind]),
                                    SV_TEXT(j->ext[i]), SV_TEXT(j->hash[i]), SV_TEXT(a->p->id),
                                    SV_INT(now), SV_INT(j->seq[i])));
    }
    return rc;
}

static void job_count(struct cjob *j)
{
    for (int i = 0; i < j->n; i++) {
        if (!j->settled[i])
            continue;
        if (j->failed[i])
            j->a->failed++;
        else
            j->a->done++;
    }
}

static void settle(struct cjob *j, int i, const char *error)
{
    j->settled[i] = true;
    j->failed[i] = error != NULL;
    set_err(&j->error[i], error);
}

static bool job_open(const struct cjob *j)
{
    for (int i = 0; i < j->n; i++)
        if (!j->settled[i])
            return true;
    return false;
}

/* ---- calls ---- */

static void job_cb(void *ctx, const struct klaviyo_result *res);

static void job_submit_text(struct cjob *j, const char *method, const char *target, char *text);

static void job_submit(struct cjob *j, const char *method, const char *target, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    job_submit_text(j, method, target, text);
}

/* Sends `text` (taken; may be NULL). */
static void job_submit_text(struct cjob *j, const char *method, const char *target, char *text)
{
    struct klaviyo_request rq = {.method = method,
                                 .target = target,
                                 .body = text,
                                 .body_len = text ? strlen(text) : 0,
                                 .write_authorization = strcmp(method, "GET") ? j->token : NULL};
    j->waiting = true;
    if (klaviyo_submit(j->a->c, &rq, job_cb, j) != CAD_OK) {
        j->waiting = false;
        for (int i = 0; i < j->n; i++)
            if (!j->settled[i])
                settle(j, i, cad_errmsg());
        j->stage = J_END;
    }
    free(text);
}

/* GET the job's objects by id: all unsettled ones, or only the failed ones. */
static void job_lookup(struct cjob *j, enum jstage stage)
{
    const char *ids[JOB_MAX];
    char idbuf[JOB_MAX][300];
    size_t n = 0;
    for (int i = 0; i < j->n; i++) {
        if (j->settled[i] && !(stage == J_FAILED_LOOKUP && j->failed[i]))
            continue;
        catalog_klaviyo_id(j->ext[i], idbuf[n], sizeof idbuf[n]);
        ids[n] = idbuf[n];
        n++;
    }
    size_t fsz = (size_t)48 * 1024, tsz = (size_t)64 * 1024;
    char *filter = malloc(fsz), *target = malloc(tsz);
    int rc = filter && target ? klaviyo_filter_any(filter, fsz, "ids", ids, n) : CAD_ENOMEM;
    if (!rc) {
        /* only the ids are wanted: a sparse fieldset keeps 100 objects' answer small */
        char fields[64];
        snprintf(fields, sizeof fields, "fields[%s]", kind_names[j->kind]);
        const char *kv[] = {"filter", filter, fields, "external_id", "page[size]", "100", NULL};
        rc = klaviyo_target(target, tsz, kind_lists[j->kind], kv);
    }
    j->stage = stage;
    if (rc) {
        for (int i = 0; i < j->n; i++)
            if (!j->settled[i])
                settle(j, i, cad_errmsg());
        j->stage = J_END;
    } else {
        job_submit(j, "GET", target, NULL);
    }
    free(filter);
    free(target);
}

/* The bulk job's object for step i. */
static json_t *job_object(const struct cjob *j, int i)
{
    char id[300];
    catalog_klaviyo_id(j->ext[i], id, sizeof id);
    const char *type = kind_names[j->kind];
    if (j->action == A_DELETE)
        return json_pack("{s:s,s:s}", "type", type, "id", id);
    json_t *o = json_deep_copy(j->body[i]);
    if (j->action == A_UPDATE) {
        json_t *attrs = json_object_get(o, "attributes");
        json_object_del(attrs, "external_id");
        json_object_del(attrs, "integration_type");
        json_object_del(attrs, "catalog_type");
        if (j->kind == K_VARIANT)
            json_object_del(o, "relationships"); /* a variant's item never changes */
        json_object_set_new(o, "id", json_string(id));
    }
    return o;
}

/* Marks the job's unsettled steps `intent`, inside the caller's transaction. */
static int job_intents(struct cjob *j, int64_t now)
{
    bool none_settled = j->n > 0;
    for (int i = 0; i < j->n && none_settled; i++)
        none_settled = !j->settled[i];
    if (none_settled) /* the whole range (see JOB_STEPS) */
        return store_exec(j->a->st,
                          "UPDATE plan_step_runs SET state = 'intent', attempts = attempts + 1, "
                          "updated_ms = $6 WHERE plan_id = $1 AND state IN ('pending', 'intent') "
                          "AND seq IN (" JOB_STEPS ")",
                          SV_ARGS(JOB_ARGS(j), SV_INT(now)));
    int rc = CAD_OK;
    for (int i = 0; i < j->n && !rc; i++)
        if (!j->settled[i])
            rc = store_exec(j->a->st,
                            "UPDATE plan_step_runs SET state = 'intent', attempts = attempts + 1, "
                            "updated_ms = $3 WHERE plan_id = $1 AND seq = $2",
                            SV_ARGS(SV_TEXT(j->a->p->id), SV_INT(j->seq[i]), SV_INT(now)));
    return rc;
}

/* Creates the bulk job (its intents are durable). */
static void job_send(struct cjob *j)
{
    char type[96], path[128];
    snprintf(type, sizeof type, "catalog-%s-bulk-%s-job", kind_paths[j->kind],
             action_names[j->action]);
    snprintf(path, sizeof path, "/api/catalog-%s-bulk-%s-jobs", kind_paths[j->kind],
             action_names[j->action]);
    if (j->action == A_CREATE) { /* the stored create objects are the job's members as they are */
        size_t len = 256;
        for (int i = 0; i < j->n; i++)
            if (!j->settled[i])
                len += strlen(j->text[i]) + 1;
        char *text = malloc(len);
        if (!text) {
            for (int i = 0; i < j->n; i++)
                if (!j->settled[i])
                    settle(j, i, "out of memory");
            j->stage = J_END;
            return;
        }
        size_t o = (size_t)snprintf(text, len,
                                    "{\"data\":{\"type\":\"%s\",\"attributes\":{\"%s\":{\"data\":[",
                                    type, kind_members[j->kind]);
        bool any = false;
        for (int i = 0; i < j->n; i++) {
            if (j->settled[i])
                continue;
            if (any)
                text[o++] = ',';
            size_t l = strlen(j->text[i]);
            memcpy(text + o, j->text[i], l);
            o += l;
            any = true;
        }
        snprintf(text + o, len - o, "]}}}}");
        if (!any) {
            free(text);
            j->stage = J_END;
            return;
        }
        j->stage = J_POST;
        job_submit_text(j, "POST", path, text);
        return;
    }
    json_t *data = json_array();
    for (int i = 0; i < j->n; i++)
        if (!j->settled[i])
            json_array_append_new(data, job_object(j, i));
    if (json_array_size(data) == 0) {
        json_decref(data);
        j->stage = J_END;
        return;
    }
    json_t *body = json_pack("{s:{s:s,s:{s:{s:o}}}}", "data", "type", type, "attributes",
                             kind_members[j->kind], "data", data);
    j->stage = J_POST;
    job_submit(j, "POST", path, body);
}

static void hard_stop(struct capply *a, const char *what)
{
    a->failed_hard = true;
    snprintf(a->stop_msg, sizeof a->stop_msg, "%s: %s", what, cad_errmsg());
}

/* Intents, committed, then the job: for a job whose lookup or unknown outcome came back. */
static void job_post(struct cjob *j)
{
    struct capply *a = j->a;
    int rc = store_begin(a->st);
    if (!rc)
        rc = job_intents(j, time_now_ms());
    if (!rc)
        rc = store_commit(a->st);
    if (rc) {
        store_rollback(a->st);
        hard_stop(a, "cannot record a bulk job's intent");
        j->stage = J_END;
        return;
    }
    job_send(j);
}

/* A job left in doubt by an earlier run starts with a lookup; true when it goes straight to its
 * POST (its intents are then written by the caller, for many jobs in one transaction). */
static bool job_needs_lookup(const struct cjob *j)
{
    for (int i = 0; i < j->n; i++)
        if (j->was_intent[i] && j->action != A_UPDATE)
            return true;
    return false;
}

/* After a lookup: which objects exist. */
/* Whether the object of step i is among a lookup's answer. */
static bool obj_listed(const struct cjob *j, int i, const json_t *data)
{
    char id[300];
    catalog_klaviyo_id(j->ext[i], id, sizeof id);
    size_t k;
    json_t *o;
    json_array_foreach((json_t *)data, k, o)
    {
        const char *oid = json_string_value(json_object_get(o, "id"));
        if (oid && strcmp(oid, id) == 0)
            return true;
    }
    return false;
}

static void after_lookup(struct cjob *j, const json_t *data, bool only_failed)
{
    for (int i = 0; i < j->n; i++) {
        if (only_failed ? !(j->settled[i] && j->failed[i]) : j->settled[i])
            continue;
        bool exists = obj_listed(j, i, data);
        /* created by an earlier attempt, or already gone */
        if ((j->action == A_CREATE && exists) || (j->action == A_DELETE && !exists && !only_failed))
            settle(j, i, NULL);
    }
}

/* A poll too early costs a request from the same budget as the jobs (750 a minute for variant
 * jobs and for their polls alike: 1,500 jobs and their 1,500 polls each fill exactly two
 * windows, and every second poll of a job pushes one into a third); a poll too late only makes
 * the job's end known later. So the first poll errs late: a quarter of a poll interval after the
 * oldest age at which a first poll found a job unfinished, forgotten very slowly (1/1024 a job
 * found complete) in case Klaviyo got faster. */
static void first_poll_learn(struct capply *a, int64_t age_ms, bool unfinished)
{
    if (unfinished && age_ms > a->late_ms)
        a->late_ms = age_ms < 20 * a->poll_ms ? age_ms : 20 * a->poll_ms;
    else if (!unfinished)
        a->late_ms -= a->late_ms / 1024;
    int64_t next = a->late_ms + a->poll_ms / 4;
    a->first_poll_ms = next > a->poll_ms / 4 ? next : a->poll_ms / 4;
}

/* Whether a create job's objects all exist (a delete job's are all gone): then every object of
 * it succeeded, and the job is done without asking for the job itself. The objects are read with
 * the catalog's own list operation (350/s, 3,500/min), not the job's (75/s, 750/min, which the
 * jobs' creation also needs: a poll per job would make 1,500 variant jobs take as many polls
 * from the same kind of budget). Anything else — an object missing, one still there — and the
 * job is polled as usual, which also gives each failed object's reason. */
static bool job_verified(const struct cjob *j, const json_t *data)
{
    for (int i = 0; i < j->n; i++)
        if (!j->settled[i] && obj_listed(j, i, data) != (j->action == A_CREATE))
            return false;
    return true;
}

static void job_cb(void *ctx, const struct klaviyo_result *res)
{
    struct cjob *j = ctx;
    struct capply *a = j->a;
    j->waiting = false;
    a->calls += res->attempts;
    a->throttled += res->throttled;
    if (res->outcome == KLAVIYO_OUT_REVOKED) {
        if (!a->revoked) {
            a->revoked = true;
            snprintf(a->stop_msg, sizeof a->stop_msg, "%s", res->message);
            plan_record_revocation(a->st, a->o, a->p->tenant_id, a->p->id);
        }
        j->stage = J_END;
        return;
    }
    if (halted(a)) {
        j->stage = J_END;
        return;
    }
    const json_t *data = json_object_get(res->doc, "data");
    char msg[1200];
    switch (j->stage) {
    case J_LOOKUP:
        if (res->outcome != KLAVIYO_OUT_OK) {
            if (++j->rounds > 6) {
                snprintf(msg, sizeof msg, "could not look the objects up: %s", res->message);
                for (int i = 0; i < j->n; i++)
                    if (!j->settled[i])
                        settle(j, i, msg);
                j->stage = J_END;
                return;
            }
            job_lookup(j, J_LOOKUP);
            return;
        }
        after_lookup(j, data, false);
        if (job_open(j))
            job_post(j);
        else
            j->stage = J_END;
        return;
    case J_POST:
        if (res->outcome == KLAVIYO_OUT_OK) {
            const char *id = json_string_value(json_object_get(data, "id"));
            snprintf(j->job_id, sizeof j->job_id, "%s", id ? id : "");
            for (int i = 0; i < j->n; i++) { /* recorded from plan_step_bodies: not needed */
                json_decref(j->body[i]);
                j->body[i] = NULL;
                free(j->text[i]);
                j->text[i] = NULL;
            }
            j->stage = J_POLL;
            /* the group's first job is followed through the job itself, which also shows on
             * every apply that Klaviyo's job reads still answer as expected */
            j->verify = j->action != A_UPDATE && a->group_polled;
            a->group_polled = true;
            j->rounds = 0;
            j->accepted_ms = time_mono_ms();
            j->next_poll_ms = j->accepted_ms + a->first_poll_ms;
            return;
        }
        if (res->outcome == KLAVIYO_OUT_UNKNOWN && ++j->rounds <= 6) {
            for (int i = 0; i < j->n; i++)
                j->was_intent[i] = true;
            if (j->action == A_UPDATE)
                job_post(j);
            else
                job_lookup(j, J_LOOKUP);
            return;
        }
        snprintf(msg, sizeof msg, "Klaviyo refused the bulk %s job: %s", action_names[j->action],
                 res->message);
        for (int i = 0; i < j->n; i++)
            if (!j->settled[i])
                settle(j, i, msg);
        j->stage = J_END;
        return;
    case J_POLL: {
        if (res->outcome != KLAVIYO_OUT_OK) {
            if (++j->rounds > 20) {
                snprintf(msg, sizeof msg, "could not follow bulk job %s: %s", j->job_id,
                         res->message);
                for (int i = 0; i < j->n; i++)
                    if (!j->settled[i])
                        settle(j, i, msg);
                j->stage = J_END;
                return;
            }
            j->next_poll_ms = time_mono_ms() + a->poll_ms * 2;
            return;
        }
        const json_t *attrs = json_object_get(data, "attributes");
        const char *status = json_string_value(json_object_get(attrs, "status"));
        if (status && strcmp(status, "cancelled") == 0) {
            for (int i = 0; i < j->n; i++)
                if (!j->settled[i])
                    settle(j, i, "Klaviyo cancelled the bulk job");
            j->stage = J_END;
            return;
        }
        if (!status || strcmp(status, "complete") != 0) {
            if (++j->rounds > POLL_ROUNDS) {
                snprintf(msg, sizeof msg, "bulk job %s did not complete", j->job_id);
                for (int i = 0; i < j->n; i++)
                    if (!j->settled[i])
                        settle(j, i, msg);
                j->stage = J_END;
                return;
            }
            if (j->rounds == 1) /* its first poll was too early */
                first_poll_learn(a, time_mono_ms() - j->accepted_ms, true);
            j->next_poll_ms = time_mono_ms() + a->poll_ms / 2;
            return;
        }
        if (j->rounds == 0) /* done at the first look */
            first_poll_learn(a, 0, false);
        /* the job's objects, in the order sent: the unsettled steps */
        int sent[JOB_MAX], ns = 0;
        for (int i = 0; i < j->n; i++)
            if (!j->settled[i])
                sent[ns++] = i;
        bool bad[JOB_MAX] = {false};
        char pointer[64];
        snprintf(pointer, sizeof pointer, "/%s/data/", kind_members[j->kind]);
        size_t k;
        json_t *err;
        bool any = false;
        json_array_foreach(json_object_get(attrs, "errors"), k, err)
        {
            const char *ptr =
                json_string_value(json_object_get(json_object_get(err, "source"), "pointer"));
            const char *p = ptr ? strstr(ptr, pointer) : NULL;
            long idx = p ? strtol(p + strlen(pointer), NULL, 10) : -1;
            if (idx < 0 || idx >= ns)
                continue;
            bad[idx] = any = true;
            const char *detail = json_string_value(json_object_get(err, "detail"));
            snprintf(msg, sizeof msg, "Klaviyo rejected the object in bulk job %s: %s", j->job_id,
                     detail ? detail : "no detail given");
            set_err(&j->error[sent[idx]], msg);
        }
        for (int x = 0; x < ns; x++)
            if (bad[x])
                settle(j, sent[x], j->error[sent[x]]);
            else
                settle(j, sent[x], NULL);
        if (any && j->action == A_CREATE) { /* "already exists" is an earlier attempt's work */
            job_lookup(j, J_FAILED_LOOKUP);
            return;
        }
        j->stage = J_END;
        return;
    }
    case J_VERIFY:
        if (res->outcome == KLAVIYO_OUT_OK && job_verified(j, data)) {
            first_poll_learn(a, 0, false);
            for (int i = 0; i < j->n; i++)
                if (!j->settled[i])
                    settle(j, i, NULL);
            j->stage = J_END;
            return;
        }
        /* still at work, or some objects failed: the job itself says which and why */
        if (res->outcome == KLAVIYO_OUT_OK)
            first_poll_learn(a, time_mono_ms() - j->accepted_ms, true);
        j->stage = J_POLL;
        j->next_poll_ms = time_mono_ms() + a->poll_ms / 2;
        return;
    case J_FAILED_LOOKUP:
        if (res->outcome == KLAVIYO_OUT_OK)
            after_lookup(j, data, true);
        j->stage = J_END;
        return;
    case J_END:
        return;
    }
}

/* ---- the loop ---- */

static void poll_due(struct capply *a)
{
    int64_t now = time_mono_ms();
    for (int i = 0; i < a->njobs && !halted(a); i++) {
        struct cjob *j = a->jobs[i];
        if (j->stage != J_POLL || j->waiting || j->next_poll_ms > now)
            continue;
        if (j->verify) {
            j->verify = false;
            job_lookup(j, J_VERIFY);
            continue;
        }
        char path[320];
        snprintf(path, sizeof path, "/api/catalog-%s-bulk-%s-jobs/%s", kind_paths[j->kind],
                 action_names[j->action], j->job_id);
        job_submit(j, "GET", path, NULL);
    }
}

/* Records every ended job in one transaction and frees them. */
static void reap(struct capply *a)
{
    bool any = false;
    for (int i = 0; i < a->njobs && !any; i++)
        any = a->jobs[i]->stage == J_END && !a->jobs[i]->waiting;
    if (!any)
        return;
    int64_t now = time_now_ms();
    int rc = store_begin(a->st);
    for (int i = 0; i < a->njobs && !rc; i++)
        if (a->jobs[i]->stage == J_END && !a->jobs[i]->waiting)
            rc = job_record(a->jobs[i], now);
    if (!rc)
        rc = store_commit(a->st);
    if (rc) {
        store_rollback(a->st);
        hard_stop(a, "cannot record a bulk job's outcome");
        return; /* the jobs stay: their steps stay `intent` and are looked up on resume */
    }
    for (int i = 0; i < a->njobs;) {
        struct cjob *j = a->jobs[i];
        if (j->stage != J_END || j->waiting) {
            i++;
            continue;
        }
        job_count(j);
        job_free(j);
        a->jobs[i] = a->jobs[--a->njobs];
    }
}

static void progress(struct capply *a, struct plan_progress *p)
{
    memset(p, 0, sizeof *p);
    p->total = a->total;
    p->done = a->done;
    p->failed = a->failed;
    for (int i = 0; i < a->njobs; i++)
        for (int k = 0; k < a->jobs[i]->n; k++)
            p->running += !a->jobs[i]->settled[k];
    p->calls = a->calls;
    p->throttled = a->throttled;
    p->elapsed_ms = time_mono_ms() - a->start_ms;
    p->revoked = a->revoked;
    int finished = p->done + p->failed;
    p->eta_ms = finished > 0 && finished < p->total
                    ? p->elapsed_ms * (p->total - finished) / finished
                    : (finished == p->total ? 0 : -1);
}

static int row_counts(void *ctx, const store_row *row)
{
    struct capply *a = ctx;
    const char *state = store_row_text(row, 0);
    int n = (int)store_row_int(row, 1);
    a->total += n;
    if (strcmp(state, "done") == 0)
        a->done += n;
    return 0;
}

/* Jobs loaded whose POST Klaviyo has not accepted yet (they hold their objects). */
static int unsent(const struct capply *a)
{
    int n = 0;
    for (int i = 0; i < a->njobs; i++)
        n += a->jobs[i]->stage < J_POLL;
    return n;
}

static void run_groups(struct capply *a)
{
    int64_t last_tick = 0;
    for (size_t g = 0; g < CAD_ARRAY_LEN(groups) && !halted(a); g++) {
        a->last_seq = 0;
        a->group_done = false;
        a->group_polled = false;
        while (!halted(a)) {
            /* new jobs: lookups go at once; the rest get their intents in one transaction,
             * then their POSTs */
            int first_new = a->njobs;
            while (!a->group_done && a->njobs < JOBS_INFLIGHT && unsent(a) < JOBS_UNSENT &&
                   !halted(a)) {
                int rc = CAD_OK;
                struct cjob *j = job_load(a, groups[g].kind, groups[g].action, &rc);
                if (rc) {
                    hard_stop(a, "cannot read the plan's steps");
                    break;
                }
                if (!j) {
                    a->group_done = true;
                    break;
                }
                a->jobs[a->njobs++] = j;
            }
            if (a->njobs > first_new && !halted(a)) {
                int64_t now = time_now_ms();
                int rc = store_begin(a->st);
                for (int i = first_new; i < a->njobs && !rc; i++)
                    if (!job_needs_lookup(a->jobs[i]))
                        rc = job_intents(a->jobs[i], now);
                if (!rc)
                    rc = store_commit(a->st);
                if (rc) {
                    store_rollback(a->st);
                    hard_stop(a, "cannot record bulk jobs' intents");
                    for (int i = first_new; i < a->njobs; i++)
                        a->jobs[i]->stage = J_END;
                } else {
                    for (int i = first_new; i < a->njobs; i++) {
                        if (job_needs_lookup(a->jobs[i]))
                            job_lookup(a->jobs[i], J_LOOKUP);
                        else
                            job_send(a->jobs[i]);
                    }
                }
            }
            reap(a);
            if (a->group_done && a->njobs == 0 && klaviyo_pending(a->c) == 0)
                break;
            poll_due(a);
            if (klaviyo_run(a->c, 50)) {
                a->failed_hard = true;
                snprintf(a->stop_msg, sizeof a->stop_msg, "%s", cad_errmsg());
            }
            int64_t t = time_mono_ms();
            if (!a->lease_lost && t - a->lease->renewed_mono_ms >= PLAN_LEASE_RENEW_MS &&
                plan_lease_renew(a->st, a->lease) == CAD_ESTATE) {
                a->lease_lost = true;
                snprintf(a->stop_msg, sizeof a->stop_msg, "%s", cad_errmsg());
            }
            if (a->o && a->o->progress && t - last_tick >= 1000) {
                last_tick = t;
                struct plan_progress p;
                progress(a, &p);
                a->o->progress(a->o->ctx, &p);
            }
        }
    }
    /* answers already on their way are recorded; nothing new leaves */
    while (klaviyo_pending(a->c) > 0)
        if (klaviyo_run(a->c, 50))
            break;
    reap(a);
    for (int i = 0; i < a->njobs; i++)
        job_free(a->jobs[i]);
    a->njobs = 0;
}

int catalog_apply_leased(store *st, vault *v, const struct plan_row *p,
                         const struct plan_apply_options *o, struct plan_apply_result *result,
                         struct plan_lease *lease)
{
    bool resumed = strcmp(p->status, "confirmed") != 0;
    struct capply a = {.st = st, .p = p, .o = o, .lease = lease};
    a.actor = o && o->actor ? o->actor : AUDIT_ACTOR_SYSTEM;
    int rc = plan_client_open(st, v, p->tenant_id, a.actor, &a.c);
    if (rc)
        return rc;
    const struct klaviyo_config *cfg = klaviyo_client_config(a.c);
    a.poll_ms = (int64_t)(1000.0 / (cfg->rate_scale > 0 ? cfg->rate_scale : 1.0));
    if (a.poll_ms < 20)
        a.poll_ms = 20;
    a.late_ms = a.poll_ms * 3 / 4;
    a.first_poll_ms = a.poll_ms * 7 / 8;
    int64_t now = time_now_ms();
    rc = store_begin(st);
    if (!rc)
        rc = store_exec(st,
                        "INSERT INTO plan_step_runs (plan_id, seq, state, updated_ms) SELECT "
                        "plan_id, seq, 'pending', $2 FROM plan_steps WHERE plan_id = $1 ON "
                        "CONFLICT (plan_id, seq) DO NOTHING",
                        SV_ARGS(SV_TEXT(p->id), SV_INT(now)));
    if (!rc)
        rc = store_exec(st,
                        "UPDATE plan_state SET status = 'applying', started_ms = "
                        "COALESCE(started_ms, $2), detail = NULL, updated_ms = $2 WHERE plan_id "
                        "= $1",
                        SV_ARGS(SV_TEXT(p->id), SV_INT(now)));
    if (!rc) {
        char detail[200];
        snprintf(detail, sizeof detail, "catalog sync plan %s apply %s", p->id,
                 resumed ? "resumed" : "started");
        struct audit_entry ae = {.tenant_id = p->tenant_id,
                                 .actor = a.actor,
                                 .action = "plan.apply",
                                 .payload_sha256 = p->hash,
                                 .duration_ms = -1,
                                 .detail = detail};
        rc = audit_append(st, &ae, NULL);
    }
    if (!rc)
        rc = store_query(st,
                         "SELECT state, count(*) FROM plan_step_runs WHERE plan_id = $1 GROUP BY "
                         "state",
                         SV_ARGS(SV_TEXT(p->id)), row_counts, &a);
    if (rc) {
        store_rollback(st);
        klaviyo_client_free(a.c);
        return rc;
    }
    store_commit(st);
    a.start_ms = time_mono_ms();
    run_groups(&a);
    klaviyo_client_free(a.c);
    if (a.lease_lost)
        return cad_fail(CAD_ESTATE, "%s", a.stop_msg);

    progress(&a, &result->progress);
    if (o && o->progress)
        o->progress(o->ctx, &result->progress);
    const struct plan_progress *pr = &result->progress;
    const char *status;
    if (a.revoked || a.failed_hard) {
        result->outcome = PLAN_OUT_PAUSED;
        status = "paused";
        if (a.revoked)
            snprintf(result->message, sizeof result->message,
                     "paused: Klaviyo revoked %s's key (%s); %d of %d steps done. The brand has "
                     "been asked for a new key; once it is verified, run `cadence plan apply %s` "
                     "to continue",
                     p->tenant_id, a.stop_msg, pr->done, pr->total, p->id);
        else
            snprintf(result->message, sizeof result->message, "paused: %s", a.stop_msg);
    } else if (pr->done == pr->total) {
        result->outcome = PLAN_OUT_DONE;
        status = "done";
        snprintf(result->message, sizeof result->message, "done: %d steps", pr->total);
    } else {
        result->outcome = PLAN_OUT_PARTIAL;
        status = "partial";
        snprintf(result->message, sizeof result->message,
                 "partial: %d done, %d failed (each is listed with Klaviyo's reason by `cadence "
                 "plan show %s`)",
                 pr->done, pr->failed, p->id);
    }
    int src = plan_record_end(st, p, a.actor, status, result->message, pr->elapsed_ms);
    if (a.failed_hard)
        return cad_fail(CAD_EIO, "%s", a.stop_msg);
    return src;
}
