#!/usr/bin/env bash
# bench.sh: forgelet's benchmarks, in one run. A benchmark, not a test: it prints figures and a
# verdict against each goal of issues 3 (A to D) and 4 (E) and exits 0 whenever the measurements
# themselves worked, whatever the verdicts.
#
#   A. dumb clone:  `git clone --bare` over the dumb protocol through forgelet, next to nginx
#                   serving the very same bare repository as plain static files.
#                   Goal: forgelet's median at most 1.05x static nginx's.
#   B. smart clone: `git -c protocol.version=2 clone --bare` through forgelet, next to git's own
#                   `git http-backend` behind the same nginx (via fcgiwrap), both without any cache.
#                   Goal: at most 1.0x. forgelet's pack cache is emptied before each of its clones
#                   (part I measures it).
#   C. private:     dumb clone of a private copy of the repository, with a user's password in the
#                   URL, next to the public one, anonymously. Goal: at most 1.2x.
#   D. memory:      peak RSS (VmHWM) of the forgelet process while a ~300 MB repository is pushed
#                   into an empty forgelet repository (chunked), and while it is smart-cloned back;
#                   forgelet is restarted before each so VmHWM covers just that. Goal: flat, under
#                   64 MiB. Optional (BENCH_RSS).
#   E. web pages:   requests/second (wrk) for the repository home, the tree root, the log, one
#                   commit and one blob of the repository, a file's history, the tags, a
#                   comparison of main~20 with main (cgit: its diff page) and main's Atom feed
#                   (cgit: its atom page), forgelet next to cgit through fcgiwrap
#                   (one cgit process forked per request) behind the same nginx, with cgit's cache
#                   off and on. Goals: at least 5x cgit without its cache, at least 2x with it.
#                   Also a highlighted blob (a generated C file of 2,000 lines in bench/SIZE-code)
#                   next to cgit with its highlight filter (syntax-highlighting.py, Pygments):
#                   warm (wrk, as the other pages: forgelet's caches and cgit's page cache
#                   hold it) and cold (forgelet restarted before each request, so neither its
#                   page cache nor its highlight cache holds it, next to cgit with its cache
#                   folder emptied before each request: cold against cold; curl, medians of
#                   BENCH_COLD_ROUNDS).
#                   BENCH_ONLY=web runs just this part, F and G (and the build and the repositories
#                   they need).
#   F. large pages: requests/second for pages whose cost must follow what they show, not the
#                   repository (issue 8), forgelet next to cgit (cache off and on) as in E: the
#                   commit page of a 2-file, 8-line commit in a repository of 5,000 commits and
#                   12,000 files ("wide"), and the home page of a repository with 12,001 refs
#                   ("refs"). Goals: commit at least 5x cgit and 2x cgit cached; home at least 2x
#                   cgit cached.
#   G. ref burst:   the front page's 99th percentile latency while 24 clients fetch the dumb
#                   info/refs of a repository with 7,800 loose branches together, four times a
#                   second, over its idle one (same run, wrk --latency). Goal: at most 2x. (Also
#                   printed: the same during a closed-loop flood, which only shows CPU saturation.)
#   I. pack cache:  a real clone's requests recorded once (deploy/record_fetch.py) and replayed with
#                   curl: cold (forgelet's cache emptied) next to http-backend, goal at most 1.0; a
#                   cache hit next to nginx sending a static file of the same size, goal at most 1.1
#                   (at least 10 interleaved rounds), and next to http-backend, goal 5x faster; 32
#                   identical clones at once (medium and small only): one git pack-objects run,
#                   total time at most 0.3x http-backend's, forgelet's peak RSS at most 64 MiB.
#                   Then I5: the cold clone again after `forgelet maintain` (bitmaps), reported.
#   J. blame and code search: (runs with E) forgelet's blame page of E's file with nothing kept
#                   (each round at another commit that changed the file, named by its id, so no
#                   ref changes between rounds) next to `git blame` of it at the same commit, goal at most
#                   1.2x; the blame page kept, requests/second (wrk) next to cgit's blame page
#                   (enable-blame=1, its cache off), goal at least 5x; a code search of one of the
#                   file's lines (a fixed string, case ignored: one full walk of the tree, few
#                   matches) next to `git grep -n -I -i -F` of it at the same commit, goal at most
#                   1.2x. Medians of the timed rounds, after one warm-up round.
#
# What it does:
#   1. cargo build --release --locked
#   2. generates deterministic repositories (fixed names, dates and a seeded generator fed to
#      `git fast-import`), cached under target/bench/ so later runs reuse them: the benchmark
#      repository (fully packed) and, for D, one of 300 incompressible 1 MiB blobs
#   3. starts one nginx (own config in a temporary folder under target/bench/) that serves
#        /git/     forgelet over FastCGI (the shipped nginx/forgelet.conf, X-Accel-Redirect), with
#                  the user `bench` (random password), bench/SIZE (public), bench/SIZE-private and,
#                  for D, an empty bench/rss
#        /static/  a copy of the same bare repository as plain files (after update-server-info)
#        /hb/      `git http-backend` through fcgiwrap (started here on a unix socket), over a copy
#                  of the same repository
#   4. for A, B and C: times the two kinds of clone, alternating, after one untimed warm-up round
#      (which also runs git fsck on each clone and, for B, checks with GIT_TRACE_PACKET that both
#      sides spoke protocol v2), and checks every clone's refs. Prints each round, the medians and
#      their ratio with the verdict, and from git's curl trace the requests per clone and the HTTP
#      phase (first request to last response: the server's share of the clone)
#   5. for D: push, then clone, each after a restart of forgelet, with VmHWM read from /proc
#   6. for E: a second fcgiwrap (on its own socket, as many preforked workers as wrk has
#      connections) runs cgit, over another copy of the repository, with a cgitrc in the run
#      folder: under /cgit/ with cache-size=0, under /cgit-cached/ with a cache in the run folder.
#      Each page is fetched once with curl first (200 and the expected content: the repository's
#      name, the latest commit's subject, the commit's subject, a line of the file; this also
#      fills cgit's cache), then timed with wrk (forgelet, cgit, cached cgit in turn, page by
#      page); any non-2xx answer or socket error makes that figure invalid. Prints the table.
#   7. prints a summary; stops what it started on exit; keeps the cached repositories
#
# Environment (optional):
#   BENCH_SIZE     medium (default: ~3000 commits, ~35 MB packed), small (~300 commits, ~4 MB) or
#                  large (100,000 commits, 1,587 tags, a 445 MB pack: deploy/gen-bench-repos.sh
#                  makes it, the first time in about 6 minutes on 2 cores, and caches it under
#                  target/bench/ as repo-large.git; the clones take minutes each, so a quick look
#                  is BENCH_ROUNDS=1)
#   BENCH_ROUNDS   timed rounds (default 7), after one warm-up round
#   BENCH_RSS      1 runs D, 0 skips it (default: 1 for medium, 0 for small; generating the 300 MB
#                  repository the first time takes a while, and the push and clone about a minute)
#   BENCH_KEEP     1 keeps the run folder (configs, logs) after a successful run
#   BENCH_LFS      0 skips L (the 2 GiB Git LFS download) in a full run (default 1); its own
#                  settings (BENCH_LFS_MIB, BENCH_LFS_ROUNDS) are in deploy/bench-lfs.sh
#   BENCH_BIN      a forgelet binary to measure instead of building this checkout (an older
#                  build, say, for figures before and after a change; same configs and snippet)
#   BENCH_MANY     1 also runs H: the front page and dashboard with 10,000 repositories against 10
#                  (deploy/many-repos.sh; making the site once takes minutes). Default 0
#   BENCH_ONLY     web runs only E, F, G and J (skipping A to D and what only they need); pages runs
#                  only E and J (nor F's and G's repositories); cache runs only I; lfs runs only L
#                  (deploy/bench-lfs.sh: a 2 GiB Git LFS download through forgelet and nginx next
#                  to nginx sending it statically, goal 1.05); repo only makes (or finds) the
#                  BENCH_SIZE repository under target/bench/ and stops (deploy/load.sh uses
#                  it); empty runs everything, L last
#   BENCH_COMMIT_GRAPH  1 (default) writes a commit-graph with changed-path Bloom filters (what
#                  maintenance writes) into the repository forgelet serves and the same file into
#                  cgit's copy before E; 0 leaves both as generated
#   BENCH_WEB_DURATION     wrk's duration per page and server (default 5s)
#   BENCH_COLD_ROUNDS      requests of E's cold highlighted blob (default 7)
#   BENCH_WEB_HL_DURATION  wrk's duration for cgit without its cache on the highlighted blob
#                  (default 30s: it answers about one request a second)
#   CGIT_HIGHLIGHT         cgit's source filter for E's highlighted blob (default
#                  /usr/lib/cgit/filters/syntax-highlighting.py; it needs python3-pygments)
#   BENCH_WEB_CONNECTIONS  wrk's connections (default 8; wrk runs 2 threads), also the number of
#                  fcgiwrap workers for cgit (forgelet's own default is 8 page workers)
#   CGIT_CGI       cgit's CGI (default /usr/lib/cgit/cgit.cgi; Debian `cgit`)
#   NGINX_BIN      nginx binary (default: /usr/sbin/nginx, else the one in PATH)
#   FCGIWRAP_BIN   fcgiwrap binary (default: the one in PATH or /usr/sbin; installed with apt-get
#                  when missing and run as root)
# wrk, cgit and python3-pygments (for E) are installed with apt-get too when missing and run as root.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$script_dir/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
case $target_dir in /*) ;; *) target_dir=$root/$target_dir ;; esac
bench_dir=$target_dir/bench

size=${BENCH_SIZE:-medium}
rounds=${BENCH_ROUNDS:-7}
goal_dumb=1.05
goal_smart=1.0
goal_private=1.2
goal_rss_mib=64

die() {
    printf 'bench.sh: %s\n' "$*" >&2
    exit 1
}
say() {
    printf '== %s\n' "$*"
}

case $size in
    medium) commits=3000 bin_every=40 bin_size=409600 rss_default=1 ;;
    small) commits=300 bin_every=40 bin_size=409600 rss_default=0 ;;
    large) commits=100000 bin_every=700 bin_size=0 rss_default=0 ;;
    *) die "BENCH_SIZE must be medium, small or large, not '$size'" ;;
esac
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive whole number, not '$rounds'"
rss=${BENCH_RSS:-$rss_default}
case $rss in 0 | 1) ;; *) die "BENCH_RSS must be 0 or 1, not '$rss'" ;; esac
only=${BENCH_ONLY:-}
case $only in '' | web | pages | cache | lfs | repo) ;; *) die "BENCH_ONLY must be web, pages, cache, lfs, repo or empty (everything), not '$only'" ;; esac
# BENCH_ONLY=lfs: part L alone, with servers of its own (deploy/bench-lfs.sh).
if [ "$only" = lfs ]; then
    exec bash "$script_dir/bench-lfs.sh"
fi
# BENCH_ONLY=pages: E alone, as web but without F and G.
pages_only=0
if [ "$only" = pages ]; then
    only=web
    pages_only=1
fi
commit_graph=${BENCH_COMMIT_GRAPH:-1}
case $commit_graph in 0 | 1) ;; *) die "BENCH_COMMIT_GRAPH must be 0 or 1, not '$commit_graph'" ;; esac
# BENCH_ONLY=web: no clones, so neither D's repository.
if [ -n "$only" ]; then rss=0; fi
web_duration=${BENCH_WEB_DURATION:-5s}
[[ $web_duration =~ ^[1-9][0-9]*[smh]?$ ]] ||
    die "BENCH_WEB_DURATION must be a wrk duration such as 5s, not '$web_duration'"
web_connections=${BENCH_WEB_CONNECTIONS:-8}
[[ $web_connections =~ ^[1-9][0-9]*$ ]] ||
    die "BENCH_WEB_CONNECTIONS must be a positive whole number, not '$web_connections'"
web_threads=2
((web_threads <= web_connections)) || web_threads=$web_connections
goal_web_nocache=5
goal_web_cache=2
# D's repository: this many blobs of this many bytes, one per commit.
rss_blobs=300
rss_blob_size=1048576

# git must never read the user's or the system's settings: the generated repository and the
# clones are the same on every machine.
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_TERMINAL_PROMPT=0
unset GIT_DIR GIT_WORK_TREE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_PROTOCOL
unset GIT_TRACE GIT_TRACE_CURL GIT_TRACE_PACKET GIT_CURL_VERBOSE GIT_SMART_HTTP
unset GIT_ASKPASS SSH_ASKPASS
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
http_backend=$(git --exec-path)/git-http-backend
[ -x "$http_backend" ] || die "this git has no $http_backend"
command -v perl >/dev/null 2>&1 || die "perl not found (it generates the benchmark repository)"
perl -MConfig -e 'exit($Config{uvsize} >= 8 ? 0 : 1)' || die "perl with 64-bit integers needed"
command -v cargo >/dev/null 2>&1 || die "cargo not found"
# BENCH_ONLY=repo: git and perl are all it needs.
if [ "$only" != repo ]; then
install_web_bench_tools || die "wrk and cgit are needed for E, the web pages (see above)"
cgit_cgi=${CGIT_CGI:-/usr/lib/cgit/cgit.cgi}
cgit_highlight=${CGIT_HIGHLIGHT:-/usr/lib/cgit/filters/syntax-highlighting.py}
[ -x "$cgit_highlight" ] || die "no executable $cgit_highlight (cgit's highlight filter; set CGIT_HIGHLIGHT)"
cold_rounds=${BENCH_COLD_ROUNDS:-7}
web_hl_duration=${BENCH_WEB_HL_DURATION:-30s}
[[ $cold_rounds =~ ^[1-9][0-9]*$ ]] || die "BENCH_COLD_ROUNDS must be a positive whole number, not '$cold_rounds'"
command -v curl >/dev/null 2>&1 || die "curl not found (E checks each page with it before timing)"
fastcgi_params=/etc/nginx/fastcgi_params
[ -f "$fastcgi_params" ] || fastcgi_params=$(dirname "$nginx_bin")/../conf/fastcgi_params
[ -f "$fastcgi_params" ] || die "cannot find nginx's fastcgi_params"

# fcgiwrap (B's baseline): $FCGIWRAP_BIN, else on PATH or in /usr/sbin, else installed with apt-get
# when running as root.
find_fcgiwrap() {
    if [ -n "${FCGIWRAP_BIN:-}" ]; then
        printf '%s\n' "$FCGIWRAP_BIN"
    elif command -v fcgiwrap >/dev/null 2>&1; then
        command -v fcgiwrap
    elif [ -x /usr/sbin/fcgiwrap ]; then
        printf '%s\n' /usr/sbin/fcgiwrap
    fi
}
fcgiwrap_bin=$(find_fcgiwrap)
if [ -z "$fcgiwrap_bin" ]; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        die "fcgiwrap not found; install it as root (Debian: apt-get install -y fcgiwrap) or set FCGIWRAP_BIN"
    fi
    say "apt-get install fcgiwrap"
    # Only the binary: the package's systemd socket is not used (and not started in containers).
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends fcgiwrap
    fcgiwrap_bin=$(find_fcgiwrap)
fi
if [ -z "$fcgiwrap_bin" ] || [ ! -x "$fcgiwrap_bin" ]; then
    die "fcgiwrap not found at '$fcgiwrap_bin'"
fi
fi

# --- 1. build ------------------------------------------------------------------------------------
if [ "$only" = repo ]; then
    : # nothing is measured
elif [ -n "${BENCH_BIN:-}" ]; then
    bin=$BENCH_BIN
    [ -x "$bin" ] || die "BENCH_BIN=$bin is not an executable file"
    say "measuring $bin (BENCH_BIN; nothing is built)"
else
    say "cargo build --release --locked"
    (cd "$root" && cargo build --release --locked) || die "cargo build --release failed"
    bin=$target_dir/release/forgelet
    [ -x "$bin" ] || die "no binary at $bin after the build"
fi

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
repo=$bench_dir/repo-$size.git
stamp=$bench_dir/repo-$size.stamp
mkdir -p "$bench_dir"
if [ "$size" = large ]; then
    # The large repository has a generator of its own, which checks its commit ids and caches it.
    "$script_dir/gen-bench-repos.sh" large || die "deploy/gen-bench-repos.sh large failed (see above)"
    repo_version=$(cat "$stamp")
else
    repo_version="generator $(generator | cksum | cut -d' ' -f1) commits=$commits bin_every=$bin_every bin_size=$bin_size"
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
fi
pack_kib=$(du -sk "$repo/objects/pack" | cut -f1)
printf 'repository: %s commits on main, %s refs, %s objects, %s pack(s), %.1f MiB packed\n' \
    "$(git -C "$repo" rev-list --count main)" \
    "$(git -C "$repo" for-each-ref | wc -l)" \
    "$(git -C "$repo" count-objects -v | awk '$1 == "in-pack:" { print $2 }')" \
    "$(find "$repo/objects/pack" -name '*.pack' | wc -l)" \
    "$(awk -v k="$pack_kib" 'BEGIN { print k / 1024 }')"
if [ "$only" = repo ]; then
    exit 0
fi
refs_of() {
    git -C "$1" for-each-ref --format='%(objectname) %(refname)'
    git -C "$1" symbolic-ref HEAD
}
source_refs=$(refs_of "$repo")


# D's repository: RSS_BLOBS commits on main, each adding one RSS_BLOB_SIZE file of bytes from a
# seeded xorshift64 generator (incompressible, and with nothing for delta compression to find).
# Left as fast-import packed it (one pack, no deltas): a repack would only spend minutes on a
# fruitless delta search.
rss_generator() {
    cat <<'PERL'
use strict;
use warnings;
no warnings 'portable';
my ($count, $size) = @ARGV;
binmode STDOUT;
my $x = 0x2545F4914F6CDD1D;
my $t = 1577836800;    # 2020-01-01T00:00:00Z
for my $i (1 .. $count) {
    my @w;
    for (1 .. ($size + 7) >> 3) {
        $x ^= $x << 13;
        $x ^= $x >> 7;
        $x ^= $x << 17;
        push @w, $x;
    }
    $t += 3600;
    my $path = sprintf('data/d%02d/blob-%03d.bin', $i % 10, $i);
    my $msg = "Add $path\n";
    my $id = "Bench Author <author\@bench.invalid> $t +0000";
    print "commit refs/heads/main\nmark :$i\nauthor $id\ncommitter $id\n",
        'data ', length($msg), "\n$msg",
        "M 100644 inline $path\ndata $size\n", substr(pack('Q<*', @w), 0, $size), "\n";
}
PERL
}
rss_repo=$bench_dir/repo-rss.git
if [ "$rss" = 1 ]; then
    rss_version="generator $(rss_generator | cksum | cut -d' ' -f1) blobs=$rss_blobs size=$rss_blob_size"
    rss_stamp=$bench_dir/repo-rss.stamp
    if [ -f "$rss_stamp" ] && [ "$(cat "$rss_stamp")" = "$rss_version" ] && [ -d "$rss_repo" ]; then
        say "reusing $rss_repo"
    else
        say "generating $rss_repo ($rss_version)"
        rm -rf "$rss_repo" "$rss_repo.tmp" "$rss_stamp"
        gen_start=$(date +%s.%N)
        git init -q --bare "$rss_repo.tmp"
        git -C "$rss_repo.tmp" symbolic-ref HEAD refs/heads/main
        perl -e "$(rss_generator)" "$rss_blobs" "$rss_blob_size" |
            git -C "$rss_repo.tmp" fast-import --quiet
        git -C "$rss_repo.tmp" pack-refs --all
        mv "$rss_repo.tmp" "$rss_repo"
        printf '%s\n' "$rss_version" >"$rss_stamp"
        awk -v a="$gen_start" -v b="$(date +%s.%N)" 'BEGIN { printf "generated in %.1f s\n", b - a }'
    fi
    rss_pack_kib=$(du -sk "$rss_repo/objects/pack" | cut -f1)
    printf 'rss repository: %s commits, %.1f MiB packed\n' \
        "$(git -C "$rss_repo" rev-list --count main)" "$(awk -v k="$rss_pack_kib" 'BEGIN { print k / 1024 }')"
    rss_refs=$(refs_of "$rss_repo")
fi

# F's and G's repositories (E's runs too): "wide", WIDE_COMMITS commits over WIDE_FILES text files
# in three levels of folders, each commit after the first editing two files (three lines replaced,
# two inserted); "refs", a copy of wide with 6,000 branches and 6,000 tags on distinct commits,
# packed; "loose", a copy of the medium repository with 7,800 branches left loose.
wide_commits=5000
wide_dirs=20
wide_subdirs=20
wide_files=30
wide_generator() {
    cat <<'PERL'
use strict;
use warnings;
no warnings 'portable';
my ($commits, $dirs, $subdirs, $per) = @ARGV;
binmode STDOUT;
my $x = 0x853C49E6748FEA9B;
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
sub line {
    my $s = substr(pack('Q<*', words(8)), 0, 60);
    $s =~ tr/\x00-\xff/A-Za-z0-9_.A-Za-z0-9_.A-Za-z0-9_.A-Za-z0-9_./;
    return "$s\n";
}
my $t = 1577836800;
sub data { my $d = shift; return 'data ' . length($d) . "\n$d\n"; }
my @path;
for my $d (0 .. $dirs - 1) {
    for my $s (0 .. $subdirs - 1) {
        for my $f (0 .. $per - 1) {
            push @path, sprintf('lib/m%02d/s%02d/f%05d.txt', $d, $s, scalar @path);
        }
    }
}
my @text = map { [map { line() } 1 .. 40] } 0 .. $#path;
for my $i (1 .. $commits) {
    $t += 3600;
    my $id = "Bench Author <author\@bench.invalid> $t +0000";
    my @files;
    if ($i == 1) {
        @files = map { [$path[$_], join('', @{$text[$_]})] } 0 .. $#path;
    } else {
        for (1 .. 2) {
            my $f = below(scalar @path);
            my $l = $text[$f];
            $l->[below(scalar @$l)] = line() for 1 .. 3;
            splice(@$l, below(scalar @$l), 0, line()) for 1 .. 2;
            splice(@$l, below(scalar @$l), 1) while @$l > 120;
            push @files, [$path[$f], join('', @$l)];
        }
    }
    my $msg = "Wide commit $i\n";
    print "commit refs/heads/main\nmark :$i\nauthor $id\ncommitter $id\n", data($msg);
    print "from :" . ($i - 1) . "\n" if $i > 1;
    print "M 100644 inline $_->[0]\n", data($_->[1]) for @files;
}
PERL
}
# cached_repo NAME VERSION MAKE...: the repository target/bench/NAME.git, made by running MAKE
# with the folder to fill as its last argument, unless it is there for the same VERSION.
cached_repo() {
    local name=$1 version=$2 dir=$bench_dir/$1.git stamp_file=$bench_dir/$1.stamp gen_start
    shift 2
    if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$version" ] && [ -d "$dir" ]; then
        say "reusing $dir"
        return 0
    fi
    say "generating $dir ($version)"
    rm -rf "$dir" "$dir.tmp" "$stamp_file"
    gen_start=$(date +%s.%N)
    "$@" "$dir.tmp" || die "making $dir failed"
    mv "$dir.tmp" "$dir"
    printf '%s\n' "$version" >"$stamp_file"
    awk -v a="$gen_start" -v b="$(date +%s.%N)" 'BEGIN { printf "generated in %.1f s\n", b - a }'
}
make_wide() {
    git init -q --bare "$1"
    git -C "$1" symbolic-ref HEAD refs/heads/main
    perl -e "$(wide_generator)" "$wide_commits" "$wide_dirs" "$wide_subdirs" "$wide_files" |
        git -C "$1" fast-import --quiet
    git -C "$1" repack -a -d -f -q
    git -C "$1" pack-refs --all
    git -C "$1" prune-packed
}
make_refs() {
    cp -a "$wide_repo" "$1"
    git -C "$1" rev-list main | awk '{ c[NR] = $1 } END {
        for (i = 1; i <= 6000; i++) {
            printf "create refs/heads/topic/%04d %s\n", i, c[(i - 1) % NR + 1]
            printf "create refs/tags/v1.%d.%d %s\n", int(i / 100), i % 100, c[(i * 7) % NR + 1]
        } }' | git -C "$1" update-ref --stdin
    git -C "$1" pack-refs --all
    [ "$(git -C "$1" for-each-ref | wc -l)" = 12001 ] || die "refs: not 12,001 refs"
}
make_loose() {
    cp -a "$repo" "$1"
    git -C "$1" rev-list --max-count=2600 main | awk '{
        for (k = 0; k < 3; k++) printf "create refs/heads/loose/%d/b%04d %s\n", k, NR, $1 }' |
        git -C "$1" update-ref --stdin
}
# E's highlighted blob: one commit of src/bench.c, 2,000 lines of C (100 functions of 20 lines:
# comments, strings, numbers, loops), the same bytes on every machine.
make_code() {
    local work=$1.work
    rm -rf "$work"
    mkdir -p "$work/src"
    awk 'BEGIN {
        print "/* bench.c: generated for the highlighted blob of bench.sh, part E. */"
        print "#include <stddef.h>"
        print "struct entry { int weight; const char *name; };"
        print "struct table { struct entry *entries; size_t len; };"
        for (f = 0; f < 100; f++) {
            printf "/* f%03d: adds the weights of a table, \"quoted\" & <escaped>. */\n", f
            printf "static int f%03d(const struct table *t, size_t n)\n", f
            print "{"
            printf "    int sum = 0x%x; // a hexadecimal constant\n", f * 7919 % 65536
            printf "    const char *label = \"table %d\\n\";\n", f
            print "    for (size_t i = 0; i < n && i < t->len; i++) {"
            printf "        if (t->entries[i].weight > %d)\n", f % 17
            printf "            sum += t->entries[i].weight * %d;\n", f % 5 + 2
            print "        else if (t->entries[i].name == NULL)"
            print "            continue;"
            print "        else"
            printf "            sum -= %d;\n", f % 11
            print "    }"
            print "    if (label[0] == 0) {"
            print "        return -1;"
            print "    }"
            printf "    sum = sum * 31 + %d;\n", f
            print "    sum ^= sum >> 3;"
            print "    return sum;"
            print "}"
        }
    }' | head -n 2000 >"$work/src/bench.c"
    git -C "$work" init -q -b main
    git -C "$work" add -A
    GIT_AUTHOR_DATE='2024-01-01T00:00:00Z' GIT_COMMITTER_DATE='2024-01-01T00:00:00Z' \
        git -C "$work" -c user.name=bench -c user.email=bench@example.invalid commit -q -m "bench.c"
    git clone -q --bare "$work" "$1"
    rm -rf "$work"
}
code_repo=$bench_dir/code.git
cached_repo code "code v1" make_code
wide_repo=$bench_dir/wide.git
refs_repo=$bench_dir/refs.git
loose_repo=$bench_dir/loose.git
wide_version="generator $(wide_generator | cksum | cut -d' ' -f1) commits=$wide_commits layout=${wide_dirs}x${wide_subdirs}x${wide_files}"
if [ "$pages_only" = 0 ]; then
cached_repo wide "$wide_version" make_wide
cached_repo refs "$wide_version refs=6000+6000 v2" make_refs
cached_repo loose "$repo_version loose=7800 v1" make_loose
printf 'wide repository: %s commits, %s files, %.1f MiB packed; refs: %s refs; loose: %s loose branches\n' \
    "$(git -C "$wide_repo" rev-list --count main)" "$(git -C "$wide_repo" ls-tree -r main | wc -l)" \
    "$(du -sk "$wide_repo/objects/pack" | awk '{ print $1 / 1024 }')" \
    "$(git -C "$refs_repo" for-each-ref | wc -l)" \
    "$(find "$loose_repo/refs/heads/loose" -type f | wc -l)"
