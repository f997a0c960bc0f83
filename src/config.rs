//! The TOML configuration of `ctdns serve`, and its built-in default.
//!
//! Parsed once into typed values: pins are [`SpkiPin`]s, fingerprints [`CertFingerprint`]s,
//! names [`HostName`]s, an upstream a DoT or a DoH [`UpstreamConfig`] (an invalid
//! combination of keys cannot be represented), the policy a [`PolicyKind`]. Unknown keys and
//! bad values are errors that name the key (`upstream[1].pins[0]`, `tls.denylist[0]`,
//! `ct.policy`): serde's `deny_unknown_fields`, key-naming readers for lists and upstreams
//! (see `upstream`), and [`Config::validate`] for ranges.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{de, Deserialize, Serialize};

pub use crate::ct::policy::PolicyKind;
use crate::tls::pins::{CertFingerprint, SpkiPin};

mod upstream;
pub use upstream::{
    BadHostName, DohMethod, DohUrl, HostName, Protocol, UpstreamConfig, UpstreamRule, DOT_PORT,
};

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML does not parse or has unknown keys / wrongly typed values (the message names
    /// the key and its line).
    #[error("config: {0}")]
    Toml(#[from] toml::de::Error),
    /// A value is out of range, inconsistent or unreadable; `key` names it. (The format
    /// starts with `KEY_PREFIX`.)
    #[error("config key `{key}`: {reason}")]
    Invalid {
        /// Dotted key path, e.g. `upstream[1].url`.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// An upstream entry (built in code; a file's entries are checked as they are parsed)
    /// breaks a rule.
    #[error("config key `upstream[{index}].{}`: {rule}", rule.key())]
    Upstream {
        /// Position in `upstreams`.
        index: usize,
        /// The rule, naming the key within the entry.
        rule: UpstreamRule,
    },
}

/// How [`ConfigError::Invalid`] starts; the key-naming readers raise their errors through
/// serde (a message) in that form, and [`ConfigError::from_toml`] turns them back.
const KEY_PREFIX: &str = "config key `";

impl ConfigError {
    /// A TOML error; one raised by a key-naming reader (`upstream[1].pins[0]`,
    /// `tls.denylist[0]`, `ct.policy`) comes back as [`ConfigError::Invalid`] with its key.
    /// (TOML's position is dropped for those: for the second `[[upstream]]` it would point
    /// at the first one's header; the key is exact.)
    pub fn from_toml(error: toml::de::Error) -> Self {
        let message = error.message().trim_end();
        let keyed = message
            .strip_prefix(KEY_PREFIX)
            .and_then(|rest| rest.split_once("`: "));
        match keyed {
            Some((key, reason)) => invalid(key, reason),
            None => ConfigError::Toml(error),
        }
    }
}

/// A serde error naming `key`, in the form [`ConfigError::from_toml`] reads back.
fn keyed_error<E: de::Error>(key: impl Into<String>, reason: impl std::fmt::Display) -> E {
    E::custom(invalid(key, reason.to_string()))
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// The whole configuration.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Local listen addresses (UDP and TCP on each). Default `127.0.0.1:53`, `[::1]:53`.
    #[serde(default = "default_listen")]
    pub listen: Vec<SocketAddr>,
    /// Deadline for answering a client query (answer or SERVFAIL), in milliseconds.
    #[serde(default = "default_query_timeout_ms")]
    pub query_timeout_ms: u64,
    /// Idle timeout of local TCP connections, in milliseconds.
    #[serde(default = "default_tcp_idle_ms")]
    pub tcp_idle_timeout_ms: u64,
    /// Maximum concurrent local TCP connections.
    #[serde(default = "default_max_tcp")]
    pub max_tcp_connections: usize,
    /// How queries are spread over the upstreams that are up: `ordered` (default: the
    /// first that is up), `fastest` (lowest decaying latency estimate, with probes of the
    /// others) or `round_robin`. Failover and backoff apply with each.
    #[serde(default)]
    pub strategy: crate::upstream::pool::Strategy,
    /// Client networks served (CIDR); queries from elsewhere get REFUSED. Default: loopback
    /// only (`127.0.0.0/8`, `::1/128`).
    #[serde(default = "default_allow")]
    pub allow: Vec<ipnet::IpNet>,
    /// Per-client rate limit of UDP responses to remote clients.
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// Answer cache.
    #[serde(default)]
    pub cache: CacheConfig,
    /// Certificate Transparency settings.
    #[serde(default)]
    pub ct: CtConfig,
    /// TLS trust settings shared by all upstreams.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Evidence of refused certificates.
    #[serde(default)]
    pub evidence: EvidenceConfig,
    /// The Prometheus metrics endpoint; absent: no endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsConfig>,
    /// Upstream resolvers, tried in order with failover.
    #[serde(
        default = "default_upstreams",
        rename = "upstream",
        deserialize_with = "upstream::deserialize_list"
    )]
    pub upstreams: Vec<UpstreamConfig>,
    /// Whether `listen` is the built-in default (not written by the user): then an address
    /// the host cannot have (`[::1]` without IPv6) is skipped with a WARN instead of failing.
    #[serde(skip)]
    pub listen_is_builtin: bool,
    /// Started as root: switch to this user once the listeners are bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// With `user`: the group to run as (default: the user's primary group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Allow staying root on a non-loopback listen address without `user` (default false).
    #[serde(default)]
    pub allow_root: bool,
}

