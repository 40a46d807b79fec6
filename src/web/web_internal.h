/*
 * The pieces of the web module shared between its files and its unit tests: an output buffer
 * with the HTML escaper, the router, form parsing, token hashing, CSRF tokens and the throttle.
 * Nothing outside src/web and tests/web includes this.
 */
#ifndef CADENCE_WEB_INTERNAL_H
#define CADENCE_WEB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/secret.h"
#include "store/store.h"
#include "tenant/tenant.h"
#include "vault/vault.h"
#include "web/web.h"

/* ---- output buffer and HTML escaping (html.c) ---- */

/* A growing byte buffer. After an allocation failure it stays empty with `failed` set, so callers
 * append freely and check once. */
struct wbuf {
    char *data;
    size_t len, cap;
    bool failed;
};

void wbuf_put(struct wbuf *b, const void *data, size_t n);
void wbuf_puts(struct wbuf *b, const char *s);
/* Appends `s` with & < > " ' escaped: safe in element content and in quoted attribute values. */
void wbuf_html(struct wbuf *b, const char *s);
void wbuf_html_n(struct wbuf *b, const char *s, size_t n);
/* A small formatter for HTML: %s appends a string escaped, %S a trusted HTML fragment raw, %d an
 * int, %D an int64_t, %% a percent sign. Nothing else is accepted (the directive is dropped). */
void wbuf_fmt(struct wbuf *b, const char *fmt, ...);
/* Wipes the bytes (they may have held a form with a key) and frees. */
void wbuf_free(struct wbuf *b);

/* ---- router (router.c) ---- */

struct web_req;
typedef void (*web_handler)(struct web_req *req);

enum {
    ROUTE_BODY = 1u << 0,  /* takes a form body (POST) */
    ROUTE_TOKEN = 1u << 1, /* carries an onboarding token: no-store, link checked first */
    ROUTE_ADMIN = 1u << 2, /* console: a live session first (else the login page), CSRF bound to
                              the session, no-store */
    ROUTE_ADMIN_ONLY = 1u << 3, /* console, and the operator must have the admin role */
    ROUTE_LOGIN = 1u << 4,      /* the login form: CSRF bound to the pre-login cookie */
};

struct web_route {
    const char *method;  /* "GET" (also answers HEAD) or "POST" */
    const char *pattern; /* "/onboard/:token/verify": literal segments and :name captures */
    const char *name;    /* the route label in metrics and logs */
    web_handler fn;
    unsigned flags;
};

#define ROUTE_MAX_PARAMS    4
#define ROUTE_MAX_PARAM_LEN 128

struct route_params {
    int n;
    char name[ROUTE_MAX_PARAMS][32];
    char value[ROUTE_MAX_PARAMS][ROUTE_MAX_PARAM_LEN];
};

enum route_match { ROUTE_FOUND, ROUTE_NO_PATH, ROUTE_BAD_METHOD };

/* Finds the route for (method, path) in `table` (n entries). A capture matches one non-empty
 * segment of at most ROUTE_MAX_PARAM_LEN - 1 bytes. ROUTE_BAD_METHOD when the path matches some
 * route but not with this method; `allow` (may be NULL) then lists the methods that would. */
enum route_match router_match(const struct web_route *table, size_t n, const char *method,
                              const char *path, const struct web_route **out,
                              struct route_params *params, char *allow, size_t allow_size);
/* The captured value named `name`, or NULL. */
const char *route_param(const struct route_params *p, const char *name);

/* ---- forms (form.c) ---- */

#define WEB_FORM_MAX_FIELDS 16

struct web_form {
    size_t n;
    struct {
        char *name;
        char *value; /* decoded, NUL-terminated (a NUL inside makes the form malformed) */
        size_t len;
    } f[WEB_FORM_MAX_FIELDS];
};

/* Parses application/x-www-form-urlencoded `body`. CAD_EINVAL (with a message) for a malformed
 * escape, a NUL byte, a repeated field name, more than WEB_FORM_MAX_FIELDS fields or a field name
 * longer than 64 bytes. The form is empty after a failure. */
