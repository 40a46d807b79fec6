/* The Klaviyo client's pure parts: classification case by case, error documents, filters, query
 * targets, the page-size table against Klaviyo's OpenAPI document, origins, scope families. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "klaviyo/client.h"
#include "klaviyo/verify.h"

static struct klaviyo_config cfg(void)
{
    struct klaviyo_config c = {.max_attempts = 4, .backoff_base_ms = 500, .backoff_max_ms = 30000};
    return c;
}

static struct klaviyo_verdict classify(const char *method, int status, int attempt)
{
    struct klaviyo_attempt a = {
        .method = method, .http_status = status, .retry_after_ms = -1, .attempt = attempt};
    struct klaviyo_config c = cfg();
    struct klaviyo_verdict v;
    klaviyo_classify(&a, &c, 0, &v);
    return v;
}

static void test_classify_2xx(void **state)
{
    (void)state;
    int codes[] = {200, 201, 202, 204};
    for (size_t i = 0; i < 4; i++) {
        struct klaviyo_verdict v = classify("POST", codes[i], 1);
        assert_int_equal(v.cls, KLAVIYO_CLASS_OK);
        assert_int_equal(v.outcome, KLAVIYO_OUT_OK);
        assert_false(v.retry);
    }
}

static void test_classify_401(void **state)
{
    (void)state;
    struct klaviyo_attempt a = {.method = "GET",
                                .http_status = 401,
                                .json_error = true,
                                .retry_after_ms = -1,
                                .attempt = 1};
    struct klaviyo_config c = cfg();
    struct klaviyo_verdict v;
    klaviyo_classify(&a, &c, 0, &v);
    assert_int_equal(v.cls, KLAVIYO_CLASS_AUTH);
    assert_false(v.retry); /* the client re-checks with GET /api/accounts, it does not retry */
}

static void test_classify_403_json_is_scope(void **state)
{
    (void)state;
    struct klaviyo_attempt a = {.method = "GET",
                                .http_status = 403,
                                .json_error = true,
                                .retry_after_ms = -1,
                                .attempt = 1};
    struct klaviyo_config c = cfg();
    struct klaviyo_verdict v;
    klaviyo_classify(&a, &c, 0, &v);
    assert_int_equal(v.cls, KLAVIYO_CLASS_SCOPE);
    assert_int_equal(v.outcome, KLAVIYO_OUT_MISSING_SCOPE);
    assert_false(v.retry);
}

static void test_classify_403_html_is_transient(void **state)
{
    (void)state;
    struct klaviyo_attempt a = {
        .method = "POST", .http_status = 403, .html = true, .retry_after_ms = -1, .attempt = 1};
    struct klaviyo_config c = cfg();
    struct klaviyo_verdict v;
    klaviyo_classify(&a, &c, 0, &v);
    assert_int_equal(v.cls, KLAVIYO_CLASS_CHALLENGE);
    assert_true(v.retry); /* never reached the API: even a POST may go again */
    assert_int_equal(v.outcome, KLAVIYO_OUT_TRANSIENT);
    a.attempt = 4;
    klaviyo_classify(&a, &c, 0, &v);
    assert_false(v.retry);
    assert_int_equal(v.outcome, KLAVIYO_OUT_TRANSIENT);
}

static void test_classify_403_cf_mitigated_beats_json(void **state)
{
    (void)state;
    struct klaviyo_attempt a = {.method = "GET",
                                .http_status = 403,
                                .json_error = true,
                                .cf_challenge = true,
                                .retry_after_ms = -1,
                                .attempt = 1};
    struct klaviyo_config c = cfg();
    struct klaviyo_verdict v;
    klaviyo_classify(&a, &c, 0, &v);
    assert_int_equal(v.cls, KLAVIYO_CLASS_CHALLENGE);
    assert_int_equal(v.outcome, KLAVIYO_OUT_TRANSIENT);
}

