//! The `ctdns demo` scenario: the rogue-resolver scenario played offline on loopback with the
//! real stub, pool, transport and verifier, against the test kit's in-process DoT server
//! ([`crate::testkit::TestServer`]).

pub mod scenario;
