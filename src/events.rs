//! The operator event stream: the log lines a SIEM keys on, each carrying a field `event`
//! with one of the names below. The schema (fields per event) is documented in README.md
//! ("Event stream") and is stable: fields may be added, never renamed or removed.
//!
//! With `log.format = "json"` each event is one JSON object per line, its fields under
//! `fields` (tracing-subscriber's JSON layout):
//! `{"timestamp":"…","level":"WARN","fields":{"event":"refusal","upstream":"…",…,"message":"…"},"target":"ctdns::tls::verifier"}`.
//!
//! | `event` | level | emitted by |
//! |---|---|---|
//! | `refusal` | WARN | the verifier, once per refused certificate ([`crate::tls::verifier`]) |
//! | `upstream_down` | WARN | the pool, when an upstream that was up fails ([`upstream_down`]) |
//! | `upstream_up` | INFO | the pool, when an upstream that was down succeeds ([`upstream_up`]) |
//! | `log_list_stale` | WARN (ERROR when refusing) | `ctdns serve` at startup, and the verifier at most once an hour while the list is stale |
//! | `config_reload` | INFO / ERROR | `ctdns serve` on SIGHUP (`crate::cli::reload`), with `result`, `config`, and `generation` or `error` |

pub use ctdns_verify::events::{LOG_LIST_STALE, REFUSAL};
/// `event` of an upstream starting to fail.
pub const UPSTREAM_DOWN: &str = "upstream_down";
/// `event` of an upstream recovering.
pub const UPSTREAM_UP: &str = "upstream_up";
/// `event` of a configuration reload attempt.
pub const CONFIG_RELOAD: &str = "config_reload";

/// Log that `upstream` (its label, e.g. `dot://192.0.2.1:853`) failed after being up:
/// fields `event`, `upstream`, `error` (the failure) and `rule` (the refusal rule when the
/// certificate was refused, else `-`).
pub fn upstream_down(upstream: &str, error: &crate::upstream::UpstreamError) {
    let rule = error.refusal().map(|r| r.rule()).unwrap_or("-");
    tracing::warn!(
        event = UPSTREAM_DOWN,
        upstream,
        rule,
        error = %error,
        "upstream down: it failed after being up; it is tried again after its backoff"
    );
}

/// Log that `upstream` answered again after being down: fields `event`, `upstream`.
pub fn upstream_up(upstream: &str) {
    tracing::info!(
        event = UPSTREAM_UP,
        upstream,
        "upstream up: it answered again"
    );
}