static void test_classify_429(void **state)
{
    (void)state;
    struct klaviyo_config c = cfg();
    struct klaviyo_verdict v;
    /* With Retry-After longer than the backoff: the server's wait wins. */
    struct klaviyo_attempt a = {.method = "POST",
                                .http_status = 429,
                                .json_error = true,
                                .retry_after_ms = 7000,
                                .attempt = 1};
    klaviyo_classify(&a, &c, UINT32_MAX, &v);
    assert_int_equal(v.cls, KLAVIYO_CLASS_THROTTLED);
    assert_true(v.retry); /* a throttled POST was not processed */
    assert_int_equal(v.wait_ms, 7000);
    /* Retry-After shorter than the backoff: the backoff wins. */
    a.retry_after_ms = 1000;
    a.attempt = 3; /* backoff 2000, jitter max -> 2000 */
    klaviyo_classify(&a, &c, UINT32_MAX, &v);
    assert_int_equal(v.wait_ms, 2000);
    /* Without Retry-After: the jittered backoff, between half and all of base * 2^(n-1). */
    a.retry_after_ms = -1;
    a.attempt = 2;
    klaviyo_classify(&a, &c, 0, &v);
    assert_int_equal(v.wait_ms, 500);
    klaviyo_classify(&a, &c, UINT32_MAX, &v);
    assert_int_equal(v.wait_ms, 1000);
    /* Bounded. */
    a.attempt = 4;
    klaviyo_classify(&a, &c, 0, &v);
    assert_false(v.retry);
    assert_int_equal(v.outcome, KLAVIYO_OUT_TRANSIENT);
}

static void test_classify_5xx(void **state)
{
    (void)state;
    int codes[] = {500, 502, 503, 504};
    const char *idempotent[] = {"GET", "PATCH", "DELETE"};
    for (size_t i = 0; i < 4; i++) {
        for (size_t m = 0; m < 3; m++) {
            struct klaviyo_verdict v = classify(idempotent[m], codes[i], 1);
            assert_int_equal(v.cls, KLAVIYO_CLASS_SERVER);
            assert_true(v.retry);
            assert_true(v.wait_ms >= 250 && v.wait_ms <= 500);
            v = classify(idempotent[m], codes[i], 4);
            assert_false(v.retry);
            assert_int_equal(v.outcome, KLAVIYO_OUT_TRANSIENT);
        }
        struct klaviyo_verdict v = classify("POST", codes[i], 1);
        assert_int_equal(v.cls, KLAVIYO_CLASS_SERVER);
        assert_false(v.retry);
        assert_int_equal(v.outcome, KLAVIYO_OUT_UNKNOWN);
    }
}

static void test_classify_other_4xx_permanent(void **state)
{
    (void)state;
    int codes[] = {400, 404, 405, 409, 410, 413, 422};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        struct klaviyo_verdict v = classify("GET", codes[i], 1);
        assert_int_equal(v.cls, KLAVIYO_CLASS_PERMANENT);
        assert_int_equal(v.outcome, KLAVIYO_OUT_PERMANENT);
        assert_false(v.retry);
    }
}

static void test_classify_network(void **state)
{
    (void)state;
    struct klaviyo_config c = cfg();
    struct klaviyo_verdict v;
    /* Nothing left: retried whatever the method, and unreachable in the end. */
    struct klaviyo_attempt a = {
        .method = "POST", .net = KLAVIYO_NET_NOT_SENT, .retry_after_ms = -1, .attempt = 1};
    klaviyo_classify(&a, &c, 0, &v);
    assert_int_equal(v.cls, KLAVIYO_CLASS_NETWORK);
    assert_true(v.retry);
    a.attempt = 4;
    klaviyo_classify(&a, &c, 0, &v);
    assert_false(v.retry);
    assert_int_equal(v.outcome, KLAVIYO_OUT_UNREACHABLE);
    /* A POST that left and got no answer: unknown, never re-sent. */
    enum klaviyo_net kinds[] = {KLAVIYO_NET_TIMEOUT, KLAVIYO_NET_DROPPED};
    for (size_t i = 0; i < 2; i++) {
        a = (struct klaviyo_attempt){.method = "POST",
                                     .net = kinds[i],
                                     .request_sent = true,
                                     .retry_after_ms = -1,
                                     .attempt = 1};
        klaviyo_classify(&a, &c, 0, &v);
        assert_false(v.retry);
        assert_int_equal(v.outcome, KLAVIYO_OUT_UNKNOWN);
        a.method = "GET";
        klaviyo_classify(&a, &c, 0, &v);
        assert_true(v.retry);
        a.method = "PATCH";
        klaviyo_classify(&a, &c, 0, &v);
        assert_true(v.retry);
        a.method = "DELETE";
        klaviyo_classify(&a, &c, 0, &v);
        assert_true(v.retry);
    }
}

static void test_backoff_capped(void **state)
{
    (void)state;
    struct klaviyo_config c = {.max_attempts = 100, .backoff_base_ms = 500, .backoff_max_ms = 4000};
    struct klaviyo_attempt a = {
        .method = "GET", .http_status = 503, .retry_after_ms = -1, .attempt = 40};
    struct klaviyo_verdict v;
    klaviyo_classify(&a, &c, UINT32_MAX, &v);
    assert_int_equal(v.wait_ms, 4000);
    klaviyo_classify(&a, &c, 0, &v);
    assert_int_equal(v.wait_ms, 2000);
}

