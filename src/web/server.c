/*
 * The HTTP server: libmicrohttpd (Debian's libmicrohttpd12, 0.9.75) with a thread pool, so the
 * process has a fixed number of workers and no per-connection threads, and the library handles
 * HTTP parsing, keep-alive and timeouts. Chosen over a hand-written server (HTTP parsing is exactly
 * the untrusted-bytes code not to write again) and over heavier stacks (one C library, in Debian,
 * no event loop of our own).
 *
 * A request goes through one path: route (the table below) -> body collected up to body_max (413
 * beyond it, decided from Content-Length before reading when possible) -> for token routes the
 * onboarding link is resolved (404 for anything but a live link) -> for forms the body is parsed
 * (400) and its CSRF token checked (403) -> the handler -> security headers -> the response. Only
 * then does a handler touch stored data, so a rejected request changes nothing.
 *
 * Console routes (/admin) go the same way, with the session resolved by admin_gate() instead of a
 * link and CSRF tokens bound to the session (the login form's to a pre-login cookie).
 *
 * Request bodies are wiped in libmicrohttpd's own read buffer as soon as they are copied out: a
 * body may hold a Klaviyo key or a password, and the copy we keep is wiped when freed.
 *
 * Logs name the route, never the path: the path of an onboarding page is its token. Each worker
 * thread opens its own store and vault on first use (pthread key; closed when the thread ends).
 * Shutdown: SIGTERM/SIGINT are taken by sigwait() in the main thread; the daemon is quiesced (no
 * new connections), in-flight requests get up to drain_s to finish, then the daemon stops.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "common/embed.h"
#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "web/admin_plan.h"
#include "web/web_internal.h"

extern const struct cad_embedded web_assets[];

#define CSP                                                                                        \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

struct web_server {
    struct web_config cfg;
    char db_path[4096];
    cad_secret *key;
    web_throttle *verify_throttle;
    struct web_verify_limits limits;
    struct console_config console;
    char public_url[512];
    pthread_key_t tls;
    pthread_mutex_t mu;
    pthread_cond_t idle;
    int inflight;
};

/* Per-connection request state, from the first callback to MHD's completion notice. */
struct conn {
    struct wbuf body;
    size_t received;
    bool too_large;
    bool counted;
    int64_t start_ms;
};

struct thread_handles {
    store *st;
    vault *v;
};

static void root_get(struct web_req *r);
static void healthz_get(struct web_req *r);
static void metrics_get(struct web_req *r);
static void asset_get(struct web_req *r);

