#!/usr/bin/env bash
# Creates Vigil's DynamoDB tables and SQS queues from infra/template.yaml (via ../bootstrap.py).
#
# In LocalStack: a READY hook (docker-compose.yml mounts localstack/init at /etc/localstack/init and the
# template at $VIGIL_TEMPLATE). On the host, against any emulator:
#   localstack/init/ready.d/bootstrap.sh                       # http://localhost:4566
#   AWS_ENDPOINT_URL=http://127.0.0.1:5000 localstack/init/ready.d/bootstrap.sh --param NamePrefix=dev
# The endpoint comes from AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL (default
# http://localhost:4566); extra arguments go to bootstrap.py (--dry-run, --param NAME=VALUE, --region). As a
# hook it gets no arguments: template parameters then come from VIGIL_TEMPLATE_PARAMS="NamePrefix=dev ...".
#
# The definitions are not repeated here (nor as awslocal calls): bootstrap.py reads them from the template,
# which needs Python with boto3 and PyYAML. The first interpreter that has both is used: $VIGIL_PYTHON,
# LocalStack's own, the repo's .venv (infra/check.sh puts both there), then python3.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." 2>/dev/null && pwd || true)"
script="${VIGIL_BOOTSTRAP_SCRIPT:-$here/../bootstrap.py}"
export VIGIL_TEMPLATE="${VIGIL_TEMPLATE:-$repo/infra/template.yaml}"

if [ ! -f "$VIGIL_TEMPLATE" ]; then
    echo "bootstrap: template not found at $VIGIL_TEMPLATE (set VIGIL_TEMPLATE)" >&2
    exit 1
fi

for py in "${VIGIL_PYTHON:-}" /opt/code/localstack/.venv/bin/python "$repo/.venv/bin/python" python3 python; do
    [ -n "$py" ] || continue
    if [ -x "$py" ] || command -v "$py" >/dev/null 2>&1; then
        if "$py" -c 'import boto3, yaml' >/dev/null 2>&1; then
            exec "$py" "$script" "$@"
        fi
    fi
done
echo "bootstrap: no Python with boto3 and PyYAML found; pip install boto3 pyyaml, or set VIGIL_PYTHON" >&2
exit 1
