/* kspec: the generated table against facts from the spec, and the template matcher. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/util.h"
#include "kspec/kspec.h"
#include "kspec/kspec_index.h"

static void test_table_shape(void **state)
{
    (void)state;
    assert_int_equal(kspec_ops_count, 345);
    size_t by_method[4] = {0};
    static const char *const methods[] = {"GET", "POST", "PATCH", "DELETE"};
    for (size_t i = 0; i < kspec_ops_count; i++) {
        const struct kspec_op *op = &kspec_ops[i];
        size_t m = 0;
        while (m < 3 && strcmp(op->method, methods[m]) != 0)
            m++;
        assert_string_equal(op->method, methods[m]);
        by_method[m]++;
        assert_true(op->burst_per_s > 0 && op->steady_per_min > 0 && op->daily >= 0);
        assert_non_null(op->scopes);
        if (i > 0) {
            const struct kspec_op *prev = &kspec_ops[i - 1];
            int c = strcmp(prev->path, op->path);
            assert_true(c < 0 || (c == 0 && strcmp(prev->method, op->method) < 0));
        }
    }
    assert_int_equal(by_method[0], 204);
    assert_int_equal(by_method[1], 80);
    assert_int_equal(by_method[2], 31);
    assert_int_equal(by_method[3], 30);
}

static void test_known_rows(void **state)
{
    (void)state;
    const struct kspec_op *op = kspec_by_id("get_accounts");
    assert_non_null(op);
    assert_string_equal(op->method, "GET");
    assert_string_equal(op->path, "/api/accounts");
    assert_int_equal(op->burst_per_s, 1);
    assert_int_equal(op->steady_per_min, 15);
    assert_int_equal(op->daily, 0);
    assert_string_equal(op->scopes, "accounts:read");

    op = kspec_by_id("create_segment");
    assert_non_null(op);
    assert_string_equal(op->method, "POST");
    assert_string_equal(op->path, "/api/segments");
    assert_int_equal(op->daily, 100);

    op = kspec_by_id("upload_image_from_file");
    assert_non_null(op);
    assert_string_equal(op->path, "/api/image-upload");
    assert_int_equal(op->burst_per_s, 3);
    assert_int_equal(op->steady_per_min, 100);
    assert_int_equal(op->daily, 500);

    op = kspec_by_id("add_profiles_to_list");
    assert_non_null(op);
    assert_string_equal(op->scopes, "lists:write,profiles:write");

    op = kspec_by_id("create_client_review");
    assert_non_null(op);
    assert_string_equal(op->scopes, "");

    assert_null(kspec_by_id("get_accountz"));
    assert_null(kspec_by_id(""));
    assert_null(kspec_by_id(NULL));
}

static void test_by_id_finds_every_row(void **state)
{
    (void)state;
    for (size_t i = 0; i < kspec_ops_count; i++)
        assert_ptr_equal(kspec_by_id(kspec_ops[i].operation_id), &kspec_ops[i]);
}

/* Replaces every {param} of the template with `value`. */
static void instantiate(const char *tpl, const char *value, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = tpl; *p;) {
        if (*p == '{') {
            n += (size_t)snprintf(out + n, size - n, "%s", value);
            p = strchr(p, '}') + 1;
        } else {
            out[n++] = *p++;
        }
        assert_true(n < size);
    }
    out[n] = '\0';
}

static void test_find_every_row(void **state)
{
    (void)state;
    char path[512], with_query[600];
    for (size_t i = 0; i < kspec_ops_count; i++) {
        const struct kspec_op *op = &kspec_ops[i];
        instantiate(op->path, "Y6nRLr", path, sizeof path);
        assert_ptr_equal(kspec_find(op->method, path), op);
        snprintf(with_query, sizeof with_query, "%s?fields[x]=a,b&page[cursor]=/api/z", path);
        assert_ptr_equal(kspec_find(op->method, with_query), op);
        snprintf(with_query, sizeof with_query, "%s/", path);
        assert_ptr_equal(kspec_find(op->method, with_query), op);
    }
}

