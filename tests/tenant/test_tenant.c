/* Tenants, the credential lifecycle and operators, over a real store and vault. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "audit/audit.h"
#include "common/err.h"
#include "tenant/tenant.h"
#include "testutil.h"

struct fixture {
    char *dir;
    store *st;
    vault *v;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char path[600];
    f->dir = test_tmpdir();
    snprintf(path, sizeof path, "%s/t.db", f->dir);
    assert_int_equal(store_open(&f->st, path), CAD_OK);
    assert_int_equal(vault_open(&f->v, f->st, f->dir, 1), CAD_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    vault_close(f->v);
    store_close(f->st);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

/* The full transition table, written out independently of the implementation's bit sets. */
static void test_transitions_exhaustive(void **state)
{
    (void)state;
    static const char *const expected[KEY_STATE_COUNT] = {
        /* to:        none deferred unverified verified invalid revoked */
        [KEY_NONE] = "011110",     [KEY_DEFERRED] = "011110", [KEY_UNVERIFIED] = "001111",
        [KEY_VERIFIED] = "001101", [KEY_INVALID] = "011110",  [KEY_REVOKED] = "001111",
    };
    for (int from = 0; from < KEY_STATE_COUNT; from++)
        for (int to = 0; to < KEY_STATE_COUNT; to++) {
            int rc = key_state_check(CRED_KLAVIYO, (enum key_state)from, (enum key_state)to);
            if (expected[from][to] == '1')
                assert_int_equal(rc, CAD_OK);
            else {
                assert_int_equal(rc, CAD_ESTATE);
                assert_true(strlen(cad_errmsg()) > 10);
            }
        }
}

static void test_names_round_trip(void **state)
{
    (void)state;
    for (int k = 0; k < CRED_KIND_COUNT; k++) {
        enum cred_kind back;
        assert_int_equal(cred_kind_parse(cred_kind_name((enum cred_kind)k), &back), CAD_OK);
        assert_int_equal(back, k);
    }
    enum cred_kind kind;
    assert_int_equal(cred_kind_parse("mailchimp", &kind), CAD_EINVAL);
    assert_non_null(strstr(cad_errmsg(), "klaviyo, shopify, postscript or attentive"));
}

static void test_tenant_add_slugs_and_validation(void **state)
{
    struct fixture *f = *state;
    char id[TENANT_ID_MAX];
    assert_int_equal(tenant_add(f->st, f->v, "system", "Acme Outdoors!", "ops@acme.test", id),
                     CAD_OK);
    assert_string_equal(id, "acme-outdoors");
    assert_int_equal(tenant_add(f->st, f->v, "system", "ACME outdoors", NULL, id), CAD_OK);
    assert_string_equal(id, "acme-outdoors-2");
    assert_int_equal(tenant_add(f->st, f->v, "system", "", NULL, id), CAD_EINVAL);
    assert_int_equal(tenant_add(f->st, f->v, "system", "X", "not-an-email", id), CAD_EINVAL);
    assert_int_equal(tenant_add(f->st, f->v, "system", "Bad\nName", NULL, id), CAD_EINVAL);
    struct tenant t;
    assert_int_equal(tenant_get(f->st, "acme-outdoors", &t), CAD_OK);
    assert_string_equal(t.name, "Acme Outdoors!");
    assert_string_equal(t.email, "ops@acme.test");
    assert_false(t.paid);
    assert_int_equal(tenant_get(f->st, "nobody", &t), CAD_ENOTFOUND);
    bool was;
    assert_int_equal(tenant_confirm_payment(f->st, "admin@agency.test", "acme-outdoors", &was),
                     CAD_OK);
    assert_false(was);
    assert_int_equal(tenant_confirm_payment(f->st, "admin@agency.test", "acme-outdoors", &was),
                     CAD_OK);
    assert_true(was);
}

