/* `cadence serve`: the web server (brand onboarding, the help page, /healthz, /metrics) and the
 * background workers (outbox delivery, confirmed plans applied). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/err.h"
#include "tenant/tenant.h"
#include "web/web.h"
#include "worker/worker.h"

static int count_operator(void *ctx, const struct operator_info *o)
{
    (void)o;
    (*(int *)ctx)++;
    return 0;
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int cmd_serve_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'}, {"threads", required_argument, NULL, 't'}, {0}};
    struct web_config cfg;
    web_config_defaults(&cfg);
    cfg.data_dir = ctx->data_dir;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'l')
            cfg.listen = optarg;
        else if (c == 't' && parse_uint(optarg, 1, 256, &cfg.threads) == 0)
            continue;
        else if (c == 't')
            return cli_usage(&cmd_serve_entry, "--threads wants a number from 1 to 256");
        else
            return cli_usage(&cmd_serve_entry, "unknown option %s", argv[optind - 1]);
    }
    if (optind < argc)
        return cli_usage(&cmd_serve_entry, "unexpected argument \"%s\"", argv[optind]);
    char url[512];
    if (onboard_public_url(url, sizeof url) != CAD_OK)
        return cli_fail("cannot serve");
    store *st = cli_store(ctx);
    if (!st)
        return 1;
    int operators = 0;
    if (operator_list(st, count_operator, &operators) != CAD_OK)
        return cli_fail("cannot read operators");
    if (operators == 0)
        printf("No operators yet. Create the first admin with:\n"
               "  cadence operator add --email you@agency --role admin\n");
    fflush(stdout);
    struct worker_config wc;
    worker_pool *workers = NULL;
    if (worker_config_from_env(&wc, ctx->data_dir) != CAD_OK ||
        worker_start(&workers, &wc) != CAD_OK)
        return cli_fail("cannot start the background workers");
    cfg.workers = workers;
    int rc = web_serve(&cfg);
    if (rc != CAD_OK)
        cli_fail("cannot serve");
    if (worker_stop(workers) != CAD_OK) {
        /* An apply still running: end now, as a crash would; it resumes at the next start. */
        cli_fail("stopping");
        fflush(NULL);
        _exit(rc == CAD_OK ? 0 : 1);
    }
    return rc == CAD_OK ? 0 : 1;
}

const struct cmd_entry cmd_serve_entry = {
    .name = "serve",
    .usage = "[--listen HOST:PORT] [--threads N]",
    .help = "Serves the brands' onboarding pages (/onboard/<token>), the help page\n"
            "(/help/klaviyo), the operators' console (/admin), /healthz and /metrics. --listen "
            "defaults to 127.0.0.1:8080; port 0\n"
            "picks a free port. Prints \"listening on http://HOST:PORT\" once it accepts\n"
            "connections. SIGTERM or SIGINT stops accepting, lets requests in flight finish and\n"
            "exits 0.\n"
            "\n"
            "Environment: CADENCE_PUBLIC_URL (the base of onboarding links, default\n"
            "http://127.0.0.1:8080), CADENCE_VERIFY_PER_LINK (Verify attempts per link per 10\n"
            "minutes, default 5), CADENCE_VERIFY_PER_ADDRESS (per client address, default 20),\n"
            "CADENCE_KLAVIYO_URL (where keys are verified, default https://a.klaviyo.com).\n"
            "Console: CADENCE_CONSOLE_IDLE_MINUTES (default 30) and CADENCE_CONSOLE_MAX_HOURS\n"
            "(default 12) end sessions; CADENCE_LOGIN_MAX_FAILURES (per account, default 5) and\n"
            "CADENCE_LOGIN_PER_ADDRESS (default 20) failed sign-ins lock for\n"
            "CADENCE_LOGIN_LOCK_MINUTES (default 15). Cookies are Secure when\n"
            "CADENCE_PUBLIC_URL is https.\n"
            "\n"
            "Background work: the outbox is delivered every CADENCE_MAIL_INTERVAL_S seconds\n"
            "(default 5; 0 leaves it to `cadence mail send`). Plans confirmed in the console,\n"
            "and confirmed or interrupted plans found at start, are applied in the background:\n"
            "one plan per tenant at a time, CADENCE_PLAN_WORKERS tenants at once (default 4).\n"
            "Paused plans resume once the tenant's key is verified again (checked every\n"
            "CADENCE_WORKER_SCAN_S seconds, default 5). On SIGTERM, applies in progress get\n"
            "CADENCE_WORKER_STOP_S seconds (default 30) to end; after that the process exits\n"
            "and they resume at the next start. Every CADENCE_CATALOG_SYNC_INTERVAL_S seconds\n"
            "(default 0: never) the Shopify catalog of each tenant with a standing approval\n"
            "(`cadence catalog approve`) is synced and the sync's plan applied in the background.",
    .exec = cmd_serve_exec,
};
