#!/usr/bin/env bash
# End-to-end test of cadence-shopify-sim: starts it on free loopback ports and drives it with curl
# and jq the way a catalog sync will: products paging and its fields, a bulk operation (one at a
# time, polled to COMPLETED, its streamed JSONL with __parentId lines), /__sim/mutate reflected in
# the next bulk result, --bulk-fail, the token check and the cost throttle.
# Usage: shopify_sim.sh SIM_BINARY
set -u
source "$(dirname "$0")/../listen.sh"
SIM=${1:?usage: shopify_sim.sh path/to/cadence-shopify-sim}
command -v jq >/dev/null || { echo "jq is required" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT

TOKEN=shpat_0123456789abcdef0123456789abcdef
VERSION=2025-07

# start NAME ARGS...: starts the stand-in, sets BASE_<NAME>.
start() {
    local name=$1
    shift
    "$SIM" --listen 127.0.0.1:0 --shop "Acme Outdoors" --token "$TOKEN" "$@" \
        >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pids+=($!)
    local url
    url=$(wait_listening "$tmp/$name.out" "$!") || {
        echo "the stand-in ($name) did not start"
        cat "$tmp/$name.err"
        exit 1
    }
    printf -v "BASE_$name" '%s' "$url"
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
        echo "  last status: $(cat "$tmp/status" 2>/dev/null) body: $(head -c 600 "$tmp/body" 2>/dev/null)"
    fi
}
# gql BASE QUERY [VARIABLES_JSON] [TOKEN]: status into $tmp/status, the answer into $tmp/body.
gql() {
    local base=$1 query=$2 vars=${3:-null} tok=${4-$TOKEN}
    jq -n --arg q "$query" --argjson v "$vars" '{query: $q, variables: $v}' >"$tmp/req"
    curl -s -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: application/json' \
        ${tok:+-H "X-Shopify-Access-Token: $tok"} --data-binary @"$tmp/req" \
        "$base/admin/api/$VERSION/graphql.json" >"$tmp/status"
}
st() { [ "$(cat "$tmp/status")" = "$1" ]; }
jqb() { jq -e "$@" "$tmp/body" >/dev/null; }
jqf() { jq -e "$@" >/dev/null; }

RUN_BULK='mutation { bulkOperationRunQuery(query: """
  { products { edges { node { id title handle variants { edges { node { id sku price } } }
    collections { edges { node { id title } } } } } } }
""") { bulkOperation { id status } userErrors { field message } } }'
POLL='{ currentBulkOperation { id status errorCode createdAt completedAt objectCount fileSize url partialDataUrl } }'

# wait_done BASE: polls currentBulkOperation until it is no longer CREATED/RUNNING (30 s at most);
# the last answer stays in $tmp/body and the statuses seen in $tmp/seen.
wait_done() {
    : >"$tmp/seen"
    for _ in $(seq 300); do
        gql "$1" "$POLL"
        local s
        s=$(jq -r '.data.currentBulkOperation.status // "THROTTLED"' "$tmp/body")
        echo "$s" >>"$tmp/seen"
        case $s in CREATED | RUNNING | THROTTLED) sleep 0.1 ;; *) return 0 ;; esac
    done
    return 1
}

# ---- command line ----
"$SIM" --help | grep -q -- '--bulk-rate' && help_ok=1 || help_ok=0
check "--help documents --bulk-rate" test "$help_ok" = 1
"$SIM" --listen 0.0.0.0:0 --shop x --token y >/dev/null 2>&1
check "--listen refuses anything but 127.0.0.1" test $? = 2
"$SIM" --listen 127.0.0.1:0 --shop x --token y --bulk-rate 0 >/dev/null 2>&1
check "--bulk-rate 0 is refused" test $? = 2
"$SIM" --listen 127.0.0.1:0 --shop x --token y --wide-product 3 >/dev/null 2>&1
check "--wide-product 3 is refused (not wider than the others)" test $? = 2

start A --products 1000 --bulk-rate 2000
start F --products 100 --bulk-fail --bulk-rate 1000
start W --products 3 --wide-product 150
A=$BASE_A

# ---- token ----
gql "$A" '{ shop { name } }' null shpat_wrong
check "wrong token -> 401" st 401
check "401 body has errors" jqb '.errors | type == "string"'
gql "$A" '{ shop { name } }' null ""
check "no token -> 401" st 401
gql "$A" '{ shop { name myshopifyDomain } }'
check "shop query" jqb '.data.shop.myshopifyDomain == "acme-outdoors.myshopify.com"'

# ---- products paging ----
gql "$A" '{ products(first: 5) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }'
check "products page 200" st 200
check "page has 5 nodes and edges" jqb '(.data.products.nodes | length) == 5 and (.data.products.edges | length) == 5'
check "pageInfo" jqb '.data.products.pageInfo == {hasNextPage: true, endCursor: "c5"}'
check "product fields" jqb '.data.products.nodes[0] | .id == "gid://shopify/Product/1" and .handle == "product-1"
    and (.title | type == "string") and (.descriptionHtml | test("<strong>") and test("&amp;"))
    and .status == "ACTIVE" and .onlineStoreUrl == "https://acme-outdoors.example/products/product-1"
    and (.updatedAt | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$")) and (.featuredImage.url | startswith("https://"))'
check "variant fields" jqb '.data.products.nodes[1].variants | (.nodes | length) == 3
    and .nodes[0].id == "gid://shopify/ProductVariant/21" and .nodes[2].sku == "SKU-2-3"
    and (.nodes[0].price | test("^[0-9]+\\.[0-9]{2}$")) and (.nodes[0].inventoryQuantity | type == "number")
    and .edges[1].node == .nodes[1]'
check "collections connection" jqb '[.data.products.nodes[].collections.nodes | length] | all(. >= 1 and . <= 2)'
check "collection ids and titles" jqb '.data.products.nodes[2].collections.nodes | map(.id) == ["gid://shopify/Collection/4", "gid://shopify/Collection/2"]
    and .[0].title == "Collection 4"'
check "cost extension" jqb '.extensions.cost.requestedQueryCost == 22 and .extensions.cost.throttleStatus.maximumAvailable == 2000'
gql "$A" 'query($first: Int!, $after: String) { products(first: $first, after: $after) { nodes { id status onlineStoreUrl } pageInfo { hasNextPage endCursor } } }' '{"first": 2, "after": "c24"}'
check "variables paging; every 25th is DRAFT without onlineStoreUrl" jqb '.data.products.nodes[0] | .id == "gid://shopify/Product/25" and .status == "DRAFT" and .onlineStoreUrl == null'
gql "$A" '{ products(first: 3, after: "c998") { nodes { id } pageInfo { hasNextPage endCursor } } }'
check "last page" jqb '(.data.products.nodes | length) == 2 and .data.products.pageInfo == {hasNextPage: false, endCursor: "c1000"}'
gql "$A" '{ products(first: 251) { nodes { id } } }'
check "first > 250 is an error" jqb '.errors[0].message | test("between 1 and 250")'

# ---- a bulk operation ----
gql "$A" '{ currentBulkOperation { id status } }'
check "no bulk operation yet: null" jqb '.data.currentBulkOperation == null'
gql "$A" "$RUN_BULK"
check "bulk run answers CREATED" jqb '.data.bulkOperationRunQuery | .bulkOperation == {id: "gid://shopify/BulkOperation/1", status: "CREATED"} and .userErrors == []'
check "bulk run costs 10" jqb '.extensions.cost.actualQueryCost == 10'
gql "$A" "$RUN_BULK"
check "a second concurrent bulk run gets a userError" jqb '.data.bulkOperationRunQuery | .bulkOperation == null
    and (.userErrors[0].message | test("already in progress: gid://shopify/BulkOperation/1"))'
wait_done "$A"
check "bulk operation went through RUNNING" grep -q RUNNING "$tmp/seen"
check "bulk operation COMPLETED" jqb '.data.currentBulkOperation | .status == "COMPLETED" and .errorCode == null
    and (.completedAt | type == "string") and .partialDataUrl == null'
check "poll costs 1" jqb '.extensions.cost.actualQueryCost == 1'
cp "$tmp/body" "$tmp/op1.json"
url=$(jq -r '.data.currentBulkOperation.url' "$tmp/op1.json")
check "url points at the stand-in" test "$url" = "$A/__sim/bulk/1.jsonl"
gql "$A" '{ node(id: "gid://shopify/BulkOperation/1") { ... on BulkOperation { id status url } } }'
check "node(id:) finds the operation" jqb '.data.node | .status == "COMPLETED" and .id == "gid://shopify/BulkOperation/1"'
gql "$A" 'query($id: ID!) { node(id: $id) { ... on BulkOperation { id status } } }' '{"id": "gid://shopify/BulkOperation/9"}'
check "node(id:) of an unknown operation: null" jqb '.data.node == null'

curl -s -o "$tmp/b1.jsonl" -w '%{http_code}' "$url" >"$tmp/status"
check "JSONL download 200 without a token" st 200
check "every line is a JSON object" jqf -s 'all(type == "object")' "$tmp/b1.jsonl"
jq -c -s '{products: map(select(has("__parentId") | not)) | length,
           variants: map(select(.id | startswith("gid://shopify/ProductVariant/"))) | length,
           colls: map(select(.id | startswith("gid://shopify/Collection/"))) | length,
           lines: length}' "$tmp/b1.jsonl" >"$tmp/counts"
check "1000 product lines" jqf '.products == 1000' "$tmp/counts"
check "3000 variant lines" jqf '.variants == 3000' "$tmp/counts"
check "1333 collection lines" jqf '.colls == 1333' "$tmp/counts"
check "objectCount = lines" test "$(jq -r .data.currentBulkOperation.objectCount "$tmp/op1.json")" = "$(jq .lines "$tmp/counts")"
check "fileSize = bytes" test "$(jq -r .data.currentBulkOperation.fileSize "$tmp/op1.json")" = "$(wc -c <"$tmp/b1.jsonl" | tr -d ' ')"
check "variant __parentId is its product" jqf -s 'map(select(.id | startswith("gid://shopify/ProductVariant/")))
    | all(.__parentId == "gid://shopify/Product/\((.id | ltrimstr("gid://shopify/ProductVariant/") | tonumber / 10 | floor))")' "$tmp/b1.jsonl"
check "children follow their parent" jqf -n 'reduce inputs as $l ({ok: true, p: null};
    if ($l | has("__parentId")) then .ok = (.ok and $l.__parentId == .p) else .p = $l.id end) | .ok' "$tmp/b1.jsonl"
check "product lines carry fields, not connections" jqf -s 'map(select(has("__parentId") | not))
    | all(has("title") and has("handle") and has("descriptionHtml") and has("status") and has("onlineStoreUrl")
          and has("updatedAt") and has("featuredImage") and (has("variants") | not) and (has("collections") | not))' "$tmp/b1.jsonl"

# ---- /__sim/mutate, then the next bulk result ----
curl -s -o "$tmp/mut.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary '{"edit": 50, "add": 10, "delete": 5}' "$A/__sim/mutate" >"$tmp/status"
check "mutate 200" st 200
check "mutate answers 50/10/5 distinct ids" jqf '(.edited | length) == 50 and (.added | length) == 10 and (.deleted | length) == 5
    and ((.edited + .deleted) | unique | length) == 55 and .added == [range(1001; 1011) | tostring]' "$tmp/mut.json"
gql "$A" '{ productsCount { count } }'
check "productsCount after mutate" jqb '.data.productsCount.count == 1005'
gql "$A" "$RUN_BULK"
check "a new bulk run once the first is done" jqb '.data.bulkOperationRunQuery.bulkOperation.id == "gid://shopify/BulkOperation/2"'
wait_done "$A"
check "second bulk operation COMPLETED" jqb '.data.currentBulkOperation.status == "COMPLETED"'
curl -s -o "$tmp/b2.jsonl" "$(jq -r .data.currentBulkOperation.url "$tmp/body")"
jq -s 'map(select(has("__parentId") | not) | {key: (.id | ltrimstr("gid://shopify/Product/")), value: .title}) | from_entries' "$tmp/b1.jsonl" >"$tmp/t1"
jq -s 'map(select(has("__parentId") | not) | {key: (.id | ltrimstr("gid://shopify/Product/")), value: .title}) | from_entries' "$tmp/b2.jsonl" >"$tmp/t2"
jq -s 'map(select(.id | test("ProductVariant/[0-9]+1$"))) | map({key: .__parentId, value: .price}) | from_entries' "$tmp/b1.jsonl" >"$tmp/p1"
jq -s 'map(select(.id | test("ProductVariant/[0-9]+1$"))) | map({key: .__parentId, value: .price}) | from_entries' "$tmp/b2.jsonl" >"$tmp/p2"
check "deleted products are absent, added ones present" jqf -n --slurpfile a "$tmp/t1" --slurpfile b "$tmp/t2" --slurpfile m "$tmp/mut.json" \
    '($a[0] | keys) - ($b[0] | keys) == ($m[0].deleted | sort) and (($b[0] | keys) - ($a[0] | keys) | sort) == ($m[0].added | sort)'
check "exactly the edited products changed title (rev 1)" jqf -n --slurpfile a "$tmp/t1" --slurpfile b "$tmp/t2" --slurpfile m "$tmp/mut.json" \
    '[$a[0] | keys[] as $k | select($b[0][$k] != null and $b[0][$k] != $a[0][$k]) | $k] | sort == ($m[0].edited | sort)
     and ($m[0].edited | all(. as $k | $b[0][$k] == $a[0][$k] + " (rev 1)"))'
check "exactly the edited products changed their first price" jqf -n --slurpfile a "$tmp/p1" --slurpfile b "$tmp/p2" --slurpfile m "$tmp/mut.json" \
    '[$a[0] | keys[] as $k | select($b[0][$k] != null and $b[0][$k] != $a[0][$k]) | $k | ltrimstr("gid://shopify/Product/")] | sort == ($m[0].edited | sort)'
check "the first operation's file is unchanged (a snapshot)" cmp -s "$tmp/b1.jsonl" <(curl -s "$url")
del=$(jq -r '.deleted[0]' "$tmp/mut.json")
gql "$A" "{ products(first: 2, after: \"c$((del - 1))\") { nodes { id } } }"
check "products paging skips a deleted product" jqb ".data.products.nodes | length == 2 and all(.id != \"gid://shopify/Product/$del\")"

# ---- --bulk-fail ----
gql "$BASE_F" "$RUN_BULK"
wait_done "$BASE_F"
check "--bulk-fail: FAILED with INTERNAL_SERVER_ERROR" jqb '.data.currentBulkOperation | .status == "FAILED"
    and .errorCode == "INTERNAL_SERVER_ERROR" and .url == null and (.partialDataUrl | endswith("/__sim/bulk/1.jsonl"))'
curl -s -o "$tmp/f.jsonl" "$(jq -r .data.currentBulkOperation.partialDataUrl "$tmp/body")"
check "partial data: the first half of the products" jqf -s 'map(select(has("__parentId") | not)) | length == 50' "$tmp/f.jsonl"
curl -s -o "$tmp/body" -w '%{http_code}' "$BASE_F/__sim/bulk/7.jsonl" >"$tmp/status"
check "unknown JSONL -> 404" st 404

# ---- --wide-product: product 1 has more variants than a page carries ----
gql "$BASE_W" '{ products(first: 3) { nodes { id variants(first: 100) { nodes { id } pageInfo { hasNextPage } } } } }'
check "--wide-product: a page carries 100 of its variants, hasNextPage" jqb '.data.products.nodes[0].variants
    | (.nodes | length) == 100 and .pageInfo.hasNextPage == true'
check "--wide-product: the others are whole" jqb '[.data.products.nodes[1:][].variants | (.nodes | length) == 3 and .pageInfo.hasNextPage == false] == [true, true]'
gql "$BASE_W" "$RUN_BULK"
wait_done "$BASE_W"
curl -s -o "$tmp/w.jsonl" "$(jq -r .data.currentBulkOperation.url "$tmp/body")"
check "--wide-product: the bulk result holds all 150, distinct" jqf -s '[.[] | select(.__parentId == "gid://shopify/Product/1")
    | select(.id | startswith("gid://shopify/ProductVariant/")) | .id] | length == 150 and (unique | length) == 150' "$tmp/w.jsonl"
check "--wide-product: objectCount = lines" test "$(jq -r .data.currentBulkOperation.objectCount "$tmp/body")" = "$(grep -c . "$tmp/w.jsonl")"

# ---- throttle ----
sleep 0.5
for _ in 1 2 3 4 5; do
    gql "$A" '{ products(first: 250) { nodes { id title variants(first: 3) { nodes { id } } } } }'
    cp "$tmp/body" "$tmp/burst.$_" 2>/dev/null
    jqb '.errors[0].extensions.code == "THROTTLED"' && break
done
check "a burst of expensive pages gets THROTTLED" jqb '.errors[0].extensions.code == "THROTTLED" and .extensions.cost.requestedQueryCost == 1002'

# ---- counters ----
curl -s -o "$tmp/body" "$A/__sim/calls"
check "/__sim/calls counts throttled calls" jqb '.throttled >= 1 and .calls > 10'
check "/__sim/calls counts bulk operations" jqb '.bulk_operations == 2 and .mutations == 1 and .products == 1005'
bytes=$(($(wc -c <"$tmp/b1.jsonl") * 2 + $(wc -c <"$tmp/b2.jsonl")))
check "/__sim/calls counts JSONL bytes served" jqb ".jsonl_bytes == $bytes"

echo "shopify_sim: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
