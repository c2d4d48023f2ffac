use super::*;

fn f(pairs: &[(&str, &str)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const OURS: &str = "https://r.example.com";

fn allowed() -> Vec<String> {
    vec![OURS.to_string()]
}

#[tokio::test]
async fn urlencoded_and_multipart_bodies_parse_alike() {
    let url = parse(
        Some("application/x-www-form-urlencoded"),
        Bytes::from_static(b"List-Unsubscribe=One-Click"),
    )
    .await
    .unwrap();
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
    let mp = parse(
        Some("multipart/form-data; boundary=XyZ"),
        Bytes::from(body.to_string()),
    )
    .await
    .unwrap();
    assert_eq!(url, f(&[("List-Unsubscribe", "One-Click")]));
    assert_eq!(mp, url);
    assert!(is_exact_one_click(&mp));
}

#[tokio::test]
async fn odd_bodies_are_typed_errors_or_empty() {
    assert_eq!(
        parse(Some("multipart/form-data"), Bytes::from_static(b"x")).await,
        Err(FormError::Multipart)
    );
    assert_eq!(
        parse(
            Some("multipart/form-data; boundary=b"),
            Bytes::from_static(b"--b\r\nnonsense")
        )
        .await,
        Err(FormError::Multipart)
    );
    assert!(
        parse(
            Some("text/plain"),
            Bytes::from_static(b"List-Unsubscribe=One-Click")
        )
        .await
        .unwrap()
        .is_empty()
    );
    assert!(parse(None, Bytes::new()).await.unwrap().is_empty());
    let many = "a=1&".repeat(40);
    assert_eq!(
        parse(Some("application/x-www-form-urlencoded"), Bytes::from(many)).await,
        Err(FormError::TooManyFields)
    );
    let long = format!("k={}", "é".repeat(5000));
    let got = parse(
        Some("application/x-www-form-urlencoded; charset=UTF-8"),
        Bytes::from(long),
    )
    .await
    .unwrap();
    assert_eq!(got[0].1.chars().count(), 1024);
}

#[test]
fn cross_site_signals() {
    let p = |sfs, origin, host| Provenance {
        sec_fetch_site: sfs,
        origin,
        host,
    };
    let a = allowed();
    assert!(is_cross_site(&p(Some("cross-site"), None, None), &a));
    assert!(!is_cross_site(
        &p(Some("same-origin"), Some("https://evil.example"), None),
        &a
    ));
    assert!(
        !is_cross_site(&p(None, None, None), &a),
        "mail servers send neither"
    );
    assert!(!is_cross_site(&p(None, Some(OURS), None), &a));
    assert!(!is_cross_site(
        &p(None, Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")),
        &a
    ));
    assert!(is_cross_site(
        &p(None, Some("https://evil.example"), Some("r.example.com")),
        &a
    ));
    assert!(is_cross_site(
        &p(None, Some("null"), Some("r.example.com")),
        &a
    ));
}

#[test]
fn one_click_is_exempt_only_when_exact() {
    let evil = Provenance {
        sec_fetch_site: Some("cross-site"),
        origin: Some("https://evil.example"),
        host: None,
    };
    let a = allowed();
    let one = f(&[("List-Unsubscribe", "One-Click")]);
    assert_eq!(classify(&one, &evil, &a), Ok(PostKind::OneClick));
    let padded = f(&[("List-Unsubscribe", "One-Click"), ("confirm", "ret")]);
    assert_eq!(classify(&padded, &evil, &a), Err(Refusal::CrossSite));
    let form = f(&[("confirm", "ret"), ("lang", "tr")]);
    assert_eq!(classify(&form, &evil, &a), Err(Refusal::CrossSite));
    let same = Provenance {
        sec_fetch_site: Some("same-origin"),
        ..evil
    };
    assert_eq!(classify(&form, &same, &a), Ok(PostKind::Page));
    assert_eq!(classify(&padded, &same, &a), Ok(PostKind::OneClick));
    assert_eq!(
        classify(&f(&[("x", "y")]), &same, &a),
        Err(Refusal::NotAConfirmation)
    );
    assert_eq!(
        classify(
            &f(&[("List-Unsubscribe", "Two-Clicks")]),
            &Provenance::default(),
            &a
        ),
        Err(Refusal::NotAConfirmation)
    );
}
