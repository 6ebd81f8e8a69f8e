//! The `/` page: the same facts as `/status`, as a table a person can read
//! at 3 a.m. without jq. Refreshes itself every 5 seconds.

use super::Status;
use std::fmt::Write;

pub fn page(s: &Status) -> String {
    let mut h = String::with_capacity(8 * 1024);
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=utf-8><meta http-equiv=refresh content=5>\
         <title>backstop: {svc}</title><style>body{{font:14px system-ui,sans-serif;margin:1.5em}}\
         table{{border-collapse:collapse;margin-bottom:1.5em}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}\
         .firing,.down{{background:#fdd}}.pending{{background:#ffd}}.ok,.up{{background:#dfd}}</style></head><body>\
         <h1>backstop: {svc}</h1><p>revision <b>{rev}</b> (running {age}), backstop {ver}, rollback: {rb}{dry}. \
         JSON: <a href=/status>/status</a>, metrics: <a href=/metrics>/metrics</a></p>",
        svc = esc(&s.service),
        rev = esc(&s.revision.id),
        age = humantime::format_duration(std::time::Duration::from_secs(
            s.revision.age_seconds as u64
        )),
        ver = s.version,
        rb = s.rollback.backend.unwrap_or("none"),
        dry = if s.rollback.dry_run { " (dry run)" } else { "" },
    );
    h.push_str("<h2>Rules</h2><table><tr><th>rule</th><th>state</th><th>for</th><th>actions</th><th>evidence</th></tr>");
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
    h.push_str("</table><h2>Targets (last 5 minutes)</h2><table><tr><th>target</th><th>last probe</th><th>errors</th><th>p50</th><th>p95</th><th>p99</th></tr>");
    for t in &s.engine.targets {
        let (class, state) = match t.up {
            Some(true) => ("up", "up".to_string()),
            Some(false) => (
                "down",
                format!("down ({} in a row)", t.consecutive_failures),
            ),
            None => ("", "not probed yet".to_string()),
        };
        let _ = write!(
            h,
            "<tr class={class}><td>{n}</td><td>{state}</td><td>{e} of {total}</td><td>{p50}</td><td>{p95}</td><td>{p99}</td></tr>",
            n = esc(&t.name),
            e = t.bad,
            total = t.good + t.bad,
            p50 = ms(t.p50_seconds),
            p95 = ms(t.p95_seconds),
            p99 = ms(t.p99_seconds),
        );
    }
    if !s.engine.traffic.is_empty() {
        traffic(&mut h, s);
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
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::esc("<b a=\"x\">&'"),
            "&lt;b a=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
