//! Transition tests for the IVR flow, and a walk over every reachable state checking the TwiML.

use super::*;

pub(crate) const CALLER: &str = "+905321234567";

pub(crate) fn brand(code: i64, name: &str) -> BrandRef {
    BrandRef {
        brand_code: code,
        name: name.into(),
    }
}

pub(super) fn start_with(caller: Option<&str>, brands: Vec<BrandRef>, cfg: &FlowConfig) -> Step {
    let input = Input::Start {
        caller: caller.map(String::from),
        brands,
    };
    step(&CallState::default(), input, cfg)
}

fn start(caller: Option<&str>) -> Step {
    start_with(caller, vec![brand(700001, "Acme")], &FlowConfig::default())
}

fn press(s: &Step, d: &str) -> Step {
    step(&s.next, Input::Digits(d.into()), &FlowConfig::default())
}

fn timeout(s: &Step) -> Step {
    step(&s.next, Input::Timeout, &FlowConfig::default())
}

/// `tr:welcome`, `en:switch_language`, `text:Acme`
fn heard(s: &Step) -> Vec<String> {
    s.prompts
        .iter()
        .map(|p| match p {
            Prompt::Clip { id, lang } => format!("{}:{}", lang.as_str(), id.as_str()),
            Prompt::Text { text, .. } => format!("text:{text}"),
        })
        .collect()
}

fn assert_gathers(s: &Step, digits: u32) {
    assert_eq!(s.gather.map(|g| g.num_digits), Some(digits), "{s:?}");
    assert!(!s.hangup && s.outcome.is_none(), "{s:?}");
}

/// The caller is asked to confirm `choice`.
fn assert_confirms(s: &Step, choice: Choice) {
    assert_eq!(s.next.stage, Stage::Confirm { choice });
}

fn assert_ended_without_record(s: &Step) {
    assert!(
        s.hangup && s.gather.is_none() && s.outcome.is_none(),
        "{s:?}"
    );
    assert_eq!(s.next.stage, Stage::Goodbye);
}

#[test]
fn opt_out_confirmed() {
    let s = start(Some(CALLER));
    assert_eq!(s.next.stage, Stage::MainMenu);
    assert_eq!(
        heard(&s),
        [
            "tr:welcome",
            "tr:main_menu_calls_msgs",
            "en:switch_language"
        ]
    );
    assert_gathers(&s, 1);

    let s = press(&s, "1");
    assert_confirms(&s, Choice::OptOut);
    assert_eq!(heard(&s), ["tr:confirm_optout_calls_msgs"]);
    assert_gathers(&s, 1);

    let s = press(&s, "1");
    assert_eq!(s.next.stage, Stage::Recorded);
    assert_eq!(heard(&s), ["tr:recorded_optout_calls_msgs", "tr:goodbye"]);
    assert!(s.hangup && s.gather.is_none());
    let o = s.outcome.expect("recorded");
    assert_eq!((o.brand_code, o.status), (700001, Status::Ret));
    assert_eq!(o.types, [ConsentType::Arama, ConsentType::Mesaj]);
    assert_eq!(o.recipient.as_str(), CALLER);
    assert_eq!(o.digits_pressed, ["1", "1"]);
    for v in [
        "tr/welcome@1",
        "en/switch_language@1",
        "tr/confirm_optout_calls_msgs@1",
    ] {
        assert!(
            o.prompt_versions.contains(&v.to_string()),
            "{v} in {:?}",
            o.prompt_versions
        );
    }
}

#[test]
fn opt_in_confirmed_calls_only() {
    let cfg = FlowConfig {
        covers_messages: false,
        ..FlowConfig::default()
    };
    let s = start_with(Some("905321234567"), vec![brand(42, "Acme")], &cfg);
    assert_eq!(heard(&s)[1], "tr:main_menu_calls");
    let s = step(&s.next, Input::Digits("2".into()), &cfg);
    assert_eq!(heard(&s), ["tr:confirm_optin_calls"]);
    let s = step(&s.next, Input::Digits("1".into()), &cfg);
    assert_eq!(heard(&s), ["tr:recorded_optin", "tr:goodbye"]);
    let o = s.outcome.expect("recorded");
    assert_eq!(
        (o.brand_code, o.status, o.types),
        (42, Status::Onay, vec![ConsentType::Arama])
    );
}

