/*
 * The background threads of `cadence serve` (see worker.h): one outbox loop, one scan loop and a
 * pool of apply threads around one table of jobs under one mutex.
 *
 * Jobs live in a fixed array so a running apply's progress callback can hold a pointer to its job;
 * finished jobs are reused oldest first when the table is full. Each thread opens its own store
 * (and the apply threads their own vault) because a store handle is not thread-safe.
 *
 * Resuming paused plans: a paused plan is queued again when the tenant's Klaviyo key is verified,
 * was verified after the last revocation the engine detected (plan_revocation_info), and this
 * process has not already resumed it for that same verification. A plan paused for another reason
 * (Klaviyo unreachable) is thus retried once at start and then after the key is verified anew, not
 * in a loop.
 *
 * Metrics: cadence_plan_steps_total{state} counts steps reaching done, failed, conflict or skipped
 * in background applies (baseline from the plan's recorded step states, so a resumed plan's earlier
 * steps are not counted twice); cadence_plan_applies_total{outcome}; cadence_mail_deliveries_total
 * {result}.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "mail/mail.h"
#include "onboard/onboard.h"
#include "worker/worker.h"

#define JOBS_MAX 256

struct job {
    bool used;
    enum worker_job_state state;
    char plan_id[PLAN_ID_MAX];
    char tenant_id[TENANT_ID_MAX];
    int64_t queued_ms, updated_ms;
    int64_t resumed_for_ms; /* the key verification this job was last resumed for */
    bool has_progress;
    struct plan_progress progress;
    int counted[4]; /* steps done, failed, conflict, skipped already counted in metrics */
    int rc;
    enum plan_outcome outcome;
    char message[512];
};

struct worker_pool {
    struct worker_config cfg;
    char db_path[4096];
    pthread_mutex_t mu;
    pthread_cond_t work; /* a job was queued or a tenant freed, or stopping */
    pthread_cond_t tick; /* wakes the outbox and scan loops early (stopping) */
    pthread_cond_t idle; /* an apply ended */
    bool stopping;
    int running;
    struct job jobs[JOBS_MAX];
    pthread_t *appliers;
    int n_appliers;
    pthread_t mailer, scanner, cataloger;
    bool mailer_up, scanner_up, cataloger_up;
};

const char *worker_job_state_name(enum worker_job_state s)
{
    return s == WORKER_QUEUED ? "queued" : s == WORKER_RUNNING ? "running" : "finished";
}

static int env_range(const char *name, long def, long lo, long hi, long *out)
{
    const char *s = getenv(name);
    *out = def;
    if (!s || !*s)
        return CAD_OK;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return cad_fail(CAD_EINVAL, "%s must be a number from %ld to %ld; got \"%s\"", name, lo, hi,
                        s);
    *out = v;
    return CAD_OK;
}

int worker_config_from_env(struct worker_config *out, const char *data_dir)
{
    long tenants, mail_s, scan_s, stop_s, catalog_s;
    int rc;
    memset(out, 0, sizeof *out);
    out->data_dir = data_dir;
    if ((rc = env_range("CADENCE_PLAN_WORKERS", 4, 1, 64, &tenants)) ||
        (rc = env_range("CADENCE_MAIL_INTERVAL_S", 5, 0, 3600, &mail_s)) ||
        (rc = env_range("CADENCE_WORKER_SCAN_S", 5, 1, 3600, &scan_s)) ||
        (rc = env_range("CADENCE_WORKER_STOP_S", 30, 0, 3600, &stop_s)) ||
        (rc = env_range("CADENCE_CATALOG_SYNC_INTERVAL_S", 0, 0, 604800, &catalog_s)))
        return rc;
    out->catalog_interval_ms = catalog_s * 1000;
    out->max_tenants = (int)tenants;
    out->mail_interval_ms = mail_s * 1000;
    out->scan_interval_ms = scan_s * 1000;
    out->stop_wait_ms = stop_s * 1000;
    return CAD_OK;
}

