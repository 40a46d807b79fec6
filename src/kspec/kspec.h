/*
 * Klaviyo's API as data: one row per operation of Klaviyo's OpenAPI document
 * (third_party/klaviyo/openapi-stable.json), generated at build time by tools/gen-kspec.c from
 * the document's paths, `x-klaviyo-ratelimit` and `x-klaviyo-scopes`. Nothing here is typed by
 * hand, so the client, the rate limiter and the emulator can never disagree with the spec.
 * Bottom layer: shared by the cadence binary and the emulators.
 */
#ifndef CADENCE_KSPEC_KSPEC_H
#define CADENCE_KSPEC_KSPEC_H

#include <stddef.h>

/* The one place the API revision is pinned (the document's info.version). */
#define KLAVIYO_REVISION         "2026-07-15"
#define KLAVIYO_DEFAULT_BASE_URL "https://a.klaviyo.com"

struct kspec_op {
    const char *method;       /* "GET", "POST", "PATCH", "DELETE" */
    const char *path;         /* template, e.g. "/api/lists/{id}" */
    const char *operation_id; /* "get_list" */
    int burst_per_s;          /* x-klaviyo-ratelimit burst, per second */
    int steady_per_min;       /* steady, per minute */
    int daily;                /* daily cap, 0 when none */
    const char *scopes;       /* comma-joined x-klaviyo-scopes, "" when none */
};

extern const struct kspec_op kspec_ops[];
extern const size_t kspec_ops_count;

/* The operation whose path template matches the concrete `path` (query string ignored; a
 * "{param}" segment matches any one non-empty segment; literal segments win over parameters). */
const struct kspec_op *kspec_find(const char *method, const char *path);
const struct kspec_op *kspec_by_id(const char *operation_id);

#endif
