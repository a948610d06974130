#!/usr/bin/env python3
"""Evaluates every query of the Vigil dashboards against a real Prometheus (python3 stdlib only).

  eval_queries.py PROMETHEUS_URL [--tenant REGEX] [--severity REGEX] [--var NAME=VALUE ...]
                  [--expect FILE] [--tolerance REL] [--wait SECONDS] [--dashboards DIR]

For every dashboard in dashboards/grafana/dashboards/json: each template variable's label_values() query must
return values, and each panel target — with $tenant -> --tenant (default .*), $severity -> --severity (default .*),
$__rate_interval -> 1m, $__interval -> 15s, $__range -> 1h — is evaluated with /api/v1/query (instant, now) and
must succeed and return at least one sample (NaN counts as a sample: e.g. a quantile over an interval without
observations; it is printed as NaN). Prints a table of dashboard / panel / target / series -> value.

--expect FILE: a JSON object {"KEY": EXPECTED, ...}. KEY is a panel title, optionally prefixed with the dashboard
uid and a slash, optionally followed by #REFID (one target of the panel) and/or {label="value", ...} (the series
with those labels), e.g. "SLA breaches", "vigil-detection-efficacy/Precision by rule{rule=\"ssh_brute_force\"}",
"Response times by severity#A{severity=\"high\"}". The selection must yield exactly one value (in every panel the
key matches), which must equal EXPECTED (a number, within --tolerance, relative, default 0.001, or absolute 1e-9
near zero) or lie within EXPECTED = [LOW, HIGH].

--wait SECONDS: retry the whole evaluation (every 2 s) until it passes or SECONDS have passed — Prometheus needs
a few scrapes before rate() has two samples. Exit status 0 when everything passed, 1 otherwise.
"""

import argparse
import json
import math
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigil_dashboards as vd  # noqa: E402


class Prometheus:
    def __init__(self, base):
        self.base = base.rstrip("/")

    def _get(self, path, params=None, data=None):
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(url, data=body)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            try:
                return json.load(e)
            except ValueError:
                return {"status": "error", "error": f"HTTP {e.code}"}
        except (urllib.error.URLError, OSError) as e:
            return {"status": "error", "error": f"cannot reach {url}: {e}"}

    def query(self, expr):
        return self._get("/api/v1/query", data={"query": expr})

    def label_values(self, label, selector):
        return self._get(f"/api/v1/label/{urllib.parse.quote(label)}/values", params={"match[]": selector})

    def targets(self):
        return self._get("/api/v1/targets")


def fmt_labels(metric):
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}" if metric else "{}"


def fmt_value(v):
    return "NaN" if math.isnan(v) else f"{v:.6g}"


def samples(result):
    """(labels, float) pairs of an instant-query answer."""
    data = result.get("data") or {}
    kind, res = data.get("resultType"), data.get("result")
    if kind == "vector":
        return [(s.get("metric") or {}, float(s["value"][1])) for s in res]
    if kind == "scalar":
        return [({}, float(res[1]))]
    if kind == "matrix":
        return [(s.get("metric") or {}, float(s["values"][-1][1])) for s in res if s.get("values")]
    return []


KEY_RE = re.compile(r"^(?:(?P<uid>[A-Za-z0-9_-]+)/)?(?P<title>.+?)(?:#(?P<ref>[A-Za-z0-9_]+))?(?:\{(?P<labels>.*)\})?$")
LABEL_RE = re.compile(r'\s*(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_key(key, uids):
    m = KEY_RE.match(key)
    if not m:
        raise ValueError(f"cannot parse expectation key {key!r}")
    uid, title = m.group("uid"), m.group("title")
    if uid and uid not in uids:  # a slash inside a panel title, not a dashboard uid
        uid, title = None, f"{uid}/{title}"
    labels = {}
    if m.group("labels"):
        rest = m.group("labels")
        for lm in LABEL_RE.finditer(rest):
            labels[lm.group(1)] = lm.group(2).encode().decode("unicode_escape")
    return uid, title, m.group("ref"), labels


def evaluate(prom, dashboards, values, args):
    """One full pass. Returns (rows, problems, results[(uid, title, ref, labels, value)])."""
    rows, problems, results = [], [], []
    for path, d in dashboards:
        uid = d.get("uid")
        for v in vd.variables(d):
            q = vd.variable_query(v)
            m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q)
            if not m:
                continue
            try:
                sel = vd.substitute(m.group(1), values)
            except KeyError as e:
                problems.append(f"{uid} variable {v.get('name')}: no value for ${e.args[0]} (use --var)")
                continue
            r = prom.label_values(m.group(2), sel)
            if r.get("status") != "success":
                problems.append(f"{uid} variable {v.get('name')}: {r.get('error')}")
            elif not r.get("data"):
                problems.append(f"{uid} variable {v.get('name')}: label_values({sel}, {m.group(2)}) returned nothing")
            rows.append((uid, f"${v.get('name')}", "", "", ", ".join(r.get("data") or []) or "-"))
        for p in vd.query_panels(d):
            title = p.get("title") or f"panel {p.get('id')}"
            for t in p.get("targets") or []:
                if t.get("hide"):
                    continue
                ref = t.get("refId", "")
                try:
                    expr = vd.substitute(t.get("expr") or "", values)
                except KeyError as e:
                    problems.append(f"{uid} / {title} / {ref}: no value for ${e.args[0]} (use --var)")
                    continue
                r = prom.query(expr)
                if r.get("status") != "success":
                    problems.append(f"{uid} / {title} / {ref}: query failed: {r.get('error')}\n      {expr}")
                    rows.append((uid, title, ref, "", "ERROR"))
                    continue
                got = samples(r)
                if not got:
                    problems.append(f"{uid} / {title} / {ref}: no data\n      {expr}")
                    rows.append((uid, title, ref, "", "NO DATA"))
                for labels, value in got:
                    rows.append((uid, title, ref, fmt_labels(labels), fmt_value(value)))
                    results.append((uid, title, ref, labels, value))
    return rows, problems, results


