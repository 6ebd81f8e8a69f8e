//! The simulated application behind the probes: how a release answers at a
//! given virtual instant. A good release is noisy the way real ones are
//! (rare errors, log-normal latency with occasional spikes, a cold start,
//! one short outage); a bad release adds its fault from `onset` on. Seeded,
//! so every run is the same.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;
use tokio::time::Instant;

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

/// What one request gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Answer {
    /// Nothing listens (starting, or the container is down).
    Refused,
    /// Accepted, never answered.
    Hang,
    /// An error status after this long.
    Status(u16, Duration),
    /// A good answer after this long.
    Ok(Duration),
}

/// Health endpoints answer from memory; analytics ones query a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Health,
    Analytics,
}

/// What is wrong with a bad release.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// This fraction of requests answer 500.
    Errors(f64),
    /// Every answer takes this many times as long.
    Slower(f64),
    /// The container crashes shortly after every start and the kubelet
    /// restarts it after a doubling back-off (10 s, 20 s, 40 s, ...).
    CrashLoop,
}

/// A good release's noise.
#[derive(Debug, Clone, Copy)]
pub struct Noise {
    /// Random 500s among all requests.
    pub error_rate: f64,
    /// Median latency of health and analytics answers.
    pub health_median: Duration,
    pub analytics_median: Duration,
    /// Spread: σ of the latency's logarithm.
    pub sigma: f64,
    /// Fraction of analytics answers that take `spike` (a slow query).
    pub spike_rate: f64,
    pub spike: Duration,
    /// Nothing listens for this long after a (re)start.
    pub listening_after: Duration,
    /// Then answers are slower by up to `cold_extra`, halving every `cold_half_life`.
    pub cold_extra: Duration,
    pub cold_half_life: Duration,
}

/// The noise of the soak: 0.05 % errors, analytics around 40 ms
/// (p95 ≈ 90 ms) with 1 % of 150 ms queries, 12 s to start listening and
/// a cold tail that starts at +600 ms.
pub const NOISE: Noise = Noise {
    error_rate: 0.0005,
    health_median: Duration::from_millis(3),
    analytics_median: Duration::from_millis(40),
    sigma: 0.5,
    spike_rate: 0.01,
    spike: Duration::from_millis(150),
    listening_after: Duration::from_secs(12),
    cold_extra: Duration::from_millis(600),
    cold_half_life: Duration::from_secs(4),
};

/// How long a crash-looping container serves before it crashes again.
const CRASH_AFTER: Duration = Duration::from_secs(5);
/// The kubelet's first restart back-off; it doubles up to five minutes.
const FIRST_BACKOFF: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

pub struct App {
    rng: StdRng,
    noise: Noise,
    /// When the release's container first started.
    deployed: Instant,
    /// Total outages (answers hang): start and length.
    blips: Vec<(Instant, Duration)>,
    fault: Option<(Instant, Fault)>,
    /// When the container started: first, then after each crash.
    starts: Vec<Instant>,
}

impl App {
    pub fn new(seed: u64, noise: Noise, deployed: Instant) -> App {
        App {
            rng: StdRng::seed_from_u64(seed),
            noise,
            deployed,
            blips: Vec::new(),
            fault: None,
            starts: vec![deployed],
        }
    }

    /// Hang every request for `len` from `at` on.
    pub fn blip(mut self, at: Instant, len: Duration) -> App {
        self.blips.push((at, len));
        self
    }

