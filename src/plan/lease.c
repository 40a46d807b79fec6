/*
 * Plan leases: at most one applier per plan, across processes and hosts sharing the store.
 *
 * The lease is a row in plan_leases, taken with one atomic upsert that only overwrites a lease
 * that has expired (INSERT ... ON CONFLICT DO UPDATE ... WHERE expired: portable SQL, no
 * backend-specific locking). The holder renews it every PLAN_LEASE_RENEW_MS while it applies and
 * deletes it when it stops; a holder that crashed stops renewing and its lease runs out after
 * PLAN_LEASE_TTL_MS, so the plan can be resumed. A holder on this host whose process is gone is
 * recognized at once (no need to wait for the TTL), which is what a `cadence plan apply` run again
 * after a kill sees. Each take gets a fresh holder token, so two threads of one process (the
 * server's workers) exclude each other too.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "plan/plan_int.h"

struct lease_row {
    bool found;
    char holder[128], host[256];
    int64_t pid, acquired_ms, expires_ms;
};

static int row_lease(void *ctx, const store_row *r)
{
    struct lease_row *l = ctx;
    l->found = true;
    snprintf(l->holder, sizeof l->holder, "%s", store_row_text(r, 0));
    snprintf(l->host, sizeof l->host, "%s", store_row_text(r, 1));
    l->pid = store_row_int(r, 2);
    l->acquired_ms = store_row_int(r, 3);
    l->expires_ms = store_row_int(r, 4);
    return 1;
}

void plan_lease_host(char *out, size_t outsz)
{
    if (gethostname(out, outsz) != 0 || !out[0])
        snprintf(out, outsz, "localhost");
    out[outsz - 1] = '\0';
}

bool plan_lease_holder_gone(const char *host, int64_t pid)
{
    char me[256];
    plan_lease_host(me, sizeof me);
    if (strcmp(host, me) != 0 || pid <= 0 || pid == (int64_t)getpid())
        return false;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Takes the lease when it is free, expired, or held by `stale_holder` (NULL: none); 1 taken. */
static int lease_upsert(store *st, struct plan_lease *l, int64_t now, const char *stale_holder)
{
    int rc = store_exec(
        st,
        "INSERT INTO plan_leases (plan_id, holder, host, pid, acquired_ms, expires_ms) VALUES "
        "($1, $2, $3, $4, $5, $6) ON CONFLICT (plan_id) DO UPDATE SET holder = excluded.holder, "
        "host = excluded.host, pid = excluded.pid, acquired_ms = excluded.acquired_ms, "
        "expires_ms = excluded.expires_ms WHERE plan_leases.expires_ms <= $5 OR "
        "plan_leases.holder = $7",
        SV_ARGS(SV_TEXT(l->plan_id), SV_TEXT(l->holder), SV_TEXT(l->host), SV_INT(l->pid),
                SV_INT(now), SV_INT(now + l->ttl_ms), SV_TEXT(stale_holder)));
    if (rc)
        return rc;
    return store_changes(st) == 1 ? 1 : 0;
}

int plan_lease_take(store *st, const char *plan_id, int64_t ttl_ms, struct plan_lease *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->plan_id, sizeof out->plan_id, "%s", plan_id);
    plan_lease_host(out->host, sizeof out->host);
    out->pid = (int64_t)getpid();
    out->ttl_ms = ttl_ms > 0 ? ttl_ms : PLAN_LEASE_TTL_MS;
    unsigned char rnd[8];
    char hex[17];
    int rc = random_bytes(rnd, sizeof rnd);
    if (rc)
        return rc;
    hex_encode(rnd, sizeof rnd, hex);
    snprintf(out->holder, sizeof out->holder, "%.64s:%" PRId64 ":%s", out->host, out->pid, hex);
    for (int attempt = 0; attempt < 3; attempt++) {
        int64_t now = time_now_ms();
        rc = lease_upsert(st, out, now, NULL);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            out->renewed_mono_ms = time_mono_ms();
            return CAD_OK;
        }
        struct lease_row cur = {0};
        rc = store_query(st,
                         "SELECT holder, host, pid, acquired_ms, expires_ms FROM plan_leases "
                         "WHERE plan_id = $1",
                         SV_ARGS(SV_TEXT(plan_id)), row_lease, &cur);
        if (rc < 0)
            return rc;
        if (!cur.found)
            continue; /* released between the two statements: try again */
        if (plan_lease_holder_gone(cur.host, cur.pid)) {
            rc = lease_upsert(st, out, now, cur.holder);
            if (rc < 0)
                return rc;
            if (rc == 1) {
                cad_log(LOG_INFO, "plan.lease",
                        "plan=%s lease of process %" PRId64 " (gone from this host) taken over",
                        plan_id, cur.pid);
                out->renewed_mono_ms = time_mono_ms();
                return CAD_OK;
            }
            continue;
        }
        char since[40], until[40];
        time_format_ms(cur.acquired_ms, since, sizeof since);
        time_format_ms(cur.expires_ms, until, sizeof until);
        return cad_fail(CAD_ESTATE,
                        "plan %s is being applied by process %" PRId64 " on host %s since %s; "
                        "only one applier may run a plan at a time. If that process is gone, its "
                        "lease runs out at %s and the plan can be resumed then",
                        plan_id, cur.pid, cur.host, since, until);
    }
    return cad_fail(CAD_ESTATE,
                    "plan %s: its lease changed hands while it was being taken; try "
                    "again",
                    plan_id);
}

int plan_lease_renew(store *st, struct plan_lease *l)
{
    int rc = store_exec(
        st, "UPDATE plan_leases SET expires_ms = $3 WHERE plan_id = $1 AND holder = $2",
        SV_ARGS(SV_TEXT(l->plan_id), SV_TEXT(l->holder), SV_INT(time_now_ms() + l->ttl_ms)));
    if (rc)
        return rc;
    if (store_changes(st) != 1)
        return cad_fail(CAD_ESTATE,
                        "plan %s: this applier's lease ran out and another applier took the plan "
                        "over; this one stops (nothing new is sent)",
                        l->plan_id);
    l->renewed_mono_ms = time_mono_ms();
    return CAD_OK;
}

void plan_lease_release(store *st, const struct plan_lease *l)
{
    if (store_exec(st, "DELETE FROM plan_leases WHERE plan_id = $1 AND holder = $2",
                   SV_ARGS(SV_TEXT(l->plan_id), SV_TEXT(l->holder))))
        cad_log(LOG_WARN, "plan.lease",
                "plan=%s cannot release its lease (it runs out by itself): %s", l->plan_id,
                cad_errmsg());
}
