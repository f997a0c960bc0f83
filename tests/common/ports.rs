//! Free loopback ports for the servers tests start (shared by `unbound.rs` and
//! `servers.rs`).
#![allow(dead_code)]

use std::net::TcpListener;

/// A free loopback TCP port (bound, then released), never the same one twice in this test
/// process: tests run in parallel, and a port released by one server-to-be could otherwise be
/// handed to another, which would then share it (unbound binds with SO_REUSEPORT by default)
/// and answer the other test's client with its own certificate.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    for _ in 0..1000 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
    panic!("no loopback port that was not handed out before");
}
