/*
 * Contract driver: makes every kind of request Cadence's Klaviyo client sends, through the real
 * client (klaviyo_call, klaviyo_verify_key, klaviyo_pager), against Prism in proxy mode in front
 * of the emulator, then reads Prism's log and fails on any violation of Klaviyo's OpenAPI
 * document, request or response.
 *
 * Attribution: calls go out one at a time (max_in_flight 1), so Prism's log is a sequence of
 * "Request received" lines each followed by that request's violations. The method and path of
 * each such line are mapped to an operationId with kspec, the same table the client paces by.
 *
 * The allowlist (tests/contract/allowlist.tsv) names exact operationId + exact violation location
 * + the reason; only violations whose message is a oneOf mismatch can be allowed, and an entry
 * no violation used is itself a failure (so the list cannot rot).
 *
 * Coverage: the operations seen are compared with docs/contract-coverage.md (which --write-doc
 * regenerates) and with the operations the client's sources reference (--referenced: one
 * operationId or /api/ path per line, extracted by run.sh).
 *
 * Usage: contract_driver --prism-log FILE --allowlist FILE --referenced FILE --doc FILE
 *                        [--write-doc]
 * Environment: CADENCE_KLAVIYO_URL (Prism), CONTRACT_KEY (the emulator account's key).
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/secret.h"
#include "common/util.h"
#include "klaviyo/client.h"
#include "klaviyo/verify.h"
#include "kspec/kspec.h"
#include "store/store.h"

#define WRITE_TOKEN "contract-check"
#define MAX_OPS     400
#define MAX_ALLOW   32

struct driver {
    klaviyo_client *c;
    int failures;
    int calls; /* requests the client reported sending (attempts) */
};

static struct driver D;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void failf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("contract: FAIL: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    D.failures++;
}

/* One request through the client; returns the response document (caller decrefs) or NULL after
 * recording a failure. `expect` is the HTTP status the operation must answer with. */
static json_t *call(const char *method, const char *target, int expect, const char *body_fmt, ...)
    __attribute__((format(printf, 4, 5)));
static json_t *call(const char *method, const char *target, int expect, const char *body_fmt, ...)
{
    char *body = NULL;
    if (body_fmt) {
        va_list ap;
        va_start(ap, body_fmt);
        int n = vasprintf(&body, body_fmt, ap);
        va_end(ap);
        if (n < 0) {
            failf("out of memory");
            return NULL;
        }
    }
    struct klaviyo_request req = {
        .method = method,
        .target = target,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .write_authorization = strcmp(method, "GET") == 0 ? NULL : WRITE_TOKEN,
    };
    struct klaviyo_result res;
    klaviyo_call(D.c, &req, &res);
    D.calls += res.attempts;
    json_t *doc = NULL;
    if (res.outcome != KLAVIYO_OUT_OK || res.http_status != expect)
        failf("%s %s: expected %d, got %s (%d): %s", method, target, expect,
              klaviyo_outcome_name(res.outcome), res.http_status, res.message);
    else
        doc = res.doc ? json_incref(res.doc) : json_object();
    klaviyo_result_clear(&res);
    free(body);
    return doc;
}

/* data.id of a response (copied into out), "" when absent. */
static const char *data_id(json_t *doc, char *out, size_t outsz)
{
    const char *id = json_string_value(json_object_get(json_object_get(doc, "data"), "id"));
    snprintf(out, outsz, "%s", id ? id : "");
    if (doc && !id)
        failf("a response had no data.id");
    return out;
}

static void call_drop(const char *method, const char *target, int expect, const char *body)
{
    json_decref(call(method, target, expect, body ? "%s" : NULL, body));
}

/* ---- the scenario ---- */

static void verify_key(store *st, const cad_secret *key)
{
    struct klaviyo_config cfg;
    if (klaviyo_config_from_env(&cfg) != CAD_OK) {
        failf("configuration: %s", cad_errmsg());
        return;
    }
    cfg.max_in_flight = 1; /* one at a time, so Prism's log attributes violations */
    struct klaviyo_verify_result vr;
    klaviyo_verify_key(st, &cfg, "contract", "contract", key, &vr);
    D.calls += 1 + KLAVIYO_SCOPE_FAMILIES;
    if (vr.status != KLAVIYO_VERIFY_OK)
        failf("key verification: %s: %s", klaviyo_verify_status_name(vr.status), vr.message);
}

static void path_of(char *out, size_t outsz, const char *fmt, const char *id)
{
    /* Ids go into a path segment: compound catalog ids hold '$' and ':' which are fine in a
     * segment, but anything else outside unreserved characters is percent-encoded. */
    char enc[512];
    size_t j = 0;
    for (const unsigned char *p = (const unsigned char *)id; *p && j + 4 < sizeof enc; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~$:", *p))
            enc[j++] = (char)*p;
        else
            j += (size_t)snprintf(enc + j, sizeof enc - j, "%%%02X", *p);
    }
    enc[j] = '\0';
    snprintf(out, outsz, fmt, enc);
}

