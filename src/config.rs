//! Site configuration: a TOML file parsed raw (serde, unknown keys refused), then validated once
//! into [`Config`]. Every key has its default in [`RawConfig::default`] and nowhere else.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Where the config is looked for when neither `--config` nor `FORGELET_CONFIG` names one.
pub(crate) const DEFAULT_PATH: &str = "/etc/forgelet/config.toml";

/// How a file of a repository reaches the client once forgelet has authorized it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handoff {
    /// nginx: `X-Accel-Redirect: {internal_prefix}/{owner}/{repo}.git/objects/...`
    XAccelRedirect,
    /// Apache mod_xsendfile, lighttpd: `X-Sendfile: /abs/path`
    XSendfile,
    /// forgelet streams the file itself (with Range support).
    None,
}

/// The validated configuration every mode runs with.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The file this came from (for messages).
    pub(crate) file: PathBuf,
    pub(crate) data_dir: PathBuf,
    /// Public URL of forgelet's root, no trailing slash, e.g. `https://example.org/git`.
    pub(crate) base_url: String,
    /// Path forgelet is mounted under: `""` or `/seg[/seg...]`, no trailing slash.
    pub(crate) base_path: String,
    pub(crate) site_name: String,
    pub(crate) sendfile: Handoff,
    /// nginx `internal` location mapped to `{data_dir}/repos`, no trailing slash.
    pub(crate) internal_prefix: String,
    /// Public repositories may be read without signing in.
    pub(crate) anonymous_read: bool,
    /// Git over HTTP accepts personal access tokens only, not passwords.
    pub(crate) git_requires_token: bool,
    pub(crate) server: ServerConfig,
    pub(crate) limits: Limits,
    pub(crate) pack_cache: PackCacheConfig,
    pub(crate) maintenance: Maintenance,
    pub(crate) ssh: SshConfig,
}

/// git over SSH through the host's OpenSSH (`forgelet ssh-keys`, `forgelet ssh-serve`).
#[derive(Debug, Clone)]
pub(crate) struct SshConfig {
    /// The host name clone URLs give; `None`: SSH is not offered.
    pub(crate) host: Option<String>,
    pub(crate) port: u16,
    /// The account sshd lets in with the users' keys (the one that owns `data_dir`).
    pub(crate) user: String,
    /// The key index `forgelet ssh-keys` reads, written by forgelet whenever a key changes.
    pub(crate) key_index: PathBuf,
    /// The forgelet binary sshd's forced commands run.
    pub(crate) command: PathBuf,
}

impl SshConfig {
    /// The key index forgelet keeps in step with the users' keys: only while the site offers
    /// SSH (`forgelet key reindex` writes it after SSH is turned on).
    pub(crate) fn live_key_index(&self) -> Option<&Path> {
        self.host.as_ref().map(|_| self.key_index.as_path())
    }
}

/// The pack cache's bounds (see `packcache`).
#[derive(Debug, Clone)]
pub(crate) struct PackCacheConfig {
    /// Entries together hold at most this much; 0 turns the cache off.
    pub(crate) max_bytes: u64,
    /// Sightings of a request before its answer is kept.
    pub(crate) min_hits: u64,
    /// Free space left on the data directory's disk.
    pub(crate) free_bytes: u64,
    /// How long an identical request waits for the answer being made before it reads it as it grows.
    pub(crate) follow_wait: Duration,
    /// Entries unused for this long are removed by maintenance.
    pub(crate) max_age: Duration,
    /// The folder of the entries: `{data_dir}/repos/.cache` unless `[pack_cache] dir` names one
    /// (on this machine's own disk, when several machines share `data_dir`).
    pub(crate) dir: PathBuf,
    /// The URL prefix of the web server's internal location that sends the entries of `dir`
    /// (x-accel-redirect): `{internal_prefix}/.cache` for the default place, else
    /// `[pack_cache] internal_prefix`. No trailing slash.
    pub(crate) internal_prefix: String,
}

/// Repository maintenance: when it starts by itself, how much runs at once, what it keeps.
#[derive(Debug, Clone)]
pub(crate) struct Maintenance {
    /// Start maintenance of a repository after a push that leaves it worth maintaining.
    pub(crate) auto: bool,
    /// Maintenance runs on the whole site at once, at most.
    pub(crate) at_once: usize,
    /// Packs (not counting cruft packs) from which a push starts maintenance.
    pub(crate) auto_packs: usize,
    /// Loose objects from which a push starts maintenance.
    pub(crate) auto_loose: usize,
    /// How long objects nothing reaches are kept (in cruft packs) before they are dropped.
    pub(crate) cruft_days: u32,
    /// How long deleted repositories stay in the trash; 0 keeps them until removed by hand.
    pub(crate) trash_days: u32,
}

