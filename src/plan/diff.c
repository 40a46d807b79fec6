/*
 * Diffs for people reading a plan: unified diffs (3 lines of context) for HTML and text, and a
 * field-by-field list for JSON attributes ("/definition/condition_groups/0: ... -> ...").
 *
 * The line diff is a longest-common-subsequence table, which is exact and simple; templates are
 * small, and above a size where the table would be large the diff says the whole text changes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/plan_int.h"

struct sbuf {
    char *p;
    size_t n, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    sb_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static char *sb_done(struct sbuf *b)
{
    if (!b->p)
        return strdup("");
    return b->p;
}

struct lines {
    const char **l;
    size_t *len;
    size_t n;
};

static void split_lines(const char *s, struct lines *out)
{
    size_t cap = 16;
    out->l = malloc(cap * sizeof *out->l);
    out->len = malloc(cap * sizeof *out->len);
    out->n = 0;
    if (!out->l || !out->len)
        return;
    while (s && *s) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (out->n == cap) {
            cap *= 2;
            const char **l = realloc(out->l, cap * sizeof *l);
            size_t *len = realloc(out->len, cap * sizeof *len);
            if (l)
                out->l = l;
            if (len)
                out->len = len;
            if (!l || !len)
                return;
        }
        out->l[out->n] = s;
        out->len[out->n] = n;
        out->n++;
        s = e ? e + 1 : s + n;
    }
}

static bool line_eq(const struct lines *a, size_t i, const struct lines *b, size_t j)
{
    return a->len[i] == b->len[j] && memcmp(a->l[i], b->l[j], a->len[i]) == 0;
}

#define DIFF_CELLS_MAX ((size_t)4 * 1024 * 1024)

char *diff_unified(const char *label, const char *a, const char *b)
{
    struct sbuf out = {0};
    if (strcmp(a ? a : "", b ? b : "") == 0)
        return strdup("");
    struct lines la = {0}, lb = {0};
    split_lines(a, &la);
    split_lines(b, &lb);
    size_t n = la.n, m = lb.n;
    sb_printf(&out, "--- %s (in Klaviyo)\n+++ %s (in the bundle)\n", label, label);
    if ((n + 1) * (m + 1) > DIFF_CELLS_MAX || !la.l || !lb.l) {
        sb_printf(&out, "@@ the whole text changes (%zu lines -> %zu lines) @@\n", n, m);
        goto done;
    }
    /* lcs[i][j] = LCS length of a[i..] and b[j..] */
    unsigned *lcs = calloc((n + 1) * (m + 1), sizeof *lcs);
    if (!lcs) {
        sb_printf(&out, "@@ the whole text changes @@\n");
        goto done;
    }
#define L(i, j) lcs[(i) * (m + 1) + (j)]
    for (size_t i = n; i-- > 0;)
        for (size_t j = m; j-- > 0;)
            L(i, j) = line_eq(&la, i, &lb, j)      ? L(i + 1, j + 1) + 1
                      : L(i + 1, j) >= L(i, j + 1) ? L(i + 1, j)
                                                   : L(i, j + 1);
    /* The edit script as ops: ' ' keep, '-' delete, '+' insert, with line indexes. */
    size_t cap = n + m + 1, k = 0;
    char *op = malloc(cap);
    size_t *ia = malloc(cap * sizeof *ia), *ib = malloc(cap * sizeof *ib);
    if (!op || !ia || !ib) {
        free(op);
        free(ia);
        free(ib);
        free(lcs);
        goto done;
    }
    size_t i = 0, j = 0;
    while (i < n || j < m) {
        if (i < n && j < m && line_eq(&la, i, &lb, j)) {
            op[k] = ' ', ia[k] = i++, ib[k] = j++;
        } else if (j < m && (i == n || L(i, j + 1) >= L(i + 1, j))) {
            op[k] = '+', ia[k] = i, ib[k] = j++;
        } else {
            op[k] = '-', ia[k] = i++, ib[k] = j;
        }
        k++;
    }
