//! The `ctdns demo` scenario, runnable from the library: a rogue resolver certificate that
//! is chain-valid *and* CT-logged, refused by an issuer pin before any DNS byte is sent.
//!
//! Everything runs offline on loopback:
//! 1. a test PKI ([`crate::pki`]) with an honest CA, a rogue CA and CT logs;
//! 2. DoT upstreams ([`crate::testkit::TestServer`]) on ephemeral ports of one loopback
//!    IP: the *honest* one with a leaf from the honest CA (SCTs of two operators); the *rogue*
//!    one with a leaf for the same IP from the rogue CA, also logged with two operators (the
//!    Fina scenario: a valid certificate from a CA the operator never chose); optionally a
//!    *one-operator* one with a leaf from the honest CA whose two SCTs come from logs of the
//!    same operator;
//! 3. trust as a victim would have it: both CAs are trusted roots (so the rogue chain is
//!    chain-valid), the Chrome CT policy, and an issuer pin on the honest root;
//! 4. for each upstream, the real stub ([`crate::stub::bind`] on port 0) in front of the real
//!    pool and DoT transport with the CT verifier, and one real DNS query over UDP.
//!
//! Expected: the honest upstream answers; the rogue one is refused by rule `issuer-pin`, the
//! one-operator one by rule `ct-policy`, and neither receives a single DNS byte.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use time::Duration as TimeDuration;
use tokio::net::UdpSocket;

use crate::ct::log_list::{LogList, LogListError};
use crate::ct::policy::CtPolicy;
use crate::pki::{
    default_logs, IssuedLeaf, LeafIssuer, LogStateKind, PkiError, PkiOptions, SctSpec, TestLog,
    TestPki,
};
use crate::runtime::Trust;
use crate::stub::{MetricsSnapshot, StubError, StubOptions};
use crate::testkit::{
    AnswerTable, Answers, Protocol, ServerCert, ServerError, ServerStats, TestServer,
};
pub use crate::testkit::{ObservedRefusal, RefusalLog};
use crate::tls::pins::SpkiPin;
use crate::tls::roots::RootsError;
use crate::upstream::dot::{DotOptions, DotTransport};
use crate::upstream::pool::{Pool, PoolOptions};
use crate::upstream::Transport;

/// The name the demo asks for.
pub const DEMO_NAME: &str = "bank.example.";
/// What the honest upstream answers for [`DEMO_NAME`].
pub const HONEST_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);
/// What the rogue upstream would answer (an attacker's address); ctdns must never return it.
pub const ROGUE_ANSWER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 66);
/// What the one-operator upstream would answer; ctdns must never return it.
pub const ONE_OPERATOR_ANSWER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
/// The extra log of Operator A used for the one-operator case.
pub const EXTRA_LOG_SAME_OPERATOR: &str = "Alpha-2";

/// Why the demo could not be set up (as opposed to an upstream behaving unexpectedly, which
/// the [`DemoReport`] records).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// The test PKI could not be generated.
    #[error("demo: {0}")]
    Pki(#[from] PkiError),
    /// The generated log list did not parse back.
    #[error("demo: generated log list: {0}")]
    LogList(#[from] LogListError),
    /// A generated CA is not usable as a trust anchor.
    #[error("demo: {0}")]
    Roots(#[from] RootsError),
    /// A test upstream could not start.
    #[error("demo: {0}")]
    Server(#[from] ServerError),
    /// The stub could not bind its loopback port.
    #[error("demo: stub: {0}")]
    Stub(#[from] StubError),
    /// The client TLS configuration could not be built.
    #[error("demo: TLS client configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The stub reported no bound UDP address.
    #[error("demo: the stub has no UDP address")]
    StubAddress,
    /// The demo's DNS client failed on its UDP socket; `step` names what it was doing.
    #[error("demo: DNS client: {step}: {source}")]
    Client {
        /// What the client was doing.
        step: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The demo's DNS query could not be built.
    #[error("demo: building the query: {0}")]
    Query(#[from] hickory_proto::ProtoError),
}

/// Options of [`run`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoOptions {
    /// The loopback IP every upstream listens on and every certificate names.
    pub ip: IpAddr,
    /// Also run the one-operator upstream (refused by `ct-policy`).
    pub one_operator_case: bool,
    /// Stub query timeout (a refused upstream is answered with SERVFAIL well before it).
    pub query_timeout: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            one_operator_case: true,
            query_timeout: Duration::from_secs(3),
        }
    }
}

/// What one upstream should lead to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    /// The stub returns this address.
    Answer(IpAddr),
    /// The connection is refused by this rule (see [`crate::tls::verifier::Refusal::rule`]),
    /// the client gets SERVFAIL, and the upstream receives no DNS byte.
    Refusal(&'static str),
}

/// One SCT of an upstream's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SctOrigin {
    /// The log's name.
    pub log: String,
    /// The log's operator.
    pub operator: String,
}

/// One upstream of the demo and its certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamCase {
    /// Short label: `honest`, `rogue`, `one-operator`.
    pub label: &'static str,
    /// One sentence on what this upstream stands for.
    pub story: &'static str,
    /// Common name of the CA that issued its leaf.
    pub issuer: String,
    /// The SCTs embedded in its leaf.
    pub scts: Vec<SctOrigin>,
    /// What the upstream answers for [`DEMO_NAME`] if asked.
    pub would_answer: IpAddr,
    /// What should happen.
    pub expected: Expected,
}

/// What the demo's DNS client got from the stub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsOutcome {
    /// A response with this RCODE and these A/AAAA addresses.
    Response {
        /// The response code.
        rcode: ResponseCode,
        /// Addresses in the answer section.
        addrs: Vec<IpAddr>,
    },
    /// No response within the timeout.
    NoResponse,
}

