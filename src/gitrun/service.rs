//! The git services a client talks to (`upload-pack`, `receive-pack`, `upload-archive`), as
//! every transport runs them: the same `-c` settings, the same hook environment, the same
//! protocol version taken from what the client asked for. HTTP adds `--stateless-rpc`; SSH runs
//! them full duplex on the session's stdin and stdout.

use std::process::Command;

use crate::config::Limits;

use super::GitRunner;

/// A git service a client may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    UploadPack,
    ReceivePack,
    UploadArchive,
}

impl Service {
    /// The git subcommand: `upload-pack`, `receive-pack`, `upload-archive`.
    pub(crate) fn command(self) -> &'static str {
        match self {
            Service::UploadPack => "upload-pack",
            Service::ReceivePack => "receive-pack",
            Service::UploadArchive => "upload-archive",
        }
    }

    /// Whether the service changes the repository (and so needs write access).
    pub(crate) fn writes(self) -> bool {
        self == Service::ReceivePack
    }
}

/// The protocol version a client asks for (HTTP's `Git-Protocol` header, SSH's `GIT_PROTOCOL`
/// variable), if the value is well formed (`key=value` pairs of letters and digits joined by
/// `:`) and names version 1 or 2. Only `version=N` ever reaches git: the rest of what a client
/// sent is never passed on.
pub(crate) fn protocol_version(value: Option<&str>) -> Option<u8> {
    let value = value?.trim();
    let ok_part = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    let mut version = None;
    for pair in value.split(':') {
        let (k, v) = pair.split_once('=')?;
        if !ok_part(k) || !ok_part(v) {
            return None;
        }
        if k == "version" {
            version = match v {
                "1" => Some(1),
                "2" => Some(2),
                _ => version,
            };
        }
    }
    version
}

/// The `-c` settings every service forgelet runs gets (after the runner's own).
pub(crate) fn settings(limits: &Limits) -> Vec<String> {
    vec![
        "uploadpack.allowFilter=true".to_string(),
        // Only the filters partial clone needs; `sparse:oid` makes git read a blob the
        // client names whole, and combinations multiply the work.
        "uploadpackfilter.allow=false".to_string(),
        "uploadpackfilter.blob:none.allow=true".to_string(),
        "uploadpackfilter.blob:limit.allow=true".to_string(),
        "uploadpackfilter.tree.allow=true".to_string(),
        "uploadpackfilter.tree.maxDepth=0".to_string(),
        "uploadpack.keepAlive=5".to_string(),
        "receive.fsckObjects=true".to_string(),
        "receive.autogc=false".to_string(),
        "receive.keepAlive=5".to_string(),
        format!("receive.maxInputSize={}", limits.push_bytes),
        "core.logAllRefUpdates=true".to_string(),
    ]
}

impl GitRunner {
    /// `git -c ... <service>` for the repository `label` (`owner/name`, for hooks), from the
    /// runner's empty environment plus the hooks' identity (`REMOTE_USER`, `FORGELET_USER`,
    /// `FORGELET_REPO`) and, for upload-pack, the protocol `version`; `--strict` for
    /// upload-pack. The caller adds the transport's options and the repository's path.
    pub(crate) fn service(
        &self,
        service: Service,
        label: &str,
        user: Option<&str>,
        version: Option<u8>,
        limits: &Limits,
    ) -> Command {
        let mut c = self.git();
        c.env("FORGELET_REPO", label);
        if let Some(user) = user {
            c.env("REMOTE_USER", user).env("FORGELET_USER", user);
        }
        // receive-pack speaks v0 only; upload-pack gets the version the client asked for.
        if let (Service::UploadPack, Some(v)) = (service, version) {
            c.env("GIT_PROTOCOL", format!("version={v}"));
        }
        // Settings on the command line are "protected" configuration, like the system file, so
        // safe.directory is honoured there; the host's own files are shut out by `git()`.
        for setting in settings(limits) {
            c.arg("-c").arg(setting);
        }
        c.arg(service.command());
        if service == Service::UploadPack {
            c.arg("--strict");
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_value_is_validated() {
        assert_eq!(protocol_version(Some("version=2")), Some(2));
        assert_eq!(protocol_version(Some("version=1")), Some(1));
        assert_eq!(protocol_version(Some("agent=x:version=2")), Some(2));
        assert_eq!(protocol_version(Some("object-format=sha1:version=2")), None);
        assert_eq!(protocol_version(Some("version=3")), None);
        assert_eq!(protocol_version(Some("version=2;rm -rf")), None);
        assert_eq!(protocol_version(Some("version=2:x")), None);
        assert_eq!(protocol_version(Some("version=2\nX=1")), None);
        assert_eq!(protocol_version(Some("")), None);
        assert_eq!(protocol_version(None), None);
    }
}
