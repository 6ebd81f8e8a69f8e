//! Retries and capped answers against loopback servers, in paused time where timing matters.

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

/// How the test server answers after its status line and headers.
#[derive(Clone, Copy)]
enum Body {
    Short(&'static str),
    /// 64 KiB chunks, as fast as the client reads, forever.
    Endless,
    /// One byte every 50 ms, forever.
    Trickle,
    /// Promises 100 bytes, sends 10, closes.
    BrokenOff,
}

/// A raw-TCP server answering every request with `status` and `body`.
async fn server(status: u16, body: Body) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let line = format!("HTTP/1.1 {status} X\r\n");
                let head = match body {
                    Body::Short(b) => format!("{line}Content-Length: {}\r\n\r\n{b}", b.len()),
                    Body::BrokenOff => format!("{line}Content-Length: 100\r\n\r\n0123456789"),
                    Body::Endless | Body::Trickle => format!("{line}Connection: close\r\n\r\n"),
                };
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                match body {
                    Body::Endless => {
                        let chunk = vec![b'x'; 64 * 1024];
                        while s.write_all(&chunk).await.is_ok() {}
                    }
                    Body::Trickle => loop {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        if s.write_all(b"x").await.is_err() {
                            return;
                        }
                    },
                    Body::Short(_) => {
                        // Keep the connection for the client to reuse.
                        while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                    }
                    Body::BrokenOff => {}
                }
            });
        }
    });
    url
}

async fn answer(status: u16, body: Body) -> Answer {
    crate::init_tls();
    let url = server(status, body).await;
    let client = client(Duration::from_millis(500), &Default::default()).unwrap();
    let resp = client.get(url).send().await.unwrap();
    read_capped(resp, ANSWER_CAP).await
}

#[tokio::test]
async fn a_short_answer_is_read_whole() {
    let a = answer(202, Body::Short(r#"{"status":"success"}"#)).await;
    assert_eq!(a.status, 202);
    assert_eq!(a.body, br#"{"status":"success"}"#);
    assert_eq!(a.end, BodyEnd::Whole);
    assert_eq!(a.note(), None);
}

#[tokio::test]
async fn an_endless_answer_is_cut_at_the_cap_at_once() {
    let started = std::time::Instant::now();
    let a = answer(200, Body::Endless).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.end, BodyEnd::Cut(ANSWER_CAP));
    assert_eq!(a.body.len(), ANSWER_CAP);
    assert!(a.note().unwrap().contains("cut"), "{:?}", a.note());
    // Cut, not read until the 500 ms timeout.
    assert!(started.elapsed() < Duration::from_millis(400));
}

#[tokio::test]
async fn an_answer_that_trickles_on_or_breaks_off_is_unreadable() {
    let a = answer(200, Body::Trickle).await;
    assert_eq!(a.end, BodyEnd::Unreadable("timed out".into()), "{a:?}");
    assert!(a.body.len() < 20, "{} bytes", a.body.len());
    let a = answer(200, Body::BrokenOff).await;
    assert!(matches!(a.end, BodyEnd::Unreadable(_)), "{a:?}");
    assert_eq!(a.body, b"0123456789");
}

#[tokio::test]
async fn the_status_decides_and_the_error_names_a_cut_answer() {
    crate::init_tls();
    let fast = Backoff {
        attempts: 2,
        base: Duration::from_millis(1),
        max: Duration::from_millis(1),
    };
    let client = client(Duration::from_millis(500), &Default::default()).unwrap();
    // A 2xx was taken, whatever its body does next: done, and not sent again.
    let url = server(200, Body::Endless).await;
    let mut attempts = Vec::new();
    let a = send(fast, || client.post(&url), |o| attempts.push(o))
        .await
        .unwrap();
    assert_eq!((a.status, &a.end), (200, &BodyEnd::Cut(ANSWER_CAP)));
    assert_eq!(attempts, ["ok"]);
    // A 503 whose body never ends is retried, and says so.
    let url = server(503, Body::Endless).await;
    match send(fast, || client.post(&url), |_| {}).await {
        Err(RetryError::Exhausted { attempts: 2, last }) => {
            assert!(last.starts_with("HTTP 503: xxx"), "{last}");
            assert!(
                last.ends_with("was cut there, the rest not read)"),
                "{last}"
            );
        }
        other => panic!("{other:?}"),
    }
    let url = server(400, Body::Trickle).await;
    match send(fast, || client.post(&url), |_| {}).await {
        Err(RetryError::Rejected(e)) => assert!(e.contains("unreadable: timed out"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn an_outdated_call_is_not_retried() {
    let calls = AtomicU32::new(0);
    let newer = std::cell::Cell::new(false);
    let out: Result<(), _> = run_while(
        policy(),
        || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Attempt::Retry {
                error: "timed out".into(),
                after: None,
            }
        },
        |_| newer.set(true),
        || !newer.get(),
    )
    .await;
    assert_eq!(
        out,
        Err(RetryError::Superseded {
            attempts: 1,
            last: "timed out".into()
        })
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn status_classes() {
    assert!(matches!(
        classify_status(204, None, (), String::new),
        Attempt::Done(())
    ));
    assert!(matches!(
        classify_status(429, None, (), String::new),
        Attempt::Retry { .. }
    ));
    assert!(matches!(
        classify_status(502, None, (), String::new),
        Attempt::Retry { .. }
    ));
    assert!(matches!(
        classify_status(404, None, (), String::new),
        Attempt::Reject(_)
    ));
    assert!(matches!(
        classify_status(409, None, (), String::new),
        Attempt::Reject(_)
    ));
}
