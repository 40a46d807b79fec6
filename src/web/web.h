/*
 * The web face of Cadence: `cadence serve` (brand onboarding, the help page, the operators'
 * console at /admin, health and metrics). Onboarding links and payment confirmation, which the
 * command line shares, live one layer down in src/onboard.
 *
 * The server is libmicrohttpd with a thread pool; each worker thread opens its own store and vault
 * on first use (a store handle is not thread-safe). Everything a request needs besides those is
 * read-only after start-up or behind a mutex (throttle, metrics).
 */
#ifndef CADENCE_WEB_WEB_H
#define CADENCE_WEB_WEB_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct worker_pool;

#include "onboard/onboard.h"

#define WEB_TOKEN_LEN ONBOARD_TOKEN_LEN

struct web_config {
    const char *data_dir;   /* holds cadence.db, the master key and web.key */
    const char *listen;     /* "HOST:PORT" or "[V6]:PORT"; port 0 picks a free one */
    unsigned threads;       /* worker threads (MHD thread pool) */
    unsigned max_conns;     /* concurrent connections, all threads together */
    unsigned timeout_s;     /* an idle connection is closed after this */
    size_t body_max;        /* largest request body; 413 beyond it */
    unsigned drain_s;       /* on SIGTERM/SIGINT, how long in-flight requests may take to end */
    const char *public_url; /* base of the links shown to people ($CADENCE_PUBLIC_URL) */
    struct worker_pool *workers; /* background plan applies the console queues to; may be NULL */
};

/* Defaults: 127.0.0.1:8080, 4 threads, 256 connections, 30 s timeout, 64 KiB bodies, 30 s drain,
 * public URL from $CADENCE_PUBLIC_URL or http://127.0.0.1:8080. */
void web_config_defaults(struct web_config *cfg);

/* Runs the server until SIGTERM or SIGINT: prints "listening on http://HOST:PORT" on stdout once
 * it accepts connections, and on the signal stops accepting, lets in-flight requests finish (up to
 * drain_s) and returns CAD_OK. Errors (address in use, no data directory) return before serving. */
int web_serve(const struct web_config *cfg);

#endif