static const struct web_route routes[] = {
    {"GET", "/", "root", root_get, 0},
    {"GET", "/healthz", "healthz", healthz_get, 0},
    {"GET", "/metrics", "metrics", metrics_get, 0},
    {"GET", "/assets/:name", "asset", asset_get, 0},
    {"GET", "/help/klaviyo", "help_klaviyo", help_klaviyo_get, 0},
    {"GET", "/onboard/:token", "onboard", onboard_get, ROUTE_TOKEN},
    {"GET", "/onboard/:token/:step", "onboard_step", onboard_step_get, ROUTE_TOKEN},
    {"POST", "/onboard/:token/details", "onboard_details", onboard_details_post,
     ROUTE_TOKEN | ROUTE_BODY},
    {"POST", "/onboard/:token/verify", "onboard_verify", onboard_verify_post,
     ROUTE_TOKEN | ROUTE_BODY},
    {"POST", "/onboard/:token/skip", "onboard_skip", onboard_skip_post, ROUTE_TOKEN | ROUTE_BODY},
    {"POST", "/onboard/:token/connect/:provider", "onboard_connect", onboard_connect_post,
     ROUTE_TOKEN | ROUTE_BODY},
    {"POST", "/onboard/:token/extras", "onboard_extras", onboard_extras_post,
     ROUTE_TOKEN | ROUTE_BODY},
    {"GET", "/admin/login", "admin_login", admin_login_get, 0},
    {"POST", "/admin/login", "admin_login", admin_login_post, ROUTE_LOGIN | ROUTE_BODY},
    {"POST", "/admin/logout", "admin_logout", admin_logout_post, ROUTE_ADMIN | ROUTE_BODY},
    {"GET", "/admin", "admin_tenants", admin_tenants_get, ROUTE_ADMIN},
    {"GET", "/admin/tenants/:id", "admin_tenant", admin_tenant_get, ROUTE_ADMIN},
    {"POST", "/admin/tenants/:id/link", "admin_tenant_link", admin_tenant_link_post,
     ROUTE_ADMIN | ROUTE_BODY},
    {"POST", "/admin/tenants/:id/paid", "admin_tenant_paid", admin_tenant_paid_post,
     ROUTE_ADMIN | ROUTE_ADMIN_ONLY | ROUTE_BODY},
    {"POST", "/admin/tenants/:id/reverify", "admin_tenant_reverify", admin_tenant_reverify_post,
     ROUTE_ADMIN | ROUTE_BODY},
    {"GET", "/admin/waiting", "admin_waiting", admin_waiting_get, ROUTE_ADMIN},
    {"GET", "/admin/operators", "admin_operators", admin_operators_get,
     ROUTE_ADMIN | ROUTE_ADMIN_ONLY},
    {"POST", "/admin/operators", "admin_operators", admin_operators_post,
     ROUTE_ADMIN | ROUTE_ADMIN_ONLY | ROUTE_BODY},
    {"GET", "/admin/audit", "admin_audit", admin_audit_get, ROUTE_ADMIN},
    {"GET", "/admin/audit.csv", "admin_audit_csv", admin_audit_csv_get, ROUTE_ADMIN},
    {"POST", "/admin/audit/verify", "admin_audit_verify", admin_audit_verify_post,
     ROUTE_ADMIN | ROUTE_BODY},
    {"GET", "/admin/plans", "admin_plans", admin_plans_get, ROUTE_ADMIN},
    {"GET", "/admin/plans/:id", "admin_plan", admin_plan_get, ROUTE_ADMIN},
    {"GET", "/admin/plans/:id/progress.json", "admin_plan_progress", admin_plan_progress_get,
     ROUTE_ADMIN},
    {"POST", "/admin/plans/:id/confirm", "admin_plan_confirm", admin_plan_confirm_post,
     ROUTE_ADMIN | ROUTE_BODY},
    {"POST", "/admin/plans/:id/cancel", "admin_plan_cancel", admin_plan_cancel_post,
     ROUTE_ADMIN | ROUTE_BODY},
    {"POST", "/admin/plans/:id/campaigns/:name/prepare", "admin_campaign_prepare",
     admin_campaign_prepare_post, ROUTE_ADMIN | ROUTE_BODY},
    {"POST", "/admin/plans/:id/campaigns/:name/send", "admin_campaign_send",
     admin_campaign_send_post, ROUTE_ADMIN | ROUTE_BODY},
};

const cad_secret *web_server_key(const struct web_server *srv)
{
    return srv->key;
}

worker_pool *web_server_workers(const struct web_server *srv)
{
    return srv->cfg.workers;
}

const struct console_config *web_console_config(const struct web_server *srv)
{
    return &srv->console;
}

const char *web_server_public_url(const struct web_server *srv)
{
    return srv->public_url;
}

const char *web_req_query(const struct web_req *r, const char *name)
{
    return r->conn ? MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name) : NULL;
}

const char *web_req_cookie(const struct web_req *r, const char *name)
{
    return r->conn ? MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, name) : NULL;
}

