/*
 * The outbox: queueing messages once per logical message, and delivering what is due.
 *
 * Queueing is an INSERT ... ON CONFLICT (dedupe_key) DO NOTHING inside a write transaction, so a
 * caller that runs twice (or two instances racing) leaves one row. Ids are MAX(id) + 1 taken in
 * that transaction, portable to PostgreSQL (where a racing insert fails on the primary key and
 * the caller retries) and readable in file names and the CLI.
 *
 * Delivery is claim -> send -> record. The claim is a conditional UPDATE (queued and due, or
 * 'sending' past the lease) that only one sender can win, committed together with the audit
 * intent before the message leaves; the outcome and the new status are committed together after.
 * See mail.h for what a crash between the two means for each transport.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "mail/mail.h"
#include "mail/mail_int.h"

static const char *const kind_names[MAIL_KIND_COUNT] = {"key_request", "key_revoked",
                                                        "onboarding_link"};

const char *mail_kind_name(enum mail_kind k)
{
    return (unsigned)k < MAIL_KIND_COUNT ? kind_names[k] : "unknown";
}

int mail_kind_parse(const char *s, enum mail_kind *out)
{
    for (int i = 0; i < MAIL_KIND_COUNT; i++) {
        if (s && strcmp(s, kind_names[i]) == 0) {
            *out = (enum mail_kind)i;
            return CAD_OK;
        }
    }
    return cad_fail(CAD_EINVAL,
                    "unknown email kind \"%s\" (key_request, key_revoked or onboarding_link)",
                    s ? s : "");
}

/* ---- queueing ----------------------------------------------------------------------------- */

static int int_row(void *ctx, const store_row *row)
{
    *(int64_t *)ctx = store_row_is_null(row, 0) ? 0 : store_row_int(row, 0);
    return 0;
}

static int found_row(void *ctx, const store_row *row)
{
    int64_t *id = ctx;
    *id = store_row_int(row, 0);
    return 0;
}

int mail_queue(store *st, const char *tenant_id, enum mail_kind kind, const char *dedupe_key,
               const char *to, const char *subject, const char *body, int64_t *out_id,
               bool *out_new)
{
    *out_id = 0;
    if (out_new)
        *out_new = false;
    int rc;
    if (!tenant_id || !*tenant_id)
        return cad_fail(CAD_EINVAL, "an email needs the tenant it is about");
    if ((unsigned)kind >= MAIL_KIND_COUNT)
        return cad_fail(CAD_EINVAL, "unknown email kind %d", (int)kind);
    if ((rc = mail_check_header_value("dedupe key", dedupe_key, MAIL_DEDUPE_MAX)) ||
        (rc = mail_check_header_value("recipient", to, MAIL_ADDR_MAX)) ||
        (rc = mail_check_header_value("subject", subject, MAIL_SUBJECT_MAX)) ||
        (rc = mail_check_body(body)))
        return rc;
    if (!mail_addr_valid(to))
        return cad_fail(CAD_EINVAL, "the recipient \"%s\" is not a plain email address", to);

    if ((rc = store_begin(st)))
        return rc;
    int64_t existing = 0, max_id = 0, tenant_found = 0, now = time_now_ms();
    rc = store_query(st, "SELECT id FROM outbox WHERE dedupe_key = $1",
                     SV_ARGS(SV_TEXT(dedupe_key)), found_row, &existing);
    if (!rc && existing) {
        *out_id = existing;
        return store_commit(st);
    }
    if (!rc)
        rc = store_query(st, "SELECT 1 FROM tenants WHERE id = $1", SV_ARGS(SV_TEXT(tenant_id)),
                         found_row, &tenant_found);
    if (!rc && !tenant_found)
        rc = cad_fail(CAD_ENOTFOUND, "no tenant %s to send an email about", tenant_id);
    if (!rc)
        rc = store_query(st, "SELECT MAX(id) FROM outbox", SV_NONE, int_row, &max_id);
    if (!rc)
        rc = store_exec(st,
                        "INSERT INTO outbox (id, tenant_id, kind, to_addr, subject, body, "
                        "dedupe_key, status, attempts, next_attempt_ms, created_ms) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', 0, $8, $8) "
                        "ON CONFLICT (dedupe_key) DO NOTHING",
                        SV_ARGS(SV_INT(max_id + 1), SV_TEXT(tenant_id),
                                SV_TEXT(mail_kind_name(kind)), SV_TEXT(to), SV_TEXT(subject),
                                SV_TEXT(body), SV_TEXT(dedupe_key), SV_INT(now)));
    if (rc) {
        store_rollback(st);
        return rc;
    }
    bool inserted = store_changes(st) == 1;
    if (!inserted && (rc = store_query(st, "SELECT id FROM outbox WHERE dedupe_key = $1",
                                       SV_ARGS(SV_TEXT(dedupe_key)), found_row, &existing))) {
        store_rollback(st);
        return rc;
    }
    if ((rc = store_commit(st)))
        return rc;
    *out_id = inserted ? max_id + 1 : existing;
    if (out_new)
        *out_new = inserted;
    if (inserted)
        cad_log(LOG_INFO, "mail.queued", "outbox=%" PRId64 " tenant=%s kind=%s", *out_id, tenant_id,
                mail_kind_name(kind));
    return CAD_OK;
}

