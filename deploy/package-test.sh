#!/usr/bin/env bash
# package-test.sh: build forgelet's Debian package and try it on this machine for real, as a
# sysadmin would. Run by deploy/test.sh (CI: root on Debian 12); exits non-zero on the first
# thing that is wrong, saying what.
#
#   1. build: `cargo build --release --locked && cargo deb --no-build` (the README's commands)
#   2. install with `dpkg -i` (`apt-get install -f` for missing dependencies); check the user
#      forgelet, /var/lib/forgelet, every file, that nothing was enabled or started, and
#      `forgelet check` with the installed example config
#   3. serve: a repository made with `runuser -u forgelet -- forgelet repo create`, pushed,
#      then cloned (smart, protocol v2, and dumb) through the INSTALLED /usr/bin/forgelet,
#      run as forgelet with the group www-data as the systemd unit runs it, behind nginx
#      (workers as www-data) running the snippet the package installed; refs compared
#   4. upgrade over itself (`dpkg -i` again): user, data and an edited conffile kept, and
#      the clone works with the new binary
#   5. `dpkg -r`: the config, data and user kept; `dpkg -P`: /etc/forgelet gone, the data
#      kept and said so on stdout, no systemd leftovers
#   6. the README's `apt install ./target/debian/forgelet_*.deb` over the kept data
#
# Everything runs with Debian's own git (/usr/bin/git, PATH without /usr/local/bin), the git
# the package depends on, not a newer one the machine may have in /usr/local/bin.
#
# Needs root (it installs a package and creates a system user), dpkg and apt-get. It
# refuses to run, failing, where forgelet is already installed or a forgelet user, group,
# /etc/forgelet or /var/lib/forgelet exists: it would change them. What it makes is removed
# on exit, passed or failed (trap): the package purged, the user, group, /var/lib/forgelet
# and /etc/forgelet deleted, nginx and forgelet stopped. Nothing listens beyond 127.0.0.1.
#
# Cost on 2 cores: the release build is reused when target/release is current (a clean
# build takes 3 to 8 minutes); cargo-deb is installed when missing (about 1 minute);
# `cargo deb --no-build` 10 to 20 s (stripping, and xz compressing the debug symbols);
# steps 2 to 6 about 5 s. With target/release current, the whole test takes about 15 s.
#
# Environment (optional):
#   NGINX_BIN   the nginx binary (default: /usr/sbin/nginx, else the one on PATH)
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=deploy/lib.sh
. "$src/deploy/lib.sh"

started=$SECONDS
phase_start=$SECONDS
timings=()
say() { printf 'package-test: %s\n' "$*"; }
die() {
    printf 'package-test: FAILED: %s\n' "$*" >&2
    exit 1
}
phase() {
    if [ -n "${phase_name:-}" ]; then
        timings+=("$(printf '%4ss  %s' $((SECONDS - phase_start)) "$phase_name")")
    fi
    phase_name=$1
    phase_start=$SECONDS
    printf '\n== %s\n' "$1"
}
# expect WHAT ACTUAL WANTED
expect() {
    [ "$2" = "$3" ] || die "$1: expected '$3', found '$2'"
}
must_exist() {
    local p
    for p in "$@"; do
        [ -e "$p" ] || die "$p is missing"
    done
}
must_not_exist() {
    local p
    for p in "$@"; do
        if [ -e "$p" ] || [ -L "$p" ]; then die "$p should not exist"; fi
    done
}

# --- preconditions: root, Debian, and no forgelet on this machine yet ---------------------
phase "preconditions"
[ "$(id -u)" -eq 0 ] || die "must run as root: it installs the package and creates the user forgelet (CI runs it as root)"
for tool in dpkg dpkg-deb dpkg-query apt-get apt runuser setpriv getent useradd userdel; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: this test needs a Debian system"
done
pkg_status() { dpkg-query -W -f='${db:Status-Abbrev}' forgelet 2>/dev/null | tr -d ' ' || true; }
if [ -n "$(pkg_status)" ] && [ "$(pkg_status)" != "un" ]; then
    die "the package forgelet is installed already (dpkg status '$(pkg_status)'); purge it first: dpkg -P forgelet"
fi
getent passwd forgelet >/dev/null && die "a user forgelet exists already; this test creates and deletes its own, so it will not run here"
getent group forgelet >/dev/null && die "a group forgelet exists already; this test creates and deletes its own, so it will not run here"
getent passwd forgelet-ssh >/dev/null && die "a user forgelet-ssh exists already; this test creates and deletes its own, so it will not run here"
for p in /etc/forgelet /var/lib/forgelet /var/lib/forgelet-ssh /etc/systemd/system/forgelet.service /etc/systemd/system/forgelet.socket \
    /etc/systemd/system/timers.target.wants/forgelet-maintain.timer; do
    if [ -e "$p" ] || [ -L "$p" ]; then
        die "$p exists already; this test creates and deletes its own, so it will not run here"
    fi
done
getent group www-data >/dev/null || die "there is no group www-data (Debian's base-passwd has it)"

