//! Walks every state the flow can reach and checks each TwiML document it would return.

use std::collections::{HashSet, VecDeque};

use super::*;
use crate::channels::twiml_check::{Node, check_allowed, parse};
use crate::channels::voice::render::{PromptMode, PromptUrls, Voices, render};

use super::tests::{CALLER, brand, start_with};

/// Checks one rendered document; returns the clip ids it plays (`tr/welcome`).
fn check_document(step: &Step, mode: PromptMode) -> Vec<String> {
    let urls = PromptUrls::new(
        "https://r.example/vp",
        "https://r.example/ivr?x=1",
        "tok.en",
    );
    let xml = render(step, &urls, mode, &Voices::default()).to_xml();
    let root = parse(&xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    check_allowed(&root).unwrap_or_else(|e| panic!("{e}: {xml}"));
    let names: Vec<_> = root.children.iter().map(|n| n.name.as_str()).collect();
    if step.gather.is_some() {
        assert_eq!(names, ["Gather", "Redirect"], "{xml}");
        assert_eq!(
            root.children[0].attr("action"),
            Some("https://r.example/ivr?x=1&t=tok.en")
        );
        assert_eq!(root.children[0].attr("method"), Some("POST"));
    } else if let Some(url) = &step.redirect {
        // An outbound call going back to the dialer's own flow.
        assert_eq!(names.last(), Some(&"Redirect"), "{xml}");
        assert_eq!(
            root.children.last().map(|n| n.text.as_str()),
            Some(url.as_str())
        );
        assert!(!names.contains(&"Hangup"), "{xml}");
    } else {
        assert_eq!(names.last(), Some(&"Hangup"), "{xml}");
    }
    let root_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("voice-prompts");
    let mut ids = Vec::new();
    for n in root.walk() {
        let n: &Node = n;
        match n.name.as_str() {
            "Play" => {
                let rel = n
                    .text
                    .strip_prefix("https://r.example/vp/")
                    .expect("prompt URL");
                assert!(root_dir.join(rel).is_file(), "{rel} missing");
                ids.push(rel.trim_end_matches(".wav").to_string());
            }
            "Say" => {
                assert!(!n.text.trim().is_empty(), "empty Say in {xml}");
                assert!(matches!(n.attr("language"), Some("tr-TR" | "en-US")));
            }
            _ => {}
        }
    }
    ids
}

#[test]
fn every_reachable_document_is_valid_twiml_and_every_prompt_is_used() {
    let inputs: Vec<Input> = [
        "0",
        "1",
        "2",
        "3",
        "4",
        "9",
        "#",
        "12",
        "5321234567",
        "5059876543",
        "1234567890",
    ]
    .iter()
    .map(|d| Input::Digits(d.to_string()))
    .chain([Input::Timeout, Input::Hangup])
    .collect();
    let mut played: HashSet<String> = HashSet::new();
    let mut states = 0;
    for (covers_messages, default_lang) in [
        (true, Lang::Tr),
        (false, Lang::Tr),
        (true, Lang::En),
        (false, Lang::En),
    ] {
        let cfg = FlowConfig {
            covers_messages,
            default_lang,
            ..FlowConfig::default()
        };
        let mut firsts = Vec::new();
        for caller in [Some(CALLER), None] {
            for n_brands in [0, 1, 3, 8] {
                let brands = (1..=n_brands)
                    .map(|i| brand(i, &format!("Marka {i}")))
                    .collect();
                firsts.push(start_with(caller, brands, &cfg));
            }
        }
        firsts.extend(outbound_starts(&cfg));
        {
            for first in firsts {
                let mut seen = HashSet::new();
                let mut queue = VecDeque::from([first]);
                while let Some(s) = queue.pop_front() {
                    for mode in [PromptMode::Play, PromptMode::Say] {
                        played.extend(check_document(&s, mode));
                    }
                    let n = &s.next;
                    // Which brand was chosen does not change the document shape; keep the walk small.
                    let key = format!(
                        "{:?}|{:?}|{}|{}|{}|{:?}",
                        n.stage,
                        n.lang,
                        n.failures,
                        n.brand.is_some(),
                        n.recipient.is_some(),
                        n.outbound
                    );
                    if !seen.insert(key) {
                        continue;
                    }
                    states += 1;
                    for i in &inputs {
                        queue.push_back(step(n, i.clone(), &cfg));
                    }
                }
            }
        }
    }
    assert!(states > 100, "walk explored only {states} states");
    for id in PromptId::ALL {
        for lang in Lang::ALL {
            let key = format!("{}/{}", lang.as_str(), id.as_str());
            assert!(
                played.contains(&key),
                "{key} is never played (dead prompt?)"
            );
        }
    }
}

/// Every way an outbound call can start: each entry, mobile / landline / foreign callee, with
/// and without a brand and a return URL.
fn outbound_starts(cfg: &FlowConfig) -> Vec<Step> {
    use crate::channels::voice::outbound::{Entry, OutboundCall, OutboundStart, turkish_phone};
    let entries = [
        Entry::Announce,
        Entry::InCall { digits: None },
        Entry::InCall {
            digits: Some("9".into()),
        },
        Entry::InCall {
            digits: Some("3".into()),
        },
        Entry::InCall {
            digits: Some(String::new()),
        },
    ];
    let mut out = Vec::new();
    for entry in entries {
        for callee in ["+905321234567", "+902121234567", "+442071234567"] {
            for return_url in [Some("https://d.example/next?a=1"), None] {
                for with_brand in [true, false] {
                    let start = OutboundStart {
                        entry: entry.clone(),
                        call: OutboundCall {
                            direction: "outbound-api".into(),
                            return_url: return_url.map(str::to_string),
                            brand_from_grant: false,
                        },
                        brand: with_brand.then(|| brand(1, "Marka")),
                        recipient: turkish_phone(callee),
                        lang: cfg.default_lang,
                    };
                    out.push(step(
                        &CallState::default(),
                        Input::StartOutbound(start),
                        cfg,
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn say_mode_joins_adjacent_phrases_and_play_mode_speaks_brand_names() {
    let brands = vec![brand(1, "Acme"), brand(2, "Çiçek")];
    let s = start_with(Some(CALLER), brands, &FlowConfig::default());
    let urls = PromptUrls::new("https://r.example/vp", "https://r.example/ivr", "t");
    let say = parse(&render(&s, &urls, PromptMode::Say, &Voices::default()).to_xml()).unwrap();
    let g = &say.children[0];
    assert_eq!(
        g.children.len(),
        2,
        "one Turkish phrase, then the English offer"
    );
    assert!(
        g.children[0]
            .text
            .contains("Acme için bire basın. Çiçek için ikiye basın.")
    );
    assert_eq!(g.children[0].attr("voice"), Some("Polly.Filiz"));
    assert_eq!(g.children[1].text, "For English, press 0.");
    assert_eq!(g.children[1].attr("voice"), None);

    let play = parse(&render(&s, &urls, PromptMode::Play, &Voices::default()).to_xml()).unwrap();
    let kinds: Vec<_> = play.children[0]
        .children
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(
        kinds,
        ["Play", "Play", "Say", "Play", "Say", "Play", "Play"]
    );
    assert_eq!(play.children[0].children[2].text, "Acme");
}
