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
 * throttled per link and per client address first. Step 4 connects the brand's Shopify store and
 * SMS providers, one form each, through provider_credential_set() (the CLI's path), under the
 * same throttle; "Finish" and "Skip for now" both close the step.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "keyfmt/keyfmt.h"
#include "klaviyo/verify.h"
#include "providers/providers.h"
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
    bool postscript_note;    /* add KEYFMT_POSTSCRIPT_NOTE with a link to Step 4's Postscript */
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
    if (n->postscript_note)
        wbuf_fmt(&r->out,
                 "<p id=\"postscript-note\">%s <a href=\"/onboard/%s/extras#postscript\">Connect "
                 "Postscript in Step 4</a>.</p>",
                 KEYFMT_POSTSCRIPT_NOTE, token_of(r));
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
                           NULL, NULL, false};
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

/* The Verify throttle, per link and per client address; false (with the 429 values set) when
 * the limit is reached. */
static bool verify_allowed(struct web_req *r, char *text, size_t size)
{
    struct web_verify_limits lim;
    web_throttle *t = web_verify_throttle(r->srv, &lim);
    char link_key[80], addr_key[80];
    snprintf(link_key, sizeof link_key, "link:%s", r->link.hash);
    snprintf(addr_key, sizeof addr_key, "addr:%s", r->client);
    const char *keys[] = {link_key, addr_key};
    const int limits[] = {lim.per_link, lim.per_address};
    int64_t retry = 0;
    if (web_throttle_hit(t, keys, limits, 2, time_mono_ms(), &retry))
        return true;
    int minutes = (int)((retry + 59999) / 60000);
    snprintf(text, size,
             "To protect your account, a key can be checked only a few times in a row. Please "
             "wait %d minute%s and try again.",
             minutes, minutes == 1 ? "" : "s");
    r->status = 429;
    r->retry_after_s = (int)((retry + 999) / 1000);
    cad_log(LOG_WARN, "onboard.verify", "link=%s outcome=throttled", r->link.hash12);
    return false;
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
                            NULL, NULL, false};
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
        n.postscript_note = true; /* the key has the pk_ shape, as Postscript's public keys do */
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
    char throttled[200];
    if (!verify_allowed(r, throttled, sizeof throttled)) {
        struct notice n = {"Too many attempts", throttled, NULL, NULL, false};
        render_klaviyo(r, &s, &n, NULL);
        return;
    }

    const char *raw = web_form_get(&r->form, "key");
    if (!raw)
        raw = "";
    struct keyfmt_result kr;
    keyfmt_check(raw, strlen(raw), &kr);
    if (kr.verdict != KEYFMT_OK) {
        struct notice n = {"That is not a Klaviyo private key yet", kr.message, NULL, HELP_REJECTED,
                           false};
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
                           NULL, NULL, false};
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

/* ---- step 4: the brand's other connections ---- */

/* Each provider has its own section and form (POST .../connect/<provider>): a submission checks
 * the format (the message says what was pasted instead, never echoing it), verifies with the
 * provider and stores through provider_credential_set(), the path `cadence key set --verify`
 * takes. A failed submission keeps the typed store domain; secrets are never filled back in. */

static const char *provider_title(enum provider p)
{
    return p == PROVIDER_SHOPIFY      ? "Shopify"
           : p == PROVIDER_POSTSCRIPT ? "Postscript"
                                      : "Attentive";
}

static const char *key_field(enum provider p)
{
    return p == PROVIDER_SHOPIFY      ? "shopify_token"
           : p == PROVIDER_POSTSCRIPT ? "postscript_key"
                                      : "attentive_key";
}

struct extras_view {
    bool submitted;                          /* a connect form was just submitted */
    enum provider which;                     /* ... this one */
    const char *domain;                      /* the Shopify domain to show */
    const char *domain_err, *key_err;        /* field errors of the submitted form */
    const struct notice *n;                  /* why it did not work (may be NULL) */
    const struct provider_verify_result *ok; /* what was connected just now (may be NULL) */
};

