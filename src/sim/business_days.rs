//! The simulator's own Turkish business-day calendar, for İYS's H467 "üç iş günü" check.
//!
//! This is deliberately a second implementation and does not call `crate::domain::calendar`.
//! The simulator is the oracle the relay is tested against: if both counted business days with
//! the same code, a mistake there (a holiday skipped the wrong way, a local date taken in UTC,
//! an off-by-one at the window's edge) would make the relay and its oracle agree, and every test
//! would pass. Here the same holiday data (`config/tr-holidays-2020-2035.csv`) is read by a few
//! lines of its own, and the counting is written from docs/iys-api-notes.md §5 R4, not from the relay.
//!
//! Days outside the data fall back to plain Mon–Fri: the simulator answers every request like
//! İYS would rather than failing, while the relay itself fails closed there.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};

const HOLIDAYS_CSV: &str = include_str!("../../config/tr-holidays-2020-2035.csv");

/// İYS keeps Turkey time as a fixed GMT+3 (docs/iys-api-notes.md §2); Turkey has had no DST since 2016.
fn turkey() -> FixedOffset {
    FixedOffset::east_opt(3 * 3600).expect("valid offset")
}

/// The Turkey-time calendar date of an instant.
pub fn local_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&turkey()).date_naive()
}

fn from_local(day: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let naive = day.and_time(time) - Duration::hours(3);
    Utc.from_utc_datetime(&naive)
}

fn is_weekend(d: NaiveDate) -> bool {
    d.weekday().number_from_monday() > 5
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holiday {
    Full,
    /// Arife and 28 October: the afternoon is off.
    Half,
}

#[derive(Debug, Clone)]
pub struct SimCalendar {
    holidays: HashMap<NaiveDate, Holiday>,
    half_days_business: bool,
}

impl SimCalendar {
    /// The shipped Turkish data; `half_days_business` decides whether arife half days count.
    pub fn turkish(half_days_business: bool) -> Self {
        Self::parse(HOLIDAYS_CSV, half_days_business)
            .expect("the shipped holiday data parses (unit-tested)")
    }

    /// `date,name,kind` rows, `kind` = `full` or `half`. Names may be quoted and hold commas,
    /// so the date is read up to the first comma and the kind after the last one.
    pub fn parse(csv: &str, half_days_business: bool) -> Result<Self, String> {
        let mut lines = csv.lines().enumerate();
        match lines.next() {
            Some((_, h)) if h.trim() == "date,name,kind" => {}
            other => return Err(format!("bad header: {other:?}")),
        }
        let mut holidays = HashMap::new();
        for (i, line) in lines {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let bad = |why: &str| format!("line {}: {why}: {line}", i + 1);
            let (date, rest) = line.split_once(',').ok_or_else(|| bad("no fields"))?;
            let kind = rest.rsplit(',').next().unwrap_or_default();
            let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| bad("bad date"))?;
            let kind = match kind {
                "full" => Holiday::Full,
                "half" => Holiday::Half,
                _ => return Err(bad("kind must be full or half")),
            };
            holidays.insert(date, kind);
        }
        if holidays.is_empty() {
            return Err("no holidays".into());
        }
        Ok(Self {
            holidays,
            half_days_business,
        })
    }

    /// Mon–Fri and not a full holiday (a half day counts when so configured).
    pub fn is_business_day(&self, d: NaiveDate) -> bool {
        if is_weekend(d) {
            return false;
        }
        match self.holidays.get(&d) {
            Some(Holiday::Full) => false,
            Some(Holiday::Half) => self.half_days_business,
            None => true,
        }
    }

    /// `now` minus `n` business days, at the same Turkey time of day: the H467 cutoff of the
    /// `timestamp` reading. `None` only at the edge of chrono's date range.
    pub fn minus_business_days(&self, now: DateTime<Utc>, n: u32) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&turkey());
        let mut d = local.date_naive();
        let mut left = n;
        while left > 0 {
            d = d.pred_opt()?;
            if self.is_business_day(d) {
                left -= 1;
            }
        }
        Some(from_local(d, local.time()))
    }

    /// 23:59:59 Turkey time on the `n`-th business day after `at`'s local date.
    pub fn end_of_nth_business_day_after(
        &self,
        at: DateTime<Utc>,
        n: u32,
    ) -> Option<DateTime<Utc>> {
        let mut d = local_date(at);
        let mut left = n;
        while left > 0 {
            d = d.succ_opt()?;
            if self.is_business_day(d) {
                left -= 1;
            }
        }
        Some(from_local(d, NaiveTime::from_hms_opt(23, 59, 59)?))
    }
}

