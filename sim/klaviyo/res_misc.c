/*
 * Tags and tag groups (with tagging of flows, campaigns, lists and segments from the tag side),
 * coupons and coupon codes, images (from a URL or a data: URI as JSON, or a multipart file
 * upload), webhooks with their topic catalogue, and metrics (read-only in the API; seeded
 * through POST /__sim/metrics or --shopify-integration).
 *
 * Deterministic ids as Klaviyo mints them: a coupon's id is its external_id, a coupon code's
 * id is "<coupon id>-<unique_code>". A webhook's secret_key is stored but never returned.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "sim.h"

#define TS_FILTERS   "greater-than,greater-or-equal,less-than,less-or-equal,equals"
#define NAME_FILTERS "equals,contains,starts-with,ends-with"

/* ---- tags and tag groups ---- */

void tags_seed_account(struct sim_account *a)
{
    char id[37];
    sim_id_uuid(id);
    json_t *doc = japi_new_doc("tag-group", id);
    json_t *at = json_object_get(doc, "attributes");
    json_object_set_new(at, "name", json_string("Default Tag Group"));
    json_object_set_new(at, "exclusive", json_false());
    json_object_set_new(at, "default", json_true());
    store_put(a, doc);
}

static struct sim_obj *default_group(struct sim_account *a)
{
    struct sim_table *t = store_table(a, "tag-group");
    for (size_t i = 0; i < t->n; i++)
        if (!t->items[i]->deleted &&
            json_is_true(
                json_object_get(json_object_get(t->items[i]->doc, "attributes"), "default")))
            return t->items[i];
    return NULL;
}

static bool name_taken(struct sim_account *a, const char *type, const char *name,
                       const char *except_id)
{
    struct sim_table *t = store_table(a, type);
    for (size_t i = 0; i < t->n; i++) {
        struct sim_obj *o = t->items[i];
        const char *n =
            json_string_value(json_object_get(json_object_get(o->doc, "attributes"), "name"));
        if (!o->deleted && n && strcmp(n, name) == 0 &&
            (!except_id || strcmp(o->id, except_id) != 0))
            return true;
    }
    return false;
}

static void create_tag(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "tag", false);
    if (!data)
        return;
    const char *name = japi_req_str(r, japi_attrs(data), "name");
    if (!name)
        return;
    struct sim_obj *g;
    const char *gid = japi_rel_id(data, "tag-group", "tag-group");
    if (gid) {
        if (!(g = store_get(r->acct, "tag-group", gid)))
            return japi_not_found(r, "tag group", gid);
    } else {
        g = default_group(r->acct);
    }
    if (store_count(r->acct, "tag") >= SIM_TAG_CAP)
        return japi_bad(r, "An account may have at most 500 tags.", "/data");
    if (name_taken(r->acct, "tag", name, NULL))
        return japi_conflict(r, "A tag with this name already exists.");
    char id[37];
    sim_id_uuid(id);
    json_t *doc = japi_new_doc("tag", id);
    json_object_set_new(json_object_get(doc, "attributes"), "name", json_string(name));
    json_object_set_new(
        doc, "relationships",
        json_pack("{s:{s:o}}", "tag-group", "data", japi_linkage("tag-group", g->id)));
    json_object_set_new(
        japi_priv(doc), "tagged",
        json_pack("{s:{},s:{},s:{},s:{}}", "flows", "campaigns", "lists", "segments"));
    japi_reply_obj(r, 201, store_put(r->acct, doc), "/api/tags");
}

static void get_tag(struct sim_req *r)
{
    struct sim_obj *o = japi_find(r, "tag", "tag");
    if (o)
        japi_reply_obj(r, 200, o, "/api/tags");
}

static void update_tag(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "tag", true);
    if (!data)
        return;
    struct sim_obj *o = japi_find(r, "tag", "tag");
    if (!o)
        return;
    const char *name = japi_req_str(r, japi_attrs(data), "name");
    if (!name)
        return;
    if (japi_rel_id(data, "tag-group", "tag-group"))
        return japi_bad(r, "A tag cannot be moved to another tag group.",
                        "/data/relationships/tag-group");
    if (name_taken(r->acct, "tag", name, o->id))
        return japi_conflict(r, "A tag with this name already exists.");
    json_object_set_new(json_object_get(o->doc, "attributes"), "name", json_string(name));
    japi_no_content(r);
}

static void delete_tag(struct sim_req *r)
{
    japi_delete(r, "tag", "tag");
}

static void get_tags(struct sim_req *r)
{
    static const struct japi_list_spec spec = {
        .type = "tag",
        .path_prefix = "/api/tags",
        .max_size = 50,
        .default_size = 50,
        .filters = "id:equals,any[];name:" NAME_FILTERS ";tag-group.id:equals",
        .sorts = "id,name",
        .paginated = true,
    };
    japi_list(r, &spec);
}

