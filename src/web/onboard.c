/*
 * The brand's onboarding at /onboard/<token>: 1 brand details, 2 plan and payment, 3 Connect
 * Klaviyo, 4 optional extras, then done. The server has already resolved the link to its tenant
 * (r->link) and, for forms, checked the CSRF token; nothing here takes a tenant id from the
 * client. Pages are rendered straight after a failed form (with 4xx and the messages) and
 * redirected (303) after a successful one.
 *
 * Keys are never echoed: key and token fields are always rendered empty, and the pasted key lives
 * in the form (wiped when freed) and a cad_secret only. The Verify button runs the format check
 * (keyfmt, the rules the page's script mirrors) and then klaviyo_verify_key(); every attempt is
 * throttled per link and per client address first.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "keyfmt/keyfmt.h"
#include "klaviyo/verify.h"
#include "web/web_internal.h"

/* The help page's troubleshooting answer for a rejected key (ids are slugs of the questions). */
#define HELP_REJECTED "#q-my-key-gets-rejected-on-the-verify-step"

enum step { STEP_DETAILS = 1, STEP_PAYMENT, STEP_KLAVIYO, STEP_EXTRAS, STEP_DONE };

static const struct {
    const char *slug, *title;
} steps[] = {
    [STEP_DETAILS] = {"details", "Brand details"},
    [STEP_PAYMENT] = {"payment", "Plan and payment"},
    [STEP_KLAVIYO] = {"klaviyo", "Connect Klaviyo"},
    [STEP_EXTRAS] = {"extras", "Optional extras"},
    [STEP_DONE] = {"done", "Done"},
};

struct ob_state {
    struct tenant t;
    char brand_name[256];
    char contact_email[256];
    int64_t details_ms, extras_ms;
    struct credential_info cred[CRED_KIND_COUNT];
};

/* A message shown above a step's form. */
struct notice {
    const char *title;
    const char *text;
    const char *detail;      /* a second, smaller line (may be NULL) */
    const char *help_anchor; /* HELP_REJECTED on the help page, or NULL */
};

static const char *token_of(const struct web_req *r)
{
    return route_param(&r->params, "token");
}

static int progress_row(void *ctx, const store_row *row)
{
    struct ob_state *s = ctx;
    snprintf(s->brand_name, sizeof s->brand_name, "%s", store_row_text(row, 0));
    snprintf(s->contact_email, sizeof s->contact_email, "%s", store_row_text(row, 1));
    s->details_ms = store_row_is_null(row, 2) ? 0 : store_row_int(row, 2);
    s->extras_ms = store_row_is_null(row, 3) ? 0 : store_row_int(row, 3);
    return 0;
}

/* Everything a step page shows, for the link's own tenant. Writes a 503 page on failure. */
static int ob_load(struct web_req *r, struct ob_state *s)
{
    memset(s, 0, sizeof *s);
    int rc = tenant_get(r->st, r->link.tenant_id, &s->t);
    if (!rc)
        rc = store_query(r->st,
                         "SELECT brand_name, contact_email, details_ms, extras_ms "
                         "FROM onboarding_progress WHERE tenant_id = $1",
                         SV_ARGS(SV_TEXT(s->t.id)), progress_row, s);
    for (int k = 0; !rc && k < CRED_KIND_COUNT; k++)
        rc = credential_info(r->st, s->t.id, (enum cred_kind)k, &s->cred[k]);
    if (rc) {
        cad_log(LOG_ERROR, "onboard.load", "link=%s error=\"%s\"", r->link.hash12, cad_errmsg());
        page_message(
            r, 503, "Temporarily unavailable",
            "Your onboarding could not be loaded just now. Nothing was changed; please try "
            "again in a few minutes.");
    }
    return rc;
}

static bool klaviyo_settled(const struct ob_state *s)
{
    enum key_state k = s->cred[CRED_KLAVIYO].state;
    return k == KEY_VERIFIED || k == KEY_UNVERIFIED || k == KEY_DEFERRED;
}

static bool step_done(const struct ob_state *s, enum step st)
{
    switch (st) {
    case STEP_DETAILS:
        return s->details_ms != 0;
    case STEP_PAYMENT:
        return s->t.paid;
    case STEP_KLAVIYO:
        return klaviyo_settled(s);
    case STEP_EXTRAS:
        return s->extras_ms != 0;
    case STEP_DONE:
        return s->details_ms && klaviyo_settled(s) && s->extras_ms;
    }
    return false;
}

static enum step current_step(const struct ob_state *s)
{
    if (!s->details_ms)
        return STEP_DETAILS;
    if (!klaviyo_settled(s))
        return STEP_KLAVIYO;
    if (!s->extras_ms)
        return STEP_EXTRAS;
    return STEP_DONE;
}

static void redirect(struct web_req *r, const char *step)
{
    static _Thread_local char where[256];
    snprintf(where, sizeof where, "/onboard/%s/%s", token_of(r), step);
    r->status = 303;
    r->location = where;
    wbuf_fmt(&r->out, "<!doctype html><title>Cadence</title><p><a href=\"%s\">Continue</a></p>",
             where);
}

