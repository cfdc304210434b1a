use super::*;

use ScheduleUse::{Association, MaintenanceWindow};

fn epoch(s: &str) -> i64 {
    s.parse::<Timestamp>().expect("test timestamp").as_second()
}

fn iso(epoch: i64) -> String {
    Timestamp::from_second(epoch).expect("epoch").to_string()
}

fn zone(name: &str) -> Zone {
    Zone::named(name).expect("zone")
}

fn code(expr: &str, use_: ScheduleUse) -> &'static str {
    match Schedule::parse(expr, use_) {
        Ok(_) => "accepted",
        Err(e) => e.code(),
    }
}

/// The next `n` scheduled times (UTC, ISO) after `after` in `zone`.
fn next_n(expr: &str, use_: ScheduleUse, after: &str, z: &str, n: usize) -> Vec<String> {
    let s = Schedule::parse(expr, use_).expect("parses");
    let z = zone(z);
    s.occurrences_after(epoch(after), &z, 0)
        .take(n)
        .map(|o| iso(o.scheduled))
        .collect()
}

#[test]
fn ssm_documented_examples_are_accepted() {
    for e in [
        "cron(0 2 ? * SUN *)",
        "cron(0 0 2 ? * SUN *)",
        "cron(0/30 * * * ? *)",
        "cron(0 0/1 * * ? *)",
        "cron(0 0/2 * * ? *)",
        "cron(0 0/12 * * ? *)",
        "cron(15 13 ? * * *)",
        "cron(15 13 ? * MON *)",
        "cron(0 0 ? * THU#2 *)",
        "cron(0 */30 * * * ? *)",
        "rate(30 minutes)",
        "rate(1 hour)",
        "rate(5 hours)",
        "rate(15 days)",
        "at(2020-07-07T15:55:00)",
    ] {
        assert_eq!(code(e, Association), "accepted", "{e}");
    }
    for e in [
        "cron(0 16 ? * TUE *)",
        "cron(0 2 ? * THU#3 *)",
        "cron(15 10 ? * * *)",
        "cron(15 10 ? * MON-FRI *)",
        "cron(0 2 L * ? *)",
        "cron(15 10 ? * 6L *)",
        "cron(30 09 ? * * *)",
        "cron(24 30 09 ? * * *)",
        "cron(30 23 ? * TUE#3 *)",
        "cron(0/5 8-17 ? * MON-FRI *)",
        "cron(0 8 1 * ? *)",
        "cron(0 10 * * ? *)",
        "cron(0 18 ? JAN-MAR,DEC MON-FRI 2026-2030)",
        "cron(0 12 LW * ? *)",
        "cron(0 12 15W * ? *)",
        "rate(7 days)",
        "rate(25 days)",
        "rate(1 minute)",
        "at(2019-07-07T13:15:30)",
    ] {
        assert_eq!(code(e, MaintenanceWindow), "accepted", "{e}");
    }
}

#[test]
fn malformed_expressions_are_refused_with_each_apis_code() {
    for e in [
        "",
        "cron(0 2 ? * SUN)",
        "cron(0 0 0 2 ? * SUN *)",
        "cron(0 2 * * * *)",
        "cron(0 2 ? * ? *)",
        "cron(0 2 1 * MON *)",
        "cron(60 2 ? * SUN *)",
        "cron(0 24 ? * SUN *)",
        "cron(0 2 32 * ? *)",
        "cron(0 2 0 * ? *)",
        "cron(0 2 ? 13 ? *)",
        "cron(0 2 ? * 0 *)",
        "cron(0 2 ? * 8 *)",
        "cron(0 2 ? * FUN *)",
        "cron(0 2 ? * 2#6 *)",
        "cron(0 2 ? * 2#0 *)",
        "cron(0 2 ? * 2#1,3 *)",
        "cron(0 2 ? * MON,L *)",
        "cron(0 2 L-2 * ? *)",
        "cron(0 2 1,L * ? *)",
        "cron(0 2 ? * MON 1969)",
        "cron(0 2 ? * MON 2200)",
        "cron(0 2 ? * FRI-MON *)",
        "cron(0/0 2 ? * MON *)",
        "cron(0/ 2 ? * MON *)",
        "cron(0 2 ? * SUN *) ",
        " cron(0 2 ? * SUN *)",
        "CRON(0 2 ? * SUN *)",
        "cron 0 2 ? * SUN *",
        "rate(1 hours)",
        "rate(5 hour)",
        "rate(0 minutes)",
        "rate(-5 minutes)",
        "rate(1.5 hours)",
        "rate(1 week)",
        "rate(2  hours)",
        "rate(hours)",
        "at(2020-02-30T00:00:00)",
        "at(2020-07-07 15:55:00)",
        "at(2020-07-07T15:55)",
        "at(2020-07-07T24:00:00)",
        "at(2020-07-07T15:55:00Z)",
    ] {
        assert_eq!(code(e, Association), "InvalidSchedule", "{e}");
        assert_eq!(code(e, MaintenanceWindow), "ValidationException", "{e}");
    }
}