static void create_tag_group(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "tag-group", false);
    if (!data)
        return;
    json_t *in = japi_attrs(data);
    const char *name = japi_req_str(r, in, "name");
    if (!name)
        return;
    json_t *ex = json_object_get(in, "exclusive");
    if (ex && !json_is_boolean(ex))
        return japi_bad(r, "'exclusive' must be a boolean.", "/data/attributes/exclusive");
    if (store_count(r->acct, "tag-group") >= SIM_TAG_GROUP_CAP)
        return japi_bad(r, "An account may have at most 50 tag groups.", "/data");
    if (name_taken(r->acct, "tag-group", name, NULL))
        return japi_conflict(r, "A tag group with this name already exists.");
    char id[37];
    sim_id_uuid(id);
    json_t *doc = japi_new_doc("tag-group", id);
    json_t *a = json_object_get(doc, "attributes");
    json_object_set_new(a, "name", json_string(name));
    json_object_set_new(a, "exclusive", json_boolean(json_is_true(ex)));
    json_object_set_new(a, "default", json_false());
    japi_reply_obj(r, 201, store_put(r->acct, doc), "/api/tag-groups");
}

static void get_tag_group(struct sim_req *r)
{
    struct sim_obj *o = japi_find(r, "tag-group", "tag group");
    if (o)
        japi_reply_obj(r, 200, o, "/api/tag-groups");
}

static void update_tag_group(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "tag-group", true);
    if (!data)
        return;
    struct sim_obj *o = japi_find(r, "tag-group", "tag group");
    if (!o)
        return;
    const char *name = japi_req_str(r, japi_attrs(data), "name");
    if (!name)
        return;
    if (name_taken(r->acct, "tag-group", name, o->id))
        return japi_conflict(r, "A tag group with this name already exists.");
    json_object_set_new(json_object_get(o->doc, "attributes"), "name", json_string(name));
    japi_no_content(r);
}

static void delete_tag_group(struct sim_req *r)
{
    struct sim_obj *o = japi_find(r, "tag-group", "tag group");
    if (!o)
        return;
    if (json_is_true(json_object_get(json_object_get(o->doc, "attributes"), "default")))
        return japi_bad(r, "The default tag group cannot be deleted.", NULL);
    struct sim_table *t = store_table(r->acct, "tag");
    json_t *doomed = json_array();
    for (size_t i = 0; i < t->n; i++) {
        const char *g = json_string_value(json_object_get(
            json_object_get(
                json_object_get(json_object_get(t->items[i]->doc, "relationships"), "tag-group"),
                "data"),
            "id"));
        if (!t->items[i]->deleted && g && strcmp(g, o->id) == 0)
            json_array_append_new(doomed, json_string(t->items[i]->id));
    }
    for (size_t i = 0; i < json_array_size(doomed); i++)
        store_delete(r->acct, "tag", json_string_value(json_array_get(doomed, i)));
    json_decref(doomed);
    store_delete(r->acct, "tag-group", o->id);
    japi_no_content(r);
}

static void get_tag_groups(struct sim_req *r)
{
    static const struct japi_list_spec spec = {
        .type = "tag-group",
        .path_prefix = "/api/tag-groups",
        .max_size = 25,
        .default_size = 25,
        .filters = "id:equals,any[];name:" NAME_FILTERS ";exclusive:equals;default:equals",
        .sorts = "id,name",
        .paginated = true,
    };
    japi_list(r, &spec);
}

/* "flows" from ".../relationships/flows", and the resource type it links ("flow"). */
static const char *tag_kind(struct sim_req *r, char type[16])
{
    const char *k = strrchr(r->op->path, '/') + 1;
    snprintf(type, 16, "%.*s", (int)strlen(k) - 1, k);
    return k;
}

static size_t tags_on(struct sim_account *a, const char *kind, const char *id)
{
    struct sim_table *t = store_table(a, "tag");
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        if (!t->items[i]->deleted &&
            json_object_get(
                json_object_get(json_object_get(json_object_get(t->items[i]->doc, "_"), "tagged"),
                                kind),
                id))
            n++;
    return n;
}

static void tag_relationship(struct sim_req *r, bool add)
{
    char type[16];
    const char *kind = tag_kind(r, type);
    struct sim_obj *tag = japi_find(r, "tag", "tag");
    if (!tag)
        return;
    json_t *data = r->body ? json_object_get(r->body, "data") : NULL;
    if (!json_is_array(data) || json_array_size(data) == 0)
        return japi_bad(r, "'data' must be a non-empty array of linkages.", "/data");
    for (size_t i = 0; i < json_array_size(data); i++) {
        json_t *l = json_array_get(data, i);
        const char *t = json_string_value(json_object_get(l, "type"));
        const char *id = json_string_value(json_object_get(l, "id"));
        char ptr[64];
        snprintf(ptr, sizeof ptr, "/data/%zu", i);
        if (!t || strcmp(t, type) != 0 || !id)
            return japi_bad(r, "Each linkage must have the resource's type and an id.", ptr);
        if (!store_get(r->acct, type, id))
            return japi_not_found(r, type, id);
    }
    json_t *set = json_object_get(json_object_get(json_object_get(tag->doc, "_"), "tagged"), kind);
    for (size_t i = 0; i < json_array_size(data); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(data, i), "id"));
        if (add) {
            if (!json_object_get(set, id) && tags_on(r->acct, kind, id) >= 100)
                return japi_bad(r, "A resource may have at most 100 tags.", "/data");
            json_object_set_new(set, id, json_true());
        } else {
            json_object_del(set, id);
        }
    }
    japi_no_content(r);
}

static void tag_add(struct sim_req *r)
{
    tag_relationship(r, true);
}

static void tag_remove(struct sim_req *r)
{
    tag_relationship(r, false);
}