#undef L
    free(lcs);
    /* Hunks: changes with 3 lines of context around them. */
    size_t x = 0;
    while (x < k) {
        while (x < k && op[x] == ' ')
            x++;
        if (x >= k)
            break;
        size_t start = x >= 3 ? x - 3 : 0, end = x;
        for (;;) {
            while (end < k && op[end] != ' ')
                end++;
            size_t run = 0;
            while (end + run < k && op[end + run] == ' ')
                run++;
            if (end + run >= k || run > 6) {
                end += run < 3 ? run : 3;
                break;
            }
            end += run;
        }
        size_t a0 = ia[start], b0 = ib[start], na = 0, nb = 0;
        for (size_t y = start; y < end; y++) {
            na += op[y] != '+';
            nb += op[y] != '-';
        }
        sb_printf(&out, "@@ -%zu,%zu +%zu,%zu @@\n", a0 + 1, na, b0 + 1, nb);
        for (size_t y = start; y < end; y++) {
            const struct lines *src = op[y] == '+' ? &lb : &la;
            size_t idx = op[y] == '+' ? ib[y] : ia[y];
            sb_add(&out, &op[y], 1);
            sb_add(&out, src->l[idx], src->len[idx]);
            sb_add(&out, "\n", 1);
        }
        x = end;
    }
    free(op);
    free(ia);
    free(ib);
done:
    free(la.l);
    free(la.len);
    free(lb.l);
    free(lb.len);
    return sb_done(&out);
}

static void short_json(const json_t *v, char *buf, size_t n)
{
    if (!v) {
        snprintf(buf, n, "(absent)");
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!s) {
        snprintf(buf, n, "?");
        return;
    }
    if (strlen(s) > 160)
        snprintf(buf, n, "%.150s… (%zu bytes)", s, strlen(s));
    else
        snprintf(buf, n, "%s", s);
    free(s);
}

static void diff_value(struct sbuf *b, const char *path, const json_t *want, const json_t *live)
{
    if (json_is_object(want) && json_is_object(live)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)want, k, v)
        {
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", path, k);
            diff_value(b, p, v, json_object_get(live, k));
        }
        return;
    }
    if (json_is_array(want) && json_is_array(live) &&
        json_array_size(want) == json_array_size(live)) {
        for (size_t i = 0; i < json_array_size(want); i++) {
            char p[1024];
            snprintf(p, sizeof p, "%s/%zu", path, i);
            diff_value(b, p, json_array_get(want, i), json_array_get(live, i));
        }
        return;
    }
    if (live && json_is_number(want) && json_is_number(live) &&
        json_number_value(want) == json_number_value(live))
        return;
    if (live && json_equal((json_t *)want, (json_t *)live))
        return;
    char w[256], l[256];
    short_json(want, w, sizeof w);
    short_json(live, l, sizeof l);
    sb_printf(b, "  %s: %s -> %s\n", path, l, w);
}

char *diff_attrs(const struct kind_info *ki, const json_t *want, const json_t *live)
{
    struct sbuf b = {0};
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)want, k, v)
    {
        json_t *lv = json_object_get(live, k);
        if ((strcmp(k, "html") == 0 || strcmp(k, "text") == 0) && json_is_string(v)) {
            char *u = diff_unified(k, json_string_value(lv), json_string_value(v));
            sb_add(&b, u, strlen(u));
            free(u);
            continue;
        }
        bool opaque = false;
        for (int i = 0; i < 3 && ki->opaque[i]; i++)
            opaque |= strcmp(ki->opaque[i], k) == 0;
        if (opaque || strcmp(k, "relationships") == 0) {
            if (!lv || !json_equal(v, lv))
                sb_printf(&b, "  /%s: changed since Cadence last wrote it (compared by hash)\n", k);
            continue;
        }
        char p[300];
        snprintf(p, sizeof p, "/%s", k);
        diff_value(&b, p, v, lv);
    }
    return sb_done(&b);
}

char *diff_new(const struct kind_info *ki, const json_t *want, const struct bundle_asset *a)
{
    struct sbuf b = {0};
    (void)ki;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)want, k, v)
    {
        if (json_is_string(v) && (strcmp(k, "html") == 0 || strcmp(k, "text") == 0)) {
            size_t lines = 1;
            for (const char *p = json_string_value(v); *p; p++)
                lines += *p == '\n';
            sb_printf(&b, "  + %s: %zu bytes, %zu lines\n", k, strlen(json_string_value(v)), lines);
            continue;
        }
        char s[256];
        short_json(v, s, sizeof s);
        sb_printf(&b, "  + %s: %s\n", k, s);
    }
    if (a && a->data)
        sb_printf(&b, "  + file: %s, %zu bytes\n", a->mime ? a->mime : "image", a->data_len);
    return sb_done(&b);
}
