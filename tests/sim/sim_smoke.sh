#!/usr/bin/env bash
# End-to-end test of cadence-klaviyo-sim: starts it on a free loopback port and drives it with
# curl the way Cadence's Klaviyo client will (auth, errors, pagination, filters, compound ids,
# jobs, rate limits, scopes, revocation and the injected faults). Usage: sim_smoke.sh SIM_BINARY
set -u
source "$(dirname "$0")/../listen.sh"
SIM=${1:?usage: sim_smoke.sh path/to/cadence-klaviyo-sim}
command -v jq >/dev/null || { echo "jq is required" >&2; exit 1; }

tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

KEY=pk_0123456789abcdef0123456789abcdefAAAA # 34 characters after pk_
KEY_LISTS=pk_0123456789abcdef0123456789abcdefBBBB
KEY_OTHER=pk_0123456789abcdef0123456789abcdefCCCC
REV=2026-07-15

# ---- command line ----
usage_ok=0
"$SIM" --help | grep -q -- '--listen 127.0.0.1:PORT' && usage_ok=1
"$SIM" --listen 0.0.0.0:0 >/dev/null 2>&1
bad_listen=$?
"$SIM" --listen 127.0.0.1:0 --key pk_orphan >/dev/null 2>&1
orphan_key=$?

"$SIM" --listen 127.0.0.1:0 --seed 42 \
    --account "Acme Outdoors" --key "$KEY" --key "$KEY_LISTS" --scopes lists:read \
    --account "Other Org" --key "$KEY_OTHER" >"$tmp/out" 2>"$tmp/err" &
pid=$!
BASE=$(wait_listening "$tmp/out" "$pid")
[ -n "$BASE" ] || { echo "the emulator did not print its address"; cat "$tmp/err"; exit 1; }

fails=0
passes=0
check() { # check NAME COMMAND...
    local name=$1
    shift
    if "$@"; then
        passes=$((passes + 1))
    else
        fails=$((fails + 1))
        echo "FAIL: $name"
        echo "  last status: $(cat "$tmp/status" 2>/dev/null) body: $(head -c 600 "$tmp/body" 2>/dev/null)"
    fi
}
# req METHOD PATH [BODY] [KEY] [EXTRA CURL ARGS...]: status into $tmp/status, body, headers.
req() {
    local method=$1 path=$2 body=${3:-} key=${4-$KEY}
    shift 4 2>/dev/null || shift $#
    local args=(-s -g -X "$method" -o "$tmp/body" -D "$tmp/hdr" -w '%{http_code}' -H "revision: $REV"
        -H 'Accept: application/vnd.api+json')
    [ -n "$key" ] && args+=(-H "Authorization: Klaviyo-API-Key $key")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/vnd.api+json' --data-binary "$body")
    curl "${args[@]}" "$@" "$BASE$path" >"$tmp/status"
    cat "$tmp/status"
}
st() { [ "$(cat "$tmp/status")" = "$1" ]; }
jqb() { jq -e "$@" "$tmp/body" >/dev/null; }
hdr() { tr -d '\r' <"$tmp/hdr" | sed -n "s/^$1: //Ip" | head -1; }
admin() { curl -s -X "$1" -H 'Content-Type: application/json' ${2:+--data-binary "$2"} "$BASE/__sim/${3}"; }
is_error_doc() { jqb '.errors[0] | (.id|type=="string") and (.code|type=="string") and (.title|type=="string") and (.detail|type=="string")'; }

check "--help prints usage" test "$usage_ok" = 1
check "--listen refuses anything but 127.0.0.1" test "$bad_listen" = 2
check "--key without --account is refused" test "$orphan_key" = 2

# ---- auth and headers ----
req GET /api/lists "" "" >/dev/null
check "no key -> 401" st 401
check "401 has JSON:API error not_authenticated" jqb '.errors[0].code=="not_authenticated"'
check "401 content type" test "$(hdr Content-Type)" = "application/vnd.api+json"
req GET /api/lists "" pk_unknownunknownunknownunknown1234 >/dev/null
check "unknown key -> 401" st 401
curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Klaviyo-API-Key $KEY" "$BASE/api/lists" >"$tmp/status"
check "missing revision -> 400" st 400
check "missing revision error shape" is_error_doc

