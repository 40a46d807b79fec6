/* Structured log lines with a redaction pass over every line; see log.h. */
#include "common/log.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

static enum log_level min_level = LOG_INFO;
static FILE *out_stream;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

void log_set_level(enum log_level level)
{
    min_level = level;
}

void log_set_stream(FILE *stream)
{
    out_stream = stream;
}

static int key_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c == '-';
}

size_t log_redact(char *s)
{
    static const char mask[] = "pk_[redacted]";
    size_t count = 0;
    for (char *p = s; (p = strstr(p, "pk_")) != NULL;) {
        size_t run = 0;
        while (key_char((unsigned char)p[3 + run]))
            run++;
        if (run < 20) {
            p += 3;
            continue;
        }
        /* Keep the line's length so column-aligned output stays aligned. */
        size_t total = 3 + run;
        size_t keep = total < sizeof mask - 1 ? total : sizeof mask - 1;
        memcpy(p, mask, keep);
        memset(p + keep, '*', total - keep);
        p += total;
        count++;
    }
    return count;
}

void cad_log(enum log_level level, const char *event, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (level < min_level)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s event=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, names[level], event);
    if (fmt && n > 0 && (size_t)n < sizeof line - 1) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
    }
    log_redact(line);
    pthread_mutex_lock(&out_lock);
    FILE *f = out_stream ? out_stream : stderr;
    fputs(line, f);
    fputc('\n', f);
    fflush(f);
    pthread_mutex_unlock(&out_lock);
}
