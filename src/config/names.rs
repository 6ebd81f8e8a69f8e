//! Paths for people: `rules[2].when.burn_rate.slo` becomes
//! `rules[2] "fast-burn".when.burn_rate.slo`, so a message names the rule,
//! target or SLO it is about instead of only its position in a list.

use std::collections::HashMap;

use serde_json::Value;

/// The lists whose items have a `name`.
const NAMED_LISTS: [&str; 4] = ["targets", "slos", "rules", "traffic"];

/// The names of the items of the named lists, as written.
pub(super) struct Names {
    names: HashMap<(&'static str, usize), String>,
    counts: [usize; 3],
}

impl Names {
    /// Reads the names from the (expanded) document; an item without a
    /// textual name is left unnamed.
    pub(super) fn of(document: &Value) -> Names {
        let list = |key: &str| document.get(key).and_then(Value::as_array);
        let mut names = HashMap::new();
        for section in NAMED_LISTS {
            for (i, item) in list(section).into_iter().flatten().enumerate() {
                if let Some(name) = item.get("name").and_then(Value::as_str) {
                    names.insert((section, i), name.to_owned());
                }
            }
        }
        let count = |key: &str| list(key).map_or(0, Vec::len);
        Names {
            names,
            counts: [count("targets"), count("slos"), count("rules")],
        }
    }

    /// `path` with the name of the item it starts in, or None when it does
    /// not start in a named item.
    pub(super) fn named(&self, path: &str) -> Option<String> {
        let (section, rest) = path.split_once('[')?;
        let section = NAMED_LISTS.into_iter().find(|s| *s == section)?;
        let (index, rest) = rest.split_once(']')?;
        let name = self.names.get(&(section, index.parse().ok()?))?;
        Some(format!(
            "{section}[{index}] {}{rest}",
            super::values::quote(name)
        ))
    }

    /// How many targets, SLOs and rules the document lists.
    pub(super) fn counts(&self) -> [usize; 3] {
        self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_in_named_items_carry_the_name() {
        let names = Names::of(&json!({
            "targets": [{"name": "health"}, {"url": "x"}],
            "rules": [{"name": "a"}, {"name": "b"}, {"name": "fast-burn"}],
            "rollback": {"name": "not a list"},
        }));
        assert_eq!(
            names.named("rules[2].when.burn_rate.slo").as_deref(),
            Some(r#"rules[2] "fast-burn".when.burn_rate.slo"#)
        );
        assert_eq!(
            names.named("targets[0]").as_deref(),
            Some(r#"targets[0] "health""#)
        );
        assert_eq!(names.named("targets[1].url"), None, "no name");
        assert_eq!(names.named("rollback.webhook.url"), None);
        assert_eq!(names.named("targets"), None);
        assert_eq!(names.named(""), None);
        assert_eq!(names.counts(), [2, 0, 3]);
    }
}
