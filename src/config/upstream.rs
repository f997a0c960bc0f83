//! One `[[upstream]]` entry, typed: a DoT or a DoH resolver whose every value was checked
//! when the file was parsed.
//!
//! The file keeps its flat keys (`protocol`, `ip`, `port`, `name`, `url`, `method`, `pins`);
//! in memory an entry is an [`UpstreamConfig::Dot`] or an [`UpstreamConfig::Doh`], so a DoT
//! upstream with a URL, or a DoH upstream without one, cannot be written down.
//!
//! Errors name the key: `upstream[1].pins[0]`, `upstream[0].url`. Why a visitor and not
//! `serde_path_to_error`: that crate records the path of the *value* whose deserialization
//! failed, but a rule spanning two keys (`protocol = "dot"` with a `url`, a DoH entry without
//! one) can only be decided once the whole table is read, where it would name `upstream[1]`
//! and not the key. So the list is read by a visitor that knows each entry's index
//! ([`deserialize_list`]), and the entry is converted with [`UpstreamRule`], which names the
//! key within it: one mechanism for single values and cross-key rules, and no new
//! dependency. The error travels through serde as [`super::ConfigError::Invalid`]'s message
//! and [`super::ConfigError::from_toml`] turns it back into that typed error.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::{keyed_error, DohTarget};
use crate::tls::pins::{PinError, SpkiPin};
pub use crate::upstream::doh::DohMethod;

/// The port of DNS-over-TLS (RFC 7858).
pub const DOT_PORT: u16 = 853;

/// Upstream transport: the `protocol` key of an upstream.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// DNS-over-TLS (RFC 7858), port 853 (default).
    #[default]
    Dot,
    /// DNS-over-HTTPS (RFC 8484) over HTTP/2.
    Doh,
}

impl Protocol {
    /// The name used in the configuration: `dot` or `doh`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Dot => "dot",
            Protocol::Doh => "doh",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = UpstreamRule;

    fn from_str(s: &str) -> Result<Self, UpstreamRule> {
        match s {
            "dot" => Ok(Protocol::Dot),
            "doh" => Ok(Protocol::Doh),
            other => Err(UpstreamRule::UnknownProtocol(other.to_string())),
        }
    }
}

fn method_name(method: DohMethod) -> &'static str {
    match method {
        DohMethod::Post => "post",
        DohMethod::Get => "get",
    }
}

fn parse_method(s: &str) -> Result<DohMethod, UpstreamRule> {
    match s {
        "post" => Ok(DohMethod::Post),
        "get" => Ok(DohMethod::Get),
        other => Err(UpstreamRule::UnknownMethod(other.to_string())),
    }
}

/// A DNS name a certificate must be valid for (an upstream's `name`), in the syntax
/// rustls accepts for a server name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostName(rustls::pki_types::DnsName<'static>);

/// A string that is not a DNS name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid DNS name")]
pub struct BadHostName(pub String);

impl HostName {
    /// Parse `name`, e.g. `dns.quad9.net`.
    pub fn parse(name: &str) -> Result<Self, BadHostName> {
        rustls::pki_types::DnsName::try_from(name.to_string())
            .map(Self)
            .map_err(|_| BadHostName(name.to_string()))
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }

    /// The name as rustls takes it.
    pub fn dns_name(&self) -> rustls::pki_types::DnsName<'static> {
        self.0.clone()
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HostName {
    type Err = BadHostName;

    fn from_str(s: &str) -> Result<Self, BadHostName> {
        Self::parse(s)
    }
}

impl Serialize for HostName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for HostName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(de::Error::custom)
    }
}

/// A DoH URL (`https://…`), kept as written and parsed once into its [`DohTarget`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DohUrl {
    text: String,
    target: DohTarget,
}

impl DohUrl {
    /// Parse an `https://` URL; the error says what is wrong with it.
    pub fn parse(url: &str) -> Result<Self, String> {
        Ok(Self {
            target: DohTarget::parse(url)?,
            text: url.to_string(),
        })
    }

    /// The URL as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Its parts: host, port, path.
    pub fn target(&self) -> &DohTarget {
        &self.target
    }
}

impl fmt::Display for DohUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for DohUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for DohUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(de::Error::custom)
    }
}

