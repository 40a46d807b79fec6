/*
 * What the plan engine knows about each asset kind in Klaviyo: one table row per kind (type,
 * paths, which field carries `updated`, what can be updated or deleted, the operations used, so
 * the estimate can look their limits up in kspec), and the few places where a kind's request
 * body differs from "data.attributes = the bundle's attributes with $refs resolved".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "plan/plan_int.h"

static const struct kind_info kinds[ASSET_KIND_COUNT] = {
    [ASSET_IMAGE] =
        {
            .kind = ASSET_IMAGE,
            .type = "image",
            .collection = "/api/images",
            .list_filter = NULL,
            .updated_field = "updated_at",
            .name_field = "name",
            .lookup = "eq",
            .can_update = false,
            .can_delete = false,
            .create_op = "upload_image_from_url",
            .update_op = "update_image",
            .delete_op = NULL,
            .get_op = "get_image",
            .list_op = "get_images",
            .opaque = {"import_from_url", "url", NULL},
        },
    [ASSET_TEMPLATE] =
        {
            .kind = ASSET_TEMPLATE,
            .type = "template",
            .collection = "/api/templates",
            .list_filter = NULL,
            .updated_field = "updated",
            .name_field = "name",
            .lookup = "eq",
            .can_update = true,
            .can_delete = true,
            .create_op = "create_template",
            .update_op = "update_template",
            .delete_op = "delete_template",
            .get_op = "get_template",
            .list_op = "get_templates",
            .opaque = {NULL},
        },
    [ASSET_LIST] =
        {
            .kind = ASSET_LIST,
            .type = "list",
            .collection = "/api/lists",
            .list_filter = NULL,
            .updated_field = "updated",
            .name_field = "name",
            .lookup = "eqlist",
            .can_update = true,
            .can_delete = true,
            .create_op = "create_list",
            .update_op = "update_list",
            .delete_op = "delete_list",
            .get_op = "get_list",
            .list_op = "get_lists",
            .opaque = {NULL},
        },
    [ASSET_SEGMENT] =
        {
            .kind = ASSET_SEGMENT,
            .type = "segment",
            .collection = "/api/segments",
            .list_filter = NULL,
            .updated_field = "updated",
            .name_field = "name",
            .lookup = "eqlist",
            .can_update = true,
            .can_delete = true,
            .create_op = "create_segment",
            .update_op = "update_segment",
            .delete_op = "delete_segment",
            .get_op = "get_segment",
            .list_op = "get_segments",
            .opaque = {NULL},
        },
    [ASSET_FORM] =
        {
            .kind = ASSET_FORM,
            .type = "form",
            .collection = "/api/forms",
            .list_filter = NULL,
            .updated_field = "updated_at",
            .name_field = "name",
            .lookup = "eq",
            .can_update = false,
            .can_delete = true,
            .create_op = "create_form",
            .update_op = NULL,
            .delete_op = "delete_form",
            .get_op = "get_form",
            .list_op = "get_forms",
            .opaque = {"definition", NULL},
        },
    [ASSET_COUPON] =
        {
            .kind = ASSET_COUPON,
            .type = "coupon",
            .collection = "/api/coupons",
            .list_filter = NULL,
            .updated_field = NULL,
            .name_field = NULL,
            .lookup = "id",
            .can_update = true,
            .can_delete = true,
            .create_op = "create_coupon",
            .update_op = "update_coupon",
            .delete_op = "delete_coupon",
            .get_op = "get_coupon",
            .list_op = "get_coupons",
            .opaque = {"external_id", NULL},
        },
    [ASSET_WEBHOOK] =
        {
            .kind = ASSET_WEBHOOK,
            .type = "webhook",
            .collection = "/api/webhooks",
            .list_filter = NULL,
            .updated_field = "updated_at",
            .name_field = "name",
            .lookup = "all",
            .can_update = true,
            .can_delete = true,
            .create_op = "create_webhook",
            .update_op = "update_webhook",
            .delete_op = "delete_webhook",
            .get_op = "get_webhook",
            .list_op = "get_webhooks",
            .opaque = {"secret_key_env", "topics", NULL},
        },
    [ASSET_CATALOG_ITEM] =
        {
            .kind = ASSET_CATALOG_ITEM,
            .type = "catalog-item",
            .collection = "/api/catalog-items",
            .list_filter = NULL,
            .updated_field = "updated",
            .name_field = "external_id",
            .lookup = "id",
            .can_update = true,
            .can_delete = true,
            .create_op = "bulk_create_catalog_items",
            .update_op = "bulk_update_catalog_items",
            .delete_op = "bulk_delete_catalog_items",
            .get_op = "get_catalog_item",
            .list_op = "get_catalog_items",
            .opaque = {NULL},
        },
    [ASSET_CAMPAIGN] =
        {
            .kind = ASSET_CAMPAIGN,
            .type = "campaign",
            .collection = "/api/campaigns",
            .list_filter = "equals(messages.channel,'email')",
            .updated_field = "updated_at",
            .name_field = "name",
            .lookup = "contains",
            .can_update = true,
            .can_delete = true,
            .create_op = "create_campaign",
            .update_op = "update_campaign",
            .delete_op = "delete_campaign",
            .get_op = "get_campaign",
            .list_op = "get_campaigns",
            .opaque = {"campaign-messages", NULL},
        },
    [ASSET_FLOW] =
        {
            .kind = ASSET_FLOW,
            .type = "flow",
            .collection = "/api/flows",
            .list_filter = NULL,
            .updated_field = "updated",
            .name_field = "name",
            .lookup = "eq",
            .can_update = false,
            .can_delete = true,
            .create_op = "create_flow",
            .update_op = NULL,
            .delete_op = "delete_flow",
            .get_op = "get_flow",
            .list_op = "get_flows",
            .opaque = {"definition", NULL},
        },
    [ASSET_TAG] =
        {
            .kind = ASSET_TAG,
            .type = "tag",
            .collection = "/api/tags",
            .list_filter = NULL,
            .updated_field = NULL,
            .name_field = "name",
            .lookup = "eq",
            .can_update = true,
            .can_delete = true,
            .create_op = "create_tag",
            .update_op = "update_tag",
            .delete_op = "delete_tag",
            .get_op = "get_tag",
            .list_op = "get_tags",
            .opaque = {"targets", "tag_group", NULL},
        },
};

const struct kind_info *kind_info(enum asset_kind k)
{
    return (unsigned)k < ASSET_KIND_COUNT ? &kinds[k] : NULL;
}

const struct kind_info *kind_by_type(const char *type)
{
    for (int k = 0; k < ASSET_KIND_COUNT; k++)
        if (type && strcmp(kinds[k].type, type) == 0)
            return &kinds[k];
    return NULL;
}

const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

void remote_obj_clear(struct remote_obj *o)
{
    free(o->id);
    free(o->name);
    free(o->updated);
    json_decref(o->attrs);
    json_decref(o->rels);
    memset(o, 0, sizeof *o);
}

static char *dup_str(const char *s)
{
    return s ? strdup(s) : NULL;
}

const char *kind_updated(const struct kind_info *ki, const json_t *attrs,
                         char fp[KIND_FINGERPRINT_LEN])
{
    if (ki->updated_field)
        return json_string_value(json_object_get(attrs, ki->updated_field));
    if (!json_is_object(attrs))
        return NULL;
    char *text = json_dumps(attrs, JSON_SORT_KEYS | JSON_COMPACT);
    if (!text)
        return NULL;
    char hex[2 * SHA256_LEN + 1];
    sha256_hex(text, strlen(text), hex);
    free(text);
    snprintf(fp, KIND_FINGERPRINT_LEN, "content:%.32s", hex);
    return fp;
}

int remote_obj_from_json(const struct kind_info *ki, const json_t *data, struct remote_obj *o)
{
    memset(o, 0, sizeof *o);
    const char *id = json_string_value(json_object_get(data, "id"));
    if (!id)
        return cad_fail(CAD_EINVAL, "Klaviyo returned a %s without an id", ki->type);
    json_t *attrs = json_object_get(data, "attributes");
    o->id = strdup(id);
    const char *name = NULL;
    if (ki->kind == ASSET_CATALOG_ITEM) {
        name = json_string_value(json_object_get(attrs, "external_id"));
        if (!name) {
            const char *p = strrchr(id, ':');
            name = p ? p + 1 : id;
        }
    } else if (ki->name_field) {
        name = json_string_value(json_object_get(attrs, ki->name_field));
    } else {
        name = id;
    }
    o->name = strdup(name ? name : "");
    char fp[KIND_FINGERPRINT_LEN];
    o->updated = dup_str(kind_updated(ki, attrs, fp));
    o->attrs = attrs ? json_incref(attrs) : json_object();
    json_t *rels = json_object_get(data, "relationships");
    o->rels = rels ? json_incref(rels) : NULL;
    if (!o->id || !o->name || !o->attrs) {
        remote_obj_clear(o);
        return cad_fail(CAD_ENOMEM, "out of memory");
    }
    return CAD_OK;
}

void remote_set_free(struct remote_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        remote_obj_clear(&s->objs[i]);
    free(s->objs);
    memset(s, 0, sizeof *s);
}

long remote_set_find(const struct remote_set *s, const char *name, size_t *count)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(s->objs[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t n = 0;
    for (size_t i = lo; i < s->n && strcmp(s->objs[i].name, name) == 0; i++)
        n++;
    if (count)
        *count = n;
    return n ? (long)lo : -1;
}

long remote_set_find_id(const struct remote_set *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->objs[i].id, id) == 0)
            return (long)i;
    return -1;
}

const char *asset_key(const struct bundle_asset *a)
{
    if (a->kind == ASSET_COUPON) {
        const char *ext = json_string_value(json_object_get(a->attrs, "external_id"));
        if (ext)
            return ext;
    }
    return a->name;
}

/* ---- $refs ---- */