/// Answer cache settings.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Whether to cache answers (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Maximum cached entries.
    #[serde(default = "default_cache_entries")]
    pub max_entries: usize,
    /// Maximum bytes held by the cache (answers, keys and bookkeeping). Default 32 MiB.
    #[serde(default = "default_cache_bytes")]
    pub max_bytes: usize,
    /// Serve stale (RFC 8767): keep answers this many seconds past expiry and serve them
    /// (TTL 30) when the upstreams fail. 0 turns it off. Default 86400.
    #[serde(default = "default_serve_stale_secs")]
    pub serve_stale_secs: u64,
    /// With only a stale answer cached, wait this long for the upstream before answering
    /// from it (RFC 8767 §5). Default 1800.
    #[serde(default = "default_stale_client_timeout_ms")]
    pub stale_answer_client_timeout_ms: u64,
    /// Refresh entries asked for in the last tenth of their TTL (default true).
    #[serde(default = "yes")]
    pub prefetch: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_entries: default_cache_entries(),
            max_bytes: default_cache_bytes(),
            serve_stale_secs: default_serve_stale_secs(),
            stale_answer_client_timeout_ms: default_stale_client_timeout_ms(),
            prefetch: true,
        }
    }
}

fn default_serve_stale_secs() -> u64 {
    crate::stub::CacheOptions::default().serve_stale.as_secs()
}

fn default_stale_client_timeout_ms() -> u64 {
    let ms = crate::stub::CacheOptions::default()
        .stale_answer_client_timeout
        .as_millis();
    u64::try_from(ms).unwrap_or(u64::MAX)
}

fn default_cache_bytes() -> usize {
    crate::stub::options::DEFAULT_CACHE_BYTES
}

fn default_allow() -> Vec<ipnet::IpNet> {
    crate::stub::options::default_allow()
}

/// Per-client rate limit of UDP responses (`[rate_limit]`); see
/// [`crate::stub::RateLimitOptions`] for the meaning of each key.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Whether the limit applies at all (default true).
    pub enabled: bool,
    /// Responses per second per client network (default 20).
    pub responses_per_sec: u32,
    /// Burst per client network (default 40).
    pub burst: u32,
    /// Every `slip`-th response over the limit is sent truncated (TC=1) instead of dropped;
    /// 0 drops all (default 2).
    pub slip: u32,
    /// Limit 127.0.0.1 and ::1 too (default false).
    pub loopback: bool,
    /// Most client networks tracked (default 10000).
    pub max_clients: usize,
    /// IPv4 clients sharing a bucket: prefix length (default 24).
    pub ipv4_prefix: u8,
    /// IPv6 clients sharing a bucket: prefix length (default 56).
    pub ipv6_prefix: u8,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        let d = crate::stub::RateLimitOptions::default();
        Self {
            enabled: d.enabled,
            responses_per_sec: d.responses_per_sec,
            burst: d.burst,
            slip: d.slip,
            loopback: d.loopback,
            max_clients: d.max_clients,
            ipv4_prefix: d.ipv4_prefix,
            ipv6_prefix: d.ipv6_prefix,
        }
    }
}

impl RateLimitConfig {
    /// The stub's options for this section.
    pub fn options(&self) -> crate::stub::RateLimitOptions {
        crate::stub::RateLimitOptions {
            enabled: self.enabled,
            responses_per_sec: self.responses_per_sec,
            burst: self.burst,
            slip: self.slip,
            loopback: self.loopback,
            max_clients: self.max_clients,
            ipv4_prefix: self.ipv4_prefix,
            ipv6_prefix: self.ipv6_prefix,
        }
    }
}

/// Certificate Transparency settings.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CtConfig {
    /// `chrome` (default) or `apple`.
    #[serde(default, deserialize_with = "deserialize_policy")]
    pub policy: PolicyKind,
    /// A log list file (Chrome v3 or Apple schema); default: the list bundled with ctdns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_list: Option<PathBuf>,
    /// Maximum age of the log list before ctdns warns (or refuses), in days. Default 70.
    #[serde(default = "default_max_age_days")]
    pub max_list_age_days: u64,
    /// Refuse all connections when the log list is stale (default false: warn and enforce).
    #[serde(default)]
    pub refuse_stale_list: bool,
    /// Raise the number of distinct logs required for embedded SCTs (never below the policy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_logs: Option<usize>,
    /// Raise the number of distinct operators required (never below 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_operators: Option<usize>,
}

impl Default for CtConfig {
    fn default() -> Self {
        Self {
            policy: PolicyKind::Chrome,
            log_list: None,
            max_list_age_days: default_max_age_days(),
            refuse_stale_list: false,
            min_logs: None,
            min_operators: None,
        }
    }
}

/// TLS trust settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// A PEM file of trusted roots; default: webpki-roots (Mozilla's program).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roots: Option<PathBuf>,
    /// SHA-256 fingerprints (hex, colons allowed) of certificates always refused.
    #[serde(default, deserialize_with = "deserialize_denylist")]
    pub denylist: Vec<CertFingerprint>,
    /// Keys never trusted, as base64 SHA-256 of the SubjectPublicKeyInfo (the pin form): a
    /// path through one — leaf, intermediate, a cross-signed twin, or a root — is no path, and
    /// denylisted roots are dropped from the trust store.
    #[serde(default, deserialize_with = "deserialize_deny_spki")]
    pub deny_spki: Vec<SpkiPin>,
}

