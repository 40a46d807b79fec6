#!/usr/bin/env bash
# End-to-end: `cadence key verify` and `cadence key set --verify` against the Klaviyo emulator
# (build/cadence-klaviyo-sim) on a free loopback port: a valid key (names the organization), a
# key lacking scopes, a revoked key, a rejected key that must not replace a verified one, and
# Klaviyo unreachable (the key's state is left alone). No key may appear in any output or file.
source "$(dirname "$0")/lib.sh"

SIM="${CADENCE_BUILD:?set by CTest}/cadence-klaviyo-sim"
[ -x "$SIM" ] || { echo "no emulator at $SIM" >&2; exit 1; }

KEY_FULL=$(random_key)
KEY_FEW=$(random_key)
KEY_GONE=$(random_key)
KEY_WRONG=$(random_key)

# The emulator's clock runs 10x faster; the client's limits are scaled to match.
"$SIM" --listen 127.0.0.1:0 --time-scale 10 \
    --account "Acme Outdoors" --key "$KEY_FULL" --key "$KEY_GONE" \
    --account "Beta Brand" --key "$KEY_FEW" --scopes accounts:read,lists:read,segments:read \
    >"$WORK/sim.out" 2>"$WORK/sim.err" &
SIM_PID=$!
CLEANUP+=("kill $SIM_PID 2>/dev/null")
BASE=$(wait_listening "$WORK/sim.out" "$SIM_PID")
[ -n "$BASE" ] || { echo "the emulator did not start" >&2; cat "$WORK/sim.err" >&2; exit 1; }
export CADENCE_KLAVIYO_URL=$BASE CADENCE_KLAVIYO_RATE_SCALE=10 CADENCE_KLAVIYO_TIMEOUT_MS=5000

state_of() { # state_of TENANT: the Klaviyo key's state
    run key show "$1" --kind klaviyo --json
    printf '%s' "$RUN_OUT" | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p'
}

run init
expect "init" 0
for t in "Acme Outdoors" "Beta Brand" "Gamma Goods"; do
    run tenant add --name "$t" --email "owner@example.com"
    expect "tenant add $t" 0
done

# ---- a valid key ----
run_in "$KEY_FULL" key set acme-outdoors
expect "key set (unverified)" 0 "unverified"
run key verify acme-outdoors
expect "verify a valid key" 0 "^Verified: Acme Outdoors \(account [A-Za-z0-9]+\)"
expect "per-scope lines" 0 "lists +read ok +write confirmed on first write"
expect "webhooks checked" 0 "webhooks +read ok"
[ "$(state_of acme-outdoors)" = verified ] && ok || fail "valid key: state is not verified"
run key show acme-outdoors --kind klaviyo
expect "show names the account" 0 "account Acme Outdoors"

# ---- a key lacking scopes ----
run_in "$KEY_FEW" key set beta-brand
expect "key set beta" 0
run key verify beta-brand
expect "missing scopes: exit 1" 1 "cannot read: templates, campaigns, flows, profiles, forms, images, catalogs, coupons, webhooks, tags"
expect "missing scopes: per scope" 1 "templates +read MISSING"
expect "missing scopes: lists fine" 1 "lists +read ok"
[ "$(state_of beta-brand)" = invalid ] && ok || fail "missing scopes: state is not invalid"

# ---- a revoked key ----
run_in "$KEY_GONE" key set gamma-goods
expect "key set gamma" 0
run key verify gamma-goods
expect "gamma verifies first" 0 "Verified: Acme Outdoors"
curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
    --data-binary "{\"key\":\"$KEY_GONE\"}" "$BASE/__sim/keys/revoke"
run key verify gamma-goods
expect "revoked key rejected" 1 "rejected the key: it is wrong or was revoked"
[ "$(state_of gamma-goods)" = revoked ] && ok || fail "revoked key: state is not revoked"
n=$(curl -s "$BASE/__sim/calls" | grep -o '"path": *"/api/accounts"' | wc -l)
[ "$n" -ge 2 ] && ok || fail "the 401 was not re-checked with GET /api/accounts"

# ---- set --verify: a rejected key never replaces a verified one; a good one is stored ----
run_in "$KEY_WRONG" key set acme-outdoors --verify
expect "set --verify rejected" 1 "not stored"
run key show acme-outdoors --kind klaviyo --json
expect "stored key kept" 0 '"state":"verified","version":1'
run_in "$KEY_FULL" key set acme-outdoors --verify
expect "set --verify good key" 0 "Stored the klaviyo key for acme-outdoors: .*version 2 \(verified\)"
expect "set --verify names org" 0 "Verified: Acme Outdoors"

# ---- every call audited, none open ----
run audit list --tenant acme-outdoors --action 'klaviyo.*'
expect "audit lists the calls" 0 "GET /api/accounts"
calls=$(printf '%s\n' "$RUN_OUT" | grep -c "klaviyo.call")
[ "$calls" -ge 26 ] && ok || fail "expected at least 26 audited calls for acme-outdoors, got $calls"
printf '%s\n' "$RUN_OUT" | matches "no response recorded" && fail "a call has no outcome" || ok

# ---- Klaviyo unreachable: nothing changes ----
kill "$SIM_PID"
wait "$SIM_PID" 2>/dev/null
run key verify acme-outdoors
expect "unreachable: exit 1" 1 "could not be reached"
expect "unreachable: state untouched" 1 "state was not changed"
[ "$(state_of acme-outdoors)" = verified ] && ok || fail "unreachable: the state changed"

run audit verify
expect "audit chain verifies" 0

assert_no_secret "no key in any file or output" "$KEY_FULL" "$KEY_FEW" "$KEY_GONE" "$KEY_WRONG"
finish
