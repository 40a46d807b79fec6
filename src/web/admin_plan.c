/*
 * The console's plan pages: the list of plans, a plan's page (each step's readable diff, its
 * calls, the rate-limit estimate, the hash, live progress), confirming a plan, cancelling it, and
 * sending a campaign the plan created.
 *
 * Confirming requires the operator to tick a box whose value is the exact hash shown; the server
 * hands that value to plan_confirm(), which compares it with the plan's hash, checks the operator,
 * expiry, staleness and the bundle, and records plan.confirm in the audit log. A confirmed plan is
 * then queued for the background workers (worker.h). Progress comes from the worker's memory as
 * JSON (progress.json), polled by /assets/plan.js: the CSP allows no inline script.
 *
 * Sending a campaign is its own confirmation (plan.h): "prepare" shows the audience and the send
 * time with a one-time code, and only a second form that carries that code and an explicit tick
 * sends it. Every change is made by the plan engine with the operator's email as the audit actor.
 * Everything shown from a plan (names, diffs, notes, errors) goes through the HTML escaper.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bundle/bundle.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "plan/plan.h"
#include "web/admin_plan.h"

/* Asset kinds plan_progress counts (its per-kind arrays hold 16). */
#define KINDS (ASSET_KIND_COUNT < 16 ? ASSET_KIND_COUNT : 16)

/* A plan's page shows this many steps; ?from=SEQ pages through the rest (a catalog plan can hold
 * 200,000 steps: neither the server nor a browser should hold them all at once). */
#define STEPS_PER_PAGE 500

/* ---- helpers ---- */

static bool valid_plan_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 4 || n >= PLAN_ID_MAX || strncmp(s, "pl-", 3) != 0)
        return false;
    for (size_t i = 3; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* An asset name that can stand in a URL path as it is (letters, digits, '.', '_', '-', '~'): the
 * campaign send forms are offered for these; others are sent with `cadence campaign send`. */
static bool valid_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 100)
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-~") == n;
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static void notice(struct web_req *r, bool good, const char *title, const char *text)
{
    wbuf_fmt(&r->out,
             "<div class=\"notice %S\" role=\"%S\" tabindex=\"-1\" id=\"notice\">"
             "<p class=\"notice-title\">%s</p>",
             good ? "good" : "bad", good ? "status" : "alert", title);
    if (text && *text)
        wbuf_fmt(&r->out, "<p>%s</p>", text);
    wbuf_puts(&r->out, "</div>");
}

static void store_error(struct web_req *r, const char *what)
{
    cad_log(LOG_ERROR, "console.plan", "what=%s error=\"%s\"", what, cad_errmsg());
    page_message(r, 503, "Temporarily unavailable",
                 "The console could not read or save this just now. Nothing was changed; please "
                 "try again in a few minutes.");
}

static const char *status_class(const char *status)
{
    if (strcmp(status, "done") == 0)
        return "ok";
    if (strcmp(status, "partial") == 0 || strcmp(status, "cancelled") == 0 ||
        strcmp(status, "expired") == 0 || strcmp(status, "paused") == 0)
        return "bad";
    return "wait";
}

/* The plan's summary (plan_summary_json), or NULL with the error page written. */
static json_t *load_plan_head(struct web_req *r)
{
    const char *id = route_param(&r->params, "id");
    if (!valid_plan_id(id)) {
        page_message(r, 404, "No such plan", "There is no plan with this id.");
        return NULL;
    }
    json_t *plan = NULL;
    int rc = plan_summary_json(r->st, id, &plan);
    if (rc == CAD_ENOTFOUND) {
        page_message(r, 404, "No such plan", "There is no plan with this id.");
        return NULL;
    }
    if (rc) {
        store_error(r, "plan_summary_json");
        return NULL;
    }
    return plan;
}

/* The plan with the page of steps that ?from=SEQ asks for (the first page without it): "steps",
 * the steps to read (not unchanged, or with an error), one more than a page when there is a next
 * page (it tells render_plan where that starts); "unchanged", the unchanged ones between the
 * page's start and the next page's, at most STEPS_PER_PAGE + 1 (one more when there are more). */
