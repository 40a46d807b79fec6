/*
 * Shopify products to Klaviyo catalog objects (catalog.h; the table is in docs/catalog.md).
 *
 * Design choices:
 * - Pure functions over the structs the readers hand out: no I/O, so the mapping is tested and
 *   fuzzed on its own.
 * - Klaviyo's required attributes are always present (item: external_id, title, description,
 *   url; variant: external_id, title, description, sku, inventory_quantity, price, url): a
 *   product that cannot fill one is refused with a message naming it, rather than sent for
 *   Klaviyo to refuse inside a bulk job where the error is far harder to read.
 * - Prices are Shopify's decimal text turned into a JSON number (Klaviyo's type); only plain
 *   non-negative decimals are accepted, so "1e400" or "NaN" never become a number.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "catalog/catalog.h"
#include "common/err.h"
#include "common/util.h"

bool catalog_klaviyo_id(const char *external_id, char *out, size_t outsz)
{
    int n = snprintf(out, outsz, "%s%s", CATALOG_KLAVIYO_PREFIX, external_id);
    return n > 0 && (size_t)n < outsz;
}

/* ---- HTML to text ---- */

struct buf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *p = realloc(b->p, nc);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* One space for any run of whitespace; none at the start. */
static void put_space(struct buf *b)
{
    if (b->len > 0 && b->p[b->len - 1] != ' ')
        put(b, " ", 1);
}

static void put_utf8(struct buf *b, unsigned long cp)
{
    char u[4];
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp == 0xA0 || cp == '\t' || cp == '\n' || cp == '\r' || cp == ' ') {
        put_space(b);
    } else if (cp < 0x80) {
        u[0] = (char)cp;
        put(b, u, 1);
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        put(b, u, 2);
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        put(b, u, 3);
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        put(b, u, 4);
    }
}

static const struct {
    const char *name;
    unsigned long cp;
} entities[] = {
    {"amp", '&'},      {"lt", '<'},       {"gt", '>'},       {"quot", '"'},      {"apos", '\''},
    {"nbsp", 0xA0},    {"ndash", 0x2013}, {"mdash", 0x2014}, {"hellip", 0x2026}, {"lsquo", 0x2018},
    {"rsquo", 0x2019}, {"ldquo", 0x201C}, {"rdquo", 0x201D}, {"copy", 0xA9},     {"reg", 0xAE},
    {"trade", 0x2122}, {"euro", 0x20AC},  {"pound", 0xA3},   {"yen", 0xA5},      {"deg", 0xB0},
    {"times", 0xD7},   {"bull", 0x2022},  {"middot", 0xB7},  {"frac12", 0xBD},   {"eacute", 0xE9},
};

/* Decodes the entity at s ('&'); returns the bytes used, 0 when it is not one. */
static size_t entity(const char *s, struct buf *b)
{
    const char *semi = NULL;
    for (size_t i = 1; i < 12 && s[i]; i++)
        if (s[i] == ';') {
            semi = s + i;
            break;
        }
    if (!semi)
        return 0;
    size_t n = (size_t)(semi - s) + 1;
    if (s[1] == '#') {
        bool hex = s[2] == 'x' || s[2] == 'X';
        const char *d = s + (hex ? 3 : 2);
        if (d == semi)
            return 0;
        unsigned long cp = 0;
        for (const char *q = d; q < semi; q++) {
            int v = *q >= '0' && *q <= '9'          ? *q - '0'
                    : hex && *q >= 'a' && *q <= 'f' ? *q - 'a' + 10
                    : hex && *q >= 'A' && *q <= 'F' ? *q - 'A' + 10
                                                    : -1;
            if (v < 0)
                return 0;
            cp = cp * (hex ? 16 : 10) + (unsigned long)v;
            if (cp > 0x10FFFF)
                cp = 0x110000;
        }
        put_utf8(b, cp);
        return n;
    }
    for (size_t i = 0; i < CAD_ARRAY_LEN(entities); i++) {
        size_t k = strlen(entities[i].name);
        if (k == n - 2 && strncmp(s + 1, entities[i].name, k) == 0) {
            put_utf8(b, entities[i].cp);
            return n;
        }
    }
    return 0;
}

