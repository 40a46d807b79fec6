/*
 * Accounts, templates, lists, segments and forms: the resources Cadence provisions first.
 *
 * Attribute names, required fields and status codes follow api-notes.md sections 4-6 and the
 * response schemas of openapi-stable.json (e.g. templates always carry html; segments always
 * carry is_active/is_processing/is_starred). Copies of templates made by
 * assign_template_to_campaign_message are marked hidden: they answer GET by id but stay out of
 * listings and out of the 1,000-template creation limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "sim.h"

#define TS_FILTERS "greater-than,greater-or-equal,less-than,less-or-equal,equals"

/* ---- accounts ---- */

static json_t *account_json(struct sim_req *r, struct sim_account *a)
{
    char slug[64], email[128], web[128], self[160];
    slugify(a->org_name, slug, sizeof slug);
    if (!*slug)
        snprintf(slug, sizeof slug, "store");
    snprintf(email, sizeof email, "hello@%s.example.com", slug);
    snprintf(web, sizeof web, "https://%s.example.com", slug);
    snprintf(self, sizeof self, "%s/api/accounts/%s/", sim.base_url, a->id);
    (void)r;
    return json_pack("{s:s,s:s,s:{s:b,s:{s:s,s:s,s:s,s:s,s:{s:s,s:n,s:s,s:s,s:s,s:s}},"
                     "s:s,s:s,s:s,s:s,s:s},s:{s:s}}",
                     "type", "account", "id", a->id, "attributes", "test_account", 0,
                     "contact_information", "default_sender_name", a->org_name,
                     "default_sender_email", email, "website_url", web, "organization_name",
                     a->org_name, "street_address", "address1", "1 Main Street", "address2", "city",
                     "Boston", "region", "MA", "country", "US", "zip", "02110", "industry",
                     "Software / SaaS", "timezone", "US/Eastern", "preferred_currency", "USD",
                     "public_api_key", a->id, "locale", "en-US", "links", "self", self);
}

static void get_accounts(struct sim_req *r)
{
    char *self = japi_self_url(r, NULL);
    r->resp = json_pack("{s:[o],s:{s:s}}", "data", account_json(r, r->acct), "links", "self", self);
    free(self);
    r->status = 200;
}

static void get_account(struct sim_req *r)
{
    if (strcmp(r->params[0], r->acct->id) != 0)
        return japi_not_found(r, "account", r->params[0]);
    japi_reply_doc(r, 200, account_json(r, r->acct));
}

/* ---- templates ---- */

static bool template_visible(const struct sim_obj *o)
{
    return !json_is_true(json_object_get(json_object_get(o->doc, "_"), "hidden"));
}

static json_t *template_render(struct sim_req *r, const struct sim_obj *o)
{
    json_t *d = japi_render(r, o, "/api/templates");
    json_t *def = json_object_get(json_object_get(o->doc, "_"), "definition");
    if (def && japi_wants(r, "additional-fields[template]", "definition"))
        json_object_set(json_object_get(d, "attributes"), "definition", def);
    return d;
}

static bool editor_ok(const char *e)
{
    return strcmp(e, "CODE") == 0 || strcmp(e, "USER_DRAGGABLE") == 0 ||
           strcmp(e, "SYSTEM_DRAGGABLE") == 0;
}

static size_t api_template_count(struct sim_account *a)
{
    struct sim_table *t = store_table(a, "template");
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        if (!t->items[i]->deleted && template_visible(t->items[i]))
            n++;
    return n;
}

static bool template_limit(struct sim_req *r)
{
    if (api_template_count(r->acct) < SIM_TEMPLATE_CAP)
        return true;
    japi_bad(r, "This account has reached the limit of 1000 templates created via the API.",
             "/data");
    return false;
}

static const char system_html[] = "<html><body><!-- drag-and-drop template --></body></html>";

