//! YAML text → `serde_json::Value`, plus where each path sits in the document.
//! serde-saphyr parses into an order-keeping tree first because
//! `serde_json::Map` sorts its keys, and errors are reported in document order.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::error::{self, ConfigError};

/// The parsed document.
pub(super) struct Document {
    pub(super) value: Value,
    pub(super) order: Order,
    /// Values JSON cannot hold (`.nan`, `.inf`, `1e400`), at their paths;
    /// each is left in `value` as its YAML spelling.
    pub(super) non_finite: Vec<ConfigError>,
}

/// Position in the document of every path that is present in it.
#[derive(Debug, Default)]
pub(super) struct Order(HashMap<String, usize>);

impl Order {
    /// Sort key for an error at `path`: the position of the path, or of its
    /// nearest present ancestor when the path names a missing field.
    pub(super) fn position(&self, path: &str) -> usize {
        let mut current = Some(path);
        while let Some(p) = current {
            if let Some(position) = self.0.get(p) {
                return *position;
            }
            current = error::parent(p);
        }
        0
    }
}

/// Parses YAML. An error keeps serde-saphyr's message with line and column;
/// its path is the field the parser refused (a bad tag, a duplicate key),
/// or empty for a syntax error.
pub(super) fn parse(yaml: &str) -> Result<Document, ConfigError> {
    // YAML 1.2 booleans only: `on`, `yes`, `no` stay strings, so a value like
    // `dry_run: yes` gets a clear error instead of a silent conversion.
    // Non-finite numbers reach the visitor, so their error can name the field.
    let options = serde_saphyr::options! {
        with_snippet: false,
        strict_booleans: true,
        non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::PassThrough,
    };
    let trail = RefCell::new(Vec::new());
    let read = |de: serde_saphyr::Deserializer<'_, '_>| NodeSeed { trail: &trail }.deserialize(de);
    let node = serde_saphyr::with_deserializer_from_str_with_options(yaml, options, read);
    let node = node.map_err(|e| {
        let path = if about_a_node(&e) {
            trail.borrow().last().cloned().unwrap_or_default()
        } else {
            String::new()
        };
        // The parser's advice about its own options is not for our users.
        let message = e
            .to_string()
            .replace(", set DuplicateKeyPolicy in Options if acceptable", "")
            .replace(
                " If you just use !!binary for documentation/annotation, \
                 set ignore_binary_tag_for_string in Options",
                "",
            )
            // Only map keys are read as strings, so a null is always a key.
            .replace(
                "cannot deserialize null into string; use Option<String>",
                "a map key cannot be null (quote it to mean the text \"null\")",
            );
        ConfigError::new(path, format!("invalid YAML: {message}"))
    })?;
    let mut order = Order::default();
    let mut non_finite = Vec::new();
    let value = node.into_value(String::new(), &mut order, &mut non_finite);
    Ok(Document {
        value,
        order,
        non_finite,
    })
}

/// Whether the parser refused one node (a scalar its tag does not fit, a
/// duplicate or non-text key, an unknown alias) rather than the syntax.
fn about_a_node(e: &serde_saphyr::Error) -> bool {
    use serde_saphyr::Error as E;
    matches!(
        e,
        E::InvalidScalar { .. }
            | E::InvalidBinaryBase64 { .. }
            | E::BinaryNotUtf8 { .. }
            | E::TaggedScalarCannotDeserializeIntoString { .. }
            | E::NullIntoString { .. }
            | E::Unexpected { .. }
            | E::DuplicateMappingKey { .. }
            | E::UnknownAnchor { .. }
            | E::MergeValueNotMapOrSeqOfMaps { .. }
    )
}

/// A YAML value with map keys in document order.
enum Node {
    Null,
    Bool(bool),
    Number(Number),
    /// NaN or an infinity: written `.nan`, `.inf`, or too large for an f64.
    NonFinite(f64),
    String(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    /// Converts to a `Value`, numbering every path in document (pre-)order.
    fn into_value(self, path: String, order: &mut Order, errors: &mut Vec<ConfigError>) -> Value {
        let position = order.0.len();
        order.0.insert(path.clone(), position);
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(b),
            Node::Number(n) => Value::Number(n),
            Node::NonFinite(f) => {
                let (spelling, hint) = match f {
                    f if f.is_nan() => (".nan", ""),
                    f if f < 0.0 => ("-.inf", "; numbers beyond ±1.8e308 are infinite"),
                    _ => (".inf", "; numbers beyond ±1.8e308 are infinite"),
                };
                errors.push(ConfigError::new(
                    path,
                    format!("{spelling} is not a finite number (quote it if it is text{hint})"),
                ));
                Value::String(spelling.to_owned())
            }
            Node::String(s) => Value::String(s),
            Node::Seq(items) => Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| item.into_value(error::index(&path, i), order, errors))
                    .collect(),
            ),
            Node::Map(entries) => {
                let mut map = Map::new();
                for (k, v) in entries {
                    let child = v.into_value(error::key(&path, &k), order, errors);
                    map.insert(k, child);
                }
                Value::Object(map)
            }
        }
    }
}

/// Reads one node. `trail` holds the paths of the nodes being read,
/// innermost last, and is left as it is when reading fails, so the last
/// path is where the parser stopped.
struct NodeSeed<'t> {
    trail: &'t RefCell<Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = Node;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor { trail: self.trail })
    }
}

