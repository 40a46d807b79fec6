/*
 * Benchmark driver: one workload of Klaviyo writes through Cadence's client, all submitted at
 * once so that the client's pacing alone decides when each request leaves (template creates,
 * list creates, catalog item creates, and an update of each item once it exists), and the lower
 * bound Klaviyo's limits put on that workload.
 *
 * The bound (also printed by --bound-only for other clients' runs): operations have separate
 * quotas, so they run in parallel and the bound is the largest per-operation time. For one
 * operation with N requests, grant each request at the earliest instant the fixed windows allow
 * (at most burst per 1 s window, steady per 60 s window, daily per day; window edges at multiples
 * of the emulator's clock, read from GET /__sim/clock; each limit minus the share another
 * integration uses, floored as Klaviyo's accounting does), starting one minimum latency after
 * the start; T_op is the time of the N-th grant, divided by the time scale. No client can finish
 * earlier: every request is counted at its arrival and no window admits more.
 *
 * The start: with --phase-ms P the driver first waits until the emulator's clock is P ms into a
 * steady (60 s) window, so the bound is the same in every run and every configuration (a run
 * that starts late in a window is bound by the burst limit alone, one that starts early by the
 * steady window's edge). The wait is not counted. Without it the run starts at once.
 *
 * Usage: bench_driver --sim URL --templates N --lists N --items N [--foreign F]
 *                     [--latency-min MS] [--phase-ms P] [--audit-dir DIR] [--bound-only]
 *                     [--explain]
 * Environment: BENCH_KEY, CADENCE_KLAVIYO_URL, CADENCE_KLAVIYO_RATE_SCALE.
 * Prints: "bound_ms=... wall_ms=... ok=... failed=... phase_ms=..." on one line; --explain
 * first prints each operation's part of the bound, one "bound: ..." line each.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "common/secret.h"
#include "common/util.h"
#include "klaviyo/client.h"
#include "kspec/kspec.h"
#include "store/store.h"

#define WRITE_TOKEN "bench"

struct bench {
    klaviyo_client *c;
    int ok, failed;
    char first_error[800];
};

static struct bench B;

/* ---- the bound ---- */

static int64_t available(int limit, double foreign)
{
    return limit - (int64_t)floor(limit * foreign);
}

/* Emulated ms from t0 (the emulator's clock at the start) until the n-th request of `op` can be
 * counted, granting each as early as the fixed windows allow; *edges gets the number of steady
 * window edges crossed. */
static int64_t op_bound_ms(const struct kspec_op *op, int n, int64_t t0, double foreign, int *edges)
{
    const int64_t span[3] = {1000, 60000, 86400000};
    const int64_t cap[3] = {available(op->burst_per_s, foreign),
                            available(op->steady_per_min, foreign),
                            op->daily > 0 ? available(op->daily, foreign) : INT64_MAX};
    int64_t win[3], used[3] = {0, 0, 0};
    int64_t t = t0;
    for (int w = 0; w < 3; w++)
        win[w] = t / span[w];
    *edges = 0;
    for (int i = 0; i < n; i++) {
        for (;;) {
            int64_t next = -1;
            for (int w = 0; w < 3; w++) {
                if (t / span[w] != win[w]) {
                    *edges += w == 1 ? (int)(t / span[w] - win[w]) : 0;
                    win[w] = t / span[w];
                    used[w] = 0;
                }
                if (used[w] >= cap[w]) {
                    int64_t edge = (win[w] + 1) * span[w];
                    next = edge > next ? edge : next;
                }
            }
            if (next < 0)
                break;
            t = next;
        }
        for (int w = 0; w < 3; w++)
            used[w]++;
    }
    return t - t0;
}

struct clock_buf {
    char data[512];
    size_t len;
};

static size_t clock_write(char *p, size_t size, size_t n, void *ud)
{
    struct clock_buf *b = ud;
    size_t len = size * n;
    if (b->len + len >= sizeof b->data)
        return 0;
    memcpy(b->data + b->len, p, len);
    b->len += len;
    b->data[b->len] = '\0';
    return len;
}

/* The emulator's clock (emulated ms) and time scale. */
static int sim_clock(const char *sim_url, int64_t *now_ms, double *scale)
{
    char url[600];
    snprintf(url, sizeof url, "%s/__sim/clock", sim_url);
    struct clock_buf b = {.len = 0};
    CURL *e = curl_easy_init();
    if (!e)
        return -1;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, clock_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_cleanup(e);
    json_t *doc = rc == CURLE_OK ? json_loads(b.data, 0, NULL) : NULL;
    if (!doc)
        return -1;
    *now_ms = (int64_t)json_integer_value(json_object_get(doc, "now_ms"));
    *scale = json_number_value(json_object_get(doc, "time_scale"));
    json_decref(doc);
    return *now_ms > 0 && *scale > 0 ? 0 : -1;
}