/* ---- the job table (callers hold mu) ---- */

static struct job *job_find(worker_pool *w, const char *plan_id)
{
    for (int i = 0; i < JOBS_MAX; i++)
        if (w->jobs[i].used && strcmp(w->jobs[i].plan_id, plan_id) == 0)
            return &w->jobs[i];
    return NULL;
}

static struct job *job_slot(worker_pool *w)
{
    struct job *oldest = NULL;
    for (int i = 0; i < JOBS_MAX; i++) {
        struct job *j = &w->jobs[i];
        if (!j->used)
            return j;
        if (j->state == WORKER_FINISHED && (!oldest || j->updated_ms < oldest->updated_ms))
            oldest = j;
    }
    return oldest;
}

static bool tenant_busy(worker_pool *w, const char *tenant_id)
{
    for (int i = 0; i < JOBS_MAX; i++)
        if (w->jobs[i].used && w->jobs[i].state == WORKER_RUNNING &&
            strcmp(w->jobs[i].tenant_id, tenant_id) == 0)
            return true;
    return false;
}

/* The oldest queued job whose tenant is not applying, or NULL. */
static struct job *job_next(worker_pool *w)
{
    struct job *best = NULL;
    for (int i = 0; i < JOBS_MAX; i++) {
        struct job *j = &w->jobs[i];
        if (j->used && j->state == WORKER_QUEUED && (!best || j->queued_ms < best->queued_ms) &&
            !tenant_busy(w, j->tenant_id))
            best = j;
    }
    return best;
}

static int queue_locked(worker_pool *w, const char *plan_id, const char *tenant_id,
                        int64_t resumed_for_ms)
{
    if (w->stopping)
        return cad_fail(CAD_ESTATE, "the server is stopping; plan %s was not queued", plan_id);
    struct job *j = job_find(w, plan_id);
    if (j && j->state != WORKER_FINISHED)
        return CAD_OK;
    if (!j)
        j = job_slot(w);
    if (!j)
        return cad_fail(CAD_ENOMEM, "%d plans are already queued or applying; try again later",
                        JOBS_MAX);
    memset(j, 0, sizeof *j);
    j->used = true;
    j->state = WORKER_QUEUED;
    snprintf(j->plan_id, sizeof j->plan_id, "%s", plan_id);
    snprintf(j->tenant_id, sizeof j->tenant_id, "%s", tenant_id);
    j->queued_ms = j->updated_ms = time_now_ms();
    j->resumed_for_ms = resumed_for_ms;
    pthread_cond_broadcast(&w->work);
    cad_log(LOG_INFO, "worker.queued", "plan=%s tenant=%s", plan_id, tenant_id);
    return CAD_OK;
}

int worker_queue(worker_pool *w, const char *plan_id, const char *tenant_id)
{
    pthread_mutex_lock(&w->mu);
    int rc = queue_locked(w, plan_id, tenant_id, 0);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

bool worker_unqueue(worker_pool *w, const char *plan_id)
{
    pthread_mutex_lock(&w->mu);
    struct job *j = job_find(w, plan_id);
    bool was = j && j->state == WORKER_QUEUED;
    if (was) {
        j->state = WORKER_FINISHED;
        j->rc = CAD_ESTATE;
        j->updated_ms = time_now_ms();
        snprintf(j->message, sizeof j->message, "cancelled before it started");
    }
    pthread_mutex_unlock(&w->mu);
    return was;
}

bool worker_status(worker_pool *w, const char *plan_id, struct worker_status *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&w->mu);
    const struct job *j = job_find(w, plan_id);
    if (j) {
        out->state = j->state;
        out->has_progress = j->has_progress;
        out->progress = j->progress;
        out->rc = j->rc;
        out->outcome = j->outcome;
        snprintf(out->message, sizeof out->message, "%s", j->message);
        out->queued_ms = j->queued_ms;
        out->updated_ms = j->updated_ms;
    }
    pthread_mutex_unlock(&w->mu);
    return j != NULL;
}

