/*
 * Campaigns with their campaign messages, template assignment, send jobs, and flows.
 *
 * Campaigns are created together with their messages (campaign-messages.data) and get ULID
 * ids like Klaviyo's. Assigning a template copies it (a hidden, non-reusable template with a
 * new id) and attaches the copy, and the response uses the older message shape the spec
 * documents for that operation. Flows are created from a full definition whose actions carry
 * temporary_id values; the emulator replaces them with real ids everywhere they are referenced
 * (entry_action_id and links.next/next_if_true/next_if_false).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define TS_FILTERS "greater-than,greater-or-equal,less-than,less-or-equal,equals"

static bool channel_ok(const char *c)
{
    return c && (strcmp(c, "email") == 0 || strcmp(c, "sms") == 0 || strcmp(c, "mobile_push") == 0);
}

static bool audience_ok(struct sim_req *r, json_t *ids, const char *ptr, bool required)
{
    if (!ids && !required)
        return true;
    if (!json_is_array(ids) || (required && json_array_size(ids) == 0)) {
        japi_bad(r, "Audiences must be a non-empty array of list or segment ids.", ptr);
        return false;
    }
    for (size_t i = 0; i < json_array_size(ids); i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        if (!id || (!store_get(r->acct, "list", id) && !store_get(r->acct, "segment", id))) {
            char d[300];
            snprintf(d, sizeof d, "The audience %s is not a list or segment of this account.",
                     id ? id : "(not a string)");
            japi_bad(r, d, ptr);
            return false;
        }
    }
    return true;
}

static bool send_strategy_ok(struct sim_req *r, json_t *s)
{
    const char *m = json_string_value(json_object_get(s, "method"));
    const char *ptr = "/data/attributes/send_strategy";
    if (!m) {
        japi_bad(r, "'send_strategy.method' is required.", ptr);
        return false;
    }
    if (strcmp(m, "immediate") == 0)
        return true;
    if ((strcmp(m, "static") == 0 || strcmp(m, "throttled") == 0) &&
        json_string_value(json_object_get(s, "datetime")))
        return true;
    if (strcmp(m, "smart_send_time") == 0 && json_string_value(json_object_get(s, "date")))
        return true;
    japi_bad(r,
             "'send_strategy' must be immediate, static or throttled (with datetime), or "
             "smart_send_time (with date).",
             ptr);
    return false;
}

static json_t *default_tracking(const char *channel)
{
    if (strcmp(channel, "email") == 0)
        return json_pack("{s:b,s:b,s:b}", "add_tracking_params", 0, "is_tracking_clicks", 1,
                         "is_tracking_opens", 1);
    if (strcmp(channel, "sms") == 0)
        return json_pack("{s:b}", "add_tracking_params", 0);
    return json_null();
}

static const char *campaign_channel(const struct sim_obj *c)
{
    return json_string_value(json_object_get(json_object_get(c->doc, "_"), "messages.channel"));
}

static void new_ulid(struct sim_account *a, const char *type, char id[27])
{
    do
        sim_id_ulid(id);
    while (store_get(a, type, id));
}

static void create_campaign(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "campaign", false);
    if (!data)
        return;
    json_t *in = japi_attrs(data);
    const char *name = japi_req_str(r, in, "name");
    if (!name)
        return;
    json_t *aud = json_object_get(in, "audiences");
    if (!json_is_object(aud))
        return japi_bad(r, "'audiences' is required.", "/data/attributes/audiences");
    if (!audience_ok(r, json_object_get(aud, "included"), "/data/attributes/audiences/included",
                     true) ||
        !audience_ok(r, json_object_get(aud, "excluded"), "/data/attributes/audiences/excluded",
                     false))
        return;
    json_t *strategy = json_object_get(in, "send_strategy");
    if (strategy && !send_strategy_ok(r, strategy))
        return;
    json_t *msgs = json_object_get(json_object_get(in, "campaign-messages"), "data");
    size_t n_msgs = json_array_size(msgs);
    if (!json_is_array(msgs) || n_msgs == 0)
        return japi_bad(r, "'campaign-messages.data' must hold at least one message.",
                        "/data/attributes/campaign-messages");
    /* At least one message, and each either fails or has a valid channel: channel is set. */
    const char *channel = NULL;
    for (size_t i = 0; i < n_msgs; i++) {
        json_t *m = json_array_get(msgs, i);
        json_t *def = json_object_get(json_object_get(m, "attributes"), "definition");
        const char *ch = json_string_value(json_object_get(def, "channel"));
        char ptr[96];
        snprintf(ptr, sizeof ptr,
                 "/data/attributes/campaign-messages/data/%zu/attributes/definition/channel", i);
        const char *t = json_string_value(json_object_get(m, "type"));
        if (!t || strcmp(t, "campaign-message") != 0)
            return japi_bad(r, "Each message must have type campaign-message.", ptr);
        if (!channel_ok(ch))
            return japi_bad(r, "'channel' must be email, sms or mobile_push.", ptr);
        if (channel && strcmp(channel, ch) != 0)
            return japi_bad(r, "All messages of a campaign must use the same channel.", ptr);
        channel = ch;
    }

    char cid[27];
    new_ulid(r->acct, "campaign", cid);
    json_t *doc = japi_new_doc("campaign", cid);
    json_t *a = json_object_get(doc, "attributes");
    json_object_set_new(a, "name", json_string(name));
    json_object_set_new(a, "status", json_string("Draft"));
    json_object_set_new(a, "archived", json_false());
    json_t *excluded = json_object_get(aud, "excluded");
    json_object_set_new(a, "audiences",
                        json_pack("{s:O,s:O}", "included", json_object_get(aud, "included"),
                                  "excluded", excluded ? excluded : json_array()));
    if (!excluded)
        json_decref(json_object_get(json_object_get(a, "audiences"), "excluded"));
    json_t *so = json_object_get(in, "send_options");
    if (json_is_object(so))
        json_object_set(a, "send_options", so);
    else
        json_object_set_new(a, "send_options", json_pack("{s:b}", "use_smart_sending", 1));
    json_t *to = json_object_get(in, "tracking_options");
    if (json_is_object(to))
        json_object_set(a, "tracking_options", to);
    else
        json_object_set_new(a, "tracking_options", default_tracking(channel));
    if (strategy)
        json_object_set(a, "send_strategy", strategy);
    else
        json_object_set_new(a, "send_strategy", json_pack("{s:s}", "method", "immediate"));
    japi_touch(doc, "created_at", "updated_at", true);
    json_object_set_new(a, "scheduled_at", json_null());
    json_object_set_new(a, "send_time", json_null());
    json_object_set_new(japi_priv(doc), "messages.channel", json_string(channel));

    json_t *links = json_array();
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        json_t *def =
            json_object_get(json_object_get(json_array_get(msgs, i), "attributes"), "definition");
        char mid[27];
        new_ulid(r->acct, "campaign-message", mid);
        json_t *m = japi_new_doc("campaign-message", mid);
        json_t *ma = json_object_get(m, "attributes");
        json_object_set(ma, "definition", def);
        json_object_set_new(ma, "send_times", json_array());
        japi_touch(m, "created_at", "updated_at", true);
        json_object_set_new(
            m, "relationships",
            json_pack("{s:{s:o}}", "campaign", "data", japi_linkage("campaign", cid)));
        store_put(r->acct, m);
        json_array_append_new(links, japi_linkage("campaign-message", mid));
    }
    json_object_set_new(
        doc, "relationships",
        json_pack("{s:{s:o},s:{s:[]}}", "campaign-messages", "data", links, "tags", "data"));
    japi_reply_obj(r, 201, store_put(r->acct, doc), "/api/campaigns");
}

