/*
 * The Klaviyo client against a tiny scripted HTTP server started inside the test on 127.0.0.1:0:
 * retries, the no-blind-retry rule for POST, Retry-After, the 401 re-check, scopes, the write
 * guard, pagination, unreachable hosts, key verification outcomes, the audit trail of every
 * attempt, and that the key is in no audit record and no log line.
 *
 * The server is one thread with a poll loop over the listening socket and its connections (so
 * keep-alive reuse and new connections both work). Each request is recorded and answered by the
 * test's handler, which returns a full raw HTTP response or NULL to close the connection without
 * answering.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/log.h"
#include "common/secret.h"
#include "common/util.h"
#include "keyfmt/keyfmt.h"
#include "klaviyo/client.h"
#include "klaviyo/ratelimit.h"
#include "klaviyo/verify.h"
#include "testutil.h"

/* ---- the scripted server ---- */

#define MAX_REQS  64
#define MAX_CONNS 16

struct req {
    char method[8];
    char target[512];
    char headers[4096];
    char body[2048];
    int64_t at_ms;
    int conn_no;
};

struct srv;
/* Returns a malloc'd raw response, or NULL to close the connection without one. */
typedef char *(*handler_fn)(struct srv *s, const struct req *r, int n);

struct srv {
    int lfd, port;
    pthread_t th;
    volatile int stop;
    pthread_mutex_t mu;
    handler_fn handler;
    void *ctx;
    struct req reqs[MAX_REQS];
    int nreqs;
    int conns_accepted;
    int delay_ms; /* before answering */
};

static char *response(int status, const char *extra_headers, const char *ctype, const char *body)
{
    char *out = NULL;
    const char *reason = status == 200 ? "OK" : status == 201 ? "Created" : "Status";
    int n = asprintf(&out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n%s",
                     status, reason, ctype, strlen(body), extra_headers ? extra_headers : "", body);
    assert_true(n > 0);
    return out;
}

static char *japi(int status, const char *extra, const char *body)
{
    return response(status, extra, "application/vnd.api+json", body);
}

static char *japi_error(int status, const char *code, const char *detail)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"errors\":[{\"id\":\"x\",\"code\":\"%s\",\"title\":\"Error\",\"detail\":\"%s\"}]}",
             code, detail);
    return japi(status, "X-Request-Id: rq-err\r\n", body);
}

struct conn {
    int fd, no;
    char buf[65536];
    size_t len;
};

static size_t content_length(const char *headers)
{
    const char *p = strcasestr(headers, "\r\ncontent-length:");
    return p ? (size_t)strtoul(p + 17, NULL, 10) : 0;
}

