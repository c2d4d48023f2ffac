//! Operations CLI.
