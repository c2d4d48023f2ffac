//! Twilio-style REST client for sending one SMS (`POST /2010-04-01/Accounts/{sid}/Messages.json`,
//! form body, HTTP Basic `AccountSid:AuthToken`).
//!
//! Retries 5xx, 429 (honouring `Retry-After`) and connection failures with exponential backoff
//! and jitter; never retries a 4xx (the request was understood and refused) nor a timeout after
//! the request was sent (Twilio may have queued it: a retry could text the person twice).

use crate::telemetry::chain;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use serde::Deserialize;

use crate::domain::Recipient;

/// Twilio error 21610: the recipient replied STOP; a send is opt-out evidence, not a failure.
pub const ERROR_OPTED_OUT: i64 = 21610;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SentMessage {
    pub sid: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("invalid Twilio client configuration: {0}")]
    Config(&'static str),
    /// A 4xx other than 429. `message` has long digit runs (phone numbers) masked.
    #[error("Twilio refused the message: HTTP {status}, code {code:?}")]
    Rejected {
        status: u16,
        code: Option<i64>,
        message: String,
    },
    #[error("Twilio unavailable after {attempts} attempt(s): {last}")]
    Unavailable {
        attempts: u32,
        last: String,
        /// Set when Twilio asked us to wait longer than we retry for: reschedule after it.
        retry_after: Option<Duration>,
    },
    /// The request may have reached Twilio (timeout, broken connection); not retried.
    #[error("outcome unknown, not retried to avoid a duplicate SMS: {0}")]
    Uncertain(String),
    #[error("unexpected success response from Twilio: {0}")]
    BadResponse(String),
}

impl SendError {
    pub fn is_opted_out(&self) -> bool {
        matches!(
            self,
            SendError::Rejected {
                code: Some(ERROR_OPTED_OUT),
                ..
            }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    /// Cap for backoff; a `Retry-After` longer than this ends the retries instead of sleeping.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Full-jitter-ish: uniformly in [d/2, d] with d = base · 2^(retry−1), capped.
    fn backoff(&self, retry: u32) -> Duration {
        let d = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.max_delay);
        let half = d / 2;
        half + half.mul_f64(rand::rng().random_range(0.0..=1.0))
    }
}

type SleepFn = Arc<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    messages_url: String,
    account_sid: String,
    auth_token: String,
    retry: RetryPolicy,
    sleep: SleepFn,
}

impl std::fmt::Debug for TwilioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioClient")
            .field("messages_url", &self.messages_url)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    code: Option<i64>,
    message: Option<String>,
}

impl TwilioClient {
    /// `base_url` is `https://api.twilio.com` in production (a fake server in tests).
    pub fn new(
        base_url: &str,
        account_sid: &str,
        auth_token: &str,
        timeout: Duration,
    ) -> Result<Self, SendError> {
        // The SID goes into the URL path, so it must be a plain token.
        if account_sid.is_empty() || !account_sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SendError::Config("account SID must be alphanumeric"));
        }
        if auth_token.is_empty() {
            return Err(SendError::Config("auth token is empty"));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|_| SendError::Config("could not build the HTTP client"))?;
        Ok(Self {
            http,
            messages_url: format!(
                "{}/2010-04-01/Accounts/{account_sid}/Messages.json",
                base_url.trim_end_matches('/')
            ),
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            retry: RetryPolicy::default(),
            sleep: Arc::new(|d| Box::pin(tokio::time::sleep(d))),
        })
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Replaces the wait between attempts (tests record the delays instead of sleeping).
    pub fn with_sleeper(
        mut self,
        sleep: impl Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync + 'static,
    ) -> Self {
        self.sleep = Arc::new(sleep);
        self
    }

    pub async fn send_sms(
        &self,
        from: &str,
        to: &str,
        body: &str,
    ) -> Result<SentMessage, SendError> {
        let to_masked =
            Recipient::parse(to).map_or_else(|_| "<unparsed>".to_owned(), |r| r.masked());
        let max = self.retry.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (last, retry_after) = match self.attempt(from, to, body).await? {
                Ok(sent) => return Ok(sent),
                Err(retryable) => retryable,
            };
            if retry_after.is_some_and(|d| d > self.retry.max_delay) || attempt >= max {
                tracing::warn!(to = %to_masked, attempt, error = %last, "Twilio send gave up");
                return Err(SendError::Unavailable {
                    attempts: attempt,
                    last,
                    retry_after: retry_after.filter(|d| *d > self.retry.max_delay),
                });
            }
            let delay = self
                .retry
                .backoff(attempt)
                .max(retry_after.unwrap_or_default());
            tracing::info!(to = %to_masked, attempt, error = %last, ?delay, "Twilio send retrying");
            (self.sleep)(delay).await;
        }
    }

    /// One POST. Outer error: final; inner `Err`: retryable, with its `Retry-After`.
    async fn attempt(
        &self,
        from: &str,
        to: &str,
        body: &str,
    ) -> Result<Result<SentMessage, (String, Option<Duration>)>, SendError> {
        let sent = self
            .http
            .post(&self.messages_url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&[("To", to), ("From", from), ("Body", body)])
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            // Nothing reached Twilio when the connection could not be made.
            Err(e) if e.is_connect() => {
                return Ok(Err((format!("connect: {}", chain(&e.without_url())), None)));
            }
            Err(e) => return Err(SendError::Uncertain(chain(&e.without_url()).to_string())),
        };
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            return Ok(Err((format!("HTTP {}", status.as_u16()), retry_after)));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| SendError::Uncertain(chain(&e.without_url()).to_string()))?;
        if status.is_success() {
            return serde_json::from_slice::<SentMessage>(&bytes)
                .map(Ok)
                .map_err(|e| SendError::BadResponse(e.to_string()));
        }
        let err: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
        Err(SendError::Rejected {
            status: status.as_u16(),
            code: err.as_ref().and_then(|e| e.code),
            message: err
                .and_then(|e| e.message)
                // Twilio error messages quote the number ("The 'To' number +90532… is not valid").
                .map(|m| crate::domain::mask::text(&m))
                .unwrap_or_default(),
        })
    }
}

