//! Time as forgelet shows and stores it: seconds since the Unix epoch, and civil dates.

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The civil date and time of `unix` seen at `offset_minutes` from UTC:
/// `(year, month, day, hour, minute, second)`.
fn civil(unix: i64, offset_minutes: i32) -> (i64, i64, i64, i64, i64, i64) {
    let t = unix + i64::from(offset_minutes) * 60;
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, secs / 3600, secs % 3600 / 60, secs % 60)
}

/// `YYYY-MM-DD HH:MM` in the author's own time zone.
pub(crate) fn date(unix: i64, offset_minutes: i32) -> String {
    let (y, m, d, h, mi, _) = civil(unix, offset_minutes);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}")
}

/// A moment as a page shows it: `text` is the exact time in the zone it was recorded in, with
/// that zone (`2024-03-09 18:00 +0200`), shown as it is and on hover; `iso` is the same moment
/// for `<time datetime>` (RFC 3339), which the page's script shows as "3 days ago" (a page kept
/// in the cache never goes stale that way, and reads the same without the script).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) text: String,
    pub(crate) iso: String,
}

pub(crate) fn stamp(unix: i64, offset_minutes: i32) -> Stamp {
    let (y, m, d, h, mi, s) = civil(unix, offset_minutes);
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let (oh, om) = (offset_minutes.abs() / 60, offset_minutes.abs() % 60);
    Stamp {
        text: format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02} {sign}{oh:02}{om:02}"),
        iso: format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}{sign}{oh:02}:{om:02}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{date, stamp};

    #[test]
    fn dates() {
        assert_eq!(date(0, 0), "1970-01-01 00:00");
        assert_eq!(date(1_710_000_000, 0), "2024-03-09 16:00");
        assert_eq!(date(1_710_000_000, 120), "2024-03-09 18:00");
        assert_eq!(date(951_782_400, 0), "2000-02-29 00:00");
        assert_eq!(date(-86_400, 0), "1969-12-31 00:00");
    }

    #[test]
    fn stamps_carry_their_zone() {
        let s = stamp(1_710_000_000, 120);
        assert_eq!(s.text, "2024-03-09 18:00 +0200");
        assert_eq!(s.iso, "2024-03-09T18:00:00+02:00");
        let s = stamp(1_710_000_007, -330);
        assert_eq!(s.text, "2024-03-09 10:30 -0530");
        assert_eq!(s.iso, "2024-03-09T10:30:07-05:30");
    }
}
