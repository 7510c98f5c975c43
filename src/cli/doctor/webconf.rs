//! What doctor cannot see from outside, read from the web server's config file when it is given
//! one (`--nginx-conf PATH`, `--apache-conf PATH`): how long the web server waits for forgelet
//! (git can be silent for minutes), and whether it holds git's answers back.

use std::path::Path;

/// The web server's timeouts toward forgelet must be at least this long: forgelet's own
/// `[server] timeout` default, and what the shipped configs set.
pub(super) const MIN_TIMEOUT_SECS: u64 = 300;

/// A verdict on one aspect of a config file: fine (what was found), or a problem and its fix.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Ok(String),
    Warning(String),
    Failed(String),
}

/// One nginx directive: its name and arguments, with the line it starts on.
struct Directive {
    line: usize,
    name: String,
    args: Vec<String>,
}

/// The directives of an nginx config (comments dropped, quotes removed; blocks flattened).
fn nginx_directives(text: &str) -> Vec<Directive> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut line = 1;
    let mut start_line = 1;
    let mut chars = text.chars().peekable();
    let end_word = |word: &mut String, words: &mut Vec<String>| {
        if !word.is_empty() {
            words.push(std::mem::take(word));
        }
    };
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        }
        if let Some(q) = quote {
            if c == q {
                quote = None;
                words.push(std::mem::take(&mut word));
            } else if c == '\\' {
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            } else {
                word.push(c);
            }
            continue;
        }
        match c {
            '#' => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        line += 1;
                        break;
                    }
                }
                end_word(&mut word, &mut words);
            }
            '"' | '\'' => {
                if words.is_empty() && word.is_empty() {
                    start_line = line;
                }
                quote = Some(c);
            }
            ';' | '{' | '}' => {
                end_word(&mut word, &mut words);
                if !words.is_empty() {
                    let name = words.remove(0);
                    out.push(Directive {
                        line: start_line,
                        name,
                        args: std::mem::take(&mut words),
                    });
                }
            }
            c if c.is_whitespace() => end_word(&mut word, &mut words),
            c => {
                if words.is_empty() && word.is_empty() {
                    start_line = line;
                }
                word.push(c);
            }
        }
    }
    out
}

/// An nginx time (`300`, `300s`, `5m`, `1h`, `1m30s`, `500ms`) in seconds, rounded down.
fn nginx_seconds(text: &str) -> Option<u64> {
    let mut total_ms: u64 = 0;
    let mut digits = String::new();
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        let unit_ms = match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            'w' => 604_800_000,
            'M' => 2_592_000_000,
            'y' => 31_536_000_000,
            _ => return None,
        };
        total_ms += n * unit_ms;
        any = true;
    }
    if !digits.is_empty() {
        total_ms += digits.parse::<u64>().ok()? * 1_000;
        any = true;
    }
    any.then_some(total_ms / 1_000)
}

/// nginx: `fastcgi_read_timeout` and `fastcgi_send_timeout` (each at least
/// [`MIN_TIMEOUT_SECS`] wherever set, and set somewhere: nginx's default is 60 s).
pub(super) fn nginx_timeouts(path: &Path, text: &str) -> Verdict {
    let dirs = nginx_directives(text);
    let mut found = Vec::new();
    for name in ["fastcgi_read_timeout", "fastcgi_send_timeout"] {
        let set: Vec<&Directive> = dirs.iter().filter(|d| d.name == name).collect();
        if set.is_empty() {
            return Verdict::Failed(format!(
                "{name} is not set in {}, so nginx's default of 60 s applies and cuts off git when it is silent longer (counting objects of a large repository, a slow push): add `{name} {MIN_TIMEOUT_SECS}s;` in forgelet's `location ^~ BASE/` block",
                path.display()
            ));
        }
        for d in set {
            let secs = d.args.first().and_then(|a| nginx_seconds(a));
            match secs {
                Some(s) if s >= MIN_TIMEOUT_SECS => found.push(format!("{name} {s}s")),
                _ => {
                    return Verdict::Failed(format!(
                        "{}:{}: `{name} {}` is shorter than {MIN_TIMEOUT_SECS} s: git can be silent that long (counting objects of a large repository, a slow push), and nginx would cut it off; set `{name} {MIN_TIMEOUT_SECS}s;`",
                        path.display(),
                        d.line,
                        d.args.join(" ")
                    ))
                }
            }
        }
    }
    found.dedup();
    Verdict::Ok(format!("{} in {}", found.join(", "), path.display()))
}