fi

# --- 3. one nginx, three ways to the same repository ----------------------------------------------
run=$(mktemp -d "$bench_dir/run.XXXXXX")
nginx_pid=
forgelet_pid=
fcgiwrap_pid=
cgit_fcgiwrap_pid=
sampler_pid=
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
# children_of PID: the processes whose parent is PID, from /proc.
children_of() {
    local f line rest
    for f in /proc/[0-9]*/stat; do
        read -r line <"$f" 2>/dev/null || continue
        rest=${line##*) }
        # After the name: state, parent.
        read -r _ rest <<<"$rest"
        [ "${rest%% *}" = "$1" ] && { f=${f#/proc/}; printf '%s\n' "${f%/stat}"; }
    done
    return 0
}
# stop_pool PID: stops PID, an `fcgiwrap -c N`, and then the workers it preforked, which outlive
# it on SIGTERM. An orphaned worker counts as stopped once a zombie (PID 1 may never reap it).
stop_pool() {
    local pid=$1 kid i state
    local -a kids=()
    [ -n "$pid" ] || return 0
    mapfile -t kids < <(children_of "$pid")
    stop "$pid"
    for kid in "${kids[@]}"; do
        kill -TERM "$kid" 2>/dev/null || true
    done
    for kid in "${kids[@]}"; do
        for ((i = 0; i < 50; i++)); do
            state=$(sed -e 's/.*) //' -e 's/ .*//' "/proc/$kid/stat" 2>/dev/null) || break
            if [ -z "$state" ] || [ "$state" = Z ]; then break; fi
            sleep 0.1
        done
        ((i < 50)) || kill -KILL "$kid" 2>/dev/null || true
    done
}
cleanup() {
    stop "$nginx_pid"
    stop "$forgelet_pid"
    stop "$fcgiwrap_pid"
    stop_pool "$cgit_fcgiwrap_pid"
    stop "$sampler_pid"
    # Kept after a failure (to read the logs) or on request; removed after success or an interrupt.
    if { [ "$ok" = 1 ] || [ "$interrupted" = 1 ]; } && [ "${BENCH_KEEP:-0}" != 1 ]; then
        rm -rf "$run"
    else
        printf 'bench.sh: run folder kept: %s (nginx: nginx/error.log, forgelet: forgelet.log, fcgiwrap: fcgiwrap.log, fcgiwrap-cgit.log)\n' \
            "$run" >&2
    fi
}
trap cleanup EXIT
trap 'interrupted=1; exit 130' INT
trap 'interrupted=1; exit 143' TERM

mkdir -p "$run/nginx/temp" "$run/data" "$run/static" "$run/hb" "$run/hb-home" "$run/clones" \
    "$run/cgit/cache-off" "$run/cgit/cache-on"
case $run$http_backend$cgit_cgi in *[\|\&\\\"\;\ \$\{\}\']*) die "the run folder $run, $http_backend or $cgit_cgi has a character nginx or sed would misread" ;; esac

# A port nobody answers on; nginx is tried on the next one if it still loses the race.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# forgelet: its own config and data, the user `bench` and the repositories made the way a
# sysadmin would.
socket=$run/forgelet.sock
config=$run/config.toml
write_config() {
    cat >"$config" <<EOF2
data_dir = "$run/data"
base_url = "http://127.0.0.1:$1/git"
sendfile = "x-accel-redirect"
internal_prefix = "/.forgelet-repos"

[server]
listen = "unix:$socket"
EOF2
}
write_config 0
# A fresh random password (letters and digits only, so it needs no escaping in a URL).
password=$(head -c 48 /dev/urandom | base64 -w 0 | tr -dc 'A-Za-z0-9' | head -c 24)
[ "${#password}" -ge 16 ] || die "could not make a random password"
if [ "$only" = web ]; then
    say "forgelet user add bench; repo import bench/$size"
else
    say "forgelet user add bench; repo import bench/$size and bench/$size-private (private)"
fi
printf '%s\n' "$password" | "$bin" --config "$config" user add bench --password-stdin >/dev/null
"$bin" --config "$config" repo import "bench/$size" "$repo"
"$bin" --config "$config" repo import "bench/$size-code" "$code_repo"
if [ "$only" != web ]; then
    "$bin" --config "$config" repo import "bench/$size-private" "$repo"
    "$bin" --config "$config" repo set "bench/$size-private" --visibility private
fi
if [ "$pages_only" = 0 ]; then
    say "forgelet repo import bench/wide, bench/refs and bench/loose (for F and G)"
    for r in wide refs loose; do
        "$bin" --config "$config" repo import "bench/$r" "$bench_dir/$r.git"
    done
fi
if [ "$rss" = 1 ]; then
    say "forgelet repo create bench/rss (empty, for D)"
    "$bin" --config "$config" repo create bench/rss
fi

if [ "$only" != web ]; then
    # static: a copy of the same repository with the files the dumb protocol needs.
    cp -a "$repo" "$run/static/$size.git"
    git -C "$run/static/$size.git" update-server-info
    # http-backend: another copy, in the folder that is its GIT_PROJECT_ROOT.
    cp -a "$repo" "$run/hb/$size.git"
fi
# cgit (E): another copy, and one cgitrc per cache setting. Global settings come before the
# repository's (cgit applies them in order); everything else stays at cgit's defaults (50 commits
# a log page, as forgelet's; the cache's TTLs: 5 minutes for pages of a branch, forever for a
# page of a commit id). cache-root is set for both, so that "no cache" can be checked: its folder
# stays empty.
cp -a "$repo" "$run/cgit/$size.git"
cp -a "$code_repo" "$run/cgit/$size-code.git"
if [ "$pages_only" = 0 ]; then
    cp -a "$wide_repo" "$run/cgit/wide.git"
    cp -a "$refs_repo" "$run/cgit/refs.git"
fi
# What maintenance writes (a commit-graph with changed-path Bloom filters, which a path's history
# reads), in the repository forgelet serves, and the same file in cgit's copy: both sides read
# the same repository files.
if [ "$commit_graph" = 1 ]; then
    say "git commit-graph write --reachable --changed-paths (forgelet's bench/$size; copied to cgit's)"
    git -C "$run/data/repos/bench/$size.git" commit-graph write --reachable --changed-paths --no-progress ||
        die "writing the commit-graph failed"
    mkdir -p "$run/cgit/$size.git/objects/info"
    cp "$run/data/repos/bench/$size.git/objects/info/commit-graph" "$run/cgit/$size.git/objects/info/"
fi
write_cgitrc() {
    cat >"$run/cgit/cgitrc-$1" <<EOF2
enable-blame=1
cache-root=$run/cgit/cache-$1
cache-size=$2
virtual-root=$3
root-title=bench
max-atom-items=50
# cgit reads a repository's own filter (the highlighted blob's) only with this.
enable-filter-overrides=1
repo.url=$size
repo.path=$run/cgit/$size.git
repo.desc=the benchmark repository
repo.url=wide
repo.path=$run/cgit/wide.git
repo.desc=a repository of 12,000 files
repo.url=refs
repo.path=$run/cgit/refs.git
repo.desc=a repository of 12,001 refs
repo.url=$size-code
repo.path=$run/cgit/$size-code.git
repo.desc=a C file, highlighted
repo.source-filter=$cgit_highlight
EOF2
}
write_cgitrc off 0 /cgit/
write_cgitrc on 1000 /cgit-cached/

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

fcgiwrap_socket=$run/fcgiwrap.sock
cgit_socket=$run/fcgiwrap-cgit.sock
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
        # The baseline for A: the same bare repository as plain files. Like the snippet's internal
        # location, it does not log the expected 404s of the loose-object probes.
        location /static/ {
            alias $run/static/;
            log_not_found off;
        }
        # The baseline for B: git's own smart HTTP server, as git-http-backend(1) documents it,
        # with the same timeouts and body size as the snippet, no response buffering, and git's
        # host config shut out as forgelet does for its own git.
        location ^~ /hb/ {
            fastcgi_pass unix:$fcgiwrap_socket;
            include fastcgi_params;
            fastcgi_split_path_info ^(/hb)(/.*)\$;
            fastcgi_param SCRIPT_FILENAME $http_backend;
            fastcgi_param PATH_INFO \$fastcgi_path_info;
            fastcgi_param GIT_PROJECT_ROOT $run/hb;
            fastcgi_param GIT_HTTP_EXPORT_ALL 1;
            fastcgi_param GIT_PROTOCOL \$http_git_protocol;
            fastcgi_param GIT_CONFIG_NOSYSTEM 1;
            fastcgi_param GIT_CONFIG_GLOBAL /dev/null;
            fastcgi_param HOME $run/hb-home;
            fastcgi_param HTTP_PROXY "";
            fastcgi_buffering off;
            fastcgi_read_timeout 300s;
            fastcgi_send_timeout 300s;
            client_max_body_size 1g;
        }
        # The baseline for E: cgit as its documentation runs it behind nginx, through fcgiwrap
        # (its own instance, below), its URLs in PATH_INFO; without its cache under /cgit/, with
        # it under /cgit-cached/. nginx's defaults otherwise, as for forgelet's pages.
        location ^~ /cgit/ {
            fastcgi_pass unix:$cgit_socket;
            include fastcgi_params;
            fastcgi_split_path_info ^(/cgit)(/.*)\$;
            fastcgi_param SCRIPT_FILENAME $cgit_cgi;
            fastcgi_param PATH_INFO \$fastcgi_path_info;
            fastcgi_param CGIT_CONFIG $run/cgit/cgitrc-off;
            fastcgi_param HTTP_PROXY "";
        }
        location ^~ /cgit-cached/ {
            fastcgi_pass unix:$cgit_socket;
            include fastcgi_params;
            fastcgi_split_path_info ^(/cgit-cached)(/.*)\$;
            fastcgi_param SCRIPT_FILENAME $cgit_cgi;
            fastcgi_param PATH_INFO \$fastcgi_path_info;
            fastcgi_param CGIT_CONFIG $run/cgit/cgitrc-on;
            fastcgi_param HTTP_PROXY "";
        }
    }
}
EOF2
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

say "fcgiwrap on $fcgiwrap_socket ($http_backend)"
"$fcgiwrap_bin" -s "unix:$fcgiwrap_socket" </dev/null >"$run/fcgiwrap.log" 2>&1 &
fcgiwrap_pid=$!
wait_until "fcgiwrap's socket" "$fcgiwrap_pid" test -S "$fcgiwrap_socket" ||
    die "fcgiwrap exited: $(cat "$run/fcgiwrap.log")"
# E's: restricted to cgit, with as many preforked workers as wrk has connections, so that no
# request waits for a free worker (each forks its cgit), as forgelet has its page workers.
say "fcgiwrap on $cgit_socket ($cgit_cgi, $web_connections workers)"
"$fcgiwrap_bin" -c "$web_connections" -p "$cgit_cgi" -s "unix:$cgit_socket" </dev/null \
    >"$run/fcgiwrap-cgit.log" 2>&1 &
cgit_fcgiwrap_pid=$!
wait_until "fcgiwrap's socket for cgit" "$cgit_fcgiwrap_pid" test -S "$cgit_socket" ||
    die "fcgiwrap (cgit) exited: $(cat "$run/fcgiwrap-cgit.log")"

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
# start_forgelet: `forgelet serve` on the socket; returns once the socket exists (requests may
# still race its listen() for a moment: callers retry their first one).
start_forgelet() {
    rm -f "$socket"
    RUST_LOG=${RUST_LOG:-warn} "$bin" --config "$config" serve </dev/null >>"$run/forgelet.log" 2>&1 &
    forgelet_pid=$!
    wait_until "forgelet's socket" "$forgelet_pid" test -S "$socket" ||
        die "forgelet serve exited: $(cat "$run/forgelet.log")"
}
say "forgelet serve on $socket, nginx on 127.0.0.1:$port"
start_forgelet

base=http://127.0.0.1:$port
url_forgelet=$base/git/bench/$size.git
url_static=$base/static/$size.git
url_hb=$base/hb/$size.git
url_private=http://bench:$password@127.0.0.1:$port/git/bench/$size-private.git
url_private_anonymous=$base/git/bench/$size-private.git
source_list=$(git -C "$repo" for-each-ref --format='%(objectname)%09%(refname)')
# ls_remote dumb|smart URL: the refs, into $run/ls-remote.out.
ls_remote() {
    if [ "$1" = smart ]; then
        GIT_SMART_HTTP=1 git -c protocol.version=2 ls-remote --refs "$2" >"$run/ls-remote.out" 2>&1
    else
        GIT_SMART_HTTP=0 git ls-remote --refs "$2" >"$run/ls-remote.out" 2>&1
    fi
}
if [ "$only" = web ]; then
    checks=("dumb $url_forgelet" "smart $url_forgelet")
else
    checks=("dumb $url_forgelet" "dumb $url_static" "dumb $url_private" "smart $url_forgelet"
        "smart $url_hb")
fi
for check in "${checks[@]}"; do
    mode=${check%% *} url=${check#* }
    shown=${url/$password/PASSWORD}
    # The first request may race forgelet's listen(); give it a few tries.
    if ! wait_until "git ls-remote ($mode) $shown (see $run/ls-remote.out)" "$forgelet_pid" \
        ls_remote "$mode" "$url"; then
        die "forgelet exited: $(cat "$run/forgelet.log")"
    fi
    out=$(cat "$run/ls-remote.out")
    [ "$out" = "$source_list" ] ||
        die "git ls-remote ($mode) $shown lists other refs than the repository:"$'\n'"$out"
done
# The private copy really is private: without the password, git gets nothing.
if [ "$only" != web ] && ls_remote dumb "$url_private_anonymous"; then
    die "bench/$size-private answers git ls-remote without credentials; is it private?"
fi

# --- 4. clones -----------------------------------------------------------------------------------
# Every clone runs with GIT_TRACE_CURL (headers only: a few hundred lines, the same cost on both
# sides), which gives the number of requests and the HTTP phase: from the first request to the end
# of the last response. The wall time adds git's own work (index-pack of the whole pack, the
# connectivity check), identical on both sides, so the HTTP phase shows the server's share closer
# up. (For a smart clone git indexes the pack as it arrives: there the two are close.)

# http_phase TRACE: seconds from the first request sent to the last response finished.
http_phase() {
    awk 'function t(s, a) { split(s, a, ":"); return a[1] * 3600 + a[2] * 60 + a[3] }
        / => Send header: (GET|POST) / && first == "" { first = t($1) }
        / == Info: (Connection #[0-9]+ to host .* left intact|Closing connection)/ { last = t($1) }
        END {
            if (first == "" || last == "") { print "nan"; exit }
            d = last - first
            if (d < 0) d += 86400
            printf "%.4f\n", d
        }' "$1"
}

# clone dumb|smart NAME URL [warm]: one clone into the run folder, checked against the source's
# refs, then removed. Prints "WALL HTTP REQUESTS". With warm, the clone is also checked with git
# fsck (connectivity), and a smart one is traced with GIT_TRACE_PACKET into packet-NAME.log.
clone() {
    local mode=$1 name=$2 url=$3 warm=${4:-} dest trace start end
    local -a git_clone=(git clone --bare -q)
    dest=$run/clones/$name.git
    trace=$run/trace-$name.log
    rm -rf "$dest" "$trace" "$run/packet-$name.log"
    if [ "$mode" = smart ]; then
        git_clone=(git -c protocol.version=2 clone --bare -q)
        if [ -n "$warm" ]; then
            git_clone=(env "GIT_TRACE_PACKET=$run/packet-$name.log" "${git_clone[@]}")
        fi
    fi
    # B measures git's own pack generation: forgelet's cache is emptied first (the answer is then
    # made by git and written for the cache, as for any first clone).
    if [ "$mode" = smart ] && [ "$name" = forgelet ]; then
        "$bin" --config "$config" cache clear >/dev/null
    fi
    start=$(date +%s.%N)
    GIT_TRACE_CURL=$trace GIT_TRACE_CURL_NO_DATA=1 GIT_SMART_HTTP=$([ "$mode" = smart ] && echo 1 || echo 0) \
        "${git_clone[@]}" "$url" "$dest" >&2 || die "$mode clone of $name failed"
    end=$(date +%s.%N)
    [ "$(refs_of "$dest")" = "$source_refs" ] ||
        die "$mode clone of $name has other refs than the repository (kept in $dest)"
    if [ -n "$warm" ]; then
        git -C "$dest" fsck --connectivity-only --no-progress >&2 ||
            die "git fsck of the $mode clone of $name failed (kept in $dest)"
    fi
    rm -rf "$dest"
    printf '%s %s %s\n' "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.4f", b - a }')" \
        "$(http_phase "$trace")" "$(grep -cE ' => Send header: (GET|POST) ' "$trace" || true)"
}

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
# verdict VALUE GOAL: PASS when VALUE <= GOAL.
verdict() {
    if awk -v r="$1" -v g="$2" 'BEGIN { exit !(r <= g) }'; then
        printf 'PASS (goal: at most %s)' "$2"
    else
        printf 'ABOVE GOAL (goal: at most %s)' "$2"
    fi
}
# at_least VALUE GOAL: PASS when VALUE >= GOAL.
at_least() {
    if awk -v r="$1" -v g="$2" 'BEGIN { exit !(r >= g) }'; then
        printf 'PASS (goal: at least %sx)' "$2"
    else
        printf 'BELOW GOAL (goal: at least %sx)' "$2"
    fi
}
# row LABEL WALL_A WALL_B RATIO HTTP_A HTTP_B: seconds; the HTTP phase shown in milliseconds.
row() {
    awk -v l="$1" -v wf="$2" -v ws="$3" -v q="$4" -v hf="$5" -v hs="$6" 'BEGIN {
        printf "  %-8s %12.3fs %12.3fs %8s %12.1fms %12.1fms\n", l, wf, ws,
            (q == "" ? "" : sprintf("%.3f", q)), hf * 1000, hs * 1000 }'
}

summary=()
# compare dumb|smart GOAL TITLE NAME_A URL_A NAME_B URL_B: an untimed warm-up round, then ROUNDS
# timed rounds of one clone from each (the order alternating), the table, and A's median clone
# time over B's against GOAL; the verdict also goes to the summary under TITLE.
compare() {
    local mode=$1 goal=$2 title=$3 r i k out wall http reqs ratio name
    local -a names=("$4" "$6") urls=("$5" "$7") order
    local -a wall_0=() wall_1=() http_0=() http_1=() reqs_0=() reqs_1=() paired=()
    say "$title: warm-up round (untimed; git fsck --connectivity-only of each clone)"
    for k in 0 1; do
        out=$(clone "$mode" "${names[k]}" "${urls[k]}" warm)
        read -r wall http reqs <<<"$out"
        awk -v n="${names[k]}" -v w="$wall" -v h="$http" -v q="$reqs" 'BEGIN {
            printf "  %-12s %7.3fs wall, %7.1fms HTTP phase, %s requests\n", n, w, h * 1000, q }'
    done
    if [ "$mode" = smart ]; then
        # Protocol v2 for real: the server advertised "version 2", the client sent the v2
        # "command=fetch" and the server answered with a v2 "packfile" section. A server ignoring
        # Git-Protocol would have answered v0, which git accepts silently.
        for k in 0 1; do
            if ! grep -q '< version 2$' "$run/packet-${names[k]}.log" ||
                ! grep -q '> command=fetch$' "$run/packet-${names[k]}.log" ||
                ! grep -q '< packfile$' "$run/packet-${names[k]}.log"; then
                die "${names[k]} did not speak protocol v2 (see $run/packet-${names[k]}.log)"
            fi
        done
        printf '  protocol v2 spoken by both (GIT_TRACE_PACKET: "version 2", "command=fetch", "packfile")\n'
    fi

    say "$title: $rounds timed rounds (the order alternates each round)"
    printf '  %-8s %27s %8s %29s\n' "" "clone (wall)" "" "HTTP phase"
    printf '  %-8s %13s %13s %8s %14s %14s\n' round "${names[0]}" "${names[1]}" ratio "${names[0]}" "${names[1]}"
    for ((r = 1; r <= rounds; r++)); do
        if ((r % 2)); then order=(0 1); else order=(1 0); fi
        for k in "${order[@]}"; do
            out=$(clone "$mode" "${names[k]}" "${urls[k]}")
            read -r wall http reqs <<<"$out"
            if [ "$k" = 0 ]; then
                wall_0+=("$wall") http_0+=("$http") reqs_0+=("$reqs")
            else
                wall_1+=("$wall") http_1+=("$http") reqs_1+=("$reqs")
            fi
        done
        i=$((r - 1))
        paired+=("$(ratio_of "${wall_0[i]}" "${wall_1[i]}")")
        row "$r" "${wall_0[i]}" "${wall_1[i]}" "${paired[i]}" "${http_0[i]}" "${http_1[i]}"
    done
    local med_wall_0 med_wall_1 med_http_0 med_http_1
    med_wall_0=$(median "${wall_0[@]}")
    med_wall_1=$(median "${wall_1[@]}")
    med_http_0=$(median "${http_0[@]}")
    med_http_1=$(median "${http_1[@]}")
    row median "$med_wall_0" "$med_wall_1" "$(median "${paired[@]}")" "$med_http_0" "$med_http_1"
    row min "$(minimum "${wall_0[@]}")" "$(minimum "${wall_1[@]}")" "" \
        "$(minimum "${http_0[@]}")" "$(minimum "${http_1[@]}")"
    printf '  %-8s %13s %13s   (HTTP requests per clone, median)\n' requests \
        "$(median "${reqs_0[@]}" | sed 's/\..*//')" "$(median "${reqs_1[@]}" | sed 's/\..*//')"
    printf '  (ratio column: each round'"'"'s own %s/%s; its median row is the median of those)\n' \
        "${names[0]}" "${names[1]}"

    ratio=$(ratio_of "$med_wall_0" "$med_wall_1")
    printf '\n%s/%s, median clone time: %s  %s\n' "${names[0]}" "${names[1]}" "$ratio" \
        "$(verdict "$ratio" "$goal")"
    printf '%s/%s, median HTTP phase: %s  (%s %s)\n\n' "${names[0]}" "${names[1]}" \
        "$(ratio_of "$med_http_0" "$med_http_1")" "${names[0]}" \
        "$(awk -v f="$med_http_0" -v s="$med_http_1" 'BEGIN {
            d = (f - s) * 1000; printf "%.1f ms %s per clone", (d < 0 ? -d : d), (d < 0 ? "shorter" : "longer") }')"
    name="$title, ${names[0]}/${names[1]}"
    summary+=("$(printf '%-48s %6s  %s' "$name" "$ratio" "$(verdict "$ratio" "$goal")")")
}

