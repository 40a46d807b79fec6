/*
 * Tests of the plan engine's pure parts: unified and field-by-field diffs, the rate-limit estimate
 * with daily caps, the plan hash, $ref resolution into remote ids, the action each step takes per
 * kind (forms and flow definitions replace, images are never deleted, deletes only with prune),
 * dependency order, and the apply lease (two appliers, an expired lease taken over).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "plan/plan_int.h"
#include "testutil.h"

/* ---- diffs ---- */

static void test_diff_unified(void **state)
{
    (void)state;
    char *d =
        diff_unified("html", "<p>a</p>\n<p>b</p>\n<p>c</p>\n", "<p>a</p>\n<p>B</p>\n<p>c</p>\n");
    assert_non_null(d);
    assert_non_null(strstr(d, "@@"));
    assert_non_null(strstr(d, "-<p>b</p>"));
    assert_non_null(strstr(d, "+<p>B</p>"));
    assert_non_null(strstr(d, " <p>a</p>"));
    free(d);
    d = diff_unified("text", "same\n", "same\n");
    assert_non_null(d);
    assert_string_equal(d, "");
    free(d);
}

static void test_diff_attrs_field_by_field(void **state)
{
    (void)state;
    const struct kind_info *ki = kind_info(ASSET_LIST);
    json_t *want =
        json_pack("{s:s,s:s,s:i}", "name", "news", "opt_in_process", "double_opt_in", "n", 1);
    json_t *live =
        json_pack("{s:s,s:s,s:i}", "name", "news", "opt_in_process", "single_opt_in", "n", 1);
    char *d = diff_attrs(ki, want, live);
    assert_non_null(d);
    assert_non_null(strstr(d, "opt_in_process"));
    assert_non_null(strstr(d, "single_opt_in"));
    assert_non_null(strstr(d, "double_opt_in"));
    assert_null(strstr(d, "name"));
    free(d);
    json_decref(want);
    json_decref(live);

    ki = kind_info(ASSET_TEMPLATE);
    want = json_pack("{s:s,s:s}", "name", "w", "html", "<h1>Hi</h1>\n<p>new</p>\n");
    live = json_pack("{s:s,s:s}", "name", "w", "html", "<h1>Hi</h1>\n<p>old</p>\n");
    d = diff_attrs(ki, want, live);
    assert_non_null(d);
    assert_non_null(strstr(d, "-<p>old</p>"));
    assert_non_null(strstr(d, "+<p>new</p>"));
    free(d);
    json_decref(want);
    json_decref(live);
}

/* ---- the estimate ---- */

static json_t *calls_of(const char *op, const char *path, int n)
{
    json_t *all = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(all, json_pack("[{s:s,s:s}]", "operation", op, "path", path));
    return all;
}

static void test_estimate_daily_cap(void **state)
{
    (void)state;
    int64_t ms = 0;
    json_t *calls = calls_of("create_segment", "/api/segments", 120);
    json_t *est = plan_estimate(calls, 0, 0, 0, &ms);
    const char *text = json_string_value(json_object_get(est, "text"));
    assert_non_null(text);
    assert_non_null(strstr(text, "120 create_segment"));
    assert_non_null(strstr(text, "Klaviyo allows 100 a day"));
    assert_non_null(strstr(text, "finish tomorrow"));
    assert_true(ms >= 86400LL * 1000);
    json_decref(est);
    json_decref(calls);

    calls = calls_of("create_segment", "/api/segments", 250);
    est = plan_estimate(calls, 0, 0, 0, &ms);
    assert_non_null(strstr(json_string_value(json_object_get(est, "text")), "in 3 days"));
    assert_true(ms >= 2 * 86400LL * 1000);
    json_decref(est);
    json_decref(calls);
}