/// Caps on what one request may cost.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// A fetch request body (the wants and haves), read whole before git sees it.
    pub(crate) fetch_request_bytes: u64,
    /// A push (its pack), also git's `receive.maxInputSize`.
    pub(crate) push_bytes: u64,
    /// How long one git request (clone, fetch, push) may run.
    pub(crate) git_deadline: Duration,
    /// Address space one git child may use (`RLIMIT_AS`).
    pub(crate) git_memory_bytes: u64,
    /// Output waiting for slow clients in files, all requests together.
    pub(crate) spool_bytes: u64,
    /// The largest snapshot, counted as the sum of its files' sizes before compression.
    pub(crate) archive_bytes: u64,
    /// The largest file `raw/` sends when git keeps it as a delta (it must be rebuilt whole in
    /// memory); such files are sent one at a time.
    pub(crate) raw_delta_bytes: u64,
    /// How long `git blame` may run for one blame page before the page shows what it found.
    pub(crate) blame_deadline: Duration,
    /// How long `git grep` may run for one code search before the page shows what it found.
    pub(crate) search_deadline: Duration,
    /// Blame pages made at once by one process; more get 503.
    pub(crate) blame_at_once: usize,
    /// Code searches run at once by one process; more get 503.
    pub(crate) search_at_once: usize,
    /// The largest Git LFS object a client may upload (its size as the batch request gives it,
    /// and the bytes of the upload itself).
    pub(crate) lfs_object_bytes: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct ServerConfig {
    /// `unix:/path` or `host:port`; empty means "only an inherited socket".
    pub(crate) listen: String,
    pub(crate) socket_group: Option<String>,
    pub(crate) workers: usize,
    /// git work (a clone, fetch, push, ref advertisement, snapshot) running at once.
    pub(crate) git_workers: usize,
    /// Of those, at most this many for one client address; 0 for no limit.
    pub(crate) git_per_address: usize,
    /// Of those, this many only for signed-in users.
    pub(crate) git_reserved: usize,
    pub(crate) max_connections: usize,
    pub(crate) timeout: Duration,
    /// A client that takes no byte of an answer for this long is given up.
    pub(crate) write_timeout: Duration,
}

