/*
 * Tests of the bundle loader: the example bundle loads with the expected assets, attributes,
 * refs and order; every class of mistake is reported with its file, field, line/column and a
 * message saying what to do; every error is reported, not just the first; hashes are stable and
 * follow content only; the CSV reader handles RFC 4180 quoting.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "bundle/bundle.h"
#include "common/err.h"
#include "common/util.h"
#include "testutil.h"

#define MAX_ERRS 64

struct fixture {
    char *dir;
    struct bundle_error errs[MAX_ERRS];
    size_t n;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = test_tmpdir();
    assert_non_null(f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    test_rmdir(f->dir);
    free(f);
    return 0;
}

static void put_bytes(struct fixture *f, const char *rel, const void *data, size_t n)
{
    char path[1024], parent[1024];
    snprintf(path, sizeof path, "%s/%s", f->dir, rel);
    snprintf(parent, sizeof parent, "%s", path);
    char *slash = strrchr(parent, '/');
    *slash = '\0';
    assert_int_equal(fs_mkdir_p(parent, 0755), CAD_OK);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    fclose(fp);
}

static void put(struct fixture *f, const char *rel, const char *text)
{
    put_bytes(f, rel, text, strlen(text));
}

/* Loads f->dir expecting failure; returns the total number of problems. */
static size_t load_bad(struct fixture *f)
{
    struct bundle *b = (struct bundle *)0x1;
    int rc = bundle_load(f->dir, &b, f->errs, MAX_ERRS, &f->n);
    assert_int_equal(rc, CAD_EINVAL);
    assert_null(b);
    assert_true(f->n > 0);
    return f->n;
}

static struct bundle *load_ok(const char *dir)
{
    struct bundle *b = NULL;
    struct bundle_error errs[8];
    size_t n = 99;
    int rc = bundle_load(dir, &b, errs, 8, &n);
    if (rc != CAD_OK) {
        for (size_t i = 0; i < n && i < 8; i++) {
            char buf[1200];
            bundle_error_format(&errs[i], buf, sizeof buf);
            print_error("%s\n", buf);
        }
        fail_msg("bundle_load(%s) = %d with %zu errors", dir, rc, n);
    }
    assert_int_equal(n, 0);
    assert_non_null(b);
    return b;
}

/* The error for file and field; fails the test when there is none. */
static const struct bundle_error *err_for(struct fixture *f, const char *file, const char *field)
{
    for (size_t i = 0; i < f->n && i < MAX_ERRS; i++) {
        if (strcmp(f->errs[i].file, file) == 0 && strcmp(f->errs[i].field, field) == 0)
            return &f->errs[i];
    }
    for (size_t i = 0; i < f->n && i < MAX_ERRS; i++) {
        char buf[1200];
        bundle_error_format(&f->errs[i], buf, sizeof buf);
        print_error("  have: %s\n", buf);
    }
    fail_msg("no error for %s field '%s'", file, field);
    return NULL;
}

static void assert_msg(const struct bundle_error *e, const char *needle)
{
    if (!strstr(e->message, needle))
        fail_msg("message \"%s\" lacks \"%s\"", e->message, needle);
}

/* The error for file and field whose message holds needle; fails the test when there is none. */
static const struct bundle_error *expect(struct fixture *f, const char *file, const char *field,
                                         const char *needle)
{
    for (size_t i = 0; i < f->n && i < MAX_ERRS; i++) {
        const struct bundle_error *e = &f->errs[i];
        if (strcmp(e->file, file) == 0 && strcmp(e->field, field) == 0 &&
            strstr(e->message, needle))
            return e;
    }
    assert_msg(err_for(f, file, field), needle);
    return NULL;
}

/* ---- the example bundle ---- */

static size_t position(const struct bundle *b, const struct bundle_asset *a)
{
    size_t idx = (size_t)(a - b->assets);
    for (size_t i = 0; i < b->n_assets; i++) {
        if (b->order[i] == idx)
            return i;
    }
    fail_msg("asset %s not in order", a->name);
    return 0;
}

