/*
 * The counter registry behind metrics.h. A singly linked list of families, each with a list of
 * label sets; label values are stored already escaped for the exposition format, so rendering is
 * a plain walk. Lookups compare the escaped label text, which is unique per label set.
 */
#include "common/metrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

struct series {
    struct series *next;
    char *labels; /* `a="x",b="y"` or "" */
    uint64_t value;
};

struct family {
    struct family *next;
    char *name;
    char *help;
    struct series *series, **series_tail;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct family *families;

static bool valid_name(const char *s, bool colon_ok)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_ok && c == ':');
        if (!alpha && !(p != s && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

/* Appends `s` to buf at *len (cap bytes) with \, " and newline escaped; false when it does not fit.
 */
static bool put_escaped(char *buf, size_t cap, size_t *len, const char *s, bool quotes)
{
    for (const char *p = s; *p; p++) {
        const char *rep = NULL;
        char one[2] = {*p, 0};
        if (*p == '\\')
            rep = "\\\\";
        else if (*p == '\n')
            rep = "\\n";
        else if (*p == '"' && quotes)
            rep = "\\\"";
        else
            rep = one;
        size_t n = strlen(rep);
        if (*len + n >= cap)
            return false;
        memcpy(buf + *len, rep, n);
        *len += n;
    }
    buf[*len] = 0;
    return true;
}

static bool put_raw(char *buf, size_t cap, size_t *len, const char *s)
{
    size_t n = strlen(s);
    if (*len + n >= cap)
        return false;
    memcpy(buf + *len, s, n + 1);
    *len += n;
    return true;
}

int metrics_counter_add(const char *family, const char *help, const char *const *labels,
                        size_t n_labels, uint64_t delta)
{
    if (!valid_name(family, true))
        return cad_fail(CAD_EINVAL, "\"%s\" is not a valid metric name", family ? family : "");
    if (n_labels > METRICS_MAX_LABELS)
        return cad_fail(CAD_EINVAL, "metric %s: at most %d labels", family, METRICS_MAX_LABELS);
    char key[1024];
    size_t len = 0;
    key[0] = 0;
    for (size_t i = 0; i < n_labels; i++) {
        const char *name = labels[2 * i], *value = labels[2 * i + 1];
        if (!valid_name(name, false) || strncmp(name, "__", 2) == 0)
            return cad_fail(CAD_EINVAL, "metric %s: \"%s\" is not a valid label name", family,
                            name ? name : "");
        if ((i && !put_raw(key, sizeof key, &len, ",")) || !put_raw(key, sizeof key, &len, name) ||
            !put_raw(key, sizeof key, &len, "=\"") ||
            !put_escaped(key, sizeof key, &len, value ? value : "", true) ||
            !put_raw(key, sizeof key, &len, "\""))
            return cad_fail(CAD_EINVAL, "metric %s: labels longer than %zu bytes", family,
                            sizeof key - 1);
    }

    int rc = CAD_OK;
    pthread_mutex_lock(&mu);
    struct family *f = families;
    while (f && strcmp(f->name, family) != 0)
        f = f->next;
    if (!f) {
        f = calloc(1, sizeof *f);
        if (f && (!(f->name = strdup(family)) || !(f->help = strdup(help ? help : "")))) {
            free(f->name);
            free(f);
            f = NULL;
        }
        if (!f) {
            rc = cad_fail(CAD_ENOMEM, "out of memory");
            goto out;
        }
        f->series_tail = &f->series;
        struct family **at = &families; /* kept sorted by name */
        while (*at && strcmp((*at)->name, family) < 0)
            at = &(*at)->next;
        f->next = *at;
        *at = f;
    }
    struct series *s = f->series;
    while (s && strcmp(s->labels, key) != 0)
        s = s->next;
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || !(s->labels = strdup(key))) {
            free(s);
            rc = cad_fail(CAD_ENOMEM, "out of memory");
            goto out;
        }
        *f->series_tail = s;
        f->series_tail = &s->next;
    }
    s->value += delta;
out:
    pthread_mutex_unlock(&mu);
    return rc;
}

int metrics_render(char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return cad_fail(CAD_ENOMEM, "out of memory");
    pthread_mutex_lock(&mu);
    for (struct family *fam = families; fam; fam = fam->next) {
        char help[512];
        size_t hl = 0;
        help[0] = 0;
        put_escaped(help, sizeof help, &hl, fam->help, false);
        fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", fam->name, help, fam->name);
        for (struct series *s = fam->series; s; s = s->next)
            fprintf(f, "%s%s%s%s %llu\n", fam->name, *s->labels ? "{" : "", s->labels,
                    *s->labels ? "}" : "", (unsigned long long)s->value);
    }
    pthread_mutex_unlock(&mu);
    if (fclose(f) != 0) {
        free(buf);
        return cad_fail(CAD_ENOMEM, "out of memory");
    }
    *out = buf;
    *out_len = size;
    return CAD_OK;
}

void metrics_reset(void)
{
    pthread_mutex_lock(&mu);
    while (families) {
        struct family *f = families;
        families = f->next;
        while (f->series) {
            struct series *s = f->series;
            f->series = s->next;
            free(s->labels);
            free(s);
        }
        free(f->name);
        free(f->help);
        free(f);
    }
    pthread_mutex_unlock(&mu);
}
