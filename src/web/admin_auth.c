/*
 * Signing in to the operators' console: the login form, the sign-in throttle with lockout,
 * sessions, the gate every console request passes, logout, and the console's page frame.
 *
 * Sessions. The cookie holds a fresh 256-bit token; the store holds only its SHA-256 (table
 * console_sessions, migration 0005). A sign-in always starts a new session and ends the one the
 * browser presented, so a session id planted before sign-in is worthless after it. A session ends
 * on logout, after CADENCE_CONSOLE_IDLE_MINUTES without a request, or CADENCE_CONSOLE_MAX_HOURS
 * after sign-in, whichever comes first; a disabled operator's sessions stop working at once.
 * Cookies are HttpOnly, SameSite=Strict, Path=/admin, and Secure when the public URL is https.
 *
 * CSRF. Console forms carry HMAC(server key, "cadence-console-csrf/1|" + session hash): bound to
 * one session, dead with it. The login form, which has no session yet, carries HMAC(server key,
 * "cadence-login-csrf/1|" + SHA-256 of a pre-login cookie), so a login cannot be forged from
 * another site either (login CSRF would sign a victim in as the attacker).
 *
 * Throttle. Failed sign-ins are counted per account (the email as typed, whether or not such an
 * operator exists) and per client address, in the store (console_login_failures), so a restart
 * or a second instance does not forget them. Reaching the limit locks that subject for
 * CADENCE_LOGIN_LOCK_MINUTES; a locked subject is refused before any password is checked. The
 * answer for a locked account names the time it unlocks and is the same for an address that is
 * no operator's, so it reveals nothing about which accounts exist; a wrong password and an
 * unknown account get the same words too, after the same Argon2id work.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "web/web_internal.h"

#define CONSOLE_CSRF_CONTEXT "cadence-console-csrf/1|"
#define LOGIN_CSRF_CONTEXT   "cadence-login-csrf/1|"
#define TOUCH_EVERY_MS       15000 /* last_seen_ms is written at most this often */
#define PASSWORD_MAX         1024

static int env_range(const char *name, long def, long lo, long hi, long *out)
{
    const char *s = getenv(name);
    *out = def;
    if (!s || !*s)
        return CAD_OK;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < lo || v > hi)
        return cad_fail(CAD_EINVAL, "%s must be a number from %ld to %ld", name, lo, hi);
    *out = v;
    return CAD_OK;
}

int console_config_from_env(struct console_config *out, bool secure)
{
    long idle, max_h, fails, per_addr, lock;
    int rc;
    if ((rc = env_range("CADENCE_CONSOLE_IDLE_MINUTES", 30, 1, 1440, &idle)) ||
        (rc = env_range("CADENCE_CONSOLE_MAX_HOURS", 12, 1, 168, &max_h)) ||
        (rc = env_range("CADENCE_LOGIN_MAX_FAILURES", 5, 1, 100, &fails)) ||
        (rc = env_range("CADENCE_LOGIN_PER_ADDRESS", 20, 1, 10000, &per_addr)) ||
        (rc = env_range("CADENCE_LOGIN_LOCK_MINUTES", 15, 1, 1440, &lock)))
        return rc;
    out->idle_ms = idle * 60000;
    out->max_ms = max_h * 3600000;
    out->max_failures = (int)fails;
    out->per_address = (int)per_addr;
    out->lock_ms = lock * 60000;
    out->secure = secure;
    return CAD_OK;
}

/* "2026-11-26 19:22 UTC" */
static void when_text(int64_t ms, char *out, size_t size)
{
    char iso[32];
    time_format_ms(ms, iso, sizeof iso);
    snprintf(out, size, "%.10s %.5s UTC", iso, iso + 11);
}

/* ---- CSRF ---- */

static void mac_token(const cad_secret *key, const char *context, const char *hash,
                      char out[WEB_TOKEN_LEN + 1])
{
    char msg[128];
    int n = snprintf(msg, sizeof msg, "%s%s", context, hash);
    unsigned char mac[SHA256_LEN];
    hmac_sha256(secret_data(key), secret_len(key), msg,
                n < 0                    ? 0
                : (size_t)n < sizeof msg ? (size_t)n
                                         : sizeof msg - 1,
                mac);
    base64url_encode(mac, sizeof mac, out);
}

static bool mac_check(const cad_secret *key, const char *context, const char *hash,
                      const char *given)
{
    if (!given || strlen(given) != WEB_TOKEN_LEN)
        return false;
    char want[WEB_TOKEN_LEN + 1];
    mac_token(key, context, hash, want);
    return CRYPTO_memcmp(want, given, WEB_TOKEN_LEN) == 0;
}

