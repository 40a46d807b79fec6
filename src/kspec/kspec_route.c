/*
 * Route order and template matching (see kspec_index.h for why the order looks the way it does).
 * Compiled into both the build-time generator and cad_kspec, so the order the generator writes
 * is by construction the order the lookup expects.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "kspec/kspec_index.h"

/* More segments than any template has; a longer request path matches nothing. */
#define MAX_REQUEST_SEGMENTS 32

/* One "/"-separated piece of a path. */
struct seg {
    const char *s;
    size_t len;
};

static bool seg_is_param(struct seg g)
{
    return g.len >= 2 && g.s[0] == '{' && g.s[g.len - 1] == '}';
}

static size_t tpl_segment_count(const char *tpl)
{
    size_t n = 0;
    for (; *tpl; tpl++)
        n += *tpl == '/';
    return n;
}

/* Segment k (0-based) of a template; the caller knows the template has more than k. */
static struct seg tpl_segment(const char *tpl, size_t k)
{
    const char *p = tpl + 1;
    for (; k > 0; k--)
        p = strchr(p, '/') + 1;
    const char *end = strchr(p, '/');
    return (struct seg){p, end ? (size_t)(end - p) : strlen(p)};
}

static int bytes_cmp(struct seg a, struct seg b)
{
    int c = memcmp(a.s, b.s, a.len < b.len ? a.len : b.len);
    if (c != 0)
        return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

int kspec_route_cmp(const struct kspec_op *a, const struct kspec_op *b)
{
    size_t na = tpl_segment_count(a->path), nb = tpl_segment_count(b->path);
    for (size_t k = 0; k < na && k < nb; k++) {
        struct seg sa = tpl_segment(a->path, k), sb = tpl_segment(b->path, k);
        bool pa = seg_is_param(sa), pb = seg_is_param(sb);
        if (pa && pb)
            continue;
        if (pa != pb)
            return pa ? 1 : -1;
        int c = bytes_cmp(sa, sb);
        if (c != 0)
            return c;
    }
    if (na != nb)
        return na < nb ? -1 : 1;
    return strcasecmp(a->method, b->method);
}

static int route_ptr_cmp(const void *x, const void *y)
{
    return kspec_route_cmp(*(const struct kspec_op *const *)x, *(const struct kspec_op *const *)y);
}

int kspec_route_sort(const struct kspec_op *ops, size_t n, uint16_t *order)
{
    if (n > KSPEC_INDEX_MAX)
        return cad_fail(CAD_EINVAL, "%zu operations do not fit a 16-bit route index", n);
    if (n == 0)
        return CAD_OK;
    const struct kspec_op **sorted = malloc(n * sizeof(const struct kspec_op *));
    if (!sorted)
        return cad_fail(CAD_ENOMEM, "out of memory sorting %zu operations", n);
    for (size_t i = 0; i < n; i++)
        sorted[i] = &ops[i];
    qsort(sorted, n, sizeof(const struct kspec_op *), route_ptr_cmp);
    for (size_t i = 0; i + 1 < n; i++) {
        if (kspec_route_cmp(sorted[i], sorted[i + 1]) == 0) {
            int rc =
                cad_fail(CAD_EINVAL,
                         "operations %s (%s %s) and %s (%s %s) match exactly the same "
                         "requests",
                         sorted[i]->operation_id, sorted[i]->method, sorted[i]->path,
                         sorted[i + 1]->operation_id, sorted[i + 1]->method, sorted[i + 1]->path);
            free(sorted);
            return rc;
        }
    }
    for (size_t i = 0; i < n; i++)
        order[i] = (uint16_t)(sorted[i] - ops);
    free(sorted);
    return CAD_OK;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Orders a template literal against a request segment read with its %XX escapes decoded, in the
 * same byte order bytes_cmp() gives two literals. A malformed escape stands for itself. */
static int literal_cmp_request(struct seg lit, struct seg req)
{
    size_t i = 0, j = 0;
    while (i < lit.len && j < req.len) {
        unsigned char rb = (unsigned char)req.s[j];
        if (rb == '%' && j + 2 < req.len && hex_digit(req.s[j + 1]) >= 0 &&
            hex_digit(req.s[j + 2]) >= 0) {
            rb = (unsigned char)(hex_digit(req.s[j + 1]) * 16 + hex_digit(req.s[j + 2]));
            j += 3;
        } else {
            j++;
        }
        unsigned char lb = (unsigned char)lit.s[i++];
        if (lb != rb)
            return lb < rb ? -1 : 1;
    }
    if (i < lit.len)
        return 1;
    return j < req.len ? -1 : 0;
}

struct request {
    const struct kspec_op *ops;
    const uint16_t *order;
    const char *method;
    struct seg seg[MAX_REQUEST_SEGMENTS];
    size_t nseg;
};

static const struct kspec_op *op_at(const struct request *r, size_t i)
{
    return &r->ops[r->order[i]];
}

/* First index in [lo, hi) whose template segment `depth` compares >= (strict: >) the request's,
 * with every parameter segment above every literal. */
static size_t literal_bound(const struct request *r, size_t lo, size_t hi, size_t depth,
                            bool strict)
{
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        struct seg t = tpl_segment(op_at(r, mid)->path, depth);
        int c = seg_is_param(t) ? 1 : literal_cmp_request(t, r->seg[depth]);
        if (c > 0 || (c == 0 && !strict))
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* First index in [lo, hi) whose template segment `depth` is a parameter. */
static size_t param_start(const struct request *r, size_t lo, size_t hi, size_t depth)
{
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (seg_is_param(tpl_segment(op_at(r, mid)->path, depth)))
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* Every template in [lo, hi) has at least `depth` segments matching the request's first `depth`. */
static const struct kspec_op *match_range(const struct request *r, size_t lo, size_t hi,
                                          size_t depth)
{
    if (depth == r->nseg) {
        for (size_t i = lo; i < hi && tpl_segment_count(op_at(r, i)->path) == depth; i++)
            if (strcasecmp(op_at(r, i)->method, r->method) == 0)
                return op_at(r, i);
        return NULL;
    }
    while (lo < hi && tpl_segment_count(op_at(r, lo)->path) == depth)
        lo++;
    size_t params = param_start(r, lo, hi, depth);
    size_t lit_lo = literal_bound(r, lo, params, depth, false);
    size_t lit_hi = literal_bound(r, lit_lo, params, depth, true);
    if (lit_lo < lit_hi) {
        const struct kspec_op *op = match_range(r, lit_lo, lit_hi, depth + 1);
        if (op)
            return op;
    }
    return params < hi ? match_range(r, params, hi, depth + 1) : NULL;
}

/* Splits the path part of `path` (up to '?' or '#') into segments. One trailing '/' is allowed;
 * an empty segment anywhere else is not. */
static bool split_request(struct request *r, const char *path)
{
    if (path[0] != '/')
        return false;
    size_t end = strcspn(path, "?#");
    if (end > 1 && path[end - 1] == '/')
        end--;
    r->nseg = 0;
    for (size_t i = 1; i <= end && end > 1;) {
        size_t len = 0;
        while (i + len < end && path[i + len] != '/')
            len++;
        if (len == 0 || r->nseg == MAX_REQUEST_SEGMENTS)
            return false;
        r->seg[r->nseg++] = (struct seg){path + i, len};
        i += len + 1;
    }
    return r->nseg > 0;
}

const struct kspec_op *kspec_route_match(const struct kspec_op *ops, const uint16_t *order,
                                         size_t n, const char *method, const char *path)
{
    if (!method || !path)
        return NULL;
    struct request r = {.ops = ops, .order = order, .method = method};
    if (!split_request(&r, path))
        return NULL;
    return match_range(&r, 0, n, 0);
}
