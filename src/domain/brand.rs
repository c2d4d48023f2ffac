//! Brands (marka) of the business: İYS numbers plus the words people use for them in SMS.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Brand {
    /// Short stable key used in URLs and config (`tsa`).
    pub key: String,
    /// The HS number in İYS.
    pub iys_code: i64,
    /// The brand number in İYS (equals `iys_code` for the master brand in the sandbox).
    pub brand_code: i64,
    /// Display name, shown on pages and read in prompts.
    pub name: String,
    /// Words that name this brand in an SMS on a shared short code (`TSA RET`).
    #[serde(default)]
    pub short_names: Vec<String>,
}

impl Brand {
    /// A brand for unit tests: HS number 1, the key upper-cased as its name.
    #[cfg(test)]
    pub fn sample(key: &str, brand_code: i64) -> Self {
        Brand {
            key: key.into(),
            iys_code: 1,
            brand_code,
            name: key.to_uppercase(),
            short_names: vec![],
        }
    }
}

/// The brand a person or a file names: its config key (`tsa`) or its İYS brand code (`700000`),
/// surrounding blanks ignored. The one rule for the APIs, the CLI and imports.
pub fn named<'a>(brands: &'a [Brand], name: &str) -> Option<&'a Brand> {
    let name = name.trim();
    brands.iter().find(|b| b.key == name).or_else(|| {
        let code: i64 = name.parse().ok()?;
        brands.iter().find(|b| b.brand_code == code)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_key_then_by_code() {
        // A key that looks like another brand's code names its own brand.
        let brands = [
            Brand::sample("tsa", 700000),
            Brand::sample("700000", 800000),
        ];
        assert_eq!(named(&brands, " tsa ").unwrap().brand_code, 700000);
        assert_eq!(named(&brands, "700000").unwrap().brand_code, 800000);
        assert_eq!(named(&brands, "800000").unwrap().key, "700000");
        assert!(named(&brands, "TSA").is_none());
        assert!(named(&brands, "").is_none());
        assert!(named(&brands, "900000").is_none());
    }
}
