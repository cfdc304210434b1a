//! The schedule expressions of State Manager associations and maintenance
//! windows, read as SSM reads them and evaluated in an IANA time zone, so
//! that a schedule row can carry its next due time.
//!
//! # Syntax (SSM's "Reference: Cron and rate expressions for Systems Manager")
//!
//! - `cron(minutes hours day-of-month month day-of-week year)`, or seven
//!   fields with a leading seconds field. Day of week runs 1 (SUN) to 7
//!   (SAT); names (`MON`, `JAN`) in any case; `,` `-` `*` `/` everywhere;
//!   `?` in exactly one of the two day fields; `L`, `LW`, `nW` in day of
//!   month; `L`, `nL`, `n#k` in day of week; years 1970-2199.
//! - `rate(N unit)` with `minute`/`hour`/`day` for 1 and the plural above.
//! - `at(yyyy-mm-ddThh:mm:ss)`: once.
//!
//! Per use: an association takes seconds `0` only, no month other than `*`
//! ("State Manager doesn't currently support specifying months"), a cron
//! that runs at most every 30 minutes, and a rate of 30 minutes or more and
//! less than 31 days. A maintenance window takes any cron that runs at most
//! every 5 minutes ("Cron expressions that lead to rates faster than 5
//! minute are not supported") and any rate. `ScheduleOffset` (1-6 days)
//! goes with cron only, and an association's needs `ApplyOnlyAtCronInterval`.
//!
//! # Evaluation and daylight saving time
//!
//! Cron and `at` are wall-clock times in the schedule's zone (UTC when it has
//! none), evaluated by `croner`. SSM and EventBridge document nothing about
//! clock changes, so the convention of Vixie cron (which `croner` follows)
//! decides:
//! - A time that does not exist (02:30 on a spring-forward night in New
//!   York) runs, if seconds, minutes and hours are each one value, at the
//!   first instant after the gap (03:00); a time from a wildcard, range or
//!   step inside the gap is skipped.
//! - A time that happens twice (01:30 on the autumn night) runs once, on
//!   its first pass, if seconds, minutes and hours are each one value;
//!   otherwise on both passes.
//! - `ScheduleOffset` adds calendar days to the cron time; a wall time it
//!   lands on that does not exist moves forward by the gap.
//!
//! A rate counts elapsed time from an anchor (the association's creation or
//! the window's start), unaffected by clock changes.

mod cron;
mod error;
pub mod runs;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use croner::parser::{CronParser, Seconds, Year};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Zoned};

pub use cron::{CronFields, DayOfMonth, DayOfWeek};
use error::Refusal;
pub use error::ScheduleError;

/// Which API the expression comes through: SSM's rules and error codes
/// differ between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleUse {
    /// `ScheduleExpression` of CreateAssociation and UpdateAssociation.
    Association,
    /// `Schedule` of CreateMaintenanceWindow and UpdateMaintenanceWindow.
    MaintenanceWindow,
}

/// An IANA time zone, from the database bundled with the binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone(TimeZone);

impl Zone {
    pub fn utc() -> Self {
        Zone(TimeZone::UTC)
    }

    /// A zone by its IANA name (`America/New_York`), spelled exactly: jiff's
    /// lookup ignores case, and a name stored for a schedule should be the
    /// database's own.
    pub fn named(name: &str) -> Result<Self, ScheduleError> {
        TimeZone::get(name)
            .ok()
            .filter(|tz| tz.iana_name() == Some(name))
            .map(Zone)
            .ok_or_else(|| {
                ScheduleError::Validation(format!(
                    "The time zone {name} is not an IANA time zone name."
                ))
            })
    }
}

/// One run: when the expression fires, and when the run is due (later by the
/// schedule offset, if any). A caller resumes the search from `scheduled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    /// Epoch seconds.
    pub scheduled: i64,
    /// Epoch seconds.
    pub due: i64,
}

#[derive(Debug, Clone)]
enum Expr {
    Cron(Box<CronFields>, croner::Cron),
    Rate(i64),
    /// A one-shot pattern for `croner`, so that a time in a gap or a fold
    /// resolves as a fixed cron time does.
    At(croner::Cron),
}

/// A schedule expression as SSM accepts it.
#[derive(Debug, Clone)]
pub struct Schedule {
    expr: Expr,
    offset_days: i64,
}

