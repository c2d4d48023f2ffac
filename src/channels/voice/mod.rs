//! The call-centre IVR: a pure call-flow state machine, signed per-call state tokens, TwiML
//! rendering and the recorded prompts it plays. No IO here; the axum handler calls [`turn`].

pub mod api;
pub mod config;
pub mod flow;
pub mod outbound;
pub mod paths;
pub mod prompts;
mod redact;
pub mod render;
pub mod token;
pub mod webhooks;

use axum::Router;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};

use crate::state::AppState;

pub use config::IvrSettings;
pub use flow::{
    BrandRef, CallState, Choice, FlowConfig, Input, Outcome, Prompt, Stage, Step, step,
};
pub use paths::{CALL_ROUTE, GATHER_ROUTE, OUTBOUND_ANNOUNCE_ROUTE, OUTBOUND_ROUTE, STATUS_ROUTE};
pub use prompts::{Lang, PromptId, PromptText, prompt};
pub use render::{PromptMode, PromptUrls, Voices, render};
pub use token::{TokenError, open, seal};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::twiml_check::parse;
    use crate::channels::voice::flow::tests::{CALLER, brand};
    use crate::domain::Status;

    #[test]
    fn full_call_through_turn_with_signed_action_urls() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
            .unwrap()
            .to_utc();
        let s = IvrSettings {
            flow: FlowConfig::default(),
            secret: b"0123456789abcdef0123456789abcdef".to_vec(),
            prompts_base: "https://relay.example/voice-prompts/".into(),
            action_base: "https://relay.example/voice/turn".into(),
            mode: PromptMode::Play,
            voices: Voices::default(),
        };
        let sid = "CA1";
        let token_of = |xml: &str| -> String {
            let root = parse(xml).unwrap();
            let action = root.children[0].attr("action").unwrap().to_string();
            assert_eq!(
                root.children[1].text, action,
                "timeout redirect goes to the same URL"
            );
            let url = url::Url::parse(&action).unwrap();
            url.query_pairs()
                .find(|(k, _)| k == "t")
                .unwrap()
                .1
                .into_owned()
        };
        let start = Input::Start {
            caller: Some(CALLER.into()),
            brands: vec![brand(9, "A")],
        };
        let t1 = turn(&s, sid, None, start, now).unwrap();
        assert!(
            t1.twiml
                .contains("https://relay.example/voice-prompts/tr/welcome.wav"),
            "{}",
            t1.twiml
        );
        let tok = token_of(&t1.twiml);
        assert_eq!(
            turn(&s, sid, None, Input::Digits("1".into()), now).unwrap_err(),
            TokenError::Malformed
        );
        assert_eq!(
            turn(&s, "CA2", Some(&tok), Input::Timeout, now).unwrap_err(),
            TokenError::WrongCall
        );
        let t2 = turn(&s, sid, Some(&tok), Input::from_digits(Some("1")), now).unwrap();
        let t3 = turn(
            &s,
            sid,
            Some(&token_of(&t2.twiml)),
            Input::from_digits(Some("1")),
            now,
        )
        .unwrap();
        assert_eq!(t3.step.outcome.unwrap().status, Status::Ret);
        let root = parse(&t3.twiml).unwrap();
        assert_eq!(root.children.last().unwrap().name, "Hangup");
        let rej = parse(&rejected_twiml(&s)).unwrap();
        let names: Vec<_> = rej.children.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["Play", "Hangup"]);
    }
}
