//! The route table: which paths exist, which methods they take, and which lane serves them; plus
//! the URL builders. Routes are data, matched segment by segment after the path is decoded once.

use crate::error::{Error, Result};
use crate::git::names::{valid_name, valid_owner};
use crate::git_http::dumb::{is_hex, is_pack_name};
use crate::git_http::files::FileKind;
use crate::git_http::smart::Service;
use crate::request::Method;

/// A matched route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/`: the front page.
    Front,
    /// `GET,POST /login`
    Login,
    /// `POST /logout`
    Logout,
    /// `GET,POST /new`: create a repository.
    NewRepo,
    /// `GET,POST /settings/tokens`: your tokens and password.
    Account,
    /// `GET /static/{name}`: embedded assets.
    Static(String),
    /// `GET /{owner}`: an owner's repositories.
    Owner(String),
    /// `/{owner}/{repo}[.git]/...`
    Repo {
        owner: String,
        name: String,
        page: RepoRoute,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RepoRoute {
    /// `/{owner}/{repo}`: the repository's home page.
    Home,
    /// `info/refs` (dumb; a `?service=` request is answered the same way until smart HTTP exists,
    /// which git clients take as "dumb server").
    InfoRefs,
    Head,
    PacksList,
    /// `objects/...` relative path and its kind.
    File(String, FileKind),
    /// `POST git-upload-pack` / `POST git-receive-pack`.
    Rpc(Service),
    /// `tree|blob|raw/{ref}/{path...}`: the segments after the first (ref and path, which the
    /// page splits by finding the longest existing ref).
    Browse(View, Vec<String>),
}

/// The browsing pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    Tree,
    Blob,
    Raw,
    /// `commits/{ref}[/{path}]`: history.
    Commits,
    /// `commit/{id}`: one commit with its diff.
    Commit,
    Branches,
    Tags,
    /// `settings`: owner and admins only.
    Settings,
    /// `archive/{ref}.tar.gz|.zip`: a snapshot.
    Archive,
}

impl Route {
    /// Whether forgelet itself streams git data for this route, which may take long: such
    /// requests get their own lane so they never starve pages. `streams_files` is true when
    /// forgelet sends object and pack files itself (no web-server handoff).
    pub(crate) fn is_long(&self, streams_files: bool) -> bool {
        match self {
            Route::Repo { page, .. } => match page {
                RepoRoute::File(..) => streams_files,
                RepoRoute::Rpc(_) | RepoRoute::Browse(View::Archive | View::Raw, _) => true,
                _ => false,
            },
            _ => false,
        }
    }
}

