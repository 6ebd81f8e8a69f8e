//! Rollback guards: at most once per revision, only while the revision is
//! younger than `bake`, not within `cooldown` of the last rollback, one at a
//! time, and a failed attempt is tried again after a pause while the rule
//! still fires. Pure state over the monotonic clock, so it is tested in
//! virtual time.

use serde::Serialize;
use std::time::Duration;
use tokio::time::Instant;

/// How long to wait before trying a failed rollback again.
pub const RETRY_FAILED_AFTER: Duration = Duration::from_secs(30);

/// Why a rollback was held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Prevented {
    /// This revision was already rolled back (or a dry run already said it would be).
    AlreadyRolledBack,
    /// The revision is older than `bake`: it has proven itself; page only.
    Baked,
    /// The last rollback was less than `cooldown` ago.
    Cooldown,
    /// Too many rollbacks leave the process per minute.
    RateLimited,
    /// The Deployment has no earlier revision to go back to (or only ones
    /// that were rolled back from before).
    NoPreviousRevision,
    /// The Deployment is paused.
    Paused,
    /// Automatic actions are paused through the admin API (a maintenance window).
    Maintenance,
    /// The previous revision's template is the current one.
    TemplateUnchanged,
    /// This pod's revision is not the Deployment's newest any more.
    NotNewestRevision,
    /// backstop cannot roll back here (a permission is missing, the API
    /// server did not answer at start): it only pages.
    PageOnly,
    /// Argo CD or Flux syncs the Deployment and its automatic sync was not
    /// (or, with `gitops: page`, is never) stopped: a rollback would not stick.
    GitOps,
    /// The Deployment's `backstop.dev/paused-until` annotation holds every
    /// replica's rollbacks (a cluster-wide maintenance window).
    Hold,
}

impl Prevented {
    pub fn metric_label(self) -> &'static str {
        match self {
            Prevented::AlreadyRolledBack => "already_rolled_back",
            Prevented::Baked => "baked",
            Prevented::Cooldown => "cooldown",
            Prevented::RateLimited => "rate_limited",
            Prevented::NoPreviousRevision => "no_previous_revision",
            Prevented::Paused => "paused",
            Prevented::Maintenance => "maintenance",
            Prevented::TemplateUnchanged => "template_unchanged",
            Prevented::NotNewestRevision => "not_newest_revision",
            Prevented::PageOnly => "page_only",
            Prevented::GitOps => "gitops",
            Prevented::Hold => "hold",
        }
    }
}

/// What the guard says about a rollback asked for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Go,
    Prevented(Prevented),
    /// One is already in flight, or the last one failed moments ago:
    /// nothing to report, it will be decided again later.
    Wait,
}

/// How a rollback that started ended, as far as the guard cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// The release was rolled back: cooldown starts.
    RolledBack,
    /// Nothing more to do for this revision (a dry run said what it would
    /// do, another replica already did it, or the backend refused for good).
    Settled,
    /// It failed; try again after a pause while the rule still fires.
    Failed,
}

#[derive(Debug)]
pub struct Guard {
    revision_since: Instant,
    bake: Duration,
    cooldown: Duration,
    rolled_back: bool,
    in_flight: bool,
    last_rollback: Option<Instant>,
    last_failure: Option<Instant>,
}

impl Guard {
    pub fn new(revision_since: Instant, bake: Duration, cooldown: Duration) -> Guard {
        Guard {
            revision_since,
            bake,
            cooldown,
            rolled_back: false,
            in_flight: false,
            last_rollback: None,
            last_failure: None,
        }
    }

    /// A rollback a person asked for: bake, cooldown and the pause after a
    /// failure are theirs to judge; one at a time and once per revision
    /// still hold.
    pub fn check_manual(&self) -> Check {
        if self.in_flight {
            Check::Wait
        } else if self.rolled_back {
            Check::Prevented(Prevented::AlreadyRolledBack)
        } else {
            Check::Go
        }
    }

    /// New `bake` and `cooldown` from a reloaded configuration; what this
    /// revision went through stays.
    pub fn reconfigure(&mut self, bake: Duration, cooldown: Duration) {
        self.bake = bake;
        self.cooldown = cooldown;
    }