if [ -n "$only" ]; then
    summary+=("$(printf '%-48s %6s  %s' "A, B, C. clones" - "skipped (BENCH_ONLY=$only)")")
else
    compare dumb "$goal_dumb" "A. dumb clone" forgelet "$url_forgelet" static "$url_static"
    compare smart "$goal_smart" "B. smart clone (v2)" forgelet "$url_forgelet" http-backend "$url_hb"
    compare dumb "$goal_private" "C. dumb clone, private vs public" private "$url_private" \
        public "$url_forgelet"
fi

# --- I. the pack cache ---------------------------------------------------------------------------
# The server's cost, not git's client-side indexing: the requests of a real `git clone` are
# recorded once (deploy/record_fetch.py, a loopback proxy in front of nginx) and replayed with
# curl, the answer discarded; once per run the answers are checked to be packs git accepts
# (index-pack --strict, then fsck of the source's refs) and the cached answer to be byte for byte
# the one git made.
#   I1 cold:    forgelet's cache emptied before each of its replays (the cold answer includes
#               writing the entry), next to git http-backend. Goal: at most 1.0.
#   I2 hit:     forgelet answering from its cache (nginx sends the entry with sendfile), next to
#               nginx sending a static file of the same size. Goal: at most 1.1 (medians of at least
#               10 interleaved rounds).
#   I3 hit vs http-backend: goal at least 5x faster.
#   I4 storm:   32 replays at once, forgelet with an empty cache next to http-backend: git
#               pack-objects runs (goal 1; http-backend runs 32), total wall time (goal at most 0.3)
#               and forgelet's peak RSS (goal at most 64 MiB). Run for BENCH_SIZE medium and small.
pc_rounds=$((rounds < 10 ? 10 : rounds))
goal_pc_cold=1.0
goal_pc_hit=1.1
goal_pc_faster=5
goal_storm_time=0.3
storm_clients=32
# cache_counts: forgelet's hits, misses, passes and stored answers (repos/.cache/counters).
cache_counts() {
    od -An -v -tu8 -w32 "$run/data/repos/.cache/counters" 2>/dev/null | awk '{ print $1, $2, $3, $4 }'
}
# replay URL [OUT]: POSTs the recorded fetch to URL/git-upload-pack, the answer kept in OUT
# (untimed checks) or discarded, as the static file's is (timed rounds: writing hundreds of MB to
# a file would be most of the time); prints the seconds it took and the bytes of the answer.
replay() {
    local start end out code size
    start=$(date +%s.%N)
    out=$(curl -s -o "${2:-/dev/null}" -w '%{http_code} %{size_download}' "${replay_headers[@]}" \
        --data-binary "@$replay_body" "$1/git-upload-pack") || die "replay to $1 failed"
    end=$(date +%s.%N)
    read -r code size <<<"$out"
    [ "$code" = 200 ] || die "replay to $1 answered $code${2:+ (see $2)}"
    awk -v a="$start" -v b="$end" -v n="$size" 'BEGIN { printf "%.4f %s\n", b - a, n }'
}
# seconds_of "SECONDS BYTES": the seconds.
seconds_of() {
    printf '%s\n' "${1%% *}"
}
# cold_rounds N: N rounds of one cold replay from forgelet (its cache emptied first) and one from
# http-backend, the order alternating; the seconds into cold_f and cold_h.
cold_rounds() {
    local r
    cold_f=() cold_h=()
    for ((r = 1; r <= $1; r++)); do
        "$bin" --config "$config" cache clear >/dev/null
        if ((r % 2)); then
            cold_f+=("$(seconds_of "$(replay "$url_forgelet")")")
            cold_h+=("$(seconds_of "$(replay "$url_hb")")")
        else
            cold_h+=("$(seconds_of "$(replay "$url_hb")")")
            cold_f+=("$(seconds_of "$(replay "$url_forgelet")")")
        fi
        printf '  %-6s forgelet %8.3fs   http-backend %8.3fs\n' "$r" "${cold_f[r - 1]}" "${cold_h[r - 1]}"
    done
}
# curl_static: GETs the cached answer's copy from nginx as a static file; prints the seconds.
curl_static() {
    local start end code
    start=$(date +%s.%N)
    code=$(curl -s -o /dev/null -w '%{http_code}' "$base/static/answer.pack") || die "static GET failed"
    end=$(date +%s.%N)
    [ "$code" = 200 ] || die "the static copy answered $code"
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.4f\n", b - a }'
}
# check_answer FILE NAME: the pack in FILE is complete: indexed strictly, and every ref of the
# source is connected in it.
check_answer() {
    local chk=$run/check-$2.git
    rm -rf "$chk"
    git init -q --bare --initial-branch=main "$chk"
    python3 "$script_dir/record_fetch.py" pack "$1" | git -C "$chk" index-pack --strict --stdin >/dev/null ||
        die "the $2 answer is not a pack git accepts (see $1)"
    git -C "$chk" for-each-ref --format='' >/dev/null
    printf '%s\n' "$source_list" | awk -F '\t' '{ print "create " $2 " " $1 }' |
        git -C "$chk" update-ref --stdin || die "the $2 answer lacks a ref's object"
    git -C "$chk" fsck --connectivity-only --no-progress >&2 ||
        die "the $2 answer is not complete (git fsck; kept in $chk)"
    rm -rf "$chk"
}
if [ "$only" = web ]; then
    summary+=("$(printf '%-48s %6s  %s' "I. pack cache" - 'skipped (BENCH_ONLY=web)')")