/* One complete request at the start of c->buf: handles it and returns true. */
static bool serve_one(struct srv *s, struct conn *c, bool *close_it)
{
    c->buf[c->len] = '\0';
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end)
        return false;
    size_t hlen = (size_t)(end - c->buf) + 4;
    size_t blen = content_length(c->buf);
    if (c->len < hlen + blen)
        return false;
    struct req r = {0};
    sscanf(c->buf, "%7s %511s", r.method, r.target);
    size_t hl = hlen < sizeof r.headers ? hlen : sizeof r.headers - 1;
    memcpy(r.headers, c->buf, hl);
    size_t bl = blen < sizeof r.body ? blen : sizeof r.body - 1;
    memcpy(r.body, c->buf + hlen, bl);
    r.at_ms = time_mono_ms();
    r.conn_no = c->no;
    pthread_mutex_lock(&s->mu);
    int n = s->nreqs;
    if (s->nreqs < MAX_REQS)
        s->reqs[s->nreqs++] = r;
    pthread_mutex_unlock(&s->mu);
    memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
    c->len -= hlen + blen;
    if (s->delay_ms)
        usleep((useconds_t)s->delay_ms * 1000);
    char *resp = s->handler(s, &r, n);
    if (!resp) {
        *close_it = true;
        return false;
    }
    size_t off = 0, len = strlen(resp);
    while (off < len) {
        ssize_t w = send(c->fd, resp + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(resp);
    return true;
}

static void *srv_main(void *arg)
{
    struct srv *s = arg;
    struct conn *conns[MAX_CONNS] = {0};
    while (!s->stop) {
        struct pollfd pf[MAX_CONNS + 1];
        int idx[MAX_CONNS + 1];
        nfds_t n = 0;
        pf[n] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
        idx[n++] = -1;
        for (int i = 0; i < MAX_CONNS; i++)
            if (conns[i]) {
                pf[n] = (struct pollfd){.fd = conns[i]->fd, .events = POLLIN};
                idx[n++] = i;
            }
        if (poll(pf, n, 50) <= 0)
            continue;
        for (nfds_t k = 0; k < n; k++) {
            if (!(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (idx[k] < 0) {
                int fd = accept(s->lfd, NULL, NULL);
                if (fd < 0)
                    continue;
                for (int i = 0; i < MAX_CONNS; i++)
                    if (!conns[i]) {
                        conns[i] = calloc(1, sizeof *conns[i]);
                        conns[i]->fd = fd;
                        conns[i]->no = ++s->conns_accepted;
                        fd = -1;
                        break;
                    }
                if (fd >= 0)
                    close(fd);
                continue;
            }
            struct conn *c = conns[idx[k]];
            ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, 0);
            bool close_it = r <= 0;
            if (r > 0) {
                c->len += (size_t)r;
                while (!close_it && serve_one(s, c, &close_it))
                    ;
            }
            if (close_it) {
                close(c->fd);
                free(c);
                conns[idx[k]] = NULL;
            }
        }
    }
    for (int i = 0; i < MAX_CONNS; i++)
        if (conns[i]) {
            close(conns[i]->fd);
            free(conns[i]);
        }
    return NULL;
}

static void srv_start(struct srv *s, handler_fn h)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->handler = h;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    socklen_t al = sizeof a;
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void srv_stop(struct srv *s)
{
    s->stop = 1;
    pthread_join(s->th, NULL);
    close(s->lfd);
    pthread_mutex_destroy(&s->mu);
}

static int srv_count(struct srv *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->nreqs;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- fixture ---- */

struct fx {
    char *dir;
    char dbpath[600];
    store *st;
    cad_secret *key;
    char keytext[64];
    struct klaviyo_config cfg;
    struct srv srv;
    bool srv_running;
    char *log;
    size_t log_len;
    FILE *logf;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->dir = test_tmpdir();
    snprintf(f->dbpath, sizeof f->dbpath, "%s/t.db", f->dir);
    assert_int_equal(store_open(&f->st, f->dbpath), CAD_OK);
    /* A fresh random key per test: pk_ + 34 letters and digits. */
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[34];
    assert_int_equal(random_bytes(rnd, sizeof rnd), CAD_OK);
    strcpy(f->keytext, "pk_");
    for (size_t i = 0; i < 34; i++)
        f->keytext[3 + i] = alnum[rnd[i] % 62];
    f->keytext[37] = '\0';
    assert_int_equal(secret_from(&f->key, f->keytext, strlen(f->keytext)), CAD_OK);
    f->logf = open_memstream(&f->log, &f->log_len);
    log_set_stream(f->logf);
    log_set_level(LOG_DEBUG);
    *state = f;
    return 0;
}

/* Nothing the client wrote (audit database, log lines) may hold the key or its body. */
static void assert_key_nowhere(struct fx *f)
{
    fflush(f->logf);
    const char *body = f->keytext + 3;
    assert_null(memmem(f->log, f->log_len, body, strlen(body)));
    char *db = NULL;
    size_t dblen = 0;
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(fs_read_all(f->dbpath, 64u << 20, &db, &dblen), CAD_OK);
    assert_null(memmem(db, dblen, body, strlen(body)));
    free(db);
    char wal[700];
    snprintf(wal, sizeof wal, "%s-wal", f->dbpath);
    if (fs_exists(wal)) {
        assert_int_equal(fs_read_all(wal, 64u << 20, &db, &dblen), CAD_OK);
        assert_null(memmem(db, dblen, body, strlen(body)));
        free(db);
    }
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->srv_running)
        srv_stop(&f->srv);
    assert_key_nowhere(f);
    log_set_stream(stderr);
    fclose(f->logf);
    free(f->log);
    secret_free(f->key);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

static klaviyo_client *client_for(struct fx *f, handler_fn h)
{
    srv_start(&f->srv, h);
    f->srv_running = true;
    memset(&f->cfg, 0, sizeof f->cfg);
    snprintf(f->cfg.base_url, sizeof f->cfg.base_url, "http://127.0.0.1:%d", f->srv.port);
    f->cfg.connect_timeout_ms = 2000;
    f->cfg.timeout_ms = 3000;
    f->cfg.max_in_flight = 4;
    f->cfg.max_attempts = 3;
    f->cfg.backoff_base_ms = 20;
    f->cfg.backoff_max_ms = 100;
    f->cfg.max_wait_ms = 60000;
    f->cfg.rate_scale = 1;
    klaviyo_client *c = NULL;
    assert_int_equal(klaviyo_client_new(&c, f->st, "acme", "ops@agency.test", f->key, &f->cfg),
                     CAD_OK);
    return c;
}

/* The audit trail: every klaviyo.call in seq order, as listed (intent joined with outcome). */
struct trail {
    int n;
    char method[32][8];
    char endpoint[32][128];
    int status[32];
    char request_id[32][64];
    char detail[32][256];
    char sha[32][65];
};

static int trail_row(void *ctx, const struct audit_record *r)
{
    struct trail *t = ctx;
    if (t->n >= 32)
        return 0;
    snprintf(t->method[t->n], sizeof t->method[0], "%s", r->method ? r->method : "");
    snprintf(t->endpoint[t->n], sizeof t->endpoint[0], "%s", r->endpoint ? r->endpoint : "");
    t->status[t->n] = r->status;
    snprintf(t->request_id[t->n], sizeof t->request_id[0], "%s",
             r->request_id ? r->request_id : "");
    snprintf(t->detail[t->n], sizeof t->detail[0], "%s", r->detail ? r->detail : "");
    snprintf(t->sha[t->n], sizeof t->sha[0], "%s", r->payload_sha256 ? r->payload_sha256 : "");
    t->n++;
    return 0;
}

static void trail_get(struct fx *f, struct trail *t)
{
    memset(t, 0, sizeof *t);
    struct audit_filter flt = {.tenant_id = "acme", .action = "klaviyo.call"};
    assert_int_equal(audit_list(f->st, &flt, trail_row, t), CAD_OK);
}

static const char *LISTS_PAGE = "{\"data\":[{\"type\":\"list\",\"id\":\"L1\",\"attributes\":"
                                "{\"name\":\"A\"}}],\"links\":{\"self\":\"x\",\"next\":null}}";

/* ---- retries ---- */

static char *h_503_then_200(struct srv *s, const struct req *r, int n)
{
    (void)s;
    (void)r;
    if (n == 0)
        return japi_error(503, "unavailable", "try later");
    return japi(200, "X-Request-Id: rq-ok\r\n", LISTS_PAGE);
}

static void test_get_503_then_200_is_retried(void **state)
{
    struct fx *f = *state;
    klaviyo_client *c = client_for(f, h_503_then_200);
    struct klaviyo_request rq = {.method = "GET", .target = "/api/lists?page%5Bsize%5D=10"};
    struct klaviyo_result res;
    assert_int_equal(klaviyo_call(c, &rq, &res), CAD_OK);
    assert_int_equal(res.outcome, KLAVIYO_OUT_OK);
    assert_int_equal(res.attempts, 2);
    assert_int_equal(res.http_status, 200);
    assert_string_equal(res.request_id, "rq-ok");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(res.doc, "data"), 0), "id")),
                        "L1");
    assert_int_equal(srv_count(&f->srv), 2);
    /* What the server saw: the required headers, the key only in Authorization. */
    const char *h = f->srv.reqs[0].headers;
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Klaviyo-API-Key %s\r\n", f->keytext);
    assert_non_null(strstr(h, auth));
    assert_non_null(strstr(h, "revision: " KLAVIYO_REVISION "\r\n"));
    assert_non_null(strstr(h, "Accept: application/vnd.api+json\r\n"));
    assert_non_null(strstr(h, "User-Agent: cadence/" CADENCE_VERSION "\r\n"));
    assert_string_equal(f->srv.reqs[0].target, "/api/lists?page%5Bsize%5D=10");
    klaviyo_result_clear(&res);
    klaviyo_client_free(c);
    fflush(f->logf);
    assert_non_null(strstr(f->log, "event=klaviyo.retry")); /* the log scan has something to scan */

    struct trail t;
    trail_get(f, &t);
    assert_int_equal(t.n, 2); /* one intent + outcome per attempt */
    assert_string_equal(t.method[0], "GET");
    assert_string_equal(t.endpoint[0], "/api/lists"); /* no query string */
    assert_int_equal(t.status[0], 503);
    assert_string_equal(t.request_id[0], "rq-err");
    assert_non_null(strstr(t.detail[0], "unavailable"));
    assert_int_equal(t.status[1], 200);
    assert_string_equal(t.request_id[1], "rq-ok");
}

static char *h_close(struct srv *s, const struct req *r, int n)
{
    (void)s;
    (void)r;
    (void)n;
    return NULL;
}