static json_t *load_plan(struct web_req *r)
{
    const char *f = web_req_query(r, "from");
    int64_t from = 0;
    if (f && *f && strlen(f) <= 12 && strspn(f, "0123456789") == strlen(f))
        from = strtoll(f, NULL, 10);
    json_t *plan = load_plan_head(r);
    if (!plan)
        return NULL;
    const char *id = jstr(plan, "id");
    json_t *steps = NULL, *same = NULL;
    int rc = plan_steps_json(r->st, id, from, 0, STEPS_PER_PAGE + 1, PLAN_STEPS_CHANGED, &steps);
    /* the unchanged steps up to the next page's start: that page's are its own */
    json_t *next = rc ? NULL : json_array_get(steps, STEPS_PER_PAGE);
    if (!rc)
        rc = plan_steps_json(r->st, id, from,
                             next ? json_integer_value(json_object_get(next, "seq")) : 0,
                             STEPS_PER_PAGE + 1, PLAN_STEPS_UNCHANGED, &same);
    if (rc) {
        json_decref(steps);
        json_decref(plan);
        store_error(r, "plan_steps_json");
        return NULL;
    }
    json_object_set_new(plan, "steps", steps);
    json_object_set_new(plan, "unchanged", same);
    return plan;
}

/* ---- the list ---- */

struct list_ctx {
    struct web_req *r;
    int n;
};

static int plan_row(void *ctx, const json_t *s)
{
    struct list_ctx *lc = ctx;
    struct web_req *r = lc->r;
    if (++lc->n > 200)
        return 0;
    const char *id = jstr(s, "id"), *status = jstr(s, "status");
    wbuf_fmt(&r->out,
             "<tr><td><a href=\"/admin/plans/%s\">%s</a></td><td><a href=\"/admin/tenants/%s\">"
             "%s</a></td><td><span class=\"badge %S\">%s</span>",
             id, id, jstr(s, "tenant"), jstr(s, "tenant"), status_class(status), status);
    worker_pool *w = web_server_workers(r->srv);
    struct worker_status ws;
    if (w && worker_status(w, id, &ws) && ws.state != WORKER_FINISHED)
        wbuf_fmt(&r->out, " <span class=\"small\">(%s)</span>", worker_job_state_name(ws.state));
    wbuf_fmt(&r->out, "</td><td>%s</td><td>", jstr(s, "created"));
    json_int_t steps = json_integer_value(json_object_get(s, "steps"));
    wbuf_fmt(&r->out, "%D step%S", (int64_t)steps, steps == 1 ? "" : "s");
    wbuf_puts(&r->out, "</td></tr>\n");
    return 0;
}

void admin_plans_get(struct web_req *r)
{
    const char *tenant = web_req_query(r, "tenant");
    if (tenant && !*tenant)
        tenant = NULL;
    if (tenant && (strlen(tenant) >= TENANT_ID_MAX ||
                   strspn(tenant, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(tenant))) {
        page_message(r, 400, "Bad filter", "A tenant id is lower-case letters, digits and '-'.");
        return;
    }
    admin_page_begin(r, "Plans", "plans");
    wbuf_puts(&r->out, "<h1>Plans</h1><p class=\"lead\">Plans made with <code>cadence plan "
                       "create</code>. Open one to read what it will change and confirm it.</p>");
    if (tenant)
        wbuf_fmt(&r->out,
                 "<p>Plans of <strong>%s</strong> \xC2\xB7 <a href=\"/admin/plans\">all "
                 "plans</a></p>",
                 tenant);
    wbuf_puts(&r->out, "<div class=\"table-wrap\"><table id=\"plans\"><thead><tr><th "
                       "scope=\"col\">Plan</th><th scope=\"col\">Tenant</th><th "
                       "scope=\"col\">Status</th><th scope=\"col\">Created</th><th "
                       "scope=\"col\">Steps</th></tr></thead><tbody>\n");
    struct list_ctx lc = {r, 0};
    if (plan_list(r->st, tenant, plan_row, &lc) != CAD_OK) {
        store_error(r, "plan_list"); /* replaces the half-written page */
        return;
    }
    if (lc.n == 0)
        wbuf_puts(&r->out, "<tr id=\"no-plans\"><td colspan=\"5\">No plans yet.</td></tr>");
    wbuf_puts(&r->out, "</tbody></table></div>");
    if (lc.n > 200)
        wbuf_puts(&r->out, "<p class=\"small\">The 200 newest plans are shown.</p>");
    admin_page_end(r);
}

/* ---- a plan's page ---- */

static void render_diff(struct web_req *r, const char *diff)
{
    wbuf_puts(&r->out, "<pre class=\"diff\">");
    const char *p = diff;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        /* Unified diffs start lines with ' ', '+' or '-'; field-by-field diffs indent them. */
        const char *q = p;
        while (q < p + n && q - p < 4 && *q == ' ' && q + 1 < p + n && q[1] == ' ')
            q++;
        if (q < p + n && *q == ' ' && q + 1 < p + n && (q[1] == '+' || q[1] == '-'))
            q++;
        const char *cls = "ctx";
        if (n >= 2 && strncmp(p, "@@", 2) == 0)
            cls = "hunk";
        else if (n >= 3 && (strncmp(p, "+++", 3) == 0 || strncmp(p, "---", 3) == 0))
            cls = "file";
        else if (q < p + n && *q == '+')
            cls = "add";
        else if (q < p + n && *q == '-')
            cls = "del";
        wbuf_fmt(&r->out, "<span class=\"%S\">", cls);
        wbuf_html_n(&r->out, p, n);
        wbuf_puts(&r->out, "</span>\n");
        p += n + (e ? 1 : 0);
    }
    wbuf_puts(&r->out, "</pre>");
}

