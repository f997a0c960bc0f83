//! The CT-enforcing rustls `ServerCertVerifier`.
//!
//! Rules run in this order, and the first that fails names the refusal:
//! 1. `chain`: the chain verifies to a trusted root for TLS server authentication (webpki).
//!    A key on the SPKI denylist is not trusted at all: a path through it (leaf, intermediate
//!    or trust anchor) is no path, so other paths (cross-signs) are tried, and when only
//!    denylisted paths exist the refusal is `denylist`, decided here;
//! 2. `ip-san`: an iPAddress SAN equals the IP address that was dialed (a CN or dNSName
//!    holding the IP does not count); `dns-name`, when a name is configured, also matches.
//!    In name mode ([`CtVerifier::for_server_names`], for HTTPS clients and resolvers that
//!    connect by name) a DNS server name is checked as a name (`dns-name`) instead, with no
//!    IP rule; an IP server name still needs its IP SAN;
//! 3. `revoked`: a stapled OCSP response that verifies (signed by the leaf's issuer on the
//!    verified path or a responder it authorized, for this leaf, current) does not say
//!    `revoked`; a staple that does not verify is ignored and reported, never a refusal
//!    (see [`crate::tls::revocation`]). It runs right after the chain and name checks —
//!    it needs the verified issuer, and a revoked certificate is refused as revoked
//!    whatever its SCTs;
//! 4. `certificate` / `ct-policy` / `log-list-stale`: the CT policy over embedded and
//!    OCSP-stapled SCTs, with the issuer key hash taken from the verified path (stapled
//!    SCTs that cannot be read are ignored and reported; a malformed embedded list is
//!    `certificate`);
//! 5. `issuer-pin`: when pins are configured, a CA certificate of the verified path matches.
//!    When the path webpki found first is not pinned, path building runs again accepting only
//!    pinned paths, so a valid pinned alternative (a cross-signed intermediate) is found and
//!    no unpinned path is ever accepted;
//! 6. `denylist`: no certificate of the presented chain is denylisted (by SHA-256 of the
//!    whole certificate).
//!
//! The handshake ([`CtVerifier::verify`]) stops at the first failure. The offline audit
//! ([`CtVerifier::audit`], `ctdns verify`) evaluates every rule it can even after a failure
//! and reports each one's outcome ([`RuleOutcome`]: passed, failed, or skipped and why);
//! its verdict is the first failed rule, the refusal `verify` decides.
//!
//! Every connection runs all of them: the client configuration built by
//! `ctdns::tls::client_config` disables session resumption (which would skip
//! `verify_server_cert`) and 0-RTT (which would send DNS bytes before verification).

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};

use crate::ct::cert::LeafCert;
use crate::ct::checker::{CtChecker, CtInputError};
use crate::ct::log_list::{Staleness, StalenessError, StalenessPolicy};
use crate::ct::policy::CtReport;
use crate::tls::pins::{CertFingerprint, SpkiPin};
use crate::tls::presented::{Presented, RefusedCertificate};
use crate::tls::revocation::{self, RevocationReason, StapleCheck};

/// Why a server certificate was refused. [`Refusal::rule`] names the rule that failed.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The chain does not verify to a trusted root (or is expired, or not for serverAuth).
    #[error("rule chain: {0}")]
    Chain(webpki::Error),
    /// The connection was not made to an IP address, and no dialed IP was configured.
    #[error("rule ip-san: ctdns dials resolvers by IP address, but the server name is `{0}`")]
    NotDialedByIp(String),
    /// No iPAddress SAN equals the dialed IP.
    #[error("rule ip-san: the certificate has no IP address SAN equal to {ip} ({error})")]
    IpSanMismatch {
        /// The dialed IP.
        ip: IpAddr,
        /// The webpki error.
        error: webpki::Error,
    },
    /// The configured DNS name is not among the certificate's names.
    #[error("rule dns-name: the certificate is not valid for `{name}` ({error})")]
    DnsNameMismatch {
        /// The configured name.
        name: String,
        /// The webpki error.
        error: webpki::Error,
    },
    /// A stapled OCSP response that verifies (signed by the issuer or a responder it
    /// authorized, for this certificate, current) says the certificate is revoked.
    #[error("rule revoked: {}", revocation::describe_revocation(.serial, .revoked_at, .reason))]
    Revoked {
        /// The certificate's serial number (INTEGER content bytes).
        serial: Vec<u8>,
        /// `revocationTime`, Unix seconds.
        revoked_at: u64,
        /// `revocationReason`, when given.
        reason: Option<RevocationReason>,
    },
    /// The certificate's CT inputs (its embedded SCT list) are malformed.
    #[error("rule certificate: {0}")]
    Malformed(#[from] CtInputError),
    /// The CT policy is not met.
    #[error("rule ct-policy: {}", ct_failure(.0))]
    CtPolicy(Box<CtReport>),
    /// The log list is older than allowed and the configuration refuses stale lists.
    #[error("rule log-list-stale: the CT log list is {age_days} days old (max {max_days})")]
    StaleLogList {
        /// Age of the list in days.
        age_days: u64,
        /// Configured maximum age in days.
        max_days: u64,
    },
    /// The log list has no timestamp, so its freshness cannot be shown, and the
    /// configuration refuses lists whose freshness is not shown.
    #[error("rule log-list-stale: the CT log list has no log_list_timestamp, so its freshness cannot be shown")]
    UndatedLogList,
    /// No CA certificate of the verified path matches a configured issuer pin.
    #[error("rule issuer-pin: no CA in the verified chain matches a pin (chain CA pins: {}; configured: {})", join(.chain), join(.pins))]
    IssuerNotPinned {
        /// SPKI pins of the CA certificates of the verified path, issuer first.
        chain: Vec<SpkiPin>,
        /// The configured pins.
        pins: Vec<SpkiPin>,
    },
    /// Every path to a trusted root runs through a key on the SPKI denylist (or the leaf's
    /// own key is on it).
    #[error("rule denylist: key {pin} is denylisted (SPKI SHA-256), and no path avoids it")]
    SpkiDenylisted {
        /// The denylisted SPKI pin met on the path.
        pin: SpkiPin,
    },
    /// A certificate of the presented chain is on the denylist.
    #[error("rule denylist: certificate {fingerprint} is denylisted")]
    Denylisted {
        /// SHA-256 fingerprint of the denylisted certificate.
        fingerprint: CertFingerprint,
    },
}

fn ct_failure(report: &CtReport) -> String {
    match &report.outcome {
        Err(failure) => failure.to_string(),
        Ok(()) => "compliant".to_string(),
    }
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Refusal {
    /// The short name of the rule that failed, e.g. `ct-policy`, `issuer-pin`.
    pub fn rule(&self) -> &'static str {
        match self {
            Refusal::Chain(_) => "chain",
            Refusal::NotDialedByIp(_) | Refusal::IpSanMismatch { .. } => "ip-san",
            Refusal::DnsNameMismatch { .. } => "dns-name",
            Refusal::Revoked { .. } => "revoked",
            Refusal::Malformed(_) => "certificate",
            Refusal::CtPolicy(_) => "ct-policy",
            Refusal::StaleLogList { .. } | Refusal::UndatedLogList => "log-list-stale",
            Refusal::IssuerNotPinned { .. } => "issuer-pin",
            Refusal::Denylisted { .. } | Refusal::SpkiDenylisted { .. } => "denylist",
        }
    }

    /// Find the refusal inside an error returned by a TLS handshake (a `std::io::Error`
    /// from tokio-rustls wrapping a `rustls::Error`), if the verifier refused.
    pub fn find_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refusal> {
        let mut cur: Option<&'a (dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = cur {
            if let Some(r) = e.downcast_ref::<Refusal>() {
                return Some(r);
            }
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if let Some(inner) = io.get_ref() {
                    if let Some(r) = Self::find_in(inner) {
                        return Some(r);
                    }
                }
            }
            if let Some(rustls::Error::InvalidCertificate(CertificateError::Other(other))) =
                e.downcast_ref::<rustls::Error>()
            {
                if let Some(r) = other.0.downcast_ref::<Refusal>() {
                    return Some(r);
                }
                if let Some(r) = other.0.downcast_ref::<RefusedCertificate>() {
                    return Some(&r.refusal);
                }
            }
            if let Some(r) = e.downcast_ref::<RefusedCertificate>() {
                return Some(&r.refusal);
            }
            cur = e.source();
        }
        None
    }
}