void admin_csrf_token(const struct web_req *r, char out[WEB_TOKEN_LEN + 1])
{
    mac_token(web_server_key(r->srv), CONSOLE_CSRF_CONTEXT, r->sess.hash, out);
}

void admin_csrf_field(struct web_req *r)
{
    char tok[WEB_TOKEN_LEN + 1];
    admin_csrf_token(r, tok);
    wbuf_fmt(&r->out, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">", tok);
}

bool admin_login_csrf_ok(struct web_req *r)
{
    const char *cookie = web_req_cookie(r, LOGIN_COOKIE);
    if (!onboard_token_wellformed(cookie))
        return false;
    char hash[65];
    onboard_token_hash(cookie, hash);
    return mac_check(web_server_key(r->srv), LOGIN_CSRF_CONTEXT, hash,
                     web_form_get(&r->form, "csrf"));
}

/* ---- sessions ---- */

struct session_row {
    struct console_session *s;
    int64_t last_seen_ms, ended_ms;
    bool disabled, found;
    char role[16];
};

static int session_row(void *ctx, const store_row *row)
{
    struct session_row *sr = ctx;
    snprintf(sr->s->email, sizeof sr->s->email, "%s", store_row_text(row, 0));
    sr->s->created_ms = store_row_int(row, 1);
    sr->last_seen_ms = store_row_int(row, 2);
    sr->s->expires_ms = store_row_int(row, 3);
    sr->ended_ms = store_row_is_null(row, 4) ? 0 : store_row_int(row, 4);
    snprintf(sr->role, sizeof sr->role, "%s", store_row_text(row, 5));
    sr->disabled = store_row_int(row, 6) != 0;
    sr->found = true;
    return 0;
}

/* CAD_OK with r->sess filled for a live session, CAD_ENOTFOUND for none, else a store error. */
static int session_resolve(struct web_req *r, const char *token)
{
    memset(&r->sess, 0, sizeof r->sess);
    if (!onboard_token_wellformed(token))
        return CAD_ENOTFOUND;
    struct console_session s = {0};
    onboard_token_hash(token, s.hash);
    struct session_row sr = {.s = &s};
    int rc = store_query(r->st,
                         "SELECT s.operator, s.created_ms, s.last_seen_ms, s.expires_ms, "
                         "s.ended_ms, o.role, o.disabled FROM console_sessions s "
                         "JOIN operators o ON o.email = s.operator WHERE s.id_sha256 = $1",
                         SV_ARGS(SV_TEXT(s.hash)), session_row, &sr);
    if (rc)
        return rc;
    const struct console_config *cc = web_console_config(r->srv);
    int64_t now = time_now_ms();
    if (!sr.found || sr.ended_ms || sr.disabled || now >= s.expires_ms ||
        now >= sr.last_seen_ms + cc->idle_ms || operator_role_parse(sr.role, &s.role) != CAD_OK)
        return CAD_ENOTFOUND;
    if (now - sr.last_seen_ms >= TOUCH_EVERY_MS &&
        (rc =
             store_exec(r->st, "UPDATE console_sessions SET last_seen_ms = $2 WHERE id_sha256 = $1",
                        SV_ARGS(SV_TEXT(s.hash), SV_INT(now)))))
        return rc;
    r->sess = s;
    return CAD_OK;
}

static void session_end(struct web_req *r, const char *hash)
{
    if (store_exec(r->st,
                   "UPDATE console_sessions SET ended_ms = $2 WHERE id_sha256 = $1 AND "
                   "ended_ms IS NULL",
                   SV_ARGS(SV_TEXT(hash), SV_INT(time_now_ms()))) != CAD_OK)
        cad_log(LOG_ERROR, "console.session", "error=\"%s\"", cad_errmsg());
}