install_nginx_and_git || die "nginx and git are needed (see above)"
nginx=$(find_nginx)
[ -x "$nginx" ] || die "nginx not found at '$nginx'"
[ -f /etc/nginx/fastcgi_params ] || die "/etc/nginx/fastcgi_params is missing (Debian's nginx-common)"
# dpkg-shlibdeps (dpkg-dev) fills in $auto, the libraries in Depends; objcopy (binutils)
# splits off the debug symbols. Without them cargo-deb would make a different package.
if ! command -v dpkg-shlibdeps >/dev/null 2>&1 || ! command -v objcopy >/dev/null 2>&1; then
    say "installing dpkg-dev and binutils (dpkg-shlibdeps, objcopy)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=120 dpkg-dev binutils \
        || die "apt-get install dpkg-dev binutils failed"
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (https://rustup.rs)"
if ! cargo deb --version >/dev/null 2>&1; then
    say "installing cargo-deb (cargo install cargo-deb --locked; about a minute)"
    cargo install cargo-deb --locked --version '^3' || die "cargo install cargo-deb failed"
fi
cargo deb --version

# From here on, this test owns the package, the user forgelet and its folders: the checks
# above found none of them. The trap removes them whatever happens.
tmp=$(mktemp -d /tmp/forgelet-package-test.XXXXXX)
# nginx's workers (www-data) enter it for their temporary files.
chmod 0755 "$tmp"
forgelet_pid=
nginx_pid=
sshd_pid=
# alive_as USER: the processes of USER that are not zombies (exited, waiting to be reaped by
# whoever inherited them), one "PID STATE COMMAND" line each.
alive_as() {
    ps -u "$1" -o pid=,stat=,args= 2>/dev/null | awk '$2 !~ /^Z/' || true
}
stop_pid() {
    local pid=$1 _
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
# (Run from the trap, which shellcheck cannot see.)
# shellcheck disable=SC2317
cleanup() {
    local rc=$? pid
    set +e
    trap - EXIT INT TERM
    if [ "$rc" -ne 0 ]; then
        for log in "$tmp/forgelet.log" "$tmp/nginx/error.log" "$tmp/dpkg.out"; do
            [ -s "$log" ] || continue
            printf '\n-- last lines of %s\n' "$log" >&2
            tail -n 30 "$log" >&2
        done
    fi
    stop_pid "$nginx_pid"
    stop_pid "$forgelet_pid"
    stop_pid "$sshd_pid"
    if [ -n "$(pkg_status)" ] && [ "$(pkg_status)" != "un" ]; then
        dpkg_wait -P forgelet >/dev/null || printf 'package-test: cleanup: dpkg -P forgelet failed\n' >&2
    fi
    if getent passwd forgelet >/dev/null; then
        # Processes of the user forgelet can only be this test's (the user did not exist
        # before it): git children that outlived forgelet, say.
        for pid in $(pgrep -u forgelet); do
            kill -KILL "$pid" 2>/dev/null
        done
        # Zombies (exited, not reaped yet) keep the uid in use for userdel for a moment.
        for _ in $(seq 50); do
            [ -z "$(ps -u forgelet -o pid= 2>/dev/null)" ] && break
            sleep 0.1
        done
        userdel forgelet || printf 'package-test: cleanup: userdel forgelet failed\n' >&2
    fi
    getent group forgelet >/dev/null && groupdel forgelet
    if getent passwd forgelet-ssh >/dev/null; then
        userdel forgelet-ssh || printf 'package-test: cleanup: userdel forgelet-ssh failed\n' >&2
    fi
    getent group forgelet-ssh >/dev/null && groupdel forgelet-ssh
    rm -rf /var/lib/forgelet /var/lib/forgelet-ssh /etc/forgelet
    # What deb-systemd-helper keeps for the units, should the purge not have run.
    rm -f /var/lib/systemd/deb-systemd-helper-enabled/forgelet.service.dsh-also \
        /var/lib/systemd/deb-systemd-helper-enabled/forgelet.socket.dsh-also \
        /var/lib/systemd/deb-systemd-helper-masked/forgelet.service \
        /var/lib/systemd/deb-systemd-helper-masked/forgelet.socket \
        /var/lib/systemd/deb-systemd-helper-enabled/forgelet-maintain.timer.dsh-also \
        /var/lib/systemd/deb-systemd-helper-enabled/timers.target.wants/forgelet-maintain.timer \
        /var/lib/systemd/deb-systemd-helper-masked/forgelet-maintain.timer \
        /etc/systemd/system/timers.target.wants/forgelet-maintain.timer
    for unit in forgelet.service forgelet.socket forgelet-maintain.timer; do
        if [ "$(readlink "/etc/systemd/system/$unit")" = /dev/null ]; then
            rm -f "/etc/systemd/system/$unit"
        fi
    done
    rm -rf "$tmp"
    if [ "$rc" -eq 0 ]; then
        say "cleaned up (package purged; users, groups, /var/lib/forgelet, /var/lib/forgelet-ssh and /etc/forgelet removed)"
    else
        say "FAILED (exit status $rc); cleaned up all the same"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# dpkg ARGS..., its output shown and kept in $tmp/dpkg.out, waiting up to two minutes while
# another dpkg or apt holds the lock. stdin is closed: nothing may ask a question.
dpkg_wait() {
    local tries=0
    while :; do
        if dpkg "$@" </dev/null >"$tmp/dpkg.out" 2>&1; then
            cat "$tmp/dpkg.out"
            return 0
        fi
        if grep -qE 'frontend lock|database is locked|locked by another process' "$tmp/dpkg.out" &&
            [ "$tries" -lt 60 ]; then
            tries=$((tries + 1))
            sleep 2
            continue
        fi
        cat "$tmp/dpkg.out"
        return 1
    done
}

# --- 1. build: the README's two commands ----------------------------------------------------
phase "build: cargo build --release --locked && cargo deb --no-build"
cd "$src"
t=$SECONDS
cargo build --release --locked
say "cargo build --release: $((SECONDS - t)) s"
t=$SECONDS
cargo deb --no-build | tee "$tmp/cargo-deb.out"
say "cargo deb --no-build: $((SECONDS - t)) s"
# It prints the path of each file it made: the package, and the debug symbols' .ddeb.
deb=$(grep '/forgelet_[^/]*\.deb$' "$tmp/cargo-deb.out" | tail -n 1 || true)
[ -n "$deb" ] || die "cargo deb printed no forgelet_*.deb path"
[ -f "$deb" ] || die "cargo deb printed $deb, which does not exist"
say "package: $deb ($(du -k "$deb" | cut -f 1) KiB)"
version=$(dpkg-deb -f "$deb" Version)

# Debian's git from here on: the package's dependency, not /usr/local/bin's.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
hash -r
expect "git on PATH" "$(command -v git)" /usr/bin/git
git_version=$(git --version | awk '{ print $3 }')
dpkg --compare-versions "$git_version" ge 2.34 ||
    die "Debian's git is $git_version; forgelet needs 2.34 or newer (the package's Depends)"
say "git for the rest of the test: /usr/bin/git $git_version"
# The clients' git ignores root's own settings and never prompts.
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
export GIT_AUTHOR_NAME=Tester GIT_AUTHOR_EMAIL=tester@example.org
export GIT_COMMITTER_NAME=Tester GIT_COMMITTER_EMAIL=tester@example.org
# Admin commands read the installed config, never one named by the environment.
unset FORGELET_CONFIG
export DEBIAN_FRONTEND=noninteractive
# The checks run in a folder every user may enter.
cd "$tmp"

# What the package declares.
depends=$(dpkg-deb -f "$deb" Depends)
case ", $depends," in
    *", git (>= 1:2.34),"*) ;;
    *) die "Depends should hold 'git (>= 1:2.34)': $depends" ;;
esac
case ", $depends," in
    *", adduser,"* | *" adduser,"*) ;;
    *) die "Depends should hold adduser (the postinst runs it): $depends" ;;
