#!/usr/bin/env bash
# The moto emulator (DynamoDB + SQS over HTTP) for the AWS adapter tests.
#
#   moto.sh install   create .venv in the repo root and install moto[server] into it (quiet when already done)
#   moto.sh start     install if needed, start moto_server on a free port, print its endpoint URL
#   moto.sh stop      stop the server that `start` started
#
# State lives in $VIGIL_MOTO_STATE_DIR (default: target/moto in the repo root); `start` reuses a server that
# is already running from the same state dir.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VIGIL_MOTO_VENV:-$ROOT/.venv}"
STATE="${VIGIL_MOTO_STATE_DIR:-$ROOT/target/moto}"
PIDFILE="$STATE/moto.pid"
URLFILE="$STATE/moto.url"
LOG="$STATE/moto.log"

install() {
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV" >&2
    fi
    if [ ! -x "$VENV/bin/moto_server" ]; then
        "$VENV/bin/pip" install -q "moto[server]" >&2
    fi
}

answers() {
    # moto answers any GET on / (a 200 or 404 both mean the HTTP server is up).
    "$VENV/bin/python" - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=1)
except urllib.error.HTTPError:
    pass
PY
}

running() {
    [ -f "$PIDFILE" ] && [ -f "$URLFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && answers "$(cat "$URLFILE")"
}

free_port() {
    "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
    install
    mkdir -p "$STATE"
    # One server per state dir, even when test binaries start at the same time.
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$STATE/lock"
        flock 9
    fi
    if running; then
        cat "$URLFILE"
        return 0
    fi
    local port url pid
    port="$(free_port)"
    # Its own session, so the server outlives the process group of whoever started it (until `stop`).
    local SETSID=""
    if command -v setsid >/dev/null 2>&1; then
        SETSID=setsid
    fi
    url="http://127.0.0.1:$port"
    $SETSID nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$LOG" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$PIDFILE"
    echo "$url" >"$URLFILE"
    for _ in $(seq 1 150); do
        if answers "$url"; then
            echo "$url"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "moto_server exited; its log:" >&2
            cat "$LOG" >&2
            return 1
        fi
        sleep 0.2
    done
    echo "moto_server did not answer on $url within 30 s" >&2
    kill "$pid" 2>/dev/null || true
    return 1
}

stop() {
    if [ -f "$PIDFILE" ]; then
        local pid
        pid="$(cat "$PIDFILE")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        rm -f "$PIDFILE" "$URLFILE"
    fi
}

case "${1:-start}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
