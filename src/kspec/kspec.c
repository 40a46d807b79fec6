/*
 * Lookups over the generated operation table. Both indexes are computed by the generator at build
 * time (kspec_ops.c), so a lookup allocates nothing, needs no initialisation and is safe from any
 * thread: kspec_find() is a few binary searches per path segment, kspec_by_id() one.
 */
#include <string.h>

#include "kspec/kspec.h"
#include "kspec/kspec_index.h"

const struct kspec_op *kspec_find(const char *method, const char *path)
{
    return kspec_route_match(kspec_ops, kspec_route_order, kspec_ops_count, method, path);
}

const struct kspec_op *kspec_by_id(const char *operation_id)
{
    if (!operation_id)
        return NULL;
    size_t lo = 0, hi = kspec_ops_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct kspec_op *op = &kspec_ops[kspec_id_order[mid]];
        int c = strcmp(op->operation_id, operation_id);
        if (c == 0)
            return op;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
