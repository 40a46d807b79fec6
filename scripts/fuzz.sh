#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR/fuzz (fuzz_<name>) for SECONDS each, against a copy of
# its seed corpus fuzz/corpus/<name>/ so the committed seeds stay as they are. Prints one line per
# target and fails if any target crashed, leaked, timed out or could not run. Crash inputs are kept
# in BUILD_DIR/fuzz-artifacts/<name>/ for reproduction: BUILD_DIR/fuzz/fuzz_<name> <file>.
#
# usage: scripts/fuzz.sh BUILD_DIR SECONDS
set -uo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build_dir=$(cd "$1" 2>/dev/null && pwd) || { echo "fuzz: no build directory $1" >&2; exit 2; }
seconds=$2
case "$seconds" in
  '' | *[!0-9]* | 0) echo "fuzz: SECONDS must be a positive integer, not '$seconds'" >&2; exit 2 ;;
esac
src_dir=$(cd "$(dirname "$0")/.." && pwd)

shopt -s nullglob
targets=()
for exe in "$build_dir"/fuzz/fuzz_*; do
  [ -f "$exe" ] && [ -x "$exe" ] && targets+=("$exe")
done
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no fuzz_* executables in $build_dir/fuzz (build the 'fuzzers' target first)" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/cadence-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

failed=0
for exe in "${targets[@]}"; do
  name=$(basename "$exe")
  name=${name#fuzz_}
  corpus="$work/corpus-$name"
  artifacts="$build_dir/fuzz-artifacts/$name"
  log="$work/$name.log"
  mkdir -p "$corpus" "$artifacts"
  seeds="$src_dir/fuzz/corpus/$name"
  nseeds=0
  if [ -d "$seeds" ]; then
    cp -R "$seeds"/. "$corpus"/
    nseeds=$(find "$corpus" -type f | wc -l)
  fi

  "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1
  rc=$?

  runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  ncorpus=$(find "$corpus" -type f | wc -l)
  if [ $rc -eq 0 ]; then
    printf 'fuzz_%s: ok, %s runs in %ss, corpus %d -> %d files\n' \
      "$name" "${runs:-?}" "$seconds" "$nseeds" "$ncorpus"
  else
    failed=$((failed + 1))
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    printf 'fuzz_%s: FAILED (exit %d)%s\n' "$name" "$rc" "${crash:+, input saved to $crash}"
    { grep -E '^==[0-9]+== ?ERROR|runtime error|^SUMMARY' "$log" | head -n 3
      grep -m 1 -E ' in LLVMFuzzerTestOneInput ' "$log"; } | sed 's/^ */    /'
    cp "$log" "$artifacts/last-run.log"
    echo "    full log: $artifacts/last-run.log"
  fi
done

echo "fuzz: ${#targets[@]} target(s), $failed failed"
[ $failed -eq 0 ]
