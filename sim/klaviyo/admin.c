/*
 * The emulator's own API under /__sim/ (JSON, no auth; the server binds loopback only):
 * the call log that tests assert on, object dumps, fault injection, key revocation and reset.
 *
 *   GET    /__sim/calls[?since=N]   {calls:[{seq,method,path,query,status,key_last4,
 *                                    operation_id,ts_ms}], next, counts:{total,throttled,
 *                                    dropped,by_status:{"200":n}}}; since=N lists seq > N
 *   DELETE /__sim/calls             clears the log
 *   GET    /__sim/objects?type=T[&account=ID]   {objects:[{account_id, ...resource}]}
 *   GET    /__sim/accounts, POST /__sim/accounts {"name":..}
 *   GET    /__sim/faults, POST /__sim/faults {latency_ms:[a,b], error_rate, ...} (replaces all;
 *                                    --latency-ms applies unless latency_ms is given)
 *                                    catalog_item_error_rate (0..1): that fraction of the objects
 *                                    of catalog bulk create/update jobs created while it is set
 *                                    fail with a per-item error (400 invalid, "'title' is too
 *                                    long.", or 'name' for categories) and are not written; the
 *                                    draw hashes --seed, the job id and the index (deterministic)
 *   POST   /__sim/metrics {account_id?, name, integration?:{name, category, key?, image_url?}}
 *                                    201 {data: metric resource as GET /api/metrics/{id} renders
 *                                    it}; 200 with the existing one when the account already has
 *                                    that name for that integration. account_id defaults to the
 *                                    first account; integration to {name:"API",category:"API"};
 *                                    key to the lowercased name. Accounts start with no metrics
 *                                    (--shopify-integration: Shopify's four)
 *   POST   /__sim/keys/revoke {"key"}, POST /__sim/keys/add {account_id,key,scopes}
 *   POST   /__sim/reset                 objects, jobs, calls, faults, counters and keys back to
 *                                       the command line's state
 *   GET    /__sim/clock                 {now_ms, time_scale}: the emulated clock whose multiples
 *                                       of 1 s, 60 s and 1 day are the rate-limit window edges
 *                                       (benchmarks compute their lower bound from it)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "sim.h"

static void query_of(struct sim_req *r, char **out)
{
    char *self = japi_self_url(r, NULL);
    const char *q = strchr(self, '?');
    *out = strdup(q ? q + 1 : "");
    free(self);
    if (!*out)
        abort();
}

void calls_record(const struct sim_req *r, int status)
{
    if (sim.ncalls == sim.calls_cap) {
        sim.calls_cap = sim.calls_cap ? sim.calls_cap * 2 : 256;
        sim.calls = realloc(sim.calls, sim.calls_cap * sizeof *sim.calls);
        if (!sim.calls)
            abort();
    }
    struct sim_call *c = &sim.calls[sim.ncalls++];
    memset(c, 0, sizeof *c);
    c->seq = ++sim.call_seq;
    snprintf(c->method, sizeof c->method, "%s", r->method);
    c->path = strdup(r->path);
    query_of((struct sim_req *)r, &c->query);
    c->status = status;
    c->ts_ms = time_now_ms();
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    if (h && strlen(h) >= 4)
        snprintf(c->key_last4, sizeof c->key_last4, "%s", h + strlen(h) - 4);
    if (r->op)
        snprintf(c->operation_id, sizeof c->operation_id, "%s", r->op->operation_id);
    if (!c->path)
        abort();
}

static void calls_clear(void)
{
    for (size_t i = 0; i < sim.ncalls; i++) {
        free(sim.calls[i].path);
        free(sim.calls[i].query);
    }
    sim.ncalls = 0;
}

static void reply(struct sim_req *r, int status, json_t *body)
{
    r->status = status;
    r->resp = body;
    r->ctype = "application/json";
}

static void admin_error(struct sim_req *r, int status, const char *msg)
{
    reply(r, status, json_pack("{s:s}", "error", msg));
}

static void get_calls(struct sim_req *r)
{
    const char *since_s = req_query(r, "since");
    uint64_t since = since_s ? strtoull(since_s, NULL, 10) : 0;
    json_t *calls = json_array(), *by_status = json_object();
    long throttled = 0, dropped = 0;
    for (size_t i = 0; i < sim.ncalls; i++) {
        struct sim_call *c = &sim.calls[i];
        char st[8];
        snprintf(st, sizeof st, "%d", c->status);
        json_t *n = json_object_get(by_status, st);
        json_object_set_new(by_status, st, json_integer(n ? json_integer_value(n) + 1 : 1));
        throttled += c->status == 429;
        dropped += c->status == 0;
        if (c->seq <= since)
            continue;
        json_array_append_new(calls, json_pack("{s:I,s:s,s:s,s:s,s:i,s:s,s:s,s:I}", "seq",
                                               (json_int_t)c->seq, "method", c->method, "path",
                                               c->path, "query", c->query, "status", c->status,
                                               "key_last4", c->key_last4, "operation_id",
                                               c->operation_id, "ts_ms", (json_int_t)c->ts_ms));
    }
    reply(r, 200,
          json_pack("{s:o,s:I,s:{s:I,s:I,s:I,s:o}}", "calls", calls, "next",
                    (json_int_t)sim.call_seq, "counts", "total", (json_int_t)sim.ncalls,
                    "throttled", (json_int_t)throttled, "dropped", (json_int_t)dropped, "by_status",
                    by_status));
}

static void get_objects(struct sim_req *r)
{
    const char *type = req_query(r, "type");
    const char *acct = req_query(r, "account");
    if (!type) {
        admin_error(r, 400, "the query parameter 'type' is required");
        return;
    }
    json_t *out = json_array();
    for (size_t i = 0; i < sim.naccounts; i++) {
        struct sim_account *a = sim.accounts[i];
        if (acct && strcmp(acct, a->id) != 0)
            continue;
        struct sim_table *t = store_table(a, type);
        for (size_t j = 0; j < t->n; j++) {
            if (t->items[j]->deleted)
                continue;
            json_t *d = json_deep_copy(t->items[j]->doc);
            json_object_set_new(d, "account_id", json_string(a->id));
            json_array_append_new(out, d);
        }
    }
    reply(r, 200,
          json_pack("{s:o,s:I}", "objects", out, "count", (json_int_t)json_array_size(out)));
}

static json_t *accounts_json(void)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < sim.naccounts; i++) {
        struct sim_account *a = sim.accounts[i];
        json_t *keys = json_array();
        for (size_t k = 0; k < sim.nkeys; k++) {
            struct sim_key *key = sim.keys[k];
            if (key->acct != a)
                continue;
            size_t kl = strlen(key->key);
            json_array_append_new(keys, json_pack("{s:s,s:s,s:b}", "key_last4",
                                                  key->key + (kl > 4 ? kl - 4 : 0), "scopes",
                                                  key->scopes, "revoked", key->revoked));
        }
        json_array_append_new(
            arr, json_pack("{s:s,s:s,s:o}", "id", a->id, "name", a->org_name, "keys", keys));
    }
    return arr;
}

static json_t *faults_json(void)
{
    struct sim_fault_cfg *f = &sim.faults;
    json_t *o =
        json_pack("{s:[i,i],s:f,s:f,s:f,s:f}", "latency_ms", f->latency_min, f->latency_max,
                  "error_rate", f->error_rate, "drop_after_create_rate", f->drop_after_create_rate,
                  "html_403_rate", f->html_403_rate, "foreign_usage", f->foreign_usage);
    json_object_set_new(o, "catalog_item_error_rate", json_real(f->catalog_item_error_rate));
    if (f->revoke_after >= 0)
        json_object_set_new(o, "revoke_key_after",
                            json_pack("{s:s,s:I}", "key_last4", f->revoke_last4, "calls",
                                      (json_int_t)f->revoke_after));
    return o;
}

static bool rate_field(json_t *body, const char *name, double *out)
{
    json_t *v = json_object_get(body, name);
    if (!v)
        return true;
    if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1)
        return false;
    *out = json_number_value(v);
    return true;
}

static void post_faults(struct sim_req *r, json_t *body)
{
    struct sim_fault_cfg f = {0};
    f.revoke_after = -1;
    /* --latency-ms stays in force unless the body names a latency of its own. */
    f.latency_min = sim.cli_faults.latency_min;
    f.latency_max = sim.cli_faults.latency_max;
    json_t *lat = json_object_get(body, "latency_ms");
    if (lat) {
        if (json_is_integer(lat)) {
            f.latency_min = f.latency_max = (int)json_integer_value(lat);
        } else if (json_is_array(lat) && json_array_size(lat) == 2 &&
                   json_is_integer(json_array_get(lat, 0)) &&
                   json_is_integer(json_array_get(lat, 1))) {
            f.latency_min = (int)json_integer_value(json_array_get(lat, 0));
            f.latency_max = (int)json_integer_value(json_array_get(lat, 1));
        } else {
            {
                admin_error(r, 400, "latency_ms must be [min,max] in ms");
                return;
            }
        }
        if (f.latency_min < 0 || f.latency_max < f.latency_min || f.latency_max > 600000) {
            admin_error(r, 400, "latency_ms must be 0 <= min <= max <= 600000");
            return;
        }
    }
    if (!rate_field(body, "error_rate", &f.error_rate) ||
        !rate_field(body, "drop_after_create_rate", &f.drop_after_create_rate) ||
        !rate_field(body, "html_403_rate", &f.html_403_rate) ||
        !rate_field(body, "foreign_usage", &f.foreign_usage) ||
        !rate_field(body, "catalog_item_error_rate", &f.catalog_item_error_rate)) {
        admin_error(r, 400, "rates must be numbers between 0 and 1");
        return;
    }
    json_t *rk = json_object_get(body, "revoke_key_after");
    if (rk) {
        const char *l4 = json_string_value(json_object_get(rk, "key_last4"));
        json_t *calls = json_object_get(rk, "calls");
        if (!l4 || strlen(l4) != 4 || !json_is_integer(calls) || json_integer_value(calls) < 0) {
            admin_error(r, 400, "revoke_key_after needs key_last4 (4 chars) and calls");
            return;
        }
        snprintf(f.revoke_last4, sizeof f.revoke_last4, "%s", l4);
        f.revoke_after = (long)json_integer_value(calls);
        if (f.revoke_after == 0) {
            for (size_t i = 0; i < sim.nkeys; i++) {
                size_t kl = strlen(sim.keys[i]->key);
                if (kl >= 4 && strcmp(sim.keys[i]->key + kl - 4, l4) == 0)
                    sim.keys[i]->revoked = true;
            }
            f.revoke_after = -1;
        }
    }
    sim.faults = f;
    reply(r, 200, faults_json());
}

