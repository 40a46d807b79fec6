/*
 * `cadence key ...`: set (secret from stdin only, never argv), show (metadata only), check (the
 * format check of stdin). Keys never reach stdout or stderr; only last 4 and fingerprints do.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/err.h"
#include "common/secret.h"
#include "common/util.h"
#include "keyfmt/keyfmt.h"
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

static int cmd_key_set_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"kind", required_argument, NULL, 'k'}, {0}};
    enum cred_kind kind = CRED_KLAVIYO;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c != 'k')
            return cli_usage(&cmd_key_set_entry, "unknown option %s", argv[optind - 1]);
        if (cred_kind_parse(optarg, &kind) != CAD_OK)
            return cli_usage(&cmd_key_set_entry, "%s", cad_errmsg());
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
    if (kind == CRED_KLAVIYO) {
        struct keyfmt_result r;
        keyfmt_check((const char *)secret_data(raw), secret_len(raw), &r);
        if (r.verdict != KEYFMT_OK) {
            fprintf(stderr, "cadence: the key was not stored: %s\n", r.message);
            struct credential_info cur;
            /* Record the failed attempt, unless a key that may still work is stored: its state
             * describes that key, which stays as it is. */
            if (credential_info(ctx->st, id, kind, &cur) == CAD_OK &&
                cur.state != KEY_VERIFIED && cur.state != KEY_UNVERIFIED &&
                credential_set_state(ctx->st, ctx->actor, id, kind, KEY_INVALID, "key.invalid",
                                     keyfmt_verdict_name(r.verdict)) != CAD_OK)
                cli_fail("cannot record the failed attempt");
            goto out;
        }
        if (secret_from(&key, secret_data(raw) + r.start, r.len) != CAD_OK) {
            cli_fail("cannot set the key");
            goto out;
        }
    } else {
        key = raw;
        raw = NULL;
    }
    if (credential_store(ctx->st, v, ctx->actor, id, kind, key, KEY_UNVERIFIED, NULL) != CAD_OK) {
        cli_fail("cannot store the key");
        goto out;
    }
    struct credential_info info;
    if (credential_info(ctx->st, id, kind, &info) != CAD_OK) {
        cli_fail("cannot read back the key's metadata");
        goto out;
    }
    printf("Stored the %s key for %s: …%s, fingerprint %s, version %d (unverified)\n",
           cred_kind_name(kind), id, info.last4, info.fingerprint, info.version);
    rc = 0;
out:
    secret_free(raw);
    secret_free(key);
    return rc;
}

const struct cmd_entry cmd_key_set_entry = {
    .group = "key",
    .name = "set",
    .usage = "TENANT [--kind klaviyo|shopify|postscript|attentive]",
    .help = "Reads a key from standard input (never from the command line, where other users and\n"
            "shell history could see it), checks its format (Klaviyo keys), seals it under the\n"
            "tenant's data key and records key.set in the audit log. A key that fails the format\n"
            "check is not stored, and a key already stored is kept.",
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
            return cli_usage(&cmd_key_show_entry, "%s",
                             c == 'k' ? cad_errmsg() : "unknown option");
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