/// nginx: git's answers stream unless the config makes nginx ignore forgelet's
/// `X-Accel-Buffering: no` (`fastcgi_ignore_headers`).
pub(super) fn nginx_buffering(path: &Path, text: &str) -> Verdict {
    for d in nginx_directives(text) {
        if d.name == "fastcgi_ignore_headers"
            && d.args
                .iter()
                .any(|a| a.eq_ignore_ascii_case("X-Accel-Buffering"))
        {
            return Verdict::Failed(format!(
                "{}:{}: `fastcgi_ignore_headers ... X-Accel-Buffering` makes nginx hold back git's answers (progress, keepalives) that forgelet asks it to stream: remove X-Accel-Buffering from that line",
                path.display(),
                d.line
            ));
        }
    }
    Verdict::Ok(format!(
        "{} leaves forgelet's X-Accel-Buffering: no in force, so git's answers stream",
        path.display()
    ))
}

/// The lines of an Apache config that are not comments, with their numbers.
fn apache_lines(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines().enumerate().filter_map(|(i, l)| {
        let l = l.trim();
        (!l.is_empty() && !l.starts_with('#'))
            .then(|| (i + 1, l.split_whitespace().collect::<Vec<&str>>()))
    })
}

/// Whether the Apache config runs forgelet as a CGI program (no FastCGI connection to time).
fn apache_is_cgi(text: &str) -> bool {
    !text.contains("proxy:") && apache_lines(text).any(|(_, w)| w[0] == "ScriptAlias")
}

/// Apache: the FastCGI connection's timeout (`ProxySet timeout=`, else `ProxyTimeout`, else
/// `Timeout`); for the CGI config, `CGIDScriptTimeout` or `Timeout`.
pub(super) fn apache_timeouts(path: &Path, text: &str) -> Verdict {
    let p = path.display();
    let cgi = apache_is_cgi(text);
    let mut candidates: Vec<(usize, String, Option<u64>)> = Vec::new();
    for (line, words) in apache_lines(text) {
        let name = words[0];
        if name.eq_ignore_ascii_case("ProxySet") && !cgi {
            for w in &words[1..] {
                if let Some(v) = w.to_ascii_lowercase().strip_prefix("timeout=") {
                    candidates.push((line, "ProxySet timeout".into(), v.parse().ok()));
                }
            }
        }
        let named = if cgi {
            ["CGIDScriptTimeout", "Timeout"].as_slice()
        } else {
            ["ProxyTimeout", "Timeout"].as_slice()
        };
        if named.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            candidates.push((
                line,
                name.to_string(),
                words.get(1).and_then(|v| v.parse().ok()),
            ));
        }
    }
    // The most specific setting wins: ProxySet over ProxyTimeout over Timeout.
    let order = [
        "ProxySet timeout",
        "ProxyTimeout",
        "CGIDScriptTimeout",
        "Timeout",
    ];
    candidates.sort_by_key(|(_, n, _)| {
        order
            .iter()
            .position(|o| o.eq_ignore_ascii_case(n))
            .unwrap_or(order.len())
    });
    let fix = if cgi {
        format!("add `CGIDScriptTimeout {MIN_TIMEOUT_SECS}` to {p}")
    } else {
        format!(
            "set `ProxySet timeout={MIN_TIMEOUT_SECS}` inside <Proxy \"fcgi://forgelet/\"> in {p}"
        )
    };
    match candidates.first() {
        None => Verdict::Warning(format!(
            "{p} sets no timeout for forgelet, so Apache's Timeout applies (60 s unless your main config raises it), and git silent longer (counting objects of a large repository, a slow push) is cut off: {fix}"
        )),
        Some((_, name, Some(s))) if *s >= MIN_TIMEOUT_SECS => {
            Verdict::Ok(format!("{name} {s} s in {p}"))
        }
        Some((line, name, value)) => Verdict::Failed(format!(
            "{p}:{line}: {name} is {} (under {MIN_TIMEOUT_SECS} s): git can be silent that long (counting objects of a large repository, a slow push), and Apache would cut it off: {fix}",
            value.map_or("not a number of seconds".to_string(), |v| format!("{v} s"))
        )),
    }
}

