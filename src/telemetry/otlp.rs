//! OpenTelemetry traces over OTLP: gRPC by default, HTTP/protobuf when
//! `OTEL_EXPORTER_OTLP_PROTOCOL` (or `..._TRACES_PROTOCOL`) says
//! `http/protobuf`. On when the configuration has `otlp:` or the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` / `..._TRACES_ENDPOINT` is set; otherwise
//! no exporter is built and no layer installed. The SDK reads the other
//! `OTEL_*` variables itself (service name, resource attributes, sampler).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// A running exporter; `shutdown` flushes the last spans.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Build the exporter when tracing is configured. Must run inside the
    /// Tokio runtime (the gRPC exporter needs it).
    pub fn from_config(
        endpoint: Option<&url::Url>,
        configured: bool,
        service: &str,
    ) -> Result<Option<Traces>, String> {
        let from_env = [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.is_empty()));
        if !configured && !from_env {
            return Ok(None);
        }
        let protocol = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .unwrap_or_default();
        let exporter = match protocol.as_str() {
            "http/protobuf" => {
                let mut b = opentelemetry_otlp::SpanExporter::builder().with_http();
                if let Some(e) = endpoint {
                    // The HTTP exporter wants the full path when given in code.
                    b = b.with_endpoint(format!("{}/v1/traces", e.as_str().trim_end_matches('/')));
                }
                b.build()
            }
            "" | "grpc" => {
                let mut b = opentelemetry_otlp::SpanExporter::builder().with_tonic();
                if let Some(e) = endpoint {
                    b = b.with_endpoint(e.as_str().trim_end_matches('/'));
                }
                b.build()
            }
            other => {
                return Err(format!(
                    "OTEL_EXPORTER_OTLP_PROTOCOL={other:?} is not supported (grpc or http/protobuf)"
                ));
            }
        }
        .map_err(|e| format!("building the OTLP exporter: {e}"))?;
        // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the default name.
        let named_by_env = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|s| !s.is_empty());
        let mut resource = Resource::builder();
        if !named_by_env {
            resource = resource.with_service_name(format!("backstop-{service}"));
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        Ok(Some(Traces { provider }))
    }

    pub fn tracer(&self) -> opentelemetry_sdk::trace::Tracer {
        self.provider.tracer("backstop")
    }

    /// Export what is buffered and stop. Blocks, so it runs off the runtime.
    pub async fn shutdown(self) {
        let provider = self.provider;
        let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(e)) = done {
            tracing::warn!(error = %e, "flushing traces on shutdown failed");
        }
    }
}