/* A comma-joined scope list as chips. */
static void scope_chips(struct web_req *r, const char *list)
{
    wbuf_puts(&r->out, "<ul class=\"scope-list\">");
    while (*list) {
        size_t n = strcspn(list, ",");
        wbuf_puts(&r->out, "<li class=\"ok\">");
        wbuf_html_n(&r->out, list, n);
        wbuf_puts(&r->out, "</li>");
        list += n;
        if (*list == ',')
            list++;
    }
    wbuf_puts(&r->out, "</ul>");
}

static void connected_box(struct web_req *r, enum provider p,
                          const struct provider_verify_result *vr)
{
    wbuf_fmt(&r->out,
             "<div class=\"notice good\" role=\"status\" tabindex=\"-1\" id=\"notice\">"
             "<p class=\"notice-title\">Connected to %s</p>",
             vr->account_name[0] ? vr->account_name : provider_title(p));
    if (p == PROVIDER_SHOPIFY) {
        wbuf_fmt(&r->out, "<p>Store <strong>%s</strong>. The token's access:</p>", vr->account_id);
        scope_chips(r, vr->scopes);
    }
    wbuf_fmt(&r->out, "<p>The %s is stored encrypted and never shown again.</p></div>",
             p == PROVIDER_SHOPIFY ? "token" : "key");
    if (vr->warning[0])
        wbuf_fmt(&r->out,
                 "<p class=\"warning\" id=\"%s-warning\"><strong>Least privilege:</strong> %s</p>",
                 provider_name(p), vr->warning);
}

/* What is stored for the provider, in one line. */
static void stored_status(struct web_req *r, const struct credential_info *c, enum provider p)
{
    switch (c->state) {
    case KEY_VERIFIED:
        wbuf_fmt(&r->out,
                 "<p class=\"status ok\"><span class=\"dot\" aria-hidden=\"true\"></span>"
                 "Connected to %s%S%s%S (ending %s)</p>",
                 c->account_name[0] ? c->account_name : provider_title(p),
                 p == PROVIDER_SHOPIFY ? " (" : "", p == PROVIDER_SHOPIFY ? c->account_id : "",
                 p == PROVIDER_SHOPIFY ? ")" : "", c->last4);
        break;
    case KEY_UNVERIFIED:
        wbuf_fmt(&r->out,
                 "<p class=\"status wait\"><span class=\"dot\" aria-hidden=\"true\"></span>"
                 "Received (ending %s), not verified yet</p>",
                 c->last4);
        break;
    case KEY_REVOKED:
        wbuf_fmt(&r->out,
                 "<p class=\"status wait\"><span class=\"dot\" aria-hidden=\"true\"></span>"
                 "The %s we had (ending %s) stopped working; paste a new one below</p>",
                 p == PROVIDER_SHOPIFY ? "token" : "key", c->last4);
        break;
    default:
        break;
    }
}

static void howto(struct web_req *r, enum provider p)
{
    switch (p) {
    case PROVIDER_SHOPIFY:
        wbuf_puts(&r->out,
                  "<p>Cadence needs <strong>read access only</strong>: it reads your products "
                  "feed to keep your Klaviyo catalog in step, and never changes your store.</p>"
                  "<ol class=\"howto\" id=\"shopify-howto\">"
                  "<li>In your Shopify admin, open <strong>Settings \xE2\x86\x92 Apps and sales "
                  "channels</strong>.</li>"
                  "<li>Click <strong>Develop apps</strong> (allow custom app development if "
                  "Shopify asks), then <strong>Create an app</strong> and name it "
                  "Cadence.</li>"
                  "<li>Click <strong>Configure Admin API scopes</strong>, tick "
                  "<strong>read_products</strong> and <strong>read_inventory</strong> (nothing "
                  "else), and save.</li>"
                  "<li>Click <strong>Install app</strong> and confirm.</li>"
                  "<li>Under API credentials, click <strong>Reveal token once</strong> and copy "
                  "the Admin API access token (it starts with shpat_). Shopify shows it only "
                  "once.</li></ol>");
        break;
    case PROVIDER_POSTSCRIPT:
        wbuf_puts(&r->out,
                  "<p>For SMS flows through Postscript; a separate key from your Klaviyo key. "
                  "In Postscript open <strong>Settings \xE2\x86\x92 API</strong>, create a "
                  "<strong>Security Key Pair</strong> if there is none, and click "
                  "<strong>Show</strong> under <strong>Private Key</strong>: it starts with sk_. "
                  "The Public Key (pk_) does not work here.</p>");
        break;
    case PROVIDER_ATTENTIVE:
        wbuf_puts(&r->out,
                  "<p>For SMS flows through Attentive; a separate key from your Klaviyo key. In "
                  "Attentive open <strong>Integrations \xE2\x86\x92 Manage Custom "
                  "Apps</strong> (App Marketplace \xE2\x86\x92 Built by you), create an app for "
                  "Cadence and copy its <strong>API key</strong>; Attentive shows it once.</p>");
        break;
    }
}

