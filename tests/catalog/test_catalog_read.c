/*
 * shop_read_catalog in paged and auto mode against cadence-shopify-sim (started by the test on a
 * free loopback port): every product handed over once and mappable, the cost-based throttle
 * respected by waiting (no THROTTLED answer: one query per page), a wrong token reported as
 * CAD_EAUTH after the confirming query, and every call audited without the token.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit/audit.h"
#include "catalog/catalog.h"
#include "common/err.h"
#include "common/secret.h"
#include "testutil.h"

extern char **environ;

#define TOKEN "shpat_0123456789abcdef0123456789abcdef"

struct sim {
    pid_t pid;
    char url[128];
};

/* wide: --wide-product's variant count for product 1, or NULL. */
static void sim_start(struct sim *s, const char *products, const char *wide)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
    /* not the test's stderr: a stand-in left behind must not hold ctest's pipe open */
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    char *argv[] = {SHOPIFY_SIM_PATH,
                    "--listen",
                    "127.0.0.1:0",
                    "--shop",
                    "Acme",
                    "--token",
                    TOKEN,
                    "--products",
                    (char *)products,
                    wide ? "--wide-product" : NULL,
                    (char *)wide,
                    NULL};
    assert_int_equal(posix_spawn(&s->pid, argv[0], &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    char line[256] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    const char *u = strstr(line, "http://");
    assert_non_null(u);
    snprintf(s->url, sizeof s->url, "%.*s", (int)strcspn(u, "\r\n"), u);
}

static void sim_stop(struct sim *s)
{
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
}

struct fx {
    char *dir;
    store *st;
    struct sim sim;
    cad_secret *tok; /* the stand-in's token */
};

/* The test's fixture, freed by teardown even when an assertion ended the test early. */
static struct fx *current;

static struct fx *fx_new_wide(const char *products, const char *wide)
{
    struct fx *f = calloc(1, sizeof *f);
    current = f;
    f->dir = test_tmpdir();
    char db[600];
    snprintf(db, sizeof db, "%s/t.db", f->dir);
    assert_int_equal(store_open(&f->st, db), CAD_OK);
    sim_start(&f->sim, products, wide);
    assert_int_equal(secret_from(&f->tok, TOKEN, strlen(TOKEN)), CAD_OK);
    setenv("CADENCE_SHOPIFY_URL", f->sim.url, 1);
    setenv("CADENCE_PROVIDER_TIMEOUT_MS", "5000", 1);
    return f;
}

static struct fx *fx_new(const char *products)
{
    return fx_new_wide(products, NULL);
}

static void fx_free(struct fx *f)
{
    current = NULL;
    secret_free(f->tok);
    if (f->sim.pid > 0)
        sim_stop(&f->sim);
    store_close(f->st);
    test_rmdir(f->dir);
    free(f);
}

struct got {
    long products, variants, drafts, mapped;
    long last_id;
    bool in_order;
};

static int take(void *ctx, const struct shop_product *p)
{
    struct got *g = ctx;
    long id = strtol(p->id, NULL, 10);
    if (id != g->last_id + 1)
        g->in_order = false;
    g->last_id = id;
    g->products++;
    g->variants += (long)p->n_variants;
    if (p->status && strcmp(p->status, "DRAFT") == 0)
        g->drafts++;
    json_t *item, *vars;
    char err[256];
    if (catalog_map_product(p, "acme.myshopify.com", &item, &vars, err, sizeof err) == CAD_OK) {
        g->mapped++;
        json_decref(item);
        json_decref(vars);
    }
    return 0;
}

struct trail {
    long calls, ok, with_token;
};

static int trail_row(void *ctx, const struct audit_record *r)
{
    struct trail *t = ctx;
    t->calls++;
    if (r->status == 200)
        t->ok++;
    if ((r->detail && strstr(r->detail, TOKEN)) || (r->endpoint && strstr(r->endpoint, TOKEN)))
        t->with_token++;
    return 0;
}

/* Reads the stand-in's shop as tenant "acme" with token tok, handing products to take(). */
static int read_shop(struct fx *f, const cad_secret *tok, enum shop_read_mode mode, struct got *g,
                     struct shop_read_stats *s)
{
    return shop_read_catalog(f->st, "acme", "system", "acme.myshopify.com", tok, mode, take, g, s);
}

static void test_paged_throttled(void **state)
{
    (void)state;
    struct fx *f = fx_new("300");
    struct got g = {.in_order = true};
    struct shop_read_stats s;
    assert_int_equal(read_shop(f, f->tok, SHOP_READ_PAGED, &g, &s), CAD_OK);
    assert_int_equal(g.products, 300);
    assert_true(g.in_order);
    assert_int_equal(g.variants, 900);
    assert_int_equal(g.drafts, 12); /* the stand-in makes every 25th product a draft */
    assert_int_equal(g.mapped, 300);
    assert_int_equal(s.products, 300);
    assert_int_equal(s.variants, 900);
    /* 250 + 50: the second page asks for 1002 points with about 998 left, so it waits for the
     * bucket (unless the first page took long enough to refill it) and is never THROTTLED: one
     * query per page. */
    assert_int_equal(s.queries, 2);
    assert_true(s.throttled_waits <= 1);
    assert_true(s.bytes > 0);
    struct trail t = {0};
    struct audit_filter flt = {.tenant_id = "acme", .action = "shopify.call"};
    assert_int_equal(audit_list(f->st, &flt, trail_row, &t), CAD_OK);
    assert_int_equal(t.calls, 2);
    assert_int_equal(t.ok, 2);
    assert_int_equal(t.with_token, 0);
    fx_free(f);
}

static void test_auto_small_shop(void **state)
{
    (void)state;
    struct fx *f = fx_new("5");
    struct got g = {.in_order = true};
    struct shop_read_stats s;
    assert_int_equal(read_shop(f, f->tok, SHOP_READ_AUTO, &g, &s), CAD_OK);
    assert_int_equal(g.products, 5);
    assert_int_equal(g.variants, 15);
    assert_int_equal(s.queries, 1);
    fx_free(f);
}

/* A small shop whose first product has 150 variants, more than a page carries (100): auto mode
 * reads it in bulk, every variant handed over; paged mode refuses it with a clear error instead
 * of handing over a product without its last 50 variants. */
static void test_wide_product(void **state)
{
    (void)state;
    struct fx *f = fx_new_wide("5", "150");
    struct got g = {.in_order = true};
    struct shop_read_stats s;
    assert_int_equal(read_shop(f, f->tok, SHOP_READ_AUTO, &g, &s), CAD_OK);
    assert_int_equal(g.products, 5);
    assert_true(g.in_order);
    assert_int_equal(g.variants, 150 + 4 * 3);
    assert_int_equal(g.mapped, 5);
    /* the first page (discarded), the bulk operation and at least one poll of it */
    assert_true(s.queries >= 3);

    struct got p = {.in_order = true};
    assert_int_equal(read_shop(f, f->tok, SHOP_READ_PAGED, &p, NULL), CAD_EREMOTE);
    assert_non_null(strstr(cad_errmsg(), "more than 100 variants"));
    assert_non_null(strstr(cad_errmsg(), "bulk mode"));
    assert_int_equal(p.products, 0);
    cad_err_clear();
    fx_free(f);
}

static void test_wrong_token(void **state)
{
    (void)state;
    struct fx *f = fx_new("5");
    static const char wrong[] = "shpat_ffffffffffffffffffffffffffffffff";
    cad_secret *tok;
    assert_int_equal(secret_from(&tok, wrong, strlen(wrong)), CAD_OK);
    struct got g = {.in_order = true};
    struct shop_read_stats s;
    assert_int_equal(read_shop(f, tok, SHOP_READ_PAGED, &g, &s), CAD_EAUTH);
    assert_non_null(strstr(cad_errmsg(), "rejected the access token"));
    assert_null(strstr(cad_errmsg(), wrong));
    assert_int_equal(g.products, 0);
    assert_int_equal(s.queries, 2); /* the query and the confirming shop query */
    secret_free(tok);
    fx_free(f);
}

static void test_unreachable(void **state)
{
    (void)state;
    struct fx *f = fx_new("5");
    setenv("CADENCE_SHOPIFY_URL", "http://127.0.0.1:9", 1);
    struct got g = {0};
    assert_int_equal(read_shop(f, f->tok, SHOP_READ_PAGED, &g, NULL), CAD_ENET);
    fx_free(f);
}

static int teardown(void **state)
{
    (void)state;
    if (current)
        fx_free(current);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_paged_throttled, teardown),
        cmocka_unit_test_teardown(test_auto_small_shop, teardown),
        cmocka_unit_test_teardown(test_wide_product, teardown),
        cmocka_unit_test_teardown(test_wrong_token, teardown),
        cmocka_unit_test_teardown(test_unreachable, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
