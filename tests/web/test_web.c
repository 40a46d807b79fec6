/* Unit tests of the web module's pieces: HTML escaping, the router, forms, tokens and links,
 * CSRF tokens, the Verify throttle, and the metrics registry's exposition format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/metrics.h"
#include "common/util.h"
#include "testutil.h"
#include "web/web_internal.h"

static void test_html_escape(void **state)
{
    (void)state;
    struct wbuf b = {0};
    wbuf_html(&b, "<script>alert(\"x\" & 'y')</script>");
    assert_string_equal(b.data,
                        "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;");
    wbuf_free(&b);
    wbuf_fmt(&b, "<p title=\"%s\">%S %d %D %%</p>", "a\"b", "<b>raw</b>", -3, (int64_t)1 << 40);
    assert_string_equal(b.data, "<p title=\"a&quot;b\"><b>raw</b> -3 1099511627776 %</p>");
    wbuf_free(&b);
    wbuf_html(&b, "plain text stays");
    assert_string_equal(b.data, "plain text stays");
    wbuf_free(&b);
}

static void h_dummy(struct web_req *r)
{
    (void)r;
}

static const struct web_route table[] = {
    {"GET", "/", "root", h_dummy, 0},
    {"GET", "/onboard/:token", "onboard", h_dummy, ROUTE_TOKEN},
    {"GET", "/onboard/:token/:step", "step", h_dummy, ROUTE_TOKEN},
    {"POST", "/onboard/:token/verify", "verify", h_dummy, ROUTE_TOKEN | ROUTE_BODY},
};

static void test_router(void **state)
{
    (void)state;
    const struct web_route *r;
    struct route_params p;
    char allow[32];
    assert_int_equal(router_match(table, 4, "GET", "/", &r, &p, allow, sizeof allow), ROUTE_FOUND);
    assert_string_equal(r->name, "root");
    assert_int_equal(router_match(table, 4, "GET", "/onboard/abc", &r, &p, NULL, 0), ROUTE_FOUND);
    assert_string_equal(r->name, "onboard");
    assert_string_equal(route_param(&p, "token"), "abc");
    assert_null(route_param(&p, "step"));
    assert_int_equal(router_match(table, 4, "HEAD", "/onboard/abc/details", &r, &p, NULL, 0),
                     ROUTE_FOUND);
    assert_string_equal(route_param(&p, "step"), "details");
    /* GET on a POST-only path that also matches :step is the step route. */
    assert_int_equal(router_match(table, 4, "POST", "/onboard/abc/verify", &r, &p, NULL, 0),
                     ROUTE_FOUND);
    assert_string_equal(r->name, "verify");
    assert_int_equal(
        router_match(table, 4, "DELETE", "/onboard/abc/verify", &r, &p, allow, sizeof allow),
        ROUTE_BAD_METHOD);
    assert_string_equal(allow, "GET, POST");
    assert_int_equal(router_match(table, 4, "GET", "/onboard/", &r, &p, NULL, 0), ROUTE_NO_PATH);
    assert_int_equal(router_match(table, 4, "GET", "/onboard//x", &r, &p, NULL, 0), ROUTE_NO_PATH);
    assert_int_equal(router_match(table, 4, "GET", "/onboard/a/b/c", &r, &p, NULL, 0),
                     ROUTE_NO_PATH);
    assert_int_equal(router_match(table, 4, "GET", "/onboard/abc/", &r, &p, NULL, 0),
                     ROUTE_NO_PATH);
    assert_int_equal(router_match(table, 4, "GET", "", &r, &p, NULL, 0), ROUTE_NO_PATH);
    char longseg[300] = "/onboard/";
    memset(longseg + 9, 'a', 200);
    longseg[209] = 0;
    assert_int_equal(router_match(table, 4, "GET", longseg, &r, &p, NULL, 0), ROUTE_NO_PATH);
}

