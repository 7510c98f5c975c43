//! A repository's settings, for its owner and site admins: description, visibility,
//! collaborators, rename, and delete (the name typed to confirm; the repository goes to a trash
//! folder first, so a mistake can be undone by the sysadmin). The changes are `repos`'s, as for
//! the command line; a purge runs `forgelet repo purge` in a process of its own.

use askama::Template;

use super::repo_head::{head, RepoHead};
use super::{repo_refusal, Chrome, PageCall, PageCtx};
use crate::error::Result;
use crate::forms::field;
use crate::git::{maintenance, Perm, RepoDir, Visibility};
use crate::repos::{self, RepoError};
use crate::request::Request;
use crate::response::{Answer, Response};
use crate::site::Site;

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    head: RepoHead,
    description: String,
    private: bool,
    collaborators: Vec<(String, &'static str)>,
    notice: String,
    error: String,
    settings_url: String,
    /// The last purge: what it is doing, or how it ended.
    purge_status: String,
    purging: bool,
    /// What the repository takes on disk: git's objects and Git LFS's.
    size: String,
}

/// Bytes of the regular files below `dir` and how many there are (symlinks are not followed;
/// a folder that cannot be read counts for nothing).
fn usage(dir: &std::path::Path) -> (u64, u64) {
    let mut total = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => {
                    total.0 += e.metadata().map(|m| m.len()).unwrap_or(0);
                    total.1 += 1;
                }
                _ => {}
            }
        }
    }
    total
}

/// "12.3 MiB (git 2.1 MiB, Git LFS 10.2 MiB in 3 objects)".
fn size_text(repo: &RepoDir) -> String {
    use super::file_table::human_size;
    let (git, _) = usage(&repo.path.join("objects"));
    let (lfs, count) = usage(&repo.path.join("lfs/objects"));
    if count == 0 {
        return human_size(git);
    }
    format!(
        "{} (git {}, Git LFS {} in {count} object{})",
        human_size(git + lfs),
        human_size(git),
        human_size(lfs),
        if count == 1 { "" } else { "s" }
    )
}

fn settings_url(site: &Site, repo: &RepoDir) -> String {
    crate::urls::repo_tab_url(&site.config.base_path, &repo.owner, &repo.name, "settings")
}

fn render(
    site: &Site,
    req: &Request,
    ctx: &PageCtx,
    repo: &RepoDir,
    status: u16,
    notice: String,
    error: String,
) -> Result<Response> {
    let settings = repo.settings();
    let (purge_status, purging) = purge_text(&maintenance::status(&repo.path));
    let mut r = ctx.render(
        site,
        req,
        status,
        &SettingsPage {
            chrome: ctx.chrome(site),
            head: head(site, ctx, repo),
            description: repo.description(),
            private: settings.visibility == Visibility::Private,
            collaborators: settings
                .collaborators
                .iter()
                .map(|(n, p)| (n.clone(), p.as_str()))
                .collect(),
            notice,
            error,
            settings_url: settings_url(site, repo),
            purge_status,
            purging,
            size: size_text(repo),
        },
    )?;
    if purging {
        // The page follows the purge without a script: a fresh load of the page itself (a
        // refresh to a URL with a fragment would only scroll).
        r.header(
            "Refresh",
            format!("3; url={}?purge", settings_url(site, repo)),
        );
    }
    Ok(r)
}

/// The last purge as a sentence, and whether it is running.
fn purge_text(status: &maintenance::Status) -> (String, bool) {
    let when = |t: u64| format!("{} UTC", crate::time::date(t as i64, 0));
    match status {
        maintenance::Status::Never => (String::new(), false),
        maintenance::Status::Queued { since } => (
            format!(
                "A purge asked for at {} waits for another repository's purge, or this repository's maintenance, to finish.",
                when(*since)
            ),
            true,
        ),
        maintenance::Status::Running { step, since } => (
            format!("A purge started at {} is running: {step}.", when(*since)),
            true,
        ),
        maintenance::Status::Done { at } => (format!("Last purged at {}.", when(*at)), false),
        maintenance::Status::Failed { at, why } => (
            format!("The last purge failed at {}: {why}.", when(*at)),
            false,
        ),
    }
}

/// `GET settings`.
pub(crate) fn form<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx, repo) = (c.req, c.ctx, c.repo()?);
    // After "Purge" (`?purge`), the page's top says how the purge is doing or how it ended.
    let notice = match req.query_param("purge") {
        Some(_) => match maintenance::status(&repo.path) {
            maintenance::Status::Running { .. } | maintenance::Status::Queued { .. } => {
                String::new()
            }
            status => purge_text(&status).0,
        },
        None => String::new(),
    };
    render(site, req, ctx, repo, 200, notice, String::new()).map(Answer::from)
}

