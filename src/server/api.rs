//! The admin API's mutating endpoints: `POST /api/v1/rollback`,
//! `/api/v1/pause` and `/api/v1/resume`. Each needs the bearer token of
//! `admin.token_file`, compared in constant time; a peer that keeps
//! presenting wrong tokens is refused for a while (its wrong tokens only);
//! bodies are small JSON documents.

use super::{Reply, Shared, json};
use crate::act::{Command, MAX_PAUSE, Refused};
use bytes::Bytes;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Request, StatusCode};
use serde::Deserialize;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

/// Largest request body the API reads.
pub const MAX_BODY: usize = 16 * 1024;
/// Pause length when the request names none.
const DEFAULT_PAUSE: Duration = Duration::from_secs(3600);
/// Requests per second from one address to the read-only endpoints:
/// Prometheus and the kubelet need a few per minute, a script polling
/// `/status` a few per second; a flood beyond this cannot keep the engine
/// answering snapshots. `/healthz` costs no more to answer than a 429 and
/// is never limited; `/readyz` has a budget of its own, so that scrapes
/// cannot make the pod unready.
const REQUESTS_PER_SECOND: u32 = 100;
const READINESS_PER_SECOND: u32 = 100;
/// Wrong or missing tokens per minute from one address; more get 429.
const FAILURES_PER_MINUTE: u32 = 10;
/// Authenticated commands per minute from one address: a person or a
/// deploy script needs a few; only a runaway loop needs more.
const COMMANDS_PER_MINUTE: u32 = 60;
/// A request body must arrive within this once its head has.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Which budget a request spends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Budget {
    /// Everything read-only but `/healthz` and `/readyz`.
    Read,
    Readiness,
}

/// Budgets per peer address (a `conn::peer_key`). Only failed
/// authentications count toward the lock-out, so another client's wrong
/// guesses never lock out the right token (behind `kubectl port-forward`
/// every client is 127.0.0.1). The token's length (at least 16
/// characters, `openssl rand -hex 32` advised) is what makes guessing
/// hopeless.
pub struct Limits {
    requests: DefaultKeyedRateLimiter<IpAddr>,
    readiness: DefaultKeyedRateLimiter<IpAddr>,
    failures: DefaultKeyedRateLimiter<IpAddr>,
    commands: DefaultKeyedRateLimiter<IpAddr>,
}

impl Default for Limits {
    fn default() -> Self {
        let per_second = |n| Quota::per_second(NonZeroU32::new(n).expect("non-zero"));
        let per_minute = |n| Quota::per_minute(NonZeroU32::new(n).expect("non-zero"));
        Limits {
            requests: RateLimiter::keyed(per_second(REQUESTS_PER_SECOND)),
            readiness: RateLimiter::keyed(per_second(READINESS_PER_SECOND)),
            failures: RateLimiter::keyed(per_minute(FAILURES_PER_MINUTE)),
            commands: RateLimiter::keyed(per_minute(COMMANDS_PER_MINUTE)),
        }
    }
}

impl Limits {
    /// Whether `peer` may make another request from `budget`.
    pub fn allow(&self, peer: IpAddr, budget: Budget) -> bool {
        // Forget idle peers now and then, so the tables stay small.
        for limiter in [
            &self.requests,
            &self.readiness,
            &self.failures,
            &self.commands,
        ] {
            if limiter.len() > 1024 {
                limiter.retain_recent();
            }
        }
        let limiter = match budget {
            Budget::Read => &self.requests,
            Budget::Readiness => &self.readiness,
        };
        limiter.check_key(&peer).is_ok()
    }

    /// Whether `peer` may be told 401 once more; spends the read budget too.
    fn allow_failure(&self, peer: IpAddr) -> bool {
        self.allow(peer, Budget::Read) && self.failures.check_key(&peer).is_ok()
    }

    fn allow_command(&self, peer: IpAddr) -> bool {
        self.commands.check_key(&peer).is_ok()
    }
}

/// The 429 for a peer over its limit.
pub fn too_many() -> Reply {
    let mut reply = error(
        StatusCode::TOO_MANY_REQUESTS,
        "too many admin requests from this address; slow down",
    );
    reply
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("10"));
    reply
}