/* ---- error documents ---- */

static void test_error_parse_full(void **state)
{
    (void)state;
    const char *doc = "{\"errors\":[{\"id\":\"e1\",\"status\":403,\"code\":\"permission_denied\","
                      "\"title\":\"You do not have permission.\",\"detail\":\"Missing lists:read\","
                      "\"source\":{\"pointer\":\"/data\",\"parameter\":\"filter\",\"extra\":1},"
                      "\"meta\":{\"x\":[1,2]}},{\"id\":\"e2\",\"code\":\"second\",\"title\":\"t\","
                      "\"detail\":\"d\"}],"
                      "\"meta\":{\"agent_hints\":{\"next_steps\":[\"x\"]}}}";
    struct klaviyo_error e;
    size_t n;
    assert_int_equal(klaviyo_error_parse(doc, strlen(doc), 403, &e, &n), CAD_OK);
    assert_int_equal(n, 2);
    assert_int_equal(e.http_status, 403);
    assert_string_equal(e.id, "e1");
    assert_string_equal(e.code, "permission_denied");
    assert_string_equal(e.title, "You do not have permission.");
    assert_string_equal(e.detail, "Missing lists:read");
    assert_string_equal(e.source_pointer, "/data");
    assert_string_equal(e.source_parameter, "filter");
}

static void test_error_parse_missing_and_wrong_types(void **state)
{
    (void)state;
    const char *doc = "{\"errors\":[{\"code\":42,\"detail\":\"only detail\",\"source\":\"x\"}]}";
    struct klaviyo_error e;
    assert_int_equal(klaviyo_error_parse(doc, strlen(doc), 400, &e, NULL), CAD_OK);
    assert_string_equal(e.code, "");
    assert_string_equal(e.title, "");
    assert_string_equal(e.detail, "only detail");
    assert_string_equal(e.source_pointer, "");
    assert_string_equal(e.id, "");
}

static void test_error_parse_not_a_document(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "<html><body>Just a moment...</body></html>",
                         "{\"errors\":[]}",
                         "{\"errors\":{}}",
                         "{\"errors\":[\"x\"]}",
                         "{\"data\":[]}",
                         "[1,2]",
                         "{\"errors\":[{\"detail\":\"x\"}]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct klaviyo_error e;
        assert_int_equal(klaviyo_error_parse(bad[i], strlen(bad[i]), 500, &e, NULL), CAD_EINVAL);
    }
}

static void test_error_parse_long_detail_truncated(void **state)
{
    (void)state;
    char doc[4096];
    char detail[3000];
    memset(detail, 'a', sizeof detail - 1);
    detail[sizeof detail - 1] = '\0';
    snprintf(doc, sizeof doc, "{\"errors\":[{\"detail\":\"%s\"}]}", detail);
    struct klaviyo_error e;
    assert_int_equal(klaviyo_error_parse(doc, strlen(doc), 400, &e, NULL), CAD_OK);
    assert_int_equal(strlen(e.detail), sizeof e.detail - 1);
}

/* ---- filters and targets ---- */

static void test_filter_escaping(void **state)
{
    (void)state;
    char out[256];
    assert_int_equal(klaviyo_filter_equals(out, sizeof out, "name", "x"), CAD_OK);
    assert_string_equal(out, "equals(name,\"x\")");
    assert_int_equal(klaviyo_filter_equals(out, sizeof out, "name", "say \"hi\" \\ bye"), CAD_OK);
    assert_string_equal(out, "equals(name,\"say \\\"hi\\\" \\\\ bye\")");
    assert_int_equal(klaviyo_filter_equals(out, sizeof out, "name", "it's, (fine)"), CAD_OK);
    assert_string_equal(out, "equals(name,\"it's, (fine)\")");
    const char *vals[] = {"a", "b\"", "c\\"};
    assert_int_equal(klaviyo_filter_any(out, sizeof out, "name", vals, 3), CAD_OK);
    assert_string_equal(out, "any(name,[\"a\",\"b\\\"\",\"c\\\\\"])");
    assert_int_equal(klaviyo_filter_op(out, sizeof out, "contains", "messages.channel", "email"),
                     CAD_OK);
    assert_string_equal(out, "contains(messages.channel,\"email\")");
}