static void tag_ids(struct sim_req *r)
{
    char type[16];
    const char *kind = tag_kind(r, type);
    struct sim_obj *tag = japi_find(r, "tag", "tag");
    if (!tag)
        return;
    json_t *set = json_object_get(json_object_get(json_object_get(tag->doc, "_"), "tagged"), kind);
    json_t *out = json_array();
    const char *id;
    json_t *v;
    json_object_foreach(set, id, v)
    {
        (void)v;
        json_array_append_new(out, japi_linkage(type, id));
    }
    japi_reply_doc(r, 200, out);
}

/* ---- coupons and coupon codes ---- */

static void create_coupon(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "coupon", false);
    if (!data)
        return;
    json_t *in = japi_attrs(data);
    const char *ext = japi_req_str(r, in, "external_id");
    if (!ext)
        return;
    if (store_get(r->acct, "coupon", ext))
        return japi_conflict(r, "A coupon with this external_id already exists.");
    json_t *mc = json_object_get(in, "monitor_configuration");
    if (mc && !json_is_object(mc) && !json_is_null(mc))
        return japi_bad(r, "'monitor_configuration' must be an object.",
                        "/data/attributes/monitor_configuration");
    json_t *doc = japi_new_doc("coupon", ext);
    json_t *a = json_object_get(doc, "attributes");
    json_object_set_new(a, "external_id", json_string(ext));
    json_t *desc = json_object_get(in, "description");
    json_object_set(a, "description", desc ? desc : json_null());
    json_object_set(a, "monitor_configuration", mc ? mc : json_null());
    japi_reply_obj(r, 201, store_put(r->acct, doc), "/api/coupons");
}

static void get_coupon(struct sim_req *r)
{
    struct sim_obj *o = japi_find(r, "coupon", "coupon");
    if (o)
        japi_reply_obj(r, 200, o, "/api/coupons");
}

static void update_coupon(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "coupon", true);
    if (!data)
        return;
    struct sim_obj *o = japi_find(r, "coupon", "coupon");
    if (!o)
        return;
    json_t *in = japi_attrs(data);
    if (json_object_get(in, "external_id"))
        return japi_bad(r, "'external_id' cannot be changed.", "/data/attributes/external_id");
    json_t *mc = json_object_get(in, "monitor_configuration");
    if (mc && !json_is_object(mc) && !json_is_null(mc))
        return japi_bad(r, "'monitor_configuration' must be an object.",
                        "/data/attributes/monitor_configuration");
    japi_copy_keys(json_object_get(o->doc, "attributes"), in, "description,monitor_configuration");
    japi_reply_obj(r, 200, o, "/api/coupons");
}

static void delete_coupon(struct sim_req *r)
{
    struct sim_obj *o = japi_find(r, "coupon", "coupon");
    if (!o)
        return;
    struct sim_table *t = store_table(r->acct, "coupon-code");
    json_t *doomed = json_array();
    for (size_t i = 0; i < t->n; i++) {
        const char *c =
            json_string_value(json_object_get(json_object_get(t->items[i]->doc, "_"), "coupon.id"));
        if (!t->items[i]->deleted && c && strcmp(c, o->id) == 0)
            json_array_append_new(doomed, json_string(t->items[i]->id));
    }
    for (size_t i = 0; i < json_array_size(doomed); i++)
        store_delete(r->acct, "coupon-code", json_string_value(json_array_get(doomed, i)));
    json_decref(doomed);
    store_delete(r->acct, "coupon", o->id);
    japi_no_content(r);
}

static void get_coupons(struct sim_req *r)
{
    static const struct japi_list_spec spec = {
        .type = "coupon",
        .path_prefix = "/api/coupons",
        .max_size = 100,
        .default_size = 100,
        .paginated = true,
    };
    japi_list(r, &spec);
}

static const char *const code_statuses[] = {
    "ASSIGNED_TO_PROFILE", "DELETING", "PROCESSING", "UNASSIGNED", "USED", "VERSION_NOT_ACTIVE"};

static bool code_status_ok(const char *s)
{
    for (size_t i = 0; s && i < sizeof code_statuses / sizeof code_statuses[0]; i++)
        if (strcmp(s, code_statuses[i]) == 0)
            return true;
    return false;
}

/* The two characters at s as a number (leading blank or sign allowed, as strtol takes them);
 * false unless the number fills both. */
static bool two_digit_field(const char *s, int *out)
{
    char buf[3] = {s[0], s[1], 0};
    char *end;
    long v = strtol(buf, &end, 10);
    if (end != buf + 2)
        return false;
    *out = (int)v;
    return true;
}

/* ISO-8601 as the spec writes it ("2030-01-01T00:00:00+00:00"): time_parse() plus a
 * trailing +HH:MM or -HH:MM offset, which it does not take. */
static int parse_iso_time(const char *s, int64_t *ms)
{
    size_t n = strlen(s);
    if (n > 6 && (s[n - 6] == '+' || s[n - 6] == '-') && s[n - 3] == ':' && strchr(s, 'T')) {
        char base[64];
        int hh, mm;
        if (n - 6 >= sizeof base || !two_digit_field(s + n - 5, &hh) ||
            !two_digit_field(s + n - 2, &mm))
            return -1;
        memcpy(base, s, n - 6);
        base[n - 6] = 0;
        if (time_parse(base, ms) != 0)
            return -1;
        int64_t off = ((int64_t)hh * 60 + mm) * 60000;
        *ms += s[n - 6] == '+' ? -off : off;
        return 0;
    }
    return time_parse(s, ms);
}

