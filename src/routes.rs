//! The route table: every URL forgelet answers, one row each, and the only place a request is
//! matched to what answers it. A row says which methods it takes, its path (segment by segment,
//! after the base path), what the request needs before its handler runs (nothing, a signed-in
//! user, or read, write or manage access to the repository the path names), whether it is a form
//! (its body read, capped, and its CSRF token checked), its lane, and its handler. The dispatcher
//! (`app`) does the rest alike for every row; handlers never check access themselves.
//!
//! Adding a route is adding a row here (with an `example` the tests use) and its handler.

use crate::error::{Error, Result};
use crate::git::names::{valid_name, valid_owner};
use crate::git_http::{self, dumb, files, push, smart};
use crate::lfs::batch as lfs_batch;
use crate::lfs::locks as lfs_locks;
use crate::lfs::objects as lfs_objects;
use crate::lfs::token::Op as LfsOp;
use crate::pages;
use crate::pages::{
    account, blame, blob, code_search, commit, commits, compare, downloads, feeds, front, home,
    keys, login, logout, new_repo, owner, refs, repo_search, settings, static_file, tree,
};
use crate::request::{Captures, Method};

/// One segment of a route's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg {
    /// Exactly this text.
    Lit(&'static str),
    /// A valid owner name.
    Owner,
    /// A valid repository name, with or without `.git`.
    Repo,
    /// Exactly this many lowercase hex digits.
    Hex(usize),
    /// `pack-<40 hex>` and this extension.
    Pack(&'static str),
    /// Any one segment (kept in `Captures::rest`).
    One,
    /// One or more segments, the rest of the path (kept in `Captures::rest`).
    Rest,
}

/// What a request needs before its handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: the handler shows what the viewer may see.
    Anyone,
    /// A signed-in user; anyone else is sent to sign in.
    SignedIn,
    /// Read access to the repository the path names.
    Read,
    /// Write access (a push).
    Write,
    /// The repository's owner or a site admin.
    Manage,
}

/// Which pool of workers serves a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Pages, generated ref lists and files handed to the web server: answered at once.
    Quick,
    /// Where forgelet runs git or streams its output, which may take minutes.
    Git,
    /// Files of a repository: `Git` when forgelet streams them itself (`sendfile = "none"`),
    /// `Quick` when the web server sends them.
    Files,
}

/// Who answers.
#[derive(Clone, Copy)]
pub(crate) enum Handler {
    /// A page (or a download from the web pages): the viewer signs in with a session cookie,
    /// and errors are pages in the site's layout.
    Page(pages::Handler),
    /// git over HTTP: the client signs in with HTTP Basic, a missing or hidden repository is
    /// the same 401 for anonymous clients, and errors are plain text git prints.
    Git(git_http::Handler),
    /// An Atom feed: a page a feed reader fetches. Readers cannot sign in with a form, so a
    /// personal access token by HTTP Basic stands in for the session cookie; without either, a
    /// repository the client may not read is a 401 with a challenge (the reader asks for
    /// credentials), as for git; errors are plain text.
    Feed(pages::Handler),
    /// Git LFS: HTTP Basic or (object routes) a signed header from a batch answer, errors as
    /// LFS's JSON.
    Lfs(crate::lfs::Route),
    /// A site page's address before the site's pages moved under `/-/`: redirected to the same
    /// path there (301 for a GET, 308 for a POST, which keeps the method and the body), so
    /// bookmarks and old links keep working.
    Moved,
}

/// One route.
pub struct Row {
    /// A name for logs and tests.
    pub name: &'static str,
    /// `Get` (which takes `HEAD` too) or `Post`.
    pub method: Method,
    pub path: &'static [Seg],
    /// A trailing slash is taken as the same URL.
    pub slash: bool,
    /// Only when this query parameter has this value.
    pub query: Option<(&'static str, &'static str)>,
    pub need: Need,
    /// A form: the body is read (up to 64 KiB) and its CSRF token checked first.
    pub form: bool,
    pub lane: Lane,
    pub(crate) handler: Handler,
    /// A path (and query) this row answers, with `OWNER` and `REPO` for a repository the tests
    /// make, and `{...}` for what they fill in: the route and permission tests use it.
    pub example: &'static str,
}

impl Row {
    /// A git route (HTTP Basic, plain-text errors), not a page.
    pub fn is_git(&self) -> bool {
        matches!(self.handler, Handler::Git(_))
    }

