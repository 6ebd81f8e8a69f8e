//! Traces over OTLP: the backstop binary, pointed by the standard
//! `OTEL_EXPORTER_OTLP_*` variables at an in-test receiver built on the
//! official OTLP protobuf definitions, exports a span per probe (HTTP
//! client attributes) and per rule transition, over gRPC and over
//! HTTP/protobuf, and flushes them on SIGTERM.

use crate::common::free_port;
use backstop::demo::app::{Behaviour, SampleApp};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Spans = Arc<Mutex<Vec<(String, HashMap<String, String>)>>>;

fn keep(spans: &Spans, req: ExportTraceServiceRequest) {
    let mut out = spans.lock().unwrap();
    for rs in req.resource_spans {
        let service = rs
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref()?.value.as_ref().map(text))
            .unwrap_or_default();
        for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
            let mut attrs = attributes(&span);
            attrs.insert("service.name".into(), service.clone());
            out.push((span.name.clone(), attrs));
        }
    }
}

fn attributes(span: &Span) -> HashMap<String, String> {
    span.attributes
        .iter()
        .filter_map(|kv| Some((kv.key.clone(), text(kv.value.as_ref()?.value.as_ref()?))))
        .collect()
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

struct Grpc(Spans);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        keep(&self.0, request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn grpc_receiver(spans: Spans) -> String {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Grpc(spans)))
            .serve(addr)
            .await
            .unwrap();
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    format!("http://127.0.0.1:{port}")
}

async fn http_receiver(spans: Spans) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let spans = spans.clone();
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let spans = spans.clone();
                    async move {
                        let protobuf = req
                            .headers()
                            .get("content-type")
                            .is_some_and(|v| v == "application/x-protobuf");
                        let ok = req.uri().path() == "/v1/traces" && protobuf;
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let status = match ExportTraceServiceRequest::decode(body) {
                            Ok(r) if ok => {
                                keep(&spans, r);
                                200
                            }
                            _ => 400,
                        };
                        let reply = ExportTraceServiceResponse::default().encode_to_vec();
                        let mut resp = hyper::Response::new(Full::new(Bytes::from(reply)));
                        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
            });
        }
    });
    format!("http://{addr}")
}

/// Run the binary against the sample app for a while with these env vars,
/// make the health target fail, then SIGTERM it.
async fn run_backstop(app: &SampleApp, env: &[(&str, &str)]) {
    let mut config = tempfile::NamedTempFile::new().unwrap();
    write!(
        config,
        "service: checkout\nlisten: 127.0.0.1:0\ntargets:\n  - {{ name: health, url: \"{}\", interval: 100ms }}\n\
         rules:\n  - {{ name: health-down, when: {{ consecutive_failures: 2, target: health }} }}\n",
        app.url("/health")
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_backstop"));
    cmd.args(["run", "--config"])
        .arg(config.path())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    app.set(Behaviour::Status(500));
    tokio::time::sleep(Duration::from_millis(800)).await;
    app.set(Behaviour::Healthy);
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

fn check(spans: &Spans, service: &str) {
    let spans = spans.lock().unwrap().clone();
    let probes: Vec<_> = spans.iter().filter(|(n, _)| n == "GET health").collect();
    assert!(probes.len() >= 5, "probe spans: {spans:#?}");
    let ok = probes
        .iter()
        .find(|(_, a)| a.get("backstop.result").map(String::as_str) == Some("success"))
        .unwrap();
    assert_eq!(ok.1["http.request.method"], "GET");
    assert_eq!(ok.1["http.response.status_code"], "200");
    assert_eq!(ok.1["server.address"], "127.0.0.1");
    assert!(ok.1["url.full"].ends_with("/health"));
    assert_eq!(ok.1["service.name"], service);
    let failed = probes
        .iter()
        .find(|(_, a)| a.get("error.type").map(String::as_str) == Some("status"));
    assert!(failed.is_some(), "no failed probe span");
    let firing = spans
        .iter()
        .find(|(n, _)| n == "rule health-down firing")
        .expect("a transition span");
    assert_eq!(firing.1["backstop.to"], "firing");
    assert!(firing.1["backstop.evidence"].contains("consecutive_failures"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_over_grpc_and_flushed_on_shutdown() {
    backstop::init_tls();
    let app = SampleApp::start("v1").await.unwrap();
    let spans = Spans::default();
    let endpoint = grpc_receiver(spans.clone()).await;
    run_backstop(&app, &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)]).await;
    check(&spans, "backstop-checkout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_over_http_protobuf_honour_otel_variables() {
    backstop::init_tls();
    let app = SampleApp::start("v1").await.unwrap();
    let spans = Spans::default();
    let endpoint = http_receiver(spans.clone()).await;
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_SERVICE_NAME", "checkout-sidecar"),
    ];
    run_backstop(&app, &env).await;
    check(&spans, "checkout-sidecar");
}