static void templates_and_paging(void)
{
    char id[128], tgt[600], first[128] = "";
    for (int i = 0; i < 11; i++) {
        json_t *d =
            call("POST", "/api/templates", 201,
                 "{\"data\":{\"type\":\"template\",\"attributes\":{\"name\":\"Contract "
                 "T%d\",\"editor_type\":\"CODE\",\"html\":\"<p>%d</p>\",\"text\":\"t%d\"}}}",
                 i, i, i);
        data_id(d, id, sizeof id);
        if (i == 0)
            snprintf(first, sizeof first, "%s", id);
        json_decref(d);
    }
    path_of(tgt, sizeof tgt, "/api/templates/%s", first);
    call_drop("GET", tgt, 200, NULL);
    json_decref(call("PATCH", tgt, 200,
                     "{\"data\":{\"type\":\"template\",\"id\":\"%s\",\"attributes\":{\"name\":"
                     "\"Contract T0 renamed\",\"html\":\"<p>renamed</p>\"}}}",
                     first));
    json_t *cl = call("POST", "/api/template-clone", 201,
                      "{\"data\":{\"type\":\"template\",\"id\":\"%s\",\"attributes\":{\"name\":"
                      "\"Contract T0 clone\"}}}",
                      first);
    char clone[128];
    data_id(cl, clone, sizeof clone);
    json_decref(cl);

    /* Every page of templates, 10 at a time, following links.next. */
    char page[256];
    const char *kv[] = {"page[size]", "10", "sort", "created", NULL};
    klaviyo_target(page, sizeof page, "/api/templates", kv);
    struct klaviyo_pager pg;
    int seen = 0, rc;
    klaviyo_pager_init(&pg, D.c, page);
    for (;;) {
        struct klaviyo_result res;
        rc = klaviyo_pager_next(&pg, &res);
        D.calls += res.attempts;
        if (rc == 1)
            seen += (int)json_array_size(json_object_get(res.doc, "data"));
        klaviyo_result_clear(&res);
        if (rc != 1)
            break;
    }
    if (rc != 0)
        failf("paging templates: %s", cad_errmsg());
    if (pg.pages < 2 || seen < 12)
        failf("paging templates: %d pages, %d templates (expected 2+ pages, 12+)", pg.pages, seen);
    klaviyo_pager_free(&pg);

    /* A filtered read. */
    char filter[256], tq[512];
    klaviyo_filter_equals(filter, sizeof filter, "name", "Contract T0 renamed");
    const char *fkv[] = {"filter", filter, NULL};
    klaviyo_target(tq, sizeof tq, "/api/templates", fkv);
    json_t *f = call("GET", tq, 200, NULL);
    if (f && json_array_size(json_object_get(f, "data")) != 1)
        failf("filter by name found %zu templates", json_array_size(json_object_get(f, "data")));
    json_decref(f);

    path_of(tgt, sizeof tgt, "/api/templates/%s", clone);
    call_drop("DELETE", tgt, 204, NULL);
}