static void test_example_bundle(void **state)
{
    (void)state;
    struct bundle *b = load_ok(CADENCE_EXAMPLE_BUNDLE);
    assert_int_equal(b->n_assets, 25);
    size_t per_kind[ASSET_KIND_COUNT] = {0};
    for (size_t i = 0; i < b->n_assets; i++) {
        per_kind[b->assets[i].kind]++;
        if (i > 0) {
            const struct bundle_asset *p = &b->assets[i - 1], *a = &b->assets[i];
            assert_true(p->kind < a->kind || (p->kind == a->kind && strcmp(p->name, a->name) < 0));
        }
        assert_int_equal(strlen(b->assets[i].content_hash), 64);
    }
    const size_t want[ASSET_KIND_COUNT] = {3, 3, 2, 2, 2, 2, 2, 3, 2, 2, 2};
    for (int k = 0; k < ASSET_KIND_COUNT; k++)
        assert_int_equal(per_kind[k], want[k]);
    assert_int_equal(strlen(b->hash), 64);

    const struct bundle_asset *t = bundle_find(b, ASSET_TEMPLATE, "welcome");
    assert_non_null(t);
    assert_string_equal(t->file, "templates/welcome.html");
    assert_string_equal(json_string_value(json_object_get(t->attrs, "editor_type")), "CODE");
    assert_string_equal(json_string_value(json_object_get(t->attrs, "name")), "welcome");
    assert_non_null(strstr(json_string_value(json_object_get(t->attrs, "html")), "<h1>Welcome"));
    assert_non_null(strstr(json_string_value(json_object_get(t->attrs, "text")), "WELCOME10"));
    t = bundle_find(b, ASSET_TEMPLATE, "welcome-followup");
    assert_null(json_object_get(t->attrs, "text"));

    const struct bundle_asset *img = bundle_find(b, ASSET_IMAGE, "logo");
    assert_non_null(img);
    assert_string_equal(img->mime, "image/png");
    assert_true(img->data_len > 8 && memcmp(img->data, "\x89PNG", 4) == 0);
    assert_string_equal(bundle_find(b, ASSET_IMAGE, "pixel")->mime, "image/gif");
    img = bundle_find(b, ASSET_IMAGE, "spring-hero");
    assert_null(img->data);
    assert_null(img->mime);
    assert_string_equal(json_string_value(json_object_get(img->attrs, "import_from_url")),
                        "https://cdn.example.com/acme/spring-hero.jpg");
    assert_null(json_object_get(img->attrs, "url"));

    const struct bundle_asset *c = bundle_find(b, ASSET_COUPON, "spring20");
    assert_string_equal(json_string_value(json_object_get(c->attrs, "external_id")), "SPRING20");
    assert_null(json_object_get(c->attrs, "name"));

    const struct bundle_asset *w = bundle_find(b, ASSET_WEBHOOK, "sms-events");
    assert_string_equal(json_string_value(json_object_get(w->attrs, "secret_key_env")),
                        "ACME_SMS_WEBHOOK_SECRET");
    assert_null(json_object_get(w->attrs, "secret_key"));

    const struct bundle_asset *item = bundle_find(b, ASSET_CATALOG_ITEM, "BAG-40L");
    assert_non_null(item);
    assert_string_equal(item->file, "catalog/items.csv");
    assert_string_equal(json_string_value(json_object_get(item->attrs, "title")),
                        "The \"Ridge\" 40L pack");
    assert_string_equal(json_string_value(json_object_get(item->attrs, "description")),
                        "Pack with\nrain cover");
    assert_true(json_number_value(json_object_get(item->attrs, "price")) == 129.5);
    assert_null(json_object_get(item->attrs, "image_full_url"));
    item = bundle_find(b, ASSET_CATALOG_ITEM, "TENT-2P");
    assert_string_equal(json_string_value(json_object_get(item->attrs, "description")),
                        "Two-person tent, 1.9 kg");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(item->attrs, "custom_metadata"), "color")),
                        "green");
    assert_true(json_is_false(
        json_object_get(bundle_find(b, ASSET_CATALOG_ITEM, "STOVE-1")->attrs, "published")));

    const struct bundle_asset *camp = bundle_find(b, ASSET_CAMPAIGN, "spring-sale");
    assert_non_null(camp);
    assert_int_equal(camp->n_refs, 3);
    assert_int_equal(camp->refs[0].kind, ASSET_SEGMENT);
    assert_string_equal(camp->refs[0].name, "engaged-30d");
    assert_string_equal(camp->refs[0].pointer, "/audiences/included/0");
    assert_int_equal(camp->refs[2].kind, ASSET_TEMPLATE);
    assert_string_equal(camp->refs[2].pointer,
                        "/campaign-messages/data/0/relationships/template/data");
    /* $refs stay in place for the plan engine to replace. */
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(json_object_get(camp->attrs, "audiences"), "included"),
                           0),
            "$ref")),
        "segment:engaged-30d");

    const struct bundle_asset *tag = bundle_find(b, ASSET_TAG, "seasonal");
    assert_int_equal(tag->n_refs, 3);
    assert_string_equal(tag->refs[0].name, "spring-sale");
    assert_string_equal(tag->refs[0].pointer, "");

    /* Every asset comes after what it refers to. */
    for (size_t i = 0; i < b->n_assets; i++) {
        const struct bundle_asset *a = &b->assets[i];
        for (size_t r = 0; r < a->n_refs; r++) {
            const struct bundle_asset *to = bundle_find(b, a->refs[r].kind, a->refs[r].name);
            assert_non_null(to);
            assert_true(position(b, to) < position(b, a));
        }
    }
    assert_true(position(b, bundle_find(b, ASSET_SEGMENT, "engaged-30d")) <
                position(b, bundle_find(b, ASSET_SEGMENT, "vip-engaged")));
    assert_null(bundle_find(b, ASSET_LIST, "nope"));
    bundle_free(b);
}

static void test_kind_names(void **state)
{
    (void)state;
    for (int k = 0; k < ASSET_KIND_COUNT; k++) {
        enum asset_kind out;
        assert_int_equal(asset_kind_parse(asset_kind_name((enum asset_kind)k), &out), CAD_OK);
        assert_int_equal(out, k);
    }
    enum asset_kind out;
    assert_int_equal(asset_kind_parse("lists", &out), CAD_EINVAL);
    assert_non_null(strstr(cad_errmsg(), "catalog-item"));
    assert_string_equal(asset_kind_name(ASSET_CATALOG_ITEM), "catalog-item");
}

static void test_error_format(void **state)
{
    (void)state;
    struct bundle_error e = {"lists/a.json", "/name", 3, 7, "bad"};
    char buf[600];
    bundle_error_format(&e, buf, sizeof buf);
    assert_string_equal(buf, "lists/a.json:3:7: /name: bad");
    struct bundle_error e2 = {"lists/a.json", "", 0, 0, "bad"};
    bundle_error_format(&e2, buf, sizeof buf);
    assert_string_equal(buf, "lists/a.json: bad");
    struct bundle_error e3 = {"", "", 0, 0, "bad"};
    bundle_error_format(&e3, buf, sizeof buf);
    assert_string_equal(buf, "bad");
    bundle_error_format(&e, buf, 8);
    assert_string_equal(buf, "lists/a");
}

