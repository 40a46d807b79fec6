/* Entry point of the `cadence` binary: hardening, environment, then the command table. */
#include <stdlib.h>

#include "cli/cli.h"
#include "common/secret.h"

int main(int argc, char **argv)
{
    secret_harden_process();
    struct cli_ctx ctx = {0};
    ctx.data_dir = getenv("CADENCE_DATA");
    if (!ctx.data_dir || !*ctx.data_dir)
        ctx.data_dir = "./cadence-data";
    ctx.actor = getenv("CADENCE_OPERATOR");
    if (!ctx.actor || !*ctx.actor)
        ctx.actor = "system";
    int rc = cli_dispatch(&ctx, argc, argv);
    vault_close(ctx.v);
    store_close(ctx.st);
    return rc;
}