static const char *id_of(const char *method, const char *path)
{
    const struct kspec_op *op = kspec_find(method, path);
    return op ? op->operation_id : "(none)";
}

static void test_find_examples(void **state)
{
    (void)state;
    assert_string_equal(id_of("GET", "/api/lists/Y6nRLr"), "get_list");
    assert_string_equal(id_of("PATCH", "/api/lists/Y6nRLr"), "update_list");
    assert_string_equal(id_of("DELETE", "/api/lists/Y6nRLr"), "delete_list");
    assert_string_equal(id_of("get", "/api/lists/Y6nRLr"), "get_list");
    assert_string_equal(id_of("GET", "/api/lists"), "get_lists");
    assert_string_equal(id_of("POST", "/api/lists"), "create_list");
    assert_string_equal(id_of("GET", "/api/lists/Y6nRLr/relationships/profiles"),
                        "get_profile_ids_for_list");
    assert_string_equal(id_of("POST", "/api/lists/Y6nRLr/relationships/profiles"),
                        "add_profiles_to_list");
    assert_string_equal(id_of("DELETE", "/api/lists/Y6nRLr/relationships/profiles"),
                        "remove_profiles_from_list");
    assert_string_equal(id_of("GET", "/api/lists/Y6nRLr/profiles?page[size]=100"),
                        "get_profiles_for_list");
    assert_string_equal(id_of("GET", "/api/catalog-items/$custom:::$default:::SKU1"),
                        "get_catalog_item");
    assert_string_equal(
        id_of("PATCH", "/api/catalog-items/%24custom%3A%3A%3A%24default%3A%3A%3ASKU1"),
        "update_catalog_item");
    assert_string_equal(id_of("GET", "/api/accounts#frag"), "get_accounts");
    /* An escaped literal is still that literal. */
    assert_string_equal(id_of("GET", "/api/%6Cists/Y6nRLr"), "get_list");
    assert_string_equal(id_of("GET", "/api/lists%2FY6nRLr"), "(none)");
}

static void test_find_misses(void **state)
{
    (void)state;
    assert_null(kspec_find("GET", "/api/nope"));
    assert_null(kspec_find("GET", "/api/lists/Y6nRLr/nope"));
    assert_null(kspec_find("GET", "/api/lists/a/b/c/d/e/f/g"));
    assert_null(kspec_find("PUT", "/api/lists/Y6nRLr"));
    assert_null(kspec_find("POST", "/api/accounts"));
    assert_null(kspec_find("GET", "api/lists"));
    assert_null(kspec_find("GET", "/api//lists"));
    assert_null(kspec_find("GET", "/api/lists//"));
    assert_null(kspec_find("GET", "/api/lists/Y6nRLr//profiles"));
    assert_null(kspec_find("GET", "/"));
    assert_null(kspec_find("GET", ""));
    assert_null(kspec_find("GET", "?/api/lists"));
    assert_null(kspec_find(NULL, "/api/lists"));
    assert_null(kspec_find("GET", NULL));
    char deep[400] = "";
    for (int i = 0; i < 40; i++)
        strcat(deep, "/api");
    assert_null(kspec_find("GET", deep));
}

/* Klaviyo's spec has no two templates that can match one request, so precedence is shown on a
 * table made for it, through the same matcher kspec_find() uses. */
static const struct kspec_op overlap_ops[] = {
    {"GET", "/api/things/{id}", "get_thing", 1, 1, 0, ""},
    {"POST", "/api/things/{id}", "post_thing", 1, 1, 0, ""},
    {"GET", "/api/things/special", "get_special", 1, 1, 0, ""},
    {"GET", "/api/things/{id}/parts", "get_parts", 1, 1, 0, ""},
    {"GET", "/api/things/special/{part}", "get_special_part", 1, 1, 0, ""},
    {"GET", "/api/a/lit/x", "get_lit_x", 1, 1, 0, ""},
    {"GET", "/api/a/{p}/y", "get_param_y", 1, 1, 0, ""},
    {"GET", "/api/things", "get_things", 1, 1, 0, ""},
    {"GET", "/api/things-and-more", "get_more", 1, 1, 0, ""},
};