/* A step of the page [lo, hi] of plan `id`; a dependency on another page links to that page. */
static void render_step(struct web_req *r, const char *id, const json_t *s, int64_t lo, int64_t hi)
{
    const char *action = jstr(s, "action"), *state = jstr(s, "state");
    wbuf_fmt(&r->out,
             "<section class=\"plan-step card\" id=\"step-%D\"><h3>#%D <span class=\"badge %S\">%s"
             "</span> %s <q>%s</q>",
             (int64_t)json_integer_value(json_object_get(s, "seq")),
             (int64_t)json_integer_value(json_object_get(s, "seq")),
             strcmp(action, "delete") == 0 ? "bad" : "wait", action, jstr(s, "kind"),
             jstr(s, "name"));
    if (*state && strcmp(state, "pending") != 0)
        wbuf_fmt(&r->out, " <span class=\"badge %S\">%s</span>",
                 strcmp(state, "done") == 0 ? "ok" : "bad", state);
    wbuf_puts(&r->out, "</h3>");
    if (*jstr(s, "remote_id"))
        wbuf_fmt(&r->out, "<p class=\"small\">Klaviyo id %s</p>", jstr(s, "remote_id"));
    json_t *deps = json_object_get(s, "deps");
    if (json_array_size(deps)) {
        wbuf_puts(&r->out, "<p class=\"small\">After");
        size_t i;
        json_t *d;
        json_array_foreach(deps, i, d)
        {
            int64_t seq = (int64_t)json_integer_value(d);
            if (seq >= lo && seq <= hi)
                wbuf_fmt(&r->out, " <a href=\"#step-%D\">#%D</a>", seq, seq);
            else
                wbuf_fmt(&r->out, " <a href=\"/admin/plans/%s?from=%D#step-%D\">#%D</a>", id, seq,
                         seq, seq);
        }
        wbuf_puts(&r->out, "</p>");
    }
    if (*jstr(s, "note"))
        wbuf_fmt(&r->out, "<p>%s</p>", jstr(s, "note"));
    if (*jstr(s, "error"))
        wbuf_fmt(&r->out, "<p class=\"error-text\">%s</p>", jstr(s, "error"));
    json_t *calls = json_object_get(s, "calls");
    if (json_array_size(calls)) {
        wbuf_puts(&r->out, "<ul class=\"calls\">");
        size_t i;
        json_t *c;
        json_array_foreach(calls, i, c)
        {
            wbuf_fmt(&r->out, "<li><code>%s %s</code> <span class=\"small\">%s", jstr(c, "method"),
                     jstr(c, "path"), jstr(c, "operation"));
            if (*jstr(c, "note"))
                wbuf_fmt(&r->out, " \xC2\xB7 %s", jstr(c, "note"));
            wbuf_puts(&r->out, "</span></li>");
        }
        wbuf_puts(&r->out, "</ul>");
    }
    if (*jstr(s, "diff"))
        render_diff(r, jstr(s, "diff"));
    wbuf_puts(&r->out, "</section>\n");
}