static void csrf_field(struct web_req *r)
{
    char tok[WEB_TOKEN_LEN + 1];
    web_csrf_token(web_server_key(r->srv), r->link.hash, tok);
    wbuf_fmt(&r->out, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">", tok);
}

static void form_open(struct web_req *r, const char *action, const char *cls)
{
    wbuf_fmt(&r->out, "<form method=\"post\" action=\"/onboard/%s/%s\" class=\"%s\" novalidate>",
             token_of(r), action, cls);
    csrf_field(r);
}

static void notice_box(struct web_req *r, const struct notice *n, bool good)
{
    if (!n || !n->title)
        return;
    wbuf_fmt(&r->out,
             "<div class=\"notice %s\" role=\"%s\" tabindex=\"-1\" id=\"notice\">"
             "<p class=\"notice-title\">%s</p>",
             good ? "good" : "bad", good ? "status" : "alert", n->title);
    if (n->text)
        wbuf_fmt(&r->out, "<p>%s</p>", n->text);
    if (n->detail && *n->detail)
        wbuf_fmt(&r->out, "<p class=\"small\">%s</p>", n->detail);
    if (n->help_anchor)
        wbuf_fmt(&r->out, "<p><a href=\"/help/klaviyo%s\">What to do: see the help page</a></p>",
                 n->help_anchor);
    wbuf_puts(&r->out, "</div>");
}

static void frame_begin(struct web_req *r, const struct ob_state *s, enum step active)
{
    page_begin(r, steps[active].title);
    wbuf_fmt(&r->out,
             "<p class=\"eyebrow\">Onboarding for %s</p>"
             "<nav aria-label=\"Onboarding progress\"><ol class=\"steps\">",
             s->t.name);
    for (int i = STEP_DETAILS; i <= STEP_DONE; i++) {
        bool done = step_done(s, (enum step)i), cur = i == (int)active;
        wbuf_fmt(&r->out,
                 "<li class=\"%S%S\"><a href=\"/onboard/%s/%s\"%S><span class=\"num\">%d</span>"
                 "<span class=\"label\">%s</span>%S</a></li>",
                 done ? "done" : "todo", cur ? " current" : "", token_of(r), steps[i].slug,
                 cur ? " aria-current=\"step\"" : "", i, steps[i].title,
                 done ? "<span class=\"vh\"> (completed)</span>" : "");
    }
    wbuf_fmt(&r->out,
             "</ol></nav><section class=\"card\" aria-labelledby=\"step-title\">"
             "<p class=\"step-no\">Step %d of 5</p><h1 id=\"step-title\">%s</h1>",
             (int)active, steps[active].title);
}

static void frame_end(struct web_req *r)
{
    wbuf_puts(&r->out, "</section>");
    page_end(r);
}

/* A labelled text input with its error (if any) tied to it for screen readers. */
static void text_field(struct web_req *r, const char *id, const char *label, const char *type,
                       const char *value, const char *hint, const char *err,
                       const char *autocomplete)
{
    wbuf_fmt(&r->out, "<div class=\"field%S\"><label for=\"%s\">%s</label>", err ? " invalid" : "",
             id, label);
    if (hint)
        wbuf_fmt(&r->out, "<p class=\"hint\" id=\"%s-hint\">%s</p>", id, hint);
    if (err)
        wbuf_fmt(&r->out, "<p class=\"error\" id=\"%s-err\">%s</p>", id, err);
    wbuf_fmt(&r->out, "<input id=\"%s\" name=\"%s\" type=\"%s\" value=\"%s\" autocomplete=\"%s\"",
             id, id, type, value ? value : "", autocomplete);
    if (hint || err) {
        wbuf_puts(&r->out, " aria-describedby=\"");
        if (hint)
            wbuf_fmt(&r->out, "%s-hint", id);
        if (hint && err)
            wbuf_puts(&r->out, " ");
        if (err)
            wbuf_fmt(&r->out, "%s-err", id);
        wbuf_puts(&r->out, "\"");
    }
    if (err)
        wbuf_puts(&r->out, " aria-invalid=\"true\"");
    if (strcmp(autocomplete, "off") == 0)
        wbuf_puts(&r->out, " autocapitalize=\"off\" autocorrect=\"off\" spellcheck=\"false\"");
    wbuf_puts(&r->out, "></div>");
}

/* ---- step 1: brand details ---- */

struct details_view {
    const char *brand, *email;
    const char *brand_err, *email_err;
};

static void render_details(struct web_req *r, const struct ob_state *s,
                           const struct details_view *dv)
{
    frame_begin(r, s, STEP_DETAILS);
    wbuf_puts(&r->out, "<p class=\"lead\">Tell us who you are, so we know whom to contact while "
                       "we build your Klaviyo account.</p>");
    if (dv->brand_err || dv->email_err) {
        struct notice n = {"Please check the form",
                           "Some details need fixing; they are marked "
                           "below.",
                           NULL, NULL};
        notice_box(r, &n, false);
    }
    form_open(r, "details", "stack");
    text_field(r, "brand_name", "Brand name", "text", dv->brand, NULL, dv->brand_err,
               "organization");
    text_field(r, "contact_email", "Contact email", "email", dv->email,
               "Where we send updates and questions about your account.", dv->email_err, "email");
    wbuf_puts(&r->out, "<div class=\"actions\"><button type=\"submit\" class=\"primary\">Save and "
                       "continue</button></div></form>");
    frame_end(r);
}

