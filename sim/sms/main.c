/*
 * cadence-sms-sim: a stand-in for the two SMS providers' verification endpoints, for tests.
 *
 *   cadence-sms-sim --listen 127.0.0.1:PORT [--postscript-key K] [--attentive-key K]
 *                   [--company NAME]
 *
 * Binds 127.0.0.1 only, prints "listening on http://127.0.0.1:PORT" and serves until SIGTERM or
 * SIGINT. One server plays both providers, since their paths differ; point
 * CADENCE_POSTSCRIPT_URL and CADENCE_ATTENTIVE_URL at it:
 *   GET /api/v2/me  Postscript's "Verify Identity": {"resource_id","resource_name",
 *                   "resource_type":"shop"} for Authorization: Bearer <postscript key>.
 *   GET /v1/me      Attentive's token test: {"applicationName","attentiveDomainName",
 *                   "companyName","contactEmail","companyId"} for Bearer <attentive key>.
 * Any other or missing key gets 401. Keys given more than once are all accepted.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loopback.h"

#define MAX_KEYS 16

static struct {
    const char *postscript[MAX_KEYS], *attentive[MAX_KEYS];
    size_t npostscript, nattentive;
    const char *company;
} sim = {.company = "Acme Outdoors"};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!text)
        return MHD_NO;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static bool bearer_is(struct MHD_Connection *c, const char *const *keys, size_t n)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7) != 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(h + 7, keys[i]) == 0)
            return true;
    return false;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    (void)data;
    if (!*con_cls) {
        *con_cls = c; /* first call: headers only */
        return MHD_YES;
    }
    if (*data_size) {
        *data_size = 0;
        return MHD_YES;
    }
    bool ps = strcmp(url, "/api/v2/me") == 0, at = strcmp(url, "/v1/me") == 0;
    if (!ps && !at)
        return reply(c, 404, json_pack("{s:s}", "error", "not found"));
    if (strcmp(method, "GET") != 0)
        return reply(c, 405, json_pack("{s:s}", "error", "method not allowed"));
    if (ps) {
        if (!bearer_is(c, sim.postscript, sim.npostscript))
            return reply(c, 401,
                         json_pack("{s:i,s:s,s:b}", "error_code", 1001, "error_message",
                                   "Unauthorized", "success", 0));
        return reply(c, 200,
                     json_pack("{s:s,s:s,s:s}", "resource_id", "shop_1234567abcde", "resource_name",
                               sim.company, "resource_type", "shop"));
    }
    if (!bearer_is(c, sim.attentive, sim.nattentive))
        return reply(c, 401, json_pack("{s:s}", "message", "Unauthorized"));
    return reply(c, 200,
                 json_pack("{s:s,s:s,s:s,s:s,s:s}", "applicationName", "Cadence",
                           "attentiveDomainName", "acme.attn.tv", "companyName", sim.company,
                           "contactEmail", "owner@example.com", "companyId", "MDc6Q29tcGFueTI"));
}

static int usage(const char *why, const char *arg)
{
    fprintf(stderr,
            "cadence-sms-sim: %s%s%s\nusage: cadence-sms-sim --listen 127.0.0.1:PORT "
            "[--postscript-key K] [--attentive-key K] [--company NAME]\n",
            why, arg ? ": " : "", arg ? arg : "");
    return 2;
}

int main(int argc, char **argv)
{
    long port = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            return usage("missing value", a);
        const char *v = argv[++i];
        if (strcmp(a, "--listen") == 0) {
            char *end;
            if (strncmp(v, "127.0.0.1:", 10) != 0)
                return usage("--listen accepts only 127.0.0.1:PORT", v);
            port = strtol(v + 10, &end, 10);
            if (*end || end == v + 10 || port < 0 || port > 65535)
                return usage("bad port", v);
        } else if (strcmp(a, "--postscript-key") == 0 && sim.npostscript < MAX_KEYS) {
            sim.postscript[sim.npostscript++] = v;
        } else if (strcmp(a, "--attentive-key") == 0 && sim.nattentive < MAX_KEYS) {
            sim.attentive[sim.nattentive++] = v;
        } else if (strcmp(a, "--company") == 0) {
            sim.company = v;
        } else {
            return usage("unknown option (or too many keys)", a);
        }
    }
    if (port < 0)
        return usage("--listen 127.0.0.1:PORT is required", NULL);
    int bound = 0;
    int fd = sim_listen_loopback((int)port, &bound);
    if (fd < 0) {
        fprintf(stderr, "cadence-sms-sim: cannot listen on 127.0.0.1:%ld: %s\n", port,
                strerror(errno));
        return 1;
    }
    sigset_t set;
    sim_block_stop_signals(&set);
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, NULL,
                         MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "cadence-sms-sim: cannot start the HTTP server\n");
        return 1;
    }
    printf("listening on http://127.0.0.1:%d\n", bound);
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    close(fd);
    return 0;
}