/// One upstream resolver.
#[derive(Clone, Debug, PartialEq)]
pub enum UpstreamConfig {
    /// DNS-over-TLS (`protocol = "dot"`, the default).
    Dot {
        /// The IP to dial; the certificate must carry it as an IP SAN.
        ip: IpAddr,
        /// Port (default 853).
        port: Option<u16>,
        /// A DNS name the certificate must also be valid for.
        name: Option<HostName>,
        /// Issuer pins: SHA-256 of the SPKI of any CA certificate in the verified chain.
        pins: Vec<SpkiPin>,
    },
    /// DNS-over-HTTPS (`protocol = "doh"`).
    Doh {
        /// The URL, e.g. `https://1.1.1.1/dns-query`.
        url: DohUrl,
        /// The IP to dial: required when the URL's host is a name, and equal to the URL's
        /// address when it is an IP.
        ip: Option<IpAddr>,
        /// Port (default: the URL's, 443 when it has none).
        port: Option<u16>,
        /// A DNS name the certificate must also be valid for.
        name: Option<HostName>,
        /// POST (default) or GET.
        method: DohMethod,
        /// Issuer pins: SHA-256 of the SPKI of any CA certificate in the verified chain.
        pins: Vec<SpkiPin>,
    },
}

/// A rule an upstream entry breaks; [`UpstreamRule::key`] names the key within the entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamRule {
    /// `protocol` is neither `dot` nor `doh`.
    #[error("unknown protocol `{0}` (expected \"dot\" or \"doh\")")]
    UnknownProtocol(String),
    /// `method` is neither `post` nor `get`.
    #[error("unknown method `{0}` (expected \"post\" or \"get\")")]
    UnknownMethod(String),
    /// A DoT upstream without `ip`.
    #[error("required for a DoT upstream")]
    DotNeedsIp,
    /// A DoH-only key (`url`, or `method = "get"`) on a DoT upstream.
    #[error("only for protocol = \"doh\"")]
    DohOnly(&'static str),
    /// A DoH upstream without `url`.
    #[error("required for a DoH upstream")]
    DohNeedsUrl,
    /// The URL does not parse or is not `https://`.
    #[error("{0}")]
    BadUrl(String),
    /// `ip` is not an IP address.
    #[error("`{0}` is not an IP address")]
    BadIp(String),
    /// `ip` differs from the IP in the DoH URL.
    #[error(
        "{ip} differs from the address in the URL ({url_ip}); the certificate is checked \
         against the address dialed"
    )]
    IpDiffersFromUrl {
        /// The `ip` key.
        ip: IpAddr,
        /// The URL's host.
        url_ip: IpAddr,
    },
    /// A DoH URL with a host name and no `ip`.
    #[error(
        "a DoH URL with a host name needs an explicit `ip` (ctdns never bootstraps through \
         plain DNS)"
    )]
    NameUrlNeedsIp,
    /// `name` is not a DNS name.
    #[error(transparent)]
    BadName(#[from] BadHostName),
    /// `pins[index]` is not a SHA-256 SPKI pin.
    #[error("{source}")]
    BadPin {
        /// Position in `pins`.
        index: usize,
        /// Why.
        source: PinError,
    },
}

impl UpstreamRule {
    /// The key within the entry at fault, e.g. `url` or `pins[0]`.
    pub fn key(&self) -> String {
        match self {
            UpstreamRule::UnknownProtocol(_) => "protocol".into(),
            UpstreamRule::UnknownMethod(_) => "method".into(),
            UpstreamRule::DotNeedsIp
            | UpstreamRule::BadIp(_)
            | UpstreamRule::IpDiffersFromUrl { .. }
            | UpstreamRule::NameUrlNeedsIp => "ip".into(),
            UpstreamRule::DohOnly(key) => (*key).into(),
            UpstreamRule::DohNeedsUrl | UpstreamRule::BadUrl(_) => "url".into(),
            UpstreamRule::BadName(_) => "name".into(),
            UpstreamRule::BadPin { index, .. } => format!("pins[{index}]"),
        }
    }
}

impl UpstreamConfig {
    /// `dot` or `doh`.
    pub fn protocol(&self) -> Protocol {
        match self {
            UpstreamConfig::Dot { .. } => Protocol::Dot,
            UpstreamConfig::Doh { .. } => Protocol::Doh,
        }
    }

