/*
 * Sliding-window rate limiter keyed by (account, operationId); see ratelimit.h for the model.
 *
 * Each bucket keeps, per window, the times of its most recent grants (as many as the window's
 * limit) in a ring that grows on demand (so a lightly used 3500/min operation costs a few bytes,
 * not 28 KB). A grant is allowed when the limit-th most recent grant is a whole window (plus the
 * margin) ago; otherwise the wait is the time until it is, which makes the answer exact: asking
 * again after *wait_ms succeeds unless someone else took the slot.
 *
 * Buckets whose grants have all left their windows and that have no pacing or penalty are the
 * same as new ones; a sweep at most once a minute of the callers' clock drops them, so memory
 * follows the active (account, operation) pairs rather than every pair ever seen.
 */
#include "klaviyo/ratelimit.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define BURST_MS           1000
#define STEADY_MS          60000
#define DAILY_MS           86400000
#define SWEEP_MS           60000
#define MAX_RESET_S        86400
#define MAX_RETRY_AFTER_MS ((int64_t)DAILY_MS)
#define VIEW_STALE_MS      (10 * (int64_t)STEADY_MS)
#define PROBE_WAIT_MS      50

enum { W_BURST, W_STEADY, W_DAILY, W_COUNT };

/* At most `limit` grants in any span of `span_ms`. The ring keeps the times of the most recent
 * `count` grants (count <= spec, the limit from the spec), oldest at `head`, in time order; `cap`
 * grows on demand up to spec. Old grants are overwritten rather than expired by the clock, so a
 * caller whose clock reads a little behind another's is still checked against every grant that
 * could share a window with it. */
struct window {
    int64_t *t;
    int cap, head, count;
    int spec, limit;
    int64_t span_ms;
};

/* From the server's headers: until `until_ms`, only `left` more grants, at least `interval_ms`
 * apart. Inactive when until_ms is 0. */
struct pacing {
    int64_t until_ms;
    int64_t interval_ms;
    int left;
};

/* The server's steady window, learnt from RateLimit-* headers (ratelimit_observe_window). The
 * window in progress ends at an edge E with edge_lo < E <= edge_hi, on the limiter's clock. */
struct server_view {
    bool on;
    int64_t edge_lo, edge_hi;
    int64_t last_obs_ms;
    int limit;        /* min(spec, the server's RateLimit-Limit) */
    int guess_left;   /* the window's budget before its first observation */
    bool observed;    /* obs_left holds the min over this window's observations */
    int obs_left;     /* remaining - other requests outstanding - grants since, minimised */
    int min_rem;      /* the lowest RateLimit-Remaining this window's answers gave */
    long unheard0;    /* the bucket's unheard() when this window began */
    int next_pre;     /* grants that may be counted in the next window */
    bool snapped;     /* next_pre holds what was outstanding at edge_lo */
    int server_limit; /* the latest RateLimit-Limit, which `foreign` is a part of */
    int foreign;      /* others' use of this window: the largest lower bound its answers gave */
    int foreign_last; /* ... and of the window before, still assumed (others go on) */
    int own;          /* own grants that may be counted in this window (an upper bound) */
    bool straddled;   /* own requests from the window before may be counted in this one */
};

struct bucket {
    struct bucket *next;
    uint64_t hash;
    char *account;
    char *op_id;
    struct window w[W_COUNT]; /* w[W_DAILY].spec is 0 without a daily cap */
    struct pacing pace[2];    /* burst and steady */
    int64_t last_ms;          /* latest time any caller passed in */
    int64_t last_grant_ms;    /* when the latest grant was recorded */
    int64_t blocked_until_ms; /* 429 penalty */
    int outstanding;          /* granted and not released (ratelimit_release) */
    long heard, releases;     /* answers with RateLimit-* headers, and all answers */
    struct server_view sv;
};

struct ratelimit {
    pthread_mutex_t lock;
    struct bucket **slots;
    size_t nslots, nbuckets;
    int64_t margin_ms;
    int64_t last_sweep_ms;
    bool probe_first;
};

