/*
 * The pure parts of catalog/: the bulk JSONL assembler (every chunk boundary, malformed lines
 * with their line numbers, limits, the callback stopping it) and the mapping to Klaviyo catalog
 * objects (HTML to text, URL fallback, published, prices, categories, required fields, the
 * content hash).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "catalog/catalog.h"
#include "common/err.h"

/* ---- the assembler ---- */

struct rec {
    char out[8192];
    size_t len;
    int stop_after; /* 0 = never */
    int seen;
};

static int record(void *ctx, const struct shop_product *p)
{
    struct rec *r = ctx;
    r->len += (size_t)snprintf(r->out + r->len, sizeof r->out - r->len, "P%s[%s|%s|%s]", p->id,
                               p->title ? p->title : "-", p->status ? p->status : "-",
                               p->image_url ? p->image_url : "-");
    for (size_t i = 0; i < p->n_variants; i++)
        r->len +=
            (size_t)snprintf(r->out + r->len, sizeof r->out - r->len, " V%s(%s,%s,%lld%s)",
                             p->variants[i].id, p->variants[i].sku ? p->variants[i].sku : "-",
                             p->variants[i].price ? p->variants[i].price : "-",
                             p->variants[i].inventory, p->variants[i].has_inventory ? "" : "?");
    for (size_t i = 0; i < p->n_collections; i++)
        r->len += (size_t)snprintf(r->out + r->len, sizeof r->out - r->len, " C%s(%s)",
                                   p->collection_ids[i], p->collection_titles[i]);
    r->len += (size_t)snprintf(r->out + r->len, sizeof r->out - r->len, ";");
    r->seen++;
    if (r->stop_after && r->seen >= r->stop_after)
        return cad_fail(CAD_ESTATE, "enough");
    return 0;
}

static const char DOC[] =
    "{\"id\":\"gid://shopify/Product/1\",\"title\":\"Caf\xC3\xA9 Mug\",\"status\":\"ACTIVE\","
    "\"featuredMedia\":{\"preview\":{\"image\":{\"url\":\"https://cdn/1.jpg\"}}}}\n"
    "{\"id\":\"gid://shopify/ProductVariant/11\",\"sku\":\"M-1\",\"price\":\"12.50\","
    "\"inventoryQuantity\":4,\"__parentId\":\"gid://shopify/Product/1\"}\r\n"
    "{\"id\":\"gid://shopify/ProductVariant/12\",\"sku\":\"\",\"price\":\"9.00\","
    "\"inventoryQuantity\":null,\"__parentId\":\"gid://shopify/Product/1\"}\n"
    "{\"id\":\"gid://shopify/Collection/7\",\"title\":\"Mugs\","
    "\"__parentId\":\"gid://shopify/Product/1\"}\n"
    "\n"
    "{\"id\":\"gid://shopify/Product/2\",\"title\":\"Tee\",\"status\":\"DRAFT\"}\n"
    "{\"id\":\"gid://shopify/Product/3\",\"title\":\"Cap\",\"featuredImage\":{\"url\":\"u3\"}}\n"
    "{\"id\":\"gid://shopify/ProductVariant/31\",\"price\":\"1\","
    "\"__parentId\":\"gid://shopify/Product/3\"}";

static const char WANT[] = "P1[Caf\xC3\xA9 Mug|ACTIVE|https://cdn/1.jpg] V11(M-1,12.50,4) "
                           "V12(,9.00,0?) C7(Mugs);P2[Tee|DRAFT|-];P3[Cap|-|u3] V31(-,1,0?);";

static void run_chunks(const char *doc, size_t n, size_t cut1, size_t cut2, struct rec *r)
{
    memset(r, 0, sizeof *r);
    struct shop_jsonl *j = shop_jsonl_new(record, r);
    assert_non_null(j);
    assert_int_equal(shop_jsonl_feed(j, doc, cut1), CAD_OK);
    assert_int_equal(shop_jsonl_feed(j, doc + cut1, cut2 - cut1), CAD_OK);
    assert_int_equal(shop_jsonl_feed(j, doc + cut2, n - cut2), CAD_OK);
    assert_int_equal(shop_jsonl_finish(j), CAD_OK);
    assert_string_equal(shop_jsonl_error(j), "");
    assert_int_equal(shop_jsonl_products(j), 3);
    shop_jsonl_free(j);
}

