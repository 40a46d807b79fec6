/*
 * The brand's other connections: its Shopify store (read access to the catalog) and its SMS
 * providers (Postscript, Attentive). This module checks what the brand pastes (the store domain,
 * the token, the keys) and verifies a credential with the provider; it stores nothing, so the
 * caller decides what a result means for the stored credential, as with klaviyo/verify.h.
 *
 * The format checks are pure functions that never echo the input in their messages (at most a
 * prefix such as "shpss_"), so messages can be shown and logged. The paste is tidied the way
 * keyfmt tidies a Klaviyo key (surrounding whitespace, quotes, zero-width characters).
 *
 * Verification makes one authenticated read per credential:
 *   Shopify     POST <base>/admin/api/SHOPIFY_API_VERSION/graphql.json with X-Shopify-Access-Token,
 *               query { shop { name myshopifyDomain } currentAppInstallation { accessScopes
 *               { handle } } }; <base> is https://<shop>.myshopify.com or $CADENCE_SHOPIFY_URL
 *               (for every shop, as $CADENCE_KLAVIYO_URL is for Klaviyo).
 *   Postscript  GET <base>/api/v2/me with Authorization: Bearer <private key> (Postscript's
 *               "Verify Identity"); <base> is https://api.postscript.io or $CADENCE_POSTSCRIPT_URL.
 *   Attentive   GET <base>/v1/me with Authorization: Bearer <API key>; <base> is
 *               https://api.attentivemobile.com or $CADENCE_ATTENTIVE_URL.
 * Base URLs must be https, or http to a loopback address only, so a secret never crosses a
 * network in clear text. TLS peer and host verification are always on, redirects never followed.
 * Every call is audited write-ahead (audit_call_begin before the request leaves, audit_call_end
 * with the status after), as "<provider>.call" with method, path and payload hash. The secret
 * lives only in cad_secret buffers (including the header line handed to curl), never in logs,
 * messages or the audit log. Timeouts: $CADENCE_PROVIDER_TIMEOUT_MS (default 30000).
 */
#ifndef CADENCE_PROVIDERS_PROVIDERS_H
#define CADENCE_PROVIDERS_PROVIDERS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/secret.h"
#include "store/store.h"
#include "tenant/tenant.h"
#include "vault/vault.h"

/* The one pinned Shopify Admin API version. Shopify supports a stable version for a year; move
 * this forward (and re-run the Shopify suites) before it is retired. */
#define SHOPIFY_API_VERSION "2025-07"

#define SHOPIFY_DEFAULT_SUFFIX      ".myshopify.com"
#define POSTSCRIPT_DEFAULT_BASE_URL "https://api.postscript.io"
#define ATTENTIVE_DEFAULT_BASE_URL  "https://api.attentivemobile.com"

enum provider { PROVIDER_SHOPIFY, PROVIDER_POSTSCRIPT, PROVIDER_ATTENTIVE };

/* "shopify", "postscript", "attentive". */
const char *provider_name(enum provider p);

/* ---- the Shopify store domain ---- */

enum shopify_domain_verdict {
    SHOPIFY_DOMAIN_OK,         /* normalised to name.myshopify.com */
    SHOPIFY_DOMAIN_EMPTY,      /* nothing given */
    SHOPIFY_DOMAIN_CUSTOM,     /* a storefront's own domain: cannot be mapped without Shopify */
    SHOPIFY_DOMAIN_BAD_NAME,   /* a store name with characters a name never has */
    SHOPIFY_DOMAIN_NOT_DOMAIN, /* an email address, a port, spaces, another site ... */
};

struct shopify_domain_result {
    enum shopify_domain_verdict verdict;
    char domain[128];  /* "name.myshopify.com" when OK, "" otherwise */
    char message[384]; /* for the person who typed it */
};

/* Accepts name.myshopify.com, https://name.myshopify.com/admin (any scheme, path, query),
 * admin.shopify.com/store/name and the bare name, in any case, with surrounding whitespace.
 * A store name is 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen.
 * Returns CAD_OK when out->verdict is SHOPIFY_DOMAIN_OK, CAD_EINVAL otherwise (out->message says
 * why; it may quote the domain, which is not a secret). */
int shopify_domain_normalise(const char *input, struct shopify_domain_result *out);

/* ---- token and key formats ---- */

enum provider_key_verdict {
    PROVIDER_KEY_OK,
    PROVIDER_KEY_EMPTY,
    PROVIDER_KEY_MASKED,     /* dots or asterisks: the hidden form was copied */
    PROVIDER_KEY_TOO_SHORT,  /* the right prefix, too few characters */
    PROVIDER_KEY_TOO_LONG,   /* the right prefix, too many characters */
    PROVIDER_KEY_BAD_CHARS,  /* characters the credential never has (spaces, symbols) */
    PROVIDER_KEY_WRONG_KIND, /* another credential: a secret, an API key, a public key ... */
};

