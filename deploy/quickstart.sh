#!/usr/bin/env bash
# quickstart.sh: build forgelet and run it for real, behind a private nginx on
# 127.0.0.1, with a demo repository to clone. Stops both on Ctrl-C or SIGTERM
# (from a script, send SIGTERM: a background job of a non-interactive shell
# ignores SIGINT). forgelet's log goes to this terminal, nginx's logs to
# $FORGELET_HOME/log/.
#
# Environment (all optional):
#   FORGELET_PORT  port nginx listens on (default 8080, or the one in an
#                  existing home's config.toml)
#   FORGELET_HOME  folder holding config, data, logs and nginx's files
#                  (default: var/ in the source tree); kept across runs
#   FORGELET_BIN   use this forgelet binary instead of building one
#   NGINX_BIN      path to the nginx binary (default: found in PATH or /usr/sbin)
#   RUST_LOG       forgelet's log level (default here: info)
#
# Everything this script writes at run time stays inside FORGELET_HOME (cargo
# writes its usual target/ folder). It never prompts.
set -euo pipefail

die() {
    printf 'quickstart: %s\n' "$*" >&2
    exit 1
}
say() {
    printf 'quickstart: %s\n' "$*"
}

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
home=$(realpath -m -- "${FORGELET_HOME:-$src/var}")

# The home's path goes into TOML strings, nginx directives and sed
# replacements; refuse characters that would need quoting in any of them.
case $home in
    *[!A-Za-z0-9._/+@-]*)
        die "FORGELET_HOME '$home' holds characters this script does not quote (allowed: letters, digits and . _ / + @ -)" ;;
esac

config=$home/config.toml
data=$home/data
run=$home/run
logs=$home/log
socket=$run/forgelet.sock
# The kernel caps a unix socket's path at 107 bytes.
if [ "${#socket}" -gt 107 ]; then
    die "socket path $socket is longer than a unix socket allows; choose a shorter FORGELET_HOME"
fi

# --- port: $FORGELET_PORT, else the one the kept config uses, else 8080 -------
config_port=
if [ -f "$config" ]; then
    config_port=$(sed -n 's#^base_url = "http://127\.0\.0\.1:\([0-9]*\)".*#\1#p' "$config")
fi
port=${FORGELET_PORT:-${config_port:-8080}}
case $port in
    '' | *[!0-9]*) die "FORGELET_PORT must be a number, not '$port'" ;;
