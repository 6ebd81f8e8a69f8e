//! Every PromQL expression of the bundles: in dashboards/*.json the panel
//! queries, the variables' queries and the annotations; in
//! alerts/*.rules.yml every rule's `expr`. Grafana's variables are replaced
//! so that Prometheus can run the dashboards' queries as they are.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// One expression, where it comes from, ready to run.
pub struct Query {
    /// The file, relative to the repository root.
    pub file: String,
    /// Where in the file: a panel and its query, a variable, an
    /// annotation, a rule.
    pub place: String,
    /// The expression with Grafana's variables replaced.
    pub expr: String,
    /// For a `label_values(selector, label)` variable: the label.
    pub label: Option<String>,
}

/// What Grafana's variables stand for here. Template variables: "All",
/// which the dashboards define as `.*`. Built-in intervals: short enough
/// for a test of about half a minute to have two samples and more in them.
const VARIABLES: &[(&str, &str)] = &[
    ("job", ".*"),
    ("namespace", ".*"),
    ("service", ".*"),
    ("pod", ".*"),
    ("target", ".*"),
    ("__rate_interval", "1m"),
    ("__interval", "15s"),
    ("__range", "5m"),
];

/// Replace `$name`, `${name}` and `${name:format}`; a `$` that starts no
/// name (a regex anchor) stays. Unknown variables are errors.
pub fn substitute(expr: &str) -> Result<String, String> {
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, used) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {expr}"))?;
            let inner = &braced[..end];
            (inner.split(':').next().unwrap_or(inner), end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() {
            out.push('$');
        } else if name == "datasource" {
            return Err("${datasource} belongs in a datasource field, not in a query".into());
        } else {
            let value = VARIABLES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| *v)
                .ok_or_else(|| format!("unknown variable ${name}"))?;
            out.push_str(value);
        }
        rest = &after[used..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Every query of every dashboard and rule file, in file order.
pub fn all(root: &Path) -> Vec<Query> {
    let mut queries = Vec::new();
    for (dir, ext) in [("dashboards", ".json"), ("alerts", ".rules.yml")] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap_or_else(|e| panic!("cannot list {dir}/: {e}"))
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(ext))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no {dir}/*{ext} files");
        for path in files {
            let name = format!("{dir}/{}", path.file_name().unwrap().to_string_lossy());
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {name}: {e}"));
            let found = if ext == ".json" {
                dashboard(&name, &text)
            } else {
                rules(&name, &text)
            };
            let found = found.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!found.is_empty(), "{name}: no queries found");
            queries.extend(found);
        }
    }
    queries
}

fn dashboard(file: &str, text: &str) -> Result<Vec<Query>, String> {
    let d: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let mut out = Vec::new();
    let mut add = |place: String, expr: &str, label: Option<String>| -> Result<(), String> {
        let expr = substitute(expr).map_err(|e| format!("{place}: {e}"))?;
        out.push(Query {
            file: file.to_string(),
            place,
            expr,
            label,
        });
        Ok(())
    };

    let mut panels: Vec<&Value> = d["panels"].as_array().into_iter().flatten().collect();
    while let Some(panel) = panels.pop() {
        // A collapsed row keeps its panels inside it.
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        for t in panel["targets"].as_array().into_iter().flatten() {
            let place = format!("panel {} ({})", panel["title"], text_of(&t["refId"]));
            let expr = t["expr"]
                .as_str()
                .ok_or_else(|| format!("{place}: a query without `expr`"))?;
            add(place, expr, None)?;
        }
    }

    for a in d["annotations"]["list"].as_array().into_iter().flatten() {
        let place = format!("annotation {}", a["name"]);
        let mut exprs: Vec<&str> = [&a["expr"], &a["target"]["expr"]]
            .into_iter()
            .filter_map(Value::as_str)
            .collect();
        exprs.dedup();
        if exprs.is_empty() && a["builtIn"] != 1 {
            return Err(format!("{place}: no expr"));
        }
        for expr in exprs {
            add(place.clone(), expr, None)?;
        }
    }

    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] != "query" {
            continue;
        }
        let place = format!("variable {}", v["name"]);
        let query = v["query"]["query"]
            .as_str()
            .or(v["query"].as_str())
            .ok_or_else(|| format!("{place}: no query"))?;
        let (expr, label) = variable_query(query).map_err(|e| format!("{place}: {e}"))?;
        add(place, &expr, label)?;
    }
    out.sort_by(|a, b| a.place.cmp(&b.place));
    Ok(out)
}

fn text_of(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

/// The PromQL inside a Grafana variable query: the selector of
/// `label_values(selector, label)`, the expression of `query_result(...)`.
fn variable_query(query: &str) -> Result<(String, Option<String>), String> {
    let query = query.trim();
    if let Some(args) = query
        .strip_prefix("label_values(")
        .and_then(|a| a.strip_suffix(')'))
    {
        return Ok(match args.rsplit_once(',') {
            Some((selector, label)) => {
                (selector.trim().to_string(), Some(label.trim().to_string()))
            }
            None => (
                format!("{{{}!=\"\"}}", args.trim()),
                Some(args.trim().into()),
            ),
        });
    }
    if let Some(expr) = query
        .strip_prefix("query_result(")
        .and_then(|a| a.strip_suffix(')'))
    {
        return Ok((expr.to_string(), None));
    }
    Err(format!("unsupported variable query {query:?}"))
}

#[derive(Deserialize)]
struct RuleFile {
    groups: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    alert: Option<String>,
    record: Option<String>,
    expr: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

fn rules(file: &str, text: &str) -> Result<Vec<Query>, String> {
    let parsed: RuleFile =
        serde_saphyr::from_str(text).map_err(|e| format!("not a rule file: {e}"))?;
    let mut out = Vec::new();
    for group in parsed.groups {
        for rule in group.rules {
            let kind = match (&rule.alert, &rule.record) {
                (Some(a), None) => format!("alert {a}"),
                (None, Some(r)) => format!("record {r}"),
                _ => {
                    return Err(format!(
                        "group {}: a rule needs alert or record",
                        group.name
                    ));
                }
            };
            // Alerts sharing a name (the burn-rate windows) differ by labels.
            let labels: Vec<String> = rule
                .labels
                .iter()
                .filter(|(k, _)| *k != "severity")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let place = if labels.is_empty() {
                kind
            } else {
                format!("{kind} {{{}}}", labels.join(", "))
            };
            out.push(Query {
                file: file.to_string(),
                place,
                expr: rule.expr.trim().to_string(),
                label: None,
            });
        }
    }
    Ok(out)
}

/// `expr` without its final comparison with a number (`... > 0.5`), if it
/// ends with one: what an alert compares, which must have data even while
/// the alert's condition is false.
pub fn without_threshold(expr: &str) -> Option<&str> {
    let (left, right) = expr.trim_end().rsplit_once('>')?;
    right.trim().parse::<f64>().ok()?;
    Some(left.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_replaced_and_regex_anchors_kept() {
        assert_eq!(
            substitute(r#"rate(x{job=~"$job", a=~"^b$"}[$__rate_interval]) offset ${__interval}"#)
                .unwrap(),
            r#"rate(x{job=~".*", a=~"^b$"}[1m]) offset 15s"#
        );
        assert_eq!(substitute("${pod:regex}").unwrap(), ".*");
        assert!(substitute("$nope").unwrap_err().contains("$nope"));
        assert!(substitute("${datasource}").is_err());
    }

    #[test]
    fn variable_queries() {
        let (sel, label) =
            variable_query(r#"label_values(backstop_build_info{job=~"$job", a="b"}, pod)"#)
                .unwrap();
        assert_eq!(sel, r#"backstop_build_info{job=~"$job", a="b"}"#);
        assert_eq!(label.as_deref(), Some("pod"));
        assert!(variable_query("metrics(backstop_)").is_err());
    }

    #[test]
    fn thresholds() {
        assert_eq!(
            without_threshold("histogram_quantile(0.99, x) > 0.5\n"),
            Some("histogram_quantile(0.99, x)")
        );
        assert_eq!(without_threshold("a unless b"), None);
    }
}
