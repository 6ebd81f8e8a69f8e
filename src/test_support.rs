//! What the library's own tests share.

use proptest::test_runner::Config as ProptestConfig;

/// Settings for a property test that runs in every `cargo test`: `cases`
/// cases, unless PROPTEST_CASES asks for another number (a longer local run).
pub(crate) fn proptest_config(cases: u32) -> ProptestConfig {
    let config = ProptestConfig::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        config.cases
    } else {
        cases
    };
    ProptestConfig { cases, ..config }
}
