"""Shared helpers (python3 stdlib only) for the dashboard checks: where the dashboards live, walking their
panels and queries, and substituting Grafana template variables the way Grafana would before querying."""

import glob
import json
import os
import re

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GRAFANA_DIR = os.path.join(ROOT, "dashboards", "grafana")
DASHBOARD_DIR = os.path.join(GRAFANA_DIR, "dashboards", "json")
DATASOURCE_UID = "vigil-prometheus"
DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}

# $name, ${name}, ${name:format}, [[name]] and [[name:format]].
VARIABLE_RE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")

# Grafana's global variables (all start with "__"); these are the ones the harness can substitute.
BUILTIN_DEFAULTS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}


def dashboard_files(directory=DASHBOARD_DIR):
    return sorted(glob.glob(os.path.join(directory, "*.json")))


def load_dashboards(directory=DASHBOARD_DIR):
    out = []
    for path in dashboard_files(directory):
        with open(path, encoding="utf-8") as f:
            out.append((path, json.load(f)))
    return out


def walk_panels(dashboard):
    """Every panel, including rows and the panels nested in (collapsed) rows, in layout order."""
    for panel in dashboard.get("panels") or []:
        yield panel
        for nested in panel.get("panels") or []:
            yield nested


def query_panels(dashboard):
    """Panels that are not rows."""
    return [p for p in walk_panels(dashboard) if p.get("type") != "row"]


def variables(dashboard):
    return (dashboard.get("templating") or {}).get("list") or []


def variable_query(variable):
    """The query string of a query variable (string or Prometheus query object)."""
    q = variable.get("query")
    if isinstance(q, dict):
        q = q.get("query") or ""
    return q or ""


def used_variables(text):
    for m in VARIABLE_RE.finditer(text):
        yield m.group(1) or m.group(2) or m.group(3)


def substitute(text, values):
    """Replaces every variable reference by values[name]; raises KeyError naming the first unknown variable."""
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in values:
            raise KeyError(name)
        return values[name]
    return VARIABLE_RE.sub(repl, text)
