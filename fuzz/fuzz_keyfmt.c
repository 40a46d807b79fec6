/*
 * Fuzzes keyfmt_check with arbitrary bytes and checks what must hold for every input:
 *   - a verdict and a complete, non-empty message are always set;
 *   - the tidied span lies inside the input, and is empty exactly for KEYFMT_EMPTY;
 *   - KEYFMT_OK means exactly pk_ + 34 ASCII letters and digits (37 bytes, 37 characters);
 *   - the message does not echo the paste. Literal containment alone cannot decide that: the
 *     messages are helpful English, so a paste such as "characters (37 in all)." is found in its
 *     own message as fixed text (libFuzzer finds that within a second). So the target also runs
 *     a twin input in which every byte after the first three of the tidied paste that carries no
 *     meaning for the rules (letters and digits other than p and k, and plain symbols) is swapped
 *     for another of its kind. The twin must get the same message byte for byte, which proves
 *     the message depends on none of those bytes; and a tidied paste of 8 or more bytes that has
 *     no such byte (so the twin cannot tell echo from fixed text) must not appear in the message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyfmt/keyfmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Two cycles; each byte maps to the next of its cycle. Neither holds p, k, _, *, whitespace or
 * quotes, which the rules look at, nor bytes >= 0x80, which would change UTF-8 decoding. */
static const char swap_alnum[] = "abcdefghijlmnoqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
static const char swap_symbol[] = "!#$%&()+,-./:;<=>?@[\\]^{|}~";

static uint8_t swapped(uint8_t c)
{
    const char *cycles[] = {swap_alnum, swap_symbol};
    for (size_t k = 0; k < 2; k++) {
        const char *p = c ? strchr(cycles[k], c) : NULL;
        if (p)
            return (uint8_t)(p[1] ? p[1] : cycles[k][0]);
    }
    return c;
}

static int is_key_char(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int contains(const char *hay, size_t n, const uint8_t *needle, size_t m)
{
    for (size_t i = 0; m <= n && i <= n - m; i++) {
        if (memcmp(hay + i, needle, m) == 0)
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct keyfmt_result r;
    keyfmt_check((const char *)data, size, &r);

    size_t mlen = strnlen(r.message, sizeof r.message);
    if (mlen == 0 || mlen == sizeof r.message)
        abort();
    if (strcmp(keyfmt_verdict_name(r.verdict), "unknown") == 0)
        abort();
    if (r.start > size || r.len > size - r.start || r.chars > r.len)
        abort();
    if ((r.len == 0) != (r.verdict == KEYFMT_EMPTY))
        abort();

    const uint8_t *t = data + r.start;
    if (r.verdict == KEYFMT_OK) {
        if (r.len != KEYFMT_KEY_LEN || r.chars != KEYFMT_KEY_LEN ||
            memcmp(t, KEYFMT_PREFIX, 3) != 0)
            abort();
        for (size_t i = 3; i < r.len; i++) {
            if (!is_key_char(t[i]))
                abort();
        }
    }

    if (size == 0)
        return 0;
    uint8_t *twin = malloc(size);
    if (!twin)
        return 0;
    memcpy(twin, data, size);
    int swaps = 0;
    for (size_t i = r.start + 3; i < r.start + r.len; i++) {
        twin[i] = swapped(data[i]);
        swaps |= twin[i] != data[i];
    }
    struct keyfmt_result rt;
    keyfmt_check((const char *)twin, size, &rt);
    free(twin);
    if (rt.verdict != r.verdict || rt.start != r.start || rt.len != r.len || rt.chars != r.chars ||
        strcmp(rt.message, r.message) != 0)
        abort();
    if (!swaps && r.len >= 8 && contains(r.message, mlen, t, r.len))
        abort();
    return 0;
}
