#!/usr/bin/env bash
# End to end: bundle -> plan -> confirm -> apply against the Klaviyo emulator, for every asset
# kind: created, left unchanged, updated and replaced; the write guard (no write without a
# confirmed plan), confirmation rules (hash, operator, expiry, staleness, an edited bundle),
# conflicts, --prune, sending a draft campaign, and no key in any output or file.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/plan_lib.sh"

start_sim
setup_tenant
B="$WORK/bundle"
cp -r "$CADENCE_SRC/examples/bundle" "$B"
writes() { curl -s "$BASE/__sim/calls" | jq '[.calls[] | select(.method != "GET")] | length'; }

# ---- a plan, and nothing written without confirming it ----
plan_make acme-outdoors "$B"
expect "plan create --json" 0
[ "$(printf '%s' "$PLAN_JSON" | jq -r .status)" = planned ] && ok || fail "the new plan is not planned"
[ -n "$PLAN_ID" ] && [ ${#PLAN_HASH} = 64 ] && ok || fail "plan JSON lacks id or hash: $PLAN_JSON"
n_steps=$(printf '%s' "$PLAN_JSON" | jq '.steps | length')
[ "$n_steps" = 25 ] && ok || fail "expected 25 steps, got $n_steps"
printf '%s' "$PLAN_JSON" | jq -e '[.steps[] | has("kind") and has("name") and .action == "create"] | all' >/dev/null &&
    ok || fail "every step of a first plan is a create with kind and name"
for k in image template list segment form coupon webhook catalog-item campaign flow tag; do
    [ "$(actions $k)" = create ] && ok || fail "$k: expected create, got $(actions $k)"
done
printf '%s' "$PLAN_JSON" | jq -e '.steps[] | select(.kind=="segment" and .name=="vip-engaged") | .deps | length == 2' >/dev/null &&
    ok || fail "a segment depends on the list and segment it refers to"
printf '%s' "$PLAN_JSON" | jq -e '.estimate.operations | map(select(.operation=="create_segment")) | .[0].daily == 100' >/dev/null &&
    ok || fail "the estimate names create_segment's daily cap"
run plan show "$PLAN_ID"
expect "plan show (text) lists calls and diffs" 0 "call: POST /api/templates"
expect "plan show has the hash" 0 "$PLAN_HASH"
run plan list --tenant acme-outdoors
expect "plan list" 0 "$PLAN_ID +acme-outdoors +planned"

w0=$(writes)
run plan apply "$PLAN_ID"
expect "apply before confirm is refused" 1 "not confirmed"
[ "$(writes)" = "$w0" ] && ok || fail "a write reached the emulator without a confirmed plan"
run plan confirm "$PLAN_ID" --hash "$(printf '%064d' 0)" --operator "$OPERATOR"
expect "a wrong hash is refused" 1 "not plan $PLAN_ID's hash"
run plan confirm "$PLAN_ID" --hash "$PLAN_HASH" --operator nobody@agency.test
expect "an unknown operator is refused" 1 "not an operator"
run plan confirm "$PLAN_ID" --hash "$PLAN_HASH"
expect "no operator at all is refused" 1 "needs an operator"
echo "<!-- edited -->" >>"$B/templates/welcome.html"
run plan confirm "$PLAN_ID" --hash "$PLAN_HASH" --operator "$OPERATOR"
expect "an edited bundle does not match the plan" 1 "bundle .* changed since plan"
cp "$CADENCE_SRC/examples/bundle/templates/welcome.html" "$B/templates/welcome.html"
CADENCE_OPERATOR=$OPERATOR run plan confirm "$PLAN_ID" --hash "$PLAN_HASH"
expect "confirm with CADENCE_OPERATOR" 0 "confirmed by $OPERATOR"
run audit list --tenant acme-outdoors --action plan.confirm
expect "confirmation is in the audit log" 0 "plan.confirm"
run plan confirm "$PLAN_ID" --hash "$PLAN_HASH" --operator "$OPERATOR"
expect "a confirmed plan cannot be confirmed again" 1 "not awaiting confirmation"

run plan apply "$PLAN_ID"
expect "apply creates everything" 0 "done: 25 steps"
expect "apply prints progress lines" 0 "progress: .* calls, [0-9]+ 429s"
for spec in template:name:welcome template:name:spring-sale list:name:vip list:name:newsletter \
    segment:name:engaged-30d segment:name:vip-engaged form:name:signup-popup form:name:vip-embed \
    webhook:name:email-events flow:name:welcome flow:name:vip-welcome campaign:name:spring-sale \
    campaign:name:vip-preview tag:name:seasonal tag:name:vip image:name:logo image:name:spring-hero \
    catalog-item:external_id:TENT-2P catalog-item:external_id:BAG-40L; do
    IFS=: read -r t f v <<<"$spec"
    n=$(count_named "$t" "$f" "$v")
    [ "$n" = 1 ] && ok || fail "$t $v exists $n times after the first apply"
done
[ "$(count_named coupon external_id SPRING20)" = 1 ] && ok || fail "coupon SPRING20 missing"
vip_tag=$(curl -s "$BASE/__sim/objects?type=tag" | jq -r '[.objects[] | select(.attributes.name=="vip")][0].id')
tag_lists=$(curl -s -H "Authorization: Klaviyo-API-Key $KEY" -H 'revision: 2026-07-15' "$BASE/api/tags/$vip_tag/relationships/lists" | jq '.data | length')
[ "${tag_lists:-0}" = 1 ] && ok || fail "the vip tag does not tag its list ($tag_lists)"
camp_tpl=$(curl -s "$BASE/__sim/objects?type=campaign-message" | jq '[.objects[] | select(.relationships.template.data.id != null)] | length')
[ "${camp_tpl:-0}" -ge 2 ] && ok || fail "campaign messages have no template assigned ($camp_tpl)"
camp_status=$(curl -s "$BASE/__sim/objects?type=campaign" | jq -r '[.objects[].attributes.status] | unique | join(",")')
[ "$camp_status" = Draft ] && ok || fail "campaigns are not drafts: $camp_status"
run plan show "$PLAN_ID" --json
printf '%s' "$RUN_OUT" | jq -e '.status == "done" and ([.steps[].state] | unique == ["done"])' >/dev/null &&
    ok || fail "plan show after apply: not done"
run plan apply "$PLAN_ID"
expect "a done plan is not applied again" 1 "already done"

# ---- the same bundle again: nothing to do ----
plan_make acme-outdoors "$B"
expect "second plan" 0
for k in image template list segment form coupon webhook catalog-item campaign flow tag; do
    [ "$(actions $k)" = unchanged ] && ok || fail "$k: expected unchanged, got $(actions $k)"
done
UNCHANGED_ID=$PLAN_ID UNCHANGED_HASH=$PLAN_HASH

# ---- every kind changed: update, or replace where Klaviyo cannot update ----
echo "<p>More trail news</p>" >>"$B/templates/welcome.html"
jq '.opt_in_process = "double_opt_in"' "$B/lists/vip.json" >"$WORK/t" && mv "$WORK/t" "$B/lists/vip.json"
jq '.is_starred = true' "$B/segments/vip-engaged.json" >"$WORK/t" && mv "$WORK/t" "$B/segments/vip-engaged.json"
jq '.definition.versions[0].steps[0].columns[0].rows[0].blocks[1].properties.label = "Join now"' \
    "$B/forms/vip-embed.json" >"$WORK/t" && mv "$WORK/t" "$B/forms/vip-embed.json"
jq '.description = "20% off, two days only"' "$B/coupons/spring20.json" >"$WORK/t" && mv "$WORK/t" "$B/coupons/spring20.json"
jq '.endpoint_url = "https://hooks.agency.example/klaviyo/email2"' "$B/webhooks/email-events.json" >"$WORK/t" &&
    mv "$WORK/t" "$B/webhooks/email-events.json"
sed -i 's/Trail Tent 2P/Trail Tent 2P (2027)/' "$B/catalog/items.csv"
jq '.send_strategy.datetime = "2026-08-02T15:00:00+00:00"' "$B/campaigns/spring-sale.json" >"$WORK/t" &&
    mv "$WORK/t" "$B/campaigns/spring-sale.json"
jq '.definition.actions[0].data.message.subject_line = "You are in"' "$B/flows/vip-welcome.json" >"$WORK/t" &&
    mv "$WORK/t" "$B/flows/vip-welcome.json"
jq '.targets += ["flow:welcome"]' "$B/tags/seasonal.json" >"$WORK/t" && mv "$WORK/t" "$B/tags/seasonal.json"
jq '.url = "https://cdn.example.com/acme/spring-hero-2.jpg"' "$B/images/spring-hero.json" >"$WORK/t" &&
    mv "$WORK/t" "$B/images/spring-hero.json"
plan_make acme-outdoors "$B"
expect "plan of the edited bundle" 0
for spec in template:update list:update segment:update form:replace coupon:update \
    webhook:update catalog-item:update campaign:update flow:replace tag:update image:replace; do
    k=${spec%%:*} want=${spec#*:}
    got=$(printf '%s' "$PLAN_JSON" | jq -r --arg k "$k" '[.steps[] | select(.kind == $k) | .action] | map(select(. != "unchanged")) | unique | join(",")')
    [ "$got" = "$want" ] && ok || fail "$k: expected $want, got '$got'"
done
printf '%s' "$PLAN_JSON" | jq -r '.steps[] | select(.kind=="template" and .action=="update") | .diff' | matches '^+<p>More trail news</p>' &&
    ok || fail "the template diff is not a unified diff with the new line"
printf '%s' "$PLAN_JSON" | jq -r '.steps[] | select(.kind=="list" and .action=="update") | .diff' | matches '/opt_in_process: "single_opt_in" -> "double_opt_in"' &&
    ok || fail "the list diff is not field by field"
EDIT_ID=$PLAN_ID EDIT_HASH=$PLAN_HASH

run plan confirm "$UNCHANGED_ID" --hash "$UNCHANGED_HASH" --operator "$OPERATOR"
expect "a plan of an older bundle does not confirm" 1 "changed since plan"
run plan confirm "$EDIT_ID" --hash "$EDIT_HASH" --operator "$OPERATOR"
expect "confirm the edits" 0
run plan apply "$EDIT_ID"
expect "apply the edits" 0 "done"
[ "$(count_named form name vip-embed)" = 1 ] && ok || fail "replaced form exists $(count_named form name vip-embed) times"
[ "$(count_named flow name vip-welcome)" = 1 ] && ok || fail "replaced flow exists $(count_named flow name vip-welcome) times"
[ "$(count_named template name welcome)" = 1 ] && ok || fail "updated template duplicated"
curl -s "$BASE/__sim/objects?type=template" | jq -e '[.objects[] | select(.attributes.name=="welcome")][0].attributes.html | test("More trail news")' >/dev/null &&
    ok || fail "the template was not updated"
[ "$(count_named catalog-item title 'Trail Tent 2P (2027)')" = 1 ] && ok || fail "catalog item not updated"
[ "$(count_named coupon description '20% off, two days only')" = 1 ] && ok || fail "coupon not updated"
[ "$(count_named image name spring-hero)" -ge 1 ] && ok || fail "image missing"
plan_make acme-outdoors "$B"
[ "$(printf '%s' "$PLAN_JSON" | jq '[.steps[] | select(.action != "unchanged")] | length')" = 0 ] &&
    ok || fail "after applying the edits a new plan still changes: $(printf '%s' "$PLAN_JSON" | jq -c '[.steps[] | select(.action != "unchanged") | [.kind,.name,.action]]')"

# ---- stale: another plan was applied after this one was made ----
plan_make acme-outdoors "$B"
STALE_ID=$PLAN_ID STALE_HASH=$PLAN_HASH
echo "<p>again</p>" >>"$B/templates/spring-sale.html"
plan_make acme-outdoors "$B"
run plan confirm "$PLAN_ID" --hash "$PLAN_HASH" --operator "$OPERATOR"
run plan apply "$PLAN_ID"
expect "apply a newer plan" 0 "done"
cp "$B/templates/spring-sale.html" "$WORK/keep.html"
sed -i '$d' "$B/templates/spring-sale.html"
run plan confirm "$STALE_ID" --hash "$STALE_HASH" --operator "$OPERATOR"
expect "a stale plan is refused" 1 "stale"
cp "$WORK/keep.html" "$B/templates/spring-sale.html"

# ---- expiry ----
CADENCE_PLAN_TTL=1 plan_make acme-outdoors "$B"
sleep 2
run plan confirm "$PLAN_ID" --hash "$PLAN_HASH" --operator "$OPERATOR"
expect "an expired plan is refused" 1 "expired"
run plan list
expect "plan list shows expired" 0 "$PLAN_ID +acme-outdoors +expired"
run plan cancel "$PLAN_ID"
expect "cancel" 0 "cancelled"

# ---- conflict: changed in Klaviyo after the plan was made ----
echo "<p>conflict test</p>" >>"$B/templates/welcome-followup.html"
echo "<p>independent</p>" >>"$B/templates/spring-sale.html"
plan_make acme-outdoors "$B"
tid=$(curl -s "$BASE/__sim/objects?type=template" | jq -r '[.objects[] | select(.attributes.name=="welcome-followup")][0].id')
sleep 1.1
curl -s -o /dev/null -X PATCH -H "Authorization: Klaviyo-API-Key $KEY" -H 'revision: 2026-07-15' \
    -H 'Content-Type: application/vnd.api+json' \
    --data-binary "{\"data\":{\"type\":\"template\",\"id\":\"$tid\",\"attributes\":{\"html\":\"<p>edited by hand</p>\"}}}" \
    "$BASE/api/templates/$tid"
run plan confirm "$PLAN_ID" --hash "$PLAN_HASH" --operator "$OPERATOR"
run plan apply "$PLAN_ID"
expect "a conflict ends the plan partial" 4 "partial: .* 1 conflicts"
expect "the conflict is explained" 4 "welcome-followup.*conflict: template .* was changed in Klaviyo"
curl -s "$BASE/__sim/objects?type=template" | jq -e --arg id "$tid" '.objects[] | select(.id==$id) | .attributes.html == "<p>edited by hand</p>"' >/dev/null &&
    ok || fail "the hand edit was overwritten"
curl -s "$BASE/__sim/objects?type=template" | jq -e '[.objects[] | select(.attributes.name=="spring-sale")][0].attributes.html | test("independent")' >/dev/null &&
    ok || fail "an independent step did not run"

# ---- conflict on a kind without an `updated` time (coupons): seen by its content ----
cp "$B/coupons/spring20.json" "$WORK/spring20.keep"
printf '{"external_id": "SPRING20", "description": "20%% off everything, all spring"}\n' >"$B/coupons/spring20.json"
plan_make acme-outdoors "$B"
[ "$(printf '%s' "$PLAN_JSON" | jq -r '.steps[] | select(.kind=="coupon" and .name=="spring20") | .action')" = update ] &&
    ok || fail "the coupon edit should plan an update"
curl -s -o /dev/null -X PATCH -H "Authorization: Klaviyo-API-Key $KEY" -H 'revision: 2026-07-15' \
    -H 'Content-Type: application/vnd.api+json' \
    --data-binary '{"data":{"type":"coupon","id":"SPRING20","attributes":{"description":"changed by hand"}}}' \
    "$BASE/api/coupons/SPRING20"
run plan confirm "$PLAN_ID" --hash "$PLAN_HASH" --operator "$OPERATOR"
run plan apply "$PLAN_ID"
expect "a coupon changed in Klaviyo is a conflict" 4 "spring20.*conflict: coupon SPRING20 was changed in Klaviyo"
curl -s "$BASE/__sim/objects?type=coupon" | jq -e '.objects[] | select(.id=="SPRING20") | .attributes.description == "changed by hand"' >/dev/null &&
    ok || fail "the coupon's hand edit was overwritten"
cp "$WORK/spring20.keep" "$B/coupons/spring20.json"
plan_make acme-outdoors "$B"
run plan confirm "$PLAN_ID" --hash "$PLAN_HASH" --operator "$OPERATOR"
run plan apply "$PLAN_ID"
expect "a new plan puts the coupon back" 0 "done"

# ---- prune ----
git_coupon="$B/coupons/welcome10.json"
rm "$git_coupon"
plan_make acme-outdoors "$B" --prune
[ "$(printf '%s' "$PLAN_JSON" | jq -r '[.steps[] | select(.action=="delete") | .kind + ":" + .name] | join(",")')" = "coupon:welcome10" ] &&
    ok || fail "prune should delete just the coupon: $(printf '%s' "$PLAN_JSON" | jq -c '[.steps[] | select(.action=="delete")]')"
run plan confirm "$PLAN_ID" --hash "$PLAN_HASH" --operator "$OPERATOR"
run plan apply "$PLAN_ID"
expect "apply with prune" 0 "done"
[ "$(count_named coupon external_id WELCOME10)" = 0 ] && ok || fail "pruned coupon still there"

# ---- campaign send: its own confirmation ----
run campaign send acme-outdoors vip-preview
expect "campaign send shows audience and time" 0 "audience .*segment \"vip-engaged\""
code=$(printf '%s' "$RUN_OUT" | sed -n 's/.*--confirm \([0-9a-f]*\)$/\1/p')
[ "$(curl -s "$BASE/__sim/calls" | jq '[.calls[] | select(.path=="/api/campaign-send-jobs")] | length')" = 0 ] &&
    ok || fail "the first call of campaign send sent something"
run campaign send acme-outdoors vip-preview --confirm 0000000000
expect "a wrong send code is refused" 1 "not a send code"
run campaign send acme-outdoors vip-preview --confirm "$code"
expect "campaign send --confirm" 0 "Sent: campaign \"vip-preview\""
run campaign send acme-outdoors vip-preview --confirm "$code"
expect "a send code works once" 1 "already used"
run audit list --tenant acme-outdoors --action campaign.send
expect "the send is audited" 0 "campaign.send"

assert_no_secret "no key in any output or file" "$KEY"
finish
