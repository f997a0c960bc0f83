//! reqwest integration (feature `reqwest`): [`CtResolve`] implements `reqwest::dns::Resolve`
//! over a [`Client`], so an application resolves every host name (A and AAAA) over
//! CT-verified DoT/DoH upstreams, with no local stub and no system resolver.
//!
//! For the HTTPS connections themselves to require CT-logged certificates too, give reqwest
//! [`super::name_mode_tls_config`] through `ClientBuilder::tls_backend_preconfigured`
//! (`use_preconfigured_tls` in older reqwest): see `examples/reqwest_ct.rs`.
//!
//! ctdns enables reqwest's `rustls-no-provider` (ctdns's provider, ring or aws-lc-rs by
//! feature, stays the only one; see [`crate::provider`]), so a reqwest client built with
//! neither `tls_backend_preconfigured` nor a process-wide rustls provider installed panics
//! in `build()` (reqwest's behaviour); an app that enables
//! reqwest's own `rustls` feature gets its default provider (aws-lc-rs) instead.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ctdns::client::{reqwest::CtResolve, Client};
//!
//! // Cloudflare and Quad9 over DoT, CT-verified, issuer-pinned (the built-in default).
//! let client = Client::from_config(&ctdns::config::Config::default())?;
//! let http = reqwest::Client::builder()
//!     .dns_resolver(CtResolve::new(client))
//!     .tls_backend_preconfigured(ctdns::client::name_mode_tls_config(
//!         ctdns::tls::CtVerifier::new(
//!             std::sync::Arc::new(ctdns::tls::roots::webpki_roots()),
//!             ctdns::ct::checker::CtChecker::new(
//!                 std::sync::Arc::new(ctdns::ct::log_list::LogList::bundled()?),
//!                 ctdns::ct::policy::CtPolicy::chrome(),
//!             ),
//!         ),
//!         ctdns::client::ALPN_HTTPS,
//!     )?)
//!     .build()?;
//! let page = http.get("https://example.com/").send().await?;
//! # let _ = page;
//! # Ok(()) }
//! ```

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

use ::reqwest::dns::{Addrs, Name as ReqwestName, Resolve, Resolving};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::{Client, ClientError};

/// Why a host name could not be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// A query failed and no answer gave an address or an error code: the A query's error
    /// (else the AAAA query's). A certificate refusal is reachable from it with
    /// [`crate::tls::Refusal::find_in`].
    #[error("resolving `{host}`: {source}")]
    Query {
        /// The host name.
        host: String,
        /// The failed query's error.
        source: ClientError,
    },
    /// The upstream answered with an error code (e.g. NXDOMAIN, SERVFAIL) and no addresses.
    #[error("resolving `{host}`: the upstream answered {rcode}")]
    ResponseCode {
        /// The host name.
        host: String,
        /// The response code of the A answer (of the AAAA answer when the A query failed).
        rcode: ResponseCode,
    },
    /// The answers hold no A or AAAA record for the name (or its CNAME chain).
    #[error("resolving `{host}`: no A or AAAA records")]
    NoAddresses {
        /// The host name.
        host: String,
    },
}

/// A `reqwest::dns::Resolve` that asks CT-verified upstreams (through a [`Client`]) for the
/// A and AAAA records of each host name, concurrently.
#[derive(Clone, Debug)]
pub struct CtResolve {
    client: Client,
}

impl CtResolve {
    /// Resolve through `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The addresses of `host` (IPv4 first, then IPv6), as `resolve` gives them to reqwest.
    pub async fn lookup(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let fqdn = if host.ends_with('.') {
            host.to_string()
        } else {
            format!("{host}.")
        };
        let (a, aaaa) = tokio::join!(
            self.client.query(&fqdn, RecordType::A),
            self.client.query(&fqdn, RecordType::AAAA)
        );
        let qname = Name::from_ascii(&fqdn).map_err(|_| ResolveError::Query {
            host: host.to_string(),
            source: ClientError::Name(host.to_string()),
        })?;
        let mut addrs = Vec::new();
        let mut rcode = None;
        for answer in [&a, &aaaa].into_iter().flatten() {
            addrs.extend(addresses(&qname, answer));
            if answer.metadata.response_code != ResponseCode::NoError && rcode.is_none() {
                rcode = Some(answer.metadata.response_code);
            }
        }
        if !addrs.is_empty() {
            return Ok(addrs);
        }
        let host = host.to_string();
        if let Some(rcode) = rcode {
            return Err(ResolveError::ResponseCode { host, rcode });
        }
        match a.err().or(aaaa.err()) {
            Some(source) => Err(ResolveError::Query { host, source }),
            None => Err(ResolveError::NoAddresses { host }),
        }
    }
}

/// The A and AAAA addresses of `qname` in `answer`, following CNAMEs within the answer.
fn addresses(qname: &Name, answer: &Message) -> Vec<IpAddr> {
    let mut names: HashSet<Name> = HashSet::from([qname.to_lowercase()]);
    // Each pass may add one CNAME target; a chain is at most as long as the answer.
    for _ in 0..answer.answers.len() {
        let before = names.len();
        for record in &answer.answers {
            if let RData::CNAME(target) = &record.data {
                if names.contains(&record.name.to_lowercase()) {
                    names.insert(target.0.to_lowercase());
                }
            }
        }
        if names.len() == before {
            break;
        }
    }
    answer
        .answers
        .iter()
        .filter(|r| names.contains(&r.name.to_lowercase()))
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        })
        .collect()
}

impl Resolve for CtResolve {
    fn resolve(&self, name: ReqwestName) -> Resolving {
        let this = self.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let ips = this.lookup(&host).await?;
            // Port 0: reqwest puts the URL's port (or the scheme's) in its place.
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::rr::rdata::{A, AAAA, CNAME};
    use hickory_proto::rr::Record;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn addresses_follow_the_cname_chain_and_ignore_other_names() {
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        // Out of order on purpose: the A record of the target comes before the CNAME.
        m.add_answer(Record::from_rdata(
            name("edge.cdn.test."),
            60,
            RData::A(A::new(192, 0, 2, 9)),
        ));
        m.add_answer(Record::from_rdata(
            name("WWW.test."),
            60,
            RData::CNAME(CNAME(name("edge.cdn.test."))),
        ));
        m.add_answer(Record::from_rdata(
            name("www.test."),
            60,
            RData::AAAA(AAAA::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        ));
        m.add_answer(Record::from_rdata(
            name("unrelated.test."),
            60,
            RData::A(A::new(198, 51, 100, 1)),
        ));
        let got = addresses(&name("www.test."), &m);
        assert_eq!(
            got,
            vec![
                IpAddr::from([192, 0, 2, 9]),
                "2001:db8::1".parse::<IpAddr>().unwrap()
            ]
        );
    }
}
