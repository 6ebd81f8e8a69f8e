//! Retries for outbound calls: exponential backoff with jitter on what may
//! pass (5xx, 429, connection errors, timeouts), none on what will not
//! (other 4xx). A server's `Retry-After` is honoured within the cap.

use rand::Rng;
use std::future::Future;
use std::time::Duration;

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
}

impl RetryError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            RetryError::Rejected(_) => "rejected",
            RetryError::Exhausted { .. } => "exhausted",
        }
    }
}

/// Run `attempt` until it is done, rejected, or out of attempts.
/// `on_attempt` sees each attempt's outcome label (ok, retryable, rejected).
pub async fn run<T, F, Fut>(
    policy: Backoff,
    mut attempt: F,
    mut on_attempt: impl FnMut(&'static str),
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
                tokio::time::sleep(policy.delay(retry - 1, after)).await;
            }
        }
    }
}

/// Classify an HTTP status: 2xx done, 429/5xx retry, the rest reject.
pub fn classify_status<T>(
    status: u16,
    retry_after: Option<Duration>,
    ok: T,
    body: &str,
) -> Attempt<T> {
    let snippet: String = body.chars().take(200).collect();
    match status {
        200..=299 => Attempt::Done(ok),
        429 | 500..=599 => Attempt::Retry {
            error: format!("HTTP {status}: {snippet}"),
            after: retry_after,
        },
        _ => Attempt::Reject(format!("HTTP {status}: {snippet}")),
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare for APIs; ignored).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// An HTTP client for outbound calls (webhook, receivers).
pub fn client(timeout: Duration, tls: &crate::config::Tls) -> Result<reqwest::Client, String> {
    let builder = reqwest::Client::builder()
        .user_agent(concat!("backstop/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout);
    crate::tls::trust(builder, tls)?
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

/// Send the request `build` makes until it is answered 2xx, is refused, or
/// the attempts run out; returns the final status. A 429 without
/// `Retry-After` waits at least `SLOW_DOWN`: rate-limited APIs want a real
/// pause, not the quick first retry.
pub async fn send(
    policy: Backoff,
    build: impl Fn() -> reqwest::RequestBuilder,
    on_attempt: impl FnMut(&'static str),
) -> Result<u16, RetryError> {
    run(
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
                    let body = resp.text().await.unwrap_or_default();
                    classify_status(status, after, status, &body)
                }
            }
        },
        on_attempt,
    )
    .await
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
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn policy() -> Backoff {
        Backoff {
            attempts: 4,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_retryable_then_succeeds() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let out = run(
            policy(),
            || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => Attempt::Retry {
                        error: "503".into(),
                        after: None,
                    },
                    _ => Attempt::Done(7),
                }
            },
            |_| {},
        )
        .await;
        assert_eq!(out, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // Two waits: within [50,100] ms and [100,200] ms.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(150) && waited <= Duration::from_millis(300),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rejection_is_not_retried() {
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = run(
            policy(),
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Attempt::Reject("HTTP 400".into())
            },
            |_| {},
        )
        .await;
        assert_eq!(out, Err(RetryError::Rejected("HTTP 400".into())));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_the_last_attempt_and_honours_retry_after() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let mut labels = Vec::new();
        let out: Result<(), _> = run(
            policy(),
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Attempt::Retry {
                    error: "429".into(),
                    after: Some(Duration::from_millis(900)),
                }
            },
            |l| labels.push(l),
        )
        .await;
        assert_eq!(
            out,
            Err(RetryError::Exhausted {
                attempts: 4,
                last: "429".into()
            })
        );
        assert_eq!(labels, vec!["retryable"; 4]);
        // Three waits of at least the server's 900 ms.
        assert!(started.elapsed() >= Duration::from_millis(2700));
    }

    #[test]
    fn status_classes() {
        assert!(matches!(
            classify_status(204, None, (), ""),
            Attempt::Done(())
        ));
        assert!(matches!(
            classify_status(429, None, (), ""),
            Attempt::Retry { .. }
        ));
        assert!(matches!(
            classify_status(502, None, (), ""),
            Attempt::Retry { .. }
        ));
        assert!(matches!(
            classify_status(404, None, (), ""),
            Attempt::Reject(_)
        ));
        assert!(matches!(
            classify_status(409, None, (), ""),
            Attempt::Reject(_)
        ));
    }
}
