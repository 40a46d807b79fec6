/*
 * The Klaviyo rate limiter: keeps a client under Klaviyo's limits so it does not collect 429s.
 *
 * Klaviyo counts requests per account and per operation in fixed windows: a burst window of one
 * second, a steady window of one minute, and for some operations a daily cap (kspec_op carries
 * the three numbers from the spec). We cannot see where the server's windows start, so each limit
 * is enforced here as a sliding window, which is never more permissive than a fixed window of the
 * same length at any phase: at most `burst` grants in any span of 1 s + margin, `steady` in any
 * 60 s + margin, `daily` in any 24 h + margin. The margin (milliseconds) absorbs requests that
 * arrive at the server closer together than we sent them.
 *
 * The account's quota is shared with every other private-key integration, so the limiter also
 * listens to the server: ratelimit_observe() takes the RateLimit-* headers of a response and, when
 * the server has fewer requests left than we believe, spreads what is left until the window
 * resets; ratelimit_penalize() takes a 429's Retry-After. Both only ever make the limiter
 * stricter, never looser than the spec.
 *
 * The server's truth (ratelimit_observe_window). Klaviyo's windows are fixed, and every answer
 * says where its account stands in the steady one: RateLimit-Remaining requests left and
 * RateLimit-Reset seconds until the window ends, rounded up (a server that says "available in N
 * seconds" must not round down). A request counted at t_s, which lies between its sending and its
 * answer, puts the window's end E in (sent + (reset - 1) s, answer + reset s]; the limiter keeps
 * the intersection over the window's answers, [edge_lo, edge_hi]. Then, instead of the sliding
 * steady window, for that operation:
 *   - the current window admits min over its answers of (remaining - the other requests then
 *     outstanding - grants since). Each of those is an upper bound on what we may still add: an
 *     own request counted after t_s was outstanding at the answer or sent after it (an answer
 *     that overtook it is itself in the minimum). Outstanding means granted and not yet released
 *     (ratelimit_release, once per grant, when its answer or failure is in). An own request that
 *     overtook an earlier one on the way is both in the server's count and outstanding, so this
 *     holds back a few requests while many are out; an answer with nothing else outstanding
 *     gives them back: then every own grant has been counted, and the lowest remaining of the
 *     window's answers (less one per answer without headers) is what is left.
 *   - a request sent at or after edge_lo may be counted in the next window, and so may one still
 *     outstanding then; from edge_hi on the next window is current and admits the published
 *     limit (or the server's lower one) less those, less what others used in the window before,
 *     until its first answer says what it really has left.
 *   - others' use of the window (limit - remaining - our grants of the last minute, a lower
 *     bound) is taken out of the burst too, in the same share: the headers describe only the
 *     steady window, and another integration spends both.
 *   - burst and daily limits stay sliding windows; a view with no answer for ten minutes is
 *     dropped and the sliding steady window, which saw every grant, takes over again.
 * So without headers the limiter never allows more than the published limits, and with them it
 * can fill each of the server's fixed windows to what the server says is left, starting right at
 * its edge. With ratelimit_probe_first(), an operation with no view yet has one request on the
 * wire at a time until an answer gives it one.
 *
 * Time is passed in by the caller (milliseconds from a monotonic clock; any epoch), so the
 * limiter is testable with a simulated clock. Threads that read the clock and then race for the
 * lock hand in times slightly out of order; that is fine: each grant is checked, at the time its
 * caller gave, against every earlier grant it could share a window with. (Callers whose clocks
 * disagree by more than a minute may see a bucket forgotten too early.) Thread-safe.
 */
#ifndef CADENCE_KLAVIYO_RATELIMIT_H
#define CADENCE_KLAVIYO_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "kspec/kspec.h"

typedef struct ratelimit ratelimit;

#define RATELIMIT_DEFAULT_MARGIN_MS 100
#define RATELIMIT_MAX_MARGIN_MS     10000
/* Longest account key accepted (Klaviyo account ids are 6 characters; tenants may use longer). */
#define RATELIMIT_MAX_ACCOUNT 256

