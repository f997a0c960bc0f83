//! A minimal TLS server for handshake tests: it accepts a fixed number of connections on
//! loopback, reads `ping` on each and answers `pong`; and the client side of that exchange,
//! plus [`ObservedVerifier`], a certificate verifier wrapper that records how often rustls
//! asked it to verify a chain and the OCSP staple it was handed.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::ServerError;

/// How long one connection (server side) or one exchange (client side) may take.
pub const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// A running ping server. [`PingServer::finish`] waits for its connections; dropping it
/// stops it.
#[derive(Debug)]
pub struct PingServer {
    addr: SocketAddr,
    task: Option<JoinHandle<Vec<io::Result<()>>>>,
}

impl Drop for PingServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl PingServer {
    /// Listen on `ip`, port 0, with `config`, for `connections` connections.
    pub async fn start(
        ip: IpAddr,
        config: Arc<rustls::ServerConfig>,
        connections: usize,
    ) -> Result<Self, ServerError> {
        let addr = SocketAddr::new(ip, 0);
        let (listener, bound) = super::bind(addr).await?;
        let acceptor = TlsAcceptor::from(config);
        let task = tokio::spawn(async move {
            let mut results = Vec::with_capacity(connections);
            for _ in 0..connections {
                let one = async {
                    let (tcp, _) = listener.accept().await?;
                    let mut tls = acceptor.accept(tcp).await?;
                    let mut buf = [0u8; 4];
                    tls.read_exact(&mut buf).await?;
                    if &buf != b"ping" {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, "not a ping"));
                    }
                    tls.write_all(b"pong").await?;
                    tls.shutdown().await?;
                    Ok(())
                };
                results.push(
                    tokio::time::timeout(PING_TIMEOUT, one)
                        .await
                        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into())),
                );
            }
            results
        });
        Ok(Self {
            addr: bound,
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until every connection was served (or failed); one result per connection.
    pub async fn finish(mut self) -> Vec<io::Result<()>> {
        match self.task.take() {
            Some(task) => task
                .await
                .unwrap_or_else(|e| vec![Err(io::Error::other(e))]),
            None => Vec::new(),
        }
    }
}

/// Connect to `addr` with `config` as `name`, send `ping`, and expect `pong`.
pub async fn ping(
    config: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    name: ServerName<'static>,
) -> io::Result<()> {
    let connector = TlsConnector::from(config);
    let attempt = async {
        let tcp = TcpStream::connect(addr).await?;
        let mut tls = connector.connect(name, tcp).await?;
        tls.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        if &buf != b"pong" {
            return Err(io::Error::other("bad pong"));
        }
        Ok(())
    };
    tokio::time::timeout(PING_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

/// Wraps a verifier and records how often rustls asked it to verify a chain, and the last
/// OCSP staple it was handed; every decision is the inner verifier's.
#[derive(Debug)]
pub struct ObservedVerifier {
    inner: Arc<dyn ServerCertVerifier>,
    calls: AtomicUsize,
    ocsp: Mutex<Option<Vec<u8>>>,
}

impl ObservedVerifier {
    /// Observe `inner`.
    pub fn new(inner: Arc<dyn ServerCertVerifier>) -> Self {
        Self {
            inner,
            calls: AtomicUsize::new(0),
            ocsp: Mutex::new(None),
        }
    }

    /// How often a chain was verified.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The OCSP staple of the last verification (`None` before the first).
    pub fn last_ocsp(&self) -> Option<Vec<u8>> {
        self.ocsp
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ServerCertVerifier for ObservedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        *self.ocsp.lock().unwrap_or_else(PoisonError::into_inner) = Some(ocsp_response.to_vec());
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::ServerCert;
    use rustls::client::WebPkiServerVerifier;

    fn client(roots: rustls::RootCertStore) -> (Arc<rustls::ClientConfig>, Arc<ObservedVerifier>) {
        let provider = crate::provider::default_provider();
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .unwrap();
        let observed = Arc::new(ObservedVerifier::new(webpki));
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(observed.clone())
            .with_no_client_auth();
        config.resumption = rustls::client::Resumption::disabled();
        (Arc::new(config), observed)
    }

    #[tokio::test]
    async fn ping_pong_is_verified_once_per_connection_and_sees_the_staple() {
        let (pki, leaf) = crate::pki::demo_pki("127.0.0.1".parse().unwrap()).unwrap();
        let staple = vec![0x30, 0x03, 0x0a, 0x01, 0x00];
        let config = ServerCert::from_leaf(&leaf)
            .with_ocsp(staple.clone())
            .server_config(&[])
            .unwrap();
        let server = PingServer::start("127.0.0.1".parse().unwrap(), Arc::new(config), 2)
            .await
            .unwrap();
        let (client, observed) = client(pki.root_store(false).unwrap());
        assert_eq!(observed.calls(), 0);
        assert_eq!(observed.last_ocsp(), None);
        let name = ServerName::IpAddress(server.addr().ip().into());
        ping(client.clone(), server.addr(), name.clone())
            .await
            .unwrap();
        ping(client, server.addr(), name).await.unwrap();
        assert_eq!(observed.calls(), 2);
        assert_eq!(observed.last_ocsp(), Some(staple));
        let served = server.finish().await;
        assert_eq!(served.len(), 2);
        assert!(served.iter().all(Result::is_ok), "{served:?}");
    }

    #[tokio::test]
    async fn an_untrusted_chain_fails_on_both_sides() {
        let (_, leaf) = crate::pki::demo_pki("127.0.0.1".parse().unwrap()).unwrap();
        let (other, _) = crate::pki::demo_pki("127.0.0.1".parse().unwrap()).unwrap();
        let config = ServerCert::from_leaf(&leaf).server_config(&[]).unwrap();
        let server = PingServer::start("127.0.0.1".parse().unwrap(), Arc::new(config), 1)
            .await
            .unwrap();
        let (client, observed) = client(other.root_store(false).unwrap());
        let name = ServerName::IpAddress(server.addr().ip().into());
        assert!(ping(client, server.addr(), name).await.is_err());
        assert_eq!(observed.calls(), 1);
        let served = server.finish().await;
        assert!(matches!(served.as_slice(), [Err(_)]), "{served:?}");
    }
}
