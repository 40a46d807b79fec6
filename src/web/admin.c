/*
 * The operators' console pages for tenants: the list (onboarding step, payment and key state at a
 * glance, search, paging), a tenant's page (what may be shown of its credentials, its onboarding
 * link, payment, emails) with its three actions (issue a link, confirm payment, re-verify the
 * key), the waiting-for-key list and the operators page.
 *
 * Every request here has passed admin_gate(): r->sess is the signed-in operator, forms carried
 * the session's CSRF token, and admin-only routes were checked against the role. Every change is
 * made by the module that owns it (onboard_link_issue, onboard_payment_confirm, credential_*,
 * operator_add) with the operator's email as the audit actor. A tenant id from the URL is only
 * ever a lookup key: an unknown one is a 404, never a new row.
 *
 * Form fields are checked here before anything is read from the store: an id in the path is a
 * slug (a-z, 0-9, '-'), a search is at most 100 characters of plain text, a page number a small
 * integer. Keys are never shown: a credential is its last 4 characters and its fingerprint.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "klaviyo/verify.h"
#include "mail/mail.h"
#include "web/web_internal.h"

#define PAGE_SIZE 50

/* ---- small helpers ---- */

static void when_short(int64_t ms, char *out, size_t size)
{
    if (ms <= 0) {
        snprintf(out, size, "-");
        return;
    }
    char iso[32];
    time_format_ms(ms, iso, sizeof iso);
    snprintf(out, size, "%.10s %.5s UTC", iso, iso + 11);
}

static bool valid_slug(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= TENANT_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

static bool plain_text(const char *s, size_t max)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return n <= max;
}

static void notice(struct web_req *r, bool good, const char *title, const char *text)
{
    wbuf_fmt(&r->out,
             "<div class=\"notice %S\" role=\"%S\" tabindex=\"-1\" id=\"notice\">"
             "<p class=\"notice-title\">%s</p>",
             good ? "good" : "bad", good ? "status" : "alert", title);
    if (text)
        wbuf_fmt(&r->out, "<p>%s</p>", text);
    wbuf_puts(&r->out, "</div>");
}

/* What the list shows for a key state: verified / received / deferred / revoked / waiting. */
static void key_badge(struct web_req *r, const char *state)
{
    const char *label = "waiting", *cls = "wait";
    if (strcmp(state, "verified") == 0)
        label = "verified", cls = "ok";
    else if (strcmp(state, "unverified") == 0)
        label = "received, not verified", cls = "wait";
    else if (strcmp(state, "deferred") == 0)
        label = "deferred", cls = "wait";
    else if (strcmp(state, "revoked") == 0)
        label = "revoked", cls = "bad";
    else if (strcmp(state, "invalid") == 0)
        label = "waiting (last key failed)", cls = "bad";
    wbuf_fmt(&r->out, "<span class=\"badge %S\">%s</span>", cls, label);
}

/* The onboarding step a brand is on, as onboard.c's current_step() decides it. */
static const char *step_label(bool details, const char *key_state, bool extras)
{
    bool settled = strcmp(key_state, "verified") == 0 || strcmp(key_state, "unverified") == 0 ||
                   strcmp(key_state, "deferred") == 0;
    if (!details)
        return "1 \xC2\xB7 Brand details";
    if (!settled)
        return "3 \xC2\xB7 Connect Klaviyo";
    if (!extras)
        return "4 \xC2\xB7 Optional extras";
    return "Done";
}

static void store_error(struct web_req *r, const char *what)
{
    cad_log(LOG_ERROR, "console.store", "what=%s error=\"%s\"", what, cad_errmsg());
    page_message(r, 503, "Temporarily unavailable",
                 "The console could not read or save this just now. Nothing was changed; please "
                 "try again in a few minutes.");
}

/* ---- tenants list ---- */

struct list_ctx {
    struct web_req *r;
    int n;
};

static int tenant_list_row(void *p, const store_row *row)
{
    struct list_ctx *lc = p;
    if (++lc->n > PAGE_SIZE)
        return 0;
    struct web_req *r = lc->r;
    const char *id = store_row_text(row, 0), *state = store_row_text(row, 4);
    wbuf_fmt(&r->out,
             "<tr><td><a href=\"/admin/tenants/%s\">%s</a><div class=\"small\">%s</div>"
             "</td><td>%s</td><td>",
             id, store_row_text(row, 1), id,
             step_label(!store_row_is_null(row, 5), state, !store_row_is_null(row, 6)));
    if (strcmp(store_row_text(row, 3), "confirmed") == 0)
        wbuf_puts(&r->out, "<span class=\"badge ok\">paid</span>");
    else
        wbuf_puts(&r->out, "<span class=\"badge wait\">awaiting payment</span>");
    wbuf_puts(&r->out, "</td><td>");
    key_badge(r, state);
    wbuf_puts(&r->out, "</td></tr>");
    return 0;
}