/// The outcome of one verification: the refusal, if any, and what was learned on the way.
#[derive(Clone, Debug)]
pub struct Decision {
    /// The CT report, when verification got as far as the CT step (in an [`Audit`]:
    /// whenever the SCTs could be evaluated, see [`Audit::ct_issuer`]).
    pub ct: Option<CtReport>,
    /// SPKI pins of the CA certificates of the verified path (issuer first, anchor last),
    /// when the chain verified.
    pub path_pins: Vec<SpkiPin>,
    /// What the stapled OCSP response said, or why it was ignored, when one was stapled
    /// and the chain and names verified.
    pub staple: Option<StapleCheck>,
    /// `None` when every rule passed.
    pub refusal: Option<Refusal>,
}

impl Decision {
    /// Whether every rule passed.
    pub fn accepted(&self) -> bool {
        self.refusal.is_none()
    }
}

/// One rule of the verifier, in the order the rules run. [`Rule::name`] is the name a
/// [`Refusal::rule`] of that rule carries (except that rule `chain` refuses as `denylist`
/// when only paths through a denylisted key exist).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// The chain verifies to a trusted root, through no denylisted key.
    Chain,
    /// An iPAddress SAN equals the dialed IP.
    IpSan,
    /// The certificate is valid for the requested and the configured DNS names.
    DnsName,
    /// A verified stapled OCSP response does not say revoked.
    Revoked,
    /// The log list is fresh enough (when stale lists are refused).
    LogListStale,
    /// The certificate and its embedded SCT list are well-formed.
    Certificate,
    /// The CT policy is met.
    CtPolicy,
    /// A CA of the verified path matches a configured issuer pin.
    IssuerPin,
    /// No presented certificate is on the certificate denylist.
    Denylist,
}

impl Rule {
    /// Every rule, in the order they run.
    pub const ALL: [Rule; 9] = [
        Rule::Chain,
        Rule::IpSan,
        Rule::DnsName,
        Rule::Revoked,
        Rule::LogListStale,
        Rule::Certificate,
        Rule::CtPolicy,
        Rule::IssuerPin,
        Rule::Denylist,
    ];

    /// The rule's short name, e.g. `chain`, `ip-san`, `ct-policy`.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Chain => "chain",
            Rule::IpSan => "ip-san",
            Rule::DnsName => "dns-name",
            Rule::Revoked => "revoked",
            Rule::LogListStale => "log-list-stale",
            Rule::Certificate => "certificate",
            Rule::CtPolicy => "ct-policy",
            Rule::IssuerPin => "issuer-pin",
            Rule::Denylist => "denylist",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an audit did not evaluate a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// Rule `ip-san`: no IP address was given (name mode).
    NoIp,
    /// Rule `dns-name`: no DNS name was given or configured.
    NoName,
    /// The leaf cannot be read as an X.509 certificate (rule `chain` failed on it).
    LeafUnreadable,
    /// The rule needs the verified path, and rule `chain` found none.
    NoVerifiedPath,
    /// Rule `revoked`: no OCSP response was stapled.
    NoStaple,
    /// Rule `revoked`: the stapled OCSP response was ignored, for this reason.
    StapleIgnored(revocation::StapleIgnored),
    /// Rules `certificate` and `ct-policy`: the chain did not verify, and the presented
    /// chain holds no certificate named as the leaf's issuer, so the issuer key hash the
    /// embedded SCTs sign is unknown.
    NoIssuer,
    /// Rule `ct-policy`: the certificate or its embedded SCT list is malformed (rule
    /// `certificate` failed).
    CertificateMalformed,
    /// Nothing is configured for this rule (no pins, no denylisted certificates).
    NotConfigured,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NoIp => f.write_str("no IP address given (name mode)"),
            SkipReason::NoName => f.write_str("no DNS name given"),
            SkipReason::LeafUnreadable => f.write_str("the leaf is not a readable certificate"),
            SkipReason::NoVerifiedPath => {
                f.write_str("needs a verified path, and the chain failed")
            }
            SkipReason::NoStaple => f.write_str("no OCSP response stapled"),
            SkipReason::StapleIgnored(reason) => {
                write!(f, "the stapled OCSP response was ignored ({reason})")
            }
            SkipReason::NoIssuer => f.write_str(
                "the chain failed and the presented chain holds no certificate named as the \
                 leaf's issuer, so the SCTs' issuer key hash is unknown",
            ),
            SkipReason::CertificateMalformed => {
                f.write_str("the certificate's CT inputs are malformed (rule certificate)")
            }
            SkipReason::NotConfigured => f.write_str("not configured"),
        }
    }
}

/// The outcome of one rule in an [`Audit`].
#[derive(Clone, Debug)]
pub enum RuleResult {
    /// The rule held.
    Passed,
    /// The rule failed with this refusal.
    Failed(Refusal),
    /// The rule was not evaluated, for this reason.
    Skipped(SkipReason),
}

/// One rule and its outcome.
#[derive(Clone, Debug)]
pub struct RuleOutcome {
    /// The rule.
    pub rule: Rule,
    /// Its outcome.
    pub result: RuleResult,
}

/// Whose key the embedded SCTs of an audit were checked against (the issuer key hash).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CtIssuer {
    /// The leaf's issuer on the verified path, as in the handshake.
    VerifiedPath,
    /// The chain did not verify: the certificate of the presented chain whose subject is
    /// the leaf's issuer name, not verified to have signed the leaf.
    PresentedChain,
}

impl CtIssuer {
    /// `verified_path` or `presented_chain`.
    pub fn name(self) -> &'static str {
        match self {
            CtIssuer::VerifiedPath => "verified_path",
            CtIssuer::PresentedChain => "presented_chain",
        }
    }
}

/// An offline audit ([`CtVerifier::audit`]): every rule's outcome, in order, evaluated
/// even after a failure, and a decision whose refusal is the first failed rule — the
/// refusal [`CtVerifier::verify`] decides for the same input.
#[derive(Clone, Debug)]
pub struct Audit {
    /// One outcome per rule of [`Rule::ALL`], in that order.
    pub rules: Vec<RuleOutcome>,
    /// The verdict (`refusal`: the first failed rule's refusal), the verified path's CA
    /// pins, the staple, and the CT report whenever the SCTs could be evaluated (also
    /// after an earlier failure; see [`Audit::ct_issuer`]).
    pub decision: Decision,
    /// Whose key the CT report's embedded SCTs were checked against, when there is a
    /// report.
    pub ct_issuer: Option<CtIssuer>,
}

impl Audit {
    /// The first failed rule's refusal; `None` when none failed.
    pub fn verdict(&self) -> Option<&Refusal> {
        self.decision.refusal.as_ref()
    }

    /// Whether no rule failed.
    pub fn accepted(&self) -> bool {
        self.decision.accepted()
    }

    /// The outcome of `rule`.
    pub fn outcome(&self, rule: Rule) -> Option<&RuleResult> {
        self.rules
            .iter()
            .find(|o| o.rule == rule)
            .map(|o| &o.result)
    }
}

impl RuleOutcome {
    /// `Passed` or `Failed` from a rule's result.
    fn of(rule: Rule, result: Result<(), Refusal>) -> Self {
        Self {
            rule,
            result: match result {
                Ok(()) => RuleResult::Passed,
                Err(refusal) => RuleResult::Failed(refusal),
            },
        }
    }