bool admin_gate(struct web_req *r)
{
    const char *token = web_req_cookie(r, CONSOLE_COOKIE);
    int rc = session_resolve(r, token);
    if (rc && rc != CAD_ENOTFOUND) {
        cad_log(LOG_ERROR, "console.session", "error=\"%s\"", cad_errmsg());
        page_message(r, 503, "Temporarily unavailable",
                     "The console cannot reach its database right now. Please try again in a "
                     "few minutes.");
        return false;
    }
    if (rc) {
        if (token)
            web_req_set_cookie(r, CONSOLE_COOKIE, "", 0);
        if (strcmp(r->method, "POST") != 0) {
            r->status = 303;
            r->location = token ? "/admin/login?ended=1" : "/admin/login";
            wbuf_puts(&r->out, "<!doctype html><title>Cadence</title><p><a href=\"/admin/login\">"
                               "Sign in</a></p>");
            return false;
        }
        page_message(r, 403, "Please sign in again",
                     "Your console session has ended (signed out, idle for too long or too "
                     "old). Nothing was changed. Sign in again at /admin/login.");
        return false;
    }
    if ((r->route->flags & ROUTE_ADMIN_ONLY) && r->sess.role != ROLE_ADMIN) {
        page_message(r, 403, "Admins only",
                     "Only an admin can do this. Nothing was changed; ask an admin of your "
                     "agency.");
        return false;
    }
    if ((r->route->flags & ROUTE_BODY) &&
        !mac_check(web_server_key(r->srv), CONSOLE_CSRF_CONTEXT, r->sess.hash,
                   web_form_get(&r->form, "csrf"))) {
        page_message(r, 403, "This form has expired",
                     "For your security a console form can only be sent from its own page in "
                     "your session. Nothing was changed; reload the page and try again.");
        return false;
    }
    return true;
}

/* ---- the page frame ---- */

void admin_page_begin(struct web_req *r, const char *title, const char *active)
{
    page_begin(r, title);
    static const struct {
        const char *id, *href, *label;
        bool admin_only;
    } nav[] = {
        {"tenants", "/admin", "Tenants", false},
        {"waiting", "/admin/waiting", "Waiting for key", false},
        {"plans", "/admin/plans", "Plans", false},
        {"audit", "/admin/audit", "Audit log", false},
        {"operators", "/admin/operators", "Operators", true},
    };
    wbuf_puts(&r->out, "<nav class=\"console-nav\" aria-label=\"Console\"><ul>");
    for (size_t i = 0; i < CAD_ARRAY_LEN(nav); i++) {
        if (nav[i].admin_only && r->sess.role != ROLE_ADMIN)
            continue;
        bool cur = active && strcmp(active, nav[i].id) == 0;
        wbuf_fmt(&r->out, "<li><a href=\"%s\"%S>%s</a></li>", nav[i].href,
                 cur ? " aria-current=\"page\"" : "", nav[i].label);
    }
    wbuf_fmt(&r->out,
             "</ul><div class=\"who\"><span class=\"small\">%s (%s)</span>"
             "<form method=\"post\" action=\"/admin/logout\">",
             r->sess.email, operator_role_name(r->sess.role));
    admin_csrf_field(r);
    wbuf_puts(&r->out, "<button type=\"submit\" class=\"secondary small-button\">Sign out</button>"
                       "</form></div></nav>\n");
}

void admin_page_end(struct web_req *r)
{
    page_end(r);
}

/* ---- the login form ---- */

struct login_view {
    const char *email;
    const char *email_err, *password_err;
    const char *notice_title, *notice_text;
    bool notice_good;
};

/* The pre-login cookie's token hash for the form's CSRF field; a new cookie when the browser has
 * none (or a malformed one). */
static void login_cookie_hash(struct web_req *r, char hash[65])
{
    const char *cookie = web_req_cookie(r, LOGIN_COOKIE);
    char fresh[WEB_TOKEN_LEN + 1];
    if (!onboard_token_wellformed(cookie)) {
        if (onboard_token_new(fresh) != CAD_OK) {
            hash[0] = 0;
            return;
        }
        web_req_set_cookie(r, LOGIN_COOKIE, fresh, 3600);
        cookie = fresh;
    }
    onboard_token_hash(cookie, hash);
}