/* q lower-cased, with LIKE's wildcards (and the escape character '!') escaped, inside %...%. */
static void like_pattern(const char *q, char *out, size_t size)
{
    size_t j = 0;
    out[j++] = '%';
    for (const char *p = q; *p && j + 4 < size; p++) {
        char c = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
        if (c == '%' || c == '_' || c == '!')
            out[j++] = '!';
        out[j++] = c;
    }
    out[j++] = '%';
    out[j] = 0;
}

static bool page_param(struct web_req *r, const char *name, int max, int *out)
{
    const char *s = web_req_query(r, name);
    *out = 0;
    if (!s || !*s)
        return true;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 0 || v > max)
        return false;
    *out = (int)v;
    return true;
}

void admin_tenants_get(struct web_req *r)
{
    const char *q = web_req_query(r, "q");
    int page;
    if (!q)
        q = "";
    if (!plain_text(q, 100) || !page_param(r, "page", 100000, &page)) {
        page_message(r, 400, "Unreadable search",
                     "A search is at most 100 characters of plain text and a page a number.");
        return;
    }
    char pattern[420];
    like_pattern(q, pattern, sizeof pattern);
    admin_page_begin(r, "Tenants", "tenants");
    wbuf_fmt(&r->out,
             "<h1>Tenants</h1><form method=\"get\" action=\"/admin\" class=\"search\" "
             "role=\"search\"><label for=\"q\">Search by name, id or email</label>"
             "<div class=\"inline\"><input id=\"q\" name=\"q\" type=\"search\" value=\"%s\" "
             "maxlength=\"100\"><button type=\"submit\" class=\"secondary\">Search</button>"
             "</div></form>",
             q);
    wbuf_puts(&r->out, "<div class=\"table-wrap\"><table class=\"grid-table\" id=\"tenants\">"
                       "<thead><tr><th scope=\"col\">Tenant</th><th scope=\"col\">Onboarding step"
                       "</th><th scope=\"col\">Payment</th><th scope=\"col\">Klaviyo key</th>"
                       "</tr></thead><tbody>");
    struct list_ctx lc = {r, 0};
    int rc = store_query(
        r->st,
        "SELECT t.id, t.name, t.email, t.payment, COALESCE(c.state, 'none'), p.details_ms, "
        "p.extras_ms FROM tenants t LEFT JOIN credentials c ON c.tenant_id = t.id AND "
        "c.kind = 'klaviyo' LEFT JOIN onboarding_progress p ON p.tenant_id = t.id "
        "WHERE $1 = '' OR lower(t.id) LIKE $2 ESCAPE '!' OR lower(t.name) LIKE $2 ESCAPE '!' "
        "OR lower(COALESCE(t.email, '')) LIKE $2 ESCAPE '!' "
        "ORDER BY t.created_ms, t.id LIMIT $3 OFFSET $4",
        SV_ARGS(SV_TEXT(q), SV_TEXT(pattern), SV_INT(PAGE_SIZE + 1),
                SV_INT((int64_t)page * PAGE_SIZE)),
        tenant_list_row, &lc);
    if (rc) {
        store_error(r, "tenants");
        return;
    }
    wbuf_puts(&r->out, "</tbody></table></div>");
    if (lc.n == 0)
        wbuf_puts(&r->out, *q ? "<p>No tenant matches this search.</p>"
                              : "<p>No tenants yet. Add one with <code>cadence tenant add "
                                "--name \"Brand\"</code>.</p>");
    wbuf_puts(&r->out, "<nav class=\"pager\" aria-label=\"Pages\">");
    if (page > 0)
        wbuf_fmt(&r->out, "<a href=\"/admin?q=%s&amp;page=%d\" rel=\"prev\">Previous page</a>", q,
                 page - 1);
    if (lc.n > PAGE_SIZE)
        wbuf_fmt(&r->out, "<a href=\"/admin?q=%s&amp;page=%d\" rel=\"next\">Next page</a>", q,
                 page + 1);
    wbuf_puts(&r->out, "</nav>");
    admin_page_end(r);
}

/* ---- a tenant's page ---- */

struct tenant_view {
    struct tenant t;
    char brand[256], contact[256];
    int64_t details_ms, extras_ms;
    struct credential_info cred[CRED_KIND_COUNT];
    int64_t link_created_ms, link_expires_ms;
    char link_by[256];
};

static int progress_row(void *p, const store_row *row)
{
    struct tenant_view *tv = p;
    snprintf(tv->brand, sizeof tv->brand, "%s", store_row_text(row, 0));
    snprintf(tv->contact, sizeof tv->contact, "%s", store_row_text(row, 1));
    tv->details_ms = store_row_is_null(row, 2) ? 0 : store_row_int(row, 2);
    tv->extras_ms = store_row_is_null(row, 3) ? 0 : store_row_int(row, 3);
    return 0;
}