static void create_coupon_code(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "coupon-code", false);
    if (!data)
        return;
    json_t *in = japi_attrs(data);
    const char *code = japi_req_str(r, in, "unique_code");
    if (!code)
        return;
    const char *cid = japi_rel_id(data, "coupon", "coupon");
    if (!cid)
        return japi_bad(r, "'relationships.coupon' is required.", "/data/relationships/coupon");
    if (!store_get(r->acct, "coupon", cid))
        return japi_not_found(r, "coupon", cid);
    json_t *exp = json_object_get(in, "expires_at");
    int64_t ms;
    if (exp && !json_is_null(exp) &&
        (!json_is_string(exp) || parse_iso_time(json_string_value(exp), &ms) != 0))
        return japi_bad(r, "'expires_at' must be an ISO-8601 datetime.",
                        "/data/attributes/expires_at");
    char id[700];
    snprintf(id, sizeof id, "%s-%s", cid, code);
    if (store_get(r->acct, "coupon-code", id))
        return japi_conflict(r, "A coupon code with this unique_code already exists.");
    json_t *doc = japi_new_doc("coupon-code", id);
    json_t *a = json_object_get(doc, "attributes");
    json_object_set_new(a, "unique_code", json_string(code));
    if (json_is_string(exp)) {
        json_object_set(a, "expires_at", exp);
    } else {
        char ts[32];
        sim_timestamp_at(time_now_ms() + 365LL * 86400000, ts);
        json_object_set_new(a, "expires_at", json_string(ts));
    }
    json_object_set_new(a, "status", json_string("UNASSIGNED"));
    json_object_set_new(doc, "relationships",
                        json_pack("{s:{s:o}}", "coupon", "data", japi_linkage("coupon", cid)));
    json_object_set_new(japi_priv(doc), "coupon.id", json_string(cid));
    json_object_set_new(japi_priv(doc), "profile.id", json_null());
    japi_reply_obj(r, 200, store_put(r->acct, doc), "/api/coupon-codes");
}

static void get_coupon_code(struct sim_req *r)
{
    struct sim_obj *o = japi_find(r, "coupon-code", "coupon code");
    if (o)
        japi_reply_obj(r, 200, o, "/api/coupon-codes");
}

static void update_coupon_code(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "coupon-code", true);
    if (!data)
        return;
    struct sim_obj *o = japi_find(r, "coupon-code", "coupon code");
    if (!o)
        return;
    json_t *in = japi_attrs(data);
    json_t *st = json_object_get(in, "status");
    if (st && !code_status_ok(json_string_value(st)))
        return japi_bad(r, "Unknown coupon code status.", "/data/attributes/status");
    json_t *exp = json_object_get(in, "expires_at");
    int64_t ms;
    if (exp && (!json_is_string(exp) || parse_iso_time(json_string_value(exp), &ms) != 0))
        return japi_bad(r, "'expires_at' must be an ISO-8601 datetime.",
                        "/data/attributes/expires_at");
    japi_copy_keys(json_object_get(o->doc, "attributes"), in, "status,expires_at");
    japi_reply_obj(r, 200, o, "/api/coupon-codes");
}

static void delete_coupon_code(struct sim_req *r)
{
    japi_delete(r, "coupon-code", "coupon code");
}

static void get_coupon_codes(struct sim_req *r)
{
    static const struct japi_list_spec spec = {
        .type = "coupon-code",
        .path_prefix = "/api/coupon-codes",
        .max_size = 100,
        .default_size = 100,
        .filters = "coupon.id:equals,any[];profile.id:equals,any[];status:equals;"
                   "expires_at:" TS_FILTERS,
        .required = "coupon.id",
        .required_alt = "profile.id",
        .paginated = true,
    };
    japi_list(r, &spec);
}

/* ---- images ---- */

static const char *sniff_format(const unsigned char *d, size_t n)
{
    if (n >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0)
        return "png";
    if (n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff)
        return "jpeg";
    if (n >= 6 && (memcmp(d, "GIF87a", 6) == 0 || memcmp(d, "GIF89a", 6) == 0))
        return "gif";
    return NULL;
}

static const char *ext_format(const char *url)
{
    size_t n = strcspn(url, "?#");
    const char *dot = NULL;
    for (size_t i = 0; i < n; i++)
        if (url[i] == '.')
            dot = url + i;
        else if (url[i] == '/')
            dot = NULL;
    if (!dot)
        return NULL;
    size_t el = n - (size_t)(dot + 1 - url);
    if (el == 3 && strncasecmp(dot + 1, "png", 3) == 0)
        return "png";
    if (el == 3 && strncasecmp(dot + 1, "gif", 3) == 0)
        return "gif";
    if ((el == 3 && strncasecmp(dot + 1, "jpg", 3) == 0) ||
        (el == 4 && strncasecmp(dot + 1, "jpeg", 4) == 0))
        return "jpeg";
    return NULL;
}

