#!/usr/bin/env bash
# bench.sh: how fast a dumb-HTTP clone through forgelet is, next to nginx serving the very same
# bare repository as plain static files. A benchmark, not a test: it prints figures and a verdict
# against the goal (forgelet's median at most 5% above static nginx's) and exits 0 whenever the
# measurement itself worked, whatever the verdict.
#
# What it does:
#   1. cargo build --release --locked
#   2. generates a deterministic repository (fixed names, dates and a seeded generator fed to
#      `git fast-import`), fully packed, cached under target/bench/ so later runs reuse it
#   3. starts one nginx (own config in a temporary folder under target/bench/) that serves
#        /git/     forgelet over FastCGI (the shipped nginx/forgelet.conf, X-Accel-Redirect)
#        /static/  a copy of the same bare repository as plain files (after update-server-info)
#   4. times `git clone --bare` over the dumb protocol from each, alternating, after one
#      untimed warm-up round, and checks every clone (refs; fsck once). Prints each round, the
#      medians and their ratio with the verdict, and from git's curl trace the requests per clone
#      and the HTTP phase (first request to last response: the server's share of the clone)
#   5. stops what it started on exit; keeps the cached repository
#
# Environment (optional):
#   BENCH_SIZE     medium (default: ~3000 commits, ~35 MB packed) or small (~300 commits, ~4 MB)
#   BENCH_ROUNDS   timed rounds (default 7), after one warm-up round
#   BENCH_KEEP     1 keeps the run folder (configs, logs) after a successful run
#   NGINX_BIN      nginx binary (default: /usr/sbin/nginx, else the one in PATH)
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$script_dir/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
case $target_dir in /*) ;; *) target_dir=$root/$target_dir ;; esac
bench_dir=$target_dir/bench

size=${BENCH_SIZE:-medium}
rounds=${BENCH_ROUNDS:-7}
goal=1.05

die() {
    printf 'bench.sh: %s\n' "$*" >&2
    exit 1
}
say() {
    printf '== %s\n' "$*"
}

case $size in
    medium) commits=3000 bin_every=40 bin_size=409600 ;;
    small) commits=300 bin_every=40 bin_size=409600 ;;
    *) die "BENCH_SIZE must be medium or small, not '$size'" ;;
esac
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive whole number, not '$rounds'"

# git must never read the user's or the system's settings: the generated repository and the
# clones are the same on every machine.
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_TERMINAL_PROMPT=0
unset GIT_DIR GIT_WORK_TREE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
unset GIT_TRACE GIT_TRACE_CURL GIT_TRACE_PACKET GIT_CURL_VERBOSE
# Every request goes to 127.0.0.1, never through a proxy.
unset http_proxy https_proxy all_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY
export no_proxy='*' NO_PROXY='*'

# --- tools ---------------------------------------------------------------------------------------
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
install_nginx_and_git || die "nginx and git are needed (see above)"
nginx_bin=$(find_nginx)
if [ -z "$nginx_bin" ] || [ ! -x "$nginx_bin" ]; then
    die "nginx not found; install it (Debian: apt-get install -y nginx-light) or set NGINX_BIN"
fi
command -v git >/dev/null 2>&1 || die "git not found"
[ -x "$(git --exec-path)/git-remote-http" ] || die "this git cannot clone over HTTP (no git-remote-http)"
command -v perl >/dev/null 2>&1 || die "perl not found (it generates the benchmark repository)"
perl -MConfig -e 'exit($Config{uvsize} >= 8 ? 0 : 1)' || die "perl with 64-bit integers needed"
command -v cargo >/dev/null 2>&1 || die "cargo not found"
fastcgi_params=/etc/nginx/fastcgi_params
[ -f "$fastcgi_params" ] || fastcgi_params=$(dirname "$nginx_bin")/../conf/fastcgi_params
[ -f "$fastcgi_params" ] || die "cannot find nginx's fastcgi_params"

# --- 1. build ------------------------------------------------------------------------------------
say "cargo build --release --locked"
(cd "$root" && cargo build --release --locked) || die "cargo build --release failed"
bin=$target_dir/release/forgelet
[ -x "$bin" ] || die "no binary at $bin after the build"

# --- 2. the repository ---------------------------------------------------------------------------
# The generator: a fast-import stream from a seeded xorshift64 generator, so the same arguments
# give the same commits (same object ids) on every machine and every run.
#   main:           COMMITS commits; the first adds 300 text files in 20 folders, each later one
#                   edits two of them (a few lines replaced and inserted), and every BIN_EVERY-th
#                   also writes a BIN_SIZE binary of random bytes (incompressible, 48 slots reused)
#   release/1.x, release/2.x, feature/search, topic/docs: short branches forked off main
#   tags:           annotated v0.1 .. v0.6 on main, v1.0.1 on release/1.x; lightweight `nightly`
generator() {
    cat <<'PERL'
use strict;
use warnings;
no warnings 'portable';
my ($commits, $bin_every, $bin_size) = @ARGV;
binmode STDOUT;
my $x = 0x9E3779B97F4A7C15;
sub words {
    my $k = shift;
    my @w;
    for (1 .. $k) {
        $x ^= $x << 13;
        $x ^= $x >> 7;
        $x ^= $x << 17;
        push @w, $x;
    }
    return @w;
}
sub below { my ($n) = words(1); return $n % $_[0]; }
sub bytes { my $n = shift; return substr(pack('Q<*', words(($n + 7) >> 3)), 0, $n); }
sub line {
    my $s = bytes(60);
    $s =~ tr/\x00-\xff/A-Za-z0-9_.A-Za-z0-9_.A-Za-z0-9_.A-Za-z0-9_./;
    return "$s\n";
}
my $t0 = 1577836800;    # 2020-01-01T00:00:00Z
my $when = 0;
sub ident {
    my $who = shift;
    $when += 3600;
    my $t = $t0 + $when;
    return "$who $t +0000";
}
sub data { my $d = shift; return 'data ' . length($d) . "\n$d\n"; }
sub commit {
    my ($ref, $mark, $from, $msg, @files) = @_;
    my $out = "commit $ref\nmark :$mark\n";
    my $id = ident('Bench Author <author@bench.invalid>');
    $out .= "author $id\ncommitter $id\n" . data($msg);
    $out .= "from :$from\n" if defined $from;
    for my $f (@files) {
        $out .= "M 100644 inline $f->[0]\n" . data($f->[1]);
    }
    print $out;
}
my $nfiles = 300;
my @path = map { sprintf('src/d%02d/file%03d.txt', $_ % 20, $_) } 0 .. $nfiles - 1;
my @text = map { [map { line() } 1 .. 40] } 0 .. $nfiles - 1;
commit('refs/heads/main', 1, undef, "Initial import\n",
    map { [$path[$_], join('', @{$text[$_]})] } 0 .. $nfiles - 1);

my $next_mark = $commits + 1;
my %fork = (
    int($commits / 3) => ['release/1.x', 40],
    int(2 * $commits / 3) => ['release/2.x', 40],
    $commits - 50 => ['feature/search', 25],
    $commits - 5 => ['topic/docs', 10],
);
my $binaries = 0;
for my $i (2 .. $commits) {
    my @files;
    for (1 .. 2) {
        my $f = below($nfiles);
        my $l = $text[$f];
        $l->[below(scalar @$l)] = line() for 1 .. 3;
        splice(@$l, below(scalar @$l), 0, line()) for 1 .. 2;
        splice(@$l, below(scalar @$l), 1) while @$l > 120;
        push @files, [$path[$f], join('', @$l)];
    }
    if ($i % $bin_every == 0) {
        push @files, [sprintf('assets/blob-%02d.bin', $binaries % 48), bytes($bin_size)];
        $binaries++;
    }
    my $msg = "Change $files[0][0] and $files[1][0]\n\nCommit $i of the benchmark history.\n";
    commit('refs/heads/main', $i, undef, $msg, @files);
    if ($i % int($commits / 6) == 0 && $i / int($commits / 6) <= 6) {
        my $v = 'v0.' . ($i / int($commits / 6));
        print "tag $v\nfrom :$i\ntagger " . ident('Bench Tagger <tagger@bench.invalid>') . "\n"
            . data("Release $v\n");
    }
    if (my $b = $fork{$i}) {
        my ($name, $n) = @$b;
        my $from = $i;
        for my $k (1 .. $n) {
            my $note = join('', map { line() } 1 .. 20);
            my $f = below($nfiles);
            my $fresh = join('', map { line() } 1 .. 40);
            commit("refs/heads/$name", $next_mark, $k == 1 ? $from : undef,
                "$name: step $k\n", ["notes/$name/$k.txt", $note], [$path[$f], $fresh]);
            $from = $next_mark++;
        }
        if ($name eq 'release/1.x') {
            print "tag v1.0.1\nfrom :$from\ntagger " . ident('Bench Tagger <tagger@bench.invalid>')
                . "\n" . data("Release v1.0.1\n");
        }
    }
}
print "reset refs/tags/nightly\nfrom :$commits\n\n";
PERL
}

# The cache is keyed by the generator's own text and its arguments: changing either regenerates.
repo_version="generator $(generator | cksum | cut -d' ' -f1) commits=$commits bin_every=$bin_every bin_size=$bin_size"
repo=$bench_dir/repo-$size.git
stamp=$bench_dir/repo-$size.stamp
mkdir -p "$bench_dir"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$repo_version" ] && [ -d "$repo" ]; then
    say "reusing $repo"
else
    say "generating $repo ($repo_version)"
    rm -rf "$repo" "$repo.tmp" "$stamp"
    gen_start=$(date +%s.%N)
    git init -q --bare "$repo.tmp"
    git -C "$repo.tmp" symbolic-ref HEAD refs/heads/main
    perl -e "$(generator)" "$commits" "$bin_every" "$bin_size" |
        git -C "$repo.tmp" fast-import --quiet
    git -C "$repo.tmp" repack -a -d -f -q
    git -C "$repo.tmp" pack-refs --all
    git -C "$repo.tmp" prune-packed
    mv "$repo.tmp" "$repo"
    printf '%s\n' "$repo_version" >"$stamp"
    awk -v a="$gen_start" -v b="$(date +%s.%N)" 'BEGIN { printf "generated in %.1f s\n", b - a }'
fi
pack_kib=$(du -sk "$repo/objects/pack" | cut -f1)
printf 'repository: %s commits on main, %s refs, %s objects, %s pack(s), %.1f MiB packed\n' \
    "$(git -C "$repo" rev-list --count main)" \
    "$(git -C "$repo" for-each-ref | wc -l)" \
    "$(git -C "$repo" count-objects -v | awk '$1 == "in-pack:" { print $2 }')" \
    "$(find "$repo/objects/pack" -name '*.pack' | wc -l)" \
    "$(awk -v k="$pack_kib" 'BEGIN { print k / 1024 }')"
refs_of() {
    git -C "$1" for-each-ref --format='%(objectname) %(refname)'
    git -C "$1" symbolic-ref HEAD
}
source_refs=$(refs_of "$repo")

# --- 3. one nginx, two ways to the same repository -------------------------------------------------
run=$(mktemp -d "$bench_dir/run.XXXXXX")
nginx_pid=
forgelet_pid=
ok=0
interrupted=0
stop() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    stop "$nginx_pid"
    stop "$forgelet_pid"
    # Kept after a failure (to read the logs) or on request; removed after success or an interrupt.
    if { [ "$ok" = 1 ] || [ "$interrupted" = 1 ]; } && [ "${BENCH_KEEP:-0}" != 1 ]; then
        rm -rf "$run"
    else
        printf 'bench.sh: run folder kept: %s (nginx: nginx/error.log, forgelet: forgelet.log)\n' \
            "$run" >&2
    fi
}
trap cleanup EXIT
trap 'interrupted=1; exit 130' INT
trap 'interrupted=1; exit 143' TERM

mkdir -p "$run/nginx/temp" "$run/data" "$run/static" "$run/clones"
case $run in *[\|\&\\\"\;\ ]*) die "the run folder $run has a character nginx or sed would misread" ;; esac

# A port nobody answers on; nginx is tried on the next one if it still loses the race.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# forgelet: its own config and data, the repository imported the way a sysadmin would.
socket=$run/forgelet.sock
config=$run/config.toml
write_config() {
    cat >"$config" <<EOF
data_dir = "$run/data"
base_url = "http://127.0.0.1:$1/git"
sendfile = "x-accel-redirect"
internal_prefix = "/.forgelet-repos"

[server]
listen = "unix:$socket"
EOF
}
write_config 0
say "forgelet repo import bench/$size"
"$bin" --config "$config" repo import "bench/$size" "$repo"

# static: a copy of the same repository with the files the dumb protocol needs.
cp -a "$repo" "$run/static/$size.git"
git -C "$run/static/$size.git" update-server-info

# The shipped snippet with its documented defaults replaced for this run.
snippet=$root/nginx/forgelet.conf
for literal in 'location ^~ /git/ {' 'unix:/run/forgelet/forgelet.sock;' \
    'alias /var/lib/forgelet/repos/;' 'location ^~ /.forgelet-repos/ {'; do
    grep -qF -- "$literal" "$snippet" || die "$snippet no longer contains '$literal'; update bench.sh"
done
sed -e "s|unix:/run/forgelet/forgelet.sock;|unix:$socket;|" \
    -e "s|alias /var/lib/forgelet/repos/;|alias $run/data/repos/;|" \
    "$snippet" >"$run/nginx/forgelet.conf"
# The snippet includes fastcgi_params by a relative name: nginx looks beside the main config.
cp "$fastcgi_params" "$run/nginx/fastcgi_params"

write_nginx_conf() {
    local user=
    if [ "$(id -u)" -eq 0 ]; then
        user='user root root;'
    fi
    cat >"$run/nginx/nginx.conf" <<EOF
$user
daemon off;
master_process on;
worker_processes 1;
pid $run/nginx/nginx.pid;
error_log $run/nginx/error.log warn;
events { worker_connections 1024; }
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
        listen 127.0.0.1:$1;
        server_name localhost;
        root $run/empty-root;
        include $run/nginx/forgelet.conf;
        # The baseline: the same bare repository as plain files. Like the snippet's internal
        # location, it does not log the expected 404s of the loose-object probes.
        location /static/ {
            alias $run/static/;
            log_not_found off;
        }
    }
}
EOF
}

wait_until() {
    local what=$1 pid=$2 i
    shift 2
    for ((i = 0; i < 100; i++)); do
        "$@" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    die "$what: no success within 10 s"
}

port=
for ((try = 0; try < 20; try++)); do
    candidate=$((20000 + (RANDOM * 32768 + RANDOM) % 30000))
    port_in_use "$candidate" && continue
    write_nginx_conf "$candidate"
    env -u NGINX "$nginx_bin" -t -q -p "$run/nginx" -c "$run/nginx/nginx.conf" -e "$run/nginx/error.log" ||
        die "nginx -t failed (see above)"
    env -u NGINX "$nginx_bin" -p "$run/nginx" -c "$run/nginx/nginx.conf" -e "$run/nginx/error.log" \
        </dev/null >/dev/null 2>"$run/nginx/stderr.log" &
    nginx_pid=$!
    if wait_until nginx "$nginx_pid" port_in_use "$candidate"; then
        port=$candidate
        break
    fi
    wait "$nginx_pid" 2>/dev/null || true
    nginx_pid=
done
[ -n "$port" ] || die "could not start nginx on a free port (see $run/nginx/error.log, stderr.log)"

write_config "$port"
say "forgelet serve on $socket, nginx on 127.0.0.1:$port"
RUST_LOG=${RUST_LOG:-warn} "$bin" --config "$config" serve </dev/null >"$run/forgelet.log" 2>&1 &
forgelet_pid=$!
wait_until "forgelet's socket" "$forgelet_pid" test -S "$socket" ||
    die "forgelet serve exited: $(cat "$run/forgelet.log")"

url_forgelet=http://127.0.0.1:$port/git/bench/$size.git
url_static=http://127.0.0.1:$port/static/$size.git
source_list=$(git -C "$repo" for-each-ref --format='%(objectname)%09%(refname)')
ls_remote() {
    GIT_SMART_HTTP=0 git ls-remote --refs "$1" >"$run/ls-remote.out" 2>&1
}
for url in "$url_forgelet" "$url_static"; do
    # The first request may race forgelet's listen(); give it a few tries.
    if ! wait_until "git ls-remote $url (see $run/ls-remote.out)" "$forgelet_pid" ls_remote "$url"; then
        die "forgelet exited: $(cat "$run/forgelet.log")"
    fi
    out=$(cat "$run/ls-remote.out")
    [ "$out" = "$source_list" ] ||
        die "git ls-remote $url lists other refs than the repository:"$'\n'"$out"
done

# --- 4. clones -----------------------------------------------------------------------------------
# Every clone runs with GIT_TRACE_CURL (headers only: a few hundred lines, the same cost on both
# sides), which gives the number of requests and the HTTP phase: from the first request to the end
# of the last response. The wall time adds git's own work (index-pack of the whole pack, the
# connectivity check), identical on both sides, so the HTTP phase shows the server's share closer up.

# http_phase TRACE: seconds from the first request sent to the last response finished.
http_phase() {
    awk 'function t(s, a) { split(s, a, ":"); return a[1] * 3600 + a[2] * 60 + a[3] }
        / => Send header: GET / && first == "" { first = t($1) }
        / == Info: (Connection #[0-9]+ to host .* left intact|Closing connection)/ { last = t($1) }
        END {
            if (first == "" || last == "") { print "nan"; exit }
            d = last - first
            if (d < 0) d += 86400
            printf "%.4f\n", d
        }' "$1"
}

# clone NAME URL [fsck]: one dumb clone into the run folder, checked against the source's refs
# (and with fsck, for connectivity), then removed. Prints "WALL HTTP REQUESTS".
clone() {
    local name=$1 url=$2 fsck=${3:-} dest trace start end
    dest=$run/clones/$name.git
    trace=$run/trace-$name.log
    rm -rf "$dest" "$trace"
    start=$(date +%s.%N)
    GIT_TRACE_CURL=$trace GIT_TRACE_CURL_NO_DATA=1 GIT_SMART_HTTP=0 \
        git clone --bare -q "$url" "$dest" >&2 || die "clone of $url failed"
    end=$(date +%s.%N)
    [ "$(refs_of "$dest")" = "$source_refs" ] ||
        die "clone of $url has other refs than the repository (kept in $dest)"
    if [ -n "$fsck" ]; then
        git -C "$dest" fsck --connectivity-only --no-progress >&2 ||
            die "git fsck of the clone of $url failed (kept in $dest)"
    fi
    rm -rf "$dest"
    printf '%s %s %s\n' "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.4f", b - a }')" \
        "$(http_phase "$trace")" "$(grep -c ' => Send header: GET ' "$trace" || true)"
}

say "warm-up round (untimed; git fsck --connectivity-only of each clone)"
for name in forgelet static; do
    url=url_$name
    out=$(clone "$name" "${!url}" fsck)
    read -r wall http reqs <<<"$out"
    awk -v n="$name" -v w="$wall" -v h="$http" -v q="$reqs" 'BEGIN { printf "  %-8s %7.3fs wall, %6.1fms HTTP phase, %s requests\n", n, w, h * 1000, q }'
done

say "$rounds timed rounds (the order alternates each round)"
wall_forgelet=() wall_static=() http_forgelet=() http_static=() reqs_forgelet=() reqs_static=()
# row LABEL WALL_F WALL_S RATIO HTTP_F HTTP_S: seconds; the HTTP phase shown in milliseconds.
row() {
    awk -v l="$1" -v wf="$2" -v ws="$3" -v q="$4" -v hf="$5" -v hs="$6" 'BEGIN {
        printf "  %-8s %9.3fs %9.3fs %8s %9.1fms %9.1fms\n", l, wf, ws,
            (q == "" ? "" : sprintf("%.3f", q)), hf * 1000, hs * 1000 }'
}
printf '  %-8s %21s %8s %23s\n' "" "clone (wall)" "" "HTTP phase"
printf '  %-8s %10s %10s %8s %11s %11s\n' round forgelet static ratio forgelet static
for ((r = 1; r <= rounds; r++)); do
    if ((r % 2)); then order=(forgelet static); else order=(static forgelet); fi
    for name in "${order[@]}"; do
        url=url_$name
        out=$(clone "$name" "${!url}")
        read -r wall http reqs <<<"$out"
        if [ "$name" = forgelet ]; then
            wall_forgelet+=("$wall") http_forgelet+=("$http") reqs_forgelet+=("$reqs")
        else
            wall_static+=("$wall") http_static+=("$http") reqs_static+=("$reqs")
        fi
    done
    i=$((r - 1))
    row "$r" "${wall_forgelet[i]}" "${wall_static[i]}" \
        "$(awk -v f="${wall_forgelet[i]}" -v s="${wall_static[i]}" 'BEGIN { print f / s }')" \
        "${http_forgelet[i]}" "${http_static[i]}"
done

median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR % 2) printf "%.4f\n", v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
minimum() {
    printf '%s\n' "$@" | sort -g | head -n 1
}
ratio_of() {
    awk -v f="$1" -v s="$2" 'BEGIN { printf "%.3f", f / s }'
}
med_wall_f=$(median "${wall_forgelet[@]}")
med_wall_s=$(median "${wall_static[@]}")
med_http_f=$(median "${http_forgelet[@]}")
med_http_s=$(median "${http_static[@]}")
paired=()
for ((i = 0; i < rounds; i++)); do
    paired+=("$(ratio_of "${wall_forgelet[i]}" "${wall_static[i]}")")
done
row median "$med_wall_f" "$med_wall_s" "$(median "${paired[@]}")" "$med_http_f" "$med_http_s"
row min "$(minimum "${wall_forgelet[@]}")" "$(minimum "${wall_static[@]}")" "" \
    "$(minimum "${http_forgelet[@]}")" "$(minimum "${http_static[@]}")"
printf '  %-8s %10s %10s   (HTTP requests per clone, median)\n' requests \
    "$(median "${reqs_forgelet[@]}" | sed 's/\..*//')" "$(median "${reqs_static[@]}" | sed 's/\..*//')"
printf '  (ratio column: each round'"'"'s own forgelet/static; its median row is the median of those)\n'

ratio=$(ratio_of "$med_wall_f" "$med_wall_s")
if awk -v r="$ratio" -v g="$goal" 'BEGIN { exit !(r <= g) }'; then
    verdict="PASS (goal: at most $goal)"
else
    verdict="ABOVE GOAL (goal: at most $goal)"
fi
printf '\nforgelet/static, median clone time: %s  %s\n' "$ratio" "$verdict"
printf 'forgelet/static, median HTTP phase: %s  (forgelet %s)\n' \
    "$(ratio_of "$med_http_f" "$med_http_s")" \
    "$(awk -v f="$med_http_f" -v s="$med_http_s" 'BEGIN {
        d = (f - s) * 1000; printf "%.1f ms %s per clone", (d < 0 ? -d : d), (d < 0 ? "shorter" : "longer") }')"
printf '(%s repository, %s timed rounds after 1 warm-up, dumb HTTP clone --bare, nginx %s, %s)\n' \
    "$size" "$rounds" "$("$nginx_bin" -v 2>&1 | sed 's|.*/||')" "$(git --version)"
ok=1