/* ---- apply threads ---- */

static const char *const counted_states[4] = {"done", "failed", "conflict", "skipped"};

/* Adds to cadence_plan_steps_total what the job reached since it was last counted. Holds mu. */
static void count_steps(struct job *j, const struct plan_progress *p)
{
    const int now[4] = {p->done, p->failed, p->conflict, p->skipped};
    for (int i = 0; i < 4; i++) {
        if (now[i] > j->counted[i]) {
            const char *labels[] = {"state", counted_states[i]};
            metrics_counter_add("cadence_plan_steps_total",
                                "Plan steps that reached a final state in background applies",
                                labels, 1, (uint64_t)(now[i] - j->counted[i]));
            j->counted[i] = now[i];
        }
    }
}

/* The step states recorded by earlier applies of the plan: the metrics baseline. */
static void count_baseline(store *st, struct job *j)
{
    json_t *plan = NULL; /* no steps: the states are counted by the database */
    if (plan_summary_json(st, j->plan_id, &plan) != CAD_OK)
        return;
    json_t *states = json_object_get(plan, "states");
    for (int k = 0; k < 4; k++)
        j->counted[k] += (int)json_integer_value(json_object_get(states, counted_states[k]));
    json_decref(plan);
}

struct apply_ctx {
    worker_pool *w;
    struct job *j;
};

static void on_progress(void *ctx, const struct plan_progress *p)
{
    struct apply_ctx *a = ctx;
    pthread_mutex_lock(&a->w->mu);
    a->j->progress = *p;
    a->j->has_progress = true;
    a->j->updated_ms = time_now_ms();
    count_steps(a->j, p);
    pthread_mutex_unlock(&a->w->mu);
}

struct handles {
    store *st;
    vault *v;
};

static int handles_open(worker_pool *w, struct handles *h, bool with_vault)
{
    int rc = CAD_OK;
    if (!h->st && (rc = store_open(&h->st, w->db_path)) != CAD_OK)
        h->st = NULL;
    if (!rc && with_vault && !h->v && (rc = vault_open(&h->v, h->st, w->cfg.data_dir, 0)) != CAD_OK)
        h->v = NULL;
    return rc;
}

static void handles_close(struct handles *h)
{
    vault_close(h->v);
    store_close(h->st);
    h->v = NULL;
    h->st = NULL;
}

static void run_job(worker_pool *w, struct handles *h, struct job *j)
{
    /* The job's slot stays this thread's while it runs; once finished it may be reused at once,
     * so what the logs name is copied first. */
    pthread_mutex_lock(&w->mu);
    struct job copy = *j;
    pthread_mutex_unlock(&w->mu);
    struct plan_apply_result res;
    memset(&res, 0, sizeof res);
    int rc = handles_open(w, h, true);
    if (!rc) {
        count_baseline(h->st, &copy);
        pthread_mutex_lock(&w->mu);
        memcpy(j->counted, copy.counted, sizeof j->counted);
        pthread_mutex_unlock(&w->mu);
        cad_log(LOG_INFO, "worker.apply", "plan=%s tenant=%s", copy.plan_id, copy.tenant_id);
        struct apply_ctx a = {w, j};
        struct plan_apply_options o = {.actor = "system",
                                       .progress = on_progress,
                                       .ctx = &a,
                                       .issue_link = onboard_link_for_email};
        rc = plan_apply(h->st, h->v, copy.plan_id, &o, &res);
    }
    char errmsg[512] = "";
    if (rc)
        snprintf(errmsg, sizeof errmsg, "%s", cad_errmsg());
    pthread_mutex_lock(&w->mu);
    j->rc = rc;
    j->updated_ms = time_now_ms();
    if (rc) {
        snprintf(j->message, sizeof j->message, "%s", errmsg);
    } else {
        j->outcome = res.outcome;
        j->progress = res.progress;
        j->has_progress = true;
        count_steps(j, &res.progress);
        snprintf(j->message, sizeof j->message, "%.511s", res.message);
    }
    j->state = WORKER_FINISHED;
    pthread_mutex_unlock(&w->mu);
    const char *outcome = rc                                ? "error"
                          : res.outcome == PLAN_OUT_DONE    ? "done"
                          : res.outcome == PLAN_OUT_PARTIAL ? "partial"
                                                            : "paused";
    const char *labels[] = {"outcome", outcome};
    metrics_counter_add("cadence_plan_applies_total", "Background plan applies by how they ended",
                        labels, 1, 1);
    if (rc)
        cad_log(LOG_ERROR, "worker.apply_failed", "plan=%s tenant=%s error=\"%s\"", copy.plan_id,
                copy.tenant_id, errmsg);
    else
        cad_log(LOG_INFO, "worker.applied", "plan=%s tenant=%s outcome=%s", copy.plan_id,
                copy.tenant_id, outcome);
    if (rc == CAD_EIO) /* a broken handle is opened afresh for the next plan */
        handles_close(h);
}