static void lists_segments_tags(char *list_id, size_t list_idsz)
{
    char tgt[600], filter[256], q[512];
    json_t *d = call("POST", "/api/lists", 201,
                     "{\"data\":{\"type\":\"list\",\"attributes\":{\"name\":\"Contract list\"}}}");
    data_id(d, list_id, list_idsz);
    json_decref(d);
    path_of(tgt, sizeof tgt, "/api/lists/%s", list_id);
    call_drop("GET", tgt, 200, NULL);
    json_decref(call("PATCH", tgt, 200,
                     "{\"data\":{\"type\":\"list\",\"id\":\"%s\",\"attributes\":{\"name\":"
                     "\"Contract list\"}}}",
                     list_id));
    /* Lists and segments take name filters with a list value only (x-klaviyo-filters). */
    const char *list_names[] = {"Contract list"};
    klaviyo_filter_any(filter, sizeof filter, "name", list_names, 1);
    const char *kv[] = {"filter", filter, "page[size]", "10", NULL};
    klaviyo_target(q, sizeof q, "/api/lists", kv);
    call_drop("GET", q, 200, NULL);

    char seg[128];
    d = call("POST", "/api/segments", 201,
             "{\"data\":{\"type\":\"segment\",\"attributes\":{\"name\":\"Contract segment\","
             "\"definition\":{\"condition_groups\":[{\"conditions\":[{\"type\":\"profile-group-"
             "membership\",\"is_member\":true,\"group_ids\":[\"%s\"]}]}]}}}}",
             list_id);
    data_id(d, seg, sizeof seg);
    json_decref(d);
    path_of(tgt, sizeof tgt, "/api/segments/%s", seg);
    call_drop("GET", tgt, 200, NULL);
    json_decref(call("PATCH", tgt, 200,
                     "{\"data\":{\"type\":\"segment\",\"id\":\"%s\",\"attributes\":{\"name\":"
                     "\"Contract segment 2\"}}}",
                     seg));

    char group[128], tag[128];
    d = call("POST", "/api/tag-groups", 201,
             "{\"data\":{\"type\":\"tag-group\",\"attributes\":{\"name\":\"Contract\","
             "\"exclusive\":false}}}");
    data_id(d, group, sizeof group);
    json_decref(d);
    call_drop("GET", "/api/tag-groups", 200, NULL);
    d = call("POST", "/api/tags", 201,
             "{\"data\":{\"type\":\"tag\",\"attributes\":{\"name\":\"contract\"},"
             "\"relationships\":{\"tag-group\":{\"data\":{\"type\":\"tag-group\",\"id\":\"%s\"}}"
             "}}}",
             group);
    data_id(d, tag, sizeof tag);
    json_decref(d);
    path_of(tgt, sizeof tgt, "/api/tags/%s/relationships/lists", tag);
    json_decref(call("POST", tgt, 204, "{\"data\":[{\"type\":\"list\",\"id\":\"%s\"}]}", list_id));
    call_drop("GET", tgt, 200, NULL);
    path_of(tgt, sizeof tgt, "/api/tags/%s/relationships/segments", tag);
    json_decref(call("POST", tgt, 204, "{\"data\":[{\"type\":\"segment\",\"id\":\"%s\"}]}", seg));
    json_decref(call("DELETE", tgt, 204, "{\"data\":[{\"type\":\"segment\",\"id\":\"%s\"}]}", seg));
    path_of(tgt, sizeof tgt, "/api/tags/%s", tag);
    json_decref(call("PATCH", tgt, 204,
                     "{\"data\":{\"type\":\"tag\",\"id\":\"%s\",\"attributes\":{\"name\":"
                     "\"contract2\"}}}",
                     tag));
    path_of(tgt, sizeof tgt, "/api/tags/%s/relationships/lists", tag);
    json_decref(
        call("DELETE", tgt, 204, "{\"data\":[{\"type\":\"list\",\"id\":\"%s\"}]}", list_id));
    path_of(tgt, sizeof tgt, "/api/tags/%s", tag);
    call_drop("DELETE", tgt, 204, NULL);
    path_of(tgt, sizeof tgt, "/api/tag-groups/%s", group);
    json_decref(call("PATCH", tgt, 204,
                     "{\"data\":{\"type\":\"tag-group\",\"id\":\"%s\",\"attributes\":{\"name\":"
                     "\"Contract 2\"}}}",
                     group));
    call_drop("DELETE", tgt, 204, NULL);
    path_of(tgt, sizeof tgt, "/api/segments/%s", seg);
    call_drop("DELETE", tgt, 204, NULL);
}

static void forms(void)
{
    char id[128], tgt[600];
    json_t *d =
        call("POST", "/api/forms", 201,
             "{\"data\":{\"type\":\"form\",\"attributes\":{\"name\":\"Contract form\",\"status\":"
             "\"draft\",\"ab_test\":false,\"definition\":{\"versions\":[{\"form_type\":\"popup\","
             "\"name\":\"v1\",\"steps\":[{\"name\":\"s1\",\"columns\":[{\"blocks\":[]}]}]}]}}}}");
    data_id(d, id, sizeof id);
    json_decref(d);
    path_of(tgt, sizeof tgt, "/api/forms/%s", id);
    call_drop("GET", tgt, 200, NULL);
    call_drop("DELETE", tgt, 204, NULL);
}

