//! Property tests of the parsers: any bytes end in an exposition or an
//! error, never a panic, in both formats; so do valid expositions with
//! random edits; and a generated exposition rendered in either format
//! parses back to exactly the samples it was made of (names, roles,
//! labels with any characters, values including NaN and infinities,
//! timestamps, bucket bounds).

use std::fmt::Write;

use crate::test_support::proptest_config;
use proptest::prelude::*;

use crate::traffic::{Format, Role, parse};

const BOUNDS: [f64; 5] = [0.005, 0.1, 1.0, 2.5, 10.0];
const QUANTILES: [f64; 5] = [0.0, 0.5, 0.9, 0.99, 1.0];

#[derive(Debug, Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Unknown,
}

#[derive(Debug, Clone)]
struct Metric {
    extra: Vec<String>,
    value: f64,
    nonneg: f64,
    increments: Vec<u16>,
    quantiles: Vec<f64>,
    count: u32,
    created: Option<u32>,
}

#[derive(Debug, Clone)]
struct Fam {
    kind: Kind,
    help: Option<String>,
    /// Milliseconds, for every sample of the family.
    timestamp: Option<u64>,
    /// Which of BOUNDS / QUANTILES the family's histograms / summaries have.
    mask: u8,
    metrics: Vec<Metric>,
}

/// What a sample must parse back to.
#[derive(Debug, Clone, PartialEq)]
struct Want {
    name: String,
    role: Role,
    labels: Vec<(String, String)>,
    value: f64,
    timestamp: Option<f64>,
    le: Option<f64>,
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        -1e6..1e6f64,
        (0u64..1 << 53).prop_map(|v| v as f64),
    ]
}

fn text_value() -> impl Strategy<Value = String> {
    "[a-z\"\\\\\n é{}#,= \t\u{0}]{0,8}"
}

fn metric() -> impl Strategy<Value = Metric> {
    (
        prop::collection::vec(text_value(), 0..3),
        value(),
        0.0..1e12f64,
        prop::collection::vec(0u16..1000, BOUNDS.len() + 1),
        prop::collection::vec(prop_oneof![Just(f64::NAN), 0.0..1e3f64], QUANTILES.len()),
        any::<u32>(),
        prop::option::of(any::<u32>()),
    )
        .prop_map(
            |(extra, value, nonneg, increments, quantiles, count, created)| Metric {
                extra,
                value,
                nonneg,
                increments,
                quantiles,
                count,
                created,
            },
        )
}

fn family() -> impl Strategy<Value = Fam> {
    let kind = prop_oneof![
        Just(Kind::Counter),
        Just(Kind::Gauge),
        Just(Kind::Histogram),
        Just(Kind::Summary),
        Just(Kind::Unknown),
    ];
    (
        kind,
        prop::option::of("[a-zA-Z \"\\\\\né]{1,12}"),
        prop::option::of(0u64..1 << 40),
        any::<u8>(),
        prop::collection::vec(metric(), 0..4),
    )
        .prop_map(|(kind, help, timestamp, mask, metrics)| Fam {
            kind,
            help,
            timestamp,
            mask,
            metrics,
        })
}

fn escape_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn num(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v:?}")
    }
}

/// Renders the families in OpenMetrics (`om`) or text 0.0.4, and what each
/// sample must parse back to.
fn render(prefix: &str, fams: &[Fam], om: bool) -> (String, Vec<Want>) {
    let mut out = String::new();
    let mut want = Vec::new();
    for (i, f) in fams.iter().enumerate() {
        let base = format!("{prefix}{i}");
        let (family, kind) = match f.kind {
            Kind::Counter if om => (base.clone(), "counter"),
            Kind::Counter => (format!("{base}_total"), "counter"),
            Kind::Gauge => (base.clone(), "gauge"),
            Kind::Histogram => (base.clone(), "histogram"),
            Kind::Summary => (base.clone(), "summary"),
            Kind::Unknown => (base.clone(), if om { "unknown" } else { "untyped" }),
        };
        writeln!(out, "# TYPE {family} {kind}").unwrap();
        if let Some(help) = &f.help {
            let help = help.replace('\\', "\\\\").replace('\n', "\\n");
            let help = if om { help.replace('"', "\\\"") } else { help };
            writeln!(out, "# HELP {family} {help}").unwrap();
        }
        let ts_text = f.timestamp.map(|ms| {
            if om {
                format!(" {}.{:03}", ms / 1000, ms % 1000)
            } else {
                format!(" {ms}")
            }
        });
        let ts_text = ts_text.as_deref().unwrap_or("");
        let timestamp = f.timestamp.map(|ms| ms as f64 / 1000.0);
        for (j, m) in f.metrics.iter().enumerate() {
            let mut labels = vec![("i".to_owned(), j.to_string())];
            for (k, v) in m.extra.iter().enumerate() {
                labels.push((format!("l{k}"), v.clone()));
            }
            let mut line = |name: String, role: Role, extra: Option<(&str, f64)>, value: f64| {
                let mut all = labels.clone();
                if let Some((n, v)) = extra {
                    all.push((n.to_owned(), num(v)));
                }
                let rendered: Vec<String> = all
                    .iter()
                    .map(|(n, v)| format!("{n}=\"{}\"", escape_value(v)))
                    .collect();
                writeln!(
                    out,
                    "{name}{{{}}} {}{ts_text}",
                    rendered.join(","),
                    num(value)
                )
                .unwrap();
                let le = extra.filter(|(n, _)| *n == "le").map(|(_, v)| v);
                want.push(Want {
                    name,
                    role,
                    labels: all,
                    value,
                    timestamp,
                    le,
                });
            };
            match f.kind {
                Kind::Counter => {
                    let total = if om {
                        format!("{family}_total")
                    } else {
                        family.clone()
                    };
                    line(total, Role::Total, None, m.nonneg);
                    if let (true, Some(c)) = (om, m.created) {
                        line(
                            format!("{family}_created"),
                            Role::Created,
                            None,
                            f64::from(c),
                        );
                    }
                }
                Kind::Gauge | Kind::Unknown => line(family.clone(), Role::Value, None, m.value),
                Kind::Histogram => {
                    let mut cumulative = 0.0;
                    for (k, bound) in BOUNDS.iter().enumerate() {
                        cumulative += f64::from(m.increments[k]);
                        if f.mask & (1 << k) != 0 {
                            line(
                                format!("{family}_bucket"),
                                Role::Bucket,
                                Some(("le", *bound)),
                                cumulative,
                            );
                        }
                    }
                    cumulative += f64::from(m.increments[BOUNDS.len()]);
                    line(
                        format!("{family}_bucket"),
                        Role::Bucket,
                        Some(("le", f64::INFINITY)),
                        cumulative,
                    );
                    line(format!("{family}_count"), Role::Count, None, cumulative);
                    line(format!("{family}_sum"), Role::Sum, None, m.nonneg);
                }
                Kind::Summary => {
                    for (k, q) in QUANTILES.iter().enumerate() {
                        if f.mask & (1 << k) != 0 {
                            line(
                                family.clone(),
                                Role::Quantile,
                                Some(("quantile", *q)),
                                m.quantiles[k],
                            );
                        }
                    }
                    line(
                        format!("{family}_count"),
                        Role::Count,
                        None,
                        f64::from(m.count),
                    );
                    line(format!("{family}_sum"), Role::Sum, None, m.nonneg);
                }
            }
        }
    }
    if om {
        out.push_str("# EOF\n");
    }
    (out, want)
}

