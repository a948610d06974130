#!/usr/bin/env bash
# Installs the Node packages pinned in tests/clients/package-lock.json (playwright-core, splunk-logging) into
# tests/clients/node_modules: idempotent and quiet once installed. Playwright drives Debian's Chromium
# (/usr/bin/chromium); it never downloads a browser of its own.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
command -v npm >/dev/null 2>&1 || { echo "npm is required for tests/clients (Debian: apt-get install nodejs npm)" >&2; exit 1; }
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
stamp="node_modules/.vigil-installed"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
    echo "installing the Node test clients (npm ci in tests/clients)" >&2
    log="$(mktemp)"
    if ! PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
    echo "$lock_sum" >"$stamp"
fi
