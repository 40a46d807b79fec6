/*
 * The assembler for a Shopify bulk operation's JSONL result (catalog.h).
 *
 * Design choices:
 * - One product at a time. Shopify's grouped output (groupObjects: true) puts a product's
 *   children right after it, so a new top-level line closes the product before it and the
 *   assembler hands it over and forgets it. Memory is one line (at most SHOP_LINE_MAX) plus one
 *   product's children (at most SHOP_VARIANTS_MAX and SHOP_COLLECTIONS_MAX), whatever the size
 *   of the shop. Ungrouped output is refused with a message saying so, never buffered.
 * - The parsed lines are kept as jansson objects in two arrays; the structs handed to the callback
 *   point into them and are built only when the product is complete, so no pointer outlives a
 *   realloc.
 * - Errors are sticky and name the line. Messages quote at most a gid, never free text.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "catalog/catalog_int.h"
#include "common/err.h"
#include "common/util.h"

struct shop_jsonl {
    shop_product_fn fn;
    void *ctx;
    char *line;
    size_t len, cap;
    long lineno, products;
    bool objects; /* fed objects (paged mode), not lines */
    int rc;
    char error[256];
    /* the product being assembled */
    json_t *product; /* NULL when none */
    char product_gid[128];
    char product_id[SHOP_NUMERIC_ID_MAX];
    json_t *variants, *collections; /* arrays of the child lines */
    char (*variant_ids)[SHOP_NUMERIC_ID_MAX];
    char (*collection_ids)[SHOP_NUMERIC_ID_MAX];
    size_t ids_cap_v, ids_cap_c;
};

struct shop_jsonl *shop_jsonl_new(shop_product_fn fn, void *ctx)
{
    struct shop_jsonl *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->fn = fn;
    j->ctx = ctx;
    j->variants = json_array();
    j->collections = json_array();
    if (!j->variants || !j->collections) {
        shop_jsonl_free(j);
        return NULL;
    }
    return j;
}

void shop_jsonl_free(struct shop_jsonl *j)
{
    if (!j)
        return;
    free(j->line);
    json_decref(j->product);
    json_decref(j->variants);
    json_decref(j->collections);
    free(j->variant_ids);
    free(j->collection_ids);
    free(j);
}

const char *shop_jsonl_error(const struct shop_jsonl *j)
{
    return j->error;
}

long shop_jsonl_lines(const struct shop_jsonl *j)
{
    return j->lineno;
}

long shop_jsonl_products(const struct shop_jsonl *j)
{
    return j->products;
}

__attribute__((format(printf, 3, 4))) static int fail(struct shop_jsonl *j, int code,
                                                      const char *fmt, ...)
{
    int n =
        snprintf(j->error, sizeof j->error, "%s %ld: ", j->objects ? "object" : "line", j->lineno);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof j->error)
        vsnprintf(j->error + n, sizeof j->error - (size_t)n, fmt, ap);
    va_end(ap);
    j->rc = code;
    return cad_fail(code, "the Shopify %s is malformed at %s",
                    j->objects ? "products page" : "bulk result", j->error);
}

bool shop_gid_parse(const char *gid, const char *type, char out[SHOP_NUMERIC_ID_MAX])
{
    static const char pre[] = "gid://shopify/";
    if (!gid || strncmp(gid, pre, sizeof pre - 1) != 0)
        return false;
    const char *t = gid + sizeof pre - 1;
    size_t tn = strlen(type);
    if (strncmp(t, type, tn) != 0 || t[tn] != '/')
        return false;
    const char *d = t + tn + 1;
    size_t n = 0;
    while (d[n] >= '0' && d[n] <= '9')
        n++;
    if (n == 0 || n >= SHOP_NUMERIC_ID_MAX || (d[n] != '\0' && d[n] != '?'))
        return false;
    memcpy(out, d, n);
    out[n] = '\0';
    return true;
}

/* The type name of a gid ("ProductVariant"), or false when it is not a Shopify gid. */
static bool gid_type(const char *gid, char *out, size_t outsz)
{
    static const char pre[] = "gid://shopify/";
    if (strncmp(gid, pre, sizeof pre - 1) != 0)
        return false;
    const char *t = gid + sizeof pre - 1;
    size_t n = strcspn(t, "/");
    if (n == 0 || t[n] != '/' || n >= outsz)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z')))
            return false;
    memcpy(out, t, n);
    out[n] = '\0';
    return true;
}

static const char *str_or_null(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* url of {url} at o.key, or of featuredMedia.preview.image.url. */
static const char *image_url(json_t *o, const char *key)
{
    json_t *img = json_object_get(o, key);
    return json_string_value(json_object_get(img, "url"));
}

/* Fields that must be strings (or null) when present: a number where text belongs is refused. */
static int check_strings(struct shop_jsonl *j, json_t *o, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(o, keys[i]);
        if (v && !json_is_string(v) && !json_is_null(v))
            return fail(j, CAD_EINVAL, "\"%s\" is not a string", keys[i]);
    }
    return CAD_OK;
}

