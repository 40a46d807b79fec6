/*
 * Catalog items: catalog/items.json (an array of create_catalog_item attribute objects) or
 * catalog/items.csv (RFC 4180: a header row, comma-separated fields, fields in double quotes may
 * hold commas, line breaks and "" for a quote; CRLF or LF line ends; a UTF-8 byte-order mark is
 * skipped). Each item is one asset named by its external_id.
 *
 * CSV cells are turned into the same attribute object a JSON item would carry (price a number,
 * published a boolean, images a whitespace-separated list, custom_metadata.<key> columns into
 * custom_metadata), and both forms then go through one check. CSV problems name the column as
 * the field and give the line and column where the cell starts.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle/bundle_int.h"
#include "common/util.h"

#define META_PREFIX "custom_metadata."
#define META_MAX    ((size_t)100 * 1024)

static const char *const item_keys[] = {"external_id", "integration_type", "title",
                                        "price",       "catalog_type",     "description",
                                        "url",         "image_full_url",   "image_thumbnail_url",
                                        "images",      "custom_metadata",  "published",
                                        NULL};

/* Where an item came from, for messages. */
struct item_loc {
    const char *file;
    const char *prefix; /* JSON: "/3"; CSV: NULL */
    int line;           /* CSV: the record's first line */
    char **header;      /* CSV column names */
    const int *cols;    /* CSV: the column (1-based character) where each cell starts */
    const int *lines;   /* CSV: the line where each cell starts */
    size_t ncols;
};

