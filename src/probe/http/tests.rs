//! Probes against small HTTP servers on loopback: which redirects are
//! followed, where configured headers go, and bodies past the cap. Two
//! servers on 127.0.0.1 with different ports are different origins.

use super::*;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The secret a target sends; it must reach its own origin only.
const KEY: &str = "s3cret-api-key";

/// A one-request-per-connection HTTP server that records each request's
/// head and answers what `answer` says for its path.
struct Server {
    base: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Server {
    async fn start(answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (answer, log) = (Arc::new(answer), seen.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let (answer, log) = (answer.clone(), log.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.ends_with(b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                    log.lock().unwrap().push(head);
                    let _ = socket.write_all(&answer(&path)).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Server { base, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Request heads received, lower-cased (header names are case-insensitive).
    fn seen(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect()
    }
}

fn response(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn redirect(to: &str) -> Vec<u8> {
    response("302 Found", &format!("Location: {to}\r\n"), b"")
}

fn ok_json() -> Vec<u8> {
    response(
        "200 OK",
        "Content-Type: application/json\r\n",
        br#"{"status":"ok"}"#,
    )
}

/// One probe of a target at `url` sending `KEY` from a `header_files`
/// file, with `extra` target fields.
async fn probe(url: &str, extra: &str) -> Outcome {
    let mut key = tempfile::NamedTempFile::new().unwrap();
    writeln!(key, "{KEY}").unwrap();
    let config = crate::config::for_tests(&format!(
        "service: s\ntargets:\n  - name: t\n    url: \"{url}\"\n    interval: 5s\n    \
         timeout: 3s\n    header_files: {{ X-Api-Key: \"{}\" }}\n{extra}",
        key.path().display()
    ));
    let prober = Prober::new(&config.tls).unwrap();
    let target = &config.targets[0];
    let request = Request::new(target).unwrap();
    prober.probe(0, target, &request).await.outcome
}

fn failure(outcome: Outcome) -> (Reason, String) {
    match outcome {
        Outcome::Failure { reason, detail } => (reason, detail),
        Outcome::Success { status } => panic!("expected a failure, got success {status}"),
    }
}

/// The issue's case: a redirect to another host took the `X-Api-Key`
/// along, and the probe judged the other host's answer.
#[tokio::test]
async fn by_default_a_redirect_is_the_answer_and_goes_nowhere() {
    let other = Server::start(|_| ok_json()).await;
    let elsewhere = other.url("/health").replace("http://", "http://user:pw@") + "?token=t0k";
    let app = Server::start(move |_| redirect(&elsewhere)).await;
    let (reason, detail) = failure(probe(&app.url("/health"), "").await);
    assert_eq!(reason, Reason::Status, "{detail}");
    assert_eq!(
        detail,
        format!(
            "status 302, expected 2xx; redirect to {}… not followed (follow_redirects is none)",
            other.url("/health")
        )
    );
    assert!(other.seen().is_empty(), "followed: {:?}", other.seen());
    assert!(app.seen()[0].contains(&format!("x-api-key: {KEY}")));
}

/// A 3xx the target expects is a success.
#[tokio::test]
async fn an_expected_redirect_passes() {
    let app = Server::start(|_| redirect("/login")).await;
    let outcome = probe(&app.url("/"), "    expect: { status: [302] }\n").await;
    assert_eq!(outcome, Outcome::Success { status: 302 });
}

#[tokio::test]
async fn same_origin_follows_hops_within_the_origin() {
    let app = Server::start(|path| match path {
        "/start" => redirect("/middle"),
        "/middle" => redirect("/health"),
        _ => ok_json(),
    })
    .await;
    let outcome = probe(
        &app.url("/start"),
        "    follow_redirects: same-origin\n    expect: { json: { status: ok } }\n",
    )
    .await;
    assert_eq!(outcome, Outcome::Success { status: 200 });
    let seen = app.seen();
    assert_eq!(seen.len(), 3, "{seen:#?}");
    // Configured headers go along within the origin.
    assert!(
        seen.iter()
            .all(|h| h.contains(&format!("x-api-key: {KEY}")))
    );
}

/// A chain that leaves the origin midway stops there: the other host never
/// sees the request, let alone the key.
#[tokio::test]
async fn same_origin_refuses_a_hop_to_another_origin() {
    let other = Server::start(|_| ok_json()).await;
    let elsewhere = other.url("/health");
    let app = Server::start(move |path| match path {
        "/start" => redirect("/middle"),
        _ => redirect(&elsewhere),
    })
    .await;
    let (reason, detail) =
        failure(probe(&app.url("/start"), "    follow_redirects: same-origin\n").await);
    assert_eq!(reason, Reason::Status, "{detail}");
    assert_eq!(
        detail,
        format!(
            "status 302, expected 2xx; redirect to {} not followed (another origin than {}, \
             and follow_redirects is same-origin)",
            other.url("/health"),
            app.base
        )
    );
    assert_eq!(app.seen().len(), 2);
    assert!(other.seen().is_empty(), "followed: {:?}", other.seen());
}

#[tokio::test]
async fn same_origin_stops_a_loop() {
    let app = Server::start(|_| redirect("/again")).await;
    let (reason, detail) =
        failure(probe(&app.url("/"), "    follow_redirects: same-origin\n").await);
    assert_eq!(reason, Reason::Status);
    assert!(detail.ends_with("(more than 10 redirects)"), "{detail}");
    assert_eq!(app.seen().len(), MAX_REDIRECTS + 1);
}

/// Valid JSON just over the cap: said as a cut, not as "not JSON: EOF".
#[tokio::test]
async fn a_body_over_the_cap_is_reported_as_truncated() {
    let padding = "x".repeat(MAX_BODY);
    let body = format!(r#"{{"status":"ok","padding":"{padding}"}}"#);
    let app = Server::start(move |_| {
        response(
            "200 OK",
            "Content-Type: application/json\r\n",
            body.as_bytes(),
        )
    })
    .await;
    let (reason, detail) =
        failure(probe(&app.url("/"), "    expect: { json: { status: ok } }\n").await);
    assert_eq!(
        (reason, detail.as_str()),
        (Reason::Truncated, "body cut at 1 MiB; JSON not checked")
    );
    assert_eq!(reason.metric_label(), "truncated");
    // Status only: the body is not needed, and its length is no failure.
    assert_eq!(
        probe(&app.url("/"), "").await,
        Outcome::Success { status: 200 }
    );
}

/// Exactly at the cap is whole.
#[tokio::test]
async fn a_body_exactly_at_the_cap_is_whole() {
    let body = format!(r#"{{"status":"ok","p":"{}"}}"#, "x".repeat(MAX_BODY - 22));
    assert_eq!(body.len(), MAX_BODY);
    let app = Server::start(move |_| response("200 OK", "", body.as_bytes())).await;
    let outcome = probe(&app.url("/"), "    expect: { json: { status: ok } }\n").await;
    assert_eq!(outcome, Outcome::Success { status: 200 });
}

/// One scrape of a `scrape: true` target at `url`.
async fn scrape(url: &str) -> Sample {
    let config = crate::config::for_tests(&format!(
        "service: s\ntargets:\n  - name: m\n    url: \"{url}\"\n    timeout: 2s\n    scrape: true\n"
    ));
    let prober = Prober::new(&config.tls).unwrap();
    let target = &config.targets[0];
    let request = Request::new(target).unwrap();
    prober.probe(0, target, &request).await
}

#[tokio::test]
async fn a_scrape_asks_for_openmetrics_first_and_reads_what_comes_back() {
    let om = Server::start(|_| {
        response(
            "200 OK",
            "Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n",
            b"# TYPE a counter\na_total 1\n# EOF\n",
        )
    })
    .await;
    let s = scrape(&om.url("/metrics")).await;
    assert!(s.outcome.is_success(), "{:?}", s.outcome);
    let scraped = s.scraped.expect("the body is passed on");
    assert_eq!(scraped.format, Format::OpenMetrics);
    assert!(
        om.seen()[0].contains(&format!("accept: {}", SCRAPE_ACCEPT.to_ascii_lowercase())),
        "{:?}",
        om.seen()
    );
    // Text 0.0.4 (or no Content-Type at all) is read as text.
    let text = Server::start(|_| response("200 OK", "", b"a_total 1\n")).await;
    let s = scrape(&text.url("/metrics")).await;
    assert_eq!(s.scraped.map(|b| b.format), Some(Format::Text));
}

#[tokio::test]
async fn a_body_that_does_not_parse_fails_with_its_line() {
    // OpenMetrics without # EOF; then text that is not UTF-8.
    let om = Server::start(|_| {
        response(
            "200 OK",
            "Content-Type: application/openmetrics-text; version=1.0.0\r\n",
            b"# TYPE a counter\na_total 1\n",
        )
    })
    .await;
    let s = scrape(&om.url("/metrics")).await;
    assert!(s.scraped.is_none());
    let (reason, detail) = failure(s.outcome);
    assert_eq!(reason, Reason::Unparsable);
    assert!(
        detail.starts_with("the OpenMetrics body does not parse: line "),
        "{detail}"
    );
    let bad = Server::start(|_| response("200 OK", "", b"a_total 1\nb_total\xff 2\n")).await;
    let (reason, detail) = failure(scrape(&bad.url("/metrics")).await.outcome);
    assert_eq!(reason, Reason::Unparsable);
    assert_eq!(
        detail,
        "the Prometheus text body does not parse: line 2, column 8: byte 0xff is not UTF-8; \
         expositions must be UTF-8 throughout"
    );
    assert_eq!(Reason::Unparsable.metric_label(), "unparsable");
}

#[tokio::test]
async fn a_scrape_body_over_its_cap_fails_and_is_not_kept() {
    let big = vec![b'#'; MAX_SCRAPE_BODY + 1];
    let app = Server::start(move |_| response("200 OK", "", &big)).await;
    let s = scrape(&app.url("/metrics")).await;
    assert!(s.scraped.is_none());
    let (reason, detail) = failure(s.outcome);
    assert_eq!(reason, Reason::Truncated);
    assert_eq!(
        detail,
        "the metrics body is longer than 10 MiB, the most a scrape reads"
    );
}

#[tokio::test]
async fn a_scrape_with_an_unexpected_status_fails_on_the_status() {
    let app = Server::start(|_| response("503 Service Unavailable", "", b"a_total 1\n")).await;
    let s = scrape(&app.url("/metrics")).await;
    assert!(s.scraped.is_none());
    assert_eq!(failure(s.outcome).0, Reason::Status);
}