static void test_jsonl_every_boundary(void **state)
{
    (void)state;
    size_t n = strlen(DOC);
    struct rec r;
    for (size_t a = 0; a <= n; a++) {
        run_chunks(DOC, n, a, a, &r);
        assert_string_equal(r.out, WANT);
        for (size_t b = a; b <= n; b += 7) {
            run_chunks(DOC, n, a, b, &r);
            assert_string_equal(r.out, WANT);
        }
    }
    /* one byte at a time */
    memset(&r, 0, sizeof r);
    struct shop_jsonl *j = shop_jsonl_new(record, &r);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(shop_jsonl_feed(j, DOC + i, 1), CAD_OK);
    assert_int_equal(shop_jsonl_finish(j), CAD_OK);
    assert_string_equal(r.out, WANT);
    assert_int_equal(shop_jsonl_lines(j), 8);
    shop_jsonl_free(j);
}

static void test_jsonl_empty(void **state)
{
    (void)state;
    struct rec r = {0};
    struct shop_jsonl *j = shop_jsonl_new(record, &r);
    assert_int_equal(shop_jsonl_feed(j, "", 0), CAD_OK);
    assert_int_equal(shop_jsonl_feed(j, "\n\n", 2), CAD_OK);
    assert_int_equal(shop_jsonl_finish(j), CAD_OK);
    assert_int_equal(r.seen, 0);
    shop_jsonl_free(j);
}

/* Feeds doc whole; expects CAD_EINVAL and an error containing `want`. */
static void bad(const char *doc, const char *want)
{
    struct rec r = {0};
    struct shop_jsonl *j = shop_jsonl_new(record, &r);
    int rc = shop_jsonl_feed(j, doc, strlen(doc));
    if (rc == CAD_OK)
        rc = shop_jsonl_finish(j);
    assert_int_equal(rc, CAD_EINVAL);
    if (!strstr(shop_jsonl_error(j), want))
        fail_msg("error \"%s\" lacks \"%s\"", shop_jsonl_error(j), want);
    assert_non_null(strstr(cad_errmsg(), want));
    /* sticky */
    assert_int_equal(shop_jsonl_feed(j, "\n", 1), CAD_EINVAL);
    assert_int_equal(shop_jsonl_finish(j), CAD_EINVAL);
    shop_jsonl_free(j);
}

#define P1 "{\"id\":\"gid://shopify/Product/1\",\"title\":\"A\"}\n"

static void test_jsonl_malformed(void **state)
{
    (void)state;
    bad(P1 P1 "{\"id\": oops}\n", "line 3: not JSON");
    bad(P1 "[1,2]\n", "line 2: not a JSON object");
    bad(P1 "{\"title\":\"x\"}\n", "line 2: no \"id\" string");
    bad("{\"id\":\"123\"}\n", "line 1: \"id\" is not a Shopify gid");
    bad("{\"id\":\"gid://shopify/Product/abc\"}\n", "line 1: gid://shopify/Product/abc does not");
    bad("{\"id\":\"gid://shopify/Product/123456789012345678901234\"}\n", "numeric id");
    bad("{\"id\":\"gid://shopify/ProductVariant/5\","
        "\"__parentId\":\"gid://shopify/Product/1\"}\n",
        "line 1: gid://shopify/ProductVariant/5's parent is not the product just before it (no "
        "product yet)");
    bad(P1 "{\"id\":\"gid://shopify/Product/2\"}\n"
           "{\"id\":\"gid://shopify/ProductVariant/5\",\"__parentId\":\"gid://shopify/Product/1\"}",
        "line 3: gid://shopify/ProductVariant/5's parent is not the product just before it "
        "(gid://shopify/Product/2)");
    bad(P1 "{\"id\":\"gid://shopify/Metafield/5\",\"__parentId\":\"gid://shopify/Product/1\"}\n",
        "line 2: a child of type Metafield");
    bad("{\"id\":\"gid://shopify/Collection/5\"}\n", "line 1: a top-level Collection");
    bad(P1 "{\"id\":\"gid://shopify/ProductVariant/5\",\"__parentId\":7}\n",
        "\"__parentId\" is not a string");
    bad("{\"id\":\"gid://shopify/Product/1\",\"title\":5}\n", "line 1: \"title\" is not a string");
    bad(P1 "{\"id\":\"gid://shopify/ProductVariant/5\",\"price\":12.5,"
           "\"__parentId\":\"gid://shopify/Product/1\"}\n",
        "variant 5: \"price\" is not a decimal string");
    bad(P1 "{\"id\":\"gid://shopify/ProductVariant/5\",\"inventoryQuantity\":\"3\","
           "\"__parentId\":\"gid://shopify/Product/1\"}\n",
        "\"inventoryQuantity\" is not an integer");
    bad("{\"id\":\"gid://shopify/Product/1\",\"id\":\"gid://shopify/Product/2\"}\n",
        "line 1: not JSON");
    bad(P1 "{\"id\":\"gid://shopify/Product/1\"", "line 2: not JSON"); /* cut short */
}

