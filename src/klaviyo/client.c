/*
 * The Klaviyo client's engine: a curl multi loop, run in the caller's thread, that paces calls
 * through the rate limiter, audits every attempt write-ahead, and applies klaviyo_classify()'s
 * verdicts (retry after a wait, re-check a 401, or finish).
 *
 * Design choices:
 * - The key lives only in a cad_secret holding the whole "Authorization: ..." header line. The
 *   header lists handed to curl are curl_slist nodes owned by the client (not curl_slist_append
 *   copies), whose data point into that secret, so no heap copy of the key is made by us; the
 *   secret is wiped when the client is freed. CURLOPT_VERBOSE stays off, and curl error strings
 *   (which name hosts, never headers) still go through log_redact before anyone sees them.
 * - A POST body is fed through a read callback whose seek callback refuses to rewind. libcurl
 *   silently re-sends a request on a reused connection that died without an answer; for a POST
 *   that would be a blind retry, so libcurl has to fail instead (CURLE_SEND_FAIL_REWIND) and the
 *   outcome becomes "unknown". PATCH and DELETE bodies rewind: they may be sent again.
 * - Every request must match an operation of Klaviyo's spec (kspec): its rate limits pace it and
 *   its scopes name what a 403 means. A request that matches none is refused unsent.
 * - After a confirmed revocation nothing else is sent with the key: calls still queued finish as
 *   revoked and new ones are refused.
 */
#include "klaviyo/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "klaviyo/ratelimit.h"

#define RESPONSE_MAX   ((size_t)64 * 1024 * 1024)
#define AUTH_PREFIX    "Authorization: Klaviyo-API-Key "
#define HDR_REVISION   "revision: " KLAVIYO_REVISION
#define HDR_ACCEPT     "Accept: application/vnd.api+json"
#define HDR_CTYPE      "Content-Type: application/vnd.api+json"
#define HDR_EXPECT     "Expect:"
#define HDR_USER_AGENT "User-Agent: cadence/" CADENCE_VERSION
#define ACCOUNTS_PATH  "/api/accounts"

enum call_state { CALL_QUEUED, CALL_STARTING, CALL_IN_FLIGHT, CALL_AWAITING_RECHECK };

struct call {
    struct call *next;
    klaviyo_client *c;
    enum call_state state;
    char method[8];
    char *url;
    char *path; /* without query: for the audit record, kspec and messages */
    char *body;
    size_t body_len, body_pos;
    char *actor;
    const struct kspec_op *op;
    klaviyo_done_fn done;
    void *ctx;
    bool is_recheck; /* the GET /api/accounts that confirms or clears a 401 */

    int attempt;
    int64_t not_before_ms;
    int64_t intent_seq;
    int64_t started_ms;
    int64_t sent_rl_ms;    /* the limiter's clock when this attempt was handed to libcurl */
    int64_t granted_rl_ms; /* ... and when the limiter granted it */

    /* The attempt just completed, between drain()'s two passes. */
    struct klaviyo_attempt att;
    int64_t done_ms, duration_ms;
    char detail[AUDIT_DETAIL_MAX];
    CURL *easy;
    char errbuf[CURL_ERROR_SIZE];
    char *ctype_line;             /* "Content-Type: multipart/..." when not JSON:API */
    struct curl_slist hdr_own[6]; /* the client's body headers with that Content-Type */

    /* The current response. */
    char *resp;
    size_t resp_len, resp_cap;
    bool resp_overflow;
    char content_type[128];
    char cf_mitigated[64];
    char request_id[128];
    int64_t retry_after_ms;
    int rl_limit, rl_remaining, rl_reset;

    struct klaviyo_result res; /* filled as attempts complete */
};

struct klaviyo_client {
    store *st;
    char *tenant_id;
    char *actor;
    struct klaviyo_config cfg;
    CURLM *multi;
    ratelimit *rl;
    /* One dispatch pass asks the limiter once per operation: op_pass[i] == pass means operation
     * i said "wait op_wait[i] ms" in this pass. */
    uint64_t pass;
    uint64_t *op_pass;
    int64_t *op_wait;
    struct call **batch;            /* the calls one pass starts, max_in_flight of them */
    struct audit_call *batch_audit; /* their intents */
    struct audit_outcome *outs;     /* the outcomes one drain records */
    struct call **done;             /* ... and their calls */

    cad_secret *auth; /* "Authorization: Klaviyo-API-Key <key>" */
    char h_revision[sizeof HDR_REVISION], h_accept[sizeof HDR_ACCEPT], h_ctype[sizeof HDR_CTYPE],
        h_expect[sizeof HDR_EXPECT], h_agent[sizeof HDR_USER_AGENT];
    struct curl_slist hdr_read[4], hdr_body[6];

    struct call *head, *tail;
    size_t pending, in_flight;
    bool revoked;
    bool recheck_pending; /* a 401 re-check is queued or on the wire */
    bool in_callback;
};

/* snprintf for messages that may be cut short on purpose (bounded fields). */
static void textf(char *out, size_t outsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void textf(char *out, size_t outsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, outsz, fmt, ap);
    va_end(ap);
}

/* ---- configuration ---- */

static int env_long(const char *name, long min, long max, long *out)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return CAD_OK;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || x < min || x > max)
        return cad_fail(CAD_EINVAL, "%s must be a whole number from %ld to %ld", name, min, max);
    *out = x;
    return CAD_OK;
}

static bool host_is_loopback(const char *host)
{
    return strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 ||
           strcmp(host, "::1") == 0 || strncmp(host, "127.", 4) == 0;
}

static int base_url_check(const char *url, char *out, size_t outsz)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *path = NULL, *query = NULL, *user = NULL;
    int rc = CAD_EINVAL;
    if (!u)
        return cad_fail(CAD_ENOMEM, "out of memory");
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        cad_fail(CAD_EINVAL, "CADENCE_KLAVIYO_URL is not a URL");
        goto out;
    }
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    curl_url_get(u, CURLUPART_USER, &user, 0);
    if (user || query || (path && strcmp(path, "/") != 0 && *path)) {
        cad_fail(CAD_EINVAL, "CADENCE_KLAVIYO_URL must be scheme://host[:port] only");
        goto out;
    }
    /* The key goes in a header: over plain http only to this machine. */
    if (strcmp(scheme, "https") != 0 && !(strcmp(scheme, "http") == 0 && host_is_loopback(host))) {
        cad_fail(CAD_EINVAL,
                 "CADENCE_KLAVIYO_URL must be https (plain http is allowed only for a loopback "
                 "address)");
        goto out;
    }
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    if (n >= outsz) {
        cad_fail(CAD_EINVAL, "CADENCE_KLAVIYO_URL is too long");
        goto out;
    }
    memcpy(out, url, n);
    out[n] = '\0';
    rc = CAD_OK;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(path);
    curl_free(query);
    curl_free(user);
    curl_url_cleanup(u);
    return rc;
}

