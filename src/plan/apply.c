/*
 * The apply engine: runs a confirmed plan's steps in dependency order, many at once, through
 * klaviyo_submit(), as fast as the client's rate limiter lets them go.
 *
 * Each step is a small state machine driven by the responses of its calls (`pc` says which
 * response it is waiting for). What makes it exactly-once is what is stored before and after each
 * write in plan_step_runs:
 *   pending -> intent (committed before the first write leaves) -> done (remote id, content hash,
 *   Klaviyo's updated time, and the remote_objects row, in one transaction).
 * A step found in `intent` (a crash, an ambiguous failure, an "outcome unknown" create) looks its
 * object up by exact name or deterministic id before it creates anything. `phase` records how far
 * a multi-call step got (1 = the object exists: a created object's id is known, or a replaced
 * object's old copy is gone).
 *
 * Conflicts: before an update, replace or delete the object is read again; if its `updated` moved
 * since the plan was made (and the move is not our own interrupted write, which shows as the
 * object already holding the bundle's content) the step stops as a conflict.
 *
 * Catalog items go in bulk jobs of up to 100 items, polled until complete; per-item errors are
 * checked with a lookup (an item that exists was created by an earlier attempt) and reported.
 *
 * Revocation: the first KLAVIYO_OUT_REVOKED (the client confirmed the 401 with GET /api/accounts
 * and from then on sends nothing with the key) stops new steps, lets the calls already on the wire
 * finish and be recorded, pauses the tenant's running plans, marks the key revoked and queues one
 * email per revoked key version.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "mail/mail.h"
#include "plan/plan_int.h"
#include "tenant/tenant.h"

enum rstate { RS_PENDING, RS_INTENT, RS_DONE, RS_FAILED, RS_CONFLICT, RS_SKIPPED };
static const char *const rstate_names[] = {"pending", "intent",   "done",
                                           "failed",  "conflict", "skipped"};

enum pc {
    PC_IDLE,
    PC_LOOKUP,      /* waiting for a lookup before create */
    PC_CREATE,      /* waiting for the POST */
    PC_CHECK,       /* waiting for the GET before update/replace/delete */
    PC_PATCH,       /* waiting for the PATCH */
    PC_DELETE,      /* waiting for the DELETE (delete step or replace's first half) */
    PC_X_MESSAGES,  /* campaign: waiting for the message ids */
    PC_X_MSG_PATCH, /* campaign: waiting for a message PATCH */
    PC_X_ASSIGN,    /* campaign: waiting for a template assignment */
    PC_X_TAG,       /* tag: waiting for a relationship POST */
    PC_TG_LOOKUP,   /* tag: waiting for the tag group lookup */
    PC_TG_CREATE,   /* tag: waiting for the tag group create */
};

#define MAX_UNKNOWN_ROUNDS 6
#define BATCH_MAX          100
#define BATCHES_ACTIVE_MAX 60

struct engine;
struct batch;

struct astep {
    struct engine *e;
    int seq;
    enum asset_kind kind;
    char *name;
    enum plan_action action;
    char content_hash[65];
    char *plan_rid, *plan_upd;
    int *deps;
    int ndeps;
    char token[160];
    const struct bundle_asset *asset;
    /* stored progress */
    enum rstate state;
    int phase, attempts;
    char *rid, *rupd;
    /* this run */
    bool active;
    bool end_pending; /* ended in memory; its row is written by the next flush_ends() */
    char *end_error;
    enum pc pc;
    int unknown_rounds;
    json_t *assign;  /* campaign: [{index, template}] */
    json_t *msg_ids; /* campaign: message ids in order */
    size_t sub;
    struct batch *batch;
    char *tg_id; /* tag: the id of its tag group */
    bool parked; /* tag: created, waiting for targets (see do_extras) */
    /* an intent left by an earlier applier: its request may still be on its way to Klaviyo, so
     * the lookup that decides whether to write again waits for engine.settle_until */
    bool settle;
};

struct batch {
    struct engine *e;
    enum plan_action action;
    struct astep *items[BATCH_MAX];
    int n;
    int pc; /* 0 lookup, 1 job create, 2 polling, 3 failed-item lookup */
    char job_id[160];
    int64_t next_poll_ms;
    bool waiting; /* a call is out */
    int rounds;
    bool failed_item[BATCH_MAX];
    char *item_error[BATCH_MAX];
    bool finished;
};

struct engine {
    store *st;
    klaviyo_client *c;
    struct plan_row p;
    struct bundle *b;
    struct astep *steps;
    int n;
    struct astep **index; /* sorted by kind, name */
    const struct plan_apply_options *o;
    const char *actor;
    bool revoked;
    struct plan_lease *lease;
    bool lease_lost; /* another applier took the plan over: send nothing new */
    char lease_msg[512];
    struct astep **ending; /* ended steps whose rows are not yet written */
    int nending;
    struct batch **batches;
    int nbatches, cap_batches, active_batches;
    int64_t calls, throttled, start_ms, audit_seq0, poll_ms;
    int64_t settle_until; /* monotonic ms; see astep.settle */
    char revoke_msg[800];
};

/* ---- storage ---- */

static int save_run(struct engine *e, struct astep *s, const char *error)
{
    return store_exec(e->st,
                      "UPDATE plan_step_runs SET state = $3, phase = $4, attempts = $5, "
                      "remote_id = $6, remote_updated = $7, result_hash = $8, error = $9, "
                      "updated_ms = $10 WHERE plan_id = $1 AND seq = $2",
                      SV_ARGS(SV_TEXT(e->p.id), SV_INT(s->seq), SV_TEXT(rstate_names[s->state]),
                              SV_INT(s->phase), SV_INT(s->attempts), SV_TEXT(s->rid),
                              SV_TEXT(s->rupd),
                              SV_TEXT(s->state == RS_DONE ? s->content_hash : NULL), SV_TEXT(error),
                              SV_INT(time_now_ms())));
}

static void set_str(char **dst, const char *src)
{
    char *n = src ? strdup(src) : NULL;
    free(*dst);
    *dst = n;
}

static int record_object(struct engine *e, struct astep *s)
{
    if (s->action == PLAN_DELETE)
        return store_exec(
            e->st,
            "DELETE FROM remote_objects WHERE tenant_id = $1 AND kind = $2 AND "
            "name = $3",
            SV_ARGS(SV_TEXT(e->p.tenant_id), SV_TEXT(asset_kind_name(s->kind)), SV_TEXT(s->name)));
    if (!s->rid)
        return CAD_OK;
    return store_exec(
        e->st,
        "INSERT INTO remote_objects (tenant_id, kind, name, remote_id, content_hash, "
        "remote_updated, plan_id, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT "
        "(tenant_id, kind, name) DO UPDATE SET remote_id = excluded.remote_id, content_hash = "
        "excluded.content_hash, remote_updated = excluded.remote_updated, plan_id = "
        "excluded.plan_id, updated_ms = excluded.updated_ms",
        SV_ARGS(SV_TEXT(e->p.tenant_id), SV_TEXT(asset_kind_name(s->kind)), SV_TEXT(s->name),
                SV_TEXT(s->rid), SV_TEXT(s->content_hash), SV_TEXT(s->rupd), SV_TEXT(e->p.id),
                SV_INT(time_now_ms())));
}

/* Ends a step in a final state; done steps record their object in the same transaction. */
static void step_end(struct engine *e, struct astep *s, enum rstate st, const char *error)
{
    s->state = st;
    s->active = false;
    s->pc = PC_IDLE;
    set_str(&s->end_error, error);
    if (!s->end_pending) {
        s->end_pending = true;
        e->ending[e->nending++] = s;
    }
}

static int write_end(struct engine *e, struct astep *s)
{
    int rc = save_run(e, s, s->end_error);
    if (!rc && s->state == RS_DONE)
        rc = record_object(e, s);
    return rc;
}

/* Writes the ends of every step that finished since the last flush in one transaction (one
 * durable commit for all the answers of a loop pass, not one per step). Until then a finished
 * step's row still says `intent`, which after a crash means "look the object up before writing":
 * a lost end costs a lookup, never a duplicate. Runs before anything that depends on those ends
 * (a dependent step's intent, the plan's final status) is written. */
static void flush_ends(struct engine *e)
{
    if (!e->nending)
        return;
    int rc = store_begin(e->st);
    for (int i = 0; i < e->nending && !rc; i++)
        rc = write_end(e, e->ending[i]);
    if (!rc)
        rc = store_commit(e->st);
    if (rc) {
        store_rollback(e->st);
        for (int i = 0; i < e->nending; i++) /* one by one, so one bad row costs only itself */
            if (write_end(e, e->ending[i]))
                cad_log(LOG_ERROR, "plan.apply", "plan=%s step=%d cannot record its end: %s",
                        e->p.id, e->ending[i]->seq, cad_errmsg());
    }
    for (int i = 0; i < e->nending; i++) {
        e->ending[i]->end_pending = false;
        set_str(&e->ending[i]->end_error, NULL);
    }
    e->nending = 0;
}

