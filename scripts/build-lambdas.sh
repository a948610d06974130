#!/usr/bin/env bash
# Builds every Lambda function of infra/template.yaml with cargo-lambda, for Lambda's provided.al2023 runtime.
#
#   scripts/build-lambdas.sh             # arm64 (Graviton), the template's default Architecture
#   scripts/build-lambdas.sh --x86-64    # x86_64 (deploy with Architecture=x86_64)
#   scripts/build-lambdas.sh --zip       # also write bootstrap.zip next to each bootstrap
#   scripts/build-lambdas.sh --dry-run   # install the tools, print the build command, build nothing
#
# Output: target/lambda/<binary>/bootstrap for each `Binary:` in infra/template.yaml, sizes printed at the end.
# `sam build` (from infra/) runs cargo-lambda the same way; this script is for building outside SAM, checking
# binary sizes, or CI. cargo-lambda comes from PyPI into the repo's .venv when it is not on PATH (the wheel
# brings zig, which cross-links for Lambda without Docker). A release build with fat LTO takes a while.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
cd "$ROOT"

arch_flag="--arm64"
rust_target="aarch64-unknown-linux-gnu"
extra=()
dry_run=0
for arg in "$@"; do
    case "$arg" in
        --arm64) arch_flag="--arm64"; rust_target="aarch64-unknown-linux-gnu" ;;
        --x86-64 | --x86_64) arch_flag="--x86-64"; rust_target="x86_64-unknown-linux-gnu" ;;
        --zip) extra+=(--output-format zip) ;;
        --dry-run) dry_run=1 ;;
        -h | --help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-lambdas: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done

# ---- the functions: every `Binary:` the template builds (one source of truth for what is deployed)
mapfile -t binaries < <(sed -n 's/^[[:space:]]*Binary:[[:space:]]*\([A-Za-z0-9_-]*\).*/\1/p' infra/template.yaml)
if [ "${#binaries[@]}" -eq 0 ]; then
    echo "build-lambdas: no BuildProperties Binary found in infra/template.yaml" >&2
    exit 1
fi

# ---- cargo-lambda (and zig), into .venv unless already installed
if ! cargo lambda --version >/dev/null 2>&1; then
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV"
    fi
    if [ ! -x "$VENV/bin/cargo-lambda" ]; then
        echo "build-lambdas: installing cargo-lambda into .venv" >&2
        "$VENV/bin/pip" install -q --disable-pip-version-check cargo-lambda
    fi
fi
# .venv first: cargo finds the `cargo-lambda` subcommand there, and cargo-lambda finds zig via its python.
export PATH="$VENV/bin:$PATH"
cargo lambda --version >/dev/null

# ---- the Rust target (the standard library for it; linking is zig's job)
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$rust_target"; then
    if [ "$dry_run" = 1 ]; then
        echo "build-lambdas: would run: rustup target add $rust_target" >&2
    elif ! rustup target add "$rust_target"; then
        echo "build-lambdas: the Rust target $rust_target is missing and could not be installed;" >&2
        echo "  install it (rustup target add $rust_target) or build for the other architecture" >&2
        exit 1
    fi
fi

bin_args=()
for b in "${binaries[@]}"; do
    bin_args+=(--bin "$b")
done
cmd=(cargo lambda build --release "$arch_flag" "${extra[@]}" "${bin_args[@]}")
echo "build-lambdas: ${cmd[*]}" >&2
if [ "$dry_run" = 1 ]; then
    exit 0
fi
"${cmd[@]}"

# ---- sizes
target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
status=0
printf '\n%-24s %12s  %s\n' "function" "bytes" "file"
for b in "${binaries[@]}"; do
    for f in "$target_dir/lambda/$b/bootstrap" "$target_dir/lambda/$b/bootstrap.zip"; do
        [ -f "$f" ] || continue
        printf '%-24s %12s  %s (%s)\n' "$b" "$(wc -c <"$f" | tr -d ' ')" "${f#"$ROOT"/}" "$(du -h "$f" | cut -f1)"
    done
    if [ ! -f "$target_dir/lambda/$b/bootstrap" ] && [ ! -f "$target_dir/lambda/$b/bootstrap.zip" ]; then
        echo "build-lambdas: no output for $b" >&2
        status=1
    fi
done
exit "$status"