/// The shape of one segment in a repository route.
#[derive(Clone, Copy)]
enum Seg {
    Lit(&'static str),
    Hex(usize),
    Pack(&'static str),
}

/// Repository routes: the segments after `{owner}/{repo}`, the methods allowed, what it is.
const REPO_ROUTES: &[(&[Seg], &str, RepoKind)] = &[
    (&[], "GET, HEAD", RepoKind::Home),
    (
        &[Seg::Lit("info"), Seg::Lit("refs")],
        "GET, HEAD",
        RepoKind::InfoRefs,
    ),
    (&[Seg::Lit("HEAD")], "GET, HEAD", RepoKind::Head),
    (
        &[Seg::Lit("objects"), Seg::Lit("info"), Seg::Lit("packs")],
        "GET, HEAD",
        RepoKind::PacksList,
    ),
    (
        &[Seg::Lit("objects"), Seg::Hex(2), Seg::Hex(38)],
        "GET, HEAD",
        RepoKind::File(FileKind::Loose),
    ),
    (
        &[Seg::Lit("objects"), Seg::Lit("pack"), Seg::Pack(".pack")],
        "GET, HEAD",
        RepoKind::File(FileKind::Pack),
    ),
    (
        &[Seg::Lit("objects"), Seg::Lit("pack"), Seg::Pack(".idx")],
        "GET, HEAD",
        RepoKind::File(FileKind::Index),
    ),
    (
        &[Seg::Lit("git-upload-pack")],
        "POST",
        RepoKind::Rpc(Service::UploadPack),
    ),
    (
        &[Seg::Lit("git-receive-pack")],
        "POST",
        RepoKind::Rpc(Service::ReceivePack),
    ),
];

#[derive(Clone, Copy)]
enum RepoKind {
    Home,
    InfoRefs,
    Head,
    PacksList,
    File(FileKind),
    Rpc(Service),
}

fn seg_matches(seg: Seg, s: &str) -> bool {
    match seg {
        Seg::Lit(l) => s == l,
        Seg::Hex(n) => is_hex(s, n),
        Seg::Pack(ext) => is_pack_name(s, ext),
    }
}

fn allows(allow: &str, method: Method) -> bool {
    let name = match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Other => return false,
    };
    allow.split(", ").any(|m| m == name)
}

/// Matches a decoded path (below the base path) and method to a route.
pub(crate) fn route(path: &str, method: Method) -> Result<Route> {
    let (route, allow) = match_path(path)?;
    if !allows(allow, method) {
        return Err(Error::MethodNotAllowed(allow));
    }
    Ok(route)
}

fn match_path(path: &str) -> Result<(Route, &'static str)> {
    if path == "/" {
        return Ok((Route::Front, "GET, HEAD"));
    }
    let body = path.strip_prefix('/').ok_or(Error::NotFound)?;
    // One trailing slash is tolerated on a repository's page (`/alice/repo/`), nowhere else.
    let (body, trailing_slash) = match body.strip_suffix('/') {
        Some(b) => (b, true),
        None => (body, false),
    };
    let segs: Vec<&str> = body.split('/').collect();
    if segs.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
        return Err(Error::NotFound);
    }
    // Below `tree|blob|raw/` come a ref and a path inside the repository (read from git's
    // objects, never from the disk), where dotfiles such as `.gitignore` are ordinary names.
    let browse_at = match segs.get(2).copied() {
        Some("tree") => Some(View::Tree),
        Some("blob") => Some(View::Blob),
        Some("raw") => Some(View::Raw),
        Some("commits") => Some(View::Commits),
        Some("commit") => Some(View::Commit),
        Some("branches") => Some(View::Branches),
        Some("tags") => Some(View::Tags),
        Some("settings") => Some(View::Settings),
        Some("archive") => Some(View::Archive),
        _ => None,
    };
    let checked = if browse_at.is_some() { 2 } else { segs.len() };
    if segs[..checked.min(segs.len())]
        .iter()
        .any(|s| s.starts_with('.'))
    {
        return Err(Error::NotFound);
    }
    // Site pages: their first segments are names no owner may take.
    match (segs.as_slice(), trailing_slash) {
        (["login"], false) => return Ok((Route::Login, "GET, HEAD, POST")),
        (["logout"], false) => return Ok((Route::Logout, "GET, HEAD, POST")),
        (["new"], false) => return Ok((Route::NewRepo, "GET, HEAD, POST")),
        (["settings", "tokens"], false) => return Ok((Route::Account, "GET, HEAD, POST")),
        (["static", name], false) => return Ok((Route::Static(name.to_string()), "GET, HEAD")),
        ([owner], _) if valid_owner(owner) => {
            return Ok((Route::Owner(owner.to_string()), "GET, HEAD"))
        }
        _ => {}
    }
    let [owner, repo, rest @ ..] = segs.as_slice() else {
        return Err(Error::NotFound);
    };
    let name = repo.strip_suffix(".git").unwrap_or(repo);
    if !valid_owner(owner) || !valid_name(name) {
        return Err(Error::NotFound);
    }
    if let (Some(view), [_, tail @ ..]) = (browse_at, rest) {
        let fits = match view {
            View::Tree => !tail.is_empty(),
            View::Blob | View::Raw | View::Commits | View::Archive => {
                !tail.is_empty() && !trailing_slash
            }
            View::Commit => tail.len() == 1 && !trailing_slash,
            View::Branches | View::Tags | View::Settings => tail.is_empty() && !trailing_slash,
        };
        if !fits {
            return Err(Error::NotFound);
        }
        let route = Route::Repo {
            owner: owner.to_string(),
            name: name.to_string(),
            page: RepoRoute::Browse(view, tail.iter().map(|s| s.to_string()).collect()),
        };
        let allow = if view == View::Settings {
            "GET, HEAD, POST"
        } else {
            "GET, HEAD"
        };
        return Ok((route, allow));
    }
    if trailing_slash && !rest.is_empty() {
        return Err(Error::NotFound);
    }
    for (pattern, allow, kind) in REPO_ROUTES {
        if pattern.len() == rest.len() && pattern.iter().zip(rest).all(|(p, s)| seg_matches(*p, s))
        {
            let page = match kind {
                RepoKind::Home => RepoRoute::Home,
                RepoKind::InfoRefs => RepoRoute::InfoRefs,
                RepoKind::Head => RepoRoute::Head,
                RepoKind::PacksList => RepoRoute::PacksList,
                RepoKind::File(k) => RepoRoute::File(rest.join("/"), *k),
                RepoKind::Rpc(service) => RepoRoute::Rpc(*service),
            };
            let route = Route::Repo {
                owner: owner.to_string(),
                name: name.to_string(),
                page,
            };
            return Ok((route, allow));
        }
    }
    Err(Error::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACK: &str = "pack-0123456789abcdef0123456789abcdef01234567.pack";

    fn ok(path: &str) -> Route {
        route(path, Method::Get).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn repo(page: RepoRoute) -> Route {
        Route::Repo {
            owner: "alice".into(),
            name: "proj".into(),
            page,
        }
    }

    #[test]
    fn matches_repo_routes_with_and_without_suffix() {
        assert_eq!(ok("/"), Route::Front);
        assert_eq!(ok("/login"), Route::Login);
        assert_eq!(ok("/alice"), Route::Owner("alice".into()));
        assert_eq!(ok("/alice/"), Route::Owner("alice".into()));
        assert_eq!(route("/logout", Method::Post).unwrap(), Route::Logout);
        assert_eq!(route("/logout", Method::Get).unwrap(), Route::Logout);
        assert!(matches!(
            route("/logout", Method::Other),
            Err(Error::MethodNotAllowed("GET, HEAD, POST"))
        ));
        assert_eq!(
            ok("/static/forgelet-abc.css"),
            Route::Static("forgelet-abc.css".into())
        );
        assert_eq!(ok("/alice/proj"), repo(RepoRoute::Home));
        assert_eq!(ok("/alice/proj/"), repo(RepoRoute::Home));
        assert_eq!(ok("/alice/proj.git/info/refs"), repo(RepoRoute::InfoRefs));
        assert_eq!(ok("/alice/proj/info/refs"), repo(RepoRoute::InfoRefs));
        assert_eq!(ok("/alice/proj.git/HEAD"), repo(RepoRoute::Head));
        assert_eq!(
            ok("/alice/proj.git/objects/info/packs"),
            repo(RepoRoute::PacksList)
        );
        let loose = format!("objects/ab/{}", "c".repeat(38));
        assert_eq!(
            ok(&format!("/alice/proj.git/{loose}")),
            repo(RepoRoute::File(loose.clone(), FileKind::Loose))
        );
        assert_eq!(
            ok(&format!("/alice/proj.git/objects/pack/{PACK}")),
            repo(RepoRoute::File(
                format!("objects/pack/{PACK}"),
                FileKind::Pack
            ))
        );
        let pack = ok(&format!("/alice/proj.git/objects/pack/{PACK}"));
        assert!(pack.is_long(true) && !pack.is_long(false));
        assert!(!ok("/alice/proj.git/info/refs").is_long(true));
        let rpc = route("/alice/proj.git/git-upload-pack", Method::Post).unwrap();
        assert_eq!(rpc, repo(RepoRoute::Rpc(Service::UploadPack)));
        assert!(rpc.is_long(false));
        assert!(matches!(
            route("/alice/proj.git/git-receive-pack", Method::Get),
            Err(Error::MethodNotAllowed("POST"))
        ));
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
        ] {
            assert!(
                matches!(route(bad, Method::Get), Err(Error::NotFound)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn browse_routes_take_refs_and_dotfile_paths() {
        let b = |v, t: &[&str]| {
            repo(RepoRoute::Browse(
                v,
                t.iter().map(|s| s.to_string()).collect(),
            ))
        };
        assert_eq!(ok("/alice/proj/tree/main"), b(View::Tree, &["main"]));
        assert_eq!(ok("/alice/proj/tree/main/"), b(View::Tree, &["main"]));
        assert_eq!(
            ok("/alice/proj/blob/feature/x/.gitignore"),
            b(View::Blob, &["feature", "x", ".gitignore"])
        );
        assert_eq!(
            ok("/alice/proj/raw/v1/a.png"),
            b(View::Raw, &["v1", "a.png"])
        );
        for bad in [
            "/alice/proj/tree",
            "/alice/proj/tree/",
            "/alice/proj/blob/main/../x",
            "/alice/proj/blob/main/./x",
            "/alice/proj/blob/main/a//b",
            "/alice/proj/blob/main/a/",
            "/alice/.proj/tree/main",
        ] {
            assert!(
                matches!(route(bad, Method::Get), Err(Error::NotFound)),
                "{bad}"
            );
        }
        assert_eq!(ok("/alice/proj/commits/main"), b(View::Commits, &["main"]));
        assert_eq!(
            ok("/alice/proj/commit/abc123"),
            b(View::Commit, &["abc123"])
        );
        assert_eq!(ok("/alice/proj/branches"), b(View::Branches, &[]));
        assert_eq!(ok("/alice/proj/tags"), b(View::Tags, &[]));
        for bad in [
            "/alice/proj/commit",
            "/alice/proj/commit/a/b",
            "/alice/proj/tags/x",
        ] {
            assert!(
                matches!(route(bad, Method::Get), Err(Error::NotFound)),
                "{bad}"
            );
        }
    }

    #[test]
    fn wrong_method_names_allowed_ones() {
        let e = route("/alice/proj.git/info/refs", Method::Post).unwrap_err();
        assert!(matches!(e, Error::MethodNotAllowed("GET, HEAD")));
        assert!(route("/alice/proj.git/HEAD", Method::Head).is_ok());
        assert!(matches!(
            route("/", Method::Other),
            Err(Error::MethodNotAllowed(_))
        ));
    }
}
