//! A resolver client for applications: queries over CT-verified DoT/DoH upstreams,
//! without running the stub.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ctdns::client::Client;
//! use hickory_proto::rr::RecordType;
//!
//! // Cloudflare and Quad9 over DoT, CT-verified, issuer-pinned (the built-in default).
//! let client = Client::from_config(&ctdns::config::Config::default())?;
//! let answer = client.query("example.com.", RecordType::A).await?;
//! for record in &answer.answers {
//!     println!("{record}");
//! }
//! # Ok(()) }
//! ```
//!
//! Integrations for applications: [`name_mode_tls_config`] (CT for any rustls client that
//! connects by host name), `client::reqwest` (feature `reqwest`: a `reqwest::dns::Resolve`)
//! and `client::hickory` (feature `hickory-resolver`: a CT-verified hickory `Resolver`).

use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

use crate::config::Config;
use crate::runtime::{self, SetupError, Trust};
use crate::tls::CtVerifier;
use crate::upstream::{Transport, UpstreamError};

#[cfg(feature = "hickory-resolver")]
pub mod hickory;
#[cfg(feature = "reqwest")]
pub mod reqwest;

/// ALPN protocols an HTTPS client offers: HTTP/2, then HTTP/1.1.
pub const ALPN_HTTPS: &[&[u8]] = &[b"h2", b"http/1.1"];

/// A rustls client configuration for connecting **by host name** with CT enforced, for any
/// rustls client (reqwest's `tls_backend_preconfigured`, hickory's `with_tls_config`,
/// tokio-rustls): `verifier` in name mode ([`CtVerifier::for_server_names`]), so the server
/// name is checked as a name, then revocation, CT, pins and denylist, exactly as for ctdns's
/// own upstreams; session resumption and 0-RTT are off, so every connection runs the
/// verifier (see [`crate::tls::client_config`]). `alpn` is offered as given (e.g.
/// [`ALPN_HTTPS`], or empty).
///
/// A refused certificate fails the handshake with a `rustls::Error` carrying the typed
/// [`crate::tls::Refusal`]: find it in any error chain with
/// [`crate::tls::Refusal::find_in`].
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// # use std::sync::Arc;
/// # use ctdns::client::{name_mode_tls_config, ALPN_HTTPS};
/// # use ctdns::ct::{checker::CtChecker, log_list::LogList, policy::CtPolicy};
/// # use ctdns::tls::{roots::webpki_roots, CtVerifier, Refusal};
/// # use rustls::pki_types::ServerName;
/// let checker = CtChecker::new(Arc::new(LogList::bundled()?), CtPolicy::chrome());
/// let verifier = CtVerifier::new(Arc::new(webpki_roots()), checker);
/// // Name mode, resumption and 0-RTT off: every handshake runs every rule.
/// let tls = Arc::new(name_mode_tls_config(verifier, ALPN_HTTPS)?);
/// let tcp = tokio::net::TcpStream::connect("example.com:443").await?;
/// let name = ServerName::try_from("example.com")?;
/// match tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await {
///     Ok(_stream) => println!("CT-logged: speak HTTP"),
///     Err(e) => println!("refused: {:?}", Refusal::find_in(&e).map(|r| r.rule())),
/// }
/// # Ok(()) }
/// ```
pub fn name_mode_tls_config(
    verifier: CtVerifier,
    alpn: &[&[u8]],
) -> Result<rustls::ClientConfig, rustls::Error> {
    let config = crate::tls::client_config(Arc::new(verifier.for_server_names()), alpn)?;
    Ok(Arc::unwrap_or_clone(config))
}

/// Why a client query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The name is not a valid DNS name.
    #[error("invalid name `{0}`")]
    Name(String),
    /// The query could not be encoded or the answer decoded.
    #[error("DNS message: {0}")]
    Message(String),
    /// Every upstream failed (refused certificates included).
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// Resolves queries over CT-verified upstreams, with failover.
#[derive(Clone, Debug)]
pub struct Client {
    upstream: Arc<dyn Transport>,
}

impl Client {
    /// A client for the upstreams, trust and CT settings of `config` (its listener settings
    /// are ignored).
    pub fn from_config(config: &Config) -> Result<Self, SetupError> {
        config.validate()?;
        let trust = Trust::from_config(config)?;
        Ok(Self {
            upstream: runtime::pool(config, &trust)?,
        })
    }

    /// A client over an already built transport or pool.
    pub fn new(upstream: Arc<dyn Transport>) -> Self {
        Self { upstream }
    }

    /// Ask for `name`/`rtype` (class IN, recursion desired) and return the response.
    pub async fn query(&self, name: &str, rtype: RecordType) -> Result<Message, ClientError> {
        let name = Name::from_ascii(name).map_err(|_| ClientError::Name(name.to_string()))?;
        let mut msg = Message::new(0, MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = true;
        msg.add_query(Query::query(name, rtype));
        let wire = msg
            .to_vec()
            .map_err(|e| ClientError::Message(e.to_string()))?;
        let answer = self.exchange(&wire).await?;
        Message::from_vec(&answer).map_err(|e| ClientError::Message(e.to_string()))
    }

    /// Send a wire-format query and return the wire-format response.
    pub async fn exchange(&self, query: &[u8]) -> Result<Vec<u8>, UpstreamError> {
        self.upstream.query(query).await
    }
}