esac
case $depends in
    *libc6*) ;;
    *) die "Depends has no libc6: \$auto (dpkg-shlibdeps) did not run: $depends" ;;
esac
say "Depends: $depends"
expect "conffiles" "$(dpkg-deb -I "$deb" conffiles | tr -d '\n')" /etc/forgelet/config.toml

# --- 2. install -----------------------------------------------------------------------------
phase "install: dpkg -i"
if ! dpkg_wait -i "$deb" | tee "$tmp/install.log"; then
    say "dpkg -i left dependencies to install: apt-get install -f"
    apt-get install -f -y -q -o DPkg::Lock::Timeout=120 </dev/null | tee -a "$tmp/install.log" ||
        die "apt-get install -f failed"
fi
expect "dpkg status after install" "$(pkg_status)" ii
# The next steps it prints are the README's, command for command.
sed -n '/^Nothing of the server is started: the package prints what to do next/,/^```$/p' "$src/README.md" |
    sed '1,3d;$d' >"$tmp/steps.readme"
[ -s "$tmp/steps.readme" ] || die "README.md no longer lists the next steps after 'Nothing of the server is started: ...'"
awk '/^forgelet is installed but not running/ { on = 1; next }
     on && /^    / { print substr($0, 5); got = 1; next }
     on && got { exit }' "$tmp/install.log" >"$tmp/steps.postinst"
diff -u "$tmp/steps.readme" "$tmp/steps.postinst" >&2 ||
    die "the next steps the postinst prints differ from the README's (above)"

# The user: a system user with its own group, home /var/lib/forgelet, a shell for forced
# commands, and `*` in the password field (locked for passwords, usable by OpenSSH).
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd forgelet) || die "no user forgelet after install"
[ "$uid" -lt 1000 ] || die "forgelet's uid $uid is not a system uid (below 1000)"
expect "forgelet's group" "$(getent group "$gid" | cut -d: -f1)" forgelet
expect "forgelet's home" "$home" /var/lib/forgelet
expect "forgelet's shell" "$shell" /bin/sh
expect "forgelet's password field" "$(getent shadow forgelet | cut -d: -f2)" '*'
say "user forgelet: uid $uid, group forgelet, home $home, shell $shell, password field *"

