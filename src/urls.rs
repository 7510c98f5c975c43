//! Every URL forgelet puts in a page or a header, built here: paths percent-encoded once, so a
//! name holding `%`, `#`, `?` or bytes that are not UTF-8 stays one name.

/// The site's own pages (sign-in, settings, a new repository, assets) live under `{base}/-/`:
/// `-` cannot begin an owner's name, so no owner's page ever shares a URL with them, and a page
/// added there later takes no name from anyone.
pub(crate) const SITE_PREFIX: &str = "/-";

/// `{base}/-/login`: the sign-in form.
pub(crate) fn login_url(base: &str) -> String {
    format!("{base}{SITE_PREFIX}/login")
}

/// `{base}/-/login?next={path}`: sign in, then go back to `next` (a path below the host).
pub(crate) fn login_then(base: &str, next: &str) -> String {
    format!("{}?next={}", login_url(base), encode_path(next))
}

/// `{base}/-/logout`: the sign-out form (and what it posts to).
pub(crate) fn logout_url(base: &str) -> String {
    format!("{base}{SITE_PREFIX}/logout")
}

/// `{base}/-/new`: a new repository.
pub(crate) fn new_repo_url(base: &str) -> String {
    format!("{base}{SITE_PREFIX}/new")
}

/// `{base}/-/settings/tokens`: the signed-in user's account and tokens.
pub(crate) fn tokens_url(base: &str) -> String {
    format!("{base}{SITE_PREFIX}/settings/tokens")
}

pub(crate) fn keys_url(base: &str) -> String {
    format!("{base}{SITE_PREFIX}/settings/keys")
}

/// `{base}/-/static/{name}`: an embedded asset under its content-hashed name.
pub(crate) fn asset_url(base: &str, name: &str) -> String {
    format!("{base}{SITE_PREFIX}/static/{}", encode_path(name))
}

/// `{base}/`: the front page.
pub(crate) fn home_url(base: &str) -> String {
    format!("{base}/")
}

/// `{base}/-/search`: the search of repositories by name and description.
pub(crate) fn search_url(base: &str) -> String {
    format!("{base}{SITE_PREFIX}/search")
}

/// A page of the repositories found for `q` (the first without `page`).
pub(crate) fn search_page_url(base: &str, q: &str, page: usize) -> String {
    let mut url = format!("{}?q={}", search_url(base), encode_query(q));
    if page > 1 {
        url.push_str(&format!("&page={page}"));
    }
    url
}

/// Percent-encodes a query parameter's value (everything but the unreserved characters).
pub(crate) fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `{base}/{owner}`: an owner's repositories.
pub(crate) fn owner_url(base: &str, owner: &str) -> String {
    format!("{base}/{}", encode_path(owner))
}

/// `{base}/?page={page}`: a page of the front page (the first without a query).
pub(crate) fn home_page_url(base: &str, page: usize) -> String {
    with_page(home_url(base), page)
}

/// `{base}/{owner}?page={page}`: a page of an owner's repositories (the first without a query).
pub(crate) fn owner_page_url(base: &str, owner: &str, page: usize) -> String {
    with_page(owner_url(base, owner), page)
}

fn with_page(url: String, page: usize) -> String {
    if page <= 1 {
        url
    } else {
        format!("{url}?page={page}")
    }
}

/// `{base}/{owner}/{name}/{tab}`: a repository's page without a ref (`settings`, `branches`,
/// `tags`).
pub(crate) fn repo_tab_url(base: &str, owner: &str, name: &str, tab: &str) -> String {
    format!("{}/{tab}", repo_url(base, owner, name))
}

/// `{base_path}/{owner}/{name}`: a repository's page.
pub(crate) fn repo_url(base_path: &str, owner: &str, name: &str) -> String {
    format!("{base_path}/{}/{}", encode_path(owner), encode_path(name))
}