/* ---- the workload ---- */

static void done(void *ctx, const struct klaviyo_result *res);

static void submit(const char *method, const char *target, char *body, void *ctx)
{
    struct klaviyo_request req = {.method = method,
                                  .target = target,
                                  .body = body,
                                  .body_len = strlen(body),
                                  .write_authorization = WRITE_TOKEN};
    if (klaviyo_submit(B.c, &req, done, ctx) != CAD_OK) {
        B.failed++;
        if (!B.first_error[0])
            snprintf(B.first_error, sizeof B.first_error, "%s", cad_errmsg());
    }
    free(body);
}

/* ctx points at the item number for an item create (its update follows), NULL otherwise. */
static void done(void *ctx, const struct klaviyo_result *res)
{
    if (res->outcome != KLAVIYO_OUT_OK) {
        B.failed++;
        if (!B.first_error[0])
            snprintf(B.first_error, sizeof B.first_error, "%s", res->message);
        return;
    }
    B.ok++;
    if (!ctx)
        return;
    long i = *(const long *)ctx;
    char *body = NULL, target[128];
    snprintf(target, sizeof target, "/api/catalog-items/$custom:::$default:::BENCH-%ld", i);
    if (asprintf(&body,
                 "{\"data\":{\"type\":\"catalog-item\",\"id\":\"$custom:::$default:::BENCH-%ld\","
                 "\"attributes\":{\"price\":%ld.5}}}",
                 i, 10 + i) < 0)
        abort();
    submit("PATCH", target, body, NULL);
}

static const char *arg(int argc, char **argv, const char *name, const char *dflt)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return dflt;
}

/* A number given on the command line; the usage line and exit 2 when it is not one. */
static double num(int argc, char **argv, const char *name, const char *dflt)
{
    const char *v = arg(argc, argv, name, dflt);
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end) {
        fprintf(stderr, "bench: %s needs a number, not \"%s\"\n", name, v);
        exit(2);
    }
    return x;
}