static const char *opt_str(json_t *o, const char *name, bool *bad)
{
    json_t *v = json_object_get(o, name);
    if (v && (!json_is_string(v) || !*json_string_value(v)))
        *bad = true;
    return json_string_value(v);
}

static void post_metric(struct sim_req *r, json_t *body)
{
    const char *acct = json_string_value(json_object_get(body, "account_id"));
    struct sim_account *a = acct ? sim_account_find(acct) : sim.naccounts ? sim.accounts[0] : NULL;
    if (!a || (json_object_get(body, "account_id") && !acct)) {
        admin_error(r, 400, "account_id must name an existing account");
        return;
    }
    bool bad = false;
    const char *name = opt_str(body, "name", &bad);
    json_t *in = json_object_get(body, "integration");
    if (in && !json_is_object(in))
        bad = true;
    const char *iname = opt_str(in, "name", &bad), *cat = opt_str(in, "category", &bad);
    const char *key = opt_str(in, "key", &bad), *img = opt_str(in, "image_url", &bad);
    if (!name || bad) {
        admin_error(r, 400,
                    "name (a non-empty string) is required; integration is an object of "
                    "non-empty strings name, category, key, image_url");
        return;
    }
    bool existed;
    struct sim_obj *o =
        metric_add(a, name, iname ? iname : "API", cat ? cat : "API", key, img, &existed);
    reply(r, existed ? 200 : 201, json_pack("{s:o}", "data", japi_render(r, o, "/api/metrics")));
}