fn deserialize_denylist<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<CertFingerprint>, D::Error> {
    upstream::deserialize_keyed_list(d, "tls.denylist")
}

fn deserialize_deny_spki<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<SpkiPin>, D::Error> {
    upstream::deserialize_keyed_list(d, "tls.deny_spki")
}

fn deserialize_policy<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PolicyKind, D::Error> {
    PolicyKind::deserialize(d).map_err(|e| keyed_error("ct.policy", e))
}

/// Log output format.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable text (default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging settings.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `ctdns=debug` (overridden by `RUST_LOG`).
    #[serde(default = "default_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: default_level(),
        }
    }
}

/// Evidence of refused certificates.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvidenceConfig {
    /// Directory for evidence files; none: evidence is only logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Size cap of the directory in bytes; the oldest files are removed beyond it.
    #[serde(default = "default_evidence_bytes")]
    pub max_bytes: u64,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        Self {
            dir: None,
            max_bytes: default_evidence_bytes(),
        }
    }
}

/// The Prometheus metrics endpoint (`[metrics]`): plain HTTP, `GET /metrics` only.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the HTTP listener, e.g. `127.0.0.1:9153` (port 0: any free port). A
    /// non-loopback address is allowed but logged as a WARN: the endpoint has no
    /// authentication and names the configured upstreams.
    pub listen: SocketAddr,
}

fn yes() -> bool {
    true
}
fn default_listen() -> Vec<SocketAddr> {
    vec![
        SocketAddr::from(([127, 0, 0, 1], 53)),
        SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 53)),
    ]
}
fn default_query_timeout_ms() -> u64 {
    3000
}
fn default_tcp_idle_ms() -> u64 {
    10_000
}
fn default_max_tcp() -> usize {
    1024
}
fn default_cache_entries() -> usize {
    10_000
}
fn default_max_age_days() -> u64 {
    70
}
fn default_level() -> String {
    "info".into()
}
fn default_evidence_bytes() -> u64 {
    64 * 1024 * 1024
}

/// Built-in defaults that are claims about the real world: which CAs the built-in
/// resolvers' certificates come from. Each pin set is dated evidence with a revisit date;
/// `certs/README.md` holds the full table and how to update it.
pub mod defaults {
    use crate::tls::pins::SpkiPin;

    /// Whether a pin is the CA a resolver serves from today or a backup for a rotation.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
    #[serde(rename_all = "lowercase")]
    pub enum PinRole {
        /// The root of the chain the operator was recorded serving.
        Serving,
        /// A root the operator served from before, or a named backup for a CA change.
        Backup,
    }

    /// One built-in issuer pin: the SPKI SHA-256 of a root certificate in webpki-roots.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
    pub struct BuiltinPin {
        /// Base64 SHA-256 of the root's SubjectPublicKeyInfo.
        pub pin: &'static str,
        /// The root certificate's common name.
        pub ca: &'static str,
        /// Serving or backup.
        pub role: PinRole,
    }

    /// The pin set of one resolver operator and the evidence behind it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
    pub struct OperatorPins {
        /// The operator.
        pub operator: &'static str,
        /// The pins; a connection passes when any CA of its verified path matches one.
        pub pins: &'static [BuiltinPin],
        /// The newest date the served chain was recorded (public record, `openssl s_client`).
        pub evidence_date: &'static str,
        /// Revisit the set by this date: the recorded leaf's notAfter (a renewal may come from
        /// another CA). ctdns warns at startup once it has passed.
        pub revisit_by: &'static str,
    }

    impl OperatorPins {
        /// The pins, parsed (each is a checked constant; a unit test parses them all).
        pub fn spki_pins(&self) -> Vec<SpkiPin> {
            self.pins
                .iter()
                .filter_map(|p| SpkiPin::parse(p.pin).ok())
                .collect()
        }
    }

    const SSLCOM_ECC: BuiltinPin = BuiltinPin {
        pin: "oyD01TTXvpfBro3QSZc1vIlcMjrdLTiL/M9mLCPX+Zo=",
        ca: "SSL.com Root Certification Authority ECC",
        role: PinRole::Serving,
    };
    const SSLCOM_RSA: BuiltinPin = BuiltinPin {
        pin: "0cRTd+vc1hjNFlHcLgLCHXUeWqn80bNDH/bs9qMTSPo=",
        ca: "SSL.com Root Certification Authority RSA",
        role: PinRole::Backup,
    };
    const DIGICERT_G2: BuiltinPin = BuiltinPin {
        pin: "i7WTqTvh0OioIruIfFR4kMPnBqrS2rdiVPl/s2uC/CY=",
        ca: "DigiCert Global Root G2",
        role: PinRole::Backup,
    };
    const DIGICERT_G3: BuiltinPin = BuiltinPin {
        pin: "uUwZgwDOxcBXrQcntwu+kYFpkiVkOaezL0WYEZ3anJc=",
        ca: "DigiCert Global Root G3",
        role: PinRole::Backup,
    };
    const DIGICERT_RSA_G5: BuiltinPin = BuiltinPin {
        pin: "ape1HIIZ6T5d7GS61YBs3rD4NVvkfnVwELcCRW4Bqv0=",
        ca: "DigiCert TLS RSA4096 Root G5",
        role: PinRole::Backup,
    };
    const DIGICERT_ECC_G5: BuiltinPin = BuiltinPin {
        pin: "oC+voZLIy4HLE0FVT5wFtxzKKokLDRKY1oNkfJYe+98=",
        ca: "DigiCert TLS ECC P384 Root G5",
        role: PinRole::Backup,
    };

