//! Retries for outbound calls: exponential backoff with jitter on what may
//! pass (5xx, 429, connection errors, timeouts), none on what will not
//! (other 4xx). A server's `Retry-After` is honoured within the cap.
//!
//! Every answer is read through [`read_capped`]: at most [`ANSWER_CAP`]
//! bytes of its body, chunk by chunk; past that, or when the body breaks
//! off or outlasts the timeout, the rest is left unread and the connection
//! dropped, so nothing on the path can make backstop buffer an endless
//! body. The status alone decides the outcome (the receiver has taken the
//! request once it answers 2xx, whatever its body does next; repeating it
//! would send it twice); the body only adds what it says, and a cut or
//! unreadable one is named in the outcome's detail ([`Answer::note`]).

use rand::Rng;
use std::future::Future;
use std::time::Duration;

/// How much of an answer's body is read: PagerDuty's JSON answer and any
/// receiver's error message fit, with room to spare.
pub const ANSWER_CAP: usize = 8 * 1024;

/// How one attempt went.
#[derive(Debug)]
pub enum Attempt<T> {
    Done(T),
    /// Worth another try; `after` is the server's Retry-After, if any.
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// Will not succeed by repeating it.
    Reject(String),
}

/// Exponential backoff: `base`, 2×base, 4×base ... capped at `max`, each
/// delay drawn uniformly from its upper half so callers spread out.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            attempts: 5,
            base: Duration::from_millis(250),
            max: Duration::from_secs(8),
        }
    }
}

impl Backoff {
    fn delay(&self, retry: u32, after: Option<Duration>) -> Duration {
        let exp = self.base.saturating_mul(1 << retry.min(16)).min(self.max);
        let jittered = rand::rng().random_range(exp / 2..=exp);
        after.map_or(jittered, |a| a.min(self.max).max(jittered))
    }
}

/// Why all attempts together failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryError {
    #[error("rejected: {0}")]
    Rejected(String),
    #[error("gave up after {attempts} attempts, last error: {last}")]
    Exhausted { attempts: u32, last: String },
    /// Not retried: what it carried is out of date, a newer request goes instead.
    #[error("stopped after {attempts} attempts for a newer request, last error: {last}")]
    Superseded { attempts: u32, last: String },
}

impl RetryError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            RetryError::Rejected(_) => "rejected",
            RetryError::Exhausted { .. } => "exhausted",
            RetryError::Superseded { .. } => "superseded",
        }
    }
}

/// Run `attempt` until it is done, rejected, or out of attempts.
/// `on_attempt` sees each attempt's outcome label (ok, retryable, rejected).
pub async fn run<T, F, Fut>(
    policy: Backoff,
    attempt: F,
    on_attempt: impl FnMut(&'static str),
) -> Result<T, RetryError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    run_while(policy, attempt, on_attempt, || true).await
}

/// Like [`run`], but before each retry (before its pause and after it) asks
/// `wanted` whether the call is still worth making; when it is not, stops
/// with `Superseded`. A caller with a newer request to send so waits for
/// one attempt at most, never for the retries of an outdated one.
pub async fn run_while<T, F, Fut>(
    policy: Backoff,
    mut attempt: F,
    mut on_attempt: impl FnMut(&'static str),
    mut wanted: impl FnMut() -> bool,
) -> Result<T, RetryError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    let mut retry = 0;
    loop {
        match attempt().await {
            Attempt::Done(v) => {
                on_attempt("ok");
                return Ok(v);
            }
            Attempt::Reject(e) => {
                on_attempt("rejected");
                return Err(RetryError::Rejected(e));
            }
            Attempt::Retry { error, after } => {
                on_attempt("retryable");
                retry += 1;
                if retry >= policy.attempts {
                    return Err(RetryError::Exhausted {
                        attempts: retry,
                        last: error,
                    });
                }
                if !wanted() {
                    return Err(RetryError::Superseded {
                        attempts: retry,
                        last: error,
                    });
                }
                tokio::time::sleep(policy.delay(retry - 1, after)).await;
                if !wanted() {
                    return Err(RetryError::Superseded {
                        attempts: retry,
                        last: error,
                    });
                }
            }
        }
    }
}

