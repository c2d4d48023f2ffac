//! A small TwiML builder for SMS replies and the IVR (docs/telephony-notes.md §1.2, §2.2).
//!
//! Only verbs and attributes that Twilio, SignalWire (cXML) and Telnyx TeXML all understand are
//! modelled, so one document works on each. Every text and attribute value is XML-escaped by
//! quick-xml, and characters XML 1.0 forbids (control characters) are dropped, so no input can
//! break the document. `Pause` and `Hangup` are always self-closing (Telnyx requires it).

use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

/// HTTP method for `action`/`Redirect` requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// `<Say>`: text-to-speech, e.g. `language="tr-TR" voice="Polly.Filiz"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Say {
    pub text: String,
    pub language: Option<String>,
    pub voice: Option<String>,
}

impl Say {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            language: None,
            voice: None,
        }
    }
    pub fn language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }
    pub fn voice(mut self, voice: impl Into<String>) -> Self {
        self.voice = Some(voice.into());
        self
    }
}

/// `<Play>`: an audio URL, optionally looped (`loop="0"` loops until the call moves on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Play {
    pub url: String,
    pub loop_count: Option<u32>,
}

impl Play {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            loop_count: None,
        }
    }
    pub fn loop_count(mut self, n: u32) -> Self {
        self.loop_count = Some(n);
        self
    }
}

/// `<Pause length=…/>` in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pause {
    pub length: Option<u32>,
}

/// What a `<Gather>` may contain (docs/telephony-notes.md §2.2: only Say, Play, Pause).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatherChild {
    Say(Say),
    Play(Play),
    Pause(Pause),
}

/// `<Gather input="dtmf">`: collects key presses and posts them as `Digits` to `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gather {
    pub num_digits: Option<u32>,
    /// Seconds; clamped to 1–120, the range Telnyx accepts.
    pub timeout: Option<u32>,
    pub action: Option<String>,
    pub method: Option<Method>,
    /// `""` disables the finish key; otherwise one of `0-9 # *`.
    pub finish_on_key: Option<String>,
    pub language: Option<String>,
    pub action_on_empty_result: Option<bool>,
    pub children: Vec<GatherChild>,
}

impl Default for Gather {
    fn default() -> Self {
        Self::new()
    }
}

impl Gather {
    pub fn new() -> Self {
        Self {
            num_digits: None,
            timeout: None,
            action: None,
            method: None,
            finish_on_key: None,
            language: None,
            action_on_empty_result: None,
            children: Vec::new(),
        }
    }
    pub fn num_digits(mut self, n: u32) -> Self {
        self.num_digits = Some(n.max(1));
        self
    }
    pub fn timeout(mut self, secs: u32) -> Self {
        self.timeout = Some(secs.clamp(1, 120));
        self
    }
    pub fn action(mut self, url: impl Into<String>, method: Method) -> Self {
        self.action = Some(url.into());
        self.method = Some(method);
        self
    }
    /// `None` disables the finish key. A key outside `0-9 # *` is ignored (the default `#` stays).
    pub fn finish_on_key(mut self, key: Option<char>) -> Self {
        match key {
            None => self.finish_on_key = Some(String::new()),
            Some(k) if k.is_ascii_digit() || k == '#' || k == '*' => {
                self.finish_on_key = Some(k.to_string())
            }
            Some(_) => {}
        }
        self
    }
    pub fn language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }
    pub fn action_on_empty_result(mut self, on: bool) -> Self {
        self.action_on_empty_result = Some(on);
        self
    }
    pub fn say(mut self, say: Say) -> Self {
        self.children.push(GatherChild::Say(say));
        self
    }
    pub fn play(mut self, play: Play) -> Self {
        self.children.push(GatherChild::Play(play));
        self
    }
    pub fn pause(mut self, pause: Pause) -> Self {
        self.children.push(GatherChild::Pause(pause));
        self
    }
}

/// A top-level verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    /// SMS reply text.
    Message(String),
    Gather(Gather),
    Play(Play),
    Say(Say),
    Pause(Pause),
    Redirect {
        url: String,
        method: Option<Method>,
    },
    Hangup,
}

/// A TwiML `<Response>` document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    pub verbs: Vec<Verb>,
}

impl Response {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(mut self, verb: Verb) -> Self {
        self.verbs.push(verb);
        self
    }
    pub fn message(self, text: impl Into<String>) -> Self {
        self.push(Verb::Message(text.into()))
    }
    pub fn gather(self, g: Gather) -> Self {
        self.push(Verb::Gather(g))
    }
    pub fn play(self, p: Play) -> Self {
        self.push(Verb::Play(p))
    }
    pub fn say(self, s: Say) -> Self {
        self.push(Verb::Say(s))
    }
    pub fn pause(self, p: Pause) -> Self {
        self.push(Verb::Pause(p))
    }
    pub fn redirect(self, url: impl Into<String>, method: Method) -> Self {
        self.push(Verb::Redirect {
            url: url.into(),
            method: Some(method),
        })
    }
    pub fn hangup(self) -> Self {
        self.push(Verb::Hangup)
    }

