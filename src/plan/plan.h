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

/* The plan without its steps, what a page about it needs, read in a few passes whatever its
 * size: id, hash, status, tenant, bundle, bundle_hash, prune, created, expires, confirmed_by/at,
 * detail (the last apply's result), estimate {seconds, text, operations[]}, and counted by the
 * database: nsteps, counts (by action), states (by the last apply's state; "pending" for steps it
 * has not reached) and campaigns (the names of the campaigns it creates or changes, in step
 * order). Caller owns *out (json_decref). */
int plan_summary_json(store *st, const char *plan_id, json_t **out);
/* The summary with all its steps [{seq, kind, name, action, remote_id, deps, calls, diff, note,
 * state, error}] (state/error from the last apply) in "steps": for small plans and tests; a
 * catalog plan is read with plan_steps_json or plan_each_step, or printed with plan_print_json. */
int plan_to_json(store *st, const char *plan_id, json_t **out);
/* The plan's status as plan_to_json gives it ("expired" for a planned one past its time), read
 * without its steps. CAD_ENOTFOUND when there is no such plan. */
int plan_status_get(store *st, const char *plan_id, char *status, size_t n);
/* Steps as plan_to_json has them, without the summary: seq from from_seq, below to_seq (<= 0:
 * no bound), at most limit (< 0: no limit); all of them, or only those a reader has to read
 * (changed: not "unchanged", or with an error), or only the others. */
enum plan_steps_filter { PLAN_STEPS_ALL, PLAN_STEPS_CHANGED, PLAN_STEPS_UNCHANGED };
int plan_steps_json(store *st, const char *plan_id, int64_t from_seq, int64_t to_seq, int64_t limit,
                    enum plan_steps_filter filter, json_t **steps);
/* Calls fn with each step (as plan_to_json has it) in order, reading 1,000 at a time; a non-zero
 * return stops the walk (a negative one is returned). */
typedef int (*plan_step_fn)(void *ctx, const json_t *step);
int plan_each_step(store *st, const char *plan_id, plan_step_fn fn, void *ctx);
/* plan_to_json's object (less nsteps, states and campaigns) printed to `out` as it is read, a
 * step at a time (memory does not grow with the plan), with the members of `extra` (may be
 * NULL) added; "counts" comes last. */
int plan_print_json(store *st, const char *plan_id, const json_t *extra, FILE *out);
/* The same, for people: at most 25 steps of each kind, read a page at a time. */
int plan_print_text(store *st, const char *plan_id, FILE *out);

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

/* ---- Shopify catalog syncs (catalog_sync.c, catalog_apply.c; docs/catalog.md) ----
 *
 * A sync reads the tenant's Shopify catalog (catalog/catalog.h), maps every product, variant and
 * collection to a Klaviyo catalog item, variant and category, and compares each with what Cadence
 * last wrote (catalog_objects, by content hash): the plan holds only what changed — creates,
 * updates, and deletes of what the shop no longer has — with each object stored beside its step.
 * Unchanged objects are counted, not listed. The plan is confirmed and applied like any other
 * (plan_confirm, plan_apply: bulk jobs of 100 objects, categories, then items, then variants,
 * deletes in reverse), unless the tenant has a standing approval for catalog-only syncs.
 * Memory is bounded by one product and one batch of jobs, whatever the catalog's size. */

#define PLAN_CATALOG_SOURCE "shopify:" /* plans.bundle_dir of a sync: "shopify:<shop domain>" */

struct catalog_sync_options {
    const char *actor;
    int read_mode;  /* enum shop_read_mode (catalog/catalog.h); 0 = auto */
    int64_t ttl_ms; /* 0 = plan_ttl_from_env() */
};

struct catalog_sync_result {
    char plan_id[PLAN_ID_MAX]; /* "" when the Klaviyo catalog is already up to date */
    char shop[128];
    long products, variants, categories; /* read from the shop */
    long creates, updates, deletes, unchanged;
    long queries, throttled_waits; /* Shopify GraphQL requests, and waits for its throttle */
    long long bytes;
    int64_t read_ms, plan_ms;
    /* set when the account already receives a catalog from Klaviyo's own Shopify integration
     * (or when that could not be checked): a second, custom catalog would duplicate it */
    char integration_warning[512];
};

/* Reads the tenant's shop and stores the sync's plan (status planned). CAD_ESTATE without a
 * usable Shopify token; CAD_EAUTH when Shopify rejects it (the credential is then marked revoked
 * and the brand emailed). Nothing is stored unless the whole catalog was read. */
int plan_catalog_sync(store *st, vault *v, const char *tenant_id,
                      const struct catalog_sync_options *o, struct catalog_sync_result *r);

/* Grants (or, with grant false, withdraws) a tenant's standing approval of catalog-only syncs.
 * Only an enabled admin may; recorded in the audit log as catalog.approval. */
int catalog_approval_set(store *st, const char *admin_email, const char *tenant_id, bool grant);
/* The admin who gave the standing approval ("" when none) and when. */
int catalog_approval_get(store *st, const char *tenant_id, char by[256], int64_t *at_ms);
/* Confirms a catalog-sync plan under the tenant's standing approval (CAD_ESTATE when there is
 * none, or the plan is not a catalog sync). Audited as plan.confirm, naming the approval. */
int plan_confirm_standing(store *st, const char *plan_id);

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