# ---- accounts ----
req GET /api/accounts >/dev/null
check "get accounts 200" st 200
check "account shape" jqb '.data|length==1 and (.[0].type=="account") and (.[0].id|length==6)
    and .[0].attributes.contact_information.organization_name=="Acme Outdoors"
    and .[0].attributes.public_api_key==.[0].id and (.[0].attributes.timezone|type=="string")
    and (.[0].attributes.preferred_currency|type=="string") and (.[0].attributes.locale|type=="string")
    and (.[0].attributes.test_account|type=="boolean") and (.[0].links.self|startswith("http://127.0.0.1:"))'
check "rate-limit headers on 200" test -n "$(hdr RateLimit-Limit)" -a -n "$(hdr RateLimit-Remaining)" -a -n "$(hdr RateLimit-Reset)"
ACCOUNT=$(jq -r '.data[0].id' "$tmp/body")

# ---- burst limit: get_accounts allows 1/s ----
# Back-to-back requests can straddle a window edge on a loaded machine; of three sent at once at
# least two share a one-second window, so one of them is throttled.
for _ in 1 2 3; do
    req GET /api/accounts >/dev/null
    st 429 && break
done
check "a second get_accounts in the same second -> 429" st 429
RA=$(hdr Retry-After)
check "Retry-After is an integer >= 1" test "${RA:-0}" -ge 1
check "429 body" jqb '.errors[0].detail|test("^Request was throttled. Expected available in [0-9]+ second")'
check "429 carries no RateLimit headers" test -z "$(hdr RateLimit-Remaining)"
sleep "$RA"
req GET /api/accounts >/dev/null
check "after Retry-After -> 200" st 200

# ---- scopes and unknown paths ----
req GET /api/templates "" "$KEY_LISTS" >/dev/null
check "missing scope -> 403" st 403
check "403 permission_denied" jqb '.errors[0].code=="permission_denied"'
req GET /api/lists "" "$KEY_LISTS" >/dev/null
check "scoped key can read lists" st 200
req GET /api/no-such-thing >/dev/null
check "unknown path -> 404" st 404
check "404 is a JSON:API error" is_error_doc
req GET /api/events >/dev/null
check "unimplemented op -> 404" st 404
check "unimplemented op says so" jqb '.errors[0].detail|test("does not implement")'

# ---- templates ----
for i in $(seq 1 12); do
    req POST /api/templates "{\"data\":{\"type\":\"template\",\"attributes\":{\"name\":\"T$i\",\"editor_type\":\"CODE\",\"html\":\"<p>$i</p>\"}}}" >/dev/null
done
check "create template 201" st 201
check "template shape" jqb '.data.type=="template" and (.data.attributes|has("name") and has("editor_type") and has("html") and has("created") and has("updated")) and (.links.self|type=="string")'
TPL=$(jq -r .data.id "$tmp/body")
req POST /api/templates '{"data":{"type":"template","attributes":{"name":"X","editor_type":"CODE"}}}' >/dev/null
check "CODE template without html -> 400" st 400
check "400 points at html" jqb '.errors[0].source.pointer=="/data/attributes/html"'
req GET '/api/templates?page%5Bsize%5D=11' >/dev/null
check "templates page[size]=11 -> 400" st 400
req GET '/api/templates?page%5Bsize%5D=5' >/dev/null
check "templates page of 5 with next" jqb '(.data|length==5) and (.links.next|startswith("http://127.0.0.1:"))'
seen=$(jq '.data|length' "$tmp/body")
next=$(jq -r '.links.next' "$tmp/body")
while [ "$next" != null ]; do
    curl -s -o "$tmp/body" -H "Authorization: Klaviyo-API-Key $KEY" -H "revision: $REV" "$next"
    seen=$((seen + $(jq '.data|length' "$tmp/body")))
    next=$(jq -r '.links.next // "null"' "$tmp/body")
done
check "pagination visits all 12 templates" test "$seen" = 12
check "last page has no next link" jqb '.links|has("next")|not'
req GET '/api/templates?filter=equals(name,"T7")' >/dev/null
check "template filter equals(name)" jqb '(.data|length==1) and .data[0].attributes.name=="T7"'
req GET '/api/templates?filter=equals(nonsense,"T7")' >/dev/null
check "unknown filter field -> 400" st 400
req PATCH "/api/templates/$TPL" "{\"data\":{\"type\":\"template\",\"id\":\"$TPL\",\"attributes\":{\"name\":\"T12 renamed\"}}}" >/dev/null
check "update template 200" jqb '.data.attributes.name=="T12 renamed"'

