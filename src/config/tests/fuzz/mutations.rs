//! Breaking a valid configuration: every wrong value and unknown key comes
//! back as an error at the path of the field that holds it, all of them at
//! once; the same configuration in any key order and quoting parses the same.

use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::sample::Index;

use super::fields::{self, Kind, Point};
use super::proptest_config;
use super::tree::{Node, Quote, Style};
use crate::config::{Config, ConfigErrors, error, parse};

/// One change to a tree.
#[derive(Clone, Debug)]
enum Mutation {
    /// The node at `steps` becomes `value` (raw YAML).
    Replace { steps: Vec<usize>, value: String },
    /// `key` is added to the map at `steps`, as entry number `at`.
    Insert {
        steps: Vec<usize>,
        at: usize,
        key: String,
    },
}

impl Mutation {
    fn steps(&self) -> &[usize] {
        match self {
            Mutation::Replace { steps, .. } | Mutation::Insert { steps, .. } => steps,
        }
    }
}

/// A mutation and the path its error must name.
#[derive(Clone, Debug)]
struct Planned {
    mutation: Mutation,
    path: String,
}

/// Applies replacements, then insertions deepest first: an insertion
/// shifts the entries after it, which moves the maps below them.
fn apply(tree: &Node, plan: &[Planned]) -> Node {
    let mut tree = tree.clone();
    for p in plan {
        if let Mutation::Replace { steps, value } = &p.mutation {
            *tree.at_mut(steps) = Node::Raw(value.clone());
        }
    }
    let mut insertions: Vec<&Planned> = plan
        .iter()
        .filter(|p| matches!(p.mutation, Mutation::Insert { .. }))
        .collect();
    insertions.sort_by_key(|p| std::cmp::Reverse(p.mutation.steps().len()));
    for p in insertions {
        if let Mutation::Insert { steps, at, key } = &p.mutation {
            let Node::Map(entries) = tree.at_mut(steps) else {
                panic!("insertion into a non-map at {}", p.path)
            };
            entries.insert(at % (entries.len() + 1), (key.clone(), Node::raw("x")));
        }
    }
    tree
}

/// Maps a mutation may add keys to: the root, sections, header and JSON maps.
fn maps(points: &[Point]) -> Vec<(Vec<usize>, String, Kind)> {
    let mut out = vec![(Vec::new(), String::new(), Kind::Section)];
    out.extend(
        points
            .iter()
            .filter(|p| matches!(p.kind, Kind::Section | Kind::Headers | Kind::JsonMap))
            .map(|p| (p.steps.clone(), p.path.clone(), p.kind)),
    );
    out
}

fn keys_of(tree: &Node, steps: &[usize]) -> Vec<String> {
    match tree.at(steps) {
        Node::Map(entries) => entries.iter().map(|(k, _)| k.clone()).collect(),
        _ => Vec::new(),
    }
}

/// Whether an error is at `path` or inside it.
fn names(errors: &ConfigErrors, path: &str) -> bool {
    errors.0.iter().any(|e| {
        e.path
            .strip_prefix(path)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    })
}

/// Parses `tree` written in `style`, and returns why the errors are not
/// what `plan` expects, if they are not.
fn misreported(tree: &Node, style: Style, plan: &[Planned]) -> Option<String> {
    let yaml = style.write(&apply(tree, plan));
    let wanted: Vec<&str> = plan.iter().map(|p| p.path.as_str()).collect();
    match parse(&yaml, &fields::env) {
        Ok(_) => Some(format!("accepted; wanted errors at {wanted:?}:\n{yaml}")),
        Err(errors) => {
            let missing: Vec<&str> = wanted
                .iter()
                .copied()
                .filter(|path| !names(&errors, path))
                .collect();
            (!missing.is_empty())
                .then(|| format!("no error at {missing:?}; got:\n{errors}\nfor:\n{yaml}"))
        }
    }
}

const BLOCK: Style = Style {
    flow_from: usize::MAX,
    quote: Quote::Plain,
};