struct provider_key_result {
    enum provider_key_verdict verdict;
    size_t start, len; /* the tidied paste within the input, in bytes (the key when OK) */
    char message[384]; /* never echoes more than a short prefix of the input */
};

/* "ok", "empty", "masked", "too_short", "too_long", "bad_chars", "wrong_kind". */
const char *provider_key_verdict_name(enum provider_key_verdict v);

/* Shopify Admin API access token: shpat_, shpca_, shppa_ or shpua_ followed by 32 hexadecimal
 * digits (38 characters; Shopify's changelog "Length of the Shopify access token is increasing",
 * 2020). shpss_ (the app's API secret key), an unprefixed 32-digit value (the API key, a
 * storefront token or a pre-2020 token) and anything else are refused, each with its own message.
 */
void shopify_token_check(const char *input, size_t len, struct provider_key_result *out);

/* Postscript private API key: sk_ followed by at least 16 letters and digits (Postscript does
 * not publish a length). pk_ (the public key of the same key pair, which does not authenticate)
 * and sk_partner_ (a partner's key, not a shop's) are refused with their own messages. */
void postscript_key_check(const char *input, size_t len, struct provider_key_result *out);

/* Attentive API key from a custom app: an opaque token whose format Attentive does not publish;
 * 16 to 512 characters from A-Z a-z 0-9 - _ . ~ + / =. A pasted "Bearer " prefix, Klaviyo and
 * Postscript keys and Shopify tokens are refused with their own messages. */
void attentive_key_check(const char *input, size_t len, struct provider_key_result *out);

/* Dispatches on `p`. */
void provider_key_check(enum provider p, const char *input, size_t len,
                        struct provider_key_result *out);

/* ---- verification ---- */

enum provider_verify_status {
    PROVIDER_VERIFY_OK,             /* works (see `warning` for least-privilege notes) */
    PROVIDER_VERIFY_BAD_FORMAT,     /* the format check failed; nothing was sent */
    PROVIDER_VERIFY_REJECTED,       /* 401/403: the credential is wrong or was revoked */
    PROVIDER_VERIFY_MISSING_SCOPES, /* works, but lacks a scope Cadence needs (read_products) */
    PROVIDER_VERIFY_NOT_FOUND,      /* 404: no such shop at that address */
    PROVIDER_VERIFY_UNREACHABLE,    /* no answer: says nothing about the credential */
    PROVIDER_VERIFY_TRANSIENT,      /* 429, 5xx: try later */
    PROVIDER_VERIFY_FAILED,         /* a local failure or an answer that made no sense */
};

/* "ok", "bad_format", "rejected", "missing_scopes", "not_found", "unreachable", "transient",
 * "failed". */
const char *provider_verify_status_name(enum provider_verify_status s);

struct provider_verify_result {
    enum provider_verify_status status;
    int http_status;        /* of the call, 0 when none came or none was sent */
    char message[768];      /* "Verified: Acme Outdoors (acme.myshopify.com)" or the reason */
    char warning[512];      /* e.g. write scopes granted; "" when none */
    char account_id[128];   /* myshopify domain / Postscript resource_id / Attentive companyId */
    char account_name[256]; /* shop name / resource_name / companyName */
    char scopes[1024];      /* Shopify: the token's access scopes, comma-joined */
    char missing[128];      /* Shopify: required scopes the token lacks, comma-joined */
};

struct provider_config {
    char base_url[512]; /* "" = the provider's own (Shopify: https://<shop>) */
    long connect_timeout_ms;
    long timeout_ms;
};

/* Reads $CADENCE_SHOPIFY_URL, $CADENCE_POSTSCRIPT_URL or $CADENCE_ATTENTIVE_URL and
 * $CADENCE_PROVIDER_TIMEOUT_MS. CAD_EINVAL (with a message) for a URL that is not
 * scheme://host[:port], or plain http to a host that is not loopback. */
int provider_config_from_env(enum provider p, struct provider_config *out);

/* True for localhost, 127.x.y.z and ::1: the only hosts plain http may reach. */
bool provider_host_is_loopback(const char *host);

struct provider_reply {
    int status;           /* HTTP status */
    char *body;           /* NUL-terminated, malloc'd (caller frees); NULL when empty */
    size_t len;           /* bytes in body */
    bool too_big;         /* the answer was longer than max_reply and was cut */
    char request_id[128]; /* X-Request-Id, "" when none */
};

