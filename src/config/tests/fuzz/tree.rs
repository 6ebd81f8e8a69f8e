//! A YAML tree that the property tests build, change and write out: maps
//! keep their order, and strings are written in a style each case picks, so
//! one configuration reaches the parser in many spellings.

use std::fmt::Write;

use serde_json::Value;

use crate::config::error;
use crate::config::yaml;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Node {
    /// Written exactly as given: numbers, booleans, `~`, anchors, tags, junk.
    Raw(String),
    /// A string, quoted as the `Style` says.
    Text(String),
    List(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    pub(super) fn raw(s: &str) -> Node {
        Node::Raw(s.to_owned())
    }

    /// The tree of a YAML text, keys in document order (the config's own
    /// reader finds the order).
    pub(super) fn parse(yaml: &str) -> Node {
        let doc = yaml::parse(yaml).unwrap_or_else(|e| panic!("test YAML invalid: {e}"));
        assert!(
            doc.non_finite.is_empty(),
            "test YAML has non-finite numbers"
        );
        from_value(doc.value, "", &doc.order)
    }

    /// The node at the end of `steps` (child positions from the root).
    pub(super) fn at(&self, steps: &[usize]) -> &Node {
        steps.iter().fold(self, |node, &step| match node {
            Node::List(items) => &items[step],
            Node::Map(entries) => &entries[step].1,
            Node::Raw(_) | Node::Text(_) => panic!("a scalar has no children"),
        })
    }

    pub(super) fn at_mut(&mut self, steps: &[usize]) -> &mut Node {
        steps.iter().fold(self, |node, &step| match node {
            Node::List(items) => &mut items[step],
            Node::Map(entries) => &mut entries[step].1,
            Node::Raw(_) | Node::Text(_) => panic!("a scalar has no children"),
        })
    }

    /// The steps to every node below this one, parents before children.
    pub(super) fn all_steps(&self) -> Vec<Vec<usize>> {
        let children: Vec<&Node> = match self {
            Node::Raw(_) | Node::Text(_) => return Vec::new(),
            Node::List(items) => items.iter().collect(),
            Node::Map(entries) => entries.iter().map(|(_, v)| v).collect(),
        };
        let mut out = Vec::new();
        for (i, child) in children.into_iter().enumerate() {
            out.push(vec![i]);
            out.extend(child.all_steps().into_iter().map(|mut steps| {
                steps.insert(0, i);
                steps
            }));
        }
        out
    }

    /// Shuffles the keys of every map, deterministically from `seed`.
    pub(super) fn shuffle_keys(&mut self, seed: &mut u64) {
        match self {
            Node::Raw(_) | Node::Text(_) => {}
            Node::List(items) => items.iter_mut().for_each(|i| i.shuffle_keys(seed)),
            Node::Map(entries) => {
                // Fisher-Yates with a xorshift generator: the seed is the
                // proptest input, so a failing order is reproducible.
                for i in (1..entries.len()).rev() {
                    *seed ^= *seed << 13;
                    *seed ^= *seed >> 7;
                    *seed ^= *seed << 17;
                    let j = (*seed % (i as u64 + 1)) as usize;
                    entries.swap(i, j);
                }
                entries.iter_mut().for_each(|(_, v)| v.shuffle_keys(seed));
            }
        }
    }
}

fn from_value(value: Value, path: &str, order: &yaml::Order) -> Node {
    match value {
        Value::Null => Node::raw("~"),
        Value::Bool(b) => Node::Raw(b.to_string()),
        Value::Number(n) => Node::Raw(n.to_string()),
        Value::String(s) => Node::Text(s),
        Value::Array(items) => Node::List(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| from_value(v, &error::index(path, i), order))
                .collect(),
        ),
        Value::Object(map) => {
            let mut entries: Vec<(String, Node)> = map
                .into_iter()
                .map(|(k, v)| {
                    let node = from_value(v, &error::key(path, &k), order);
                    (k, node)
                })
                .collect();
            entries.sort_by_key(|(k, _)| order.position(&error::key(path, k)));
            Node::Map(entries)
        }
    }
}

/// How strings are quoted.
#[derive(Clone, Copy, Debug)]
pub(super) enum Quote {
    Double,
    Single,
    /// Plain where that reads back as the same string, else double.
    Plain,
}

/// How a tree is written: block style down to `flow_from` levels deep,
/// flow style (`{a: 1}`, `[1]`) below.
#[derive(Clone, Copy, Debug)]
pub(super) struct Style {
    pub(super) flow_from: usize,
    pub(super) quote: Quote,
}

impl Style {
    pub(super) fn write(self, node: &Node) -> String {
        let mut out = String::new();
        if self.flow_from == 0 || !is_collection(node) {
            out.push_str(&self.flow(node));
            out.push('\n');
        } else {
            self.block(node, 0, 1, &mut out);
        }
        out
    }

    fn block(self, node: &Node, indent: usize, depth: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        let entries: Vec<(Option<&str>, &Node)> = match node {
            Node::Map(entries) => entries.iter().map(|(k, v)| (Some(k.as_str()), v)).collect(),
            Node::List(items) => items.iter().map(|v| (None, v)).collect(),
            Node::Raw(_) | Node::Text(_) => unreachable!("block() is for collections"),
        };
        for (key, value) in entries {
            match key {
                Some(k) => {
                    let _ = write!(out, "{pad}{}:", self.scalar(k));
                }
                None => {
                    let _ = write!(out, "{pad}-");
                }
            }
            if is_collection(value) && depth < self.flow_from {
                out.push('\n');
                self.block(value, indent + 2, depth + 1, out);
            } else {
                let _ = writeln!(out, " {}", self.flow(value));
            }
        }
    }

    fn flow(self, node: &Node) -> String {
        match node {
            Node::Raw(s) => s.clone(),
            Node::Text(s) => self.scalar(s),
            Node::List(items) => {
                let items: Vec<String> = items.iter().map(|i| self.flow(i)).collect();
                format!("[{}]", items.join(", "))
            }
            Node::Map(entries) => {
                let entries: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", self.scalar(k), self.flow(v)))
                    .collect();
                format!("{{{}}}", entries.join(", "))
            }
        }
    }

    fn scalar(self, s: &str) -> String {
        let printable = !s.chars().any(char::is_control);
        match self.quote {
            Quote::Plain if plain_is_safe(s) => s.to_owned(),
            Quote::Single if printable => format!("'{}'", s.replace('\'', "''")),
            // JSON's escapes are all valid in a YAML double-quoted scalar.
            _ => serde_json::to_string(s).expect("a string serialises"),
        }
    }
}

fn is_collection(node: &Node) -> bool {
    match node {
        Node::List(items) => !items.is_empty(),
        Node::Map(entries) => !entries.is_empty(),
        Node::Raw(_) | Node::Text(_) => false,
    }
}

/// Whether `s` written plain reads back as this string, in block and flow
/// context alike: starts with a letter, no indicator that could end it or
/// turn it into another type.
fn plain_is_safe(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | ':'))
        && !s.ends_with(':')
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "y" | "n" | "yes" | "no" | "on" | "off"
        )
}
