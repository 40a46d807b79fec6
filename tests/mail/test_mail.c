/*
 * Tests of the mail module against a real SQLite store in a temporary directory: queueing once per
 * dedupe key, header checks and encodings, the .eml transport (one file per message, atomic, even
 * after a simulated crash), the retry schedule, and delivery to a real SMTP server on loopback
 * (tests/mail/smtp_sink.py on Debian's python3-aiosmtpd) that is stopped and restarted mid-test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "mail/mail.h"
#include "testutil.h"

#define T0 1900000000000LL /* a fixed "now" for schedule tests, after any real queue time */

struct fixture {
    char *dir;
    char db[600];
    store *st;
    struct mail_config cfg;
    pid_t sink;
    char sink_dir[600];
    int sink_port;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx || !(fx->dir = test_tmpdir()))
        return -1;
    snprintf(fx->db, sizeof fx->db, "%s/cadence.db", fx->dir);
    if (store_open(&fx->st, fx->db) != CAD_OK) {
        fprintf(stderr, "store_open: %s\n", cad_errmsg());
        return -1;
    }
    if (store_exec(fx->st,
                   "INSERT INTO tenants (id, name, email, created_ms) VALUES "
                   "('acme', 'Acme Outdoors', 'brand@acme.example', 0), "
                   "('cafe', 'Café Olé', 'hola@cafe.example', 0)",
                   SV_NONE) != CAD_OK) {
        fprintf(stderr, "insert tenants: %s\n", cad_errmsg());
        return -1;
    }
    mail_config_defaults(&fx->cfg, fx->dir);
    fx->cfg.timeout_s = 10;
    snprintf(fx->sink_dir, sizeof fx->sink_dir, "%s/sink", fx->dir);
    *state = fx;
    return 0;
}

static void sink_stop(struct fixture *fx)
{
    if (fx->sink <= 0)
        return;
    kill(fx->sink, SIGTERM);
    int status;
    for (int i = 0; i < 100; i++) {
        if (waitpid(fx->sink, &status, WNOHANG) == fx->sink) {
            fx->sink = 0;
            return;
        }
        usleep(50 * 1000);
    }
    kill(fx->sink, SIGKILL);
    waitpid(fx->sink, &status, 0);
    fx->sink = 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    sink_stop(fx);
    mail_config_free(&fx->cfg);
    store_close(fx->st);
    test_rmdir(fx->dir);
    free(fx);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

struct row {
    int64_t id;
    char status[16], kind[32], last_error[600], message_id[300], to[300], subject[400];
    int attempts;
    int64_t next_attempt_ms, sent_ms;
    int n;
};

static int copy_info(void *p, const struct mail_info *m)
{
    struct row *r = p;
    r->n++;
    r->id = m->id;
    snprintf(r->status, sizeof r->status, "%s", m->status);
    snprintf(r->kind, sizeof r->kind, "%s", m->kind);
    snprintf(r->last_error, sizeof r->last_error, "%s", m->last_error);
    snprintf(r->message_id, sizeof r->message_id, "%s", m->message_id);
    snprintf(r->to, sizeof r->to, "%s", m->to);
    snprintf(r->subject, sizeof r->subject, "%s", m->subject);
    r->attempts = m->attempts;
    r->next_attempt_ms = m->next_attempt_ms;
    r->sent_ms = m->sent_ms;
    return 0;
}

static struct row get_row(store *st, int64_t id)
{
    struct row r = {0};
    struct mail_filter f = {.id = id};
    assert_int_equal(mail_list(st, &f, copy_info, &r), CAD_OK);
    assert_int_equal(r.n, 1);
    return r;
}

static int count_cb(void *p, const struct mail_info *m)
{
    (void)m;
    (*(int *)p)++;
    return 0;
}

static int count_rows(store *st)
{
    int n = 0;
    assert_int_equal(mail_list(st, NULL, count_cb, &n), CAD_OK);
    return n;
}

static int64_t queue(store *st, const char *dedupe, const char *to, const char *subject,
                     const char *body)
{
    int64_t id = 0;
    bool is_new = false;
    int rc = mail_queue(st, "acme", MAIL_KEY_REQUEST, dedupe, to, subject, body, &id, &is_new);
    if (rc)
        fprintf(stderr, "mail_queue: %s\n", cad_errmsg());
    assert_int_equal(rc, CAD_OK);
    assert_true(is_new);
    return id;
}

/* Names in `dir` ending in `suffix` (NULL = all), counted. */
static int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        size_t len = strlen(e->d_name);
        if (!suffix ||
            (len >= strlen(suffix) && strcmp(e->d_name + len - strlen(suffix), suffix) == 0))
            n++;
    }
    closedir(d);
    return n;
}

static char *read_file(const char *path)
{
    char *data = NULL;
    size_t len;
    int rc = fs_read_all(path, 1 << 20, &data, &len);
    if (rc)
        fprintf(stderr, "read %s: %s\n", path, cad_errmsg());
    assert_int_equal(rc, CAD_OK);
    return data;
}

/* The value of header `name` (unfolded, without CRLF) in a message; "" when absent. */
static void header_value(const char *msg, const char *name, char *out, size_t size)
{
    out[0] = '\0';
    size_t nlen = strlen(name);
    const char *end_headers = strstr(msg, "\r\n\r\n");
    for (const char *p = msg; p && p < end_headers;
         p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL) {
        if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            while (*v == ' ')
                v++;
            size_t j = 0;
            while (*v && j + 1 < size) {
                if (v[0] == '\r' && v[1] == '\n') {
                    if (v[2] != ' ' && v[2] != '\t')
                        break;
                    v += 2;
                    continue;
                }
                out[j++] = *v++;
            }
            out[j] = '\0';
            return;
        }
    }
}

static int int_cb(void *p, const store_row *row)
{
    *(int64_t *)p = store_row_int(row, 0);
    return 0;
}

static int64_t sql_int(store *st, const char *sql, const char *arg)
{
    int64_t v = -1;
    assert_int_equal(store_query(st, sql, SV_ARGS(SV_TEXT(arg)), int_cb, &v), CAD_OK);
    return v;
}

/* ---- kinds, queue --------------------------------------------------------------------------- */

static void test_kind_names(void **state)
{
    (void)state;
    for (int k = 0; k < MAIL_KIND_COUNT; k++) {
        enum mail_kind back;
        assert_int_equal(mail_kind_parse(mail_kind_name((enum mail_kind)k), &back), CAD_OK);
        assert_int_equal(back, k);
    }
    enum mail_kind k;
    assert_int_equal(mail_kind_parse("newsletter", &k), CAD_EINVAL);
    assert_non_null(strstr(cad_errmsg(), "key_request"));
}