static void get_campaign(struct sim_req *r)
{
    struct sim_obj *o = japi_find(r, "campaign", "campaign");
    if (o)
        japi_reply_obj(r, 200, o, "/api/campaigns");
}

static void get_campaigns(struct sim_req *r)
{
    static const struct japi_list_spec spec = {
        .type = "campaign",
        .path_prefix = "/api/campaigns",
        .max_size = 100,
        .default_size = 100,
        .filters = "messages.channel:equals;name:contains;id:any[];status:equals,any[];"
                   "archived:equals;created_at:" TS_FILTERS ";updated_at:" TS_FILTERS
                   ";scheduled_at:" TS_FILTERS,
        .required = "messages.channel",
        .sorts = "created_at,id,name,scheduled_at,updated_at",
        .paginated = true,
    };
    japi_list(r, &spec);
}

static bool campaign_editable(struct sim_req *r, struct sim_obj *c)
{
    const char *st =
        json_string_value(json_object_get(json_object_get(c->doc, "attributes"), "status"));
    if (strcmp(st, "Draft") == 0)
        return true;
    char d[200];
    snprintf(d, sizeof d, "A campaign in status '%s' cannot be changed.", st);
    japi_bad(r, d, "/data");
    return false;
}

static void update_campaign(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "campaign", true);
    if (!data)
        return;
    struct sim_obj *o = japi_find(r, "campaign", "campaign");
    if (!o || !campaign_editable(r, o))
        return;
    json_t *in = japi_attrs(data);
    json_t *a = json_object_get(o->doc, "attributes");
    json_t *name = json_object_get(in, "name");
    if (name && (!json_is_string(name) || !*json_string_value(name)))
        return japi_bad(r, "'name' must be a non-empty string.", "/data/attributes/name");
    json_t *aud = json_object_get(in, "audiences");
    if (aud) {
        if (!json_is_object(aud) ||
            !audience_ok(r, json_object_get(aud, "included"), "/data/attributes/audiences/included",
                         false) ||
            !audience_ok(r, json_object_get(aud, "excluded"), "/data/attributes/audiences/excluded",
                         false))
            return;
        json_t *cur = json_object_get(a, "audiences");
        japi_copy_keys(cur, aud, "included,excluded");
        if (json_array_size(json_object_get(cur, "included")) == 0)
            return japi_bad(r, "'audiences.included' cannot be empty.",
                            "/data/attributes/audiences/included");
    }
    json_t *strategy = json_object_get(in, "send_strategy");
    if (strategy && !send_strategy_ok(r, strategy))
        return;
    japi_copy_keys(a, in, "name,send_strategy,send_options,tracking_options");
    japi_touch(o->doc, NULL, "updated_at", false);
    japi_reply_obj(r, 200, o, "/api/campaigns");
}

