#!/usr/bin/env bash
# End-to-end test of cadence-klaviyo-sim's metrics and catalog bulk-job faults, the pieces the
# Shopify catalog sync relies on: GET /api/metrics (empty by default, the integration filters,
# 400 on other filters), POST /__sim/metrics, --shopify-integration, the fault
# catalog_item_error_rate (per-item errors pointing at each index, deterministic under --seed),
# variants of a missing item and items linked to a missing category.
# Usage: klaviyo_metrics.sh SIM_BINARY
set -u
source "$(dirname "$0")/../listen.sh"
SIM=${1:?usage: klaviyo_metrics.sh path/to/cadence-klaviyo-sim}
command -v jq >/dev/null || { echo "jq is required" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT

KEY=pk_0123456789abcdef0123456789abcdefAAAA
KEY2=pk_0123456789abcdef0123456789abcdefBBBB
KEY_NOMETRICS=pk_0123456789abcdef0123456789abcdefCCCC
REV=2026-07-15

# start NAME ARGS...: starts an emulator, its URL in $BASE.
start() {
    local name=$1
    shift
    "$SIM" --listen 127.0.0.1:0 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pids+=($!)
    BASE=$(wait_listening "$tmp/$name.out" "$!")
    [ -n "$BASE" ] || { echo "the emulator did not start"; cat "$tmp/$name.err"; exit 1; }
}

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
        echo "  last status: $(cat "$tmp/status" 2>/dev/null) body: $(head -c 900 "$tmp/body" 2>/dev/null)"
    fi
}
req() { # req METHOD PATH [BODY] [KEY]
    local method=$1 path=$2 body=${3:-} key=${4-$KEY}
    local args=(-s -g -X "$method" -o "$tmp/body" -D "$tmp/hdr" -w '%{http_code}' -H "revision: $REV"
        -H 'Accept: application/vnd.api+json' -H "Authorization: Klaviyo-API-Key $key")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/vnd.api+json' --data-binary "$body")
    curl "${args[@]}" "$BASE$path" >"$tmp/status"
}
st() { [ "$(cat "$tmp/status")" = "$1" ]; }
jqb() { jq -e "$@" "$tmp/body" >/dev/null; }
jqf() { jq -e "$@" >/dev/null; }
admin() { # admin METHOD PATH [BODY]: status in $tmp/status, body in $tmp/body
    curl -s -X "$1" -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: application/json' \
        ${3:+--data-binary "$3"} "$BASE/__sim/$2" >"$tmp/status"
}
# A metric resource as the spec's MetricResponseObjectResource has it.
METRIC_OK='(.type=="metric") and (.id|type=="string") and (.links.self|type=="string")
  and (.attributes.name|type=="string") and (.attributes.created|type=="string")
  and (.attributes.updated|type=="string") and (.attributes.integration.object=="integration")
  and (.attributes.integration.id|type=="string") and (.attributes.integration.key|type=="string")
  and (.attributes.integration.name|type=="string")
  and (.attributes.integration.category|type=="string") and (has("_")|not)'
# wait_job PATH: polls a job until it is complete (at most 5 s).
wait_job() {
    for _ in $(seq 50); do
        req GET "$1"
        jqb '.data.attributes.status=="complete"' && return 0
        sleep 0.1
    done
    return 1
}

# ---- metrics ----
start plain --seed 7 --account "Acme" --key "$KEY" --account "Other" --key "$KEY2" \
    --account "Scoped" --key "$KEY_NOMETRICS" --scopes catalogs:read
ACCT1=$(curl -s "$BASE/__sim/accounts" | jq -r '.accounts[0].id')
ACCT2=$(curl -s "$BASE/__sim/accounts" | jq -r '.accounts[1].id')

req GET /api/metrics
check "metrics: empty by default" jqb '.data==[] and (.links.self|type=="string")'
req GET /api/metrics "" "$KEY_NOMETRICS"
check "metrics need metrics:read" st 403
req GET '/api/metrics?filter=equals(name,"Placed%20Order")'
check "metrics: a filter on name is 400" st 400
check "metrics: filter error names the parameter" jqb '.errors[0].source.parameter=="filter"'
req GET '/api/metrics?filter=contains(integration.name,"Shop")'
check "metrics: contains on integration.name is 400" st 400
req GET '/api/metrics?page[size]=10'
check "metrics: no page[size]" st 400