impl Config {
    /// `{data_dir}/repos`, where the bare repositories live.
    pub(crate) fn repos_dir(&self) -> PathBuf {
        self.data_dir.join("repos")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    data_dir: String,
    base_url: String,
    base_path: Option<String>,
    site_name: String,
    sendfile: String,
    internal_prefix: String,
    anonymous_read: bool,
    git_requires_token: bool,
    server: RawServer,
    limits: RawLimits,
    pack_cache: RawPackCache,
    maintenance: RawMaintenance,
    ssh: RawSsh,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSsh {
    host: String,
    port: i64,
    user: String,
    key_index: String,
    command: String,
}

impl Default for RawSsh {
    fn default() -> Self {
        RawSsh {
            host: String::new(),
            port: 22,
            user: "forgelet".into(),
            key_index: "/var/lib/forgelet-ssh/keys".into(),
            command: "/usr/bin/forgelet".into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPackCache {
    max_mib: i64,
    min_hits: i64,
    free_mib: i64,
    follow_wait: i64,
    max_age_days: i64,
    dir: String,
    internal_prefix: Option<String>,
}

impl Default for RawPackCache {
    fn default() -> Self {
        RawPackCache {
            max_mib: 4096,
            min_hits: 2,
            free_mib: 2048,
            follow_wait: 20,
            max_age_days: 7,
            dir: String::new(),
            internal_prefix: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawMaintenance {
    auto: bool,
    at_once: i64,
    auto_packs: i64,
    auto_loose: i64,
    cruft_days: i64,
    trash_days: i64,
}

impl Default for RawMaintenance {
    fn default() -> Self {
        RawMaintenance {
            auto: true,
            at_once: 2,
            auto_packs: 10,
            auto_loose: 1000,
            cruft_days: 14,
            trash_days: 30,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLimits {
    fetch_request_mib: i64,
    push_mib: i64,
    git_deadline: i64,
    git_memory_mib: i64,
    spool_mib: i64,
    archive_mib: i64,
    raw_delta_mib: i64,
    blame_deadline: i64,
    search_deadline: i64,
    blame_at_once: i64,
    search_at_once: i64,
    lfs_object_mib: i64,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            fetch_request_mib: 64,
            push_mib: 2048,
            git_deadline: 3600,
            git_memory_mib: 2048,
            spool_mib: 2048,
            archive_mib: 1024,
            raw_delta_mib: 256,
            blame_deadline: 10,
            search_deadline: 10,
            blame_at_once: 2,
            search_at_once: 2,
            lfs_object_mib: 4096,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawServer {
    listen: String,
    socket_group: String,
    workers: i64,
    git_workers: i64,
    git_per_address: i64,
    git_reserved: Option<i64>,
    max_connections: i64,
    timeout: i64,
    write_timeout: i64,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            data_dir: "/var/lib/forgelet".into(),
            base_url: "http://localhost".into(),
            base_path: None,
            site_name: "forgelet".into(),
            sendfile: "x-accel-redirect".into(),
            internal_prefix: "/.forgelet-repos".into(),
            anonymous_read: true,
            git_requires_token: false,
            server: RawServer::default(),
            limits: RawLimits::default(),
            pack_cache: RawPackCache::default(),
            maintenance: RawMaintenance::default(),
            ssh: RawSsh::default(),
        }
    }
}

impl Default for RawServer {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        RawServer {
            listen: "unix:/run/forgelet/forgelet.sock".into(),
            socket_group: String::new(),
            workers: 8,
            git_workers: (2 * cores) as i64,
            git_per_address: 2,
            git_reserved: None,
            max_connections: 512,
            timeout: 300,
            write_timeout: 60,
        }
    }
}

/// A config problem, said the way a sysadmin can act on it: file, line, key, what is expected.
#[derive(Debug)]
pub(crate) struct ConfigError {
    pub(crate) file: PathBuf,
    pub(crate) line: Option<usize>,
    pub(crate) key: Option<String>,
    pub(crate) message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The config path for this run: `--config`, else `FORGELET_CONFIG`, else the default.
pub(crate) fn choose_path(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    match std::env::var_os("FORGELET_CONFIG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_PATH),
    }
}

/// Reads and validates the config file.
pub(crate) fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: None,
        key: None,
        message: format!(
            "cannot read the config file: {e} (create it, or name another with --config or FORGELET_CONFIG)"
        ),
    })?;
    parse(path, &text)
}

/// Parses and validates config text; `file` is only used in messages.
pub(crate) fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        let key = line.and_then(|l| key_at_line(text, l));
        ConfigError {
            file: file.to_path_buf(),
            line,
            message: explain(e.message().trim(), key.as_deref()),
            key,
        }
    })?;
    validate(file, text, raw)
}

/// The TOML reader's message, in the config's terms rather than Rust's.
fn explain(message: &str, key: Option<&str>) -> String {
    let mut m = message
        .replace("expected i64", "expected a whole number")
        .replace(
            "number too large to fit in target type",
            "expected a whole number (this one is too large)",
        );
    // A top-level key written below a [table] header belongs to that table in TOML.
    if let Some((table, name)) = key.and_then(|k| k.split_once('.')) {
        const TOP_LEVEL: &[&str] = &[
            "data_dir",
            "base_url",
            "base_path",
            "site_name",
            "sendfile",
            "internal_prefix",
            "anonymous_read",
            "git_requires_token",
        ];
        if m.starts_with("unknown field") && TOP_LEVEL.contains(&name) {
            m.push_str(&format!(
                "; {name} is a top-level key: move it above the [{table}] header"
            ));
        }
    }
    m
}

/// 1-based line number of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The full key (`table.key`) set on a 1-based line, if that line sets one.
fn key_at_line(text: &str, line: usize) -> Option<String> {
    let mut table = String::new();
    for (i, l) in text.lines().enumerate().take(line) {
        let t = l.trim();
        if let Some(rest) = t.strip_prefix('[') {
            table = rest.trim_end_matches(']').trim().to_string();
        } else if i + 1 == line {
            let (key, _) = t.split_once('=')?;
            let key = key.trim().trim_matches('"');
            return Some(if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            });
        }
    }
    None
}

/// The line where `key` is set inside `[table]` (`table` empty for top level), if it is set.
fn line_of_key(text: &str, table: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix('[') {
            current = rest.trim_end_matches(']').trim().to_string();
            continue;
        }
        if current != table {
            continue;
        }
        let Some(rest) = t.strip_prefix(key) else {
            continue;
        };
        let rest = rest.trim_start();
        if rest.starts_with('=') {
            return Some(i + 1);
        }
    }
    None
}

struct Validator<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Validator<'_> {
    fn err(&self, table: &str, key: &str, message: String) -> ConfigError {
        let full = if table.is_empty() {
            key.to_string()
        } else {
            format!("{table}.{key}")
        };
        ConfigError {
            file: self.file.to_path_buf(),
            line: line_of_key(self.text, table, key),
            key: Some(full),
            message,
        }
    }

    fn count(
        &self,
        table: &str,
        key: &str,
        v: i64,
        min: i64,
        max: i64,
    ) -> Result<usize, ConfigError> {
        if v < min || v > max {
            return Err(self.err(
                table,
                key,
                format!("expected a whole number from {min} to {max}, found {v}"),
            ));
        }
        Ok(v as usize)
    }
}

fn validate(file: &Path, text: &str, raw: RawConfig) -> Result<Config, ConfigError> {
    let v = Validator { file, text };

    let data_dir = PathBuf::from(&raw.data_dir);
    if !data_dir.is_absolute() {
        return Err(v.err(
            "",
            "data_dir",
            format!("expected an absolute path, found {:?}", raw.data_dir),
        ));
    }

    let (base_url, url_path) =
        parse_base_url(&raw.base_url).map_err(|m| v.err("", "base_url", m))?;
    let base_path = match &raw.base_path {
        Some(p) => check_url_path(p).map_err(|m| v.err("", "base_path", m))?,
        None => url_path,
    };

    let sendfile = match raw.sendfile.as_str() {
        "x-accel-redirect" => Handoff::XAccelRedirect,
        "x-sendfile" => Handoff::XSendfile,
        "none" => Handoff::None,
        other => {
            return Err(v.err(
                "",
                "sendfile",
                format!(
                    "expected \"x-accel-redirect\", \"x-sendfile\" or \"none\", found {other:?}"
                ),
            ))
        }
    };

    let internal_prefix =
        check_url_path(&raw.internal_prefix).map_err(|m| v.err("", "internal_prefix", m))?;
    if internal_prefix.is_empty() {
        return Err(v.err(
            "",
            "internal_prefix",
            "expected a path such as \"/.forgelet-repos\", found \"/\"".into(),
        ));
    }

    if raw.site_name.trim().is_empty() || raw.site_name.chars().any(char::is_control) {
        return Err(v.err(
            "",
            "site_name",
            "expected a non-empty name without control characters".into(),
        ));
    }

    let s = &raw.server;
    let listen = s.listen.trim().to_string();
    if !listen.is_empty() {
        check_listen(&listen).map_err(|m| v.err("server", "listen", m))?;
    }
    let workers = v.count("server", "workers", s.workers, 1, 1024)?;
    let git_workers = v.count("server", "git_workers", s.git_workers, 1, 1024)?;
    let max_connections = v.count("server", "max_connections", s.max_connections, 1, 1_000_000)?;
    if max_connections < workers + git_workers {
        return Err(v.err(
            "server",
            "max_connections",
            format!(
                "expected at least workers + git_workers ({}), found {max_connections}",
                workers + git_workers
            ),
        ));
    }
    let git_per_address = v.count("server", "git_per_address", s.git_per_address, 0, 1024)?;
    // A quarter of the slots for signed-in users by default, at least one, and never all:
    // anonymous clones must be able to run.
    let git_reserved = match s.git_reserved {
        Some(n) => v.count(
            "server",
            "git_reserved",
            n,
            0,
            (git_workers as i64 - 1).max(0),
        )?,
        None => git_workers.div_ceil(4).min(git_workers - 1),
    };
    let timeout = v.count("server", "timeout", s.timeout, 1, 86_400)?;
    let write_timeout = v.count("server", "write_timeout", s.write_timeout, 5, 86_400)?;
    let socket_group = match s.socket_group.trim() {
        "" => None,
        g => Some(g.to_string()),
    };

    let l = &raw.limits;
    let mib = |key: &str, value: i64, max: i64| -> Result<u64, ConfigError> {
        Ok((v.count("limits", key, value, 1, max)? as u64) << 20)
    };
    let limits = Limits {
        fetch_request_bytes: mib("fetch_request_mib", l.fetch_request_mib, 4096)?,
        push_bytes: mib("push_mib", l.push_mib, 1 << 20)?,
        git_deadline: Duration::from_secs(v.count(
            "limits",
            "git_deadline",
            l.git_deadline,
            10,
            86_400,
        )? as u64),
        git_memory_bytes: mib("git_memory_mib", l.git_memory_mib, 1 << 20)?,
        spool_bytes: mib("spool_mib", l.spool_mib, 1 << 30)?,
        archive_bytes: mib("archive_mib", l.archive_mib, 1 << 30)?,
        raw_delta_bytes: mib("raw_delta_mib", l.raw_delta_mib, 1 << 20)?,
        blame_deadline: Duration::from_secs(v.count(
            "limits",
            "blame_deadline",
            l.blame_deadline,
            1,
            600,
        )? as u64),
        search_deadline: Duration::from_secs(v.count(
            "limits",
            "search_deadline",
            l.search_deadline,
            1,
            600,
        )? as u64),
        blame_at_once: v.count("limits", "blame_at_once", l.blame_at_once, 1, 256)?,
        search_at_once: v.count("limits", "search_at_once", l.search_at_once, 1, 256)?,
        lfs_object_bytes: mib("lfs_object_mib", l.lfs_object_mib, 1 << 30)?,
    };
    if limits.git_memory_bytes < 256 << 20 {
        return Err(v.err(
            "limits",
            "git_memory_mib",
            format!(
                "expected at least 256 (git maps up to 256 MiB of packs and needs room besides), found {}",
                l.git_memory_mib
            ),
        ));
    }

    let c = &raw.pack_cache;
    let pack_cache = PackCacheConfig {
        max_bytes: (v.count("pack_cache", "max_mib", c.max_mib, 0, 1 << 30)? as u64) << 20,
        min_hits: v.count("pack_cache", "min_hits", c.min_hits, 1, 1000)? as u64,
        free_bytes: (v.count("pack_cache", "free_mib", c.free_mib, 0, 1 << 30)? as u64) << 20,
        follow_wait: Duration::from_secs(v.count(
            "pack_cache",
            "follow_wait",
            c.follow_wait,
            1,
            240,
        )? as u64),
        max_age: Duration::from_secs(
            v.count("pack_cache", "max_age_days", c.max_age_days, 1, 3650)? as u64 * 86_400,
        ),
        dir: PathBuf::new(),
        internal_prefix: String::new(),
    };
    let (dir, cache_prefix) = pack_cache_place(&v, c, &data_dir, &internal_prefix)?;
    let pack_cache = PackCacheConfig {
        dir,
        internal_prefix: cache_prefix,
        ..pack_cache
    };
    let m = &raw.maintenance;
    let maintenance = Maintenance {
        auto: m.auto,
        at_once: v.count("maintenance", "at_once", m.at_once, 1, 64)?,
        auto_packs: v.count("maintenance", "auto_packs", m.auto_packs, 2, 10_000)?,
        auto_loose: v.count("maintenance", "auto_loose", m.auto_loose, 1, 1_000_000)?,
        cruft_days: v.count("maintenance", "cruft_days", m.cruft_days, 1, 3650)? as u32,
        trash_days: v.count("maintenance", "trash_days", m.trash_days, 0, 36_500)? as u32,
    };

    let r = &raw.ssh;
    let host = r.host.trim();
    if host.starts_with('-')
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
    {
        return Err(v.err(
            "ssh",
            "host",
            format!("expected a host name or address for clone URLs such as \"git.example.org\" (or \"\" for no SSH), found {:?}", r.host),
        ));
    }
    let port = v.count("ssh", "port", r.port, 1, 65_535)? as u16;
    if r.user.is_empty()
        || r.user.starts_with('-')
        || !r
            .user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(v.err(
            "ssh",
            "user",
            format!("expected the name of the system account sshd lets in (such as \"forgelet\"), found {:?}", r.user),
        ));
    }
    let absolute = |key: &str, value: &str| -> Result<PathBuf, ConfigError> {
        let p = PathBuf::from(value);
        if p.is_absolute()
            && !value.contains(['"', '\\', '\n'])
            && !value.contains(char::is_whitespace)
        {
            Ok(p)
        } else {
            Err(v.err(
                "ssh",
                key,
                format!("expected an absolute path without spaces or quotes, found {value:?}"),
            ))
        }
    };
    let ssh = SshConfig {
        host: (!host.is_empty()).then(|| host.to_string()),
        port,
        user: r.user.clone(),
        key_index: absolute("key_index", &r.key_index)?,
        command: absolute("command", &r.command)?,
    };

