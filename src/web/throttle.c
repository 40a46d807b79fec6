/*
 * The Verify throttle: at most N attempts per key (an onboarding link, a client address; each key
 * with its own N) in any sliding window, so the onboarding page cannot be used to test stolen keys.
 * In memory, behind one mutex: attempts are rare (people pressing a button), the table is small and
 * bounded, and a restart forgetting the counts only gives an attacker one extra window.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "web/web_internal.h"

struct slot {
    char key[96];
    int64_t last_ms; /* most recent attempt; 0 = free slot */
    int64_t *hits;   /* ring of the last max_hits attempt times */
    int next;
};

struct web_throttle {
    pthread_mutex_t mu;
    int max_hits;
    int64_t window_ms;
    size_t n;
    struct slot *slots;
    int64_t *hit_store;
};

int web_throttle_new(web_throttle **out, int max_hits, int64_t window_ms, size_t max_keys)
{
    *out = NULL;
    if (max_hits < 1 || window_ms < 1 || max_keys < 1)
        return cad_fail(CAD_EINVAL, "a throttle needs at least one hit, key and millisecond");
    web_throttle *t = calloc(1, sizeof *t);
    if (!t)
        return cad_fail(CAD_ENOMEM, "out of memory");
    t->slots = calloc(max_keys, sizeof *t->slots);
    t->hit_store = calloc(max_keys * (size_t)max_hits, sizeof *t->hit_store);
    if (!t->slots || !t->hit_store) {
        web_throttle_free(t);
        return cad_fail(CAD_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < max_keys; i++)
        t->slots[i].hits = t->hit_store + i * (size_t)max_hits;
    pthread_mutex_init(&t->mu, NULL);
    t->max_hits = max_hits;
    t->window_ms = window_ms;
    t->n = max_keys;
    *out = t;
    return CAD_OK;
}

void web_throttle_free(web_throttle *t)
{
    if (!t)
        return;
    if (t->slots)
        pthread_mutex_destroy(&t->mu);
    free(t->slots);
    free(t->hit_store);
    free(t);
}

/* The slot for `key`, or a free / least recently used one reset for it. */
static struct slot *find_slot(web_throttle *t, const char *key, bool create)
{
    struct slot *victim = NULL;
    for (size_t i = 0; i < t->n; i++) {
        struct slot *s = &t->slots[i];
        if (s->last_ms && strcmp(s->key, key) == 0)
            return s;
        if (!victim || s->last_ms < victim->last_ms)
            victim = s;
    }
    if (!create || !victim) /* no victim only when the table has no slots */
        return NULL;
    snprintf(victim->key, sizeof victim->key, "%s", key);
    victim->last_ms = 0;
    victim->next = 0;
    memset(victim->hits, 0, (size_t)t->max_hits * sizeof *victim->hits);
    return victim;
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* How long until slot `s` has room under `limit` again; 0 when it has room now. */
static int64_t wait_for(const web_throttle *t, const struct slot *s, int limit, int64_t now)
{
    int64_t recent[t->max_hits];
    int count = 0;
    for (int i = 0; i < t->max_hits; i++)
        if (s->hits[i] && s->hits[i] > now - t->window_ms)
            recent[count++] = s->hits[i];
    if (count < limit)
        return 0;
    qsort(recent, (size_t)count, sizeof recent[0], cmp_desc);
    int64_t w = recent[limit - 1] + t->window_ms - now;
    return w > 0 ? w : 1;
}

bool web_throttle_hit(web_throttle *t, const char *const *keys, const int *limits, size_t n,
                      int64_t now_ms, int64_t *retry_ms)
{
    if (now_ms <= 0)
        now_ms = 1;
    int64_t wait = 0;
    pthread_mutex_lock(&t->mu);
    for (size_t k = 0; k < n; k++) {
        int limit = limits[k] < 1 ? 1 : limits[k] > t->max_hits ? t->max_hits : limits[k];
        struct slot *s = find_slot(t, keys[k], false);
        int64_t w = s ? wait_for(t, s, limit, now_ms) : 0;
        if (w > wait)
            wait = w;
    }
    for (size_t k = 0; wait == 0 && k < n; k++) {
        struct slot *s = find_slot(t, keys[k], true);
        s->hits[s->next] = now_ms;
        s->next = (s->next + 1) % t->max_hits;
        s->last_ms = now_ms;
    }
    pthread_mutex_unlock(&t->mu);
    if (retry_ms)
        *retry_ms = wait;
    return wait == 0;
}
