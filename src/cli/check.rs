//! `ctdns check`: connect once to a live DoT or DoH resolver and audit the certificate it
//! presents, exactly as `ctdns serve` would decide, then optionally send one query.
//!
//! TARGET is either
//! - an IP address: DNS-over-TLS to `IP:--port` (default 853), TLS server name = the IP;
//! - an `https://` URL: DNS-over-HTTPS over HTTP/2 (ALPN `h2`), port from the URL (default
//!   443). With an IP host the IP is dialed. With a host name, `--ip` is required (ctdns
//!   never resolves names through plain DNS): the IP is dialed, the name is sent as SNI, and
//!   the certificate must carry both the IP (IP SAN) and the name.
//!
//! The handshake is run with a verifier that records the presented chain and stapled OCSP
//! response and runs [`CtVerifier::verify`] on them; a refused certificate aborts the
//! handshake before any DNS byte is sent. The report has the format of `ctdns verify`.
//! Exit codes: 0 accepted, 1 refused, 2 bad input or connection failure (the message says
//! which).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use http_body_util::{BodyExt, Full};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::pki_types::{CertificateDer, DnsName, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::cli::common::{self, CtArgs, EXIT_BAD_INPUT, EXIT_REFUSED};
use crate::cli::describe;
use crate::config::DohTarget;
use crate::tls::config::ALPN_H2;
use crate::tls::pins::{CertFingerprint, SpkiPin};
use crate::tls::verifier::{CtVerifier, Decision};

/// Arguments of `ctdns check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// An IP address (DNS-over-TLS) or an https:// URL (DNS-over-HTTPS).
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// DoT port (a DoH URL carries its own port).
    #[arg(long)]
    pub port: Option<u16>,
    /// The IP to dial for a DoH URL whose host is a name (required then).
    #[arg(long)]
    pub ip: Option<IpAddr>,
    /// A DNS name the certificate must also be valid for.
    #[arg(long)]
    pub name: Option<String>,
    /// Issuer pin (base64 SHA-256 of a CA's SPKI); repeatable.
    #[arg(long = "pin", value_name = "BASE64")]
    pub pins: Vec<String>,
    /// Denylisted certificate SHA-256 (hex); repeatable.
    #[arg(long = "deny", value_name = "SHA256")]
    pub deny: Vec<String>,
    /// Denylisted key (base64 SHA-256 of an SPKI, the pin form): no path may run through it,
    /// trust anchors included; repeatable.
    #[arg(long = "deny-spki", value_name = "BASE64")]
    pub deny_spki: Vec<String>,
    /// After acceptance, resolve this name over the verified connection and print the answer.
    #[arg(long, value_name = "NAME")]
    pub query: Option<String>,
    /// Record type of --query.
    #[arg(long = "type", value_name = "TYPE", default_value = "A")]
    pub qtype: String,
    /// Seconds allowed for connecting (TCP + TLS), and again for the query.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub timeout: u64,
    /// Print one JSON object instead of the human report.
    #[arg(long)]
    pub json: bool,
    /// CT options.
    #[command(flatten)]
    pub ct: CtArgs,
}

/// Why `ctdns check` could not reach a verdict, or failed after it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The arguments or the files they name are unusable.
    #[error("bad input: {0}")]
    BadInput(String),
    /// The resolver could not be reached or did not complete a step.
    #[error("connection failure ({stage}) to {addr}: {reason}")]
    Connection {
        /// The step that failed.
        stage: Stage,
        /// The address dialed.
        addr: SocketAddr,
        /// What happened.
        reason: String,
    },
}

/// The step of a check that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// TCP connect.
    Tcp,
    /// The TLS handshake (other than a certificate refusal, which is a verdict).
    Tls,
    /// ALPN negotiation (DoH needs `h2`).
    Alpn,
    /// The DNS query after acceptance.
    Query,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Tcp => "TCP connect",
            Stage::Tls => "TLS handshake",
            Stage::Alpn => "ALPN",
            Stage::Query => "DNS query",
        })
    }
}

