/*
 * Tests of the Klaviyo key format check: every verdict, the tidying of pastes, character counts
 * in UTF-8 (invalid bytes count one each), bytes C strings cannot hold (NUL), a large paste, and
 * that no message repeats any 8-byte run of what was pasted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "keyfmt/keyfmt.h"

#define BODY  "AbCdEfGhIjKlMnOpQrStUvWxYz01234567" /* 34 key characters */
#define VALID "pk_" BODY

static struct keyfmt_result check_n(const char *input, size_t len)
{
    struct keyfmt_result r;
    memset(&r, 0x5A, sizeof r);
    keyfmt_check(input, len, &r);
    return r;
}

static bool contains(const char *hay, const char *needle, size_t m)
{
    size_t n = strlen(hay);
    for (size_t i = 0; m <= n && i <= n - m; i++) {
        if (memcmp(hay + i, needle, m) == 0)
            return true;
    }
    return false;
}

/* Every message: present, complete (not cut off by the buffer), a sentence, and free of any
 * 8-byte run of the tidied paste. */
static void assert_message_safe(const char *input, size_t len, const struct keyfmt_result *r)
{
    size_t mlen = strnlen(r->message, sizeof r->message);
    assert_true(mlen > 0);
    assert_true(mlen < sizeof r->message - 1);
    assert_int_equal(r->message[mlen - 1], '.');
    assert_true(r->start + r->len <= len);
    if (r->len < 8)
        return;
    const char *t = input + r->start;
    for (size_t i = 0; i <= r->len - 8; i++) {
        if (contains(r->message, t + i, 8))
            fail_msg("message \"%s\" repeats input bytes at %zu", r->message, i);
    }
}

static struct keyfmt_result expect_n(const char *input, size_t len, enum keyfmt_verdict v)
{
    struct keyfmt_result r = check_n(input, len);
    if (r.verdict != v)
        fail_msg("verdict %s, expected %s (%s)", keyfmt_verdict_name(r.verdict),
                 keyfmt_verdict_name(v), r.message);
    assert_message_safe(input, len, &r);
    return r;
}

static struct keyfmt_result expect(const char *input, enum keyfmt_verdict v)
{
    return expect_n(input, strlen(input), v);
}

static void test_valid_key(void **state)
{
    (void)state;
    struct keyfmt_result r = expect(VALID, KEYFMT_OK);
    assert_int_equal(r.start, 0);
    assert_int_equal(r.len, KEYFMT_KEY_LEN);
    assert_int_equal(r.chars, KEYFMT_KEY_LEN);
    expect("pk_0000000000000000000000000000000000", KEYFMT_OK);
    expect("pk_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", KEYFMT_OK);
}

static void assert_tidies_to_valid(const char *input)
{
    struct keyfmt_result r = expect(input, KEYFMT_OK);
    assert_int_equal(r.len, KEYFMT_KEY_LEN);
    assert_int_equal(r.chars, KEYFMT_KEY_LEN);
    assert_memory_equal(input + r.start, VALID, KEYFMT_KEY_LEN);
}

static void test_trimming(void **state)
{
    (void)state;
    assert_tidies_to_valid("  " VALID "  ");
    assert_tidies_to_valid(VALID "\n");
    assert_tidies_to_valid(VALID "\r\n");
    assert_tidies_to_valid("\t" VALID "\t\r\n\v\f");
    assert_tidies_to_valid("'" VALID "'");
    assert_tidies_to_valid("\"" VALID "\"");
    assert_tidies_to_valid("`" VALID "`");
    assert_tidies_to_valid("\xE2\x80\x9C" VALID "\xE2\x80\x9D"); /* “ ” */
    assert_tidies_to_valid("\xE2\x80\x98" VALID "\xE2\x80\x99"); /* ‘ ’ */
    assert_tidies_to_valid("\xC2\xA0" VALID "\xC2\xA0");         /* NBSP */
    assert_tidies_to_valid("\xEF\xBB\xBF" VALID);                /* BOM */
    assert_tidies_to_valid(VALID "\xE2\x80\x8B");                /* zero-width space */
    assert_tidies_to_valid("\xE2\x80\x8D" VALID "\xE2\x81\xA0"); /* ZWJ, word joiner */
    /* Layers of quotes and spaces, in any order. */
    assert_tidies_to_valid(" \"\xC2\xA0'" VALID "' \xE2\x80\x9D\r\n");
    assert_tidies_to_valid("\xE2\x80\x9C `" VALID "`\xE2\x80\x8B\xE2\x80\x9D ");
    struct keyfmt_result r = expect("  \"" VALID "\"\n", KEYFMT_OK);
    assert_int_equal(r.start, 3);
}

