/* The store: migrations applied once and recorded, newer schema refused, placeholders by
 * number, transactions nest and roll back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/err.h"
#include "store/store.h"
#include "testutil.h"

struct fixture {
    char *dir;
    char path[600];
    store *st;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->dir = test_tmpdir();
    snprintf(f->path, sizeof f->path, "%s/t.db", f->dir);
    assert_int_equal(store_open(&f->st, f->path), CAD_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->st);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

static int grab_int(void *ctx, const store_row *row)
{
    *(int64_t *)ctx = store_row_int(row, 0);
    return 0;
}

static void test_migrations_recorded_once(void **state)
{
    struct fixture *f = *state;
    int v;
    assert_int_equal(store_schema_version(f->st, &v), CAD_OK);
    assert_int_equal(v, store_schema_latest(f->st));
    assert_true(v >= 1);
    store_close(f->st);
    assert_int_equal(store_open(&f->st, f->path), CAD_OK); /* reopen: nothing re-applied */
    int64_t n = 0;
    assert_int_equal(
        store_query(f->st, "SELECT COUNT(*) FROM schema_migrations", SV_NONE, grab_int, &n),
        CAD_OK);
    assert_int_equal(n, v);
}

static void test_newer_schema_refused(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_exec(f->st,
                                "INSERT INTO schema_migrations(version, name, applied_ms) "
                                "VALUES (9999, '9999_future.sql', 0)",
                                SV_NONE),
                     CAD_OK);
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(store_open(&f->st, f->path), CAD_EVERSION);
    assert_non_null(strstr(cad_errmsg(), "newer Cadence"));
    assert_null(f->st);
}

/* A migration missing below the highest one applied (a gap) is applied, not skipped: here the
 * record of 0001 is removed, so reopening runs 0001 again, which fails on its existing tables. */
static void test_gap_in_migrations_is_filled(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_exec(f->st, "DELETE FROM schema_migrations WHERE version = 1", SV_NONE),
                     CAD_OK);
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(store_open(&f->st, f->path), CAD_EIO);
    assert_non_null(strstr(cad_errmsg(), "migration 0001_foundation.sql failed"));
}

static void test_placeholders_by_number(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_exec(f->st, "CREATE TABLE t (a TEXT, b BIGINT)", SV_NONE), CAD_OK);
    /* $2 appears before $1: values must still go by number. */
    assert_int_equal(
        store_exec(f->st, "INSERT INTO t(b, a) VALUES ($2, $1)", SV_ARGS(SV_TEXT("x"), SV_INT(42))),
        CAD_OK);
    int64_t b = 0;
    assert_int_equal(
        store_query(f->st, "SELECT b FROM t WHERE a = $1", SV_ARGS(SV_TEXT("x")), grab_int, &b),
        CAD_OK);
    assert_int_equal(b, 42);
    assert_int_equal(
        store_exec(f->st, "INSERT INTO t(a, b) VALUES ($1, $2)", SV_ARGS(SV_TEXT("only one"))),
        CAD_EINVAL);
}

/* The same SQL run again from inside its own row callback (the cached statement is busy) and more
 * distinct statements than the cache holds: every answer still right. */
struct nested {
    store *st;
    int64_t sum, rows;
};

static int nested_row(void *ctx, const store_row *row)
{
    struct nested *n = ctx;
    int64_t a = store_row_int(row, 0), b = 0;
    n->rows++;
    if (store_query(n->st, "SELECT a FROM n WHERE a = $1", SV_ARGS(SV_INT(a)), grab_int, &b))
        return -1;
    n->sum += b;
    return 0;
}

static void test_statement_cache(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_exec(f->st, "CREATE TABLE n (a BIGINT)", SV_NONE), CAD_OK);
    for (int i = 1; i <= 5; i++)
        assert_int_equal(store_exec(f->st, "INSERT INTO n (a) VALUES ($1)", SV_ARGS(SV_INT(i))),
                         CAD_OK);
    struct nested n = {.st = f->st};
    assert_int_equal(
        store_query(f->st, "SELECT a FROM n WHERE a = $1", SV_ARGS(SV_INT(3)), nested_row, &n),
        CAD_OK);
    assert_int_equal(n.rows, 1);
    assert_int_equal(n.sum, 3);
    /* an outer scan whose callback runs the same statement for every row */
    n = (struct nested){.st = f->st};
    assert_int_equal(store_query(f->st, "SELECT a FROM n ORDER BY a", SV_NONE, nested_row, &n),
                     CAD_OK);
    assert_int_equal(n.rows, 5);
    assert_int_equal(n.sum, 15);
    /* 200 distinct statements, twice: entries are evicted and prepared again */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 200; i++) {
            char sql[64];
            snprintf(sql, sizeof sql, "SELECT %d + $1", i);
            int64_t v = 0;
            assert_int_equal(store_query(f->st, sql, SV_ARGS(SV_INT(round)), grab_int, &v), CAD_OK);
            assert_int_equal(v, i + round);
        }
    }
    /* a text parameter bound by reference is not kept past its query */
    char buf[8] = "5";
    int64_t c = 0;
    assert_int_equal(store_query(f->st, "SELECT count(*) FROM n WHERE a = CAST($1 AS INTEGER)",
                                 SV_ARGS(SV_TEXT(buf)), grab_int, &c),
                     CAD_OK);
    assert_int_equal(c, 1);
    snprintf(buf, sizeof buf, "9");
    assert_int_equal(store_query(f->st, "SELECT count(*) FROM n WHERE a = CAST($1 AS INTEGER)",
                                 SV_ARGS(SV_TEXT(buf)), grab_int, &c),
                     CAD_OK);
    assert_int_equal(c, 0);
    /* a statement that fails to prepare is reported, and the cache still works after it */
    assert_int_equal(store_exec(f->st, "SELEC nonsense", SV_NONE), CAD_EIO);
    assert_int_equal(
        store_query(f->st, "SELECT a FROM n WHERE a = $1", SV_ARGS(SV_INT(4)), grab_int, &c),
        CAD_OK);
    assert_int_equal(c, 4);
}

