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
 * The batch forms (audit_call_begin_many, audit_call_end_many) put many calls' records in one
 * transaction, so a client sending many requests at once pays one durable commit per batch, not
 * one per request; write-ahead still holds for each call. A
 * crash in between leaves an intent without an outcome, which listings show as "no response
 * recorded": never an unrecorded call. Endpoints are paths only, never query strings.
 *
 * The canonical encoding hashed for a record is "cadence-audit/1\n" followed by prev_hash, seq,
 * ts_ms, tenant_id, actor, action, method, endpoint, payload_sha256, status, duration_ms,
 * request_id, ref_seq and detail, each written as a type tag ('n' NULL, 'i' integer, 's' text),
 * the decimal byte length of its value, ':' and the value (integers in decimal). So NULL and ""
 * differ, and no shift of bytes between neighbouring fields keeps the hash.
 *
 * Every function returns CAD_OK or a negative CAD_E* code with a message (common/err.h). A failed
 * append rolls back the transaction it ran in, including a caller's outer one (store_rollback).
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
    const char *tenant_id;      /* may be NULL (installation-wide events) */
    const char *actor;          /* operator email, "client" or "system" */
    const char *action;         /* "klaviyo.call", "key.set", "kms.rotate", ... */
    const char *method;         /* HTTP method, or NULL */
    const char *endpoint;       /* path only, or NULL */
    const char *payload_sha256; /* hex, or NULL */
    int status;                 /* response code; 0 = none */
    int64_t duration_ms;        /* -1 = none */
    const char *request_id;     /* remote request id, or NULL */
    int64_t ref_seq;            /* the intent an outcome refers to; 0 = none */
    const char *detail;         /* short free text, never a secret */
};

/* Longest text field accepted (CAD_EINVAL beyond it); a longer detail is cut to AUDIT_DETAIL_MAX
 * bytes at a character boundary instead, so an outcome is never lost to a long error text. */
#define AUDIT_FIELD_MAX  2048
#define AUDIT_DETAIL_MAX 1024

/* Appends one record in its own transaction (or the caller's) and returns its seq (out_seq may
 * be NULL). actor and action are required; an endpoint with '?' or '#' and a payload_sha256 that
 * is not 64 lower-case hex digits are refused. Anything shaped like a Klaviyo private key in
 * detail is masked (log_redact) before it is stored. A record with a method, no status and no
 * ref_seq is a call's intent: listings show it as awaiting its outcome (status -1). */
int audit_append(store *st, const struct audit_entry *e, int64_t *out_seq);

/* Write-ahead pair for an outside call. `payload` may be NULL (n = 0): the hash of the empty
 * payload is recorded. The path in `endpoint` is cut at the first '?' (or '#').
 * audit_call_end() appends the outcome: action "<intent action>.result", same tenant and actor,
 * ref_seq = intent_seq. status is the response code, 0 when none came (a network failure, told
 * in detail); duration_ms is -1 when unknown. CAD_ENOTFOUND for no such record, CAD_EINVAL for a
 * record that is not a call's intent, CAD_EEXIST when the intent already has its outcome. */
int audit_call_begin(store *st, const char *tenant_id, const char *actor, const char *action,
                     const char *method, const char *endpoint, const void *payload, size_t n,
                     int64_t *out_seq);
int audit_call_end(store *st, int64_t intent_seq, int status, int64_t duration_ms,
                   const char *request_id, const char *detail);

/* Group commit: the intents of several calls in ONE transaction (one durable commit), in array
 * order. All or nothing: on any error nothing is recorded, every seq is 0, and none of these
 * calls may be made. On success each calls[i].seq is its intent's record. */
struct audit_call {
    const char *tenant_id, *actor, *action, *method, *endpoint; /* as audit_call_begin */
    const void *payload;
    size_t n;
    int64_t seq; /* out */
};
int audit_call_begin_many(store *st, struct audit_call *calls, size_t n);

/* The outcomes of several calls in one transaction, as audit_call_end each. When the batch
 * fails, each outcome is tried again in its own transaction, so one bad outcome (say, an intent
 * that already has one) does not cost the others theirs; outs[i].rc says how each went and the
 * first error is returned. */
struct audit_outcome {
    int64_t intent_seq;
    int status;
    int64_t duration_ms;
    const char *request_id, *detail;
    int rc; /* out */
};
int audit_call_end_many(store *st, struct audit_outcome *outs, size_t n);

struct audit_verify_result {
    int ok;            /* 1 when the whole chain verifies */
    int64_t records;   /* records checked */
    int64_t first_bad; /* seq of the first record that was altered, removed or reordered; for a
                          truncated tail the first missing seq; 0 when ok or the head is gone */
    char reason[256];  /* what is wrong with it ("" when ok) */
};
/* Walks the whole log in seq order and checks it against the chain head. Returns CAD_OK when the
 * chain verifies, CAD_ECORRUPT (message = reason) when it does not; *out is filled either way.
 * Other codes mean the check itself could not run. Records appended while it runs are fine. */
int audit_verify(store *st, struct audit_verify_result *out);

struct audit_filter {
    const char *tenant_id; /* NULL = all */
    const char *actor;
    const char *action; /* exact, or prefix ending in '*' ("klaviyo.*") */
    int64_t since_ms;   /* ts_ms >= since_ms; 0 = no bound */
    int64_t until_ms;   /* ts_ms < until_ms; 0 = no bound */
    int status;         /* 0 = any; -1 = calls with no outcome recorded */
    int64_t after_seq;  /* paging: records with seq > after_seq */
    int limit;          /* 0 = no limit */
};

/* A record as listed: a call's intent joined with its outcome (status -1 = no outcome recorded,
 * 0 = no response code). Text fields are NULL when absent; all are valid during the callback only.
 * duration_ms is -1 when none. A call's detail is its outcome's. */
struct audit_record {
    int64_t seq, ts_ms;
    const char *tenant_id, *actor, *action, *method, *endpoint, *payload_sha256, *request_id,
        *detail, *hash;
    int status;
    int64_t duration_ms;
};
typedef int (*audit_record_fn)(void *ctx, const struct audit_record *r);

/* Outcome records are folded into their intents; everything else is listed as is, in seq order.
 * f may be NULL (everything). A non-zero return from fn stops the listing and is returned. */
int audit_list(store *st, const struct audit_filter *f, audit_record_fn fn, void *ctx);
/* RFC 4180 CSV (CRLF, a header row). A text cell that starts with = + - @ TAB or CR gets a
 * leading ' so that a spreadsheet shows it instead of evaluating it. */
int audit_export_csv(store *st, const struct audit_filter *f, FILE *out);
/* One JSON object and a newline. Bytes that are not UTF-8 are shown as '?'. */
int audit_print_json(const struct audit_record *r, FILE *out);

#endif
