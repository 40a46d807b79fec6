/*
 * The rate limiter, driven by a simulated clock.
 *
 * The property test is the proof that matters: random workloads (random operations and
 * accounts, random arrival times, early and late retries, arbitrary server headers and 429s)
 * go through ratelimit_acquire(), and every account/operation's grants are then counted in
 * Klaviyo's fixed windows at every phase that can make a difference. No window may ever hold
 * more than the spec allows. The throughput tests show the limiter is not simply slow.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/util.h"
#include "klaviyo/ratelimit.h"
#include "kspec/kspec.h"

#define SEC  ((int64_t)1000)
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)

static const struct kspec_op *op_named(const char *id)
{
    const struct kspec_op *op = kspec_by_id(id);
    if (!op)
        fail_msg("no operation %s in kspec", id);
    return op;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int64_t rng_below(uint64_t *s, int64_t n)
{
    return n <= 0 ? 0 : (int64_t)(rng_next(s) % (uint64_t)n);
}

/* ---- grant logs and the fixed-window checker ---- */

struct grants {
    int64_t *t;
    size_t n, cap;
};

static void grants_add(struct grants *g, int64_t t)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 256;
        g->t = realloc(g->t, g->cap * sizeof *g->t);
        assert_non_null(g->t);
    }
    assert_true(g->n == 0 || g->t[g->n - 1] <= t);
    g->t[g->n++] = t;
}

/* The fullest window of length `len` whose start is congruent to `phase` (mod len). Grant i
 * lies at q[i] * len + m[i]; its window at this phase is q[i], or q[i] - 1 when m[i] < phase. */
static size_t fixed_window_max(const int64_t *q, const int64_t *m, size_t n, int64_t phase)
{
    size_t best = 0, run = 0;
    int64_t current = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        int64_t w = q[i] - (m[i] < phase);
        run = w == current ? run + 1 : 1;
        current = w;
        if (run > best)
            best = run;
    }
    return best;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/*
 * The most grants any of Klaviyo's fixed windows of length `len` would count, over the phases
 * the server's windows might have: every millisecond phase when len is 1 s; otherwise 1000
 * phases spread over the window plus every phase that starts a window exactly on a grant. Those
 * are the phases that matter (a window can slide forward to start on its first grant without
 * losing one), so the answer is exact; logs of more than ~1400 grants sample them to bound the
 * cost, and sliding_worst() below covers every phase at once regardless.
 */
static size_t fixed_windows_worst(const struct grants *g, int64_t len)
{
    if (g->n == 0)
        return 0;
    int64_t *q = malloc(g->n * sizeof *q), *m = malloc(g->n * sizeof *m);
    size_t budget = 2000000 / g->n, step = g->n / (budget ? budget : 1) + 1, nphases = 0;
    int64_t *phases = malloc((len <= 1000 ? (size_t)len : 1000 + g->n) * sizeof *phases);
    assert_true(q && m && phases);
    for (size_t i = 0; i < g->n; i++) {
        q[i] = g->t[i] / len;
        m[i] = g->t[i] % len;
    }
    if (len <= 1000) {
        for (int64_t p = 0; p < len; p++)
            phases[nphases++] = p;
    } else {
        for (int64_t k = 0; k < 1000; k++)
            phases[nphases++] = k * (len / 1000) + k % 7;
        for (size_t i = 0; i < g->n; i += step)
            phases[nphases++] = m[i];
    }
    qsort(phases, nphases, sizeof *phases, cmp_i64);
    size_t worst = 0;
    for (size_t i = 0; i < nphases; i++) {
        if (i > 0 && phases[i] == phases[i - 1])
            continue;
        size_t most = fixed_window_max(q, m, g->n, phases[i]);
        worst = most > worst ? most : worst;
    }
    free(phases);
    free(q);
    free(m);
    return worst;
}

/* Most grants within any `len` ms: the supremum over all phases of the fixed-window counts. */
static size_t sliding_worst(const struct grants *g, int64_t len)
{
    size_t worst = 0;
    for (size_t lo = 0, hi = 0; hi < g->n; hi++) {
        while (g->t[hi] - g->t[lo] >= len)
            lo++;
        worst = hi - lo + 1 > worst ? hi - lo + 1 : worst;
    }
    return worst;
}

static void check_fixed_windows(const struct grants *g, int64_t len, int limit, const char *who,
                                const struct kspec_op *op)
{
    size_t fixed = fixed_windows_worst(g, len), sliding = sliding_worst(g, len);
    if (fixed > (size_t)limit || sliding > (size_t)limit)
        fail_msg("%s %s: %zu grants in one fixed %lld ms window, %zu in a sliding one (limit %d)",
                 who, op->operation_id, fixed, (long long)len, sliding, limit);
}

static void check_op_limits(const struct grants *g, const struct kspec_op *op, const char *who)
{
    check_fixed_windows(g, SEC, op->burst_per_s, who, op);
    check_fixed_windows(g, MIN, op->steady_per_min, who, op);
    if (op->daily > 0)
        check_fixed_windows(g, DAY, op->daily, who, op);
}

