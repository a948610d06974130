#!/usr/bin/env bash
# End-to-end throughput of `vigil serve` (embedded backend): ships an N-line auth log with `vigil send` and
# waits until every event is scored and every detection alerted. Prints events/s for ingest alone and for the
# whole pipeline.   usage: bench/serve_throughput.sh [LINES=100000]   (VIGIL_BIN=path skips the build)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LINES="${1:-100000}"
cd "$ROOT"
if [ -z "${VIGIL_BIN:-}" ]; then
    cargo build -q --release --bin vigil
fi
VIGIL="${VIGIL_BIN:-$ROOT/target/release/vigil}"
WORK="$(mktemp -d)"
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
python3 bench/gen_auth_log.py "$LINES" "$WORK/auth.log"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export VIGIL_DATA_DIR="$WORK/data" RUST_LOG=warn
"$VIGIL" serve --addr "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
PID=$!
until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; do sleep 0.1; done
idle() {
    curl -sf "http://127.0.0.1:$PORT/healthz" | python3 -c '
import json, sys
q = json.load(sys.stdin)["queues"]
sys.exit(0 if all(q[n]["visible"] == 0 and q[n]["in_flight"] == 0 for n in ("events", "detections")) else 1)'
}
t0=$(date +%s.%N)
"$VIGIL" send --quiet --url "http://127.0.0.1:$PORT" "$WORK/auth.log"
t1=$(date +%s.%N)
until idle; do sleep 0.1; done
t2=$(date +%s.%N)
python3 - "$LINES" "$t0" "$t1" "$t2" <<'PY'
import sys
n, t0, t1, t2 = int(sys.argv[1]), *map(float, sys.argv[2:])
print(f"lines: {n}")
print(f"ingest (send until last 202): {t1 - t0:.2f} s = {n / (t1 - t0):,.0f} events/s")
print(f"pipeline (send until scored and alerted): {t2 - t0:.2f} s = {n / (t2 - t0):,.0f} events/s")
PY
TOKEN="$("$VIGIL" token --role viewer)"
curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/v1/alerts?limit=500" | python3 -c '
import collections, json, sys
items = json.load(sys.stdin)["items"]
print("alerts:", dict(collections.Counter(a["rule"] for a in items)))'