static void provider_section(struct web_req *r, const struct ob_state *s,
                             const struct extras_view *ev, enum provider p)
{
    const char *name = provider_name(p);
    bool mine = ev->submitted && ev->which == p;
    wbuf_fmt(&r->out,
             "<section class=\"connection\" id=\"%s\" aria-labelledby=\"%s-title\">"
             "<h2 id=\"%s-title\">%s%S</h2>",
             name, name, name, provider_title(p),
             p == PROVIDER_SHOPIFY ? " <span class=\"small\">(read-only, for the catalog)</span>"
                                   : " <span class=\"small\">(SMS)</span>");
    if (mine && ev->ok)
        connected_box(r, p, ev->ok);
    else if (mine)
        notice_box(r, ev->n, false);
    if (!(mine && ev->ok))
        stored_status(r, &s->cred[provider_cred_kind(p)], p);
    howto(r, p);
    char action[32];
    snprintf(action, sizeof action, "connect/%s", name);
    form_open(r, action, "stack");
    if (p == PROVIDER_SHOPIFY)
        text_field(r, "shopify_domain", "Store domain", "text", ev->domain,
                   "Your store's address: acme.myshopify.com, the admin URL you see in your "
                   "browser, or just the store name.",
                   mine ? ev->domain_err : NULL, "off");
    text_field(r, key_field(p),
               p == PROVIDER_SHOPIFY      ? "Admin API access token"
               : p == PROVIDER_POSTSCRIPT ? "Postscript private API key"
                                          : "Attentive API key",
               "password", "",
               p == PROVIDER_SHOPIFY      ? "Starts with shpat_ followed by 32 characters."
               : p == PROVIDER_POSTSCRIPT ? "Starts with sk_."
                                          : "The key of your custom app.",
               mine ? ev->key_err : NULL, "off");
    wbuf_fmt(&r->out,
             "<div class=\"actions\"><button type=\"submit\" class=\"primary\">Verify and "
             "connect %s</button></div></form></section>",
             provider_title(p));
}

static void render_extras(struct web_req *r, const struct ob_state *s, const struct extras_view *ev)
{
    frame_begin(r, s, STEP_EXTRAS);
    wbuf_puts(&r->out, "<p class=\"lead\">Optional: connect your Shopify store and your SMS "
                       "provider. Each is its own connection with its own key, verified with the "
                       "provider and stored encrypted; connect any, all or none, now or "
                       "later.</p>");
    provider_section(r, s, ev, PROVIDER_SHOPIFY);
    provider_section(r, s, ev, PROVIDER_POSTSCRIPT);
    provider_section(r, s, ev, PROVIDER_ATTENTIVE);
    form_open(r, "extras", "stack");
    wbuf_puts(&r->out, "<div class=\"actions\"><button type=\"submit\" name=\"action\" "
                       "value=\"done\" class=\"primary\">Finish</button>"
                       "<button type=\"submit\" name=\"action\" value=\"skip\" "
                       "class=\"secondary\">Skip for now</button></div></form>");
    frame_end(r);
}

