/*
 * The Klaviyo HTTP client: the one door through which Cadence talks to a brand's Klaviyo account.
 *
 * One client serves one tenant's key. It is single-threaded on purpose (the store handle it
 * audits into is not thread-safe): the curl multi loop runs in the caller's thread, inside
 * klaviyo_run() and the synchronous klaviyo_call().
 *
 * What every request gets, in one place (client.c): the base URL (KLAVIYO_DEFAULT_BASE_URL, or
 * $CADENCE_KLAVIYO_URL), TLS peer and host verification always on, connection reuse and HTTP/2
 * where the server offers it, at most `max_in_flight` requests at once, pacing by the rate limiter
 * (acquire before sending, RateLimit-* headers observed, 429 penalized), the headers
 * Authorization (built in a cad_secret buffer, wiped when the client is freed, never logged),
 * revision: KLAVIYO_REVISION, Accept/Content-Type application/vnd.api+json and
 * User-Agent cadence/<version>, and connect/total timeouts.
 *
 * Every attempt is audited write-ahead: its intent is committed before the request leaves (no
 * record, no request), and its outcome records status, duration and Klaviyo's request id (or
 * status 0 and what went wrong when no response came). The engine commits in groups: the intents
 * of every request one pass of the loop is about to send in one transaction, then the sends; the
 * outcomes of every transfer that completed together in one transaction, then the callbacks.
 *
 * Pacing is ratelimit.h's header-driven mode: the client tells the limiter when each request left
 * and what its answer's RateLimit-* headers said, and releases each grant when the attempt is
 * over; its own limiter probes an operation with one request before the first burst.
 *
 * Outcomes are decided by one pure function, klaviyo_classify(). A POST is never re-sent after an
 * ambiguous failure (timeout, dropped connection or 5xx once the request left): the outcome is
 * KLAVIYO_OUT_UNKNOWN, so the caller looks the object up before trying again.
 *
 * Writes (POST, PATCH, DELETE) are refused, without any network call, unless the request carries
 * a write_authorization: the token of the confirmed plan step it executes.
 */
#ifndef CADENCE_KLAVIYO_CLIENT_H
#define CADENCE_KLAVIYO_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/secret.h"
#include "klaviyo/ratelimit.h"
#include "kspec/kspec.h"
#include "store/store.h"

typedef struct klaviyo_client klaviyo_client;

/* ---- configuration ---- */

/* Requests on the wire at once. The rate limiter decides how many requests leave; this bound only
 * has to be high enough not to decide it instead. By Little's law a client needs rate x latency
 * in flight: one operation at Klaviyo's highest burst (350/s) with answers taking 0.5 s needs 175,
 * and a plan runs a few operations at once, each at its own limit. 256 covers that; the ceiling
 * bounds what a client may hold open (a socket or HTTP/2 stream, a curl handle and buffers per
 * request, about 100 KB) and what an emulator at a high --time-scale can make it hold. */
#define KLAVIYO_DEFAULT_MAX_IN_FLIGHT 256
#define KLAVIYO_MAX_IN_FLIGHT         1024

struct klaviyo_config {
    char base_url[512];      /* scheme://host[:port], no trailing slash */
    long connect_timeout_ms; /* $CADENCE_KLAVIYO_CONNECT_TIMEOUT_MS, default 10000 */
    long timeout_ms;         /* $CADENCE_KLAVIYO_TIMEOUT_MS, total per attempt, default 60000 */
    int max_in_flight;       /* requests on the wire at once, default and upper bound below */
    int max_attempts;        /* attempts per call for retryable failures, default 5 */
    int64_t backoff_base_ms; /* first retry waits about this long, default 500 */
    int64_t backoff_max_ms;  /* cap of one backoff, default 30000 */
    int64_t max_wait_ms;     /* longest a call waits for the rate limiter (a spent daily cap)
                                before it is reported transient, default 600000 */
    /* $CADENCE_KLAVIYO_RATE_SCALE, default 1. The rate limiter's clock runs this many times
     * faster than real time, and durations in the server's headers (RateLimit-Reset,
     * Retry-After) are seconds of that clock: the world of an emulator started with
     * --time-scale N (cadence-klaviyo-sim), which reports every duration in its own scaled
     * seconds, exactly as Klaviyo would at scale 1. Klaviyo's published limits apply unchanged.
     * Against Klaviyo it must stay 1. */
    double rate_scale;
    /* A rate limiter shared by every client of the process (borrowed; it is thread-safe), so
     * that two clients of one tenant never spend the same quota twice. NULL: the client makes
     * its own. Limits are kept per tenant id and operation. */
    ratelimit *shared_ratelimit;
};

