/*
 * Backend-independent half of the store: picks the backend from the URL, applies migrations,
 * counts nested transactions, and dispatches everything else through struct store_backend.
 */
#include "store/store.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/embed.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "store/store_backend.h"

struct store {
    const struct store_backend *be;
    void *h;
    int depth; /* nesting of store_begin() */
    int latest;
    char *url; /* for store_open_again() */
};

/* The number a migration's file name starts with ("0003_web.sql" -> 3); 0, as atoi gave, when
 * it starts with none or one out of int's range. */
static int migration_number(const char *name)
{
    char *end;
    errno = 0;
    long n = strtol(name, &end, 10);
    if (end == name || errno == ERANGE || n < INT_MIN || n > INT_MAX)
        return 0;
    return (int)n;
}

static int latest_migration(const struct store_backend *be)
{
    int latest = 0;
    for (const struct cad_embedded *m = be->migrations; m->name; m++)
        if (migration_number(m->name) > latest)
            latest = migration_number(m->name);
    return latest;
}

static int row_max(void *ctx, const store_row *row)
{
    *(int *)ctx = store_row_is_null(row, 0) ? 0 : (int)store_row_int(row, 0);
    return 0;
}

int store_schema_version(store *st, int *out)
{
    *out = 0;
    return store_query(st, "SELECT MAX(version) FROM schema_migrations", SV_NONE, row_max, out);
}

int store_schema_latest(const store *st)
{
    return st->latest;
}

static int row_flag(void *ctx, const store_row *row)
{
    (void)row;
    *(bool *)ctx = true;
    return 0;
}

static int migrate(store *st)
{
    int rc = st->be->exec_script(st->h, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                        " version INTEGER PRIMARY KEY,"
                                        " name TEXT NOT NULL,"
                                        " applied_ms BIGINT NOT NULL)");
    if (rc)
        return rc;
    int current;
    if ((rc = store_schema_version(st, &current)))
        return rc;
    if (current > st->latest)
        return cad_fail(CAD_EVERSION,
                        "the database is at schema version %d but this cadence only knows up to "
                        "%d; it was written by a newer Cadence. Run that version, or restore a "
                        "backup made before the upgrade",
                        current, st->latest);
    /* Every embedded migration not yet recorded is applied, in order, each in its own write
     * transaction that also checks (under the lock) that no other process applied it first. A
     * gap (a migration added below one already applied) is filled rather than skipped. */
    for (const struct cad_embedded *m = st->be->migrations; m->name; m++) {
        int num = migration_number(m->name);
        bool applied = false;
        if ((rc = store_begin(st)))
            return rc;
        rc = store_query(st, "SELECT 1 FROM schema_migrations WHERE version = $1",
                         SV_ARGS(SV_INT(num)), row_flag, &applied);
        if (rc == CAD_OK && applied) {
            if ((rc = store_commit(st)))
                return rc;
            continue;
        }
        if (rc == CAD_OK)
            rc = st->be->exec_script(st->h, (const char *)m->data);
        if (rc == CAD_OK)
            rc = store_exec(st,
                            "INSERT INTO schema_migrations(version, name, applied_ms) "
                            "VALUES ($1, $2, $3)",
                            SV_ARGS(SV_INT(num), SV_TEXT(m->name), SV_INT(time_now_ms())));
        if (rc) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", cad_errmsg());
            store_rollback(st);
            return cad_fail(rc, "migration %s failed: %s", m->name, msg);
        }
        if ((rc = store_commit(st)))
            return rc;
        cad_log(LOG_INFO, "store.migrate", "version=%d name=%s", num, m->name);
    }
    return CAD_OK;
}

int store_open(store **out, const char *url)
{
    *out = NULL;
    const struct store_backend *be = &store_backend_sqlite;
    const char *target = url;
    if (strncmp(url, "sqlite:", 7) == 0)
        target = url + 7;
    else if (strstr(url, "://"))
        return cad_fail(CAD_EINVAL,
                        "unsupported store URL scheme in \"%.*s\"; this build supports "
                        "sqlite:PATH",
                        (int)(strstr(url, "://") - url), url);
    store *st = calloc(1, sizeof *st);
    if (!st)
        return cad_fail(CAD_ENOMEM, "out of memory");
    st->be = be;
    st->latest = latest_migration(be);
    if (!(st->url = strdup(url))) {
        free(st);
        return cad_fail(CAD_ENOMEM, "out of memory");
    }
    int rc = be->open(&st->h, target);
    if (rc == CAD_OK)
        rc = migrate(st);
    if (rc) {
        store_close(st);
        return rc;
    }
    *out = st;
    return CAD_OK;
}

int store_open_again(store *st, store **out)
{
    return store_open(out, st->url);
}

void store_close(store *st)
{
    if (!st)
        return;
    if (st->h)
        st->be->close(st->h);
    free(st->url);
    free(st);
}

int store_exec(store *st, const char *sql, const struct store_val *params, size_t n)
{
    return st->be->exec(st->h, sql, params, n);
}

int store_query(store *st, const char *sql, const struct store_val *params, size_t n,
                store_row_fn fn, void *ctx)
{
    return st->be->query(st->h, sql, params, n, fn, ctx);
}

int64_t store_changes(store *st)
{
    return st->be->changes(st->h);
}

/* The outermost begin starts the transaction with `begin`; nested ones only count. */
static int begin_with(store *st, int (*begin)(void *handle))
{
    if (st->depth++ > 0)
        return CAD_OK;
    int rc = begin(st->h);
    if (rc)
        st->depth = 0;
    return rc;
}

int store_begin(store *st)
{
    return begin_with(st, st->be->begin);
}

int store_begin_work(store *st)
{
    return begin_with(st, st->be->begin_work);
}

int store_commit(store *st)
{
    if (st->depth == 0)
        return cad_fail(CAD_ESTATE, "commit without a transaction");
    if (--st->depth > 0)
        return CAD_OK;
    return st->be->commit(st->h);
}

int store_rollback(store *st)
{
    if (st->depth == 0)
        return CAD_OK;
    st->depth = 0;
    return st->be->rollback(st->h);
}

int store_row_columns(const store_row *row)
{
    return row->be->row_columns(row->impl);
}

bool store_row_is_null(const store_row *row, int col)
{
    return row->be->row_is_null(row->impl, col);
}

int64_t store_row_int(const store_row *row, int col)
{
    return row->be->row_int(row->impl, col);
}

const char *store_row_text(const store_row *row, int col)
{
    return row->be->row_text(row->impl, col);
}

const char *store_backend_name(const store *st)
{
    return st->be->name;
}
