//! Maintenance windows and freeze windows: how a time written by an operator becomes an instant,
//! and whether an instant falls inside a recurring freeze. Pure: `now` is always an argument.
//!
//! The rule for a window's `start` and `end` (documented in the README):
//! - an RFC 3339 instant (`2026-12-01T07:00:00Z`, `…+01:00`) is taken as that instant. A `Z`
//!   is always accepted; any other offset must be the one the window's zone uses at that instant;
//! - a local wall-clock time without offset (`2026-12-01T08:00`) is read in the window's zone;
//! - a local time that does not exist (skipped by a spring-forward change) is rejected, naming
//!   the gap; a local time that happens twice (fall-back) is rejected unless written with its
//!   offset. Nothing is ever shifted silently.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, LocalResult, NaiveDateTime, NaiveTime, Offset,
    TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A window bound as written: an instant with an offset, or a wall-clock time in the window's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowTime {
    At(DateTime<FixedOffset>),
    Local(NaiveDateTime),
}

impl From<DateTime<Utc>> for WindowTime {
    fn from(t: DateTime<Utc>) -> Self {
        WindowTime::At(t.fixed_offset())
    }
}

impl FromStr for WindowTime {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(WindowTime::At(t));
        }
        for f in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
            if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
                return Ok(WindowTime::Local(t));
            }
        }
        Err(format!(
            "{s:?} is not a time; write 2026-12-01T08:00 (wall clock in the window's timezone) \
             or 2026-12-01T07:00:00Z (an instant)"
        ))
    }
}

impl fmt::Display for WindowTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowTime::At(t) => f.write_str(&t.to_rfc3339()),
            WindowTime::Local(t) => write!(f, "{}", t.format("%Y-%m-%dT%H:%M:%S")),
        }
    }
}

impl Serialize for WindowTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WindowTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a written time cannot be an instant in its zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error(
        "{local} does not exist in {zone}: on {day} the clocks jump from {gap_start} to {gap_end}; \
         pick a time outside {gap_start}–{gap_end} or write an instant with its offset"
    )]
    Gap { local: String, zone: String, day: String, gap_start: String, gap_end: String },
    #[error(
        "{local} happens twice in {zone} (the clocks go back that night); write it with its \
         offset: {first} for the first, {second} for the second"
    )]
    Ambiguous { local: String, zone: String, first: String, second: String },
    #[error(
        "{given} has offset {offset}, but {zone} is at {expected} at that moment; use {expected}, \
         Z (UTC), or write the wall-clock time without an offset"
    )]
    WrongOffset { given: String, offset: String, zone: String, expected: String },
}

/// The instant `t` means in zone `tz`, per the module's rule.
pub fn resolve(t: WindowTime, tz: Tz) -> Result<DateTime<Utc>, TimeError> {
    match t {
        WindowTime::At(at) => {
            let utc = at.to_utc();
            let expected = tz.offset_from_utc_datetime(&utc.naive_utc()).fix();
            if at.offset().local_minus_utc() == 0 || *at.offset() == expected {
                Ok(utc)
            } else {
                Err(TimeError::WrongOffset {
                    given: at.to_rfc3339(),
                    offset: at.offset().to_string(),
                    zone: tz.name().into(),
                    expected: expected.to_string(),
                })
            }
        }
        WindowTime::Local(local) => match tz.from_local_datetime(&local) {
            LocalResult::Single(t) => Ok(t.to_utc()),
            LocalResult::Ambiguous(a, b) => Err(TimeError::Ambiguous {
                local: local.format("%Y-%m-%d %H:%M").to_string(),
                zone: tz.name().into(),
                first: a.fixed_offset().to_rfc3339(),
                second: b.fixed_offset().to_rfc3339(),
            }),
            LocalResult::None => {
                let (gap_start, gap_end) = gap_around(local, tz);
                Err(TimeError::Gap {
                    local: local.format("%Y-%m-%d %H:%M").to_string(),
                    zone: tz.name().into(),
                    day: local.date().to_string(),
                    gap_start: gap_start.format("%H:%M").to_string(),
                    gap_end: gap_end.format("%H:%M").to_string(),
                })
            }
        },
    }
}

/// The local times bounding the nonexistent hour(s) around `local`: the last instant before
/// the jump, shown in the old offset, and the same instant in the new one.
fn gap_around(local: NaiveDateTime, tz: Tz) -> (NaiveDateTime, NaiveDateTime) {
    // Walk back minute by minute to the last existing local time (gaps are at most a few hours).
    let mut before = local;
    for _ in 0..(24 * 60) {
        before -= Duration::minutes(1);
        if let LocalResult::Single(t) | LocalResult::Ambiguous(t, _) =
            tz.from_local_datetime(&before)
        {
            let jump = t + Duration::minutes(1);
            let old_offset = t.offset().fix();
            return (jump.naive_utc() + old_offset, jump.naive_local());
        }
    }
    (local, local)
}

