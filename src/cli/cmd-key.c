/*
 * `cadence key ...`: set (secret from stdin only, never argv; --verify checks it with Klaviyo
 * before storing), show (metadata only), check (the format check of stdin), verify (the stored
 * key against Klaviyo). Keys never reach stdout or stderr; only last 4 and fingerprints do.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/err.h"
#include "common/secret.h"
#include "common/util.h"
#include "keyfmt/keyfmt.h"
#include "klaviyo/verify.h"
#include "providers/providers.h"
#include "tenant/tenant.h"

void cli_print_credential(const struct credential_info *c, bool json, bool first)
{
    char set[32] = "", verified[32] = "";
    if (c->set_ms)
        time_format_ms(c->set_ms, set, sizeof set);
    if (c->verified_ms)
        time_format_ms(c->verified_ms, verified, sizeof verified);
    if (json) {
        printf("%s{\"kind\":\"%s\",\"state\":\"%s\",\"version\":%d,\"last4\":", first ? "" : ",",
               cred_kind_name(c->kind), key_state_name(c->state), c->version);
        cli_json_str(stdout, c->last4);
        printf(",\"fingerprint\":");
        cli_json_str(stdout, c->fingerprint);
        printf(",\"set\":");
        cli_json_str(stdout, set);
        printf(",\"verified\":");
        cli_json_str(stdout, verified);
        printf(",\"account_id\":");
        cli_json_str(stdout, c->account_id);
        printf(",\"account_name\":");
        cli_json_str(stdout, c->account_name);
        printf(",\"scopes\":%s,\"detail\":", c->scopes[0] ? c->scopes : "null");
        cli_json_str(stdout, c->detail);
        printf("}");
        return;
    }
    printf("%-10s %-10s", cred_kind_name(c->kind), key_state_name(c->state));
    if (c->has_secret)
        printf(" …%s  fingerprint %s  set %s", c->last4, c->fingerprint, set);
    if (c->verified_ms)
        printf("  verified %s", verified);
    if (c->account_name[0])
        printf("  account %s (%s)", c->account_name, c->account_id);
    if (c->detail[0])
        printf("  (%s)", c->detail);
    printf("\n");
}

static void print_verify_result(const struct klaviyo_verify_result *r)
{
    if (r->status == KLAVIYO_VERIFY_OK)
        printf("%s\n", r->message);
    else
        fprintf(stderr, "cadence: the key was not verified (%s): %s\n",
                klaviyo_verify_status_name(r->status), r->message);
    if (r->status == KLAVIYO_VERIFY_REJECTED)
        fprintf(stderr, "cadence: %s\n", KEYFMT_POSTSCRIPT_NOTE);
    if (!r->account_id[0])
        return;
    printf("  account    %s  timezone %s  currency %s  public key %s%s\n", r->account_id,
           r->timezone, r->currency, r->public_key, r->test_account ? "  (test account)" : "");
    for (size_t i = 0; i < KLAVIYO_SCOPE_FAMILIES; i++) {
        const struct klaviyo_scope_check *s = &r->scopes[i];
        if (s->read == KLAVIYO_READ_OK)
            printf("  %-10s read ok       write confirmed on first write\n", s->family);
        else if (s->read == KLAVIYO_READ_MISSING)
            printf("  %-10s read MISSING  (grant %s:read and %s:write)\n", s->family, s->family,
                   s->family);
        else
            printf("  %-10s read %-8s %s\n", s->family, klaviyo_scope_read_name(s->read),
                   s->detail);
    }
}

/* Records what a verification that did not succeed means. For the stored key (`stored`): one
 * that had worked and is now rejected was revoked, one that never worked is invalid. For a
 * candidate from `key set --verify`, only the attempt is recorded, and only when no working key
 * is in place (a rejected candidate says nothing about the stored key). Unreachable, challenged
 * or otherwise transient checks say nothing about any key and change nothing. */
