/* `cadence plan ...`: create, show, list, cancel, confirm, apply, resume. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle/bundle.h"
#include "cli/cli.h"
#include "common/err.h"
#include "onboard/onboard.h"
#include "plan/plan.h"

static void print_line(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "%s\n", line);
}

/* Both print the plan as they read it: a catalog plan's 200,000 steps are never held at once. */
static int print_plan(store *st, const char *id, bool json)
{
    if ((json ? plan_print_json(st, id, NULL, stdout) : plan_print_text(st, id, stdout)) != CAD_OK)
        return cli_fail("cannot show the plan");
    return 0;
}

/* A step a partial apply left not done, with its error. */
static int print_not_done(void *ctx, const json_t *s)
{
    (void)ctx;
    const char *state = json_string_value(json_object_get(s, "state"));
    const char *err = json_string_value(json_object_get(s, "error"));
    if (state && strcmp(state, "done") != 0)
        printf("  step %lld %s %s \"%s\": %s: %s\n",
               (long long)json_integer_value(json_object_get(s, "seq")),
               json_string_value(json_object_get(s, "action")),
               json_string_value(json_object_get(s, "kind")),
               json_string_value(json_object_get(s, "name")), state, err ? err : "");
    return 0;
}

static int cmd_plan_create_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"prune", no_argument, NULL, 'p'}, {"json", no_argument, NULL, 'j'}, {0}};
    bool prune = false, json = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'p')
            prune = true;
        else if (c == 'j')
            json = true;
        else
            return cli_usage(&cmd_plan_create_entry, "unknown option %s", argv[optind - 1]);
    }
    if (argc - optind != 2)
        return cli_usage(&cmd_plan_create_entry, "give TENANT and BUNDLE_DIR");
    vault *v = cli_vault(ctx);
    if (!v)
        return 1;
    struct plan_create_options o = {.prune = prune, .actor = ctx->actor};
    char id[PLAN_ID_MAX];
    if (plan_create(ctx->st, v, argv[optind], argv[optind + 1], &o, print_line, NULL, id) != CAD_OK)
        return cli_fail("no plan was made");
    int rc = print_plan(ctx->st, id, json);
    if (!rc && !json)
        printf("\nNothing has been changed in Klaviyo. To apply exactly this plan:\n"
               "  cadence plan confirm %s --hash <the hash above> --operator EMAIL\n"
               "  cadence plan apply %s\n",
               id, id);
    return rc;
}

const struct cmd_entry cmd_plan_create_entry = {
    .group = "plan",
    .name = "create",
    .usage = "TENANT BUNDLE_DIR [--prune] [--json]",
    .help = "Loads the bundle (every problem is listed, nothing is planned while there is one),\n"
            "reads the tenant's Klaviyo account as it is, and stores an immutable plan: a step\n"
            "per asset (create, update, replace, delete, unchanged) with its diff, the calls it\n"
            "will make, its dependencies, the time Klaviyo's rate limits impose, and the plan's\n"
            "hash. Nothing is written to Klaviyo. --prune also deletes what Cadence pushed\n"
            "earlier and the bundle no longer has (never images: Klaviyo cannot delete them).\n"
            "--json prints one object with id, hash, status and steps (kind, name, action).\n"
            "Unconfirmed plans expire after $CADENCE_PLAN_TTL seconds (default 86400).",
    .exec = cmd_plan_create_exec,
};

static bool json_flag(const struct cmd_entry *e, int argc, char **argv, bool *json, int *rc)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {0}};
    int c;
    optind = 1;
    opterr = 0;
    *json = false;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c != 'j') {
            *rc = cli_usage(e, "unknown option %s", argv[optind - 1]);
            return false;
        }
        *json = true;
    }
    return true;
}

static int cmd_plan_show_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    bool json;
    int rc = 0;
    if (!json_flag(&cmd_plan_show_entry, argc, argv, &json, &rc))
        return rc;
    if (argc - optind != 1)
        return cli_usage(&cmd_plan_show_entry, "give exactly one plan ID");
    if (!cli_store(ctx))
        return 1;
    return print_plan(ctx->st, argv[optind], json);
}

const struct cmd_entry cmd_plan_show_entry = {
    .group = "plan",
    .name = "show",
    .usage = "ID [--json]",
    .help = "Shows a plan: its hash, status, the estimate, and every step with its diff and the\n"
            "calls it makes; after an apply, each step's state and any error.",
    .exec = cmd_plan_show_exec,
};

struct list_state {
    int n;
};