/* ---- configuration ------------------------------------------------------------------------ */

void mail_config_defaults(struct mail_config *out, const char *data_dir)
{
    memset(out, 0, sizeof *out);
    snprintf(out->from, sizeof out->from, "%s", MAIL_FROM_DEFAULT);
    snprintf(out->outbox_dir, sizeof out->outbox_dir, "%s/outbox", data_dir ? data_dir : ".");
    out->max_attempts = 8;
    out->backoff_base_ms = 60LL * 1000;
    out->backoff_max_ms = 6LL * 3600 * 1000;
    out->sending_lease_ms = 10LL * 60 * 1000;
    out->timeout_s = 60;
}

static int copy_env(const char *name, char *dst, size_t size)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return CAD_OK;
    if (strlen(v) >= size)
        return cad_fail(CAD_EINVAL, "$%s is longer than %zu bytes", name, size - 1);
    snprintf(dst, size, "%s", v);
    return CAD_OK;
}

int mail_config_from_env(struct mail_config *out, const char *data_dir)
{
    mail_config_defaults(out, data_dir);
    int rc;
    if ((rc = copy_env("CADENCE_SMTP_URL", out->smtp_url, sizeof out->smtp_url)) ||
        (rc = copy_env("CADENCE_SMTP_USER", out->smtp_user, sizeof out->smtp_user)) ||
        (rc = copy_env("CADENCE_MAIL_FROM", out->from, sizeof out->from)))
        return rc;
    if (out->smtp_url[0] && (rc = mail_smtp_url_check(out->smtp_url, NULL)))
        return rc;
    char addr[MAIL_ADDR_MAX + 1], name[512];
    if ((rc = mail_parse_from(out->from, addr, sizeof addr, name, sizeof name)))
        return rc;
    const char *pw_file = getenv("CADENCE_SMTP_PASSWORD_FILE");
    if (pw_file && *pw_file) {
        if (!out->smtp_user[0])
            return cad_fail(CAD_EINVAL,
                            "CADENCE_SMTP_PASSWORD_FILE is set but CADENCE_SMTP_USER is not");
        FILE *f = fopen(pw_file, "rb");
        if (!f)
            return cad_fail(CAD_EIO, "cannot open the SMTP password file %s", pw_file);
        rc = secret_read_fd(&out->smtp_password, fileno(f), SECRET_MAX);
        fclose(f);
        if (rc)
            return rc;
    }
    return CAD_OK;
}

void mail_config_free(struct mail_config *c)
{
    if (!c)
        return;
    secret_free(c->smtp_password);
    c->smtp_password = NULL;
}

int64_t mail_backoff_ms(const struct mail_config *cfg, int attempts)
{
    int64_t wait = cfg->backoff_base_ms;
    for (int i = 1; i < attempts && wait < cfg->backoff_max_ms; i++)
        wait *= 2;
    return wait < cfg->backoff_max_ms ? wait : cfg->backoff_max_ms;
}