static void render_login(struct web_req *r, const struct login_view *v)
{
    char hash[65], csrf[WEB_TOKEN_LEN + 1];
    login_cookie_hash(r, hash);
    mac_token(web_server_key(r->srv), LOGIN_CSRF_CONTEXT, hash, csrf);
    page_begin(r, "Sign in");
    wbuf_puts(&r->out, "<section class=\"card narrow\" aria-labelledby=\"login-title\">"
                       "<p class=\"eyebrow\">Operators' console</p>"
                       "<h1 id=\"login-title\">Sign in</h1>");
    if (v->notice_title)
        wbuf_fmt(&r->out,
                 "<div class=\"notice %S\" role=\"%S\" tabindex=\"-1\" id=\"notice\">"
                 "<p class=\"notice-title\">%s</p><p>%s</p></div>",
                 v->notice_good ? "good" : "bad", v->notice_good ? "status" : "alert",
                 v->notice_title, v->notice_text);
    wbuf_fmt(&r->out,
             "<form method=\"post\" action=\"/admin/login\" class=\"stack\" novalidate>"
             "<input type=\"hidden\" name=\"csrf\" value=\"%s\">",
             csrf);
    wbuf_fmt(&r->out, "<div class=\"field%S\"><label for=\"email\">Email</label>",
             v->email_err ? " invalid" : "");
    if (v->email_err)
        wbuf_fmt(&r->out, "<p class=\"error\" id=\"email-err\">%s</p>", v->email_err);
    wbuf_fmt(&r->out,
             "<input id=\"email\" name=\"email\" type=\"email\" value=\"%s\" "
             "autocomplete=\"username\" autocapitalize=\"off\" spellcheck=\"false\"%S%S></div>",
             v->email ? v->email : "", v->email_err ? " aria-describedby=\"email-err\"" : "",
             v->email_err ? " aria-invalid=\"true\"" : "");
    wbuf_fmt(&r->out, "<div class=\"field%S\"><label for=\"password\">Password</label>",
             v->password_err ? " invalid" : "");
    if (v->password_err)
        wbuf_fmt(&r->out, "<p class=\"error\" id=\"password-err\">%s</p>", v->password_err);
    wbuf_fmt(&r->out,
             "<input id=\"password\" name=\"password\" type=\"password\" value=\"\" "
             "autocomplete=\"current-password\"%S%S></div>",
             v->password_err ? " aria-describedby=\"password-err\"" : "",
             v->password_err ? " aria-invalid=\"true\"" : "");
    wbuf_puts(&r->out, "<div class=\"actions\"><button type=\"submit\" class=\"primary\">Sign in"
                       "</button></div></form></section>");
    page_end(r);
}

void admin_login_get(struct web_req *r)
{
    struct login_view v = {0};
    const char *ended = web_req_query(r, "ended"), *out = web_req_query(r, "out");
    char signed_in[400];
    if (r->st && session_resolve(r, web_req_cookie(r, CONSOLE_COOKIE)) == CAD_OK) {
        /* Signing in again is allowed (it starts a new session and ends this one). */
        snprintf(signed_in, sizeof signed_in,
                 "You are signed in as %s. Signing in again ends that session and starts a "
                 "new one; go to /admin to carry on instead.",
                 r->sess.email);
        v.notice_title = "Already signed in";
        v.notice_text = signed_in;
        v.notice_good = true;
    } else if (out) {
        v.notice_title = "Signed out";
        v.notice_text = "You have signed out of the console.";
        v.notice_good = true;
    } else if (ended) {
        v.notice_title = "Your session has ended";
        v.notice_text = "You were signed out after a while without activity, or your session "
                        "reached its time limit. Please sign in again.";
    }
    r->status = 200;
    render_login(r, &v);
}

/* ---- the sign-in throttle ---- */

static int lock_row(void *ctx, const store_row *row)
{
    int64_t *until = ctx;
    int64_t v = store_row_is_null(row, 0) ? 0 : store_row_int(row, 0);
    if (v > *until)
        *until = v;
    return 0;
}

static int locked_until(store *st, const char *subject, int64_t now, int64_t *until)
{
    *until = 0;
    int rc = store_query(st,
                         "SELECT locked_until_ms FROM console_login_failures WHERE subject = $1 "
                         "AND locked_until_ms > $2",
                         SV_ARGS(SV_TEXT(subject), SV_INT(now)), lock_row, until);
    return rc;
}

struct failure_row {
    int failures;
    int64_t window_ms, locked_until_ms;
    bool found;
};

static int failure_row(void *ctx, const store_row *row)
{
    struct failure_row *f = ctx;
    f->failures = (int)store_row_int(row, 0);
    f->window_ms = store_row_int(row, 1);
    f->locked_until_ms = store_row_is_null(row, 2) ? 0 : store_row_int(row, 2);
    f->found = true;
    return 0;
}