static void delete_campaign(struct sim_req *r)
{
    struct sim_obj *o = japi_find(r, "campaign", "campaign");
    if (!o)
        return;
    json_t *msgs = json_object_get(
        json_object_get(json_object_get(o->doc, "relationships"), "campaign-messages"), "data");
    for (size_t i = 0; i < json_array_size(msgs); i++)
        store_delete(r->acct, "campaign-message",
                     json_string_value(json_object_get(json_array_get(msgs, i), "id")));
    store_delete(r->acct, "campaign", r->params[0]);
    japi_no_content(r);
}

static void get_campaign_message(struct sim_req *r)
{
    struct sim_obj *o = japi_find(r, "campaign-message", "campaign message");
    if (o)
        japi_reply_obj(r, 200, o, "/api/campaign-messages");
}

static struct sim_obj *message_campaign(struct sim_req *r, struct sim_obj *m)
{
    const char *cid = json_string_value(json_object_get(
        json_object_get(json_object_get(json_object_get(m->doc, "relationships"), "campaign"),
                        "data"),
        "id"));
    return cid ? store_get(r->acct, "campaign", cid) : NULL;
}

static void update_campaign_message(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "campaign-message", true);
    if (!data)
        return;
    struct sim_obj *o = japi_find(r, "campaign-message", "campaign message");
    if (!o)
        return;
    struct sim_obj *c = message_campaign(r, o);
    if (c && !campaign_editable(r, c))
        return;
    json_t *in = japi_attrs(data);
    json_t *a = json_object_get(o->doc, "attributes");
    json_t *def = json_object_get(in, "definition");
    if (def) {
        json_t *cur = json_object_get(a, "definition");
        const char *ch = json_string_value(json_object_get(def, "channel"));
        const char *have = json_string_value(json_object_get(cur, "channel"));
        if (!json_is_object(def) || (ch && have && strcmp(ch, have) != 0))
            return japi_bad(r, "The channel of a message cannot be changed.",
                            "/data/attributes/definition/channel");
        json_t *merged = json_deep_copy(cur);
        json_t *content = json_object_get(def, "content");
        json_object_update(merged, def);
        if (json_is_object(content) && json_is_object(json_object_get(cur, "content"))) {
            json_t *mc = json_deep_copy(json_object_get(cur, "content"));
            json_object_update(mc, content);
            json_object_set_new(merged, "content", mc);
        }
        json_object_set_new(a, "definition", merged);
    }
    const char *img = japi_rel_id(data, "image", "image");
    if (img) {
        if (!store_get(r->acct, "image", img))
            return japi_not_found(r, "image", img);
        json_t *rels = json_object_get(o->doc, "relationships");
        json_object_set_new(rels, "image", json_pack("{s:o}", "data", japi_linkage("image", img)));
    }
    japi_touch(o->doc, NULL, "updated_at", false);
    japi_reply_obj(r, 200, o, "/api/campaign-messages");
}