static bool is_ref(const json_t *v, enum asset_kind *kind, const char **name)
{
    if (!json_is_object(v) || json_object_size(v) != 1)
        return false;
    const char *ref = json_string_value(json_object_get(v, "$ref"));
    if (!ref)
        return false;
    const char *colon = strchr(ref, ':');
    if (!colon)
        return false;
    char k[32];
    size_t n = (size_t)(colon - ref);
    if (n >= sizeof k)
        return false;
    memcpy(k, ref, n);
    k[n] = '\0';
    if (asset_kind_parse(k, kind) != CAD_OK) {
        cad_err_clear();
        return false;
    }
    *name = colon + 1;
    return true;
}

static json_t *resolve_value(const json_t *v, const char *key, ref_resolve_fn resolve, void *ctx,
                             bool *unresolved)
{
    enum asset_kind k;
    const char *name;
    if (is_ref(v, &k, &name)) {
        const char *id = resolve(ctx, k, name);
        char buf[512];
        if (!id) {
            snprintf(buf, sizeof buf, "(id of %s:%s)", asset_kind_name(k), name);
            id = buf;
            *unresolved = true;
        }
        if (key && strcmp(key, "data") == 0)
            return json_pack("{s:s,s:s}", "type", kind_info(k)->type, "id", id);
        return json_string(id);
    }
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *kk;
        json_t *vv;
        json_object_foreach((json_t *)v, kk, vv)
        {
            json_object_set_new(o, kk, resolve_value(vv, kk, resolve, ctx, unresolved));
        }
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *vv;
        json_array_foreach(v, i, vv)
        {
            json_array_append_new(a, resolve_value(vv, key, resolve, ctx, unresolved));
        }
        return a;
    }
    return json_deep_copy(v);
}

