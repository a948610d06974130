#!/usr/bin/env bash
# LocalStack on the host (no Docker) for SQS, moto for DynamoDB, with Vigil's tables and queues created by the
# init hook of localstack/init, the way docker-compose.yml runs it.
#
#   localstack.sh install   create .venv-localstack in the repo root with localstack-core[runtime] (quiet when done)
#   localstack.sh start     install if needed, start moto (tests/support/moto.sh) and LocalStack on a free port,
#                           wait until LocalStack's READY hooks have all succeeded, then print
#                             VIGIL_TEST_LOCALSTACK_SQS=http://127.0.0.1:<port>       (LocalStack: SQS)
#                             VIGIL_TEST_LOCALSTACK_DYNAMODB=http://127.0.0.1:<port>  (moto: DynamoDB)
#                             VIGIL_TEST_LOCALSTACK_PREFIX=vigil-ls-<random>          (the template's NamePrefix)
#                             VIGIL_TEST_LOCALSTACK_STARTED=1|0                       (0: an instance was reused)
#                           e.g. `set -a; eval "$(tests/support/localstack.sh start)"; set +a`
#   localstack.sh stop      stop the LocalStack that `start` started (moto is left to `moto.sh stop`)
#
# LocalStack runs as `python -m localstack.runtime.main` with OVERRIDE_IN_DOCKER=0 and FILESYSTEM_ROOT=$STATE/fs;
# $STATE/fs/etc/localstack/init is a symlink to localstack/init, so ready.d/bootstrap.sh runs once LocalStack is
# ready, with AWS_ENDPOINT_URL_SQS pointing at LocalStack itself and AWS_ENDPOINT_URL_DYNAMODB at moto, and
# NamePrefix (VIGIL_TEMPLATE_PARAMS) unique to this start, so runs never share tables in a long-lived moto.
#
# Settings: VIGIL_LOCALSTACK_STATE_DIR (default target/localstack), VIGIL_LOCALSTACK_VENV (default
# .venv-localstack), VIGIL_LOCALSTACK_PYTHON (the interpreter for the venv; default Python 3.11, else a python3
# from 3.9 to 3.12), VIGIL_LOCALSTACK_DYNAMODB (a DynamoDB endpoint to use instead of starting moto),
# VIGIL_LOCALSTACK_TIMEOUT (seconds to wait for the hooks, default 180).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VIGIL_LOCALSTACK_VENV:-$ROOT/.venv-localstack}"
STATE="${VIGIL_LOCALSTACK_STATE_DIR:-$ROOT/target/localstack}"
PIDFILE="$STATE/localstack.pid"
ENVFILE="$STATE/localstack.env"
LOG="$STATE/localstack.log"
TIMEOUT="${VIGIL_LOCALSTACK_TIMEOUT:-180}"

# localstack-core 4.4.0 is the release of the pinned image (docker-compose.yml: localstack/localstack:4.4). The
# other pins keep its dependencies at versions that release works with (newer cbor2, cryptography, pyOpenSSL
# and service-identity releases break it; psutil 7.2 moved the `snicaddr` its DNS plugin imports).
REQUIREMENTS=(
    "localstack-core[runtime]==4.4.0"
    "cbor2<5.7"
    "cryptography<44"
    "pyopenssl==24.2.1"
    "service_identity<25"
    "psutil<7.2"
)

log() { printf 'localstack.sh: %s\n' "$*" >&2; }

# Whether $1 is a Python LocalStack 4.4 runs on: 3.9 to 3.12. On 3.13 it starts, but cannot run shell init
# hooks: it spawns them with an empty argv, which 3.13's subprocess refuses ("posix_spawn: argv must not be
# empty"), so the hook ends in state ERROR.
runs() {
    [ -n "$1" ] && "$1" -c 'import sys; sys.exit(0 if (3, 9) <= sys.version_info[:2] <= (3, 12) else 1)' >/dev/null 2>&1
}

pick_python() {
    if [ -n "${VIGIL_LOCALSTACK_PYTHON:-}" ]; then
        runs "$VIGIL_LOCALSTACK_PYTHON" || { log "VIGIL_LOCALSTACK_PYTHON=$VIGIL_LOCALSTACK_PYTHON is not a Python 3.9 to 3.12"; return 1; }
        echo "$VIGIL_LOCALSTACK_PYTHON"
        return 0
    fi
    # Python 3.11 (the interpreter of the localstack/localstack:4.4 image): python3.11 on PATH (a pyenv shim
    # answers only when 3.11 is selected, hence the check that it runs), then pyenv's own 3.11 builds, then
    # python3 if it is 3.9 to 3.12.
    local candidates=() py
    candidates+=("$(command -v python3.11 || true)")
    local pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
    if [ -d "$pyenv_root/versions" ]; then
        while IFS= read -r py; do candidates+=("$py"); done < <(
            ls -d "$pyenv_root"/versions/3.11.*/bin/python3.11 2>/dev/null | sort -rV
        )
    fi
    candidates+=("$(command -v python3 || true)")
    for py in "${candidates[@]}"; do
        if runs "$py"; then
            echo "$py"
            return 0
        fi
    done
    log "no Python 3.9 to 3.12 found for LocalStack 4.4 (set VIGIL_LOCALSTACK_PYTHON)"
    return 1
}

install() {
    local stamp="$VENV/.vigil-requirements" wanted
    wanted="$(printf '%s\n' "${REQUIREMENTS[@]}")"
    if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
        return 0
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        local py
        py="$(pick_python)"
        log "creating $VENV with $("$py" --version 2>&1) ($py)"
        "$py" -m venv "$VENV" >&2
    fi
    log "installing ${REQUIREMENTS[*]} (a few minutes the first time)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${REQUIREMENTS[@]}" >&2
    "$VENV/bin/python" -c 'import localstack.runtime.main, boto3, yaml' >&2
    echo "$wanted" >"$stamp"
}