    /// An Atom feed, which takes a token by HTTP Basic as well as the session cookie.
    pub fn is_feed(&self) -> bool {
        matches!(self.handler, Handler::Feed(_))
    }

    /// A Git LFS route.
    pub fn is_lfs(&self) -> bool {
        matches!(self.handler, Handler::Lfs(_))
    }

    /// A page (or a download from the pages).
    pub fn is_page(&self) -> bool {
        matches!(self.handler, Handler::Page(_))
    }
}

use Lane::{Files, Git, Quick};
use Need::{Anyone, Manage, Read, SignedIn, Write};
use Seg::{Hex, Lit, One, Owner, Pack, Rest};

const fn page(
    name: &'static str,
    method: Method,
    path: &'static [Seg],
    need: Need,
    handler: pages::Handler,
    example: &'static str,
) -> Row {
    Row {
        name,
        method,
        path,
        slash: false,
        query: None,
        need,
        form: matches!(method, Method::Post),
        lane: Quick,
        handler: Handler::Page(handler),
        example,
    }
}

const fn git(
    name: &'static str,
    method: Method,
    path: &'static [Seg],
    need: Need,
    lane: Lane,
    handler: git_http::Handler,
    example: &'static str,
) -> Row {
    Row {
        name,
        method,
        path,
        slash: false,
        query: None,
        need,
        form: false,
        lane,
        handler: Handler::Git(handler),
        example,
    }
}

/// An Atom feed of a repository: see [`Handler::Feed`].
const fn feed(
    name: &'static str,
    path: &'static [Seg],
    handler: pages::Handler,
    example: &'static str,
) -> Row {
    Row {
        name,
        method: Method::Get,
        path,
        slash: false,
        query: None,
        need: Read,
        form: false,
        lane: Quick,
        handler: Handler::Feed(handler),
        example,
    }
}

/// A Git LFS route; `signed`: the signed header of a batch answer it takes besides HTTP Basic.
#[allow(clippy::too_many_arguments)]
const fn lfs(
    name: &'static str,
    method: Method,
    path: &'static [Seg],
    need: Need,
    lane: Lane,
    handler: crate::lfs::Handler,
    signed: Option<crate::lfs::token::Op>,
    example: &'static str,
) -> Row {
    Row {
        name,
        method,
        path,
        slash: false,
        query: None,
        need,
        form: false,
        lane,
        handler: Handler::Lfs(crate::lfs::Route { handler, signed }),
        example,
    }
}

/// A site page's old address (`/login` for `/-/login`): see [`Handler::Moved`].
const fn moved(
    name: &'static str,
    method: Method,
    path: &'static [Seg],
    example: &'static str,
) -> Row {
    Row {
        name,
        method,
        path,
        slash: false,
        query: None,
        need: Anyone,
        form: false,
        lane: Quick,
        handler: Handler::Moved,
        example,
    }
}

const fn slash(mut row: Row) -> Row {
    row.slash = true;
    row
}

const fn lane(mut row: Row, lane: Lane) -> Row {
    row.lane = lane;
    row
}

const fn query(mut row: Row, name: &'static str, value: &'static str) -> Row {
    row.query = Some((name, value));
    row
}

const GET: Method = Method::Get;
const POST: Method = Method::Post;
const PUT: Method = Method::Put;
const REPO: Seg = Seg::Repo;
/// The first segment of every site page: see `urls::SITE_PREFIX`.
const SITE: Seg = Seg::Lit("-");