else
    say "I. pack cache: recording a real clone's requests (deploy/record_fetch.py)"
    rec=$run/recorded
    mkdir -p "$rec"
    python3 "$script_dir/record_fetch.py" proxy "$port" "$rec" >"$rec/port" 2>"$rec/log" &
    rec_pid=$!
    wait_until "the recording proxy" "$rec_pid" test -s "$rec/port" || die "$(cat "$rec/log")"
    rm -rf "$run/clones/recorded.git"
    GIT_SMART_HTTP=1 git -c protocol.version=2 clone --bare -q \
        "http://127.0.0.1:$(cat "$rec/port")/git/bench/$size.git" "$run/clones/recorded.git" ||
        die "the recorded clone failed"
    kill "$rec_pid" 2>/dev/null
    wait "$rec_pid" 2>/dev/null || true
    rm -rf "$run/clones/recorded.git"
    # The fetch is the last POST (protocol v2 lists the refs first).
    last=$(find "$rec" -name '*.body' | sed 's|.*/||; s|\.body$||' | sort -n | tail -n 1)
    [ -n "$last" ] || die "no git-upload-pack request was recorded"
    replay_body=$rec/$last.body
    replay_headers=()
    while IFS= read -r line; do
        replay_headers+=(-H "$line")
    done <"$rec/$last.headers"
    printf '  recorded: %s bytes of fetch request (%s)\n' "$(stat -c %s "$replay_body")" \
        "$(tr '\n' ';' <"$rec/$last.headers")"

    say "I1. cold full clone, replayed: forgelet (cache emptied first) and http-backend; $pc_rounds rounds"
    cold_rounds "$pc_rounds"
    # Checked once, untimed: both answers are packs git accepts (forgelet's is kept in the cache,
    # for I2).
    "$bin" --config "$config" cache clear >/dev/null
    replay "$url_forgelet" "$run/answer-cold" >/dev/null
    replay "$url_hb" "$run/answer-hb" >/dev/null
    check_answer "$run/answer-cold" forgelet
    check_answer "$run/answer-hb" http-backend
    rm -f "$run/answer-hb"
    med_cold_f=$(median "${cold_f[@]}")
    med_cold_h=$(median "${cold_h[@]}")
    i1=$(ratio_of "$med_cold_f" "$med_cold_h")
    printf '  median: forgelet %ss, http-backend %ss: %s  %s\n' "$med_cold_f" "$med_cold_h" "$i1" \
        "$(verdict "$i1" "$goal_pc_cold")"
    summary+=("$(printf '%-48s %6s  %s' "I1. cold clone, forgelet/http-backend" "$i1" "$(verdict "$i1" "$goal_pc_cold")")")

    say "I2. repeated full clone (a cache hit, sent by nginx) next to nginx sending a static file of the same size"
    # The checked cold answer was kept: this replay is a hit, byte for byte that answer.
    before=$(cache_counts)
    replay "$url_forgelet" "$run/answer-hit" >/dev/null
    after=$(cache_counts)
    [ "${after%% *}" -gt "${before%% *}" ] || die "the repeated clone was not a cache hit (counts $before -> $after)"
    cmp -s "$run/answer-hit" "$run/answer-cold" || die "the cached answer differs from the one git made"
    cp "$run/answer-hit" "$run/static/answer.pack"
    printf '  the cached answer is the one git made, byte for byte (%s bytes)\n' "$(stat -c %s "$run/answer-hit")"
    hit_f=() hit_s=()
    for ((r = 1; r <= pc_rounds; r++)); do
        if ((r % 2)); then
            hit_f+=("$(seconds_of "$(replay "$url_forgelet")")")
            hit_s+=("$(curl_static)")
        else
            hit_s+=("$(curl_static)")
            hit_f+=("$(seconds_of "$(replay "$url_forgelet")")")
        fi
        printf '  %-6s forgelet %8.4fs   static %8.4fs\n' "$r" "${hit_f[r - 1]}" "${hit_s[r - 1]}"
    done
    med_hit_f=$(median "${hit_f[@]}")
    med_hit_s=$(median "${hit_s[@]}")
    i2=$(ratio_of "$med_hit_f" "$med_hit_s")
    i3=$(ratio_of "$med_cold_h" "$med_hit_f")
    printf '  median: forgelet %ss, static %ss: %s  %s\n' "$med_hit_f" "$med_hit_s" "$i2" "$(verdict "$i2" "$goal_pc_hit")"
    printf '  http-backend (cold) / forgelet (hit): %sx faster\n' "$i3"
    summary+=("$(printf '%-48s %6s  %s' "I2. cache hit, forgelet/static file" "$i2" "$(verdict "$i2" "$goal_pc_hit")")")
    summary+=("$(printf '%-48s %6sx %s' "I3. cache hit vs http-backend (faster)" "$i3" \
        "$(at_least "$i3" "$goal_pc_faster")")")

    if [ "$size" = large ]; then
        summary+=("$(printf '%-48s %6s  %s' "I4. clone storm" - 'run with BENCH_SIZE=medium')")
    else
        # storm URL NAME: 32 replays at once; prints "SECONDS PACK_OBJECTS PEAK_RSS_KIB".
        storm() {
            local start end i watch_out=$run/watch-$2
            rm -f "$run/storm-stop"
            python3 "$script_dir/record_fetch.py" watch "$run/storm-stop" "$forgelet_pid" >"$watch_out" &
            local watch_pid=$!
            sleep 0.2
            start=$(date +%s.%N)
            local -a pids=()
            for ((i = 0; i < storm_clients; i++)); do
                replay "$1" >"$run/storm-$2-$i" &
                pids+=($!)
            done
            for i in "${pids[@]}"; do
                wait "$i" || die "a replay of the storm failed"
            done
            end=$(date +%s.%N)
            touch "$run/storm-stop"
            wait "$watch_pid"
            # forgelet's answers are one answer, of one size (git's own differ in their
            # progress lines); the answer is checked once more after the storm.
            for ((i = 1; i < storm_clients; i++)); do
                [ "$(awk '{ print $2 }' "$run/storm-$2-$i")" = "$(awk '{ print $2 }' "$run/storm-$2-0")" ] ||
                    [ "$2" = hb ] || die "storm answer $i of $2 differs in size from the first"
            done
            rm -f "$run/storm-$2-"*
            printf '%s %s %s\n' "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.4f", b - a }')" \
                "$(awk '{ print $2 }' "$watch_out")" "$(awk '{ print $4 }' "$watch_out")"
        }
        say "I4. clone storm: $storm_clients identical full clones at once (replayed), forgelet with an empty cache, then http-backend"
        rm -rf "$run/data/repos/.cache"
        read -r storm_f pack_f rss_f <<<"$(storm "$url_forgelet" forgelet)"
        read -r storm_h pack_h _ <<<"$(storm "$url_hb" hb)"
        replay "$url_forgelet" "$run/answer-storm" >/dev/null
        cmp -s "$run/answer-storm" "$run/answer-cold" ||
            check_answer "$run/answer-storm" storm
        i4=$(ratio_of "$storm_f" "$storm_h")
        rss_f_mib=$(awk -v k="$rss_f" 'BEGIN { printf "%.1f", k / 1024 }')
        printf '  forgelet: %ss, %s pack-objects run(s), peak RSS %s MiB; http-backend: %ss, %s pack-objects runs\n' \
            "$storm_f" "$pack_f" "$rss_f_mib" "$storm_h" "$pack_h"
        pack_verdict=$([ "$pack_f" = 1 ] && echo 'PASS (goal: 1)' || echo 'ABOVE GOAL (goal: 1)')
        summary+=("$(printf '%-48s %6s  %s' "I4. storm: pack-objects runs, forgelet (hb: $pack_h)" "$pack_f" "$pack_verdict")")
        summary+=("$(printf '%-48s %6s  %s' "I4. storm: wall time, forgelet/http-backend" "$i4" "$(verdict "$i4" "$goal_storm_time")")")
        summary+=("$(printf '%-48s %6s  %s' "I4. storm: forgelet peak RSS (MiB)" "$rss_f_mib" "$(verdict "$rss_f_mib" "$goal_rss_mib")")")
    fi
