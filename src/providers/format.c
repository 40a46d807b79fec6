/*
 * What the brand pastes for its other connections: the Shopify store domain, the Shopify token
 * and the SMS providers' keys (rules in providers.h). Untrusted input of any length, so the
 * checks work on (pointer, length) pairs and build messages only from fixed text, counts and at
 * most a short prefix. Tidying a paste and spotting a masked one are keyfmt's rules, reused here
 * so that every key field on the page behaves the same.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "keyfmt/keyfmt.h"
#include "providers/providers.h"

const char *provider_name(enum provider p)
{
    switch (p) {
    case PROVIDER_SHOPIFY:
        return "shopify";
    case PROVIDER_POSTSCRIPT:
        return "postscript";
    case PROVIDER_ATTENTIVE:
        return "attentive";
    }
    return "unknown";
}

const char *provider_key_verdict_name(enum provider_key_verdict v)
{
    switch (v) {
    case PROVIDER_KEY_OK:
        return "ok";
    case PROVIDER_KEY_EMPTY:
        return "empty";
    case PROVIDER_KEY_MASKED:
        return "masked";
    case PROVIDER_KEY_TOO_SHORT:
        return "too_short";
    case PROVIDER_KEY_TOO_LONG:
        return "too_long";
    case PROVIDER_KEY_BAD_CHARS:
        return "bad_chars";
    case PROVIDER_KEY_WRONG_KIND:
        return "wrong_kind";
    }
    return "unknown";
}

static void say(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
}

#define SAY(out, ...) say((out)->message, sizeof(out)->message, __VA_ARGS__)

/* ---- the store domain ---- */

#define WHERE_DOMAIN                                                                               \
    "In your Shopify admin open Settings \xE2\x86\x92 Domains: the address ending in "             \
    ".myshopify.com is listed there (it is also in the browser's address bar as "                  \
    "admin.shopify.com/store/NAME)."

static bool is_name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* A store name: 1-63 of a-z 0-9 -, not starting or ending with '-'. */
static bool valid_store_name(const char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_name_char((unsigned char)s[i]))
            return false;
    return true;
}

/* A plausible DNS name: labels of letters, digits and hyphens, and a last label of letters. */
static bool looks_like_domain(const char *s)
{
    size_t label = 0, last_start = 0, labels = 0;
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (label == 0 || label > 63)
                return false;
            labels++;
            if (i < n)
                last_start = i + 1;
            label = 0;
            continue;
        }
        if (!is_name_char((unsigned char)s[i]))
            return false;
        label++;
    }
    for (size_t i = last_start; i < n; i++)
        if (!isalpha((unsigned char)s[i]))
            return false;
    return labels >= 2;
}

static int domain_fail(struct shopify_domain_result *out, enum shopify_domain_verdict v)
{
    out->verdict = v;
    out->domain[0] = '\0';
    return CAD_EINVAL;
}

static bool starts_with_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

