//! Time as SSM's wire format carries it: epoch seconds (fractional) in JSON
//! timestamps, ISO 8601 strings in GetCommandInvocation and events, Java-style
//! durations for `ExecutionElapsedTime`. Shared by every area.

use std::time::{SystemTime, UNIX_EPOCH};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

/// Seconds since the epoch, with millisecond precision as SSM reports them.
pub fn now_epoch() -> f64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_millis() as f64) / 1000.0
}

use crate::error::SsmError;

/// `2017-06-07T00:00:00Z` (or `2017-06-07`, or with a fraction / offset) as
/// epoch seconds, for the InvokedAfter / InvokedBefore filters.
pub fn parse_filter_time(s: &str) -> Result<f64, SsmError> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.unix_timestamp_nanos() as f64 / 1e9);
    }
    if let Ok(d) = Date::parse(s, format_description!("[year]-[month]-[day]")) {
        return Ok(d.midnight().assume_utc().unix_timestamp() as f64);
    }
    Err(SsmError::ValidationException(format!(
        "Filter value {s} is not a date and time; write it in ISO 8601, for example 2017-06-07T00:00:00Z."
    )))
}

/// Epoch seconds as `2017-06-07T18:18:03.419Z` (milliseconds, UTC).
pub fn iso8601_millis(epoch: f64) -> String {
    let nanos = (epoch * 1000.0).round() as i128 * 1_000_000;
    match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        ),
        Err(_) => String::new(),
    }
}

/// Epoch seconds as `2017-06-07T18:18:03Z`, as events carry times.
pub fn iso8601_seconds(epoch: f64) -> String {
    match OffsetDateTime::from_unix_timestamp(epoch.floor() as i64) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => String::new(),
    }
}

/// A duration as SSM's `ExecutionElapsedTime` shows it (ISO 8601 as Java
/// prints it): `PT0.039S`, `PT1M2.5S`, `PT2H0.001S`, `PT0S`.
pub fn elapsed(seconds: f64) -> String {
    let millis = (seconds.max(0.0) * 1000.0).round() as u64;
    let hours = millis / 3_600_000;
    let minutes = (millis / 60_000) % 60;
    let secs = (millis / 1000) % 60;
    let ms = millis % 1000;
    let mut out = String::from("PT");
    if hours > 0 {
        out.push_str(&format!("{hours}H"));
    }
    if minutes > 0 {
        out.push_str(&format!("{minutes}M"));
    }
    if secs > 0 || ms > 0 || (hours == 0 && minutes == 0) {
        if ms > 0 {
            let frac = format!("{ms:03}");
            out.push_str(&format!("{secs}.{}S", frac.trim_end_matches('0')));
        } else {
            out.push_str(&format!("{secs}S"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_times() {
        assert_eq!(
            parse_filter_time("2017-06-07T00:00:00Z").unwrap(),
            1_496_793_600.0
        );
        assert_eq!(parse_filter_time("2017-06-07").unwrap(), 1_496_793_600.0);
        assert_eq!(
            parse_filter_time("2017-06-07T00:00:00.500Z").unwrap(),
            1_496_793_600.5
        );
        let e = parse_filter_time("June 7").unwrap_err();
        assert_eq!(e.code(), "ValidationException");
        assert_eq!(
            e.to_string(),
            "Filter value June 7 is not a date and time; write it in ISO 8601, for example 2017-06-07T00:00:00Z."
        );
    }

    #[test]
    fn formats() {
        assert_eq!(
            iso8601_millis(1_496_793_600.419),
            "2017-06-07T00:00:00.419Z"
        );
        assert_eq!(iso8601_seconds(1_496_793_600.9), "2017-06-07T00:00:00Z");
        assert_eq!(elapsed(0.039), "PT0.039S");
        assert_eq!(elapsed(0.0), "PT0S");
        assert_eq!(elapsed(62.5), "PT1M2.5S");
        assert_eq!(elapsed(7200.001), "PT2H0.001S");
        assert_eq!(elapsed(3600.0), "PT1H");
    }
}
