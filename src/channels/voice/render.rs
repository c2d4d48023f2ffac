//! Turns a flow [`Step`] into TwiML: prompts nested in a `<Gather>` posting to the signed action
//! URL, a `<Redirect>` to the same URL when the Gather times out (no `Digits` → `Input::Timeout`),
//! or the prompts followed by `<Hangup/>` when the call ends (or by a `<Redirect>` back to the
//! dialer's own flow when an outbound call's opt-out step is over).

use super::flow::{Prompt, Step};
use super::prompts::{Lang, prompt};
use crate::channels::twiml::{Gather, GatherChild, Method, Play, Response, Say, Verb};

/// Recorded WAVs (`<Play>`) or the provider's text-to-speech (`<Say>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptMode {
    #[default]
    Play,
    Say,
}

/// TTS voices per language for `<Say>` (brand names are always spoken, even in Play mode).
/// Invalid voice/language pairs make the provider skip the verb, so the default Turkish voice
/// is Polly.Filiz (docs/telephony-notes.md §2.2); `None` leaves the provider's default.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Voices {
    pub tr: Option<String>,
    pub en: Option<String>,
}

impl Default for Voices {
    fn default() -> Self {
        Self {
            tr: Some("Polly.Filiz".into()),
            en: None,
        }
    }
}

impl Voices {
    fn for_lang(&self, lang: Lang) -> Option<&String> {
        match lang {
            Lang::Tr => self.tr.as_ref(),
            Lang::En => self.en.as_ref(),
        }
    }
}

/// Where prompts are served and where the next turn posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptUrls {
    /// Public base of the `voice-prompts` files, e.g. `https://relay.example/voice-prompts`.
    pub prompts_base: String,
    /// The full action URL for the next turn, token included (see [`PromptUrls::new`]).
    pub action_url: String,
}

impl PromptUrls {
    /// `action_base` is the public URL of the IVR action route; the sealed token goes in `t`.
    pub fn new(prompts_base: &str, action_base: &str, token: &str) -> Self {
        let sep = if action_base.contains('?') { '&' } else { '?' };
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("t", token)
            .finish();
        Self {
            prompts_base: prompts_base.trim_end_matches('/').to_string(),
            action_url: format!("{action_base}{sep}{q}"),
        }
    }

    /// `{prompts_base}/{lang}/{id}.wav`
    pub fn wav(&self, id: super::prompts::PromptId, lang: Lang) -> String {
        format!(
            "{}/{}/{}.wav",
            self.prompts_base,
            lang.as_str(),
            id.as_str()
        )
    }
}

fn child(p: &Prompt, urls: &PromptUrls, mode: PromptMode, voices: &Voices) -> GatherChild {
    let say = |text: &str, lang: Lang| {
        let mut s = Say::new(text).language(lang.bcp47());
        s.voice = voices.for_lang(lang).cloned();
        GatherChild::Say(s)
    };
    match (p, mode) {
        (Prompt::Clip { id, lang }, PromptMode::Play) => {
            GatherChild::Play(Play::new(urls.wav(*id, *lang)))
        }
        (Prompt::Clip { id, lang }, PromptMode::Say) => say(&prompt(*id, *lang).text, *lang),
        (Prompt::Text { text, lang }, _) => say(text, *lang),
    }
}

pub fn render(step: &Step, urls: &PromptUrls, mode: PromptMode, voices: &Voices) -> Response {
    // Adjacent <Say>s in one voice become one, so "Acme" + "için bire basın" is a single phrase.
    let mut children: Vec<GatherChild> = Vec::new();
    for c in step.prompts.iter().map(|p| child(p, urls, mode, voices)) {
        match (children.last_mut(), c) {
            (Some(GatherChild::Say(prev)), GatherChild::Say(s))
                if prev.language == s.language && prev.voice == s.voice =>
            {
                prev.text.push(' ');
                prev.text.push_str(&s.text);
            }
            (_, c) => children.push(c),
        }
    }
    match step.gather {
        Some(g) => {
            let mut gather = Gather::new()
                .num_digits(g.num_digits)
                .timeout(g.timeout_secs)
                .action(urls.action_url.clone(), Method::Post)
                .language(step.next.lang.bcp47());
            gather.children = children;
            Response::new()
                .gather(gather)
                .redirect(urls.action_url.clone(), Method::Post)
        }
        None => {
            let mut r = Response::new();
            r.verbs = children
                .into_iter()
                .map(|c| match c {
                    GatherChild::Say(s) => Verb::Say(s),
                    GatherChild::Play(p) => Verb::Play(p),
                    GatherChild::Pause(p) => Verb::Pause(p),
                })
                .collect();
            match &step.redirect {
                Some(url) => r.redirect(url.clone(), Method::Post),
                None if step.hangup => r.hangup(),
                None => r,
            }
        }
    }
}
