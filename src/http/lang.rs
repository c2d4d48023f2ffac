//! Page language (the short-link pages and the console): Turkish unless the visitor asks for
//! English (toggle or `Accept-Language`).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Tr,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Tr => "tr",
            Lang::En => "en",
        }
    }

    /// The language's own name, for the toggle link.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Tr => "Türkçe",
            Lang::En => "English",
        }
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::Tr => Lang::En,
            Lang::En => Lang::Tr,
        }
    }

    fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?;
        if primary.eq_ignore_ascii_case("tr") {
            Some(Lang::Tr)
        } else if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// An explicit choice (`?lang=` or the form field) wins; then the best of tr/en in
    /// `Accept-Language` by q-value (earlier wins ties); Turkish otherwise.
    pub fn pick(explicit: Option<&str>, accept_language: Option<&str>) -> Lang {
        if let Some(l) = explicit.and_then(Lang::parse) {
            return l;
        }
        let mut best: Option<(Lang, f32)> = None;
        for item in accept_language.unwrap_or("").split(',') {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Lang::parse) else {
                continue;
            };
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .filter(|q| q.is_finite())
                .unwrap_or(1.0);
            if q > 0.0 && best.is_none_or(|(_, b)| q > b) {
                best = Some((lang, q));
            }
        }
        best.map(|(l, _)| l).unwrap_or(Lang::Tr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turkish_by_default_and_english_on_request() {
        assert_eq!(Lang::pick(None, None), Lang::Tr);
        assert_eq!(Lang::pick(None, Some("de-DE,fr;q=0.8")), Lang::Tr);
        assert_eq!(Lang::pick(None, Some("en-GB,en;q=0.9")), Lang::En);
        assert_eq!(Lang::pick(None, Some("en;q=0.5, tr-TR;q=0.9")), Lang::Tr);
        assert_eq!(Lang::pick(None, Some("tr;q=0, en;q=0.1")), Lang::En);
        assert_eq!(Lang::pick(Some("en"), Some("tr")), Lang::En);
        assert_eq!(Lang::pick(Some("xx"), Some("en")), Lang::En);
        assert_eq!(Lang::pick(None, Some(";;;,q=NaN,en;q=abc")), Lang::En);
    }
}