static void test_filter_refusals(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(klaviyo_filter_equals(out, sizeof out, "name),x(", "v"), CAD_EINVAL);
    assert_int_equal(klaviyo_filter_equals(out, sizeof out, "", "v"), CAD_EINVAL);
    assert_int_equal(klaviyo_filter_equals(out, sizeof out, "name", "a\nb"), CAD_EINVAL);
    assert_int_equal(klaviyo_filter_equals(out, sizeof out, "name", NULL), CAD_EINVAL);
    assert_int_equal(klaviyo_filter_op(out, sizeof out, "eq)uals", "name", "v"), CAD_EINVAL);
    assert_int_equal(klaviyo_filter_any(out, sizeof out, "name", NULL, 0), CAD_EINVAL);
    /* Too long for the buffer: an error, never a silently cut filter. */
    assert_int_equal(klaviyo_filter_equals(out, sizeof out, "name", "0123456789012345678901234"),
                     CAD_EINVAL);
}

static void test_target_encoding(void **state)
{
    (void)state;
    char out[256];
    const char *kv[] = {"filter", "equals(name,\"a b&c\")", "page[size]", "10", NULL};
    assert_int_equal(klaviyo_target(out, sizeof out, "/api/lists", kv), CAD_OK);
    assert_string_equal(out,
                        "/api/lists?filter=equals%28name%2C%22a%20b%26c%22%29&page%5Bsize%5D=10");
    assert_int_equal(klaviyo_target(out, sizeof out, "/api/lists", NULL), CAD_OK);
    assert_string_equal(out, "/api/lists");
    assert_int_equal(klaviyo_target(out, sizeof out, "/api/lists?x=1", NULL), CAD_EINVAL);
    assert_int_equal(klaviyo_target(out, sizeof out, "api/lists", NULL), CAD_EINVAL);
    assert_int_equal(klaviyo_target(out, 12, "/api/lists", kv), CAD_EINVAL);
}

/* ---- origins ---- */

static void test_same_origin(void **state)
{
    (void)state;
    const char *base = "https://a.klaviyo.com";
    assert_true(klaviyo_same_origin(base, "https://a.klaviyo.com/api/lists?page%5Bcursor%5D=x"));
    assert_true(klaviyo_same_origin(base, "https://A.KLAVIYO.COM/api/lists"));
    assert_true(klaviyo_same_origin(base, "https://a.klaviyo.com:443/api/lists"));
    assert_false(klaviyo_same_origin(base, "https://evil.example/api/lists"));
    /* Found by fuzz_klaviyo: a third slash, which URL parsers read differently. */
    assert_false(klaviyo_same_origin(base, "https:///a.klaviyo.com/api/lists"));
    assert_false(klaviyo_same_origin(base, "http://a.klaviyo.com/api/lists"));
    assert_false(klaviyo_same_origin(base, "https://a.klaviyo.com:8443/api/lists"));
    assert_false(klaviyo_same_origin(base, "https://a.klaviyo.com.evil.example/api/lists"));
    assert_false(klaviyo_same_origin(base, "https://a.klaviyo.com@evil.example/api/lists"));
    assert_false(klaviyo_same_origin(base, "https://evil.example\\@a.klaviyo.com/api/lists"));
    assert_false(klaviyo_same_origin(base, "//evil.example/api/lists"));
    assert_false(klaviyo_same_origin(base, "/api/lists"));
    assert_false(klaviyo_same_origin(base, "https://a.klaviyo.com /api"));
    assert_false(klaviyo_same_origin(base, "ftp://a.klaviyo.com/api"));
    assert_false(klaviyo_same_origin(base, ""));
    assert_true(klaviyo_same_origin("http://127.0.0.1:8080", "http://127.0.0.1:8080/api/x"));
    assert_false(klaviyo_same_origin("http://127.0.0.1:8080", "http://127.0.0.1:8081/api/x"));
    assert_false(klaviyo_same_origin("http://127.0.0.1:8080", "http://127.0.0.2:8080/api/x"));
}

/* ---- the page-size table against Klaviyo's own document ---- */

static json_t *resolve(json_t *spec, json_t *param)
{
    const char *ref = json_string_value(json_object_get(param, "$ref"));
    if (!ref)
        return param;
    const char *prefix = "#/components/parameters/";
    assert_true(strncmp(ref, prefix, strlen(prefix)) == 0);
    return json_object_get(json_object_get(json_object_get(spec, "components"), "parameters"),
                           ref + strlen(prefix));
}

