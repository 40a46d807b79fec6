/*
 * Unit tests of the audit log against a real SQLite store in a temporary directory. Tampering is
 * done the way an intruder with the database file would: drop the append-only triggers, then
 * UPDATE or DELETE rows directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

struct fixture {
    char dir[64];
    char path[128];
    store *st;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/cad-audit-XXXXXX");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    snprintf(fx->path, sizeof fx->path, "%s/cadence.db", fx->dir);
    if (store_open(&fx->st, fx->path) != CAD_OK) {
        fprintf(stderr, "store_open: %s\n", cad_errmsg());
        rmdir(fx->dir);
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static void remove_db(const char *path)
{
    static const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < CAD_ARRAY_LEN(suffixes); i++) {
        char p[160];
        snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
        unlink(p);
    }
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    store_close(fx->st);
    remove_db(fx->path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static store *st_of(void **state)
{
    return ((struct fixture *)*state)->st;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static int64_t append_plain(store *st, const char *tenant, const char *actor, const char *action,
                            const char *detail)
{
    struct audit_entry e = {
        .tenant_id = tenant,
        .actor = actor,
        .action = action,
        .duration_ms = -1,
        .detail = detail,
    };
    int64_t seq = 0;
    int rc = audit_append(st, &e, &seq);
    if (rc)
        fprintf(stderr, "audit_append: %s\n", cad_errmsg());
    assert_int_equal(rc, CAD_OK);
    return seq;
}

static void append_n(store *st, int n)
{
    for (int i = 0; i < n; i++) {
        char detail[32];
        snprintf(detail, sizeof detail, "event %d", i + 1);
        append_plain(st, "t1", AUDIT_ACTOR_SYSTEM, "test.event", detail);
    }
}

static void exec_ok(store *st, const char *sql)
{
    int rc = store_exec(st, sql, SV_NONE);
    if (rc)
        fprintf(stderr, "%s: %s\n", sql, cad_errmsg());
    assert_int_equal(rc, CAD_OK);
}

static int int_cb(void *ctx, const store_row *row)
{
    *(int64_t *)ctx = store_row_int(row, 0);
    return 0;
}

static int64_t query_int(store *st, const char *sql, int64_t arg)
{
    int64_t v = -12345;
    assert_int_equal(store_query(st, sql, SV_ARGS(SV_INT(arg)), int_cb, &v), CAD_OK);
    return v;
}

static int text_cb(void *ctx, const store_row *row)
{
    snprintf(ctx, 256, "%s", store_row_is_null(row, 0) ? "(null)" : store_row_text(row, 0));
    return 0;
}

static void query_text(store *st, const char *sql, int64_t arg, char out[256])
{
    out[0] = '\0';
    assert_int_equal(store_query(st, sql, SV_ARGS(SV_INT(arg)), text_cb, out), CAD_OK);
}

static void expect_broken(store *st, int64_t first_bad, const char *reason_part)
{
    struct audit_verify_result v;
    int rc = audit_verify(st, &v);
    if (v.first_bad != first_bad || !strstr(v.reason, reason_part))
        fprintf(stderr, "first_bad=%lld reason=%s\n", (long long)v.first_bad, v.reason);
    assert_int_equal(rc, CAD_ECORRUPT);
    assert_int_equal(v.ok, 0);
    assert_int_equal(v.first_bad, first_bad);
    assert_non_null(strstr(v.reason, reason_part));
    assert_non_null(strstr(cad_errmsg(), reason_part));
}

static void expect_ok(store *st, int64_t records)
{
    struct audit_verify_result v;
    int rc = audit_verify(st, &v);
    if (rc)
        fprintf(stderr, "verify: %s\n", cad_errmsg());
    assert_int_equal(rc, CAD_OK);
    assert_int_equal(v.ok, 1);
    assert_int_equal(v.records, records);
    assert_int_equal(v.first_bad, 0);
    assert_string_equal(v.reason, "");
}

/* A listing copied out of the callback. */
struct listed {
    int64_t seq, ts_ms, duration_ms;
    int status;
    char tenant[32], actor[64], action[64], method[16], endpoint[128], payload[72], request_id[64],
        detail[1100];
};

struct listing {
    struct listed rows[64];
    int n;
};

static void copy_field(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "(null)");
}

static int collect(void *ctx, const struct audit_record *r)
{
    struct listing *l = ctx;
    assert_true(l->n < (int)CAD_ARRAY_LEN(l->rows));
    struct listed *d = &l->rows[l->n++];
    d->seq = r->seq;
    d->ts_ms = r->ts_ms;
    d->status = r->status;
    d->duration_ms = r->duration_ms;
    copy_field(d->tenant, sizeof d->tenant, r->tenant_id);
    copy_field(d->actor, sizeof d->actor, r->actor);
    copy_field(d->action, sizeof d->action, r->action);
    copy_field(d->method, sizeof d->method, r->method);
    copy_field(d->endpoint, sizeof d->endpoint, r->endpoint);
    copy_field(d->payload, sizeof d->payload, r->payload_sha256);
    copy_field(d->request_id, sizeof d->request_id, r->request_id);
    copy_field(d->detail, sizeof d->detail, r->detail);
    assert_non_null(r->hash);
    assert_int_equal(strlen(r->hash), 64);
    return 0;
}