static void test_jsonl_long_line(void **state)
{
    (void)state;
    size_t n = SHOP_LINE_MAX + 100; /* line 2 is longer than the limit */
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, ' ', n);
    big[n] = '\0';
    memcpy(big, P1, strlen(P1));
    struct rec r = {0};
    struct shop_jsonl *j = shop_jsonl_new(record, &r);
    int rc = CAD_OK;
    for (size_t off = 0; off < n && rc == CAD_OK; off += 4096)
        rc = shop_jsonl_feed(j, big + off, n - off < 4096 ? n - off : 4096);
    assert_int_equal(rc, CAD_EINVAL);
    assert_non_null(strstr(shop_jsonl_error(j), "line 2: longer than 1048576 bytes"));
    shop_jsonl_free(j);
    free(big);

    /* exactly at the limit is fine (a line of spaces is not JSON, but not too long) */
    big = malloc(SHOP_LINE_MAX + 1);
    memset(big, ' ', SHOP_LINE_MAX);
    big[SHOP_LINE_MAX] = '\n';
    j = shop_jsonl_new(record, &r);
    assert_int_equal(shop_jsonl_feed(j, big, SHOP_LINE_MAX + 1), CAD_EINVAL);
    assert_non_null(strstr(shop_jsonl_error(j), "line 1: not JSON"));
    shop_jsonl_free(j);
    free(big);
}

static void test_jsonl_too_many_children(void **state)
{
    (void)state;
    struct rec r = {0};
    struct shop_jsonl *j = shop_jsonl_new(record, &r);
    assert_int_equal(shop_jsonl_feed(j, P1, strlen(P1)), CAD_OK);
    char line[160];
    int rc = CAD_OK;
    for (int i = 0; i <= SHOP_VARIANTS_MAX && rc == CAD_OK; i++) {
        int n = snprintf(line, sizeof line,
                         "{\"id\":\"gid://shopify/ProductVariant/%d\",\"price\":\"1\","
                         "\"__parentId\":\"gid://shopify/Product/1\"}\n",
                         i + 1);
        rc = shop_jsonl_feed(j, line, (size_t)n);
    }
    assert_int_equal(rc, CAD_EINVAL);
    assert_non_null(strstr(shop_jsonl_error(j), "product 1 has more than 4096 variants"));
    shop_jsonl_free(j);
}

static void test_jsonl_callback_stops(void **state)
{
    (void)state;
    struct rec r = {.stop_after = 1};
    struct shop_jsonl *j = shop_jsonl_new(record, &r);
    assert_int_equal(shop_jsonl_feed(j, DOC, strlen(DOC)), CAD_ESTATE);
    assert_int_equal(r.seen, 1);
    assert_int_equal(shop_jsonl_finish(j), CAD_ESTATE);
    assert_int_equal(r.seen, 1);
    assert_non_null(strstr(shop_jsonl_error(j), "stopped"));
    shop_jsonl_free(j);
}

static void test_gid_parse(void **state)
{
    (void)state;
    char id[SHOP_NUMERIC_ID_MAX];
    assert_true(shop_gid_parse("gid://shopify/Product/42", "Product", id));
    assert_string_equal(id, "42");
    assert_true(shop_gid_parse("gid://shopify/Product/42?x=1", "Product", id));
    assert_false(shop_gid_parse("gid://shopify/ProductVariant/42", "Product", id));
    assert_false(shop_gid_parse("gid://shopify/Product/", "Product", id));
    assert_false(shop_gid_parse("gid://shopify/Product/4a", "Product", id));
    assert_false(shop_gid_parse("gid://other/Product/4", "Product", id));
    assert_false(shop_gid_parse(NULL, "Product", id));
}

/* ---- HTML to text ---- */