static void test_missing_dir(void **state)
{
    struct fixture *f = *state;
    char path[600];
    snprintf(path, sizeof path, "%s/none", f->dir);
    struct bundle *b = NULL;
    assert_int_equal(bundle_load(path, &b, f->errs, MAX_ERRS, &f->n), CAD_ENOTFOUND);
    assert_null(b);
    assert_int_equal(f->n, 1);
    put(f, "file", "x");
    snprintf(path, sizeof path, "%s/file", f->dir);
    assert_int_equal(bundle_load(path, &b, f->errs, MAX_ERRS, &f->n), CAD_EINVAL);
}

static void test_empty_bundle(void **state)
{
    struct fixture *f = *state;
    struct bundle *b = load_ok(f->dir);
    assert_int_equal(b->n_assets, 0);
    char empty[65];
    sha256_hex("", 0, empty);
    assert_string_equal(b->hash, empty);
    bundle_free(b);
}

/* ---- mistakes, one class each ---- */

static void test_unknown_folder_and_extension(void **state)
{
    struct fixture *f = *state;
    put(f, "list/a.json", "{}");
    put(f, "lists/b.yaml", "name: b");
    put(f, "README.md", "hi");
    put(f, "templates/x.htm", "<p>");
    put(f, "images/a.bmp", "BM");
    put(f, "catalog/products.csv", "x");
    assert_int_equal(load_bad(f), 6);
    expect(f, "list", "", "unknown folder");
    expect(f, "lists/b.yaml", "", "lists/ holds .json files");
    expect(f, "README.md", "", "kind folder");
    expect(f, "templates/x.htm", "", "<name>.html");
    expect(f, "images/a.bmp", "", ".png");
    expect(f, "catalog/products.csv", "", "items.json or items.csv");
}

static void test_bad_json_line_column(void **state)
{
    struct fixture *f = *state;
    put(f, "lists/a.json", "{\n  \"opt_in_process\": \"single_opt_in\",\n  \"name\" \"x\"\n}\n");
    put(f, "lists/b.json", "{\"name\": \"b\", \"name\": \"c\"}");
    put(f, "segments/s.json", "[1, 2]");
    assert_int_equal(load_bad(f), 3);
    const struct bundle_error *e = err_for(f, "lists/a.json", "");
    assert_int_equal(e->line, 3);
    assert_int_equal(e->column, 12); /* jansson points at the end of the bad token */
    assert_msg(e, "invalid JSON");
    char buf[1200];
    bundle_error_format(e, buf, sizeof buf);
    assert_true(strncmp(buf, "lists/a.json:3:12: invalid JSON", 31) == 0);
    e = err_for(f, "lists/b.json", "");
    assert_msg(e, "duplicate");
    assert_int_equal(e->line, 1);
    expect(f, "segments/s.json", "", "one JSON object, not an array");
}

static void test_missing_required(void **state)
{
    struct fixture *f = *state;
    put(f, "segments/s.json", "{\"is_starred\": true}");
    put(f, "forms/f.json",
        "{\"status\": \"draft\", \"definition\": {\"versions\": [{\"steps\": "
        "[{\"columns\": [{\"rows\": [{}]}]}]}]}}");
    put(f, "coupons/c.json", "{\"description\": \"x\"}");
    put(f, "flows/fl.json",
        "{\"definition\": {\"triggers\": [{\"type\": \"list\", \"id\": "
        "{\"$ref\": \"list:l\"}}], \"actions\": [{\"type\": \"time-delay\", "
        "\"temporary_id\": \"a\", \"data\": {\"unit\": \"days\"}}]}}");
    put(f, "lists/l.json", "{}");
    load_bad(f);
    expect(f, "segments/s.json", "/definition", "\"definition\" is required");
    expect(f, "forms/f.json", "/ab_test", "\"ab_test\" is required");
    expect(f, "forms/f.json", "/definition/versions/0/steps/0/columns/0/rows/0/blocks", "required");
    expect(f, "coupons/c.json", "/external_id", "required");
    expect(f, "flows/fl.json", "/definition/entry_action_id", "required");
    expect(f, "flows/fl.json", "/definition/actions/0/data/value", "required");
    assert_int_equal(f->n, 6);
}

static void test_wrong_type(void **state)
{
    struct fixture *f = *state;
    put(f, "lists/a.json", "{\"opt_in_process\": 1}");
    put(f, "lists/b.json", "{\"name\": [\"b\"]}");
    put(f, "forms/f.json",
        "{\"status\": \"draft\", \"ab_test\": \"no\", \"definition\": "
        "{\"versions\": {}}}");
    assert_int_equal(load_bad(f), 4);
    expect(f, "lists/a.json", "/opt_in_process", "must be a string, not an integer");
    expect(f, "lists/b.json", "/name", "must be a string, not an array");
    expect(f, "forms/f.json", "/ab_test", "must be a boolean, not a string");
    expect(f, "forms/f.json", "/definition/versions", "must be an array");
}

