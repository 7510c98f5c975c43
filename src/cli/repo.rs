//! `forgelet repo ...`: create, list, import, set, purge, grant and revoke, each parsing its
//! arguments, calling `repos` (or `git::maintenance` for a purge) and printing what it did.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::args::Args;
use super::{check_owner, open_accounts, repo_error, usage_error, with_config, Outcome};
use crate::config::Config;
use crate::git::{Perm, RepoStore, Visibility};
use crate::repos::{self, NewRepo};

/// `forgelet repo SUBCOMMAND ...`, with `words` the words after `repo`; the exit code.
pub(super) fn run(config_path: &Path, words: &[String]) -> i32 {
    let Some(sub) = words.first().map(String::as_str) else {
        return usage_error(
            "repo needs a subcommand: create, list, import, set, purge, grant or revoke",
        );
    };
    let rest = &words[1..];
    let parse = |flags: &[&'static str], options: &[&'static str]| {
        Args::parse(rest, flags, options, &format!("repo {sub}"))
    };
    match sub {
        "list" => match rest.first() {
            None => with_config(config_path, list),
            Some(extra) => usage_error(&format!("repo list takes no arguments, found {extra:?}")),
        },
        "create" => {
            let a = match parse(&["--private"], &["--description"]) {
                Ok(a) => a,
                Err(e) => return usage_error(&e),
            };
            let [name] = a.positional.as_slice() else {
                return usage_error(
                    "repo create takes OWNER/NAME [--private] [--description TEXT]",
                );
            };
            with_config(config_path, |c| {
                create(c, name, a.option("--description"), a.flag("--private"))
            })
        }
        "set" => {
            let a = match parse(&[], &["--visibility"]) {
                Ok(a) => a,
                Err(e) => return usage_error(&e),
            };
            let ([name], Some(vis)) = (a.positional.as_slice(), a.option("--visibility")) else {
                return usage_error("repo set takes OWNER/NAME --visibility public|private");
            };
            with_config(config_path, |c| set_visibility(c, name, vis))
        }
        "purge" => {
            let a = match parse(&[], &[]) {
                Ok(a) => a,
                Err(e) => return usage_error(&e),
            };
            let [name] = a.positional.as_slice() else {
                return usage_error("repo purge takes OWNER/NAME");
            };
            with_config(config_path, |c| purge(c, name))
        }
        "grant" => {
            let a = match parse(&[], &[]) {
                Ok(a) => a,
                Err(e) => return usage_error(&e),
            };
            let [name, user, perm] = a.positional.as_slice() else {
                return usage_error("repo grant takes OWNER/NAME USER read|write");
            };
            with_config(config_path, |c| grant(c, name, user, perm))
        }
        "revoke" => {
            let a = match parse(&[], &[]) {
                Ok(a) => a,
                Err(e) => return usage_error(&e),
            };
            let [name, user] = a.positional.as_slice() else {
                return usage_error("repo revoke takes OWNER/NAME USER");
            };
            with_config(config_path, |c| revoke(c, name, user))
        }
        "import" => {
            let move_src = rest.iter().any(|w| w == "--move");
            let positional: Vec<&String> = rest.iter().filter(|w| *w != "--move").collect();
            if let Some(flag) = positional.iter().find(|w| w.starts_with("--")) {
                return usage_error(&format!("unknown option {flag} for repo import"));
            }
            let [name, path] = positional.as_slice() else {
                return usage_error("repo import takes OWNER/NAME PATH [--move]");
            };
            with_config(config_path, |c| {
                import(c, name, &PathBuf::from(path), move_src)
            })
        }
        other => usage_error(&format!(
            "unknown repo subcommand {other:?}; use create, list, import, set, purge, grant or revoke"
        )),
    }
}

fn visibility_word(v: Visibility) -> &'static str {
    match v {
        Visibility::Public => "public",
        Visibility::Private => "private",
    }
}

/// `forgelet repo create OWNER/NAME [--private] [--description TEXT]`: an empty bare repository
/// on `main`, owned by an existing user.
fn create(config: &Config, full: &str, description: Option<&str>, private: bool) -> Outcome {
    let (owner, name) = repos::parse_full_name(full).map_err(repo_error)?;
    check_owner(config)?;
    let accounts = open_accounts(config)?;
    let repo = repos::create(
        config,
        &accounts,
        &NewRepo {
            owner: &owner,
            name: &name,
            description: description.unwrap_or(""),
            private,
            readme: false,
        },
    )
    .map_err(repo_error)?;
    let vis = if private { " (private)" } else { "" };
    println!(
        "created {}/{}{vis} at {}",
        repo.owner,
        repo.name,
        repo.path.display()
    );
    Ok(())
}

