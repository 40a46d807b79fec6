/*
 * One validator per JSON kind. Each knows the attributes Klaviyo's create operation accepts and
 * requires (third_party/klaviyo/openapi-stable.json, docs/klaviyo-api-notes.md section 6), and the
 * values Klaviyo would refuse, so that a bundle that loads is one Klaviyo takes. Every problem is
 * reported with the file and the JSON pointer of the field; a validator goes on after a problem
 * so that one load reports them all.
 *
 * A file's "name" (else its file name without extension) becomes the asset's name and Klaviyo's
 * name attribute. Three kinds differ from Klaviyo's attributes on purpose, as docs/bundle.md says:
 * webhooks carry "secret_key_env" (the name of an environment variable read at apply time) and
 * "topics" instead of the secret and the topic relationship; images from a URL write "url"
 * (stored as Klaviyo's "import_from_url"); tags carry "tag_group" and "targets".
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bundle/bundle_int.h"

enum vtype { T_ANY, T_STRING, T_OBJECT, T_ARRAY, T_BOOL, T_INT, T_NUMBER };

struct vctx {
    struct loader *l;
    const char *file;
};

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

static bool type_ok(const json_t *v, enum vtype t)
{
    switch (t) {
    case T_STRING:
        return json_is_string(v);
    case T_OBJECT:
        return json_is_object(v);
    case T_ARRAY:
        return json_is_array(v);
    case T_BOOL:
        return json_is_boolean(v);
    case T_INT:
        return json_is_integer(v);
    case T_NUMBER:
        return json_is_number(v);
    default:
        return true;
    }
}

static const char *vtype_name(enum vtype t)
{
    static const char *const names[] = {"a value",   "a string",   "an object", "an array",
                                        "a boolean", "an integer", "a number"};
    return names[t];
}

__attribute__((format(printf, 3, 4))) static void verr(struct vctx *v, const char *ptr,
                                                       const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    loader_error(v->l, v->file, ptr, 0, 0, "%s", msg);
}

/* obj[key] checked for type (and non-empty when a string or array is required). Reports and
 * returns NULL when missing-but-required or of the wrong type; `hint` finishes the "is required"
 * message with what to write. */
static json_t *member(struct vctx *v, json_t *obj, const char *ptr, const char *key, enum vtype t,
                      bool required, const char *hint)
{
    char p[256];
    json_pointer_append(p, sizeof p, ptr, key);
    json_t *m = json_object_get(obj, key);
    if (!m || (json_is_null(m) && !required)) {
        if (required)
            verr(v, p, "\"%s\" is required%s%s", key, hint ? ": " : "", hint ? hint : "");
        return NULL;
    }
    if (!type_ok(m, t)) {
        verr(v, p, "\"%s\" must be %s, not %s", key, vtype_name(t), type_name(m));
        return NULL;
    }
    if (required && ((json_is_string(m) && json_string_length(m) == 0) ||
                     (json_is_array(m) && json_array_size(m) == 0))) {
        verr(v, p, "\"%s\" must not be empty%s%s", key, hint ? ": " : "", hint ? hint : "");
        return NULL;
    }
    return m;
}

static bool in_list(const char *s, const char *const *vals)
{
    for (size_t i = 0; vals[i]; i++) {
        if (strcmp(s, vals[i]) == 0)
            return true;
    }
    return false;
}