free_port() {
    "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# The READY stage of /_localstack/init: "ok" (completed, at least one hook, all SUCCESSFUL), "wait" (not yet),
# or "failed <name>=<state> ..."; fails when LocalStack does not answer.
ready_state() {
    "$VENV/bin/python" - "$1" <<'PY' 2>/dev/null
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/_localstack/init/ready", timeout=2) as r:
    d = json.load(r)
scripts = d.get("scripts", [])
if not d.get("completed"):
    print("wait")
elif scripts and all(s.get("state") == "SUCCESSFUL" for s in scripts):
    print("ok")
else:
    print("failed", *[f"{s.get('name')}={s.get('state')}" for s in scripts] or ["(no READY hook found)"])
PY
}

running() {
    [ -f "$PIDFILE" ] && [ -f "$ENVFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null || return 1
    local url
    url="$(sed -n 's/^VIGIL_TEST_LOCALSTACK_SQS=//p' "$ENVFILE")"
    [ "$(ready_state "$url" || true)" = ok ]
}

start() {
    install
    mkdir -p "$STATE"
    # One LocalStack per state dir, even when test binaries start at the same time.
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$STATE/lock"
        flock 9
    fi
    if running; then
        sed 's/^VIGIL_TEST_LOCALSTACK_STARTED=.*/VIGIL_TEST_LOCALSTACK_STARTED=0/' "$ENVFILE"
        return 0
    fi
    stop_pid

    local dynamodb port sqs prefix fs pid
    dynamodb="${VIGIL_LOCALSTACK_DYNAMODB:-}"
    if [ -z "$dynamodb" ]; then
        dynamodb="$(bash "$ROOT/tests/support/moto.sh" start 9>&- | tail -n 1)" || {
            log "moto (DynamoDB) could not be started: tests/support/moto.sh start failed"
            return 1
        }
    fi
    port="$(free_port)"
    sqs="http://127.0.0.1:$port"
    prefix="vigil-ls-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"

    # A fresh filesystem root each start; the init directory is the repo's, as the compose file mounts it.
    fs="$STATE/fs"
    rm -rf "$fs"
    mkdir -p "$fs/etc/localstack"
    ln -s "$ROOT/localstack/init" "$fs/etc/localstack/init"

    local SETSID=""
    if command -v setsid >/dev/null 2>&1; then
        SETSID=setsid
    fi
    # Its own session, so LocalStack outlives whoever started it (until `stop`). Real AWS settings of the
    # caller's environment are cleared: everything here talks to the two emulators with test credentials.
    (
        cd "$STATE"
        exec env -u AWS_ENDPOINT_URL -u AWS_PROFILE -u AWS_SESSION_TOKEN \
            OVERRIDE_IN_DOCKER=0 \
            FILESYSTEM_ROOT="$fs" \
            DISABLE_EVENTS=1 \
            SKIP_SSL_CERT_DOWNLOAD=1 \
            DNS_ADDRESS=0 \
            SERVICES=sqs \
            GATEWAY_LISTEN="127.0.0.1:$port" \
            LOCALSTACK_HOST="127.0.0.1:$port" \
            SQS_ENDPOINT_STRATEGY=path \
            AWS_ACCESS_KEY_ID=test \
            AWS_SECRET_ACCESS_KEY=test \
            AWS_DEFAULT_REGION=us-east-1 \
            AWS_REGION=us-east-1 \
            AWS_ENDPOINT_URL_SQS="$sqs" \
            AWS_ENDPOINT_URL_DYNAMODB="$dynamodb" \
            VIGIL_TEMPLATE="$ROOT/infra/template.yaml" \
            VIGIL_TEMPLATE_PARAMS="NamePrefix=$prefix" \
            VIGIL_PYTHON="$VENV/bin/python" \
            $SETSID nohup "$VENV/bin/python" -m localstack.runtime.main
    ) >"$LOG" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$PIDFILE"

    local state="" deadline=$((SECONDS + TIMEOUT))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "LocalStack exited during start-up; its log ($LOG):"
            cat "$LOG" >&2
            rm -f "$PIDFILE"
            return 1
        fi
        state="$(ready_state "$sqs" || true)"
        case "$state" in
            ok)
                {
                    echo "VIGIL_TEST_LOCALSTACK_SQS=$sqs"
                    echo "VIGIL_TEST_LOCALSTACK_DYNAMODB=$dynamodb"
                    echo "VIGIL_TEST_LOCALSTACK_PREFIX=$prefix"
                    echo "VIGIL_TEST_LOCALSTACK_STARTED=1"
                } >"$ENVFILE"
                cat "$ENVFILE"
                return 0
                ;;
            failed*)
                log "LocalStack's READY hooks did not all succeed (${state#failed }); its log ($LOG):"
                cat "$LOG" >&2
                stop_pid
                return 1
                ;;
        esac
        sleep 0.5
    done
    log "LocalStack's READY hooks had not finished after ${TIMEOUT}s (last: ${state:-no answer on $sqs}); its log ($LOG):"
    cat "$LOG" >&2
    stop_pid
    return 1
}

# Stops the LocalStack in $PIDFILE, if that process is still LocalStack (not a later process with its pid).
stop_pid() {
    if [ -f "$PIDFILE" ]; then
        local pid
        pid="$(cat "$PIDFILE")"
        if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'localstack.runtime.main'; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 100); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$PIDFILE" "$ENVFILE"
    fi
}

case "${1:-start}" in
    install) install ;;
    start) start ;;
    stop) stop_pid ;;
    *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