    Ok(Config {
        file: file.to_path_buf(),
        data_dir,
        base_url,
        base_path,
        site_name: raw.site_name,
        sendfile,
        internal_prefix,
        anonymous_read: raw.anonymous_read,
        git_requires_token: raw.git_requires_token,
        limits,
        pack_cache,
        maintenance,
        ssh,
        server: ServerConfig {
            listen,
            socket_group,
            workers,
            git_workers,
            git_per_address,
            git_reserved,
            max_connections,
            timeout: Duration::from_secs(timeout as u64),
            write_timeout: Duration::from_secs(write_timeout as u64),
        },
    })
}

/// The pack cache's folder and the URL prefix the web server sends its entries under: the
/// default place, `{data_dir}/repos/.cache` under `{internal_prefix}/.cache`, or `[pack_cache]
/// dir` under `[pack_cache] internal_prefix`. A folder of its own must be outside `data_dir`
/// (it is for a disk of this machine's own, and nothing under `data_dir` may be one crafted
/// path away from the web server's internal location), and its prefix apart from
/// `internal_prefix`.
fn pack_cache_place(
    v: &Validator<'_>,
    c: &RawPackCache,
    data_dir: &Path,
    internal_prefix: &str,
) -> Result<(PathBuf, String), ConfigError> {
    let err = |key: &str, m: String| v.err("pack_cache", key, m);
    if c.dir.is_empty() {
        if c.internal_prefix.is_some() {
            return Err(err(
                "internal_prefix",
                "is used only with [pack_cache] dir (the default place is sent under internal_prefix/.cache): set dir too, or remove this line".into(),
            ));
        }
        return Ok((
            data_dir.join("repos").join(PACK_CACHE_DEFAULT),
            format!("{internal_prefix}/{PACK_CACHE_DEFAULT}"),
        ));
    }
    let dir = PathBuf::from(&c.dir);
    let plain = dir.is_absolute()
        && !c.dir.contains(['"', '\\', '\'', ';', '{', '}', '$'])
        && !c
            .dir
            .contains(|ch: char| ch.is_whitespace() || ch.is_control())
        && dir.components().all(|p| {
            matches!(
                p,
                std::path::Component::RootDir | std::path::Component::Normal(_)
            )
        });
    if !plain {
        return Err(err(
            "dir",
            format!("expected an absolute path of plain names, such as \"/var/cache/forgelet/packs\" (no spaces, quotes, ; {{ }} $, or . and .. parts: it goes on the web server's alias line), found {:?}", c.dir),
        ));
    }
    if dir.starts_with(data_dir) || data_dir.starts_with(&dir) {
        return Err(err(
            "dir",
            format!("expected a folder outside data_dir ({}) that does not hold it either, on this machine's own disk, such as \"/var/cache/forgelet/packs\"; leave dir out for the default place, {}/repos/.cache, found {:?}", data_dir.display(), data_dir.display(), c.dir),
        ));
    }
    let raw_prefix = c.internal_prefix.as_deref().unwrap_or(PACK_CACHE_PREFIX);
    let prefix = check_url_path(raw_prefix).map_err(|m| err("internal_prefix", m))?;
    let overlaps = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}/"));
    if prefix.is_empty() || overlaps(&prefix, internal_prefix) || overlaps(internal_prefix, &prefix)
    {
        return Err(err(
            "internal_prefix",
            format!("expected a path of its own for the web server's internal location of the pack cache, such as \"{PACK_CACHE_PREFIX}\", neither internal_prefix ({internal_prefix}) nor below or above it, found {raw_prefix:?}"),
        ));
    }
    Ok((dir, prefix))
}