static void create_template(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "template", false);
    if (!data)
        return;
    json_t *in = japi_attrs(data);
    const char *name = japi_req_str(r, in, "name");
    if (!name)
        return;
    const char *editor = japi_req_str(r, in, "editor_type");
    if (!editor)
        return;
    if (!editor_ok(editor))
        return japi_bad(r, "'editor_type' must be one of CODE, USER_DRAGGABLE, SYSTEM_DRAGGABLE.",
                        "/data/attributes/editor_type");
    bool system = strcmp(editor, "SYSTEM_DRAGGABLE") == 0;
    json_t *html = json_object_get(in, "html");
    if (system && html && !json_is_null(html))
        return japi_bad(r, "'html' is not allowed for SYSTEM_DRAGGABLE templates.",
                        "/data/attributes/html");
    if (!system && !json_string_value(html))
        return japi_bad(r, "'html' is required for CODE and USER_DRAGGABLE templates.",
                        "/data/attributes/html");
    json_t *def = json_object_get(in, "definition");
    if (def && !json_is_object(def))
        return japi_bad(r, "'definition' must be an object.", "/data/attributes/definition");
    if (!template_limit(r))
        return;
    char id[8];
    do
        sim_id_short(id);
    while (store_get(r->acct, "template", id));
    json_t *doc = japi_new_doc("template", id);
    json_t *a = json_object_get(doc, "attributes");
    json_object_set_new(a, "name", json_string(name));
    json_object_set_new(a, "editor_type", json_string(editor));
    json_object_set_new(a, "html", json_string(system ? system_html : json_string_value(html)));
    json_object_set(a, "text",
                    json_object_get(in, "text") ? json_object_get(in, "text") : json_null());
    json_object_set(a, "amp",
                    json_object_get(in, "amp") ? json_object_get(in, "amp") : json_null());
    japi_touch(doc, "created", "updated", true);
    if (def)
        json_object_set(japi_priv(doc), "definition", def);
    struct sim_obj *o = store_put(r->acct, doc);
    japi_reply_doc(r, 201, template_render(r, o));
}

static void get_template(struct sim_req *r)
{
    struct sim_obj *o = japi_find(r, "template", "template");
    if (o)
        japi_reply_doc(r, 200, template_render(r, o));
}

static void update_template(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "template", true);
    if (!data)
        return;
    struct sim_obj *o = japi_find(r, "template", "template");
    if (!o)
        return;
    json_t *in = japi_attrs(data);
    json_t *a = json_object_get(o->doc, "attributes");
    const char *editor = json_string_value(json_object_get(a, "editor_type"));
    const char *want = json_string_value(json_object_get(in, "editor_type"));
    if (want && strcmp(want, editor) != 0)
        return japi_bad(r, "The editor type of a template cannot be changed.",
                        "/data/attributes/editor_type");
    json_t *name = json_object_get(in, "name");
    if (name && (!json_is_string(name) || !*json_string_value(name)))
        return japi_bad(r, "'name' must be a non-empty string.", "/data/attributes/name");
    json_t *html = json_object_get(in, "html");
    if (html && !json_is_null(html)) {
        if (strcmp(editor, "SYSTEM_DRAGGABLE") == 0)
            return japi_bad(r, "'html' is not allowed for SYSTEM_DRAGGABLE templates.",
                            "/data/attributes/html");
        if (!json_is_string(html))
            return japi_bad(r, "'html' must be a string.", "/data/attributes/html");
        json_object_set(a, "html", html);
    }
    japi_copy_keys(a, in, "name,text,amp");
    json_t *def = json_object_get(in, "definition");
    if (def)
        json_object_set(japi_priv(o->doc), "definition", def);
    japi_touch(o->doc, "created", "updated", false);
    japi_reply_doc(r, 200, template_render(r, o));
}

static void delete_template(struct sim_req *r)
{
    japi_delete(r, "template", "template");
}

static void get_templates(struct sim_req *r)
{
    static const struct japi_list_spec spec = {
        .type = "template",
        .path_prefix = "/api/templates",
        .max_size = 10,
        .default_size = 10,
        .filters = "id:equals,any[],equals[];name:equals,contains,any[],equals[];"
                   "created:" TS_FILTERS ";updated:" TS_FILTERS,
        .sorts = "created,id,name,updated",
        .paginated = true,
        .visible = template_visible,
        .render = template_render,
    };
    japi_list(r, &spec);
}

struct sim_obj *template_copy(struct sim_account *a, const struct sim_obj *src, bool hidden)
{
    char id[8];
    do
        sim_id_short(id);
    while (store_get(a, "template", id));
    json_t *doc = json_deep_copy(src->doc);
    json_object_set_new(doc, "id", json_string(id));
    japi_touch(doc, "created", "updated", true);
    if (hidden)
        json_object_set_new(japi_priv(doc), "hidden", json_true());
    else
        json_object_del(japi_priv(doc), "hidden");
    return store_put(a, doc);
}

static void clone_template(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "template", true);
    if (!data)
        return;
    struct sim_obj *src =
        store_get(r->acct, "template", json_string_value(json_object_get(data, "id")));
    if (!src)
        return japi_not_found(r, "template", json_string_value(json_object_get(data, "id")));
    if (!template_limit(r))
        return;
    struct sim_obj *o = template_copy(r->acct, src, false);
    const char *name = json_string_value(json_object_get(japi_attrs(data), "name"));
    char buf[600];
    if (!name) {
        snprintf(buf, sizeof buf, "%s (Clone)",
                 json_string_value(json_object_get(json_object_get(o->doc, "attributes"), "name")));
        name = buf;
    }
    json_object_set_new(json_object_get(o->doc, "attributes"), "name", json_string(name));
    japi_reply_doc(r, 201, template_render(r, o));
}