static void test_values_klaviyo_rejects(void **state)
{
    struct fixture *f = *state;
    put(f, "lists/a.json", "{\"opt_in_process\": \"triple_opt_in\", \"colour\": \"red\"}");
    put(f, "webhooks/w.json",
        "{\"endpoint_url\": \"http://hooks.example/x\", \"secret_key_env\": "
        "\"lower\", \"topics\": [\"event:klaviyo.sent_sms\"]}");
    put(f, "webhooks/s.json",
        "{\"endpoint_url\": \"https://hooks.example/x\", \"secret_key\": "
        "\"hunter2\", \"topics\": [\"event:klaviyo.sent_sms\"]}");
    put(f, "templates/t.html", "<p>hi</p>");
    put(f, "campaigns/c.json",
        "{\"campaign-messages\": {\"data\": [{\"type\": \"campaign-message\", \"attributes\": "
        "{\"definition\": {\"channel\": \"email\"}}}]}, \"send_strategy\": {\"method\": "
        "\"throttled\", \"datetime\": \"2026-08-01T10:00:00+00:00\", \"throttle_percentage\": "
        "30}}");
    put(f, "flows/f.json",
        "{\"definition\": {\"triggers\": [{\"type\": \"list\", \"id\": {\"$ref\": \"list:a\"}}], "
        "\"entry_action_id\": \"e\", \"actions\": [{\"temporary_id\": \"e\", \"type\": "
        "\"send-email\", \"links\": {\"next\": \"zz\"}, \"data\": {\"message\": {\"subject_line\": "
        "\"x\"}}}]}}");
    put(f, "forms/g.json",
        "{\"status\": \"live\", \"ab_test\": false, \"definition\": "
        "{\"versions\": [{\"id\": 4, \"steps\": [{\"columns\": []}]}]}}");
    put(f, "coupons/c.json", "{\"external_id\": \"10 OFF\"}");
    load_bad(f);
    const struct bundle_error *e = err_for(f, "lists/a.json", "/opt_in_process");
    assert_msg(e, "single_opt_in, double_opt_in");
    expect(f, "lists/a.json", "/colour", "create_list accepts name, opt_in_process");
    expect(f, "webhooks/w.json", "/endpoint_url", "https");
    expect(f, "webhooks/w.json", "/secret_key_env", "environment variable");
    e = err_for(f, "webhooks/s.json", "/secret_key");
    assert_msg(e, "secret_key_env");
    assert_null(strstr(e->message, "hunter2"));
    expect(f, "campaigns/c.json", "/audiences", "needs an audience");
    expect(f, "campaigns/c.json", "/campaign-messages/data/0/relationships/template",
           "needs a template");
    expect(f, "campaigns/c.json", "/send_strategy/throttle_percentage", "33");
    expect(f, "flows/f.json", "/definition/actions/0/data/message/template_id", "needs a template");
    expect(f, "flows/f.json", "/definition/actions/0/links/next", "\"zz\"");
    expect(f, "forms/g.json", "/status", "accepts draft");
    expect(f, "forms/g.json", "/definition/versions/0/id", "not allowed");
    expect(f, "forms/g.json", "/definition/versions/0/steps/0/columns", "empty");
    expect(f, "coupons/c.json", "/external_id", "letters, digits");
}

static void test_duplicate_names(void **state)
{
    struct fixture *f = *state;
    put(f, "lists/a.json", "{}");
    put(f, "lists/b.json", "{\"name\": \"a\"}");
    put(f, "images/a.json", "{\"url\": \"https://x.example/a.png\"}");
    put(f, "segments/a.json",
        "{\"definition\": {\"condition_groups\": [{\"conditions\": "
        "[{\"type\": \"profile-region\"}]}]}}");
    assert_int_equal(load_bad(f), 1);
    expect(f, "lists/b.json", "", "\"a\" is also used by lists/a.json");
}

static void test_refs(void **state)
{
    struct fixture *f = *state;
    put(f, "lists/l.json", "{}");
    put(f, "templates/t.html", "<p>");
    put(f, "segments/s.json",
        "{\"definition\": {\"condition_groups\": [{\"conditions\": [{\"type\": "
        "\"profile-group-membership\", \"is_member\": true, \"group_ids\": [{\"$ref\": "
        "\"list:nope\"}, {\"$ref\": \"lst:l\"}, {\"$ref\": \"template:t\"}, {\"$ref\": \"l\"}, "
        "{\"$ref\": \"list:l\", \"x\": 1}, \"raw-id\"]}]}]}}");
    put(f, "lists/m.json", "{\"name\": {\"$ref\": \"list:l\"}}");
    put(f, "coupons/c.json", "{\"external_id\": \"C1\", \"description\": {\"$ref\": \"list:l\"}}");
    put(f, "tags/t.json",
        "{\"targets\": [\"template:t\", \"list:gone\", \"list:l\", \"list:l\", "
        "\"flowx:y\"]}");
    load_bad(f);
    const char *g = "/definition/condition_groups/0/conditions/0/group_ids/";
    char p[200];
    snprintf(p, sizeof p, "%s0", g);
    expect(f, "segments/s.json", p, "no list named \"nope\" (add it to lists/");
    snprintf(p, sizeof p, "%s1", g);
    expect(f, "segments/s.json", p, "unknown kind");
    snprintf(p, sizeof p, "%s2", g);
    expect(f, "segments/s.json", p, "names a template, but this field takes a list or segment");
    snprintf(p, sizeof p, "%s3", g);
    expect(f, "segments/s.json", p, "kind:name");
    snprintf(p, sizeof p, "%s4", g);
    expect(f, "segments/s.json", p, "only \"$ref\"");
    snprintf(p, sizeof p, "%s5", g);
    expect(f, "segments/s.json", p, "reference to an asset of the bundle");
    expect(f, "lists/m.json", "/name", "must be a string");
    expect(f, "coupons/c.json", "/description", "must be a string");
    expect(f, "tags/t.json", "/targets/0", "only campaigns, flows, lists and segments");
    expect(f, "tags/t.json", "/targets", "no list named \"gone\"");
    expect(f, "tags/t.json", "/targets/3", "listed twice");
    expect(f, "tags/t.json", "/targets/4", "unknown kind");
}

