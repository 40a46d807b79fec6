/*
 * CSRF tokens for the onboarding forms, and the server key they are made with. A token is an HMAC
 * of the link's hash, so it needs no storage, is bound to one link (a form of one brand cannot be
 * replayed at another link) and dies with it. The key lives in data_dir/web.key (0600) so that
 * pages stay valid across restarts and across instances sharing a data directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/err.h"
#include "common/util.h"
#include "web/web_internal.h"

#define CSRF_CONTEXT "cadence-csrf/1|"

void web_csrf_token(const cad_secret *server_key, const char *link_hash,
                    char out[WEB_TOKEN_LEN + 1])
{
    char msg[128];
    int n = snprintf(msg, sizeof msg, CSRF_CONTEXT "%s", link_hash);
    unsigned char mac[SHA256_LEN];
    hmac_sha256(secret_data(server_key), secret_len(server_key), msg,
                n < 0                    ? 0
                : (size_t)n < sizeof msg ? (size_t)n
                                         : sizeof msg - 1,
                mac);
    base64url_encode(mac, sizeof mac, out);
}

bool web_csrf_check(const cad_secret *server_key, const char *link_hash, const char *given)
{
    if (!given || strlen(given) != WEB_TOKEN_LEN)
        return false;
    char want[WEB_TOKEN_LEN + 1];
    web_csrf_token(server_key, link_hash, want);
    return CRYPTO_memcmp(want, given, WEB_TOKEN_LEN) == 0;
}

int web_server_key_load(const char *data_dir, cad_secret **out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/web.key", data_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT) {
        unsigned char raw[32];
        char hex[2 * sizeof raw + 2];
        int rc = random_bytes(raw, sizeof raw);
        hex_encode(raw, sizeof raw, hex);
        hex[2 * sizeof raw] = '\n';
        hex[2 * sizeof raw + 1] = '\0';
        if (!rc)
            rc = fs_write_atomic(path, hex, strlen(hex), 0600);
        OPENSSL_cleanse(raw, sizeof raw);
        OPENSSL_cleanse(hex, sizeof hex);
        if (rc)
            return rc;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    }
    if (fd < 0)
        return cad_fail(CAD_EIO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || (sb.st_mode & 0077)) {
        close(fd);
        return cad_fail(CAD_EPERM, "%s is accessible by group or others; run `chmod 600 %s`", path,
                        path);
    }
    cad_secret *hex = NULL;
    int rc = secret_read_fd(&hex, fd, 128);
    close(fd);
    if (rc)
        return rc;
    if (secret_len(hex) != 64 || (rc = secret_new(out, 32)) != CAD_OK ||
        hex_decode(secret_cstr(hex), secret_data_mut(*out), 32) != CAD_OK) {
        secret_free(hex);
        secret_free(*out);
        *out = NULL;
        return rc ? rc
                  : cad_fail(CAD_ECORRUPT,
                             "%s should hold 64 hex digits; remove it to make a new "
                             "one (open onboarding pages will need a reload)",
                             path);
    }
    secret_free(hex);
    return CAD_OK;
}
