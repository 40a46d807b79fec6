/*
 * Sending a draft campaign: its own confirmation, apart from any plan.
 *
 * campaign_send_prepare() reads the campaign Cadence created (remote_objects), shows who it goes
 * to (its lists and segments, by the names Cadence knows them by) and when, and issues a one-time
 * code bound to that campaign and send time. campaign_send_confirm() with that code schedules
 * (PATCH send_strategy, when a time was given) and sends (POST /api/campaign-send-jobs); the
 * code is the write authorization of those calls. Both are audited.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/util.h"
#include "plan/plan_int.h"

#define SEND_CODE_TTL_MS ((int64_t)15 * 60 * 1000)

static int row_first_text(void *ctx, const store_row *r)
{
    snprintf(ctx, 256, "%s", store_row_text(r, 0));
    return 1;
}

static void name_of(store *st, const char *tenant, const char *id, char *out, size_t n)
{
    char name[256] = "", kind[256] = "";
    store_query(st,
                "SELECT name FROM remote_objects WHERE tenant_id = $1 AND remote_id = $2 AND "
                "kind IN ('list', 'segment')",
                SV_ARGS(SV_TEXT(tenant), SV_TEXT(id)), row_first_text, name);
    store_query(st,
                "SELECT kind FROM remote_objects WHERE tenant_id = $1 AND remote_id = $2 AND "
                "kind IN ('list', 'segment')",
                SV_ARGS(SV_TEXT(tenant), SV_TEXT(id)), row_first_text, kind);
    if (name[0])
        snprintf(out, n, "%s \"%s\" (%s)", kind, name, id);
    else
        snprintf(out, n, "%s (not created by Cadence)", id);
}

static void audience_text(store *st, const char *tenant, const json_t *aud, char *out, size_t n)
{
    size_t o = 0;
    out[0] = '\0';
    static const char *const parts[] = {"included", "excluded"};
    for (int p = 0; p < 2; p++) {
        json_t *ids = json_object_get(aud, parts[p]);
        if (!json_array_size(ids))
            continue;
        o += (size_t)snprintf(out + o, o < n ? n - o : 0, "%s%s: ", o ? "; " : "", parts[p]);
        size_t i;
        json_t *id;
        json_array_foreach(ids, i, id)
        {
            char one[400];
            name_of(st, tenant, json_string_value(id) ? json_string_value(id) : "?", one,
                    sizeof one);
            o += (size_t)snprintf(out + o, o < n ? n - o : 0, "%s%s", i ? ", " : "", one);
        }
    }
    if (!out[0])
        snprintf(out, n, "(no audience)");
}

int campaign_send_prepare(store *st, vault *v, const char *actor, const char *tenant_id,
                          const char *campaign, const char *at, struct campaign_send_preview *out)
{
    memset(out, 0, sizeof *out);
    char rid[256] = "";
    int rc = store_query(st,
                         "SELECT remote_id FROM remote_objects WHERE tenant_id = $1 AND kind = "
                         "'campaign' AND name = $2",
                         SV_ARGS(SV_TEXT(tenant_id), SV_TEXT(campaign)), row_first_text, rid);
    if (rc < 0)
        return rc;
    if (!rid[0])
        return cad_fail(CAD_ENOTFOUND,
                        "Cadence has not created a campaign named \"%s\" for %s; push it with a "
                        "plan first",
                        campaign, tenant_id);
    if (at) {
        int64_t ms;
        if (time_parse(at, &ms) != CAD_OK)
            return cad_fail(CAD_EINVAL,
                            "--at \"%s\" is not a time; write it as 2026-08-01T15:00:00Z", at);
        if (ms <= time_now_ms())
            return cad_fail(CAD_EINVAL, "--at %s is in the past", at);
    }
    klaviyo_client *c = NULL;
    if ((rc = plan_client_open(st, v, tenant_id, actor, &c)))
        return rc;
    char target[512];
    snprintf(target, sizeof target, "/api/campaigns/%s", rid);
    struct klaviyo_request rq = {.method = "GET", .target = target};
    struct klaviyo_result res = {0};
    rc = klaviyo_call(c, &rq, &res);
    klaviyo_client_free(c);
    if (rc) {
        rc = cad_fail(rc, "cannot read campaign %s: %s", rid, res.message);
        klaviyo_result_clear(&res);
        return rc;
    }
    json_t *attrs = json_object_get(json_object_get(res.doc, "data"), "attributes");
    const char *status = json_string_value(json_object_get(attrs, "status"));
    if (status && strcmp(status, "Draft") != 0) {
        rc = cad_fail(CAD_ESTATE, "campaign \"%s\" is %s, not a draft; nothing to send", campaign,
                      status);
        klaviyo_result_clear(&res);
        return rc;
    }
    audience_text(st, tenant_id, json_object_get(attrs, "audiences"), out->audience,
                  sizeof out->audience);
    klaviyo_result_clear(&res);
    snprintf(out->remote_id, sizeof out->remote_id, "%s", rid);
    snprintf(out->send_at, sizeof out->send_at, "%s", at ? at : "immediately");
    unsigned char rnd[5];
    if ((rc = random_bytes(rnd, sizeof rnd)))
        return rc;
    hex_encode(rnd, sizeof rnd, out->code);
    int64_t now = time_now_ms();
    out->expires_ms = now + SEND_CODE_TTL_MS;
    if ((rc = store_begin(st)))
        return rc;
    rc = store_exec(st,
                    "INSERT INTO campaign_sends (code, tenant_id, campaign, remote_id, audience, "
                    "send_at, created_by, created_ms, expires_ms) VALUES ($1, $2, $3, $4, $5, $6, "
                    "$7, $8, $9)",
                    SV_ARGS(SV_TEXT(out->code), SV_TEXT(tenant_id), SV_TEXT(campaign), SV_TEXT(rid),
                            SV_TEXT(out->audience), SV_TEXT(out->send_at), SV_TEXT(actor),
                            SV_INT(now), SV_INT(out->expires_ms)));
    if (!rc) {
        char detail[512];
        snprintf(detail, sizeof detail, "campaign \"%s\" (%s) send %s prepared", campaign, rid,
                 out->send_at);
        struct audit_entry e = {.tenant_id = tenant_id,
                                .actor = actor,
                                .action = "campaign.send.prepare",
                                .duration_ms = -1,
                                .detail = detail};
        rc = audit_append(st, &e, NULL);
    }
    if (rc) {
        store_rollback(st);
        return rc;
    }
    return store_commit(st);
}

struct send_row {
    char remote_id[256], send_at[64];
    int64_t expires_ms, sent_ms;
    bool found;
};

static int row_send(void *ctx, const store_row *r)
{
    struct send_row *s = ctx;
    snprintf(s->remote_id, sizeof s->remote_id, "%s", store_row_text(r, 0));
    snprintf(s->send_at, sizeof s->send_at, "%s", store_row_text(r, 1));
    s->expires_ms = store_row_int(r, 2);
    s->sent_ms = store_row_is_null(r, 3) ? 0 : store_row_int(r, 3);
    s->found = true;
    return 1;
}

int campaign_send_confirm(store *st, vault *v, const char *actor, const char *tenant_id,
                          const char *campaign, const char *code, char *message, size_t msgsz)
{
    struct send_row s = {0};
    int rc =
        store_query(st,
                    "SELECT remote_id, send_at, expires_ms, sent_ms FROM campaign_sends "
                    "WHERE code = $1 AND tenant_id = $2 AND campaign = $3",
                    SV_ARGS(SV_TEXT(code), SV_TEXT(tenant_id), SV_TEXT(campaign)), row_send, &s);
    if (rc < 0)
        return rc;
    if (!s.found)
        return cad_fail(CAD_EPERM,
                        "%s is not a send code for campaign \"%s\" of %s; run `cadence campaign "
                        "send %s \"%s\"` to see the audience and get one",
                        code, campaign, tenant_id, tenant_id, campaign);
    if (s.sent_ms)
        return cad_fail(CAD_ESTATE, "code %s was already used", code);
    if (time_now_ms() > s.expires_ms)
        return cad_fail(CAD_ESTATE, "code %s expired; ask for a new one", code);
    klaviyo_client *c = NULL;
    if ((rc = plan_client_open(st, v, tenant_id, actor, &c)))
        return rc;
    char token[96];
    snprintf(token, sizeof token, "campaign-send:%s", code);
    struct klaviyo_result res = {0};
    if (strcmp(s.send_at, "immediately") != 0) {
        char target[512];
        snprintf(target, sizeof target, "/api/campaigns/%s", s.remote_id);
        json_t *body =
            json_pack("{s:{s:s,s:s,s:{s:{s:s,s:s,s:{s:b}}}}}", "data", "type", "campaign", "id",
                      s.remote_id, "attributes", "send_strategy", "method", "static", "datetime",
                      s.send_at, "options", "is_local", 0);
        char *txt = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        struct klaviyo_request rq = {.method = "PATCH",
                                     .target = target,
                                     .body = txt,
                                     .body_len = txt ? strlen(txt) : 0,
                                     .write_authorization = token};
        rc = klaviyo_call(c, &rq, &res);
        free(txt);
        if (rc) {
            rc = cad_fail(rc, "cannot set the send time: %s", res.message);
            klaviyo_result_clear(&res);
            klaviyo_client_free(c);
            return rc;
        }
        klaviyo_result_clear(&res);
    }
    char body[512];
    snprintf(body, sizeof body, "{\"data\":{\"type\":\"campaign-send-job\",\"id\":\"%s\"}}",
             s.remote_id);
    struct klaviyo_request rq = {.method = "POST",
                                 .target = "/api/campaign-send-jobs",
                                 .body = body,
                                 .body_len = strlen(body),
                                 .write_authorization = token};
    rc = klaviyo_call(c, &rq, &res);
    klaviyo_client_free(c);
    if (rc) {
        rc = cad_fail(rc, "Klaviyo did not take the send: %s", res.message);
        klaviyo_result_clear(&res);
        return rc;
    }
    klaviyo_result_clear(&res);
    if ((rc = store_begin(st)))
        return rc;
    rc = store_exec(st, "UPDATE campaign_sends SET sent_ms = $2 WHERE code = $1",
                    SV_ARGS(SV_TEXT(code), SV_INT(time_now_ms())));
    char detail[512];
    snprintf(detail, sizeof detail, "campaign \"%s\" (%s) sent, send time %s", campaign,
             s.remote_id, s.send_at);
    if (!rc) {
        struct audit_entry e = {.tenant_id = tenant_id,
                                .actor = actor,
                                .action = "campaign.send",
                                .duration_ms = -1,
                                .detail = detail};
        rc = audit_append(st, &e, NULL);
    }
    if (rc) {
        store_rollback(st);
        return rc;
    }
    snprintf(message, msgsz, "%s", detail);
    return store_commit(st);
}
