use super::*;

fn ip(last: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, last])
}

fn idle(peer: IpAddr, since: Instant) -> Candidate {
    Candidate {
        peer,
        idle_since: Some(since),
        fresh: false,
    }
}

fn busy(peer: IpAddr) -> Candidate {
    Candidate {
        peer,
        idle_since: None,
        fresh: false,
    }
}

#[tokio::test(start_paused = true)]
async fn a_newcomer_takes_the_place_of_its_own_longest_idle_connection() {
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let mut open: Vec<_> = (0..PER_PEER as u64)
        .map(|s| idle(ip(1), at(s + 1)))
        .collect();
    open.push(idle(ip(2), at(0)));
    // ip(2)'s connection is older, but ip(1) is over its own cap.
    assert_eq!(decide(&open, ip(1), 64), Decision::Evict(0));
    open[0].fresh = true;
    assert_eq!(decide(&open, ip(1), 64), Decision::Evict(1));
    for entry in &mut open[..PER_PEER] {
        *entry = busy(ip(1));
    }
    assert_eq!(decide(&open, ip(1), 64), Decision::Refuse(Limit::PerPeer));
    assert_eq!(decide(&open, ip(3), 64), Decision::Admit);
}

#[tokio::test(start_paused = true)]
async fn at_the_total_cap_the_busiest_address_gives_way() {
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    // One old idle connection of a lone client; three newer of another.
    let mut open = vec![
        idle(ip(1), at(0)),
        idle(ip(2), at(3)),
        idle(ip(2), at(1)),
        busy(ip(2)),
    ];
    assert_eq!(decide(&open, ip(9), 4), Decision::Evict(2));
    // A connection whose request is on its way goes last.
    open[1].fresh = true;
    open[2].fresh = true;
    assert_eq!(decide(&open, ip(9), 4), Decision::Evict(0));
    let all_busy = vec![busy(ip(1)), busy(ip(2))];
    assert_eq!(decide(&all_busy, ip(9), 2), Decision::Refuse(Limit::Total));
    assert_eq!(decide(&all_busy, ip(9), 3), Decision::Admit);
}

#[tokio::test(start_paused = true)]
async fn deadlines_run_from_the_connection_and_from_the_last_answer() {
    let a = Activity::new();
    let start = Instant::now();
    assert_eq!(a.expired().await, Closed::NoRequest);
    assert_eq!(start.elapsed(), FIRST_REQUEST_TIMEOUT);

    let a = Activity::new();
    let busy = a.begin();
    let watch = tokio::spawn({
        let a = a.clone();
        async move { a.expired().await }
    });
    // A long request is not idleness.
    tokio::time::sleep(IDLE_TIMEOUT * 3).await;
    assert!(!watch.is_finished());
    let answered = Instant::now();
    drop(busy);
    assert_eq!(watch.await.unwrap(), Closed::Idle);
    assert_eq!(answered.elapsed(), IDLE_TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn the_table_counts_admits_evicts_and_refuses() {
    let table = Table::new(Telemetry::detached(), Duration::from_secs(10));
    let mut slots = Vec::new();
    for _ in 0..PER_PEER {
        match table.admit(ip(1), 64) {
            Some((slot, None)) => slots.push(slot),
            _ => panic!("under the caps"),
        }
    }
    let Some((newcomer, Some(closed))) = table.admit(ip(1), 64) else {
        panic!("an idle connection makes room");
    };
    assert!(slots[0].evict.is_cancelled());
    assert_eq!(table.open(), PER_PEER);
    slots.remove(0);
    assert!(closed.await.is_err(), "the victim's socket is gone");
    let text = table.telemetry.encode();
    assert!(text.contains("backstop_admin_connections_closed_total{reason=\"evicted\"} 1"));
    drop(newcomer);
    assert_eq!(table.open(), PER_PEER - 1);
    slots.truncate(0);
    assert_eq!(table.open(), 0);
    assert!(
        table
            .telemetry
            .encode()
            .contains("backstop_admin_connections 0")
    );
}

#[tokio::test(start_paused = true)]
async fn the_throttle_lets_one_line_through_per_period() {
    let mut t = Throttle::new(Duration::from_secs(10));
    assert_eq!(t.ready(), Some(0));
    assert_eq!(t.ready(), None);
    assert_eq!(t.ready(), None);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(t.ready(), Some(2));
}

#[test]
fn ipv6_peers_are_kept_by_their_64() {
    let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
    let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
    assert_eq!(peer_key(a), peer_key(b));
    let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
    assert_eq!(peer_key(mapped), ip(1));
}