__attribute__((format(printf, 4, 5))) static void
item_err(struct loader *l, const struct item_loc *w, const char *key, const char *fmt, ...)
{
    char msg[512], field[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (w->prefix) {
        if (key)
            json_pointer_append(field, sizeof field, w->prefix, key);
        else
            snprintf(field, sizeof field, "%s", w->prefix);
        loader_error(l, w->file, field, 0, 0, "%s", msg);
        return;
    }
    int line = w->line, col = 0;
    for (size_t i = 0; key && i < w->ncols; i++) {
        bool meta = strncmp(key, "custom_metadata", 15) == 0 &&
                    strncmp(w->header[i], META_PREFIX, strlen(META_PREFIX)) == 0;
        if (strcmp(w->header[i], key) == 0 || meta) {
            col = w->cols[i];
            line = w->lines[i];
            break;
        }
    }
    loader_error(l, w->file, key ? key : "", line, col, "%s", msg);
}

static bool required_string(struct loader *l, const struct item_loc *w, json_t *item,
                            const char *key, const char *what)
{
    json_t *v = json_object_get(item, key);
    if (!v) {
        item_err(l, w, key, "\"%s\" is required: %s", key, what);
        return false;
    }
    if (!json_is_string(v)) {
        item_err(l, w, key, "\"%s\" must be a string", key);
        return false;
    }
    if (json_string_length(v) == 0) {
        item_err(l, w, key, "\"%s\" must not be empty: %s", key, what);
        return false;
    }
    return true;
}

static void optional_url(struct loader *l, const struct item_loc *w, json_t *item, const char *key)
{
    json_t *v = json_object_get(item, key);
    if (!v || json_is_null(v))
        return;
    if (!json_is_string(v) || !text_url_ok(json_string_value(v), false))
        item_err(l, w, key, "\"%s\" must be an http:// or https:// URL", key);
}

/* Checks one item's attributes and adds it unless it or an earlier step (`bad`) found a
 * problem (takes item). */
static void add_item(struct loader *l, const struct item_loc *w, json_t *item, bool bad)
{
    size_t before = l->n_errors;
    const char *k;
    json_t *v;
    char all[300];
    size_t n = 0;
    all[0] = '\0';
    for (size_t i = 0; item_keys[i]; i++)
        n += (size_t)snprintf(all + n, sizeof all - (n < sizeof all ? n : sizeof all), "%s%s",
                              i ? ", " : "", item_keys[i]);
    json_object_foreach(item, k, v)
    {
        bool known = false;
        for (size_t i = 0; item_keys[i] && !known; i++)
            known = strcmp(k, item_keys[i]) == 0;
        if (!known)
            item_err(l, w, k, "unknown attribute \"%.60s\": create_catalog_item accepts %s", k,
                     all);
    }
    required_string(l, w, item, "external_id", "the item's id in the store");
    required_string(l, w, item, "title", "the product's title");
    required_string(l, w, item, "description", "the product's description");
    if (required_string(l, w, item, "url", "the product page's URL"))
        optional_url(l, w, item, "url");
    const char *ext = json_string_value(json_object_get(item, "external_id"));
    const char *problem = ext ? text_name_problem(ext) : NULL;
    if (problem)
        item_err(l, w, "external_id", "the external_id %s", problem);
    optional_url(l, w, item, "image_full_url");
    optional_url(l, w, item, "image_thumbnail_url");
    v = json_object_get(item, "price");
    if (v && !json_is_null(v) && (!json_is_number(v) || json_number_value(v) < 0))
        item_err(l, w, "price", "\"price\" must be a number of at least 0");
    v = json_object_get(item, "published");
    if (v && !json_is_boolean(v))
        item_err(l, w, "published", "\"published\" must be true or false");
    v = json_object_get(item, "integration_type");
    if (v && (!json_is_string(v) || strcmp(json_string_value(v), "$custom") != 0))
        item_err(l, w, "integration_type", "Klaviyo accepts only \"$custom\" here; leave it out");
    v = json_object_get(item, "catalog_type");
    if (v && (!json_is_string(v) || strcmp(json_string_value(v), "$default") != 0))
        item_err(l, w, "catalog_type", "Klaviyo accepts only \"$default\" here; leave it out");
    v = json_object_get(item, "images");
    if (v) {
        size_t i;
        json_t *u;
        bool ok = json_is_array(v);
        json_array_foreach(v, i, u) ok &=
            json_is_string(u) && text_url_ok(json_string_value(u), false);
        if (!ok)
            item_err(l, w, "images", "\"images\" must be a list of http:// or https:// URLs");
    }
    v = json_object_get(item, "custom_metadata");
    if (v) {
        bool flat = json_is_object(v);
        const char *mk;
        json_t *mv;
        json_object_foreach(v, mk, mv) flat &= !json_is_object(mv) && !json_is_array(mv);
        char *s = flat ? json_dumps(v, JSON_COMPACT) : NULL;
        if (!flat)
            item_err(l, w, "custom_metadata",
                     "\"custom_metadata\" must be a flat object (no nested objects or arrays)");
        else if (s && strlen(s) > META_MAX)
            item_err(l, w, "custom_metadata", "\"custom_metadata\" is over Klaviyo's 100 KB limit");
        free(s);
    }
    if (bad || l->n_errors != before || !ext || problem) {
        json_decref(item);
        return;
    }
    char file[256];
    snprintf(file, sizeof file, "%s", w->file);
    loader_add(l, ASSET_CATALOG_ITEM, ext, file, item);
}

void catalog_load_json(struct loader *l, const char *file, json_t *root)
{
    if (!json_is_array(root)) {
        loader_error(l, file, "", 0, 0,
                     "catalog/items.json must hold a JSON array of items, [{\"external_id\": "
                     "...}, ...]");
        json_decref(root);
        return;
    }
    size_t i;
    json_t *item;
    char prefix[32];
    json_array_foreach(root, i, item)
    {
        snprintf(prefix, sizeof prefix, "/%zu", i);
        struct item_loc w = {.file = file, .prefix = prefix};
        if (!json_is_object(item)) {
            loader_error(l, file, prefix, 0, 0, "an item must be an object");
            continue;
        }
        json_incref(item);
        add_item(l, &w, item, false);
    }
    json_decref(root);
}

/* ---- RFC 4180 reader ---- */

struct csv_cell {
    char *text;
    int line, col;
};

struct csv_row {
    struct csv_cell *cells;
    size_t n, cap;
    int line;
};

struct csv {
    const char *buf;
    size_t len, pos;
    int line, col; /* of pos */
};

static void csv_advance(struct csv *c)
{
    if (c->buf[c->pos] == '\n') {
        c->line++;
        c->col = 1;
    } else if (((unsigned char)c->buf[c->pos] & 0xC0) != 0x80) {
        c->col++;
    }
    c->pos++;
}

static void row_clear(struct csv_row *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->cells[i].text);
    free(r->cells);
    memset(r, 0, sizeof *r);
}

/* Reads one record. 1 = a record, 0 = end of input, -1 = syntax error (reported), -2 = no
 * memory. */
