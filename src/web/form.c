/*
 * application/x-www-form-urlencoded parsing: the one door for form bodies from the outside. The
 * body is already bounded by the server (64 KiB); here every escape is checked, NUL bytes and
 * repeated names are refused, and values are wiped when the form is freed, since one of them may
 * be a key.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/err.h"
#include "web/web_internal.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes s[0..n) into a new NUL-terminated buffer; NULL (with *bad set) for a malformed escape
 * or a NUL byte. */
static char *decode(const char *s, size_t n, size_t *out_len, bool *bad)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                OPENSSL_cleanse(out, n + 1);
                free(out);
                *bad = true;
                return NULL;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == 0) {
            OPENSSL_cleanse(out, n + 1);
            free(out);
            *bad = true;
            return NULL;
        }
        out[j++] = c;
    }
    out[j] = 0;
    *out_len = j;
    return out;
}

int web_form_parse(const char *body, size_t len, struct web_form *out)
{
    memset(out, 0, sizeof *out);
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && body[end] != '&')
            end++;
        if (end > i) {
            size_t eq = i;
            while (eq < end && body[eq] != '=')
                eq++;
            if (out->n == WEB_FORM_MAX_FIELDS) {
                web_form_free(out);
                return cad_fail(CAD_EINVAL, "the form has more than %d fields",
                                WEB_FORM_MAX_FIELDS);
            }
            bool bad = false;
            size_t nlen = 0, vlen = 0;
            char *name = decode(body + i, eq - i, &nlen, &bad);
            char *value =
                name ? decode(body + eq + (eq < end), end - eq - (eq < end), &vlen, &bad) : NULL;
            if (!name || !value) {
                free(name);
                web_form_free(out);
                return bad ? cad_fail(CAD_EINVAL,
                                      "the form has a malformed %%-escape or a NUL byte")
                           : cad_fail(CAD_ENOMEM, "out of memory");
            }
            bool dup = web_form_get(out, name) != NULL;
            if (nlen == 0 || nlen > 64 || dup) {
                free(name);
                OPENSSL_cleanse(value, vlen);
                free(value);
                web_form_free(out);
                return cad_fail(CAD_EINVAL, dup ? "a form field was sent twice"
                                                : "a form field has an empty or overlong name");
            }
            out->f[out->n].name = name;
            out->f[out->n].value = value;
            out->f[out->n].len = vlen;
            out->n++;
        }
        i = end + 1;
    }
    return CAD_OK;
}

const char *web_form_get(const struct web_form *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->f[i].name, name) == 0)
            return f->f[i].value;
    return NULL;
}

void web_form_free(struct web_form *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->f[i].name);
        OPENSSL_cleanse(f->f[i].value, f->f[i].len);
        free(f->f[i].value);
    }
    memset(f, 0, sizeof *f);
}