#[test]
fn back_out_at_confirm_then_hang_up_records_nothing() {
    let s = press(&press(&start(Some(CALLER)), "1"), "2");
    assert_eq!(s.next.stage, Stage::MainMenu);
    assert_gathers(&s, 1);
    let s = press(&s, "2");
    assert_confirms(&s, Choice::OptIn);
    let s = step(&s.next, Input::Hangup, &FlowConfig::default());
    assert!(s.prompts.is_empty());
    assert_ended_without_record(&s);
}

#[test]
fn timeouts_reprompt_then_end_politely() {
    let mut s = start(Some(CALLER));
    for n in 1..=3 {
        s = timeout(&s);
        assert_eq!(s.next.failures, n);
        assert_eq!(heard(&s)[..2], ["tr:no_input", "tr:main_menu_calls_msgs"]);
        assert_gathers(&s, 1);
    }
    let s = timeout(&s);
    assert_eq!(heard(&s), ["tr:ended_no_choice"]);
    assert_ended_without_record(&s);
    // Once ended, nothing more happens, whatever arrives.
    let again = press(&s, "1");
    assert!(again.prompts.is_empty() && again.outcome.is_none() && again.hangup);

    let strict = FlowConfig {
        max_reprompts: 0,
        ..FlowConfig::default()
    };
    let s = start_with(Some(CALLER), vec![brand(1, "A")], &strict);
    assert_ended_without_record(&step(&s.next, Input::Timeout, &strict));
}

#[test]
fn invalid_keys_reprompt_and_valid_keys_reset_the_count() {
    let mut s = start(Some(CALLER));
    for bad in ["7", "#", "12"] {
        s = press(&s, bad);
        assert_eq!(heard(&s)[0], "tr:invalid_choice", "{bad}");
        assert_eq!(s.next.stage, Stage::MainMenu);
    }
    assert_ended_without_record(&press(&s, "*"));
    let s = press(&press(&press(&start(Some(CALLER)), "7"), "7"), "9");
    assert_eq!(s.next.failures, 0, "9 (repeat) is a valid key");
    assert_eq!(heard(&s), ["tr:main_menu_calls_msgs", "en:switch_language"]);
    // Confirm accepts only 1, 2, 9.
    let c = press(&press(&start(Some(CALLER)), "1"), "5");
    assert_eq!(heard(&c)[0], "tr:invalid_choice");
    assert_confirms(&c, Choice::OptOut);
}

#[test]
fn withheld_or_foreign_caller_enters_number_with_read_back() {
    for caller in [
        None,
        Some("anonymous"),
        Some("+266696687"),
        Some("+14155550100"),
        Some("02121234567"),
        Some("client:x"),
    ] {
        let s = start(caller);
        assert_eq!(s.next.stage, Stage::EnterNumber, "{caller:?}");
        assert_eq!(heard(&s), ["tr:welcome", "tr:enter_number"]);
        assert_gathers(&s, 10);
    }
    let s = press(&start(None), "0532123456"); // leading zero: numDigits cut the last digit
    assert_eq!(heard(&s), ["tr:invalid_number", "tr:enter_number"]);
    let s = press(&s, "5321234567");
    assert_eq!(s.next.stage.name(), "ReadBack");
    let digits: Vec<String> = "5321234567"
        .chars()
        .map(|c| format!("tr:digit_{c}"))
        .collect();
    let mut expected = vec!["tr:readback_intro".to_string()];
    expected.extend(digits);
    expected.push("tr:readback_confirm".into());
    assert_eq!(heard(&s), expected);
    assert_gathers(&s, 1);

    let s = press(&s, "2"); // re-enter
    assert_eq!(s.next.stage, Stage::EnterNumber);
    let s = press(&press(&s, "5551112233"), "1");
    assert_eq!(s.next.stage, Stage::MainMenu);
    let o = press(&press(&s, "1"), "1").outcome.expect("recorded");
    assert_eq!(o.recipient.as_str(), "+905551112233");
    assert_eq!(
        o.digits_pressed,
        ["0532123456", "5321234567", "2", "5551112233", "1", "1", "1"]
    );
}

