//! The IVR call flow as a pure state machine: `step(state, input, cfg) -> Step`.
//!
//! ```text
//! Start ─(caller id not a Turkish mobile)─> EnterNumber ─> ReadBack ─1─┐   (2: enter again)
//!   └───────────────────────────────────────────────────────────────────┴─> BrandMenu (several
//!   brands on this number) ─> MainMenu (1 RET, 2 ONAY, 9 repeat, 0 tr↔en) ─> Confirm (1 yes,
//!   2 back) ─> Recorded (the only transition with an Outcome) ─> hang up
//! ```
//! Timeouts and wrong keys re-prompt at most `max_reprompts` times, then the call ends politely
//! (Goodbye) with nothing recorded. A caller who hangs up before confirming records nothing.
//! The state travels between webhooks inside a signed token (see `token.rs`), so nothing the
//! caller's side sends is trusted except the digits of the current turn.

use serde::{Deserialize, Serialize};

use super::outbound::{OutboundCall, OutboundStart};
use super::prompts::{Lang, MAX_BRAND_OPTIONS, PromptId, prompt};
use crate::domain::{Brand, ConsentType, Recipient, Status};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowConfig {
    /// Re-prompts allowed after a timeout or a wrong key at one menu; one more failure ends.
    pub max_reprompts: u8,
    /// The menu speaks of "calls and messages" and records ARAMA + MESAJ (else ARAMA only).
    pub covers_messages: bool,
    pub default_lang: Lang,
    pub menu_timeout_secs: u32,
    /// Time to type ten digits; providers restart it on each key press.
    pub number_timeout_secs: u32,
    /// Hard cap on webhook turns per call (stops a caller looping on 9/0 forever).
    pub max_turns: u16,
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            max_reprompts: 3,
            covers_messages: true,
            default_lang: Lang::Tr,
            menu_timeout_secs: 6,
            number_timeout_secs: 10,
            max_turns: 40,
        }
    }
}

/// A brand offered on the dialled number: its İYS brand code and the name read to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrandRef {
    pub brand_code: i64,
    pub name: String,
}

impl From<&Brand> for BrandRef {
    fn from(b: &Brand) -> Self {
        Self {
            brand_code: b.brand_code,
            name: b.name.clone(),
        }
    }
}

/// What the caller chose in the main menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Choice {
    #[serde(rename = "RET")]
    OptOut,
    #[serde(rename = "ONAY")]
    OptIn,
}

impl Choice {
    pub fn status(self) -> Status {
        match self {
            Choice::OptOut => Status::Ret,
            Choice::OptIn => Status::Onay,
        }
    }
}

#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "at")]
pub enum Stage {
    /// Before `Input::Start`.
    #[default]
    New,
    EnterNumber,
    ReadBack {
        number: Recipient,
    },
    BrandMenu,
    MainMenu,
    /// Inside a business's own outbound call: "to stop calls like this, press 9".
    Offer,
    Confirm {
        choice: Choice,
    },
    Recorded,
    Goodbye,
}

impl Stage {
    pub fn name(&self) -> &'static str {
        match self {
            Stage::New => "New",
            Stage::EnterNumber => "EnterNumber",
            Stage::ReadBack { .. } => "ReadBack",
            Stage::BrandMenu => "BrandMenu",
            Stage::MainMenu => "MainMenu",
            Stage::Offer => "Offer",
            Stage::Confirm {
                choice: Choice::OptOut,
            } => "Confirm(RET)",
            Stage::Confirm {
                choice: Choice::OptIn,
            } => "Confirm(ONAY)",
            Stage::Recorded => "Recorded",
            Stage::Goodbye => "Goodbye",
        }
    }
    pub fn is_terminal(&self) -> bool {
        matches!(self, Stage::Recorded | Stage::Goodbye)
    }
}

/// Everything the flow remembers between webhooks (sealed into the action URL's token).
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CallState {
    pub stage: Stage,
    pub lang: Lang,
    /// Brands offered in the brand menu; emptied once one is chosen (keeps the token short).
    pub brands: Vec<BrandRef>,
    pub brand: Option<BrandRef>,
    /// True when the number serves several brands: the confirmation then names the brand.
    pub multi_brand: bool,
    pub recipient: Option<Recipient>,
    /// Consecutive timeouts / wrong keys at the current menu.
    pub failures: u8,
    pub turns: u16,
    /// Every key sequence received, in order (evidence).
    pub pressed: Vec<String>,
    /// `tr/main_menu_calls@1` for each distinct prompt played (evidence).
    pub heard: Vec<String>,
    /// Set for a key press inside the business's own call (see `outbound.rs`); absent on the
    /// opt-out line, so those tokens keep their shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound: Option<OutboundCall>,
}

