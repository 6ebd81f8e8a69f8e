//! The OpenMetrics parser conformance suite in `shared/testdata`: every
//! case must be accepted or rejected as its `test.json` says. All
//! disagreements are reported at once. `SUITE_DUMP=1` prints why each
//! rejected case was rejected, to check the reasons by eye.

use std::path::Path;

use crate::traffic::{Format, parse};

const SUITE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/testdata/openmetrics-parsers"
);

#[test]
fn openmetrics_conformance_suite() {
    let dir = Path::new(SUITE);
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| {
        panic!(
            "the OpenMetrics conformance suite is missing: looked in {} ({e}); \
             it lives in shared/testdata/openmetrics-parsers beside the repository",
            dir.display()
        )
    });
    let mut cases: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("test.json").is_file())
        .collect();
    cases.sort();
    let mut disagreements = Vec::new();
    let (mut accepted, mut rejected) = (0, 0);
    for case in &cases {
        let name = case.file_name().unwrap_or_default().to_string_lossy();
        let spec = std::fs::read_to_string(case.join("test.json")).expect("test.json is readable");
        let spec: serde_json::Value = serde_json::from_str(&spec).expect("test.json is JSON");
        let should_parse = spec["shouldParse"]
            .as_bool()
            .expect("test.json has shouldParse");
        let file = spec["file"].as_str().unwrap_or("metrics");
        let body = std::fs::read(case.join(file)).expect("the case's exposition is readable");
        match (parse(&body, Format::OpenMetrics), should_parse) {
            (Ok(_), true) => accepted += 1,
            (Err(e), false) => {
                rejected += 1;
                if std::env::var_os("SUITE_DUMP").is_some() {
                    eprintln!("{name}: {e}");
                }
            }
            (Ok(_), false) => disagreements.push(format!("{name}: accepted, must be rejected")),
            (Err(e), true) => {
                disagreements.push(format!("{name}: rejected ({e}), must be accepted"))
            }
        }
    }
    eprintln!(
        "{accepted} accepted, {rejected} rejected, {} disagree",
        disagreements.len()
    );
    assert!(
        cases.len() >= 211,
        "expected the 211 cases of the suite in {}, found {}",
        dir.display(),
        cases.len()
    );
    assert!(
        disagreements.is_empty(),
        "{} of {} cases disagree ({accepted} accepted and {rejected} rejected as they should):\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
}