int klaviyo_config_from_env(struct klaviyo_config *out)
{
    memset(out, 0, sizeof *out);
    out->connect_timeout_ms = 10000;
    out->timeout_ms = 60000;
    out->max_in_flight = KLAVIYO_DEFAULT_MAX_IN_FLIGHT;
    out->max_attempts = 5;
    out->backoff_base_ms = 500;
    out->backoff_max_ms = 30000;
    out->max_wait_ms = 600000;
    out->rate_scale = 1.0;
    const char *url = getenv("CADENCE_KLAVIYO_URL");
    int rc = base_url_check(url && *url ? url : KLAVIYO_DEFAULT_BASE_URL, out->base_url,
                            sizeof out->base_url);
    if (rc)
        return rc;
    if ((rc = env_long("CADENCE_KLAVIYO_CONNECT_TIMEOUT_MS", 1, 600000, &out->connect_timeout_ms)))
        return rc;
    if ((rc = env_long("CADENCE_KLAVIYO_TIMEOUT_MS", 1, 3600000, &out->timeout_ms)))
        return rc;
    const char *scale = getenv("CADENCE_KLAVIYO_RATE_SCALE");
    if (scale && *scale) {
        char *end;
        errno = 0;
        double s = strtod(scale, &end);
        if (errno || *end || !(s > 0) || s > 100000)
            return cad_fail(CAD_EINVAL, "CADENCE_KLAVIYO_RATE_SCALE must be a positive number");
        out->rate_scale = s;
    }
    return CAD_OK;
}

const struct klaviyo_config *klaviyo_client_config(const klaviyo_client *c)
{
    return &c->cfg;
}

/* ---- the client ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* The rate limiter's clock: monotonic milliseconds, running rate_scale times faster than real
 * time, so that it keeps step with an emulator's scaled clock (Klaviyo's own limits and the
 * server's header durations then apply as they are). */
static int64_t rl_now(const klaviyo_client *c)
{
    return (int64_t)((double)time_mono_ms() * c->cfg.rate_scale);
}

/* Milliseconds on the limiter's clock (or in the server's header durations) as real ones. */
static int64_t real_ms(const klaviyo_client *c, int64_t rl_ms)
{
    return (int64_t)ceil((double)rl_ms / c->cfg.rate_scale);
}

static void link_headers(struct curl_slist *nodes, char *const *lines, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        nodes[i].data = lines[i];
        nodes[i].next = i + 1 < n ? &nodes[i + 1] : NULL;
    }
}

int klaviyo_client_new(klaviyo_client **out, store *st, const char *tenant_id, const char *actor,
                       const cad_secret *key, const struct klaviyo_config *cfg)
{
    *out = NULL;
    if (!st || !tenant_id || !*tenant_id || !actor || !*actor || !key)
        return cad_fail(CAD_EINVAL, "a Klaviyo client needs a store, a tenant, an actor and a key");
    if (strlen(tenant_id) >= RATELIMIT_MAX_ACCOUNT)
        return cad_fail(CAD_EINVAL, "tenant id too long");
    const unsigned char *k = secret_data(key);
    size_t klen = secret_len(key);
    if (klen == 0)
        return cad_fail(CAD_EINVAL, "the key is empty");
    /* A key is a header value: anything outside visible ASCII could split or bend the header. */
    for (size_t i = 0; i < klen; i++)
        if (k[i] < 0x21 || k[i] > 0x7e)
            return cad_fail(CAD_EINVAL, "the key holds a character a Klaviyo key never has");
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return cad_fail(CAD_EIO, "libcurl could not be initialised");

    klaviyo_client *c = calloc(1, sizeof *c);
    if (!c)
        return cad_fail(CAD_ENOMEM, "out of memory");
    int rc;
    if (cfg)
        c->cfg = *cfg;
    else if ((rc = klaviyo_config_from_env(&c->cfg))) {
        free(c);
        return rc;
    }
    if (c->cfg.max_in_flight < 1)
        c->cfg.max_in_flight = 1;
    if (c->cfg.max_in_flight > KLAVIYO_MAX_IN_FLIGHT)
        c->cfg.max_in_flight = KLAVIYO_MAX_IN_FLIGHT;
    if (c->cfg.max_attempts < 1)
        c->cfg.max_attempts = 1;
    if (!(c->cfg.rate_scale > 0))
        c->cfg.rate_scale = 1.0;
    c->st = st;
    c->tenant_id = strdup(tenant_id);
    c->actor = strdup(actor);
    if (!c->tenant_id || !c->actor) {
        rc = cad_fail(CAD_ENOMEM, "out of memory");
        goto fail;
    }
    if (c->cfg.shared_ratelimit) {
        c->rl = c->cfg.shared_ratelimit;
    } else {
        /* The margin absorbs network jitter, which is real time: on the scaled clock it is
         * rate_scale times longer. */
        double margin = RATELIMIT_DEFAULT_MARGIN_MS * c->cfg.rate_scale;
        if ((rc = ratelimit_new(&c->rl, margin > RATELIMIT_MAX_MARGIN_MS ? RATELIMIT_MAX_MARGIN_MS
                                                                         : (int)margin)))
            goto fail;
        ratelimit_probe_first(c->rl, true);
    }
    size_t mif = (size_t)c->cfg.max_in_flight;
    c->op_pass = calloc(kspec_ops_count, sizeof *c->op_pass);
    c->op_wait = calloc(kspec_ops_count, sizeof *c->op_wait);
    c->batch = calloc(mif, sizeof(struct call *));
    c->batch_audit = calloc(mif, sizeof *c->batch_audit);
    c->outs = calloc(mif, sizeof *c->outs);
    c->done = calloc(mif, sizeof(struct call *));
    if (!c->op_pass || !c->op_wait || !c->batch || !c->batch_audit || !c->outs || !c->done) {
        rc = cad_fail(CAD_ENOMEM, "out of memory");
        goto fail;
    }
    size_t plen = strlen(AUTH_PREFIX);
    if ((rc = secret_new(&c->auth, plen + klen)))
        goto fail;
    memcpy(secret_data_mut(c->auth), AUTH_PREFIX, plen);
    memcpy(secret_data_mut(c->auth) + plen, k, klen);
    memcpy(c->h_revision, HDR_REVISION, sizeof HDR_REVISION);
    memcpy(c->h_accept, HDR_ACCEPT, sizeof HDR_ACCEPT);
    memcpy(c->h_ctype, HDR_CTYPE, sizeof HDR_CTYPE);
    memcpy(c->h_expect, HDR_EXPECT, sizeof HDR_EXPECT);
    memcpy(c->h_agent, HDR_USER_AGENT, sizeof HDR_USER_AGENT);
    char *auth_line = (char *)secret_data_mut(c->auth);
    char *const read_lines[] = {auth_line, c->h_revision, c->h_accept, c->h_agent};
    char *const body_lines[] = {auth_line,  c->h_revision, c->h_accept,
                                c->h_ctype, c->h_expect,   c->h_agent};
    link_headers(c->hdr_read, read_lines, CAD_ARRAY_LEN(read_lines));
    link_headers(c->hdr_body, body_lines, CAD_ARRAY_LEN(body_lines));

    if (!(c->multi = curl_multi_init())) {
        rc = cad_fail(CAD_ENOMEM, "curl_multi_init failed");
        goto fail;
    }
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)c->cfg.max_in_flight);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)c->cfg.max_in_flight);
    *out = c;
    return CAD_OK;