/// Mon–Fri days in (`from`, `to`], holidays ignored: CODE:restruct's count (R4).
pub fn weekdays_after(from: NaiveDate, to: NaiveDate) -> i64 {
    from.iter_days()
        .skip(1)
        .take_while(|d| *d <= to)
        .filter(|d| !is_weekend(*d))
        .count() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn shipped_data_has_quoted_names_and_both_kinds() {
        let c = SimCalendar::turkish(true);
        // "Atatürk'ü Anma, Gençlik ve Spor Bayramı" is quoted and holds a comma.
        assert!(!c.is_business_day(d("2026-05-19")));
        assert!(c.is_business_day(d("2026-10-28")), "half day counts");
        assert!(!SimCalendar::turkish(false).is_business_day(d("2026-10-28")));
        assert!(!c.is_business_day(d("2026-10-29")));
        assert!(!c.is_business_day(d("2026-11-21")), "Saturday");
        assert!(
            c.is_business_day(d("2040-01-03")),
            "outside the data: Mon–Fri"
        );
    }

    #[test]
    fn bad_data_is_refused() {
        assert!(SimCalendar::parse("day,kind\n", true).is_err());
        assert!(SimCalendar::parse("date,name,kind\n2026-01-01,x,most\n", true).is_err());
        assert!(SimCalendar::parse("date,name,kind\n2026-13-01,x,full\n", true).is_err());
        assert!(SimCalendar::parse("date,name,kind\n", true).is_err());
    }

    #[test]
    fn minus_business_days_keeps_the_time_and_skips_holidays() {
        let c = SimCalendar::turkish(true);
        // Monday 13:00 → Wednesday 13:00 across the weekend.
        assert_eq!(
            c.minus_business_days(t("2026-11-23T13:00:00+03:00"), 3),
            Some(t("2026-11-18T13:00:00+03:00"))
        );
        // Mon 2 Nov 2026: Fri 30 Oct, (29 Oct holiday), 28 Oct half day, Tue 27 Oct.
        assert_eq!(
            c.minus_business_days(t("2026-11-02T08:00:00+03:00"), 3),
            Some(t("2026-10-27T08:00:00+03:00"))
        );
        // 22:30Z on Sunday is Monday 01:30 in Turkey.
        assert_eq!(
            c.minus_business_days(t("2026-11-22T22:30:00Z"), 1),
            Some(t("2026-11-20T01:30:00+03:00"))
        );
    }

    #[test]
    fn end_of_third_business_day_and_weekday_count() {
        let c = SimCalendar::turkish(true);
        assert_eq!(
            c.end_of_nth_business_day_after(t("2026-03-04T10:00:00+03:00"), 3),
            Some(t("2026-03-09T23:59:59+03:00"))
        );
        // Wed → Mon: Thu, Fri, Mon.
        assert_eq!(weekdays_after(d("2026-03-04"), d("2026-03-09")), 3);
        assert_eq!(weekdays_after(d("2026-03-04"), d("2026-03-04")), 0);
        // Holidays are not skipped in this reading (19 May 2026 is one).
        assert_eq!(weekdays_after(d("2026-05-18"), d("2026-05-21")), 3);
    }
}
