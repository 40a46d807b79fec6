/*
 * The pure parts of providers/: the Shopify store domain, the Shopify token and the SMS keys'
 * format checks. Every verdict and every input error has a case; messages never echo a key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "providers/providers.h"

#define HEX32 "0123456789abcdef0123456789abcdef"

static void domain_ok(const char *in, const char *want)
{
    struct shopify_domain_result r;
    assert_int_equal(shopify_domain_normalise(in, &r), CAD_OK);
    assert_int_equal(r.verdict, SHOPIFY_DOMAIN_OK);
    assert_string_equal(r.domain, want);
}

static struct shopify_domain_result domain_bad(const char *in, enum shopify_domain_verdict v)
{
    struct shopify_domain_result r;
    assert_int_equal(shopify_domain_normalise(in, &r), CAD_EINVAL);
    assert_int_equal(r.verdict, v);
    assert_string_equal(r.domain, "");
    assert_true(strlen(r.message) > 20);
    return r;
}

static void test_domain_accepted(void **state)
{
    (void)state;
    domain_ok("acme.myshopify.com", "acme.myshopify.com");
    domain_ok("  ACME-Outdoors.MyShopify.com.  ", "acme-outdoors.myshopify.com");
    domain_ok("https://acme.myshopify.com/admin", "acme.myshopify.com");
    domain_ok("http://acme.myshopify.com/admin/products?x=1#y", "acme.myshopify.com");
    domain_ok("acme", "acme.myshopify.com");
    domain_ok("\"acme-2\"", "acme-2.myshopify.com");
    domain_ok("https://admin.shopify.com/store/acme/products", "acme.myshopify.com");
}

static void test_domain_refused(void **state)
{
    (void)state;
    domain_bad("", SHOPIFY_DOMAIN_EMPTY);
    domain_bad(NULL, SHOPIFY_DOMAIN_EMPTY);
    domain_bad("   ", SHOPIFY_DOMAIN_EMPTY);
    domain_bad("https://", SHOPIFY_DOMAIN_EMPTY);
    struct shopify_domain_result r = domain_bad("www.acme.com", SHOPIFY_DOMAIN_CUSTOM);
    assert_non_null(strstr(r.message, "storefront's own domain"));
    assert_non_null(strstr(r.message, "Settings \xE2\x86\x92 Domains"));
    domain_bad("https://shop.acme.co.uk/collections/all", SHOPIFY_DOMAIN_CUSTOM);
    r = domain_bad("owner@acme.com", SHOPIFY_DOMAIN_NOT_DOMAIN);
    assert_non_null(strstr(r.message, "email address"));
    r = domain_bad("acme.myshopify.com:443", SHOPIFY_DOMAIN_NOT_DOMAIN);
    assert_non_null(strstr(r.message, "port"));
    domain_bad("acme store", SHOPIFY_DOMAIN_NOT_DOMAIN);
    domain_bad("myshopify.com", SHOPIFY_DOMAIN_NOT_DOMAIN);
    domain_bad("https://admin.shopify.com", SHOPIFY_DOMAIN_NOT_DOMAIN);
    domain_bad("ftp://acme.myshopify.com", SHOPIFY_DOMAIN_NOT_DOMAIN);
    domain_bad("acm\xC3\xA9.myshopify.com", SHOPIFY_DOMAIN_NOT_DOMAIN);
    domain_bad("192.168.1.1", SHOPIFY_DOMAIN_NOT_DOMAIN);
    domain_bad("a.b.myshopify.com", SHOPIFY_DOMAIN_BAD_NAME);
    domain_bad("-acme.myshopify.com", SHOPIFY_DOMAIN_BAD_NAME);
    domain_bad("acme_store", SHOPIFY_DOMAIN_BAD_NAME);
    domain_bad("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
               SHOPIFY_DOMAIN_BAD_NAME); /* 64 */
}

static struct provider_key_result key(enum provider p, const char *in, enum provider_key_verdict v)
{
    struct provider_key_result r;
    provider_key_check(p, in, strlen(in), &r);
    assert_int_equal(r.verdict, v);
    assert_true(strlen(r.message) > 10);
    return r;
}

static void test_shopify_token(void **state)
{
    (void)state;
    key(PROVIDER_SHOPIFY, "shpat_" HEX32, PROVIDER_KEY_OK);
    key(PROVIDER_SHOPIFY, "shpca_" HEX32, PROVIDER_KEY_OK);
    key(PROVIDER_SHOPIFY, "shppa_" HEX32, PROVIDER_KEY_OK);
    struct provider_key_result r = key(PROVIDER_SHOPIFY, "  'shpat_" HEX32 "'\n", PROVIDER_KEY_OK);
    assert_int_equal(r.start, 3);
    assert_int_equal(r.len, 38);
    key(PROVIDER_SHOPIFY, "", PROVIDER_KEY_EMPTY);
    key(PROVIDER_SHOPIFY, "shpat_\xE2\x80\xA2\xE2\x80\xA2\xE2\x80\xA2", PROVIDER_KEY_MASKED);
    key(PROVIDER_SHOPIFY, "shpat_0123", PROVIDER_KEY_TOO_SHORT);
    key(PROVIDER_SHOPIFY, "shpat_" HEX32 "00", PROVIDER_KEY_TOO_LONG);
    key(PROVIDER_SHOPIFY,
        "shpat_"
        "0123456789abcdef0123456789abcdeZ",
        PROVIDER_KEY_BAD_CHARS);
    r = key(PROVIDER_SHOPIFY, "shpss_" HEX32, PROVIDER_KEY_WRONG_KIND);
    assert_non_null(strstr(r.message, "API secret key"));
    assert_null(strstr(r.message, HEX32));
    r = key(PROVIDER_SHOPIFY, HEX32, PROVIDER_KEY_WRONG_KIND);
    assert_non_null(strstr(r.message, "Storefront API access token"));
    r = key(PROVIDER_SHOPIFY, "pk_abcdefabcdefabcdefabcdefabcdefabcd", PROVIDER_KEY_WRONG_KIND);
    assert_non_null(strstr(r.message, "Klaviyo or Postscript"));
    key(PROVIDER_SHOPIFY, "hello", PROVIDER_KEY_WRONG_KIND);
}

