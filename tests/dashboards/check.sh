#!/usr/bin/env bash
# Static checks of the Grafana provisioning, the dashboards and the Prometheus scrape configs (no Grafana needed):
#
#   1. tools: Debian's `prometheus` (for promtool) when promtool is missing and we are root; the npm packages
#      pinned in tests/dashboards/package-lock.json (@grafana/schema, ts-json-schema-generator, ajv-cli,
#      ajv-formats) into tests/dashboards/node_modules. Idempotent and quiet once installed.
#   2. schema: a JSON schema generated from the `Dashboard` interface of @grafana/schema
#      (dist/esm/raw/dashboard/x/dashboard_types.gen.d.ts, the classic dashboard JSON model) — cached in
#      node_modules/.cache — and every dashboards/grafana/dashboards/json/*.json validated against it with ajv
#      (unknown properties are errors).
#   3. lint (lint_dashboards.py): unique uids, schemaVersion of the pinned @grafana/schema, every panel (rows and
#      nested panels included), target and variable on the provisioned data source uid, every variable used in a
#      query defined, queries in agreement with docs/metrics.md; the PromQL of every query parsed by
#      `promtool check rules`.
#   4. `promtool check config` on dashboards/prometheus/prometheus-{local,aws}.yml (with credentials_file pointed
#      at a temporary dummy token, since promtool requires the file to exist).
#
# Usage: tests/dashboards/check.sh      (exit status non-zero, with the reason, on any failure)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DASHBOARDS="$ROOT/dashboards/grafana/dashboards/json"
SCRAPE_CONFIGS=("$ROOT/dashboards/prometheus/prometheus-local.yml" "$ROOT/dashboards/prometheus/prometheus-aws.yml")
SCHEMA_TYPE_FILE="node_modules/@grafana/schema/dist/esm/raw/dashboard/x/dashboard_types.gen.d.ts"
SCHEMA_TYPE="Dashboard"

fail() { echo "dashboards check FAILED: $*" >&2; exit 1; }

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# ------------------------------------------------------------------------------------------------ 1. tools
if ! command -v promtool >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing Debian package prometheus (for promtool)" >&2
        if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) >"$TMP/apt.log" 2>&1; then
            cat "$TMP/apt.log" >&2
            fail "apt-get install prometheus failed"
        fi
    fi
    command -v promtool >/dev/null 2>&1 || fail "promtool not found: install Prometheus (Debian/Ubuntu: apt-get install prometheus)"
fi
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || fail "node and npm are required (Node.js 18 or later)"
command -v python3 >/dev/null 2>&1 || fail "python3 is required"

cd "$HERE"
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
stamp="node_modules/.vigil-installed"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
    echo "installing the dashboard schema tooling (npm ci in tests/dashboards)" >&2
    if ! npm ci --no-audit --no-fund --loglevel=error >"$TMP/npm.log" 2>&1; then
        cat "$TMP/npm.log" >&2
        fail "npm ci in tests/dashboards failed"
    fi
    echo "$lock_sum" >"$stamp"
fi

# ------------------------------------------------------------------------------------------------ 2. schema
schema_version="$(node -e 'process.stdout.write(String(require("@grafana/schema").defaultDashboard.schemaVersion))' 2>/dev/null)" \
    || fail "cannot read defaultDashboard.schemaVersion from @grafana/schema"
schema_pkg="$(node -e 'process.stdout.write(require("@grafana/schema/package.json").version)' 2>/dev/null || echo unknown)"
schema="node_modules/.cache/vigil/dashboard-${schema_pkg}.schema.json"
if [ ! -s "$schema" ]; then
    mkdir -p "$(dirname "$schema")"
    if ! node_modules/.bin/ts-json-schema-generator --path "$SCHEMA_TYPE_FILE" --type "$SCHEMA_TYPE" \
            --no-type-check --out "$schema.tmp" >"$TMP/gen.log" 2>&1; then
        cat "$TMP/gen.log" >&2
        fail "generating the JSON schema of $SCHEMA_TYPE from @grafana/schema $schema_pkg failed"
    fi
    mv "$schema.tmp" "$schema"
fi

shopt -s nullglob
files=("$DASHBOARDS"/*.json)
[ ${#files[@]} -gt 0 ] || fail "no dashboard JSON in $DASHBOARDS"
schema_failed=0
for f in "${files[@]}"; do
    if ! node_modules/.bin/ajv validate -s "$schema" -d "$f" --spec=draft7 --all-errors --errors=text \
            >"$TMP/ajv.log" 2>&1; then
        echo "${f#"$ROOT"/} does not match @grafana/schema $schema_pkg $SCHEMA_TYPE:" >&2
        grep -v -i 'unknown user config\|npm warn' "$TMP/ajv.log" | sed 's/, data/\n  data/g; s/^/  /' >&2
        echo "  (the first messages name the cause; those about 'collapsed', 'panels' or 'anyOf' come from ajv also" >&2
        echo "   trying the row-panel branch of Panel | RowPanel)" >&2
        schema_failed=1
    fi
done
[ "$schema_failed" = 0 ] || fail "schema validation (see above)"
echo "schema: ${#files[@]} dashboards valid against @grafana/schema $schema_pkg $SCHEMA_TYPE (schemaVersion $schema_version)"

# ------------------------------------------------------------------------------------------------ 3. lint
python3 "$HERE/lint_dashboards.py" --schema-version "$schema_version" --rules-out "$TMP/queries.rules.yml" \
    || fail "dashboard lint (see above)"
if ! promtool check rules "$TMP/queries.rules.yml" >"$TMP/rules.log" 2>&1; then
    cat "$TMP/rules.log" >&2
    fail "promtool check rules: a dashboard query is not valid PromQL (see above; the rule comments name the panel)"
fi
echo "promql: every dashboard query parses (promtool check rules)"

# ------------------------------------------------------------------------------------------------ 4. scrape configs
echo "dummy-token-for-promtool" >"$TMP/token"
for cfg in "${SCRAPE_CONFIGS[@]}"; do
    [ -f "$cfg" ] || fail "missing $cfg"
    grep -q 'credentials_file: /etc/prometheus/vigil/token' "$cfg" \
        || fail "${cfg#"$ROOT"/}: expected authorization.credentials_file /etc/prometheus/vigil/token"
    copy="$TMP/$(basename "$cfg")"
    sed "s#/etc/prometheus/vigil/token#$TMP/token#g" "$cfg" >"$copy"
    if ! promtool check config "$copy" >"$TMP/promtool.log" 2>&1; then
        cat "$TMP/promtool.log" >&2
        fail "promtool check config ${cfg#"$ROOT"/}"
    fi
done
echo "scrape configs: promtool check config OK ($(promtool --version 2>&1 | head -1 | awk '{print $3}'))"