static int print_summary(void *ctx, const json_t *s)
{
    struct list_state *ls = ctx;
    if (ls->n++ == 0)
        printf("%-16s %-24s %-10s %-7s %-20s %s\n", "ID", "TENANT", "STATUS", "STEPS", "CREATED",
               "HASH");
    printf("%-16s %-24s %-10s %-7lld %-20.19s %.16s…\n",
           json_string_value(json_object_get(s, "id")),
           json_string_value(json_object_get(s, "tenant")),
           json_string_value(json_object_get(s, "status")),
           (long long)json_integer_value(json_object_get(s, "steps")),
           json_string_value(json_object_get(s, "created")),
           json_string_value(json_object_get(s, "hash")));
    return 0;
}

static int cmd_plan_list_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"tenant", required_argument, NULL, 't'}, {0}};
    const char *tenant = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 't')
            tenant = optarg;
        else
            return cli_usage(&cmd_plan_list_entry, "unknown option %s", argv[optind - 1]);
    }
    if (optind < argc)
        return cli_usage(&cmd_plan_list_entry, "unexpected argument \"%s\"", argv[optind]);
    if (!cli_store(ctx))
        return 1;
    struct list_state ls = {0};
    if (plan_list(ctx->st, tenant, print_summary, &ls) != CAD_OK)
        return cli_fail("cannot list plans");
    if (!ls.n)
        printf("No plans yet; make one with: cadence plan create TENANT BUNDLE_DIR\n");
    return 0;
}

const struct cmd_entry cmd_plan_list_entry = {
    .group = "plan",
    .name = "list",
    .usage = "[--tenant TENANT]",
    .help = "Lists plans, newest first, with their status (planned, expired, confirmed,\n"
            "applying, done, partial, paused, cancelled).",
    .exec = cmd_plan_list_exec,
};

static int cmd_plan_cancel_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc != 2)
        return cli_usage(&cmd_plan_cancel_entry, "give exactly one plan ID");
    if (!cli_store(ctx))
        return 1;
    if (plan_cancel(ctx->st, ctx->actor, argv[1]) != CAD_OK)
        return cli_fail("cannot cancel the plan");
    printf("Plan %s cancelled.\n", argv[1]);
    return 0;
}

const struct cmd_entry cmd_plan_cancel_entry = {
    .group = "plan",
    .name = "cancel",
    .usage = "ID",
    .help = "Cancels a plan that is planned, confirmed or paused; it can no longer be applied.",
    .exec = cmd_plan_cancel_exec,
};

static int cmd_plan_confirm_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"hash", required_argument, NULL, 'h'}, {"operator", required_argument, NULL, 'o'}, {0}};
    const char *hash = NULL, *op = getenv("CADENCE_OPERATOR");
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'h')
            hash = optarg;
        else if (c == 'o')
            op = optarg;
        else
            return cli_usage(&cmd_plan_confirm_entry, "unknown option %s", argv[optind - 1]);
    }
    if (argc - optind != 1)
        return cli_usage(&cmd_plan_confirm_entry, "give exactly one plan ID");
    if (!hash)
        return cli_usage(&cmd_plan_confirm_entry,
                         "--hash is required: the hash `cadence plan show` printed");
    if (!cli_store(ctx))
        return 1;
    if (plan_confirm(ctx->st, op, argv[optind], hash) != CAD_OK)
        return cli_fail("the plan was not confirmed");
    printf("Plan %s confirmed by %s. Apply it with: cadence plan apply %s\n", argv[optind], op,
           argv[optind]);
    return 0;
}

const struct cmd_entry cmd_plan_confirm_entry = {
    .group = "plan",
    .name = "confirm",
    .usage = "ID --hash HASH [--operator EMAIL]",
    .help = "Confirms exactly the plan whose hash is HASH, as the operator named by --operator\n"
            "or $CADENCE_OPERATOR (who must exist). Refused when the plan expired, another plan\n"
            "was applied to the tenant since it was made, or its bundle changed. Recorded in\n"
            "the audit log as plan.confirm.",
    .exec = cmd_plan_confirm_exec,
};

/* print_progress walks every kind through plan_progress's per-kind counts */
_Static_assert(ASSET_KIND_COUNT <= sizeof((struct plan_progress *)0)->per_kind_total /
                                       sizeof((struct plan_progress *)0)->per_kind_total[0],
               "struct plan_progress has a count for every asset kind");

struct progress_state {
    bool tty;
    int64_t last_line_ms;
};