static void list_into(store *st, const struct audit_filter *f, struct listing *l)
{
    memset(l, 0, sizeof *l);
    int rc = audit_list(st, f, collect, l);
    if (rc)
        fprintf(stderr, "audit_list: %s\n", cad_errmsg());
    assert_int_equal(rc, CAD_OK);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the chain ---------------------------------------------------------------------------- */

static void test_empty_log_verifies(void **state)
{
    expect_ok(st_of(state), 0);
}

static void test_chain_verifies(void **state)
{
    store *st = st_of(state);
    for (int i = 0; i < 10; i++) {
        char detail[32];
        snprintf(detail, sizeof detail, "event %d", i);
        int64_t seq = append_plain(st, i % 2 ? "t1" : NULL, "ops@example.com", "key.set", detail);
        assert_int_equal(seq, 3 * i + 1);
        int64_t call;
        assert_int_equal(audit_call_begin(st, "t1", AUDIT_ACTOR_CLIENT, "klaviyo.call", "GET",
                                          "/api/accounts/", NULL, 0, &call),
                         CAD_OK);
        assert_int_equal(call, 3 * i + 2);
        assert_int_equal(audit_call_end(st, call, 200, 40 + i, "req", NULL), CAD_OK);
    }
    expect_ok(st, 30);

    char text[256];
    query_text(st, "SELECT prev_hash FROM audit_log WHERE seq = $1", 1, text);
    assert_string_equal(text, "0000000000000000000000000000000000000000000000000000000000000000");
    char prev[256];
    query_text(st, "SELECT hash FROM audit_log WHERE seq = $1", 1, prev);
    query_text(st, "SELECT prev_hash FROM audit_log WHERE seq = $1", 2, text);
    assert_string_equal(text, prev);
    query_text(st, "SELECT hash FROM audit_log WHERE seq = $1", 30, prev);
    query_text(st, "SELECT hash FROM audit_head WHERE id = $1", 1, text);
    assert_string_equal(text, prev);
    assert_int_equal(query_int(st, "SELECT seq FROM audit_head WHERE id = $1", 1), 30);
}

static void test_log_is_append_only(void **state)
{
    store *st = st_of(state);
    append_n(st, 2);
    assert_int_not_equal(store_exec(st, "UPDATE audit_log SET detail = 'x' WHERE seq = 1", SV_NONE),
                         CAD_OK);
    assert_non_null(strstr(cad_errmsg(), "append-only"));
    assert_int_not_equal(store_exec(st, "DELETE FROM audit_log WHERE seq = 2", SV_NONE), CAD_OK);
    assert_non_null(strstr(cad_errmsg(), "append-only"));
    expect_ok(st, 2);
}

static void test_altered_record_detected(void **state)
{
    store *st = st_of(state);
    append_n(st, 5);
    exec_ok(st, "DROP TRIGGER audit_log_no_update");
    exec_ok(st, "UPDATE audit_log SET detail = 'nothing happened' WHERE seq = 3");
    expect_broken(st, 3, "record 3 was altered");
}

static void test_altered_status_detected(void **state)
{
    store *st = st_of(state);
    int64_t call;
    append_n(st, 2);
    assert_int_equal(audit_call_begin(st, "t1", "ops@example.com", "klaviyo.call", "POST",
                                      "/api/campaigns/", "{}", 2, &call),
                     CAD_OK);
    assert_int_equal(audit_call_end(st, call, 500, 12, NULL, "server error"), CAD_OK);
    append_n(st, 2);
    exec_ok(st, "DROP TRIGGER audit_log_no_update");
    exec_ok(st, "UPDATE audit_log SET status = 201 WHERE seq = 4");
    expect_broken(st, 4, "record 4 was altered");
}

static void test_null_and_empty_differ(void **state)
{
    store *st = st_of(state);
    append_plain(st, "", "ops@example.com", "key.set", "");
    append_n(st, 1);
    exec_ok(st, "DROP TRIGGER audit_log_no_update");
    exec_ok(st, "UPDATE audit_log SET tenant_id = NULL WHERE seq = 1");
    expect_broken(st, 1, "record 1 was altered");
    exec_ok(st, "UPDATE audit_log SET tenant_id = '', detail = NULL WHERE seq = 1");
    expect_broken(st, 1, "record 1 was altered");
    exec_ok(st, "UPDATE audit_log SET detail = '' WHERE seq = 1");
    expect_ok(st, 2);
}

static void test_shifted_bytes_detected(void **state)
{
    store *st = st_of(state);
    struct audit_entry e = {.actor = "system",
                            .action = "klaviyo.call",
                            .method = "GET",
                            .endpoint = "/api/lists/",
                            .status = 200,
                            .duration_ms = 3};
    assert_int_equal(audit_append(st, &e, NULL), CAD_OK);
    append_n(st, 1);
    exec_ok(st, "DROP TRIGGER audit_log_no_update");
    exec_ok(st, "UPDATE audit_log SET method = 'GE', endpoint = 'T/api/lists/' WHERE seq = 1");
    expect_broken(st, 1, "record 1 was altered");
}

/* Moving a byte that looks like a field separator between two text fields must still break the
 * hash: only the length prefixes tell "ops@example.com" + "session.start" from
 * "ops@example.coms" + "ession.start". */
static void test_moved_separator_detected(void **state)
{
    store *st = st_of(state);
    append_plain(st, "t1", "ops@example.com", "session.start", NULL);
    append_n(st, 1);
    exec_ok(st, "DROP TRIGGER audit_log_no_update");
    exec_ok(st, "UPDATE audit_log SET actor = actor || 's', action = substr(action, 2) "
                "WHERE seq = 1");
    expect_broken(st, 1, "record 1 was altered");
}

static void test_deleted_record_detected(void **state)
{
    store *st = st_of(state);
    append_n(st, 5);
    exec_ok(st, "DROP TRIGGER audit_log_no_delete");
    exec_ok(st, "DELETE FROM audit_log WHERE seq = 3");
    expect_broken(st, 3, "record 3 was removed");
}

static void test_deleted_records_detected(void **state)
{
    store *st = st_of(state);
    append_n(st, 6);
    exec_ok(st, "DROP TRIGGER audit_log_no_delete");
    exec_ok(st, "DELETE FROM audit_log WHERE seq IN (1, 2)");
    expect_broken(st, 1, "records 1 to 2 were removed");
}

static void test_deleted_and_renumbered_detected(void **state)
{
    store *st = st_of(state);
    append_n(st, 5);
    exec_ok(st, "DROP TRIGGER audit_log_no_delete");
    exec_ok(st, "DROP TRIGGER audit_log_no_update");
    exec_ok(st, "DELETE FROM audit_log WHERE seq = 3");
    exec_ok(st, "UPDATE audit_log SET seq = seq - 1 WHERE seq = 4");
    exec_ok(st, "UPDATE audit_log SET seq = seq - 1 WHERE seq = 5");
    exec_ok(st, "UPDATE audit_head SET seq = 4");
    expect_broken(st, 3, "record 3 was altered");
}

static void test_reordered_records_detected(void **state)
{
    store *st = st_of(state);
    append_n(st, 5);
    exec_ok(st, "DROP TRIGGER audit_log_no_update");
    exec_ok(st, "UPDATE audit_log SET seq = -1 WHERE seq = 3");
    exec_ok(st, "UPDATE audit_log SET seq = 3 WHERE seq = 4");
    exec_ok(st, "UPDATE audit_log SET seq = 4 WHERE seq = -1");
    expect_broken(st, 3, "records were reordered: record 3 follows the record now at 4");
}

/* A record lifted from another, self-consistent chain: its own hash checks, its link does not. */
static void test_foreign_record_detected(void **state)
{
    store *st = st_of(state);
    struct fixture *fx = *state;
    append_n(st, 5);

    char other_path[160];
    snprintf(other_path, sizeof other_path, "%s/other.db", fx->dir);
    store *other;
    assert_int_equal(store_open(&other, other_path), CAD_OK);
    append_plain(other, "t1", AUDIT_ACTOR_SYSTEM, "test.event", "forged 1");
    append_plain(other, "t1", AUDIT_ACTOR_SYSTEM, "test.event", "forged 2");
    append_plain(other, "t1", AUDIT_ACTOR_SYSTEM, "test.event", "forged 3");
    store_close(other);

    char attach[256];
    snprintf(attach, sizeof attach, "ATTACH DATABASE '%s' AS other", other_path);
    exec_ok(st, attach);
    exec_ok(st, "DROP TRIGGER audit_log_no_delete");
    exec_ok(st, "DELETE FROM audit_log WHERE seq = 3");
    exec_ok(st, "INSERT INTO audit_log SELECT * FROM other.audit_log WHERE seq = 3");
    exec_ok(st, "DETACH DATABASE other");
    remove_db(other_path);
    expect_broken(st, 3, "record 3 does not follow record 2");
}

static void test_truncated_tail_detected(void **state)
{
    store *st = st_of(state);
    append_n(st, 5);
    exec_ok(st, "DROP TRIGGER audit_log_no_delete");
    exec_ok(st, "DELETE FROM audit_log WHERE seq = 5");
    expect_broken(st, 5, "truncated: it ends at record 4 but its head says 5");
    exec_ok(st, "DELETE FROM audit_log");
    expect_broken(st, 1, "truncated: it ends at record 0 but its head says 5");
}

static void test_head_tampering_detected(void **state)
{
    store *st = st_of(state);
    append_n(st, 3);
    exec_ok(st, "UPDATE audit_head SET hash = '" /* a different, well-formed hash */
                "1111111111111111111111111111111111111111111111111111111111111111'");
    expect_broken(st, 3, "record 3 was replaced");
    exec_ok(st, "UPDATE audit_head SET hash = 'short'");
    expect_broken(st, 3, "the chain head is damaged");
    struct audit_entry e = {.actor = "system", .action = "x", .duration_ms = -1};
    assert_int_equal(audit_append(st, &e, NULL), CAD_ECORRUPT);

    exec_ok(st, "DELETE FROM audit_head");
    expect_broken(st, 0, "the chain head is missing");
    assert_int_equal(audit_append(st, &e, NULL), CAD_ECORRUPT);
    assert_non_null(strstr(cad_errmsg(), "chain head is missing"));
}

/* ---- transactions ------------------------------------------------------------------------- */

static void test_rolled_back_outer_transaction(void **state)
{
    store *st = st_of(state);
    append_n(st, 2);
    assert_int_equal(store_begin(st), CAD_OK);
    assert_int_equal(append_plain(st, "t1", "ops@example.com", "tenant.add", "inside"), 3);
    int64_t call;
    assert_int_equal(audit_call_begin(st, "t1", "ops@example.com", "klaviyo.call", "GET",
                                      "/api/accounts/", NULL, 0, &call),
                     CAD_OK);
    assert_int_equal(store_rollback(st), CAD_OK);

    expect_ok(st, 2);
    assert_int_equal(query_int(st, "SELECT seq FROM audit_head WHERE id = $1", 1), 2);
    assert_int_equal(append_plain(st, "t1", "ops@example.com", "tenant.add", "after"), 3);
    expect_ok(st, 3);
}

static void test_committed_outer_transaction(void **state)
{
    store *st = st_of(state);
    assert_int_equal(store_begin(st), CAD_OK);
    append_n(st, 3);
    assert_int_equal(store_commit(st), CAD_OK);
    expect_ok(st, 3);
}

/* A failure inside an append's transaction must not leave it open: the next append has to be
 * committed, as a second connection sees. Inside a caller's transaction, the whole transaction
 * is rolled back (audit.h). */
static void test_failed_append_leaves_no_transaction(void **state)
{
    store *st = st_of(state);
    struct fixture *fx = *state;
    int64_t call;
    append_n(st, 1);
    assert_int_equal(
        audit_call_begin(st, "t1", "system", "klaviyo.call", "GET", "/api/lists/", NULL, 0, &call),
        CAD_OK);
    assert_int_equal(audit_call_end(st, call, 200, 5, NULL, NULL), CAD_OK);
    assert_int_equal(audit_call_end(st, call, 200, 5, NULL, NULL), CAD_EEXIST);
    assert_int_equal(append_plain(st, "t1", "system", "after.failure", NULL), 4);

    store *other;
    assert_int_equal(store_open(&other, fx->path), CAD_OK);
    assert_int_equal(query_int(other, "SELECT COUNT(*) FROM audit_log WHERE seq > $1", 0), 4);

    assert_int_equal(store_begin(st), CAD_OK);
    assert_int_equal(append_plain(st, "t1", "ops@example.com", "tenant.add", NULL), 5);
    assert_int_equal(audit_call_end(st, call, 200, 5, NULL, NULL), CAD_EEXIST);
    assert_int_equal(store_commit(st), CAD_ESTATE);
    assert_int_equal(query_int(other, "SELECT COUNT(*) FROM audit_log WHERE seq > $1", 0), 4);
    expect_ok(other, 4);
    store_close(other);
    expect_ok(st, 4);
}

/* ---- calls -------------------------------------------------------------------------------- */

static void test_begin_without_end_listed_as_no_outcome(void **state)
{
    store *st = st_of(state);
    static const char payload[] = "{\"data\":{\"type\":\"list\"}}";
    int64_t call;
    assert_int_equal(audit_call_begin(st, "t1", "ops@example.com", "klaviyo.call", "POST",
                                      "/api/lists/", payload, strlen(payload), &call),
                     CAD_OK);
    struct listing l;
    list_into(st, NULL, &l);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.rows[0].seq, call);
    assert_int_equal(l.rows[0].status, -1);
    assert_int_equal(l.rows[0].duration_ms, -1);
    assert_string_equal(l.rows[0].method, "POST");
    assert_string_equal(l.rows[0].endpoint, "/api/lists/");
    assert_string_equal(l.rows[0].request_id, "(null)");
    char expect[65];
    sha256_hex(payload, strlen(payload), expect);
    assert_string_equal(l.rows[0].payload, expect);

    struct audit_filter f = {.status = -1};
    list_into(st, &f, &l);
    assert_int_equal(l.n, 1);
    f.status = 200;
    list_into(st, &f, &l);
    assert_int_equal(l.n, 0);
}