static void test_post_dropped_is_unknown_and_sent_once(void **state)
{
    struct fx *f = *state;
    klaviyo_client *c = client_for(f, h_close);
    const char *body = "{\"data\":{\"type\":\"list\",\"attributes\":{\"name\":\"Newsletter\"}}}";
    struct klaviyo_request rq = {.method = "POST",
                                 .target = "/api/lists",
                                 .body = body,
                                 .body_len = strlen(body),
                                 .write_authorization = "plan-7/step-3"};
    struct klaviyo_result res;
    assert_int_equal(klaviyo_call(c, &rq, &res), CAD_EUNKNOWN);
    assert_int_equal(res.outcome, KLAVIYO_OUT_UNKNOWN);
    assert_int_equal(res.attempts, 1);
    assert_non_null(strstr(res.message, "look the object up"));
    klaviyo_result_clear(&res);
    usleep(200 * 1000); /* a re-send would have arrived by now */
    assert_int_equal(srv_count(&f->srv), 1);
    assert_string_equal(f->srv.reqs[0].body, body);
    assert_non_null(strstr(f->srv.reqs[0].headers, "Content-Type: application/vnd.api+json"));
    klaviyo_client_free(c);

    struct trail t;
    trail_get(f, &t);
    assert_int_equal(t.n, 1);
    assert_string_equal(t.method[0], "POST");
    assert_int_equal(t.status[0], 0); /* no response, told in the detail */
    assert_non_null(strstr(t.detail[0], "no complete response"));
    char sha[65];
    sha256_hex(body, strlen(body), sha);
    assert_string_equal(t.sha[0], sha); /* the hash of the exact body */
}

/* A POST on a reused keep-alive connection that dies: libcurl would silently re-send it on a
 * fresh connection; the client must not let it. */
static char *h_get_ok_then_close(struct srv *s, const struct req *r, int n)
{
    (void)s;
    (void)n;
    if (strcmp(r->method, "GET") == 0)
        return japi(200, NULL, LISTS_PAGE);
    return NULL;
}

static void test_post_on_reused_connection_not_resent(void **state)
{
    struct fx *f = *state;
    klaviyo_client *c = client_for(f, h_get_ok_then_close);
    struct klaviyo_request get = {.method = "GET", .target = "/api/lists"};
    struct klaviyo_result res;
    assert_int_equal(klaviyo_call(c, &get, &res), CAD_OK);
    klaviyo_result_clear(&res);
    const char *body = "{\"data\":{\"type\":\"list\",\"attributes\":{\"name\":\"X\"}}}";
    struct klaviyo_request post = {.method = "POST",
                                   .target = "/api/lists",
                                   .body = body,
                                   .body_len = strlen(body),
                                   .write_authorization = "step"};
    assert_int_equal(klaviyo_call(c, &post, &res), CAD_EUNKNOWN);
    assert_int_equal(res.outcome, KLAVIYO_OUT_UNKNOWN);
    klaviyo_result_clear(&res);
    usleep(200 * 1000);
    int posts = 0;
    for (int i = 0; i < srv_count(&f->srv); i++)
        posts += strcmp(f->srv.reqs[i].method, "POST") == 0;
    assert_int_equal(posts, 1);
    assert_int_equal(f->srv.reqs[1].conn_no, f->srv.reqs[0].conn_no); /* it was reused */
    klaviyo_client_free(c);
    struct trail t;
    trail_get(f, &t);
    assert_int_equal(t.n, 2);
}

static char *h_500(struct srv *s, const struct req *r, int n)
{
    (void)s;
    (void)r;
    (void)n;
    return japi_error(500, "error", "boom");
}

static void test_post_5xx_is_unknown(void **state)
{
    struct fx *f = *state;
    klaviyo_client *c = client_for(f, h_500);
    const char *body = "{\"data\":{\"type\":\"tag\",\"attributes\":{\"name\":\"t\"}}}";
    struct klaviyo_request rq = {.method = "POST",
                                 .target = "/api/tags",
                                 .body = body,
                                 .body_len = strlen(body),
                                 .write_authorization = "step"};
    struct klaviyo_result res;
    assert_int_equal(klaviyo_call(c, &rq, &res), CAD_EUNKNOWN);
    assert_int_equal(res.http_status, 500);
    klaviyo_result_clear(&res);
    assert_int_equal(srv_count(&f->srv), 1);
    /* PATCH and DELETE are retried (up to max_attempts) and end transient. */
    const char *pb = "{\"data\":{\"type\":\"tag\",\"id\":\"T1\",\"attributes\":{\"name\":\"u\"}}}";
    struct klaviyo_request patch = {.method = "PATCH",
                                    .target = "/api/tags/T1",
                                    .body = pb,
                                    .body_len = strlen(pb),
                                    .write_authorization = "step"};
    assert_int_equal(klaviyo_call(c, &patch, &res), CAD_ENET);
    assert_int_equal(res.outcome, KLAVIYO_OUT_TRANSIENT);
    assert_int_equal(res.attempts, 3);
    klaviyo_result_clear(&res);
    assert_int_equal(srv_count(&f->srv), 4);
    for (int i = 1; i < 4; i++)
        assert_string_equal(f->srv.reqs[i].body, pb); /* the body rewound for every retry */
    struct klaviyo_request del = {
        .method = "DELETE", .target = "/api/tags/T1", .write_authorization = "step"};
    assert_int_equal(klaviyo_call(c, &del, &res), CAD_ENET);
    assert_int_equal(res.attempts, 3);
    klaviyo_result_clear(&res);
    assert_int_equal(srv_count(&f->srv), 7);
    klaviyo_client_free(c);
    struct trail t;
    trail_get(f, &t);
    assert_int_equal(t.n, 7);
    for (int i = 0; i < 7; i++)
        assert_int_equal(t.status[i], 500);
}

static char *h_429_then_200(struct srv *s, const struct req *r, int n)
{
    (void)s;
    (void)r;
    if (n == 0)
        return japi(429, "Retry-After: 1\r\n",
                    "{\"errors\":[{\"id\":\"t\",\"code\":\"throttled\",\"title\":\"Request was "
                    "throttled.\",\"detail\":\"Expected available in 1 second.\"}]}");
    return japi(200, NULL, LISTS_PAGE);
}

static void test_429_waits_retry_after(void **state)
{
    struct fx *f = *state;
    klaviyo_client *c = client_for(f, h_429_then_200);
    const char *body = "{\"data\":{\"type\":\"list\",\"attributes\":{\"name\":\"N\"}}}";
    /* A POST: a throttled request was not processed, so it may go again. */
    struct klaviyo_request rq = {.method = "POST",
                                 .target = "/api/lists",
                                 .body = body,
                                 .body_len = strlen(body),
                                 .write_authorization = "step"};
    struct klaviyo_result res;
    assert_int_equal(klaviyo_call(c, &rq, &res), CAD_OK);
    assert_int_equal(res.attempts, 2);
    assert_int_equal(res.throttled, 1);
    klaviyo_result_clear(&res);
    assert_int_equal(srv_count(&f->srv), 2);
    assert_true(f->srv.reqs[1].at_ms - f->srv.reqs[0].at_ms >= 1000);
    klaviyo_client_free(c);
    struct trail t;
    trail_get(f, &t);
    assert_int_equal(t.n, 2);
    assert_int_equal(t.status[0], 429);
    assert_int_equal(t.status[1], 200);
}