static struct sim_obj *image_store(struct sim_req *r, const char *name, const char *format,
                                   size_t size, bool hidden)
{
    char unique[600];
    snprintf(unique, sizeof unique, "%s", name);
    for (int n = 1; name_taken(r->acct, "image", unique, NULL); n++)
        snprintf(unique, sizeof unique, "%s (%d)", name, n);
    char id[24], url[200];
    snprintf(id, sizeof id, "%llu", (unsigned long long)r->acct->next_image_id++);
    snprintf(url, sizeof url, "https://images.sim.invalid/company/%s/images/%s.%s", r->acct->id, id,
             strcmp(format, "jpeg") == 0 ? "jpg" : format);
    json_t *doc = japi_new_doc("image", id);
    json_t *a = json_object_get(doc, "attributes");
    json_object_set_new(a, "name", json_string(unique));
    json_object_set_new(a, "image_url", json_string(url));
    json_object_set_new(a, "format", json_string(format));
    json_object_set_new(a, "size", json_integer((json_int_t)size));
    json_object_set_new(a, "hidden", json_boolean(hidden));
    japi_touch(doc, NULL, "updated_at", true);
    return store_put(r->acct, doc);
}

static void upload_image_from_url(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "image", false);
    if (!data)
        return;
    json_t *in = japi_attrs(data);
    const char *src = japi_req_str(r, in, "import_from_url");
    if (!src)
        return;
    json_t *hidden = json_object_get(in, "hidden");
    if (hidden && !json_is_boolean(hidden))
        return japi_bad(r, "'hidden' must be a boolean.", "/data/attributes/hidden");
    const char *ptr = "/data/attributes/import_from_url";
    const char *format = NULL;
    size_t size = 0;
    if (strncmp(src, "data:image/", 11) == 0) {
        const char *comma = strstr(src, ";base64,");
        unsigned char *bytes = NULL;
        if (!comma || base64_decode(comma + 8, &bytes, &size) != 0)
            return japi_bad(r, "The data URI must be base64 encoded.", ptr);
        format = sniff_format(bytes, size);
        free(bytes);
        if (!format)
            return japi_bad(r, "Only JPEG, PNG and GIF images are supported.", ptr);
    } else if (strncmp(src, "https://", 8) == 0 || strncmp(src, "http://", 7) == 0) {
        format = ext_format(src);
        if (!format)
            return japi_bad(r, "Only JPEG, PNG and GIF images are supported.", ptr);
        size = 1024 + strlen(src) * 37;
    } else {
        return japi_bad(r, "'import_from_url' must be an http(s) URL or a data: URI.", ptr);
    }
    if (size > SIM_MAX_IMAGE)
        return japi_bad(r, "Images may be at most 5MB.", ptr);
    const char *name = json_string_value(json_object_get(in, "name"));
    char derived[256];
    if (!name || !*name) {
        const char *slash = strncmp(src, "data:", 5) == 0 ? NULL : strrchr(src, '/');
        snprintf(derived, sizeof derived, "%.*s", slash ? (int)strcspn(slash + 1, "?#.") : 5,
                 slash ? slash + 1 : "image");
        name = *derived ? derived : "image";
    }
    japi_reply_obj(r, 201, image_store(r, name, format, size, json_is_true(hidden)), "/api/images");
}

struct upload {
    unsigned char *file;
    size_t len;
    bool too_big, got_file;
    char name[256];
    char filename[256];
    char hidden[8];
};

static enum MHD_Result upload_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *filename, const char *content_type,
                                    const char *transfer_encoding, const char *data, uint64_t off,
                                    size_t size)
{
    (void)kind;
    (void)content_type;
    (void)transfer_encoding;
    struct upload *u = cls;
    if (strcmp(key, "file") == 0) {
        u->got_file = true;
        if (filename && !u->filename[0])
            snprintf(u->filename, sizeof u->filename, "%s", filename);
        if (off + size > SIM_MAX_IMAGE) {
            u->too_big = true;
            return MHD_YES;
        }
        unsigned char *nb = realloc(u->file, (size_t)off + size + 1);
        if (!nb)
            return MHD_NO;
        u->file = nb;
        memcpy(u->file + off, data, size);
        if (off + size > u->len)
            u->len = (size_t)(off + size);
    } else if (strcmp(key, "name") == 0) {
        size_t have = strlen(u->name);
        snprintf(u->name + have, sizeof u->name - have, "%.*s", (int)size, data);
    } else if (strcmp(key, "hidden") == 0) {
        snprintf(u->hidden, sizeof u->hidden, "%.*s", (int)size, data);
    }
    return MHD_YES;
}

static void upload_image_from_file(struct sim_req *r)
{
    const char *ct = req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct || strncmp(ct, "multipart/form-data", 19) != 0)
        return japi_error(r, 415, "unsupported_media_type", "Unsupported media type.",
                          "This endpoint takes multipart/form-data.", NULL, NULL);
    struct upload u = {0};
    struct MHD_PostProcessor *pp = MHD_create_post_processor(r->conn, 65536, upload_field, &u);
    if (!pp)
        return japi_bad(r, "The multipart body could not be parsed.", NULL);
    enum MHD_Result ok = MHD_post_process(pp, r->raw_body ? r->raw_body : "", r->raw_len);
    MHD_destroy_post_processor(pp);
    const char *format = u.file ? sniff_format(u.file, u.len) : NULL;
    if (ok != MHD_YES || !u.got_file)
        japi_bad(r, "The form field 'file' is required.", NULL);
    else if (u.too_big)
        japi_bad(r, "Images may be at most 5MB.", NULL);
    else if (!format)
        japi_bad(r, "Only JPEG, PNG and GIF images are supported.", NULL);
    else {
        char name[256];
        snprintf(name, sizeof name, "%s", u.name[0] ? u.name : u.filename);
        if (!u.name[0])
            name[strcspn(name, ".")] = 0;
        bool hidden = strcmp(u.hidden, "true") == 0 || strcmp(u.hidden, "1") == 0;
        japi_reply_obj(r, 201, image_store(r, name[0] ? name : "image", format, u.len, hidden),
                       "/api/images");
    }
    free(u.file);
}

