#!/usr/bin/env bash
# Contract check of the plan engine: the real `cadence` binary, pointed at Prism (proxy mode,
# validating every request and response against Klaviyo's OpenAPI document) in front of the
# emulator, applies examples/bundle (every asset kind created), an edited bundle (updates and
# replaces), a re-plan that is all unchanged, a --prune plan that deletes, and sends a draft
# campaign. Fails on any violation not in allowlist.tsv, printing each with its request.
# The plan engine keeps several requests in flight and Prism's log interleaves them, so cadence
# talks to prism_tap.py, which passes each exchange to Prism and records it with the violations
# Prism put in that exchange's sl-violations header.
# CTest sets CADENCE_BIN, CADENCE_SRC and CADENCE_BUILD.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../e2e/lib.sh"
source "$here/../e2e/plan_lib.sh"
source "$here/prism_lib.sh"
trap 'prism_cleanup; cleanup' EXIT

started=$SECONDS
prism_start "$SIM" --time-scale "$SCALE" --account "Acme Outdoors" --key "$KEY"
echo "contract_plan: Prism ready after $((SECONDS - started)) s"
/usr/bin/python3 "$here/prism_tap.py" "$PRISM_URL" "$tmp/tap.jsonl" >"$tmp/tap.out" 2>"$tmp/tap.err" &
tap_pid=$!
tap=$(wait_listening "$tmp/tap.out" "$tap_pid") || { echo "the tap did not start" >&2; cat "$tmp/tap.err" >&2; exit 1; }
trap 'kill $tap_pid 2>/dev/null; prism_cleanup; cleanup' EXIT
BASE=$emu # the emulator itself, for its /__sim/ reads
export CADENCE_KLAVIYO_URL=$tap CADENCE_KLAVIYO_RATE_SCALE=$SCALE CADENCE_KLAVIYO_TIMEOUT_MS=20000

setup_tenant
B="$WORK/bundle"
cp -r "$CADENCE_SRC/examples/bundle" "$B"

# apply_plan NAME [PLAN ARGS...]: plan create, confirm and apply; apply must finish "done".
apply_plan() {
    local name=$1
    shift
    plan_make acme-outdoors "$B" "$@"
    expect "$name: plan create" 0
    run plan confirm "$PLAN_ID" --hash "$PLAN_HASH" --operator "$OPERATOR"
    expect "$name: plan confirm" 0
    run plan apply "$PLAN_ID"
    expect "$name: plan apply" 0 "done"
}
# all_unchanged NAME: a new plan of the bundle changes nothing.
all_unchanged() {
    plan_make acme-outdoors "$B"
    expect "$1: plan create" 0
    local changed
    changed=$(printf '%s' "$PLAN_JSON" | jq -c '[.steps[] | select(.action != "unchanged") | [.kind, .name, .action]]')
    [ "$changed" = "[]" ] && ok || fail "$1: a re-plan still changes $changed"
}

# ---- every asset kind created ----
plan_make acme-outdoors "$B"
for k in image template list segment form coupon webhook catalog-item campaign flow tag; do
    [ "$(actions $k)" = create ] && ok || fail "$k: expected create, got $(actions $k)"
done
run plan confirm "$PLAN_ID" --hash "$PLAN_HASH" --operator "$OPERATOR"
expect "first plan: confirm" 0
run plan apply "$PLAN_ID"
expect "first plan: apply creates everything" 0 "done: 25 steps"
all_unchanged "after the first apply"