static void render_estimate(struct web_req *r, const json_t *plan)
{
    const json_t *est = json_object_get(plan, "estimate");
    wbuf_fmt(&r->out, "<h2>Time Klaviyo's limits impose</h2><p id=\"estimate\">%s</p>",
             jstr(est, "text"));
    json_t *ops = json_object_get(est, "operations");
    if (!json_array_size(ops))
        return;
    wbuf_puts(&r->out, "<div class=\"table-wrap\"><table id=\"operations\"><thead><tr><th "
                       "scope=\"col\">Operation</th><th scope=\"col\">Calls</th><th "
                       "scope=\"col\">Limits</th></tr></thead><tbody>");
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op)
    {
        wbuf_fmt(&r->out, "<tr><td><code>%s</code></td><td>%D</td><td>%D/s, %D/min",
                 jstr(op, "operation"), (int64_t)json_integer_value(json_object_get(op, "calls")),
                 (int64_t)json_integer_value(json_object_get(op, "burst_per_s")),
                 (int64_t)json_integer_value(json_object_get(op, "steady_per_min")));
        if (json_object_get(op, "daily"))
            wbuf_fmt(&r->out, ", %D/day",
                     (int64_t)json_integer_value(json_object_get(op, "daily")));
        wbuf_puts(&r->out, "</td></tr>");
    }
    wbuf_puts(&r->out, "</tbody></table></div>");
}

static void progress_text(struct web_req *r, const struct worker_status *ws, bool known)
{
    const struct plan_progress *p = &ws->progress;
    wbuf_puts(&r->out, "<dl class=\"meta\">");
    wbuf_fmt(&r->out, "<dt>Background apply</dt><dd id=\"p-worker\">%s</dd>",
             known ? worker_job_state_name(ws->state) : "not running in this server");
    if (known && ws->has_progress) {
        wbuf_fmt(&r->out,
                 "<dt>Steps</dt><dd id=\"p-steps\">%d of %d done, %d running, %d failed, %d "
                 "conflicts</dd><dt>Calls</dt><dd id=\"p-calls\">%D</dd><dt>429s</dt>"
                 "<dd id=\"p-429\">%D</dd>",
                 p->done, p->total, p->running, p->failed, p->conflict, p->calls, p->throttled);
    } else {
        wbuf_puts(&r->out, "<dt>Steps</dt><dd id=\"p-steps\">-</dd><dt>Calls</dt><dd "
                           "id=\"p-calls\">-</dd><dt>429s</dt><dd id=\"p-429\">-</dd>");
    }
    wbuf_puts(&r->out, "<dt>ETA</dt><dd id=\"p-eta\">");
    if (known && ws->has_progress && p->eta_ms >= 0)
        wbuf_fmt(&r->out, "%D s", p->eta_ms / 1000);
    else
        wbuf_puts(&r->out, "-");
    wbuf_puts(&r->out, "</dd><dt>By kind</dt><dd id=\"p-kinds\">");
    bool first = true;
    for (int k = 0; known && ws->has_progress && k < KINDS; k++)
        if (p->per_kind_total[k]) {
            wbuf_fmt(&r->out, "%S%s %d/%d", first ? "" : ", ", asset_kind_name((enum asset_kind)k),
                     p->per_kind_done[k], p->per_kind_total[k]);
            first = false;
        }
    if (first)
        wbuf_puts(&r->out, "-");
    wbuf_fmt(&r->out, "</dd></dl><p id=\"p-message\">%s</p>", known ? ws->message : "");
}

/* Where this page of steps stands in the plan, with links to the first page and the next. */
static void steps_nav(struct web_req *r, const char *id, int64_t lo, int64_t hi, int64_t nsteps,
                      const json_t *next)
{
    wbuf_fmt(&r->out, "<nav class=\"steps-nav\" aria-label=\"Steps\"><p>Steps #%D to #%D of %D", lo,
             hi, nsteps);
    if (lo > 1)
        wbuf_fmt(&r->out, " \xC2\xB7 <a href=\"/admin/plans/%s#steps\">first steps</a>", id);
    if (next)
        wbuf_fmt(&r->out,
                 " \xC2\xB7 <a rel=\"next\" href=\"/admin/plans/%s?from=%D#steps\">next %d "
                 "steps</a>",
                 id, (int64_t)json_integer_value(json_object_get(next, "seq")), STEPS_PER_PAGE);
    wbuf_puts(&r->out, "</p></nav>");
}

