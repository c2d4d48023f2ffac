//! The call-centre IVR: a pure call-flow state machine, signed per-call state tokens, TwiML
//! rendering and the recorded prompts it plays. No IO here; the axum handler calls [`turn`].

pub mod api;
pub mod config;
pub mod flow;
pub mod outbound;
pub mod prompts;
mod redact;
pub mod render;
pub mod token;
pub mod webhooks;

use axum::Router;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};

use crate::state::AppState;

pub use flow::{
    BrandRef, CallState, Choice, FlowConfig, Input, Outcome, Prompt, Stage, Step, step,
};
pub use prompts::{Lang, PromptId, PromptText, prompt};
pub use render::{PromptMode, PromptUrls, Voices, render};
pub use token::{TokenError, open, seal};

/// The incoming-call webhook (the number's "A call comes in" URL).
pub const CALL_ROUTE: &str = "/webhooks/twilio/voice";
/// Every later turn: the Gather action and the timeout redirect, with the signed state in `t`.
pub const GATHER_ROUTE: &str = "/webhooks/twilio/voice/gather";
/// The in-call entry of a business's own call (the dialer redirects or points its Gather here).
pub const OUTBOUND_ROUTE: &str = "/webhooks/twilio/voice/outbound";
/// The relay's short announcement inside a business's own call.
pub const OUTBOUND_ANNOUNCE_ROUTE: &str = "/webhooks/twilio/voice/outbound/announce";
/// The call status callback (logged only).
pub const STATUS_ROUTE: &str = "/webhooks/twilio/voice/status";

/// The call-centre channel's routes: IVR webhooks, the prompt recordings and the agent API.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(CALL_ROUTE, post(webhooks::incoming).get(webhooks::incoming))
        .route(GATHER_ROUTE, post(webhooks::gather).get(webhooks::gather))
        .route(STATUS_ROUTE, post(webhooks::status).get(webhooks::status))
        .route(
            OUTBOUND_ROUTE,
            post(webhooks::outbound_in_call).get(webhooks::outbound_in_call),
        )
        .route(
            OUTBOUND_ANNOUNCE_ROUTE,
            post(webhooks::outbound_announce).get(webhooks::outbound_announce),
        )
        .merge(api::routes())
        .route("/voice-prompts/{lang}/{file}", get(webhooks::prompt_wav))
        .merge(crate::channels::agent::routes())
}

/// Static settings the handler holds for the IVR (from config).
#[derive(Debug, Clone)]
pub struct IvrSettings {
    pub flow: FlowConfig,
    /// HMAC key for call-state tokens: at least 32 random bytes.
    pub secret: Vec<u8>,
    /// Public base URL of `voice-prompts/` (served statically).
    pub prompts_base: String,
    /// Public URL of the IVR action route (the Gather action and timeout redirect).
    pub action_base: String,
    pub mode: PromptMode,
    pub voices: Voices,
}

/// One webhook's result: the flow step (with any [`Outcome`] to record) and the TwiML to return.
#[derive(Debug, Clone)]
pub struct Turn {
    pub step: Step,
    pub twiml: String,
}

/// Runs one IVR webhook. For `Input::Start` no token is needed; every later turn must present
/// the token from the previous action URL (query `t`), opened against this call's `CallSid`.
/// On `Err`, answer with [`rejected_twiml`]. Record `step.outcome` (dedupe key: CallSid) before
/// returning the TwiML, so a recorded choice is never announced but lost.
pub fn turn(
    s: &IvrSettings,
    call_sid: &str,
    token: Option<&str>,
    input: Input,
    now: DateTime<Utc>,
) -> Result<Turn, TokenError> {
    let state = match (&input, token) {
        (Input::Start { .. } | Input::StartOutbound(_), _) => CallState::default(),
        (_, Some(t)) => open(t, call_sid, &s.secret, now)?,
        (_, None) => return Err(TokenError::Malformed),
    };
    let st = step(&state, input, &s.flow);
    let sealed = seal(&st.next, call_sid, &s.secret, now);
    let urls = PromptUrls::new(&s.prompts_base, &s.action_base, &sealed);
    let twiml = render(&st, &urls, s.mode, &s.voices).to_xml();
    Ok(Turn { step: st, twiml })
}

/// The answer to a request whose token did not verify: an apology and a hang-up, nothing recorded.
pub fn rejected_twiml(s: &IvrSettings) -> String {
    let st = Step {
        next: CallState {
            stage: Stage::Goodbye,
            ..CallState::default()
        },
        prompts: vec![Prompt::Clip {
            id: PromptId::Unavailable,
            lang: s.flow.default_lang,
        }],
        gather: None,
        outcome: None,
        hangup: true,
        redirect: None,
    };
    let urls = PromptUrls::new(&s.prompts_base, &s.action_base, "");
    render(&st, &urls, s.mode, &s.voices).to_xml()
}
