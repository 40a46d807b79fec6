/* `cadence audit ...`: list, verify the chain, export as CSV. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "cli/cli.h"
#include "common/err.h"
#include "common/util.h"

/* Parses the filter options shared by list and export; returns 0, or an exit code. */
static int parse_filter(const struct cmd_entry *e, int argc, char **argv, struct audit_filter *f,
                        bool *json, bool *csv)
{
    static const struct option opts[] = {
        {"tenant", required_argument, NULL, 't'}, {"actor", required_argument, NULL, 'a'},
        {"action", required_argument, NULL, 'A'}, {"since", required_argument, NULL, 's'},
        {"until", required_argument, NULL, 'u'},  {"status", required_argument, NULL, 'S'},
        {"limit", required_argument, NULL, 'l'},  {"json", no_argument, NULL, 'j'},
        {"csv", no_argument, NULL, 'c'},          {0}};
    int c;
    char *end;
    optind = 1;
    opterr = 0;
    memset(f, 0, sizeof *f);
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            f->tenant_id = optarg;
            break;
        case 'a':
            f->actor = optarg;
            break;
        case 'A':
            f->action = optarg;
            break;
        case 's':
        case 'u':
            if (time_parse(optarg, c == 's' ? &f->since_ms : &f->until_ms) != CAD_OK)
                return cli_usage(e, "%s", cad_errmsg());
            break;
        case 'S':
            f->status = (int)strtol(optarg, &end, 10);
            if (*end || f->status < 100 || f->status > 599)
                return cli_usage(e, "--status takes an HTTP status code such as 401");
            break;
        case 'l':
            f->limit = (int)strtol(optarg, &end, 10);
            if (*end || f->limit <= 0)
                return cli_usage(e, "--limit takes a positive number");
            break;
        case 'j':
            if (!json)
                return cli_usage(e, "unknown option --json");
            *json = true;
            break;
        case 'c':
            if (!csv)
                return cli_usage(e, "unknown option --csv");
            *csv = true;
            break;
        default:
            return cli_usage(e, "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage(e, "unexpected argument \"%s\"", argv[optind]);
    return 0;
}

struct print_ctx {
    bool json;
    int n;
};

static int print_record(void *p, const struct audit_record *r)
{
    struct print_ctx *pc = p;
    if (pc->json)
        return audit_print_json(r, stdout);
    char ts[32], status[16] = "";
    time_format_ms(r->ts_ms, ts, sizeof ts);
    if (r->method && *r->method)
        snprintf(status, sizeof status, "%d", r->status);
    if (r->method && *r->method && r->status < 0)
        snprintf(status, sizeof status, "no-response");
    else if (r->method && *r->method && r->status == 0)
        snprintf(status, sizeof status, "failed");
    if (pc->n++ == 0)
        printf("%-6s %-24s %-16s %-24s %-14s %s\n", "SEQ", "TIME", "TENANT", "ACTOR", "ACTION",
               "DETAIL");
    printf("%-6lld %-24s %-16s %-24s %-14s", (long long)r->seq, ts,
           r->tenant_id && *r->tenant_id ? r->tenant_id : "-", r->actor, r->action);
    if (r->method && *r->method)
        printf(" %s %s -> %s %lldms", r->method, r->endpoint, status, (long long)r->duration_ms);
    if (r->detail && *r->detail)
        printf(" %s", r->detail);
    printf("\n");
    return 0;
}

static int cmd_audit_list_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    struct audit_filter f;
    struct print_ctx pc = {0};
    int rc = parse_filter(&cmd_audit_list_entry, argc, argv, &f, &pc.json, NULL);
    if (rc)
        return rc;
    store *st = cli_store(ctx);
    if (!st)
        return 1;
    if (audit_list(st, &f, print_record, &pc) != CAD_OK)
        return cli_fail("cannot list the audit log");
    return 0;
}

const struct cmd_entry cmd_audit_list_entry = {
    .group = "audit",
    .name = "list",
    .usage = "[--tenant T] [--actor A] [--action X] [--since T] [--until T] [--json]",
    .help = "Lists audit records, oldest first. Filters: --tenant, --actor, --action (exact, or a\n"
            "prefix ending in * such as 'klaviyo.*'), --since/--until (2026-11-26 or\n"
            "2026-11-26T19:22:55Z), --status CODE, --limit N.\n\n"
            "A call to Klaviyo shows its method, endpoint, response code and duration;\n"
            "\"no-response\" means the request left but no answer was recorded (a crash, say).\n"
            "--json prints one JSON object per line.",
    .exec = cmd_audit_list_exec,
};

static int cmd_audit_verify_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return cli_usage(&cmd_audit_verify_entry, "verify takes no arguments");
    store *st = cli_store(ctx);
    if (!st)
        return 1;
    struct audit_verify_result r;
    int rc = audit_verify(st, &r);
    if (rc != CAD_OK && rc != CAD_ECORRUPT)
        return cli_fail("cannot verify the audit log");
    if (r.ok) {
        printf("Audit log intact: %lld records, chain verified\n", (long long)r.records);
        return 0;
    }
    printf("Audit log TAMPERED at record %lld: %s (%lld records checked)\n", (long long)r.first_bad,
           r.reason, (long long)r.records);
    return 1;
}

const struct cmd_entry cmd_audit_verify_entry = {
    .group = "audit",
    .name = "verify",
    .usage = "",
    .help = "Walks the hash chain and names the first record that was altered, removed or\n"
            "reordered, or a truncated tail. Exit 0 when intact, 1 otherwise.",
    .exec = cmd_audit_verify_exec,
};

static int cmd_audit_export_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    struct audit_filter f;
    bool csv = false;
    int rc = parse_filter(&cmd_audit_export_entry, argc, argv, &f, NULL, &csv);
    if (rc)
        return rc;
    if (!csv)
        return cli_usage(&cmd_audit_export_entry, "give the format: --csv");
    store *st = cli_store(ctx);
    if (!st)
        return 1;
    if (audit_export_csv(st, &f, stdout) != CAD_OK)
        return cli_fail("cannot export the audit log");
    return 0;
}

const struct cmd_entry cmd_audit_export_entry = {
    .group = "audit",
    .name = "export",
    .usage = "--csv [--tenant T] [--since TIME] [...list filters]",
    .help = "Writes the audit log (filtered like audit list) as CSV to standard output.",
    .exec = cmd_audit_export_exec,
};
