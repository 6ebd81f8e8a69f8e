//! Connections that carry no request are closed within their deadline,
//! whatever protocol they pretend to speak; over a cap an idle connection
//! gives way to a newcomer, and busy ones make the server refuse it.
//! Every loopback address is 127.0.0.0/8, so each client here picks its
//! own source address and is a peer of its own.

use super::{TOKEN, setup};
use crate::common::{Daemon, metric};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, sleep, timeout};

/// The HTTP/2 connection preface, and an empty SETTINGS frame after it.
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const H2_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// The server's deadlines (`src/server/conn.rs`).
const FIRST_REQUEST: Duration = Duration::from_secs(5);
const IDLE: Duration = Duration::from_secs(10);

pub async fn connect_from(addr: SocketAddr, from: Ipv4Addr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from.into(), 0)).unwrap();
    socket
        .connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect from {from}: {e}"))
}

/// Read and drop what the server sends until it closes the connection;
/// how long that took from `since`, or None if still open after `within`.
pub async fn closed(stream: &mut TcpStream, since: Instant, within: Duration) -> Option<Duration> {
    let mut buf = [0u8; 1024];
    let until_closed = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return since.elapsed(),
                Ok(_) => {}
            }
        }
    };
    timeout(within, until_closed).await.ok()
}

