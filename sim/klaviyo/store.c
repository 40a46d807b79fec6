/*
 * In-memory object store of the emulator: per account, one table per resource type.
 *
 * A table keeps its objects in insertion order (the default listing order, like Klaviyo's
 * "created") and indexes them by id with open addressing, so that 60,000 catalog items or
 * 10,000 templates stay fast to look up. Deleting leaves a tombstone in the ordered array; the
 * array is compacted when tombstones outnumber live objects.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static void index_insert(struct sim_table *t, struct sim_obj *o)
{
    size_t mask = t->nbuckets - 1;
    size_t i = (size_t)hash_str(o->id) & mask;
    while (t->buckets[i])
        i = (i + 1) & mask;
    t->buckets[i] = o;
    t->used++;
}

static void index_rebuild(struct sim_table *t, size_t nbuckets)
{
    free(t->buckets);
    t->buckets = calloc(nbuckets, sizeof(struct sim_obj *));
    if (!t->buckets)
        abort();
    t->nbuckets = nbuckets;
    t->used = 0;
    for (size_t i = 0; i < t->n; i++)
        if (!t->items[i]->deleted)
            index_insert(t, t->items[i]);
}

static struct sim_obj *index_find(struct sim_table *t, const char *id, size_t *slot)
{
    if (!t->nbuckets)
        return NULL;
    size_t mask = t->nbuckets - 1;
    size_t i = (size_t)hash_str(id) & mask;
    while (t->buckets[i]) {
        if (strcmp(t->buckets[i]->id, id) == 0) {
            if (slot)
                *slot = i;
            return t->buckets[i];
        }
        i = (i + 1) & mask;
    }
    return NULL;
}

/* Removes bucket `i` and re-seats the rest of its probe run (linear-probing deletion). */
static void index_remove_slot(struct sim_table *t, size_t i)
{
    size_t mask = t->nbuckets - 1;
    t->buckets[i] = NULL;
    t->used--;
    for (size_t j = (i + 1) & mask; t->buckets[j]; j = (j + 1) & mask) {
        struct sim_obj *o = t->buckets[j];
        t->buckets[j] = NULL;
        t->used--;
        index_insert(t, o);
    }
}

struct sim_table *store_table(struct sim_account *a, const char *type)
{
    for (size_t i = 0; i < a->ntables; i++)
        if (strcmp(a->tables[i]->type, type) == 0)
            return a->tables[i];
    struct sim_table **nt = realloc(a->tables, (a->ntables + 1) * sizeof(struct sim_table *));
    struct sim_table *t = calloc(1, sizeof *t);
    if (!nt || !t)
        abort();
    a->tables = nt;
    t->type = strdup(type);
    if (!t->type)
        abort();
    a->tables[a->ntables++] = t;
    return t;
}

struct sim_obj *store_get(struct sim_account *a, const char *type, const char *id)
{
    return index_find(store_table(a, type), id, NULL);
}

static void obj_free(struct sim_obj *o)
{
    free(o->id);
    json_decref(o->doc);
    free(o);
}

static void compact(struct sim_table *t)
{
    size_t w = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (t->items[i]->deleted)
            obj_free(t->items[i]);
        else
            t->items[w++] = t->items[i];
    }
    t->n = w;
}

struct sim_obj *store_put(struct sim_account *a, json_t *doc)
{
    const char *type = json_string_value(json_object_get(doc, "type"));
    const char *id = json_string_value(json_object_get(doc, "id"));
    struct sim_table *t = store_table(a, type);
    if (index_find(t, id, NULL)) {
        json_decref(doc);
        return NULL;
    }
    struct sim_obj *o = calloc(1, sizeof *o);
    if (!o || !(o->id = strdup(id)))
        abort();
    o->doc = doc;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->items = realloc(t->items, t->cap * sizeof(struct sim_obj *));
        if (!t->items)
            abort();
    }
    o->pos = t->n;
    t->items[t->n++] = o;
    t->live++;
    if ((t->used + 1) * 2 > t->nbuckets)
        index_rebuild(t, t->nbuckets ? t->nbuckets * 2 : 128);
    else
        index_insert(t, o);
    return o;
}

void store_delete(struct sim_account *a, const char *type, const char *id)
{
    struct sim_table *t = store_table(a, type);
    size_t slot;
    struct sim_obj *o = index_find(t, id, &slot);
    if (!o)
        return;
    index_remove_slot(t, slot);
    o->deleted = true;
    t->live--;
    if (t->n > 256 && t->n > 2 * t->live)
        compact(t);
}

size_t store_count(struct sim_account *a, const char *type)
{
    return store_table(a, type)->live;
}

void store_clear(struct sim_account *a)
{
    for (size_t i = 0; i < a->ntables; i++) {
        struct sim_table *t = a->tables[i];
        for (size_t j = 0; j < t->n; j++)
            obj_free(t->items[j]);
        free(t->items);
        free(t->buckets);
        free(t->type);
        free(t);
    }
    free(a->tables);
    a->tables = NULL;
    a->ntables = 0;
}