    /// `Skipped` for `reason`.
    fn skipped(rule: Rule, reason: SkipReason) -> Self {
        Self {
            rule,
            result: RuleResult::Skipped(reason),
        }
    }
}

/// What a decision observer is told about one verification: enough to keep evidence of a
/// refused certificate, or to report an accepted one (`ctdns check`).
#[derive(Debug)]
pub struct RefusalEvent<'a> {
    /// The label of the verifier (e.g. the upstream it guards).
    pub label: &'a str,
    /// The server name the client used.
    pub server_name: String,
    /// The presented chain, leaf first, as received.
    pub chain: Vec<CertificateDer<'a>>,
    /// The stapled OCSP response (empty when none).
    pub ocsp: &'a [u8],
    /// When it happened.
    pub now: UnixTime,
    /// The decision: with its refusal when refused, without when accepted.
    pub decision: &'a Decision,
}

/// What a [`DecisionObserver`] is told: one verification, accepted or refused.
pub type DecisionEvent<'a> = RefusalEvent<'a>;

/// The decision observer under the name it had when it was told only about refusals.
pub use self::RefusalObserver as DecisionObserver;

/// Told about every verification the handshake runs: each refusal (evidence capture,
/// logging, metrics) and each acceptance (`ctdns check` reports what it judged). Observers
/// that only care about refusals implement [`RefusalObserver::refused`] and keep the empty
/// default of [`RefusalObserver::accepted`].
pub trait RefusalObserver: Send + Sync + fmt::Debug {
    /// Called once per refused certificate, before the handshake is aborted.
    fn refused(&self, event: &RefusalEvent<'_>);

    /// Called once per accepted certificate, before the handshake goes on. The default
    /// ignores it.
    fn accepted(&self, event: &DecisionEvent<'_>) {
        let _ = event;
    }

    /// The file the evidence of `event` is saved as, for the `evidence_file` field of the
    /// `refusal` log event; `None` (the default) when this observer keeps no files.
    fn evidence_file(&self, event: &RefusalEvent<'_>) -> Option<std::path::PathBuf> {
        let _ = event;
        None
    }
}

/// The CT-enforcing certificate verifier. Build one per upstream (cheap: the log list and
/// roots are shared behind `Arc`s), and use it with `ctdns::tls::client_config`.
#[derive(Clone)]
pub struct CtVerifier {
    roots: Arc<Vec<TrustAnchor<'static>>>,
    checker: CtChecker,
    staleness: StalenessPolicy,
    pins: Vec<SpkiPin>,
    denylist: Arc<HashSet<CertFingerprint>>,
    deny_spki: Arc<HashSet<SpkiPin>>,
    dns_name: Option<ServerName<'static>>,
    dialed_ip: Option<IpAddr>,
    name_mode: bool,
    observers: Vec<Arc<dyn RefusalObserver>>,
    label: String,
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for CtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CtVerifier")
            .field("label", &self.label)
            .field("roots", &self.roots.len())
            .field("policy", self.checker.policy())
            .field("pins", &self.pins)
            .field("denylist", &self.denylist.len())
            .field("dns_name", &self.dns_name)
            .field("name_mode", &self.name_mode)
            .finish()
    }
}

impl CtVerifier {
    /// A verifier trusting `roots` and enforcing CT with `checker`; no pins, no denylist.
    pub fn new(roots: Arc<Vec<TrustAnchor<'static>>>, checker: CtChecker) -> Self {
        Self {
            roots,
            checker,
            staleness: StalenessPolicy::default(),
            pins: Vec::new(),
            denylist: Arc::new(HashSet::new()),
            deny_spki: Arc::new(HashSet::new()),
            dns_name: None,
            dialed_ip: None,
            name_mode: false,
            observers: Vec::new(),
            label: String::new(),
            provider: crate::provider::default_provider(),
        }
    }

    /// Require a CA certificate of the verified path to match one of `pins`.
    pub fn with_pins(mut self, pins: Vec<SpkiPin>) -> Self {
        self.pins = pins;
        self
    }

    /// Refuse chains containing any certificate with one of these fingerprints.
    pub fn with_denylist(mut self, denylist: Arc<HashSet<CertFingerprint>>) -> Self {
        self.denylist = denylist;
        self
    }

    /// Distrust these keys (SPKI SHA-256 pins) wherever they appear on a path: the leaf, an
    /// intermediate, a cross-signed twin of one, or a trust anchor.
    pub fn with_spki_denylist(mut self, deny: Arc<HashSet<SpkiPin>>) -> Self {
        self.deny_spki = deny;
        self
    }

    /// Also require the certificate to be valid for this DNS name.
    pub fn with_dns_name(mut self, name: ServerName<'static>) -> Self {
        self.dns_name = Some(name);
        self
    }

    /// The IP actually dialed, for connections whose TLS server name (SNI) is a DNS name
    /// (DoH URLs with a host name): the IP SAN is checked against it, and the server name
    /// as a DNS name.
    pub fn with_dialed_ip(mut self, ip: IpAddr) -> Self {
        self.dialed_ip = Some(ip);
        self
    }

    /// Name mode: verify a TLS server name that is a DNS name *as a name*, the way a browser
    /// does (chain, `dns-name` against the certificate's dNSName SANs, revocation, CT, pins,
    /// denylist — every rule but `ip-san`), so any rustls client connecting by host name
    /// (an HTTPS client, a resolver configured with a TLS name) can enforce CT.
    ///
    /// Off by default: ctdns's own DoT/DoH upstreams dial by IP and refuse a DNS server name
    /// without a dialed IP (`Refusal::NotDialedByIp`). In name mode an IP server name still
    /// needs an iPAddress SAN equal to it, and [`CtVerifier::with_dialed_ip`], when set, still
    /// adds the IP SAN rule to DNS names.
    pub fn for_server_names(mut self) -> Self {
        self.name_mode = true;
        self
    }

    /// How to treat a log list past its maximum age.
    pub fn with_staleness(mut self, staleness: StalenessPolicy) -> Self {
        self.staleness = staleness;
        self
    }

    /// Tell `observer` about every decision (refusals, and acceptances if it listens for
    /// them), besides the observers already added.
    pub fn with_observer(mut self, observer: Arc<dyn RefusalObserver>) -> Self {
        self.observers.push(observer);
        self
    }

