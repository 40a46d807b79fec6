/* cad_secret, its masks, and the log redaction filter that backs it up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/log.h"
#include "common/secret.h"

/* Writes `data` into a pipe from a child-free writer (fits in the pipe buffer) and reads it. */
static int read_via_pipe(const void *data, size_t n, size_t max, cad_secret **out)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_true(n < 60000);
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fds[1], (const char *)data + off, n - off);
        assert_true(w > 0);
        off += (size_t)w;
    }
    close(fds[1]);
    int rc = secret_read_fd(out, fds[0], max);
    close(fds[0]);
    return rc;
}

static void assert_secret_is(const cad_secret *s, const char *text)
{
    assert_int_equal(secret_len(s), strlen(text));
    assert_memory_equal(secret_data(s), text, strlen(text));
    assert_string_equal(secret_cstr(s), text);
}

static void test_read_fd_drops_one_newline(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"pk_secret\n", "pk_secret"},
        {"pk_secret\r\n", "pk_secret"},
        {"pk_secret", "pk_secret"},
        {"pk_secret\n\n", "pk_secret\n"},
        {"two\nlines\n", "two\nlines"},
        {"\n", ""},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cad_secret *s = NULL;
        assert_int_equal(read_via_pipe(cases[i].in, strlen(cases[i].in), 64, &s), CAD_OK);
        assert_secret_is(s, cases[i].want);
        secret_free(s);
    }
}

static void test_read_fd_limits(void **state)
{
    (void)state;
    char buf[200];
    memset(buf, 'k', sizeof buf);
    cad_secret *s = NULL;
    /* Exactly max bytes is accepted; one more is refused and nothing is returned. */
    assert_int_equal(read_via_pipe(buf, 64, 64, &s), CAD_OK);
    assert_int_equal(secret_len(s), 64);
    secret_free(s);
    s = (cad_secret *)1;
    assert_int_equal(read_via_pipe(buf, 65, 64, &s), CAD_EINVAL);
    assert_null(s);
    assert_non_null(strstr(cad_errmsg(), "longer than 64"));
    s = (cad_secret *)1;
    assert_int_equal(read_via_pipe(buf, sizeof buf, 64, &s), CAD_EINVAL);
    assert_null(s);
    /* A newline past the limit does not sneak an over-long value through. */
    char line[66];
    memset(line, 'k', 65);
    line[65] = '\n';
    assert_int_equal(read_via_pipe(line, sizeof line, 64, &s), CAD_EINVAL);
    /* SECRET_MAX bounds everything, and a secret of exactly SECRET_MAX bytes can be read. */
    assert_int_equal(secret_new(&s, SECRET_MAX + 1), CAD_EINVAL);
    assert_int_equal(read_via_pipe(buf, 3, 2, &s), CAD_EINVAL);
    char *big = malloc(SECRET_MAX + 2);
    assert_non_null(big);
    memset(big, 'k', SECRET_MAX + 1);
    assert_int_equal(read_via_pipe(big, SECRET_MAX, SECRET_MAX, &s), CAD_OK);
    assert_int_equal(secret_len(s), SECRET_MAX);
    secret_free(s);
    assert_int_equal(read_via_pipe(big, SECRET_MAX + 1, SECRET_MAX, &s), CAD_EINVAL);
    assert_null(s);
    assert_int_equal(read_via_pipe(big, 1, SECRET_MAX + 1, &s), CAD_EINVAL);
    free(big);
}

/* Counts characters of a mask that are not part of its fixed decoration ("pk_", "…"). */
static size_t revealed(const char *mask)
{
    const char *p = mask;
    if (strncmp(p, "pk_", 3) == 0)
        p += 3;
    static const char ellipsis[] = "…";
    if (strncmp(p, ellipsis, sizeof ellipsis - 1) == 0)
        p += sizeof ellipsis - 1;
    return strlen(p);
}