fail:
    klaviyo_client_free(c);
    return rc;
}

static void call_free(struct call *call)
{
    if (!call)
        return;
    if (call->easy) {
        curl_multi_remove_handle(call->c->multi, call->easy);
        curl_easy_cleanup(call->easy);
    }
    klaviyo_result_clear(&call->res);
    free(call->url);
    free(call->path);
    free(call->body);
    free(call->actor);
    free(call->resp);
    free(call->ctype_line);
    free(call);
}

void klaviyo_client_free(klaviyo_client *c)
{
    if (!c)
        return;
    struct call *call = c->head;
    while (call) {
        struct call *next = call->next;
        /* A request on the wire gets its outcome recorded as abandoned, not left open. */
        if (call->state == CALL_IN_FLIGHT) {
            audit_call_end(c->st, call->intent_seq, 0, time_mono_ms() - call->started_ms, NULL,
                           "abandoned: the client was closed before a response came");
            ratelimit_release(c->rl, c->tenant_id, call->op, rl_now(c));
        }
        call_free(call);
        call = next;
    }
    if (c->multi)
        curl_multi_cleanup(c->multi);
    secret_free(c->auth);
    if (!c->cfg.shared_ratelimit)
        ratelimit_free(c->rl);
    free(c->op_pass);
    free(c->op_wait);
    free(c->batch);
    free(c->batch_audit);
    free(c->outs);
    free(c->done);
    free(c->tenant_id);
    free(c->actor);
    free(c);
}

void klaviyo_result_clear(struct klaviyo_result *r)
{
    if (!r)
        return;
    json_decref(r->doc);
    free(r->body);
    memset(r, 0, sizeof *r);
}

size_t klaviyo_pending(const klaviyo_client *c)
{
    return c->pending;
}

int klaviyo_quota(klaviyo_client *c, const char *operation_id, struct klaviyo_quota *out)
{
    memset(out, 0, sizeof *out);
    const struct kspec_op *op = kspec_by_id(operation_id);
    if (!op)
        return cad_fail(CAD_ENOTFOUND, "Klaviyo has no operation \"%s\"", operation_id);
    return ratelimit_remaining(c->rl, c->tenant_id, op, rl_now(c), &out->burst_remaining,
                               &out->steady_remaining, &out->daily_remaining);
}

/* ---- requests ---- */

static bool is_write(const char *m)
{
    return strcmp(m, "POST") == 0 || strcmp(m, "PATCH") == 0 || strcmp(m, "DELETE") == 0;
}

/* The path of a relative target, checked: /api/..., visible ASCII, no dot segments. */
static int target_path(const char *target, char **path_out)
{
    size_t n = strcspn(target, "?#");
    if (strncmp(target, "/api/", 5) != 0)
        return cad_fail(CAD_EINVAL, "a Klaviyo request path starts with /api/");
    for (const unsigned char *p = (const unsigned char *)target; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '\\')
            return cad_fail(CAD_EINVAL, "the request target holds a space or control character");
    if (strstr(target, "/./") || strstr(target, "/../") ||
        (n >= 2 && strncmp(target + n - 2, "/.", 2) == 0) ||
        (n >= 3 && strncmp(target + n - 3, "/..", 3) == 0))
        return cad_fail(CAD_EINVAL, "the request path holds a dot segment");
    if (!(*path_out = strndup(target, n)))
        return cad_fail(CAD_ENOMEM, "out of memory");
    return CAD_OK;
}

/* Resolves a request's target to a URL and a path (either may be NULL to skip). */
static int resolve_target(const klaviyo_client *c, const char *target, char **url, char **path)
{
    char *p = NULL, *u = NULL;
    int rc;
    if (!target || !*target)
        return cad_fail(CAD_EINVAL, "the request has no target");
    if (target[0] == '/') {
        if ((rc = target_path(target, &p)))
            return rc;
        if (asprintf(&u, "%s%s", c->cfg.base_url, target) < 0) {
            free(p);
            return cad_fail(CAD_ENOMEM, "out of memory");
        }
    } else {
        if (!klaviyo_same_origin(c->cfg.base_url, target))
            return cad_fail(CAD_EPERM,
                            "refused a link to another host than %s: the key is sent only there",
                            c->cfg.base_url);
        CURLU *cu = curl_url();
        char *cpath = NULL;
        if (!cu || curl_url_set(cu, CURLUPART_URL, target, 0) != CURLUE_OK ||
            curl_url_get(cu, CURLUPART_PATH, &cpath, 0) != CURLUE_OK) {
            curl_url_cleanup(cu);
            return cad_fail(CAD_EINVAL, "the link is not a URL");
        }
        rc = target_path(cpath, &p);
        curl_free(cpath);
        curl_url_cleanup(cu);
        if (rc)
            return rc;
        if (!(u = strdup(target))) {
            free(p);
            return cad_fail(CAD_ENOMEM, "out of memory");
        }
    }
    if (url)
        *url = u;
    else
        free(u);
    if (path)
        *path = p;
    else
        free(p);
    return CAD_OK;
}

/* A page[size] above the endpoint's maximum (klaviyo_page_size_max) is refused here rather
 * than by Klaviyo with a 400 after a spent rate-limit slot. */
static int page_size_check(const char *target, const char *path)
{
    const char *q = strchr(target, '?');
    int max = klaviyo_page_size_max(path);
    if (!q || max <= 0)
        return CAD_OK;
    static const char *const names[] = {"page%5Bsize%5D=", "page[size]="};
    for (const char *p = q; *p; p++) {
        if (p[0] != '?' && p[0] != '&')
            continue;
        for (size_t i = 0; i < 2; i++) {
            size_t n = strlen(names[i]);
            if (strncasecmp(p + 1, names[i], n) != 0)
                continue;
            long v = strtol(p + 1 + n, NULL, 10);
            if (v < 1 || v > max)
                return cad_fail(CAD_EINVAL, "page[size] for %s is 1 to %d", path, max);
        }
    }
    return CAD_OK;
}