static void *applier_main(void *arg)
{
    worker_pool *w = arg;
    struct handles h = {0};
    pthread_mutex_lock(&w->mu);
    for (;;) {
        struct job *j = NULL;
        while (!w->stopping && !(j = job_next(w)))
            pthread_cond_wait(&w->work, &w->mu);
        if (w->stopping)
            break;
        j->state = WORKER_RUNNING;
        j->updated_ms = time_now_ms();
        w->running++;
        pthread_mutex_unlock(&w->mu);
        run_job(w, &h, j);
        pthread_mutex_lock(&w->mu);
        w->running--;
        pthread_cond_broadcast(&w->idle);
        pthread_cond_broadcast(&w->work); /* the tenant is free for its next plan */
    }
    pthread_mutex_unlock(&w->mu);
    handles_close(&h);
    return NULL;
}

/* ---- outbox and scan loops ---- */

/* Waits `ms` or until stopping; false when stopping. Holds mu. */
static bool nap(worker_pool *w, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (!w->stopping && pthread_cond_timedwait(&w->tick, &w->mu, &until) != ETIMEDOUT)
        ;
    return !w->stopping;
}

static void *mailer_main(void *arg)
{
    worker_pool *w = arg;
    struct handles h = {0};
    struct mail_config mc;
    bool have_cfg = false;
    pthread_mutex_lock(&w->mu);
    do {
        pthread_mutex_unlock(&w->mu);
        if (!have_cfg && mail_config_from_env(&mc, w->cfg.data_dir) == CAD_OK)
            have_cfg = true;
        else if (!have_cfg)
            cad_log(LOG_ERROR, "worker.mail_config", "error=\"%s\"", cad_errmsg());
        struct mail_deliver_result r = {0};
        if (have_cfg && handles_open(w, &h, false) == CAD_OK &&
            mail_deliver_pending(h.st, &mc, time_now_ms(), &r) == CAD_OK) {
            const char *names[] = {"sent", "retrying", "failed"};
            const int counts[] = {r.sent, r.retrying, r.failed};
            for (int i = 0; i < 3; i++) {
                const char *labels[] = {"result", names[i]};
                if (counts[i] > 0)
                    metrics_counter_add("cadence_mail_deliveries_total",
                                        "Outbox delivery attempts by the background loop", labels,
                                        1, (uint64_t)counts[i]);
            }
            if (r.attempted)
                cad_log(LOG_INFO, "worker.mail", "attempted=%d sent=%d retrying=%d failed=%d",
                        r.attempted, r.sent, r.retrying, r.failed);
        } else if (have_cfg) {
            cad_log(LOG_ERROR, "worker.mail_failed", "error=\"%s\"", cad_errmsg());
            handles_close(&h);
        }
        pthread_mutex_lock(&w->mu);
    } while (nap(w, w->cfg.mail_interval_ms));
    pthread_mutex_unlock(&w->mu);
    if (have_cfg)
        mail_config_free(&mc);
    handles_close(&h);
    return NULL;
}

