/*
 * The command table and dispatcher. Adding a command means writing its cmd_entry in its
 * cmd-<group>.c file and adding one line to cmd_table below; nothing else changes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/err.h"

/* One command a line, in the order `cadence --help` lists them. */
/* clang-format off */
static const struct cmd_entry *const cmd_table[] = {
    &cmd_init_entry,
    &cmd_tenant_add_entry,
    &cmd_tenant_list_entry,
    &cmd_tenant_show_entry,
    &cmd_tenant_paid_entry,
    &cmd_tenant_defer_entry,
    &cmd_tenant_link_entry,
    &cmd_key_set_entry,
    &cmd_key_show_entry,
    &cmd_key_check_entry,
    &cmd_key_verify_entry,
    &cmd_kms_rotate_entry,
    &cmd_kms_status_entry,
    &cmd_audit_list_entry,
    &cmd_audit_verify_entry,
    &cmd_audit_export_entry,
    &cmd_operator_add_entry,
    &cmd_operator_list_entry,
    &cmd_serve_entry,
    &cmd_mail_list_entry,
    &cmd_mail_send_entry,
    &cmd_plan_create_entry,
    &cmd_plan_show_entry,
    &cmd_plan_list_entry,
    &cmd_plan_confirm_entry,
    &cmd_plan_apply_entry,
    &cmd_plan_resume_entry,
    &cmd_plan_cancel_entry,
    &cmd_catalog_sync_entry,
    &cmd_catalog_approve_entry,
    &cmd_catalog_status_entry,
    &cmd_campaign_send_entry,
};
/* clang-format on */

store *cli_store(struct cli_ctx *ctx)
{
    if (ctx->st)
        return ctx->st;
    char path[4096];
    snprintf(path, sizeof path, "%s/cadence.db", ctx->data_dir);
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        fprintf(stderr, "cadence: no Cadence data in %s (%s); run `cadence init` first\n",
                ctx->data_dir, strerror(errno));
        return NULL;
    }
    fclose(probe);
    if (store_open(&ctx->st, path) != CAD_OK) {
        cli_fail("cannot open the store");
        return NULL;
    }
    return ctx->st;
}

vault *cli_vault(struct cli_ctx *ctx)
{
    if (ctx->v)
        return ctx->v;
    store *st = cli_store(ctx);
    if (!st)
        return NULL;
    if (vault_open(&ctx->v, st, ctx->data_dir, 0) != CAD_OK) {
        cli_fail("cannot open the vault");
        return NULL;
    }
    return ctx->v;
}

int cli_fail(const char *what)
{
    const char *msg = cad_errmsg();
    fprintf(stderr, "cadence: %s%s%s\n", what, *msg ? ": " : "", msg);
    return 1;
}

int cli_usage(const struct cmd_entry *e, const char *problem, ...)
{
    if (problem) {
        va_list ap;
        va_start(ap, problem);
        fputs("cadence: ", stderr);
        vfprintf(stderr, problem, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    fprintf(stderr, "usage: cadence %s%s%s %s\n", e->group ? e->group : "", e->group ? " " : "",
            e->name, e->usage);
    fprintf(stderr, "       cadence %s%s%s --help for more\n", e->group ? e->group : "",
            e->group ? " " : "", e->name);
    return EXIT_USAGE;
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    }
    return false;
}

void cli_help(const struct cmd_entry *e, FILE *out)
{
    fprintf(out, "usage: cadence %s%s%s %s\n\n%s\n", e->group ? e->group : "", e->group ? " " : "",
            e->name, e->usage, e->help);
}

void cli_json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        default:
            if (*p < 0x20)
                fprintf(out, "\\u%04x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

static void print_overview(FILE *out)
{
    fputs("usage: cadence <command> [options]\n\n"
          "Cadence onboards a brand's Klaviyo account and pushes an agency's work into it.\n\n"
          "Commands:\n",
          out);
    for (size_t i = 0; i < sizeof cmd_table / sizeof cmd_table[0]; i++) {
        const struct cmd_entry *e = cmd_table[i];
        char name[64];
        snprintf(name, sizeof name, "%s%s%s", e->group ? e->group : "", e->group ? " " : "",
                 e->name);
        fprintf(out, "  %-16s %s\n", name, e->usage);
    }
    fputs("\nEnvironment:\n"
          "  CADENCE_DATA      data directory (default ./cadence-data)\n"
          "  CADENCE_OPERATOR  operator email recorded as the actor in the audit log\n"
          "  CADENCE_KMS       key-management provider (default local)\n"
          "\n`cadence <command> --help` describes one command.\n",
          out);
}

int cli_dispatch(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_overview(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("cadence %s\n", CADENCE_VERSION);
        return 0;
    }
    bool group_known = false;
    for (size_t i = 0; i < sizeof cmd_table / sizeof cmd_table[0]; i++) {
        const struct cmd_entry *e = cmd_table[i];
        if (!e->group && strcmp(e->name, argv[1]) == 0) {
            if (cli_wants_help(argc - 1, argv + 1)) {
                cli_help(e, stdout);
                return 0;
            }
            return e->exec(ctx, argc - 1, argv + 1);
        }
        if (e->group && strcmp(e->group, argv[1]) == 0) {
            group_known = true;
            if (argc > 2 && strcmp(e->name, argv[2]) == 0) {
                if (cli_wants_help(argc - 2, argv + 2)) {
                    cli_help(e, stdout);
                    return 0;
                }
                return e->exec(ctx, argc - 2, argv + 2);
            }
        }
    }
    if (group_known) {
        bool asked = argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0);
        FILE *out = asked ? stdout : stderr;
        if (!asked)
            fprintf(stderr, "cadence: %s%s%s\n",
                    argc > 2 ? "unknown subcommand: " : "missing subcommand for ",
                    argc > 2 ? argv[2] : argv[1], "");
        fprintf(out, "usage:\n");
        for (size_t i = 0; i < sizeof cmd_table / sizeof cmd_table[0]; i++)
            if (cmd_table[i]->group && strcmp(cmd_table[i]->group, argv[1]) == 0)
                fprintf(out, "  cadence %s %s %s\n", argv[1], cmd_table[i]->name,
                        cmd_table[i]->usage);
        return asked ? 0 : EXIT_USAGE;
    }
    fprintf(stderr, "cadence: unknown command: %s (try cadence --help)\n", argv[1]);
    return EXIT_USAGE;
}