/* ---- listing ------------------------------------------------------------------------------ */

#define INFO_COLUMNS                                                                               \
    "id, tenant_id, kind, to_addr, subject, dedupe_key, status, last_error, message_id, "          \
    "attempts, created_ms, next_attempt_ms, sent_ms"

struct list_ctx {
    mail_fn fn;
    void *ctx;
};

static int64_t opt_int(const store_row *row, int col)
{
    return store_row_is_null(row, col) ? 0 : store_row_int(row, col);
}

static int info_row(void *p, const store_row *row)
{
    struct list_ctx *lc = p;
    struct mail_info m = {
        .id = store_row_int(row, 0),
        .tenant_id = store_row_text(row, 1),
        .kind = store_row_text(row, 2),
        .to = store_row_text(row, 3),
        .subject = store_row_text(row, 4),
        .dedupe_key = store_row_text(row, 5),
        .status = store_row_text(row, 6),
        .last_error = store_row_text(row, 7),
        .message_id = store_row_text(row, 8),
        .attempts = (int)store_row_int(row, 9),
        .created_ms = opt_int(row, 10),
        .next_attempt_ms = opt_int(row, 11),
        .sent_ms = opt_int(row, 12),
    };
    return lc->fn(lc->ctx, &m);
}

int mail_list(store *st, const struct mail_filter *f, mail_fn fn, void *ctx)
{
    struct mail_filter none = {0};
    if (!f)
        f = &none;
    struct list_ctx lc = {fn, ctx};
    return store_query(st,
                       "SELECT " INFO_COLUMNS " FROM outbox WHERE ($1 IS NULL OR tenant_id = $1) "
                       "AND ($2 IS NULL OR status = $2) AND ($3 = 0 OR id = $3) ORDER BY id",
                       SV_ARGS(SV_TEXT(f->tenant_id), SV_TEXT(f->status), SV_INT(f->id)), info_row,
                       &lc);
}

/* ---- delivery ----------------------------------------------------------------------------- */

struct due {
    int64_t id;
    bool interrupted; /* found in 'sending' past the lease */
    int attempts;
};

struct due_list {
    struct due *items;
    size_t n, cap;
    int rc;
};

static int due_row(void *p, const store_row *row)
{
    struct due_list *dl = p;
    if (dl->n == dl->cap) {
        size_t cap = dl->cap ? dl->cap * 2 : 16;
        struct due *items = realloc(dl->items, cap * sizeof *items);
        if (!items) {
            dl->rc = cad_fail(CAD_ENOMEM, "out of memory");
            return 1;
        }
        dl->items = items;
        dl->cap = cap;
    }
    dl->items[dl->n++] = (struct due){.id = store_row_int(row, 0),
                                      .interrupted = strcmp(store_row_text(row, 1), "sending") == 0,
                                      .attempts = (int)store_row_int(row, 2)};
    return 0;
}

/* One claimed row, copied out of the store. The body is wiped when freed. */
struct outbox_row {
    char *tenant_id, *kind, *to, *subject, *body, *message_id;
    int attempts;
};

static int copy_row(void *p, const store_row *row)
{
    struct outbox_row *r = p;
    r->tenant_id = strdup(store_row_text(row, 0));
    r->kind = strdup(store_row_text(row, 1));
    r->to = strdup(store_row_text(row, 2));
    r->subject = strdup(store_row_text(row, 3));
    r->body = strdup(store_row_text(row, 4));
    r->message_id = strdup(store_row_text(row, 5));
    r->attempts = (int)store_row_int(row, 6);
    return 0;
}

static void free_row(struct outbox_row *r)
{
    free(r->tenant_id);
    free(r->kind);
    free(r->to);
    free(r->subject);
    if (r->body) {
        OPENSSL_cleanse(r->body, strlen(r->body));
        free(r->body);
    }
    free(r->message_id);
    memset(r, 0, sizeof *r);
}