/* ---- 401, 403 ---- */

static char *h_401_always(struct srv *s, const struct req *r, int n)
{
    (void)s;
    (void)r;
    (void)n;
    return japi_error(401, "not_authenticated", "Incorrect authentication credentials.");
}

static char *h_401_once(struct srv *s, const struct req *r, int n)
{
    (void)s;
    (void)r;
    if (n == 0)
        return japi_error(401, "not_authenticated", "Incorrect authentication credentials.");
    return japi(200, NULL, "{\"data\":[{\"type\":\"account\",\"id\":\"AbC123\"}]}");
}

static void test_401_confirmed_is_revoked(void **state)
{
    struct fx *f = *state;
    klaviyo_client *c = client_for(f, h_401_always);
    struct klaviyo_request rq = {.method = "GET", .target = "/api/lists"};
    struct klaviyo_result res;
    assert_int_equal(klaviyo_call(c, &rq, &res), CAD_EAUTH);
    assert_int_equal(res.outcome, KLAVIYO_OUT_REVOKED);
    assert_int_equal(res.attempts, 2);
    assert_int_equal(res.http_status, 401);
    assert_string_equal(res.error.code, "not_authenticated");
    klaviyo_result_clear(&res);
    assert_int_equal(srv_count(&f->srv), 2);
    assert_string_equal(f->srv.reqs[1].method, "GET");
    assert_string_equal(f->srv.reqs[1].target, "/api/accounts");
    /* After a confirmed revocation nothing more is sent with the key. */
    assert_int_equal(klaviyo_call(c, &rq, &res), CAD_EAUTH);
    assert_int_equal(res.outcome, KLAVIYO_OUT_REVOKED);
    klaviyo_result_clear(&res);
    assert_int_equal(srv_count(&f->srv), 2);
    klaviyo_client_free(c);
    struct trail t;
    trail_get(f, &t);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.endpoint[1], "/api/accounts");
}

static void test_401_not_confirmed(void **state)
{
    struct fx *f = *state;
    klaviyo_client *c = client_for(f, h_401_once);
    struct klaviyo_request rq = {.method = "GET", .target = "/api/lists"};
    struct klaviyo_result res;
    assert_int_equal(klaviyo_call(c, &rq, &res), CAD_EAUTH);
    assert_int_equal(res.outcome, KLAVIYO_OUT_AUTH_FAILED_ONCE);
    klaviyo_result_clear(&res);
    assert_int_equal(srv_count(&f->srv), 2);
    klaviyo_client_free(c);
}

static char *h_403_json(struct srv *s, const struct req *r, int n)
{
    (void)s;
    (void)r;
    (void)n;
    return japi_error(403, "permission_denied",
                      "You do not have permission to perform this action.");
}

static void test_403_json_names_scope(void **state)
{
    struct fx *f = *state;
    klaviyo_client *c = client_for(f, h_403_json);
    struct klaviyo_request rq = {.method = "GET", .target = "/api/segments/S1"};
    struct klaviyo_result res;
    assert_int_equal(klaviyo_call(c, &rq, &res), CAD_EREMOTE);
    assert_int_equal(res.outcome, KLAVIYO_OUT_MISSING_SCOPE);
    assert_string_equal(res.scopes_needed, "segments:read");
    assert_non_null(strstr(res.message, "segments:read"));
    assert_int_equal(res.attempts, 1);
    klaviyo_result_clear(&res);
    klaviyo_client_free(c);
}

static char *h_403_html(struct srv *s, const struct req *r, int n)
{
    (void)s;
    (void)r;
    (void)n;
    return response(403, "cf-mitigated: challenge\r\n", "text/html; charset=UTF-8",
                    "<!DOCTYPE html><html><title>Just a moment...</title></html>");
}

static void test_403_html_challenge_transient(void **state)
{
    struct fx *f = *state;
    klaviyo_client *c = client_for(f, h_403_html);
    struct klaviyo_request rq = {.method = "GET", .target = "/api/lists"};
    struct klaviyo_result res;
    assert_int_equal(klaviyo_call(c, &rq, &res), CAD_ENET);
    assert_int_equal(res.outcome, KLAVIYO_OUT_TRANSIENT);
    assert_int_equal(res.last_class, KLAVIYO_CLASS_CHALLENGE);
    assert_int_equal(res.attempts, 3);
    klaviyo_result_clear(&res);
    klaviyo_client_free(c);
}

static char *h_400(struct srv *s, const struct req *r, int n)
{
    (void)s;
    (void)r;
    (void)n;
    return japi_error(400, "invalid", "'name' is required.");
}

static void test_400_permanent_with_detail(void **state)
{
    struct fx *f = *state;
    klaviyo_client *c = client_for(f, h_400);
    const char *body = "{\"data\":{\"type\":\"list\",\"attributes\":{}}}";
    struct klaviyo_request rq = {.method = "POST",
                                 .target = "/api/lists",
                                 .body = body,
                                 .body_len = strlen(body),
                                 .write_authorization = "step"};
    struct klaviyo_result res;
    assert_int_equal(klaviyo_call(c, &rq, &res), CAD_EREMOTE);
    assert_int_equal(res.outcome, KLAVIYO_OUT_PERMANENT);
    assert_non_null(strstr(res.message, "'name' is required."));
    assert_int_equal(res.attempts, 1);
    klaviyo_result_clear(&res);
    klaviyo_client_free(c);
}

static char *h_created(struct srv *s, const struct req *r, int n)
{
    (void)s;
    (void)r;
    (void)n;
    return japi(201, NULL, "{\"data\":{\"type\":\"image\",\"id\":\"7\"}}");
}

static void test_multipart_image_upload(void **state)
{
    struct fx *f = *state;
    klaviyo_client *c = client_for(f, h_created);
    const char *body = "--b0undary\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nlogo\r\n"
                       "--b0undary--\r\n";
    struct klaviyo_request rq = {.method = "POST",
                                 .target = "/api/image-upload",
                                 .body = body,
                                 .body_len = strlen(body),
                                 .write_authorization = "step",
                                 .content_type = "multipart/form-data; boundary=b0undary"};
    struct klaviyo_result res;
    assert_int_equal(klaviyo_call(c, &rq, &res), CAD_OK);
    assert_int_equal(res.http_status, 201);
    klaviyo_result_clear(&res);
    const char *h = f->srv.reqs[0].headers;
    assert_non_null(strstr(h, "Content-Type: multipart/form-data; boundary=b0undary\r\n"));
    int ctypes = 0;
    for (const char *p = strstr(h, "Content-Type:"); p; p = strstr(p + 1, "Content-Type:"))
        ctypes++;
    assert_int_equal(ctypes, 1);
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Klaviyo-API-Key %s\r\n", f->keytext);
    assert_non_null(strstr(h, auth));
    assert_string_equal(f->srv.reqs[0].body, body);
    /* Anything else as a content type is refused unsent. */
    rq.content_type = "text/plain\r\nX-Evil: 1";
    assert_int_equal(klaviyo_call(c, &rq, &res), CAD_EINVAL);
    klaviyo_result_clear(&res);
    rq.content_type = "application/json";
    assert_int_equal(klaviyo_call(c, &rq, &res), CAD_EINVAL);
    klaviyo_result_clear(&res);
    assert_int_equal(srv_count(&f->srv), 1);
    klaviyo_client_free(c);
}

