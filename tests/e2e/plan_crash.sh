#!/usr/bin/env bash
# Crash safety: `cadence plan apply` is killed with SIGKILL at random points (at least 20 kills,
# up to six per plan) and started again until it finishes. Afterwards the emulator holds every asset exactly
# once and each plan is done. The emulator answers with some latency so that kills land in the
# middle of calls as well as between them.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/plan_lib.sh"

start_sim --latency-ms 25
# A resumed apply waits one request timeout before it looks up a step the killed run left in doubt
# (its last request may still be in flight); the emulator answers in 25 ms, so 2 s is ample.
export CADENCE_KLAVIYO_TIMEOUT_MS=2000
setup_tenant
KILLS=0
round=0
while [ "$KILLS" -lt 20 ] && [ "$round" -lt 10 ]; do
    round=$((round + 1))
    p="r$round"
    gen_bundle "$WORK/b$round" "$p" 20 4 3 4 220 2 2 2
    plan_make acme-outdoors "$WORK/b$round"
    expect "$p: plan" 0
    [ "$(printf '%s' "$PLAN_JSON" | jq -r .status)" = planned ] && ok || fail "$p: plan not planned"
    total=$(printf '%s' "$PLAN_JSON" | jq '.steps | length')
    run plan confirm "$PLAN_ID" --hash "$PLAN_HASH" --operator "$OPERATOR"
    expect "$p: confirm" 0
    for k in 1 2 3 4 5 6; do
        "$CADENCE_BIN" plan apply "$PLAN_ID" >>"$OUT" 2>&1 &
        pid=$!
        sleep "0.$(printf '%02d' $((RANDOM % 45 + 3)))"
        landed=0
        kill -KILL "$pid" 2>/dev/null && landed=1
        wait "$pid" 2>/dev/null
        [ "$landed" = 1 ] || break # this run finished the plan
        KILLS=$((KILLS + 1))
    done
    run plan apply "$PLAN_ID"
    if [ "$RUN_RC" != 0 ]; then
        run plan apply "$PLAN_ID" # one that finished just before the kill is "already done"
    fi
    run plan show "$PLAN_ID" --json
    status=$(printf '%s' "$RUN_OUT" | jq -r .status)
    [ "$status" = done ] && ok || fail "$p: plan ends $status: $(printf '%s' "$RUN_OUT" | jq -c '[.steps[] | select(.state != "done") | [.kind,.name,.state,.error]]')"
    dups=$(exactly_once "$p")
    [ -z "$dups" ] && ok || fail "$p: $dups"
    [ "$(count_prefix template name "$p-")" = 20 ] && ok || fail "$p: templates $(count_prefix template name "$p-")"
    [ "$(count_prefix catalog-item external_id "$p-")" = 220 ] && ok || fail "$p: catalog items $(count_prefix catalog-item external_id "$p-")"
    [ "$(count_prefix campaign name "$p-")" = 4 ] && ok || fail "$p: campaigns $(count_prefix campaign name "$p-")"
    [ "$(count_prefix form name "$p-")" = 2 ] && ok || fail "$p: forms $(count_prefix form name "$p-")"
    [ "$total" -gt 250 ] && ok || fail "$p: unexpected plan size $total"
done
echo "SIGKILLs that landed during an apply: $KILLS, over $round plans"
[ "$KILLS" -ge 20 ] && ok || fail "only $KILLS kills landed during an apply"
finish