static int new_message_id(const char *from_addr, int64_t id, char *out, size_t size)
{
    unsigned char rnd[12];
    char hex[25];
    int rc = random_bytes(rnd, sizeof rnd);
    if (rc)
        return rc;
    hex_encode(rnd, sizeof rnd, hex);
    snprintf(out, size, "<cadence.%" PRId64 ".%s@%s>", id, hex, strchr(from_addr, '@') + 1);
    return CAD_OK;
}

struct tenant_kind {
    char tenant[256], kind[32];
};

static int tenant_kind_row(void *p, const store_row *row)
{
    struct tenant_kind *tk = p;
    snprintf(tk->tenant, sizeof tk->tenant, "%s", store_row_text(row, 0));
    snprintf(tk->kind, sizeof tk->kind, "%s", store_row_text(row, 1));
    return 0;
}

/* Records an interrupted message that used up its attempts as failed, without sending it. */
static int give_up_interrupted(store *st, const struct due *d, int64_t now, int64_t stale_before,
                               struct mail_deliver_result *res)
{
    char err[200], detail[300];
    snprintf(err, sizeof err,
             "interrupted during %d attempts (a crash while sending); not sent again", d->attempts);
    int rc = store_begin(st);
    if (rc)
        return rc;
    rc = store_exec(st,
                    "UPDATE outbox SET status = 'failed', last_error = $2, next_attempt_ms = $3 "
                    "WHERE id = $1 AND status = 'sending' AND sending_ms <= $4",
                    SV_ARGS(SV_INT(d->id), SV_TEXT(err), SV_INT(now), SV_INT(stale_before)));
    if (!rc && store_changes(st) == 1) {
        struct tenant_kind tk = {"", ""};
        rc = store_query(st, "SELECT tenant_id, kind FROM outbox WHERE id = $1",
                         SV_ARGS(SV_INT(d->id)), tenant_kind_row, &tk);
        const char *tenant = tk.tenant, *kind = tk.kind;
        snprintf(detail, sizeof detail, "kind=%s outbox=%" PRId64 " failed: %s", kind, d->id, err);
        struct audit_entry e = {.tenant_id = tenant[0] ? tenant : NULL,
                                .actor = AUDIT_ACTOR_SYSTEM,
                                .action = "mail.send",
                                .duration_ms = -1,
                                .detail = detail};
        if (!rc)
            rc = audit_append(st, &e, NULL);
        if (!rc)
            res->failed++;
    }
    if (rc) {
        store_rollback(st);
        return rc;
    }
    return store_commit(st);
}

/* Fails a claimed row whose stored values mail_format_message() refused (cad_errmsg() says
 * why), with its audit record, in the caller's transaction. */
static int fail_unbuildable(store *st, int64_t id, const char *tenant_id, const char *kind,
                            int64_t now)
{
    char err[512], detail[700];
    snprintf(err, sizeof err, "cannot build the message: %s", cad_errmsg());
    snprintf(detail, sizeof detail, "kind=%s outbox=%" PRId64 " failed: %s", kind, id, err);
    int rc =
        store_exec(st,
                   "UPDATE outbox SET status = 'failed', last_error = $2, next_attempt_ms = $3 "
                   "WHERE id = $1",
                   SV_ARGS(SV_INT(id), SV_TEXT(err), SV_INT(now)));
    struct audit_entry e = {.tenant_id = tenant_id,
                            .actor = AUDIT_ACTOR_SYSTEM,
                            .action = "mail.send",
                            .duration_ms = -1,
                            .detail = detail};
    if (!rc)
        rc = audit_append(st, &e, NULL);
    if (!rc)
        cad_log(LOG_ERROR, "mail.failed", "outbox=%" PRId64 " error=\"%s\"", id, err);
    return rc;
}

static int deliver_one(store *st, const struct mail_config *cfg, const char *from_addr,
                       const struct due *d, int64_t now, int64_t stale_before,
                       struct mail_deliver_result *res)
{
    char msgid[300];
    int rc = new_message_id(from_addr, d->id, msgid, sizeof msgid);
    if (rc)
        return rc;