admin POST metrics '{"name":"Placed Order","integration":{"name":"Shopify","category":"eCommerce"}}'
check "POST /__sim/metrics 201" st 201
check "POST /__sim/metrics returns the metric" jqb ".data | $METRIC_OK"
check "seeded metric's integration" jqb '.data.attributes.integration | .name=="Shopify" and .category=="eCommerce" and .key=="shopify" and .id=="0eMvjm"'
MID=$(jq -r .data.id "$tmp/body")
admin POST metrics '{"name":"Placed Order","integration":{"name":"Shopify","category":"eCommerce"}}'
check "same metric again: 200, same id" jqb --arg id "$MID" '.data.id==$id'
check "same metric again: status 200" st 200
admin POST metrics "{\"account_id\":\"$ACCT2\",\"name\":\"Active on Site\"}"
check "metric in another account, default integration API" jqb '.data.attributes.integration | .name=="API" and .category=="API" and .key=="api"'
admin POST metrics '{"integration":{"name":"Shopify"}}'
check "POST /__sim/metrics without a name: 400" st 400
admin POST metrics '{"account_id":"nope","name":"x"}'
check "POST /__sim/metrics, unknown account: 400" st 400
admin POST metrics '{"name":"Viewed Product","integration":{"name":"WooCommerce","category":"eCommerce"}}'

req GET '/api/metrics?filter=equals(integration.name,"Shopify")'
check "filter integration.name finds the Shopify metric" jqb --arg id "$MID" '[.data[].id]==[$id]'
check "listed metric has the spec's shape" jqb ".data[0] | $METRIC_OK"
req GET "/api/metrics?filter=equals(integration.name,'Shopify')"
check "single quotes work too" jqb '.data|length==1'
req GET '/api/metrics?filter=equals(integration.category,"eCommerce")'
check "filter integration.category" jqb '[.data[].attributes.name]==["Placed Order","Viewed Product"]'
req GET '/api/metrics?filter=equals(integration.name,"Magento")'
check "filter with no match: empty" jqb '.data==[]'
req GET "/api/metrics/$MID"
check "GET /api/metrics/{id}" jqb ".data | $METRIC_OK and .attributes.name==\"Placed Order\""
check "GET /api/metrics/{id} self link" jqb --arg id "$MID" '.data.links.self|endswith("/api/metrics/"+$id+"/")'
req GET /api/metrics/XXXXXX
check "unknown metric 404" st 404
req GET /api/metrics "" "$KEY2"
check "metrics are per account" jqb '[.data[].attributes.name]==["Active on Site"]'

# pagination: 200 per page, then links.next
for i in $(seq 1 205); do
    admin POST metrics "{\"account_id\":\"$ACCT2\",\"name\":\"M$i\"}"
done
req GET /api/metrics "" "$KEY2"
check "metrics: 200 per page" jqb '(.data|length)==200 and (.links.next|type=="string")'
NEXT=$(jq -r .links.next "$tmp/body")
req GET "${NEXT#"$BASE"}" "" "$KEY2"
check "metrics: second page" jqb '(.data|length)==6 and (.links.next==null)'

admin POST reset
req GET /api/metrics
check "reset: metrics gone without --shopify-integration" jqb '.data==[]'

# ---- --shopify-integration ----
start shopify --seed 7 --shopify-integration --account "Acme" --key "$KEY" --account "Other" --key "$KEY2"
SHOP_BASE=$BASE
req GET '/api/metrics?filter=equals(integration.name,"Shopify")'
check "--shopify-integration seeds four metrics" jqb '[.data[].attributes.name]==["Placed Order","Ordered Product","Started Checkout","Fulfilled Order"]'
check "seeded metrics have the spec's shape" jqb "all(.data[]; $METRIC_OK)"
check "seeded integration is Shopify/eCommerce/shopify" jqb 'all(.data[].attributes.integration; .name=="Shopify" and .category=="eCommerce" and .key=="shopify")'
req GET '/api/metrics?filter=equals(integration.category,"eCommerce")' "" "$KEY2"
check "--shopify-integration seeds every account" jqb '(.data|length)==4'
admin POST accounts '{"name":"Later"}'
check "a new account gets them too" test "$(curl -s "$BASE/__sim/objects?type=metric&account=$(jq -r .id "$tmp/body")" | jq .count)" = 4
admin POST reset
req GET /api/metrics
check "reset keeps the Shopify metrics" jqb '(.data|length)==4'
"$SIM" --listen 127.0.0.1:0 --account A --key "$KEY" --shopify-integration --help | grep -q -- --shopify-integration
check "--help documents --shopify-integration" test $? = 0