/* A hostile or buggy answer that echoes the key: it must not reach the audit log, the log or
 * the message shown to people (the teardown scans the database and the log). */
static char *h_echo_key(struct srv *s, const struct req *r, int n)
{
    (void)r;
    (void)n;
    char detail[256];
    snprintf(detail, sizeof detail, "bad key %s", (const char *)s->ctx);
    return japi_error(400, "invalid", detail);
}

static void test_echoed_key_is_masked(void **state)
{
    struct fx *f = *state;
    klaviyo_client *c = client_for(f, h_echo_key);
    f->srv.ctx = f->keytext;
    struct klaviyo_request rq = {.method = "GET", .target = "/api/lists"};
    struct klaviyo_result res;
    assert_int_equal(klaviyo_call(c, &rq, &res), CAD_EREMOTE);
    assert_null(strstr(res.message, f->keytext + 3));
    assert_non_null(strstr(res.message, "bad key pk_"));
    assert_null(strstr(cad_errmsg(), f->keytext + 3));
    klaviyo_result_clear(&res);
    klaviyo_client_free(c);
    struct trail t;
    trail_get(f, &t);
    assert_int_equal(t.n, 1);
    assert_null(strstr(t.detail[0], f->keytext + 3));
}

/* ---- the write guard and refusals ---- */

static void test_write_guard_refuses_without_network(void **state)
{
    struct fx *f = *state;
    klaviyo_client *c = client_for(f, h_503_then_200);
    const char *body = "{\"data\":{\"type\":\"list\",\"attributes\":{\"name\":\"X\"}}}";
    const char *methods[] = {"POST", "PATCH", "DELETE"};
    const char *targets[] = {"/api/lists", "/api/lists/L1", "/api/lists/L1"};
    for (int i = 0; i < 3; i++) {
        struct klaviyo_request rq = {.method = methods[i],
                                     .target = targets[i],
                                     .body = i < 2 ? body : NULL,
                                     .body_len = i < 2 ? strlen(body) : 0};
        struct klaviyo_result res;
        assert_int_equal(klaviyo_call(c, &rq, &res), CAD_EPERM);
        assert_int_equal(res.outcome, KLAVIYO_OUT_REFUSED);
        assert_non_null(strstr(res.message, "confirmed plan"));
        klaviyo_result_clear(&res);
        rq.write_authorization = "";
        assert_int_equal(klaviyo_submit(c, &rq, NULL, NULL), CAD_EPERM);
    }
    assert_int_equal(klaviyo_pending(c), 0);
    assert_int_equal(klaviyo_run(c, 100), CAD_OK);
    /* Not a Klaviyo operation, or another host: refused too. */
    struct klaviyo_request bad[] = {
        {.method = "GET", .target = "/api/no-such-thing"},
        {.method = "GET", .target = "/api/../etc/passwd"},
        {.method = "GET", .target = "http://127.0.0.2:1/api/lists"},
        {.method = "PUT", .target = "/api/lists"},
        {.method = "GET", .target = "/api/lists\r\nX: y"},
        {.method = "GET", .target = "/api/lists?page%5Bsize%5D=11"},
        {.method = "GET", .target = "/api/templates?filter=x&page[size]=50"},
        {.method = "GET", .target = "/api/flows?page%5bsize%5d=0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct klaviyo_result res;
        assert_int_not_equal(klaviyo_call(c, &bad[i], &res), CAD_OK);
        klaviyo_result_clear(&res);
    }
    usleep(100 * 1000);
    assert_int_equal(srv_count(&f->srv), 0);
    assert_int_equal(f->srv.conns_accepted, 0);
    klaviyo_client_free(c);
    struct trail t;
    trail_get(f, &t);
    assert_int_equal(t.n, 0);
}

/* ---- pagination ---- */

static char *h_pages(struct srv *s, const struct req *r, int n)
{
    (void)n;
    char body[1024];
    if (strstr(r->target, "cursor%5D=p2"))
        snprintf(body, sizeof body,
                 "{\"data\":[{\"type\":\"list\",\"id\":\"L2\"}],\"links\":{\"self\":\"s\","
                 "\"next\":\"http://127.0.0.1:%d/api/lists?page%%5Bcursor%%5D=p3\"},\"x\":1}",
                 s->port);
    else if (strstr(r->target, "cursor%5D=p3"))
        snprintf(body, sizeof body,
                 "{\"data\":[{\"type\":\"list\",\"id\":\"L3\"}],\"links\":{\"self\":\"s\"}}");
    else if (strstr(r->target, "evil"))
        snprintf(body, sizeof body,
                 "{\"data\":[],\"links\":{\"next\":\"http://127.0.0.2:%d/api/lists?x=1\"}}",
                 s->port);
    else
        snprintf(body, sizeof body,
                 "{\"data\":[{\"type\":\"list\",\"id\":\"L1\"}],\"links\":{\"self\":\"s\","
                 "\"next\":\"http://127.0.0.1:%d/api/lists?page%%5Bcursor%%5D=p2\","
                 "\"prev\":null},\"meta\":{\"agent_hints\":{}}}",
                 s->port);
    return japi(200, NULL, body);
}

static void test_pagination_follows_next(void **state)
{
    struct fx *f = *state;
    klaviyo_client *c = client_for(f, h_pages);
    struct klaviyo_pager p;
    assert_int_equal(klaviyo_pager_init(&p, c, "/api/lists?page%5Bsize%5D=1"), CAD_OK);
    const char *ids[] = {"L1", "L2", "L3"};
    struct klaviyo_result res;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(klaviyo_pager_next(&p, &res), 1);
        assert_string_equal(json_string_value(json_object_get(
                                json_array_get(json_object_get(res.doc, "data"), 0), "id")),
                            ids[i]);
        klaviyo_result_clear(&res);
    }
    assert_int_equal(klaviyo_pager_next(&p, &res), 0);
    assert_int_equal(p.pages, 3);
    klaviyo_pager_free(&p);
    assert_int_equal(srv_count(&f->srv), 3);
    assert_string_equal(f->srv.reqs[1].target, "/api/lists?page%5Bcursor%5D=p2");

    /* A links.next on another host is refused before anything is sent there. */
    assert_int_equal(klaviyo_pager_init(&p, c, "/api/lists?evil=1"), CAD_OK);
    assert_int_equal(klaviyo_pager_next(&p, &res), CAD_EPERM);
    assert_int_equal(res.outcome, KLAVIYO_OUT_REFUSED);
    assert_non_null(strstr(res.message, "another host"));
    klaviyo_result_clear(&res);
    assert_int_equal(klaviyo_pager_next(&p, &res), 0);
    klaviyo_pager_free(&p);
    assert_int_equal(srv_count(&f->srv), 4);
    klaviyo_client_free(c);
}