#[test]
fn association_limits_refuse_what_windows_take() {
    for e in [
        // More often than every 30 minutes.
        "cron(0/15 * * * ? *)",
        "cron(0,20 * * * ? *)",
        "cron(10,30 * * * ? *)",
        "cron(0,29 * * * ? *)",
        "cron(0,50 0,23 * * ? *)",
        // Months.
        "cron(0 2 1 6 ? *)",
        "cron(0 2 ? JAN MON *)",
        // Seconds other than 0.
        "cron(30 0 2 ? * SUN *)",
        // Rates below 30 minutes or from 31 days.
        "rate(29 minutes)",
        "rate(31 days)",
        "rate(744 hours)",
        "rate(44640 minutes)",
    ] {
        assert_eq!(code(e, Association), "InvalidSchedule", "{e}");
        assert_eq!(code(e, MaintenanceWindow), "accepted", "{e}");
    }
    // The edges that pass.
    for e in [
        "cron(0,30 * * * ? *)",
        "cron(15,45 * * * ? *)",
        "rate(30 days)",
        "rate(743 hours)",
    ] {
        assert_eq!(code(e, Association), "accepted", "{e}");
    }
    // A window's cron runs at most every 5 minutes.
    assert_eq!(
        code("cron(0/4 * * * ? *)", MaintenanceWindow),
        "ValidationException"
    );
    assert_eq!(
        code("cron(* * * * ? *)", MaintenanceWindow),
        "ValidationException"
    );
    assert_eq!(code("cron(0/5 * * * ? *)", MaintenanceWindow), "accepted");
}

#[test]
fn refusals_name_the_expression_and_map_to_ssm_errors() {
    let e = Schedule::parse("rate(5 hour)", Association).expect_err("refused");
    assert_eq!(
        e.to_string(),
        "Schedule expression rate(5 hour) is invalid: the unit is singular for a value of 1 and plural otherwise."
    );
    assert_eq!(SsmError::from(e).code(), "InvalidSchedule");
    let e = Schedule::parse("rate(5 hour)", MaintenanceWindow).expect_err("refused");
    assert_eq!(SsmError::from(e).code(), "ValidationException");
    for name in ["Mars/Olympus", "america/new_york", "", "EST5EDT "] {
        let e = Zone::named(name).expect_err("no such zone");
        assert_eq!(e.code(), "ValidationException", "{name}");
    }
    for name in ["UTC", "Etc/UTC", "US/Eastern", "Asia/Kolkata"] {
        assert!(Zone::named(name).is_ok(), "{name}");
    }
}

use crate::error::SsmError;