/* Defaults, then the environment variables named above. CAD_EINVAL (with the variable's name) for
 * a value that does not parse or a base URL that is not https (http is accepted only for a
 * loopback address, so a key never crosses a network in clear text). */
int klaviyo_config_from_env(struct klaviyo_config *out);

/* ---- the client ---- */

/* A client for `tenant_id`'s account, acting as `actor` (operator email, "client" or "system").
 * The key is copied into the client's own cad_secret; the caller keeps and frees its own. `st` is
 * borrowed for audit records and must outlive the client. cfg NULL = klaviyo_config_from_env().
 * Caller frees with klaviyo_client_free(). */
int klaviyo_client_new(klaviyo_client **out, store *st, const char *tenant_id, const char *actor,
                       const cad_secret *key, const struct klaviyo_config *cfg);
/* Completes nothing still queued (their callbacks are not called), wipes the key and the header
 * that carried it, frees. NULL is fine. */
void klaviyo_client_free(klaviyo_client *c);

const struct klaviyo_config *klaviyo_client_config(const klaviyo_client *c);

/* ---- requests and results ---- */

struct klaviyo_request {
    const char *method; /* "GET", "POST", "PATCH", "DELETE" */
    /* "/api/lists?page%5Bsize%5D=10" (a path with an encoded query), or an absolute URL with the
     * base URL's scheme, host and port (a links.next); anything else is refused. */
    const char *target;
    const char *body; /* JSON document, or NULL */
    size_t body_len;
    /* Required for POST/PATCH/DELETE: the token of the confirmed plan step this write executes
     * (checked in one place, klaviyo_request_check). NULL for reads. */
    const char *write_authorization;
    const char *actor; /* overrides the client's actor for the audit record; NULL = client's */
    /* Content-Type of the body: NULL = application/vnd.api+json; otherwise only
     * "multipart/form-data; boundary=..." (POST /api/image-upload) is accepted. */
    const char *content_type;
};

enum klaviyo_outcome {
    KLAVIYO_OUT_OK,               /* 2xx */
    KLAVIYO_OUT_AUTH_FAILED_ONCE, /* 401, but a re-check with GET /api/accounts did not confirm */
    KLAVIYO_OUT_REVOKED,          /* 401 confirmed by a second 401 on GET /api/accounts */
    KLAVIYO_OUT_MISSING_SCOPE,    /* 403 with a JSON:API error: the key lacks a scope */
    KLAVIYO_OUT_PERMANENT,        /* another 4xx: Klaviyo refused the request as it is */
    KLAVIYO_OUT_TRANSIENT,        /* 429, 5xx or a CDN challenge, retries exhausted */
    KLAVIYO_OUT_UNREACHABLE, /* no response (connection, DNS, TLS, timeout), retries exhausted */
    KLAVIYO_OUT_UNKNOWN,     /* a POST failed after it left: look the object up first */
    KLAVIYO_OUT_REFUSED,     /* refused locally, nothing sent (write guard, foreign host...) */
};

/* "ok", "auth_failed_once", "revoked", "missing_scope", "permanent", "transient",
 * "unreachable", "unknown", "refused". */
const char *klaviyo_outcome_name(enum klaviyo_outcome o);