static void test_credential_lifecycle(void **state)
{
    struct fixture *f = *state;
    char id[TENANT_ID_MAX];
    assert_int_equal(tenant_add(f->st, f->v, "system", "Brand", NULL, id), CAD_OK);
    struct credential_info c;
    assert_int_equal(credential_info(f->st, id, CRED_KLAVIYO, &c), CAD_OK);
    assert_int_equal(c.state, KEY_NONE);
    assert_false(c.has_secret);

    assert_int_equal(
        credential_set_state(f->st, "client", id, CRED_KLAVIYO, KEY_DEFERRED, "key.defer", NULL),
        CAD_OK);
    const char *k1 = "pk_0123456789abcdef0123456789abcdefAB";
    cad_secret *s;
    assert_int_equal(secret_from(&s, k1, strlen(k1)), CAD_OK);
    assert_int_equal(
        credential_store(f->st, f->v, "system", id, CRED_KLAVIYO, s, KEY_UNVERIFIED, NULL), CAD_OK);
    secret_free(s);
    assert_int_equal(credential_info(f->st, id, CRED_KLAVIYO, &c), CAD_OK);
    assert_int_equal(c.state, KEY_UNVERIFIED);
    assert_int_equal(c.version, 1);
    assert_string_equal(c.last4, "efAB");
    assert_int_equal(strlen(c.fingerprint), 16);

    assert_int_equal(credential_mark_verified(f->st, "system", id, CRED_KLAVIYO, "AbC123", "Acme",
                                              "{\"lists\":\"read\"}"),
                     CAD_OK);
    /* A verified key cannot be marked invalid, nor deferred. */
    assert_int_equal(
        credential_set_state(f->st, "client", id, CRED_KLAVIYO, KEY_INVALID, "key.invalid", NULL),
        CAD_ESTATE);
    assert_int_equal(
        credential_set_state(f->st, "client", id, CRED_KLAVIYO, KEY_DEFERRED, "key.defer", NULL),
        CAD_ESTATE);
    assert_int_equal(credential_set_state(f->st, "system", id, CRED_KLAVIYO, KEY_REVOKED,
                                          "key.revoked", "401 confirmed"),
                     CAD_OK);

    cad_secret *out;
    assert_int_equal(credential_open(f->st, f->v, id, CRED_KLAVIYO, &out), CAD_OK);
    assert_int_equal(secret_len(out), strlen(k1));
    assert_memory_equal(secret_data(out), k1, strlen(k1));
    secret_free(out);

    /* A new key: version 2, and the old one is gone. */
    const char *k2 = "pk_ffffffffffffffffffffffffffffffff99";
    assert_int_equal(secret_from(&s, k2, strlen(k2)), CAD_OK);
    assert_int_equal(
        credential_store(f->st, f->v, "system", id, CRED_KLAVIYO, s, KEY_VERIFIED, NULL), CAD_OK);
    secret_free(s);
    assert_int_equal(credential_open(f->st, f->v, id, CRED_KLAVIYO, &out), CAD_OK);
    assert_memory_equal(secret_data(out), k2, strlen(k2));
    secret_free(out);
    assert_int_equal(credential_info(f->st, id, CRED_KLAVIYO, &c), CAD_OK);
    assert_int_equal(c.version, 2);
    assert_string_equal(c.account_id, ""); /* cleared with the old key */

    /* Other kinds are independent and stored the same way. */
    assert_int_equal(credential_open(f->st, f->v, id, CRED_SHOPIFY, &out), CAD_ENOTFOUND);
    assert_int_equal(credential_info(f->st, "nobody", CRED_KLAVIYO, &c), CAD_ENOTFOUND);

    struct audit_verify_result r;
    assert_int_equal(audit_verify(f->st, &r), CAD_OK);
    assert_true(r.ok);
    assert_true(r.records >= 6);
}

static void test_failed_store_keeps_old_key(void **state)
{
    struct fixture *f = *state;
    char id[TENANT_ID_MAX];
    assert_int_equal(tenant_add(f->st, f->v, "system", "Keeper", NULL, id), CAD_OK);
    const char *k1 = "pk_0123456789abcdef0123456789abcdefAB";
    cad_secret *s, *empty, *out;
    assert_int_equal(secret_from(&s, k1, strlen(k1)), CAD_OK);
    assert_int_equal(
        credential_store(f->st, f->v, "system", id, CRED_KLAVIYO, s, KEY_VERIFIED, NULL), CAD_OK);
    assert_int_equal(secret_new(&empty, 0), CAD_OK);
    assert_int_equal(
        credential_store(f->st, f->v, "system", id, CRED_KLAVIYO, empty, KEY_UNVERIFIED, NULL),
        CAD_EINVAL);
    assert_int_equal(
        credential_store(f->st, f->v, "system", "nobody", CRED_KLAVIYO, s, KEY_UNVERIFIED, NULL),
        CAD_ENOTFOUND);
    assert_int_equal(credential_open(f->st, f->v, id, CRED_KLAVIYO, &out), CAD_OK);
    assert_true(secret_equal(out, s));
    secret_free(out);
    secret_free(empty);
    secret_free(s);
}

static void test_operators(void **state)
{
    struct fixture *f = *state;
    cad_secret *pw, *bad, *shortpw;
    assert_int_equal(secret_from(&pw, "correct horse battery", 21), CAD_OK);
    assert_int_equal(secret_from(&bad, "correct horse battery!", 22), CAD_OK);
    assert_int_equal(secret_from(&shortpw, "short", 5), CAD_OK);
    assert_int_equal(operator_add(f->st, "system", "ann@agency.test", ROLE_ADMIN, pw), CAD_OK);
    assert_int_equal(operator_add(f->st, "system", "ann@agency.test", ROLE_ADMIN, pw), CAD_EEXIST);
    assert_int_equal(operator_add(f->st, "system", "bob@agency.test", ROLE_OPERATOR, shortpw),
                     CAD_EINVAL);
    assert_int_equal(operator_add(f->st, "system", "bob", ROLE_OPERATOR, pw), CAD_EINVAL);
    assert_int_equal(operator_check_password(f->st, "ann@agency.test", pw), CAD_OK);
    assert_int_equal(operator_check_password(f->st, "ann@agency.test", bad), CAD_EAUTH);
    assert_int_equal(operator_check_password(f->st, "nobody@agency.test", pw), CAD_EAUTH);
    struct operator_info o;
    assert_int_equal(operator_get(f->st, "ann@agency.test", &o), CAD_OK);
    assert_int_equal(o.role, ROLE_ADMIN);
    secret_free(pw);
    secret_free(bad);
    secret_free(shortpw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transitions_exhaustive),
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test_setup_teardown(test_tenant_add_slugs_and_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credential_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_store_keeps_old_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_operators, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