static void test_ref_kind_not_allowed(void **state)
{
    struct fixture *f = *state;
    put(f, "lists/l.json", "{}");
    put(f, "templates/t.html", "<p>");
    put(f, "webhooks/w.json",
        "{\"endpoint_url\": \"https://h.example/\", \"secret_key_env\": "
        "\"S\", \"topics\": [\"event:klaviyo.sent_sms\"], "
        "\"description\": {\"$ref\": \"list:l\"}}");
    put(f, "flows/f.json",
        "{\"definition\": {\"triggers\": [{\"type\": \"segment\", \"id\": {\"$ref\": "
        "\"list:l\"}}], "
        "\"entry_action_id\": \"e\", \"actions\": [{\"temporary_id\": \"e\", \"type\": "
        "\"send-email\", \"data\": {\"message\": {\"template_id\": {\"$ref\": \"list:l\"}}}}]}}");
    put(f, "campaigns/c.json",
        "{\"audiences\": {\"included\": [{\"$ref\": \"template:t\"}]}, \"campaign-messages\": "
        "{\"data\": [{\"type\": \"campaign-message\", \"attributes\": {\"definition\": "
        "{\"channel\": \"email\"}}, \"relationships\": {\"template\": {\"data\": {\"$ref\": "
        "\"template:t\"}}}}]}}");
    load_bad(f);
    expect(f, "webhooks/w.json", "/description", "a webhook cannot refer to other assets");
    expect(f, "flows/f.json", "/definition/triggers/0/id", "a segment trigger names a list");
    expect(f, "flows/f.json", "/definition/actions/0/data/message/template_id",
           "names a list, but this field takes a template");
    expect(f, "campaigns/c.json", "/audiences/included/0",
           "names a template, but this field takes a list or segment");
}

static void test_cycle(void **state)
{
    struct fixture *f = *state;
    const char *fmt = "{\"definition\": {\"condition_groups\": [{\"conditions\": [{\"type\": "
                      "\"profile-group-membership\", \"is_member\": true, \"group_ids\": "
                      "[{\"$ref\": \"segment:%s\"}]}]}]}}";
    char buf[400];
    snprintf(buf, sizeof buf, fmt, "b");
    put(f, "segments/a.json", buf);
    snprintf(buf, sizeof buf, fmt, "c");
    put(f, "segments/b.json", buf);
    snprintf(buf, sizeof buf, fmt, "a");
    put(f, "segments/c.json", buf);
    snprintf(buf, sizeof buf, fmt, "self");
    put(f, "segments/self.json", buf);
    assert_int_equal(load_bad(f), 2);
    expect(f, "segments/a.json", "", "cycle: segment:a -> segment:b -> segment:c -> segment:a;");
    expect(f, "segments/self.json", "", "cycle: segment:self -> segment:self;");
}