static void reset_all(void)
{
    for (size_t i = 0; i < sim.naccounts; i++) {
        store_clear(sim.accounts[i]);
        sim.accounts[i]->next_image_id = 1;
        sim.accounts[i]->next_action_id = 10000001;
        tags_seed_account(sim.accounts[i]);
        metrics_seed_account(sim.accounts[i]);
    }
    size_t w = 0;
    for (size_t i = 0; i < sim.nkeys; i++) {
        if (sim.keys[i]->from_cli) {
            sim.keys[i]->revoked = false;
            sim.keys[w++] = sim.keys[i];
        } else {
            free(sim.keys[i]->key);
            free(sim.keys[i]->scopes);
            free(sim.keys[i]);
        }
    }
    sim.nkeys = w;
    jobs_reset();
    calls_clear();
    auth_reset_counters();
    sim.faults = sim.cli_faults;
}

bool admin_handle(struct sim_req *r)
{
    const char *p = r->path + 6; /* after "/__sim" */
    bool get = strcmp(r->method, "GET") == 0, post = strcmp(r->method, "POST") == 0;
    json_t *body = NULL;
    if (post && r->raw_len) {
        body = json_loadb(r->raw_body, r->raw_len, 0, NULL);
        if (!json_is_object(body)) {
            json_decref(body);
            admin_error(r, 400, "the body must be a JSON object");
            return true;
        }
    }
    if (strcmp(p, "/calls") == 0 && get)
        get_calls(r);
    else if (strcmp(p, "/calls") == 0 && strcmp(r->method, "DELETE") == 0) {
        calls_clear();
        reply(r, 200, json_pack("{s:b}", "ok", 1));
    } else if (strcmp(p, "/objects") == 0 && get)
        get_objects(r);
    else if (strcmp(p, "/accounts") == 0 && get)
        reply(r, 200, json_pack("{s:o}", "accounts", accounts_json()));
    else if (strcmp(p, "/accounts") == 0 && post) {
        const char *name = json_string_value(json_object_get(body, "name"));
        if (!name || !*name)
            admin_error(r, 400, "name is required");
        else {
            struct sim_account *a = sim_account_new(name);
            reply(r, 201, json_pack("{s:s,s:s}", "id", a->id, "name", a->org_name));
        }
    } else if (strcmp(p, "/faults") == 0 && get)
        reply(r, 200, faults_json());
    else if (strcmp(p, "/faults") == 0 && post)
        post_faults(r, body ? body : json_object());
    else if (strcmp(p, "/keys/revoke") == 0 && post) {
        const char *key = json_string_value(json_object_get(body, "key"));
        struct sim_key *k = key ? sim_key_find(key) : NULL;
        if (!k)
            admin_error(r, 404, "no such key");
        else {
            k->revoked = true;
            reply(r, 200, json_pack("{s:b}", "revoked", 1));
        }
    } else if (strcmp(p, "/keys/add") == 0 && post) {
        const char *acct = json_string_value(json_object_get(body, "account_id"));
        const char *key = json_string_value(json_object_get(body, "key"));
        json_t *sc = json_object_get(body, "scopes");
        struct sim_account *a = acct ? sim_account_find(acct) : NULL;
        if (!a || !key || !*key)
            admin_error(r, 400, "account_id (an existing account) and key are required");
        else if (sim_key_find(key) && sim_key_find(key)->acct != a)
            admin_error(r, 409, "the key belongs to another account");
        else {
            char scopes[2048] = "all";
            if (json_is_string(sc)) {
                snprintf(scopes, sizeof scopes, "%s", json_string_value(sc));
            } else if (json_is_array(sc)) {
                scopes[0] = 0;
                for (size_t i = 0; i < json_array_size(sc); i++) {
                    const char *s = json_string_value(json_array_get(sc, i));
                    if (s)
                        snprintf(scopes + strlen(scopes), sizeof scopes - strlen(scopes), "%s%s",
                                 i ? "," : "", s);
                }
            }
            sim_key_add(a, key, scopes, false);
            reply(r, 201, json_pack("{s:s,s:s}", "account_id", a->id, "scopes", scopes));
        }
    } else if (strcmp(p, "/metrics") == 0 && post) {
        post_metric(r, body);
    } else if (strcmp(p, "/clock") == 0 && get) {
        reply(r, 200,
              json_pack("{s:I,s:f}", "now_ms", (json_int_t)sim_clock_ms(), "time_scale",
                        sim.time_scale));
    } else if (strcmp(p, "/reset") == 0 && post) {
        reset_all();
        reply(r, 200, json_pack("{s:b}", "ok", 1));
    } else
        admin_error(r, 404, "no such admin endpoint");
    json_decref(body);
    return true;
}
