//! A TwiML reader and checker: parses a document back into a tree (quick-xml's reader, so the
//! document must be well-formed) and checks it uses only the verbs and attributes docs/telephony-notes.md §2.2
//! lists. Tests use it to assert on TwiML by structure rather than by string matching.
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

/// Verbs and attributes docs/telephony-notes.md §2.2 allows, and where they may appear.
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