int klaviyo_request_check(const klaviyo_client *c, const struct klaviyo_request *req)
{
    if (!req || !req->method)
        return cad_fail(CAD_EINVAL, "the request has no method");
    if (strcmp(req->method, "GET") != 0 && !is_write(req->method))
        return cad_fail(CAD_EINVAL, "unsupported method \"%.8s\"", req->method);
    if (is_write(req->method) && (!req->write_authorization || !*req->write_authorization))
        return cad_fail(CAD_EPERM,
                        "refused %s %s: a write to Klaviyo runs only as a step of a confirmed plan "
                        "(no write authorization)",
                        req->method, req->target ? req->target : "");
    if (req->body_len && !req->body)
        return cad_fail(CAD_EINVAL, "the request's body is missing");
    if (req->body && strcmp(req->method, "GET") == 0)
        return cad_fail(CAD_EINVAL, "a GET has no body");
    if (req->content_type) {
        const char *mp = "multipart/form-data; boundary=";
        size_t n = strlen(mp);
        if (!req->body || strncmp(req->content_type, mp, n) != 0 || !req->content_type[n] ||
            strlen(req->content_type) > 200)
            return cad_fail(CAD_EINVAL,
                            "a body is JSON:API or multipart/form-data with a boundary");
        for (const unsigned char *p = (const unsigned char *)req->content_type; *p; p++)
            if (*p < 0x20 || *p >= 0x7f)
                return cad_fail(CAD_EINVAL, "the content type holds a control character");
    }
    char *path = NULL;
    int rc = resolve_target(c, req->target, NULL, &path);
    if (rc)
        return rc;
    const struct kspec_op *op = kspec_find(req->method, path);
    if (!op)
        rc = cad_fail(CAD_EINVAL, "%s %s is not an operation of Klaviyo's API (revision %s)",
                      req->method, path, KLAVIYO_REVISION);
    else
        rc = page_size_check(req->target, path);
    free(path);
    return rc;
}

static struct call *call_new(klaviyo_client *c, const struct klaviyo_request *req,
                             klaviyo_done_fn done, void *ctx, int *rc)
{
    struct call *call = calloc(1, sizeof *call);
    if (!call) {
        *rc = cad_fail(CAD_ENOMEM, "out of memory");
        return NULL;
    }
    call->c = c;
    call->done = done;
    call->ctx = ctx;
    snprintf(call->method, sizeof call->method, "%s", req->method);
    if ((*rc = resolve_target(c, req->target, &call->url, &call->path)))
        goto fail;
    call->op = kspec_find(call->method, call->path);
    call->actor = strdup(req->actor && *req->actor ? req->actor : c->actor);
    if (!call->actor) {
        *rc = cad_fail(CAD_ENOMEM, "out of memory");
        goto fail;
    }
    if (req->body) {
        call->body = malloc(req->body_len + 1);
        if (!call->body) {
            *rc = cad_fail(CAD_ENOMEM, "out of memory");
            goto fail;
        }
        memcpy(call->body, req->body, req->body_len);
        call->body[req->body_len] = '\0';
        call->body_len = req->body_len;
    }
    if (req->content_type) {
        if (asprintf(&call->ctype_line, "Content-Type: %s", req->content_type) < 0) {
            call->ctype_line = NULL;
            *rc = cad_fail(CAD_ENOMEM, "out of memory");
            goto fail;
        }
        /* The client's body headers, with this Content-Type in place of JSON:API's. */
        char *lines[6];
        for (size_t i = 0; i < 6; i++)
            lines[i] = c->hdr_body[i].data == c->h_ctype ? call->ctype_line : c->hdr_body[i].data;
        link_headers(call->hdr_own, lines, 6);
    }
    return call;
fail:
    call_free(call);
    return NULL;
}

static void enqueue(klaviyo_client *c, struct call *call)
{
    call->state = CALL_QUEUED;
    call->next = NULL;
    if (c->tail)
        c->tail->next = call;
    else
        c->head = call;
    c->tail = call;
    c->pending++;
}

static void unlink_call(klaviyo_client *c, struct call *call)
{
    struct call **pp = &c->head, *prev = NULL;
    while (*pp && *pp != call) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = call->next;
    if (c->tail == call)
        c->tail = prev;
    c->pending--;
}

int klaviyo_submit(klaviyo_client *c, const struct klaviyo_request *req, klaviyo_done_fn done,
                   void *ctx)
{
    int rc = klaviyo_request_check(c, req);
    if (rc)
        return rc;
    if (c->revoked)
        return cad_fail(CAD_EAUTH, "Klaviyo rejected this tenant's key (revoked); nothing is sent "
                                   "until a new key is verified");
    struct call *call = call_new(c, req, done, ctx, &rc);
    if (!call)
        return rc;
    enqueue(c, call);
    return CAD_OK;
}

/* ---- finishing ---- */

static int outcome_rc(enum klaviyo_outcome o)
{
    switch (o) {
    case KLAVIYO_OUT_OK:
        return CAD_OK;
    case KLAVIYO_OUT_AUTH_FAILED_ONCE:
    case KLAVIYO_OUT_REVOKED:
        return CAD_EAUTH;
    case KLAVIYO_OUT_MISSING_SCOPE:
    case KLAVIYO_OUT_PERMANENT:
        return CAD_EREMOTE;
    case KLAVIYO_OUT_TRANSIENT:
    case KLAVIYO_OUT_UNREACHABLE:
        return CAD_ENET;
    case KLAVIYO_OUT_UNKNOWN:
        return CAD_EUNKNOWN;
    case KLAVIYO_OUT_REFUSED:
        return CAD_EPERM;
    }
    return CAD_EINVAL;
}

/* Completes `call`: unlinks it, runs its callback, frees it. */
static void finish(klaviyo_client *c, struct call *call, enum klaviyo_outcome o)
{
    struct klaviyo_result *r = &call->res;
    r->outcome = o;
    r->rc = r->rc && o == KLAVIYO_OUT_REFUSED ? r->rc : outcome_rc(o);
    log_redact(r->message);
    unlink_call(c, call);
    if (o == KLAVIYO_OUT_REVOKED)
        c->revoked = true;
    cad_log(o == KLAVIYO_OUT_OK ? LOG_DEBUG : LOG_INFO, "klaviyo.call",
            "tenant=%s method=%s path=%s outcome=%s status=%d attempts=%d", c->tenant_id,
            call->method, call->path, klaviyo_outcome_name(o), r->http_status, r->attempts);
    if (call->done) {
        c->in_callback = true;
        call->done(call->ctx, r);
        c->in_callback = false;
    }
    call_free(call);
}

