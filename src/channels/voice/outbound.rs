//! Opting out inside the business's own call: a campaign dialer's outbound call (or a call it
//! answers) handed to the relay, so the person can refuse with one key press on the same
//! channel, as ETK art. 8 asks for ("Bu tür aramaları almak istemiyorsanız dokuza basın").
//!
//! ```text
//! announce ─> Offer ("press 9") ─9─> Confirm (1 yes · 2 cancel) ─1─> Recorded ─> return URL
//!               │ timeout / too many wrong keys                  │2 / timeouts      or hang up
//!               └──────────────> return URL (nothing recorded) <─┘
//! in-call entry (the dialer already heard the 9, or redirected) ─> Confirm ...
//! ```
//! The person is the callee of an outbound call (`To`), the caller of an inbound one; no number
//! entry. The brand comes from a dialer grant (a signed URL parameter, see [`seal_grant`]) or
//! from `voice.numbers` for the business's number. Pure: the handler supplies [`OutboundStart`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::flow::{
    self, BrandRef, CallState, Choice, FlowConfig, GatherSpec, Input, Outcome, Stage, Step, clips,
    emit, finish,
};
use super::prompts::{Lang, PromptId};
use super::token::{TokenError, open_value, seal_value};
use crate::domain::{ConsentType, Recipient};

/// The key that refuses, named in the recorded offer ("… dokuza basın").
pub const OPT_OUT_KEY: &str = "9";
/// Query parameter carrying the dialer grant on the relay's outbound URLs.
pub const GRANT_PARAM: &str = "o";
/// Query parameter the relay adds to the dialer's return URL: what happened.
pub const RESULT_PARAM: &str = "iys_relay";
/// Longest return URL accepted in a grant (it travels in every later action URL).
pub const MAX_RETURN_URL_LEN: usize = 1024;
const GRANT_DOMAIN: &[u8] = b"iys-relay/ivr-outbound-grant/v1\0";

/// What the state remembers about an outbound call (sealed with the rest of the call state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundCall {
    /// Twilio's `Direction` (`outbound-api`, `outbound-dial`, or `inbound`), for the evidence.
    pub direction: String,
    /// Where the dialer's flow continues (from the signed grant); `None`: hang up at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
    /// True when the brand came from a dialer grant rather than the number's configuration.
    pub brand_from_grant: bool,
}

/// How the call reached the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// The relay's own short announcement, which gathers the key itself.
    Announce,
    /// The dialer's flow redirected here (`digits: None`: the person already asked to opt out)
    /// or its own `<Gather action>` posted the key pressed (`Some`).
    InCall { digits: Option<String> },
}

/// Everything the handler resolved from the first webhook.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboundStart {
    pub entry: Entry,
    pub call: OutboundCall,
    /// `None` when no brand could be determined (unconfigured number, several brands, no grant).
    pub brand: Option<BrandRef>,
    /// `None` when the person's number is not a Turkish phone number.
    pub recipient: Option<Recipient>,
    pub lang: Lang,
}

/// What the dialer is told on its return URL (`iys_relay=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handback {
    /// The refusal was recorded: stop marketing to this person.
    Recorded,
    /// The person pressed 2 at the confirmation.
    Cancelled,
    /// No key, or no valid key, within the allowed tries.
    NoChoice,
    /// The relay could not take a refusal for this call (no brand, or not a Turkish number).
    Unavailable,
}

impl Handback {
    pub fn as_str(self) -> &'static str {
        match self {
            Handback::Recorded => "recorded",
            Handback::Cancelled => "cancelled",
            Handback::NoChoice => "no_choice",
            Handback::Unavailable => "unavailable",
        }
    }
}

/// The consent types a refusal in this call covers: ARAMA always, MESAJ as well when
/// `covers_messages` says so and the number can receive messages (a Turkish mobile).
pub fn types_for(recipient: &Recipient, cfg: &FlowConfig) -> Vec<ConsentType> {
    let mut types = vec![ConsentType::Arama];
    if cfg.covers_messages && recipient.check_registrable(ConsentType::Mesaj).is_ok() {
        types.push(ConsentType::Mesaj);
    }
    types
}