#[test]
fn multi_brand_number_asks_for_the_brand() {
    let brands = vec![
        brand(1, "Acme"),
        brand(2, "Çiçek Sepeti"),
        brand(3, "Şeker"),
    ];
    let s = start_with(Some(CALLER), brands, &FlowConfig::default());
    assert_eq!(s.next.stage, Stage::BrandMenu);
    assert_eq!(
        heard(&s),
        [
            "tr:welcome",
            "tr:brand_menu",
            "text:Acme",
            "tr:brand_option_1",
            "text:Çiçek Sepeti",
            "tr:brand_option_2",
            "text:Şeker",
            "tr:brand_option_3",
            "en:switch_language",
        ]
    );
    let s = press(&s, "4");
    assert_eq!(
        (s.next.stage.clone(), heard(&s)[0].as_str()),
        (Stage::BrandMenu, "tr:invalid_choice")
    );
    let s = press(&s, "2");
    assert_eq!(s.next.stage, Stage::MainMenu);
    assert!(
        s.next.brands.is_empty(),
        "the offer list leaves the token once chosen"
    );
    let s = press(&s, "1");
    assert_eq!(
        heard(&s),
        ["text:Çiçek Sepeti", "tr:confirm_optout_calls_msgs"]
    );
    assert_eq!(press(&s, "1").outcome.expect("recorded").brand_code, 2);

    let many: Vec<_> = (1..=12).map(|i| brand(i, &format!("B{i}"))).collect();
    let s = start_with(Some(CALLER), many, &FlowConfig::default());
    assert_eq!(s.next.brands.len(), 8);
    assert!(heard(&s).contains(&"tr:brand_option_8".to_string()));
    assert_eq!(
        press(&s, "9").next.stage,
        Stage::BrandMenu,
        "9 repeats, never a brand"
    );
}

#[test]
fn language_switch_both_ways() {
    let s = press(&start(Some(CALLER)), "0");
    assert_eq!(
        (s.next.lang, s.next.stage.clone()),
        (Lang::En, Stage::MainMenu)
    );
    assert_eq!(heard(&s), ["en:main_menu_calls_msgs", "tr:switch_language"]);
    let e = press(&press(&s, "1"), "1");
    assert_eq!(heard(&e), ["en:recorded_optout_calls_msgs", "en:goodbye"]);
    assert!(
        e.outcome
            .unwrap()
            .prompt_versions
            .contains(&"en/confirm_optout_calls_msgs@1".into())
    );
    let back = press(&s, "0");
    assert_eq!(back.next.lang, Lang::Tr);
    assert_eq!(
        heard(&back),
        ["tr:main_menu_calls_msgs", "en:switch_language"]
    );
}

#[test]
fn no_brand_configured_apologises_and_hangs_up() {
    let s = start_with(Some(CALLER), vec![], &FlowConfig::default());
    assert_eq!(heard(&s), ["tr:unavailable"]);
    assert_ended_without_record(&s);
}

#[test]
fn endless_repeat_is_capped() {
    let cfg = FlowConfig {
        max_turns: 5,
        ..FlowConfig::default()
    };
    let mut s = start_with(Some(CALLER), vec![brand(1, "A")], &cfg);
    for _ in 0..5 {
        s = step(&s.next, Input::Digits("9".into()), &cfg);
        assert_gathers(&s, 1);
    }
    let s = step(&s.next, Input::Digits("9".into()), &cfg);
    assert_ended_without_record(&s);
}

#[test]
fn digits_parameter_mapping() {
    assert_eq!(Input::from_digits(None), Input::Timeout);
    assert_eq!(Input::from_digits(Some("")), Input::Timeout);
    assert_eq!(Input::from_digits(Some(" x ")), Input::Timeout);
    assert_eq!(Input::from_digits(Some("1#")), Input::Digits("1#".into()));
    assert_eq!(Input::from_digits(Some("a1b")), Input::Digits("1".into()));
    assert_eq!(
        Input::from_digits(Some(&"5".repeat(100))),
        Input::Digits("5".repeat(16))
    );
    // Junk digits reaching `step` are cleaned the same way.
    let s = press(&start(Some(CALLER)), "<x>");
    assert_eq!(heard(&s)[0], "tr:no_input");
}

#[test]
fn debug_output_masks_phone_numbers() {
    let s = press(&start(None), "5321234567");
    let dbg = format!("{s:?} {:?}", press(&press(&press(&s, "1"), "1"), "1"));
    assert!(
        !dbg.contains("5321234567") && !dbg.contains("1234567"),
        "{dbg}"
    );
    assert!(dbg.contains("+90532*****67"));
}