/* ---- unreachable, timeouts ---- */

static void test_unreachable_and_timeouts(void **state)
{
    struct fx *f = *state;
    klaviyo_client *c = client_for(f, h_503_then_200);
    klaviyo_client_free(c);
    /* A port nobody listens on. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    struct klaviyo_config cfg = f->cfg;
    snprintf(cfg.base_url, sizeof cfg.base_url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    assert_int_equal(klaviyo_client_new(&c, f->st, "acme", "system", f->key, &cfg), CAD_OK);
    struct klaviyo_request rq = {.method = "GET", .target = "/api/lists"};
    struct klaviyo_result res;
    assert_int_equal(klaviyo_call(c, &rq, &res), CAD_ENET);
    assert_int_equal(res.outcome, KLAVIYO_OUT_UNREACHABLE);
    assert_int_equal(res.attempts, 3);
    klaviyo_result_clear(&res);
    /* A POST that never left is retried and ends unreachable, not unknown. */
    const char *body = "{\"data\":{\"type\":\"list\",\"attributes\":{\"name\":\"X\"}}}";
    struct klaviyo_request post = {.method = "POST",
                                   .target = "/api/lists",
                                   .body = body,
                                   .body_len = strlen(body),
                                   .write_authorization = "step"};
    assert_int_equal(klaviyo_call(c, &post, &res), CAD_ENET);
    assert_int_equal(res.outcome, KLAVIYO_OUT_UNREACHABLE);
    assert_int_equal(res.attempts, 3);
    klaviyo_result_clear(&res);
    klaviyo_client_free(c);
    struct trail t;
    trail_get(f, &t);
    assert_int_equal(t.n, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(t.status[i], 0);
        assert_true(t.detail[i][0] != '\0');
    }

    /* A slow server: a GET times out and is retried; a POST that times out is unknown. */
    f->srv.delay_ms = 400;
    cfg = f->cfg;
    cfg.timeout_ms = 150;
    cfg.max_attempts = 2;
    assert_int_equal(klaviyo_client_new(&c, f->st, "acme", "system", f->key, &cfg), CAD_OK);
    assert_int_equal(klaviyo_call(c, &post, &res), CAD_EUNKNOWN);
    assert_int_equal(res.attempts, 1);
    klaviyo_result_clear(&res);
    usleep(600 * 1000);
    assert_int_equal(srv_count(&f->srv), 1);
    assert_int_equal(klaviyo_call(c, &rq, &res), CAD_ENET);
    assert_int_equal(res.attempts, 2);
    klaviyo_result_clear(&res);
    klaviyo_client_free(c);
}

/* ---- async: many calls, callbacks, bounded in flight ---- */

static void count_done(void *ctx, const struct klaviyo_result *r)
{
    int *n = ctx;
    if (r->outcome == KLAVIYO_OUT_OK)
        (*n)++;
}

static char *h_ok(struct srv *s, const struct req *r, int n)
{
    (void)s;
    (void)r;
    (void)n;
    return japi(200, "RateLimit-Limit: 750\r\nRateLimit-Remaining: 700\r\nRateLimit-Reset: 30\r\n",
                LISTS_PAGE);
}

static void test_async_many(void **state)
{
    struct fx *f = *state;
    klaviyo_client *c = client_for(f, h_ok);
    int ok = 0;
    for (int i = 0; i < 20; i++) {
        struct klaviyo_request rq = {.method = "GET", .target = "/api/lists"};
        assert_int_equal(klaviyo_submit(c, &rq, count_done, &ok), CAD_OK);
    }
    assert_int_equal(klaviyo_pending(c), 20);
    assert_int_equal(klaviyo_run(c, -1), CAD_OK);
    assert_int_equal(ok, 20);
    assert_int_equal(klaviyo_pending(c), 0);
    struct klaviyo_quota q;
    assert_int_equal(klaviyo_quota(c, "get_lists", &q), CAD_OK);
    assert_true(q.steady_remaining <= 750 - 20);
    assert_int_equal(q.daily_remaining, -1);
    assert_int_equal(klaviyo_quota(c, "no_such_op", &q), CAD_ENOTFOUND);
    klaviyo_client_free(c);
    struct trail t;
    trail_get(f, &t);
    assert_int_equal(t.n, 20);
}

static void count_refused(void *ctx, const struct klaviyo_result *r)
{
    int *n = ctx;
    if (r->outcome == KLAVIYO_OUT_REFUSED &&
        strstr(r->message, "audit record could not be written"))
        (*n)++;
}

/* The intents of one dispatch pass are committed together before any of them is sent: when that
 * commit fails, none of the batch leaves. */