# ---- lists and segments ----
req POST /api/lists '{"data":{"type":"list","attributes":{"name":"Newsletter"}}}' >/dev/null
check "create list 201" st 201
LIST=$(jq -r .data.id "$tmp/body")
req GET '/api/lists?filter=equals(name,["Newsletter"])' >/dev/null
check "list filter equals(name,[..])" jqb '(.data|length==1) and .data[0].id=="'"$LIST"'"'
req GET '/api/lists?filter=any(name,["Newsletter","Nope"])' >/dev/null
check "list filter any(name,[..])" jqb '.data|length==1'
req GET "/api/lists?filter=equals(name,'Newsletter')" >/dev/null
check "list filter with a scalar -> 400" st 400
req POST /api/segments '{"data":{"type":"segment","attributes":{"name":"Engaged","definition":{"condition_groups":[{"conditions":[{"type":"profile-group-membership","is_member":true,"group_ids":["'"$LIST"'"]}]}]}}}}' >/dev/null
check "create segment 201" st 201
check "segment required attributes" jqb '.data.attributes|(.is_active==true) and (.is_processing|type=="boolean") and (.is_starred==false)'
SEG=$(jq -r .data.id "$tmp/body")
req GET '/api/segments?filter=equals(name,["Engaged"])' >/dev/null
check "segment filter" jqb '.data[0].id=="'"$SEG"'"'

# ---- campaigns ----
req GET /api/campaigns >/dev/null
check "campaigns without channel filter -> 400" st 400
req POST /api/campaigns '{"data":{"type":"campaign","attributes":{"name":"Spring sale","audiences":{"included":["'"$LIST"'"]},"campaign-messages":{"data":[{"type":"campaign-message","attributes":{"definition":{"channel":"email","label":"Spring","content":{"subject":"20% off","from_email":"s@example.com","from_label":"Store"}}}}]}}}}' >/dev/null
check "create campaign 201" st 201
check "campaign shape" jqb '.data.attributes|(.status=="Draft") and (.archived==false) and has("send_options") and has("send_strategy") and has("created_at") and has("updated_at")'
CAMP=$(jq -r .data.id "$tmp/body")
MSG=$(jq -r '.data.relationships["campaign-messages"].data[0].id' "$tmp/body")
req GET "/api/campaigns?filter=equals(messages.channel,'email')" >/dev/null
check "campaign list with channel filter" jqb '.data|length==1'
req GET "/api/campaigns?filter=and(equals(messages.channel,'sms'),contains(name,'Spring'))" >/dev/null
check "campaign list filtered to sms is empty" jqb '.data|length==0'
req POST /api/campaign-message-assign-template '{"data":{"type":"campaign-message","id":"'"$MSG"'","relationships":{"template":{"data":{"type":"template","id":"'"$TPL"'"}}}}}' >/dev/null
check "assign template 200" st 200
NEWTPL=$(jq -r .data.relationships.template.data.id "$tmp/body")
check "assignment copies the template" test -n "$NEWTPL" -a "$NEWTPL" != "$TPL" -a "$NEWTPL" != null
req GET "/api/templates/$NEWTPL" >/dev/null
check "copied template readable" st 200
req POST /api/campaign-send-jobs '{"data":{"type":"campaign-send-job","id":"'"$CAMP"'"}}' >/dev/null
check "send campaign 202" st 202
check "send job queued" jqb '.data.attributes.status=="queued"'
sleep 1.7
req GET "/api/campaign-send-jobs/$CAMP" >/dev/null
check "send job complete" jqb '.data.attributes.status=="complete"'
req GET "/api/campaigns/$CAMP" >/dev/null
check "campaign sent" jqb '.data.attributes.status=="Sent"'