# sshd's key lookup account: a system user with no shell and no home, and the folder of the
# key index it reads, forgelet's and open to it.
IFS=: read -r _ _ ssh_uid _ _ ssh_home ssh_shell < <(getent passwd forgelet-ssh) ||
    die "no user forgelet-ssh after install"
[ "$ssh_uid" -lt 1000 ] || die "forgelet-ssh's uid $ssh_uid is not a system uid (below 1000)"
expect "forgelet-ssh's shell" "$ssh_shell" /usr/sbin/nologin
expect "forgelet-ssh's home" "$ssh_home" /nonexistent
expect "/var/lib/forgelet-ssh" "$(stat -c '%U:%G %a' /var/lib/forgelet-ssh)" "forgelet:forgelet 755"

# The folders: nginx's group may enter them (sendfile = "x-accel-redirect").
expect "/var/lib/forgelet" "$(stat -c '%U:%G %a' /var/lib/forgelet)" "forgelet:www-data 750"
expect "/var/lib/forgelet/repos" "$(stat -c '%U:%G %a' /var/lib/forgelet/repos)" "forgelet:www-data 2750"

# The files, where the README says they are.
expect "/usr/bin/forgelet" "$(stat -c '%U:%G %a' /usr/bin/forgelet)" "root:root 755"
must_exist /lib/systemd/system/forgelet.service /lib/systemd/system/forgelet.socket \
    /lib/systemd/system/forgelet-maintain.service /lib/systemd/system/forgelet-maintain.timer \
    /usr/share/forgelet/nginx/forgelet.conf /usr/share/forgelet/nginx/example-server.conf \
    /usr/share/forgelet/apache/forgelet-fcgi.conf /usr/share/forgelet/apache/forgelet-cgi.conf \
    /usr/share/forgelet/lighttpd/forgelet.conf /usr/share/forgelet/sshd/forgelet.conf \
    /etc/forgelet/config.toml /usr/share/doc/forgelet/README.md /usr/share/doc/forgelet/copyright
grep -qx 'ExecStart=/usr/bin/forgelet serve' /lib/systemd/system/forgelet.service ||
    die "forgelet.service does not start /usr/bin/forgelet serve"
grep -qx 'ExecStartPre=/usr/bin/forgelet check' /lib/systemd/system/forgelet.service ||
    die "forgelet.service does not check with /usr/bin/forgelet check"
grep -qx 'ExecStart=/usr/bin/forgelet maintain' /lib/systemd/system/forgelet-maintain.service ||
    die "forgelet-maintain.service does not run /usr/bin/forgelet maintain"
cmp -s /etc/forgelet/config.toml "$src/deploy/config.toml" || die "/etc/forgelet/config.toml differs from deploy/config.toml"
cmp -s /usr/share/forgelet/nginx/forgelet.conf "$src/nginx/forgelet.conf" ||
    die "/usr/share/forgelet/nginx/forgelet.conf differs from nginx/forgelet.conf"
cmp -s /usr/share/forgelet/sshd/forgelet.conf "$src/deploy/sshd/forgelet.conf" ||
    die "/usr/share/forgelet/sshd/forgelet.conf differs from deploy/sshd/forgelet.conf"
cmp -s /usr/share/doc/forgelet/README.md "$src/README.md" || die "/usr/share/doc/forgelet/README.md differs from README.md"
dpkg-query -W -f='${Conffiles}\n' forgelet | grep -q '^ /etc/forgelet/config.toml ' ||
    die "dpkg does not list /etc/forgelet/config.toml as a conffile"
