/*
 * bundle_load(): walks the bundle directory, reads each file once, hands JSON to the per-kind
 * validators, then checks the bundle as a whole: duplicate names, $refs to nothing, dependency
 * cycles; and computes the dependency order and the hashes.
 *
 * The directory is untrusted. Only the kind folders are read, one level deep; entries are
 * visited in byte order, so errors come out in the same order every time. A name that is hidden,
 * holds "..", control characters or invalid UTF-8 is refused; a symlink is followed only when it
 * resolves inside the bundle; only regular files are opened (O_NONBLOCK, so a FIFO cannot stall
 * the load) and no more than the kind's size limit is ever read.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle/bundle_int.h"
#include "common/err.h"
#include "common/util.h"

static const char *const kind_names[ASSET_KIND_COUNT] = {
    "image",   "template",     "list",     "segment", "form", "coupon",
    "webhook", "catalog-item", "campaign", "flow",    "tag"};

const char *asset_kind_name(enum asset_kind k)
{
    return (unsigned)k < ASSET_KIND_COUNT ? kind_names[k] : "unknown";
}

int asset_kind_parse(const char *s, enum asset_kind *out)
{
    for (int k = 0; k < ASSET_KIND_COUNT; k++) {
        if (strcmp(s, kind_names[k]) == 0) {
            *out = (enum asset_kind)k;
            return CAD_OK;
        }
    }
    return cad_fail(CAD_EINVAL,
                    "unknown asset kind \"%.40s\"; kinds are image, template, list, segment, "
                    "form, coupon, webhook, catalog-item, campaign, flow and tag",
                    s);
}

/* ---- errors and assets ---- */

void loader_error(struct loader *l, const char *file, const char *field, int line, int column,
                  const char *fmt, ...)
{
    if (l->n_errors < l->max_errors && l->errors) {
        struct bundle_error *e = &l->errors[l->n_errors];
        snprintf(e->file, sizeof e->file, "%s", file ? file : "");
        snprintf(e->field, sizeof e->field, "%s", field ? field : "");
        e->line = line;
        e->column = column;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof e->message, fmt, ap);
        va_end(ap);
    }
    l->n_errors++;
}

struct bundle_asset *loader_add(struct loader *l, enum asset_kind kind, const char *name,
                                const char *file, json_t *attrs)
{
    if (l->n_assets == l->cap_assets) {
        size_t ncap = l->cap_assets ? l->cap_assets * 2 : 32;
        struct bundle_asset *na = realloc(l->assets, ncap * sizeof *na);
        if (!na) {
            json_decref(attrs);
            l->oom = true;
            return NULL;
        }
        l->assets = na;
        l->cap_assets = ncap;
    }
    char *n = strdup(name), *f = strdup(file);
    if (!n || !f) {
        free(n);
        free(f);
        json_decref(attrs);
        l->oom = true;
        return NULL;
    }
    struct bundle_asset *a = &l->assets[l->n_assets++];
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->name = n;
    a->file = f;
    a->attrs = attrs;
    return a;
}

void loader_add_ref(struct loader *l, struct bundle_asset *a, enum asset_kind kind,
                    const char *name, const char *pointer)
{
    /* refs grow one at a time; an asset holds few. */
    struct bundle_ref *nr = realloc((void *)a->refs, (a->n_refs + 1) * sizeof *nr);
    if (!nr) {
        l->oom = true;
        return;
    }
    a->refs = nr;
    struct bundle_ref *r = &nr[a->n_refs];
    r->kind = kind;
    r->name = strdup(name);
    r->pointer = strdup(pointer);
    a->n_refs++;
    if (!r->name || !r->pointer)
        l->oom = true;
}

void loader_free_refs(const struct bundle_ref *refs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((void *)refs[i].name);
        free((void *)refs[i].pointer);
    }
    free((void *)refs);
}

void loader_free_asset(struct bundle_asset *a)
{
    free((void *)a->name);
    free((void *)a->file);
    json_decref(a->attrs);
    free((void *)a->data);
    loader_free_refs(a->refs, a->n_refs);
    memset(a, 0, sizeof *a);
}