/* The checker must catch an excess, or the property test proves nothing. */
static void test_checker_catches_excess(void **state)
{
    (void)state;
    struct grants g = {0};
    /* 1/s at a steady 1000 ms spacing is fine at every phase... */
    for (int64_t t = 500; t < 10 * SEC; t += 1000)
        grants_add(&g, t);
    check_fixed_windows(&g, SEC, 1, "spaced", op_named("get_accounts"));
    /* ...but two grants 999 ms apart share a window at one phase in a thousand, and fifteen a
     * minute crowded into 59 999 ms share a minute at a single phase. */
    assert_int_equal(fixed_windows_worst(&g, SEC), 1);
    grants_add(&g, 10 * SEC + 499);
    assert_int_equal(fixed_windows_worst(&g, SEC), 2);
    assert_int_equal(sliding_worst(&g, SEC), 2);
    struct grants s = {0};
    for (int64_t t = 0; t < 14; t++)
        grants_add(&s, 123457 + t * 4000);
    grants_add(&s, 123457 + 60000);
    assert_int_equal(fixed_windows_worst(&s, MIN), 14);
    assert_int_equal(sliding_worst(&s, MIN), 14);
    s.t[14] = 123457 + 59999;
    assert_int_equal(fixed_windows_worst(&s, MIN), 15);
    assert_int_equal(sliding_worst(&s, MIN), 15);
    free(g.t);
    free(s.t);
}

/* ---- basic behaviour ---- */

static ratelimit *new_limiter(int margin)
{
    ratelimit *rl = NULL;
    assert_int_equal(ratelimit_new(&rl, margin), CAD_OK);
    assert_non_null(rl);
    return rl;
}

static void test_burst_and_steady_waits_are_exact(void **state)
{
    (void)state;
    ratelimit *rl = new_limiter(0);
    const struct kspec_op *op = op_named("get_accounts"); /* 1/s, 15/m */
    int64_t wait = -1;
    assert_int_equal(ratelimit_acquire(rl, "AbC123", op, 0, &wait), CAD_OK);
    assert_int_equal(wait, 0);
    assert_int_equal(ratelimit_acquire(rl, "AbC123", op, 0, &wait), RATELIMIT_WAIT);
    assert_int_equal(wait, 1000);
    assert_int_equal(ratelimit_acquire(rl, "AbC123", op, 999, &wait), RATELIMIT_WAIT);
    assert_int_equal(wait, 1);
    for (int64_t t = 1000; t < 15 * SEC; t += 1000)
        assert_int_equal(ratelimit_acquire(rl, "AbC123", op, t, &wait), CAD_OK);
    /* Fifteen in the last minute: the next slot opens when the first leaves the minute. */
    assert_int_equal(ratelimit_acquire(rl, "AbC123", op, 15 * SEC, &wait), RATELIMIT_WAIT);
    assert_int_equal(wait, MIN - 15 * SEC);
    assert_int_equal(ratelimit_acquire(rl, "AbC123", op, MIN - 1, &wait), RATELIMIT_WAIT);
    assert_int_equal(wait, 1);
    assert_int_equal(ratelimit_acquire(rl, "AbC123", op, MIN, &wait), CAD_OK);
    ratelimit_free(rl);
}

static void test_margin_widens_windows(void **state)
{
    (void)state;
    ratelimit *rl = new_limiter(250);
    const struct kspec_op *op = op_named("get_accounts");
    int64_t wait;
    assert_int_equal(ratelimit_acquire(rl, "a", op, 10000, &wait), CAD_OK);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 10000, &wait), RATELIMIT_WAIT);
    assert_int_equal(wait, 1250);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 11249, &wait), RATELIMIT_WAIT);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 11250, &wait), CAD_OK);
    ratelimit_free(rl);
}

/* A request that left later than it was granted (its intent took a while to write) is counted
 * from when it left: the next one waits a whole window from then, not from the grant; a send
 * on time changes nothing; other buckets are not touched. */
static void test_late_send_moves_the_grant(void **state)
{
    (void)state;
    ratelimit *rl = new_limiter(0);
    const struct kspec_op *op = op_named("get_accounts"); /* 1/s, 15/m */
    int64_t wait = -1;
    assert_int_equal(ratelimit_acquire(rl, "a", op, 10000, &wait), CAD_OK);
    assert_int_equal(ratelimit_acquire(rl, "b", op, 10000, &wait), CAD_OK);
    ratelimit_sent(rl, "a", op, 10000, 10300);
    ratelimit_sent(rl, "b", op, 10000, 10000);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 11000, &wait), RATELIMIT_WAIT);
    assert_int_equal(wait, 300);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 11300, &wait), CAD_OK);
    assert_int_equal(ratelimit_acquire(rl, "b", op, 11000, &wait), CAD_OK);
    /* a grant before `granted_ms` stays where it was */
    ratelimit_sent(rl, "b", op, 11500, 11900);
    assert_int_equal(ratelimit_acquire(rl, "b", op, 12000, &wait), CAD_OK);
    ratelimit_free(rl);
}

static void test_daily_cap(void **state)
{
    (void)state;
    ratelimit *rl = new_limiter(0);
    const struct kspec_op *op = op_named("create_custom_metric"); /* 1/s, 15/m, 15/d */
    assert_int_equal(op->daily, 15);
    int64_t wait, t = 5 * HOUR;
    for (int i = 0; i < 15; i++, t += 10 * MIN)
        assert_int_equal(ratelimit_acquire(rl, "a", op, t, &wait), CAD_OK);
    int b, s, d;
    assert_int_equal(ratelimit_remaining(rl, "a", op, t, &b, &s, &d), CAD_OK);
    assert_int_equal(d, 0);
    assert_int_equal(b, 1);
    assert_int_equal(ratelimit_acquire(rl, "a", op, t, &wait), RATELIMIT_WAIT);
    assert_int_equal(t + wait, 5 * HOUR + DAY);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 5 * HOUR + DAY, &wait), CAD_OK);
    ratelimit_free(rl);
}