static void update_image_for_campaign_message(struct sim_req *r)
{
    struct sim_obj *o = japi_find(r, "campaign-message", "campaign message");
    if (!o)
        return;
    json_t *d = r->body ? json_object_get(r->body, "data") : NULL;
    const char *t = json_string_value(json_object_get(d, "type"));
    const char *img = json_string_value(json_object_get(d, "id"));
    if (!t || strcmp(t, "image") != 0 || !img)
        return japi_bad(r, "'data' must be {\"type\":\"image\",\"id\":...}.", "/data");
    if (!store_get(r->acct, "image", img))
        return japi_not_found(r, "image", img);
    json_object_set_new(json_object_get(o->doc, "relationships"), "image",
                        json_pack("{s:o}", "data", japi_linkage("image", img)));
    japi_touch(o->doc, NULL, "updated_at", false);
    japi_no_content(r);
}

static struct sim_obj *message_template(struct sim_req *r, struct sim_obj *m)
{
    const char *tid = json_string_value(json_object_get(
        json_object_get(json_object_get(json_object_get(m->doc, "relationships"), "template"),
                        "data"),
        "id"));
    return tid ? store_get(r->acct, "template", tid) : NULL;
}

static void get_template_for_campaign_message(struct sim_req *r)
{
    struct sim_obj *m = japi_find(r, "campaign-message", "campaign message");
    if (!m)
        return;
    struct sim_obj *t = message_template(r, m);
    if (!t)
        return japi_not_found(r, "template for campaign message", r->params[0]);
    japi_reply_obj(r, 200, t, "/api/templates");
}

static void get_template_id_for_campaign_message(struct sim_req *r)
{
    struct sim_obj *m = japi_find(r, "campaign-message", "campaign message");
    if (!m)
        return;
    struct sim_obj *t = message_template(r, m);
    if (!t)
        return japi_not_found(r, "template for campaign message", r->params[0]);
    japi_reply_doc(r, 200, japi_linkage("template", t->id));
}

static void get_messages_for_campaign(struct sim_req *r)
{
    struct sim_obj *c = japi_find(r, "campaign", "campaign");
    if (!c)
        return;
    json_t *links = json_object_get(
        json_object_get(json_object_get(c->doc, "relationships"), "campaign-messages"), "data");
    json_t *out = json_array();
    for (size_t i = 0; i < json_array_size(links); i++) {
        struct sim_obj *m =
            store_get(r->acct, "campaign-message",
                      json_string_value(json_object_get(json_array_get(links, i), "id")));
        if (m)
            json_array_append_new(out, japi_render(r, m, "/api/campaign-messages"));
    }
    japi_reply_doc(r, 200, out);
}

