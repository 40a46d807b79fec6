/*
 * What every emulator does to start serving: a listening socket on 127.0.0.1 only (tests bind
 * nothing else), and SIGINT/SIGTERM blocked so the main thread can sigwait() for a clean stop while
 * libmicrohttpd's threads serve. Shared by cadence-klaviyo-sim, -shopify-sim and -sms-sim.
 */
#ifndef CADENCE_SIM_LOOPBACK_H
#define CADENCE_SIM_LOOPBACK_H

#include <signal.h>

/* A listening socket on 127.0.0.1:port (0 = any free port); the port it got goes to *bound_port.
 * -1 with errno set on failure. */
int sim_listen_loopback(int port, int *bound_port);

/* Blocks SIGINT and SIGTERM in this thread (threads started later inherit it) and ignores
 * SIGPIPE; *set is what to sigwait() for. */
void sim_block_stop_signals(sigset_t *set);

#endif
