//! Misbehaving neighbours for the fault matrix (`faults`):
//!
//! - [`Port`]: an accept loop on a port of its own that can go down (new
//!   connections refused, open ones cut) and come back on the same port
//!   (held meanwhile, so nothing else takes it); the fakes build on it to
//!   be "unreachable" for a while.
//! - [`FaultyApp`]: a probed app written on raw TCP, so it can do what no
//!   well-behaved HTTP server does: hang, reset, answer garbage or a
//!   truncated response.
//! - [`Fault`] / [`Faults`]: what an HTTP fake answers instead of its normal
//!   answer, one planned fault per request.
//! - [`Panics`]: counts panics on the test's own thread (every task of a
//!   `#[tokio::test]` runs there), so a test can assert the daemon never
//!   panicked.

use super::ports::Reserved;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

type Serve = Arc<dyn Fn(TcpStream) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Serves every connection on one port with `serve`, until taken down.
pub struct Port {
    port: Reserved,
    serve: Serve,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Port {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

impl Port {
    /// Listen on 127.0.0.1 (a port the OS picks).
    pub async fn start<F, Fut>(serve: F) -> Port
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let serve: Serve = Arc::new(move |s| Box::pin(serve(s)));
        let port = Port {
            port: Reserved::new(),
            serve,
            task: Mutex::new(None),
        };
        port.listen(port.port.listen());
        port
    }

    pub fn addr(&self) -> SocketAddr {
        self.port.addr()
    }

    fn listen(&self, listener: TcpListener) {
        let serve = self.serve.clone();
        // The connections live in the accept loop's JoinSet: aborting the
        // loop cuts every one of them.
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(serve(stream));
                while connections.try_join_next().is_some() {}
            }
        });
        *lock(&self.task) = Some(task);
    }

    /// Close the port: connecting is refused, open connections are cut.
    pub async fn down(&self) {
        let task = lock(&self.task).take();
        if let Some(task) = task {
            task.abort();
            // Wait until the listener is really closed.
            let _ = task.await;
        }
    }

    /// Listen again on the same port.
    pub async fn up(&self) {
        if lock(&self.task).is_some() {
            return;
        }
        self.listen(self.port.listen());
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How the faulty app answers a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// 200 `{"status":"ok"}`.
    Healthy,
    /// Reads the request, never answers (the connection stays open).
    Hang,
    /// Reads the request, then resets the connection (SO_LINGER 0).
    Reset,
    /// Answers bytes that are not HTTP, then closes.
    NotHttp,
    /// Answers a status line and headers promising a longer body than it
    /// sends, then closes.
    Truncated,
    /// The healthy answer, this much later.
    Slow(Duration),
    /// 302 to the same path on this other port of 127.0.0.1 (another origin).
    RedirectTo(u16),
    /// 200 with valid JSON `{"status":"ok",...}` just over the 1 MiB a probe reads.
    Oversized,
}

const HEALTHY: &str = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\nConnection: close\r\n\r\n{\"status\":\"ok\"}";

/// A probed app on raw TCP whose behaviour the test switches; one request
/// per connection (it always answers `Connection: close`).
pub struct FaultyApp {
    port: Port,
    mode: Arc<Mutex<Mode>>,
}

impl FaultyApp {
    pub async fn start() -> FaultyApp {
        let mode = Arc::new(Mutex::new(Mode::Healthy));
        let m = mode.clone();
        let port = Port::start(move |s| answer(s, m.clone())).await;
        FaultyApp { port, mode }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.port.addr())
    }

    pub fn set(&self, mode: Mode) {
        *lock(&self.mode) = mode;
    }

    /// Nothing listens on the app's port (connections are refused).
    pub async fn refuse(&self) {
        self.port.down().await;
    }

    /// Listen again, answering as `set` says.
    pub async fn accept(&self) {
        self.port.up().await;
    }
}

async fn answer(mut s: TcpStream, mode: Arc<Mutex<Mode>>) {
    // Read the request head; probes send no body.
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let mode = *lock(&mode);
    match mode {
        Mode::Healthy => {
            let _ = s.write_all(HEALTHY.as_bytes()).await;
        }
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            let _ = s.write_all(HEALTHY.as_bytes()).await;
        }
        Mode::Hang => {
            // Until the client gives up and closes.
            while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
            return;
        }
        Mode::Reset => {
            let _ = s.set_zero_linger();
            return;
        }
        Mode::NotHttp => {
            let _ = s
                .write_all(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02garbage")
                .await;
        }
        Mode::RedirectTo(port) => {
            let path = String::from_utf8_lossy(&head)
                .split(' ')
                .nth(1)
                .unwrap_or("/")
                .to_owned();
            let answer = format!(
                "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = s.write_all(answer.as_bytes()).await;
        }
        Mode::Oversized => {
            let body = format!(r#"{{"status":"ok","padding":"{}"}}"#, "x".repeat(1 << 20));
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(body.as_bytes()).await;
        }
        Mode::Truncated => {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"status\":")
                .await;
        }
    }
    let _ = s.shutdown().await;
}

/// What an HTTP fake answers to one request instead of its normal answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// This status (and a JSON error body).
    Status(u16),
    /// 429, with `Retry-After: <seconds>` when given.
    Throttle(Option<u64>),
    /// Read the request, then never answer.
    Hang,
}