static void test_nested_transactions(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_exec(f->st, "CREATE TABLE t (a BIGINT)", SV_NONE), CAD_OK);
    assert_int_equal(store_begin(f->st), CAD_OK);
    assert_int_equal(store_begin(f->st), CAD_OK);
    assert_int_equal(store_exec(f->st, "INSERT INTO t VALUES (1)", SV_NONE), CAD_OK);
    assert_int_equal(store_commit(f->st), CAD_OK); /* inner: nothing yet */
    assert_int_equal(store_rollback(f->st), CAD_OK);
    int64_t n = -1;
    assert_int_equal(store_query(f->st, "SELECT COUNT(*) FROM t", SV_NONE, grab_int, &n), CAD_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_commit(f->st), CAD_ESTATE);
}

/* A second connection to the same database; its work transaction on its own TEMP table goes
 * through while the first holds the write lock (were it to take that lock, it would wait out
 * the busy timeout and fail); the two see each other's committed rows. */
static void test_second_connection_and_work_transaction(void **state)
{
    struct fixture *f = *state;
    store *b = NULL;
    assert_int_equal(store_open_again(f->st, &b), CAD_OK);
    assert_non_null(b);
    assert_int_equal(store_exec(f->st, "CREATE TABLE t (a BIGINT)", SV_NONE), CAD_OK);
    assert_int_equal(store_exec(b, "CREATE TEMP TABLE w (a BIGINT)", SV_NONE), CAD_OK);
    assert_int_equal(store_begin(f->st), CAD_OK);
    assert_int_equal(store_exec(f->st, "INSERT INTO t VALUES (1)", SV_NONE), CAD_OK);
    assert_int_equal(store_begin_work(b), CAD_OK);
    for (int i = 0; i < 100; i++)
        assert_int_equal(store_exec(b, "INSERT INTO temp.w VALUES ($1)", SV_ARGS(SV_INT(i))),
                         CAD_OK);
    assert_int_equal(store_commit(b), CAD_OK);
    assert_int_equal(store_commit(f->st), CAD_OK);
    int64_t n = -1;
    assert_int_equal(store_query(b, "SELECT COUNT(*) FROM temp.w", SV_NONE, grab_int, &n), CAD_OK);
    assert_int_equal(n, 100);
    assert_int_equal(store_query(b, "SELECT COUNT(*) FROM t", SV_NONE, grab_int, &n), CAD_OK);
    assert_int_equal(n, 1);
    /* the TEMP table is the connection's own */
    assert_int_not_equal(store_query(f->st, "SELECT COUNT(*) FROM temp.w", SV_NONE, grab_int, &n),
                         CAD_OK);
    store_close(b);
}

static void test_constraint_is_eexist(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_exec(f->st,
                                "INSERT INTO tenants(id, name, created_ms) VALUES ('a', 'A', 1)",
                                SV_NONE),
                     CAD_OK);
    assert_int_equal(store_exec(f->st,
                                "INSERT INTO tenants(id, name, created_ms) VALUES ('a', 'B', 1)",
                                SV_NONE),
                     CAD_EEXIST);
}

static void test_bad_url_and_path(void **state)
{
    (void)state;
    store *st = NULL;
    assert_int_equal(store_open(&st, "mysql://x"), CAD_EINVAL);
    assert_non_null(strstr(cad_errmsg(), "mysql"));
    assert_int_equal(store_open(&st, "/nonexistent-dir/x/y.db"), CAD_EIO);
    assert_null(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations_recorded_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gap_in_migrations_is_filled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_placeholders_by_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_statement_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_connection_and_work_transaction, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_constraint_is_eexist, setup, teardown),
        cmocka_unit_test(test_bad_url_and_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