/* One Shopify Admin GraphQL request: POST `body` (a JSON document {"query":..,"variables":..})
 * to <base>/admin/api/SHOPIFY_API_VERSION/graphql.json with the token, audited write-ahead as
 * "shopify.call" like provider_verify. `token` is the tidied token; <base> is cfg->base_url or
 * https://<shop_domain>. At most max_reply bytes of the answer are kept (0 = 1 MiB). CAD_OK when
 * an answer came, whatever its status (in *out); CAD_ENET when none did; other codes when nothing
 * was sent. Exactly one attempt: retries are the caller's. */
int shopify_graphql_call(store *st, const struct provider_config *cfg, const char *tenant_id,
                         const char *actor, const char *shop_domain, const cad_secret *token,
                         const char *body, size_t max_reply, struct provider_reply *out);

/* Verifies `secret` (the raw paste: the format check tidies it) for `tenant_id`, auditing the call
 * as `actor`. For Shopify `shop_domain` is the normalised name.myshopify.com (ignored otherwise).
 * cfg NULL = provider_config_from_env(). Returns CAD_OK when verified, otherwise the code matching
 * out->status (CAD_EINVAL bad format, CAD_EAUTH rejected, CAD_EPERM missing scopes, CAD_ENOTFOUND
 * no such shop, CAD_ENET unreachable/transient, others for local failures). */
int provider_verify(store *st, const struct provider_config *cfg, enum provider p,
                    const char *tenant_id, const char *actor, const char *shop_domain,
                    const cad_secret *secret, struct provider_verify_result *out);

/* The result as JSON for the credential record, e.g. {"scopes":["read_products"],
 * "missing":[],"warning":"..."}. Caller frees. NULL on allocation failure. */
char *provider_verify_scopes_json(const struct provider_verify_result *r);

/* ---- storing a credential (credential.c) ---- */

/* The tenant credential kind of a provider (CRED_SHOPIFY, CRED_POSTSCRIPT, CRED_ATTENTIVE). */
enum cred_kind provider_cred_kind(enum provider p);

enum provider_set_stage {
    PROVIDER_SET_STORED,       /* sealed and recorded (and verified, when asked) */
    PROVIDER_SET_BAD_FORMAT,   /* out->format says why; nothing was sent or changed */
    PROVIDER_SET_NOT_VERIFIED, /* out->verify says why; nothing was stored */
    PROVIDER_SET_FAILED,       /* a local failure (cad_errmsg()); the stored credential stays */
};

struct provider_set_result {
    enum provider_set_stage stage;
    struct provider_key_result format;
    struct provider_verify_result verify; /* when verification was asked and attempted */
    int record_rc; /* CAD_OK, or why a failed attempt could not be recorded */
};

/* What `cadence key set --kind P [--verify]` and the onboarding page's Step 4 do with a pasted
 * credential: the format check of `raw` (tidied as provider_key_check does), then, with `verify`,
 * provider_verify(), then credential_store() of the tidied credential under the tenant's data key
 * with a key.set audit record, and credential_mark_verified() when verified. For Shopify
 * `shop_domain` is the normalised name.myshopify.com, recorded as {"shop": ...} beside the token
 * (ignored otherwise). A rejected candidate never replaces the stored credential; what a failed
 * verification means is recorded as provider_credential_verify() does for a candidate (invalid,
 * unless a credential that works or may work is stored). Returns CAD_OK when stored, CAD_EINVAL
 * for a bad format, the provider_verify() code when not verified, others for local failures (a
 * Shopify domain that does not normalise is one: PROVIDER_SET_FAILED, CAD_EINVAL with its
 * message; callers check the domain first, with shopify_domain_normalise()). */
int provider_credential_set(store *st, vault *v, const char *actor, const char *tenant_id,
                            enum provider p, const char *shop_domain, const cad_secret *raw,
                            bool verify, struct provider_set_result *out);

/* A credential the provider rejected on use (or on re-verification) after it had worked: marks it
 * revoked and queues one email to the brand asking for a new one (once per credential version),
 * in one transaction, audited as key.revoked with `detail`. Cadence stops using it: callers
 * refuse a revoked credential until a new one is verified. */
int provider_mark_revoked(store *st, const char *actor, const char *tenant_id, enum provider p,
                          const char *detail);

/* Verifies the tenant's stored credential (`cadence key verify --kind P`) and records the
 * outcome: verified (account, scopes), revoked (it had worked and is now rejected) or invalid
 * (it never worked); an unreachable or busy provider changes nothing. Returns CAD_OK when
 * verified; otherwise the provider_verify() code (out->status says what happened) or the code of
 * a local failure (out->status PROVIDER_VERIFY_FAILED, cad_errmsg()). */
int provider_credential_verify(store *st, vault *v, const char *actor, const char *tenant_id,
                               enum provider p, struct provider_verify_result *out);

#endif
