//! Ports that cannot race. Every test runs in one process, many at a time,
//! and each binds ports: a port picked, dropped and bound again later may
//! be someone else's by then. So:
//!
//! - a server in the test binds `127.0.0.1:0` and keeps the listener (or
//!   hands it over: `backstop::start` takes one);
//! - a port that must refuse connections is held by a socket that never
//!   listens ([`Closed`]);
//! - a server that goes down and comes back on the same port holds it
//!   meanwhile ([`Reserved`]);
//! - a child process that must be told its port before it binds it is
//!   started again on another port if that one was taken meanwhile
//!   (`process::spawn_on_free_port`).

use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpSocket};

/// A port on 127.0.0.1 that nothing listens on and nothing else can take
/// while this lives: connecting is refused.
pub struct Closed(TcpSocket);

impl Closed {
    pub fn new() -> Closed {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
        Closed(socket)
    }

    pub fn port(&self) -> u16 {
        self.0.local_addr().unwrap().port()
    }
}

/// A port on 127.0.0.1 held for as long as this lives, that its holder
/// can listen on, stop listening on (connecting is then refused) and
/// listen on again. Every socket on it shares it through `SO_REUSEPORT`,
/// which a socket of anyone else (without the option) cannot join.
pub struct Reserved(TcpSocket);

impl Reserved {
    pub fn new() -> Reserved {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseport(true).unwrap();
        socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
        Reserved(socket)
    }

    pub fn addr(&self) -> SocketAddr {
        self.0.local_addr().unwrap()
    }

    /// A listener on the port; dropping it closes the port again.
    pub fn listen(&self) -> TcpListener {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseport(true).unwrap();
        socket
            .bind(self.addr())
            .unwrap_or_else(|e| panic!("listening on {} again: {e}", self.addr()));
        socket.listen(1024).unwrap()
    }
}

/// A port nothing listened on a moment ago, for a child process to be told
/// before it binds it; see `process::spawn_on_free_port` for what to do
/// when the child finds it taken.
pub fn pick() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