static void print_progress(void *ctx, const struct plan_progress *p)
{
    struct progress_state *ps = ctx;
    char kinds[512] = "";
    size_t o = 0;
    for (int k = 0; k < ASSET_KIND_COUNT; k++)
        if (p->per_kind_total[k])
            o += (size_t)snprintf(kinds + o, o < sizeof kinds ? sizeof kinds - o : 0, "%s%s %d/%d",
                                  o ? ", " : "", asset_kind_name((enum asset_kind)k),
                                  p->per_kind_done[k], p->per_kind_total[k]);
    char eta[32] = "?";
    if (p->eta_ms >= 0)
        snprintf(eta, sizeof eta, "%llds", (long long)(p->eta_ms / 1000));
    if (ps->tty) {
        printf("\r\033[K%d/%d steps (%d running, %d failed, %d conflicts) | %lld calls, %lld 429s "
               "| %llds elapsed, ETA %s | %s",
               p->done, p->total, p->running, p->failed, p->conflict, (long long)p->calls,
               (long long)p->throttled, (long long)(p->elapsed_ms / 1000), eta, kinds);
    } else {
        printf("progress: %d/%d steps done, %d running, %d failed, %d conflicts, %d skipped; "
               "%lld calls, %lld 429s; %.1fs elapsed, ETA %s; %s\n",
               p->done, p->total, p->running, p->failed, p->conflict, p->skipped,
               (long long)p->calls, (long long)p->throttled, (double)p->elapsed_ms / 1000.0, eta,
               kinds);
    }
    fflush(stdout);
}

int cli_plan_run_apply(struct cli_ctx *ctx, vault *v, const char *id)
{
    struct progress_state ps = {.tty = isatty(STDOUT_FILENO) != 0};
    struct plan_apply_options o = {.actor = ctx->actor,
                                   .progress = print_progress,
                                   .ctx = &ps,
                                   .issue_link = onboard_link_for_email};
    struct plan_apply_result r;
    if (plan_apply(ctx->st, v, id, &o, &r) != CAD_OK) {
        if (ps.tty)
            putchar('\n');
        return cli_fail("the plan was not applied");
    }
    if (ps.tty)
        putchar('\n');
    printf("Plan %s %s\n", id, r.message);
    if (r.outcome == PLAN_OUT_PARTIAL && plan_each_step(ctx->st, id, print_not_done, NULL))
        cad_err_clear(); /* the outcome above stands; the list is a courtesy */
    return r.outcome == PLAN_OUT_DONE ? 0 : r.outcome == PLAN_OUT_PAUSED ? 3 : 4;
}

static int cmd_plan_apply_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc != 2)
        return cli_usage(&cmd_plan_apply_entry, "give exactly one plan ID");
    vault *v = cli_vault(ctx);
    if (!v)
        return 1;
    return cli_plan_run_apply(ctx, v, argv[1]);
}

const struct cmd_entry cmd_plan_apply_entry = {
    .group = "plan",
    .name = "apply",
    .usage = "ID",
    .help = "Applies a confirmed plan in the foreground: steps in dependency order, many at\n"
            "once, as fast as Klaviyo's limits allow, with progress (steps per kind, calls,\n"
            "429s, ETA). Exactly once: killed at any point, running it again resumes without\n"
            "duplicating anything. A paused plan (its key was revoked) resumes here once a new\n"
            "key is verified. Refused when the plan is not confirmed, stale, or its bundle\n"
            "changed. Exit status: 0 done, 3 paused, 4 partial (each failure is listed).",
    .exec = cmd_plan_apply_exec,
};

static int cmd_plan_resume_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc != 2)
        return cli_usage(&cmd_plan_resume_entry, "give exactly one TENANT");
    vault *v = cli_vault(ctx);
    if (!v)
        return 1;
    char ids[64][PLAN_ID_MAX];
    int n = 0;
    if (plan_paused(ctx->st, argv[1], ids, 64, &n) != CAD_OK)
        return cli_fail("cannot list the tenant's paused plans");
    if (!n) {
        printf("No paused plans for %s.\n", argv[1]);
        return 0;
    }
    int worst = 0;
    for (int i = 0; i < n; i++) {
        int rc = cli_plan_run_apply(ctx, v, ids[i]);
        if (rc > worst)
            worst = rc;
        if (rc == 1 || rc == 3)
            break;
    }
    return worst;
}

const struct cmd_entry cmd_plan_resume_entry = {
    .group = "plan",
    .name = "resume",
    .usage = "TENANT",
    .help = "Applies every paused (or interrupted) plan of a tenant, oldest first, from where\n"
            "each stopped; for after a new key was verified.",
    .exec = cmd_plan_resume_exec,
};