/* True when s is valid UTF-8 without control characters. */
static bool clean_text(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p < 0x20 || *p == 0x7f)
            return false;
        int n = *p < 0x80             ? 0
                : (*p & 0xe0) == 0xc0 ? 1
                : (*p & 0xf0) == 0xe0 ? 2
                : (*p & 0xf8) == 0xf0 ? 3
                                      : -1;
        if (n < 0 || (n == 1 && *p < 0xc2))
            return false;
        p++;
        for (int i = 0; i < n; i++, p++)
            if ((*p & 0xc0) != 0x80)
                return false;
    }
    return true;
}

/* Copies s without leading and trailing spaces into out. */
static void trim_copy(const char *s, char *out, size_t size)
{
    if (!s)
        s = "";
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n >= size)
        n = size - 1;
    memcpy(out, s, n);
    out[n] = 0;
}

void onboard_details_post(struct web_req *r)
{
    struct ob_state s;
    if (ob_load(r, &s))
        return;
    const char *brand_raw = web_form_get(&r->form, "brand_name");
    const char *email_raw = web_form_get(&r->form, "contact_email");
    char brand[256], email[256];
    trim_copy(brand_raw, brand, sizeof brand);
    trim_copy(email_raw, email, sizeof email);
    struct details_view dv = {.brand = brand, .email = email};
    if (!brand_raw || !*brand)
        dv.brand_err = "Enter your brand's name, as your customers know it.";
    else if (strlen(brand_raw) > 200 || !clean_text(brand))
        dv.brand_err = "The brand name can be at most 200 characters of plain text.";
    if (!email_raw || !*email)
        dv.email_err = "Enter an email address we can reach you at, like you@yourbrand.com.";
    else if (strlen(email_raw) > 254 || !clean_text(email) || !email_valid(email))
        dv.email_err = "This is not an email address. Enter one like you@yourbrand.com.";
    if (dv.brand_err || dv.email_err) {
        r->status = 422;
        render_details(r, &s, &dv);
        return;
    }
    int64_t now = time_now_ms();
    int rc = store_begin(r->st);
    if (!rc)
        rc =
            store_exec(r->st,
                       "INSERT INTO onboarding_progress (tenant_id, brand_name, contact_email, "
                       "details_ms, updated_ms) VALUES ($1, $2, $3, $4, $4) "
                       "ON CONFLICT (tenant_id) DO UPDATE SET brand_name = $2, contact_email = $3, "
                       "details_ms = $4, updated_ms = $4",
                       SV_ARGS(SV_TEXT(s.t.id), SV_TEXT(brand), SV_TEXT(email), SV_INT(now)));
    if (!rc) {
        struct audit_entry e = {.tenant_id = s.t.id,
                                .actor = AUDIT_ACTOR_CLIENT,
                                .action = "onboarding.details",
                                .duration_ms = -1,
                                .detail = "brand details saved"};
        rc = audit_append(r->st, &e, NULL);
    }
    if (!rc)
        rc = store_commit(r->st);
    else
        store_rollback(r->st);
    if (rc) {
        cad_log(LOG_ERROR, "onboard.details", "link=%s error=\"%s\"", r->link.hash12, cad_errmsg());
        page_message(r, 503, "Not saved",
                     "Your details could not be saved just now. Please go "
                     "back and try again in a few minutes.");
        return;
    }
    redirect(r, "payment");
}

/* ---- step 2: plan and payment ---- */

static void render_payment(struct web_req *r, const struct ob_state *s)
{
    frame_begin(r, s, STEP_PAYMENT);
    if (s->t.paid) {
        char when[32];
        time_format_ms(s->t.payment_ms, when, sizeof when);
        when[10] = 0;
        wbuf_fmt(&r->out,
                 "<p class=\"status ok\"><span class=\"dot\" aria-hidden=\"true\"></span>Payment "
                 "confirmed</p><p>Your agency confirmed your payment on %s. Thank you.</p>",
                 when);
    } else {
        wbuf_puts(&r->out,
                  "<p class=\"status wait\"><span class=\"dot\" aria-hidden=\"true\"></span>"
                  "Awaiting payment</p><p>Your plan is the one agreed with your agency. This step "
                  "shows \xE2\x80\x9C"
                  "awaiting payment\xE2\x80\x9D until someone on their team "
                  "confirms your payment; you can carry on with the next steps in the "
                  "meantime.</p>");
    }
    wbuf_fmt(&r->out,
             "<div class=\"actions\"><a class=\"button primary\" "
             "href=\"/onboard/%s/klaviyo\">Continue to Connect Klaviyo</a></div>",
             token_of(r));
    frame_end(r);
}

/* ---- step 3: Connect Klaviyo ---- */

static const char *read_label(enum klaviyo_scope_read rd)
{
    switch (rd) {
    case KLAVIYO_READ_OK:
        return "Read access confirmed; write access is confirmed on the first "
               "change we make";
    case KLAVIYO_READ_MISSING:
        return "Missing: grant read and write access";
    case KLAVIYO_READ_UNKNOWN:
        return "Could not be checked";
    case KLAVIYO_READ_UNCHECKED:
        return "Not checked";
    }
    return "";
}