/// Expected effect on users while the window is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    #[default]
    None,
    Degraded,
    PartialOutage,
    FullOutage,
}

impl Impact {
    pub fn label(self) -> &'static str {
        match self {
            Impact::None => "no impact expected",
            Impact::Degraded => "degraded performance",
            Impact::PartialOutage => "partial outage",
            Impact::FullOutage => "full outage",
        }
    }
}

/// A time of the week, `Fri 16:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekTime {
    pub day: Weekday,
    pub time: NaiveTime,
}

impl WeekTime {
    fn minute_of_week(self) -> u32 {
        self.day.num_days_from_monday() * 1440 + self.time.hour() * 60 + self.time.minute()
    }
}

impl FromStr for WeekTime {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("{s:?} is not a time of the week; write a day and a time, e.g. Fri 16:00");
        let (day, time) = s.trim().split_once(char::is_whitespace).ok_or_else(bad)?;
        let day: Weekday = day.parse().map_err(|_| bad())?;
        let time = NaiveTime::parse_from_str(time.trim(), "%H:%M").map_err(|_| bad())?;
        Ok(WeekTime { day, time })
    }
}

impl fmt::Display for WeekTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.day, self.time.format("%H:%M"))
    }
}

impl Serialize for WeekTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WeekTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A recurring weekly freeze of an environment, in wall-clock time of its zone:
/// `{ name = "weekend", from = "Fri 16:00", to = "Mon 08:00", timezone = "Europe/Berlin" }`.
/// `from` is inside, `to` is outside; `from` after `to` wraps over the end of the week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FreezeWindow {
    pub name: String,
    pub from: WeekTime,
    pub to: WeekTime,
    pub timezone: String,
}

impl FreezeWindow {
    /// Whether `at` falls inside this freeze. An unknown zone freezes nothing (validation
    /// refuses it before it is stored).
    pub fn is_frozen(&self, at: DateTime<Utc>) -> bool {
        let Ok(tz) = self.timezone.parse::<Tz>() else { return false };
        let local = at.with_timezone(&tz);
        let m = WeekTime { day: local.weekday(), time: local.time() }.minute_of_week();
        let (from, to) = (self.from.minute_of_week(), self.to.minute_of_week());
        if from <= to { from <= m && m < to } else { m >= from || m < to }
    }
}

/// The first freeze that holds at `at`.
pub fn frozen_by(freezes: &[FreezeWindow], at: DateTime<Utc>) -> Option<&FreezeWindow> {
    freezes.iter().find(|f| f.is_frozen(at))
}

/// `(field, message)` problems with an environment's freezes.
pub fn check_freezes(freezes: &[FreezeWindow]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, f) in freezes.iter().enumerate() {
        if f.timezone.parse::<Tz>().is_err() {
            out.push((
                format!("freezes[{i}].timezone"),
                format!(
                    "unknown time zone {:?}; use an IANA name such as Europe/Berlin",
                    f.timezone
                ),
            ));
        }
        if f.from == f.to {
            out.push((
                format!("freezes[{i}].to"),
                "the freeze starts and ends at the same time; it would cover nothing".into(),
            ));
        }
    }
    out
}