fi
# I5: the cold clone again after `forgelet maintain` of forgelet's copy (bitmaps, a multi-pack
# index, the commit-graph), http-backend's copy left as it was. Reported, no goal.
if [ "$only" != web ]; then
    say "I5. forgelet maintain bench/$size, then cold full clones again (http-backend's copy unmaintained); $rounds rounds"
    "$bin" --config "$config" maintain "bench/$size" >"$run/maintain.log" 2>&1 ||
        die "forgelet maintain failed: $(cat "$run/maintain.log")"
    cold_rounds "$rounds"
    "$bin" --config "$config" cache clear >/dev/null
    replay "$url_forgelet" "$run/answer-maintained" >/dev/null
    check_answer "$run/answer-maintained" maintained
    rm -f "$run/answer-maintained"
    i5=$(ratio_of "$(median "${cold_f[@]}")" "$(median "${cold_h[@]}")")
    printf '  median: forgelet (maintained) %ss, http-backend %ss: %s\n' "$(median "${cold_f[@]}")" \
        "$(median "${cold_h[@]}")" "$i5"
    summary+=("$(printf '%-48s %6s  %s' "I5. cold clone after maintain, forgelet/hb" "$i5" 'reported (no goal)')")
fi
if [ "$only" = cache ]; then
    say "summary"
    printf '%s\n' "${summary[@]}"
    printf '(%s repository, nginx %s, %s; BENCH_ONLY=cache)\n' "$size" \
        "$("$nginx_bin" -v 2>&1 | sed 's|.*/||')" "$(git --version)"
    exit 0
fi