/// Every route, tried in order: the first whose path, query and method fit answers.
#[rustfmt::skip]
pub static ROUTES: &[Row] = &[
    // Site pages, under `/-/` (a name no owner can take).
    slash(page("front", GET, &[], Anyone, front::page, "/")),
    page("login", GET, &[SITE, Lit("login")], Anyone, login::form, "/-/login"),
    page("login.submit", POST, &[SITE, Lit("login")], Anyone, login::submit, "/-/login"),
    page("logout", GET, &[SITE, Lit("logout")], Anyone, logout::form, "/-/logout"),
    page("logout.submit", POST, &[SITE, Lit("logout")], Anyone, logout::submit, "/-/logout"),
    page("new", GET, &[SITE, Lit("new")], SignedIn, new_repo::form, "/-/new"),
    page("new.submit", POST, &[SITE, Lit("new")], SignedIn, new_repo::submit, "/-/new"),
    page("account", GET, &[SITE, Lit("settings"), Lit("tokens")], SignedIn, account::form, "/-/settings/tokens"),
    page("account.submit", POST, &[SITE, Lit("settings"), Lit("tokens")], SignedIn, account::submit, "/-/settings/tokens"),
    page("keys", GET, &[SITE, Lit("settings"), Lit("keys")], SignedIn, keys::form, "/-/settings/keys"),
    page("keys.submit", POST, &[SITE, Lit("settings"), Lit("keys")], SignedIn, keys::submit, "/-/settings/keys"),
    page("static", GET, &[SITE, Lit("static"), One], Anyone, static_file::file, "/-/static/{asset}"),
    page("search", GET, &[SITE, Lit("search")], Anyone, repo_search::page, "/-/search?q=REPO"),
    // Their addresses before `/-/`, redirected there.
    moved("login.moved", GET, &[Lit("login")], "/login"),
    moved("login.submit.moved", POST, &[Lit("login")], "/login"),
    moved("logout.moved", GET, &[Lit("logout")], "/logout"),
    moved("logout.submit.moved", POST, &[Lit("logout")], "/logout"),
    moved("new.moved", GET, &[Lit("new")], "/new"),
    moved("new.submit.moved", POST, &[Lit("new")], "/new"),
    moved("account.moved", GET, &[Lit("settings"), Lit("tokens")], "/settings/tokens"),
    moved("account.submit.moved", POST, &[Lit("settings"), Lit("tokens")], "/settings/tokens"),
    moved("static.moved", GET, &[Lit("static"), One], "/static/{asset}"),
    // Owners.
    slash(page("owner", GET, &[Owner], Anyone, owner::page, "/OWNER")),
    // A repository's pages.
    slash(page("repo.home", GET, &[Owner, REPO], Read, home::page, "/OWNER/REPO")),
    slash(page("repo.tree", GET, &[Owner, REPO, Lit("tree"), Rest], Read, tree::page, "/OWNER/REPO/tree/main")),
    page("repo.blob", GET, &[Owner, REPO, Lit("blob"), Rest], Read, blob::page, "/OWNER/REPO/blob/main/{file}"),
    lane(page("repo.raw", GET, &[Owner, REPO, Lit("raw"), Rest], Read, downloads::raw, "/OWNER/REPO/raw/main/{file}"), Git),
    lane(page("repo.blame", GET, &[Owner, REPO, Lit("blame"), Rest], Read, blame::page, "/OWNER/REPO/blame/main/{file}"), Git),
    lane(page("repo.search", GET, &[Owner, REPO, Lit("search")], Read, code_search::page, "/OWNER/REPO/search?q=a"), Git),
    page("repo.commits", GET, &[Owner, REPO, Lit("commits"), Rest], Read, commits::page, "/OWNER/REPO/commits/main"),
    page("repo.commit", GET, &[Owner, REPO, Lit("commit"), Rest], Read, commit::page, "/OWNER/REPO/commit/{head}"),
    page("repo.compare", GET, &[Owner, REPO, Lit("compare"), Rest], Read, compare::page, "/OWNER/REPO/compare/main...main"),
    page("repo.branches", GET, &[Owner, REPO, Lit("branches")], Read, refs::branches, "/OWNER/REPO/branches"),
    page("repo.tags", GET, &[Owner, REPO, Lit("tags")], Read, refs::tags, "/OWNER/REPO/tags"),
    // Atom feeds: `feeds/` cannot be a ref's page, and only the last `.atom` is taken off.
    feed("repo.feed.commits", &[Owner, REPO, Lit("feeds"), Lit("commits"), Rest], feeds::commits, "/OWNER/REPO/feeds/commits/main.atom"),
    feed("repo.feed.tags", &[Owner, REPO, Lit("feeds"), Lit("tags.atom")], feeds::tags, "/OWNER/REPO/feeds/tags.atom"),
    lane(page("repo.archive", GET, &[Owner, REPO, Lit("archive"), Rest], Read, downloads::archive, "/OWNER/REPO/archive/main.tar.gz"), Git),
    page("repo.settings", GET, &[Owner, REPO, Lit("settings")], Manage, settings::form, "/OWNER/REPO/settings"),
    page("repo.settings.submit", POST, &[Owner, REPO, Lit("settings")], Manage, settings::submit, "/OWNER/REPO/settings"),
    // git over HTTP: smart.
    query(git("git.advertise.push", GET, &[Owner, REPO, Lit("info"), Lit("refs")], Write, Git, smart::advertise, "/OWNER/REPO.git/info/refs?service=git-receive-pack"), "service", "git-receive-pack"),
    query(git("git.advertise.fetch", GET, &[Owner, REPO, Lit("info"), Lit("refs")], Read, Git, smart::advertise, "/OWNER/REPO.git/info/refs?service=git-upload-pack"), "service", "git-upload-pack"),
    git("git.upload-pack", POST, &[Owner, REPO, Lit("git-upload-pack")], Read, Git, smart::upload_pack, "/OWNER/REPO.git/git-upload-pack"),
    git("git.receive-pack", POST, &[Owner, REPO, Lit("git-receive-pack")], Write, Git, push::receive_pack, "/OWNER/REPO.git/git-receive-pack"),
    // Git LFS (the batch API and its objects).
    lfs("lfs.batch", POST, &[Owner, REPO, Lit("info"), Lit("lfs"), Lit("objects"), Lit("batch")], Read, Quick, lfs_batch::batch, Some(LfsOp::Api), "/OWNER/REPO.git/info/lfs/objects/batch"),
    lfs("lfs.download", GET, &[Owner, REPO, Lit("info"), Lit("lfs"), Lit("objects"), Hex(64)], Read, Files, lfs_objects::download, Some(LfsOp::Download), "/OWNER/REPO.git/info/lfs/objects/{oid}"),
    lfs("lfs.upload", PUT, &[Owner, REPO, Lit("info"), Lit("lfs"), Lit("objects"), Hex(64)], Write, Git, lfs_objects::upload, Some(LfsOp::Upload), "/OWNER/REPO.git/info/lfs/objects/{oid}"),
    lfs("lfs.locks", GET, &[Owner, REPO, Lit("info"), Lit("lfs"), Lit("locks")], Write, Quick, lfs_locks::list, Some(LfsOp::Api), "/OWNER/REPO.git/info/lfs/locks"),
    lfs("lfs.locks.create", POST, &[Owner, REPO, Lit("info"), Lit("lfs"), Lit("locks")], Write, Quick, lfs_locks::create, Some(LfsOp::Api), "/OWNER/REPO.git/info/lfs/locks"),
    lfs("lfs.locks.verify", POST, &[Owner, REPO, Lit("info"), Lit("lfs"), Lit("locks"), Lit("verify")], Write, Quick, lfs_locks::verify, Some(LfsOp::Api), "/OWNER/REPO.git/info/lfs/locks/verify"),
    lfs("lfs.locks.unlock", POST, &[Owner, REPO, Lit("info"), Lit("lfs"), Lit("locks"), One, Lit("unlock")], Write, Quick, lfs_locks::unlock, Some(LfsOp::Api), "/OWNER/REPO.git/info/lfs/locks/{lock}/unlock"),
    lfs("lfs.verify", POST, &[Owner, REPO, Lit("info"), Lit("lfs"), Lit("verify")], Write, Quick, lfs_objects::verify, Some(LfsOp::Verify), "/OWNER/REPO.git/info/lfs/verify"),
    // git over HTTP: dumb.
    git("git.info-refs", GET, &[Owner, REPO, Lit("info"), Lit("refs")], Read, Git, dumb::info_refs, "/OWNER/REPO.git/info/refs"),
    git("git.head", GET, &[Owner, REPO, Lit("HEAD")], Read, Quick, dumb::head, "/OWNER/REPO.git/HEAD"),
    git("git.packs", GET, &[Owner, REPO, Lit("objects"), Lit("info"), Lit("packs")], Read, Quick, dumb::packs, "/OWNER/REPO.git/objects/info/packs"),
    git("git.loose", GET, &[Owner, REPO, Lit("objects"), Hex(2), Hex(38)], Read, Files, files::loose, "/OWNER/REPO.git/objects/{loose}"),
    git("git.pack", GET, &[Owner, REPO, Lit("objects"), Lit("pack"), Pack(".pack")], Read, Files, files::pack, "/OWNER/REPO.git/objects/pack/{pack}.pack"),
    git("git.idx", GET, &[Owner, REPO, Lit("objects"), Lit("pack"), Pack(".idx")], Read, Files, files::index, "/OWNER/REPO.git/objects/pack/{pack}.idx"),
];

