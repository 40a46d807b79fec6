#!/usr/bin/env bash
# Runs every CTest test labelled `unit` in BUILD_DIR (a build without sanitizers: valgrind and
# ASan do not mix) under valgrind, with the test's own working directory and environment from
# CTest. A test fails when it exits non-zero or valgrind reports an error (invalid access, use of
# uninitialised memory, a definite leak); each run's valgrind log is kept in
# BUILD_DIR/valgrind/<test>.log. Ends with "N passed, N failed" and fails if any failed.
#
# usage: scripts/valgrind-unit.sh BUILD_DIR
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
build_dir=$(cd "$1" 2>/dev/null && pwd) || { echo "valgrind-unit: no build directory $1" >&2; exit 2; }
[ -f "$build_dir/CTestTestfile.cmake" ] || { echo "valgrind-unit: $build_dir is not a CMake build with tests" >&2; exit 2; }
if grep -Eq '^CADENCE_(SANITIZE|FUZZ):BOOL=ON' "$build_dir/CMakeCache.txt" 2>/dev/null; then
  echo "valgrind-unit: $build_dir is a sanitizer build; give a build without CADENCE_SANITIZE/CADENCE_FUZZ" >&2
  exit 2
fi
command -v valgrind >/dev/null || { echo "valgrind-unit: valgrind is not installed" >&2; exit 2; }

manifest=$(mktemp "${TMPDIR:-/tmp}/valgrind-unit.XXXXXX")
trap 'rm -f "$manifest"' EXIT
(cd "$build_dir" && ctest --show-only=json-v1 -L unit) >"$manifest"

VALGRIND_UNIT_BUILD="$build_dir" VALGRIND_UNIT_MANIFEST="$manifest" python3 - <<'PY'
import json, os, subprocess, sys

build = os.environ["VALGRIND_UNIT_BUILD"]
timeout = int(os.environ.get("VALGRIND_TIMEOUT", "900"))
logdir = os.path.join(build, "valgrind")
os.makedirs(logdir, exist_ok=True)

tests = []
with open(os.environ["VALGRIND_UNIT_MANIFEST"]) as f:
    manifest = json.load(f)
for t in manifest.get("tests", []):
    props = {p["name"]: p["value"] for p in t.get("properties", [])}
    if "unit" in props.get("LABELS", []):
        tests.append((t, props))
if not tests:
    print("valgrind-unit: no tests labelled unit in " + build, file=sys.stderr)
    sys.exit(1)

passed = failed = 0
for t, props in tests:
    name, cmd = t["name"], t.get("command") or []
    log = os.path.join(logdir, name + ".log")
    if not cmd or not os.path.isfile(cmd[0]):
        print(f"FAIL {name}: executable not built (build BUILD_DIR first)")
        failed += 1
        continue
    env = dict(os.environ)
    for kv in props.get("ENVIRONMENT", []):
        k, _, v = kv.partition("=")
        env[k] = v
    argv = ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite", "--error-exitcode=99", "--log-file=" + log] + cmd
    try:
        r = subprocess.run(argv, cwd=props.get("WORKING_DIRECTORY", build), env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        rc, out = r.returncode, r.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        rc, out = None, (e.stdout or b"").decode(errors="replace")
    if rc == 0:
        print(f"ok   {name}")
        passed += 1
        continue
    failed += 1
    why = ("timed out after %ds" % timeout if rc is None else
           "valgrind reported errors" if rc == 99 else "test failed (exit %d)" % rc)
    print(f"FAIL {name}: {why}; valgrind log {log}")
    tail = out.strip().splitlines()[-15:]
    try:
        with open(log, errors="replace") as f:
            summary = [l.rstrip() for l in f if "ERROR SUMMARY" in l or "definitely lost" in l]
    except OSError:
        summary = []
    for line in tail + summary:
        print("    " + line)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
