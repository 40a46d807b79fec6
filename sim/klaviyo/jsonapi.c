/*
 * JSON:API documents as Klaviyo writes them: error bodies ({"errors":[{id,code,title,detail,
 * source}]}), resource objects with links.self, request-body validation, and collection
 * listing with Klaviyo's filter syntax (op(field,value), and(...)), sort and cursor pagination.
 *
 * Cursors are opaque to clients but simply encode an offset into the filtered, sorted result;
 * links.next is present only when more data exists, as the spec's schemas (next is a plain
 * string, not nullable) require.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

void japi_error(struct sim_req *r, int status, const char *code, const char *title,
                const char *detail, const char *pointer, const char *parameter)
{
    char id[37];
    sim_id_uuid(id);
    json_t *e =
        json_pack("{s:s,s:s,s:s,s:s}", "id", id, "code", code, "title", title, "detail", detail);
    if (pointer || parameter) {
        json_t *src = json_object();
        if (pointer)
            json_object_set_new(src, "pointer", json_string(pointer));
        if (parameter)
            json_object_set_new(src, "parameter", json_string(parameter));
        json_object_set_new(e, "source", src);
    }
    json_decref(r->resp);
    r->resp = json_pack("{s:[o]}", "errors", e);
    r->status = status;
}

void japi_bad(struct sim_req *r, const char *detail, const char *pointer)
{
    japi_error(r, 400, "invalid", "Invalid input.", detail, pointer, NULL);
}

void japi_not_found(struct sim_req *r, const char *what, const char *id)
{
    char detail[700];
    snprintf(detail, sizeof detail, "A %s with id %s does not exist.", what, id);
    japi_error(r, 404, "not_found", "Not found.", detail, NULL, NULL);
}

void japi_conflict(struct sim_req *r, const char *detail)
{
    japi_error(r, 409, "duplicate_error", "Conflict.", detail, "/data", NULL);
}

static void url_encode(const char *s, char *out, size_t outsz)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t w = 0;
    for (; *s && w + 4 < outsz; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '$' || c == ':') {
            out[w++] = (char)c;
        } else {
            out[w++] = '%';
            out[w++] = hex[c >> 4];
            out[w++] = hex[c & 15];
        }
    }
    out[w] = 0;
}

static bool list_contains(const char *csv, const char *word);

/* A resource as its GET shows it. A sparse fieldset (`fields[TYPE]=a,b`, JSON:API) keeps only
 * the attributes and relationships it names. */
json_t *japi_render(struct sim_req *r, const struct sim_obj *o, const char *path_prefix)
{
    json_t *d;
    char param[128];
    const char *type = json_string_value(json_object_get(o->doc, "type"));
    snprintf(param, sizeof param, "fields[%s]", type ? type : "");
    const char *fields = r ? req_query(r, param) : NULL;
    if (fields && *fields) {
        d = json_pack("{s:O,s:O}", "type", json_object_get(o->doc, "type"), "id",
                      json_object_get(o->doc, "id"));
        const char *parts[] = {"attributes", "relationships"};
        for (size_t p = 0; p < 2; p++) {
            json_t *src = json_object_get(o->doc, parts[p]);
            if (!src)
                continue;
            json_t *keep = json_object();
            const char *k;
            json_t *v;
            json_object_foreach(src, k, v)
            {
                if (list_contains(fields, k))
                    json_object_set(keep, k, v);
            }
            if (p == 0 || json_object_size(keep))
                json_object_set_new(d, parts[p], keep);
            else
                json_decref(keep);
        }
    } else {
        d = json_deep_copy(o->doc);
        json_object_del(d, "_");
    }
    char enc[1024], url[1200];
    url_encode(o->id, enc, sizeof enc);
    snprintf(url, sizeof url, "%s%s/%s/", sim.base_url, path_prefix, enc);
    json_object_set_new(d, "links", json_pack("{s:s}", "self", url));
    return d;
}

struct qbuf {
    char *buf;
    size_t len, cap;
    const char *skip;
};