static void assign_template(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "campaign-message", true);
    if (!data)
        return;
    const char *mid = json_string_value(json_object_get(data, "id"));
    const char *tid = japi_rel_id(data, "template", "template");
    if (!tid)
        return japi_bad(r, "'relationships.template.data' must name a template.",
                        "/data/relationships/template/data");
    struct sim_obj *m = store_get(r->acct, "campaign-message", mid);
    if (!m)
        return japi_not_found(r, "campaign message", mid);
    struct sim_obj *t = store_get(r->acct, "template", tid);
    if (!t)
        return japi_not_found(r, "template", tid);
    struct sim_obj *c = message_campaign(r, m);
    if (c && !campaign_editable(r, c))
        return;
    struct sim_obj *copy = template_copy(r->acct, t, true);
    json_object_set_new(json_object_get(m->doc, "relationships"), "template",
                        json_pack("{s:o}", "data", japi_linkage("template", copy->id)));
    japi_touch(m->doc, NULL, "updated_at", false);

    /* The older message shape this operation answers with. */
    json_t *ma = json_object_get(m->doc, "attributes");
    json_t *def = json_object_get(ma, "definition");
    const char *label = json_string_value(json_object_get(def, "label"));
    if (!label && c)
        label = json_string_value(json_object_get(json_object_get(c->doc, "attributes"), "name"));
    json_t *content = json_object_get(def, "content");
    json_t *attrs = json_pack("{s:s,s:s,s:O,s:O,s:O,s:O}", "label", label ? label : "", "channel",
                              json_string_value(json_object_get(def, "channel")), "content",
                              json_is_object(content) ? content : json_object(), "send_times",
                              json_object_get(ma, "send_times"), "created_at",
                              json_object_get(ma, "created_at"), "updated_at",
                              json_object_get(ma, "updated_at"));
    if (!json_is_object(content))
        json_decref(json_object_get(attrs, "content"));
    char self[160];
    snprintf(self, sizeof self, "%s/api/campaign-messages/%s/", sim.base_url, m->id);
    json_t *out = json_pack("{s:s,s:s,s:o,s:{s:{s:o},s:{s:o}},s:{s:s}}", "type", "campaign-message",
                            "id", m->id, "attributes", attrs, "relationships", "campaign", "data",
                            japi_linkage("campaign", c ? c->id : ""), "template", "data",
                            japi_linkage("template", copy->id), "links", "self", self);
    japi_reply_doc(r, 200, out);
}

/* ---- send jobs ---- */

static void send_campaign(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "campaign-send-job", true);
    if (!data)
        return;
    const char *cid = json_string_value(json_object_get(data, "id"));
    struct sim_obj *c = store_get(r->acct, "campaign", cid);
    if (!c)
        return japi_not_found(r, "campaign", cid);
    json_t *ca = json_object_get(c->doc, "attributes");
    if (strcmp(json_string_value(json_object_get(ca, "status")), "Draft") != 0)
        return japi_bad(r, "Only a campaign in Draft can be sent.", "/data/id");
    json_t *msgs = json_object_get(
        json_object_get(json_object_get(c->doc, "relationships"), "campaign-messages"), "data");
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        struct sim_obj *m =
            store_get(r->acct, "campaign-message",
                      json_string_value(json_object_get(json_array_get(msgs, i), "id")));
        if (m && strcmp(campaign_channel(c), "email") == 0 && !message_template(r, m))
            return japi_bad(r, "Every email message needs a template before sending.", "/data/id");
    }
    store_delete(r->acct, "campaign-send-job", cid);
    json_t *doc = japi_new_doc("campaign-send-job", cid);
    json_object_set_new(json_object_get(doc, "attributes"), "status", json_string("queued"));
    json_object_set_new(japi_priv(doc), "t0", json_integer(sim_clock_ms()));
    struct sim_obj *job = store_put(r->acct, doc);
    jobs_track(r->acct, "campaign-send-job", cid);
    json_t *strategy = json_object_get(ca, "send_strategy");
    const char *method = json_string_value(json_object_get(strategy, "method"));
    char ts[32];
    sim_timestamp(ts);
    if (method && strcmp(method, "immediate") != 0) {
        const char *when = json_string_value(json_object_get(strategy, "datetime"));
        json_object_set_new(ca, "status", json_string("Scheduled"));
        json_object_set_new(ca, "scheduled_at", json_string(ts));
        json_object_set_new(ca, "send_time", json_string(when ? when : ts));
    } else {
        json_object_set_new(ca, "status", json_string("Sending"));
        json_object_set_new(ca, "scheduled_at", json_string(ts));
        json_object_set_new(ca, "send_time", json_string(ts));
    }
    japi_touch(c->doc, NULL, "updated_at", false);
    japi_reply_obj(r, 202, job, "/api/campaign-send-jobs");
}

