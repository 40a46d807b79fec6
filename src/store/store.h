/*
 * The store: Cadence's one door to its database.
 *
 * Callers write portable SQL with numbered placeholders ($1, $2, ...) and bind typed values; a
 * backend behind a table of operations (struct store_backend, after curl's TLS backends) runs it.
 * SQLite is the embedded default; the interface is shaped so a PostgreSQL backend can sit beside
 * it without touching callers: no SQLite-only syntax in callers, no rowid, no implicit typing.
 *
 * Schema migrations are numbered, embedded in the binary per backend, applied on open and recorded
 * in schema_migrations. A database whose schema is newer than this binary is refused.
 *
 * A store handle is not shared between threads; open one per thread.
 */
#ifndef CADENCE_STORE_STORE_H
#define CADENCE_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store;
typedef struct store_row store_row;

enum store_type { STORE_NULL, STORE_INT, STORE_TEXT };

struct store_val {
    enum store_type type;
    int64_t i;
    const char *s;
};

#define SV_NULL    ((struct store_val){.type = STORE_NULL})
#define SV_INT(x)  ((struct store_val){.type = STORE_INT, .i = (x)})
#define SV_TEXT(x) store_text(x)
#define SV_ARGS(...)                                                                               \
    ((const struct store_val[]){__VA_ARGS__}),                                                     \
        (sizeof((struct store_val[]){__VA_ARGS__}) / sizeof(struct store_val))
#define SV_NONE NULL, 0

/* A text value; NULL binds SQL NULL. A function, not a macro, so char arrays pass cleanly. */
static inline struct store_val store_text(const char *s)
{
    struct store_val v = {.type = s ? STORE_TEXT : STORE_NULL, .s = s};
    return v;
}

/* Called once per result row; return non-zero to stop (that value is returned by store_query). */
typedef int (*store_row_fn)(void *ctx, const store_row *row);

/* Opens the store named by `url`: "sqlite:PATH" or a plain path (SQLite). Applies migrations. */
int store_open(store **out, const char *url);
/* A second connection to the same database (its own transactions and TEMP tables). */
int store_open_again(store *st, store **out);
void store_close(store *st);

/* The schema version this binary knows and the one the database is at. */
int store_schema_latest(const store *st);
int store_schema_version(store *st, int *out);

int store_exec(store *st, const char *sql, const struct store_val *params, size_t n);
int store_query(store *st, const char *sql, const struct store_val *params, size_t n,
                store_row_fn fn, void *ctx);
/* Rows changed by the last store_exec(). */
int64_t store_changes(store *st);

/* A write transaction (taken eagerly, so two writers queue instead of deadlocking). Nested calls
 * are counted; only the outermost commit/rollback acts. */
int store_begin(store *st);
/* A transaction for the connection's own TEMP tables: it takes no lock on the database until it
 * writes a shared table (then it may fail busy rather than queue), so a long job can batch its
 * scratch writes without keeping other writers waiting. Committed like store_begin's. */
int store_begin_work(store *st);
int store_commit(store *st);
int store_rollback(store *st);

int store_row_columns(const store_row *row);
bool store_row_is_null(const store_row *row, int col);
int64_t store_row_int(const store_row *row, int col);
/* Valid until the callback returns; "" for NULL. */
const char *store_row_text(const store_row *row, int col);

/* A short name of the backend ("sqlite"). */
const char *store_backend_name(const store *st);

#endif