static int link_row(void *p, const store_row *row)
{
    struct tenant_view *tv = p;
    tv->link_created_ms = store_row_int(row, 0);
    tv->link_expires_ms = store_row_int(row, 1);
    snprintf(tv->link_by, sizeof tv->link_by, "%s", store_row_text(row, 2));
    return 1;
}

/* Loads the tenant named in the path; writes the 404 / 503 page and returns false otherwise. */
static bool tenant_load(struct web_req *r, struct tenant_view *tv)
{
    memset(tv, 0, sizeof *tv);
    const char *id = route_param(&r->params, "id");
    if (!valid_slug(id)) {
        page_message(r, 404, "No such tenant", "There is no tenant with this id.");
        return false;
    }
    int rc = tenant_get(r->st, id, &tv->t);
    if (rc == CAD_ENOTFOUND) {
        page_message(r, 404, "No such tenant", "There is no tenant with this id.");
        return false;
    }
    if (!rc)
        rc = store_query(r->st,
                         "SELECT brand_name, contact_email, details_ms, extras_ms "
                         "FROM onboarding_progress WHERE tenant_id = $1",
                         SV_ARGS(SV_TEXT(tv->t.id)), progress_row, tv);
    for (int k = 0; !rc && k < CRED_KIND_COUNT; k++)
        rc = credential_info(r->st, tv->t.id, (enum cred_kind)k, &tv->cred[k]);
    if (!rc) {
        rc = store_query(r->st,
                         "SELECT created_ms, expires_ms, created_by FROM onboarding_links "
                         "WHERE tenant_id = $1 AND revoked_ms IS NULL AND expires_ms > $2 "
                         "ORDER BY created_ms DESC",
                         SV_ARGS(SV_TEXT(tv->t.id), SV_INT(time_now_ms())), link_row, tv);
        rc = rc < 0 ? rc : CAD_OK;
    }
    if (rc) {
        store_error(r, "tenant");
        return false;
    }
    return true;
}

/* "lists: read ok; templates: read missing; ..." from the scopes JSON of the last verification. */
static const char *kind_title(enum cred_kind k)
{
    static const char *const titles[CRED_KIND_COUNT] = {"Klaviyo", "Shopify", "Postscript",
                                                        "Attentive"};
    return (unsigned)k < CRED_KIND_COUNT ? titles[k] : "?";
}

/* A provider's verification (providers/providers.h): {"scopes":[...],"missing":[...],
 * "warning":"..."}: the scopes the token has, those it lacks, the least-privilege warning. */
static void provider_scopes_cell(struct web_req *r, json_t *root)
{
    size_t i;
    json_t *v;
    wbuf_puts(&r->out, "<ul class=\"scope-list\">");
    json_array_foreach(json_object_get(root, "scopes"), i, v)
    {
        if (json_is_string(v))
            wbuf_fmt(&r->out, "<li class=\"ok\">%s</li>", json_string_value(v));
    }
    json_array_foreach(json_object_get(root, "missing"), i, v)
    {
        if (json_is_string(v))
            wbuf_fmt(&r->out, "<li class=\"bad\">missing %s</li>", json_string_value(v));
    }
    wbuf_puts(&r->out, "</ul>");
    const char *warning = json_string_value(json_object_get(root, "warning"));
    if (warning)
        wbuf_fmt(&r->out, "<div class=\"small warn\">%s</div>", warning);
}

static void scopes_cell(struct web_req *r, const char *json)
{
    json_error_t err;
    json_t *root = *json ? json_loads(json, 0, &err) : NULL;
    if (!json_is_object(root)) {
        wbuf_puts(&r->out, "-");
        json_decref(root);
        return;
    }
    if (json_is_array(json_object_get(root, "scopes"))) {
        provider_scopes_cell(r, root);
        json_decref(root);
        return;
    }
    const char *family;
    json_t *v;
    wbuf_puts(&r->out, "<ul class=\"scope-list\">");
    json_object_foreach(root, family, v)
    {
        const char *read = json_is_string(v) ? json_string_value(v)
                           : json_is_string(json_object_get(v, "read"))
                               ? json_string_value(json_object_get(v, "read"))
                               : "?";
        wbuf_fmt(&r->out, "<li class=\"%S\">%s: %s</li>", strcmp(read, "ok") == 0 ? "ok" : "bad",
                 family, read);
    }
    wbuf_puts(&r->out, "</ul>");
    json_decref(root);
}

/* The account a credential belongs to: its name and id; for Shopify the shop's name and its
 * myshopify.com domain (the one recorded with the token when it has not been verified yet). */
