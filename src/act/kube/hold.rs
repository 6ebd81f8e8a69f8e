//! The cluster-wide pause: `kubectl annotate deployment NAME
//! backstop.dev/paused-until=<RFC 3339 time> backstop.dev/paused-reason=...`
//! holds the rollbacks of every replica's sidecar, since each one reads the
//! Deployment before it acts. The admin API's pause stays per replica.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::Timestamp;

pub const PAUSED_UNTIL: &str = "backstop.dev/paused-until";
pub const PAUSED_REASON: &str = "backstop.dev/paused-reason";

/// Why the Deployment's annotations hold a rollback at `now`, if they do.
/// A time that does not parse holds too (someone meant to pause), and the
/// message says how to fix it.
pub fn hold(d: &Deployment, now: Timestamp) -> Option<String> {
    let annotations = d.metadata.annotations.as_ref()?;
    let until = annotations.get(PAUSED_UNTIL)?;
    let name = d.metadata.name.as_deref().unwrap_or_default();
    let reason = annotations
        .get(PAUSED_REASON)
        .filter(|r| !r.trim().is_empty())
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    match until.trim().parse::<Timestamp>() {
        Ok(t) if t <= now => None,
        Ok(t) => Some(format!(
            "Deployment {name} is paused for backstop until {t}{reason}: not rolled back. \
             Every replica honours the annotation {PAUSED_UNTIL}; remove it to end the pause \
             early: kubectl annotate deployment {name} {PAUSED_UNTIL}-"
        )),
        Err(_) => Some(format!(
            "Deployment {name} has {PAUSED_UNTIL}={until:?}{reason}, which is not an RFC 3339 \
             time (like 2026-12-06T18:00:00Z): treated as paused, not rolled back. Fix it or \
             remove it: kubectl annotate deployment {name} {PAUSED_UNTIL}-"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(annotations: &[(&str, &str)]) -> Deployment {
        let mut d = Deployment::default();
        d.metadata.name = Some("checkout".into());
        d.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        d
    }

    #[test]
    fn a_pause_holds_until_its_time_and_says_why() {
        let now: Timestamp = "2026-12-06T10:00:00Z".parse().unwrap();
        let d = deployment(&[
            (PAUSED_UNTIL, "2026-12-06T12:00:00+01:00"),
            (PAUSED_REASON, "database migration, ticket OPS-42"),
        ]);
        assert_eq!(
            hold(&d, now).unwrap(),
            "Deployment checkout is paused for backstop until 2026-12-06T11:00:00Z \
             (database migration, ticket OPS-42): not rolled back. Every replica honours the \
             annotation backstop.dev/paused-until; remove it to end the pause early: \
             kubectl annotate deployment checkout backstop.dev/paused-until-"
        );
        let later: Timestamp = "2026-12-06T11:00:00Z".parse().unwrap();
        assert_eq!(hold(&d, later), None);
        assert_eq!(hold(&deployment(&[]), now), None);
        assert_eq!(hold(&Deployment::default(), now), None);
    }

    #[test]
    fn a_time_that_does_not_parse_holds_and_says_how_to_fix_it() {
        let now: Timestamp = "2026-12-06T10:00:00Z".parse().unwrap();
        let got = hold(&deployment(&[(PAUSED_UNTIL, "tomorrow")]), now).unwrap();
        assert!(
            got.starts_with(
                "Deployment checkout has backstop.dev/paused-until=\"tomorrow\", which is not an \
                 RFC 3339 time"
            ),
            "{got}"
        );
    }
}