/* Counts one failure against `subject`; *locked_ms is the lock's end when this one locks it. */
static int count_failure(store *st, const struct console_config *cc, const char *subject, int limit,
                         int64_t now, int64_t *locked_ms)
{
    struct failure_row f = {0};
    *locked_ms = 0;
    int rc = store_query(st,
                         "SELECT failures, window_ms, locked_until_ms FROM console_login_failures "
                         "WHERE subject = $1",
                         SV_ARGS(SV_TEXT(subject)), failure_row, &f);
    if (rc)
        return rc;
    /* A window that has run out, or a lock that has, starts the count again. */
    if (!f.found || now >= f.window_ms + cc->lock_ms ||
        (f.locked_until_ms && now >= f.locked_until_ms)) {
        f.failures = 0;
        f.window_ms = now;
        f.locked_until_ms = 0;
    }
    f.failures++;
    if (f.failures >= limit && !f.locked_until_ms)
        *locked_ms = f.locked_until_ms = now + cc->lock_ms;
    return store_exec(st,
                      "INSERT INTO console_login_failures (subject, failures, window_ms, "
                      "locked_until_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (subject) DO UPDATE "
                      "SET failures = $2, window_ms = $3, locked_until_ms = $4",
                      SV_ARGS(SV_TEXT(subject), SV_INT(f.failures), SV_INT(f.window_ms),
                              f.locked_until_ms ? SV_INT(f.locked_until_ms) : SV_NULL));
}

/* ---- sign in ---- */

