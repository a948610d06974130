#!/usr/bin/env python3
"""Consistency checks of dashboards/grafana (python3 stdlib only), run by check.sh after schema validation.

  lint_dashboards.py [--schema-version N] [--rules-out FILE]

Checks: the provisioning files (data source uid, provider path that resolves to the JSON folder); per dashboard:
unique uid and title, the schemaVersion of the pinned @grafana/schema, unique panel ids, every panel (rows and the
panels nested in them included), target and query variable on the provisioned data source, descriptions, unique
refIds, every variable used in a query (targets and variable queries) defined, and the queries' agreement with
docs/metrics.md: only documented metric names (histograms as _bucket/_sum/_count), only their labels in matchers
and `by (...)`, only documented label values in equality matchers, tenant-labelled metrics filtered by $tenant,
every documented metric shown somewhere.
--rules-out writes every query, variables substituted, as a Prometheus recording-rules file, so that
`promtool check rules FILE` checks the PromQL syntax offline.
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigil_dashboards as vd  # noqa: E402

METRICS_DOC = os.path.join(vd.ROOT, "docs", "metrics.md")
CONTAINER_PROVISIONING = "/etc/grafana/provisioning/"
EXTRA_METRICS = {"up": {"type": "gauge", "labels": {"job", "instance"}, "values": {}}}

errors = []


def error(where, msg):
    errors.append(f"{where}: {msg}")


def parse_metrics_doc():
    """{name: {type, labels: set, values: {label: set of documented values}}} from the table in docs/metrics.md."""
    metrics = {}
    with open(METRICS_DOC, encoding="utf-8") as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 3 or not cells[0].startswith("`vigil_"):
                continue
            name = cells[0].strip("`")
            labels, values = set(), {}
            # "tenant, severity, age_bucket (`<1h`, `1h-4h`)": labels, each with optional documented values.
            for m in re.finditer(r"(\w+)(?:\s*\(([^)]*)\))?", re.sub(r"\([^)]*\)", lambda x: x.group(0).replace(",", "\0"), cells[2])):
                label = m.group(1)
                labels.add(label)
                if m.group(2):
                    values[label] = {v.strip().strip("`") for v in m.group(2).split("\0")}
            metrics[name] = {"type": cells[1], "labels": labels, "values": values}
    if not metrics:
        error(METRICS_DOC, "no metric found in the table")
    return metrics


def series_names(metrics):
    """Names a query may use -> (documented metric, labels it carries)."""
    out = {}
    for name, m in {**metrics, **EXTRA_METRICS}.items():
        if m["type"] == "histogram":
            out[name + "_bucket"] = (name, m["labels"] | {"le"})
            out[name + "_sum"] = (name, m["labels"])
            out[name + "_count"] = (name, m["labels"])
        else:
            out[name] = (name, m["labels"])
    return out


SELECTOR_RE = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?")
MATCHER_RE = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
GROUPING_RE = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
KEYWORDS = {"sum", "min", "max", "avg", "count", "by", "without", "rate", "increase", "irate", "histogram_quantile",
            "or", "and", "unless", "on", "ignoring", "group_left", "group_right", "label_values", "topk", "bottomk",
            "vector", "scalar", "clamp_min", "clamp_max", "abs", "delta", "deriv", "time", "quantile", "bool",
            "offset", "stddev", "absent", "sort", "sort_desc", "round", "ceil", "floor", "count_values", "le"}


def check_query(where, expr, metrics, names, used_metrics, require_tenant=True):
    """Metric names, matcher labels and values, grouping labels and $tenant filtering of one query."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)   # strings
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", bare)        # matchers, range selectors
    bare = GROUPING_RE.sub(" ", bare)                          # by (...), without (...)
    for token in re.findall(r"(?<![\w$.])[a-zA-Z_:][a-zA-Z0-9_:]*", bare):
        if token not in KEYWORDS and token not in names:
            error(where, f"unknown metric {token!r} (not in docs/metrics.md): {expr}")
    labels_in_expr = set()
    for m in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?", expr):
        name, braces = m.group(1), m.group(2)
        if name not in names:
            continue
        metric, labels = names[name]
        used_metrics.add(metric)
        labels_in_expr |= labels
        matchers = MATCHER_RE.findall(braces or "")
        for label, op, value in matchers:
            if label not in labels:
                error(where, f"{name} has no label {label!r} (docs/metrics.md): {expr}")
                continue
            documented = ({**metrics, **EXTRA_METRICS}[metric]["values"]).get(label)
            if op == "=" and documented and value not in documented:
                error(where, f"{name}{{{label}={value!r}}}: not a documented value ({', '.join(sorted(documented))})")
        if require_tenant and "tenant" in labels and metric in metrics:
            if not any(l == "tenant" and op == "=~" and value in ("$tenant", "${tenant}") for l, op, value in matchers):
                error(where, f'{name} is per tenant but not filtered by tenant=~"$tenant": {expr}')
    for m in GROUPING_RE.finditer(expr):
        for label in (l.strip() for l in m.group(1).split(",")):
            if label and label not in labels_in_expr:
                error(where, f"grouping by {label!r}, which no metric of the query has: {expr}")


