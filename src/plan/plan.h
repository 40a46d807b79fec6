/*
 * The plan engine: bundle -> plan -> confirm -> apply, exactly once.
 *
 * plan_create() loads a bundle, reads the tenant's Klaviyo account as it really is (what Cadence
 * recorded from earlier pushes in remote_objects, checked against live reads; objects found by
 * exact name or by deterministic id) and stores an immutable plan: one step per asset (create,
 * update, replace, delete, unchanged) with a readable diff, the calls it will make, its
 * dependencies, an estimate of the time Klaviyo's rate limits impose, and a hash over tenant,
 * bundle and steps. plan_confirm() records an operator's confirmation of that hash; only then may
 * plan_apply() write, each write carrying its step's token (the client's write guard).
 *
 * Exactly once: before a step's write its intent is committed; after it the result (remote id,
 * content hash, Klaviyo's `updated` time). A step found with an intent and no result (a crash, an
 * ambiguous failure, an "outcome unknown" create) first looks its object up by name or id and
 * only creates it when absent.
 *
 * Revocation: the first confirmed revocation stops the apply at once (nothing new is sent), pauses
 * every running plan of the tenant, marks the key revoked and queues one email to the brand. A
 * paused plan continues from where it stopped once a new key is verified.
 *
 * Every function returns CAD_OK or a negative CAD_E* code with a message (common/err.h).
 */
#ifndef CADENCE_PLAN_PLAN_H
#define CADENCE_PLAN_PLAN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "store/store.h"
#include "vault/vault.h"

#define PLAN_ID_MAX 32

enum plan_action { PLAN_CREATE, PLAN_UPDATE, PLAN_REPLACE, PLAN_DELETE, PLAN_UNCHANGED };
/* "create", "update", "replace", "delete", "unchanged" */
const char *plan_action_name(enum plan_action a);

struct plan_create_options {
    bool prune;        /* delete what Cadence pushed earlier and the bundle no longer has */
    int64_t ttl_ms;    /* unconfirmed plans expire after this; 0 = plan_ttl_from_env() */
    const char *actor; /* who made the plan (audit, created_by) */
};

/* $CADENCE_PLAN_TTL (seconds, 1..2592000; default 86400) in ms. CAD_EINVAL for a bad value. */
int plan_ttl_from_env(int64_t *ttl_ms);

/* Bundle errors are handed to `on_bundle_error` (may be NULL) one formatted line each, then
 * CAD_EINVAL. The new plan's id goes to out_id. */
typedef void (*plan_line_fn)(void *ctx, const char *line);
int plan_create(store *st, vault *v, const char *tenant_id, const char *bundle_dir,
                const struct plan_create_options *o, plan_line_fn on_bundle_error, void *ctx,
                char out_id[PLAN_ID_MAX]);

/* The plan as one JSON object: id, hash, status, tenant, bundle, bundle_hash, created, expires,
 * confirmed_by/at, counts, estimate {seconds, text, operations[]} and steps [{seq, kind, name,
 * action, remote_id, deps, calls, diff, note, state, error}] (state/error from the last apply).
 * Caller owns *out (json_decref). */
int plan_to_json(store *st, const char *plan_id, json_t **out);
/* The same, for people. */
void plan_print_text(const json_t *plan, FILE *out);

typedef int (*plan_fn)(void *ctx, const json_t *summary);
/* Summaries (id, tenant, status, created, hash, counts) newest first; tenant_id NULL = all. */
int plan_list(store *st, const char *tenant_id, plan_fn fn, void *ctx);

/* Cancels a plan that has not finished (CAD_ESTATE otherwise). */
int plan_cancel(store *st, const char *actor, const char *plan_id);

/* Confirms `plan_id` when `hash` is its hash, the operator exists and is enabled, the plan has not
 * expired, is not stale (no other plan of the tenant started since it was made) and its bundle
 * still hashes the same. Records plan.confirm in the audit log. */
int plan_confirm(store *st, const char *operator_email, const char *plan_id, const char *hash);

struct plan_progress {
    int total, done, failed, conflict, skipped, running;
    int per_kind_total[16], per_kind_done[16];
    int64_t calls;              /* requests sent by this apply */
    int64_t throttled;          /* 429 answers received by this apply */
    int64_t elapsed_ms, eta_ms; /* eta -1 when unknown */
    bool revoked;
};
typedef void (*plan_progress_fn)(void *ctx, const struct plan_progress *p);

struct plan_apply_options {
    const char *actor;
    plan_progress_fn progress; /* called about once a second, and at the end; may be NULL */
    void *ctx;
    /* Issues a fresh onboarding link for the revocation email; may be NULL, then the email points
     * at $CADENCE_PUBLIC_URL (default http://localhost:8080). */
    int (*issue_link)(void *ctx, store *st, const char *tenant_id, char *url, size_t urlsz);
};

enum plan_outcome { PLAN_OUT_DONE, PLAN_OUT_PARTIAL, PLAN_OUT_PAUSED };

struct plan_apply_result {
    enum plan_outcome outcome;
    struct plan_progress progress;
    char message[2048];
};

/* Runs a confirmed (or paused, or interrupted) plan in the caller's thread until it is done,
 * partial or paused. Refuses a plan that is not confirmed, whose bundle changed, or that is stale.
 * Returns CAD_OK when the plan ran to an end (see result->outcome). */
int plan_apply(store *st, vault *v, const char *plan_id, const struct plan_apply_options *o,
               struct plan_apply_result *result);

/* Paused plans of a tenant, oldest first, into ids (at most max); *n gets how many. */
int plan_paused(store *st, const char *tenant_id, char (*ids)[PLAN_ID_MAX], int max, int *n);

/* Revocation state for `cadence tenant show`: the last revocation's time and mail id (0 when
 * none). */
int plan_revocation_info(store *st, const char *tenant_id, int64_t *detected_ms, int64_t *mail_id,
                         int *paused_plans);

/* ---- campaigns: sending is its own confirmation ---- */

struct campaign_send_preview {
    char code[32]; /* give it back to campaign_send_confirm */
    char remote_id[256];
    char audience[1024]; /* for people: included/excluded lists and segments by name */
    char send_at[64];    /* "immediately" or ISO time */
    int64_t expires_ms;
};
/* Looks the draft campaign up (recorded by an applied plan), shows audience and send time and
 * issues a one-time code (valid 15 minutes). `at` NULL = send now. */
int campaign_send_prepare(store *st, vault *v, const char *actor, const char *tenant_id,
                          const char *campaign, const char *at, struct campaign_send_preview *out);
/* Sends (or schedules) the campaign the code was issued for; audited as campaign.send. */
int campaign_send_confirm(store *st, vault *v, const char *actor, const char *tenant_id,
                          const char *campaign, const char *code, char *message, size_t msgsz);

#endif