static void test_begin_end_listed_as_one(void **state)
{
    store *st = st_of(state);
    int64_t call;
    assert_int_equal(audit_call_begin(st, "t1", AUDIT_ACTOR_CLIENT, "klaviyo.call", "GET",
                                      "/api/accounts/", NULL, 0, &call),
                     CAD_OK);
    append_plain(st, "t1", "system", "key.verify", "between");
    assert_int_equal(audit_call_end(st, call, 200, 187, "01HZX-req", "ok"), CAD_OK);

    assert_int_equal(query_int(st, "SELECT COUNT(*) FROM audit_log WHERE seq > $1", 0), 3);
    assert_int_equal(query_int(st, "SELECT ref_seq FROM audit_log WHERE seq = $1", 3), call);
    char text[256];
    query_text(st, "SELECT action FROM audit_log WHERE seq = $1", 3, text);
    assert_string_equal(text, "klaviyo.call.result");

    struct listing l;
    list_into(st, NULL, &l);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.rows[0].seq, call);
    assert_string_equal(l.rows[0].action, "klaviyo.call");
    assert_int_equal(l.rows[0].status, 200);
    assert_int_equal(l.rows[0].duration_ms, 187);
    assert_string_equal(l.rows[0].request_id, "01HZX-req");
    assert_string_equal(l.rows[0].detail, "ok");
    assert_string_equal(l.rows[0].payload,
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_string_equal(l.rows[1].action, "key.verify");
    assert_int_equal(l.rows[1].status, 0);
    expect_ok(st, 3);
}