int shopify_domain_normalise(const char *input, struct shopify_domain_result *out)
{
    memset(out, 0, sizeof *out);
    struct keyfmt_result tidy;
    size_t in_len = input ? strlen(input) : 0;
    keyfmt_check(input, in_len, &tidy);
    char host[256];
    if (!input || tidy.len == 0) {
        SAY(out, "Enter your store's address, such as your-store.myshopify.com. " WHERE_DOMAIN);
        return domain_fail(out, SHOPIFY_DOMAIN_EMPTY);
    }
    if (tidy.len >= sizeof host) {
        SAY(out, "That is too long to be a store address; enter it as your-store.myshopify.com.");
        return domain_fail(out, SHOPIFY_DOMAIN_NOT_DOMAIN);
    }
    memcpy(host, input + tidy.start, tidy.len);
    host[tidy.len] = '\0';

    const char *s = host;
    if (starts_with_ci(s, "https://"))
        s += 8;
    else if (starts_with_ci(s, "http://"))
        s += 7;
    else if (strstr(s, "://")) {
        SAY(out, "That is not a web address of a store. Enter it as your-store.myshopify.com.");
        return domain_fail(out, SHOPIFY_DOMAIN_NOT_DOMAIN);
    }
    /* The new admin's address names the store: admin.shopify.com/store/NAME/... */
    bool from_admin = false;
    if (starts_with_ci(s, "admin.shopify.com/store/")) {
        s += strlen("admin.shopify.com/store/");
        from_admin = true;
    }
    size_t n = strcspn(s, "/?#");
    char h[256];
    memcpy(h, s, n);
    h[n] = '\0';
    for (char *p = h; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    while (n > 0 && h[n - 1] == '.')
        h[--n] = '\0';

    if (strchr(h, '@')) {
        SAY(out, "That looks like an email address. Cadence needs your store's address, such as "
                 "your-store.myshopify.com. " WHERE_DOMAIN);
        return domain_fail(out, SHOPIFY_DOMAIN_NOT_DOMAIN);
    }
    if (strchr(h, ':')) {
        SAY(out, "A store address has no port number (the \":\" part); enter it as "
                 "your-store.myshopify.com.");
        return domain_fail(out, SHOPIFY_DOMAIN_NOT_DOMAIN);
    }
    for (const char *p = h; *p; p++)
        if (isspace((unsigned char)*p) || (unsigned char)*p >= 0x80) {
            SAY(out, "A store address has only letters, digits, hyphens and dots, and no spaces; "
                     "enter it as your-store.myshopify.com. " WHERE_DOMAIN);
            return domain_fail(out, SHOPIFY_DOMAIN_NOT_DOMAIN);
        }
    if (n == 0) {
        SAY(out, "Enter your store's address, such as your-store.myshopify.com. " WHERE_DOMAIN);
        return domain_fail(out, SHOPIFY_DOMAIN_EMPTY);
    }

    const char *name = h;
    size_t name_len = n;
    size_t suf = strlen(SHOPIFY_DEFAULT_SUFFIX);
    if (!from_admin && strchr(h, '.')) {
        if (strcmp(h, "myshopify.com") == 0 || strcmp(h, "shopify.com") == 0 ||
            strcmp(h, "admin.shopify.com") == 0 || strcmp(h, "www.shopify.com") == 0) {
            SAY(out, "That is Shopify's own address, not your store's. " WHERE_DOMAIN);
            return domain_fail(out, SHOPIFY_DOMAIN_NOT_DOMAIN);
        }
        if (n > suf && strcmp(h + n - suf, SHOPIFY_DEFAULT_SUFFIX) == 0) {
            name_len = n - suf;
        } else if (looks_like_domain(h)) {
            SAY(out,
                "%s looks like your storefront's own domain. Cadence needs the store's "
                "permanent .myshopify.com address, which cannot be worked out from the "
                "storefront domain without asking Shopify. " WHERE_DOMAIN,
                h);
            return domain_fail(out, SHOPIFY_DOMAIN_CUSTOM);
        } else {
            SAY(out, "That is not a store address. Enter it as your-store.myshopify.com. "
                     "" WHERE_DOMAIN);
            return domain_fail(out, SHOPIFY_DOMAIN_NOT_DOMAIN);
        }
    }
    if (memchr(name, '.', name_len)) {
        SAY(out, "A .myshopify.com address has just one name before .myshopify.com (such as "
                 "your-store.myshopify.com). " WHERE_DOMAIN);
        return domain_fail(out, SHOPIFY_DOMAIN_BAD_NAME);
    }
    if (!valid_store_name(name, name_len)) {
        SAY(out, "A store name has 1 to 63 letters, digits and hyphens and does not start or end "
                 "with a hyphen; enter the address as your-store.myshopify.com. " WHERE_DOMAIN);
        return domain_fail(out, SHOPIFY_DOMAIN_BAD_NAME);
    }
    out->verdict = SHOPIFY_DOMAIN_OK;
    snprintf(out->domain, sizeof out->domain, "%.*s%s", (int)name_len, name,
             SHOPIFY_DEFAULT_SUFFIX);
    SAY(out, "Store address: %s", out->domain);
    return CAD_OK;
}

/* ---- tokens and keys ---- */

/* Tidies the paste with keyfmt's rules; true when a verdict was reached already (empty or
 * masked). On false, *t and *n are the tidied paste. */
static bool tidy(const char *input, size_t len, const char *what, struct provider_key_result *out,
                 const unsigned char **t, size_t *n)
{
    memset(out, 0, sizeof *out);
    struct keyfmt_result k;
    keyfmt_check(input, len, &k);
    out->start = k.start;
    out->len = k.len;
    *t = (const unsigned char *)input + k.start;
    *n = k.len;
    if (k.verdict == KEYFMT_EMPTY) {
        out->verdict = PROVIDER_KEY_EMPTY;
        SAY(out, "Nothing was pasted. Copy your %s and paste it here.", what);
        return true;
    }
    if (k.verdict == KEYFMT_MASKED) {
        out->verdict = PROVIDER_KEY_MASKED;
        SAY(out,
            "This is the hidden (masked) form of the %s, with dots or asterisks in place of "
            "characters. Paste the value itself; if it is no longer shown, create a new one.",
            what);
        return true;
    }
    return false;
}

static bool has_prefix(const unsigned char *s, size_t n, const char *p)
{
    size_t m = strlen(p);
    return n >= m && memcmp(s, p, m) == 0;
}

static bool all_in(const unsigned char *s, size_t n, int (*pred)(int))
{
    for (size_t i = 0; i < n; i++)
        if (!pred(s[i]))
            return false;
    return true;
}

static bool has_space(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isspace(s[i]))
            return true;
    return false;
}