/// What the provider told us this turn.
#[derive(Clone, PartialEq, Eq)]
pub enum Input {
    /// The incoming-call webhook: raw `From` and the brands configured for the dialled number.
    Start {
        caller: Option<String>,
        brands: Vec<BrandRef>,
    },
    /// The business's own call handed to the relay (see `outbound.rs`).
    StartOutbound(OutboundStart),
    Digits(String),
    /// Gather ended without digits (our Redirect fallback, or an empty `Digits`).
    Timeout,
    /// The caller hung up (status callback): ends the call, records nothing.
    Hangup,
}

impl Input {
    /// Maps a Gather action's `Digits` parameter: missing or empty means the caller said nothing.
    pub fn from_digits(digits: Option<&str>) -> Input {
        let clean: String = digits
            .unwrap_or("")
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '#' || *c == '*')
            .take(MAX_DIGITS)
            .collect();
        if clean.is_empty() {
            Input::Timeout
        } else {
            Input::Digits(clean)
        }
    }
}

const MAX_DIGITS: usize = 16;

/// One thing to play, in a given language (the language switch offer uses the other one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// A catalogued prompt: a WAV in Play mode, its text in Say mode.
    Clip { id: PromptId, lang: Lang },
    /// Free text (a brand name): always `<Say>`, there is no recording for it.
    Text { text: String, lang: Lang },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatherSpec {
    pub num_digits: u32,
    pub timeout_secs: u32,
}

/// A confirmed choice, ready to become a `ConsentIntent` (source HS_CAGRI_MERKEZI).
#[derive(Clone, PartialEq, Eq)]
pub struct Outcome {
    pub brand_code: i64,
    pub status: Status,
    pub types: Vec<ConsentType>,
    pub recipient: Recipient,
    pub digits_pressed: Vec<String>,
    pub prompt_versions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub next: CallState,
    pub prompts: Vec<Prompt>,
    /// Collect keys after the prompts; `None` means the call ends after them.
    pub gather: Option<GatherSpec>,
    pub outcome: Option<Outcome>,
    pub hangup: bool,
    /// After the prompts, hand the call to this URL (the dialer's own flow) instead of ending.
    pub redirect: Option<String>,
}

pub fn step(state: &CallState, input: Input, cfg: &FlowConfig) -> Step {
    if state.outbound.is_some() || matches!(input, Input::StartOutbound(_)) {
        return super::outbound::step(state, input, cfg);
    }
    let input = match input {
        Input::Start { caller, brands } => return start(caller.as_deref(), brands, cfg),
        other => other,
    };
    let Some((mut s, digits)) = next_turn(state, input) else {
        return finish(state.clone(), Stage::Goodbye, vec![]);
    };
    if s.turns > cfg.max_turns {
        return finish(s, Stage::Goodbye, vec![PromptId::EndedNoChoice]);
    }
    let Some(d) = digits else {
        return failure(s, PromptId::NoInput, cfg);
    };
    s.pressed.push(d.clone());
    match (s.stage.clone(), d.as_str()) {
        (Stage::EnterNumber, d) => match mobile_from_entry(d) {
            Some(number) => menu(s, Stage::ReadBack { number }, cfg),
            None => failure(s, PromptId::InvalidNumber, cfg),
        },
        (Stage::ReadBack { number }, "1") => {
            s.recipient = Some(number);
            let next = after_identified(&s);
            menu(s, next, cfg)
        }
        (Stage::ReadBack { .. }, "2") => menu(s, Stage::EnterNumber, cfg),
        (Stage::MainMenu, "1") => menu(
            s,
            Stage::Confirm {
                choice: Choice::OptOut,
            },
            cfg,
        ),
        (Stage::MainMenu, "2") => menu(
            s,
            Stage::Confirm {
                choice: Choice::OptIn,
            },
            cfg,
        ),
        (Stage::BrandMenu | Stage::MainMenu, "0") => {
            s.lang = s.lang.other();
            let same = s.stage.clone();
            menu(s, same, cfg)
        }
        (Stage::Confirm { choice }, "1") => record(s, choice, cfg),
        (Stage::Confirm { .. }, "2") => menu(s, Stage::MainMenu, cfg),
        (stage, "9") => menu(s, stage, cfg),
        (Stage::BrandMenu, d) => match brand_index(d, s.brands.len()) {
            Some(i) => {
                s.brand = s.brands.get(i).cloned();
                s.brands.clear();
                menu(s, Stage::MainMenu, cfg)
            }
            None => failure(s, PromptId::InvalidChoice, cfg),
        },
        _ => failure(s, PromptId::InvalidChoice, cfg),
    }
}