    /* Claim and record the intent in one transaction: no attempt without its record. */
    if ((rc = store_begin(st)))
        return rc;
    rc = store_exec(st,
                    "UPDATE outbox SET status = 'sending', attempts = attempts + 1, "
                    "sending_ms = $2, message_id = COALESCE(message_id, $3) "
                    "WHERE id = $1 AND ((status = 'queued' AND next_attempt_ms <= $2) "
                    "OR (status = 'sending' AND sending_ms <= $4))",
                    SV_ARGS(SV_INT(d->id), SV_INT(now), SV_TEXT(msgid), SV_INT(stale_before)));
    if (rc || store_changes(st) != 1) {
        /* Another sender took it, or it is no longer due. */
        store_rollback(st);
        return rc;
    }
    struct outbox_row r = {0};
    rc = store_query(st,
                     "SELECT tenant_id, kind, to_addr, subject, body, message_id, attempts "
                     "FROM outbox WHERE id = $1",
                     SV_ARGS(SV_INT(d->id)), copy_row, &r);
    if (!rc && !(r.tenant_id && r.kind && r.to && r.subject && r.body && r.message_id))
        rc = cad_fail(CAD_ENOMEM, "out of memory");
    char *msg = NULL;
    size_t len = 0;
    /* The Date is the claim time; a resend carries its own. */
    if (!rc)
        rc = mail_format_message(cfg->from, r.to, r.subject, r.body, r.message_id, now, &msg, &len);
    if (rc == CAD_EINVAL) {
        /* A row that cannot become a message (changed behind mail_queue's back) fails on its own
         * instead of stopping the rest of the outbox. */
        rc = fail_unbuildable(st, d->id, r.tenant_id, r.kind, now);
        free_row(&r);
        if (rc) {
            store_rollback(st);
            return rc;
        }
        if ((rc = store_commit(st)))
            return rc;
        res->failed++;
        return CAD_OK;
    }
    bool smtp = cfg->smtp_url[0] != '\0';
    char endpoint[600], detail[AUDIT_DETAIL_MAX];
    if (smtp) {
        size_t n = strcspn(cfg->smtp_url, "?#");
        snprintf(endpoint, sizeof endpoint, "%.*s", (int)n, cfg->smtp_url);
    } else {
        snprintf(endpoint, sizeof endpoint, "outbox/%" PRId64 ".eml", d->id);
    }
    int64_t intent = 0;
    if (!rc) {
        char hash[2 * SHA256_LEN + 1];
        sha256_hex(msg, len, hash);
        snprintf(detail, sizeof detail, "kind=%s outbox=%" PRId64 " attempt=%d%s", r.kind, d->id,
                 r.attempts,
                 d->interrupted ? " resend after an interrupted attempt, same Message-ID" : "");
        struct audit_entry e = {.tenant_id = r.tenant_id,
                                .actor = AUDIT_ACTOR_SYSTEM,
                                .action = "mail.send",
                                .method = smtp ? "SMTP" : "EML",
                                .endpoint = endpoint,
                                .payload_sha256 = hash,
                                .duration_ms = -1,
                                .request_id = r.message_id,
                                .detail = detail};
        rc = audit_append(st, &e, &intent);
    }
    if (rc) {
        store_rollback(st);
        if (msg)
            OPENSSL_cleanse(msg, len);
        free(msg);
        free_row(&r);
        return rc;
    }
    if ((rc = store_commit(st))) {
        OPENSSL_cleanse(msg, len);
        free(msg);
        free_row(&r);
        return rc;
    }

    res->attempted++;
    if (d->interrupted)
        res->resent++;
    struct mail_send_outcome oc;
    int64_t t0 = time_mono_ms();
    int send_rc = smtp ? mail_smtp_send(cfg, from_addr, r.to, msg, len, &oc)
                       : mail_eml_write(cfg, d->id, msg, len, &oc);
    int64_t took = time_mono_ms() - t0;
    OPENSSL_cleanse(msg, len);
    free(msg);

