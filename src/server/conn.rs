//! Admin connections: which are open, from whom, and whether they are
//! working. A connection that carries no request for a few seconds is
//! closed; a newcomer over a cap takes the place of an idle connection, or
//! is refused when every connection is busy. Sockets thus stay bounded and
//! an idle one never keeps the kubelet or Prometheus out.

use super::Telemetry;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Open connections from one address at most. Prometheus keeps one, the
/// kubelet opens one per probe; behind `kubectl port-forward` every client
/// is 127.0.0.1, and a few people with curl fit too.
pub const PER_PEER: usize = 16;
/// A new connection must complete a request head within this, whatever
/// protocol it speaks: no byte, half a head or an HTTP/2 preface alone are
/// all closed. Clients on a cluster network send theirs in milliseconds.
pub const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection with no request in flight for this long is closed
/// (HTTP/1 keep-alive and HTTP/2 alike). Prometheus reconnects at its next
/// scrape, which costs it one handshake on loopback or the pod network.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection this young that has not sent a request yet is closed for
/// a newcomer only when no older idle connection can be.
const FRESH: Duration = Duration::from_millis(500);

/// Why the server closed a connection itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// No request within `FIRST_REQUEST_TIMEOUT` of connecting.
    NoRequest,
    /// No request within `IDLE_TIMEOUT` of the last answer.
    Idle,
    /// Idle, and a newcomer over a cap needed its place.
    Evicted,
}

impl Closed {
    pub fn metric_label(self) -> &'static str {
        match self {
            Closed::NoRequest => "no_request",
            Closed::Idle => "idle",
            Closed::Evicted => "evicted",
        }
    }
}

/// Which cap refused a newcomer (every connection under it was busy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    PerPeer,
    Total,
}

impl Limit {
    pub fn metric_label(self) -> &'static str {
        match self {
            Limit::PerPeer => "per_peer",
            Limit::Total => "total",
        }
    }
}

/// The address limits are kept by: IPv4 as is (also when mapped into
/// IPv6), IPv6 by its /64, which one host usually owns whole.
pub fn peer_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

#[derive(Debug, Clone, Copy)]
struct State {
    in_flight: u32,
    /// Requests started on the connection so far.
    started: u64,
    /// When the last request ended, or the connection opened.
    idle_since: Instant,
}

/// Whether a connection has a request in flight, and since when it has not.
pub struct Activity(watch::Sender<State>);

impl Activity {
    fn new() -> Arc<Activity> {
        let state = State {
            in_flight: 0,
            started: 0,
            idle_since: Instant::now(),
        };
        Arc::new(Activity(watch::Sender::new(state)))
    }

    /// A request head arrived; the connection is busy until the guard drops.
    pub fn begin(self: &Arc<Self>) -> Busy {
        self.0.send_modify(|s| {
            s.in_flight += 1;
            s.started += 1;
        });
        Busy(self.clone())
    }

    /// Resolves when the connection has been idle too long, saying which
    /// deadline passed.
    pub async fn expired(&self) -> Closed {
        let mut rx = self.0.subscribe();
        loop {
            let s = *rx.borrow_and_update();
            if s.in_flight > 0 {
                // The sender lives as long as `self`: this never errs.
                let _ = rx.changed().await;
                continue;
            }
            let (limit, why) = if s.started == 0 {
                (FIRST_REQUEST_TIMEOUT, Closed::NoRequest)
            } else {
                (IDLE_TIMEOUT, Closed::Idle)
            };
            tokio::select! {
                _ = tokio::time::sleep_until(s.idle_since + limit) => return why,
                _ = rx.changed() => {}
            }
        }
    }
}

/// A request in flight.
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.0.send_modify(|s| {
            s.in_flight -= 1;
            if s.in_flight == 0 {
                s.idle_since = Instant::now();
            }
        });
    }
}

struct Entry {
    id: u64,
    peer: IpAddr,
    activity: Arc<Activity>,
    evict: CancellationToken,
    /// Fires (with an error) when the connection's socket is closed.
    closed: oneshot::Receiver<()>,
}

struct Open {
    next_id: u64,
    entries: Vec<Entry>,
    refusals: Throttle,
}

/// Every open admin connection. A `Vec`: there are at most `MAX_CONNECTIONS`.
pub struct Table {
    open: Mutex<Open>,
    telemetry: Telemetry,
}

/// A connection's place in the table; gives it back when dropped, which
/// is when the connection's task ends and its socket is closed.
pub struct Slot {
    table: Arc<Table>,
    id: u64,
    pub activity: Arc<Activity>,
    /// Cancelled when a newcomer takes this connection's place.
    pub evict: CancellationToken,
    _closed: oneshot::Sender<()>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.table.remove(self.id);
    }
}