static void test_buckets_are_per_account_and_operation(void **state)
{
    (void)state;
    ratelimit *rl = new_limiter(0);
    const struct kspec_op *accounts = op_named("get_accounts"), *account = op_named("get_account");
    int64_t wait;
    assert_int_equal(ratelimit_acquire(rl, "A", accounts, 0, &wait), CAD_OK);
    assert_int_equal(ratelimit_acquire(rl, "A", accounts, 0, &wait), RATELIMIT_WAIT);
    assert_int_equal(ratelimit_acquire(rl, "B", accounts, 0, &wait), CAD_OK);
    assert_int_equal(ratelimit_acquire(rl, "A", account, 0, &wait), CAD_OK);
    /* Keys that would collide if the two parts were simply concatenated. */
    struct kspec_op a_op = *accounts, b_op = *accounts;
    a_op.operation_id = "bc";
    b_op.operation_id = "c";
    assert_int_equal(ratelimit_acquire(rl, "a", &a_op, 0, &wait), CAD_OK);
    assert_int_equal(ratelimit_acquire(rl, "ab", &b_op, 0, &wait), CAD_OK);
    ratelimit_free(rl);
}

static void test_remaining(void **state)
{
    (void)state;
    ratelimit *rl = new_limiter(0);
    const struct kspec_op *op = op_named("create_list"); /* 10/s, 150/m, 150/d */
    int b, s, d;
    assert_int_equal(ratelimit_remaining(rl, "a", op, 0, &b, &s, &d), CAD_OK);
    assert_int_equal(b, 10);
    assert_int_equal(s, 150);
    assert_int_equal(d, 150);
    int64_t wait;
    for (int i = 0; i < 4; i++)
        assert_int_equal(ratelimit_acquire(rl, "a", op, 100, &wait), CAD_OK);
    assert_int_equal(ratelimit_remaining(rl, "a", op, 500, &b, &s, &d), CAD_OK);
    assert_int_equal(b, 6);
    assert_int_equal(s, 146);
    assert_int_equal(d, 146);
    assert_int_equal(ratelimit_remaining(rl, "a", op, 1100, &b, &s, NULL), CAD_OK);
    assert_int_equal(b, 10);
    assert_int_equal(s, 146);
    assert_int_equal(ratelimit_remaining(rl, "a", op, MIN + 100, NULL, &s, &d), CAD_OK);
    assert_int_equal(s, 150);
    assert_int_equal(d, 146);
    assert_int_equal(ratelimit_remaining(rl, "a", op_named("get_lists"), 0, NULL, NULL, &d),
                     CAD_OK);
    assert_int_equal(d, RATELIMIT_UNLIMITED);
    ratelimit_free(rl);
}

/* Two threads read the clock, then the later reading wins the lock: the earlier caller must
 * still keep a whole window away from the grant made "after" it. */
static void test_out_of_order_clocks(void **state)
{
    (void)state;
    ratelimit *rl = new_limiter(0);
    const struct kspec_op *op = op_named("get_accounts"); /* 1/s, 15/m */
    int64_t wait;
    assert_int_equal(ratelimit_acquire(rl, "a", op, 10000, &wait), CAD_OK);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 9500, &wait), RATELIMIT_WAIT);
    assert_int_equal(wait, 1500);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 10999, &wait), RATELIMIT_WAIT);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 11000, &wait), CAD_OK);
    /* A grant allowed at an earlier reading is recorded at the latest one, which can only make
     * later callers wait longer: 349 grants read 900 after one read 1000 all count from 1000. */
    op = op_named("get_catalog_items"); /* 350/s */
    assert_int_equal(ratelimit_acquire(rl, "b", op, 1000, &wait), CAD_OK);
    for (int i = 0; i < 349; i++)
        assert_int_equal(ratelimit_acquire(rl, "b", op, 900, &wait), CAD_OK);
    assert_int_equal(ratelimit_acquire(rl, "b", op, 900, &wait), RATELIMIT_WAIT);
    assert_int_equal(wait, 1100);
    assert_int_equal(ratelimit_acquire(rl, "b", op, 1999, &wait), RATELIMIT_WAIT);
    assert_int_equal(ratelimit_acquire(rl, "b", op, 2000, &wait), CAD_OK);
    /* ...and ratelimit_remaining() counts it from there too. */
    op = op_named("get_tags_for_campaign"); /* 3/s */
    int b;
    assert_int_equal(ratelimit_acquire(rl, "c", op, 1000, &wait), CAD_OK);
    assert_int_equal(ratelimit_acquire(rl, "c", op, 100, &wait), CAD_OK);
    assert_int_equal(ratelimit_remaining(rl, "c", op, 1150, &b, NULL, NULL), CAD_OK);
    assert_int_equal(b, 1);
    assert_int_equal(ratelimit_remaining(rl, "c", op, 2000, &b, NULL, NULL), CAD_OK);
    assert_int_equal(b, 3);
    ratelimit_free(rl);
}