static void join(const char *const *vals, char *out, size_t outsize)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; vals[i] && n < outsize; i++) {
        int w = snprintf(out + n, outsize - n, "%s%s", i ? ", " : "", vals[i]);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

/* A string member that must be one of vals. */
static const char *enum_member(struct vctx *v, json_t *obj, const char *ptr, const char *key,
                               bool required, const char *const *vals)
{
    char all[400];
    join(vals, all, sizeof all);
    char hint[440];
    snprintf(hint, sizeof hint, "one of %s", all);
    json_t *m = member(v, obj, ptr, key, T_STRING, required, hint);
    if (!m)
        return NULL;
    const char *s = json_string_value(m);
    if (!in_list(s, vals)) {
        char p[256];
        json_pointer_append(p, sizeof p, ptr, key);
        verr(v, p, "\"%s\" is \"%.60s\"; Klaviyo accepts %s", key, s, all);
        return NULL;
    }
    return s;
}

static void check_keys(struct vctx *v, json_t *obj, const char *ptr, const char *const *allowed,
                       const char *what)
{
    const char *k;
    json_t *m;
    char all[400], p[256];
    join(allowed, all, sizeof all);
    json_object_foreach(obj, k, m)
    {
        if (in_list(k, allowed))
            continue;
        json_pointer_append(p, sizeof p, ptr, k);
        verr(v, p, "unknown attribute \"%.60s\": %s accepts %s", k, what, all);
    }
}

/* Where Klaviyo wants another asset's id, the bundle must write a $ref of one of the kinds. */
static void want_ref(struct vctx *v, json_t *val, const char *ptr, const char *example)
{
    if (!refs_is_ref(val))
        verr(v, ptr, "must be a reference to an asset of the bundle, written %s", example);
}

static void ref_array(struct vctx *v, json_t *arr, const char *ptr, const char *example)
{
    size_t i;
    json_t *m;
    char p[256];
    json_array_foreach(arr, i, m)
    {
        json_pointer_index(p, sizeof p, ptr, i);
        want_ref(v, m, p, example);
    }
}

/* "id" is not allowed on create anywhere in a form or flow definition. */
static void forbid_ids(struct vctx *v, json_t *j, const char *ptr)
{
    char p[256];
    if (json_is_object(j)) {
        if (refs_is_ref(j))
            return;
        const char *k;
        json_t *m;
        json_object_foreach(j, k, m)
        {
            json_pointer_append(p, sizeof p, ptr, k);
            if (strcmp(k, "id") == 0)
                verr(v, p,
                     "\"id\" is not allowed when Klaviyo creates this; remove it (Klaviyo "
                     "assigns ids)");
            else
                forbid_ids(v, m, p);
        }
    } else if (json_is_array(j)) {
        size_t i;
        json_t *m;
        json_array_foreach(j, i, m)
        {
            json_pointer_index(p, sizeof p, ptr, i);
            forbid_ids(v, m, p);
        }
    }
}

/* Items of an array member, each required to be an object. */
#define EACH_OBJECT(v, arr, ptr, i, item, p)                                                       \
    json_array_foreach((arr), (i), (item)) if (json_pointer_index((p), sizeof(p), (ptr), (i)),     \
                                               !json_is_object(item))                              \
        verr((v), (p), "must be an object, not %s", type_name(item));                              \
    else

/* ---- lists ---- */

static void check_list(struct vctx *v, json_t *root)
{
    static const char *const keys[] = {"name", "opt_in_process", NULL};
    static const char *const opt_in[] = {"single_opt_in", "double_opt_in", NULL};
    check_keys(v, root, "", keys, "create_list");
    enum_member(v, root, "", "opt_in_process", false, opt_in);
}

/* ---- segments ---- */

static void check_conditions(struct vctx *v, json_t *groups_owner, const char *ptr, bool required)
{
    static const char *const types[] = {"profile-group-membership",
                                        "profile-metric",
                                        "profile-property",
                                        "profile-marketing-consent",
                                        "profile-region",
                                        "profile-postal-code-distance",
                                        "profile-predictive-analytics",
                                        "profile-has-custom-object",
                                        "profile-permissions",
                                        "profile-metric-funnel",
                                        NULL};
    char gp[256], cp[256], p[256];
    json_t *groups = member(v, groups_owner, ptr, "condition_groups", T_ARRAY, required,
                            "add at least one group, {\"conditions\": [...]}");
    if (!groups)
        return;
    json_pointer_append(gp, sizeof gp, ptr, "condition_groups");
    size_t i, j;
    json_t *g, *c;
    EACH_OBJECT(v, groups, gp, i, g, p)
    {
        char grp[256];
        snprintf(grp, sizeof grp, "%s", p);
        json_t *conds = member(v, g, grp, "conditions", T_ARRAY, true,
                               "a condition group holds at least one condition");
        if (!conds)
            continue;
        json_pointer_append(cp, sizeof cp, grp, "conditions");
        EACH_OBJECT(v, conds, cp, j, c, p)
        {
            char cnd[256];
            snprintf(cnd, sizeof cnd, "%s", p);
            const char *t = enum_member(v, c, cnd, "type", true, types);
            if (t && strcmp(t, "profile-group-membership") == 0) {
                member(v, c, cnd, "is_member", T_BOOL, true, "true or false");
                json_t *ids = member(v, c, cnd, "group_ids", T_ARRAY, true,
                                     "[{\"$ref\": \"list:NAME\"}] or segments");
                if (ids) {
                    char ip[256];
                    json_pointer_append(ip, sizeof ip, cnd, "group_ids");
                    ref_array(v, ids, ip,
                              "{\"$ref\": \"list:NAME\"} or {\"$ref\": \"segment:NAME\"}");
                }
            } else if (t && strcmp(t, "profile-metric") == 0) {
                member(v, c, cnd, "metric_id", T_STRING, true, "the id of a Klaviyo metric");
                enum_member(v, c, cnd, "measurement", true,
                            (const char *const[]){"count", "sum", NULL});
            }
        }
    }
}

static void check_segment(struct vctx *v, json_t *root)
{
    static const char *const keys[] = {"name", "definition", "is_starred", NULL};
    check_keys(v, root, "", keys, "create_segment");
    member(v, root, "", "is_starred", T_BOOL, false, NULL);
    json_t *def = member(v, root, "", "definition", T_OBJECT, true,
                         "{\"condition_groups\": [{\"conditions\": [...]}]}");
    if (!def)
        return;
    static const char *const dkeys[] = {"condition_groups", NULL};
    check_keys(v, def, "/definition", dkeys, "a segment definition");
    check_conditions(v, def, "/definition", true);
}

/* ---- forms ---- */

static void check_form(struct vctx *v, json_t *root)
{
    static const char *const keys[] = {"name", "status", "ab_test", "definition", NULL};
    check_keys(v, root, "", keys, "create_form");
    enum_member(v, root, "", "status", true, (const char *const[]){"draft", NULL});
    member(v, root, "", "ab_test", T_BOOL, true, "true or false");
    json_t *def = member(v, root, "", "definition", T_OBJECT, true, "{\"versions\": [...]}");
    if (!def)
        return;
    forbid_ids(v, def, "/definition");
    json_t *versions =
        member(v, def, "/definition", "versions", T_ARRAY, true, "a form has at least one version");
    if (!versions)
        return;
    static const char *const vtypes[] = {"popup", "banner", "embed", "flyout", "full_screen", NULL};
    static const char *const vstatus[] = {"draft", "live", NULL};
    char p[256], vp[256], sp[256], cp[256], rp[256], bp[256];
    size_t i, j, k, m, n;
    json_t *ver, *step, *col, *row, *blk;
    EACH_OBJECT(v, versions, "/definition/versions", i, ver, p)
    {
        snprintf(vp, sizeof vp, "%s", p);
        enum_member(v, ver, vp, "type", false, vtypes);
        enum_member(v, ver, vp, "status", false, vstatus);
        json_t *steps = member(v, ver, vp, "steps", T_ARRAY, true, "a version has steps");
        if (!steps)
            continue;
        char stp[256];
        json_pointer_append(stp, sizeof stp, vp, "steps");
        EACH_OBJECT(v, steps, stp, j, step, p)
        {
            snprintf(sp, sizeof sp, "%s", p);
            json_t *cols = member(v, step, sp, "columns", T_ARRAY, true, "a step has columns");
            if (!cols)
                continue;
            char clp[256];
            json_pointer_append(clp, sizeof clp, sp, "columns");
            EACH_OBJECT(v, cols, clp, k, col, p)
            {
                snprintf(cp, sizeof cp, "%s", p);
                json_t *rows = member(v, col, cp, "rows", T_ARRAY, true, "a column has rows");
                if (!rows)
                    continue;
                char rwp[256];
                json_pointer_append(rwp, sizeof rwp, cp, "rows");
                EACH_OBJECT(v, rows, rwp, m, row, p)
                {
                    snprintf(rp, sizeof rp, "%s", p);
                    json_t *blocks =
                        member(v, row, rp, "blocks", T_ARRAY, true, "a row has blocks");
                    if (!blocks)
                        continue;
                    char blp[256];
                    json_pointer_append(blp, sizeof blp, rp, "blocks");
                    EACH_OBJECT(v, blocks, blp, n, blk, p)
                    {
                        snprintf(bp, sizeof bp, "%s", p);
                        member(v, blk, bp, "type", T_STRING, true,
                               "a block type such as email, button or text");
                    }
                }
            }
        }
    }
}

/* ---- campaigns ---- */

static bool looks_like_date(const char *s)
{
    /* YYYY-MM-DD */
    for (int i = 0; i < 10; i++) {
        bool digit = s[i] >= '0' && s[i] <= '9';
        if (i == 4 || i == 7 ? s[i] != '-' : !digit)
            return false;
    }
    return true;
}

static void check_send_strategy(struct vctx *v, json_t *root)
{
    json_t *ss = member(v, root, "", "send_strategy", T_OBJECT, false, NULL);
    if (!ss)
        return;
    static const char *const methods[] = {"static", "throttled", "immediate", "smart_send_time",
                                          NULL};
    const char *m = enum_member(v, ss, "/send_strategy", "method", true, methods);
    if (!m)
        return;
    if (strcmp(m, "static") == 0 || strcmp(m, "throttled") == 0) {
        json_t *dt = member(v, ss, "/send_strategy", "datetime", T_STRING, true,
                            "a date-time such as \"2026-08-01T15:00:00+00:00\"");
        if (dt && !looks_like_date(json_string_value(dt)))
            verr(v, "/send_strategy/datetime",
                 "\"%.60s\" is not a date-time; write it like \"2026-08-01T15:00:00+00:00\"",
                 json_string_value(dt));
    }
    if (strcmp(m, "throttled") == 0) {
        json_t *tp = member(v, ss, "/send_strategy", "throttle_percentage", T_INT, true,
                            "one of 1, 2, 5, 10, 11, 13, 14, 17, 20, 25, 33, 50");
        static const json_int_t ok[] = {1, 2, 5, 10, 11, 13, 14, 17, 20, 25, 33, 50};
        bool found = false;
        for (size_t i = 0; tp && i < sizeof ok / sizeof ok[0]; i++)
            found |= json_integer_value(tp) == ok[i];
        if (tp && !found)
            verr(v, "/send_strategy/throttle_percentage",
                 "%lld is not a throttle Klaviyo accepts; use one of 1, 2, 5, 10, 11, 13, 14, "
                 "17, 20, 25, 33, 50",
                 (long long)json_integer_value(tp));
    }
    if (strcmp(m, "smart_send_time") == 0) {
        json_t *d =
            member(v, ss, "/send_strategy", "date", T_STRING, true, "a date such as 2026-08-01");
        if (d && (json_string_length(d) != 10 || !looks_like_date(json_string_value(d))))
            verr(v, "/send_strategy/date", "\"%.60s\" is not a date; write it like \"2026-08-01\"",
                 json_string_value(d));
    }
}

static void check_campaign_message(struct vctx *v, json_t *msg, const char *mp)
{
    static const char *const keys[] = {"type", "attributes", "relationships", NULL};
    check_keys(v, msg, mp, keys, "a campaign message");
    enum_member(v, msg, mp, "type", true, (const char *const[]){"campaign-message", NULL});
    char ap[256], dp[256];
    json_pointer_append(ap, sizeof ap, mp, "attributes");
    json_t *attrs =
        member(v, msg, mp, "attributes", T_OBJECT, true, "{\"definition\": {\"channel\": ...}}");
    const char *channel = NULL;
    if (attrs) {
        json_t *def = member(v, attrs, ap, "definition", T_OBJECT, true,
                             "{\"channel\": \"email\", \"label\": ..., \"content\": {...}}");
        json_pointer_append(dp, sizeof dp, ap, "definition");
        if (def)
            channel = enum_member(v, def, dp, "channel", true,
                                  (const char *const[]){"email", "sms", "mobile_push", NULL});
        if (def && channel && strcmp(channel, "email") == 0)
            member(v, def, dp, "content", T_OBJECT, false, NULL);
    }
    char rp[256], tp[256];
    json_pointer_append(rp, sizeof rp, mp, "relationships");
    json_t *rel = member(v, msg, mp, "relationships", T_OBJECT, false, NULL);
    json_t *tpl = rel ? json_object_get(rel, "template") : NULL;
    if (rel) {
        static const char *const rkeys[] = {"template", "image", NULL};
        check_keys(v, rel, rp, rkeys, "a campaign message's relationships");
    }
    if (!tpl) {
        if (channel && strcmp(channel, "email") == 0) {
            json_pointer_append(tp, sizeof tp, rp, "template");
            verr(v, tp,
                 "a campaign email needs a template: add \"relationships\": {\"template\": "
                 "{\"data\": {\"$ref\": \"template:NAME\"}}}");
        }
        return;
    }
    json_pointer_append(tp, sizeof tp, rp, "template");
    if (!json_is_object(tpl)) {
        verr(v, tp, "\"template\" must be an object, not %s", type_name(tpl));
        return;
    }
    json_t *data = member(v, tpl, tp, "data", T_ANY, true, "{\"$ref\": \"template:NAME\"}");
    if (data) {
        char dd[256];
        json_pointer_append(dd, sizeof dd, tp, "data");
        want_ref(v, data, dd, "{\"$ref\": \"template:NAME\"}");
    }
}

static void check_campaign(struct vctx *v, json_t *root)
{
    static const char *const keys[] = {"name",
                                       "audiences",
                                       "send_strategy",
                                       "send_options",
                                       "tracking_options",
                                       "campaign-messages",
                                       NULL};
    check_keys(v, root, "", keys, "create_campaign");
    json_t *aud = member(v, root, "", "audiences", T_OBJECT, true,
                         "a campaign needs an audience, {\"included\": [{\"$ref\": "
                         "\"segment:NAME\"}]}");
    if (aud) {
        static const char *const akeys[] = {"included", "excluded", NULL};
        check_keys(v, aud, "/audiences", akeys, "audiences");
        json_t *inc = member(v, aud, "/audiences", "included", T_ARRAY, true,
                             "a campaign needs an audience, [{\"$ref\": \"segment:NAME\"}]");
        if (inc)
            ref_array(v, inc, "/audiences/included",
                      "{\"$ref\": \"list:NAME\"} or {\"$ref\": \"segment:NAME\"}");
        json_t *exc = member(v, aud, "/audiences", "excluded", T_ARRAY, false, NULL);
        if (exc)
            ref_array(v, exc, "/audiences/excluded",
                      "{\"$ref\": \"list:NAME\"} or {\"$ref\": \"segment:NAME\"}");
    }
    check_send_strategy(v, root);
    member(v, root, "", "send_options", T_OBJECT, false, NULL);
    member(v, root, "", "tracking_options", T_OBJECT, false, NULL);
    json_t *cm = member(v, root, "", "campaign-messages", T_OBJECT, true,
                        "{\"data\": [{\"type\": \"campaign-message\", ...}]}");
    if (!cm)
        return;
    json_t *data = member(v, cm, "/campaign-messages", "data", T_ARRAY, true,
                          "a campaign has at least one message");
    if (!data)
        return;
    size_t i;
    json_t *msg;
    char p[256];
    EACH_OBJECT(v, data, "/campaign-messages/data", i, msg, p)
    {
        char mp[256];
        snprintf(mp, sizeof mp, "%s", p);
        check_campaign_message(v, msg, mp);
    }
}

/* ---- flows ---- */

static bool has_temp_id(json_t *actions, const char *id)
{
    size_t i;
    json_t *a;
    json_array_foreach(actions, i, a)
    {
        const char *t = json_string_value(json_object_get(a, "temporary_id"));
        if (t && strcmp(t, id) == 0)
            return true;
    }
    return false;
}

static void check_flow_action(struct vctx *v, json_t *actions, size_t idx, json_t *act,
                              const char *ap)
{
    static const char *const types[] = {"time-delay",
                                        "send-email",
                                        "send-sms",
                                        "send-mobile-push",
                                        "send-webhook",
                                        "send-internal-alert",
                                        "send-whatsapp",
                                        "conditional-split",
                                        "trigger-split",
                                        "multi-branch-split",
                                        "action-output-split",
                                        "ab-test",
                                        "content-experiment",
                                        "update-profile",
                                        "list-update",
                                        "target-date",
                                        "countdown-delay",
                                        "back-in-stock-delay",
                                        "internal-service",
                                        "code",
                                        NULL};
    char p[256];
    json_t *tid = member(v, act, ap, "temporary_id", T_STRING, true,
                         "every action has a temporary_id, such as \"a1\", that links and "
                         "entry_action_id use");
    if (tid) {
        size_t j;
        json_t *other;
        json_array_foreach(actions, j, other)
        {
            const char *o = json_string_value(json_object_get(other, "temporary_id"));
            if (j < idx && o && strcmp(o, json_string_value(tid)) == 0) {
                json_pointer_append(p, sizeof p, ap, "temporary_id");
                verr(v, p, "temporary_id \"%.60s\" is also used by action %zu; make it unique", o,
                     j);
                break;
            }
        }
    }
    const char *type = enum_member(v, act, ap, "type", true, types);
    json_t *links = member(v, act, ap, "links", T_OBJECT, false, NULL);
    if (links) {
        char lp[256];
        json_pointer_append(lp, sizeof lp, ap, "links");
        const char *k;
        json_t *to;
        json_object_foreach(links, k, to)
        {
            json_pointer_append(p, sizeof p, lp, k);
            if (json_is_null(to))
                continue;
            if (!json_is_string(to))
                verr(v, p, "a link is an action's temporary_id or null, not %s", type_name(to));
            else if (!has_temp_id(actions, json_string_value(to)))
                verr(v, p, "links to \"%.60s\", which is no action's temporary_id in this flow",
                     json_string_value(to));
        }
    }
    if (!type)
        return;
    char dp[256];
    json_pointer_append(dp, sizeof dp, ap, "data");
    if (strcmp(type, "send-email") == 0) {
        json_t *data = member(v, act, ap, "data", T_OBJECT, true,
                              "{\"status\": \"draft\", \"message\": {..., \"template_id\": "
                              "{\"$ref\": \"template:NAME\"}}}");
        if (!data)
            return;
        enum_member(v, data, dp, "status", false,
                    (const char *const[]){"disabled", "draft", "live", "manual", NULL});
        json_t *msg = member(v, data, dp, "message", T_OBJECT, true,
                             "{\"subject_line\": ..., \"template_id\": {\"$ref\": "
                             "\"template:NAME\"}}");
        if (!msg)
            return;
        char mp[256];
        json_pointer_append(mp, sizeof mp, dp, "message");
        json_t *tpl = member(v, msg, mp, "template_id", T_ANY, true,
                             "a send-email action needs a template, {\"$ref\": \"template:NAME\"}");
        if (tpl) {
            json_pointer_append(p, sizeof p, mp, "template_id");
            want_ref(v, tpl, p, "{\"$ref\": \"template:NAME\"}");
        }
    } else if (strcmp(type, "time-delay") == 0) {
        json_t *data =
            member(v, act, ap, "data", T_OBJECT, true, "{\"unit\": \"days\", \"value\": 1}");
        if (!data)
            return;
        enum_member(v, data, dp, "unit", false,
                    (const char *const[]){"days", "hours", "minutes", NULL});
        json_t *val = member(v, data, dp, "value", T_INT, true, "how many units to wait");
        if (val && json_integer_value(val) < 0) {
            json_pointer_append(p, sizeof p, dp, "value");
            verr(v, p, "a delay cannot be negative");
        }
    }
}

static void check_flow(struct vctx *v, json_t *root)
{
    static const char *const keys[] = {"name", "definition", NULL};
    check_keys(v, root, "", keys, "create_flow");
    json_t *def = member(v, root, "", "definition", T_OBJECT, true,
                         "{\"triggers\": [...], \"actions\": [...], \"entry_action_id\": ...}");
    if (!def)
        return;
    static const char *const dkeys[] = {"triggers",        "profile_filter",   "actions",
                                        "entry_action_id", "reentry_criteria", NULL};
    check_keys(v, def, "/definition", dkeys, "a flow definition");
    forbid_ids(v, json_object_get(def, "actions"), "/definition/actions");
    json_t *trig = member(v, def, "/definition", "triggers", T_ARRAY, true,
                          "one trigger, such as {\"type\": \"list\", \"id\": {\"$ref\": "
                          "\"list:NAME\"}}");
    if (trig && json_array_size(trig) > 1)
        verr(v, "/definition/triggers", "Klaviyo accepts only one trigger per flow; this has %zu",
             json_array_size(trig));
    static const char *const ttypes[] = {"list",       "segment",       "metric", "date",
                                         "price-drop", "low-inventory", NULL};
    size_t i;
    json_t *t;
    char p[256];
    if (trig) {
        EACH_OBJECT(v, trig, "/definition/triggers", i, t, p)
        {
            char tp[256];
            snprintf(tp, sizeof tp, "%s", p);
            const char *type = enum_member(v, t, tp, "type", true, ttypes);
            if (!type || (strcmp(type, "list") != 0 && strcmp(type, "segment") != 0))
                continue;
            char ex[64];
            snprintf(ex, sizeof ex, "{\"$ref\": \"%s:NAME\"}", type);
            json_t *id = member(v, t, tp, "id", T_ANY, true, ex);
            json_pointer_append(p, sizeof p, tp, "id");
            if (!id)
                continue;
            if (!refs_is_ref(id)) {
                want_ref(v, id, p, ex);
                continue;
            }
            enum asset_kind k = refs_kind(id);
            enum asset_kind want = strcmp(type, "list") == 0 ? ASSET_LIST : ASSET_SEGMENT;
            if (k != ASSET_KIND_COUNT && k != want)
                verr(v, p, "a %s trigger names a %s; write %s", type, asset_kind_name(k), ex);
        }
    }
    json_t *actions =
        member(v, def, "/definition", "actions", T_ARRAY, true, "a flow has at least one action");
    json_t *entry = member(v, def, "/definition", "entry_action_id", T_STRING, true,
                           "the temporary_id of the first action");
    if (!actions)
        return;
    json_t *a;
    EACH_OBJECT(v, actions, "/definition/actions", i, a, p)
    {
        char ap[256];
        snprintf(ap, sizeof ap, "%s", p);
        check_flow_action(v, actions, i, a, ap);
    }
    if (entry && !has_temp_id(actions, json_string_value(entry)))
        verr(v, "/definition/entry_action_id", "\"%.60s\" is no action's temporary_id in this flow",
             json_string_value(entry));
    json_t *pf = member(v, def, "/definition", "profile_filter", T_OBJECT, false, NULL);
    if (pf)
        check_conditions(v, pf, "/definition/profile_filter", false);
    json_t *rc = member(v, def, "/definition", "reentry_criteria", T_OBJECT, false, NULL);
    if (rc)
        enum_member(v, rc, "/definition/reentry_criteria", "unit", false,
                    (const char *const[]){"day", "hour", "week", "alltime", NULL});
}

/* ---- tags ---- */

static void check_tag(struct vctx *v, struct bundle_asset *a, json_t *root)
{
    static const char *const keys[] = {"name", "tag_group", "targets", NULL};
    check_keys(v, root, "", keys, "a tag file");
    json_t *g = member(v, root, "", "tag_group", T_STRING, false, NULL);
    const char *problem = g ? text_name_problem(json_string_value(g)) : NULL;
    if (problem)
        verr(v, "/tag_group", "the tag group name %s", problem);
    json_t *targets = member(v, root, "", "targets", T_ARRAY, true,
                             "what the tag tags, such as [\"campaign:spring-sale\", "
                             "\"list:newsletter\"] (may be [])");
    if (!targets)
        return;
    size_t i;
    json_t *t;
    char p[256];
    json_array_foreach(targets, i, t)
    {
        json_pointer_index(p, sizeof p, "/targets", i);
        if (!json_is_string(t)) {
            verr(v, p, "a target is a string \"kind:name\", not %s", type_name(t));
            continue;
        }
        const char *s = json_string_value(t), *name, *why;
        enum asset_kind k;
        if (!refs_parse(s, &k, &name, &why)) {
            verr(v, p, "target \"%.80s\" %s", s, why);
            continue;
        }
        if (k != ASSET_CAMPAIGN && k != ASSET_FLOW && k != ASSET_LIST && k != ASSET_SEGMENT) {
            verr(v, p,
                 "target \"%.80s\": Klaviyo tags only campaigns, flows, lists and segments, not "
                 "a %s",
                 s, asset_kind_name(k));
            continue;
        }
        if ((problem = text_name_problem(name)) != NULL) {
            verr(v, p, "the name in target \"%.80s\" %s", s, problem);
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = json_equal(json_array_get(targets, j), t);
        if (dup) {
            verr(v, p, "target \"%.80s\" is listed twice; remove one", s);
            continue;
        }
        loader_add_ref(v->l, a, k, name, "");
    }
}

/* ---- coupons ---- */

static void check_coupon(struct vctx *v, json_t *root)
{
    static const char *const keys[] = {"name", "external_id", "description",
                                       "monitor_configuration", NULL};
    check_keys(v, root, "", keys, "create_coupon");
    json_t *ext = member(v, root, "", "external_id", T_STRING, true,
                         "the coupon's code in the store, such as \"10OFF\"");
    if (ext) {
        const char *s = json_string_value(ext);
        bool ok = strlen(s) <= 64;
        for (const char *c = s; *c && ok; c++)
            ok = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                 *c == '_' || *c == '-';
        if (!ok)
            verr(v, "/external_id",
                 "\"%.60s\" is not a usable coupon id (Klaviyo uses it as the coupon's id in "
                 "URLs): use up to 64 letters, digits, - and _",
                 s);
    }
    member(v, root, "", "description", T_STRING, false, NULL);
    member(v, root, "", "monitor_configuration", T_OBJECT, false, NULL);
}

/* ---- webhooks ---- */

static void check_webhook(struct vctx *v, json_t *root)
{
    static const char *const keys[] = {"name",           "description", "endpoint_url",
                                       "secret_key_env", "topics",      NULL};
    if (json_object_get(root, "secret_key"))
        verr(v, "/secret_key",
             "a webhook's secret must not be written in the bundle: remove \"secret_key\" and "
             "set \"secret_key_env\" to the name of the environment variable that holds it when "
             "the plan is applied");
    json_t *rest = json_copy(root);
    if (rest) {
        json_object_del(rest, "secret_key");
        check_keys(v, rest, "", keys, "a webhook file");
        json_decref(rest);
    }
    member(v, root, "", "description", T_STRING, false, NULL);
    json_t *url =
        member(v, root, "", "endpoint_url", T_STRING, true, "the https:// URL Klaviyo will call");
    if (url && !text_url_ok(json_string_value(url), true))
        verr(v, "/endpoint_url",
             "\"%.80s\" is not an https:// URL; Klaviyo calls only https "
             "endpoints",
             json_string_value(url));
    json_t *env = member(v, root, "", "secret_key_env", T_STRING, true,
                         "the name of the environment variable holding the signing secret, "
                         "such as \"CADENCE_WEBHOOK_SECRET\"");
    if (env) {
        const char *s = json_string_value(env);
        bool ok = strlen(s) <= 128 && !(s[0] >= '0' && s[0] <= '9');
        for (const char *c = s; *c && ok; c++)
            ok = (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_';
        if (!ok)
            verr(v, "/secret_key_env",
                 "\"%.60s\" is not an environment variable name: use capital letters, digits "
                 "and _, not starting with a digit",
                 s);
    }
    json_t *topics = member(v, root, "", "topics", T_ARRAY, true,
                            "the webhook topics to subscribe to, such as "
                            "[\"event:klaviyo.sent_sms\"]");
    if (!topics)
        return;
    size_t i;
    json_t *t;
    char p[256];
    json_array_foreach(topics, i, t)
    {
        json_pointer_index(p, sizeof p, "/topics", i);
        const char *s = json_string_value(t);
        bool ok = s && strchr(s, ':') && s[0] != ':';
        for (const char *c = s; ok && *c; c++)
            ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '.' ||
                 *c == ':' || *c == '-';
        if (!ok) {
            verr(v, p, "a topic is a Klaviyo webhook topic id such as \"event:klaviyo.sent_sms\"");
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            if (json_equal(json_array_get(topics, j), t)) {
                verr(v, p, "topic \"%.60s\" is listed twice; remove one", s);
                break;
            }
        }
    }
}

/* ---- images from a URL ---- */

static void check_image_url(struct vctx *v, json_t *root)
{
    static const char *const keys[] = {"name", "url", "hidden", NULL};
    check_keys(v, root, "", keys, "an image file");
    json_t *url = member(v, root, "", "url", T_STRING, true,
                         "the http(s) URL Klaviyo imports the image from");
    if (url && !text_url_ok(json_string_value(url), false))
        verr(v, "/url",
             "\"%.80s\" is not an http:// or https:// URL (put an image file in "
             "images/ instead of a data: URI)",
             json_string_value(url));
    member(v, root, "", "hidden", T_BOOL, false, NULL);
}

void kinds_load_json(struct loader *l, enum asset_kind kind, const char *file, const char *stem,
                     json_t *root)
{
    struct vctx v = {l, file};
    if (!json_is_object(root)) {
        verr(&v, "", "the file must hold one JSON object, not %s", type_name(root));
        json_decref(root);
        return;
    }
    const char *name = stem;
    json_t *jn = json_object_get(root, "name");
    if (jn && !json_is_string(jn)) {
        verr(&v, "/name", "\"name\" must be a string, not %s", type_name(jn));
        jn = NULL;
    }
    if (jn)
        name = json_string_value(jn);
    const char *problem = text_name_problem(name);
    if (problem)
        verr(&v, jn ? "/name" : "", "the name \"%.80s\" %s", name, problem);

    struct bundle_asset tmp = {.kind = kind, .file = file};
    switch (kind) {
    case ASSET_LIST:
        check_list(&v, root);
        break;
    case ASSET_SEGMENT:
        check_segment(&v, root);
        break;
    case ASSET_FORM:
        check_form(&v, root);
        break;
    case ASSET_CAMPAIGN:
        check_campaign(&v, root);
        break;
    case ASSET_FLOW:
        check_flow(&v, root);
        break;
    case ASSET_COUPON:
        check_coupon(&v, root);
        break;
    case ASSET_WEBHOOK:
        check_webhook(&v, root);
        break;
    case ASSET_IMAGE:
        check_image_url(&v, root);
        break;
    default:
        break;
    }
    if (kind == ASSET_TAG) {
        /* Targets are refs; they are recorded on a scratch asset first. */
        check_tag(&v, &tmp, root);
    }

    json_t *attrs = problem ? NULL : json_copy(root);
    if (!problem && !attrs)
        l->oom = true;
    if (attrs && kind == ASSET_COUPON) {
        json_object_del(attrs, "name");
    } else if (attrs) {
        json_t *ns = json_string(name);
        if (!ns || json_object_set_new(attrs, "name", ns) != 0)
            l->oom = true;
    }
    if (attrs && kind == ASSET_IMAGE) {
        json_t *url = json_object_get(attrs, "url");
        if (url && json_object_set(attrs, "import_from_url", url) != 0)
            l->oom = true;
        json_object_del(attrs, "url");
    }
    /* Without a usable name the asset cannot be added (the name keys everything). */
    struct bundle_asset *a = attrs ? loader_add(l, kind, name, file, attrs) : NULL;
    json_decref(root);
    if (!a) {
        loader_free_refs(tmp.refs, tmp.n_refs);
        return;
    }
    a->refs = tmp.refs;
    a->n_refs = tmp.n_refs;
    if (kind != ASSET_TAG)
        refs_collect(l, a);
}