static void campaigns(const char *list_id)
{
    char camp[128], msg[128], tpl[128], tgt[600], filter[256], q[512];
    json_t *d = call("POST", "/api/templates", 201,
                     "{\"data\":{\"type\":\"template\",\"attributes\":{\"name\":\"Contract "
                     "campaign template\",\"editor_type\":\"CODE\",\"html\":\"<p>hi</p>\"}}}");
    data_id(d, tpl, sizeof tpl);
    json_decref(d);
    d = call("POST", "/api/campaigns", 201,
             "{\"data\":{\"type\":\"campaign\",\"attributes\":{\"name\":\"Contract campaign\","
             "\"audiences\":{\"included\":[\"%s\"]},\"send_strategy\":{\"method\":\"static\","
             "\"datetime\":\"2030-01-01T10:00:00+00:00\"},\"campaign-messages\":{\"data\":[{"
             "\"type\":\"campaign-message\",\"attributes\":{\"definition\":{\"channel\":"
             "\"email\",\"label\":\"Contract\",\"content\":{\"subject\":\"Hello\",\"from_email\":"
             "\"store@example.com\",\"from_label\":\"Store\"}}}}]}}}}",
             list_id);
    data_id(d, camp, sizeof camp);
    json_t *rel = json_object_get(
        json_object_get(json_object_get(json_object_get(d, "data"), "relationships"),
                        "campaign-messages"),
        "data");
    const char *m = json_string_value(json_object_get(json_array_get(rel, 0), "id"));
    snprintf(msg, sizeof msg, "%s", m ? m : "");
    json_decref(d);
    if (!msg[0])
        failf("create_campaign: no campaign-messages relationship in the response");
    path_of(tgt, sizeof tgt, "/api/campaigns/%s", camp);
    call_drop("GET", tgt, 200, NULL);
    json_decref(call("PATCH", tgt, 200,
                     "{\"data\":{\"type\":\"campaign\",\"id\":\"%s\",\"attributes\":{\"name\":"
                     "\"Contract campaign 2\"}}}",
                     camp));
    klaviyo_filter_equals(filter, sizeof filter, "messages.channel", "email");
    const char *kv[] = {"filter", filter, NULL};
    klaviyo_target(q, sizeof q, "/api/campaigns", kv);
    call_drop("GET", q, 200, NULL);
    path_of(tgt, sizeof tgt, "/api/campaigns/%s/campaign-messages", camp);
    call_drop("GET", tgt, 200, NULL);
    path_of(tgt, sizeof tgt, "/api/campaign-messages/%s", msg);
    call_drop("GET", tgt, 200, NULL);
    json_decref(call("PATCH", tgt, 200,
                     "{\"data\":{\"type\":\"campaign-message\",\"id\":\"%s\",\"attributes\":{"
                     "\"definition\":{\"channel\":\"email\",\"label\":\"Contract 2\",\"content\":{"
                     "\"subject\":\"Hello again\"}}}}}",
                     msg));
    json_decref(call("POST", "/api/campaign-message-assign-template", 200,
                     "{\"data\":{\"type\":\"campaign-message\",\"id\":\"%s\",\"relationships\":{"
                     "\"template\":{\"data\":{\"type\":\"template\",\"id\":\"%s\"}}}}}",
                     msg, tpl));
    path_of(tgt, sizeof tgt, "/api/campaign-messages/%s/template", msg);
    call_drop("GET", tgt, 200, NULL);
    path_of(tgt, sizeof tgt, "/api/campaigns/%s", camp);
    call_drop("DELETE", tgt, 204, NULL);
    path_of(tgt, sizeof tgt, "/api/templates/%s", tpl);
    call_drop("DELETE", tgt, 204, NULL);
}

static void flows(const char *list_id)
{
    char id[128], tgt[600];
    json_t *d = call(
        "POST", "/api/flows", 201,
        "{\"data\":{\"type\":\"flow\",\"attributes\":{\"name\":\"Contract flow\",\"definition\":{"
        "\"triggers\":[{\"type\":\"list\",\"id\":\"%s\"}],\"entry_action_id\":\"a1\","
        "\"actions\":[{\"temporary_id\":\"a1\",\"type\":\"time-delay\",\"links\":{\"next\":"
        "null},\"data\":{\"unit\":\"days\",\"value\":1}}]}}}}",
        list_id);
    data_id(d, id, sizeof id);
    json_decref(d);
    path_of(tgt, sizeof tgt, "/api/flows/%s", id);
    call_drop("GET", tgt, 200, NULL);
    json_decref(call(
        "PATCH", tgt, 200,
        "{\"data\":{\"type\":\"flow\",\"id\":\"%s\",\"attributes\":{\"status\":\"manual\"}}}", id));
    call_drop("DELETE", tgt, 204, NULL);
}

static void coupons(void)
{
    char tgt[600], filter[256], q[512], code[200];
    call_drop("POST", "/api/coupons", 201,
              "{\"data\":{\"type\":\"coupon\",\"attributes\":{\"external_id\":\"CONTRACT10\","
              "\"description\":\"ten off\"}}}");
    call_drop("GET", "/api/coupons/CONTRACT10", 200, NULL);
    call_drop("PATCH", "/api/coupons/CONTRACT10", 200,
              "{\"data\":{\"type\":\"coupon\",\"id\":\"CONTRACT10\",\"attributes\":{"
              "\"description\":\"ten percent off\"}}}");
    json_t *d = call("POST", "/api/coupon-codes", 200,
                     "{\"data\":{\"type\":\"coupon-code\",\"attributes\":{\"unique_code\":"
                     "\"CONTRACTABC\",\"expires_at\":\"2030-01-01T00:00:00+00:00\"},"
                     "\"relationships\":{\"coupon\":{\"data\":{\"type\":\"coupon\",\"id\":"
                     "\"CONTRACT10\"}}}}}");
    data_id(d, code, sizeof code);
    json_decref(d);
    klaviyo_filter_equals(filter, sizeof filter, "coupon.id", "CONTRACT10");
    const char *kv[] = {"filter", filter, NULL};
    klaviyo_target(q, sizeof q, "/api/coupon-codes", kv);
    call_drop("GET", q, 200, NULL);
    path_of(tgt, sizeof tgt, "/api/coupon-codes/%s", code);
    call_drop("GET", tgt, 200, NULL);
    call_drop("DELETE", tgt, 204, NULL);
    call_drop("DELETE", "/api/coupons/CONTRACT10", 204, NULL);
}

