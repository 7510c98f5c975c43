# shellcheck shell=bash
# deploy/lib.sh: what quickstart.sh, test.sh and bench.sh share. Sourced, not run.

# Prints the nginx binary: $NGINX_BIN, else /usr/sbin/nginx, else the one on PATH. (Not $NGINX:
# nginx itself reads that variable, for sockets inherited across a binary upgrade.)
find_nginx() {
    if [ -n "${NGINX_BIN:-}" ]; then
        printf '%s\n' "$NGINX_BIN"
    elif [ -x /usr/sbin/nginx ]; then
        printf '%s\n' /usr/sbin/nginx
    elif command -v nginx >/dev/null 2>&1; then
        command -v nginx
    fi
}

# Installs nginx and git when missing: with apt-get as root, otherwise it says what to install.
# Returns non-zero, after a message on stderr, when something is still missing.
install_nginx_and_git() {
    local missing=()
    [ -n "$(find_nginx)" ] || missing+=(nginx-light)
    command -v git >/dev/null 2>&1 || missing+=(git)
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        printf 'missing %s; install as root: apt-get install -y %s\n' "${missing[*]}" "${missing[*]}" >&2
        return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        printf 'missing %s, and there is no apt-get to install it\n' "${missing[*]}" >&2
        return 1
    fi
    printf 'installing %s\n' "${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # Newer Debian/Ubuntu releases ship one `nginx` package instead of nginx-light.
    if [[ " ${missing[*]} " == *" nginx-light "* ]] && ! apt-cache show nginx-light >/dev/null 2>&1; then
        missing=("${missing[@]/#nginx-light/nginx}")
    fi
    apt-get install -y -q "${missing[@]}"
}

# Whether dulwich imports in `python3` on PATH or in /usr/bin/python3, the two the tests try
# (Debian's package goes to the latter even when PATH leads to another Python, e.g. pyenv's).
has_dulwich() {
    local py
    for py in python3 /usr/bin/python3; do
        "$py" -c 'import dulwich' >/dev/null 2>&1 && return 0
    done
    return 1
}

# Installs what only the tests use when missing: dulwich (Debian python3-dulwich), the second,
# independent git client the push tests use. With apt-get as root, otherwise it says what to
# install; returns non-zero, after a message on stderr, when it is still missing (the dulwich
# test fails without it).
install_test_clients() {
    has_dulwich && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        printf 'missing python3-dulwich; install as root: apt-get install -y python3-dulwich\n' >&2
        return 1
    fi
    printf 'installing python3-dulwich\n' >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-cache show python3-dulwich >/dev/null 2>&1 || apt-get update -q
    apt-get install -y -q python3-dulwich || {
        printf 'apt-get install python3-dulwich failed\n' >&2
        return 1
    }
    has_dulwich || {
        printf 'python3-dulwich is installed, but neither python3 nor /usr/bin/python3 imports dulwich\n' >&2
        return 1
    }
}

# Installs the Debian packages named that are missing (as root, with apt-get), saying which;
# returns non-zero, saying what to install, when it cannot.
install_debs() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        printf 'missing %s; install as root: apt-get install -y %s\n' "${missing[*]}" "${missing[*]}" >&2
        return 1
    fi
    printf 'installing %s\n' "${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-cache show "${missing[@]}" >/dev/null 2>&1 || apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}" || {
        printf 'apt-get install %s failed\n' "${missing[*]}" >&2
        return 1
    }
}

# The web servers the host tests (tests/hosts.rs) start with forgelet's shipped configs: Apache
# with mod_proxy_fcgi, mod_cgid and mod_xsendfile, and lighttpd.
install_web_servers() {
    install_debs apache2 libapache2-mod-xsendfile lighttpd
}

