//! hickory-resolver integration (feature `hickory-resolver`): a hickory `Resolver` whose
//! DoT and DoH connections run the CT verifier.
//!
//! hickory passes each name server's configured TLS name (`server_name`) to rustls as the
//! server name, so the verifier runs in name mode ([`crate::tls::CtVerifier::for_server_names`]):
//! the certificate must be valid for that name (rule `dns-name`), chain to a trusted root,
//! carry SCTs meeting the CT policy, match the pins and avoid the denylist — before hickory
//! sends a DNS byte. A name server configured for plain UDP or TCP is refused when the
//! resolver is built, so nothing is ever asked in clear text.
//!
//! hickory reports a name server it could not connect to as `NoConnections`, without the TLS
//! error, so a refusal's rule is not in the lookup error: give the verifier an observer
//! ([`crate::tls::CtVerifier::with_observer`]) to be told, or read the `refusal` log event
//! the verifier emits (`tracing`, WARN).
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ctdns::ct::{checker::CtChecker, log_list::LogList, policy::CtPolicy};
//! use ctdns::tls::{roots::webpki_roots, CtVerifier};
//! use hickory_resolver::config::NameServerConfig;
//!
//! let checker = CtChecker::new(Arc::new(LogList::bundled()?), CtPolicy::chrome());
//! let verifier = CtVerifier::new(Arc::new(webpki_roots()), checker);
//! let servers = vec![NameServerConfig::tls("1.1.1.1".parse()?, "one.one.one.one".into())];
//! let resolver = ctdns::client::hickory::resolver(servers, verifier)?;
//! // resolver.lookup_ip("example.com.").await? ...
//! # let _ = resolver;
//! # Ok(()) }
//! ```

use std::net::IpAddr;

use hickory_resolver::config::{NameServerConfig, ProtocolConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::{ResolverBuilder, TokioResolver};

use crate::tls::CtVerifier;

/// Why a CT-verified hickory resolver could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HickoryError {
    /// No name server was given.
    #[error("no name servers: give at least one DoT or DoH name server")]
    NoNameServers,
    /// A name server has no connection configured at all.
    #[error("name server {ip}: no connection configured")]
    NoConnections {
        /// The name server's address.
        ip: IpAddr,
    },
    /// A name server connection is not DoT or DoH, so it would not be CT-verified.
    #[error(
        "name server {ip}: protocol {protocol} is not DoT or DoH, so it cannot be CT-verified"
    )]
    NotEncrypted {
        /// The name server's address.
        ip: IpAddr,
        /// The protocol configured (e.g. `udp`).
        protocol: String,
    },
    /// The rustls client configuration could not be built.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// hickory refused to build the resolver.
    #[error("building the resolver: {0}")]
    Build(#[source] NetError),
}

/// A resolver builder over `name_servers` (each DoT or DoH only) whose TLS connections are
/// verified by `verifier` in name mode. Tune it through `options_mut()` (timeouts, cache,
/// `/etc/hosts`), then `build()`.
pub fn builder(
    name_servers: Vec<NameServerConfig>,
    verifier: CtVerifier,
) -> Result<ResolverBuilder<TokioRuntimeProvider>, HickoryError> {
    if name_servers.is_empty() {
        return Err(HickoryError::NoNameServers);
    }
    for server in &name_servers {
        if server.connections.is_empty() {
            return Err(HickoryError::NoConnections { ip: server.ip });
        }
        for connection in &server.connections {
            match &connection.protocol {
                ProtocolConfig::Tls { .. } | ProtocolConfig::Https { .. } => {}
                other => {
                    return Err(HickoryError::NotEncrypted {
                        ip: server.ip,
                        protocol: other.to_protocol().to_string(),
                    })
                }
            }
        }
    }
    // Empty ALPN: hickory's DoH sets `h2` itself when none is offered; DoT needs none.
    let tls = super::name_mode_tls_config(verifier, &[])?;
    Ok(TokioResolver::builder_with_config(
        ResolverConfig::from_name_servers(name_servers),
        TokioRuntimeProvider::default(),
    )
    .with_tls_config(tls))
}

/// A resolver over `name_servers` (each DoT or DoH only) whose TLS connections are verified
/// by `verifier` in name mode, with hickory's default options.
pub fn resolver(
    name_servers: Vec<NameServerConfig>,
    verifier: CtVerifier,
) -> Result<TokioResolver, HickoryError> {
    builder(name_servers, verifier)?
        .build()
        .map_err(HickoryError::Build)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::{checker::CtChecker, log_list::LogList, policy::CtPolicy};
    use std::sync::Arc;

    fn verifier() -> CtVerifier {
        let checker = CtChecker::new(Arc::new(LogList::bundled().unwrap()), CtPolicy::chrome());
        CtVerifier::new(Arc::new(crate::tls::roots::webpki_roots()), checker)
    }

    #[test]
    fn clear_text_name_servers_are_refused_when_building() {
        let ip = IpAddr::from([127, 0, 0, 1]);
        let err = builder(vec![NameServerConfig::udp_and_tcp(ip)], verifier())
            .err()
            .unwrap();
        assert!(
            matches!(&err, HickoryError::NotEncrypted { ip: i, protocol } if *i == ip && protocol == "udp"),
            "{err}"
        );
        assert!(matches!(
            builder(Vec::new(), verifier()).err(),
            Some(HickoryError::NoNameServers)
        ));
        assert!(builder(
            vec![NameServerConfig::tls(ip, "dns.test".into())],
            verifier()
        )
        .is_ok());
    }
}