/// `forgelet repo list`: one line per repository: `owner/name<TAB>visibility<TAB>description`.
/// From the repositories' listing (`git::listing`, kept in the listing file), with each
/// repository's config and description read again only when it changed since.
fn list(config: &Config) -> Outcome {
    let store = RepoStore::new(config.repos_dir());
    let listing = repos::listing(&store).map_err(repo_error)?;
    let mut out = io::stdout().lock();
    for (i, r) in listing.repos.iter().enumerate() {
        let r_dir = &r.dir;
        let vis = listing
            .current_settings(i)
            .map_or(Visibility::Private, |s| s.visibility);
        let description = listing
            .current_description(i)
            .unwrap_or_else(|| r.description.clone());
        let _ = writeln!(
            out,
            "{}/{}\t{}\t{description}",
            r_dir.owner,
            r_dir.name,
            visibility_word(vis)
        );
    }
    Ok(())
}

/// `forgelet repo import OWNER/NAME PATH [--move]`: adopts an existing bare repository (see
/// `repos::import`). With `--move` the source is removed afterwards.
fn import(config: &Config, full: &str, src: &Path, move_src: bool) -> Outcome {
    let (owner, name) = repos::parse_full_name(full).map_err(repo_error)?;
    check_owner(config)?;
    let accounts = open_accounts(config)?;
    let imported = repos::import(config, &accounts, &owner, &name, src).map_err(repo_error)?;
    let repo = &imported.repo;
    println!(
        "imported {}/{} at {}",
        repo.owner,
        repo.name,
        repo.path.display()
    );
    if move_src {
        // The import stands whatever happens to the source, so a failure here is a warning.
        if let Err(why) = remove_source(&imported.source) {
            eprintln!(
                "forgelet: warning: the source {} was left in place: {why}",
                imported.source.display()
            );
        }
    }
    Ok(())
}

/// Removes an imported repository's source folder, all of it or none of it: it is first renamed
/// to a hidden name beside itself (which fails, having changed nothing, when its folder does not
/// allow it), then removed from there.
fn remove_source(src: &Path) -> Result<(), String> {
    let parent = src.parent().unwrap_or(Path::new("/"));
    let file = src
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let doomed = parent.join(format!(".{file}.removing-{}", std::process::id()));
    fs::rename(src, &doomed)
        .map_err(|e| format!("cannot remove it from {}: {e}", parent.display()))?;
    fs::remove_dir_all(&doomed).map_err(|e| {
        format!(
            "it was renamed to {} but not removed: {e}",
            doomed.display()
        )
    })
}

/// `forgelet repo set OWNER/NAME --visibility public|private`.
fn set_visibility(config: &Config, full: &str, visibility: &str) -> Outcome {
    let vis = if visibility.eq_ignore_ascii_case("public") {
        Visibility::Public
    } else if visibility.eq_ignore_ascii_case("private") {
        Visibility::Private
    } else {
        return Err(format!(
            "--visibility takes public or private, not {visibility:?}"
        ));
    };
    check_owner(config)?;
    let (owner, name) = repos::parse_full_name(full).map_err(repo_error)?;
    let repo =
        repos::locate(&RepoStore::new(config.repos_dir()), &owner, &name).map_err(repo_error)?;
    repos::set_visibility(&repo, vis).map_err(repo_error)?;
    println!(
        "{}/{} is now {}",
        repo.owner,
        repo.name,
        visibility_word(vis)
    );
    Ok(())
}

/// `forgelet repo purge OWNER/NAME`: drops the objects nothing reaches any more (see
/// `git::maintenance`), saying each step as it starts.
fn purge(config: &Config, full: &str) -> Outcome {
    check_owner(config)?;
    let (owner, name) = repos::parse_full_name(full).map_err(repo_error)?;
    let repo =
        repos::locate(&RepoStore::new(config.repos_dir()), &owner, &name).map_err(repo_error)?;
    let runner = crate::gitrun::GitRunner::new(config);
    crate::git::maintenance::purge(
        &config.data_dir,
        &config.pack_cache.dir,
        &repo.path,
        || runner.git(),
        |step| println!("{}/{}: {step}", repo.owner, repo.name),
    )
}

/// `forgelet repo grant OWNER/NAME USER read|write`.
fn grant(config: &Config, full: &str, user: &str, perm: &str) -> Outcome {
    let perm = Perm::parse(perm)
        .ok_or_else(|| format!("the permission is read or write, not {perm:?}"))?;
    let accounts = open_accounts(config)?;
    let (owner, name) = repos::parse_full_name(full).map_err(repo_error)?;
    let store = RepoStore::new(config.repos_dir());
    let g = repos::grant(&accounts, &store, &owner, &name, user, perm).map_err(repo_error)?;
    let what = match perm {
        Perm::Read => "read",
        Perm::Write => "read and write",
    };
    let verb = if g.before { "now may" } else { "may now" };
    println!("{} {verb} {what} {}/{}", g.user, g.repo.owner, g.repo.name);
    Ok(())
}

/// `forgelet repo revoke OWNER/NAME USER`: the user need not exist any more (a stale entry goes too).
fn revoke(config: &Config, full: &str, user: &str) -> Outcome {
    let accounts = open_accounts(config)?;
    let (owner, name) = repos::parse_full_name(full).map_err(repo_error)?;
    let store = RepoStore::new(config.repos_dir());
    let repo = repos::revoke(&accounts, &store, &owner, &name, user).map_err(repo_error)?;
    println!(
        "{user} is no longer a collaborator of {}/{}",
        repo.owner, repo.name
    );
    Ok(())
}