struct found {
    char id[PLAN_ID_MAX];
    char tenant[TENANT_ID_MAX];
    char status[16];
};

struct scan_ctx {
    struct found *f;
    int n, max;
};

static int scan_row(void *ctx, const json_t *summary)
{
    struct scan_ctx *c = ctx;
    const char *status = json_string_value(json_object_get(summary, "status"));
    const char *id = json_string_value(json_object_get(summary, "id"));
    const char *tenant = json_string_value(json_object_get(summary, "tenant"));
    if (!status || !id || !tenant || c->n >= c->max)
        return 0;
    if (strcmp(status, "confirmed") != 0 && strcmp(status, "applying") != 0 &&
        strcmp(status, "paused") != 0)
        return 0;
    struct found *f = &c->f[c->n++];
    snprintf(f->id, sizeof f->id, "%s", id);
    snprintf(f->tenant, sizeof f->tenant, "%s", tenant);
    snprintf(f->status, sizeof f->status, "%s", status);
    return 0;
}

/* The verification time of the tenant's key when it is verified after the last revocation, else
 * 0: the condition for resuming its paused plans. */
static int64_t resumable_since(store *st, const char *tenant_id)
{
    struct credential_info ci;
    int64_t detected = 0, mail_id = 0;
    int paused = 0;
    if (credential_info(st, tenant_id, CRED_KLAVIYO, &ci) != CAD_OK || ci.state != KEY_VERIFIED)
        return 0;
    if (plan_revocation_info(st, tenant_id, &detected, &mail_id, &paused) != CAD_OK)
        return 0;
    return ci.verified_ms > detected ? ci.verified_ms : 0;
}

static void scan_once(worker_pool *w, store *st, bool at_start)
{
    struct found f[JOBS_MAX];
    struct scan_ctx c = {f, 0, JOBS_MAX};
    if (plan_list(st, NULL, scan_row, &c) != CAD_OK) {
        cad_log(LOG_ERROR, "worker.scan_failed", "error=\"%s\"", cad_errmsg());
        return;
    }
    for (int i = c.n - 1; i >= 0; i--) { /* plan_list is newest first: queue the oldest first */
        bool paused = strcmp(f[i].status, "paused") == 0;
        if (!paused && !at_start)
            continue;
        int64_t since = paused ? resumable_since(st, f[i].tenant) : 0;
        if (paused && !since)
            continue;
        pthread_mutex_lock(&w->mu);
        struct job *j = job_find(w, f[i].id);
        bool skip = j && (j->state != WORKER_FINISHED || (paused && j->resumed_for_ms == since));
        if (!skip) {
            if (paused)
                cad_log(LOG_INFO, "worker.resume", "plan=%s tenant=%s", f[i].id, f[i].tenant);
            if (queue_locked(w, f[i].id, f[i].tenant, since) != CAD_OK)
                cad_log(LOG_WARN, "worker.queue_failed", "plan=%s error=\"%s\"", f[i].id,
                        cad_errmsg());
        }
        pthread_mutex_unlock(&w->mu);
    }
}

static void *scanner_main(void *arg)
{
    worker_pool *w = arg;
    struct handles h = {0};
    bool at_start = true;
    pthread_mutex_lock(&w->mu);
    do {
        pthread_mutex_unlock(&w->mu);
        if (handles_open(w, &h, false) == CAD_OK) {
            scan_once(w, h.st, at_start);
            at_start = false;
        } else {
            cad_log(LOG_ERROR, "worker.store", "error=\"%s\"", cad_errmsg());
        }
        pthread_mutex_lock(&w->mu);
    } while (nap(w, w->cfg.scan_interval_ms));
    pthread_mutex_unlock(&w->mu);
    handles_close(&h);
    return NULL;
}

/* ---- scheduled catalog syncs ---- */

struct approved {
    char (*ids)[TENANT_ID_MAX];
    int n, max;
};

