/*
 * The console's plan pages (admin_plan.c) and the gauges /metrics computes at scrape time
 * (gauges.c): what server.c needs to route to them. Internal to src/web.
 */
#ifndef CADENCE_WEB_ADMIN_PLAN_H
#define CADENCE_WEB_ADMIN_PLAN_H

#include "web/web_internal.h"
#include "worker/worker.h"

/* The background workers the server was started with (NULL when none). */
worker_pool *web_server_workers(const struct web_server *srv);

void admin_plans_get(struct web_req *r);
void admin_plan_get(struct web_req *r);
void admin_plan_progress_get(struct web_req *r);
void admin_plan_confirm_post(struct web_req *r);
void admin_plan_cancel_post(struct web_req *r);
void admin_campaign_prepare_post(struct web_req *r);
void admin_campaign_send_post(struct web_req *r);

/* Appends the gauges computed from the store (outbox queue depth) in the text exposition format.
 * Nothing is appended when the store cannot be read. */
void web_metrics_gauges(store *st, struct wbuf *out);

#endif