/// The callee of an outbound call may be any Turkish number (ARAMA covers landlines); numbers
/// İYS does not manage cannot be recorded.
pub fn turkish_phone(raw: &str) -> Option<Recipient> {
    let r = Recipient::parse(raw).ok()?;
    (r.is_phone() && r.as_str().starts_with("+90")).then_some(r)
}

pub(super) fn step(state: &CallState, input: Input, cfg: &FlowConfig) -> Step {
    let input = match input {
        Input::StartOutbound(start) => return begin(start, cfg),
        other => other,
    };
    let Some((mut s, digits)) = flow::next_turn(state, input) else {
        return finish(state.clone(), Stage::Goodbye, vec![]);
    };
    if s.turns > cfg.max_turns {
        return hand_back(s, Handback::NoChoice, vec![PromptId::OutboundNotRecorded]);
    }
    match (s.stage.clone(), digits) {
        // Silence at the offer means "not interested": the dialer's flow simply goes on.
        (Stage::Offer, None) => hand_back(s, Handback::NoChoice, vec![]),
        (Stage::Offer, Some(d)) => {
            s.pressed.push(d.clone());
            if d == OPT_OUT_KEY {
                confirm(s, cfg)
            } else {
                failure(s, PromptId::InvalidChoice, cfg)
            }
        }
        (Stage::Confirm { .. }, None) => failure(s, PromptId::NoInput, cfg),
        (Stage::Confirm { .. }, Some(d)) => {
            s.pressed.push(d.clone());
            match d.as_str() {
                "1" => record(s, cfg),
                "2" => hand_back(s, Handback::Cancelled, vec![PromptId::OutboundNotRecorded]),
                _ => failure(s, PromptId::InvalidChoice, cfg),
            }
        }
        (_, _) => hand_back(s, Handback::NoChoice, vec![]),
    }
}

fn begin(start: OutboundStart, cfg: &FlowConfig) -> Step {
    let mut s = CallState {
        lang: start.lang,
        brand: start.brand,
        recipient: start.recipient,
        outbound: Some(start.call),
        ..CallState::default()
    };
    if s.brand.is_none() || s.recipient.is_none() {
        return hand_back(s, Handback::Unavailable, vec![PromptId::Unavailable]);
    }
    match start.entry {
        Entry::Announce => offer(s, cfg, vec![]),
        Entry::InCall { digits: None } => confirm(s, cfg),
        Entry::InCall { digits } => match Input::from_digits(digits.as_deref()) {
            // The dialer's Gather posted an empty result: nobody pressed anything.
            Input::Digits(d) if d == OPT_OUT_KEY => {
                s.pressed.push(d);
                confirm(s, cfg)
            }
            Input::Digits(d) => {
                s.pressed.push(d);
                s.stage = Stage::Offer;
                failure(s, PromptId::InvalidChoice, cfg)
            }
            _ => hand_back(s, Handback::NoChoice, vec![]),
        },
    }
}

fn covers_messages(s: &CallState, cfg: &FlowConfig) -> bool {
    s.recipient
        .as_ref()
        .is_some_and(|r| types_for(r, cfg).contains(&ConsentType::Mesaj))
}

fn one_key(cfg: &FlowConfig) -> GatherSpec {
    GatherSpec {
        num_digits: 1,
        timeout_secs: cfg.menu_timeout_secs,
    }
}

/// The prompts of the current stage, after `before` (a "no input" / "wrong key" clip).
fn stage_step(s: CallState, cfg: &FlowConfig, before: Vec<PromptId>) -> Step {
    let msgs = covers_messages(&s, cfg);
    let id = match (&s.stage, msgs) {
        (Stage::Offer, false) => PromptId::OutboundOfferCalls,
        (Stage::Offer, true) => PromptId::OutboundOfferCallsMsgs,
        (_, false) => PromptId::OutboundConfirmCalls,
        (_, true) => PromptId::OutboundConfirmCallsMsgs,
    };
    let mut ids = before;
    ids.push(id);
    let prompts = clips(s.lang, &ids);
    emit(s, prompts, Some(one_key(cfg)), None)
}

