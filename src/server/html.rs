//! The `/` page: the same facts as `/status`, as a table a person can read
//! at 3 a.m. without jq. Refreshes itself every 5 seconds.

use super::Status;
use crate::engine::Series;
use std::fmt::Write;

pub fn page(s: &Status) -> String {
    let mut h = String::with_capacity(16 * 1024);
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=utf-8><meta http-equiv=refresh content=5>\
         <title>backstop: {svc}</title><style>{CSS}</style></head><body>\
         <h1>backstop: {svc}</h1>\
         <p id=headline class=\"headline {level}\">{headline}</p>\
         <p>revision <b>{rev}</b> (running {age}), backstop {ver}, rollback: {rb}{dry}. \
         JSON: <a href=/status>/status</a>, metrics: <a href=/metrics>/metrics</a></p>",
        svc = esc(&s.service),
        level = s.headline.level,
        headline = esc(&s.headline.text),
        rev = esc(&s.revision.id),
        age = humantime::format_duration(std::time::Duration::from_secs(
            s.revision.age_seconds as u64
        )),
        ver = s.version,
        rb = s.rollback.backend.unwrap_or("none"),
        dry = if s.rollback.dry_run { " (dry run)" } else { "" },
    );
    if let Some(warning) = s.revision.warning {
        let _ = write!(h, "<p class=firing><b>Warning:</b> {}</p>", esc(warning));
    }
    if let Some(p) = &s.rollback.page_only {
        let _ = write!(
            h,
            "<p class=firing><b>No automatic rollback ({cause}).</b> {m}</p>",
            cause = p.cause.metric_label(),
            m = esc(&p.message)
        );
    }
    let step = s.engine.history_step_seconds;
    if !s.engine.slos.is_empty() {
        h.push_str(
            "<h2>SLOs</h2><table><tr><th>SLO</th><th>objective</th><th>window</th>\
             <th>SLI</th><th>error budget left</th><th>burn rate</th><th>burn rate, last 15 min</th></tr>",
        );
        for slo in &s.engine.slos {
            let rows = slo.windows.len().max(1);
            let chart_label = match slo.burn_rate_history_window_seconds {
                Some(w) => format!("{} burn rate over {}", slo.name, secs(w)),
                None => format!("{} burn rate", slo.name),
            };
            let _ = write!(
                h,
                "<tr><td rowspan={rows}>{n}</td><td rowspan={rows}>{obj}</td>",
                n = esc(&slo.name),
                obj = objective(slo.objective, slo.latency_threshold_seconds),
            );
            for (i, w) in slo.windows.iter().enumerate() {
                if i > 0 {
                    h.push_str("<tr>");
                }
                let class = match w.budget_remaining {
                    Some(b) if b < 0.0 => "firing",
                    _ => "",
                };
                let _ = write!(
                    h,
                    "<td>{win}</td><td>{sli}</td><td class=\"{class}\">{budget}</td><td>{burn}</td>",
                    win = secs(w.window_seconds),
                    sli = w.sli.map_or("no data".into(), |v| format!(
                        "{} ({} of {})",
                        pct(v),
                        w.good,
                        w.total
                    )),
                    budget = w.budget_remaining.map_or("–".into(), pct),
                    burn = w.burn_rate.map_or("–".into(), |b| format!("{b:.2}×")),
                );
                if i == 0 {
                    let _ = write!(
                        h,
                        "<td rowspan={rows}>{}</td>",
                        chart(
                            &slo.burn_rate_history,
                            &chart_label,
                            step,
                            1.0,
                            |v| format!("{v:.2}×")
                        )
                    );
                }
                h.push_str("</tr>");
            }
        }
        h.push_str("</table>");
    }
    let _ = write!(
        h,
        "<h2>Targets (last {})</h2><table><tr><th>target</th><th>last probe</th><th>errors</th>\
         <th>p50</th><th>p95</th><th>p99</th><th>last failure</th>\
         <th>error ratio, last 15 min</th><th>p95, last 15 min</th></tr>",
        secs(s.engine.targets.first().map_or(300.0, |t| t.window_seconds))
    );
    for t in &s.engine.targets {
        let (class, state) = match t.up {
            Some(true) => ("up", "up".to_string()),
            Some(false) => (
                "down",
                format!("down ({} in a row)", t.consecutive_failures),
            ),
            None => ("", "not probed yet".to_string()),
        };
        let failure = t.last_failure.as_ref().map_or("none".into(), |f| {
            format!(
                "{} ago: <b>{}</b> {}",
                secs(f.seconds_ago.round()),
                esc(f.reason),
                esc(&f.detail)
            )
        });
        let _ = write!(
            h,
            "<tr class={class}><td>{n}</td><td>{state}</td><td>{e} of {total}</td><td>{p50}</td><td>{p95}</td><td>{p99}</td>\
             <td class=reason>{failure}</td><td>{c1}</td><td>{c2}</td></tr>",
            n = esc(&t.name),
            e = t.bad,
            total = t.good + t.bad,
            p50 = ms(t.p50_seconds),
            p95 = ms(t.p95_seconds),
            p99 = ms(t.p99_seconds),
            c1 = chart(
                &t.history.error_ratio,
                &format!("{} error ratio", t.name),
                step,
                0.05,
                pct
            ),
            c2 = chart(
                &t.history.p95_seconds,
                &format!("{} p95", t.name),
                step,
                0.0,
                |v| ms(Some(v))
            ),
        );
    }
    if !s.engine.traffic.is_empty() {
        traffic(&mut h, s);
    }
    h.push_str("</table><h2>Rules</h2><table><tr><th>rule</th><th>state</th><th>for</th><th>actions</th><th>evidence</th></tr>");
    for r in &s.engine.rules {
        let _ = write!(
            h,
            "<tr class={st}><td>{n}</td><td>{st} ({secs:.0}s)</td><td>{f}s</td><td>{a}</td><td>{e}</td></tr>",
            st = r.state.as_str(),
            n = esc(&r.name),
            secs = r.state_seconds,
            f = r.for_seconds,
            a = r.actions.join(", "),
            e = esc(r.summary.as_deref().unwrap_or("not assessed yet")),
        );
    }
    h.push_str("</table><h2>Actions</h2><table><tr><th>time</th><th>rule</th><th>action</th><th>outcome</th><th>detail</th></tr>");
    for a in s.actions.iter().rev() {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.at),
            esc(&a.rule),
            a.action,
            esc(a.outcome.as_str()),
            esc(&a.detail)
        );
    }
    h.push_str("</table></body></html>\n");
    h
}

