//! A repository's settings, for its owner and site admins: description, visibility,
//! collaborators, rename, and delete (the name typed to confirm; the repository goes to a trash
//! folder first, so a mistake can be undone by the sysadmin).

use std::fs;

use askama::Template;

use super::repo_head::{head, RepoHead};
use super::{Chrome, PageCall, PageCtx};
use crate::auth;
use crate::error::{Error, Result};
use crate::forms::field;
use crate::git::names::valid_name;
use crate::git::{maintenance, Perm, RepoDir, Visibility};
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
}

fn settings_url(site: &Site, repo: &RepoDir) -> String {
    format!(
        "{}/{}/{}/settings",
        site.config.base_path, repo.owner, repo.name
    )
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
                "A purge asked for at {} waits for another repository's purge to finish.",
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

/// Starts `forgelet repo purge` for `repo` in a process of its own, which outlives this request
/// (and, under CGI, this process), and writes its progress where the page reads it.
fn start_purge(site: &Site, repo: &RepoDir) -> std::result::Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find forgelet's binary: {e}"))?;
    let mut c = std::process::Command::new(exe);
    c.arg("--config")
        .arg(&site.config.file)
        .args(["repo", "purge"])
        .arg(format!("{}/{}", repo.owner, repo.name))
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .stdin(std::process::Stdio::null());
    // Its steps and any failure go where forgelet's own log goes (stderr: the journal, or the web
    // server's error log under CGI, whose stdout is the answer and must not be written to).
    use std::os::fd::AsFd;
    match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => {
            let copy = fd
                .try_clone()
                .map_err(|e| format!("cannot pass the log to a purge: {e}"))?;
            c.stdout(std::process::Stdio::from(fd))
                .stderr(std::process::Stdio::from(copy));
        }
        Err(_) => {
            c.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
        }
    }
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    let mut child = c
        .spawn()
        .map_err(|e| format!("cannot start a purge: {e}"))?;
    // Reaped when it ends, so no zombie is left behind.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
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
    let outcome: std::result::Result<String, String> = match field(fields, "action") {
        Some("general") => {
            let description = field(fields, "description").unwrap_or("").trim();
            if description.chars().count() > 300 || description.chars().any(char::is_control) {
                Err("The description must be one line of at most 300 characters.".into())
            } else {
                let visibility = if field(fields, "visibility") == Some("private") {
                    Visibility::Private
                } else {
                    Visibility::Public
                };
                crate::fsfile::replace(
                    &repo.path.join("description"),
                    format!("{description}\n").as_bytes(),
                    0o644,
                )
                .and_then(|_| repo.set_visibility(visibility))
                .map(|_| "Saved.".to_string())
            }
        }
        Some("add_collaborator") => {
            let user = field(fields, "user").unwrap_or("").trim();
            let perm = match field(fields, "perm") {
                Some("write") => Perm::Write,
                _ => Perm::Read,
            };
            let users = site.accounts.users().map_err(Error::Internal)?;
            match users.get(user) {
                None => Err(format!("There is no user named {user:?}.")),
                Some(u) if u.name.eq_ignore_ascii_case(&repo.owner) => {
                    Err("The owner already has full access.".into())
                }
                Some(u) => repo.set_collaborator(&u.name, Some(perm)).map(|_| {
                    format!(
                        "{} may now {}.",
                        u.name,
                        if perm == Perm::Write {
                            "read and push"
                        } else {
                            "read"
                        }
                    )
                }),
            }
        }
        Some("remove_collaborator") => {
            let user = field(fields, "user").unwrap_or("");
            repo.set_collaborator(user, None)
                .map(|_| format!("{user} no longer has access."))
        }
        Some("rename") => {
            let new = field(fields, "name").unwrap_or("").trim();
            let new = new.strip_suffix(".git").unwrap_or(new);
            if !valid_name(new) {
                Err("That name cannot be used: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.".into())
            } else if site
                .repos
                .locate(&repo.owner, new)
                .ok()
                .flatten()
                .is_some_and(|r| r.path != repo.path)
            {
                Err(format!("There is already a repository named {new}."))
            } else {
                let dest = repo.path.with_file_name(format!("{new}.git"));
                match fs::rename(&repo.path, &dest) {
                    Ok(()) => {
                        let mut r = Response::redirect(
                            303,
                            format!("{}/{}/{new}/settings", site.config.base_path, repo.owner),
                        );
                        ctx.finish(site, req, &mut r);
                        return Ok(r.into());
                    }
                    Err(e) => return Err(Error::internal(&format!("renaming {label}"), e)),
                }
            }
        }
        Some("delete") => {
            if field(fields, "confirm").map(str::trim) != Some(repo.name.as_str()) {
                Err(format!(
                    "Type the repository's name, {}, to delete it.",
                    repo.name
                ))
            } else {
                let trash = site.config.data_dir.join("trash");
                let stamp = auth::now();
                let dest = trash.join(format!("{}-{}-{stamp}.git", repo.owner, repo.name));
                fs::create_dir_all(&trash)
                    .and_then(|_| fs::rename(&repo.path, &dest))
                    .map_err(|e| Error::internal(&format!("deleting {label}"), e))?;
                log::warn!(
                    "{label}: deleted by {}; moved to {}",
                    ctx.viewer.as_ref().map(|v| v.name.as_str()).unwrap_or("?"),
                    dest.display()
                );
                let mut r = Response::redirect(303, format!("{}/", site.config.base_path));
                ctx.finish(site, req, &mut r);
                return Ok(r.into());
            }
        }
        Some("purge") => {
            let before = maintenance::status(&repo.path);
            if matches!(
                before,
                maintenance::Status::Running { .. } | maintenance::Status::Queued { .. }
            ) {
                Err("A purge of this repository is running already.".into())
            } else {
                match start_purge(site, repo) {
                    Ok(()) => {
                        log::warn!(
                            "{label}: purge started by {}",
                            ctx.viewer.as_ref().map(|v| v.name.as_str()).unwrap_or("?")
                        );
                        // Give it a moment to say what it is doing, then show the page by a
                        // GET (so a reload does not post again), which follows the purge.
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
                    Err(e) => return Err(Error::Internal(format!("{label}: {e}"))),
                }
            }
        }
        _ => Err("Unknown action.".into()),
    };
    match outcome {
        Ok(notice) => render(site, req, ctx, repo, 200, notice, String::new()),
        Err(error) => render(site, req, ctx, repo, 400, String::new(), error),
    }
    .map(Answer::from)
}
