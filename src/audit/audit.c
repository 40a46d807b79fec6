/*
 * The audit log (see audit.h for the contract).
 *
 * Appends run inside store_begin()/store_commit(), so the next seq, the link to the previous
 * record and the new chain head are taken and written under one write lock, and an append nests
 * in a caller's transaction (a rolled-back operation takes its records with it, chain intact).
 *
 * Verification streams the log in seq order, so its memory does not grow with the log; it stops
 * at the first fault and only then looks around (which record the broken link points at) to say
 * whether records were removed, altered or reordered.
 *
 * Listing folds a call's outcome into its intent with one self-join on ref_seq (indexed), and
 * builds its WHERE clause from numbered placeholders only, so the same SQL serves PostgreSQL.
 */
#include "audit/audit.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#define HASH_HEX_LEN ((size_t)2 * SHA256_LEN)

/* An outcome's action is its intent's plus this. */
#define OUTCOME_SUFFIX ".result"

/* SV_TEXT for a value that is never NULL (a char array, where SV_TEXT's NULL test would not
 * compile cleanly). */
#define SV_STR(x) ((struct store_val){.type = STORE_TEXT, .s = (x)})

static const char genesis_hash[HASH_HEX_LEN + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* The columns of audit_log in hashing order, then the two hash columns. */
#define RECORD_COLUMNS                                                                             \
    "seq, ts_ms, tenant_id, actor, action, method, endpoint, payload_sha256, status, "             \
    "duration_ms, request_id, ref_seq, detail, prev_hash, hash"

struct opt_int {
    bool set;
    int64_t v;
};

/* One stored record, as hashed: NULL text pointers and unset integers are SQL NULLs. */
struct chain_record {
    int64_t seq, ts_ms;
    const char *tenant_id, *actor, *action, *method, *endpoint, *payload_sha256;
    struct opt_int status, duration_ms;
    const char *request_id;
    struct opt_int ref_seq;
    const char *detail;
    const char *prev_hash;
};

struct buf {
    char *data;
    size_t len, cap;
    bool oom;
};

static void buf_add(struct buf *b, const void *p, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->oom = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void enc_field(struct buf *b, char tag, const char *value, size_t n)
{
    char head[32];
    int k = snprintf(head, sizeof head, "%c%zu:", tag, n);
    buf_add(b, head, (size_t)k);
    buf_add(b, value, n);
}

static void enc_text(struct buf *b, const char *s)
{
    if (s)
        enc_field(b, 's', s, strlen(s));
    else
        enc_field(b, 'n', "", 0);
}

static void enc_int(struct buf *b, struct opt_int v)
{
    if (!v.set) {
        enc_field(b, 'n', "", 0);
        return;
    }
    char num[24];
    int k = snprintf(num, sizeof num, "%" PRId64, v.v);
    enc_field(b, 'i', num, (size_t)k);
}

static int record_hash(const struct chain_record *r, char out[HASH_HEX_LEN + 1])
{
    static const char domain[] = "cadence-audit/1\n";
    struct buf b = {0};
    buf_add(&b, domain, sizeof domain - 1);
    enc_text(&b, r->prev_hash);
    enc_int(&b, (struct opt_int){true, r->seq});
    enc_int(&b, (struct opt_int){true, r->ts_ms});
    enc_text(&b, r->tenant_id);
    enc_text(&b, r->actor);
    enc_text(&b, r->action);
    enc_text(&b, r->method);
    enc_text(&b, r->endpoint);
    enc_text(&b, r->payload_sha256);
    enc_int(&b, r->status);
    enc_int(&b, r->duration_ms);
    enc_text(&b, r->request_id);
    enc_int(&b, r->ref_seq);
    enc_text(&b, r->detail);
    if (b.oom) {
        free(b.data);
        return cad_fail(CAD_ENOMEM, "out of memory while hashing an audit record");
    }
    sha256_hex(b.data, b.len, out);
    free(b.data);
    return CAD_OK;
}

static const char *row_text_or_null(const store_row *row, int col)
{
    return store_row_is_null(row, col) ? NULL : store_row_text(row, col);
}

static struct opt_int row_opt_int(const store_row *row, int col)
{
    if (store_row_is_null(row, col))
        return (struct opt_int){false, 0};
    return (struct opt_int){true, store_row_int(row, col)};
}

/* Reads a row selected with RECORD_COLUMNS; pointers are valid during the row callback. */
static void record_from_row(const store_row *row, struct chain_record *r, const char **hash)
{
    r->seq = store_row_int(row, 0);
    r->ts_ms = store_row_int(row, 1);
    r->tenant_id = row_text_or_null(row, 2);
    r->actor = row_text_or_null(row, 3);
    r->action = row_text_or_null(row, 4);
    r->method = row_text_or_null(row, 5);
    r->endpoint = row_text_or_null(row, 6);
    r->payload_sha256 = row_text_or_null(row, 7);
    r->status = row_opt_int(row, 8);
    r->duration_ms = row_opt_int(row, 9);
    r->request_id = row_text_or_null(row, 10);
    r->ref_seq = row_opt_int(row, 11);
    r->detail = row_text_or_null(row, 12);
    r->prev_hash = store_row_text(row, 13);
    *hash = store_row_text(row, 14);
}

/* ---- appending ---------------------------------------------------------------------------- */

struct head {
    bool found;
    int64_t seq;
    char hash[HASH_HEX_LEN + 1];
    bool malformed;
};

static int head_row(void *ctx, const store_row *row)
{
    struct head *h = ctx;
    const char *hash = store_row_text(row, 1);
    h->found = true;
    h->seq = store_row_int(row, 0);
    h->malformed = strlen(hash) != HASH_HEX_LEN;
    snprintf(h->hash, sizeof h->hash, "%s", hash);
    return 0;
}

static int read_head(store *st, struct head *h)
{
    memset(h, 0, sizeof *h);
    return store_query(st, "SELECT seq, hash FROM audit_head WHERE id = 1", SV_NONE, head_row, h);
}

static int int_row(void *ctx, const store_row *row)
{
    *(int64_t *)ctx = store_row_is_null(row, 0) ? 0 : store_row_int(row, 0);
    return 0;
}

static bool is_hex_hash(const char *s)
{
    if (strlen(s) != HASH_HEX_LEN)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

static int check_text(const char *name, const char *s, bool required)
{
    if (!s) {
        if (required)
            return cad_fail(CAD_EINVAL, "an audit record needs %s", name);
        return CAD_OK;
    }
    if (required && !*s)
        return cad_fail(CAD_EINVAL, "an audit record needs %s; it was empty", name);
    size_t n = strlen(s);
    if (n > AUDIT_FIELD_MAX)
        return cad_fail(CAD_EINVAL, "the audit %s is %zu bytes long; at most %d are kept", name, n,
                        AUDIT_FIELD_MAX);
    return CAD_OK;
}

static int check_entry(const struct audit_entry *e)
{
    int rc;
    if (!e)
        return cad_fail(CAD_EINVAL, "no audit record given");
    if ((rc = check_text("tenant id", e->tenant_id, false)) ||
        (rc = check_text("actor", e->actor, true)) ||
        (rc = check_text("action", e->action, true)) ||
        (rc = check_text("method", e->method, false)) ||
        (rc = check_text("endpoint", e->endpoint, false)) ||
        (rc = check_text("request id", e->request_id, false)))
        return rc;
    if (e->endpoint && strpbrk(e->endpoint, "?#"))
        return cad_fail(CAD_EINVAL,
                        "the audit endpoint \"%.*s\" comes with a query string or fragment "
                        "(not repeated here: it may hold personal data); only the path is recorded",
                        (int)strcspn(e->endpoint, "?#"), e->endpoint);
    if (e->payload_sha256 && !is_hex_hash(e->payload_sha256))
        return cad_fail(CAD_EINVAL, "the payload hash of an audit record must be 64 lower-case "
                                    "hex digits (a SHA-256)");
    if (e->status < 0)
        return cad_fail(CAD_EINVAL, "audit status %d is negative; 0 means none", e->status);
    if (e->duration_ms < -1)
        return cad_fail(CAD_EINVAL, "audit duration %" PRId64 " ms is negative; -1 means none",
                        e->duration_ms);
    if (e->ref_seq < 0)
        return cad_fail(CAD_EINVAL, "audit ref_seq %" PRId64 " is negative; 0 means none",
                        e->ref_seq);
    return CAD_OK;
}

/* A private copy of detail, cut at a UTF-8 character boundary and with keys masked. */
static int clean_detail(const char *detail, char **out)
{
    *out = NULL;
    if (!detail)
        return CAD_OK;
    size_t n = strlen(detail);
    if (n > AUDIT_DETAIL_MAX) {
        n = AUDIT_DETAIL_MAX;
        while (n > 0 && ((unsigned char)detail[n] & 0xC0) == 0x80)
            n--;
    }
    char *d = malloc(n + 1);
    if (!d)
        return cad_fail(CAD_ENOMEM, "out of memory");
    memcpy(d, detail, n);
    d[n] = '\0';
    log_redact(d);
    *out = d;
    return CAD_OK;
}

static int append_locked(store *st, const struct audit_entry *e, const char *detail,
                         int64_t *out_seq)
{
    struct head head;
    int rc = read_head(st, &head);
    if (rc)
        return rc;
    if (!head.found) {
        int64_t max_seq = 0;
        if ((rc = store_query(st, "SELECT MAX(seq) FROM audit_log", SV_NONE, int_row, &max_seq)))
            return rc;
        if (max_seq != 0)
            return cad_fail(CAD_ECORRUPT,
                            "the audit log holds records up to %" PRId64 " but its chain head is "
                            "missing; run `cadence audit verify` and restore from a backup",
                            max_seq);
        head.seq = 0;
        memcpy(head.hash, genesis_hash, sizeof head.hash);
    } else if (head.malformed) {
        return cad_fail(CAD_ECORRUPT, "the audit chain head is damaged (its hash is not a "
                                      "SHA-256); run `cadence audit verify`");
    }

    struct chain_record r = {
        .seq = head.seq + 1,
        .ts_ms = time_now_ms(),
        .tenant_id = e->tenant_id,
        .actor = e->actor,
        .action = e->action,
        .method = e->method,
        .endpoint = e->endpoint,
        .payload_sha256 = e->payload_sha256,
        .status = {e->status != 0, e->status},
        .duration_ms = {e->duration_ms >= 0, e->duration_ms},
        .request_id = e->request_id,
        .ref_seq = {e->ref_seq != 0, e->ref_seq},
        .detail = detail,
        .prev_hash = head.hash,
    };
    if (r.ref_seq.set && r.ref_seq.v >= r.seq)
        return cad_fail(CAD_EINVAL,
                        "an audit record can only refer to an earlier record (%" PRId64
                        " is not before %" PRId64 ")",
                        r.ref_seq.v, r.seq);
    char hash[HASH_HEX_LEN + 1];
    if ((rc = record_hash(&r, hash)))
        return rc;

#define OPT_INT(o) ((o).set ? SV_INT((o).v) : SV_NULL)
    rc = store_exec(st,
                    "INSERT INTO audit_log (" RECORD_COLUMNS ") VALUES "
                    "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                    SV_ARGS(SV_INT(r.seq), SV_INT(r.ts_ms), SV_TEXT(r.tenant_id), SV_TEXT(r.actor),
                            SV_TEXT(r.action), SV_TEXT(r.method), SV_TEXT(r.endpoint),
                            SV_TEXT(r.payload_sha256), OPT_INT(r.status), OPT_INT(r.duration_ms),
                            SV_TEXT(r.request_id), OPT_INT(r.ref_seq), SV_TEXT(r.detail),
                            SV_TEXT(r.prev_hash), SV_STR(hash)));
#undef OPT_INT
    if (rc)
        return rc;
    rc = store_exec(st,
                    "INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, $2) "
                    "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                    SV_ARGS(SV_INT(r.seq), SV_STR(hash)));
    if (rc)
        return rc;
    if (out_seq)
        *out_seq = r.seq;
    return CAD_OK;
}

/* Ends the (possibly nested) transaction opened for work that returned rc: commits on success,
 * rolls back on failure keeping the work's message (a rollback may record its own). */
static int finish_transaction(store *st, int rc)
{
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", cad_errmsg());
        store_rollback(st);
        return cad_fail(rc, "%s", msg);
    }
    return store_commit(st);
}

int audit_append(store *st, const struct audit_entry *e, int64_t *out_seq)
{
    int rc = check_entry(e);
    if (rc)
        return rc;
    char *detail;
    if ((rc = clean_detail(e->detail, &detail)))
        return rc;
    if ((rc = store_begin(st))) {
        free(detail);
        return rc;
    }
    rc = finish_transaction(st, append_locked(st, e, detail, out_seq));
    free(detail);
    return rc;
}

/* The intent record of a call, checked; *path (the endpoint cut at '?' or '#') is the caller's to
 * free. */
static int call_intent(const struct audit_call *call, char *payload_hash, char **path,
                       struct audit_entry *e)
{
    *path = NULL;
    const char *method = call->method, *endpoint = call->endpoint, *action = call->action;
    if (!method || !*method)
        return cad_fail(CAD_EINVAL, "a recorded call needs its HTTP method");
    if (!endpoint || !*endpoint)
        return cad_fail(CAD_EINVAL, "a recorded call needs its endpoint");
    if (!call->payload && call->n > 0)
        return cad_fail(CAD_EINVAL, "a payload of %zu bytes was announced but none given", call->n);
    if (action && strlen(action) > AUDIT_FIELD_MAX - strlen(OUTCOME_SUFFIX))
        return cad_fail(CAD_EINVAL, "the action of a recorded call is too long (%zu bytes)",
                        strlen(action));
    size_t path_len = strcspn(endpoint, "?#");
    if (path_len > AUDIT_FIELD_MAX)
        return cad_fail(CAD_EINVAL, "the endpoint is %zu bytes long; at most %d are kept", path_len,
                        AUDIT_FIELD_MAX);
    if (!(*path = strndup(endpoint, path_len)))
        return cad_fail(CAD_ENOMEM, "out of memory");
    sha256_hex(call->payload ? call->payload : "", call->n, payload_hash);
    *e = (struct audit_entry){
        .tenant_id = call->tenant_id,
        .actor = call->actor,
        .action = action,
        .method = method,
        .endpoint = *path,
        .payload_sha256 = payload_hash,
        .status = 0,
        .duration_ms = -1,
        .ref_seq = 0,
    };
    return check_entry(e);
}

int audit_call_begin_many(store *st, struct audit_call *calls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        calls[i].seq = 0;
    if (n == 0)
        return CAD_OK;
    int rc = store_begin(st);
    if (rc)
        return rc;
    for (size_t i = 0; i < n && rc == CAD_OK; i++) {
        char payload_hash[HASH_HEX_LEN + 1], *path;
        struct audit_entry e;
        rc = call_intent(&calls[i], payload_hash, &path, &e);
        if (rc == CAD_OK)
            rc = append_locked(st, &e, NULL, &calls[i].seq);
        free(path);
    }
    rc = finish_transaction(st, rc);
    if (rc)
        for (size_t i = 0; i < n; i++)
            calls[i].seq = 0;
    return rc;
}

int audit_call_begin(store *st, const char *tenant_id, const char *actor, const char *action,
                     const char *method, const char *endpoint, const void *payload, size_t n,
                     int64_t *out_seq)
{
    if (!method || !*method)
        return cad_fail(CAD_EINVAL, "a recorded call needs its HTTP method");
    if (!endpoint || !*endpoint)
        return cad_fail(CAD_EINVAL, "a recorded call needs its endpoint");
    if (!payload && n > 0)
        return cad_fail(CAD_EINVAL, "a payload of %zu bytes was announced but none given", n);
    if (action && strlen(action) > AUDIT_FIELD_MAX - strlen(OUTCOME_SUFFIX))
        return cad_fail(CAD_EINVAL, "the action of a recorded call is too long (%zu bytes)",
                        strlen(action));
    size_t path_len = strcspn(endpoint, "?#");
    if (path_len > AUDIT_FIELD_MAX)
        return cad_fail(CAD_EINVAL, "the endpoint is %zu bytes long; at most %d are kept", path_len,
                        AUDIT_FIELD_MAX);
    char *path = malloc(path_len + 1);
    if (!path)
        return cad_fail(CAD_ENOMEM, "out of memory");
    memcpy(path, endpoint, path_len);
    path[path_len] = '\0';
    char payload_hash[HASH_HEX_LEN + 1];
    sha256_hex(payload ? payload : "", n, payload_hash);
    struct audit_entry e = {
        .tenant_id = tenant_id,
        .actor = actor,
        .action = action,
        .method = method,
        .endpoint = path,
        .payload_sha256 = payload_hash,
        .status = 0,
        .duration_ms = -1,
        .ref_seq = 0,
    };
    int rc = audit_append(st, &e, out_seq);
    free(path);
    return rc;
}

struct intent {
    bool found, is_intent;
    char *tenant_id, *actor, *action;
    int64_t outcome_seq;
};

static int intent_row(void *ctx, const store_row *row)
{
    struct intent *in = ctx;
    in->found = true;
    /* An intent is a call (method set) that carries no status and refers to nothing. */
    in->is_intent =
        !store_row_is_null(row, 3) && store_row_is_null(row, 4) && store_row_is_null(row, 5);
    in->tenant_id = store_row_is_null(row, 0) ? NULL : strdup(store_row_text(row, 0));
    in->actor = strdup(store_row_text(row, 1));
    size_t action_size = strlen(store_row_text(row, 2)) + sizeof OUTCOME_SUFFIX;
    in->action = malloc(action_size);
    if ((!store_row_is_null(row, 0) && !in->tenant_id) || !in->actor || !in->action)
        return cad_fail(CAD_ENOMEM, "out of memory");
    snprintf(in->action, action_size, "%s" OUTCOME_SUFFIX, store_row_text(row, 2));
    return 0;
}

static int end_locked(store *st, int64_t intent_seq, int status, int64_t duration_ms,
                      const char *request_id, const char *detail, struct intent *in)
{
    int rc = store_query(st,
                         "SELECT tenant_id, actor, action, method, status, ref_seq "
                         "FROM audit_log WHERE seq = $1",
                         SV_ARGS(SV_INT(intent_seq)), intent_row, in);
    if (rc)
        return rc;
    if (!in->found)
        return cad_fail(CAD_ENOTFOUND, "there is no audit record %" PRId64 " to end", intent_seq);
    if (!in->is_intent)
        return cad_fail(CAD_EINVAL,
                        "audit record %" PRId64 " is not the start of a call (audit_call_begin)",
                        intent_seq);
    if ((rc = store_query(st, "SELECT MIN(seq) FROM audit_log WHERE ref_seq = $1",
                          SV_ARGS(SV_INT(intent_seq)), int_row, &in->outcome_seq)))
        return rc;
    if (in->outcome_seq != 0)
        return cad_fail(CAD_EEXIST,
                        "the call recorded as %" PRId64 " already has its outcome (record %" PRId64
                        ")",
                        intent_seq, in->outcome_seq);
    struct audit_entry e = {
        .tenant_id = in->tenant_id,
        .actor = in->actor,
        .action = in->action,
        .status = status,
        .duration_ms = duration_ms,
        .request_id = request_id,
        .ref_seq = intent_seq,
        .detail = detail,
    };
    return audit_append(st, &e, NULL);
}

int audit_call_end_many(store *st, struct audit_outcome *outs, size_t n)
{
    if (n == 0)
        return CAD_OK;
    int rc = store_begin(st);
    if (rc)
        return rc;
    for (size_t i = 0; i < n && rc == CAD_OK; i++) {
        struct audit_outcome *o = &outs[i];
        if (o->intent_seq <= 0) {
            rc = cad_fail(CAD_EINVAL, "no call to end (seq %" PRId64 ")", o->intent_seq);
            break;
        }
        struct intent in = {0};
        rc =
            end_locked(st, o->intent_seq, o->status, o->duration_ms, o->request_id, o->detail, &in);
        free(in.tenant_id);
        free(in.actor);
        free(in.action);
    }
    rc = finish_transaction(st, rc);
    if (rc == CAD_OK) {
        for (size_t i = 0; i < n; i++)
            outs[i].rc = CAD_OK;
        return CAD_OK;
    }
    /* One bad outcome must not cost the others theirs: the batch was rolled back, so each goes
     * again in its own transaction. */
    int first = CAD_OK;
    for (size_t i = 0; i < n; i++) {
        outs[i].rc = audit_call_end(st, outs[i].intent_seq, outs[i].status, outs[i].duration_ms,
                                    outs[i].request_id, outs[i].detail);
        if (outs[i].rc && first == CAD_OK)
            first = outs[i].rc;
    }
    return first;
}

int audit_call_end(store *st, int64_t intent_seq, int status, int64_t duration_ms,
                   const char *request_id, const char *detail)
{
    if (intent_seq <= 0)
        return cad_fail(CAD_EINVAL, "no call to end (seq %" PRId64 ")", intent_seq);
    int rc = store_begin(st);
    if (rc)
        return rc;
    struct intent in = {0};
    rc = finish_transaction(
        st, end_locked(st, intent_seq, status, duration_ms, request_id, detail, &in));
    free(in.tenant_id);
    free(in.actor);
    free(in.action);
    return rc;
}

/* ---- verifying ---------------------------------------------------------------------------- */

struct verify_ctx {
    struct head head;
    int64_t records;
    int64_t last_seq;
    char last_hash[HASH_HEX_LEN + 1];
    int64_t bad_seq;
    bool broken_link; /* stopped at a record whose prev_hash is not its predecessor's hash */
    bool content_ok;  /* ... and whether its own hash matched its contents */
    char bad_prev[HASH_HEX_LEN + 1];
    char reason[256];
    int rc;
};

static int verify_row(void *ctx, const store_row *row)
{
    struct verify_ctx *v = ctx;
    struct chain_record r;
    const char *stored_hash;
    record_from_row(row, &r, &stored_hash);
    v->records++;

    if (r.seq != v->last_seq + 1) {
        v->bad_seq = v->last_seq + 1;
        if (r.seq == v->last_seq + 2)
            snprintf(v->reason, sizeof v->reason,
                     "record %" PRId64 " was removed: the log goes from record %" PRId64
                     " to %" PRId64,
                     v->bad_seq, v->last_seq, r.seq);
        else
            snprintf(v->reason, sizeof v->reason,
                     "records %" PRId64 " to %" PRId64 " were removed: the log goes from "
                     "record %" PRId64 " to %" PRId64,
                     v->bad_seq, r.seq - 1, v->last_seq, r.seq);
        return 1;
    }
    char hash[HASH_HEX_LEN + 1];
    if ((v->rc = record_hash(&r, hash)))
        return 1;
    bool content_ok = strcmp(hash, stored_hash) == 0;
    if (strcmp(r.prev_hash, v->last_hash) != 0) {
        v->bad_seq = r.seq;
        v->broken_link = true;
        v->content_ok = content_ok;
        snprintf(v->bad_prev, sizeof v->bad_prev, "%s", r.prev_hash);
        return 1;
    }
    if (!content_ok) {
        v->bad_seq = r.seq;
        snprintf(v->reason, sizeof v->reason,
                 "record %" PRId64 " was altered: its contents no longer match its hash", r.seq);
        return 1;
    }
    if (v->head.found && !v->head.malformed && r.seq == v->head.seq &&
        strcmp(stored_hash, v->head.hash) != 0) {
        v->bad_seq = r.seq;
        snprintf(v->reason, sizeof v->reason,
                 "record %" PRId64 " was replaced: it is not the record the chain head names",
                 r.seq);
        return 1;
    }
    v->last_seq = r.seq;
    memcpy(v->last_hash, stored_hash, sizeof v->last_hash);
    return 0;
}

/* Explains a broken link: does the record point at another record of the log (reordered), or at
 * nothing (its predecessor was rewritten, or records before it were removed and renumbered)? */
static int explain_link(store *st, struct verify_ctx *v)
{
    int64_t points_at = 0;
    int rc = store_query(st, "SELECT MIN(seq) FROM audit_log WHERE hash = $1",
                         SV_ARGS(SV_STR(v->bad_prev)), int_row, &points_at);
    if (rc)
        return rc;
    if (points_at != 0 && points_at != v->bad_seq)
        snprintf(v->reason, sizeof v->reason,
                 "records were reordered: record %" PRId64 " follows the record now at %" PRId64
                 ", not record %" PRId64,
                 v->bad_seq, points_at, v->bad_seq - 1);
    else if (!v->content_ok)
        snprintf(v->reason, sizeof v->reason,
                 "record %" PRId64 " was altered: its link to the previous record and its "
                 "contents no longer match its hash",
                 v->bad_seq);
    else if (v->bad_seq == 1)
        snprintf(v->reason, sizeof v->reason,
                 "record 1 does not start the chain: records before it were removed and the "
                 "rest renumbered, or it was rewritten");
    else
        snprintf(v->reason, sizeof v->reason,
                 "record %" PRId64 " does not follow record %" PRId64 ": that record was "
                 "rewritten, or records between them were removed and the rest renumbered",
                 v->bad_seq, v->bad_seq - 1);
    return CAD_OK;
}

int audit_verify(store *st, struct audit_verify_result *out)
{
    memset(out, 0, sizeof *out);
    struct verify_ctx *v = calloc(1, sizeof *v);
    if (!v)
        return cad_fail(CAD_ENOMEM, "out of memory");
    memcpy(v->last_hash, genesis_hash, sizeof v->last_hash);
    /* The head is read first: every record it names is already committed, and anything a
     * concurrent writer adds later lies beyond it and is checked as a plain continuation. */
    int rc = read_head(st, &v->head);
    if (rc == CAD_OK) {
        rc = store_query(st, "SELECT " RECORD_COLUMNS " FROM audit_log ORDER BY seq", SV_NONE,
                         verify_row, v);
        if (rc == 1)
            rc = v->rc;
    }
    if (rc == CAD_OK && v->broken_link)
        rc = explain_link(st, v);
    if (rc) {
        free(v);
        return rc;
    }
    if (v->bad_seq == 0) {
        if (v->head.found && v->head.malformed) {
            snprintf(v->reason, sizeof v->reason, "the chain head is damaged");
            v->bad_seq = v->head.seq;
        } else if (v->head.found && v->last_seq < v->head.seq) {
            v->bad_seq = v->last_seq + 1;
            snprintf(v->reason, sizeof v->reason,
                     "the log was truncated: it ends at record %" PRId64
                     " but its head says %" PRId64,
                     v->last_seq, v->head.seq);
        } else if (!v->head.found && v->records > 0) {
            snprintf(v->reason, sizeof v->reason,
                     "the chain head is missing, so a truncated tail cannot be ruled out");
        }
    }
    out->records = v->records;
    out->first_bad = v->bad_seq;
    snprintf(out->reason, sizeof out->reason, "%s", v->reason);
    out->ok = v->reason[0] == '\0';
    free(v);
    if (!out->ok)
        return cad_fail(CAD_ECORRUPT, "the audit log does not verify: %s", out->reason);
    return CAD_OK;
}

/* ---- listing ------------------------------------------------------------------------------ */

#define LIST_STATUS                                                                                \
    "(CASE WHEN o.seq IS NOT NULL THEN COALESCE(o.status, 0) "                                     \
    "WHEN i.method IS NOT NULL AND i.status IS NULL THEN -1 "                                      \
    "ELSE COALESCE(i.status, 0) END)"

struct list_ctx {
    audit_record_fn fn;
    void *ctx;
};

static int list_row(void *ctx, const store_row *row)
{
    struct list_ctx *l = ctx;
    struct audit_record r = {
        .seq = store_row_int(row, 0),
        .ts_ms = store_row_int(row, 1),
        .tenant_id = row_text_or_null(row, 2),
        .actor = row_text_or_null(row, 3),
        .action = row_text_or_null(row, 4),
        .method = row_text_or_null(row, 5),
        .endpoint = row_text_or_null(row, 6),
        .payload_sha256 = row_text_or_null(row, 7),
        .status = (int)store_row_int(row, 8),
        .duration_ms = store_row_is_null(row, 9) ? -1 : store_row_int(row, 9),
        .request_id = row_text_or_null(row, 10),
        .detail = row_text_or_null(row, 11),
        .hash = row_text_or_null(row, 12),
    };
    return l->fn(l->ctx, &r);
}

struct sql_builder {
    char sql[2048];
    struct store_val params[10];
    size_t n;
};

/* Adds a value to bind and returns its placeholder number. */
static size_t bind_param(struct sql_builder *b, struct store_val v)
{
    b->params[b->n] = v;
    return ++b->n;
}

static void sql_add(struct sql_builder *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sql_add(struct sql_builder *b, const char *fmt, ...)
{
    size_t len = strlen(b->sql);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->sql + len, sizeof b->sql - len, fmt, ap);
    va_end(ap);
}

int audit_list(store *st, const struct audit_filter *f, audit_record_fn fn, void *ctx)
{
    static const struct audit_filter all = {0};
    if (!f)
        f = &all;
    if (!fn)
        return cad_fail(CAD_EINVAL, "audit_list needs a function to call per record");
    if (f->limit < 0)
        return cad_fail(CAD_EINVAL, "a listing limit of %d is negative; 0 means no limit",
                        f->limit);
    if (f->status < -1)
        return cad_fail(CAD_EINVAL, "status %d is not a response code", f->status);
    if (f->since_ms && f->until_ms && f->until_ms <= f->since_ms)
        return cad_fail(CAD_EINVAL, "the time window ends before it starts");

    struct sql_builder b = {
        .sql = "SELECT i.seq, i.ts_ms, i.tenant_id, i.actor, i.action, i.method, i.endpoint, "
               "i.payload_sha256, " LIST_STATUS ", COALESCE(o.duration_ms, i.duration_ms), "
               "COALESCE(o.request_id, i.request_id), COALESCE(o.detail, i.detail), i.hash "
               "FROM audit_log i LEFT JOIN audit_log o ON o.seq = "
               "(SELECT MIN(r.seq) FROM audit_log r WHERE r.ref_seq = i.seq) "
               "WHERE i.ref_seq IS NULL",
    };
    char *prefix = NULL;
    if (f->tenant_id)
        sql_add(&b, " AND i.tenant_id = $%zu", bind_param(&b, SV_TEXT(f->tenant_id)));
    if (f->actor)
        sql_add(&b, " AND i.actor = $%zu", bind_param(&b, SV_TEXT(f->actor)));
    if (f->action) {
        size_t n = strlen(f->action);
        if (n > 0 && f->action[n - 1] == '*') {
            if (n > 1) {
                if (!(prefix = strndup(f->action, n - 1)))
                    return cad_fail(CAD_ENOMEM, "out of memory");
                size_t len_param = bind_param(&b, SV_INT((int64_t)(n - 1)));
                size_t prefix_param = bind_param(&b, SV_TEXT(prefix));
                sql_add(&b, " AND substr(i.action, 1, $%zu) = $%zu", len_param, prefix_param);
            }
        } else {
            sql_add(&b, " AND i.action = $%zu", bind_param(&b, SV_TEXT(f->action)));
        }
    }
    if (f->since_ms)
        sql_add(&b, " AND i.ts_ms >= $%zu", bind_param(&b, SV_INT(f->since_ms)));
    if (f->until_ms)
        sql_add(&b, " AND i.ts_ms < $%zu", bind_param(&b, SV_INT(f->until_ms)));
    if (f->status)
        sql_add(&b, " AND " LIST_STATUS " = $%zu", bind_param(&b, SV_INT(f->status)));
    if (f->after_seq)
        sql_add(&b, " AND i.seq > $%zu", bind_param(&b, SV_INT(f->after_seq)));
    sql_add(&b, " ORDER BY i.seq");
    if (f->limit)
        sql_add(&b, " LIMIT $%zu", bind_param(&b, SV_INT(f->limit)));
    struct list_ctx l = {fn, ctx};
    int rc = store_query(st, b.sql, b.params, b.n, list_row, &l);
    free(prefix);
    return rc;
}

/* ---- exporting ---------------------------------------------------------------------------- */

static void csv_text(FILE *out, const char *s)
{
    if (!s)
        return;
    bool formula = s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL;
    bool quote = strpbrk(s, ",\"\r\n") != NULL;
    if (quote)
        fputc('"', out);
    if (formula)
        fputc('\'', out);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            fputc('"', out);
        fputc(*p, out);
    }
    if (quote)
        fputc('"', out);
}

static int csv_row(void *ctx, const struct audit_record *r)
{
    FILE *out = ctx;
    char ts[32];
    time_format_ms(r->ts_ms, ts, sizeof ts);
    fprintf(out, "%" PRId64 ",%s,", r->seq, ts);
    const char *texts[] = {r->tenant_id, r->actor,    r->action,
                           r->method,    r->endpoint, r->payload_sha256};
    for (size_t i = 0; i < CAD_ARRAY_LEN(texts); i++) {
        csv_text(out, texts[i]);
        fputc(',', out);
    }
    fprintf(out, "%d,", r->status);
    if (r->duration_ms >= 0)
        fprintf(out, "%" PRId64, r->duration_ms);
    fputc(',', out);
    csv_text(out, r->request_id);
    fputc(',', out);
    csv_text(out, r->detail);
    fputc(',', out);
    csv_text(out, r->hash);
    fputs("\r\n", out);
    return ferror(out) ? cad_fail(CAD_EIO, "cannot write the audit export") : 0;
}

int audit_export_csv(store *st, const struct audit_filter *f, FILE *out)
{
    fputs("seq,time,tenant,actor,action,method,endpoint,payload_sha256,status,duration_ms,"
          "request_id,detail,hash\r\n",
          out);
    if (ferror(out))
        return cad_fail(CAD_EIO, "cannot write the audit export");
    int rc = audit_list(st, f, csv_row, out);
    if (rc == CAD_OK && fflush(out) != 0)
        rc = cad_fail(CAD_EIO, "cannot write the audit export");
    return rc;
}

/* A JSON string for s, or null; bytes that are not UTF-8 become '?'. */
static json_t *json_text(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (j)
        return j;
    char *copy = strdup(s);
    if (!copy)
        return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

int audit_print_json(const struct audit_record *r, FILE *out)
{
    char ts[32];
    time_format_ms(r->ts_ms, ts, sizeof ts);
    json_t *o = json_object();
    if (!o)
        return cad_fail(CAD_ENOMEM, "out of memory");
    struct {
        const char *key;
        json_t *value;
    } fields[] = {
        {"seq", json_integer(r->seq)},
        {"time", json_string(ts)},
        {"ts_ms", json_integer(r->ts_ms)},
        {"tenant_id", json_text(r->tenant_id)},
        {"actor", json_text(r->actor)},
        {"action", json_text(r->action)},
        {"method", json_text(r->method)},
        {"endpoint", json_text(r->endpoint)},
        {"payload_sha256", json_text(r->payload_sha256)},
        {"status", json_integer(r->status)},
        {"duration_ms", r->duration_ms >= 0 ? json_integer(r->duration_ms) : json_null()},
        {"request_id", json_text(r->request_id)},
        {"detail", json_text(r->detail)},
        {"hash", json_text(r->hash)},
    };
    int rc = CAD_OK;
    for (size_t i = 0; i < CAD_ARRAY_LEN(fields); i++)
        if (!fields[i].value || json_object_set_new(o, fields[i].key, fields[i].value) != 0)
            rc = CAD_ENOMEM;
    if (rc) {
        json_decref(o);
        return cad_fail(rc, "out of memory");
    }
    int w = json_dumpf(o, out, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (w != 0 || fputc('\n', out) == EOF)
        return cad_fail(CAD_EIO, "cannot write an audit record");
    return CAD_OK;
}