/// Association rates: "intervals of 30 minutes or greater and less than 31 days".
const ASSOCIATION_RATE_MIN: i64 = 30 * 60;
const ASSOCIATION_RATE_LIMIT: i64 = 31 * 24 * 3600;
const ASSOCIATION_CRON_GAP_MIN: u32 = 30;
const WINDOW_CRON_GAP_MIN: u32 = 5;

impl Schedule {
    /// Reads `expression` with the rules of `use_`.
    pub fn parse(expression: &str, use_: ScheduleUse) -> Result<Self, ScheduleError> {
        Self::read(expression, use_)
            .map(|expr| Schedule {
                expr,
                offset_days: 0,
            })
            .map_err(|why| ScheduleError::refused(use_, expression, why))
    }

    fn read(expression: &str, use_: ScheduleUse) -> Result<Expr, Refusal> {
        let inner = |prefix: &str| {
            expression
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(')'))
        };
        if let Some(body) = inner("cron(") {
            read_cron(body, use_)
        } else if let Some(body) = inner("rate(") {
            read_rate(body, use_).map(Expr::Rate)
        } else if let Some(body) = inner("at(") {
            read_at(body).map(Expr::At)
        } else {
            Err(Refusal(
                "write cron(...), rate(...) or at(yyyy-mm-ddThh:mm:ss)".into(),
            ))
        }
    }

    /// Applies `ScheduleOffset`: 1 to 6 days after each cron time. An
    /// association's offset also needs `ApplyOnlyAtCronInterval`.
    pub fn with_offset(
        mut self,
        days: i32,
        use_: ScheduleUse,
        apply_only_at_cron_interval: bool,
    ) -> Result<Self, ScheduleError> {
        // SSM's model bounds ScheduleOffset to 1..=6 (a ValidationException
        // in the service's constraint wording).
        if days < 1 {
            return Err(ScheduleError::Validation(format!(
                "1 validation error detected: Value '{days}' at 'scheduleOffset' failed to satisfy constraint: Member must have value greater than or equal to 1"
            )));
        }
        if days > 6 {
            return Err(ScheduleError::Validation(format!(
                "1 validation error detected: Value '{days}' at 'scheduleOffset' failed to satisfy constraint: Member must have value less than or equal to 6"
            )));
        }
        if !matches!(self.expr, Expr::Cron(..)) {
            return Err(ScheduleError::Validation(
                "ScheduleOffset is supported with cron expressions only.".into(),
            ));
        }
        if use_ == ScheduleUse::Association && !apply_only_at_cron_interval {
            return Err(ScheduleError::Validation(
                "ScheduleOffset requires ApplyOnlyAtCronInterval to be true.".into(),
            ));
        }
        self.offset_days = i64::from(days);
        Ok(self)
    }

    /// The cron fields, for a cron expression.
    pub fn cron_fields(&self) -> Option<&CronFields> {
        match &self.expr {
            Expr::Cron(fields, _) => Some(fields),
            _ => None,
        }
    }

    /// The interval in seconds, for a rate expression.
    pub fn rate_seconds(&self) -> Option<i64> {
        match self.expr {
            Expr::Rate(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_one_time(&self) -> bool {
        matches!(self.expr, Expr::At(_))
    }

    /// The first run whose scheduled time is strictly after `after` (epoch
    /// seconds), in `zone`. `anchor` is where a rate counts from (its runs
    /// are `anchor + k × rate`); cron and `at` ignore it. `None` when the
    /// expression has no later time (a past `at`, years up to 2199 spent).
    pub fn next_after(&self, after: i64, zone: &Zone, anchor: i64) -> Option<Occurrence> {
        match &self.expr {
            Expr::Rate(every) => {
                let k = if after < anchor {
                    0
                } else {
                    (after - anchor) / every + 1
                };
                let at = anchor.checked_add(k.checked_mul(*every)?)?;
                Some(Occurrence {
                    scheduled: at,
                    due: at,
                })
            }
            Expr::Cron(_, cron) | Expr::At(cron) => {
                let start = Timestamp::from_second(after).ok()?.to_zoned(zone.0.clone());
                let fire: Zoned = cron.find_next_occurrence(&start, false).ok()?;
                let due = if self.offset_days == 0 {
                    fire.timestamp()
                } else {
                    fire.checked_add(Span::new().days(self.offset_days))
                        .ok()?
                        .timestamp()
                };
                Some(Occurrence {
                    scheduled: fire.timestamp().as_second(),
                    due: due.as_second(),
                })
            }
        }
    }

    /// The runs after `after`, in order (for DescribeMaintenanceWindowSchedule).
    pub fn occurrences_after<'a>(
        &'a self,
        after: i64,
        zone: &'a Zone,
        anchor: i64,
    ) -> impl Iterator<Item = Occurrence> + 'a {
        let mut cursor = after;
        std::iter::from_fn(move || {
            let next = self.next_after(cursor, zone, anchor)?;
            cursor = next.scheduled;
            Some(next)
        })
    }
}

