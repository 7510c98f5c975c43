#!/usr/bin/env bash
# test.sh: run every check forgelet has: formatting, clippy, and all unit and
# integration tests (which start real nginx and real git), the real-browser
# test (tests/browser/run.sh: headless Chromium via playwright-core), and the
# Debian package test (deploy/package-test.sh: as root, builds, installs,
# serves, upgrades and purges the package). Exits non-zero if any of them
# fails. Used as is by CI (.ci/run); never prompts.
#
# Environment (optional):
#   NGINX_BIN   path to the nginx binary for the integration tests
#           (default: /usr/sbin/nginx, else the one in PATH)
#   CHROMIUM_BIN  the browser for the browser test (default: /usr/bin/chromium,
#           Debian's chromium, installed when missing)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() {
    printf 'test.sh: %s\n' "$*" >&2
    exit 1
}

# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- system packages: nginx and git ------------------------------------------
install_nginx_and_git || die "nginx and git are needed (see above)"
# dulwich, a second git client for the push tests: its test fails without it, so the run stops
# here, saying so, when it cannot be installed.
install_test_clients || die "dulwich (python3-dulwich) is needed by the push tests and could not be installed (see above)"
# The web servers the host tests run forgelet behind, each with its shipped config.
install_web_servers || die "Apache, mod_xsendfile and lighttpd are needed by the host tests and could not be installed (see above)"
# spawn-fcgi and systemd's tools (tests/hosts_systemd.rs), OpenSSH: sshd for tests/ssh.rs, ssh-keygen
# for the SSH key tests, which compare fingerprints with what it prints; python3 for the feed tests;
# and git-lfs, the real LFS client of tests/lfs.rs.
install_host_tools || die "spawn-fcgi, systemd (systemd-analyze, systemd-socket-activate), OpenSSH (sshd, ssh, ssh-keygen), python3 and git-lfs are needed by the hosts', SSH, feed and LFS tests (see above)"

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
spawn-fcgi -v | sed -n 1p
systemd-analyze --version | sed -n 1p
printf 'nginx binary: %s\n' "$NGINX_BIN"
/usr/sbin/apache2 -v | head -1
/usr/sbin/lighttpd -v
/usr/sbin/sshd -V 2>&1 | head -1 || true
git-lfs version

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
# The load test (tests/load.rs) takes both cores for 20 seconds, so it runs alone, after the
# others (it is marked ignored for a plain `cargo test`).
run_load_test() {
    cargo test --locked --test tests -- --ignored --exact \
        load::a_busy_site_keeps_every_push_and_answers_everyone 2>&1 | tee -a "$test_log"
    return "${PIPESTATUS[0]}"
}
step run_load_test
# The integration tests again with Debian's own git (/usr/bin/git, what the package depends on)
# when the git first in PATH is another one (a newer git under /usr/local, say): forgelet runs
# whichever git its PATH finds, and both must work.
run_tests_debian_git() {
    [ -x /usr/bin/git ] || {
        printf "Debian's git (/usr/bin/git) is missing: apt-get install git\n" >&2
        return 1
    }
    if [ "$(command -v git)" = /usr/bin/git ]; then
        printf "the git in PATH is Debian's; the tests above used it\n"
        return 0
    fi
    printf 'with %s\n' "$(/usr/bin/git --version)"
    PATH="/usr/bin:$PATH" cargo test --locked --test tests
}
step run_tests_debian_git
# The real-browser test: headless Chromium against a site of its own (tests/browser/run.sh).
# Missing chromium or node fails this step, saying what is missing; it never skips.
browser_test() {
    install_browser_test || return 1
    bash tests/browser/run.sh
}
step browser_test
# The Debian package, built, installed and served for real (deploy/package-test.sh): it needs
# root, as CI has, and fails, saying why, without it or on a machine that has forgelet already.
step bash deploy/package-test.sh
# Every shell command of the README's guide, run in order in a scratch folder (see the script).
step bash deploy/guide-test.sh

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