# --- 5. memory -----------------------------------------------------------------------------------
# VmHWM is the peak resident set of a process over its whole life, so forgelet is restarted before
# each measurement: the figure then covers the start, one small request and the push (or clone).
# VmRSS sampled every 50 ms meanwhile shows the shape: flat, or growing with the data sent.
# Only forgelet's own process is measured: the git it runs (receive-pack, index-pack, pack-objects)
# is a separate process with its own memory.
kib_of() {
    awk -v k="$2" '$1 == k ":" { print $2 }' "/proc/$1/status"
}
mib() {
    awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'
}
probe() {
    GIT_SMART_HTTP=1 git -c protocol.version=2 ls-remote "$1" >"$run/ls-remote.out" 2>&1
}
# restart_and_probe: a fresh forgelet, one smart request answered; sets base_kib to its VmHWM
# then. (Not run in $(...): forgelet must be this shell's child.)
restart_and_probe() {
    stop "$forgelet_pid"
    forgelet_pid=
    start_forgelet
    wait_until "git ls-remote $url_rss (see $run/ls-remote.out)" "$forgelet_pid" probe "$url_rss" ||
        die "forgelet exited: $(cat "$run/forgelet.log")"
    # The measured process is forgelet itself, not a shell around it.
    [ "$(cat "/proc/$forgelet_pid/comm")" = forgelet ] ||
        die "process $forgelet_pid is not forgelet but $(cat "/proc/$forgelet_pid/comm")"
    base_kib=$(kib_of "$forgelet_pid" VmHWM)
}
# sample_rss PID FILE: VmRSS of PID (KiB) every 50 ms into FILE, until PID exits or this is stopped.
sample_rss() {
    local k v rest
    while [ -r "/proc/$1/status" ]; do
        while read -r k v rest; do
            if [ "$k" = VmRSS: ]; then printf '%s\n' "$v"; fi
        done <"/proc/$1/status" 2>/dev/null || break
        sleep 0.05
    done >"$2"
}
start_sampler() {
    sample_rss "$forgelet_pid" "$1" &
    sampler_pid=$!
}
stop_sampler() {
    stop "$sampler_pid"
    sampler_pid=
}
# samples FILE: a line on the samples in FILE.
samples() {
    awk '{ v[NR] = $1; if ($1 > m) m = $1 }
        function at(f, i) { i = int(NR * f); return v[i < 1 ? 1 : i] / 1024 }
        END {
            if (NR == 0) { print "  no VmRSS samples"; exit }
            printf "  VmRSS every 50 ms (%d samples): %.1f, %.1f, %.1f, %.1f MiB at 1/4, 1/2, 3/4, end; max %.1f MiB\n",
                NR, at(0.25), at(0.5), at(0.75), at(1), m / 1024
        }' "$1"
}
# rss_verdict BASE_KIB PEAK_KIB: a line for the summary.
rss_verdict() {
    printf '%6s MiB peak (%s MiB after start and one request)  %s' "$(mib "$2")" "$(mib "$1")" \
        "$(if (($2 < goal_rss_mib * 1024)); then
            printf 'PASS (goal: under %s MiB)' "$goal_rss_mib"
        else
            printf 'ABOVE GOAL (goal: under %s MiB)' "$goal_rss_mib"
        fi)"
}
if [ "$rss" = 1 ]; then
    url_rss=$base/git/bench/rss.git
    url_rss_push=http://bench:$password@127.0.0.1:$port/git/bench/rss.git
    rss_mib=$(mib "$rss_pack_kib")

    say "D. push of $rss_mib MiB to an empty repository (chunked: http.postBuffer=1 MiB)"
    restart_and_probe
    start_sampler "$run/rss-push.samples"
    start=$(date +%s.%N)
    GIT_TRACE_CURL=$run/trace-rss-push.log GIT_TRACE_CURL_NO_DATA=1 \
        git -C "$rss_repo" -c http.postBuffer=1048576 push -q "$url_rss_push" main >&2 ||
        die "push of the rss repository failed"
    end=$(date +%s.%N)
    stop_sampler
    push_kib=$(kib_of "$forgelet_pid" VmHWM)
    grep -q 'Send header: Transfer-Encoding: chunked' "$run/trace-rss-push.log" ||
        die "the push was not sent chunked (see $run/trace-rss-push.log)"
    [ "$(git -C "$run/data/repos/bench/rss.git" rev-parse main)" = "$(git -C "$rss_repo" rev-parse main)" ] ||
        die "after the push, bench/rss's main is not the pushed commit"
    awk -v a="$start" -v b="$end" -v m="$rss_mib" 'BEGIN {
        printf "  pushed in %.1f s (%.0f MiB/s)\n", b - a, m / (b - a) }'
    printf '  forgelet VmHWM: %s MiB after start and one request, %s MiB after the push\n' \
        "$(mib "$base_kib")" "$(mib "$push_kib")"
    samples "$run/rss-push.samples"
    printf '  (the push signs in with a password: its one argon2id check, at the start, is in the peak)\n'
    summary+=("$(printf '%-48s %s' "D. forgelet peak RSS, push of $rss_mib MiB" "$(rss_verdict "$base_kib" "$push_kib")")")

    say "D. smart clone (v2) of the same $rss_mib MiB"
    restart_and_probe
    dest=$run/clones/rss.git
    start_sampler "$run/rss-clone.samples"
    start=$(date +%s.%N)
    git -c protocol.version=2 clone --bare -q "$url_rss" "$dest" >&2 || die "clone of bench/rss failed"
    end=$(date +%s.%N)
    stop_sampler
    clone_kib=$(kib_of "$forgelet_pid" VmHWM)
    [ "$(refs_of "$dest")" = "$rss_refs" ] || die "the clone of bench/rss has other refs than the source"
    git -C "$dest" fsck --connectivity-only --no-progress >&2 || die "git fsck of the clone of bench/rss failed"
    rm -rf "$dest"
    awk -v a="$start" -v b="$end" -v m="$rss_mib" 'BEGIN {
        printf "  cloned in %.1f s (%.0f MiB/s)\n", b - a, m / (b - a) }'
    printf '  forgelet VmHWM: %s MiB after start and one request, %s MiB after the clone\n' \
        "$(mib "$base_kib")" "$(mib "$clone_kib")"
    samples "$run/rss-clone.samples"
    summary+=("$(printf '%-48s %s' "D. forgelet peak RSS, clone of $rss_mib MiB" "$(rss_verdict "$base_kib" "$clone_kib")")")
else
    summary+=("$(printf '%-48s %6s  %s' "D. forgelet peak RSS, push and clone" - \
        "$(if [ "$only" = web ]; then echo 'skipped (BENCH_ONLY=web)'; else echo 'skipped (BENCH_RSS=1 runs it)'; fi)")")
fi

# --- 6. web pages --------------------------------------------------------------------------------
# The same five places in the repository from forgelet and from cgit. The pages are each forge's
# own, not the same HTML: cgit's summary lists branches, tags and the last ten commits where
# forgelet's home shows the latest commit and the file tree; both logs show 50 commits a page.
# The commit is main's parent (two text files edited: main's tip also rewrites a 400 KiB binary),
# the blob one of the text files (40 to 120 lines).
web_commit=$(git -C "$repo" rev-parse main~1)
web_blob=src/d07/file127.txt
if [ "$size" = large ]; then
    # The first Rust file of more than 20 KB in src/ on main: a file with a long history.
    # (awk reads to the end: git must not die of a closed pipe.)
    web_blob=$(git -C "$repo" ls-tree -r -l main -- src |
        awk '!found && $4 > 20000 && $5 ~ /[.]rs$/ { print $5; found = 1 }')
    [ -n "$web_blob" ] || die "the large repository has no Rust file over 20 KB in src/ on main"
fi
web_line=$(git -C "$repo" cat-file blob "main:$web_blob" | sed -n 2p)
if [ "$size" = large ]; then
    # Its first line of more than 20 characters that HTML leaves as it is.
    web_line=$(git -C "$repo" cat-file blob "main:$web_blob" |
        awk '!found && length($0) > 20 && $0 !~ /[<>&"\047]/ { print; found = 1 }')
fi
[ -n "$web_line" ] || die "$web_blob on main has no line to look for in its page"
# history: the commits that touched the blob's file (cgit: log?path=); tags: the tags, forgelet's
# first page of 50 next to cgit's list of every tag; compare: main~20...main, forgelet's commits
# between and their diff next to cgit's diff page of the same two commits (its diffstat and diff,
# no commit list); feed: main's commits as Atom, 50 entries on both sides (max-atom-items below).
web_compare_base=$(git -C "$repo" rev-parse main~20)
web_compare_head=$(git -C "$repo" rev-parse main)
web_compare_file=$(git -C "$repo" diff --name-only "$web_compare_base" "$web_compare_head" | head -n 1)
# hl-blob: the highlighted C file (cgit's with its source filter).
web_pages=(home tree log commit blob history tags compare feed hl-blob)
web_hl=9
web_forgelet=$base/git/bench/$size
web_forgelet_urls=("$web_forgelet" "$web_forgelet/tree/main" "$web_forgelet/commits/main"
    "$web_forgelet/commit/$web_commit" "$web_forgelet/blob/main/$web_blob"
    "$web_forgelet/commits/main/$web_blob" "$web_forgelet/tags"
    "$web_forgelet/compare/$web_compare_base...$web_compare_head"
    "$web_forgelet/feeds/commits/main.atom"
    "$web_forgelet-code/blob/main/src/bench.c")
web_cgit_paths=("/$size/" "/$size/tree/" "/$size/log/" "/$size/commit/?id=$web_commit"
    "/$size/tree/$web_blob" "/$size/log/$web_blob" "/$size/refs/tags"
    "/$size/diff/?id=$web_compare_head&id2=$web_compare_base" "/$size/atom/?h=main"
    "/$size-code/tree/src/bench.c")
# What each page must hold besides the repository's name.
web_markers=("" "" "$(git -C "$repo" log -1 --format=%s main)"
    "$(git -C "$repo" log -1 --format=%s "$web_commit")" "$web_line"
    "$(git -C "$repo" log -1 --format=%s main -- "$web_blob")" "" "$web_compare_file"
    "$(git -C "$repo" log -1 --format=%s main)" "adds the weights of a table")
web_sides=(forgelet cgit cgit-cached)
# web_url SIDE K: the URL of page K on SIDE.
web_url() {
    case $1 in
        forgelet) printf '%s\n' "${web_forgelet_urls[$2]}" ;;
        cgit) printf '%s\n' "$base/cgit${web_cgit_paths[$2]}" ;;
        cgit-cached) printf '%s\n' "$base/cgit-cached${web_cgit_paths[$2]}" ;;
    esac
}
mkdir -p "$run/web"
# page_text FILE: the text of the HTML page FILE into FILE.txt, tags taken out and the escapes
# pages use read back (a highlighted line is split by its spans): where markers are looked for.
page_text() {
    sed -e 's/<[^>]*>//g' -e 's/&#34;/"/g; s/&#39;/'"'"'/g; s/&#60;/</g; s/&#62;/>/g' \
        -e 's/&quot;/"/g; s/&lt;/</g; s/&gt;/>/g; s/&#38;/\&/g; s/&amp;/\&/g' "$1" >"$1.txt"
}
# web_fetch SIDE K: one GET of page K on SIDE with curl; dies unless it answers 200 with the
# repository's name and the page's marker in the body. Prints a line on it.
web_fetch() {
    local url body out code bytes secs m
    url=$(web_url "$1" "$2")
    body=$run/web/${web_pages[$2]}-$1.html
    out=$(curl -sS --noproxy '*' --max-time 120 -o "$body" -w '%{http_code} %{size_download} %{time_total}' \
        "$url") || die "curl $url failed"
    read -r code bytes secs <<<"$out"
    [ "$code" = 200 ] || die "$url answered HTTP $code, not 200 (body in $body)"
    page_text "$body"
    for m in "$size" "${web_markers[$2]}"; do
        [ -z "$m" ] || grep -qF -- "$m" "$body.txt" || die "$url: no '$m' in the page's text (see $body)"
    done
    awk -v p="${web_pages[$2]}" -v s="$1" -v b="$bytes" -v t="$secs" 'BEGIN {
        printf "  %-7s %-12s 200, %7.1f KiB, %7.1f ms\n", p, s, b / 1024, t * 1000 }'
}
# web_wrk SIDE K: wrk against page K on SIDE (output kept in the run folder). Prints "REQ/S BAD
# REQUESTS P50": BAD counts non-2xx answers and socket errors (wrk counts the former in its
# requests/second).
web_wrk() {
    local url out
    url=$(web_url "$1" "$2")
    out=$run/web/wrk-${web_pages[$2]}-$1.txt
    # cgit with its highlight filter takes a second or more a request (Pygments in a new Python
    # each time), several with wrk's connections at once: a longer run, a generous timeout.
    local duration=$web_duration
    [ "$2" != "$web_hl" ] || [ "$1" != cgit ] || duration=$web_hl_duration
    wrk -t"$web_threads" -c"$web_connections" -d"$duration" --timeout 30s --latency "$url" >"$out" 2>&1 ||
        die "wrk failed on $url (see $out)"
    awk '$1 == "Requests/sec:" { rps = $2 }
        / requests in / { n = $1 }
        /Non-2xx or 3xx responses:/ { bad += $NF }
        /Socket errors:/ { gsub(",", ""); bad += $4 + $6 + $8 + $10 }
        $1 == "50%" { p50 = $2 }
        END {
            if (rps == "") exit 1
            printf "%s %d %s %s\n", rps, bad, n, p50
        }' "$out" || die "no Requests/sec in wrk's output (see $out)"
}
# web_wrk_url URL NAME: web_wrk for any URL (output kept in the run folder as wrk-NAME.txt), with
# a timeout of a minute: cgit's blame of a file with a long history takes seconds a request, which
# wrk's default of 2 s would count as errors.
web_wrk_url() {
    local out=$run/web/wrk-$2.txt
    wrk -t"$web_threads" -c"$web_connections" -d"$web_duration" --timeout 60s --latency "$1" >"$out" 2>&1 ||
        die "wrk failed on $1 (see $out)"
    awk '$1 == "Requests/sec:" { rps = $2 }
        / requests in / { n = $1 }
        /Non-2xx or 3xx responses:/ { bad += $NF }
        /Socket errors:/ { gsub(",", ""); bad += $4 + $6 + $8 + $10 }
        $1 == "50%" { p50 = $2 }
        END {
            if (rps == "") exit 1
            printf "%s %d %s %s\n", rps, bad, n, p50
        }' "$out" || die "no Requests/sec in wrk's output (see $out)"
}
# at_least VALUE GOAL: PASS when VALUE >= GOAL.