void web_req_set_cookie(struct web_req *r, const char *name, const char *value, int64_t max_age_s)
{
    for (size_t i = 0; i < CAD_ARRAY_LEN(r->set_cookie); i++) {
        if (r->set_cookie[i][0])
            continue;
        char age[40] = "";
        if (max_age_s >= 0)
            snprintf(age, sizeof age, "; Max-Age=%lld", (long long)max_age_s);
        snprintf(r->set_cookie[i], sizeof r->set_cookie[i],
                 "%s=%s; Path=/admin; HttpOnly; SameSite=Strict%s%s", name, value, age,
                 r->srv->console.secure ? "; Secure" : "");
        return;
    }
}

web_throttle *web_verify_throttle(const struct web_server *srv, struct web_verify_limits *limits)
{
    *limits = srv->limits;
    return srv->verify_throttle;
}

/* ---- per-thread store and vault ---- */

static void thread_handles_free(void *p)
{
    struct thread_handles *h = p;
    vault_close(h->v);
    store_close(h->st);
    free(h);
}

static struct thread_handles *thread_handles(struct web_server *srv)
{
    struct thread_handles *h = pthread_getspecific(srv->tls);
    if (!h) {
        h = calloc(1, sizeof *h);
        if (!h || pthread_setspecific(srv->tls, h) != 0) {
            free(h);
            return NULL;
        }
    }
    return h;
}

static store *thread_store(struct web_server *srv)
{
    struct thread_handles *h = thread_handles(srv);
    if (!h)
        return NULL;
    if (!h->st && store_open(&h->st, srv->db_path) != CAD_OK) {
        cad_log(LOG_ERROR, "web.store", "error=\"%s\"", cad_errmsg());
        h->st = NULL;
    }
    return h->st;
}

vault *web_req_vault(struct web_req *r)
{
    struct thread_handles *h = thread_handles(r->srv);
    if (h && h->st && !h->v && vault_open(&h->v, h->st, r->srv->cfg.data_dir, 0) != CAD_OK) {
        cad_log(LOG_ERROR, "web.vault", "error=\"%s\"", cad_errmsg());
        h->v = NULL;
    }
    r->v = h ? h->v : NULL;
    if (!r->v)
        page_message(
            r, 503, "Temporarily unavailable",
            "Cadence cannot reach its key vault right now. Nothing was changed; please try "
            "again in a few minutes.");
    return r->v;
}

/* ---- small routes ---- */

static void root_get(struct web_req *r)
{
    page_begin(r, "Cadence");
    wbuf_fmt(&r->out,
             "<h1>Cadence</h1><p class=\"lead\">Setting up your Klaviyo account with your "
             "agency? Open the personal onboarding link your agency sent you.</p>"
             "<p><a href=\"/help/klaviyo\">How to create a Klaviyo private API key</a></p>");
    page_end(r);
}

static int one_row(void *ctx, const store_row *row)
{
    (void)row;
    *(int *)ctx = 1;
    return 0;
}

static void healthz_get(struct web_req *r)
{
    int seen = 0;
    r->content_type = "text/plain; charset=utf-8";
    if (r->st && store_query(r->st, "SELECT 1", SV_NONE, one_row, &seen) == CAD_OK && seen) {
        r->status = 200;
        wbuf_puts(&r->out, "ok\n");
    } else {
        r->status = 503;
        wbuf_puts(&r->out, "store unavailable\n");
    }
}

static void metrics_get(struct web_req *r)
{
    char *text = NULL;
    size_t len = 0;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    if (metrics_render(&text, &len) != CAD_OK) {
        r->status = 500;
        wbuf_puts(&r->out, "metrics unavailable\n");
        return;
    }
    r->status = 200;
    wbuf_put(&r->out, text, len);
    free(text);
    web_metrics_gauges(r->st, &r->out);
}