fn read_cron(body: &str, use_: ScheduleUse) -> Result<Expr, Refusal> {
    let fields = CronFields::parse(body)?;
    let gap = fields.shortest_gap_minutes();
    match use_ {
        ScheduleUse::Association => {
            if fields.second != 0 {
                return Err(Refusal(
                    "an association's seconds field can only be 0".into(),
                ));
            }
            if fields.months.len() != 12 {
                return Err(Refusal(
                    "State Manager doesn't support specifying months in cron expressions".into(),
                ));
            }
            if gap < ASSOCIATION_CRON_GAP_MIN {
                return Err(Refusal(format!(
                    "an association runs at most every {ASSOCIATION_CRON_GAP_MIN} minutes, and this expression runs {gap} minutes apart"
                )));
            }
        }
        ScheduleUse::MaintenanceWindow => {
            if gap < WINDOW_CRON_GAP_MIN {
                return Err(Refusal(format!(
                    "cron expressions that run more often than every {WINDOW_CRON_GAP_MIN} minutes are not supported, and this expression runs {gap} minutes apart"
                )));
            }
        }
    }
    let cron = croner_parse(&fields.croner_pattern())?;
    Ok(Expr::Cron(Box::new(fields), cron))
}

fn croner_parse(pattern: &str) -> Result<croner::Cron, Refusal> {
    CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Required)
        .build()
        .parse(pattern)
        .map_err(|e| Refusal(e.to_string()))
}

fn read_rate(body: &str, use_: ScheduleUse) -> Result<i64, Refusal> {
    let parts: Vec<&str> = body.split(' ').collect();
    let [value, unit] = parts[..] else {
        return Err(Refusal(
            "a rate is a value and a unit: rate(5 minutes)".into(),
        ));
    };
    let n: i64 = Some(value)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|n| *n >= 1)
        .map(i64::from)
        .ok_or_else(|| Refusal(format!("the rate's value {value} is not a positive number")))?;
    let (unit_seconds, singular) = match unit {
        "minute" => (60, true),
        "minutes" => (60, false),
        "hour" => (3600, true),
        "hours" => (3600, false),
        "day" => (86_400, true),
        "days" => (86_400, false),
        _ => {
            return Err(Refusal(format!(
                "the rate's unit {unit} is not minute(s), hour(s) or day(s)"
            )));
        }
    };
    if singular != (n == 1) {
        return Err(Refusal(
            "the unit is singular for a value of 1 and plural otherwise".into(),
        ));
    }
    let seconds = n * unit_seconds;
    if use_ == ScheduleUse::Association
        && !(ASSOCIATION_RATE_MIN..ASSOCIATION_RATE_LIMIT).contains(&seconds)
    {
        return Err(Refusal(
            "associations support rates of 30 minutes or greater and less than 31 days".into(),
        ));
    }
    Ok(seconds)
}

fn read_at(body: &str) -> Result<croner::Cron, Refusal> {
    let bad = || Refusal(format!("at({body}) is not at(yyyy-mm-ddThh:mm:ss)"));
    let b = body.as_bytes();
    let shape = b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| body.get(range).and_then(|s| s.parse::<i16>().ok());
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s)) = (
        num(0..4),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
    ) else {
        return Err(bad());
    };
    // jiff checks the calendar (no 2021-02-29, no hour 24).
    jiff::civil::DateTime::new(y, mo as i8, d as i8, h as i8, mi as i8, s as i8, 0)
        .map_err(|_| bad())?;
    croner_parse(&format!("{s} {mi} {h} {d} {mo} * {y}"))
}