/* ---- files ---- */

enum read_status { READ_OK, READ_TOO_BIG, READ_NOT_FILE, READ_IO };

static enum read_status read_bounded(const char *path, size_t max, char **out, size_t *out_len,
                                     long long *size)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return READ_IO;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return READ_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return READ_NOT_FILE;
    }
    *size = (long long)st.st_size;
    if ((unsigned long long)st.st_size > max) {
        close(fd);
        return READ_TOO_BIG;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        return READ_IO;
    }
    for (;;) {
        if (len == cap) {
            /* The file grew while being read: stop at the limit. */
            if (cap > max) {
                free(buf);
                close(fd);
                return READ_TOO_BIG;
            }
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                close(fd);
                return READ_IO;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            free(buf);
            close(fd);
            return READ_IO;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    if (len > max) {
        free(buf);
        return READ_TOO_BIG;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return READ_OK;
}

struct entry {
    char *name;
    char *path; /* absolute or as given: dir/rel */
    char *rel;
    bool is_dir;
};

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static void entries_free(struct entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].name);
        free(e[i].path);
        free(e[i].rel);
    }
    free(e);
}

/* Lists `rel` (a folder of the bundle, "" for the top), refusing unsafe names and symlinks that
 * leave the bundle; sorted by name. */
static struct entry *list_dir(struct loader *l, const char *rel, size_t *n_out)
{
    *n_out = 0;
    char *path = NULL;
    if (asprintf(&path, "%s%s%s", l->dir, *rel ? "/" : "", rel) < 0) {
        l->oom = true;
        return NULL;
    }
    DIR *d = opendir(path);
    if (!d) {
        loader_error(l, rel, "", 0, 0, "cannot read the folder: %s", strerror(errno));
        free(path);
        return NULL;
    }
    struct entry *es = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *erel = NULL, *epath = NULL;
        if (asprintf(&erel, "%s%s%s", rel, *rel ? "/" : "", de->d_name) < 0)
            erel = NULL;
        if (erel && asprintf(&epath, "%s/%s", path, de->d_name) < 0)
            epath = NULL;
        if (!erel || !epath) {
            free(erel);
            free(epath);
            l->oom = true;
            break;
        }
        const char *why = text_file_name_problem(de->d_name);
        struct stat st;
        bool ok = why == NULL;
        if (why) {
            loader_error(l, erel, "", 0, 0, "the name %s", why);
        } else if (lstat(epath, &st) != 0) {
            loader_error(l, erel, "", 0, 0, "cannot read: %s", strerror(errno));
            ok = false;
        } else if (S_ISLNK(st.st_mode)) {
            char *target = realpath(epath, NULL);
            size_t rl = strlen(l->root);
            if (!target) {
                loader_error(l, erel, "", 0, 0,
                             "a symlink to nothing (%s); remove it or fix its target",
                             strerror(errno));
                ok = false;
            } else if (strncmp(target, l->root, rl) != 0 || target[rl] != '/') {
                loader_error(l, erel, "", 0, 0,
                             "a symlink to %s, outside the bundle; copy the file into the bundle "
                             "instead",
                             target);
                ok = false;
            } else if (stat(target, &st) != 0) {
                loader_error(l, erel, "", 0, 0, "cannot read the symlink's target: %s",
                             strerror(errno));
                ok = false;
            }
            free(target);
        }
        if (ok && !S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
            loader_error(l, erel, "", 0, 0, "not a regular file or folder; remove it");
            ok = false;
        }
        if (!ok) {
            free(erel);
            free(epath);
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct entry *ne = realloc(es, ncap * sizeof *ne);
            if (!ne) {
                free(erel);
                free(epath);
                l->oom = true;
                break;
            }
            es = ne;
            cap = ncap;
        }
        es[n].name = strdup(de->d_name);
        es[n].path = epath;
        es[n].rel = erel;
        es[n].is_dir = S_ISDIR(st.st_mode);
        if (!es[n].name)
            l->oom = true;
        n++;
    }
    closedir(d);
    free(path);
    if (l->oom) {
        entries_free(es, n);
        return NULL;
    }
    if (n)
        qsort(es, n, sizeof *es, entry_cmp);
    *n_out = n;
    return es;
}

