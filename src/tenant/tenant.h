/*
 * Tenants (one per brand), their credentials' lifecycle, and operators.
 *
 * A tenant's credentials (klaviyo, shopify, postscript, attentive) are stored the same way: one
 * row per kind with a state, the sealed secret (see vault.h) and what may be shown to people
 * (last 4 characters, keyed fingerprint, verified time, account name and scopes). Every change of
 * state goes through key_state_check(), the one place that knows which transitions exist.
 *
 * Fixed-size text fields are truncated copies; nothing here returns memory the caller must free
 * unless the comment says so.
 */
#ifndef CADENCE_TENANT_TENANT_H
#define CADENCE_TENANT_TENANT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/secret.h"
#include "store/store.h"
#include "vault/vault.h"

#define TENANT_ID_MAX 48

enum cred_kind { CRED_KLAVIYO, CRED_SHOPIFY, CRED_POSTSCRIPT, CRED_ATTENTIVE, CRED_KIND_COUNT };

enum key_state {
    KEY_NONE,       /* nothing entered yet */
    KEY_DEFERRED,   /* the brand chose "Continue without entering a key" */
    KEY_UNVERIFIED, /* a key is stored but has not been verified yet */
    KEY_VERIFIED,   /* verified against the provider */
    KEY_INVALID,    /* the last attempt failed (format or provider said no) */
    KEY_REVOKED,    /* the provider stopped accepting a key that had worked */
    KEY_STATE_COUNT
};

const char *cred_kind_name(enum cred_kind k);
int cred_kind_parse(const char *s, enum cred_kind *out);
const char *key_state_name(enum key_state s);
int key_state_parse(const char *s, enum key_state *out);

/* CAD_OK when `from` -> `to` is a transition that exists; CAD_ESTATE with a message otherwise. */
int key_state_check(enum cred_kind kind, enum key_state from, enum key_state to);

struct tenant {
    char id[TENANT_ID_MAX];
    char name[256];
    char email[256];
    int64_t created_ms;
    bool paid;
    int64_t payment_ms;
};

/* Validates name and email, derives a unique slug id from the name, creates the tenant and its
 * data key in one transaction, and records tenant.add in the audit log as `actor`. */
int tenant_add(store *st, vault *v, const char *actor, const char *name, const char *email,
               char out_id[TENANT_ID_MAX]);
int tenant_get(store *st, const char *id, struct tenant *out);
typedef int (*tenant_fn)(void *ctx, const struct tenant *t);
int tenant_list(store *st, tenant_fn fn, void *ctx);
/* Marks the payment confirmed (idempotent) and records tenant.paid. *was_paid tells whether it
 * already was, so callers act only on the change (e.g. emailing a brand that deferred its key). */
int tenant_confirm_payment(store *st, const char *actor, const char *id, bool *was_paid);

/* Shown to people; never the secret. */
struct credential_info {
    enum cred_kind kind;
    enum key_state state;
    int version; /* 0 = no secret ever stored */
    bool has_secret;
    char last4[5];
    char fingerprint[17];
    int64_t set_ms, verified_ms, updated_ms;
    char account_id[64];
    char account_name[256];
    char scopes[2048]; /* JSON text from the last verification, "" when none */
    char detail[512];  /* why the last attempt failed, or a note */
    char extra[512];   /* kind-specific JSON (e.g. the Shopify shop domain) */
};

int credential_info(store *st, const char *tenant_id, enum cred_kind kind,
                    struct credential_info *out);

/* Seals `secret` as the next version of (tenant, kind) and sets the state to `state`
 * (KEY_UNVERIFIED or KEY_VERIFIED), all in one transaction with a key.set audit record. The
 * previous version is replaced only when this succeeds. `extra_json` may be NULL. */
int credential_store(store *st, vault *v, const char *actor, const char *tenant_id,
                     enum cred_kind kind, const cad_secret *secret, enum key_state state,
                     const char *extra_json);

/* Opens the current secret. Caller owns *out (secret_free). */
int credential_open(store *st, vault *v, const char *tenant_id, enum cred_kind kind,
                    cad_secret **out);

/* Moves to `to` (checked) and records `action` with `detail` in the audit log. */
int credential_set_state(store *st, const char *actor, const char *tenant_id, enum cred_kind kind,
                         enum key_state to, const char *action, const char *detail);

/* Records a successful verification: account id and name, scopes JSON, time; state verified. */
int credential_mark_verified(store *st, const char *actor, const char *tenant_id,
                             enum cred_kind kind, const char *account_id, const char *account_name,
                             const char *scopes_json);

enum operator_role { ROLE_ADMIN, ROLE_OPERATOR };

struct operator_info {
    char email[256];
    enum operator_role role;
    int64_t created_ms;
    bool disabled;
};

const char *operator_role_name(enum operator_role r);
int operator_role_parse(const char *s, enum operator_role *out);
/* Hashes the password with Argon2id (libargon2) and stores the operator. Passwords shorter than
 * 12 characters are refused. */
int operator_add(store *st, const char *actor, const char *email, enum operator_role role,
                 const cad_secret *password);
int operator_get(store *st, const char *email, struct operator_info *out);
/* CAD_OK when the password matches, CAD_EAUTH otherwise (also for unknown or disabled operators,
 * after the same amount of work, so the answer does not reveal which). */
int operator_check_password(store *st, const char *email, const cad_secret *password);
typedef int (*operator_fn)(void *ctx, const struct operator_info *o);
int operator_list(store *st, operator_fn fn, void *ctx);

/* A plausible email address (one @, a dot in the domain, no spaces, <= 254 chars). */
bool email_valid(const char *email);

#endif