#define SHOPIFY_WHAT "Admin API access token"
#define SHOPIFY_HOW                                                                                \
    "In Shopify admin open Settings \xE2\x86\x92 Apps and sales channels \xE2\x86\x92 Develop "    \
    "apps, open your Cadence app, and under API credentials reveal the Admin API access token "    \
    "(it starts with shpat_)."
#define SHOPIFY_SHAPE "an Admin API access token is shpat_ followed by 32 characters (38 in all)"

void shopify_token_check(const char *input, size_t len, struct provider_key_result *out)
{
    const unsigned char *t;
    size_t n;
    if (tidy(input, len, "Shopify " SHOPIFY_WHAT, out, &t, &n))
        return;
    static const char *const admin[] = {"shpat_", "shpca_", "shppa_", "shpua_"};
    for (size_t i = 0; i < sizeof admin / sizeof admin[0]; i++) {
        if (!has_prefix(t, n, admin[i]))
            continue;
        if (n < 38) {
            out->verdict = PROVIDER_KEY_TOO_SHORT;
            SAY(out,
                "You pasted %zu characters; " SHOPIFY_SHAPE ". Part of the token was not "
                "copied: copy it again in full.",
                n);
        } else if (n > 38) {
            out->verdict = PROVIDER_KEY_TOO_LONG;
            SAY(out,
                "You pasted %zu characters; " SHOPIFY_SHAPE ". Something else was copied "
                "along with the token: copy just the token.",
                n);
        } else if (!all_in(t + 6, 32, isxdigit)) {
            out->verdict = PROVIDER_KEY_BAD_CHARS;
            SAY(out, "The token is the right length but has characters a token never has: after "
                     "its prefix it has only 0-9 and a-f. Copy it again from Shopify.");
        } else {
            out->verdict = PROVIDER_KEY_OK;
            SAY(out, "This looks like a Shopify Admin API access token.");
        }
        return;
    }
    out->verdict = PROVIDER_KEY_WRONG_KIND;
    if (has_prefix(t, n, "shpss_")) {
        SAY(out,
            "This is the app's API secret key (shpss_), which Shopify uses to sign requests; "
            "it cannot read your store and should stay private. Cadence needs the " SHOPIFY_WHAT
            " instead. " SHOPIFY_HOW);
        return;
    }
    if (n == 32 && all_in(t, n, isxdigit)) {
        SAY(out, "This 32-character value is an API key or a Storefront API access token "
                 "(the storefront token only reads what shoppers see). Cadence needs the "
                 "" SHOPIFY_WHAT ". " SHOPIFY_HOW);
        return;
    }
    if (has_prefix(t, n, "pk_") || has_prefix(t, n, "sk_")) {
        SAY(out,
            "This starts with %.3s, so it is a Klaviyo or Postscript key, not a Shopify "
            "token. " SHOPIFY_HOW,
            (const char *)t);
        return;
    }
    SAY(out, "This is not a Shopify " SHOPIFY_WHAT "; " SHOPIFY_SHAPE ". " SHOPIFY_HOW);
}

#define POSTSCRIPT_HOW                                                                             \
    "In Postscript open Settings \xE2\x86\x92 API, create a Security Key Pair if there is none, "  \
    "and click Show under Private Key; it starts with sk_."
#define POSTSCRIPT_MIN 16

