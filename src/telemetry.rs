//! Logging: pretty in a terminal, JSON with `--log-format json`. A redacting writer masks any
//! phone number or e-mail that reaches a log line (a safety net behind masked fields).

use std::io::{self, Write};
use std::sync::LazyLock;

use regex::Regex;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

// A number must start a token: digit runs inside identifiers (hex lease owners, request ids)
// are not phone numbers, and masking them breaks what operators and tests read from the log.
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(^|[^0-9A-Za-z_])(\+?\d{5})\d{5,8}(\d{2})\b").expect("valid regex")
});
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"([A-Za-z0-9])[A-Za-z0-9._%+\-]*@([A-Za-z0-9.\-]+\.[A-Za-z]{2,})")
        .expect("valid regex")
});

/// Masks phone numbers (`+90532*****67`) and e-mails (`a***@example.com`) in free text.
pub fn redact(line: &str) -> String {
    let s = PHONE.replace_all(line, "$1$2*****$3");
    EMAIL.replace_all(&s, "$1***@$2").into_owned()
}

pub struct RedactingWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let text = String::from_utf8_lossy(&self.buf);
            self.inner.write_all(redact(&text).as_bytes())?;
            self.buf.clear();
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[derive(Clone, Copy)]
pub struct Stderr;

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = RedactingWriter<io::Stderr>;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            inner: io::stderr(),
            buf: Vec::with_capacity(256),
        }
    }
}

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_numbers_and_emails() {
        assert_eq!(redact("from +905321234567 ok"), "from +90532*****67 ok");
        assert_eq!(redact("to 905321234567"), "to 90532*****67");
        assert_eq!(
            redact(r#"{"sender":"+905321234567"}"#),
            r#"{"sender":"+90532*****67"}"#
        );
        assert_eq!(redact("+905321234567"), "+90532*****67");
        // Digits inside an identifier are left alone.
        let owner = "reporter-ce86d01f6f73495eaee2356012345678975";
        assert_eq!(redact(owner), owner);
        assert_eq!(
            redact("mail Ali.Veli@Firma.com.tr"),
            "mail A***@Firma.com.tr"
        );
        assert_eq!(redact("job 42 took 120 ms"), "job 42 took 120 ms");
    }
}
