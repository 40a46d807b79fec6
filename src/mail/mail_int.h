/*
 * Inside the mail module: the growable buffer messages are built in, the header checks shared by
 * the outbox and the formatter, and the two transports (SMTP, .eml file) behind one signature.
 * Not part of the module's public face (mail.h).
 */
#ifndef CADENCE_MAIL_MAIL_INT_H
#define CADENCE_MAIL_MAIL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mail/mail.h"

struct mbuf {
    char *data;
    size_t len, cap;
    bool failed;
};
int mbuf_add(struct mbuf *b, const void *data, size_t n);
int mbuf_str(struct mbuf *b, const char *s);
int mbuf_printf(struct mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mbuf_free(struct mbuf *b);

bool mail_utf8_valid(const char *s);
/* Non-empty, at most `max` bytes, UTF-8, no CR, LF or other control character. */
int mail_check_header_value(const char *what, const char *s, size_t max);
int mail_check_body(const char *body);
int mail_parse_from(const char *from, char *addr, size_t addr_size, char *name, size_t name_size);

/* What one delivery attempt came to. */
struct mail_send_outcome {
    int status;      /* the SMTP reply code (250 ...), 0 when none; 250 for a written .eml */
    bool permanent;  /* a refusal that another attempt will not change */
    char error[512]; /* "" on success */
};

/* Hands one formatted message to the SMTP server in cfg. Returns CAD_OK when the server accepted
 * it; otherwise CAD_ENET / CAD_EAUTH / CAD_EREMOTE with *out filled. */
int mail_smtp_send(const struct mail_config *cfg, const char *from_addr, const char *to,
                   const char *msg, size_t len, struct mail_send_outcome *out);
/* Writes DIR/<id>.eml atomically (mode 0600, directory 0700). */
int mail_eml_write(const struct mail_config *cfg, int64_t id, const char *msg, size_t len,
                   struct mail_send_outcome *out);

#endif
