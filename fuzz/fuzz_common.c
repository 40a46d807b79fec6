/*
 * Fuzzes the small parsers in src/common that read outside input: time_parse (audit filters on
 * the command line), hex_decode and base64_decode (stored text read back from the database), and
 * log_redact (every log line and error message). Invariants: no crash, decoders never report
 * more bytes than they could hold, and after redaction no private-key-shaped run is left.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    int64_t ms;
    (void)time_parse(s, &ms);

    unsigned char bytes[64];
    size_t want = strlen(s) / 2;
    if (want <= sizeof bytes)
        (void)hex_decode(s, bytes, want);

    unsigned char *decoded = NULL;
    size_t decoded_len = 0;
    if (base64_decode(s, &decoded, &decoded_len) == CAD_OK) {
        if (decoded_len > strlen(s) / 4 * 3)
            abort();
        free(decoded);
    }

    size_t len = strlen(s);
    log_redact(s);
    if (strlen(s) != len)
        abort();
    for (char *p = s; (p = strstr(p, "pk_")) != NULL; p += 3) {
        size_t run = 0;
        while (key_char(p[3 + run]))
            run++;
        if (run >= 20)
            abort();
    }
    free(s);
    return 0;
}
