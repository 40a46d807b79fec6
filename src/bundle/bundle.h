/*
 * Bundles: what an agency says a brand's Klaviyo account should contain, as a directory of files
 * (format: docs/bundle.md; a complete example: examples/bundle/).
 *
 *     templates/<name>.html (+ <name>.txt)   lists/<name>.json      segments/<name>.json
 *     forms/<name>.json                      campaigns/<name>.json  flows/<name>.json
 *     tags/<name>.json                       coupons/<name>.json    webhooks/<name>.json
 *     images/<name>.png|.jpg|.gif or images/<name>.json ({"url": ...})
 *     catalog/items.json or catalog/items.csv
 *
 * An asset's name is its file name without extension unless the file sets "name" (catalog items
 * are named by their external_id). JSON files carry the attributes Klaviyo expects for that
 * resource; wherever a Klaviyo id of another asset is needed they write {"$ref": "kind:name"},
 * which the plan engine replaces with the real id when it applies a step.
 *
 * Loading validates everything before any network call. Every problem is reported, not just the
 * first, each naming the file, the field (a JSON pointer) and, for JSON syntax errors, the line and
 * column. Nothing here touches the network or the store.
 *
 * Ownership: bundle_load() returns a bundle the caller frees with bundle_free(); every pointer
 * inside it lives as long as the bundle.
 */
#ifndef CADENCE_BUNDLE_BUNDLE_H
#define CADENCE_BUNDLE_BUNDLE_H

#include <jansson.h>
#include <stddef.h>

/* Size limits per file: JSON, HTML and text files; images (Klaviyo's own limit, 5 MB); and
 * catalog/items.json or items.csv. A larger file is reported, never read past the limit. */
#define BUNDLE_MAX_TEXT_BYTES    ((size_t)1 << 20)
#define BUNDLE_MAX_IMAGE_BYTES   ((size_t)5 << 20)
#define BUNDLE_MAX_CATALOG_BYTES ((size_t)64 << 20)

/* In dependency order: a kind only refers to kinds before it (tags come last because a tag file
 * lists what it tags). */
enum asset_kind {
    ASSET_IMAGE,
    ASSET_TEMPLATE,
    ASSET_LIST,
    ASSET_SEGMENT,
    ASSET_FORM,
    ASSET_COUPON,
    ASSET_WEBHOOK,
    ASSET_CATALOG_ITEM,
    ASSET_CAMPAIGN,
    ASSET_FLOW,
    ASSET_TAG,
    ASSET_KIND_COUNT
};

/* "image", "template", "list", "segment", "form", "coupon", "webhook", "catalog-item",
 * "campaign", "flow", "tag" (the names used in $ref and in plan JSON). */
const char *asset_kind_name(enum asset_kind k);
/* Accepts the names above; CAD_EINVAL with the list of kinds otherwise. */
int asset_kind_parse(const char *s, enum asset_kind *out);

/* A {"$ref": "kind:name"} found in an asset's attributes (or a tag's target). */
struct bundle_ref {
    enum asset_kind kind;
    const char *name;
    const char *pointer; /* JSON pointer of the $ref object within attrs ("" for tag targets,
                            which are the strings of attrs' "targets") */
};

struct bundle_asset {
    enum asset_kind kind;
    const char *name;
    const char *file; /* path relative to the bundle directory */
    /* The resource's attributes as Klaviyo expects them, $ref objects left in place, "name"
     * set to the asset's name (docs/bundle.md has every kind). For templates:
     * {"name","editor_type":"CODE","html","text"?}. For images from a file: {"name"} (the bytes
     * are in `data`); from a URL: {"name","import_from_url","hidden"?}. For tags:
     * {"name","tag_group"?,"targets":["kind:name",...]}. Coupons have no "name" (Klaviyo's
     * coupon has none; its id is external_id). Catalog items: create_catalog_item's attributes.
     * Campaign messages carry relationships.template.data {"$ref":"template:..."}, to be sent
     * with assign-template after the campaign is created. Webhooks carry "secret_key_env" (the
     * name of the environment variable holding the secret, read at apply time; the secret is
     * never in the bundle) and "topics" (the webhook-topics relationship's ids). */
    json_t *attrs;
    const unsigned char *data; /* image bytes (images from a file), else NULL */
    size_t data_len;
    const char *mime; /* "image/png", "image/jpeg", "image/gif" for image files, else NULL */
    const struct bundle_ref *refs;
    size_t n_refs;
    /* SHA-256 (hex) over the canonical form of everything above that Klaviyo would store:
     * compact, key-sorted JSON of attrs, plus the data's SHA-256. Equal hashes, equal content. */
    char content_hash[65];
};

struct bundle {
    const char *dir;
    const struct bundle_asset *assets; /* sorted by kind, then name */
    size_t n_assets;
    /* Indexes into assets in an order where every asset comes after the assets it refers to. */
    const size_t *order;
    char hash[65]; /* SHA-256 over every asset's kind, name and content hash, in sorted order */
};

struct bundle_error {
    char file[256];    /* relative to the bundle directory; "" for the bundle as a whole */
    char field[256];   /* JSON pointer or CSV column, "" when not about one field */
    int line, column;  /* 1-based; 0 when not applicable. Set for JSON syntax errors (jansson's
                        * position: the end of the bad token), invalid UTF-8 in text files and
                        * CSV cells (where the cell starts; column counts characters). */
    char message[512]; /* for the operator: what is wrong and what to do */
};

/* Loads and validates `dir`. On success CAD_OK and *out. On invalid input CAD_EINVAL, *out NULL,
 * and up to max_errors problems in errors[] (*n_errors gets the total found, which may exceed
 * max_errors; errors may be NULL to only count). CAD_ENOTFOUND when dir does not exist,
 * CAD_ENOMEM when memory ran out; cad_errmsg() sums up in every case. Checks include: unknown
 * folders or file types, unsafe file names, symlinks leaving the bundle, files over the size
 * limits, bad JSON (line and column), missing required attributes, wrong types and values Klaviyo
 * would reject (per resource), duplicate names within a kind, a $ref to a kind or name that is
 * not in the bundle or that its field cannot take, dependency cycles (named in full), images over
 * 5 MB or not really PNG/JPEG/GIF (by their bytes), catalog rows missing required fields. */
int bundle_load(const char *dir, struct bundle **out, struct bundle_error *errors,
                size_t max_errors, size_t *n_errors);
void bundle_free(struct bundle *b);

const struct bundle_asset *bundle_find(const struct bundle *b, enum asset_kind kind,
                                       const char *name);

/* Formats one error as "file:line:column: field: message" (parts that are empty left out). */
void bundle_error_format(const struct bundle_error *e, char *buf, size_t bufsize);

#endif