static void test_empty(void **state)
{
    (void)state;
    const char *blanks[] = {
        "",
        " ",
        "\r\n",
        "\t \n",
        "\"\"",
        "''",
        "``",
        "\xE2\x80\x9C\xE2\x80\x9D",
        "\xC2\xA0\xC2\xA0",
        "\xEF\xBB\xBF",
        "\xE2\x80\x8B \xE2\x80\x98\xE2\x80\x99",
    };
    for (size_t i = 0; i < sizeof blanks / sizeof blanks[0]; i++) {
        struct keyfmt_result r = expect(blanks[i], KEYFMT_EMPTY);
        assert_int_equal(r.len, 0);
        assert_int_equal(r.chars, 0);
    }
    struct keyfmt_result r = expect_n(NULL, 0, KEYFMT_EMPTY);
    assert_int_equal(r.start, 0);
    assert_int_equal(r.len, 0);
    assert_non_null(strstr(r.message, "pk_"));
}

static void test_masked(void **state)
{
    (void)state;
    expect("pk_\xE2\x80\xA2\xE2\x80\xA2\xE2\x80\xA2\xE2\x80\xA2\xE2\x80\xA2\xE2\x80\xA2",
           KEYFMT_MASKED);
    expect("pk_**********************************", KEYFMT_MASKED);
    expect("pk_AbCd\xE2\x80\xA6wxyz", KEYFMT_MASKED);                 /* … */
    expect("pk_\xE2\x97\x8F\xE2\x97\x8F\xE2\x97\x8F", KEYFMT_MASKED); /* ● */
    expect("****", KEYFMT_MASKED);
    expect("  \"pk_AbCdEfGhIjKlMnOpQrStUvWxYz0123456*\"  ", KEYFMT_MASKED);
    struct keyfmt_result r = expect("\xE2\x80\xA2", KEYFMT_MASKED);
    assert_int_equal(r.chars, 1);
    assert_non_null(strstr(r.message, "API Keys"));
}

static void test_too_short(void **state)
{
    (void)state;
    struct keyfmt_result r = expect("pk_AbCdEfGhIjKlMnOpQrStU", KEYFMT_TOO_SHORT);
    assert_int_equal(r.chars, 24);
    assert_non_null(strstr(r.message, "You pasted 24 characters"));
    assert_non_null(strstr(r.message, "pk_ followed by 34 characters (37 in all)"));

    r = expect("pk_", KEYFMT_TOO_SHORT);
    assert_non_null(strstr(r.message, "3 characters"));

    /* One short of a key, with the newline a terminal adds. */
    r = expect("pk_AbCdEfGhIjKlMnOpQrStUvWxYz0123456\n", KEYFMT_TOO_SHORT);
    assert_int_equal(r.chars, 36);
    assert_non_null(strstr(r.message, "36 characters"));

    /* 20 two-byte characters are 20 characters, not 40. */
    r = expect("pk_\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
               "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9",
               KEYFMT_TOO_SHORT);
    assert_int_equal(r.len, 43);
    assert_int_equal(r.chars, 23);
    assert_non_null(strstr(r.message, "23 characters"));
}

static void test_too_long(void **state)
{
    (void)state;
    struct keyfmt_result r = expect(VALID "8", KEYFMT_TOO_LONG);
    assert_int_equal(r.chars, 38);
    assert_non_null(strstr(r.message, "You pasted 38 characters"));
    assert_non_null(strstr(r.message, "pk_ followed by 34 characters (37 in all)"));
    assert_null(strstr(r.message, "more than one key"));

    r = expect(VALID "\n" VALID "\n", KEYFMT_TOO_LONG);
    assert_int_equal(r.chars, 75);
    assert_non_null(strstr(r.message, "75 characters"));
    assert_non_null(strstr(r.message, "more than one key"));

    r = expect(VALID " is my key", KEYFMT_TOO_LONG);
    assert_int_equal(r.chars, 47);
}