fn bad(msg: impl Into<String>) -> CheckError {
    CheckError::BadInput(msg.into())
}

/// Where to connect and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// DNS-over-TLS.
    Dot {
        /// The address dialed.
        addr: SocketAddr,
    },
    /// DNS-over-HTTPS over HTTP/2.
    Doh {
        /// The address dialed.
        addr: SocketAddr,
        /// The URL's host name (sent as SNI), for a name URL; the IP SAN is always checked
        /// against `addr`'s IP.
        host_name: Option<DnsName<'static>>,
        /// HTTP/2 `:authority`.
        authority: String,
        /// Path and query.
        path: String,
    },
}

impl Target {
    /// Interpret TARGET, `--port` and `--ip`.
    pub fn parse(target: &str, port: Option<u16>, ip: Option<IpAddr>) -> Result<Self, CheckError> {
        if target.contains("://") {
            if port.is_some() {
                return Err(bad(
                    "--port is for DoT targets; a DoH URL carries its port (https://IP:PORT/path)",
                ));
            }
            let t = DohTarget::parse(target).map_err(CheckError::BadInput)?;
            let (dial, host_name) = match (&t.host_name, t.ip, ip) {
                (None, Some(url_ip), None) => (url_ip, None),
                (None, Some(url_ip), Some(given)) if given == url_ip => (url_ip, None),
                (None, Some(url_ip), Some(given)) => {
                    return Err(bad(format!(
                        "--ip {given} differs from the URL's address {url_ip}"
                    )))
                }
                (Some(host), _, Some(given)) => (
                    given,
                    Some(
                        DnsName::try_from(host.clone())
                            .map_err(|_| bad(format!("`{host}` is not a valid host name")))?,
                    ),
                ),
                (Some(host), _, None) => {
                    return Err(bad(format!(
                        "the URL's host `{host}` is a name: give the IP to dial with --ip \
                         (ctdns never resolves resolver names through plain DNS)"
                    )))
                }
                (None, None, _) => return Err(bad(format!("`{target}` has no host"))),
            };
            return Ok(Target::Doh {
                addr: SocketAddr::new(dial, t.port),
                host_name,
                authority: t.authority,
                path: t.path,
            });
        }
        // What users type: `IP`, `[IPv6]`, `IP:PORT` or `[IPv6]:PORT`.
        let (addr_ip, written_port) = match target.parse::<SocketAddr>() {
            Ok(sa) => (sa.ip(), Some(sa.port())),
            Err(_) => {
                let bare = target
                    .strip_prefix('[')
                    .and_then(|t| t.strip_suffix(']'))
                    .unwrap_or(target);
                let ip: IpAddr = bare.parse().map_err(|_| {
                    bad(format!(
                        "TARGET `{target}` is neither an IP address or IP:PORT (DoT) nor an \
                         https:// URL (DoH)"
                    ))
                })?;
                (ip, None)
            }
        };
        if ip.is_some_and(|i| i != addr_ip) {
            return Err(bad("--ip is for DoH URLs with a host name"));
        }
        let port = match (written_port, port) {
            (Some(w), Some(p)) if w != p => {
                return Err(bad(format!(
                    "TARGET `{target}` says port {w} but --port says {p}"
                )))
            }
            (Some(w), _) => w,
            (None, p) => p.unwrap_or(853),
        };
        Ok(Target::Dot {
            addr: SocketAddr::new(addr_ip, port),
        })
    }

    /// The address dialed.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Target::Dot { addr } | Target::Doh { addr, .. } => *addr,
        }
    }

    fn server_name(&self) -> ServerName<'static> {
        match self {
            Target::Dot { addr } => ServerName::IpAddress(addr.ip().into()),
            Target::Doh {
                host_name: Some(name),
                ..
            } => ServerName::DnsName(name.clone()),
            Target::Doh { addr, .. } => ServerName::IpAddress(addr.ip().into()),
        }
    }

    fn describe(&self) -> String {
        match self {
            Target::Dot { addr } => format!("dot://{addr}"),
            Target::Doh {
                addr,
                host_name,
                authority,
                path,
            } => match host_name {
                Some(_) => format!("https://{authority}{path} (dialing {addr})"),
                None => format!("https://{authority}{path}"),
            },
        }
    }
}