static void render_plan(struct web_req *r, const json_t *plan, const char *err_title,
                        const char *err_text, const char *ok_title)
{
    const char *id = jstr(plan, "id"), *status = jstr(plan, "status"), *hash = jstr(plan, "hash");
    char title[64];
    snprintf(title, sizeof title, "Plan %s", id);
    admin_page_begin(r, title, "plans");
    wbuf_fmt(&r->out,
             "<p><a href=\"/admin/plans\">All plans</a></p><h1>Plan <code>%s</code></h1>"
             "<p>For <a href=\"/admin/tenants/%s\">%s</a> \xC2\xB7 status <span id=\"plan-status\" "
             "class=\"badge %S\">%s</span></p>",
             id, jstr(plan, "tenant"), jstr(plan, "tenant"), status_class(status), status);
    if (err_title)
        notice(r, false, err_title, err_text);
    if (ok_title)
        notice(r, true, ok_title, NULL);
    wbuf_fmt(&r->out,
             "<dl class=\"meta\"><dt>Hash</dt><dd><code id=\"plan-hash\">%s</code></dd>"
             "<dt>Bundle</dt><dd>%s</dd><dt>Created</dt><dd>%s</dd><dt>Expires unconfirmed</dt>"
             "<dd>%s</dd>",
             hash, jstr(plan, "bundle"), jstr(plan, "created"), jstr(plan, "expires"));
    if (*jstr(plan, "confirmed_by"))
        wbuf_fmt(&r->out, "<dt>Confirmed by</dt><dd id=\"confirmed-by\">%s at %s</dd>",
                 jstr(plan, "confirmed_by"), jstr(plan, "confirmed"));
    if (*jstr(plan, "detail"))
        wbuf_fmt(&r->out, "<dt>Last result</dt><dd>%s</dd>", jstr(plan, "detail"));
    wbuf_puts(&r->out, "</dl>");

    json_t *counts = json_object_get(plan, "counts");
    wbuf_puts(&r->out, "<p id=\"counts\">");
    static const char *const acts[] = {"create", "update", "replace", "delete", "unchanged"};
    for (size_t i = 0; i < CAD_ARRAY_LEN(acts); i++)
        wbuf_fmt(&r->out, "%S<strong>%D</strong> %s", i ? ", " : "",
                 (int64_t)json_integer_value(json_object_get(counts, acts[i])), acts[i]);
    wbuf_puts(&r->out, "</p>");
    render_estimate(r, plan);

    worker_pool *w = web_server_workers(r->srv);
    struct worker_status ws;
    bool known = w && worker_status(w, id, &ws);
    if (!known)
        memset(&ws, 0, sizeof ws);
    wbuf_fmt(&r->out,
             "<section class=\"card\" id=\"progress\" aria-live=\"polite\" "
             "data-progress-url=\"/admin/plans/%s/progress.json\"><h2>Progress</h2>",
             id);
    progress_text(r, &ws, known);
    wbuf_puts(&r->out, "</section>");

    if (strcmp(status, "planned") == 0) {
        wbuf_fmt(&r->out,
                 "<section class=\"card\" id=\"confirm\"><h2>Confirm this plan</h2><p>Nothing is "
                 "written to the brand's Klaviyo account until an operator confirms exactly this "
                 "plan. Read every step below first.</p><form method=\"post\" "
                 "action=\"/admin/plans/%s/confirm\">",
                 id);
        admin_csrf_field(r);
        wbuf_fmt(&r->out,
                 "<p><input type=\"checkbox\" id=\"hash\" name=\"hash\" value=\"%s\" required> "
                 "<label for=\"hash\">I have read this plan and confirm its hash <code>%s</code>"
                 "</label></p><button type=\"submit\">Confirm and apply</button></form></section>",
                 hash, hash);
    }
    if (strcmp(status, "planned") == 0 || strcmp(status, "confirmed") == 0 ||
        strcmp(status, "paused") == 0) {
        wbuf_fmt(&r->out, "<form method=\"post\" action=\"/admin/plans/%s/cancel\" id=\"cancel\">",
                 id);
        admin_csrf_field(r);
        wbuf_puts(&r->out, "<button type=\"submit\" class=\"secondary\">Cancel this plan</button>"
                           "</form>");
    }

    json_t *steps = json_object_get(plan, "steps");
    json_t *campaigns = json_object_get(plan, "campaigns");
    size_t i;
    json_t *s;
    if (json_array_size(campaigns) &&
        (strcmp(status, "done") == 0 || strcmp(status, "partial") == 0)) {
        wbuf_puts(&r->out, "<section class=\"card\" id=\"campaigns\"><h2>Send a campaign</h2><p>"
                           "Campaigns are created as drafts. Sending one is its own step: you will "
                           "see its audience and send time and confirm again.</p>");
        json_array_foreach(campaigns, i, s)
        {
            const char *name = json_string_value(s);
            if (!valid_name(name))
                continue;
            wbuf_fmt(&r->out,
                     "<form method=\"post\" class=\"campaign-send\" "
                     "action=\"/admin/plans/%s/campaigns/%s/prepare\">",
                     id, name);
            admin_csrf_field(r);
            wbuf_fmt(&r->out,
                     "<p><strong>%s</strong></p><label for=\"at-%D\">Send at (ISO time, empty for "
                     "now)</label> <input id=\"at-%D\" name=\"at\" type=\"text\" maxlength=\"40\" "
                     "placeholder=\"2026-12-01T09:00:00Z\"> <button type=\"submit\" "
                     "class=\"secondary\">Review send\xE2\x80\xA6</button></form>",
                     name, (int64_t)i, (int64_t)i);
        }
        wbuf_puts(&r->out, "</section>");
    }

    wbuf_puts(&r->out, "<h2 id=\"steps\">Steps</h2>");
    /* load_plan read one step more than a page: it is where the next page starts */
    size_t shown =
        json_array_size(steps) < STEPS_PER_PAGE ? json_array_size(steps) : STEPS_PER_PAGE;
    int64_t nsteps = (int64_t)json_integer_value(json_object_get(plan, "nsteps"));
    int64_t lo = shown ? json_integer_value(json_object_get(json_array_get(steps, 0), "seq")) : 0;
    int64_t hi =
        shown ? json_integer_value(json_object_get(json_array_get(steps, shown - 1), "seq")) : 0;
    json_t *next = json_array_get(steps, STEPS_PER_PAGE);
    const json_t *same = json_object_get(plan, "unchanged");
    const char *from = web_req_query(r, "from");
    bool paged = next || (from && *from);
    if (paged && shown)
        steps_nav(r, id, lo, hi, nsteps, next);
    for (i = 0; i < shown; i++)
        render_step(r, id, json_array_get(steps, i), lo, hi);
    size_t nsame = json_array_size(same);
    if (nsame) {
        int64_t total =
            json_integer_value(json_object_get(json_object_get(plan, "counts"), "unchanged"));
        wbuf_fmt(&r->out, "<details id=\"unchanged\"><summary>%D asset%S unchanged</summary><ul>",
                 total, total == 1 ? "" : "s");
        for (i = 0; i < nsame && i < STEPS_PER_PAGE; i++) {
            s = json_array_get(same, i);
            wbuf_fmt(&r->out, "<li>%s <q>%s</q></li>", jstr(s, "kind"), jstr(s, "name"));
        }
        wbuf_puts(&r->out, "</ul>");
        if (nsame > STEPS_PER_PAGE || (size_t)total > nsame)
            wbuf_fmt(&r->out,
                     "<p class=\"small\">The unchanged assets among this page's steps are listed; "
                     "<code>cadence plan show %s</code> lists every step.</p>",
                     id);
        wbuf_puts(&r->out, "</details>");
    }
    if (paged && shown)
        steps_nav(r, id, lo, hi, nsteps, next);
    wbuf_puts(&r->out, "<script src=\"/assets/plan.js\" defer></script>");
    admin_page_end(r);
}

