/* `cadence mail ...`: list the outbox, deliver what is due. Bodies are never shown. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/err.h"
#include "common/util.h"
#include "mail/mail.h"

struct mail_print {
    bool json;
    int n;
};

static int print_mail(void *p, const struct mail_info *m)
{
    struct mail_print *mp = p;
    char created[32], when[32] = "-";
    time_format_ms(m->created_ms, created, sizeof created);
    if (strcmp(m->status, "sent") == 0 && m->sent_ms)
        time_format_ms(m->sent_ms, when, sizeof when);
    else if (strcmp(m->status, "queued") == 0)
        time_format_ms(m->next_attempt_ms, when, sizeof when);
    if (mp->json) {
        printf("{\"id\":%" PRId64 ",\"tenant\":", m->id);
        cli_json_str(stdout, m->tenant_id);
        printf(",\"kind\":");
        cli_json_str(stdout, m->kind);
        printf(",\"to\":");
        cli_json_str(stdout, m->to);
        printf(",\"subject\":");
        cli_json_str(stdout, m->subject);
        printf(",\"dedupe_key\":");
        cli_json_str(stdout, m->dedupe_key);
        printf(",\"status\":");
        cli_json_str(stdout, m->status);
        printf(",\"attempts\":%d,\"created\":", m->attempts);
        cli_json_str(stdout, created);
        printf(",\"next_attempt\":");
        if (strcmp(m->status, "queued") == 0)
            cli_json_str(stdout, when);
        else
            printf("null");
        printf(",\"sent\":");
        if (m->sent_ms)
            cli_json_str(stdout, when);
        else
            printf("null");
        printf(",\"message_id\":");
        if (*m->message_id)
            cli_json_str(stdout, m->message_id);
        else
            printf("null");
        printf(",\"last_error\":");
        if (*m->last_error)
            cli_json_str(stdout, m->last_error);
        else
            printf("null");
        printf("}\n");
        return 0;
    }
    if (mp->n++ == 0)
        printf("%-5s %-8s %-3s %-16s %-16s %-28s %-24s %s\n", "ID", "STATUS", "TRY", "KIND",
               "TENANT", "TO", "SENT/NEXT", "LAST ERROR");
    printf("%-5" PRId64 " %-8s %-3d %-16s %-16s %-28s %-24s %s\n", m->id, m->status, m->attempts,
           m->kind, m->tenant_id, m->to, when, *m->last_error ? m->last_error : "-");
    return 0;
}

static int cmd_mail_list_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"tenant", required_argument, NULL, 't'},
                                         {"status", required_argument, NULL, 's'},
                                         {"json", no_argument, NULL, 'j'},
                                         {0}};
    struct mail_filter f = {0};
    struct mail_print mp = {0};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 't') {
            f.tenant_id = optarg;
        } else if (c == 's') {
            if (strcmp(optarg, "queued") != 0 && strcmp(optarg, "sending") != 0 &&
                strcmp(optarg, "sent") != 0 && strcmp(optarg, "failed") != 0)
                return cli_usage(&cmd_mail_list_entry,
                                 "--status takes queued, sending, sent or failed");
            f.status = optarg;
        } else if (c == 'j') {
            mp.json = true;
        } else {
            return cli_usage(&cmd_mail_list_entry, "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage(&cmd_mail_list_entry, "unexpected argument \"%s\"", argv[optind]);
    store *st = cli_store(ctx);
    if (!st)
        return 1;
    if (mail_list(st, &f, print_mail, &mp) != CAD_OK)
        return cli_fail("cannot list the outbox");
    if (!mp.json && mp.n == 0)
        printf("The outbox is empty.\n");
    return 0;
}

const struct cmd_entry cmd_mail_list_entry = {
    .group = "mail",
    .name = "list",
    .usage = "[--tenant T] [--status queued|sending|sent|failed] [--json]",
    .help = "Lists the emails Cadence has queued for brands, oldest first: status, attempts,\n"
            "kind, tenant, recipient, when it was sent (or when the next attempt is due) and\n"
            "the last error. Message bodies are never shown: they may hold an onboarding link.\n"
            "--json prints one JSON object per line.",
    .exec = cmd_mail_list_exec,
};

static int cmd_mail_send_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return cli_usage(&cmd_mail_send_entry, "send takes no arguments");
    struct mail_config cfg;
    if (mail_config_from_env(&cfg, ctx->data_dir) != CAD_OK) {
        mail_config_free(&cfg);
        return cli_fail("the mail configuration is not usable");
    }
    store *st = cli_store(ctx);
    if (!st) {
        mail_config_free(&cfg);
        return 1;
    }
    struct mail_deliver_result r;
    int rc = mail_deliver_pending(st, &cfg, time_now_ms(), &r);
    if (rc != CAD_OK) {
        mail_config_free(&cfg);
        return cli_fail("cannot deliver the outbox");
    }
    if (cfg.smtp_url[0])
        printf("Delivered over SMTP (%s): ", cfg.smtp_url);
    else
        printf("Written as .eml files to %s: ", cfg.outbox_dir);
    printf("%d sent, %d to retry later, %d failed", r.sent, r.retrying, r.failed);
    if (r.resent)
        printf(" (%d resent after an interrupted attempt)", r.resent);
    printf(".\n");
    if (r.retrying || r.failed)
        printf("`cadence mail list` shows the errors.\n");
    mail_config_free(&cfg);
    return 0;
}

const struct cmd_entry cmd_mail_send_entry = {
    .group = "mail",
    .name = "send",
    .usage = "",
    .help = "Delivers every email that is due and prints how many were sent, will be retried\n"
            "and failed. Failed attempts are retried with growing waits (1 min, 2 min, 4 min ...\n"
            "up to 6 h), 8 attempts in all; every attempt is in the audit log (mail.send).\n\n"
            "Without CADENCE_SMTP_URL each message is written as an .eml file to\n"
            "$CADENCE_DATA/outbox/<id>.eml. Environment:\n"
            "  CADENCE_SMTP_URL            smtp://host:587 (STARTTLS required except on\n"
            "                              loopback) or smtps://host:465\n"
            "  CADENCE_SMTP_USER           user name for SMTP AUTH\n"
            "  CADENCE_SMTP_PASSWORD_FILE  file holding the SMTP password\n"
            "  CADENCE_MAIL_FROM           From header (default cadence@localhost)",
    .exec = cmd_mail_send_exec,
};