static int row_approved(void *ctx, const store_row *row)
{
    struct approved *a = ctx;
    if (a->n < a->max)
        snprintf(a->ids[a->n++], TENANT_ID_MAX, "%s", store_row_text(row, 0));
    return 0;
}

static int row_held(void *ctx, const store_row *row)
{
    (void)row;
    *(bool *)ctx = true;
    return 0;
}

/* One sync of every tenant with a standing approval and a verified Shopify token; a plan that
 * changes something is confirmed under the approval and queued for the apply threads. The first
 * sync into an account that Klaviyo's own Shopify integration may feed is left for a person. */
static void catalog_once(worker_pool *w, struct handles *h)
{
    char ids[JOBS_MAX][TENANT_ID_MAX];
    struct approved a = {ids, 0, JOBS_MAX};
    if (store_query(h->st,
                    "SELECT tenant_id FROM catalog_settings WHERE approved_by IS NOT NULL ORDER BY "
                    "tenant_id",
                    SV_NONE, row_approved, &a) != CAD_OK) {
        cad_log(LOG_ERROR, "worker.catalog", "error=\"%s\"", cad_errmsg());
        return;
    }
    for (int i = 0; i < a.n; i++) {
        struct credential_info ci;
        if (credential_info(h->st, ids[i], CRED_SHOPIFY, &ci) != CAD_OK ||
            ci.state != KEY_VERIFIED) {
            cad_err_clear();
            continue;
        }
        pthread_mutex_lock(&w->mu);
        bool stop = w->stopping, busy = tenant_busy(w, ids[i]);
        pthread_mutex_unlock(&w->mu);
        if (stop)
            return;
        if (busy)
            continue;      /* a plan of the tenant is applying: the next round syncs */
        bool held = false; /* the last sync's plan still waits for a person */
        if (store_query(h->st,
                        "SELECT 1 FROM catalog_settings c JOIN plan_state s ON s.plan_id = "
                        "c.last_plan_id WHERE c.tenant_id = $1 AND s.status = 'planned'",
                        SV_ARGS(SV_TEXT(ids[i])), row_held, &held) != CAD_OK ||
            held) {
            cad_err_clear();
            continue;
        }
        struct catalog_sync_options o = {.actor = "system:catalog-schedule"};
        struct catalog_sync_result r;
        if (plan_catalog_sync(h->st, h->v, ids[i], &o, &r) != CAD_OK) {
            cad_log(LOG_WARN, "worker.catalog_sync", "tenant=%s error=\"%s\"", ids[i],
                    cad_errmsg());
            continue;
        }
        cad_log(LOG_INFO, "worker.catalog_sync",
                "tenant=%s plan=%s creates=%ld updates=%ld deletes=%ld unchanged=%ld", ids[i],
                r.plan_id[0] ? r.plan_id : "-", r.creates, r.updates, r.deletes, r.unchanged);
        if (!r.plan_id[0])
            continue;
        if (r.integration_warning[0]) {
            cad_log(LOG_WARN, "worker.catalog_held",
                    "tenant=%s plan=%s detail=\"not applied under the standing approval: %s\"",
                    ids[i], r.plan_id, r.integration_warning);
            continue;
        }
        if (plan_confirm_standing(h->st, r.plan_id) != CAD_OK ||
            worker_queue(w, r.plan_id, ids[i]) != CAD_OK)
            cad_log(LOG_WARN, "worker.catalog_queue", "plan=%s error=\"%s\"", r.plan_id,
                    cad_errmsg());
    }
}

