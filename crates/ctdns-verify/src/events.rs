//! The `event` names of the two operator warnings the verifier logs through `tracing` (the
//! rest of the event stream is the application's; ctdns documents the whole schema).
//!
//! Both are logged with the target `ctdns::tls::verifier`, so filters and SIEM rules written
//! for ctdns keep matching whichever crate emits them.

/// `event` of a certificate refusal (WARN, once per refused certificate).
pub const REFUSAL: &str = "refusal";
/// `event` of a stale (or undated) CT log list (WARN, at most once an hour per verifier).
pub const LOG_LIST_STALE: &str = "log_list_stale";

/// The `tracing` target of both events.
pub const TARGET: &str = "ctdns::tls::verifier";