    /// The document with its UTF-8 declaration, ready to send as `text/xml`.
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new(Vec::new());
        match self.write(&mut w) {
            // Writing into a Vec cannot fail and quick-xml only emits UTF-8 from &str input.
            Ok(()) => String::from_utf8(w.into_inner()).unwrap_or_else(|_| EMPTY.to_string()),
            Err(_) => EMPTY.to_string(),
        }
    }

    fn write(&self, w: &mut Writer<Vec<u8>>) -> io::Result<()> {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        if self.verbs.is_empty() {
            return w.write_event(Event::Empty(BytesStart::new("Response")));
        }
        w.write_event(Event::Start(BytesStart::new("Response")))?;
        for verb in &self.verbs {
            write_verb(w, verb)?;
        }
        w.write_event(Event::End(BytesEnd::new("Response")))
    }
}

const EMPTY: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

/// Drops characters XML 1.0 cannot carry at all (escaping cannot save them).
fn xml_safe(s: &str) -> String {
    s.chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r')
                || (c >= '\u{20}' && !matches!(c, '\u{FFFE}' | '\u{FFFF}'))
        })
        .collect()
}

fn start<'a>(name: &'a str, attrs: &[(&'a str, Option<String>)]) -> BytesStart<'a> {
    let mut el = BytesStart::new(name);
    for (k, v) in attrs {
        if let Some(v) = v {
            el.push_attribute((*k, xml_safe(v).as_str()));
        }
    }
    el
}

fn text_element(
    w: &mut Writer<Vec<u8>>,
    name: &str,
    attrs: &[(&str, Option<String>)],
    text: &str,
) -> io::Result<()> {
    let clean = xml_safe(text);
    w.write_event(Event::Start(start(name, attrs)))?;
    w.write_event(Event::Text(BytesText::new(&clean)))?;
    w.write_event(Event::End(BytesEnd::new(name)))
}

fn write_say(w: &mut Writer<Vec<u8>>, s: &Say) -> io::Result<()> {
    let attrs = [("language", s.language.clone()), ("voice", s.voice.clone())];
    text_element(w, "Say", &attrs, &s.text)
}

fn write_play(w: &mut Writer<Vec<u8>>, p: &Play) -> io::Result<()> {
    let attrs = [("loop", p.loop_count.map(|n| n.to_string()))];
    text_element(w, "Play", &attrs, &p.url)
}

fn write_pause(w: &mut Writer<Vec<u8>>, p: &Pause) -> io::Result<()> {
    let attrs = [("length", p.length.map(|n| n.to_string()))];
    w.write_event(Event::Empty(start("Pause", &attrs)))
}

fn write_verb(w: &mut Writer<Vec<u8>>, verb: &Verb) -> io::Result<()> {
    match verb {
        Verb::Message(text) => text_element(w, "Message", &[], text),
        Verb::Say(s) => write_say(w, s),
        Verb::Play(p) => write_play(w, p),
        Verb::Pause(p) => write_pause(w, p),
        Verb::Hangup => w.write_event(Event::Empty(BytesStart::new("Hangup"))),
        Verb::Redirect { url, method } => {
            let attrs = [("method", method.map(|m| m.as_str().to_string()))];
            text_element(w, "Redirect", &attrs, url)
        }
        Verb::Gather(g) => {
            let attrs = [
                ("input", Some("dtmf".to_string())),
                ("numDigits", g.num_digits.map(|n| n.to_string())),
                ("timeout", g.timeout.map(|n| n.to_string())),
                ("action", g.action.clone()),
                ("method", g.method.map(|m| m.as_str().to_string())),
                ("finishOnKey", g.finish_on_key.clone()),
                ("language", g.language.clone()),
                (
                    "actionOnEmptyResult",
                    g.action_on_empty_result.map(|b| b.to_string()),
                ),
            ];
            if g.children.is_empty() {
                return w.write_event(Event::Empty(start("Gather", &attrs)));
            }
            w.write_event(Event::Start(start("Gather", &attrs)))?;
            for child in &g.children {
                match child {
                    GatherChild::Say(s) => write_say(w, s)?,
                    GatherChild::Play(p) => write_play(w, p)?,
                    GatherChild::Pause(p) => write_pause(w, p)?,
                }
            }
            w.write_event(Event::End(BytesEnd::new("Gather")))
        }
    }
}

#[cfg(test)]
#[path = "twiml_tests.rs"]
mod twiml_tests;