static void test_call_end_errors(void **state)
{
    store *st = st_of(state);
    int64_t call, plain = append_plain(st, "t1", "system", "key.set", NULL);
    assert_int_equal(
        audit_call_begin(st, "t1", "system", "klaviyo.call", "GET", "/api/lists/", NULL, 0, &call),
        CAD_OK);
    assert_int_equal(audit_call_end(st, 99, 200, 1, NULL, NULL), CAD_ENOTFOUND);
    assert_int_equal(audit_call_end(st, 0, 200, 1, NULL, NULL), CAD_EINVAL);
    assert_int_equal(audit_call_end(st, plain, 200, 1, NULL, NULL), CAD_EINVAL);
    assert_int_equal(audit_call_end(st, call, -5, 1, NULL, NULL), CAD_EINVAL);
    assert_int_equal(audit_call_end(st, call, 0, -1, NULL, "connection refused"), CAD_OK);
    assert_int_equal(audit_call_end(st, call, 200, 1, NULL, NULL), CAD_EEXIST);
    assert_non_null(strstr(cad_errmsg(), "already has its outcome (record 3)"));
    assert_int_equal(audit_call_end(st, 3, 200, 1, NULL, NULL), CAD_EINVAL);

    struct listing l;
    list_into(st, NULL, &l);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.rows[1].status, 0);
    assert_int_equal(l.rows[1].duration_ms, -1);
    assert_string_equal(l.rows[1].detail, "connection refused");
    expect_ok(st, 3);
}

static void test_call_begin_errors(void **state)
{
    store *st = st_of(state);
    assert_int_equal(
        audit_call_begin(st, "t1", "system", "klaviyo.call", NULL, "/api/", NULL, 0, NULL),
        CAD_EINVAL);
    assert_int_equal(audit_call_begin(st, "t1", "system", "klaviyo.call", "GET", "", NULL, 0, NULL),
                     CAD_EINVAL);
    assert_int_equal(
        audit_call_begin(st, "t1", "system", "klaviyo.call", "GET", "/api/", NULL, 4, NULL),
        CAD_EINVAL);
    assert_int_equal(
        audit_call_begin(st, "t1", NULL, "klaviyo.call", "GET", "/api/", NULL, 0, NULL),
        CAD_EINVAL);
    expect_ok(st, 0);
}