static void test_estimate_windows(void **state)
{
    (void)state;
    int64_t ms = -1;
    json_t *calls = json_array();
    json_t *est = plan_estimate(calls, 0, 0, 0, &ms);
    assert_int_equal(ms, 0);
    assert_non_null(strstr(json_string_value(json_object_get(est, "text")), "nothing to change"));
    json_decref(est);
    json_decref(calls);

    /* 20 segments at 1/s and 15/min: the 16th waits for the next minute */
    calls = calls_of("create_segment", "/api/segments", 20);
    est = plan_estimate(calls, 0, 0, 0, &ms);
    assert_int_equal(ms, 64000);
    assert_null(strstr(json_string_value(json_object_get(est, "text")), "tomorrow"));
    assert_non_null(strstr(json_string_value(json_object_get(est, "text")), "create_segment"));
    json_decref(est);
    json_decref(calls);

    /* catalog items count as bulk jobs, not single calls */
    calls = calls_of("create_catalog_item", "/api/catalog-items", 500);
    est = plan_estimate(calls, 5, 0, 0, &ms);
    json_t *ops = json_object_get(est, "operations");
    bool job = false, single = false;
    size_t i;
    json_t *o;
    json_array_foreach(ops, i, o)
    {
        const char *op = json_string_value(json_object_get(o, "operation"));
        job |= strcmp(op, "bulk_create_catalog_items") == 0 &&
               json_integer_value(json_object_get(o, "calls")) == 5;
        single |= strcmp(op, "create_catalog_item") == 0;
    }
    assert_true(job);
    assert_false(single);
    json_decref(est);
    json_decref(calls);
}

/* ---- the plan hash ---- */

static void hash_of(const char *tenant, const char *bundle, struct plan_step *s, size_t n,
                    char out[65])
{
    plan_hash(tenant, bundle, false, s, n, out);
    assert_int_equal(strlen(out), 64);
}

static void test_plan_hash(void **state)
{
    (void)state;
    struct plan_step s[2] = {0};
    s[0] = (struct plan_step){.seq = 1, .kind = ASSET_LIST, .name = "news", .action = PLAN_CREATE};
    s[1] = (struct plan_step){.seq = 2,
                              .kind = ASSET_SEGMENT,
                              .name = "engaged",
                              .action = PLAN_UPDATE,
                              .remote_id = "S1",
                              .remote_updated = "t1"};
    memset(s[0].content_hash, 'a', 64);
    memset(s[1].content_hash, 'b', 64);
    s[0].deps = json_array();
    s[1].deps = json_pack("[i]", 1);
    char h0[65], h[65];
    hash_of("acme", "B", s, 2, h0);
    hash_of("acme", "B", s, 2, h);
    assert_string_equal(h0, h); /* stable */
    hash_of("other", "B", s, 2, h);
    assert_string_not_equal(h0, h); /* tenant */
    hash_of("acme", "C", s, 2, h);
    assert_string_not_equal(h0, h); /* bundle content */
    plan_hash("acme", "B", true, s, 2, h);
    assert_string_not_equal(h0, h); /* prune */
    s[1].content_hash[0] = 'c';
    hash_of("acme", "B", s, 2, h);
    assert_string_not_equal(h0, h); /* a step's content */
    s[1].content_hash[0] = 'b';
    s[1].action = PLAN_REPLACE;
    hash_of("acme", "B", s, 2, h);
    assert_string_not_equal(h0, h); /* a step's action */
    s[1].action = PLAN_UPDATE;
    s[1].remote_updated = "t2";
    hash_of("acme", "B", s, 2, h);
    assert_string_not_equal(h0, h); /* the live object it was planned against */
    s[1].remote_updated = "t1";
    hash_of("acme", "B", s, 1, h);
    assert_string_not_equal(h0, h); /* a step fewer */
    json_array_clear(s[1].deps);
    hash_of("acme", "B", s, 2, h);
    assert_string_not_equal(h0, h); /* dependencies */
    json_array_append_new(s[1].deps, json_integer(1));
    hash_of("acme", "B", s, 2, h);
    assert_string_equal(h0, h);
    json_decref(s[0].deps);
    json_decref(s[1].deps);
}

/* ---- $ref resolution ---- */

static const char *resolve_known(void *ctx, enum asset_kind kind, const char *name)
{
    (void)ctx;
    if (kind == ASSET_LIST && strcmp(name, "news") == 0)
        return "LIST1";
    if (kind == ASSET_TEMPLATE && strcmp(name, "welcome") == 0)
        return "TPL1";
    return NULL;
}