static void test_penalize(void **state)
{
    (void)state;
    ratelimit *rl = new_limiter(100);
    const struct kspec_op *op = op_named("get_catalog_items"); /* 350/s */
    int64_t wait;
    assert_int_equal(ratelimit_penalize(rl, "a", op, 5000, 1000), CAD_OK);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 1000, &wait), RATELIMIT_WAIT);
    assert_int_equal(wait, 5100);
    int b, s;
    assert_int_equal(ratelimit_remaining(rl, "a", op, 3000, &b, &s, NULL), CAD_OK);
    assert_int_equal(b, 0);
    assert_int_equal(s, 0);
    /* A shorter, later Retry-After does not shorten the penalty. */
    assert_int_equal(ratelimit_penalize(rl, "a", op, 1000, 2000), CAD_OK);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 6099, &wait), RATELIMIT_WAIT);
    assert_int_equal(wait, 1);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 6100, &wait), CAD_OK);
    /* No Retry-After: one second. */
    assert_int_equal(ratelimit_penalize(rl, "a", op, 0, 7000), CAD_OK);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 7000, &wait), RATELIMIT_WAIT);
    assert_int_equal(wait, 1100);
    assert_int_equal(ratelimit_penalize(rl, "a", op, -1, 7000), CAD_EINVAL);
    assert_int_equal(ratelimit_penalize(rl, "a", op, 2LL * DAY, 7000), CAD_EINVAL);
    ratelimit_free(rl);
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    ratelimit *rl = NULL;
    assert_int_equal(ratelimit_new(&rl, -1), CAD_EINVAL);
    assert_null(rl);
    assert_int_equal(ratelimit_new(&rl, RATELIMIT_MAX_MARGIN_MS + 1), CAD_EINVAL);
    assert_int_equal(ratelimit_new(NULL, 0), CAD_EINVAL);
    rl = new_limiter(0);
    const struct kspec_op *op = op_named("get_accounts");
    int64_t wait;
    assert_int_equal(ratelimit_acquire(rl, NULL, op, 0, &wait), CAD_EINVAL);
    assert_int_equal(ratelimit_acquire(rl, "", op, 0, &wait), CAD_EINVAL);
    assert_int_equal(ratelimit_acquire(rl, "a", NULL, 0, &wait), CAD_EINVAL);
    assert_int_equal(ratelimit_acquire(rl, "a", op, -5, &wait), CAD_EINVAL);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 0, NULL), CAD_EINVAL);
    assert_int_equal(ratelimit_acquire(NULL, "a", op, 0, &wait), CAD_EINVAL);
    char long_account[RATELIMIT_MAX_ACCOUNT + 2];
    memset(long_account, 'x', sizeof long_account - 1);
    long_account[sizeof long_account - 1] = '\0';
    assert_int_equal(ratelimit_acquire(rl, long_account, op, 0, &wait), CAD_EINVAL);
    assert_non_null(strstr(cad_errmsg(), "account"));
    long_account[RATELIMIT_MAX_ACCOUNT] = '\0';
    assert_int_equal(ratelimit_acquire(rl, long_account, op, 0, &wait), CAD_OK);
    struct kspec_op broken = *op;
    broken.steady_per_min = 0;
    assert_int_equal(ratelimit_acquire(rl, "a", &broken, 0, &wait), CAD_EINVAL);
    assert_non_null(strstr(cad_errmsg(), "get_accounts"));
    assert_int_equal(ratelimit_observe(rl, "a", op, 0, 0, 10, 0), CAD_EINVAL);
    assert_int_equal(ratelimit_observe(rl, "a", op, 15, -1, 10, 0), CAD_EINVAL);
    assert_int_equal(ratelimit_observe(rl, "a", op, 15, 3, -1, 0), CAD_EINVAL);
    assert_int_equal(ratelimit_observe(rl, "a", op, 15, 3, 86401, 0), CAD_EINVAL);
    assert_int_equal(ratelimit_remaining(rl, NULL, op, 0, NULL, NULL, NULL), CAD_EINVAL);
    ratelimit_free(rl);
    ratelimit_free(NULL);
}

/* ---- the server's headers ---- */

static void test_observe_spreads_a_low_remaining(void **state)
{
    (void)state;
    ratelimit *rl = new_limiter(0);
    const struct kspec_op *op = op_named("get_tags_for_campaign"); /* 3/s, 60/m */
    assert_int_equal(op->steady_per_min, 60);
    int64_t wait;
    assert_int_equal(ratelimit_acquire(rl, "a", op, 0, &wait), CAD_OK);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 0, &wait), CAD_OK);
    /* We think 58 remain; the server says 3 (someone else is using the account). */
    assert_int_equal(ratelimit_observe(rl, "a", op, 60, 3, 49, 10), CAD_OK);
    int s;
    assert_int_equal(ratelimit_remaining(rl, "a", op, 10, NULL, &s, NULL), CAD_OK);
    assert_int_equal(s, 3);
    /* Reset is 49 s (+1 s for rounding): three requests spaced 50000/3 ms apart, then nothing. */
    int64_t t = 10, until = 10 + 50 * SEC, last = 0;
    int during = 0, after = 0;
    while (t < until + 3 * SEC) {
        int rc = ratelimit_acquire(rl, "a", op, t, &wait);
        if (rc == CAD_OK) {
            if (t < until) {
                during++;
                assert_true(t - last >= 50000 / 3);
            } else {
                after++;
            }
            last = t;
        } else {
            assert_int_equal(rc, RATELIMIT_WAIT);
            assert_true(wait > 0);
            t += wait;
        }
    }
    assert_int_equal(during, 3);
    /* After the server's reset, the spec's pace again: 3/s. */
    assert_true(after >= 8);
    ratelimit_free(rl);
}

static void test_observe_zero_remaining_waits_for_reset(void **state)
{
    (void)state;
    ratelimit *rl = new_limiter(100);
    const struct kspec_op *op = op_named("get_tags_for_campaign");
    int64_t wait;
    assert_int_equal(ratelimit_acquire(rl, "a", op, 0, &wait), CAD_OK);
    assert_int_equal(ratelimit_observe(rl, "a", op, 60, 0, 10, 50), CAD_OK);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 50, &wait), RATELIMIT_WAIT);
    assert_int_equal(wait, 11 * SEC + 100);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 50 + 11 * SEC + 100, &wait), CAD_OK);
    ratelimit_free(rl);
}

