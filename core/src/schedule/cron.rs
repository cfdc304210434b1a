//! AWS's cron dialect, read field by field and translated for `croner`.
//!
//! The fields are read here rather than by `croner` because the dialects
//! differ where a shared reading would be wrong: AWS numbers the days of the
//! week 1 (SUN) to 7 (SAT) where `croner` uses 0 (SUN) to 6, a six-field AWS
//! expression ends with a year where `croner` would take a leading second,
//! `0/15` is a step from 0 in AWS, and AWS requires `?` in exactly one of the
//! two day fields. Each field is therefore expanded here to the values it
//! selects and handed to `croner` as plain numbers; `croner` only evaluates.

use std::collections::BTreeSet;

use super::error::Refusal;

/// The years AWS's cron accepts.
pub(crate) const YEAR_MIN: u16 = 1970;
pub(crate) const YEAR_MAX: u16 = 2199;

/// The day-of-month field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayOfMonth {
    /// `?` or `*`: the day of the week decides.
    Any,
    /// Days 1-31 (a day a month lacks selects nothing in that month).
    Days(BTreeSet<u16>),
    /// `L`: the last day of the month.
    Last,
    /// `LW`: the last weekday (Monday to Friday) of the month.
    LastWeekday,
    /// `nW`: the weekday nearest to day n, within the month.
    NearestWeekday(u16),
}

/// The day-of-week field, in AWS's numbering: 1 is Sunday, 7 is Saturday.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayOfWeek {
    /// `?` or `*`: the day of the month decides.
    Any,
    Days(BTreeSet<u16>),
    /// `nL`: the last such weekday of the month.
    Last(u16),
    /// `n#k`: the k-th such weekday of the month.
    Nth(u16, u16),
}

/// A cron expression as AWS reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronFields {
    pub second: u16,
    pub minutes: BTreeSet<u16>,
    pub hours: BTreeSet<u16>,
    pub day_of_month: DayOfMonth,
    pub months: BTreeSet<u16>,
    pub day_of_week: DayOfWeek,
    pub years: BTreeSet<u16>,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// What one numeric field accepts.
struct Spec {
    name: &'static str,
    min: u16,
    max: u16,
    names: &'static [&'static str],
}

const MINUTES: Spec = Spec {
    name: "minutes",
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Spec = Spec {
    name: "hours",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: Spec = Spec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Spec = Spec {
    name: "month",
    min: 1,
    max: 12,
    names: &MONTHS,
};
const DAY_OF_WEEK: Spec = Spec {
    name: "day-of-week",
    min: 1,
    max: 7,
    names: &WEEKDAYS,
};
const YEAR: Spec = Spec {
    name: "year",
    min: YEAR_MIN,
    max: YEAR_MAX,
    names: &[],
};

impl Spec {
    fn value(&self, text: &str) -> Result<u16, Refusal> {
        let upper = text.to_ascii_uppercase();
        if let Some(i) = self.names.iter().position(|n| *n == upper) {
            // Names are listed from the field's first value.
            return Ok(self.min + i as u16);
        }
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Refusal(format!(
                "'{text}' is not a value of the {} field",
                self.name
            )));
        }
        match text.parse::<u16>() {
            Ok(v) if (self.min..=self.max).contains(&v) => Ok(v),
            _ => Err(Refusal(format!(
                "{text} is outside the {} field's range {}-{}",
                self.name, self.min, self.max
            ))),
        }
    }

    /// `*`, `a`, `a-b`, `*/s`, `a/s`, `a-b/s`, and lists of them.
    fn set(&self, field: &str) -> Result<BTreeSet<u16>, Refusal> {
        let mut out = BTreeSet::new();
        for item in field.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => {
                    let step = Some(s)
                        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|s| s.parse::<u16>().ok())
                        .filter(|s| *s >= 1)
                        .ok_or_else(|| {
                            Refusal(format!(
                                "'{s}' is not an increment of the {} field",
                                self.name
                            ))
                        })?;
                    (r, step)
                }
                None => (item, 1),
            };
            let (lo, hi) = if range == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                let (a, b) = (self.value(a)?, self.value(b)?);
                if a > b {
                    // Wrapping ranges (FRI-MON) are not documented by AWS.
                    return Err(Refusal(format!(
                        "the range {range} of the {} field runs backwards",
                        self.name
                    )));
                }
                (a, b)
            } else {
                let a = self.value(range)?;
                // `a/s` steps from a to the field's end, as AWS documents `0/15`.
                (a, if item.contains('/') { self.max } else { a })
            };
            out.extend((lo..=hi).step_by(usize::from(step)));
        }
        Ok(out)
    }
}