void admin_plan_get(struct web_req *r)
{
    json_t *plan = load_plan(r);
    if (!plan)
        return;
    const char *done = web_req_query(r, "confirmed");
    render_plan(r, plan, NULL, NULL,
                done && strcmp(done, "1") == 0 ? "Confirmed: the plan is applying in the background"
                                               : NULL);
    json_decref(plan);
}

/* ---- progress as JSON ---- */

void admin_plan_progress_get(struct web_req *r)
{
    /* polled every second during an apply: the plan's status, not the plan */
    const char *id = route_param(&r->params, "id");
    char status[32];
    int rc = valid_plan_id(id) ? plan_status_get(r->st, id, status, sizeof status) : CAD_ENOTFOUND;
    if (rc) {
        if (rc != CAD_ENOTFOUND)
            cad_log(LOG_ERROR, "console.plan", "what=plan_status_get error=\"%s\"", cad_errmsg());
        r->status = rc == CAD_ENOTFOUND ? 404 : 503;
        r->content_type = "application/json";
        wbuf_puts(&r->out, rc == CAD_ENOTFOUND ? "{\"error\":\"no such plan\"}"
                                               : "{\"error\":\"temporarily unavailable\"}");
        return;
    }
    worker_pool *w = web_server_workers(r->srv);
    struct worker_status ws;
    bool known = w && worker_status(w, id, &ws);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "status", json_string(status));
    json_object_set_new(o, "worker", json_string(known ? worker_job_state_name(ws.state) : "none"));
    if (known) {
        json_object_set_new(o, "message", json_string(ws.message));
        if (ws.has_progress) {
            const struct plan_progress *p = &ws.progress;
            json_t *kinds = json_object();
            for (int k = 0; k < KINDS; k++)
                if (p->per_kind_total[k])
                    json_object_set_new(kinds, asset_kind_name((enum asset_kind)k),
                                        json_pack("{s:i, s:i}", "done", p->per_kind_done[k],
                                                  "total", p->per_kind_total[k]));
            json_object_set_new(
                o, "progress",
                json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:b, s:o}", "total",
                          p->total, "done", p->done, "failed", p->failed, "conflict", p->conflict,
                          "skipped", p->skipped, "running", p->running, "calls",
                          (json_int_t)p->calls, "throttled", (json_int_t)p->throttled, "elapsed_ms",
                          (json_int_t)p->elapsed_ms, "eta_ms", (json_int_t)p->eta_ms, "revoked",
                          p->revoked, "kinds", kinds));
        }
    }
    const char *st = status;
    bool final = strcmp(st, "done") == 0 || strcmp(st, "partial") == 0 ||
                 strcmp(st, "cancelled") == 0 || strcmp(st, "expired") == 0 ||
                 (strcmp(st, "paused") == 0 && (!known || ws.state == WORKER_FINISHED));
    json_object_set_new(o, "final", json_boolean(final));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    r->content_type = "application/json";
    if (!text) {
        r->status = 500;
        wbuf_puts(&r->out, "{\"error\":\"out of memory\"}");
        return;
    }
    r->status = 200;
    wbuf_puts(&r->out, text);
    free(text);
}

