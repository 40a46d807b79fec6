/*
 * The one place that decides what a Klaviyo response means and whether to try again.
 *
 * Pure (no clock, no randomness of its own: the caller passes the jitter), so every case is a
 * unit test. The rules follow the notes on Klaviyo's behaviour: classify by body and content type,
 * not by status alone (a 403 may be a CDN challenge page that says nothing about the key), wait
 * at least Retry-After on 429, and never re-send a POST once it may have reached Klaviyo, since
 * Klaviyo has no idempotency keys and a second create makes a duplicate.
 */
#include <string.h>

#include "klaviyo/client.h"

static const char *const outcome_names[] = {
    [KLAVIYO_OUT_OK] = "ok",
    [KLAVIYO_OUT_AUTH_FAILED_ONCE] = "auth_failed_once",
    [KLAVIYO_OUT_REVOKED] = "revoked",
    [KLAVIYO_OUT_MISSING_SCOPE] = "missing_scope",
    [KLAVIYO_OUT_PERMANENT] = "permanent",
    [KLAVIYO_OUT_TRANSIENT] = "transient",
    [KLAVIYO_OUT_UNREACHABLE] = "unreachable",
    [KLAVIYO_OUT_UNKNOWN] = "unknown",
    [KLAVIYO_OUT_REFUSED] = "refused",
};

const char *klaviyo_outcome_name(enum klaviyo_outcome o)
{
    if ((unsigned)o < sizeof outcome_names / sizeof outcome_names[0] && outcome_names[o])
        return outcome_names[o];
    return "?";
}

static const char *const class_names[] = {
    [KLAVIYO_CLASS_OK] = "ok",
    [KLAVIYO_CLASS_AUTH] = "auth",
    [KLAVIYO_CLASS_SCOPE] = "scope",
    [KLAVIYO_CLASS_CHALLENGE] = "challenge",
    [KLAVIYO_CLASS_THROTTLED] = "throttled",
    [KLAVIYO_CLASS_SERVER] = "server",
    [KLAVIYO_CLASS_NETWORK] = "network",
    [KLAVIYO_CLASS_PERMANENT] = "permanent",
};

const char *klaviyo_class_name(enum klaviyo_class c)
{
    if ((unsigned)c < sizeof class_names / sizeof class_names[0] && class_names[c])
        return class_names[c];
    return "?";
}

static int64_t backoff_ms(const struct klaviyo_config *cfg, int attempt, uint32_t jitter)
{
    int64_t b = cfg->backoff_base_ms > 0 ? cfg->backoff_base_ms : 1;
    int64_t cap = cfg->backoff_max_ms > b ? cfg->backoff_max_ms : b;
    for (int i = 1; i < attempt && b < cap; i++)
        b *= 2;
    if (b > cap)
        b = cap;
    /* "Equal jitter": half fixed, half random, so retries of many calls spread out but none
     * comes back sooner than half the backoff. */
    int64_t half = b / 2;
    return half + (int64_t)((uint64_t)(b - half) * jitter / UINT32_MAX);
}

void klaviyo_classify(const struct klaviyo_attempt *a, const struct klaviyo_config *cfg,
                      uint32_t jitter, struct klaviyo_verdict *out)
{
    const int s = a->http_status;
    const bool is_post = a->method && strcmp(a->method, "POST") == 0;
    const bool attempts_left = a->attempt < cfg->max_attempts;
    memset(out, 0, sizeof *out);

    if (a->net != KLAVIYO_NET_NONE || s == 0) {
        out->cls = KLAVIYO_CLASS_NETWORK;
        /* Nothing left the machine: safe to send again whatever the method. Otherwise a POST
         * may have created the object already. */
        bool sent = a->net != KLAVIYO_NET_NOT_SENT && a->request_sent;
        if (is_post && sent) {
            out->outcome = KLAVIYO_OUT_UNKNOWN;
            return;
        }
        out->retry = attempts_left;
        out->outcome = KLAVIYO_OUT_UNREACHABLE;
    } else if (s >= 200 && s < 300) {
        out->cls = KLAVIYO_CLASS_OK;
        out->outcome = KLAVIYO_OUT_OK;
        return;
    } else if (s == 401) {
        out->cls = KLAVIYO_CLASS_AUTH;
        out->outcome = KLAVIYO_OUT_REVOKED; /* until the re-check says otherwise */
        return;
    } else if (s == 403) {
        /* A CDN challenge never reached Klaviyo's API, so even a POST may be sent again. A 403
         * without Klaviyo's error document did not come from the API either. */
        if (a->cf_challenge || a->html || !a->json_error) {
            out->cls = KLAVIYO_CLASS_CHALLENGE;
            out->retry = attempts_left;
            out->outcome = KLAVIYO_OUT_TRANSIENT;
        } else {
            out->cls = KLAVIYO_CLASS_SCOPE;
            out->outcome = KLAVIYO_OUT_MISSING_SCOPE;
            return;
        }
    } else if (s == 429) {
        /* Throttled requests were not processed: retrying a POST is safe. */
        out->cls = KLAVIYO_CLASS_THROTTLED;
        out->retry = attempts_left;
        out->outcome = KLAVIYO_OUT_TRANSIENT;
        int64_t w = backoff_ms(cfg, a->attempt, jitter);
        out->wait_ms = a->retry_after_ms > w ? a->retry_after_ms : w;
        if (!out->retry)
            out->wait_ms = 0;
        return;
    } else if (s >= 500 && s < 600) {
        out->cls = KLAVIYO_CLASS_SERVER;
        if (is_post) {
            out->outcome = KLAVIYO_OUT_UNKNOWN;
            return;
        }
        out->retry = attempts_left;
        out->outcome = KLAVIYO_OUT_TRANSIENT;
    } else {
        out->cls = KLAVIYO_CLASS_PERMANENT;
        out->outcome = KLAVIYO_OUT_PERMANENT;
        return;
    }
    if (out->retry) {
        int64_t w = backoff_ms(cfg, a->attempt, jitter);
        out->wait_ms = a->retry_after_ms > w ? a->retry_after_ms : w;
    }
}
