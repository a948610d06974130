#!/usr/bin/env bash
# What Sigma rules cost the detection engine: `vigil simulate` traffic (web + auth + JSON) evaluated by the
# built-in rules alone, with every SigmaHQ webserver rule added, and with every corpus rule plus the examples,
# side by side in one run (interleaved rounds, medians). Prints a table with the time ratio to the built-in rules.
#   usage: bench/sigma_engine.sh [SCALE=1] [ROUNDS=5]
#   SIGMA_RULES=path/to/sigma/rules (default: ../shared/corpus/sigma/rules beside the repository)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCALE="${1:-1}"
ROUNDS="${2:-5}"
SIGMA="${SIGMA_RULES:-$ROOT/../shared/corpus/sigma/rules}"
[ -d "$SIGMA/web/webserver_generic" ] || { echo "needs SigmaHQ rules at $SIGMA (set SIGMA_RULES)" >&2; exit 1; }
cd "$ROOT"
# Optimised like the release profile but with thin LTO in its own target directory: a much quicker build on a
# small machine, and the ratio between configurations is what this measures.
export CARGO_PROFILE_RELEASE_LTO=thin CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_TARGET_DIR="$ROOT/target/bench"
cargo run -q --release -p vigil-local --example sigma_bench -- --scale "$SCALE" --rounds "$ROUNDS" \
    --sigma "webserver=$SIGMA/web/webserver_generic" \
    --sigma "corpus+examples=$SIGMA,$ROOT/examples/sigma/own"