# Installed, not enabled, not started; only the maintenance timer is enabled.
for wants in /etc/systemd/system/*.wants/forgelet*; do
    [ -e "$wants" ] || [ -L "$wants" ] || continue
    [ "$wants" = /etc/systemd/system/timers.target.wants/forgelet-maintain.timer ] && continue
    die "the package enabled a unit: $wants"
done
if [ -x /usr/bin/deb-systemd-helper ]; then
    expect "the maintenance timer's link" \
        "$(readlink /etc/systemd/system/timers.target.wants/forgelet-maintain.timer)" \
        /lib/systemd/system/forgelet-maintain.timer
fi
[ -z "$(pgrep -u forgelet || true)" ] || die "something runs as forgelet after install: $(pgrep -a -u forgelet)"
say "files in place; only the maintenance timer enabled, nothing started"

phase "forgelet check with the installed example config"
admin_check() {
    local rc=0
    runuser -u forgelet -- forgelet check >"$tmp/check.out" 2>&1 || rc=$?
    cat "$tmp/check.out"
    [ "$rc" -eq 0 ] || die "runuser -u forgelet -- forgelet check failed (status $rc)"
}
admin_check
grep -q '^/etc/forgelet/config.toml: ok (0 repositories in /var/lib/forgelet/repos)$' "$tmp/check.out" ||
    die "forgelet check did not accept the installed config"

# --- 3. serve a real clone through the installed binary ------------------------------------
phase "serve: push, smart clone (v2) and dumb clone through nginx and /usr/bin/forgelet"
password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$password" | runuser -u forgelet -- forgelet user add alice --password-stdin ||
    die "runuser -u forgelet -- forgelet user add alice failed"
runuser -u forgelet -- forgelet repo create alice/project --description "made by the package test" ||
    die "runuser -u forgelet -- forgelet repo create alice/project failed"

run=$tmp/run
# The socket's folder: forgelet makes the socket in it, nginx's workers reach it.
install -d -o forgelet -g www-data -m 0750 "$run"
socket=$run/forgelet.sock
# As forgelet.service runs it: user forgelet, supplementary group www-data (so the socket
# can be given to nginx's group, socket_group in the installed config), umask 0027, and an
# environment of its own.
# listening_lines: how many times forgelet's log says it listens on the socket.
listening_lines() {
    local n
    n=$(grep -c "serving on unix:$socket" "$tmp/forgelet.log" 2>/dev/null || true)
    printf '%s\n' "${n:-0}"
}
start_forgelet() {
    rm -f "$socket"
    local before
    before=$(listening_lines)
    (
        umask 0027
        exec setsid setpriv --reuid=forgelet --regid=forgelet --groups=www-data -- \
            env -i PATH=/usr/bin:/bin HOME=/var/lib/forgelet RUST_LOG=info \
            /usr/bin/forgelet serve --listen "unix:$socket"
    ) >>"$tmp/forgelet.log" 2>&1 &
    forgelet_pid=$!
    local _
    # Until forgelet listens: the socket file appears at bind(), and its mode and group are set
    # after that and before listen() (nobody can connect meanwhile), so a look at the file alone
    # could see it half made. forgelet logs "serving on" once it listens.
    for _ in $(seq 100); do
        [ "$(listening_lines)" -gt "$before" ] && break
        kill -0 "$forgelet_pid" 2>/dev/null || die "forgelet exited at start (see $tmp/forgelet.log below)"
        sleep 0.1
    done
    [ -S "$socket" ] || die "forgelet made no socket at $socket within 10 s"
    expect "the socket" "$(stat -c '%U:%G %a' "$socket")" "forgelet:www-data 660"
}
start_forgelet

# nginx with the snippet the package installed. Its four EDIT values: the socket is this
# test's; the base path, the repositories folder and the internal prefix are the installed
# config's, so they stay as shipped.
ngx=$tmp/nginx
mkdir -p "$ngx/temp" "$ngx/empty-root"
snippet=/usr/share/forgelet/nginx/forgelet.conf
for once in 'location ^~ /git/ {' 'unix:/run/forgelet/forgelet.sock;' \
    'alias /var/lib/forgelet/repos/;' 'location ^~ /.forgelet-repos/ {'; do
    expect "times $snippet names '$once'" "$(grep -cF -- "$once" "$snippet")" 1
done
grep -qx 'base_url = "http://localhost/git"' /etc/forgelet/config.toml ||
    die "the installed config's base_url no longer matches the snippet's location /git/"
sed "s#unix:/run/forgelet/forgelet.sock;#unix:$socket;#" "$snippet" >"$ngx/forgelet.conf"
cp /etc/nginx/fastcgi_params "$ngx/fastcgi_params"
temp_paths=
for module in client_body fastcgi proxy uwsgi scgi; do
    if [ "$module" != client_body ] && "$nginx" -V 2>&1 | grep -q -- "--without-http_${module}_module"; then
        continue
    fi
    temp_paths+="    ${module}_temp_path $ngx/temp/$module;"$'\n'
done
port=
for _ in $(seq 50); do
    candidate=$((20000 + RANDOM % 40000))
    if ! (: <>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
        port=$candidate
        break
    fi
done
[ -n "$port" ] || die "found no free port on 127.0.0.1"
cat >"$ngx/nginx.conf" <<EOF
# Written by deploy/package-test.sh. Workers run as www-data, as Debian's nginx does.
user www-data www-data;
daemon off;
master_process on;
worker_processes 1;
pid $ngx/nginx.pid;
error_log $ngx/error.log info;
events { worker_connections 64; }
http {
    access_log $ngx/access.log;
$temp_paths
    types { text/html html; }
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
env -u NGINX "$nginx" -t -q -p "$ngx/" -c "$ngx/nginx.conf" -e "$ngx/error.log" ||
    die "nginx rejected $ngx/nginx.conf (see above)"
setsid env -u NGINX "$nginx" -p "$ngx/" -c "$ngx/nginx.conf" -e "$ngx/error.log" &
nginx_pid=$!
for _ in $(seq 100); do
    (: <>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$nginx_pid" 2>/dev/null || die "nginx exited at start"
    sleep 0.1
done
url=http://127.0.0.1:$port/git/alice/project.git

# A work tree with two commits on main, a branch and a tag, pushed over HTTP.
work=$tmp/work
git init -q -b main "$work"
printf 'hello from the package test\n' >"$work/README.md"
git -C "$work" add README.md
git -C "$work" commit -q -m "first"
git -C "$work" tag -a v1 -m "version 1"
git -C "$work" branch feature
printf 'more\n' >>"$work/README.md"
git -C "$work" commit -q -am "second"
git -C "$work" push -q "http://alice:$password@127.0.0.1:$port/git/alice/project.git" main feature v1 ||
    die "git push through nginx failed"
git -C "$work" for-each-ref --format='%(objectname)%09%(refname)' refs/heads refs/tags >"$tmp/refs.want"
printf '%s\tHEAD\n' "$(git -C "$work" rev-parse main)" >>"$tmp/refs.want"
sort -o "$tmp/refs.want" "$tmp/refs.want"

# Clones through nginx and the installed binary, and their refs. v2 is what git 2.39 asks
# for; the trace shows it was negotiated. The dumb clone has nginx's workers read the
# repository's files themselves (X-Accel-Redirect), which the folders' group allows.
check_clone() { # NAME [ENV...]
    local name=$1 dir=$tmp/clone-$1
    shift
    rm -rf "$dir"
    env "$@" git clone -q "$url" "$dir" || die "$name clone of $url failed"
    # (Without the peeled tags, v1^{}, which for-each-ref does not list.)
    git -C "$dir" ls-remote "$url" 'refs/heads/*' 'refs/tags/*' HEAD >"$tmp/refs.$name.all" ||
        die "git ls-remote $url failed"
    grep -v '\^{}$' "$tmp/refs.$name.all" | sort >"$tmp/refs.$name"
    diff -u "$tmp/refs.want" "$tmp/refs.$name" >&2 || die "$name clone: the server's refs are not the pushed ones"
    expect "$name clone's main" "$(git -C "$dir" rev-parse HEAD)" "$(git -C "$work" rev-parse main)"
    cmp -s "$dir/README.md" "$work/README.md" || die "$name clone: README.md differs from the pushed one"
    git -C "$dir" fsck --no-progress >/dev/null || die "$name clone is corrupt"
}
check_clone smart GIT_TRACE_PACKET="$tmp/trace.smart"
grep -q 'clone< version 2' "$tmp/trace.smart" || die "the smart clone did not negotiate protocol v2"
check_clone dumb GIT_SMART_HTTP=0
# forgelet authorized them, nginx sent them from the repositories folder as www-data.
grep -qE '"GET /git/alice/project\.git/objects/[0-9a-f]{2}/[0-9a-f]{38} HTTP/1\.1" 200 ' "$ngx/access.log" ||
    die "the dumb clone got no object file from nginx (200)"
say "push, smart clone (protocol v2) and dumb clone: $(wc -l <"$tmp/refs.want") refs, as pushed"

# Git LFS through nginx and the installed binary, in a repository of its own: an object
# streamed up to forgelet (hashed as it arrives) and back down, sent by nginx from the
# repository's folder. git-lfs comes with the test's packages (deploy/test.sh).
command -v git-lfs >/dev/null 2>&1 || die "git-lfs is missing (apt-get install git-lfs)"
runuser -u forgelet -- forgelet repo create alice/media >/dev/null || die "forgelet repo create alice/media failed"
lfs_git() {
    git -c filter.lfs.process="git-lfs filter-process" -c filter.lfs.required=true \
        -c filter.lfs.clean="git-lfs clean -- %f" -c filter.lfs.smudge="git-lfs smudge -- %f" "$@"
}
lfs_url="http://alice:$password@127.0.0.1:$port/git/alice/media.git"
git init -q -b main "$tmp/lfs-work"
lfs_git -C "$tmp/lfs-work" lfs track '*.bin' >/dev/null
head -c 2097152 /dev/urandom >"$tmp/lfs-work/asset.bin"
lfs_git -C "$tmp/lfs-work" add .gitattributes asset.bin
lfs_git -C "$tmp/lfs-work" commit -q -m "an LFS file"
lfs_git -C "$tmp/lfs-work" push -q "$lfs_url" main || die "the Git LFS push through nginx failed"
oid=$(sha256sum "$tmp/lfs-work/asset.bin" | cut -d' ' -f1)
[ -f "/var/lib/forgelet/repos/alice/media.git/lfs/objects/${oid:0:2}/${oid:2:2}/$oid" ] ||
    die "the pushed LFS object is not in alice/media.git/lfs/objects"
lfs_git clone -q "$lfs_url" "$tmp/lfs-clone" || die "the Git LFS clone through nginx failed"
cmp -s "$tmp/lfs-clone/asset.bin" "$tmp/lfs-work/asset.bin" || die "the LFS clone's asset.bin differs from the pushed one"
grep -qE '"GET /git/alice/media\.git/info/lfs/objects/[0-9a-f]{64} HTTP/1\.1" 200 ' "$ngx/access.log" ||
    die "nginx sent no LFS object (200)"
say "Git LFS: a 2 MiB object pushed and cloned through nginx, sent by nginx"

# What the timer's service runs, as its user: the repository repacked with a bitmap, and
# served the same.
runuser -u forgelet -- forgelet maintain >"$tmp/maintain.out" 2>&1 || {
    cat "$tmp/maintain.out" >&2
    die "runuser -u forgelet -- forgelet maintain failed"
}
grep -q '^alice/project: done$' "$tmp/maintain.out" || die "forgelet maintain did not maintain alice/project"
ls /var/lib/forgelet/repos/alice/project.git/objects/pack/multi-pack-index-*.bitmap >/dev/null ||
    die "forgelet maintain wrote no bitmap"
check_clone smart-maintained
check_clone dumb-maintained GIT_SMART_HTTP=0
say "forgelet maintain: bitmap written; smart and dumb clones the same"

# --- 3b. git over SSH, through the package's own files ---------------------------------------
# sshd (on a port of its own) includes the snippet the package installed, unchanged: it names
# /usr/bin/forgelet, /etc/forgelet/config.toml, the account forgelet and the lookup's account
# forgelet-ssh, which is what this install has. Only [ssh] host and port are added to the config.
phase "git over SSH: sshd with /usr/share/forgelet/sshd/forgelet.conf as shipped"
install_debs openssh-server openssh-client || die "OpenSSH is needed for the SSH phase (see above)"
mkdir -p /run/sshd
sshdir=$tmp/ssh
mkdir -p "$sshdir"
sshport=
for _ in $(seq 50); do
    candidate=$((20000 + RANDOM % 40000))
    if [ "$candidate" != "$port" ] && ! (: <>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
        sshport=$candidate
        break
    fi
done
[ -n "$sshport" ] || die "found no free port on 127.0.0.1 for sshd"
printf '\n[ssh]\nhost = "127.0.0.1"\nport = %s\n' "$sshport" >>/etc/forgelet/config.toml
admin_check
ssh-keygen -q -t ed25519 -N '' -C alice -f "$sshdir/alice" || die "ssh-keygen failed"
runuser -u forgelet -- forgelet key add alice --name laptop - <"$sshdir/alice.pub" ||
    die "runuser -u forgelet -- forgelet key add alice failed"
expect "the key index" "$(stat -c '%U %a' /var/lib/forgelet-ssh/keys)" "forgelet 644"
ssh-keygen -q -t ed25519 -N '' -f "$sshdir/host" || die "ssh-keygen (host key) failed"
cat >"$sshdir/sshd_config" <<EOF
Include /usr/share/forgelet/sshd/forgelet.conf
Port $sshport
ListenAddress 127.0.0.1
HostKey $sshdir/host
PidFile none
UsePAM yes
EOF
/usr/sbin/sshd -t -f "$sshdir/sshd_config" || die "sshd rejects the shipped snippet (see above)"
setsid /usr/sbin/sshd -D -e -f "$sshdir/sshd_config" 2>"$sshdir/sshd.log" &
sshd_pid=$!
for _ in $(seq 100); do
    (: <>"/dev/tcp/127.0.0.1/$sshport") 2>/dev/null && break
    kill -0 "$sshd_pid" 2>/dev/null || die "sshd exited at start: $(cat "$sshdir/sshd.log")"
    sleep 0.1
done
export GIT_SSH_COMMAND="ssh -F /dev/null -i $sshdir/alice -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes -o UserKnownHostsFile=$sshdir/known_hosts -o StrictHostKeyChecking=accept-new -p $sshport"
ssh_url=ssh://forgelet@127.0.0.1:$sshport/alice/project.git
rm -rf "$tmp/clone-ssh"
git clone -q "$ssh_url" "$tmp/clone-ssh" || die "git clone $ssh_url failed (sshd's log: $(cat "$sshdir/sshd.log"))"
git -C "$tmp/clone-ssh" ls-remote "$ssh_url" 'refs/heads/*' 'refs/tags/*' HEAD | grep -v '\^{}$' | sort >"$tmp/refs.ssh"
diff -u "$tmp/refs.want" "$tmp/refs.ssh" >&2 || die "the SSH clone's refs are not the pushed ones"
git -C "$tmp/clone-ssh" fsck --no-progress >/dev/null || die "the SSH clone is corrupt"
greeting=$($GIT_SSH_COMMAND forgelet@127.0.0.1 2>&1 || true)
case $greeting in
*"Hi alice! You've authenticated, but forgelet does not provide shell access."*) ;;
*) die "ssh forgelet@host did not greet alice: $greeting" ;;
esac
unset GIT_SSH_COMMAND
stop_pid "$sshd_pid"
sshd_pid=
# sshd's processes for the sessions ran as forgelet; once sshd is stopped they are gone, or
# exited and not reaped yet by whoever inherited them (a zombie runs nothing).
sessions_left() { alive_as forgelet | awk '$3 ~ /sshd|git|ssh-serve/' || true; }
for _ in $(seq 100); do
    [ -z "$(sessions_left)" ] && break
    sleep 0.1
done
[ -z "$(sessions_left)" ] || die "processes of the SSH sessions outlived sshd: $(sessions_left)"
say "SSH: the key added as forgelet, looked up by forgelet-ssh, and a clone with the pushed refs"

# --- 4. upgrade over itself ------------------------------------------------------------------
phase "upgrade over itself: dpkg -i again"
printf '\n# A sysadmin'"'"'s edit, which the upgrade must keep.\n' >>/etc/forgelet/config.toml
# The config, users, secret, and every file of the repositories (but the ref lists forgelet
# regenerates for nginx).
sums() {
    {
        printf '%s\n' /etc/forgelet/config.toml /var/lib/forgelet/users.toml /var/lib/forgelet/secret
        find /var/lib/forgelet/repos -type f ! -path '*/forgelet-cache/*'
    } | sort | xargs -d '\n' sha256sum
}
sums >"$tmp/sums.before"
dpkg_wait -i "$deb" | tee "$tmp/upgrade.log" || die "dpkg -i over the installed package failed"
expect "dpkg status after the upgrade" "$(pkg_status)" ii
grep -q "forgelet: upgraded from $version" "$tmp/upgrade.log" || die "the postinst did not say it upgraded"
expect "forgelet's uid after the upgrade" "$(id -u forgelet)" "$uid"
expect "forgelet's password field after the upgrade" "$(getent shadow forgelet | cut -d: -f2)" '*'
sums >"$tmp/sums.after"
diff -u "$tmp/sums.before" "$tmp/sums.after" >&2 || die "the upgrade changed the config or the data"
must_not_exist /etc/forgelet/config.toml.dpkg-dist /etc/forgelet/config.toml.dpkg-new
expect "/var/lib/forgelet after the upgrade" "$(stat -c '%U:%G %a' /var/lib/forgelet)" "forgelet:www-data 750"
# As `systemctl try-restart` does for the unit: the new binary serves.
stop_pid "$forgelet_pid"
start_forgelet
check_clone smart-upgraded
say "user, data and the edited conffile kept; the upgraded binary serves the same refs"

# --- 5. remove, then purge ----------------------------------------------------------------------
phase "dpkg -r: config, data and user kept"
# As the prerm stops forgelet.service.
stop_pid "$forgelet_pid"
forgelet_pid=
stop_pid "$nginx_pid"
nginx_pid=
[ -z "$(alive_as forgelet)" ] || die "processes of forgelet outlived it: $(alive_as forgelet)"
dpkg_wait -r forgelet || die "dpkg -r forgelet failed"
expect "dpkg status after remove" "$(pkg_status)" rc
must_not_exist /usr/bin/forgelet /lib/systemd/system/forgelet.service /usr/share/forgelet
must_exist /etc/forgelet/config.toml /var/lib/forgelet/users.toml /var/lib/forgelet/repos/alice/project.git
grep -q "A sysadmin's edit" /etc/forgelet/config.toml || die "dpkg -r changed /etc/forgelet/config.toml"
expect "forgelet's uid after remove" "$(id -u forgelet)" "$uid"

phase "dpkg -P: /etc/forgelet deleted, the data kept and said"
dpkg_wait -P forgelet | tee "$tmp/purge.log" || die "dpkg -P forgelet failed"
case $(pkg_status) in
    "" | un) ;;
    *) die "dpkg status after purge: '$(pkg_status)', not gone" ;;
esac
must_not_exist /etc/forgelet /var/lib/forgelet-ssh
must_exist /var/lib/forgelet/users.toml /var/lib/forgelet/secret /var/lib/forgelet/repos/alice/project.git
grep -q '^forgelet: kept /var/lib/forgelet (the repositories' "$tmp/purge.log" ||
    die "the purge did not say on stdout that /var/lib/forgelet was kept"
expect "forgelet's uid after purge" "$(id -u forgelet)" "$uid"
# What deb-systemd-helper recorded for the units is gone with the package.
must_not_exist /etc/systemd/system/forgelet.service /etc/systemd/system/forgelet.socket \
    /etc/systemd/system/timers.target.wants/forgelet-maintain.timer \
    /var/lib/systemd/deb-systemd-helper-enabled/forgelet.service.dsh-also \
    /var/lib/systemd/deb-systemd-helper-masked/forgelet.service

# --- 6. the README's install command, over the kept data ------------------------------------
phase "the README's apt install, over the kept user and data"
apt install -y -q -o DPkg::Lock::Timeout=120 -o Dpkg::Use-Pty=0 "$deb" </dev/null 2>&1 | tee "$tmp/apt.log" ||
    die "apt install $deb failed"
grep -q '^forgelet is installed but not running' "$tmp/apt.log" ||
    die "the postinst did not print the next steps on a new install over kept data"
expect "dpkg status after apt install" "$(pkg_status)" ii
expect "forgelet's uid after reinstall" "$(id -u forgelet)" "$uid"
cmp -s /etc/forgelet/config.toml "$src/deploy/config.toml" || die "the reinstalled /etc/forgelet/config.toml is not the example"
admin_check
grep -q '^/etc/forgelet/config.toml: ok (2 repositories in /var/lib/forgelet/repos)$' "$tmp/check.out" ||
    die "forgelet check does not find the two kept repositories after the reinstall"

phase "done"
printf '\ntimings:\n'
printf '  %s\n' "${timings[@]}"
say "all package checks passed in $((SECONDS - started)) s ($(du -k "$deb" | cut -f 1) KiB package)"
