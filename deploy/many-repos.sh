#!/usr/bin/env bash
# many-repos.sh: times the front page, the dashboard (the signed-in front page) and an owner page
# of a site with many small repositories, served by forgelet over FastCGI behind nginx.
#
#   deploy/many-repos.sh [COUNT] [BIN]
#
# COUNT repositories (default 10000) are copies (`cp -a`) of one small bare repository, spread over
# min(100, COUNT) owners as owner000/repo00000.git ...; every seventh is private
# (`[forgelet] visibility = private`) and every eleventh names the next owner a read collaborator.
# Each owner is a user (the same password), plus `siteadmin` (a site admin). The site is made once
# under target/many-repos/COUNT and reused. Then forgelet serve and nginx start on a free port,
# owner000 signs in, and each page is fetched with ab (BENCH_REQUESTS requests, default 200, one at
# a time after 5 untimed ones). Prints the mean time per request of each page, and forgelet's CPU
# time per request.
set -euo pipefail

count=${1:-10000}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${2:-$root/target/release/forgelet}
requests=${BENCH_REQUESTS:-200}
dir=$root/target/many-repos/$count
command -v ab >/dev/null || { echo "many-repos: needs ab (apache2-utils)" >&2; exit 1; }
nginx=$(command -v nginx || echo /usr/sbin/nginx)
owners=$((count < 100 ? count : 100))
password=many-repos-password-1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$dir"
config=$dir/config.toml
socket=$dir/forgelet.sock

cat >"$config" <<EOF
data_dir = "$dir/data"
base_url = "http://127.0.0.1:$port/git"
sendfile = "x-accel-redirect"
internal_prefix = "/.forgelet-repos"

[server]
listen = "unix:$socket"
EOF

if [ ! -e "$dir/data/.made" ]; then
    rm -rf "$dir/data" "$dir/seed"
    mkdir -p "$dir/data/repos"
    # The seed: one commit with a README.
    git init -q "$dir/seed/work"
    printf 'hello\n' >"$dir/seed/work/README.md"
    git -C "$dir/seed/work" add README.md
    GIT_AUTHOR_DATE='2026-01-01T00:00:00Z' GIT_COMMITTER_DATE='2026-01-01T00:00:00Z' \
        git -C "$dir/seed/work" -c user.name=seed -c user.email=seed@example.com commit -q -m seed
    git clone -q --bare "$dir/seed/work" "$dir/seed/seed.git"
    git -C "$dir/seed/seed.git" symbolic-ref HEAD "refs/heads/$(git -C "$dir/seed/work" branch --show-current)"
    rm -rf "$dir/seed/seed.git/hooks"
    for ((i = 0; i < count; i++)); do
        o=$((i % owners))
        d=$(printf '%s/data/repos/owner%03d/repo%05d.git' "$dir" "$o" "$i")
        mkdir -p "$(dirname "$d")"
        cp -a "$dir/seed/seed.git" "$d"
        if ((i % 7 == 0)); then
            printf '[forgelet]\n\tvisibility = private\n' >>"$d/config"
        fi
        if ((i % 11 == 0)); then
            printf '[forgelet]\n\tcollaborator = owner%03d read\n' $(((o + 1) % owners)) >>"$d/config"
        fi
        printf 'repository number %d\n' "$i" >"$d/description"
    done
    touch "$dir/data/.made"
fi
[ "${MAKE_ONLY:-}" = 1 ] && exit 0
[ -x "$bin" ] || { echo "many-repos: no binary $bin (cargo build --release)" >&2; exit 1; }
if [ ! -e "$dir/data/users.toml" ]; then
    # Users: one password hash for all (argon2 once).
    printf '%s\n' "$password" | "$bin" --config "$config" user add owner000 --password-stdin >/dev/null
    hash=$(sed -n 's/^password = "\(.*\)"$/\1/p' "$dir/data/users.toml" | head -1)
    {
        sed -n '1,/^\[\[user\]\]/p' "$dir/data/users.toml" | sed '$d'
        for ((o = 0; o < owners; o++)); do
            printf '[[user]]\nname = "owner%03d"\npassword = "%s"\nstamp = "s%d"\n\n' "$o" "$hash" "$o"
        done
        printf '[[user]]\nname = "siteadmin"\npassword = "%s"\nadmin = true\nstamp = "sa"\n' "$hash"
    } >"$dir/data/users.toml.new"
    mv "$dir/data/users.toml.new" "$dir/data/users.toml"
    chmod 600 "$dir/data/users.toml"