/* The page's answer to a verification that did not succeed. */
static void connect_failed(struct web_req *r, enum provider p,
                           const struct provider_verify_result *vr, struct notice *n,
                           struct extras_view *ev)
{
    static _Thread_local char title[160], text[400];
    const char *what = p == PROVIDER_SHOPIFY ? "token" : "key";
    n->title = title;
    n->text = text;
    n->detail = vr->message;
    switch (vr->status) {
    case PROVIDER_VERIFY_REJECTED:
        r->status = 422;
        snprintf(title, sizeof title, "%s did not accept this %s", provider_title(p), what);
        snprintf(text, sizeof text,
                 "The %s is wrong or was revoked. Create a new one as described below and "
                 "paste it here.",
                 what);
        ev->key_err = title;
        break;
    case PROVIDER_VERIFY_MISSING_SCOPES:
        r->status = 422;
        snprintf(title, sizeof title, "The token works, but it cannot read your products");
        snprintf(text, sizeof text,
                 "In your custom app click Configure Admin API scopes, tick read_products (and "
                 "read_inventory), save, install the new version and paste the token again.");
        ev->key_err = "This token lacks the read_products access scope.";
        break;
    case PROVIDER_VERIFY_NOT_FOUND:
        r->status = 422;
        snprintf(title, sizeof title, "There is no Shopify store at this address");
        snprintf(text, sizeof text,
                 "Check the store domain: it is the name.myshopify.com address shown in your "
                 "Shopify admin under Settings \xE2\x86\x92 Domains.");
        ev->domain_err = title;
        break;
    case PROVIDER_VERIFY_UNREACHABLE:
    case PROVIDER_VERIFY_TRANSIENT:
        r->status = 503;
        snprintf(title, sizeof title, "We could not reach %s just now", provider_title(p));
        snprintf(text, sizeof text,
                 "Nothing was decided about your %s and nothing was stored. Please try again in "
                 "a minute.",
                 what);
        break;
    case PROVIDER_VERIFY_BAD_FORMAT:
    case PROVIDER_VERIFY_FAILED:
    case PROVIDER_VERIFY_OK:
        r->status = 500;
        snprintf(title, sizeof title, "Something went wrong on our side");
        snprintf(text, sizeof text,
                 "Your %s was not stored. Please try again in a few minutes, or skip this and "
                 "send it later.",
                 what);
        break;
    }
}

void onboard_connect_post(struct web_req *r)
{
    const char *which = route_param(&r->params, "provider");
    enum provider p;
    if (strcmp(which, "shopify") == 0)
        p = PROVIDER_SHOPIFY;
    else if (strcmp(which, "postscript") == 0)
        p = PROVIDER_POSTSCRIPT;
    else if (strcmp(which, "attentive") == 0)
        p = PROVIDER_ATTENTIVE;
    else {
        page_message(r, 404, "Page not found", "There is no such connection.");
        return;
    }
    struct ob_state s;
    if (ob_load(r, &s))
        return;
    char domain_in[256];
    trim_copy(web_form_get(&r->form, "shopify_domain"), domain_in, sizeof domain_in);
    struct extras_view ev = {.submitted = true, .which = p, .domain = domain_in};
    struct notice n = {0};
    ev.n = &n;
    char throttled[200];
    if (!verify_allowed(r, throttled, sizeof throttled)) {
        n.title = "Too many attempts";
        n.text = throttled;
        render_extras(r, &s, &ev);
        return;
    }
    struct shopify_domain_result dom = {0};
    if (p == PROVIDER_SHOPIFY && shopify_domain_normalise(domain_in, &dom) != CAD_OK)
        ev.domain_err = dom.message;
    const char *raw = web_form_get(&r->form, key_field(p));
    if (!raw)
        raw = "";
    struct provider_key_result kr;
    provider_key_check(p, raw, strlen(raw), &kr);
    if (kr.verdict != PROVIDER_KEY_OK)
        ev.key_err = kr.message;
    if (ev.domain_err || ev.key_err) {
        n.title = "Please check the form";
        n.text = p == PROVIDER_SHOPIFY ? "Some details need fixing; they are marked below. The "
                                         "token is never shown again, so paste it once more."
                                       : "The key needs fixing; it is never shown again, so "
                                         "paste it once more.";
        r->status = 422;
        cad_log(LOG_INFO, "onboard.connect", "link=%s provider=%s outcome=format verdict=%s%s",
                r->link.hash12, provider_name(p), provider_key_verdict_name(kr.verdict),
                ev.domain_err ? " domain=bad" : "");
        render_extras(r, &s, &ev);
        return;
    }
    if (p == PROVIDER_SHOPIFY)
        ev.domain = dom.domain;
    vault *v = web_req_vault(r);
    if (!v)
        return;
    cad_secret *key = NULL;
    if (secret_from(&key, raw, strlen(raw)) != CAD_OK) {
        page_message(r, 500, "Something went wrong", "Nothing was stored. Please try again.");
        return;
    }
    struct provider_set_result res;
    int rc = provider_credential_set(r->st, v, AUDIT_ACTOR_CLIENT, s.t.id, p, dom.domain, key, true,
                                     &res);
    secret_free(key);
    cad_log(rc && res.stage == PROVIDER_SET_FAILED ? LOG_ERROR : LOG_INFO, "onboard.connect",
            "link=%s provider=%s outcome=%s", r->link.hash12, provider_name(p),
            res.stage == PROVIDER_SET_STORED ? "connected"
            : res.stage == PROVIDER_SET_NOT_VERIFIED
                ? provider_verify_status_name(res.verify.status)
            : res.stage == PROVIDER_SET_BAD_FORMAT ? "format"
                                                   : "failed");
    if (res.record_rc != CAD_OK)
        cad_log(LOG_WARN, "onboard.connect", "link=%s error=\"%s\"", r->link.hash12, cad_errmsg());
    if (res.stage == PROVIDER_SET_STORED) {
        if (ob_load(r, &s))
            return;
        ev.ok = &res.verify;
        r->status = 200;
        render_extras(r, &s, &ev);
        return;
    }
    if (res.stage == PROVIDER_SET_BAD_FORMAT) {
        /* Checked above; only an inconsistency gets here. */
        res.verify.status = PROVIDER_VERIFY_FAILED;
    } else if (res.stage == PROVIDER_SET_FAILED) {
        cad_log(LOG_ERROR, "onboard.connect", "link=%s error=\"%s\"", r->link.hash12, cad_errmsg());
        res.verify.status = PROVIDER_VERIFY_FAILED;
    }
    connect_failed(r, p, &res.verify, &n, &ev);
    if (ob_load(r, &s))
        return;
    render_extras(r, &s, &ev);
}

