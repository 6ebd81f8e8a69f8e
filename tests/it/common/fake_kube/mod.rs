//! A strict in-process fake of the Kubernetes API server, spoken to by the
//! real `kube::Client` over HTTP on 127.0.0.1. It serves only what backstop
//! needs (Pods, ReplicaSets, Deployments, Events, SelfSubjectAccessReviews,
//! and the Argo CD and Flux objects that sync a Deployment),
//! follows the real contract for those (paths, list shapes, `Status` errors,
//! resourceVersion conflicts, JSON patch) and records everything else as an
//! unexpected request that [`FakeKube::assert_no_unexpected`] reports.
//!
//! - `store`: objects, the global resourceVersion, typed access.
//! - `routes`: path parsing, GET and LIST; `patch`: Deployment JSON patches;
//!   `custom`: JSON patches of Argo CD and Flux custom resources;
//!   `create`: Events and SelfSubjectAccessReviews.
//! - `selector`: label selector parsing; `status`: `Status` error bodies.
//! - `cluster`: a ready-made cluster after two rollouts of `checkout`.

mod cluster;
mod create;
mod custom;
mod patch;
mod routes;
pub mod selector;
mod status;
mod store;

pub use cluster::{Fixture, checkout_cluster};
pub use store::{Kind, Store};

use super::faulty::Port;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// One request as the fake received it, and how it answered.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The raw (still percent-encoded) query string, "" when none.
    pub query: String,
    pub content_type: Option<String>,
    /// The `Authorization` header as sent (the fake accepts any bearer token).
    pub authorization: Option<String>,
    pub body: String,
    /// The status code answered; 0 while the request is still in progress.
    pub status: u16,
    /// Why the fake did not understand the request, if it did not.
    pub unexpected: Option<String>,
}