static void qbuf_add(struct qbuf *q, const char *s)
{
    size_t n = strlen(s);
    if (q->len + n + 1 > q->cap) {
        q->cap = (q->len + n + 1) * 2;
        q->buf = realloc(q->buf, q->cap);
        if (!q->buf)
            abort();
    }
    memcpy(q->buf + q->len, s, n + 1);
    q->len += n;
}

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    (void)kind;
    struct qbuf *q = cls;
    if (q->skip && strcmp(key, q->skip) == 0)
        return MHD_YES;
    char enc[4096];
    qbuf_add(q, q->len ? "&" : "?");
    url_encode(key, enc, sizeof enc);
    qbuf_add(q, enc);
    if (value) {
        qbuf_add(q, "=");
        url_encode(value, enc, sizeof enc);
        qbuf_add(q, enc);
    }
    return MHD_YES;
}

char *japi_self_url(struct sim_req *r, const char *cursor)
{
    struct qbuf q = {0};
    q.skip = cursor ? "page[cursor]" : NULL;
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, add_arg, &q);
    if (cursor) {
        qbuf_add(&q, q.len ? "&" : "?");
        qbuf_add(&q, "page%5Bcursor%5D=");
        qbuf_add(&q, cursor);
    }
    char *path_enc = malloc(strlen(r->path) * 3 + 1);
    if (!path_enc)
        abort();
    size_t w = 0;
    for (const char *p = r->path; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == '%' || c == '?' || c == '#' || c >= 0x7f) {
            w += (size_t)sprintf(path_enc + w, "%%%02X", c);
        } else {
            path_enc[w++] = (char)c;
        }
    }
    path_enc[w] = 0;
    size_t n = strlen(sim.base_url) + w + q.len + 1;
    char *url = malloc(n);
    if (!url)
        abort();
    snprintf(url, n, "%s%s%s", sim.base_url, path_enc, q.buf ? q.buf : "");
    free(path_enc);
    free(q.buf);
    return url;
}

void japi_reply_doc(struct sim_req *r, int status, json_t *data)
{
    char *self = japi_self_url(r, NULL);
    json_decref(r->resp);
    r->resp = json_pack("{s:o,s:{s:s}}", "data", data, "links", "self", self);
    free(self);
    r->status = status;
}

void japi_reply_obj(struct sim_req *r, int status, const struct sim_obj *o, const char *path_prefix)
{
    japi_reply_doc(r, status, japi_render(r, o, path_prefix));
}

void japi_no_content(struct sim_req *r)
{
    json_decref(r->resp);
    r->resp = NULL;
    r->status = 204;
}

json_t *japi_body_data(struct sim_req *r, const char *type, bool need_id)
{
    if (!r->body) {
        japi_bad(r, "The request body is missing or is not valid JSON.", "/data");
        return NULL;
    }
    json_t *data = json_object_get(r->body, "data");
    if (!json_is_object(data)) {
        japi_bad(r, "The request body must contain a 'data' object.", "/data");
        return NULL;
    }
    const char *t = json_string_value(json_object_get(data, "type"));
    if (!t || strcmp(t, type) != 0) {
        char d[200];
        snprintf(d, sizeof d, "'data.type' must be '%s'.", type);
        japi_error(r, 409, "conflict", "Conflict.", d, "/data/type", NULL);
        return NULL;
    }
    json_t *id = json_object_get(data, "id");
    if (need_id && (!json_is_string(id) || !*json_string_value(id))) {
        japi_bad(r, "'data.id' is required.", "/data/id");
        return NULL;
    }
    if (need_id && r->nparams > 0 && strstr(r->op->path, "/relationships/") == NULL &&
        strcmp(json_string_value(id), r->params[0]) != 0) {
        japi_error(r, 409, "conflict", "Conflict.",
                   "The id in the body does not match the id in the URL.", "/data/id", NULL);
        return NULL;
    }
    json_t *attrs = json_object_get(data, "attributes");
    if (attrs && !json_is_object(attrs)) {
        japi_bad(r, "'data.attributes' must be an object.", "/data/attributes");
        return NULL;
    }
    return data;
}

json_t *japi_attrs(json_t *data)
{
    json_t *a = json_object_get(data, "attributes");
    if (!json_is_object(a)) {
        a = json_object();
        json_object_set_new(data, "attributes", a);
    }
    return a;
}

const char *japi_req_str(struct sim_req *r, json_t *attrs, const char *name)
{
    const char *v = json_string_value(json_object_get(attrs, name));
    if (!v || !*v) {
        char d[200], p[200];
        snprintf(d, sizeof d, "'%s' is a required field.", name);
        snprintf(p, sizeof p, "/data/attributes/%s", name);
        japi_bad(r, d, p);
        return NULL;
    }
    return v;
}