/// The mnemonic of a response code as dig prints it (`NOERROR`, `SERVFAIL`, ...).
pub fn rcode_mnemonic(rcode: ResponseCode) -> String {
    match rcode {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => other.to_string(),
    }
}

impl std::fmt::Display for DnsOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DnsOutcome::Response { rcode, addrs } if addrs.is_empty() => {
                f.write_str(&rcode_mnemonic(*rcode))
            }
            DnsOutcome::Response { rcode, addrs } => {
                let list: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
                write!(f, "{} {}", rcode_mnemonic(*rcode), list.join(", "))
            }
            DnsOutcome::NoResponse => f.write_str("no response"),
        }
    }
}

/// The outcome for one upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseResult {
    /// The upstream and its certificate.
    pub case: UpstreamCase,
    /// Where the upstream listened.
    pub upstream: SocketAddr,
    /// Where the stub listened (UDP).
    pub stub: SocketAddr,
    /// What the client got.
    pub dns: DnsOutcome,
    /// What the verifier refused (empty when it accepted).
    pub refusals: Vec<ObservedRefusal>,
    /// The upstream's counters after the query.
    pub server: ServerStats,
    /// The stub's counters after the query.
    pub stub_metrics: MetricsSnapshot,
}

impl CaseResult {
    /// Every way the outcome differs from [`UpstreamCase::expected`] (empty: as expected).
    pub fn deviations(&self) -> Vec<String> {
        let mut out = Vec::new();
        let addrs: &[IpAddr] = match &self.dns {
            DnsOutcome::Response { addrs, .. } => addrs,
            DnsOutcome::NoResponse => &[],
        };
        match &self.case.expected {
            Expected::Answer(want) => {
                match &self.dns {
                    DnsOutcome::Response { rcode, addrs }
                        if *rcode == ResponseCode::NoError && addrs.as_slice() == [*want] => {}
                    other => out.push(format!("expected NOERROR {want}, got {other}")),
                }
                if let Some(r) = self.refusals.first() {
                    out.push(format!("unexpected refusal: {}", r.message));
                }
                if self.server.app_bytes == 0 {
                    out.push("the upstream received no DNS bytes".into());
                }
            }
            Expected::Refusal(rule) => {
                match self.refusals.first() {
                    Some(r) if r.rule == *rule => {}
                    Some(r) => out.push(format!("expected rule {rule}, refused by {}", r.message)),
                    None => out.push(format!("expected rule {rule}, but nothing was refused")),
                }
                if !matches!(&self.dns, DnsOutcome::Response { rcode, .. } if *rcode == ResponseCode::ServFail)
                {
                    out.push(format!("expected SERVFAIL, got {}", self.dns));
                }
                if addrs.contains(&self.case.would_answer) {
                    out.push(format!(
                        "the upstream's answer {} reached the client",
                        self.case.would_answer
                    ));
                }
                if self.server.app_bytes != 0 {
                    out.push(format!(
                        "the upstream received {} DNS bytes",
                        self.server.app_bytes
                    ));
                }
                if self.server.handshakes != 0 {
                    out.push(format!(
                        "{} TLS handshakes completed with the upstream",
                        self.server.handshakes
                    ));
                }
            }
        }
        out
    }