static void test_attrs_resolve(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *attrs =
        json_loads("{\"audiences\":{\"included\":[{\"$ref\":\"list:news\"}]},"
                   "\"template\":{\"data\":{\"$ref\":\"template:welcome\"}},\"plain\":\"x\"}",
                   0, &jerr);
    assert_non_null(attrs);
    bool unresolved = false;
    json_t *r = attrs_resolve(attrs, resolve_known, NULL, &unresolved);
    assert_false(unresolved);
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_object_get(r, "audiences"), "included"), 0)),
                        "LIST1");
    json_t *data = json_object_get(json_object_get(r, "template"), "data");
    assert_string_equal(json_string_value(json_object_get(data, "type")), "template");
    assert_string_equal(json_string_value(json_object_get(data, "id")), "TPL1");
    assert_string_equal(json_string_value(json_object_get(r, "plain")), "x");
    /* the original keeps its refs */
    assert_non_null(json_object_get(
        json_array_get(json_object_get(json_object_get(attrs, "audiences"), "included"), 0),
        "$ref"));
    json_decref(r);
    json_decref(attrs);

    attrs = json_pack("{s:{s:s}}", "list", "$ref", "list:missing");
    r = attrs_resolve(attrs, resolve_known, NULL, &unresolved);
    assert_true(unresolved);
    assert_non_null(strstr(json_string_value(json_object_get(r, "list")), "list:missing"));
    json_decref(r);
    json_decref(attrs);
}

/* ---- actions per kind ---- */

static enum plan_action decide(enum asset_kind k, const char *want_value, const char *live_value,
                               const struct plan_recorded *r, bool present)
{
    struct bundle_asset a = {.kind = k, .name = "x"};
    a.attrs = json_pack("{s:s,s:s}", "name", "x", "status", want_value);
    memset(a.content_hash, 'a', 64);
    struct remote_obj live = {.id = "R1", .name = "x", .updated = "t1"};
    live.attrs = json_pack("{s:s,s:s}", "name", "x", "status", live_value);
    enum plan_action act = plan_decide(&a, present ? &live : NULL, r, a.attrs, false);
    json_decref(a.attrs);
    json_decref(live.attrs);
    return act;
}

static void test_decide(void **state)
{
    (void)state;
    assert_int_equal(decide(ASSET_TEMPLATE, "a", "a", NULL, false), PLAN_CREATE);
    assert_int_equal(decide(ASSET_TEMPLATE, "a", "a", NULL, true), PLAN_UNCHANGED);
    assert_int_equal(decide(ASSET_TEMPLATE, "a", "b", NULL, true), PLAN_UPDATE);
    assert_int_equal(decide(ASSET_LIST, "a", "b", NULL, true), PLAN_UPDATE);
    assert_int_equal(decide(ASSET_FORM, "a", "b", NULL, true), PLAN_REPLACE);
    assert_int_equal(decide(ASSET_FLOW, "a", "b", NULL, true), PLAN_REPLACE);
    assert_int_equal(decide(ASSET_IMAGE, "a", "b", NULL, true), PLAN_REPLACE);
    assert_int_equal(decide(ASSET_FORM, "a", "a", NULL, true), PLAN_UNCHANGED);
    /* what Cadence recorded still matches the live object: unchanged whatever Klaviyo echoes */
    char hash[65];
    memset(hash, 'a', 64);
    hash[64] = '\0';
    struct plan_recorded r = {
        .kind = ASSET_TEMPLATE, .name = "x", .remote_id = "R1", .hash = hash, .updated = "t1"};
    assert_int_equal(decide(ASSET_TEMPLATE, "a", "b", &r, true), PLAN_UNCHANGED);
    /* ... but not once it was changed in Klaviyo since */
    r.updated = "t0";
    assert_int_equal(decide(ASSET_TEMPLATE, "a", "b", &r, true), PLAN_UPDATE);
    /* or once the bundle's content changed */
    r.updated = "t1";
    r.hash = "b";
    assert_int_equal(decide(ASSET_TEMPLATE, "a", "b", &r, true), PLAN_UPDATE);
}

static void test_prune_rules(void **state)
{
    (void)state;
    assert_false(plan_prunes(false, ASSET_LIST, false)); /* only with --prune */
    assert_true(plan_prunes(true, ASSET_LIST, false));
    assert_false(plan_prunes(true, ASSET_LIST, true));   /* still in the bundle */
    assert_false(plan_prunes(true, ASSET_IMAGE, false)); /* images are never deleted */
    assert_true(plan_prunes(true, ASSET_FORM, false));
}

/* ---- dependency order ---- */

