//! Arbitrary input: any text, any bytes, YAML built from its own syntax,
//! random trees of the contract's keys, and valid configurations with
//! random parts swapped for junk. `parse` must return, never panic, and
//! every error must say something; in a document that is a map, only a
//! YAML-level error may leave its path empty.

use proptest::prelude::*;

use super::fields;
use super::proptest_config;
use super::tree::{Node, Quote, Style};
use crate::config::parse;

/// Parses `yaml` and checks the errors' shape. `map_root`: the document is
/// known to be a map, so every error but a YAML-level one has a path.
fn parse_checked(yaml: &str, map_root: bool) -> Result<(), TestCaseError> {
    let Err(errors) = parse(yaml, &fields::env) else {
        return Ok(());
    };
    prop_assert!(!errors.0.is_empty(), "an Err without errors for:\n{}", yaml);
    for e in &errors.0 {
        prop_assert!(
            !e.message.trim().is_empty(),
            "empty message at {:?}",
            e.path
        );
        // parse's guard against a check that failed without saying why.
        prop_assert!(
            e.message != "invalid configuration",
            "a check failed silently for:\n{}",
            yaml
        );
        if map_root && e.path.is_empty() {
            prop_assert!(
                e.message.starts_with("invalid YAML: "),
                "an error without a path: {}\nfor:\n{}",
                e,
                yaml
            );
        }
    }
    // Display must not panic either: check-config prints it.
    prop_assert!(!errors.to_string().is_empty());
    Ok(())
}

/// Pieces of YAML syntax, scalars that stress the readers, and the
/// contract's keys, to be strung together at random.
const TOKENS: &[&str] = &[
    "\n",
    "\n  ",
    "\n    ",
    "  ",
    "- ",
    ": ",
    ":",
    ", ",
    "{",
    "}",
    "[",
    "]",
    "? ",
    "|\n",
    ">-\n",
    "'",
    "\"",
    "#",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "<<: ",
    "!!str ",
    "!!int ",
    "!!float ",
    "!!binary ",
    "!!map ",
    "!custom ",
    "~",
    "null",
    "true",
    "1e400",
    "-5m",
    "999999999999h",
    "1e400s",
    "\"101%\"",
    "101%",
    "NaN",
    ".nan",
    "-.inf",
    "18446744073709551616",
    "-0.0",
    "0x1F",
    "0o17",
    "1_000",
    "${",
    "${APP_TOKEN}",
    "$${",
    "${UNSET:-5s}",
    "\\u0000",
    "\t",
    "\r\n",
    "é",
    "✓",
    "\u{feff}",
    "service",
    "targets",
    "name",
    "url",
    "interval",
    "timeout",
    "expect",
    "json",
    "status",
    "slos",
    "objective",
    "rules",
    "when",
    "do",
    "rollback",
    "webhook",
    "page",
    "pagerduty",
    "alertmanager",
    "annotate",
    "grafana",
    "otlp",
    "health",
    "http://127.0.0.1:8080/health",
    "5s",
    "99.9",
];

/// Keys for random trees: mostly the contract's, so validation is reached.
const KEYS: &[&str] = &[
    "service",
    "listen",
    "targets",
    "slos",
    "rules",
    "rollback",
    "page",
    "annotate",
    "otlp",
    "name",
    "url",
    "interval",
    "timeout",
    "warmup",
    "method",
    "headers",
    "header_files",
    "follow_redirects",
    "expect",
    "status",
    "body_contains",
    "json",
    "max_latency",
    "objective",
    "latency_threshold",
    "when",
    "for",
    "do",
    "severity",
    "consecutive_failures",
    "error_rate",
    "burn_rate",
    "latency",
    "restarts",
    "target",
    "above",
    "window",
    "min_samples",
    "slo",
    "short",
    "long",
    "factor",
    "percentile",
    "kubernetes",
    "deployment",
    "namespace",
    "bake",
    "cooldown",
    "dry_run",
    "pagerduty",
    "alertmanager",
    "routing_key",
    "routing_key_file",
    "max_per_minute",
    "resend_interval",
    "grafana",
    "token_file",
    "endpoint",
    "a.b",
    "",
    "x",
];

