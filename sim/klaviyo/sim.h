/*
 * cadence-klaviyo-sim: a local emulator of Klaviyo's REST API for tests (internal header).
 *
 * The emulator is a separate program that shares only Cadence's bottom layer (cad_common for
 * time and randomness helpers, cad_kspec for the operation table). Every request is matched
 * against kspec's 345 operations, so routing, scopes and rate limits come from the one table
 * generated from Klaviyo's OpenAPI document; resource handlers are looked up by operationId.
 *
 * State lives in memory behind one global mutex (sim_lock). Objects are JSON:API resource
 * documents ({type,id,attributes,relationships}) stored per account and per type in a table
 * with insertion order plus a hash index by id. A member "_" holds emulator-private fields
 * (filterable values such as a campaign's channel) and is stripped when rendered.
 */
#ifndef CADENCE_SIM_KLAVIYO_SIM_H
#define CADENCE_SIM_KLAVIYO_SIM_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kspec/kspec.h"

#define SIM_MAX_BODY      ((size_t)10 * 1024 * 1024)
#define SIM_MAX_IMAGE     ((size_t)5 * 1024 * 1024)
#define SIM_MAX_PARAMS    4
#define SIM_MAX_HEADERS   8
#define SIM_TEMPLATE_CAP  1000
#define SIM_TAG_CAP       500
#define SIM_TAG_GROUP_CAP 50

/* ---- object store (store.c) ---- */

struct sim_obj {
    char *id;
    json_t *doc;  /* {type,id,attributes,relationships?,"_"?} */
    bool deleted; /* tombstone in the ordered array; removed from the index */
    size_t pos;   /* its place in the table's insertion order (items never move) */
};

struct sim_table {
    char *type;
    struct sim_obj **items; /* insertion order, tombstones included */
    size_t n, cap, live;
    struct sim_obj **buckets; /* open addressing by id */
    size_t nbuckets, used;
};

struct sim_account {
    char id[8];
    char *org_name;
    struct sim_table **tables;
    size_t ntables;
    struct sim_rl *rl; /* one counter set per kspec operation */
    uint64_t next_image_id;
    uint64_t next_action_id;
};

struct sim_key {
    char *key;
    char *scopes; /* "all" or a comma list */
    bool revoked;
    bool from_cli;
    struct sim_account *acct;
};

struct sim_table *store_table(struct sim_account *a, const char *type);
struct sim_obj *store_get(struct sim_account *a, const char *type, const char *id);
/* Takes ownership of doc; doc must carry "id". Returns NULL when the id already exists. */
struct sim_obj *store_put(struct sim_account *a, json_t *doc);
void store_delete(struct sim_account *a, const char *type, const char *id);
size_t store_count(struct sim_account *a, const char *type);
void store_clear(struct sim_account *a);

/* ---- global state (main.c / server.c) ---- */

struct sim_fault_cfg {
    int latency_min, latency_max;
    double error_rate, drop_after_create_rate, html_403_rate, foreign_usage;
    /* Fraction of the objects of catalog bulk create/update jobs that fail with a per-item
     * error; fixed per job when it is created. */
    double catalog_item_error_rate;
    char revoke_last4[8];
    long revoke_after; /* calls left before revocation, -1 when none */
};

struct sim_call {
    uint64_t seq;
    char method[8];
    char *path;
    char *query;
    int status; /* 0 = connection dropped */
    char key_last4[8];
    char operation_id[64];
    int64_t ts_ms;
};

struct sim_state {
    pthread_mutex_t lock;
    struct sim_account **accounts;
    size_t naccounts;
    struct sim_key **keys;
    size_t nkeys;
    struct sim_call *calls;
    size_t ncalls, calls_cap;
    uint64_t call_seq;
    struct sim_fault_cfg faults;
    struct sim_fault_cfg cli_faults; /* --latency-ms, restored by /__sim/reset */
    double time_scale;
    int64_t start_wall_ms, start_mono_ms;
    uint64_t rng;
    uint64_t seed;            /* --seed (or a random one): per-item fault draws hash it */
    bool shopify_integration; /* --shopify-integration: accounts start with Shopify's metrics */
    char base_url[64];
};