static void asset_get(struct web_req *r)
{
    const char *name = route_param(&r->params, "name");
    const struct cad_embedded *a = name ? cad_embedded_find(web_assets, name) : NULL;
    const char *dot = a ? strrchr(a->name, '.') : NULL;
    const char *type = !dot                       ? NULL
                       : strcmp(dot, ".css") == 0 ? "text/css; charset=utf-8"
                       : strcmp(dot, ".js") == 0  ? "text/javascript; charset=utf-8"
                       : strcmp(dot, ".svg") == 0 ? "image/svg+xml"
                                                  : NULL;
    if (!type) {
        page_message(r, 404, "Not found", "There is no such file.");
        return;
    }
    r->status = 200;
    r->content_type = type;
    r->cache = "public, max-age=3600";
    wbuf_put(&r->out, a->data, a->len);
}

/* ---- the request path ---- */

/* MHD's own messages may quote a request line, which holds a token on onboarding pages: any run
 * of token characters as long as a token is masked before logging. */
static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t run = 0;
    for (size_t i = 0;; i++) {
        char c = msg[i];
        bool tokch = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_';
        if (tokch) {
            run++;
            continue;
        }
        if (run >= 32)
            memset(msg + i - run, '*', run);
        run = 0;
        if (!c)
            break;
    }
    msg[strcspn(msg, "\r\n")] = 0;
    cad_log(LOG_WARN, "web.mhd", "message=\"%s\"", msg);
}

static void client_address(struct MHD_Connection *c, char *out, size_t size)
{
    snprintf(out, size, "unknown");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)size);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)size);
}

