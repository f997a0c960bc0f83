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
//! `check` is a client of the library: it builds its verifier from the same [`Trust`] and
//! its transport with the same assembly as `ctdns serve` ([`runtime::dot_transport`],
//! [`runtime::doh_transport`]), opens the connection through the same
//! [`upstream::connect`](crate::upstream::connect) path, and sends its query through the
//! transport, so it judges exactly what `serve` judges. A decision observer added to the
//! verifier records the presented chain, the stapled OCSP response and the decision,
//! accepted or refused; a refused certificate aborts the handshake before any DNS byte is
//! sent. The report has the format of `ctdns verify`.
//! Exit codes: 0 accepted, 1 refused, 2 bad input or connection failure (the message says
//! which).

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use rustls::pki_types::{DnsName, ServerName};

use crate::cli::common::{self, CtArgs, EXIT_BAD_INPUT, EXIT_REFUSED};
use crate::cli::describe;
use crate::config::DohTarget;
use crate::runtime::{self, Trust};
use crate::tls::pins::{CertFingerprint, SpkiPin};
use crate::tls::verifier::{CtVerifier, Decision, DecisionEvent, DecisionObserver};
use crate::upstream::doh::{DohEndpoint, DohError, DohMethod, DohOptions};
use crate::upstream::dot::DotOptions;
use crate::upstream::{Transport, UpstreamError};

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

    /// The TLS server name: the dialed IP, or a DoH URL's host name.
    #[cfg(test)]
    fn server_name(&self) -> ServerName<'static> {
        match self {
            Target::Dot { addr } => ServerName::IpAddress(addr.ip().into()),
            Target::Doh { .. } => self
                .endpoint()
                .map(|e| e.server_name())
                .unwrap_or_else(|| ServerName::IpAddress(self.addr().ip().into())),
        }
    }

    /// The DoH endpoint, for a DoH target.
    fn endpoint(&self) -> Option<DohEndpoint> {
        match self {
            Target::Dot { .. } => None,
            Target::Doh {
                addr,
                host_name,
                authority,
                path,
            } => Some(DohEndpoint {
                addr: *addr,
                host_name: host_name.clone(),
                authority: authority.clone(),
                path: path.clone(),
            }),
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

/// What the verifier saw and decided.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The presented chain, leaf first.
    pub chain: Vec<Vec<u8>>,
    /// The stapled OCSP response (empty when none).
    pub ocsp: Vec<u8>,
    /// The verdict.
    pub decision: Decision,
}

/// A decision observer keeping the last verification it was told about, accepted or
/// refused: what `check` reports.
#[derive(Debug, Default)]
pub struct Recorder {
    seen: Mutex<Option<Seen>>,
}

impl Recorder {
    /// What the verifier saw, once a handshake got as far as the certificate.
    pub fn take(&self) -> Option<Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn record(&self, event: &DecisionEvent<'_>) {
        let seen = Seen {
            chain: event.chain.iter().map(|c| c.as_ref().to_vec()).collect(),
            ocsp: event.ocsp.to_vec(),
            decision: event.decision.clone(),
        };
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(seen);
    }
}

impl DecisionObserver for Recorder {
    fn refused(&self, event: &DecisionEvent<'_>) {
        self.record(event);
    }

    fn accepted(&self, event: &DecisionEvent<'_>) {
        self.record(event);
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
        .collect::<Result<HashSet<_>, _>>()?;
    let deny_spki = args
        .deny_spki
        .iter()
        .map(|p| SpkiPin::parse(p).map_err(|e| bad(format!("--deny-spki `{p}`: {e}"))))
        .collect::<Result<HashSet<_>, _>>()?;
    let name = match &args.name {
        Some(n) => Some(
            ServerName::try_from(n.clone())
                .map_err(|_| bad(format!("--name `{n}` is not a valid DNS name")))?,
        ),
        None => None,
    };
    // The verifier `serve` would build for this upstream.
    let trust = Trust::from_checker(roots, checker, common::staleness(&args.ct), deny, deny_spki);
    let verifier = trust.verifier(&target.describe(), pins, name);
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

/// Connect to `target` through the transport `serve` would use, verify, and (when
/// accepted and asked) send one query over the verified connection. TCP connect plus TLS
/// handshake get `timeout` together; the query gets `timeout` again.
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
    let recorder = Arc::new(Recorder::default());
    let verifier = verifier.with_observer(recorder.clone());
    let transport: Arc<dyn Transport> = match target.endpoint() {
        None => runtime::dot_transport(
            addr,
            verifier,
            DotOptions {
                connect_timeout: timeout,
                query_timeout: timeout,
                ..DotOptions::default()
            },
        )
        .map_err(|e| bad(e.to_string()))?,
        Some(endpoint) => {
            endpoint.check().map_err(|e| bad(e.to_string()))?;
            runtime::doh_transport(
                endpoint,
                verifier,
                DohOptions {
                    method: DohMethod::Post,
                    connect_timeout: timeout,
                    query_timeout: timeout,
                    ..DohOptions::default()
                },
            )
            .map_err(|e| bad(e.to_string()))?
        }
    };
    let connected = transport.connect().await;
    let seen = recorder.take();
    let (session, seen) = match (connected, seen) {
        (Ok(Some(session)), Some(seen)) if seen.decision.accepted() => (session, seen),
        (Err(UpstreamError::Refused { .. }), Some(seen)) if !seen.decision.accepted() => {
            return Ok(CheckOutcome {
                seen,
                tls: None,
                answer: None,
            })
        }
        (Ok(_), _) => {
            return Err(conn_err(
                Stage::Tls,
                "completed without certificate verification".into(),
            ))
        }
        (Err(error), seen) => return Err(connect_failure(error, seen.as_ref(), timeout, addr)),
    };
    let info = TlsInfo {
        version: session.version,
        cipher_suite: session.cipher_suite,
        alpn: session
            .alpn
            .map(|p| String::from_utf8_lossy(&p).into_owned()),
    };
    let answer = match query {
        None => None,
        Some((name, rtype)) => {
            let exchange = async {
                let wire = query_wire(name, *rtype)?;
                let response = transport.query(&wire).await.map_err(|e| e.to_string())?;
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

/// A connection attempt that reached no verdict, as the step that failed.
fn connect_failure(
    error: UpstreamError,
    seen: Option<&Seen>,
    timeout: Duration,
    addr: SocketAddr,
) -> CheckError {
    let (stage, reason) = match error {
        UpstreamError::Connect { source, .. } => (Stage::Tcp, source.to_string()),
        UpstreamError::ConnectTimeout {
            tcp_connected: false,
            ..
        } => (Stage::Tcp, format!("no connection within {timeout:?}")),
        UpstreamError::ConnectTimeout { .. } | UpstreamError::Timeout => (
            Stage::Tls,
            format!("handshake not finished within {timeout:?}"),
        ),
        UpstreamError::Doh(DohError::AlpnNotH2 { negotiated }) => (
            Stage::Alpn,
            format!(
                "the server did not select h2 (selected: {})",
                negotiated
                    .map(|p| String::from_utf8_lossy(&p).into_owned())
                    .unwrap_or_else(|| "none".into())
            ),
        ),
        UpstreamError::Tls { source, .. } => match seen {
            Some(_) => (
                Stage::Tls,
                format!("failed after the certificate was accepted: {source}"),
            ),
            None => (
                Stage::Tls,
                format!("failed before a certificate was presented: {source}"),
            ),
        },
        other => (Stage::Tls, other.to_string()),
    };
    CheckError::Connection {
        stage,
        addr,
        reason,
    }
}

/// The query message: recursion desired, a random message ID (the transport sends it
/// under its own ID and restores this one).
fn query_wire(name: &Name, rtype: RecordType) -> Result<Vec<u8>, String> {
    let mut b = [0u8; 2];
    crate::upstream::msgid::system_random()
        .fill(&mut b)
        .map_err(|_| "no randomness for the message ID".to_string())?;
    let mut msg = Message::new(u16::from_be_bytes(b), MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name.clone(), rtype));
    msg.to_vec().map_err(|e| format!("encoding the query: {e}"))
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
        let cfg = rustls::ServerConfig::builder_with_provider(crate::provider::default_provider())
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

    /// A DoH server (HTTP/2 POST when `alpn` offers `h2`) answering one A query with
    /// 192.0.2.1; returns its address and a task yielding how many DNS queries arrived.
    async fn doh_server(
        leaf: &IssuedLeaf,
        alpn: &[&[u8]],
    ) -> (SocketAddr, tokio::task::JoinHandle<usize>) {
        let mut cfg =
            rustls::ServerConfig::builder_with_provider(crate::provider::default_provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(leaf.chain.clone(), leaf.key_der())
                .unwrap();
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(cfg));
        let task = tokio::spawn(async move {
            let queries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let Ok((tcp, _)) = listener.accept().await else {
                return 0;
            };
            let Ok(tls) = acceptor.accept(tcp).await else {
                return 0;
            };
            if tls.get_ref().1.alpn_protocol() != Some(b"h2".as_slice()) {
                return 0;
            }
            let counted = Arc::clone(&queries);
            let service =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let counted = Arc::clone(&counted);
                    async move {
                        use http_body_util::BodyExt;
                        let body = req.into_body().collect().await?.to_bytes();
                        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let query = Message::from_vec(&body).unwrap();
                        let mut resp =
                            Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
                        for q in &query.queries {
                            resp.add_query(q.clone());
                            resp.add_answer(Record::from_rdata(
                                q.name().clone(),
                                300,
                                RData::A(rdata::A::new(192, 0, 2, 1)),
                            ));
                        }
                        Ok::<_, hyper::Error>(
                            http::Response::builder()
                                .header(http::header::CONTENT_TYPE, "application/dns-message")
                                .body(http_body_util::Full::new(bytes::Bytes::from(
                                    resp.to_vec().unwrap(),
                                )))
                                .unwrap(),
                        )
                    }
                });
            let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            queries.load(std::sync::atomic::Ordering::SeqCst)
        });
        (addr, task)
    }

    fn doh_target(addr: SocketAddr) -> Target {
        Target::parse(&format!("https://{addr}/dns-query"), None, None).unwrap()
    }

    #[tokio::test]
    async fn accepted_doh_resolver_answers_over_http2() {
        let (pki, honest, _) = setup();
        let (addr, server) = doh_server(&honest, &[b"h2"]).await;
        let target = doh_target(addr);
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
        let tls = outcome.tls.as_ref().unwrap();
        assert_eq!(tls.alpn.as_deref(), Some("h2"));
        let answer = outcome.answer.as_ref().unwrap().as_ref().unwrap();
        assert_eq!(answer.rcode, "NOERROR");
        assert!(answer.answers[0].contains("192.0.2.1"), "{answer:?}");
        let text = human(&target, &outcome);
        assert!(text.contains("ALPN h2"), "{text}");
        assert!(text.contains("VERDICT: ACCEPTED"), "{text}");
        drop(outcome);
        // The transport (and its connection) is gone with `check`: the server ends.
        assert_eq!(server.await.unwrap(), 1, "one query over HTTP/2");
    }

    #[tokio::test]
    async fn doh_without_h2_is_an_alpn_failure_after_an_accepted_certificate() {
        let (pki, honest, _) = setup();
        // A server that selects no protocol at all (one that only offers others would
        // refuse the handshake with a no_application_protocol alert instead).
        let (addr, server) = doh_server(&honest, &[]).await;
        match check(
            &doh_target(addr),
            verifier(&pki, vec![]),
            None,
            Duration::from_secs(10),
        )
        .await
        {
            Err(CheckError::Connection { stage, reason, .. }) => {
                assert_eq!(stage, Stage::Alpn);
                assert!(reason.contains("did not select h2"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(server.await.unwrap(), 0, "no DNS byte without h2");
    }

    #[tokio::test]
    async fn refused_doh_resolver_gets_no_query() {
        let (pki, honest, _) = setup();
        let (addr, server) = doh_server(&honest, &[b"h2"]).await;
        let rogue_pin = SpkiPin::parse(&pki.rogue_root().spki_sha256_base64()).unwrap();
        let q = (
            Name::from_ascii("www.example.test.").unwrap(),
            RecordType::A,
        );
        let outcome = check(
            &doh_target(addr),
            verifier(&pki, vec![rogue_pin]),
            Some(&q),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(
            outcome.seen.decision.refusal.as_ref().map(|r| r.rule()),
            Some("issuer-pin")
        );
        assert!(outcome.answer.is_none() && outcome.tls.is_none());
        assert_eq!(server.await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_silent_tls_peer_is_a_handshake_timeout() {
        let (pki, _, _) = setup();
        // Accepts TCP (backlog) and never answers the ClientHello.
        let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        match check(
            &Target::Dot { addr },
            verifier(&pki, vec![]),
            None,
            Duration::from_millis(300),
        )
        .await
        {
            Err(CheckError::Connection { stage, reason, .. }) => {
                assert_eq!(stage, Stage::Tls);
                assert!(reason.contains("not finished within"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        drop(listener);
    }
}