/* Stops a step where it stands (revocation): its stored state is left as it is. */
static void step_halt(struct astep *s)
{
    s->active = false;
    s->pc = PC_IDLE;
}

static int step_intent(struct engine *e, struct astep *s)
{
    s->state = RS_INTENT;
    s->attempts++;
    return save_run(e, s, NULL);
}

/* ---- revocation ---- */

static void on_revoked(struct engine *e, const struct klaviyo_result *res)
{
    if (e->revoked)
        return;
    e->revoked = true;
    snprintf(e->revoke_msg, sizeof e->revoke_msg, "%s", res->message);
    plan_record_revocation(e->st, e->o, e->p.tenant_id, e->p.id);
}

int plan_record_end(store *st, const struct plan_row *p, const char *actor, const char *status,
                    const char *message, int64_t elapsed_ms)
{
    int rc = store_begin(st);
    if (!rc)
        rc = store_exec(
            st,
            "UPDATE plan_state SET status = $2, detail = $3, finished_ms = $4, "
            "updated_ms = $4 WHERE plan_id = $1",
            SV_ARGS(SV_TEXT(p->id), SV_TEXT(status), SV_TEXT(message), SV_INT(time_now_ms())));
    if (!rc) {
        struct audit_entry ae = {.tenant_id = p->tenant_id,
                                 .actor = actor,
                                 .action = "plan.apply.end",
                                 .payload_sha256 = p->hash,
                                 .duration_ms = elapsed_ms,
                                 .detail = message};
        rc = audit_append(st, &ae, NULL);
    }
    if (rc) {
        store_rollback(st);
        return rc;
    }
    return store_commit(st);
}

void plan_record_revocation(store *st, const struct plan_apply_options *o, const char *tenant,
                            const char *plan_id)
{
    struct credential_info ci;
    struct tenant t;
    int rc = credential_info(st, tenant, CRED_KLAVIYO, &ci);
    if (!rc)
        rc = tenant_get(st, tenant, &t);
    if (rc) {
        cad_log(LOG_ERROR, "plan.revoked", "tenant=%s cannot read the tenant: %s", tenant,
                cad_errmsg());
        return;
    }
    char link[1024] = "";
    if (o && o->issue_link && o->issue_link(o->ctx, st, tenant, link, sizeof link) != CAD_OK)
        link[0] = '\0';
    if (!link[0]) {
        const char *pub = getenv("CADENCE_PUBLIC_URL");
        snprintf(link, sizeof link, "%s/", pub && *pub ? pub : "http://localhost:8080");
    }
    char dedupe[160], detail[768];
    snprintf(dedupe, sizeof dedupe, "key-revoked:%s:v%d", tenant, ci.version);
    if (store_begin(st))
        return;
    rc = credential_set_state(st, AUDIT_ACTOR_SYSTEM, tenant, CRED_KLAVIYO, KEY_REVOKED,
                              "key.revoked",
                              "Klaviyo rejected the key twice (a call, then GET /api/accounts); "
                              "the tenant's plans are paused");
    if (!rc)
        rc = store_exec(st,
                        "UPDATE plan_state SET status = 'paused', detail = $2, updated_ms = $3 "
                        "WHERE status = 'applying' AND plan_id IN (SELECT id FROM plans WHERE "
                        "tenant_id = $1)",
                        SV_ARGS(SV_TEXT(tenant),
                                SV_TEXT("paused: Klaviyo revoked the key; resumes when a new key "
                                        "is verified"),
                                SV_INT(time_now_ms())));
    int64_t mail_id = 0;
    bool is_new = false;
    if (!rc && t.email[0] && mail_addr_valid(t.email)) {
        struct mail_message msg = {0};
        rc = mail_build_key_revoked(t.name, link, &msg);
        if (!rc)
            rc = mail_queue(st, tenant, MAIL_KEY_REVOKED, dedupe, t.email, msg.subject, msg.body,
                            &mail_id, &is_new);
        mail_message_free(&msg);
        snprintf(detail, sizeof detail,
                 "key …%s revoked; email %s to the brand (outbox %" PRId64 ")", ci.last4,
                 is_new ? "queued" : "already queued", mail_id);
    } else if (!rc) {
        snprintf(detail, sizeof detail,
                 "key …%s revoked; the tenant has no email address, so no email could be "
                 "queued: ask the brand for a new key another way",
                 ci.last4);
    }
    if (!rc)
        rc = store_exec(st,
                        "INSERT INTO key_revocations (tenant_id, key_version, detected_ms, "
                        "plan_id, mail_id, detail) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT "
                        "(tenant_id, key_version) DO NOTHING",
                        SV_ARGS(SV_TEXT(tenant), SV_INT(ci.version), SV_INT(time_now_ms()),
                                SV_TEXT(plan_id), mail_id ? SV_INT(mail_id) : SV_NULL,
                                SV_TEXT(detail)));
    if (rc) {
        store_rollback(st);
        cad_log(LOG_ERROR, "plan.revoked", "tenant=%s cannot record the revocation: %s", tenant,
                cad_errmsg());
        return;
    }
    store_commit(st);
}

/* ---- issuing calls ---- */

static void step_cb(void *ctx, const struct klaviyo_result *res);
static void step_go(struct engine *e, struct astep *s, const struct klaviyo_result *res);

static bool submit(struct engine *e, struct astep *s, const char *method, const char *target,
                   json_t *body, enum pc next)
{
    if (e->lease_lost) { /* another applier runs the plan now: its rows say where it stands */
        json_decref(body);
        step_halt(s);
        return false;
    }
    char *txt = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    struct klaviyo_request rq = {
        .method = method,
        .target = target,
        .body = txt,
        .body_len = txt ? strlen(txt) : 0,
        .write_authorization = strcmp(method, "GET") == 0 ? NULL : s->token,
    };
    s->pc = next;
    int rc = klaviyo_submit(e->c, &rq, step_cb, s);
    free(txt);
    if (rc == CAD_EAUTH) {
        step_halt(s);
        return false;
    }
    if (rc) {
        char msg[700];
        snprintf(msg, sizeof msg, "%s %s could not be sent: %s", method, target, cad_errmsg());
        step_end(e, s, RS_FAILED, msg);
        return false;
    }
    return true;
}

