/*
 * Building messages: the three texts Cadence sends to brands, and the one function that turns
 * values into an RFC 5322 message.
 *
 * Header values are checked before anything is written: a CR or LF in a subject or address would
 * let its author add headers (Bcc: ...) or end the headers early, so any control character is
 * refused rather than stripped. Non-ASCII subjects and display names become RFC 2047 "B"
 * encoded-words of at most 75 characters, cut only between UTF-8 characters, on folded lines.
 * Bodies are UTF-8 text/plain: sent as 7bit when they are ASCII with lines of at most 998 bytes,
 * as quoted-printable (RFC 2045, lines of at most 76) otherwise.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/err.h"
#include "common/util.h"
#include "mail/mail.h"
#include "mail/mail_int.h"

int mbuf_add(struct mbuf *b, const void *data, size_t n)
{
    if (b->failed)
        return CAD_ENOMEM;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) {
            b->failed = true;
            return cad_fail(CAD_ENOMEM, "out of memory");
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return CAD_OK;
}

int mbuf_str(struct mbuf *b, const char *s)
{
    return mbuf_add(b, s, strlen(s));
}

int mbuf_printf(struct mbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return cad_fail(CAD_EINVAL, "cannot format text");
    char *tmp = malloc((size_t)n + 1);
    if (!tmp) {
        b->failed = true;
        return cad_fail(CAD_ENOMEM, "out of memory");
    }
    va_start(ap, fmt);
    vsnprintf(tmp, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = mbuf_add(b, tmp, (size_t)n);
    free(tmp);
    return rc;
}

void mbuf_free(struct mbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* Length of the UTF-8 sequence starting at s (1..4), or 0 when it is not valid UTF-8. */
static size_t utf8_seq(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n;
    unsigned cp;
    if ((s[0] & 0xE0) == 0xC0) {
        n = 2;
        cp = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        n = 3;
        cp = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        n = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

bool mail_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = utf8_seq(p);
        if (!n)
            return false;
        p += n;
    }
    return true;
}

int mail_check_header_value(const char *what, const char *s, size_t max)
{
    if (!s || !*s)
        return cad_fail(CAD_EINVAL, "the %s of an email is empty", what);
    size_t n = strlen(s);
    if (n > max)
        return cad_fail(CAD_EINVAL, "the %s of an email is %zu bytes long; at most %zu are allowed",
                        what, n, max);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\r' || *p == '\n')
            return cad_fail(CAD_EINVAL,
                            "the %s of an email contains a line break (refused: it could add "
                            "headers to the message)",
                            what);
        if (*p < 0x20 || *p == 0x7F)
            return cad_fail(CAD_EINVAL, "the %s of an email contains control character 0x%02x",
                            what, *p);
    }
    if (!mail_utf8_valid(s))
        return cad_fail(CAD_EINVAL, "the %s of an email is not valid UTF-8", what);
    return CAD_OK;
}

bool mail_addr_valid(const char *addr)
{
    if (!addr)
        return false;
    size_t n = strlen(addr);
    if (n < 3 || n > MAIL_ADDR_MAX)
        return false;
    const char *at = strchr(addr, '@');
    if (!at || at == addr || strchr(at + 1, '@') || !at[1])
        return false;
    for (const unsigned char *p = (const unsigned char *)addr; *p; p++)
        if (*p <= 0x20 || *p >= 0x7F || strchr("<>()[]\\,;:\"", *p))
            return false;
    const char *domain = at + 1;
    if (domain[0] == '.' || domain[0] == '-' || domain[strlen(domain) - 1] == '.' ||
        strstr(domain, ".."))
        return false;
    return true;
}