/// The endpoints, for routing and for the metric's `endpoint` label.
pub const ENDPOINTS: [&str; 3] = ["/api/v1/rollback", "/api/v1/pause", "/api/v1/resume"];

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    reason: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PauseBody {
    /// `30m`, `2h`; default 1h, at most 24h.
    duration: Option<String>,
    reason: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ResumeBody {}

/// Handle `POST` to one of `ENDPOINTS`; `key` is the peer's `conn::peer_key`.
pub async fn handle(shared: &Shared, peer: IpAddr, key: IpAddr, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_string();
    if let Err(reply) = authorize(shared, peer, key, &req) {
        return *reply;
    }
    let body = match read_body(req).await {
        Ok(body) => body,
        Err(reply) => return *reply,
    };
    let commands = &shared.commands;
    let (command, answer) = match path.as_str() {
        "/api/v1/rollback" => {
            let body: RollbackBody = match parse(&body) {
                Ok(b) => b,
                Err(reply) => return *reply,
            };
            let reason = body.reason.unwrap_or_else(|| "no reason given".into());
            tracing::warn!(%peer, reason = reason.as_str(), "manual rollback requested");
            let (reply, rx) = oneshot::channel::<Result<String, Refused>>();
            let answer = async move {
                match rx.await {
                    Ok(Ok(detail)) => json(
                        StatusCode::ACCEPTED,
                        &serde_json::json!({ "started": detail }),
                    ),
                    Ok(Err(why)) => error(StatusCode::CONFLICT, &why.to_string()),
                    Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
                }
            };
            (Command::Rollback { reason, reply }, answer.boxed())
        }
        "/api/v1/pause" => {
            let body: PauseBody = match parse(&body) {
                Ok(b) => b,
                Err(reply) => return *reply,
            };
            let duration = match body.duration.as_deref().map(humantime::parse_duration) {
                None => DEFAULT_PAUSE,
                Some(Ok(d)) if d.is_zero() || d > MAX_PAUSE => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "duration: must be above 0 and at most 24h",
                    );
                }
                Some(Ok(d)) => d,
                Some(Err(e)) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!("duration: {e} (write it like 30m or 2h)"),
                    );
                }
            };
            let reason = body.reason.unwrap_or_else(|| "no reason given".into());
            let (reply, rx) = oneshot::channel();
            let answer = async move {
                match rx.await {
                    Ok(window) => json(StatusCode::OK, &serde_json::json!({ "paused": window })),
                    Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
                }
            };
            let command = Command::Pause {
                duration,
                reason,
                reply,
            };
            (command, answer.boxed())
        }
        _ => {
            if let Err(reply) = parse::<ResumeBody>(&body) {
                return *reply;
            }
            let (reply, rx) = oneshot::channel();
            let answer = async move {
                match rx.await {
                    Ok(ended) => json(StatusCode::OK, &serde_json::json!({ "ended": ended })),
                    Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
                }
            };
            (Command::Resume { reply }, answer.boxed())
        }
    };
    if commands.send(command).await.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    match tokio::time::timeout(Duration::from_secs(5), answer).await {
        Ok(reply) => reply,
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the actions stage did not answer",
        ),
    }
}

type BoxedReply = std::pin::Pin<Box<dyn Future<Output = Reply> + Send>>;

trait Boxed {
    fn boxed(self) -> BoxedReply;
}

impl<F: Future<Output = Reply> + Send + 'static> Boxed for F {
    fn boxed(self) -> BoxedReply {
        Box::pin(self)
    }
}

/// The request carries the configured token and its sender is within its
/// budgets, or the reply that says why not.
fn authorize(
    shared: &Shared,
    peer: IpAddr,
    key: IpAddr,
    req: &Request<Incoming>,
) -> Result<(), Box<Reply>> {
    let config = shared.config();
    let limits = &shared.limits;
    let Some(token) = &config.admin.token else {
        if !limits.allow(key, Budget::Read) {
            return Err(Box::new(too_many()));
        }
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "the admin API's mutating endpoints are off: set admin.token_file",
        )));
    };
    match presented(req) {
        Some(t) if matches(t, token.expose()) => {
            if limits.allow_command(key) {
                Ok(())
            } else {
                Err(Box::new(too_many()))
            }
        }
        _ if !limits.allow_failure(key) => Err(Box::new(too_many())),
        found => {
            tracing::warn!(%peer, presented = found.is_some(), "admin API request with a missing or wrong token");
            let mut reply = error(
                StatusCode::UNAUTHORIZED,
                "a valid bearer token is required (Authorization: Bearer <token from admin.token_file>)",
            );
            reply.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"backstop\""),
            );
            Err(Box::new(reply))
        }
    }
}

/// The bearer token in the request, if any.
fn presented(req: &Request<Incoming>) -> Option<&[u8]> {
    let value = req.headers().get(AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then_some(token.trim_ascii())
}

/// Constant time in the token's contents (its length may show).
fn matches(presented: &[u8], token: &str) -> bool {
    presented.ct_eq(token.as_bytes()).into()
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, Box<Reply>> {
    let body = Limited::new(req.into_body(), MAX_BODY).collect();
    let Ok(body) = tokio::time::timeout(BODY_TIMEOUT, body).await else {
        return Err(Box::new(error(
            StatusCode::REQUEST_TIMEOUT,
            &format!("the body did not arrive within {}s", BODY_TIMEOUT.as_secs()),
        )));
    };
    match body {
        Ok(body) => Ok(body.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Box::new(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body may be at most {} KiB", MAX_BODY / 1024),
        ))),
        Err(e) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            &format!("reading the body: {e}"),
        ))),
    }
}

/// An empty body means every field's default.
fn parse<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, Box<Reply>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            &format!("the body must be a JSON object: {e}"),
        ))
    })
}

fn error(status: StatusCode, message: &str) -> Reply {
    json(status, &serde_json::json!({ "error": message }))
}
