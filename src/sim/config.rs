//! Simulator settings. The defaults reproduce production İYS as documented; the switches cover
//! the points docs/iys-api-notes.md marks unknown ([U]) or contradictory (§9, §10, §5 R4).

use serde::{Deserialize, Serialize};

/// An API user of the HS (created on hs.iys.org.tr in real life).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimUser {
    pub username: String,
    pub password: String,
    /// The HS number this user may act for (H353 otherwise).
    pub iys_code: i64,
}

/// What v1 does when the new `consentDate` equals the stored one (R3, [U]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EqualConsentDatePolicy {
    /// 400 H178, as [DEV] "strictly later" implies.
    #[default]
    Reject,
    /// Accept as a new movement.
    Accept,
}

/// How the H467 "üç iş günü" cutoff is computed (R4: İYS documents neither the counting nor
/// whether holidays count, [U]). Business days come from the simulator's own calendar
/// ([`super::business_days`]); `half_days_business` decides arife half days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum ThreeDayCutoff {
    /// docs/iys-api-notes.md §5 R4 simulator rule: cutoff = now − 3 business days (Mon–Fri without full
    /// holidays) at the same Istanbul time of day; refuse when `consentDate < cutoff`, a full
    /// timestamp compare.
    #[default]
    Timestamp,
    /// CODE:restruct's reading (R4): count the Mon–Fri days after `consentDate`'s Istanbul date
    /// up to and including today (holidays ignored, time of day ignored); refuse at 3 or more.
    CalendarDays,
    /// The legal-deadline reading: accept until 23:59:59 Istanbul time of the 3rd business day
    /// after the consent's local date.
    EndOfThirdBusinessDay,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    pub users: Vec<SimUser>,
    /// The HS number the simulator plays.
    pub iys_code: i64,
    /// Brand numbers of that HS (the master brand equals `iys_code` in the sandbox).
    pub brands: Vec<i64>,
    /// Known retailer (bayi) numbers; any other `retailerCode`/`retailerAccess` gives 403 H180.
    pub retailers: Vec<i64>,
    /// Seconds after submission before a batch is processed (production guidance: poll ≥ 300 s).
    pub batch_processing_delay: u64,
    /// Seconds pull lags behind now (the window is [now − 7 d, now − lag]).
    pub pull_lag: u64,
    pub three_day_rule_applies_to_ret: bool,
    pub three_day_cutoff: ThreeDayCutoff,
    pub allow_onay_over_onay: bool,
    pub equal_consent_date_policy: EqualConsentDatePolicy,
    /// Status answering a single status query for an unknown consent: 404 (errors body),
    /// 204 (empty) or 200 (`{}`).
    pub status_not_found: u16,
    /// MESAJ recipients must be Turkish mobiles (`^\+905\d{9}$`); anything else, a landline
    /// (`+90212…`) or a foreign number, gets 422 H121 on adds and batches. ARAMA may still be a
    /// landline. Off by default: İYS documents the rule (§4) but its enforcement is [U].
    pub strict_turkish_mobile: bool,
    /// 10/s (H124), 1000/h status (H086), 100/h history (H089), 100/h token (H084).
    pub rate_limits_enabled: bool,
    /// Subscription quota: adding a new record beyond it gives 422 H525.
    pub consent_limit: Option<u64>,
    /// Whether arife half days count as business days for H467.
    pub half_days_business: bool,
    /// Test-only: accept `http://` push URLs (production requires https, H531).
    pub allow_http_push: bool,
    /// Seconds the HS has to answer a push (5 s in production).
    pub push_timeout: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            users: vec![SimUser {
                username: "sim".into(),
                password: "sim".into(),
                iys_code: 700000,
            }],
            iys_code: 700000,
            brands: vec![700000],
            retailers: Vec::new(),
            batch_processing_delay: 300,
            pull_lag: 3600,
            three_day_rule_applies_to_ret: true,
            three_day_cutoff: ThreeDayCutoff::default(),
            allow_onay_over_onay: true,
            equal_consent_date_policy: EqualConsentDatePolicy::default(),
            status_not_found: 404,
            strict_turkish_mobile: false,
            rate_limits_enabled: true,
            consent_limit: None,
            half_days_business: true,
            allow_http_push: false,
            push_timeout: 5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_defaults() {
        let c: SimConfig = toml::from_str(
            r#"
            iys_code = 1
            brands = [1, 2]
            consent_limit = 10
            equal_consent_date_policy = "accept"
            three_day_cutoff = "calendar_days"
            strict_turkish_mobile = true
            [[users]]
            username = "u"
            password = "p"
            iys_code = 1
            "#,
        )
        .unwrap();
        assert_eq!(c.brands, vec![1, 2]);
        assert_eq!(c.consent_limit, Some(10));
        assert_eq!(c.batch_processing_delay, 300);
        assert_eq!(c.equal_consent_date_policy, EqualConsentDatePolicy::Accept);
        assert_eq!(c.three_day_cutoff, ThreeDayCutoff::CalendarDays);
        assert!(c.strict_turkish_mobile);
        let d = SimConfig::default();
        assert_eq!(d.three_day_cutoff, ThreeDayCutoff::Timestamp);
        assert!(!d.strict_turkish_mobile);
        assert!(toml::from_str::<SimConfig>("three_day_cutoff = \"weekly\"").is_err());
        assert!(c.rate_limits_enabled);
        assert!(toml::from_str::<SimConfig>("bogus = 1").is_err());
    }
}