static void item_target(const struct kind_info *ki, const char *id, char *out, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = (size_t)snprintf(out, n, "%s/", ki->collection);
    for (const unsigned char *p = (const unsigned char *)id; *p && o + 4 < n; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
}

static int cmp_index(const void *a, const void *b)
{
    const struct astep *x = *(struct astep *const *)a, *y = *(struct astep *const *)b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return strcmp(x->name, y->name);
}

static struct astep *find_step(struct engine *e, enum asset_kind k, const char *name)
{
    struct astep key = {.kind = k, .name = (char *)name}, *kp = &key;
    struct astep **r = bsearch(&kp, e->index, (size_t)e->n, sizeof(struct astep *), cmp_index);
    return r ? *r : NULL;
}

static const char *resolve_run(void *ctx, enum asset_kind kind, const char *name)
{
    struct engine *e = ctx;
    struct astep *s = find_step(e, kind, name);
    if (!s)
        return NULL;
    return s->rid ? s->rid : s->plan_rid;
}

static json_t *step_body(struct engine *e, struct astep *s, const char *id, json_t **assign)
{
    bool unresolved = false;
    json_t *want = attrs_resolve(s->asset->attrs, resolve_run, e, &unresolved);
    if (s->tg_id)
        json_object_set_new(want, "tag_group_id", json_string(s->tg_id));
    json_t *body = body_for(s->asset, want, id, assign);
    json_decref(want);
    return body;
}

static const char *doc_updated(const struct kind_info *ki, const json_t *doc,
                               char fp[KIND_FINGERPRINT_LEN])
{
    return kind_updated(ki, json_object_get(json_object_get(doc, "data"), "attributes"), fp);
}

static void fail_res(struct engine *e, struct astep *s, const char *what,
                     const struct klaviyo_result *res)
{
    char msg[1100];
    snprintf(msg, sizeof msg, "%s: %s (%s)", what, res->message,
             klaviyo_outcome_name(res->outcome));
    step_end(e, s, RS_FAILED, msg);
}

/* ---- the step machine ---- */

static void do_create(struct engine *e, struct astep *s);
static void do_extras(struct engine *e, struct astep *s);

static void do_lookup(struct engine *e, struct astep *s)
{
    const struct kind_info *ki = kind_info(s->kind);
    char target[2048];
    if (lookup_target(ki, asset_key(s->asset), target, sizeof target)) {
        step_end(e, s, RS_FAILED, cad_errmsg());
        return;
    }
    submit(e, s, "GET", target, NULL, PC_LOOKUP);
}

static void do_tag_group(struct engine *e, struct astep *s, bool create)
{
    const char *group = json_string_value(json_object_get(s->asset->attrs, "tag_group"));
    if (create) {
        json_t *body = json_pack("{s:{s:s,s:{s:s,s:b}}}", "data", "type", "tag-group", "attributes",
                                 "name", group, "exclusive", 0);
        submit(e, s, "POST", "/api/tag-groups", body, PC_TG_CREATE);
        return;
    }
    char filter[600], target[1024];
    const char *kv[] = {"filter", filter, NULL};
    if (klaviyo_filter_equals(filter, sizeof filter, "name", group) ||
        klaviyo_target(target, sizeof target, "/api/tag-groups", kv)) {
        step_end(e, s, RS_FAILED, cad_errmsg());
        return;
    }
    submit(e, s, "GET", target, NULL, PC_TG_LOOKUP);
}

static void do_post(struct engine *e, struct astep *s)
{
    if (s->kind == ASSET_TAG && !s->tg_id &&
        json_string_value(json_object_get(s->asset->attrs, "tag_group"))) {
        do_tag_group(e, s, false);
        return;
    }
    if (s->kind == ASSET_WEBHOOK) {
        const char *env = json_string_value(json_object_get(s->asset->attrs, "secret_key_env"));
        const char *secret = env ? getenv(env) : NULL;
        if (env && (!secret || !*secret)) {
            char msg[512];
            snprintf(msg, sizeof msg,
                     "the webhook's secret comes from the environment variable %s, which is not "
                     "set; set it and run `cadence plan apply` again",
                     env);
            step_end(e, s, RS_FAILED, msg);
            return;
        }
    }
    if (step_intent(e, s)) {
        step_end(e, s, RS_FAILED, cad_errmsg());
        return;
    }
    json_decref(s->assign);
    s->assign = NULL;
    json_t *body = step_body(e, s, NULL, &s->assign);
    submit(e, s, "POST", kind_info(s->kind)->collection, body, PC_CREATE);
}

static void do_create(struct engine *e, struct astep *s)
{
    if (s->state == RS_INTENT && s->phase >= 2 && s->rid) {
        do_extras(e, s);
        return;
    }
    if (s->state == RS_INTENT)
        do_lookup(e, s);
    else
        do_post(e, s);
}

static void do_check(struct engine *e, struct astep *s)
{
    char target[1024];
    item_target(kind_info(s->kind), s->plan_rid, target, sizeof target);
    submit(e, s, "GET", target, NULL, PC_CHECK);
}

static void step_start(struct engine *e, struct astep *s)
{
    s->active = true;
    s->unknown_rounds = 0;
    s->sub = 0;
    switch (s->action) {
    case PLAN_UNCHANGED:
        set_str(&s->rid, s->plan_rid);
        set_str(&s->rupd, s->plan_upd);
        step_end(e, s, RS_DONE, NULL);
        return;
    case PLAN_CREATE:
        do_create(e, s);
        return;
    case PLAN_REPLACE:
        if (s->phase >= 1 || !kind_info(s->kind)->can_delete || s->kind == ASSET_IMAGE) {
            do_create(e, s);
            return;
        }
        do_check(e, s);
        return;
    case PLAN_UPDATE:
        if (s->phase >= 2 && s->rid) {
            do_extras(e, s);
            return;
        }
        do_check(e, s);
        return;
    case PLAN_DELETE:
        do_check(e, s);
        return;
    }
}

/* The live object a check returned: conflict, or go on. */
static void after_check(struct engine *e, struct astep *s, const struct klaviyo_result *res)
{
    const struct kind_info *ki = kind_info(s->kind);
    if (res->outcome != KLAVIYO_OUT_OK && res->http_status == 404) {
        if (s->action == PLAN_DELETE) {
            step_end(e, s, RS_DONE, NULL);
            return;
        }
        if (s->action == PLAN_REPLACE && s->state == RS_INTENT) {
            s->phase = 1; /* our delete went through before */
            save_run(e, s, NULL);
            do_create(e, s);
            return;
        }
        char msg[512];
        snprintf(msg, sizeof msg,
                 "%s %s was deleted in Klaviyo after the plan was made; it was not recreated: "
                 "make a new plan",
                 ki->type, s->plan_rid);
        step_end(e, s, RS_CONFLICT, msg);
        return;
    }
    if (res->outcome != KLAVIYO_OUT_OK) {
        fail_res(e, s, "could not read the object before changing it", res);
        return;
    }
    char fp[KIND_FINGERPRINT_LEN];
    const char *upd = doc_updated(ki, res->doc, fp);
    bool moved = upd && s->plan_upd && strcmp(upd, s->plan_upd) != 0;
    if (moved) {
        bool ours = false;
        if (s->state == RS_INTENT && s->asset) {
            bool unresolved = false;
            json_t *want = attrs_resolve(s->asset->attrs, resolve_run, e, &unresolved);
            ours = !unresolved &&
                   attrs_match(ki, want,
                               json_object_get(json_object_get(res->doc, "data"), "attributes"));
            json_decref(want);
        }
        if (!ours) {
            char msg[512];
            snprintf(msg, sizeof msg,
                     "%s %s was changed in Klaviyo (updated %s) after the plan was made "
                     "(it saw %s); Cadence did not overwrite it: make a new plan",
                     ki->type, s->plan_rid, upd, s->plan_upd);
            step_end(e, s, RS_CONFLICT, msg);
            return;
        }
        if (s->action == PLAN_UPDATE) {
            set_str(&s->rid, s->plan_rid);
            set_str(&s->rupd, upd);
            s->phase = 2;
            save_run(e, s, NULL);
            do_extras(e, s);
            return;
        }
    }
    char target[1024];
    item_target(ki, s->plan_rid, target, sizeof target);
    if (step_intent(e, s)) {
        step_end(e, s, RS_FAILED, cad_errmsg());
        return;
    }
    if (s->action == PLAN_UPDATE) {
        json_decref(s->assign);
        s->assign = NULL;
        json_t *body = step_body(e, s, s->plan_rid, &s->assign);
        submit(e, s, "PATCH", target, body, PC_PATCH);
    } else {
        submit(e, s, "DELETE", target, NULL, PC_DELETE);
    }
}

static void adopt(struct engine *e, struct astep *s, const struct remote_obj *o)
{
    set_str(&s->rid, o->id);
    set_str(&s->rupd, o->updated);
    s->phase = 2;
    save_run(e, s, NULL);
    (void)e;
}

/* Whether every target of kind k of tag step s exists in Klaviyo: created or updated by this
 * plan (its id recorded; a campaign need not have its templates assigned yet) or unchanged. */
static bool tag_targets_exist(struct engine *e, const struct astep *s, enum asset_kind k)
{
    for (size_t i = 0; i < s->asset->n_refs; i++) {
        if (s->asset->refs[i].kind != k)
            continue;
        const struct astep *t = find_step(e, k, s->asset->refs[i].name);
        if (t && t->state != RS_DONE && !(t->rid && t->phase >= 2 && t->state != RS_FAILED))
            return false;
    }
    return true;
}

/* A tag whose own create needs nothing may be created before its targets exist. */
static bool tag_early(const struct astep *s)
{
    return s->kind == ASSET_TAG && s->action == PLAN_CREATE && s->state == RS_PENDING && s->asset &&
           !json_string_value(json_object_get(s->asset->attrs, "tag_group"));
}

static void do_extras(struct engine *e, struct astep *s)
{
    const struct kind_info *ki = kind_info(s->kind);
    if (s->kind == ASSET_CAMPAIGN) {
        if (!s->assign)
            json_decref(step_body(e, s, NULL, &s->assign));
        size_t nmsg = s->action == PLAN_UPDATE
                          ? json_array_size(json_object_get(
                                json_object_get(s->asset->attrs, "campaign-messages"), "data"))
                          : 0;
        if (json_array_size(s->assign) == 0 && nmsg == 0) {
            step_end(e, s, RS_DONE, NULL);
            return;
        }
        if (!s->msg_ids) {
            /* every way here sets rid (adopt, or plan_rid after the check that used it) */
            if (!s->rid) {
                step_end(e, s, RS_FAILED, "the campaign has no Klaviyo id to read its messages");
                return;
            }
            char target[1024];
            item_target(ki, s->rid, target, sizeof target);
            submit(e, s, "GET", target, NULL, PC_X_MESSAGES);
            return;
        }
        /* message PATCHes (updates), then template assignments */
        if (s->sub < nmsg) {
            json_t *msgs =
                json_object_get(json_object_get(s->asset->attrs, "campaign-messages"), "data");
            const char *mid = json_string_value(json_array_get(s->msg_ids, s->sub));
            if (!mid) {
                step_end(e, s, RS_FAILED, "Klaviyo shows fewer campaign messages than the bundle");
                return;
            }
            bool unresolved;
            json_t *m = attrs_resolve(json_array_get(msgs, s->sub), resolve_run, e, &unresolved);
            json_t *def = json_object_get(json_object_get(m, "attributes"), "definition");
            json_t *body =
                json_pack("{s:{s:s,s:s,s:{s:O}}}", "data", "type", "campaign-message", "id", mid,
                          "attributes", "definition", def ? def : json_object());
            json_t *d = json_object_get(json_object_get(body, "data"), "attributes");
            json_t *defc = json_object_get(d, "definition");
            json_object_del(defc, "template_id");
            json_object_del(defc, "template");
            json_decref(m);
            char target[1024];
            snprintf(target, sizeof target, "/api/campaign-messages/%s", mid);
            submit(e, s, "PATCH", target, body, PC_X_MSG_PATCH);
            return;
        }
        size_t ai = s->sub - nmsg;
        if (ai < json_array_size(s->assign)) {
            json_t *a = json_array_get(s->assign, ai);
            size_t idx = (size_t)json_integer_value(json_object_get(a, "index"));
            const char *mid = json_string_value(json_array_get(s->msg_ids, idx));
            if (!mid) {
                step_end(e, s, RS_FAILED,
                         "Klaviyo shows no campaign message for a template assignment");
                return;
            }
            json_t *body =
                json_pack("{s:{s:s,s:s,s:{s:{s:{s:s,s:s}}}}}", "data", "type", "campaign-message",
                          "id", mid, "relationships", "template", "data", "type", "template", "id",
                          json_string_value(json_object_get(a, "template")));
            submit(e, s, "POST", "/api/campaign-message-assign-template", body, PC_X_ASSIGN);
            return;
        }
        step_end(e, s, RS_DONE, NULL);
        return;
    }
    if (s->kind == ASSET_TAG && s->asset) {
        /* One relationship POST per target kind, in kind order, each as soon as every target of
         * that kind exists; until then the step is parked (inactive, its tag recorded) and
         * schedule_pass() brings it back. */
        for (int k = (int)s->sub; k < ASSET_KIND_COUNT; k++) {
            if (!tag_targets_exist(e, s, (enum asset_kind)k)) {
                s->active = false;
                s->pc = PC_IDLE;
                s->parked = true;
                return;
            }
            json_t *data = json_array();
            for (size_t i = 0; i < s->asset->n_refs; i++) {
                if ((int)s->asset->refs[i].kind != k)
                    continue;
                const char *id = resolve_run(e, s->asset->refs[i].kind, s->asset->refs[i].name);
                if (id)
                    json_array_append_new(data,
                                          json_pack("{s:s,s:s}", "type",
                                                    kind_info((enum asset_kind)k)->type, "id", id));
            }
            if (json_array_size(data) == 0) {
                json_decref(data);
                continue;
            }
            s->sub = (size_t)k + 1;
            char target[512];
            snprintf(target, sizeof target, "/api/tags/%s/relationships/%ss", s->rid,
                     kind_info((enum asset_kind)k)->type);
            submit(e, s, "POST", target, json_pack("{s:o}", "data", data), PC_X_TAG);
            return;
        }
    }
    step_end(e, s, RS_DONE, NULL);
}

static void step_go(struct engine *e, struct astep *s, const struct klaviyo_result *res)
{
    const struct kind_info *ki = kind_info(s->kind);
    switch (s->pc) {
    case PC_LOOKUP: {
        if (res->outcome != KLAVIYO_OUT_OK && res->http_status != 404) {
            fail_res(e, s, "could not look the object up before creating it", res);
            return;
        }
        struct remote_obj o = {0};
        int found = res->outcome == KLAVIYO_OUT_OK
                        ? lookup_match(ki, res->doc, asset_key(s->asset), &o)
                        : 0;
        if (found && s->action == PLAN_REPLACE && s->plan_rid && strcmp(o.id, s->plan_rid) == 0) {
            remote_obj_clear(&o); /* the copy being replaced is not ours */
            found = 0;
        }
        if (found) {
            adopt(e, s, &o);
            remote_obj_clear(&o);
            do_extras(e, s);
            return;
        }
        do_post(e, s);
        return;
    }
    case PC_CREATE:
        if (res->outcome == KLAVIYO_OUT_OK) {
            json_t *data = json_object_get(res->doc, "data");
            struct remote_obj o;
            if (remote_obj_from_json(ki, data, &o) != CAD_OK) {
                step_end(e, s, RS_FAILED, "Klaviyo's answer to the create had no id");
                return;
            }
            adopt(e, s, &o);
            remote_obj_clear(&o);
            json_t *msgs = json_object_get(
                json_object_get(json_object_get(data, "relationships"), "campaign-messages"),
                "data");
            if (json_is_array(msgs)) {
                json_decref(s->msg_ids);
                s->msg_ids = json_array();
                size_t i;
                json_t *m;
                json_array_foreach(msgs, i, m)
                {
                    json_array_append(s->msg_ids, json_object_get(m, "id"));
                }
            }
            do_extras(e, s);
            return;
        }
        if (res->outcome == KLAVIYO_OUT_UNKNOWN || res->http_status == 409) {
            if (++s->unknown_rounds > MAX_UNKNOWN_ROUNDS) {
                fail_res(e, s, "the create's outcome stayed unknown", res);
                return;
            }
            do_lookup(e, s);
            return;
        }
        fail_res(e, s, "Klaviyo refused the create", res);
        return;
    case PC_CHECK:
        after_check(e, s, res);
        return;
    case PC_PATCH:
        if (res->outcome != KLAVIYO_OUT_OK) {
            fail_res(e, s, "Klaviyo refused the update", res);
            return;
        }
        set_str(&s->rid, s->plan_rid);
        char fp[KIND_FINGERPRINT_LEN];
        if (doc_updated(ki, res->doc, fp))
            set_str(&s->rupd, doc_updated(ki, res->doc, fp));
        s->phase = 2;
        save_run(e, s, NULL);
        do_extras(e, s);
        return;
    case PC_DELETE:
        if (res->outcome != KLAVIYO_OUT_OK && res->http_status != 404) {
            fail_res(e, s, "Klaviyo refused the delete", res);
            return;
        }
        if (s->action == PLAN_DELETE) {
            step_end(e, s, RS_DONE, NULL);
            return;
        }
        s->phase = 1;
        save_run(e, s, NULL);
        do_create(e, s);
        return;
    case PC_X_MESSAGES: {
        if (res->outcome != KLAVIYO_OUT_OK) {
            fail_res(e, s, "could not read the campaign's messages", res);
            return;
        }
        json_t *msgs = json_object_get(
            json_object_get(json_object_get(json_object_get(res->doc, "data"), "relationships"),
                            "campaign-messages"),
            "data");
        s->msg_ids = json_array();
        size_t i;
        json_t *m;
        json_array_foreach(msgs, i, m)
        {
            json_array_append(s->msg_ids, json_object_get(m, "id"));
        }
        do_extras(e, s);
        return;
    }
    case PC_X_MSG_PATCH:
    case PC_X_ASSIGN:
    case PC_X_TAG:
        if ((res->outcome == KLAVIYO_OUT_UNKNOWN || res->outcome == KLAVIYO_OUT_TRANSIENT ||
             res->outcome == KLAVIYO_OUT_UNREACHABLE) &&
            ++s->unknown_rounds <= MAX_UNKNOWN_ROUNDS) {
            /* these writes can be repeated safely: a template assigned twice leaves the message
             * with one (copied) template, a tag linked twice stays linked once */
            if (s->pc == PC_X_TAG)
                s->sub = s->sub ? s->sub - 1 : 0;
            do_extras(e, s);
            return;
        }
        if (res->outcome != KLAVIYO_OUT_OK) {
            fail_res(e, s,
                     s->pc == PC_X_TAG      ? "could not tag the objects"
                     : s->pc == PC_X_ASSIGN ? "could not assign the template"
                                            : "could not update the campaign message",
                     res);
            return;
        }
        if (s->pc != PC_X_TAG)
            s->sub++;
        do_extras(e, s);
        return;
    case PC_TG_LOOKUP:
    case PC_TG_CREATE: {
        if (res->outcome == KLAVIYO_OUT_UNKNOWN && ++s->unknown_rounds <= MAX_UNKNOWN_ROUNDS) {
            do_tag_group(e, s, false);
            return;
        }
        if (res->outcome != KLAVIYO_OUT_OK) {
            fail_res(e, s, "could not find or create the tag group", res);
            return;
        }
        json_t *data = json_object_get(res->doc, "data");
        const char *group = json_string_value(json_object_get(s->asset->attrs, "tag_group"));
        const char *gid = NULL;
        if (json_is_object(data)) {
            gid = json_string_value(json_object_get(data, "id"));
        } else {
            size_t i;
            json_t *d;
            json_array_foreach(data, i, d)
            {
                const char *n =
                    json_string_value(json_object_get(json_object_get(d, "attributes"), "name"));
                if (n && strcmp(n, group) == 0) {
                    gid = json_string_value(json_object_get(d, "id"));
                    break;
                }
            }
        }
        if (!gid) {
            do_tag_group(e, s, true);
            return;
        }
        set_str(&s->tg_id, gid);
        do_post(e, s);
        return;
    }
    case PC_IDLE:
        return;
    }
}

static void step_cb(void *ctx, const struct klaviyo_result *res)
{
    struct astep *s = ctx;
    struct engine *e = s->e;
    e->calls += res->attempts;
    e->throttled += res->throttled;
    if (res->outcome == KLAVIYO_OUT_REVOKED) {
        on_revoked(e, res);
        step_halt(s);
        return;
    }
    if (e->revoked && res->outcome != KLAVIYO_OUT_OK) {
        step_halt(s); /* the stored state says where to resume */
        return;
    }
    step_go(e, s, res); /* an answer already on its way is still recorded */
}

/* ---- catalog items in bulk jobs ---- */

static void batch_cb(void *ctx, const struct klaviyo_result *res);

static const char *batch_verb(enum plan_action a)
{
    return a == PLAN_CREATE ? "create" : a == PLAN_DELETE ? "delete" : "update";
}

static void catalog_id(const char *ext, char *out, size_t n)
{
    snprintf(out, n, "$custom:::$default:::%s", ext);
}

static void batch_item_end(struct engine *e, struct astep *s, enum rstate st, const char *err)
{
    s->batch = NULL;
    step_end(e, s, st, err);
}

static int batch_open_items(const struct batch *bt)
{
    int n = 0;
    for (int i = 0; i < bt->n; i++)
        n += bt->items[i] && bt->items[i]->batch == bt;
    return n;
}

static void batch_close_if_empty(struct engine *e, struct batch *bt)
{
    if (!bt->finished && batch_open_items(bt) == 0) {
        bt->finished = true;
        e->active_batches--;
    }
}

static void batch_halt(struct engine *e, struct batch *bt)
{
    for (int i = 0; i < bt->n; i++)
        if (bt->items[i] && bt->items[i]->batch == bt) {
            bt->items[i]->batch = NULL;
            bt->items[i]->active = false;
        }
    if (!bt->finished) {
        bt->finished = true;
        e->active_batches--;
    }
}

static void batch_fail_open(struct engine *e, struct batch *bt, const char *msg)
{
    for (int i = 0; i < bt->n; i++)
        if (bt->items[i] && bt->items[i]->batch == bt)
            batch_item_end(e, bt->items[i], RS_FAILED, msg);
    batch_close_if_empty(e, bt);
}

static bool batch_submit(struct engine *e, struct batch *bt, const char *method, const char *target,
                         json_t *body, int next_pc)
{
    struct astep *first = NULL;
    for (int i = 0; i < bt->n && !first; i++)
        if (bt->items[i] && bt->items[i]->batch == bt)
            first = bt->items[i];
    if (!first) {
        json_decref(body);
        batch_close_if_empty(e, bt);
        return false;
    }
    if (e->lease_lost) {
        json_decref(body);
        batch_halt(e, bt);
        return false;
    }
    char *txt = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    struct klaviyo_request rq = {
        .method = method,
        .target = target,
        .body = txt,
        .body_len = txt ? strlen(txt) : 0,
        .write_authorization = strcmp(method, "GET") == 0 ? NULL : first->token,
    };
    bt->pc = next_pc;
    bt->waiting = true;
    int rc = klaviyo_submit(e->c, &rq, batch_cb, bt);
    free(txt);
    if (rc) {
        bt->waiting = false;
        if (rc == CAD_EAUTH) {
            batch_halt(e, bt);
            return false;
        }
        char msg[700];
        snprintf(msg, sizeof msg, "%s %s could not be sent: %s", method, target, cad_errmsg());
        batch_fail_open(e, bt, msg);
        return false;
    }
    return true;
}

static void batch_lookup(struct engine *e, struct batch *bt, int pc, bool only_failed)
{
    const char *ids[BATCH_MAX];
    char idbuf[BATCH_MAX][300];
    size_t n = 0;
    for (int i = 0; i < bt->n; i++) {
        struct astep *s = bt->items[i];
        if (!s || s->batch != bt || (only_failed && !bt->failed_item[i]))
            continue;
        catalog_id(s->name, idbuf[n], sizeof idbuf[n]);
        ids[n] = idbuf[n];
        n++;
    }
    if (!n) {
        batch_close_if_empty(e, bt);
        return;
    }
    const size_t filter_size = (size_t)64 * 1024, target_size = (size_t)96 * 1024;
    char *filter = malloc(filter_size), *target = malloc(target_size);
    int rc = filter && target ? klaviyo_filter_any(filter, filter_size, "ids", ids, n) : CAD_ENOMEM;
    if (!rc) {
        const char *kv[] = {"filter", filter, "page[size]", "100", NULL};
        rc = klaviyo_target(target, target_size, "/api/catalog-items", kv);
    }
    if (rc)
        batch_fail_open(e, bt, cad_errmsg());
    else
        batch_submit(e, bt, "GET", target, NULL, pc);
    free(filter);
    free(target);
}

static void batch_job(struct engine *e, struct batch *bt)
{
    json_t *items = json_array();
    int rc = store_begin(e->st);
    for (int i = 0; i < bt->n && !rc; i++) {
        struct astep *s = bt->items[i];
        bt->failed_item[i] = false;
        if (!s || s->batch != bt)
            continue;
        rc = step_intent(e, s);
        char id[300];
        catalog_id(s->name, id, sizeof id);
        json_t *it;
        if (bt->action == PLAN_DELETE) {
            it = json_pack("{s:s,s:s}", "type", "catalog-item", "id", id);
        } else {
            json_t *attrs = json_deep_copy(s->asset->attrs);
            if (bt->action != PLAN_CREATE) {
                json_object_del(attrs, "external_id");
                json_object_del(attrs, "integration_type");
                json_object_del(attrs, "catalog_type");
            }
            it = json_pack("{s:s,s:o}", "type", "catalog-item", "attributes", attrs);
            if (bt->action != PLAN_CREATE)
                json_object_set_new(it, "id", json_string(id));
        }
        json_array_append_new(items, it);
    }
    if (rc) {
        store_rollback(e->st);
        json_decref(items);
        batch_fail_open(e, bt, cad_errmsg());
        return;
    }
    store_commit(e->st);
    char type[64], path[96];
    snprintf(type, sizeof type, "catalog-item-bulk-%s-job", batch_verb(bt->action));
    snprintf(path, sizeof path, "/api/catalog-item-bulk-%s-jobs", batch_verb(bt->action));
    json_t *body = json_pack("{s:{s:s,s:{s:{s:o}}}}", "data", "type", type, "attributes", "items",
                             "data", items);
    batch_submit(e, bt, "POST", path, body, 1);
}

static void batch_start(struct engine *e, struct batch *bt)
{
    bool any_intent = false;
    for (int i = 0; i < bt->n; i++)
        any_intent |= bt->items[i] && bt->items[i]->state == RS_INTENT;
    if (any_intent || bt->action != PLAN_CREATE)
        batch_lookup(e, bt, 0, false);
    else
        batch_job(e, bt);
}

static const json_t *find_item(const json_t *data, const char *id)
{
    size_t i;
    json_t *d;
    json_array_foreach(data, i, d)
    {
        const char *did = json_string_value(json_object_get(d, "id"));
        if (did && strcmp(did, id) == 0)
            return d;
    }
    return NULL;
}

/* Lookup before a job: settle what is already as wanted, find conflicts. */
static void batch_after_lookup(struct engine *e, struct batch *bt, const json_t *data)
{
    const struct kind_info *ki = kind_info(ASSET_CATALOG_ITEM);
    for (int i = 0; i < bt->n; i++) {
        struct astep *s = bt->items[i];
        if (!s || s->batch != bt)
            continue;
        char id[300];
        catalog_id(s->name, id, sizeof id);
        const json_t *d = find_item(data, id);
        const char *upd =
            d ? json_string_value(json_object_get(json_object_get(d, "attributes"), "updated"))
              : NULL;
        if (bt->action == PLAN_CREATE) {
            if (d) {
                set_str(&s->rid, id);
                set_str(&s->rupd, upd);
                batch_item_end(e, s, RS_DONE, NULL);
            }
            continue;
        }
        if (!d) {
            if (bt->action == PLAN_DELETE)
                batch_item_end(e, s, RS_DONE, NULL);
            else
                batch_item_end(e, s, RS_CONFLICT,
                               "the catalog item was deleted in Klaviyo after the plan was made");
            continue;
        }
        bool moved = upd && s->plan_upd && strcmp(upd, s->plan_upd) != 0;
        if (!moved)
            continue;
        bool ours = false;
        if (s->state == RS_INTENT && bt->action == PLAN_UPDATE)
            ours = attrs_match(ki, s->asset->attrs, json_object_get(d, "attributes"));
        if (ours) {
            set_str(&s->rid, id);
            set_str(&s->rupd, upd);
            batch_item_end(e, s, RS_DONE, NULL);
        } else {
            char msg[512];
            snprintf(msg, sizeof msg,
                     "conflict: catalog item %s was changed in Klaviyo (updated %s) after the "
                     "plan was made (it saw %s); not overwritten",
                     s->name, upd, s->plan_upd);
            batch_item_end(e, s, RS_CONFLICT, msg);
        }
    }
    if (batch_open_items(bt) == 0) {
        batch_close_if_empty(e, bt);
        return;
    }
    batch_job(e, bt);
}

static void batch_cb_inner(struct batch *bt, const struct klaviyo_result *res);

/* One transaction for everything a batch's answer settles (up to 100 steps), not one each. */
static void batch_cb(void *ctx, const struct klaviyo_result *res)
{
    struct batch *bt = ctx;
    int rc = store_begin(bt->e->st);
    batch_cb_inner(bt, res);
    if (!rc)
        store_commit(bt->e->st);
}

static void batch_cb_inner(struct batch *bt, const struct klaviyo_result *res)
{
    struct engine *e = bt->e;
    bt->waiting = false;
    e->calls += res->attempts;
    e->throttled += res->throttled;
    if (res->outcome == KLAVIYO_OUT_REVOKED) {
        on_revoked(e, res);
        batch_halt(e, bt);
        return;
    }
    if (e->revoked && res->outcome != KLAVIYO_OUT_OK) {
        batch_halt(e, bt);
        return;
    }
    json_t *data = json_object_get(res->doc, "data");
    switch (bt->pc) {
    case 0:
        if (res->outcome != KLAVIYO_OUT_OK) {
            char msg[1100];
            snprintf(msg, sizeof msg, "could not read catalog items: %s", res->message);
            batch_fail_open(e, bt, msg);
            return;
        }
        batch_after_lookup(e, bt, data);
        return;
    case 1:
        if (res->outcome == KLAVIYO_OUT_OK) {
            const char *jid = json_string_value(json_object_get(data, "id"));
            snprintf(bt->job_id, sizeof bt->job_id, "%s", jid ? jid : "");
            bt->pc = 2;
            bt->next_poll_ms = time_mono_ms() + e->poll_ms;
            return;
        }
        if (res->outcome == KLAVIYO_OUT_UNKNOWN && ++bt->rounds <= MAX_UNKNOWN_ROUNDS) {
            batch_lookup(e, bt, 0, false);
            return;
        }
        {
            char msg[1100];
            snprintf(msg, sizeof msg, "Klaviyo refused the bulk %s job: %s", batch_verb(bt->action),
                     res->message);
            batch_fail_open(e, bt, msg);
        }
        return;
    case 2: {
        if (res->outcome != KLAVIYO_OUT_OK) {
            if (++bt->rounds > 20) {
                char msg[1100];
                snprintf(msg, sizeof msg, "could not follow bulk job %s: %s", bt->job_id,
                         res->message);
                batch_fail_open(e, bt, msg);
                return;
            }
            bt->next_poll_ms = time_mono_ms() + e->poll_ms * 2;
            return;
        }
        json_t *attrs = json_object_get(data, "attributes");
        const char *status = json_string_value(json_object_get(attrs, "status"));
        if (status && strcmp(status, "cancelled") == 0) {
            batch_fail_open(e, bt, "Klaviyo cancelled the bulk job");
            return;
        }
        if (!status || strcmp(status, "complete") != 0) {
            bt->next_poll_ms = time_mono_ms() + e->poll_ms;
            return;
        }
        /* per-item errors point at /data/attributes/items/data/<i> */
        struct astep *job[BATCH_MAX];
        int nj = 0, jidx[BATCH_MAX];
        for (int i = 0; i < bt->n; i++)
            if (bt->items[i] && bt->items[i]->batch == bt) {
                jidx[nj] = i;
                job[nj++] = bt->items[i];
            }
        size_t k;
        json_t *err;
        bool any_failed = false;
        json_array_foreach(json_object_get(attrs, "errors"), k, err)
        {
            const char *ptr =
                json_string_value(json_object_get(json_object_get(err, "source"), "pointer"));
            const char *p = ptr ? strstr(ptr, "/items/data/") : NULL;
            if (!p)
                continue;
            long idx = strtol(p + strlen("/items/data/"), NULL, 10);
            if (idx < 0 || idx >= nj)
                continue;
            bt->failed_item[jidx[idx]] = true;
            any_failed = true;
            char msg[700];
            snprintf(msg, sizeof msg, "Klaviyo rejected the item in bulk job %s: %s (%s)",
                     bt->job_id, json_string_value(json_object_get(err, "detail")),
                     json_string_value(json_object_get(err, "code")));
            set_str(&bt->item_error[jidx[idx]], msg);
        }
        for (int j = 0; j < nj; j++) {
            if (bt->failed_item[jidx[j]])
                continue;
            char id[300];
            catalog_id(job[j]->name, id, sizeof id);
            set_str(&job[j]->rid, id);
            batch_item_end(e, job[j], RS_DONE, NULL);
        }
        if (any_failed && bt->action == PLAN_CREATE) {
            batch_lookup(e, bt, 3, true);
            return;
        }
        for (int i = 0; i < bt->n; i++)
            if (bt->items[i] && bt->items[i]->batch == bt)
                batch_item_end(e, bt->items[i], RS_FAILED, bt->item_error[i]);
        batch_close_if_empty(e, bt);
        return;
    }
    case 3:
        for (int i = 0; i < bt->n; i++) {
            struct astep *s = bt->items[i];
            if (!s || s->batch != bt)
                continue;
            char id[300];
            catalog_id(s->name, id, sizeof id);
            const json_t *d = res->outcome == KLAVIYO_OUT_OK ? find_item(data, id) : NULL;
            if (d) { /* an earlier attempt created it */
                set_str(&s->rid, id);
                batch_item_end(e, s, RS_DONE, NULL);
            } else {
                batch_item_end(e, s, RS_FAILED, bt->item_error[i]);
            }
        }
        batch_close_if_empty(e, bt);
        return;
    default:
        return;
    }
}

/* ---- scheduling ---- */

/* 1 ready, 0 waiting, -1 a dependency ended without being done (*why says which). */
static int deps_ready(struct engine *e, struct astep *s, char *why, size_t whysz)
{
    for (int i = 0; i < s->ndeps; i++) {
        int d = s->deps[i];
        if (d < 1 || d > e->n)
            continue;
        struct astep *ds = &e->steps[d - 1];
        if (ds->state == RS_DONE)
            continue;
        if (ds->state == RS_FAILED || ds->state == RS_CONFLICT || ds->state == RS_SKIPPED) {
            snprintf(why, whysz, "not run: it needs %s \"%s\" (step %d), which ended %s",
                     asset_kind_name(ds->kind), ds->name, ds->seq, rstate_names[ds->state]);
            return -1;
        }
        return 0;
    }
    return 1;
}

static struct batch *batch_new(struct engine *e, enum plan_action a)
{
    if (e->nbatches == e->cap_batches) {
        int cap = e->cap_batches ? e->cap_batches * 2 : 16;
        struct batch **p = realloc(e->batches, (size_t)cap * sizeof(struct batch *));
        if (!p)
            return NULL;
        e->batches = p;
        e->cap_batches = cap;
    }
    struct batch *bt = calloc(1, sizeof *bt);
    if (!bt)
        return NULL;
    bt->e = e;
    bt->action = a;
    bt->pc = -1;
    e->batches[e->nbatches++] = bt;
    return bt;
}

static bool is_final(enum rstate s)
{
    return s == RS_DONE || s == RS_FAILED || s == RS_CONFLICT || s == RS_SKIPPED;
}

static void progress_fill(struct engine *e, struct plan_progress *p)
{
    memset(p, 0, sizeof *p);
    p->total = e->n;
    for (int i = 0; i < e->n; i++) {
        struct astep *s = &e->steps[i];
        if ((int)s->kind < 16)
            p->per_kind_total[s->kind]++;
        switch (s->state) {
        case RS_DONE:
            p->done++;
            if ((int)s->kind < 16)
                p->per_kind_done[s->kind]++;
            break;
        case RS_FAILED:
            p->failed++;
            break;
        case RS_CONFLICT:
            p->conflict++;
            break;
        case RS_SKIPPED:
            p->skipped++;
            break;
        default:
            p->running += s->active || s->batch;
            break;
        }
    }
    p->calls = e->calls;
    p->elapsed_ms = time_mono_ms() - e->start_ms;
    p->revoked = e->revoked;
    p->throttled = e->throttled;
    int finished = p->done + p->failed + p->conflict + p->skipped;
    p->eta_ms = finished > 0 && finished < p->total
                    ? p->elapsed_ms * (p->total - finished) / finished
                    : (finished == p->total ? 0 : -1);
}

/* Nothing new starts after a revocation or once another applier took the plan over. */
static bool halted(const struct engine *e)
{
    return e->revoked || e->lease_lost;
}

static void schedule_pass(struct engine *e)
{
    struct batch *open[3] = {NULL, NULL, NULL};
    bool non_delete_left = false;
    for (int i = 0; i < e->n; i++) {
        struct astep *s = &e->steps[i];
        if (!is_final(s->state) && s->action != PLAN_DELETE)
            non_delete_left = true;
    }
    int64_t now = time_mono_ms();
    for (int i = 0; i < e->n && !halted(e); i++) {
        struct astep *s = &e->steps[i];
        if (is_final(s->state) || s->active || s->batch)
            continue;
        if (s->settle) {
            if (now < e->settle_until)
                continue;
            s->settle = false;
        }
        if (s->action == PLAN_DELETE && non_delete_left)
            continue; /* deletes go last, after everything that might still refer to them */
        char why[512];
        int r = deps_ready(e, s, why, sizeof why);
        if (r < 0) {
            s->parked = false;
            step_end(e, s, RS_SKIPPED, why);
            continue;
        }
        if (s->parked) { /* a created tag: post the relationships whose targets now exist */
            s->parked = false;
            s->active = true;
            do_extras(e, s);
            continue;
        }
        if (r == 0 && !tag_early(s))
            continue;
        if (s->kind == ASSET_CATALOG_ITEM && s->action != PLAN_UNCHANGED) {
            int slot = s->action == PLAN_CREATE ? 0 : s->action == PLAN_DELETE ? 2 : 1;
            if (!open[slot]) {
                if (e->active_batches >= BATCHES_ACTIVE_MAX)
                    continue;
                open[slot] = batch_new(e, s->action == PLAN_REPLACE ? PLAN_UPDATE : s->action);
                if (!open[slot])
                    continue;
                e->active_batches++;
            }
            open[slot]->items[open[slot]->n++] = s;
            s->batch = open[slot];
            s->active = true;
            if (open[slot]->n == BATCH_MAX) {
                batch_start(e, open[slot]);
                open[slot] = NULL;
            }
            continue;
        }
        step_start(e, s);
    }
    for (int k = 0; k < 3; k++)
        if (open[k])
            batch_start(e, open[k]);
    now = time_mono_ms();
    for (int i = 0; i < e->nbatches && !halted(e); i++) {
        struct batch *bt = e->batches[i];
        if (bt->finished || bt->waiting || bt->pc != 2 || bt->next_poll_ms > now)
            continue;
        char path[256];
        snprintf(path, sizeof path, "/api/catalog-item-bulk-%s-jobs/%s", batch_verb(bt->action),
                 bt->job_id);
        batch_submit(e, bt, "GET", path, NULL, 2);
    }
}

/* One transaction for a pass: the ends of the last pass's answers, then the intents of every step
 * this pass starts. klaviyo_submit() only queues, and nothing leaves before klaviyo_run(), which
 * runs after the commit: each intent is still durable before its call. */
static void schedule(struct engine *e)
{
    int rc = store_begin(e->st);
    flush_ends(e);
    schedule_pass(e);
    flush_ends(e);
    if (!rc && store_commit(e->st))
        cad_log(LOG_ERROR, "plan.apply", "plan=%s cannot commit a pass: %s", e->p.id, cad_errmsg());
}

static bool work_left(struct engine *e)
{
    if (klaviyo_pending(e->c) > 0)
        return true;
    if (halted(e))
        return false;
    for (int i = 0; i < e->nbatches; i++)
        if (!e->batches[i]->finished)
            return true;
    for (int i = 0; i < e->n; i++)
        if (!is_final(e->steps[i].state))
            return true;
    return false;
}

/* ---- loading ---- */

static int row_step(void *ctx, const store_row *r)
{
    struct engine *e = ctx;
    if (e->n >= e->p.n_steps)
        return 0;
    struct astep *s = &e->steps[e->n++];
    s->e = e;
    s->seq = (int)store_row_int(r, 0);
    if (asset_kind_parse(store_row_text(r, 1), &s->kind) != CAD_OK)
        return CAD_ECORRUPT;
    s->name = strdup(store_row_text(r, 2));
    const char *act = store_row_text(r, 3);
    for (int a = 0; a < 5; a++)
        if (strcmp(act, plan_action_name((enum plan_action)a)) == 0)
            s->action = (enum plan_action)a;
    snprintf(s->content_hash, sizeof s->content_hash, "%s", store_row_text(r, 4));
    s->plan_rid = store_row_is_null(r, 5) ? NULL : strdup(store_row_text(r, 5));
    s->plan_upd = store_row_is_null(r, 6) ? NULL : strdup(store_row_text(r, 6));
    json_t *deps = json_loads(store_row_text(r, 7), 0, NULL);
    s->ndeps = (int)json_array_size(deps);
    s->deps = calloc((size_t)s->ndeps + 1, sizeof *s->deps);
    for (int i = 0; i < s->ndeps && s->deps; i++)
        s->deps[i] = (int)json_integer_value(json_array_get(deps, (size_t)i));
    json_decref(deps);
    snprintf(s->token, sizeof s->token, "%s", store_row_text(r, 8));
    const char *st = store_row_is_null(r, 9) ? "pending" : store_row_text(r, 9);
    for (int i = 0; i < 6; i++)
        if (strcmp(st, rstate_names[i]) == 0)
            s->state = (enum rstate)i;
    s->phase = (int)store_row_int(r, 10);
    s->attempts = (int)store_row_int(r, 11);
    s->rid = store_row_is_null(r, 12) ? NULL : strdup(store_row_text(r, 12));
    s->rupd = store_row_is_null(r, 13) ? NULL : strdup(store_row_text(r, 13));
    return 0;
}

static void engine_free(struct engine *e)
{
    /* steps are loaded (e->n > 0) only into an allocated e->steps */
    for (int i = 0; e->steps && i < e->n; i++) {
        struct astep *s = &e->steps[i];
        free(s->name);
        free(s->plan_rid);
        free(s->plan_upd);
        free(s->deps);
        free(s->rid);
        free(s->rupd);
        json_decref(s->assign);
        json_decref(s->msg_ids);
        free(s->tg_id);
        free(s->end_error);
    }
    free(e->steps);
    free(e->index);
    free(e->ending);
    for (int i = 0; i < e->nbatches; i++) {
        for (int k = 0; k < BATCH_MAX; k++)
            free(e->batches[i]->item_error[k]);
        free(e->batches[i]);
    }
    free(e->batches);
    klaviyo_client_free(e->c);
    bundle_free(e->b);
}

static int apply_refuse(const struct plan_row *p)
{
    if (strcmp(p->status, "planned") == 0)
        return cad_fail(CAD_EPERM,
                        "plan %s is not confirmed; nothing is written to Klaviyo without a "
                        "confirmed plan: read it with `cadence plan show %s`, then `cadence plan "
                        "confirm %s --hash HASH`",
                        p->id, p->id, p->id);
    if (strcmp(p->status, "done") == 0)
        return cad_fail(CAD_ESTATE, "plan %s is already done", p->id);
    if (strcmp(p->status, "cancelled") == 0)
        return cad_fail(CAD_ESTATE, "plan %s was cancelled", p->id);
    if (strcmp(p->status, "partial") == 0)
        return cad_fail(CAD_ESTATE,
                        "plan %s ended partial; see `cadence plan show %s` and make a new plan "
                        "for what is left",
                        p->id, p->id);
    return CAD_OK;
}

static int apply_leased(store *st, vault *v, const char *plan_id,
                        const struct plan_apply_options *o, struct plan_apply_result *result,
                        struct plan_lease *lease)
{
    struct engine e = {.st = st, .o = o, .lease = lease};
    e.actor = o && o->actor ? o->actor : AUDIT_ACTOR_SYSTEM;
    int rc = plan_row_get(st, plan_id, &e.p);
    if (rc)
        return rc;
    if ((rc = apply_refuse(&e.p)))
        return rc;
    if ((rc = plan_check_stale(st, &e.p)))
        return rc;
    if ((rc = plan_check_bundle(&e.p, &e.b)))
        return rc;
    if ((rc = plan_client_open(st, v, e.p.tenant_id, e.actor, &e.c))) {
        bundle_free(e.b);
        return rc;
    }
    const struct klaviyo_config *cfg = klaviyo_client_config(e.c);
    e.poll_ms = (int64_t)(1000.0 / (cfg->rate_scale > 0 ? cfg->rate_scale : 1.0));
    if (e.poll_ms < 20)
        e.poll_ms = 20;
    e.steps = calloc((size_t)e.p.n_steps + 1, sizeof *e.steps);
    e.index = calloc((size_t)e.p.n_steps + 1, sizeof(struct astep *));
    e.ending = calloc((size_t)e.p.n_steps + 1, sizeof(struct astep *));
    if (!e.steps || !e.index || !e.ending) {
        engine_free(&e);
        return cad_fail(CAD_ENOMEM, "out of memory");
    }
    int64_t now = time_now_ms();
    rc = store_begin(st);
    if (!rc)
        rc = store_exec(st,
                        "INSERT INTO plan_step_runs (plan_id, seq, state, updated_ms) SELECT "
                        "plan_id, seq, 'pending', $2 FROM plan_steps WHERE plan_id = $1 ON "
                        "CONFLICT (plan_id, seq) DO NOTHING",
                        SV_ARGS(SV_TEXT(plan_id), SV_INT(now)));
    if (!rc)
        rc = store_exec(st,
                        "UPDATE plan_state SET status = 'applying', started_ms = "
                        "COALESCE(started_ms, $2), detail = NULL, updated_ms = $2 WHERE plan_id "
                        "= $1",
                        SV_ARGS(SV_TEXT(plan_id), SV_INT(now)));
    if (!rc) {
        char detail[160];
        snprintf(detail, sizeof detail, "plan %s apply %s", plan_id,
                 strcmp(e.p.status, "confirmed") == 0 ? "started" : "resumed");
        struct audit_entry ae = {.tenant_id = e.p.tenant_id,
                                 .actor = e.actor,
                                 .action = "plan.apply",
                                 .payload_sha256 = e.p.hash,
                                 .duration_ms = -1,
                                 .detail = detail};
        rc = audit_append(st, &ae, &e.audit_seq0);
    }
    if (rc) {
        store_rollback(st);
        engine_free(&e);
        return rc;
    }
    store_commit(st);
    rc = store_query(st,
                     "SELECT s.seq, s.kind, s.name, s.action, s.content_hash, s.remote_id, "
                     "s.remote_updated, s.deps, s.token, r.state, r.phase, r.attempts, "
                     "r.remote_id, r.remote_updated FROM plan_steps s LEFT JOIN plan_step_runs r "
                     "ON r.plan_id = s.plan_id AND r.seq = s.seq WHERE s.plan_id = $1 ORDER BY "
                     "s.seq",
                     SV_ARGS(SV_TEXT(plan_id)), row_step, &e);
    if (rc < 0) {
        engine_free(&e);
        return rc;
    }
    for (int i = 0; i < e.n; i++) {
        e.index[i] = &e.steps[i];
        if (e.steps[i].action != PLAN_DELETE) {
            e.steps[i].asset = bundle_find(e.b, e.steps[i].kind, e.steps[i].name);
            if (!e.steps[i].asset) { /* the message is made before the step's name is freed */
                rc = cad_fail(CAD_ECORRUPT, "plan %s names %s \"%s\", which its bundle lacks",
                              plan_id, asset_kind_name(e.steps[i].kind), e.steps[i].name);
                engine_free(&e);
                return rc;
            }
        }
    }
    qsort(e.index, (size_t)e.n, sizeof(struct astep *), cmp_index);

    /* Intents an earlier applier left without an outcome (it crashed, or lost the plan): a request
     * it sent may still reach Klaviyo, up to one request timeout after it stopped, which was at
     * the latest now. A lookup before then could miss an object that is about to be created and
     * create it twice, so those steps (only they; the rest go ahead) wait out the timeout. */
    int settling = 0;
    for (int i = 0; i < e.n; i++) {
        e.steps[i].settle = e.steps[i].state == RS_INTENT;
        settling += e.steps[i].settle;
    }
    if (settling) {
        e.settle_until = time_mono_ms() + cfg->timeout_ms;
        cad_log(LOG_INFO, "plan.apply",
                "plan=%s steps_in_doubt=%d wait_ms=%ld (a request of the earlier run may still "
                "be in flight)",
                plan_id, settling, cfg->timeout_ms);
    }

    e.start_ms = time_mono_ms();
    int64_t last_tick = 0;
    for (;;) {
        schedule(&e);
        if (!work_left(&e))
            break;
        if ((rc = klaviyo_run(e.c, 50)))
            break;
        int64_t t = time_mono_ms();
        if (!e.lease_lost && t - lease->renewed_mono_ms >= PLAN_LEASE_RENEW_MS &&
            plan_lease_renew(st, lease) == CAD_ESTATE) {
            e.lease_lost = true;
            snprintf(e.lease_msg, sizeof e.lease_msg, "%s", cad_errmsg());
            cad_log(LOG_WARN, "plan.apply", "%s", e.lease_msg);
        }
        if (o && o->progress && t - last_tick >= 1000) {
            last_tick = t;
            struct plan_progress p;
            progress_fill(&e, &p);
            o->progress(o->ctx, &p);
        }
    }
    flush_ends(&e);
    if (e.lease_lost) { /* the plan's status is the new holder's to write */
        engine_free(&e);
        return cad_fail(CAD_ESTATE, "%s", e.lease_msg);
    }
    progress_fill(&e, &result->progress);
    if (o && o->progress)
        o->progress(o->ctx, &result->progress);
    struct plan_progress *p = &result->progress;
    const char *status;
    if (e.revoked) {
        result->outcome = PLAN_OUT_PAUSED;
        status = "paused";
        snprintf(result->message, sizeof result->message,
                 "paused: Klaviyo revoked %s's key (%s); %d of %d steps done. The brand has been "
                 "asked for a new key; once it is verified (`cadence key set %s --verify`), run "
                 "`cadence plan apply %s` to continue",
                 e.p.tenant_id, e.revoke_msg, p->done, p->total, e.p.tenant_id, plan_id);
    } else if (rc) {
        result->outcome = PLAN_OUT_PAUSED;
        status = "paused";
        snprintf(result->message, sizeof result->message, "paused: %s", cad_errmsg());
    } else if (p->done == p->total) {
        result->outcome = PLAN_OUT_DONE;
        status = "done";
        snprintf(result->message, sizeof result->message, "done: %d steps", p->total);
    } else {
        result->outcome = PLAN_OUT_PARTIAL;
        status = "partial";
        snprintf(result->message, sizeof result->message,
                 "partial: %d done, %d failed, %d conflicts, %d not run because a dependency "
                 "failed (each is listed with its reason by `cadence plan show %s`)",
                 p->done, p->failed, p->conflict, p->skipped, plan_id);
    }
    int src = plan_record_end(st, &e.p, e.actor, status, result->message, p->elapsed_ms);
    engine_free(&e);
    if (rc)
        return rc;
    return src;
}

struct revocation_row {
    int64_t detected_ms, mail_id, paused;
};

static int row_revocation(void *ctx, const store_row *r)
{
    struct revocation_row *v = ctx;
    v->detected_ms = store_row_int(r, 0);
    v->mail_id = store_row_int(r, 1);
    return 1;
}

static int row_paused_count(void *ctx, const store_row *r)
{
    ((struct revocation_row *)ctx)->paused = store_row_int(r, 0);
    return 1;
}

int plan_revocation_info(store *st, const char *tenant_id, int64_t *detected_ms, int64_t *mail_id,
                         int *paused_plans)
{
    struct revocation_row v = {0, 0, 0};
    int rc = store_query(st,
                         "SELECT detected_ms, COALESCE(mail_id, 0) FROM key_revocations WHERE "
                         "tenant_id = $1 ORDER BY key_version DESC LIMIT 1",
                         SV_ARGS(SV_TEXT(tenant_id)), row_revocation, &v);
    if (rc >= 0)
        rc = store_query(st,
                         "SELECT COUNT(*) FROM plans p JOIN plan_state s ON s.plan_id = p.id "
                         "WHERE p.tenant_id = $1 AND s.status = 'paused'",
                         SV_ARGS(SV_TEXT(tenant_id)), row_paused_count, &v);
    *detected_ms = v.detected_ms;
    *mail_id = v.mail_id;
    *paused_plans = (int)v.paused;
    return rc < 0 ? rc : CAD_OK;
}

int plan_apply(store *st, vault *v, const char *plan_id, const struct plan_apply_options *o,
               struct plan_apply_result *result)
{
    memset(result, 0, sizeof *result);
    struct plan_row p;
    int rc = plan_row_get(st, plan_id, &p);
    if (rc)
        return rc;
    if ((rc = apply_refuse(&p)))
        return rc;
    struct plan_lease lease;
    if ((rc = plan_lease_take(st, plan_id, 0, &lease)))
        return rc;
    /* the plan as it is now that no one else runs it (a former holder may have finished it) */
    if (plan_is_catalog(&p)) {
        rc = plan_row_get(st, plan_id, &p);
        if (!rc)
            rc = apply_refuse(&p);
        if (!rc)
            rc = plan_check_stale(st, &p);
        if (!rc)
            rc = catalog_apply_leased(st, v, &p, o, result, &lease);
    } else {
        rc = apply_leased(st, v, plan_id, o, result, &lease);
    }
    plan_lease_release(st, &lease);
    return rc;
}
