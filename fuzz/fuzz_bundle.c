/*
 * Fuzzes bundle_load with one untrusted file in an otherwise valid bundle. The first byte picks
 * where the rest of the input goes (so one corpus covers every parser):
 *   0 lists/x.json        1 catalog/items.csv    2 catalog/items.json
 *   3 flows/x.json        4 campaigns/x.json     5 images/x.png
 *   6 templates/x.html    7 tags/x.json
 * The bundle also holds lists/newsletter.json, segments/engaged.json (a $ref to the list) and
 * templates/welcome.html, so $refs in the input can resolve, cycle or miss.
 *
 * What must hold for every input: the status is CAD_OK or CAD_EINVAL; on CAD_OK there are no
 * errors, the hashes are 64 hex digits, assets are sorted, order[] is a permutation in which
 * every asset follows what it refers to, and a second load gives the same hashes; on CAD_EINVAL
 * there is at least one error and each is a complete, non-empty, NUL-terminated message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle/bundle.h"
#include "common/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const targets[] = {"lists/x.json",     "catalog/items.csv", "catalog/items.json",
                                      "flows/x.json",     "campaigns/x.json",  "images/x.png",
                                      "templates/x.html", "tags/x.json"};

static char root[256];

static void cleanup(void)
{
    char cmd[300];
    if (!root[0])
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_bundle: could not remove %s\n", root);
}

static void write_file(const char *rel, const void *d, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(d, 1, n, f) != n))
        abort();
    fclose(f);
}

static void make_root(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/cadence-fuzz-bundle-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(root))
        abort();
    atexit(cleanup);
    static const char *const dirs[] = {"lists",  "catalog",  "flows",     "campaigns",
                                       "images", "segments", "templates", "tags"};
    char path[512];
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", root, dirs[i]);
        if (mkdir(path, 0755) != 0)
            abort();
    }
    const char *list = "{\"opt_in_process\": \"single_opt_in\"}";
    const char *seg = "{\"definition\": {\"condition_groups\": [{\"conditions\": [{\"type\": "
                      "\"profile-group-membership\", \"is_member\": true, \"group_ids\": "
                      "[{\"$ref\": \"list:newsletter\"}]}]}]}}";
    write_file("lists/newsletter.json", list, strlen(list));
    write_file("segments/engaged.json", seg, strlen(seg));
    write_file("templates/welcome.html", "<p>hi</p>", 9);
}

static int is_hex64(const char *s)
{
    for (int i = 0; i < 64; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return s[64] == '\0';
}

static void check_ok(const struct bundle *b)
{
    if (!is_hex64(b->hash))
        abort();
    unsigned char *seen = calloc(b->n_assets ? b->n_assets : 1, 1);
    size_t *pos = calloc(b->n_assets ? b->n_assets : 1, sizeof *pos);
    if (!seen || !pos)
        abort();
    for (size_t i = 0; i < b->n_assets; i++) {
        const struct bundle_asset *a = &b->assets[i];
        if (!is_hex64(a->content_hash) || !a->attrs || !a->name || !a->file)
            abort();
        if (i > 0 &&
            (b->assets[i - 1].kind > a->kind ||
             (b->assets[i - 1].kind == a->kind && strcmp(b->assets[i - 1].name, a->name) >= 0)))
            abort();
        if (bundle_find(b, a->kind, a->name) != a)
            abort();
        if (b->order[i] >= b->n_assets || seen[b->order[i]]++)
            abort();
        pos[b->order[i]] = i;
    }
    for (size_t i = 0; i < b->n_assets; i++) {
        const struct bundle_asset *a = &b->assets[i];
        for (size_t r = 0; r < a->n_refs; r++) {
            const struct bundle_asset *to = bundle_find(b, a->refs[r].kind, a->refs[r].name);
            if (!to || pos[to - b->assets] >= pos[i])
                abort();
        }
    }
    free(seen);
    free(pos);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!root[0])
        make_root();
    if (size == 0)
        return 0;
    size_t mode = data[0] % (sizeof targets / sizeof targets[0]);
    write_file(targets[mode], data + 1, size - 1);

    struct bundle *b = NULL;
    struct bundle_error errs[8];
    size_t n = 0;
    int rc = bundle_load(root, &b, errs, 8, &n);
    if (rc == CAD_OK) {
        if (!b || n != 0)
            abort();
        check_ok(b);
        struct bundle *again = NULL;
        if (bundle_load(root, &again, errs, 8, &n) != CAD_OK)
            abort();
        if (strcmp(again->hash, b->hash) != 0 || again->n_assets != b->n_assets)
            abort();
        bundle_free(again);
        bundle_free(b);
    } else if (rc == CAD_EINVAL) {
        if (b || n == 0)
            abort();
        for (size_t i = 0; i < n && i < 8; i++) {
            size_t m = strnlen(errs[i].message, sizeof errs[i].message);
            if (m == 0 || m == sizeof errs[i].message ||
                strnlen(errs[i].file, sizeof errs[i].file) == sizeof errs[i].file ||
                strnlen(errs[i].field, sizeof errs[i].field) == sizeof errs[i].field)
                abort();
            char line[1200];
            bundle_error_format(&errs[i], line, sizeof line);
        }
    } else {
        abort();
    }

    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, targets[mode]);
    unlink(path);
    return 0;
}
