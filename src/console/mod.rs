//! The compliance console at `/console`: server-rendered pages for the people who answer to
//! the Ministry (compliance teams, call-centre supervisors). Sign-in and roles (`auth`), the
//! overview with its charts (`overview`, `charts`), a person's history and evidence pack
//! (`person`), and the audited operator actions (`actions`). Users are managed with the CLI
//! (`iys-relay user …`, [`users`]).

pub mod actions;
pub mod auth;
pub mod charts;
pub mod overview;
pub mod password;
pub mod person;
pub mod users;
pub mod view;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(overview::show))
        .route("/console/login", get(auth::login_form).post(auth::login))
        .route("/console/logout", post(auth::logout))
        .route("/console/person", get(person::show))
        .route("/console/person/pack", post(person::pack))
        .route("/console/jobs", get(actions::jobs))
        .route("/console/jobs/requeue", post(actions::requeue_jobs))
        .route("/console/alerts", get(actions::alerts))
        .route("/console/alerts/{id}/ack", post(actions::acknowledge))
        .route(
            "/console/links",
            get(actions::link_page).post(actions::mint_link),
        )
        .route("/console/actions", get(actions::action_log))
        .layer(axum::middleware::from_fn(auth::remember_lang))
}