static int record_failed_verification(struct cli_ctx *ctx, const char *id,
                                      const struct klaviyo_verify_result *r, bool stored)
{
    if (r->status != KLAVIYO_VERIFY_REJECTED && r->status != KLAVIYO_VERIFY_BAD_FORMAT &&
        r->status != KLAVIYO_VERIFY_MISSING_SCOPES)
        return CAD_OK;
    struct credential_info cur;
    int rc = credential_info(ctx->st, id, CRED_KLAVIYO, &cur);
    if (rc)
        return rc;
    if (stored && r->status == KLAVIYO_VERIFY_REJECTED &&
        (cur.state == KEY_VERIFIED || cur.state == KEY_REVOKED))
        return credential_set_state(ctx->st, ctx->actor, id, CRED_KLAVIYO, KEY_REVOKED,
                                    "key.revoked", "rejected by Klaviyo (401, re-checked)");
    /* A working key is not demoted by a failed attempt; nor is a stored key not yet verified
     * by a rejected candidate, since its state describes that key. */
    if (cur.state == KEY_VERIFIED || (!stored && cur.state == KEY_UNVERIFIED))
        return CAD_OK;
    char detail[300];
    snprintf(detail, sizeof detail, "%s%s",
             r->status == KLAVIYO_VERIFY_REJECTED     ? "rejected by Klaviyo (401, re-checked)"
             : r->status == KLAVIYO_VERIFY_BAD_FORMAT ? "bad format"
                                                      : "missing scopes: ",
             r->status == KLAVIYO_VERIFY_MISSING_SCOPES ? r->missing : "");
    return credential_set_state(ctx->st, ctx->actor, id, CRED_KLAVIYO, KEY_INVALID, "key.invalid",
                                detail);
}

static int store_verified(struct cli_ctx *ctx, const char *id,
                          const struct klaviyo_verify_result *r)
{
    char *scopes = klaviyo_verify_scopes_json(r);
    if (!scopes)
        return cad_fail(CAD_ENOMEM, "out of memory");
    int rc = credential_mark_verified(ctx->st, ctx->actor, id, CRED_KLAVIYO, r->account_id,
                                      r->organization_name, scopes);
    free(scopes);
    return rc;
}

/* ---- Shopify, Postscript, Attentive (providers/providers.h) ---- */

static void print_provider_result(enum cred_kind kind, const struct provider_verify_result *r)
{
    if (r->status == PROVIDER_VERIFY_OK)
        printf("%s\n", r->message);
    else
        fprintf(stderr, "cadence: the %s credential was not verified (%s): %s\n",
                cred_kind_name(kind), provider_verify_status_name(r->status), r->message);
    if (r->scopes[0] || r->missing[0])
        printf("  scopes     %s%s%s\n", r->scopes[0] ? r->scopes : "(none)",
               r->missing[0] ? "  missing " : "", r->missing);
    if (r->warning[0])
        printf("  warning    %s\n", r->warning);
}

static enum provider provider_of(enum cred_kind kind)
{
    return kind == CRED_SHOPIFY      ? PROVIDER_SHOPIFY
           : kind == CRED_POSTSCRIPT ? PROVIDER_POSTSCRIPT
                                     : PROVIDER_ATTENTIVE;
}

static int print_stored(struct cli_ctx *ctx, const char *id, enum cred_kind kind, bool verified)
{
    struct credential_info info;
    if (credential_info(ctx->st, id, kind, &info) != CAD_OK)
        return cli_fail("cannot read back the key's metadata");
    printf("Stored the %s key for %s: …%s, fingerprint %s, version %d (%s)\n", cred_kind_name(kind),
           id, info.last4, info.fingerprint, info.version, verified ? "verified" : "unverified");
    return 0;
}

/* A Shopify token or SMS key: checked, verified (with --verify) and sealed by
 * provider_credential_set(), the path the onboarding page's Step 4 takes too. */
static int set_provider(struct cli_ctx *ctx, vault *v, const char *id, enum cred_kind kind,
                        const char *shop, const cad_secret *raw, bool verify)
{
    struct provider_set_result r;
    provider_credential_set(ctx->st, v, ctx->actor, id, provider_of(kind), shop, raw, verify, &r);
    switch (r.stage) {
    case PROVIDER_SET_BAD_FORMAT:
        fprintf(stderr, "cadence: the %s credential was not stored: %s\n", cred_kind_name(kind),
                r.format.message);
        return 1;
    case PROVIDER_SET_NOT_VERIFIED:
        print_provider_result(kind, &r.verify);
        fprintf(stderr, "cadence: the %s credential was not stored\n", cred_kind_name(kind));
        if (r.record_rc != CAD_OK)
            cli_fail("cannot record the failed attempt");
        return 1;
    case PROVIDER_SET_FAILED:
        return cli_fail("cannot store the key");
    case PROVIDER_SET_STORED:
        break;
    }
    if (verify)
        print_provider_result(kind, &r.verify);
    return print_stored(ctx, id, kind, verify);
}