# ---- catalog bulk jobs ----
BASE=$SHOP_BASE
items_job() { # items_job PREFIX N: a catalog-item bulk create body with N items
    jq -cn --arg p "$1" --argjson n "$2" '{data:{type:"catalog-item-bulk-create-job",attributes:{items:{data:[range($n)|{type:"catalog-item",attributes:{external_id:"\($p)\(.)",title:"t\(.)",description:"d",url:"https://e.com/\(.)"}}]}}}}'
}
admin POST faults '{"catalog_item_error_rate":1}'
check "faults accept catalog_item_error_rate" jqb '.catalog_item_error_rate==1'
admin POST faults '{"catalog_item_error_rate":1.5}'
check "catalog_item_error_rate above 1: 400" st 400
admin POST faults '{"catalog_item_error_rate":1}'
req POST /api/catalog-item-bulk-create-jobs "$(items_job F 5)"
check "item job under the fault: 202" st 202
JOB=$(jq -r .data.id "$tmp/body")
admin POST faults '{}' # the rate is fixed when a job is created
check "item job completes" wait_job "/api/catalog-item-bulk-create-jobs/$JOB"
check "every item failed" jqb '.data.attributes | .completed_count==0 and .failed_count==5 and (.errors|length)==5'
check "errors point at each index" jqb '[.data.attributes.errors[].source.pointer]==[range(5)|"/data/attributes/items/data/\(.)/attributes/title"]'
check "errors are APIJobErrorPayload" jqb 'all(.data.attributes.errors[]; (.id|type=="string") and .code=="invalid" and (.title|type=="string") and (.detail|test("too long")))'
req GET '/api/catalog-items?filter=any(ids,["$custom:::$default:::F0","$custom:::$default:::F4"])'
check "failed items were not created" jqb '.data==[]'

# the same fault on categories and variants (update), pointers per kind
req POST /api/catalog-category-bulk-create-jobs '{"data":{"type":"catalog-category-bulk-create-job","attributes":{"categories":{"data":[{"type":"catalog-category","attributes":{"external_id":"C1","name":"Tents"}}]}}}}'
CJOB=$(jq -r .data.id "$tmp/body")
req POST /api/catalog-item-bulk-create-jobs "$(items_job G 3)"
GJOB=$(jq -r .data.id "$tmp/body")
wait_job "/api/catalog-item-bulk-create-jobs/$GJOB"
check "without the fault items are created" jqb '.data.attributes.completed_count==3 and .data.attributes.errors==[]'
admin POST faults '{"catalog_item_error_rate":1}'
req POST /api/catalog-category-bulk-create-jobs '{"data":{"type":"catalog-category-bulk-create-job","attributes":{"categories":{"data":[{"type":"catalog-category","attributes":{"external_id":"C2","name":"Stoves"}},{"type":"catalog-category","attributes":{"external_id":"C3","name":"Bags"}}]}}}}'
FCJOB=$(jq -r .data.id "$tmp/body")
req POST /api/catalog-item-bulk-update-jobs '{"data":{"type":"catalog-item-bulk-update-job","attributes":{"items":{"data":[{"type":"catalog-item","id":"$custom:::$default:::G0","attributes":{"title":"new"}}]}}}}'
UJOB=$(jq -r .data.id "$tmp/body")
req POST /api/catalog-item-bulk-delete-jobs '{"data":{"type":"catalog-item-bulk-delete-job","attributes":{"items":{"data":[{"type":"catalog-item","id":"$custom:::$default:::G2"}]}}}}'
DJOB=$(jq -r .data.id "$tmp/body")
admin POST faults '{}'
wait_job "/api/catalog-category-bulk-create-jobs/$FCJOB"
check "category errors point at categories/data/<i>/attributes/name" jqb '[.data.attributes.errors[].source.pointer]==["/data/attributes/categories/data/0/attributes/name","/data/attributes/categories/data/1/attributes/name"]'
wait_job "/api/catalog-item-bulk-update-jobs/$UJOB"
check "update jobs fail under the fault" jqb '.data.attributes.failed_count==1'
req GET '/api/catalog-items/$custom:::$default:::G0'
check "a failed update leaves the item" jqb '.data.attributes.title=="t0"'
wait_job "/api/catalog-item-bulk-delete-jobs/$DJOB"
check "delete jobs are not affected by the fault" jqb '.data.attributes.completed_count==1 and .data.attributes.failed_count==0'

