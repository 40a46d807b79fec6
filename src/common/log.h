/*
 * Structured logging: one line per event on stderr, `ts=... level=... event=... key=value ...`.
 * Every line passes through log_redact(), the last line of defence that masks anything shaped
 * like a Klaviyo private key (pk_ followed by 20 or more key characters) even if a bug hands one
 * in. Secrets never reach here on purpose: they live in cad_secret, which cannot be formatted.
 */
#ifndef CADENCE_COMMON_LOG_H
#define CADENCE_COMMON_LOG_H

#include <stddef.h>
#include <stdio.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Logs `event` at `level`; `fmt` adds key=value pairs (may be NULL). */
void cad_log(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void log_set_level(enum log_level level);
/* Where lines go (stderr by default). Tests point this at a memstream. */
void log_set_stream(FILE *stream);

/* Masks every private-key-shaped run in the NUL-terminated `s` in place, keeping the length
 * (pk_ + asterisks... + last 4 are replaced by "pk_[redacted]" padded). Returns how many runs. */
size_t log_redact(char *s);

#endif