/// `Retry-After` as delta-seconds or an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (at.timestamp() - chrono::Utc::now().timestamp()).max(0);
    Some(Duration::from_secs(secs.unsigned_abs()))
}

/// The Twilio client as a reply sender (`sms.outbound` for generic providers); it has no inbox.
#[async_trait::async_trait]
impl super::SmsApi for TwilioClient {
    async fn send(&self, from: &str, to: &str, text: &str) -> Result<String, super::ApiFailure> {
        use super::ApiFailure;
        match self.send_sms(from, to, text).await {
            Ok(m) => Ok(m.sid),
            Err(e) if e.is_opted_out() => Err(ApiFailure::OptedOut(e.to_string())),
            Err(e @ SendError::Unavailable { .. }) => Err(ApiFailure::Retryable(e.to_string())),
            // Twilio may have queued it: not retried, as the client itself never does.
            Err(e) => Err(ApiFailure::Permanent(e.to_string())),
        }
    }

    async fn inbox(
        &self,
        _query: &super::InboxQuery,
    ) -> Result<Vec<serde_json::Value>, super::ApiFailure> {
        Err(super::ApiFailure::Permanent(
            "Twilio has no inbox query here".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use axum::Router;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode as Code};
    use axum::response::IntoResponse;
    use axum::routing::post;

    use super::*;

    type Script = VecDeque<(u16, Option<&'static str>, &'static str)>;

    #[derive(Clone, Default)]
    struct Fake {
        script: Arc<Mutex<Script>>,
        seen: Arc<Mutex<Vec<(String, HeaderMap, String)>>>,
    }

    async fn handler(
        State(f): State<Fake>,
        uri: axum::http::Uri,
        headers: HeaderMap,
        body: String,
    ) -> impl IntoResponse {
        f.seen
            .lock()
            .unwrap()
            .push((uri.path().to_owned(), headers, body));
        let (status, retry_after, json) = f
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or((500, None, "{}"));
        let mut h = HeaderMap::new();
        if let Some(r) = retry_after {
            h.insert(RETRY_AFTER, r.parse().unwrap());
        }
        (Code::from_u16(status).unwrap(), h, json.to_owned())
    }

    async fn fake(script: &[(u16, Option<&'static str>, &'static str)]) -> (Fake, String) {
        let f = Fake::default();
        f.script.lock().unwrap().extend(script.iter().copied());
        let app = Router::new()
            .route("/2010-04-01/Accounts/{sid}/Messages.json", post(handler))
            .with_state(f.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (f, format!("http://{addr}"))
    }

    /// A client whose waits are recorded, not slept.
    fn client(base: &str) -> (TwilioClient, Arc<Mutex<Vec<Duration>>>) {
        let sleeps = Arc::new(Mutex::new(Vec::new()));
        let rec = sleeps.clone();
        let c = TwilioClient::new(base, "AC123", "tok", Duration::from_secs(5))
            .unwrap()
            .with_retry(RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(5),
            })
            .with_sleeper(move |d| {
                rec.lock().unwrap().push(d);
                Box::pin(async {})
            });
        (c, sleeps)
    }

    const OK: &str = r#"{"sid":"SM123","status":"queued","to":"+905321234567"}"#;

    #[tokio::test]
    async fn success_posts_form_with_basic_auth() {
        let (f, base) = fake(&[(201, None, OK)]).await;
        let (c, sleeps) = client(&base);
        let sent = c
            .send_sms("+908501234567", "+905321234567", "Kaydınız silindi: RET")
            .await
            .unwrap();
        assert_eq!(
            sent,
            SentMessage {
                sid: "SM123".into(),
                status: "queued".into()
            }
        );
        let seen = f.seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let (path, headers, body) = &seen[0];
        assert_eq!(path, "/2010-04-01/Accounts/AC123/Messages.json");
        assert_eq!(headers["authorization"], "Basic QUMxMjM6dG9r"); // AC123:tok
        let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        assert!(form.contains(&("To".into(), "+905321234567".into())));
        assert!(form.contains(&("From".into(), "+908501234567".into())));
        assert!(form.contains(&("Body".into(), "Kaydınız silindi: RET".into())));
        assert!(sleeps.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn server_error_then_success_retries_once() {
        let (f, base) = fake(&[(500, None, "{}"), (201, None, OK)]).await;
        let (c, sleeps) = client(&base);
        assert_eq!(
            c.send_sms("a", "+905321234567", "x").await.unwrap().sid,
            "SM123"
        );
        assert_eq!(f.seen.lock().unwrap().len(), 2);
        let s = sleeps.lock().unwrap();
        assert_eq!(s.len(), 1);
        assert!(
            s[0] >= Duration::from_millis(50) && s[0] <= Duration::from_millis(100),
            "{s:?}"
        );
    }

    #[tokio::test]
    async fn client_error_is_not_retried() {
        let err = r#"{"code":21610,"message":"Attempt to send to unsubscribed recipient +905321234567","status":400}"#;
        let (f, base) = fake(&[(400, None, err), (201, None, OK)]).await;
        let (c, sleeps) = client(&base);
        let e = c.send_sms("a", "+905321234567", "x").await.unwrap_err();
        assert!(e.is_opted_out(), "{e:?}");
        let SendError::Rejected {
            status: 400,
            message,
            ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert!(message.ends_with("+90532*****67"), "{message}");
        assert_eq!(f.seen.lock().unwrap().len(), 1);
        assert!(sleeps.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn too_many_requests_honours_retry_after() {
        let (f, base) = fake(&[(429, Some("2"), "{}"), (201, None, OK)]).await;
        let (c, sleeps) = client(&base);
        assert!(c.send_sms("a", "b", "x").await.is_ok());
        assert_eq!(f.seen.lock().unwrap().len(), 2);
        assert_eq!(*sleeps.lock().unwrap(), vec![Duration::from_secs(2)]);
    }

    #[tokio::test]
    async fn retry_after_beyond_the_cap_ends_retries() {
        let (f, base) = fake(&[(503, Some("3600"), "{}"), (201, None, OK)]).await;
        let (c, sleeps) = client(&base);
        let e = c.send_sms("a", "b", "x").await.unwrap_err();
        assert!(matches!(
            e,
            SendError::Unavailable { attempts: 1, retry_after: Some(d), .. } if d == Duration::from_secs(3600)
        ));
        assert_eq!(f.seen.lock().unwrap().len(), 1);
        assert!(sleeps.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts_with_growing_backoff() {
        let (f, base) = fake(&[
            (503, None, "{}"),
            (502, None, "{}"),
            (500, None, "{}"),
            (201, None, OK),
        ])
        .await;
        let (c, sleeps) = client(&base);
        let e = c.send_sms("a", "b", "x").await.unwrap_err();
        assert!(
            matches!(e, SendError::Unavailable { attempts: 3, .. }),
            "{e:?}"
        );
        assert_eq!(f.seen.lock().unwrap().len(), 3);
        let s = sleeps.lock().unwrap();
        assert_eq!(s.len(), 2);
        assert!(
            s[1] >= Duration::from_millis(100) && s[1] <= Duration::from_millis(200),
            "{s:?}"
        );
    }

    #[tokio::test]
    async fn connection_refused_is_retried() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let (c, sleeps) = client(&format!("http://{addr}"));
        let e = c.send_sms("a", "b", "x").await.unwrap_err();
        assert!(
            matches!(e, SendError::Unavailable { attempts: 3, .. }),
            "{e:?}"
        );
        assert_eq!(sleeps.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn success_with_unexpected_json_is_bad_response() {
        let (_f, base) = fake(&[(201, None, "not json")]).await;
        let (c, _) = client(&base);
        assert!(matches!(
            c.send_sms("a", "b", "x").await,
            Err(SendError::BadResponse(_))
        ));
    }

    #[test]
    fn config_is_checked_and_helpers_behave() {
        let t = Duration::from_secs(1);
        assert!(TwilioClient::new("http://x", "AC/../x", "tok", t).is_err());
        assert!(TwilioClient::new("http://x", "AC1", "", t).is_err());
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