const char *japi_rel_id(json_t *data, const char *rel, const char *type)
{
    json_t *l =
        json_object_get(json_object_get(json_object_get(data, "relationships"), rel), "data");
    const char *t = json_string_value(json_object_get(l, "type"));
    if (!t || strcmp(t, type) != 0)
        return NULL;
    return json_string_value(json_object_get(l, "id"));
}

json_t *japi_new_doc(const char *type, const char *id)
{
    return json_pack("{s:s,s:s,s:{}}", "type", type, "id", id, "attributes");
}

void japi_touch(json_t *doc, const char *created_key, const char *updated_key, bool create)
{
    char ts[32];
    sim_timestamp(ts);
    json_t *a = json_object_get(doc, "attributes");
    if (create && created_key)
        json_object_set_new(a, created_key, json_string(ts));
    if (updated_key)
        json_object_set_new(a, updated_key, json_string(ts));
}

json_t *japi_linkage(const char *type, const char *id)
{
    return json_pack("{s:s,s:s}", "type", type, "id", id);
}

void japi_copy_keys(json_t *dst, json_t *src, const char *keys)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", keys);
    char *save = NULL;
    for (char *k = strtok_r(buf, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
        json_t *v = json_object_get(src, k);
        if (v)
            json_object_set(dst, k, v);
    }
}

/* ---- filters ---- */

#define MAX_CLAUSES 8

struct clause {
    char op[32];
    char field[64];
    json_t *value; /* scalar, or array when is_list */
    bool is_list;
};

struct filter {
    struct clause c[MAX_CLAUSES];
    int n;
};

static void filter_free(struct filter *f)
{
    for (int i = 0; i < f->n; i++)
        json_decref(f->c[i].value);
}

static void skip_ws(const char **p)
{
    while (**p == ' ')
        (*p)++;
}

static json_t *parse_scalar(const char **p)
{
    skip_ws(p);
    if (**p == '\'' || **p == '"') {
        char q = **p;
        const char *s = ++(*p);
        while (**p && **p != q)
            (*p)++;
        if (**p != q)
            return NULL;
        json_t *v = json_stringn(s, (size_t)(*p - s));
        (*p)++;
        return v;
    }
    const char *s = *p;
    while (**p && **p != ',' && **p != ')' && **p != ']')
        (*p)++;
    size_t n = (size_t)(*p - s);
    while (n && s[n - 1] == ' ')
        n--;
    if (n == 0)
        return NULL;
    char tok[128];
    if (n >= sizeof tok)
        return NULL;
    memcpy(tok, s, n);
    tok[n] = 0;
    if (strcmp(tok, "true") == 0)
        return json_true();
    if (strcmp(tok, "false") == 0)
        return json_false();
    if (strcmp(tok, "null") == 0)
        return json_null();
    char *end;
    double d = strtod(tok, &end);
    if (*end == 0)
        return json_real(d);
    return json_string(tok); /* unquoted datetimes */
}

static bool parse_clause(const char **p, struct filter *f)
{
    skip_ws(p);
    char name[32];
    size_t n = 0;
    while (**p && **p != '(' && n + 1 < sizeof name)
        name[n++] = *(*p)++;
    name[n] = 0;
    if (**p != '(')
        return false;
    (*p)++;
    if (strcmp(name, "and") == 0) {
        for (;;) {
            if (!parse_clause(p, f))
                return false;
            skip_ws(p);
            if (**p == ',') {
                (*p)++;
                continue;
            }
            if (**p == ')') {
                (*p)++;
                return true;
            }
            return false;
        }
    }
    if (f->n >= MAX_CLAUSES)
        return false;
    struct clause *c = &f->c[f->n];
    memset(c, 0, sizeof *c);
    snprintf(c->op, sizeof c->op, "%s", name);
    skip_ws(p);
    n = 0;
    while (**p && **p != ',' && **p != ')' && n + 1 < sizeof c->field)
        c->field[n++] = *(*p)++;
    while (n && c->field[n - 1] == ' ')
        n--;
    c->field[n] = 0;
    if (**p != ',' || n == 0)
        return false;
    (*p)++;
    skip_ws(p);
    if (**p == '[') {
        (*p)++;
        c->is_list = true;
        c->value = json_array();
        skip_ws(p);
        while (**p != ']') {
            json_t *v = parse_scalar(p);
            if (!v) {
                json_decref(c->value);
                return false;
            }
            json_array_append_new(c->value, v);
            skip_ws(p);
            if (**p == ',')
                (*p)++;
            else if (**p != ']') {
                json_decref(c->value);
                return false;
            }
        }
        (*p)++;
    } else {
        c->value = parse_scalar(p);
        if (!c->value)
            return false;
    }
    skip_ws(p);
    if (**p != ')') {
        json_decref(c->value);
        return false;
    }
    (*p)++;
    f->n++;
    return true;
}

