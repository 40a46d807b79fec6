/*
 * The Klaviyo private key format check: one pure function, used by `cadence key check`,
 * `cadence key set`, the onboarding page (server side; the page's script mirrors the rules) and
 * fuzzed. It tidies a paste (surrounding whitespace, newlines, straight and typographic quotes)
 * and then tells apart every common mistake with its own message for the person who pasted it.
 *
 * The rules, in the order they are applied:
 *   1. Tidy: strip from both ends, repeatedly, ASCII whitespace (space, \t, \n, \r, \v, \f),
 *      U+00A0 (no-break space), the zero-width characters U+200B, U+200C, U+200D, U+2060 and
 *      U+FEFF, and the quotes ' " ` and U+2018 U+2019 U+201C U+201D.
 *   2. Nothing left: KEYFMT_EMPTY.
 *   3. Contains * or one of U+2022 (•), U+25CF (●), U+2026 (…): KEYFMT_MASKED.
 *   4. Starts with pk_: fewer than 34 characters after it is KEYFMT_TOO_SHORT, more is
 *      KEYFMT_TOO_LONG; exactly 34 is KEYFMT_OK when all are A-Z, a-z, 0-9, else KEYFMT_BAD_CHARS.
 *   5. Exactly 6 ASCII letters and digits: KEYFMT_PUBLIC_KEY.
 *   6. Anything else: KEYFMT_WRONG_PREFIX.
 * Characters are UTF-8 code points; a byte that is not part of a valid UTF-8 sequence counts as
 * one character. Messages name at most a 3-character prefix of the paste (such as "sk_") and
 * otherwise only counts and positions, so they can be logged and shown without leaking a key.
 */
#ifndef CADENCE_KEYFMT_KEYFMT_H
#define CADENCE_KEYFMT_KEYFMT_H

#include <stddef.h>

#define KEYFMT_PREFIX     "pk_"
#define KEYFMT_BODY_LEN   34
#define KEYFMT_KEY_LEN    37 /* pk_ + 34 */
#define KEYFMT_PUBLIC_LEN 6

/* Postscript's public keys also start with pk_, and Postscript publishes no length for them, so
 * no rule above can tell one from a Klaviyo private key: a pasted Postscript public key passes or
 * fails the format check like any pk_ text, and Klaviyo rejects it. Whatever reports a rejected
 * Klaviyo key adds this sentence. */
#define KEYFMT_POSTSCRIPT_NOTE                                                                     \
    "If you copied it from Postscript: Postscript's public keys also start with pk_ and look "     \
    "like a Klaviyo key, but only a Klaviyo private key (Klaviyo: Settings \xE2\x86\x92 API "      \
    "Keys) works here. The Postscript key belongs in the SMS step, and there it must be the "      \
    "private key (sk_)."

enum keyfmt_verdict {
    KEYFMT_OK,           /* pk_ + 34 key characters */
    KEYFMT_EMPTY,        /* nothing (or only whitespace/quotes) pasted */
    KEYFMT_TOO_SHORT,    /* pk_ + fewer than 34 */
    KEYFMT_TOO_LONG,     /* pk_ + more than 34 */
    KEYFMT_PUBLIC_KEY,   /* a 6-character public key / site id */
    KEYFMT_MASKED,       /* contains •, * or … : the masked key was copied */
    KEYFMT_WRONG_PREFIX, /* another prefix (sk_, rk_, ...) or none */
    KEYFMT_BAD_CHARS,    /* pk_ + 34 but with characters a key never has (spaces, symbols) */
};

struct keyfmt_result {
    enum keyfmt_verdict verdict;
    size_t start, len; /* the tidied paste within the input, in bytes (the key for KEYFMT_OK) */
    size_t chars;      /* characters (UTF-8 code points) in the tidied paste */
    char message[256]; /* for the person: what is wrong and what to do; never echoes the input */
};

/* Checks `len` bytes at `input` (need not be NUL-terminated; any bytes; NULL only with len 0).
 * Fills every field of *out. Never fails and never allocates. */
void keyfmt_check(const char *input, size_t len, struct keyfmt_result *out);

/* "ok", "empty", "too_short", ... (stable names for JSON and the page's script). */
const char *keyfmt_verdict_name(enum keyfmt_verdict v);

#endif
