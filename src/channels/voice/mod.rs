//! The call-centre IVR: a pure call-flow state machine, signed per-call state tokens, TwiML
//! rendering and the recorded prompts it plays.
pub mod prompts;
