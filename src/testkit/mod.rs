//! The test kit (cargo feature `testkit`): the test PKI ([`crate::pki`]) and one configurable
//! in-process DNS-over-TLS / DNS-over-HTTPS server ([`TestServer`]) with knobs for
//! misbehaviour ([`Fault`]: rogue chain, stalled handshake, stall, reset, close_notify,
//! fatal alert, GOAWAY, RST_STREAM, wrong ID, truncated and oversized responses), plus a
//! minimal TLS ping server ([`ping`]) for handshake-only tests, and a recorder of the
//! verifier's refusals ([`RefusalLog`]).
//!
//! Used by `ctdns pki`, `ctdns demo`, the benchmarks and the integration tests. Nothing here
//! is meant for production: it exists to be the far end of a real TLS connection whose
//! certificate ctdns has to judge.

pub mod answers;
pub mod ping;
pub mod refusals;
pub mod server;

pub use crate::pki;
pub use answers::{big_ip, expected_ip, AnswerTable, Answers};
pub use refusals::{ObservedRefusal, RefusalLog};
pub use server::{Builder, Counters, Fault, Protocol, ServerCert, ServerStats, TestServer};

use std::net::SocketAddr;

/// Why a test server could not start, or a table entry was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// rustls refused the certificate chain or key (e.g. the key does not match the leaf).
    #[error("test server: TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The listening socket could not be bound.
    #[error("test server: bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A name given to [`AnswerTable::insert`] is not a DNS name.
    #[error("test server: `{name}` is not a DNS name")]
    BadName {
        /// The name as given.
        name: String,
    },
}

/// Bind a listener on `addr`; the listener and the address it got.
async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), ServerError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;
    Ok((listener, bound))
}