void postscript_key_check(const char *input, size_t len, struct provider_key_result *out)
{
    const unsigned char *t;
    size_t n;
    if (tidy(input, len, "Postscript private API key", out, &t, &n))
        return;
    if (has_prefix(t, n, "pk_")) {
        out->verdict = PROVIDER_KEY_WRONG_KIND;
        SAY(out, "This is the Public Key of your Postscript key pair (it starts with pk_); it "
                 "cannot authenticate. Cadence needs the Private Key from the same pair. "
                 "" POSTSCRIPT_HOW);
        return;
    }
    if (has_prefix(t, n, "sk_partner_")) {
        out->verdict = PROVIDER_KEY_WRONG_KIND;
        SAY(out, "This is a Postscript partner key (sk_partner_), issued to integration partners. "
                 "Cadence needs your shop's own Private Key. " POSTSCRIPT_HOW);
        return;
    }
    if (!has_prefix(t, n, "sk_")) {
        out->verdict = PROVIDER_KEY_WRONG_KIND;
        SAY(out, "This does not start with sk_, so it is not a Postscript private key. "
                 "" POSTSCRIPT_HOW);
        return;
    }
    if (has_space(t, n) || !all_in(t + 3, n - 3, isalnum)) {
        out->verdict = PROVIDER_KEY_BAD_CHARS;
        SAY(out, "After sk_ a Postscript private key has only letters and digits, but this has "
                 "spaces or symbols. Copy it again from Postscript.");
        return;
    }
    if (n - 3 < POSTSCRIPT_MIN) {
        out->verdict = PROVIDER_KEY_TOO_SHORT;
        SAY(out,
            "You pasted %zu characters; a Postscript private key is sk_ followed by more than "
            "that. Part of the key was not copied: click Show and copy it again in full.",
            n);
        return;
    }
    out->verdict = PROVIDER_KEY_OK;
    SAY(out, "This looks like a Postscript private API key.");
}

#define ATTENTIVE_HOW                                                                              \
    "In Attentive open Integrations \xE2\x86\x92 Manage Custom Apps (App Marketplace "             \
    "\xE2\x86\x92 "                                                                                \
    "Built by you), create an app for Cadence and copy its API key; Attentive shows it once."
#define ATTENTIVE_MIN 16
#define ATTENTIVE_MAX 512

static int is_token_char(int c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '+' || c == '/' ||
           c == '=';
}

void attentive_key_check(const char *input, size_t len, struct provider_key_result *out)
{
    const unsigned char *t;
    size_t n;
    if (tidy(input, len, "Attentive API key", out, &t, &n))
        return;
    if (n >= 7 && strncasecmp((const char *)t, "bearer ", 7) == 0) {
        out->verdict = PROVIDER_KEY_BAD_CHARS;
        SAY(out, "Paste only the API key, without the word Bearer in front of it.");
        return;
    }
    if (has_prefix(t, n, "pk_") || has_prefix(t, n, "sk_") ||
        (has_prefix(t, n, "shp") && n > 5 && t[5] == '_')) {
        out->verdict = PROVIDER_KEY_WRONG_KIND;
        SAY(out,
            "This starts with %.3s, so it is a Klaviyo, Postscript or Shopify credential, not an "
            "Attentive API key. " ATTENTIVE_HOW,
            (const char *)t);
        return;
    }
    if (!all_in(t, n, is_token_char)) {
        out->verdict = PROVIDER_KEY_BAD_CHARS;
        SAY(out, "An Attentive API key has no spaces, line breaks or symbols other than "
                 "- _ . ~ + / =. Copy it again from Attentive.");
        return;
    }
    if (n < ATTENTIVE_MIN) {
        out->verdict = PROVIDER_KEY_TOO_SHORT;
        SAY(out,
            "You pasted %zu characters, too few for an Attentive API key. Part of it was not "
            "copied: copy it again in full. " ATTENTIVE_HOW,
            n);
        return;
    }
    if (n > ATTENTIVE_MAX) {
        out->verdict = PROVIDER_KEY_TOO_LONG;
        SAY(out,
            "You pasted %zu characters, more than an Attentive API key has. Copy just the "
            "key.",
            n);
        return;
    }
    out->verdict = PROVIDER_KEY_OK;
    SAY(out, "This looks like an Attentive API key.");
}

void provider_key_check(enum provider p, const char *input, size_t len,
                        struct provider_key_result *out)
{
    switch (p) {
    case PROVIDER_SHOPIFY:
        shopify_token_check(input, len, out);
        return;
    case PROVIDER_POSTSCRIPT:
        postscript_key_check(input, len, out);
        return;
    case PROVIDER_ATTENTIVE:
        attentive_key_check(input, len, out);
        return;
    }
    memset(out, 0, sizeof *out);
    out->verdict = PROVIDER_KEY_WRONG_KIND;
    SAY(out, "unknown provider");
}