static void account_cell(struct web_req *r, const struct credential_info *c)
{
    char shop[128] = "";
    if (c->kind == CRED_SHOPIFY && c->extra[0]) {
        json_t *doc = json_loads(c->extra, 0, NULL);
        const char *d = json_string_value(json_object_get(doc, "shop"));
        if (d)
            snprintf(shop, sizeof shop, "%s", d);
        json_decref(doc);
    }
    const char *id = c->account_id[0] ? c->account_id : shop;
    if (!c->account_name[0] && !*id) {
        wbuf_puts(&r->out, "-");
        return;
    }
    if (c->account_name[0])
        wbuf_fmt(&r->out, "%s", c->account_name);
    if (*id)
        wbuf_fmt(&r->out, "%S<span class=\"small\">%s</span>", c->account_name[0] ? "<br>" : "",
                 id);
}

struct mail_rows {
    struct web_req *r;
    int n;
};

static int tenant_mail_row(void *p, const struct mail_info *m)
{
    struct mail_rows *mr = p;
    char created[40], sent[40];
    when_short(m->created_ms, created, sizeof created);
    when_short(m->sent_ms, sent, sizeof sent);
    if (mr->n++ == 0)
        wbuf_puts(&mr->r->out,
                  "<div class=\"table-wrap\"><table class=\"grid-table\"><thead><tr>"
                  "<th scope=\"col\">Email</th><th scope=\"col\">To</th><th scope=\"col\">Queued"
                  "</th><th scope=\"col\">Status</th><th scope=\"col\">Sent</th></tr></thead>"
                  "<tbody>");
    wbuf_fmt(&mr->r->out, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>",
             m->kind, m->to, created, m->status, sent);
    return 0;
}

static void render_tenant(struct web_req *r, struct tenant_view *tv, bool good, const char *title,
                          const char *text, const char *link_url)
{
    char when[40];
    admin_page_begin(r, tv->t.name, "tenants");
    wbuf_fmt(&r->out, "<p class=\"eyebrow\"><a href=\"/admin\">Tenants</a> / %s</p><h1>%s</h1>",
             tv->t.id, tv->t.name);
    if (title)
        notice(r, good, title, text);
    if (link_url)
        wbuf_fmt(&r->out,
                 "<div class=\"notice good once\" role=\"status\"><p class=\"notice-title\">"
                 "New onboarding link (shown once)</p><p>Copy it now and send it to the brand "
                 "only; it is not stored and cannot be shown again. Any earlier link no longer "
                 "works.</p><p><input type=\"text\" readonly id=\"new-link\" value=\"%s\" "
                 "aria-label=\"New onboarding link\"></p></div>",
                 link_url);

    const struct credential_info *k = &tv->cred[CRED_KLAVIYO];
    wbuf_puts(&r->out, "<section class=\"card\"><h2>Brand</h2><dl class=\"summary\">");
    wbuf_fmt(&r->out, "<dt>Tenant email</dt><dd>%s</dd>", tv->t.email[0] ? tv->t.email : "-");
    wbuf_fmt(&r->out, "<dt>Brand (as entered)</dt><dd>%s</dd><dt>Contact</dt><dd>%s</dd>",
             tv->brand[0] ? tv->brand : "-", tv->contact[0] ? tv->contact : "-");
    wbuf_fmt(&r->out, "<dt>Onboarding step</dt><dd>%s</dd>",
             step_label(tv->details_ms != 0, key_state_name(k->state), tv->extras_ms != 0));
    when_short(tv->t.payment_ms, when, sizeof when);
    wbuf_fmt(&r->out, "<dt>Payment</dt><dd>%s%s%s</dd>",
             tv->t.paid ? "confirmed " : "awaiting payment", tv->t.paid ? when : "", "");
    if (tv->link_created_ms) {
        char exp[40];
        when_short(tv->link_created_ms, when, sizeof when);
        when_short(tv->link_expires_ms, exp, sizeof exp);
        wbuf_fmt(&r->out, "<dt>Onboarding link</dt><dd>issued %s by %s, valid until %s</dd>", when,
                 tv->link_by, exp);
    } else {
        wbuf_puts(&r->out, "<dt>Onboarding link</dt><dd>none valid</dd>");
    }
    wbuf_puts(&r->out, "</dl><div class=\"actions\">");
    wbuf_fmt(&r->out, "<form method=\"post\" action=\"/admin/tenants/%s/link\">", tv->t.id);
    admin_csrf_field(r);
    wbuf_puts(&r->out, "<button type=\"submit\" class=\"secondary\" id=\"issue-link\">Issue "
                       "onboarding link</button></form>");
    if (r->sess.role == ROLE_ADMIN && !tv->t.paid) {
        wbuf_fmt(&r->out, "<form method=\"post\" action=\"/admin/tenants/%s/paid\">", tv->t.id);
        admin_csrf_field(r);
        wbuf_puts(&r->out, "<button type=\"submit\" class=\"primary\" id=\"confirm-payment\">"
                           "Confirm payment</button></form>");
    }
    if (k->has_secret) {
        wbuf_fmt(&r->out, "<form method=\"post\" action=\"/admin/tenants/%s/reverify\">", tv->t.id);
        admin_csrf_field(r);
        wbuf_puts(&r->out, "<button type=\"submit\" class=\"secondary\" id=\"reverify\">"
                           "Re-verify key</button></form>");
    }
    wbuf_puts(&r->out, "</div></section>");

    wbuf_puts(&r->out,
              "<section class=\"card\"><h2>Connections</h2><div class=\"table-wrap\">"
              "<table class=\"grid-table\" id=\"credentials\"><thead><tr>"
              "<th scope=\"col\">Kind</th><th scope=\"col\">State</th><th scope=\"col\">Last 4"
              "</th><th scope=\"col\">Fingerprint</th><th scope=\"col\">Account</th>"
              "<th scope=\"col\">Scopes</th><th scope=\"col\">Verified</th></tr></thead><tbody>");
    for (int i = 0; i < CRED_KIND_COUNT; i++) {
        const struct credential_info *c = &tv->cred[i];
        when_short(c->verified_ms, when, sizeof when);
        wbuf_fmt(&r->out, "<tr id=\"cred-%s\"><th scope=\"row\">%s</th><td>",
                 cred_kind_name(c->kind), kind_title(c->kind));
        key_badge(r, key_state_name(c->state));
        wbuf_fmt(&r->out, "%S%s%S</td><td>%s</td><td><code>%s</code></td><td>",
                 c->detail[0] ? "<div class=\"small\">" : "", c->detail,
                 c->detail[0] ? "</div>" : "", c->has_secret ? c->last4 : "-",
                 c->has_secret ? c->fingerprint : "-");
        account_cell(r, c);
        wbuf_puts(&r->out, "</td><td>");
        scopes_cell(r, c->scopes);
        wbuf_fmt(&r->out, "</td><td>%s</td></tr>", when);
    }
    wbuf_puts(&r->out, "</tbody></table></div></section>");

    wbuf_puts(&r->out, "<section class=\"card\"><h2>Emails to the brand</h2>");
    struct mail_rows mr = {r, 0};
    struct mail_filter mf = {.tenant_id = tv->t.id};
    if (mail_list(r->st, &mf, tenant_mail_row, &mr) != CAD_OK) {
        store_error(r, "mail");
        return;
    }
    wbuf_puts(&r->out, mr.n ? "</tbody></table></div>" : "<p>None yet.</p>");
    wbuf_fmt(&r->out,
             "</section><p><a href=\"/admin/audit?tenant=%s\">This tenant's audit trail</a></p>",
             tv->t.id);
    admin_page_end(r);
}