# ---- flows ----
req POST /api/flows '{"data":{"type":"flow","attributes":{"name":"Welcome","definition":{"triggers":[{"type":"list","id":"'"$LIST"'"}],"entry_action_id":"a1","actions":[{"temporary_id":"a1","type":"time-delay","links":{"next":"a2"},"data":{"unit":"days","value":1}},{"temporary_id":"a2","type":"send-email","links":{"next":null},"data":{"status":"draft","message":{"name":"W1","subject_line":"Hi","from_email":"s@example.com","from_label":"Store","template_id":"'"$TPL"'"}}}]}}}}' >/dev/null
check "create flow 201" st 201
check "flow temporary ids rewritten" jqb '.data.attributes.definition as $d | ($d.entry_action_id != "a1")
    and ($d.actions[0].id == $d.entry_action_id) and ($d.actions[0].links.next == $d.actions[1].id)
    and ([$d.actions[] | has("temporary_id")] | any | not) and .data.attributes.trigger_type=="Added to List"'
FLOW=$(jq -r .data.id "$tmp/body")
req PATCH "/api/flows/$FLOW" '{"data":{"type":"flow","id":"'"$FLOW"'","attributes":{"status":"live"}}}' >/dev/null
check "flow status update" jqb '.data.attributes.status=="live"'

# ---- catalog ----
req POST /api/catalog-items '{"data":{"type":"catalog-item","attributes":{"external_id":"SKU-1","title":"Tent","description":"A tent","url":"https://example.com/tent","price":99.5}}}' >/dev/null
check "create catalog item 201" st 201
check "catalog compound id" jqb '.data.id=="$custom:::$default:::SKU-1"'
req GET '/api/catalog-items/%24custom%3A%3A%3A%24default%3A%3A%3ASKU-1' >/dev/null
check "catalog item by percent-encoded id" jqb '.data.attributes.title=="Tent"'
req GET '/api/catalog-items/$custom:::$default:::SKU-1' >/dev/null
check "catalog item by raw id" st 200
req POST /api/catalog-items '{"data":{"type":"catalog-item","attributes":{"external_id":"SKU-1","title":"Tent","description":"A tent","url":"https://example.com/tent"}}}' >/dev/null
check "duplicate catalog item -> 409" st 409
req POST /api/catalog-variants '{"data":{"type":"catalog-variant","attributes":{"external_id":"SKU-1-L","title":"Tent L","description":"L","sku":"SKU-1-L","inventory_quantity":3,"price":99.5,"url":"https://example.com/tent"},"relationships":{"item":{"data":{"type":"catalog-item","id":"$custom:::$default:::SKU-1"}}}}}' >/dev/null
check "create catalog variant 201" jqb '.data.id=="$custom:::$default:::SKU-1-L"'
req POST /api/catalog-item-bulk-create-jobs '{"data":{"type":"catalog-item-bulk-create-job","attributes":{"items":{"data":[
    {"type":"catalog-item","attributes":{"external_id":"B1","title":"b1","description":"d","url":"https://e.com/1"}},
    {"type":"catalog-item","attributes":{"external_id":"B2","title":"b2","description":"d","url":"https://e.com/2"}},
    {"type":"catalog-item","attributes":{"external_id":"B3","description":"no title","url":"https://e.com/3"}}]}}}}' >/dev/null
check "bulk create job 202" st 202
check "bulk job queued" jqb '.data.attributes.status=="queued" and .data.attributes.total_count==3'
JOB=$(jq -r .data.id "$tmp/body")
sleep 0.6
req GET "/api/catalog-item-bulk-create-jobs/$JOB" >/dev/null
check "bulk job processing" jqb '.data.attributes.status=="processing"'
sleep 1.2
req GET "/api/catalog-item-bulk-create-jobs/$JOB" >/dev/null
check "bulk job complete with per-item error" jqb '.data.attributes | .status=="complete" and .completed_count==2
    and .failed_count==1 and (.errors[0].source.pointer|test("^/data/attributes/items/data/2"))'
req GET '/api/catalog-items?filter=any(ids,["$custom:::$default:::B1","$custom:::$default:::B2"])' >/dev/null
check "bulk-created items exist" jqb '.data|length==2'
big=$(jq -cn '{data:{type:"catalog-item-bulk-create-job",attributes:{items:{data:[range(101)|{type:"catalog-item",attributes:{external_id:"Z\(.)",title:"t",description:"d",url:"https://e.com"}}]}}}}')
req POST /api/catalog-item-bulk-create-jobs "$big" >/dev/null
check "bulk job over 100 -> 400" st 400