#[test]
fn schedule_offset_rules() {
    let cron = || Schedule::parse("cron(0 0 ? * THU#2 *)", Association).expect("parses");
    let words = |r: Result<Schedule, ScheduleError>| r.map(|_| ()).map_err(|e| e.to_string());
    assert_eq!(
        words(cron().with_offset(0, Association, true)),
        Err("1 validation error detected: Value '0' at 'scheduleOffset' failed to satisfy constraint: Member must have value greater than or equal to 1".into())
    );
    assert_eq!(
        words(cron().with_offset(7, Association, true)),
        Err("1 validation error detected: Value '7' at 'scheduleOffset' failed to satisfy constraint: Member must have value less than or equal to 6".into())
    );
    assert!(cron().with_offset(3, Association, false).is_err());
    assert!(cron().with_offset(3, Association, true).is_ok());
    let window = Schedule::parse("cron(30 23 ? * TUE#3 *)", MaintenanceWindow).expect("parses");
    assert!(window.with_offset(6, MaintenanceWindow, false).is_ok());
    let rate = Schedule::parse("rate(1 day)", MaintenanceWindow).expect("parses");
    let e = rate
        .with_offset(2, MaintenanceWindow, false)
        .map(|_| ())
        .expect_err("cron only");
    assert_eq!(e.code(), "ValidationException");
}

#[test]
fn offset_runs_days_after_the_cron_time() {
    // SSM's example: third Tuesday 23:30, offset 2, runs Thursday 23:30.
    let s = Schedule::parse("cron(30 23 ? * TUE#3 *)", MaintenanceWindow)
        .and_then(|s| s.with_offset(2, MaintenanceWindow, false))
        .expect("parses");
    let o = s
        .next_after(epoch("2026-12-01T00:00:00Z"), &Zone::utc(), 0)
        .expect("a run");
    assert_eq!(iso(o.scheduled), "2026-12-15T23:30:00Z");
    assert_eq!(iso(o.due), "2026-12-17T23:30:00Z");
    // A cron time already passed is not run, even when its due time is to come.
    let o = s
        .next_after(epoch("2026-12-16T00:00:00Z"), &Zone::utc(), 0)
        .expect("a run");
    assert_eq!(iso(o.scheduled), "2027-01-19T23:30:00Z");
}

#[test]
fn day_of_week_numbers_and_names_are_awss() {
    // 2026-12-06 is a Sunday.
    let sun = next_n(
        "cron(0 2 ? * 1 *)",
        MaintenanceWindow,
        "2026-12-01T00:00:00Z",
        "UTC",
        1,
    );
    assert_eq!(sun, ["2026-12-06T02:00:00Z"]);
    let sun = next_n(
        "cron(0 2 ? * sun *)",
        MaintenanceWindow,
        "2026-12-01T00:00:00Z",
        "UTC",
        1,
    );
    assert_eq!(sun, ["2026-12-06T02:00:00Z"]);
    let sat = next_n(
        "cron(0 2 ? * 7 *)",
        MaintenanceWindow,
        "2026-12-01T00:00:00Z",
        "UTC",
        1,
    );
    assert_eq!(sat, ["2026-12-05T02:00:00Z"]);
    let sat = next_n(
        "cron(0 2 ? * L *)",
        MaintenanceWindow,
        "2026-12-01T00:00:00Z",
        "UTC",
        1,
    );
    assert_eq!(sat, ["2026-12-05T02:00:00Z"]);
    let weekdays = next_n(
        "cron(0 18 ? * MON-FRI *)",
        MaintenanceWindow,
        "2026-12-04T19:00:00Z",
        "UTC",
        2,
    );
    assert_eq!(weekdays, ["2026-12-07T18:00:00Z", "2026-12-08T18:00:00Z"]);
}