struct NodeVisitor<'t> {
    trail: &'t RefCell<Vec<String>>,
}

impl NodeVisitor<'_> {
    fn here(&self) -> String {
        self.trail.borrow().last().cloned().unwrap_or_default()
    }

    /// Enters the child at `path` and returns the seed that reads it;
    /// `done` leaves it once it was read.
    fn seed(&self, path: String) -> NodeSeed<'_> {
        self.trail.borrow_mut().push(path);
        NodeSeed { trail: self.trail }
    }

    fn done(&self) {
        self.trail.borrow_mut().pop();
    }
}

impl<'de> Visitor<'de> for NodeVisitor<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Number::from_f64(v).map_or(Node::NonFinite(v), Node::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::String(v))
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        NodeSeed { trail: self.trail }.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let here = self.here();
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.seed(error::index(&here, items.len())))? {
            self.done();
            items.push(item);
        }
        self.done();
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let here = self.here();
        let mut entries = Vec::new();
        // A duplicate or non-text key fails here, with the map's path.
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self.seed(error::key(&here, &key)))?;
            self.done();
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_values_and_document_order() {
        let doc = parse("zeta: 1\nalpha:\n  - b: x\n    a: 2.5\nmid: ~\n").expect("valid YAML");
        assert_eq!(
            doc.value,
            serde_json::json!({"zeta": 1, "alpha": [{"b": "x", "a": 2.5}], "mid": null})
        );
        let at = |p: &str| doc.order.position(p);
        assert!(at("") < at("zeta"));
        assert!(at("zeta") < at("alpha"));
        assert!(at("alpha[0].b") < at("alpha[0].a"));
        assert!(at("alpha[0].a") < at("mid"));
        // A missing field sorts with its nearest present ancestor.
        assert_eq!(at("alpha[0].missing"), at("alpha[0]"));
    }

    #[test]
    fn syntax_errors_keep_line_and_column() {
        let Err(e) = parse("a: [1,\n") else {
            panic!("accepted bad YAML")
        };
        assert_eq!(e.path, "");
        assert!(e.message.starts_with("invalid YAML: "), "{e}");
        assert!(e.message.contains("line 1"), "{e}");
    }

    #[test]
    fn a_refused_node_is_named_by_its_path() {
        let cases = [
            ("service: !!int x", "service", "invalid u64"),
            (
                "a: {b: [1, !!binary \"/w==\"]}",
                "a.b[1]",
                "not valid UTF-8",
            ),
            (
                "targets:\n  - name: a\n    name: b\n",
                "targets[0]",
                "duplicate mapping key: name",
            ),
            (
                "targets:\n  - ~: b\n",
                "targets[0]",
                "a map key cannot be null",
            ),
            (
                "targets:\n  - url: *nope\n",
                "targets[0].url",
                "unknown anchor",
            ),
            ("a: {\"x.y\": {<<: 5}}", "a[\"x.y\"]", "merge value"),
        ];
        for (yaml, path, message) in cases {
            let Err(e) = parse(yaml) else {
                panic!("accepted {yaml:?}")
            };
            assert_eq!(e.path, path, "{yaml:?}: {e}");
            assert!(e.message.contains(message), "{yaml:?}: {e}");
            assert!(!e.message.contains("Options"), "{yaml:?}: {e}");
        }
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let Err(e) = parse("a: 1\na: 2\n") else {
            panic!("accepted a duplicate key")
        };
        assert!(e.message.contains("duplicate mapping key: a"), "{e}");
        assert!(!e.message.contains("DuplicateKeyPolicy"), "{e}");
    }

    #[test]
    fn non_finite_numbers_are_errors_at_their_path() {
        let doc = parse("a: [1, .nan]\nb: {c: 1e400, d: -.inf}\n").expect("valid YAML");
        assert_eq!(
            doc.value,
            serde_json::json!({"a": [1, ".nan"], "b": {"c": ".inf", "d": "-.inf"}})
        );
        let found: Vec<(&str, &str)> = doc
            .non_finite
            .iter()
            .map(|e| (e.path.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            found,
            vec![
                (
                    "a[1]",
                    ".nan is not a finite number (quote it if it is text)"
                ),
                (
                    "b.c",
                    ".inf is not a finite number (quote it if it is text; \
                     numbers beyond ±1.8e308 are infinite)"
                ),
                (
                    "b.d",
                    "-.inf is not a finite number (quote it if it is text; \
                     numbers beyond ±1.8e308 are infinite)"
                ),
            ]
        );
    }

    #[test]
    fn null_keys_are_explained_without_rust_types() {
        let Err(e) = parse("~: x\n") else {
            panic!("accepted a null key")
        };
        assert!(e.message.contains("a map key cannot be null"), "{e}");
        assert!(!e.message.contains("Option<String>"), "{e}");
    }

    #[test]
    fn yaml_1_1_booleans_stay_strings() {
        let doc = parse("a: yes\nb: on\nc: true\n").expect("valid YAML");
        assert_eq!(
            doc.value,
            serde_json::json!({"a": "yes", "b": "on", "c": true})
        );
    }

    #[test]
    fn empty_document_is_null() {
        assert_eq!(parse("").expect("valid").value, Value::Null);
        assert_eq!(parse("# nothing\n").expect("valid").value, Value::Null);
    }
}
