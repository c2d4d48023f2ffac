//! Tests for the TwiML builder.

mod tests {
    use crate::channels::twiml::*;
    use crate::channels::twiml_check::{check_allowed, parse};

    #[test]
    fn empty_response_is_self_closing_with_utf8_declaration() {
        let xml = Response::new().to_xml();
        assert_eq!(xml, EMPTY);
        let root = parse(&xml).unwrap();
        assert_eq!(root.name, "Response");
        assert!(root.children.is_empty());
    }

    #[test]
    fn sms_reply_escapes_and_keeps_turkish() {
        let body = r#"İptal edildi: <b> & "ŞĞÜÇÖı" 'tamam'"#;
        let xml = Response::new().message(body).to_xml();
        let root = parse(&xml).unwrap();
        check_allowed(&root).unwrap();
        assert_eq!(root.children.len(), 1);
        assert_eq!(root.children[0].name, "Message");
        assert_eq!(root.children[0].text, body);
        assert!(!xml.contains("<b>"), "raw markup must not survive");
    }

    #[test]
    fn attributes_are_escaped() {
        let url = r#"https://x.example/v?a=1&b="2"&c='3'<"#;
        let xml = Response::new()
            .redirect(url, Method::Post)
            .gather(Gather::new().action(url, Method::Get))
            .to_xml();
        let root = parse(&xml).unwrap();
        check_allowed(&root).unwrap();
        assert_eq!(root.children[0].text, url);
        assert_eq!(root.children[0].attr("method"), Some("POST"));
        assert_eq!(root.children[1].attr("action"), Some(url));
        assert_eq!(root.children[1].attr("method"), Some("GET"));
    }

    #[test]
    fn ivr_gather_document_round_trips() {
        let g = Gather::new()
            .num_digits(1)
            .timeout(6)
            .action("https://x.example/ivr?t=a.b", Method::Post)
            .finish_on_key(None)
            .language("tr-TR")
            .action_on_empty_result(true)
            .say(
                Say::new("Çağrıları durdurmak için bire basın.")
                    .language("tr-TR")
                    .voice("Polly.Filiz"),
            )
            .play(Play::new("https://x.example/p/tr/menu.wav").loop_count(2))
            .pause(Pause { length: Some(1) });
        let xml = Response::new()
            .gather(g)
            .say(Say::new("Hoşça kalın"))
            .pause(Pause::default())
            .hangup()
            .to_xml();
        let root = parse(&xml).unwrap();
        check_allowed(&root).unwrap();
        let names: Vec<_> = root.children.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["Gather", "Say", "Pause", "Hangup"]);
        let g = &root.children[0];
        assert_eq!(g.attr("input"), Some("dtmf"));
        assert_eq!(g.attr("numDigits"), Some("1"));
        assert_eq!(g.attr("timeout"), Some("6"));
        assert_eq!(g.attr("finishOnKey"), Some(""));
        assert_eq!(g.attr("language"), Some("tr-TR"));
        assert_eq!(g.attr("actionOnEmptyResult"), Some("true"));
        assert_eq!(g.children[0].text, "Çağrıları durdurmak için bire basın.");
        assert_eq!(g.children[0].attr("voice"), Some("Polly.Filiz"));
        assert_eq!(g.children[1].attr("loop"), Some("2"));
        assert_eq!(g.children[2].attr("length"), Some("1"));
        assert_eq!(root.children[1].text, "Hoşça kalın");
        // Telnyx wants self-closing Pause; Hangup likewise.
        assert!(
            xml.contains("<Pause/>") && xml.contains("<Hangup/>"),
            "{xml}"
        );
    }

    #[test]
    fn gather_values_are_kept_in_range() {
        let g = Gather::new()
            .timeout(0)
            .num_digits(0)
            .finish_on_key(Some('x'));
        assert_eq!(
            (g.timeout, g.num_digits, g.finish_on_key),
            (Some(1), Some(1), None)
        );
        assert_eq!(Gather::new().timeout(500).timeout, Some(120));
        assert_eq!(
            Gather::new()
                .finish_on_key(Some('*'))
                .finish_on_key
                .as_deref(),
            Some("*")
        );
    }

    #[test]
    fn control_characters_cannot_break_the_document() {
        let nasty = "a\u{0}b\u{1b}c\u{FFFF}d\u{7}</Message>";
        let xml = Response::new()
            .message(nasty)
            .say(Say::new("x").voice(nasty))
            .to_xml();
        let root = parse(&xml).unwrap();
        assert_eq!(root.children[0].text, "abcd</Message>");
        assert_eq!(root.children[1].attr("voice"), Some("abcd</Message>"));
    }

    #[test]
    fn checker_rejects_foreign_verbs_and_attributes() {
        let bad = [
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial>1</Dial></Response>"#,
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say loop="2">x</Say></Response>"#,
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Gather input="dtmf"><Hangup/></Gather></Response>"#,
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Gather/></Response>"#,
        ];
        for xml in bad {
            assert!(check_allowed(&parse(xml).unwrap()).is_err(), "{xml}");
        }
        assert!(parse("<Response></Respons>").is_err());
        assert!(parse("<Response/>").is_err(), "declaration is required");
    }
}