const CSS: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}\
    table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
    .firing,.down{background:#fdd}.pending{background:#ffd}.ok,.up{background:#dfd}\
    .headline{font-size:1.25em;padding:.6em .9em;border-radius:4px;border:1px solid #bbb}\
    .headline.rolled_back,.headline.firing{background:#fcc;border-color:#c33}\
    .headline.warning,.headline.starting{background:#ffd;border-color:#cc3}.headline.ok{background:#dfd;border-color:#3a3}\
    .reason{max-width:28em}svg.chart{display:block}svg.chart polyline{fill:none;stroke:#c33;stroke-width:1.5}\
    svg.chart line{stroke:#999;stroke-dasharray:2 2}svg.chart text{font-size:9px;fill:#555}";

/// Chart size in CSS pixels.
const CHART_W: f64 = 180.0;
const CHART_H: f64 = 40.0;

/// A small line chart of `series` (oldest point first), drawn inline as
/// SVG: no script, no outside assets. The vertical scale runs from 0 to the
/// largest value or `floor`, whichever is larger; a gap in the data is a
/// gap in the line. The largest value is written in the corner.
fn chart(
    series: &Series,
    label: &str,
    step_seconds: f64,
    floor: f64,
    show: impl Fn(f64) -> String,
) -> String {
    let points: Vec<Option<f64>> = series.values().collect();
    let top = points
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .fold(floor, f64::max);
    let slots = crate::engine::HISTORY_POINTS as f64;
    let dx = CHART_W / (slots - 1.0);
    // The newest point sits on the right edge.
    let first = slots - points.len() as f64;
    let mut lines = Vec::new();
    let mut current = String::new();
    for (i, v) in points.iter().enumerate() {
        match v.filter(|v| v.is_finite()) {
            Some(v) => {
                let x = (first + i as f64) * dx;
                let y = if top > 0.0 {
                    CHART_H - 2.0 - (v / top) * (CHART_H - 12.0)
                } else {
                    CHART_H - 2.0
                };
                let _ = write!(current, "{x:.1},{y:.1} ");
            }
            None if !current.is_empty() => lines.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    let latest = points.iter().rev().flatten().next().copied();
    let title = format!(
        "{label}, one point per {}; latest {}, highest {}",
        secs(step_seconds),
        latest.map_or("none".into(), &show),
        show(top)
    );
    let mut svg = format!(
        "<svg class=chart data-points={n} role=img aria-label=\"{t}\" width={CHART_W} height={CHART_H} \
         viewBox=\"0 0 {CHART_W} {CHART_H}\"><title>{t}</title>\
         <line x1=0 y1={base} x2={CHART_W} y2={base}></line><text x=2 y=9>{top}</text>",
        n = points.iter().flatten().count(),
        t = esc(&title),
        base = CHART_H - 2.0,
        top = esc(&show(top)),
    );
    for l in lines {
        let _ = write!(svg, "<polyline points=\"{}\"></polyline>", l.trim_end());
    }
    svg.push_str("</svg>");
    svg
}

/// A ratio as the percentage the configuration takes (`99.95 %`, `5 %`):
/// at most three decimals, no trailing zeros.
fn pct(v: f64) -> String {
    let text = format!("{:.3}", v * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} %")
}

fn objective(o: f64, latency: Option<f64>) -> String {
    let mut s = pct(o);
    if let Some(l) = latency {
        s.push_str(&format!(" within {}", ms(Some(l))));
    }
    s
}

/// A duration in seconds as people write it: `300 s` → `5m`.
fn secs(v: f64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(v.max(0.0) as u64)).to_string()
}

/// One row per traffic entry and window: the app's own requests.
fn traffic(h: &mut String, s: &Status) {
    h.push_str(
        "</table><h2>Traffic (the app's own requests)</h2><table><tr><th>traffic</th>\
         <th>window</th><th>requests/s</th><th>failed</th><th>p50</th><th>p95</th><th>p99</th>\
         <th>series</th><th>last scrape</th></tr>",
    );
    for t in &s.engine.traffic {
        let last = match &t.last_scrape {
            None => "not scraped yet".to_owned(),
            Some(l) if !l.ok => format!("failed: {}", l.detail.as_deref().unwrap_or("")),
            Some(l) if l.baseline => "ok (baseline: counting starts now)".to_owned(),
            Some(l) => format!("ok, +{} requests, +{} failed", l.requests, l.errors),
        };
        let last = t.problems.iter().fold(last, |acc, p| format!("{acc}; {p}"));
        let bad = t.last_scrape.as_ref().is_some_and(|l| !l.ok) || !t.problems.is_empty();
        for w in &t.windows {
            let failed = match w.error_ratio {
                None => "no traffic".to_owned(),
                Some(r) => format!("{} of {} ({:.1} %)", w.errors, w.requests, r * 100.0),
            };
            let _ = write!(
                h,
                "<tr class={class}><td>{n}</td><td>{win}</td><td>{rps:.2}</td><td>{failed}</td>\
                 <td>{p50}</td><td>{p95}</td><td>{p99}</td><td>{series}</td><td>{last}</td></tr>",
                class = if bad { "down" } else { "" },
                n = esc(&t.name),
                win = humantime::format_duration(std::time::Duration::from_secs_f64(
                    w.window_seconds
                )),
                rps = w.requests_per_second,
                p50 = ms(w.p50_seconds),
                p95 = ms(w.p95_seconds),
                p99 = ms(w.p99_seconds),
                series = t.series,
                last = esc(&last),
            );
        }
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.1} ms", v * 1000.0))
}

/// Escape text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_read_like_the_configuration() {
        assert_eq!(pct(0.999), "99.9 %");
        assert_eq!(pct(0.05), "5 %");
        assert_eq!(pct(0.0), "0 %");
        assert_eq!(pct(2.0 / 3.0), "66.667 %");
    }

    fn series(values: &[Option<f64>]) -> Series {
        serde_json::from_value(serde_json::json!(values)).expect("a series")
    }

    #[test]
    fn a_gap_in_the_data_is_a_gap_in_the_line() {
        let svg = chart(
            &series(&[Some(0.1), Some(0.2), None, Some(0.0)]),
            "t",
            10.0,
            0.05,
            pct,
        );
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert!(svg.contains("data-points=3"), "{svg}");
        assert!(svg.contains("latest 0 %, highest 20 %"), "{svg}");
        // The newest point is on the right edge.
        assert!(svg.contains("180.0,38.0\""), "{svg}");
    }

    #[test]
    fn an_empty_chart_has_no_line() {
        let svg = chart(&series(&[None, None]), "t", 10.0, 1.0, |v| v.to_string());
        assert!(!svg.contains("<polyline"), "{svg}");
        assert!(svg.contains("latest none"), "{svg}");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::esc("<b a=\"x\">&'"),
            "&lt;b a=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
