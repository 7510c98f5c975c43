#!/usr/bin/env bash
# gen-bench-repos.sh: forgelet's large benchmark data, generated deterministically (no downloads)
# by deploy/gen_repo.py fed to `git fast-import`, and cached under target/bench/ so later runs
# reuse it.
#
#   deploy/gen-bench-repos.sh [large|site|all]     (default: all)
#
#   large  target/bench/repo-large.git: a repository that looks like a real project's: 100,000
#          commits (feature branches merged back with merge commits, release branches with
#          fixes), more than 1,000 tags (annotated releases, lightweight snapshots), source-like
#          text files with long histories (a few lines changed per commit, files added, renamed
#          and deleted, a few folders deep), prebuilt binaries of 1 to 4 MB (incompressible)
#          replaced every 700 commits; fully repacked (`git repack -a -d -f`, as `git gc
#          --aggressive` would, without bitmaps): a pack of 445 MB. Its main is checked against
#          the commit id recorded below. About 6 minutes on 2 busy cores (1.6 GB of memory).
#   site   target/bench/site/data: a forgelet data folder of 10,000 small repositories (12
#          commits each at most) owned by 100 users, about one in ten private, with users.toml.
#          Repositories are made from 40 templates (one fast-import each) as hard links to the
#          template's pack plus their own config, description and packed-refs: no git process
#          per repository. The users are added with `forgelet user add`, all with the password
#          in target/bench/site/password. Point a config's data_dir at the folder to serve it.
#
# The stamp beside each (repo-large.stamp, site.stamp) names the arguments and the result (main's
# id, the site's digest); a folder is reused when its stamp matches and, for the default sizes,
# the result is the one recorded below (for other sizes, when gen_repo.py's checksum matches).
#
# Environment (optional; other values than the defaults skip the recorded-id check):
#   GEN_LARGE_COMMITS   commits in the large repository (default 100000)
#   GEN_BINARY_EVERY    a binary is replaced every this many commits on main (default 700)
#   GEN_SITE_REPOS      repositories of the site (default 10000)
#   GEN_SITE_USERS      users of the site (default 100)
#   FORGELET_BIN        the forgelet binary that adds the site's users (default
#                       target/release/forgelet; build it with `cargo build --release --locked`)
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$script_dir/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
case $target_dir in /*) ;; *) target_dir=$root/$target_dir ;; esac
bench_dir=$target_dir/bench
gen=$script_dir/gen_repo.py

# main's commit id in the large repository, and a digest of the site's templates and layout, for
# the default sizes. A change to gen_repo.py that changes them must record the new values here.
large_expected_head=f10128f09a04c7d9cdc04dd5d083d93bf4c3e4b7
site_expected_digest=f53da6b8408b46086968c36a221043f8f3170836

die() {
    printf 'gen-bench-repos.sh: %s\n' "$*" >&2
    exit 1
}
say() {
    printf '== %s\n' "$*"
}
now() {
    date +%s.%N
}
# since START: seconds since START, one decimal.
since() {
    awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'
}
mib() {
    du -sk "$1" | awk '{ printf "%.1f", $1 / 1024 }'
}

what=${1:-all}
case $what in large | site | all) ;; *) die "what to make must be large, site or all, not '$what'" ;; esac
[ $# -le 1 ] || die "one argument at most (large, site or all), not $#"
commits=${GEN_LARGE_COMMITS:-100000}
binary_every=${GEN_BINARY_EVERY:-700}
site_repos=${GEN_SITE_REPOS:-10000}
site_users=${GEN_SITE_USERS:-100}
site_templates=40
for v in commits binary_every site_repos site_users; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive whole number, not '${!v}'"
done
((commits >= 10)) || die "GEN_LARGE_COMMITS must be at least 10, not $commits"
((site_repos >= site_users)) || die "GEN_SITE_REPOS ($site_repos) must be at least GEN_SITE_USERS ($site_users)"

# git must never read the user's or the system's settings: the same ids on every machine.
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
unset GIT_DIR GIT_WORK_TREE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
command -v git >/dev/null 2>&1 || die "git not found"
command -v python3 >/dev/null 2>&1 || die "python3 not found (Debian: apt-get install -y python3)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' ||
    die "python3 is older than 3.9 (gen_repo.py needs random.randbytes)"
[ -f "$gen" ] || die "no generator at $gen"
gen_sum=$(cksum <"$gen" | cut -d' ' -f1)
mkdir -p "$bench_dir"

# --- the large repository ------------------------------------------------------------------------
make_large() {
    local repo=$bench_dir/repo-large.git stamp=$bench_dir/repo-large.stamp
    local tmp=$bench_dir/repo-large.tmp version head t0 t1 deleted
    local defaults=0
    [ "$commits" = 100000 ] && [ "$binary_every" = 700 ] && defaults=1
    # Keyed by the arguments and, for the defaults, the recorded id (a change to gen_repo.py that
    # leaves the output alone keeps the cache); for other sizes, by gen_repo.py's checksum too.
    version="large commits=$commits binary_every=$binary_every"
    [ "$defaults" = 1 ] || version="gen_repo.py $gen_sum $version"
    if [ -f "$stamp" ] && [ -d "$repo" ] && head=$(git -C "$repo" rev-parse -q --verify main) &&
        [ "$(cat "$stamp")" = "$version main=$head" ] &&
        { [ "$defaults" = 0 ] || [ "$head" = "$large_expected_head" ]; }; then
        say "reusing $repo ($version, main $head)"
        return 0
    fi
    say "generating $repo ($version)"
    rm -rf "$repo" "$tmp" "$stamp"
    git init -q --bare "$tmp"
    git -C "$tmp" symbolic-ref HEAD refs/heads/main
    deleted=$bench_dir/repo-large.merged
    t0=$(now)
    python3 "$gen" large --commits "$commits" --binary-every "$binary_every" \
        --deleted-refs "$deleted" | git -C "$tmp" fast-import --quiet ||
        die "gen_repo.py or git fast-import failed (see above)"
    printf 'gen_repo.py | git fast-import: %s s, %s MiB\n' "$(since "$t0")" "$(mib "$tmp/objects")"
    # Merged branches are deleted, as a project does once they are in main.
    sed 's/^/delete /' "$deleted" | git -C "$tmp" update-ref --stdin ||
        die "deleting the merged branches listed in $deleted failed"
    rm -f "$deleted"
    t1=$(now)
    # No bitmaps (git writes them by default in a bare repository): a repository nobody has
    # maintained, as most are; what maintenance adds is measured against this.
    git -C "$tmp" -c repack.writeBitmaps=false repack -a -d -f -q || die "git repack -a -d -f failed"
    git -C "$tmp" pack-refs --all
    git -C "$tmp" prune-packed
    printf 'git repack -a -d -f: %s s\n' "$(since "$t1")"
    head=$(git -C "$tmp" rev-parse --verify main) || die "the generated repository has no main"
    if [ "$defaults" = 1 ] && [ -z "$large_expected_head" ]; then
        printf 'no main recorded to check against: record %s as large_expected_head in %s\n' "$head" "$0"
    elif [ "$defaults" = 1 ] && [ "$head" != "$large_expected_head" ]; then
        die "the generated main is $head, not the recorded $large_expected_head: gen_repo.py's output changed; if that was meant, record the new id as large_expected_head in $0 (the repository is left in $tmp)"
    fi
    mv "$tmp" "$repo"
    printf '%s main=%s\n' "$version" "$head" >"$stamp"
    printf 'generated in %s s\n' "$(since "$t0")"
}

describe_large() {
    local repo=$bench_dir/repo-large.git all tags annotated pack
    all=$(git -C "$repo" rev-list --all --count)
    tags=$(git -C "$repo" for-each-ref refs/tags | wc -l)
    annotated=$(git -C "$repo" for-each-ref --format='%(objecttype)' refs/tags | grep -c '^tag$' || true)
    pack=$(find "$repo/objects/pack" -name '*.pack' -printf '%s\n' | awk '{ s += $1 } END { printf "%.1f", s / 1048576 }')
    printf 'large: %s commits (%s on main, %s merges), %s branches, %s tags (%s annotated), %s files on main, %s MiB pack, %s MiB on disk\n' \
        "$all" "$(git -C "$repo" rev-list --count main)" "$(git -C "$repo" rev-list --all --merges --count)" \
        "$(git -C "$repo" for-each-ref refs/heads | wc -l)" "$tags" "$annotated" \
        "$(git -C "$repo" ls-tree -r --name-only main | wc -l)" "$pack" "$(mib "$repo")"
    if [ "$commits" = 100000 ]; then
        ((all >= 100000)) || die "the large repository has $all commits, fewer than 100,000"
        ((tags >= 1000)) || die "the large repository has $tags tags, fewer than 1,000"
        awk -v p="$pack" 'BEGIN { exit !(p >= 400) }' || die "the large repository's pack is $pack MiB, under 400"
    fi
}

# --- the site of small repositories --------------------------------------------------------------
# site_digest DATA: a digest of what the generator decides (templates' commits, repository
# names, their refs and visibility); not users.toml, whose password hash has a random salt.
site_digest() {
    (
        cd "$1/repos" || exit 1
        find . -mindepth 2 -maxdepth 2 | LC_ALL=C sort
        find . -mindepth 3 -maxdepth 3 \( -name packed-refs -o -name config \) | LC_ALL=C sort |
            xargs cat
    ) | sha1sum | cut -d' ' -f1
}

make_site() {
    local site=$bench_dir/site stamp=$bench_dir/site.stamp tmp=$bench_dir/site.tmp
    local version bin t0 t1 i user password digest n per_repo
    local defaults=0
    [ "$site_repos" = 10000 ] && [ "$site_users" = 100 ] && defaults=1
    version="site repos=$site_repos users=$site_users templates=$site_templates"
    [ "$defaults" = 1 ] || version="gen_repo.py $gen_sum $version"
    if [ -f "$stamp" ] && [ -d "$site/data/repos" ] &&
        [ "$(cat "$stamp")" = "$version digest=$(site_digest "$site/data")" ] &&
        { [ "$defaults" = 0 ] || [ "$(cat "$stamp")" = "$version digest=$site_expected_digest" ]; }; then
        say "reusing $site ($version)"
        return 0
    fi
    bin=${FORGELET_BIN:-$target_dir/release/forgelet}
    [ -x "$bin" ] || die "no forgelet binary at $bin: build it with \`cargo build --release --locked\` or set FORGELET_BIN"
    say "generating $site ($version)"
    rm -rf "$site" "$tmp" "$stamp"
    mkdir -p "$tmp/templates" "$tmp/data" "$tmp/measure"
    t0=$(now)
    # shellcheck disable=SC2046 # the seeds, one word each
    python3 "$gen" small $(seq "$site_templates") --out "$tmp/templates" || die "gen_repo.py small failed"
    for ((i = 1; i <= site_templates; i++)); do
        git init -q --bare "$tmp/templates/t$i.git"
        # unpackLimit=0: a pack even for so few objects, which the repositories link to.
        git -C "$tmp/templates/t$i.git" -c fastimport.unpackLimit=0 fast-import --quiet <"$tmp/templates/t$i.fi" ||
            die "git fast-import of template $i failed"
        rm "$tmp/templates/t$i.fi"
    done
    printf '%s templates (gen_repo.py small | git fast-import): %s s\n' "$site_templates" "$(since "$t0")"

    # The users, the way a sysadmin adds them (fast enough: argon2 once each); the
    # repositories written directly (importing each would take minutes, measured on a few in a
    # scratch site).
    password=$(head -c 48 /dev/urandom | base64 -w 0 | tr -dc 'A-Za-z0-9' | head -c 24)
    printf 'data_dir = "%s"\n' "$tmp/data" >"$tmp/config.toml"
    printf 'data_dir = "%s"\n' "$tmp/measure/data" >"$tmp/measure/config.toml"
    t1=$(now)
    python3 "$gen" users "$site_users" >"$tmp/users" || die "gen_repo.py users failed"
    while read -r user; do
        printf '%s\n' "$password" | "$bin" --config "$tmp/config.toml" user add "$user" --password-stdin >/dev/null ||
            die "forgelet user add $user failed"
    done <"$tmp/users"
    rm -f "$tmp/users"
    printf 'forgelet user add, %s users: %s s\n' "$site_users" "$(since "$t1")"
    printf '%s\n' "$password" | "$bin" --config "$tmp/measure/config.toml" user add measure --password-stdin >/dev/null ||
        die "forgelet user add measure failed (in a scratch site)"
    t1=$(now)
    for i in 1 2 3 4 5; do
        "$bin" --config "$tmp/measure/config.toml" repo import "measure/r$i" "$tmp/templates/t$i.git" >/dev/null ||
            die "forgelet repo import measure/r$i failed (in a scratch site)"
    done
    per_repo=$(awk -v a="$t1" -v b="$(now)" 'BEGIN { printf "%.3f", (b - a) / 5 }')
    printf 'forgelet repo import: %s s a repository (5 measured): %s would take %s s; writing them directly\n' \
        "$per_repo" "$site_repos" "$(awk -v p="$per_repo" -v n="$site_repos" 'BEGIN { printf "%.0f", p * n }')"
    rm -rf "$tmp/measure"
    t1=$(now)
    python3 "$gen" site "$tmp/data" "$tmp/templates" --repos "$site_repos" --users "$site_users" ||
        die "gen_repo.py site failed"
    printf 'gen_repo.py site (%s repositories): %s s\n' "$site_repos" "$(since "$t1")"

    # forgelet reads what was written: every user, every repository.
    t1=$(now)
    n=$("$bin" --config "$tmp/config.toml" user list | wc -l) || die "forgelet user list failed on the generated users.toml"
    [ "$n" = "$site_users" ] || die "forgelet user list shows $n users, not $site_users"
    n=$("$bin" --config "$tmp/config.toml" repo list | wc -l) || die "forgelet repo list failed on the generated site"
    [ "$n" -ge "$site_repos" ] || die "forgelet repo list shows $n lines, fewer than $site_repos repositories"
    printf 'forgelet user list and repo list: %s s\n' "$(since "$t1")"
    # One repository in a hundred is checked by git.
    find "$tmp/data/repos" -mindepth 2 -maxdepth 2 -name '*.git' | LC_ALL=C sort | awk 'NR % 100 == 1' |
        while read -r r; do
            git -C "$r" fsck --connectivity-only --no-progress --no-dangling >/dev/null 2>&1 ||
                die "git fsck fails in the generated $r"
        done

    digest=$(site_digest "$tmp/data")
    if [ "$defaults" = 1 ] && [ -z "$site_expected_digest" ]; then
        printf 'no digest recorded to check against: record %s as site_expected_digest in %s\n' "$digest" "$0"
    elif [ "$defaults" = 1 ] && [ "$digest" != "$site_expected_digest" ]; then
        die "the generated site's digest is $digest, not the recorded $site_expected_digest: gen_repo.py's output changed; if that was meant, record the new digest as site_expected_digest in $0 (the site is left in $tmp)"
    fi
    printf '%s\n' "$password" >"$tmp/password"
    chmod 600 "$tmp/password"
    rm -f "$tmp/config.toml"
    mv "$tmp" "$site"
    printf '%s digest=%s\n' "$version" "$digest" >"$stamp"
    printf 'generated in %s s\n' "$(since "$t0")"
}

describe_site() {
    local data=$bench_dir/site/data
    printf 'site: %s repositories (%s private) of %s users, %s MiB on disk (%s MiB of templates, hard-linked)\n' \
        "$(find "$data/repos" -mindepth 2 -maxdepth 2 -name '*.git' | wc -l)" \
        "$(grep -rlx $'\tvisibility = private' --include=config "$data/repos" | wc -l)" \
        "$(grep -c '^\[\[user\]\]' "$data/users.toml")" "$(mib "$bench_dir/site")" \
        "$(mib "$bench_dir/site/templates")"
}

case $what in
    large)
        make_large
        describe_large
        ;;
    site)
        make_site
        describe_site
        ;;
    all)
        make_large
        describe_large
        make_site
        describe_site
        ;;
esac
