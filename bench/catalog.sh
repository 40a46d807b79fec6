#!/usr/bin/env bash
# The catalog sync's benchmark: one `cadence catalog sync` (read + plan + apply under a standing
# approval) of a 50,000-product store (150,000 variants, 10 collections) from the Shopify stand-in
# to the Klaviyo emulator with Klaviyo's real limits time-scaled and 50-100 ms of latency.
# Figures are printed, not asserted:
#  1. wall time / the lower bound Shopify's bulk operation and Klaviyo's bulk-job limits imply
#     (the derivation is printed), and the 429s received;
#  2. peak memory (max RSS) of the same command at 5,000 and at 50,000 products, each on a fresh
#     data directory and a reset emulator, side by side with their ratio.
# Usage: bench/catalog.sh BUILD_DIR. BENCH_CATALOG_SCALE (default 2) sets the emulator's clock
# speed, BENCH_CATALOG_PRODUCTS (default 50000) and BENCH_CATALOG_SMALL (default 5000) the sizes,
# BENCH_BULK_RATE (default 50000 objects/s) the stand-in's bulk operation speed.
#
# Why scale 2: 50,000 products make 500 item jobs and 1,500 variant jobs of 100, and both bulk-create
# operations allow 75/s and 750/min, so the variants alone need two or three steady (60 s)
# windows: about 70-130 emulated seconds whatever the scale, depending on where in the window they
# start. At x2 that is 35-65 s of real time and the whole benchmark (both sizes) a couple of
# minutes; the 1 s burst window is still 500 ms of real time, five times the latency's spread, and
# the emulator's job processing (1.5 emulated s) and the latency stay small against the bound, so
# the ratio measures Cadence (reading, staging, planning, the job pipeline) rather than the
# emulator. A faster clock would shrink the Klaviyo part until Cadence's CPU work is most of the
# figure; x1 would double the run for the same information.
set -u
BUILD=${1:?usage: bench/catalog.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/tests/listen.sh"
KSIM=$BUILD/cadence-klaviyo-sim
SSIM=$BUILD/cadence-shopify-sim
CADENCE=$BUILD/cadence
for f in "$KSIM" "$SSIM" "$CADENCE"; do [ -x "$f" ] || { echo "missing $f (build first)" >&2; exit 1; }; done
command -v jq >/dev/null || { echo "jq is required" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is required (apt-get install time)" >&2; exit 1; }
SCALE=${BENCH_CATALOG_SCALE:-2}
BIG=${BENCH_CATALOG_PRODUCTS:-50000}
SMALL=${BENCH_CATALOG_SMALL:-5000}
RATE=${BENCH_BULK_RATE:-50000}
LAT_MIN=50
LAT_MAX=100
KEY=pk_c4t4l0gb3nchc4t4l0gb3nchc4t4l0gb3n
TOKEN=shpat_0123456789abcdef0123456789abcdef
SHOP="Bench Outfitters"

tmp=$(mktemp -d)
ksim_pid=
ssim_pid=
cleanup() {
    [ -n "$ssim_pid" ] && kill "$ssim_pid" 2>/dev/null
    [ -n "$ksim_pid" ] && kill "$ksim_pid" 2>/dev/null
    wait 2>/dev/null
    [ -n "${BENCH_KEEP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT

"$KSIM" --listen 127.0.0.1:0 --time-scale "$SCALE" --latency-ms "$LAT_MIN-$LAT_MAX" \
    --account "$SHOP" --key "$KEY" >"$tmp/ksim.out" 2>"$tmp/ksim.err" &
ksim_pid=$!
KURL=$(wait_listening "$tmp/ksim.out" "$ksim_pid") ||
    { echo "the Klaviyo emulator did not start" >&2; cat "$tmp/ksim.err" >&2; exit 1; }
export CADENCE_KLAVIYO_URL=$KURL CADENCE_KLAVIYO_RATE_SCALE=$SCALE

# sync N: a fresh data directory, a reset emulator and a stand-in store of N products, then one
# timed `cadence catalog sync`. Leaves $tmp/N/{sync.json,time.txt,calls.json,clock.txt,bulk.json}.
sync() {
    local n=$1 d=$tmp/$1
    mkdir -p "$d"
    [ -n "$ssim_pid" ] && { kill "$ssim_pid" 2>/dev/null; wait "$ssim_pid" 2>/dev/null; }
    "$SSIM" --listen 127.0.0.1:0 --shop "$SHOP" --token "$TOKEN" --products "$n" --bulk-rate "$RATE" \
        >"$d/ssim.out" 2>"$d/ssim.err" &
    ssim_pid=$!
    SURL=$(wait_listening "$d/ssim.out" "$ssim_pid") ||
        { echo "the Shopify stand-in did not start" >&2; cat "$d/ssim.err" >&2; exit 1; }
    curl -s -X POST "$KURL/__sim/reset" >/dev/null
    export CADENCE_DATA=$d/data CADENCE_SHOPIFY_URL=$SURL
    c() { "$CADENCE" "$@" 2>>"$d/cadence.err"; }
    c init >/dev/null
    c tenant add --name "$SHOP" --email owner@bench.test >/dev/null
    printf '%s' "$KEY" | c key set bench-outfitters >/dev/null
    printf '%s' "$TOKEN" | c key set bench-outfitters --kind shopify --shop bench-outfitters.myshopify.com >/dev/null
    printf 'correct horse battery staple' | c operator add --email admin@agency.test --role admin >/dev/null
    c catalog approve bench-outfitters --operator admin@agency.test >/dev/null ||
        { echo "cadence catalog approve failed" >&2; exit 1; }
    # the emulated clock against the wall clock, to place the call log's wall times in its windows
    local r0 e0
    r0=$(date +%s%3N)
    e0=$(curl -s "$KURL/__sim/clock" | jq .now_ms)
    echo "$r0 $e0" >"$d/clock.txt"
    /usr/bin/time -f '%e %M' -o "$d/time.txt" "$CADENCE" catalog sync bench-outfitters --json \
        >"$d/sync.json" 2>>"$d/cadence.err"
    echo "$?" >"$d/rc"
    # Should the first sync not be applied under the standing approval (a warning about Klaviyo's
    # own Shopify integration), the same plan is confirmed and applied by hand, the three
    # commands' wall times are added and the largest peak RSS kept.
    if [ "$(jq -r '.sync.applied' "$d/sync.json")" = false ] && [ "$(jq -r '.id // empty' "$d/sync.json")" != "" ]; then
        echo "  sync $n: not applied under the standing approval ($(jq -r '.sync.integration_warning // "?"' "$d/sync.json" | cut -c1-140)...); plan confirm + plan apply follow, timed" >&2
        /usr/bin/time -f '%e %M' -o "$d/time2.txt" "$CADENCE" plan confirm "$(jq -r .id "$d/sync.json")" \
            --hash "$(jq -r .hash "$d/sync.json")" --operator admin@agency.test >/dev/null 2>>"$d/cadence.err"
        /usr/bin/time -f '%e %M' -o "$d/time3.txt" "$CADENCE" plan apply "$(jq -r .id "$d/sync.json")" \
            >"$d/apply.out" 2>>"$d/cadence.err"
        echo "$?" >"$d/rc"
        cat "$d/time.txt" "$d/time2.txt" "$d/time3.txt" |
            awk '{ e += $1; if ($2 > m) m = $2 } END { printf "%.2f %d\n", e, m }' >"$d/time.sum"
        echo "separate" >"$d/how"
        mv "$d/time.sum" "$d/time.txt"
    else
        echo "one command" >"$d/how"
    fi
    curl -s "$KURL/__sim/calls" >"$d/calls.json"
    # the bulk operation as Shopify reports it (objectCount), straight from the stand-in
    jq -n '{query: "{ currentBulkOperation { id status objectCount createdAt completedAt } }"}' |
        curl -s -H 'Content-Type: application/json' -H "X-Shopify-Access-Token: $TOKEN" \
            --data-binary @- "$SURL/admin/api/2025-07/graphql.json" >"$d/bulk.json"
}

echo "catalog bench: cadence catalog sync (read + plan + apply under a standing approval) of $BIG products" \
    "($((BIG * 3)) variants, 10 collections) and of $SMALL; Shopify stand-in --bulk-rate $RATE;" \
    "Klaviyo emulator x$SCALE, latency ${LAT_MIN}-${LAT_MAX} ms (client CADENCE_KLAVIYO_RATE_SCALE=$SCALE)"
echo "catalog bench command: /usr/bin/time -f '%e %M' cadence catalog sync bench-outfitters --json"
sync "$SMALL"
sync "$BIG"

d=$tmp/$BIG
read -r wall_s rss_big <"$d/time.txt"
read -r _ rss_small <"$tmp/$SMALL/time.txt"
for n in "$SMALL" "$BIG"; do
    echo "sync $n ($(cat "$tmp/$n/how")): exit $(cat "$tmp/$n/rc"), $(jq -c '.sync | {products, variants, categories, creates, outcome, read_ms, plan_ms, shopify_queries}' "$tmp/$n/sync.json" 2>/dev/null)"
    [ -f "$tmp/$n/apply.out" ] && echo "  plan apply: $(tail -1 "$tmp/$n/apply.out")"
    [ "$(cat "$tmp/$n/rc")" = 0 ] || { echo "  stderr:"; tail -5 "$tmp/$n/cadence.err"; }
done

# The lower bound. Reading must finish before applying starts, so bound = shopify + klaviyo.
#  shopify: the bulk operation completes objectCount / --bulk-rate seconds after it starts, and at
#    least one poll must see it COMPLETED (a loopback round trip with no added latency: taken as 0).
#  klaviyo: the groups are sequential (categories, then items, then variants: each needs the one
#    before to exist). A group's first job arrives one minimum latency after it is sent; its
#    ceil(objects/100) jobs are counted through that operation's burst (1 s) and steady (60 s)
#    fixed windows on the emulator's clock (limits from the plan's estimate, else
#    ../shared/klaviyo/ops.tsv); its last job is complete no earlier than the emulator's job
#    processing time (1.5 emulated s, sim/klaviyo/jobs.c DONE_MS) after it was counted, and the
#    read that sees it complete (a poll of the job, or of its objects) arrives at least one
#    minimum latency after the job was answered; the next group's first job arrives one minimum
#    latency after that read's answer. The phase in the steady window is the emulator's clock
#    when the first job actually arrived. Reads are not counted against any limit (Cadence reads
#    a job's objects, 3,500/min, rather than the job, 750/min, where it can), so this bound is
#    lower than what a poll per job allows.
first_ts=$(jq '[.calls[] | select(.operation_id | startswith("bulk_create_catalog")) | .ts_ms] | min // empty' "$d/calls.json")
throttled=$(jq '[.calls[] | select(.status == 429)] | length' "$d/calls.json")
ncalls=$(jq '.calls | length' "$d/calls.json")
read -r r0 e0 <"$d/clock.txt"
ops=$root/../shared/klaviyo/ops.tsv
[ -f "$ops" ] || ops=/work/shared/klaviyo/ops.tsv
/usr/bin/python3 - "$d/sync.json" "$d/bulk.json" "$ops" "$SCALE" "$LAT_MIN" "$RATE" "$wall_s" \
    "${first_ts:-0}" "$r0" "$e0" <<'EOF'
import json, math, sys
sync_f, bulk_f, ops_f, scale, lat, rate, wall_s, first_ts, r0, e0 = sys.argv[1:]
scale, lat, rate, wall = float(scale), float(lat), float(rate), float(wall_s) * 1000
first_ts, r0, e0 = int(first_ts), int(r0), int(e0)
DONE_MS = 1500
doc = json.load(open(sync_f))
s = doc["sync"]
bulk = json.load(open(bulk_f))["data"]["currentBulkOperation"]
objects = int(bulk["objectCount"])
shopify_ms = objects / rate * 1000
print(f"  bound shopify: bulk operation of {objects} objects (products + variants + collection links)"
      f" at {rate:.0f}/s = {shopify_ms:.0f} ms, + one poll (loopback, 0 ms) = {shopify_ms:.0f} ms")
limits = {}
for op in (doc.get("estimate") or {}).get("operations", []):
    limits[op["operation"]] = (op["burst_per_s"], op["steady_per_min"], "plan estimate")
for line in open(ops_f):
    f = line.rstrip("\n").split("\t")
    if len(f) > 4 and f[2].startswith("bulk_create_catalog") and f[2] not in limits:
        limits[f[2]] = (int(f[3].rstrip("/s")), int(f[4].rstrip("/m")), "ops.tsv")
groups = [("bulk_create_catalog_categories", s["categories"]),
          ("bulk_create_catalog_items", s["products"]),
          ("bulk_create_catalog_variants", s["variants"])]
if not first_ts:
    print("  no bulk create job reached the emulator: no Klaviyo bound")
    sys.exit(0)
t0 = e0 + (first_ts - r0) * scale      # emulated ms at which the first job was counted
lat_e = lat * scale                    # the minimum latency in emulated ms
t = t0
for op, objs in groups:
    b, m, src = limits[op]
    n = math.ceil(objs / 100)
    start = t
    sec_n = min_n = 0
    cur_s, cur_m = int(t // 1000), int(t // 60000)
    for i in range(n):
        if int(t // 1000) != cur_s: cur_s, sec_n = int(t // 1000), 0
        if int(t // 60000) != cur_m: cur_m, min_n = int(t // 60000), 0
        if min_n >= m:
            t = (cur_m + 1) * 60000; cur_m, cur_s, min_n, sec_n = int(t // 60000), int(t // 1000), 0, 0
        if sec_n >= b:
            t = (cur_s + 1) * 1000; cur_s, sec_n = int(t // 1000), 0
            if int(t // 60000) != cur_m: cur_m, min_n = int(t // 60000), 0
        last = t; sec_n += 1; min_n += 1
    done = last + max(DONE_MS, lat_e)
    print(f"  bound klaviyo {op:32s} {objs:7d} objects = {n:5d} jobs at {b}/s, {m}/min ({src}):"
          f" first at {(start - t0) / 1000:7.2f} emulated s ({(start % 60000) / 1000:5.2f} s into its"
          f" steady window), last at {(last - t0) / 1000:7.2f}; complete and polled at"
          f" {(done - t0) / 1000:7.2f}")
    t = done + lat_e
klaviyo_ms = lat + (done - t0) / scale
bound = shopify_ms + klaviyo_ms
print(f"  bound klaviyo: {(done - t0) / 1000:.2f} emulated s / x{scale:g} + the first job's {lat:.0f} ms"
      f" = {klaviyo_ms:.0f} ms (first job at {(t0 % 60000) / 1000:.2f} s into a steady window)")
print(f"catalog sync lower bound: {bound:.0f} ms = shopify {shopify_ms:.0f} + klaviyo {klaviyo_ms:.0f}")
print(f"catalog sync wall time: {wall:.0f} ms (read {s['read_ms']} ms, plan {s['plan_ms']} ms, apply and"
      f" the rest {wall - s['read_ms'] - s['plan_ms']:.0f} ms); wall / bound = {wall / bound:.2f} (target <= 1.10)")
EOF
echo "catalog sync Klaviyo calls: $ncalls, 429s received: $throttled (target 0)"
awk -v s="$rss_small" -v b="$rss_big" -v ns="$SMALL" -v nb="$BIG" 'BEGIN {
    printf "catalog sync peak memory: %d products %.1f MB | %d products %.1f MB | ratio %.2f (target: no growth with catalog size)\n",
        ns, s / 1024, nb, b / 1024, b / s }'