static void finish_refused(klaviyo_client *c, struct call *call, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void finish_refused(klaviyo_client *c, struct call *call, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(call->res.message, sizeof call->res.message, fmt, ap);
    va_end(ap);
    call->res.rc = rc;
    finish(c, call, KLAVIYO_OUT_REFUSED);
}

/* ---- curl callbacks ---- */

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    struct call *call = ud;
    size_t len = size * n;
    if (call->resp_len + len + 1 > RESPONSE_MAX) {
        call->resp_overflow = true;
        return 0;
    }
    if (call->resp_len + len + 1 > call->resp_cap) {
        size_t cap = call->resp_cap ? call->resp_cap : 4096;
        while (cap < call->resp_len + len + 1)
            cap *= 2;
        char *p = realloc(call->resp, cap);
        if (!p)
            return 0;
        call->resp = p;
        call->resp_cap = cap;
    }
    memcpy(call->resp + call->resp_len, data, len);
    call->resp_len += len;
    call->resp[call->resp_len] = '\0';
    return len;
}

static void header_value(const char *v, size_t n, char *out, size_t outsz)
{
    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n >= outsz)
        n = outsz - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (v[i] >= 0x20 && v[i] < 0x7f) ? v[i] : '?';
    out[n] = '\0';
}

static int header_int(const char *v, size_t n, int min, int max)
{
    char buf[32];
    header_value(v, n, buf, sizeof buf);
    char *end;
    errno = 0;
    long x = strtol(buf, &end, 10);
    if (errno || end == buf || *end || x < min || x > max)
        return -1;
    return (int)x;
}

static void reset_response(struct call *call)
{
    call->resp_len = 0;
    call->resp_overflow = false;
    if (call->resp)
        call->resp[0] = '\0';
    call->content_type[0] = call->cf_mitigated[0] = call->request_id[0] = '\0';
    call->retry_after_ms = -1;
    call->rl_limit = call->rl_remaining = call->rl_reset = -1;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    struct call *call = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* A new response (after a 100 Continue, say): forget the previous one's headers. */
        reset_response(call);
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon)
        return len;
    size_t nlen = (size_t)(colon - data);
    const char *v = colon + 1;
    size_t vlen = len - nlen - 1;
#define IS(name) (nlen == sizeof(name) - 1 && strncasecmp(data, name, nlen) == 0)
    if (IS("content-type"))
        header_value(v, vlen, call->content_type, sizeof call->content_type);
    else if (IS("cf-mitigated"))
        header_value(v, vlen, call->cf_mitigated, sizeof call->cf_mitigated);
    else if (IS("x-request-id") || IS("x-klaviyo-request-id") ||
             (IS("cf-ray") && !call->request_id[0]))
        header_value(v, vlen, call->request_id, sizeof call->request_id);
    else if (IS("retry-after")) {
        int s = header_int(v, vlen, 0, 86400);
        call->retry_after_ms = s < 0 ? -1 : (int64_t)s * 1000;
    } else if (IS("ratelimit-limit"))
        call->rl_limit = header_int(v, vlen, 0, 1000000000);
    else if (IS("ratelimit-remaining"))
        call->rl_remaining = header_int(v, vlen, 0, 1000000000);
    else if (IS("ratelimit-reset"))
        call->rl_reset = header_int(v, vlen, 0, 86400);
#undef IS
    return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
    struct call *call = ud;
    size_t room = size * n, left = call->body_len - call->body_pos;
    size_t k = left < room ? left : room;
    memcpy(buf, call->body + call->body_pos, k);
    call->body_pos += k;
    return k;
}

static int on_seek(void *ud, curl_off_t offset, int origin)
{
    struct call *call = ud;
    /* Refusing makes libcurl fail rather than silently send a POST a second time. */
    if (strcmp(call->method, "POST") == 0 || origin != SEEK_SET || offset < 0 ||
        (size_t)offset > call->body_len)
        return CURL_SEEKFUNC_CANTSEEK;
    call->body_pos = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

/* ---- sending ---- */

/* Hands an attempt whose intent is committed to libcurl. */
static int start_transfer(klaviyo_client *c, struct call *call)
{
    CURL *e = curl_easy_init();
    if (!e) {
        audit_call_end(c->st, call->intent_seq, 0, 0, NULL, "not sent: curl_easy_init failed");
        ratelimit_release(c->rl, c->tenant_id, call->op, rl_now(c));
        finish_refused(c, call, CAD_ENOMEM, "out of memory");
        return CAD_ENOMEM;
    }
    reset_response(call);
    call->errbuf[0] = '\0';
    call->body_pos = 0;
    curl_easy_setopt(e, CURLOPT_URL, call->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_VERBOSE, 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->cfg.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->cfg.timeout_ms);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
    curl_easy_setopt(e, CURLOPT_PRIVATE, call);
    if (call->body) {
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->ctype_line ? call->hdr_own : c->hdr_body);
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, call);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, call);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->hdr_read);
        if (strcmp(call->method, "POST") == 0) {
            curl_easy_setopt(e, CURLOPT_POST, 1L);
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
            curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(e, CURLOPT_READDATA, call);
            curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
            curl_easy_setopt(e, CURLOPT_SEEKDATA, call);
        }
    }
    if (strcmp(call->method, "PATCH") == 0 || strcmp(call->method, "DELETE") == 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, call->method);
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        audit_call_end(c->st, call->intent_seq, 0, 0, NULL,
                       "not sent: curl_multi_add_handle failed");
        ratelimit_release(c->rl, c->tenant_id, call->op, rl_now(c));
        finish_refused(c, call, CAD_EIO, "the request could not be queued in libcurl");
        return CAD_EIO;
    }
    call->easy = e;
    call->state = CALL_IN_FLIGHT;
    call->started_ms = time_mono_ms();
    call->sent_rl_ms = rl_now(c);
    ratelimit_sent(c->rl, c->tenant_id, call->op, call->granted_rl_ms, call->sent_rl_ms);
    c->in_flight++;
    return CAD_OK;
}

/* Starts the attempts one dispatch pass granted: their intents in one transaction (one durable
 * commit), and only then the requests. If the intents cannot be written, none is sent. */
static void start_batch(klaviyo_client *c, struct call **batch, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct call *call = batch[i];
        call->attempt++;
        call->res.attempts++;
        c->batch_audit[i] = (struct audit_call){.tenant_id = c->tenant_id,
                                                .actor = call->actor,
                                                .action = "klaviyo.call",
                                                .method = call->method,
                                                .endpoint = call->path,
                                                .payload = call->body,
                                                .n = call->body_len};
    }
    int rc = audit_call_begin_many(c->st, c->batch_audit, n);
    char why[512];
    snprintf(why, sizeof why, "%s", rc ? cad_errmsg() : "");
    for (size_t i = 0; i < n; i++) {
        struct call *call = batch[i];
        if (rc) {
            ratelimit_release(c->rl, c->tenant_id, call->op, rl_now(c));
            finish_refused(c, call, rc,
                           "the call was not made: its audit record could not be written (%s)",
                           why);
            continue;
        }
        call->intent_seq = c->batch_audit[i].seq;
        start_transfer(c, call);
    }
}