    /// A label for logs and evidence, e.g. `dot://1.1.1.1:853`.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Use `provider` for chains, handshake signatures, OCSP and SCT signatures alike
    /// (instead of [`crate::provider::default_provider`]).
    pub fn with_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.checker = self
            .checker
            .with_algorithms(provider.signature_verification_algorithms.all);
        self.provider = provider;
        self
    }

    /// The crypto provider used for chains, handshakes and SCTs alike.
    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    /// The CT checker.
    pub fn checker(&self) -> &CtChecker {
        &self.checker
    }

    /// Run every rule on a presented chain for a connection to `ip`, at `now`.
    /// This is what the TLS handshake runs (with the dialed IP; in name mode, for a DNS
    /// server name, with the name alone), and what
    /// `ctdns verify` runs offline (where `ip: None` skips only the IP SAN rule).
    pub fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        ip: Option<IpAddr>,
        dns_name: Option<&ServerName<'_>>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Decision {
        let mut decision = Decision {
            ct: None,
            path_pins: Vec::new(),
            staple: None,
            refusal: None,
        };
        if let Err(refusal) = self.run_rules(
            end_entity,
            intermediates,
            ip,
            dns_name,
            ocsp,
            now,
            &mut decision,
        ) {
            decision.refusal = Some(refusal);
        }
        decision
    }

    /// Audit a presented chain offline (`ctdns verify`): evaluate every rule that can be
    /// evaluated, even after one failed, and say why the others were skipped. The verdict
    /// is the first failed rule, exactly the refusal [`CtVerifier::verify`] decides. When
    /// the chain fails, the SCTs are still checked, against the certificate of the
    /// presented chain named as the leaf's issuer ([`CtIssuer::PresentedChain`]); rules
    /// needing the verified path (`revoked`, `issuer-pin`) are skipped. The handshake
    /// never runs this (it stops at the first failure).
    pub fn audit(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        ip: Option<IpAddr>,
        dns_name: Option<&ServerName<'_>>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Audit {
        let mut rules = Vec::with_capacity(Rule::ALL.len());
        let mut decision = Decision {
            ct: None,
            path_pins: Vec::new(),
            staple: None,
            refusal: None,
        };
        let mut ct_issuer = None;

        // 1. chain
        let ee = webpki::EndEntityCert::try_from(end_entity).map_err(Refusal::Chain);
        let path = match &ee {
            Err(refusal) => {
                rules.push(RuleOutcome::of(Rule::Chain, Err(refusal.clone())));
                None
            }
            Ok(ee) => match self.check_chain(ee, end_entity, intermediates, now) {
                Ok(path) => {
                    decision.path_pins = path_pins(&path);
                    rules.push(RuleOutcome::of(Rule::Chain, Ok(())));
                    Some(path)
                }
                Err(refusal) => {
                    rules.push(RuleOutcome::of(Rule::Chain, Err(refusal)));
                    None
                }
            },
        };
        let ee = ee.as_ref().ok();

        // 2. names
        rules.push(match (ip, ee) {
            (None, _) => RuleOutcome::skipped(Rule::IpSan, SkipReason::NoIp),
            (Some(_), None) => RuleOutcome::skipped(Rule::IpSan, SkipReason::LeafUnreadable),
            (Some(ip), Some(ee)) => RuleOutcome::of(Rule::IpSan, check_ip_san(ee, ip)),
        });
        let named = dns_name.is_some() || self.dns_name.is_some();
        rules.push(match (named, ee) {
            (false, _) => RuleOutcome::skipped(Rule::DnsName, SkipReason::NoName),
            (true, None) => RuleOutcome::skipped(Rule::DnsName, SkipReason::LeafUnreadable),
            (true, Some(ee)) => RuleOutcome::of(Rule::DnsName, self.check_dns_names(ee, dns_name)),
        });

        // 3. revoked
        rules.push(match (ee, &path) {
            (Some(ee), Some(path)) => {
                decision.staple = self.read_staple(ocsp, ee, path, now);
                match &decision.staple {
                    None => RuleOutcome::skipped(Rule::Revoked, SkipReason::NoStaple),
                    Some(StapleCheck::Ignored(reason)) => RuleOutcome::skipped(
                        Rule::Revoked,
                        SkipReason::StapleIgnored(reason.clone()),
                    ),
                    Some(staple) => match revoked_refusal(staple) {
                        Some(refusal) => RuleOutcome::of(Rule::Revoked, Err(refusal)),
                        None => RuleOutcome::of(Rule::Revoked, Ok(())),
                    },
                }
            }
            _ => RuleOutcome::skipped(Rule::Revoked, SkipReason::NoVerifiedPath),
        });

        // 4. CT: against the verified issuer, else the presented one
        let now_ms = now.as_secs().saturating_mul(1000);
        rules.push(RuleOutcome::of(
            Rule::LogListStale,
            self.check_staleness(now_ms),
        ));
        let issuer = match &path {
            Some(path) => Some((path.issuer_spki().as_ref().to_vec(), CtIssuer::VerifiedPath)),
            None => presented_issuer_spki(end_entity, intermediates)
                .map(|spki| (spki, CtIssuer::PresentedChain)),
        };
        match issuer {
            None => {
                rules.push(RuleOutcome::skipped(
                    Rule::Certificate,
                    SkipReason::NoIssuer,
                ));
                rules.push(RuleOutcome::skipped(Rule::CtPolicy, SkipReason::NoIssuer));
            }
            Some((spki, source)) => match self.ct_report(end_entity, &spki, ocsp, now_ms) {
                Err(refusal) => {
                    rules.push(RuleOutcome::of(Rule::Certificate, Err(refusal)));
                    rules.push(RuleOutcome::skipped(
                        Rule::CtPolicy,
                        SkipReason::CertificateMalformed,
                    ));
                }
                Ok(report) => {
                    rules.push(RuleOutcome::of(Rule::Certificate, Ok(())));
                    let result = match report.outcome {
                        Ok(()) => Ok(()),
                        Err(_) => Err(Refusal::CtPolicy(Box::new(report.clone()))),
                    };
                    rules.push(RuleOutcome::of(Rule::CtPolicy, result));
                    decision.ct = Some(report);
                    ct_issuer = Some(source);
                }
            },
        }

        // 5. issuer pins
        rules.push(match (ee, &path) {
            _ if self.pins.is_empty() => {
                RuleOutcome::skipped(Rule::IssuerPin, SkipReason::NotConfigured)
            }
            (Some(ee), Some(_)) => {
                match self.check_pins(ee, intermediates, now, &decision.path_pins) {
                    Ok(pinned) => {
                        if let Some(pinned) = pinned {
                            decision.path_pins = pinned;
                        }
                        RuleOutcome::of(Rule::IssuerPin, Ok(()))
                    }
                    Err(refusal) => RuleOutcome::of(Rule::IssuerPin, Err(refusal)),
                }
            }
            _ => RuleOutcome::skipped(Rule::IssuerPin, SkipReason::NoVerifiedPath),
        });

        // 6. denylist (whole certificates; denylisted keys are rule chain's)
        rules.push(if self.denylist.is_empty() {
            RuleOutcome::skipped(Rule::Denylist, SkipReason::NotConfigured)
        } else {
            RuleOutcome::of(
                Rule::Denylist,
                self.check_denylist(end_entity, intermediates),
            )
        });

        decision.refusal = rules.iter().find_map(|o| match &o.result {
            RuleResult::Failed(refusal) => Some(refusal.clone()),
            _ => None,
        });
        Audit {
            rules,
            decision,
            ct_issuer,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_rules(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        ip: Option<IpAddr>,
        dns_name: Option<&ServerName<'_>>,
        ocsp: &[u8],
        now: UnixTime,
        decision: &mut Decision,
    ) -> Result<(), Refusal> {
        // 1. chain (paths through a denylisted key are no paths)
        let ee = webpki::EndEntityCert::try_from(end_entity).map_err(Refusal::Chain)?;
        let path = self.check_chain(&ee, end_entity, intermediates, now)?;
        decision.path_pins = path_pins(&path);

        // 2. names
        if let Some(ip) = ip {
            check_ip_san(&ee, ip)?;
        }
        self.check_dns_names(&ee, dns_name)?;

        // 3. revoked (from a verified staple only)
        decision.staple = self.read_staple(ocsp, &ee, &path, now);
        if let Some(refusal) = decision.staple.as_ref().and_then(revoked_refusal) {
            return Err(refusal);
        }

        // 4. CT
        let now_ms = now.as_secs().saturating_mul(1000);
        self.check_staleness(now_ms)?;
        let report = self.ct_report(end_entity, path.issuer_spki().as_ref(), ocsp, now_ms)?;
        let compliant = report.outcome.is_ok();
        decision.ct = Some(report.clone());
        if !compliant {
            return Err(Refusal::CtPolicy(Box::new(report)));
        }

        // 5. issuer pins: when the first path is not pinned, look for a pinned one.
        if let Some(pinned) = self.check_pins(&ee, intermediates, now, &decision.path_pins)? {
            decision.path_pins = pinned;
        }

        // 6. denylist
        self.check_denylist(end_entity, intermediates)
    }

    /// Rule `chain`: a path from `ee` to a trusted root that runs through no denylisted
    /// key (a denylisted leaf key, or only denylisted paths, is a `denylist` refusal).
    fn check_chain<'p>(
        &'p self,
        ee: &'p webpki::EndEntityCert<'p>,
        end_entity: &CertificateDer<'_>,
        intermediates: &'p [CertificateDer<'p>],
        now: UnixTime,
    ) -> Result<webpki::VerifiedPath<'p>, Refusal> {
        if let Some(pin) = self.denylisted_leaf_key(end_entity) {
            return Err(Refusal::SpkiDenylisted { pin });
        }
        let denied_on_path = std::cell::Cell::new(None);
        let not_denied = |path: &webpki::VerifiedPath<'_>| -> Result<(), webpki::Error> {
            if self.deny_spki.is_empty() {
                return Ok(());
            }
            match path_pins(path)
                .into_iter()
                .find(|p| self.deny_spki.contains(p))
            {
                Some(pin) => {
                    denied_on_path.set(Some(pin));
                    Err(webpki::Error::UnknownIssuer)
                }
                None => Ok(()),
            }
        };
        self.build_path(ee, intermediates, now, &not_denied)
            .map_err(|e| match denied_on_path.get() {
                Some(pin) => Refusal::SpkiDenylisted { pin },
                None => Refusal::Chain(e),
            })
    }

    /// Rule `dns-name`: the certificate is valid for `dns_name` and the configured name.
    fn check_dns_names(
        &self,
        ee: &webpki::EndEntityCert<'_>,
        dns_name: Option<&ServerName<'_>>,
    ) -> Result<(), Refusal> {
        for name in dns_name.into_iter().chain(self.dns_name.as_ref()) {
            ee.verify_is_valid_for_subject_name(name).map_err(|error| {
                Refusal::DnsNameMismatch {
                    name: name.to_str().into_owned(),
                    error,
                }
            })?;
        }
        Ok(())
    }

    /// What the stapled OCSP response says, read against the verified path (rule
    /// `revoked` refuses when it verifies and says revoked).
    fn read_staple(
        &self,
        ocsp: &[u8],
        ee: &webpki::EndEntityCert<'_>,
        path: &webpki::VerifiedPath<'_>,
        now: UnixTime,
    ) -> Option<StapleCheck> {
        revocation::check_path(
            ocsp,
            ee,
            path,
            self.provider.signature_verification_algorithms.all,
            now,
        )
    }

    /// The CT report over the embedded and stapled SCTs, with the issuer key hash of
    /// `issuer_spki`; a malformed certificate or SCT list is rule `certificate`. The
    /// report may be non-compliant: rule `ct-policy` is the caller's.
    fn ct_report(
        &self,
        end_entity: &CertificateDer<'_>,
        issuer_spki: &[u8],
        ocsp: &[u8],
        now_ms: u64,
    ) -> Result<CtReport, Refusal> {
        let leaf =
            LeafCert::parse(end_entity.as_ref()).map_err(|e| Refusal::Malformed(e.into()))?;
        Ok(self.checker.check(&leaf, issuer_spki, ocsp, now_ms)?)
    }

    /// Rule `issuer-pin`: `Ok(None)` when the path whose CA pins are `first` is pinned (or
    /// no pins are configured), `Ok(Some(pins))` with the CA pins of a pinned alternative
    /// path (never one through a denylisted key) when there is one.
    fn check_pins(
        &self,
        ee: &webpki::EndEntityCert<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        first: &[SpkiPin],
    ) -> Result<Option<Vec<SpkiPin>>, Refusal> {
        if crate::tls::pins::pins_admit(&self.pins, first) {
            return Ok(None);
        }
        let pinned_and_not_denied = |path: &webpki::VerifiedPath<'_>| {
            let pins = path_pins(path);
            if pins.iter().any(|p| self.deny_spki.contains(p))
                || !crate::tls::pins::pins_admit(&self.pins, &pins)
            {
                return Err(webpki::Error::UnknownIssuer);
            }
            Ok(())
        };
        match self.build_path(ee, intermediates, now, &pinned_and_not_denied) {
            Ok(pinned) => Ok(Some(path_pins(&pinned))),
            Err(_) => Err(Refusal::IssuerNotPinned {
                chain: first.to_vec(),
                pins: self.pins.clone(),
            }),
        }
    }

    /// Rule `denylist` (whole certificates): no presented certificate is denylisted.
    fn check_denylist(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<(), Refusal> {
        if self.denylist.is_empty() {
            return Ok(());
        }
        for cert in std::iter::once(end_entity).chain(intermediates) {
            let fingerprint = CertFingerprint::of_cert(cert.as_ref());
            if self.denylist.contains(&fingerprint) {
                return Err(Refusal::Denylisted { fingerprint });
            }
        }
        Ok(())
    }

    /// Build a path from `ee` to a trust anchor for TLS server authentication; `accept`
    /// rejects candidate paths (webpki then tries the others).
    fn build_path<'p>(
        &'p self,
        ee: &'p webpki::EndEntityCert<'p>,
        intermediates: &'p [CertificateDer<'p>],
        now: UnixTime,
        accept: &dyn Fn(&webpki::VerifiedPath<'_>) -> Result<(), webpki::Error>,
    ) -> Result<webpki::VerifiedPath<'p>, webpki::Error> {
        ee.verify_for_usage(
            self.provider.signature_verification_algorithms.all,
            &self.roots,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            Some(accept),
        )
    }

    /// The leaf's own SPKI pin, when it is denylisted.
    fn denylisted_leaf_key(&self, end_entity: &CertificateDer<'_>) -> Option<SpkiPin> {
        if self.deny_spki.is_empty() {
            return None;
        }
        let spki = crate::ct::cert::spki_of_cert(end_entity.as_ref()).ok()?;
        let pin = SpkiPin::of_spki(spki);
        self.deny_spki.contains(&pin).then_some(pin)
    }

    /// The log-list freshness rule, exactly as [`StalenessPolicy::check`] defines it: a
    /// stale list is refused under `refuse_when_stale` (else warned about and still
    /// enforced), and so is a list without a timestamp.
    fn check_staleness(&self, now_ms: u64) -> Result<(), Refusal> {
        match self.staleness.check(self.checker.logs(), now_ms) {
            Ok(Staleness::Fresh | Staleness::Unknown) => Ok(()),
            Ok(Staleness::Stale { age }) => {
                if !stale_warning_due(now_ms) {
                    return Ok(());
                }
                tracing::warn!(
                target: crate::events::TARGET,
                    event = crate::events::LOG_LIST_STALE,
                    age_days = age.as_secs() / 86_400,
                    max_days = self.staleness.max_age.as_secs() / 86_400,
                    "the CT log list is stale: logs may have been added, retired or distrusted \
                     since; update ctdns or its log list. Enforcing with the stale list."
                );
                Ok(())
            }
            Err(StalenessError::Stale {
                age_days,
                max_age_days,
            }) => Err(Refusal::StaleLogList {
                age_days,
                max_days: max_age_days,
            }),
            Err(StalenessError::UnknownAge) => Err(Refusal::UndatedLogList),
        }
    }
}