void admin_tenant_get(struct web_req *r)
{
    struct tenant_view tv;
    if (!tenant_load(r, &tv))
        return;
    r->status = 200;
    render_tenant(r, &tv, true, NULL, NULL, NULL);
}

void admin_tenant_link_post(struct web_req *r)
{
    struct tenant_view tv;
    if (!tenant_load(r, &tv))
        return;
    int64_t ttl;
    char base[512], token[WEB_TOKEN_LEN + 1], url[600];
    snprintf(base, sizeof base, "%s", web_server_public_url(r->srv));
    if (onboard_link_ttl_from_env(&ttl) != CAD_OK ||
        onboard_link_issue(r->st, r->sess.email, tv.t.id, ttl, token, NULL) != CAD_OK) {
        store_error(r, "link");
        return;
    }
    snprintf(url, sizeof url, "%s/onboard/%s", base, token);
    OPENSSL_cleanse(token, sizeof token);
    cad_log(LOG_INFO, "console.link", "tenant=%s operator=%s", tv.t.id, r->sess.email);
    if (!tenant_load(r, &tv)) {
        OPENSSL_cleanse(url, sizeof url);
        return;
    }
    r->status = 200;
    render_tenant(r, &tv, true, NULL, NULL, url);
    OPENSSL_cleanse(url, sizeof url);
}