/// A request matched to its row.
pub(crate) struct Matched {
    pub(crate) row: &'static Row,
    pub(crate) caps: Captures,
}

/// Matches a decoded path (below the base path, starting with `/`), a method and the raw query
/// to a row: 404 when no row's path fits, 405 (with the methods that would do) when only the
/// method does not.
pub(crate) fn route(path: &str, method: Method, query: &str) -> Result<Matched> {
    let body = path.strip_prefix('/').ok_or(Error::NotFound)?;
    let (body, trailing) = match body.strip_suffix('/') {
        Some(b) if !b.is_empty() => (b, true),
        _ => (body, false),
    };
    let segs: Vec<&str> = if body.is_empty() {
        Vec::new()
    } else {
        body.split('/').collect()
    };
    if segs.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
        return Err(Error::NotFound);
    }
    let mut allowed: Vec<Method> = Vec::new();
    for row in ROUTES {
        if trailing && !row.slash {
            continue;
        }
        if let Some((name, value)) = row.query {
            if query_value(query, name).as_deref() != Some(value) {
                continue;
            }
        }
        let Some(caps) = match_path(row.path, &segs) else {
            continue;
        };
        let fits = row.method == method || (row.method == Method::Get && method == Method::Head);
        if fits {
            return Ok(Matched { row, caps });
        }
        if !allowed.contains(&row.method) {
            allowed.push(row.method);
        }
    }
    if allowed.is_empty() {
        return Err(Error::NotFound);
    }
    Err(Error::MethodNotAllowed(allow_header(&allowed)))
}

