/*
 * Background work of `cadence serve`: the outbox delivery loop and the plan workers.
 *
 * Outbox: one thread with its own store handle calls mail_deliver_pending() every
 * mail_interval_ms (and once at start), so queued emails (key requests, revocation notices) leave
 * without anyone running `cadence mail send`.
 *
 * Plans: worker_queue() hands a confirmed plan to a pool of `max_tenants` apply threads, each with
 * its own store and vault. A plan runs through plan_apply() in one of them; two plans of one tenant
 * never run at once (a second waits its turn) and at most max_tenants tenants are applying at a
 * time. The latest progress of every plan this process ran is kept in memory for the console
 * (worker_status). A scan thread queues, at start, every confirmed plan not yet applied and every
 * plan left 'applying' by an earlier process (interrupted: the engine's exactly-once records make
 * resuming it safe); then, every scan_interval_ms, it resumes paused plans whose tenant's Klaviyo
 * key has been verified since the plan paused (see worker.c for the rule).
 *
 * Plans are not picked up from the store by polling for 'confirmed': a plan confirmed with the CLI
 * while the server runs is the CLI's to apply (`cadence plan apply`), so the two never race.
 *
 * Stopping: plan_apply() has no way to be interrupted from outside, so worker_stop() lets the
 * applies in progress run to their end for up to stop_wait_ms, starts nothing new, and stops the
 * outbox and scan loops at once.
 *
 * Every function returns CAD_OK or a negative CAD_E* code with a message (common/err.h).
 */
#ifndef CADENCE_WORKER_WORKER_H
#define CADENCE_WORKER_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "plan/plan.h"
#include "tenant/tenant.h"

typedef struct worker_pool worker_pool;

struct worker_config {
    const char *data_dir;     /* holds cadence.db and the master key (borrowed) */
    int max_tenants;          /* plans applying at once, one per tenant */
    int64_t mail_interval_ms; /* between two outbox deliveries; 0 = no outbox loop */
    int64_t scan_interval_ms; /* between two checks for paused plans to resume */
    int64_t stop_wait_ms;     /* how long worker_stop() waits for applies in progress */
    /* between two scheduled catalog syncs of the tenants with a standing approval; 0 = none */
    int64_t catalog_interval_ms;
};

/* Defaults (4 tenants, outbox every 5 s, scan every 5 s, stop wait 30 s), then the environment:
 * CADENCE_PLAN_WORKERS (1..64), CADENCE_MAIL_INTERVAL_S (0..3600, 0 = the outbox is left to
 * `cadence mail send`), CADENCE_WORKER_SCAN_S
 * (1..3600), CADENCE_WORKER_STOP_S (0..3600), CADENCE_CATALOG_SYNC_INTERVAL_S (0..604800, default
 * 0: no scheduled catalog syncs). CAD_EINVAL naming the variable for a bad value. */
int worker_config_from_env(struct worker_config *out, const char *data_dir);

/* Starts the threads. They block SIGTERM and SIGINT (the server's main thread takes those).
 * Caller stops and frees with worker_stop(). */
int worker_start(worker_pool **out, const struct worker_config *cfg);

/* Queues a confirmed (or paused) plan of `tenant_id` for the apply threads. Queuing a plan that is
 * already queued or running changes nothing. CAD_ESTATE once stopping; CAD_ENOMEM when the
 * table of plans is full of queued and running ones. */
int worker_queue(worker_pool *w, const char *plan_id, const char *tenant_id);

/* Drops a plan that is queued and not yet running (after a cancel). True when it was queued. */
bool worker_unqueue(worker_pool *w, const char *plan_id);

enum worker_job_state { WORKER_QUEUED, WORKER_RUNNING, WORKER_FINISHED };
const char *worker_job_state_name(enum worker_job_state s); /* "queued", "running", "finished" */

/* What this process knows of a plan it queued. */
struct worker_status {
    enum worker_job_state state;
    bool has_progress;             /* progress has been reported at least once */
    struct plan_progress progress; /* the latest */
    int rc;                        /* finished: plan_apply's return */
    enum plan_outcome outcome;     /* finished with rc CAD_OK */
    char message[512];             /* finished: the outcome or the error, for people */
    int64_t queued_ms, updated_ms; /* wall clock */
};

/* Copies the status of `plan_id` into *out; false when this process never queued it. */
bool worker_status(worker_pool *w, const char *plan_id, struct worker_status *out);

/* Stops the loops, waits up to stop_wait_ms for the applies in progress and frees everything.
 * When an apply is still running after that, returns CAD_ESTATE and frees nothing: the caller
 * should end the process (the plan resumes at the next start). NULL is fine. */
int worker_stop(worker_pool *w);

#endif