void admin_tenant_paid_post(struct web_req *r)
{
    struct tenant_view tv;
    if (!tenant_load(r, &tv))
        return;
    struct onboard_payment_result pr;
    if (onboard_payment_confirm(r->st, r->sess.email, tv.t.id, &pr) != CAD_OK) {
        store_error(r, "payment");
        return;
    }
    cad_log(LOG_INFO, "console.paid", "tenant=%s operator=%s key_request=%s", tv.t.id,
            r->sess.email, pr.key_requested ? "queued" : "no");
    if (!tenant_load(r, &tv))
        return;
    char text[600];
    if (pr.was_paid)
        snprintf(text, sizeof text, "Nothing changed.");
    else if (pr.key_requested)
        snprintf(text, sizeof text,
                 "The brand chose to send its Klaviyo key later, so an email asking for it, "
                 "with a fresh onboarding link, is queued to %s. The brand's earlier link no "
                 "longer works.",
                 pr.to);
    else if (pr.no_address)
        snprintf(text, sizeof text,
                 "The brand chose to send its Klaviyo key later, but there is no email address "
                 "to ask it at. Issue an onboarding link and send it yourself.");
    else
        snprintf(text, sizeof text,
                 "The brand sees \xE2\x80\x9CPayment confirmed\xE2\x80\x9D "
                 "on its onboarding page.");
    r->status = 200;
    render_tenant(r, &tv, !pr.no_address,
                  pr.was_paid ? "The payment was already confirmed" : "Payment confirmed", text,
                  NULL);
}

/* What a failed re-verification means for the stored key (as `cadence key verify` records it):
 * a key that had worked and is now rejected was revoked; one that never worked is invalid; a
 * check that could not reach Klaviyo changes nothing. */
static int record_reverify_failure(struct web_req *r, const struct tenant_view *tv,
                                   const struct klaviyo_verify_result *vr)
{
    enum key_state cur = tv->cred[CRED_KLAVIYO].state;
    if (vr->status == KLAVIYO_VERIFY_REJECTED && (cur == KEY_VERIFIED || cur == KEY_REVOKED))
        return credential_set_state(r->st, r->sess.email, tv->t.id, CRED_KLAVIYO, KEY_REVOKED,
                                    "key.revoked", "rejected by Klaviyo (re-verified in console)");
    if (cur == KEY_VERIFIED ||
        (vr->status != KLAVIYO_VERIFY_REJECTED && vr->status != KLAVIYO_VERIFY_BAD_FORMAT &&
         vr->status != KLAVIYO_VERIFY_MISSING_SCOPES))
        return CAD_OK;
    char detail[300];
    snprintf(detail, sizeof detail, "%s%s (re-verified in console)",
             vr->status == KLAVIYO_VERIFY_REJECTED     ? "rejected by Klaviyo"
             : vr->status == KLAVIYO_VERIFY_BAD_FORMAT ? "bad format"
                                                       : "missing scopes: ",
             vr->status == KLAVIYO_VERIFY_MISSING_SCOPES ? vr->missing : "");
    return credential_set_state(r->st, r->sess.email, tv->t.id, CRED_KLAVIYO, KEY_INVALID,
                                "key.invalid", detail);
}

void admin_tenant_reverify_post(struct web_req *r)
{
    struct tenant_view tv;
    if (!tenant_load(r, &tv))
        return;
    if (!tv.cred[CRED_KLAVIYO].has_secret) {
        r->status = 409;
        render_tenant(r, &tv, false, "No Klaviyo key to verify",
                      "The brand has not given a Klaviyo key yet.", NULL);
        return;
    }
    struct web_verify_limits lim;
    web_throttle *t = web_verify_throttle(r->srv, &lim);
    char tkey[96], okey[300];
    snprintf(tkey, sizeof tkey, "console-tenant:%s", tv.t.id);
    snprintf(okey, sizeof okey, "console-operator:%s", r->sess.email);
    const char *keys[] = {tkey, okey};
    const int limits[] = {lim.per_link, lim.per_address};
    int64_t retry = 0;
    if (!web_throttle_hit(t, keys, limits, 2, time_mono_ms(), &retry)) {
        char text[200];
        int minutes = (int)((retry + 59999) / 60000);
        snprintf(text, sizeof text,
                 "A key can be checked only a few times in a row. Wait %d "
                 "minute%s and try again.",
                 minutes, minutes == 1 ? "" : "s");
        r->status = 429;
        r->retry_after_s = (int)((retry + 999) / 1000);
        render_tenant(r, &tv, false, "Too many verifications", text, NULL);
        return;
    }
    vault *v = web_req_vault(r);
    if (!v)
        return;
    cad_secret *key = NULL;
    if (credential_open(r->st, v, tv.t.id, CRED_KLAVIYO, &key) != CAD_OK) {
        store_error(r, "credential");
        return;
    }
    struct klaviyo_verify_result vr;
    klaviyo_verify_key(r->st, NULL, tv.t.id, r->sess.email, key, &vr);
    secret_free(key);
    int rc = CAD_OK;
    if (vr.status == KLAVIYO_VERIFY_OK) {
        char *scopes = klaviyo_verify_scopes_json(&vr);
        rc = scopes ? credential_mark_verified(r->st, r->sess.email, tv.t.id, CRED_KLAVIYO,
                                               vr.account_id, vr.organization_name, scopes)
                    : cad_fail(CAD_ENOMEM, "out of memory");
        free(scopes);
    } else {
        rc = record_reverify_failure(r, &tv, &vr);
    }
    cad_log(LOG_INFO, "console.reverify", "tenant=%s operator=%s outcome=%s", tv.t.id,
            r->sess.email, klaviyo_verify_status_name(vr.status));
    if (rc) {
        store_error(r, "reverify");
        return;
    }
    if (!tenant_load(r, &tv))
        return;
    bool ok = vr.status == KLAVIYO_VERIFY_OK;
    char title[320];
    if (ok)
        snprintf(title, sizeof title, "Key verified: connected to %s", vr.organization_name);
    else
        snprintf(title, sizeof title, "The key did not verify (%s)",
                 klaviyo_verify_status_name(vr.status));
    r->status = ok ? 200 : 422;
    render_tenant(r, &tv, ok, title, vr.message, NULL);
}

