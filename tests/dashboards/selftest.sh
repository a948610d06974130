#!/usr/bin/env bash
# Self-test of the dashboard query harness (not a test of Vigil): fake_exporter.py serves every metric of
# docs/metrics.md behind a bearer token, run_prometheus.sh starts a real Prometheus scraping it every second with
# that token, and eval_queries.py must find data for every panel query and variable of every dashboard, with the
# key panels' values equal to those in selftest.expect.json (tenant acme). Then the harness must fail when there is
# no data (an unknown tenant) and the exporter must refuse a scrape without the token.
#
# Usage: tests/dashboards/selftest.sh        (needs python3 and the `prometheus` binary; ~20 s)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v prometheus >/dev/null 2>&1 || { echo "selftest: prometheus not found (apt-get install prometheus)" >&2; exit 1; }

TMP="$(mktemp -d)"
export VIGIL_PROMETHEUS_STATE_DIR="$TMP/state"
exporter_pid=""
cleanup() {
    bash "$HERE/run_prometheus.sh" stop >/dev/null 2>&1 || true
    if [ -n "$exporter_pid" ]; then
        kill "$exporter_pid" 2>/dev/null || true
        wait "$exporter_pid" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

python3 -c 'import secrets; print(secrets.token_hex(24))' >"$TMP/token"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
python3 "$HERE/fake_exporter.py" --port "$port" --token-file "$TMP/token" --ramp 10 >"$TMP/exporter.log" 2>&1 &
exporter_pid=$!

status() {  # HTTP status of GET /metrics with optional extra header
    python3 - "$port" "$@" <<'PY'
import sys, urllib.request, urllib.error
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/metrics")
if len(sys.argv) > 2:
    req.add_header("Authorization", sys.argv[2])
try:
    print(urllib.request.urlopen(req, timeout=1).status)
except urllib.error.HTTPError as e:
    print(e.code)
except OSError:
    print(0)
PY
}
for _ in $(seq 1 50); do
    [ "$(status)" != 0 ] && break
    kill -0 "$exporter_pid" 2>/dev/null || { cat "$TMP/exporter.log" >&2; echo "selftest: fake exporter exited" >&2; exit 1; }
    sleep 0.1
done
[ "$(status)" = 401 ] || { echo "selftest: the fake exporter answered a scrape without token" >&2; exit 1; }
[ "$(status "Bearer $(cat "$TMP/token")")" = 200 ] || { echo "selftest: the fake exporter refused its token" >&2; exit 1; }

url="$(bash "$HERE/run_prometheus.sh" start "127.0.0.1:$port" "$TMP/token")"
echo "selftest: fake exporter on 127.0.0.1:$port, Prometheus at $url"

# The ramp takes 10 s; the expectations (final totals) hold from then on.
python3 "$HERE/eval_queries.py" "$url" --tenant acme --expect "$HERE/selftest.expect.json" --wait 60

echo "selftest: an unknown tenant must make the harness fail"
if python3 "$HERE/eval_queries.py" "$url" --tenant nobody >"$TMP/negative.log" 2>&1; then
    cat "$TMP/negative.log"
    echo "selftest FAILED: eval_queries.py passed without data" >&2
    exit 1
fi
grep -q "no data" "$TMP/negative.log" || { cat "$TMP/negative.log" >&2; echo "selftest FAILED: no 'no data' report" >&2; exit 1; }
echo "selftest: OK"
