/*
 * Pagination: follow links.next exactly as Klaviyo gives it (an absolute URL with an opaque
 * cursor), page after page, until it is absent or null. A next link on another origin than the
 * client's base URL is refused, so a hostile or broken response cannot make the client send the
 * key to another host.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "klaviyo/client.h"

int klaviyo_pager_init(struct klaviyo_pager *p, klaviyo_client *c, const char *target)
{
    memset(p, 0, sizeof *p);
    if (!target || target[0] != '/')
        return cad_fail(CAD_EINVAL, "the first page's target is a path (/api/...)");
    p->client = c;
    if (!(p->next = strdup(target)))
        return cad_fail(CAD_ENOMEM, "out of memory");
    return CAD_OK;
}

int klaviyo_pager_next(struct klaviyo_pager *p, struct klaviyo_result *res)
{
    if (!p->next)
        return 0;
    struct klaviyo_request req = {.method = "GET", .target = p->next};
    int rc = klaviyo_call(p->client, &req, res);
    if (rc)
        return rc;
    free(p->next);
    p->next = NULL;
    p->pages++;
    json_t *next = json_object_get(json_object_get(res->doc, "links"), "next");
    if (json_is_string(next) && *json_string_value(next)) {
        const char *url = json_string_value(next);
        if (!klaviyo_same_origin(klaviyo_client_config(p->client)->base_url, url)) {
            res->rc = cad_fail(CAD_EPERM,
                               "refused to follow links.next to another host than %s: the key is "
                               "sent only there",
                               klaviyo_client_config(p->client)->base_url);
            res->outcome = KLAVIYO_OUT_REFUSED;
            snprintf(res->message, sizeof res->message, "%s", cad_errmsg());
            return res->rc;
        }
        if (!(p->next = strdup(url)))
            return cad_fail(CAD_ENOMEM, "out of memory");
    } else if (next && !json_is_null(next)) {
        return cad_fail(CAD_EINVAL, "links.next is neither a URL nor null");
    }
    return 1;
}

void klaviyo_pager_free(struct klaviyo_pager *p)
{
    free(p->next);
    p->next = NULL;
}