static void test_form(void **state)
{
    (void)state;
    struct web_form f;
    assert_int_equal(web_form_parse("a=1&b=x+y%21&c=&d", 17, &f), CAD_OK);
    assert_int_equal(f.n, 4);
    assert_string_equal(web_form_get(&f, "a"), "1");
    assert_string_equal(web_form_get(&f, "b"), "x y!");
    assert_string_equal(web_form_get(&f, "c"), "");
    assert_string_equal(web_form_get(&f, "d"), "");
    assert_null(web_form_get(&f, "e"));
    web_form_free(&f);
    assert_int_equal(web_form_parse("a=%2", 4, &f), CAD_EINVAL);
    assert_int_equal(f.n, 0);
    assert_int_equal(web_form_parse("a=%zz", 5, &f), CAD_EINVAL);
    assert_int_equal(web_form_parse("a=%00", 5, &f), CAD_EINVAL);
    assert_int_equal(web_form_parse("a=1&a=2", 7, &f), CAD_EINVAL);
    assert_int_equal(web_form_parse("=1", 2, &f), CAD_EINVAL);
    char many[200] = "";
    for (int i = 0; i < WEB_FORM_MAX_FIELDS + 1; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "f%d=1&", i);
    assert_int_equal(web_form_parse(many, strlen(many), &f), CAD_EINVAL);
    assert_int_equal(web_form_parse("", 0, &f), CAD_OK);
    assert_int_equal(f.n, 0);
}

