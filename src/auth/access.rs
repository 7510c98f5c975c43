//! "What may this viewer do with this repository": a pure function of the viewer, the owner's
//! name, the repository's settings and the site's `anonymous_read` switch.

use super::User;
use crate::git::{Perm, Settings, Visibility};

/// What a viewer may do with a repository; each level includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Access {
    None,
    Read,
    Write,
}

impl Access {
    pub(crate) fn may_read(self) -> bool {
        self >= Access::Read
    }

    pub(crate) fn may_write(self) -> bool {
        self == Access::Write
    }
}

/// True when `viewer` owns the repository (names compared ignoring ASCII case).
fn is_owner(viewer: &User, owner: &str) -> bool {
    viewer.name.eq_ignore_ascii_case(owner)
}

/// The owner and site admins manage a repository's settings (visibility, collaborators, delete).
pub(crate) fn may_manage(viewer: Option<&User>, owner: &str) -> bool {
    viewer.is_some_and(|v| v.admin || is_owner(v, owner))
}

/// The rules of ARCHITECTURE.md's "Who may do what":
/// - the owner and site admins read and write every repository;
/// - collaborators read, or read and write, as their entry says;
/// - anyone signed in reads a public repository, and so does anonymous when the site allows it;
/// - nobody else reads a private one.
///
/// Settings that could not be read as written (`settings.problem`) leave the repository to its
/// owner and the admins: a broken collaborator line must not open it to anyone.
pub(crate) fn access(
    viewer: Option<&User>,
    owner: &str,
    settings: &Settings,
    anonymous_read: bool,
) -> Access {
    let Some(v) = viewer else {
        let public = settings.visibility == Visibility::Public && settings.problem.is_none();
        return if public && anonymous_read {
            Access::Read
        } else {
            Access::None
        };
    };
    if v.admin || is_owner(v, owner) {
        return Access::Write;
    }
    if settings.problem.is_some() {
        return Access::None;
    }
    let granted = settings
        .collaborators
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(&v.name))
        .map(|(_, perm)| match perm {
            Perm::Read => Access::Read,
            Perm::Write => Access::Write,
        });
    match (granted, settings.visibility) {
        (Some(a), _) => a,
        (None, Visibility::Public) => Access::Read,
        (None, Visibility::Private) => Access::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, admin: bool) -> User {
        User {
            name: name.into(),
            admin,
            stamp: "00".into(),
            password_hash: String::new(),
            tokens: Vec::new(),
            ssh_keys: Vec::new(),
        }
    }

    fn settings(visibility: Visibility) -> Settings {
        Settings {
            visibility,
            unsupported_format: None,
            problem: None,
            collaborators: vec![
                ("Reader".into(), Perm::Read),
                ("writer".into(), Perm::Write),
            ],
        }
    }

    #[test]
    fn truth_table() {
        use Access::{None as N, Read as R, Write as W};
        let owner = user("alice", false);
        let owner_other_case = user("ALICE", false);
        let admin = user("root", true);
        let reader = user("reader", false);
        let writer = user("WRITER", false);
        let stranger = user("mallory", false);
        // (viewer, public+anon, public+no anon, private+anon, private+no anon)
        let table: [(&str, Option<&User>, [Access; 4]); 7] = [
            ("anonymous", None, [R, N, N, N]),
            ("stranger", Some(&stranger), [R, R, N, N]),
            ("read collaborator", Some(&reader), [R, R, R, R]),
            ("write collaborator", Some(&writer), [W, W, W, W]),
            ("owner", Some(&owner), [W, W, W, W]),
            ("owner, other case", Some(&owner_other_case), [W, W, W, W]),
            ("admin", Some(&admin), [W, W, W, W]),
        ];
        for (who, viewer, want) in table {
            let got = [
                access(viewer, "alice", &settings(Visibility::Public), true),
                access(viewer, "alice", &settings(Visibility::Public), false),
                access(viewer, "alice", &settings(Visibility::Private), true),
                access(viewer, "alice", &settings(Visibility::Private), false),
            ];
            assert_eq!(got, want, "{who}");
        }
        assert!(may_manage(Some(&owner), "alice") && may_manage(Some(&owner_other_case), "alice"));
        assert!(may_manage(Some(&admin), "alice"));
        assert!(!may_manage(Some(&writer), "alice") && !may_manage(None, "alice"));
        assert!(R.may_read() && !R.may_write() && W.may_write() && !N.may_read());
    }

    #[test]
    fn a_settings_problem_leaves_the_repo_to_owner_and_admins() {
        let mut s = settings(Visibility::Public);
        s.problem = Some("forgelet.collaborator \"bob maybe\" is not NAME read|write".into());
        for anon in [true, false] {
            assert_eq!(access(None, "alice", &s, anon), Access::None);
            for who in ["reader", "writer", "mallory"] {
                assert_eq!(
                    access(Some(&user(who, false)), "alice", &s, anon),
                    Access::None,
                    "{who}"
                );
            }
            assert_eq!(
                access(Some(&user("alice", false)), "alice", &s, anon),
                Access::Write
            );
            assert_eq!(
                access(Some(&user("root", true)), "alice", &s, anon),
                Access::Write
            );
        }
    }
}