/// What the recording verifier saw.
#[derive(Debug)]
pub struct Seen {
    /// The presented chain, leaf first.
    pub chain: Vec<Vec<u8>>,
    /// The stapled OCSP response (empty when none).
    pub ocsp: Vec<u8>,
    /// The verdict.
    pub decision: Decision,
}

/// A [`ServerCertVerifier`] that runs [`CtVerifier::verify`] for the dialed IP and keeps
/// what it was shown and what it decided; handshake signatures are checked by the
/// [`CtVerifier`].
#[derive(Debug)]
pub struct RecordingVerifier {
    inner: CtVerifier,
    dialed_ip: IpAddr,
    seen: Mutex<Option<Seen>>,
}

impl RecordingVerifier {
    /// Wrap `inner` for a connection to `dialed_ip`.
    pub fn new(inner: CtVerifier, dialed_ip: IpAddr) -> Self {
        Self {
            inner,
            dialed_ip,
            seen: Mutex::new(None),
        }
    }

    /// What the verifier saw, once the handshake got as far as the certificate.
    pub fn take(&self) -> Option<Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let sni_name = match server_name {
            ServerName::DnsName(_) => Some(server_name),
            _ => None,
        };
        let decision = self.inner.verify(
            end_entity,
            intermediates,
            Some(self.dialed_ip),
            sni_name,
            ocsp_response,
            now,
        );
        let accepted = decision.accepted();
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.as_ref().to_vec())
            .collect();
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(Seen {
            chain,
            ocsp: ocsp_response.to_vec(),
            decision,
        });
        if accepted {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
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

/// The negotiated TLS parameters of an accepted connection.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TlsInfo {
    /// e.g. `TLSv1_3`.
    pub version: String,
    /// e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: String,
    /// The negotiated ALPN protocol, if any.
    pub alpn: Option<String>,
}

/// The answer to `--query`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueryAnswer {
    /// The name asked for.
    pub name: String,
    /// The record type asked for.
    pub qtype: String,
    /// The response code, e.g. `NOERROR`, `SERVFAIL`, `NXDOMAIN`.
    pub rcode: String,
    /// Answer records in presentation format.
    pub answers: Vec<String>,
}

/// The result of one check.
#[derive(Debug)]
pub struct CheckOutcome {
    /// What the verifier saw and decided.
    pub seen: Seen,
    /// TLS parameters, when the handshake completed.
    pub tls: Option<TlsInfo>,
    /// The answer to `--query`, when asked and accepted.
    pub answer: Option<Result<QueryAnswer, CheckError>>,
}

