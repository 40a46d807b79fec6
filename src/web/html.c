/*
 * The output buffer every page is written into, and the one HTML escaper. Pages are built with
 * wbuf_fmt(), whose %s escapes, so text from the store or the client cannot become markup; raw
 * HTML has to be asked for with %S.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "web/web_internal.h"

static bool grow(struct wbuf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2)
            goto fail;
        cap *= 2;
    }
    char *p = malloc(cap);
    if (!p)
        goto fail;
    if (b->data) {
        memcpy(p, b->data, b->len);
        OPENSSL_cleanse(b->data, b->cap);
        free(b->data);
    }
    b->data = p;
    b->cap = cap;
    return true;
fail:
    wbuf_free(b);
    b->failed = true;
    return false;
}

void wbuf_put(struct wbuf *b, const void *data, size_t n)
{
    if (!grow(b, n))
        return;
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = 0;
}

void wbuf_puts(struct wbuf *b, const char *s)
{
    wbuf_put(b, s, strlen(s));
}

void wbuf_html_n(struct wbuf *b, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep;
        switch (s[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            continue;
        }
        wbuf_put(b, s + run, i - run);
        wbuf_puts(b, rep);
        run = i + 1;
    }
    wbuf_put(b, s + run, n - run);
}

void wbuf_html(struct wbuf *b, const char *s)
{
    if (s)
        wbuf_html_n(b, s, strlen(s));
}

void wbuf_fmt(struct wbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const char *run = fmt;
    for (const char *p = fmt; *p; p++) {
        if (*p != '%')
            continue;
        wbuf_put(b, run, (size_t)(p - run));
        char num[32];
        switch (p[1]) {
        case 's':
            wbuf_html(b, va_arg(ap, const char *));
            break;
        case 'S': {
            const char *raw = va_arg(ap, const char *);
            if (raw)
                wbuf_puts(b, raw);
            break;
        }
        case 'd':
            snprintf(num, sizeof num, "%d", va_arg(ap, int));
            wbuf_puts(b, num);
            break;
        case 'D':
            snprintf(num, sizeof num, "%" PRId64, va_arg(ap, int64_t));
            wbuf_puts(b, num);
            break;
        case '%':
            wbuf_puts(b, "%");
            break;
        default:
            break;
        }
        if (p[1])
            p++;
        run = p + 1;
    }
    wbuf_puts(b, run);
    va_end(ap);
}

void wbuf_free(struct wbuf *b)
{
    if (b->data) {
        OPENSSL_cleanse(b->data, b->cap);
        free(b->data);
    }
    b->data = NULL;
    b->len = b->cap = 0;
}
