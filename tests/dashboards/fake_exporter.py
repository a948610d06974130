#!/usr/bin/env python3
"""A stand-in for Vigil's GET /metrics, for selftest.sh (a test of the dashboard harness, not of Vigil).

  fake_exporter.py --port PORT --token-file FILE [--ramp SECONDS]

Serves every metric of docs/metrics.md (it refuses to start if one is missing from its fixture) in the Prometheus
text format, only to `Authorization: Bearer <contents of FILE>` (401 otherwise). Counters and histograms grow
linearly from 1x to 2x their fixture values over the first --ramp seconds (default 10), then stay at 2x: rates are
non-zero while Prometheus scrapes, ratios (precision, means, quantiles) never change, and once the ramp is over
totals are exactly twice the fixture. Gauges are constant. Tenant acme is the one the self-test selects; globex is
there to prove the $tenant filter.
"""

import argparse
import http.server
import os
import re
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

TICKET_BUCKETS = [60, 300, 900, 1800, 3600, 14400, 43200, 86400, 259200, 604800]
LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]

COUNTERS = {
    "vigil_events_ingested_total": [
        ({"tenant": "acme", "source": "syslog"}, 1000), ({"tenant": "acme", "source": "json"}, 500),
        ({"tenant": "acme", "source": "hec"}, 250), ({"tenant": "globex", "source": "json"}, 100)],
    "vigil_events_scored_total": [
        ({"tenant": "acme", "risk": "low"}, 1400), ({"tenant": "acme", "risk": "medium"}, 250),
        ({"tenant": "acme", "risk": "high"}, 80), ({"tenant": "acme", "risk": "critical"}, 20),
        ({"tenant": "globex", "risk": "low"}, 100)],
    "vigil_detections_total": [
        ({"tenant": "acme", "rule": "ssh_brute_force", "severity": "high"}, 40),
        ({"tenant": "acme", "rule": "success_after_failures", "severity": "critical"}, 10),
        ({"tenant": "acme", "rule": "password_spraying", "severity": "high"}, 20),
        ({"tenant": "acme", "rule": "abnormal_access_frequency", "severity": "medium"}, 30),
        ({"tenant": "globex", "rule": "ssh_brute_force", "severity": "high"}, 7)],
    "vigil_alerts_total": [
        ({"tenant": "acme", "rule": "ssh_brute_force", "severity": "high"}, 8),
        ({"tenant": "acme", "rule": "success_after_failures", "severity": "critical"}, 5),
        ({"tenant": "acme", "rule": "password_spraying", "severity": "high"}, 4),
        ({"tenant": "acme", "rule": "abnormal_access_frequency", "severity": "medium"}, 6),
        ({"tenant": "globex", "rule": "ssh_brute_force", "severity": "high"}, 3)],
    "vigil_tickets_closed_total": [
        ({"tenant": "acme", "rule": "ssh_brute_force", "disposition": "true_positive"}, 6),
        ({"tenant": "acme", "rule": "ssh_brute_force", "disposition": "false_positive"}, 2),
        ({"tenant": "acme", "rule": "success_after_failures", "disposition": "true_positive"}, 4),
        ({"tenant": "acme", "rule": "success_after_failures", "disposition": "benign"}, 1),
        ({"tenant": "acme", "rule": "password_spraying", "disposition": "true_positive"}, 1),
        ({"tenant": "acme", "rule": "password_spraying", "disposition": "false_positive"}, 2),
        ({"tenant": "acme", "rule": "password_spraying", "disposition": "duplicate"}, 1),
        # No true_positive at all: precision must come out 0, not vanish.
        ({"tenant": "acme", "rule": "abnormal_access_frequency", "disposition": "false_positive"}, 3),
        ({"tenant": "acme", "rule": "abnormal_access_frequency", "disposition": "benign"}, 2),
        ({"tenant": "globex", "rule": "ssh_brute_force", "disposition": "false_positive"}, 9)],
    "vigil_tickets_escalated_total": [
        ({"tenant": "acme", "severity": "critical"}, 2), ({"tenant": "acme", "severity": "high"}, 1),
        ({"tenant": "globex", "severity": "high"}, 4)],
}

GAUGES = {
    "vigil_tickets_open": [
        ({"tenant": "acme", "severity": "critical", "age_bucket": "<1h"}, 1),
        ({"tenant": "acme", "severity": "critical", "age_bucket": "1h-4h"}, 1),
        ({"tenant": "acme", "severity": "high", "age_bucket": "<1h"}, 2),
        ({"tenant": "acme", "severity": "high", "age_bucket": "4h-24h"}, 1),
        ({"tenant": "acme", "severity": "medium", "age_bucket": "1d-7d"}, 2),
        ({"tenant": "acme", "severity": "low", "age_bucket": ">7d"}, 1),
        ({"tenant": "globex", "severity": "high", "age_bucket": "<1h"}, 5)],
    "vigil_ticket_oldest_open_age_seconds": [
        ({"tenant": "acme", "severity": "critical"}, 7200), ({"tenant": "acme", "severity": "high"}, 36000),
        ({"tenant": "acme", "severity": "medium"}, 300000), ({"tenant": "acme", "severity": "low"}, 700000),
        ({"tenant": "globex", "severity": "high"}, 900000)],
    "vigil_tickets_sla_breached": [
        ({"tenant": "acme", "severity": "critical", "kind": "acknowledge"}, 1),
        ({"tenant": "acme", "severity": "critical", "kind": "close"}, 0),
        ({"tenant": "acme", "severity": "high", "kind": "acknowledge"}, 0),
        ({"tenant": "acme", "severity": "high", "kind": "close"}, 1),
        ({"tenant": "globex", "severity": "high", "kind": "acknowledge"}, 5)],
    "vigil_queue_messages": [
        ({"queue": "events"}, 12), ({"queue": "events-dlq"}, 0),
        ({"queue": "detections"}, 3), ({"queue": "detections-dlq"}, 2)],
}