    pub fn check(&self, now: Instant) -> Check {
        if self.in_flight {
            return Check::Wait;
        }
        if self.rolled_back {
            return Check::Prevented(Prevented::AlreadyRolledBack);
        }
        if now.saturating_duration_since(self.revision_since) >= self.bake {
            return Check::Prevented(Prevented::Baked);
        }
        if let Some(last) = self.last_rollback
            && now.saturating_duration_since(last) < self.cooldown
        {
            return Check::Prevented(Prevented::Cooldown);
        }
        if let Some(failed) = self.last_failure
            && now.saturating_duration_since(failed) < RETRY_FAILED_AFTER
        {
            return Check::Wait;
        }
        Check::Go
    }

    /// Whether this revision was rolled back (or settled) already.
    pub fn rolled_back(&self) -> bool {
        self.rolled_back
    }

    pub fn started(&mut self) {
        self.in_flight = true;
    }

    /// Record the outcome of the rollback that `started`.
    pub fn finished(&mut self, now: Instant, done: Done) {
        self.in_flight = false;
        match done {
            Done::RolledBack => {
                self.rolled_back = true;
                self.last_rollback = Some(now);
                self.last_failure = None;
            }
            Done::Settled => self.rolled_back = true,
            Done::Failed => self.last_failure = Some(now),
        }
    }

    /// A new revision is running: it may be rolled back once again, but the
    /// cooldown since the last rollback still holds.
    pub fn new_revision(&mut self, since: Instant) {
        self.revision_since = since;
        self.rolled_back = false;
        self.last_failure = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::advance;

    const MIN: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn once_per_revision() {
        let mut g = Guard::new(Instant::now(), 30 * MIN, 10 * MIN);
        assert_eq!(g.check(Instant::now()), Check::Go);
        g.started();
        assert_eq!(g.check(Instant::now()), Check::Wait);
        g.finished(Instant::now(), Done::RolledBack);
        advance(20 * MIN).await;
        assert_eq!(
            g.check(Instant::now()),
            Check::Prevented(Prevented::AlreadyRolledBack)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_person_may_roll_back_a_baked_revision_but_only_once() {
        let mut g = Guard::new(Instant::now(), 30 * MIN, 10 * MIN);
        g.started();
        g.finished(Instant::now(), Done::Failed);
        advance(40 * MIN).await;
        assert_eq!(g.check(Instant::now()), Check::Prevented(Prevented::Baked));
        assert_eq!(g.check_manual(), Check::Go);
        g.started();
        assert_eq!(g.check_manual(), Check::Wait);
        g.finished(Instant::now(), Done::RolledBack);
        assert_eq!(
            g.check_manual(),
            Check::Prevented(Prevented::AlreadyRolledBack)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn bake_ends_automatic_rollback() {
        let g = Guard::new(Instant::now(), 30 * MIN, 10 * MIN);
        advance(30 * MIN - Duration::from_millis(1)).await;
        assert_eq!(g.check(Instant::now()), Check::Go);
        advance(Duration::from_millis(1)).await;
        assert_eq!(g.check(Instant::now()), Check::Prevented(Prevented::Baked));
    }

    #[tokio::test(start_paused = true)]
    async fn failure_is_retried_after_a_pause() {
        let mut g = Guard::new(Instant::now(), 30 * MIN, 10 * MIN);
        g.started();
        g.finished(Instant::now(), Done::Failed);
        assert_eq!(g.check(Instant::now()), Check::Wait);
        advance(RETRY_FAILED_AFTER).await;
        assert_eq!(g.check(Instant::now()), Check::Go);
    }

    #[tokio::test(start_paused = true)]
    async fn cooldown_holds_back_a_second_rollback() {
        let mut g = Guard::new(Instant::now(), 30 * MIN, 10 * MIN);
        g.started();
        g.finished(Instant::now(), Done::RolledBack);
        advance(5 * MIN).await;
        g.new_revision(Instant::now());
        assert_eq!(
            g.check(Instant::now()),
            Check::Prevented(Prevented::Cooldown)
        );
        advance(5 * MIN).await;
        assert_eq!(g.check(Instant::now()), Check::Go);
    }
}