/* Group commit: several intents in one transaction, then their outcomes in one. */
static void test_call_batches(void **state)
{
    store *st = st_of(state);
    static const char body[] = "{\"data\":{\"type\":\"template\"}}";
    append_plain(st, "t1", "system", "key.set", NULL);
    struct audit_call calls[3] = {
        {.tenant_id = "t1",
         .actor = "client",
         .action = "klaviyo.call",
         .method = "POST",
         .endpoint = "/api/templates",
         .payload = body,
         .n = strlen(body)},
        {.tenant_id = "t1",
         .actor = "client",
         .action = "klaviyo.call",
         .method = "GET",
         .endpoint = "/api/lists?page%5Bsize%5D=10"},
        {.tenant_id = "t1",
         .actor = "ops@example.com",
         .action = "klaviyo.call",
         .method = "PATCH",
         .endpoint = "/api/lists/L1",
         .payload = body,
         .n = strlen(body)},
    };
    assert_int_equal(audit_call_begin_many(st, calls, 3), CAD_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(calls[i].seq, 2 + i);
    expect_ok(st, 4);
    struct audit_filter awaiting = {.status = -1};
    struct listing l;
    list_into(st, &awaiting, &l);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.rows[1].endpoint, "/api/lists");

    /* Outcomes in another order than the intents, one of them a network failure. */
    struct audit_outcome outs[3] = {
        {.intent_seq = calls[2].seq, .status = 200, .duration_ms = 80, .request_id = "r3"},
        {.intent_seq = calls[0].seq, .status = 201, .duration_ms = 95, .request_id = "r1"},
        {.intent_seq = calls[1].seq, .status = 0, .duration_ms = -1, .detail = "timed out"},
    };
    assert_int_equal(audit_call_end_many(st, outs, 3), CAD_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(outs[i].rc, CAD_OK);
    expect_ok(st, 7);
    list_into(st, &awaiting, &l);
    assert_int_equal(l.n, 0);
    list_into(st, NULL, &l);
    assert_int_equal(l.n, 4);
    assert_int_equal(l.rows[1].status, 201);
    assert_string_equal(l.rows[1].request_id, "r1");
    assert_string_equal(l.rows[2].detail, "timed out");
    assert_int_equal(l.rows[3].status, 200);
    assert_int_equal(audit_call_begin_many(st, calls, 0), CAD_OK);
    assert_int_equal(audit_call_end_many(st, outs, 0), CAD_OK);
}

/* A batch with one bad intent records none of them: the caller sends nothing. */
static void test_failed_batch_records_nothing(void **state)
{
    store *st = st_of(state);
    append_plain(st, "t1", "system", "key.set", NULL);
    struct audit_call calls[3] = {
        {.tenant_id = "t1",
         .actor = "client",
         .action = "klaviyo.call",
         .method = "GET",
         .endpoint = "/api/lists"},
        {.tenant_id = "t1",
         .actor = "client",
         .action = "klaviyo.call",
         .method = "GET",
         .endpoint = "/api/segments"},
        {.tenant_id = "t1",
         .actor = "client",
         .action = "klaviyo.call",
         .method = NULL,
         .endpoint = "/api/forms"},
    };
    assert_int_equal(audit_call_begin_many(st, calls, 3), CAD_EINVAL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(calls[i].seq, 0);
    assert_int_equal(query_int(st, "SELECT COUNT(*) FROM audit_log WHERE seq > $1", 0), 1);
    expect_ok(st, 1);
    /* The store is usable afterwards, and the chain goes on from the record before. */
    calls[2].method = "GET";
    assert_int_equal(audit_call_begin_many(st, calls, 3), CAD_OK);
    assert_int_equal(calls[0].seq, 2);
    expect_ok(st, 4);

    /* One bad outcome costs only itself. */
    assert_int_equal(audit_call_end(st, calls[1].seq, 200, 5, NULL, NULL), CAD_OK);
    struct audit_outcome outs[3] = {
        {.intent_seq = calls[0].seq, .status = 200, .duration_ms = 5},
        {.intent_seq = calls[1].seq, .status = 200, .duration_ms = 5},
        {.intent_seq = calls[2].seq, .status = 404, .duration_ms = 7},
    };
    assert_int_equal(audit_call_end_many(st, outs, 3), CAD_EEXIST);
    assert_int_equal(outs[0].rc, CAD_OK);
    assert_int_equal(outs[1].rc, CAD_EEXIST);
    assert_int_equal(outs[2].rc, CAD_OK);
    struct audit_filter awaiting = {.status = -1};
    struct listing l;
    list_into(st, &awaiting, &l);
    assert_int_equal(l.n, 0);
    expect_ok(st, 7);
}

static void test_endpoint_query_string_stripped(void **state)
{
    store *st = st_of(state);
    int64_t call;
    assert_int_equal(audit_call_begin(st, "t1", "system", "klaviyo.call", "GET",
                                      "/api/profiles/?filter=equals(email,\"a@b.c\")&page=2", NULL,
                                      0, &call),
                     CAD_OK);
    assert_int_equal(audit_call_begin(st, "t1", "system", "klaviyo.call", "GET", "/api/lists/#frag",
                                      NULL, 0, NULL),
                     CAD_OK);
    struct listing l;
    list_into(st, NULL, &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.rows[0].endpoint, "/api/profiles/");
    assert_string_equal(l.rows[1].endpoint, "/api/lists/");

    struct audit_entry e = {.actor = "system",
                            .action = "klaviyo.call",
                            .method = "GET",
                            .endpoint = "/api/profiles/?email=a@b.c",
                            .duration_ms = -1};
    assert_int_equal(audit_append(st, &e, NULL), CAD_EINVAL);
    assert_null(strstr(cad_errmsg(), "a@b.c"));
    assert_non_null(strstr(cad_errmsg(), "\"/api/profiles/\""));
}

static void test_append_validation(void **state)
{
    store *st = st_of(state);
    struct audit_entry e = {.actor = "system", .action = "key.set", .duration_ms = -1};
    assert_int_equal(audit_append(st, NULL, NULL), CAD_EINVAL);
    e.actor = NULL;
    assert_int_equal(audit_append(st, &e, NULL), CAD_EINVAL);
    e.actor = "";
    assert_int_equal(audit_append(st, &e, NULL), CAD_EINVAL);
    e.actor = "system";
    e.action = NULL;
    assert_int_equal(audit_append(st, &e, NULL), CAD_EINVAL);
    e.action = "key.set";
    e.payload_sha256 = "ABCDEF";
    assert_int_equal(audit_append(st, &e, NULL), CAD_EINVAL);
    e.payload_sha256 = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
    assert_int_equal(audit_append(st, &e, NULL), CAD_EINVAL);
    e.payload_sha256 = NULL;
    e.status = -2;
    assert_int_equal(audit_append(st, &e, NULL), CAD_EINVAL);
    e.status = 0;
    e.duration_ms = -7;
    assert_int_equal(audit_append(st, &e, NULL), CAD_EINVAL);
    e.duration_ms = -1;
    e.ref_seq = 5;
    assert_int_equal(audit_append(st, &e, NULL), CAD_EINVAL);
    e.ref_seq = -1;
    assert_int_equal(audit_append(st, &e, NULL), CAD_EINVAL);
    e.ref_seq = 0;
    char long_text[AUDIT_FIELD_MAX + 2];
    memset(long_text, 'a', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    e.request_id = long_text;
    assert_int_equal(audit_append(st, &e, NULL), CAD_EINVAL);
    e.request_id = NULL;
    expect_ok(st, 0);
    assert_int_equal(audit_append(st, &e, NULL), CAD_OK);
    expect_ok(st, 1);
}

static void test_detail_cut_and_redacted(void **state)
{
    store *st = st_of(state);
    char long_detail[AUDIT_DETAIL_MAX + 100];
    memset(long_detail, 'x', sizeof long_detail - 1);
    long_detail[sizeof long_detail - 1] = '\0';
    /* A two-byte character straddling the cut must not be split. */
    long_detail[AUDIT_DETAIL_MAX - 1] = (char)0xC3;
    long_detail[AUDIT_DETAIL_MAX] = (char)0xA9;
    append_plain(st, NULL, "system", "test.long", long_detail);
    append_plain(st, "t1", "ops@example.com", "key.set",
                 "pasted pk_abcdefghijklmnopqrstuvwxyz0123456789 by mistake");
    struct listing l;
    list_into(st, NULL, &l);
    assert_int_equal(l.n, 2);
    assert_int_equal(strlen(l.rows[0].detail), AUDIT_DETAIL_MAX - 1);
    assert_null(strstr(l.rows[1].detail, "abcdefghijklmnopqrstuvwxyz"));
    assert_non_null(strstr(l.rows[1].detail, "pk_[redacted]"));
    assert_string_equal(l.rows[0].tenant, "(null)");
    expect_ok(st, 2);
}

/* ---- listing ------------------------------------------------------------------------------ */

static void seed_mixed(store *st, int64_t ts[6])
{
    int64_t call;
    struct listing l;
    /* 1: t1 key.set by an operator */
    append_plain(st, "t1", "ops@example.com", "key.set", "set");
    sleep_ms(3);
    /* 2+3: t1 klaviyo.call 200 */
    assert_int_equal(audit_call_begin(st, "t1", AUDIT_ACTOR_CLIENT, "klaviyo.call", "GET",
                                      "/api/accounts/", NULL, 0, &call),
                     CAD_OK);
    assert_int_equal(audit_call_end(st, call, 200, 10, "r1", NULL), CAD_OK);
    sleep_ms(3);
    /* 4: t2 klaviyo.verify, no outcome */
    assert_int_equal(audit_call_begin(st, "t2", AUDIT_ACTOR_SYSTEM, "klaviyo.verify", "GET",
                                      "/api/accounts/", NULL, 0, &call),
                     CAD_OK);
    sleep_ms(3);
    /* 5+6: t2 klaviyo.call 429 */
    assert_int_equal(audit_call_begin(st, "t2", AUDIT_ACTOR_CLIENT, "klaviyo.call", "POST",
                                      "/api/lists/", "{}", 2, &call),
                     CAD_OK);
    assert_int_equal(audit_call_end(st, call, 429, 5, "r2", "throttled"), CAD_OK);
    sleep_ms(3);
    /* 7: installation-wide */
    append_plain(st, NULL, AUDIT_ACTOR_SYSTEM, "kms.rotate", NULL);
    sleep_ms(3);
    /* 8: an action that shares the prefix text but not the dot */
    append_plain(st, "t1", AUDIT_ACTOR_SYSTEM, "klaviyoish", NULL);
    list_into(st, NULL, &l);
    assert_int_equal(l.n, 6);
    for (int i = 0; i < 6; i++)
        ts[i] = l.rows[i].ts_ms;
}

static void expect_seqs(store *st, const struct audit_filter *f, const int64_t *seqs, int n)
{
    struct listing l;
    list_into(st, f, &l);
    assert_int_equal(l.n, n);
    for (int i = 0; i < n; i++)
        assert_int_equal(l.rows[i].seq, seqs[i]);
}

static void test_filters(void **state)
{
    store *st = st_of(state);
    int64_t ts[6];
    seed_mixed(st, ts);

    expect_seqs(st, NULL, (int64_t[]){1, 2, 4, 5, 7, 8}, 6);
    expect_seqs(st, &(struct audit_filter){.tenant_id = "t1"}, (int64_t[]){1, 2, 8}, 3);
    expect_seqs(st, &(struct audit_filter){.tenant_id = "t2"}, (int64_t[]){4, 5}, 2);
    expect_seqs(st, &(struct audit_filter){.actor = "client"}, (int64_t[]){2, 5}, 2);
    expect_seqs(st, &(struct audit_filter){.action = "klaviyo.call"}, (int64_t[]){2, 5}, 2);
    expect_seqs(st, &(struct audit_filter){.action = "klaviyo.*"}, (int64_t[]){2, 4, 5}, 3);
    expect_seqs(st, &(struct audit_filter){.action = "klaviyo*"}, (int64_t[]){2, 4, 5, 8}, 4);
    expect_seqs(st, &(struct audit_filter){.action = "*"}, (int64_t[]){1, 2, 4, 5, 7, 8}, 6);
    expect_seqs(st, &(struct audit_filter){.action = "klaviyo.call.result"}, NULL, 0);
    expect_seqs(st, &(struct audit_filter){.action = "KLAVIYO.*"}, NULL, 0);
    expect_seqs(st, &(struct audit_filter){.status = 429}, (int64_t[]){5}, 1);
    expect_seqs(st, &(struct audit_filter){.status = -1}, (int64_t[]){4}, 1);
    expect_seqs(st, &(struct audit_filter){.tenant_id = "t2", .status = 200}, NULL, 0);
    expect_seqs(st, &(struct audit_filter){.since_ms = ts[2]}, (int64_t[]){4, 5, 7, 8}, 4);
    expect_seqs(st, &(struct audit_filter){.until_ms = ts[2]}, (int64_t[]){1, 2}, 2);
    expect_seqs(st, &(struct audit_filter){.since_ms = ts[1], .until_ms = ts[3]}, (int64_t[]){2, 4},
                2);
    expect_seqs(st, &(struct audit_filter){.tenant_id = "t1", .action = "klaviyo.*", .limit = 1},
                (int64_t[]){2}, 1);
}

static void test_paging(void **state)
{
    store *st = st_of(state);
    int64_t ts[6];
    seed_mixed(st, ts);
    struct audit_filter f = {.limit = 4};
    expect_seqs(st, &f, (int64_t[]){1, 2, 4, 5}, 4);
    f.after_seq = 5;
    expect_seqs(st, &f, (int64_t[]){7, 8}, 2);
    f.after_seq = 8;
    expect_seqs(st, &f, NULL, 0);
    /* An outcome's seq as the cursor still pages correctly. */
    f = (struct audit_filter){.after_seq = 3, .limit = 2};
    expect_seqs(st, &f, (int64_t[]){4, 5}, 2);
}

static int stop_after_two(void *ctx, const struct audit_record *r)
{
    (void)r;
    return ++*(int *)ctx == 2 ? 42 : 0;
}

static void test_list_errors(void **state)
{
    store *st = st_of(state);
    append_n(st, 4);
    int seen = 0;
    assert_int_equal(audit_list(st, NULL, stop_after_two, &seen), 42);
    assert_int_equal(seen, 2);
    assert_int_equal(audit_list(st, &(struct audit_filter){.limit = -1}, stop_after_two, &seen),
                     CAD_EINVAL);
    assert_int_equal(audit_list(st, &(struct audit_filter){.status = -2}, stop_after_two, &seen),
                     CAD_EINVAL);
    assert_int_equal(audit_list(st, &(struct audit_filter){.since_ms = 20, .until_ms = 10},
                                stop_after_two, &seen),
                     CAD_EINVAL);
    assert_int_equal(audit_list(st, NULL, NULL, NULL), CAD_EINVAL);
}

/* ---- export ------------------------------------------------------------------------------- */

static char *export_csv(store *st, const struct audit_filter *f)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    int rc = audit_export_csv(st, f, out);
    fclose(out);
    assert_int_equal(rc, CAD_OK);
    return buf;
}

/* The n-th (0-based) CSV line, which may not contain quoted newlines; caller frees. */
static char *csv_line(const char *csv, int n)
{
    const char *p = csv;
    for (int i = 0; i < n; i++) {
        p = strstr(p, "\r\n");
        assert_non_null(p);
        p += 2;
    }
    const char *end = strstr(p, "\r\n");
    assert_non_null(end);
    return strndup(p, (size_t)(end - p));
}

static void test_csv_quoting(void **state)
{
    store *st = st_of(state);
    append_plain(st, "t1", "ops@example.com", "key.set", "a, \"quoted\"\nsecond line");
    append_plain(st, "t1", "ops@example.com", "key.set", "plain");
    char *csv = export_csv(st, NULL);
    char hash1[256], hash2[256], ts1[32], ts2[32];
    query_text(st, "SELECT hash FROM audit_log WHERE seq = $1", 1, hash1);
    query_text(st, "SELECT hash FROM audit_log WHERE seq = $1", 2, hash2);
    time_format_ms(query_int(st, "SELECT ts_ms FROM audit_log WHERE seq = $1", 1), ts1, sizeof ts1);
    time_format_ms(query_int(st, "SELECT ts_ms FROM audit_log WHERE seq = $1", 2), ts2, sizeof ts2);
    char expect[2048];
    snprintf(expect, sizeof expect,
             "seq,time,tenant,actor,action,method,endpoint,payload_sha256,status,duration_ms,"
             "request_id,detail,hash\r\n"
             "1,%s,t1,ops@example.com,key.set,,,,0,,,\"a, \"\"quoted\"\"\nsecond line\",%s\r\n"
             "2,%s,t1,ops@example.com,key.set,,,,0,,,plain,%s\r\n",
             ts1, hash1, ts2, hash2);
    assert_string_equal(csv, expect);
    free(csv);
}

static void test_csv_formula_neutralised(void **state)
{
    store *st = st_of(state);
    append_plain(st, "=cmd|'/C calc'!A0", "@SUM(1+1)", "+x", "-2+3");
    append_plain(st, "t1", "system", "key.set", "=HYPERLINK(\"http://evil\",\"x\"),y");
    append_plain(st, "t1", "system", "key.set", "\tcell");
    int64_t call;
    assert_int_equal(
        audit_call_begin(st, "t1", "system", "klaviyo.call", "GET", "/api/", NULL, 0, &call),
        CAD_OK);
    char *csv = export_csv(st, NULL);

    char *l1 = csv_line(csv, 1), *l2 = csv_line(csv, 2), *l3 = csv_line(csv, 3),
         *l4 = csv_line(csv, 4);
    assert_non_null(strstr(l1, ",'=cmd|'/C calc'!A0,'@SUM(1+1),'+x,,,,0,,,'-2+3,"));
    assert_non_null(strstr(l2, ",\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\"),y\","));
    assert_non_null(strstr(l3, ",'\tcell,"));
    /* A call with no outcome keeps its numeric status; numbers are not text cells. */
    assert_non_null(strstr(l4, ",-1,,,,"));
    assert_null(strstr(csv, ",="));
    assert_null(strstr(csv, ",@"));
    assert_null(strstr(csv, ",+"));
    assert_null(strstr(csv, ",\t"));
    free(l1);
    free(l2);
    free(l3);
    free(l4);
    free(csv);
}

static void test_csv_filtered(void **state)
{
    store *st = st_of(state);
    append_plain(st, "t1", "system", "key.set", "one");
    append_plain(st, "t2", "system", "key.set", "two");
    char *csv = export_csv(st, &(struct audit_filter){.tenant_id = "t2"});
    assert_null(strstr(csv, "one"));
    assert_non_null(strstr(csv, "\r\n2,"));
    free(csv);
}

static void test_csv_write_error(void **state)
{
    store *st = st_of(state);
    append_n(st, 1);
    FILE *ro = fopen("/dev/null", "r");
    assert_non_null(ro);
    assert_int_equal(audit_export_csv(st, NULL, ro), CAD_EIO);
    fclose(ro);
}

static int print_json(void *ctx, const struct audit_record *r)
{
    return audit_print_json(r, ctx);
}

static void test_json_lines(void **state)
{
    store *st = st_of(state);
    int64_t call;
    assert_int_equal(audit_call_begin(st, "t1", AUDIT_ACTOR_CLIENT, "klaviyo.call", "GET",
                                      "/api/accounts/?x=1", NULL, 0, &call),
                     CAD_OK);
    assert_int_equal(audit_call_end(st, call, 200, 33, "req-9", "line\nbreak \"q\""), CAD_OK);
    append_plain(st, NULL, "system", "kms.rotate", "bad \xff utf8");

    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    assert_int_equal(audit_list(st, NULL, print_json, out), CAD_OK);
    fclose(out);

    char *nl = strchr(buf, '\n');
    assert_non_null(nl);
    *nl = '\0';
    json_error_t err;
    json_t *a = json_loads(buf, 0, &err);
    assert_non_null(a);
    assert_int_equal(json_integer_value(json_object_get(a, "seq")), 1);
    assert_int_equal(json_integer_value(json_object_get(a, "status")), 200);
    assert_int_equal(json_integer_value(json_object_get(a, "duration_ms")), 33);
    assert_string_equal(json_string_value(json_object_get(a, "endpoint")), "/api/accounts/");
    assert_string_equal(json_string_value(json_object_get(a, "request_id")), "req-9");
    assert_string_equal(json_string_value(json_object_get(a, "detail")), "line\nbreak \"q\"");
    assert_string_equal(json_string_value(json_object_get(a, "tenant_id")), "t1");
    assert_int_equal(strlen(json_string_value(json_object_get(a, "time"))), 24);
    json_decref(a);

    char *second = nl + 1;
    nl = strchr(second, '\n');
    assert_non_null(nl);
    assert_string_equal(nl + 1, "");
    *nl = '\0';
    json_t *b = json_loads(second, 0, &err);
    assert_non_null(b);
    assert_int_equal(json_integer_value(json_object_get(b, "seq")), 3);
    assert_true(json_is_null(json_object_get(b, "tenant_id")));
    assert_true(json_is_null(json_object_get(b, "method")));
    assert_true(json_is_null(json_object_get(b, "duration_ms")));
    assert_string_equal(json_string_value(json_object_get(b, "detail")), "bad ? utf8");
    json_decref(b);
    free(buf);
}

int main(void)
{
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_empty_log_verifies),
        T(test_chain_verifies),
        T(test_log_is_append_only),
        T(test_altered_record_detected),
        T(test_altered_status_detected),
        T(test_null_and_empty_differ),
        T(test_shifted_bytes_detected),
        T(test_moved_separator_detected),
        T(test_deleted_record_detected),
        T(test_deleted_records_detected),
        T(test_deleted_and_renumbered_detected),
        T(test_reordered_records_detected),
        T(test_foreign_record_detected),
        T(test_truncated_tail_detected),
        T(test_head_tampering_detected),
        T(test_rolled_back_outer_transaction),
        T(test_committed_outer_transaction),
        T(test_failed_append_leaves_no_transaction),
        T(test_begin_without_end_listed_as_no_outcome),
        T(test_begin_end_listed_as_one),
        T(test_call_end_errors),
        T(test_call_begin_errors),
        T(test_call_batches),
        T(test_failed_batch_records_nothing),
        T(test_endpoint_query_string_stripped),
        T(test_append_validation),
        T(test_detail_cut_and_redacted),
        T(test_filters),
        T(test_paging),
        T(test_list_errors),
        T(test_csv_quoting),
        T(test_csv_formula_neutralised),
        T(test_csv_filtered),
        T(test_csv_write_error),
        T(test_json_lines),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