json_t *attrs_resolve(const json_t *attrs, ref_resolve_fn resolve, void *ctx, bool *unresolved)
{
    bool u = false;
    json_t *r = resolve_value(attrs, NULL, resolve, ctx, &u);
    if (unresolved)
        *unresolved = u;
    return r;
}

/* ---- request bodies ---- */

/* Takes the template id out of a campaign message, wherever the bundle put it. */
static const char *take_template(json_t *msg, char *buf, size_t bufsz)
{
    static const char *const homes[][3] = {
        {"template_id", NULL, NULL},         {"template", NULL, NULL},
        {"attributes", "template_id", NULL}, {"attributes", "template", NULL},
        {"relationships", "template", NULL},
    };
    for (size_t i = 0; i < sizeof homes / sizeof homes[0]; i++) {
        json_t *parent = msg;
        if (homes[i][1]) {
            parent = json_object_get(msg, homes[i][0]);
            if (!json_is_object(parent))
                continue;
        }
        const char *key = homes[i][1] ? homes[i][1] : homes[i][0];
        json_t *v = json_object_get(parent, key);
        if (!v)
            continue;
        const char *id = json_string_value(v);
        if (!id)
            id = json_string_value(json_object_get(json_object_get(v, "data"), "id"));
        if (!id)
            id = json_string_value(json_object_get(v, "id"));
        if (!id)
            continue;
        snprintf(buf, bufsz, "%s", id);
        json_object_del(parent, key);
        if (json_is_object(parent) && parent != msg && json_object_size(parent) == 0)
            json_object_del(msg, homes[i][0]);
        return buf;
    }
    return NULL;
}

