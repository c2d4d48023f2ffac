//! Which brands an inbound number serves, with each brand's words and keywords.

use std::collections::HashMap;

use super::config::SmsConfig;
use crate::domain::keywords::{BrandWords, KeywordSet};
use crate::domain::{Brand, Recipient};

/// A comparable form of a number or short code: E.164 when it parses as a phone number,
/// otherwise its digits (`3338`).
pub fn normalise_number(s: &str) -> String {
    match Recipient::parse(s) {
        Ok(Recipient::Phone(p)) => p,
        _ => s.chars().filter(|c| c.is_ascii_digit()).collect(),
    }
}

#[derive(Debug, Default)]
pub struct SmsDirectory {
    by_number: HashMap<String, Vec<BrandWords>>,
}

impl SmsDirectory {
    pub fn build(sms: &SmsConfig, brands: &[Brand]) -> Self {
        let words_for = |key: &str| -> Option<BrandWords> {
            let brand = brands.iter().find(|b| b.key == key)?;
            let keywords = sms
                .brand_keywords
                .get(key)
                .map(KeywordSet::from_config)
                .unwrap_or_default();
            Some(BrandWords::from_brand(brand, keywords))
        };
        let by_number = sms
            .numbers
            .iter()
            .map(|n| {
                (
                    normalise_number(&n.number),
                    n.brands.iter().filter_map(|k| words_for(k)).collect(),
                )
            })
            .collect();
        Self { by_number }
    }

    /// The brands served by `to`, or None when the number is not configured.
    pub fn brands_for(&self, to: &str) -> Option<&[BrandWords]> {
        self.entry(to).map(|(_, b)| b.as_slice())
    }

    /// `to` as it is configured (normalised), or None when the number is not configured.
    pub fn configured_number(&self, to: &str) -> Option<&str> {
        self.entry(to).map(|(n, _)| n.as_str())
    }

    fn entry(&self, to: &str) -> Option<(&String, &Vec<BrandWords>)> {
        // Providers send `To` in E.164, the stored form: skip parsing on that common path.
        self.by_number
            .get_key_value(to)
            .or_else(|| self.by_number.get_key_value(&normalise_number(to)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::sms::config::SmsNumber;

    #[test]
    fn numbers_match_in_any_form() {
        let brands = vec![Brand {
            key: "tsa".into(),
            iys_code: 1,
            brand_code: 11,
            name: "TSA".into(),
            short_names: vec!["TSA".into()],
        }];
        let cfg = SmsConfig {
            numbers: vec![
                SmsNumber {
                    number: "0850 123 45 67".into(),
                    brands: vec!["tsa".into()],
                },
                SmsNumber {
                    number: "3338".into(),
                    brands: vec!["tsa".into(), "nope".into()],
                },
            ],
            ..SmsConfig::default()
        };
        let d = SmsDirectory::build(&cfg, &brands);
        assert_eq!(d.brands_for("+908501234567").unwrap()[0].brand_code, 11);
        assert_eq!(
            d.brands_for("3338").unwrap().len(),
            1,
            "unknown brand keys are skipped (config validation reports them)"
        );
        assert!(d.brands_for("+905321234567").is_none());
    }
}