    const char *status;
    int64_t next = now;
    bool retry = false;
    if (send_rc == CAD_OK) {
        status = "sent";
        snprintf(detail, sizeof detail, "kind=%s outbox=%" PRId64 " sent", r.kind, d->id);
    } else if (!oc.permanent && r.attempts < cfg->max_attempts) {
        status = "queued";
        retry = true;
        next = now + mail_backoff_ms(cfg, r.attempts);
        char when[32];
        time_format_ms(next, when, sizeof when);
        snprintf(detail, sizeof detail,
                 "kind=%s outbox=%" PRId64 " attempt %d failed, retry at %s: %s", r.kind, d->id,
                 r.attempts, when, oc.error);
    } else {
        status = "failed";
        snprintf(detail, sizeof detail, "kind=%s outbox=%" PRId64 " failed%s: %s", r.kind, d->id,
                 oc.permanent ? " (refused)" : " (no attempts left)", oc.error);
    }

    if ((rc = store_begin(st))) {
        free_row(&r);
        return rc;
    }
    rc = audit_call_end(st, intent, oc.status, took, r.message_id, detail);
    if (!rc)
        rc = store_exec(st,
                        "UPDATE outbox SET status = $2, next_attempt_ms = $3, last_error = $4, "
                        "sent_ms = $5 WHERE id = $1",
                        SV_ARGS(SV_INT(d->id), SV_TEXT(status), SV_INT(next),
                                send_rc == CAD_OK ? SV_NULL : SV_TEXT(oc.error),
                                send_rc == CAD_OK ? SV_INT(now) : SV_NULL));
    if (rc) {
        store_rollback(st);
        free_row(&r);
        return rc;
    }
    if ((rc = store_commit(st))) {
        free_row(&r);
        return rc;
    }
    if (send_rc == CAD_OK) {
        res->sent++;
        cad_log(LOG_INFO, "mail.sent", "outbox=%" PRId64 " tenant=%s kind=%s via=%s", d->id,
                r.tenant_id, r.kind, smtp ? "smtp" : "eml");
    } else if (retry) {
        res->retrying++;
        cad_log(LOG_WARN, "mail.retry", "outbox=%" PRId64 " attempt=%d error=\"%s\"", d->id,
                r.attempts, oc.error);
    } else {
        res->failed++;
        cad_log(LOG_ERROR, "mail.failed", "outbox=%" PRId64 " attempt=%d error=\"%s\"", d->id,
                r.attempts, oc.error);
    }
    free_row(&r);
    return CAD_OK;
}

int mail_deliver_pending(store *st, const struct mail_config *cfg, int64_t now_ms,
                         struct mail_deliver_result *out)
{
    memset(out, 0, sizeof *out);
    /* A bad configuration is reported before anything is claimed. */
    char from_addr[MAIL_ADDR_MAX + 1], from_name[512];
    int rc = mail_parse_from(cfg->from, from_addr, sizeof from_addr, from_name, sizeof from_name);
    if (rc)
        return rc;
    if (cfg->smtp_url[0] && (rc = mail_smtp_url_check(cfg->smtp_url, NULL)))
        return rc;
    if (cfg->max_attempts < 1 || cfg->backoff_base_ms < 1 ||
        cfg->backoff_max_ms < cfg->backoff_base_ms || cfg->sending_lease_ms < 1 ||
        cfg->timeout_s < 1)
        return cad_fail(CAD_EINVAL, "the mail configuration has a zero or negative limit");

    int64_t stale_before = now_ms - cfg->sending_lease_ms;
    struct due_list dl = {0};
    rc = store_query(st,
                     "SELECT id, status, attempts FROM outbox "
                     "WHERE (status = 'queued' AND next_attempt_ms <= $1) "
                     "OR (status = 'sending' AND sending_ms <= $2) ORDER BY next_attempt_ms, id",
                     SV_ARGS(SV_INT(now_ms), SV_INT(stale_before)), due_row, &dl);
    if (!rc)
        rc = dl.rc;
    for (size_t i = 0; !rc && i < dl.n; i++) {
        const struct due *d = &dl.items[i];
        if (d->interrupted && d->attempts >= cfg->max_attempts)
            rc = give_up_interrupted(st, d, now_ms, stale_before, out);
        else
            rc = deliver_one(st, cfg, from_addr, d, now_ms, stale_before, out);
    }
    free(dl.items);
    return rc;
}