static void test_mask_shows_at_most_last4(void **state)
{
    (void)state;
    const char *key = "pk_0123456789abcdefghijklmnopqrstuvwxyz";
    cad_secret *s;
    char buf[64];
    assert_int_equal(secret_from(&s, key, strlen(key)), CAD_OK);
    secret_mask(s, buf, sizeof buf);
    assert_string_equal(buf, "pk_…wxyz");
    char last[5];
    secret_last4(s, last);
    assert_string_equal(last, "wxyz");
    secret_free(s);

    const char *samples[] = {"",
                             "a",
                             "abc",
                             "abcd",
                             "abcde",
                             "0123456789a",
                             "0123456789ab",
                             "shpat_0123456789abcdef",
                             "pk_short",
                             key};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        const char *v = samples[i];
        size_t n = strlen(v);
        assert_int_equal(secret_from(&s, v, n), CAD_OK);
        secret_mask(s, buf, sizeof buf);
        if (n == 0) {
            assert_string_equal(buf, "(empty)");
        } else {
            /* What shows is at most the last 4 characters, and nothing of a short secret. */
            size_t shown = revealed(buf);
            assert_true(shown <= 4);
            assert_true(shown <= n);
            assert_string_equal(buf + strlen(buf) - shown, v + n - shown);
            if (n < 12)
                assert_int_equal(shown, 0);
        }
        secret_free(s);
    }
    secret_mask(NULL, buf, sizeof buf);
    assert_string_equal(buf, "(empty)");
    /* A tiny buffer truncates instead of overflowing. */
    assert_int_equal(secret_from(&s, key, strlen(key)), CAD_OK);
    char tiny[4];
    secret_mask(s, tiny, sizeof tiny);
    assert_int_equal(strlen(tiny), 3);
    secret_free(s);
}

static void test_secret_equal(void **state)
{
    (void)state;
    cad_secret *a, *b, *c, *d, *e;
    assert_int_equal(secret_from(&a, "same-value", 10), CAD_OK);
    assert_int_equal(secret_from(&b, "same-value", 10), CAD_OK);
    assert_int_equal(secret_from(&c, "same-valuX", 10), CAD_OK);
    assert_int_equal(secret_from(&d, "same-valu", 9), CAD_OK);
    assert_int_equal(secret_new(&e, 10), CAD_OK);
    assert_true(secret_equal(a, b));
    assert_false(secret_equal(a, c));
    assert_false(secret_equal(a, d));
    assert_false(secret_equal(a, e));
    /* secret_new is zero-filled and NUL-terminated; secret_from copies, the caller keeps its own.
     */
    static const unsigned char zeros[11];
    assert_memory_equal(secret_data(e), zeros, 11);
    memcpy(secret_data_mut(e), "same-value", 10);
    assert_true(secret_equal(a, e));
    assert_int_equal(secret_cstr(a)[10], '\0');
    secret_free(a);
    secret_free(b);
    secret_free(c);
    secret_free(d);
    secret_free(e);
    secret_free(NULL);
}

static void test_log_redact(void **state)
{
    (void)state;
    const char *key = "pk_0123456789abcdefghijklmnopqrstuvwx"; /* pk_ + 34 */
    assert_int_equal(strlen(key), 37);
    char line[256];
    snprintf(line, sizeof line, "event=key.set key=%s tenant=acme", key);
    size_t before = strlen(line);
    assert_int_equal(log_redact(line), 1);
    assert_int_equal(strlen(line), before);
    assert_null(strstr(line, "0123456789"));
    assert_null(strstr(line, "uvwx"));
    assert_non_null(strstr(line, "key=pk_[redacted]"));
    assert_non_null(strstr(line, " tenant=acme"));
    assert_int_equal(strncmp(line, "event=key.set key=", 18), 0);

    /* Two keys, one at the very end of the line, one glued to punctuation. */
    snprintf(line, sizeof line, "(%s),%s", key, key);
    assert_int_equal(log_redact(line), 2);
    assert_null(strstr(line, "0123"));
    assert_int_equal(line[0], '(');
    assert_int_equal(line[38], ')');

    /* Short pk_ words are not keys and stay as they are. */
    snprintf(line, sizeof line,
             "use pk_ keys; pk_live and pk_abc123 are fine; pk_0123456789abcdefghi");
    char copy[256];
    snprintf(copy, sizeof copy, "%s", line);
    assert_int_equal(log_redact(line), 0);
    assert_string_equal(line, copy);
}

static void test_log_and_errors_are_redacted(void **state)
{
    (void)state;
    const char *key = "pk_0123456789abcdefghijklmnopqrstuvwx";
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    assert_non_null(mem);
    log_set_stream(mem);
    cad_log(LOG_ERROR, "test.leak", "key=%s", key);
    log_set_stream(NULL);
    fclose(mem);
    assert_non_null(strstr(buf, "event=test.leak"));
    assert_null(strstr(buf, "0123456789"));
    free(buf);

    assert_int_equal(cad_fail(CAD_EINVAL, "bad key %s", key), CAD_EINVAL);
    assert_null(strstr(cad_errmsg(), "0123456789"));
    assert_non_null(strstr(cad_errmsg(), "pk_[redacted]"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_fd_drops_one_newline),
        cmocka_unit_test(test_read_fd_limits),
        cmocka_unit_test(test_mask_shows_at_most_last4),
        cmocka_unit_test(test_secret_equal),
        cmocka_unit_test(test_log_redact),
        cmocka_unit_test(test_log_and_errors_are_redacted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
