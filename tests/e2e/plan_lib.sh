# Helpers for the plan suites (source after lib.sh): an emulator on a free loopback port with its
# clock N times faster (the client's limits scaled to match), a tenant with a key and an
# operator, bundles, and reads of the emulator's objects and call log.
SIM="${CADENCE_BUILD:?set by CTest}/cadence-klaviyo-sim"
[ -x "$SIM" ] || { echo "no emulator at $SIM" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is required" >&2; exit 1; }
SCALE=${SCALE:-20}
KEY=$(random_key)
OPERATOR=ann@agency.test
export ACME_EMAIL_WEBHOOK_SECRET=whsec-email-$$ ACME_SMS_WEBHOOK_SECRET=whsec-sms-$$

# start_sim [EXTRA ARGS...]: starts the emulator with one account holding $KEY.
start_sim() {
    "$SIM" --listen 127.0.0.1:0 --time-scale "$SCALE" --account "Acme Outdoors" --key "$KEY" "$@" \
        >"$WORK/sim.out" 2>"$WORK/sim.err" &
    SIM_PID=$!
    CLEANUP+=("kill $SIM_PID 2>/dev/null")
    for _ in $(seq 50); do
        grep -q '^listening on ' "$WORK/sim.out" && break
        sleep 0.1
    done
    BASE=$(sed -n 's/^listening on \(http:\/\/127\.0\.0\.1:[0-9]*\)$/\1/p' "$WORK/sim.out")
    [ -n "$BASE" ] || { echo "the emulator did not start" >&2; cat "$WORK/sim.err" >&2; exit 1; }
    export CADENCE_KLAVIYO_URL=$BASE CADENCE_KLAVIYO_RATE_SCALE=$SCALE CADENCE_KLAVIYO_TIMEOUT_MS=5000
}

# setup_tenant: init, tenant acme-outdoors with an email, its key, an operator.
setup_tenant() {
    run init
    run tenant add --name "Acme Outdoors" --email owner@acme.test
    expect "tenant add" 0 "^acme-outdoors$"
    run_in "$KEY" key set acme-outdoors
    expect "key set" 0 "Stored the klaviyo key"
    run_in "correct horse battery staple" operator add --email "$OPERATOR" --role operator
    expect "operator add" 0
}

# objects TYPE: the emulator's live objects of a type (JSON array).
objects() { curl -s "$BASE/__sim/objects?type=$1" | jq -c '.objects'; }
# count_named TYPE FIELD VALUE: how many live objects of TYPE have attributes.FIELD == VALUE.
count_named() {
    curl -s "$BASE/__sim/objects?type=$1" |
        jq --arg v "$3" --arg f "$2" '[.objects[] | select((._.hidden // false) | not) | select(.attributes[$f] == $v)] | length'
}
# dup_names TYPE FIELD: names held by more than one live object (empty when none).
dup_names() {
    curl -s "$BASE/__sim/objects?type=$1" |
        jq -r --arg f "$2" '[.objects[] | .attributes[$f]] | group_by(.) | map(select(length > 1) | .[0]) | .[]'
}
sim_faults() { curl -s -X POST -H 'Content-Type: application/json' --data-binary "$1" "$BASE/__sim/faults" >/dev/null; }

# plan_make TENANT DIR [ARGS...]: plan create --json; sets PLAN_ID, PLAN_HASH, PLAN_JSON.
plan_make() {
    run plan create "$@" --json
    PLAN_JSON=$RUN_OUT
    PLAN_ID=$(printf '%s' "$RUN_OUT" | jq -r '.id // empty' 2>/dev/null)
    PLAN_HASH=$(printf '%s' "$RUN_OUT" | jq -r '.hash // empty' 2>/dev/null)
}
# actions KIND: the actions of a kind's steps in the last plan, sorted and joined.
actions() { printf '%s' "$PLAN_JSON" | jq -r --arg k "$1" '[.steps[] | select(.kind == $k) | .action] | sort | unique | join(",")'; }