static void images(void)
{
    char id[128], tgt[600];
    json_t *d = call("POST", "/api/images", 201,
                     "{\"data\":{\"type\":\"image\",\"attributes\":{\"import_from_url\":"
                     "\"https://example.com/contract/logo.png\",\"name\":\"contract logo\","
                     "\"hidden\":false}}}");
    data_id(d, id, sizeof id);
    json_decref(d);
    path_of(tgt, sizeof tgt, "/api/images/%s", id);
    call_drop("GET", tgt, 200, NULL);
    json_decref(call("PATCH", tgt, 200,
                     "{\"data\":{\"type\":\"image\",\"id\":\"%s\",\"attributes\":{\"name\":"
                     "\"contract logo 2\"}}}",
                     id));
}

/* Polls a job until it is complete (the emulator's jobs advance on its clock). */
static void job_wait(const char *path_fmt, const char *id)
{
    char tgt[600];
    path_of(tgt, sizeof tgt, path_fmt, id);
    for (int i = 0; i < 100; i++) {
        json_t *d = call("GET", tgt, 200, NULL);
        const char *st = json_string_value(
            json_object_get(json_object_get(json_object_get(d, "data"), "attributes"), "status"));
        bool done = !d || (st && (strcmp(st, "complete") == 0 || strcmp(st, "cancelled") == 0));
        json_decref(d);
        if (done)
            return;
        sleep_ms(200);
    }
    failf("job %s did not complete", tgt);
}

static void catalog(void)
{
    static const char item[] = "$custom:::$default:::CONTRACT-1";
    char tgt[600], job[128], cat[200], var[200];
    call_drop("POST", "/api/catalog-items", 201,
              "{\"data\":{\"type\":\"catalog-item\",\"attributes\":{\"external_id\":\"CONTRACT-1\","
              "\"title\":\"Tent\",\"description\":\"A tent\",\"url\":\"https://example.com/tent\","
              "\"price\":99.5}}}");
    path_of(tgt, sizeof tgt, "/api/catalog-items/%s", item);
    call_drop("GET", tgt, 200, NULL);
    json_decref(call("PATCH", tgt, 200,
                     "{\"data\":{\"type\":\"catalog-item\",\"id\":\"%s\",\"attributes\":{"
                     "\"title\":\"Tent 2\",\"price\":89.5}}}",
                     item));
    json_t *d = call("POST", "/api/catalog-variants", 201,
                     "{\"data\":{\"type\":\"catalog-variant\",\"attributes\":{\"external_id\":"
                     "\"CONTRACT-1-L\",\"title\":\"Tent L\",\"description\":\"L\",\"sku\":"
                     "\"CONTRACT-1-L\",\"inventory_quantity\":3,\"price\":99.5,\"url\":"
                     "\"https://example.com/tent\"},\"relationships\":{\"item\":{\"data\":{"
                     "\"type\":\"catalog-item\",\"id\":\"%s\"}}}}}",
                     item);
    data_id(d, var, sizeof var);
    json_decref(d);
    path_of(tgt, sizeof tgt, "/api/catalog-variants/%s", var);
    call_drop("GET", tgt, 200, NULL);
    json_decref(call("PATCH", tgt, 200,
                     "{\"data\":{\"type\":\"catalog-variant\",\"id\":\"%s\",\"attributes\":{"
                     "\"inventory_quantity\":5}}}",
                     var));
    call_drop("DELETE", tgt, 204, NULL);
    d = call("POST", "/api/catalog-categories", 201,
             "{\"data\":{\"type\":\"catalog-category\",\"attributes\":{\"external_id\":"
             "\"CONTRACT-TENTS\",\"name\":\"Tents\"},\"relationships\":{\"items\":{\"data\":[{"
             "\"type\":\"catalog-item\",\"id\":\"%s\"}]}}}}",
             item);
    data_id(d, cat, sizeof cat);
    json_decref(d);
    path_of(tgt, sizeof tgt, "/api/catalog-categories/%s", cat);
    call_drop("GET", tgt, 200, NULL);
    json_decref(call("PATCH", tgt, 200,
                     "{\"data\":{\"type\":\"catalog-category\",\"id\":\"%s\",\"attributes\":{"
                     "\"name\":\"Tents and tarps\"}}}",
                     cat));
    call_drop("DELETE", tgt, 204, NULL);
    path_of(tgt, sizeof tgt, "/api/catalog-items/%s", item);
    call_drop("DELETE", tgt, 204, NULL);

    char filter[256], q[512];
    const char *ids[] = {"$custom:::$default:::CONTRACT-2", "$custom:::$default:::CONTRACT-3"};
    klaviyo_filter_any(filter, sizeof filter, "ids", ids, 2);
    const char *kv[] = {"filter", filter, NULL};

    d = call("POST", "/api/catalog-item-bulk-create-jobs", 202,
             "{\"data\":{\"type\":\"catalog-item-bulk-create-job\",\"attributes\":{\"items\":{"
             "\"data\":[{\"type\":\"catalog-item\",\"attributes\":{\"external_id\":\"CONTRACT-2\","
             "\"title\":\"Stove\",\"description\":\"A stove\",\"url\":\"https://example.com/"
             "stove\"}},{\"type\":\"catalog-item\",\"attributes\":{\"external_id\":\"CONTRACT-3\","
             "\"title\":\"Lamp\",\"description\":\"A lamp\",\"url\":\"https://example.com/"
             "lamp\"}}]}}}}");
    data_id(d, job, sizeof job);
    json_decref(d);
    job_wait("/api/catalog-item-bulk-create-jobs/%s", job);
    call_drop("GET", "/api/catalog-item-bulk-create-jobs", 200, NULL);
    klaviyo_target(q, sizeof q, "/api/catalog-items", kv);
    json_t *items = call("GET", q, 200, NULL);
    if (items && json_array_size(json_object_get(items, "data")) != 2)
        failf("bulk create made %zu of 2 items", json_array_size(json_object_get(items, "data")));
    json_decref(items);
    d = call("POST", "/api/catalog-item-bulk-update-jobs", 202,
             "{\"data\":{\"type\":\"catalog-item-bulk-update-job\",\"attributes\":{\"items\":{"
             "\"data\":[{\"type\":\"catalog-item\",\"id\":\"%s\",\"attributes\":{\"title\":"
             "\"Stove 2\"}}]}}}}",
             ids[0]);
    data_id(d, job, sizeof job);
    json_decref(d);
    job_wait("/api/catalog-item-bulk-update-jobs/%s", job);
    d = call("POST", "/api/catalog-item-bulk-delete-jobs", 202,
             "{\"data\":{\"type\":\"catalog-item-bulk-delete-job\",\"attributes\":{\"items\":{"
             "\"data\":[{\"type\":\"catalog-item\",\"id\":\"%s\"},{\"type\":\"catalog-item\","
             "\"id\":\"%s\"}]}}}}",
             ids[0], ids[1]);
    data_id(d, job, sizeof job);
    json_decref(d);
    job_wait("/api/catalog-item-bulk-delete-jobs/%s", job);
    call_drop("GET", "/api/catalog-categories", 200, NULL);
    call_drop("GET", "/api/catalog-variants", 200, NULL);
}

