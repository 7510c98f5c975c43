#!/usr/bin/env bash
# test.sh: run every check forgelet has: formatting, clippy, and all unit and
# integration tests (which start real nginx and real git). Exits non-zero if any
# of them fails. Used as is by CI (.ci/run); never prompts.
#
# Environment (optional):
#   NGINX_BIN   path to the nginx binary for the integration tests
#           (default: /usr/sbin/nginx, else the one in PATH)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() {
    printf 'test.sh: %s\n' "$*" >&2
    exit 1
}

find_nginx() {
    if [ -n "${NGINX_BIN:-}" ]; then
        printf '%s\n' "$NGINX_BIN"
    elif [ -x /usr/sbin/nginx ]; then
        printf '%s\n' /usr/sbin/nginx
    elif command -v nginx >/dev/null 2>&1; then
        command -v nginx
    fi
}

# --- system packages: nginx and git ------------------------------------------
missing=()
[ -n "$(find_nginx)" ] || missing+=(nginx-light)
command -v git >/dev/null 2>&1 || missing+=(git)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        die "missing ${missing[*]}; install as root: apt-get install -y ${missing[*]}"
    fi
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them"
    printf 'test.sh: installing %s\n' "${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # Newer Debian/Ubuntu releases ship one `nginx` package instead of nginx-light.
    if [[ " ${missing[*]} " == *" nginx-light "* ]] && ! apt-cache show nginx-light >/dev/null 2>&1; then
        missing=("${missing[@]/#nginx-light/nginx}")
    fi
    apt-get install -y -q "${missing[@]}"
fi

NGINX_BIN=$(find_nginx)
[ -x "$NGINX_BIN" ] || die "nginx not found at '$NGINX_BIN'"
export NGINX_BIN

# --- Rust toolchain --------------------------------------------------------------
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (https://rustup.rs)"
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    command -v rustup >/dev/null 2>&1 || die "cargo fmt and cargo clippy are needed (rustfmt, clippy)"
    rustup component add rustfmt clippy
fi

printf '== versions\n'
rustc --version
cargo --version
cargo fmt --version
cargo clippy --version
git --version
"$NGINX_BIN" -v 2>&1
printf 'nginx binary: %s\n' "$NGINX_BIN"

# Test failures should say where they happened.
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}

# Every step runs even when an earlier one fails, so one run shows everything
# that needs fixing; the exit status says whether all passed.
failed=()
step() {
    printf '\n== %s\n' "$*"
    if ! "$@"; then
        failed+=("$*")
    fi
}
step cargo fmt --all -- --check
step cargo clippy --all-targets --locked -- -D warnings
test_log=$(mktemp)
trap 'rm -f "$test_log"' EXIT
run_tests() {
    cargo test --locked 2>&1 | tee "$test_log"
    return "${PIPESTATUS[0]}"
}
step run_tests

if [ "${#failed[@]}" -gt 0 ]; then
    printf '\nFAILED:\n'
    printf '  %s\n' "${failed[@]}"
else
    printf '\nall checks passed\n'
fi
# The last line: the totals of every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed/) p += $(i-1); if ($(i) ~ /^failed/) f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$test_log"
[ "${#failed[@]}" -eq 0 ]
