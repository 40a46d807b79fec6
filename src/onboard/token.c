/*
 * Onboarding tokens: 32 bytes from the CSPRNG in base64url (URL-safe, no padding), and the SHA-256
 * that is all the store ever sees of them.
 */
#include <string.h>

#include "common/util.h"
#include "onboard/onboard.h"

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void base64url_encode(const unsigned char *in, size_t n, char *out)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[j++] = b64url[(v >> 18) & 63];
        out[j++] = b64url[(v >> 12) & 63];
        if (i + 1 < n)
            out[j++] = b64url[(v >> 6) & 63];
        if (i + 2 < n)
            out[j++] = b64url[v & 63];
    }
    out[j] = 0;
}

int onboard_token_new(char out[ONBOARD_TOKEN_LEN + 1])
{
    unsigned char raw[32];
    int rc = random_bytes(raw, sizeof raw);
    if (rc)
        return rc;
    base64url_encode(raw, sizeof raw, out);
    memset(raw, 0, sizeof raw);
    return 0;
}

bool onboard_token_wellformed(const char *s)
{
    if (!s || strlen(s) != ONBOARD_TOKEN_LEN)
        return false;
    for (const char *p = s; *p; p++)
        if (!strchr(b64url, *p))
            return false;
    /* 32 bytes fill only the top 4 bits of the last character's 6. */
    return (strchr(b64url, s[ONBOARD_TOKEN_LEN - 1]) - b64url) % 4 == 0;
}

void onboard_token_hash(const char *token, char out[2 * 32 + 1])
{
    sha256_hex(token, strlen(token), out);
}
