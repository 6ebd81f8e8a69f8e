//! A fake OTLP trace collector on the official protobuf definitions, over
//! gRPC or over HTTP/protobuf (`POST /v1/traces` with
//! `Content-Type: application/x-protobuf`; anything else is a 400). It
//! keeps every span with its attributes and its resource's `service.name`,
//! every export request whole as `Debug` text, and the `Authorization`
//! each request came with.

use super::faulty::{Port, Reply, body, serve_http};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper::body::Incoming;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use prost::Message;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// One exported span.
#[derive(Debug, Clone)]
pub struct Span {
    pub name: String,
    /// Its attributes as text, and its resource's `service.name`.
    pub attributes: HashMap<String, String>,
}

/// What the collector got.
#[derive(Default)]
pub struct Collected {
    pub spans: Vec<Span>,
    /// Every export request whole (names, attributes, events, status
    /// messages, resource), as `Debug` text.
    pub text: String,
    /// Each request's `Authorization` (empty when it had none).
    pub authorizations: Vec<String>,
}

impl Collected {
    pub fn names(&self) -> Vec<String> {
        self.spans.iter().map(|s| s.name.clone()).collect()
    }

    fn keep(&mut self, req: &ExportTraceServiceRequest, authorization: Option<&str>) {
        self.text.push_str(&format!("{req:?}\n"));
        self.authorizations
            .push(authorization.unwrap_or_default().to_string());
        for rs in &req.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref()?.value.as_ref().map(text))
                .unwrap_or_default();
            for span in rs.scope_spans.iter().flat_map(|s| &s.spans) {
                let mut attributes: HashMap<String, String> = span
                    .attributes
                    .iter()
                    .filter_map(|kv| {
                        Some((kv.key.clone(), text(kv.value.as_ref()?.value.as_ref()?)))
                    })
                    .collect();
                attributes.insert("service.name".into(), service.clone());
                self.spans.push(Span {
                    name: span.name.clone(),
                    attributes,
                });
            }
        }
    }
}

fn text(v: &Any) -> String {
    match v {
        Any::StringValue(s) => s.clone(),
        Any::IntValue(i) => i.to_string(),
        Any::BoolValue(b) => b.to_string(),
        Any::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    }
}

type Shared = Arc<Mutex<Collected>>;

pub struct FakeCollector {
    addr: SocketAddr,
    collected: Shared,
    /// The HTTP collector's accept loop; the gRPC one runs in a task that
    /// ends with the test's runtime.
    _port: Option<Port>,
}

impl FakeCollector {
    /// An OTLP/gRPC collector, listening when this returns.
    pub async fn grpc() -> FakeCollector {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let collected = Shared::default();
        let service = TraceServiceServer::new(Grpc(collected.clone()));
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await
                .unwrap();
        });
        FakeCollector {
            addr,
            collected,
            _port: None,
        }
    }

    /// An OTLP/HTTP (protobuf) collector at `/v1/traces`.
    pub async fn http() -> FakeCollector {
        let collected = Shared::default();
        let c = collected.clone();
        let port = Port::start(move |stream| {
            let c = c.clone();
            serve_http(stream, move |req| {
                let c = c.clone();
                async move { export(&c, req).await }
            })
        })
        .await;
        FakeCollector {
            addr: port.addr(),
            collected,
            _port: Some(port),
        }
    }

    /// The base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT` takes it.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn get(&self) -> MutexGuard<'_, Collected> {
        self.collected.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Grpc(Shared);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let auth = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keep(request.get_ref(), auth.as_deref());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn export(collected: &Mutex<Collected>, req: Request<Incoming>) -> Reply {
    let auth = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let protobuf = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/x-protobuf");
    let ok = req.uri().path() == "/v1/traces" && protobuf;
    let status = match ExportTraceServiceRequest::decode(body(req).await) {
        Ok(r) if ok => {
            collected
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .keep(&r, auth.as_deref());
            200
        }
        _ => 400,
    };
    let reply = ExportTraceServiceResponse::default().encode_to_vec();
    let mut resp = hyper::Response::new(Full::new(Bytes::from(reply)));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    resp
}
