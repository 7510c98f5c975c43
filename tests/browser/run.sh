#!/usr/bin/env bash
# tests/browser/run.sh: forgelet's real-browser test. Sets up a site of its own (config, a user,
# `forgelet serve` on a unix socket, real nginx running a copy of nginx/forgelet.conf), then runs
# ui.mjs: headless system Chromium, driven by playwright-core, signs in, creates a repository,
# browses it and its history, and saves screenshots under target/screenshots/.
#
# Needs: node (>= 20) with `npm ci` done here (done below when node_modules is missing),
# Chromium (/usr/bin/chromium, Debian's `chromium`), nginx, git, cargo. deploy/test.sh installs
# what is missing (install_browser_test in deploy/lib.sh). Never downloads a browser.
#
# Environment (optional):
#   CHROMIUM_BIN   the browser (default /usr/bin/chromium)
#   NGINX_BIN      nginx (default /usr/sbin/nginx, else the one on PATH)
#   FORGELET_BIN   the binary under test (default target/debug/forgelet, built by
#                  `cargo build --locked` first)
#   KEEP_TMP=1     keep the site's directory even when the test passes
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

fail() {
    printf 'browser test: %s\n' "$*" >&2
    exit 1
}

started=$(date +%s%N)

# --- prerequisites: say exactly what is missing -------------------------------------------------
# shellcheck source=deploy/lib.sh
. "$root/deploy/lib.sh"
CHROMIUM_BIN=${CHROMIUM_BIN:-/usr/bin/chromium}
NGINX_BIN=$(find_nginx)
missing=()
[ -x "$CHROMIUM_BIN" ] || missing+=("chromium (no browser at $CHROMIUM_BIN; Debian package 'chromium')")
command -v node >/dev/null 2>&1 || missing+=("node >= 20 (Node.js)")
[ -n "$NGINX_BIN" ] && [ -x "$NGINX_BIN" ] || missing+=("nginx (Debian package 'nginx-light' or 'nginx')")
[ -r /etc/nginx/fastcgi_params ] || missing+=("/etc/nginx/fastcgi_params (comes with nginx)")
command -v git >/dev/null 2>&1 || missing+=(git)
if [ -z "${FORGELET_BIN:-}" ]; then
    command -v cargo >/dev/null 2>&1 || missing+=("cargo (to build target/debug/forgelet)")
fi
if [ "${#missing[@]}" -gt 0 ]; then
    printf 'browser test: cannot run; missing:\n' >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || fail "node >= 20 is needed (playwright-core), found $(node --version)"
if [ ! -f "$here/node_modules/playwright-core/package.json" ]; then
    command -v npm >/dev/null 2>&1 || fail "missing: npm (to install playwright-core: npm ci in tests/browser)"
    (cd "$here" && npm ci --no-audit --no-fund) || fail "npm ci in tests/browser failed"
fi

if [ -z "${FORGELET_BIN:-}" ]; then
    # The same debug build deploy/test.sh's `cargo test` makes; a no-op when it is current.
    cargo build --locked --quiet || fail "cargo build --locked failed"
    FORGELET_BIN=$root/target/debug/forgelet
fi
[ -x "$FORGELET_BIN" ] || fail "no forgelet binary at $FORGELET_BIN"

# --- the site ------------------------------------------------------------------------------------
mkdir -p "$root/target/browser-tmp"
tmp=$(mktemp -d "$root/target/browser-tmp/run-XXXXXX")
# Unix socket paths are limited to 108 bytes.
if [ "${#tmp}" -gt 80 ]; then
    rmdir "$tmp"
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/forgelet-browser-XXXXXX")
fi
data=$tmp/data
socket=$tmp/forgelet.sock
ngx=$tmp/nginx
mkdir -p "$data/repos" "$ngx/temp" "$ngx/empty-root"