static void add_headers(struct MHD_Response *resp, const struct web_req *r, bool token_page)
{
    for (size_t i = 0; i < CAD_ARRAY_LEN(r->set_cookie); i++)
        if (r->set_cookie[i][0])
            MHD_add_response_header(resp, "Set-Cookie", r->set_cookie[i]);
    if (r->disposition)
        MHD_add_response_header(resp, "Content-Disposition", r->disposition);
    MHD_add_response_header(resp, "Content-Type",
                            r->content_type ? r->content_type : "text/html; charset=utf-8");
    MHD_add_response_header(resp, "Content-Security-Policy", CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(resp, "Cache-Control", token_page || !r->cache ? "no-store" : r->cache);
    if (r->location)
        MHD_add_response_header(resp, "Location", r->location);
    if (r->retry_after_s > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", r->retry_after_s);
        MHD_add_response_header(resp, "Retry-After", v);
    }
}

static enum MHD_Result respond(struct MHD_Connection *c, struct web_req *r, struct conn *cs,
                               const char *route_name, bool close_conn)
{
    if (!r->status)
        r->status = 500;
    if (r->out.failed) {
        wbuf_free(&r->out);
        r->out.failed = false;
        r->status = 500;
        r->content_type = "text/plain; charset=utf-8";
        wbuf_puts(&r->out, "out of memory\n");
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r->out.len, r->out.data ? r->out.data : (void *)"", MHD_RESPMEM_MUST_COPY);
    wbuf_free(&r->out);
    if (!resp)
        return MHD_NO;
    add_headers(resp, r, r->route && (r->route->flags & (ROUTE_TOKEN | ROUTE_ADMIN | ROUTE_LOGIN)));
    if (close_conn)
        MHD_add_response_header(resp, "Connection", "close");
    if (r->allow)
        MHD_add_response_header(resp, "Allow", r->allow);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);

    char status[8];
    snprintf(status, sizeof status, "%d", r->status);
    const char *labels[] = {"route", route_name, "status", status};
    metrics_counter_add("http_requests_total", "HTTP requests by route and status code", labels, 2,
                        1);
    int64_t ms = time_mono_ms() - cs->start_ms;
    if (r->link.hash12[0])
        cad_log(LOG_INFO, "http.request", "method=%s route=%s status=%d ms=%" PRId64 " link=%s",
                r->method, route_name, r->status, ms, r->link.hash12);
    else
        cad_log(LOG_INFO, "http.request", "method=%s route=%s status=%d ms=%" PRId64, r->method,
                route_name, r->status, ms);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct web_server *srv = cls;
    struct conn *cs = *con_cls;
    struct web_req r = {.srv = srv, .method = method, .path = url, .conn = c};
    char allow[64];
    enum route_match m = router_match(routes, CAD_ARRAY_LEN(routes), method, url, &r.route,
                                      &r.params, allow, sizeof allow);

    if (!cs) {
        cs = calloc(1, sizeof *cs);
        if (!cs)
            return MHD_NO;
        cs->start_ms = time_mono_ms();
        *con_cls = cs;
        pthread_mutex_lock(&srv->mu);
        srv->inflight++;
        cs->counted = true;
        pthread_mutex_unlock(&srv->mu);
        if (m == ROUTE_FOUND && (r.route->flags & ROUTE_BODY)) {
            const char *cl =
                MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
            if (cl && strtoull(cl, NULL, 10) > srv->cfg.body_max) {
                page_message(&r, 413, "Too much data",
                             "That request was larger than this page ever sends. Nothing was "
                             "changed; please go back and try again.");
                return respond(c, &r, cs, r.route->name, true);
            }
        }
        return MHD_YES; /* answered on a later call, with the same code path for every route */
    }

    if (*upload_data_size) {
        /* Bodies are counted for every route and kept only for form routes. Past the limit the
         * rest is read and dropped so the client gets its 413; a sender that keeps going long
         * after that (a chunked body has no Content-Length to refuse up front) is cut off. */
        cs->received += *upload_data_size;
        if (cs->received > srv->cfg.body_max && !cs->too_large) {
            cs->too_large = true;
            wbuf_free(&cs->body);
        }
        if (cs->received > 4 * srv->cfg.body_max)
            return MHD_NO;
        if (!cs->too_large && m == ROUTE_FOUND && (r.route->flags & ROUTE_BODY))
            wbuf_put(&cs->body, upload_data, *upload_data_size);
        /* The bytes may be a key or a password: none stays behind in MHD's read buffer. */
        OPENSSL_cleanse((void *)upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }

    const char *route_name = m == ROUTE_FOUND        ? r.route->name
                             : m == ROUTE_BAD_METHOD ? "method_not_allowed"
                                                     : "not_found";
    char client[INET6_ADDRSTRLEN + 1];
    client_address(c, client, sizeof client);
    r.client = client;

    if (m == ROUTE_NO_PATH) {
        page_message(&r, 404, "Page not found", "There is no page at this address.");
        return respond(c, &r, cs, route_name, false);
    }
    if (m == ROUTE_BAD_METHOD) {
        page_message(&r, 405, "Not allowed", "This page cannot be used that way.");
        r.allow = allow;
        return respond(c, &r, cs, route_name, false);
    }
    if (cs->too_large || (r.route->flags & ROUTE_BODY && cs->body.failed)) {
        page_message(&r, 413, "Too much data",
                     "That request was larger than this page ever sends. Nothing was changed; "
                     "please go back and try again.");
        return respond(c, &r, cs, route_name, true);
    }

    r.st = thread_store(srv);
    if (r.route->flags & ROUTE_TOKEN) {
        if (!r.st) {
            page_message(&r, 503, "Temporarily unavailable",
                         "Cadence cannot reach its database right now. Please try again in a few "
                         "minutes.");
            return respond(c, &r, cs, route_name, false);
        }
        int rc =
            onboard_link_resolve(r.st, route_param(&r.params, "token"), time_now_ms(), &r.link);
        if (rc) {
            if (rc != CAD_ENOTFOUND)
                cad_log(LOG_ERROR, "web.link", "error=\"%s\"", cad_errmsg());
            page_message(&r, rc == CAD_ENOTFOUND ? 404 : 503,
                         rc == CAD_ENOTFOUND ? "This link does not work"
                                             : "Temporarily unavailable",
                         rc == CAD_ENOTFOUND
                             ? "This onboarding link is not valid. It may have expired or been "
                               "replaced by a newer one. Ask your agency to send you a fresh link."
                             : "Please try again in a few minutes.");
            return respond(c, &r, cs, route_name, false);
        }
    }
    if (r.route->flags & (ROUTE_ADMIN | ROUTE_LOGIN) && !r.st) {
        page_message(&r, 503, "Temporarily unavailable",
                     "Cadence cannot reach its database right now. Please try again in a few "
                     "minutes.");
        return respond(c, &r, cs, route_name, false);
    }
    if (r.route->flags & ROUTE_BODY) {
        const char *ct =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        size_t ctlen = strlen("application/x-www-form-urlencoded");
        if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", ctlen) != 0 ||
            (ct[ctlen] && ct[ctlen] != ';' && ct[ctlen] != ' ')) {
            page_message(&r, 415, "Unsupported form",
                         "This page only accepts its own forms. Nothing was changed.");
            return respond(c, &r, cs, route_name, false);
        }
        r.body = cs->body.data ? cs->body.data : "";
        r.body_len = cs->body.len;
        if (web_form_parse(r.body, r.body_len, &r.form) != CAD_OK) {
            page_message(&r, 400, "Unreadable form",
                         "The form could not be read. Nothing was changed; please go back, reload "
                         "the page and try again.");
            wbuf_free(&cs->body);
            return respond(c, &r, cs, route_name, false);
        }
        bool csrf_ok = r.route->flags & ROUTE_TOKEN
                           ? web_csrf_check(srv->key, r.link.hash, web_form_get(&r.form, "csrf"))
                       : r.route->flags & ROUTE_LOGIN ? admin_login_csrf_ok(&r)
                                                      : true; /* console: admin_gate() checks */
        if (!csrf_ok) {
            web_form_free(&r.form);
            wbuf_free(&cs->body);
            page_message(&r, 403, "This form has expired",
                         "For your security this form can only be sent from its own page. Nothing "
                         "was changed; please reload the page and try again.");
            return respond(c, &r, cs, route_name, false);
        }
    }
    if (!(r.route->flags & ROUTE_ADMIN) || admin_gate(&r))
        r.route->fn(&r);
    web_form_free(&r.form);
    wbuf_free(&cs->body);
    return respond(c, &r, cs, route_name, false);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    struct web_server *srv = cls;
    struct conn *cs = *con_cls;
    if (!cs)
        return;
    wbuf_free(&cs->body);
    if (cs->counted) {
        pthread_mutex_lock(&srv->mu);
        if (--srv->inflight == 0)
            pthread_cond_broadcast(&srv->idle);
        pthread_mutex_unlock(&srv->mu);
    }
    free(cs);
    *con_cls = NULL;
}

