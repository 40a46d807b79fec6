/* `cadence kms ...`: rotate the master key, show its status. */
#include <stdio.h>

#include "audit/audit.h"
#include "cli/cli.h"
#include "common/err.h"

static int cmd_kms_rotate_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return cli_usage(&cmd_kms_rotate_entry, "rotate takes no arguments");
    vault *v = cli_vault(ctx);
    if (!v)
        return 1;
    struct vault_rotation r = {0};
    int rc = vault_rotate(v, &r);
    char detail[160];
    snprintf(detail, sizeof detail, "provider=%s from=%d to=%d rewrapped=%d%s%s",
             kms_name(vault_kms(v)), r.from_version, r.to_version, r.rewrapped,
             r.resumed ? " resumed" : "", rc ? " incomplete" : "");
    struct audit_entry e = {
        .actor = ctx->actor, .action = "kms.rotate", .duration_ms = -1, .detail = detail};
    if (rc != CAD_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", cad_errmsg());
        audit_append(ctx->st, &e, NULL);
        fprintf(stderr,
                "cadence: the rotation stopped: %s\n"
                "Every key is still readable; run `cadence kms rotate` again to finish it.\n",
                why);
        return 1;
    }
    if (audit_append(ctx->st, &e, NULL) != CAD_OK)
        return cli_fail("rotated, but cannot record it in the audit log");
    printf("%s master key version %d -> %d; %d data key%s re-wrapped; old versions retired\n",
           r.resumed ? "Finished rotating" : "Rotated", r.from_version, r.to_version, r.rewrapped,
           r.rewrapped == 1 ? "" : "s");
    return 0;
}

const struct cmd_entry cmd_kms_rotate_entry = {
    .group = "kms",
    .name = "rotate",
    .usage = "",
    .help = "Creates a new master key version and re-wraps every tenant's data key under it;\n"
            "sealed credentials are not touched. Old versions keep working until every data key\n"
            "is re-wrapped, then they are destroyed. An interrupted rotation is finished by\n"
            "running the command again.",
    .exec = cmd_kms_rotate_exec,
};

static int count_row(void *ctx, const store_row *row)
{
    int *counts = ctx;
    counts[0] = (int)store_row_int(row, 0);
    counts[1] = (int)store_row_int(row, 1);
    return 0;
}

static int cmd_kms_status_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return cli_usage(&cmd_kms_status_entry, "status takes no arguments");
    vault *v = cli_vault(ctx);
    if (!v)
        return 1;
    int version = 0, counts[2] = {0, 0};
    if (kms_current_version(vault_kms(v), &version) != CAD_OK)
        return cli_fail("cannot read the master key version");
    if (store_query(
            ctx->st,
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN kek_version = $1 THEN 0 ELSE 1 END), 0)"
            " FROM tenant_keys",
            SV_ARGS(SV_INT(version)), count_row, counts) != CAD_OK)
        return cli_fail("cannot count data keys");
    printf("provider %s, master key version %d, %d data key%s, %d on older versions%s\n",
           kms_name(vault_kms(v)), version, counts[0], counts[0] == 1 ? "" : "s", counts[1],
           counts[1] ? " (a rotation is unfinished: run cadence kms rotate)" : "");
    return 0;
}

const struct cmd_entry cmd_kms_status_entry = {
    .group = "kms",
    .name = "status",
    .usage = "",
    .help = "Shows the key-management provider, the current master key version and how many data\n"
            "keys are wrapped under older versions.",
    .exec = cmd_kms_status_exec,
};