/// A later turn's keys (`None`: the Gather timed out), with the turn counted; `None` when the
/// call is over: a hang-up, a turn after the end (a retried webhook) or before any start.
pub(super) fn next_turn(state: &CallState, input: Input) -> Option<(CallState, Option<String>)> {
    let over = state.stage.is_terminal() || state.stage == Stage::New;
    let digits = match input {
        Input::Digits(d) if !over => match Input::from_digits(Some(&d)) {
            Input::Digits(d) => Some(d),
            _ => None,
        },
        Input::Timeout if !over => None,
        _ => return None,
    };
    let mut s = state.clone();
    s.turns = s.turns.saturating_add(1);
    Some((s, digits))
}

fn start(caller: Option<&str>, brands: Vec<BrandRef>, cfg: &FlowConfig) -> Step {
    let mut s = CallState {
        lang: cfg.default_lang,
        ..CallState::default()
    };
    let mut brands = brands;
    brands.truncate(MAX_BRAND_OPTIONS);
    if brands.is_empty() {
        return finish(s, Stage::Goodbye, vec![PromptId::Unavailable]);
    }
    s.multi_brand = brands.len() > 1;
    if s.multi_brand {
        s.brands = brands;
    } else {
        s.brand = brands.pop();
    }
    s.recipient = caller.and_then(turkish_mobile);
    s.stage = if s.recipient.is_none() {
        Stage::EnterNumber
    } else {
        after_identified(&s)
    };
    let (mut prompts, gather) = stage_prompts(&s, cfg);
    prompts.insert(
        0,
        Prompt::Clip {
            id: PromptId::Welcome,
            lang: s.lang,
        },
    );
    emit(s, prompts, Some(gather), None)
}

fn after_identified(s: &CallState) -> Stage {
    if s.brand.is_none() {
        Stage::BrandMenu
    } else {
        Stage::MainMenu
    }
}

/// Caller ids we trust as the recipient: Turkish mobiles only (withheld, foreign, landline and
/// garbage ids fall back to number entry).
fn turkish_mobile(raw: &str) -> Option<Recipient> {
    let r = Recipient::parse(raw).ok()?;
    r.is_turkish_mobile().then_some(r)
}

/// Ten typed digits `5XXXXXXXXX` (no leading zero), validated as a Turkish mobile.
fn mobile_from_entry(d: &str) -> Option<Recipient> {
    if d.len() != 10 || !d.starts_with('5') || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    turkish_mobile(&format!("+90{d}"))
}

fn brand_index(d: &str, count: usize) -> Option<usize> {
    let n: usize = d.parse().ok()?;
    (d.len() == 1 && (1..=count).contains(&n)).then(|| n - 1)
}

/// Enter `stage` and play its prompts; any valid input resets the failure count.
fn menu(mut s: CallState, stage: Stage, cfg: &FlowConfig) -> Step {
    s.stage = stage;
    s.failures = 0;
    let (prompts, gather) = stage_prompts(&s, cfg);
    emit(s, prompts, Some(gather), None)
}

/// A timeout or wrong key: say why and re-prompt, or give up after `max_reprompts`.
fn failure(mut s: CallState, why: PromptId, cfg: &FlowConfig) -> Step {
    s.failures = s.failures.saturating_add(1);
    if s.failures > cfg.max_reprompts {
        return finish(s, Stage::Goodbye, vec![PromptId::EndedNoChoice]);
    }
    let (mut prompts, gather) = stage_prompts(&s, cfg);
    prompts.insert(
        0,
        Prompt::Clip {
            id: why,
            lang: s.lang,
        },
    );
    emit(s, prompts, Some(gather), None)
}