    /// Whether the outcome is the expected one.
    pub fn as_expected(&self) -> bool {
        self.deviations().is_empty()
    }
}

/// Everything the demo did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoReport {
    /// Common name of the honest root.
    pub honest_root: String,
    /// Common name of the rogue root.
    pub rogue_root: String,
    /// The issuer pin configured (the honest root's SPKI).
    pub pin: SpkiPin,
    /// The logs in the generated log list: (name, operator, state).
    pub logs: Vec<(String, String, &'static str)>,
    /// One result per upstream, in the order they ran.
    pub cases: Vec<CaseResult>,
}

impl DemoReport {
    /// Whether every upstream behaved as expected.
    pub fn passed(&self) -> bool {
        !self.cases.is_empty() && self.cases.iter().all(CaseResult::as_expected)
    }

    /// The result for the upstream labelled `label`.
    pub fn case(&self, label: &str) -> Option<&CaseResult> {
        self.cases.iter().find(|c| c.case.label == label)
    }
}

/// Run the demo (see the module docs). Must be called inside a multi-threaded or current-
/// thread Tokio runtime with I/O and time enabled.
pub async fn run(opts: &DemoOptions) -> Result<DemoReport, DemoError> {
    let mut pki = TestPki::generate(&PkiOptions::default())?;
    let usable_since = pki.now() - TimeDuration::days(400);
    pki.add_log(
        TestLog::generate_ecdsa(EXTRA_LOG_SAME_OPERATOR, default_logs::OPERATOR_A)?
            .with_state(LogStateKind::Usable, usable_since),
    )?;
    let ts = pki.now() - TimeDuration::minutes(1);
    let issue = |issuer: LeafIssuer, logs: &[&str]| -> Result<IssuedLeaf, PkiError> {
        let spec = logs
            .iter()
            .fold(pki.leaf_spec(opts.ip).issued_by(issuer), |spec, log| {
                spec.embed(SctSpec::at(*log, ts))
            });
        pki.issue_leaf(&spec)
    };

    let mut plan = vec![
        (
            "honest",
            "the resolver you chose: certificate from your CA, logged by two operators",
            LeafIssuer::Intermediate,
            vec![default_logs::ALPHA, default_logs::BETA],
            HONEST_ANSWER,
            Expected::Answer(IpAddr::V4(HONEST_ANSWER)),
        ),
        (
            "rogue",
            "an interceptor with a valid, CT-logged certificate for the same IP from another trusted CA",
            LeafIssuer::RogueIntermediate,
            vec![default_logs::ALPHA, default_logs::GAMMA],
            ROGUE_ANSWER,
            Expected::Refusal("issuer-pin"),
        ),
    ];
    if opts.one_operator_case {
        plan.push((
            "one-operator",
            "a certificate from your CA whose two SCTs come from logs of one operator",
            LeafIssuer::Intermediate,
            vec![default_logs::ALPHA, EXTRA_LOG_SAME_OPERATOR],
            ONE_OPERATOR_ANSWER,
            Expected::Refusal("ct-policy"),
        ));
    }

    let log_list = LogList::from_json(pki.log_list_json(pki.now())?.as_bytes())?;
    let roots = crate::tls::roots::anchors_from_der(&pki.trust_anchors(), "demo PKI roots")?;
    let trust = Trust::from_parts(roots, log_list, CtPolicy::chrome());
    let pin = SpkiPin::of_spki(pki.root().spki_der());

    let mut cases = Vec::with_capacity(plan.len());
    for (label, story, issuer, logs, answer, expected) in plan {
        let leaf = issue(issuer, &logs)?;
        let case = UpstreamCase {
            label,
            story,
            issuer: pki
                .ca(issuer.ca())
                .map(|c| c.common_name().to_string())
                .unwrap_or_default(),
            scts: logs
                .iter()
                .map(|l| SctOrigin {
                    log: l.to_string(),
                    operator: pki.log(l).map(|x| x.operator.clone()).unwrap_or_default(),
                })
                .collect(),
            would_answer: IpAddr::V4(answer),
            expected,
        };
        cases.push(run_case(opts, &trust, pin, &leaf, case).await?);
    }
    Ok(DemoReport {
        honest_root: pki.root().common_name().to_string(),
        rogue_root: pki.rogue_root().common_name().to_string(),
        pin,
        logs: pki
            .logs()
            .iter()
            .map(|l| (l.name.clone(), l.operator.clone(), l.state.kind.as_str()))
            .collect(),
        cases,
    })
}