/* The address and display name of a From value ("addr" or "Name <addr>"). */
int mail_parse_from(const char *from, char *addr, size_t addr_size, char *name, size_t name_size)
{
    int rc = mail_check_header_value("From address", from, 512);
    if (rc)
        return rc;
    const char *lt = strchr(from, '<');
    if (!lt) {
        if (!mail_addr_valid(from))
            return cad_fail(CAD_EINVAL,
                            "the From address \"%s\" is not an address such as "
                            "cadence@agency.example or \"Agency <cadence@agency.example>\"",
                            from);
        snprintf(addr, addr_size, "%s", from);
        name[0] = '\0';
        return CAD_OK;
    }
    const char *gt = strchr(lt, '>');
    const char *after = gt ? gt + 1 : NULL;
    while (after && *after == ' ')
        after++;
    size_t alen = gt ? (size_t)(gt - lt - 1) : 0;
    if (!gt || *after || alen == 0 || alen >= addr_size)
        return cad_fail(CAD_EINVAL, "the From value \"%s\" is not of the form Name <address>",
                        from);
    memcpy(addr, lt + 1, alen);
    addr[alen] = '\0';
    if (!mail_addr_valid(addr))
        return cad_fail(CAD_EINVAL, "the From address \"%s\" is not a valid address", addr);
    const char *s = from, *e = lt;
    while (s < e && *s == ' ')
        s++;
    while (e > s && e[-1] == ' ')
        e--;
    if (e - s >= 2 && *s == '"' && e[-1] == '"') {
        s++;
        e--;
    }
    size_t nlen = (size_t)(e - s);
    if (nlen >= name_size)
        return cad_fail(CAD_EINVAL, "the From display name is too long");
    size_t j = 0;
    for (const char *p = s; p < e; p++)
        if (*p != '"' && *p != '\\')
            name[j++] = *p;
    name[j] = '\0';
    return CAD_OK;
}

static bool is_printable_ascii(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p >= 0x7F)
            return false;
    return true;
}

/* RFC 2047 encoded-words for `s`, separated by CRLF SP, so that no line holding one is longer
 * than 76 characters (RFC 2047 section 2). `used` is what the first line already holds. */
static int put_encoded_words(struct mbuf *b, const char *s, size_t used)
{
    const size_t overhead = strlen("=?UTF-8?B?") + strlen("?=");
    const unsigned char *p = (const unsigned char *)s;
    bool first = true;
    while (*p) {
        /* Room on this line for base64, in whole 4-character groups of 3 bytes each. */
        size_t room = 76 - (first ? used : 1) - overhead;
        size_t max_raw = room / 4 * 3;
        size_t take = 0;
        while (p[take]) {
            size_t n = utf8_seq(p + take);
            if (!n || take + n > max_raw)
                break;
            take += n;
        }
        if (take == 0)
            return cad_fail(CAD_EINVAL, "a header value is not valid UTF-8");
        char *b64;
        int rc = base64_encode(p, take, &b64);
        if (rc)
            return rc;
        rc = mbuf_printf(b, "%s=?UTF-8?B?%s?=", first ? "" : "\r\n ", b64);
        free(b64);
        if (rc)
            return rc;
        first = false;
        p += take;
    }
    return CAD_OK;
}

/* An ASCII header value folded before a space so lines stay within 78 characters where the words
 * allow it. `used` is what the line already holds ("Subject: "). */
static int put_folded_ascii(struct mbuf *b, const char *s, size_t used)
{
    size_t col = used;
    const char *p = s;
    while (*p) {
        const char *word_end = strchr(p + 1, ' ');
        size_t n = word_end ? (size_t)(word_end - p) : strlen(p);
        if (col + n > 78 && col > used && *p == ' ') {
            if (mbuf_str(b, "\r\n"))
                return CAD_ENOMEM;
            col = 0;
        }
        if (mbuf_add(b, p, n))
            return CAD_ENOMEM;
        col += n;
        p += n;
    }
    return CAD_OK;
}

static int put_display_name(struct mbuf *b, const char *name)
{
    if (!is_printable_ascii(name))
        return put_encoded_words(b, name, strlen("From: "));
    if (strpbrk(name, "()<>[]:;@\\,.\"") == NULL)
        return mbuf_str(b, name);
    mbuf_str(b, "\"");
    for (const char *p = name; *p; p++) {
        if (*p == '"' || *p == '\\')
            mbuf_str(b, "\\");
        mbuf_add(b, p, 1);
    }
    return mbuf_str(b, "\"");
}

