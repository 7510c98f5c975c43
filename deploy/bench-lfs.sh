#!/usr/bin/env bash
# bench-lfs.sh: part L of forgelet's benchmarks (deploy/bench.sh runs it at the end of a full run,
# and alone with BENCH_ONLY=lfs). A benchmark, not a test: it prints figures and a verdict, and
# exits 0 whenever the measurements themselves worked.
#
#   L. Git LFS download of one large object (2 GiB by default) through nginx, three ways, the
#      rounds interleaved (one untimed warm-up round first, so every way reads from the page cache):
#        forgelet + nginx  the batch API's download action (its signed header), forgelet
#                          authorizes the GET and nginx sends the file (X-Accel-Redirect);
#        static            nginx sending the same file (a hard link of it) as a plain static file;
#        streamed          a second forgelet process on the same data with sendfile = "none",
#                          streaming the file itself.
#      Goal: forgelet + nginx at most 1.05x static (medians). Streamed/static is reported.
#      Each download's size and (on the warm-up) SHA-256 are checked.
#
# Environment (optional):
#   BENCH_BIN         a forgelet binary to measure instead of building this checkout
#   BENCH_LFS_MIB     the object's size in MiB (default 2048); the object is made once from
#                     /dev/urandom and kept under target/bench/
#   BENCH_LFS_ROUNDS  timed rounds (default 10)
#   BENCH_KEEP        1 keeps the run folder (configs, logs)
#   NGINX_BIN         nginx binary (default: /usr/sbin/nginx, else the one in PATH)
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$script_dir/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
case $target_dir in /*) ;; *) target_dir=$root/$target_dir ;; esac
bench_dir=$target_dir/bench
mib=${BENCH_LFS_MIB:-2048}
rounds=${BENCH_LFS_ROUNDS:-10}
goal=1.05

die() {
    printf 'bench-lfs.sh: %s\n' "$*" >&2
    exit 1
}
say() {
    printf '== %s\n' "$*"
}
[[ $mib =~ ^[1-9][0-9]*$ ]] || die "BENCH_LFS_MIB must be a positive whole number, not '$mib'"
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "BENCH_LFS_ROUNDS must be a positive whole number, not '$rounds'"

# shellcheck source=deploy/lib.sh
. "$script_dir/lib.sh"
install_nginx_and_git || die "nginx and git are needed (see above)"
nginx_bin=$(find_nginx)
[ -x "$nginx_bin" ] || die "nginx not found"
fastcgi_params=/etc/nginx/fastcgi_params
[ -f "$fastcgi_params" ] || fastcgi_params=$(dirname "$nginx_bin")/../conf/fastcgi_params
[ -f "$fastcgi_params" ] || die "no fastcgi_params beside nginx"
for tool in curl python3 sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is needed"
done

if [ -n "${BENCH_BIN:-}" ]; then
    bin=$BENCH_BIN
else
    say "cargo build --release --locked"
    (cd "$root" && cargo build --release --locked -q)
    bin=$target_dir/release/forgelet
fi
[ -x "$bin" ] || die "no forgelet binary at $bin"

mkdir -p "$bench_dir"
object=$bench_dir/lfs-object-$mib.bin
if [ ! -f "$object" ] || [ ! -f "$object.sha256" ]; then
    say "making a $mib MiB object (random bytes, kept as $object)"
    head -c "$((mib << 20))" /dev/urandom >"$object.tmp"
    sha256sum "$object.tmp" | cut -d' ' -f1 >"$object.sha256.tmp"
    mv "$object.tmp" "$object"
    mv "$object.sha256.tmp" "$object.sha256"
fi
oid=$(cat "$object.sha256")
size=$(stat -c %s "$object")

run=$(mktemp -d "$bench_dir/lfs-run.XXXXXX")
chmod 0755 "$run"
pids=()
cleanup() {
    local rc=$? p
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ "$rc" -eq 0 ] && [ "${BENCH_KEEP:-0}" != 1 ]; then
        rm -rf "$run"
    else
        printf 'bench-lfs.sh: run folder kept: %s\n' "$run" >&2
    fi
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$run/nginx/temp" "$run/static" "$run/empty-root"
# Two forgelet processes on one data directory: the one nginx sends files for, and one that
# streams them itself.
for way in accel none; do
    handoff=x-accel-redirect path=/git
    if [ "$way" = none ]; then handoff=none path=/git-none; fi
    cat >"$run/config-$way.toml" <<EOF
data_dir = "$run/data"
base_url = "http://127.0.0.1:$port$path"
sendfile = "$handoff"
internal_prefix = "/.forgelet-repos"

[server]
listen = "unix:$run/forgelet-$way.sock"
EOF
done
password=$(head -c 48 /dev/urandom | base64 -w 0 | tr -dc 'A-Za-z0-9' | head -c 24)
printf '%s\n' "$password" | "$bin" --config "$run/config-accel.toml" user add bench --password-stdin >/dev/null
"$bin" --config "$run/config-accel.toml" repo create bench/lfs >/dev/null
# The object as an upload would leave it, and the static copy: hard links of one file (one page
# cache for all three ways), else copies.
dest=$run/data/repos/bench/lfs.git/lfs/objects/${oid:0:2}/${oid:2:2}
mkdir -p "$dest"
ln "$object" "$dest/$oid" 2>/dev/null || cp "$object" "$dest/$oid"
ln "$object" "$run/static/object.bin" 2>/dev/null || cp "$object" "$run/static/object.bin"

snippet=$root/nginx/forgelet.conf
sed -e "s|unix:/run/forgelet/forgelet.sock;|unix:$run/forgelet-accel.sock;|" \
    -e "s|alias /var/lib/forgelet/repos/;|alias $run/data/repos/;|" \
    "$snippet" >"$run/nginx/forgelet.conf"
cp "$fastcgi_params" "$run/nginx/fastcgi_params"
user=
if [ "$(id -u)" -eq 0 ]; then user='user root root;'; fi
cat >"$run/nginx/nginx.conf" <<EOF
$user
daemon off;
worker_processes 1;
pid $run/nginx/nginx.pid;
error_log $run/nginx/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $run/nginx/temp/body;
    proxy_temp_path $run/nginx/temp/proxy;
    fastcgi_temp_path $run/nginx/temp/fastcgi;
    uwsgi_temp_path $run/nginx/temp/uwsgi;
    scgi_temp_path $run/nginx/temp/scgi;
    types { }
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    server {
        listen 127.0.0.1:$port;
        server_name localhost;
        root $run/empty-root;
        include $run/nginx/forgelet.conf;
        location /static/ {
            alias $run/static/;
        }
        # The second forgelet, streaming files itself (nginx passes its answer on unbuffered).
        location ^~ /git-none/ {
            fastcgi_pass unix:$run/forgelet-none.sock;
            include fastcgi_params;
            fastcgi_buffering off;
            fastcgi_read_timeout 300s;
        }
    }
}
EOF
for way in accel none; do
    "$bin" --config "$run/config-$way.toml" serve >"$run/forgelet-$way.log" 2>&1 &
    pids+=($!)
done
"$nginx_bin" -p "$run/nginx/" -c "$run/nginx/nginx.conf" -e "$run/nginx/error.log" &
pids+=($!)
for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && [ -S "$run/forgelet-accel.sock" ] &&
        [ -S "$run/forgelet-none.sock" ]; then
        break
    fi
    sleep 0.1
done

# The download action of the batch API at PATH: "URL<TAB>Authorization".
action() {
    curl -sS -u "bench:$password" -H 'Content-Type: application/vnd.git-lfs+json' \
        -d "{\"operation\":\"download\",\"transfers\":[\"basic\"],\"objects\":[{\"oid\":\"$oid\",\"size\":$size}]}" \
        "http://127.0.0.1:$port$1/bench/lfs.git/info/lfs/objects/batch" |
        python3 -c '
import json, sys
a = json.load(sys.stdin)["objects"][0]["actions"]["download"]
print(a["href"] + "\t" + a["header"]["Authorization"])'
}
# get WAY: downloads the object one way; prints the seconds (and checks the size).
get() {
    local url auth=() out
    case $1 in
        forgelet) IFS=$'\t' read -r url header <<<"$(action /git)" && auth=(-H "Authorization: $header") ;;
        streamed) IFS=$'\t' read -r url header <<<"$(action /git-none)" && auth=(-H "Authorization: $header") ;;
        static) url=http://127.0.0.1:$port/static/object.bin ;;
    esac
    out=$(curl -sS -o "${2:-/dev/null}" -w '%{http_code} %{size_download} %{time_total}' "${auth[@]}" "$url") ||
        die "$1: curl failed"
    read -r code got secs <<<"$out"
    [ "$code" = 200 ] || die "$1: GET $url answered $code"
    [ "$got" = "$size" ] || die "$1: got $got bytes, not $size"
    printf '%s\n' "$secs"
}
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR % 2) printf "%.4f\n", v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

say "L. Git LFS: a $mib MiB object, $rounds rounds: forgelet + nginx (X-Accel-Redirect), nginx static, forgelet streaming"
# Warm-up: every way once, forgelet's answer checked byte for byte.
get forgelet "$run/warm.bin" >/dev/null
[ "$(sha256sum "$run/warm.bin" | cut -d' ' -f1)" = "$oid" ] || die "forgelet sent other bytes than the object's"
rm -f "$run/warm.bin"
get static >/dev/null
get streamed >/dev/null
f=() s=() n=()
ways=(forgelet static streamed)
for ((r = 0; r < rounds; r++)); do
    for ((i = 0; i < 3; i++)); do
        way=${ways[(r + i) % 3]}
        t=$(get "$way")
        case $way in forgelet) f+=("$t") ;; static) s+=("$t") ;; streamed) n+=("$t") ;; esac
    done
    printf '  %-3s forgelet+nginx %7.3fs   static %7.3fs   streamed %7.3fs\n' "$((r + 1))" "${f[r]}" "${s[r]}" "${n[r]}"
done
mf=$(median "${f[@]}") ms=$(median "${s[@]}") mn=$(median "${n[@]}")
ratio=$(awk -v a="$mf" -v b="$ms" 'BEGIN { printf "%.3f", a / b }')
streamed=$(awk -v a="$mn" -v b="$ms" 'BEGIN { printf "%.3f", a / b }')
verdict=$(awk -v r="$ratio" -v g="$goal" 'BEGIN { print (r <= g) ? "PASS (goal: at most " g ")" : "ABOVE GOAL (goal: at most " g ")" }')
printf '\nmedians: forgelet+nginx %ss, static %ss, streamed %ss (%s MiB, %s)\n' "$mf" "$ms" "$mn" "$mib" "$("$nginx_bin" -v 2>&1 | sed 's|.*/||')"
printf '%-48s %6s  %s\n' "L. LFS download, forgelet+nginx/static" "$ratio" "$verdict"
printf '%-48s %6s  %s\n' "L. LFS download, forgelet streaming/static" "$streamed" "reported"