/* The value a filter field names on an object: id, a private "_" value, an attribute, or a
 * relationship's linked id ("coupon.id"). */
static json_t *field_value(const struct sim_obj *o, const char *field)
{
    if (strcmp(field, "id") == 0 || strcmp(field, "ids") == 0)
        return json_object_get(o->doc, "id");
    json_t *v = json_object_get(json_object_get(o->doc, "_"), field);
    if (v)
        return v;
    v = json_object_get(json_object_get(o->doc, "attributes"), field);
    if (v)
        return v;
    const char *dot = strchr(field, '.');
    if (dot && strcmp(dot, ".id") == 0) {
        char rel[64];
        snprintf(rel, sizeof rel, "%.*s", (int)(dot - field), field);
        json_t *d =
            json_object_get(json_object_get(json_object_get(o->doc, "relationships"), rel), "data");
        if (json_is_object(d))
            return json_object_get(d, "id");
        return d;
    }
    return NULL;
}

static int cmp_json(json_t *a, json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        double x = json_number_value(a), y = json_number_value(b);
        return x < y ? -1 : x > y;
    }
    if (json_is_string(a) && json_is_string(b))
        return strcmp(json_string_value(a), json_string_value(b));
    if (json_is_boolean(a) && json_is_boolean(b))
        return json_is_true(a) == json_is_true(b) ? 0 : 1;
    if (json_is_null(a) && json_is_null(b))
        return 0;
    return 2;
}

static bool match_scalar(const char *op, json_t *have, json_t *want)
{
    if (!have)
        return json_is_null(want);
    if (json_is_array(have)) {
        for (size_t i = 0; i < json_array_size(have); i++)
            if (match_scalar(op, json_array_get(have, i), want))
                return true;
        return false;
    }
    if (strcmp(op, "equals") == 0)
        return cmp_json(have, want) == 0;
    if (strcmp(op, "contains") == 0 || strcmp(op, "starts-with") == 0 ||
        strcmp(op, "ends-with") == 0) {
        const char *h = json_string_value(have), *w = json_string_value(want);
        if (!h || !w)
            return false;
        size_t hl = strlen(h), wl = strlen(w);
        if (op[0] == 'c')
            return strstr(h, w) != NULL;
        if (op[0] == 's')
            return strncmp(h, w, wl) == 0;
        return hl >= wl && strcmp(h + hl - wl, w) == 0;
    }
    int c = cmp_json(have, want);
    if (c == 2)
        return false;
    if (strcmp(op, "greater-than") == 0)
        return c > 0;
    if (strcmp(op, "greater-or-equal") == 0)
        return c >= 0;
    if (strcmp(op, "less-than") == 0)
        return c < 0;
    if (strcmp(op, "less-or-equal") == 0)
        return c <= 0;
    return false;
}

static bool match_clause(const struct clause *c, const struct sim_obj *o)
{
    json_t *have = field_value(o, c->field);
    if (c->is_list) {
        for (size_t i = 0; i < json_array_size(c->value); i++)
            if (match_scalar("equals", have, json_array_get(c->value, i)))
                return true;
        return false;
    }
    if (strcmp(c->op, "has") == 0)
        return have && !json_is_null(have);
    return match_scalar(c->op, have, c->value);
}

/* Checks each clause against `allowed` ("name:equals,contains,any[];id:any[]"): an operator
 * with [] takes a bracketed list, one without takes a scalar. */
static bool filter_allowed(const char *allowed, const struct clause *c, char *why, size_t whysz)
{
    char spec[512];
    snprintf(spec, sizeof spec, "%s", allowed ? allowed : "");
    char *save = NULL;
    for (char *f = strtok_r(spec, ";", &save); f; f = strtok_r(NULL, ";", &save)) {
        char *colon = strchr(f, ':');
        if (!colon)
            continue;
        *colon = 0;
        if (strcmp(f, c->field) != 0)
            continue;
        char *save2 = NULL;
        for (char *op = strtok_r(colon + 1, ",", &save2); op; op = strtok_r(NULL, ",", &save2)) {
            size_t ol = strlen(op);
            bool list = ol > 2 && strcmp(op + ol - 2, "[]") == 0;
            if (list)
                op[ol - 2] = 0;
            if (strcmp(op, c->op) == 0 && list == c->is_list)
                return true;
        }
        snprintf(why, whysz, "The operator '%s' is not valid for the field '%s'%s.", c->op,
                 c->field, c->is_list ? " with a list value" : "");
        return false;
    }
    snprintf(why, whysz, "'%s' is not a valid field for the resource.", c->field);
    return false;
}