/// A whole GET on a connection of its own from `from`: the answer's bytes.
async fn get_from(addr: SocketAddr, from: Ipv4Addr, path: &str) -> String {
    let mut s = connect_from(addr, from).await;
    let request = format!("GET {path} HTTP/1.1\r\nHost: backstop\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = timeout(Duration::from_secs(5), s.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn addr(s: &crate::common::Daemon) -> SocketAddr {
    s.running.addr
}

async fn metrics(s: &crate::common::Daemon) -> String {
    crate::common::get(&s.admin("/metrics")).await.1
}

#[tokio::test]
async fn connections_without_a_request_are_closed_within_the_deadline() {
    let s = Daemon::with_app(
        r#"
service: checkout
targets: [{ name: health, url: "{app}/health", interval: 200ms }]
"#,
    )
    .await;
    let admin = addr(&s);
    let opened = Instant::now();
    let mut watchers = tokio::task::JoinSet::new();
    // Three of each kind, each from its own address (no cap interferes).
    for i in 0..12u8 {
        let mut stream = connect_from(admin, Ipv4Addr::new(127, 0, 2, i + 1)).await;
        let kind =
            ["silent", "h2 preface", "h2 preface+settings", "h1 trickle"][usize::from(i % 4)];
        watchers.spawn(async move {
            match kind {
                "h2 preface" => stream.write_all(H2_PREFACE).await.unwrap(),
                "h2 preface+settings" => {
                    stream.write_all(H2_PREFACE).await.unwrap();
                    stream.write_all(H2_SETTINGS).await.unwrap();
                }
                "h1 trickle" => {
                    // Bytes keep coming, a request head never completes.
                    stream
                        .write_all(b"GET /status HTTP/1.1\r\nHost: b\r\nX-A: ")
                        .await
                        .unwrap();
                    let mut buf = [0u8; 64];
                    loop {
                        tokio::select! {
                            n = stream.read(&mut buf) => if !matches!(n, Ok(n) if n > 0) {
                                return (kind, Some(opened.elapsed()));
                            },
                            _ = sleep(Duration::from_millis(500)) => {
                                if stream.write_all(b"a").await.is_err() {
                                    return (kind, Some(opened.elapsed()));
                                }
                                if opened.elapsed() > FIRST_REQUEST * 3 {
                                    return (kind, None);
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
            (kind, closed(&mut stream, opened, FIRST_REQUEST * 3).await)
        });
    }
    // A keep-alive connection that made one request, then falls silent.
    let mut kept = connect_from(admin, Ipv4Addr::new(127, 0, 2, 100)).await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0u8; 1024];
    let n = kept.read(&mut answer).await.unwrap();
    let answered = Instant::now();
    // And an HTTP/2 one (the client keeps it in its pool).
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let resp = h2.get(s.admin("/healthz")).send().await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    assert!(
        String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );

    let mut report = Vec::new();
    while let Some(done) = watchers.join_next().await {
        let (kind, took) = done.unwrap();
        report.push(format!("{kind}: {took:?}"));
        let took = took.unwrap_or_else(|| panic!("a {kind} connection is still open after 15 s"));
        assert!(
            took >= FIRST_REQUEST - Duration::from_millis(100)
                && took <= FIRST_REQUEST + Duration::from_millis(2500),
            "a {kind} connection closed after {took:?}"
        );
    }
    let idle = closed(&mut kept, answered, IDLE * 2)
        .await
        .expect("the idle keep-alive connection is closed");
    report.push(format!("keep-alive, idle after one answer: {idle:?}"));
    println!("closed by the server after:\n  {}", report.join("\n  "));
    assert!(
        idle >= IDLE - Duration::from_millis(100) && idle <= IDLE + Duration::from_millis(2500),
        "the idle keep-alive connection closed after {idle:?}"
    );
    // The HTTP/2 connection went idle a moment after the HTTP/1 one.
    let mut text = metrics(&s).await;
    let idle_closed = "backstop_admin_connections_closed_total{reason=\"idle\"}";
    let h2_due = answered + IDLE + Duration::from_millis(2500);
    while metric(&text, idle_closed) < Some(2.0) && Instant::now() < h2_due {
        sleep(Duration::from_millis(100)).await;
        text = metrics(&s).await;
    }
    let closed_for = |why: &str| {
        metric(
            &text,
            &format!("backstop_admin_connections_closed_total{{reason=\"{why}\"}}"),
        )
    };
    assert_eq!(closed_for("no_request"), Some(12.0), "{text}");
    assert_eq!(closed_for("idle"), Some(2.0), "HTTP/1 and HTTP/2: {text}");
    drop(h2);
    s.shutdown().await;
}

/// A request in flight for as long as the test wants: an authenticated
/// pause whose body never arrives.
async fn busy_from(admin: SocketAddr, from: Ipv4Addr) -> TcpStream {
    let mut s = connect_from(admin, from).await;
    let head = format!(
        "POST /api/v1/pause HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s
}

#[tokio::test]
async fn over_a_cap_idle_connections_give_way_and_busy_ones_refuse_newcomers() {
    let a = setup(true).await;
    let admin = addr(&a.s);
    let ip = |c: u8, d: u8| Ipv4Addr::new(127, 0, c, d);
    let open = |text: &str| metric(text, "backstop_admin_connections");

    // 20 idle connections from one address: the oldest four give way.
    let opened = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(connect_from(admin, ip(3, 1)).await);
    }
    let mut gone = 0;
    for s in &mut idle[..4] {
        gone += usize::from(closed(s, opened, Duration::from_secs(2)).await.is_some());
    }
    assert_eq!(gone, 4, "the four oldest idle connections were not closed");
    // A fresh connection from the same address still gets its answer.
    let answer = get_from(admin, ip(3, 1), "/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");

    // 16 busy connections from one address: a 17th is refused at once,
    // with no answer; another address is served.
    let mut busy = Vec::new();
    for _ in 0..16 {
        busy.push(busy_from(admin, ip(3, 2)).await);
    }
    sleep(Duration::from_millis(300)).await;
    let mut refused = connect_from(admin, ip(3, 2)).await;
    let _ = refused
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n")
        .await;
    let mut got = Vec::new();
    let read = timeout(Duration::from_secs(2), refused.read_to_end(&mut got)).await;
    assert!(
        read.is_ok(),
        "the 17th busy peer's connection was kept open"
    );
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    let answer = get_from(admin, ip(3, 3), "/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");

    // Fill the total cap (64) with busy connections: the idle ones of
    // 127.0.3.1 give way first, then newcomers are refused.
    for d in 4..7 {
        for _ in 0..16 {
            busy.push(busy_from(admin, ip(3, d)).await);
        }
    }
    sleep(Duration::from_millis(300)).await;
    let mut still_idle = 0;
    for s in &mut idle[4..] {
        still_idle += usize::from(
            closed(s, Instant::now(), Duration::from_millis(200))
                .await
                .is_none(),
        );
    }
    assert_eq!(still_idle, 0, "busy connections wait while idle ones stay");
    let answer = get_from(admin, ip(3, 7), "/healthz").await;
    assert_eq!(
        answer, "",
        "a newcomer beyond 64 busy connections was served"
    );

    // Even a scrape is refused now; free a place for it.
    busy.pop();
    sleep(Duration::from_millis(200)).await;
    let text = metrics(&a.s).await;
    assert_eq!(open(&text), Some(64.0), "63 busy and the scrape: {text}");
    let refused = |why: &str| {
        metric(
            &text,
            &format!("backstop_admin_connections_rejected_total{{reason=\"{why}\"}}"),
        )
    };
    assert_eq!(refused("per_peer"), Some(1.0), "{text}");
    assert_eq!(refused("total"), Some(1.0), "{text}");
    let evicted = "backstop_admin_connections_closed_total{reason=\"evicted\"}";
    assert_eq!(metric(&text, evicted), Some(4.0 + 1.0 + 15.0), "{text}");
    drop(busy);
    drop(idle);
    assert!(a.s.app().rollbacks().is_empty());
    a.s.shutdown().await;
}
