//! `POST {repo}.git/info/lfs/objects/batch`: for each object the client names, where to fetch
//! it (download) or send it (upload), or why not.

use std::io::Read;

use serde_json::{json, Value};

use super::objects::stored_size;
use super::token::{self, Op};
use super::{valid_oid, LfsCall};
use crate::error::{Error, Result};
use crate::response::Answer;
use crate::site::Site;
use crate::urls;

/// The largest batch or verify request read (git-lfs sends 100 objects, about 10 KiB).
const BODY_MAX: u64 = 1 << 20;
/// Objects one batch may name.
pub(crate) const OBJECTS_MAX: usize = 1000;

/// Reads a JSON request body of at most [`BODY_MAX`] bytes.
pub(crate) fn read_json(body: &mut dyn Read) -> Result<Value> {
    let mut bytes = Vec::new();
    body.take(BODY_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|_| Error::BadRequest("the request body ended early"))?;
    if bytes.len() as u64 > BODY_MAX {
        return Err(Error::TooLarge(format!(
            "An LFS request may have at most {} KiB of JSON.",
            BODY_MAX >> 10
        )));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Invalid(format!("The request is not valid JSON: {e}.")))
}

/// A batch request as read: what is asked, and each object as named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchRequest {
    pub(crate) op: Op,
    pub(crate) objects: Vec<Named>,
}

/// An object of a batch request: a valid id (64 lowercase hex digits) and a size, or what the
/// client sent instead (answered with an error of its own, the other objects still served).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Named {
    Valid { oid: String, size: u64 },
    Invalid { oid: String, size: u64 },
}

/// Reads a batch request: `operation` download or upload, the `basic` transfer among
/// `transfers` (when the client lists them), SHA-256 objects, at most [`OBJECTS_MAX`] objects.
/// `allowed` judges the operation as soon as it is read, before the rest of the request (the
/// route refuses an upload to a reader there).
pub(crate) fn read_request(
    body: &mut dyn Read,
    allowed: impl FnOnce(Op) -> Result<()>,
) -> Result<BatchRequest> {
    let request = read_json(body)?;
    let op = match request.get("operation").and_then(Value::as_str) {
        Some("download") => Op::Download,
        Some("upload") => Op::Upload,
        Some(_) | None => {
            return Err(Error::Invalid(
                "\"operation\" must be \"download\" or \"upload\".".into(),
            ))
        }
    };
    allowed(op)?;
    if let Some(transfers) = request.get("transfers") {
        let basic = transfers
            .as_array()
            .is_some_and(|t| t.iter().any(|v| v.as_str() == Some("basic")));
        if !basic {
            return Err(Error::Invalid(
                "This server offers only the \"basic\" transfer.".into(),
            ));
        }
    }
    match request.get("hash_algo").and_then(Value::as_str) {
        None | Some("sha256") => {}
        Some(_) => {
            return Err(Error::Conflict(
                "This server keeps objects by SHA-256 only.".into(),
            ))
        }
    }
    let objects = request
        .get("objects")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Invalid("\"objects\" must be a list.".into()))?;
    if objects.len() > OBJECTS_MAX {
        return Err(Error::Invalid(format!(
            "A batch may name at most {OBJECTS_MAX} objects."
        )));
    }
    let objects = objects
        .iter()
        .map(|o| {
            let oid = o.get("oid").and_then(Value::as_str).unwrap_or_default();
            match o.get("size").and_then(Value::as_u64) {
                Some(size) if valid_oid(oid) => Named::Valid {
                    oid: oid.to_string(),
                    size,
                },
                size => Named::Invalid {
                    oid: oid.to_string(),
                    size: size.unwrap_or(0),
                },
            }
        })
        .collect();
    Ok(BatchRequest { op, objects })
}

/// `host` without its port (`[::1]:8080` is `[::1]`).
fn without_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, port))
            if !h.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') =>
        {
            h
        }
        _ => host,
    }
}

