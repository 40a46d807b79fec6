/*
 * The Klaviyo private key format check (rules in keyfmt.h). The input is untrusted bytes of any
 * length, so everything here works on (pointer, length) pairs with explicit bounds, never on C
 * strings, and never copies the input: the message is built only from fixed text, counts,
 * positions and, at most, a short prefix such as "sk_".
 *
 * Trimming matches whole UTF-8 sequences at either end. Every sequence in the trim table begins
 * with a byte that cannot continue another sequence, so a match at the end is always a character
 * of its own, exactly as a forward decode would see it.
 */
#include "keyfmt/keyfmt.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define CP_INVALID UINT32_MAX

struct seq {
    const char *bytes;
    size_t len;
};

#define SEQ(s)                                                                                     \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }

static const struct seq trim_seqs[] = {
    SEQ(" "),
    SEQ("\t"),
    SEQ("\n"),
    SEQ("\r"),
    SEQ("\v"),
    SEQ("\f"),
    SEQ("'"),
    SEQ("\""),
    SEQ("`"),
    SEQ("\xC2\xA0"),     /* U+00A0 no-break space */
    SEQ("\xE2\x80\x8B"), /* U+200B zero-width space */
    SEQ("\xE2\x80\x8C"), /* U+200C zero-width non-joiner */
    SEQ("\xE2\x80\x8D"), /* U+200D zero-width joiner */
    SEQ("\xE2\x81\xA0"), /* U+2060 word joiner */
    SEQ("\xEF\xBB\xBF"), /* U+FEFF byte order mark */
    SEQ("\xE2\x80\x98"), /* U+2018 ‘ */
    SEQ("\xE2\x80\x99"), /* U+2019 ’ */
    SEQ("\xE2\x80\x9C"), /* U+201C “ */
    SEQ("\xE2\x80\x9D"), /* U+201D ” */
};

/* What a masked key looks like in Klaviyo's page, password fields and screenshots. */
static const struct seq mask_seqs[] = {
    SEQ("*"), SEQ("\xE2\x80\xA2"), /* U+2022 • */
    SEQ("\xE2\x97\x8F"),           /* U+25CF ● */
    SEQ("\xE2\x80\xA6"),           /* U+2026 … */
};

static bool has_prefix(const unsigned char *s, size_t n, const struct seq *q)
{
    return n >= q->len && memcmp(s, q->bytes, q->len) == 0;
}

static bool has_suffix(const unsigned char *s, size_t n, const struct seq *q)
{
    return n >= q->len && memcmp(s + n - q->len, q->bytes, q->len) == 0;
}

/* Byte offset of the first `needle` in s[0..n), or n when there is none. */
static size_t find(const unsigned char *s, size_t n, const char *needle, size_t m)
{
    if (m == 0 || m > n)
        return n;
    for (size_t i = 0; i <= n - m; i++) {
        const unsigned char *p = memchr(s + i, (unsigned char)needle[0], n - m + 1 - i);
        if (!p)
            break;
        i = (size_t)(p - s);
        if (memcmp(p, needle, m) == 0)
            return i;
    }
    return n;
}

/* Decodes the code point at s[0..n) (n >= 1) into *cp and returns its length in bytes. Overlong
 * forms, surrogates, values past U+10FFFF and truncated sequences are one byte, CP_INVALID. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    static const struct {
        unsigned char lo, hi; /* lead bytes */
        unsigned char len, bits;
        uint32_t min;
    } forms[] = {
        {0xC2, 0xDF, 2, 0x1F, 0x80},
        {0xE0, 0xEF, 3, 0x0F, 0x800},
        {0xF0, 0xF4, 4, 0x07, 0x10000},
    };
    unsigned char b = s[0];
    *cp = CP_INVALID;
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
        if (b < forms[f].lo || b > forms[f].hi)
            continue;
        size_t need = forms[f].len;
        if (n < need)
            return 1;
        uint32_t v = b & forms[f].bits;
        for (size_t i = 1; i < need; i++) {
            if ((s[i] & 0xC0u) != 0x80u)
                return 1;
            v = (v << 6) | (s[i] & 0x3Fu);
        }
        if (v < forms[f].min || v > 0x10FFFFu || (v >= 0xD800u && v <= 0xDFFFu))
            return 1;
        *cp = v;
        return need;
    }
    return 1;
}