static int emit(struct shop_jsonl *j)
{
    if (!j->product)
        return CAD_OK;
    size_t nv = json_array_size(j->variants), nc = json_array_size(j->collections);
    struct shop_variant *vs = nv ? calloc(nv, sizeof *vs) : NULL;
    const char **cids = nc ? calloc(nc, sizeof *cids) : NULL;
    const char **ctitles = nc ? calloc(nc, sizeof *ctitles) : NULL;
    if ((nv && !vs) || (nc && (!cids || !ctitles))) {
        free(vs);
        free(cids);
        free(ctitles);
        j->rc = CAD_ENOMEM;
        return cad_fail(CAD_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nv; i++) {
        json_t *v = json_array_get(j->variants, i);
        vs[i].id = j->variant_ids[i];
        vs[i].title = str_or_null(v, "title");
        vs[i].sku = str_or_null(v, "sku");
        json_t *price = json_object_get(v, "price");
        vs[i].price = json_string_value(price);
        json_t *q = json_object_get(v, "inventoryQuantity");
        vs[i].has_inventory = json_is_integer(q);
        vs[i].inventory = vs[i].has_inventory ? (long long)json_integer_value(q) : 0;
        const char *pol = str_or_null(v, "inventoryPolicy");
        vs[i].inventory_policy = !pol                           ? SHOP_INVENTORY_POLICY_UNKNOWN
                                 : strcmp(pol, "DENY") == 0     ? SHOP_INVENTORY_POLICY_DENY
                                 : strcmp(pol, "CONTINUE") == 0 ? SHOP_INVENTORY_POLICY_CONTINUE
                                                                : SHOP_INVENTORY_POLICY_UNKNOWN;
        vs[i].image_url = image_url(v, "image");
    }
    for (size_t i = 0; i < nc; i++) {
        cids[i] = j->collection_ids[i];
        ctitles[i] = str_or_null(json_array_get(j->collections, i), "title");
    }
    json_t *p = j->product;
    const char *img = image_url(p, "featuredImage");
    if (!img)
        img = json_string_value(json_object_get(
            json_object_get(json_object_get(json_object_get(p, "featuredMedia"), "preview"),
                            "image"),
            "url"));
    struct shop_product sp = {.id = j->product_id,
                              .title = str_or_null(p, "title"),
                              .handle = str_or_null(p, "handle"),
                              .description_html = str_or_null(p, "descriptionHtml"),
                              .status = str_or_null(p, "status"),
                              .online_store_url = str_or_null(p, "onlineStoreUrl"),
                              .image_url = img,
                              .updated_at = str_or_null(p, "updatedAt"),
                              .variants = vs,
                              .n_variants = nv,
                              .collection_ids = cids,
                              .collection_titles = ctitles,
                              .n_collections = nc};
    int rc = j->fn ? j->fn(j->ctx, &sp) : 0;
    free(vs);
    free(cids);
    free(ctitles);
    json_decref(j->product);
    j->product = NULL;
    json_array_clear(j->variants);
    json_array_clear(j->collections);
    j->products++;
    if (rc != 0) {
        j->rc = rc;
        snprintf(j->error, sizeof j->error, "line %ld: the reader stopped", j->lineno);
    }
    return rc;
}

static int add_child(struct shop_jsonl *j, json_t *arr, char (**ids)[SHOP_NUMERIC_ID_MAX],
                     size_t *cap, size_t max, const char *what, json_t *o, const char *id)
{
    size_t n = json_array_size(arr);
    if (n >= max)
        return fail(j, CAD_EINVAL, "product %s has more than %zu %s", j->product_id, max, what);
    if (n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        char(*p)[SHOP_NUMERIC_ID_MAX] = realloc(*ids, nc * sizeof *p);
        if (!p) {
            j->rc = CAD_ENOMEM;
            return cad_fail(CAD_ENOMEM, "out of memory");
        }
        *ids = p;
        *cap = nc;
    }
    memcpy((*ids)[n], id, SHOP_NUMERIC_ID_MAX);
    if (json_array_append(arr, o) != 0) {
        j->rc = CAD_ENOMEM;
        return cad_fail(CAD_ENOMEM, "out of memory");
    }
    return CAD_OK;
}

static int take_line(struct shop_jsonl *j, const char *s, size_t n)
{
    j->lineno++;
    if (n > 0 && s[n - 1] == '\r')
        n--;
    if (n == 0)
        return CAD_OK;
    json_error_t e;
    json_t *o = json_loadb(s, n, JSON_REJECT_DUPLICATES, &e);
    if (!o)
        return fail(j, CAD_EINVAL, "not JSON (%s at column %d)", e.text, e.column);
    int rc = shop_jsonl_take(j, o);
    json_decref(o);
    return rc;
}

int shop_jsonl_take(struct shop_jsonl *j, json_t *o)
{
    if (j->rc != 0)
        return j->rc;
    if (j->objects)
        j->lineno++;
    int rc = CAD_OK;
    char type[64], num[SHOP_NUMERIC_ID_MAX];
    const char *gid = str_or_null(o, "id");
    json_t *parent = json_object_get(o, "__parentId");
    if (!json_is_object(o)) {
        rc = fail(j, CAD_EINVAL, "not a JSON object");
    } else if (!gid) {
        rc = fail(j, CAD_EINVAL, "no \"id\" string");
    } else if (strlen(gid) >= sizeof j->product_gid || !gid_type(gid, type, sizeof type)) {
        rc = fail(j, CAD_EINVAL, "\"id\" is not a Shopify gid (gid://shopify/Type/N)");
    } else if (!shop_gid_parse(gid, type, num)) {
        rc = fail(j, CAD_EINVAL, "%s does not end in a numeric id", gid);
    } else if (parent && !json_is_string(parent)) {
        rc = fail(j, CAD_EINVAL, "\"__parentId\" is not a string");
    } else if (!parent) {
        static const char *const keys[] = {"title",  "handle",         "descriptionHtml",
                                           "status", "onlineStoreUrl", "updatedAt"};
        if (strcmp(type, "Product") != 0) {
            rc = fail(j, CAD_EINVAL, "a top-level %s; only products may stand alone", type);
        } else if ((rc = check_strings(j, o, keys, CAD_ARRAY_LEN(keys))) == CAD_OK &&
                   (rc = emit(j)) == CAD_OK) {
            j->product = json_incref(o);
            snprintf(j->product_gid, sizeof j->product_gid, "%s", gid);
            memcpy(j->product_id, num, sizeof num);
        }
    } else if (!j->product || strcmp(json_string_value(parent), j->product_gid) != 0) {
        rc = fail(j, CAD_EINVAL,
                  "%s's parent is not the product just before it (%s): a child without its "
                  "parent, or a result not grouped by parent",
                  gid, j->product ? j->product_gid : "no product yet");
    } else if (strcmp(type, "ProductVariant") == 0) {
        static const char *const keys[] = {"title", "sku", "inventoryPolicy"};
        json_t *price = json_object_get(o, "price");
        json_t *q = json_object_get(o, "inventoryQuantity");
        if ((rc = check_strings(j, o, keys, CAD_ARRAY_LEN(keys))) != CAD_OK)
            ;
        else if (price && !json_is_string(price) && !json_is_null(price))
            rc = fail(j, CAD_EINVAL, "variant %s: \"price\" is not a decimal string", num);
        else if (q && !json_is_integer(q) && !json_is_null(q))
            rc = fail(j, CAD_EINVAL, "variant %s: \"inventoryQuantity\" is not an integer", num);
        else
            rc = add_child(j, j->variants, &j->variant_ids, &j->ids_cap_v, SHOP_VARIANTS_MAX,
                           "variants", o, num);
    } else if (strcmp(type, "Collection") == 0) {
        static const char *const keys[] = {"title"};
        if ((rc = check_strings(j, o, keys, 1)) == CAD_OK)
            rc = add_child(j, j->collections, &j->collection_ids, &j->ids_cap_c,
                           SHOP_COLLECTIONS_MAX, "collections", o, num);
    } else {
        rc = fail(j, CAD_EINVAL, "a child of type %s, which Cadence did not ask for", type);
    }
    return rc;
}

static int append(struct shop_jsonl *j, const char *buf, size_t n)
{
    if (n == 0)
        return CAD_OK;
    if (j->len + n > SHOP_LINE_MAX) {
        j->lineno++;
        return fail(j, CAD_EINVAL, "longer than %u bytes", SHOP_LINE_MAX);
    }
    if (j->len + n > j->cap) {
        size_t nc = j->cap ? j->cap : 4096;
        while (nc < j->len + n)
            nc *= 2;
        if (nc > SHOP_LINE_MAX)
            nc = SHOP_LINE_MAX;
        char *p = realloc(j->line, nc);
        if (!p) {
            j->rc = CAD_ENOMEM;
            return cad_fail(CAD_ENOMEM, "out of memory");
        }
        j->line = p;
        j->cap = nc;
    }
    memcpy(j->line + j->len, buf, n);
    j->len += n;
    return CAD_OK;
}

static int end_line(struct shop_jsonl *j)
{
    int rc = take_line(j, j->line ? j->line : "", j->len);
    j->len = 0;
    return rc;
}

int shop_jsonl_feed(struct shop_jsonl *j, const char *buf, size_t len)
{
    if (j->rc != 0)
        return j->rc;
    while (len > 0) {
        const char *nl = memchr(buf, '\n', len);
        size_t n = nl ? (size_t)(nl - buf) : len;
        int rc = append(j, buf, n);
        if (rc == CAD_OK && nl)
            rc = end_line(j);
        if (rc != CAD_OK)
            return rc;
        if (!nl)
            break;
        buf += n + 1;
        len -= n + 1;
    }
    return CAD_OK;
}

int shop_jsonl_finish(struct shop_jsonl *j)
{
    if (j->rc != 0)
        return j->rc;
    if (j->len > 0) {
        int rc = end_line(j);
        if (rc != CAD_OK)
            return rc;
    }
    return emit(j);
}

void shop_jsonl_objects(struct shop_jsonl *j)
{
    j->objects = true;
}
