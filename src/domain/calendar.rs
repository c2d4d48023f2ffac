//! Turkish business days and the İYS "üç iş günü" deadline.
//!
//! The data is the Diyanet/Law 2429 table shipped in `config/tr-holidays-2020-2035.csv`, compiled
//! into the binary (the service never reads `../shared` at run time). Operators can add or remove
//! days with an override file. Any date outside the covered years is an error, never a guess.
//!
//! Convention (see docs/ledger.md, "Deadlines"): the receipt day never counts; business day = Mon–Fri
//! and not a full holiday; half days (arife, 28 Oct) count unless configured otherwise;
//! deadline = 23:59:59 Europe/Istanbul on the 3rd business day after the local receipt date.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Europe::Istanbul;
use serde::Deserialize;

const EMBEDDED_CSV: &str = include_str!("../../config/tr-holidays-2020-2035.csv");

/// How many business days İYS allows between receipt and registration.
pub const LEGAL_BUSINESS_DAYS: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolidayKind {
    Full,
    Half,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind {
    Working,
    Half,
    Holiday,
    Weekend,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CalendarError {
    #[error("date {0} is outside the holiday data ({1}..={2}); extend the calendar data")]
    OutOfRange(NaiveDate, NaiveDate, NaiveDate),
    #[error("calendar data line {line}: {reason}")]
    BadData { line: usize, reason: String },
}

/// Operator override file (TOML): one-off holidays declared by law, or Diyanet corrections.
///
/// ```toml
/// [[add]]
/// date = "2031-12-31"
/// kind = "full"        # or "half"
/// name = "Genel tatil (Kanun ...)"
/// [[remove]]
/// date = "2030-02-04"
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    #[serde(default)]
    pub add: Vec<OverrideDay>,
    #[serde(default)]
    pub remove: Vec<RemoveDay>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideDay {
    pub date: NaiveDate,
    pub kind: OverrideKind,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveDay {
    pub date: NaiveDate,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverrideKind {
    Full,
    Half,
}

#[derive(Debug, Clone)]
pub struct BusinessCalendar {
    days: BTreeMap<NaiveDate, (HolidayKind, String)>,
    valid_from: NaiveDate,
    valid_to: NaiveDate,
    half_days_are_business: bool,
}

impl BusinessCalendar {
    /// The embedded Turkish calendar, half days counting as business days (the safe default).
    pub fn turkish() -> Self {
        Self::from_csv(EMBEDDED_CSV).expect("embedded calendar data is valid (unit-tested)")
    }

    pub fn from_csv(csv: &str) -> Result<Self, CalendarError> {
        let mut days = BTreeMap::new();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(csv.as_bytes());
        for (i, row) in reader.records().enumerate() {
            let line = i + 2;
            let row = row.map_err(|e| CalendarError::BadData {
                line,
                reason: e.to_string(),
            })?;
            let bad = |reason: &str| CalendarError::BadData {
                line,
                reason: reason.to_string(),
            };
            let date = NaiveDate::parse_from_str(row.get(0).unwrap_or(""), "%Y-%m-%d")
                .map_err(|_| bad("bad date"))?;
            let name = row.get(1).unwrap_or("").to_string();
            let kind = match row.get(2) {
                Some("full") => HolidayKind::Full,
                Some("half") => HolidayKind::Half,
                _ => return Err(bad("kind must be full or half")),
            };
            days.insert(date, (kind, name));
        }
        let (first, last) = match (days.keys().next(), days.keys().next_back()) {
            (Some(f), Some(l)) => (*f, *l),
            _ => {
                return Err(CalendarError::BadData {
                    line: 1,
                    reason: "no rows".into(),
                });
            }
        };
        Ok(Self {
            days,
            valid_from: NaiveDate::from_ymd_opt(first.year(), 1, 1).expect("valid"),
            valid_to: NaiveDate::from_ymd_opt(last.year(), 12, 31).expect("valid"),
            half_days_are_business: true,
        })
    }

    pub fn with_half_days_business(mut self, yes: bool) -> Self {
        self.half_days_are_business = yes;
        self
    }

    pub fn half_days_are_business(&self) -> bool {
        self.half_days_are_business
    }

    pub fn apply_overrides(mut self, o: &Overrides) -> Self {
        for r in &o.remove {
            self.days.remove(&r.date);
        }
        for a in &o.add {
            let kind = match a.kind {
                OverrideKind::Full => HolidayKind::Full,
                OverrideKind::Half => HolidayKind::Half,
            };
            self.days.insert(a.date, (kind, a.name.clone()));
        }
        self
    }

    pub fn valid_to(&self) -> NaiveDate {
        self.valid_to
    }

    pub fn holiday(&self, date: NaiveDate) -> Option<(HolidayKind, &str)> {
        self.days.get(&date).map(|(k, n)| (*k, n.as_str()))
    }

    fn check_range(&self, date: NaiveDate) -> Result<(), CalendarError> {
        if date < self.valid_from || date > self.valid_to {
            return Err(CalendarError::OutOfRange(
                date,
                self.valid_from,
                self.valid_to,
            ));
        }
        Ok(())
    }

    pub fn day_kind(&self, date: NaiveDate) -> Result<DayKind, CalendarError> {
        self.check_range(date)?;
        Ok(match (date.weekday(), self.days.get(&date)) {
            (Weekday::Sat | Weekday::Sun, _) => DayKind::Weekend,
            (_, Some((HolidayKind::Full, _))) => DayKind::Holiday,
            (_, Some((HolidayKind::Half, _))) => DayKind::Half,
            _ => DayKind::Working,
        })
    }

    pub fn is_business_day(&self, date: NaiveDate) -> Result<bool, CalendarError> {
        Ok(match self.day_kind(date)? {
            DayKind::Working => true,
            DayKind::Half => self.half_days_are_business,
            DayKind::Holiday | DayKind::Weekend => false,
        })
    }

    /// The `n`-th business day strictly after `date` (n >= 1).
    pub fn nth_business_day_after(
        &self,
        date: NaiveDate,
        n: u32,
    ) -> Result<NaiveDate, CalendarError> {
        self.nth_business_day(date, n, NaiveDate::succ_opt)
    }

    /// The `n`-th business day strictly before `date` (n >= 1).
    pub fn nth_business_day_before(
        &self,
        date: NaiveDate,
        n: u32,
    ) -> Result<NaiveDate, CalendarError> {
        self.nth_business_day(date, n, NaiveDate::pred_opt)
    }

    /// Walks from `date` one day at a time with `step` until `n` business days were passed.
    fn nth_business_day(
        &self,
        date: NaiveDate,
        n: u32,
        step: fn(&NaiveDate) -> Option<NaiveDate>,
    ) -> Result<NaiveDate, CalendarError> {
        let mut d = date;
        let mut found = 0;
        while found < n {
            d = step(&d).ok_or(CalendarError::OutOfRange(d, self.valid_from, self.valid_to))?;
            if self.is_business_day(d)? {
                found += 1;
            }
        }
        Ok(d)
    }

    /// `at` minus `n` business days: the same Istanbul wall-clock time on the `n`-th business
    /// day before `at`'s local date. İYS's H467 check compares the full consent timestamp with
    /// this instant (docs/iys-api-notes.md §5 R4), so a consent taken at 09:00 is refused at 09:01 three
    /// business days later, well before the end of that day.
    pub fn business_days_before(
        &self,
        at: DateTime<Utc>,
        n: u32,
    ) -> Result<DateTime<Utc>, CalendarError> {
        let local = at.with_timezone(&Istanbul);
        let day = self.nth_business_day_before(local.date_naive(), n)?;
        let naive = day.and_time(local.time());
        // No DST in Istanbul since 2016; `earliest` keeps this total if the tz data changes.
        Ok(Istanbul
            .from_local_datetime(&naive)
            .earliest()
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_else(|| Utc.from_utc_datetime(&(naive - Duration::hours(3)))))
    }

    /// End (23:59:59 Istanbul) of the `n`-th business day after the Istanbul date of `at`.
    pub fn end_of_nth_business_day(
        &self,
        at: DateTime<Utc>,
        n: u32,
    ) -> Result<DateTime<Utc>, CalendarError> {
        let local_date = at.with_timezone(&Istanbul).date_naive();
        let day = self.nth_business_day_after(local_date, n)?;
        Ok(end_of_local_day(day))
    }

    /// The legal deadline for registering in İYS a movement received at `received`.
    pub fn iys_deadline(&self, received: DateTime<Utc>) -> Result<DateTime<Utc>, CalendarError> {
        self.end_of_nth_business_day(received, LEGAL_BUSINESS_DAYS)
    }

    /// Number of business days in (from_date, to_date]. H467 itself compares timestamps; use
    /// [`BusinessCalendar::business_days_before`] for that.
    pub fn business_days_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<u32, CalendarError> {
        let mut n = 0;
        let mut d = from;
        while d < to {
            d = d
                .succ_opt()
                .ok_or(CalendarError::OutOfRange(d, self.valid_from, self.valid_to))?;
            if self.is_business_day(d)? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Years of data left after `today`; the service warns when less than one year remains.
    pub fn days_of_coverage_left(&self, today: NaiveDate) -> i64 {
        (self.valid_to - today).num_days()
    }
}

/// 23:59:59 Europe/Istanbul on `day`, as UTC.
pub fn end_of_local_day(day: NaiveDate) -> DateTime<Utc> {
    let t = NaiveTime::from_hms_opt(23, 59, 59).expect("valid time");
    // Istanbul has no DST since 2016, so the local time is never ambiguous; `earliest` keeps this
    // total even if the tz database changes.
    Istanbul
        .from_local_datetime(&day.and_time(t))
        .earliest()
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&(day.and_time(t) - Duration::hours(3))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cal() -> BusinessCalendar {
        BusinessCalendar::turkish()
    }
    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    /// Deadline for a receipt at noon Istanbul time on `day`, as an Istanbul date.
    fn deadline_day(c: &BusinessCalendar, day: &str) -> NaiveDate {
        let at = utc(&format!("{day}T12:00:00+03:00"));
        c.iys_deadline(at)
            .unwrap()
            .with_timezone(&Istanbul)
            .date_naive()
    }

    #[test]
    fn embedded_data_loads_and_covers_2020_to_2035() {
        let c = cal();
        assert_eq!(c.valid_from, d("2020-01-01"));
        assert_eq!(c.valid_to, d("2035-12-31"));
        assert_eq!(
            c.days
                .values()
                .filter(|(k, _)| *k == HolidayKind::Half)
                .count(),
            46
        );
    }

    #[test]
    fn every_full_row_is_not_a_business_day() {
        let c = cal();
        for (date, (kind, _)) in &c.days {
            if *kind == HolidayKind::Full {
                assert!(!c.is_business_day(*date).unwrap(), "{date}");
            }
        }
    }

    #[test]
    fn plain_week() {
        // Mon 2026-11-23 -> Tue, Wed, Thu: deadline Thursday 23:59:59 +03:00.
        let c = cal();
        let dl = c.iys_deadline(utc("2026-11-23T09:00:00Z")).unwrap();
        assert_eq!(dl, utc("2026-11-26T20:59:59Z"));
    }

    #[test]
    fn weekend_is_skipped_and_receipt_day_never_counts() {
        let c = cal();
        assert_eq!(deadline_day(&c, "2026-11-26"), d("2026-12-01")); // Thu -> Fri, Mon, Tue
        assert_eq!(deadline_day(&c, "2026-11-27"), d("2026-12-02")); // Fri -> Mon, Tue, Wed
        assert_eq!(deadline_day(&c, "2026-11-28"), d("2026-12-02")); // Sat -> Mon, Tue, Wed
        assert_eq!(deadline_day(&c, "2026-11-29"), d("2026-12-02")); // Sun -> Mon, Tue, Wed
    }

    #[test]
    fn local_date_decides_not_utc_date() {
        // 23:30Z Monday is 02:30 Tuesday in Istanbul: counting starts Wednesday.
        let c = cal();
        let dl = c.iys_deadline(utc("2026-11-23T23:30:00Z")).unwrap();
        assert_eq!(dl, utc("2026-11-27T20:59:59Z"));
    }

    #[test]
    fn new_year() {
        let c = cal();
        // Wed 2026-12-30 -> Thu 31, (Fri 1 Jan holiday), Mon 4, Tue 5.
        assert_eq!(deadline_day(&c, "2026-12-30"), d("2027-01-05"));
        // 31 Dec is not a half day.
        assert_eq!(c.day_kind(d("2026-12-31")).unwrap(), DayKind::Working);
    }

    #[test]
    fn october_28_half_day_both_readings() {
        let c = cal();
        // 2026-10-28 Wed (half), 29 Thu (full). Receipt Tue 27.
        assert_eq!(c.day_kind(d("2026-10-28")).unwrap(), DayKind::Half);
        assert_eq!(deadline_day(&c, "2026-10-27"), d("2026-11-02")); // 28, 30, Mon 2
        let strict = cal().with_half_days_business(false);
        assert_eq!(deadline_day(&strict, "2026-10-27"), d("2026-11-03")); // 30, 2, 3
    }

    #[test]
    fn ramazan_bayrami_2026() {
        // Arife Thu 2026-03-19 (half), bayram Fri 20 – Sun 22.
        let c = cal();
        assert_eq!(deadline_day(&c, "2026-03-18"), d("2026-03-24")); // 19(half), Mon 23, Tue 24
        let strict = cal().with_half_days_business(false);
        assert_eq!(deadline_day(&strict, "2026-03-18"), d("2026-03-25"));
    }

    #[test]
    fn kurban_bayrami_2026() {
        // Arife Tue 2026-05-26 (half), bayram Wed 27 – Sat 30.
        let c = cal();
        assert_eq!(deadline_day(&c, "2026-05-25"), d("2026-06-02")); // 26, Mon 1, Tue 2
        let strict = cal().with_half_days_business(false);
        assert_eq!(deadline_day(&strict, "2026-05-25"), d("2026-06-03"));
        // Receipt during the bayram itself.
        assert_eq!(deadline_day(&c, "2026-05-28"), d("2026-06-03")); // Mon 1, Tue 2, Wed 3
    }

    #[test]
    fn kurban_bayrami_2027_starts_on_a_weekend() {
        // Arife Sat 2027-05-15, bayram Sun 16 – Wed 19. Receipt Fri 14.
        let c = cal();
        assert_eq!(deadline_day(&c, "2027-05-14"), d("2027-05-24")); // Thu 20, Fri 21, Mon 24
    }

    #[test]
    fn ramazan_bayrami_2028_on_weekend_and_monday() {
        // Arife Fri 2028-02-25 (half), bayram Sat 26 – Mon 28. Receipt Thu 24.
        let c = cal();
        assert_eq!(deadline_day(&c, "2028-02-24"), d("2028-03-01")); // 25(half), Tue 29, Wed 1
        let strict = cal().with_half_days_business(false);
        assert_eq!(deadline_day(&strict, "2028-02-24"), d("2028-03-02"));
    }

    #[test]
    fn kurban_2029_touching_23_nisan() {
        // 2029-04-23 Mon is both 23 Nisan and Kurban arife: a full day. Bayram Tue 24 – Fri 27.
        let c = cal();
        assert_eq!(c.day_kind(d("2029-04-23")).unwrap(), DayKind::Holiday);
        assert_eq!(deadline_day(&c, "2029-04-20"), d("2029-05-03")); // Mon 30, (1 May), Wed 2, Thu 3
    }

    #[test]
    fn leap_day() {
        let c = cal();
        // Tue 2028-02-29 is a business day; receipt Mon 28 (bayram) -> Tue 29, Wed 1, Thu 2.
        assert_eq!(deadline_day(&c, "2028-02-28"), d("2028-03-02"));
    }

    #[test]
    fn business_days_before_keeps_the_time_of_day() {
        let c = cal();
        // Mon 23 Nov 2026 13:00 → Fri, Thu, Wed: Wed 18 Nov 13:00 (across a weekend).
        assert_eq!(
            c.business_days_before(utc("2026-11-23T13:00:00+03:00"), 3),
            Ok(utc("2026-11-18T13:00:00+03:00"))
        );
        // Mon 2 Nov 2026: Fri 30 Oct, (Thu 29 Oct holiday), Wed 28 Oct half day, Tue 27 Oct.
        let mon = utc("2026-11-02T08:15:30+03:00");
        assert_eq!(
            c.business_days_before(mon, 3),
            Ok(utc("2026-10-27T08:15:30+03:00"))
        );
        let strict = cal().with_half_days_business(false);
        assert_eq!(
            strict.business_days_before(mon, 3),
            Ok(utc("2026-10-26T08:15:30+03:00"))
        );
        // From a Saturday the count starts on Friday.
        assert_eq!(
            c.business_days_before(utc("2026-11-21T23:30:00+03:00"), 1),
            Ok(utc("2026-11-20T23:30:00+03:00"))
        );
        // The local date decides: 22:30 UTC Sunday is already Monday 01:30 in Istanbul.
        assert_eq!(
            c.business_days_before(utc("2026-11-22T22:30:00Z"), 1),
            Ok(utc("2026-11-20T01:30:00+03:00"))
        );
        assert!(matches!(
            c.business_days_before(utc("2020-01-02T12:00:00+03:00"), 3),
            Err(CalendarError::OutOfRange(..))
        ));
    }

    #[test]
    fn out_of_range_is_an_error() {
        let c = cal();
        assert!(matches!(
            c.iys_deadline(utc("2035-12-30T10:00:00Z")),
            Err(CalendarError::OutOfRange(..))
        ));
        assert!(matches!(
            c.iys_deadline(utc("2019-06-01T10:00:00Z")),
            Err(CalendarError::OutOfRange(..))
        ));
    }

    #[test]
    fn overrides_add_and_remove() {
        let o: Overrides = toml::from_str(
            r#"
            [[add]]
            date = "2026-11-24"
            kind = "full"
            name = "Genel tatil"
            [[remove]]
            date = "2026-10-29"
            "#,
        )
        .unwrap();
        let c = cal().apply_overrides(&o);
        assert_eq!(c.day_kind(d("2026-11-24")).unwrap(), DayKind::Holiday);
        assert_eq!(c.day_kind(d("2026-10-29")).unwrap(), DayKind::Working);
        assert_eq!(deadline_day(&c, "2026-11-23"), d("2026-11-27"));
    }

    #[test]
    fn bad_csv_is_rejected_with_line() {
        let e = BusinessCalendar::from_csv("date,name,kind\n2026-01-01,x,sometimes\n").unwrap_err();
        assert_eq!(
            e,
            CalendarError::BadData {
                line: 2,
                reason: "kind must be full or half".into()
            }
        );
    }

    proptest! {
        #[test]
        fn deadline_properties(secs in 1_577_836_800i64..2_080_000_000i64, half in any::<bool>()) {
            // 2020-01-01 .. 2035-11 so the 3rd business day stays inside the data.
            let c = cal().with_half_days_business(half);
            let at = Utc.timestamp_opt(secs, 0).unwrap();
            let dl = c.iys_deadline(at).unwrap();
            prop_assert!(dl > at);
            let recv = at.with_timezone(&Istanbul).date_naive();
            let dday = dl.with_timezone(&Istanbul).date_naive();
            prop_assert!(c.is_business_day(dday).unwrap());
            prop_assert_eq!(c.business_days_between(recv, dday).unwrap(), 3);
            prop_assert_eq!(dl.with_timezone(&Istanbul).time(), NaiveTime::from_hms_opt(23, 59, 59).unwrap());
        }
    }
}
