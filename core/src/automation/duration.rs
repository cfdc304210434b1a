//! aws:sleep's `Duration` (ISO 8601, e.g. `PT10M`, `P1DT2H`) and
//! `Timestamp` (`2030-01-01T00:00:00Z`).
//!
//! The duration grammar is one line of ISO 8601 (`PnW` or
//! `PnDTnHnMnS`, years and months refused since their length varies);
//! written here rather than pulling a date-time parser in for it.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// SSM's longest sleep: seven days.
pub const MAX_SLEEP_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

/// Seconds in `text`, an ISO 8601 duration of at most seven days.
pub fn parse_iso8601(text: &str) -> Result<f64, String> {
    let bad = || {
        format!(
            "Duration {text} is not an ISO 8601 duration such as PT10M, PT30S or P1DT2H (weeks, days, hours, minutes, seconds)."
        )
    };
    let rest = text.strip_prefix('P').ok_or_else(bad)?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return Err(bad()),
        None => (rest, None),
    };
    let mut total = 0.0;
    let mut any = false;
    let mut add = |part: &str, units: &[(char, f64)]| -> Result<(), String> {
        let mut number = String::new();
        let mut next_unit = 0;
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                number.push(c);
                continue;
            }
            let i = units[next_unit..]
                .iter()
                .position(|(u, _)| *u == c)
                .ok_or_else(bad)?;
            let n: f64 = number.parse().map_err(|_| bad())?;
            total += n * units[next_unit + i].1;
            next_unit += i + 1;
            number.clear();
            any = true;
        }
        if number.is_empty() {
            Ok(())
        } else {
            Err(bad())
        }
    };
    add(date, &[('W', 604_800.0), ('D', 86_400.0)])?;
    if let Some(t) = time {
        add(t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    if !any {
        return Err(bad());
    }
    if total > MAX_SLEEP_SECONDS {
        return Err(format!(
            "Duration {text} is longer than seven days, the longest sleep."
        ));
    }
    Ok(total)
}

/// Epoch seconds of an RFC 3339 `Timestamp`.
pub fn parse_timestamp(text: &str) -> Result<f64, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|t| t.unix_timestamp_nanos() as f64 / 1e9)
        .map_err(|_| {
            format!("Timestamp {text} is not an ISO 8601 time such as 2030-01-01T00:00:00Z.")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_each_unit_add_up() {
        assert_eq!(parse_iso8601("PT10M"), Ok(600.0));
        assert_eq!(parse_iso8601("PT1.5S"), Ok(1.5));
        assert_eq!(
            parse_iso8601("P1DT2H3M4S"),
            Ok(86_400.0 + 7200.0 + 180.0 + 4.0)
        );
        assert_eq!(parse_iso8601("P1W"), Ok(604_800.0));
    }

    #[test]
    fn malformed_or_too_long_durations_are_refused() {
        for bad in [
            "", "P", "PT", "10M", "PT10", "PTM", "P1M", "P1Y", "PT1S2M", "PT1H1H", "P8D", "PT-1S",
        ] {
            assert!(parse_iso8601(bad).is_err(), "{bad} was accepted");
        }
        assert!(parse_iso8601("P8D").unwrap_err().contains("seven days"));
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(parse_timestamp("1970-01-01T00:01:00Z"), Ok(60.0));
        assert!(parse_timestamp("tomorrow").is_err());
    }
}
