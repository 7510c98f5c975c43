//! `GET /-/search?q=...&page=N` (`repo_search.html`): the repositories whose owner and name or
//! description hold the text (ignoring case), among those the viewer may read, a page at a time
//! like the front page. The candidates come from the listing (`git::listing`) by position, as
//! the front page finds them; each one shown is checked again with `auth::access` against its
//! settings as they are now, so a repository made private since the listing was read is not
//! shown, and a private one's name and description never reach someone who may not read it.

use askama::Template;

use super::front::{entries, listing, page_number, readable, Entry, REPOS_PAGE_SIZE};
use super::{Chrome, PageCall};
use crate::error::{Error, Result};
use crate::forms::{field, form_fields};
use crate::response::Answer;
use crate::site::Site;
use crate::urls::{search_page_url, search_url};

/// The longest search text taken, in bytes.
const MAX_QUERY: usize = 200;

#[derive(Template)]
#[template(path = "repo_search.html")]
struct SearchPage {
    chrome: Chrome,
    action: String,
    q: String,
    repos: Vec<Entry>,
    /// How many were found, over every page.
    total: usize,
    searched: bool,
    newer: Option<String>,
    older: Option<String>,
}

/// `GET /-/search?q=...`.
pub(crate) fn page<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx) = (c.req, c.ctx);
    let fields = form_fields(req.query().as_bytes());
    let q = field(&fields, "q").unwrap_or_default().trim().to_string();
    if q.len() > MAX_QUERY {
        return Err(Error::BadRequest("the search text is too long"));
    }
    let base = &site.config.base_path;
    let mut view = SearchPage {
        chrome: ctx.chrome(site),
        action: search_url(base),
        q: q.clone(),
        repos: Vec::new(),
        total: 0,
        searched: !q.is_empty(),
        newer: None,
        older: None,
    };
    if !q.is_empty() {
        let needle = q.to_lowercase();
        let listing = listing(site)?;
        let readable = readable(site, ctx, &listing);
        let found: Vec<usize> = readable
            .own
            .clone()
            .chain(readable.others(0, usize::MAX))
            .filter(|&i| {
                listing.repos.get(i).is_some_and(|r| {
                    format!("{}/{}", r.dir.owner, r.dir.name)
                        .to_lowercase()
                        .contains(&needle)
                        || r.description.to_lowercase().contains(&needle)
                })
            })
            .collect();
        let page = page_number(req);
        let skip = (page - 1).saturating_mul(REPOS_PAGE_SIZE);
        if skip >= found.len() && page > 1 {
            return Err(Error::NotFound);
        }
        let shown = found
            .get(skip..found.len().min(skip.saturating_add(REPOS_PAGE_SIZE)))
            .unwrap_or_default();
        view.repos = entries(site, ctx, &listing, shown);
        view.total = found.len();
        view.newer = (page > 1).then(|| search_page_url(base, &q, page - 1));
        view.older = (page.saturating_mul(REPOS_PAGE_SIZE) < found.len())
            .then(|| search_page_url(base, &q, page + 1));
    }
    ctx.render(site, req, 200, &view).map(Answer::from)
}