/// Start the upstream, then the stub with the real pool/transport/verifier in front of it,
/// ask one question over UDP, and stop both.
async fn run_case(
    opts: &DemoOptions,
    trust: &Trust,
    pin: SpkiPin,
    leaf: &IssuedLeaf,
    case: UpstreamCase,
) -> Result<CaseResult, DemoError> {
    let mut table = AnswerTable::new();
    table.insert(DEMO_NAME, case.would_answer)?;
    let server = TestServer::builder(Protocol::Dot, ServerCert::from_leaf(leaf))
        .bind(SocketAddr::new(opts.ip, 0))
        .answers(Answers::Table(table))
        .start()
        .await?;
    let upstream = server.addr();

    let label = format!("dot://{upstream}");
    let refusals = Arc::new(RefusalLog::default());
    let verifier = trust
        .verifier(&label, vec![pin], None)
        .with_observer(refusals.clone());
    let tls = crate::tls::client_config(Arc::new(verifier), &[])?;
    let dot_opts = DotOptions {
        query_timeout: opts.query_timeout,
        ..DotOptions::default()
    };
    let transport: Arc<dyn Transport> = Arc::new(DotTransport::new(upstream, tls, dot_opts));
    let pool = Arc::new(Pool::new(
        vec![transport],
        PoolOptions {
            query_timeout: opts.query_timeout,
            per_attempt_timeout: opts.query_timeout,
            ..PoolOptions::default()
        },
    ));
    let stub_opts = StubOptions {
        listen: vec![SocketAddr::new(opts.ip, 0)],
        query_timeout: opts.query_timeout,
        ..StubOptions::default()
    };
    let stub = crate::stub::bind(stub_opts).await?.start(pool);
    let stub_addr = stub.udp_addrs().first().copied();
    let dns = match stub_addr {
        Some(addr) => ask(addr, opts.query_timeout + Duration::from_secs(2)).await,
        None => Err(DemoError::StubAddress),
    };
    let stub_metrics = stub.metrics();
    stub.shutdown().await;
    let stats = server.stats();
    server.shutdown().await;
    Ok(CaseResult {
        case,
        upstream,
        stub: stub_addr.ok_or(DemoError::StubAddress)?,
        dns: dns?,
        refusals: refusals.refusals(),
        server: stats,
        stub_metrics,
    })
}

