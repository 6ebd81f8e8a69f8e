//! User traffic for the demo: orders posted at a steady rate, as a shop's
//! customers would, so that the app's own request counters have something
//! to count. At most `IN_FLIGHT` requests at once: a hung app slows the
//! customers down instead of piling up tasks.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

const IN_FLIGHT: usize = 32;

/// Post to `url` `per_second` times a second until the handle is aborted.
pub fn orders(url: String, per_second: u32) -> JoinHandle<()> {
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        let mut tick = tokio::time::interval(Duration::from_secs(1) / per_second.max(1));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let request = client
                .post(&url)
                .header("content-type", "application/json")
                .body(r#"{"sku": "espresso-beans-1kg", "quantity": 1}"#);
            tokio::spawn(async move {
                // A failed order is the app's answer to count, not ours.
                let _ = request.send().await;
                drop(slot);
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::app::SampleApp;

    #[tokio::test]
    async fn posts_orders_at_the_rate_asked() {
        crate::init_tls();
        let app = SampleApp::start("v1").await.unwrap();
        let load = orders(app.url("/api/orders"), 50);
        tokio::time::sleep(Duration::from_millis(1000)).await;
        load.abort();
        let text = reqwest::get(app.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let n: f64 = text
            .lines()
            .find(|l| {
                l.starts_with(
                    "http_requests_total{code=\"201\",method=\"POST\",path=\"/api/orders\"}",
                )
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no orders counted: {text}"));
        // Never faster than asked; slower only as much as a busy machine
        // delays the ticks.
        assert!((10.0..=52.0).contains(&n), "{n} orders in 1 s at 50/s");
    }
}