forgelet_pid=
nginx_pid=
passed=0
cleanup() {
    if [ -n "$nginx_pid" ]; then
        # TERM to the master stops its workers too.
        kill -TERM "$nginx_pid" 2>/dev/null || true
        wait "$nginx_pid" 2>/dev/null || true
    fi
    if [ -n "$forgelet_pid" ]; then
        kill -TERM "$forgelet_pid" 2>/dev/null || true
        wait "$forgelet_pid" 2>/dev/null || true
    fi
    if [ "$passed" = 1 ] && [ -z "${KEEP_TMP:-}" ]; then
        rm -rf "$tmp"
    else
        local f
        for f in "$ngx/stderr.log" "$ngx/error.log" "$tmp/forgelet.stderr"; do
            [ -s "$f" ] || continue
            printf -- '----- %s, last 60 lines -----\n' "$f" >&2
            tail -n 60 "$f" >&2
        done
        printf 'browser test: files kept in %s\n' "$tmp" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(node -e 'const s = require("net").createServer();
s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')
base_path=/git
base_url=http://127.0.0.1:$port$base_path

cat >"$tmp/config.toml" <<EOF
data_dir = "$data"
base_url = "$base_url"
sendfile = "x-accel-redirect"
internal_prefix = "/.forgelet-repos"

[server]
listen = "unix:$socket"
EOF

user=browser
password=browser-test-password-1
forgelet() {
    env -u FORGELET_CONFIG RUST_LOG=info "$FORGELET_BIN" --config "$tmp/config.toml" "$@"
}
printf '%s\n' "$password" | forgelet user add "$user" --password-stdin >"$tmp/user-add.log" 2>&1 \
    || fail "forgelet user add $user failed: $(cat "$tmp/user-add.log")"

# A repository with a branch to compare with main (the browser cannot push): main has one
# commit, the branch feature/faster one more that changes a Python file.
work=$tmp/compare-work
git init -q -b main "$work"
printf 'def speed():\n    return 1\n' >"$work/speed.py"
git -C "$work" add speed.py
git -C "$work" -c user.name=Browser -c user.email=browser@test.invalid commit -q -m "Add speed"
git -C "$work" checkout -q -b feature/faster
printf 'def speed():\n    return 2\n' >"$work/speed.py"
git -C "$work" -c user.name=Browser -c user.email=browser@test.invalid commit -q -am "Make it faster"
git -C "$work" checkout -q main
git clone -q --bare "$work" "$tmp/compare-me.git"
forgelet repo import "$user/compare-me" "$tmp/compare-me.git" >"$tmp/import.log" 2>&1 \
    || fail "forgelet repo import failed: $(cat "$tmp/import.log")"

env -u FORGELET_CONFIG RUST_LOG=info,forgelet=debug "$FORGELET_BIN" --config "$tmp/config.toml" \
    serve --listen "unix:$socket" </dev/null >"$tmp/forgelet.stdout" 2>"$tmp/forgelet.stderr" &
forgelet_pid=$!

# The shipped snippet with its documented values replaced for this site (as tests/util.rs does).
snippet=$(cat "$root/nginx/forgelet.conf")
for literal in 'location ^~ /git/ {' 'unix:/run/forgelet/forgelet.sock;' \
    'alias /var/lib/forgelet/repos/;' 'location ^~ /.forgelet-repos/ {'; do
    [[ $snippet == *"$literal"* ]] \
        || fail "nginx/forgelet.conf no longer contains '$literal'; update tests/browser/run.sh"
done
snippet=${snippet//'location ^~ /git/ {'/"location ^~ $base_path/ {"}
snippet=${snippet//'unix:/run/forgelet/forgelet.sock;'/"unix:$socket;"}
snippet=${snippet//'alias /var/lib/forgelet/repos/;'/"alias $data/repos/;"}
printf '%s\n' "$snippet" >"$ngx/forgelet.conf"
cp /etc/nginx/fastcgi_params "$ngx/fastcgi_params"
nginx_user=
[ "$(id -u)" -eq 0 ] && nginx_user='user root root;'
cat >"$ngx/nginx.conf" <<EOF
$nginx_user
daemon off;
master_process on;
worker_processes 1;
pid $ngx/nginx.pid;
error_log $ngx/error.log info;
events { worker_connections 256; }
http {
    access_log $ngx/access.log;
    client_body_temp_path $ngx/temp/body;
    proxy_temp_path $ngx/temp/proxy;
    fastcgi_temp_path $ngx/temp/fastcgi;
    uwsgi_temp_path $ngx/temp/uwsgi;
    scgi_temp_path $ngx/temp/scgi;
    types { text/html html; text/plain txt; }
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$port;
        server_name localhost;
        root $ngx/empty-root;
        location / { return 404; }
        include $ngx/forgelet.conf;
    }
}
EOF

# Waits (up to 15 s) until `$2...` succeeds; fails if the process $1 is gone.
wait_for() {
    local pid=$1 what=$2 i
    shift 2
    for ((i = 0; i < 300; i++)); do
        "$@" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || fail "$what: the process exited"
        sleep 0.05
    done
    fail "$what: not ready after 15 s"
}
wait_for "$forgelet_pid" "forgelet serve" test -S "$socket"

env -u NGINX "$NGINX_BIN" -p "$ngx" -c "$ngx/nginx.conf" -e "$ngx/error.log" \
    </dev/null >/dev/null 2>"$ngx/stderr.log" &
nginx_pid=$!
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
wait_for "$nginx_pid" "nginx on port $port" port_open

setup_ms=$((($(date +%s%N) - started) / 1000000))
printf 'browser test: site up at %s in %d ms\n' "$base_url" "$setup_ms"

# --- the browser ---------------------------------------------------------------------------------
mkdir -p "$root/target/screenshots"
BASE_URL=$base_url FORGELET_USER=$user FORGELET_PASSWORD=$password \
    CHROMIUM_BIN=$CHROMIUM_BIN SCREENSHOT_DIR=$root/target/screenshots PROFILE_DIR=$tmp/profile \
    node "$here/ui.mjs" || fail "ui.mjs failed (screenshots so far in target/screenshots/)"

# --- the server side must be clean too -----------------------------------------------------------
kill -0 "$forgelet_pid" 2>/dev/null || fail "forgelet exited during the test"
if grep -q panicked "$tmp/forgelet.stderr"; then
    fail "forgelet logged a panic"
fi
if grep -E '\[(error|crit|alert|emerg)\]' "$ngx/error.log" >&2; then
    fail "nginx logged errors (above)"
fi

passed=1
printf 'browser test: passed in %d ms\n' "$((($(date +%s%N) - started) / 1000000))"