/// The pack cache's folder inside the repositories folder, by default: a name no owner can
/// take (owner names begin with a letter or digit), under the web server's internal location
/// for the repositories.
const PACK_CACHE_DEFAULT: &str = ".cache";

/// The internal location of a pack cache kept outside `data_dir` (`[pack_cache] dir`), unless
/// `[pack_cache] internal_prefix` names another.
const PACK_CACHE_PREFIX: &str = "/.forgelet-pack-cache";

/// Splits `http(s)://host[:port][/path]` into the URL without a trailing slash and its path.
fn parse_base_url(url: &str) -> Result<(String, String), String> {
    let expected = "expected an absolute http:// or https:// URL such as \"https://git.example.org\" or \"https://example.org/git\"";
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{expected}, found {url:?}"))?;
    if url.contains(['?', '#']) || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{expected} (no query, fragment or spaces), found {url:?}"
        ));
    }
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if host.is_empty() || host.contains('@') {
        return Err(format!(
            "{expected} (with a host and no user name), found {url:?}"
        ));
    }
    let path = check_url_path(path)?;
    let scheme_len = url.len() - rest.len();
    Ok((format!("{}{}{}", &url[..scheme_len], host, path), path))
}

/// A URL path prefix: `""`, or `/seg[/seg...]` of unreserved characters; a trailing slash is dropped.
fn check_url_path(p: &str) -> Result<String, String> {
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if !trimmed.starts_with('/') {
        return Err(format!("expected a path starting with \"/\", found {p:?}"));
    }
    for seg in trimmed[1..].split('/') {
        let ok_chars = seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        if seg.is_empty() || seg == "." || seg == ".." || !ok_chars {
            return Err(format!(
                "expected a path of letters, digits and -._~ separated by single slashes, found {p:?}"
            ));
        }
    }
    Ok(trimmed.to_string())
}

