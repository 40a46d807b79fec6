/*
 * Catalog items, variants and categories, with Klaviyo's compound ids
 * ("$custom:::$default:::<external_id>"), which make lookups by external id deterministic.
 *
 * The create/update/delete logic is shared with the bulk jobs (jobs.c): catalog_apply() does
 * one write and reports a status and an error message instead of writing a response, so a job
 * can collect per-item errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define ID_PREFIX "$custom:::$default:::"

static const char *prefix_of(const char *type)
{
    if (strcmp(type, "catalog-item") == 0)
        return "/api/catalog-items";
    if (strcmp(type, "catalog-variant") == 0)
        return "/api/catalog-variants";
    return "/api/catalog-categories";
}

const char *catalog_path_prefix(const char *type)
{
    return prefix_of(type);
}

static int fail(struct catalog_err *e, int status, const char *detail, const char *pointer)
{
    snprintf(e->detail, sizeof e->detail, "%s", detail);
    snprintf(e->pointer, sizeof e->pointer, "%s", pointer);
    return status;
}

static int need_str(json_t *in, const char *k, struct catalog_err *e)
{
    const char *v = json_string_value(json_object_get(in, k));
    if (v && *v)
        return 0;
    char d[120], p[120];
    snprintf(d, sizeof d, "'%s' is a required field.", k);
    snprintf(p, sizeof p, "/attributes/%s", k);
    return fail(e, 400, d, p);
}

static int need_num(json_t *in, const char *k, bool required, struct catalog_err *e)
{
    json_t *v = json_object_get(in, k);
    if ((!v && !required) || json_is_number(v))
        return 0;
    char d[120], p[120];
    snprintf(d, sizeof d, "'%s' must be a number.", k);
    snprintf(p, sizeof p, "/attributes/%s", k);
    return fail(e, 400, d, p);
}

static int check_common(json_t *in, struct catalog_err *e)
{
    json_t *pub = json_object_get(in, "published");
    if (pub && !json_is_boolean(pub))
        return fail(e, 400, "'published' must be a boolean.", "/attributes/published");
    json_t *md = json_object_get(in, "custom_metadata");
    if (md && !json_is_null(md)) {
        if (!json_is_object(md))
            return fail(e, 400, "'custom_metadata' must be an object.",
                        "/attributes/custom_metadata");
        char *s = json_dumps(md, JSON_COMPACT);
        size_t n = strlen(s);
        free(s);
        if (n > (size_t)100 * 1024)
            return fail(e, 400, "'custom_metadata' is larger than 100kb.",
                        "/attributes/custom_metadata");
    }
    json_t *images = json_object_get(in, "images");
    if (images && !json_is_array(images) && !json_is_null(images))
        return fail(e, 400, "'images' must be an array.", "/attributes/images");
    const char *it = json_string_value(json_object_get(in, "integration_type"));
    if (json_object_get(in, "integration_type") && (!it || strcmp(it, "$custom") != 0))
        return fail(e, 400, "'integration_type' must be $custom.", "/attributes/integration_type");
    const char *ct = json_string_value(json_object_get(in, "catalog_type"));
    if (json_object_get(in, "catalog_type") && (!ct || strcmp(ct, "$default") != 0))
        return fail(e, 400, "'catalog_type' must be $default.", "/attributes/catalog_type");
    return 0;
}

/* Ids of a to-many linkage at data.relationships.<rel>.data of `type`, all existing. */
static int linked_ids(struct sim_account *a, json_t *data, const char *rel, const char *type,
                      json_t **out, struct catalog_err *e)
{
    *out = NULL;
    json_t *l =
        json_object_get(json_object_get(json_object_get(data, "relationships"), rel), "data");
    if (!l)
        return 0;
    char p[120];
    snprintf(p, sizeof p, "/relationships/%s/data", rel);
    if (!json_is_array(l))
        return fail(e, 400, "The relationship must be an array of linkages.", p);
    json_t *ids = json_array();
    for (size_t i = 0; i < json_array_size(l); i++) {
        json_t *x = json_array_get(l, i);
        const char *t = json_string_value(json_object_get(x, "type"));
        const char *id = json_string_value(json_object_get(x, "id"));
        if (!t || strcmp(t, type) != 0 || !id || !store_get(a, type, id)) {
            json_decref(ids);
            return fail(e, 400, "A related object does not exist.", p);
        }
        json_array_append_new(ids, json_string(id));
    }
    *out = ids;
    return 0;
}

