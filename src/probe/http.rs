//! The HTTP side of a probe: one shared client per redirect policy
//! (connection reuse across probes), a request built once per target, the
//! whole exchange bounded by the target's timeout, and the body read up to
//! a cap.
//!
//! Redirects: by default none is followed, so a 3xx is the answer and is
//! judged by `expect.status`. reqwest drops `Authorization` and cookies on a
//! hop to another host, but not custom headers (an `X-Api-Key` from
//! `header_files`), and the probe would then judge the other host's answer;
//! so `same-origin` follows only hops within the scheme, host and port of
//! the target's URL, and stops at the first hop elsewhere.

use super::expect::MAX_BODY;
use super::{Body, Outcome, Reason, Sample, Scraped, check};
use crate::config::{Redirects, Target};
use crate::tls::ClientError;
use crate::traffic::{Format, parse};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::redirect;
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;

/// What a scrape asks for, as Prometheus does: OpenMetrics 1.0 first, then
/// text 0.0.4, then anything (read as text 0.0.4, as Prometheus does).
pub const SCRAPE_ACCEPT: &str =
    "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// A scrape's body is read up to this; a longer one fails the scrape with
/// reason `truncated`, so an app that floods its /metrics costs at most this
/// much memory.
pub const MAX_SCRAPE_BODY: usize = 10 << 20;

/// Most hops a `same-origin` probe follows (reqwest's default limit).
const MAX_REDIRECTS: usize = 10;

/// Longest redirect target shown in a probe's detail.
const MAX_SHOWN_LOCATION: usize = 200;

/// Runs probes; cheap to clone (the connection pools are shared).
#[derive(Clone)]
pub struct Prober {
    /// Follows no redirect.
    direct: reqwest::Client,
    /// Follows redirects within the first request's origin only. A second
    /// client because reqwest's policy is per client and sees only URLs,
    /// not which target asked.
    same_origin: reqwest::Client,
}

/// What a target's probe needs, prepared once so each probe only clones it.
#[derive(Clone)]
pub struct Request {
    method: reqwest::Method,
    url: reqwest::Url,
    headers: HeaderMap,
    redirects: Redirects,
    /// The target is scraped: the body is a metrics exposition.
    scrape: bool,
}

impl Request {
    /// Validation already checked method and header names/values, so these
    /// conversions only fail on a bug; the error says which target.
    pub fn new(target: &Target) -> Result<Request, ClientError> {
        let field = |what: &str| format!("targets {:?}.{what}", target.name);
        let method = reqwest::Method::from_bytes(target.method.as_bytes())
            .map_err(|e| ClientError::invalid(field("method"), e))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &target.headers {
            let header = || field(&format!("headers.{name}"));
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| ClientError::invalid(header(), e))?;
            let mut value = HeaderValue::from_str(value.expose())
                .map_err(|_| ClientError::invalid(header(), "not a valid header value"))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if target.scrape && !headers.contains_key(ACCEPT) {
            headers.insert(ACCEPT, HeaderValue::from_static(SCRAPE_ACCEPT));
        }
        Ok(Request {
            method,
            url: target.url.clone(),
            headers,
            redirects: target.follow_redirects,
            scrape: target.scrape,
        })
    }
}

/// What was read of an answer.
struct Answer {
    status: u16,
    body: Vec<u8>,
    truncated: bool,
    /// For a 3xx: where it pointed and why it was not followed.
    redirect: Option<String>,
    content_type: Option<String>,
}