/// Apache: mod_proxy_fcgi holds forgelet's answer back in its buffer unless
/// `flushpackets=on`; a CGI program's output is passed on as it comes.
pub(super) fn apache_buffering(path: &Path, text: &str) -> Verdict {
    let p = path.display();
    if apache_is_cgi(text) {
        return Verdict::Ok(format!(
            "{p} runs forgelet as CGI, whose output Apache passes on as it comes"
        ));
    }
    let flush = apache_lines(text).any(|(_, w)| {
        w[0].eq_ignore_ascii_case("ProxySet")
            && w[1..]
                .iter()
                .any(|a| a.eq_ignore_ascii_case("flushpackets=on"))
    });
    if flush {
        Verdict::Ok(format!(
            "ProxySet flushpackets=on in {p}: git's answers stream"
        ))
    } else {
        Verdict::Warning(format!(
            "{p} does not set flushpackets=on, so mod_proxy_fcgi holds back git's progress and keepalives until its buffer fills (a long clone looks stuck, and proxies may time out): `ProxySet timeout={MIN_TIMEOUT_SECS} flushpackets=on` inside <Proxy \"fcgi://forgelet/\">"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_times_are_read_with_their_units() {
        assert_eq!(nginx_seconds("300"), Some(300));
        assert_eq!(nginx_seconds("300s"), Some(300));
        assert_eq!(nginx_seconds("5m"), Some(300));
        assert_eq!(nginx_seconds("1m30s"), Some(90));
        assert_eq!(nginx_seconds("1h"), Some(3600));
        assert_eq!(nginx_seconds("500ms"), Some(0));
        assert_eq!(nginx_seconds("x"), None);
        assert_eq!(nginx_seconds(""), None);
    }

    #[test]
    fn the_shipped_configs_pass() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let nginx = root.join("nginx/forgelet.conf");
        let text = std::fs::read_to_string(&nginx).unwrap();
        assert!(matches!(nginx_timeouts(&nginx, &text), Verdict::Ok(_)));
        assert!(matches!(nginx_buffering(&nginx, &text), Verdict::Ok(_)));
        let fcgi = root.join("deploy/apache/forgelet-fcgi.conf");
        let text = std::fs::read_to_string(&fcgi).unwrap();
        assert!(matches!(apache_timeouts(&fcgi, &text), Verdict::Ok(_)));
        assert!(matches!(apache_buffering(&fcgi, &text), Verdict::Ok(_)));
        // The CGI config leaves the time a CGI program may be silent to Apache's Timeout,
        // which lives in the main config.
        let cgi = root.join("deploy/apache/forgelet-cgi.conf");
        let text = std::fs::read_to_string(&cgi).unwrap();
        assert!(matches!(apache_buffering(&cgi, &text), Verdict::Ok(_)));
        assert!(matches!(apache_timeouts(&cgi, &text), Verdict::Warning(_)));
    }

    #[test]
    fn short_or_missing_timeouts_are_named_with_their_line() {
        let p = Path::new("/etc/nginx/snippets/forgelet.conf");
        let text = "location ^~ /git/ {\n  # fastcgi_read_timeout 900s;\n  fastcgi_read_timeout 60s;\n  fastcgi_send_timeout 300s;\n}\n";
        let Verdict::Failed(m) = nginx_timeouts(p, text) else {
            panic!()
        };
        assert!(
            m.contains("forgelet.conf:3: `fastcgi_read_timeout 60s`"),
            "{m}"
        );
        let Verdict::Failed(m) = nginx_timeouts(p, "location / { fastcgi_read_timeout 300; }")
        else {
            panic!()
        };
        assert!(m.contains("fastcgi_send_timeout is not set"), "{m}");
        let Verdict::Failed(m) = nginx_buffering(p, "fastcgi_ignore_headers X-Accel-Buffering;")
        else {
            panic!()
        };
        assert!(m.contains("X-Accel-Buffering"), "{m}");

        let a = Path::new("/etc/apache2/conf-available/forgelet.conf");
        let fcgi = "<Proxy \"fcgi://forgelet/\">\n    ProxySet timeout=30\n</Proxy>\nSetHandler \"proxy:unix:/s|fcgi://forgelet/\"\n";
        let Verdict::Failed(m) = apache_timeouts(a, fcgi) else {
            panic!()
        };
        assert!(
            m.contains("forgelet.conf:2: ProxySet timeout is 30 s"),
            "{m}"
        );
        assert!(matches!(
            apache_timeouts(a, "SetHandler \"proxy:unix:/s|fcgi://forgelet/\"\n"),
            Verdict::Warning(_)
        ));
        assert!(matches!(apache_buffering(a, fcgi), Verdict::Warning(_)));
    }
}