/* ---- lists ---- */

static bool opt_in_ok(json_t *v)
{
    const char *s = json_string_value(v);
    return s && (strcmp(s, "single_opt_in") == 0 || strcmp(s, "double_opt_in") == 0);
}

static void create_list(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "list", false);
    if (!data)
        return;
    json_t *in = japi_attrs(data);
    const char *name = japi_req_str(r, in, "name");
    if (!name)
        return;
    json_t *opt = json_object_get(in, "opt_in_process");
    if (opt && !opt_in_ok(opt))
        return japi_bad(r, "'opt_in_process' must be single_opt_in or double_opt_in.",
                        "/data/attributes/opt_in_process");
    char id[8];
    do
        sim_id_short(id);
    while (store_get(r->acct, "list", id));
    json_t *doc = japi_new_doc("list", id);
    json_t *a = json_object_get(doc, "attributes");
    json_object_set_new(a, "name", json_string(name));
    japi_touch(doc, "created", "updated", true);
    if (opt)
        json_object_set(a, "opt_in_process", opt);
    else
        json_object_set_new(a, "opt_in_process", json_string("double_opt_in"));
    japi_reply_obj(r, 201, store_put(r->acct, doc), "/api/lists");
}

static void get_list(struct sim_req *r)
{
    struct sim_obj *o = japi_find(r, "list", "list");
    if (o)
        japi_reply_obj(r, 200, o, "/api/lists");
}

static void update_list(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "list", true);
    if (!data)
        return;
    struct sim_obj *o = japi_find(r, "list", "list");
    if (!o)
        return;
    json_t *in = japi_attrs(data);
    json_t *name = json_object_get(in, "name"), *opt = json_object_get(in, "opt_in_process");
    if (name && (!json_is_string(name) || !*json_string_value(name)))
        return japi_bad(r, "'name' must be a non-empty string.", "/data/attributes/name");
    if (opt && !opt_in_ok(opt))
        return japi_bad(r, "'opt_in_process' must be single_opt_in or double_opt_in.",
                        "/data/attributes/opt_in_process");
    japi_copy_keys(json_object_get(o->doc, "attributes"), in, "name,opt_in_process");
    japi_touch(o->doc, "created", "updated", false);
    japi_reply_obj(r, 200, o, "/api/lists");
}

static void delete_list(struct sim_req *r)
{
    japi_delete(r, "list", "list");
}

static void get_lists(struct sim_req *r)
{
    static const struct japi_list_spec spec = {
        .type = "list",
        .path_prefix = "/api/lists",
        .max_size = 10,
        .default_size = 10,
        .filters = "id:any[],equals,equals[];name:any[],equals[];created:" TS_FILTERS
                   ";updated:" TS_FILTERS,
        .sorts = "created,id,name,updated",
        .paginated = true,
    };
    japi_list(r, &spec);
}

/* Adds or removes profile ids (a linkage array, at most 1000) to a list's private member set. */
static void list_profiles(struct sim_req *r, bool add)
{
    struct sim_obj *o = japi_find(r, "list", "list");
    if (!o)
        return;
    json_t *data = r->body ? json_object_get(r->body, "data") : NULL;
    if (!json_is_array(data) || json_array_size(data) == 0 || json_array_size(data) > 1000)
        return japi_bad(r, "'data' must be an array of 1 to 1000 profile linkages.", "/data");
    json_t *members = json_object_get(japi_priv(o->doc), "profile_ids");
    if (!members) {
        members = json_object();
        json_object_set_new(japi_priv(o->doc), "profile_ids", members);
    }
    for (size_t i = 0; i < json_array_size(data); i++) {
        json_t *l = json_array_get(data, i);
        const char *t = json_string_value(json_object_get(l, "type"));
        const char *id = json_string_value(json_object_get(l, "id"));
        char ptr[64];
        snprintf(ptr, sizeof ptr, "/data/%zu", i);
        if (!t || strcmp(t, "profile") != 0 || !id)
            return japi_bad(r, "Each item must be {\"type\":\"profile\",\"id\":...}.", ptr);
        if (add && !store_get(r->acct, "profile", id))
            return japi_bad(r, "The profile does not exist.", ptr);
    }
    for (size_t i = 0; i < json_array_size(data); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(data, i), "id"));
        if (add)
            json_object_set_new(members, id, json_true());
        else
            json_object_del(members, id);
    }
    japi_no_content(r);
}