static void get_image(struct sim_req *r)
{
    struct sim_obj *o = japi_find(r, "image", "image");
    if (o)
        japi_reply_obj(r, 200, o, "/api/images");
}

static void update_image(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "image", true);
    if (!data)
        return;
    struct sim_obj *o = japi_find(r, "image", "image");
    if (!o)
        return;
    json_t *in = japi_attrs(data);
    json_t *name = json_object_get(in, "name"), *hidden = json_object_get(in, "hidden");
    if (name && (!json_is_string(name) || !*json_string_value(name)))
        return japi_bad(r, "'name' must be a non-empty string.", "/data/attributes/name");
    if (hidden && !json_is_boolean(hidden))
        return japi_bad(r, "'hidden' must be a boolean.", "/data/attributes/hidden");
    json_t *a = json_object_get(o->doc, "attributes");
    if (name) {
        char unique[600];
        snprintf(unique, sizeof unique, "%s", json_string_value(name));
        for (int n = 1; name_taken(r->acct, "image", unique, o->id); n++)
            snprintf(unique, sizeof unique, "%s (%d)", json_string_value(name), n);
        json_object_set_new(a, "name", json_string(unique));
    }
    if (hidden)
        json_object_set(a, "hidden", hidden);
    japi_touch(o->doc, NULL, "updated_at", false);
    japi_reply_obj(r, 200, o, "/api/images");
}

static void get_images(struct sim_req *r)
{
    static const struct japi_list_spec spec = {
        .type = "image",
        .path_prefix = "/api/images",
        .max_size = 100,
        .default_size = 20,
        .filters = "id:equals,any[];name:" NAME_FILTERS ",any[];format:equals,any[];"
                   "size:" TS_FILTERS ";hidden:equals;updated_at:" TS_FILTERS,
        .sorts = "format,id,name,size,updated_at",
        .paginated = true,
    };
    japi_list(r, &spec);
}

/* ---- webhooks ---- */

static const char *const topics[] = {
    "event:klaviyo.bounced_email",
    "event:klaviyo.clicked_email",
    "event:klaviyo.clicked_sms",
    "event:klaviyo.dropped_email",
    "event:klaviyo.failed_to_deliver_sms",
    "event:klaviyo.marked_email_as_spam",
    "event:klaviyo.opened_email",
    "event:klaviyo.received_email",
    "event:klaviyo.received_sms",
    "event:klaviyo.sent_sms",
    "event:klaviyo.subscribed_to_list",
    "event:klaviyo.unsubscribed",
    "event:klaviyo.unsubscribed_from_list",
    "event:klaviyo.unsubscribed_from_sms",
};

static bool topic_known(const char *t)
{
    for (size_t i = 0; t && i < sizeof topics / sizeof topics[0]; i++)
        if (strcmp(t, topics[i]) == 0)
            return true;
    return false;
}

/* Validated topic linkages, or NULL after a 400. */
static json_t *webhook_topics(struct sim_req *r, json_t *data, bool required)
{
    json_t *l = json_object_get(
        json_object_get(json_object_get(data, "relationships"), "webhook-topics"), "data");
    const char *ptr = "/data/relationships/webhook-topics/data";
    if (!l && !required)
        return json_null();
    if (!json_is_array(l) || json_array_size(l) == 0) {
        japi_bad(r, "At least one webhook topic is required.", ptr);
        return NULL;
    }
    json_t *out = json_array();
    for (size_t i = 0; i < json_array_size(l); i++) {
        json_t *x = json_array_get(l, i);
        const char *t = json_string_value(json_object_get(x, "type"));
        const char *id = json_string_value(json_object_get(x, "id"));
        if (!t || strcmp(t, "webhook-topic") != 0 || !topic_known(id)) {
            json_decref(out);
            japi_bad(r, "Unknown webhook topic.", ptr);
            return NULL;
        }
        json_array_append_new(out, japi_linkage("webhook-topic", id));
    }
    return out;
}

static bool https_url(json_t *v)
{
    const char *s = json_string_value(v);
    return s && strncmp(s, "https://", 8) == 0 && s[8];
}

