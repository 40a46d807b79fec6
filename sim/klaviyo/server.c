/*
 * HTTP front of the emulator: libmicrohttpd with a thread per connection, so an injected
 * latency sleeps in its own thread without holding up other requests.
 *
 * Each request is buffered whole (at most SIM_MAX_BODY; beyond that a JSON:API 413), matched
 * against kspec's operation table, faults are applied, then authentication, scopes and rate
 * limits (auth.c), then the handler registered for the operationId. Everything after the
 * latency sleep runs under the one state mutex. Requests under /__sim/ go to admin.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

struct conn_state {
    char *buf;
    size_t len, cap;
    bool too_big;
};

static sim_handler *handler_by_op;

static const struct sim_route *const route_tables[] = {
    res_core_routes, res_campaign_routes, res_catalog_routes, res_misc_routes, jobs_routes,
};

int server_init_routes(void)
{
    handler_by_op = calloc(kspec_ops_count, sizeof *handler_by_op);
    if (!handler_by_op)
        return -1;
    for (size_t t = 0; t < sizeof route_tables / sizeof route_tables[0]; t++) {
        for (const struct sim_route *rt = route_tables[t]; rt->operation_id; rt++) {
            const struct kspec_op *op = kspec_by_id(rt->operation_id);
            if (!op) {
                fprintf(stderr, "cadence-klaviyo-sim: handler for unknown operation %s\n",
                        rt->operation_id);
                return -1;
            }
            handler_by_op[op - kspec_ops] = rt->fn;
        }
    }
    return 0;
}

const char *req_query(struct sim_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *req_header(struct sim_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

void req_add_header(struct sim_req *r, const char *name, const char *value)
{
    if (r->nheaders >= SIM_MAX_HEADERS)
        return;
    snprintf(r->headers[r->nheaders].name, sizeof r->headers[0].name, "%s", name);
    snprintf(r->headers[r->nheaders].value, sizeof r->headers[0].value, "%s", value);
    r->nheaders++;
}

/* Collects the concrete segments that stand where the template has {param}. */
static void extract_params(struct sim_req *r)
{
    const char *t = r->op->path, *p = r->path;
    r->nparams = 0;
    while (*t && *p) {
        t++;
        p++;
        size_t tl = strcspn(t, "/"), pl = strcspn(p, "/");
        if (*t == '{' && r->nparams < SIM_MAX_PARAMS) {
            snprintf(r->params[r->nparams], sizeof r->params[0], "%.*s", (int)pl, p);
            r->nparams++;
        }
        t += tl;
        p += pl;
    }
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void fault_html_403(struct sim_req *r)
{
    static const char page[] =
        "<!DOCTYPE html><html lang=\"en-US\"><head><title>Just a moment...</title></head>"
        "<body><noscript>Enable JavaScript and cookies to continue</noscript></body></html>";
    r->status = 403;
    r->text = strdup(page);
    r->ctype = "text/html; charset=UTF-8";
    req_add_header(r, "cf-mitigated", "challenge");
}

static bool is_create_success(const struct sim_req *r)
{
    return strcmp(r->method, "POST") == 0 &&
           (r->status == 200 || r->status == 201 || r->status == 202);
}

static void process(struct sim_req *r, struct conn_state *cs, bool *drop)
{
    if (cs->too_big) {
        japi_error(r, 413, "request_too_large", "Request entity too large.",
                   "The request body is larger than 10 MB.", NULL, NULL);
        return;
    }
    r->op = kspec_find(r->method, r->path);
    if (!r->op) {
        japi_error(r, 404, "not_found", "Not found.", "The requested path was not found.", NULL,
                   NULL);
        return;
    }
    extract_params(r);
    struct sim_fault_cfg *f = &sim.faults;
    if (f->html_403_rate > 0 && sim_rand_unit() < f->html_403_rate) {
        fault_html_403(r);
        return;
    }
    if (f->error_rate > 0 && sim_rand_unit() < f->error_rate) {
        bool unavailable = sim_rand() & 1;
        japi_error(r, unavailable ? 503 : 500, unavailable ? "service_unavailable" : "error",
                   unavailable ? "Service unavailable." : "A server error occurred.",
                   "The emulator injected a server error.", NULL, NULL);
        return;
    }
    if (strncmp(r->path, "/api/", 5) != 0) {
        japi_error(r, 404, "not_found", "Not found.",
                   "The emulator does not implement the /client endpoints.", NULL, NULL);
        return;
    }
    if (!auth_check(r))
        return;
    sim_handler h = handler_by_op[r->op - kspec_ops];
    if (!h) {
        char d[200];
        snprintf(d, sizeof d, "The emulator does not implement the operation %s.",
                 r->op->operation_id);
        japi_error(r, 404, "not_found", "Not found.", d, NULL, NULL);
        return;
    }
    const char *ct = req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (cs->len && !(ct && strncmp(ct, "multipart/", 10) == 0)) {
        json_error_t jerr;
        r->body = json_loadb(cs->buf, cs->len, 0, &jerr);
    }
    h(r);
    if (f->revoke_after >= 0 && r->key) {
        const char *k = r->key->key;
        size_t kl = strlen(k);
        if (kl >= 4 && strcmp(k + kl - 4, f->revoke_last4) == 0 && --f->revoke_after <= 0) {
            r->key->revoked = true;
            f->revoke_after = -1;
        }
    }
    if (is_create_success(r) && f->drop_after_create_rate > 0 &&
        sim_rand_unit() < f->drop_after_create_rate)
        *drop = true;
}

static enum MHD_Result send_reply(struct sim_req *r)
{
    struct MHD_Response *resp;
    if (r->text) {
        resp = MHD_create_response_from_buffer(strlen(r->text), r->text, MHD_RESPMEM_MUST_FREE);
        r->text = NULL;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
    } else if (r->resp) {
        char *s = json_dumps(r->resp, JSON_COMPACT);
        resp = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                r->ctype ? r->ctype : "application/vnd.api+json");
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    for (int i = 0; i < r->nheaders; i++)
        MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static int pick_latency(void)
{
    int lo = sim.faults.latency_min, hi = sim.faults.latency_max;
    if (hi <= 0)
        return 0;
    if (hi <= lo)
        return lo;
    return lo + (int)(sim_rand() % (uint64_t)(hi - lo + 1));
}

enum MHD_Result server_access(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    struct conn_state *cs = *con_cls;
    if (!cs) {
        cs = calloc(1, sizeof *cs);
        if (!cs)
            return MHD_NO;
        *con_cls = cs;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (cs->too_big || cs->len + n > SIM_MAX_BODY) {
            cs->too_big = true;
            return MHD_YES;
        }
        if (cs->len + n + 1 > cs->cap) {
            size_t cap = (cs->len + n + 1) * 2;
            char *nb = realloc(cs->buf, cap);
            if (!nb)
                return MHD_NO;
            cs->buf = nb;
            cs->cap = cap;
        }
        memcpy(cs->buf + cs->len, upload_data, n);
        cs->len += n;
        cs->buf[cs->len] = 0;
        return MHD_YES;
    }

    struct sim_req r = {0};
    r.conn = conn;
    r.method = method;
    r.path = url;
    r.raw_body = cs->buf;
    r.raw_len = cs->len;
    r.status = 500;
    bool admin = strncmp(url, "/__sim/", 7) == 0 || strcmp(url, "/__sim") == 0;
    if (!admin) {
        pthread_mutex_lock(&sim.lock);
        int delay = pick_latency();
        pthread_mutex_unlock(&sim.lock);
        if (delay > 0)
            sleep_ms(delay);
    }
    bool drop = false;
    pthread_mutex_lock(&sim.lock);
    jobs_tick();
    if (admin) {
        admin_handle(&r);
    } else {
        process(&r, cs, &drop);
        if (r.status != 429 && r.acct && r.op)
            auth_rate_headers(&r);
        calls_record(&r, drop ? 0 : r.status);
    }
    pthread_mutex_unlock(&sim.lock);
    enum MHD_Result ret = drop ? MHD_NO : send_reply(&r);
    json_decref(r.body);
    json_decref(r.resp);
    free(r.text);
    return ret;
}

void server_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct conn_state *cs = *con_cls;
    if (cs) {
        free(cs->buf);
        free(cs);
        *con_cls = NULL;
    }
}
