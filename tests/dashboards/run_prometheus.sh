#!/usr/bin/env bash
# A throw-away Prometheus server for the dashboard query tests.
#
#   run_prometheus.sh start TARGET [TOKEN_FILE]
#       starts `prometheus` on a free 127.0.0.1 port, scraping http://TARGET/metrics (TARGET is host:port) every
#       second, with `Authorization: Bearer <contents of TOKEN_FILE>` when a token file is given; storage and the
#       generated config live in a new temporary directory. Prints the base URL (http://127.0.0.1:PORT) once the
#       server is ready. A server already started from the same state dir is stopped first.
#   run_prometheus.sh stop
#       stops the server that `start` started and deletes its temporary directory.
#
# Environment: VIGIL_PROMETHEUS_STATE_DIR (default: target/dashboards-prometheus in the repo root) records the
# pid, URL and temporary directory, so that parallel users can keep apart; VIGIL_PROMETHEUS_SCHEME (http),
# VIGIL_PROMETHEUS_METRICS_PATH (/metrics), VIGIL_PROMETHEUS_JOB (vigil: the dashboards' scrape-status panel
# looks for up{job=~"vigil.*"}), VIGIL_PROMETHEUS_BIN (prometheus).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${VIGIL_PROMETHEUS_STATE_DIR:-$ROOT/target/dashboards-prometheus}"
BIN="${VIGIL_PROMETHEUS_BIN:-prometheus}"
SCHEME="${VIGIL_PROMETHEUS_SCHEME:-http}"
METRICS_PATH="${VIGIL_PROMETHEUS_METRICS_PATH:-/metrics}"
JOB="${VIGIL_PROMETHEUS_JOB:-vigil}"

usage() { echo "usage: $0 start TARGET [TOKEN_FILE] | stop" >&2; exit 2; }

ready() {
    python3 - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/-/ready", timeout=1).read()
PY
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

stop() {
    if [ -f "$STATE/pid" ]; then
        local pid
        pid="$(cat "$STATE/pid")"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 100); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    if [ -f "$STATE/dir" ]; then
        local dir
        dir="$(cat "$STATE/dir")"
        case "$dir" in
            */vigil-prometheus.*) rm -rf "$dir" ;;
        esac
    fi
    rm -f "$STATE/pid" "$STATE/url" "$STATE/dir"
}

start() {
    [ $# -ge 1 ] && [ $# -le 2 ] || usage
    local target="$1" token="${2:-}"
    command -v "$BIN" >/dev/null 2>&1 || { echo "$BIN not found: install Prometheus (Debian: apt-get install prometheus)" >&2; exit 1; }
    if [ -n "$token" ]; then
        [ -r "$token" ] || { echo "token file $token is not readable" >&2; exit 1; }
        token="$(cd "$(dirname "$token")" && pwd)/$(basename "$token")"
    fi
    mkdir -p "$STATE"
    stop
    local dir port url pid
    dir="$(mktemp -d "${TMPDIR:-/tmp}/vigil-prometheus.XXXXXX")"
    echo "$dir" >"$STATE/dir"
    {
        echo "global:"
        echo "  scrape_interval: 1s"
        echo "  scrape_timeout: 1s"
        echo "  evaluation_interval: 1s"
        echo "scrape_configs:"
        echo "  - job_name: \"$JOB\""
        echo "    scheme: $SCHEME"
        echo "    metrics_path: \"$METRICS_PATH\""
        if [ -n "$token" ]; then
            echo "    authorization:"
            echo "      type: Bearer"
            echo "      credentials_file: \"$token\""
        fi
        echo "    static_configs:"
        echo "      - targets: [\"$target\"]"
    } >"$dir/prometheus.yml"
    port="$(free_port)"
    url="http://127.0.0.1:$port"
    nohup "$BIN" --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
        --storage.tsdb.retention.time=1d --web.listen-address="127.0.0.1:$port" \
        >"$dir/prometheus.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$STATE/pid"
    echo "$url" >"$STATE/url"
    for _ in $(seq 1 300); do
        if ready "$url"; then
            echo "$url"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "prometheus exited; its log:" >&2
            cat "$dir/prometheus.log" >&2
            stop
            return 1
        fi
        sleep 0.1
    done
    echo "prometheus was not ready on $url within 30 s; its log:" >&2
    cat "$dir/prometheus.log" >&2
    stop
    return 1
}

case "${1:-}" in
    start) shift; start "$@" ;;
    stop) stop ;;
    *) usage ;;
esac