# Histograms: observations per label set (bucket counts, _sum and _count are derived from them).
HISTOGRAMS = {
    "vigil_ticket_time_to_acknowledge_seconds": (TICKET_BUCKETS, [
        ({"tenant": "acme", "severity": "critical"}, [100, 200, 600]),
        ({"tenant": "acme", "severity": "high"}, [1000, 2000, 3000, 6000]),
        ({"tenant": "acme", "severity": "medium"}, [5000, 20000]),
        ({"tenant": "acme", "severity": "low"}, [50000]),
        ({"tenant": "globex", "severity": "high"}, [400000])]),
    "vigil_ticket_time_to_respond_seconds": (TICKET_BUCKETS, [
        ({"tenant": "acme", "severity": "critical"}, [600, 1200]),
        ({"tenant": "acme", "severity": "high"}, [3600, 7200]),
        ({"tenant": "acme", "severity": "medium"}, [40000]),
        ({"tenant": "acme", "severity": "low"}, [100000])]),
    "vigil_ticket_time_to_close_seconds": (TICKET_BUCKETS, [
        ({"tenant": "acme", "severity": "critical"}, [3600, 7200]),
        ({"tenant": "acme", "severity": "high"}, [20000, 40000, 60000]),
        ({"tenant": "acme", "severity": "medium"}, [200000]),
        ({"tenant": "acme", "severity": "low"}, [500000])]),
    "vigil_pipeline_latency_seconds": (LATENCY_BUCKETS, [
        ({"stage": "received_to_scored"}, [0.03, 0.04, 0.08, 0.2, 0.3, 0.6, 1.2, 4.0, 7.0, 20.0]),
        ({"stage": "scored_to_alerted"}, [0.01, 0.02, 0.5, 1.5])]),
}


def labels_text(labels):
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else ""


def num(v):
    return f"{float(v):.12g}"


def render(factor):
    out = []
    for name, series in COUNTERS.items():
        out.append(f"# HELP {name} fake {name}\n# TYPE {name} counter")
        out += [f"{name}{labels_text(l)} {num(v * factor)}" for l, v in series]
    for name, series in GAUGES.items():
        out.append(f"# HELP {name} fake {name}\n# TYPE {name} gauge")
        out += [f"{name}{labels_text(l)} {num(v)}" for l, v in series]
    for name, (buckets, series) in HISTOGRAMS.items():
        out.append(f"# HELP {name} fake {name}\n# TYPE {name} histogram")
        for l, obs in series:
            for b in buckets:
                out.append(f"{name}_bucket{labels_text({**l, 'le': num(b)})} {num(sum(1 for o in obs if o <= b) * factor)}")
            out.append(f"{name}_bucket{labels_text({**l, 'le': '+Inf'})} {num(len(obs) * factor)}")
            out.append(f"{name}_sum{labels_text(l)} {num(sum(obs) * factor)}")
            out.append(f"{name}_count{labels_text(l)} {num(len(obs) * factor)}")
    return "\n".join(out) + "\n"


def documented_metrics():
    names = set()
    with open(os.path.join(ROOT, "docs", "metrics.md"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r"\|\s*`(vigil_\w+)`", line)
            if m:
                names.add(m.group(1))
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--ramp", type=float, default=10.0)
    args = ap.parse_args()

    missing = documented_metrics() - set(COUNTERS) - set(GAUGES) - set(HISTOGRAMS)
    if missing:
        print(f"fake exporter: docs/metrics.md metrics missing from the fixture: {', '.join(sorted(missing))}",
              file=sys.stderr)
        return 1
    with open(args.token_file, encoding="utf-8") as f:
        token = f.read().strip()
    started = time.monotonic()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.split("?")[0] != "/metrics":
                return self._send(404, "application/json", '{"error": "not found"}\n')
            if self.headers.get("Authorization", "") != f"Bearer {token}":
                return self._send(401, "application/json", '{"error": "missing or invalid token"}\n')
            factor = 1 + min(time.monotonic() - started, args.ramp) / args.ramp if args.ramp > 0 else 2
            self._send(200, "text/plain; version=0.0.4; charset=utf-8", render(factor))

        def _send(self, code, ctype, body):
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