/* ---- confirm and cancel ---- */

static int status_for(int rc)
{
    return rc == CAD_ENOTFOUND ? 404 : rc == CAD_EIO ? 503 : rc == CAD_ESTATE ? 409 : 400;
}

void admin_plan_confirm_post(struct web_req *r)
{
    json_t *plan = load_plan(r);
    if (!plan)
        return;
    const char *id = jstr(plan, "id");
    const char *hash = web_form_get(&r->form, "hash");
    if (!hash || !*hash) {
        r->status = 400;
        render_plan(r, plan, "Not confirmed",
                    "Tick the box that confirms this plan's hash, then press Confirm.", NULL);
        json_decref(plan);
        return;
    }
    int rc = plan_confirm(r->st, r->sess.email, id, hash);
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", cad_errmsg());
        cad_log(LOG_INFO, "console.plan_confirm_refused", "plan=%s operator=%s", id, r->sess.email);
        json_decref(plan);
        plan = load_plan(r);
        if (!plan)
            return;
        r->status = status_for(rc);
        render_plan(r, plan, "Not confirmed", msg, NULL);
        json_decref(plan);
        return;
    }
    worker_pool *w = web_server_workers(r->srv);
    if (w && worker_queue(w, id, jstr(plan, "tenant")) != CAD_OK)
        cad_log(LOG_ERROR, "console.plan_queue", "plan=%s error=\"%s\"", id, cad_errmsg());
    /* r->location is read after the handler returns: the buffer outlives this frame. */
    static _Thread_local char location[96];
    snprintf(location, sizeof location, "/admin/plans/%s?confirmed=1", id);
    json_decref(plan);
    r->status = 303;
    r->location = location;
}

void admin_plan_cancel_post(struct web_req *r)
{
    json_t *plan = load_plan(r);
    if (!plan)
        return;
    const char *id = jstr(plan, "id");
    int rc = plan_cancel(r->st, r->sess.email, id);
    if (rc == CAD_OK) {
        worker_pool *w = web_server_workers(r->srv);
        if (w)
            worker_unqueue(w, id);
    }
    char msg[512];
    snprintf(msg, sizeof msg, "%s", rc ? cad_errmsg() : "");
    json_decref(plan);
    if (!(plan = load_plan(r)))
        return;
    r->status = rc ? status_for(rc) : 200;
    if (rc)
        render_plan(r, plan, "Not cancelled", msg, NULL);
    else
        render_plan(r, plan, NULL, NULL, "Cancelled: this plan will not be applied");
    json_decref(plan);
}