static void test_page_sizes_match_spec(void **state)
{
    (void)state;
    json_error_t err;
    json_t *spec = json_load_file(KLAVIYO_OPENAPI_PATH, 0, &err);
    assert_non_null(spec);
    json_t *paths = json_object_get(spec, "paths");
    const char *checked[] = {"/api/templates",
                             "/api/segments",
                             "/api/lists",
                             "/api/flows",
                             "/api/tags",
                             "/api/tag-groups",
                             "/api/forms",
                             "/api/images",
                             "/api/template-universal-content",
                             "/api/web-feeds",
                             "/api/campaigns",
                             "/api/catalog-items",
                             "/api/catalog-variants",
                             "/api/catalog-categories",
                             "/api/coupons",
                             "/api/coupon-codes",
                             "/api/profiles",
                             "/api/events",
                             "/api/profile-bulk-import-jobs",
                             "/api/webhooks",
                             "/api/metrics",
                             "/api/accounts"};
    for (size_t i = 0; i < sizeof checked / sizeof checked[0]; i++) {
        json_t *params = json_object_get(json_object_get(json_object_get(paths, checked[i]), "get"),
                                         "parameters");
        assert_non_null(params);
        json_int_t max = 0;
        size_t j;
        json_t *p;
        json_array_foreach(params, j, p)
        {
            json_t *rp = resolve(spec, p);
            if (strcmp(json_string_value(json_object_get(rp, "name")), "page[size]") == 0)
                max = json_integer_value(json_object_get(json_object_get(rp, "schema"), "maximum"));
        }
        if ((int)max != klaviyo_page_size_max(checked[i]))
            fail_msg("%s: spec says page[size] max %lld, table says %d", checked[i], (long long)max,
                     klaviyo_page_size_max(checked[i]));
    }
    json_decref(spec);
    assert_int_equal(klaviyo_page_size_max("/api/lists?page%5Bsize%5D=3"), 10);
    assert_int_equal(klaviyo_page_size_max("/api/lists/abc"), 0);
}

/* ---- scope families ---- */

static void test_scope_families_from_kspec(void **state)
{
    (void)state;
    const char *expected[] = {"lists", "segments", "templates", "campaigns", "flows",    "profiles",
                              "forms", "images",   "catalogs",  "coupons",   "webhooks", "tags"};
    for (size_t i = 0; i < KLAVIYO_SCOPE_FAMILIES; i++) {
        assert_string_equal(klaviyo_scope_families[i].family, expected[i]);
        const struct kspec_op *op = kspec_by_id(klaviyo_scope_families[i].operation_id);
        assert_non_null(op);
        assert_string_equal(op->method, "GET");
        assert_null(strchr(op->path, '{'));
        char scope[64];
        snprintf(scope, sizeof scope, "%s:read", expected[i]);
        assert_string_equal(op->scopes, scope);
    }
}

static void test_outcome_names(void **state)
{
    (void)state;
    assert_string_equal(klaviyo_outcome_name(KLAVIYO_OUT_UNKNOWN), "unknown");
    assert_string_equal(klaviyo_outcome_name(KLAVIYO_OUT_AUTH_FAILED_ONCE), "auth_failed_once");
    assert_string_equal(klaviyo_outcome_name(KLAVIYO_OUT_REVOKED), "revoked");
    assert_string_equal(klaviyo_verify_status_name(KLAVIYO_VERIFY_UNREACHABLE), "unreachable");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_2xx),
        cmocka_unit_test(test_classify_401),
        cmocka_unit_test(test_classify_403_json_is_scope),
        cmocka_unit_test(test_classify_403_html_is_transient),
        cmocka_unit_test(test_classify_403_cf_mitigated_beats_json),
        cmocka_unit_test(test_classify_429),
        cmocka_unit_test(test_classify_5xx),
        cmocka_unit_test(test_classify_other_4xx_permanent),
        cmocka_unit_test(test_classify_network),
        cmocka_unit_test(test_backoff_capped),
        cmocka_unit_test(test_error_parse_full),
        cmocka_unit_test(test_error_parse_missing_and_wrong_types),
        cmocka_unit_test(test_error_parse_not_a_document),
        cmocka_unit_test(test_error_parse_long_detail_truncated),
        cmocka_unit_test(test_filter_escaping),
        cmocka_unit_test(test_filter_refusals),
        cmocka_unit_test(test_target_encoding),
        cmocka_unit_test(test_same_origin),
        cmocka_unit_test(test_page_sizes_match_spec),
        cmocka_unit_test(test_scope_families_from_kspec),
        cmocka_unit_test(test_outcome_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
