//! `/-/settings/keys`: your SSH keys (listed with their fingerprints, added by pasting a .pub
//! file, deleted). The changes are `accounts`'s, as for the command line.

use askama::Template;

use super::{account_refusal, Chrome, PageCall, PageCtx};
use crate::accounts::{self, AccountError};
use crate::error::{Error, Result};
use crate::forms::field;
use crate::request::Request;
use crate::response::{Answer, Response};
use crate::site::Site;
use crate::time::date;

pub(crate) struct KeyRow {
    pub(crate) name: String,
    /// `SHA256:...`.
    pub(crate) fingerprint: String,
    /// The type and bits: `ED25519, 256 bits`.
    pub(crate) kind: String,
    pub(crate) added: String,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    chrome: Chrome,
    user: String,
    keys: Vec<KeyRow>,
    /// What the form held when it was refused, to correct it.
    name: String,
    key: String,
    /// Empty when the site offers no SSH.
    ssh_host: String,
    clone_example: String,
    notice: String,
    error: String,
}

/// What the page shows besides the list.
#[derive(Default)]
struct Shown {
    name: String,
    key: String,
    notice: String,
    error: String,
}

fn render(
    site: &Site,
    req: &Request,
    ctx: &PageCtx,
    status: u16,
    shown: Shown,
) -> Result<Response> {
    let Some(viewer) = &ctx.viewer else {
        return Err(Error::NotFound);
    };
    let users = site.accounts.users().map_err(Error::Internal)?;
    let keys = users
        .get(&viewer.name)
        .map(|u| {
            u.ssh_keys
                .iter()
                .map(|k| {
                    // `256 SHA256:... (ED25519)`, or why a key edited by hand is unusable.
                    let summary = accounts::key_summary(k);
                    let mut words = summary.splitn(3, ' ');
                    let (bits, fingerprint, label) = (
                        words.next().unwrap_or(""),
                        words.next().unwrap_or(""),
                        words.next().unwrap_or(""),
                    );
                    let label = label.trim_start_matches('(').trim_end_matches(')');
                    let (fingerprint, kind) = if fingerprint.starts_with("SHA256:") {
                        (fingerprint.to_string(), format!("{label}, {bits} bits"))
                    } else {
                        (String::new(), summary.clone())
                    };
                    KeyRow {
                        name: k.name.clone(),
                        fingerprint,
                        kind,
                        added: date(k.added as i64, 0),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let ssh = &site.config.ssh;
    let clone_example = match &ssh.host {
        Some(host) => crate::urls::ssh_clone_url(&ssh.user, host, ssh.port, &viewer.name, "REPO"),
        None => String::new(),
    };
    ctx.render(
        site,
        req,
        status,
        &KeysPage {
            chrome: ctx.chrome(site),
            user: viewer.name.clone(),
            keys,
            name: shown.name,
            key: shown.key,
            ssh_host: ssh.host.clone().unwrap_or_default(),
            clone_example,
            notice: shown.notice,
            error: shown.error,
        },
    )
}

/// `GET /-/settings/keys`.
pub(crate) fn form<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    render(site, c.req, c.ctx, 200, Shown::default()).map(Answer::from)
}

/// `POST /-/settings/keys`: `action=add` with `name` (optional) and `key`, or `action=delete`
/// with `name`.
pub(crate) fn submit<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx, fields) = (c.req, c.ctx, c.fields);
    let me = c.viewer()?.name.clone();
    let refused = |e: AccountError| account_refusal(e, &format!("changing the SSH keys of {me}"));
    let (status, shown) = match field(fields, "action") {
        Some("add") => {
            let name = field(fields, "name").unwrap_or("").trim();
            let key = field(fields, "key").unwrap_or("");
            let given = Some(name).filter(|n| !n.is_empty());
            match accounts::add_key(&site.accounts, &me, given, key) {
                Ok(k) => (
                    200,
                    Shown {
                        notice: format!("SSH key {} added: {}.", k.name, k.summary),
                        ..Shown::default()
                    },
                ),
                Err(e) => {
                    let (status, error) = refused(e)?;
                    (
                        status,
                        Shown {
                            name: name.to_string(),
                            key: key.chars().take(crate::auth::keys::MAX_INPUT).collect(),
                            error,
                            ..Shown::default()
                        },
                    )
                }
            }
        }
        Some("delete") => {
            let name = field(fields, "name").unwrap_or("");
            match accounts::delete_key(&site.accounts, &me, name) {
                Ok((_, name, _)) => (
                    200,
                    Shown {
                        notice: format!("SSH key {name} deleted; it no longer signs in."),
                        ..Shown::default()
                    },
                ),
                Err(e) => {
                    let (status, error) = refused(e)?;
                    (
                        status,
                        Shown {
                            error,
                            ..Shown::default()
                        },
                    )
                }
            }
        }
        _ => (
            400,
            Shown {
                error: "Unknown action.".into(),
                ..Shown::default()
            },
        ),
    };
    render(site, req, ctx, status, shown).map(Answer::from)
}