fn record(mut s: CallState, choice: Choice, cfg: &FlowConfig) -> Step {
    let (Some(brand), Some(recipient)) = (s.brand.clone(), s.recipient.clone()) else {
        // Unreachable through `step` (Confirm needs both); end without recording anyway.
        return finish(s, Stage::Goodbye, vec![PromptId::Unavailable]);
    };
    let said = match (choice, cfg.covers_messages) {
        (Choice::OptOut, false) => PromptId::RecordedOptoutCalls,
        (Choice::OptOut, true) => PromptId::RecordedOptoutCallsMsgs,
        (Choice::OptIn, _) => PromptId::RecordedOptin,
    };
    let prompts = clips(s.lang, &[said, PromptId::Goodbye]);
    s.stage = Stage::Recorded;
    note_heard(&mut s, &prompts);
    let mut types = vec![ConsentType::Arama];
    if cfg.covers_messages {
        types.push(ConsentType::Mesaj);
    }
    let outcome = Outcome {
        brand_code: brand.brand_code,
        status: choice.status(),
        types,
        recipient,
        digits_pressed: s.pressed.clone(),
        prompt_versions: s.heard.clone(),
    };
    emit(s, prompts, None, Some(outcome))
}

pub(super) fn finish(mut s: CallState, stage: Stage, ids: Vec<PromptId>) -> Step {
    if !s.stage.is_terminal() {
        s.stage = stage;
    }
    let prompts = clips(s.lang, &ids);
    emit(s, prompts, None, None)
}

pub(super) fn emit(
    mut s: CallState,
    prompts: Vec<Prompt>,
    gather: Option<GatherSpec>,
    o: Option<Outcome>,
) -> Step {
    note_heard(&mut s, &prompts);
    let hangup = gather.is_none();
    Step {
        next: s,
        prompts,
        gather,
        outcome: o,
        hangup,
        redirect: None,
    }
}

pub(super) fn clips(lang: Lang, ids: &[PromptId]) -> Vec<Prompt> {
    ids.iter().map(|&id| Prompt::Clip { id, lang }).collect()
}

fn note_heard(s: &mut CallState, prompts: &[Prompt]) {
    for p in prompts {
        if let Prompt::Clip { id, lang } = p {
            let v = format!("{}/{}", lang.as_str(), prompt(*id, *lang).versioned_id());
            if !s.heard.contains(&v) {
                s.heard.push(v);
            }
        }
    }
}

fn stage_prompts(s: &CallState, cfg: &FlowConfig) -> (Vec<Prompt>, GatherSpec) {
    let lang = s.lang;
    let one_key = GatherSpec {
        num_digits: 1,
        timeout_secs: cfg.menu_timeout_secs,
    };
    let switch = Prompt::Clip {
        id: PromptId::SwitchLanguage,
        lang: lang.other(),
    };
    let msgs = cfg.covers_messages;
    match &s.stage {
        Stage::EnterNumber => (
            clips(lang, &[PromptId::EnterNumber]),
            GatherSpec {
                num_digits: 10,
                timeout_secs: cfg.number_timeout_secs,
            },
        ),
        Stage::ReadBack { number } => {
            let national = number
                .as_str()
                .strip_prefix("+90")
                .unwrap_or(number.as_str());
            let mut ids = vec![PromptId::ReadbackIntro];
            ids.extend(national.chars().filter_map(PromptId::digit));
            ids.push(PromptId::ReadbackConfirm);
            (clips(lang, &ids), one_key)
        }
        Stage::BrandMenu => {
            let mut p = clips(lang, &[PromptId::BrandMenu]);
            for (i, b) in s.brands.iter().enumerate() {
                if let Some(id) = PromptId::brand_option(i + 1) {
                    p.push(Prompt::Text {
                        text: b.name.clone(),
                        lang,
                    });
                    p.push(Prompt::Clip { id, lang });
                }
            }
            p.push(switch);
            (p, one_key)
        }
        Stage::Confirm { choice } => {
            let id = match (choice, msgs) {
                (Choice::OptOut, false) => PromptId::ConfirmOptoutCalls,
                (Choice::OptOut, true) => PromptId::ConfirmOptoutCallsMsgs,
                (Choice::OptIn, false) => PromptId::ConfirmOptinCalls,
                (Choice::OptIn, true) => PromptId::ConfirmOptinCallsMsgs,
            };
            let mut p = Vec::new();
            if let (true, Some(b)) = (s.multi_brand, &s.brand) {
                p.push(Prompt::Text {
                    text: b.name.clone(),
                    lang,
                });
            }
            p.push(Prompt::Clip { id, lang });
            (p, one_key)
        }
        // MainMenu, and a safe default for stages that never gather.
        _ => {
            let id = if msgs {
                PromptId::MainMenuCallsMsgs
            } else {
                PromptId::MainMenuCalls
            };
            (vec![Prompt::Clip { id, lang }, switch], one_key)
        }
    }
}

#[cfg(test)]
#[path = "flow_tests.rs"]
pub(crate) mod tests;
#[cfg(test)]
#[path = "flow_walk_tests.rs"]
mod walk_tests;
