/*
 * The router: one table of (method, pattern, handler) in server.c, matched segment by segment.
 * Patterns are literal segments and ":name" captures; nothing else (no wildcards, no regexes), so
 * what a route accepts is visible in the table.
 */
#include <stdio.h>
#include <string.h>

#include "web/web_internal.h"

/* Compares one pattern with the path; fills params on a match. */
static bool match_pattern(const char *pattern, const char *path, struct route_params *params)
{
    params->n = 0;
    const char *p = pattern, *s = path;
    if (*p != '/' || *s != '/')
        return false;
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return false;
        p++;
        s++;
        size_t plen = strcspn(p, "/"), slen = strcspn(s, "/");
        if (*p == ':') {
            if (slen == 0 || slen >= ROUTE_MAX_PARAM_LEN || params->n >= ROUTE_MAX_PARAMS ||
                plen - 1 >= sizeof params->name[0])
                return false;
            memcpy(params->name[params->n], p + 1, plen - 1);
            params->name[params->n][plen - 1] = 0;
            memcpy(params->value[params->n], s, slen);
            params->value[params->n][slen] = 0;
            params->n++;
        } else if (plen != slen || memcmp(p, s, plen) != 0) {
            return false;
        }
        p += plen;
        s += slen;
    }
    return *p == 0 && *s == 0;
}

enum route_match router_match(const struct web_route *table, size_t n, const char *method,
                              const char *path, const struct web_route **out,
                              struct route_params *params, char *allow, size_t allow_size)
{
    bool path_seen = false;
    size_t used = 0;
    if (allow && allow_size)
        allow[0] = 0;
    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        struct route_params tmp;
        if (!match_pattern(table[i].pattern, path, &tmp))
            continue;
        bool same = strcmp(table[i].method, method) == 0 ||
                    (strcmp(method, "HEAD") == 0 && strcmp(table[i].method, "GET") == 0);
        if (same) {
            *out = &table[i];
            *params = tmp;
            return ROUTE_FOUND;
        }
        path_seen = true;
        if (allow && used < allow_size && !strstr(allow, table[i].method)) {
            int w = snprintf(allow + used, allow_size - used, "%s%s", used ? ", " : "",
                             table[i].method);
            used = w < 0 ? allow_size : used + (size_t)w;
        }
    }
    params->n = 0;
    return path_seen ? ROUTE_BAD_METHOD : ROUTE_NO_PATH;
}

const char *route_param(const struct route_params *p, const char *name)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->name[i], name) == 0)
            return p->value[i];
    return NULL;
}