/* Reads a file of the bundle with a size limit, reporting problems. */
static char *read_entry(struct loader *l, const struct entry *e, size_t max, const char *what,
                        size_t *len)
{
    char *buf;
    long long size = 0;
    switch (read_bounded(e->path, max, &buf, len, &size)) {
    case READ_OK:
        return buf;
    case READ_TOO_BIG:
        loader_error(l, e->rel, "", 0, 0, "the file is %lld bytes; %s may be at most %zu bytes",
                     size, what, max);
        return NULL;
    case READ_NOT_FILE:
        loader_error(l, e->rel, "", 0, 0, "not a regular file; remove it");
        return NULL;
    default:
        loader_error(l, e->rel, "", 0, 0, "cannot read the file: %s", strerror(errno));
        return NULL;
    }
}

static const char *ext_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && dot != name ? dot + 1 : "";
}

static char *stem_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    size_t n = dot && dot != name ? (size_t)(dot - name) : strlen(name);
    return strndup(name, n);
}

static json_t *parse_json(struct loader *l, const char *rel, const char *buf, size_t len)
{
    json_error_t err;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        loader_error(l, rel, "", err.line > 0 ? err.line : 0, err.column > 0 ? err.column : 0,
                     "invalid JSON: %s; fix the syntax", err.text);
    return root;
}

static bool utf8_text(struct loader *l, const char *rel, const char *buf, size_t len)
{
    size_t bad;
    if (!text_utf8_valid(buf, len, &bad)) {
        int line, col;
        text_line_col(buf, bad, &line, &col);
        loader_error(l, rel, "", line, col, "the file is not valid UTF-8; save it as UTF-8");
        return false;
    }
    if (memchr(buf, '\0', len)) {
        int line, col;
        text_line_col(buf, (size_t)((const char *)memchr(buf, '\0', len) - buf), &line, &col);
        loader_error(l, rel, "", line, col, "the file holds a NUL byte; it is not a text file");
        return false;
    }
    return true;
}

/* ---- per folder ---- */

static void load_templates(struct loader *l, struct entry *es, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *ext = ext_of(es[i].name);
        if (strcmp(ext, "txt") == 0) {
            char *stem = stem_of(es[i].name);
            bool has_html = false;
            for (size_t j = 0; stem && j < n && !has_html; j++) {
                char *s2 = stem_of(es[j].name);
                has_html = s2 && strcmp(s2, stem) == 0 && strcmp(ext_of(es[j].name), "html") == 0;
                free(s2);
            }
            if (!has_html)
                loader_error(l, es[i].rel, "", 0, 0,
                             "a text part without its HTML: add templates/%s.html or remove "
                             "this file",
                             stem ? stem : "");
            free(stem);
            continue;
        }
        if (strcmp(ext, "html") != 0) {
            loader_error(l, es[i].rel, "", 0, 0,
                         "templates/ holds <name>.html files (and <name>.txt text parts); "
                         "rename or remove this file");
            continue;
        }
        size_t len;
        char *html = read_entry(l, &es[i], BUNDLE_MAX_TEXT_BYTES, "a template", &len);
        if (!html)
            continue;
        char *stem = stem_of(es[i].name);
        if (!stem) {
            free(html);
            l->oom = true;
            return;
        }
        bool ok = utf8_text(l, es[i].rel, html, len);
        if (ok && len == 0) {
            loader_error(l, es[i].rel, "", 0, 0, "the template is empty; Klaviyo needs HTML");
            ok = false;
        }
        const char *problem = text_name_problem(stem);
        if (problem) {
            loader_error(l, es[i].rel, "", 0, 0, "the name \"%.80s\" %s", stem, problem);
            ok = false;
        }
        char *text = NULL;
        size_t tlen = 0;
        for (size_t j = 0; j < n; j++) {
            char *s2 = stem_of(es[j].name);
            bool match = s2 && strcmp(s2, stem) == 0 && strcmp(ext_of(es[j].name), "txt") == 0;
            free(s2);
            if (!match)
                continue;
            text = read_entry(l, &es[j], BUNDLE_MAX_TEXT_BYTES, "a text part", &tlen);
            if (!text || !utf8_text(l, es[j].rel, text, tlen))
                ok = false;
        }
        json_t *attrs = ok ? json_pack("{s:s, s:s, s:s%}", "name", stem, "editor_type", "CODE",
                                       "html", html, len)
                           : NULL;
        if (attrs && text && json_object_set_new(attrs, "text", json_stringn(text, tlen)) != 0)
            l->oom = true;
        if (ok && !attrs)
            l->oom = true;
        if (attrs)
            loader_add(l, ASSET_TEMPLATE, stem, es[i].rel, attrs);
        free(text);
        free(stem);
        free(html);
    }
}