    /// The issuer pins.
    pub fn pins(&self) -> &[SpkiPin] {
        match self {
            UpstreamConfig::Dot { pins, .. } | UpstreamConfig::Doh { pins, .. } => pins,
        }
    }

    /// The issuer pins, to change.
    pub fn pins_mut(&mut self) -> &mut Vec<SpkiPin> {
        match self {
            UpstreamConfig::Dot { pins, .. } | UpstreamConfig::Doh { pins, .. } => pins,
        }
    }

    /// The DNS name the certificate must also be valid for.
    pub fn name(&self) -> Option<&HostName> {
        match self {
            UpstreamConfig::Dot { name, .. } | UpstreamConfig::Doh { name, .. } => name.as_ref(),
        }
    }

    /// The `port` key as written (none: the protocol's or the URL's).
    pub fn port(&self) -> Option<u16> {
        match self {
            UpstreamConfig::Dot { port, .. } | UpstreamConfig::Doh { port, .. } => *port,
        }
    }

    /// Set the `port` key.
    pub fn set_port(&mut self, value: Option<u16>) {
        match self {
            UpstreamConfig::Dot { port, .. } | UpstreamConfig::Doh { port, .. } => *port = value,
        }
    }

    /// The port dialed: `port`, else 853 for DoT and the URL's port for DoH.
    pub fn effective_port(&self) -> u16 {
        match self {
            UpstreamConfig::Dot { port, .. } => port.unwrap_or(DOT_PORT),
            UpstreamConfig::Doh { port, url, .. } => port.unwrap_or(url.target().port),
        }
    }

    /// The address dialed. For DoH: `ip`, else the URL's IP; an entry built in code that
    /// breaks the rules parsing enforces (a name URL without `ip`, an `ip` other than the
    /// URL's) is refused with the rule.
    pub fn dial_addr(&self) -> Result<SocketAddr, UpstreamRule> {
        let ip = match self {
            UpstreamConfig::Dot { ip, .. } => *ip,
            UpstreamConfig::Doh { url, ip, .. } => doh_dial_ip(url, *ip)?,
        };
        Ok(SocketAddr::new(ip, self.effective_port()))
    }

    /// The label the upstream goes by in logs, verifiers and evidence: `dot://IP:PORT`, or
    /// the DoH URL.
    pub fn label(&self) -> String {
        match self {
            UpstreamConfig::Dot { ip, .. } => {
                format!("dot://{}", SocketAddr::new(*ip, self.effective_port()))
            }
            UpstreamConfig::Doh { url, .. } => url.to_string(),
        }
    }

    /// Check the rules parsing enforces, for entries built in code.
    pub fn check(&self) -> Result<(), UpstreamRule> {
        self.dial_addr().map(|_| ())
    }

