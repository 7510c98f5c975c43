//! Form bodies (`application/x-www-form-urlencoded`), decoded into fields.

/// Decodes an `application/x-www-form-urlencoded` body into its fields. Values are decoded
/// whole: a textarea's newlines, a backslash in a password are the user's text, and each
/// field's own check (a name, a description, a key) decides what it accepts. A field that is
/// not valid percent-encoding or UTF-8 is left out.
pub(crate) fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    body.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = match p.iter().position(|&b| b == b'=') {
                Some(i) => (&p[..i], &p[i + 1..]),
                None => (p, &b""[..]),
            };
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

/// One name or value: `+` is a space, `%XX` a byte, and the bytes UTF-8.
fn decode(raw: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = raw.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

pub(crate) fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_decode() {
        let f = form_fields(b"user=al%69ce&password=a+b%26c&csrf=x&empty=");
        assert_eq!(field(&f, "user"), Some("alice"));
        assert_eq!(field(&f, "password"), Some("a b&c"));
        assert_eq!(field(&f, "empty"), Some(""));
        assert_eq!(field(&f, "missing"), None);
    }

    /// A key pasted from a .pub file ends with a newline, and a password may hold a backslash:
    /// both were dropped whole, as if the field had not been sent (the URL decoder, which
    /// refuses control characters and backslashes in paths, decoded forms too).
    #[test]
    fn values_keep_newlines_and_backslashes() {
        let f = form_fields(b"key=ssh-ed25519+AAAA+me%40laptop%0A&password=a%5Cb&bad=%ZZ&x=%C3%A9");
        assert_eq!(field(&f, "key"), Some("ssh-ed25519 AAAA me@laptop\n"));
        assert_eq!(field(&f, "password"), Some("a\\b"));
        assert_eq!(field(&f, "bad"), None);
        assert_eq!(field(&f, "x"), Some("é"));
        assert_eq!(field(&form_fields(b"u=%FF"), "u"), None);
    }
}
