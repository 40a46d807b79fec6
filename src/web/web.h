/*
 * The web face of Cadence: `cadence serve` (brand onboarding, the help page, the operators'
 * console at /admin, health and metrics), the onboarding links that open it, and confirming a
 * payment (which may email the brand for its key).
 *
 * The server is libmicrohttpd with a thread pool; each worker thread opens its own store and vault
 * on first use (a store handle is not thread-safe). Everything a request needs besides those is
 * read-only after start-up or behind a mutex (throttle, metrics).
 *
 * An onboarding link is /onboard/<token>: 256 random bits in base64url (43 characters). Only the
 * SHA-256 of the token is stored, with an expiry; issuing a new link for a tenant revokes the old
 * ones. The token is a credential: it is never logged (a 12-hex-digit prefix of its hash is) and it
 * opens its own tenant and nothing else.
 */
#ifndef CADENCE_WEB_WEB_H
#define CADENCE_WEB_WEB_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct worker_pool;

#define WEB_TOKEN_LEN 43 /* base64url of 32 bytes, no padding */

struct web_config {
    const char *data_dir;   /* holds cadence.db, the master key and web.key */
    const char *listen;     /* "HOST:PORT" or "[V6]:PORT"; port 0 picks a free one */
    unsigned threads;       /* worker threads (MHD thread pool) */
    unsigned max_conns;     /* concurrent connections, all threads together */
    unsigned timeout_s;     /* an idle connection is closed after this */
    size_t body_max;        /* largest request body; 413 beyond it */
    unsigned drain_s;       /* on SIGTERM/SIGINT, how long in-flight requests may take to end */
    const char *public_url; /* base of the links shown to people ($CADENCE_PUBLIC_URL) */
    struct worker_pool *workers; /* background plan applies the console queues to; may be NULL */
};

/* Defaults: 127.0.0.1:8080, 4 threads, 256 connections, 30 s timeout, 64 KiB bodies, 30 s drain,
 * public URL from $CADENCE_PUBLIC_URL or http://127.0.0.1:8080. */
void web_config_defaults(struct web_config *cfg);

/* Runs the server until SIGTERM or SIGINT: prints "listening on http://HOST:PORT" on stdout once
 * it accepts connections, and on the signal stops accepting, lets in-flight requests finish (up to
 * drain_s) and returns CAD_OK. Errors (address in use, no data directory) return before serving. */
int web_serve(const struct web_config *cfg);

/* Issues a new onboarding link for `tenant_id` valid for `ttl_ms`, revoking the tenant's earlier
 * links, and records onboarding.link in the audit log as `actor` (one transaction). The token is
 * written to `token` (WEB_TOKEN_LEN + 1 bytes): show it once, store it nowhere. */
int web_link_issue(store *st, const char *actor, const char *tenant_id, int64_t ttl_ms,
                   char token[WEB_TOKEN_LEN + 1], int64_t *expires_ms);

/* What web_payment_confirm() did. */
struct web_payment_result {
    bool was_paid;      /* the payment already was confirmed: nothing changed */
    bool key_requested; /* a key-request email with a fresh onboarding link was queued */
    bool no_address;    /* the key is deferred but the tenant has no email address to ask */
    char to[256];       /* where the key request goes */
    int64_t mail_id;    /* its outbox id */
};

/* Confirms the tenant's payment as `actor`. When that changes it and the brand chose to send its
 * Klaviyo key later (state deferred), it also issues a fresh onboarding link (revoking the old
 * one) and queues the key-request email carrying it to the brand's contact (the address given in
 * onboarding, else the tenant's), with a key.request audit record: all in one transaction, so
 * the payment is never confirmed without its email or the other way round. The one
 * implementation behind the console's "Confirm payment" and `cadence tenant paid`. The link's
 * base is $CADENCE_PUBLIC_URL; its lifetime $CADENCE_LINK_TTL_DAYS. */
int web_payment_confirm(store *st, const char *actor, const char *tenant_id,
                        struct web_payment_result *out);

/* The link lifetime: $CADENCE_LINK_TTL_DAYS (1..365, default 14) in ms. CAD_EINVAL with the
 * variable's name for a value out of range. */
int web_link_ttl_from_env(int64_t *ttl_ms);

/* $CADENCE_PUBLIC_URL without trailing slashes, or "http://127.0.0.1:8080". CAD_EINVAL when the
 * variable is set to something that is not an http(s) URL. */
int web_public_url(char *out, size_t size);

#endif
