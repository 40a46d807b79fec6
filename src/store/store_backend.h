/* The operations a store backend provides. Internal to src/store. */
#ifndef CADENCE_STORE_BACKEND_H
#define CADENCE_STORE_BACKEND_H

#include "store/store.h"

/* What a backend hands to store_query callbacks: itself and its own row object. */
struct store_row {
    const struct store_backend *be;
    const void *impl;
};

struct store_backend {
    const char *name;
    int (*open)(void **handle, const char *target);
    void (*close)(void *handle);
    int (*exec)(void *handle, const char *sql, const struct store_val *params, size_t n);
    int (*query)(void *handle, const char *sql, const struct store_val *params, size_t n,
                 store_row_fn fn, void *ctx);
    int64_t (*changes)(void *handle);
    int (*begin)(void *handle);
    int (*begin_work)(void *handle); /* deferred: no lock until a shared table is written */
    int (*commit)(void *handle);
    int (*rollback)(void *handle);
    /* Runs a multi-statement migration script as is. */
    int (*exec_script)(void *handle, const char *script);
    int (*row_columns)(const void *row);
    bool (*row_is_null)(const void *row, int col);
    int64_t (*row_int)(const void *row, int col);
    const char *(*row_text)(const void *row, int col);
    const struct cad_embedded *migrations; /* "0001_name.sql", ... in order */
};

extern const struct store_backend store_backend_sqlite;

#endif
