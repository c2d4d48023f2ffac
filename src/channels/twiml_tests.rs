//! Tests for the TwiML builder, and the parser/checker the voice tests reuse.

/// Helpers shared with the voice flow tests: parse TwiML back into a tree and check it.
pub(crate) mod testing {
    use quick_xml::Reader;
    use quick_xml::events::Event;

    #[derive(Debug, Clone, PartialEq, Default)]
    pub struct Node {
        pub name: String,
        pub attrs: Vec<(String, String)>,
        pub text: String,
        pub children: Vec<Node>,
    }

    impl Node {
        pub fn attr(&self, k: &str) -> Option<&str> {
            self.attrs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        }
        /// This node and all descendants, depth first.
        pub fn walk(&self) -> Vec<&Node> {
            let mut out = vec![self];
            for c in &self.children {
                out.extend(c.walk());
            }
            out
        }
    }

    /// Parses a whole document with quick-xml's reader; errors on anything ill-formed.
    pub fn parse(xml: &str) -> Result<Node, String> {
        let mut r = Reader::from_str(xml);
        r.config_mut().check_end_names = true;
        let mut stack: Vec<Node> = Vec::new();
        let mut root = None;
        let mut saw_decl = false;
        loop {
            let ev = r.read_event().map_err(|e| e.to_string())?;
            match ev {
                Event::Decl(d) => {
                    let enc = d.encoding().and_then(|e| e.ok()).map(|e| e.into_owned());
                    if enc.as_deref() != Some("UTF-8") {
                        return Err("declaration must say UTF-8".into());
                    }
                    saw_decl = true;
                }
                Event::Start(s) | Event::Empty(s) if root.is_some() => {
                    return Err(format!("content after root: {:?}", s.name()));
                }
                Event::Start(s) => stack.push(node(&s)?),
                Event::Empty(s) => {
                    let n = node(&s)?;
                    match stack.last_mut() {
                        Some(p) => p.children.push(n),
                        None => root = Some(n),
                    }
                }
                Event::End(_) => {
                    let n = stack.pop().ok_or("unbalanced end")?;
                    match stack.last_mut() {
                        Some(p) => p.children.push(n),
                        None => root = Some(n),
                    }
                }
                Event::Text(t) => {
                    if let Some(p) = stack.last_mut() {
                        p.text.push_str(&t.xml10_content());
                    }
                }
                Event::GeneralRef(g) => {
                    let raw = format!("&{};", g.xml10_content());
                    let s = quick_xml::escape::unescape(&raw).map_err(|e| e.to_string())?;
                    if let Some(p) = stack.last_mut() {
                        p.text.push_str(&s);
                    }
                }
                Event::Eof => break,
                other => return Err(format!("unexpected event {other:?}")),
            }
        }
        if !saw_decl {
            return Err("missing XML declaration".into());
        }
        root.ok_or_else(|| "no root element".into())
    }

    fn node(s: &quick_xml::events::BytesStart<'_>) -> Result<Node, String> {
        let name = s.name().as_ref().to_string();
        let mut attrs = Vec::new();
        for a in s.attributes() {
            let a = a.map_err(|e| e.to_string())?;
            let k = a.key.as_ref().to_string();
            let v = a
                .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                .map_err(|e| e.to_string())?
                .into_owned();
            attrs.push((k, v));
        }
        Ok(Node {
            name,
            attrs,
            ..Node::default()
        })
    }

    /// Verbs and attributes NOTES §2.2 allows, and where they may appear.
    pub fn check_allowed(root: &Node) -> Result<(), String> {
        if root.name != "Response" || !root.attrs.is_empty() {
            return Err("root must be a bare <Response>".into());
        }
        for verb in &root.children {
            check_verb(verb, false)?;
        }
        Ok(())
    }

    fn check_verb(n: &Node, in_gather: bool) -> Result<(), String> {
        let allowed: &[&str] = match (n.name.as_str(), in_gather) {
            ("Say", _) => &["language", "voice"],
            ("Play", _) => &["loop"],
            ("Pause", _) => &["length"],
            ("Message", false) | ("Hangup", false) => &[],
            ("Redirect", false) => &["method"],
            ("Gather", false) => &[
                "input",
                "numDigits",
                "timeout",
                "action",
                "method",
                "finishOnKey",
                "language",
                "actionOnEmptyResult",
            ],
            (other, _) => return Err(format!("<{other}> not allowed here")),
        };
        if let Some((k, _)) = n.attrs.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            return Err(format!("attribute {k} not allowed on <{}>", n.name));
        }
        if matches!(n.name.as_str(), "Pause" | "Hangup") && !n.text.is_empty() {
            return Err(format!("<{}> must be empty", n.name));
        }
        if n.name == "Gather" {
            if n.attr("input") != Some("dtmf") {
                return Err("Gather must be input=dtmf".into());
            }
            for c in &n.children {
                check_verb(c, true)?;
            }
        } else if !n.children.is_empty() {
            return Err(format!("<{}> may not nest elements", n.name));
        }
        Ok(())
    }
}

mod tests {
    use super::testing::{check_allowed, parse};
    use crate::channels::twiml::*;

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
