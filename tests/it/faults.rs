//! The fault matrix: the whole daemon against neighbours that misbehave,
//! one case per test.
//!
//! - A: the probed app hangs, resets, answers garbage or a truncated
//!   response, answers slowly, or refuses connections. Every probe fails
//!   with the right reason, the schedule keeps its pace, the daemon keeps
//!   serving, the rule fires once (one rollback call) and resolves once.
//! - B: a receiver (rollback webhook, PagerDuty, Alertmanager, the
//!   Kubernetes API) answers 5xx, 429, hangs or is unreachable, then
//!   recovers. The rollback or incident reaches it exactly once: retries
//!   are fine as long as the receiver takes the event once (a 500 or a hung
//!   request is not taken) and every retry carries the same dedup or
//!   idempotency key. Probing stays on schedule and what waits for delivery
//!   stays within its bound. A receiver that answers with a body that never
//!   ends is read a few KiB far and judged on its status; the record says
//!   the answer was cut, and the real daemon stays small. A receiver that
//!   hangs the post for one rule delays no other rule's page beyond one
//!   attempt's timeout.
//! - C: PagerDuty or Alertmanager down while a rule flaps fifty times, the
//!   webhook down while it flaps: what waits stays at its bound, and after
//!   recovery the receiver gets the last state. A receiver that hangs holds
//!   up neither probing nor shutdown.
//!
//! The harness is in `common/harness.rs`, the misbehaving neighbours in
//! `common/faulty.rs` and the fakes beside it.

mod app;
mod endless;
mod flapping;
mod lanes;
mod receivers;

use backstop::demo::app::SampleApp;

/// PagerDuty's dedup key of the rule (outside Kubernetes: namespace `local`).
const DEDUP_KEY: &str = "backstop/local/checkout/v2";

/// A service probed every 100 ms by the sample app's `/health`, with one
/// rule doing `actions`; `extra` adds the receiver's section.
fn config(app: &SampleApp, actions: &str, extra: &str) -> String {
    format!(
        r#"
service: checkout
targets:
  - name: health
    url: "{}"
    interval: 100ms
rules:
  - name: health-down
    when: {{ consecutive_failures: 3, target: health }}
    do: [{actions}]
{extra}"#,
        app.url("/health")
    )
}
