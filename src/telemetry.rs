//! Logging: pretty in a terminal, JSON with `--log-format json`. A redacting writer masks any
//! phone number or e-mail that reaches a log line (a safety net behind masked fields).

use std::io::{self, Write};

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Masks every phone number and e-mail in what it is given, then writes it to `inner`. It sits
/// behind tracing-appender's non-blocking writer, which hands it one whole log line per call,
/// so the masking (a regex pass) and the write(2) run on the logging thread, not on the
/// request's.
pub struct RedactingWriter<W: Write> {
    inner: W,
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(data);
        self.inner
            .write_all(crate::domain::mask::text(&text).as_bytes())?;
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Keeps the logging thread alive; dropping it writes out what is still queued.
pub type LogGuard = tracing_appender::non_blocking::WorkerGuard;

pub fn init(format: LogFormat) -> LogGuard {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    // Not lossy: when the queue is full a request waits for the logging thread rather than
    // dropping a line an operator may need.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log-writer")
        .finish(RedactingWriter {
            inner: io::stderr(),
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        // The span list alone: the current span would be its last element written twice (on
        // every webhook's line, a tenth of the line and of the logging thread's work).
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
    guard
}

/// An error with its causes, `outer: cause: root cause`, for a log field (`error = %chain(&e)`).
/// A plain `%e` shows only the outer message, and the cause (the refused connection under "error
/// sending request", the SQL error under "storage failed") is what an operator needs. A cause
/// whose text the message already contains (`#[error("...: {0}")]` over a `#[source]`) is not
/// repeated.
pub fn chain<'a>(e: &'a (dyn std::error::Error + 'a)) -> Chain<'a> {
    Chain(e)
}

pub struct Chain<'a>(&'a (dyn std::error::Error + 'a));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = self.0.to_string();
        let mut cause = self.0.source();
        while let Some(c) = cause {
            let text = c.to_string();
            if !shown.contains(&text) {
                shown.push_str(": ");
                shown.push_str(&text);
            }
            cause = c.source();
        }
        f.write_str(&shown)
    }
}

#[cfg(test)]
mod tests {
    use super::chain;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("middle: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn a_chain_shows_every_cause_once() {
        let e = Outer(Middle(std::io::Error::other("connection refused")));
        assert_eq!(e.to_string(), "outer");
        assert_eq!(chain(&e).to_string(), "outer: middle: connection refused");
    }
}
