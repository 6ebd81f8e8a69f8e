//! Reading the configuration file for a reload, off the async loop: a read
//! can hang (a hung network filesystem), and the loop it would block is the
//! one that must see SIGTERM. One read at a time: a SIGHUP that comes
//! meanwhile waits for it, a poll is skipped.

use crate::config::{self, Config, ConfigError, ConfigErrors};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A read still running after this is logged (once) as stuck.
const STUCK: Duration = Duration::from_secs(10);

/// What asked for a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trigger {
    /// The baseline taken as the daemon starts: compared with, never applied.
    Start,
    /// The periodic look: applied when the contents changed.
    Poll,
    /// SIGHUP: validated and applied whatever the contents.
    Hangup,
}

impl Trigger {
    /// The `trigger` field of reload logs.
    pub(super) fn why(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Poll => "file changed",
            Trigger::Hangup => "SIGHUP",
        }
    }
}

/// What a read found.
pub(super) enum Found {
    /// The baseline, or the same contents as last seen.
    Unchanged,
    /// Unreadable on a poll (a ConfigMap swap in progress?): the next look
    /// will tell.
    Unreadable(ConfigErrors),
    /// A configuration to apply, or the problems to reject it with.
    Loaded(Result<Box<Config>, ConfigErrors>),
}

pub(super) struct Read {
    pub(super) trigger: Trigger,
    /// The contents, for the next poll to compare with; None if unreadable.
    pub(super) bytes: Option<Vec<u8>>,
    pub(super) found: Found,
}

/// Runs reads of the file on the blocking pool, one at a time.
pub(super) struct Reader {
    path: PathBuf,
    task: Option<(Trigger, JoinHandle<Read>)>,
    since: Instant,
    warned: bool,
    /// A SIGHUP came while a read was running.
    hangup_waiting: bool,
}

impl Reader {
    pub(super) fn new(path: PathBuf) -> Reader {
        Reader {
            path,
            task: None,
            since: Instant::now(),
            warned: false,
            hangup_waiting: false,
        }
    }

    /// Start a read, unless one is running: then a SIGHUP waits for it
    /// and a poll is dropped. `seen` is what the last read found.
    pub(super) fn start(&mut self, trigger: Trigger, seen: Option<&Vec<u8>>) {
        if self.task.is_some() {
            self.hangup_waiting |= trigger == Trigger::Hangup;
            let running = self.since.elapsed();
            if running >= STUCK && !self.warned {
                self.warned = true;
                tracing::warn!(
                    file = %self.path.display(),
                    running_s = running.as_secs(),
                    "reading the configuration file does not finish; no reload until it does"
                );
            }
            return;
        }
        let (path, seen) = (self.path.clone(), seen.cloned());
        let task = tokio::task::spawn_blocking(move || read(&path, trigger, seen.as_deref()));
        self.task = Some((trigger, task));
        self.since = Instant::now();
        self.warned = false;
    }

    /// The read that was running, once it ends; never, while none runs.
    /// Cancel-safe: dropped before the end, the read is still there.
    pub(super) async fn finished(&mut self) -> Read {
        let Some((trigger, task)) = &mut self.task else {
            return std::future::pending().await;
        };
        let trigger = *trigger;
        let ended = task.await;
        self.task = None;
        ended.unwrap_or_else(|e| Read {
            trigger,
            bytes: None,
            found: Found::Unreadable(ConfigErrors(vec![ConfigError::new(
                "",
                format!("reading the configuration file failed: {e}"),
            )])),
        })
    }

    /// After a read ended: the SIGHUP that waited for it, if any.
    pub(super) fn resume(&mut self, seen: Option<&Vec<u8>>) {
        if std::mem::take(&mut self.hangup_waiting) {
            self.start(Trigger::Hangup, seen);
        }
    }
}

/// On the blocking pool: read the file and validate it if it is to be
/// applied (validation reads the files it names, which may hang too).
fn read(path: &Path, trigger: Trigger, seen: Option<&[u8]>) -> Read {
    let bytes = match config::read_file(path) {
        Ok(bytes) => bytes,
        // Asked for explicitly: an unreadable file is a rejected reload.
        Err(errors) if trigger == Trigger::Hangup => {
            return Read {
                trigger,
                bytes: None,
                found: Found::Loaded(Err(errors)),
            };
        }
        Err(errors) => {
            return Read {
                trigger,
                bytes: None,
                found: Found::Unreadable(errors),
            };
        }
    };
    let unchanged = match trigger {
        Trigger::Start => true,
        Trigger::Poll => seen == Some(&bytes[..]),
        Trigger::Hangup => false,
    };
    let found = if unchanged {
        Found::Unchanged
    } else {
        Found::Loaded(config::parse_file(path, &bytes).map(Box::new))
    };
    Read {
        trigger,
        bytes: Some(bytes),
        found,
    }
}
