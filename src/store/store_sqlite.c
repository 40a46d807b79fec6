/*
 * SQLite backend: WAL journal, synchronous=FULL (an audit record that was committed survives a
 * power cut), foreign keys on, a busy timeout so several processes (CLI beside the server) queue
 * rather than fail. Placeholders are PostgreSQL's $1..$N; SQLite accepts "$1" as a parameter name,
 * and we bind by the number in the name so order of appearance never matters.
 *
 * Prepared statements are cached per connection by their SQL text (the plan engine runs the same
 * few statements tens of thousands of times; preparing each anew was most of its CPU time). A
 * statement still in use when the same SQL is run again (a row callback that queries again) gets
 * a fresh, uncached one.
 */
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/embed.h"
#include "common/err.h"
#include "store/store_backend.h"

extern const struct cad_embedded store_migrations_sqlite[];

#define STMT_CACHE 64

struct cached_stmt {
    char *sql;
    sqlite3_stmt *stmt;
    uint64_t hash;
    uint64_t used; /* the connection's use counter when last taken: least recent goes first */
    bool busy;
};

struct sq_conn {
    sqlite3 *db;
    uint64_t uses;
    struct cached_stmt cache[STMT_CACHE];
};

static uint64_t sql_hash(const char *s)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static int sq_fail(sqlite3 *db, const char *what)
{
    int code = sqlite3_extended_errcode(db);
    int rc = (code & 0xff) == SQLITE_CONSTRAINT ? CAD_EEXIST : CAD_EIO;
    return cad_fail(rc, "%s: %s", what, sqlite3_errmsg(db));
}

static int sq_open(void **handle, const char *path)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        int r = cad_fail(CAD_EIO, "cannot open the database %s: %s", path,
                         db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return r;
    }
    sqlite3_busy_timeout(db, 10000);
    sqlite3_extended_result_codes(db, 1);
    const char *pragmas = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                          "PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;";
    if (sqlite3_exec(db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
        int r = sq_fail(db, "cannot configure the database");
        sqlite3_close(db);
        return r;
    }
    struct sq_conn *c = calloc(1, sizeof *c);
    if (!c) {
        sqlite3_close(db);
        return cad_fail(CAD_ENOMEM, "out of memory");
    }
    c->db = db;
    *handle = c;
    return CAD_OK;
}

static void sq_close(void *h)
{
    struct sq_conn *c = h;
    if (!c)
        return;
    for (size_t i = 0; i < STMT_CACHE; i++) {
        sqlite3_finalize(c->cache[i].stmt);
        free(c->cache[i].sql);
    }
    sqlite3_close_v2(c->db);
    free(c);
}

/* The cached statement for `sql` (prepared on first use), or NULL with *fresh set to a statement
 * the caller finalizes when the cached one is busy. */
static struct cached_stmt *stmt_take(struct sq_conn *c, const char *sql, sqlite3_stmt **fresh)
{
    *fresh = NULL;
    uint64_t h = sql_hash(sql);
    struct cached_stmt *victim = NULL;
    bool in_use = false;
    for (size_t i = 0; i < STMT_CACHE; i++) {
        struct cached_stmt *e = &c->cache[i];
        if (e->sql && e->hash == h && strcmp(e->sql, sql) == 0) {
            if (!e->busy) {
                e->busy = true;
                e->used = ++c->uses;
                return e;
            }
            in_use = true;
        }
        if (!e->busy && (!victim || !e->sql || (victim->sql && e->used < victim->used)))
            victim = e;
    }
    sqlite3_stmt *stmt = NULL;
    unsigned flags = in_use || !victim ? 0 : SQLITE_PREPARE_PERSISTENT;
    if (sqlite3_prepare_v3(c->db, sql, -1, flags, &stmt, NULL) != SQLITE_OK) {
        sqlite3_finalize(stmt);
        return NULL;
    }
    char *copy = in_use || !victim ? NULL : strdup(sql);
    if (!copy) { /* the cached one is in use, every entry is, or no memory: one of its own */
        *fresh = stmt;
        return NULL;
    }
    sqlite3_finalize(victim->stmt);
    free(victim->sql);
    *victim =
        (struct cached_stmt){.sql = copy, .stmt = stmt, .hash = h, .used = ++c->uses, .busy = true};
    return victim;
}

