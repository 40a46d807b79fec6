/* `cadence init`: the data directory, the master key and the database. Safe to run again. */
#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "common/err.h"
#include "common/util.h"

static int cmd_init_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return cli_usage(&cmd_init_entry, "init takes no arguments");
    bool fresh = !fs_exists(ctx->data_dir);
    if (fs_mkdir_p(ctx->data_dir, 0700) != CAD_OK)
        return cli_fail("cannot create the data directory");
    struct stat sb;
    if (stat(ctx->data_dir, &sb) == 0 && (sb.st_mode & 0077))
        fprintf(stderr,
                "cadence: warning: %s is accessible by group or others (mode %03o); "
                "`chmod 700 %s` keeps tenant data private\n",
                ctx->data_dir, (unsigned)(sb.st_mode & 0777), ctx->data_dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/cadence.db", ctx->data_dir);
    if (store_open(&ctx->st, path) != CAD_OK)
        return cli_fail("cannot open the store");
    if (vault_open(&ctx->v, ctx->st, ctx->data_dir, 1) != CAD_OK)
        return cli_fail("cannot open the vault");
    int version = 0, kek = 0;
    store_schema_version(ctx->st, &version);
    kms_current_version(vault_kms(ctx->v), &kek);
    printf("%s Cadence data in %s\n", fresh ? "Created" : "Using", ctx->data_dir);
    printf("  database     %s (schema version %d)\n", path, version);
    printf("  master key   %s provider, version %d\n", kms_name(vault_kms(ctx->v)), kek);
    return 0;
}

const struct cmd_entry cmd_init_entry = {
    .name = "init",
    .usage = "",
    .help = "Creates the data directory ($CADENCE_DATA, default ./cadence-data) with mode 0700,\n"
            "the local master key (mode 0600) and the database, and applies schema migrations.\n"
            "Idempotent: on an existing directory it only applies pending migrations.",
    .exec = cmd_init_exec,
};