json_t *body_for(const struct bundle_asset *a, const json_t *resolved, const char *id,
                 json_t **assign)
{
    const struct kind_info *ki = kind_info(a->kind);
    json_t *attrs = json_deep_copy(resolved);
    json_t *rels = json_object_get(attrs, "relationships");
    if (rels) {
        json_incref(rels);
        json_object_del(attrs, "relationships");
    }
    if (assign)
        *assign = NULL;
    switch (a->kind) {
    case ASSET_IMAGE: {
        json_t *url = json_object_get(attrs, "url");
        if (url) {
            json_object_set(attrs, "import_from_url", url);
            json_object_del(attrs, "url");
        }
        if (id) { /* only name and hidden can change */
            json_object_del(attrs, "import_from_url");
        } else if (a->data && !json_object_get(attrs, "import_from_url")) {
            char *b64 = NULL;
            if (base64_encode(a->data, a->data_len, &b64) == CAD_OK) {
                size_t n = strlen(b64) + 64;
                char *uri = malloc(n);
                if (uri) {
                    snprintf(uri, n, "data:%s;base64,%s", a->mime ? a->mime : "image/png", b64);
                    json_object_set_new(attrs, "import_from_url", json_string(uri));
                    free(uri);
                }
                free(b64);
            }
        }
        break;
    }
    case ASSET_TEMPLATE:
        if (id)
            json_object_del(attrs, "editor_type");
        break;
    case ASSET_COUPON:
        if (id)
            json_object_del(attrs, "external_id");
        break;
    case ASSET_FORM:
        if (!json_object_get(attrs, "status"))
            json_object_set_new(attrs, "status", json_string("draft"));
        if (!json_object_get(attrs, "ab_test"))
            json_object_set_new(attrs, "ab_test", json_false());
        break;
    case ASSET_TAG: {
        json_t *keep = json_object();
        json_object_set(keep, "name", json_object_get(attrs, "name"));
        json_decref(attrs);
        attrs = keep;
        if (id)
            break;
        /* the tag group's id is handed in as attrs "tag_group_id" by the apply engine */
        const char *gid = json_string_value(json_object_get(resolved, "tag_group_id"));
        if (gid) {
            json_decref(rels);
            rels =
                json_pack("{s:{s:{s:s,s:s}}}", "tag-group", "data", "type", "tag-group", "id", gid);
        }
        break;
    }
    case ASSET_WEBHOOK: {
        const char *env = json_string_value(json_object_get(attrs, "secret_key_env"));
        const char *secret = env ? getenv(env) : NULL;
        if (secret && *secret)
            json_object_set_new(attrs, "secret_key", json_string(secret));
        json_object_del(attrs, "secret_key_env");
        json_t *topics = json_object_get(attrs, "topics");
        if (topics) {
            json_t *data = json_array();
            size_t i;
            json_t *t;
            json_array_foreach(topics, i, t)
            {
                json_array_append_new(data,
                                      json_pack("{s:s,s:O}", "type", "webhook-topic", "id", t));
            }
            json_decref(rels);
            rels = json_pack("{s:{s:o}}", "webhook-topics", "data", data);
            json_object_del(attrs, "topics");
        }
        break;
    }
    case ASSET_CAMPAIGN: {
        json_t *msgs = json_object_get(json_object_get(attrs, "campaign-messages"), "data");
        json_t *as = json_array();
        size_t i;
        json_t *m;
        json_array_foreach(msgs, i, m)
        {
            char tid[256];
            if (take_template(m, tid, sizeof tid))
                json_array_append_new(
                    as, json_pack("{s:I,s:s}", "index", (json_int_t)i, "template", tid));
            json_t *def = json_object_get(json_object_get(m, "attributes"), "definition");
            if (json_is_object(def) && !json_object_get(def, "channel"))
                json_object_set_new(def, "channel", json_string("email"));
        }
        if (id) {
            json_object_del(attrs, "campaign-messages");
            json_object_del(attrs, "send_strategy_locked");
        }
        if (assign)
            *assign = as;
        else
            json_decref(as);
        break;
    }
    case ASSET_FLOW:
    case ASSET_LIST:
    case ASSET_SEGMENT:
    case ASSET_CATALOG_ITEM:
    case ASSET_KIND_COUNT:
        break;
    }
    json_t *data = json_pack("{s:s,s:o}", "type", ki->type, "attributes", attrs);
    if (id)
        json_object_set_new(data, "id", json_string(id));
    if (rels)
        json_object_set_new(data, "relationships", rels);
    return json_pack("{s:o}", "data", data);
}