# What the tests of the hosts that start forgelet themselves use (tests/hosts_systemd.rs):
# spawn-fcgi, and systemd-analyze and systemd-socket-activate (Debian `systemd`); and OpenSSH's
# sshd, ssh and ssh-keygen for the SSH tests (tests/ssh.rs start their own sshd on a loopback
# port; the one the package installs is not used); python3, whose xml.etree checks that the Atom
# feeds are well-formed XML (tests/web.rs). Returns non-zero, after a message on stderr, when
# something is still missing.
install_host_tools() {
    install_debs spawn-fcgi systemd openssh-server openssh-client python3 git-lfs || return 1
    [ -x /usr/sbin/sshd ] || {
        printf '/usr/sbin/sshd is missing although openssh-server is installed\n' >&2
        return 1
    }
    local tool
    for tool in spawn-fcgi systemd-analyze systemd-socket-activate ssh ssh-keygen git-lfs; do
        command -v "$tool" >/dev/null 2>&1 || {
            printf '%s is not on PATH although its package is installed\n' "$tool" >&2
            return 1
        }
    done
}

# Readies the real-browser test (tests/browser/run.sh): Debian's chromium (/usr/bin/chromium, or
# $CHROMIUM_BIN), installed with apt-get as root when missing, node >= 20 with npm, and `npm ci`
# in tests/browser (playwright-core, which never downloads a browser of its own). Returns
# non-zero, after saying on stderr exactly what is missing, when the test cannot run.
install_browser_test() {
    local root chromium=${CHROMIUM_BIN:-/usr/bin/chromium} missing=() major
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    if [ ! -x "$chromium" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        printf 'installing chromium\n' >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-cache show chromium >/dev/null 2>&1 || apt-get update -q
        apt-get install -y -q chromium || printf 'apt-get install chromium failed\n' >&2
    fi
    [ -x "$chromium" ] || missing+=("chromium at $chromium (as root: apt-get install -y chromium)")
    if command -v node >/dev/null 2>&1; then
        major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
        [ "$major" -ge 20 ] 2>/dev/null \
            || missing+=("node >= 20 for playwright-core (found $(node --version 2>&1))")
    else
        missing+=("node >= 20 (Node.js; not on PATH)")
    fi
    command -v npm >/dev/null 2>&1 || missing+=("npm (to install tests/browser/package-lock.json)")
    if [ "${#missing[@]}" -gt 0 ]; then
        printf 'the browser test cannot run; missing:\n' >&2
        printf '  - %s\n' "${missing[@]}" >&2
        return 1
    fi
    (cd "$root/tests/browser" && npm ci --no-audit --no-fund --loglevel=error) || {
        printf 'npm ci in tests/browser failed (playwright-core from the npm registry)\n' >&2
        return 1
    }
}

# Installs what bench.sh's web-pages part compares with when missing: wrk (Debian `wrk`, the load
# generator) and cgit (Debian `cgit`, the baseline: its CGI at $CGIT_CGI, default
# /usr/lib/cgit/cgit.cgi). With apt-get as root (cgit without its recommended web server: it runs
# through fcgiwrap behind the benchmark's own nginx), otherwise it says what to install. Returns
# non-zero, after saying on stderr what is missing, when something is still missing.
install_web_bench_tools() {
    local cgit_cgi=${CGIT_CGI:-/usr/lib/cgit/cgit.cgi} missing=()
    command -v wrk >/dev/null 2>&1 || missing+=(wrk)
    [ -x "$cgit_cgi" ] || missing+=(cgit)
    # cgit's highlight filter (E's highlighted blob) is Pygments.
    python3 -c 'import pygments' >/dev/null 2>&1 || missing+=(python3-pygments)
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        printf 'missing %s; install as root: apt-get install -y --no-install-recommends %s\n' \
            "${missing[*]}" "${missing[*]}" >&2
        return 1
    fi
    printf 'installing %s\n' "${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-cache show "${missing[@]}" >/dev/null 2>&1 || apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}" || {
        printf 'apt-get install %s failed\n' "${missing[*]}" >&2
        return 1
    }
    missing=()
    command -v wrk >/dev/null 2>&1 || missing+=("wrk (not on PATH)")
    [ -x "$cgit_cgi" ] || missing+=("cgit (no executable $cgit_cgi)")
    python3 -c 'import pygments' >/dev/null 2>&1 || missing+=("python3-pygments (python3 cannot import it)")
    if [ "${#missing[@]}" -gt 0 ]; then
        printf 'still missing: %s\n' "${missing[*]}" >&2
        return 1
    fi
}