/* What one attempt's response (or its absence) was. */
enum klaviyo_class {
    KLAVIYO_CLASS_OK,
    KLAVIYO_CLASS_AUTH,      /* 401 */
    KLAVIYO_CLASS_SCOPE,     /* 403 + JSON:API error document */
    KLAVIYO_CLASS_CHALLENGE, /* 403 that is HTML, carries cf-mitigated: challenge, or no JSON:API */
    KLAVIYO_CLASS_THROTTLED, /* 429 */
    KLAVIYO_CLASS_SERVER,    /* 5xx */
    KLAVIYO_CLASS_NETWORK,   /* no response at all */
    KLAVIYO_CLASS_PERMANENT, /* other 4xx (and unexpected 1xx/3xx) */
};
const char *klaviyo_class_name(enum klaviyo_class c);

/* One item of a JSON:API error document. Missing members are "". */
struct klaviyo_error {
    int http_status;
    char id[64];
    char code[64];
    char title[256];
    char detail[1024];
    char source_pointer[256];
    char source_parameter[128];
};

/* Parses a JSON:API error document ({"errors":[{...}]}) into its first error. Unknown members are
 * ignored, missing ones left "". *n_errors (may be NULL) gets the number of items. CAD_EINVAL
 * when the bytes are not such a document (not JSON, no non-empty errors array of objects). */
int klaviyo_error_parse(const char *body, size_t len, int http_status, struct klaviyo_error *out,
                        size_t *n_errors);

struct klaviyo_result {
    int rc; /* CAD_OK or the CAD_E* code matching the outcome */
    enum klaviyo_outcome outcome;
    enum klaviyo_class last_class; /* of the last attempt */
    int http_status;               /* of the last attempt, 0 when none came */
    int attempts;                  /* requests sent (or tried), including the 401 re-check */
    int throttled;                 /* of those, answered 429 (each retried after its wait) */
    char request_id[128];          /* Klaviyo's request id of the last response, "" when none */
    bool has_error;                /* `error` holds Klaviyo's error document */
    struct klaviyo_error error;
    char scopes_needed[256]; /* MISSING_SCOPE: the operation's scopes from kspec */
    char message[768];       /* for people; never holds the key */
    json_t *doc;             /* 2xx body parsed (NULL when empty); owned by the result */
    char *body;              /* last response's raw body, NUL-terminated (NULL when none) */
    size_t body_len;
};
/* Frees doc and body and zeroes the result. */
void klaviyo_result_clear(struct klaviyo_result *r);

/* CAD_OK when the request may be sent: a known method, a valid target that is an operation of
 * Klaviyo's spec, a page[size] within the endpoint's maximum, and for POST, PATCH and DELETE a
 * non-empty write_authorization. The one place the write guard lives. */
int klaviyo_request_check(const klaviyo_client *c, const struct klaviyo_request *req);

/* Synchronous call: runs the multi loop (with anything else submitted) until this call completes.
 * Fills *res (caller clears it) and returns res->rc. */
int klaviyo_call(klaviyo_client *c, const struct klaviyo_request *req, struct klaviyo_result *res);

/* Asynchronous API for the plan engine. The callback runs inside klaviyo_run() on the caller's
 * thread, once per submitted call, with a result valid during the callback only (json_incref
 * res->doc to keep it). Copies everything it needs from *req. A request refused by
 * klaviyo_request_check() is not queued: the error is returned and no callback is made. */
typedef void (*klaviyo_done_fn)(void *ctx, const struct klaviyo_result *res);
int klaviyo_submit(klaviyo_client *c, const struct klaviyo_request *req, klaviyo_done_fn done,
                   void *ctx);
/* Drives transfers, pacing and retries until no call is left (timeout_ms < 0) or about timeout_ms
 * has passed. Returns CAD_OK, or an error when curl itself fails. */
int klaviyo_run(klaviyo_client *c, int timeout_ms);
/* Calls submitted and not yet completed. */
size_t klaviyo_pending(const klaviyo_client *c);

/* Remaining quota of an operation (by operationId) in its current windows, as the rate limiter
 * sees it (published limits, the server's RateLimit-* headers, penalties after 429s).
 * CAD_ENOTFOUND for an unknown operation. */