/* ---- comparison ---- */

static bool is_opaque(const struct kind_info *ki, const char *key)
{
    for (int i = 0; i < 3 && ki->opaque[i]; i++)
        if (strcmp(ki->opaque[i], key) == 0)
            return true;
    return strcmp(key, "relationships") == 0;
}

static bool value_match(const json_t *want, const json_t *live)
{
    if (json_is_object(want)) {
        if (!json_is_object(live))
            return false;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)want, k, v)
        {
            if (!value_match(v, json_object_get(live, k)))
                return false;
        }
        return true;
    }
    if (json_is_array(want)) {
        if (!json_is_array(live) || json_array_size(want) != json_array_size(live))
            return false;
        for (size_t i = 0; i < json_array_size(want); i++)
            if (!value_match(json_array_get(want, i), json_array_get(live, i)))
                return false;
        return true;
    }
    if (json_is_number(want) && json_is_number(live))
        return json_number_value(want) == json_number_value(live);
    if (json_is_null(want) && !live)
        return true;
    return live && json_equal((json_t *)want, (json_t *)live);
}

bool attrs_match(const struct kind_info *ki, const json_t *want, const json_t *live)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)want, k, v)
    {
        if (is_opaque(ki, k))
            continue;
        if (ki->kind == ASSET_TEMPLATE && strcmp(k, "editor_type") == 0)
            continue;
        if (!value_match(v, json_object_get(live, k)))
            return false;
    }
    return true;
}