/* Starts every queued call that may go now; returns the ms until the next one may (-1: none is
 * waiting on time). */
static int64_t dispatch(klaviyo_client *c)
{
    int64_t wake = -1;
    size_t n = 0;
    c->pass++;
    struct call *call = c->head;
    while (call) {
        struct call *next = call->next;
        if (call->state != CALL_QUEUED) {
            call = next;
            continue;
        }
        if (c->revoked) {
            textf(call->res.message, sizeof call->res.message,
                  "not sent: Klaviyo rejected this tenant's key (revoked)");
            call->res.last_class = KLAVIYO_CLASS_AUTH;
            finish(c, call, KLAVIYO_OUT_REVOKED);
            call = next;
            continue;
        }
        /* While a 401 is being re-checked nothing else goes out with the key. */
        if (c->recheck_pending && !call->is_recheck) {
            call = next;
            continue;
        }
        int64_t now = time_mono_ms();
        size_t oi = (size_t)(call->op - kspec_ops);
        int64_t wait = 0;
        int rc = CAD_OK;
        if (call->not_before_ms > now) {
            int64_t w = call->not_before_ms - now;
            wake = wake < 0 || w < wake ? w : wake;
            call = next;
            continue;
        }
        if (c->in_flight + n >= (size_t)c->cfg.max_in_flight) {
            call = next;
            continue;
        }
        if (c->op_pass[oi] == c->pass) {
            rc = RATELIMIT_WAIT; /* the limiter said so for this operation in this pass */
            wait = c->op_wait[oi];
        } else {
            int64_t rl_wait = 0;
            call->granted_rl_ms = rl_now(c);
            rc = ratelimit_acquire(c->rl, c->tenant_id, call->op, call->granted_rl_ms, &rl_wait);
            wait = real_ms(c, rl_wait);
            if (rc == RATELIMIT_WAIT) {
                c->op_pass[oi] = c->pass;
                c->op_wait[oi] = wait;
            }
        }
        if (rc == CAD_OK) {
            call->state = CALL_STARTING;
            c->batch[n++] = call;
        } else if (rc == RATELIMIT_WAIT && wait <= c->cfg.max_wait_ms) {
            wake = wake < 0 || wait < wake ? wait : wake;
        } else if (rc == RATELIMIT_WAIT) {
            textf(call->res.message, sizeof call->res.message,
                  "not sent: Klaviyo's limit for %s is spent for now (the next slot opens "
                  "in %lld minutes)",
                  call->op->operation_id, (long long)(wait + 59999) / 60000);
            call->res.last_class = KLAVIYO_CLASS_THROTTLED;
            finish(c, call, KLAVIYO_OUT_TRANSIENT);
        } else {
            finish_refused(c, call, rc, "not sent: the rate limiter failed (%s)", cad_errmsg());
        }
        call = next;
    }
    if (n)
        start_batch(c, c->batch, n);
    return wake;
}

/* ---- completing an attempt ---- */

static bool pre_send_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return true;
    default:
        return false;
    }
}

static void net_reason(struct call *call, CURLcode code, char *out, size_t outsz)
{
    if (call->resp_overflow)
        snprintf(out, outsz, "the response was larger than %zu bytes", RESPONSE_MAX);
    else
        snprintf(out, outsz, "%s", call->errbuf[0] ? call->errbuf : curl_easy_strerror(code));
    log_redact(out);
}

static void describe_error(const struct klaviyo_error *e, char *out, size_t outsz)
{
    if (e->detail[0] && e->title[0] && strcmp(e->title, e->detail) != 0)
        textf(out, outsz, "%s: %s", e->title, e->detail);
    else
        snprintf(out, outsz, "%s", e->detail[0] ? e->detail : e->title[0] ? e->title : e->code);
}

static void recheck_done(klaviyo_client *c, struct call *chk, const struct klaviyo_verdict *v);

/* First half of completing an attempt: what happened, and the detail for its audit record. */
static void collect(klaviyo_client *c, struct call *call, CURLcode code)
{
    int64_t now = time_mono_ms();
    call->done_ms = now;
    call->duration_ms = now - call->started_ms;
    long status = 0;
    curl_off_t req_size = 0;
    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(call->easy, CURLINFO_REQUEST_SIZE, &req_size);
    curl_multi_remove_handle(c->multi, call->easy);
    curl_easy_cleanup(call->easy);
    call->easy = NULL;
    c->in_flight--;

    struct klaviyo_result *r = &call->res;
    /* Retry-After is in the server's seconds; the emulator's run rate_scale times faster. */
    struct klaviyo_attempt a = {.method = call->method,
                                .retry_after_ms = call->retry_after_ms > 0
                                                      ? real_ms(c, call->retry_after_ms)
                                                      : call->retry_after_ms,
                                .attempt = call->attempt};
    char *detail = call->detail;
    const size_t detail_size = sizeof call->detail;
    detail[0] = '\0';
    if (code != CURLE_OK || call->resp_overflow) {
        a.net = pre_send_error(code)               ? KLAVIYO_NET_NOT_SENT
                : code == CURLE_OPERATION_TIMEDOUT ? KLAVIYO_NET_TIMEOUT
                                                   : KLAVIYO_NET_DROPPED;
        a.request_sent = a.net != KLAVIYO_NET_NOT_SENT &&
                         (req_size > 0 || call->body_pos > 0 || code == CURLE_SEND_FAIL_REWIND ||
                          code == CURLE_GOT_NOTHING || status != 0);
        char why[CURL_ERROR_SIZE + 64];
        net_reason(call, code, why, sizeof why);
        snprintf(detail, detail_size, "no complete response: %s", why);
        r->http_status = 0;
    } else {
        a.http_status = (int)status;
        r->http_status = (int)status;
    }
    a.html = strncasecmp(call->content_type, "text/html", 9) == 0;
    a.cf_challenge = strcasecmp(call->cf_mitigated, "challenge") == 0;
    struct klaviyo_error err;
    size_t nerr = 0;
    if (a.net == KLAVIYO_NET_NONE && a.http_status >= 400 &&
        klaviyo_error_parse(call->resp, call->resp_len, a.http_status, &err, &nerr) == CAD_OK) {
        a.json_error = true;
        r->has_error = true;
        r->error = err;
        char d[detail_size];
        describe_error(&err, d, sizeof d);
        textf(detail, detail_size, "%s%s%s", err.code, err.code[0] ? ": " : "", d);
    } else if (a.net == KLAVIYO_NET_NONE && a.http_status >= 400) {
        r->has_error = false;
        snprintf(detail, detail_size, "%s%s", a.cf_challenge ? "cf-mitigated: challenge; " : "",
                 call->content_type[0] ? call->content_type : "no content type");
    }
    snprintf(r->request_id, sizeof r->request_id, "%s", call->request_id);
    log_redact(detail);
    call->att = a;
    char st_label[8];
    snprintf(st_label, sizeof st_label, "%d", a.http_status);
    const char *labels[] = {"operation", call->op->operation_id, "status", st_label};
    metrics_counter_add("klaviyo_calls_total",
                        "Klaviyo API attempts by operation and HTTP status (0: no response)",
                        labels, 2, 1);
    if (a.http_status == 429) {
        r->throttled++;
        metrics_counter_add("klaviyo_throttled_total", "429 answers from Klaviyo by operation",
                            labels, 1, 1);
    }
}