static const char *image_type(const unsigned char *d, size_t n)
{
    if (n >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0)
        return "image/png";
    if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF)
        return "image/jpeg";
    if (n >= 6 && (memcmp(d, "GIF87a", 6) == 0 || memcmp(d, "GIF89a", 6) == 0))
        return "image/gif";
    return NULL;
}

static void load_image_file(struct loader *l, struct entry *e, const char *ext)
{
    const char *want = strcmp(ext, "png") == 0   ? "image/png"
                       : strcmp(ext, "gif") == 0 ? "image/gif"
                                                 : "image/jpeg";
    size_t len;
    char *buf =
        read_entry(l, e, BUNDLE_MAX_IMAGE_BYTES, "an image (Klaviyo's limit is 5 MB)", &len);
    if (!buf)
        return;
    const char *got = image_type((const unsigned char *)buf, len);
    char *stem = stem_of(e->name);
    const char *problem = stem ? text_name_problem(stem) : NULL;
    bool ok = stem != NULL;
    if (!got) {
        loader_error(l, e->rel, "", 0, 0,
                     "the file is not a PNG, JPEG or GIF image (its first bytes say so); "
                     "Klaviyo accepts only those");
        ok = false;
    } else if (strcmp(got, want) != 0) {
        loader_error(l, e->rel, "", 0, 0, "the file is a %s image but is named .%s; rename it",
                     got + 6, ext);
        ok = false;
    }
    if (problem) {
        loader_error(l, e->rel, "", 0, 0, "the name \"%.80s\" %s", stem, problem);
        ok = false;
    }
    if (!stem)
        l->oom = true;
    json_t *attrs = ok ? json_pack("{s:s}", "name", stem) : NULL;
    struct bundle_asset *a = attrs ? loader_add(l, ASSET_IMAGE, stem, e->rel, attrs) : NULL;
    if (a) {
        a->data = (const unsigned char *)buf;
        a->data_len = len;
        a->mime = got;
        buf = NULL;
    } else if (ok) {
        l->oom = true;
    }
    free(buf);
    free(stem);
}

static void load_json_file(struct loader *l, enum asset_kind kind, struct entry *e)
{
    size_t len;
    char *buf = read_entry(l, e, BUNDLE_MAX_TEXT_BYTES, "a JSON file", &len);
    if (!buf)
        return;
    json_t *root = parse_json(l, e->rel, buf, len);
    free(buf);
    if (!root)
        return;
    char *stem = stem_of(e->name);
    if (!stem) {
        json_decref(root);
        l->oom = true;
        return;
    }
    kinds_load_json(l, kind, e->rel, stem, root);
    free(stem);
}