struct klaviyo_quota {
    int burst_remaining;  /* in the current 1-second window */
    int steady_remaining; /* in the current 60-second window */
    int daily_remaining;  /* -1 when the operation has no daily cap */
};
int klaviyo_quota(klaviyo_client *c, const char *operation_id, struct klaviyo_quota *out);

/* ---- the pure decision ---- */

enum klaviyo_net {
    KLAVIYO_NET_NONE,     /* a response came */
    KLAVIYO_NET_NOT_SENT, /* DNS, connect or TLS handshake failed: nothing left */
    KLAVIYO_NET_TIMEOUT,  /* the total or connect timeout expired */
    KLAVIYO_NET_DROPPED,  /* the connection broke or closed before a complete response */
};

struct klaviyo_attempt {
    const char *method;
    int http_status; /* 0 when no response */
    enum klaviyo_net net;
    bool request_sent;      /* the request (or part of it) reached the wire */
    bool json_error;        /* the body is a JSON:API error document */
    bool html;              /* Content-Type text/html */
    bool cf_challenge;      /* cf-mitigated: challenge */
    int64_t retry_after_ms; /* Retry-After, -1 when absent */
    int attempt;            /* 1 for the first attempt */
};

struct klaviyo_verdict {
    enum klaviyo_class cls;
    bool retry; /* send again after wait_ms */
    int64_t wait_ms;
    enum klaviyo_outcome outcome; /* final outcome when !retry (AUTH: before the re-check) */
};

/* Classifies one attempt and decides whether to retry, in the one place that does. `jitter` is a
 * random number (any uint32) so the function stays pure and testable: backoff for attempt n is
 * base * 2^(n-1), capped at max, then scaled into [1/2, 1] of itself by the jitter. */
void klaviyo_classify(const struct klaviyo_attempt *a, const struct klaviyo_config *cfg,
                      uint32_t jitter, struct klaviyo_verdict *out);

/* ---- JSON:API helpers (jsonapi.c) ---- */

/* Filter clauses: op(field,"value") with " and \ escaped, and any(field,["a","b"]). `field` is
 * letters, digits and . _ - only; values must not hold control characters (CAD_EINVAL).
 * CAD_EINVAL also when `out` is too small. */
int klaviyo_filter_op(char *out, size_t outsz, const char *op, const char *field,
                      const char *value);
int klaviyo_filter_equals(char *out, size_t outsz, const char *field, const char *value);
int klaviyo_filter_any(char *out, size_t outsz, const char *field, const char *const *values,
                       size_t n);

/* Builds "path?k1=v1&k2=v2" with keys and values percent-encoded (RFC 3986 unreserved kept).
 * `kv` is key, value, key, value, ..., NULL. CAD_EINVAL when out is too small. */
int klaviyo_target(char *out, size_t outsz, const char *path, const char *const *kv);

/* The largest page[size] a collection endpoint accepts ("/api/lists" -> 10), 0 when the endpoint
 * takes no page[size] (e.g. /api/webhooks). The one table of page sizes. */
int klaviyo_page_size_max(const char *path);

/* True when `url` is an absolute http(s) URL with the same scheme, host and port as `base_url`
 * (default ports filled in) and no user info. Used for links.next so a hostile response cannot
 * send the key elsewhere. */
bool klaviyo_same_origin(const char *base_url, const char *url);

/* ---- pagination (page.c) ---- */

/* Follows links.next exactly as given, page by page, refusing a next link on another origin. */
struct klaviyo_pager {
    klaviyo_client *client;
    char *next; /* the next target, NULL when done */
    int pages;
};
/* `target` is the first page's path and query (e.g. from klaviyo_target). */
int klaviyo_pager_init(struct klaviyo_pager *p, klaviyo_client *c, const char *target);
/* Fetches the next page into *res (caller clears it). Returns 1 with a page, 0 when there are no
 * more pages (res untouched), or a negative CAD_E* code (res says why). */
int klaviyo_pager_next(struct klaviyo_pager *p, struct klaviyo_result *res);
void klaviyo_pager_free(struct klaviyo_pager *p);

#endif