static void scope_table(struct web_req *r, const struct klaviyo_verify_result *vr)
{
    wbuf_puts(&r->out, "<table class=\"scopes\"><caption>Access by area</caption><thead><tr>"
                       "<th scope=\"col\">Area</th><th scope=\"col\">Result</th></tr></thead>"
                       "<tbody>");
    for (size_t i = 0; i < KLAVIYO_SCOPE_FAMILIES; i++) {
        const struct klaviyo_scope_check *c = &vr->scopes[i];
        if (!c->family)
            continue;
        const char *cls = c->read == KLAVIYO_READ_OK        ? "ok"
                          : c->read == KLAVIYO_READ_MISSING ? "missing"
                                                            : "unknown";
        char name[64];
        snprintf(name, sizeof name, "%s", c->family);
        name[0] = (char)toupper((unsigned char)name[0]);
        wbuf_fmt(&r->out, "<tr class=\"%s\"><th scope=\"row\">%s</th><td>%s", cls, name,
                 read_label(c->read));
        if (c->read != KLAVIYO_READ_OK && c->detail[0])
            wbuf_fmt(&r->out, " <span class=\"small\">(%s)</span>", c->detail);
        wbuf_puts(&r->out, "</td></tr>");
    }
    wbuf_puts(&r->out, "</tbody></table>");
}

static void render_klaviyo(struct web_req *r, const struct ob_state *s, const struct notice *n,
                           const struct klaviyo_verify_result *vr)
{
    const struct credential_info *k = &s->cred[CRED_KLAVIYO];
    frame_begin(r, s, STEP_KLAVIYO);
    bool connected_now = vr && vr->status == KLAVIYO_VERIFY_OK;
    if (connected_now) {
        char title[320];
        snprintf(title, sizeof title, "Connected to %s", vr->organization_name);
        struct notice ok = {title,
                            "Your key works. It is stored encrypted and never shown "
                            "again.",
                            NULL, NULL};
        notice_box(r, &ok, true);
    } else {
        notice_box(r, n, false);
    }
    if (vr && vr->account_id[0])
        scope_table(r, vr);
    if (connected_now) {
        wbuf_fmt(&r->out,
                 "<div class=\"actions\"><a class=\"button primary\" "
                 "href=\"/onboard/%s/extras\">Continue</a></div>",
                 token_of(r));
        frame_end(r);
        return;
    }
    if (!n && k->state == KEY_VERIFIED)
        wbuf_fmt(&r->out,
                 "<p class=\"status ok\"><span class=\"dot\" aria-hidden=\"true\"></span>"
                 "Connected to %s</p><p>Your key (ending %s) is verified. To replace it, paste a "
                 "new one below.</p>",
                 k->account_name, k->last4);
    else if (!n && k->state == KEY_UNVERIFIED)
        wbuf_fmt(&r->out,
                 "<p class=\"status wait\"><span class=\"dot\" aria-hidden=\"true\">"
                 "</span>Key received</p><p>We have a key ending %s that is not verified "
                 "yet. Paste it again and press Verify to check it now.</p>",
                 k->last4);
    else if (!n && k->state == KEY_DEFERRED)
        wbuf_puts(&r->out, "<p class=\"status wait\"><span class=\"dot\" aria-hidden=\"true\">"
                           "</span>You chose to send the key later</p><p>Whenever you are ready, "
                           "paste it below.</p>");
    wbuf_puts(&r->out,
              "<p class=\"lead\">Paste a Klaviyo private API key so we can build your templates, "
              "segments, forms and campaigns directly in your account. "
              "<a href=\"/help/klaviyo\">How to create one in 3 minutes</a>.</p>");
    form_open(r, "verify", "stack");
    wbuf_puts(&r->out,
              "<div class=\"field\"><label for=\"key\">Klaviyo private API key</label>"
              "<p class=\"hint\" id=\"key-hint\">Starts with pk_ followed by 34 characters. "
              "We check it as you paste; Cadence checks it again when you press Verify.</p>"
              "<input id=\"key\" name=\"key\" type=\"text\" value=\"\" autocomplete=\"off\" "
              "autocapitalize=\"off\" autocorrect=\"off\" spellcheck=\"false\" "
              "data-keyfmt=\"key-check\" aria-describedby=\"key-hint key-check\">"
              "<p class=\"check\" id=\"key-check\" aria-live=\"polite\"></p></div>"
              "<div class=\"actions\"><button type=\"submit\" class=\"primary\">Verify</button>"
              "</div></form>");
    form_open(r, "skip", "skip");
    wbuf_puts(&r->out,
              "<p class=\"small\">Not ready? You can send the key later; once your payment is "
              "confirmed we will email you for it.</p><button type=\"submit\" class=\"secondary\">"
              "Continue without entering a key</button></form>");
    frame_end(r);
}

/* What a failed verification means for the stored key, as `cadence key verify` records it: a
 * key that had worked and is now rejected was revoked; one that never worked is invalid; a check
 * that could not reach Klaviyo says nothing and changes nothing. A working key is never demoted by
 * a failed attempt at another one. */
