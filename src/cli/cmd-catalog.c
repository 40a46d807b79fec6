/* `cadence catalog ...`: sync (a plan from the tenant's Shopify catalog), approve, status. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "cli/cli.h"
#include "common/err.h"
#include "common/util.h"
#include "onboard/onboard.h"
#include "plan/plan.h"

static json_t *sync_json(const struct catalog_sync_result *r, const char *approved_by, bool applied,
                         const char *outcome)
{
    return json_pack(
        "{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s?,s:b,s:b,s:s?,s:I,s:I}", "shop", r->shop,
        "products", (json_int_t)r->products, "variants", (json_int_t)r->variants, "categories",
        (json_int_t)r->categories, "creates", (json_int_t)r->creates, "updates",
        (json_int_t)r->updates, "deletes", (json_int_t)r->deletes, "unchanged",
        (json_int_t)r->unchanged, "shopify_queries", (json_int_t)r->queries,
        "shopify_throttle_waits", (json_int_t)r->throttled_waits, "bytes", (json_int_t)r->bytes,
        "integration_warning", r->integration_warning[0] ? r->integration_warning : NULL,
        "standing_approval", approved_by[0] != '\0', "applied", applied, "outcome", outcome,
        "read_ms", (json_int_t)r->read_ms, "plan_ms", (json_int_t)r->plan_ms);
}

static int cmd_catalog_sync_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"mode", required_argument, NULL, 'm'}, {0}};
    bool json = false;
    int mode = SHOP_READ_AUTO;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'j') {
            json = true;
        } else if (c == 'm') {
            if (strcmp(optarg, "auto") == 0)
                mode = SHOP_READ_AUTO;
            else if (strcmp(optarg, "bulk") == 0)
                mode = SHOP_READ_BULK;
            else if (strcmp(optarg, "paged") == 0)
                mode = SHOP_READ_PAGED;
            else
                return cli_usage(&cmd_catalog_sync_entry, "--mode is auto, bulk or paged");
        } else {
            return cli_usage(&cmd_catalog_sync_entry, "unknown option %s", argv[optind - 1]);
        }
    }
    if (argc - optind != 1)
        return cli_usage(&cmd_catalog_sync_entry, "give exactly one TENANT");
    const char *tenant = argv[optind];
    vault *v = cli_vault(ctx);
    if (!v)
        return 1;
    struct catalog_sync_options o = {.actor = ctx->actor, .read_mode = mode};
    struct catalog_sync_result r;
    if (plan_catalog_sync(ctx->st, v, tenant, &o, &r) != CAD_OK)
        return cli_fail("no catalog sync plan was made");
    char approved_by[256] = "";
    if (catalog_approval_get(ctx->st, tenant, approved_by, NULL) != CAD_OK)
        return cli_fail("cannot read the standing approval");
    if (r.integration_warning[0])
        fprintf(stderr, "cadence: warning: %s\n", r.integration_warning);
    if (!json)
        printf("Read %s: %ld products, %ld variants, %ld categories (%.1f s, %ld Shopify "
               "queries).\n",
               r.shop, r.products, r.variants, r.categories, (double)r.read_ms / 1000.0, r.queries);
    int rc = 0;
    bool applied = false;
    const char *outcome = NULL;
    if (!r.plan_id[0]) {
        outcome = "unchanged";
        if (!json)
            printf("Klaviyo's catalog is up to date: nothing to change (%ld objects unchanged).\n",
                   r.unchanged);
    } else {
        if (!json)
            printf("Plan %s: %ld creates, %ld updates, %ld deletes; %ld objects unchanged.\n",
                   r.plan_id, r.creates, r.updates, r.deletes, r.unchanged);
        /* A standing approval covers catalog-only syncs, but not the first one into an account
         * that may already hold Klaviyo's own Shopify catalog: that needs a person. */
        if (approved_by[0] && r.integration_warning[0]) {
            if (!json)
                printf("Not applied under the standing approval of %s: read the warning above, "
                       "then confirm the plan yourself.\n",
                       approved_by);
        } else if (approved_by[0]) {
            if (plan_confirm_standing(ctx->st, r.plan_id) != CAD_OK)
                return cli_fail("the plan was not confirmed");
            if (!json)
                printf("Confirmed under the standing approval of %s; applying.\n", approved_by);
            if (json) { /* stdout keeps one JSON object: the outcome goes to stderr */
                struct plan_apply_options ao = {.actor = ctx->actor,
                                                .issue_link = onboard_link_for_email};
                struct plan_apply_result ar;
                if (plan_apply(ctx->st, v, r.plan_id, &ao, &ar) != CAD_OK) {
                    rc = cli_fail("the plan was not applied");
                } else {
                    fprintf(stderr, "Plan %s %s\n", r.plan_id, ar.message);
                    rc = ar.outcome == PLAN_OUT_DONE ? 0 : ar.outcome == PLAN_OUT_PAUSED ? 3 : 4;
                }
            } else {
                rc = cli_plan_run_apply(ctx, v, r.plan_id);
            }
            applied = rc == 0 || rc == 3 || rc == 4;
            outcome = rc == 0 ? "done" : rc == 3 ? "paused" : rc == 4 ? "partial" : "failed";
        }
        if (!json && !applied)
            printf("Nothing has been changed in Klaviyo. To apply exactly this plan:\n"
                   "  cadence plan show %s\n"
                   "  cadence plan confirm %s --hash <its hash> --operator EMAIL\n"
                   "  cadence plan apply %s\n",
                   r.plan_id, r.plan_id, r.plan_id);
    }
    if (json) {
        json_t *extra = json_pack("{s:o}", "sync", sync_json(&r, approved_by, applied, outcome));
        if (r.plan_id[0]) {
            if (plan_print_json(ctx->st, r.plan_id, extra, stdout) != CAD_OK) {
                json_decref(extra);
                return cli_fail("cannot show the plan");
            }
        } else {
            json_t *doc =
                json_pack("{s:n,s:n,s:s,s:[]}", "id", "hash", "status", "unchanged", "steps");
            json_object_update(doc, extra);
            json_dumpf(doc, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
            fputc('\n', stdout);
            json_decref(doc);
        }
        json_decref(extra);
    }
    return rc;
}