/// When the handshake-time stale-list warning was last logged (Unix ms; 0: never).
static STALE_WARNED_AT_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How often, at most, handshakes repeat the stale-list warning: the list stays stale
/// until it is replaced, and `serve` says so at startup already.
const STALE_WARNING_EVERY_MS: u64 = 3_600_000;

/// Whether the stale-list warning is due at `now_ms` (at most once an hour per process);
/// claims it when it is.
fn stale_warning_due(now_ms: u64) -> bool {
    warning_due(&STALE_WARNED_AT_MS, now_ms, STALE_WARNING_EVERY_MS)
}

/// Whether a warning last logged at `last` (Unix ms; 0: never) is due again at `now_ms`,
/// `every_ms` apart; claims it (one caller wins a race).
fn warning_due(last: &std::sync::atomic::AtomicU64, now_ms: u64, every_ms: u64) -> bool {
    use std::sync::atomic::Ordering;
    let seen = last.load(Ordering::Relaxed);
    if seen != 0 && now_ms.saturating_sub(seen) < every_ms {
        return false;
    }
    last.compare_exchange(seen, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
}

/// Rule `ip-san`: an iPAddress SAN equals `ip`.
fn check_ip_san(ee: &webpki::EndEntityCert<'_>, ip: IpAddr) -> Result<(), Refusal> {
    ee.verify_is_valid_for_subject_name(&ServerName::IpAddress(ip.into()))
        .map_err(|error| Refusal::IpSanMismatch { ip, error })
}

/// Rule `revoked`: the refusal when a verified staple says revoked.
fn revoked_refusal(staple: &StapleCheck) -> Option<Refusal> {
    staple.revocation().map(|r| Refusal::Revoked {
        serial: r.serial.clone(),
        revoked_at: r.revoked_at,
        reason: r.reason,
    })
}

/// The SPKI of the certificate of `intermediates` whose subject is the leaf's issuer name,
/// for checking SCTs when the chain did not verify (the signature is not checked).
fn presented_issuer_spki(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Option<Vec<u8>> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, leaf) = X509Certificate::from_der(end_entity.as_ref()).ok()?;
    intermediates.iter().find_map(|der| {
        let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
        (cert.subject().as_raw() == leaf.issuer().as_raw()).then(|| cert.public_key().raw.to_vec())
    })
}