/// The `Allow` header for these methods (`GET` stands for `GET, HEAD`).
fn allow_header(methods: &[Method]) -> &'static str {
    match (
        methods.contains(&Method::Get),
        methods.contains(&Method::Post),
        methods.contains(&Method::Put),
    ) {
        (true, true, _) => "GET, HEAD, POST",
        (true, false, true) => "GET, HEAD, PUT",
        (true, false, false) => "GET, HEAD",
        (false, _, true) => "PUT",
        (false, _, false) => "POST",
    }
}

/// The first value of a query parameter, still percent-encoded (every value a row asks for is
/// plain ASCII).
fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| v.to_string())
    })
}

/// The captures when `pattern` fits `segs`.
fn match_path(pattern: &[Seg], segs: &[&str]) -> Option<Captures> {
    let mut caps = Captures::default();
    let mut i = 0;
    for (k, seg) in pattern.iter().enumerate() {
        match seg {
            Rest => {
                // Last in a pattern: one segment or more.
                if k + 1 != pattern.len() || i >= segs.len() {
                    return None;
                }
                caps.rest = segs[i..].iter().map(|s| s.to_string()).collect();
                return Some(caps);
            }
            _ => {
                let s = segs.get(i)?;
                let fits = match seg {
                    Lit(l) => s == l,
                    Owner => {
                        caps.owner = s.to_string();
                        valid_owner(s)
                    }
                    Seg::Repo => {
                        let name = s.strip_suffix(".git").unwrap_or(s);
                        caps.name = name.to_string();
                        valid_name(name)
                    }
                    Hex(n) => {
                        caps.rest.push(s.to_string());
                        dumb::is_hex(s, *n)
                    }
                    Pack(ext) => {
                        caps.rest.push(s.to_string());
                        dumb::is_pack_name(s, ext)
                    }
                    One => {
                        caps.rest.push(s.to_string());
                        true
                    }
                    Rest => false,
                };
                if !fits {
                    return None;
                }
                i += 1;
            }
        }
    }
    (i == segs.len()).then_some(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACK: &str = "pack-0123456789abcdef0123456789abcdef01234567.pack";

    fn name_of(path: &str, method: Method, query: &str) -> String {
        match route(path, method, query) {
            Ok(m) => m.row.name.to_string(),
            Err(e) => format!("error {}", e.status()),
        }
    }

    fn get(path: &str) -> String {
        let (p, q) = path.split_once('?').unwrap_or((path, ""));
        name_of(p, Method::Get, q)
    }

    /// Every row's example routes to that row, with the placeholders the tests fill in.
    #[test]
    fn every_example_reaches_its_row() {
        for row in ROUTES {
            let example = row
                .example
                .replace("OWNER", "alice")
                .replace("REPO", "proj")
                .replace("{asset}", "forgelet-abc.css")
                .replace("{file}", "README.md")
                .replace("{head}", &"a".repeat(40))
                .replace("{oid}", &"d".repeat(64))
                .replace("{lock}", &"e".repeat(24))
                .replace("{loose}", &format!("ab/{}", "c".repeat(38)))
                .replace("{pack}", &PACK.replace(".pack", ""));
            let (p, q) = example.split_once('?').unwrap_or((&example, ""));
            assert_eq!(name_of(p, row.method, q), row.name, "{example}");
        }
    }

    /// What a route needs is said by the table, so the dispatcher checks it: every route whose
    /// path names a repository needs read, write or manage access to it, and only forms post.
    #[test]
    fn every_repository_route_names_its_access() {
        for row in ROUTES {
            let names_repo = row.path.contains(&Seg::Repo);
            assert_eq!(
                names_repo,
                matches!(row.need, Read | Write | Manage),
                "{}",
                row.name
            );
            if let Handler::Page(_) = row.handler {
                assert_eq!(row.form, row.method == Method::Post, "{}", row.name);
            } else {
                assert!(!row.form, "{}", row.name);
            }
            // Pushes need write access.
            if row.name.contains("receive") || row.name.contains("push") {
                assert_eq!(row.need, Write, "{}", row.name);
            }
        }
        let mut names: Vec<&str> = ROUTES.iter().map(|r| r.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ROUTES.len(), "two rows share a name");
    }

    #[test]
    fn matches_repository_routes_with_and_without_suffix() {
        assert_eq!(get("/"), "front");
        assert_eq!(get("/-/login"), "login");
        assert_eq!(name_of("/-/login", Method::Post, ""), "login.submit");
        assert_eq!(get("/alice"), "owner");
        assert_eq!(get("/alice/"), "owner");
        assert_eq!(get("/-/static/forgelet-abc.css"), "static");
        assert_eq!(get("/alice/proj"), "repo.home");
        assert_eq!(get("/alice/proj/"), "repo.home");
        assert_eq!(get("/alice/proj.git/info/refs"), "git.info-refs");
        assert_eq!(get("/alice/proj/info/refs"), "git.info-refs");
        assert_eq!(
            get("/alice/proj.git/info/refs?service=git-upload-pack"),
            "git.advertise.fetch"
        );
        assert_eq!(
            get("/alice/proj.git/info/refs?a=b&service=git-receive-pack"),
            "git.advertise.push"
        );
        assert_eq!(
            get("/alice/proj.git/info/refs?service=git-other"),
            "git.info-refs"
        );
        assert_eq!(get("/alice/proj.git/HEAD"), "git.head");
        assert_eq!(get("/alice/proj.git/objects/info/packs"), "git.packs");
        assert_eq!(
            get(&format!("/alice/proj.git/objects/ab/{}", "c".repeat(38))),
            "git.loose"
        );
        assert_eq!(
            get(&format!("/alice/proj.git/objects/pack/{PACK}")),
            "git.pack"
        );
        assert_eq!(
            name_of("/alice/proj.git/git-upload-pack", Method::Post, ""),
            "git.upload-pack"
        );
        assert!(matches!(
            route("/alice/proj.git/git-receive-pack", Method::Get, ""),
            Err(Error::MethodNotAllowed("POST"))
        ));
        assert!(matches!(
            route("/-/logout", Method::Other, ""),
            Err(Error::MethodNotAllowed("GET, HEAD, POST"))
        ));
        assert!(matches!(
            route("/alice/proj.git/info/refs", Method::Post, ""),
            Err(Error::MethodNotAllowed("GET, HEAD"))
        ));
        assert_eq!(
            name_of("/alice/proj.git/HEAD", Method::Head, ""),
            "git.head"
        );
        let m = route("/alice/proj.git/objects/pack/x", Method::Get, "");
        assert!(matches!(m, Err(Error::NotFound)));
    }

    #[test]
    fn lanes_follow_the_table() {
        let lane_of = |p: &str, m| route(p, m, "").map(|m| m.row.lane).ok();
        assert_eq!(lane_of("/alice/proj/tree/main", Method::Get), Some(Quick));
        assert_eq!(
            lane_of(&format!("/alice/proj.git/objects/pack/{PACK}"), Method::Get),
            Some(Files)
        );
        assert_eq!(
            lane_of("/alice/proj.git/git-upload-pack", Method::Post),
            Some(Git)
        );
        assert_eq!(
            lane_of("/alice/proj/archive/main.zip", Method::Get),
            Some(Git)
        );
        assert_eq!(lane_of("/alice/proj/raw/main/x", Method::Get), Some(Git));
        assert_eq!(lane_of("/alice/proj.git/info/refs", Method::Get), Some(Git));
    }

    #[test]
    fn refuses_everything_else() {
        let long = "a".repeat(300);
        for bad in [
            "",
            "//",
            "/alice//proj.git/HEAD",
            "/alice/proj.git//HEAD",
            "/alice/proj.git/HEAD/",
            "/alice/../proj.git/HEAD",
            "/alice/proj.git/../../x",
            "/alice/proj.git/objects/../config",
            "/alice/proj.git/config",
            "/alice/proj.git/hooks/pre-receive",
            "/alice/.proj.git/HEAD",
            "/.git/HEAD",
            "/login/proj/HEAD",
            "/alice/proj.git.git/HEAD",
            "/alice/proj.git/objects/AB/cdef",
            "/alice/proj.git/objects/info/alternates",
            "/alice/proj.git/objects/pack/pack-x.pack",
            &format!("/{long}/proj.git/HEAD"),
            &format!("/alice/{long}.git/HEAD"),
            "/alice/proj/tree",
            "/alice/proj/tree/",
            "/alice/proj/blob/main/../x",
            "/alice/proj/blob/main/./x",
            "/alice/proj/blob/main/a//b",
            "/alice/proj/blob/main/a/",
            "/alice/.proj/tree/main",
            "/alice/proj/commit",
            "/alice/proj/tags/x",
            "/login/",
            "/settings/tokens/",
            "/-",
            "/-/",
            "/-/alice",
            "/-/login/",
            "/-/settings",
            "/-/static",
            "/-/-/login",
        ] {
            assert_eq!(get(bad), "error 404", "{bad:?}");
        }
    }

    #[test]
    fn browse_routes_take_refs_and_dotfile_paths() {
        let caps = |p: &str| route(p, Method::Get, "").unwrap().caps;
        let c = caps("/alice/proj/blob/feature/x/.gitignore");
        assert_eq!((c.owner.as_str(), c.name.as_str()), ("alice", "proj"));
        assert_eq!(c.rest, ["feature", "x", ".gitignore"]);
        assert_eq!(caps("/alice/proj/tree/main/").rest, ["main"]);
        assert_eq!(caps("/alice/proj.git/HEAD").name, "proj");
        assert_eq!(caps("/alice/proj/commit/abc123").rest, ["abc123"]);
        assert_eq!(
            caps("/alice/proj/commit/feature/x~2").rest,
            ["feature", "x~2"]
        );
        assert_eq!(get("/alice/proj/branches"), "repo.branches");
        assert_eq!(get("/alice/proj/raw/v1/a.png"), "repo.raw");
    }

    /// Every site page's old address redirects to the same page under `/-/`, for each method
    /// the page takes; nothing else is a redirect.
    #[test]
    fn old_site_addresses_move_under_the_prefix() {
        let mut moved = 0;
        for row in ROUTES {
            let Handler::Moved = row.handler else {
                continue;
            };
            moved += 1;
            let new = format!("/-{}", row.example.replace("{asset}", "forgelet-abc.css"));
            let to = name_of(&new, row.method, "");
            assert_eq!(format!("{to}.moved"), row.name, "{} -> {new}", row.example);
        }
        assert_eq!(moved, 9);
        assert_eq!(get("/login"), "login.moved");
        assert_eq!(
            name_of("/settings/tokens", Method::Post, ""),
            "account.submit.moved"
        );
    }

    /// A site page's first segment is a name no owner may take (else the owner's page and
    /// the site's would share a URL).
    #[test]
    fn site_pages_are_reserved_names() {
        for row in ROUTES {
            if let Some(Lit(first)) = row.path.first() {
                assert!(!valid_owner(first), "{first} can be taken by an owner");
            }
        }
    }
}