impl Recorded {
    /// A decoded query parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// An SSAR the fake answers with `allowed: false`. `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct Denial {
    pub verb: String,
    /// `deployments`, or `pods/log` for a subresource.
    pub resource: String,
    pub group: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

/// A planned misbehaviour for requests whose method matches and whose path
/// ends with `suffix`, for the next `left` of them.
struct Fault<T> {
    method: String,
    suffix: String,
    what: T,
    left: usize,
}

fn take<T: Clone>(faults: &mut Vec<Fault<T>>, method: &str, path: &str) -> Option<T> {
    let i = faults
        .iter()
        .position(|f| f.method.eq_ignore_ascii_case(method) && path.ends_with(&f.suffix))?;
    let what = faults[i].what.clone();
    faults[i].left -= 1;
    if faults[i].left == 0 {
        faults.remove(i);
    }
    Some(what)
}

type PatchHook = Box<dyn FnMut(&mut Store) + Send>;

/// Everything behind the server; only ever locked for synchronous work.
#[derive(Default)]
struct State {
    store: Store,
    requests: Vec<Recorded>,
    patches: Vec<Value>,
    failures: Vec<Fault<u16>>,
    delays: Vec<Fault<Duration>>,
    denials: Vec<Denial>,
    on_patch: Option<PatchHook>,
}

pub struct FakeKube {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    /// Dropping it stops the accept loop and cuts every connection: nothing
    /// keeps serving after the test.
    port: Port,
}

impl FakeKube {
    pub async fn start() -> FakeKube {
        let state = Arc::new(Mutex::new(State::default()));
        let s = state.clone();
        let port = Port::start(move |stream| {
            let state = s.clone();
            async move {
                let service = service_fn(move |req| serve(state.clone(), req));
                // A client hanging up mid-request is its business, not a test failure.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            }
        })
        .await;
        FakeKube {
            addr: port.addr(),
            state,
            port,
        }
    }

    /// Off the network: connections are refused, open ones cut.
    pub async fn down(&self) {
        self.port.down().await;
    }

    /// Serving again on the same address.
    pub async fn up(&self) {
        self.port.up().await;
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A real client pointed at the fake. Timeouts are short so that a
    /// request the fake never answers fails a test instead of hanging it.
    pub fn client(&self, namespace: &str) -> kube::Client {
        // kube builds a rustls config even for http URLs and panics without
        // a process-wide crypto provider; the daemon installs ring the same way.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut config = kube::Config::new(self.url().parse().expect("the fake's URL is a URI"));
        config.default_namespace = namespace.to_string();
        config.connect_timeout = Some(Duration::from_secs(2));
        config.read_timeout = Some(Duration::from_secs(5));
        config.write_timeout = Some(Duration::from_secs(5));
        kube::Client::try_from(config).expect("a kube client for the fake")
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking hook must not hide the requests recorded so far.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Insert or replace an object; fills uid, creationTimestamp and
    /// generation when missing and always sets a new resourceVersion.
    pub fn put<K>(&self, object: K) -> K
    where
        K: Resource<DynamicType = ()> + Serialize + DeserializeOwned,
    {
        self.lock().store.put(object)
    }

    pub fn get<K>(&self, namespace: &str, name: &str) -> Option<K>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned,
    {
        self.lock().store.get(namespace, name)
    }

    /// Change a stored object as another writer would (new resourceVersion).
    pub fn modify<K>(&self, namespace: &str, name: &str, change: impl FnOnce(&mut K)) -> K
    where
        K: Resource<DynamicType = ()> + Serialize + DeserializeOwned,
    {
        self.lock().store.modify(namespace, name, change)
    }

    /// Insert or replace a custom resource (an Argo CD Application, a Flux
    /// Kustomization or HelmRelease) as an admin would; returns it stored.
    pub fn put_custom(&self, object: Value) -> Value {
        let kind = Kind::of(
            object["apiVersion"].as_str().unwrap_or_default(),
            object["kind"].as_str().unwrap_or_default(),
        )
        .filter(|k| k.custom())
        .unwrap_or_else(|| panic!("the fake serves no such custom resource: {object}"));
        self.lock().store.insert_json(kind, object)
    }

    pub fn get_custom(&self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        self.lock().store.get_json(kind, namespace, name).cloned()
    }

    /// The current (global) resourceVersion.
    pub fn resource_version(&self) -> String {
        self.lock().store.resource_version()
    }

    /// Set a container's restart count, as the kubelet would after crashes.
    pub fn set_restarts(&self, namespace: &str, pod: &str, container: &str, restarts: i32) {
        self.modify(namespace, pod, |p: &mut Pod| {
            let status = p
                .status
                .iter_mut()
                .flat_map(|s| s.container_statuses.iter_mut().flatten())
                .find(|c| c.name == container)
                .unwrap_or_else(|| {
                    panic!("pod {namespace}/{pod} has no status for container {container}")
                });
            status.restart_count = restarts;
        });
    }

    /// core/v1 Events created through the API, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.lock().store.all()
    }

    /// events.k8s.io/v1 Events created through the API, oldest first.
    pub fn events_v1(&self) -> Vec<k8s_openapi::api::events::v1::Event> {
        self.lock().store.all()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// Bodies of the Deployment patches the fake accepted, in order.
    pub fn patches(&self) -> Vec<Value> {
        self.lock().patches.clone()
    }

    /// Answer the next `times` matching requests with a `Status` error of
    /// `status` before looking at them (nothing is stored).
    pub fn fail_next(&self, method: &str, path_suffix: &str, status: u16, times: usize) {
        self.lock().failures.push(Fault {
            method: method.to_string(),
            suffix: path_suffix.to_string(),
            what: status,
            left: times,
        });
    }

    /// Hold the next `times` matching requests for `by` before handling them.
    pub fn delay(&self, method: &str, path_suffix: &str, by: Duration, times: usize) {
        self.lock().delays.push(Fault {
            method: method.to_string(),
            suffix: path_suffix.to_string(),
            what: by,
            left: times,
        });
    }

    /// SelfSubjectAccessReviews for `verb` on `resource` answer not allowed.
    pub fn deny(&self, verb: &str, resource: &str) {
        self.deny_exactly(Denial {
            verb: verb.to_string(),
            resource: resource.to_string(),
            ..Denial::default()
        });
    }

    pub fn deny_exactly(&self, denial: Denial) {
        self.lock().denials.push(denial);
    }

    /// Run `hook` on the store at the start of every PATCH (a Deployment's
    /// or a custom resource's), before the patch is applied: the way to let
    /// another writer win a race.
    pub fn on_patch(&self, hook: impl FnMut(&mut Store) + Send + 'static) {
        self.lock().on_patch = Some(Box::new(hook));
    }

    /// Panic, listing them, if any request was not one the fake understood.
    pub fn assert_no_unexpected(&self) {
        let listed: Vec<String> = self
            .requests()
            .iter()
            .filter_map(|r| {
                let why = r.unexpected.as_ref()?;
                let query = if r.query.is_empty() {
                    String::new()
                } else {
                    format!("?{}", r.query)
                };
                let ct = r.content_type.as_deref().unwrap_or("no content type");
                Some(format!(
                    "  {} {}{query} ({ct}) -> {}: {why}",
                    r.method, r.path, r.status
                ))
            })
            .collect();
        assert!(
            listed.is_empty(),
            "the fake API server got {} unexpected request(s):\n{}",
            listed.len(),
            listed.join("\n")
        );
    }
}

async fn serve(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let record = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        content_type: parts
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        authorization: parts
            .headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: String::from_utf8_lossy(&body).into_owned(),
        ..Recorded::default()
    };
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    let (index, delay, failure) = {
        let mut s = lock();
        s.requests.push(record.clone());
        let delay = take(&mut s.delays, &record.method, &record.path);
        let failure = take(&mut s.failures, &record.method, &record.path);
        (s.requests.len() - 1, delay, failure)
    };
    if let Some(by) = delay {
        tokio::time::sleep(by).await;
    }
    let reply = {
        let mut s = lock();
        let reply = match failure {
            Some(code) => routes::Reply::error(status::ApiError::new(
                code,
                format!(
                    "injected by the test: {code} for {} {}",
                    record.method, record.path
                ),
            )),
            None => routes::handle(&mut s, &record),
        };
        let answered = &mut s.requests[index];
        answered.status = reply.code;
        answered.unexpected = reply.unexpected.clone();
        reply
    };
    let mut response = Response::builder()
        .status(reply.code)
        .header(hyper::header::CONTENT_TYPE, "application/json");
    for w in &reply.warnings {
        response = response.header("Warning", format!("299 - {w:?}"));
    }
    let body = Full::new(Bytes::from(reply.body.to_string()));
    Ok(response.body(body).expect("a well-formed response"))
}