say "E. web pages: one GET of each with curl first (200 and the expected content; fills cgit's cache)"
for ((k = 0; k < ${#web_pages[@]}; k++)); do
    for side in "${web_sides[@]}"; do
        web_fetch "$side" "$k"
    done
done
# cgit's cache is on where it should be, and only there.
[ -n "$(find "$run/cgit/cache-on" -type f | head -n 1)" ] ||
    die "cgit with cache-size=1000 wrote nothing to $run/cgit/cache-on"
[ -z "$(find "$run/cgit/cache-off" -type f | head -n 1)" ] ||
    die "cgit with cache-size=0 wrote to $run/cgit/cache-off"
printf '  (cgit'"'"'s cache: %s entries after these; none without it)\n' \
    "$(find "$run/cgit/cache-on" -type f | wc -l)"
# The highlighted blob is highlighted on every side.
grep -qF '<table class="code hl">' "$run/web/hl-blob-forgelet.html" ||
    die "forgelet's page of bench.c is not highlighted (see $run/web/hl-blob-forgelet.html)"
for side in cgit cgit-cached; do
    grep -qF 'class="highlight"' "$run/web/hl-blob-$side.html" ||
        die "$side's page of bench.c is not highlighted: is python3-pygments installed? (see $run/web/hl-blob-$side.html)"
done

say "E. web pages: wrk -t$web_threads -c$web_connections -d$web_duration, one URL at a time"
declare -A web_rps=() web_bad=()
for ((k = 0; k < ${#web_pages[@]}; k++)); do
    for side in "${web_sides[@]}"; do
        read -r rps bad n p50 <<<"$(web_wrk "$side" "$k")"
        web_rps[$k,$side]=$rps
        web_bad[$k,$side]=$bad
        awk -v p="${web_pages[$k]}" -v s="$side" -v r="$rps" -v n="$n" -v l="$p50" -v b="$bad" 'BEGIN {
            printf "  %-7s %-12s %9.1f req/s  %7d requests, median latency %s%s\n", p, s, r, n, l,
                (b > 0 ? sprintf("  (%d non-2xx answers or socket errors: not valid)", b) : "") }'
    done
done

say "E. web pages: requests/second, higher is better (goals: forgelet at least ${goal_web_nocache}x cgit without its cache, at least ${goal_web_cache}x with it)"
printf '  %-7s %10s %10s %12s   %-32s %s\n' page forgelet cgit "cgit cached" \
    "forgelet/cgit" "forgelet/cgit cached"
web_verdict() {
    if [ "${web_bad[$1,forgelet]}" != 0 ] || [ "${web_bad[$1,$2]}" != 0 ]; then
        printf 'INVALID (non-2xx answers or socket errors)'
    elif awk -v c="${web_rps[$1,$2]}" 'BEGIN { exit !(c == 0) }'; then
        printf 'INVALID (no answer within the run: raise its duration)'
    else
        at_least "$3" "$4"
    fi
}
for ((k = 0; k < ${#web_pages[@]}; k++)); do
    f=${web_rps[$k,forgelet]} c=${web_rps[$k,cgit]} cc=${web_rps[$k,cgit-cached]}
    r1=$(awk -v a="$f" -v b="$c" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    r2=$(awk -v a="$f" -v b="$cc" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    v1=$(web_verdict "$k" cgit "$r1" "$goal_web_nocache")
    v2=$(web_verdict "$k" cgit-cached "$r2" "$goal_web_cache")
    awk -v p="${web_pages[$k]}" -v f="$f" -v c="$c" -v cc="$cc" -v r1="$r1" -v r2="$r2" \
        -v v1="${v1%% *}" -v v2="${v2%% *}" 'BEGIN {
        printf "  %-7s %10.1f %10.1f %12.1f   %7sx %-23s %7sx %s\n", p, f, c, cc, r1, v1, r2, v2 }'
    summary+=("$(printf '%-48s %6sx %s' "E. web, ${web_pages[$k]}: forgelet/cgit (no cache)" "$r1" "$v1")")
    summary+=("$(printf '%-48s %6sx %s' "E. web, ${web_pages[$k]}: forgelet/cgit (its cache)" "$r2" "$v2")")
done
printf '  (pages: %s; cgit: %s and %s; %s fcgiwrap workers fork one cgit a request)\n\n' \
    "home, tree/main, commits/main, commit/${web_commit:0:12}, blob/main/$web_blob, commits/main/$web_blob, tags, compare/main~20...main (diff/), feeds/commits/main.atom (atom/), $size-code/blob/main/src/bench.c" \
    "/cgit/" "/cgit-cached/" "$web_connections"

# The highlighted blob cold: forgelet restarted before each request (its page and highlight
# caches are per process), next to as many requests to cgit, its cache folder emptied before each
# (a cold cached cgit runs its filter, as forgelet highlights): each side's median. Warm against
# cgit's cache hits is the wrk table above.
say "E. highlighted blob, cold: forgelet restarted before each of $cold_rounds requests; curl, medians"
cold_ms() {
    curl -sS --noproxy '*' --max-time 120 -o /dev/null -w '%{http_code} %{time_total}\n' "$1" |
        awk '$1 != 200 { exit 1 } { printf "%.2f\n", $2 * 1000 }'
}
hl_ready() {
    curl -sS --noproxy '*' --max-time 10 -o /dev/null "$base/git/-/login"
}
cold_forgelet=() cold_cgit=() cold_cgit_cached=()
for ((i = 0; i < cold_rounds; i++)); do
    stop "$forgelet_pid"
    forgelet_pid=
    start_forgelet
    # Another page first: the process is up and answering, nothing of bench.c in it.
    wait_until "forgelet's sign-in page" "$forgelet_pid" hl_ready || die "forgelet exited: $(cat "$run/forgelet.log")"
    ms=$(cold_ms "$(web_url forgelet "$web_hl")") || die "forgelet's cold page of bench.c failed"
    cold_forgelet+=("$ms")
    ms=$(cold_ms "$(web_url cgit "$web_hl")") || die "cgit's page of bench.c failed"
    cold_cgit+=("$ms")
    find "$run/cgit/cache-on" -mindepth 1 -delete
    ms=$(cold_ms "$(web_url cgit-cached "$web_hl")") || die "cached cgit's page of bench.c failed"
    cold_cgit_cached+=("$ms")
done
declare -A hl_cold=()
hl_cold[forgelet]=$(median "${cold_forgelet[@]}")
hl_cold[cgit]=$(median "${cold_cgit[@]}")
hl_cold[cgit-cached]=$(median "${cold_cgit_cached[@]}")
r1=$(awk -v f="${hl_cold[forgelet]}" -v c="${hl_cold[cgit]}" 'BEGIN { printf "%.2f", c / f }')
r2=$(awk -v f="${hl_cold[forgelet]}" -v c="${hl_cold[cgit-cached]}" 'BEGIN { printf "%.2f", c / f }')
v1=$(at_least "$r1" "$goal_web_nocache")
v2=$(at_least "$r2" "$goal_web_cache")
printf '  median ms: forgelet cold %s, cgit %s, cgit cached (emptied) %s; cgit/forgelet %sx %s, cgit cached/forgelet %sx %s\n\n' \
    "${hl_cold[forgelet]}" "${hl_cold[cgit]}" "${hl_cold[cgit-cached]}" "$r1" "${v1%% *}" "$r2" "${v2%% *}"
summary+=("$(printf '%-48s %6sx %s' "E. web, hl-blob cold: forgelet/cgit (no cache)" "$r1" "$v1")")
summary+=("$(printf '%-48s %6sx %s' "E. web, hl-blob cold: forgelet/cgit (cache cold)" "$r2" "$v2")")

# --- 6a. blame and code search (J) ---------------------------------------------------------------
goal_blame_cold=1.2
goal_blame_warm=5
goal_search=1.2
j_repo=$run/data/repos/bench/$size.git
j_commit=$(git -C "$j_repo" rev-parse main)
# seconds CMD...: how long CMD takes, its output dropped.
seconds() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || die "$* failed"
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }'
}
# curl_seconds URL MARKER NAME: one GET; dies unless 200 with MARKER; prints curl's total time.
curl_seconds() {
    local body=$run/web/$3.html out code secs
    out=$(curl -sS --noproxy '*' --max-time 120 -o "$body" -w '%{http_code} %{time_total}' "$1") ||
        die "curl $1 failed"
    read -r code secs <<<"$out"
    [ "$code" = 200 ] || die "$1 answered HTTP $code, not 200 (body in $body)"
    page_text "$body"
    grep -qF -- "$2" "$body.txt" || die "$1: no '$2' in the page's text (see $body)"
    printf '%s\n' "$secs"
}
# The blame's marker: the line E looks for in the file's page.
j_marker=$web_line
say "J. blame of $web_blob, nothing kept: forgelet next to git blame (1 warm-up round, then $rounds)"
declare -a j_forgelet=() j_git=()
# Each round blames the file at another of the commits that changed it (named by id, so nothing
# of it is kept yet and no ref changes between rounds), git blame at the same commit.
mapfile -t j_commits < <(git -C "$j_repo" rev-list -n "$((rounds + 1))" "$j_commit" -- "$web_blob")
[ "${#j_commits[@]}" -gt "$rounds" ] || die "$web_blob changed in fewer than $((rounds + 1)) commits of main"
for ((r = 0; r <= rounds; r++)); do
    at=${j_commits[r]}
    url="$web_forgelet/blame/$at/$web_blob"
    if ((r % 2)); then
        g=$(seconds git -C "$j_repo" blame "$at" -- "$web_blob")
        f=$(curl_seconds "$url" "${at:0:7}" "blame-cold")
    else
        f=$(curl_seconds "$url" "${at:0:7}" "blame-cold")
        g=$(seconds git -C "$j_repo" blame "$at" -- "$web_blob")
    fi
    grep -qF 'git blame stopped' "$run/web/blame-cold.html" &&
        die "the blame of $web_blob was cut short by forgelet's deadline (see $run/web/blame-cold.html)"
    printf '  round %d%s: forgelet %.1f ms, git blame %.1f ms\n' "$r" "$( ((r)) || echo ' (warm-up)')" \
        "$(awk -v v="$f" 'BEGIN { print v * 1000 }')" "$(awk -v v="$g" 'BEGIN { print v * 1000 }')"
    if ((r > 0)); then
        j_forgelet+=("$f")
        j_git+=("$g")
    fi
done
jf=$(median "${j_forgelet[@]}") jg=$(median "${j_git[@]}")
j_ratio=$(ratio_of "$jf" "$jg")
j_verdict=$(verdict "$j_ratio" "$goal_blame_cold")
printf '  medians: forgelet %.1f ms, git blame %.1f ms: %sx  %s\n' \
    "$(awk -v v="$jf" 'BEGIN { print v * 1000 }')" "$(awk -v v="$jg" 'BEGIN { print v * 1000 }')" \
    "$j_ratio" "$j_verdict"
summary+=("$(printf '%-48s %6sx %s' "J. blame, nothing kept: forgelet/git blame" "$j_ratio" "$j_verdict")")

say "J. blame of $web_blob, kept: requests/second next to cgit's blame page (its cache off)"
j_warm_url=$web_forgelet/blame/main/$web_blob
j_cgit_url=$base/cgit/$size/blame/$web_blob
# Twice: the first GET makes the blame, the second is answered from what was kept.
curl_seconds "$j_warm_url" "$j_marker" blame-warm >/dev/null
jw_one=$(curl_seconds "$j_warm_url" "$j_marker" blame-warm)
jc_one=$(curl_seconds "$j_cgit_url" "$web_line" blame-cgit)
printf '  one GET each: forgelet %.1f ms, cgit %.1f ms\n' "$(awk -v v="$jw_one" 'BEGIN { print v * 1000 }')" \
    "$(awk -v v="$jc_one" 'BEGIN { print v * 1000 }')"
read -r jw_rps jw_bad _ _ <<<"$(web_wrk_url "$j_warm_url" blame-forgelet)"
read -r jc_rps jc_bad _ _ <<<"$(web_wrk_url "$j_cgit_url" blame-cgit)"
# cgit may finish no request within wrk's duration (seconds a blame on a long history): then the
# single GETs' times are compared instead.
if awk -v b="$jc_rps" 'BEGIN { exit !(b > 0) }'; then
    jw_ratio=$(awk -v a="$jw_rps" -v b="$jc_rps" 'BEGIN { printf "%.2f", a / b }')
else
    jw_ratio=$(awk -v a="$jw_one" -v b="$jc_one" 'BEGIN { printf "%.2f", b / a }')
    printf '  (cgit finished no request within %s: the ratio is of the single GETs)\n' "$web_duration"
fi
if [ "$jw_bad" != 0 ] || [ "$jc_bad" != 0 ]; then
    jw_verdict='INVALID (non-2xx answers or socket errors)'
else
    jw_verdict=$(at_least "$jw_ratio" "$goal_blame_warm")
fi
printf '  forgelet %.1f req/s, cgit %.1f req/s: %sx  %s\n' "$jw_rps" "$jc_rps" "$jw_ratio" "$jw_verdict"
summary+=("$(printf '%-48s %6sx %s' "J. blame, kept: forgelet/cgit (no cache)" "$jw_ratio" "$jw_verdict")")

# The search: one of the file's lines, a fixed string with case ignored.
j_query=$web_line
j_query_url=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$j_query")
j_search_url="$web_forgelet/search?ref=main&q=$j_query_url"
say "J. code search for '$j_query': forgelet next to git grep at the same commit (1 warm-up round, then $rounds)"
declare -a s_forgelet=() s_git=()
for ((r = 0; r <= rounds; r++)); do
    if ((r % 2)); then
        g=$(seconds git -C "$j_repo" grep -n -I -i -F -e "$j_query" "$j_commit")
        f=$(curl_seconds "$j_search_url" "$web_blob" search)
    else
        f=$(curl_seconds "$j_search_url" "$web_blob" search)
        g=$(seconds git -C "$j_repo" grep -n -I -i -F -e "$j_query" "$j_commit")
    fi
    grep -qF 'search-stopped' "$run/web/search.html" &&
        die "the search was cut short (see $run/web/search.html)"
    printf '  round %d%s: forgelet %.1f ms, git grep %.1f ms\n' "$r" "$( ((r)) || echo ' (warm-up)')" \
        "$(awk -v v="$f" 'BEGIN { print v * 1000 }')" "$(awk -v v="$g" 'BEGIN { print v * 1000 }')"
    if ((r > 0)); then
        s_forgelet+=("$f")
        s_git+=("$g")
    fi
done
sf=$(median "${s_forgelet[@]}") sg=$(median "${s_git[@]}")
s_ratio=$(ratio_of "$sf" "$sg")
s_verdict=$(verdict "$s_ratio" "$goal_search")
printf '  medians: forgelet %.1f ms, git grep %.1f ms: %sx  %s\n\n' \
    "$(awk -v v="$sf" 'BEGIN { print v * 1000 }')" "$(awk -v v="$sg" 'BEGIN { print v * 1000 }')" \
    "$s_ratio" "$s_verdict"
summary+=("$(printf '%-48s %6sx %s' "J. code search: forgelet/git grep" "$s_ratio" "$s_verdict")")

# --- 6b. large pages and a ref burst (F, G) -----------------------------------------------------
# BENCH_ONLY=pages skips them.
if [ "$pages_only" = 0 ]; then
# wrk_url URL OUT [wrk options...]: wrk against URL (output in OUT). Prints "REQ/S BAD P50MS P99MS"
# (BAD: non-2xx answers and socket errors; latencies in milliseconds).
wrk_url() {
    local url=$1 out=$2
    shift 2
    wrk "$@" --latency "$url" >"$out" 2>&1 || die "wrk failed on $url (see $out)"
    awk 'function ms(v) {
            if (v ~ /us$/) return v / 1000
            if (v ~ /ms$/) return v + 0
            if (v ~ /s$/) return v * 1000
            return v + 0
        }
        $1 == "Requests/sec:" { rps = $2 }
        /Non-2xx or 3xx responses:/ { bad += $NF }
        /Socket errors:/ { gsub(",", ""); bad += $4 + $6 + $8 + $10 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        END {
            if (rps == "") exit 1
            printf "%s %d %.3f %.3f\n", rps, bad, p50, p99
        }' "$out" || die "no Requests/sec in wrk's output (see $out)"
}
# fetch_check URL MARKER NAME: one GET with curl; dies unless 200 with MARKER in the page's text.
fetch_check() {
    curl_seconds "$@" >/dev/null
}
wide_commit=$(git -C "$wide_repo" rev-parse main~1)
[ "$(git -C "$wide_repo" diff --numstat "$wide_commit~1" "$wide_commit" | wc -l)" = 2 ] ||
    die "wide's main~1 does not change two files"
f_pages=("commit (wide)" "home (refs)")
f_urls_forgelet=("$base/git/bench/wide/commit/$wide_commit" "$base/git/bench/refs")
f_paths_cgit=("/wide/commit/?id=$wide_commit" "/refs/")
f_markers=("$(git -C "$wide_repo" log -1 --format=%s "$wide_commit")" "refs")
f_goal_nocache=(5 "")
f_goal_cache=(2 2)
say "F. large pages: one GET of each with curl first (200 and the expected content; fills cgit's cache)"
for ((k = 0; k < ${#f_pages[@]}; k++)); do
    fetch_check "${f_urls_forgelet[k]}" "${f_markers[k]}" "f$k-forgelet"
    fetch_check "$base/cgit${f_paths_cgit[k]}" "${f_markers[k]}" "f$k-cgit"
    fetch_check "$base/cgit-cached${f_paths_cgit[k]}" "${f_markers[k]}" "f$k-cgit-cached"
done
say "F. large pages: wrk -t$web_threads -c$web_connections -d$web_duration, one URL at a time"
printf '  %-14s %10s %10s %12s   %-32s %s\n' page forgelet cgit "cgit cached" \
    "forgelet/cgit" "forgelet/cgit cached"
for ((k = 0; k < ${#f_pages[@]}; k++)); do
    read -r f fbad _ _ <<<"$(wrk_url "${f_urls_forgelet[k]}" "$run/web/wrk-f$k-forgelet.txt" \
        -t"$web_threads" -c"$web_connections" -d"$web_duration")"
    read -r c cbad _ _ <<<"$(wrk_url "$base/cgit${f_paths_cgit[k]}" "$run/web/wrk-f$k-cgit.txt" \
        -t"$web_threads" -c"$web_connections" -d"$web_duration")"
    read -r cc ccbad _ _ <<<"$(wrk_url "$base/cgit-cached${f_paths_cgit[k]}" \
        "$run/web/wrk-f$k-cgit-cached.txt" -t"$web_threads" -c"$web_connections" -d"$web_duration")"
    r1=$(awk -v a="$f" -v b="$c" 'BEGIN { printf "%.2f", a / b }')
    r2=$(awk -v a="$f" -v b="$cc" 'BEGIN { printf "%.2f", a / b }')
    if [ "$fbad" != 0 ] || [ "$cbad" != 0 ] || [ "$ccbad" != 0 ]; then
        v1='INVALID (non-2xx answers or socket errors)' v2=$v1
    else
        v1=$(if [ -n "${f_goal_nocache[k]}" ]; then at_least "$r1" "${f_goal_nocache[k]}"; else echo 'no goal'; fi)
        v2=$(at_least "$r2" "${f_goal_cache[k]}")
    fi
    awk -v p="${f_pages[k]}" -v f="$f" -v c="$c" -v cc="$cc" -v r1="$r1" -v r2="$r2" \
        -v v1="${v1%% *}" -v v2="${v2%% *}" 'BEGIN {
        printf "  %-14s %10.1f %10.1f %12.1f   %7sx %-23s %7sx %s\n", p, f, c, cc, r1, v1, r2, v2 }'
    summary+=("$(printf '%-48s %6sx %s' "F. ${f_pages[k]}: forgelet/cgit (no cache)" "$r1" "$v1")")
    summary+=("$(printf '%-48s %6sx %s' "F. ${f_pages[k]}: forgelet/cgit (its cache)" "$r2" "$v2")")
done

goal_burst=2
front=$base/git/
burst_url=$base/git/bench/loose.git/info/refs
curl -sS --noproxy '*' --max-time 60 -o "$run/web/loose-info-refs.txt" "$burst_url" ||
    die "curl $burst_url failed"
[ "$(grep -c 'refs/heads/loose/' "$run/web/loose-info-refs.txt")" = 7800 ] ||
    die "$burst_url does not list the 7,800 loose branches (see $run/web/loose-info-refs.txt)"
fetch_check "$front" "bench/loose" front
say "G. the front page, idle: wrk -t1 -c2 -d$web_duration"
read -r _ ibad ip50 ip99 <<<"$(wrk_url "$front" "$run/web/wrk-front-idle.txt" -t1 -c2 -d"$web_duration")"
printf '  p50 %.2f ms, p99 %.2f ms\n' "$ip50" "$ip99"
# burst_driver: 24 clients on keep-alive connections, each sending one GET of the URL at every
# tick (all 24 at once, as when 24 CI jobs start a dumb clone together), PERIOD seconds apart, for
# SECONDS; each writes "requests bad" to OUT.N. (A closed loop at full speed would measure how
# fast 2 cores copy bytes through nginx, not whether ref requests hold up pages; it is printed
# for reference.)
burst_driver() {
    cat <<'PERL'
use strict;
use warnings;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
my ($port, $path, $clients, $period, $seconds, $out) = @ARGV;
my $start = time() + 0.5;
my @kids;
for my $c (1 .. $clients) {
    my $pid = fork() // die "fork: $!";
    if ($pid) { push @kids, $pid; next; }
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) or die "connect: $!";
    my ($n, $bad) = (0, 0);
    for (my $k = 0; ; $k++) {
        my $at = $start + $k * $period;
        last if $at > $start + $seconds;
        my $wait = $at - time();
        sleep($wait) if $wait > 0;
        print $s "GET $path HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        my $head = '';
        while ($head !~ /\r\n\r\n/) {
            my $got = sysread($s, my $buf, 1) or die "read: $!";
            $head .= $buf;
        }
        my ($len) = $head =~ /Content-Length: (\d+)/i;
        die "no Content-Length" unless defined $len;
        my $left = $len;
        while ($left > 0) {
            my $got = sysread($s, my $buf, $left < 65536 ? $left : 65536) or die "read: $!";
            $left -= $got;
        }
        $n++;
        $bad++ unless $head =~ m{^HTTP/1\.1 200 };
    }
    open(my $f, '>', "$out.$c") or die; print $f "$n $bad\n"; close($f);
    exit 0;
}
waitpid($_, 0) for @kids;
PERL
}
burst_clients=24
burst_period=0.25
burst_seconds=12
# front_during_burst PATH NAME: the front page's p99 while the burst asks for PATH; sets
# burst_p99 and adds the burst's failures to burst_failed.
burst_failed=0
front_during_burst() {
    local n bad
    rm -f "$run/web/burst.out."*
    perl -e "$(burst_driver)" "$port" "$1" "$burst_clients" "$burst_period" "$burst_seconds" \
        "$run/web/burst.out" &
    local pid=$!
    sleep 3
    read -r _ bbad bp50 burst_p99 <<<"$(wrk_url "$front" "$run/web/wrk-front-burst-$2.txt" -t1 -c2 -d"$web_duration")"
    wait "$pid" || die "the burst driver failed ($2)"
    read -r n bad <<<"$(cat "$run/web/burst.out."* | awk '{ n += $1; b += $2 } END { print n, b }')"
    burst_failed=$((burst_failed + bad + bbad))
    printf '  p50 %.2f ms, p99 %.2f ms (the burst: %s requests of %s KiB, %s not 200)\n' "$bp50" \
        "$burst_p99" "$n" "$(($(wc -c <"$run/web/loose-info-refs.txt") / 1024))" "$bad"
}
say "G. the front page while $burst_clients clients fetch $burst_url at once every ${burst_period} s"
front_during_burst /git/bench/loose.git/info/refs forgelet
bp99=$burst_p99
# The reference: nginx sending the very same bytes as a static file, with the same burst. What
# the front page loses to it is what two cores lose to moving the bytes at all.
cp "$run/web/loose-info-refs.txt" "$run/static/loose-info-refs"
say "G. the front page while the same burst fetches the same bytes as a static file from nginx"
front_during_burst /static/loose-info-refs static
sp99=$burst_p99
say "G. (for reference) the front page while 24 clients fetch it in a closed loop at full speed (wrk -t2 -c24)"
wrk -t2 -c24 -d10s "$burst_url" >"$run/web/wrk-flood.txt" 2>&1 &
flood_pid=$!
sleep 2
read -r _ _ fp50 fp99 <<<"$(wrk_url "$front" "$run/web/wrk-front-flood.txt" -t1 -c2 -d"$web_duration")"
wait "$flood_pid" || die "the flood's wrk failed (see $run/web/wrk-flood.txt)"
printf '  p50 %.2f ms, p99 %.2f ms (the flood: %s info/refs a second)\n' "$fp50" "$fp99" \
    "$(awk '$1 == "Requests/sec:" { print $2 }' "$run/web/wrk-flood.txt")"
g_ratio=$(awk -v a="$bp99" -v b="$ip99" 'BEGIN { printf "%.2f", a / b }')
s_ratio=$(awk -v a="$sp99" -v b="$ip99" 'BEGIN { printf "%.2f", a / b }')
fs_ratio=$(awk -v a="$bp99" -v b="$sp99" 'BEGIN { printf "%.2f", a / b }')
if [ "$ibad" != 0 ] || [ "$burst_failed" != 0 ]; then
    g_verdict='INVALID (non-2xx answers or socket errors)'
else
    g_verdict=$(verdict "$g_ratio" "$goal_burst")
fi
printf '  front page p99 during the burst / idle: %s  %s\n' "$g_ratio" "$g_verdict"
printf '  front page p99 during the static burst / idle: %s (the reference)\n' "$s_ratio"
printf '  front page p99, forgelet burst / static burst: %s\n\n' "$fs_ratio"
summary+=("$(printf '%-48s %6sx %s' "G. front page p99, ref burst/idle" "$g_ratio" "$g_verdict")")
summary+=("$(printf '%-48s %6sx %s' "G. the same with nginx's static burst/idle" "$s_ratio" "(reference)")")
summary+=("$(printf '%-48s %6sx %s' "G. front page p99, forgelet/static burst" "$fs_ratio" "(no goal)")")

else
    summary+=("$(printf '%-48s %6s  %s' "F, G. large pages, ref burst" - 'skipped (BENCH_ONLY=pages)')")
fi

# --- H. many repositories (optional) -------------------------------------------------------------
# BENCH_MANY=1: the front page and the dashboard of a site of 10,000 small repositories against
# the same pages of a site of 10 (deploy/many-repos.sh, which makes the sites once under
# target/many-repos/). Goal: 10,000 repositories at least half as fast, i.e. at most 2x the time.
if [ "${BENCH_MANY:-0}" = 1 ]; then
    say "H. many repositories: deploy/many-repos.sh 10000 and 10"
    "$script_dir/many-repos.sh" 10000 "$bin" | tee "$run/many-10000.txt"
    "$script_dir/many-repos.sh" 10 "$bin" | tee "$run/many-10.txt"
    for page in front dashboard; do
        big=$(awk -v p="$page" '$1 == p { print $2 }' "$run/many-10000.txt")
        small=$(awk -v p="$page" '$1 == p { print $2 }' "$run/many-10.txt")
        h_ratio=$(ratio_of "$big" "$small")
        summary+=("$(printf '%-48s %6sx %s' "H. $page, 10,000 repositories/10 (time)" "$h_ratio" "$(verdict "$h_ratio" 2.0)")")
    done
fi

# --- 7. summary ----------------------------------------------------------------------------------
say "summary"
printf '%s\n' "${summary[@]}"
printf '(%s repository, %s timed rounds after 1 warm-up, nginx %s, %s, fcgiwrap %s)\n' \
    "$size" "$rounds" "$("$nginx_bin" -v 2>&1 | sed 's|.*/||')" "$(git --version)" "$fcgiwrap_bin"
printf '(E: %s, %s, wrk -t%s -c%s -d%s)\n' "$(wrk -v 2>&1 | awk 'NR == 1 { print $1, $2 }')" \
    "$("$cgit_cgi" --version 2>&1 | awk 'NR == 1 { print $1, $2 }')" "$web_threads" "$web_connections" \
    "$web_duration"
ok=1
# L: a large Git LFS download (deploy/bench-lfs.sh, its own servers), after everything else.
if [ -z "$only" ] && [ "${BENCH_LFS:-1}" = 1 ]; then
    bash "$script_dir/bench-lfs.sh"
fi