extern struct sim_state sim;

/* Emulated clock: real wall time at start plus elapsed monotonic time times --time-scale.
 * Rate-limit windows, daily caps and job progress run on this clock; timestamps shown in
 * resources use the real wall clock. */
int64_t sim_clock_ms(void);
/* "2026-07-15T10:00:00+00:00" (the format the spec's examples use) for the real time now. */
void sim_timestamp(char buf[32]);
void sim_timestamp_at(int64_t ms, char buf[32]);

uint64_t sim_rand(void);
double sim_rand_unit(void);
/* Random ids in Klaviyo's styles: 6 alphanumerics, ULID-like, UUID-like. */
void sim_id_short(char out[8]);
void sim_id_ulid(char out[27]);
void sim_id_uuid(char out[37]);

struct sim_account *sim_account_new(const char *org_name);
struct sim_key *sim_key_add(struct sim_account *a, const char *key, const char *scopes, bool cli);
struct sim_key *sim_key_find(const char *key);
struct sim_account *sim_account_find(const char *id);

/* ---- requests (server.c) ---- */

struct sim_header {
    char name[32];
    char value[96];
};

struct sim_req {
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    const struct kspec_op *op;
    char params[SIM_MAX_PARAMS][512];
    int nparams;
    struct sim_account *acct;
    struct sim_key *key;
    const char *raw_body;
    size_t raw_len;
    json_t *body; /* parsed JSON body or NULL */

    int status;
    json_t *resp;      /* JSON body to send, or NULL */
    char *text;        /* non-JSON body (HTML fault page) */
    const char *ctype; /* content type for text */
    struct sim_header headers[SIM_MAX_HEADERS];
    int nheaders;
};

/* Builds the operationId -> handler index; fails on a route naming an unknown operation. */
int server_init_routes(void);
enum MHD_Result server_access(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls);
void server_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe);

const char *req_query(struct sim_req *r, const char *name);
const char *req_header(struct sim_req *r, const char *name);
void req_add_header(struct sim_req *r, const char *name, const char *value);

/* ---- JSON:API helpers (jsonapi.c) ---- */

void japi_error(struct sim_req *r, int status, const char *code, const char *title,
                const char *detail, const char *pointer, const char *parameter);
void japi_bad(struct sim_req *r, const char *detail, const char *pointer);
void japi_not_found(struct sim_req *r, const char *what, const char *id);
void japi_conflict(struct sim_req *r, const char *detail);
/* data resource object with links.self; strips the private "_" member. */
json_t *japi_render(struct sim_req *r, const struct sim_obj *o, const char *path_prefix);
void japi_reply_obj(struct sim_req *r, int status, const struct sim_obj *o,
                    const char *path_prefix);
void japi_reply_doc(struct sim_req *r, int status, json_t *data);
void japi_no_content(struct sim_req *r);
/* URL of the current request, absolute (self link). */
char *japi_self_url(struct sim_req *r, const char *cursor);

/* Validates a request body {"data":{"type":type,...}}; need_id: PATCH and relationship bodies.
 * Returns the borrowed data object, or NULL after setting a 400 on r. */
json_t *japi_body_data(struct sim_req *r, const char *type, bool need_id);
/* attributes object of data (an empty one is created if missing). */
json_t *japi_attrs(json_t *data);
/* A required non-empty string attribute; NULL after setting a 400. */
const char *japi_req_str(struct sim_req *r, json_t *attrs, const char *name);
/* A linkage {"type":type,"id":..} at data.relationships.<rel>.data; NULL when absent. */
const char *japi_rel_id(json_t *data, const char *rel, const char *type);

/* The object named by the first path parameter, or NULL after a 404. */
struct sim_obj *japi_find(struct sim_req *r, const char *type, const char *what);
/* DELETE by the first path parameter: 204, or 404. */
void japi_delete(struct sim_req *r, const char *type, const char *what);
/* Whether the comma list in query parameter `param` names `word`
 * (additional-fields[template]=definition). */