/// `POST settings`: one action per form.
pub(crate) fn submit<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx, repo, fields) = (c.req, c.ctx, c.repo()?, c.fields);
    let label = format!("{}/{}", repo.owner, repo.name);
    // A refusal: the status and the sentence for the form.
    let refused = |e: RepoError| repo_refusal(e, &label);
    let outcome: std::result::Result<String, (u16, String)> = match field(fields, "action") {
        Some("general") => {
            let visibility = if field(fields, "visibility") == Some("private") {
                Visibility::Private
            } else {
                Visibility::Public
            };
            match repos::set_description(repo, field(fields, "description").unwrap_or(""))
                .and_then(|_| repos::set_visibility(repo, visibility))
            {
                Ok(()) => Ok("Saved.".to_string()),
                Err(e) => Err(refused(e)?),
            }
        }
        Some("add_collaborator") => {
            let user = field(fields, "user").unwrap_or("").trim();
            let perm = match field(fields, "perm") {
                Some("write") => Perm::Write,
                _ => Perm::Read,
            };
            match repos::grant(
                &site.accounts,
                &site.repos,
                &repo.owner,
                &repo.name,
                user,
                perm,
            ) {
                Ok(g) => Ok(format!(
                    "{} may now {}.",
                    g.user,
                    if perm == Perm::Write {
                        "read and push"
                    } else {
                        "read"
                    }
                )),
                Err(e) => Err(refused(e)?),
            }
        }
        Some("remove_collaborator") => {
            let user = field(fields, "user").unwrap_or("");
            match repos::revoke(&site.accounts, &site.repos, &repo.owner, &repo.name, user) {
                // Not one already: the same outcome.
                Ok(_) | Err(RepoError::NotCollaborator { .. }) => {
                    Ok(format!("{user} no longer has access."))
                }
                Err(e) => Err(refused(e)?),
            }
        }
        Some("rename") => {
            let new = field(fields, "name").unwrap_or("").trim();
            let new = new.strip_suffix(".git").unwrap_or(new);
            match repos::rename(&site.repos, repo, new) {
                Ok(renamed) => {
                    let mut r = Response::redirect(
                        303,
                        crate::urls::repo_tab_url(
                            &site.config.base_path,
                            &renamed.owner,
                            &renamed.name,
                            "settings",
                        ),
                    );
                    ctx.finish(site, req, &mut r);
                    return Ok(r.into());
                }
                Err(e) => Err(refused(e)?),
            }
        }
        Some("delete") => {
            if field(fields, "confirm").map(str::trim) != Some(repo.name.as_str()) {
                Err((
                    400,
                    format!("Type the repository's name, {}, to delete it.", repo.name),
                ))
            } else {
                match repos::delete_to_trash(&site.config, repo) {
                    Ok(dest) => {
                        log::warn!(
                            "{label}: deleted by {}; moved to {}",
                            ctx.viewer.as_ref().map(|v| v.name.as_str()).unwrap_or("?"),
                            dest.display()
                        );
                        let mut r =
                            Response::redirect(303, crate::urls::home_url(&site.config.base_path));
                        ctx.finish(site, req, &mut r);
                        return Ok(r.into());
                    }
                    Err(e) => Err(refused(e)?),
                }
            }
        }
        Some("purge") => {
            let before = maintenance::status(&repo.path);
            match repos::start_purge(&site.config, repo) {
                Ok(()) => {
                    log::warn!(
                        "{label}: purge started by {}",
                        ctx.viewer.as_ref().map(|v| v.name.as_str()).unwrap_or("?")
                    );
                    // Give it a moment to say what it is doing, then show the page by a GET
                    // (so a reload does not post again), which follows the purge.
                    for _ in 0..40 {
                        if maintenance::status(&repo.path) != before {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(25));
                    }
                    let mut r =
                        Response::redirect(303, format!("{}?purge", settings_url(site, repo)));
                    ctx.finish(site, req, &mut r);
                    return Ok(r.into());
                }
                Err(e) => Err(refused(e)?),
            }
        }
        _ => Err((400, "Unknown action.".into())),
    };
    match outcome {
        Ok(notice) => render(site, req, ctx, repo, 200, notice, String::new()),
        Err((status, error)) => render(site, req, ctx, repo, status, String::new(), error),
    }
    .map(Answer::from)
}
