//! Form bodies (`application/x-www-form-urlencoded`), decoded into fields.

use crate::request::percent_decode;

/// Decodes an `application/x-www-form-urlencoded` body into its fields.
pub(crate) fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body).replace('+', " ");
    text.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((
                percent_decode(k.as_bytes()).ok()?,
                percent_decode(v.as_bytes()).ok()?,
            ))
        })
        .collect()
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
}