/// Problems with a window's timing against `now`, for announcing it (schedule, reschedule):
/// it must not have started yet.
pub fn check_schedulable(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if end <= now {
        out.push((
            "window.end",
            format!(
                "the window ended at {}; pick a window in the future",
                end.format("%Y-%m-%d %H:%M UTC")
            ),
        ));
    } else if start <= now {
        out.push(("window.start", format!("the window starts at {}, which has passed; an announced window must start in the future", start.format("%Y-%m-%d %H:%M UTC"))));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> Tz {
        chrono_tz::Europe::Berlin
    }

    fn t(s: &str) -> WindowTime {
        s.parse().expect("time")
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("instant").to_utc()
    }

    #[test]
    fn a_wall_clock_time_is_read_in_the_windows_zone() {
        assert_eq!(resolve(t("2026-12-01T08:00"), berlin()), Ok(utc("2026-12-01T07:00:00Z")));
        assert_eq!(resolve(t("2026-07-01T08:00"), berlin()), Ok(utc("2026-07-01T06:00:00Z")));
    }

    #[test]
    fn half_past_two_on_the_spring_forward_day_in_berlin_is_rejected_naming_the_gap() {
        let err = resolve(t("2026-03-29T02:30"), berlin()).expect_err("nonexistent");
        let msg = err.to_string();
        assert!(matches!(err, TimeError::Gap { .. }), "{msg}");
        assert!(msg.contains("does not exist in Europe/Berlin"), "{msg}");
        assert!(msg.contains("from 02:00 to 03:00"), "{msg}");
    }

    #[test]
    fn a_time_that_happens_twice_needs_its_offset() {
        let err = resolve(t("2026-10-25T02:30"), berlin()).expect_err("ambiguous");
        let msg = err.to_string();
        assert!(msg.contains("happens twice"), "{msg}");
        assert!(msg.contains("+02:00") && msg.contains("+01:00"), "{msg}");
        assert_eq!(
            resolve(t("2026-10-25T02:30:00+02:00"), berlin()),
            Ok(utc("2026-10-25T00:30:00Z"))
        );
        assert_eq!(
            resolve(t("2026-10-25T02:30:00+01:00"), berlin()),
            Ok(utc("2026-10-25T01:30:00Z"))
        );
    }

    #[test]
    fn an_offset_the_zone_does_not_use_then_is_rejected_but_utc_always_works() {
        // 02:30+01:00 on the spring-forward day is 01:30Z, when Berlin is already at +02:00.
        let err = resolve(t("2026-03-29T02:30:00+01:00"), berlin()).expect_err("wrong offset");
        assert!(err.to_string().contains("+02:00"), "{err}");
        assert_eq!(resolve(t("2026-03-29T01:30:00Z"), berlin()), Ok(utc("2026-03-29T01:30:00Z")));
    }

    #[test]
    fn times_round_trip_through_json_as_written() {
        for s in ["2026-12-01T08:00:00", "2026-12-01T07:00:00+00:00", "2026-12-01T08:00:00+01:00"] {
            let v: WindowTime = serde_json::from_value(serde_json::json!(s)).expect("parse");
            assert_eq!(serde_json::to_value(v).expect("json"), serde_json::json!(s));
        }
        assert!(serde_json::from_value::<WindowTime>(serde_json::json!("tomorrow")).is_err());
    }

    fn weekend() -> FreezeWindow {
        FreezeWindow {
            name: "weekend".into(),
            from: "Fri 16:00".parse().expect("from"),
            to: "Mon 08:00".parse().expect("to"),
            timezone: "Europe/Berlin".into(),
        }
    }

    #[test]
    fn a_weekend_freeze_wraps_over_the_end_of_the_week_in_local_time() {
        let f = weekend();
        // 2026-11-27 is a Friday; Berlin is at +01:00.
        assert!(!f.is_frozen(utc("2026-11-27T14:59:00Z")), "Fri 15:59 local");
        assert!(f.is_frozen(utc("2026-11-27T15:00:00Z")), "Fri 16:00 local");
        assert!(f.is_frozen(utc("2026-11-29T12:00:00Z")), "Sunday");
        assert!(f.is_frozen(utc("2026-11-30T06:59:00Z")), "Mon 07:59 local");
        assert!(!f.is_frozen(utc("2026-11-30T07:00:00Z")), "Mon 08:00 local");
        assert!(!f.is_frozen(utc("2026-11-25T10:00:00Z")), "Wednesday");
        // In summer the same wall-clock freeze starts an hour earlier in UTC.
        assert!(f.is_frozen(utc("2026-07-03T14:00:00Z")), "Fri 16:00 CEST");
        assert_eq!(
            frozen_by(&[weekend()], utc("2026-11-29T12:00:00Z")).map(|f| f.name.as_str()),
            Some("weekend")
        );
    }

    #[test]
    fn freeze_problems_are_named_by_field() {
        let mut f = weekend();
        f.timezone = "Mars/Base".into();
        f.to = f.from;
        let fields: Vec<String> = check_freezes(&[f]).into_iter().map(|(k, _)| k).collect();
        assert_eq!(fields, ["freezes[0].timezone", "freezes[0].to"]);
        assert!("Friday 16".parse::<WeekTime>().is_err());
    }

    #[test]
    fn only_a_future_window_can_be_announced() {
        let now = utc("2026-11-22T10:00:00Z");
        assert!(
            check_schedulable(utc("2026-11-23T10:00:00Z"), utc("2026-11-23T11:00:00Z"), now)
                .is_empty()
        );
        assert_eq!(
            check_schedulable(utc("2026-11-22T09:00:00Z"), utc("2026-11-22T11:00:00Z"), now)[0].0,
            "window.start"
        );
        assert_eq!(
            check_schedulable(utc("2026-11-21T09:00:00Z"), utc("2026-11-21T11:00:00Z"), now)[0].0,
            "window.end"
        );
    }
}
