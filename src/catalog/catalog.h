/*
 * The brand's Shopify catalog, read and mapped to Klaviyo catalog objects.
 *
 * Three parts, bottom up:
 *   - shop_jsonl_*: a streaming assembler for the JSONL file a Shopify bulk operation produces.
 *     Each line is one object; a product line is followed by its children (variants, collections),
 *     each carrying "__parentId". The assembler holds one product at a time, so memory is bounded
 *     by the largest product, never by the number of products. It relies on Shopify's grouped
 *     output (bulkOperationRunQuery(groupObjects: true), which shop_read_catalog always asks for):
 *     a child whose parent is not the product being assembled is an error, not a reason to buffer.
 *   - shop_read_catalog: reads every product of a shop through the Admin GraphQL API, in bulk
 *     (a bulk operation, polled, whose JSONL result is streamed through the assembler) or paged
 *     (products(first:, after:)) mode, within Shopify's cost-based throttle. Every call is
 *     audited write-ahead as "shopify.call" like providers/verify.c.
 *   - catalog_map_*: pure functions turning a product into Klaviyo catalog-item, catalog-variant
 *     and catalog-category create objects (JSON:API resource objects for the bulk-create jobs),
 *     and a content hash that lets a sync skip objects that did not change. docs/catalog.md has
 *     the field-by-field mapping and the reasons for it.
 *
 * All strings in the structs below are UTF-8, owned by the module and valid only during the
 * callback that receives them; copy what must outlive it. Every function returns CAD_OK or a
 * negative CAD_E* code with a message (common/err.h), unless stated otherwise.
 */
#ifndef CADENCE_CATALOG_CATALOG_H
#define CADENCE_CATALOG_CATALOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/secret.h"
#include "store/store.h"

/* Limits on what one product may hold (bounded memory for any input). */
#define SHOP_LINE_MAX          (1u << 20) /* one JSONL line, bytes */
#define SHOP_VARIANTS_MAX      4096       /* Shopify allows 2048 variants per product */
#define SHOP_COLLECTIONS_MAX   4096
#define SHOP_NUMERIC_ID_MAX    24 /* buffer for a gid's numeric part, with NUL */
#define CATALOG_KLAVIYO_PREFIX "$custom:::$default:::"

enum shop_inventory_policy {
    SHOP_INVENTORY_POLICY_UNKNOWN, /* not given */
    SHOP_INVENTORY_POLICY_DENY,    /* not sold when out of stock */
    SHOP_INVENTORY_POLICY_CONTINUE /* sold whatever the stock */
};

struct shop_variant {
    const char *id;      /* numeric, from the gid ("gid://shopify/ProductVariant/42" -> "42") */
    const char *title;   /* may be NULL */
    const char *sku;     /* may be NULL or "" */
    const char *price;   /* decimal text as Shopify sends it ("19.90"), may be NULL */
    long long inventory; /* inventoryQuantity, when has_inventory */
    bool has_inventory;  /* false when Shopify sent none (untracked, or no read_inventory) */
    enum shop_inventory_policy inventory_policy;
    const char *image_url; /* may be NULL */
};

struct shop_product {
    const char *id;                                         /* numeric, from the gid */
    const char *title, *handle, *description_html, *status; /* status "ACTIVE", "DRAFT", ... */
    const char *online_store_url;                           /* NULL when not on the online store */
    const char *image_url;                                  /* featured image, may be NULL */
    const char *updated_at;                                 /* ISO-8601, may be NULL */
    const struct shop_variant *variants;
    size_t n_variants;
    const char *const *collection_ids; /* numeric */
    const char *const *collection_titles;
    size_t n_collections;
};

/* Receives one complete product. Returning nonzero stops the reading, which then returns that
 * value (so return a CAD_E* code, with cad_fail, to say why). */
typedef int (*shop_product_fn)(void *ctx, const struct shop_product *p);

/* ---- the JSONL assembler (pure) ---- */

struct shop_jsonl;

/* A new assembler calling fn(ctx, product) once per complete product. NULL when out of memory.
 * Free with shop_jsonl_free(). */
struct shop_jsonl *shop_jsonl_new(shop_product_fn fn, void *ctx);

/* Feeds `len` bytes, split anywhere (inside a line, inside a UTF-8 character). Lines end with
 * "\n" (a "\r" before it is dropped); empty lines are skipped. Accepted lines: a product
 * ("gid://shopify/Product/N", no __parentId), and after it its variants
 * ("gid://shopify/ProductVariant/N") and collections ("gid://shopify/Collection/N") with
 * "__parentId" equal to the product's id. CAD_EINVAL on malformed input (shop_jsonl_error() says
 * which line and why); the callback's own nonzero value when it stopped. Errors are sticky: later
 * calls return the same code without reading. */
int shop_jsonl_feed(struct shop_jsonl *j, const char *buf, size_t len);