# ---- coupons ----
req POST /api/coupons '{"data":{"type":"coupon","attributes":{"external_id":"10OFF","description":"ten off"}}}' >/dev/null
check "coupon id is external_id" jqb '.data.id=="10OFF"'
req POST /api/coupon-codes '{"data":{"type":"coupon-code","attributes":{"unique_code":"ABC123"},"relationships":{"coupon":{"data":{"type":"coupon","id":"10OFF"}}}}}' >/dev/null
check "create coupon code 200" st 200
check "coupon code id" jqb '.data.id=="10OFF-ABC123" and .data.attributes.status=="UNASSIGNED"'
req GET /api/coupon-codes >/dev/null
check "coupon codes without filter -> 400" st 400
req GET '/api/coupon-codes?filter=equals(coupon.id,"10OFF")' >/dev/null
check "coupon codes by coupon" jqb '.data|length==1'

# ---- tags ----
req POST /api/tags '{"data":{"type":"tag","attributes":{"name":"cadence"}}}' >/dev/null
check "create tag 201" st 201
TAG=$(jq -r .data.id "$tmp/body")
req POST "/api/tags/$TAG/relationships/lists" '{"data":[{"type":"list","id":"'"$LIST"'"}]}' >/dev/null
check "tag a list -> 204" st 204
req GET "/api/tags/$TAG/relationships/lists" >/dev/null
check "tag relationship listed" jqb '.data[0].id=="'"$LIST"'"'
req PATCH "/api/tags/$TAG" '{"data":{"type":"tag","id":"'"$TAG"'","attributes":{"name":"cadence2"}}}' >/dev/null
check "tag PATCH -> 204" st 204
req POST /api/tag-groups '{"data":{"type":"tag-group","attributes":{"name":"Cadence","exclusive":false}}}' >/dev/null
check "create tag group" jqb '.data.attributes.default==false'

# ---- images ----
req POST /api/images '{"data":{"type":"image","attributes":{"import_from_url":"https://example.com/a/logo.png","name":"logo"}}}' >/dev/null
check "image from URL 201" jqb '.data.attributes|.format=="png" and .name=="logo" and (.size|type=="number") and has("image_url") and has("updated_at") and (.hidden==false)'
printf '\x89PNG\r\n\x1a\n0000000000000000' >"$tmp/img.png"
curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Klaviyo-API-Key $KEY" -H "revision: $REV" \
    -F "file=@$tmp/img.png;type=image/png" -F name=logo "$BASE/api/image-upload" >"$tmp/status"
check "image upload 201" st 201
check "taken image name gets a suffix" jqb '.data.attributes.name!="logo" and (.data.attributes.name|startswith("logo"))'
printf 'not an image' >"$tmp/bad.txt"
curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Klaviyo-API-Key $KEY" -H "revision: $REV" \
    -F "file=@$tmp/bad.txt" "$BASE/api/image-upload" >"$tmp/status"
check "non-image upload -> 400" st 400

# ---- webhooks (XS tier) ----
req POST /api/webhooks '{"data":{"type":"webhook","attributes":{"name":"hook","endpoint_url":"https://example.com/h","secret_key":"s3cr3t"},"relationships":{"webhook-topics":{"data":[{"type":"webhook-topic","id":"event:klaviyo.sent_sms"}]}}}}' >/dev/null
check "create webhook 201" st 201
check "webhook never echoes secret_key" test "$(grep -c s3cr3t "$tmp/body")" = 0

# ---- profile bulk import ----
req POST /api/profile-bulk-import-jobs '{"data":{"type":"profile-bulk-import-job","attributes":{"profiles":{"data":[{"type":"profile","attributes":{"email":"a@example.com"}},{"type":"profile","attributes":{"email":"nope"}}]}},"relationships":{"lists":{"data":[{"type":"list","id":"'"$LIST"'"}]}}}}' >/dev/null
check "profile import 202" st 202
PJOB=$(jq -r .data.id "$tmp/body")
sleep 1.7
req GET "/api/profile-bulk-import-jobs/$PJOB" >/dev/null
check "profile import complete" jqb '.data.attributes|.status=="complete" and .completed_count==1 and .failed_count==1'

# ---- accounts are isolated ----
req GET "/api/templates/$TPL" "" "$KEY_OTHER" >/dev/null
check "other account cannot see the template" st 404

