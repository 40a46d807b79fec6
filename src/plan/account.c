/*
 * Reading a tenant's account: every object of a kind, page by page at the largest page size the
 * endpoint takes, and single lookups by exact name or deterministic id. Names are not unique in
 * Klaviyo and its filters are not all exact (campaigns only have contains), so matching is
 * always done here, on the exact string.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "plan/plan_int.h"
#include "tenant/tenant.h"

static int cmp_obj(const void *a, const void *b)
{
    const struct remote_obj *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->id, y->id);
}

int account_list(klaviyo_client *c, const struct kind_info *ki, struct remote_set *out)
{
    memset(out, 0, sizeof *out);
    char size[16] = "";
    int max = klaviyo_page_size_max(ki->collection);
    if (max > 0)
        snprintf(size, sizeof size, "%d", max);
    const char *kv[6];
    int n = 0;
    if (max > 0) {
        kv[n++] = "page[size]";
        kv[n++] = size;
    }
    if (ki->list_filter) {
        kv[n++] = "filter";
        kv[n++] = ki->list_filter;
    }
    kv[n] = NULL;
    char target[1024];
    int rc = klaviyo_target(target, sizeof target, ki->collection, kv);
    if (rc)
        return rc;
    struct klaviyo_pager pg;
    rc = klaviyo_pager_init(&pg, c, target);
    if (rc)
        return rc;
    for (;;) {
        struct klaviyo_result res = {0};
        int got = klaviyo_pager_next(&pg, &res);
        if (got < 0) {
            rc = cad_fail(got, "cannot read %ss from Klaviyo: %s", ki->type, res.message);
            klaviyo_result_clear(&res);
            break;
        }
        if (got == 0)
            break;
        json_t *data = json_object_get(res.doc, "data");
        size_t i;
        json_t *d;
        json_array_foreach(data, i, d)
        {
            if (out->n == out->cap) {
                size_t cap = out->cap ? out->cap * 2 : 64;
                struct remote_obj *p = realloc(out->objs, cap * sizeof *p);
                if (!p) {
                    rc = cad_fail(CAD_ENOMEM, "out of memory");
                    break;
                }
                out->objs = p;
                out->cap = cap;
            }
            if (remote_obj_from_json(ki, d, &out->objs[out->n]) == CAD_OK)
                out->n++;
        }
        klaviyo_result_clear(&res);
        if (rc)
            break;
    }
    klaviyo_pager_free(&pg);
    if (rc) {
        remote_set_free(out);
        return rc;
    }
    if (out->n)
        qsort(out->objs, out->n, sizeof *out->objs, cmp_obj);
    return CAD_OK;
}

static void encode_segment(const char *in, char *out, size_t outsz)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < outsz; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
}

int lookup_target(const struct kind_info *ki, const char *key, char *out, size_t outsz)
{
    char filter[1024];
    int rc = CAD_OK;
    if (strcmp(ki->lookup, "id") == 0) {
        char id[768], enc[2048];
        if (ki->kind == ASSET_CATALOG_ITEM)
            snprintf(id, sizeof id, "$custom:::$default:::%s", key);
        else
            snprintf(id, sizeof id, "%s", key);
        encode_segment(id, enc, sizeof enc);
        if ((size_t)snprintf(out, outsz, "%s/%s", ki->collection, enc) >= outsz)
            return cad_fail(CAD_EINVAL, "the id of %s is too long", key);
        return CAD_OK;
    }
    if (strcmp(ki->lookup, "all") == 0) {
        const char *kv[] = {NULL};
        return klaviyo_target(out, outsz, ki->collection, kv);
    }
    if (strcmp(ki->lookup, "eqlist") == 0) {
        const char *v[] = {key};
        char any[sizeof filter];
        rc = klaviyo_filter_any(any, sizeof any, "name", v, 1);
        /* any(name,["x"]) -> equals(name,["x"]): lists and segments */
        if (rc == CAD_OK &&
            (size_t)snprintf(filter, sizeof filter, "equals%s", any + 3) >= sizeof filter)
            return cad_fail(CAD_EINVAL, "the name %s is too long", key);
    } else if (strcmp(ki->lookup, "contains") == 0) {
        char part[900];
        rc = klaviyo_filter_op(part, sizeof part, "contains", "name", key);
        if (rc == CAD_OK && (size_t)snprintf(filter, sizeof filter, "and(%s,%s)", ki->list_filter,
                                             part) >= sizeof filter)
            rc = cad_fail(CAD_EINVAL, "the name %s is too long", key);
    } else {
        rc = klaviyo_filter_equals(filter, sizeof filter, "name", key);
    }
    if (rc)
        return rc;
    char size[16];
    int max = klaviyo_page_size_max(ki->collection);
    snprintf(size, sizeof size, "%d", max > 0 ? max : 10);
    const char *kv[] = {"filter", filter, "page[size]", size, NULL};
    if (max <= 0)
        kv[2] = NULL;
    return klaviyo_target(out, outsz, ki->collection, kv);
}

int lookup_match(const struct kind_info *ki, const json_t *doc, const char *key,
                 struct remote_obj *out)
{
    json_t *data = json_object_get(doc, "data");
    if (json_is_object(data)) /* a GET by id */
        return remote_obj_from_json(ki, data, out) == CAD_OK ? 1 : 0;
    size_t i;
    json_t *d;
    json_array_foreach(data, i, d)
    {
        struct remote_obj o;
        if (remote_obj_from_json(ki, d, &o) != CAD_OK)
            continue;
        if (strcmp(o.name, key) == 0) {
            *out = o;
            return 1;
        }
        remote_obj_clear(&o);
    }
    return 0;
}

int plan_client_open(store *st, vault *v, const char *tenant_id, const char *actor,
                     klaviyo_client **out)
{
    struct credential_info ci;
    int rc = credential_info(st, tenant_id, CRED_KLAVIYO, &ci);
    if (rc)
        return rc;
    if (!ci.has_secret)
        return cad_fail(CAD_ESTATE,
                        "tenant %s has no Klaviyo key yet; store one with `cadence key set %s`",
                        tenant_id, tenant_id);
    if (ci.state == KEY_REVOKED)
        return cad_fail(CAD_EAUTH,
                        "Klaviyo revoked tenant %s's key (…%s); nothing is sent until a new key is "
                        "verified (`cadence key set %s --verify`)",
                        tenant_id, ci.last4, tenant_id);
    cad_secret *key = NULL;
    rc = credential_open(st, v, tenant_id, CRED_KLAVIYO, &key);
    if (rc)
        return rc;
    rc = klaviyo_client_new(out, st, tenant_id, actor, key, NULL);
    secret_free(key);
    return rc;
}
