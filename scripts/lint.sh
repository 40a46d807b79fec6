#!/usr/bin/env bash
# The linters, over the files git tracks (never generated ones in a build directory):
#   clang-format --dry-run --Werror  on *.c and *.h under src/ sim/ tests/ fuzz/ tools/
#   cppcheck                         on *.c under the same folders: those BUILD_DIR compiled use
#                                    its compile_commands.json (same defines and include paths);
#                                    the rest (fuzz targets, in a build without CADENCE_FUZZ) a
#                                    plain file list with the project's include paths
#   clang-tidy -p BUILD_DIR          on *.c under src/ sim/ tools/ (config: .clang-tidy)
# Every linter runs even when an earlier one fails; the script fails on any finding.
#
# usage: scripts/lint.sh BUILD_DIR
set -uo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
build_dir=$(cd "$1" 2>/dev/null && pwd) || { echo "lint: no build directory $1" >&2; exit 2; }
cd "$(dirname "$0")/.."
root=$(pwd)
db="$build_dir/compile_commands.json"
[ -f "$db" ] || { echo "lint: $db is missing (configure with CMAKE_EXPORT_COMPILE_COMMANDS=ON)" >&2; exit 2; }
for tool in clang-format cppcheck clang-tidy python3; do
  command -v "$tool" >/dev/null || { echo "lint: $tool is not installed" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/cadence-lint.XXXXXX")
trap 'rm -rf "$work"' EXIT
jobs=$(nproc 2>/dev/null || echo 2)
failed=()

mapfile -t format_files < <(git ls-files -- 'src/*.[ch]' 'sim/*.[ch]' 'tests/*.[ch]' 'fuzz/*.[ch]' 'tools/*.[ch]')
mapfile -t c_files < <(git ls-files -- 'src/*.c' 'sim/*.c' 'tests/*.c' 'fuzz/*.c' 'tools/*.c')
mapfile -t tidy_files < <(git ls-files -- 'src/*.c' 'sim/*.c' 'tools/*.c')

# --- clang-format -------------------------------------------------------------------------------
if [ ${#format_files[@]} -eq 0 ]; then
  echo "clang-format: no files"
elif clang-format --dry-run --Werror "${format_files[@]}" >"$work/format.log" 2>&1; then
  echo "clang-format: ${#format_files[@]} files formatted"
else
  n=$(grep -c 'error:' "$work/format.log")
  echo "clang-format: $n findings in $(grep -o '^[^:]*\.[ch]:' "$work/format.log" | sort -u | wc -l) files (fix with: make format)"
  grep -o '^[^:]*\.[ch]:' "$work/format.log" | sort -u | sed 's/:$//; s/^/    /'
  failed+=(clang-format)
fi

# --- cppcheck -----------------------------------------------------------------------------------
# A compile database restricted to tracked files; the tracked files it lacks go in a list.
printf '%s\n' "${c_files[@]}" >"$work/tracked"
python3 - "$db" "$root" "$work/tracked" "$work/compile_commands.json" "$work/unbuilt" <<'PY'
import json, os, sys
db, root, tracked_path, out_db, out_unbuilt = sys.argv[1:]
with open(tracked_path) as f:
    tracked = {os.path.join(root, l.strip()) for l in f if l.strip()}
entries, seen = [], set()
for e in json.load(open(db)):
    path = os.path.normpath(os.path.join(e.get("directory", ""), e["file"]))
    if path in tracked and path not in seen:
        seen.add(path)
        entries.append(e)
json.dump(entries, open(out_db, "w"))
with open(out_unbuilt, "w") as f:
    for p in sorted(tracked - seen):
        f.write(os.path.relpath(p, root) + "\n")
PY
n_db=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$work/compile_commands.json")
mapfile -t unbuilt <"$work/unbuilt"
cppcheck_opts=(--enable=warning,performance,portability --error-exitcode=1 --inline-suppr
               --suppress=missingIncludeSystem --quiet -j "$jobs"
               --template='{file}:{line}:{column}: {severity}: {message} [{id}]')
cpp_rc=0
if [ "$n_db" -gt 0 ]; then
  cppcheck "${cppcheck_opts[@]}" --project="$work/compile_commands.json" >"$work/cppcheck.log" 2>&1 || cpp_rc=1
fi
if [ ${#unbuilt[@]} -gt 0 ]; then
  cppcheck "${cppcheck_opts[@]}" --std=c11 -D_GNU_SOURCE -DCADENCE_VERSION='"0"' \
    -I src -I tests "${unbuilt[@]}" >>"$work/cppcheck.log" 2>&1 || cpp_rc=1
fi
if [ $cpp_rc -eq 0 ] && ! grep -q ': \(error\|warning\|performance\|portability\|style\):' "$work/cppcheck.log"; then
  echo "cppcheck: $((n_db + ${#unbuilt[@]})) files clean ($n_db via compile_commands.json, ${#unbuilt[@]} via file list)"
else
  echo "cppcheck: findings"
  sed "s|^$root/||; s/^/    /" "$work/cppcheck.log"
  failed+=(cppcheck)
fi

# --- clang-tidy ---------------------------------------------------------------------------------
# One process per file, in parallel; a file with findings (or that clang-tidy cannot compile,
# e.g. one BUILD_DIR does not build) leaves a log behind.
if [ ${#tidy_files[@]} -eq 0 ]; then
  echo "clang-tidy: no files"
else
  printf '%s\0' "${tidy_files[@]}" | xargs -0 -n 1 -P "$jobs" bash -c '
    build=$1 work=$2 file=$3
    out=$(clang-tidy -p "$build" --quiet --extra-arg=-Wno-unknown-warning-option "$file" 2>&1)
    rc=$?
    out=$(printf "%s\n" "$out" | grep -v -E "^[0-9]+ (warnings?|errors?)( and [0-9]+ errors?)? generated\.?$|^Error while processing|^$")
    if [ $rc -ne 0 ] || [ -n "$out" ]; then
      printf "%s\n" "$out" >"$work/tidy.$(printf %s "$file" | tr / _).log"
    fi
  ' _ "$build_dir" "$work"
  logs=("$work"/tidy.*.log)
  if [ -e "${logs[0]}" ]; then
    # The diagnostics only; the analyzer's step-by-step notes go to a log kept in BUILD_DIR.
    cat "${logs[@]}" >"$build_dir/clang-tidy.log"
    echo "clang-tidy: findings in ${#logs[@]} of ${#tidy_files[@]} files (details: $build_dir/clang-tidy.log)"
    grep -E '^[^ ].*:[0-9]+:[0-9]+: (error|warning):' "$build_dir/clang-tidy.log" | sed "s|^$root/||; s/^/    /"
    failed+=(clang-tidy)
  else
    echo "clang-tidy: ${#tidy_files[@]} files clean"
  fi
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "lint: FAILED (${failed[*]})"
  exit 1
fi
echo "lint: clean"