/* Quoted-printable (RFC 2045 6.7) of the body, LF or CRLF line ends in, CRLF out. */
static int put_quoted_printable(struct mbuf *b, const char *body)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)body;
    size_t col = 0;
    while (*p) {
        if (*p == '\r' && p[1] == '\n') {
            p++;
            continue;
        }
        if (*p == '\n') {
            mbuf_str(b, "\r\n");
            col = 0;
            p++;
            continue;
        }
        bool line_end = p[1] == '\0' || p[1] == '\n' || (p[1] == '\r' && p[2] == '\n');
        char enc[4];
        size_t n;
        if ((*p >= 33 && *p <= 126 && *p != '=') || ((*p == ' ' || *p == '\t') && !line_end)) {
            enc[0] = (char)*p;
            n = 1;
        } else {
            enc[0] = '=';
            enc[1] = hex[*p >> 4];
            enc[2] = hex[*p & 0xF];
            n = 3;
        }
        if (col + n > 75) {
            mbuf_str(b, "=\r\n");
            col = 0;
        }
        mbuf_add(b, enc, n);
        col += n;
        p++;
    }
    if (col > 0)
        mbuf_str(b, "\r\n");
    return b->failed ? CAD_ENOMEM : CAD_OK;
}

static bool body_is_7bit(const char *body)
{
    size_t line = 0;
    for (const unsigned char *p = (const unsigned char *)body; *p; p++) {
        if (*p >= 0x80)
            return false;
        line = *p == '\n' ? 0 : line + 1;
        if (line > 998)
            return false;
    }
    return true;
}

int mail_check_body(const char *body)
{
    if (!body || !*body)
        return cad_fail(CAD_EINVAL, "the body of an email is empty");
    size_t n = strlen(body);
    if (n > MAIL_BODY_MAX)
        return cad_fail(CAD_EINVAL,
                        "the body of an email is %zu bytes long; at most %d are allowed", n,
                        MAIL_BODY_MAX);
    for (const unsigned char *p = (const unsigned char *)body; *p; p++) {
        if ((*p < 0x20 && *p != '\n' && *p != '\r' && *p != '\t') || *p == 0x7F)
            return cad_fail(CAD_EINVAL, "the body of an email contains control character 0x%02x",
                            *p);
        if (*p == '\r' && p[1] != '\n')
            return cad_fail(CAD_EINVAL, "the body of an email contains a CR without LF");
    }
    if (!mail_utf8_valid(body))
        return cad_fail(CAD_EINVAL, "the body of an email is not valid UTF-8");
    return CAD_OK;
}