static void stmt_give_back(struct cached_stmt *e)
{
    sqlite3_reset(e->stmt);
    sqlite3_clear_bindings(e->stmt); /* TEXT values are bound SQLITE_STATIC: drop the pointers */
    e->busy = false;
}

static int bind_all(sqlite3 *db, sqlite3_stmt *stmt, const struct store_val *params, size_t n)
{
    int count = sqlite3_bind_parameter_count(stmt);
    for (int i = 1; i <= count; i++) {
        const char *name = sqlite3_bind_parameter_name(stmt, i);
        long num = name && name[0] == '$' ? strtol(name + 1, NULL, 10) : 0;
        if (num < 1 || (size_t)num > n)
            return cad_fail(CAD_EINVAL, "SQL parameter %s has no value (%zu given)",
                            name ? name : "?", n);
        const struct store_val *v = &params[num - 1];
        int rc = SQLITE_OK;
        switch (v->type) {
        case STORE_NULL:
            rc = sqlite3_bind_null(stmt, i);
            break;
        case STORE_INT:
            rc = sqlite3_bind_int64(stmt, i, v->i);
            break;
        case STORE_TEXT:
            rc = sqlite3_bind_text(stmt, i, v->s, -1, SQLITE_STATIC);
            break;
        }
        if (rc != SQLITE_OK)
            return sq_fail(db, "cannot bind a parameter");
    }
    return CAD_OK;
}

static int sq_query(void *h, const char *sql, const struct store_val *params, size_t n,
                    store_row_fn fn, void *ctx)
{
    struct sq_conn *c = h;
    sqlite3 *db = c->db;
    sqlite3_stmt *stmt = NULL;
    struct cached_stmt *cached = stmt_take(c, sql, &stmt);
    if (cached)
        stmt = cached->stmt;
    else if (!stmt)
        return sq_fail(db, "cannot prepare a statement");
    int rc = bind_all(db, stmt, params, n);
    struct store_row row = {&store_backend_sqlite, stmt};
    while (rc == CAD_OK) {
        int step = sqlite3_step(stmt);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = sq_fail(db, "statement failed");
            break;
        }
        if (fn && (rc = fn(ctx, &row)) != 0)
            break;
    }
    if (cached)
        stmt_give_back(cached);
    else
        sqlite3_finalize(stmt);
    return rc;
}

static int sq_exec(void *h, const char *sql, const struct store_val *params, size_t n)
{
    return sq_query(h, sql, params, n, NULL, NULL);
}

static int64_t sq_changes(void *h)
{
    return sqlite3_changes64(((struct sq_conn *)h)->db);
}

static int sq_script(void *h, const char *script)
{
    char *msg = NULL;
    if (sqlite3_exec(((struct sq_conn *)h)->db, script, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = cad_fail(CAD_EIO, "%s", msg ? msg : "script failed");
        sqlite3_free(msg);
        return rc;
    }
    return CAD_OK;
}

static int sq_begin(void *h)
{
    return sq_script(h, "BEGIN IMMEDIATE");
}

static int sq_begin_work(void *h)
{
    return sq_script(h, "BEGIN");
}

static int sq_commit(void *h)
{
    return sq_script(h, "COMMIT");
}

static int sq_rollback(void *h)
{
    return sq_script(h, "ROLLBACK");
}

static int sq_row_columns(const void *row)
{
    return sqlite3_column_count((sqlite3_stmt *)row);
}

static bool sq_row_is_null(const void *row, int col)
{
    return sqlite3_column_type((sqlite3_stmt *)row, col) == SQLITE_NULL;
}

static int64_t sq_row_int(const void *row, int col)
{
    return sqlite3_column_int64((sqlite3_stmt *)row, col);
}

static const char *sq_row_text(const void *row, int col)
{
    const unsigned char *t = sqlite3_column_text((sqlite3_stmt *)row, col);
    return t ? (const char *)t : "";
}

const struct store_backend store_backend_sqlite = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .exec = sq_exec,
    .query = sq_query,
    .changes = sq_changes,
    .begin = sq_begin,
    .begin_work = sq_begin_work,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .exec_script = sq_script,
    .row_columns = sq_row_columns,
    .row_is_null = sq_row_is_null,
    .row_int = sq_row_int,
    .row_text = sq_row_text,
    .migrations = store_migrations_sqlite,
};