/// SPKI pins of the CA certificates of a verified path: intermediates issuer first, then
/// the trust anchor.
fn path_pins(path: &webpki::VerifiedPath<'_>) -> Vec<SpkiPin> {
    path.intermediate_certificates()
        .map(|c| SpkiPin::of_spki(c.subject_public_key_info().as_ref()))
        .chain(std::iter::once(SpkiPin::of_spki(
            webpki::spki_for_anchor(path.anchor()).as_ref(),
        )))
        .collect()
}

/// Seconds in a day, for staleness arithmetic.
pub const DAY: Duration = Duration::from_secs(86_400);

impl ServerCertVerifier for CtVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let (ip, sni_name) = match (server_name, self.dialed_ip) {
            (ServerName::IpAddress(ip), _) => (Some(IpAddr::from(*ip)), None),
            (name @ ServerName::DnsName(_), Some(ip)) => (Some(ip), Some(name)),
            // Name mode: the name is the identity checked (rule `dns-name`), as in a browser.
            (name @ ServerName::DnsName(_), None) if self.name_mode => (None, Some(name)),
            (name, _) => {
                let refusal = Refusal::NotDialedByIp(name.to_str().into_owned());
                return Err(self.refuse(
                    end_entity,
                    intermediates,
                    server_name,
                    ocsp_response,
                    now,
                    Decision {
                        ct: None,
                        path_pins: Vec::new(),
                        staple: None,
                        refusal: Some(refusal),
                    },
                ));
            }
        };
        let decision = self.verify(end_entity, intermediates, ip, sni_name, ocsp_response, now);
        if decision.accepted() {
            self.accept(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
                &decision,
            );
            return Ok(ServerCertVerified::assertion());
        }
        Err(self.refuse(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
            decision,
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The presented chain, leaf first, borrowed for an observer event.
fn event_chain<'a>(
    end_entity: &'a CertificateDer<'_>,
    intermediates: &'a [CertificateDer<'_>],
) -> Vec<CertificateDer<'a>> {
    std::iter::once(end_entity)
        .chain(intermediates)
        .map(|c| CertificateDer::from(c.as_ref()))
        .collect()
}

impl CtVerifier {
    /// Tells the observers about an accepted certificate.
    fn accept(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
        decision: &Decision,
    ) {
        if self.observers.is_empty() {
            return;
        }
        let event = DecisionEvent {
            label: &self.label,
            server_name: server_name.to_str().into_owned(),
            chain: event_chain(end_entity, intermediates),
            ocsp,
            now,
            decision,
        };
        for observer in &self.observers {
            observer.accepted(&event);
        }
    }

    fn refuse(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
        mut decision: Decision,
    ) -> rustls::Error {
        let mut evidence_file = None;
        if !self.observers.is_empty() {
            let event = RefusalEvent {
                label: &self.label,
                server_name: server_name.to_str().into_owned(),
                chain: event_chain(end_entity, intermediates),
                ocsp,
                now,
                decision: &decision,
            };
            for observer in &self.observers {
                observer.refused(&event);
                if evidence_file.is_none() {
                    evidence_file = observer
                        .evidence_file(&event)
                        .map(|p| p.display().to_string());
                }
            }
        }
        let refusal = decision
            .refusal
            .take()
            .unwrap_or(Refusal::NotDialedByIp(String::new()));
        let refused = RefusedCertificate {
            presented: Presented::describe(end_entity.as_ref(), intermediates, &decision.path_pins),
            refusal,
        };
        // The `refusal` event of the operator event stream (crate::events, README).
        tracing::warn!(
                target: crate::events::TARGET,
            event = crate::events::REFUSAL,
            upstream = %self.label,
            rule = refused.refusal.rule(),
            leaf_sha256 = %CertFingerprint::of_cert(end_entity.as_ref()),
            leaf_subject = %refused.presented.leaf_subject,
            issuer = %refused.presented.leaf_issuer,
            chain_pins = %refused.presented.pins_text(),
            evidence_file = evidence_file.as_deref(),
            reason = %refused.refusal,
            "refused certificate: {refused}"
        );
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(refused))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::log_list::LogList;
    use crate::ct::policy::CtPolicy;
    use crate::pki::{default_logs, PkiOptions, SctSpec, TestPki};

    /// A verifier over `list` with `staleness`, and an honest leaf for 127.0.0.1.
    fn setup(
        edit: impl FnOnce(&mut serde_json::Value),
        staleness: StalenessPolicy,
    ) -> (CtVerifier, crate::pki::IssuedLeaf, UnixTime) {
        let pki = TestPki::generate(&PkiOptions::default()).unwrap();
        let ts = pki.now() - time::Duration::minutes(1);
        let leaf = pki
            .issue_leaf(
                &pki.leaf_spec(IpAddr::from([127, 0, 0, 1]))
                    .embed(SctSpec::at(default_logs::ALPHA, ts))
                    .embed(SctSpec::at(default_logs::BETA, ts)),
            )
            .unwrap();
        let mut json: serde_json::Value =
            serde_json::from_str(&pki.log_list_json(pki.now()).unwrap()).unwrap();
        edit(&mut json);
        let list = LogList::from_json(json.to_string().as_bytes()).unwrap();
        let roots = crate::tls::roots::anchors_from_der(&[pki.root().der().clone()], "t").unwrap();
        let verifier = CtVerifier::new(
            Arc::new(roots),
            CtChecker::new(Arc::new(list), CtPolicy::chrome()),
        )
        .with_staleness(staleness);
        let now = UnixTime::since_unix_epoch(Duration::from_secs(
            u64::try_from(pki.now().unix_timestamp()).unwrap() + 60,
        ));
        (verifier, leaf, now)
    }