static void record_failure(struct web_req *r, const struct ob_state *s, enum key_state to,
                           const char *action, const char *detail)
{
    enum key_state cur = s->cred[CRED_KLAVIYO].state;
    if (cur == KEY_VERIFIED || cur == KEY_UNVERIFIED)
        return;
    if (credential_set_state(r->st, AUDIT_ACTOR_CLIENT, s->t.id, CRED_KLAVIYO, to, action,
                             detail) != CAD_OK)
        cad_log(LOG_WARN, "onboard.verify", "link=%s error=\"%s\"", r->link.hash12, cad_errmsg());
}

static void verify_failed(struct web_req *r, const struct ob_state *s,
                          const struct klaviyo_verify_result *vr)
{
    struct notice n = {.detail = vr->message, .help_anchor = HELP_REJECTED};
    switch (vr->status) {
    case KLAVIYO_VERIFY_REJECTED:
        r->status = 422;
        n.title = "Klaviyo did not accept this key";
        n.text = "The key is wrong or was revoked. In Klaviyo open Settings \xE2\x86\x92 API Keys, "
                 "create a fresh private key and paste it here.";
        record_failure(r, s, KEY_INVALID, "key.invalid", "rejected by Klaviyo (onboarding page)");
        break;
    case KLAVIYO_VERIFY_MISSING_SCOPES:
        r->status = 422;
        n.title = "The key works, but some access is missing";
        n.text = "Give the key read and write access to the areas marked missing below (or "
                 "create a key with Full Access), then verify again.";
        n.help_anchor = "#step-4";
        record_failure(r, s, KEY_INVALID, "key.invalid", "missing scopes (onboarding page)");
        break;
    case KLAVIYO_VERIFY_BAD_FORMAT:
        r->status = 422;
        n.title = "That is not a Klaviyo private key";
        n.text = NULL;
        break;
    case KLAVIYO_VERIFY_UNREACHABLE:
    case KLAVIYO_VERIFY_CHALLENGE:
    case KLAVIYO_VERIFY_TRANSIENT:
        r->status = 503;
        n.title = "We could not reach Klaviyo just now";
        n.text = "Nothing was decided about your key and nothing was stored. Please press Verify "
                 "again in a minute.";
        n.help_anchor = NULL;
        break;
    case KLAVIYO_VERIFY_FAILED:
    case KLAVIYO_VERIFY_OK:
        r->status = 500;
        n.title = "Something went wrong on our side";
        n.text = "Your key was not stored. Please try again in a few minutes, or continue without "
                 "the key and send it later.";
        n.help_anchor = NULL;
        break;
    }
    render_klaviyo(r, s, &n, vr);
}

void onboard_verify_post(struct web_req *r)
{
    struct ob_state s;
    if (ob_load(r, &s))
        return;
    struct web_verify_limits lim;
    web_throttle *t = web_verify_throttle(r->srv, &lim);
    char link_key[80], addr_key[80];
    snprintf(link_key, sizeof link_key, "link:%s", r->link.hash);
    snprintf(addr_key, sizeof addr_key, "addr:%s", r->client);
    const char *keys[] = {link_key, addr_key};
    const int limits[] = {lim.per_link, lim.per_address};
    int64_t retry = 0;
    if (!web_throttle_hit(t, keys, limits, 2, time_mono_ms(), &retry)) {
        int minutes = (int)((retry + 59999) / 60000);
        char text[200];
        snprintf(text, sizeof text,
                 "To protect your account, a key can be checked only a few times in a row. Please "
                 "wait %d minute%s and try again.",
                 minutes, minutes == 1 ? "" : "s");
        struct notice n = {"Too many attempts", text, NULL, NULL};
        r->status = 429;
        r->retry_after_s = (int)((retry + 999) / 1000);
        cad_log(LOG_WARN, "onboard.verify", "link=%s outcome=throttled", r->link.hash12);
        render_klaviyo(r, &s, &n, NULL);
        return;
    }

    const char *raw = web_form_get(&r->form, "key");
    if (!raw)
        raw = "";
    struct keyfmt_result kr;
    keyfmt_check(raw, strlen(raw), &kr);
    if (kr.verdict != KEYFMT_OK) {
        struct notice n = {"That is not a Klaviyo private key yet", kr.message, NULL,
                           HELP_REJECTED};
        if (kr.verdict == KEYFMT_EMPTY)
            n.title = "Paste your key first";
        r->status = 422;
        record_failure(r, &s, KEY_INVALID, "key.invalid", keyfmt_verdict_name(kr.verdict));
        cad_log(LOG_INFO, "onboard.verify", "link=%s outcome=format verdict=%s", r->link.hash12,
                keyfmt_verdict_name(kr.verdict));
        render_klaviyo(r, &s, &n, NULL);
        return;
    }
    vault *v = web_req_vault(r);
    if (!v)
        return;
    cad_secret *key = NULL;
    if (secret_from(&key, raw + kr.start, kr.len) != CAD_OK) {
        page_message(r, 500, "Something went wrong", "Your key was not stored. Please try again.");
        return;
    }
    struct klaviyo_verify_result vr;
    klaviyo_verify_key(r->st, NULL, s.t.id, AUDIT_ACTOR_CLIENT, key, &vr);
    cad_log(LOG_INFO, "onboard.verify", "link=%s outcome=%s", r->link.hash12,
            klaviyo_verify_status_name(vr.status));
    if (vr.status != KLAVIYO_VERIFY_OK) {
        secret_free(key);
        verify_failed(r, &s, &vr);
        return;
    }
    char *scopes = klaviyo_verify_scopes_json(&vr);
    int rc = scopes ? credential_store(r->st, v, AUDIT_ACTOR_CLIENT, s.t.id, CRED_KLAVIYO, key,
                                       KEY_VERIFIED, NULL)
                    : cad_fail(CAD_ENOMEM, "out of memory");
    secret_free(key);
    if (!rc)
        rc = credential_mark_verified(r->st, AUDIT_ACTOR_CLIENT, s.t.id, CRED_KLAVIYO,
                                      vr.account_id, vr.organization_name, scopes);
    free(scopes);
    if (rc) {
        cad_log(LOG_ERROR, "onboard.verify", "link=%s error=\"%s\"", r->link.hash12, cad_errmsg());
        vr.status = KLAVIYO_VERIFY_FAILED;
        verify_failed(r, &s, &vr);
        return;
    }
    if (ob_load(r, &s))
        return;
    r->status = 200;
    render_klaviyo(r, &s, NULL, &vr);
}