static int csv_read(struct loader *l, const char *file, struct csv *c, struct csv_row *row)
{
    row_clear(row);
    /* Blank lines between records are skipped. */
    while (c->pos < c->len &&
           (c->buf[c->pos] == '\n' ||
            (c->buf[c->pos] == '\r' && c->pos + 1 < c->len && c->buf[c->pos + 1] == '\n')))
        csv_advance(c);
    if (c->pos >= c->len)
        return 0;
    row->line = c->line;
    for (;;) {
        struct csv_cell cell = {NULL, c->line, c->col};
        size_t cap = 16, n = 0;
        char *t = malloc(cap);
        if (!t)
            return -2;
        bool quoted = c->pos < c->len && c->buf[c->pos] == '"';
        if (quoted)
            csv_advance(c);
        for (;;) {
            if (c->pos >= c->len) {
                if (quoted) {
                    free(t);
                    loader_error(l, file, "", cell.line, cell.col,
                                 "a quoted field is never closed; add the closing \"");
                    return -1;
                }
                break;
            }
            char ch = c->buf[c->pos];
            if (quoted && ch == '"') {
                if (c->pos + 1 < c->len && c->buf[c->pos + 1] == '"') {
                    csv_advance(c);
                    csv_advance(c);
                } else {
                    csv_advance(c);
                    if (c->pos < c->len && c->buf[c->pos] != ',' && c->buf[c->pos] != '\n' &&
                        c->buf[c->pos] != '\r') {
                        free(t);
                        loader_error(l, file, "", c->line, c->col,
                                     "text after a closing quote; a field that starts with \" "
                                     "ends with \" (write \"\" for a quote inside it)");
                        return -1;
                    }
                    break;
                }
            } else if (!quoted &&
                       (ch == ',' || ch == '\n' ||
                        (ch == '\r' && c->pos + 1 < c->len && c->buf[c->pos + 1] == '\n'))) {
                break;
            } else if (!quoted && (ch == '"' || ch == '\r')) {
                free(t);
                loader_error(l, file, "", c->line, c->col,
                             ch == '"' ? "a quote inside an unquoted field; put the whole field "
                                         "in quotes and write the quote as \"\""
                                       : "a carriage return not followed by a line feed");
                return -1;
            } else {
                csv_advance(c);
            }
            if (n + 2 > cap) {
                char *nt = realloc(t, cap *= 2);
                if (!nt) {
                    free(t);
                    return -2;
                }
                t = nt;
            }
            t[n++] = ch;
        }
        t[n] = '\0';
        cell.text = t;
        if (row->n == row->cap) {
            size_t ncap = row->cap ? row->cap * 2 : 8;
            struct csv_cell *nc = realloc(row->cells, ncap * sizeof *nc);
            if (!nc) {
                free(t);
                return -2;
            }
            row->cells = nc;
            row->cap = ncap;
        }
        row->cells[row->n++] = cell;
        if (c->pos >= c->len)
            return 1;
        char ch = c->buf[c->pos];
        if (ch == ',') {
            csv_advance(c);
            continue;
        }
        if (ch == '\r')
            csv_advance(c);
        csv_advance(c); /* '\n' */
        return 1;
    }
}

static bool header_known(const char *h)
{
    if (strncmp(h, META_PREFIX, strlen(META_PREFIX)) == 0)
        return strlen(h) > strlen(META_PREFIX);
    for (size_t i = 0; i + 1 < CAD_ARRAY_LEN(item_keys); i++) {
        if (strcmp(h, item_keys[i]) == 0 && strcmp(h, "custom_metadata") != 0)
            return true;
    }
    return false;
}

/* One CSV record into an item object (cells that do not convert are reported, left out and
 * make *bad true); NULL when out of memory. */
static json_t *row_item(struct loader *l, const struct item_loc *w, struct csv_row *row,
                        bool *bad_out)
{
    json_t *item = json_object();
    if (!item) {
        l->oom = true;
        return NULL;
    }
    bool bad = false;
    for (size_t i = 0; i < row->n; i++) {
        const char *h = w->header[i], *t = row->cells[i].text;
        json_t *v = NULL;
        if (*t == '\0')
            continue;
        if (strcmp(h, "price") == 0) {
            char *end;
            double d = strtod(t, &end);
            if (*end != '\0' || !isfinite(d) || end == t) {
                item_err(l, w, h, "price \"%.40s\" is not a number; write it like 19.99", t);
                bad = true;
                continue;
            }
            v = json_real(d);
        } else if (strcmp(h, "published") == 0) {
            if (strcmp(t, "true") != 0 && strcmp(t, "false") != 0) {
                item_err(l, w, h, "published is \"%.40s\"; write true or false", t);
                bad = true;
                continue;
            }
            v = json_boolean(strcmp(t, "true") == 0);
        } else if (strcmp(h, "images") == 0) {
            v = json_array();
            char *copy = strdup(t), *save = NULL;
            for (char *u = copy ? strtok_r(copy, " \t\n\r", &save) : NULL; u;
                 u = strtok_r(NULL, " \t\n\r", &save))
                json_array_append_new(v, json_string(u));
            free(copy);
        } else if (strncmp(h, META_PREFIX, strlen(META_PREFIX)) == 0) {
            json_t *meta = json_object_get(item, "custom_metadata");
            if (!meta) {
                meta = json_object();
                json_object_set_new(item, "custom_metadata", meta);
            }
            json_object_set_new(meta, h + strlen(META_PREFIX), json_string(t));
            continue;
        } else {
            v = json_string(t);
        }
        if (!v || json_object_set_new(item, h, v) != 0)
            l->oom = true;
    }
    *bad_out = bad;
    return item;
}