/* ---- sending a campaign ---- */

/* The campaign named in the URL, when the plan creates or changes it (not only on this page). */
static bool campaign_of_plan(const json_t *plan, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(plan, "campaigns"), i, c)
    {
        const char *n = json_string_value(c);
        if (n && strcmp(n, name) == 0)
            return true;
    }
    return false;
}

static json_t *load_campaign(struct web_req *r, const char **name)
{
    json_t *plan = load_plan(r);
    if (!plan)
        return NULL;
    *name = route_param(&r->params, "name");
    if (!valid_name(*name) || !campaign_of_plan(plan, *name)) {
        json_decref(plan);
        page_message(r, 404, "No such campaign", "This plan has no campaign of that name.");
        return NULL;
    }
    return plan;
}

void admin_campaign_prepare_post(struct web_req *r)
{
    const char *name = NULL;
    json_t *plan = load_campaign(r, &name);
    if (!plan)
        return;
    const char *at = web_form_get(&r->form, "at");
    if (at && !*at)
        at = NULL;
    if (at && (strlen(at) > 40 || strspn(at, "0123456789-:TZ.+") != strlen(at))) {
        r->status = 400;
        render_plan(r, plan, "Not prepared",
                    "The send time is an ISO time like 2026-12-01T09:00:00Z, or empty for now.",
                    NULL);
        json_decref(plan);
        return;
    }
    if (!web_req_vault(r)) {
        json_decref(plan);
        return;
    }
    struct campaign_send_preview pv;
    int rc = campaign_send_prepare(r->st, r->v, r->sess.email, jstr(plan, "tenant"), name, at, &pv);
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", cad_errmsg());
        r->status = status_for(rc);
        render_plan(r, plan, "Cannot send this campaign", msg, NULL);
        json_decref(plan);
        return;
    }
    const char *id = jstr(plan, "id");
    admin_page_begin(r, "Send a campaign", "plans");
    wbuf_fmt(&r->out,
             "<p><a href=\"/admin/plans/%s\">Back to the plan</a></p><h1>Send <q>%s</q>?</h1>"
             "<dl class=\"meta\" id=\"send-preview\"><dt>Tenant</dt><dd>%s</dd><dt>Klaviyo id</dt>"
             "<dd>%s</dd><dt>Audience</dt><dd id=\"audience\">%s</dd><dt>Send time</dt>"
             "<dd id=\"send-at\">%s</dd></dl><form method=\"post\" "
             "action=\"/admin/plans/%s/campaigns/%s/send\">",
             id, name, jstr(plan, "tenant"), pv.remote_id, pv.audience, pv.send_at, id, name);
    admin_csrf_field(r);
    wbuf_fmt(&r->out,
             "<input type=\"hidden\" name=\"code\" value=\"%s\"><p><input type=\"checkbox\" "
             "id=\"send-confirm\" name=\"confirm\" value=\"send\" required> <label "
             "for=\"send-confirm\">Send <q>%s</q> to this audience, %s</label></p><button "
             "type=\"submit\">Send campaign</button></form><p class=\"small\">This confirmation "
             "is valid for 15 minutes.</p>",
             pv.code, name, pv.send_at);
    admin_page_end(r);
    json_decref(plan);
}

void admin_campaign_send_post(struct web_req *r)
{
    const char *name = NULL;
    json_t *plan = load_campaign(r, &name);
    if (!plan)
        return;
    const char *code = web_form_get(&r->form, "code");
    const char *confirm = web_form_get(&r->form, "confirm");
    if (!code || !*code || !confirm || strcmp(confirm, "send") != 0) {
        r->status = 400;
        render_plan(r, plan, "Not sent",
                    "Sending needs its own confirmation: review the send again and tick the box.",
                    NULL);
        json_decref(plan);
        return;
    }
    if (!web_req_vault(r)) {
        json_decref(plan);
        return;
    }
    char msg[512] = "";
    int rc = campaign_send_confirm(r->st, r->v, r->sess.email, jstr(plan, "tenant"), name, code,
                                   msg, sizeof msg);
    if (rc) {
        snprintf(msg, sizeof msg, "%s", cad_errmsg());
        r->status = status_for(rc);
        render_plan(r, plan, "Not sent", msg, NULL);
    } else {
        render_plan(r, plan, NULL, NULL, msg[0] ? msg : "Campaign sent");
    }
    json_decref(plan);
}