/// Classify an HTTP status: 2xx done, 429/5xx retry, the rest reject;
/// `error` describes the answer when it is not done.
pub fn classify_status<T>(
    status: u16,
    retry_after: Option<Duration>,
    ok: T,
    error: impl FnOnce() -> String,
) -> Attempt<T> {
    match status {
        200..=299 => Attempt::Done(ok),
        429 | 500..=599 => Attempt::Retry {
            error: error(),
            after: retry_after,
        },
        _ => Attempt::Reject(error()),
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare for APIs; ignored).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// An HTTP client for outbound calls (webhook, receivers).
pub fn client(
    timeout: Duration,
    tls: &crate::config::Tls,
) -> Result<reqwest::Client, crate::tls::ClientError> {
    let builder = reqwest::Client::builder()
        .user_agent(concat!("backstop/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout);
    crate::tls::client(builder, tls)
}

/// Send the request `build` makes until it is answered 2xx, is refused, or
/// the attempts run out; returns the final answer. A 429 without
/// `Retry-After` waits at least `SLOW_DOWN`: rate-limited APIs want a real
/// pause, not the quick first retry.
pub async fn send(
    policy: Backoff,
    build: impl Fn() -> reqwest::RequestBuilder,
    on_attempt: impl FnMut(&'static str),
) -> Result<Answer, RetryError> {
    send_while(policy, build, on_attempt, || true).await
}

/// [`send`], retried only while `wanted` says so (see [`run_while`]).
pub async fn send_while(
    policy: Backoff,
    build: impl Fn() -> reqwest::RequestBuilder,
    on_attempt: impl FnMut(&'static str),
    wanted: impl FnMut() -> bool,
) -> Result<Answer, RetryError> {
    run_while(
        policy,
        || async {
            match build().send().await {
                Err(e) => Attempt::Retry {
                    error: transport_error(&e),
                    after: None,
                },
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let after =
                        retry_after(resp.headers()).or((status == 429).then_some(SLOW_DOWN));
                    let answer = read_capped(resp, ANSWER_CAP).await;
                    let error = answer.describe();
                    classify_status(status, after, answer, || error)
                }
            }
        },
        on_attempt,
        wanted,
    )
    .await
}

/// A receiver's answer: its status and at most a cap's worth of its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The body as far as it was read (never more than the cap).
    pub body: Vec<u8>,
    pub end: BodyEnd,
}

/// How reading an answer's body ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyEnd {
    /// Read to its end.
    Whole,
    /// Longer than the cap (this many bytes): the rest was not read.
    Cut(usize),
    /// Broke off or timed out before its end.
    Unreadable(String),
}

impl Answer {
    /// The start of the body as text, for messages.
    pub fn snippet(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(200)
            .collect()
    }

    /// What went wrong reading the body, if anything, for a record's detail.
    pub fn note(&self) -> Option<String> {
        match &self.end {
            BodyEnd::Whole => None,
            BodyEnd::Cut(cap) => Some(format!(
                "its answer was longer than {} KiB and was cut there, the rest not read",
                cap / 1024
            )),
            BodyEnd::Unreadable(e) => Some(format!("its answer's body was unreadable: {e}")),
        }
    }

    /// "HTTP 503: <the body's start>", and what went wrong reading it.
    pub fn describe(&self) -> String {
        let mut s = format!("HTTP {}: {}", self.status, self.snippet());
        if let Some(note) = self.note() {
            s.push_str(&format!(" ({note})"));
        }
        s
    }
}

/// Read at most `cap` bytes of `resp`'s body, chunk by chunk, then drop the
/// response: a body left unread closes its connection rather than going
/// back to the pool. The client's timeout bounds a body that never ends.
pub async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Answer {
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    let end = loop {
        match resp.chunk().await {
            Ok(None) => break BodyEnd::Whole,
            Ok(Some(chunk)) => {
                let room = cap - body.len();
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    break BodyEnd::Cut(cap);
                }
                body.extend_from_slice(&chunk);
            }
            Err(e) => break BodyEnd::Unreadable(transport_error(&e)),
        }
    };
    drop(resp);
    Answer { status, body, end }
}

/// How long a 429 without `Retry-After` waits at least.
const SLOW_DOWN: Duration = Duration::from_secs(2);

/// The root cause of a transport error, without the URL (it may hold credentials).
fn transport_error(e: &reqwest::Error) -> String {
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    if e.is_timeout() {
        "timed out".to_string()
    } else if std::ptr::addr_eq(root, e as &dyn std::error::Error) {
        "request failed".to_string()
    } else {
        root.to_string()
    }
}

#[cfg(test)]
mod tests;
