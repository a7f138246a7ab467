//! Small helpers shared by the emulator's handlers: time formats, query strings, ids.

use time::OffsetDateTime;
use time::format_description::well_known::{Rfc2822, Rfc3339};

/// RFC 3339 with a `Z` suffix and at most 7 fractional digits, as ARM writes it.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7]Z"
        ))
        .unwrap_or_default()
}

/// HTTP date (`Tue, 01 Jan 2030 00:00:00 GMT`) for Last-Modified and Date headers.
pub(crate) fn http_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let s = t.format(&Rfc2822).unwrap_or_default();
    // Rfc2822 renders "+0000"; HTTP wants "GMT".
    s.trim_end_matches("+0000").trim_end().to_string() + " GMT"
}

pub(crate) fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Decoded query pairs in request order; keys keep their case.
pub(crate) fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// First value of a query parameter, matched case-insensitively as ARM does.
pub(crate) fn query_get<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

pub(crate) fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Encodes a query value the way ARM nextLinks and SAS URLs need it.
pub(crate) fn encode_query_value(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Parses an ISO 8601 duration such as `PT5M`, `PT1H30M`, `P1DT2S` into seconds.
pub(crate) fn iso8601_seconds(s: &str) -> Option<u64> {
    let rest = s.strip_prefix('P')?;
    let (date, time_part) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total = 0u64;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, u64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() {
                num.push(c);
            } else {
                let mult = units.iter().find(|(u, _)| *u == c)?.1;
                total += num.parse::<u64>().ok()? * mult;
                num.clear();
                any = true;
            }
        }
        num.is_empty().then_some(())
    };
    take(date, &[('W', 604_800), ('D', 86_400)])?;
    if let Some(t) = time_part {
        if t.is_empty() {
            return None;
        }
        take(t, &[('H', 3600), ('M', 60), ('S', 1)])?;
    }
    any.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("PT5M", Some(300)),
            ("PT120S", Some(120)),
            ("PT1H30M", Some(5400)),
            ("P1DT2S", Some(86_402)),
            ("P1W", Some(604_800)),
            ("5M", None),
            ("PT", None),
            ("PT5X", None),
            ("P", None),
        ];
        for (s, want) in cases {
            assert_eq!(iso8601_seconds(s), want, "{s}");
        }
    }

    #[test]
    fn http_dates() {
        let t = time::macros::datetime!(2030-01-01 00:00:00 UTC);
        assert_eq!(http_date(t), "Tue, 01 Jan 2030 00:00:00 GMT");
    }
}