static void format_date(int64_t ms, char *buf, size_t size)
{
    static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int mail_format_message(const char *from, const char *to, const char *subject, const char *body,
                        const char *message_id, int64_t date_ms, char **out, size_t *out_len)
{
    *out = NULL;
    if (out_len)
        *out_len = 0;
    char from_addr[MAIL_ADDR_MAX + 1], from_name[512];
    int rc = mail_parse_from(from, from_addr, sizeof from_addr, from_name, sizeof from_name);
    if (rc)
        return rc;
    if ((rc = mail_check_header_value("recipient", to, MAIL_ADDR_MAX)))
        return rc;
    if (!mail_addr_valid(to))
        return cad_fail(CAD_EINVAL, "the recipient \"%s\" is not a plain email address", to);
    if ((rc = mail_check_header_value("subject", subject, MAIL_SUBJECT_MAX)) ||
        (rc = mail_check_header_value("Message-ID", message_id, 250)) ||
        (rc = mail_check_body(body)))
        return rc;
    if (message_id[0] != '<' || message_id[strlen(message_id) - 1] != '>' ||
        !strchr(message_id, '@') || strchr(message_id, ' ') || !is_printable_ascii(message_id))
        return cad_fail(CAD_EINVAL, "the Message-ID \"%s\" is not of the form <id@domain>",
                        message_id);

    struct mbuf b = {0};
    char date[64];
    format_date(date_ms, date, sizeof date);
    mbuf_printf(&b, "Date: %s\r\nFrom: ", date);
    if (from_name[0]) {
        put_display_name(&b, from_name);
        mbuf_printf(&b, " <%s>\r\n", from_addr);
    } else {
        mbuf_printf(&b, "%s\r\n", from_addr);
    }
    mbuf_printf(&b, "To: %s\r\nSubject: ", to);
    if (is_printable_ascii(subject))
        rc = put_folded_ascii(&b, subject, strlen("Subject: "));
    else
        rc = put_encoded_words(&b, subject, strlen("Subject: "));
    if (rc) {
        mbuf_free(&b);
        return rc;
    }
    bool plain = body_is_7bit(body);
    mbuf_printf(&b,
                "\r\nMessage-ID: %s\r\nMIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: %s\r\nAuto-Submitted: auto-generated\r\n\r\n",
                message_id, plain ? "7bit" : "quoted-printable");
    if (plain) {
        for (const char *p = body; *p; p++) {
            if (*p == '\r')
                continue;
            if (*p == '\n')
                mbuf_str(&b, "\r\n");
            else
                mbuf_add(&b, p, 1);
        }
        if (body[strlen(body) - 1] != '\n')
            mbuf_str(&b, "\r\n");
    } else {
        put_quoted_printable(&b, body);
    }
    if (b.failed) {
        mbuf_free(&b);
        return cad_fail(CAD_ENOMEM, "out of memory");
    }
    *out = b.data;
    if (out_len)
        *out_len = b.len;
    return CAD_OK;
}

/* ---- the three messages ------------------------------------------------------------------- */

static int check_link(const char *url)
{
    if (!url || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0))
        return cad_fail(CAD_EINVAL, "an onboarding link must start with https:// (or http://)");
    size_t n = strlen(url);
    if (n > 2048)
        return cad_fail(CAD_EINVAL, "the onboarding link is %zu bytes long; at most 2048", n);
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= 0x20 || *p >= 0x7F)
            return cad_fail(CAD_EINVAL, "the onboarding link contains a space, control or "
                                        "non-ASCII character");
    const char *host = strstr(url, "://") + 3;
    if (!*host || *host == '/')
        return cad_fail(CAD_EINVAL, "the onboarding link has no host");
    return CAD_OK;
}

static int check_brand(const char *brand)
{
    return mail_check_header_value("brand name", brand, 200);
}

/* The link's scheme and host ("https://cadence.agency.example"), for the help page address. */
static void link_origin(const char *url, char *out, size_t size)
{
    const char *host = strstr(url, "://") + 3;
    size_t n = (size_t)(host - url) + strcspn(host, "/?#");
    snprintf(out, size, "%.*s", (int)n, url);
}

static int finish(struct mbuf *subject, struct mbuf *body, struct mail_message *out)
{
    if (subject->failed || body->failed) {
        mbuf_free(subject);
        mbuf_free(body);
        return cad_fail(CAD_ENOMEM, "out of memory");
    }
    out->subject = subject->data;
    out->body = body->data;
    return CAD_OK;
}

static const char key_steps[] =
    "It takes about 3 minutes:\n"
    "\n"
    "  1. Sign in to Klaviyo and open Settings → API Keys\n"
    "     (direct link: https://www.klaviyo.com/account#api-keys-tab).\n"
    "  2. Under Private API Keys, click \"Create Private API Key\".\n"
    "  3. Name it Cadence and grant Full Access (or the custom scopes\n"
    "     listed on our help page).\n"
    "  4. Copy the key (it starts with pk_ followed by 34 characters) and\n"
    "     paste it into Step 3 of your onboarding:\n"
    "\n";

static const char key_footer[] =
    "Klaviyo shows a new key only once, so paste it straight into the page. Please\n"
    "don't send the key by email or reply with it here.\n"
    "\n"
    "Your key is stored encrypted, every call we make to your Klaviyo account is\n"
    "logged, and you can revoke the key from Klaviyo's API Keys settings at any time.\n";