static bool clean_line(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static void audit_console(struct web_req *r, const char *actor, const char *action,
                          const char *detail)
{
    struct audit_entry e = {.actor = actor, .action = action, .duration_ms = -1, .detail = detail};
    if (audit_append(r->st, &e, NULL) != CAD_OK)
        cad_log(LOG_ERROR, "console.audit", "action=%s error=\"%s\"", action, cad_errmsg());
}

static void login_locked(struct web_req *r, struct login_view *v, int64_t until, bool account)
{
    char when[40], text[400];
    when_text(until, when, sizeof when);
    snprintf(text, sizeof text,
             account ? "Too many failed sign-ins for this account. It is locked until %s; you "
                       "can sign in again after that."
                     : "Too many failed sign-ins from your network. Signing in from it is "
                       "paused until %s.",
             when);
    v->notice_title = account ? "Account locked" : "Too many attempts";
    v->notice_text = text;
    r->status = 429;
    int64_t wait_s = (until - time_now_ms() + 999) / 1000;
    r->retry_after_s = wait_s > 0 ? (int)wait_s : 1;
    render_login(r, v);
    v->notice_text = NULL; /* it pointed at this frame's text */
}

void admin_login_post(struct web_req *r)
{
    const struct console_config *cc = web_console_config(r->srv);
    const char *email_raw = web_form_get(&r->form, "email");
    const char *password = web_form_get(&r->form, "password");
    char email[256] = "", lower[256] = "";
    bool too_long = false;
    if (email_raw) {
        while (*email_raw == ' ' || *email_raw == '\t')
            email_raw++;
        size_t n = strlen(email_raw);
        while (n && (email_raw[n - 1] == ' ' || email_raw[n - 1] == '\t'))
            n--;
        too_long = n >= sizeof email;
        if (!too_long) {
            memcpy(email, email_raw, n);
            email[n] = 0;
            for (size_t i = 0; i <= n; i++)
                lower[i] = (char)tolower((unsigned char)email[i]);
        }
    }
    struct login_view v = {.email = email};
    if (!email[0] && !too_long)
        v.email_err = "Enter the email address you sign in with.";
    else if (too_long || !clean_line(email) || !email_valid(email))
        v.email_err = "This is not an email address. Enter one like you@agency.com.";
    if (!password || !*password)
        v.password_err = "Enter your password.";
    else if (strlen(password) > PASSWORD_MAX)
        v.password_err = "A password is at most 1024 characters.";
    if (v.email_err || v.password_err) {
        if (v.email_err)
            v.email = "";
        r->status = 422;
        render_login(r, &v);
        return;
    }

    char account[300], address[96];
    snprintf(account, sizeof account, "account:%s", lower);
    snprintf(address, sizeof address, "address:%s", r->client);
    int64_t now = time_now_ms(), until_acct = 0, until_addr = 0;
    int rc = locked_until(r->st, account, now, &until_acct);
    if (!rc)
        rc = locked_until(r->st, address, now, &until_addr);
    if (rc)
        goto unavailable;
    if (until_acct || until_addr) {
        cad_log(LOG_WARN, "console.login", "outcome=locked scope=%s",
                until_acct ? "account" : "address");
        login_locked(r, &v, until_acct ? until_acct : until_addr, until_acct != 0);
        return;
    }

    cad_secret *pw = NULL;
    if (secret_from(&pw, password, strlen(password)) != CAD_OK)
        goto unavailable;
    rc = operator_check_password(r->st, email, pw);
    secret_free(pw);
    if (rc == CAD_EAUTH) {
        int64_t lock_acct = 0, lock_addr = 0;
        char detail[400];
        now = time_now_ms();
        rc = store_begin(r->st);
        if (!rc)
            rc = count_failure(r->st, cc, account, cc->max_failures, now, &lock_acct);
        if (!rc)
            rc = count_failure(r->st, cc, address, cc->per_address, now, &lock_addr);
        if (!rc) {
            snprintf(detail, sizeof detail, "sign-in refused for %s from %s%s", email, r->client,
                     lock_acct   ? "; account locked"
                     : lock_addr ? "; address locked"
                                 : "");
            struct audit_entry e = {.actor = AUDIT_ACTOR_CLIENT,
                                    .action = "console.login.failed",
                                    .duration_ms = -1,
                                    .detail = detail};
            rc = audit_append(r->st, &e, NULL);
        }
        if (!rc)
            rc = store_commit(r->st);
        else
            store_rollback(r->st);
        if (rc)
            goto unavailable;
        cad_log(LOG_WARN, "console.login", "outcome=refused%s",
                lock_acct   ? " locked=account"
                : lock_addr ? " locked=address"
                            : "");
        if (lock_acct || lock_addr) {
            login_locked(r, &v, lock_acct ? lock_acct : lock_addr, lock_acct != 0);
            return;
        }
        v.notice_title = "Wrong email or password";
        v.notice_text = "Check both and try again. After a few failed attempts the account is "
                        "locked for a while.";
        r->status = 401;
        render_login(r, &v);
        return;
    }
    if (rc)
        goto unavailable;

    /* Signed in: a new session; the one the browser came with (if any) ends here. */
    const char *old = web_req_cookie(r, CONSOLE_COOKIE);
    char token[WEB_TOKEN_LEN + 1], hash[65], detail[200];
    if (onboard_token_new(token) != CAD_OK)
        goto unavailable;
    onboard_token_hash(token, hash);
    now = time_now_ms();
    rc = store_begin(r->st);
    if (!rc && onboard_token_wellformed(old)) {
        char old_hash[65];
        onboard_token_hash(old, old_hash);
        rc = store_exec(r->st,
                        "UPDATE console_sessions SET ended_ms = $2 WHERE id_sha256 = $1 AND "
                        "ended_ms IS NULL",
                        SV_ARGS(SV_TEXT(old_hash), SV_INT(now)));
    }
    if (!rc)
        rc = store_exec(r->st,
                        "INSERT INTO console_sessions (id_sha256, operator, created_ms, "
                        "last_seen_ms, expires_ms, client) VALUES ($1, $2, $3, $3, $4, $5)",
                        SV_ARGS(SV_TEXT(hash), SV_TEXT(email), SV_INT(now),
                                SV_INT(now + cc->max_ms), SV_TEXT(r->client)));
    if (!rc)
        rc = store_exec(r->st, "DELETE FROM console_login_failures WHERE subject = $1",
                        SV_ARGS(SV_TEXT(account)));
    if (!rc) {
        snprintf(detail, sizeof detail, "signed in from %s (session %.12s)", r->client, hash);
        struct audit_entry e = {
            .actor = email, .action = "console.login", .duration_ms = -1, .detail = detail};
        rc = audit_append(r->st, &e, NULL);
    }
    if (!rc)
        rc = store_commit(r->st);
    else
        store_rollback(r->st);
    if (rc) {
        OPENSSL_cleanse(token, sizeof token);
        goto unavailable;
    }
    web_req_set_cookie(r, CONSOLE_COOKIE, token, -1);
    web_req_set_cookie(r, LOGIN_COOKIE, "", 0);
    OPENSSL_cleanse(token, sizeof token);
    cad_log(LOG_INFO, "console.login", "outcome=ok session=%.12s", hash);
    r->status = 303;
    r->location = "/admin";
    return;

unavailable:
    cad_log(LOG_ERROR, "console.login", "error=\"%s\"", cad_errmsg());
    page_message(r, 503, "Temporarily unavailable",
                 "Signing in is not possible right now. Please try again in a few minutes.");
}

void admin_logout_post(struct web_req *r)
{
    char detail[120];
    session_end(r, r->sess.hash);
    snprintf(detail, sizeof detail, "signed out (session %.12s)", r->sess.hash);
    audit_console(r, r->sess.email, "console.logout", detail);
    web_req_set_cookie(r, CONSOLE_COOKIE, "", 0);
    r->status = 303;
    r->location = "/admin/login?out=1";
}