static const char *const item_keys =
    "title,description,price,url,image_full_url,image_thumbnail_url,images,custom_metadata,"
    "published";
static const char *const variant_keys =
    "title,description,sku,inventory_policy,inventory_quantity,price,url,image_full_url,"
    "image_thumbnail_url,images,custom_metadata,published";

static void set_defaults(json_t *a, const char *keys)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", keys);
    char *save = NULL;
    for (char *k = strtok_r(buf, ",", &save); k; k = strtok_r(NULL, ",", &save))
        if (!json_object_get(a, k))
            json_object_set_new(a, k,
                                strcmp(k, "published") == 0 ? json_true()
                                : strcmp(k, "images") == 0  ? json_array()
                                                            : json_null());
}

static int create_one(struct sim_account *a, const char *type, json_t *data, struct sim_obj **out,
                      struct catalog_err *e)
{
    json_t *in = json_object_get(data, "attributes");
    if (!json_is_object(in))
        return fail(e, 400, "'attributes' is required.", "/attributes");
    bool item = strcmp(type, "catalog-item") == 0, variant = strcmp(type, "catalog-variant") == 0;
    int st;
    if ((st = need_str(in, "external_id", e)))
        return st;
    if (item || variant) {
        static const char *const req[] = {"title", "description", "url"};
        for (size_t i = 0; i < 3; i++)
            if ((st = need_str(in, req[i], e)))
                return st;
        if ((st = need_num(in, "price", variant, e)) || (st = check_common(in, e)))
            return st;
    } else if ((st = need_str(in, "name", e))) {
        return st;
    }
    if (variant) {
        if ((st = need_str(in, "sku", e)) || (st = need_num(in, "inventory_quantity", true, e)))
            return st;
        json_t *pol = json_object_get(in, "inventory_policy");
        if (pol &&
            (!json_is_integer(pol) || json_integer_value(pol) < 0 || json_integer_value(pol) > 2))
            return fail(e, 400, "'inventory_policy' must be 0, 1 or 2.",
                        "/attributes/inventory_policy");
    }
    const char *ext = json_string_value(json_object_get(in, "external_id"));
    char id[600];
    snprintf(id, sizeof id, ID_PREFIX "%s", ext);
    if (store_get(a, type, id)) {
        char d[700];
        snprintf(d, sizeof d, "A %s with id %s already exists.", type, id);
        return fail(e, 409, d, "/attributes/external_id");
    }
    const char *item_id = NULL;
    if (variant) {
        json_t *l = json_object_get(json_object_get(json_object_get(data, "relationships"), "item"),
                                    "data");
        item_id = json_string_value(json_object_get(l, "id"));
        if (!item_id || !store_get(a, "catalog-item", item_id))
            return fail(e, 400, "'relationships.item' must name an existing catalog item.",
                        "/relationships/item/data");
    }
    json_t *links = NULL;
    if ((item && (st = linked_ids(a, data, "categories", "catalog-category", &links, e))) ||
        (!item && !variant && (st = linked_ids(a, data, "items", "catalog-item", &links, e))))
        return st;

    json_t *doc =
        json_pack("{s:s,s:s,s:{s:s}}", "type", type, "id", id, "attributes", "external_id", ext);
    json_t *attrs = json_object_get(doc, "attributes");
    if (item || variant) {
        japi_copy_keys(attrs, in, item ? item_keys : variant_keys);
        set_defaults(attrs, item ? item_keys : variant_keys);
        japi_touch(doc, "created", "updated", true);
    } else {
        json_object_set(attrs, "name", json_object_get(in, "name"));
        japi_touch(doc, NULL, "updated", true);
    }
    if (variant) {
        json_object_set_new(japi_priv(doc), "item.id", json_string(item_id));
        json_object_set_new(
            doc, "relationships",
            json_pack("{s:{s:o}}", "item", "data", japi_linkage("catalog-item", item_id)));
    }
    struct sim_obj *o = store_put(a, doc);
    if (item)
        json_object_set_new(japi_priv(o->doc), "category.id", links ? links : json_array());
    if (!item && !variant) {
        /* The category side of the link lives on the items, where the item filters look. */
        for (size_t i = 0; i < json_array_size(links); i++) {
            struct sim_obj *it =
                store_get(a, "catalog-item", json_string_value(json_array_get(links, i)));
            json_t *cats = json_object_get(japi_priv(it->doc), "category.id");
            json_array_append_new(cats, json_string(id));
        }
        json_decref(links);
    }
    *out = o;
    return 0;
}