static void test_postscript_key(void **state)
{
    (void)state;
    key(PROVIDER_POSTSCRIPT, "sk_1234567890abcdefABCDEF", PROVIDER_KEY_OK);
    struct provider_key_result r =
        key(PROVIDER_POSTSCRIPT, "pk_1234567890abcdefABCDEF", PROVIDER_KEY_WRONG_KIND);
    assert_non_null(strstr(r.message, "Public Key"));
    assert_null(strstr(r.message, "1234567890"));
    r = key(PROVIDER_POSTSCRIPT, "sk_partner_1234567890abcdef", PROVIDER_KEY_WRONG_KIND);
    assert_non_null(strstr(r.message, "partner"));
    key(PROVIDER_POSTSCRIPT, "rk_1234567890abcdefABCDEF", PROVIDER_KEY_WRONG_KIND);
    key(PROVIDER_POSTSCRIPT, "sk_1234", PROVIDER_KEY_TOO_SHORT);
    key(PROVIDER_POSTSCRIPT, "sk_1234567890 abcdefABCDEF", PROVIDER_KEY_BAD_CHARS);
    key(PROVIDER_POSTSCRIPT, "sk_****************", PROVIDER_KEY_MASKED);
    key(PROVIDER_POSTSCRIPT, " \t", PROVIDER_KEY_EMPTY);
}

static void test_attentive_key(void **state)
{
    (void)state;
    key(PROVIDER_ATTENTIVE, "aBcD1234efGH5678ijKL9012mnOP", PROVIDER_KEY_OK);
    key(PROVIDER_ATTENTIVE, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc-_def", PROVIDER_KEY_OK);
    struct provider_key_result r =
        key(PROVIDER_ATTENTIVE, "Bearer aBcD1234efGH5678ijKL9012", PROVIDER_KEY_BAD_CHARS);
    assert_non_null(strstr(r.message, "Bearer"));
    key(PROVIDER_ATTENTIVE, "aBcD1234 efGH5678ijKL9012", PROVIDER_KEY_BAD_CHARS);
    key(PROVIDER_ATTENTIVE, "short", PROVIDER_KEY_TOO_SHORT);
    char longkey[600];
    memset(longkey, 'a', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    key(PROVIDER_ATTENTIVE, longkey, PROVIDER_KEY_TOO_LONG);
    key(PROVIDER_ATTENTIVE, "pk_abcdefabcdefabcdefabcdefabcdefabcd", PROVIDER_KEY_WRONG_KIND);
    key(PROVIDER_ATTENTIVE, "shpat_" HEX32, PROVIDER_KEY_WRONG_KIND);
    key(PROVIDER_ATTENTIVE, "\xE2\x97\x8F\xE2\x97\x8F\xE2\x97\x8F", PROVIDER_KEY_MASKED);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(provider_name(PROVIDER_SHOPIFY), "shopify");
    assert_string_equal(provider_key_verdict_name(PROVIDER_KEY_WRONG_KIND), "wrong_kind");
    assert_string_equal(provider_verify_status_name(PROVIDER_VERIFY_MISSING_SCOPES),
                        "missing_scopes");
}

static void test_config(void **state)
{
    (void)state;
    struct provider_config c;
    setenv("CADENCE_SHOPIFY_URL", "http://example.com", 1);
    assert_int_equal(provider_config_from_env(PROVIDER_SHOPIFY, &c), CAD_EINVAL);
    setenv("CADENCE_SHOPIFY_URL", "http://127.0.0.1:8080/", 1);
    assert_int_equal(provider_config_from_env(PROVIDER_SHOPIFY, &c), CAD_OK);
    assert_string_equal(c.base_url, "http://127.0.0.1:8080");
    setenv("CADENCE_SHOPIFY_URL", "https://x.example/path", 1);
    assert_int_equal(provider_config_from_env(PROVIDER_SHOPIFY, &c), CAD_EINVAL);
    unsetenv("CADENCE_SHOPIFY_URL");
    assert_int_equal(provider_config_from_env(PROVIDER_SHOPIFY, &c), CAD_OK);
    assert_string_equal(c.base_url, "");
    unsetenv("CADENCE_ATTENTIVE_URL");
    assert_int_equal(provider_config_from_env(PROVIDER_ATTENTIVE, &c), CAD_OK);
    assert_string_equal(c.base_url, ATTENTIVE_DEFAULT_BASE_URL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_domain_accepted), cmocka_unit_test(test_domain_refused),
        cmocka_unit_test(test_shopify_token),   cmocka_unit_test(test_postscript_key),
        cmocka_unit_test(test_attentive_key),   cmocka_unit_test(test_names),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