/* Ends the input: reads a last line without "\n" and hands over the last product. */
int shop_jsonl_finish(struct shop_jsonl *j);

/* "line 12: ..." for the first error, "" when none. Never quotes more than a gid of the input. */
const char *shop_jsonl_error(const struct shop_jsonl *j);

/* Lines and products read so far. */
long shop_jsonl_lines(const struct shop_jsonl *j);
long shop_jsonl_products(const struct shop_jsonl *j);

void shop_jsonl_free(struct shop_jsonl *j);

/* "gid://shopify/<type>/<digits>[?...]": copies the digits into out (SHOP_NUMERIC_ID_MAX bytes)
 * and returns true when the gid has that type. */
bool shop_gid_parse(const char *gid, const char *type, char out[SHOP_NUMERIC_ID_MAX]);

/* ---- reading a shop ---- */

enum shop_read_mode {
    SHOP_READ_AUTO,  /* paged when the shop has at most SHOP_PAGED_MAX products, none with more
                        than 100 variants or collections; bulk otherwise */
    SHOP_READ_BULK,  /* always a bulk operation */
    SHOP_READ_PAGED, /* always products(first:, after:) pages */
};
#define SHOP_PAGED_MAX 250

struct shop_read_stats {
    long products, variants;
    long queries;         /* GraphQL requests sent (not the result download) */
    long throttled_waits; /* waits before a query, or after a THROTTLED answer */
    int64_t throttle_wait_ms, bulk_wait_ms;
    long long bytes; /* response bytes received, downloads included */
};

/* Reads every product of `shop_domain` (normalised name.myshopify.com) with `token` and calls
 * fn for each, auditing every call as `actor` for `tenant_id`. The API base is https://<shop> or
 * $CADENCE_SHOPIFY_URL (providers.h); timeouts $CADENCE_PROVIDER_TIMEOUT_MS per request, and the
 * result download gets $CADENCE_SHOPIFY_DOWNLOAD_TIMEOUT_MS (default 30 minutes). Bulk polling
 * starts at 50 ms and doubles up to 1 s ($CADENCE_SHOPIFY_POLL_MS lowers the cap).
 *
 * Returns CAD_OK; CAD_EAUTH when Shopify rejected the token (a 401/403 confirmed by a second,
 * minimal shop query: the caller may mark the credential revoked); CAD_ENET when Shopify could
 * not be reached or kept failing (5xx/429 after retries); CAD_EREMOTE for an answer that made no
 * sense, a GraphQL error, or a FAILED/CANCELED bulk operation; CAD_EINVAL for a malformed JSONL
 * result (message names the line); the callback's code when it stopped. `stats` may be NULL; it
 * is filled even on failure. Products already handed to fn stay handed: a caller that needs all
 * or nothing collects first and acts after CAD_OK. */
int shop_read_catalog(store *st, const char *tenant_id, const char *actor, const char *shop_domain,
                      const cad_secret *token, enum shop_read_mode mode, shop_product_fn fn,
                      void *ctx, struct shop_read_stats *stats);

/* ---- mapping to Klaviyo (pure) ---- */

/* Plain text from HTML: tags removed (script and style with their content), block tags and <br>
 * as breaks, entities decoded (named ones in common use, &#N; and &#xH;; invalid code points as
 * U+FFFD), whitespace runs collapsed to one space, trimmed. *out is malloc'd; caller frees. */
int catalog_html_to_text(const char *html, char **out);

/* Maps one product. *item gets a catalog-item create object
 *   {type:"catalog-item", attributes:{...}, relationships:{categories:{data:[...]}}}
 * and *variants an array of catalog-variant create objects
 *   {type:"catalog-variant", attributes:{...}, relationships:{item:{data:{type, id}}}}.
 * The caller owns both (json_decref). CAD_EINVAL when the product lacks what Klaviyo requires
 * (an id, a title, a URL, a variant's price ...): err says which product and what, and nothing is
 * returned. */
int catalog_map_product(const struct shop_product *p, const char *shop_domain, json_t **item,
                        json_t **variants, char *err, size_t errsz);

/* A catalog-category create object {type:"catalog-category", attributes:{external_id, name,
 * integration_type, catalog_type}} for collection `id` named `title`. NULL (and err) when either
 * is missing or empty. The caller owns it. */
json_t *catalog_map_category(const char *id, const char *title, char *err, size_t errsz);

/* "$custom:::$default:::<external_id>" into out; false when it does not fit. */
bool catalog_klaviyo_id(const char *external_id, char *out, size_t outsz);

/* SHA-256 (hex) of `obj`'s canonical JSON (json_dumps with JSON_SORT_KEYS | JSON_COMPACT), so
 * the same content gives the same hash whatever the key order. */
int catalog_content_hash(const json_t *obj, char out[65]);

#endif
