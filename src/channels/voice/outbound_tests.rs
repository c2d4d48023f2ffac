use super::*;
use crate::channels::voice::flow::{self, Prompt};
use crate::domain::Status;

const RETURN: &str = "https://dialer.example/continue?leg=7";

fn cfg() -> FlowConfig {
    FlowConfig::default()
}

fn start(entry: Entry, callee: &str, return_url: Option<&str>) -> Step {
    let s = OutboundStart {
        entry,
        call: OutboundCall {
            direction: "outbound-api".into(),
            return_url: return_url.map(str::to_string),
            brand_from_grant: true,
        },
        brand: Some(BrandRef {
            brand_code: 700000,
            name: "Demo".into(),
        }),
        recipient: turkish_phone(callee),
        lang: Lang::Tr,
    };
    flow::step(&CallState::default(), Input::StartOutbound(s), &cfg())
}

fn press(s: &Step, d: &str) -> Step {
    flow::step(&s.next, Input::Digits(d.into()), &cfg())
}

fn timeout(s: &Step) -> Step {
    flow::step(&s.next, Input::Timeout, &cfg())
}

fn ids(s: &Step) -> Vec<PromptId> {
    s.prompts
        .iter()
        .filter_map(|p| match p {
            Prompt::Clip { id, .. } => Some(*id),
            Prompt::Text { .. } => None,
        })
        .collect()
}

#[test]
fn announce_nine_confirm_records_and_returns() {
    let s = start(Entry::Announce, "+905321234567", Some(RETURN));
    assert_eq!(ids(&s), vec![PromptId::OutboundOfferCallsMsgs]);
    assert_eq!(s.gather.map(|g| g.num_digits), Some(1));
    let s = press(&s, "9");
    assert_eq!(ids(&s), vec![PromptId::OutboundConfirmCallsMsgs]);
    assert!(s.outcome.is_none());
    let s = press(&s, "1");
    let o = s.outcome.clone().expect("recorded");
    assert_eq!(o.status, Status::Ret);
    assert_eq!(o.types, vec![ConsentType::Arama, ConsentType::Mesaj]);
    assert_eq!(o.digits_pressed, vec!["9", "1"]);
    assert!(
        o.prompt_versions
            .contains(&"tr/outbound_offer_calls_msgs@1".to_string())
    );
    assert_eq!(ids(&s), vec![PromptId::RecordedOptoutCallsMsgs]);
    assert_eq!(
        s.redirect.as_deref(),
        Some("https://dialer.example/continue?leg=7&iys_relay=recorded")
    );
    assert!(!s.hangup && s.gather.is_none());
    assert_eq!(s.next.stage, Stage::Recorded);
    // A retried confirm on the finished state records nothing more.
    assert!(press(&s, "1").outcome.is_none());
}

#[test]
fn landline_covers_calls_only_and_without_return_hangs_up() {
    let s = start(Entry::InCall { digits: None }, "+902121234567", None);
    assert_eq!(ids(&s), vec![PromptId::OutboundConfirmCalls]);
    let s = press(&s, "1");
    assert_eq!(s.outcome.as_ref().unwrap().types, vec![ConsentType::Arama]);
    assert_eq!(
        ids(&s),
        vec![PromptId::RecordedOptoutCalls, PromptId::OutboundGoodbye]
    );
    assert!(s.hangup && s.redirect.is_none());
}

#[test]
fn silence_at_the_offer_hands_back_at_once() {
    let s = timeout(&start(Entry::Announce, "+905321234567", Some(RETURN)));
    assert!(ids(&s).is_empty() && s.outcome.is_none());
    assert_eq!(
        s.redirect.as_deref(),
        Some("https://dialer.example/continue?leg=7&iys_relay=no_choice")
    );
}