static void test_public_key(void **state)
{
    (void)state;
    struct keyfmt_result r = expect("AbC123", KEYFMT_PUBLIC_KEY);
    assert_int_equal(r.chars, KEYFMT_PUBLIC_LEN);
    assert_non_null(strstr(r.message, "Public API Key"));
    assert_non_null(strstr(r.message, "Settings \xE2\x86\x92 API Keys"));
    assert_non_null(strstr(r.message, "Private API Key"));
    expect(" 'XyZ9q8'\r\n", KEYFMT_PUBLIC_KEY);
    expect("123456", KEYFMT_PUBLIC_KEY);
    /* Not six key characters: five, seven, or a symbol among them. */
    expect("AbC12", KEYFMT_WRONG_PREFIX);
    expect("AbC1234", KEYFMT_WRONG_PREFIX);
    expect("AbC-12", KEYFMT_WRONG_PREFIX);
    expect("Ab\xC3\xA9"
           "12",
           KEYFMT_WRONG_PREFIX);
}

static void test_wrong_prefix(void **state)
{
    (void)state;
    struct keyfmt_result r = expect("sk_" BODY, KEYFMT_WRONG_PREFIX);
    assert_non_null(strstr(r.message, "starts with sk_, not pk_"));
    assert_null(strstr(r.message, "sk_A"));

    r = expect("rk_" BODY, KEYFMT_WRONG_PREFIX);
    assert_non_null(strstr(r.message, "rk_"));

    r = expect("x_" BODY, KEYFMT_WRONG_PREFIX);
    assert_non_null(strstr(r.message, "starts with x_,"));

    r = expect("abc" BODY, KEYFMT_WRONG_PREFIX);
    assert_non_null(strstr(r.message, "does not start with pk_"));
    assert_int_equal(r.chars, 37);

    /* A longer "prefix" is not named: it may be part of the secret. */
    r = expect("abcd_" BODY, KEYFMT_WRONG_PREFIX);
    assert_non_null(strstr(r.message, "does not start with pk_"));
    assert_null(strstr(r.message, "abc"));

    r = expect("-_" BODY, KEYFMT_WRONG_PREFIX);
    assert_non_null(strstr(r.message, "does not start with pk_"));

    r = expect("Pk_" BODY, KEYFMT_WRONG_PREFIX);
    assert_non_null(strstr(r.message, "starts with Pk_"));
    assert_non_null(strstr(r.message, "lower-case"));
    r = expect("PK_" BODY, KEYFMT_WRONG_PREFIX);
    assert_non_null(strstr(r.message, "starts with PK_"));

    r = expect("Klaviyo-API-Key " VALID, KEYFMT_WRONG_PREFIX);
    assert_non_null(strstr(r.message, "before pk_"));
    assert_int_equal(r.chars, 53);
}

static void test_bad_chars(void **state)
{
    (void)state;
    struct keyfmt_result r = expect("pk_AbCdEfGhIjKlMnOp QrStUvWxYz0123456", KEYFMT_BAD_CHARS);
    assert_int_equal(r.chars, 37);
    assert_non_null(strstr(r.message, "1 character a key never has"));
    assert_non_null(strstr(r.message, "character 20 is a space"));

    r = expect("pk_AbCdEfGhIjKlMnOp-QrStUvWxYz01234+6", KEYFMT_BAD_CHARS);
    assert_non_null(strstr(r.message, "2 characters a key never has"));
    assert_non_null(strstr(r.message, "character 20 is a symbol"));

    r = expect("pk_\xC3\x80"
               "bCdEfGhIjKlMnOpQrStUvWxYz01234567",
               KEYFMT_BAD_CHARS);
    assert_int_equal(r.len, 38);
    assert_int_equal(r.chars, 37);
    assert_non_null(strstr(r.message, "character 4 is a non-ASCII character"));

    /* A four-byte emoji in place of the last character. */
    r = expect("pk_AbCdEfGhIjKlMnOpQrStUvWxYz0123456\xF0\x9F\x94\x91", KEYFMT_BAD_CHARS);
    assert_int_equal(r.chars, 37);
    assert_non_null(strstr(r.message, "character 37 is"));

    /* A NBSP inside is kept (only the ends are tidied) and is not a key character. */
    r = expect("pk_AbCdEfGhIjKlMnOpQr\xC2\xA0tUvWxYz01234567", KEYFMT_BAD_CHARS);
    assert_non_null(strstr(r.message, "character 22 is a space"));
}

