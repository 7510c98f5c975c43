//! SSH public keys as people paste them: `TYPE BASE64 [comment]`, one line, the contents of a
//! `.pub` file. The blob is decoded and checked by the `ssh-key` crate (its inner type is the
//! declared one, its structure complete with no bytes left over, an ECDSA key's curve the
//! declared one); the site's own rules (which types, RSA of 2048 bits or more) and the messages
//! for the usual mistakes (a private key, authorized_keys options, several keys) are here.
//!
//! A key's id is the first 12 bytes of the SHA-256 of its blob, in hex: it names the key in
//! users.toml, in the key index and in the forced command sshd runs. Its fingerprint is what
//! `ssh-keygen -lf` prints: `SHA256:` and the unpadded base64 of the same digest.

use std::fmt;

use ssh_key::{HashAlg, PublicKey};

/// The longest paste looked at. An RSA key of 16,384 bits, the largest OpenSSH makes, is about
/// 2,800 characters with its comment.
pub(crate) const MAX_INPUT: usize = 16 * 1024;
/// The smallest RSA modulus accepted, in bits (what GitHub and OpenSSH's own default ask).
pub(crate) const MIN_RSA_BITS: usize = 2048;

/// The key types accepted, as a `.pub` file names them.
pub(crate) const ACCEPTED: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Types known but refused (their own message), and certificate types: a line that begins with
/// one of these is a key line, not options.
const REFUSED: &[&str] = &["ssh-dss"];

/// The sentence listing what is accepted, for messages.
const ACCEPTED_LIST: &str = "ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa (2048 bits or more), sk-ssh-ed25519@openssh.com or sk-ecdsa-sha2-nistp256@openssh.com";

/// A public key that passed every check.
#[derive(Debug, Clone)]
pub(crate) struct SshPublicKey {
    /// The declared type, one of [`ACCEPTED`].
    pub(crate) kind: &'static str,
    /// The blob in base64, as an authorized_keys line has it (canonical: the blob re-encoded).
    pub(crate) base64: String,
    /// The comment after the key, trimmed; empty when there is none.
    pub(crate) comment: String,
    /// The size as `ssh-keygen -l` gives it: the RSA modulus's bits, the curve's size.
    pub(crate) bits: usize,
    /// SHA-256 of the blob.
    digest: [u8; 32],
    fingerprint: String,
}

impl SshPublicKey {
    /// `TYPE BASE64`: the key as users.toml and the key index store it.
    pub(crate) fn line(&self) -> String {
        format!("{} {}", self.kind, self.base64)
    }

    /// 24 lower-case hex digits: the first 12 bytes of SHA-256 of the blob.
    pub(crate) fn id(&self) -> String {
        crate::fsfile::hex(&self.digest[..12])
    }

    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub(crate) fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// What `ssh-keygen -l` puts in brackets: `ED25519`, `ECDSA`, `RSA`, `ED25519-SK`, `ECDSA-SK`.
    pub(crate) fn label(&self) -> &'static str {
        match self.kind {
            "ssh-ed25519" => "ED25519",
            "ssh-rsa" => "RSA",
            "sk-ssh-ed25519@openssh.com" => "ED25519-SK",
            "sk-ecdsa-sha2-nistp256@openssh.com" => "ECDSA-SK",
            _ => "ECDSA",
        }
    }

    /// `256 SHA256:... (ED25519)`: the bits, the fingerprint and the type, as `ssh-keygen -l`
    /// shows them (without the comment).
    pub(crate) fn summary(&self) -> String {
        format!("{} {} ({})", self.bits, self.fingerprint, self.label())
    }
}