/// Faults planned for the next requests, one per request, in order.
#[derive(Default)]
pub struct Faults(Mutex<VecDeque<Fault>>);

impl Faults {
    pub fn plan(&self, faults: &[Fault]) {
        lock(&self.0).extend(faults);
    }

    /// The fault for the request being answered, if one is planned.
    pub fn take(&self) -> Option<Fault> {
        lock(&self.0).pop_front()
    }
}

/// The status (and `Retry-After`) a fake answers for a fault other than
/// `Hang`, which the fake handles by never answering.
pub fn fault_status(f: Fault) -> (u16, Option<u64>) {
    match f {
        Fault::Status(code) => (code, None),
        Fault::Throttle(after) => (429, after),
        Fault::Hang => unreachable!("a hang has no status"),
    }
}

/// Panics seen per thread name; a test asks about its own thread.
pub struct Panics;

static SEEN: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());
static HOOK: Once = Once::new();

fn thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_string()
}

impl Panics {
    /// Count panics (the hook is installed once per process; the default
    /// hook still prints) and return how many the calling thread has seen.
    pub fn watch() -> usize {
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                *lock(&SEEN).entry(thread_name()).or_default() += 1;
                previous(info);
            }));
        });
        // The test's thread is also the daemon's: a current-thread runtime
        // runs every task there.
        lock(&SEEN).get(&thread_name()).copied().unwrap_or(0)
    }
}

pub type Reply = Response<Full<Bytes>>;

/// Serve one connection with `handle` (HTTP/1.1 or h2, as the client speaks).
pub async fn serve_http<H, Fut>(stream: TcpStream, handle: H)
where
    H: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let answer = handle(req);
        async move { Ok::<_, std::convert::Infallible>(answer.await) }
    });
    // A client hanging up mid-request is its business, not the fake's.
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), svc)
        .await;
}

/// A JSON answer, with `Retry-After` when given.
pub fn json_reply(status: u16, body: &serde_json::Value, retry_after: Option<u64>) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = StatusCode::from_u16(status).expect("a valid status code");
    let headers = r.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(s) = retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

/// The body of a request, whole (the fakes' requests are small).
pub async fn body(req: Request<Incoming>) -> Bytes {
    req.into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

/// What [`RawReceiver`] does with one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RawAnswer {
    /// This status, with a small JSON body.
    Status(u16),
    /// This status, then a chunked body that never ends: 64 KiB chunks as
    /// fast as the client takes them, until it hangs up.
    Endless(u16),
    /// Read the request, then never answer.
    Hang,
}

/// One request a [`RawReceiver`] got.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub at: tokio::time::Instant,
    pub path: String,
    pub body: serde_json::Value,
}

/// A receiver on raw TCP for any path, one request per connection, that
/// answers each request as `decide` says from its JSON body; it can do
/// what no well-behaved API does (stream a body forever, never answer).
/// It counts the body bytes it managed to write: a client that stops
/// reading leaves it stuck at what the socket buffers hold.
pub struct RawReceiver {
    port: Port,
    requests: Arc<Mutex<Vec<RawRequest>>>,
    written: Arc<std::sync::atomic::AtomicU64>,
}

type Decide = Arc<dyn Fn(&serde_json::Value) -> RawAnswer + Send + Sync>;

impl RawReceiver {
    pub async fn start(
        decide: impl Fn(&serde_json::Value) -> RawAnswer + Send + Sync + 'static,
    ) -> RawReceiver {
        let decide: Decide = Arc::new(decide);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (r, w) = (requests.clone(), written.clone());
        let port = Port::start(move |s| raw_answer(s, decide.clone(), r.clone(), w.clone())).await;
        RawReceiver {
            port,
            requests,
            written,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.port.addr())
    }

    pub fn requests(&self) -> Vec<RawRequest> {
        lock(&self.requests).clone()
    }

    /// Body bytes written so far, over all connections.
    pub fn written(&self) -> u64 {
        self.written.load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn raw_answer(
    mut s: TcpStream,
    decide: Decide,
    requests: Arc<Mutex<Vec<RawRequest>>>,
    written: Arc<std::sync::atomic::AtomicU64>,
) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while data.len() < head_end + length {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    let body: serde_json::Value =
        serde_json::from_slice(&data[head_end..head_end + length]).unwrap_or_default();
    let path = head.split(' ').nth(1).unwrap_or("").to_string();
    let answer = decide(&body);
    lock(&requests).push(RawRequest {
        at: tokio::time::Instant::now(),
        path,
        body,
    });
    let count = |n: usize| written.fetch_add(n as u64, std::sync::atomic::Ordering::SeqCst);
    match answer {
        RawAnswer::Status(code) => {
            let body = r#"{"status":"success"}"#;
            let reply = format!(
                "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            if s.write_all(reply.as_bytes()).await.is_ok() {
                count(body.len());
            }
        }
        RawAnswer::Endless(code) => {
            let head = format!(
                "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            );
            if s.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let mut chunk = b"10000\r\n".to_vec();
            chunk.extend(std::iter::repeat_n(b' ', 64 * 1024));
            chunk.extend_from_slice(b"\r\n");
            // Until the client hangs up.
            while s.write_all(&chunk).await.is_ok() {
                count(64 * 1024);
            }
            return;
        }
        RawAnswer::Hang => {
            while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
            return;
        }
    }
    let _ = s.shutdown().await;
}