#[test]
fn l_w_and_hash() {
    let at = "2026-01-01T00:00:00Z";
    let w = MaintenanceWindow;
    assert_eq!(
        next_n("cron(0 2 L * ? *)", w, at, "UTC", 2),
        ["2026-01-31T02:00:00Z", "2026-02-28T02:00:00Z"]
    );
    // Last Friday (6L): 2026-01-30, 2026-02-27.
    assert_eq!(
        next_n("cron(15 10 ? * 6L *)", w, at, "UTC", 2),
        ["2026-01-30T10:15:00Z", "2026-02-27T10:15:00Z"]
    );
    // Third Thursday (5#3): 2026-01-15, 2026-02-19.
    assert_eq!(
        next_n("cron(0 2 ? * THU#3 *)", w, at, "UTC", 2),
        ["2026-01-15T02:00:00Z", "2026-02-19T02:00:00Z"]
    );
    // 2026-02-01 is a Sunday, its nearest weekday in the month is Monday the 2nd;
    // 2026-05-31 is a Sunday, the last weekday of May is Friday the 29th.
    assert_eq!(
        next_n("cron(0 12 1W * ? *)", w, "2026-01-02T00:00:00Z", "UTC", 1),
        ["2026-02-02T12:00:00Z"]
    );
    assert_eq!(
        next_n("cron(0 12 LW * ? *)", w, "2026-05-01T00:00:00Z", "UTC", 1),
        ["2026-05-29T12:00:00Z"]
    );
    // `0/20` steps from 0: 0, 20, 40.
    assert_eq!(
        next_n("cron(0/20 5 * * ? *)", w, "2026-01-01T00:00:00Z", "UTC", 3),
        [
            "2026-01-01T05:00:00Z",
            "2026-01-01T05:20:00Z",
            "2026-01-01T05:40:00Z"
        ]
    );
}

#[test]
fn years_bound_the_schedule() {
    let s = Schedule::parse("cron(0 0 1 1 ? 2027)", MaintenanceWindow).expect("parses");
    let z = Zone::utc();
    let first = s
        .next_after(epoch("2026-06-01T00:00:00Z"), &z, 0)
        .expect("one");
    assert_eq!(iso(first.scheduled), "2027-01-01T00:00:00Z");
    assert_eq!(s.next_after(first.scheduled, &z, 0), None);
    let s = Schedule::parse("cron(0 0 1 1 ? *)", MaintenanceWindow).expect("parses");
    assert_eq!(s.next_after(epoch("2199-06-01T00:00:00Z"), &z, 0), None);
}

#[test]
fn schedules_follow_the_zones_wall_clock() {
    // SSM's example: Tuesdays 16:00 in Los Angeles (PST, UTC-8 in December).
    assert_eq!(
        next_n(
            "cron(0 16 ? * TUE *)",
            MaintenanceWindow,
            "2026-12-01T00:00:00Z",
            "America/Los_Angeles",
            1
        ),
        ["2026-12-02T00:00:00Z"]
    );
}

#[test]
fn spring_forward_runs_a_fixed_time_after_the_gap_and_skips_stepped_times() {
    // New York, 2026-03-08: 02:00 EST becomes 03:00 EDT.
    let fixed = next_n(
        "cron(30 2 * * ? *)",
        MaintenanceWindow,
        "2026-03-07T12:00:00Z",
        "America/New_York",
        3,
    );
    assert_eq!(
        fixed,
        [
            "2026-03-08T07:00:00Z", // 03:00 EDT
            "2026-03-09T06:30:00Z", // 02:30 EDT
            "2026-03-10T06:30:00Z"
        ]
    );
    let stepped = next_n(
        "cron(0/30 * * * ? *)",
        MaintenanceWindow,
        "2026-03-08T06:00:00Z", // 01:00 EST
        "America/New_York",
        4,
    );
    assert_eq!(
        stepped,
        [
            "2026-03-08T06:30:00Z", // 01:30 EST
            "2026-03-08T07:00:00Z", // 03:00 EDT
            "2026-03-08T07:30:00Z",
            "2026-03-08T08:00:00Z"
        ]
    );
}

#[test]
fn fall_back_runs_a_fixed_time_once_and_stepped_times_on_both_passes() {
    // New York, 2026-11-01: 02:00 EDT becomes 01:00 EST.
    let fixed = next_n(
        "cron(30 1 * * ? *)",
        MaintenanceWindow,
        "2026-10-31T12:00:00Z",
        "America/New_York",
        2,
    );
    assert_eq!(fixed, ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]);
    let stepped = next_n(
        "cron(0/30 1 * * ? *)",
        MaintenanceWindow,
        "2026-10-31T12:00:00Z",
        "America/New_York",
        5,
    );
    assert_eq!(
        stepped,
        [
            "2026-11-01T05:00:00Z", // 01:00 EDT
            "2026-11-01T05:30:00Z", // 01:30 EDT
            "2026-11-01T06:00:00Z", // 01:00 EST
            "2026-11-01T06:30:00Z", // 01:30 EST
            "2026-11-02T06:00:00Z"
        ]
    );
}

