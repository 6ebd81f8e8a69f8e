use super::*;

const NOISE: Noise = Noise {
    error_rate: 0.01,
    latency: Duration::from_millis(40),
    jitter: 0.5,
    spike_rate: 0.01,
    spike: Duration::from_millis(150),
    cold: Duration::from_millis(600),
    cold_half_life: Duration::from_secs(1),
    seed: 9,
};

fn state() -> State {
    State {
        version: "v1".into(),
        behaviour: Behaviour::Healthy,
        previous: None,
        leaked: 0,
        rollbacks: Vec::new(),
        pages: Vec::new(),
        refusing: false,
        webhook_failures: Default::default(),
        since: Instant::now(),
        rng: StdRng::seed_from_u64(0),
        orders: 0,
    }
}

#[test]
fn a_share_of_orders_fails_evenly() {
    let mut s = state();
    s.switch(Behaviour::FailingOrders { share: 0.08 });
    let failed: Vec<u64> = (1..=100).filter(|_| s.take_order()).collect();
    assert_eq!(failed.len(), 8, "{failed:?}");
    assert_eq!(failed[..2], [13, 25]);
    s.switch(Behaviour::Healthy);
    assert!((0..100).all(|_| !s.take_order()));
}

#[tokio::test]
async fn it_serves_its_own_metrics_of_user_requests() {
    crate::init_tls();
    let app = SampleApp::start("v1").await.unwrap();
    app.deploy("v2", Behaviour::FailingOrders { share: 0.5 });
    let c = reqwest::Client::new();
    for _ in 0..4 {
        c.post(app.url("/api/orders")).send().await.unwrap();
    }
    c.get(app.url("/health")).send().await.unwrap();
    let text = c
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = |code: &str, path: &str, method: &str| {
        format!("http_requests_total{{code=\"{code}\",method=\"{method}\",path=\"{path}\"}} ")
    };
    assert!(
        text.contains(&(line("500", "/api/orders", "POST") + "2")),
        "{text}"
    );
    assert!(
        text.contains(&(line("201", "/api/orders", "POST") + "2")),
        "{text}"
    );
    assert!(
        text.contains(&(line("200", "/health", "GET") + "1")),
        "{text}"
    );
    assert!(!text.contains("path=\"/metrics\""), "{text}");
}

#[tokio::test(start_paused = true)]
async fn noise_is_log_normal_with_spikes_errors_and_a_cold_start() {
    let mut s = state();
    s.switch(Behaviour::Noisy(NOISE));
    let (cold, _) = s.roll(&NOISE, false);
    assert!(cold >= Duration::from_millis(600), "{cold:?}");
    tokio::time::advance(Duration::from_secs(30)).await;
    let mut analytics = Vec::new();
    let mut errors = 0;
    for _ in 0..100_000 {
        let (latency, error) = s.roll(&NOISE, false);
        analytics.push(latency);
        errors += u32::from(error);
    }
    analytics.sort();
    let p = |q: f64| analytics[(q * analytics.len() as f64) as usize];
    let ms = Duration::from_millis;
    assert!((ms(37)..ms(43)).contains(&p(0.5)), "p50 {:?}", p(0.5));
    assert!((ms(80)..ms(100)).contains(&p(0.95)), "p95 {:?}", p(0.95));
    assert!((900..1100).contains(&errors), "{errors} errors");
    let (health, _) = s.roll(&NOISE, true);
    assert!(health < ms(40), "{health:?}");
    // The same seed, the same answers.
    let again = |s: &mut State| {
        s.switch(Behaviour::Noisy(NOISE));
        (0..5).map(|_| s.roll(&NOISE, false)).collect::<Vec<_>>()
    };
    assert_eq!(again(&mut s), again(&mut s));
}
