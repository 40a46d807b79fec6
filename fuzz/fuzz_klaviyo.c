/*
 * Fuzzes what the Klaviyo client reads from outside: error documents (klaviyo_error_parse), the
 * links.next origin check (klaviyo_same_origin: a hostile response must never send the key to
 * another host) and the page-size table lookup by path. Invariants: no crash; parsed members stay
 * NUL-terminated within their fields; an URL accepted as same-origin starts with the base URL's
 * scheme and host.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "klaviyo/client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct klaviyo_error e;
    size_t n = 0;
    if (klaviyo_error_parse((const char *)data, size, 400, &e, &n) == CAD_OK) {
        if (n == 0 || strnlen(e.detail, sizeof e.detail) == sizeof e.detail ||
            strnlen(e.code, sizeof e.code) == sizeof e.code)
            abort();
    }

    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    static const char base[] = "https://a.klaviyo.com";
    if (klaviyo_same_origin(base, s)) {
        if (strncasecmp(s, base, strlen(base)) != 0)
            abort();
        char c = s[strlen(base)];
        if (c != '\0' && c != '/' && c != ':' && c != '?' && c != '#')
            abort();
    }
    (void)klaviyo_page_size_max(s);
    char filter[256];
    (void)klaviyo_filter_equals(filter, sizeof filter, "name", s);
    free(s);
    return 0;
}