void onboard_skip_post(struct web_req *r)
{
    struct ob_state s;
    if (ob_load(r, &s))
        return;
    int rc = credential_set_state(r->st, AUDIT_ACTOR_CLIENT, s.t.id, CRED_KLAVIYO, KEY_DEFERRED,
                                  "key.defer", "continued without entering a key (onboarding)");
    if (rc == CAD_ESTATE) {
        struct notice n = {"Your Klaviyo key is already connected",
                           "There is nothing to skip: we already have a key for your account.",
                           NULL, NULL};
        r->status = 409;
        render_klaviyo(r, &s, &n, NULL);
        return;
    }
    if (rc) {
        cad_log(LOG_ERROR, "onboard.skip", "link=%s error=\"%s\"", r->link.hash12, cad_errmsg());
        page_message(r, 503, "Not saved", "Please go back and try again in a few minutes.");
        return;
    }
    cad_log(LOG_INFO, "onboard.skip", "link=%s", r->link.hash12);
    redirect(r, "extras");
}

/* ---- step 4: optional extras ---- */

struct extras_view {
    const char *domain, *provider;
    const char *domain_err, *token_err, *provider_err, *sms_err;
};

static void render_extras(struct web_req *r, const struct ob_state *s, const struct extras_view *ev)
{
    frame_begin(r, s, STEP_EXTRAS);
    const struct credential_info *sh = &s->cred[CRED_SHOPIFY], *ps = &s->cred[CRED_POSTSCRIPT],
                                 *at = &s->cred[CRED_ATTENTIVE];
    wbuf_puts(&r->out, "<p class=\"lead\">Both are optional and can be added later. Each key is "
                       "stored encrypted as its own credential.</p>");
    if (ev->domain_err || ev->token_err || ev->provider_err || ev->sms_err) {
        struct notice n = {"Please check the form",
                           "Some details need fixing; they are marked "
                           "below. Keys are never shown again, so paste "
                           "them once more.",
                           NULL, NULL};
        notice_box(r, &n, false);
    }
    if (sh->has_secret)
        wbuf_fmt(&r->out,
                 "<p class=\"status ok\"><span class=\"dot\" aria-hidden=\"true\"></span>"
                 "Shopify token received (ending %s)</p>",
                 sh->last4);
    if (ps->has_secret || at->has_secret)
        wbuf_fmt(&r->out,
                 "<p class=\"status ok\"><span class=\"dot\" aria-hidden=\"true\"></span>"
                 "%s key received (ending %s)</p>",
                 ps->has_secret ? "Postscript" : "Attentive",
                 ps->has_secret ? ps->last4 : at->last4);
    form_open(r, "extras", "stack");
    wbuf_puts(&r->out, "<fieldset><legend>Shopify (read-only, for the catalog sync)</legend>");
    text_field(r, "shopify_domain", "Shopify store domain", "text", ev->domain,
               "Your store's myshopify.com address, like acme.myshopify.com.", ev->domain_err,
               "off");
    text_field(r, "shopify_token", "Shopify Admin API access token", "text", "",
               "From a custom app with read_products access; starts with shpat_.", ev->token_err,
               "off");
    wbuf_puts(&r->out, "</fieldset><fieldset><legend>SMS provider</legend>");
    if (ev->provider_err)
        wbuf_fmt(&r->out, "<p class=\"error\" id=\"sms_provider-err\">%s</p>", ev->provider_err);
    const char *p = ev->provider ? ev->provider : "";
    wbuf_fmt(&r->out,
             "<div class=\"radios\" role=\"radiogroup\" aria-label=\"SMS provider\">"
             "<label><input type=\"radio\" name=\"sms_provider\" value=\"\"%S> None</label>"
             "<label><input type=\"radio\" name=\"sms_provider\" value=\"postscript\"%S> "
             "Postscript</label>"
             "<label><input type=\"radio\" name=\"sms_provider\" value=\"attentive\"%S> "
             "Attentive</label></div>",
             !*p ? " checked" : "", strcmp(p, "postscript") == 0 ? " checked" : "",
             strcmp(p, "attentive") == 0 ? " checked" : "");
    text_field(r, "sms_key", "SMS provider API key", "text", "",
               "The API key from your Postscript or Attentive account settings.", ev->sms_err,
               "off");
    wbuf_puts(&r->out, "</fieldset><div class=\"actions\"><button type=\"submit\" name=\"action\" "
                       "value=\"save\" class=\"primary\">Save and continue</button>"
                       "<button type=\"submit\" name=\"action\" value=\"skip\" "
                       "class=\"secondary\">Skip for now</button></div></form>");
    frame_end(r);
}

