/*
 * cadence-klaviyo-sim: entry point. Parses the command line (a contract that other test suites
 * rely on), sets up accounts and keys, binds 127.0.0.1 only, prints the one line
 * "listening on http://127.0.0.1:PORT" and serves until SIGTERM or SIGINT.
 *
 * Also home of the process-wide pieces every file uses: the emulated clock, the seeded random
 * generator (--seed makes ids deterministic) and the account/key registry.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "loopback.h"
#include "sim.h"

struct sim_state sim = {.lock = PTHREAD_MUTEX_INITIALIZER, .time_scale = 1.0};

int64_t sim_clock_ms(void)
{
    return sim.start_wall_ms +
           (int64_t)((double)(time_mono_ms() - sim.start_mono_ms) * sim.time_scale);
}

void sim_timestamp_at(int64_t ms, char buf[32])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
}

void sim_timestamp(char buf[32])
{
    sim_timestamp_at(time_now_ms(), buf);
}

/* splitmix64: small, fast, and reproducible from --seed. */
uint64_t sim_rand(void)
{
    uint64_t z = (sim.rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double sim_rand_unit(void)
{
    return (double)(sim_rand() >> 11) / (double)(1ull << 53);
}

void sim_id_short(char out[8])
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (int i = 0; i < 6; i++)
        out[i] = al[sim_rand() % (sizeof al - 1)];
    out[6] = 0;
}

void sim_id_ulid(char out[27])
{
    static const char al[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    out[0] = '0';
    out[1] = '1';
    for (int i = 2; i < 26; i++)
        out[i] = al[sim_rand() % 32];
    out[26] = 0;
}

void sim_id_uuid(char out[37])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 36; i++)
        out[i] = (i == 8 || i == 13 || i == 18 || i == 23) ? '-' : hx[sim_rand() % 16];
    out[14] = '4';
    out[36] = 0;
}

struct sim_account *sim_account_new(const char *org_name)
{
    struct sim_account *a = calloc(1, sizeof *a);
    struct sim_account **na =
        realloc(sim.accounts, (sim.naccounts + 1) * sizeof(struct sim_account *));
    if (!a || !na)
        abort();
    sim.accounts = na;
    do
        sim_id_short(a->id);
    while (sim_account_find(a->id));
    a->org_name = strdup(org_name);
    if (!a->org_name)
        abort();
    a->rl = auth_rl_new();
    a->next_image_id = 1;
    a->next_action_id = 10000001;
    sim.accounts[sim.naccounts++] = a;
    tags_seed_account(a);
    metrics_seed_account(a);
    return a;
}

struct sim_account *sim_account_find(const char *id)
{
    for (size_t i = 0; i < sim.naccounts; i++)
        if (strcmp(sim.accounts[i]->id, id) == 0)
            return sim.accounts[i];
    return NULL;
}

struct sim_key *sim_key_add(struct sim_account *a, const char *key, const char *scopes, bool cli)
{
    struct sim_key *k = sim_key_find(key);
    if (k) {
        free(k->scopes);
    } else {
        k = calloc(1, sizeof *k);
        struct sim_key **nk = realloc(sim.keys, (sim.nkeys + 1) * sizeof(struct sim_key *));
        if (!k || !nk)
            abort();
        sim.keys = nk;
        sim.keys[sim.nkeys++] = k;
        k->key = strdup(key);
    }
    k->scopes = strdup(scopes && *scopes ? scopes : "all");
    if (!k->key || !k->scopes)
        abort();
    k->acct = a;
    k->revoked = false;
    k->from_cli = k->from_cli || cli;
    return k;
}

struct sim_key *sim_key_find(const char *key)
{
    for (size_t i = 0; i < sim.nkeys; i++)
        if (strcmp(sim.keys[i]->key, key) == 0)
            return sim.keys[i];
    return NULL;
}

static void usage(FILE *out)
{
    fputs("usage: cadence-klaviyo-sim --listen 127.0.0.1:PORT [--time-scale N] [--latency-ms "
          "MIN-MAX]\n"
          "                           [--seed N] [--shopify-integration]\n"
          "                           [--account \"ORG NAME\" --key pk_... "
          "[--scopes all|LIST]] ...\n"
          "\n"
          "A local emulator of Klaviyo's REST API (revision " KLAVIYO_REVISION ") for tests.\n"
          "  --listen ADDR:PORT  bind address; only 127.0.0.1 is accepted; PORT 0 picks one\n"
          "  --time-scale N      time runs N times faster for rate-limit windows, daily caps\n"
          "                      and job progress; Retry-After and RateLimit-Reset are given\n"
          "                      in emulated seconds (a client pacing against it runs its own\n"
          "                      clock N times faster: CADENCE_KLAVIYO_RATE_SCALE=N)\n"
          "  --latency-ms A-B    add a random delay of A..B ms to every API request\n"
          "  --seed N            deterministic ids (and catalog_item_error_rate draws)\n"
          "  --shopify-integration  every account (also after /__sim/reset) starts with the\n"
          "                      metrics Klaviyo's Shopify integration creates: Placed Order,\n"
          "                      Ordered Product, Started Checkout, Fulfilled Order\n"
          "  --public-url URL    base URL written into links (self, next, prev) instead of\n"
          "                      http://127.0.0.1:PORT, for an emulator behind a proxy\n"
          "                      (http://127.0.0.1:PORT2 only; e.g. Prism in contract tests)\n"
          "  --account NAME      start a new account; following --key options belong to it\n"
          "  --key KEY           add a private key to the current account\n"
          "  --scopes LIST       scopes of the key just before (comma list or \"all\", default)\n"
          "On start one line \"listening on http://127.0.0.1:PORT\" is printed to stdout.\n"
          "Admin API (no auth, loopback): GET/DELETE /__sim/calls, GET /__sim/objects?type=T,\n"
          "GET/POST /__sim/faults, POST /__sim/keys/revoke, POST /__sim/keys/add,\n"
          "GET/POST /__sim/accounts, POST /__sim/metrics, POST /__sim/reset, GET /__sim/clock.\n",
          out);
}