/// The site's root as this client reached it, so the actions' addresses are ones the client can
/// use: `base_url` when the request's host is `base_url`'s (or it names none), else
/// `http(s)://HOST[:PORT]{base_path}` as the web server says the client came (a site reached by
/// another name, or whose `base_url` was left at its default). Web servers often pass the host
/// without its port (Debian's nginx passes `$host`), so the port is the one the request came to.
fn origin(site: &Site, c: &LfsCall<'_>) -> String {
    let base_url = &site.config.base_url;
    let base_host = base_url
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
        .unwrap_or_default();
    match c.req.host() {
        Some(host) if !without_port(host).eq_ignore_ascii_case(without_port(base_host)) => {
            let https = c.req.https();
            let scheme = if https { "https" } else { "http" };
            let port = match c.req.server_port() {
                _ if without_port(host) != host => String::new(),
                Some(p) if p != if https { 443 } else { 80 } => format!(":{p}"),
                _ => String::new(),
            };
            format!("{scheme}://{host}{port}{}", site.config.base_path)
        }
        _ => base_url.clone(),
    }
}

pub(crate) fn batch<'s>(
    site: &'s Site,
    c: &LfsCall<'_>,
    body: &mut dyn Read,
) -> Result<Answer<'s>> {
    let request = read_request(body, |op| match op {
        Op::Upload => c.write.clone(),
        _ => Ok(()),
    })?;
    let op = request.op;
    let repo_name = format!("{}/{}", c.repo.owner, c.repo.name);
    let base = urls::clone_url(&origin(site, c), &c.repo.owner, &c.repo.name);
    let expires = crate::time::now() + token::LIFETIME_SECS;
    let users = site.accounts.users().map_err(Error::Internal)?;
    let who = c
        .user
        .and_then(|u| users.get(u))
        .map(|u| (u.name.as_str(), u.stamp.as_str()));
    let max = site.config.limits.lfs_object_bytes;
    let verify_header = token::sign(
        site.accounts.secret(),
        Op::Verify,
        &repo_name,
        "",
        who,
        expires,
    );
    let mut answers = Vec::with_capacity(request.objects.len());
    for named in &request.objects {
        let (oid, size) = match named {
            Named::Valid { oid, size } => (oid.as_str(), *size),
            Named::Invalid { oid, size } => {
                answers.push(json!({
                    "oid": oid,
                    "size": size,
                    "error": { "code": 422, "message": "An object is named by \"oid\" (64 hex digits) and \"size\" (bytes)." }
                }));
                continue;
            }
        };
        let href = format!("{base}/info/lfs/objects/{oid}");
        let header = |op| token::sign(site.accounts.secret(), op, &repo_name, oid, who, expires);
        let kept = stored_size(c.repo, oid)?;
        let answer = match (op == Op::Download, kept) {
            (true, kept) => match kept {
                Some(kept) => json!({
                    "oid": oid, "size": kept, "authenticated": true,
                    "actions": { "download": {
                        "href": href,
                        "header": { "Authorization": header(Op::Download) },
                        "expires_in": token::LIFETIME_SECS,
                    }}
                }),
                None => json!({
                    "oid": oid, "size": size,
                    "error": { "code": 404, "message": "Object does not exist." }
                }),
            },
            (false, _) if size > max => json!({
                "oid": oid, "size": size,
                "error": { "code": 422, "message": format!(
                    "This object is larger than this server accepts ({} MiB).", max >> 20) }
            }),
            // Already kept: nothing to send.
            (false, Some(kept)) if kept == size => {
                json!({ "oid": oid, "size": size, "authenticated": true })
            }
            (false, _) => json!({
                "oid": oid, "size": size, "authenticated": true,
                "actions": {
                    "upload": {
                        "href": href,
                        "header": { "Authorization": header(Op::Upload) },
                        "expires_in": token::LIFETIME_SECS,
                    },
                    "verify": {
                        "href": format!("{base}/info/lfs/verify"),
                        "header": { "Authorization": verify_header.clone() },
                        "expires_in": token::LIFETIME_SECS,
                    }
                }
            }),
        };
        answers.push(answer);
    }
    Ok(super::json(
        200,
        &json!({ "transfer": "basic", "objects": answers, "hash_algo": "sha256" }),
    )
    .into())
}
