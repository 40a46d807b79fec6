/*
 * Verifying a Klaviyo private key: the library call behind `cadence key verify`, `cadence key set
 * --verify` and the onboarding page's Verify button.
 *
 * In order: the format check (keyfmt), GET /api/accounts (account id, organization name,
 * timezone, currency, public key), then one cheap read per scope family on the help page (lists,
 * segments, templates, campaigns, flows, profiles, forms, images, catalogs, coupons, webhooks,
 * tags), sent together and paced by the rate limiter, giving per-family read access. Write access
 * cannot be tested without writing, so it is reported as "confirmed on first write". Every call
 * is audited like any other Klaviyo call. Nothing is stored here: the caller decides what the
 * result means for the stored credential.
 */
#ifndef CADENCE_KLAVIYO_VERIFY_H
#define CADENCE_KLAVIYO_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/secret.h"
#include "klaviyo/client.h"
#include "store/store.h"

enum klaviyo_verify_status {
    KLAVIYO_VERIFY_OK,             /* the key works and every family can be read */
    KLAVIYO_VERIFY_BAD_FORMAT,     /* not a private key's shape (message: keyfmt's) */
    KLAVIYO_VERIFY_REJECTED,       /* 401, confirmed: the key is wrong or was revoked */
    KLAVIYO_VERIFY_MISSING_SCOPES, /* the key works but cannot read some families */
    KLAVIYO_VERIFY_UNREACHABLE,    /* no answer from Klaviyo: try later; says nothing of the key */
    KLAVIYO_VERIFY_CHALLENGE,      /* Klaviyo's CDN answered with an HTML challenge: try later */
    KLAVIYO_VERIFY_TRANSIENT,      /* 5xx, 429 or an unconfirmed 401: try later */
    KLAVIYO_VERIFY_FAILED,         /* a local failure or an answer that made no sense */
};

/* "ok", "bad_format", "rejected", "missing_scopes", "unreachable", "challenge", "transient",
 * "failed". */
const char *klaviyo_verify_status_name(enum klaviyo_verify_status s);

enum klaviyo_scope_read {
    KLAVIYO_READ_UNCHECKED,
    KLAVIYO_READ_OK,
    KLAVIYO_READ_MISSING,
    KLAVIYO_READ_UNKNOWN
};

#define KLAVIYO_SCOPE_FAMILIES 12

struct klaviyo_scope_check {
    const char *family;       /* "lists", ... (static) */
    const char *operation_id; /* the read used to check it (static) */
    enum klaviyo_scope_read read;
    char detail[256]; /* why, when not ok */
};

struct klaviyo_verify_result {
    enum klaviyo_verify_status status;
    char message[768]; /* for people: "Verified: Acme Outdoors (account AbC123)" or the reason */
    char account_id[64];
    char organization_name[256];
    char timezone[64];
    char currency[16];
    char public_key[32];
    bool test_account;
    struct klaviyo_scope_check scopes[KLAVIYO_SCOPE_FAMILIES];
    char missing[256]; /* comma-joined families whose read was refused, "" when none */
};

/* The scope families and the read that checks each, in help-page order; each operation's only
 * scope is "<family>:read" in kspec. */
struct klaviyo_scope_family {
    const char *family;
    const char *operation_id;
};
extern const struct klaviyo_scope_family klaviyo_scope_families[KLAVIYO_SCOPE_FAMILIES];

/* Verifies `key` (the raw paste: the format check tidies it) for `tenant_id`, auditing each call
 * as `actor`. cfg NULL = klaviyo_config_from_env(). Fills *out and returns CAD_OK when the key is
 * verified, otherwise the CAD_E* code matching out->status (CAD_EINVAL bad format, CAD_EAUTH
 * rejected, CAD_EPERM missing scopes, CAD_ENET unreachable/challenge/transient, others for local
 * failures). */
int klaviyo_verify_key(store *st, const struct klaviyo_config *cfg, const char *tenant_id,
                       const char *actor, const cad_secret *key, struct klaviyo_verify_result *out);

/* The per-family result as JSON for the credential record:
 * {"accounts":"ok","lists":{"read":"ok","write":"confirmed on first write"},...}.
 * Caller frees. NULL on allocation failure. */
char *klaviyo_verify_scopes_json(const struct klaviyo_verify_result *r);

/* "ok", "missing", "unknown", "unchecked". */
const char *klaviyo_scope_read_name(enum klaviyo_scope_read r);

#endif
