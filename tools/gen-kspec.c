/*
 * gen-kspec: turns Klaviyo's OpenAPI document into kspec_ops.c, the table behind kspec.h.
 *
 *   gen-kspec openapi-stable.json kspec_ops.c
 *
 * One row per operation, sorted by (path, method), with the rate limits parsed from
 * `x-klaviyo-ratelimit` ("3/s", "60/m", "100/d") and `x-klaviyo-scopes` joined by commas; plus two
 * precomputed indexes (route order for kspec_find, operationId order for kspec_by_id).
 *
 * The generator is strict on purpose: anything it does not recognise (a new rate-limit key, a
 * "10/h" limit, a path template with odd characters, a revision other than KLAVIYO_REVISION, two
 * templates that match the same requests) stops the build with a message naming the operation,
 * so a new spec is looked at by a person instead of being half-understood by the client.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "kspec/kspec.h"
#include "kspec/kspec_index.h"

/* Limits above this are not believable for one Klaviyo endpoint and are treated as a typo. */
#define RATE_MAX 1000000

static const char *spec_file;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "gen-kspec: %s: ", spec_file);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return -1;
}

static const char *const http_methods[][2] = {
    {"get", "GET"},         {"put", "PUT"},   {"post", "POST"},   {"delete", "DELETE"},
    {"options", "OPTIONS"}, {"head", "HEAD"}, {"patch", "PATCH"}, {"trace", "TRACE"},
};

/* Path-item members that are not operations and carry nothing the table needs. */
static const char *const path_item_skipped[] = {"summary", "description", "servers", "parameters"};

static const char *upper_method(const char *key)
{
    for (size_t i = 0; i < sizeof http_methods / sizeof http_methods[0]; i++)
        if (strcmp(key, http_methods[i][0]) == 0)
            return http_methods[i][1];
    return NULL;
}

static bool is_skipped_member(const char *key)
{
    if (strncmp(key, "x-", 2) == 0)
        return true;
    for (size_t i = 0; i < sizeof path_item_skipped / sizeof path_item_skipped[0]; i++)
        if (strcmp(key, path_item_skipped[i]) == 0)
            return true;
    return false;
}

static bool all_in(const char *s, size_t len, const char *allowed)
{
    for (size_t i = 0; i < len; i++)
        if (!s[i] || !strchr(allowed, s[i]))
            return false;
    return true;
}

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

/* "/seg/{param}/seg": no empty segments, literals of URL-unreserved characters, whole-segment
 * parameters with identifier names. Everything emitted into C string literals passes through
 * here or a similar check, so no escaping is ever needed. */
static bool valid_template(const char *path)
{
    if (path[0] != '/' || path[1] == '\0')
        return false;
    const char *p = path + 1;
    for (;;) {
        size_t len = strcspn(p, "/");
        if (len == 0)
            return false;
        if (p[0] == '{') {
            if (len < 3 || p[len - 1] != '}' || !all_in(p + 1, len - 2, ALNUM "_"))
                return false;
        } else if (!all_in(p, len, ALNUM "-._~")) {
            return false;
        }
        if (p[len] == '\0')
            return true;
        p += len + 1;
    }
}

/* "<n>/<unit>" with n a positive decimal without sign, spaces or leading zeros. */
static int parse_rate(const char *op_id, const char *key, json_t *v, char unit, int *out)
{
    const char *s = json_string_value(v);
    if (!s)
        return fail("%s: x-klaviyo-ratelimit.%s is not a string", op_id, key);
    long n = 0;
    size_t i = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        n = n * 10 + (s[i] - '0');
        if (n > RATE_MAX)
            break;
    }
    if (i == 0 || s[0] == '0' || n > RATE_MAX || s[i] != '/' || s[i + 1] != unit ||
        s[i + 2] != '\0')
        return fail("%s: x-klaviyo-ratelimit.%s is \"%s\"; expected \"<1..%d>/%c\"", op_id, key, s,
                    RATE_MAX, unit);
    *out = (int)n;
    return 0;
}

