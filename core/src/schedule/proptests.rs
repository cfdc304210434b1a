//! Random AWS cron expressions, generated with their own meaning, against a
//! minute-by-minute walk of the zone's clock. The walk knows nothing of
//! `croner` or of this module's field reading: it matches each wall-clock
//! time against the generated items and applies the documented clock-change
//! rules itself.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Item {
    Star,
    One(u16),
    Range(u16, u16),
    /// `*/s`, `a/s` (to the field's end) or `a-b/s`.
    Step(Option<u16>, Option<u16>, u16),
}

#[derive(Debug, Clone)]
struct Field {
    items: Vec<Item>,
    min: u16,
    max: u16,
    /// Names for the field's values from `min` (months, weekdays).
    names: Option<&'static [&'static str]>,
}

const MONTH_NAMES: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAY_NAMES: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Field {
    fn matches(&self, v: u16) -> bool {
        self.items.iter().any(|item| match *item {
            Item::Star => true,
            Item::One(a) => v == a,
            Item::Range(a, b) => a <= v && v <= b,
            Item::Step(a, b, s) => {
                let lo = a.unwrap_or(self.min);
                let hi = b.unwrap_or(self.max);
                lo <= v && v <= hi && (v - lo).is_multiple_of(s)
            }
        })
    }

    fn value_text(&self, v: u16, named: bool) -> String {
        match self.names {
            Some(names) if named => names[usize::from(v - self.min)].to_string(),
            _ => v.to_string(),
        }
    }

    fn text(&self, named: bool) -> String {
        let t = |v| self.value_text(v, named);
        self.items
            .iter()
            .map(|item| match *item {
                Item::Star => "*".to_string(),
                Item::One(a) => t(a),
                Item::Range(a, b) => format!("{}-{}", t(a), t(b)),
                Item::Step(None, _, s) => format!("*/{s}"),
                Item::Step(Some(a), None, s) => format!("{}/{s}", t(a)),
                Item::Step(Some(a), Some(b), s) => format!("{}-{}/{s}", t(a), t(b)),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[derive(Debug, Clone)]
enum Days {
    DomStar,
    DomList(Field),
    DomLast,
    DomLastWeekday,
    DomNearestWeekday(u16),
    DowStar,
    DowList(Field, bool),
    DowLast(u16),
    DowNth(u16, u16),
}

#[derive(Debug, Clone)]
struct Expr {
    second: Option<u16>,
    minutes: Field,
    hours: Field,
    days: Days,
    months: Field,
    month_names: bool,
    years: Field,
}

/// Weekday of a date, 1 (SUN) to 7 (SAT).
fn weekday(d: jiff::civil::Date) -> u16 {
    d.weekday().to_sunday_one_offset() as u16
}

impl Expr {
    fn text(&self) -> String {
        let (dom, dow) = match &self.days {
            Days::DomStar => ("*".to_string(), "?".to_string()),
            Days::DomList(f) => (f.text(false), "?".to_string()),
            Days::DomLast => ("L".to_string(), "?".to_string()),
            Days::DomLastWeekday => ("LW".to_string(), "?".to_string()),
            Days::DomNearestWeekday(n) => (format!("{n}W"), "?".to_string()),
            Days::DowStar => ("?".to_string(), "*".to_string()),
            Days::DowList(f, named) => ("?".to_string(), f.text(*named)),
            Days::DowLast(d) => ("?".to_string(), format!("{d}L")),
            Days::DowNth(d, k) => ("?".to_string(), format!("{d}#{k}")),
        };
        let second = self.second.map(|s| format!("{s} ")).unwrap_or_default();
        format!(
            "cron({second}{} {} {dom} {} {dow} {})",
            self.minutes.text(false),
            self.hours.text(false),
            self.months.text(self.month_names),
            self.years.text(false)
        )
    }

    fn second(&self) -> u16 {
        self.second.unwrap_or(0)
    }

    fn day_matches(&self, d: jiff::civil::Date) -> bool {
        let day = d.day() as u16;
        let last = d.days_in_month() as u16;
        let wd = weekday(d);
        match &self.days {
            Days::DomStar | Days::DowStar => true,
            Days::DomList(f) => f.matches(day),
            Days::DomLast => day == last,
            Days::DomLastWeekday => {
                let last_wd = weekday(d.last_of_month());
                let target = match last_wd {
                    7 => last - 1,
                    1 => last - 2,
                    _ => last,
                };
                day == target
            }
            Days::DomNearestWeekday(n) => {
                let nd = d.first_of_month() + Span::new().days(i64::from(*n) - 1);
                let target = match weekday(nd) {
                    7 if *n == 1 => n + 2,
                    7 => n - 1,
                    1 if *n == last => n - 2,
                    1 => n + 1,
                    _ => *n,
                };
                day == target
            }
            Days::DowList(f, _) => f.matches(wd),
            Days::DowLast(w) => wd == *w && day + 7 > last,
            Days::DowNth(w, k) => wd == *w && (day - 1) / 7 + 1 == *k,
        }
    }

    fn matches(&self, c: DateTime) -> bool {
        c.second() as u16 == self.second()
            && self.minutes.matches(c.minute() as u16)
            && self.hours.matches(c.hour() as u16)
            && self.months.matches(c.month() as u16)
            && self.years.matches(c.year() as u16)
            && self.day_matches(c.date())
    }

    fn single(f: &Field) -> bool {
        (f.min..=f.max).filter(|v| f.matches(*v)).count() == 1
    }

    /// Seconds, minutes and hours each one value: a fixed time of day.
    fn fixed(&self) -> bool {
        Self::single(&self.minutes) && Self::single(&self.hours)
    }

    /// The shortest time between two runs in a day, wrap included.
    fn gap(&self) -> u32 {
        let times: Vec<u32> = (0..24u16)
            .filter(|h| self.hours.matches(*h))
            .flat_map(|h| {
                (0..60u16)
                    .filter(|m| self.minutes.matches(*m))
                    .map(move |m| u32::from(h) * 60 + u32::from(m))
            })
            .collect();
        match (times.first(), times.last()) {
            (Some(f), Some(l)) => times
                .windows(2)
                .map(|w| w[1] - w[0])
                .fold(f + 1440 - l, u32::min),
            _ => u32::MAX,
        }
    }

    fn all_months(&self) -> bool {
        (1..=12).all(|m| self.months.matches(m))
    }
}

/// The runs in (after, until], walking the zone's clock a minute at a time.
fn walk(e: &Expr, tz: &TimeZone, after: i64, until: i64) -> Vec<i64> {
    let s = i64::from(e.second());
    // Offsets of the zones used are whole minutes: local and UTC seconds agree.
    let mut t = after - after.rem_euclid(60) + s;
    if t <= after {
        t += 60;
    }
    let civil = |t: i64| {
        Timestamp::from_second(t)
            .expect("ts")
            .to_zoned(tz.clone())
            .datetime()
    };
    let fixed = e.fixed();
    let mut out = Vec::new();
    let mut prev: Option<(i64, DateTime)> = None;
    while t <= until {
        let c = civil(t);
        if let Some((pt, pc)) = prev {
            let mut cc = pc + Span::new().minutes(1);
            while cc < c {
                // A wall-clock time skipped by the clock: a fixed time runs
                // at the first instant after the gap.
                if fixed && e.matches(cc) {
                    let (mut lo, mut hi) = (pt, t);
                    let after_gap = tz.to_offset(Timestamp::from_second(t).expect("ts"));
                    while hi - lo > 1 {
                        let mid = lo + (hi - lo) / 2;
                        if tz.to_offset(Timestamp::from_second(mid).expect("ts")) == after_gap {
                            hi = mid;
                        } else {
                            lo = mid;
                        }
                    }
                    out.push(hi);
                }
                cc += Span::new().minutes(1);
            }
        }
        if e.matches(c) {
            let first_pass = tz
                .to_ambiguous_zoned(c)
                .earlier()
                .expect("earlier")
                .timestamp()
                .as_second();
            // A fixed time that happens twice runs on its first pass only.
            if !fixed || first_pass == t {
                out.push(t);
            }
        }
        prev = Some((t, c));
        t += 60;
    }
    out
}

fn item(min: u16, max: u16) -> impl Strategy<Value = Item> {
    let span = max - min + 1;
    prop_oneof![
        2 => Just(Item::Star),
        3 => (min..=max).prop_map(Item::One),
        2 => (min..=max, min..=max).prop_map(|(a, b)| Item::Range(a.min(b), a.max(b))),
        2 => (1..=span).prop_map(|s| Item::Step(None, None, s)),
        2 => (min..=max, 1..=span).prop_map(|(a, s)| Item::Step(Some(a), None, s)),
        1 => (min..=max, min..=max, 1..=span)
            .prop_map(|(a, b, s)| Item::Step(Some(a.min(b)), Some(a.max(b)), s)),
    ]
}

fn field(
    min: u16,
    max: u16,
    names: Option<&'static [&'static str]>,
) -> impl Strategy<Value = Field> {
    field_of(min, max, names, (min, max))
}

/// A field of range `min..=max` whose items name values in `values`.
fn field_of(
    min: u16,
    max: u16,
    names: Option<&'static [&'static str]>,
    values: (u16, u16),
) -> impl Strategy<Value = Field> {
    prop::collection::vec(item(values.0, values.1), 1..=3).prop_map(move |items| Field {
        items,
        min,
        max,
        names,
    })
}

fn star(min: u16, max: u16, names: Option<&'static [&'static str]>) -> Field {
    Field {
        items: vec![Item::Star],
        min,
        max,
        names,
    }
}

fn days() -> impl Strategy<Value = Days> {
    prop_oneof![
        4 => Just(Days::DomStar),
        2 => field(1, 31, None).prop_map(Days::DomList),
        1 => Just(Days::DomLast),
        1 => Just(Days::DomLastWeekday),
        1 => (1..=28u16).prop_map(Days::DomNearestWeekday),
        4 => Just(Days::DowStar),
        2 => (field(1, 7, Some(DAY_NAMES)), any::<bool>()).prop_map(|(f, n)| Days::DowList(f, n)),
        1 => (1..=7u16).prop_map(Days::DowLast),
        1 => (1..=7u16, 1..=5u16).prop_map(|(d, k)| Days::DowNth(d, k)),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    (
        prop_oneof![3 => Just(None), 1 => (0..60u16).prop_map(Some)],
        field(0, 59, None),
        prop_oneof![1 => Just(star(0, 23, None)), 2 => field(0, 23, None)],
        days(),
        prop_oneof![3 => Just(star(1, 12, Some(MONTH_NAMES))), 1 => field(1, 12, Some(MONTH_NAMES))],
        any::<bool>(),
        prop_oneof![3 => Just(star(1970, 2199, None)), 1 => field_of(1970, 2199, None, (2025, 2028))],
    )
        .prop_map(|(second, minutes, hours, days, months, month_names, years)| Expr {
            second,
            minutes,
            hours,
            days,
            months,
            month_names,
            years,
        })
}

const ZONES: &[&str] = &[
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
];

/// Clock changes of 2026 in those zones (UTC), to start near.
const CHANGES: &[&str] = &[
    "2026-03-08T07:00:00Z",
    "2026-11-01T06:00:00Z",
    "2026-03-29T01:00:00Z",
    "2026-10-25T01:00:00Z",
    "2026-04-04T15:00:00Z",
    "2026-10-03T15:30:00Z",
];

const HORIZON: i64 = 3 * 86_400;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn next_runs_match_a_walk_of_the_zones_clock(
        e in expr(),
        zone_i in 0..ZONES.len(),
        change_i in 0..CHANGES.len(),
        shift in -2 * 86_400i64..86_400,
    ) {
        let text = e.text();
        let zone = Zone::named(ZONES[zone_i]).expect("zone");
        let after = CHANGES[change_i].parse::<Timestamp>().expect("ts").as_second() + shift;

        let parsed = Schedule::parse(&text, ScheduleUse::MaintenanceWindow);
        prop_assert_eq!(parsed.is_ok(), e.gap() >= 5, "{} (gap {})", text, e.gap());
        let expect_association = e.second() == 0 && e.all_months() && e.gap() >= 30;
        prop_assert_eq!(
            Schedule::parse(&text, ScheduleUse::Association).is_ok(),
            expect_association,
            "{}", text
        );
        let Ok(schedule) = parsed else { return Ok(()); };

        let until = after + HORIZON;
        let expected = walk(&e, &zone.0, after, until);
        let got: Vec<i64> = schedule
            .occurrences_after(after, &zone, 0)
            .map(|o| o.scheduled)
            .take_while(|t| *t <= until)
            .take(expected.len() + 1)
            .collect();
        prop_assert_eq!(got, expected, "{} in {} after {}", text, ZONES[zone_i], after);
    }
}

/// Fixed times of day near the hours the clocks change, where the gap and
/// fold rules decide.
fn fixed_near_changes() -> impl Strategy<Value = Expr> {
    (
        prop_oneof![Just(None), (0..60u16).prop_map(Some)],
        0..60u16,
        prop_oneof![4 => 0..4u16, 1 => 0..24u16],
        prop_oneof![Just(Days::DomStar), Just(Days::DowStar)],
    )
        .prop_map(|(second, m, h, days)| Expr {
            second,
            minutes: Field {
                items: vec![Item::One(m)],
                min: 0,
                max: 59,
                names: None,
            },
            hours: Field {
                items: vec![Item::One(h)],
                min: 0,
                max: 23,
                names: None,
            },
            days,
            months: star(1, 12, Some(MONTH_NAMES)),
            month_names: false,
            years: star(1970, 2199, None),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn fixed_times_across_clock_changes_match_the_walk(
        e in fixed_near_changes(),
        zone_i in 1..ZONES.len(),
        change_i in 0..CHANGES.len(),
        shift in -86_400i64..3_600,
    ) {
        let text = e.text();
        let zone = Zone::named(ZONES[zone_i]).expect("zone");
        let after = CHANGES[change_i].parse::<Timestamp>().expect("ts").as_second() + shift;
        let schedule = Schedule::parse(&text, ScheduleUse::MaintenanceWindow).expect("parses");
        let until = after + 2 * 86_400;
        let expected = walk(&e, &zone.0, after, until);
        let got: Vec<i64> = schedule
            .occurrences_after(after, &zone, 0)
            .map(|o| o.scheduled)
            .take_while(|t| *t <= until)
            .take(expected.len() + 1)
            .collect();
        prop_assert_eq!(got, expected, "{} in {} after {}", text, ZONES[zone_i], after);
    }
}
