#!/usr/bin/env bash
# Contract check: starts the Klaviyo emulator and Prism (proxy mode, validating requests and
# responses against third_party/klaviyo/openapi-stable.json) on free loopback ports, runs the
# driver (Cadence's client -> Prism -> emulator) and fails on any violation.
# Usage: run.sh CONTRACT_DRIVER SIM_BINARY [--write-doc]
set -u
DRIVER=${1:?usage: run.sh CONTRACT_DRIVER SIM_BINARY [--write-doc]}
SIM=${2:?usage: run.sh CONTRACT_DRIVER SIM_BINARY [--write-doc]}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
source "$here/prism_lib.sh"

KEY=pk_c0ntractc0ntractc0ntractc0ntractc0 # pk_ + 34 characters
prism_start "$SIM" --account "Contract Outfitters" --key "$KEY"

# What the client's sources name: operationIds, and request paths other than the page-size
# table's rows ({"/api/lists", 10}), which are limits, not calls.
{
    grep -rhoE '"[a-z]+(_[a-z0-9]+)+"' "$root/src/klaviyo" --include='*.c' --include='*.h' | tr -d '"'
    grep -rhE '"/api/[a-z0-9/_{}-]+"' "$root/src/klaviyo" --include='*.c' |
        grep -vE '^\s*\{"/api/[^"]*", *[0-9]+\},' |
        grep -oE '"/api/[a-z0-9/_{}-]+"' | tr -d '"'
} | sort -u >"$tmp/referenced.txt"

CONTRACT_KEY=$KEY CADENCE_KLAVIYO_URL=$PRISM_URL \
    "$DRIVER" --prism-log "$PRISM_LOG" --allowlist "$here/allowlist.tsv" \
    --referenced "$tmp/referenced.txt" --doc "$root/docs/contract-coverage.md" "$@"
rc=$?
if [ "$rc" -ne 0 ] && [ -n "${CONTRACT_KEEP_LOG:-}" ]; then
    cp "$PRISM_LOG" "$CONTRACT_KEEP_LOG"
fi
exit "$rc"
