//! Child processes: the backstop binary, and the real Prometheus and
//! Alertmanager. Each is killed (by its id) when its test ends, passed or
//! not, and one that must be told its port is started again on another if
//! that port was taken before it could bind it.

use super::ports;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;
use tokio::time::{Instant, sleep};

/// The backstop binary, built for the tests.
pub fn backstop() -> Command {
    Command::new(env!("CARGO_BIN_EXE_backstop"))
}

/// A child process, killed when dropped.
pub struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    pub fn spawn(command: &mut Command) -> Process {
        Process(
            command
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", command.get_program())),
        )
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Send `signal` (TERM, HUP, ...) through kill(1).
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal} {}", self.id());
    }

    /// Wait for the process to end; its exit code (None: a signal ended it).
    pub fn wait(&mut self) -> Option<i32> {
        self.0.wait().unwrap().code()
    }
}

/// Start a child that must be told its port: `command` builds it for a
/// port, this runs it with stderr to `log` and waits until the child logs
/// a line with `listening` and `127.0.0.1:<port>`. A child that exits
/// because the port was taken meanwhile ("address already in use") is
/// started again on another port. Returns the child and its port.
pub async fn spawn_on_free_port(
    log: &Path,
    listening: &str,
    mut command: impl FnMut(u16) -> Command,
) -> (Process, u16) {
    const WITHIN: Duration = Duration::from_secs(20);
    for _ in 0..10 {
        let port = ports::pick();
        let mut cmd = command(port);
        let what = format!("{:?}", cmd.get_program());
        cmd.stderr(std::fs::File::create(log).unwrap());
        let mut child = Process::spawn(&mut cmd);
        let deadline = Instant::now() + WITHIN;
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if text
                .lines()
                .any(|l| l.contains(listening) && names_port(l, port))
            {
                return (child, port);
            }
            if let Some(status) = child.0.try_wait().unwrap() {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                if text.to_lowercase().contains("address already in use") {
                    break;
                }
                panic!("{what} ended ({status}) before it listened on {port}:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "{what} did not log {listening:?} for 127.0.0.1:{port} within {WITHIN:?} \
                 (does RUST_LOG hide it?):\n{text}"
            );
            sleep(Duration::from_millis(20)).await;
        }
    }
    panic!("ten free ports in a row were taken before the child could bind them")
}

/// `line` names 127.0.0.1:`port`, not a longer port that starts the same.
fn names_port(line: &str, port: u16) -> bool {
    let addr = format!("127.0.0.1:{port}");
    line.match_indices(&addr).any(|(at, _)| {
        !line[at + addr.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}