static void get_campaign_send_job(struct sim_req *r)
{
    struct sim_obj *o = japi_find(r, "campaign-send-job", "campaign send job");
    if (o)
        japi_reply_obj(r, 200, o, "/api/campaign-send-jobs");
}

static void cancel_campaign_send(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "campaign-send-job", true);
    if (!data)
        return;
    struct sim_obj *job = japi_find(r, "campaign-send-job", "campaign send job");
    if (!job)
        return;
    const char *action = json_string_value(json_object_get(japi_attrs(data), "action"));
    if (!action || (strcmp(action, "cancel") != 0 && strcmp(action, "revert") != 0))
        return japi_bad(r, "'action' must be cancel or revert.", "/data/attributes/action");
    json_t *ja = json_object_get(job->doc, "attributes");
    if (strcmp(json_string_value(json_object_get(ja, "status")), "complete") == 0)
        return japi_bad(r, "The campaign has already been sent.", "/data/id");
    json_object_set_new(ja, "status", json_string("cancelled"));
    struct sim_obj *c = store_get(r->acct, "campaign", job->id);
    if (c) {
        json_t *ca = json_object_get(c->doc, "attributes");
        json_object_set_new(ca, "status",
                            json_string(strcmp(action, "cancel") == 0 ? "Cancelled" : "Draft"));
        if (strcmp(action, "revert") == 0) {
            json_object_set_new(ca, "scheduled_at", json_null());
            json_object_set_new(ca, "send_time", json_null());
        }
        japi_touch(c->doc, NULL, "updated_at", false);
    }
    japi_no_content(r);
}

/* ---- flows ---- */

static const char *const action_types[] = {
    "time-delay",
    "send-email",
    "send-sms",
    "send-mobile-push",
    "send-webhook",
    "send-internal-alert",
    "send-whatsapp",
    "conditional-split",
    "trigger-split",
    "multi-branch-split",
    "action-output-split",
    "ab-test",
    "content-experiment",
    "update-profile",
    "list-update",
    "target-date",
    "countdown-delay",
    "back-in-stock-delay",
    "internal-service",
    "code",
};

static bool in_set(const char *s, const char *const *set, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(s, set[i]) == 0)
            return true;
    return false;
}

static const char *trigger_type_of(const char *t)
{
    if (strcmp(t, "list") == 0 || strcmp(t, "segment") == 0)
        return "Added to List";
    if (strcmp(t, "metric") == 0)
        return "Metric";
    if (strcmp(t, "date") == 0)
        return "Date Based";
    if (strcmp(t, "price-drop") == 0)
        return "Price Drop";
    if (strcmp(t, "low-inventory") == 0)
        return "Low Inventory";
    return NULL;
}

static const char *const link_keys[] = {"next", "next_if_true", "next_if_false"};

/* Validates the definition of a new flow and returns a copy whose temporary ids are replaced
 * by real ones, or NULL after setting a 400. */