static void add_profiles_to_list(struct sim_req *r)
{
    list_profiles(r, true);
}

static void remove_profiles_from_list(struct sim_req *r)
{
    list_profiles(r, false);
}

/* ---- segments ---- */

static bool segment_definition_ok(struct sim_req *r, json_t *def)
{
    json_t *groups = json_object_get(def, "condition_groups");
    if (!json_is_object(def) || !json_is_array(groups) || json_array_size(groups) == 0) {
        japi_bad(r, "'definition.condition_groups' must be a non-empty array.",
                 "/data/attributes/definition/condition_groups");
        return false;
    }
    for (size_t i = 0; i < json_array_size(groups); i++) {
        json_t *c = json_object_get(json_array_get(groups, i), "conditions");
        if (!json_is_array(c) || json_array_size(c) == 0) {
            char ptr[96];
            snprintf(ptr, sizeof ptr, "/data/attributes/definition/condition_groups/%zu/conditions",
                     i);
            japi_bad(r, "Each condition group needs a non-empty 'conditions' array.", ptr);
            return false;
        }
        for (size_t k = 0; k < json_array_size(c); k++) {
            if (!json_string_value(json_object_get(json_array_get(c, k), "type"))) {
                char ptr[120];
                snprintf(ptr, sizeof ptr,
                         "/data/attributes/definition/condition_groups/%zu/conditions/%zu/type", i,
                         k);
                japi_bad(r, "Each condition needs a 'type'.", ptr);
                return false;
            }
        }
    }
    return true;
}

static void create_segment(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "segment", false);
    if (!data)
        return;
    json_t *in = japi_attrs(data);
    const char *name = japi_req_str(r, in, "name");
    if (!name || !segment_definition_ok(r, json_object_get(in, "definition")))
        return;
    json_t *star = json_object_get(in, "is_starred");
    if (star && !json_is_boolean(star))
        return japi_bad(r, "'is_starred' must be a boolean.", "/data/attributes/is_starred");
    char id[8];
    do
        sim_id_short(id);
    while (store_get(r->acct, "segment", id));
    json_t *doc = japi_new_doc("segment", id);
    json_t *a = json_object_get(doc, "attributes");
    json_object_set_new(a, "name", json_string(name));
    json_object_set(a, "definition", json_object_get(in, "definition"));
    japi_touch(doc, "created", "updated", true);
    json_object_set_new(a, "is_active", json_true());
    json_object_set_new(a, "is_processing", json_false());
    json_object_set_new(a, "is_starred", json_boolean(json_is_true(star)));
    japi_reply_obj(r, 201, store_put(r->acct, doc), "/api/segments");
}

static void get_segment(struct sim_req *r)
{
    struct sim_obj *o = japi_find(r, "segment", "segment");
    if (o)
        japi_reply_obj(r, 200, o, "/api/segments");
}

static void update_segment(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "segment", true);
    if (!data)
        return;
    struct sim_obj *o = japi_find(r, "segment", "segment");
    if (!o)
        return;
    json_t *in = japi_attrs(data);
    json_t *def = json_object_get(in, "definition");
    if (def && !segment_definition_ok(r, def))
        return;
    json_t *name = json_object_get(in, "name");
    if (name && (!json_is_string(name) || !*json_string_value(name)))
        return japi_bad(r, "'name' must be a non-empty string.", "/data/attributes/name");
    static const char *const bools[] = {"is_starred", "is_active"};
    for (size_t i = 0; i < 2; i++) {
        json_t *b = json_object_get(in, bools[i]);
        if (b && !json_is_boolean(b))
            return japi_bad(r, "Expected a boolean.", "/data/attributes");
    }
    japi_copy_keys(json_object_get(o->doc, "attributes"), in,
                   "name,definition,is_starred,is_active");
    japi_touch(o->doc, "created", "updated", false);
    japi_reply_obj(r, 200, o, "/api/segments");
}

static void delete_segment(struct sim_req *r)
{
    japi_delete(r, "segment", "segment");
}

static void get_segments(struct sim_req *r)
{
    static const struct japi_list_spec spec = {
        .type = "segment",
        .path_prefix = "/api/segments",
        .max_size = 10,
        .default_size = 10,
        .filters = "id:any[],equals,equals[];name:any[],equals[];is_active:equals;is_"
                   "starred:equals;"
                   "created:" TS_FILTERS ";updated:" TS_FILTERS,
        .sorts = "created,id,name,updated",
        .paginated = true,
    };
    japi_list(r, &spec);
}