static void test_observe_agreeing_server_changes_nothing(void **state)
{
    (void)state;
    ratelimit *rl = new_limiter(0);
    const struct kspec_op *op = op_named("get_tags_for_campaign");
    int64_t wait;
    assert_int_equal(ratelimit_acquire(rl, "a", op, 0, &wait), CAD_OK);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 0, &wait), CAD_OK);
    assert_int_equal(ratelimit_observe(rl, "a", op, 60, 58, 30, 0), CAD_OK);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 0, &wait), CAD_OK);
    /* A generous server does not lift our own limits either. */
    assert_int_equal(ratelimit_observe(rl, "a", op, 600, 600, 30, 0), CAD_OK);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 0, &wait), RATELIMIT_WAIT);
    assert_int_equal(wait, 1000);
    /* A low reading paces; a later reading that agrees with us ends the pacing. */
    assert_int_equal(ratelimit_observe(rl, "a", op, 60, 1, 40, 1000), CAD_OK);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 1000, &wait), RATELIMIT_WAIT);
    assert_true(wait > 10 * SEC);
    assert_int_equal(ratelimit_observe(rl, "a", op, 60, 57, 39, 2000), CAD_OK);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 2000, &wait), CAD_OK);
    ratelimit_free(rl);
}

static void test_observe_lower_limit_sticks(void **state)
{
    (void)state;
    ratelimit *rl = new_limiter(0);
    const struct kspec_op *op = op_named("create_catalog_item"); /* 75/s, 750/m */
    assert_int_equal(op->steady_per_min, 750);
    int64_t wait, t = 0;
    assert_int_equal(ratelimit_observe(rl, "a", op, 700, 700, 59, 0), CAD_OK);
    int granted = 0;
    while (t < MIN) {
        if (ratelimit_acquire(rl, "a", op, t, &wait) == CAD_OK)
            granted++;
        else
            t += wait;
    }
    assert_int_equal(granted, 700);
    ratelimit_free(rl);
}

static void test_observe_burst_window(void **state)
{
    (void)state;
    ratelimit *rl = new_limiter(0);
    const struct kspec_op *op = op_named("get_tags_for_campaign");
    int64_t wait;
    assert_int_equal(ratelimit_acquire(rl, "a", op, 0, &wait), CAD_OK);
    /* limit 3 with a reset under a second: the burst window, and it is spent. */
    assert_int_equal(ratelimit_observe(rl, "a", op, 3, 0, 0, 0), CAD_OK);
    int b, s;
    assert_int_equal(ratelimit_remaining(rl, "a", op, 0, &b, &s, NULL), CAD_OK);
    assert_int_equal(b, 0);
    assert_int_equal(s, 59);
    assert_int_equal(ratelimit_acquire(rl, "a", op, 0, &wait), RATELIMIT_WAIT);
    assert_int_equal(wait, 1000);
    ratelimit_free(rl);
}

/*
 * A shared account: another integration takes `other_per_min` of a 60/min operation, evenly.
 * Our client saturates through the limiter and sends every request to a model of Klaviyo
 * (fixed one-minute windows at an unknown phase) that answers with RateLimit headers or a 429.
 * Returns how many of our requests were refused; *ours counts the accepted ones.
 */
static int shared_account_429s(bool listen, int other_per_min, int64_t phase, int *ours)
{
    ratelimit *rl = new_limiter(100);
    const struct kspec_op *op = op_named("get_tags_for_campaign");
    const int limit = op->steady_per_min;
    int64_t t = 0, other_next = 0, window = -1, wait;
    int used = 0, refused = 0;
    *ours = 0;
    while (t < 20 * MIN) {
        int64_t w = (t + phase) / MIN;
        if (w != window) {
            window = w;
            used = 0;
        }
        while (other_next <= t) {
            if ((other_next + phase) / MIN == window && used < limit)
                used++;
            other_next += MIN / other_per_min;
        }
        int rc = ratelimit_acquire(rl, "shared", op, t, &wait);
        if (rc == RATELIMIT_WAIT) {
            t += wait < other_next - t ? wait : other_next - t;
            continue;
        }
        assert_int_equal(rc, CAD_OK);
        int64_t reset_ms = (window + 1) * MIN - phase - t;
        if (used >= limit) {
            refused++;
            if (listen)
                assert_int_equal(ratelimit_penalize(rl, "shared", op, reset_ms, t), CAD_OK);
        } else {
            used++;
            (*ours)++;
            if (listen)
                assert_int_equal(ratelimit_observe(rl, "shared", op, limit, limit - used,
                                                   (int)(reset_ms / 1000), t),
                                 CAD_OK);
        }
    }
    ratelimit_free(rl);
    return refused;
}

static void test_observe_avoids_429s_on_a_shared_account(void **state)
{
    (void)state;
    for (int64_t phase = 0; phase < MIN; phase += 7919) {
        int ours_deaf, ours_listening;
        int deaf = shared_account_429s(false, 30, phase, &ours_deaf);
        int listening = shared_account_429s(true, 30, phase, &ours_listening);
        /* Deaf to the headers, more than seven requests a window are refused. Listening, at
         * most one is (the race for the window's last slot), while we still get more than the
         * half of the quota the other integration leaves us. */
        assert_true(deaf > 7 * 20);
        assert_true(listening <= 20);
        assert_true(listening * 8 <= deaf);
        assert_true(ours_listening >= 20 * 30);
    }
}

/* ---- throughput ---- */

/* `workers` callers saturate one operation for ten simulated minutes, each retrying exactly
 * when told. Returns the grants. */