    /// Turn bad at `onset`.
    pub fn fault(mut self, onset: Instant, fault: Fault) -> App {
        self.fault = Some((onset, fault));
        if fault == Fault::CrashLoop {
            // The kubelet's schedule, decided up front: run, crash, wait, start.
            let mut start = onset;
            self.starts = vec![onset];
            let mut backoff = FIRST_BACKOFF;
            for _ in 0..12 {
                start += CRASH_AFTER + backoff;
                self.starts.push(start);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        self
    }

    /// Container restarts that happened in `(after, upto]`.
    pub fn restarts_between(&self, after: Instant, upto: Instant) -> u32 {
        let n = self.starts[1..]
            .iter()
            .filter(|s| **s > after && **s <= upto)
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// When the `n`-th restart (1-based) happens, if it does.
    pub fn restart(&self, n: usize) -> Option<Instant> {
        self.starts.get(n).copied()
    }

    /// The answer to a request arriving at `at`.
    pub fn answer(&mut self, endpoint: Endpoint, at: Instant) -> Answer {
        let fault = self.fault.filter(|(onset, _)| at >= *onset).map(|f| f.1);
        // A crash-looping container dies before it ever listens.
        let up = at.saturating_duration_since(self.deployed);
        if fault == Some(Fault::CrashLoop) || up < self.noise.listening_after {
            return Answer::Refused;
        }
        if self
            .blips
            .iter()
            .any(|(from, len)| at >= *from && at < *from + *len)
        {
            return Answer::Hang;
        }
        let mut latency = self.latency(endpoint);
        // A cold process: caches empty, code not yet compiled.
        let warming = up - self.noise.listening_after;
        let halvings = warming.as_secs_f64() / self.noise.cold_half_life.as_secs_f64();
        latency += self.noise.cold_extra.mul_f64(0.5f64.powf(halvings));
        if let Some(Fault::Slower(k)) = fault {
            latency = latency.mul_f64(k);
        }
        let error_rate = match fault {
            Some(Fault::Errors(rate)) => rate + self.noise.error_rate,
            _ => self.noise.error_rate,
        };
        if self.rng.random_bool(error_rate.min(1.0)) {
            return Answer::Status(500, latency);
        }
        Answer::Ok(latency)
    }

    /// Log-normal around the endpoint's median; analytics have slow queries.
    fn latency(&mut self, endpoint: Endpoint) -> Duration {
        let median = match endpoint {
            Endpoint::Health => self.noise.health_median,
            Endpoint::Analytics => {
                if self.rng.random_bool(self.noise.spike_rate) {
                    return self.noise.spike;
                }
                self.noise.analytics_median
            }
        };
        // Box–Muller: one standard normal from two uniforms.
        let u1: f64 = 1.0 - self.rng.random::<f64>();
        let u2: f64 = self.rng.random();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        median.mul_f64((self.noise.sigma * z).exp()).max(MS / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_noise_has_the_shape_it_claims() {
        let t0 = Instant::now();
        let mut app = App::new(7, NOISE, t0);
        let warm = t0 + 120 * S;
        let mut ok = Vec::new();
        let mut errors = 0;
        for _ in 0..200_000 {
            match app.answer(Endpoint::Analytics, warm) {
                Answer::Ok(l) => ok.push(l),
                Answer::Status(..) => errors += 1,
                other => panic!("{other:?}"),
            }
        }
        ok.sort();
        let p = |q: f64| ok[(q * ok.len() as f64) as usize];
        assert!((35 * MS..45 * MS).contains(&p(0.5)), "p50 {:?}", p(0.5));
        assert!((80 * MS..100 * MS).contains(&p(0.95)), "p95 {:?}", p(0.95));
        let rate = f64::from(errors) / 200_000.0;
        assert!((0.0003..0.0007).contains(&rate), "error rate {rate}");
        // Refused while starting, then cold, then warm.
        assert_eq!(app.answer(Endpoint::Health, t0 + 11 * S), Answer::Refused);
        let Answer::Ok(cold) = app.answer(Endpoint::Health, t0 + 12 * S) else {
            panic!()
        };
        assert!(cold > 550 * MS, "{cold:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_crash_loop_restarts_on_the_kubelet_back_off() {
        let t0 = Instant::now();
        let mut app = App::new(1, NOISE, t0).fault(t0, Fault::CrashLoop);
        // Starts at 0, crashes at 5, restarts at 15, 40, 85, 170 s.
        let at = |n| app.restart(n).map(|i: Instant| i - t0);
        assert_eq!(
            (at(1), at(2), at(3), at(4)),
            (Some(15 * S), Some(40 * S), Some(85 * S), Some(170 * S))
        );
        assert_eq!(app.restarts_between(t0, t0 + 85 * S), 3);
        assert_eq!(app.answer(Endpoint::Health, t0 + 20 * S), Answer::Refused);
    }
}