static void profiles_import(const char *list_id)
{
    char job[128];
    json_t *d = call(
        "POST", "/api/profile-bulk-import-jobs", 202,
        "{\"data\":{\"type\":\"profile-bulk-import-job\",\"attributes\":{\"profiles\":{\"data\":["
        "{\"type\":\"profile\",\"attributes\":{\"email\":\"ada@example.com\",\"first_name\":"
        "\"Ada\"}},{\"type\":\"profile\",\"attributes\":{\"email\":\"grace@example.com\"}}]}},"
        "\"relationships\":{\"lists\":{\"data\":[{\"type\":\"list\",\"id\":\"%s\"}]}}}}",
        list_id);
    data_id(d, job, sizeof job);
    json_decref(d);
    job_wait("/api/profile-bulk-import-jobs/%s", job);
    char tgt[600];
    path_of(tgt, sizeof tgt, "/api/profile-bulk-import-jobs/%s/import-errors", job);
    call_drop("GET", tgt, 200, NULL);
}

static void webhooks(void)
{
    char id[128], tgt[600];
    call_drop("GET", "/api/webhook-topics", 200, NULL);
    json_t *d = call("POST", "/api/webhooks", 201,
                     "{\"data\":{\"type\":\"webhook\",\"attributes\":{\"name\":\"contract hook\","
                     "\"endpoint_url\":\"https://example.com/hook\",\"secret_key\":\"s3cr3t\"},"
                     "\"relationships\":{\"webhook-topics\":{\"data\":[{\"type\":\"webhook-topic\","
                     "\"id\":\"event:klaviyo.sent_sms\"}]}}}}");
    data_id(d, id, sizeof id);
    json_decref(d);
    path_of(tgt, sizeof tgt, "/api/webhooks/%s", id);
    call_drop("GET", tgt, 200, NULL);
    json_decref(call("PATCH", tgt, 200,
                     "{\"data\":{\"type\":\"webhook\",\"id\":\"%s\",\"attributes\":{\"name\":"
                     "\"contract hook 2\",\"enabled\":false}}}",
                     id));
    call_drop("DELETE", tgt, 204, NULL);
}

static void delete_list(const char *list_id)
{
    char tgt[600];
    path_of(tgt, sizeof tgt, "/api/lists/%s", list_id);
    call_drop("DELETE", tgt, 204, NULL);
}

/* ---- Prism's log ---- */

struct op_seen {
    const struct kspec_op *op;
    int requests;
    int violations;
};

struct allow {
    char op[96], location[256];
    int used;
};

static struct op_seen seen[MAX_OPS];
static size_t nseen;
static struct allow allows[MAX_ALLOW];
static size_t nallows;
static const char allow_reason[] = "identical oneOf alternatives in Klaviyo's spec";

static struct op_seen *seen_for(const struct kspec_op *op)
{
    for (size_t i = 0; i < nseen; i++)
        if (seen[i].op == op)
            return &seen[i];
    if (nseen == MAX_OPS)
        return NULL;
    seen[nseen].op = op;
    return &seen[nseen++];
}

