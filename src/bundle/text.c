/*
 * Text checks shared by the bundle loader: strict UTF-8 (no overlong forms, no surrogates,
 * nothing past U+10FFFF), what makes a file or asset name safe, line/column positions, URLs and
 * JSON pointers. Everything here is pure and bounded by its input.
 */
#include <stdio.h>
#include <string.h>

#include "bundle/bundle_int.h"

#define NAME_MAX_BYTES 200

bool text_utf8_valid(const char *str, size_t n, size_t *bad_at)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned min, cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, min = 0x80, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, min = 0x800, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, min = 0x10000, cp = c & 0x07;
        } else {
            goto bad;
        }
        if (n - i < len)
            goto bad;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                goto bad;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            goto bad;
        i += len;
    }
    return true;
bad:
    if (bad_at)
        *bad_at = i;
    return false;
}

static const char *controls_problem(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7F)
            return "contains a control character (tab, newline or similar)";
    }
    return NULL;
}

const char *text_name_problem(const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return "is empty";
    if (n > NAME_MAX_BYTES)
        return "is longer than 200 bytes";
    if (!text_utf8_valid(s, n, NULL))
        return "is not valid UTF-8";
    if (s[0] == ' ' || s[n - 1] == ' ')
        return "starts or ends with a space";
    return controls_problem(s);
}

const char *text_file_name_problem(const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return "is empty";
    if (s[0] == '.')
        return "is hidden (starts with a dot); bundles hold no hidden files: delete it or "
               "rename it";
    if (strstr(s, ".."))
        return "contains \"..\"; rename it";
    if (n > 255)
        return "is longer than 255 bytes";
    if (!text_utf8_valid(s, n, NULL))
        return "is not valid UTF-8; rename it";
    if (strchr(s, '\\'))
        return "contains a backslash; rename it";
    return controls_problem(s);
}

void text_line_col(const char *buf, size_t at, int *line, int *column)
{
    int ln = 1, col = 1;
    for (size_t i = 0; i < at; i++) {
        if (buf[i] == '\n') {
            ln++;
            col = 1;
        } else if (((unsigned char)buf[i] & 0xC0) != 0x80) {
            col++;
        }
    }
    *line = ln;
    *column = col;
}

bool text_url_ok(const char *s, bool https_only)
{
    size_t skip;
    if (strncmp(s, "https://", 8) == 0)
        skip = 8;
    else if (!https_only && strncmp(s, "http://", 7) == 0)
        skip = 7;
    else
        return false;
    const char *host = s + skip;
    if (*host == '\0' || *host == '/' || *host == ':' || *host == '?' || *host == '#')
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p == 0x7F)
            return false;
    }
    return true;
}

void json_pointer_append(char *out, size_t outsize, const char *base, const char *token)
{
    char tmp[256];
    size_t n = 0;
    if (strlen(base) >= outsize) {
        snprintf(out, outsize, "%s", base);
        return;
    }
    for (const char *p = token; *p && n + 3 < sizeof tmp; p++) {
        if (*p == '~') {
            tmp[n++] = '~';
            tmp[n++] = '0';
        } else if (*p == '/') {
            tmp[n++] = '~';
            tmp[n++] = '1';
        } else {
            tmp[n++] = *p;
        }
    }
    tmp[n] = '\0';
    char joined[520];
    snprintf(joined, sizeof joined, "%s/%s", base, tmp);
    snprintf(out, outsize, "%.*s", (int)(outsize - 1), joined);
}

void json_pointer_index(char *out, size_t outsize, const char *base, size_t index)
{
    char tok[32];
    snprintf(tok, sizeof tok, "%zu", index);
    json_pointer_append(out, outsize, base, tok);
}