void catalog_load_csv(struct loader *l, const char *file, const char *buf, size_t len)
{
    size_t bad_at;
    if (!text_utf8_valid(buf, len, &bad_at)) {
        int line, col;
        text_line_col(buf, bad_at, &line, &col);
        loader_error(l, file, "", line, col, "the file is not valid UTF-8; save it as UTF-8");
        return;
    }
    if (memchr(buf, '\0', len)) {
        loader_error(l, file, "", 0, 0, "the file holds a NUL byte; it is not a CSV text file");
        return;
    }
    struct csv c = {buf, len, 0, 1, 1};
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        c.pos = 3;
    struct csv_row header = {0}, row = {0};
    int rc = csv_read(l, file, &c, &header);
    if (rc == 0)
        loader_error(l, file, "", 0, 0,
                     "the file is empty; the first row names the columns "
                     "(external_id,title,description,url,...)");
    if (rc != 1)
        goto done;
    bool header_ok = true;
    for (size_t i = 0; i < header.n; i++) {
        const char *h = header.cells[i].text;
        if (!header_known(h)) {
            loader_error(l, file, h, header.cells[i].line, header.cells[i].col,
                         "unknown column \"%.60s\": columns are external_id, title, description, "
                         "url, price, image_full_url, image_thumbnail_url, published, images, "
                         "integration_type, catalog_type and custom_metadata.<key>",
                         h);
            header_ok = false;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(header.cells[j].text, h) == 0) {
                loader_error(l, file, h, header.cells[i].line, header.cells[i].col,
                             "column \"%.60s\" appears twice", h);
                header_ok = false;
                break;
            }
        }
    }
    static const char *const required[] = {"external_id", "title", "description", "url"};
    for (size_t k = 0; k < 4; k++) {
        bool found = false;
        for (size_t i = 0; i < header.n && !found; i++)
            found = strcmp(header.cells[i].text, required[k]) == 0;
        if (!found) {
            loader_error(l, file, required[k], header.line, 0,
                         "the header has no \"%s\" column; external_id, title, description and "
                         "url are required",
                         required[k]);
            header_ok = false;
        }
    }
    if (!header_ok)
        goto done;
    char **names = calloc(header.n, sizeof *names);
    int *cols = calloc(header.n, sizeof *cols), *lines = calloc(header.n, sizeof *lines);
    if (!names || !cols || !lines) {
        l->oom = true;
        free(names);
        free(cols);
        free(lines);
        goto done;
    }
    for (size_t i = 0; i < header.n; i++)
        names[i] = header.cells[i].text;
    while ((rc = csv_read(l, file, &c, &row)) == 1) {
        if (row.n != header.n) {
            loader_error(l, file, "", row.line, 0,
                         "this row has %zu fields but the header has %zu; quote fields that "
                         "hold commas",
                         row.n, header.n);
            continue;
        }
        for (size_t i = 0; i < row.n; i++) {
            cols[i] = row.cells[i].col;
            lines[i] = row.cells[i].line;
        }
        struct item_loc w = {.file = file,
                             .line = row.line,
                             .header = names,
                             .cols = cols,
                             .lines = lines,
                             .ncols = header.n};
        bool bad = false;
        json_t *item = row_item(l, &w, &row, &bad);
        if (item)
            add_item(l, &w, item, bad);
    }
    if (rc == -2)
        l->oom = true;
    free(names);
    free(cols);
    free(lines);
done:
    if (rc == -2)
        l->oom = true;
    row_clear(&header);
    row_clear(&row);
}