    /// Cloudflare (1.1.1.1, 1.0.0.1; DoT and DoH). Serving: SSL.com's ECC root (leaf from
    /// "SSL.com SSL Intermediate CA ECC R2", recorded 2025-07-16 .. 2026-09-29, leaf valid to
    /// 2026-12-21). Backups: SSL.com's RSA root (same CA, other key type); DigiCert Global
    /// Root G2 (Cloudflare's CA until 2025) and G3 — a second, independent lineage.
    pub const CLOUDFLARE: OperatorPins = OperatorPins {
        operator: "Cloudflare",
        pins: &[SSLCOM_ECC, SSLCOM_RSA, DIGICERT_G2, DIGICERT_G3],
        evidence_date: "2026-09-29",
        revisit_by: "2026-12-21",
    };

    /// Quad9 (9.9.9.9, 149.112.112.112; DoT). Serving: DigiCert Global Root G3 (leaf from
    /// "DigiCert Global G3 TLS ECC SHA384 2020 CA1", recorded 2026-09-06 and 2026-09-08).
    /// Backups: DigiCert Global Root G2 and DigiCert's TLS-dedicated G5 roots (rotation
    /// inside DigiCert), and SSL.com's ECC root — a second lineage, from a CA that issues
    /// publicly-trusted IP-address certificates to a public resolver today. The leaf's
    /// notAfter was not recorded; under the CA/B Forum's 200-day limit (from 2026-03-15) a
    /// leaf seen on 2026-09-06 expires by 2027-03-25.
    pub const QUAD9: OperatorPins = OperatorPins {
        operator: "Quad9",
        pins: &[
            BuiltinPin {
                role: PinRole::Serving,
                ..DIGICERT_G3
            },
            DIGICERT_G2,
            DIGICERT_ECC_G5,
            DIGICERT_RSA_G5,
            BuiltinPin {
                role: PinRole::Backup,
                ..SSLCOM_ECC
            },
        ],
        evidence_date: "2026-09-08",
        revisit_by: "2027-03-25",
    };

    /// Every operator with built-in pins.
    pub const OPERATORS: &[OperatorPins] = &[CLOUDFLARE, QUAD9];

    /// The built-in operator whose pin set `pins` is, if any.
    pub fn operator_of(pins: &[SpkiPin]) -> Option<&'static OperatorPins> {
        OPERATORS.iter().find(|op| op.spki_pins() == pins)
    }
}

fn default_upstreams() -> Vec<UpstreamConfig> {
    let dot = |ip: [u8; 4], name: &str, op: &defaults::OperatorPins| UpstreamConfig::Dot {
        ip: IpAddr::from(ip),
        port: Some(DOT_PORT),
        name: HostName::parse(name).ok(),
        pins: op.spki_pins(),
    };
    vec![
        dot([1, 1, 1, 1], "cloudflare-dns.com", &defaults::CLOUDFLARE),
        dot([1, 0, 0, 1], "cloudflare-dns.com", &defaults::CLOUDFLARE),
        dot([9, 9, 9, 9], "dns.quad9.net", &defaults::QUAD9),
        dot([149, 112, 112, 112], "dns.quad9.net", &defaults::QUAD9),
    ]
}

/// The built-in DoH alternative (`ctdns serve --doh`): Cloudflare's DoH endpoints on 1.1.1.1
/// and 1.0.0.1 (IP URLs: no bootstrap needed), with Cloudflare's built-in issuer pins.
pub fn cloudflare_doh() -> Vec<UpstreamConfig> {
    ["https://1.1.1.1/dns-query", "https://1.0.0.1/dns-query"]
        .iter()
        .filter_map(|url| DohUrl::parse(url).ok())
        .map(|url| UpstreamConfig::Doh {
            url,
            ip: None,
            port: None,
            name: HostName::parse("cloudflare-dns.com").ok(),
            method: DohMethod::Post,
            pins: defaults::CLOUDFLARE.spki_pins(),
        })
        .collect()
}

impl Default for Config {
    fn default() -> Self {
        // An empty document takes every default; this cannot fail.
        Self {
            listen: default_listen(),
            query_timeout_ms: default_query_timeout_ms(),
            tcp_idle_timeout_ms: default_tcp_idle_ms(),
            max_tcp_connections: default_max_tcp(),
            strategy: crate::upstream::pool::Strategy::default(),
            allow: default_allow(),
            rate_limit: RateLimitConfig::default(),
            cache: CacheConfig::default(),
            ct: CtConfig::default(),
            tls: TlsConfig::default(),
            log: LogConfig::default(),
            evidence: EvidenceConfig::default(),
            metrics: None,
            upstreams: default_upstreams(),
            listen_is_builtin: true,
            user: None,
            group: None,
            allow_root: false,
        }
    }
}