static size_t utf8_count(const unsigned char *s, size_t n)
{
    size_t chars = 0;
    uint32_t cp;
    for (size_t i = 0; i < n; i += utf8_next(s + i, n - i, &cp))
        chars++;
    return chars;
}

static bool is_key_char(uint32_t cp)
{
    return (cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9');
}

static bool is_space_like(uint32_t cp)
{
    return cp == ' ' || (cp >= '\t' && cp <= '\r') || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200D) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x2060 || cp == 0x3000 || cp == 0xFEFF;
}

/* A short description of a character a key never has, for "character 12 is ...". */
static const char *describe_bad_char(uint32_t cp)
{
    if (cp == CP_INVALID)
        return "a byte that is not valid UTF-8 text";
    if (is_space_like(cp))
        return "a space, tab or line break";
    if (cp < 0x20 || cp == 0x7F)
        return "an invisible control character";
    if (cp < 0x80)
        return "a symbol or punctuation mark";
    return "a non-ASCII character (such as an accented or look-alike letter)";
}

static void say(struct keyfmt_result *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say(struct keyfmt_result *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof out->message, fmt, ap);
    va_end(ap);
}

#define KEY_SHAPE "a Klaviyo private key is pk_ followed by 34 characters (37 in all)"
#define IT_IS     "it is pk_ followed by 34 characters (37 in all)"

static void check_pk_body(const unsigned char *s, size_t n, struct keyfmt_result *out)
{
    size_t body_chars = out->chars - 3;
    if (body_chars < KEYFMT_BODY_LEN) {
        out->verdict = KEYFMT_TOO_SHORT;
        say(out,
            "You pasted %zu characters; " KEY_SHAPE ". Part of the key was not copied: copy it "
            "again in full, or create a new private key if Klaviyo no longer shows it.",
            out->chars);
        return;
    }
    if (body_chars > KEYFMT_BODY_LEN) {
        out->verdict = KEYFMT_TOO_LONG;
        bool twice = find(s + 3, n - 3, KEYFMT_PREFIX, 3) < n - 3;
        say(out, "You pasted %zu characters; " KEY_SHAPE ". %s", out->chars,
            twice ? "It looks like more than one key was pasted: paste just one."
                  : "Something else was copied along with the key: copy just the key.");
        return;
    }
    size_t bad = 0, first_pos = 0;
    uint32_t first_cp = 0, cp;
    size_t pos = 4; /* 1-based position in the whole key of the first body character */
    for (size_t i = 3; i < n; pos++) {
        i += utf8_next(s + i, n - i, &cp);
        if (is_key_char(cp))
            continue;
        if (bad++ == 0) {
            first_pos = pos;
            first_cp = cp;
        }
    }
    if (bad == 0) {
        out->verdict = KEYFMT_OK;
        say(out, "This looks like a Klaviyo private key (pk_ followed by 34 characters).");
        return;
    }
    out->verdict = KEYFMT_BAD_CHARS;
    say(out,
        "The key is the right length but has %zu character%s a key never has; character %zu "
        "is %s. After pk_ a key has only A-Z, a-z and 0-9: copy it again from Klaviyo.",
        bad, bad == 1 ? "" : "s", first_pos, describe_bad_char(first_cp));
}

