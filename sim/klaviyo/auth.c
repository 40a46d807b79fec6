/*
 * Authentication, revision header, scopes and rate limits, in the order Klaviyo applies them.
 *
 * Rate limits follow Klaviyo's developer guides: per account (every private key of an account
 * shares the quota) and per operation, in FIXED windows of 1 s (burst), 60 s (steady) and one
 * day, aligned to boundaries of the emulated clock (so --time-scale shortens all of them).
 * Limits come from kspec. The "foreign_usage" fault models another integration on the same
 * account that has already used that share of every window.
 *
 * Durations in headers and messages (RateLimit-Reset, Retry-After, "Expected available in N
 * seconds") are seconds of the EMULATED clock, rounded up: exactly what Klaviyo would send at
 * --time-scale 1. A client that knows the scale (Cadence with CADENCE_KLAVIYO_RATE_SCALE=N) runs
 * its rate-limit clock N times faster and reads them as they are; whole real seconds would be
 * useless there (a 60 s window lasts 3 s at scale 20). A client that does not know the scale
 * waits N times longer than it needs to, never too little.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

struct rl_counter {
    int64_t burst_win, steady_win, day_win;
    int burst, steady, day;
};

struct sim_rl {
    int unused;
    struct rl_counter c[];
};

struct sim_rl *auth_rl_new(void)
{
    struct sim_rl *rl = calloc(1, sizeof *rl + kspec_ops_count * sizeof(struct rl_counter));
    if (!rl)
        abort();
    return rl;
}

void auth_reset_counters(void)
{
    for (size_t i = 0; i < sim.naccounts; i++)
        memset(sim.accounts[i]->rl->c, 0, kspec_ops_count * sizeof(struct rl_counter));
}

static bool has_scope(const char *have, const char *need, size_t need_len)
{
    if (strcmp(have, "all") == 0)
        return true;
    for (const char *p = have; *p;) {
        size_t n = strcspn(p, ",");
        if (n == need_len && strncmp(p, need, n) == 0)
            return true;
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}

static int available(int limit)
{
    return limit - (int)floor(limit * sim.faults.foreign_usage);
}

/* Emulated seconds until `sim_ms` of emulated time have passed, rounded up, at least 1. */
static long sim_seconds(int64_t sim_ms)
{
    int64_t s = (sim_ms + 999) / 1000;
    return s < 1 ? 1 : (long)s;
}

static struct rl_counter *counter(struct sim_req *r, int64_t now)
{
    struct rl_counter *c = &r->acct->rl->c[r->op - kspec_ops];
    if (c->burst_win != now / 1000) {
        c->burst_win = now / 1000;
        c->burst = 0;
    }
    if (c->steady_win != now / 60000) {
        c->steady_win = now / 60000;
        c->steady = 0;
    }
    if (c->day_win != now / 86400000) {
        c->day_win = now / 86400000;
        c->day = 0;
    }
    return c;
}

static bool rate_check(struct sim_req *r)
{
    int64_t now = sim_clock_ms();
    struct rl_counter *c = counter(r, now);
    const struct kspec_op *op = r->op;
    int64_t wait = 0;
    if (op->burst_per_s > 0 && c->burst >= available(op->burst_per_s))
        wait = (c->burst_win + 1) * 1000 - now;
    if (op->steady_per_min > 0 && c->steady >= available(op->steady_per_min)) {
        int64_t w = (c->steady_win + 1) * 60000 - now;
        wait = w > wait ? w : wait;
    }
    if (op->daily > 0 && c->day >= available(op->daily)) {
        int64_t w = (c->day_win + 1) * 86400000 - now;
        wait = w > wait ? w : wait;
    }
    if (wait > 0) {
        long secs = sim_seconds(wait);
        char d[120], v[24];
        snprintf(d, sizeof d, "Request was throttled. Expected available in %ld second%s.", secs,
                 secs == 1 ? "" : "s");
        japi_error(r, 429, "throttled", "Request was throttled.", d, NULL, NULL);
        snprintf(v, sizeof v, "%ld", secs);
        req_add_header(r, "Retry-After", v);
        return false;
    }
    c->burst++;
    c->steady++;
    c->day++;
    return true;
}

void auth_rate_headers(struct sim_req *r)
{
    int64_t now = sim_clock_ms();
    struct rl_counter *c = counter(r, now);
    int limit = r->op->steady_per_min;
    int remaining = available(limit) - c->steady;
    char v[24];
    snprintf(v, sizeof v, "%d", limit);
    req_add_header(r, "RateLimit-Limit", v);
    snprintf(v, sizeof v, "%d", remaining < 0 ? 0 : remaining);
    req_add_header(r, "RateLimit-Remaining", v);
    snprintf(v, sizeof v, "%ld", sim_seconds((c->steady_win + 1) * 60000 - now));
    req_add_header(r, "RateLimit-Reset", v);
}

static bool valid_revision(const char *v)
{
    /* YYYY-MM-DD[.suffix] */
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7) {
            if (v[i] != '-')
                return false;
        } else if (v[i] < '0' || v[i] > '9') {
            return false;
        }
    }
    return v[10] == 0 || v[10] == '.';
}

bool auth_check(struct sim_req *r)
{
    const char *h = req_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    static const char scheme[] = "Klaviyo-API-Key ";
    if (!h || strncmp(h, scheme, sizeof scheme - 1) != 0) {
        japi_error(r, 401, "not_authenticated", "Authentication credentials were not provided.",
                   "Missing or invalid authorization scheme. Please use Klaviyo-API-Key.", NULL,
                   NULL);
        return false;
    }
    struct sim_key *k = sim_key_find(h + sizeof scheme - 1);
    if (!k || k->revoked) {
        japi_error(r, 401, "not_authenticated", "Incorrect authentication credentials.",
                   "The API key specified is invalid.", NULL, NULL);
        return false;
    }
    r->key = k;
    r->acct = k->acct;
    const char *rev = req_header(r, "revision");
    if (!rev || !*rev) {
        japi_error(r, 400, "invalid", "Invalid input.", "The 'revision' header is required.", NULL,
                   "revision");
        return false;
    }
    if (!valid_revision(rev)) {
        japi_error(r, 400, "invalid", "Invalid input.",
                   "The 'revision' header must look like YYYY-MM-DD[.suffix].", NULL, "revision");
        return false;
    }
    for (const char *p = r->op->scopes; *p;) {
        size_t n = strcspn(p, ",");
        if (!has_scope(k->scopes, p, n)) {
            char d[200];
            snprintf(d, sizeof d, "This API key is missing required scopes: %.*s.", (int)n, p);
            japi_error(r, 403, "permission_denied",
                       "You do not have permission to perform this action.", d, NULL, NULL);
            return false;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return rate_check(r);
}
