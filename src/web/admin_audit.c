/*
 * The console's audit viewer: the audit log filtered by tenant, actor, action, status and time,
 * in pages of 50 (oldest first, like `cadence audit list`), the same selection as CSV (the audit
 * module's RFC 4180 export, formula cells neutralised), and a "Verify chain" button that walks
 * the whole hash chain and shows the verdict.
 *
 * The filters come from the query string and are checked before the log is read: a malformed one
 * gets the page back with a 400 and what is wrong, never a partial listing. Exports are recorded
 * in the audit log themselves (audit.export), since they carry the whole trail out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "web/web_internal.h"

#define AUDIT_PAGE 50

/* The filter form's values as given (for re-rendering and links) and as parsed. */
struct audit_query {
    const char *tenant, *actor, *action, *status, *since, *until;
    int64_t after;
    struct audit_filter f;
    const char *error; /* what is wrong with the filters, or NULL */
};

static const char *qval(struct web_req *r, const char *name)
{
    const char *v = web_req_query(r, name);
    return v ? v : "";
}

static bool printable(const char *s, size_t max)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return n <= max;
}

static bool charset(const char *s, const char *allowed)
{
    return strspn(s, allowed) == strlen(s);
}

static void parse_query(struct web_req *r, struct audit_query *q)
{
    memset(q, 0, sizeof *q);
    q->tenant = qval(r, "tenant");
    q->actor = qval(r, "actor");
    q->action = qval(r, "action");
    q->status = qval(r, "status");
    q->since = qval(r, "since");
    q->until = qval(r, "until");
    const char *after = qval(r, "after");
    if (strlen(q->tenant) >= TENANT_ID_MAX ||
        !charset(q->tenant, "abcdefghijklmnopqrstuvwxyz0123456789-")) {
        q->error = "A tenant id is lower-case letters, digits and dashes, like acme-outdoors.";
        return;
    }
    if (!printable(q->actor, 254)) {
        q->error = "An actor is an operator's email, \"client\" or \"system\".";
        return;
    }
    if (strlen(q->action) > 64 || !charset(q->action, "abcdefghijklmnopqrstuvwxyz0123456789._*") ||
        (strchr(q->action, '*') && strchr(q->action, '*') != q->action + strlen(q->action) - 1)) {
        q->error = "An action is like key.set, or a prefix ending in *, like klaviyo.*.";
        return;
    }
    q->f.tenant_id = *q->tenant ? q->tenant : NULL;
    q->f.actor = *q->actor ? q->actor : NULL;
    q->f.action = *q->action ? q->action : NULL;
    if (strcmp(q->status, "none") == 0) {
        q->f.status = -1;
    } else if (*q->status) {
        char *end;
        long v = strtol(q->status, &end, 10);
        if (*end || v < 100 || v > 599) {
            q->error = "A status is an HTTP or SMTP code from 100 to 599, or \"none\" for calls "
                       "with no outcome recorded.";
            return;
        }
        q->f.status = (int)v;
    }
    if ((*q->since && (strlen(q->since) > 40 || time_parse(q->since, &q->f.since_ms) != CAD_OK)) ||
        (*q->until && (strlen(q->until) > 40 || time_parse(q->until, &q->f.until_ms) != CAD_OK))) {
        q->error = "Times are UTC, like 2026-11-26 or 2026-11-26T19:22.";
        return;
    }
    if (*after) {
        char *end;
        long long v = strtoll(after, &end, 10);
        if (*end || v < 0) {
            q->error = "The page position is not a record number.";
            return;
        }
        q->after = q->f.after_seq = v;
    }
}

/* Appends name=value (percent-encoded) to a query string. */
static void qs_add(char *qs, size_t size, const char *name, const char *value)
{
    if (!*value)
        return;
    size_t n = strlen(qs);
    n += (size_t)snprintf(qs + n, n < size ? size - n : 0, "%s%s=", n ? "&" : "", name);
    for (const unsigned char *p = (const unsigned char *)value; *p && n + 4 < size; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_')
            qs[n++] = (char)*p;
        else
            n += (size_t)snprintf(qs + n, size - n, "%%%02X", *p);
    }
    qs[n < size ? n : size - 1] = 0;
}

static void filters_qs(const struct audit_query *q, char *qs, size_t size)
{
    qs[0] = 0;
    qs_add(qs, size, "tenant", q->tenant);
    qs_add(qs, size, "actor", q->actor);
    qs_add(qs, size, "action", q->action);
    qs_add(qs, size, "status", q->status);
    qs_add(qs, size, "since", q->since);
    qs_add(qs, size, "until", q->until);
}