static void check_other(const unsigned char *s, size_t n, struct keyfmt_result *out)
{
    bool all_key_chars = out->chars == n;
    for (size_t i = 0; all_key_chars && i < n; i++)
        all_key_chars = is_key_char(s[i]);
    if (all_key_chars && n == KEYFMT_PUBLIC_LEN) {
        out->verdict = KEYFMT_PUBLIC_KEY;
        say(out, "This is your Public API Key (site ID), which is 6 characters. Cadence needs a "
                 "Private API Key: in Klaviyo open Settings \xE2\x86\x92 API Keys and click Create "
                 "Private API Key. It starts with pk_ followed by 34 characters.");
        return;
    }
    out->verdict = KEYFMT_WRONG_PREFIX;
    if (n >= 3 && (s[0] == 'p' || s[0] == 'P') && (s[1] == 'k' || s[1] == 'K') && s[2] == '_') {
        say(out,
            "The key starts with %c%c_, but a Klaviyo private key starts with a lower-case "
            "pk_ (your keyboard may have capitalised it); " IT_IS ".",
            s[0], s[1]);
        return;
    }
    if (find(s, n, KEYFMT_PREFIX, 3) < n) {
        say(out, "There is other text before pk_ in what you pasted. Copy only the key, "
                 "from pk_ to its end; " KEY_SHAPE ".");
        return;
    }
    /* Name a short prefix such as sk_ or rk_; it says which key was copied without revealing it. */
    size_t us = n >= 2 && s[1] == '_' ? 1 : n >= 3 && s[2] == '_' ? 2 : 0;
    bool named = us > 0;
    for (size_t i = 0; i < us; i++)
        named = named && is_key_char(s[i]);
    if (named) {
        say(out,
            "This key starts with %.*s, not pk_: it is not a Klaviyo private key. In Klaviyo "
            "open Settings \xE2\x86\x92 API Keys and create a Private API Key; " IT_IS ".",
            (int)us + 1, (const char *)s);
        return;
    }
    say(out, "This does not start with pk_, so it is not a Klaviyo private key. In Klaviyo open "
             "Settings \xE2\x86\x92 API Keys and create a Private API Key; " IT_IS ".");
}

void keyfmt_check(const char *input, size_t len, struct keyfmt_result *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!input)
        len = 0;
    const unsigned char *s = (const unsigned char *)input;
    size_t start = 0, end = len;
    for (bool trimmed = true; trimmed && start < end;) {
        trimmed = false;
        for (size_t i = 0; i < sizeof trim_seqs / sizeof trim_seqs[0] && start < end; i++) {
            if (has_prefix(s + start, end - start, &trim_seqs[i])) {
                start += trim_seqs[i].len;
                trimmed = true;
            }
            if (start < end && has_suffix(s + start, end - start, &trim_seqs[i])) {
                end -= trim_seqs[i].len;
                trimmed = true;
            }
        }
    }
    out->start = start;
    out->len = end - start;
    const unsigned char *t = s ? s + start : NULL;
    size_t n = end - start;
    out->chars = n ? utf8_count(t, n) : 0;

    if (n == 0) {
        out->verdict = KEYFMT_EMPTY;
        say(out, "Nothing was pasted. Copy your Klaviyo private key (it starts with pk_) and "
                 "paste it here.");
        return;
    }
    for (size_t i = 0; i < sizeof mask_seqs / sizeof mask_seqs[0]; i++) {
        if (find(t, n, mask_seqs[i].bytes, mask_seqs[i].len) < n) {
            out->verdict = KEYFMT_MASKED;
            say(out,
                "This is the hidden (masked) form of a key, with dots or asterisks in place of "
                "characters. Paste the key itself; Klaviyo shows it only once, so if you no "
                "longer have it, create a new private key under Settings \xE2\x86\x92 API "
                "Keys.");
            return;
        }
    }
    if (n >= 3 && memcmp(t, KEYFMT_PREFIX, 3) == 0)
        check_pk_body(t, n, out);
    else
        check_other(t, n, out);
}

const char *keyfmt_verdict_name(enum keyfmt_verdict v)
{
    switch (v) {
    case KEYFMT_OK:
        return "ok";
    case KEYFMT_EMPTY:
        return "empty";
    case KEYFMT_TOO_SHORT:
        return "too_short";
    case KEYFMT_TOO_LONG:
        return "too_long";
    case KEYFMT_PUBLIC_KEY:
        return "public_key";
    case KEYFMT_MASKED:
        return "masked";
    case KEYFMT_WRONG_PREFIX:
        return "wrong_prefix";
    case KEYFMT_BAD_CHARS:
        return "bad_chars";
    }
    return "unknown";
}