static int saturate(const struct kspec_op *op, int workers, int margin, struct grants *g)
{
    ratelimit *rl = new_limiter(margin);
    int64_t next[16] = {0}, wait;
    int granted = 0;
    assert_true(workers <= 16);
    for (;;) {
        int w = 0;
        for (int i = 1; i < workers; i++)
            if (next[i] < next[w])
                w = i;
        if (next[w] >= 10 * MIN)
            break;
        int rc = ratelimit_acquire(rl, "acct", op, next[w], &wait);
        if (rc == CAD_OK) {
            granted++;
            if (g)
                grants_add(g, next[w]);
        } else {
            assert_int_equal(rc, RATELIMIT_WAIT);
            assert_true(wait > 0);
            next[w] += wait;
        }
    }
    ratelimit_free(rl);
    return granted;
}

static void test_saturating_throughput(void **state)
{
    (void)state;
    static const char *const ids[] = {
        "get_accounts",      "get_tags_for_campaign", "create_campaign", "create_catalog_item",
        "get_catalog_items", "query_flow_values",     "create_segment"};
    for (size_t i = 0; i < CAD_ARRAY_LEN(ids); i++) {
        const struct kspec_op *op = op_named(ids[i]);
        for (int workers = 1; workers <= 8; workers += 7) {
            struct grants g = {0};
            int n = saturate(op, workers, RATELIMIT_DEFAULT_MARGIN_MS, &g);
            int ceiling = 10 * op->steady_per_min;
            if (op->daily > 0 && op->daily < ceiling)
                ceiling = op->daily;
            if (n < ceiling * 97 / 100)
                fail_msg("%s with %d workers: %d grants in 10 min, want >= 97%% of %d", ids[i],
                         workers, n, ceiling);
            assert_true(n <= ceiling);
            check_op_limits(&g, op, "saturating");
            free(g.t);
        }
    }
}

/* ---- the property test ---- */

struct sim_bucket {
    char account[16];
    const struct kspec_op *op;
    struct grants g;
};

struct worker {
    int64_t next_ms;
    int bucket; /* the request in hand, or -1 */
    int style;  /* 0 saturating, 1 steady trickle, 2 bursty with long idle gaps */
};

static void run_workload(uint64_t seed)
{
    static const char *const candidates[] = {
        "get_accounts",   "create_custom_metric",  "query_flow_values",   "upload_image_from_url",
        "create_list",    "get_tags_for_campaign", "create_catalog_item", "get_catalog_item",
        "create_segment", "update_mapped_metric",  "create_campaign",
    };
    uint64_t rng = seed;
    int margins[] = {0, 1, 50, RATELIMIT_DEFAULT_MARGIN_MS};
    int margin = margins[rng_below(&rng, 4)];
    ratelimit *rl = new_limiter(margin);

    struct sim_bucket buckets[12];
    int naccounts = 1 + (int)rng_below(&rng, 3), nops = 1 + (int)rng_below(&rng, 4);
    int nbuckets = 0;
    const struct kspec_op *ops[4];
    for (int o = 0; o < nops; o++)
        ops[o] = op_named(candidates[rng_below(&rng, CAD_ARRAY_LEN(candidates))]);
    for (int a = 0; a < naccounts; a++) {
        for (int o = 0; o < nops; o++) {
            bool dup = false;
            for (int k = 0; k < o; k++)
                dup |= ops[k] == ops[o];
            if (dup)
                continue;
            struct sim_bucket *b = &buckets[nbuckets++];
            memset(b, 0, sizeof *b);
            snprintf(b->account, sizeof b->account, "acct%d", a);
            b->op = ops[o];
        }
    }

    struct worker workers[12];
    int nworkers = 1 + (int)rng_below(&rng, 12);
    int64_t start = rng_below(&rng, DAY);
    for (int i = 0; i < nworkers; i++)
        workers[i] = (struct worker){start + rng_below(&rng, 5 * SEC), -1, (int)rng_below(&rng, 3)};
    int requests = 2000 + (int)rng_below(&rng, 2000);

    while (requests > 0) {
        int w = 0;
        for (int i = 1; i < nworkers; i++)
            if (workers[i].next_ms < workers[w].next_ms)
                w = i;
        struct worker *wk = &workers[w];
        if (wk->bucket < 0)
            wk->bucket = (int)rng_below(&rng, nbuckets);
        struct sim_bucket *b = &buckets[wk->bucket];
        int64_t now = wk->next_ms, wait = -1;
        int rc = ratelimit_acquire(rl, b->account, b->op, now, &wait);
        if (rc == RATELIMIT_WAIT) {
            assert_true(wait > 0 && wait <= DAY + 2 * MIN + margin);
            switch (rng_below(&rng, 8)) {
            case 0:
                wk->next_ms = now + rng_below(&rng, wait);
                break; /* too early */
            case 1:
                wk->next_ms = now + wait + rng_below(&rng, 50);
                break;
            default:
                wk->next_ms = now + wait;
                break;
            }
            continue;
        }
        assert_int_equal(rc, CAD_OK);
        assert_int_equal(wait, 0);
        grants_add(&b->g, now);
        requests--;
        wk->bucket = -1;

        /* Whatever the server claims, the limiter may only get stricter. */
        int64_t dice = rng_below(&rng, 100);
        if (dice < 25) {
            int limit = rng_below(&rng, 2) ? b->op->steady_per_min : b->op->burst_per_s;
            limit += (int)rng_below(&rng, 3) - 1;
            if (limit < 1)
                limit = 1;
            int remaining = (int)rng_below(&rng, limit + 2);
            int reset = (int)rng_below(&rng, 61);
            assert_int_equal(ratelimit_observe(rl, b->account, b->op, limit, remaining, reset,
                                               now + rng_below(&rng, 300)),
                             CAD_OK);
        } else if (dice < 26) {
            assert_int_equal(
                ratelimit_penalize(rl, b->account, b->op, rng_below(&rng, 5 * SEC), now), CAD_OK);
        }
        switch (wk->style) {
        case 0:
            break;
        case 1:
            wk->next_ms = now + rng_below(&rng, 3 * SEC);
            break;
        default:
            wk->next_ms = now + (rng_below(&rng, 50) == 0 ? rng_below(&rng, 3 * HOUR) : 0);
            break;
        }
    }
    for (int i = 0; i < nbuckets; i++) {
        char who[128];
        snprintf(who, sizeof who, "seed %llu %.15s margin %d", (unsigned long long)seed,
                 buckets[i].account, margin);
        check_op_limits(&buckets[i].g, buckets[i].op, who);
        free(buckets[i].g.t);
    }
    ratelimit_free(rl);
}

