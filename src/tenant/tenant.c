/* Tenants: creation with a unique slug and a data key, lookup, listing, payment. */
#include "tenant/tenant.h"

#include <stdio.h>
#include <string.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/util.h"

bool email_valid(const char *email)
{
    size_t len = strlen(email);
    const char *at = strchr(email, '@');
    if (len < 3 || len > 254 || !at || at == email || strchr(at + 1, '@'))
        return false;
    const char *dot = strrchr(at + 1, '.');
    if (!dot || dot == at + 1 || dot[1] == '\0')
        return false;
    for (const unsigned char *p = (const unsigned char *)email; *p; p++)
        if (*p <= ' ' || *p == 0x7f || *p == '<' || *p == '>' || *p == '"' || *p == ',')
            return false;
    return true;
}

static int row_exists(void *ctx, const store_row *row)
{
    (void)row;
    *(bool *)ctx = true;
    return 0;
}

static void copy_text(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

int tenant_add(store *st, vault *v, const char *actor, const char *name, const char *email,
               char out_id[TENANT_ID_MAX])
{
    size_t name_len = name ? strlen(name) : 0;
    if (name_len == 0)
        return cad_fail(CAD_EINVAL, "the brand name is empty; give it with --name \"Brand Name\"");
    if (name_len > 200)
        return cad_fail(CAD_EINVAL,
                        "the brand name is %zu characters long; at most 200 are allowed", name_len);
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return cad_fail(CAD_EINVAL, "the brand name contains a control character");
    if (email && *email && !email_valid(email))
        return cad_fail(CAD_EINVAL, "\"%s\" is not an email address", email);

    char base[TENANT_ID_MAX - 8];
    slugify(name, base, sizeof base);
    if (base[0] == '\0')
        snprintf(base, sizeof base, "tenant");
    int rc = store_begin(st);
    if (rc)
        return rc;
    char id[TENANT_ID_MAX];
    snprintf(id, sizeof id, "%s", base);
    for (unsigned short n = 2;; n++) {
        bool taken = false;
        rc = store_query(st, "SELECT 1 FROM tenants WHERE id = $1", SV_ARGS(SV_TEXT(id)),
                         row_exists, &taken);
        if (rc || !taken)
            break;
        if (n == 60000) {
            rc = cad_fail(CAD_EEXIST, "too many tenants named like \"%s\"", base);
            break;
        }
        snprintf(id, sizeof id, "%s-%hu", base, n);
    }
    if (rc == CAD_OK)
        rc = store_exec(st,
                        "INSERT INTO tenants(id, name, email, created_ms) VALUES ($1, $2, $3, $4)",
                        SV_ARGS(SV_TEXT(id), SV_TEXT(name), SV_TEXT(email && *email ? email : NULL),
                                SV_INT(time_now_ms())));
    if (rc == CAD_OK)
        rc = vault_tenant_init(v, id);
    if (rc == CAD_OK) {
        struct audit_entry e = {.tenant_id = id,
                                .actor = actor,
                                .action = "tenant.add",
                                .duration_ms = -1,
                                .detail = name};
        rc = audit_append(st, &e, NULL);
    }
    if (rc) {
        store_rollback(st);
        return rc;
    }
    if ((rc = store_commit(st)))
        return rc;
    snprintf(out_id, TENANT_ID_MAX, "%s", id);
    return CAD_OK;
}

#define TENANT_COLUMNS "id, name, email, created_ms, payment, payment_ms"

static void tenant_from_row(const store_row *row, struct tenant *t)
{
    copy_text(t->id, sizeof t->id, store_row_text(row, 0));
    copy_text(t->name, sizeof t->name, store_row_text(row, 1));
    copy_text(t->email, sizeof t->email, store_row_text(row, 2));
    t->created_ms = store_row_int(row, 3);
    t->paid = strcmp(store_row_text(row, 4), "confirmed") == 0;
    t->payment_ms = store_row_is_null(row, 5) ? 0 : store_row_int(row, 5);
}

struct get_ctx {
    struct tenant *t;
    bool found;
};

static int get_row(void *ctx, const store_row *row)
{
    struct get_ctx *g = ctx;
    tenant_from_row(row, g->t);
    g->found = true;
    return 0;
}

int tenant_get(store *st, const char *id, struct tenant *out)
{
    struct get_ctx g = {out, false};
    int rc = store_query(st, "SELECT " TENANT_COLUMNS " FROM tenants WHERE id = $1",
                         SV_ARGS(SV_TEXT(id)), get_row, &g);
    if (rc)
        return rc;
    if (!g.found)
        return cad_fail(CAD_ENOTFOUND, "no tenant \"%s\" (cadence tenant list shows them)", id);
    return CAD_OK;
}

struct list_ctx {
    tenant_fn fn;
    void *ctx;
};

static int list_row(void *ctx, const store_row *row)
{
    struct list_ctx *l = ctx;
    struct tenant t;
    tenant_from_row(row, &t);
    return l->fn(l->ctx, &t);
}

int tenant_list(store *st, tenant_fn fn, void *ctx)
{
    struct list_ctx l = {fn, ctx};
    return store_query(st, "SELECT " TENANT_COLUMNS " FROM tenants ORDER BY created_ms, id",
                       SV_NONE, list_row, &l);
}

int tenant_confirm_payment(store *st, const char *actor, const char *id, bool *was_paid)
{
    struct tenant t;
    int rc = store_begin(st);
    if (rc)
        return rc;
    if ((rc = tenant_get(st, id, &t)))
        goto fail;
    *was_paid = t.paid;
    if (!t.paid) {
        rc = store_exec(st,
                        "UPDATE tenants SET payment = 'confirmed', payment_ms = $2 WHERE id = $1",
                        SV_ARGS(SV_TEXT(id), SV_INT(time_now_ms())));
        struct audit_entry e = {
            .tenant_id = id, .actor = actor, .action = "tenant.paid", .duration_ms = -1};
        if (rc == CAD_OK)
            rc = audit_append(st, &e, NULL);
        if (rc)
            goto fail;
    }
    return store_commit(st);
fail:
    store_rollback(st);
    return rc;
}