/* Second half, once the outcome is recorded: the limiter hears what the server said, and the
 * verdict is carried out (retry, re-check, or finish with the callback). */
static void decide(klaviyo_client *c, struct call *call)
{
    struct klaviyo_result *r = &call->res;
    struct klaviyo_attempt a = call->att;
    const char *detail = call->detail;
    int64_t now = call->done_ms;
    int64_t rl_t = rl_now(c);

    /* Tell the limiter what the server said about the shared quota, then that this request is
     * over. Header durations are the server's seconds, on the limiter's clock as they are. */
    if (a.net == KLAVIYO_NET_NONE && call->rl_limit > 0 && call->rl_remaining >= 0 &&
        call->rl_reset >= 0 && call->rl_reset <= 60)
        ratelimit_observe_window(c->rl, c->tenant_id, call->op, call->rl_limit, call->rl_remaining,
                                 call->rl_reset, call->sent_rl_ms < rl_t ? call->sent_rl_ms : rl_t,
                                 rl_t);
    if (a.http_status == 429)
        ratelimit_penalize(c->rl, c->tenant_id, call->op,
                           call->retry_after_ms > 0 ? call->retry_after_ms : 0, rl_t);
    ratelimit_release(c->rl, c->tenant_id, call->op, rl_t);

    uint32_t jitter = 0;
    random_bytes(&jitter, sizeof jitter);
    struct klaviyo_verdict v;
    klaviyo_classify(&a, &c->cfg, jitter, &v);
    r->last_class = v.cls;

    /* Keep the last response body for the caller. */
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
    if (call->resp_len && !call->resp_overflow) {
        r->body = call->resp;
        r->body_len = call->resp_len;
        call->resp = NULL;
        call->resp_cap = call->resp_len = 0;
    }

    if (call->is_recheck) {
        recheck_done(c, call, &v);
        return;
    }
    if (v.retry) {
        cad_log(LOG_INFO, "klaviyo.retry",
                "tenant=%s method=%s path=%s class=%s status=%d attempt=%d wait_ms=%lld",
                c->tenant_id, call->method, call->path, klaviyo_class_name(v.cls), a.http_status,
                call->attempt, (long long)v.wait_ms);
        call->state = CALL_QUEUED;
        call->not_before_ms = now + v.wait_ms;
        return;
    }
    const char *m = call->method, *p = call->path;
    switch (v.cls) {
    case KLAVIYO_CLASS_OK:
        if (r->body_len) {
            json_error_t jerr;
            r->doc = json_loadb(r->body, r->body_len, 0, &jerr);
            if (!r->doc) {
                bool post = strcmp(m, "POST") == 0;
                textf(r->message, sizeof r->message,
                      "Klaviyo answered %s %s with %d but the body is not JSON%s", m, p,
                      r->http_status,
                      post ? "; the object may exist: look it up before trying again" : "");
                finish(c, call, post ? KLAVIYO_OUT_UNKNOWN : KLAVIYO_OUT_PERMANENT);
                return;
            }
        }
        finish(c, call, KLAVIYO_OUT_OK);
        return;
    case KLAVIYO_CLASS_AUTH: {
        /* One 401 is not proof: confirm with one GET /api/accounts before calling it revoked.
         * Calls that get a 401 while a re-check is pending wait for that same re-check. */
        if (c->revoked) {
            textf(r->message, sizeof r->message,
                  "Klaviyo rejected the key (401); it was already found revoked");
            finish(c, call, KLAVIYO_OUT_REVOKED);
            return;
        }
        call->state = CALL_AWAITING_RECHECK;
        if (c->recheck_pending)
            return;
        struct klaviyo_request rq = {
            .method = "GET", .target = ACCOUNTS_PATH, .actor = call->actor};
        int rc;
        struct call *chk = call_new(c, &rq, NULL, NULL, &rc);
        if (!chk) {
            textf(r->message, sizeof r->message,
                  "Klaviyo rejected the key (401) and the re-check could not be queued");
            finish(c, call, KLAVIYO_OUT_AUTH_FAILED_ONCE);
            return;
        }
        chk->is_recheck = true;
        c->recheck_pending = true;
        enqueue(c, chk);
        return;
    }
    case KLAVIYO_CLASS_SCOPE: {
        snprintf(r->scopes_needed, sizeof r->scopes_needed, "%s", call->op->scopes);
        char d[512];
        describe_error(&r->error, d, sizeof d);
        textf(r->message, sizeof r->message,
              "the key lacks a scope: %s %s needs %s (Klaviyo said: %s)", m, call->op->path,
              call->op->scopes[0] ? call->op->scopes : "no scope", d);
        finish(c, call, KLAVIYO_OUT_MISSING_SCOPE);
        return;
    }
    case KLAVIYO_CLASS_PERMANENT: {
        char d[600];
        if (r->has_error)
            describe_error(&r->error, d, sizeof d);
        else
            snprintf(d, sizeof d, "no error details");
        textf(r->message, sizeof r->message, "Klaviyo refused %s %s (%d): %s", m, p, r->http_status,
              d);
        finish(c, call, KLAVIYO_OUT_PERMANENT);
        return;
    }
    default:
        break;
    }
    if (v.outcome == KLAVIYO_OUT_UNKNOWN) {
        textf(r->message, sizeof r->message,
              "the outcome of %s %s is unknown (%s): Klaviyo may have applied it, so it is "
              "not sent again; look the object up before retrying",
              m, p, a.net != KLAVIYO_NET_NONE ? detail : "server error after the request left");
        finish(c, call, KLAVIYO_OUT_UNKNOWN);
        return;
    }
    switch (v.cls) {
    case KLAVIYO_CLASS_CHALLENGE:
        textf(r->message, sizeof r->message,
              "Klaviyo's CDN answered %s %s with a challenge page (HTML 403) %d time%s: a "
              "temporary block that says nothing about the key; try again later",
              m, p, call->attempt, call->attempt == 1 ? "" : "s");
        break;
    case KLAVIYO_CLASS_THROTTLED:
        textf(r->message, sizeof r->message,
              "Klaviyo kept throttling %s %s (429) after %d attempts; try again later", m, p,
              call->attempt);
        break;
    case KLAVIYO_CLASS_SERVER:
        textf(r->message, sizeof r->message,
              "Klaviyo answered %s %s with %d after %d attempt%s; try again later", m, p,
              r->http_status, call->attempt, call->attempt == 1 ? "" : "s");
        break;
    default:
        textf(r->message, sizeof r->message,
              "Klaviyo could not be reached at %s (%s) after %d attempt%s; try again later",
              c->cfg.base_url, detail, call->attempt, call->attempt == 1 ? "" : "s");
        break;
    }
    finish(c, call, v.outcome);
}