/// Run `ctdns check`.
pub fn run(args: CheckArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ctdns check: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let logs_and_target = prepare(&args);
    let (verifier, logs, target, query) = match logs_and_target {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ctdns check: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let timeout = Duration::from_secs(args.timeout.max(1));
    let outcome = match runtime.block_on(check(&target, verifier, query.as_ref(), timeout)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ctdns check: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let accepted = outcome.seen.decision.accepted();
    if args.json {
        let mut json = serde_json::to_value(describe::decision_json(
            &outcome.seen.decision,
            &outcome.seen.chain,
            &logs,
        ))
        .unwrap_or_default();
        if let Some(obj) = json.as_object_mut() {
            obj.insert("target".into(), target.describe().into());
            obj.insert("ocsp_staple_bytes".into(), outcome.seen.ocsp.len().into());
            obj.insert(
                "tls".into(),
                serde_json::to_value(&outcome.tls).unwrap_or_default(),
            );
            let answer = match &outcome.answer {
                Some(Ok(a)) => serde_json::to_value(a).unwrap_or_default(),
                Some(Err(e)) => serde_json::json!({ "error": e.to_string() }),
                None => serde_json::Value::Null,
            };
            obj.insert("answer".into(), answer);
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_else(|e| e.to_string())
        );
    } else {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        print!("{}", describe::log_list_line(&logs, now_ms));
        print!("{}", human(&target, &outcome));
    }
    if let Some(Err(e)) = &outcome.answer {
        eprintln!("ctdns check: certificate accepted, but {e}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    if accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_REFUSED)
    }
}

type Prepared = (
    CtVerifier,
    Arc<crate::ct::log_list::LogList>,
    Target,
    Option<(Name, RecordType)>,
);

fn prepare(args: &CheckArgs) -> Result<Prepared, CheckError> {
    let target = Target::parse(&args.target, args.port, args.ip)?;
    let checker = common::checker(&args.ct).map_err(CheckError::BadInput)?;
    let logs = checker.logs().clone();
    let roots = common::roots(args.ct.roots.as_deref()).map_err(CheckError::BadInput)?;
    let pins = args
        .pins
        .iter()
        .map(|p| SpkiPin::parse(p).map_err(|e| bad(format!("--pin `{p}`: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let deny = args
        .deny
        .iter()
        .map(|d| CertFingerprint::parse(d).map_err(|e| bad(format!("--deny `{d}`: {e}"))))
        .collect::<Result<std::collections::HashSet<_>, _>>()?;
    let deny_spki = args
        .deny_spki
        .iter()
        .map(|p| SpkiPin::parse(p).map_err(|e| bad(format!("--deny-spki `{p}`: {e}"))))
        .collect::<Result<std::collections::HashSet<_>, _>>()?;
    let mut verifier = CtVerifier::new(Arc::new(roots), checker)
        .with_pins(pins)
        .with_denylist(Arc::new(deny))
        .with_spki_denylist(Arc::new(deny_spki))
        .with_staleness(common::staleness(&args.ct))
        .with_label(target.describe());
    if let Some(n) = &args.name {
        let name = ServerName::try_from(n.clone())
            .map_err(|_| bad(format!("--name `{n}` is not a valid DNS name")))?;
        verifier = verifier.with_dns_name(name);
    }
    let query = match &args.query {
        Some(q) => {
            let name = Name::from_ascii(q).map_err(|_| bad(format!("--query `{q}`: bad name")))?;
            let rtype: RecordType = args
                .qtype
                .to_ascii_uppercase()
                .parse()
                .map_err(|_| bad(format!("--type `{}`: unknown record type", args.qtype)))?;
            Some((name, rtype))
        }
        None => None,
    };
    Ok((verifier, logs, target, query))
}

fn tls_config(
    verifier: Arc<RecordingVerifier>,
    alpn: &[&[u8]],
) -> Result<ClientConfig, CheckError> {
    let provider = verifier.inner.provider().clone();
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS configuration: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // As in every ctdns connection: a resumed session would skip the verifier, and early
    // data would send bytes before it ran.
    config.resumption = Resumption::disabled();
    config.enable_early_data = false;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Connect to `target`, verify, and (when accepted and asked) send one query. TCP connect
/// plus TLS handshake get `timeout` together; the query gets `timeout` again.
pub async fn check(
    target: &Target,
    verifier: CtVerifier,
    query: Option<&(Name, RecordType)>,
    timeout: Duration,
) -> Result<CheckOutcome, CheckError> {
    let addr = target.addr();
    let conn_err = |stage: Stage, reason: String| CheckError::Connection {
        stage,
        addr,
        reason,
    };
    let recorder = Arc::new(RecordingVerifier::new(verifier, addr.ip()));
    let alpn: &[&[u8]] = match target {
        Target::Dot { .. } => &[],
        Target::Doh { .. } => &[ALPN_H2],
    };
    let connector = TlsConnector::from(Arc::new(tls_config(recorder.clone(), alpn)?));
    let deadline = tokio::time::Instant::now() + timeout;
    let tcp = tokio::time::timeout_at(deadline, TcpStream::connect(addr))
        .await
        .map_err(|_| conn_err(Stage::Tcp, format!("no connection within {timeout:?}")))?
        .map_err(|e| conn_err(Stage::Tcp, e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let handshake = tokio::time::timeout_at(deadline, connector.connect(target.server_name(), tcp))
        .await
        .map_err(|_| {
            conn_err(
                Stage::Tls,
                format!("handshake not finished within {timeout:?}"),
            )
        })?;
    let seen = recorder.take();
    let (stream, seen) = match (handshake, seen) {
        (Ok(stream), Some(seen)) => (stream, seen),
        (Err(_), Some(seen)) if !seen.decision.accepted() => {
            return Ok(CheckOutcome {
                seen,
                tls: None,
                answer: None,
            })
        }
        (Err(e), Some(_)) => {
            return Err(conn_err(
                Stage::Tls,
                format!("failed after the certificate was accepted: {e}"),
            ))
        }
        (Err(e), None) => {
            return Err(conn_err(
                Stage::Tls,
                format!("failed before a certificate was presented: {e}"),
            ))
        }
        (Ok(_), None) => {
            return Err(conn_err(
                Stage::Tls,
                "completed without certificate verification".into(),
            ))
        }
    };
    let conn = stream.get_ref().1;
    let info = TlsInfo {
        version: conn
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_else(|| "-".into()),
        cipher_suite: conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_else(|| "-".into()),
        alpn: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
    };
    if matches!(target, Target::Doh { .. }) && info.alpn.as_deref() != Some("h2") {
        return Err(conn_err(
            Stage::Alpn,
            format!(
                "the server did not select h2 (selected: {})",
                info.alpn.as_deref().unwrap_or("none")
            ),
        ));
    }
    let answer = match query {
        None => None,
        Some((name, rtype)) => {
            let exchange = async {
                let wire = query_wire(name, *rtype, target)?;
                let response = match target {
                    Target::Dot { .. } => dot_exchange(stream, &wire).await?,
                    Target::Doh {
                        authority, path, ..
                    } => doh_exchange(stream, authority, path, wire.clone()).await?,
                };
                parse_answer(&response, &wire, name, *rtype)
            };
            let result = tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")))
                .map_err(|reason| conn_err(Stage::Query, reason));
            Some(result)
        }
    };
    Ok(CheckOutcome {
        seen,
        tls: Some(info),
        answer,
    })
}

type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// The query message: recursion desired; ID 0 for DoH (RFC 8484 §4.1, cache friendly),
/// a random-enough ID for DoT.
fn query_wire(name: &Name, rtype: RecordType, target: &Target) -> Result<Vec<u8>, String> {
    let id = match target {
        Target::Doh { .. } => 0,
        Target::Dot { .. } => {
            let mut b = [0u8; 2];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
                .map_err(|_| "no randomness for the message ID".to_string())?;
            u16::from_be_bytes(b)
        }
    };
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name.clone(), rtype));
    msg.to_vec().map_err(|e| format!("encoding the query: {e}"))
}

/// One length-prefixed exchange over the verified DoT stream (RFC 7858 §3.3).
async fn dot_exchange(mut stream: TlsStream, wire: &[u8]) -> Result<Vec<u8>, String> {
    let len = u16::try_from(wire.len()).map_err(|_| "query too long".to_string())?;
    let mut framed = Vec::with_capacity(wire.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(wire);
    stream
        .write_all(&framed)
        .await
        .map_err(|e| format!("sending: {e}"))?;
    stream.flush().await.map_err(|e| format!("sending: {e}"))?;
    let mut len = [0u8; 2];
    stream
        .read_exact(&mut len)
        .await
        .map_err(|e| format!("reading the length: {e}"))?;
    let mut response = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream
        .read_exact(&mut response)
        .await
        .map_err(|e| format!("reading the response: {e}"))?;
    Ok(response)
}

/// One POST over HTTP/2 on the verified stream (RFC 8484 §4.1).
async fn doh_exchange(
    stream: TlsStream,
    authority: &str,
    path: &str,
    wire: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
    let driver = tokio::spawn(connection);
    let media = "application/dns-message";
    let request = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("https://{authority}{path}"))
        .header(http::header::CONTENT_TYPE, media)
        .header(http::header::ACCEPT, media)
        .body(Full::new(Bytes::from(wire)))
        .map_err(|e| format!("building the request: {e}"))?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP/2 request: {e}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("HTTP/2 body: {e}"))?
            .to_bytes();
        if status != http::StatusCode::OK {
            return Err(format!("HTTP status {status}"));
        }
        Ok(body.to_vec())
    }
    .await;
    driver.abort();
    result
}

fn parse_answer(
    response: &[u8],
    query: &[u8],
    name: &Name,
    rtype: RecordType,
) -> Result<QueryAnswer, String> {
    let msg = Message::from_vec(response).map_err(|e| format!("malformed response: {e}"))?;
    let id = query
        .get(..2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .unwrap_or(0);
    if msg.metadata.id != id {
        return Err(format!(
            "response ID {} does not match the query's {id}",
            msg.metadata.id
        ));
    }
    Ok(QueryAnswer {
        name: name.to_string(),
        qtype: rtype.to_string(),
        rcode: format!("{:?}", msg.metadata.response_code).to_ascii_uppercase(),
        answers: msg.answers.iter().map(|r| r.to_string()).collect(),
    })
}

/// The human report: target and TLS parameters, then the `ctdns verify` report, then the
/// answer to `--query`.
pub fn human(target: &Target, outcome: &CheckOutcome) -> String {
    let mut out = format!("Target: {}\n", target.describe());
    if let Some(tls) = &outcome.tls {
        out.push_str(&format!(
            "TLS: {} {} ALPN {}\n",
            tls.version,
            tls.cipher_suite,
            tls.alpn.as_deref().unwrap_or("-")
        ));
    }
    out.push_str(&match outcome.seen.ocsp.len() {
        0 => "OCSP staple: none\n".to_string(),
        n => format!("OCSP staple: {n} bytes\n"),
    });
    out.push_str(&describe::human(
        &outcome.seen.decision,
        &outcome.seen.chain,
    ));
    if let Some(Ok(a)) = &outcome.answer {
        out.push_str(&format!("\nQuery {} {}: {}\n", a.name, a.qtype, a.rcode));
        for r in &a.answers {
            out.push_str(&format!("  {r}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::checker::CtChecker;
    use crate::ct::log_list::LogList;
    use crate::ct::policy::CtPolicy;
    use crate::pki::{default_logs, IssuedLeaf, SctSpec, TestPki};
    use hickory_proto::rr::{rdata, RData, Record};
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn targets() {
        assert_eq!(
            Target::parse("192.0.2.1", None, None).unwrap(),
            Target::Dot {
                addr: "192.0.2.1:853".parse().unwrap()
            }
        );
        assert_eq!(
            Target::parse("::1", Some(8853), None).unwrap().addr(),
            "[::1]:8853".parse().unwrap()
        );
        // What users type: IP:PORT and [IPv6]:PORT, with or without a matching --port.
        for (typed, port, want) in [
            ("192.0.2.1:8853", None, "192.0.2.1:8853"),
            ("192.0.2.1:8853", Some(8853), "192.0.2.1:8853"),
            ("[2001:db8::1]:8853", None, "[2001:db8::1]:8853"),
            ("[2001:db8::1]", None, "[2001:db8::1]:853"),
            ("[::1]", Some(5353), "[::1]:5353"),
        ] {
            assert_eq!(
                Target::parse(typed, port, None).unwrap(),
                Target::Dot {
                    addr: want.parse().unwrap()
                },
                "{typed}"
            );
        }
        let t = Target::parse("https://192.0.2.1:8443/dns-query", None, None).unwrap();
        assert_eq!(t.addr(), "192.0.2.1:8443".parse().unwrap());
        assert_eq!(t.server_name(), ServerName::IpAddress(DOC_IP.into()));
        let t = Target::parse("https://dns.example/q", None, Some(LOOPBACK)).unwrap();
        assert_eq!(t.addr(), "127.0.0.1:443".parse().unwrap());
        assert_eq!(
            t.server_name(),
            ServerName::try_from("dns.example").unwrap()
        );

        let bad_cases = [
            ("https://dns.example/q", None, None, "--ip"),
            ("https://192.0.2.1/q", Some(853), None, "--port"),
            ("https://192.0.2.1/q", None, Some(LOOPBACK), "differs"),
            ("http://192.0.2.1/q", None, None, "https"),
            ("dns.example", None, None, "neither"),
            ("192.0.2.1", None, Some(LOOPBACK), "--ip"),
            ("192.0.2.1:8853", Some(853), None, "--port says 853"),
            ("[2001:db8::1", None, None, "neither"),
        ];
        for (target, port, ip, needle) in bad_cases {
            match Target::parse(target, port, ip) {
                Err(CheckError::BadInput(m)) => assert!(m.contains(needle), "{target}: {m}"),
                other => panic!("{target}: {other:?}"),
            }
        }
    }

    const DOC_IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    fn setup() -> (TestPki, IssuedLeaf, IssuedLeaf) {
        let (pki, honest) = crate::pki::demo_pki(LOOPBACK).unwrap();
        let ts = pki.now() - time::Duration::minutes(1);
        let stapled = pki
            .issue_leaf(
                &pki.leaf_spec(LOOPBACK)
                    .staple(SctSpec::at(default_logs::ALPHA, ts))
                    .staple(SctSpec::at(default_logs::BETA, ts)),
            )
            .unwrap();
        (pki, honest, stapled)
    }

    fn verifier(pki: &TestPki, pins: Vec<SpkiPin>) -> CtVerifier {
        let list = LogList::from_json(pki.log_list_json(pki.now()).unwrap().as_bytes()).unwrap();
        let roots = crate::tls::roots::anchors_from_der(&pki.trust_anchors(), "test").unwrap();
        CtVerifier::new(
            Arc::new(roots),
            CtChecker::new(Arc::new(list), CtPolicy::chrome()),
        )
        .with_pins(pins)
    }

    /// A one-connection DoT server answering one A query with 192.0.2.1; returns its
    /// address and a task yielding whether a query arrived.
    async fn dot_server(
        leaf: &IssuedLeaf,
    ) -> (SocketAddr, tokio::task::JoinHandle<std::io::Result<bool>>) {
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert_with_ocsp(
            leaf.chain.clone(),
            leaf.key_der(),
            leaf.ocsp_response.clone().unwrap_or_default(),
        )
        .unwrap();
        let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(cfg));
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await?;
            let mut tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(_) => return Ok(false),
            };
            let mut len = [0u8; 2];
            if tls.read_exact(&mut len).await.is_err() {
                return Ok(false);
            }
            let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
            tls.read_exact(&mut q).await?;
            let query = Message::from_vec(&q).map_err(std::io::Error::other)?;
            let mut resp = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
            for q in &query.queries {
                resp.add_query(q.clone());
                resp.add_answer(Record::from_rdata(
                    q.name().clone(),
                    300,
                    RData::A(rdata::A::new(192, 0, 2, 1)),
                ));
            }
            let wire = resp.to_vec().map_err(std::io::Error::other)?;
            let mut framed = (wire.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&wire);
            tls.write_all(&framed).await?;
            tls.shutdown().await?;
            Ok(true)
        });
        (addr, task)
    }

    #[tokio::test]
    async fn accepted_dot_resolver_answers_the_query() {
        let (pki, honest, stapled) = setup();
        for leaf in [&honest, &stapled] {
            let (addr, server) = dot_server(leaf).await;
            let target = Target::Dot { addr };
            let q = (
                Name::from_ascii("www.example.test.").unwrap(),
                RecordType::A,
            );
            let outcome = check(
                &target,
                verifier(&pki, vec![]),
                Some(&q),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
            assert!(
                outcome.seen.decision.accepted(),
                "{:?}",
                outcome.seen.decision
            );
            assert_eq!(outcome.seen.chain.len(), 2);
            assert_eq!(outcome.seen.ocsp.is_empty(), leaf.ocsp_response.is_none());
            let answer = outcome.answer.as_ref().unwrap().as_ref().unwrap();
            assert_eq!(answer.rcode, "NOERROR");
            assert_eq!(answer.answers.len(), 1);
            assert!(answer.answers[0].contains("192.0.2.1"), "{answer:?}");
            assert!(server.await.unwrap().unwrap(), "the server saw the query");
            let text = human(&target, &outcome);
            assert!(text.contains("VERDICT: ACCEPTED"), "{text}");
            assert!(text.contains("SCTs:"), "{text}");
        }
    }

    #[tokio::test]
    async fn refused_resolver_gets_no_query() {
        let (pki, honest, _) = setup();
        let (addr, server) = dot_server(&honest).await;
        let rogue_pin = SpkiPin::parse(&pki.rogue_root().spki_sha256_base64()).unwrap();
        let q = (
            Name::from_ascii("www.example.test.").unwrap(),
            RecordType::A,
        );
        let outcome = check(
            &Target::Dot { addr },
            verifier(&pki, vec![rogue_pin]),
            Some(&q),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        let refusal = outcome.seen.decision.refusal.as_ref().unwrap();
        assert_eq!(refusal.rule(), "issuer-pin");
        assert!(outcome.answer.is_none());
        assert!(outcome.tls.is_none());
        assert!(
            !server.await.unwrap().unwrap(),
            "no DNS byte after a refusal"
        );
    }

    /// A DoT server (rustls `with_single_cert_with_ocsp`) stapling a revoked response signed
    /// by the issuer is refused with rule `revoked` and gets no query; the same revoked
    /// response with a garbage signature is ignored, reported, and the resolver is used.
    #[tokio::test]
    async fn revoked_staple_is_refused_and_a_forged_one_ignored() {
        use crate::pki::{OcspSigner, OcspSpec};
        let (pki, _, _) = setup();
        let ts = pki.now() - time::Duration::minutes(1);
        let revoked = OcspSpec::revoked(pki.now() - time::Duration::minutes(30), None);
        let q = (
            Name::from_ascii("www.example.test.").unwrap(),
            RecordType::A,
        );
        for (spec, refused) in [
            (revoked.clone(), true),
            (revoked.signed_by(OcspSigner::GarbageSignature), false),
        ] {
            let leaf = pki
                .issue_leaf(
                    &pki.leaf_spec(LOOPBACK)
                        .embed(SctSpec::at(default_logs::ALPHA, ts))
                        .embed(SctSpec::at(default_logs::BETA, ts))
                        .with_ocsp(spec),
                )
                .unwrap();
            let (addr, server) = dot_server(&leaf).await;
            let target = Target::Dot { addr };
            let outcome = check(
                &target,
                verifier(&pki, vec![]),
                Some(&q),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
            assert_eq!(outcome.seen.ocsp, leaf.ocsp_response.clone().unwrap());
            let text = human(&target, &outcome);
            if refused {
                let refusal = outcome.seen.decision.refusal.as_ref().unwrap();
                assert_eq!(refusal.rule(), "revoked", "{refusal}");
                assert!(outcome.answer.is_none());
                assert!(!server.await.unwrap().unwrap(), "no DNS byte when revoked");
                assert!(text.contains("VERDICT: REFUSED (revoked)"), "{text}");
                assert!(
                    text.contains("Stapled OCSP (revocation): revoked at"),
                    "{text}"
                );
            } else {
                assert!(
                    outcome.seen.decision.accepted(),
                    "{:?}",
                    outcome.seen.decision
                );
                assert!(server.await.unwrap().unwrap(), "the server saw the query");
                assert!(
                    text.contains("Stapled OCSP (revocation): ignored (signature does not verify"),
                    "{text}"
                );
            }
        }
    }

    #[tokio::test]
    async fn closed_port_is_a_connection_failure() {
        let (pki, _, _) = setup();
        let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        match check(
            &Target::Dot { addr },
            verifier(&pki, vec![]),
            None,
            Duration::from_secs(10),
        )
        .await
        {
            Err(CheckError::Connection { stage, .. }) => assert_eq!(stage, Stage::Tcp),
            other => panic!("{other:?}"),
        }
    }
}