int mail_build_key_request(const char *brand, const char *link_url, struct mail_message *out)
{
    memset(out, 0, sizeof *out);
    int rc;
    if ((rc = check_brand(brand)) || (rc = check_link(link_url)))
        return rc;
    char origin[2100];
    link_origin(link_url, origin, sizeof origin);
    struct mbuf s = {0}, b = {0};
    mbuf_printf(&s, "%s: one step left, connect your Klaviyo account", brand);
    mbuf_printf(&b,
                "Hi %s team,\n"
                "\n"
                "Thanks, your payment is confirmed! The one thing we still need before we can\n"
                "start building your Klaviyo account is a private API key.\n"
                "\n",
                brand);
    mbuf_str(&b, key_steps);
    mbuf_printf(&b, "     %s\n\n", link_url);
    mbuf_printf(&b,
                "Prefer pictures? Our step-by-step guide is here:\n"
                "%s/help/klaviyo\n"
                "\n",
                origin);
    mbuf_str(&b, key_footer);
    mbuf_str(&b, "\nThanks,\nYour onboarding team\n");
    return finish(&s, &b, out);
}

int mail_build_key_revoked(const char *brand, const char *link_url, struct mail_message *out)
{
    memset(out, 0, sizeof *out);
    int rc;
    if ((rc = check_brand(brand)) || (rc = check_link(link_url)))
        return rc;
    char origin[2100];
    link_origin(link_url, origin, sizeof origin);
    struct mbuf s = {0}, b = {0};
    mbuf_printf(&s, "%s: your Klaviyo key stopped working", brand);
    mbuf_printf(&b,
                "Hi %s team,\n"
                "\n"
                "Klaviyo stopped accepting the private API key you connected to Cadence, most\n"
                "likely because it was deleted or revoked under Settings → API Keys.\n"
                "\n"
                "As soon as we saw that, we stopped every call to your account and paused our\n"
                "work exactly where it stood. Nothing is lost.\n"
                "\n"
                "To pick up where we left off, please create a new private API key.\n",
                brand);
    mbuf_str(&b, key_steps);
    mbuf_printf(&b, "     %s\n\n", link_url);
    mbuf_printf(&b,
                "Once we have verified the new key, the paused work continues by itself.\n"
                "\n"
                "Our step-by-step guide with pictures: %s/help/klaviyo\n"
                "\n",
                origin);
    mbuf_str(&b, key_footer);
    mbuf_str(&b, "\nIf you revoked the key on purpose and want us to stop, just reply and let\n"
                 "us know.\n"
                 "\nThanks,\nYour onboarding team\n");
    return finish(&s, &b, out);
}

int mail_build_onboarding_link(const char *brand, const char *link_url, int64_t expires_ms,
                               struct mail_message *out)
{
    memset(out, 0, sizeof *out);
    int rc;
    if ((rc = check_brand(brand)) || (rc = check_link(link_url)))
        return rc;
    if (expires_ms < 0)
        return cad_fail(CAD_EINVAL, "the link's expiry time is negative");
    struct mbuf s = {0}, b = {0};
    mbuf_printf(&s, "Your onboarding link for %s", brand);
    mbuf_printf(
        &b,
        "Hi %s team,\n"
        "\n"
        "Here is your personal onboarding link:\n"
        "\n"
        "     %s\n"
        "\n"
        "It takes you through a few short steps: your brand details, your plan, connecting\n"
        "Klaviyo (about 3 minutes), and optional extras such as your Shopify catalog and\n"
        "SMS provider.\n"
        "\n",
        brand, link_url);
    if (expires_ms > 0) {
        char when[32];
        time_t t = (time_t)(expires_ms / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
        mbuf_printf(&b, "The link works until %s. ", when);
    }
    mbuf_str(&b, "Any link we sent you before this one no longer works.\n"
                 "\n"
                 "The link is personal to your brand, so please don't forward it. If it has\n"
                 "expired or you need a new one, just reply to this email.\n"
                 "\nThanks,\nYour onboarding team\n");
    return finish(&s, &b, out);
}

void mail_message_free(struct mail_message *m)
{
    if (!m)
        return;
    free(m->subject);
    if (m->body) {
        /* The body holds the onboarding link's token. */
        OPENSSL_cleanse(m->body, strlen(m->body));
        free(m->body);
    }
    m->subject = m->body = NULL;
}