static void create_webhook(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "webhook", false);
    if (!data)
        return;
    json_t *in = japi_attrs(data);
    const char *name = japi_req_str(r, in, "name");
    if (!name || !japi_req_str(r, in, "endpoint_url") || !japi_req_str(r, in, "secret_key"))
        return;
    if (!https_url(json_object_get(in, "endpoint_url")))
        return japi_bad(r, "'endpoint_url' must be an https URL.", "/data/attributes/endpoint_url");
    json_t *en = json_object_get(in, "enabled");
    if (en && !json_is_boolean(en))
        return japi_bad(r, "'enabled' must be a boolean.", "/data/attributes/enabled");
    json_t *tl = webhook_topics(r, data, true);
    if (!tl)
        return;
    char id[27];
    do
        sim_id_ulid(id);
    while (store_get(r->acct, "webhook", id));
    json_t *doc = japi_new_doc("webhook", id);
    json_t *a = json_object_get(doc, "attributes");
    json_object_set_new(a, "name", json_string(name));
    json_t *desc = json_object_get(in, "description");
    json_object_set(a, "description", desc ? desc : json_null());
    json_object_set(a, "endpoint_url", json_object_get(in, "endpoint_url"));
    json_object_set_new(a, "enabled", json_boolean(!en || json_is_true(en)));
    japi_touch(doc, "created_at", "updated_at", true);
    json_object_set_new(doc, "relationships", json_pack("{s:{s:o}}", "webhook-topics", "data", tl));
    json_object_set(japi_priv(doc), "secret_key", json_object_get(in, "secret_key"));
    japi_reply_obj(r, 201, store_put(r->acct, doc), "/api/webhooks");
}

static void get_webhook(struct sim_req *r)
{
    struct sim_obj *o = japi_find(r, "webhook", "webhook");
    if (o)
        japi_reply_obj(r, 200, o, "/api/webhooks");
}

static void update_webhook(struct sim_req *r)
{
    json_t *data = japi_body_data(r, "webhook", true);
    if (!data)
        return;
    struct sim_obj *o = japi_find(r, "webhook", "webhook");
    if (!o)
        return;
    json_t *in = japi_attrs(data);
    json_t *url = json_object_get(in, "endpoint_url"), *en = json_object_get(in, "enabled");
    json_t *name = json_object_get(in, "name"), *secret = json_object_get(in, "secret_key");
    if (url && !https_url(url))
        return japi_bad(r, "'endpoint_url' must be an https URL.", "/data/attributes/endpoint_url");
    if (en && !json_is_boolean(en))
        return japi_bad(r, "'enabled' must be a boolean.", "/data/attributes/enabled");
    if (name && (!json_is_string(name) || !*json_string_value(name)))
        return japi_bad(r, "'name' must be a non-empty string.", "/data/attributes/name");
    if (secret && (!json_is_string(secret) || !*json_string_value(secret)))
        return japi_bad(r, "'secret_key' must be a non-empty string.",
                        "/data/attributes/secret_key");
    json_t *tl = webhook_topics(r, data, false);
    if (!tl)
        return;
    if (!json_is_null(tl))
        json_object_set(json_object_get(json_object_get(o->doc, "relationships"), "webhook-topics"),
                        "data", tl);
    json_decref(tl);
    japi_copy_keys(json_object_get(o->doc, "attributes"), in,
                   "name,description,endpoint_url,enabled");
    if (secret)
        json_object_set(japi_priv(o->doc), "secret_key", secret);
    japi_touch(o->doc, "created_at", "updated_at", false);
    japi_reply_obj(r, 200, o, "/api/webhooks");
}

static void delete_webhook(struct sim_req *r)
{
    japi_delete(r, "webhook", "webhook");
}

static void get_webhooks(struct sim_req *r)
{
    static const struct japi_list_spec spec = {
        .type = "webhook",
        .path_prefix = "/api/webhooks",
        .paginated = false,
    };
    japi_list(r, &spec);
}

static json_t *topic_json(const char *id)
{
    char self[1024];
    snprintf(self, sizeof self, "%s/api/webhook-topics/%.400s/", sim.base_url, id);
    return json_pack("{s:s,s:s,s:{s:s}}", "type", "webhook-topic", "id", id, "links", "self", self);
}

static void get_webhook_topics(struct sim_req *r)
{
    json_t *out = json_array();
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++)
        json_array_append_new(out, topic_json(topics[i]));
    japi_reply_doc(r, 200, out);
}

static void get_webhook_topic(struct sim_req *r)
{
    if (!topic_known(r->params[0]))
        return japi_not_found(r, "webhook topic", r->params[0]);
    japi_reply_doc(r, 200, topic_json(r->params[0]));
}

/* Profiles are made by bulk import jobs (jobs.c); listing them is what key verification reads
 * for the profiles scope. */
static void get_profiles(struct sim_req *r)
{
    static const struct japi_list_spec spec = {
        .type = "profile",
        .path_prefix = "/api/profiles",
        .max_size = 100,
        .default_size = 20,
        .filters = "id:any[],equals;email:any[],equals;phone_number:any[],equals;external_id:"
                   "any[],equals",
        .sorts = "created,email,id,updated",
        .paginated = true,
    };
    japi_list(r, &spec);
}

/* ---- metrics ---- */

/* The integration object of a metric. Klaviyo's Shopify integration has the id 0eMvjm; other
 * integrations get an id derived from their key, so every metric of one integration shares it. */
