/*
 * Internal to src/plan: what its files share.
 *
 *   kinds.c     one row per asset kind: Klaviyo's type, paths, page sizes, which field carries
 *               `updated`, what can be updated; request bodies with $refs resolved; the subset
 *               comparison of bundle attributes against live ones
 *   diff.c      unified line diffs (HTML, text) and field-by-field JSON diffs
 *   account.c   reading the account: paged listings, lookups by name or deterministic id
 *   plan.c      plan_create (steps, hash, estimate), storage, show, list, cancel, confirm
 *   apply.c     the apply engine: dependency order, concurrency, exactly-once, revocation
 *   lease.c     one applier per plan: a lease row taken atomically, renewed, released
 *   campaign.c  sending a draft campaign with its own confirmation
 */
#ifndef CADENCE_PLAN_PLAN_INT_H
#define CADENCE_PLAN_PLAN_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bundle/bundle.h"
#include "klaviyo/client.h"
#include "plan/plan.h"
#include "store/store.h"

/* Pointers first, then the enum and the flags: the only padding is at the end. */
struct kind_info {
    const char *type;          /* JSON:API type */
    const char *collection;    /* "/api/templates" */
    const char *list_filter;   /* a filter every listing needs (campaigns), or NULL */
    const char *updated_field; /* "updated", "updated_at", or NULL when Klaviyo has none */
    const char *name_field;    /* attribute that names the object; NULL = the id is the name */
    /* how a lookup by name is written: "eq" equals(name,"x"), "eqlist" equals(name,["x"]),
     * "contains" (campaigns, exact match client-side), "all" (list everything), "id" (the id is
     * deterministic) */
    const char *lookup;
    const char *create_op, *update_op, *delete_op, *get_op, *list_op;
    const char *opaque[3]; /* attributes Klaviyo does not echo comparably (compared by hash) */
    enum asset_kind kind;
    bool can_update; /* a PATCH exists for the content */
    bool can_delete;
};

const struct kind_info *kind_info(enum asset_kind k);
/* The kind whose JSON:API type is `type`, NULL when none. */
const struct kind_info *kind_by_type(const char *type);

/* What says an object changed: its `updated` (or `updated_at`) attribute, or, for the kinds that
 * have none (coupons, tags), "content:" and a hash of its attributes as Klaviyo shows them, so a
 * change made in Klaviyo after a plan was made is still seen at apply time. NULL when there is
 * neither. The fingerprint is written to fp. */
#define KIND_FINGERPRINT_LEN 48
const char *kind_updated(const struct kind_info *ki, const json_t *attrs,
                         char fp[KIND_FINGERPRINT_LEN]);

/* An object as Klaviyo shows it. */
struct remote_obj {
    char *id;
    char *name;
    char *updated; /* NULL when the kind has none */
    json_t *attrs;
    json_t *rels;
};
void remote_obj_clear(struct remote_obj *o);
/* Fills *o from one JSON:API resource object; CAD_EINVAL when it has no id. */
int remote_obj_from_json(const struct kind_info *ki, const json_t *data, struct remote_obj *o);

/* All objects of one kind in the account, sorted by name. */
struct remote_set {
    struct remote_obj *objs;
    size_t n, cap;
};
void remote_set_free(struct remote_set *s);
/* Index of the first object named `name` (exact), -1 when none; *count gets how many share it. */
long remote_set_find(const struct remote_set *s, const char *name, size_t *count);
long remote_set_find_id(const struct remote_set *s, const char *id);

/* Lists every object of a kind (page by page). */
int account_list(klaviyo_client *c, const struct kind_info *ki, struct remote_set *out);

/* The target for a lookup of `name` (or the deterministic id) of a kind. */
int lookup_target(const struct kind_info *ki, const char *key, char *out, size_t outsz);
/* Finds the object named `key` in a lookup response (exact match), or by id for deterministic
 * kinds. 1 found, 0 not. */
int lookup_match(const struct kind_info *ki, const json_t *doc, const char *key,
                 struct remote_obj *out);

