/*
 * Internal to src/bundle: the state of one bundle_load() shared by its files.
 *
 *   load.c      walks the directory (names, symlinks, sizes), reads files, sorts, checks
 *               duplicates, resolves $refs, finds cycles, orders and hashes;
 *   kinds.c     one validator per JSON kind (what create_<kind> accepts and requires);
 *   catalog.c   catalog/items.json and catalog/items.csv (an RFC 4180 reader);
 *   refs.c      the $ref walker and which kinds each field may name;
 *   text.c      UTF-8, name and URL checks shared by the others.
 *
 * Assets are built in place in a growing array of struct bundle_asset whose const pointers the
 * loader owns (it frees them through loader_free_asset()).
 */
#ifndef CADENCE_BUNDLE_BUNDLE_INT_H
#define CADENCE_BUNDLE_BUNDLE_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "bundle/bundle.h"

struct loader {
    const char *dir;
    char *root; /* realpath of dir */
    struct bundle_error *errors;
    size_t max_errors;
    size_t n_errors;
    struct bundle_asset *assets;
    size_t n_assets, cap_assets;
    bool oom;
};

/* Records one problem (always counted; stored while there is room). */
void loader_error(struct loader *l, const char *file, const char *field, int line, int column,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Adds an asset; takes ownership of attrs (a reference is stolen even on failure). NULL when
 * out of memory (l->oom is then set). */
struct bundle_asset *loader_add(struct loader *l, enum asset_kind kind, const char *name,
                                const char *file, json_t *attrs);
/* Adds a $ref to an asset (copies name and pointer). */
void loader_add_ref(struct loader *l, struct bundle_asset *a, enum asset_kind kind,
                    const char *name, const char *pointer);
void loader_free_asset(struct bundle_asset *a);
void loader_free_refs(const struct bundle_ref *refs, size_t n);

/* Validates one JSON file of a kind folder (lists, segments, forms, campaigns, flows, tags,
 * coupons, webhooks, images/<name>.json) and adds its asset. `stem` is the file name without
 * extension. Takes ownership of root. */
void kinds_load_json(struct loader *l, enum asset_kind kind, const char *file, const char *stem,
                     json_t *root);

/* catalog/items.json (an array of item objects) and catalog/items.csv. */
void catalog_load_json(struct loader *l, const char *file, json_t *root);
void catalog_load_csv(struct loader *l, const char *file, const char *buf, size_t len);

/* Walks a's attrs for {"$ref": "kind:name"} objects, checks their syntax and that the field may
 * name that kind, and records them in a->refs. */
void refs_collect(struct loader *l, struct bundle_asset *a);
/* Parses "kind:name"; false (and *why set) when malformed or the kind is unknown. */
bool refs_parse(const char *s, enum asset_kind *kind, const char **name, const char **why);
/* True when v is an object holding a "$ref" member (well formed or not). */
bool refs_is_ref(const json_t *v);
/* The kind a well-formed $ref object names, or ASSET_KIND_COUNT. */
enum asset_kind refs_kind(const json_t *v);

/* Text checks. */
bool text_utf8_valid(const char *s, size_t n, size_t *bad_at);
/* NULL when s is acceptable as an asset name, else why not (a phrase). */
const char *text_name_problem(const char *s);
/* NULL when a directory entry name is safe to read, else why not. */
const char *text_file_name_problem(const char *s);
/* 1-based line and column of byte offset `at` in buf. */
void text_line_col(const char *buf, size_t at, int *line, int *column);
/* True for "http://host..." or "https://host..." (https only when https_only) with no spaces. */
bool text_url_ok(const char *s, bool https_only);

/* A JSON pointer: base + "/" + token with ~ and / escaped (truncated to fit 256 bytes). */
void json_pointer_append(char *out, size_t outsize, const char *base, const char *token);
void json_pointer_index(char *out, size_t outsize, const char *base, size_t index);

#endif