static void text_is(const char *html, const char *want)
{
    char *t = NULL;
    assert_int_equal(catalog_html_to_text(html, &t), CAD_OK);
    assert_string_equal(t, want);
    free(t);
}

static void test_html_to_text(void **state)
{
    (void)state;
    text_is("<p>Description of <strong>product 1</strong>.</p>", "Description of product 1.");
    text_is("<p>One</p><p>Two</p>", "One Two");
    text_is("a<br>b<br/>c", "a b c");
    text_is("  lots \n\t of   space  ", "lots of space");
    text_is("Fish &amp; Chips &lt;3 &quot;q&quot; &#39;s&#39;", "Fish & Chips <3 \"q\" 's'");
    text_is("&#233;t&#xE9; &#x1F600; &eacute;", "\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80 \xC3\xA9");
    text_is("a&nbsp;&nbsp;b\xC2\xA0\xC2\xA0"
            "c",
            "a b c");
    text_is("&#0; &#xD800; &#1114112;", "\xEF\xBF\xBD \xEF\xBF\xBD \xEF\xBF\xBD");
    text_is("AT&T &bogus; & &#; &#x; &#12a;", "AT&T &bogus; & &#; &#x; &#12a;");
    text_is("<script>alert('x')</script>Hi<style>p{}</style> there", "Hi there");
    text_is("<SCRIPT type=x>bad</SCRIPT>ok", "ok");
    text_is("<script>never closed", "");
    text_is("text <unterminated", "text");
    text_is("<a href=\"x\">link</a>s", "links");
    text_is("", "");
    text_is(NULL, "");
    text_is("<ul><li>A</li><li>B</li></ul>", "A B");
    text_is("\xC2\xA9 2024", "\xC2\xA9 2024");
}

/* ---- mapping ---- */

static const struct shop_variant VARS[] = {
    {.id = "11",
     .title = "Small",
     .sku = "S-1",
     .price = "19.90",
     .inventory = 5,
     .has_inventory = true,
     .inventory_policy = SHOP_INVENTORY_POLICY_DENY},
    {.id = "12",
     .title = "Large",
     .sku = "",
     .price = "9.5",
     .has_inventory = false,
     .inventory_policy = SHOP_INVENTORY_POLICY_CONTINUE,
     .image_url = "https://cdn/v12.jpg"},
};
static const char *const CIDS[] = {"7", "8"};
static const char *const CTITLES[] = {"Mugs", "Gifts"};

static struct shop_product product(void)
{
    struct shop_product p = {.id = "1",
                             .title = "Mug",
                             .handle = "mug",
                             .description_html = "<p>A <b>big</b> mug&hellip;</p>",
                             .status = "ACTIVE",
                             .image_url = "https://cdn/1.jpg",
                             .variants = VARS,
                             .n_variants = 2,
                             .collection_ids = CIDS,
                             .collection_titles = CTITLES,
                             .n_collections = 2};
    return p;
}

static const char *attr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(json_object_get(o, "attributes"), k));
}

static json_t *attrv(json_t *o, const char *k)
{
    return json_object_get(json_object_get(o, "attributes"), k);
}