/* The name used to find an asset in the account: the coupon's external_id, otherwise its name. */
const char *asset_key(const struct bundle_asset *a);

/* Resolves the $refs of a copy of attrs. `resolve` returns the remote id of (kind, name), or
 * NULL when unknown (then the ref becomes the string "(id of kind:name)" and *unresolved is set).
 * A ref that is the value of a "data" member becomes a linkage {type, id}; otherwise the id. */
typedef const char *(*ref_resolve_fn)(void *ctx, enum asset_kind kind, const char *name);
json_t *attrs_resolve(const json_t *attrs, ref_resolve_fn resolve, void *ctx, bool *unresolved);

/* The request body for creating or updating an asset from resolved attrs (takes a reference to
 * nothing; returns a new document). `id` NULL for create. For campaigns, template assignments
 * are taken out of the messages and returned in *assign (array of {"index", "template"}). */
json_t *body_for(const struct bundle_asset *a, const json_t *resolved, const char *id,
                 json_t **assign);

/* Whether every field of `want` equals the live attributes (objects compared as subsets, arrays
 * element by element), ignoring the kind's opaque fields. */
bool attrs_match(const struct kind_info *ki, const json_t *want, const json_t *live);

/* Field-by-field diff (and unified diffs for html/text) of want against live; malloc'd text. */
char *diff_attrs(const struct kind_info *ki, const json_t *want, const json_t *live);
/* Summary of a new object's fields; malloc'd. */
char *diff_new(const struct kind_info *ki, const json_t *want, const struct bundle_asset *a);
/* Unified diff of two texts with 3 lines of context; malloc'd ("" when equal). */
char *diff_unified(const char *label, const char *a, const char *b);

/* Opens the tenant's Klaviyo client (key from the vault). */
int plan_client_open(store *st, vault *v, const char *tenant_id, const char *actor,
                     klaviyo_client **out);

/* The updated time of a live object for a step ("" when the kind has none). */
const char *str_or_empty(const char *s);

/* Plan records shared by plan.c and apply.c. */
struct plan_row {
    char id[PLAN_ID_MAX];
    char tenant_id[64];
    char bundle_dir[4096];
    char bundle_hash[65];
    char hash[65];
    bool prune;
    int64_t created_ms, expires_ms, confirmed_ms, started_ms;
    char status[16];
    char confirmed_by[256];
    int n_steps;
};
int plan_row_get(store *st, const char *id, struct plan_row *out);
int plan_set_status(store *st, const char *id, const char *status, const char *detail);
/* CAD_ESTATE with a message when another plan of the tenant started after `since_ms`. */
int plan_check_stale(store *st, const struct plan_row *p);
/* Loads the bundle again and compares its hash with the plan's (CAD_ESTATE when it changed).
 * *out gets the bundle when out is not NULL. */
int plan_check_bundle(const struct plan_row *p, struct bundle **out);

/* ---- computing a plan (plan.c; pure, unit-tested) ---- */

/* What Cadence recorded in remote_objects about an asset it pushed. */
struct plan_recorded {
    enum asset_kind kind;
    char *name, *remote_id, *hash, *updated;
};

struct plan_step {
    int seq;
    enum asset_kind kind;
    const char *name;
    enum plan_action action;
    char content_hash[65];
    const char *remote_id, *remote_updated;
    json_t *deps, *calls;
    char *diff;
    char note[512];
};

/* The action for a bundle asset: create when nothing live matches; unchanged when Cadence's record
 * still matches the live object or every field does; otherwise replace for kinds Klaviyo cannot
 * update (forms, flow definitions) and images (never deleted: a new one is uploaded), else update.
 * `want` is the asset's attributes with $refs resolved (`unresolved` when some could not be). */
enum plan_action plan_decide(const struct bundle_asset *a, const struct remote_obj *live,
                             const struct plan_recorded *r, const json_t *want, bool unresolved);
/* Whether an object Cadence pushed earlier is deleted: only with --prune, only when the bundle no
 * longer has it, never an image. */