#[test]
fn wrong_keys_and_timeouts_reprompt_then_give_up() {
    let mut s = start(Entry::Announce, "+905321234567", Some(RETURN));
    for _ in 0..3 {
        s = press(&s, "5");
        assert_eq!(
            ids(&s),
            vec![PromptId::InvalidChoice, PromptId::OutboundOfferCallsMsgs]
        );
    }
    let end = press(&s, "5");
    assert!(end.redirect.unwrap().ends_with("iys_relay=no_choice"));

    let mut s = press(&s, "9");
    for _ in 0..3 {
        s = timeout(&s);
        assert_eq!(
            ids(&s),
            vec![PromptId::NoInput, PromptId::OutboundConfirmCallsMsgs]
        );
    }
    let end = timeout(&s);
    assert_eq!(ids(&end), vec![PromptId::OutboundNotRecorded]);
    assert!(end.outcome.is_none());
    assert!(end.redirect.unwrap().ends_with("iys_relay=no_choice"));
}

#[test]
fn cancel_at_the_confirmation_records_nothing() {
    let s = press(
        &start(
            Entry::InCall {
                digits: Some("9".into()),
            },
            "05321234567",
            Some(RETURN),
        ),
        "2",
    );
    assert!(s.outcome.is_none());
    assert_eq!(ids(&s), vec![PromptId::OutboundNotRecorded]);
    assert!(s.redirect.unwrap().ends_with("iys_relay=cancelled"));
}

#[test]
fn in_call_entries_by_digits() {
    let other = start(
        Entry::InCall {
            digits: Some("3".into()),
        },
        "+905321234567",
        None,
    );
    assert_eq!(other.next.stage, Stage::Offer);
    assert_eq!(
        ids(&other),
        vec![PromptId::InvalidChoice, PromptId::OutboundOfferCallsMsgs]
    );
    let empty = start(
        Entry::InCall {
            digits: Some(String::new()),
        },
        "+905321234567",
        Some(RETURN),
    );
    assert!(empty.redirect.unwrap().ends_with("iys_relay=no_choice"));
}

#[test]
fn no_brand_or_foreign_number_is_unavailable() {
    let s = start(Entry::Announce, "+442071234567", Some(RETURN));
    assert_eq!(ids(&s), vec![PromptId::Unavailable]);
    assert!(s.redirect.unwrap().ends_with("iys_relay=unavailable"));
    assert!(turkish_phone("anonymous").is_none());
}

#[test]
fn result_is_appended_before_a_fragment() {
    assert_eq!(
        with_result("https://d.example/x", Handback::Recorded),
        "https://d.example/x?iys_relay=recorded"
    );
    assert_eq!(
        with_result("https://d.example/x?a=1#rc=2", Handback::Cancelled),
        "https://d.example/x?a=1&iys_relay=cancelled#rc=2"
    );
}

#[test]
fn grants_round_trip_and_do_not_open_as_call_state() {
    let secret = b"test-secret-0123456789abcdef0123";
    let now = chrono::DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let g = Grant {
        brand_code: 700001,
        return_url: Some(RETURN.into()),
        lang: Some(Lang::En),
    };
    let t = seal_grant(&g, secret, now + chrono::Duration::days(1));
    assert_eq!(open_grant(&t, secret, now), Ok(g));
    assert_eq!(
        open_grant(&t, secret, now + chrono::Duration::days(1)),
        Err(TokenError::Expired)
    );
    assert_eq!(
        open_grant(&t, b"another-secret", now),
        Err(TokenError::BadSignature)
    );
    // Another purpose's token (a call state) under the same secret does not open as a grant.
    let st = super::super::token::seal(&CallState::default(), "", secret, now);
    assert_eq!(open_grant(&st, secret, now), Err(TokenError::BadSignature));
}

#[test]
fn return_urls_are_checked() {
    assert!(check_return_url(RETURN).is_ok());
    assert!(check_return_url("ftp://x.example/").is_err());
    assert!(check_return_url("/relative").is_err());
    assert!(check_return_url(&format!("https://x.example/{}", "a".repeat(1100))).is_err());
}