static uint64_t bucket_hash(const char *account, const char *op_id)
{
    uint64_t h = 14695981039346656037ULL;
    for (const char *p = account; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL; /* keeps ("ab", "c") apart from ("a", "bc") */
    for (const char *p = op_id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

static int64_t window_at(const struct window *w, int i)
{
    return w->t[(w->head + i) % w->cap];
}

/* Time until one more grant at `now` keeps every span of span_ms at `limit` or fewer (0: now).
 * Grants are recorded no earlier than the newest before them, so the limit-th most recent grant
 * is the one that must be a whole span away, whatever order the callers' clocks arrive in. */
static int64_t window_wait_limit(const struct window *w, int64_t now, int limit)
{
    if (w->spec == 0 || w->count < limit)
        return 0;
    if (limit <= 0)
        return w->span_ms;
    int64_t must_leave = window_at(w, w->count - limit);
    return must_leave + w->span_ms > now ? must_leave + w->span_ms - now : 0;
}

static int64_t window_wait(const struct window *w, int64_t now)
{
    return window_wait_limit(w, now, w->limit);
}

/* Grants at `now` that still fit in this window. */
static int window_left(const struct window *w, int64_t now)
{
    int lo = 0, hi = w->count;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (now - window_at(w, mid) >= w->span_ms)
            lo = mid + 1;
        else
            hi = mid;
    }
    int used = w->count - lo;
    return used < w->limit ? w->limit - used : 0;
}

static bool window_idle(const struct window *w, int64_t now)
{
    return w->count == 0 || now - window_at(w, w->count - 1) >= w->span_ms;
}

/* Makes room for one more grant so that window_push() cannot fail. */
static int window_reserve(struct window *w)
{
    if (w->spec == 0 || w->count < w->cap || w->cap == w->spec)
        return CAD_OK;
    int cap = w->cap < 8 ? 8 : 2 * w->cap;
    if (cap > w->spec)
        cap = w->spec;
    int64_t *t = malloc((size_t)cap * sizeof *t);
    if (!t)
        return cad_fail(CAD_ENOMEM, "out of memory growing a rate-limit window to %d", cap);
    for (int i = 0; i < w->count; i++)
        t[i] = window_at(w, i);
    free(w->t);
    w->t = t;
    w->cap = cap;
    w->head = 0;
    return CAD_OK;
}

static void window_push(struct window *w, int64_t at)
{
    if (w->spec == 0)
        return;
    if (w->count < w->cap) {
        w->t[(w->head + w->count) % w->cap] = at;
        w->count++;
    } else {
        w->t[w->head] = at;
        w->head = (w->head + 1) % w->cap;
    }
}

static void bucket_free(struct bucket *b)
{
    for (int i = 0; i < W_COUNT; i++)
        free(b->w[i].t);
    free(b->account);
    free(b->op_id);
    free(b);
}

/* Ends pacing that is over at `now`. */
static void bucket_touch(struct bucket *b, int64_t now)
{
    if (now > b->last_ms)
        b->last_ms = now;
    for (int i = 0; i < 2; i++)
        if (b->pace[i].until_ms != 0 && b->pace[i].until_ms <= now)
            b->pace[i] = (struct pacing){0};
}

/* Nothing in any window, no pacing, no penalty: the same as a bucket never used. */
static bool bucket_idle(const struct bucket *b, int64_t now)
{
    for (int i = 0; i < W_COUNT; i++)
        if (!window_idle(&b->w[i], now))
            return false;
    return b->pace[0].until_ms == 0 && b->pace[1].until_ms == 0 && b->blocked_until_ms <= now &&
           b->outstanding == 0;
}

static void sweep(struct ratelimit *rl, int64_t now)
{
    for (size_t s = 0; s < rl->nslots; s++) {
        struct bucket **pp = &rl->slots[s];
        while (*pp) {
            struct bucket *b = *pp;
            if (now >= b->last_ms) {
                bucket_touch(b, now);
                if (bucket_idle(b, now)) {
                    *pp = b->next;
                    bucket_free(b);
                    rl->nbuckets--;
                    continue;
                }
            }
            pp = &b->next;
        }
    }
    rl->last_sweep_ms = now;
}

static int grow_table(struct ratelimit *rl)
{
    size_t n = rl->nslots * 2;
    struct bucket **slots = calloc(n, sizeof(struct bucket *));
    if (!slots)
        return cad_fail(CAD_ENOMEM, "out of memory growing the rate-limit table");
    for (size_t s = 0; s < rl->nslots; s++) {
        struct bucket *b = rl->slots[s];
        while (b) {
            struct bucket *next = b->next;
            b->next = slots[b->hash & (n - 1)];
            slots[b->hash & (n - 1)] = b;
            b = next;
        }
    }
    free(rl->slots);
    rl->slots = slots;
    rl->nslots = n;
    return CAD_OK;
}

static struct bucket *bucket_find(struct ratelimit *rl, const char *account, const char *op_id,
                                  uint64_t h)
{
    for (struct bucket *b = rl->slots[h & (rl->nslots - 1)]; b; b = b->next)
        if (b->hash == h && strcmp(b->account, account) == 0 && strcmp(b->op_id, op_id) == 0)
            return b;
    return NULL;
}

static int bucket_get(struct ratelimit *rl, const char *account, const struct kspec_op *op,
                      struct bucket **out)
{
    uint64_t h = bucket_hash(account, op->operation_id);
    *out = bucket_find(rl, account, op->operation_id, h);
    if (*out)
        return CAD_OK;
    if (rl->nbuckets >= rl->nslots && grow_table(rl) != CAD_OK)
        return CAD_ENOMEM;
    struct bucket *b = calloc(1, sizeof *b);
    if (!b || !(b->account = strdup(account)) || !(b->op_id = strdup(op->operation_id))) {
        if (b)
            bucket_free(b);
        return cad_fail(CAD_ENOMEM, "out of memory adding a rate-limit bucket");
    }
    int spec[W_COUNT] = {op->burst_per_s, op->steady_per_min, op->daily};
    int64_t span[W_COUNT] = {BURST_MS, STEADY_MS, DAILY_MS};
    for (int i = 0; i < W_COUNT; i++)
        b->w[i] =
            (struct window){.spec = spec[i], .limit = spec[i], .span_ms = span[i] + rl->margin_ms};
    b->hash = h;
    b->next = rl->slots[h & (rl->nslots - 1)];
    rl->slots[h & (rl->nslots - 1)] = b;
    rl->nbuckets++;
    *out = b;
    return CAD_OK;
}

static int check_args(const ratelimit *rl, const char *account, const struct kspec_op *op,
                      int64_t now_ms)
{
    if (!rl || !account || !op || !op->operation_id)
        return cad_fail(CAD_EINVAL, "rate limiter called without a limiter, account or operation");
    size_t len = strnlen(account, RATELIMIT_MAX_ACCOUNT + 1);
    if (len == 0 || len > RATELIMIT_MAX_ACCOUNT)
        return cad_fail(CAD_EINVAL, "the rate-limit account key must be 1 to %d characters",
                        RATELIMIT_MAX_ACCOUNT);
    if (op->burst_per_s < 1 || op->steady_per_min < 1 || op->daily < 0)
        return cad_fail(CAD_EINVAL, "operation %s has unusable limits (%d/s, %d/min, %d/day)",
                        op->operation_id, op->burst_per_s, op->steady_per_min, op->daily);
    if (now_ms < 0 || now_ms > INT64_MAX / 4)
        return cad_fail(CAD_EINVAL,
                        "the rate-limit clock reads %lld ms; expected a non-negative time",
                        (long long)now_ms);
    return CAD_OK;
}

int ratelimit_new(ratelimit **out, int margin_ms)
{
    if (!out)
        return cad_fail(CAD_EINVAL, "ratelimit_new needs somewhere to put the limiter");
    *out = NULL;
    if (margin_ms < 0 || margin_ms > RATELIMIT_MAX_MARGIN_MS)
        return cad_fail(CAD_EINVAL, "the rate-limit margin is %d ms; expected 0 to %d", margin_ms,
                        RATELIMIT_MAX_MARGIN_MS);
    struct ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl || !(rl->slots = calloc(64, sizeof(struct bucket *)))) {
        free(rl);
        return cad_fail(CAD_ENOMEM, "out of memory creating the rate limiter");
    }
    rl->nslots = 64;
    rl->margin_ms = margin_ms;
    pthread_mutex_init(&rl->lock, NULL);
    *out = rl;
    return CAD_OK;
}

void ratelimit_free(ratelimit *rl)
{
    if (!rl)
        return;
    for (size_t s = 0; s < rl->nslots; s++) {
        struct bucket *b = rl->slots[s];
        while (b) {
            struct bucket *next = b->next;
            bucket_free(b);
            b = next;
        }
    }
    free(rl->slots);
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* ---- the server's view (see ratelimit.h) ---- */

static int view_left(const struct server_view *v)
{
    return v->observed ? v->obs_left : v->guess_left;
}

/* The burst others leave us: the spec's, less the share of the steady window they use. */
static int view_burst(const struct bucket *b)
{
    const struct server_view *v = &b->sv;
    int burst = b->w[W_BURST].limit;
    int foreign = v->foreign > v->foreign_last ? v->foreign : v->foreign_last;
    if (!v->on || foreign <= 0 || v->server_limit <= 0)
        return burst;
    /* Their share of the burst, rounded up (the estimate of their use is a lower bound), but
     * never all of it: one request a window still learns how things stand. */
    int64_t theirs = ((int64_t)burst * foreign + v->server_limit - 1) / v->server_limit;
    return theirs >= burst ? 1 : burst - (int)theirs;
}

static void view_roll(struct bucket *b);

/* Answers so far that carried no RateLimit-* headers. */
static long unheard(const struct bucket *b)
{
    return b->releases - b->heard;
}

/* Brings the view to `now`: from edge_lo on, what is outstanding may be counted in the next
 * window; from edge_hi on, the next window is the current one. A view without news for
 * VIEW_STALE_MS is dropped (the sliding windows, which saw every grant, take over). */
static void view_advance(struct bucket *b, int64_t now)
{
    struct server_view *v = &b->sv;
    if (!v->on)
        return;
    if (now - v->last_obs_ms > VIEW_STALE_MS) {
        *v = (struct server_view){0};
        return;
    }
    while (now >= v->edge_lo) {
        if (!v->snapped) {
            v->next_pre += b->outstanding;
            v->snapped = true;
        }
        if (now < v->edge_hi)
            break;
        view_roll(b);
    }
}

/* The next window becomes the current one. */
static void view_roll(struct bucket *b)
{
    struct server_view *v = &b->sv;
    v->edge_lo += STEADY_MS;
    v->edge_hi += STEADY_MS;
    /* Until the new window's first answer: assume others go on using what they used. */
    int64_t theirs = v->server_limit > 0
                         ? ((int64_t)v->limit * v->foreign + v->server_limit - 1) / v->server_limit
                         : 0;
    int guess = v->limit - v->next_pre - (int)theirs;
    /* Own requests that straddled the edge make this window's estimate of others' use low:
     * then the one before still stands. */
    if (!v->straddled || v->foreign > v->foreign_last)
        v->foreign_last = v->foreign;
    v->straddled = v->next_pre > 0;
    v->foreign = 0;
    v->guess_left = guess > 0 ? guess : 0;
    v->observed = false;
    v->min_rem = v->limit;
    v->unheard0 = unheard(b);
    v->own = v->next_pre;
    v->next_pre = 0;
    v->snapped = false;
}

/* Own grants that can have been counted in a window that ends after `now`, for a view that starts
 * in it: every grant of the last minute (plus the margin). An upper bound, so others' use derived
 * from it is a lower one. */
static int recent_grants(const struct window *w, int64_t now)
{
    int used = 0;
    for (int i = w->count - 1; i >= 0 && now - window_at(w, i) < w->span_ms; i--)
        used++;
    return used;
}

static void view_observe(struct bucket *b, int limit, int remaining, int reset_s, int64_t sent_ms,
                         int64_t now)
{
    struct server_view *v = &b->sv;
    int lim = limit < b->w[W_STEADY].spec ? limit : b->w[W_STEADY].spec;
    /* Counted at t_s in [sent, now]; RateLimit-Reset is ceil((E - t_s) / 1 s). */
    int64_t lo = sent_ms + ((int64_t)reset_s - 1) * 1000, hi = now + (int64_t)reset_s * 1000;
    /* This answer was counted; everything else outstanding may not have been yet. */
    int others = b->outstanding > 0 ? b->outstanding - 1 : 0;
    int left = (remaining < lim ? remaining : lim) - others;
    if (v->on && hi <= v->edge_lo - STEADY_MS / 2)
        return; /* a late answer about the window before */
    /* An answer counted in the next window: that window has begun (before edge_hi). */
    if (v->on && lo >= v->edge_hi + STEADY_MS / 2 && lo < v->edge_hi + 3 * STEADY_MS / 2) {
        if (!v->snapped)
            v->next_pre += b->outstanding;
        view_roll(b);
    }
    bool fresh = !v->on || lo >= v->edge_hi + STEADY_MS / 2;
    int own = fresh ? recent_grants(&b->w[W_STEADY], now) : v->own;
    int foreign = limit - remaining - own;
    if (fresh) {
        *v = (struct server_view){.on = true,
                                  .edge_lo = lo,
                                  .edge_hi = hi,
                                  .limit = lim,
                                  .observed = true,
                                  .obs_left = left,
                                  .min_rem = remaining,
                                  .unheard0 = unheard(b),
                                  .server_limit = limit,
                                  .foreign = foreign > 0 ? foreign : 0,
                                  .own = own};
    } else {
        v->edge_lo = max64(v->edge_lo, lo);
        v->edge_hi = v->edge_hi < hi ? v->edge_hi : hi;
        if (v->edge_lo >= v->edge_hi) { /* answers that disagree: trust the latest */
            v->edge_lo = lo;
            v->edge_hi = hi;
        }
        if (lim < v->limit)
            v->limit = lim;
        v->server_limit = limit;
        v->obs_left = v->observed && v->obs_left < left ? v->obs_left : left;
        if (remaining < v->min_rem)
            v->min_rem = remaining;
        /* With nothing else outstanding every own grant has been counted, and the one counted
         * last gave the lowest remaining, unless its answer carried no headers: the requests
         * subtracted above as perhaps uncounted (most were counted before their answers came)
         * are given back, less one for each answer this window without headers. */
        long silent = unheard(b) - v->unheard0;
        if (others == 0) {
            int all =
                (v->min_rem < v->limit ? v->min_rem : v->limit) - (int)(silent > 0 ? silent : 0);
            if (all > v->obs_left)
                v->obs_left = all;
        }
        v->observed = true;
        if (foreign > v->foreign)
            v->foreign = foreign;
    }
    v->last_obs_ms = now;
}

/* Time until `b` can grant at `now` (0: it can). */
static int64_t bucket_wait(const struct ratelimit *rl, const struct bucket *b, int64_t now)
{
    int64_t wait = max64(0, b->blocked_until_ms - now);
    const struct server_view *v = &b->sv;
    if (v->on) {
        /* The server's fixed steady window replaces the sliding one; burst and daily stay. */
        if (view_left(v) <= 0)
            wait = max64(wait, v->edge_hi - now);
        wait = max64(wait, window_wait_limit(&b->w[W_BURST], now, view_burst(b)));
        wait = max64(wait, window_wait(&b->w[W_DAILY], now));
    } else {
        if (rl->probe_first && b->outstanding > 0)
            wait = max64(wait, PROBE_WAIT_MS); /* one request first, to learn the window */
        for (int i = 0; i < W_COUNT; i++)
            wait = max64(wait, window_wait(&b->w[i], now));
    }
    for (int i = 0; i < 2; i++) {
        const struct pacing *p = &b->pace[i];
        if (p->until_ms == 0)
            continue;
        if (p->left <= 0)
            wait = max64(wait, p->until_ms - now);
        else
            wait = max64(wait, b->last_grant_ms + p->interval_ms - now);
    }
    return wait;
}

/* Records a grant at `now` in every window (all or none) and in the pacing. */
static int bucket_grant(struct bucket *b, int64_t now)
{
    for (int i = 0; i < W_COUNT; i++) {
        int rc = window_reserve(&b->w[i]);
        if (rc != CAD_OK)
            return rc;
    }
    /* Recorded no earlier than the grant before, which keeps the rings in order. */
    int64_t at = now > b->last_grant_ms ? now : b->last_grant_ms;
    for (int i = 0; i < W_COUNT; i++)
        window_push(&b->w[i], at);
    for (int i = 0; i < 2; i++)
        if (b->pace[i].until_ms != 0)
            b->pace[i].left--;
    if (b->sv.on) {
        if (b->sv.observed)
            b->sv.obs_left--;
        else
            b->sv.guess_left--;
        if (now >= b->sv.edge_lo)
            b->sv.next_pre++;
        b->sv.own++;
    }
    b->outstanding++;
    b->last_grant_ms = at;
    return CAD_OK;
}

int ratelimit_acquire(ratelimit *rl, const char *account, const struct kspec_op *op, int64_t now_ms,
                      int64_t *wait_ms)
{
    int rc = check_args(rl, account, op, now_ms);
    if (rc != CAD_OK)
        return rc;
    if (!wait_ms)
        return cad_fail(CAD_EINVAL, "ratelimit_acquire needs somewhere to put the wait");
    *wait_ms = 0;
    pthread_mutex_lock(&rl->lock);
    if (now_ms - rl->last_sweep_ms >= SWEEP_MS)
        sweep(rl, now_ms);
    struct bucket *b;
    rc = bucket_get(rl, account, op, &b);
    if (rc == CAD_OK) {
        bucket_touch(b, now_ms);
        view_advance(b, now_ms);
        int64_t wait = bucket_wait(rl, b, now_ms);
        if (wait > 0) {
            *wait_ms = wait;
            rc = RATELIMIT_WAIT;
        } else {
            rc = bucket_grant(b, now_ms);
        }
    }
    pthread_mutex_unlock(&rl->lock);
    return rc;
}

int ratelimit_observe(ratelimit *rl, const char *account, const struct kspec_op *op, int limit,
                      int remaining, int reset_s, int64_t now_ms)
{
    int rc = check_args(rl, account, op, now_ms);
    if (rc != CAD_OK)
        return rc;
    if (limit < 1 || remaining < 0 || reset_s < 0 || reset_s > MAX_RESET_S)
        return cad_fail(CAD_EINVAL,
                        "RateLimit headers limit=%d remaining=%d reset=%d s are not usable for %s",
                        limit, remaining, reset_s, op->operation_id);
    pthread_mutex_lock(&rl->lock);
    struct bucket *b;
    rc = bucket_get(rl, account, op, &b);
    if (rc == CAD_OK) {
        bucket_touch(b, now_ms);
        int which = reset_s <= 1 && limit <= op->burst_per_s ? W_BURST : W_STEADY;
        struct window *w = &b->w[which];
        if (limit < w->limit)
            w->limit = limit;
        if (remaining < window_left(w, now_ms)) {
            int64_t until = now_ms + ((int64_t)reset_s + 1) * 1000 + rl->margin_ms;
            b->pace[which] = (struct pacing){
                .until_ms = until,
                .left = remaining,
                .interval_ms = remaining > 0 ? (until - now_ms) / remaining : 0,
            };
        } else {
            b->pace[which] = (struct pacing){0};
        }
    }
    pthread_mutex_unlock(&rl->lock);
    return rc;
}

int ratelimit_penalize(ratelimit *rl, const char *account, const struct kspec_op *op,
                       int64_t retry_after_ms, int64_t now_ms)
{
    int rc = check_args(rl, account, op, now_ms);
    if (rc != CAD_OK)
        return rc;
    if (retry_after_ms < 0 || retry_after_ms > MAX_RETRY_AFTER_MS)
        return cad_fail(CAD_EINVAL, "Retry-After of %lld ms for %s is not usable",
                        (long long)retry_after_ms, op->operation_id);
    if (retry_after_ms == 0)
        retry_after_ms = BURST_MS;
    pthread_mutex_lock(&rl->lock);
    struct bucket *b;
    rc = bucket_get(rl, account, op, &b);
    if (rc == CAD_OK) {
        bucket_touch(b, now_ms);
        b->blocked_until_ms = max64(b->blocked_until_ms, now_ms + retry_after_ms + rl->margin_ms);
    }
    pthread_mutex_unlock(&rl->lock);
    return rc;
}

int ratelimit_remaining(ratelimit *rl, const char *account, const struct kspec_op *op,
                        int64_t now_ms, int *burst_left, int *steady_left, int *daily_left)
{
    int rc = check_args(rl, account, op, now_ms);
    if (rc != CAD_OK)
        return rc;
    int left[W_COUNT] = {op->burst_per_s, op->steady_per_min, op->daily};
    pthread_mutex_lock(&rl->lock);
    struct bucket *b =
        bucket_find(rl, account, op->operation_id, bucket_hash(account, op->operation_id));
    if (b) {
        bucket_touch(b, now_ms);
        view_advance(b, now_ms);
        for (int i = 0; i < W_COUNT; i++)
            left[i] = window_left(&b->w[i], now_ms);
        if (b->sv.on) {
            int v = view_left(&b->sv), burst = view_burst(b);
            left[W_STEADY] = v > 0 ? v : 0;
            int used = b->w[W_BURST].limit - left[W_BURST];
            left[W_BURST] = burst > used ? burst - used : 0;
        }
        for (int i = 0; i < 2; i++)
            if (b->pace[i].until_ms != 0 && b->pace[i].left < left[i])
                left[i] = b->pace[i].left > 0 ? b->pace[i].left : 0;
        if (b->blocked_until_ms > now_ms)
            left[W_BURST] = left[W_STEADY] = 0;
    }
    pthread_mutex_unlock(&rl->lock);
    if (burst_left)
        *burst_left = left[W_BURST];
    if (steady_left)
        *steady_left = left[W_STEADY];
    if (daily_left)
        *daily_left = op->daily > 0 ? left[W_DAILY] : RATELIMIT_UNLIMITED;
    return CAD_OK;
}

int ratelimit_observe_window(ratelimit *rl, const char *account, const struct kspec_op *op,
                             int limit, int remaining, int reset_s, int64_t sent_ms, int64_t now_ms)
{
    int rc = check_args(rl, account, op, now_ms);
    if (rc != CAD_OK)
        return rc;
    if (limit < 1 || remaining < 0 || reset_s < 0 || reset_s > STEADY_MS / 1000 || sent_ms < 0 ||
        sent_ms > now_ms)
        return cad_fail(CAD_EINVAL,
                        "RateLimit headers limit=%d remaining=%d reset=%d s (sent %lld ms before) "
                        "are not usable for %s",
                        limit, remaining, reset_s, (long long)(now_ms - sent_ms), op->operation_id);
    pthread_mutex_lock(&rl->lock);
    struct bucket *b;
    rc = bucket_get(rl, account, op, &b);
    if (rc == CAD_OK) {
        bucket_touch(b, now_ms);
        view_advance(b, now_ms);
        view_observe(b, limit, remaining, reset_s, sent_ms, now_ms);
        b->heard++;
        view_advance(b, now_ms);
    }
    pthread_mutex_unlock(&rl->lock);
    return rc;
}

void ratelimit_sent(ratelimit *rl, const char *account, const struct kspec_op *op,
                    int64_t granted_ms, int64_t sent_ms)
{
    if (!rl || !account || !op || sent_ms <= granted_ms)
        return;
    pthread_mutex_lock(&rl->lock);
    struct bucket *b =
        bucket_find(rl, account, op->operation_id, bucket_hash(account, op->operation_id));
    if (b) {
        /* the newest grants, from granted_ms on, move to sent_ms: max() keeps each ring in order */
        for (int k = 0; k < W_COUNT; k++) {
            struct window *w = &b->w[k];
            for (int i = w->count - 1; i >= 0; i--) {
                int64_t *t = &w->t[(w->head + i) % w->cap];
                if (*t < granted_ms)
                    break;
                if (*t < sent_ms)
                    *t = sent_ms;
            }
        }
        if (b->last_grant_ms < sent_ms)
            b->last_grant_ms = sent_ms;
    }
    pthread_mutex_unlock(&rl->lock);
}

int ratelimit_release(ratelimit *rl, const char *account, const struct kspec_op *op, int64_t now_ms)
{
    int rc = check_args(rl, account, op, now_ms);
    if (rc != CAD_OK)
        return rc;
    pthread_mutex_lock(&rl->lock);
    struct bucket *b =
        bucket_find(rl, account, op->operation_id, bucket_hash(account, op->operation_id));
    if (b) {
        bucket_touch(b, now_ms);
        view_advance(b, now_ms);
        if (b->outstanding > 0)
            b->outstanding--;
        b->releases++;
    }
    pthread_mutex_unlock(&rl->lock);
    return CAD_OK;
}

void ratelimit_probe_first(ratelimit *rl, bool on)
{
    pthread_mutex_lock(&rl->lock);
    rl->probe_first = on;
    pthread_mutex_unlock(&rl->lock);
}
