/*
 * {"$ref": "kind:name"}: syntax, and which kinds a field may name.
 *
 * A field's rule comes from the key that holds the $ref (for array items, the key holding the
 * array): list_id names a list, template_id a template, group_ids and campaign audiences a list
 * or a segment, a flow trigger's id a list or a segment, relationships.template.data a template
 * and relationships.image.data an image. Any other field takes what its asset's kind may refer
 * to at all, so a list or a template can refer to nothing and a segment only to lists and
 * segments. Whether the named asset exists is checked later, once every file is read.
 */
#include <string.h>

#include "bundle/bundle_int.h"

#define BIT(k) (1u << (k))

static unsigned kind_mask(enum asset_kind k)
{
    switch (k) {
    case ASSET_SEGMENT:
        return BIT(ASSET_LIST) | BIT(ASSET_SEGMENT);
    case ASSET_FORM:
        return BIT(ASSET_LIST) | BIT(ASSET_COUPON) | BIT(ASSET_IMAGE);
    case ASSET_CAMPAIGN:
    case ASSET_FLOW:
        return BIT(ASSET_LIST) | BIT(ASSET_SEGMENT) | BIT(ASSET_TEMPLATE) | BIT(ASSET_IMAGE) |
               BIT(ASSET_COUPON);
    default:
        return 0;
    }
}

static unsigned field_mask(const char *key, const char *parent, const char *pointer)
{
    if (!key)
        return 0;
    if (strcmp(key, "list_id") == 0)
        return BIT(ASSET_LIST);
    if (strcmp(key, "template_id") == 0)
        return BIT(ASSET_TEMPLATE);
    if (strcmp(key, "coupon_id") == 0)
        return BIT(ASSET_COUPON);
    if (strcmp(key, "image_id") == 0)
        return BIT(ASSET_IMAGE);
    if (strcmp(key, "group_ids") == 0 || strcmp(key, "included") == 0 ||
        strcmp(key, "excluded") == 0)
        return BIT(ASSET_LIST) | BIT(ASSET_SEGMENT);
    if (strcmp(key, "id") == 0 && strncmp(pointer, "/definition/triggers/", 21) == 0)
        return BIT(ASSET_LIST) | BIT(ASSET_SEGMENT);
    if (strcmp(key, "data") == 0 && parent && strcmp(parent, "template") == 0)
        return BIT(ASSET_TEMPLATE);
    if (strcmp(key, "data") == 0 && parent && strcmp(parent, "image") == 0)
        return BIT(ASSET_IMAGE);
    return 0;
}

static void describe_mask(unsigned mask, char *out, size_t outsize)
{
    size_t n = 0;
    out[0] = '\0';
    unsigned count = 0, seen = 0;
    for (int k = 0; k < ASSET_KIND_COUNT; k++)
        count += (mask >> k) & 1u;
    for (int k = 0; k < ASSET_KIND_COUNT && n < outsize; k++) {
        if (!(mask & BIT(k)))
            continue;
        seen++;
        const char *sep = seen == 1 ? "" : seen == count ? " or " : ", ";
        int w = snprintf(out + n, outsize - n, "%s%s", sep, asset_kind_name((enum asset_kind)k));
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

bool refs_parse(const char *s, enum asset_kind *kind, const char **name, const char **why)
{
    const char *colon = strchr(s, ':');
    if (!colon || colon == s || colon[1] == '\0') {
        *why = "is not \"kind:name\" (for example \"list:newsletter\")";
        return false;
    }
    char k[32];
    size_t klen = (size_t)(colon - s);
    if (klen >= sizeof k) {
        *why = "names an unknown kind; kinds are image, template, list, segment, form, coupon, "
               "webhook, catalog-item, campaign, flow and tag";
        return false;
    }
    memcpy(k, s, klen);
    k[klen] = '\0';
    if (asset_kind_parse(k, kind) != 0) {
        *why = "names an unknown kind; kinds are image, template, list, segment, form, coupon, "
               "webhook, catalog-item, campaign, flow and tag";
        return false;
    }
    *name = colon + 1;
    return true;
}

bool refs_is_ref(const json_t *v)
{
    return json_is_object(v) && json_object_get(v, "$ref") != NULL;
}

enum asset_kind refs_kind(const json_t *v)
{
    const char *s = json_string_value(json_object_get(v, "$ref"));
    enum asset_kind k;
    const char *name, *why;
    if (!s || !refs_parse(s, &k, &name, &why))
        return ASSET_KIND_COUNT;
    return k;
}

static void check_ref(struct loader *l, struct bundle_asset *a, json_t *obj, const char *ptr,
                      const char *key, const char *parent)
{
    json_t *r = json_object_get(obj, "$ref");
    if (!json_is_string(r)) {
        loader_error(l, a->file, ptr, 0, 0,
                     "\"$ref\" must be a string \"kind:name\" (for example \"list:newsletter\")");
        return;
    }
    if (json_object_size(obj) != 1) {
        loader_error(l, a->file, ptr, 0, 0,
                     "a $ref object holds only \"$ref\"; move the other members out of it");
        return;
    }
    const char *s = json_string_value(r), *name, *why;
    enum asset_kind k;
    if (!refs_parse(s, &k, &name, &why)) {
        loader_error(l, a->file, ptr, 0, 0, "$ref \"%s\" %s", s, why);
        return;
    }
    const char *problem = text_name_problem(name);
    if (problem) {
        loader_error(l, a->file, ptr, 0, 0, "the name in $ref \"%s\" %s", s, problem);
        return;
    }
    unsigned allowed = kind_mask(a->kind), fm = field_mask(key, parent, ptr);
    if (fm)
        allowed &= fm;
    if (!(allowed & BIT(k))) {
        char can[160];
        describe_mask(allowed, can, sizeof can);
        if (allowed)
            loader_error(l, a->file, ptr, 0, 0, "$ref \"%s\" names a %s, but this field takes a %s",
                         s, asset_kind_name(k), can);
        else
            loader_error(l, a->file, ptr, 0, 0,
                         "$ref \"%s\": a %s cannot refer to other assets; remove the $ref", s,
                         asset_kind_name(a->kind));
        return;
    }
    loader_add_ref(l, a, k, name, ptr);
}

static void walk(struct loader *l, struct bundle_asset *a, json_t *v, const char *ptr,
                 const char *key, const char *parent)
{
    char child[256];
    if (json_is_object(v)) {
        if (json_object_get(v, "$ref")) {
            check_ref(l, a, v, ptr, key, parent);
            return;
        }
        const char *k;
        json_t *m;
        json_object_foreach(v, k, m)
        {
            json_pointer_append(child, sizeof child, ptr, k);
            walk(l, a, m, child, k, key);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            json_pointer_index(child, sizeof child, ptr, i);
            walk(l, a, m, child, key, parent);
        }
    }
}

void refs_collect(struct loader *l, struct bundle_asset *a)
{
    walk(l, a, a->attrs, "", NULL, NULL);
}