/// Scalars written raw: numbers at the edges, durations, percentages,
/// anchors, aliases and tags.
const SCALARS: &[&str] = &[
    "~",
    "true",
    "false",
    "0",
    "-1",
    "1.5",
    "1e400",
    "-1e400",
    "1e-400",
    ".nan",
    ".inf",
    "-.inf",
    "18446744073709551616",
    "-9223372036854775809",
    "99999999999999999999999",
    "4294967296",
    "0x1F",
    "1_000",
    "5s",
    "-5m",
    "1e400s",
    "999999999999h",
    "2y",
    "0s",
    "500ms",
    "1h30m",
    "\"101%\"",
    "\"5%\"",
    "99.9",
    "100",
    "NaN",
    "\"NaN\"",
    "http://x",
    "ftp://x",
    "health",
    "availability",
    "rollback",
    "page",
    "[rollback, page]",
    "&a 1",
    "*a",
    "!!str 5",
    "!!binary aGk=",
    "!custom x",
    "\"${APP_TOKEN}\"",
    "\"${UNSET}\"",
    "\"${\"",
    "GET",
    "{}",
    "[]",
];

/// A random tree: scalars (edge values, any text, long text) in maps and
/// lists, several levels deep.
fn tree() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        4 => prop::sample::select(SCALARS).prop_map(Node::raw),
        2 => any::<String>().prop_map(Node::Text),
        1 => any::<f64>().prop_map(|f| Node::Raw(format!("{f:e}"))),
        1 => any::<i64>().prop_map(|i| Node::Raw(i.to_string())),
        1 => (1usize..20_000).prop_map(|n| Node::Text("x".repeat(n))),
    ];
    let key = prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(str::to_owned),
        1 => any::<String>(),
    ];
    leaf.prop_recursive(6, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Node::List),
            prop::collection::vec((key.clone(), inner), 0..6).prop_map(|mut entries| {
                // A repeated key is a YAML error; that is tested elsewhere.
                let mut seen = std::collections::HashSet::new();
                entries.retain(|(k, _)| seen.insert(k.clone()));
                Node::Map(entries)
            }),
        ]
    })
}

fn style() -> impl Strategy<Value = Style> {
    let quote = prop_oneof![Just(Quote::Double), Just(Quote::Single), Just(Quote::Plain)];
    (0usize..8, quote).prop_map(|(flow_from, quote)| Style { flow_from, quote })
}

/// A valid configuration with up to five nodes swapped for random trees.
fn mangled() -> impl Strategy<Value = Node> {
    let swaps = prop::collection::vec((any::<prop::sample::Index>(), tree()), 1..=5);
    (0usize..2, swaps).prop_map(|(base, swaps)| {
        let mut tree = fields::bases()[base].clone();
        for (at, junk) in swaps {
            // Points are listed again after each swap: the tree changed.
            let all = tree.all_steps();
            let steps: &Vec<usize> = at.get(&all);
            *tree.at_mut(steps) = junk;
        }
        tree
    })
}

proptest! {
    #![proptest_config(proptest_config(200))]

    #[test]
    fn any_text_is_parsed_or_refused(text in any::<String>()) {
        parse_checked(&text, false)?;
    }

    #[test]
    fn any_bytes_are_parsed_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        parse_checked(&String::from_utf8_lossy(&bytes), false)?;
    }

    #[test]
    fn yaml_syntax_in_any_order_is_parsed_or_refused(
        tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..120),
    ) {
        parse_checked(&tokens.concat(), false)?;
    }

    #[test]
    fn random_trees_are_parsed_or_refused(tree in tree(), style in style()) {
        let map_root = matches!(tree, Node::Map(_));
        parse_checked(&style.write(&tree), map_root)?;
    }
}

proptest! {
    // Each case parses a whole configuration, the slow part in a debug build.
    #![proptest_config(proptest_config(128))]

    #[test]
    fn mangled_configurations_are_refused_with_paths(tree in mangled(), style in style()) {
        parse_checked(&style.write(&tree), true)?;
    }

    #[test]
    fn deep_nesting_is_refused_without_overflow(
        depth in 0usize..5_000,
        open in prop::sample::select(&["[", "{a: ", "- ", "? "][..]),
    ) {
        let close = match open { "[" => "]", "{a: " => "}", _ => "" };
        let yaml = format!("service: {}x{}", open.repeat(depth), close.repeat(depth));
        parse_checked(&yaml, true)?;
    }
}

/// Deep block nesting needs indentation that grows with depth, so it gets
/// a few fixed depths rather than random ones.
#[test]
fn deep_block_nesting_is_refused_without_overflow() {
    for depth in [100, 300, 1_000] {
        let yaml: String = (0..depth)
            .map(|i| format!("{}a:\n", "  ".repeat(i)))
            .collect();
        if let Err(e) = parse_checked(&yaml, true) {
            panic!("depth {depth}: {e}");
        }
    }
}