static void test_images(void **state)
{
    struct fixture *f = *state;
    put(f, "images/text.png", "not an image at all");
    put_bytes(f, "images/real-jpeg.png", "\xFF\xD8\xFF\xE0\x00\x10JFIF", 10);
    put_bytes(f, "images/ok.jpeg", "\xFF\xD8\xFF\xE0\x00\x10JFIF", 10);
    put(f, "images/empty.gif", "");
    put(f, "images/u.json", "{\"url\": \"ftp://x.example/a.png\"}");
    put(f, "images/big.png", "");
    char path[700];
    snprintf(path, sizeof path, "%s/images/big.png", f->dir);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\x89PNG\r\n\x1a\n", 8), 8);
    assert_int_equal(ftruncate(fd, (off_t)BUNDLE_MAX_IMAGE_BYTES + 1), 0);
    close(fd);
    assert_int_equal(load_bad(f), 5);
    expect(f, "images/text.png", "", "not a PNG, JPEG or GIF");
    expect(f, "images/real-jpeg.png", "", "a jpeg image but is named .png");
    expect(f, "images/empty.gif", "", "not a PNG, JPEG or GIF");
    expect(f, "images/u.json", "/url", "http");
    expect(f, "images/big.png", "", "5242881 bytes");
    expect(f, "images/big.png", "", "5 MB");

    /* Exactly 5 MB is accepted. */
    unlink(path);
    snprintf(path, sizeof path, "%s/images/text.png", f->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/images/real-jpeg.png", f->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/images/empty.gif", f->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/images/u.json", f->dir);
    unlink(path);
    put(f, "images/big.png", "\x89PNG\r\n\x1a\n");
    snprintf(path, sizeof path, "%s/images/big.png", f->dir);
    assert_int_equal(truncate(path, (off_t)BUNDLE_MAX_IMAGE_BYTES), 0);
    struct bundle *b = load_ok(f->dir);
    assert_int_equal(bundle_find(b, ASSET_IMAGE, "big")->data_len, BUNDLE_MAX_IMAGE_BYTES);
    assert_string_equal(bundle_find(b, ASSET_IMAGE, "ok")->mime, "image/jpeg");
    bundle_free(b);
}

static void test_unsafe_names(void **state)
{
    struct fixture *f = *state;
    put(f, "lists/.hidden.json", "{}");
    put(f, "lists/a..b.json", "{}");
    put(f, "lists/bad\xff.json", "{}");
    put(f, "lists/tab\there.json", "{}");
    put(f, ".git/config", "x");
    put(f, "lists/sub/x.json", "{}");
    put(f, "lists/ok.json", "{\"name\": \"bad\\u0001name\"}");
    assert_int_equal(load_bad(f), 7);
    expect(f, "lists/.hidden.json", "", "hidden");
    expect(f, "lists/a..b.json", "", "\"..\"");
    expect(f, "lists/bad\xff.json", "", "UTF-8");
    expect(f, "lists/tab\there.json", "", "control character");
    expect(f, ".git", "", "hidden");
    expect(f, "lists/sub", "", "one level deep");
    expect(f, "lists/ok.json", "/name", "control character");
}

static void test_file_too_big(void **state)
{
    struct fixture *f = *state;
    size_t n = BUNDLE_MAX_TEXT_BYTES + 10;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    put(f, "lists/big.json", big);
    big[0] = '<';
    put(f, "templates/big.html", big);
    free(big);
    assert_int_equal(load_bad(f), 2);
    expect(f, "lists/big.json", "", "at most 1048576 bytes");
    expect(f, "templates/big.html", "", "a template may be at most");
}

static void test_symlinks(void **state)
{
    struct fixture *f = *state;
    char outside[700], link[700], target[700];
    snprintf(outside, sizeof outside, "%s-outside.json", f->dir);
    FILE *fp = fopen(outside, "w");
    assert_non_null(fp);
    fputs("{}", fp);
    fclose(fp);
    put(f, "lists/real.json", "{}");
    snprintf(link, sizeof link, "%s/lists/out.json", f->dir);
    assert_int_equal(symlink(outside, link), 0);
    snprintf(link, sizeof link, "%s/lists/up.json", f->dir);
    assert_int_equal(symlink("../../../../../../etc/passwd", link), 0);
    snprintf(link, sizeof link, "%s/lists/dangling.json", f->dir);
    assert_int_equal(symlink("nothing-here.json", link), 0);
    snprintf(link, sizeof link, "%s/lists/inside.json", f->dir);
    snprintf(target, sizeof target, "%s/lists/real.json", f->dir);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(load_bad(f), 3);
    expect(f, "lists/out.json", "", "outside the bundle");
    expect(f, "lists/up.json", "", "outside the bundle");
    expect(f, "lists/dangling.json", "", "symlink to nothing");
    unlink(outside);
    snprintf(link, sizeof link, "%s/lists/out.json", f->dir);
    unlink(link);
    snprintf(link, sizeof link, "%s/lists/up.json", f->dir);
    unlink(link);
    snprintf(link, sizeof link, "%s/lists/dangling.json", f->dir);
    unlink(link);
    struct bundle *b = load_ok(f->dir);
    assert_non_null(bundle_find(b, ASSET_LIST, "inside"));
    assert_non_null(bundle_find(b, ASSET_LIST, "real"));
    bundle_free(b);
}

static void test_all_errors_reported(void **state)
{
    struct fixture *f = *state;
    char rel[64];
    for (int i = 0; i < 80; i++) {
        snprintf(rel, sizeof rel, "lists/l%02d.json", i);
        put(f, rel, "{\"opt_in_process\": \"never\"}");
    }
    assert_int_equal(load_bad(f), 80);
    assert_string_equal(f->errs[0].file, "lists/l00.json");
    assert_string_equal(f->errs[MAX_ERRS - 1].file, "lists/l63.json");
    /* With no room at all, the count is still right. */
    struct bundle *b = NULL;
    size_t n = 0;
    assert_int_equal(bundle_load(f->dir, &b, NULL, 0, &n), CAD_EINVAL);
    assert_int_equal(n, 80);
    assert_non_null(strstr(cad_errmsg(), "80 problems"));
}

static void test_templates(void **state)
{
    struct fixture *f = *state;
    put(f, "templates/orphan.txt", "text");
    put(f, "templates/empty.html", "");
    put(f, "templates/latin1.html", "<p>caf\xe9</p>\n");
    put(f, "templates/good.html", "<p>ok</p>");
    put(f, "templates/good.txt", "line one\nbad \xc3\x28 here");
    assert_int_equal(load_bad(f), 4);
    expect(f, "templates/orphan.txt", "", "templates/orphan.html");
    expect(f, "templates/empty.html", "", "empty");
    const struct bundle_error *e = err_for(f, "templates/latin1.html", "");
    assert_msg(e, "UTF-8");
    assert_int_equal(e->line, 1);
    assert_int_equal(e->column, 7);
    e = err_for(f, "templates/good.txt", "");
    assert_int_equal(e->line, 2);
    assert_int_equal(e->column, 5);
}

static void test_flow_structure(void **state)
{
    struct fixture *f = *state;
    put(f, "lists/l.json", "{}");
    put(f, "flows/f.json",
        "{\"definition\": {\"triggers\": [{\"type\": \"list\", \"id\": \"Y6nRLr\"}, {\"type\": "
        "\"metric\", \"id\": \"M\"}], \"entry_action_id\": \"start\", \"actions\": "
        "[{\"temporary_id\": \"a\", \"type\": \"fly\"}, {\"temporary_id\": \"a\", \"type\": "
        "\"time-delay\", \"id\": \"9\", \"data\": {\"value\": -1}}]}}");
    load_bad(f);
    expect(f, "flows/f.json", "/definition/triggers", "only one trigger");
    expect(f, "flows/f.json", "/definition/triggers/0/id", "{\"$ref\": \"list:NAME\"}");
    expect(f, "flows/f.json", "/definition/entry_action_id", "\"start\"");
    expect(f, "flows/f.json", "/definition/actions/0/type", "time-delay, send-email");
    expect(f, "flows/f.json", "/definition/actions/1/temporary_id", "unique");
    expect(f, "flows/f.json", "/definition/actions/1/id", "not allowed");
    expect(f, "flows/f.json", "/definition/actions/1/data/value", "negative");
}

/* ---- catalog ---- */

static void test_csv_quoting(void **state)
{
    struct fixture *f = *state;
    put(f, "catalog/items.csv",
        "\xEF\xBB\xBFurl,external_id,title,description,images\r\n"
        "https://s.example/1,A,\"Comma, inside\",\"Line\r\nbreak\",\r\n"
        "https://s.example/2,B,\"Quote \"\"here\"\"\",\"\"\"\",https://i.example/1 "
        "https://i.example/2\r\n"
        "\r\n"
        "https://s.example/3,C,Plain,\"\",x\n"
        "https://s.example/4,\"D\",\"caf\xc3\xa9\",d,");
    /* Row C has an empty (quoted) description. */
    load_bad(f);
    assert_int_equal(f->n, 2);
    const struct bundle_error *e = err_for(f, "catalog/items.csv", "description");
    assert_int_equal(e->line, 6);
    assert_int_equal(e->column, 29);
    e = err_for(f, "catalog/items.csv", "images");
    assert_int_equal(e->line, 6);
    assert_int_equal(e->column, 32);

    put(f, "catalog/items.csv",
        "url,external_id,title,description,images\n"
        "https://s.example/1,A,\"Comma, inside\",\"Line\r\nbreak\",\n"
        "https://s.example/2,B,\"Quote \"\"here\"\"\",\"\"\"\",https://i.example/1 "
        "https://i.example/2\n"
        "https://s.example/4,\"D\",\"caf\xc3\xa9\",d,");
    struct bundle *b = load_ok(f->dir);
    assert_int_equal(b->n_assets, 3);
    const struct bundle_asset *a = bundle_find(b, ASSET_CATALOG_ITEM, "A");
    assert_string_equal(json_string_value(json_object_get(a->attrs, "title")), "Comma, inside");
    assert_string_equal(json_string_value(json_object_get(a->attrs, "description")),
                        "Line\r\nbreak");
    assert_null(json_object_get(a->attrs, "images"));
    a = bundle_find(b, ASSET_CATALOG_ITEM, "B");
    assert_string_equal(json_string_value(json_object_get(a->attrs, "title")), "Quote \"here\"");
    assert_string_equal(json_string_value(json_object_get(a->attrs, "description")), "\"");
    assert_int_equal(json_array_size(json_object_get(a->attrs, "images")), 2);
    assert_string_equal(
        json_string_value(json_object_get(bundle_find(b, ASSET_CATALOG_ITEM, "D")->attrs, "title")),
        "caf\xc3\xa9");
    bundle_free(b);
}

static void test_csv_errors(void **state)
{
    struct fixture *f = *state;
    put(f, "catalog/items.csv", "external_id,title,url,colour\nA,T,https://s.example/,red\n");
    load_bad(f);
    assert_int_equal(f->n, 2);
    const struct bundle_error *e = err_for(f, "catalog/items.csv", "colour");
    assert_int_equal(e->line, 1);
    assert_int_equal(e->column, 23);
    assert_msg(e, "unknown column");
    expect(f, "catalog/items.csv", "description", "no \"description\" column");

    put(f, "catalog/items.csv", "external_id,title,description,url\nA,\"T,d,https://s.example/\n");
    load_bad(f);
    assert_int_equal(f->n, 1);
    e = err_for(f, "catalog/items.csv", "");
    assert_int_equal(e->line, 2);
    assert_int_equal(e->column, 3);
    assert_msg(e, "never closed");

    put(f, "catalog/items.csv",
        "external_id,title,description,url\nA,\"T\"x,d,https://s.example/\n");
    load_bad(f);
    e = err_for(f, "catalog/items.csv", "");
    assert_int_equal(e->line, 2);
    assert_int_equal(e->column, 6);
    assert_msg(e, "after a closing quote");

    put(f, "catalog/items.csv",
        "external_id,title,description,url\nA,T \"x\",d,https://s.example/\n");
    load_bad(f);
    expect(f, "catalog/items.csv", "", "quote inside an unquoted field");

    put(f, "catalog/items.csv",
        "external_id,title,description,url,price,published\n"
        "A,T,d,https://s.example/,12.5,true\n"
        "B,,d,https://s.example/,cheap,yes\n"
        "C,T,d,not-a-url,,\n"
        "A,T,d,https://s.example/,-1,\n"
        "E,T,d\n");
    load_bad(f);
    e = err_for(f, "catalog/items.csv", "title");
    assert_int_equal(e->line, 3);
    assert_int_equal(e->column, 3);
    expect(f, "catalog/items.csv", "price", "not a number");
    e = err_for(f, "catalog/items.csv", "url");
    assert_int_equal(e->line, 4);
    e = err_for(f, "catalog/items.csv", "");
    assert_int_equal(e->line, 6);
    assert_msg(e, "3 fields but the header has 6");
    expect(f, "catalog/items.csv", "published", "true or false");
    e = expect(f, "catalog/items.csv", "price", "at least 0");
    assert_int_equal(e->line, 5);
    assert_int_equal(f->n, 6);
}

static void test_catalog_json(void **state)
{
    struct fixture *f = *state;
    put(f, "catalog/items.json",
        "[{\"external_id\": \"A\", \"title\": \"T\", \"description\": \"d\", \"url\": "
        "\"https://s.example/a\", \"price\": 3, \"custom_metadata\": {\"k\": \"v\"}},\n"
        " {\"external_id\": \"B\", \"title\": \"T\", \"description\": \"d\", \"sku\": 1, "
        "\"custom_metadata\": {\"k\": {\"deep\": 1}}, \"integration_type\": \"$shopify\"},\n"
        " 7]");
    load_bad(f);
    expect(f, "catalog/items.json", "/1/url", "\"url\" is required");
    expect(f, "catalog/items.json", "/1/sku", "create_catalog_item accepts");
    expect(f, "catalog/items.json", "/1/custom_metadata", "flat");
    expect(f, "catalog/items.json", "/1/integration_type", "$custom");
    expect(f, "catalog/items.json", "/2", "must be an object");
    assert_int_equal(f->n, 5);
    put(f, "catalog/items.csv", "external_id,title,description,url\n");
    assert_int_equal(load_bad(f), 1);
    expect(f, "catalog/items.json", "", "both items.csv and items.json");
}

/* ---- hashes ---- */

static void copy_example(struct fixture *f)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cp -R '%s/.' '%s/'", CADENCE_EXAMPLE_BUNDLE, f->dir);
    assert_int_equal(system(cmd), 0);
}