static const char *overlap_id(const uint16_t *order, const char *method, const char *path)
{
    const struct kspec_op *op =
        kspec_route_match(overlap_ops, order, CAD_ARRAY_LEN(overlap_ops), method, path);
    return op ? op->operation_id : "(none)";
}

static void test_literal_beats_param(void **state)
{
    (void)state;
    uint16_t order[CAD_ARRAY_LEN(overlap_ops)];
    assert_int_equal(kspec_route_sort(overlap_ops, CAD_ARRAY_LEN(overlap_ops), order), CAD_OK);
    assert_string_equal(overlap_id(order, "GET", "/api/things/special"), "get_special");
    assert_string_equal(overlap_id(order, "GET", "/api/things/%73pecial"), "get_special");
    assert_string_equal(overlap_id(order, "GET", "/api/things/other"), "get_thing");
    assert_string_equal(overlap_id(order, "GET", "/api/things/specia"), "get_thing");
    assert_string_equal(overlap_id(order, "GET", "/api/things/specials"), "get_thing");
    /* No POST on the literal: the parameter template still serves POST. */
    assert_string_equal(overlap_id(order, "POST", "/api/things/special"), "post_thing");
    /* Both /api/things/{id}/parts and /api/things/special/{part} fit; the earlier literal wins. */
    assert_string_equal(overlap_id(order, "GET", "/api/things/special/parts"), "get_special_part");
    assert_string_equal(overlap_id(order, "GET", "/api/things/other/parts"), "get_parts");
    /* The literal branch dead-ends one segment later; the matcher backs out to the parameter. */
    assert_string_equal(overlap_id(order, "GET", "/api/a/lit/y"), "get_param_y");
    assert_string_equal(overlap_id(order, "GET", "/api/a/lit/x"), "get_lit_x");
    assert_string_equal(overlap_id(order, "GET", "/api/a/other/x"), "(none)");
    assert_string_equal(overlap_id(order, "GET", "/api/things"), "get_things");
    assert_string_equal(overlap_id(order, "GET", "/api/things-and-more"), "get_more");
    assert_string_equal(overlap_id(order, "GET", "/api/things-and-more/x"), "(none)");
}

static void test_route_sort_rejects_ambiguity(void **state)
{
    (void)state;
    static const struct kspec_op ambiguous[] = {
        {"GET", "/api/things/{id}", "get_thing", 1, 1, 0, ""},
        {"GET", "/api/stuff", "get_stuff", 1, 1, 0, ""},
        {"GET", "/api/things/{thing_id}", "get_thing_again", 1, 1, 0, ""},
    };
    uint16_t order[3];
    assert_int_equal(kspec_route_sort(ambiguous, 3, order), CAD_EINVAL);
    assert_non_null(strstr(cad_errmsg(), "get_thing"));
    assert_non_null(strstr(cad_errmsg(), "get_thing_again"));
    assert_int_equal(kspec_route_sort(ambiguous, 2, order), CAD_OK);
    assert_int_equal(kspec_route_sort(ambiguous, KSPEC_INDEX_MAX + 1, order), CAD_EINVAL);
}

/* The generated route order is the order kspec_route_sort() computes at run time. */
static void test_generated_index_matches_runtime_sort(void **state)
{
    (void)state;
    static uint16_t order[400];
    assert_true(kspec_ops_count <= CAD_ARRAY_LEN(order));
    assert_int_equal(kspec_route_sort(kspec_ops, kspec_ops_count, order), CAD_OK);
    assert_memory_equal(order, kspec_route_order, kspec_ops_count * sizeof order[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_shape),
        cmocka_unit_test(test_known_rows),
        cmocka_unit_test(test_by_id_finds_every_row),
        cmocka_unit_test(test_find_every_row),
        cmocka_unit_test(test_find_examples),
        cmocka_unit_test(test_find_misses),
        cmocka_unit_test(test_literal_beats_param),
        cmocka_unit_test(test_route_sort_rejects_ambiguity),
        cmocka_unit_test(test_generated_index_matches_runtime_sort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
