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