    fn from_raw(raw: RawUpstream) -> Result<Self, UpstreamRule> {
        let protocol = match raw.protocol.as_deref() {
            Some(p) => p.parse()?,
            None => Protocol::Dot,
        };
        let method = raw.method.as_deref().map(parse_method).transpose()?;
        let ip = match raw.ip {
            Some(s) => Some(
                s.parse::<IpAddr>()
                    .map_err(|_| UpstreamRule::BadIp(s.clone()))?,
            ),
            None => None,
        };
        let name = raw.name.as_deref().map(HostName::parse).transpose()?;
        let pins = raw
            .pins
            .iter()
            .enumerate()
            .map(|(index, p)| {
                SpkiPin::parse(p).map_err(|source| UpstreamRule::BadPin { index, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        match protocol {
            Protocol::Dot => {
                if raw.url.is_some() {
                    return Err(UpstreamRule::DohOnly("url"));
                }
                // `method = "post"` is accepted and dropped: earlier `ctdns config show`
                // output wrote it on every upstream, and such files must still load.
                if method == Some(DohMethod::Get) {
                    return Err(UpstreamRule::DohOnly("method"));
                }
                Ok(UpstreamConfig::Dot {
                    ip: ip.ok_or(UpstreamRule::DotNeedsIp)?,
                    port: raw.port,
                    name,
                    pins,
                })
            }
            Protocol::Doh => {
                let url = raw.url.as_deref().ok_or(UpstreamRule::DohNeedsUrl)?;
                let url = DohUrl::parse(url).map_err(UpstreamRule::BadUrl)?;
                doh_dial_ip(&url, ip)?;
                Ok(UpstreamConfig::Doh {
                    url,
                    ip,
                    port: raw.port,
                    name,
                    method: method.unwrap_or_default(),
                    pins,
                })
            }
        }
    }

    fn to_raw(&self) -> RawUpstream {
        let pins = self.pins().iter().map(SpkiPin::to_string).collect();
        let name = self.name().map(HostName::to_string);
        match self {
            UpstreamConfig::Dot { ip, port, .. } => RawUpstream {
                protocol: Some(Protocol::Dot.as_str().into()),
                ip: Some(ip.to_string()),
                port: *port,
                name,
                url: None,
                method: None,
                pins,
            },
            UpstreamConfig::Doh {
                url,
                ip,
                port,
                method,
                ..
            } => RawUpstream {
                protocol: Some(Protocol::Doh.as_str().into()),
                ip: ip.map(|ip| ip.to_string()),
                port: *port,
                name,
                url: Some(url.to_string()),
                method: Some(method_name(*method).into()),
                pins,
            },
        }
    }
}

/// The IP a DoH upstream dials: the URL's, or `ip` (which must agree with it).
fn doh_dial_ip(url: &DohUrl, ip: Option<IpAddr>) -> Result<IpAddr, UpstreamRule> {
    match (url.target().ip, ip) {
        (Some(url_ip), Some(ip)) if url_ip != ip => {
            Err(UpstreamRule::IpDiffersFromUrl { ip, url_ip })
        }
        (Some(ip), _) | (None, Some(ip)) => Ok(ip),
        (None, None) => Err(UpstreamRule::NameUrlNeedsIp),
    }
}

/// An upstream as the file writes it: every key optional, values as strings so that the
/// conversion ([`UpstreamConfig::from_raw`]) can name the key of a bad value.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(default)]
    pins: Vec<String>,
}

impl Serialize for UpstreamConfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_raw().serialize(serializer)
    }
}

/// One entry on its own; the error names the key within it (`` `url`: … ``). Inside a
/// [`super::Config`] the list is read by `deserialize_list`, which adds `upstream[N]`.
impl<'de> Deserialize<'de> for UpstreamConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawUpstream::deserialize(deserializer)?;
        Self::from_raw(raw).map_err(|rule| de::Error::custom(format!("`{}`: {rule}", rule.key())))
    }
}

/// One entry of the `[[upstream]]` list, read knowing its index: errors are raised inside
/// the entry (so TOML points at that entry's table) and name `upstream[N]`.
struct Entry {
    index: usize,
}

impl<'de> de::DeserializeSeed<'de> for Entry {
    type Value = UpstreamConfig;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        let index = self.index;
        let raw = RawUpstream::deserialize(deserializer)
            .map_err(|e| keyed_error(format!("upstream[{index}]"), e))?;
        UpstreamConfig::from_raw(raw)
            .map_err(|rule| keyed_error(format!("upstream[{index}].{}", rule.key()), rule))
    }
}

/// Read the `[[upstream]]` list, naming `upstream[N]` (and the key within) in every error.
pub(super) fn deserialize_list<'de, D>(deserializer: D) -> Result<Vec<UpstreamConfig>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct List;

    impl<'de> Visitor<'de> for List {
        type Value = Vec<UpstreamConfig>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of [[upstream]] tables")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(up) = seq.next_element_seed(Entry { index: out.len() })? {
                out.push(up);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_seq(List)
}

/// Read a list of `T` (pins, fingerprints) naming `key[i]` when an element is refused.
pub(super) fn deserialize_keyed_list<'de, D, T>(
    deserializer: D,
    key: &'static str,
) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    struct List<T> {
        key: &'static str,
        _t: std::marker::PhantomData<T>,
    }

    impl<'de, T> Visitor<'de> for List<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a list of strings (`{}`)", self.key)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            loop {
                let index = out.len();
                let key = || format!("{}[{index}]", self.key);
                let text = match seq.next_element::<String>() {
                    Ok(Some(text)) => text,
                    Ok(None) => return Ok(out),
                    Err(e) => return Err(keyed_error(key(), e)),
                };
                out.push(text.parse().map_err(|e| keyed_error(key(), e))?);
            }
        }
    }

    deserializer.deserialize_seq(List {
        key,
        _t: std::marker::PhantomData,
    })
}