fi


mkdir -p "$dir/nginx/temp" "$dir/empty-root"
cp /etc/nginx/fastcgi_params "$dir/nginx/"
sed -e "s#unix:/run/forgelet/forgelet.sock#unix:$socket#" \
    -e "s#/var/lib/forgelet/repos/#$dir/data/repos/#" "$root/nginx/forgelet.conf" >"$dir/nginx/forgelet.conf"
cat >"$dir/nginx/nginx.conf" <<EOF
$([ "$(id -u)" -eq 0 ] && echo 'user root root;')
daemon off;
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/nginx/temp/body;
    proxy_temp_path $dir/nginx/temp/proxy;
    fastcgi_temp_path $dir/nginx/temp/fastcgi;
    uwsgi_temp_path $dir/nginx/temp/uwsgi;
    scgi_temp_path $dir/nginx/temp/scgi;
    server {
        listen 127.0.0.1:$port;
        root $dir/empty-root;
        include $dir/nginx/forgelet.conf;
    }
}
EOF
rm -f "$socket"
RUST_LOG=warn "$bin" --config "$config" serve </dev/null >"$dir/forgelet.log" 2>&1 &
fpid=$!
"$nginx" -c "$dir/nginx/nginx.conf" -p "$dir/nginx" &
npid=$!
trap 'kill $fpid $npid 2>/dev/null; wait 2>/dev/null' EXIT
for _ in $(seq 100); do
    [ -S "$socket" ] && curl -s -o /dev/null "http://127.0.0.1:$port/git/" && break
    sleep 0.1
done

base=http://127.0.0.1:$port/git
jar=$dir/cookies
rm -f "$jar"
csrf=$(curl -s -c "$jar" -b "$jar" "$base/-/login" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -1)
curl -s -o /dev/null -c "$jar" -b "$jar" --data-urlencode "csrf=$csrf" --data-urlencode user=owner000 \
    --data-urlencode "password=$password" --data-urlencode "next=/git/" "$base/-/login"
session=$(awk '$6 == "forgelet_session" { print $7 }' "$jar")
[ -n "$session" ] || { echo "many-repos: sign-in failed" >&2; exit 1; }

# forgelet's CPU time so far (user and system, in clock ticks): on a machine shared with other
# work the time per request varies with the load, the CPU time much less.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$fpid/stat"
}

time_page() {
    local what=$1 url=$2
    shift 2
    local status
    status=$(curl -s -o "$dir/last.html" -w '%{http_code}' "$@" "$url")
    [ "$status" = 200 ] || { echo "many-repos: $what: HTTP $status" >&2; exit 1; }
    ab -q -n 5 "${@/#-b/-C}" "$url" >/dev/null 2>&1 || true
    local ms cpu0 cpu1
    cpu0=$(cpu_ticks)
    ms=$(ab -q -n "$requests" "${@/#-b/-C}" "$url" 2>/dev/null | awk '/Time per request:.*\(mean\)$/ { print $4 }')
    cpu1=$(cpu_ticks)
    printf '%-12s %8s ms/request  %6s ms CPU/request  (%s bytes)  %s\n' "$what" "$ms" \
        "$(awk -v t=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" -v n="$requests" 'BEGIN { printf "%.3f", t * 1000 / hz / n }')" \
        "$(wc -c <"$dir/last.html")" "$url"
}

echo "$count repositories, $owners owners"
time_page front "$base/"
time_page dashboard "$base/" -b "forgelet_session=$session"
time_page owner "$base/owner001"
