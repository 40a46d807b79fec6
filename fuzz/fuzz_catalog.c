/*
 * Fuzzes what catalog/ reads from Shopify: a bulk operation's JSONL result, fed to the assembler
 * in chunks whose sizes come from the input, and every product it assembles mapped to Klaviyo
 * objects and hashed. Invariants: no crash or leak; a successful mapping has the attributes
 * Klaviyo requires; the same input split differently assembles the same products.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "common/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int map_one(void *ctx, const struct shop_product *p)
{
    long *count = ctx;
    (*count)++;
    json_t *item = NULL, *vars = NULL;
    char err[256];
    if (catalog_map_product(p, "fuzz.myshopify.com", &item, &vars, err, sizeof err) == CAD_OK) {
        json_t *a = json_object_get(item, "attributes");
        static const char *const req[] = {"external_id", "title", "description", "url"};
        for (size_t i = 0; i < 4; i++)
            if (!json_is_string(json_object_get(a, req[i])))
                abort();
        if (json_array_size(vars) != p->n_variants)
            abort();
        char h[65];
        if (catalog_content_hash(item, h) != CAD_OK || strlen(h) != 64)
            abort();
    } else if (!err[0] || item || vars) {
        abort();
    }
    json_decref(item);
    json_decref(vars);
    for (size_t i = 0; i < p->n_collections; i++)
        json_decref(
            catalog_map_category(p->collection_ids[i], p->collection_titles[i], err, sizeof err));
    return 0;
}

static int run(const uint8_t *data, size_t size, size_t step, long *count)
{
    struct shop_jsonl *j = shop_jsonl_new(map_one, count);
    if (!j)
        return CAD_ENOMEM;
    int rc = CAD_OK;
    for (size_t off = 0; off < size && rc == CAD_OK; off += step)
        rc = shop_jsonl_feed(j, (const char *)data + off, size - off < step ? size - off : step);
    if (rc == CAD_OK)
        rc = shop_jsonl_finish(j);
    if (rc != CAD_OK && !shop_jsonl_error(j)[0])
        abort();
    shop_jsonl_free(j);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] % 17 + 1;
    long whole = 0, chunked = 0;
    int a = run(data + 1, size - 1, size, &whole);
    int b = run(data + 1, size - 1, step, &chunked);
    if (a != b || whole != chunked)
        abort();

    char *html = malloc(size);
    if (html) {
        memcpy(html, data + 1, size - 1);
        html[size - 1] = '\0';
        char *text = NULL;
        if (catalog_html_to_text(html, &text) == CAD_OK)
            free(text);
        free(html);
    }
    return 0;
}