static void *cataloger_main(void *arg)
{
    worker_pool *w = arg;
    struct handles h = {0};
    pthread_mutex_lock(&w->mu);
    while (nap(w, w->cfg.catalog_interval_ms)) {
        pthread_mutex_unlock(&w->mu);
        if (handles_open(w, &h, true) == CAD_OK)
            catalog_once(w, &h);
        else
            cad_log(LOG_ERROR, "worker.store", "error=\"%s\"", cad_errmsg());
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    handles_close(&h);
    return NULL;
}

/* ---- start and stop ---- */

static void pool_free(worker_pool *w)
{
    pthread_cond_destroy(&w->idle);
    pthread_cond_destroy(&w->tick);
    pthread_cond_destroy(&w->work);
    pthread_mutex_destroy(&w->mu);
    free(w->appliers);
    free(w);
}

static void join_all(worker_pool *w)
{
    if (w->mailer_up)
        pthread_join(w->mailer, NULL);
    if (w->scanner_up)
        pthread_join(w->scanner, NULL);
    if (w->cataloger_up)
        pthread_join(w->cataloger, NULL);
    for (int i = 0; i < w->n_appliers; i++)
        pthread_join(w->appliers[i], NULL);
}

int worker_start(worker_pool **out, const struct worker_config *cfg)
{
    *out = NULL;
    if (cfg->max_tenants < 1 || cfg->mail_interval_ms < 0 || cfg->scan_interval_ms < 1)
        return cad_fail(CAD_EINVAL, "worker configuration out of range");
    worker_pool *w = calloc(1, sizeof *w);
    if (!w || !(w->appliers = calloc((size_t)cfg->max_tenants, sizeof *w->appliers))) {
        free(w);
        return cad_fail(CAD_ENOMEM, "out of memory");
    }
    w->cfg = *cfg;
    snprintf(w->db_path, sizeof w->db_path, "%s/cadence.db", cfg->data_dir);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work, NULL);
    pthread_cond_init(&w->tick, NULL);
    pthread_cond_init(&w->idle, NULL);

    sigset_t sigs, old;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, &old);
    int err = 0;
    for (int i = 0; i < cfg->max_tenants && !err; i++)
        if (!(err = pthread_create(&w->appliers[i], NULL, applier_main, w)))
            w->n_appliers++;
    if (!err && cfg->mail_interval_ms > 0)
        w->mailer_up = !(err = pthread_create(&w->mailer, NULL, mailer_main, w));
    if (!err)
        w->scanner_up = !(err = pthread_create(&w->scanner, NULL, scanner_main, w));
    if (!err && cfg->catalog_interval_ms > 0)
        w->cataloger_up = !(err = pthread_create(&w->cataloger, NULL, cataloger_main, w));
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        pthread_mutex_lock(&w->mu);
        w->stopping = true;
        pthread_cond_broadcast(&w->work);
        pthread_cond_broadcast(&w->tick);
        pthread_mutex_unlock(&w->mu);
        join_all(w);
        pool_free(w);
        return cad_fail(CAD_EIO, "cannot start the background workers (%s)", strerror(err));
    }
    cad_log(LOG_INFO, "worker.start", "tenants=%d mail_interval_ms=%lld", cfg->max_tenants,
            (long long)cfg->mail_interval_ms);
    *out = w;
    return CAD_OK;
}

int worker_stop(worker_pool *w)
{
    if (!w)
        return CAD_OK;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(w->cfg.stop_wait_ms / 1000);
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    pthread_cond_broadcast(&w->work);
    pthread_cond_broadcast(&w->tick);
    if (w->running)
        cad_log(LOG_INFO, "worker.stopping", "applying=%d", w->running);
    while (w->running > 0 && pthread_cond_timedwait(&w->idle, &w->mu, &until) != ETIMEDOUT)
        ;
    int left = w->running;
    pthread_mutex_unlock(&w->mu);
    if (left > 0) {
        cad_log(LOG_WARN, "worker.stop_timeout",
                "applying=%d detail=\"left to resume at the next start\"", left);
        return cad_fail(CAD_ESTATE,
                        "%d plan(s) still applying after %lld s; they resume at the next start",
                        left, (long long)(w->cfg.stop_wait_ms / 1000));
    }
    join_all(w);
    pool_free(w);
    cad_log(LOG_INFO, "worker.stopped", "applying=0");
    return CAD_OK;
}