# ---- every kind changed: update, or replace where Klaviyo cannot update ----
echo "<p>More trail news</p>" >>"$B/templates/welcome.html"
edit() { jq "$2" "$B/$1" >"$WORK/t" && mv "$WORK/t" "$B/$1"; }
edit lists/vip.json '.opt_in_process = "double_opt_in"'
edit segments/vip-engaged.json '.is_starred = true'
edit forms/vip-embed.json '.definition.versions[0].steps[0].columns[0].rows[0].blocks[1].properties.label = "Join now"'
edit coupons/spring20.json '.description = "20% off, two days only"'
edit webhooks/email-events.json '.endpoint_url = "https://hooks.agency.example/klaviyo/email2"'
sed -i 's/Trail Tent 2P/Trail Tent 2P (2027)/' "$B/catalog/items.csv"
edit campaigns/spring-sale.json '.send_strategy.datetime = "2026-08-02T15:00:00+00:00"'
edit flows/vip-welcome.json '.definition.actions[0].data.message.subject_line = "You are in"'
edit tags/seasonal.json '.targets += ["flow:welcome"]'
edit images/spring-hero.json '.url = "https://cdn.example.com/acme/spring-hero-2.jpg"'
plan_make acme-outdoors "$B"
for s in template:update list:update segment:update form:replace coupon:update \
    webhook:update catalog-item:update campaign:update flow:replace tag:update image:replace; do
    k=${s%%:*} want=${s#*:}
    got=$(printf '%s' "$PLAN_JSON" | jq -r --arg k "$k" '[.steps[] | select(.kind == $k) | .action] | map(select(. != "unchanged")) | unique | join(",")')
    [ "$got" = "$want" ] && ok || fail "$k: expected $want, got '$got'"
done
run plan confirm "$PLAN_ID" --hash "$PLAN_HASH" --operator "$OPERATOR"
expect "edits: confirm" 0
run plan apply "$PLAN_ID"
expect "edits: apply" 0 "done"
all_unchanged "after the edits"

# ---- prune ----
rm "$B/coupons/welcome10.json"
plan_make acme-outdoors "$B" --prune
[ "$(printf '%s' "$PLAN_JSON" | jq -r '[.steps[] | select(.action=="delete") | .kind + ":" + .name] | join(",")')" = "coupon:welcome10" ] &&
    ok || fail "prune should delete just the coupon: $(printf '%s' "$PLAN_JSON" | jq -c '[.steps[] | select(.action=="delete")]')"
run plan confirm "$PLAN_ID" --hash "$PLAN_HASH" --operator "$OPERATOR"
expect "prune: confirm" 0
run plan apply "$PLAN_ID"
expect "prune: apply" 0 "done"
[ "$(count_named coupon external_id WELCOME10)" = 0 ] && ok || fail "the pruned coupon is still there"

# ---- campaign send: prepare, then confirm ----
run campaign send acme-outdoors vip-preview
expect "campaign send" 0 "--confirm"
code=$(printf '%s' "$RUN_OUT" | sed -n 's/.*--confirm \([0-9a-f]*\)$/\1/p')
run campaign send acme-outdoors vip-preview --confirm "$code"
expect "campaign send --confirm" 0 "Sent: campaign \"vip-preview\""

# ---- Prism's verdict on every request ----
# Operations the scenario must have sent (every kind's create, each update and delete path, the
# bulk catalog jobs and their polling, the send), so that it cannot silently stop covering them.
required=(upload_image_from_url get_images create_template update_template create_list update_list
    create_segment update_segment create_form delete_form create_coupon update_coupon delete_coupon
    create_webhook update_webhook create_campaign update_campaign update_campaign_message
    assign_template_to_campaign_message create_flow delete_flow create_tag_group create_tag
    update_tag tag_lists tag_segments tag_campaigns tag_flows bulk_create_catalog_items
    get_bulk_create_catalog_items_job bulk_update_catalog_items get_bulk_update_catalog_items_job
    get_catalog_items send_campaign)
ncalls=$(curl -s "$BASE/__sim/calls" | jq '.calls | length')
if /usr/bin/python3 "$here/check_tap.py" "$spec" "$here/allowlist.tsv" "$tmp/tap.jsonl" "$PRISM_LOG" \
    "$ncalls" "${required[@]}"; then
    ok
else
    fail "Prism reported violations (above)"
    [ -n "${CONTRACT_KEEP_LOG:-}" ] && cp "$PRISM_LOG" "$CONTRACT_KEEP_LOG"
fi
echo "contract_plan: $((SECONDS - started)) s"
finish
