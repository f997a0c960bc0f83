//! Demonstration and test harness pieces: an in-process DNS-over-TLS server and the
//! `ctdns demo` scenario.
//!
//! Nothing here is meant for production: [`dot_server::DotTestServer`] is a small table-driven
//! DoT server for tests, benchmarks and the demo, and [`scenario::run`] plays the rogue-
//! resolver scenario offline on loopback with the real stub, pool, transport and verifier.

pub mod dot_server;
pub mod scenario;