static void test_map_product(void **state)
{
    (void)state;
    struct shop_product p = product();
    json_t *item, *vars;
    char err[256];
    assert_int_equal(catalog_map_product(&p, "acme.myshopify.com", &item, &vars, err, sizeof err),
                     CAD_OK);
    assert_string_equal(json_string_value(json_object_get(item, "type")), "catalog-item");
    assert_string_equal(attr(item, "external_id"), "1");
    assert_string_equal(attr(item, "title"), "Mug");
    assert_string_equal(attr(item, "description"), "A big mug\xE2\x80\xA6");
    assert_string_equal(attr(item, "url"), "https://acme.myshopify.com/products/mug");
    assert_string_equal(attr(item, "image_full_url"), "https://cdn/1.jpg");
    assert_string_equal(attr(item, "integration_type"), "$custom");
    assert_string_equal(attr(item, "catalog_type"), "$default");
    assert_true(json_is_true(attrv(item, "published")));
    assert_true(json_is_real(attrv(item, "price")));
    assert_true(json_real_value(attrv(item, "price")) == 9.5);
    json_t *cats = json_object_get(
        json_object_get(json_object_get(item, "relationships"), "categories"), "data");
    assert_int_equal(json_array_size(cats), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(cats, 1), "id")),
                        "$custom:::$default:::8");
    assert_string_equal(json_string_value(json_object_get(json_array_get(cats, 1), "type")),
                        "catalog-category");

    assert_int_equal(json_array_size(vars), 2);
    json_t *v0 = json_array_get(vars, 0), *v1 = json_array_get(vars, 1);
    assert_string_equal(json_string_value(json_object_get(v0, "type")), "catalog-variant");
    assert_string_equal(attr(v0, "external_id"), "11");
    assert_string_equal(attr(v0, "title"), "Mug - Small");
    assert_string_equal(attr(v0, "sku"), "S-1");
    assert_string_equal(attr(v1, "sku"), "12"); /* fallback to the id */
    assert_string_equal(attr(v0, "description"), "A big mug\xE2\x80\xA6");
    assert_string_equal(attr(v0, "url"), "https://acme.myshopify.com/products/mug?variant=11");
    assert_int_equal(json_integer_value(attrv(v0, "inventory_quantity")), 5);
    assert_int_equal(json_integer_value(attrv(v1, "inventory_quantity")), 0);
    assert_int_equal(json_integer_value(attrv(v0, "inventory_policy")), 1);
    assert_int_equal(json_integer_value(attrv(v1, "inventory_policy")), 2);
    assert_true(json_real_value(attrv(v0, "price")) == 19.9);
    assert_string_equal(attr(v0, "image_full_url"), "https://cdn/1.jpg");
    assert_string_equal(attr(v1, "image_full_url"), "https://cdn/v12.jpg");
    assert_true(json_is_true(attrv(v1, "published")));
    json_t *rel =
        json_object_get(json_object_get(json_object_get(v0, "relationships"), "item"), "data");
    assert_string_equal(json_string_value(json_object_get(rel, "type")), "catalog-item");
    assert_string_equal(json_string_value(json_object_get(rel, "id")), "$custom:::$default:::1");
    json_decref(item);
    json_decref(vars);
}

static void test_map_fallbacks(void **state)
{
    (void)state;
    struct shop_product p = product();
    p.status = "DRAFT";
    p.description_html = "  <p> </p> ";
    p.online_store_url = "https://shop.acme.com/products/mug";
    p.n_collections = 0;
    p.image_url = NULL;
    struct shop_variant one = {.id = "5", .title = "Default Title", .price = "0"};
    p.variants = &one;
    p.n_variants = 1;
    json_t *item, *vars;
    char err[256];
    assert_int_equal(catalog_map_product(&p, "acme.myshopify.com", &item, &vars, err, sizeof err),
                     CAD_OK);
    assert_false(json_is_true(attrv(item, "published")));
    assert_string_equal(attr(item, "description"), "Mug"); /* Klaviyo requires one */
    assert_string_equal(attr(item, "url"), "https://shop.acme.com/products/mug");
    assert_null(json_object_get(item, "relationships"));
    assert_null(attrv(item, "image_full_url"));
    json_t *v = json_array_get(vars, 0);
    assert_string_equal(attr(v, "title"), "Mug");
    assert_false(json_is_true(attrv(v, "published")));
    assert_int_equal(json_integer_value(attrv(v, "inventory_policy")), 0);
    assert_true(json_real_value(attrv(v, "price")) == 0.0);
    json_decref(item);
    json_decref(vars);

    /* a handle that needs encoding; no variants: no price */
    p = product();
    p.handle = "caf\xC3\xA9 mug";
    p.n_variants = 0;
    assert_int_equal(catalog_map_product(&p, "acme.myshopify.com", &item, &vars, err, sizeof err),
                     CAD_OK);
    assert_string_equal(attr(item, "url"), "https://acme.myshopify.com/products/caf%C3%A9%20mug");
    assert_null(attrv(item, "price"));
    assert_int_equal(json_array_size(vars), 0);
    json_decref(item);
    json_decref(vars);
}

