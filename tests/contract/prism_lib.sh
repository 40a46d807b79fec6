# Shared by the contract suites (run.sh, plan.sh): source it with `here` set to tests/contract.
# It proves the allowlist from the spec, then starts the Klaviyo emulator and Prism in proxy mode
# (validating requests and responses against third_party/klaviyo/openapi-stable.json) on free
# loopback ports, and removes both and its work directory on exit.
#   prism_start SIM_BINARY [EMULATOR ARGS...]   (e.g. --account NAME --key KEY)
# sets: tmp (work directory), emu (the emulator's URL), prism_port, PRISM_URL, PRISM_LOG.
# Prism reports violations in its log (one "Violation:" line each, after the request's "Request
# received" line) and in an sl-violations response header; without --errors it passes the
# emulator's answer through unchanged, so the client sees what Klaviyo would send.
source "$here/../listen.sh"
root=$(cd "$here/../.." && pwd)
prism=$root/node_modules/.bin/prism
spec=$root/third_party/klaviyo/openapi-stable.json
[ -x "$prism" ] || { echo "Prism is missing: run scripts/install-deps.sh" >&2; exit 1; }

# Every allowlist entry's reason is proved from the spec before anything starts.
/usr/bin/python3 "$here/check_allowlist.py" "$spec" "$here/allowlist.tsv" || exit 1

tmp=$(mktemp -d)
sim_pid=
prism_pid=
prism_cleanup() {
    [ -n "$prism_pid" ] && kill "$prism_pid" 2>/dev/null
    [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap prism_cleanup EXIT

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

prism_start() {
    local sim=$1
    shift
    prism_port=$(free_port)
    PRISM_URL="http://127.0.0.1:$prism_port"
    PRISM_LOG=$tmp/prism.log
    "$sim" --listen 127.0.0.1:0 --public-url "$PRISM_URL" "$@" \
        >"$tmp/sim.out" 2>"$tmp/sim.err" &
    sim_pid=$!
    emu=$(wait_listening "$tmp/sim.out" "$sim_pid")
    [ -n "$emu" ] || { echo "the emulator did not start" >&2; cat "$tmp/sim.err" >&2; exit 1; }

    # Without --multiprocess Prism's log is one ordered stream (the checks rely on that).
    "$prism" proxy "$spec" "$emu" --host 127.0.0.1 --port "$prism_port" >"$PRISM_LOG" 2>&1 &
    prism_pid=$!
    for _ in $(seq 600); do
        grep -q 'Prism is listening' "$PRISM_LOG" && break
        kill -0 "$prism_pid" 2>/dev/null || break
        sleep 0.5
    done
    grep -q 'Prism is listening' "$PRISM_LOG" || {
        echo "Prism did not start" >&2
        tail -20 "$PRISM_LOG" >&2
        exit 1
    }
}
