#!/usr/bin/env bash
# Lints and validates infra/template.yaml: cfn-lint, then `sam validate --lint`.
# Installs cfn-lint and aws-sam-cli into the repo's .venv when missing (quiet once installed). Needs no AWS
# account: validation is offline, with a default region and placeholder credentials if none are set.
# The template's agreement with shared/src/schema.rs is tested by tests/tests/infra.rs (cargo test).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
cd "$ROOT"

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if [ ! -x "$VENV/bin/cfn-lint" ] || [ ! -x "$VENV/bin/sam" ]; then
    "$VENV/bin/pip" install -q --disable-pip-version-check cfn-lint aws-sam-cli
fi

export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-${AWS_REGION:-us-east-1}}"
export SAM_CLI_TELEMETRY=0
if [ -z "${AWS_ACCESS_KEY_ID:-}" ] && [ -z "${AWS_PROFILE:-}" ]; then
    export AWS_ACCESS_KEY_ID=validate-only AWS_SECRET_ACCESS_KEY=validate-only
fi

"$VENV/bin/cfn-lint" --format parseable -- infra/template.yaml
"$VENV/bin/sam" validate --lint --template-file infra/template.yaml --config-file "$ROOT/infra/samconfig.toml"