    fn rule(v: &CtVerifier, leaf: &crate::pki::IssuedLeaf, now: UnixTime) -> Option<&'static str> {
        v.verify(
            leaf.leaf(),
            leaf.intermediates(),
            Some(IpAddr::from([127, 0, 0, 1])),
            None,
            &[],
            now,
        )
        .refusal
        .map(|r| r.rule())
    }

    /// A leaf for `www.test` (and 127.0.0.1) from `pki`, with the given embedded SCTs.
    fn name_leaf(pki: &TestPki, scts: &[&str]) -> crate::pki::IssuedLeaf {
        let ts = pki.now() - time::Duration::minutes(1);
        let mut spec = pki.leaf_spec(IpAddr::from([127, 0, 0, 1]));
        spec.dns_sans = vec!["www.test".into()];
        for log in scts {
            spec = spec.embed(SctSpec::at(*log, ts));
        }
        pki.issue_leaf(&spec).unwrap()
    }

    /// What the handshake decides for `leaf` presented under `server_name`: `None` when
    /// accepted, else the rule of the typed refusal found in the rustls error.
    fn handshake_rule(
        v: &CtVerifier,
        leaf: &crate::pki::IssuedLeaf,
        server_name: &str,
        now: UnixTime,
    ) -> Option<&'static str> {
        let name = ServerName::try_from(server_name.to_string()).unwrap();
        match v.verify_server_cert(leaf.leaf(), leaf.intermediates(), &name, &[], now) {
            Ok(_) => None,
            Err(e) => Some(
                Refusal::find_in(&e)
                    .unwrap_or_else(|| panic!("no typed refusal in {e}"))
                    .rule(),
            ),
        }
    }

    #[test]
    fn name_mode_verifies_a_dns_server_name_as_a_name_and_default_mode_refuses_it() {
        let pki = TestPki::generate(&PkiOptions::default()).unwrap();
        let list = LogList::from_json(pki.log_list_json(pki.now()).unwrap().as_bytes()).unwrap();
        let roots = crate::tls::roots::anchors_from_der(&[pki.root().der().clone()], "t").unwrap();
        let default_mode = CtVerifier::new(
            Arc::new(roots),
            CtChecker::new(Arc::new(list), CtPolicy::chrome()),
        );
        let name_mode = default_mode.clone().for_server_names();
        let now = UnixTime::since_unix_epoch(Duration::from_secs(
            u64::try_from(pki.now().unix_timestamp()).unwrap() + 60,
        ));
        let honest = name_leaf(&pki, &[default_logs::ALPHA, default_logs::BETA]);
        let ct_less = name_leaf(&pki, &[]);

        // Name mode: the honest name certificate with two SCTs passes ...
        assert_eq!(handshake_rule(&name_mode, &honest, "www.test", now), None);
        // ... the same name without SCTs is refused by CT, a wrong name by the name rule.
        assert_eq!(
            handshake_rule(&name_mode, &ct_less, "www.test", now),
            Some("ct-policy")
        );
        assert_eq!(
            handshake_rule(&name_mode, &honest, "other.test", now),
            Some("dns-name")
        );
        // An IP server name still needs its IP SAN, in name mode too.
        assert_eq!(handshake_rule(&name_mode, &honest, "127.0.0.1", now), None);
        assert_eq!(
            handshake_rule(&name_mode, &honest, "127.0.0.2", now),
            Some("ip-san")
        );
        // Default mode: a DNS server name without a dialed IP is refused, whatever the cert.
        let name = ServerName::try_from("www.test").unwrap();
        let err = default_mode
            .verify_server_cert(honest.leaf(), honest.intermediates(), &name, &[], now)
            .unwrap_err();
        assert!(
            matches!(Refusal::find_in(&err), Some(Refusal::NotDialedByIp(n)) if n == "www.test"),
            "{err}"
        );
        assert_eq!(
            handshake_rule(&default_mode, &honest, "127.0.0.1", now),
            None
        );
    }

    #[test]
    fn the_stale_list_warning_repeats_at_most_once_an_hour() {
        let last = std::sync::atomic::AtomicU64::new(0);
        let hour = 3_600_000;
        let t = 1_800_000_000_000;
        assert!(warning_due(&last, t, hour));
        assert!(!warning_due(&last, t + 1, hour));
        assert!(!warning_due(&last, t + hour - 1, hour));
        assert!(warning_due(&last, t + hour, hour));
        assert!(!warning_due(&last, t + hour + 5, hour));
    }

    #[test]
    fn undated_list_is_refused_only_when_refusing_stale_lists() {
        let undated = |json: &mut serde_json::Value| {
            json.as_object_mut().unwrap().remove("log_list_timestamp");
        };
        let refuse = StalenessPolicy {
            refuse_when_stale: true,
            ..StalenessPolicy::default()
        };
        let (v, leaf, now) = setup(undated, refuse);
        assert_eq!(rule(&v, &leaf, now), Some("log-list-stale"));
        let (v, leaf, now) = setup(undated, StalenessPolicy::default());
        assert_eq!(rule(&v, &leaf, now), None);
        // A dated, fresh list passes either way.
        let (v, leaf, now) = setup(|_| {}, refuse);
        assert_eq!(rule(&v, &leaf, now), None);
    }

    /// Counts the decisions it is told about, by outcome, and keeps the last rule.
    #[derive(Debug, Default)]
    struct Counting {
        accepted: std::sync::atomic::AtomicUsize,
        refused: std::sync::atomic::AtomicUsize,
        chain_len: std::sync::atomic::AtomicUsize,
    }

    impl DecisionObserver for Counting {
        fn refused(&self, event: &DecisionEvent<'_>) {
            assert!(!event.decision.accepted());
            self.refused
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }

        fn accepted(&self, event: &DecisionEvent<'_>) {
            assert!(event.decision.accepted());
            self.chain_len
                .store(event.chain.len(), std::sync::atomic::Ordering::SeqCst);
            self.accepted
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Refusal-only observers (the evidence store) ignore acceptances by default.
    #[derive(Debug, Default)]
    struct RefusalsOnly(std::sync::atomic::AtomicUsize);

    impl RefusalObserver for RefusalsOnly {
        fn refused(&self, _: &RefusalEvent<'_>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn every_observer_is_told_about_every_decision_accepted_or_refused() {
        let (v, leaf, now) = setup(|_| {}, StalenessPolicy::default());
        let both = Arc::new(Counting::default());
        let refusals = Arc::new(RefusalsOnly::default());
        let v = v
            .with_observer(both.clone())
            .with_observer(refusals.clone());
        let ip = ServerName::IpAddress(IpAddr::from([127, 0, 0, 1]).into());
        let seen_counts = |c: &Counting| {
            (
                c.accepted.load(std::sync::atomic::Ordering::SeqCst),
                c.refused.load(std::sync::atomic::Ordering::SeqCst),
            )
        };
        v.verify_server_cert(leaf.leaf(), leaf.intermediates(), &ip, &[], now)
            .unwrap();
        assert_eq!(seen_counts(&both), (1, 0));
        assert_eq!(
            both.chain_len.load(std::sync::atomic::Ordering::SeqCst),
            1 + leaf.intermediates().len()
        );
        assert_eq!(refusals.0.load(std::sync::atomic::Ordering::SeqCst), 0);
        // The same certificate on another address: refused, and both observers hear it.
        let other = ServerName::IpAddress(IpAddr::from([127, 0, 0, 2]).into());
        let err = v
            .verify_server_cert(leaf.leaf(), leaf.intermediates(), &other, &[], now)
            .unwrap_err();
        assert_eq!(Refusal::find_in(&err).map(Refusal::rule), Some("ip-san"));
        assert_eq!(seen_counts(&both), (1, 1));
        assert_eq!(refusals.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    /// The chains of the audit matrix, and the time to decide at.
    /// One case of the audit matrix: what it is, the leaf, the verifier, the dialed IP.
    type AuditCase = (
        &'static str,
        crate::pki::IssuedLeaf,
        CtVerifier,
        Option<IpAddr>,
    );

    fn audit_matrix() -> (Vec<AuditCase>, UnixTime) {
        let pki = TestPki::generate(&PkiOptions::default()).unwrap();
        let ts = pki.now() - time::Duration::minutes(1);
        let ip = IpAddr::from([127, 0, 0, 1]);
        let two_operators = |spec: crate::pki::LeafSpec| {
            spec.embed(SctSpec::at(default_logs::ALPHA, ts))
                .embed(SctSpec::at(default_logs::BETA, ts))
        };
        let honest = pki.issue_leaf(&two_operators(pki.leaf_spec(ip))).unwrap();
        let rogue = pki
            .issue_leaf(
                &two_operators(pki.leaf_spec(ip))
                    .issued_by(crate::pki::LeafIssuer::RogueIntermediate),
            )
            .unwrap();
        let no_scts = pki.issue_leaf(&pki.leaf_spec(ip)).unwrap();
        let list =
            Arc::new(LogList::from_json(pki.log_list_json(pki.now()).unwrap().as_bytes()).unwrap());
        let verifier = |with_rogue: bool| {
            let mut roots = vec![pki.root().der().clone()];
            if with_rogue {
                roots.push(pki.rogue_root().der().clone());
            }
            let roots = crate::tls::roots::anchors_from_der(&roots, "t").unwrap();
            CtVerifier::new(
                Arc::new(roots),
                CtChecker::new(list.clone(), CtPolicy::chrome()),
            )
        };
        let pin = |ca: &crate::pki::TestCa| SpkiPin::parse(&ca.spki_sha256_base64()).unwrap();
        let deny = |leaf: &crate::pki::IssuedLeaf| {
            Arc::new(HashSet::from([CertFingerprint::of_cert(leaf.leaf())]))
        };
        let cases = vec![
            ("honest", honest.clone(), verifier(false), Some(ip)),
            ("honest, name mode", honest.clone(), verifier(false), None),
            (
                "rogue CA, untrusted",
                rogue.clone(),
                verifier(false),
                Some(ip),
            ),
            (
                "rogue CA, trusted, pinned to the honest root",
                rogue.clone(),
                verifier(true).with_pins(vec![pin(pki.root())]),
                Some(ip),
            ),
            ("no SCTs", no_scts.clone(), verifier(false), Some(ip)),
            (
                "wrong DNS name",
                honest.clone(),
                verifier(false).with_dns_name(ServerName::try_from("example.com").unwrap()),
                Some(ip),
            ),
            (
                "no SCTs, wrong IP",
                no_scts,
                verifier(false),
                Some(IpAddr::from([127, 0, 0, 2])),
            ),
            (
                "wrong IP",
                honest.clone(),
                verifier(false),
                Some(IpAddr::from([127, 0, 0, 2])),
            ),
            (
                "pinned mismatch",
                honest.clone(),
                verifier(false).with_pins(vec![pin(pki.rogue_root())]),
                Some(ip),
            ),
            (
                "pinned match",
                honest.clone(),
                verifier(false).with_pins(vec![pin(pki.intermediate())]),
                Some(ip),
            ),
            (
                "denylisted",
                honest.clone(),
                verifier(false).with_denylist(deny(&honest)),
                Some(ip),
            ),
            (
                "denylisted key",
                honest.clone(),
                verifier(false)
                    .with_spki_denylist(Arc::new(HashSet::from([pin(pki.intermediate())]))),
                Some(ip),
            ),
            (
                "denylisted and pinned mismatch",
                honest.clone(),
                verifier(false)
                    .with_denylist(deny(&honest))
                    .with_pins(vec![pin(pki.rogue_root())]),
                Some(ip),
            ),
        ];
        let now = UnixTime::since_unix_epoch(Duration::from_secs(
            u64::try_from(pki.now().unix_timestamp()).unwrap() + 60,
        ));
        (cases, now)
    }

    #[test]
    fn the_audit_verdict_is_the_refusal_verify_decides() {
        let (cases, now) = audit_matrix();
        let mut rules_seen = HashSet::new();
        for (what, leaf, v, ip) in &cases {
            let decision = v.verify(leaf.leaf(), leaf.intermediates(), *ip, None, &[], now);
            let audit = v.audit(leaf.leaf(), leaf.intermediates(), *ip, None, &[], now);
            let rule = |r: Option<&Refusal>| r.map(|r| (r.rule(), r.to_string()));
            assert_eq!(
                rule(audit.verdict()),
                rule(decision.refusal.as_ref()),
                "{what}"
            );
            assert_eq!(audit.accepted(), decision.accepted(), "{what}");
            rules_seen.insert(decision.refusal.as_ref().map(Refusal::rule));
            // One outcome per rule, in order; the verdict is the first failure.
            let order: Vec<Rule> = audit.rules.iter().map(|o| o.rule).collect();
            assert_eq!(order, Rule::ALL.to_vec(), "{what}");
            let first_failed = audit.rules.iter().find_map(|o| match &o.result {
                RuleResult::Failed(r) => Some(r.to_string()),
                _ => None,
            });
            assert_eq!(
                first_failed,
                audit.verdict().map(|r| r.to_string()),
                "{what}"
            );
            // What verify learned, the audit learned too.
            if decision.ct.is_some() {
                assert_eq!(audit.ct_issuer, Some(CtIssuer::VerifiedPath), "{what}");
            }
            if decision.accepted() {
                assert_eq!(audit.decision.path_pins, decision.path_pins, "{what}");
            }
        }
        for rule in [
            None,
            Some("chain"),
            Some("ip-san"),
            Some("dns-name"),
            Some("ct-policy"),
            Some("issuer-pin"),
            Some("denylist"),
        ] {
            assert!(rules_seen.contains(&rule), "the matrix covers {rule:?}");
        }
    }

    #[test]
    fn the_audit_goes_on_after_the_first_failure() {
        let (cases, now) = audit_matrix();
        let audit = |name: &str| {
            let (_, leaf, v, ip) = cases.iter().find(|c| c.0 == name).unwrap();
            v.audit(leaf.leaf(), leaf.intermediates(), *ip, None, &[], now)
        };
        let failed = |a: &Audit, rule: Rule| matches!(a.outcome(rule), Some(RuleResult::Failed(_)));
        let passed = |a: &Audit, rule: Rule| matches!(a.outcome(rule), Some(RuleResult::Passed));

        // Wrong IP: the SCTs are still checked, against the verified issuer.
        let a = audit("wrong IP");
        assert_eq!(a.verdict().map(Refusal::rule), Some("ip-san"));
        assert!(passed(&a, Rule::CtPolicy));
        assert_eq!(a.ct_issuer, Some(CtIssuer::VerifiedPath));
        assert_eq!(a.decision.ct.as_ref().map(|r| r.scts.len()), Some(2));

        // Both failures are reported; the verdict is the first.
        let a = audit("no SCTs, wrong IP");
        assert_eq!(a.verdict().map(Refusal::rule), Some("ip-san"));
        assert!(failed(&a, Rule::IpSan) && failed(&a, Rule::CtPolicy));

        // An untrusted CA: the SCTs are checked against the presented issuer and verify
        // (the rogue CA's leaf is genuinely logged); rules needing the path are skipped.
        let a = audit("rogue CA, untrusted");
        assert_eq!(a.verdict().map(Refusal::rule), Some("chain"));
        assert!(passed(&a, Rule::IpSan) && passed(&a, Rule::CtPolicy));
        assert_eq!(a.ct_issuer, Some(CtIssuer::PresentedChain));
        let report = a.decision.ct.as_ref().unwrap();
        assert!(report.scts.iter().all(|s| s.counted), "{report:?}");
        assert!(matches!(
            a.outcome(Rule::Revoked),
            Some(RuleResult::Skipped(SkipReason::NoVerifiedPath))
        ));

        // Pin mismatch and denylist: both reported, pin first.
        let a = audit("denylisted and pinned mismatch");
        assert_eq!(a.verdict().map(Refusal::rule), Some("issuer-pin"));
        assert!(failed(&a, Rule::Denylist));

        // Name mode: ip-san skipped, everything else passes.
        let a = audit("honest, name mode");
        assert!(a.accepted());
        assert!(matches!(
            a.outcome(Rule::IpSan),
            Some(RuleResult::Skipped(SkipReason::NoIp))
        ));
        assert!(matches!(
            a.outcome(Rule::IssuerPin),
            Some(RuleResult::Skipped(SkipReason::NotConfigured))
        ));

        // The presented chain without the issuer: nothing to check the SCTs against.
        let (_, leaf, v, ip) = cases.iter().find(|c| c.0 == "rogue CA, untrusted").unwrap();
        let a = v.audit(leaf.leaf(), &[], *ip, None, &[], now);
        assert!(matches!(
            a.outcome(Rule::CtPolicy),
            Some(RuleResult::Skipped(SkipReason::NoIssuer))
        ));
        assert!(a.decision.ct.is_none() && a.ct_issuer.is_none());
    }
}