static int update_one(struct sim_account *a, const char *type, json_t *data, struct sim_obj **out,
                      struct catalog_err *e)
{
    const char *id = json_string_value(json_object_get(data, "id"));
    struct sim_obj *o = id ? store_get(a, type, id) : NULL;
    if (!o) {
        char d[700];
        snprintf(d, sizeof d, "A %s with id %s does not exist.", type, id ? id : "(none)");
        return fail(e, 404, d, "/id");
    }
    json_t *in = json_object_get(data, "attributes");
    if (in && !json_is_object(in))
        return fail(e, 400, "'attributes' must be an object.", "/attributes");
    if (!in) {
        *out = o;
        return 0;
    }
    bool item = strcmp(type, "catalog-item") == 0, variant = strcmp(type, "catalog-variant") == 0;
    int st;
    if (json_object_get(in, "external_id"))
        return fail(e, 400, "'external_id' cannot be changed.", "/attributes/external_id");
    json_t *attrs = json_object_get(o->doc, "attributes");
    if (item || variant) {
        if ((st = need_num(in, "price", false, e)) || (st = check_common(in, e)) ||
            (variant && (st = need_num(in, "inventory_quantity", false, e))))
            return st;
        japi_copy_keys(attrs, in, item ? item_keys : variant_keys);
        json_t *links = NULL;
        if (item && (st = linked_ids(a, data, "categories", "catalog-category", &links, e)))
            return st;
        if (links)
            json_object_set_new(japi_priv(o->doc), "category.id", links);
        japi_touch(o->doc, "created", "updated", false);
    } else {
        json_t *name = json_object_get(in, "name");
        if (name && (!json_is_string(name) || !*json_string_value(name)))
            return fail(e, 400, "'name' must be a non-empty string.", "/attributes/name");
        if (name)
            json_object_set(attrs, "name", name);
        japi_touch(o->doc, NULL, "updated", false);
    }
    *out = o;
    return 0;
}

static int delete_one(struct sim_account *a, const char *type, const char *id,
                      struct catalog_err *e)
{
    if (!id || !store_get(a, type, id)) {
        char d[700];
        snprintf(d, sizeof d, "A %s with id %s does not exist.", type, id ? id : "(none)");
        return fail(e, 404, d, "/id");
    }
    if (strcmp(type, "catalog-item") == 0) {
        /* Variants go with their item; collect first, as deleting may compact the table. */
        struct sim_table *t = store_table(a, "catalog-variant");
        json_t *doomed = json_array();
        for (size_t i = 0; i < t->n; i++) {
            struct sim_obj *v = t->items[i];
            const char *it =
                json_string_value(json_object_get(json_object_get(v->doc, "_"), "item.id"));
            if (!v->deleted && it && strcmp(it, id) == 0)
                json_array_append_new(doomed, json_string(v->id));
        }
        for (size_t i = 0; i < json_array_size(doomed); i++)
            store_delete(a, "catalog-variant", json_string_value(json_array_get(doomed, i)));
        json_decref(doomed);
    }
    store_delete(a, type, id);
    return 0;
}

int catalog_apply(struct sim_account *a, const char *type, const char *action, json_t *data,
                  struct sim_obj **out, struct catalog_err *e)
{
    *out = NULL;
    e->detail[0] = e->pointer[0] = 0;
    if (strcmp(action, "create") == 0)
        return create_one(a, type, data, out, e);
    if (strcmp(action, "update") == 0)
        return update_one(a, type, data, out, e);
    return delete_one(a, type, json_string_value(json_object_get(data, "id")), e);
}

