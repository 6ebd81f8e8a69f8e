//! The HTTP side of a probe: one shared client (connection reuse across
//! probes), a request built once per target, the whole exchange bounded by
//! the target's timeout, and the body read up to a cap.

use super::{Outcome, Reason, Sample, check};
use crate::config::Target;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;

/// Bodies are read up to this many bytes; expectations see the prefix.
const MAX_BODY: usize = 1 << 20;

/// Runs probes; cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct Prober {
    client: reqwest::Client,
}

/// What a target's probe needs, prepared once so each probe only clones it.
#[derive(Clone)]
pub struct Request {
    method: reqwest::Method,
    url: reqwest::Url,
    headers: HeaderMap,
}

impl Request {
    /// Validation already checked method and header names/values, so these
    /// conversions only fail on a bug; the error says which target.
    pub fn new(target: &Target) -> Result<Request, String> {
        let method = reqwest::Method::from_bytes(target.method.as_bytes())
            .map_err(|e| format!("target {}: method: {e}", target.name))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &target.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| format!("target {}: header {name}: {e}", target.name))?;
            let mut value = HeaderValue::from_str(value.expose())
                .map_err(|_| format!("target {}: header {name}: invalid value", target.name))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        Ok(Request {
            method,
            url: target.url.clone(),
            headers,
        })
    }
}

impl Prober {
    pub fn new(tls: &crate::config::Tls) -> Result<Prober, String> {
        let builder = reqwest::Client::builder()
            .user_agent(concat!("backstop/", env!("CARGO_PKG_VERSION")))
            // The app is on loopback next to us; a proxy from the environment
            // would measure the proxy, not the app.
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true);
        let client = crate::tls::trust(builder, tls)?
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(Prober { client })
    }

    /// Probe once. Never fails: every problem becomes a failed `Outcome`.
    pub async fn probe(&self, target: usize, t: &Target, req: &Request) -> Sample {
        // An HTTP client span (OpenTelemetry semantic conventions); costs
        // next to nothing when tracing is not configured.
        let url = crate::redact::url(&req.url);
        let span = tracing::info_span!(
            "probe",
            otel.name = %format_args!("{} {}", req.method, t.name),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            http.request.method = %req.method,
            url.full = %url,
            server.address = url.host_str().unwrap_or(""),
            server.port = url.port_or_known_default().unwrap_or(0),
            http.response.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
            backstop.target = t.name.as_str(),
            backstop.result = tracing::field::Empty,
        );
        let sample = self
            .probe_once(target, t, req)
            .instrument(span.clone())
            .await;
        match &sample.outcome {
            Outcome::Success { status } => {
                span.record("http.response.status_code", status);
                span.record("backstop.result", "success");
            }
            Outcome::Failure { reason, .. } => {
                span.record("error.type", reason.metric_label());
                span.record("backstop.result", "failure");
                span.record("otel.status_code", "ERROR");
            }
        }
        sample
    }

    async fn probe_once(&self, target: usize, t: &Target, req: &Request) -> Sample {
        let at = Instant::now();
        let outcome = match tokio::time::timeout(t.timeout, self.exchange(req)).await {
            Err(_) => Outcome::Failure {
                reason: Reason::Timeout,
                detail: format!("no complete answer within {:?}", t.timeout),
            },
            Ok(Err(failure)) => failure,
            Ok(Ok((status, body))) => check(&t.expect, status, &body, at.elapsed()),
        };
        let latency = at.elapsed().min(t.timeout);
        Sample {
            generation: 0,
            target,
            at,
            latency,
            outcome,
            counted: true,
        }
    }

    async fn exchange(&self, req: &Request) -> Result<(u16, Vec<u8>), Outcome> {
        let mut resp = self
            .client
            .request(req.method.clone(), req.url.clone())
            .headers(req.headers.clone())
            .send()
            .await
            .map_err(|e| Outcome::Failure {
                reason: if is_tls(&e) {
                    Reason::Tls
                } else {
                    Reason::Connect
                },
                detail: describe(&e),
            })?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_BODY - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if body.len() >= MAX_BODY {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(Outcome::Failure {
                        reason: Reason::Body,
                        detail: format!("reading body failed: {}", describe(&e)),
                    });
                }
            }
        }
        Ok((status, body))
    }
}

/// The handshake failed, as opposed to the connection: rustls's error is
/// somewhere in the cause chain, often nested in `io::Error`s (whose
/// `source()` skips the error they wrap, hence `get_ref`).
fn is_tls(e: &reqwest::Error) -> bool {
    fn within(e: &(dyn std::error::Error + 'static)) -> bool {
        e.is::<rustls::Error>()
            || e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| within(inner))
            || e.source().is_some_and(within)
    }
    within(e)
}

/// reqwest's top-level message is generic ("error sending request"); the
/// cause chain says what happened (connection refused, reset, ...). The URL
/// is left out: it may carry credentials.
fn describe(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    match parts.last() {
        Some(root) => root.clone(),
        None => "request failed".to_string(),
    }
}