/// Percent-encodes a path for a URL, keeping `/` and the unreserved characters. Any bytes,
/// UTF-8 or not, as a repository's file names may be.
pub(crate) fn encode_path(path: impl AsRef<[u8]>) -> String {
    let path = path.as_ref();
    let mut out = String::with_capacity(path.len());
    for &b in path {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `{base}/{owner}/{name}/{view}/{ref}[/{path}]`, encoded.
pub(crate) fn browse_url(
    base: &str,
    owner: &str,
    name: &str,
    view: &str,
    rev: &str,
    path: impl AsRef<[u8]>,
) -> String {
    let path = path.as_ref();
    let mut u = format!(
        "{}/{view}/{}",
        repo_url(base, owner, name),
        encode_path(rev)
    );
    if !path.is_empty() {
        u.push('/');
        u.push_str(&encode_path(path));
    }
    u
}

/// `{base}/{owner}/{name}/feeds/commits/{ref}.atom`: a ref's commits as an Atom feed (`base` is
/// the base path for a page's link, `base_url` for the feed's own absolute URLs).
pub(crate) fn commit_feed_url(base: &str, owner: &str, name: &str, rev: &str) -> String {
    format!(
        "{}/feeds/commits/{}.atom",
        repo_url(base, owner, name),
        encode_path(rev)
    )
}

/// `{base}/{owner}/{name}/feeds/tags.atom`: the tags as an Atom feed.
pub(crate) fn tags_feed_url(base: &str, owner: &str, name: &str) -> String {
    format!("{}/feeds/tags.atom", repo_url(base, owner, name))
}

/// `{base}/{owner}/{name}/compare/{base_ref}...{head_ref}`: what `head_ref` adds to `base_ref`.
pub(crate) fn compare_url(base: &str, owner: &str, name: &str, from: &str, to: &str) -> String {
    format!(
        "{}/compare/{}...{}",
        repo_url(base, owner, name),
        encode_path(from),
        encode_path(to)
    )
}

/// `{base_url}/{owner}/{name}.git`: what `git clone` is given.
pub(crate) fn clone_url(base_url: &str, owner: &str, name: &str) -> String {
    format!("{}.git", repo_url(base_url, owner, name))
}

/// A repository's SSH clone URL: `user@host:owner/name.git` as GitHub prints it on port 22,
/// `ssh://user@host:port/owner/name.git` on any other. Owner and repository names need no
/// encoding (`git::names`); an IPv6 address is put in brackets.
pub(crate) fn ssh_clone_url(user: &str, host: &str, port: u16, owner: &str, name: &str) -> String {
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    if port == 22 {
        format!("{user}@{host}:{owner}/{name}.git")
    } else {
        format!("ssh://{user}@{host}:{port}/{owner}/{name}.git")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_clone_urls_name_the_port_only_when_it_is_not_22() {
        assert_eq!(
            ssh_clone_url("forgelet", "git.example.org", 22, "ada", "tools"),
            "forgelet@git.example.org:ada/tools.git"
        );
        assert_eq!(
            ssh_clone_url("git", "git.example.org", 2222, "ada", "tools"),
            "ssh://git@git.example.org:2222/ada/tools.git"
        );
        assert_eq!(
            ssh_clone_url("forgelet", "::1", 22, "ada", "t"),
            "forgelet@[::1]:ada/t.git"
        );
    }

    #[test]
    fn paths_are_encoded_once() {
        assert_eq!(encode_path("a b/c#d?é"), "a%20b/c%23d%3F%C3%A9");
        assert_eq!(encode_path("q/%2e%2e/x"), "q/%252e%252e/x");
        assert_eq!(
            browse_url("/git", "o", "r", "archive", "v1.0#x.zip", ""),
            "/git/o/r/archive/v1.0%23x.zip"
        );
        assert_eq!(
            login_then("/git", "/git/a b"),
            "/git/-/login?next=/git/a%20b"
        );
        assert_eq!(asset_url("", "forgelet-1.css"), "/-/static/forgelet-1.css");
        assert_eq!(
            clone_url("https://h/git", "o", "r"),
            "https://h/git/o/r.git"
        );
    }
}