static json_t *integration_obj(const char *name, const char *category, const char *key,
                               const char *image_url)
{
    char k[64], id[8];
    if (key && *key) {
        snprintf(k, sizeof k, "%s", key);
    } else {
        size_t n = 0;
        for (const char *c = name; *c && n + 1 < sizeof k; c++)
            k[n++] = (char)(((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')) ? *c
                            : (*c >= 'A' && *c <= 'Z')                             ? *c - 'A' + 'a'
                                                                                   : '_');
        k[n] = 0;
    }
    if (strcmp(k, "shopify") == 0) {
        snprintf(id, sizeof id, "0eMvjm");
    } else {
        static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        uint64_t h = 1469598103934665603ull;
        for (const char *c = k; *c; c++)
            h = (h ^ (unsigned char)*c) * 1099511628211ull;
        for (int i = 0; i < 6; i++, h /= sizeof al - 1)
            id[i] = al[h % (sizeof al - 1)];
        id[6] = 0;
    }
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "object", "integration", "id", id, "key", k,
                          "name", name, "category", category);
    if (image_url)
        json_object_set_new(o, "image_url", json_string(image_url));
    return o;
}

struct sim_obj *metric_add(struct sim_account *a, const char *name, const char *integ_name,
                           const char *category, const char *key, const char *image_url,
                           bool *existed)
{
    struct sim_table *t = store_table(a, "metric");
    for (size_t i = 0; i < t->n; i++) {
        struct sim_obj *o = t->items[i];
        json_t *at = json_object_get(o->doc, "attributes");
        const char *n = json_string_value(json_object_get(at, "name"));
        const char *in =
            json_string_value(json_object_get(json_object_get(at, "integration"), "name"));
        if (!o->deleted && n && in && strcmp(n, name) == 0 && strcmp(in, integ_name) == 0) {
            *existed = true;
            return o;
        }
    }
    *existed = false;
    char id[8];
    do
        sim_id_short(id);
    while (store_get(a, "metric", id));
    json_t *doc = japi_new_doc("metric", id);
    json_t *at = json_object_get(doc, "attributes");
    json_object_set_new(at, "name", json_string(name));
    japi_touch(doc, "created", "updated", true);
    json_object_set_new(at, "integration", integration_obj(integ_name, category, key, image_url));
    json_object_set_new(japi_priv(doc), "integration.name", json_string(integ_name));
    json_object_set_new(japi_priv(doc), "integration.category", json_string(category));
    return store_put(a, doc);
}

void metrics_seed_account(struct sim_account *a)
{
    static const char *const shopify[] = {"Placed Order", "Ordered Product", "Started Checkout",
                                          "Fulfilled Order"};
    if (!sim.shopify_integration)
        return;
    bool existed;
    for (size_t i = 0; i < sizeof shopify / sizeof shopify[0]; i++)
        metric_add(a, shopify[i], "Shopify", "eCommerce", "shopify", NULL, &existed);
}

static void get_metric(struct sim_req *r)
{
    struct sim_obj *o = japi_find(r, "metric", "metric");
    if (o)
        japi_reply_obj(r, 200, o, "/api/metrics");
}

static void get_metrics(struct sim_req *r)
{
    static const struct japi_list_spec spec = {
        .type = "metric",
        .path_prefix = "/api/metrics",
        .max_size = 200,
        .default_size = 200,
        .filters = "integration.name:equals;integration.category:equals",
        .paginated = true,
    };
    /* No page[size] parameter; at most 200 per page, with a cursor. */
    if (req_query(r, "page[size]"))
        return japi_error(r, 400, "invalid", "Invalid input.",
                          "This endpoint does not accept page[size].", NULL, "page[size]");
    japi_list(r, &spec);
}

const struct sim_route res_misc_routes[] = {
    {"get_metrics", get_metrics},
    {"get_metric", get_metric},
    {"get_profiles", get_profiles},
    {"create_tag", create_tag},
    {"get_tag", get_tag},
    {"update_tag", update_tag},
    {"delete_tag", delete_tag},
    {"get_tags", get_tags},
    {"create_tag_group", create_tag_group},
    {"get_tag_group", get_tag_group},
    {"update_tag_group", update_tag_group},
    {"delete_tag_group", delete_tag_group},
    {"get_tag_groups", get_tag_groups},
    {"tag_flows", tag_add},
    {"tag_campaigns", tag_add},
    {"tag_lists", tag_add},
    {"tag_segments", tag_add},
    {"remove_tag_from_flows", tag_remove},
    {"remove_tag_from_campaigns", tag_remove},
    {"remove_tag_from_lists", tag_remove},
    {"remove_tag_from_segments", tag_remove},
    {"get_flow_ids_for_tag", tag_ids},
    {"get_campaign_ids_for_tag", tag_ids},
    {"get_list_ids_for_tag", tag_ids},
    {"get_segment_ids_for_tag", tag_ids},
    {"create_coupon", create_coupon},
    {"get_coupon", get_coupon},
    {"update_coupon", update_coupon},
    {"delete_coupon", delete_coupon},
    {"get_coupons", get_coupons},
    {"create_coupon_code", create_coupon_code},
    {"get_coupon_code", get_coupon_code},
    {"update_coupon_code", update_coupon_code},
    {"delete_coupon_code", delete_coupon_code},
    {"get_coupon_codes", get_coupon_codes},
    {"upload_image_from_url", upload_image_from_url},
    {"upload_image_from_file", upload_image_from_file},
    {"get_image", get_image},
    {"update_image", update_image},
    {"get_images", get_images},
    {"create_webhook", create_webhook},
    {"get_webhook", get_webhook},
    {"update_webhook", update_webhook},
    {"delete_webhook", delete_webhook},
    {"get_webhooks", get_webhooks},
    {"get_webhook_topics", get_webhook_topics},
    {"get_webhook_topic", get_webhook_topic},
    {NULL, NULL},
};
