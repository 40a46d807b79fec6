/*
 * The command-line face of Cadence (after tmux): each command is one constant cmd_entry in a
 * cmd-<group>.c file; cmd.c holds the table and the dispatcher. Commands get a context that
 * opens the data directory, store and vault on first use.
 *
 * Exit codes: 0 success, 1 failure (one clear line on stderr), 2 usage error.
 */
#ifndef CADENCE_CLI_CLI_H
#define CADENCE_CLI_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "store/store.h"
#include "vault/vault.h"

#define EXIT_USAGE 2

struct cli_ctx {
    const char *data_dir; /* $CADENCE_DATA or ./cadence-data */
    const char *actor;    /* $CADENCE_OPERATOR or "system" */
    store *st;            /* opened by cli_store() */
    vault *v;             /* opened by cli_vault() */
};

struct cmd_entry {
    const char *group; /* "tenant"; NULL for a top-level command */
    const char *name;  /* "add" */
    const char *usage; /* "--name NAME [--email EMAIL]" */
    const char *help;  /* one paragraph */
    int (*exec)(struct cli_ctx *ctx, int argc, char **argv);
};

/* Every command's entry, so a cmd-<group>.c can name its own entry (usage errors) before defining
 * it; cmd.c lists them in its table. */
extern const struct cmd_entry cmd_init_entry;
extern const struct cmd_entry cmd_tenant_add_entry, cmd_tenant_list_entry, cmd_tenant_show_entry,
    cmd_tenant_paid_entry, cmd_tenant_defer_entry, cmd_tenant_link_entry;
extern const struct cmd_entry cmd_key_set_entry, cmd_key_show_entry, cmd_key_check_entry,
    cmd_key_verify_entry;
extern const struct cmd_entry cmd_kms_rotate_entry, cmd_kms_status_entry;
extern const struct cmd_entry cmd_audit_list_entry, cmd_audit_verify_entry, cmd_audit_export_entry;
extern const struct cmd_entry cmd_operator_add_entry, cmd_operator_list_entry;
extern const struct cmd_entry cmd_serve_entry;
extern const struct cmd_entry cmd_mail_list_entry, cmd_mail_send_entry;
extern const struct cmd_entry cmd_plan_create_entry, cmd_plan_show_entry, cmd_plan_list_entry,
    cmd_plan_cancel_entry, cmd_plan_confirm_entry, cmd_plan_apply_entry, cmd_plan_resume_entry;
extern const struct cmd_entry cmd_campaign_send_entry;
extern const struct cmd_entry cmd_catalog_sync_entry, cmd_catalog_approve_entry,
    cmd_catalog_status_entry;

/* Applies a confirmed plan in the foreground with a progress display and prints the outcome
 * (cmd-plan.c); returns the exit status: 0 done, 3 paused, 4 partial, 1 not applied. */
int cli_plan_run_apply(struct cli_ctx *ctx, vault *v, const char *id);

/* Runs the command named by argv[1] (and argv[2] for a group); returns the exit status. */
int cli_dispatch(struct cli_ctx *ctx, int argc, char **argv);

/* Opens (once) and returns the store / vault; prints the error and returns NULL on failure. */
store *cli_store(struct cli_ctx *ctx);
vault *cli_vault(struct cli_ctx *ctx);

/* Prints "cadence: <what>: <cad_errmsg()>" to stderr and returns 1. */
int cli_fail(const char *what);
/* Prints "usage: cadence <group> <name> <usage>" and a hint to stderr, returns EXIT_USAGE. */
int cli_usage(const struct cmd_entry *e, const char *problem, ...)
    __attribute__((format(printf, 2, 3)));
/* True when argv holds -h or --help; the caller then prints cli_help(). */
bool cli_wants_help(int argc, char **argv);
void cli_help(const struct cmd_entry *e, FILE *out);

/* Prints what may be shown of a credential: a line, or a JSON object (comma first unless
 * `first`). Defined in cmd-key.c, used by tenant show too. */
struct credential_info;
void cli_print_credential(const struct credential_info *c, bool json, bool first);

/* Writes `s` as a JSON string literal (with quotes). */
void cli_json_str(FILE *out, const char *s);

#endif