struct sort_ctx {
    const char *field;
    bool desc;
};

static int sort_cmp(const void *a, const void *b, void *arg)
{
    const struct sort_ctx *s = arg;
    const struct sim_obj *x = *(const struct sim_obj *const *)a;
    const struct sim_obj *y = *(const struct sim_obj *const *)b;
    json_t *vx = field_value(x, s->field), *vy = field_value(y, s->field);
    int c = 0;
    if (vx && vy)
        c = cmp_json(vx, vy);
    else
        c = vx ? 1 : vy ? -1 : 0;
    if (c == 2)
        c = 0;
    return s->desc ? -c : c;
}

static bool list_contains(const char *csv, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = csv; p && *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == wl && strncmp(p, word, n) == 0)
            return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

void japi_list(struct sim_req *r, const struct japi_list_spec *spec)
{
    struct filter f = {0};
    const char *fs = req_query(r, "filter");
    char why[300];
    if (fs && *fs) {
        if (!spec->filters) {
            japi_error(r, 400, "invalid", "Invalid input.",
                       "This endpoint does not support filtering.", NULL, "filter");
            return;
        }
        const char *p = fs;
        if (!parse_clause(&p, &f) || (skip_ws(&p), *p != 0)) {
            filter_free(&f);
            snprintf(why, sizeof why, "Invalid filter provided: '%s'.", fs);
            japi_error(r, 400, "invalid", "Invalid input.", why, NULL, "filter");
            return;
        }
        for (int i = 0; i < f.n; i++) {
            if (!filter_allowed(spec->filters, &f.c[i], why, sizeof why)) {
                filter_free(&f);
                japi_error(r, 400, "invalid", "Invalid input.", why, NULL, "filter");
                return;
            }
        }
    }
    if (spec->required) {
        bool found = false;
        for (int i = 0; i < f.n; i++)
            if (strcmp(f.c[i].field, spec->required) == 0 ||
                (spec->required_alt && strcmp(f.c[i].field, spec->required_alt) == 0))
                found = true;
        if (!found) {
            filter_free(&f);
            snprintf(why, sizeof why, "A filter on '%s'%s%s is required.", spec->required,
                     spec->required_alt ? " or " : "",
                     spec->required_alt ? spec->required_alt : "");
            japi_error(r, 400, "invalid", "Invalid input.", why, NULL, "filter");
            return;
        }
    }
    long size = spec->default_size;
    const char *ps = req_query(r, "page[size]");
    if (ps) {
        char *end;
        size = strtol(ps, &end, 10);
        if (!spec->paginated || *end || size < 1 || size > spec->max_size) {
            filter_free(&f);
            if (spec->paginated)
                snprintf(why, sizeof why, "Page size must be between 1 and %d.", spec->max_size);
            else
                snprintf(why, sizeof why, "This endpoint does not accept page[size].");
            japi_error(r, 400, "invalid", "Invalid input.", why, NULL, "page[size]");
            return;
        }
    }
    long offset = 0;
    const char *cur = req_query(r, "page[cursor]");
    if (cur && *cur) {
        char *end;
        offset = strtol(cur + (strncmp(cur, "o", 1) == 0 ? 1 : 0), &end, 10);
        if (strncmp(cur, "o", 1) != 0 || *end || offset < 0) {
            filter_free(&f);
            japi_error(r, 400, "invalid", "Invalid input.", "Invalid page cursor.", NULL,
                       "page[cursor]");
            return;
        }
    }
    struct sort_ctx sc = {0};
    const char *sort = req_query(r, "sort");
    if (sort && *sort) {
        sc.desc = sort[0] == '-';
        sc.field = sort + (sc.desc ? 1 : 0);
        if (!spec->sorts || !list_contains(spec->sorts, sc.field)) {
            filter_free(&f);
            snprintf(why, sizeof why, "'%s' is not a valid sort field.", sc.field);
            japi_error(r, 400, "invalid", "Invalid input.", why, NULL, "sort");
            return;
        }
    }

    struct sim_table *t = store_table(r->acct, spec->type);
    struct sim_obj **hits = malloc((t->n + 1) * sizeof(struct sim_obj *));
    if (!hits)
        abort();
    size_t nh = 0;
    const struct clause *by_id = NULL; /* any(ids,[...]) / equals(id,...): the index, not a scan */
    for (int k = 0; k < f.n && !by_id; k++)
        if ((strcmp(f.c[k].field, "id") == 0 || strcmp(f.c[k].field, "ids") == 0) &&
            (strcmp(f.c[k].op, "any") == 0 || strcmp(f.c[k].op, "equals") == 0))
            by_id = &f.c[k];
    if (by_id) {
        size_t nv = by_id->is_list ? json_array_size(by_id->value) : 1;
        for (size_t v = 0; v < nv; v++) {
            const json_t *val = by_id->is_list ? json_array_get(by_id->value, v) : by_id->value;
            struct sim_obj *o =
                json_is_string(val) ? store_get(r->acct, spec->type, json_string_value(val)) : NULL;
            if (!o || o->deleted || (spec->visible && !spec->visible(o)))
                continue;
            bool ok = true, dup = false;
            for (int k = 0; k < f.n && ok; k++)
                ok = match_clause(&f.c[k], o);
            for (size_t h = 0; h < nh && !dup; h++)
                dup = hits[h] == o;
            if (ok && !dup)
                hits[nh++] = o;
        }
        /* in insertion order, as the scan gives them */
        for (size_t i = 1; i < nh; i++)
            for (size_t k = i; k > 0 && hits[k - 1]->pos > hits[k]->pos; k--) {
                struct sim_obj *x = hits[k];
                hits[k] = hits[k - 1];
                hits[k - 1] = x;
            }
    } else {
        for (size_t i = 0; i < t->n; i++) {
            struct sim_obj *o = t->items[i];
            if (o->deleted || (spec->visible && !spec->visible(o)))
                continue;
            bool ok = true;
            for (int k = 0; k < f.n && ok; k++)
                ok = match_clause(&f.c[k], o);
            if (ok)
                hits[nh++] = o;
        }
    }
    filter_free(&f);
    if (sc.field)
        qsort_r(hits, nh, sizeof(struct sim_obj *), sort_cmp, &sc);

    json_t *data = json_array();
    size_t end = nh;
    if (spec->paginated && (size_t)offset + (size_t)size < nh)
        end = (size_t)offset + (size_t)size;
    for (size_t i = (size_t)offset; i < end; i++)
        json_array_append_new(data, spec->render ? spec->render(r, hits[i])
                                                 : japi_render(r, hits[i], spec->path_prefix));
    free(hits);
    char *self = japi_self_url(r, NULL);
    json_t *links = json_pack("{s:s}", "self", self);
    free(self);
    if (end < nh) {
        char c[32];
        snprintf(c, sizeof c, "o%zu", end);
        char *next = japi_self_url(r, c);
        json_object_set_new(links, "next", json_string(next));
        free(next);
    }
    if (offset > 0) {
        char c[32];
        snprintf(c, sizeof c, "o%ld", offset > size ? offset - size : 0);
        char *prev = japi_self_url(r, c);
        json_object_set_new(links, "prev", json_string(prev));
        free(prev);
    }
    json_decref(r->resp);
    r->resp = json_pack("{s:o,s:o}", "data", data, "links", links);
    r->status = 200;
}

struct sim_obj *japi_find(struct sim_req *r, const char *type, const char *what)
{
    struct sim_obj *o = store_get(r->acct, type, r->params[0]);
    if (!o)
        japi_not_found(r, what, r->params[0]);
    return o;
}

void japi_delete(struct sim_req *r, const char *type, const char *what)
{
    if (japi_find(r, type, what)) {
        store_delete(r->acct, type, r->params[0]);
        japi_no_content(r);
    }
}

bool japi_wants(struct sim_req *r, const char *param, const char *word)
{
    const char *v = req_query(r, param);
    return v && list_contains(v, word);
}

json_t *japi_priv(json_t *doc)
{
    json_t *p = json_object_get(doc, "_");
    if (!p) {
        p = json_object();
        json_object_set_new(doc, "_", p);
    }
    return p;
}