struct rows_ctx {
    struct web_req *r;
    int n;
    int64_t last_seq;
};

static int audit_row(void *p, const struct audit_record *rec)
{
    struct rows_ctx *rc = p;
    if (++rc->n > AUDIT_PAGE)
        return 1;
    rc->last_seq = rec->seq;
    struct web_req *r = rc->r;
    char when[32], status[16] = "", dur[24] = "";
    time_format_ms(rec->ts_ms, when, sizeof when);
    if (rec->status == -1)
        snprintf(status, sizeof status, "no outcome");
    else if (rec->status > 0)
        snprintf(status, sizeof status, "%d", rec->status);
    if (rec->duration_ms >= 0)
        snprintf(dur, sizeof dur, "%lld ms", (long long)rec->duration_ms);
    wbuf_fmt(&r->out,
             "<tr><td>%D</td><td><time>%s</time></td><td>%s</td><td>%s</td><td>%s</td>"
             "<td>%s %s</td><td>%s</td><td>%s</td><td class=\"detail\">%s</td></tr>",
             rec->seq, when, rec->tenant_id ? rec->tenant_id : "", rec->actor, rec->action,
             rec->method ? rec->method : "", rec->endpoint ? rec->endpoint : "", status, dur,
             rec->detail ? rec->detail : "");
    return 0;
}

static void filter_field(struct web_req *r, const char *id, const char *label, const char *value,
                         const char *placeholder)
{
    wbuf_fmt(&r->out,
             "<div class=\"field\"><label for=\"f-%s\">%s</label><input id=\"f-%s\" name=\"%s\" "
             "type=\"text\" value=\"%s\" placeholder=\"%s\" autocomplete=\"off\"></div>",
             id, label, id, id, value, placeholder);
}

static void render_audit(struct web_req *r, struct audit_query *q, const char *note_title,
                         const char *note_text, bool note_good)
{
    admin_page_begin(r, "Audit log", "audit");
    wbuf_puts(&r->out, "<h1>Audit log</h1>");
    if (note_title)
        wbuf_fmt(&r->out,
                 "<div class=\"notice %S\" role=\"%S\" tabindex=\"-1\" id=\"notice\">"
                 "<p class=\"notice-title\">%s</p><p>%s</p></div>",
                 note_good ? "good" : "bad", note_good ? "status" : "alert", note_title, note_text);
    if (q->error)
        wbuf_fmt(&r->out,
                 "<div class=\"notice bad\" role=\"alert\" tabindex=\"-1\" id=\"notice\">"
                 "<p class=\"notice-title\">Please check the filters</p><p>%s</p></div>",
                 q->error);
    wbuf_puts(&r->out, "<form method=\"get\" action=\"/admin/audit\" class=\"filters\">");
    filter_field(r, "tenant", "Tenant", q->tenant, "acme-outdoors");
    filter_field(r, "actor", "Actor", q->actor, "name@agency.com");
    filter_field(r, "action", "Action", q->action, "klaviyo.*");
    filter_field(r, "status", "Status", q->status, "401 or none");
    filter_field(r, "since", "From (UTC)", q->since, "2026-11-01");
    filter_field(r, "until", "Before (UTC)", q->until, "2026-12-01");
    char qs[1600];
    filters_qs(q, qs, sizeof qs);
    wbuf_fmt(&r->out,
             "<div class=\"actions\"><button type=\"submit\" class=\"primary\">Filter</button>"
             "<a class=\"button secondary\" href=\"/admin/audit\">Clear</a>"
             "<a class=\"button secondary\" id=\"csv\" href=\"/admin/audit.csv%S%s\" "
             "download>Export CSV</a></div></form>",
             qs[0] ? "?" : "", qs);
    wbuf_puts(&r->out, "<form method=\"post\" action=\"/admin/audit/verify\" class=\"verify\">");
    admin_csrf_field(r);
    wbuf_puts(&r->out, "<button type=\"submit\" class=\"secondary\" id=\"verify-chain\">Verify "
                       "chain</button> <span class=\"small\">Checks every record's hash against "
                       "the one before it.</span></form>");
    if (q->error) {
        admin_page_end(r);
        return;
    }
    wbuf_puts(&r->out, "<div class=\"table-wrap\"><table class=\"grid-table audit\" id=\"audit\">"
                       "<thead><tr><th scope=\"col\">#</th><th scope=\"col\">Time (UTC)</th>"
                       "<th scope=\"col\">Tenant</th><th scope=\"col\">Actor</th>"
                       "<th scope=\"col\">Action</th><th scope=\"col\">Call</th>"
                       "<th scope=\"col\">Status</th><th scope=\"col\">Duration</th>"
                       "<th scope=\"col\">Detail</th></tr></thead><tbody>");
    struct rows_ctx rc = {r, 0, 0};
    q->f.limit = AUDIT_PAGE + 1;
    int st = audit_list(r->st, &q->f, audit_row, &rc);
    if (st < 0) {
        cad_log(LOG_ERROR, "console.audit", "error=\"%s\"", cad_errmsg());
        page_message(r, 503, "Temporarily unavailable",
                     "The audit log could not be read just now. Please try again in a few "
                     "minutes.");
        return;
    }
    wbuf_puts(&r->out, "</tbody></table></div>");
    if (rc.n == 0)
        wbuf_puts(&r->out, "<p>No records match these filters.</p>");
    wbuf_puts(&r->out, "<nav class=\"pager\" aria-label=\"Pages\">");
    if (q->after)
        wbuf_fmt(&r->out, "<a href=\"/admin/audit%S%s\">First page</a>", qs[0] ? "?" : "", qs);
    if (rc.n > AUDIT_PAGE)
        wbuf_fmt(&r->out, "<a href=\"/admin/audit?%s%Safter=%D\" rel=\"next\">Next page</a>", qs,
                 qs[0] ? "&amp;" : "", rc.last_seq);
    wbuf_puts(&r->out, "</nav>");
    admin_page_end(r);
}

