#!/usr/bin/env bash
# One applier per plan: while `cadence plan apply` runs a plan (here frozen with SIGSTOP, so it
# holds a live lease for as long as the test needs), a second applier is refused with a message
# naming the holder's process, host and start time; the first then finishes with every asset
# exactly once. A lease whose holder stopped renewing (expired) or whose process is gone from this
# host is taken over at once; an unexpired lease of another host is respected.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/plan_lib.sh"
command -v sqlite3 >/dev/null || { echo "sqlite3 is required" >&2; exit 1; }
db() { sqlite3 "$CADENCE_DATA/cadence.db" "$@"; }

start_sim --latency-ms 40
setup_tenant

# ---- two appliers at once ----
gen_bundle "$WORK/b1" l1 20 4 6 4 200 2 2 2
plan_make acme-outdoors "$WORK/b1"
expect "l1: plan" 0
run plan confirm "$PLAN_ID" --hash "$PLAN_HASH" --operator "$OPERATOR"
expect "l1: confirm" 0
"$CADENCE_BIN" plan apply "$PLAN_ID" >"$WORK/a.out" 2>&1 &
a_pid=$!
CLEANUP+=("kill -CONT $a_pid 2>/dev/null; kill $a_pid 2>/dev/null")
for _ in $(seq 200); do
    [ "$(db "SELECT pid FROM plan_leases WHERE plan_id = '$PLAN_ID'")" = "$a_pid" ] && break
    sleep 0.05
done
# freeze it between two transactions (frozen inside one, the database stays locked for everyone)
for _ in $(seq 100); do
    kill -STOP "$a_pid"
    sqlite3 -cmd ".timeout 300" "$CADENCE_DATA/cadence.db" "BEGIN IMMEDIATE; ROLLBACK;" 2>/dev/null && break
    kill -CONT "$a_pid"
    sleep 0.02
done
[ "$(db "SELECT pid FROM plan_leases WHERE plan_id = '$PLAN_ID'")" = "$a_pid" ] && ok ||
    fail "the first applier holds no lease"
run plan apply "$PLAN_ID"
expect "a second applier is refused while the first runs" 1 \
    "plan $PLAN_ID is being applied by process $a_pid on host .+ since [0-9]{4}-"
kill -CONT "$a_pid"
wait "$a_pid"
a_rc=$?
[ "$a_rc" = 0 ] && ok || fail "the first applier exited $a_rc: $(tail -3 "$WORK/a.out")"
grep -q "done" "$WORK/a.out" && ok || fail "the first applier did not finish: $(tail -3 "$WORK/a.out")"
dups=$(exactly_once l1)
[ -z "$dups" ] && ok || fail "l1: $dups"
[ "$(count_prefix template name l1-)" = 20 ] && ok || fail "l1: templates $(count_prefix template name l1-)"
[ "$(db "SELECT COUNT(*) FROM plan_leases")" = 0 ] && ok || fail "the lease was not released"

# ---- a stale lease is taken over; a live one of another host is respected ----
gen_bundle "$WORK/b2" l2 5 2 2 2 30 1 1 1
plan_make acme-outdoors "$WORK/b2"
expect "l2: plan" 0
run plan confirm "$PLAN_ID" --hash "$PLAN_HASH" --operator "$OPERATOR"
expect "l2: confirm" 0
now=$(($(date +%s) * 1000))
db "INSERT INTO plan_leases VALUES ('$PLAN_ID', 'elsewhere:4242:x', 'elsewhere.example', 4242, $((now - 60000)), $((now + 600000)))"
run plan apply "$PLAN_ID"
expect "an unexpired lease of another host is respected" 1 \
    "being applied by process 4242 on host elsewhere.example since"
db "UPDATE plan_leases SET expires_ms = $((now - 1000)) WHERE plan_id = '$PLAN_ID'"
run plan apply "$PLAN_ID"
expect "an expired lease (its holder crashed) is taken over" 0 "done"
[ "$(db "SELECT COUNT(*) FROM plan_leases")" = 0 ] && ok || fail "the taken-over lease was not released"

gen_bundle "$WORK/b3" l3 5 2 2 2 30 1 1 1
plan_make acme-outdoors "$WORK/b3"
run plan confirm "$PLAN_ID" --hash "$PLAN_HASH" --operator "$OPERATOR"
expect "l3: confirm" 0
gone=$(sh -c 'echo $$') # a process of this host that has exited
host=$(hostname)
db "INSERT INTO plan_leases VALUES ('$PLAN_ID', '$host:$gone:x', '$host', $gone, $now, $((now + 600000)))"
run plan apply "$PLAN_ID"
expect "a lease whose process is gone from this host is taken over at once" 0 "done"
dups="$(exactly_once l2)$(exactly_once l3)"
[ -z "$dups" ] && ok || fail "$dups"
finish