static void load_catalog(struct loader *l, struct entry *es, size_t n)
{
    bool seen = false;
    for (size_t i = 0; i < n; i++) {
        bool js = strcmp(es[i].name, "items.json") == 0, csv = strcmp(es[i].name, "items.csv") == 0;
        if (!js && !csv) {
            loader_error(l, es[i].rel, "", 0, 0,
                         "catalog/ holds one file, items.json or items.csv; rename or remove "
                         "this file");
            continue;
        }
        if (seen) {
            loader_error(l, es[i].rel, "", 0, 0,
                         "catalog/ has both items.csv and items.json; keep one");
            continue;
        }
        seen = true;
        size_t len;
        char *buf = read_entry(l, &es[i], BUNDLE_MAX_CATALOG_BYTES, "a catalog file", &len);
        if (!buf)
            continue;
        if (js) {
            json_t *root = parse_json(l, es[i].rel, buf, len);
            if (root)
                catalog_load_json(l, es[i].rel, root);
        } else {
            catalog_load_csv(l, es[i].rel, buf, len);
        }
        free(buf);
    }
}

struct folder {
    const char *name;
    enum asset_kind kind;
};

static const struct folder folders[] = {
    {"templates", ASSET_TEMPLATE}, {"lists", ASSET_LIST},           {"segments", ASSET_SEGMENT},
    {"forms", ASSET_FORM},         {"campaigns", ASSET_CAMPAIGN},   {"flows", ASSET_FLOW},
    {"tags", ASSET_TAG},           {"coupons", ASSET_COUPON},       {"webhooks", ASSET_WEBHOOK},
    {"images", ASSET_IMAGE},       {"catalog", ASSET_CATALOG_ITEM},
};

static void load_folder(struct loader *l, const struct folder *f, const char *rel)
{
    size_t n;
    struct entry *es = list_dir(l, rel, &n);
    if (!es)
        return;
    size_t files = 0;
    for (size_t i = 0; i < n; i++) {
        if (es[i].is_dir)
            loader_error(l, es[i].rel, "", 0, 0,
                         "a folder inside %s/; bundles are one level deep, move its files up",
                         f->name);
        else
            es[files++] = es[i];
    }
    for (size_t i = files; i < n; i++) {
        free(es[i].name);
        free(es[i].path);
        free(es[i].rel);
    }
    if (f->kind == ASSET_TEMPLATE) {
        load_templates(l, es, files);
    } else if (f->kind == ASSET_CATALOG_ITEM) {
        load_catalog(l, es, files);
    } else {
        for (size_t i = 0; i < files && !l->oom; i++) {
            const char *ext = ext_of(es[i].name);
            if (f->kind == ASSET_IMAGE && (strcmp(ext, "png") == 0 || strcmp(ext, "jpg") == 0 ||
                                           strcmp(ext, "jpeg") == 0 || strcmp(ext, "gif") == 0))
                load_image_file(l, &es[i], ext);
            else if (strcmp(ext, "json") == 0)
                load_json_file(l, f->kind, &es[i]);
            else if (f->kind == ASSET_IMAGE)
                loader_error(l, es[i].rel, "", 0, 0,
                             "images/ holds .png, .jpg, .jpeg and .gif files and .json files "
                             "({\"url\": ...}); rename or remove this file");
            else
                loader_error(l, es[i].rel, "", 0, 0,
                             "%s/ holds .json files; rename or remove this file", f->name);
        }
    }
    entries_free(es, files);
}

/* ---- whole-bundle checks ---- */

static int asset_cmp(const void *pa, const void *pb)
{
    const struct bundle_asset *a = pa, *b = pb;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    int c = strcmp(a->name, b->name);
    return c ? c : strcmp(a->file, b->file);
}