fn same_number(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn check_round_trip(body: &str, want: &[Want], format: Format) -> Result<(), TestCaseError> {
    let x =
        parse(body.as_bytes(), format).map_err(|e| TestCaseError::fail(format!("{e}\n{body}")))?;
    prop_assert_eq!(x.samples().len(), want.len(), "{}", body);
    for (s, w) in x.samples().iter().zip(want) {
        let labels: Vec<(String, String)> = x
            .labels(s)
            .iter()
            .map(|l| (l.name.to_owned(), l.value.to_string()))
            .collect();
        prop_assert_eq!(s.name, w.name.as_str());
        prop_assert_eq!(s.role, w.role);
        prop_assert_eq!(&labels, &w.labels);
        prop_assert!(same_number(s.value, w.value), "{} != {}", s.value, w.value);
        prop_assert_eq!(s.timestamp, w.timestamp);
        prop_assert_eq!(s.le, w.le);
    }
    Ok(())
}

/// Random edits: (position, byte) pairs, each inserting or overwriting.
fn mutate(body: &str, edits: &[(usize, u8, bool)]) -> Vec<u8> {
    let mut bytes = body.as_bytes().to_vec();
    for &(at, byte, insert) in edits {
        let at = at % (bytes.len() + 1);
        if insert || at == bytes.len() {
            bytes.insert(at, byte);
        } else {
            bytes[at] = byte;
        }
    }
    bytes
}

proptest! {
    #![proptest_config(proptest_config(256))]

    #[test]
    fn any_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&body, Format::Text);
        let _ = parse(&body, Format::OpenMetrics);
    }

    #[test]
    fn any_text_like_lines_never_panic(body in "(([a-z_:]{0,3}(\\{([a-z]{0,2}=\"[a-z\\\\\" #]{0,3}\",?){0,3}\\}?)? ?[-+0-9.eEaInfN]{0,5}( [-0-9.]{0,4})?( # \\{[a-z=\"]{0,6}\\} [0-9.]{0,3})?|# (TYPE|HELP|UNIT|EOF)[ a-z_]{0,12})(\n|\r\n)?){0,8}") {
        let _ = parse(body.as_bytes(), Format::Text);
        let _ = parse(body.as_bytes(), Format::OpenMetrics);
    }

    #[test]
    fn openmetrics_round_trips(prefix in "[a-z_:][a-z_:]{0,4}", fams in prop::collection::vec(family(), 0..5)) {
        let (body, want) = render(&prefix, &fams, true);
        check_round_trip(&body, &want, Format::OpenMetrics)?;
    }

    #[test]
    fn text_round_trips(prefix in "[a-z_:][a-z_:]{0,4}", fams in prop::collection::vec(family(), 0..5)) {
        let (body, want) = render(&prefix, &fams, false);
        check_round_trip(&body, &want, Format::Text)?;
    }

    #[test]
    fn edited_expositions_never_panic(
        fams in prop::collection::vec(family(), 1..4),
        edits in prop::collection::vec((any::<usize>(), prop_oneof![any::<u8>(), prop::sample::select(b"{}\"\\=, #\n\r\t".to_vec())], any::<bool>()), 1..6),
    ) {
        for om in [true, false] {
            let (body, _) = render("m", &fams, om);
            let edited = mutate(&body, &edits);
            let _ = parse(&edited, Format::Text);
            let _ = parse(&edited, Format::OpenMetrics);
        }
    }
}