static void test_queue_dedupe(void **state)
{
    struct fixture *fx = *state;
    int64_t id1 = 0, id2 = 0, id3 = 0;
    bool is_new = false;
    assert_int_equal(mail_queue(fx->st, "acme", MAIL_KEY_REQUEST, "key_request:acme:1",
                                "brand@acme.example", "Hello", "Body one\n", &id1, &is_new),
                     CAD_OK);
    assert_true(is_new);
    assert_true(id1 > 0);
    /* The caller runs again (with a different body, say a fresh link): the first message stands. */
    assert_int_equal(mail_queue(fx->st, "acme", MAIL_KEY_REQUEST, "key_request:acme:1",
                                "brand@acme.example", "Hello", "Body two\n", &id2, &is_new),
                     CAD_OK);
    assert_false(is_new);
    assert_int_equal(id2, id1);
    assert_int_equal(count_rows(fx->st), 1);
    assert_int_equal(sql_int(fx->st, "SELECT COUNT(*) FROM outbox WHERE body = $1", "Body one\n"),
                     1);
    /* Still deduplicated after it was sent. */
    struct mail_deliver_result r;
    assert_int_equal(mail_deliver_pending(fx->st, &fx->cfg, T0, &r), CAD_OK);
    assert_int_equal(r.sent, 1);
    assert_int_equal(mail_queue(fx->st, "acme", MAIL_KEY_REQUEST, "key_request:acme:1",
                                "brand@acme.example", "Hello", "Body three\n", &id2, &is_new),
                     CAD_OK);
    assert_false(is_new);
    assert_int_equal(id2, id1);
    assert_string_equal(get_row(fx->st, id1).status, "sent");

    /* Another key is another message. */
    assert_int_equal(mail_queue(fx->st, "acme", MAIL_KEY_REVOKED, "key_revoked:acme:1",
                                "brand@acme.example", "Hello", "Body\n", &id3, &is_new),
                     CAD_OK);
    assert_true(is_new);
    assert_true(id3 > id1);
    assert_string_equal(get_row(fx->st, id3).kind, "key_revoked");

    /* Inside a caller's transaction that is rolled back, nothing stays. */
    int64_t id4;
    assert_int_equal(store_begin(fx->st), CAD_OK);
    assert_int_equal(mail_queue(fx->st, "acme", MAIL_ONBOARDING_LINK, "link:acme:1",
                                "brand@acme.example", "Hello", "Body\n", &id4, &is_new),
                     CAD_OK);
    assert_true(is_new);
    assert_int_equal(store_rollback(fx->st), CAD_OK);
    assert_int_equal(count_rows(fx->st), 2);
}

static void test_queue_refuses_bad_input(void **state)
{
    struct fixture *fx = *state;
    int64_t id;
    const char *to = "brand@acme.example";
    assert_int_equal(
        mail_queue(fx->st, "nobody", MAIL_KEY_REQUEST, "k1", to, "S", "B\n", &id, NULL),
        CAD_ENOTFOUND);
    assert_non_null(strstr(cad_errmsg(), "nobody"));
    /* Header injection through the subject or the recipient. */
    assert_int_equal(mail_queue(fx->st, "acme", MAIL_KEY_REQUEST, "k2", to,
                                "Hi\r\nBcc: victim@evil.example", "B\n", &id, NULL),
                     CAD_EINVAL);
    assert_non_null(strstr(cad_errmsg(), "line break"));
    assert_int_equal(
        mail_queue(fx->st, "acme", MAIL_KEY_REQUEST, "k3", to, "Hi\nX-Evil: 1", "B\n", &id, NULL),
        CAD_EINVAL);
    assert_int_equal(mail_queue(fx->st, "acme", MAIL_KEY_REQUEST, "k4",
                                "brand@acme.example\r\nBcc: victim@evil.example", "S", "B\n", &id,
                                NULL),
                     CAD_EINVAL);
    assert_int_equal(mail_queue(fx->st, "acme", MAIL_KEY_REQUEST, "k5",
                                "brand@acme.example, victim@evil.example", "S", "B\n", &id, NULL),
                     CAD_EINVAL);
    assert_int_equal(mail_queue(fx->st, "acme", MAIL_KEY_REQUEST, "k6",
                                "Brand <brand@acme.example>", "S", "B\n", &id, NULL),
                     CAD_EINVAL);
    assert_int_equal(
        mail_queue(fx->st, "acme", MAIL_KEY_REQUEST, "k7", "not-an-address", "S", "B\n", &id, NULL),
        CAD_EINVAL);
    /* Bodies: not UTF-8, control characters, a bare CR, empty. */
    assert_int_equal(
        mail_queue(fx->st, "acme", MAIL_KEY_REQUEST, "k8", to, "S", "caf\xe9\n", &id, NULL),
        CAD_EINVAL);
    assert_int_equal(
        mail_queue(fx->st, "acme", MAIL_KEY_REQUEST, "k9", to, "S", "a\x1b[31m\n", &id, NULL),
        CAD_EINVAL);
    assert_int_equal(
        mail_queue(fx->st, "acme", MAIL_KEY_REQUEST, "k10", to, "S", "a\rb\n", &id, NULL),
        CAD_EINVAL);
    assert_int_equal(mail_queue(fx->st, "acme", MAIL_KEY_REQUEST, "k11", to, "S", "", &id, NULL),
                     CAD_EINVAL);
    assert_int_equal(mail_queue(fx->st, "acme", MAIL_KEY_REQUEST, "", to, "S", "B\n", &id, NULL),
                     CAD_EINVAL);
    assert_int_equal(mail_queue(fx->st, "acme", MAIL_KIND_COUNT, "k12", to, "S", "B\n", &id, NULL),
                     CAD_EINVAL);
    char *big = malloc(MAIL_BODY_MAX + 2);
    assert_non_null(big);
    memset(big, 'a', MAIL_BODY_MAX + 1);
    big[MAIL_BODY_MAX + 1] = '\0';
    assert_int_equal(mail_queue(fx->st, "acme", MAIL_KEY_REQUEST, "k13", to, "S", big, &id, NULL),
                     CAD_EINVAL);
    free(big);
    assert_int_equal(count_rows(fx->st), 0);
}

/* ---- formatting ----------------------------------------------------------------------------- */