/// One A query for [`DEMO_NAME`] over UDP to `stub`.
async fn ask(stub: SocketAddr, timeout: Duration) -> Result<DnsOutcome, DemoError> {
    let io = |step| move |source| DemoError::Client { step, source };
    let bind: SocketAddr = match stub {
        SocketAddr::V4(_) => (Ipv4Addr::LOCALHOST, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::LOCALHOST, 0).into(),
    };
    let socket = UdpSocket::bind(bind).await.map_err(io("bind"))?;
    socket.connect(stub).await.map_err(io("connect"))?;
    let id = 0x5eed;
    let mut q = Message::new(id, MessageType::Query, OpCode::Query);
    q.metadata.recursion_desired = true;
    q.add_query(Query::query(Name::from_ascii(DEMO_NAME)?, RecordType::A));
    socket.send(&q.to_vec()?).await.map_err(io("send"))?;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let n = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
            Err(_) => return Ok(DnsOutcome::NoResponse),
            Ok(r) => r.map_err(io("receive"))?,
        };
        // Ignore anything that is not a parseable response to our query.
        let Some(msg) = buf.get(..n).and_then(|b| Message::from_vec(b).ok()) else {
            continue;
        };
        if msg.metadata.id != id || msg.metadata.message_type != MessageType::Response {
            continue;
        }
        let addrs = msg
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .collect();
        return Ok(DnsOutcome::Response {
            rcode: msg.metadata.response_code,
            addrs,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn honest_answers_rogue_and_one_operator_are_refused_before_any_dns_byte() {
        let report = run(&DemoOptions::default()).await.unwrap();
        assert_eq!(report.cases.len(), 3);
        for c in &report.cases {
            assert!(c.as_expected(), "{}: {:?}", c.case.label, c.deviations());
        }
        assert!(report.passed());

        let honest = report.case("honest").unwrap();
        assert_eq!(
            honest.dns,
            DnsOutcome::Response {
                rcode: ResponseCode::NoError,
                addrs: vec![IpAddr::V4(HONEST_ANSWER)]
            }
        );
        assert!(honest.server.app_bytes > 0);
        assert_eq!(honest.server.answered, 1);
        assert_eq!(honest.stub_metrics.answered, 1);

        let rogue = report.case("rogue").unwrap();
        assert_eq!(rogue.refusals.len(), 1);
        assert_eq!(rogue.refusals[0].rule, "issuer-pin");
        assert!(rogue.refusals[0].message.contains(&report.pin.to_string()));
        assert_eq!(rogue.server.app_bytes, 0);
        assert_eq!(rogue.server.handshakes, 0);
        assert!(
            rogue.server.tcp_accepted >= 1,
            "the rogue upstream was dialed"
        );
        assert_eq!(rogue.stub_metrics.servfail, 1);
        let rogue_ops: std::collections::HashSet<_> =
            rogue.case.scts.iter().map(|s| &s.operator).collect();
        assert_eq!(rogue_ops.len(), 2, "the rogue leaf is CT-compliant");

        let one = report.case("one-operator").unwrap();
        assert_eq!(one.refusals[0].rule, "ct-policy");
        assert_eq!(one.server.app_bytes, 0);
    }

    #[tokio::test]
    async fn without_the_pin_the_rogue_upstream_would_be_answered() {
        // The control experiment: the same trust without the pin accepts the rogue
        // certificate, so the pin (not the chain or CT) is what stops it.
        let pki = TestPki::generate(&PkiOptions::default()).unwrap();
        let ts = pki.now() - TimeDuration::minutes(1);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let leaf = pki
            .issue_leaf(
                &pki.leaf_spec(ip)
                    .issued_by(LeafIssuer::RogueIntermediate)
                    .embed(SctSpec::at(default_logs::ALPHA, ts))
                    .embed(SctSpec::at(default_logs::GAMMA, ts)),
            )
            .unwrap();
        let logs = LogList::from_json(pki.log_list_json(pki.now()).unwrap().as_bytes()).unwrap();
        let roots = crate::tls::roots::anchors_from_der(&pki.trust_anchors(), "t").unwrap();
        let trust = Trust::from_parts(roots, logs, CtPolicy::chrome());
        let verifier = trust.verifier("t", Vec::new(), None);
        let decision = verifier.verify(
            leaf.leaf(),
            leaf.intermediates(),
            Some(ip),
            None,
            &[],
            rustls::pki_types::UnixTime::now(),
        );
        assert!(decision.accepted(), "{:?}", decision.refusal);
        // With the honest root pinned, the same chain is refused by the pin rule.
        let pinned = trust.verifier("t", vec![SpkiPin::of_spki(pki.root().spki_der())], None);
        let decision = pinned.verify(
            leaf.leaf(),
            leaf.intermediates(),
            Some(ip),
            None,
            &[],
            rustls::pki_types::UnixTime::now(),
        );
        assert_eq!(decision.refusal.map(|r| r.rule()), Some("issuer-pin"));
    }

    #[test]
    fn outcomes_print_like_dig() {
        let ok = DnsOutcome::Response {
            rcode: ResponseCode::NoError,
            addrs: vec![IpAddr::V4(HONEST_ANSWER)],
        };
        assert_eq!(ok.to_string(), "NOERROR 192.0.2.80");
        let fail = DnsOutcome::Response {
            rcode: ResponseCode::ServFail,
            addrs: Vec::new(),
        };
        assert_eq!(fail.to_string(), "SERVFAIL");
        assert_eq!(DnsOutcome::NoResponse.to_string(), "no response");
    }

    #[test]
    fn deviations_name_what_went_wrong() {
        let case = UpstreamCase {
            label: "rogue",
            story: "",
            issuer: String::new(),
            scts: Vec::new(),
            would_answer: IpAddr::V4(ROGUE_ANSWER),
            expected: Expected::Refusal("issuer-pin"),
        };
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let leaked = CaseResult {
            case,
            upstream: addr,
            stub: addr,
            dns: DnsOutcome::Response {
                rcode: ResponseCode::NoError,
                addrs: vec![IpAddr::V4(ROGUE_ANSWER)],
            },
            refusals: Vec::new(),
            server: ServerStats {
                app_bytes: 40,
                handshakes: 1,
                ..ServerStats::default()
            },
            stub_metrics: MetricsSnapshot::default(),
        };
        let d = leaked.deviations();
        assert_eq!(d.len(), 5, "{d:?}");
        assert!(!leaked.as_expected());
        assert!(d.iter().any(|x| x.contains("40 DNS bytes")));
    }
}
