//! When a cached access token is renewed: reading the service's `expiredAt`, and judging the
//! token's age by the lifetime the service granted, measured on this machine's monotonic
//! clock from when the token arrived — not by comparing `expiredAt` with a wall clock that
//! may disagree with the service's (SPEC.md, "Obtain an access token").

use std::time::Duration;

/// The service's zone (China Standard Time), which an `expiredAt` without an offset means.
const SERVICE_OFFSET_S: i64 = 8 * 3600;
/// Lifetime assumed when it cannot be known (no readable `expiredAt`, or one that the clocks
/// put in the past): the service's tokens last about 30 days. Renewal then comes from a 401.
pub(crate) const ASSUMED_LIFETIME: Duration = Duration::from_secs(30 * 86_400);
/// Renew this long before expiry at most (a tenth of the lifetime when that is shorter).
const MAX_RENEW_MARGIN: Duration = Duration::from_secs(300);
/// A cached token is kept at least this long, whatever the clocks say: without it a clock
/// that disagrees would fetch a token per call, and the service refuses a fourth live one.
/// Only a 401 "invalid token" renews sooner.
pub(crate) const MIN_TOKEN_AGE: Duration = Duration::from_secs(60);

/// How long after its arrival a token is renewed. `expires_at` is `expiredAt` (Unix seconds,
/// when readable); `server_now` the answer's `Date` (Unix seconds, when sent); `local_now`
/// this machine's clock at arrival. The granted lifetime is `expires_at - server_now`, or
/// `expires_at - local_now` without a `Date`.
pub(crate) fn renew_after(
    expires_at: Option<i64>,
    server_now: Option<i64>,
    local_now: i64,
) -> Duration {
    let granted = expires_at
        .map(|exp| exp.saturating_sub(server_now.unwrap_or(local_now)))
        .filter(|s| *s > 0)
        .map_or(ASSUMED_LIFETIME, |s| Duration::from_secs(s as u64));
    let margin = (granted / 10).min(MAX_RENEW_MARGIN);
    granted.saturating_sub(margin).max(MIN_TOKEN_AGE)
}

/// Reads `expiredAt` to Unix seconds, in the forms the service and its peers were seen to
/// send: RFC 3339 (`2025-03-23T15:48:37+08:00`, `...Z`, with a fraction), the offset without
/// a colon (`+0800`), a space for the `T`, and no offset at all, which means the service's
/// zone (+08:00).
pub(crate) fn parse_expired_at(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[13] != b':' || b[16] != b':' || !(1..=12).contains(&mo) || d < 1 {
        return None;
    }
    if d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix(['.', ',']) {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest.trim_start() {
        "" => SERVICE_OFFSET_S,
        "Z" | "z" => 0,
        // Offsets are ASCII: anything else is not one (and would not slice at a byte).
        o if !o.is_ascii() => return None,
        o => {
            let sign = match o.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let o = &o[1..];
            let (oh, om) = match o.len() {
                5 if o.as_bytes()[2] == b':' => (&o[..2], &o[3..]),
                4 => (&o[..2], &o[2..]),
                2 => (o, "00"),
                _ => return None,
            };
            if !(oh.bytes().chain(om.bytes())).all(|c| c.is_ascii_digit()) {
                return None;
            }
            let (oh, om): (i64, i64) = (oh.parse().ok()?, om.parse().ok()?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_at_in_every_form_seen() {
        let want = Some(1_742_716_117);
        for s in [
            "2025-03-23T15:48:37+08:00",
            "2025-03-23T15:48:37+0800",
            "2025-03-23T15:48:37+08",
            "2025-03-23T07:48:37Z",
            "2025-03-23T07:48:37.123Z",
            "2025-03-23T15:48:37.5+08:00",
            "2025-03-23 15:48:37",
            "2025-03-23T15:48:37",
            " 2025-03-23T15:48:37 +0800 ",
        ] {
            assert_eq!(parse_expired_at(s), want, "{s}");
        }
        assert_eq!(parse_expired_at("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_expired_at("2000-02-29T00:00:00-01:30"),
            Some(951_787_800)
        );
        for bad in [
            "",
            "2025-03-23",
            "2025-13-01T00:00:00Z",
            "2025-02-30T00:00:00Z",
            "2025-03-23T15:48:37+8",
            "2025-03-23T15:48:37+08:00:00",
            "2025-03-23T15:48:37 PST",
            "x025-03-23T15:48:37Z",
            "2025-03-23T15:48:37.Z",
            "2025-03-23T15:48:37.12128888-3\u{4ec}2",
        ] {
            assert_eq!(parse_expired_at(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_lifetime_is_the_one_granted_whatever_the_clocks_say() {
        let day = 86_400;
        let server = 1_000_000_000;
        // The machine's clock 31 days ahead: by it the token expired a day ago.
        let ahead = server + 31 * day;
        let got = renew_after(Some(server + 30 * day), Some(server), ahead);
        assert_eq!(got, Duration::from_secs(30 * day as u64 - 300));
        // Without the service's Date, the floor keeps the token for a minute at least.
        assert_eq!(
            renew_after(Some(server + 30 * day), None, ahead),
            ASSUMED_LIFETIME - MAX_RENEW_MARGIN
        );
        assert_eq!(renew_after(Some(server + 30), None, server), MIN_TOKEN_AGE);
        assert_eq!(
            renew_after(None, None, server),
            ASSUMED_LIFETIME - MAX_RENEW_MARGIN
        );
        assert_eq!(
            renew_after(Some(server + 1000), Some(server), server),
            Duration::from_secs(900)
        );
    }
}