/// Why a pasted key was refused. Each message says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyError {
    Empty,
    /// The length in bytes.
    TooLong(usize),
    PrivateKey,
    /// A public key in the RFC 4716 (`---- BEGIN SSH2 PUBLIC KEY ----`) format.
    Rfc4716,
    /// What came before the key type (authorized_keys options).
    Options(String),
    CommentOnly,
    /// How many keys the paste holds.
    Several(usize),
    /// One key cut over several lines.
    SplitLines,
    Dsa,
    Certificate(String),
    UnknownType(String),
    /// The type with nothing after it.
    NoData(&'static str),
    NotBase64,
    /// The declared type, and the type named inside the blob.
    WrongType {
        declared: &'static str,
        inner: String,
    },
    /// The blob does not hold a whole key of its type; the decoder's words.
    Damaged(String),
    /// The RSA modulus's bits.
    ShortRsa(usize),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use KeyError::*;
        match self {
            Empty => write!(f, "no key given: paste the contents of your public key file, such as ~/.ssh/id_ed25519.pub"),
            TooLong(n) => write!(f, "that is {n} bytes, longer than any public key ({MAX_INPUT} at most): paste only the contents of your .pub file"),
            PrivateKey => write!(f, "that is a private key, which must stay on your computer (if you pasted it anywhere else, make a new one): paste the public key instead, the contents of the .pub file beside it, such as ~/.ssh/id_ed25519.pub"),
            Rfc4716 => write!(f, "that is a public key in the RFC 4716 (SSH2) format: convert it with `ssh-keygen -i -f FILE` and paste the line it prints"),
            Options(prefix) => write!(f, "remove {prefix:?} before the key type: authorized_keys options such as command= or restrict are not accepted (forgelet sets the ones sshd needs); paste the key as its .pub file has it, starting with its type such as ssh-ed25519"),
            CommentOnly => write!(f, "that line is a comment (it starts with #), not a key: paste the contents of your .pub file"),
            Several(n) => write!(f, "that holds {n} keys: add one key at a time"),
            SplitLines => write!(f, "the key is split over several lines: paste it as one line, as the .pub file has it"),
            Dsa => write!(f, "DSA keys (ssh-dss) are not accepted: they are weak, and OpenSSH no longer uses them; make a new key with `ssh-keygen -t ed25519`"),
            Certificate(t) => write!(f, "{t} is an SSH certificate, which forgelet does not accept: paste the public key itself (the .pub file without -cert)"),
            UnknownType(t) => write!(f, "unknown key type {t:?}: a key starts with its type, one of {ACCEPTED_LIST}"),
            NoData(t) => write!(f, "the key type {t} is not followed by the key (a long run of base64 such as AAAAC3Nza...): paste the whole line of the .pub file"),
            NotBase64 => write!(f, "the key is not valid base64 (it was cut, wrapped or changed when copied): paste the whole line of the .pub file again"),
            WrongType { declared, inner } => write!(f, "the key says it is {declared}, but it holds a {inner} key: paste the .pub file's line unchanged"),
            Damaged(detail) => write!(f, "the key is damaged or incomplete ({detail}): paste the whole line of the .pub file again"),
            ShortRsa(bits) => write!(f, "this RSA key has {bits} bits; at least {MIN_RSA_BITS} are needed: make a new key with `ssh-keygen -t ed25519` (or `-t rsa -b 4096`)"),
        }
    }
}

impl std::error::Error for KeyError {}

/// The accepted type spelled `word`.
fn accepted(word: &str) -> Option<&'static str> {
    ACCEPTED.iter().copied().find(|t| *t == word)
}

/// Whether `word` is a key type: accepted, refused, or a certificate of one.
fn is_key_type(word: &str) -> bool {
    accepted(word).is_some() || REFUSED.contains(&word) || word.ends_with("-cert-v01@openssh.com")
}

/// Parses and checks a key as a user pastes it (see the module's comment).
pub(crate) fn parse(text: &str) -> Result<SshPublicKey, KeyError> {
    if text.len() > MAX_INPUT {
        return Err(KeyError::TooLong(text.len()));
    }
    let text = text.trim();
    if text.is_empty() {
        return Err(KeyError::Empty);
    }
    if text.contains("PRIVATE KEY-----") || text.starts_with("PuTTY-User-Key-File") {
        return Err(KeyError::PrivateKey);
    }
    if text.starts_with("---- BEGIN SSH2 PUBLIC KEY") {
        return Err(KeyError::Rfc4716);
    }
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.iter().all(|l| l.starts_with('#')) {
        return Err(KeyError::CommentOnly);
    }
    let keys = lines
        .iter()
        .filter(|l| l.split_whitespace().any(is_key_type))
        .count();
    if keys > 1 {
        return Err(KeyError::Several(keys));
    }
    if lines.len() > 1 {
        return Err(KeyError::SplitLines);
    }
    let line = lines[0];
    let words: Vec<&str> = line.split_whitespace().collect();
    // Where the type is: anything before it is authorized_keys options.
    let at = words.iter().position(|w| is_key_type(w));
    let at = match at {
        Some(0) => 0,
        Some(i) => {
            let prefix = words[..i].join(" ");
            return Err(KeyError::Options(prefix.chars().take(60).collect()));
        }
        None if looks_like_options(words[0]) => {
            return Err(KeyError::Options(words[0].chars().take(60).collect()))
        }
        None => {
            let t: String = words[0].chars().take(60).collect();
            return Err(KeyError::UnknownType(t));
        }
    };
    let word = words[at];
    let kind = match accepted(word) {
        Some(k) => k,
        None if word == "ssh-dss" => return Err(KeyError::Dsa),
        None => return Err(KeyError::Certificate(word.to_string())),
    };
    let Some(data) = words.get(1) else {
        return Err(KeyError::NoData(kind));
    };
    // A second key on the same line (two .pub files joined without a line break).
    if words[2..].iter().any(|w| is_key_type(w)) {
        return Err(KeyError::Several(2));
    }
    let comment = words[2..].join(" ");
    decode(kind, data, comment)
}