int main(int argc, char **argv)
{
    const char *sim_url = arg(argc, argv, "--sim", NULL);
    int templates = (int)num(argc, argv, "--templates", "0");
    int lists = (int)num(argc, argv, "--lists", "0");
    int items = (int)num(argc, argv, "--items", "0");
    double foreign = num(argc, argv, "--foreign", "0");
    int latency_min = (int)num(argc, argv, "--latency-min", "0");
    bool bound_only = false;
    for (int i = 1; i < argc; i++)
        bound_only = bound_only || strcmp(argv[i], "--bound-only") == 0;
    const char *keytext = getenv("BENCH_KEY");
    if (!sim_url || (!bound_only && !keytext)) {
        fprintf(stderr, "usage: BENCH_KEY=pk_... bench_driver --sim URL --templates N --lists N "
                        "--items N [--foreign F] [--latency-min MS] [--bound-only]\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_set_level(LOG_ERROR);

    int64_t t0;
    double scale;
    if (sim_clock(sim_url, &t0, &scale) != 0) {
        fprintf(stderr, "bench: cannot read %s/__sim/clock\n", sim_url);
        return 1;
    }
    if (arg(argc, argv, "--phase-ms", NULL)) {
        int64_t want = (int64_t)num(argc, argv, "--phase-ms", "0") % 60000;
        int64_t ahead = ((want - t0 % 60000) % 60000 + 60000) % 60000;
        struct timespec ts = {.tv_sec = (time_t)(ahead / scale / 1000),
                              .tv_nsec = (long)fmod(ahead / scale * 1e6, 1e9)};
        while (nanosleep(&ts, &ts) != 0)
            ;
        if (sim_clock(sim_url, &t0, &scale) != 0)
            return 1;
    }
    bool explain = false;
    for (int i = 1; i < argc; i++)
        explain = explain || strcmp(argv[i], "--explain") == 0;
    int64_t start = time_mono_ms();
    /* Requests are counted at arrival, at least one minimum latency after they leave. */
    int64_t first = t0 + (int64_t)(latency_min * scale);
    struct {
        const char *op;
        int n;
    } work[] = {{"create_template", templates},
                {"create_list", lists},
                {"create_catalog_item", items},
                {"update_catalog_item", items}};
    int64_t bound = 0;
    for (size_t i = 0; i < sizeof work / sizeof work[0]; i++) {
        if (!work[i].n)
            continue;
        const struct kspec_op *op = kspec_by_id(work[i].op);
        int edges = 0;
        int64_t t = op_bound_ms(op, work[i].n, first, foreign, &edges);
        int64_t emulated = first - t0 + t;
        t = (int64_t)ceil((double)emulated / scale);
        bound = t > bound ? t : bound;
        if (explain) {
            char daily[32] = "";
            if (op->daily > 0)
                snprintf(daily, sizeof daily, " %lld/day",
                         (long long)available(op->daily, foreign));
            printf("bound: %s n=%d at %lld/s %lld/min%s: starts %.1f s into a steady window, "
                   "crosses %d steady edge%s, last counted at %.2f s emulated = %.2f s real\n",
                   work[i].op, work[i].n, (long long)available(op->burst_per_s, foreign),
                   (long long)available(op->steady_per_min, foreign), daily,
                   (double)(t0 % 60000) / 1000.0, edges, edges == 1 ? "" : "s",
                   (double)emulated / 1000.0, (double)t / 1000.0);
        }
    }
    if (bound_only) {
        printf("bound_ms=%lld phase_ms=%lld\n", (long long)bound, (long long)(t0 % 60000));
        return 0;
    }

    /* The audit database's directory: the client commits every request's intent before it
     * leaves and its outcome after (in groups), so the disk under it can cost time;
     * --audit-dir /dev/shm shows pacing without the disk. */
    char dir[256], db[300];
    snprintf(dir, sizeof dir, "%s/cadence-bench-XXXXXX", arg(argc, argv, "--audit-dir", "/tmp"));
    if (!mkdtemp(dir))
        return 1;
    snprintf(db, sizeof db, "%s/audit.db", dir);
    store *st = NULL;
    cad_secret *key = NULL;
    if (store_open(&st, db) || secret_from(&key, keytext, strlen(keytext)) ||
        klaviyo_client_new(&B.c, st, "bench", "bench", key, NULL)) {
        fprintf(stderr, "bench: setup failed: %s\n", cad_errmsg());
        return 1;
    }
    int total = templates + lists + 2 * items;
    long *item_ids = calloc(items > 0 ? (size_t)items : 1, sizeof *item_ids);
    if (!item_ids)
        return 1;
    for (int k = 0; k < items; k++)
        item_ids[k] = k;
    for (int i = 0; i < total - items; i++) {
        char *body = NULL;
        int rc;
        if (i < templates)
            rc = asprintf(&body,
                          "{\"data\":{\"type\":\"template\",\"attributes\":{\"name\":\"Bench T%d\","
                          "\"editor_type\":\"CODE\",\"html\":\"<p>%d</p>\"}}}",
                          i, i);
        else if (i < templates + lists)
            rc = asprintf(&body,
                          "{\"data\":{\"type\":\"list\",\"attributes\":{\"name\":\"Bench L%d\"}}}",
                          i - templates);
        else
            rc = asprintf(&body,
                          "{\"data\":{\"type\":\"catalog-item\",\"attributes\":{\"external_id\":"
                          "\"BENCH-%d\",\"title\":\"Item %d\",\"description\":\"d\",\"url\":"
                          "\"https://example.com/i/%d\",\"price\":9.5}}}",
                          i - templates - lists, i, i);
        if (rc < 0)
            abort();
        const char *target = i < templates           ? "/api/templates"
                             : i < templates + lists ? "/api/lists"
                                                     : "/api/catalog-items";
        void *ctx = i >= templates + lists ? &item_ids[i - templates - lists] : NULL;
        submit("POST", target, body, ctx);
    }
    if (klaviyo_run(B.c, -1) != CAD_OK)
        fprintf(stderr, "bench: %s\n", cad_errmsg());
    int64_t wall = time_mono_ms() - start;
    printf("bound_ms=%lld wall_ms=%lld ok=%d failed=%d phase_ms=%lld\n", (long long)bound,
           (long long)wall, B.ok, B.failed, (long long)(t0 % 60000));
    if (B.first_error[0])
        fprintf(stderr, "bench: first failure: %s\n", B.first_error);
    klaviyo_client_free(B.c);
    free(item_ids);
    secret_free(key);
    store_close(st);
    char cmd[320];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench: could not remove %s\n", dir);
    curl_global_cleanup();
    return B.failed ? 1 : 0;
}