static bool valid_shop_domain(const char *d)
{
    const char *suffix = ".myshopify.com";
    size_t n = strlen(d), sl = strlen(suffix);
    if (n <= sl || n - sl > 60 || strcmp(d + n - sl, suffix) != 0)
        return false;
    for (size_t i = 0; i < n - sl; i++) {
        char c = d[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0)))
            return false;
    }
    return true;
}

static bool valid_shopify_token(const char *t)
{
    if (strncmp(t, "shpat_", 6) != 0 || strlen(t) != 38)
        return false;
    for (const char *p = t + 6; *p; p++)
        if (!isxdigit((unsigned char)*p))
            return false;
    return true;
}

static bool valid_sms_key(const char *k)
{
    size_t n = strlen(k);
    if (n < 16 || n > 256)
        return false;
    for (const char *p = k; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return false;
    return true;
}

static int store_cred(struct web_req *r, const struct ob_state *s, enum cred_kind kind,
                      const char *value, const char *extra)
{
    vault *v = r->v ? r->v : web_req_vault(r);
    if (!v)
        return CAD_EIO;
    cad_secret *sec = NULL;
    int rc = secret_from(&sec, value, strlen(value));
    if (!rc)
        rc = credential_store(r->st, v, AUDIT_ACTOR_CLIENT, s->t.id, kind, sec, KEY_UNVERIFIED,
                              extra);
    secret_free(sec);
    return rc;
}

void onboard_extras_post(struct web_req *r)
{
    struct ob_state s;
    if (ob_load(r, &s))
        return;
    const char *action = web_form_get(&r->form, "action");
    bool skip = action && strcmp(action, "skip") == 0;
    char domain[128], token[128], provider[32], sms[300];
    trim_copy(web_form_get(&r->form, "shopify_domain"), domain, sizeof domain);
    trim_copy(web_form_get(&r->form, "shopify_token"), token, sizeof token);
    trim_copy(web_form_get(&r->form, "sms_provider"), provider, sizeof provider);
    trim_copy(web_form_get(&r->form, "sms_key"), sms, sizeof sms);
    for (char *p = domain; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    struct extras_view ev = {.domain = domain, .provider = provider};
    int rc = CAD_OK;
    if (!skip) {
        if (*domain && !valid_shop_domain(domain))
            ev.domain_err = "Enter the store's myshopify.com domain, like acme.myshopify.com "
                            "(Shopify admin \xE2\x86\x92 Settings \xE2\x86\x92 Domains).";
        else if (!*domain && *token)
            ev.domain_err = "Enter the store domain that goes with this token.";
        if (*token && !valid_shopify_token(token))
            ev.token_err = "A Shopify Admin API access token is shpat_ followed by 32 letters and "
                           "digits (0-9, a-f). Copy it again from your custom app.";
        else if (*domain && !*token && !ev.domain_err)
            ev.token_err = "Paste the Admin API access token for this store, or clear the domain.";
        if (*provider && strcmp(provider, "postscript") != 0 && strcmp(provider, "attentive") != 0)
            ev.provider_err = "Choose Postscript, Attentive or None.";
        else if (!*provider && *sms)
            ev.provider_err = "Choose which provider this key is for: Postscript or Attentive.";
        if (*sms && !valid_sms_key(sms))
            ev.sms_err = "This does not look like an API key: a key is 16 to 256 characters with "
                         "no spaces. Copy it again from your provider's settings.";
        else if (*provider && !*sms && !ev.provider_err)
            ev.sms_err = "Paste the API key for the provider you chose, or choose None.";
        if (ev.domain_err || ev.token_err || ev.provider_err || ev.sms_err) {
            r->status = 422;
            render_extras(r, &s, &ev);
            OPENSSL_cleanse(token, sizeof token);
            OPENSSL_cleanse(sms, sizeof sms);
            return;
        }
        if (*domain) {
            char extra[200];
            snprintf(extra, sizeof extra, "{\"shop\":\"%s\"}", domain);
            rc = store_cred(r, &s, CRED_SHOPIFY, token, extra);
        }
        if (!rc && *provider)
            rc = store_cred(r, &s,
                            strcmp(provider, "postscript") == 0 ? CRED_POSTSCRIPT : CRED_ATTENTIVE,
                            sms, NULL);
    }
    OPENSSL_cleanse(token, sizeof token);
    OPENSSL_cleanse(sms, sizeof sms);
    if (!rc)
        rc = store_exec(r->st,
                        "INSERT INTO onboarding_progress (tenant_id, extras_ms, updated_ms) "
                        "VALUES ($1, $2, $2) ON CONFLICT (tenant_id) DO UPDATE SET "
                        "extras_ms = $2, updated_ms = $2",
                        SV_ARGS(SV_TEXT(s.t.id), SV_INT(time_now_ms())));
    if (rc) {
        if (r->status == 503)
            return; /* the vault page is already written */
        cad_log(LOG_ERROR, "onboard.extras", "link=%s error=\"%s\"", r->link.hash12, cad_errmsg());
        page_message(r, 503, "Not saved",
                     "Your extras could not be saved just now. Please go "
                     "back and try again in a few minutes.");
        return;
    }
    redirect(r, "done");
}

/* ---- done ---- */

static void render_done(struct web_req *r, const struct ob_state *s)
{
    frame_begin(r, s, STEP_DONE);
    const struct credential_info *k = &s->cred[CRED_KLAVIYO];
    wbuf_puts(&r->out, "<dl class=\"summary\">");
    wbuf_fmt(&r->out, "<dt>Brand</dt><dd>%s</dd>",
             s->brand_name[0] ? s->brand_name : "Not entered yet");
    wbuf_fmt(&r->out, "<dt>Contact</dt><dd>%s</dd>",
             s->contact_email[0] ? s->contact_email : "Not entered yet");
    wbuf_fmt(&r->out, "<dt>Payment</dt><dd>%s</dd>", s->t.paid ? "Confirmed" : "Awaiting payment");
    wbuf_puts(&r->out, "<dt>Klaviyo</dt><dd>");
    switch (k->state) {
    case KEY_VERIFIED:
        wbuf_fmt(&r->out, "Connected to %s", k->account_name);
        break;
    case KEY_UNVERIFIED:
        wbuf_puts(&r->out, "Key received, to be verified");
        break;
    case KEY_DEFERRED:
        wbuf_puts(&r->out, "You will send the key later; we will email you once your payment is "
                           "confirmed");
        break;
    default:
        wbuf_puts(&r->out, "No key yet");
        break;
    }
    wbuf_fmt(&r->out, "</dd><dt>Shopify</dt><dd>%s</dd><dt>SMS</dt><dd>%s</dd></dl>",
             s->cred[CRED_SHOPIFY].has_secret ? "Token received" : "Not connected",
             s->cred[CRED_POSTSCRIPT].has_secret  ? "Postscript key received"
             : s->cred[CRED_ATTENTIVE].has_secret ? "Attentive key received"
                                                  : "Not connected");
    if (step_done(s, STEP_DONE))
        wbuf_puts(&r->out, "<p class=\"lead\">That's everything for now. Your agency will build "
                           "your account and ask you before anything is sent to your "
                           "customers.</p>");
    else
        wbuf_fmt(&r->out,
                 "<p class=\"lead\">A few steps are still open.</p><div class=\"actions\">"
                 "<a class=\"button primary\" href=\"/onboard/%s/%s\">Continue "
                 "onboarding</a></div>",
                 token_of(r), steps[current_step(s)].slug);
    frame_end(r);
}

/* ---- GET ---- */

static void render_step(struct web_req *r, const struct ob_state *s, enum step st)
{
    switch (st) {
    case STEP_DETAILS: {
        struct details_view dv = {.brand = s->brand_name[0] ? s->brand_name : s->t.name,
                                  .email = s->contact_email[0] ? s->contact_email : s->t.email};
        render_details(r, s, &dv);
        break;
    }
    case STEP_PAYMENT:
        render_payment(r, s);
        break;
    case STEP_KLAVIYO:
        render_klaviyo(r, s, NULL, NULL);
        break;
    case STEP_EXTRAS: {
        struct extras_view ev = {0};
        char domain[128] = "";
        const char *ex = s->cred[CRED_SHOPIFY].extra, *shop = strstr(ex, "\"shop\":\"");
        if (shop)
            snprintf(domain, sizeof domain, "%.*s", (int)strcspn(shop + 8, "\""), shop + 8);
        ev.domain = domain;
        ev.provider = s->cred[CRED_POSTSCRIPT].has_secret  ? "postscript"
                      : s->cred[CRED_ATTENTIVE].has_secret ? "attentive"
                                                           : "";
        render_extras(r, s, &ev);
        break;
    }
    case STEP_DONE:
        render_done(r, s);
        break;
    }
}

void onboard_get(struct web_req *r)
{
    struct ob_state s;
    if (ob_load(r, &s))
        return;
    r->status = 200;
    render_step(r, &s, current_step(&s));
}

void onboard_step_get(struct web_req *r)
{
    const char *slug = route_param(&r->params, "step");
    for (int i = STEP_DETAILS; i <= STEP_DONE; i++) {
        if (strcmp(steps[i].slug, slug) != 0)
            continue;
        struct ob_state s;
        if (ob_load(r, &s))
            return;
        r->status = 200;
        render_step(r, &s, (enum step)i);
        return;
    }
    page_message(r, 404, "Page not found", "There is no such onboarding step.");
}