static void reply_err(struct sim_req *r, int st, struct catalog_err *e)
{
    char ptr[300];
    snprintf(ptr, sizeof ptr, "/data%s", e->pointer);
    if (st == 404)
        japi_error(r, 404, "not_found", "Not found.", e->detail, NULL, NULL);
    else if (st == 409)
        japi_error(r, 409, "duplicate_error", "Conflict.", e->detail, ptr, NULL);
    else
        japi_bad(r, e->detail, ptr);
}

static void do_write(struct sim_req *r, const char *type, const char *action)
{
    json_t *data = japi_body_data(r, type, strcmp(action, "update") == 0);
    if (!data)
        return;
    struct catalog_err e;
    struct sim_obj *o;
    int st = catalog_apply(r->acct, type, action, data, &o, &e);
    if (st)
        return reply_err(r, st, &e);
    japi_reply_obj(r, strcmp(action, "create") == 0 ? 201 : 200, o, prefix_of(type));
}

static void do_get(struct sim_req *r, const char *type)
{
    struct sim_obj *o = japi_find(r, type, type);
    if (o)
        japi_reply_obj(r, 200, o, prefix_of(type));
}

static void do_delete(struct sim_req *r, const char *type)
{
    struct catalog_err e;
    int st = delete_one(r->acct, type, r->params[0], &e);
    if (st)
        return reply_err(r, st, &e);
    japi_no_content(r);
}

static void create_item(struct sim_req *r)
{
    do_write(r, "catalog-item", "create");
}
static void update_item(struct sim_req *r)
{
    do_write(r, "catalog-item", "update");
}
static void get_item(struct sim_req *r)
{
    do_get(r, "catalog-item");
}
static void delete_item(struct sim_req *r)
{
    do_delete(r, "catalog-item");
}
static void create_variant(struct sim_req *r)
{
    do_write(r, "catalog-variant", "create");
}
static void update_variant(struct sim_req *r)
{
    do_write(r, "catalog-variant", "update");
}
static void get_variant(struct sim_req *r)
{
    do_get(r, "catalog-variant");
}
static void delete_variant(struct sim_req *r)
{
    do_delete(r, "catalog-variant");
}
static void create_category(struct sim_req *r)
{
    do_write(r, "catalog-category", "create");
}
static void update_category(struct sim_req *r)
{
    do_write(r, "catalog-category", "update");
}
static void get_category(struct sim_req *r)
{
    do_get(r, "catalog-category");
}
static void delete_category(struct sim_req *r)
{
    do_delete(r, "catalog-category");
}

static void get_items(struct sim_req *r)
{
    static const struct japi_list_spec spec = {
        .type = "catalog-item",
        .path_prefix = "/api/catalog-items",
        .max_size = 100,
        .default_size = 100,
        .filters = "ids:any[];category.id:equals;title:contains;published:equals",
        .sorts = "created",
        .paginated = true,
    };
    japi_list(r, &spec);
}

static void get_variants(struct sim_req *r)
{
    static const struct japi_list_spec spec = {
        .type = "catalog-variant",
        .path_prefix = "/api/catalog-variants",
        .max_size = 100,
        .default_size = 100,
        .filters = "ids:any[];item.id:equals;sku:equals;title:contains;published:equals",
        .sorts = "created",
        .paginated = true,
    };
    japi_list(r, &spec);
}

static void get_categories(struct sim_req *r)
{
    static const struct japi_list_spec spec = {
        .type = "catalog-category",
        .path_prefix = "/api/catalog-categories",
        .max_size = 100,
        .default_size = 100,
        .filters = "ids:any[];name:contains",
        .sorts = "created",
        .paginated = true,
    };
    japi_list(r, &spec);
}

const struct sim_route res_catalog_routes[] = {
    {"create_catalog_item", create_item},
    {"update_catalog_item", update_item},
    {"get_catalog_item", get_item},
    {"delete_catalog_item", delete_item},
    {"get_catalog_items", get_items},
    {"create_catalog_variant", create_variant},
    {"update_catalog_variant", update_variant},
    {"get_catalog_variant", get_variant},
    {"delete_catalog_variant", delete_variant},
    {"get_catalog_variants", get_variants},
    {"create_catalog_category", create_category},
    {"update_catalog_category", update_category},
    {"get_catalog_category", get_category},
    {"delete_catalog_category", delete_category},
    {"get_catalog_categories", get_categories},
    {NULL, NULL},
};
