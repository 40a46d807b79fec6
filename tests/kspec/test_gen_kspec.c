/* gen-kspec: a spec it does not understand must stop the build with a message that names the
 * problem; a spec it does understand becomes a sorted table. Runs the real generator binary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "kspec/kspec.h"

static char dir[] = "/tmp/test-gen-kspec-XXXXXX";
static char spec_path[128], out_path[128];

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(spec_path, sizeof spec_path, "%s/spec.json", dir);
    snprintf(out_path, sizeof out_path, "%s/out.c", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(spec_path);
    unlink(out_path);
    return rmdir(dir);
}

/* Writes a spec whose "paths" member is `paths` (and info.version `version`), runs the generator
 * and returns its exit status; its stderr goes to `msg`. */
static int run_gen(const char *version, const char *paths, char *msg, size_t msg_size)
{
    FILE *f = fopen(spec_path, "w");
    assert_non_null(f);
    fprintf(f, "{\"openapi\":\"3.0.2\",\"info\":{\"version\":\"%s\"},\"paths\":%s}", version,
            paths);
    assert_int_equal(fclose(f), 0);
    unlink(out_path);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' 2>&1", GEN_KSPEC, spec_path, out_path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(msg, 1, msg_size - 1, p);
    msg[n] = '\0';
    int status = pclose(p);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

#define OP(id, rl, scopes)                                                                         \
    "{\"operationId\":\"" id "\",\"x-klaviyo-ratelimit\":" rl ",\"x-klaviyo-scopes\":" scopes "}"
#define RL_S "{\"burst\":\"3/s\",\"steady\":\"60/m\"}"

static void expect_rejected(const char *version, const char *paths, const char *needle)
{
    char msg[2048];
    assert_int_equal(run_gen(version, paths, msg, sizeof msg), 1);
    if (!strstr(msg, needle))
        fail_msg("expected \"%s\" in: %s", needle, msg);
    assert_int_equal(access(out_path, F_OK), -1);
}

static void test_accepts_and_sorts(void **state)
{
    (void)state;
    char msg[2048];
    const char *paths = "{\"/api/z\":{\"post\":" OP(
        "create_z", RL_S,
        "[\"z:write\"]") ","
                         "\"get\":" OP("get_z",
                                       "{\"burst\":\"1/s\",\"steady\":\"2/m\","
                                       "\"daily\":\"225/d\"}",
                                       "[\"z:read\",\"y:read\"]") ","
                                                                  "\"parameters\":[],\"x-note\":1},"
                                                                  "\"/api/a/{id}\":{\"delete\":" OP(
                                                                      "delete_a", RL_S, "[]") "}}";
    assert_int_equal(run_gen(KLAVIYO_REVISION, paths, msg, sizeof msg), 0);
    char *text = NULL;
    FILE *f = fopen(out_path, "r");
    assert_non_null(f);
    size_t cap = 0;
    assert_true(getdelim(&text, &cap, '\0', f) > 0);
    fclose(f);
    const char *a = strstr(text, "{\"DELETE\", \"/api/a/{id}\", \"delete_a\", 3, 60, 0, \"\"},");
    const char *g = strstr(text, "{\"GET\", \"/api/z\", \"get_z\", 1, 2, 225, \"z:read,y:read\"},");
    const char *p = strstr(text, "{\"POST\", \"/api/z\", \"create_z\", 3, 60, 0, \"z:write\"},");
    assert_non_null(a);
    assert_non_null(g);
    assert_non_null(p);
    assert_true(a < g && g < p);
    assert_non_null(strstr(text, "const size_t kspec_ops_count = 3;"));
    free(text);
}

static void test_rejects_other_revision(void **state)
{
    (void)state;
    expect_rejected("2099-01-01", "{\"/api/z\":{\"get\":" OP("get_z", RL_S, "[]") "}}",
                    "info.version is \"2099-01-01\" but kspec.h pins KLAVIYO_REVISION");
}

static void test_rejects_bad_rates(void **state)
{
    (void)state;
    static const struct {
        const char *rl, *needle;
    } cases[] = {
        {"{\"burst\":\"3/s\",\"steady\":\"10/h\"}", "steady is \"10/h\""},
        {"{\"burst\":\"3/m\",\"steady\":\"60/m\"}", "burst is \"3/m\""},
        {"{\"burst\":\"03/s\",\"steady\":\"60/m\"}", "burst is \"03/s\""},
        {"{\"burst\":\"0/s\",\"steady\":\"60/m\"}", "burst is \"0/s\""},
        {"{\"burst\":\" 3/s\",\"steady\":\"60/m\"}", "burst is \" 3/s\""},
        {"{\"burst\":\"3/s \",\"steady\":\"60/m\"}", "burst is \"3/s \""},
        {"{\"burst\":\"-3/s\",\"steady\":\"60/m\"}", "burst is \"-3/s\""},
        {"{\"burst\":\"99999999999/s\",\"steady\":\"60/m\"}", "burst is \"99999999999/s\""},
        {"{\"burst\":3,\"steady\":\"60/m\"}", "burst is not a string"},
        {"{\"burst\":\"3/s\",\"steady\":\"60/m\",\"daily\":\"100/day\"}", "daily is \"100/day\""},
        {"{\"burst\":\"3/s\",\"steady\":\"60/m\",\"hourly\":\"5/h\"}", "unknown key \"hourly\""},
        {"{\"burst\":\"3/s\"}", "needs both burst and steady"},
        {"\"3/s\"", "x-klaviyo-ratelimit is missing or not an object"},
    };
    char paths[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(paths, sizeof paths, "{\"/api/z\":{\"get\":" OP("get_z", "%s", "[]") "}}",
                 cases[i].rl);
        expect_rejected(KLAVIYO_REVISION, paths, cases[i].needle);
    }
    expect_rejected(KLAVIYO_REVISION, "{\"/api/z\":{\"get\":{\"operationId\":\"get_z\"}}}",
                    "get_z: x-klaviyo-ratelimit is missing");
}

static void test_rejects_bad_structure(void **state)
{
    (void)state;
    expect_rejected(KLAVIYO_REVISION, "{\"/api/z\":{\"get\":" OP("get_z", RL_S, "\"z:read\"") "}}",
                    "get_z: x-klaviyo-scopes is missing or not an array");
    expect_rejected(KLAVIYO_REVISION, "{\"/api/z\":{\"get\":" OP("get_z", RL_S, "[\"a,b\"]") "}}",
                    "x-klaviyo-scopes[0] is not a scope name");
    expect_rejected(KLAVIYO_REVISION, "{\"/api/z\":{\"get\":" OP("get z", RL_S, "[]") "}}",
                    "GET /api/z: operationId is missing");
    expect_rejected(KLAVIYO_REVISION,
                    "{\"/api/z/{id}.json\":{\"get\":" OP("get_z", RL_S, "[]") "}}",
                    "path \"/api/z/{id}.json\" is not a template");
    expect_rejected(KLAVIYO_REVISION, "{\"/api//z\":{\"get\":" OP("get_z", RL_S, "[]") "}}",
                    "path \"/api//z\" is not a template");
    expect_rejected(KLAVIYO_REVISION, "{\"/api/z\":{\"$ref\":\"#/x\"}}",
                    "member \"$ref\" that is neither");
    expect_rejected(KLAVIYO_REVISION,
                    "{\"/api/z\":{\"get\":" OP("get_z", RL_S, "[]") "},"
                                                                    "\"/api/y\":{\"get\":" OP(
                                                                        "get_z", RL_S, "[]") "}}",
                    "operationId get_z is used twice");
    expect_rejected(
        KLAVIYO_REVISION,
        "{\"/api/z/{id}\":{\"get\":" OP("get_z", RL_S, "[]") "},"
                                                             "\"/api/z/{z_id}\":{\"get\":" OP(
                                                                 "get_z2", RL_S, "[]") "}}",
        "match exactly the same requests");
    expect_rejected(KLAVIYO_REVISION, "{}", "\"paths\" is missing or empty");
    expect_rejected(KLAVIYO_REVISION, "{\"/api/z\":{\"get\":{},\"get\":{}}}", "duplicate");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_and_sorts),
        cmocka_unit_test(test_rejects_other_revision),
        cmocka_unit_test(test_rejects_bad_rates),
        cmocka_unit_test(test_rejects_bad_structure),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