static void recheck_done(klaviyo_client *c, struct call *chk, const struct klaviyo_verdict *v)
{
    int chk_attempts = chk->res.attempts;
    unlink_call(c, chk);
    call_free(chk);
    c->recheck_pending = false;
    bool confirmed = v->cls == KLAVIYO_CLASS_AUTH;
    struct call *call = c->head;
    while (call) {
        struct call *next = call->next;
        if (call->state != CALL_AWAITING_RECHECK) {
            call = next;
            continue;
        }
        struct klaviyo_result *r = &call->res;
        r->attempts += chk_attempts;
        r->last_class = KLAVIYO_CLASS_AUTH;
        char d[600] = "";
        if (r->has_error)
            describe_error(&r->error, d, sizeof d);
        if (confirmed)
            textf(r->message, sizeof r->message,
                  "Klaviyo rejected the key (401%s%s), and again on a re-check: it is wrong or "
                  "was revoked",
                  d[0] ? ": " : "", d);
        else
            textf(r->message, sizeof r->message,
                  "Klaviyo rejected the key once (401%s%s) but the re-check %s; not treated as "
                  "revoked",
                  d[0] ? ": " : "", d,
                  v->cls == KLAVIYO_CLASS_OK ? "succeeded" : "did not get an answer");
        /* A callback may submit new calls (appended at the tail) but not free the client. */
        finish(c, call, confirmed ? KLAVIYO_OUT_REVOKED : KLAVIYO_OUT_AUTH_FAILED_ONCE);
        call = next;
    }
}

/* ---- the loop ---- */

/* Completes every finished transfer: first what each got, then all their outcomes in one
 * transaction, then the verdicts (whose callbacks may submit more). */
static int drain(klaviyo_client *c)
{
    size_t n = 0;
    int left;
    CURLMsg *msg;
    while (n < (size_t)c->cfg.max_in_flight && (msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct call *call = NULL;
        CURLcode code = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
        if (!call)
            continue;
        collect(c, call, code);
        c->done[n] = call;
        c->outs[n] = (struct audit_outcome){
            .intent_seq = call->intent_seq,
            .status = call->att.http_status,
            .duration_ms = call->duration_ms,
            .request_id = call->request_id[0] ? call->request_id : NULL,
            .detail = call->detail[0] ? call->detail : NULL,
        };
        n++;
    }
    if (n && audit_call_end_many(c->st, c->outs, n) != CAD_OK)
        for (size_t i = 0; i < n; i++)
            if (c->outs[i].rc)
                cad_log(LOG_ERROR, "audit.call_end_failed", "tenant=%s seq=%lld error=\"%s\"",
                        c->tenant_id, (long long)c->outs[i].intent_seq, cad_errmsg());
    for (size_t i = 0; i < n; i++)
        decide(c, c->done[i]);
    return n > 0;
}

static int run_loop(klaviyo_client *c, int timeout_ms, const bool *stop)
{
    if (c->in_callback)
        return cad_fail(CAD_ESTATE, "the Klaviyo client cannot be run from inside a callback");
    int64_t deadline = timeout_ms >= 0 ? time_mono_ms() + timeout_ms : -1;
    for (;;) {
        int64_t wake = dispatch(c);
        if ((stop && *stop) || !c->head)
            return CAD_OK;
        int running = 0;
        CURLMcode mc = curl_multi_perform(c->multi, &running);
        if (mc != CURLM_OK)
            return cad_fail(CAD_EIO, "curl: %s", curl_multi_strerror(mc));
        if (drain(c))
            continue;
        if ((stop && *stop) || !c->head)
            return CAD_OK;
        int64_t t = 1000;
        if (wake >= 0 && wake < t)
            t = wake;
        if (deadline >= 0) {
            int64_t left = deadline - time_mono_ms();
            if (left <= 0)
                return CAD_OK;
            if (left < t)
                t = left;
        }
        mc = curl_multi_poll(c->multi, NULL, 0, (int)t, NULL);
        if (mc != CURLM_OK)
            return cad_fail(CAD_EIO, "curl: %s", curl_multi_strerror(mc));
    }
}

int klaviyo_run(klaviyo_client *c, int timeout_ms)
{
    return run_loop(c, timeout_ms, NULL);
}

struct sync_state {
    struct klaviyo_result *res;
    bool done;
};

static void sync_done(void *ctx, const struct klaviyo_result *r)
{
    struct sync_state *s = ctx;
    *s->res = *r;
    s->res->doc = json_incref(r->doc);
    s->res->body = NULL;
    s->res->body_len = 0;
    if (r->body && (s->res->body = malloc(r->body_len + 1))) {
        memcpy(s->res->body, r->body, r->body_len + 1);
        s->res->body_len = r->body_len;
    }
    s->done = true;
}

int klaviyo_call(klaviyo_client *c, const struct klaviyo_request *req, struct klaviyo_result *res)
{
    memset(res, 0, sizeof *res);
    if (c->in_callback) {
        res->rc = cad_fail(CAD_ESTATE, "klaviyo_call cannot run inside a completion callback "
                                       "(use klaviyo_submit there)");
        res->outcome = KLAVIYO_OUT_REFUSED;
        snprintf(res->message, sizeof res->message, "%s", cad_errmsg());
        return res->rc;
    }
    struct sync_state s = {res, false};
    int rc = klaviyo_submit(c, req, sync_done, &s);
    if (rc) {
        res->rc = rc;
        res->outcome = rc == CAD_EAUTH ? KLAVIYO_OUT_REVOKED : KLAVIYO_OUT_REFUSED;
        snprintf(res->message, sizeof res->message, "%s", cad_errmsg());
        return rc;
    }
    if ((rc = run_loop(c, -1, &s.done)))
        return res->rc = rc;
    if (res->rc)
        cad_fail(res->rc, "%s", res->message);
    return res->rc;
}