/* ---- waiting for key ---- */

static int waiting_row(void *p, const store_row *row)
{
    struct list_ctx *lc = p;
    struct web_req *r = lc->r;
    char paid[40], queued[40], sent[40];
    lc->n++;
    when_short(store_row_int(row, 2), paid, sizeof paid);
    wbuf_fmt(&r->out, "<tr><td><a href=\"/admin/tenants/%s\">%s</a></td><td>",
             store_row_text(row, 0), store_row_text(row, 1));
    key_badge(r, store_row_text(row, 3));
    wbuf_fmt(&r->out, "</td><td>%s</td><td>", paid);
    if (store_row_is_null(row, 4)) {
        wbuf_puts(&r->out, "No email sent</td><td>-</td></tr>");
        return 0;
    }
    when_short(store_row_int(row, 6), queued, sizeof queued);
    when_short(store_row_is_null(row, 5) ? 0 : store_row_int(row, 5), sent, sizeof sent);
    const char *status = store_row_text(row, 4);
    if (strcmp(status, "sent") == 0)
        wbuf_fmt(&r->out, "Key request sent to %s</td><td>%s</td></tr>", store_row_text(row, 7),
                 sent);
    else
        wbuf_fmt(&r->out, "Key request to %s %s (queued %s)</td><td>-</td></tr>",
                 store_row_text(row, 7), status, queued);
    return 0;
}

void admin_waiting_get(struct web_req *r)
{
    admin_page_begin(r, "Waiting for key", "waiting");
    wbuf_puts(&r->out,
              "<h1>Waiting for key</h1><p class=\"lead\">Paid tenants without a working "
              "Klaviyo key, with the key request Cadence emailed them.</p>"
              "<div class=\"table-wrap\"><table class=\"grid-table\" id=\"waiting\"><thead><tr>"
              "<th scope=\"col\">Tenant</th><th scope=\"col\">Key</th><th scope=\"col\">Paid</th>"
              "<th scope=\"col\">Email</th><th scope=\"col\">Sent</th></tr></thead><tbody>");
    struct list_ctx lc = {r, 0};
    int rc = store_query(
        r->st,
        "SELECT t.id, t.name, t.payment_ms, COALESCE(c.state, 'none'), o.status, o.sent_ms, "
        "o.created_ms, o.to_addr FROM tenants t LEFT JOIN credentials c ON c.tenant_id = t.id "
        "AND c.kind = 'klaviyo' LEFT JOIN outbox o ON o.id = (SELECT MAX(id) FROM outbox "
        "WHERE tenant_id = t.id AND kind = 'key_request') WHERE t.payment = 'confirmed' AND "
        "COALESCE(c.state, 'none') NOT IN ('verified', 'unverified') "
        "ORDER BY t.payment_ms, t.id",
        SV_NONE, waiting_row, &lc);
    if (rc) {
        store_error(r, "waiting");
        return;
    }
    wbuf_puts(&r->out, "</tbody></table></div>");
    if (lc.n == 0)
        wbuf_puts(&r->out, "<p>No paid tenant is waiting for a key.</p>");
    admin_page_end(r);
}

/* ---- operators (admins only) ---- */

static int operator_row(void *p, const struct operator_info *o)
{
    struct list_ctx *lc = p;
    char created[40];
    when_short(o->created_ms, created, sizeof created);
    wbuf_fmt(&lc->r->out, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>", o->email,
             operator_role_name(o->role), created, o->disabled ? "disabled" : "active");
    lc->n++;
    return 0;
}

struct operator_form {
    const char *email, *role;
    const char *email_err, *role_err, *password_err;
};

