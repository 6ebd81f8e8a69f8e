//! JSON lines in the shape of tracing-subscriber's flattened JSON format
//! (`timestamp`, `level`, the event's fields, `target`, `spans`), with one
//! difference: a field that carries a JSON document (a rule's `evidence`,
//! recorded as its serialized text) is embedded as that document, so log
//! pipelines see an object, not a string holding JSON.

use serde_json::{Map, Value, json};
use std::fmt;
use std::time::SystemTime;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Fields whose text is a JSON document: `evidence`, and a span's
/// `backstop.evidence`.
fn holds_json(name: &str) -> bool {
    name == "evidence" || name.ends_with(".evidence")
}

/// Embed `value` as JSON when the field holds a JSON object or list.
fn field_value(name: &str, value: &str) -> Value {
    if holds_json(name)
        && let Ok(v @ (Value::Object(_) | Value::Array(_))) = serde_json::from_str(value)
    {
        return v;
    }
    json!(value)
}

/// The event formatter (use with `JsonFields` for the spans' fields).
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // An event of the `log` crate (hyper, reqwest) under its own target.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let mut line = Map::new();
        let now = humantime::format_rfc3339_micros(SystemTime::now()).to_string();
        line.insert("timestamp".into(), json!(now));
        line.insert("level".into(), json!(meta.level().to_string()));
        event.record(&mut Fields(&mut line));
        line.insert("target".into(), json!(meta.target()));
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<Value> = scope
                .from_root()
                .map(|span| {
                    let mut fields = Map::new();
                    let extensions = span.extensions();
                    if let Some(text) = extensions.get::<FormattedFields<N>>()
                        && let Ok(Value::Object(recorded)) = serde_json::from_str(text)
                    {
                        for (name, value) in recorded {
                            let value = match value {
                                Value::String(s) => field_value(&name, &s),
                                other => other,
                            };
                            fields.insert(name, value);
                        }
                    }
                    fields.insert("name".into(), json!(span.name()));
                    Value::Object(fields)
                })
                .collect();
            if !spans.is_empty() {
                line.insert("spans".into(), Value::Array(spans));
            }
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Records an event's fields into the line; the `log.*` fields of a `log`
/// crate event are its metadata, already taken by `normalized_metadata`.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Fields<'_> {
    fn insert(&mut self, field: &Field, value: Value) {
        if !field.name().starts_with("log.") {
            self.0.insert(field.name().into(), value);
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let v = field_value(field.name(), value);
        self.insert(field, v);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.insert(field, json!(format!("{value:?}")));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, json!(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, json!(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.insert(field, json!(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, json!(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::fmt::format::JsonFields;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    #[test]
    fn evidence_is_an_object_and_other_fields_keep_their_types() {
        let out = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .with_writer(out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let evidence = r#"{"kind":"error_rate","bad":41,"error_ratio":0.08}"#;
            let span = tracing::info_span!(
                "rule transition",
                backstop.rule = "errors",
                backstop.evidence = evidence
            );
            let _in = span.enter();
            tracing::warn!(
                rule = "errors",
                failures = 3_u64,
                evidence,
                detail = "{not json",
                "rule firing"
            );
            // A field not meant to hold JSON stays text, even if it parses.
            tracing::info!(summary = "{\"a\":1}", evidence = "not json", "other");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let first = &lines[0];
        assert_eq!(first["level"], "WARN");
        assert_eq!(first["message"], "rule firing");
        assert_eq!(first["evidence"]["kind"], "error_rate");
        assert_eq!(first["evidence"]["bad"], 41);
        assert_eq!(first["failures"], 3);
        assert_eq!(first["detail"], "{not json");
        assert_eq!(first["spans"][0]["name"], "rule transition");
        assert_eq!(first["spans"][0]["backstop.evidence"]["error_ratio"], 0.08);
        assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[1]["summary"], "{\"a\":1}");
        assert_eq!(lines[1]["evidence"], "not json");
    }
}
