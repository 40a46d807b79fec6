/*
 * The two ways a message leaves: SMTP through libcurl, or an .eml file in the data directory.
 *
 * SMTP: smtp:// to anything but loopback must upgrade with STARTTLS (CURLUSESSL_ALL: curl gives up
 * rather than send in the clear); on loopback STARTTLS is used when the server offers it. smtps://
 * is TLS from the first byte. Certificates are verified (curl's defaults). The password is handed
 * to curl from its cad_secret and nowhere else; the URL may carry no credentials, so it can be
 * shown and recorded. libcurl dot-stuffs the data, so a body line "." cannot end the message.
 *
 * .eml: one file per outbox id, written with fs_write_atomic (temp file, fsync, rename), so a
 * reader never sees half a message and writing it again after a crash leaves exactly one file.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "mail/mail_int.h"

int mail_smtp_url_check(const char *url, bool *starttls_required)
{
    if (starttls_required)
        *starttls_required = true;
    if (!url || !*url)
        return cad_fail(CAD_EINVAL, "no SMTP URL given");
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= 0x20 || *p >= 0x7F)
            return cad_fail(CAD_EINVAL, "the SMTP URL contains a space or control character");
    CURLU *u = curl_url();
    if (!u)
        return cad_fail(CAD_ENOMEM, "out of memory");
    int rc = CAD_OK;
    char *scheme = NULL, *host = NULL, *user = NULL, *query = NULL, *fragment = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        rc = cad_fail(CAD_EINVAL,
                      "the SMTP URL \"%s\" is not a URL such as smtp://mail.example:587", url);
        goto out;
    }
    if (strcmp(scheme, "smtp") != 0 && strcmp(scheme, "smtps") != 0) {
        rc = cad_fail(CAD_EINVAL, "the SMTP URL must start with smtp:// or smtps://, not %s://",
                      scheme);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
        /* Not repeated: what follows the scheme may be a password. */
        rc = cad_fail(CAD_EINVAL, "the SMTP URL carries a user name or password; put the user in "
                                  "CADENCE_SMTP_USER and the password in a file named by "
                                  "CADENCE_SMTP_PASSWORD_FILE");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_OK) {
        rc = cad_fail(CAD_EINVAL, "the SMTP URL may not have a query or fragment");
        goto out;
    }
    if (starttls_required && strcmp(scheme, "smtp") == 0)
        *starttls_required = !(strcmp(host, "127.0.0.1") == 0 || strcmp(host, "localhost") == 0 ||
                               strcmp(host, "[::1]") == 0);
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(query);
    curl_free(fragment);
    curl_url_cleanup(u);
    return rc;
}

struct upload {
    const char *data;
    size_t len, pos;
};

static size_t read_cb(char *buf, size_t size, size_t nitems, void *p)
{
    struct upload *up = p;
    size_t n = size * nitems;
    if (n > up->len - up->pos)
        n = up->len - up->pos;
    memcpy(buf, up->data + up->pos, n);
    up->pos += n;
    return n;
}

int mail_smtp_send(const struct mail_config *cfg, const char *from_addr, const char *to,
                   const char *msg, size_t len, struct mail_send_outcome *out)
{
    memset(out, 0, sizeof *out);
    bool starttls_required;
    int rc = mail_smtp_url_check(cfg->smtp_url, &starttls_required);
    if (rc)
        return rc;
    CURL *c = curl_easy_init();
    if (!c)
        return cad_fail(CAD_ENOMEM, "cannot start libcurl");
    char errbuf[CURL_ERROR_SIZE] = "";
    char env_from[MAIL_ADDR_MAX + 3], env_to[MAIL_ADDR_MAX + 3];
    snprintf(env_from, sizeof env_from, "<%s>", from_addr);
    snprintf(env_to, sizeof env_to, "<%s>", to);
    struct curl_slist *rcpt = curl_slist_append(NULL, env_to);
    struct upload up = {msg, len, 0};
    if (!rcpt) {
        curl_easy_cleanup(c);
        return cad_fail(CAD_ENOMEM, "out of memory");
    }
    curl_easy_setopt(c, CURLOPT_URL, cfg->smtp_url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(c, CURLOPT_USE_SSL,
                     (long)(starttls_required ? CURLUSESSL_ALL : CURLUSESSL_TRY));
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, env_from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(c, CURLOPT_READDATA, &up);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, cfg->timeout_s < 10 ? cfg->timeout_s : 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, cfg->timeout_s);
    if (cfg->smtp_user[0]) {
        curl_easy_setopt(c, CURLOPT_USERNAME, cfg->smtp_user);
        curl_easy_setopt(c, CURLOPT_PASSWORD,
                         cfg->smtp_password ? secret_cstr(cfg->smtp_password) : "");
    }
    CURLcode cc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    out->status = (int)code;
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(c);
    if (cc == CURLE_OK)
        return CAD_OK;
    snprintf(out->error, sizeof out->error, "%s%s%s (SMTP reply %ld)", curl_easy_strerror(cc),
             errbuf[0] ? ": " : "", errbuf, code);
    if (cc == CURLE_LOGIN_DENIED)
        return cad_fail(CAD_EAUTH, "the SMTP server refused the login: %s", out->error);
    if (code >= 500 && code < 600 && cc != CURLE_USE_SSL_FAILED) {
        out->permanent = true;
        return cad_fail(CAD_EREMOTE, "the SMTP server refused the message: %s", out->error);
    }
    if (code >= 400)
        return cad_fail(CAD_EREMOTE, "the SMTP server deferred the message: %s", out->error);
    return cad_fail(CAD_ENET, "cannot reach the SMTP server: %s", out->error);
}

int mail_eml_write(const struct mail_config *cfg, int64_t id, const char *msg, size_t len,
                   struct mail_send_outcome *out)
{
    memset(out, 0, sizeof *out);
    char path[4200];
    if (snprintf(path, sizeof path, "%s/%lld.eml", cfg->outbox_dir, (long long)id) >=
        (int)sizeof path)
        return cad_fail(CAD_EINVAL, "the outbox directory path is too long");
    int rc = fs_mkdir_p(cfg->outbox_dir, 0700);
    if (!rc)
        rc = fs_write_atomic(path, msg, len, 0600);
    if (rc) {
        snprintf(out->error, sizeof out->error, "%s", cad_errmsg());
        return rc;
    }
    out->status = 250;
    return CAD_OK;
}