def check_provisioning():
    ds_path = os.path.join(vd.GRAFANA_DIR, "datasources", "prometheus.yml")
    with open(ds_path, encoding="utf-8") as f:
        ds = f.read()
    if not re.search(rf"^\s*uid:\s*['\"]?{re.escape(vd.DATASOURCE_UID)}['\"]?\s*$", ds, re.M):
        error(ds_path, f"no data source with uid {vd.DATASOURCE_UID}")
    if not re.search(r"^\s*type:\s*['\"]?prometheus['\"]?\s*$", ds, re.M):
        error(ds_path, "the data source is not of type prometheus")
    if not re.search(r"^\s*url:\s*['\"]?http://prometheus:9090/?['\"]?\s*$", ds, re.M):
        error(ds_path, "url is not http://prometheus:9090 (the compose service)")
    prov_path = os.path.join(vd.GRAFANA_DIR, "dashboards", "vigil.yml")
    with open(prov_path, encoding="utf-8") as f:
        prov = f.read()
    m = re.search(r"^\s*path:\s*['\"]?([^'\"\s]+)['\"]?\s*$", prov, re.M)
    if not m:
        error(prov_path, "no options.path")
    elif not m.group(1).startswith(CONTAINER_PROVISIONING):
        error(prov_path, f"path {m.group(1)} is outside {CONTAINER_PROVISIONING} (where compose mounts dashboards/grafana)")
    else:
        local = os.path.join(vd.GRAFANA_DIR, m.group(1)[len(CONTAINER_PROVISIONING):])
        if os.path.realpath(local) != os.path.realpath(vd.DASHBOARD_DIR):
            error(prov_path, f"path {m.group(1)} is {local} on the host, not {vd.DASHBOARD_DIR}")
    if not re.search(r"^\s*type:\s*file\s*$", prov, re.M):
        error(prov_path, "the provider is not of type file")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schema-version", type=int, help="required schemaVersion (that of the pinned @grafana/schema)")
    ap.add_argument("--rules-out", help="write every query as a recording rule to this file (for promtool check rules)")
    args = ap.parse_args()

    metrics = parse_metrics_doc()
    names = series_names(metrics)
    check_provisioning()

    dashboards = vd.load_dashboards()
    if not dashboards:
        error(vd.DASHBOARD_DIR, "no dashboard JSON")
    uids, titles, rules, used_metrics = {}, {}, [], set()
    for path, d in dashboards:
        rel = os.path.relpath(path, vd.ROOT)
        uid, title = d.get("uid"), d.get("title")
        if not uid or not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid):
            error(rel, f"uid {uid!r} must be 1-40 characters of A-Z a-z 0-9 _ -")
        elif uid in uids:
            error(rel, f"uid {uid!r} is also used by {uids[uid]}")
        else:
            uids[uid] = rel
        if not title:
            error(rel, "no title")
        elif title in titles:
            error(rel, f"title {title!r} is also used by {titles[title]}")
        else:
            titles[title] = rel
        if args.schema_version is not None and d.get("schemaVersion") != args.schema_version:
            error(rel, f"schemaVersion {d.get('schemaVersion')} (the pinned @grafana/schema is at {args.schema_version})")
        if d.get("id") not in (None,):
            error(rel, "id must be null in provisioned dashboards (Grafana assigns it)")

        defined = {}
        for v in vd.variables(d):
            name = v.get("name")
            if name in defined:
                error(rel, f"variable {name!r} defined twice")
            defined[name] = v
            if v.get("type") == "query":
                if v.get("datasource") != vd.DATASOURCE:
                    error(rel, f"variable {name!r}: datasource {v.get('datasource')} is not {vd.DATASOURCE}")
                q = vd.variable_query(v)
                for used in vd.used_variables(q):
                    if used not in defined and not used.startswith("__"):
                        error(rel, f"variable {name!r}: its query uses ${used}, which is not defined before it")
                lv = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q)
                if lv:
                    sel = lv.group(1)
                    mname = re.match(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)", sel)
                    if not mname or mname.group(1) not in names:
                        error(rel, f"variable {name!r}: unknown metric in {q}")
                    elif lv.group(2) not in names[mname.group(1)][1]:
                        error(rel, f"variable {name!r}: {mname.group(1)} has no label {lv.group(2)}")
                    else:
                        check_query(f"{rel} variable {name!r}", sel, metrics, names, set(), require_tenant=False)
                else:
                    error(rel, f"variable {name!r}: expected a label_values(metric, label) query, got {q!r}")

        panel_ids, panel_titles = {}, set()
        for p in vd.walk_panels(d):
            pid = p.get("id")
            where = f"{rel} panel {pid} {p.get('title')!r}"
            if pid in panel_ids:
                error(where, f"panel id {pid} is also used by {panel_ids[pid]!r}")
            panel_ids[pid] = p.get("title")
            if "gridPos" not in p:
                error(where, "no gridPos")
            if p.get("type") == "row":
                if "datasource" in p and p["datasource"] != vd.DATASOURCE:
                    error(where, f"row datasource {p['datasource']} is not {vd.DATASOURCE}")
                continue
            if p.get("datasource") != vd.DATASOURCE:
                error(where, f"datasource {p.get('datasource')} is not {vd.DATASOURCE}")
            if not p.get("title"):
                error(where, "no title")
            elif p["title"] in panel_titles:
                error(where, "another panel of this dashboard has the same title (eval_queries.py --expect keys are titles)")
            panel_titles.add(p.get("title"))
            if not (p.get("description") or "").strip():
                error(where, "no description")
            targets = p.get("targets") or []
            if not targets:
                error(where, "no targets")
            refs = set()
            for t in targets:
                tw = f"{where} target {t.get('refId')}"
                if t.get("refId") in refs or not t.get("refId"):
                    error(tw, "missing or duplicate refId")
                refs.add(t.get("refId"))
                if t.get("datasource") != vd.DATASOURCE:
                    error(tw, f"datasource {t.get('datasource')} is not {vd.DATASOURCE}")
                expr = t.get("expr") or ""
                if not expr.strip():
                    error(tw, "empty expr")
                    continue
                for used in vd.used_variables(expr + " " + (t.get("legendFormat") or "")):
                    if used.startswith("__"):
                        if used not in vd.BUILTIN_DEFAULTS:
                            error(tw, f"uses ${used}, a global variable the query harness does not know")
                    elif used not in defined:
                        error(tw, f"uses ${used}, which is not a variable of this dashboard")
                check_query(tw, expr, metrics, names, used_metrics)
                values = {**vd.BUILTIN_DEFAULTS, **{n: ".*" for n in defined}}
                try:
                    rules.append((f"{uid} / {p.get('title')} / {t.get('refId')}", vd.substitute(expr, values)))
                except KeyError:
                    pass  # reported above

    for metric in sorted(set(metrics) - used_metrics):
        error("docs/metrics.md", f"{metric} is not shown by any dashboard")

    if args.rules_out:
        with open(args.rules_out, "w", encoding="utf-8") as f:
            f.write("groups:\n  - name: vigil-dashboard-queries\n    rules:\n")
            for i, (src, expr) in enumerate(rules):
                f.write(f"      # {src}\n      - record: vigil_dashboard_query:{i}\n")
                f.write("        expr: " + _yaml_str(expr) + "\n")

    if errors:
        for e in errors:
            print(f"  {e}", file=sys.stderr)
        print(f"dashboard lint: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print(f"dashboard lint: {len(dashboards)} dashboards, {len(rules)} queries OK")
    return 0


def _yaml_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


if __name__ == "__main__":
    sys.exit(main())
