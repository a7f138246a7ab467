//! ISO-8601 durations as Azure writes them (`PT30M`, `P1DT2H`) and the spec's seconds.

/// Seconds in an ISO-8601 duration (`PT30M`, `PT1H30M`, `P1DT2H`, `PT0.5S`), as Azure
/// writes `nodeIdleTimeBeforeScaleDown`. Also accepts a time span `00:30:00`.
pub fn iso8601_seconds(text: &str) -> Option<u64> {
    if let Some(rest) = text.strip_prefix('P') {
        let (days_part, time_part) = match rest.split_once('T') {
            Some((d, t)) => (d, Some(t)),
            None => (rest, None),
        };
        let mut total = 0f64;
        let mut add = |part: &str, units: &[(char, f64)]| -> Option<()> {
            let mut number = String::new();
            for c in part.chars() {
                if c.is_ascii_digit() || c == '.' {
                    number.push(c);
                } else {
                    let scale = units.iter().find(|(u, _)| *u == c)?.1;
                    total += number.parse::<f64>().ok()? * scale;
                    number.clear();
                }
            }
            number.is_empty().then_some(())
        };
        add(
            days_part,
            &[('Y', 365.0 * 86400.0), ('W', 7.0 * 86400.0), ('D', 86400.0)],
        )?;
        if let Some(time) = time_part {
            add(time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
        }
        return Some(total.round() as u64);
    }
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() == 3 {
        let h: u64 = parts[0].parse().ok()?;
        let m: u64 = parts[1].parse().ok()?;
        let s: f64 = parts[2].parse().ok()?;
        return Some(h * 3600 + m * 60 + s.round() as u64);
    }
    None
}

/// Seconds as the ISO-8601 duration Azure expects: `PT30M`, `PT2H`, `PT90S`.
pub fn seconds_to_iso8601(seconds: u64) -> String {
    if seconds == 0 {
        return "PT0S".into();
    }
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    let mut out = String::from("PT");
    if h > 0 {
        out.push_str(&format!("{h}H"));
    }
    if m > 0 {
        out.push_str(&format!("{m}M"));
    }
    if s > 0 {
        out.push_str(&format!("{s}S"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (text, seconds) in [
            ("PT30M", 1800),
            ("PT120S", 120),
            ("PT1H30M", 5400),
            ("P1DT1S", 86401),
            ("PT0.5S", 1),
            ("00:30:00", 1800),
        ] {
            assert_eq!(iso8601_seconds(text), Some(seconds), "{text}");
        }
        assert_eq!(iso8601_seconds("soon"), None);
        assert_eq!(iso8601_seconds("PT5X"), None);
        for seconds in [0, 59, 60, 1800, 3600, 5400, 3661] {
            assert_eq!(iso8601_seconds(&seconds_to_iso8601(seconds)), Some(seconds));
        }
        assert_eq!(seconds_to_iso8601(1800), "PT30M");
    }
}