static const struct bundle_asset *find_in(const struct bundle_asset *as, size_t n,
                                          enum asset_kind kind, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = as[mid].kind != kind ? (as[mid].kind < kind ? -1 : 1) : strcmp(as[mid].name, name);
        if (c == 0)
            return &as[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static const char *kind_folder(enum asset_kind k)
{
    for (size_t i = 0; i < CAD_ARRAY_LEN(folders); i++) {
        if (folders[i].kind == k)
            return folders[i].name;
    }
    return "";
}

/* Edges: for asset i, the indexes of the assets its refs name (SIZE_MAX when unresolved). */
static size_t **resolve(struct loader *l)
{
    size_t **edges = calloc(l->n_assets ? l->n_assets : 1, sizeof *edges);
    if (!edges) {
        l->oom = true;
        return NULL;
    }
    for (size_t i = 0; i < l->n_assets; i++) {
        struct bundle_asset *a = &l->assets[i];
        edges[i] = calloc(a->n_refs ? a->n_refs : 1, sizeof **edges);
        if (!edges[i]) {
            l->oom = true;
            continue;
        }
        for (size_t r = 0; r < a->n_refs; r++) {
            const struct bundle_ref *ref = &a->refs[r];
            const struct bundle_asset *t = find_in(l->assets, l->n_assets, ref->kind, ref->name);
            edges[i][r] = t ? (size_t)(t - l->assets) : SIZE_MAX;
            if (t)
                continue;
            char field[256];
            if (*ref->pointer)
                snprintf(field, sizeof field, "%s", ref->pointer);
            else
                snprintf(field, sizeof field, "/targets");
            if (ref->kind == ASSET_CATALOG_ITEM)
                loader_error(l, a->file, field, 0, 0,
                             "\"%s:%.80s\" refers to nothing: the bundle has no catalog item "
                             "with that external_id",
                             asset_kind_name(ref->kind), ref->name);
            else
                loader_error(l, a->file, field, 0, 0,
                             "\"%s:%.80s\" refers to nothing: the bundle has no %s named "
                             "\"%.80s\" (add it to %s/ or fix the name)",
                             asset_kind_name(ref->kind), ref->name, asset_kind_name(ref->kind),
                             ref->name, kind_folder(ref->kind));
        }
    }
    return edges;
}

static void edges_free(size_t **edges, size_t n)
{
    for (size_t i = 0; edges && i < n; i++)
        free(edges[i]);
    free(edges);
}

/* Iterative depth-first search: reports every cycle (one per back edge, naming it in full) and
 * fills order[] with a post-order, so that every asset follows what it refers to. Returns the
 * number of cycles found. */
static size_t order_assets(struct loader *l, size_t **edges, size_t *order)
{
    size_t n = l->n_assets, emitted = 0, cycles = 0;
    unsigned char *color = calloc(n ? n : 1, 1); /* 0 new, 1 on the stack, 2 done */
    size_t *stack = malloc((n ? n : 1) * sizeof *stack), *next = calloc(n ? n : 1, sizeof *next);
    if (!color || !stack || !next) {
        l->oom = true;
        goto out;
    }
    for (size_t s = 0; s < n; s++) {
        if (color[s])
            continue;
        size_t depth = 0;
        stack[depth++] = s;
        color[s] = 1;
        while (depth) {
            size_t u = stack[depth - 1];
            if (next[u] < l->assets[u].n_refs) {
                size_t v = edges[u][next[u]++];
                if (v == SIZE_MAX || color[v] == 2)
                    continue;
                if (color[v] == 0 && depth < n) {
                    color[v] = 1;
                    stack[depth++] = v;
                    continue;
                }
                /* A back edge: the cycle is v ... u on the stack, then v again. */
                cycles++;
                size_t from = depth - 1;
                while (from > 0 && stack[from] != v)
                    from--;
                char msg[480];
                size_t m = 0;
                for (size_t k = from; k < depth && m < sizeof msg; k++) {
                    const struct bundle_asset *x = &l->assets[stack[k]];
                    int w = snprintf(msg + m, sizeof msg - m, "%s:%s -> ", asset_kind_name(x->kind),
                                     x->name);
                    m += w > 0 ? (size_t)w : 0;
                }
                if (m < sizeof msg)
                    snprintf(msg + m, sizeof msg - m, "%s:%s", asset_kind_name(l->assets[v].kind),
                             l->assets[v].name);
                loader_error(l, l->assets[v].file, "", 0, 0,
                             "a dependency cycle: %s; Klaviyo needs each to exist before the "
                             "next, so break the cycle",
                             msg);
                continue;
            }
            color[u] = 2;
            order[emitted++] = u;
            depth--;
        }
    }
out:
    free(color);
    free(stack);
    free(next);
    return cycles;
}

static void hash_asset(struct loader *l, struct bundle_asset *a)
{
    char *canon = json_dumps(a->attrs, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!canon) {
        l->oom = true;
        return;
    }
    char data_hash[65] = "";
    if (a->data)
        sha256_hex(a->data, a->data_len, data_hash);
    char *all = NULL;
    int n = asprintf(&all, "%s\n%s", canon, data_hash);
    free(canon);
    if (n < 0) {
        l->oom = true;
        return;
    }
    sha256_hex(all, (size_t)n, a->content_hash);
    free(all);
}

static void hash_bundle(struct loader *l, char out[65])
{
    size_t cap = 1024, len = 0;
    char *buf = malloc(cap);
    for (size_t i = 0; buf && i < l->n_assets; i++) {
        const struct bundle_asset *a = &l->assets[i];
        size_t need = strlen(asset_kind_name(a->kind)) + strlen(a->name) + 64 + 4;
        if (len + need > cap) {
            while (len + need > cap)
                cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        len += (size_t)snprintf(buf + len, cap - len, "%s\t%s\t%s\n", asset_kind_name(a->kind),
                                a->name, a->content_hash);
    }
    if (!buf) {
        l->oom = true;
        return;
    }
    sha256_hex(buf, len, out);
    free(buf);
}

static void check_counts(struct loader *l)
{
    size_t templates = 0, tags = 0;
    for (size_t i = 0; i < l->n_assets; i++) {
        templates += l->assets[i].kind == ASSET_TEMPLATE;
        tags += l->assets[i].kind == ASSET_TAG;
    }
    if (templates > 1000)
        loader_error(l, "templates", "", 0, 0,
                     "%zu templates; Klaviyo refuses to create more than 1,000 in an account",
                     templates);
    if (tags > 500)
        loader_error(l, "tags", "", 0, 0, "%zu tags; an account may hold at most 500", tags);
}

static void loader_release(struct loader *l)
{
    for (size_t i = 0; i < l->n_assets; i++)
        loader_free_asset(&l->assets[i]);
    free(l->assets);
    l->assets = NULL;
    l->n_assets = 0;
    free(l->root);
    l->root = NULL;
}

int bundle_load(const char *dir, struct bundle **out, struct bundle_error *errors,
                size_t max_errors, size_t *n_errors)
{
    *out = NULL;
    if (n_errors)
        *n_errors = 0;
    struct loader l = {.dir = dir, .errors = errors, .max_errors = errors ? max_errors : 0};
    struct stat st;
    bool exists = stat(dir, &st) == 0;
    if (!exists || !S_ISDIR(st.st_mode)) {
        int e = errno, code = !exists && e == ENOENT ? CAD_ENOTFOUND : CAD_EINVAL;
        loader_error(&l, "", "", 0, 0, "%s is not a folder (%s); give the bundle's folder", dir,
                     exists ? "a file" : strerror(e));
        if (n_errors)
            *n_errors = l.n_errors;
        return cad_fail(code, "no bundle at %s", dir);
    }
    l.root = realpath(dir, NULL);
    if (!l.root) {
        int e = errno;
        loader_error(&l, "", "", 0, 0, "cannot resolve the folder %s: %s", dir, strerror(e));
        if (n_errors)
            *n_errors = l.n_errors;
        return cad_fail(CAD_EIO, "cannot resolve %s: %s", dir, strerror(e));
    }

    size_t n_top;
    struct entry *top = list_dir(&l, "", &n_top);
    for (size_t i = 0; i < n_top && !l.oom; i++) {
        const struct folder *f = NULL;
        for (size_t k = 0; k < CAD_ARRAY_LEN(folders) && !f; k++) {
            if (strcmp(top[i].name, folders[k].name) == 0)
                f = &folders[k];
        }
        if (f && top[i].is_dir)
            load_folder(&l, f, top[i].rel);
        else if (f || !top[i].is_dir)
            loader_error(&l, top[i].rel, "", 0, 0,
                         "files belong in a kind folder (templates/, lists/, segments/, forms/, "
                         "campaigns/, flows/, tags/, coupons/, webhooks/, images/, catalog/); "
                         "move or remove it");
        else
            loader_error(&l, top[i].rel, "", 0, 0,
                         "unknown folder; a bundle holds templates/, lists/, segments/, forms/, "
                         "campaigns/, flows/, tags/, coupons/, webhooks/, images/ and catalog/");
    }
    entries_free(top, n_top);

    struct bundle *b = NULL;
    size_t **edges = NULL, *order = NULL;
    if (l.oom)
        goto fail;
    if (l.n_assets)
        qsort(l.assets, l.n_assets, sizeof *l.assets, asset_cmp);
    for (size_t i = 1; i < l.n_assets; i++) {
        const struct bundle_asset *p = &l.assets[i - 1], *a = &l.assets[i];
        if (p->kind == a->kind && strcmp(p->name, a->name) == 0)
            loader_error(&l, a->file, "", 0, 0,
                         "the %s name \"%.80s\" is also used by %s; names must be unique "
                         "within a kind",
                         asset_kind_name(a->kind), a->name, p->file);
    }
    check_counts(&l);
    edges = resolve(&l);
    order = malloc((l.n_assets ? l.n_assets : 1) * sizeof *order);
    if (!edges || !order || l.oom) {
        l.oom = true;
        goto fail;
    }
    order_assets(&l, edges, order);
    if (l.oom || l.n_errors)
        goto fail;
    for (size_t i = 0; i < l.n_assets; i++)
        hash_asset(&l, &l.assets[i]);
    b = calloc(1, sizeof *b);
    char *bdir = strdup(dir);
    if (!b || !bdir) {
        free(bdir);
        l.oom = true;
        goto fail;
    }
    hash_bundle(&l, b->hash);
    if (l.oom) {
        free(bdir);
        goto fail;
    }
    b->dir = bdir;
    b->assets = l.assets;
    b->n_assets = l.n_assets;
    b->order = order;
    edges_free(edges, l.n_assets);
    free(l.root);
    *out = b;
    return CAD_OK;

fail:
    edges_free(edges, l.n_assets);
    free(order);
    free(b);
    loader_release(&l);
    if (n_errors)
        *n_errors = l.n_errors;
    if (l.oom)
        return cad_fail(CAD_ENOMEM, "out of memory loading the bundle %s", dir);
    return cad_fail(CAD_EINVAL, "the bundle %s has %zu problem%s", dir, l.n_errors,
                    l.n_errors == 1 ? "" : "s");
}

void bundle_free(struct bundle *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n_assets; i++)
        loader_free_asset((struct bundle_asset *)&b->assets[i]);
    free((void *)b->assets);
    free((void *)b->order);
    free((void *)b->dir);
    free(b);
}

const struct bundle_asset *bundle_find(const struct bundle *b, enum asset_kind kind,
                                       const char *name)
{
    return b && name ? find_in(b->assets, b->n_assets, kind, name) : NULL;
}

void bundle_error_format(const struct bundle_error *e, char *buf, size_t bufsize)
{
    if (!bufsize)
        return;
    char loc[300] = "";
    if (e->file[0] && e->line > 0 && e->column > 0)
        snprintf(loc, sizeof loc, "%s:%d:%d: ", e->file, e->line, e->column);
    else if (e->file[0] && e->line > 0)
        snprintf(loc, sizeof loc, "%s:%d: ", e->file, e->line);
    else if (e->file[0])
        snprintf(loc, sizeof loc, "%s: ", e->file);
    snprintf(buf, bufsize, "%s%s%s%s", loc, e->field, e->field[0] ? ": " : "", e->message);
}
