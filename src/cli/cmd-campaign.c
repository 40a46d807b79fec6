/* `cadence campaign send`: sending a draft campaign is its own, separate confirmation. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/err.h"
#include "common/util.h"
#include "plan/plan.h"

static int cmd_campaign_send_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"at", required_argument, NULL, 'a'}, {"confirm", required_argument, NULL, 'c'}, {0}};
    const char *at = NULL, *code = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'a')
            at = optarg;
        else if (c == 'c')
            code = optarg;
        else
            return cli_usage(&cmd_campaign_send_entry, "unknown option %s", argv[optind - 1]);
    }
    if (argc - optind != 2)
        return cli_usage(&cmd_campaign_send_entry, "give TENANT and CAMPAIGN_NAME");
    const char *tenant = argv[optind], *name = argv[optind + 1];
    vault *v = cli_vault(ctx);
    if (!v)
        return 1;
    if (code) {
        if (at)
            return cli_usage(&cmd_campaign_send_entry,
                             "--at belongs to the first call; the code already carries the time");
        char msg[512];
        if (campaign_send_confirm(ctx->st, v, ctx->actor, tenant, name, code, msg, sizeof msg) !=
            CAD_OK)
            return cli_fail("the campaign was not sent");
        printf("Sent: %s\n", msg);
        return 0;
    }
    struct campaign_send_preview p;
    if (campaign_send_prepare(ctx->st, v, ctx->actor, tenant, name, at, &p) != CAD_OK)
        return cli_fail("cannot prepare the send");
    char exp[32];
    time_format_ms(p.expires_ms, exp, sizeof exp);
    printf("Campaign \"%s\" (%s) of %s\n  audience   %s\n  send time  %s\n\n"
           "Nothing has been sent. To send exactly this, within 15 minutes (until %s):\n"
           "  cadence campaign send %s \"%s\" --confirm %s\n",
           name, p.remote_id, tenant, p.audience, p.send_at, exp, tenant, name, p.code);
    return 0;
}

const struct cmd_entry cmd_campaign_send_entry = {
    .group = "campaign",
    .name = "send",
    .usage = "TENANT CAMPAIGN_NAME [--at TIME] | --confirm CODE",
    .help = "Plans push campaigns as drafts; sending one is this separate action. The first call\n"
            "shows the campaign's audience and send time (now, or --at TIME, e.g.\n"
            "2026-08-01T15:00:00Z) and prints a one-time code; the second, with --confirm CODE,\n"
            "sends or schedules it. Both are recorded in the audit log.",
    .exec = cmd_campaign_send_exec,
};