static int cmd_key_set_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"kind", required_argument, NULL, 'k'},
                                         {"verify", no_argument, NULL, 'v'},
                                         {"shop", required_argument, NULL, 's'},
                                         {0}};
    enum cred_kind kind = CRED_KLAVIYO;
    bool verify = false;
    const char *shop_arg = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'v') {
            verify = true;
            continue;
        }
        if (c == 's') {
            shop_arg = optarg;
            continue;
        }
        if (c != 'k')
            return cli_usage(&cmd_key_set_entry, "unknown option %s", argv[optind - 1]);
        if (cred_kind_parse(optarg, &kind) != CAD_OK)
            return cli_usage(&cmd_key_set_entry, "%s", cad_errmsg());
    }
    if ((kind == CRED_SHOPIFY) != (shop_arg != NULL))
        return cli_usage(&cmd_key_set_entry, kind == CRED_SHOPIFY
                                                 ? "a Shopify token needs --shop DOMAIN"
                                                 : "--shop goes with --kind shopify only");
    struct shopify_domain_result shop = {0};
    if (shop_arg && shopify_domain_normalise(shop_arg, &shop) != CAD_OK) {
        fprintf(stderr, "cadence: the token was not stored: %s\n", shop.message);
        return 1;
    }
    if (optind != argc - 1)
        return cli_usage(&cmd_key_set_entry,
                         "give exactly one TENANT; the key is read from standard input, never "
                         "from the command line");
    const char *id = argv[optind];
    vault *v = cli_vault(ctx);
    if (!v)
        return 1;
    struct tenant t;
    if (tenant_get(ctx->st, id, &t) != CAD_OK)
        return cli_fail("cannot set the key");
    if (isatty(STDIN_FILENO))
        fprintf(stderr, "Paste the %s key and press Enter, then Ctrl-D:\n", cred_kind_name(kind));
    cad_secret *raw = NULL, *key = NULL;
    if (secret_read_fd(&raw, STDIN_FILENO, SECRET_MAX) != CAD_OK)
        return cli_fail("cannot read the key");
    int rc = 1;
    if (kind != CRED_KLAVIYO) {
        rc = set_provider(ctx, v, id, kind, shop.domain, raw, verify);
        goto out;
    }
    struct keyfmt_result r;
    keyfmt_check((const char *)secret_data(raw), secret_len(raw), &r);
    if (r.verdict != KEYFMT_OK) {
        fprintf(stderr, "cadence: the key was not stored: %s\n", r.message);
        struct credential_info cur;
        /* Record the failed attempt, unless a key that may still work is stored: its state
         * describes that key, which stays as it is. */
        if (credential_info(ctx->st, id, kind, &cur) == CAD_OK && cur.state != KEY_VERIFIED &&
            cur.state != KEY_UNVERIFIED &&
            credential_set_state(ctx->st, ctx->actor, id, kind, KEY_INVALID, "key.invalid",
                                 keyfmt_verdict_name(r.verdict)) != CAD_OK)
            cli_fail("cannot record the failed attempt");
        goto out;
    }
    if (secret_from(&key, secret_data(raw) + r.start, r.len) != CAD_OK) {
        cli_fail("cannot set the key");
        goto out;
    }
    struct klaviyo_verify_result vr;
    if (verify) {
        /* Verified before anything is stored: a rejected key never replaces a stored one. */
        klaviyo_verify_key(ctx->st, NULL, id, ctx->actor, key, &vr);
        if (vr.status != KLAVIYO_VERIFY_OK) {
            print_verify_result(&vr);
            fprintf(stderr, "cadence: the key was not stored\n");
            if (record_failed_verification(ctx, id, &vr, false) != CAD_OK)
                cli_fail("cannot record the failed attempt");
            goto out;
        }
    }
    if (credential_store(ctx->st, v, ctx->actor, id, kind, key,
                         verify ? KEY_VERIFIED : KEY_UNVERIFIED, NULL) != CAD_OK) {
        cli_fail("cannot store the key");
        goto out;
    }
    if (verify && store_verified(ctx, id, &vr) != CAD_OK) {
        cli_fail("the key was stored but its verification could not be recorded");
        goto out;
    }
    if (verify)
        print_verify_result(&vr);
    rc = print_stored(ctx, id, kind, verify);
out:
    secret_free(raw);
    secret_free(key);
    return rc;
}

