#!/usr/bin/env bash
# guide-test.sh: runs every shell command of the README's guide (its ```sh blocks, in order),
# so the guide cannot go stale. Run by deploy/test.sh; needs root (it adds a system user).
#
# The commands run as written, in a scratch folder, with these changes, each made by a rule below:
#   - paths under /etc, /var/lib, /var/cache/forgelet, /run, /srv and /usr/local/bin live inside the scratch folder (a
#     host path no rule maps stops the run before anything runs; the config's key_index too)
#     (/etc/forgelet/config.toml is $S/etc/forgelet/config.toml, and FORGELET_CONFIG names it);
#   - the `forgelet` system user is forgelet-guide, made by the guide's own adduser line and
#     removed after the run (and `forgelet-ssh` is forgelet-guide-ssh, the same way);
#     `sudo -u forgelet CMD` is `runuser -u forgelet-guide -- CMD` (sudo may not be installed);
#   - /path/to/work-tree is a work tree with a commit and a tag, owned by the forgelet user once
#     there is one; /srv/git/old.git and older.git are bare repositories;
#   - target/release/forgelet is the binary under test; `data_dir` in the guide's config points
#     into the scratch folder; $PASSWORD is a password;
#   - a command whose comment begins "refused" must fail; one that "asks" for a password gets
#     it typed on a terminal (a pseudo-terminal, once the prompt has turned echo off);
#   - deploy/quickstart.sh runs on a free port and a scratch home until it serves, and a clone
#     of its demo repository must match; deploy/test.sh is this very run.
# Commands that change the host outside the scratch folder or need a running systemd are checked
# statically instead: the program exists (systemctl, journalctl, a2enmod, a2enconf,
# lighty-enable-mod, service, nginx -t, sshd -t, ssh; cargo, apt and dpkg, whose package build and install
# deploy/package-test.sh runs for real; editor), and every file of this checkout they name exists.
# The Debian package's /usr/share/forgelet/{nginx,apache,lighttpd,sshd}/ are this checkout's folders.
# SSH itself runs in tests/ssh.rs and deploy/package-test.sh, with a real sshd.
# `forgelet doctor` checks a site running behind its web server at base_url, which the scratch
# folder has not: tests/doctor.rs runs it against nginx and Apache, healthy and broken.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