int web_form_parse(const char *body, size_t len, struct web_form *out);
/* The value of `name`, or NULL when absent. */
const char *web_form_get(const struct web_form *f, const char *name);
/* Wipes every value (one may be a key) and frees. */
void web_form_free(struct web_form *f);

/* ---- CSRF (csrf.c) ---- */

/* base64url(HMAC-SHA256(server key, "cadence-csrf/1|" + link hash)): bound to one onboarding link,
 * valid as long as the link is. */
void web_csrf_token(const cad_secret *server_key, const char *link_hash,
                    char out[WEB_TOKEN_LEN + 1]);
/* Constant-time check of a submitted token (NULL = missing). */
bool web_csrf_check(const cad_secret *server_key, const char *link_hash, const char *given);
/* Reads data_dir/web.key (32 random bytes, mode 0600), creating it on first use. */
int web_server_key_load(const char *data_dir, cad_secret **out);

/* ---- throttle (throttle.c) ---- */

typedef struct web_throttle web_throttle;

/* Attempts per key are counted over a sliding `window_ms`; a key's limit is given with each hit
 * and is at most `max_hits`. Remembers at most `max_keys` keys (the least recently used one is
 * forgotten first). */
int web_throttle_new(web_throttle **out, int max_hits, int64_t window_ms, size_t max_keys);
void web_throttle_free(web_throttle *t);
/* Records one attempt at `now_ms` against every key in `keys` when each of them has had fewer than
 * limits[i] attempts in the window, and returns true; otherwise records nothing, sets *retry_ms
 * (may be NULL) to how long until every key has room again, and returns false. Thread-safe. */
bool web_throttle_hit(web_throttle *t, const char *const *keys, const int *limits, size_t n,
                      int64_t now_ms, int64_t *retry_ms);
/* The Verify limits the server was started with (per link, per client address). */
struct web_verify_limits {
    int per_link, per_address;
};

/* ---- console sessions (admin_auth.c) ---- */

/* The signed-in operator of a console request. */
struct console_session {
    char hash[65]; /* SHA-256 of the cookie value: the session's id in the store */
    char email[256];
    enum operator_role role;
    int64_t created_ms, expires_ms;
};

/* Cookie names and how long things last, read once at start-up from the environment:
 * CADENCE_CONSOLE_IDLE_MINUTES (1..1440, default 30), CADENCE_CONSOLE_MAX_HOURS (1..168, default
 * 12), CADENCE_LOGIN_MAX_FAILURES (per account, 1..100, default 5), CADENCE_LOGIN_PER_ADDRESS
 * (1..10000, default 20), CADENCE_LOGIN_LOCK_MINUTES (1..1440, default 15). `secure` (an https
 * public URL) adds the Secure attribute to every cookie. */
struct console_config {
    int64_t idle_ms, max_ms;
    int max_failures, per_address;
    int64_t lock_ms;
    bool secure;
};
int console_config_from_env(struct console_config *out, bool secure);

#define CONSOLE_COOKIE "cadence_console"
#define LOGIN_COOKIE   "cadence_login"

/* ---- requests (server.c) and pages ---- */

struct web_server;

struct web_req {
    struct web_server *srv;
    const char *method;
    const char *path;
    const struct web_route *route;
    struct route_params params;
    const char *client; /* the peer's address as text */
    const char *body;   /* NULL for a GET */
    size_t body_len;
    struct web_form form;        /* for ROUTE_BODY routes: the parsed body, CSRF already checked */
    store *st;                   /* this thread's store (NULL when it cannot be opened) */
    vault *v;                    /* this thread's vault (opened by web_req_vault) */
    struct onboard_link link;    /* for ROUTE_TOKEN routes: the resolved link */
    void *conn;                  /* the MHD connection (query arguments, cookies) */
    struct console_session sess; /* for ROUTE_ADMIN routes: the signed-in operator */