const struct cmd_entry cmd_key_set_entry = {
    .group = "key",
    .name = "set",
    .usage = "TENANT [--kind klaviyo|shopify|postscript|attentive] [--shop DOMAIN] [--verify]",
    .help = "Reads a key from standard input (never from the command line, where other users and\n"
            "shell history could see it), checks its format (Klaviyo keys), seals it under the\n"
            "tenant's data key and records key.set in the audit log. A key that fails the format\n"
            "check is not stored, and a key already stored is kept.\n"
            "\n"
            "A Shopify Admin API access token (shpat_...) needs --shop: the store's address\n"
            "(name.myshopify.com, its admin URL or the bare name), recorded with the token.\n"
            "\n"
            "--verify first verifies the key with its provider, as `cadence key verify` does, and\n"
            "stores it only when it is verified; a rejected key never replaces the stored one.\n"
            "Without --verify the key is stored unverified.",
    .exec = cmd_key_set_exec,
};

static int cmd_key_show_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"kind", required_argument, NULL, 'k'}, {"json", no_argument, NULL, 'j'}, {0}};
    int only = -1;
    bool json = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        enum cred_kind kind;
        if (c == 'j')
            json = true;
        else if (c == 'k' && cred_kind_parse(optarg, &kind) == CAD_OK)
            only = (int)kind;
        else
            return cli_usage(&cmd_key_show_entry, "%s", c == 'k' ? cad_errmsg() : "unknown option");
    }
    if (optind != argc - 1)
        return cli_usage(&cmd_key_show_entry, "give exactly one TENANT");
    store *st = cli_store(ctx);
    if (!st)
        return 1;
    if (json)
        printf("[");
    bool first = true;
    for (int k = 0; k < CRED_KIND_COUNT; k++) {
        if (only >= 0 && k != only)
            continue;
        struct credential_info info;
        if (credential_info(st, argv[optind], (enum cred_kind)k, &info) != CAD_OK)
            return cli_fail("cannot show the key");
        cli_print_credential(&info, json, first);
        first = false;
    }
    if (json)
        printf("]\n");
    return 0;
}

const struct cmd_entry cmd_key_show_entry = {
    .group = "key",
    .name = "show",
    .usage = "TENANT [--kind KIND] [--json]",
    .help = "Shows each credential's state, last 4 characters, keyed fingerprint, when it was set\n"
            "and verified, and the account it belongs to. Never the key.",
    .exec = cmd_key_show_exec,
};

static int cmd_key_check_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    bool json = argc == 2 && strcmp(argv[1], "--json") == 0;
    if (argc > 1 && !json)
        return cli_usage(&cmd_key_check_entry, "the key is read from standard input");
    cad_secret *raw;
    if (secret_read_fd(&raw, STDIN_FILENO, SECRET_MAX) != CAD_OK)
        return cli_fail("cannot read the key");
    struct keyfmt_result r;
    keyfmt_check((const char *)secret_data(raw), secret_len(raw), &r);
    secret_free(raw);
    if (json) {
        printf("{\"verdict\":\"%s\",\"ok\":%s,\"message\":", keyfmt_verdict_name(r.verdict),
               r.verdict == KEYFMT_OK ? "true" : "false");
        cli_json_str(stdout, r.message);
        printf("}\n");
    } else {
        printf("%s: %s\n", keyfmt_verdict_name(r.verdict), r.message);
    }
    return r.verdict == KEYFMT_OK ? 0 : 1;
}

const struct cmd_entry cmd_key_check_entry = {
    .group = "key",
    .name = "check",
    .usage = "[--json] < key",
    .help = "Checks the format of a Klaviyo private key read from standard input and prints the\n"
            "verdict (ok, empty, too_short, too_long, public_key, masked, wrong_prefix,\n"
            "bad_chars) with what to do. Exit 0 when the format is right. Nothing is stored.",
    .exec = cmd_key_check_exec,
};