impl Config {
    /// Parse and validate a TOML document.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(ConfigError::from_toml)?;
        let table: toml::Table = toml::from_str(text)?;
        config.listen_is_builtin = !table.contains_key("listen");
        config.validate()?;
        Ok(config)
    }

    /// Read, parse and validate a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// The configuration as it runs: every default written out, including each upstream's
    /// port (853 for DoT, the URL's for DoH). `ctdns config show` prints this.
    pub fn effective(&self) -> Config {
        let mut c = self.clone();
        for up in &mut c.upstreams {
            if up.port().is_none() {
                up.set_port(Some(up.effective_port()));
            }
        }
        c
    }

    /// Check what the types cannot: ranges, the CT floor, and (for entries built in code)
    /// the upstream rules parsing enforces.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.is_empty() {
            return Err(invalid("listen", "at least one address is required"));
        }
        if self.query_timeout_ms == 0 || self.query_timeout_ms > 60_000 {
            return Err(invalid("query_timeout_ms", "must be between 1 and 60000"));
        }
        if self.tcp_idle_timeout_ms == 0 {
            return Err(invalid("tcp_idle_timeout_ms", "must be positive"));
        }
        if self.max_tcp_connections == 0 {
            return Err(invalid("max_tcp_connections", "must be positive"));
        }
        if self.allow.is_empty() {
            return Err(invalid(
                "allow",
                "at least one network is required (127.0.0.0/8 and ::1/128 for local use)",
            ));
        }
        if let Err(crate::stub::StubError::InvalidOption { field, rule }) =
            self.rate_limit.options().validate()
        {
            return Err(invalid(field, rule));
        }
        if self.cache.enabled && self.cache.max_entries == 0 {
            return Err(invalid(
                "cache.max_entries",
                "must be positive when the cache is enabled",
            ));
        }
        if self.cache.enabled && self.cache.max_bytes == 0 {
            return Err(invalid(
                "cache.max_bytes",
                "must be positive when the cache is enabled",
            ));
        }
        if self.ct.max_list_age_days == 0 {
            return Err(invalid("ct.max_list_age_days", "must be positive"));
        }
        crate::ct::policy::CtPolicy::with_minimums(
            self.ct.policy,
            self.ct.min_logs,
            self.ct.min_operators,
        )
        .map_err(|e| invalid(format!("ct.{}", e.field()), e.to_string()))?;
        if self.user.as_deref().is_some_and(str::is_empty) {
            return Err(invalid("user", "must name a user"));
        }
        match (&self.user, self.group.as_deref()) {
            (_, Some("")) => return Err(invalid("group", "must name a group")),
            (None, Some(_)) => return Err(invalid("group", "only with `user`")),
            _ => {}
        }
        if self.upstreams.is_empty() {
            return Err(invalid("upstream", "at least one upstream is required"));
        }
        for (index, up) in self.upstreams.iter().enumerate() {
            up.check()
                .map_err(|rule| ConfigError::Upstream { index, rule })?;
        }
        Ok(())
    }
}

/// The parts of a DoH URL that ctdns uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DohTarget {
    /// The host when it is an IP literal.
    pub ip: Option<IpAddr>,
    /// The host when it is a name.
    pub host_name: Option<String>,
    /// The port (default 443).
    pub port: u16,
    /// Path and query, e.g. `/dns-query`.
    pub path: String,
    /// The authority as written (for the HTTP/2 `:authority`).
    pub authority: String,
}