void admin_audit_get(struct web_req *r)
{
    struct audit_query q;
    parse_query(r, &q);
    r->status = q.error ? 400 : 200;
    render_audit(r, &q, NULL, NULL, false);
}

void admin_audit_csv_get(struct web_req *r)
{
    struct audit_query q;
    parse_query(r, &q);
    if (q.error) {
        r->status = 400;
        render_audit(r, &q, NULL, NULL, false);
        return;
    }
    q.f.after_seq = 0;
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    int rc = mem ? audit_export_csv(r->st, &q.f, mem) : cad_fail(CAD_ENOMEM, "out of memory");
    if (mem && fclose(mem) != 0 && !rc)
        rc = cad_fail(CAD_ENOMEM, "out of memory");
    if (!rc) {
        char qs[1600], detail[1700];
        filters_qs(&q, qs, sizeof qs);
        snprintf(detail, sizeof detail, "CSV export (%s)", qs[0] ? qs : "everything");
        struct audit_entry e = {
            .actor = r->sess.email, .action = "audit.export", .duration_ms = -1, .detail = detail};
        rc = audit_append(r->st, &e, NULL);
    }
    if (rc) {
        free(buf);
        cad_log(LOG_ERROR, "console.audit", "error=\"%s\"", cad_errmsg());
        page_message(r, 503, "Temporarily unavailable",
                     "The export could not be made just now. Please try again in a few minutes.");
        return;
    }
    r->status = 200;
    r->content_type = "text/csv; charset=utf-8";
    r->disposition = "attachment; filename=\"cadence-audit.csv\"";
    wbuf_put(&r->out, buf, len);
    free(buf);
}

void admin_audit_verify_post(struct web_req *r)
{
    struct audit_verify_result vr;
    int rc = audit_verify(r->st, &vr);
    struct audit_query q;
    memset(&q, 0, sizeof q);
    q.tenant = q.actor = q.action = q.status = q.since = q.until = "";
    char text[400];
    cad_log(LOG_INFO, "console.audit_verify", "operator=%s ok=%d records=%lld", r->sess.email,
            vr.ok, (long long)vr.records);
    r->status = 200;
    if (rc == CAD_OK) {
        snprintf(text, sizeof text,
                 "All %lld records verify: none was altered, removed or reordered.",
                 (long long)vr.records);
        render_audit(r, &q, "Chain verified", text, true);
    } else if (rc == CAD_ECORRUPT) {
        snprintf(text, sizeof text, "%s (first bad record: #%lld, %lld records checked).",
                 vr.reason, (long long)vr.first_bad, (long long)vr.records);
        render_audit(r, &q, "The chain is broken", text, false);
    } else {
        cad_log(LOG_ERROR, "console.audit_verify", "error=\"%s\"", cad_errmsg());
        page_message(r, 503, "Temporarily unavailable",
                     "The audit log could not be checked just now. Please try again later.");
    }
}