static bool tag_is(const char *t, size_t n, const char *name)
{
    size_t k = strlen(name);
    return n == k && strncasecmp(t, name, k) == 0;
}

int catalog_html_to_text(const char *html, char **out)
{
    struct buf b = {0};
    put(&b, "", 0);
    const char *s = html ? html : "";
    while (*s && !b.oom) {
        if (*s == '<') {
            const char *end = strchr(s, '>');
            if (!end)
                break; /* an unterminated tag: the rest is markup, not text */
            const char *t = s + 1;
            bool closing = *t == '/';
            if (closing)
                t++;
            size_t tn = strcspn(t, " \t\r\n/>");
            if (!closing && (tag_is(t, tn, "script") || tag_is(t, tn, "style"))) {
                char close[16];
                snprintf(close, sizeof close, "</%.*s", (int)tn, t);
                const char *c = strcasestr(end, close);
                const char *ce = c ? strchr(c, '>') : NULL;
                if (!ce)
                    break;
                s = ce + 1;
                put_space(&b);
                continue;
            }
            static const char *const inline_tags[] = {"a",    "b", "i",     "em",   "strong",
                                                      "span", "u", "small", "sup",  "sub",
                                                      "font", "s", "mark",  "abbr", "code"};
            bool is_inline = false;
            for (size_t i = 0; i < CAD_ARRAY_LEN(inline_tags); i++)
                if (tag_is(t, tn, inline_tags[i]))
                    is_inline = true;
            if (!is_inline)
                put_space(&b);
            s = end + 1;
        } else if (*s == '&') {
            size_t n = entity(s, &b);
            if (n == 0) {
                put(&b, "&", 1);
                n = 1;
            }
            s += n;
        } else if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' ||
                   *s == '\v') {
            put_space(&b);
            s++;
        } else if ((unsigned char)s[0] == 0xC2 && (unsigned char)s[1] == 0xA0) {
            put_space(&b);
            s += 2;
        } else {
            size_t n = strcspn(s, "<& \t\n\r\f\v\xC2");
            if (n == 0)
                n = 1;
            put(&b, s, n);
            s += n;
        }
    }
    if (b.oom) {
        free(b.p);
        return cad_fail(CAD_ENOMEM, "out of memory");
    }
    while (b.len > 0 && b.p[b.len - 1] == ' ')
        b.p[--b.len] = '\0';
    *out = b.p;
    return CAD_OK;
}

/* ---- products ---- */

/* Shopify's decimal text ("19.90", "20") as a number; false for anything else. */
static bool parse_price(const char *s, double *out)
{
    if (!s || !*s)
        return false;
    size_t i = 0, digits = 0, frac = 0;
    while (s[i] >= '0' && s[i] <= '9') {
        i++;
        digits++;
    }
    if (s[i] == '.') {
        i++;
        while (s[i] >= '0' && s[i] <= '9') {
            i++;
            frac++;
        }
        if (frac == 0)
            return false;
    }
    if (s[i] != '\0' || digits == 0 || digits > 15)
        return false;
    *out = strtod(s, NULL);
    return true;
}

static bool empty(const char *s)
{
    return !s || !*s;
}