static void test_property_never_exceeds_fixed_windows(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 30; seed++)
        run_workload(seed * 0x2545F4914F6CDD1DULL);
}

/* ---- the property test, header-driven ---- */

/* A server with Klaviyo's fixed windows (steady and burst, at `phase`) that allows us `steady`
 * and `burst` of them (another integration may use the rest), and requests that reach it after
 * lat_min + [0, jitter] ms and are answered [back_min, back_min + back_jitter] ms after that.
 * The client asks the limiter, sends, and feeds every answer's RateLimit-* headers back with
 * ratelimit_observe_window, except one answer in `headerless_one_in` after the first (0: none).
 * The server fails the test on any request over a limit; `used`, when given, counts the requests
 * of each steady window from the one the run starts in. */
struct flight {
    int64_t sent, arrive, respond;
    bool counted;
    int remaining, reset;
};

struct server_sim {
    const struct kspec_op *op;
    int steady, burst, total;
    int64_t phase, start, lat_min, jitter, back_min, back_jitter;
    int headerless_one_in;
    uint64_t rng;
    int *used, nused;
    const char *what; /* for failure messages */
};

static void server_run(struct server_sim *sv)
{
    const struct kspec_op *op = sv->op;
    ratelimit *rl = new_limiter(RATELIMIT_DEFAULT_MARGIN_MS);
    ratelimit_probe_first(rl, true);
    struct flight *fl = calloc((size_t)sv->total, sizeof *fl);
    assert_non_null(fl);
    int sent = 0, done = 0, first = 0; /* fl[first..sent) may still be open */
    int64_t now = sv->start, client_next = now, phase = sv->phase;
    int64_t steady_win = -1, burst_win = -1;
    int steady_used = 0, burst_used = 0;
    while (done < sv->total) {
        /* The next event: an arrival, an answer, or the client asking again. */
        int64_t t = client_next;
        for (int i = first; i < sent; i++) {
            int64_t e = fl[i].counted ? fl[i].respond : fl[i].arrive;
            if (fl[i].respond >= 0 && e < t)
                t = e;
        }
        now = t;
        for (int i = first; i < sent; i++) {
            struct flight *f = &fl[i];
            if (f->respond < 0 || f->counted || f->arrive != now)
                continue;
            int64_t sw = (f->arrive - phase) / MIN, bw = (f->arrive - phase) / SEC;
            if (sw != steady_win) {
                steady_win = sw;
                steady_used = 0;
            }
            if (bw != burst_win) {
                burst_win = bw;
                burst_used = 0;
            }
            if (steady_used >= sv->steady || burst_used >= sv->burst)
                fail_msg("%s %s: request %d throttled (%d/%d in the steady window, %d/%d in the "
                         "burst window)",
                         sv->what, op->operation_id, i, steady_used, sv->steady, burst_used,
                         sv->burst);
            steady_used++;
            burst_used++;
            if (sv->used) {
                int64_t w = sw - (sv->start - phase) / MIN;
                if (w < 0 || w >= sv->nused)
                    fail_msg("%s: request %d arrived in window %lld, outside the %d followed",
                             sv->what, i, (long long)w, sv->nused);
                sv->used[(size_t)w]++;
            }
            f->counted = true;
            f->remaining = sv->steady - steady_used;
            int64_t edge = phase + (sw + 1) * MIN;
            f->reset = (int)((edge - f->arrive + SEC - 1) / SEC);
        }
        for (int i = first; i < sent; i++) {
            struct flight *f = &fl[i];
            if (f->respond != now || !f->counted)
                continue;
            /* Some answers carry no headers (a 5xx, say), but not the first: before any, the
             * limiter cannot know what others used and follows the published limits. */
            if (i == 0 || !sv->headerless_one_in ||
                rng_below(&sv->rng, (uint64_t)sv->headerless_one_in) != 0)
                assert_int_equal(ratelimit_observe_window(rl, "acct", op, op->steady_per_min,
                                                          f->remaining, f->reset, f->sent, now),
                                 CAD_OK);
            assert_int_equal(ratelimit_release(rl, "acct", op, now), CAD_OK);
            f->respond = -1;
            done++;
            client_next = now < client_next ? now : client_next;
        }
        while (first < sent && fl[first].respond < 0)
            first++;
        if (now < client_next)
            continue;
        client_next = INT64_MAX;
        while (sent < sv->total) {
            int64_t wait = 0;
            int rc = ratelimit_acquire(rl, "acct", op, now, &wait);
            if (rc == RATELIMIT_WAIT) {
                client_next = now + wait;
                break;
            }
            assert_int_equal(rc, CAD_OK);
            int64_t arrive = now + sv->lat_min + rng_below(&sv->rng, (uint64_t)sv->jitter + 1);
            int64_t respond =
                arrive + sv->back_min + rng_below(&sv->rng, (uint64_t)sv->back_jitter + 1);
            fl[sent] = (struct flight){.sent = now, .arrive = arrive, .respond = respond};
            sent++;
        }
    }
    free(fl);
    ratelimit_free(rl);
}