bool japi_wants(struct sim_req *r, const char *param, const char *word);
/* The private "_" member of a stored document (created when missing). */
json_t *japi_priv(json_t *doc);

json_t *japi_new_doc(const char *type, const char *id);
void japi_touch(json_t *doc, const char *created_key, const char *updated_key, bool create);
json_t *japi_linkage(const char *type, const char *id);
/* Copies the listed keys (comma-separated) that are present in src into dst. */
void japi_copy_keys(json_t *dst, json_t *src, const char *keys);

/* Collection listing with filter, sort and cursor pagination. */
struct japi_list_spec {
    const char *type;
    const char *path_prefix; /* "/api/templates" for self links of items */
    int max_size, default_size;
    const char *filters;  /* "name:equals,contains,any[];id:any[]", NULL: no filter allowed */
    const char *required; /* a field that must be filtered on ("messages.channel"), or NULL */
    const char *required_alt;
    const char *sorts; /* "created,id,name,updated" or NULL */
    bool paginated;
    bool (*visible)(const struct sim_obj *o);
    json_t *(*render)(struct sim_req *r, const struct sim_obj *o);
};
void japi_list(struct sim_req *r, const struct japi_list_spec *spec);

/* ---- auth and rate limits (auth.c) ---- */

/* Authenticates, checks revision and scopes, applies rate limits; false when r holds an
 * error response already. */
bool auth_check(struct sim_req *r);
/* Adds RateLimit-* headers for the request's account and operation. */
void auth_rate_headers(struct sim_req *r);
void auth_reset_counters(void);
struct sim_rl *auth_rl_new(void);

/* ---- handlers ---- */

typedef void (*sim_handler)(struct sim_req *r);
struct sim_route {
    const char *operation_id;
    sim_handler fn;
};
extern const struct sim_route res_core_routes[]; /* accounts, templates, lists, segments, forms */
extern const struct sim_route res_campaign_routes[]; /* campaigns, messages, send jobs, flows */
extern const struct sim_route res_catalog_routes[];  /* catalog items, variants, categories */
extern const struct sim_route res_misc_routes[];     /* tags, coupons, images, webhooks, metrics */
extern const struct sim_route jobs_routes[];         /* catalog bulk and profile import jobs */

/* A copy of a template under a new id; hidden copies (made for campaign messages) stay out of
 * listings and of the template limit. */
struct sim_obj *template_copy(struct sim_account *a, const struct sim_obj *src, bool hidden);

/* One catalog write, shared by the single-object operations and the bulk jobs. */
struct catalog_err {
    char detail[700];
    char pointer[200]; /* relative to the object: "/attributes/title" */
};
/* action: "create", "update" or "delete"; data is one resource object of the request. Returns
 * 0, or 400/404/409 with e filled in. */
int catalog_apply(struct sim_account *a, const char *type, const char *action, json_t *data,
                  struct sim_obj **out, struct catalog_err *e);
const char *catalog_path_prefix(const char *type);

/* Registers a job document (already stored, "_".t0 set) for progress in jobs_tick. */
void jobs_track(struct sim_account *a, const char *type, const char *id);

/* Creates an account's default tag group (every Klaviyo account has one). */
void tags_seed_account(struct sim_account *a);

/* A metric named `name` of the integration (integ_name, category; key and image_url may be
 * NULL: the key is derived from the name), or the one that already exists (*existed). */
struct sim_obj *metric_add(struct sim_account *a, const char *name, const char *integ_name,
                           const char *category, const char *key, const char *image_url,
                           bool *existed);
/* With --shopify-integration: the metrics Klaviyo's Shopify integration creates. */
void metrics_seed_account(struct sim_account *a);

/* Advances asynchronous jobs whose time has come (caller holds the lock). */
void jobs_tick(void);
void jobs_reset(void);

/* ---- admin and faults (admin.c) ---- */

bool admin_handle(struct sim_req *r);
void calls_record(const struct sim_req *r, int status);

#endif
