//! File-descriptor headroom: how many admin connections backstop may hold
//! without taking a descriptor its probes or its rollback need. No number
//! of admin clients may make a probe fail with "Too many open files".

use crate::config::Config;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Admin connections at most, whatever the limit: Prometheus, the kubelet
/// and a few people need a handful; more only costs memory and descriptors.
pub const MAX_CONNECTIONS: usize = 64;
/// Admin connections at least, even when the limit leaves less: with none,
/// `/healthz` fails and the kubelet restarts the pod, which helps nobody.
pub const MIN_CONNECTIONS: usize = 4;

/// Descriptors that are neither per target nor per destination: stdin,
/// stdout and stderr (3), the admin listener (1), the runtime's epoll and
/// wake-up descriptors and the signal pipe (4), the configuration file
/// read on reload, the CA bundle read at start, the kube client's watch
/// and its pooled connection, name lookups in
/// flight (getaddrinfo opens a socket and reads /etc files), the one
/// socket just accepted while the server decides whether to keep it (a
/// refused or an evicting newcomer), and the rest as margin.
const BASE_RESERVE: u64 = 64;
/// Per target (at most one probe is in flight): its pooled connection, a
/// new one being dialled after the app closed the old one, and a lookup.
const PER_TARGET: u64 = 3;
/// Per outbound destination (the rollback webhook or the API server,
/// PagerDuty, each Alertmanager, Slack, the notification webhook, Grafana,
/// the OTLP collector): a pooled connection, a retry's new connection,
/// its lookup, and one spare.
const PER_DESTINATION: u64 = 4;
/// The soft limit is raised towards the hard one, but not past this (the
/// kernel's default `nr_open`: a larger value is refused anyway).
const RAISE_CEILING: u64 = 1 << 20;

/// Descriptors kept for everything but admin connections.
pub fn reserve(config: &Config) -> u64 {
    let destinations = u64::from(config.rollback.backend.is_some())
        + u64::from(config.page.pagerduty.is_some())
        + u64::from(config.page.slack.is_some())
        + u64::from(config.page.webhook.is_some())
        + config
            .page
            .alertmanager
            .as_ref()
            .map_or(0, |a| a.urls.len()) as u64
        + u64::from(config.grafana.is_some())
        + u64::from(config.otlp.is_some());
    BASE_RESERVE + PER_TARGET * config.targets.len() as u64 + PER_DESTINATION * destinations
}

/// How many admin connections may be open at once under `limit` (None:
/// unlimited). Admin sockets never exceed (limit − reserve): the cap is
/// min(64, limit − reserve), and the accept loop holds at most one more
/// socket (a newcomer being refused, or the one that evicts an idle
/// connection while that one closes), which `BASE_RESERVE` counts. Under
/// 256 descriptors with one target and a webhook: 256 − (64 + 3 + 4) = 185,
/// so 64; under 128: 57.
pub fn connection_cap(limit: Option<u64>, reserve: u64) -> usize {
    let Some(limit) = limit else {
        return MAX_CONNECTIONS;
    };
    let room = usize::try_from(limit.saturating_sub(reserve)).unwrap_or(usize::MAX);
    room.clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
}

/// The soft `RLIMIT_NOFILE` (None: unlimited), after raising it to the hard
/// limit where allowed: backstop uses no `select(2)` and starts no child
/// that could trip over a larger limit, so the raise only adds headroom.
pub fn raise_soft_limit() -> Option<u64> {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let target = maximum.map_or(RAISE_CEILING, |m| m.min(RAISE_CEILING));
    if current.is_some_and(|c| c < target) {
        let raised = Rlimit {
            current: Some(target),
            maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(error = %e, "cannot raise the file-descriptor limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(targets: usize, alertmanagers: usize) -> Config {
        let mut yaml = String::from("service: s\ntargets:\n");
        for i in 0..targets {
            yaml.push_str(&format!("  - {{ name: t{i}, url: http://127.0.0.1:1/ }}\n"));
        }
        yaml.push_str("rollback: { webhook: { url: http://127.0.0.1:2/ } }\n");
        if alertmanagers > 0 {
            let urls: Vec<_> = (0..alertmanagers)
                .map(|i| format!("http://127.0.0.1:{}/", 3 + i))
                .collect();
            yaml.push_str(&format!(
                "page: {{ alertmanager: {{ url: [{}] }} }}\n",
                urls.join(", ")
            ));
        }
        crate::config::parse(&yaml, &|_| None).expect("valid test config")
    }

    #[test]
    fn the_reserve_grows_with_targets_and_destinations() {
        assert_eq!(reserve(&config(1, 0)), 64 + 3 + 4);
        assert_eq!(reserve(&config(10, 2)), 64 + 30 + 12);
    }

    #[test]
    fn admin_connections_never_take_the_reserve() {
        let r = reserve(&config(1, 0));
        assert_eq!(connection_cap(Some(256), r), 64);
        assert_eq!(connection_cap(Some(128), r), 57);
        assert_eq!(connection_cap(None, r), 64);
        for limit in 80..=(r + 64) {
            let cap = connection_cap(Some(limit), r) as u64;
            assert!(cap + r <= limit, "limit {limit}: cap {cap}");
        }
        // Too low to keep the reserve: a few connections all the same, so
        // the kubelet's probes are still answered.
        assert_eq!(connection_cap(Some(40), r), MIN_CONNECTIONS);
    }

    #[test]
    fn the_soft_limit_is_read_and_never_lowered() {
        let before = getrlimit(Resource::Nofile).current;
        let after = raise_soft_limit();
        assert!(after >= before || after.is_none(), "{before:?} → {after:?}");
    }
}