static void test_dependency_order(void **state)
{
    (void)state;
    struct bundle *b = NULL;
    struct bundle_error errs[8];
    size_t nerr = 0;
    assert_int_equal(bundle_load(CADENCE_EXAMPLE_BUNDLE, &b, errs, 8, &nerr), CAD_OK);
    int *seq_of = calloc(b->n_assets + 1, sizeof *seq_of);
    assert_non_null(seq_of);
    bool saw_deps = false;
    for (size_t oi = 0; oi < b->n_assets; oi++) {
        size_t i = b->order[oi];
        const struct bundle_asset *a = &b->assets[i];
        seq_of[i] = (int)oi + 1;
        json_t *deps = plan_step_deps(b, a, seq_of);
        size_t k;
        json_t *d;
        json_array_foreach(deps, k, d)
        {
            json_int_t seq = json_integer_value(d);
            assert_true(seq >= 1 && seq < (json_int_t)oi + 1); /* what it needs comes first */
            for (size_t q = k + 1; q < json_array_size(deps); q++)
                assert_int_not_equal(seq, json_integer_value(json_array_get(deps, q)));
            saw_deps = true;
        }
        /* every ref to an asset of the bundle is a dependency */
        for (size_t r = 0; r < a->n_refs; r++) {
            const struct bundle_asset *t = bundle_find(b, a->refs[r].kind, a->refs[r].name);
            if (!t)
                continue;
            bool found = false;
            json_array_foreach(deps, k, d) found |= json_integer_value(d) == seq_of[t - b->assets];
            assert_true(found);
        }
        json_decref(deps);
    }
    assert_true(saw_deps);
    free(seq_of);
    bundle_free(b);
}

/* ---- the apply lease ---- */

/* A fresh store in a scratch directory, foreign keys off (the tests insert rows out of order). */
static store *scratch_store(char **dir)
{
    *dir = test_tmpdir();
    assert_non_null(*dir);
    char url[4200];
    snprintf(url, sizeof url, "sqlite:%s/t.db", *dir);
    store *st = NULL;
    assert_int_equal(store_open(&st, url), CAD_OK);
    assert_int_equal(store_exec(st, "PRAGMA foreign_keys = OFF", SV_NONE), CAD_OK);
    return st;
}

static void test_lease(void **state)
{
    (void)state;
    char *dir = NULL;
    store *st = scratch_store(&dir);

    struct plan_lease a, b, c;
    assert_int_equal(plan_lease_take(st, "pl-1", 0, &a), CAD_OK);
    assert_int_equal(a.ttl_ms, PLAN_LEASE_TTL_MS);
    /* a second applier (another thread of this process, say) is refused, and told by whom */
    assert_int_equal(plan_lease_take(st, "pl-1", 0, &b), CAD_ESTATE);
    char want[512];
    snprintf(want, sizeof want, "plan pl-1 is being applied by process %ld on host %s since ",
             (long)getpid(), a.host);
    assert_non_null(strstr(cad_errmsg(), want));
    /* another plan is not affected */
    assert_int_equal(plan_lease_take(st, "pl-2", 0, &c), CAD_OK);
    plan_lease_release(st, &c);
    assert_int_equal(plan_lease_renew(st, &a), CAD_OK);

    /* the holder stops renewing (crashed or hung): once expired, the lease is taken over */
    assert_int_equal(
        store_exec(st, "UPDATE plan_leases SET expires_ms = 1 WHERE plan_id = 'pl-1'", SV_NONE),
        CAD_OK);
    assert_int_equal(plan_lease_take(st, "pl-1", 0, &b), CAD_OK);
    assert_string_not_equal(a.holder, b.holder);
    /* the old holder learns it lost the plan, and its release leaves the new lease alone */
    assert_int_equal(plan_lease_renew(st, &a), CAD_ESTATE);
    plan_lease_release(st, &a);
    assert_int_equal(plan_lease_take(st, "pl-1", 0, &c), CAD_ESTATE);
    plan_lease_release(st, &b);
    assert_int_equal(plan_lease_take(st, "pl-1", 0, &c), CAD_OK);
    plan_lease_release(st, &c);

    /* a holder process gone from this host is recognized without waiting for the TTL */
    assert_false(plan_lease_holder_gone(a.host, (int64_t)getpid()));
    assert_false(plan_lease_holder_gone("another-host.example", 999999999));
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    assert_true(child > 0);
    int status;
    waitpid(child, &status, 0);
    assert_true(plan_lease_holder_gone(a.host, child));
    store_close(st);
    test_rmdir(dir);
}

