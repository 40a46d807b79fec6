/*
 * The Klaviyo private key format check: one pure function, used by `cadence key check`,
 * `cadence key set`, the onboarding page (server side; the page's script mirrors the rules) and
 * fuzzed. It tidies a paste (surrounding whitespace, newlines, straight and typographic quotes)
 * and then tells apart every common mistake with its own message for the person who pasted it.
 */
#ifndef CADENCE_KEYFMT_KEYFMT_H
#define CADENCE_KEYFMT_KEYFMT_H

#include <stddef.h>

#define KEYFMT_PREFIX     "pk_"
#define KEYFMT_BODY_LEN   34
#define KEYFMT_KEY_LEN    37 /* pk_ + 34 */
#define KEYFMT_PUBLIC_LEN 6

enum keyfmt_verdict {
    KEYFMT_OK,           /* pk_ + 34 key characters */
    KEYFMT_EMPTY,        /* nothing (or only whitespace/quotes) pasted */
    KEYFMT_TOO_SHORT,    /* pk_ + fewer than 34 */
    KEYFMT_TOO_LONG,     /* pk_ + more than 34 */
    KEYFMT_PUBLIC_KEY,   /* a 6-character public key / site id */
    KEYFMT_MASKED,       /* contains • or * : the masked key was copied */
    KEYFMT_WRONG_PREFIX, /* another prefix (sk_, rk_, ...) or none */
    KEYFMT_BAD_CHARS,    /* pk_ + 34 but with characters a key never has (spaces, symbols) */
};

struct keyfmt_result {
    enum keyfmt_verdict verdict;
    size_t start, len;  /* the tidied key within the input (valid for KEYFMT_OK) */
    size_t chars;       /* characters (UTF-8 code points) in the tidied paste */
    char message[256];  /* for the person: what is wrong and what to do; never echoes the input */
};

/* Checks `len` bytes at `input` (need not be NUL-terminated; any bytes). Never fails. */
void keyfmt_check(const char *input, size_t len, struct keyfmt_result *out);

/* "ok", "empty", "too_short", ... (stable names for JSON and the page's script). */
const char *keyfmt_verdict_name(enum keyfmt_verdict v);

#endif