impl DohTarget {
    /// Parse an `https://` URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        if uri.scheme_str() != Some("https") {
            return Err(format!("`{url}`: the scheme must be https"));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("`{url}` has no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let ip: Option<IpAddr> = host.parse().ok();
        let host_name = match ip {
            Some(_) => None,
            None => {
                rustls::pki_types::DnsName::try_from(host)
                    .map_err(|_| format!("`{host}` is not a valid host name"))?;
                Some(host.to_string())
            }
        };
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/dns-query".into());
        Ok(Self {
            ip,
            host_name,
            port: authority.port_u16().unwrap_or(443),
            path: if path.is_empty() {
                "/dns-query".into()
            } else {
                path
            },
            authority: authority.as_str().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_section_is_optional_and_strict() {
        assert_eq!(Config::default().metrics, None);
        let c = Config::from_toml("[metrics]\nlisten = \"127.0.0.1:9153\"\n").unwrap();
        assert_eq!(
            c.metrics,
            Some(MetricsConfig {
                listen: "127.0.0.1:9153".parse().unwrap()
            })
        );
        let e = Config::from_toml("[metrics]\nlisten = \"127.0.0.1:9153\"\npath = \"/m\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("path"), "{e}");
        assert!(
            Config::from_toml("[metrics]\n").is_err(),
            "listen is required"
        );
    }

    #[test]
    fn empty_document_is_the_default() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
        Config::default().validate().unwrap();
    }

    #[test]
    fn default_pins_are_webpki_roots_with_the_names_given() {
        let anchors = crate::tls::roots::webpki_roots();
        for op in defaults::OPERATORS {
            assert!(
                op.pins.iter().any(|p| p.role == defaults::PinRole::Serving),
                "{}: no serving pin",
                op.operator
            );
            for p in op.pins {
                let pin = crate::tls::pins::SpkiPin::parse(p.pin).unwrap();
                let anchor = anchors
                    .iter()
                    .find(|a| {
                        crate::tls::pins::SpkiPin::of_spki(webpki::spki_for_anchor(a).as_ref())
                            == pin
                    })
                    .unwrap_or_else(|| panic!("{} is not a webpki-roots anchor", p.pin));
                let name = crate::tls::lineage::common_name(anchor).unwrap();
                assert_eq!(name, p.ca, "{}", p.pin);
            }
        }
        let c = Config::default();
        assert_eq!(
            defaults::operator_of(c.upstreams[0].pins()),
            Some(&defaults::CLOUDFLARE)
        );
        assert_eq!(
            defaults::operator_of(c.upstreams[2].pins()),
            Some(&defaults::QUAD9)
        );
    }

    #[test]
    fn user_group_and_allow_root() {
        let c = Config::from_toml("user = \"nobody\"\ngroup = \"nogroup\"\nallow_root = true\n")
            .unwrap();
        assert_eq!(c.user.as_deref(), Some("nobody"));
        assert_eq!(c.group.as_deref(), Some("nogroup"));
        assert!(c.allow_root);
        assert!(!Config::default().allow_root);
        for (doc, key) in [
            ("user = \"\"", "`user`"),
            ("group = \"nogroup\"", "`group`"),
            ("user = \"nobody\"\ngroup = \"\"", "`group`"),
        ] {
            let e = Config::from_toml(doc).unwrap_err();
            assert!(e.to_string().contains(key), "{doc}: {e}");
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::from_toml("listen = [\"127.0.0.1:5353\"]\nbogus = 1\n").unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
        let err =
            Config::from_toml("[[upstream]]\nip = \"1.1.1.1\"\nport = 853\ncolour = \"red\"\n")
                .unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }

    /// The key a refused document is refused at (the typed error's own key).
    fn refused_key(doc: &str) -> String {
        match Config::from_toml(doc) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("{doc:?}: expected a keyed error, got {other:?}"),
        }
    }

    #[test]
    fn typed_values_fail_at_parse_time_naming_the_key() {
        let dot = "[[upstream]]\nip = \"192.0.2.1\"\n";
        let cases = [
            // Pins: not base64, and base64 of the wrong length.
            (
                format!("{dot}pins = [\"not base64!\"]"),
                "upstream[0].pins[0]",
                "not base64",
            ),
            (
                format!(
                    "{dot}pins = [\"{}\", \"AAAA\"]",
                    defaults::CLOUDFLARE.pins[0].pin
                ),
                "upstream[0].pins[1]",
                "decodes to 3 bytes",
            ),
            (
                "[[upstream]]\nprotocol = \"dns\"\nip = \"192.0.2.1\"".into(),
                "upstream[0].protocol",
                "unknown protocol `dns`",
            ),
            (
                format!("{dot}url = \"https://192.0.2.1/dns-query\""),
                "upstream[0].url",
                "only for protocol = \"doh\"",
            ),
            (
                format!("{dot}method = \"get\""),
                "upstream[0].method",
                "only for",
            ),
            (
                format!("{dot}method = \"put\""),
                "upstream[0].method",
                "unknown method",
            ),
            (
                "[[upstream]]\nprotocol = \"doh\"\nip = \"192.0.2.1\"".into(),
                "upstream[0].url",
                "required for a DoH upstream",
            ),
            (
                format!("{dot}[[upstream]]\nip = \"192.0.2.2\"\nname = \"bad name!\""),
                "upstream[1].name",
                "not a valid DNS name",
            ),
            (
                "[[upstream]]\nport = 853".into(),
                "upstream[0].ip",
                "required for a DoT",
            ),
            (
                "[[upstream]]\nip = \"192.0.2\"".into(),
                "upstream[0].ip",
                "not an IP",
            ),
            (
                format!("{dot}colour = \"red\""),
                "upstream[0]",
                "unknown field `colour`",
            ),
            (
                "[ct]\npolicy = \"firefox\"".into(),
                "ct.policy",
                "unknown variant `firefox`",
            ),
            ("[ct]\npolicy = 1".into(), "ct.policy", "wanted string"),
            (
                format!(
                    "[tls]\ndeny_spki = [\"{}\", \"AAAA\"]",
                    defaults::QUAD9.pins[0].pin
                ),
                "tls.deny_spki[1]",
                "decodes to 3 bytes",
            ),
            (
                "[tls]\ndenylist = [\"ab:cd\"]".into(),
                "tls.denylist[0]",
                "64 hex digits",
            ),
            (
                "[tls]\ndenylist = [7]".into(),
                "tls.denylist[0]",
                "invalid type",
            ),
        ];
        for (doc, key, reason) in cases {
            assert_eq!(refused_key(&doc), key, "{doc:?}");
            let e = Config::from_toml(&doc).unwrap_err().to_string();
            assert!(e.starts_with(&format!("config key `{key}`: ")), "{e}");
            assert!(e.contains(reason), "{doc:?} -> {e}");
        }
    }

    #[test]
    fn upstreams_parse_into_their_variant() {
        let pin = defaults::QUAD9.pins[0].pin;
        let c = Config::from_toml(&format!(
            "[[upstream]]\nip = \"192.0.2.1\"\nname = \"dns.example\"\npins = [\"{pin}\"]\n\
             [[upstream]]\nprotocol = \"doh\"\nurl = \"https://dns.example:8443/q\"\n\
             ip = \"2001:db8::1\"\nmethod = \"get\"\n\
             [[upstream]]\nprotocol = \"dot\"\nip = \"192.0.2.3\"\nport = 8853\nmethod = \"post\"\n"
        ))
        .unwrap();
        let pins = vec![SpkiPin::parse(pin).unwrap()];
        assert_eq!(
            c.upstreams[0],
            UpstreamConfig::Dot {
                ip: "192.0.2.1".parse().unwrap(),
                port: None,
                name: Some(HostName::parse("dns.example").unwrap()),
                pins,
            }
        );
        let UpstreamConfig::Doh {
            url, ip, method, ..
        } = &c.upstreams[1]
        else {
            panic!("{:?}", c.upstreams[1]);
        };
        assert_eq!(url.target().host_name.as_deref(), Some("dns.example"));
        assert_eq!(*ip, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(*method, DohMethod::Get);
        assert_eq!(
            c.upstreams[1].dial_addr().unwrap(),
            "[2001:db8::1]:8443".parse().unwrap()
        );
        assert_eq!(c.upstreams[1].label(), "https://dns.example:8443/q");
        // `method = "post"` on DoT (written by earlier `config show`) is accepted and dropped.
        assert_eq!(c.upstreams[2].protocol(), Protocol::Dot);
        assert_eq!(c.upstreams[2].label(), "dot://192.0.2.3:8853");
        // Written back: the same keys, no `method` on DoT, and it reads back the same.
        let text = toml::to_string(&c).unwrap();
        assert!(!text.contains("method = \"post\""), "{text}");
        assert!(text.contains("method = \"get\""), "{text}");
        assert_eq!(
            Config::from_toml(&text).unwrap(),
            Config {
                listen_is_builtin: false,
                ..c
            }
        );
    }

    #[test]
    fn code_built_upstreams_are_checked_by_validate() {
        let url = DohUrl::parse("https://192.0.2.1/dns-query").unwrap();
        let mut c = Config {
            upstreams: vec![UpstreamConfig::Doh {
                url: url.clone(),
                ip: Some("192.0.2.9".parse().unwrap()),
                port: None,
                name: None,
                method: DohMethod::Post,
                pins: Vec::new(),
            }],
            ..Config::default()
        };
        let e = c.validate().unwrap_err();
        assert!(
            matches!(
                &e,
                ConfigError::Upstream {
                    index: 0,
                    rule: UpstreamRule::IpDiffersFromUrl { .. }
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string().starts_with("config key `upstream[0].ip`"),
            "{e}"
        );
        c.upstreams[0] = UpstreamConfig::Doh {
            url: DohUrl::parse("https://dns.example/dns-query").unwrap(),
            ip: None,
            port: None,
            name: None,
            method: DohMethod::Post,
            pins: Vec::new(),
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Upstream {
                rule: UpstreamRule::NameUrlNeedsIp,
                ..
            })
        ));
        c.upstreams[0] = UpstreamConfig::Doh {
            url,
            ip: None,
            port: None,
            name: None,
            method: DohMethod::Post,
            pins: Vec::new(),
        };
        c.validate().unwrap();
    }

    #[test]
    fn one_upstream_deserializes_on_its_own() {
        let up: UpstreamConfig =
            toml::from_str("protocol = \"doh\"\nurl = \"https://192.0.2.1/dns-query\"\n").unwrap();
        assert_eq!(up.protocol(), Protocol::Doh);
        assert_eq!(up.effective_port(), 443);
        let e = toml::from_str::<UpstreamConfig>("protocol = \"doh\"\n").unwrap_err();
        assert!(e.to_string().contains("`url`: required"), "{e}");
        let name: HostName = serde_json::from_str("\"dns.example\"").unwrap();
        assert_eq!(name.as_str(), "dns.example");
        assert!(serde_json::from_str::<HostName>("\"a b\"").is_err());
    }

    #[test]
    fn strategy_defaults_to_ordered_and_reads_back() {
        use crate::upstream::pool::Strategy;
        assert_eq!(Config::from_toml("").unwrap().strategy, Strategy::Ordered);
        for (text, want) in [
            ("ordered", Strategy::Ordered),
            ("fastest", Strategy::Fastest),
            ("round_robin", Strategy::RoundRobin),
        ] {
            let c = Config::from_toml(&format!("strategy = \"{text}\"")).unwrap();
            assert_eq!(c.strategy, want);
            assert_eq!(text.parse::<Strategy>().unwrap(), want);
            // What `ctdns config show` prints reads back to the same configuration.
            let shown = toml::to_string(&c.effective()).unwrap();
            assert!(shown.contains(&format!("strategy = \"{text}\"")), "{shown}");
            let back = Config::from_toml(&shown).unwrap();
            assert_eq!(back.strategy, want);
            assert_eq!(back.upstreams, c.effective().upstreams);
        }
        let e = Config::from_toml("strategy = \"random\"").unwrap_err();
        assert!(e.to_string().contains("strategy"), "{e}");
        assert!("random".parse::<Strategy>().is_err());
    }

    #[test]
    fn bad_values_are_named() {
        let cases = [
            ("query_timeout_ms = 0", "query_timeout_ms"),
            ("[cache]\nmax_bytes = 0", "cache.max_bytes"),
            ("allow = []", "allow"),
            ("allow = [\"10.0.0.0/33\"]", "allow"),
            ("[rate_limit]\nburst = 0", "rate_limit.burst"),
            ("[rate_limit]\nipv4_prefix = 33", "rate_limit.ipv4_prefix"),
            ("[rate_limit]\nbogus = 1", "bogus"),
            ("[ct]\nmin_logs = 1", "ct.min_logs"),
            ("[ct]\nmin_operators = 1", "ct.min_operators"),
            ("[tls]\ndenylist = [\"abc\"]", "tls.denylist[0]"),
            ("[tls]\ndeny_spki = [\"abc\"]", "tls.deny_spki[0]"),
            (
                "[[upstream]]\nip = \"1.1.1.1\"\npins = [\"xx\"]",
                "upstream[0].pins[0]",
            ),
            ("[[upstream]]\nprotocol = \"dot\"", "upstream[0].ip"),
            (
                "[[upstream]]\nprotocol = \"doh\"\nurl = \"http://1.1.1.1/dns-query\"",
                "upstream[0].url",
            ),
            (
                "[[upstream]]\nprotocol = \"doh\"\nurl = \"https://dns.example/dns-query\"",
                "upstream[0].ip",
            ),
            (
                "[[upstream]]\nip = \"1.1.1.1\"\nname = \"not a name\"",
                "upstream[0].name",
            ),
            (
                "[[upstream]]\nprotocol = \"doh\"\nurl = \"https://1.1.1.1/dns-query\"\nip = \"9.9.9.9\"",
                "upstream[0].ip",
            ),
        ];
        for (doc, key) in cases {
            let err = Config::from_toml(doc).unwrap_err();
            assert!(err.to_string().contains(key), "{doc:?} -> {err}");
        }
        let err = Config::from_toml("[ct]\npolicy = \"firefox\"").unwrap_err();
        assert!(err.to_string().contains("policy"), "{err}");
        let err = Config::from_toml("listen = [\"nope\"]").unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
    }

    #[test]
    fn readme_configuration_reference_parses() {
        let readme = include_str!("../README.md");
        let start = readme
            .find("## Configuration reference")
            .and_then(|at| {
                readme[at..]
                    .find("```toml")
                    .map(|i| at + i + "```toml".len())
            })
            .expect("toml block in the configuration reference");
        let end = start + readme[start..].find("```").expect("end of the block");
        let config = Config::from_toml(&readme[start..end]).unwrap();
        assert_eq!(config.allow, default_allow());
        assert_eq!(config.rate_limit, RateLimitConfig::default());
        assert_eq!(config.cache.max_bytes, default_cache_bytes());
    }

    #[test]
    fn serve_stale_and_prefetch_keys_parse() {
        let c = Config::default();
        assert_eq!(c.cache.serve_stale_secs, 86_400);
        assert_eq!(c.cache.stale_answer_client_timeout_ms, 1_800);
        assert!(c.cache.prefetch);
        let c = Config::from_toml(
            "[cache]\nserve_stale_secs = 0\nstale_answer_client_timeout_ms = 250\nprefetch = false\n",
        )
        .unwrap();
        assert_eq!(c.cache.serve_stale_secs, 0);
        assert_eq!(c.cache.stale_answer_client_timeout_ms, 250);
        assert!(!c.cache.prefetch);
        let opts = crate::runtime::stub_options(&c).cache;
        assert!(opts.serve_stale.is_zero());
        assert_eq!(
            opts.stale_answer_client_timeout,
            std::time::Duration::from_millis(250)
        );
        assert!(!opts.prefetch);
    }

    #[test]
    fn allow_and_rate_limit_parse() {
        let c = Config::default();
        assert_eq!(
            c.allow,
            vec![
                "127.0.0.0/8".parse::<ipnet::IpNet>().unwrap(),
                "::1/128".parse().unwrap()
            ]
        );
        assert!(c.rate_limit.enabled && !c.rate_limit.loopback);
        let c = Config::from_toml(
            "allow = [\"192.0.2.0/24\", \"2001:db8::/32\"]\n[rate_limit]\nresponses_per_sec = 5\nloopback = true\n",
        )
        .unwrap();
        assert_eq!(c.allow.len(), 2);
        assert_eq!(c.rate_limit.responses_per_sec, 5);
        assert_eq!(c.rate_limit.burst, 40, "unset keys keep their default");
        assert!(c.rate_limit.loopback);
    }

    #[test]
    fn builtin_doh_alternative_is_valid() {
        let config = Config {
            upstreams: cloudflare_doh(),
            ..Config::default()
        };
        config.validate().unwrap();
        assert!(config
            .upstreams
            .iter()
            .all(|u| u.protocol() == Protocol::Doh && !u.pins().is_empty()));
    }

    #[test]
    fn doh_targets() {
        let t = DohTarget::parse("https://1.1.1.1/dns-query").unwrap();
        assert_eq!(t.ip, Some("1.1.1.1".parse().unwrap()));
        assert_eq!(t.port, 443);
        assert_eq!(t.path, "/dns-query");
        let t = DohTarget::parse("https://[2606:4700:4700::1111]:8443/q?x=1").unwrap();
        assert_eq!(t.ip, Some("2606:4700:4700::1111".parse().unwrap()));
        assert_eq!(t.port, 8443);
        assert_eq!(t.path, "/q?x=1");
        let t = DohTarget::parse("https://cloudflare-dns.com/dns-query").unwrap();
        assert_eq!(t.host_name.as_deref(), Some("cloudflare-dns.com"));
        assert!(DohTarget::parse("ftp://x/").is_err());
    }
}