static json_t *flow_definition(struct sim_req *r, json_t *def, const char **trigger_type)
{
    const char *P = "/data/attributes/definition";
    char ptr[160];
    json_t *triggers = json_object_get(def, "triggers");
    json_t *actions = json_object_get(def, "actions");
    if (!json_is_object(def)) {
        japi_bad(r, "'definition' is required.", P);
        return NULL;
    }
    if (!json_is_array(triggers) || json_array_size(triggers) != 1) {
        japi_bad(r, "'triggers' must hold exactly one trigger.",
                 "/data/attributes/definition/triggers");
        return NULL;
    }
    json_t *trig = json_array_get(triggers, 0);
    const char *tt = json_string_value(json_object_get(trig, "type"));
    *trigger_type = tt ? trigger_type_of(tt) : NULL;
    if (!*trigger_type) {
        japi_bad(r, "Unsupported trigger type.", "/data/attributes/definition/triggers/0/type");
        return NULL;
    }
    if (strcmp(tt, "list") == 0 || strcmp(tt, "segment") == 0) {
        const char *tid = json_string_value(json_object_get(trig, "id"));
        if (!tid || !store_get(r->acct, tt, tid)) {
            japi_bad(r, "The trigger's list or segment does not exist.",
                     "/data/attributes/definition/triggers/0/id");
            return NULL;
        }
    }
    if (!json_is_array(actions) || json_array_size(actions) == 0) {
        japi_bad(r, "'actions' must be a non-empty array.", "/data/attributes/definition/actions");
        return NULL;
    }
    json_t *map = json_object(); /* temporary_id -> real id */
    json_t *out = json_deep_copy(def);
    json_t *oacts = json_object_get(out, "actions");
    for (size_t i = 0; i < json_array_size(oacts); i++) {
        json_t *act = json_array_get(oacts, i);
        snprintf(ptr, sizeof ptr, "%s/actions/%zu", P, i);
        if (json_object_get(act, "id")) {
            japi_bad(r, "'id' is not allowed on create; use temporary_id.", ptr);
            goto fail;
        }
        const char *tmp = json_string_value(json_object_get(act, "temporary_id"));
        if (!tmp || !*tmp || json_object_get(map, tmp)) {
            japi_bad(r, "Each action needs a unique 'temporary_id'.", ptr);
            goto fail;
        }
        if (!in_set(json_string_value(json_object_get(act, "type")), action_types,
                    sizeof action_types / sizeof action_types[0])) {
            japi_bad(r, "Unsupported action type.", ptr);
            goto fail;
        }
        const char *tpl = json_string_value(json_object_get(
            json_object_get(json_object_get(act, "data"), "message"), "template_id"));
        if (tpl && !store_get(r->acct, "template", tpl)) {
            japi_bad(r, "The message's template does not exist.", ptr);
            goto fail;
        }
        char real[24];
        snprintf(real, sizeof real, "%llu", (unsigned long long)r->acct->next_action_id++);
        json_object_set_new(map, tmp, json_string(real));
    }
    const char *entry = json_string_value(json_object_get(def, "entry_action_id"));
    if (!entry || !json_object_get(map, entry)) {
        japi_bad(r, "'entry_action_id' must name the temporary_id of one of the actions.",
                 "/data/attributes/definition/entry_action_id");
        goto fail;
    }
    json_object_set(out, "entry_action_id", json_object_get(map, entry));
    for (size_t i = 0; i < json_array_size(oacts); i++) {
        json_t *act = json_array_get(oacts, i);
        json_object_set(
            act, "id",
            json_object_get(map, json_string_value(json_object_get(act, "temporary_id"))));
        json_object_del(act, "temporary_id");
        json_t *links = json_object_get(act, "links");
        for (size_t k = 0; k < 3; k++) {
            json_t *l = json_object_get(links, link_keys[k]);
            if (!l || json_is_null(l))
                continue;
            json_t *real = json_string_value(l) ? json_object_get(map, json_string_value(l)) : NULL;
            if (!real) {
                snprintf(ptr, sizeof ptr, "%s/actions/%zu/links/%s", P, i, link_keys[k]);
                japi_bad(r, "A link must name the temporary_id of another action.", ptr);
                goto fail;
            }
            json_object_set(links, link_keys[k], real);
        }
    }
    json_decref(map);
    return out;
fail:
    json_decref(map);
    json_decref(out);
    return NULL;
}

static json_t *flow_render(struct sim_req *r, const struct sim_obj *o)
{
    json_t *d = japi_render(r, o, "/api/flows");
    if (japi_wants(r, "additional-fields[flow]", "definition") || strcmp(r->method, "POST") == 0)
        json_object_set(json_object_get(d, "attributes"), "definition",
                        json_object_get(json_object_get(o->doc, "_"), "definition"));
    return d;
}