bool plan_prunes(bool prune, enum asset_kind kind, bool in_bundle);
/* The seqs (JSON array, no duplicates) of the steps `a` refers to; seq_of maps asset index to
 * step seq (0 = not yet a step). */
json_t *plan_step_deps(const struct bundle *b, const struct bundle_asset *a, const int *seq_of);
/* The time Klaviyo's limits impose on the calls of all steps (an array per step of
 * {operation, path}) plus catalog bulk jobs (create, update, delete): {seconds, text,
 * operations[]}, daily caps included ("it will finish tomorrow"). *out_ms gets the total. */
json_t *plan_estimate(const json_t *steps_calls, size_t n_catalog_jobs_create,
                      size_t n_catalog_jobs_update, size_t n_catalog_jobs_delete, int64_t *out_ms);
/* The plan hash over tenant, bundle hash, prune and every step (seq, kind, name, action, content
 * hash, remote id and updated time, deps). */
void plan_hash(const char *tenant, const char *bundle_hash, bool prune,
               const struct plan_step *steps, size_t n, char out[65]);

/* ---- leases (lease.c) ---- */

#define PLAN_LEASE_TTL_MS   30000 /* a holder that stops renewing loses the plan after this */
#define PLAN_LEASE_RENEW_MS 5000

struct plan_lease {
    char plan_id[PLAN_ID_MAX];
    char holder[128]; /* host:pid:random, unique per take */
    char host[256];
    int64_t pid, ttl_ms, renewed_mono_ms;
};
/* Takes plan_id's lease (ttl_ms 0 = PLAN_LEASE_TTL_MS). CAD_ESTATE naming the holder's process,
 * host and start time when another applier holds an unexpired lease whose process is not known
 * to be gone. */
int plan_lease_take(store *st, const char *plan_id, int64_t ttl_ms, struct plan_lease *out);
/* Extends the lease by its TTL; CAD_ESTATE when it was lost (expired and taken by another). */
int plan_lease_renew(store *st, struct plan_lease *l);
/* Deletes the lease if this holder still has it. */
void plan_lease_release(store *st, const struct plan_lease *l);
/* This host's name as leases record it. */
void plan_lease_host(char *out, size_t outsz);
/* True when (host, pid) is a process of this host that no longer exists (never for this one). */
bool plan_lease_holder_gone(const char *host, int64_t pid);

/* ---- shared by apply.c and catalog_apply.c ---- */

/* A confirmed revocation of the tenant's Klaviyo key, seen by plan_id's apply: marks the key
 * revoked, pauses the tenant's running plans, queues one email to the brand (with a fresh
 * onboarding link from o->issue_link when given) and records it, all in one transaction. */
void plan_record_revocation(store *st, const struct plan_apply_options *o, const char *tenant_id,
                            const char *plan_id);

/* An apply's end: the plan's status and message, and plan.apply.end in the audit log, in one
 * transaction. */
int plan_record_end(store *st, const struct plan_row *p, const char *actor, const char *status,
                    const char *message, int64_t elapsed_ms);
/* A confirmation: plan_state confirmed by `confirmed_by` (only from planned), and plan.confirm
 * by `actor` with `detail` in the audit log, in one transaction. */
int plan_record_confirm(store *st, const struct plan_row *p, const char *confirmed_by,
                        const char *actor, const char *detail);

/* Applies a catalog-sync plan (plans.bundle_dir "shopify:..."; catalog_apply.c) whose lease the
 * caller holds; the same contract as plan_apply. */
int catalog_apply_leased(store *st, vault *v, const struct plan_row *p,
                         const struct plan_apply_options *o, struct plan_apply_result *result,
                         struct plan_lease *lease);
/* True for a catalog-sync plan. */
bool plan_is_catalog(const struct plan_row *p);
/* The write token of a plan's step (what the client's write guard checks). */
void plan_step_token(const char *plan_id, const char *hash, int seq, char *out, size_t n);

#endif