die() {
    printf 'guide-test.sh: %s\n' "$*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root: the guide's commands add a system user and run as it"
# shellcheck source=deploy/lib.sh
. deploy/lib.sh
install_debs spawn-fcgi util-linux python3 || die "spawn-fcgi and python3 are needed (see above)"

bin=${FORGELET_BIN:-$root/target/debug/forgelet}
if [ ! -x "$bin" ]; then
    cargo build --locked
fi
[ -x "$bin" ] || die "no forgelet binary at $bin"

S=$(mktemp -d /tmp/forgelet-guide.XXXXXX)
chmod 0755 "$S"
U=forgelet-guide
qs_pid=
cleanup() {
    local rc=$?
    [ -n "$qs_pid" ] && kill -TERM "$qs_pid" 2>/dev/null && wait "$qs_pid" 2>/dev/null
    pkill -u "$U" 2>/dev/null || true
    sleep 0.2
    pkill -KILL -u "$U" 2>/dev/null || true
    id "$U" >/dev/null 2>&1 && deluser --system --quiet "$U" >/dev/null 2>&1
    getent group "$U" >/dev/null 2>&1 && delgroup --system --quiet "$U" >/dev/null 2>&1
    id "$U-ssh" >/dev/null 2>&1 && deluser --system --quiet "$U-ssh" >/dev/null 2>&1
    getent group "$U-ssh" >/dev/null 2>&1 && delgroup --system --quiet "$U-ssh" >/dev/null 2>&1
    if [ "$rc" -eq 0 ]; then
        rm -rf "$S"
    else
        printf 'guide-test.sh: failed; the scratch folder is kept: %s\n' "$S" >&2
    fi
}
trap cleanup EXIT
id "$U" >/dev/null 2>&1 && die "the user $U exists already (a run that did not clean up?): deluser --system $U"
id "$U-ssh" >/dev/null 2>&1 && die "the user $U-ssh exists already (a run that did not clean up?): deluser --system $U-ssh"

mkdir -p "$S/etc/systemd/system" "$S/etc/ssh/sshd_config.d" "$S/etc/apache2/conf-available" "$S/etc/lighttpd/conf-available" "$S/etc/nginx/snippets" \
    "$S/usr/local/bin" "$S/srv/git" "$S/run" "$S/var/lib" "$S/blocks"
# /srv/git/old.git: a bare repository to import; /path/to/work-tree: a work tree to push.
bash tests/fixtures/mixed.sh "$S/srv/git/old.git" >/dev/null
bash tests/fixtures/tags.sh "$S/srv/git/older.git" >/dev/null
git init -q -b main "$S/work-tree"
(
    cd "$S/work-tree"
    printf 'hello\n' >README.md
    git add README.md
    git -c user.name=Guide -c user.email=guide@example.org commit -q -m "First commit"
    git tag v1
)
export FORGELET_CONFIG=$S/etc/forgelet/config.toml
export PATH=$S/usr/local/bin:$PATH
export PASSWORD=guide-password-1
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null

# Types the password twice on a terminal for a command that asks for it.
cat >"$S/typepw.py" <<'PY'
import os, pty, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
out = b""
def wait_for(text):
    global out
    deadline = time.time() + 30
    while text not in out:
        if time.time() > deadline:
            sys.exit("no prompt %r; the command printed: %r" % (text, out))
        try:
            out += os.read(fd, 4096)
        except OSError:
            sys.exit("the command ended before asking: %r" % out)
def type_when_quiet(text):
    # Only once echo is off: the prompt flushes what was typed before it.
    deadline = time.time() + 30
    while termios.tcgetattr(fd)[3] & termios.ECHO:
        if time.time() > deadline:
            sys.exit("echo never went off")
        time.sleep(0.01)
    os.write(fd, text.encode() + b"\n")
wait_for(b"New password for")
type_when_quiet(sys.argv[1])
wait_for(b"Type it again")
type_when_quiet(sys.argv[1])
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
PY

# A command the guide runs on the host itself: its program must exist here.
static_programs='systemctl journalctl a2enmod a2enconf lighty-enable-mod service nginx sshd ssh cargo apt dpkg editor'

# The ```sh blocks, one file each, with the rules above applied.
awk -v S="$S" -v U="$U" -v BIN="$bin" -v ROOT="$root" -v STATIC="$static_programs" '
function rewrite(line) {
    gsub(/forgelet-ssh/, U "-ssh", line)
    gsub(/sudo -u forgelet /, "runuser -u " U " -- ", line)
    gsub(/runuser -u forgelet -- /, "runuser -u " U " -- ", line)
    gsub(/\/usr\/share\/forgelet\/nginx\//, ROOT "/nginx/", line)
    gsub(/\/usr\/share\/forgelet\/apache\//, ROOT "/deploy/apache/", line)
    gsub(/\/usr\/share\/forgelet\/lighttpd\//, ROOT "/deploy/lighttpd/", line)
    gsub(/\/usr\/share\/forgelet\/sshd\//, ROOT "/deploy/sshd/", line)
    gsub(/\/etc\/ssh\//, S "/etc/ssh/", line)
    gsub(/\/etc\/nginx/, S "/etc/nginx", line)
    gsub(/ -o forgelet /, " -o " U " ", line)
    gsub(/ -g forgelet /, " -g " U " ", line)
    gsub(/ -u forgelet -G /, " -u " U " -G ", line)
    if (line ~ /^adduser /) sub(/ forgelet$/, " " U, line)
    gsub(/target\/release\/forgelet/, BIN, line)
    gsub(/\/path\/to\/work-tree/, S "/work-tree", line)
    gsub(/\/etc\/forgelet/, S "/etc/forgelet", line)
    gsub(/\/etc\/systemd\/system/, S "/etc/systemd/system", line)
    gsub(/\/etc\/apache2/, S "/etc/apache2", line)
    gsub(/\/etc\/lighttpd/, S "/etc/lighttpd", line)
    gsub(/\/var\/lib\/forgelet/, S "/var/lib/forgelet", line)
    gsub(/\/var\/cache\/forgelet/, S "/var/cache/forgelet", line)
    gsub(/\/run\/forgelet/, S "/run/forgelet", line)
    gsub(/\/usr\/local\/bin\/forgelet/, S "/usr/local/bin/forgelet", line)
    gsub(/\/usr\/bin\/forgelet/, S "/usr/local/bin/forgelet", line)
    gsub(/\/srv\//, S "/srv/", line)
    # A path on the host the rules above did not map would be written to for real.
    check = line
    gsub(S, "SCRATCH", check)
    if (check ~ /(^|[ "'\''=>:(])\/(etc|var|srv|run|opt|home|mnt|usr\/local)\//) {
        print "guide-test.sh: README.md line " NR " names a host path no rule maps into the scratch folder: " $0 > "/dev/stderr"
        unmapped = 1
    }
    return line
}
/^```sh$/ { inblock = 1; n++; file = sprintf("%s/blocks/%03d-line%d.sh", S, n, NR); heredoc = ""; next }
/^```/ && inblock { inblock = 0; close(file); next }
!inblock { next }
{
    line = $0
    if (heredoc != "") {
        # A path in the config the guide writes, other than data_dir (added below), is mapped too.
        if (line ~ /^key_index = /) line = rewrite(line)
        print line > file
        if (line == heredoc) heredoc = ""
        else if (line ~ /^base_url = /) print "data_dir = \"" S "/var/lib/forgelet\"" > file
        next
    }
    if (match(line, /<<'\''[A-Z]+'\''/)) heredoc = substr(line, RSTART + 3, RLENGTH - 4)
    split(line, w, /[ \t]+/)
    prog = w[1]
    comment = ""
    if (index(line, "#") > 0) comment = substr(line, index(line, "#"))
    if (index(" " STATIC " ", " " prog " ") > 0 || line ~ /forgelet doctor/) {
        l = rewrite(line)
        sub(/[ \t]*#.*/, "", l)
        print "guide_static <<'\''GUIDE_STATIC'\''" > file
        print l > file
        print "GUIDE_STATIC" > file
    } else if (prog == "deploy/quickstart.sh") {
        print "guide_quickstart" > file
    } else if (prog == "deploy/test.sh") {
        print "echo \"deploy/test.sh: this run\"" > file
    } else if (comment ~ /^#[ \t]*refused/) {
        sub(/[ \t]*#.*/, "", line)
        print "guide_refused " rewrite(line) > file
    } else if (line ~ /forgelet (forgelet|--) forgelet user (add|passwd) |forgelet forgelet user (add|passwd) / && line !~ /--password-stdin/) {
        sub(/[ \t]*#.*/, "", line)
        print "guide_asks " rewrite(line) > file
    } else {
        print rewrite(line) > file
    }
}
END { exit unmapped }' README.md || die "add a rule for the path above (see the list at the top)"

# guide_static <<<LINE: each command of the line (split at &&, || and ;) names a program that
# exists here, and each file of this checkout it names exists. Nothing of it runs.
guide_static() {
    local line cmd prog a words
    line=$(cat)
    while IFS= read -r cmd; do
        read -r -a words <<<"$cmd"
        [ "${#words[@]}" -gt 0 ] || continue
        prog=${words[0]}
        command -v "$prog" >/dev/null 2>&1 || die "the guide runs '$prog', which is not installed here"
        for a in "${words[@]}"; do
            case $a in
            deploy/* | nginx/*) [ -e "$root/$a" ] || die "the guide names $a, which does not exist" ;;
            esac
        done
    done < <(printf '%s\n' "$line" | sed -e 's/&&/\n/g' -e 's/||/\n/g' -e 's/;/\n/g')
    printf 'checked: %s\n' "$line"
}
# guide_refused CMD...: the guide says this is refused; it must fail.
guide_refused() {
    if "$@" >"$S/refused.out" 2>&1; then
        cat "$S/refused.out" >&2
        die "the guide says '$*' is refused, but it succeeded"
    fi
    printf 'refused as the guide says: %s\n    %s\n' "$*" "$(head -1 "$S/refused.out")"
}
# guide_asks runuser -u U -- forgelet user add|passwd NAME: the password typed on a terminal.
guide_asks() {
    python3 "$S/typepw.py" "$PASSWORD" "$@" || die "'$*' with the password typed failed"
}
# guide_quickstart: the README's first command, until it serves; a clone of its demo repository.
guide_quickstart() {
    local port home=$S/quickstart log=$S/quickstart.log url
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    FORGELET_PORT=$port FORGELET_HOME=$home FORGELET_CONFIG= deploy/quickstart.sh >"$log" 2>&1 &
    qs_pid=$!
    for _ in $(seq 1 600); do
        grep -q 'git clone http' "$log" && break
        kill -0 "$qs_pid" 2>/dev/null || { cat "$log" >&2; die "quickstart.sh stopped before serving"; }
        sleep 0.5
    done
    url=$(grep -o 'git clone http[^ ]*' "$log" | head -1 | cut -d' ' -f3)
    [ -n "$url" ] || { cat "$log" >&2; die "quickstart.sh never printed its clone command"; }
    git clone -q "$url" "$S/quickstart-clone" || die "cloning the quickstart's $url failed"
    [ -n "$(git -C "$S/quickstart-clone" log --oneline)" ] || die "the quickstart's clone has no commits"
    kill -TERM "$qs_pid"
    wait "$qs_pid" || die "quickstart.sh did not stop cleanly on SIGTERM (see $log)"
    qs_pid=
    printf 'quickstart served %s; cloned\n' "$url"
}
export -f guide_static guide_refused guide_asks guide_quickstart die
export S root qs_pid

blocks=("$S"/blocks/*.sh)
[ "${#blocks[@]}" -ge 5 ] || die "found only ${#blocks[@]} sh blocks in README.md"
for b in "${blocks[@]}"; do
    printf '\n== README.md %s\n' "$(basename "$b" .sh)"
    sed 's/^/    /' "$b"
    if id "$U" >/dev/null 2>&1; then
        chown -R "$U:" "$S/work-tree"
    fi
    (cd "$root" && bash -e -o pipefail "$b") || die "README.md $(basename "$b" .sh) failed"
done

# What the guide's commands left behind, as the guide says.
repo=$S/var/lib/forgelet/repos/alice/project.git
[ "$(git --git-dir="$repo" -c safe.directory='*' rev-parse main)" = "$(git -C "$S/work-tree" -c safe.directory='*' rev-parse HEAD)" ] ||
    die "the push of 'Filling a repository' did not land in alice/project"
runuser -u "$U" -- forgelet repo list | grep -q '^carol/tools' || die "dave's repository was not moved to carol"
sock=$S/run/forgelet/forgelet.sock
[ -S "$sock" ] || die "spawn-fcgi left no socket at $sock"
[ "$(stat -c '%a %G' "$sock")" = "660 www-data" ] || die "the socket is $(stat -c '%a %G' "$sock"), not 660 www-data"
printf '\nguide-test.sh: every command of the guide ran (%d blocks)\n' "${#blocks[@]}"