def check_expectations(expect, results, uids, tolerance):
    problems, report = [], []
    for key, want in expect.items():
        try:
            uid, title, ref, labels = parse_key(key, uids)
        except ValueError as e:
            problems.append(str(e))
            continue
        panels = {}
        for r_uid, r_title, r_ref, r_labels, value in results:
            if r_title != title or (uid and r_uid != uid) or (ref and r_ref != ref):
                continue
            if any(r_labels.get(k) != v for k, v in labels.items()):
                continue
            panels.setdefault(r_uid, []).append(value)
        if not panels:
            problems.append(f"expect {key!r}: no matching panel/series with data")
            continue
        for r_uid, vals in sorted(panels.items()):
            if len(vals) != 1:
                problems.append(f"expect {key!r}: {len(vals)} values in {r_uid} ({', '.join(map(fmt_value, vals))}); "
                                "narrow it with #REFID or {label=\"value\"}")
                continue
            got = vals[0]
            if isinstance(want, list) and len(want) == 2:
                ok = not math.isnan(got) and want[0] <= got <= want[1]
                shown = f"[{want[0]}, {want[1]}]"
            else:
                ok = not math.isnan(got) and abs(got - float(want)) <= max(1e-9, tolerance * abs(float(want)))
                shown = f"{want}"
            report.append(f"  {'ok  ' if ok else 'FAIL'} {r_uid} / {key}: {fmt_value(got)} (expected {shown})")
            if not ok:
                problems.append(f"expect {key!r} in {r_uid}: got {fmt_value(got)}, expected {shown}")
    return report, problems


def scrape_health(prom):
    r = prom.targets()
    if r.get("status") != "success":
        return [f"cannot list targets: {r.get('error')}"]
    out = []
    for t in (r.get("data") or {}).get("activeTargets") or []:
        line = f"{t.get('labels', {}).get('job')} {t.get('scrapeUrl')}: {t.get('health')}"
        if t.get("lastError"):
            line += f" ({t['lastError']})"
        out.append(line)
    return out or ["no active scrape target"]


def print_table(rows):
    headers = ("dashboard", "panel", "ref", "series", "value")
    widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(5)]
    widths[3] = min(widths[3], 70)
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*headers))
    print(line.format(*("-" * w for w in widths)))
    for r in rows:
        print(line.format(*r))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prometheus", help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    ap.add_argument("--tenant", default=".*", help="regex substituted for $tenant (default .*)")
    ap.add_argument("--severity", default=".*", help="regex substituted for $severity (default .*)")
    ap.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="any other variable")
    ap.add_argument("--expect", help="JSON file of expected single values")
    ap.add_argument("--tolerance", type=float, default=0.001, help="relative tolerance of --expect (default 0.001)")
    ap.add_argument("--wait", type=float, default=0, help="retry for up to this many seconds until everything passes")
    ap.add_argument("--dashboards", default=vd.DASHBOARD_DIR, help="dashboard JSON folder")
    args = ap.parse_args()

    values = dict(vd.BUILTIN_DEFAULTS)
    values.update({"tenant": args.tenant, "severity": args.severity})
    for kv in args.var:
        name, _, value = kv.partition("=")
        values[name.lstrip("$")] = value
    dashboards = vd.load_dashboards(args.dashboards)
    if not dashboards:
        print(f"no dashboard JSON in {args.dashboards}", file=sys.stderr)
        return 1
    uids = {d.get("uid") for _, d in dashboards}
    expect = {}
    if args.expect:
        with open(args.expect, encoding="utf-8") as f:
            expect = json.load(f)

    prom = Prometheus(args.prometheus)
    deadline = time.monotonic() + args.wait
    attempt = 0
    while True:
        attempt += 1
        rows, problems, results = evaluate(prom, dashboards, values, args)
        report, exp_problems = check_expectations(expect, results, uids, args.tolerance)
        problems += exp_problems
        if not problems or time.monotonic() >= deadline:
            break
        time.sleep(2)

    print_table(rows)
    queries = sum(1 for r in rows if not r[1].startswith("$"))
    nan = sum(1 for r in rows if r[4] == "NaN")
    if report:
        print("\nexpectations:")
        print("\n".join(report))
    if problems:
        print(f"\nFAILED after {attempt} attempt(s): {len(problems)} problem(s)", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        print("scrape targets:", file=sys.stderr)
        for h in scrape_health(prom):
            print(f"  {h}", file=sys.stderr)
        return 1
    print(f"\nOK: {len(dashboards)} dashboards, every query returned data ({queries} series rows"
          f"{f', {nan} NaN' if nan else ''}){f', {len(expect)} expectations met' if expect else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
