# Shared helpers for the end-to-end suites. Source it; it sets up a private work directory that
# is removed on exit, and counts checks so every suite ends with "N passed, N failed".
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../listen.sh"

: "${CADENCE_BIN:?set by CTest}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cadence-e2e-XXXXXX")
export CADENCE_DATA="$WORK/data"
OUT="$WORK/out" # every command's stdout+stderr is appended here for the secret scan
: >"$OUT"
PASSED=0
FAILED=0
CLEANUP=()

cleanup() {
    for c in "${CLEANUP[@]}"; do eval "$c" || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

ok() { PASSED=$((PASSED + 1)); }
# fail MESSAGE: a failed check. A message that quotes a whole command output is cut at 700
# characters, so that a CI log that folds long lines still shows which check failed.
fail() {
    FAILED=$((FAILED + 1))
    local msg="$*"
    [ "${#msg}" -le 700 ] || msg="${msg:0:700} [… ${#msg} characters in all]"
    echo "FAIL: $msg" >&2
}

# matches [GREP-OPTIONS] PATTERN: whether standard input, read to its end, has a line matching
# PATTERN. Not `cmd | grep -q`: under pipefail, grep -q stops at the first match and cmd, if it
# still had more to write than a pipe holds, dies of SIGPIPE and fails the pipeline, so a match
# reads as a mismatch, sometimes (a check that passes or fails with the scheduler).
matches() {
    local input
    input=$(cat)
    grep -q "$@" <<<"$input"
}

# run CMD...: runs cadence with the args, stdout in $RUN_OUT, stderr in $RUN_ERR, status in $RUN_RC.
run() {
    RUN_OUT=$("$CADENCE_BIN" "$@" 2>"$WORK/stderr" <"${RUN_STDIN:-/dev/null}")
    RUN_RC=$?
    RUN_ERR=$(cat "$WORK/stderr")
    printf '%s\n%s\n' "$RUN_OUT" "$RUN_ERR" >>"$OUT"
    RUN_STDIN=
}

# run_in TEXT CMD...: like run, with TEXT on standard input (TEXT is never echoed).
run_in() {
    local input=$1
    shift
    printf '%s' "$input" >"$WORK/stdin"
    RUN_STDIN="$WORK/stdin" run "$@"
    rm -f "$WORK/stdin"
}

# expect NAME RC [PATTERN]: the last run exited RC and (if given) its stdout+stderr matches PATTERN.
expect() {
    local name=$1 rc=$2 pattern=${3:-}
    if [ "$RUN_RC" != "$rc" ]; then
        fail "$name: exit $RUN_RC, expected $rc; stderr: $RUN_ERR"
        return
    fi
    if [ -n "$pattern" ] && ! grep -Eq -- "$pattern" <<<"$RUN_OUT"$'\n'"$RUN_ERR"; then
        fail "$name: output does not match /$pattern/: $RUN_OUT $RUN_ERR"
        return
    fi
    ok
}

# random_key: a real-looking Klaviyo private key (pk_ + 34 alphanumerics).
random_key() {
    local body=
    while [ "${#body}" -lt 34 ]; do # 200 random bytes hold fewer than 34 of these now and then
        body=$body$(head -c 200 /dev/urandom | tr -dc 'a-zA-Z0-9')
    done
    printf 'pk_%s' "${body:0:34}"
}

# assert_no_secret NAME SECRET...: no file under the data directory or the work directory, and
# no captured output, holds any of the secrets (or their 34-character bodies).
assert_no_secret() {
    local name=$1
    shift
    local s found=0
    for s in "$@"; do
        for needle in "$s" "${s#pk_}"; do
            if grep -rqaF -- "$needle" "$WORK" 2>/dev/null; then
                found=1
                fail "$name: a plaintext secret was found in $(grep -rlaF -- "$needle" "$WORK" | tr '\n' ' ')"
            fi
        done
    done
    [ "$found" = 0 ] && ok
}

finish() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" = 0 ]
}
