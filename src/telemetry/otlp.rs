//! OpenTelemetry traces over OTLP: gRPC by default, HTTP/protobuf when
//! `OTEL_EXPORTER_OTLP_PROTOCOL` (or `..._TRACES_PROTOCOL`) says
//! `http/protobuf`. On when the configuration has `otlp:` or the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` / `..._TRACES_ENDPOINT` is set; otherwise
//! no exporter is built and no layer installed. The SDK reads the other
//! `OTEL_*` variables itself (service name, resource attributes, sampler).
//! Credentials in `otlp.endpoint` (`http://user:password@collector:4317`)
//! are sent as `Authorization: Basic`, like those of every other URL in the
//! configuration, and kept out of the URL the exporter (and its logs) see.

use base64::Engine as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::HashMap;

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
        let auth = endpoint.and_then(basic_auth);
        let endpoint = endpoint.map(crate::redact::url);
        let exporter = match protocol.as_str() {
            "http/protobuf" => {
                let mut b = opentelemetry_otlp::SpanExporter::builder().with_http();
                if let Some(e) = endpoint {
                    // The HTTP exporter wants the full path when given in code.
                    b = b.with_endpoint(format!("{}/v1/traces", e.as_str().trim_end_matches('/')));
                }
                if let Some(auth) = auth {
                    b = b.with_headers(HashMap::from([("authorization".to_string(), auth)]));
                }
                b.build()
            }
            "" | "grpc" => {
                let mut b = opentelemetry_otlp::SpanExporter::builder().with_tonic();
                if let Some(e) = endpoint {
                    b = b.with_endpoint(e.as_str().trim_end_matches('/'));
                }
                if let Some(auth) = auth {
                    let mut value = hyper::header::HeaderValue::from_str(&auth)
                        .map_err(|_| "otlp.endpoint: the credentials are not valid in a header")?;
                    value.set_sensitive(true);
                    let mut headers = hyper::header::HeaderMap::new();
                    headers.insert(hyper::header::AUTHORIZATION, value);
                    b = b.with_metadata(MetadataMap::from_headers(headers));
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

/// `Basic <user:password>` from the URL's credentials, if it has any.
fn basic_auth(url: &url::Url) -> Option<String> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    // The URL keeps them percent-encoded; the header wants them as they are.
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let pair = format!(
        "{}:{}",
        decode(url.username()),
        decode(url.password().unwrap_or_default())
    );
    Some(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    ))
}

#[cfg(test)]
mod tests {
    use super::basic_auth;

    #[test]
    fn endpoint_credentials_become_basic_auth() {
        let url = |s: &str| url::Url::parse(s).unwrap();
        // base64("otel:p@ss w") — percent-encoding undone first.
        assert_eq!(
            basic_auth(&url("http://otel:p%40ss%20w@collector:4317")).as_deref(),
            Some("Basic b3RlbDpwQHNzIHc=")
        );
        assert_eq!(
            basic_auth(&url("http://token@collector:4317")).as_deref(),
            Some("Basic dG9rZW46")
        );
        assert_eq!(basic_auth(&url("http://collector:4317")), None);
    }
}