static bool seen_has(const struct kspec_op *op)
{
    for (size_t i = 0; i < nseen; i++)
        if (seen[i].op == op)
            return true;
    return false;
}

static int load_allowlist(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        failf("cannot read the allowlist %s", path);
        return -1;
    }
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        char *op = strtok(line, "\t"), *loc = strtok(NULL, "\t"), *why = strtok(NULL, "\t");
        if (!op || !loc || !why || strcmp(why, allow_reason) != 0 || !kspec_by_id(op) ||
            nallows == MAX_ALLOW) {
            failf("allowlist entry \"%s\": expected operationId<TAB>location<TAB>%s", line,
                  allow_reason);
            continue;
        }
        snprintf(allows[nallows].op, sizeof allows[nallows].op, "%s", op);
        snprintf(allows[nallows].location, sizeof allows[nallows].location, "%s", loc);
        nallows++;
    }
    fclose(f);
    return 0;
}

static bool allowed(const struct kspec_op *op, const char *location, const char *message)
{
    if (!strstr(message, "oneOf"))
        return false;
    for (size_t i = 0; i < nallows; i++)
        if (strcmp(allows[i].op, op->operation_id) == 0 &&
            strcmp(allows[i].location, location) == 0) {
            allows[i].used++;
            return true;
        }
    return false;
}

/* "[7:46:05 PM] › [HTTP SERVER] post /api/lists ℹ  info      Request received" */
static const struct kspec_op *request_line(const char *line)
{
    const char *p = strstr(line, "[HTTP SERVER] ");
    if (!p || !strstr(line, "Request received"))
        return NULL;
    p += strlen("[HTTP SERVER] ");
    char method[16], path[1024];
    if (sscanf(p, "%15s %1023s", method, path) != 2)
        return NULL;
    for (char *m = method; *m; m++)
        if (*m >= 'a' && *m <= 'z')
            *m = (char)(*m - 'a' + 'A');
    const struct kspec_op *op = kspec_find(method, path);
    if (!op)
        failf("Prism saw %s %s, which is no operation of the spec", method, path);
    return op;
}

static int count_requests(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, "[HTTP SERVER] ") && strstr(line, "Request received");
    fclose(f);
    return n;
}

static int parse_prism_log(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        failf("cannot read Prism's log %s", path);
        return 0;
    }
    char line[8192];
    const struct kspec_op *cur = NULL;
    int requests = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        const struct kspec_op *op = request_line(line);
        if (op) {
            cur = op;
            requests++;
            struct op_seen *s = seen_for(op);
            if (s)
                s->requests++;
            continue;
        }
        if (strstr(line, "[HTTP SERVER]") && strstr(line, "Request terminated with error")) {
            failf("Prism could not complete a request: %s", line);
            continue;
        }
        const char *v = strstr(line, "Violation: ");
        if (!v)
            continue;
        v += strlen("Violation: ");
        char location[256];
        size_t n = strcspn(v, " ");
        snprintf(location, sizeof location, "%.*s", (int)n, v);
        const char *message = v[n] ? v + n + 1 : "";
        if (!cur) {
            failf("a violation before any request: %s", v);
            continue;
        }
        if (allowed(cur, location, message)) {
            printf("contract: allowed (%s): %s %s %s\n", allow_reason, cur->operation_id, location,
                   message);
            continue;
        }
        struct op_seen *s = seen_for(cur);
        if (s)
            s->violations++;
        failf("violation in %s (%s %s): %s %s", cur->operation_id, cur->method, cur->path, location,
              message);
    }
    fclose(f);
    return requests;
}

/* ---- coverage ---- */

static int cmp_op(const void *a, const void *b)
{
    const struct op_seen *x = a, *y = b;
    return strcmp(x->op->operation_id, y->op->operation_id);
}

static void write_doc(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        failf("cannot write %s", path);
        return;
    }
    fprintf(f,
            "# Contract coverage\n\n"
            "Operations of Klaviyo's API (revision %s) that the contract check "
            "(`tests/contract/`, CTest label `contract`) sends through Cadence's client, through "
            "Prism validating requests and responses against `third_party/klaviyo/"
            "openapi-stable.json`, to the emulator. Zero violations is the test.\n\n"
            "This list is written by `tests/contract/run.sh --write-doc` and checked by every "
            "run: the run fails when the operations it exercised differ from this list, or when "
            "the client's sources (`src/klaviyo/`) reference an operation (an operationId, or a "
            "request path) that is not on it.\n\n"
            "Allowed violations are listed, with their reason, in "
            "`tests/contract/allowlist.tsv`.\n\n"
            "## Operations covered (%zu)\n\n",
            KLAVIYO_REVISION, nseen);
    for (size_t i = 0; i < nseen; i++)
        fprintf(f, "- `%s` (%s %s)\n", seen[i].op->operation_id, seen[i].op->method,
                seen[i].op->path);
    fclose(f);
    printf("contract: wrote %s (%zu operations)\n", path, nseen);
}

