//! The local stub server: UDP and TCP listeners for local clients, and the answer cache.
//!
//! A query takes this path: UDP or TCP listener → [`handler::QueryHandler`]
//! ([`message::classify`]: FORMERR, NOTIMP or drop for malformed messages) → [`cache::Cache`]
//! → upstream [`Transport`](crate::upstream::Transport) → [`answer::Answer`] (checked,
//! normalized, cached) → response, truncated for UDP clients when too large.
//!
//! ```no_run
//! # async fn demo(upstream: std::sync::Arc<dyn ctdns::upstream::Transport>) -> Result<(), ctdns::stub::StubError> {
//! let stub = ctdns::stub::bind(ctdns::stub::StubOptions::default()).await?;
//! stub.run(upstream, async { let _ = tokio::signal::ctrl_c().await; }).await;
//! # Ok(()) }
//! ```

pub mod answer;
pub mod cache;
pub mod error;
pub mod handler;
pub mod message;
pub mod metrics;
pub mod options;
pub mod ratelimit;
pub mod refresh;
pub mod server;
mod shutdown;
mod tcp;
mod udp;

pub use cache::{Cache, Lookup};
pub use error::{Protocol, StubError};
pub use handler::QueryHandler;
pub use message::CacheKey;
pub use metrics::{Metrics, MetricsSnapshot};
pub use options::{CacheOptions, RateLimitOptions, StubOptions};
pub use server::{bind, Stub, StubHandle};
