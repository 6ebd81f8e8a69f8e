//! Mangled input never panics: truncations, dropped and duplicated lines,
//! swapped values and random bytes all end in `Ok` or `Err`. The property
//! tests below go further: `documents` feeds arbitrary text and YAML,
//! `mutations` breaks one field at a time of a configuration that uses
//! every section and checks that the error names that field.

mod documents;
mod fields;
mod json_paths;
mod mutations;
mod tree;

use crate::test_support::proptest_config;

use super::{EXAMPLE, env};
use crate::config::parse;

/// Values that stress every reader: wrong types, YAML syntax, huge numbers,
/// broken references.
const GARBAGE: &[&str] = &[
    "",
    "~",
    "[",
    "{",
    "]",
    "- x",
    "[1, [2, [3]]]",
    "{a: {b: {c: 1}}}",
    "-1",
    "0",
    "1e400",
    "-0.0",
    "18446744073709551616",
    "9999999999999999999h",
    "\"",
    "'",
    "*nope",
    "&a x",
    "!!binary aGk=",
    "${",
    "${}",
    "${X:-",
    "$${",
    "%",
    "100%",
    "0s",
    "1h30m",
    "true",
    "\t",
    "http://",
    "héllo ✓",
    "\"\\u0000\"",
    "[rollback, page, rollback]",
    "{target: health}",
];

/// Deterministic pseudo-random numbers (no dependency needed for a smoke test).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // The high bits of an LCG are the random ones.
        (self.0 >> 33) as usize
    }
}

fn variants() -> Vec<String> {
    let mut out = Vec::new();
    // Truncated at every 7th byte (on a char boundary).
    out.extend(
        EXAMPLE
            .char_indices()
            .map(|(i, _)| i)
            .filter(|i| i % 7 == 0)
            .map(|i| EXAMPLE[..i].to_owned()),
    );
    let lines: Vec<&str> = EXAMPLE.lines().collect();
    for skip in 0..lines.len() {
        // Each line dropped, then each line doubled.
        let dropped: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, l)| *l)
            .collect();
        out.push(dropped.join("\n"));
        let mut doubled = lines.clone();
        doubled.insert(skip, lines[skip]);
        out.push(doubled.join("\n"));
    }
    // Each value replaced by each garbage token.
    for (n, line) in lines.iter().enumerate() {
        let Some((key, _)) = line.split_once(": ") else {
            continue;
        };
        for junk in GARBAGE {
            let mut changed = lines.clone();
            let replaced = format!("{key}: {junk}");
            changed[n] = &replaced;
            out.push(changed.join("\n"));
        }
    }
    // Random printable and structural bytes sprinkled in.
    let mut rng = Lcg(0x5eed);
    let alphabet: Vec<char> = " \n\t:-[]{},#&*!|>'\"%@`$0123456789abcxyzé"
        .chars()
        .collect();
    for _ in 0..200 {
        let mut chars: Vec<char> = EXAMPLE.chars().collect();
        for _ in 0..1 + rng.next() % 8 {
            let at = rng.next() % chars.len();
            chars[at] = alphabet[rng.next() % alphabet.len()];
        }
        out.push(chars.into_iter().collect());
    }
    out
}

#[test]
fn mangled_input_never_panics() {
    let variants = variants();
    assert!(variants.len() > 1000, "only {} variants", variants.len());
    let mut rejected = 0;
    for yaml in &variants {
        match parse(yaml, &env) {
            Ok(_) => {}
            Err(errors) => {
                assert!(!errors.0.is_empty(), "an Err without errors for:\n{yaml}");
                rejected += 1;
            }
        }
    }
    // Most mangled files must be refused, or the checks are not looking.
    assert!(
        rejected > variants.len() / 2,
        "only {rejected} of {} rejected",
        variants.len()
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("service: {}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(parse(&deep, &env).is_err());
    let deep_block: String = (0..500)
        .map(|i| format!("{}a:\n", "  ".repeat(i)))
        .collect();
    assert!(parse(&deep_block, &env).is_err());
}

#[test]
fn extreme_numbers_are_handled() {
    let yaml = format!(
        "{}slos: [{{name: a, objective: 99.9999999999}}]\n\
         rules:\n\
         - {{name: r1, when: {{burn_rate: {{slo: a, factor: 1e-300}}}}}}\n\
         - {{name: r2, when: {{error_rate: {{above: 1e-10}}}}}}\n\
         - {{name: r3, when: {{latency: {{target: health, above: 1s, percentile: 99.99999999999999}}}}}}\n\
         - {{name: r4, when: {{consecutive_failures: 99999999999999999999, target: health}}}}\n\
         - {{name: r5, when: {{consecutive_failures: }}}}\n",
        super::MINIMAL
    );
    let errors = parse(&yaml, &env).expect_err("r4 and r5 are invalid");
    let paths: Vec<&str> = errors.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        // A missing field sorts with its parent, before the parent's children.
        vec![
            "rules[3].when.consecutive_failures",
            "rules[4].when.target",
            "rules[4].when.consecutive_failures"
        ],
        "{errors}"
    );
}
