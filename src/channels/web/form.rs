//! What a POST to `/r/{code}` carries, and whether to accept it.
//!
//! CSRF without cookies. RFC 8058 forbids relying on cookies or other context, so the defence
//! is the URL itself: it carries an unguessable code, and a forger who does not know it cannot
//! name a link to reject (unknown codes get 404). On top of that, browsers tell us when a post
//! comes from another site (`Sec-Fetch-Site: cross-site`, or a foreign `Origin`); such posts are
//! refused — except for the exact RFC 8058 one-click body `List-Unsubscribe=One-Click`, which
//! mail clients may legitimately send from elsewhere and which is harmless for anyone who
//! already holds the code. Whatever is accepted must also say what it is: the one-click pair or
//! our own form's `confirm=ret`, so a bot posting arbitrary bodies records nothing.

use axum::body::Bytes;

pub const ONE_CLICK_KEY: &str = "List-Unsubscribe";
pub const ONE_CLICK_VALUE: &str = "One-Click";
/// The hidden field our confirmation form sends.
pub const CONFIRM_FIELD: (&str, &str) = ("confirm", "ret");

const MAX_FIELDS: usize = 32;
const MAX_VALUE_CHARS: usize = 1024;

pub type Fields = Vec<(String, String)>;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("the multipart body cannot be read")]
    Multipart,
    #[error("more than {MAX_FIELDS} form fields")]
    TooManyFields,
}

/// Form fields of a urlencoded or multipart body; other or missing types give no fields.
/// Values are cut to a bounded length: they are kept as evidence, not interpreted.
pub async fn parse(content_type: Option<&str>, body: Bytes) -> Result<Fields, FormError> {
    let mime = content_type
        .and_then(|c| c.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    let mut fields = Fields::new();
    match mime.as_deref() {
        Some("application/x-www-form-urlencoded") => {
            for (k, v) in form_urlencoded::parse(&body) {
                push(&mut fields, k.into_owned(), v.into_owned())?;
            }
        }
        Some("multipart/form-data") => {
            let boundary = content_type
                .and_then(|c| multer::parse_boundary(c).ok())
                .ok_or(FormError::Multipart)?;
            let mut mp = multer::Multipart::with_reader(std::io::Cursor::new(body), boundary);
            while let Some(field) = mp.next_field().await.map_err(|_| FormError::Multipart)? {
                let name = field.name().unwrap_or("").to_string();
                let value = field.text().await.map_err(|_| FormError::Multipart)?;
                push(&mut fields, name, value)?;
            }
        }
        _ => {}
    }
    Ok(fields)
}

fn push(fields: &mut Fields, k: String, v: String) -> Result<(), FormError> {
    if fields.len() >= MAX_FIELDS {
        return Err(FormError::TooManyFields);
    }
    let cut = |s: String| s.chars().take(MAX_VALUE_CHARS).collect::<String>();
    fields.push((cut(k), cut(v)));
    Ok(())
}

fn has(fields: &Fields, key: &str, value: &str) -> bool {
    fields.iter().any(|(k, v)| k == key && v.trim() == value)
}

/// The body is exactly RFC 8058's single pair.
pub fn is_exact_one_click(fields: &Fields) -> bool {
    fields.len() == 1 && has(fields, ONE_CLICK_KEY, ONE_CLICK_VALUE)
}

/// Request headers that tell where a browser post came from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Provenance<'a> {
    pub sec_fetch_site: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub host: Option<&'a str>,
}

/// True when a browser says the post comes from another site. `allowed` are the configured
/// public origins (`https://r.example.com`); the request's own `Host` is allowed as well.
pub fn is_cross_site(p: &Provenance<'_>, allowed: &[String]) -> bool {
    match p.sec_fetch_site.map(str::trim) {
        Some(s) if s.eq_ignore_ascii_case("cross-site") => return true,
        // Browsers set Sec-Fetch-Site themselves; pages cannot forge it.
        Some(s) if !s.is_empty() => return false,
        _ => {}
    }
    let Some(origin) = p.origin.map(str::trim) else {
        return false; // not a browser post, or a browser too old to say: the code decides
    };
    let Ok(u) = url::Url::parse(origin) else {
        return true; // `null` (sandboxed frames, data: pages) and garbage
    };
    let serialized = u.origin().ascii_serialization();
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(&serialized)) {
        return false;
    }
    let authority = match (u.host_str(), u.port()) {
        (Some(h), Some(port)) => format!("{h}:{port}"),
        (Some(h), None) => h.to_string(),
        _ => return true,
    };
    !p.host
        .is_some_and(|h| h.trim().eq_ignore_ascii_case(&authority))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostKind {
    /// RFC 8058 one-click from a mail client.
    OneClick,
    /// The button on our confirmation page.
    Page,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    CrossSite,
    NotAConfirmation,
}

pub fn classify(
    fields: &Fields,
    p: &Provenance<'_>,
    allowed: &[String],
) -> Result<PostKind, Refusal> {
    let exact_one_click = is_exact_one_click(fields);
    if !exact_one_click && is_cross_site(p, allowed) {
        return Err(Refusal::CrossSite);
    }
    if has(fields, ONE_CLICK_KEY, ONE_CLICK_VALUE) {
        Ok(PostKind::OneClick)
    } else if has(fields, CONFIRM_FIELD.0, CONFIRM_FIELD.1) {
        Ok(PostKind::Page)
    } else {
        Err(Refusal::NotAConfirmation)
    }
}

#[cfg(test)]
#[path = "form_tests.rs"]
mod tests;
