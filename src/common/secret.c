/*
 * Secret storage in dedicated, locked, non-dumpable pages. Each secret is one mmap() of whole
 * pages with a small header in front of the bytes; that wastes a little memory per secret but
 * keeps secrets off the general heap, where freed memory could be reused or dumped unwiped.
 */
#include "common/secret.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/err.h"

struct cad_secret {
    size_t len;
    size_t map_len;
    bool locked;
    unsigned char data[]; /* len bytes + NUL */
};

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

/* secret_new without the SECRET_MAX check, for secret_read_fd's one byte of overflow probe. */
static int secret_alloc(cad_secret **out, size_t len)
{
    *out = NULL;
    size_t ps = page_size();
    size_t need = sizeof(struct cad_secret) + len + 1;
    size_t map_len = (need + ps - 1) / ps * ps;
    void *p = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return cad_fail(CAD_ENOMEM, "cannot allocate secret memory: %s", strerror(errno));
    cad_secret *s = p;
    s->len = len;
    s->map_len = map_len;
    /* Both are best effort: an unprivileged process may exceed RLIMIT_MEMLOCK. */
    s->locked = mlock(p, map_len) == 0;
    (void)madvise(p, map_len, MADV_DONTDUMP);
    *out = s;
    return CAD_OK;
}

int secret_new(cad_secret **out, size_t len)
{
    *out = NULL;
    if (len > SECRET_MAX)
        return cad_fail(CAD_EINVAL, "secret of %zu bytes is longer than the %d-byte limit", len,
                        SECRET_MAX);
    return secret_alloc(out, len);
}

int secret_from(cad_secret **out, const void *data, size_t len)
{
    int rc = secret_new(out, len);
    if (rc == CAD_OK && len)
        memcpy((*out)->data, data, len);
    return rc;
}

int secret_read_fd(cad_secret **out, int fd, size_t max)
{
    *out = NULL;
    if (max > SECRET_MAX)
        return cad_fail(CAD_EINVAL, "cannot read more than %d bytes into a secret", SECRET_MAX);
    cad_secret *s;
    int rc = secret_alloc(&s, max + 1);
    if (rc)
        return rc;
    size_t got = 0;
    while (got < max + 1) {
        ssize_t n = read(fd, s->data + got, max + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            secret_free(s);
            return cad_fail(CAD_EIO, "cannot read the secret from standard input: %s",
                            strerror(errno));
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got > max) {
        secret_free(s);
        return cad_fail(CAD_EINVAL, "input is longer than %zu bytes; nothing was stored", max);
    }
    if (got && s->data[got - 1] == '\n')
        got--;
    if (got && s->data[got - 1] == '\r')
        got--;
    OPENSSL_cleanse(s->data + got, s->len - got);
    s->len = got;
    *out = s;
    return CAD_OK;
}

const unsigned char *secret_data(const cad_secret *s)
{
    return s->data;
}

unsigned char *secret_data_mut(cad_secret *s)
{
    return s->data;
}

size_t secret_len(const cad_secret *s)
{
    return s->len;
}

const char *secret_cstr(const cad_secret *s)
{
    return (const char *)s->data;
}

void secret_last4(const cad_secret *s, char buf[5])
{
    size_t n = s->len < 4 ? s->len : 4;
    memcpy(buf, s->data + s->len - n, n);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] >= 0x7f)
            buf[i] = '?';
}

void secret_mask(const cad_secret *s, char *buf, size_t bufsize)
{
    if (!s || s->len == 0) {
        snprintf(buf, bufsize, "(empty)");
        return;
    }
    char last[5];
    /* Short secrets show less, so the mask never reveals more than half of one. */
    if (s->len < 12) {
        snprintf(buf, bufsize, "…");
        return;
    }
    secret_last4(s, last);
    bool pk = s->len > 3 && memcmp(s->data, "pk_", 3) == 0;
    snprintf(buf, bufsize, "%s…%s", pk ? "pk_" : "", last);
}

bool secret_equal(const cad_secret *a, const cad_secret *b)
{
    if (a->len != b->len)
        return false;
    return CRYPTO_memcmp(a->data, b->data, a->len) == 0;
}

void secret_free(cad_secret *s)
{
    if (!s)
        return;
    size_t map_len = s->map_len;
    bool locked = s->locked;
    OPENSSL_cleanse(s, map_len);
    if (locked)
        (void)munlock(s, map_len);
    (void)munmap(s, map_len);
}

void secret_harden_process(void)
{
    struct rlimit none = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &none);
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}