const struct cmd_entry cmd_catalog_sync_entry = {
    .group = "catalog",
    .name = "sync",
    .usage = "TENANT [--json] [--mode auto|bulk|paged]",
    .help = "Reads the tenant's Shopify catalog (a bulk operation for large stores, pages for\n"
            "small ones; --mode chooses) with its Admin API token, maps products, variants and\n"
            "collections to Klaviyo catalog items, variants and categories (docs/catalog.md), and\n"
            "stores a plan of what changed since the last sync: creates, updates, and deletes of\n"
            "what the shop no longer has. Unchanged objects are counted, not listed. The plan is\n"
            "confirmed and applied like any other (`cadence plan confirm`, `cadence plan apply`),\n"
            "unless an admin gave the tenant a standing approval (`cadence catalog approve`):\n"
            "then it is confirmed under that approval and applied at once. Before the first sync\n"
            "Cadence checks whether Klaviyo's own Shopify integration already feeds the account\n"
            "and warns (a standing approval then does not apply). --json prints the plan (id,\n"
            "hash, status, steps) with a `sync` object of counts. Exit status as `plan apply`\n"
            "when applied: 0 done, 3 paused, 4 partial.",
    .exec = cmd_catalog_sync_exec,
};

static int cmd_catalog_approve_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"operator", required_argument, NULL, 'o'}, {"revoke", no_argument, NULL, 'r'}, {0}};
    const char *op = getenv("CADENCE_OPERATOR");
    bool revoke = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'o')
            op = optarg;
        else if (c == 'r')
            revoke = true;
        else
            return cli_usage(&cmd_catalog_approve_entry, "unknown option %s", argv[optind - 1]);
    }
    if (argc - optind != 1)
        return cli_usage(&cmd_catalog_approve_entry, "give exactly one TENANT");
    if (!cli_store(ctx))
        return 1;
    if (catalog_approval_set(ctx->st, op, argv[optind], !revoke) != CAD_OK)
        return cli_fail(revoke ? "the standing approval was not withdrawn"
                               : "no standing approval was given");
    if (revoke)
        printf("Standing approval withdrawn: every catalog sync of %s needs a confirmation.\n",
               argv[optind]);
    else
        printf("Standing approval given by %s: catalog-only syncs of %s are confirmed and "
               "applied without a per-sync click (recorded in the audit log).\n",
               op, argv[optind]);
    return 0;
}