/* ---- start and stop ---- */

void web_config_defaults(struct web_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->data_dir = "./cadence-data";
    cfg->listen = "127.0.0.1:8080";
    cfg->threads = 4;
    cfg->max_conns = 256;
    cfg->timeout_s = 30;
    cfg->body_max = (size_t)64 * 1024;
    cfg->drain_s = 30;
}

/* "HOST:PORT" or "[V6]:PORT" into a socket address. */
static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len, bool *v6)
{
    char host[256];
    const char *port;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof host)
            goto bad;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = 0;
        port = end + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof host || colon == s)
            goto bad;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = 0;
        port = colon + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 0 || p > 65535)
        goto bad;
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
        goto bad;
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    *v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    return CAD_OK;
bad:
    return cad_fail(CAD_EINVAL,
                    "--listen wants a numeric address and a port, like 127.0.0.1:8080 or "
                    "[::1]:8080 (port 0 picks a free one); got \"%s\"",
                    s);
}

static int env_int(const char *name, int def, int lo, int hi, int *out)
{
    const char *s = getenv(name);
    *out = def;
    if (!s || !*s)
        return CAD_OK;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < lo || v > hi)
        return cad_fail(CAD_EINVAL, "%s must be a number from %d to %d", name, lo, hi);
    *out = (int)v;
    return CAD_OK;
}