# ---- deletes ----
req DELETE "/api/templates/$TPL" >/dev/null
check "delete template 204" st 204
req GET "/api/templates/$TPL" >/dev/null
check "deleted template 404" st 404

# ---- request size limit ----
head -c $((11 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$tmp/big"
curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Klaviyo-API-Key $KEY" -H "revision: $REV" \
    -H 'Content-Type: application/vnd.api+json' --data-binary "@$tmp/big" "$BASE/api/lists" >"$tmp/status"
check "body over 10MB -> 413" st 413

# ---- faults ----
admin POST '{"html_403_rate":1}' faults >/dev/null
req GET /api/lists >/dev/null
check "html 403 fault" st 403
check "html 403 is text/html" test "$(hdr Content-Type | cut -d';' -f1)" = text/html
check "html 403 has cf-mitigated" test "$(hdr cf-mitigated)" = challenge
admin POST '{"error_rate":1}' faults >/dev/null
req GET /api/lists >/dev/null
check "error fault is 5xx" grep -qE '^50[03]$' "$tmp/status"
check "error fault has a JSON:API body" is_error_doc
admin POST '{"drop_after_create_rate":1}' faults >/dev/null
curl -s -o /dev/null -H "Authorization: Klaviyo-API-Key $KEY" -H "revision: $REV" -H 'Content-Type: application/vnd.api+json' \
    --data-binary '{"data":{"type":"list","attributes":{"name":"Dropped list"}}}' "$BASE/api/lists"
rc=$?
check "dropped create: curl sees an empty reply (52)" test "$rc" = 52
admin POST '{}' faults >/dev/null
admin GET '' 'objects?type=list' >"$tmp/body"
check "dropped create still created the object" jqb '[.objects[]|select(.attributes.name=="Dropped list")]|length==1'
admin POST '{"foreign_usage":0.5}' faults >/dev/null
req GET /api/lists >/dev/null
check "foreign usage lowers RateLimit-Remaining" test "$(hdr RateLimit-Remaining)" -lt 740
admin POST '{"latency_ms":[300,300]}' faults >/dev/null
t0=$(date +%s%N)
req GET /api/lists >/dev/null
t1=$(date +%s%N)
check "latency fault delays the response" test $(((t1 - t0) / 1000000)) -ge 300
admin POST '{"revoke_key_after":{"key_last4":"AAAA","calls":2}}' faults >/dev/null
req GET /api/lists >/dev/null
req GET /api/lists >/dev/null
check "call before revocation succeeds" st 200
req GET /api/lists >/dev/null
check "key revoked after N calls -> 401" st 401
admin POST '{}' faults >/dev/null
admin POST "{\"key\":\"$KEY_LISTS\"}" keys/revoke >/dev/null
req GET /api/lists "" "$KEY_LISTS" >/dev/null
check "admin revocation -> 401" st 401
admin POST "{\"account_id\":\"$ACCOUNT\",\"key\":\"pk_0123456789abcdef0123456789abcdefDDDD\",\"scopes\":\"lists:read\"}" keys/add >/dev/null
req GET /api/lists "" pk_0123456789abcdef0123456789abcdefDDDD >/dev/null
check "admin-added key works" st 200

# ---- call log ----
admin GET '' calls >"$tmp/body"
check "call log counts" jqb '(.counts.total > 50) and (.counts.by_status["429"] >= 1) and (.counts.dropped == 1)'
check "call log entries" jqb '.calls[0] | has("method") and has("path") and has("query") and has("status") and has("key_last4") and has("ts_ms")'
last=$(jq .next "$tmp/body")
admin GET '' "calls?since=$last" >"$tmp/body"
check "calls?since=N pages" jqb '.calls|length==0'
admin POST '' reset >/dev/null
admin GET '' 'objects?type=template' >"$tmp/body"
check "reset clears objects" jqb '.objects|length==0'
req GET /api/lists >/dev/null
check "reset restores revoked command-line keys" st 200

# ---- clean exit on SIGTERM ----
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
check "SIGTERM exits 0" test "$rc" = 0
check "no sanitizer reports" sh -c "! grep -q Sanitizer '$tmp/err'"

echo "sim_smoke: $passes passed, $fails failed"
[ "$fails" = 0 ]