static int verify_provider(struct cli_ctx *ctx, vault *v, const char *id, enum cred_kind kind)
{
    struct provider_verify_result r;
    int rc = provider_credential_verify(ctx->st, v, ctx->actor, id, provider_of(kind), &r);
    if (rc != CAD_OK && r.status == PROVIDER_VERIFY_OK)
        return cli_fail("the credential was verified but the result could not be stored");
    if (rc != CAD_OK && r.status == PROVIDER_VERIFY_FAILED && !r.message[0])
        return cli_fail("cannot verify the credential");
    print_provider_result(kind, &r);
    if (r.status == PROVIDER_VERIFY_OK)
        return 0;
    if (r.status == PROVIDER_VERIFY_UNREACHABLE || r.status == PROVIDER_VERIFY_TRANSIENT ||
        r.status == PROVIDER_VERIFY_FAILED)
        fprintf(stderr, "cadence: the credential's state was not changed; try again later\n");
    return 1;
}

static int cmd_key_verify_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"kind", required_argument, NULL, 'k'}, {0}};
    enum cred_kind kind = CRED_KLAVIYO;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c != 'k')
            return cli_usage(&cmd_key_verify_entry, "unknown option %s", argv[optind - 1]);
        if (cred_kind_parse(optarg, &kind) != CAD_OK)
            return cli_usage(&cmd_key_verify_entry, "%s", cad_errmsg());
    }
    if (optind != argc - 1)
        return cli_usage(&cmd_key_verify_entry, "give exactly one TENANT");
    const char *id = argv[optind];
    vault *v = cli_vault(ctx);
    if (!v)
        return 1;
    struct tenant t;
    if (tenant_get(ctx->st, id, &t) != CAD_OK)
        return cli_fail("cannot verify the key");
    if (kind != CRED_KLAVIYO)
        return verify_provider(ctx, v, id, kind);
    cad_secret *key = NULL;
    if (credential_open(ctx->st, v, id, CRED_KLAVIYO, &key) != CAD_OK)
        return cli_fail("cannot verify the key");
    struct klaviyo_verify_result r;
    klaviyo_verify_key(ctx->st, NULL, id, ctx->actor, key, &r);
    secret_free(key);
    print_verify_result(&r);
    if (r.status == KLAVIYO_VERIFY_OK) {
        if (store_verified(ctx, id, &r) != CAD_OK)
            return cli_fail("the key was verified but the result could not be stored");
        return 0;
    }
    if (record_failed_verification(ctx, id, &r, true) != CAD_OK)
        cli_fail("cannot record the result");
    if (r.status == KLAVIYO_VERIFY_UNREACHABLE || r.status == KLAVIYO_VERIFY_CHALLENGE ||
        r.status == KLAVIYO_VERIFY_TRANSIENT)
        fprintf(stderr, "cadence: the key's state was not changed; try again later\n");
    return 1;
}

const struct cmd_entry cmd_key_verify_entry = {
    .group = "key",
    .name = "verify",
    .usage = "TENANT [--kind klaviyo|shopify|postscript|attentive]",
    .help =
        "Verifies the tenant's stored Klaviyo key with Klaviyo: checks its format, reads the\n"
        "account (GET /api/accounts: id, organization name, timezone, currency, public key)\n"
        "and makes one cheap read per scope family on the help page (lists, segments,\n"
        "templates, campaigns, flows, profiles, forms, images, catalogs, coupons, webhooks,\n"
        "tags). Write access cannot be tested without writing and is confirmed on the first\n"
        "write. Every call is in the audit log. On success the key is marked verified with\n"
        "the account and the per-scope results; a rejected key is marked revoked (if it had\n"
        "worked) or invalid; a key lacking scopes is marked invalid unless it was verified.\n"
        "When Klaviyo cannot be reached the key's state is left as it is.\n"
        "Exit 0 only when the key is verified.\n"
        "\n"
        "\n"
        "--kind shopify reads the shop's name and the token's access scopes through the Admin\n"
        "GraphQL API (version " SHOPIFY_API_VERSION "): read_products is required, and write\n"
        "scopes are accepted with a least-privilege warning. --kind postscript calls\n"
        "GET /api/v2/me and --kind attentive GET /v1/me with the key as bearer token.\n"
        "\n"
        "Environment: CADENCE_KLAVIYO_URL (default https://a.klaviyo.com),\n"
        "CADENCE_KLAVIYO_CONNECT_TIMEOUT_MS, CADENCE_KLAVIYO_TIMEOUT_MS; CADENCE_SHOPIFY_URL\n"
        "(default https://<shop>), CADENCE_POSTSCRIPT_URL (default https://api.postscript.io),\n"
        "CADENCE_ATTENTIVE_URL (default https://api.attentivemobile.com),\n"
        "CADENCE_PROVIDER_TIMEOUT_MS.",
    .exec = cmd_key_verify_exec,
};
