//! The configuration file as written: the YAML contract's names and shape
//! (`file` and `rules` hold the structs, whose field docs are the reference
//! documentation). Deserialization is lenient: unknown keys are kept and
//! leaves stay `serde_json::Value`, so validation can report every problem.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::error::{self, ConfigError, Problems};

/// Extra keys of a map that match no known field.
type Unknown = BTreeMap<String, Value>;

/// A map of the file with a fixed set of keys.
pub(super) trait Section {
    /// The keys the contract allows here; they must match the serde names of
    /// the struct's fields (a test checks).
    const FIELDS: &'static [&'static str];
    fn unknown(&self) -> &Unknown;
}

/// Reports each key of `section` (at `path`) that is not one of its fields.
pub(super) fn check_unknown<S: Section>(p: &mut Problems, path: &str, section: &S) {
    for name in section.unknown().keys() {
        p.add(
            &error::key(path, name),
            format!(
                "unknown field (expected one of: {}){}",
                S::FIELDS.join(", "),
                error::did_you_mean(name, S::FIELDS.iter().copied())
            ),
        );
    }
}

/// Deserializes the expanded document. Only a structural mismatch (a list
/// where a map must be) fails here, with the path of the mismatch.
pub(super) fn from_value(value: Value) -> Result<RawConfig, ConfigError> {
    if value.is_null() {
        // An empty file: validation then says what is required.
        return Ok(RawConfig::default());
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        ConfigError::new(path, e.into_inner().to_string())
    })
}

/// For maps and lists: a key that is present but empty (`headers:`) counts as
/// present and empty, not as absent, so `when: { error_rate: }` is reported
/// as an error_rate without `above` rather than as no condition at all.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(
        Option::<T>::deserialize(deserializer)?.unwrap_or_default(),
    ))
}

/// Declares which keys a section allows (see `Section`).
macro_rules! section {
    ($type:ty, [$($field:literal),* $(,)?]) => {
        impl Section for $type {
            const FIELDS: &'static [&'static str] = &[$($field),*];
            fn unknown(&self) -> &Unknown {
                &self.unknown
            }
        }
    };
}

mod file;
mod rules;

pub(super) use file::*;
pub(super) use rules::*;

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::json;

    /// Every name in `FIELDS` is a real field: a map of all of them leaves
    /// nothing unknown.
    fn all_fields_known<S: Section + DeserializeOwned>() {
        let map: serde_json::Map<String, Value> = S::FIELDS
            .iter()
            .map(|f| ((*f).to_owned(), Value::Null))
            .collect();
        let section: S = serde_json::from_value(Value::Object(map)).expect("deserializes");
        assert!(section.unknown().is_empty(), "{:?}", section.unknown());
    }

    #[test]
    fn field_lists_match_the_structs() {
        all_fields_known::<RawConfig>();
        all_fields_known::<RawTarget>();
        all_fields_known::<RawExpect>();
        all_fields_known::<RawSlo>();
        all_fields_known::<RawRule>();
        all_fields_known::<RawWhen>();
        all_fields_known::<RawErrorRate>();
        all_fields_known::<RawBurnRate>();
        all_fields_known::<RawLatency>();
        all_fields_known::<RawRestarts>();
        all_fields_known::<RawRollback>();
        all_fields_known::<RawKubernetes>();
        all_fields_known::<RawWebhook>();
        all_fields_known::<RawPage>();
        all_fields_known::<RawPagerDuty>();
        all_fields_known::<RawAlertmanager>();
        all_fields_known::<RawSlack>();
        all_fields_known::<RawNotifyWebhook>();
        all_fields_known::<RawAnnotate>();
        all_fields_known::<RawGrafana>();
        all_fields_known::<RawOtlp>();
        all_fields_known::<RawTraffic>();
    }

    #[test]
    fn flatten_collects_unknown_keys_at_every_depth() {
        let raw = from_value(json!({
            "service": "x",
            "colour": "blue",
            "targets": [{"name": "a", "expect": {"status": 200, "bodyy": "x"}}],
            "rules": [{"when": {"burn_rate": {"facter": 2}}, "for": "1m", "do": ["page"]}],
        }))
        .expect("lenient");
        assert!(raw.unknown.contains_key("colour"));
        let targets = raw.targets.expect("targets");
        let expect = targets[0].expect.as_ref().expect("expect");
        assert!(expect.unknown.contains_key("bodyy"));
        assert_eq!(expect.status, Some(json!(200)));
        let rules = raw.rules.expect("rules");
        assert_eq!(rules[0].for_, Some(json!("1m")));
        assert_eq!(rules[0].actions, Some(json!(["page"])));
        let when = rules[0].when.as_ref().expect("when");
        let burn = when.burn_rate.as_ref().expect("burn_rate");
        assert!(burn.unknown.contains_key("facter"));

        let mut p = Problems::default();
        check_unknown(&mut p, "rules[0].when.burn_rate", burn);
        assert_eq!(
            p.into_vec(),
            vec![ConfigError::new(
                "rules[0].when.burn_rate.facter",
                "unknown field (expected one of: slo, short, long, factor, min_samples); \
                 did you mean \"factor\"?"
            )]
        );
    }

    #[test]
    fn empty_sections_count_as_present() {
        let raw = from_value(json!({"rules": [{"when": {"error_rate": null}}], "page": null}))
            .expect("lenient");
        let rules = raw.rules.expect("rules");
        assert!(rules[0].when.as_ref().expect("when").error_rate.is_some());
        assert!(raw.page.is_some());
        assert!(raw.otlp.is_none());
    }

    #[test]
    fn structural_mismatches_have_paths() {
        let cases = [
            (
                json!({"targets": {"name": "a"}}),
                "targets",
                "expected a sequence",
            ),
            (
                json!({"targets": [{"expect": [200]}]}),
                "targets[0].expect",
                "expectations",
            ),
            (
                json!({"targets": [{}, {"headers": ["a"]}]}),
                "targets[1].headers",
                "map",
            ),
            (
                json!({"rules": [{"when": "always"}]}),
                "rules[0].when",
                "one condition",
            ),
            (json!(["service"]), "", "configuration sections"),
        ];
        for (value, path, expected) in cases {
            let Err(e) = from_value(value) else {
                panic!("accepted a structural mismatch at {path}")
            };
            assert_eq!(e.path, path);
            assert!(e.message.contains(expected), "{e}");
        }
    }
}
