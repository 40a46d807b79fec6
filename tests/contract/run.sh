#!/usr/bin/env bash
# Contract check: starts the Klaviyo emulator and Prism (proxy mode, validating requests and
# responses against third_party/klaviyo/openapi-stable.json) on free loopback ports, runs the
# driver (Cadence's client -> Prism -> emulator) and fails on any violation.
# Usage: run.sh CONTRACT_DRIVER SIM_BINARY [--write-doc]
# Prism reports violations in its log (one "Violation:" line each, after the request's
# "Request received" line) and in an sl-violations response header; without --errors it passes
# the emulator's answer through unchanged, so the client sees what Klaviyo would send.
set -u
DRIVER=${1:?usage: run.sh CONTRACT_DRIVER SIM_BINARY [--write-doc]}
SIM=${2:?usage: run.sh CONTRACT_DRIVER SIM_BINARY [--write-doc]}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../listen.sh"
root=$(cd "$here/../.." && pwd)
prism=$root/node_modules/.bin/prism
spec=$root/third_party/klaviyo/openapi-stable.json
[ -x "$prism" ] || { echo "Prism is missing: run scripts/install-deps.sh" >&2; exit 1; }

# Every allowlist entry's reason is proved from the spec before anything starts.
python3 "$here/check_allowlist.py" "$spec" "$here/allowlist.tsv" || exit 1

tmp=$(mktemp -d)
sim_pid=
prism_pid=
cleanup() {
    [ -n "$prism_pid" ] && kill "$prism_pid" 2>/dev/null
    [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

KEY=pk_c0ntractc0ntractc0ntractc0ntractc0 # pk_ + 34 characters
prism_port=$(free_port)
"$SIM" --listen 127.0.0.1:0 --public-url "http://127.0.0.1:$prism_port" \
    --account "Contract Outfitters" --key "$KEY" >"$tmp/sim.out" 2>"$tmp/sim.err" &
sim_pid=$!
emu=$(wait_listening "$tmp/sim.out" "$sim_pid")
[ -n "$emu" ] || { echo "the emulator did not start" >&2; cat "$tmp/sim.err" >&2; exit 1; }

# Without --multiprocess Prism's log is one ordered stream (the driver relies on that).
"$prism" proxy "$spec" "$emu" --host 127.0.0.1 --port "$prism_port" >"$tmp/prism.log" 2>&1 &
prism_pid=$!
for _ in $(seq 600); do
    grep -q 'Prism is listening' "$tmp/prism.log" && break
    kill -0 "$prism_pid" 2>/dev/null || break
    sleep 0.5
done
grep -q 'Prism is listening' "$tmp/prism.log" || {
    echo "Prism did not start" >&2
    tail -20 "$tmp/prism.log" >&2
    exit 1
}

# What the client's sources name: operationIds, and request paths other than the page-size
# table's rows ({"/api/lists", 10}), which are limits, not calls.
{
    grep -rhoE '"[a-z]+(_[a-z0-9]+)+"' "$root/src/klaviyo" --include='*.c' --include='*.h' | tr -d '"'
    grep -rhE '"/api/[a-z0-9/_{}-]+"' "$root/src/klaviyo" --include='*.c' |
        grep -vE '^\s*\{"/api/[^"]*", *[0-9]+\},' |
        grep -oE '"/api/[a-z0-9/_{}-]+"' | tr -d '"'
} | sort -u >"$tmp/referenced.txt"

CONTRACT_KEY=$KEY CADENCE_KLAVIYO_URL="http://127.0.0.1:$prism_port" \
    "$DRIVER" --prism-log "$tmp/prism.log" --allowlist "$here/allowlist.tsv" \
    --referenced "$tmp/referenced.txt" --doc "$root/docs/contract-coverage.md" "$@"
rc=$?
if [ "$rc" -ne 0 ] && [ -n "${CONTRACT_KEEP_LOG:-}" ]; then
    cp "$tmp/prism.log" "$CONTRACT_KEEP_LOG"
fi
exit "$rc"