static void create_flow(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "flow", false);
    if (!data)
        return;
    json_t *in = japi_attrs(data);
    const char *name = japi_req_str(r, in, "name");
    if (!name)
        return;
    const char *trigger_type = NULL;
    json_t *def = flow_definition(r, json_object_get(in, "definition"), &trigger_type);
    if (!def)
        return;
    char id[8];
    do
        sim_id_short(id);
    while (store_get(r->acct, "flow", id));
    json_t *doc = japi_new_doc("flow", id);
    json_t *a = json_object_get(doc, "attributes");
    json_object_set_new(a, "name", json_string(name));
    json_object_set_new(a, "status", json_string("draft"));
    json_object_set_new(a, "archived", json_false());
    japi_touch(doc, "created", "updated", true);
    json_object_set_new(a, "trigger_type", json_string(trigger_type));
    json_t *acts = json_array();
    json_t *dacts = json_object_get(def, "actions");
    for (size_t i = 0; i < json_array_size(dacts); i++)
        json_array_append_new(
            acts, japi_linkage("flow-action",
                               json_string_value(json_object_get(json_array_get(dacts, i), "id"))));
    json_object_set_new(
        doc, "relationships",
        json_pack("{s:{s:o},s:{s:[]}}", "flow-actions", "data", acts, "tags", "data"));
    json_object_set_new(japi_priv(doc), "definition", def);
    struct sim_obj *o = store_put(r->acct, doc);
    japi_reply_doc(r, 201, flow_render(r, o));
}

static void get_flow(struct sim_req *r)
{
    struct sim_obj *o = japi_find(r, "flow", "flow");
    if (o)
        japi_reply_doc(r, 200, flow_render(r, o));
}

static void update_flow(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "flow", true);
    if (!data)
        return;
    struct sim_obj *o = japi_find(r, "flow", "flow");
    if (!o)
        return;
    const char *status = json_string_value(json_object_get(japi_attrs(data), "status"));
    static const char *const ok[] = {"draft", "manual", "live"};
    if (!in_set(status, ok, 3))
        return japi_bad(r, "'status' must be draft, manual or live.", "/data/attributes/status");
    json_object_set_new(json_object_get(o->doc, "attributes"), "status", json_string(status));
    json_t *acts =
        json_object_get(json_object_get(json_object_get(o->doc, "_"), "definition"), "actions");
    for (size_t i = 0; i < json_array_size(acts); i++) {
        json_t *d = json_object_get(json_array_get(acts, i), "data");
        if (json_is_object(d) && json_object_get(d, "status"))
            json_object_set_new(d, "status", json_string(status));
    }
    japi_touch(o->doc, "created", "updated", false);
    japi_reply_doc(r, 200, flow_render(r, o));
}

static void delete_flow(struct sim_req *r)
{
    japi_delete(r, "flow", "flow");
}

static void get_flows(struct sim_req *r)
{
    static const struct japi_list_spec spec = {
        .type = "flow",
        .path_prefix = "/api/flows",
        .max_size = 50,
        .default_size = 50,
        .filters = "id:equals,any[];name:equals,contains,starts-with,ends-with;status:equals;"
                   "archived:equals;trigger_type:equals;created:" TS_FILTERS ";updated:" TS_FILTERS,
        .sorts = "created,id,name,status,trigger_type,updated",
        .paginated = true,
        .render = flow_render,
    };
    japi_list(r, &spec);
}

const struct sim_route res_campaign_routes[] = {
    {"create_campaign", create_campaign},
    {"get_campaign", get_campaign},
    {"get_campaigns", get_campaigns},
    {"update_campaign", update_campaign},
    {"delete_campaign", delete_campaign},
    {"get_campaign_message", get_campaign_message},
    {"update_campaign_message", update_campaign_message},
    {"update_image_for_campaign_message", update_image_for_campaign_message},
    {"get_template_for_campaign_message", get_template_for_campaign_message},
    {"get_template_id_for_campaign_message", get_template_id_for_campaign_message},
    {"get_messages_for_campaign", get_messages_for_campaign},
    {"assign_template_to_campaign_message", assign_template},
    {"send_campaign", send_campaign},
    {"get_campaign_send_job", get_campaign_send_job},
    {"cancel_campaign_send", cancel_campaign_send},
    {"create_flow", create_flow},
    {"get_flow", get_flow},
    {"update_flow", update_flow},
    {"delete_flow", delete_flow},
    {"get_flows", get_flows},
    {NULL, NULL},
};
