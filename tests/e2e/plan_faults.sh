#!/usr/bin/env bash
# Faults during apply: creates that succeed but whose answer is dropped (no duplicate may
# follow), 5xx answers, 429 storms from foreign usage of the account and latency (the plan still
# completes), and a key revoked mid-apply: nothing is sent after the confirming re-check, the plan
# pauses, the key is marked revoked, one email is queued, and after a new key the plan resumes
# with no duplicates and nothing lost.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/plan_lib.sh"

start_sim
setup_tenant

apply_confirmed() { # apply_confirmed DIR: plan, confirm and apply; leaves RUN_* of the apply
    plan_make acme-outdoors "$1"
    run plan confirm "$PLAN_ID" --hash "$PLAN_HASH" --operator "$OPERATOR"
    run plan apply "$PLAN_ID"
}

# ---- ambiguous creates: the object is made, the connection dropped ----
gen_bundle "$WORK/b1" amb 24 4 3 4 150 2 2 2
sim_faults '{"drop_after_create_rate":0.35}'
apply_confirmed "$WORK/b1"
sim_faults '{}'
expect "apply with dropped create answers completes" 0 "done"
dropped=$(curl -s "$BASE/__sim/calls" | jq '.counts.dropped')
[ "${dropped:-0}" -ge 3 ] && ok || fail "the emulator dropped only ${dropped:-0} answers; the test proves nothing"
dups=$(exactly_once amb)
[ -z "$dups" ] && ok || fail "dropped answers: $dups"
[ "$(count_prefix template name amb-)" = 24 ] && ok || fail "templates: $(count_prefix template name amb-)"
[ "$(count_prefix catalog-item external_id amb-)" = 150 ] && ok || fail "catalog: $(count_prefix catalog-item external_id amb-)"
run audit verify
expect "the audit log still verifies" 0

# ---- 5xx, 429 storms from another integration's usage, latency ----
gen_bundle "$WORK/b2" storm 24 4 3 4 150 2 2 2
sim_faults '{"error_rate":0.15,"foreign_usage":0.6,"latency_ms":[5,40]}'
apply_confirmed "$WORK/b2"
sim_faults '{}'
expect "apply through 5xx, 429s and latency completes" 0 "done"
dups=$(exactly_once storm)
[ -z "$dups" ] && ok || fail "storm: $dups"
[ "$(count_prefix segment name storm-)" = 3 ] && ok || fail "segments: $(count_prefix segment name storm-)"
[ "$(count_prefix campaign name storm-)" = 4 ] && ok || fail "campaigns: $(count_prefix campaign name storm-)"

# ---- revocation mid-apply ----
gen_bundle "$WORK/b3" rev 30 4 3 4 120 2 2 2
plan_make acme-outdoors "$WORK/b3"
run plan confirm "$PLAN_ID" --hash "$PLAN_HASH" --operator "$OPERATOR"
REV_ID=$PLAN_ID
since=$(curl -s "$BASE/__sim/calls" | jq .next)
sim_faults "{\"revoke_key_after\":{\"key_last4\":\"${KEY: -4}\",\"calls\":25}}"
run plan apply "$REV_ID"
expect "a revoked key pauses the plan" 3 "paused: Klaviyo revoked"
sim_faults '{}'
curl -s "$BASE/__sim/calls?since=$since" >"$WORK/calls.json"
# the first GET /api/accounts answered 401 is the confirming re-check
recheck=$(jq '[.calls | to_entries[] | select(.value.path == "/api/accounts" and .value.status == 401)][0].key // -1' "$WORK/calls.json")
[ "$recheck" -ge 0 ] && ok || fail "no confirming re-check in the call log"
after=$(jq --argjson i "$recheck" '[.calls[($i + 1):][] | select(.path != "/api/accounts")] | length' "$WORK/calls.json")
after_ok=$(jq --argjson i "$recheck" '[.calls[($i + 1):][] | select(.status != 401)] | length' "$WORK/calls.json")
# calls logged after the re-check can only be ones already on the wire (answered 401)
[ "$after_ok" = 0 ] && [ "$after" -le 16 ] && ok ||
    fail "calls after the confirming re-check: $after (not 401: $after_ok): $(jq -c --argjson i "$recheck" '[.calls[($i + 1):][] | [.method,.path,.status]]' "$WORK/calls.json")"
n_before=$(curl -s "$BASE/__sim/calls" | jq '.counts.total')
run plan apply "$REV_ID"
expect "apply with a revoked key is refused at once" 1 "revoked"
[ "$(curl -s "$BASE/__sim/calls" | jq '.counts.total')" = "$n_before" ] && ok || fail "a call was sent with a revoked key"
run key show acme-outdoors --kind klaviyo
expect "the key shows as revoked" 0 "revoked"
run tenant show acme-outdoors
expect "tenant show shows the revoked key" 0 "revoked"
run mail list --tenant acme-outdoors
expect "one key-revoked email is queued" 0 "key_revoked"
[ "$(printf '%s' "$RUN_OUT" | grep -c key_revoked)" = 1 ] && ok || fail "expected one key_revoked email: $RUN_OUT"
run plan list --tenant acme-outdoors
expect "the plan is paused" 0 "$REV_ID +acme-outdoors +paused"
run audit list --tenant acme-outdoors --action key.revoked
expect "the revocation is audited as system" 0 "system"

NEWKEY=$(random_key)
account=$(curl -s "$BASE/__sim/accounts" | jq -r '.accounts[0].id // .[0].id // empty')
curl -s -X POST -H 'Content-Type: application/json' \
    --data-binary "{\"account_id\":\"$account\",\"key\":\"$NEWKEY\"}" "$BASE/__sim/keys/add" >/dev/null
run_in "$NEWKEY" key set acme-outdoors
expect "a new key is stored" 0 "Stored the klaviyo key"
run plan resume acme-outdoors
expect "resume finishes the paused plan" 0 "done"
dups=$(exactly_once rev)
[ -z "$dups" ] && ok || fail "after resume: $dups"
[ "$(count_prefix template name rev-)" = 30 ] && ok || fail "templates after resume: $(count_prefix template name rev-)"
[ "$(count_prefix catalog-item external_id rev-)" = 120 ] && ok || fail "catalog after resume: $(count_prefix catalog-item external_id rev-)"
[ "$(count_prefix tag name rev-)" = 2 ] && ok || fail "tags after resume: $(count_prefix tag name rev-)"
run mail list --tenant acme-outdoors
[ "$(printf '%s' "$RUN_OUT" | grep -c key_revoked)" = 1 ] && ok || fail "still one key_revoked email after resume"

assert_no_secret "no key in any output or file" "$KEY" "$NEWKEY"
finish