/// Same scheme, host and port (the port a scheme implies counts as given).
fn same_origin(a: &reqwest::Url, b: &reqwest::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Follow a hop only within the origin the chain started at; stop (the
/// 3xx becomes the answer) at a hop elsewhere or past the limit.
fn same_origin_policy() -> redirect::Policy {
    redirect::Policy::custom(|attempt| {
        let within = attempt
            .previous()
            .first()
            .is_some_and(|first| same_origin(first, attempt.url()));
        if within && attempt.previous().len() <= MAX_REDIRECTS {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

impl Prober {
    pub fn new(tls: &crate::config::Tls) -> Result<Prober, ClientError> {
        let client = |policy: redirect::Policy| {
            let builder = reqwest::Client::builder()
                .user_agent(concat!("backstop/", env!("CARGO_PKG_VERSION")))
                // The app is on loopback next to us; a proxy from the
                // environment would measure the proxy, not the app.
                .no_proxy()
                .redirect(policy)
                .pool_idle_timeout(Duration::from_secs(90))
                .tcp_nodelay(true);
            crate::tls::client(builder, tls)
        };
        Ok(Prober {
            direct: client(redirect::Policy::none())?,
            same_origin: client(same_origin_policy())?,
        })
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
        let mut scraped = None;
        let outcome = match tokio::time::timeout(t.timeout, self.exchange(req)).await {
            Err(_) => Outcome::Failure {
                reason: Reason::Timeout,
                detail: format!("no complete answer within {:?}", t.timeout),
            },
            Ok(Err(failure)) => failure,
            Ok(Ok(answer)) if req.scrape => {
                let (outcome, body) = Prober::scraped(t, at, answer);
                scraped = body;
                outcome
            }
            Ok(Ok(answer)) => {
                let body = Body {
                    bytes: &answer.body,
                    truncated: answer.truncated,
                };
                match check(&t.expect, answer.status, body, at.elapsed()) {
                    Outcome::Failure {
                        reason: Reason::Status,
                        detail,
                    } if answer.redirect.is_some() => Outcome::Failure {
                        reason: Reason::Status,
                        detail: format!("{detail}; {}", answer.redirect.unwrap_or_default()),
                    },
                    outcome => outcome,
                }
            }
        };
        let latency = at.elapsed().min(t.timeout);
        Sample {
            generation: 0,
            target,
            at,
            latency,
            outcome,
            counted: true,
            scraped,
        }
    }

    /// A scrape target's answer: good when its status (and latency) are
    /// as expected and its body parses in the format its Content-Type names.
    fn scraped(t: &Target, at: Instant, answer: Answer) -> (Outcome, Option<Scraped>) {
        if answer.truncated {
            let outcome = Outcome::Failure {
                reason: Reason::Truncated,
                detail: format!(
                    "the metrics body is longer than {} MiB, the most a scrape reads",
                    MAX_SCRAPE_BODY >> 20
                ),
            };
            return (outcome, None);
        }
        let body = Body {
            bytes: &[],
            truncated: false,
        };
        let outcome = check(&t.expect, answer.status, body, at.elapsed());
        if !outcome.is_success() {
            return (outcome, None);
        }
        let format = Format::from_content_type(answer.content_type.as_deref().unwrap_or(""));
        if let Err(e) = parse(&answer.body, format) {
            let name = match format {
                Format::OpenMetrics => "OpenMetrics",
                Format::Text => "Prometheus text",
            };
            let outcome = Outcome::Failure {
                reason: Reason::Unparsable,
                detail: format!("the {name} body does not parse: {e}"),
            };
            return (outcome, None);
        }
        let scraped = Scraped {
            format,
            body: answer.body.into(),
        };
        (outcome, Some(scraped))
    }

    async fn exchange(&self, req: &Request) -> Result<Answer, Outcome> {
        let client = match req.redirects {
            Redirects::None => &self.direct,
            Redirects::SameOrigin => &self.same_origin,
        };
        let mut resp = client
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
        let redirect = resp
            .status()
            .is_redirection()
            .then(|| not_followed(req, &resp));
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let cap = if req.scrape {
            MAX_SCRAPE_BODY
        } else {
            MAX_BODY
        };
        let mut body = Vec::new();
        let mut truncated = false;
        // Read up to the cap and not further: what is past it is not
        // needed, and an endless body must not hold the probe.
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = cap - body.len();
                    if chunk.len() > room {
                        body.extend_from_slice(&chunk[..room]);
                        truncated = true;
                        break;
                    }
                    body.extend_from_slice(&chunk);
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
        Ok(Answer {
            status,
            body,
            truncated,
            redirect,
            content_type,
        })
    }
}

/// Why the 3xx `resp` is the answer: where it pointed (without
/// credentials, query or fragment, which may carry tokens) and why that
/// was not followed.
fn not_followed(req: &Request, resp: &reqwest::Response) -> String {
    let location = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| resp.url().join(v.trim()).ok());
    let Some(location) = location else {
        return "no usable Location header".to_owned();
    };
    let mut bare = crate::redact::url(&location);
    bare.set_query(None);
    bare.set_fragment(None);
    let mut shown: String = bare.as_str().chars().take(MAX_SHOWN_LOCATION).collect();
    if shown.len() < bare.as_str().len() || location.query().is_some() {
        shown.push('…');
    }
    let why = match req.redirects {
        Redirects::None => "follow_redirects is none".to_owned(),
        Redirects::SameOrigin if !same_origin(&req.url, &location) => format!(
            "another origin than {}, and follow_redirects is same-origin",
            req.url.origin().ascii_serialization()
        ),
        Redirects::SameOrigin => format!("more than {MAX_REDIRECTS} redirects"),
    };
    format!("redirect to {shown} not followed ({why})")
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

#[cfg(test)]
mod tests;