/* A plan's own rows (tenant "t", hash "h"), its steps left to the test. */
static void plan_rows(store *st, const char *id, const char *status, int nsteps)
{
    assert_int_equal(
        store_exec(st,
                   "INSERT INTO plans (id, tenant_id, bundle_dir, bundle_hash, hash, prune, "
                   "created_ms, created_by, expires_ms, estimate_ms, estimate, n_steps) VALUES "
                   "($1, 't', 'b', 'bh', 'h', 0, 1, 'me', 2, 0, '{}', $2)",
                   SV_ARGS(SV_TEXT(id), SV_INT(nsteps))),
        CAD_OK);
    assert_int_equal(store_exec(st,
                                "INSERT INTO plan_state (plan_id, status, updated_ms) VALUES "
                                "($1, $2, 1)",
                                SV_ARGS(SV_TEXT(id), SV_TEXT(status))),
                     CAD_OK);
}

/* What plan_print_json prints for a plan (the caller frees it). */
static char *print_json(store *st, const char *id)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(plan_print_json(st, id, NULL, f), CAD_OK);
    fclose(f);
    return buf;
}

/* plan_print_json writes each step straight from its row; what it writes must be what
 * plan_to_json (jansson) builds, member for member and byte for byte, for any text: quotes,
 * backslashes, control characters, accents, CJK, an emoji (a surrogate pair), a remote id and
 * an error present or not. */