/* At a random phase, with another integration using a share of every window and latencies
 * whose spread stays within the limiter's margin: no 429, ever. */
static void run_server_workload(uint64_t seed)
{
    static const char *const candidates[] = {"create_template", "get_accounts", "create_list",
                                             "create_catalog_item", "create_campaign"};
    uint64_t rng = seed;
    const struct kspec_op *op = op_named(candidates[rng_below(&rng, CAD_ARRAY_LEN(candidates))]);
    static const double shares[] = {0, 0.2, 0.5, 0.9};
    double share = shares[rng_below(&rng, 4)];
    char what[64];
    snprintf(what, sizeof what, "seed %llu share %.1f", (unsigned long long)seed, share);
    struct server_sim sv = {.op = op,
                            .steady = op->steady_per_min - (int)(op->steady_per_min * share),
                            .burst = op->burst_per_s - (int)(op->burst_per_s * share),
                            .phase = rng_below(&rng, MIN),
                            .lat_min = rng_below(&rng, 400),
                            .jitter = rng_below(&rng, RATELIMIT_DEFAULT_MARGIN_MS),
                            .back_jitter = 4,
                            .headerless_one_in = 20,
                            .what = what};
    sv.total = 2 * op->steady_per_min + (int)rng_below(&rng, op->steady_per_min);
    if (op->daily > 0 && sv.total > op->daily - (int)(op->daily * share))
        sv.total = op->daily - (int)(op->daily * share);
    sv.start = DAY + rng_below(&rng, DAY);
    sv.rng = rng;
    server_run(&sv);
}

static void test_property_header_mode_never_throttled(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 40; seed++)
        run_server_workload(seed * 0x9E3779B97F4A7C15ULL);
}

/* The same server, alone on the account, with 50-100 ms of latency split at random between the
 * two legs, so requests overtake each other: one sent later can be counted earlier, and while
 * it is out the limiter cannot tell it from one not counted yet. Once they are all answered it
 * must give back what it held in reserve: every steady window the client was busy through is
 * used to its last request (a bulk sync of 1,500 jobs at 750 a minute needs two windows, not
 * three). */
static void test_header_mode_fills_every_window(void **state)
{
    (void)state;
    const struct kspec_op *op = op_named("create_catalog_item");
    enum { WINDOWS = 16 };
    int used[WINDOWS] = {0};
    struct server_sim sv = {.op = op,
                            .steady = op->steady_per_min,
                            .burst = op->burst_per_s,
                            .total = 3 * op->steady_per_min + op->steady_per_min / 2,
                            .phase = 17 * SEC + 300,
                            .start = 3 * DAY,
                            .lat_min = 25,
                            .jitter = 25,
                            .back_min = 25,
                            .back_jitter = 25,
                            .rng = 0x5eed,
                            .used = used,
                            .nused = WINDOWS,
                            .what = "fills every window"};
    server_run(&sv);
    /* The first window is partly gone before the client starts and the last holds the rest;
     * every one between is full. */
    int last = WINDOWS - 1;
    while (last > 0 && used[last] == 0)
        last--;
    assert_true(last >= 3);
    for (int w = 1; w < last; w++)
        if (used[w] != op->steady_per_min)
            fail_msg("steady window %d of %d: %d of %d requests used", w, last, used[w],
                     op->steady_per_min);
}

/* ---- threads ---- */

struct hammer {
    ratelimit *rl;
    const struct kspec_op *op;
    int granted;
};

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    int64_t wait;
    for (int i = 0; i < 200; i++)
        if (ratelimit_acquire(h->rl, "shared", h->op, 5000, &wait) == CAD_OK)
            h->granted++;
    return NULL;
}

static void test_threads_share_one_budget(void **state)
{
    (void)state;
    ratelimit *rl = new_limiter(0);
    const struct kspec_op *op = op_named("get_catalog_items"); /* 350/s */
    struct hammer h[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        h[i] = (struct hammer){rl, op, 0};
        assert_int_equal(pthread_create(&th[i], NULL, hammer_run, &h[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        total += h[i].granted;
    }
    assert_int_equal(total, op->burst_per_s);
    ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker_catches_excess),
        cmocka_unit_test(test_burst_and_steady_waits_are_exact),
        cmocka_unit_test(test_margin_widens_windows),
        cmocka_unit_test(test_late_send_moves_the_grant),
        cmocka_unit_test(test_daily_cap),
        cmocka_unit_test(test_buckets_are_per_account_and_operation),
        cmocka_unit_test(test_remaining),
        cmocka_unit_test(test_out_of_order_clocks),
        cmocka_unit_test(test_penalize),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_observe_spreads_a_low_remaining),
        cmocka_unit_test(test_observe_zero_remaining_waits_for_reset),
        cmocka_unit_test(test_observe_agreeing_server_changes_nothing),
        cmocka_unit_test(test_observe_lower_limit_sticks),
        cmocka_unit_test(test_observe_burst_window),
        cmocka_unit_test(test_observe_avoids_429s_on_a_shared_account),
        cmocka_unit_test(test_saturating_throughput),
        cmocka_unit_test(test_property_never_exceeds_fixed_windows),
        cmocka_unit_test(test_property_header_mode_never_throttled),
        cmocka_unit_test(test_header_mode_fills_every_window),
        cmocka_unit_test(test_threads_share_one_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
