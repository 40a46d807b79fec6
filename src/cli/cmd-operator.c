/* `cadence operator ...`: add (password from stdin), list. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/err.h"
#include "common/util.h"
#include "tenant/tenant.h"

static int cmd_operator_add_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"email", required_argument, NULL, 'e'}, {"role", required_argument, NULL, 'r'}, {0}};
    const char *email = NULL, *role_s = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'e')
            email = optarg;
        else if (c == 'r')
            role_s = optarg;
        else
            return cli_usage(&cmd_operator_add_entry, "unknown option %s", argv[optind - 1]);
    }
    if (optind < argc)
        return cli_usage(&cmd_operator_add_entry,
                         "unexpected argument; the password is read from standard input");
    if (!email || !role_s)
        return cli_usage(&cmd_operator_add_entry, "--email and --role are required");
    enum operator_role role;
    if (operator_role_parse(role_s, &role) != CAD_OK)
        return cli_usage(&cmd_operator_add_entry, "%s", cad_errmsg());
    store *st = cli_store(ctx);
    if (!st)
        return 1;
    if (isatty(STDIN_FILENO))
        fprintf(stderr, "Password for %s (at least 12 characters), then Enter and Ctrl-D:\n",
                email);
    cad_secret *pw;
    if (secret_read_fd(&pw, STDIN_FILENO, 1024) != CAD_OK)
        return cli_fail("cannot read the password");
    int rc = operator_add(st, ctx->actor, email, role, pw);
    secret_free(pw);
    if (rc != CAD_OK)
        return cli_fail("cannot add the operator");
    printf("Added %s %s\n", operator_role_name(role), email);
    return 0;
}

const struct cmd_entry cmd_operator_add_entry = {
    .group = "operator",
    .name = "add",
    .usage = "--email EMAIL --role admin|operator",
    .help = "Adds an operator. The password is read from standard input and stored as an\n"
            "Argon2id hash.",
    .exec = cmd_operator_add_exec,
};

static int print_operator(void *ctx, const struct operator_info *o)
{
    int *n = ctx;
    char created[32];
    time_format_ms(o->created_ms, created, sizeof created);
    if (*n < 0) {
        printf("%s{\"email\":", *n < -1 ? "," : "");
        cli_json_str(stdout, o->email);
        printf(",\"role\":\"%s\",\"created\":\"%s\",\"disabled\":%s}", operator_role_name(o->role),
               created, o->disabled ? "true" : "false");
        *n = -2;
        return 0;
    }
    if ((*n)++ == 0)
        printf("%-32s %-9s %s\n", "EMAIL", "ROLE", "CREATED");
    printf("%-32s %-9s %.10s%s\n", o->email, operator_role_name(o->role), created,
           o->disabled ? " (disabled)" : "");
    return 0;
}

static int cmd_operator_list_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    bool json = argc == 2 && strcmp(argv[1], "--json") == 0;
    if (argc > 1 && !json)
        return cli_usage(&cmd_operator_list_entry, "unexpected argument \"%s\"", argv[1]);
    store *st = cli_store(ctx);
    if (!st)
        return 1;
    int n = json ? -1 : 0;
    if (json)
        printf("[");
    if (operator_list(st, print_operator, &n) != CAD_OK)
        return cli_fail("cannot list operators");
    if (json)
        printf("]\n");
    else if (n == 0)
        printf("No operators yet; add one with: cadence operator add --email E --role admin\n");
    return 0;
}

const struct cmd_entry cmd_operator_list_entry = {
    .group = "operator",
    .name = "list",
    .usage = "[--json]",
    .help = "Lists operators and their roles.",
    .exec = cmd_operator_list_exec,
};