int web_serve(const struct web_config *cfg)
{
    struct web_server srv = {.cfg = *cfg};
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    bool v6 = false;
    int per_link, per_addr;
    int rc = parse_listen(cfg->listen, &ss, &sslen, &v6);
    if (rc)
        return rc;
    if ((rc = env_int("CADENCE_VERIFY_PER_LINK", 5, 1, 1000, &per_link)) ||
        (rc = env_int("CADENCE_VERIFY_PER_ADDRESS", 20, 1, 100000, &per_addr)))
        return rc;
    snprintf(srv.db_path, sizeof srv.db_path, "%s/cadence.db", cfg->data_dir);
    if (!fs_exists(srv.db_path))
        return cad_fail(CAD_ENOTFOUND, "no Cadence data in %s; run `cadence init` first",
                        cfg->data_dir);

    /* Migrations run here, once, before any worker opens the store; the vault is opened once to
     * fail early on a missing or unsafe master key. */
    store *st = NULL;
    vault *v = NULL;
    if ((rc = store_open(&st, srv.db_path)) || (rc = vault_open(&v, st, cfg->data_dir, 0))) {
        store_close(st);
        return rc;
    }
    vault_close(v);
    store_close(st);
    if ((rc = web_server_key_load(cfg->data_dir, &srv.key)))
        return rc;
    if ((rc = onboard_public_url(srv.public_url, sizeof srv.public_url)) ||
        (rc = console_config_from_env(&srv.console, strncmp(srv.public_url, "https://", 8) == 0)))
        goto out_key;
    srv.limits.per_link = per_link;
    srv.limits.per_address = per_addr;
    if ((rc = web_throttle_new(&srv.verify_throttle, per_link > per_addr ? per_link : per_addr,
                               (int64_t)10 * 60 * 1000, 4096)))
        goto out_key;

    pthread_mutex_init(&srv.mu, NULL);
    pthread_cond_init(&srv.idle, NULL);
    pthread_key_create(&srv.tls, thread_handles_free);

    sigset_t sigs, old;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, &old);
    signal(SIGPIPE, SIG_IGN);

    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (v6)
        flags |= MHD_USE_IPv6;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, &srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
        MHD_OPTION_THREAD_POOL_SIZE, cfg->threads, MHD_OPTION_CONNECTION_LIMIT, cfg->max_conns,
        MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s, MHD_OPTION_PER_IP_CONNECTION_LIMIT, 64u,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, &srv, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_END);
    if (!d) {
        rc = cad_fail(CAD_EIO, "cannot listen on %s (%s)", cfg->listen,
                      errno ? strerror(errno) : "the address may be in use");
        goto out_sig;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    char host[256];
    snprintf(host, sizeof host, "%s", cfg->listen);
    *strrchr(host, ':') = 0;
    printf("listening on http://%s:%u\n", host, info ? (unsigned)info->port : 0u);
    fflush(stdout);
    cad_log(LOG_INFO, "web.start", "port=%u threads=%u", info ? (unsigned)info->port : 0u,
            cfg->threads);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ;
    cad_log(LOG_INFO, "web.stopping", "signal=%d inflight=%d", sig, srv.inflight);
    MHD_socket ls = MHD_quiesce_daemon(d);
    if (ls != MHD_INVALID_SOCKET)
        close(ls);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += cfg->drain_s;
    pthread_mutex_lock(&srv.mu);
    while (srv.inflight > 0 && pthread_cond_timedwait(&srv.idle, &srv.mu, &deadline) != ETIMEDOUT)
        ;
    int left = srv.inflight;
    pthread_mutex_unlock(&srv.mu);
    MHD_stop_daemon(d);
    cad_log(LOG_INFO, "web.stopped", "unfinished=%d", left);
    rc = CAD_OK;
out_sig:
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_key_delete(srv.tls);
    pthread_cond_destroy(&srv.idle);
    pthread_mutex_destroy(&srv.mu);
    web_throttle_free(srv.verify_throttle);
out_key:
    secret_free(srv.key);
    return rc;
}
