# Shared by every suite that starts a server (the emulators, `cadence serve`, Prism's upstream):
# source it, start the server in the background with its stdout in a file, then
#   URL=$(wait_listening FILE PID) || { echo "it did not start" >&2; exit 1; }
# waits up to 10 s for the line "listening on http://127.0.0.1:PORT" and prints that URL. It gives
# up at once when the process exits.
wait_listening() {
    local out=$1 pid=$2 url
    for _ in $(seq 100); do
        url=$(sed -n 's/^listening on \(http:\/\/127\.0\.0\.1:[0-9]*\)$/\1/p' "$out" 2>/dev/null)
        if [ -n "$url" ]; then
            printf '%s\n' "$url"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