void onboard_extras_post(struct web_req *r)
{
    struct ob_state s;
    if (ob_load(r, &s))
        return;
    const char *action = web_form_get(&r->form, "action");
    bool skip = action && strcmp(action, "skip") == 0;
    int64_t now = time_now_ms();
    int rc = store_begin(r->st);
    if (!rc)
        rc = store_exec(r->st,
                        "INSERT INTO onboarding_progress (tenant_id, extras_ms, updated_ms) "
                        "VALUES ($1, $2, $2) ON CONFLICT (tenant_id) DO UPDATE SET "
                        "extras_ms = $2, updated_ms = $2",
                        SV_ARGS(SV_TEXT(s.t.id), SV_INT(now)));
    if (!rc) {
        struct audit_entry e = {.tenant_id = s.t.id,
                                .actor = AUDIT_ACTOR_CLIENT,
                                .action = "onboarding.extras",
                                .duration_ms = -1,
                                .detail = skip ? "step 4 skipped" : "step 4 finished"};
        rc = audit_append(r->st, &e, NULL);
    }
    if (!rc)
        rc = store_commit(r->st);
    else
        store_rollback(r->st);
    if (rc) {
        cad_log(LOG_ERROR, "onboard.extras", "link=%s error=\"%s\"", r->link.hash12, cad_errmsg());
        page_message(r, 503, "Not saved",
                     "Your progress could not be saved just now. Please go back and try again "
                     "in a few minutes.");
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
    wbuf_puts(&r->out, "</dd>");
    for (int p = PROVIDER_SHOPIFY; p <= PROVIDER_ATTENTIVE; p++) {
        const struct credential_info *c = &s->cred[provider_cred_kind((enum provider)p)];
        wbuf_fmt(&r->out, "<dt>%s</dt><dd>", provider_title((enum provider)p));
        if (c->state == KEY_VERIFIED)
            wbuf_fmt(&r->out, "Connected to %s", c->account_name);
        else if (c->has_secret)
            wbuf_puts(&r->out, "Received, to be verified");
        else
            wbuf_puts(&r->out, "Not connected");
        wbuf_puts(&r->out, "</dd>");
    }
    wbuf_puts(&r->out, "</dl>");
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