/// Every field of both configurations, every wrong value for it (including
/// the ones that stop reading early), every bad key in every map, and a
/// key twice: one at a time, each must be reported at its own path.
#[test]
fn every_wrong_value_is_reported_at_its_field() {
    let mut problems = Vec::new();
    let mut tried = 0;
    for (n, base) in fields::bases().iter().enumerate() {
        // The second base differs from the first only in its rollback
        // section and the restarts rule it allows.
        let points: Vec<Point> = fields::points(base)
            .into_iter()
            .filter(|p| n == 0 || p.path.starts_with("rollback") || p.path.starts_with("rules[4]"))
            .collect();
        let mut plans = Vec::new();
        for (n, point) in points.iter().enumerate() {
            // Values wrong for any field take turns, half of them per
            // field, which still tries each on dozens of fields.
            let mut generic = 0;
            let values = point.kind.invalid().into_iter();
            for value in values.chain(point.kind.misshapen()) {
                if fields::is_generic(value) {
                    generic += 1;
                    if (generic + n) % 2 == 0 {
                        continue;
                    }
                }
                plans.push(Planned {
                    mutation: Mutation::Replace {
                        steps: point.steps.clone(),
                        value: value.to_owned(),
                    },
                    path: point.path.clone(),
                });
            }
        }
        for (steps, path, kind) in maps(&points) {
            let present = keys_of(base, &steps);
            for key in kind.bad_keys(&present) {
                plans.push(Planned {
                    path: error::key(&path, &key),
                    mutation: Mutation::Insert {
                        steps: steps.clone(),
                        at: 1,
                        key,
                    },
                });
            }
            // A key twice is a YAML error; it names the map.
            if let (false, Some(first)) = (steps.is_empty(), present.first()) {
                plans.push(Planned {
                    path,
                    mutation: Mutation::Insert {
                        steps,
                        at: usize::MAX,
                        key: first.clone(),
                    },
                });
            }
        }
        for plan in plans {
            tried += 1;
            problems.extend(misreported(base, BLOCK, std::slice::from_ref(&plan)));
        }
    }
    assert!(tried > 500, "only {tried} mutations");
    assert!(
        problems.is_empty(),
        "{} of {tried} mutations misreported:\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

/// Two wrong values in one target, SLO, rule or section, for every pair of
/// fields there: both are reported. A check that gives up early on a bad
/// field would hide its neighbours' problems until the first is fixed.
#[test]
fn a_wrong_value_never_hides_another_nearby() {
    let base = &fields::bases()[1];
    let points: Vec<Point> = fields::points(base)
        .into_iter()
        .filter(|p| !p.kind.invalid().is_empty())
        .collect();
    // `targets[0].expect.status` → `targets[0]`, `page.pagerduty.url` → `page`.
    let group = |p: &Point| p.path.split('.').next().unwrap_or_default().to_owned();
    let mut problems = Vec::new();
    let mut tried = 0;
    for (i, a) in points.iter().enumerate() {
        for (j, b) in points.iter().enumerate().skip(i + 1) {
            if group(a) != group(b) || nested(&a.steps, &b.steps) {
                continue;
            }
            let replace = |p: &Point| {
                let values = p.kind.invalid();
                Planned {
                    mutation: Mutation::Replace {
                        steps: p.steps.clone(),
                        value: values[(i + j) % values.len()].to_owned(),
                    },
                    path: p.path.clone(),
                }
            };
            tried += 1;
            problems.extend(misreported(base, BLOCK, &[replace(a), replace(b)]));
        }
    }
    assert!(tried > 300, "only {tried} pairs");
    assert!(
        problems.is_empty(),
        "{} of {tried} pairs misreported:\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

/// Any writing style for a tree.
fn style() -> impl Strategy<Value = Style> {
    let quote = prop_oneof![Just(Quote::Double), Just(Quote::Single), Just(Quote::Plain)];
    (0usize..6, quote).prop_map(|(flow_from, quote)| Style { flow_from, quote })
}

/// Whether `a` is `b` or inside it, or the other way round.
fn nested(a: &[usize], b: &[usize]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Up to four mutations that do not overlap, picked by `picks`.
fn plan(tree: &Node, picks: &[(bool, Index, Index, Index)]) -> Vec<Planned> {
    let points = fields::points(tree);
    let replaceable: Vec<&Point> = points
        .iter()
        .filter(|p| !p.kind.invalid().is_empty())
        .collect();
    let maps = maps(&points);
    let mut plan: Vec<Planned> = Vec::new();
    for (insert, which, value, at) in picks {
        let planned = if *insert {
            let (steps, path, kind) = which.get(&maps);
            let keys = kind.bad_keys(&keys_of(tree, steps));
            let key = value.get(&keys).clone();
            Planned {
                path: error::key(path, &key),
                mutation: Mutation::Insert {
                    steps: steps.clone(),
                    at: at.index(usize::MAX),
                    key,
                },
            }
        } else {
            let point = which.get(&replaceable);
            Planned {
                mutation: Mutation::Replace {
                    steps: point.steps.clone(),
                    value: value.get(&point.kind.invalid()).to_string(),
                },
                path: point.path.clone(),
            }
        };
        // A replaced node may not hold another change, and a key is added
        // once; two insertions into one map are fine.
        let clash = plan.iter().any(|p| match (&p.mutation, &planned.mutation) {
            (Mutation::Insert { .. }, Mutation::Insert { .. }) => p.path == planned.path,
            (Mutation::Replace { steps, .. }, Mutation::Insert { steps: map, .. })
            | (Mutation::Insert { steps: map, .. }, Mutation::Replace { steps, .. }) => {
                map.starts_with(steps)
            }
            (a, b) => nested(a.steps(), b.steps()),
        });
        if !clash {
            plan.push(planned);
        }
    }
    plan
}

proptest! {
    #![proptest_config(proptest_config(256))]

    /// Several wrong values and keys at once, in any writing style: every
    /// one is reported at its own path (problems are collected, and one
    /// does not hide another).
    #[test]
    fn wrong_values_are_all_reported_at_their_fields(
        base in 0usize..2,
        picks in prop::collection::vec((any::<bool>(), any::<Index>(), any::<Index>(), any::<Index>()), 1..=4),
        style in style(),
    ) {
        let tree = &fields::bases()[base];
        let plan = plan(tree, &picks);
        if let Some(problem) = misreported(tree, style, &plan) {
            prop_assert!(false, "{:?}\n{}", plan, problem);
        }
    }
}

proptest! {
    #![proptest_config(proptest_config(128))]

    /// Key order and quoting are not meaning: any order of the keys of
    /// every map, in any style, parses to the same `Config`.
    #[test]
    fn key_order_and_quoting_do_not_change_the_config(
        base in 0usize..2,
        seed in any::<u64>(),
        style in style(),
    ) {
        let tree = &fields::bases()[base];
        static EXPECTED: LazyLock<[Config; 2]> = LazyLock::new(|| {
            fields::bases().clone().map(|tree| {
                parse(&BLOCK.write(&tree), &fields::env).expect("the base is valid")
            })
        });
        let expected = &EXPECTED[base];
        let mut shuffled = tree.clone();
        let mut state = seed | 1;
        shuffled.shuffle_keys(&mut state);
        let yaml = style.write(&shuffled);
        match parse(&yaml, &fields::env) {
            Ok(config) => prop_assert_eq!(&config, expected, "{}", yaml),
            Err(errors) => prop_assert!(false, "rejected:\n{}\nfor:\n{}", errors, yaml),
        }
    }
}