/* ratelimit_acquire() found no free slot; *wait_ms says when to ask again. Not an error. */
#define RATELIMIT_WAIT 1
/* daily_left of an operation without a daily cap. */
#define RATELIMIT_UNLIMITED (-1)

/* A limiter with `margin_ms` (0..RATELIMIT_MAX_MARGIN_MS) added to every window. Caller owns
 * *out and frees it with ratelimit_free(). CAD_EINVAL, CAD_ENOMEM. */
int ratelimit_new(ratelimit **out, int margin_ms);
void ratelimit_free(ratelimit *rl);

/* Reserves one request of `op` for `account` at `now_ms` and returns CAD_OK (*wait_ms = 0), or
 * returns RATELIMIT_WAIT with *wait_ms > 0: the time until a slot opens if nobody else takes it.
 * That can be up to a day when the daily cap is spent; the caller decides whether to wait.
 * A reserved slot is spent even if the request is never sent. CAD_EINVAL, CAD_ENOMEM. */
int ratelimit_acquire(ratelimit *rl, const char *account, const struct kspec_op *op, int64_t now_ms,
                      int64_t *wait_ms);

/* Feeds back a response's RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset (seconds).
 * A reset of at most 1 s with a limit no larger than the burst describes the burst window;
 * anything else the steady window. A limit below the spec's becomes this bucket's limit. When
 * `remaining` is below what this limiter has left in that window, the rest of the window gets
 * only `remaining` requests, spaced evenly until the reset (plus a second for the header's
 * rounding, plus the margin); when it is not, any such pacing ends. CAD_EINVAL for a limit below
 * 1, a negative remaining, or a reset outside 0..86400. */
int ratelimit_observe(ratelimit *rl, const char *account, const struct kspec_op *op, int limit,
                      int remaining, int reset_s, int64_t now_ms);

/* The header-driven mode (see the top of this file): a response's RateLimit-Limit, -Remaining
 * and -Reset (seconds, 0..60) for a request of `op` that left at `sent_ms` and was answered at
 * `now_ms` (both on the limiter's clock). CAD_EINVAL for unusable values. */
int ratelimit_observe_window(ratelimit *rl, const char *account, const struct kspec_op *op,
                             int limit, int remaining, int reset_s, int64_t sent_ms,
                             int64_t now_ms);

/* A request granted at `granted_ms` actually left at `sent_ms` (its durable intent was written
 * in between, which now and then takes a while: a WAL checkpoint, a slow fsync). Every grant of
 * `op` since `granted_ms` is counted from `sent_ms` instead, so the windows reflect when requests
 * reach the server and a late batch cannot arrive closer to the next than the limits allow.
 * Only ever makes the limiter stricter. */
void ratelimit_sent(ratelimit *rl, const char *account, const struct kspec_op *op,
                    int64_t granted_ms, int64_t sent_ms);

/* One granted request of `op` is over (answered, failed or never sent). Call it once per grant,
 * after ratelimit_observe_window for that answer; a missing call only makes the limiter stricter.
 */
int ratelimit_release(ratelimit *rl, const char *account, const struct kspec_op *op,
                      int64_t now_ms);

/* While an operation has no view of the server's window, grant one request at a time (the others
 * wait until it is released), so the first burst does not spend what others already used. For
 * callers that release every grant. */
void ratelimit_probe_first(ratelimit *rl, bool on);

/* A 429: no request of `op` for `account` before now + retry_after_ms + margin. A retry_after_ms
 * of 0 (no Retry-After header) means one second. CAD_EINVAL when negative or over a day. */
int ratelimit_penalize(ratelimit *rl, const char *account, const struct kspec_op *op,
                       int64_t retry_after_ms, int64_t now_ms);

/* What could still be acquired right now in each window (0 while a 429 penalty lasts);
 * *daily_left is RATELIMIT_UNLIMITED for an operation without a daily cap. Any out-pointer may be
 * NULL. Does not reserve anything. CAD_EINVAL. */
int ratelimit_remaining(ratelimit *rl, const char *account, const struct kspec_op *op,
                        int64_t now_ms, int *burst_left, int *steady_left, int *daily_left);

#endif