static void test_format_refuses_header_injection(void **state)
{
    (void)state;
    char *msg = NULL;
    size_t len;
    const char *id = "<x.1@acme.example>";
    assert_int_equal(mail_format_message("cadence@x.example\r\nBcc: v@evil.example",
                                         "brand@acme.example", "S", "B\n", id, T0, &msg, &len),
                     CAD_EINVAL);
    assert_int_equal(mail_format_message("Agency\n <cadence@x.example>", "brand@acme.example", "S",
                                         "B\n", id, T0, &msg, &len),
                     CAD_EINVAL);
    assert_int_equal(mail_format_message("cadence@x.example",
                                         "brand@acme.example\nBcc: v@e.example", "S", "B\n", id, T0,
                                         &msg, &len),
                     CAD_EINVAL);
    assert_int_equal(mail_format_message("cadence@x.example", "brand@acme.example",
                                         "S\r\nContent-Type: text/html", "B\n", id, T0, &msg, &len),
                     CAD_EINVAL);
    assert_int_equal(mail_format_message("cadence@x.example", "brand@acme.example", "S", "B\n",
                                         "<x@y>\r\nBcc: v@evil.example", T0, &msg, &len),
                     CAD_EINVAL);
    assert_int_equal(mail_format_message("cadence@x.example", "brand@acme.example", "S", "B\n",
                                         "no-brackets@y", T0, &msg, &len),
                     CAD_EINVAL);
    assert_int_equal(mail_format_message("cadence@x.example", "brand@acme.example", "S\t\x01",
                                         "B\n", id, T0, &msg, &len),
                     CAD_EINVAL);
    assert_null(msg);

    assert_int_equal(mail_format_message("Cadence <cadence@x.example>", "brand@acme.example",
                                         "Hello", "line one\nline two\n", id, T0, &msg, &len),
                     CAD_OK);
    assert_int_equal(len, strlen(msg));
    char v[512];
    header_value(msg, "From", v, sizeof v);
    assert_string_equal(v, "Cadence <cadence@x.example>");
    header_value(msg, "To", v, sizeof v);
    assert_string_equal(v, "brand@acme.example");
    header_value(msg, "Subject", v, sizeof v);
    assert_string_equal(v, "Hello");
    header_value(msg, "Message-ID", v, sizeof v);
    assert_string_equal(v, id);
    header_value(msg, "Date", v, sizeof v);
    assert_string_equal(v, "Sun, 17 Mar 2030 17:46:40 +0000");
    header_value(msg, "Content-Transfer-Encoding", v, sizeof v);
    assert_string_equal(v, "7bit");
    assert_non_null(strstr(msg, "\r\n\r\nline one\r\nline two\r\n"));
    /* No bare LF anywhere. */
    for (const char *p = msg; *p; p++)
        if (*p == '\n')
            assert_true(p > msg && p[-1] == '\r');
    free(msg);
}