    /* the response, filled by the handler */
    int status;
    const char *content_type; /* default text/html; charset=utf-8 */
    const char *location;     /* for 303 */
    const char *cache;        /* Cache-Control; default no-store */
    int retry_after_s;        /* > 0 adds Retry-After */
    const char *allow;        /* for 405: the methods the path answers */
    const char *disposition;  /* Content-Disposition (downloads) */
    char set_cookie[2][256];  /* Set-Cookie values ("" = none) */
    struct wbuf out;
};

/* A query-string argument (decoded by MHD), or NULL. */
const char *web_req_query(const struct web_req *r, const char *name);
/* A request cookie, or NULL. */
const char *web_req_cookie(const struct web_req *r, const char *name);
/* Adds a Set-Cookie: NAME=VALUE; Path=/admin; HttpOnly; SameSite=Strict (+ Secure behind https),
 * with Max-Age when max_age_s >= 0 (0 deletes it). */
void web_req_set_cookie(struct web_req *r, const char *name, const char *value, int64_t max_age_s);

/* This thread's vault, opened on first use; NULL (and a 503 page written) on failure. */
vault *web_req_vault(struct web_req *r);
/* The server key (for CSRF tokens) and the Verify throttle. */
const cad_secret *web_server_key(const struct web_server *srv);
const struct console_config *web_console_config(const struct web_server *srv);
const char *web_server_public_url(const struct web_server *srv);
web_throttle *web_verify_throttle(const struct web_server *srv, struct web_verify_limits *limits);

/* A whole page: head, header bar, the body fragment built by `body_fn`, footer. */
void page_begin(struct web_req *r, const char *title);
void page_end(struct web_req *r);
/* A short complete page with a heading and a sentence (errors: 404, 403, 413, ...). */
void page_message(struct web_req *r, int status, const char *title, const char *text);

/* Handlers (onboard.c, help.c, server.c). */
void onboard_get(struct web_req *r);
void onboard_step_get(struct web_req *r);
void onboard_details_post(struct web_req *r);
void onboard_verify_post(struct web_req *r);
void onboard_skip_post(struct web_req *r);
void onboard_connect_post(struct web_req *r);
void onboard_extras_post(struct web_req *r);
void help_klaviyo_get(struct web_req *r);

/* The console's gate (admin_auth.c), run by the server before a ROUTE_ADMIN handler: resolves the
 * session cookie into r->sess and checks the role and (for forms) the CSRF token. Returns false
 * with the response written (303 to the login page, 403) when the request may not go on. */
bool admin_gate(struct web_req *r);
/* The CSRF token of the login form, bound to the pre-login cookie; the check for ROUTE_LOGIN. */
bool admin_login_csrf_ok(struct web_req *r);
/* The console's CSRF token for r->sess (43 characters + NUL). */
void admin_csrf_token(const struct web_req *r, char out[WEB_TOKEN_LEN + 1]);

/* Console handlers (admin_auth.c, admin.c, admin_audit.c). */
void admin_login_get(struct web_req *r);
void admin_login_post(struct web_req *r);
void admin_logout_post(struct web_req *r);
void admin_tenants_get(struct web_req *r);
void admin_tenant_get(struct web_req *r);
void admin_tenant_link_post(struct web_req *r);
void admin_tenant_paid_post(struct web_req *r);
void admin_tenant_reverify_post(struct web_req *r);
void admin_waiting_get(struct web_req *r);
void admin_operators_get(struct web_req *r);
void admin_operators_post(struct web_req *r);
void admin_audit_get(struct web_req *r);
void admin_audit_csv_get(struct web_req *r);
void admin_audit_verify_post(struct web_req *r);

/* The console's page frame: the page head and a navigation bar naming the operator. */
void admin_page_begin(struct web_req *r, const char *title, const char *active);
void admin_page_end(struct web_req *r);
/* A hidden CSRF field for a console form. */
void admin_csrf_field(struct web_req *r);

#endif