static void test_print_json_matches_jansson(void **state)
{
    (void)state;
    char *dir = NULL;
    store *st = scratch_store(&dir);
    plan_rows(st, "pl-x", "planned", 3);
    const char *names[] = {"plain", "quote \" back \\ slash / tab\t nl\n cr\r bell\x07 del\x7f",
                           "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x9b\x92 end"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(
            store_exec(st,
                       "INSERT INTO plan_steps (plan_id, seq, kind, name, action, content_hash, "
                       "remote_id, remote_updated, deps, calls, diff, note, token) VALUES "
                       "('pl-x', $1, 'catalog-item', $2, 'create', 'c', $3, NULL, $4, "
                       "'[{\"method\": \"POST\", \"per\": 100}]', $2, 'n\xc3\xb6te', 'tok')",
                       SV_ARGS(SV_INT(i + 1), SV_TEXT(names[i]),
                               i == 1 ? SV_NULL : SV_TEXT(names[i]), SV_TEXT(i ? "[1, 2]" : "[]"))),
            CAD_OK);
    assert_int_equal(store_exec(st,
                                "INSERT INTO plan_step_runs (plan_id, seq, state, error, "
                                "updated_ms) VALUES ('pl-x', 2, 'failed', $1, 1)",
                                SV_ARGS(SV_TEXT(names[2]))),
                     CAD_OK);
    char *buf = print_json(st, "pl-x");
    json_t *printed = json_loads(buf, 0, NULL);
    assert_non_null(printed);
    json_t *built = NULL;
    assert_int_equal(plan_to_json(st, "pl-x", &built), CAD_OK);
    const json_t *ps = json_object_get(printed, "steps"), *bs = json_object_get(built, "steps");
    assert_int_equal(json_array_size(ps), 3);
    assert_true(json_equal(ps, bs));
    assert_true(json_equal(json_object_get(printed, "counts"), json_object_get(built, "counts")));
    /* and byte for byte: each step as jansson prints it appears in the output */
    for (size_t i = 0; i < 3; i++) {
        char *one = json_dumps(json_array_get(bs, i), JSON_COMPACT | JSON_ENSURE_ASCII);
        assert_non_null(one);
        if (!strstr(buf, one))
            fail_msg("step %zu printed differently; jansson: %s\noutput: %s", i, one, buf);
        free(one);
    }
    json_decref(printed);
    json_decref(built);
    free(buf);
    store_close(st);
    test_rmdir(dir);
}

/* A plan read in pieces: plan_steps_json's pages are the steps at those places, the summary's
 * nsteps, counts, states and campaigns describe the whole plan, and both agree with what
 * plan_print_json prints (its own way of reading and counting). */
static void test_json_page(void **state)
{
    (void)state;
    char *dir = NULL;
    store *st = scratch_store(&dir);
    plan_rows(st, "pl-p", "partial", 1200);
    /* 1,200 steps: campaigns at 652, 7 and 1190 (deleted); a fifth unchanged, and of the others
     * a third updates */
    assert_int_equal(
        store_exec(st,
                   "INSERT INTO plan_steps (plan_id, seq, kind, name, action, content_hash, "
                   "remote_id, remote_updated, deps, calls, diff, note, token) WITH RECURSIVE "
                   "n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200) SELECT "
                   "'pl-p', i, CASE WHEN i IN (7, 652, 1190) THEN 'campaign' ELSE 'template' "
                   "END, CASE WHEN i = 652 THEN 'autumn' WHEN i = 7 THEN 'welcome' ELSE 'n-' || "
                   "i END, CASE WHEN i = 1190 THEN 'delete' WHEN i % 5 = 0 THEN 'unchanged' WHEN "
                   "i % 3 = 0 THEN 'update' ELSE 'create' END, 'c', NULL, NULL, CASE WHEN i > 1 "
                   "THEN '[' || (i - 1) || ']' "
                   "ELSE '[]' END, '[]', 'd' || i, '', 'tok' FROM n",
                   SV_NONE),
        CAD_OK);
    /* the last apply: 300 done, 10 failed, one step it had only recorded as pending */
    assert_int_equal(
        store_exec(st,
                   "INSERT INTO plan_step_runs (plan_id, seq, state, error, updated_ms) WITH "
                   "RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 311) "
                   "SELECT 'pl-p', i, CASE WHEN i <= 300 THEN 'done' WHEN i <= 310 THEN 'failed' "
                   "ELSE 'pending' END, CASE WHEN i > 300 AND i <= 310 THEN 'no' END, 1 FROM n",
                   SV_NONE),
        CAD_OK);
    json_t *all = NULL;
    assert_int_equal(plan_to_json(st, "pl-p", &all), CAD_OK);
    const json_t *steps = json_object_get(all, "steps");
    assert_int_equal(json_array_size(steps), 1200);
    char *buf = print_json(st, "pl-p");
    json_t *printed = json_loads(buf, 0, NULL);
    free(buf);
    assert_non_null(printed);
    assert_true(json_equal(json_object_get(printed, "steps"), steps));
    assert_true(json_equal(json_object_get(printed, "counts"), json_object_get(all, "counts")));
    json_decref(printed);

    json_t *sum = NULL;
    assert_int_equal(plan_summary_json(st, "pl-p", &sum), CAD_OK);
    assert_null(json_object_get(sum, "steps"));
    assert_int_equal(json_integer_value(json_object_get(sum, "nsteps")), 1200);
    assert_true(json_equal(json_object_get(sum, "counts"), json_object_get(all, "counts")));
    json_t *totals = json_pack("{s:i,s:i,s:i}", "done", 300, "failed", 10, "pending", 890);
    assert_true(json_equal(json_object_get(sum, "states"), totals));
    json_decref(totals);
    totals = json_pack("[s,s]", "welcome", "autumn");
    assert_true(json_equal(json_object_get(sum, "campaigns"), totals));
    json_decref(totals);
    assert_string_equal(json_string_value(json_object_get(sum, "status")), "partial");
    assert_string_equal(json_string_value(json_object_get(sum, "hash")), "h");
    json_decref(sum);

    struct {
        int64_t from, limit;
        size_t first, n; /* the page: steps[first..first+n) of the whole plan */
    } pages[] = {{0, 0, 0, 0},
                 {0, 500, 0, 500},
                 {501, 500, 500, 500},
                 {1101, 500, 1100, 100},
                 {5000, 500, 0, 0}};
    for (size_t k = 0; k < sizeof pages / sizeof pages[0]; k++) {
        json_t *ps = NULL;
        assert_int_equal(
            plan_steps_json(st, "pl-p", pages[k].from, 0, pages[k].limit, PLAN_STEPS_ALL, &ps),
            CAD_OK);
        assert_int_equal(json_array_size(ps), pages[k].n);
        for (size_t i = 0; i < pages[k].n; i++)
            if (!json_equal(json_array_get(ps, i), json_array_get(steps, pages[k].first + i)))
                fail_msg("page %zu: step %zu differs from plan_to_json's", k, i);
        json_decref(ps);
    }
    json_t *c = json_object_get(all, "counts");
    assert_int_equal(json_integer_value(json_object_get(c, "update")), 320);
    assert_int_equal(json_integer_value(json_object_get(c, "delete")), 1);
    assert_int_equal(json_integer_value(json_object_get(c, "unchanged")), 239);
    assert_int_equal(json_integer_value(json_object_get(c, "create")), 640);

    /* the steps a reader must read (unchanged ones with an error among them: 305 and 310
     * failed) and the others: disjoint, in order, together the plan */
    json_t *changed = NULL, *same = NULL;
    assert_int_equal(plan_steps_json(st, "pl-p", 0, 0, 5000, PLAN_STEPS_CHANGED, &changed), CAD_OK);
    assert_int_equal(plan_steps_json(st, "pl-p", 0, 0, 5000, PLAN_STEPS_UNCHANGED, &same), CAD_OK);
    assert_int_equal(json_array_size(changed), 1200 - 237);
    assert_int_equal(json_array_size(same), 237);
    size_t ic = 0, is = 0;
    for (size_t i = 0; i < 1200; i++) {
        const json_t *want = json_array_get(steps, i);
        const json_t *c1 = json_array_get(changed, ic), *s1 = json_array_get(same, is);
        if (c1 && json_equal(c1, want))
            ic++;
        else if (s1 && json_equal(s1, want))
            is++;
        else
            fail_msg("step %zu is in neither list, or out of order", i + 1);
    }
    assert_string_equal(json_string_value(json_object_get(json_array_get(same, 0), "action")),
                        "unchanged");
    json_decref(changed);
    changed = NULL;
    assert_int_equal(plan_steps_json(st, "pl-p", 301, 0, 3, PLAN_STEPS_CHANGED, &changed), CAD_OK);
    json_t *seqs = json_array();
    for (size_t i = 0; i < json_array_size(changed); i++)
        json_array_append(seqs, json_object_get(json_array_get(changed, i), "seq"));
    json_t *want_seqs = json_pack("[i,i,i]", 301, 302, 303);
    assert_true(json_equal(seqs, want_seqs));
    json_decref(want_seqs);
    json_decref(seqs);
    json_decref(changed);
    json_decref(same);
    same = NULL; /* below to_seq only: 5, 10, 15 and 20 of 1..20 */
    assert_int_equal(plan_steps_json(st, "pl-p", 1, 21, 100, PLAN_STEPS_UNCHANGED, &same), CAD_OK);
    assert_int_equal(json_array_size(same), 4);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(same, 3), "seq")), 20);
    json_decref(same);
    /* the text a page at a time (1,000): steps from the second page are shown, and what is
     * hidden is counted under the kind the plan names */
    char *text = NULL;
    size_t tlen = 0;
    FILE *f = open_memstream(&text, &tlen);
    assert_non_null(f);
    assert_int_equal(plan_print_text(st, "pl-p", f), CAD_OK);
    fclose(f);
    const char *want[] = {"Plan pl-p for t: partial\n",
                          "create 640, update 320, replace 0, delete 1, unchanged 239\n",
                          "   7. create    campaign \"welcome\"",
                          " 652. create    campaign \"autumn\"",
                          "1190. delete    campaign \"n-1190\"",
                          "… and 935 more template steps (see --json)\n",
                          "      237 assets unchanged\n"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(text, want[i]))
            fail_msg("plan_print_text lacks '%s':\n%s", want[i], text);
    assert_null(strstr(text, "image"));
    free(text);
    json_t *none = NULL;
    assert_int_equal(plan_summary_json(st, "pl-nope", &none), CAD_ENOTFOUND);
    cad_err_clear();
    json_decref(all);
    store_close(st);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diff_unified),
        cmocka_unit_test(test_diff_attrs_field_by_field),
        cmocka_unit_test(test_estimate_daily_cap),
        cmocka_unit_test(test_estimate_windows),
        cmocka_unit_test(test_plan_hash),
        cmocka_unit_test(test_attrs_resolve),
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_prune_rules),
        cmocka_unit_test(test_dependency_order),
        cmocka_unit_test(test_lease),
        cmocka_unit_test(test_print_json_matches_jansson),
        cmocka_unit_test(test_json_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