impl CronFields {
    /// Reads the inside of `cron(...)`: six fields, or seven with a leading
    /// seconds field.
    pub(crate) fn parse(body: &str) -> Result<Self, Refusal> {
        let fields: Vec<&str> = body.split_whitespace().collect();
        let (second, rest): (Option<&str>, &[&str]) = match fields.as_slice() {
            [second, rest @ ..] if rest.len() == 6 => (Some(*second), rest),
            rest if rest.len() == 6 => (None, rest),
            _ => {
                return Err(Refusal(format!(
                    "a cron expression has 6 fields (7 with seconds), not {}",
                    fields.len()
                )));
            }
        };
        let [minutes, hours, dom, month, dow, year] = rest else {
            return Err(Refusal("a cron expression has 6 fields".into()));
        };
        let second = match second {
            None => 0,
            Some(s) => Some(s)
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u16>().ok())
                .filter(|v| *v <= 59)
                .ok_or_else(|| {
                    Refusal(format!("the seconds field takes one value 0-59, not '{s}'"))
                })?,
        };
        let (dom_q, dow_q) = (*dom == "?", *dow == "?");
        if dom_q == dow_q {
            return Err(Refusal(
                "exactly one of the day-of-month and day-of-week fields must be '?'".into(),
            ));
        }
        Ok(CronFields {
            second,
            minutes: MINUTES.set(minutes)?,
            hours: HOURS.set(hours)?,
            day_of_month: if dom_q {
                DayOfMonth::Any
            } else {
                parse_dom(dom)?
            },
            months: MONTH.set(month)?,
            day_of_week: if dow_q {
                DayOfWeek::Any
            } else {
                parse_dow(dow)?
            },
            years: YEAR.set(year)?,
        })
    }

    /// The shortest time between two runs, in minutes, as the minute and hour
    /// fields allow on a day when the schedule runs (the wrap from the day's
    /// last run to the next day's first included).
    pub fn shortest_gap_minutes(&self) -> u32 {
        let times: Vec<u32> = self
            .hours
            .iter()
            .flat_map(|h| {
                self.minutes
                    .iter()
                    .map(move |m| u32::from(*h) * 60 + u32::from(*m))
            })
            .collect();
        let (Some(first), Some(last)) = (times.first(), times.last()) else {
            return u32::MAX;
        };
        let wrap = first + 24 * 60 - last;
        times.windows(2).map(|w| w[1] - w[0]).fold(wrap, u32::min)
    }

    /// The pattern `croner` evaluates: seven fields (seconds first, year
    /// last), plain numbers, days of the week 0 (SUN) to 6.
    pub fn croner_pattern(&self) -> String {
        let dom = match &self.day_of_month {
            DayOfMonth::Any => "*".to_string(),
            DayOfMonth::Days(d) => list(d),
            DayOfMonth::Last => "L".to_string(),
            DayOfMonth::LastWeekday => "LW".to_string(),
            DayOfMonth::NearestWeekday(n) => format!("{n}W"),
        };
        let dow = match &self.day_of_week {
            DayOfWeek::Any => "*".to_string(),
            DayOfWeek::Days(d) => list(&d.iter().map(|d| d - 1).collect()),
            DayOfWeek::Last(d) => format!("{}L", d - 1),
            DayOfWeek::Nth(d, k) => format!("{}#{k}", d - 1),
        };
        format!(
            "{} {} {} {dom} {} {dow} {}",
            self.second,
            list(&self.minutes),
            list(&self.hours),
            list(&self.months),
            list(&self.years)
        )
    }
}

/// A set as runs (`a-b`) joined by commas.
fn list(set: &BTreeSet<u16>) -> String {
    let mut runs: Vec<(u16, u16)> = Vec::new();
    for v in set {
        match runs.last_mut() {
            Some((_, hi)) if *hi + 1 == *v => *hi = *v,
            _ => runs.push((*v, *v)),
        }
    }
    runs.iter()
        .map(|(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_dom(field: &str) -> Result<DayOfMonth, Refusal> {
    let upper = field.to_ascii_uppercase();
    if upper == "L" {
        return Ok(DayOfMonth::Last);
    }
    if upper == "LW" {
        return Ok(DayOfMonth::LastWeekday);
    }
    if let Some(n) = upper.strip_suffix('W') {
        return Ok(DayOfMonth::NearestWeekday(DAY_OF_MONTH.value(n)?));
    }
    if upper.contains('L') || upper.contains('W') {
        return Err(Refusal(format!(
            "'{field}': L and W stand alone in the day-of-month field"
        )));
    }
    Ok(DayOfMonth::Days(DAY_OF_MONTH.set(field)?))
}

fn parse_dow(field: &str) -> Result<DayOfWeek, Refusal> {
    let upper = field.to_ascii_uppercase();
    if upper == "L" {
        // The last day of the week: Saturday.
        return Ok(DayOfWeek::Days(BTreeSet::from([7])));
    }
    if let Some((d, k)) = upper.split_once('#') {
        let d = DAY_OF_WEEK.value(d)?;
        let k = match k {
            "1" => 1,
            "2" => 2,
            "3" => 3,
            "4" => 4,
            "5" => 5,
            _ => 0,
        };
        return match k {
            1..=5 => Ok(DayOfWeek::Nth(d, k)),
            _ => Err(Refusal(format!(
                "'{field}': # takes one weekday and an instance 1-5"
            ))),
        };
    }
    if let Some(d) = upper.strip_suffix('L') {
        return Ok(DayOfWeek::Last(DAY_OF_WEEK.value(d)?));
    }
    if upper.contains('L') {
        return Err(Refusal(format!(
            "'{field}': L stands alone in the day-of-week field"
        )));
    }
    Ok(DayOfWeek::Days(DAY_OF_WEEK.set(field)?))
}