static int parse_ratelimit(const char *op_id, json_t *rl, struct kspec_op *op)
{
    if (!json_is_object(rl))
        return fail("%s: x-klaviyo-ratelimit is missing or not an object", op_id);
    const char *key;
    json_t *v;
    json_object_foreach(rl, key, v)
    {
        if (strcmp(key, "burst") != 0 && strcmp(key, "steady") != 0 && strcmp(key, "daily") != 0)
            return fail("%s: x-klaviyo-ratelimit has an unknown key \"%s\" (known: burst, "
                        "steady, daily)",
                        op_id, key);
    }
    json_t *burst = json_object_get(rl, "burst"), *steady = json_object_get(rl, "steady");
    json_t *daily = json_object_get(rl, "daily");
    if (!burst || !steady)
        return fail("%s: x-klaviyo-ratelimit needs both burst and steady", op_id);
    if (parse_rate(op_id, "burst", burst, 's', &op->burst_per_s) < 0 ||
        parse_rate(op_id, "steady", steady, 'm', &op->steady_per_min) < 0)
        return -1;
    op->daily = 0;
    if (daily && parse_rate(op_id, "daily", daily, 'd', &op->daily) < 0)
        return -1;
    return 0;
}

static int parse_scopes(const char *op_id, json_t *arr, struct kspec_op *op)
{
    if (!json_is_array(arr))
        return fail("%s: x-klaviyo-scopes is missing or not an array", op_id);
    size_t total = 1, i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        if (!s || !*s || !all_in(s, strlen(s), "abcdefghijklmnopqrstuvwxyz0123456789-:"))
            return fail("%s: x-klaviyo-scopes[%zu] is not a scope name like \"lists:read\"", op_id,
                        i);
        total += strlen(s) + 1;
    }
    char *joined = malloc(total);
    if (!joined)
        return fail("out of memory");
    size_t used = 0;
    json_array_foreach(arr, i, v)
    {
        const char *scope = json_string_value(v);
        size_t len = strlen(scope);
        if (i > 0)
            joined[used++] = ',';
        memcpy(joined + used, scope, len);
        used += len;
    }
    joined[used] = '\0';
    op->scopes = joined;
    return 0;
}

static int parse_operation(const char *path, const char *method, json_t *obj, struct kspec_op *op)
{
    if (!json_is_object(obj))
        return fail("%s %s: the operation is not an object", method, path);
    const char *op_id = json_string_value(json_object_get(obj, "operationId"));
    if (!op_id || !*op_id || !all_in(op_id, strlen(op_id), ALNUM "_"))
        return fail("%s %s: operationId is missing or not an identifier", method, path);
    *op = (struct kspec_op){.method = method, .path = path, .operation_id = op_id};
    if (parse_ratelimit(op_id, json_object_get(obj, "x-klaviyo-ratelimit"), op) < 0)
        return -1;
    return parse_scopes(op_id, json_object_get(obj, "x-klaviyo-scopes"), op);
}

struct table {
    struct kspec_op *ops;
    size_t n, cap;
};

static int collect(json_t *root, struct table *t)
{
    const char *version =
        json_string_value(json_object_get(json_object_get(root, "info"), "version"));
    if (!version)
        return fail("info.version is missing");
    if (strcmp(version, KLAVIYO_REVISION) != 0)
        return fail("info.version is \"%s\" but kspec.h pins KLAVIYO_REVISION \"%s\"; update "
                    "both together",
                    version, KLAVIYO_REVISION);
    json_t *paths = json_object_get(root, "paths");
    if (!json_is_object(paths) || json_object_size(paths) == 0)
        return fail("\"paths\" is missing or empty");
    const char *path;
    json_t *item;
    json_object_foreach(paths, path, item)
    {
        if (!valid_template(path))
            return fail("path \"%s\" is not a template this generator understands", path);
        if (!json_is_object(item))
            return fail("path \"%s\" is not an object", path);
        const char *key;
        json_t *obj;
        json_object_foreach(item, key, obj)
        {
            const char *method = upper_method(key);
            if (!method) {
                if (is_skipped_member(key))
                    continue;
                return fail("path \"%s\" has a member \"%s\" that is neither an HTTP method nor "
                            "a known path-item field",
                            path, key);
            }
            if (t->n == t->cap) {
                size_t cap = t->cap ? 2 * t->cap : 256;
                struct kspec_op *ops = realloc(t->ops, cap * sizeof *ops);
                if (!ops)
                    return fail("out of memory");
                memset(ops + t->cap, 0, (cap - t->cap) * sizeof *ops);
                t->ops = ops;
                t->cap = cap;
            }
            if (parse_operation(path, method, obj, &t->ops[t->n]) < 0)
                return -1;
            t->n++;
        }
    }
    if (t->n == 0 || t->n > KSPEC_INDEX_MAX)
        return fail("%zu operations; expected between 1 and %d", t->n, KSPEC_INDEX_MAX);
    return 0;
}