/// An open connection as admission sees it.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    peer: IpAddr,
    /// None while a request is in flight: a busy connection is never closed.
    idle_since: Option<Instant>,
    /// Opened within `FRESH` and no request yet: its head is likely on its
    /// way (the kubelet's probe), so it gives way only when nothing else can.
    fresh: bool,
}

/// The pure decision for a newcomer from `peer`.
#[derive(Debug, PartialEq)]
enum Decision {
    Admit,
    /// Admit, closing the connection at this index.
    Evict(usize),
    Refuse(Limit),
}

fn decide(open: &[Candidate], peer: IpAddr, cap: usize) -> Decision {
    let count = |p: IpAddr| open.iter().filter(|c| c.peer == p).count();
    let idle = || {
        open.iter()
            .enumerate()
            .filter_map(|(i, c)| Some((i, c, c.idle_since?)))
    };
    if count(peer) >= PER_PEER {
        // The peer's own longest-idle connection makes room.
        return idle()
            .filter(|(_, c, _)| c.peer == peer)
            .min_by_key(|(_, c, since)| (c.fresh, *since))
            .map_or(Decision::Refuse(Limit::PerPeer), |(i, _, _)| {
                Decision::Evict(i)
            });
    }
    if open.len() >= cap {
        // The longest-idle connection of the address holding the most:
        // a client with one connection is the last to lose it.
        return idle()
            .min_by_key(|(_, c, since)| (c.fresh, std::cmp::Reverse(count(c.peer)), *since))
            .map_or(Decision::Refuse(Limit::Total), |(i, _, _)| {
                Decision::Evict(i)
            });
    }
    Decision::Admit
}

impl Table {
    /// `log_every`: at most one warning about refusals per this long.
    pub fn new(telemetry: Telemetry, log_every: Duration) -> Arc<Table> {
        let open = Open {
            next_id: 0,
            entries: Vec::new(),
            refusals: Throttle::new(log_every),
        };
        Arc::new(Table {
            open: Mutex::new(open),
            telemetry,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admit a newcomer from `ip` if `cap` and `PER_PEER` allow, closing an
    /// idle connection to make room if need be. None: refused, counted and
    /// logged. Some(slot, victim): serve it; when it took an idle
    /// connection's place, wait for `victim` (that one's socket closing)
    /// before accepting more.
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        cap: usize,
    ) -> Option<(Slot, Option<oneshot::Receiver<()>>)> {
        let peer = peer_key(ip);
        let mut open = self.lock();
        let now = Instant::now();
        let view: Vec<_> = open
            .entries
            .iter()
            .map(|e| {
                let s = *e.activity.0.borrow();
                Candidate {
                    peer: e.peer,
                    idle_since: (s.in_flight == 0).then_some(s.idle_since),
                    fresh: s.started == 0 && now < s.idle_since + FRESH,
                }
            })
            .collect();
        let victim = match decide(&view, peer, cap) {
            Decision::Refuse(limit) => {
                self.telemetry
                    .admin_connection_refused(limit.metric_label());
                if let Some(suppressed) = open.refusals.ready() {
                    tracing::warn!(
                        peer = %ip,
                        limit = limit.metric_label(),
                        open = open.entries.len(),
                        suppressed,
                        "admin connection refused: every connection under the cap is busy (suppressed: refusals not logged since the last line)"
                    );
                }
                return None;
            }
            Decision::Admit => None,
            Decision::Evict(i) => {
                let victim = open.entries.swap_remove(i);
                victim.evict.cancel();
                self.telemetry
                    .admin_connection_closed(Closed::Evicted.metric_label());
                Some(victim.closed)
            }
        };
        open.next_id += 1;
        let (tx, rx) = oneshot::channel();
        let entry = Entry {
            id: open.next_id,
            peer,
            activity: Activity::new(),
            evict: CancellationToken::new(),
            closed: rx,
        };
        let slot = Slot {
            table: self.clone(),
            id: entry.id,
            activity: entry.activity.clone(),
            evict: entry.evict.clone(),
            _closed: tx,
        };
        open.entries.push(entry);
        self.telemetry.admin_connections(open.entries.len());
        Some((slot, victim))
    }

    fn remove(&self, id: u64) {
        let mut open = self.lock();
        // An evicted connection left the table when it was chosen.
        if let Some(i) = open.entries.iter().position(|e| e.id == id) {
            open.entries.swap_remove(i);
            self.telemetry.admin_connections(open.entries.len());
        }
    }

    #[cfg(test)]
    fn open(&self) -> usize {
        self.lock().entries.len()
    }
}

/// At most one log line per `every`, saying how many were held back.
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    pub fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// Some(lines held back since the last one) when a line may go out now.
    pub fn ready(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|last| now < last + self.every) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests;