/* https://<shop>/products/<handle>, the handle percent-encoded where it is not unreserved. */
static char *product_url(const struct shop_product *p, const char *shop)
{
    if (!empty(p->online_store_url))
        return strdup(p->online_store_url);
    if (empty(p->handle) || empty(shop))
        return NULL;
    struct buf b = {0};
    put(&b, "https://", 8);
    put(&b, shop, strlen(shop));
    put(&b, "/products/", 10);
    for (const unsigned char *h = (const unsigned char *)p->handle; *h; h++) {
        if ((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') ||
            *h == '-' || *h == '_' || *h == '.' || *h == '~') {
            put(&b, (const char *)h, 1);
        } else {
            char e[4];
            snprintf(e, sizeof e, "%%%02X", *h);
            put(&b, e, 3);
        }
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

static json_t *resource(const char *type, json_t *attrs)
{
    return json_pack("{s:s,s:o}", "type", type, "attributes", attrs);
}

static void set_str(json_t *o, const char *k, const char *v)
{
    json_object_set_new(o, k, json_string(v));
}

#define MAP_FAIL(...)                                                                              \
    do {                                                                                           \
        snprintf(err, errsz, __VA_ARGS__);                                                         \
        rc = CAD_EINVAL;                                                                           \
        goto out;                                                                                  \
    } while (0)

/* A string attribute; json_string refuses invalid UTF-8, which is reported, not dropped. */
static bool set_text(json_t *o, const char *k, const char *v)
{
    json_t *s = json_string(v);
    return s && json_object_set_new(o, k, s) == 0;
}

int catalog_map_product(const struct shop_product *p, const char *shop_domain, json_t **item,
                        json_t **variants, char *err, size_t errsz)
{
    *item = NULL;
    *variants = NULL;
    err[0] = '\0';
    int rc = CAD_OK;
    char *desc = NULL, *url = NULL;
    json_t *it = NULL, *vars = NULL;
    char kid[128];
    const char *pid = empty(p->id) ? "(no id)" : p->id;
    if (empty(p->id) || !catalog_klaviyo_id(p->id, kid, sizeof kid))
        MAP_FAIL("a product has no id");
    if (empty(p->title))
        MAP_FAIL("product %s has no title, which Klaviyo requires", pid);
    if (catalog_html_to_text(p->description_html, &desc) != CAD_OK)
        MAP_FAIL("product %s: out of memory", pid);
    url = product_url(p, shop_domain);
    if (!url)
        MAP_FAIL("product %s has neither an online store URL nor a handle, so it has no URL", pid);
    const char *description = desc[0] ? desc : p->title;
    bool published = p->status && strcmp(p->status, "ACTIVE") == 0;

    json_t *a = json_object();
    it = a ? resource("catalog-item", a) : NULL;
    vars = json_array();
    if (!it || !vars)
        MAP_FAIL("product %s: out of memory", pid);
    set_str(a, "external_id", p->id);
    if (!set_text(a, "title", p->title) || !set_text(a, "description", description) ||
        !set_text(a, "url", url))
        MAP_FAIL("product %s has text that is not valid UTF-8", pid);
    if (!empty(p->image_url) && !set_text(a, "image_full_url", p->image_url))
        MAP_FAIL("product %s has an image URL that is not valid UTF-8", pid);
    json_object_set_new(a, "published", json_boolean(published));
    set_str(a, "integration_type", "$custom");
    set_str(a, "catalog_type", "$default");

    bool have_min = false;
    double min = 0;
    for (size_t i = 0; i < p->n_variants; i++) {
        const struct shop_variant *v = &p->variants[i];
        char vkid[128];
        if (empty(v->id) || !catalog_klaviyo_id(v->id, vkid, sizeof vkid))
            MAP_FAIL("product %s has a variant without an id", pid);
        double price;
        if (!parse_price(v->price, &price))
            MAP_FAIL("variant %s of product %s has %s price; Klaviyo requires a number", v->id, pid,
                     empty(v->price) ? "no" : "a non-decimal");
        if (!have_min || price < min)
            min = price;
        have_min = true;
        json_t *va = json_object();
        json_t *vo = va ? resource("catalog-variant", va) : NULL;
        if (!vo || json_array_append_new(vars, vo) != 0)
            MAP_FAIL("product %s: out of memory", pid);
        char vtitle[1024];
        bool default_title = empty(v->title) || strcmp(v->title, "Default Title") == 0;
        snprintf(vtitle, sizeof vtitle, "%s%s%s", p->title, default_title ? "" : " - ",
                 default_title ? "" : v->title);
        char vurl[2048];
        snprintf(vurl, sizeof vurl, "%s%svariant=%s", url, strchr(url, '?') ? "&" : "?", v->id);
        set_str(va, "external_id", v->id);
        if (!set_text(va, "title", vtitle) || !set_text(va, "description", description) ||
            !set_text(va, "sku", empty(v->sku) ? v->id : v->sku) || !set_text(va, "url", vurl))
            MAP_FAIL("variant %s of product %s has text that is not valid UTF-8", v->id, pid);
        json_object_set_new(va, "inventory_quantity",
                            json_integer(v->has_inventory ? v->inventory : 0));
        json_object_set_new(va, "inventory_policy",
                            json_integer(v->inventory_policy == SHOP_INVENTORY_POLICY_DENY ? 1
                                         : v->inventory_policy == SHOP_INVENTORY_POLICY_CONTINUE
                                             ? 2
                                             : 0));
        json_object_set_new(va, "price", json_real(price));
        const char *img = !empty(v->image_url) ? v->image_url : p->image_url;
        if (!empty(img) && !set_text(va, "image_full_url", img))
            MAP_FAIL("variant %s has an image URL that is not valid UTF-8", v->id);
        json_object_set_new(va, "published", json_boolean(published));
        set_str(va, "integration_type", "$custom");
        set_str(va, "catalog_type", "$default");
        json_object_set_new(
            vo, "relationships",
            json_pack("{s:{s:{s:s,s:s}}}", "item", "data", "type", "catalog-item", "id", kid));
    }
    if (have_min)
        json_object_set_new(a, "price", json_real(min));
    if (p->n_collections > 0) {
        json_t *cats = json_array();
        for (size_t i = 0; cats && i < p->n_collections; i++) {
            char cid[128];
            if (empty(p->collection_ids[i]) ||
                !catalog_klaviyo_id(p->collection_ids[i], cid, sizeof cid)) {
                json_decref(cats);
                MAP_FAIL("product %s is in a collection without an id", pid);
            }
            json_array_append_new(cats,
                                  json_pack("{s:s,s:s}", "type", "catalog-category", "id", cid));
        }
        json_object_set_new(it, "relationships",
                            json_pack("{s:{s:o}}", "categories", "data", cats));
    }
out:
    free(desc);
    free(url);
    if (rc != CAD_OK) {
        json_decref(it);
        json_decref(vars);
        return cad_fail(rc, "%s", err);
    }
    *item = it;
    *variants = vars;
    return CAD_OK;
}

json_t *catalog_map_category(const char *id, const char *title, char *err, size_t errsz)
{
    char kid[128];
    if (empty(id) || !catalog_klaviyo_id(id, kid, sizeof kid)) {
        snprintf(err, errsz, "a collection has no id");
        return NULL;
    }
    if (empty(title)) {
        snprintf(err, errsz, "collection %s has no title, which Klaviyo requires as its name", id);
        return NULL;
    }
    json_t *a = json_object();
    json_t *name = json_string(title);
    if (!a || !name) {
        json_decref(a);
        json_decref(name);
        snprintf(err, errsz, "collection %s has a title that is not valid UTF-8", id);
        return NULL;
    }
    set_str(a, "external_id", id);
    json_object_set_new(a, "name", name);
    set_str(a, "integration_type", "$custom");
    set_str(a, "catalog_type", "$default");
    return resource("catalog-category", a);
}

int catalog_content_hash(const json_t *obj, char out[65])
{
    char *text = json_dumps(obj, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return cad_fail(CAD_ENOMEM, "the object could not be encoded");
    sha256_hex(text, strlen(text), out);
    free(text);
    return CAD_OK;
}
