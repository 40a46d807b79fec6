/* `cadence tenant ...`: add, list, show, paid, defer, link. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/err.h"
#include "common/util.h"
#include "onboard/onboard.h"
#include "plan/plan.h"
#include "tenant/tenant.h"

static const struct option json_opts[] = {{"json", no_argument, NULL, 'j'}, {0}};

static int cmd_tenant_add_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'}, {"email", required_argument, NULL, 'e'}, {0}};
    const char *name = NULL, *email = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'n')
            name = optarg;
        else if (c == 'e')
            email = optarg;
        else
            return cli_usage(&cmd_tenant_add_entry, "unknown option %s", argv[optind - 1]);
    }
    if (optind < argc)
        return cli_usage(&cmd_tenant_add_entry, "unexpected argument \"%s\"", argv[optind]);
    if (!name)
        return cli_usage(&cmd_tenant_add_entry, "--name is required");
    vault *v = cli_vault(ctx);
    if (!v)
        return 1;
    char id[TENANT_ID_MAX];
    if (tenant_add(ctx->st, v, ctx->actor, name, email, id) != CAD_OK)
        return cli_fail("cannot add the tenant");
    printf("%s\n", id);
    return 0;
}

const struct cmd_entry cmd_tenant_add_entry = {
    .group = "tenant",
    .name = "add",
    .usage = "--name NAME [--email EMAIL]",
    .help = "Adds a tenant (one brand) and prints its id, a slug of the name (acme-outdoors).\n"
            "The tenant gets its own data key; its Klaviyo key starts in state none.",
    .exec = cmd_tenant_add_exec,
};

static bool parse_json_flag(const struct cmd_entry *e, int argc, char **argv, bool *json, int *rc)
{
    int c;
    optind = 1;
    opterr = 0;
    *json = false;
    while ((c = getopt_long(argc, argv, "", json_opts, NULL)) != -1) {
        if (c != 'j') {
            *rc = cli_usage(e, "unknown option %s", argv[optind - 1]);
            return false;
        }
        *json = true;
    }
    return true;
}

struct list_state {
    store *st;
    bool json;
    int n;
};

static int print_tenant_row(void *p, const struct tenant *t)
{
    struct list_state *ls = p;
    struct credential_info k;
    if (credential_info(ls->st, t->id, CRED_KLAVIYO, &k) != CAD_OK)
        return CAD_EIO;
    char created[32];
    time_format_ms(t->created_ms, created, sizeof created);
    if (ls->json) {
        printf("%s{\"id\":", ls->n ? "," : "");
        cli_json_str(stdout, t->id);
        printf(",\"name\":");
        cli_json_str(stdout, t->name);
        printf(",\"email\":");
        cli_json_str(stdout, t->email);
        printf(",\"created\":\"%s\",\"payment\":\"%s\",\"klaviyo_key\":\"%s\"}", created,
               t->paid ? "confirmed" : "awaiting", key_state_name(k.state));
    } else {
        if (ls->n == 0)
            printf("%-24s %-28s %-10s %-11s %s\n", "ID", "NAME", "PAYMENT", "KLAVIYO KEY",
                   "CREATED");
        printf("%-24s %-28.28s %-10s %-11s %.10s\n", t->id, t->name,
               t->paid ? "confirmed" : "awaiting", key_state_name(k.state), created);
    }
    ls->n++;
    return 0;
}

static int cmd_tenant_list_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    struct list_state ls = {0};
    int rc = 0;
    if (!parse_json_flag(&cmd_tenant_list_entry, argc, argv, &ls.json, &rc))
        return rc;
    if (optind < argc)
        return cli_usage(&cmd_tenant_list_entry, "unexpected argument \"%s\"", argv[optind]);
    if (!(ls.st = cli_store(ctx)))
        return 1;
    if (ls.json)
        printf("[");
    if (tenant_list(ls.st, print_tenant_row, &ls) != CAD_OK)
        return cli_fail("cannot list tenants");
    if (ls.json)
        printf("]\n");
    else if (ls.n == 0)
        printf("No tenants yet; add one with: cadence tenant add --name \"Brand\"\n");
    return 0;
}

const struct cmd_entry cmd_tenant_list_entry = {
    .group = "tenant",
    .name = "list",
    .usage = "[--json]",
    .help = "Lists tenants with their payment state and Klaviyo key state.",
    .exec = cmd_tenant_list_exec,
};

static int cmd_tenant_show_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    bool json;
    int rc = 0;
    if (!parse_json_flag(&cmd_tenant_show_entry, argc, argv, &json, &rc))
        return rc;
    if (optind != argc - 1)
        return cli_usage(&cmd_tenant_show_entry, "give exactly one TENANT");
    store *st = cli_store(ctx);
    if (!st)
        return 1;
    struct tenant t;
    if (tenant_get(st, argv[optind], &t) != CAD_OK)
        return cli_fail("cannot show the tenant");
    char created[32], paid[32] = "";
    time_format_ms(t.created_ms, created, sizeof created);
    if (t.paid)
        time_format_ms(t.payment_ms, paid, sizeof paid);
    if (json) {
        printf("{\"id\":");
        cli_json_str(stdout, t.id);
        printf(",\"name\":");
        cli_json_str(stdout, t.name);
        printf(",\"email\":");
        cli_json_str(stdout, t.email);
        printf(",\"created\":\"%s\",\"payment\":\"%s\",\"credentials\":[", created,
               t.paid ? "confirmed" : "awaiting");
    } else {
        printf("Tenant   %s\nName     %s\nEmail    %s\nCreated  %s\nPayment  %s%s%s\n", t.id,
               t.name, t.email[0] ? t.email : "-", created, t.paid ? "confirmed " : "awaiting",
               paid, "");
    }
    for (int k = 0; k < CRED_KIND_COUNT; k++) {
        struct credential_info c;
        if (credential_info(st, t.id, (enum cred_kind)k, &c) != CAD_OK)
            return cli_fail("cannot read credentials");
        cli_print_credential(&c, json, k == 0);
    }
    int64_t revoked_ms = 0, mail_id = 0;
    int paused = 0;
    if (plan_revocation_info(st, t.id, &revoked_ms, &mail_id, &paused) != CAD_OK)
        return cli_fail("cannot read the key's revocation state");
    char revoked[32] = "";
    if (revoked_ms)
        time_format_ms(revoked_ms, revoked, sizeof revoked);
    if (json) {
        printf("],\"revocation\":");
        if (revoked_ms)
            printf("{\"detected\":\"%s\",\"mail_id\":%lld}", revoked, (long long)mail_id);
        else
            printf("null");
        printf(",\"paused_plans\":%d}\n", paused);
    } else {
        if (revoked_ms && mail_id)
            printf("Revoked  Klaviyo rejected the key at %s; email to the brand queued (outbox "
                   "%lld)\n",
                   revoked, (long long)mail_id);
        else if (revoked_ms)
            printf("Revoked  Klaviyo rejected the key at %s; no email could be queued\n", revoked);
        printf("Paused   %d plan%s%s\n", paused, paused == 1 ? "" : "s",
               paused ? " (they resume once a new key is verified)" : "");
    }
    return 0;
}

const struct cmd_entry cmd_tenant_show_entry = {
    .group = "tenant",
    .name = "show",
    .usage = "TENANT [--json]",
    .help = "Shows a tenant and what may be shown of its credentials (never the keys).",
    .exec = cmd_tenant_show_exec,
};

static int one_tenant_arg(const struct cmd_entry *e, int argc, char **argv, const char **id)
{
    if (argc != 2 || argv[1][0] == '-')
        return cli_usage(e, "give exactly one TENANT");
    *id = argv[1];
    return 0;
}

static int cmd_tenant_paid_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *id = NULL;
    int rc = one_tenant_arg(&cmd_tenant_paid_entry, argc, argv, &id);
    if (rc)
        return rc;
    store *st = cli_store(ctx);
    if (!st)
        return 1;
    struct onboard_payment_result pr;
    if (onboard_payment_confirm(st, ctx->actor, id, &pr) != CAD_OK)
        return cli_fail("cannot confirm the payment");
    printf(pr.was_paid ? "Payment for %s was already confirmed\n" : "Payment for %s confirmed\n",
           id);
    if (pr.key_requested)
        printf("The brand chose to send its Klaviyo key later: a key request with a fresh "
               "onboarding link is queued to %s (outbox %lld; `cadence mail send` delivers it).\n",
               pr.to, (long long)pr.mail_id);
    else if (pr.no_address)
        printf("The brand chose to send its Klaviyo key later, but the tenant has no email "
               "address to ask it at; send it a link with `cadence tenant link %s`.\n",
               id);
    return 0;
}

const struct cmd_entry cmd_tenant_paid_entry = {
    .group = "tenant",
    .name = "paid",
    .usage = "TENANT",
    .help = "Confirms the tenant's payment (an admin's step). Idempotent. When the brand chose\n"
            "\"Continue without entering a key\", this also queues an email asking for the key\n"
            "with a fresh onboarding link (the old link stops working), as the console does.",
    .exec = cmd_tenant_paid_exec,
};

static int cmd_tenant_defer_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *id = NULL;
    int rc = one_tenant_arg(&cmd_tenant_defer_entry, argc, argv, &id);
    if (rc)
        return rc;
    store *st = cli_store(ctx);
    if (!st)
        return 1;
    if (credential_set_state(st, ctx->actor, id, CRED_KLAVIYO, KEY_DEFERRED, "key.defer",
                             "continued without entering a key") != CAD_OK)
        return cli_fail("cannot defer the key");
    printf("%s will give its Klaviyo key later (state deferred)\n", id);
    return 0;
}

const struct cmd_entry cmd_tenant_defer_entry = {
    .group = "tenant",
    .name = "defer",
    .usage = "TENANT",
    .help = "Records that the brand chose \"Continue without entering a key\" (state deferred),\n"
            "as the onboarding page's skip button does.",
    .exec = cmd_tenant_defer_exec,
};

static int cmd_tenant_link_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *id = NULL;
    int rc = one_tenant_arg(&cmd_tenant_link_entry, argc, argv, &id);
    if (rc)
        return rc;
    int64_t ttl;
    char base[512];
    if (onboard_link_ttl_from_env(&ttl) != CAD_OK ||
        onboard_public_url(base, sizeof base) != CAD_OK)
        return cli_fail("cannot issue a link");
    store *st = cli_store(ctx);
    if (!st)
        return 1;
    char token[ONBOARD_TOKEN_LEN + 1], until[32];
    int64_t expires;
    if (onboard_link_issue(st, ctx->actor, id, ttl, token, &expires) != CAD_OK)
        return cli_fail("cannot issue a link");
    time_format_ms(expires, until, sizeof until);
    printf("%s/onboard/%s\n", base, token);
    fprintf(stderr,
            "Onboarding link for %s, valid until %.16s UTC; any earlier link no longer "
            "works. Send it to the brand only.\n",
            id, until);
    memset(token, 0, sizeof token);
    return 0;
}

const struct cmd_entry cmd_tenant_link_entry = {
    .group = "tenant",
    .name = "link",
    .usage = "TENANT",
    .help = "Issues the brand's personal onboarding link and prints it (the URL alone on stdout).\n"
            "The link holds a random 256-bit token; only its SHA-256 is stored. It expires after\n"
            "$CADENCE_LINK_TTL_DAYS days (default 14), and issuing a new one revokes the old.\n"
            "The base URL is $CADENCE_PUBLIC_URL (default http://127.0.0.1:8080).",
    .exec = cmd_tenant_link_exec,
};
