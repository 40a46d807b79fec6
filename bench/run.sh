#!/usr/bin/env bash
# `make bench`: Cadence's Klaviyo client against the emulator with Klaviyo's limits time-scaled
# and 50-100 ms of latency, beside the official Node SDK (sequential and Promise.all), and again
# with another integration using half the quota. One line per figure.
# Usage: bench/run.sh BUILD_DIR. Sizes: BENCH_TEMPLATES, BENCH_LISTS, BENCH_ITEMS, BENCH_SCALE,
# BENCH_PHASE_MS.
#
# The choice of scale and sizes: the steady (60 s) window has to matter, and the bound has to be
# long against the latency (50-100 ms of real time) and against a window's fractions. 1,000
# template creates at 75/s and 750/min need two steady windows (three with half the quota
# taken), and every run starts 0.5 s into a steady window of the emulator's clock: 750 go in the
# first ten seconds, then nothing may go until the window's edge, then the last 250. At
# --time-scale 3 that is about 21 s of real time (42 s with half the quota); the 1 s burst window
# is 333 ms, several times the latency's spread. The bound's derivation is printed per operation.
set -u
BUILD=${1:?usage: bench/run.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/tests/listen.sh"
SIM=$BUILD/cadence-klaviyo-sim
DRIVER=$BUILD/bench/bench_driver
for f in "$SIM" "$DRIVER"; do [ -x "$f" ] || { echo "missing $f (build first)" >&2; exit 1; }; done
command -v jq >/dev/null || { echo "jq is required" >&2; exit 1; }

SCALE=${BENCH_SCALE:-3}
PHASE=${BENCH_PHASE_MS:-500}
T=${BENCH_TEMPLATES:-1000} # > 750/min steady, < the emulator's 1,000 templates per account
L=${BENCH_LISTS:-70}       # < 75: half of the 150/day cap, so the foreign-usage run stays inside it
I=${BENCH_ITEMS:-200}      # item creates, then one update of each
LAT_MIN=50
LAT_MAX=100
KEY=pk_b3nchb3nchb3nchb3nchb3nchb3nchb3nch

tmp=$(mktemp -d)
sim_pid=
cleanup() {
    [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

"$SIM" --listen 127.0.0.1:0 --time-scale "$SCALE" --latency-ms "$LAT_MIN-$LAT_MAX" \
    --account "Bench Outfitters" --key "$KEY" >"$tmp/sim.out" 2>"$tmp/sim.err" &
sim_pid=$!
URL=$(wait_listening "$tmp/sim.out" "$sim_pid") ||
    { echo "the emulator did not start" >&2; cat "$tmp/sim.err" >&2; exit 1; }

admin() { curl -s -X "$1" -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "$URL/__sim/$2"; }
# Objects, counters and call log back to the start; foreign usage as given.
fresh() {
    admin POST reset >/dev/null
    [ -n "${1:-}" ] && admin POST faults "{\"foreign_usage\":$1}" >/dev/null
    return 0
}
throttled() { admin GET calls | jq -r '.counts.by_status["429"] // 0'; }
field() { sed -n "s/.*\\b$1=\\([0-9]*\\).*/\\1/p" <<<"$2"; }
ratio() { awk -v w="$1" -v b="$2" 'BEGIN { printf "%.2f", w / b }'; }
secs() { awk -v m="$1" 'BEGIN { printf "%.2f", m / 1000 }'; }
work=(--templates "$T" --lists "$L" --items "$I" --latency-min "$LAT_MIN" --phase-ms "$PHASE")

cadence() { # cadence LABEL FOREIGN AUDIT_DIR
    fresh "$2"
    local out
    out=$(BENCH_KEY=$KEY CADENCE_KLAVIYO_URL=$URL CADENCE_KLAVIYO_RATE_SCALE=$SCALE \
        "$DRIVER" --sim "$URL" "${work[@]}" --foreign "$2" --audit-dir "$3" --explain 2>"$tmp/err")
    sed -n "s/^bound: /bench   bound $1: /p" <<<"$out" >&2
    out=$(grep -v '^bound: ' <<<"$out")
    local b w
    b=$(field bound_ms "$out")
    w=$(field wall_ms "$out")
    printf '%s ratio=%s (bound %ss, wall %ss) 429s=%s ok=%s failed=%s' "$1" "$(ratio "$w" "$b")" \
        "$(secs "$b")" "$(secs "$w")" "$(throttled)" "$(field ok "$out")" "$(field failed "$out")"
}

node_run() { # node_run MODE
    fresh 0
    local b out w
    # --bound-only waits for the phase too; node starts right after it (its own start-up is not
    # in its wall time).
    b=$(field bound_ms "$("$DRIVER" --sim "$URL" "${work[@]}" --bound-only)")
    out=$(cd "$root" && node bench/node/workload.mjs "$1" "$URL" "$KEY" "$T" "$L" "$I" 2>>"$tmp/node.err")
    w=$(field wall_ms "$out")
    printf 'node-%s ratio=%s (bound %ss, wall %ss) 429s=%s ok=%s failed=%s' "$1" \
        "$(ratio "$w" "$b")" "$(secs "$b")" "$(secs "$w")" "$(throttled)" "$(field ok "$out")" \
        "$(field failed "$out")"
}

echo "bench workload: $T create_template, $L create_list, $I create_catalog_item + $I update_catalog_item;" \
    "emulator --time-scale $SCALE --latency-ms $LAT_MIN-$LAT_MAX, client CADENCE_KLAVIYO_RATE_SCALE=$SCALE"
echo "bench bound = max over operations of T_op; T_op = time of the op's N-th request when each is counted" \
    "as early as Klaviyo's fixed windows allow (burst/1 s, steady/60 s, daily/day from kspec, minus the foreign" \
    "share, window edges from the emulator's clock), starting one minimum latency after the start, / time scale;" \
    "every run starts $PHASE ms (emulated) into a steady window"
c1=$(cadence cadence 0 /tmp)
c2=$(cadence cadence-tmpfs-audit 0 /dev/shm)
n1=$(node_run seq)
n2=$(node_run all)
echo "bench client.workload  $c1 | $n1 | $n2"
echo "bench client.workload  $c2 (audit database on tmpfs: pacing without the disk)"
c3=$(cadence cadence-foreign-0.5 0.5 /tmp)
echo "bench client.foreign   $c3 (another integration uses half of every window; bound uses the half left)"
bash "$root/bench/web.sh" "$BUILD" # web: wrk vs nginx, resident memory (bench/web.sh)
bash "$root/bench/plan.sh" "$BUILD" # plan engine: apply wall / lower bound, 429s; plan computation CPU and memory (bench/plan.sh)
bash "$root/bench/catalog.sh" "$BUILD" # catalog sync: wall / lower bound, 429s, peak memory at 5,000 vs 50,000 products (bench/catalog.sh)