static void render_operators(struct web_req *r, const struct operator_form *f, const char *ok)
{
    admin_page_begin(r, "Operators", "operators");
    wbuf_puts(&r->out, "<h1>Operators</h1>");
    if (ok)
        notice(r, true, ok, NULL);
    if (f->email_err || f->role_err || f->password_err)
        notice(r, false, "Please check the form",
               "Some fields need fixing; they are marked below.");
    wbuf_puts(&r->out, "<div class=\"table-wrap\"><table class=\"grid-table\" id=\"operators\">"
                       "<thead><tr><th scope=\"col\">Email</th><th scope=\"col\">Role</th>"
                       "<th scope=\"col\">Added</th><th scope=\"col\">Status</th></tr></thead>"
                       "<tbody>");
    struct list_ctx lc = {r, 0};
    if (operator_list(r->st, operator_row, &lc) != CAD_OK) {
        store_error(r, "operators");
        return;
    }
    wbuf_puts(&r->out, "</tbody></table></div><section class=\"card\"><h2>Add an operator</h2>"
                       "<form method=\"post\" action=\"/admin/operators\" class=\"stack\" "
                       "novalidate>");
    admin_csrf_field(r);
    wbuf_fmt(&r->out,
             "<div class=\"field%S\"><label for=\"email\">Email</label>%S%s%S"
             "<input id=\"email\" name=\"email\" type=\"email\" value=\"%s\" "
             "autocomplete=\"off\"></div>",
             f->email_err ? " invalid" : "", f->email_err ? "<p class=\"error\">" : "",
             f->email_err ? f->email_err : "", f->email_err ? "</p>" : "",
             f->email ? f->email : "");
    const char *role = f->role ? f->role : "operator";
    wbuf_fmt(&r->out,
             "<div class=\"field%S\"><label for=\"role\">Role</label>%S%s%S"
             "<select id=\"role\" name=\"role\"><option value=\"operator\"%S>operator</option>"
             "<option value=\"admin\"%S>admin (operators, payments)</option></select></div>",
             f->role_err ? " invalid" : "", f->role_err ? "<p class=\"error\">" : "",
             f->role_err ? f->role_err : "", f->role_err ? "</p>" : "",
             strcmp(role, "operator") == 0 ? " selected" : "",
             strcmp(role, "admin") == 0 ? " selected" : "");
    wbuf_fmt(&r->out,
             "<div class=\"field%S\"><label for=\"new_password\">Password (at least 12 "
             "characters)</label>%S%s%S<input id=\"new_password\" name=\"password\" "
             "type=\"password\" value=\"\" autocomplete=\"new-password\"></div>"
             "<div class=\"actions\"><button type=\"submit\" class=\"primary\">Add operator"
             "</button></div></form></section>",
             f->password_err ? " invalid" : "", f->password_err ? "<p class=\"error\">" : "",
             f->password_err ? f->password_err : "", f->password_err ? "</p>" : "");
    admin_page_end(r);
}

void admin_operators_get(struct web_req *r)
{
    struct operator_form f = {0};
    r->status = 200;
    render_operators(r, &f, NULL);
}

void admin_operators_post(struct web_req *r)
{
    struct operator_form f = {.email = web_form_get(&r->form, "email"),
                              .role = web_form_get(&r->form, "role")};
    const char *password = web_form_get(&r->form, "password");
    enum operator_role role = ROLE_OPERATOR;
    if (!f.email || !*f.email)
        f.email_err = "Enter the new operator's email address.";
    else if (strlen(f.email) > 254 || !plain_text(f.email, 254) || !email_valid(f.email))
        f.email_err = "This is not an email address. Enter one like name@agency.com.";
    if (!f.role || operator_role_parse(f.role, &role) != CAD_OK)
        f.role_err = "Choose operator or admin.";
    size_t plen = password ? strlen(password) : 0;
    if (plen < 12)
        f.password_err = "Use a password of at least 12 characters.";
    else if (plen > 1024)
        f.password_err = "A password is at most 1024 characters.";
    if (f.email_err)
        f.email = "";
    if (f.role_err)
        f.role = NULL;
    if (f.email_err || f.role_err || f.password_err) {
        r->status = 422;
        render_operators(r, &f, NULL);
        return;
    }
    cad_secret *pw = NULL;
    int rc = secret_from(&pw, password, plen);
    if (!rc)
        rc = operator_add(r->st, r->sess.email, f.email, role, pw);
    secret_free(pw);
    if (rc == CAD_EEXIST) {
        f.email_err = "An operator with this email already exists.";
        r->status = 409;
        render_operators(r, &f, NULL);
        return;
    }
    if (rc) {
        store_error(r, "operator");
        return;
    }
    char ok[400];
    snprintf(ok, sizeof ok, "Added %s as %s", f.email, operator_role_name(role));
    struct operator_form empty = {0};
    r->status = 200;
    render_operators(r, &empty, ok);
}