static void test_tokens(void **state)
{
    (void)state;
    char a[WEB_TOKEN_LEN + 1], b[WEB_TOKEN_LEN + 1];
    assert_int_equal(onboard_token_new(a), CAD_OK);
    assert_int_equal(onboard_token_new(b), CAD_OK);
    assert_int_equal(strlen(a), WEB_TOKEN_LEN);
    assert_string_not_equal(a, b);
    assert_true(onboard_token_wellformed(a));
    assert_true(onboard_token_wellformed(b));
    char bad[WEB_TOKEN_LEN + 1];
    memcpy(bad, a, sizeof bad);
    bad[5] = '+';
    assert_false(onboard_token_wellformed(bad));
    bad[5] = a[5];
    bad[WEB_TOKEN_LEN - 1] = 'B'; /* low bits set: no 32-byte value encodes to this */
    assert_false(onboard_token_wellformed(bad));
    assert_false(onboard_token_wellformed("short"));
    assert_false(onboard_token_wellformed(NULL));
    /* base64url of known bytes, and the hash is SHA-256 of the token text */
    char enc[16];
    base64url_encode((const unsigned char *)"\xfb\xff\xbf", 3, enc);
    assert_string_equal(enc, "-_-_");
    base64url_encode((const unsigned char *)"ab", 2, enc);
    assert_string_equal(enc, "YWI");
    char h[65];
    onboard_token_hash("abc", h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_csrf(void **state)
{
    (void)state;
    cad_secret *k1, *k2;
    assert_int_equal(secret_from(&k1, "0123456789abcdef0123456789abcdef", 32), CAD_OK);
    assert_int_equal(secret_from(&k2, "fedcba9876543210fedcba9876543210", 32), CAD_OK);
    char t[WEB_TOKEN_LEN + 1], again[WEB_TOKEN_LEN + 1];
    web_csrf_token(k1, "aaaa", t);
    web_csrf_token(k1, "aaaa", again);
    assert_string_equal(t, again);
    assert_true(web_csrf_check(k1, "aaaa", t));
    assert_false(web_csrf_check(k1, "bbbb", t)); /* another link */
    assert_false(web_csrf_check(k2, "aaaa", t)); /* another server key */
    assert_false(web_csrf_check(k1, "aaaa", NULL));
    assert_false(web_csrf_check(k1, "aaaa", ""));
    t[0] = t[0] == 'A' ? 'B' : 'A';
    assert_false(web_csrf_check(k1, "aaaa", t));
    secret_free(k1);
    secret_free(k2);

    char *dir = test_tmpdir();
    cad_secret *s1, *s2;
    assert_int_equal(web_server_key_load(dir, &s1), CAD_OK);
    assert_int_equal(web_server_key_load(dir, &s2), CAD_OK);
    assert_int_equal(secret_len(s1), 32);
    assert_true(secret_equal(s1, s2));
    secret_free(s1);
    secret_free(s2);
    char path[600];
    snprintf(path, sizeof path, "%s/web.key", dir);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(web_server_key_load(dir, &s1), CAD_EPERM);
    test_rmdir(dir);
}

static void test_throttle(void **state)
{
    (void)state;
    web_throttle *t;
    assert_int_equal(web_throttle_new(&t, 20, 600000, 8), CAD_OK);
    const char *link_a[] = {"link:a", "addr:1"}, *link_b[] = {"link:b", "addr:1"};
    const int lim[] = {5, 7};
    int64_t retry = -1;
    for (int i = 0; i < 5; i++)
        assert_true(web_throttle_hit(t, link_a, lim, 2, 1000 + i, &retry));
    assert_int_equal(retry, 0);
    /* the 6th on link a is refused until the first attempt leaves the window */
    assert_false(web_throttle_hit(t, link_a, lim, 2, 2000, &retry));
    assert_int_equal(retry, 1000 + 600000 - 2000);
    /* another link from the same address: 2 more fit under the address limit of 7 */
    assert_true(web_throttle_hit(t, link_b, lim, 2, 3000, NULL));
    assert_true(web_throttle_hit(t, link_b, lim, 2, 3001, NULL));
    assert_false(web_throttle_hit(t, link_b, lim, 2, 3002, &retry));
    assert_true(retry > 0);
    /* a refused attempt recorded nothing: link b still has room once the address does */
    assert_true(web_throttle_hit(t, link_b, lim, 2, 601001, NULL));
    /* after the window link a is allowed again */
    assert_true(web_throttle_hit(t, link_a, lim, 2, 1000 + 600000 + 10, NULL));
    /* many keys: the table forgets the least recently used, never fails */
    for (int i = 0; i < 50; i++) {
        char k[16];
        snprintf(k, sizeof k, "many:%d", i);
        const char *keys[] = {k};
        const int one[] = {1};
        assert_true(web_throttle_hit(t, keys, one, 1, 700000 + i, NULL));
    }
    web_throttle_free(t);
    assert_int_equal(web_throttle_new(&t, 0, 1, 1), CAD_EINVAL);
}

static int count_row(void *ctx, const store_row *row)
{
    (void)row;
    (*(int *)ctx)++;
    return 0;
}

static void test_links(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char db[600];
    snprintf(db, sizeof db, "%s/cadence.db", dir);
    store *st;
    vault *v;
    assert_int_equal(store_open(&st, db), CAD_OK);
    assert_int_equal(vault_open(&v, st, dir, 1), CAD_OK);
    char a[TENANT_ID_MAX], b[TENANT_ID_MAX];
    assert_int_equal(tenant_add(st, v, "op@agency.test", "Acme", NULL, a), CAD_OK);
    assert_int_equal(tenant_add(st, v, "op@agency.test", "Blue", NULL, b), CAD_OK);
    char ta[WEB_TOKEN_LEN + 1], ta2[WEB_TOKEN_LEN + 1], tb[WEB_TOKEN_LEN + 1];
    int64_t exp;
    assert_int_equal(onboard_link_issue(st, "op@agency.test", a, 3600000, ta, &exp), CAD_OK);
    assert_int_equal(onboard_link_issue(st, "op@agency.test", b, 3600000, tb, NULL), CAD_OK);
    struct onboard_link l;
    int64_t now = time_now_ms();
    assert_int_equal(onboard_link_resolve(st, ta, now, &l), CAD_OK);
    assert_string_equal(l.tenant_id, a);
    assert_int_equal(strlen(l.hash12), 12);
    assert_int_equal(onboard_link_resolve(st, tb, now, &l), CAD_OK);
    assert_string_equal(l.tenant_id, b);
    /* only the hash is stored */
    char h[65];
    onboard_token_hash(ta, h);
    int hits = 0;
    assert_int_equal(store_query(st, "SELECT 1 FROM onboarding_links WHERE token_sha256 = $1",
                                 SV_ARGS(SV_TEXT(h)), count_row, &hits),
                     CAD_OK);
    assert_int_equal(hits, 1);
    hits = 0;
    assert_int_equal(store_query(st, "SELECT 1 FROM onboarding_links WHERE token_sha256 = $1",
                                 SV_ARGS(SV_TEXT(ta)), count_row, &hits),
                     CAD_OK);
    assert_int_equal(hits, 0);
    /* expired */
    assert_int_equal(onboard_link_resolve(st, ta, exp + 1, &l), CAD_ENOTFOUND);
    assert_string_equal(l.tenant_id, "");
    /* re-issuing revokes the old link and leaves other tenants' links alone */
    assert_int_equal(onboard_link_issue(st, "op@agency.test", a, 3600000, ta2, NULL), CAD_OK);
    assert_int_equal(onboard_link_resolve(st, ta, now, &l), CAD_ENOTFOUND);
    assert_int_equal(onboard_link_resolve(st, ta2, now, &l), CAD_OK);
    assert_int_equal(onboard_link_resolve(st, tb, now, &l), CAD_OK);
    /* unknown, malformed */
    char unknown[WEB_TOKEN_LEN + 1];
    assert_int_equal(onboard_token_new(unknown), CAD_OK);
    assert_int_equal(onboard_link_resolve(st, unknown, now, &l), CAD_ENOTFOUND);
    assert_int_equal(onboard_link_resolve(st, "x' OR 1=1 --", now, &l), CAD_ENOTFOUND);
    assert_int_equal(onboard_link_issue(st, "op", "nobody", 1000, ta, NULL), CAD_ENOTFOUND);
    vault_close(v);
    store_close(st);
    test_rmdir(dir);
}

static void test_metrics(void **state)
{
    (void)state;
    metrics_reset();
    const char *l1[] = {"route", "onboard", "status", "200"};
    const char *l2[] = {"route", "a\"b\\c\nd", "status", "404"};
    assert_int_equal(metrics_counter_add("http_requests_total", "HTTP requests", l1, 2, 1), CAD_OK);
    assert_int_equal(metrics_counter_add("http_requests_total", "HTTP requests", l1, 2, 2), CAD_OK);
    assert_int_equal(metrics_counter_add("http_requests_total", "HTTP requests", l2, 2, 1), CAD_OK);
    assert_int_equal(metrics_counter_add("a_total", "first by name", NULL, 0, 5), CAD_OK);
    assert_int_equal(metrics_counter_add("bad name", "x", NULL, 0, 1), CAD_EINVAL);
    const char *bad[] = {"9x", "v"};
    assert_int_equal(metrics_counter_add("x_total", "x", bad, 1, 1), CAD_EINVAL);
    char *text;
    size_t len;
    assert_int_equal(metrics_render(&text, &len), CAD_OK);
    assert_string_equal(text, "# HELP a_total first by name\n# TYPE a_total counter\na_total 5\n"
                              "# HELP http_requests_total HTTP requests\n"
                              "# TYPE http_requests_total counter\n"
                              "http_requests_total{route=\"onboard\",status=\"200\"} 3\n"
                              "http_requests_total{route=\"a\\\"b\\\\c\\nd\",status=\"404\"} 1\n");
    assert_int_equal(len, strlen(text));
    free(text);
    metrics_reset();
    assert_int_equal(metrics_render(&text, &len), CAD_OK);
    assert_string_equal(text, "");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_html_escape), cmocka_unit_test(test_router),
        cmocka_unit_test(test_form),        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_csrf),        cmocka_unit_test(test_throttle),
        cmocka_unit_test(test_links),       cmocka_unit_test(test_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