static int die_usage(const char *msg, const char *arg)
{
    fprintf(stderr, "cadence-klaviyo-sim: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    usage(stderr);
    return 2;
}

/* A number in [0, INT_MAX] at s (leading blanks and a sign allowed, as strtol takes them);
 * *end is left just after it. */
static bool parse_nonneg_int(const char *s, char **end, int *out)
{
    errno = 0;
    long v = strtol(s, end, 10);
    if (*end == s || errno == ERANGE || v < 0 || v > INT_MAX)
        return false;
    *out = (int)v;
    return true;
}

int main(int argc, char **argv)
{
    int port = -1;
    struct sim_account *cur = NULL;
    struct sim_key *last_key = NULL;
    uint64_t seed = 0;
    bool seeded = false;
    const char *public_url = NULL;
    sim.faults.revoke_after = -1;

    /* The seed must be known before accounts mint their ids, and --shopify-integration
     * before they are seeded. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            seed = strtoull(argv[i + 1], NULL, 10);
            seeded = true;
        }
        if (strcmp(argv[i], "--shopify-integration") == 0)
            sim.shopify_integration = true;
    }
    if (!seeded && random_bytes(&seed, sizeof seed) != 0)
        seed = (uint64_t)time_now_ms();
    sim.rng = seed;
    sim.seed = seed;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--shopify-integration") == 0)
            continue;
        if (i + 1 >= argc)
            return die_usage("missing value for", a);
        const char *v = argv[++i];
        if (strcmp(a, "--listen") == 0) {
            const char *colon = strrchr(v, ':');
            char *end;
            if (!colon || strncmp(v, "127.0.0.1", (size_t)(colon - v)) != 0 || colon - v != 9)
                return die_usage("--listen accepts only 127.0.0.1:PORT", v);
            long p = strtol(colon + 1, &end, 10);
            if (*end || p < 0 || p > 65535)
                return die_usage("bad port", v);
            port = (int)p;
        } else if (strcmp(a, "--time-scale") == 0) {
            char *end;
            sim.time_scale = strtod(v, &end);
            if (*end || !(sim.time_scale > 0))
                return die_usage("--time-scale needs a positive number", v);
        } else if (strcmp(a, "--latency-ms") == 0) {
            /* MIN-MAX, or one value for both; nothing may follow. */
            int lo, hi;
            char *end;
            if (!parse_nonneg_int(v, &end, &lo))
                return die_usage("--latency-ms needs MIN-MAX", v);
            if (*end == '-') {
                if (!parse_nonneg_int(end + 1, &end, &hi) || *end || hi < lo)
                    return die_usage("--latency-ms needs MIN-MAX", v);
                sim.cli_faults.latency_min = lo;
                sim.cli_faults.latency_max = hi;
            } else if (*end == 0) {
                sim.cli_faults.latency_min = sim.cli_faults.latency_max = lo;
            } else {
                return die_usage("--latency-ms needs MIN-MAX", v);
            }
        } else if (strcmp(a, "--account") == 0) {
            cur = sim_account_new(v);
            last_key = NULL;
        } else if (strcmp(a, "--key") == 0) {
            if (!cur)
                return die_usage("--key must follow --account", v);
            if (sim_key_find(v))
                return die_usage("the same key was given twice", NULL);
            last_key = sim_key_add(cur, v, "all", true);
        } else if (strcmp(a, "--scopes") == 0) {
            if (!last_key)
                return die_usage("--scopes must follow --key", v);
            free(last_key->scopes);
            last_key->scopes = strdup(v);
            if (!last_key->scopes)
                abort();
        } else if (strcmp(a, "--public-url") == 0) {
            /* Links are followed with the key attached: only ever to this machine. */
            if (strncmp(v, "http://127.0.0.1:", 17) != 0 || strlen(v) >= sizeof sim.base_url ||
                strspn(v + 17, "0123456789") != strlen(v + 17) || !v[17])
                return die_usage("--public-url accepts only http://127.0.0.1:PORT", v);
            public_url = v;
        } else if (strcmp(a, "--seed") == 0) {
            continue;
        } else {
            return die_usage("unknown option", a);
        }
    }
    if (port < 0)
        return die_usage("--listen 127.0.0.1:PORT is required", NULL);
    sim.cli_faults.revoke_after = -1;
    sim.faults = sim.cli_faults;
    sim.start_wall_ms = time_now_ms();
    sim.start_mono_ms = time_mono_ms();
    if (server_init_routes() != 0)
        return 1;

    int bound = 0;
    int fd = sim_listen_loopback(port, &bound);
    if (fd < 0) {
        fprintf(stderr, "cadence-klaviyo-sim: cannot listen on 127.0.0.1:%d: %s\n", port,
                strerror(errno));
        return 1;
    }
    char listen_url[64];
    snprintf(listen_url, sizeof listen_url, "http://127.0.0.1:%d", bound);
    snprintf(sim.base_url, sizeof sim.base_url, "%s", public_url ? public_url : listen_url);

    sigset_t set;
    sim_block_stop_signals(&set);

    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL,
        server_access, NULL, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED,
        server_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "cadence-klaviyo-sim: cannot start the HTTP server\n");
        return 1;
    }
    printf("listening on %s\n", listen_url);
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    close(fd);
    return 0;
}