static void map_bad(struct shop_product *p, const char *want)
{
    json_t *item = (json_t *)1, *vars = (json_t *)1;
    char err[256];
    assert_int_equal(catalog_map_product(p, "acme.myshopify.com", &item, &vars, err, sizeof err),
                     CAD_EINVAL);
    assert_null(item);
    assert_null(vars);
    if (!strstr(err, want))
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void test_map_required(void **state)
{
    (void)state;
    struct shop_product p = product();
    p.id = NULL;
    map_bad(&p, "a product has no id");
    p = product();
    p.title = "";
    map_bad(&p, "product 1 has no title");
    p = product();
    p.handle = NULL;
    map_bad(&p, "product 1 has neither an online store URL nor a handle");
    p = product();
    p.title = "bad \xFF utf8";
    map_bad(&p, "not valid UTF-8");
    static const char *const bad_prices[] = {NULL, "",   "abc", "1e3", "-1",
                                             "1.", ".5", "NaN", "1,5", "9999999999999999"};
    for (size_t i = 0; i < sizeof bad_prices / sizeof bad_prices[0]; i++) {
        struct shop_variant v = {.id = "9", .price = bad_prices[i]};
        p = product();
        p.variants = &v;
        p.n_variants = 1;
        map_bad(&p, "variant 9 of product 1 has");
    }
    struct shop_variant v = {.id = "", .price = "1"};
    p = product();
    p.variants = &v;
    p.n_variants = 1;
    map_bad(&p, "a variant without an id");
    static const char *const empty_id[] = {""};
    p = product();
    p.collection_ids = empty_id;
    p.n_collections = 1;
    map_bad(&p, "a collection without an id");
}

static void test_map_category(void **state)
{
    (void)state;
    char err[128];
    json_t *c = catalog_map_category("7", "Mugs", err, sizeof err);
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "type")), "catalog-category");
    assert_string_equal(attr(c, "external_id"), "7");
    assert_string_equal(attr(c, "name"), "Mugs");
    assert_string_equal(attr(c, "integration_type"), "$custom");
    json_decref(c);
    assert_null(catalog_map_category("7", "", err, sizeof err));
    assert_non_null(strstr(err, "collection 7 has no title"));
    assert_null(catalog_map_category(NULL, "x", err, sizeof err));
    assert_non_null(strstr(err, "no id"));
    char id[32];
    assert_true(catalog_klaviyo_id("42", id, sizeof id));
    assert_string_equal(id, "$custom:::$default:::42");
    assert_false(catalog_klaviyo_id("42", id, 10));
}

static void test_content_hash(void **state)
{
    (void)state;
    json_t *a = json_loads("{\"type\":\"x\",\"attributes\":{\"b\":1,\"a\":[1,{\"z\":1,\"y\":2}]}}",
                           0, NULL);
    json_t *b = json_loads("{\"attributes\":{\"a\":[1,{\"y\":2,\"z\":1}],\"b\":1},\"type\":\"x\"}",
                           0, NULL);
    json_t *c = json_loads("{\"attributes\":{\"a\":[{\"y\":2,\"z\":1},1],\"b\":1},\"type\":\"x\"}",
                           0, NULL);
    char ha[65], hb[65], hc[65];
    assert_int_equal(catalog_content_hash(a, ha), CAD_OK);
    assert_int_equal(catalog_content_hash(b, hb), CAD_OK);
    assert_int_equal(catalog_content_hash(c, hc), CAD_OK);
    assert_int_equal(strlen(ha), 64);
    assert_string_equal(ha, hb);
    assert_string_not_equal(ha, hc); /* array order is content */
    json_decref(a);
    json_decref(b);
    json_decref(c);

    /* a mapped product hashes the same twice */
    struct shop_product p = product();
    json_t *i1, *v1, *i2, *v2;
    char err[64];
    assert_int_equal(catalog_map_product(&p, "s.myshopify.com", &i1, &v1, err, sizeof err), 0);
    assert_int_equal(catalog_map_product(&p, "s.myshopify.com", &i2, &v2, err, sizeof err), 0);
    assert_int_equal(catalog_content_hash(i1, ha), CAD_OK);
    assert_int_equal(catalog_content_hash(i2, hb), CAD_OK);
    assert_string_equal(ha, hb);
    json_decref(i1);
    json_decref(v1);
    json_decref(i2);
    json_decref(v2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonl_every_boundary),
        cmocka_unit_test(test_jsonl_empty),
        cmocka_unit_test(test_jsonl_malformed),
        cmocka_unit_test(test_jsonl_long_line),
        cmocka_unit_test(test_jsonl_too_many_children),
        cmocka_unit_test(test_jsonl_callback_stops),
        cmocka_unit_test(test_gid_parse),
        cmocka_unit_test(test_html_to_text),
        cmocka_unit_test(test_map_product),
        cmocka_unit_test(test_map_fallbacks),
        cmocka_unit_test(test_map_required),
        cmocka_unit_test(test_map_category),
        cmocka_unit_test(test_content_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
