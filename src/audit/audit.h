/*
 * The audit log: append-only, hash-chained records of everything Cadence does to a tenant's
 * accounts and secrets.
 *
 * Each record's hash is SHA-256 over the previous record's hash and a canonical encoding of its
 * fields (each field length-prefixed, in a fixed order), so a changed, deleted or reordered record
 * breaks the chain at that point; the chain head (audit_head) is written in the same transaction,
 * so a truncated tail is detected too.
 *
 * A call to an outside service is recorded write-ahead: audit_call_begin() commits the intent
 * (method, endpoint, SHA-256 of the exact payload) before the request leaves, and
 * audit_call_end() appends the outcome (status, duration, remote request id) referring to it. A
 * crash in between leaves an intent without an outcome, which listings show as "no response
 * recorded": never an unrecorded call. Endpoints are paths only, never query strings.
 */
#ifndef CADENCE_AUDIT_AUDIT_H
#define CADENCE_AUDIT_AUDIT_H

#include <stdint.h>
#include <stdio.h>

#include "store/store.h"

/* Actors other than an operator's email. */
#define AUDIT_ACTOR_CLIENT "client"
#define AUDIT_ACTOR_SYSTEM "system"

struct audit_entry {
    const char *tenant_id; /* may be NULL (installation-wide events) */
    const char *actor;     /* operator email, "client" or "system" */
    const char *action;    /* "klaviyo.call", "key.set", "kms.rotate", ... */
    const char *method;    /* HTTP method, or NULL */
    const char *endpoint;  /* path only, or NULL */
    const char *payload_sha256; /* hex, or NULL */
    int status;                 /* response code; 0 = none */
    int64_t duration_ms;        /* -1 = none */
    const char *request_id;     /* remote request id, or NULL */
    int64_t ref_seq;            /* the intent an outcome refers to; 0 = none */
    const char *detail;         /* short free text, never a secret */
};

/* Appends one record in its own transaction (or the caller's) and returns its seq. */
int audit_append(store *st, const struct audit_entry *e, int64_t *out_seq);

/* Write-ahead pair for an outside call. `payload` may be NULL (n = 0): the hash of the empty
 * payload is recorded. The path in `endpoint` is cut at the first '?'. */
int audit_call_begin(store *st, const char *tenant_id, const char *actor, const char *action,
                     const char *method, const char *endpoint, const void *payload, size_t n,
                     int64_t *out_seq);
int audit_call_end(store *st, int64_t intent_seq, int status, int64_t duration_ms,
                   const char *request_id, const char *detail);

struct audit_verify_result {
    int ok;            /* 1 when the whole chain verifies */
    int64_t records;   /* records checked */
    int64_t first_bad; /* seq of the first record that was altered, removed or reordered */
    char reason[256];  /* what is wrong with it */
};
int audit_verify(store *st, struct audit_verify_result *out);

struct audit_filter {
    const char *tenant_id; /* NULL = all */
    const char *actor;
    const char *action;    /* exact, or prefix ending in '*' ("klaviyo.*") */
    int64_t since_ms;      /* 0 = no bound */
    int64_t until_ms;
    int status;            /* 0 = any */
    int64_t after_seq;     /* paging: records with seq > after_seq */
    int limit;             /* 0 = no limit */
};

/* A record as listed: a call's intent joined with its outcome (status -1 = no outcome). */
struct audit_record {
    int64_t seq, ts_ms;
    const char *tenant_id, *actor, *action, *method, *endpoint, *payload_sha256, *request_id,
        *detail, *hash;
    int status;
    int64_t duration_ms;
};
typedef int (*audit_record_fn)(void *ctx, const struct audit_record *r);

/* Outcome records are folded into their intents; everything else is listed as is. */
int audit_list(store *st, const struct audit_filter *f, audit_record_fn fn, void *ctx);
int audit_export_csv(store *st, const struct audit_filter *f, FILE *out);
int audit_print_json(const struct audit_record *r, FILE *out);

#endif