static int path_method_cmp(const void *x, const void *y)
{
    const struct kspec_op *a = x, *b = y;
    int c = strcmp(a->path, b->path);
    return c ? c : strcmp(a->method, b->method);
}

static const struct kspec_op *id_sort_base;

static int id_cmp(const void *x, const void *y)
{
    return strcmp(id_sort_base[*(const uint16_t *)x].operation_id,
                  id_sort_base[*(const uint16_t *)y].operation_id);
}

static int write_index(FILE *f, const char *name, const uint16_t *order, size_t n)
{
    fprintf(f, "\nconst uint16_t %s[] = {", name);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%u,", i % 16 == 0 ? "\n    " : " ", (unsigned)order[i]);
    return fprintf(f, "\n};\n") < 0 ? -1 : 0;
}

static int write_table(const struct table *t, const uint16_t *route, const uint16_t *ids,
                       const char *out)
{
    size_t tmp_len = strlen(out) + 5;
    char *tmp = malloc(tmp_len);
    if (!tmp)
        return fail("out of memory");
    snprintf(tmp, tmp_len, "%s.tmp", out);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        free(tmp);
        return fail("cannot write %s", out);
    }
    fprintf(f,
            "/* Generated by tools/gen-kspec.c from Klaviyo's OpenAPI document, revision %s. "
            "Do not edit. */\n"
            "#include \"kspec/kspec.h\"\n#include \"kspec/kspec_index.h\"\n\n"
            "/* method, path, operationId, burst/s, steady/min, daily (0: none), scopes */\n"
            "const struct kspec_op kspec_ops[] = {\n",
            KLAVIYO_REVISION);
    for (size_t i = 0; i < t->n; i++) {
        const struct kspec_op *op = &t->ops[i];
        fprintf(f, "    {\"%s\", \"%s\", \"%s\", %d, %d, %d, \"%s\"},\n", op->method, op->path,
                op->operation_id, op->burst_per_s, op->steady_per_min, op->daily, op->scopes);
    }
    fprintf(f, "};\n\nconst size_t kspec_ops_count = %zu;\n", t->n);
    int rc = write_index(f, "kspec_route_order", route, t->n);
    if (rc == 0)
        rc = write_index(f, "kspec_id_order", ids, t->n);
    if (fclose(f) != 0 || rc != 0 || rename(tmp, out) != 0) {
        remove(tmp);
        free(tmp);
        return fail("cannot write %s", out);
    }
    free(tmp);
    return 0;
}

static int sort_and_write(struct table *t, const char *out)
{
    if (!t->ops || t->n == 0)
        return fail("no operations");
    qsort(t->ops, t->n, sizeof *t->ops, path_method_cmp);
    uint16_t *route = malloc(t->n * sizeof *route), *ids = malloc(t->n * sizeof *ids);
    int rc = 0;
    if (!route || !ids) {
        rc = fail("out of memory");
    } else if (kspec_route_sort(t->ops, t->n, route) != CAD_OK) {
        rc = fail("%s", cad_errmsg());
    } else {
        for (size_t i = 0; i < t->n; i++)
            ids[i] = (uint16_t)i;
        id_sort_base = t->ops;
        qsort(ids, t->n, sizeof *ids, id_cmp);
        for (size_t i = 0; rc == 0 && i + 1 < t->n; i++)
            if (strcmp(t->ops[ids[i]].operation_id, t->ops[ids[i + 1]].operation_id) == 0)
                rc = fail("operationId %s is used twice", t->ops[ids[i]].operation_id);
        if (rc == 0)
            rc = write_table(t, route, ids, out);
    }
    free(route);
    free(ids);
    return rc;
}

static int generate(json_t *root, const char *out)
{
    struct table t = {0};
    int rc = collect(root, &t);
    if (rc == 0)
        rc = sort_and_write(&t, out);
    for (size_t i = 0; i < t.n; i++)
        free((char *)t.ops[i].scopes);
    free(t.ops);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: gen-kspec OPENAPI.json OUTPUT.c\n");
        return 2;
    }
    spec_file = argv[1];
    json_error_t err;
    json_t *root = json_load_file(spec_file, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        fail("line %d column %d: %s", err.line, err.column, err.text);
        return 1;
    }
    int rc = json_is_object(root) ? generate(root, argv[2]) : fail("the document is not an object");
    json_decref(root);
    return rc == 0 ? 0 : 1;
}