fn offer(mut s: CallState, cfg: &FlowConfig, before: Vec<PromptId>) -> Step {
    s.stage = Stage::Offer;
    stage_step(s, cfg, before)
}

fn confirm(mut s: CallState, cfg: &FlowConfig) -> Step {
    s.stage = Stage::Confirm {
        choice: Choice::OptOut,
    };
    s.failures = 0;
    stage_step(s, cfg, vec![])
}

/// A wrong key (or silence at the confirmation): say why and ask again, at most
/// `max_reprompts` times; then the call goes back to the dialer with nothing recorded.
fn failure(mut s: CallState, why: PromptId, cfg: &FlowConfig) -> Step {
    s.failures = s.failures.saturating_add(1);
    if s.failures > cfg.max_reprompts {
        let said = match s.stage {
            Stage::Offer => vec![],
            _ => vec![PromptId::OutboundNotRecorded],
        };
        return hand_back(s, Handback::NoChoice, said);
    }
    stage_step(s, cfg, vec![why])
}

fn record(s: CallState, cfg: &FlowConfig) -> Step {
    let (Some(brand), Some(recipient)) = (s.brand.clone(), s.recipient.clone()) else {
        return hand_back(s, Handback::Unavailable, vec![PromptId::Unavailable]);
    };
    let types = types_for(&recipient, cfg);
    let said = if types.contains(&ConsentType::Mesaj) {
        PromptId::RecordedOptoutCallsMsgs
    } else {
        PromptId::RecordedOptoutCalls
    };
    let mut st = hand_back(s, Handback::Recorded, vec![said]);
    st.next.stage = Stage::Recorded;
    st.outcome = Some(Outcome {
        brand_code: brand.brand_code,
        status: Choice::OptOut.status(),
        types,
        recipient,
        digits_pressed: st.next.pressed.clone(),
        prompt_versions: st.next.heard.clone(),
    });
    st
}

/// Ends the relay's part: the prompts in `ids`, then the dialer's return URL (with the result
/// appended) or, without one, a goodbye and a hang-up.
fn hand_back(s: CallState, result: Handback, mut ids: Vec<PromptId>) -> Step {
    let url = s
        .outbound
        .as_ref()
        .and_then(|o| o.return_url.as_deref())
        .map(|u| with_result(u, result));
    if url.is_none() {
        ids.push(PromptId::OutboundGoodbye);
    }
    let mut st = finish(s, Stage::Goodbye, ids);
    if let Some(u) = url {
        st.hangup = false;
        st.redirect = Some(u);
    }
    st
}

/// `url` with `iys_relay=<result>` added to its query.
pub fn with_result(url: &str, result: Handback) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    let mut out = format!("{base}{sep}{RESULT_PARAM}={}", result.as_str());
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// What a dialer grant says: the brand, where to hand the call back, the prompts' language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    #[serde(rename = "b")]
    pub brand_code: i64,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<Lang>,
}

/// Signs a grant for the dialer's URLs (valid until `exp`, any call of the account).
pub fn seal_grant(g: &Grant, secret: &[u8], exp: DateTime<Utc>) -> String {
    seal_value(GRANT_DOMAIN, g, "", secret, exp.timestamp())
}

pub fn open_grant(token: &str, secret: &[u8], now: DateTime<Utc>) -> Result<Grant, TokenError> {
    open_value(GRANT_DOMAIN, token, "", secret, now)
}

/// A return URL the relay will `<Redirect>` to: absolute http(s) with a host, of sane length.
pub fn check_return_url(u: &str) -> Result<(), String> {
    if u.len() > MAX_RETURN_URL_LEN {
        return Err(format!(
            "return_url is longer than {MAX_RETURN_URL_LEN} characters"
        ));
    }
    match url::Url::parse(u) {
        Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => Ok(()),
        _ => Err("return_url must be an absolute http(s) URL".into()),
    }
}

#[cfg(test)]
#[path = "outbound_tests.rs"]
mod tests;