/// Whether the first word of a line that names no key type looks like authorized_keys options.
fn looks_like_options(word: &str) -> bool {
    const OPTIONS: &[&str] = &[
        "restrict",
        "cert-authority",
        "no-pty",
        "no-port-forwarding",
        "no-agent-forwarding",
        "no-x11-forwarding",
        "no-user-rc",
        "no-touch-required",
        "verify-required",
        "pty",
        "user-rc",
        "agent-forwarding",
        "port-forwarding",
        "x11-forwarding",
    ];
    word.contains('=')
        || word.contains('"')
        || word
            .split(',')
            .any(|o| OPTIONS.contains(&o.to_ascii_lowercase().as_str()))
}

/// Decodes the base64 `data` of a key declared `kind` and checks it.
fn decode(kind: &'static str, data: &str, comment: String) -> Result<SshPublicKey, KeyError> {
    if !data
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    {
        return Err(KeyError::NotBase64);
    }
    let key = match PublicKey::from_openssh(&format!("{kind} {data}")) {
        Ok(k) => k,
        Err(e) => return Err(explain(kind, data, e)),
    };
    let bits = match key.key_data().rsa() {
        Some(rsa) => {
            let n = rsa.n.as_positive_bytes().unwrap_or(&[]);
            let bits = match n.first() {
                Some(first) => (n.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
                None => 0,
            };
            if bits < MIN_RSA_BITS {
                return Err(KeyError::ShortRsa(bits));
            }
            bits
        }
        None => match kind {
            "ecdsa-sha2-nistp384" => 384,
            "ecdsa-sha2-nistp521" => 521,
            _ => 256,
        },
    };
    let fingerprint = key.fingerprint(HashAlg::Sha256);
    let digest = fingerprint
        .sha256()
        .ok_or_else(|| KeyError::Damaged("no SHA-256 digest".into()))?;
    let blob = key
        .to_bytes()
        .map_err(|e| KeyError::Damaged(e.to_string()))?;
    Ok(SshPublicKey {
        kind,
        base64: encode_base64(&blob),
        comment,
        bits,
        digest,
        fingerprint: fingerprint.to_string(),
    })
}

/// A decoding failure as a [`KeyError`]: the type named inside the blob when it is another, else
/// not base64, else damaged.
fn explain(kind: &'static str, data: &str, e: ssh_key::Error) -> KeyError {
    let Some(blob) = decode_base64(data) else {
        return KeyError::NotBase64;
    };
    // The blob starts with its type: a 32-bit length and that many bytes.
    if blob.len() >= 4 {
        let len = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
        if let Some(inner) = blob.get(4..4 + len.min(64)) {
            let inner = String::from_utf8_lossy(inner);
            let inner = match kind {
                // An ECDSA key names its curve again: a nistp384 key declared as nistp256.
                k if k.starts_with("ecdsa-sha2-") && inner == kind => {
                    match blob.get(4 + len..).and_then(|rest| {
                        let n = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
                        rest.get(4..4 + n.min(32))
                    }) {
                        Some(curve) if !kind.ends_with(&*String::from_utf8_lossy(curve)) => {
                            format!(
                                "{} (on the curve {})",
                                inner,
                                String::from_utf8_lossy(curve)
                            )
                        }
                        _ => String::new(),
                    }
                }
                _ if inner != kind => inner.into_owned(),
                _ => String::new(),
            };
            if !inner.is_empty() {
                return KeyError::WrongType {
                    declared: kind,
                    inner: inner.chars().take(64).collect(),
                };
            }
        }
    }
    KeyError::Damaged(e.to_string())
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, as authorized_keys lines have it.
pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 with padding, strictly: `None` for anything [`encode_base64`] would not
/// have written.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let t = text.as_bytes();
    if t.is_empty() || t.len() % 4 != 0 {
        return None;
    }
    let value = |c: u8| BASE64.iter().position(|&x| x == c).map(|v| v as u32);
    let mut out = Vec::with_capacity(t.len() / 4 * 3);
    let last = t.len() / 4 - 1;
    for (i, q) in t.chunks(4).enumerate() {
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i != last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &q[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    (encode_base64(&out) == text).then_some(out)
}

/// A key's name made from its comment (`ada@laptop` gives `ada-laptop`): the characters a key
/// name may hold, the others replaced by `-`, at most 64; empty when nothing is left.
pub(crate) fn name_from_comment(comment: &str) -> String {
    let mut name = String::new();
    for c in comment.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let name = name.trim_matches(|c| c == '-' || c == '.');
    name.chars().take(64).collect::<String>()
}

/// The id of the key whose blob is `base64` (see the module's comment), or `None` when it is
/// not base64. What `forgelet ssh-keys` looks a key up by.
pub(crate) fn id_of_base64(base64: &str) -> Option<String> {
    use sha2::{Digest, Sha256};
    let blob = decode_base64(base64)?;
    Some(crate::fsfile::hex(&Sha256::digest(&blob)[..12]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("forgelet-keys-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A key made by ssh-keygen (`args` such as `["-t", "ed25519"]`): the .pub file's path.
    fn keygen(dir: &Path, file: &str, args: &[&str]) -> PathBuf {
        let path = dir.join(file);
        let out = Command::new("ssh-keygen")
            .args(args)
            .args(["-N", "", "-q", "-C", "ada@laptop", "-f"])
            .arg(&path)
            .output()
            .expect("ssh-keygen (openssh-client) runs");
        assert!(out.status.success(), "{out:?}");
        path.with_extension("pub")
    }

    /// What `ssh-keygen -lf` prints for the file, without the comment: `256 SHA256:... (ED25519)`.
    fn keygen_summary(pub_file: &Path) -> String {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(pub_file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let line = String::from_utf8(out.stdout).unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        format!("{} {} {}", words[0], words[1], words[words.len() - 1])
    }

    fn blob_of(kind: &str, parts: &[&[u8]]) -> String {
        let mut blob = Vec::new();
        for p in std::iter::once(kind.as_bytes()).chain(parts.iter().copied()) {
            blob.extend_from_slice(&(p.len() as u32).to_be_bytes());
            blob.extend_from_slice(p);
        }
        encode_base64(&blob)
    }

    #[test]
    fn keys_made_by_ssh_keygen_are_accepted_with_its_fingerprint_and_bits() {
        let d = scratch("keygen");
        let kinds: &[(&str, &[&str], &str)] = &[
            ("ed", &["-t", "ed25519"], "ssh-ed25519"),
            ("p256", &["-t", "ecdsa", "-b", "256"], "ecdsa-sha2-nistp256"),
            ("p384", &["-t", "ecdsa", "-b", "384"], "ecdsa-sha2-nistp384"),
            ("p521", &["-t", "ecdsa", "-b", "521"], "ecdsa-sha2-nistp521"),
            ("rsa2048", &["-t", "rsa", "-b", "2048"], "ssh-rsa"),
            ("rsa3072", &["-t", "rsa", "-b", "3072"], "ssh-rsa"),
        ];
        for (file, args, kind) in kinds {
            let pub_file = keygen(&d, file, args);
            let text = std::fs::read_to_string(&pub_file).unwrap();
            let k = parse(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(k.kind, *kind);
            assert_eq!(k.summary(), keygen_summary(&pub_file), "{file}");
            assert_eq!(k.comment, "ada@laptop");
            assert_eq!(k.line(), text.rsplit_once(' ').unwrap().0, "{file}");
            assert_eq!(k.id().len(), 24);
            assert_eq!(id_of_base64(&k.base64), Some(k.id()));
            // Surrounding blank space, a Windows line end, no comment: the same key.
            let again = parse(&format!("\n  {}\r\n", k.line())).unwrap();
            assert_eq!((again.id(), again.comment.as_str()), (k.id(), ""));
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn security_keys_are_accepted_with_ssh_keygens_fingerprint() {
        let d = scratch("sk");
        // Made by hand (ssh-keygen needs the device to make one, not to read one): a point
        // from a real key, and the application string such keys carry.
        let ed =
            parse(&std::fs::read_to_string(keygen(&d, "ed", &["-t", "ed25519"])).unwrap()).unwrap();
        let ed_blob = decode_base64(&ed.base64).unwrap();
        let ed_point = &ed_blob[ed_blob.len() - 32..];
        let p = parse(
            &std::fs::read_to_string(keygen(&d, "p", &["-t", "ecdsa", "-b", "256"])).unwrap(),
        )
        .unwrap();
        let p_blob = decode_base64(&p.base64).unwrap();
        let p_point = &p_blob[p_blob.len() - 65..];
        let cases = [
            (
                "sk-ssh-ed25519@openssh.com",
                blob_of("sk-ssh-ed25519@openssh.com", &[ed_point, b"ssh:"]),
            ),
            (
                "sk-ecdsa-sha2-nistp256@openssh.com",
                blob_of(
                    "sk-ecdsa-sha2-nistp256@openssh.com",
                    &[b"nistp256", p_point, b"ssh:"],
                ),
            ),
        ];
        for (kind, data) in cases {
            let file = d.join(format!("{}.pub", &kind[..8]));
            std::fs::write(&file, format!("{kind} {data} ada@yubikey\n")).unwrap();
            let k = parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
            assert_eq!(k.kind, kind);
            assert_eq!(k.summary(), keygen_summary(&file), "{kind}");
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn mistakes_are_refused_saying_what_to_do() {
        let d = scratch("refused");
        let ed_file = keygen(&d, "ed", &["-t", "ed25519"]);
        let ed = std::fs::read_to_string(&ed_file).unwrap();
        let ed = ed.trim();
        let private = std::fs::read_to_string(d.join("ed")).unwrap();
        let short =
            std::fs::read_to_string(keygen(&d, "rsa1024", &["-t", "rsa", "-b", "1024"])).unwrap();
        let dsa = std::fs::read_to_string(keygen(&d, "dsa", &["-t", "dsa"])).unwrap();
        let (kind, data) = ed.split_once(' ').unwrap();
        let data = data.split(' ').next().unwrap();
        let blob = decode_base64(data).unwrap();
        let p256 =
            std::fs::read_to_string(keygen(&d, "p256", &["-t", "ecdsa", "-b", "256"])).unwrap();
        let p256_data = p256.split(' ').nth(1).unwrap();
        let p384 =
            std::fs::read_to_string(keygen(&d, "p384", &["-t", "ecdsa", "-b", "384"])).unwrap();
        let p384_data = p384.split(' ').nth(1).unwrap();
        let mut trailing = blob.clone();
        trailing.push(0);
        let cases: Vec<(String, KeyError, &str)> = vec![
            ("".into(), KeyError::Empty, "paste the contents"),
            (" \n\t".into(), KeyError::Empty, "public key file"),
            (
                "x".repeat(MAX_INPUT + 1),
                KeyError::TooLong(MAX_INPUT + 1),
                "only the contents",
            ),
            (private.clone(), KeyError::PrivateKey, "the .pub file"),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----".into(),
                KeyError::PrivateKey,
                "private key",
            ),
            (
                "---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n---- END SSH2 PUBLIC KEY ----".into(),
                KeyError::Rfc4716,
                "ssh-keygen -i",
            ),
            (
                format!("command=\"ls\" {ed}"),
                KeyError::Options("command=\"ls\"".into()),
                "authorized_keys options",
            ),
            (
                format!("restrict {ed}"),
                KeyError::Options("restrict".into()),
                "command= or restrict",
            ),
            (
                format!("no-pty,restrict,from=\"10.0.0.1\" {ed}"),
                KeyError::Options("no-pty,restrict,from=\"10.0.0.1\"".into()),
                "before the key type",
            ),
            (
                "restrict AAAAC3NzaC1lZDI1NTE5".into(),
                KeyError::Options("restrict".into()),
                "remove",
            ),
            ("# ada's laptop".into(), KeyError::CommentOnly, "comment"),
            (
                format!("{ed}\n{ed}"),
                KeyError::Several(2),
                "one key at a time",
            ),
            (
                format!("{ed} {ed}"),
                KeyError::Several(2),
                "one key at a time",
            ),
            (
                format!("{kind} {}\n{}", &data[..30], &data[30..]),
                KeyError::SplitLines,
                "one line",
            ),
            (dsa, KeyError::Dsa, "ssh-keygen -t ed25519"),
            (short, KeyError::ShortRsa(1024), "at least 2048"),
            (
                format!("ssh-ed25519-cert-v01@openssh.com {data}"),
                KeyError::Certificate("ssh-ed25519-cert-v01@openssh.com".into()),
                "certificate",
            ),
            (
                format!("ssh-foo {data}"),
                KeyError::UnknownType("ssh-foo".into()),
                "ssh-ed25519, ecdsa",
            ),
            (
                "AAAAC3NzaC1lZDI1NTE5AAAAI".into(),
                KeyError::UnknownType("AAAAC3NzaC1lZDI1NTE5AAAAI".into()),
                "starts with its type",
            ),
            (
                "ssh-ed25519".into(),
                KeyError::NoData("ssh-ed25519"),
                "not followed by the key",
            ),
            (
                format!("{kind} {}!", &data[..data.len() - 1]),
                KeyError::NotBase64,
                "base64",
            ),
            (
                format!("{kind} {}", &data[..data.len() - 2]),
                KeyError::NotBase64,
                "cut",
            ),
            (
                format!("{kind} {}", encode_base64(&trailing)),
                KeyError::Damaged("unexpected trailing data at end of message (1 bytes)".into()),
                "damaged",
            ),
            (
                format!("{kind} {}", encode_base64(&blob[..blob.len() - 3])),
                KeyError::Damaged("unexpected end of data".into()),
                "incomplete",
            ),
            (
                format!("ssh-rsa {data}"),
                KeyError::WrongType {
                    declared: "ssh-rsa",
                    inner: "ssh-ed25519".into(),
                },
                "holds a ssh-ed25519 key",
            ),
            (
                format!("ecdsa-sha2-nistp256 {p384_data}"),
                KeyError::WrongType {
                    declared: "ecdsa-sha2-nistp256",
                    inner: "ecdsa-sha2-nistp384".into(),
                },
                "nistp384",
            ),
        ];
        for (text, want, words) in cases {
            let got = parse(&text).unwrap_err();
            if let (KeyError::Damaged(_), KeyError::Damaged(_)) = (&got, &want) {
            } else {
                assert_eq!(got, want, "{text:?}");
            }
            assert!(got.to_string().contains(words), "{text:?}: {got}");
        }
        // A nistp256 key whose inner curve name says nistp384.
        let mut b = decode_base64(p256_data).unwrap();
        let at = b.windows(8).rposition(|w| w == b"nistp256").unwrap();
        b[at..at + 8].copy_from_slice(b"nistp384");
        let e = parse(&format!("ecdsa-sha2-nistp256 {}", encode_base64(&b))).unwrap_err();
        assert!(
            matches!(&e, KeyError::WrongType { inner, .. } if inner.contains("curve nistp384")),
            "{e:?}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn names_come_from_comments() {
        assert_eq!(name_from_comment("ada@laptop"), "ada-laptop");
        assert_eq!(name_from_comment("work key (2024)"), "work-key-2024");
        assert_eq!(name_from_comment(" @@ "), "");
        assert_eq!(name_from_comment("..x.."), "x");
        assert_eq!(name_from_comment(&"a".repeat(100)).len(), 64);
    }

    #[test]
    fn base64_is_strict() {
        for bytes in [&b""[..], b"a", b"ab", b"abc", b"abcd", &[0xff, 0, 0xfe]] {
            let t = encode_base64(bytes);
            if !bytes.is_empty() {
                assert_eq!(decode_base64(&t).as_deref(), Some(bytes), "{t}");
            }
        }
        assert_eq!(encode_base64(b"ab"), "YWI=");
        // Also doctor's HTTP Basic credentials.
        assert_eq!(encode_base64(b"f"), "Zg==");
        assert_eq!(encode_base64(b"alice:flt_0"), "YWxpY2U6Zmx0XzA=");
        for bad in [
            "", "YWI", "YW==", "YWJ=", "Y===", "YW=I", "YWI=YWI=", "YWI*",
        ] {
            assert_eq!(decode_base64(bad), None, "{bad}");
        }
    }
}