/* ---- forms ---- */

static bool form_definition_ok(struct sim_req *r, json_t *def)
{
    json_t *versions = json_object_get(def, "versions");
    if (!json_is_array(versions) || json_array_size(versions) == 0) {
        japi_bad(r, "'definition.versions' must be a non-empty array.",
                 "/data/attributes/definition/versions");
        return false;
    }
    for (size_t i = 0; i < json_array_size(versions); i++) {
        json_t *v = json_array_get(versions, i);
        json_t *steps = json_object_get(v, "steps");
        char ptr[96];
        snprintf(ptr, sizeof ptr, "/data/attributes/definition/versions/%zu", i);
        if (json_object_get(v, "id")) {
            japi_bad(r, "'id' is not allowed on create.", ptr);
            return false;
        }
        if (!json_is_array(steps) || json_array_size(steps) == 0) {
            japi_bad(r, "Each version needs a non-empty 'steps' array.", ptr);
            return false;
        }
        for (size_t s = 0; s < json_array_size(steps); s++) {
            if (!json_is_array(json_object_get(json_array_get(steps, s), "columns"))) {
                japi_bad(r, "Each step needs a 'columns' array.", ptr);
                return false;
            }
        }
    }
    return true;
}

static void create_form(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "form", false);
    if (!data)
        return;
    json_t *in = japi_attrs(data);
    const char *name = japi_req_str(r, in, "name");
    if (!name)
        return;
    const char *status = json_string_value(json_object_get(in, "status"));
    if (!status || strcmp(status, "draft") != 0)
        return japi_bad(r, "'status' is required and must be \"draft\".",
                        "/data/attributes/status");
    if (!json_is_boolean(json_object_get(in, "ab_test")))
        return japi_bad(r, "'ab_test' is a required boolean.", "/data/attributes/ab_test");
    json_t *def = json_object_get(in, "definition");
    if (!form_definition_ok(r, def))
        return;
    char id[8];
    do
        sim_id_short(id);
    while (store_get(r->acct, "form", id));
    json_t *doc = japi_new_doc("form", id);
    json_t *a = json_object_get(doc, "attributes");
    json_object_set_new(a, "status", json_string("draft"));
    json_object_set(a, "ab_test", json_object_get(in, "ab_test"));
    json_object_set_new(a, "name", json_string(name));
    json_t *d = json_deep_copy(def);
    json_t *versions = json_object_get(d, "versions");
    for (size_t i = 0; i < json_array_size(versions); i++)
        json_object_set_new(json_array_get(versions, i), "id",
                            json_integer((json_int_t)(sim_rand() % 9000000 + 1000000)));
    json_object_set_new(a, "definition", d);
    japi_touch(doc, "created_at", "updated_at", true);
    japi_reply_obj(r, 201, store_put(r->acct, doc), "/api/forms");
}

static void get_form(struct sim_req *r)
{
    struct sim_obj *o = japi_find(r, "form", "form");
    if (o)
        japi_reply_obj(r, 200, o, "/api/forms");
}

static void delete_form(struct sim_req *r)
{
    japi_delete(r, "form", "form");
}

static void get_forms(struct sim_req *r)
{
    static const struct japi_list_spec spec = {
        .type = "form",
        .path_prefix = "/api/forms",
        .max_size = 100,
        .default_size = 20,
        .filters = "id:equals,any[];name:equals,contains,any[];ab_test:equals;status:equals;"
                   "created_at:" TS_FILTERS ";updated_at:" TS_FILTERS,
        .sorts = "created_at,updated_at",
        .paginated = true,
    };
    japi_list(r, &spec);
}

const struct sim_route res_core_routes[] = {
    {"get_accounts", get_accounts},
    {"get_account", get_account},
    {"create_template", create_template},
    {"get_template", get_template},
    {"update_template", update_template},
    {"delete_template", delete_template},
    {"get_templates", get_templates},
    {"clone_template", clone_template},
    {"create_list", create_list},
    {"get_list", get_list},
    {"update_list", update_list},
    {"delete_list", delete_list},
    {"get_lists", get_lists},
    {"add_profiles_to_list", add_profiles_to_list},
    {"remove_profiles_from_list", remove_profiles_from_list},
    {"create_segment", create_segment},
    {"get_segment", get_segment},
    {"update_segment", update_segment},
    {"delete_segment", delete_segment},
    {"get_segments", get_segments},
    {"create_form", create_form},
    {"get_form", get_form},
    {"delete_form", delete_form},
    {"get_forms", get_forms},
    {NULL, NULL},
};
