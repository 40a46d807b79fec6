/*
 * Onboarding links and payment confirmation: what both faces (the web server and the command
 * line) do to bring a brand in, one layer below them.
 *
 * An onboarding link is /onboard/<token>: 256 random bits in base64url (43 characters). Only the
 * SHA-256 of the token is stored, with an expiry; issuing a new link for a tenant revokes the old
 * ones. The token is a credential: it is never logged (a 12-hex-digit prefix of its hash is) and it
 * opens its own tenant and nothing else.
 */
#ifndef CADENCE_ONBOARD_ONBOARD_H
#define CADENCE_ONBOARD_ONBOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "tenant/tenant.h"

#define ONBOARD_TOKEN_LEN 43 /* base64url of 32 bytes, no padding */

/* base64url without padding of n bytes into out (4*ceil(n/3) + 1 bytes suffice). */
void base64url_encode(const unsigned char *in, size_t n, char *out);
/* A fresh 256-bit token. */
int onboard_token_new(char out[ONBOARD_TOKEN_LEN + 1]);
/* True when `s` has the shape of a token: exactly ONBOARD_TOKEN_LEN base64url characters. */
bool onboard_token_wellformed(const char *s);
/* SHA-256 of the token text, lower-case hex. */
void onboard_token_hash(const char *token, char out[2 * 32 + 1]);

struct onboard_link {
    char tenant_id[TENANT_ID_MAX];
    char hash[65];   /* SHA-256 of the token */
    char hash12[13]; /* its first 12 hex digits: what logs and audit records show */
    int64_t expires_ms;
};

/* The live link for `token`. CAD_ENOTFOUND, with one message for every case, when the token is
 * malformed, unknown, expired or revoked, so the answer reveals nothing about which. */
int onboard_link_resolve(store *st, const char *token, int64_t now_ms, struct onboard_link *out);

/* Issues a new onboarding link for `tenant_id` valid for `ttl_ms`, revoking the tenant's earlier
 * links, and records onboarding.link in the audit log as `actor` (one transaction). The token is
 * written to `token` (ONBOARD_TOKEN_LEN + 1 bytes): show it once, store it nowhere. */
int onboard_link_issue(store *st, const char *actor, const char *tenant_id, int64_t ttl_ms,
                       char token[ONBOARD_TOKEN_LEN + 1], int64_t *expires_ms);

/* The link lifetime: $CADENCE_LINK_TTL_DAYS (1..365, default 14) in ms. CAD_EINVAL with the
 * variable's name for a value out of range. */
int onboard_link_ttl_from_env(int64_t *ttl_ms);

/* $CADENCE_PUBLIC_URL without trailing slashes, or "http://127.0.0.1:8080". CAD_EINVAL when the
 * variable is set to something that is not an http(s) URL. */
int onboard_public_url(char *out, size_t size);

/* Issues a fresh link for `tenant_id` (lifetime from $CADENCE_LINK_TTL_DAYS) as actor "system"
 * and writes its full URL ($CADENCE_PUBLIC_URL + /onboard/<token>) to `url`, for an email that
 * asks the brand for a new key. `ctx` is unused: the signature is plan_apply_options.issue_link. */
int onboard_link_for_email(void *ctx, store *st, const char *tenant_id, char *url, size_t urlsz);

/* What onboard_payment_confirm() did. */
struct onboard_payment_result {
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
int onboard_payment_confirm(store *st, const char *actor, const char *tenant_id,
                            struct onboard_payment_result *out);

#endif