static void test_failed_intent_batch_sends_nothing(void **state)
{
    struct fx *f = *state;
    klaviyo_client *c = client_for(f, h_ok);
    assert_int_equal(store_exec(f->st,
                                "CREATE TRIGGER no_audit BEFORE INSERT ON audit_log "
                                "BEGIN SELECT RAISE(ABORT, 'the disk is full'); END",
                                NULL, 0),
                     CAD_OK);
    int refused = 0, ok = 0;
    for (int i = 0; i < 4; i++) {
        struct klaviyo_request rq = {.method = "GET", .target = "/api/lists"};
        assert_int_equal(klaviyo_submit(c, &rq, count_refused, &refused), CAD_OK);
    }
    assert_int_equal(klaviyo_run(c, -1), CAD_OK);
    assert_int_equal(refused, 4);
    assert_int_equal(srv_count(&f->srv), 0);
    assert_int_equal(store_exec(f->st, "DROP TRIGGER no_audit", NULL, 0), CAD_OK);
    for (int i = 0; i < 6; i++) {
        struct klaviyo_request rq = {.method = "GET", .target = "/api/lists"};
        assert_int_equal(klaviyo_submit(c, &rq, count_done, &ok), CAD_OK);
    }
    assert_int_equal(klaviyo_run(c, -1), CAD_OK);
    assert_int_equal(ok, 6);
    assert_int_equal(srv_count(&f->srv), 6);
    klaviyo_client_free(c);
    struct trail t;
    trail_get(f, &t);
    assert_int_equal(t.n, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(t.status[i], 200);
    struct audit_verify_result v;
    assert_int_equal(audit_verify(f->st, &v), CAD_OK);
}

/* ---- concurrency: one re-check for many 401s; pacing by the rate limiter ---- */

struct outcome_count {
    int revoked, other;
};

static void note_outcome(void *ctx, const struct klaviyo_result *r)
{
    struct outcome_count *o = ctx;
    if (r->outcome == KLAVIYO_OUT_REVOKED)
        o->revoked++;
    else
        o->other++;
}

static void test_many_401s_one_recheck(void **state)
{
    struct fx *f = *state;
    klaviyo_client *c = client_for(f, h_401_always);
    struct outcome_count o = {0};
    const char *targets[] = {"/api/lists", "/api/segments", "/api/templates",
                             "/api/tags",  "/api/flows",    "/api/forms"};
    for (int i = 0; i < 6; i++) {
        struct klaviyo_request rq = {.method = "GET", .target = targets[i]};
        assert_int_equal(klaviyo_submit(c, &rq, note_outcome, &o), CAD_OK);
    }
    assert_int_equal(klaviyo_run(c, -1), CAD_OK);
    assert_int_equal(o.revoked, 6);
    assert_int_equal(o.other, 0);
    int accounts = 0;
    for (int i = 0; i < srv_count(&f->srv); i++)
        accounts += strcmp(f->srv.reqs[i].target, "/api/accounts") == 0;
    assert_int_equal(accounts, 1);
    /* At most max_in_flight (4) went out before the revocation was known; the rest never. */
    assert_true(srv_count(&f->srv) <= 4 + 1);
    klaviyo_client_free(c);
}

static void test_rate_limiter_paces(void **state)
{
    struct fx *f = *state;
    klaviyo_client *c = client_for(f, h_ok);
    int ok = 0;
    /* GET /api/webhooks is limited to 1 per second (burst): three take two seconds at least. */
    for (int i = 0; i < 3; i++) {
        struct klaviyo_request rq = {.method = "GET", .target = "/api/webhooks"};
        assert_int_equal(klaviyo_submit(c, &rq, count_done, &ok), CAD_OK);
    }
    assert_int_equal(klaviyo_run(c, -1), CAD_OK);
    assert_int_equal(ok, 3);
    assert_int_equal(srv_count(&f->srv), 3);
    for (int i = 1; i < 3; i++)
        assert_true(f->srv.reqs[i].at_ms - f->srv.reqs[i - 1].at_ms >= 1000);
    klaviyo_client_free(c);
}

static void test_shared_rate_limiter(void **state)
{
    struct fx *f = *state;
    klaviyo_client *a = client_for(f, h_ok);
    klaviyo_client_free(a);
    ratelimit *rl;
    assert_int_equal(ratelimit_new(&rl, RATELIMIT_DEFAULT_MARGIN_MS), CAD_OK);
    struct klaviyo_config cfg = f->cfg;
    cfg.shared_ratelimit = rl;
    klaviyo_client *b;
    assert_int_equal(klaviyo_client_new(&a, f->st, "acme", "system", f->key, &cfg), CAD_OK);
    assert_int_equal(klaviyo_client_new(&b, f->st, "acme", "system", f->key, &cfg), CAD_OK);
    struct klaviyo_request rq = {.method = "GET", .target = "/api/webhooks"};
    struct klaviyo_result res;
    assert_int_equal(klaviyo_call(a, &rq, &res), CAD_OK);
    klaviyo_result_clear(&res);
    assert_int_equal(klaviyo_call(b, &rq, &res), CAD_OK); /* the same 1/s budget */
    klaviyo_result_clear(&res);
    assert_int_equal(srv_count(&f->srv), 2);
    assert_true(f->srv.reqs[1].at_ms - f->srv.reqs[0].at_ms >= 1000);
    klaviyo_client_free(a);
    klaviyo_client_free(b);
    ratelimit_free(rl);
}

static void call_inside(void *ctx, const struct klaviyo_result *r)
{
    (void)r;
    klaviyo_client *c = ctx;
    struct klaviyo_request rq = {.method = "GET", .target = "/api/lists"};
    struct klaviyo_result inner;
    assert_int_equal(klaviyo_call(c, &rq, &inner), CAD_ESTATE);
    assert_int_equal(klaviyo_run(c, 0), CAD_ESTATE);
    klaviyo_result_clear(&inner);
    /* Submitting from a callback is how a plan chains its steps. */
    assert_int_equal(klaviyo_submit(c, &rq, NULL, NULL), CAD_OK);
}

static void test_callback_rules(void **state)
{
    struct fx *f = *state;
    klaviyo_client *c = client_for(f, h_ok);
    struct klaviyo_request rq = {.method = "GET", .target = "/api/lists"};
    assert_int_equal(klaviyo_submit(c, &rq, call_inside, c), CAD_OK);
    assert_int_equal(klaviyo_run(c, -1), CAD_OK);
    assert_int_equal(srv_count(&f->srv), 2);
    klaviyo_client_free(c);
}

/* ---- verification ---- */

static char *h_verify(struct srv *s, const struct req *r, int n)
{
    (void)s;
    (void)n;
    if (strncmp(r->target, "/api/accounts", 13) == 0)
        return japi(200, NULL,
                    "{\"data\":[{\"type\":\"account\",\"id\":\"AbC123\",\"attributes\":{"
                    "\"test_account\":false,\"contact_information\":{\"organization_name\":"
                    "\"Acme Outdoors\",\"default_sender_name\":\"A\"},\"timezone\":\"US/Eastern\","
                    "\"preferred_currency\":\"USD\",\"public_api_key\":\"AbC123\",\"new\":1}}],"
                    "\"links\":{\"self\":\"x\",\"next\":null}}");
    if (strncmp(r->target, "/api/forms", 10) == 0 || strncmp(r->target, "/api/tags", 9) == 0)
        return japi_error(403, "permission_denied", "no");
    return japi(200, NULL, "{\"data\":[],\"links\":{\"self\":\"x\"}}");
}

static void test_verify_missing_scopes(void **state)
{
    struct fx *f = *state;
    klaviyo_client *c = client_for(f, h_verify);
    klaviyo_client_free(c);
    struct klaviyo_verify_result r;
    assert_int_equal(klaviyo_verify_key(f->st, &f->cfg, "acme", "client", f->key, &r), CAD_EPERM);
    assert_int_equal(r.status, KLAVIYO_VERIFY_MISSING_SCOPES);
    assert_string_equal(r.account_id, "AbC123");
    assert_string_equal(r.organization_name, "Acme Outdoors");
    assert_string_equal(r.timezone, "US/Eastern");
    assert_string_equal(r.currency, "USD");
    assert_string_equal(r.public_key, "AbC123");
    assert_string_equal(r.missing, "forms, tags");
    assert_int_equal(r.scopes[0].read, KLAVIYO_READ_OK);
    assert_int_equal(r.scopes[6].read, KLAVIYO_READ_MISSING);
    assert_int_equal(srv_count(&f->srv), 13);
    /* The cheap reads: page[size]=1 where paging exists, the campaign channel filter, none for
     * webhooks. */
    bool saw_campaigns = false, saw_webhooks = false;
    for (int i = 0; i < 13; i++) {
        const char *t = f->srv.reqs[i].target;
        if (strncmp(t, "/api/campaigns", 14) == 0) {
            saw_campaigns = true;
            assert_non_null(strstr(t, "filter=equals%28messages.channel%2C%22email%22%29"));
            assert_non_null(strstr(t, "page%5Bsize%5D=1"));
        }
        if (strncmp(t, "/api/webhooks", 13) == 0) {
            saw_webhooks = true;
            assert_string_equal(t, "/api/webhooks");
        }
    }
    assert_true(saw_campaigns && saw_webhooks);
    char *json = klaviyo_verify_scopes_json(&r);
    assert_non_null(strstr(json, "\"forms\":{\"read\":\"missing\""));
    assert_non_null(
        strstr(json, "\"lists\":{\"read\":\"ok\",\"write\":\"confirmed on first write\"}"));
    free(json);
    struct trail t;
    trail_get(f, &t);
    assert_int_equal(t.n, 13);
}

static char *h_verify_ok(struct srv *s, const struct req *r, int n)
{
    if (strncmp(r->target, "/api/forms", 10) == 0 || strncmp(r->target, "/api/tags", 9) == 0)
        return japi(200, NULL, "{\"data\":[],\"links\":{\"self\":\"x\"}}");
    return h_verify(s, r, n);
}

static void test_verify_outcomes(void **state)
{
    struct fx *f = *state;
    klaviyo_client *c = client_for(f, h_verify_ok);
    klaviyo_client_free(c);
    struct klaviyo_verify_result r;
    assert_int_equal(klaviyo_verify_key(f->st, &f->cfg, "acme", "client", f->key, &r), CAD_OK);
    assert_int_equal(r.status, KLAVIYO_VERIFY_OK);
    assert_string_equal(r.message, "Verified: Acme Outdoors (account AbC123)");
    for (int i = 0; i < KLAVIYO_SCOPE_FAMILIES; i++)
        assert_int_equal(r.scopes[i].read, KLAVIYO_READ_OK);

    /* Format first: nothing is sent for a malformed key. */
    int before = srv_count(&f->srv);
    cad_secret *bad;
    assert_int_equal(secret_from(&bad, "AbC123", 6), CAD_OK);
    assert_int_equal(klaviyo_verify_key(f->st, &f->cfg, "acme", "client", bad, &r), CAD_EINVAL);
    assert_int_equal(r.status, KLAVIYO_VERIFY_BAD_FORMAT);
    struct keyfmt_result fmt;
    keyfmt_check("AbC123", 6, &fmt);
    assert_int_equal(fmt.verdict, KEYFMT_PUBLIC_KEY);
    assert_string_equal(r.message, fmt.message);
    secret_free(bad);
    assert_int_equal(srv_count(&f->srv), before);

    /* Rejected, confirmed. */
    f->srv.handler = h_401_always;
    assert_int_equal(klaviyo_verify_key(f->st, &f->cfg, "acme", "client", f->key, &r), CAD_EAUTH);
    assert_int_equal(r.status, KLAVIYO_VERIFY_REJECTED);
    assert_non_null(strstr(r.message, "wrong or was revoked"));

    /* A CDN challenge: transient, says nothing about the key. */
    f->srv.handler = h_403_html;
    assert_int_equal(klaviyo_verify_key(f->st, &f->cfg, "acme", "client", f->key, &r), CAD_ENET);
    assert_int_equal(r.status, KLAVIYO_VERIFY_CHALLENGE);

    /* Unreachable. */
    srv_stop(&f->srv);
    f->srv_running = false;
    assert_int_equal(klaviyo_verify_key(f->st, &f->cfg, "acme", "client", f->key, &r), CAD_ENET);
    assert_int_equal(r.status, KLAVIYO_VERIFY_UNREACHABLE);
    assert_non_null(strstr(r.message, "not marked invalid"));
}

static void test_config_from_env(void **state)
{
    (void)state;
    struct klaviyo_config cfg;
    unsetenv("CADENCE_KLAVIYO_URL");
    unsetenv("CADENCE_KLAVIYO_TIMEOUT_MS");
    unsetenv("CADENCE_KLAVIYO_CONNECT_TIMEOUT_MS");
    unsetenv("CADENCE_KLAVIYO_RATE_SCALE");
    assert_int_equal(klaviyo_config_from_env(&cfg), CAD_OK);
    assert_string_equal(cfg.base_url, KLAVIYO_DEFAULT_BASE_URL);
    assert_true(cfg.rate_scale == 1.0);
    setenv("CADENCE_KLAVIYO_URL", "http://127.0.0.1:9999/", 1);
    setenv("CADENCE_KLAVIYO_TIMEOUT_MS", "1234", 1);
    setenv("CADENCE_KLAVIYO_CONNECT_TIMEOUT_MS", "55", 1);
    setenv("CADENCE_KLAVIYO_RATE_SCALE", "20", 1);
    assert_int_equal(klaviyo_config_from_env(&cfg), CAD_OK);
    assert_string_equal(cfg.base_url, "http://127.0.0.1:9999");
    assert_int_equal(cfg.timeout_ms, 1234);
    assert_int_equal(cfg.connect_timeout_ms, 55);
    assert_true(cfg.rate_scale == 20.0);
    const char *bad_urls[] = {"http://example.com", "https://a.klaviyo.com/api",
                              "https://u:p@a.klaviyo.com", "not a url", "ftp://a.klaviyo.com"};
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        setenv("CADENCE_KLAVIYO_URL", bad_urls[i], 1);
        assert_int_equal(klaviyo_config_from_env(&cfg), CAD_EINVAL);
    }
    setenv("CADENCE_KLAVIYO_URL", "https://a.klaviyo.com", 1);
    setenv("CADENCE_KLAVIYO_TIMEOUT_MS", "soon", 1);
    assert_int_equal(klaviyo_config_from_env(&cfg), CAD_EINVAL);
    setenv("CADENCE_KLAVIYO_TIMEOUT_MS", "1000", 1);
    setenv("CADENCE_KLAVIYO_RATE_SCALE", "-1", 1);
    assert_int_equal(klaviyo_config_from_env(&cfg), CAD_EINVAL);
    unsetenv("CADENCE_KLAVIYO_URL");
    unsetenv("CADENCE_KLAVIYO_TIMEOUT_MS");
    unsetenv("CADENCE_KLAVIYO_CONNECT_TIMEOUT_MS");
    unsetenv("CADENCE_KLAVIYO_RATE_SCALE");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_503_then_200_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_dropped_is_unknown_and_sent_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_post_on_reused_connection_not_resent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_5xx_is_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_429_waits_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_401_confirmed_is_revoked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_401_not_confirmed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_403_json_names_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_403_html_challenge_transient, setup, teardown),
        cmocka_unit_test_setup_teardown(test_400_permanent_with_detail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multipart_image_upload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_echoed_key_is_masked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_guard_refuses_without_network, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pagination_follows_next, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_and_timeouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_401s_one_recheck, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_intent_batch_sends_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limiter_paces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_rate_limiter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_missing_scopes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_outcomes, setup, teardown),
        cmocka_unit_test(test_config_from_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
