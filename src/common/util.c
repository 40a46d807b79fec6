/* Shared helpers; see util.h. Crypto primitives come from OpenSSL, never hand-rolled. */
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/embed.h"
#include "common/err.h"

int64_t time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void time_format_ms(int64_t ms, char *buf, size_t bufsize)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, bufsize, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

int time_parse(const char *s, int64_t *out_ms)
{
    struct tm tm = {0};
    int ms = 0;
    char *end;
    if (!s || !*s)
        return cad_fail(CAD_EINVAL, "empty time");
    long long n = strtoll(s, &end, 10);
    if (*end == '\0' && end - s > 8) {
        *out_ms = n;
        return CAD_OK;
    }
    end = strptime(s, "%Y-%m-%d", &tm);
    if (end && (*end == 'T' || *end == ' ')) {
        char *t = strptime(end + 1, "%H:%M", &tm);
        if (t && *t == ':')
            t = strptime(t + 1, "%S", &tm);
        if (t && *t == '.') {
            ms = (int)strtol(t + 1, &t, 10) % 1000;
        }
        end = t;
    }
    if (end && *end == 'Z')
        end++;
    if (!end || *end != '\0')
        return cad_fail(CAD_EINVAL,
                        "\"%s\" is not a time; use 2026-11-26, 2026-11-26T19:22:55Z or ms since "
                        "the epoch",
                        s);
    *out_ms = (int64_t)timegm(&tm) * 1000 + ms;
    return CAD_OK;
}

void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int hex_decode(const char *in, unsigned char *out, size_t n)
{
    if (strlen(in) != 2 * n)
        return cad_fail(CAD_EINVAL, "expected %zu hex digits, got %zu", 2 * n, strlen(in));
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return cad_fail(CAD_EINVAL, "bad hex digit at position %zu", 2 * i);
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return CAD_OK;
}

int base64_encode(const unsigned char *in, size_t n, char **out)
{
    size_t cap = 4 * ((n + 2) / 3) + 1;
    *out = malloc(cap);
    if (!*out)
        return cad_fail(CAD_ENOMEM, "out of memory");
    EVP_EncodeBlock((unsigned char *)*out, in, (int)n);
    return CAD_OK;
}

int base64_decode(const char *in, unsigned char **out, size_t *out_len)
{
    size_t len = strlen(in);
    *out = NULL;
    if (len % 4 != 0)
        return cad_fail(CAD_EINVAL, "base64 text has a length that is not a multiple of 4");
    unsigned char *buf = malloc(len / 4 * 3 + 1);
    if (!buf)
        return cad_fail(CAD_ENOMEM, "out of memory");
    int n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)len);
    if (n < 0) {
        free(buf);
        return cad_fail(CAD_EINVAL, "malformed base64 text");
    }
    /* EVP_DecodeBlock counts padding as zero bytes; take them back off. */
    if (len >= 1 && in[len - 1] == '=')
        n--;
    if (len >= 2 && in[len - 2] == '=')
        n--;
    *out = buf;
    *out_len = (size_t)n;
    return CAD_OK;
}

void sha256(const void *data, size_t n, unsigned char out[SHA256_LEN])
{
    unsigned int len = SHA256_LEN;
    EVP_Digest(data, n, out, &len, EVP_sha256(), NULL);
}

void sha256_hex(const void *data, size_t n, char out[2 * SHA256_LEN + 1])
{
    unsigned char md[SHA256_LEN];
    sha256(data, n, md);
    hex_encode(md, SHA256_LEN, out);
}

void hmac_sha256(const void *key, size_t key_len, const void *data, size_t n,
                 unsigned char out[SHA256_LEN])
{
    unsigned int len = SHA256_LEN;
    HMAC(EVP_sha256(), key, (int)key_len, data, n, out, &len);
}

int random_bytes(void *buf, size_t n)
{
    if (RAND_bytes(buf, (int)n) != 1)
        return cad_fail(CAD_ECRYPTO, "the system's random number generator failed");
    return CAD_OK;
}

int fs_mkdir_p(const char *path, unsigned mode)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return cad_fail(CAD_EINVAL, "path too long: %s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, mode) != 0 && errno != EEXIST)
            return cad_fail(CAD_EIO, "cannot create %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, mode) != 0 && errno != EEXIST)
        return cad_fail(CAD_EIO, "cannot create %s: %s", tmp, strerror(errno));
    return CAD_OK;
}

static int fsync_dir_of(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return cad_fail(CAD_EIO, "cannot open the directory of %s: %s", path, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? CAD_OK : cad_fail(CAD_EIO, "fsync failed for %s", path);
}

int fs_write_atomic(const char *path, const void *data, size_t n, unsigned mode)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return cad_fail(CAD_EINVAL, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return cad_fail(CAD_EIO, "cannot create %s: %s", tmp, strerror(errno));
    const unsigned char *p = data;
    size_t left = n;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return cad_fail(CAD_EIO, "cannot write %s: %s", tmp, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return cad_fail(CAD_EIO, "cannot sync %s: %s", tmp, strerror(e));
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return cad_fail(CAD_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    return fsync_dir_of(path);
}

int fs_read_all(const char *path, size_t max, char **out, size_t *out_len)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno, code = e == ENOENT ? CAD_ENOTFOUND : CAD_EIO;
        return cad_fail(code, "cannot open %s: %s", path, strerror(e));
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (len > max) {
            free(buf);
            fclose(f);
            return cad_fail(CAD_EINVAL, "%s is larger than %zu bytes", path, max);
        }
        if (got == 0 || len < cap)
            break;
        cap *= 2;
        char *nb = realloc(buf, cap + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
    }
    int err = ferror(f);
    fclose(f);
    if (!buf)
        return cad_fail(CAD_ENOMEM, "out of memory reading %s", path);
    if (err) {
        free(buf);
        return cad_fail(CAD_EIO, "cannot read %s", path);
    }
    buf[len] = '\0';
    *out = buf;
    if (out_len)
        *out_len = len;
    return CAD_OK;
}

bool fs_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

void slugify(const char *name, char *out, size_t max)
{
    size_t n = 0;
    bool dash = false;
    for (const unsigned char *p = (const unsigned char *)name; *p && n + 1 < max; p++) {
        if (isalnum(*p)) {
            if (dash && n > 0)
                out[n++] = '-';
            if (n + 1 < max)
                out[n++] = (char)tolower(*p);
            dash = false;
        } else {
            dash = true;
        }
    }
    out[n] = '\0';
}

char *cad_strdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        cad_fail(CAD_ENOMEM, "out of memory");
    return d;
}

const struct cad_embedded *cad_embedded_find(const struct cad_embedded *table, const char *name)
{
    for (; table->name; table++)
        if (strcmp(table->name, name) == 0)
            return table;
    return NULL;
}