esac
if [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
    die "FORGELET_PORT must be between 1 and 65535, not $port"
fi

# --- the home, and one quickstart per home at a time ---------------------------
# (umask 077 in a subshell: cargo, below, keeps the user's own umask.)
(umask 077 && mkdir -p "$data/repos" "$run" "$logs" "$home/tmp" "$home/nginx/temp")
chmod 700 "$home"

# The lock file also holds the URL of the quickstart that owns it. Opened
# without truncating, so a second run can read it when the lock is taken.
lock=$run/quickstart.lock
exec 9<>"$lock"
if ! flock -n 9; then
    url=$(head -n 1 "$lock" 2>/dev/null || true)
    die "another quickstart is already running with $home (URL ${url:-not known yet: it is still starting}); stop it first, or set FORGELET_HOME to another folder"
fi
printf 'http://127.0.0.1:%s/\n' "$port" >"$lock"

if [ -f "$config" ]; then
    say "using the existing home $home (config and repositories kept)"
else
    say "creating $home"
fi

# (nginx's own bind error is reported too, but this says it before any work.)
if (: <>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port on 127.0.0.1 is already in use; set FORGELET_PORT to a free port"
fi

# --- what this needs: nginx, git, cargo ----------------------------------------
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
install_nginx_and_git || die "nginx and git are needed (see above)"
nginx=$(find_nginx)
[ -x "$nginx" ] || die "nginx not found at '$nginx'"

if [ -n "${FORGELET_BIN:-}" ]; then
    bin=$FORGELET_BIN
else
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (https://rustup.rs) and try again"
    say "building forgelet (cargo build --release --locked)"
    (cd "$src" && cargo build --release --locked)
    target=$(cd "$src" && cargo metadata --format-version 1 --no-deps |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    bin=${target:-$src/target}/release/forgelet
fi
[ -x "$bin" ] || die "no forgelet binary at $bin"

# --- config --------------------------------------------------------------------
umask 077
if [ ! -f "$config" ]; then
    say "writing $config"
    cat >"$config" <<EOF
# forgelet configuration written by deploy/quickstart.sh; kept across runs.
# Every key and its default: see README.md.
data_dir = "$data"
base_url = "http://127.0.0.1:$port"
site_name = "forgelet"
sendfile = "x-accel-redirect"
internal_prefix = "/.forgelet-repos"

[server]
listen = "unix:$socket"
EOF
elif [ -n "$config_port" ] && [ "$config_port" != "$port" ]; then
    say "FORGELET_PORT is $port: updating base_url in $config (was port $config_port)"
    sed -i "s#^base_url = \"http://127\\.0\\.0\\.1:$config_port\"#base_url = \"http://127.0.0.1:$port\"#" "$config"
fi

export FORGELET_CONFIG=$config
export RUST_LOG=${RUST_LOG:-info}

# The demo user, owner of demo/hello, with a random password kept in the home
# (mode 0600) and reused on later runs.
pwfile=$home/demo-password
fresh_password=
if [ -s "$pwfile" ]; then
    demo_password=$(head -n 1 "$pwfile")
else
    demo_password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    [ "${#demo_password}" -eq 24 ] || die "could not make a random password from /dev/urandom"
    printf '%s\n' "$demo_password" >"$pwfile.tmp"
    chmod 600 "$pwfile.tmp"
    mv -f "$pwfile.tmp" "$pwfile"
    fresh_password=1
fi
users=$("$bin" user list) || die "forgelet user list failed (see above)"
if ! printf '%s\n' "$users" | cut -f 1 | grep -qx demo; then
    say "creating the user demo (password in $pwfile)"
    printf '%s\n' "$demo_password" | "$bin" user add demo --password-stdin >/dev/null ||
        die "could not create the user demo (see above)"
elif [ -n "$fresh_password" ]; then
    # demo exists but its password file was gone: give demo the new one.
    say "setting the password of demo to the one in $pwfile"
    printf '%s\n' "$demo_password" | "$bin" user passwd demo --password-stdin >/dev/null ||
        die "could not set the password of demo (see above)"
fi

"$bin" check || die "forgelet check failed for $config (see above)"

# The demo repository: a few commits and an annotated tag, built with git in a
# scratch folder inside the home, then adopted with `forgelet repo import`.
if [ ! -d "$data/repos/demo/hello.git" ]; then
    say "creating the demo repository demo/hello"
    scratch=$(mktemp -d "$home/tmp/demo.XXXXXX")
    (
        cd "$scratch"
        # Keep the user's git config (signing, hooks, templates) out of it.
        export HOME=$scratch XDG_CONFIG_HOME=$scratch GIT_CONFIG_NOSYSTEM=1
        export GIT_AUTHOR_NAME="forgelet demo" GIT_AUTHOR_EMAIL="demo@forgelet.invalid"
        export GIT_COMMITTER_NAME="forgelet demo" GIT_COMMITTER_EMAIL="demo@forgelet.invalid"
        git init -q work
        cd work
        git symbolic-ref HEAD refs/heads/main
        printf '# hello\n\nA demo repository served by forgelet.\n' >README.md
        git add README.md
        git commit -q -m "Add a README"
        printf '#!/bin/sh\necho "hello, world"\n' >hello.sh
        chmod +x hello.sh
        git add hello.sh
        git commit -q -m "Say hello"
        printf '\nRun ./hello.sh to be greeted.\n' >>README.md
        git commit -q -a -m "Explain how to run it"
        git tag -a v0.1 -m "First release"
        cd ..
        git clone -q --bare work hello.git
    )
    "$bin" repo import demo/hello "$scratch/hello.git"
    rm -rf "$scratch"
fi

# --- nginx, configured inside the home -----------------------------------------
ngx=$home/nginx
conf_dir=$(dirname "$("$nginx" -V 2>&1 | tr ' ' '\n' | sed -n 's/^--conf-path=//p')")
if [ -f "$conf_dir/fastcgi_params" ]; then
    cp "$conf_dir/fastcgi_params" "$ngx/fastcgi_params"
else
    cat >"$ngx/fastcgi_params" <<'EOF'
fastcgi_param QUERY_STRING      $query_string;
fastcgi_param REQUEST_METHOD    $request_method;
fastcgi_param CONTENT_TYPE      $content_type;
fastcgi_param CONTENT_LENGTH    $content_length;
fastcgi_param REQUEST_URI       $request_uri;
fastcgi_param SERVER_PROTOCOL   $server_protocol;
fastcgi_param REQUEST_SCHEME    $scheme;
fastcgi_param HTTPS             $https if_not_empty;
fastcgi_param GATEWAY_INTERFACE CGI/1.1;
fastcgi_param REMOTE_ADDR       $remote_addr;
fastcgi_param REMOTE_PORT       $remote_port;
fastcgi_param SERVER_ADDR       $server_addr;
fastcgi_param SERVER_PORT       $server_port;
fastcgi_param SERVER_NAME       $server_name;
EOF
fi

# The very snippet a sysadmin includes, with forgelet at the root of this server.
sed -e 's#location ^~ /git/ {#location ^~ / {#' \
    -e "s#unix:/run/forgelet/forgelet\\.sock;#unix:$socket;#" \
    -e "s#alias /var/lib/forgelet/repos/;#alias $data/repos/;#" \
    "$src/nginx/forgelet.conf" >"$ngx/forgelet.conf"
for want in 'location ^~ / {' "unix:$socket;" "alias $data/repos/;" 'location ^~ /.forgelet-repos/ {'; do
    grep -qF -- "$want" "$ngx/forgelet.conf" ||
        die "nginx/forgelet.conf no longer has the default values this script replaces ($want)"
done

# Temp paths only for the modules this nginx was built with.
temp_paths=
for module in client_body fastcgi proxy uwsgi scgi; do
    case $module in
        client_body) ;;
        *) if "$nginx" -V 2>&1 | grep -q -- "--without-http_${module}_module"; then continue; fi ;;
    esac
    temp_paths+="    ${module}_temp_path $ngx/temp/$module;"$'\n'
done

# As root, nginx would start its workers as `nobody`, who cannot read this
# 0700 home; as any other user the `user` directive is ignored.
user_line=
if [ "$(id -u)" -eq 0 ]; then
    user_line="user root root;"
fi

cat >"$ngx/nginx.conf" <<EOF
# Written by deploy/quickstart.sh on every run.
daemon off;
$user_line
worker_processes 2;
pid $run/nginx.pid;
error_log $logs/nginx-error.log;

events {
    worker_connections 256;
}

http {
    access_log $logs/nginx-access.log;
$temp_paths
    default_type application/octet-stream;
    server_tokens off;

    server {
        listen 127.0.0.1:$port;
        server_name 127.0.0.1;
        include forgelet.conf;
    }
}
EOF

# Since 1.19.5 nginx takes -e, so it never touches its built-in error log.
nginx_args=(-p "$ngx/" -c "$ngx/nginx.conf")
if "$nginx" -h 2>&1 | grep -q -- '-e filename'; then
    nginx_args+=(-e "$logs/nginx-error.log")
fi
env -u NGINX "$nginx" -t -q "${nginx_args[@]}" || die "nginx rejected $ngx/nginx.conf (see above)"


# --- run -------------------------------------------------------------------------
forgelet_pid=
nginx_pid=
# (The functions below run from traps, which shellcheck cannot see.)
# shellcheck disable=SC2317
stop() {
    trap - INT TERM HUP EXIT
    # nginx first, so no request reaches a forgelet that is going away.
    for pid in $nginx_pid $forgelet_pid; do
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
# shellcheck disable=SC2317
on_signal() {
    printf '\n'
    say "stopping"
    stop
    exit 0
}
trap stop EXIT
trap on_signal INT TERM HUP

# A socket left by a run that was killed would make the bind fail; the lock
# above says no other quickstart owns it.
rm -f "$socket"
# Each server runs in a session of its own, so a Ctrl-C reaches only this
# script, which then stops them in order (nginx would otherwise quit at once).
setsid "$bin" serve &
forgelet_pid=$!
for _ in $(seq 100); do
    [ -S "$socket" ] && break
    kill -0 "$forgelet_pid" 2>/dev/null || die "forgelet exited at start (see above)"
    sleep 0.1
done
[ -S "$socket" ] || die "forgelet did not create $socket within 10 s"

setsid env -u NGINX "$nginx" "${nginx_args[@]}" &
nginx_pid=$!

# Wait until the front page answers 200 through nginx.
answered=
for _ in $(seq 100); do
    kill -0 "$nginx_pid" 2>/dev/null ||
        die "nginx exited at start; last lines of $logs/nginx-error.log:
$(tail -n 5 "$logs/nginx-error.log" 2>/dev/null)"
    kill -0 "$forgelet_pid" 2>/dev/null || die "forgelet exited (see above)"
    status=$(
        exec 2>/dev/null
        exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 0
        printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n' "$port" >&3
        IFS= read -r -t 5 line <&3 || true
        printf '%s' "${line:-}"
    ) || true
    case $status in
        "HTTP/1."?" 200"*) answered=1; break ;;
    esac
    sleep 0.1
done
[ -n "$answered" ] || die "http://127.0.0.1:$port/ did not answer 200 within 10 s (last: ${status:-no answer})"

cat <<EOF

  forgelet is running at http://127.0.0.1:$port/

  Clone the demo repository:
      git clone http://127.0.0.1:$port/demo/hello.git

  Its owner, the user demo:
      user name: demo
      password:  $demo_password   (kept in $pwfile)
  Push from the clone with git push, giving that name and password (or make
  a token: $bin --config $home/config.toml token create demo --name laptop).

  Home: $home (config.toml, data/repos/)
  forgelet logs here; nginx logs to $logs/
  Press Ctrl-C to stop (from a script: SIGTERM).

EOF

# Run until Ctrl-C / SIGTERM (trapped above) or until either process exits.
set +e
wait -n
code=$?
set -e
say "a server exited on its own (status $code); stopping"
exit 1