static void check_doc(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        failf("cannot read %s (run tests/contract/run.sh --write-doc)", path);
        return;
    }
    char line[1024];
    size_t listed = 0;
    while (fgets(line, sizeof line, f)) {
        char id[128];
        if (sscanf(line, "- `%127[a-z0-9_]`", id) != 1)
            continue;
        listed++;
        const struct kspec_op *op = kspec_by_id(id);
        if (!op || !seen_has(op))
            failf("%s lists %s, which this run did not exercise", path, id);
    }
    fclose(f);
    if (listed != nseen)
        failf("%s lists %zu operations, this run exercised %zu (run.sh --write-doc updates it)",
              path, listed, nseen);
}

/* Every operation the client's sources name must have been exercised. A request path counts as
 * covered when one of the operations with exactly that path template was. */
static void check_referenced(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        failf("cannot read %s", path);
        return;
    }
    char line[1024];
    int checked = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        const struct kspec_op *op = kspec_by_id(line);
        if (op) {
            checked++;
            if (!seen_has(op))
                failf("the client references %s, which the contract check does not cover", line);
            continue;
        }
        if (strncmp(line, "/api/", 5) != 0)
            continue;
        bool any = false, hit = false;
        for (size_t i = 0; i < kspec_ops_count; i++)
            if (strcmp(kspec_ops[i].path, line) == 0) {
                any = true;
                hit = hit || seen_has(&kspec_ops[i]);
            }
        if (!any) {
            failf("the client references %s, which is no path of the spec", line);
            continue;
        }
        checked++;
        if (!hit)
            failf("the client references %s, but no operation on it is covered", line);
    }
    fclose(f);
    printf("contract: %d operations and paths referenced by the client checked for coverage\n",
           checked);
}

static const char *arg(int argc, char **argv, const char *name)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

static bool flag(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return true;
    return false;
}

int main(int argc, char **argv)
{
    const char *prism_log = arg(argc, argv, "--prism-log"), *allow = arg(argc, argv, "--allowlist");
    const char *refs = arg(argc, argv, "--referenced"), *doc = arg(argc, argv, "--doc");
    const char *keytext = getenv("CONTRACT_KEY");
    if (!prism_log || !allow || !refs || !doc || !keytext) {
        fprintf(stderr, "usage: CONTRACT_KEY=pk_... CADENCE_KLAVIYO_URL=http://127.0.0.1:PRISM "
                        "contract_driver --prism-log FILE --allowlist FILE --referenced FILE "
                        "--doc FILE [--write-doc]\n");
        return 2;
    }
    log_set_level(LOG_WARN);
    char dir[] = "/tmp/cadence-contract-XXXXXX", db[64];
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(db, sizeof db, "%s/audit.db", dir);
    store *st = NULL;
    cad_secret *key = NULL;
    struct klaviyo_config cfg;
    if (store_open(&st, db) || secret_from(&key, keytext, strlen(keytext)) ||
        klaviyo_config_from_env(&cfg)) {
        fprintf(stderr, "contract: setup failed: %s\n", cad_errmsg());
        return 1;
    }
    cfg.max_in_flight = 1;
    if (klaviyo_client_new(&D.c, st, "contract", "contract", key, &cfg)) {
        fprintf(stderr, "contract: client: %s\n", cad_errmsg());
        return 1;
    }
    if (load_allowlist(allow))
        return 1;

    char list_id[128] = "";
    verify_key(st, key);
    templates_and_paging();
    lists_segments_tags(list_id, sizeof list_id);
    forms();
    campaigns(list_id);
    flows(list_id);
    coupons();
    images();
    catalog();
    profiles_import(list_id);
    webhooks();
    delete_list(list_id);
    klaviyo_client_free(D.c);

    /* Prism writes a request's violations before it answers; give its logger a moment to
     * flush the last lines, then read until every request the client sent is there. */
    int requests = 0;
    for (int i = 0; i < 50 && count_requests(prism_log) < D.calls; i++)
        sleep_ms(100);
    sleep_ms(300); /* the last request's violation lines follow its "Request received" */
    requests = parse_prism_log(prism_log);
    if (requests != D.calls)
        failf("the client sent %d requests but Prism logged %d", D.calls, requests);
    qsort(seen, nseen, sizeof seen[0], cmp_op);
    for (size_t i = 0; i < nallows; i++)
        if (!allows[i].used)
            failf("allowlist entry %s %s matched no violation: remove it", allows[i].op,
                  allows[i].location);
    if (flag(argc, argv, "--write-doc"))
        write_doc(doc);
    check_doc(doc);
    check_referenced(refs);
    for (size_t i = 0; i < nseen; i++)
        printf("contract: %-45s requests=%-3d violations=%d\n", seen[i].op->operation_id,
               seen[i].requests, seen[i].violations);
    printf("contract: %zu operations, %d requests, %d failure%s\n", nseen, requests, D.failures,
           D.failures == 1 ? "" : "s");
    secret_free(key);
    store_close(st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "contract: could not remove %s\n", dir);
    return D.failures ? 1 : 0;
}
