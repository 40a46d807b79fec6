/*
 * Inside the kspec module: the route order that makes kspec_find() a few binary searches, shared
 * by the generator (which precomputes the order at build time) and the lookup (which walks it).
 *
 * Route order compares path templates segment by segment: literal segments by their bytes, any
 * "{param}" segment after every literal (parameter names do not matter), a template that is a
 * prefix of another first, and the method last. Templates with the same first k segments are
 * therefore contiguous, so the order is a trie laid flat in an array; and because parameters sort
 * last, trying the literal range before the parameter range gives "literal beats {param}".
 * Not part of the public face (kspec.h); tests and the generator include it.
 */
#ifndef CADENCE_KSPEC_KSPEC_INDEX_H
#define CADENCE_KSPEC_KSPEC_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "kspec/kspec.h"

/* Largest table an index can describe (indices are 16-bit). */
#define KSPEC_INDEX_MAX 65535

/* Generated next to kspec_ops[]: kspec_ops indices in route order and in operationId order. */
extern const uint16_t kspec_route_order[];
extern const uint16_t kspec_id_order[];

/* <0, 0, >0 as `a` sorts before, with, or after `b` in route order. 0 means the two operations
 * could never be told apart by a request: same method and the same template shape. */
int kspec_route_cmp(const struct kspec_op *a, const struct kspec_op *b);

/* Fills order[0..n) with the indices of ops[0..n) in route order (n <= KSPEC_INDEX_MAX). Returns
 * CAD_OK, CAD_EINVAL when two operations compare equal (the table is ambiguous) or n is too
 * large, CAD_ENOMEM. */
int kspec_route_sort(const struct kspec_op *ops, size_t n, uint16_t *order);

/* kspec_find() over any table and its route order. */
const struct kspec_op *kspec_route_match(const struct kspec_op *ops, const uint16_t *order,
                                         size_t n, const char *method, const char *path);

#endif