static void test_hash_stability(void **state)
{
    struct fixture *f = *state;
    copy_example(f);
    struct bundle *a = load_ok(f->dir), *b = load_ok(CADENCE_EXAMPLE_BUNDLE);
    assert_string_equal(a->hash, b->hash);
    for (size_t i = 0; i < a->n_assets; i++)
        assert_string_equal(a->assets[i].content_hash, b->assets[i].content_hash);
    char before[65], list_before[65];
    memcpy(before, a->hash, 65);
    memcpy(list_before, bundle_find(a, ASSET_LIST, "vip")->content_hash, 65);
    bundle_free(a);
    bundle_free(b);

    /* mtime only: same hashes. */
    char path[700];
    snprintf(path, sizeof path, "%s/lists/vip.json", f->dir);
    struct timeval tv[2] = {{1000000, 0}, {1000000, 0}};
    assert_int_equal(utimes(path, tv), 0);
    a = load_ok(f->dir);
    assert_string_equal(a->hash, before);
    bundle_free(a);

    /* Key order and whitespace: same hashes. */
    put(f, "lists/vip.json", "{\"opt_in_process\":\"single_opt_in\",\n\n\t\"name\" : \"vip\"}");
    a = load_ok(f->dir);
    assert_string_equal(a->hash, before);
    assert_string_equal(bundle_find(a, ASSET_LIST, "vip")->content_hash, list_before);
    bundle_free(a);

    /* Content: both change, and only that asset's content hash. */
    put(f, "lists/vip.json", "{\"name\": \"vip\", \"opt_in_process\": \"double_opt_in\"}");
    a = load_ok(f->dir);
    assert_string_not_equal(a->hash, before);
    assert_string_not_equal(bundle_find(a, ASSET_LIST, "vip")->content_hash, list_before);
    b = load_ok(CADENCE_EXAMPLE_BUNDLE);
    for (size_t i = 0; i < a->n_assets; i++) {
        if (a->assets[i].kind != ASSET_LIST || strcmp(a->assets[i].name, "vip") != 0)
            assert_string_equal(a->assets[i].content_hash, b->assets[i].content_hash);
    }
    bundle_free(a);
    bundle_free(b);

    /* One byte of an image changes its hash. */
    snprintf(path, sizeof path, "%s/images/logo.png", f->dir);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, 20, SEEK_SET);
    fputc(0x55, fp);
    fclose(fp);
    a = load_ok(f->dir);
    b = load_ok(CADENCE_EXAMPLE_BUNDLE);
    assert_string_not_equal(bundle_find(a, ASSET_IMAGE, "logo")->content_hash,
                            bundle_find(b, ASSET_IMAGE, "logo")->content_hash);
    bundle_free(a);
    bundle_free(b);

    /* A text part changes the template's hash; renaming an asset changes the bundle hash. */
    put(f, "templates/welcome.txt", "changed");
    snprintf(path, sizeof path, "%s/coupons/spring20.json", f->dir);
    char to[700];
    snprintf(to, sizeof to, "%s/coupons/spring-20.json", f->dir);
    assert_int_equal(rename(path, to), 0);
    a = load_ok(f->dir);
    b = load_ok(CADENCE_EXAMPLE_BUNDLE);
    assert_string_not_equal(bundle_find(a, ASSET_TEMPLATE, "welcome")->content_hash,
                            bundle_find(b, ASSET_TEMPLATE, "welcome")->content_hash);
    assert_string_equal(bundle_find(a, ASSET_COUPON, "spring-20")->content_hash,
                        bundle_find(b, ASSET_COUPON, "spring20")->content_hash);
    bundle_free(a);
    bundle_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_bundle),
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_error_format),
        cmocka_unit_test_setup_teardown(test_missing_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_bundle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_folder_and_extension, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_json_line_column, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values_klaviyo_rejects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ref_kind_not_allowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_images, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsafe_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlinks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_errors_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_templates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flow_structure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv_quoting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hash_stability, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
