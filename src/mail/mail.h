/*
 * Email to brands: an outbox in the store and a sender that delivers it.
 *
 * Callers queue a message (mail_queue) in the same transaction as the change that calls for it;
 * mail_deliver_pending() later delivers what is due, over SMTP with libcurl when an SMTP server is
 * configured, otherwise as an RFC 5322 .eml file per message in the data directory (the embedded
 * default). Every attempt is recorded in the audit log as a call (action "mail.send", actor
 * "system", method "SMTP" or "EML", request id = the Message-ID): the intent before the message
 * leaves, the outcome ("mail.send.result", SMTP reply code) after, with the message kind and
 * outbox id in both details and the SHA-256 of the exact message as the payload hash. Bodies are
 * never logged, listed or put into an error message: an onboarding link is a credential-like token
 * URL.
 *
 * Delivery and crashes. A message is claimed ('sending', attempts + 1, sending_ms) and its intent
 * recorded in one transaction before it is handed over; its Message-ID is generated at the first
 * claim and kept for every later attempt. A message found in 'sending' longer than the lease
 * (mail_config.sending_lease_ms) was interrupted by a crash:
 *  - .eml: the file is written atomically (temp file + rename) under its outbox id, so writing it
 *    again replaces it with the same message: exactly one file per message, always.
 *  - SMTP has no idempotency: a crash after the server accepted the message and before the
 *    outcome was recorded cannot be told apart from one before it was sent. Cadence guarantees
 *    at-least-once delivery with a stable identity: the message is sent again with the SAME
 *    Message-ID (receivers and mail clients collapse copies with one Message-ID), and that attempt
 *    is recorded as a resend. Outside that window (a crash between claim and outcome, which is the
 *    length of one SMTP transaction) no message is sent twice. A message interrupted
 *    max_attempts times is marked failed rather than resent forever.
 * Failed attempts are retried with exponential backoff (mail_backoff_ms) until max_attempts, then
 * the message is 'failed'. A row that no longer makes a valid message (edited in the database)
 * fails on its own without holding up the rest. A permanent SMTP refusal (5xx for the sender,
 * recipient or data) fails it at once; a refused login is retried, since it is a configuration
 * error the operator can fix.
 *
 * Headers are built here and nowhere else: CR, LF and other control characters in any header
 * value are refused (header injection), non-ASCII subjects and display names are RFC 2047
 * encoded-words, bodies that are not 7-bit ASCII with short lines go out as quoted-printable UTF-8.
 *
 * Every function returns CAD_OK or a negative CAD_E* code with a message (common/err.h).
 */
#ifndef CADENCE_MAIL_MAIL_H
#define CADENCE_MAIL_MAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/secret.h"
#include "store/store.h"

enum mail_kind { MAIL_KEY_REQUEST, MAIL_KEY_REVOKED, MAIL_ONBOARDING_LINK, MAIL_KIND_COUNT };

const char *mail_kind_name(enum mail_kind k); /* "key_request", "key_revoked", "onboarding_link" */
int mail_kind_parse(const char *s, enum mail_kind *out);

/* Limits checked by mail_queue(). */
#define MAIL_SUBJECT_MAX 300
#define MAIL_BODY_MAX    65536
#define MAIL_DEDUPE_MAX  200
#define MAIL_ADDR_MAX    254

/* A plain address (local@domain: printable ASCII, no spaces, brackets, quotes or commas). */
bool mail_addr_valid(const char *addr);

/* Queues one message for `tenant_id` and returns its outbox id. Idempotent on dedupe_key: when a
 * message with that key exists (in any state), nothing is changed, its id is returned and
 * *out_new (may be NULL) is false. A caller that makes something new for the message (a fresh
 * onboarding link) should do both in one transaction and roll back when *out_new is false, so the
 * brand never receives a link that was replaced. `to` must be a plain address, `subject` one line
 * of UTF-8 (CR/LF refused), `body` UTF-8 text/plain with LF or CRLF line ends. Runs in the caller's
 * transaction when there is one. */
int mail_queue(store *st, const char *tenant_id, enum mail_kind kind, const char *dedupe_key,
               const char *to, const char *subject, const char *body, int64_t *out_id,
               bool *out_new);

/* Where and how messages are delivered. */
struct mail_config {
    char smtp_url[512];        /* smtp://host[:port] or smtps://...; "" = write .eml files */
    char smtp_user[256];       /* "" = no AUTH */
    cad_secret *smtp_password; /* owned by the config; NULL = none */
    char from[512];            /* "cadence@localhost" or "Display Name <addr@domain>" */
    char outbox_dir[4096];     /* where .eml files go */
    int max_attempts;          /* attempts before a message is failed */
    int64_t backoff_base_ms;   /* wait after the first failed attempt; doubles each time */
    int64_t backoff_max_ms;    /* longest wait */
    int64_t sending_lease_ms;  /* a 'sending' row older than this was interrupted */
    long timeout_s;            /* one SMTP transaction, connect included */
};