/// `unix:/absolute/path` or `host:port`.
pub(crate) fn check_listen(s: &str) -> Result<(), String> {
    if let Some(path) = s.strip_prefix("unix:") {
        if path.starts_with('/') {
            return Ok(());
        }
        return Err(format!("expected unix:/absolute/path, found {s:?}"));
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(())
        }
        Some((host, port)) if !host.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("the port must be from 1 to 65535, found {port}"))
        }
        _ => Err(format!(
            "expected \"unix:/path/to/socket\" or \"host:port\" (e.g. 127.0.0.1:9000), found {s:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Config, ConfigError> {
        parse(Path::new("/etc/forgelet/config.toml"), text)
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = p("").unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/forgelet"));
        assert_eq!(c.base_url, "http://localhost");
        assert_eq!(c.base_path, "");
        assert_eq!(c.sendfile, Handoff::XAccelRedirect);
        assert_eq!(c.internal_prefix, "/.forgelet-repos");
        assert_eq!(c.repos_dir(), PathBuf::from("/var/lib/forgelet/repos"));
        assert!(c.anonymous_read && !c.git_requires_token);
        assert_eq!(c.limits.push_bytes, 2048 << 20);
    }

    #[test]
    fn git_slots_are_shared_out_sensibly() {
        let c = p("[server]\ngit_workers = 8\n").unwrap();
        assert_eq!((c.server.git_reserved, c.server.git_per_address), (2, 2));
        let c = p("[server]\ngit_workers = 1\n").unwrap();
        assert_eq!(c.server.git_reserved, 0, "the only slot cannot be reserved");
        let c = p("[server]\ngit_workers = 2\n").unwrap();
        assert_eq!(c.server.git_reserved, 1);
        let e = p("[server]\ngit_workers = 4\ngit_reserved = 4\n").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(3), Some("server.git_reserved"))
        );
        assert!(e.message.contains("from 0 to 3"), "{e}");
        let c = p("[server]\ngit_per_address = 0\nwrite_timeout = 30\n").unwrap();
        assert_eq!(c.server.git_per_address, 0);
        assert_eq!(c.server.write_timeout, Duration::from_secs(30));
        let e = p("[limits]\ngit_memory_mib = 100\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("limits.git_memory_mib"));
        assert!(e.message.contains("at least 256"), "{e}");
        let c = p("").unwrap();
        assert_eq!(c.limits.archive_bytes, 1 << 30);
        assert_eq!(c.limits.raw_delta_bytes, 256 << 20);
    }

    #[test]
    fn maintenance_has_defaults_and_bounds() {
        let m = p("").unwrap().maintenance;
        assert!(m.auto);
        assert_eq!(
            (
                m.at_once,
                m.auto_packs,
                m.auto_loose,
                m.cruft_days,
                m.trash_days
            ),
            (2, 10, 1000, 14, 30)
        );
        let m = p("[maintenance]\nauto = false\ntrash_days = 0\n")
            .unwrap()
            .maintenance;
        assert!(!m.auto);
        assert_eq!(m.trash_days, 0, "0 keeps the trash");
        for (text, key) in [
            ("at_once = 0", "maintenance.at_once"),
            ("cruft_days = 0", "maintenance.cruft_days"),
            ("auto_packs = 1", "maintenance.auto_packs"),
            ("auto_loose = 0", "maintenance.auto_loose"),
        ] {
            let e = p(&format!("[maintenance]\n{text}\n")).unwrap_err();
            assert_eq!((e.line, e.key.as_deref()), (Some(2), Some(key)), "{e}");
        }
    }

    /// The pack cache's folder: the repositories folder's `.cache` by default, sent under the
    /// repositories' internal location; a folder of its own outside `data_dir`, sent under an
    /// internal location of its own; anything else refused naming the key.
    #[test]
    fn pack_cache_dir_is_the_default_place_or_a_folder_outside_data_dir() {
        let c = p("").unwrap();
        assert_eq!(
            c.pack_cache.dir,
            PathBuf::from("/var/lib/forgelet/repos/.cache")
        );
        assert_eq!(c.pack_cache.internal_prefix, "/.forgelet-repos/.cache");
        let c = p("[pack_cache]\ndir = \"/var/cache/forgelet/packs/\"\n").unwrap();
        assert_eq!(c.pack_cache.dir, PathBuf::from("/var/cache/forgelet/packs"));
        assert_eq!(c.pack_cache.internal_prefix, "/.forgelet-pack-cache");
        let c = p("[pack_cache]\ndir = \"/cache\"\ninternal_prefix = \"/.packs-a/\"\n").unwrap();
        assert_eq!(c.pack_cache.internal_prefix, "/.packs-a");
        for (bad, key, says) in [
            ("dir = \"cache\"", "dir", "absolute path"),
            (
                "dir = \"/var/cache/../lib/forgelet\"",
                "dir",
                "absolute path of plain names",
            ),
            ("dir = \"/var/cache/my packs\"", "dir", "no spaces"),
            ("dir = \"/var/cache/x;y\"", "dir", "plain names"),
            (
                "dir = \"/var/lib/forgelet/repos/alice\"",
                "dir",
                "outside data_dir",
            ),
            (
                "dir = \"/var/lib/forgelet/cache\"",
                "dir",
                "outside data_dir",
            ),
            ("dir = \"/var/lib\"", "dir", "outside data_dir"),
            ("dir = \"/\"", "dir", "outside data_dir"),
            (
                "internal_prefix = \"/.p\"",
                "internal_prefix",
                "set dir too",
            ),
            (
                "dir = \"/c\"\ninternal_prefix = \"/.forgelet-repos\"",
                "internal_prefix",
                "a path of its own",
            ),
            (
                "dir = \"/c\"\ninternal_prefix = \"/.forgelet-repos/c\"",
                "internal_prefix",
                "a path of its own",
            ),
            (
                "dir = \"/c\"\ninternal_prefix = \"/\"",
                "internal_prefix",
                "a path of its own",
            ),
            (
                "dir = \"/c\"\ninternal_prefix = \"x\"",
                "internal_prefix",
                "starting with",
            ),
        ] {
            let e = p(&format!("[pack_cache]\n{bad}\n")).unwrap_err();
            let line = if key == "dir" || bad.starts_with("internal_prefix") {
                2
            } else {
                3
            };
            assert_eq!(
                (e.line, e.key.as_deref()),
                (Some(line), Some(format!("pack_cache.{key}").as_str())),
                "{bad}: {e}"
            );
            assert!(e.message.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn base_path_follows_base_url_unless_set() {
        let c = p("base_url = \"https://example.org/git/\"").unwrap();
        assert_eq!(c.base_url, "https://example.org/git");
        assert_eq!(c.base_path, "/git");
        let c = p("base_url = \"https://example.org/git\"\nbase_path = \"/\"").unwrap();
        assert_eq!(c.base_path, "");
    }

    /// Every key the config takes is in the README's table, with its table's prefix. The keys
    /// come from the parser itself (the names it lists when refusing an unknown one), so a key
    /// added to the code and not to the guide fails here.
    #[test]
    fn the_readme_lists_every_key() {
        let readme = include_str!("../README.md");
        for (table, prefix) in [
            ("", ""),
            ("[server]\n", "[server] "),
            ("[limits]\n", "[limits] "),
            ("[pack_cache]\n", "[pack_cache] "),
            ("[maintenance]\n", "[maintenance] "),
            ("[ssh]\n", "[ssh] "),
        ] {
            let e = p(&format!("{table}no_such_key = 1\n")).unwrap_err();
            let expected = e
                .message
                .split_once("expected one of ")
                .map(|(_, list)| list.to_string())
                .unwrap_or_else(|| panic!("no list of keys in {e}"));
            let keys: Vec<&str> = expected
                .split(", ")
                .map(|k| k.trim().trim_matches('`'))
                .filter(|k| {
                    !matches!(
                        *k,
                        "server" | "limits" | "pack_cache" | "maintenance" | "ssh"
                    )
                })
                .collect();
            assert!(keys.len() >= 5, "{expected}");
            for key in keys {
                let row = format!("| `{prefix}{key}` |");
                assert!(readme.contains(&row), "README.md has no row {row}");
            }
        }
    }

    #[test]
    fn unknown_key_names_line() {
        let e = p("data_dir = \"/srv\"\n\n[server]\nworkerz = 3\n").unwrap_err();
        assert_eq!(e.line, Some(4));
        assert!(e.message.contains("workerz"), "{e}");
    }

    #[test]
    fn bad_values_name_key_and_line() {
        let e = p("site_name = \"x\"\nsendfile = \"nginx\"\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert_eq!(e.key.as_deref(), Some("sendfile"));
        assert!(e
            .to_string()
            .starts_with("/etc/forgelet/config.toml:2: sendfile: expected"));

        let e = p("[server]\nworkers = 0\n").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(2), Some("server.workers"))
        );
        let e = p("data_dir = \"var\"").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("data_dir"));
        for bad in [
            "ftp://x",
            "http://",
            "http://h/a/../b",
            "http://h/?q",
            "http://u@h",
        ] {
            let e = p(&format!("base_url = {bad:?}")).unwrap_err();
            assert_eq!(e.key.as_deref(), Some("base_url"), "{bad}");
        }
        let e = p("[server]\nlisten = \"/tmp/sock\"").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("server.listen"));
    }

    #[test]
    fn wrong_type_names_line() {
        let e = p("data_dir = \"/srv\"\n[server]\nworkers = \"many\"\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert_eq!(e.key.as_deref(), Some("server.workers"));
        let e = p("data_dir = 5\n").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(1), Some("data_dir")));
    }

    #[test]
    fn messages_speak_of_the_config() {
        let e = p("[server]\nworkers = \"four\"\n").unwrap_err();
        assert!(e.message.contains("expected a whole number"), "{e}");
        let e = p("[server]\ntimeout = 99999999999999999999\n").unwrap_err();
        assert!(e.message.contains("whole number"), "{e}");
        let e = p("[server]\nworkers = 2\nsite_name = \"x\"\n").unwrap_err();
        assert!(
            e.message.contains("move it above the [server] header"),
            "{e}"
        );
        assert!(check_listen("127.0.0.1:99999")
            .unwrap_err()
            .contains("1 to 65535"));
    }

    #[test]
    fn listen_forms() {
        assert!(check_listen("unix:/run/f.sock").is_ok());
        assert!(check_listen("127.0.0.1:9000").is_ok());
        assert!(check_listen("[::1]:9000").is_ok());
        assert!(check_listen("unix:rel").is_err());
        assert!(check_listen("9000").is_err());
    }
}