# half the items, deterministic under --seed: the same seed and requests fail the same ones
half_run() {
    start "half$1" --seed 11 --account A --key "$KEY"
    admin POST faults '{"catalog_item_error_rate":0.5}'
    req POST /api/catalog-item-bulk-create-jobs "$(items_job H 40)"
    wait_job "/api/catalog-item-bulk-create-jobs/$(jq -r .data.id "$tmp/body")"
    jq -c '[.data.attributes.errors[].source.pointer]' "$tmp/body" >"$tmp/half$1"
    jq -c '[.data.attributes.completed_count,.data.attributes.failed_count]' "$tmp/body" >"$tmp/counts$1"
}
half_run 1
half_run 2
check "rate 0.5 fails some, not all" jqf '.[1] > 5 and .[1] < 35 and .[0] + .[1] == 40' "$tmp/counts1"
check "the fault is deterministic under --seed" cmp -s "$tmp/half1" "$tmp/half2"

# ---- variants of missing items, items in missing categories ----
BASE=$SHOP_BASE
wait_job "/api/catalog-category-bulk-create-jobs/$CJOB"
req POST /api/catalog-variant-bulk-create-jobs '{"data":{"type":"catalog-variant-bulk-create-job","attributes":{"variants":{"data":[
  {"type":"catalog-variant","attributes":{"external_id":"G1-S","title":"S","description":"d","sku":"G1-S","inventory_quantity":1,"price":5,"url":"https://e.com/1"},"relationships":{"item":{"data":{"type":"catalog-item","id":"$custom:::$default:::G1"}}}},
  {"type":"catalog-variant","attributes":{"external_id":"NOPE-S","title":"S","description":"d","sku":"NOPE-S","inventory_quantity":1,"price":5,"url":"https://e.com/1"},"relationships":{"item":{"data":{"type":"catalog-item","id":"$custom:::$default:::NOPE"}}}}]}}}}'
VJOB=$(jq -r .data.id "$tmp/body")
wait_job "/api/catalog-variant-bulk-create-jobs/$VJOB"
check "variant of a missing item fails alone" jqb '.data.attributes | .completed_count==1 and .failed_count==1'
check "its error points at variants/data/1" jqb '.data.attributes.errors[0].source.pointer=="/data/attributes/variants/data/1/relationships/item/data" and .data.attributes.errors[0].code=="invalid"'
req GET '/api/catalog-variants/$custom:::$default:::NOPE-S'
check "that variant was not created" st 404
req POST /api/catalog-item-bulk-create-jobs '{"data":{"type":"catalog-item-bulk-create-job","attributes":{"items":{"data":[
  {"type":"catalog-item","attributes":{"external_id":"K1","title":"k","description":"d","url":"https://e.com/k1"},"relationships":{"categories":{"data":[{"type":"catalog-category","id":"$custom:::$default:::C1"}]}}},
  {"type":"catalog-item","attributes":{"external_id":"K2","title":"k","description":"d","url":"https://e.com/k2"},"relationships":{"categories":{"data":[{"type":"catalog-category","id":"$custom:::$default:::MISSING"}]}}}]}}}}'
KJOB=$(jq -r .data.id "$tmp/body")
wait_job "/api/catalog-item-bulk-create-jobs/$KJOB"
check "item in a missing category fails alone" jqb '.data.attributes | .completed_count==1 and .failed_count==1'
check "its error points at items/data/1" jqb '.data.attributes.errors[0].source.pointer=="/data/attributes/items/data/1/relationships/categories/data"'
req GET '/api/catalog-items?filter=equals(category.id,"$custom:::$default:::C1")'
check "the other item is in its category" jqb '[.data[].id]==["$custom:::$default:::K1"]'

# sparse fieldsets (JSON:API fields[TYPE]): only the named attributes; ids found through the index
req GET '/api/catalog-items?filter=any(ids,["$custom:::$default:::K1","$custom:::$default:::G0","$custom:::$default:::NOPE"])&fields[catalog-item]=external_id'
check "a sparse list names only the attribute asked for" jqb '[.data[] | .attributes | keys] == [["external_id"],["external_id"]]'
check "ids found through the index, in creation order, missing ones left out" jqb '[.data[].id] == ["$custom:::$default:::G0","$custom:::$default:::K1"] and all(.data[]; .type=="catalog-item" and (.links.self|type=="string"))'
req GET '/api/catalog-items?filter=any(ids,["$custom:::$default:::K1"])'
check "without fields[] the whole item" jqb '.data[0].attributes | has("title") and has("url") and has("external_id")'

echo "klaviyo_metrics: $passes passed, $fails failed"
[ "$fails" = 0 ]
