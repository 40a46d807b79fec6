/*
 * Gauges /metrics computes from the store at scrape time, appended after the counters of the
 * metrics registry (which only holds counters): the outbox queue depth, by status, for messages
 * not yet delivered.
 */
#include <string.h>

#include "common/err.h"
#include "mail/mail.h"
#include "web/admin_plan.h"

struct depth {
    int64_t queued, sending;
};

static int count_row(void *ctx, const struct mail_info *m)
{
    struct depth *d = ctx;
    if (strcmp(m->status, "queued") == 0)
        d->queued++;
    else if (strcmp(m->status, "sending") == 0)
        d->sending++;
    return 0;
}

void web_metrics_gauges(store *st, struct wbuf *out)
{
    struct depth d = {0, 0};
    struct mail_filter q = {.status = "queued"}, s = {.status = "sending"};
    if (!st || mail_list(st, &q, count_row, &d) != CAD_OK ||
        mail_list(st, &s, count_row, &d) != CAD_OK)
        return;
    wbuf_fmt(out,
             "# HELP cadence_outbox_messages Outbox messages not yet delivered, by status\n"
             "# TYPE cadence_outbox_messages gauge\n"
             "cadence_outbox_messages{status=\"queued\"} %D\n"
             "cadence_outbox_messages{status=\"sending\"} %D\n",
             d.queued, d.sending);
}
