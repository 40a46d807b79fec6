/*
 * Fuzzes the web server's parsers of request bytes: application/x-www-form-urlencoded bodies
 * (web_form_parse) and the onboarding token shape check. Invariants: no crash; a parsed form
 * holds at most WEB_FORM_MAX_FIELDS fields whose values have no NUL inside; a token accepted as
 * well-formed has exactly WEB_TOKEN_LEN base64url characters.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "web/web_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct web_form f;
    if (web_form_parse((const char *)data, size, &f) == CAD_OK) {
        if (f.n > WEB_FORM_MAX_FIELDS)
            abort();
        for (size_t i = 0; i < f.n; i++)
            if (strlen(f.f[i].value) != f.f[i].len)
                abort();
        web_form_free(&f);
    }
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (onboard_token_wellformed(s)) {
        if (strlen(s) != WEB_TOKEN_LEN)
            abort();
        for (const char *p = s; *p; p++)
            if (!(*p == '-' || *p == '_' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                  (*p >= 'A' && *p <= 'Z')))
                abort();
    }
    free(s);
    return 0;
}