static void test_invalid_utf8_and_nul(void **state)
{
    (void)state;
    /* An invalid byte is one character: 33 key characters + 0xFF is the right length. */
    struct keyfmt_result r = expect("pk_AbCdEfGhIjKlMnOpQrStUvWxYz0123456\xFF", KEYFMT_BAD_CHARS);
    assert_int_equal(r.chars, 37);
    assert_non_null(strstr(r.message, "character 37 is a byte that is not valid UTF-8"));

    /* Overlong, surrogate and truncated sequences: one character per byte. */
    r = expect("pk_\xC0\xAF", KEYFMT_TOO_SHORT);
    assert_int_equal(r.chars, 5);
    r = expect("pk_\xED\xA0\x80", KEYFMT_TOO_SHORT);
    assert_int_equal(r.chars, 6);
    r = expect("pk_\xF4\x90\x80\x80", KEYFMT_TOO_SHORT);
    assert_int_equal(r.chars, 7);
    r = expect("pk_AbC\xE2\x80", KEYFMT_TOO_SHORT);
    assert_int_equal(r.chars, 8);
    r = expect("\xE2\x80", KEYFMT_WRONG_PREFIX);
    assert_int_equal(r.chars, 2);

    /* A NUL inside: the length given is what counts, not strlen. */
    static const char with_nul[] = "pk_AbCdEfGhIj\0lMnOpQrStUvWxYz01234567";
    r = expect_n(with_nul, sizeof with_nul - 1, KEYFMT_BAD_CHARS);
    assert_int_equal(r.len, 37);
    assert_non_null(strstr(r.message, "character 14 is an invisible control character"));

    static const char nul_only[] = "\0\0\0";
    r = expect_n(nul_only, 3, KEYFMT_WRONG_PREFIX);
    assert_int_equal(r.chars, 3);
}

static void test_large_input(void **state)
{
    (void)state;
    size_t n = (size_t)1 << 22;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'a', n);
    big[0] = 'p';
    big[1] = 'k';
    big[2] = '_';
    struct keyfmt_result r = check_n(big, n);
    assert_int_equal(r.verdict, KEYFMT_TOO_LONG);
    assert_int_equal(r.chars, n);
    assert_non_null(strstr(r.message, "You pasted 4194304 characters"));

    memset(big, ' ', n);
    r = check_n(big, n);
    assert_int_equal(r.verdict, KEYFMT_EMPTY);

    memset(big, 0xFF, n);
    r = check_n(big, n);
    assert_int_equal(r.verdict, KEYFMT_WRONG_PREFIX);
    assert_int_equal(r.chars, n);
    free(big);
}

static void test_null_result_is_ignored(void **state)
{
    (void)state;
    keyfmt_check(VALID, strlen(VALID), NULL);
}

static void test_verdict_names(void **state)
{
    (void)state;
    static const char *const names[] = {"ok",         "empty",  "too_short",    "too_long",
                                        "public_key", "masked", "wrong_prefix", "bad_chars"};
    static const enum keyfmt_verdict verdicts[] = {
        KEYFMT_OK,         KEYFMT_EMPTY,  KEYFMT_TOO_SHORT,    KEYFMT_TOO_LONG,
        KEYFMT_PUBLIC_KEY, KEYFMT_MASKED, KEYFMT_WRONG_PREFIX, KEYFMT_BAD_CHARS};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_string_equal(keyfmt_verdict_name(verdicts[i]), names[i]);
    assert_string_equal(keyfmt_verdict_name((enum keyfmt_verdict)99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_key),     cmocka_unit_test(test_trimming),
        cmocka_unit_test(test_empty),         cmocka_unit_test(test_masked),
        cmocka_unit_test(test_too_short),     cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_public_key),    cmocka_unit_test(test_wrong_prefix),
        cmocka_unit_test(test_bad_chars),     cmocka_unit_test(test_invalid_utf8_and_nul),
        cmocka_unit_test(test_large_input),   cmocka_unit_test(test_null_result_is_ignored),
        cmocka_unit_test(test_verdict_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