/* Decodes "=?UTF-8?B?...?=" words (separated by folding) back into text. */
static void decode_words(const char *v, char *out, size_t size)
{
    size_t j = 0;
    const char *p = v;
    while ((p = strstr(p, "=?UTF-8?B?"))) {
        p += 10;
        const char *end = strstr(p, "?=");
        assert_non_null(end);
        char b64[200];
        assert_true((size_t)(end - p) < sizeof b64);
        memcpy(b64, p, (size_t)(end - p));
        b64[end - p] = '\0';
        unsigned char *raw;
        size_t n;
        assert_int_equal(base64_decode(b64, &raw, &n), CAD_OK);
        assert_true(j + n < size);
        memcpy(out + j, raw, n);
        j += n;
        free(raw);
        p = end + 2;
    }
    out[j] = '\0';
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void test_format_encodings(void **state)
{
    (void)state;
    const char *subject = "Café Olé: one step left — connect your Klaviyo account, "
                          "ünïcødé ✓ and more text to need several encoded words";
    const char *body =
        "Hi Café Olé team,\n\nOpen Settings → API Keys.\n"
        "A long line: "
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaa= end \n"
        "Trailing space \n";
    char *msg = NULL;
    size_t len;
    assert_int_equal(mail_format_message("Agence Café <hello@agence.example>", "hola@cafe.example",
                                         subject, body, "<m.1@agence.example>", T0, &msg, &len),
                     CAD_OK);
    /* Every header line is ASCII and short. */
    const char *end_headers = strstr(msg, "\r\n\r\n");
    assert_non_null(end_headers);
    for (const char *line = msg; line < end_headers;) {
        const char *eol = strstr(line, "\r\n");
        assert_true(eol - line <= 78);
        for (const char *c = line; c < eol; c++)
            assert_true((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7F);
        line = eol + 2;
    }
    char v[1024], decoded[1024];
    header_value(msg, "Subject", v, sizeof v);
    assert_non_null(strstr(v, "=?UTF-8?B?"));
    decode_words(v, decoded, sizeof decoded);
    assert_string_equal(decoded, subject);
    header_value(msg, "From", v, sizeof v);
    decode_words(v, decoded, sizeof decoded);
    assert_string_equal(decoded, "Agence Café");
    assert_non_null(strstr(v, "<hello@agence.example>"));
    header_value(msg, "Content-Transfer-Encoding", v, sizeof v);
    assert_string_equal(v, "quoted-printable");

    /* Body lines at most 76 characters, and decoding gives back the body. */
    const char *p = end_headers + 4;
    char out[1024];
    size_t j = 0;
    while (*p) {
        const char *eol = strstr(p, "\r\n");
        assert_non_null(eol);
        assert_true(eol - p <= 76);
        bool soft = eol > p && eol[-1] == '=';
        for (const char *c = p; c < (soft ? eol - 1 : eol); c++) {
            if (*c == '=') {
                out[j++] = (char)(hexval(c[1]) * 16 + hexval(c[2]));
                c += 2;
            } else {
                assert_true(*c != ' ' || c + 1 < eol); /* no trailing space */
                out[j++] = *c;
            }
        }
        if (!soft)
            out[j++] = '\n';
        p = eol + 2;
    }
    out[j] = '\0';
    assert_string_equal(out, body);
    free(msg);

    /* A long ASCII subject is folded at spaces. */
    const char *longsub = "Your onboarding link for Acme Outdoors and a very long subject line "
                          "that goes on past seventy-eight characters for sure";
    assert_int_equal(mail_format_message("cadence@x.example", "brand@acme.example", longsub, "B",
                                         "<m.2@x.example>", T0, &msg, &len),
                     CAD_OK);
    header_value(msg, "Subject", v, sizeof v);
    assert_string_equal(v, longsub);
    const char *subj = strstr(msg, "Subject: ");
    assert_non_null(subj);
    const char *eol = strstr(subj, "\r\n");
    assert_true(eol - subj <= 78);
    assert_true(eol[2] == ' '); /* folded onto a continuation line */
    assert_non_null(strstr(msg, "\r\n\r\nB\r\n"));
    free(msg);

    /* A display name with specials is quoted. */
    assert_int_equal(mail_format_message("\"Acme, Inc.\" <cadence@x.example>", "brand@acme.example",
                                         "S", "B", "<m.3@x.example>", T0, &msg, &len),
                     CAD_OK);
    header_value(msg, "From", v, sizeof v);
    assert_string_equal(v, "\"Acme, Inc.\" <cadence@x.example>");
    free(msg);
}

/* ---- builders ------------------------------------------------------------------------------- */

static void test_builders(void **state)
{
    (void)state;
    const char *link = "https://cadence.agency.example/onboard/tok_9f8e7d6c5b4a";
    struct mail_message m;
    assert_int_equal(mail_build_key_request("Café Olé", link, &m), CAD_OK);
    assert_non_null(strstr(m.subject, "Café Olé"));
    assert_non_null(strstr(m.body, "payment is confirmed"));
    assert_non_null(strstr(m.body, link));
    assert_non_null(strstr(m.body, "https://cadence.agency.example/help/klaviyo"));
    assert_non_null(strstr(m.body, "Create Private API Key"));
    assert_non_null(strstr(m.body, "pk_"));
    mail_message_free(&m);
    assert_null(m.body);

    assert_int_equal(mail_build_key_revoked("Acme Outdoors", link, &m), CAD_OK);
    assert_non_null(strstr(m.subject, "stopped working"));
    assert_non_null(strstr(m.body, "Nothing is lost"));
    assert_non_null(strstr(m.body, link));
    assert_non_null(strstr(m.body, "paused work continues"));
    mail_message_free(&m);

    assert_int_equal(mail_build_onboarding_link("Acme Outdoors", link, T0, &m), CAD_OK);
    assert_non_null(strstr(m.subject, "onboarding link"));
    assert_non_null(strstr(m.body, link));
    assert_non_null(strstr(m.body, "2030-03-17 17:46 UTC"));
    mail_message_free(&m);
    assert_int_equal(mail_build_onboarding_link("Acme Outdoors", link, 0, &m), CAD_OK);
    assert_null(strstr(m.body, "works until"));
    mail_message_free(&m);

    /* What would break the message or mislead the brand is refused. */
    assert_int_equal(mail_build_key_request("Acme\r\nBcc: v@evil.example", link, &m), CAD_EINVAL);
    assert_int_equal(mail_build_key_request("Acme", "javascript:alert(1)", &m), CAD_EINVAL);
    assert_int_equal(mail_build_key_request("Acme", "https://x.example/a b", &m), CAD_EINVAL);
    assert_int_equal(mail_build_key_request("Acme", "https://x.example/a\nb", &m), CAD_EINVAL);
    assert_int_equal(mail_build_key_revoked("Acme", "https:///nohost", &m), CAD_EINVAL);
    assert_int_equal(mail_build_onboarding_link("", link, 0, &m), CAD_EINVAL);
    assert_null(m.body);
}

/* ---- .eml transport ------------------------------------------------------------------------- */

static void test_eml_written_once_atomically(void **state)
{
    struct fixture *fx = *state;
    const char *token = "tok_0123456789abcdef0123456789abcdef";
    char body[256];
    snprintf(body, sizeof body, "Paste your key here:\nhttps://c.example/onboard/%s\n", token);

    char *logbuf = NULL;
    size_t loglen = 0;
    FILE *logf = open_memstream(&logbuf, &loglen);
    assert_non_null(logf);
    log_set_stream(logf);
    log_set_level(LOG_DEBUG);

    int64_t a = queue(fx->st, "key_request:acme:1", "brand@acme.example", "First", body);
    int64_t b = queue(fx->st, "key_request:acme:2", "brand@acme.example", "Second", "Hi\n");
    struct mail_deliver_result r;
    assert_int_equal(mail_deliver_pending(fx->st, &fx->cfg, T0, &r), CAD_OK);
    assert_int_equal(r.attempted, 2);
    assert_int_equal(r.sent, 2);
    assert_int_equal(r.retrying + r.failed + r.resent, 0);

    /* Exactly <id>.eml per message and nothing else (no temp files), private. */
    assert_int_equal(count_files(fx->cfg.outbox_dir, NULL), 2);
    char path[4300];
    snprintf(path, sizeof path, "%s/%lld.eml", fx->cfg.outbox_dir, (long long)a);
    struct stat sa;
    assert_int_equal(stat(path, &sa), 0);
    assert_int_equal(sa.st_mode & 0777, 0600);
    struct stat sd;
    assert_int_equal(stat(fx->cfg.outbox_dir, &sd), 0);
    assert_int_equal(sd.st_mode & 0777, 0700);
    char *msg = read_file(path);
    struct row ra = get_row(fx->st, a);
    assert_string_equal(ra.status, "sent");
    assert_int_equal(ra.attempts, 1);
    assert_int_equal(ra.sent_ms, T0);
    char v[512];
    header_value(msg, "Message-ID", v, sizeof v);
    assert_string_equal(v, ra.message_id);
    assert_non_null(strstr(ra.message_id, "@localhost>"));
    header_value(msg, "From", v, sizeof v);
    assert_string_equal(v, MAIL_FROM_DEFAULT);
    header_value(msg, "Subject", v, sizeof v);
    assert_string_equal(v, "First");
    assert_non_null(strstr(msg, token));
    free(msg);
    assert_string_not_equal(get_row(fx->st, b).message_id, ra.message_id);

    /* Nothing due: nothing written again. */
    assert_int_equal(mail_deliver_pending(fx->st, &fx->cfg, T0 + 3600 * 1000, &r), CAD_OK);
    assert_int_equal(r.attempted, 0);
    struct stat sa2;
    assert_int_equal(stat(path, &sa2), 0);
    assert_int_equal(sa2.st_ino, sa.st_ino);

    /* A crash after the claim: the row is left in 'sending'. Within the lease another sender may
     * be at it, so it is left alone; after the lease it is written again under the same name and
     * with the same Message-ID: still one file for the message. */
    assert_int_equal(
        store_exec(fx->st, "UPDATE outbox SET status = 'sending', sending_ms = $2 WHERE id = $1",
                   SV_ARGS(SV_INT(a), SV_INT(T0 + 1000))),
        CAD_OK);
    assert_int_equal(mail_deliver_pending(fx->st, &fx->cfg, T0 + 2000, &r), CAD_OK);
    assert_int_equal(r.attempted, 0);
    assert_string_equal(get_row(fx->st, a).status, "sending");
    int64_t later = T0 + 1000 + fx->cfg.sending_lease_ms;
    assert_int_equal(mail_deliver_pending(fx->st, &fx->cfg, later, &r), CAD_OK);
    assert_int_equal(r.attempted, 1);
    assert_int_equal(r.resent, 1);
    assert_int_equal(r.sent, 1);
    assert_int_equal(count_files(fx->cfg.outbox_dir, NULL), 2);
    msg = read_file(path);
    header_value(msg, "Message-ID", v, sizeof v);
    assert_string_equal(v, ra.message_id);
    free(msg);
    struct row ra2 = get_row(fx->st, a);
    assert_string_equal(ra2.status, "sent");
    assert_int_equal(ra2.attempts, 2);
    assert_string_equal(ra2.message_id, ra.message_id);

    /* Audit: one intent and one outcome per attempt, with kind and outbox id, never the body. */
    char like[64];
    snprintf(like, sizeof like, "%%outbox=%lld %%", (long long)a);
    assert_int_equal(sql_int(fx->st,
                             "SELECT COUNT(*) FROM audit_log WHERE action = 'mail.send' AND "
                             "method = 'EML' AND actor = 'system' AND detail LIKE $1",
                             like),
                     2);
    assert_int_equal(sql_int(fx->st,
                             "SELECT COUNT(*) FROM audit_log WHERE action = 'mail.send.result' "
                             "AND status = 250 AND detail LIKE $1",
                             "kind=key_request outbox=% sent"),
                     3);
    assert_int_equal(sql_int(fx->st, "SELECT COUNT(*) FROM audit_log WHERE detail LIKE $1",
                             "%resend after an interrupted attempt%"),
                     1);
    char tok_like[80];
    snprintf(tok_like, sizeof tok_like, "%%%s%%", token);
    assert_int_equal(sql_int(fx->st,
                             "SELECT COUNT(*) FROM audit_log WHERE detail LIKE $1 OR "
                             "endpoint LIKE $1 OR request_id LIKE $1",
                             tok_like),
                     0);

    /* Nor in the log. */
    log_set_stream(stderr);
    log_set_level(LOG_ERROR);
    fclose(logf);
    assert_non_null(strstr(logbuf, "mail.sent"));
    assert_null(strstr(logbuf, token));
    assert_null(strstr(logbuf, "Paste your key"));
    free(logbuf);
}

static void test_backoff_schedule(void **state)
{
    struct fixture *fx = *state;
    struct mail_config *cfg = &fx->cfg;
    assert_int_equal(mail_backoff_ms(cfg, 1), 60 * 1000);
    assert_int_equal(mail_backoff_ms(cfg, 2), 120 * 1000);
    assert_int_equal(mail_backoff_ms(cfg, 3), 240 * 1000);
    assert_int_equal(mail_backoff_ms(cfg, 7), 64 * 60 * 1000);
    assert_int_equal(mail_backoff_ms(cfg, 9), 256 * 60 * 1000);
    assert_int_equal(mail_backoff_ms(cfg, 10), 6 * 3600 * 1000);
    assert_int_equal(mail_backoff_ms(cfg, 1000), 6 * 3600 * 1000);

    /* An outbox directory that cannot be created: every attempt fails. */
    char blocker[700];
    snprintf(blocker, sizeof blocker, "%s/not-a-dir", fx->dir);
    assert_int_equal(fs_write_atomic(blocker, "x", 1, 0600), CAD_OK);
    snprintf(cfg->outbox_dir, sizeof cfg->outbox_dir, "%s/outbox", blocker);
    cfg->max_attempts = 3;
    int64_t id = queue(fx->st, "key_revoked:acme:1", "brand@acme.example", "S", "B\n");
    struct mail_deliver_result r;

    int64_t now = T0;
    assert_int_equal(mail_deliver_pending(fx->st, cfg, now, &r), CAD_OK);
    assert_int_equal(r.retrying, 1);
    struct row row = get_row(fx->st, id);
    assert_string_equal(row.status, "queued");
    assert_int_equal(row.attempts, 1);
    assert_int_equal(row.next_attempt_ms, now + 60 * 1000);
    assert_true(strlen(row.last_error) > 0);

    /* Not before it is due. */
    assert_int_equal(mail_deliver_pending(fx->st, cfg, now + 59999, &r), CAD_OK);
    assert_int_equal(r.attempted, 0);

    now += 60 * 1000;
    assert_int_equal(mail_deliver_pending(fx->st, cfg, now, &r), CAD_OK);
    assert_int_equal(r.retrying, 1);
    row = get_row(fx->st, id);
    assert_int_equal(row.attempts, 2);
    assert_int_equal(row.next_attempt_ms, now + 120 * 1000);

    now += 120 * 1000;
    assert_int_equal(mail_deliver_pending(fx->st, cfg, now, &r), CAD_OK);
    assert_int_equal(r.failed, 1);
    row = get_row(fx->st, id);
    assert_string_equal(row.status, "failed");
    assert_int_equal(row.attempts, 3);
    assert_true(strlen(row.last_error) > 0);

    /* Failed is final: a working directory later does not resurrect it. */
    snprintf(cfg->outbox_dir, sizeof cfg->outbox_dir, "%s/outbox", fx->dir);
    assert_int_equal(mail_deliver_pending(fx->st, cfg, now + 86400000LL, &r), CAD_OK);
    assert_int_equal(r.attempted, 0);
    assert_int_equal(sql_int(fx->st,
                             "SELECT COUNT(*) FROM audit_log WHERE action = 'mail.send.result' "
                             "AND status IS NULL AND detail LIKE $1",
                             "kind=key_request outbox=1 %"),
                     3);

    /* A message interrupted max_attempts times is failed, not resent again. */
    int64_t id2 = queue(fx->st, "key_revoked:acme:2", "brand@acme.example", "S", "B\n");
    assert_int_equal(
        store_exec(fx->st,
                   "UPDATE outbox SET status = 'sending', attempts = 3, sending_ms = 1 "
                   "WHERE id = $1",
                   SV_ARGS(SV_INT(id2))),
        CAD_OK);
    assert_int_equal(mail_deliver_pending(fx->st, cfg, now, &r), CAD_OK);
    assert_int_equal(r.attempted, 0);
    assert_int_equal(r.failed, 1);
    row = get_row(fx->st, id2);
    assert_string_equal(row.status, "failed");
    assert_non_null(strstr(row.last_error, "interrupted"));
    assert_int_equal(count_files(cfg->outbox_dir, NULL), 0);
}

static void test_bad_config_claims_nothing(void **state)
{
    struct fixture *fx = *state;
    int64_t id = queue(fx->st, "k", "brand@acme.example", "S", "B\n");
    struct mail_deliver_result r;
    snprintf(fx->cfg.from, sizeof fx->cfg.from, "cadence@x.example\r\nBcc: v@evil.example");
    assert_int_equal(mail_deliver_pending(fx->st, &fx->cfg, T0, &r), CAD_EINVAL);
    snprintf(fx->cfg.from, sizeof fx->cfg.from, "Cadence <cadence@x.example> extra");
    assert_int_equal(mail_deliver_pending(fx->st, &fx->cfg, T0, &r), CAD_EINVAL);
    snprintf(fx->cfg.from, sizeof fx->cfg.from, "%s", MAIL_FROM_DEFAULT);
    snprintf(fx->cfg.smtp_url, sizeof fx->cfg.smtp_url, "smtp://user:secret@mail.example:587");
    assert_int_equal(mail_deliver_pending(fx->st, &fx->cfg, T0, &r), CAD_EINVAL);
    assert_null(strstr(cad_errmsg(), "secret"));
    struct row row = get_row(fx->st, id);
    assert_string_equal(row.status, "queued");
    assert_int_equal(row.attempts, 0);
    assert_int_equal(
        sql_int(fx->st, "SELECT COUNT(*) FROM audit_log WHERE action LIKE $1", "mail.%"), 0);
}

static void test_unbuildable_row_fails_alone(void **state)
{
    struct fixture *fx = *state;
    int64_t good = queue(fx->st, "k:good", "brand@acme.example", "Fine", "B\n");
    int64_t bad = queue(fx->st, "k:bad", "brand@acme.example", "Fine too", "B\n");
    /* Someone edits the database directly and puts a header into the subject. */
    assert_int_equal(store_exec(fx->st,
                                "UPDATE outbox SET subject = 'x' || char(13) || char(10) || "
                                "'Bcc: v@evil.example' WHERE id = $1",
                                SV_ARGS(SV_INT(bad))),
                     CAD_OK);
    struct mail_deliver_result r;
    assert_int_equal(mail_deliver_pending(fx->st, &fx->cfg, T0, &r), CAD_OK);
    assert_int_equal(r.sent, 1);
    assert_int_equal(r.failed, 1);
    assert_string_equal(get_row(fx->st, good).status, "sent");
    struct row rb = get_row(fx->st, bad);
    assert_string_equal(rb.status, "failed");
    assert_non_null(strstr(rb.last_error, "line break"));
    assert_int_equal(count_files(fx->cfg.outbox_dir, ".eml"), 1);
    assert_int_equal(sql_int(fx->st,
                             "SELECT COUNT(*) FROM audit_log WHERE action = 'mail.send' AND "
                             "detail LIKE $1",
                             "kind=key_request outbox=2 failed: cannot build%"),
                     1);
}

static void test_smtp_url_check(void **state)
{
    (void)state;
    bool tls;
    assert_int_equal(mail_smtp_url_check("smtp://mail.example.com:587", &tls), CAD_OK);
    assert_true(tls);
    assert_int_equal(mail_smtp_url_check("smtp://10.1.2.3", &tls), CAD_OK);
    assert_true(tls);
    assert_int_equal(mail_smtp_url_check("smtps://mail.example.com:465", &tls), CAD_OK);
    assert_true(tls);
    assert_int_equal(mail_smtp_url_check("smtp://127.0.0.1:2525", &tls), CAD_OK);
    assert_false(tls);
    assert_int_equal(mail_smtp_url_check("smtp://localhost:25", &tls), CAD_OK);
    assert_false(tls);
    assert_int_equal(mail_smtp_url_check("smtp://[::1]:25", &tls), CAD_OK);
    assert_false(tls);
    assert_int_equal(mail_smtp_url_check("smtp://localhost.evil.example:25", &tls), CAD_OK);
    assert_true(tls);
    assert_int_equal(mail_smtp_url_check("http://mail.example.com", &tls), CAD_EINVAL);
    assert_int_equal(mail_smtp_url_check("smtp://u:pw@mail.example.com", &tls), CAD_EINVAL);
    assert_null(strstr(cad_errmsg(), "pw@"));
    assert_int_equal(mail_smtp_url_check("smtp://u@mail.example.com", &tls), CAD_EINVAL);
    assert_int_equal(mail_smtp_url_check("smtp://mail.example.com/?x=1", &tls), CAD_EINVAL);
    assert_int_equal(mail_smtp_url_check("smtp://mail example.com", &tls), CAD_EINVAL);
    assert_int_equal(mail_smtp_url_check("", &tls), CAD_EINVAL);
}

static void test_config_from_env(void **state)
{
    struct fixture *fx = *state;
    char pwfile[700];
    snprintf(pwfile, sizeof pwfile, "%s/smtp-password", fx->dir);
    assert_int_equal(fs_write_atomic(pwfile, "s3cret-pass\n", 12, 0600), CAD_OK);
    setenv("CADENCE_SMTP_URL", "smtp://127.0.0.1:2525", 1);
    setenv("CADENCE_SMTP_USER", "cadence", 1);
    setenv("CADENCE_SMTP_PASSWORD_FILE", pwfile, 1);
    setenv("CADENCE_MAIL_FROM", "Agency <hello@agency.example>", 1);
    struct mail_config c;
    assert_int_equal(mail_config_from_env(&c, "/data"), CAD_OK);
    assert_string_equal(c.smtp_url, "smtp://127.0.0.1:2525");
    assert_string_equal(c.smtp_user, "cadence");
    assert_non_null(c.smtp_password);
    assert_string_equal(secret_cstr(c.smtp_password), "s3cret-pass");
    assert_string_equal(c.from, "Agency <hello@agency.example>");
    assert_string_equal(c.outbox_dir, "/data/outbox");
    mail_config_free(&c);
    assert_null(c.smtp_password);

    setenv("CADENCE_MAIL_FROM", "x@y.example\nBcc: v@evil.example", 1);
    assert_int_equal(mail_config_from_env(&c, "/data"), CAD_EINVAL);
    mail_config_free(&c);
    setenv("CADENCE_MAIL_FROM", "x@y.example", 1);
    unsetenv("CADENCE_SMTP_USER");
    assert_int_equal(mail_config_from_env(&c, "/data"), CAD_EINVAL);
    mail_config_free(&c);
    unsetenv("CADENCE_SMTP_URL");
    unsetenv("CADENCE_SMTP_PASSWORD_FILE");
    unsetenv("CADENCE_MAIL_FROM");
    assert_int_equal(mail_config_from_env(&c, "/data"), CAD_OK);
    assert_string_equal(c.smtp_url, "");
    assert_string_equal(c.from, MAIL_FROM_DEFAULT);
    assert_null(c.smtp_password);
    mail_config_free(&c);
}

/* ---- a real SMTP server --------------------------------------------------------------------- */

/* Starts the sink (port 0 = any free one), waits until it listens, and returns its port. */
/* Starts the sink; returns its port, or -1 when it exited before listening (e.g. the port it
 * was asked for is still taken). */
static int sink_try_start(struct fixture *fx, int port, const char *user, const char *pwfile)
{
    fs_mkdir_p(fx->sink_dir, 0700);
    char portfile[700];
    snprintf(portfile, sizeof portfile, "%s/port", fx->sink_dir);
    unlink(portfile);
    char port_arg[16];
    snprintf(port_arg, sizeof port_arg, "%d", port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The server's own chatter goes to DIR/sink.log, not into the test's output. */
        char logpath[800];
        snprintf(logpath, sizeof logpath, "%s/sink.log", fx->sink_dir);
        int devnull = open("/dev/null", O_RDONLY);
        int logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (devnull >= 0)
            dup2(devnull, 0);
        if (logfd >= 0) {
            dup2(logfd, 1);
            dup2(logfd, 2);
        }
        /* argv[0] is the full path: Python finds its prefix (and so Debian's dist-packages, where
         * aiosmtpd is) from argv[0], searching PATH when it has no slash; a PATH that starts with
         * another Python (pyenv) would hand it that one's library. */
        if (user)
            execl("/usr/bin/python3", "/usr/bin/python3", MAIL_SINK_PY, fx->sink_dir, "--port",
                  port_arg, "--user", user, "--password-file", pwfile, (char *)NULL);
        else
            execl("/usr/bin/python3", "/usr/bin/python3", MAIL_SINK_PY, fx->sink_dir, "--port",
                  port_arg, (char *)NULL);
        _exit(127);
    }
    fx->sink = pid;
    for (int i = 0; i < 200; i++) {
        char *data = NULL;
        size_t len;
        if (fs_read_all(portfile, 64, &data, &len) == CAD_OK) {
            int got = atoi(data);
            free(data);
            fx->sink_port = got;
            return got;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fx->sink = 0;
            return -1;
        }
        usleep(50 * 1000);
    }
    fail_msg("the SMTP sink did not start listening within 10 s");
    return -1;
}

static int sink_start(struct fixture *fx, int port, const char *user, const char *pwfile)
{
    int got = sink_try_start(fx, port, user, pwfile);
    if (got < 0) {
        char logpath[800], *log = NULL;
        size_t len;
        snprintf(logpath, sizeof logpath, "%s/sink.log", fx->sink_dir);
        if (fs_read_all(logpath, 1 << 16, &log, &len) == CAD_OK)
            fprintf(stderr, "--- sink.log ---\n%s--- end of sink.log ---\n", log);
        free(log);
        fail_msg("the SMTP sink exited before listening (see %s/sink.log): is python3-aiosmtpd "
                 "installed (scripts/install-deps.sh)?",
                 fx->sink_dir);
    }
    return got;
}

/* Restarts the sink on the port it had: another process may hold that port for a moment after
 * the old sink stopped, so this tries for a few seconds before it fails. */
static int sink_restart(struct fixture *fx, int port, const char *user, const char *pwfile)
{
    for (int i = 0; i < 20; i++) {
        int got = sink_try_start(fx, port, user, pwfile);
        if (got >= 0)
            return got;
        usleep(250 * 1000);
    }
    return sink_start(fx, port, user, pwfile);
}

static char *sink_msg(struct fixture *fx, int n, const char *ext)
{
    char path[800];
    snprintf(path, sizeof path, "%s/msg-%d.%s", fx->sink_dir, n, ext);
    return read_file(path);
}

static void test_smtp_real_server(void **state)
{
    struct fixture *fx = *state;
    char pwfile[700];
    snprintf(pwfile, sizeof pwfile, "%s/smtp-password", fx->dir);
    assert_int_equal(fs_write_atomic(pwfile, "correct horse battery\n", 22, 0600), CAD_OK);
    int port = sink_start(fx, 0, "cadence", pwfile);
    assert_true(port > 0);

    struct mail_config *cfg = &fx->cfg;
    snprintf(cfg->smtp_url, sizeof cfg->smtp_url, "smtp://127.0.0.1:%d", port);
    snprintf(cfg->smtp_user, sizeof cfg->smtp_user, "cadence");
    const char *pw = "correct horse battery";
    assert_int_equal(secret_from(&cfg->smtp_password, pw, strlen(pw)), CAD_OK);
    snprintf(cfg->from, sizeof cfg->from, "Agence Café <hello@agence.example>");

    struct mail_message km;
    const char *link = "https://cadence.agency.example/onboard/tok_abcdef0123456789";
    assert_int_equal(mail_build_key_request("Café Olé", link, &km), CAD_OK);
    int64_t a = 0, b;
    bool is_new;
    assert_int_equal(mail_queue(fx->st, "cafe", MAIL_KEY_REQUEST, "key_request:cafe:1",
                                "hola@cafe.example", km.subject, km.body, &a, &is_new),
                     CAD_OK);
    b = queue(fx->st, "key_request:acme:1", "brand@acme.example", "Plain subject",
              "Line one\n.\n..two dots\nFrom the team\n");

    struct mail_deliver_result r;
    int64_t now = time_now_ms();
    assert_int_equal(mail_deliver_pending(fx->st, cfg, now, &r), CAD_OK);
    if (r.sent != 2)
        fprintf(stderr, "last error: %s\n", get_row(fx->st, a).last_error);
    assert_int_equal(r.sent, 2);
    assert_int_equal(count_files(fx->sink_dir, ".eml"), 2);

    /* Message 1: headers as sent, Message-ID as stored, envelope and AUTH. */
    char *m1 = sink_msg(fx, 1, "eml"), *e1 = sink_msg(fx, 1, "env");
    char v[1024], decoded[1024];
    struct row ra = get_row(fx->st, a);
    header_value(m1, "Message-ID", v, sizeof v);
    assert_string_equal(v, ra.message_id);
    assert_non_null(strstr(ra.message_id, "@agence.example>"));
    header_value(m1, "To", v, sizeof v);
    assert_string_equal(v, "hola@cafe.example");
    header_value(m1, "Subject", v, sizeof v);
    decode_words(v, decoded, sizeof decoded);
    assert_string_equal(decoded, km.subject);
    header_value(m1, "From", v, sizeof v);
    assert_non_null(strstr(v, "<hello@agence.example>"));
    decode_words(v, decoded, sizeof decoded);
    assert_string_equal(decoded, "Agence Café");
    header_value(m1, "Content-Transfer-Encoding", v, sizeof v);
    assert_string_equal(v, "quoted-printable");
    assert_non_null(strstr(e1, "MAIL FROM hello@agence.example\n"));
    assert_non_null(strstr(e1, "RCPT TO hola@cafe.example\n"));
    assert_non_null(strstr(e1, "AUTH yes\n"));
    free(m1);
    free(e1);
    mail_message_free(&km);

    /* Message 2: a lone "." line and a leading dot survive (curl dot-stuffs, the server unstuffs).
     */
    char *m2 = sink_msg(fx, 2, "eml");
    header_value(m2, "Message-ID", v, sizeof v);
    assert_string_equal(v, get_row(fx->st, b).message_id);
    header_value(m2, "Subject", v, sizeof v);
    assert_string_equal(v, "Plain subject");
    assert_non_null(strstr(m2, "\r\n\r\nLine one\r\n.\r\n..two dots\r\nFrom the team\r\n"));
    free(m2);
    assert_int_equal(sql_int(fx->st,
                             "SELECT COUNT(*) FROM audit_log WHERE action = 'mail.send.result' "
                             "AND status = 250 AND request_id LIKE $1",
                             "<cadence.%"),
                     2);

    /* Delivering again sends nothing more. */
    assert_int_equal(mail_deliver_pending(fx->st, cfg, now + 1000, &r), CAD_OK);
    assert_int_equal(r.attempted, 0);
    assert_int_equal(count_files(fx->sink_dir, ".eml"), 2);

    /* The server goes away: the next message fails, stays queued and is retried later. */
    sink_stop(fx);
    int64_t c = queue(fx->st, "key_revoked:acme:1", "brand@acme.example", "Third", "Body 3\n");
    assert_int_equal(mail_deliver_pending(fx->st, cfg, now + 2000, &r), CAD_OK);
    assert_int_equal(r.attempted, 1);
    assert_int_equal(r.retrying, 1);
    assert_int_equal(r.sent, 0);
    struct row rc_ = get_row(fx->st, c);
    assert_string_equal(rc_.status, "queued");
    assert_int_equal(rc_.attempts, 1);
    assert_true(strlen(rc_.last_error) > 0);
    assert_non_null(strstr(rc_.last_error, "onnect"));
    assert_int_equal(rc_.next_attempt_ms, now + 2000 + mail_backoff_ms(cfg, 1));

    /* Back on the same port: not before the retry is due, then exactly once. */
    assert_int_equal(sink_restart(fx, port, "cadence", pwfile), port);
    assert_int_equal(mail_deliver_pending(fx->st, cfg, now + 3000, &r), CAD_OK);
    assert_int_equal(r.attempted, 0);
    assert_int_equal(mail_deliver_pending(fx->st, cfg, rc_.next_attempt_ms, &r), CAD_OK);
    assert_int_equal(r.sent, 1);
    assert_int_equal(count_files(fx->sink_dir, ".eml"), 3);
    char *m3 = sink_msg(fx, 3, "eml");
    rc_ = get_row(fx->st, c);
    assert_string_equal(rc_.status, "sent");
    assert_int_equal(rc_.attempts, 2);
    assert_string_equal(rc_.last_error, "");
    header_value(m3, "Message-ID", v, sizeof v);
    assert_string_equal(v, rc_.message_id);
    header_value(m3, "Subject", v, sizeof v);
    assert_string_equal(v, "Third");
    free(m3);

    /* A crash after the claim: resent once, with the Message-ID it was given. */
    int64_t d = queue(fx->st, "onboarding_link:acme:1", "brand@acme.example", "Fourth", "B4\n");
    assert_int_equal(
        store_exec(fx->st,
                   "UPDATE outbox SET status = 'sending', attempts = 1, sending_ms = $2, "
                   "message_id = '<cadence.crashed.1@agence.example>' WHERE id = $1",
                   SV_ARGS(SV_INT(d), SV_INT(now))),
        CAD_OK);
    assert_int_equal(mail_deliver_pending(fx->st, cfg, now + cfg->sending_lease_ms, &r), CAD_OK);
    assert_int_equal(r.sent, 1);
    assert_int_equal(r.resent, 1);
    assert_int_equal(count_files(fx->sink_dir, ".eml"), 4);
    char *m4 = sink_msg(fx, 4, "eml");
    header_value(m4, "Message-ID", v, sizeof v);
    assert_string_equal(v, "<cadence.crashed.1@agence.example>");
    free(m4);

    /* A permanent refusal fails the message at once. */
    int64_t e = queue(fx->st, "k:reject", "reject@cafe.example", "Fifth", "B5\n");
    assert_int_equal(mail_deliver_pending(fx->st, cfg, now + cfg->sending_lease_ms, &r), CAD_OK);
    assert_int_equal(r.failed, 1);
    struct row re = get_row(fx->st, e);
    assert_string_equal(re.status, "failed");
    assert_int_equal(re.attempts, 1);
    assert_non_null(strstr(re.last_error, "550"));

    /* A wrong password is retried (the operator can fix it), and the password is not in the
     * error, the audit log or anything listed. */
    secret_free(cfg->smtp_password);
    const char *bad = "wrong-password-xyz";
    assert_int_equal(secret_from(&cfg->smtp_password, bad, strlen(bad)), CAD_OK);
    int64_t f = queue(fx->st, "k:badauth", "brand@acme.example", "Sixth", "B6\n");
    assert_int_equal(mail_deliver_pending(fx->st, cfg, now + cfg->sending_lease_ms, &r), CAD_OK);
    assert_int_equal(r.retrying, 1);
    struct row rf = get_row(fx->st, f);
    assert_string_equal(rf.status, "queued");
    assert_non_null(strstr(rf.last_error, "Login denied"));
    assert_null(strstr(rf.last_error, bad));
    assert_int_equal(sql_int(fx->st,
                             "SELECT COUNT(*) FROM audit_log WHERE detail LIKE $1 OR "
                             "endpoint LIKE $1",
                             "%wrong-password%"),
                     0);
    assert_int_equal(count_files(fx->sink_dir, ".eml"), 4);
    sink_stop(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test_setup_teardown(test_queue_dedupe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_refuses_bad_input, setup, teardown),
        cmocka_unit_test(test_format_refuses_header_injection),
        cmocka_unit_test(test_format_encodings),
        cmocka_unit_test(test_builders),
        cmocka_unit_test_setup_teardown(test_eml_written_once_atomically, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backoff_schedule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_config_claims_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unbuildable_row_fails_alone, setup, teardown),
        cmocka_unit_test(test_smtp_url_check),
        cmocka_unit_test_setup_teardown(test_config_from_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_real_server, setup, teardown),
    };
    log_set_level(LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