const struct cmd_entry cmd_catalog_approve_entry = {
    .group = "catalog",
    .name = "approve",
    .usage = "TENANT [--operator ADMIN_EMAIL] [--revoke]",
    .help = "Gives (or with --revoke withdraws) the tenant a standing approval for catalog-only\n"
            "syncs: `cadence catalog sync` and the interval syncs of `cadence serve`\n"
            "($CADENCE_CATALOG_SYNC_INTERVAL_S) then apply without a per-sync confirmation.\n"
            "Only an admin may (named by --operator or $CADENCE_OPERATOR); recorded in the audit\n"
            "log. Every other push still needs its own confirmation.",
    .exec = cmd_catalog_approve_exec,
};

struct status_row {
    json_t *doc;
};

static int row_status(void *ctx, const store_row *row)
{
    struct status_row *s = ctx;
    json_object_set_new(s->doc, store_row_text(row, 0), json_integer(store_row_int(row, 1)));
    return 0;
}

static int row_settings(void *ctx, const store_row *row)
{
    json_t *doc = ctx;
    json_object_set_new(doc, "last_sync_ms",
                        store_row_is_null(row, 0) ? json_null()
                                                  : json_integer(store_row_int(row, 0)));
    json_object_set_new(doc, "last_plan",
                        store_row_is_null(row, 1) ? json_null()
                                                  : json_string(store_row_text(row, 1)));
    json_object_set_new(doc, "integration_warning",
                        store_row_is_null(row, 2) ? json_null()
                                                  : json_string(store_row_text(row, 2)));
    return 0;
}

static int cmd_catalog_status_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    bool json = argc == 3 && strcmp(argv[2], "--json") == 0;
    if (argc != 2 && !json)
        return cli_usage(&cmd_catalog_status_entry, "give TENANT, and --json if wanted");
    const char *tenant = argv[1];
    if (!cli_store(ctx))
        return 1;
    char by[256];
    int64_t at = 0;
    if (catalog_approval_get(ctx->st, tenant, by, &at) != CAD_OK)
        return cli_fail("cannot read the catalog settings");
    json_t *doc = json_pack("{s:s,s:s?,s:I}", "tenant", tenant, "standing_approval_by",
                            by[0] ? by : NULL, "standing_approval_ms", (json_int_t)at);
    json_t *counts = json_object();
    struct status_row sr = {counts};
    if (store_query(ctx->st,
                    "SELECT kind, count(*) FROM catalog_objects WHERE tenant_id = $1 GROUP BY kind",
                    SV_ARGS(SV_TEXT(tenant)), row_status, &sr) ||
        store_query(ctx->st,
                    "SELECT last_sync_ms, last_plan_id, integration_warning FROM catalog_settings "
                    "WHERE tenant_id = $1",
                    SV_ARGS(SV_TEXT(tenant)), row_settings, doc)) {
        json_decref(doc);
        json_decref(counts);
        return cli_fail("cannot read the catalog state");
    }
    json_object_set_new(doc, "synced", counts);
    if (json) {
        json_dumpf(doc, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
        fputc('\n', stdout);
    } else {
        printf("Tenant %s\n  standing approval: %s\n", tenant, by[0] ? by : "none");
        const char *k;
        json_t *v;
        json_object_foreach(counts, k, v)
        {
            printf("  in Klaviyo from Cadence: %lld %s\n", (long long)json_integer_value(v), k);
        }
        const char *w = json_string_value(json_object_get(doc, "integration_warning"));
        if (w)
            printf("  warning: %s\n", w);
    }
    json_decref(doc);
    return 0;
}

const struct cmd_entry cmd_catalog_status_entry = {
    .group = "catalog",
    .name = "status",
    .usage = "TENANT [--json]",
    .help = "The tenant's catalog sync: standing approval, the last sync and its plan, how many\n"
            "catalog objects Cadence keeps in Klaviyo, and any warning about Klaviyo's own\n"
            "Shopify integration.",
    .exec = cmd_catalog_status_exec,
};
