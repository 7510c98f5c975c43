#!/usr/bin/env bash
# load.sh: forgelet under load for minutes, by hand: the long run of tests/load.rs (every test run
# makes a 20-second one on a small repository). Through real nginx and a real sshd on loopback,
# from many loopback source addresses, all at once: 64 clients cloning and fetching the medium
# benchmark repository (replayed with curl; a sample checked with index-pack --strict and fsck),
# 8 pushers to 4 repositories, clones over SSH, Git LFS uploads and downloads, sign-ins, and page
# views on 256 connections. Prints a table (answers, 503s, other statuses, p50/p99/max latency per
# kind, forgelet's peak RSS) and fails if an accepted push is missing, an answer was a 5xx other
# than a deliberate 503, or forgelet's memory went past its bound.
#
#   deploy/load.sh [SECONDS]      (default 300)
#
# Needs root (sshd runs as root and the test makes an account for it) and what deploy/test.sh
# installs (nginx, git, curl, OpenSSH, git-lfs). The medium repository is made once by
# deploy/bench.sh (BENCH_ONLY=repo) and kept under target/bench/. forgelet is built with
# --release, as a site runs it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() {
    printf 'load.sh: %s\n' "$*" >&2
    exit 1
}

secs=${1:-300}
[[ $secs =~ ^[1-9][0-9]*$ ]] || die "SECONDS must be a positive whole number, not '$secs'"
[ "$(id -u)" -eq 0 ] || die "run as root: the load includes clones over SSH through a real sshd"

medium=target/bench/repo-medium.git
if [ ! -d "$medium" ]; then
    BENCH_SIZE=medium BENCH_ONLY=repo bash deploy/bench.sh || die "deploy/bench.sh could not make $medium"
fi

set +o pipefail
FORGELET_LOAD_SECS=$secs FORGELET_LOAD_REPO=$PWD/$medium \
    cargo test --release --locked --test tests -- --ignored --exact \
    load::a_busy_site_keeps_every_push_and_answers_everyone --nocapture 2>&1 |
    grep -v -E '^(Accepted|Postponed|Starting session|Close session|Connection from|Received disconnect|Disconnected from|User child)'
status=${PIPESTATUS[0]}
exit "$status"