#define MAIL_FROM_DEFAULT "cadence@localhost"

/* Defaults: .eml files in DATA_DIR/outbox, From cadence@localhost, 8 attempts, backoff 1 min
 * doubling up to 6 h, lease 10 min, timeout 60 s. Then the environment:
 *   CADENCE_SMTP_URL            smtp://host:port (STARTTLS required unless the host is loopback)
 *                               or smtps://host:port; no user name or password in it
 *   CADENCE_SMTP_USER           user name for SMTP AUTH
 *   CADENCE_SMTP_PASSWORD_FILE  file holding the password (read into a cad_secret; one trailing
 *                               newline dropped); a password is never taken from the environment
 *   CADENCE_MAIL_FROM           the From header (default cadence@localhost)
 * Caller frees with mail_config_free(). */
int mail_config_from_env(struct mail_config *out, const char *data_dir);
/* Defaults only, no environment (tests, and callers that configure by hand). */
void mail_config_defaults(struct mail_config *out, const char *data_dir);
void mail_config_free(struct mail_config *c);

/* Checks an SMTP URL: scheme smtp or smtps, a host, no user name, password, query or fragment.
 * *starttls_required (may be NULL) is true for smtp:// to any host but 127.0.0.1, localhost and
 * ::1, where STARTTLS is used when offered (a test server on loopback offers none). */
int mail_smtp_url_check(const char *url, bool *starttls_required);

/* Wait before the next attempt after `attempts` failed ones (>= 1): base * 2^(attempts-1),
 * capped at backoff_max_ms. */
int64_t mail_backoff_ms(const struct mail_config *cfg, int attempts);

/* The RFC 5322 message (CRLF line ends) for the given values; headers Date, From, To, Subject,
 * Message-ID, MIME-Version, Content-Type, Content-Transfer-Encoding, Auto-Submitted. `from` may
 * carry a display name. Refuses CR/LF or other control characters in any header value.
 * *out is malloc'd and NUL-terminated; caller frees. */
int mail_format_message(const char *from, const char *to, const char *subject, const char *body,
                        const char *message_id, int64_t date_ms, char **out, size_t *out_len);

struct mail_deliver_result {
    int attempted; /* messages handed to SMTP or written as .eml */
    int sent;
    int retrying; /* failed this time, queued again for later */
    int failed;   /* given up (permanent refusal or too many attempts) */
    int resent;   /* of attempted: interrupted earlier, sent again with the same Message-ID */
};

/* Delivers every message due at `now_ms` (queued with next_attempt_ms <= now_ms, or interrupted
 * in 'sending'). A message that fails to send is not an error of this call: it is recorded and
 * counted in *out. Errors are those of the store, the audit log, the configuration (CAD_EINVAL,
 * before anything is claimed) or the outbox directory. */
int mail_deliver_pending(store *st, const struct mail_config *cfg, int64_t now_ms,
                         struct mail_deliver_result *out);

/* One outbox row as listed: never the body. Strings are valid during the callback only; "" when
 * absent; times 0 when absent. */
struct mail_info {
    int64_t id;
    const char *tenant_id, *kind, *to, *subject, *dedupe_key, *status, *last_error, *message_id;
    int attempts;
    int64_t created_ms, next_attempt_ms, sent_ms;
};
struct mail_filter {
    const char *tenant_id; /* NULL = all */
    const char *status;    /* NULL = all */
    int64_t id;            /* 0 = all */
};
typedef int (*mail_fn)(void *ctx, const struct mail_info *m);
/* Lists outbox rows in id order (f may be NULL). A non-zero return from fn stops and is returned.
 */
int mail_list(store *st, const struct mail_filter *f, mail_fn fn, void *ctx);

/* The three messages Cadence sends. `brand` is the tenant's name; `link_url` the onboarding link
 * the caller has just issued (http:// or https://, no spaces). The help page's address is the
 * link's origin + /help/klaviyo. `expires_ms` (onboarding link only) is told when non-zero.
 * subject and body are malloc'd; free with mail_message_free(). */
struct mail_message {
    char *subject;
    char *body;
};
int mail_build_key_request(const char *brand, const char *link_url, struct mail_message *out);
int mail_build_key_revoked(const char *brand, const char *link_url, struct mail_message *out);
int mail_build_onboarding_link(const char *brand, const char *link_url, int64_t expires_ms,
                               struct mail_message *out);
void mail_message_free(struct mail_message *m);

#endif