#[test]
fn lord_howes_half_hour_shift() {
    // Lord Howe, 2026-10-04: 02:00 (UTC+10:30) becomes 02:30 (UTC+11).
    let fixed = next_n(
        "cron(15 2 * * ? *)",
        MaintenanceWindow,
        "2026-10-03T12:00:00Z",
        "Australia/Lord_Howe",
        2,
    );
    assert_eq!(
        fixed,
        [
            "2026-10-03T15:30:00Z", // 02:30 +11:00, right after the gap
            "2026-10-04T15:15:00Z"
        ]
    );
}

#[test]
fn rates_count_from_the_anchor() {
    let s = Schedule::parse("rate(30 minutes)", Association).expect("parses");
    let z = Zone::utc();
    let anchor = epoch("2026-01-01T00:10:00Z");
    let after = |t: &str| s.next_after(epoch(t), &z, anchor).map(|o| iso(o.due));
    assert_eq!(
        after("2026-01-01T00:10:00Z").as_deref(),
        Some("2026-01-01T00:40:00Z")
    );
    assert_eq!(
        after("2026-01-01T00:39:59Z").as_deref(),
        Some("2026-01-01T00:40:00Z")
    );
    assert_eq!(
        after("2026-01-01T00:40:00Z").as_deref(),
        Some("2026-01-01T01:10:00Z")
    );
    assert_eq!(
        after("2025-12-31T00:00:00Z").as_deref(),
        Some("2026-01-01T00:10:00Z")
    );
    assert_eq!(s.rate_seconds(), Some(1800));
    // Elapsed time, not wall-clock: a day is 86400 s across a clock change.
    let d = Schedule::parse("rate(1 day)", MaintenanceWindow).expect("parses");
    let ny = zone("America/New_York");
    let a = epoch("2026-03-07T12:00:00Z");
    let runs: Vec<i64> = d
        .occurrences_after(a, &ny, a)
        .take(2)
        .map(|o| o.due)
        .collect();
    assert_eq!(runs, [a + 86_400, a + 2 * 86_400]);
}

#[test]
fn at_runs_once() {
    let s = Schedule::parse("at(2026-07-07T15:55:30)", MaintenanceWindow).expect("parses");
    assert!(s.is_one_time());
    let runs: Vec<String> = s
        .occurrences_after(epoch("2026-01-01T00:00:00Z"), &zone("Europe/Berlin"), 0)
        .map(|o| iso(o.due))
        .collect();
    assert_eq!(runs, ["2026-07-07T13:55:30Z"]);
    assert_eq!(
        s.next_after(epoch("2026-07-07T13:55:30Z"), &zone("Europe/Berlin"), 0),
        None
    );
    // In a gap it runs right after it, as a fixed cron time does.
    let gap = Schedule::parse("at(2026-03-29T02:30:00)", MaintenanceWindow).expect("parses");
    let o = gap
        .next_after(epoch("2026-01-01T00:00:00Z"), &zone("Europe/Berlin"), 0)
        .expect("a run");
    assert_eq!(iso(o.due), "2026-03-29T01:00:00Z"); // 03:00 CEST
}

#[test]
fn an_expression_that_never_fires_ends_the_search() {
    let z = zone("Europe/Berlin");
    for e in [
        "cron(0 0 31 2 ? *)",
        "cron(0 0 30 FEB ? *)",
        "cron(0 0 ? FEB 2#5 2026)",
    ] {
        let s = Schedule::parse(e, MaintenanceWindow).expect("parses");
        assert_eq!(
            s.next_after(epoch("2026-01-01T00:00:00Z"), &z, 0),
            None,
            "{e}"
        );
    }
    // The 29th of February waits for a leap year.
    assert_eq!(
        next_n(
            "cron(0 0 29 2 ? *)",
            MaintenanceWindow,
            "2026-01-01T00:00:00Z",
            "UTC",
            1
        ),
        ["2028-02-29T00:00:00Z"]
    );
}
