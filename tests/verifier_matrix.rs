//! The CT-enforcing verifier end to end: a generated matrix of cases from the test PKI
//! (real keys, real certificate and SCT signatures) run through `CtVerifier::verify`, and a
//! subset through real rustls handshakes on loopback with the client configuration ctdns
//! builds (`ctdns::tls::client_config`). Every case asserts the verdict and, when refused,
//! the exact rule (`Refusal::rule()`), and where it matters the policy failure and the
//! per-SCT reasons.
//!
//! Plus: session resumption never skips the verifier, and typed errors for bad log lists.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration as StdDuration;

use ctdns::config::PolicyName;
use ctdns::ct::checker::{CtChecker, CtInputError};
use ctdns::ct::log_list::{LogList, LogListError, StalenessPolicy};
use ctdns::ct::policy::{CtPolicy, NotCounted, PolicyFailure, SignatureStatus};
use ctdns::ct::sct::SctListError;
use ctdns::ct::SctSource;
use ctdns::pki::{
    build_ocsp_response, default_logs, unix_ms, CaCert, IssuedLeaf, LeafIssuer, LeafKeyType,
    LeafSpec, LogStateKind, OcspSigner, OcspSpec, PkiOptions, PrecertIssuance, SctSpec, TestLog,
    TestPki,
};
use ctdns::testkit::ping::{ping, ObservedVerifier, PingServer};
use ctdns::tls::pins::{CertFingerprint, SpkiPin};
use ctdns::tls::revocation::RevocationReason;
use ctdns::tls::verifier::{Decision, RefusalEvent, RefusalObserver};
use ctdns::tls::{client_config, CtVerifier, Refusal};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::client::Resumption;
use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use time::{Duration, OffsetDateTime};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const OTHER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const DNS_NAME: &str = "dns.ctdns.test";

// Extra logs added to the default ones (see `TestPki::generate` for those).
/// ECDSA, Operator A (same operator as Alpha), usable.
const EPSILON: &str = "Epsilon";
/// ECDSA, Operator B, retired 30 days ago.
const ZETA: &str = "Zeta";
/// Static-ct-api (tiled), Operator B, usable.
const TILE_B: &str = "TileB";
/// Static-ct-api (tiled), Operator C, usable.
const TILE_C: &str = "TileC";
/// ECDSA, Operator B now, run by Operator A until 10 days ago.
const THETA: &str = "Theta";
/// ECDSA, Operator C, readonly.
const IOTA: &str = "Iota";
/// ECDSA, Operator C, qualified.
const KAPPA: &str = "Kappa";
/// Google's published mimic logs, listed as usable.
const MIMIC1: &str = "Mimic1";
const MIMIC2: &str = "Mimic2";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn unix(t: OffsetDateTime) -> UnixTime {
    UnixTime::since_unix_epoch(StdDuration::from_secs(
        u64::try_from(t.unix_timestamp()).unwrap(),
    ))
}

// ---------------------------------------------------------------------------------------
// The world: one PKI with many logs, its log list, roots and a checker.
// ---------------------------------------------------------------------------------------

struct World {
    pki: TestPki,
    now: OffsetDateTime,
    /// The time `verify` is called with (one minute after the PKI's reference time).
    at: UnixTime,
    list_json: String,
    list: Arc<LogList>,
    roots: Arc<Vec<TrustAnchor<'static>>>,
    roots_with_rogue: Arc<Vec<TrustAnchor<'static>>>,
}

impl World {
    fn new() -> Self {
        let mut pki = TestPki::generate(&PkiOptions::default()).unwrap();
        let now = pki.now();
        let usable = now - Duration::days(400);
        let extra = [
            TestLog::generate_ecdsa(EPSILON, default_logs::OPERATOR_A)
                .unwrap()
                .with_state(LogStateKind::Usable, usable),
            TestLog::generate_ecdsa(ZETA, default_logs::OPERATOR_B)
                .unwrap()
                .with_state(LogStateKind::Retired, now - Duration::days(30)),
            TestLog::generate_ecdsa(TILE_B, default_logs::OPERATOR_B)
                .unwrap()
                .with_state(LogStateKind::Usable, usable)
                .tiled(),
            TestLog::generate_ecdsa(TILE_C, default_logs::OPERATOR_C)
                .unwrap()
                .with_state(LogStateKind::Usable, usable)
                .tiled(),
            TestLog::generate_ecdsa(THETA, default_logs::OPERATOR_B)
                .unwrap()
                .with_state(LogStateKind::Usable, usable)
                .with_previous_operator(default_logs::OPERATOR_A, now - Duration::days(10)),
            TestLog::generate_ecdsa(IOTA, default_logs::OPERATOR_C)
                .unwrap()
                .with_state(LogStateKind::Readonly, now - Duration::days(20)),
            TestLog::generate_ecdsa(KAPPA, default_logs::OPERATOR_C)
                .unwrap()
                .with_state(LogStateKind::Qualified, now - Duration::days(20)),
            TestLog::mimic1()
                .unwrap()
                .with_state(LogStateKind::Usable, usable),
            TestLog::mimic2()
                .unwrap()
                .with_state(LogStateKind::Usable, usable),
        ];
        for log in extra {
            pki.add_log(log).unwrap();
        }
        let list_json = pki.log_list_json(now).unwrap();
        let list = Arc::new(LogList::from_json(list_json.as_bytes()).unwrap());
        let anchors = |certs: &[CertificateDer<'static>]| {
            Arc::new(ctdns::tls::roots::anchors_from_der(certs, "test PKI").unwrap())
        };
        let roots = anchors(std::slice::from_ref(pki.root().der()));
        let roots_with_rogue = anchors(&pki.trust_anchors());
        Self {
            at: unix(now + Duration::minutes(1)),
            now,
            list_json,
            list,
            roots,
            roots_with_rogue,
            pki,
        }
    }

    /// A minute before the reference time: when the honest SCTs were issued.
    fn ts(&self) -> OffsetDateTime {
        self.now - Duration::minutes(1)
    }

    fn sct(&self, log: &str) -> SctSpec {
        SctSpec::at(log, self.ts())
    }

    fn spec(&self) -> LeafSpec {
        self.pki.leaf_spec(LOCALHOST)
    }

    /// A leaf for 127.0.0.1 with embedded SCTs from `logs` (valid, one minute old).
    fn embedded(&self, logs: &[&str]) -> LeafSpec {
        logs.iter()
            .fold(self.spec(), |spec, log| spec.embed(self.sct(log)))
    }

    fn issue(&self, spec: &LeafSpec) -> IssuedLeaf {
        self.pki.issue_leaf(spec).unwrap()
    }

    fn checker(&self, policy: CtPolicy) -> CtChecker {
        CtChecker::new(self.list.clone(), policy)
    }

    /// Honest root only, Chrome policy, the PKI's log list.
    fn verifier(&self) -> CtVerifier {
        CtVerifier::new(self.roots.clone(), self.checker(CtPolicy::chrome()))
    }

    fn verifier_with_policy(&self, policy: CtPolicy) -> CtVerifier {
        CtVerifier::new(self.roots.clone(), self.checker(policy))
    }

    fn verifier_with_list(&self, list: LogList) -> CtVerifier {
        CtVerifier::new(
            self.roots.clone(),
            CtChecker::new(Arc::new(list), CtPolicy::chrome()),
        )
    }

    /// Both roots trusted (the Fina scenario).
    fn verifier_trusting_rogue(&self) -> CtVerifier {
        CtVerifier::new(
            self.roots_with_rogue.clone(),
            self.checker(CtPolicy::chrome()),
        )
    }

    fn pin(&self, ca: CaCert) -> SpkiPin {
        SpkiPin::parse(&self.pki.ca(ca).unwrap().spki_sha256_base64()).unwrap()
    }

    /// The log list JSON with `edit` applied.
    fn edited_list(&self, edit: impl FnOnce(&mut serde_json::Value)) -> LogList {
        let mut json: serde_json::Value = serde_json::from_str(&self.list_json).unwrap();
        edit(&mut json);
        LogList::from_json(json.to_string().as_bytes()).unwrap()
    }

    fn ms(&self, t: OffsetDateTime) -> u64 {
        unix_ms(t)
    }
}

/// A small CA made with rcgen in this test, to sign certificates the test PKI cannot
/// produce: leaves whose SCT extension is malformed. Signatures are real.
struct MiniCa {
    params: CertificateParams,
    key: KeyPair,
    der: CertificateDer<'static>,
}

impl MiniCa {
    fn new(now: OffsetDateTime) -> Self {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "ctdns matrix mini CA");
        params.distinguished_name = dn;
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(365);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().clone();
        Self { params, key, der }
    }

    /// A leaf for 127.0.0.1 carrying `sct_ext` as the SCT-list extension's DER value.
    fn leaf(&self, now: OffsetDateTime, sct_ext: Option<Vec<u8>>) -> CertificateDer<'static> {
        self.leaf_with(now, sct_ext.into_iter().collect())
    }

    /// A leaf for 127.0.0.1 with one SCT-list extension per entry of `sct_exts`.
    fn leaf_with(&self, now: OffsetDateTime, sct_exts: Vec<Vec<u8>>) -> CertificateDer<'static> {
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![SanType::IpAddress(LOCALHOST)];
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(90);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        for value in sct_exts {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2],
                    value,
                ));
        }
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&self.params, &self.key);
        params.signed_by(&key, &issuer).unwrap().der().clone()
    }

    fn verifier(&self, world: &World) -> CtVerifier {
        let roots =
            ctdns::tls::roots::anchors_from_der(std::slice::from_ref(&self.der), "mini").unwrap();
        CtVerifier::new(Arc::new(roots), world.checker(CtPolicy::chrome()))
    }
}

/// DER OCTET STRING around `content` (short or one/two-byte long form).
fn octet_string(content: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04];
    match content.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend_from_slice(&[0x81, n as u8]),
        n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

// ---------------------------------------------------------------------------------------
// Cases and expectations.
// ---------------------------------------------------------------------------------------

type RefusalCheck = Box<dyn Fn(&Refusal) -> bool + Send + Sync>;

/// What a case must produce.
struct Expect {
    /// `None`: accepted; else the rule name.
    rule: Option<&'static str>,
    /// The exact CT policy failure (for `ct-policy` refusals).
    failure: Option<PolicyFailure>,
    /// Per SCT, in report order: `None` counted, else why not.
    reasons: Option<Vec<Option<NotCounted>>>,
    /// Per SCT, in report order: "valid", "invalid" or "not_checked".
    signatures: Option<Vec<&'static str>>,
    /// A check of the refusal itself (variant, fields), with a description.
    refusal: Option<(&'static str, RefusalCheck)>,
    /// Whether the staple is reported ignored `(for revocation, for its SCTs)`.
    staple_ignored: Option<(bool, bool)>,
}

struct Case {
    name: String,
    /// What the server presents (leaf first) and the key it proves.
    leaf: Option<IssuedLeaf>,
    chain: Vec<CertificateDer<'static>>,
    ocsp: Vec<u8>,
    verifier: CtVerifier,
    ip: Option<IpAddr>,
    dns: Option<ServerName<'static>>,
    at: UnixTime,
    /// Run through `CtVerifier::verify`.
    direct: bool,
    /// Also run through a real handshake with this server name (dialing 127.0.0.1).
    tls: Option<ServerName<'static>>,
    expect: Expect,
}

impl Case {
    fn new(name: &str, world: &World, leaf: IssuedLeaf) -> Self {
        Self {
            name: name.to_string(),
            chain: leaf.chain.clone(),
            ocsp: leaf.ocsp_response.clone().unwrap_or_default(),
            leaf: Some(leaf),
            verifier: world.verifier(),
            ip: Some(LOCALHOST),
            dns: None,
            at: world.at,
            direct: true,
            tls: None,
            expect: Expect {
                rule: None,
                failure: None,
                reasons: None,
                signatures: None,
                refusal: None,
                staple_ignored: None,
            },
        }
    }

    /// A case presenting raw certificates that no server could load (no key).
    fn raw(name: &str, world: &World, chain: Vec<CertificateDer<'static>>) -> Self {
        Self {
            name: name.to_string(),
            leaf: None,
            chain,
            ocsp: Vec::new(),
            verifier: world.verifier(),
            ip: Some(LOCALHOST),
            dns: None,
            at: world.at,
            direct: true,
            tls: None,
            expect: Expect {
                rule: None,
                failure: None,
                reasons: None,
                signatures: None,
                refusal: None,
                staple_ignored: None,
            },
        }
    }

    fn verifier(mut self, v: CtVerifier) -> Self {
        self.verifier = v;
        self
    }

    fn ip(mut self, ip: Option<IpAddr>) -> Self {
        self.ip = ip;
        self
    }

    fn dns(mut self, name: &str) -> Self {
        self.dns = Some(ServerName::try_from(name.to_string()).unwrap());
        self
    }

    fn ocsp(mut self, ocsp: Vec<u8>) -> Self {
        self.ocsp = ocsp;
        self
    }

    fn at(mut self, t: OffsetDateTime) -> Self {
        self.at = unix(t);
        self
    }

    /// Also run a loopback handshake, the client dialing 127.0.0.1 by IP.
    fn tls(mut self) -> Self {
        self.tls = Some(ServerName::IpAddress(LOCALHOST.into()));
        self
    }

    /// Only a handshake with the DNS server name `name` (the verifier sees no dialed IP
    /// unless it was configured with one).
    fn tls_only_named(mut self, name: &str) -> Self {
        self.tls = Some(ServerName::try_from(name.to_string()).unwrap());
        self.direct = false;
        self
    }

    fn accepted(self) -> Self {
        self
    }

    fn refused(mut self, rule: &'static str) -> Self {
        self.expect.rule = Some(rule);
        self
    }

    fn policy(mut self, failure: PolicyFailure) -> Self {
        self.expect.rule = Some("ct-policy");
        self.expect.failure = Some(failure);
        self
    }

    fn reasons(mut self, reasons: Vec<Option<NotCounted>>) -> Self {
        self.expect.reasons = Some(reasons);
        self
    }

    fn signatures(mut self, sigs: &[&'static str]) -> Self {
        self.expect.signatures = Some(sigs.to_vec());
        self
    }

    /// Expect the staple to be reported ignored for revocation and/or for its SCTs.
    fn staple_ignored(mut self, revocation: bool, scts: bool) -> Self {
        self.expect.staple_ignored = Some((revocation, scts));
        self
    }

    fn check(
        mut self,
        what: &'static str,
        f: impl Fn(&Refusal) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.expect.refusal = Some((what, Box::new(f)));
        self
    }
}

fn too_few_logs(source: SctSource, required: usize, counted: usize) -> PolicyFailure {
    PolicyFailure::TooFewLogs {
        source,
        required,
        counted,
    }
}

fn too_few_operators(source: SctSource, required: usize, counted: usize) -> PolicyFailure {
    PolicyFailure::TooFewOperators {
        source,
        required,
        counted,
    }
}

const EMB: SctSource = SctSource::Embedded;
const OCSP: SctSource = SctSource::Ocsp;
const C: Option<NotCounted> = None;

fn not(reason: NotCounted) -> Option<NotCounted> {
    Some(reason)
}

fn sig_kind(s: &SignatureStatus) -> &'static str {
    match s {
        SignatureStatus::Valid => "valid",
        SignatureStatus::Invalid { .. } => "invalid",
        SignatureStatus::NotChecked => "not_checked",
    }
}

/// Compare what was decided with what was expected; `report` is the CT report when known.
fn judge(
    expect: &Expect,
    refusal: Option<&Refusal>,
    report: Option<&ctdns::ct::policy::CtReport>,
    errors: &mut Vec<String>,
) {
    let rule = refusal.map(Refusal::rule);
    if rule != expect.rule {
        errors.push(format!(
            "expected {}, got {}",
            expect
                .rule
                .map_or("accepted".into(), |r| format!("refusal `{r}`")),
            refusal.map_or("accepted".into(), |r| format!("refusal: {r}")),
        ));
        return;
    }
    if let Some(want) = &expect.failure {
        match refusal {
            Some(Refusal::CtPolicy(report)) => {
                if report.outcome.as_ref().err() != Some(want) {
                    errors.push(format!(
                        "expected policy failure {want:?}, got {:?}",
                        report.outcome
                    ));
                }
            }
            other => errors.push(format!("expected CtPolicy refusal, got {other:?}")),
        }
    }
    if let (Some(want), Some(report)) = (&expect.reasons, report) {
        let got: Vec<Option<NotCounted>> = report.scts.iter().map(|v| v.reason.clone()).collect();
        if &got != want {
            errors.push(format!("expected SCT reasons {want:?}, got {got:?}"));
        }
        for v in &report.scts {
            if v.counted != v.reason.is_none() {
                errors.push(format!("verdict inconsistent: {v:?}"));
            }
        }
    }
    if let (Some(want), Some(report)) = (&expect.signatures, report) {
        let got: Vec<&str> = report.scts.iter().map(|v| sig_kind(&v.signature)).collect();
        if &got != want {
            errors.push(format!("expected signatures {want:?}, got {got:?}"));
        }
    }
    if let Some((what, f)) = &expect.refusal {
        match refusal {
            Some(r) if f(r) => {}
            other => errors.push(format!("expected refusal {what}, got {other:?}")),
        }
    }
}

fn run_direct(case: &Case) -> Vec<String> {
    let mut errors = Vec::new();
    let Some((ee, inter)) = case.chain.split_first() else {
        return vec!["empty chain".into()];
    };
    let decision = case
        .verifier
        .verify(ee, inter, case.ip, case.dns.as_ref(), &case.ocsp, case.at);
    judge(
        &case.expect,
        decision.refusal.as_ref(),
        decision.ct.as_ref(),
        &mut errors,
    );
    if let Some((revocation, scts)) = case.expect.staple_ignored {
        // A staple must have been read (`Some`) whenever one is expected.
        let got = (
            decision.staple.as_ref().map(|s| s.ignored().is_some()),
            decision
                .ct
                .as_ref()
                .is_some_and(|r| r.ocsp_ignored.is_some()),
        );
        if got != (Some(revocation), scts) {
            errors.push(format!(
                "expected staple ignored (revocation, SCTs) = {:?}, got {got:?} ({:?}; {:?})",
                (revocation, scts),
                decision.staple,
                decision.ct.as_ref().map(|r| &r.ocsp_ignored)
            ));
        }
    }
    if case.expect.reasons.is_some() && decision.ct.is_none() {
        errors.push("expected a CT report, the CT step did not run".into());
    }
    // The path pins are known whenever the chain verified.
    let chain_ok = !matches!(decision.refusal, Some(Refusal::Chain(_)));
    if chain_ok && decision.path_pins.is_empty() {
        errors.push("chain verified but no path pins recorded".into());
    }
    errors
}

// ---------------------------------------------------------------------------------------
// The matrix.
// ---------------------------------------------------------------------------------------

fn cases(w: &World) -> Vec<Case> {
    use NotCounted::*;
    let now = w.now;
    let mut v = Vec::new();
    let leaf = |spec: &LeafSpec| w.issue(spec);

    // --- honest leaves -------------------------------------------------------------
    v.push(
        Case::new(
            "honest: 2 embedded SCTs, 2 operators",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, default_logs::BETA])),
        )
        .accepted()
        .reasons(vec![C, C])
        .signatures(&["valid", "valid"])
        .tls(),
    );
    v.push(
        Case::new(
            "honest: 3 embedded SCTs, 3 operators",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, default_logs::BETA, default_logs::GAMMA])),
        )
        .accepted()
        .reasons(vec![C, C, C]),
    );
    v.push(
        Case::new(
            "honest: RSA leaf key",
            w,
            leaf(&LeafSpec {
                key_type: LeafKeyType::Rsa2048,
                ..w.embedded(&[default_logs::ALPHA, default_logs::BETA])
            }),
        )
        .accepted()
        .tls(),
    );
    v.push(
        Case::new(
            "honest: IPv6 leaf dialed at ::1",
            w,
            leaf(
                &w.pki
                    .leaf_spec(IpAddr::V6(Ipv6Addr::LOCALHOST))
                    .embed(w.sct(default_logs::ALPHA))
                    .embed(w.sct(default_logs::BETA)),
            ),
        )
        .ip(Some(IpAddr::V6(Ipv6Addr::LOCALHOST)))
        .accepted(),
    );
    v.push(
        Case::new(
            "honest: leaf issued by the root (issuer key hash from the anchor)",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                    .issued_by(LeafIssuer::Root),
            ),
        )
        .accepted()
        .signatures(&["valid", "valid"])
        .tls(),
    );

    // --- Chrome embedded rules -------------------------------------------------------
    v.push(
        Case::new("no SCTs at all", w, leaf(&w.spec()))
            .policy(PolicyFailure::NoScts)
            .tls(),
    );
    v.push(
        Case::new("single SCT", w, leaf(&w.embedded(&[default_logs::ALPHA])))
            .policy(too_few_logs(EMB, 2, 1))
            .reasons(vec![C]),
    );
    v.push(
        Case::new(
            "two logs of one operator",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, EPSILON])),
        )
        .policy(too_few_operators(EMB, 2, 1))
        .reasons(vec![C, C])
        .tls(),
    );
    v.push(
        Case::new(
            "two SCTs from the same log count once",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, default_logs::ALPHA])),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .reasons(vec![C, not(DuplicateLog)]),
    );
    v.push(
        Case::new(
            "readonly and qualified logs count",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, IOTA, KAPPA])),
        )
        .accepted()
        .reasons(vec![C, C, C]),
    );
    v.push(
        Case::new(
            "corrupted signature",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .embed(w.sct(default_logs::BETA).corrupt_signature()),
            ),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .reasons(vec![C, not(InvalidSignature)])
        .signatures(&["valid", "invalid"])
        .tls(),
    );
    v.push(
        Case::new(
            "corrupted signature, two other operators still enough",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .embed(w.sct(default_logs::BETA).corrupt_signature())
                    .embed(w.sct(default_logs::GAMMA)),
            ),
        )
        .accepted()
        .reasons(vec![C, not(InvalidSignature), C]),
    );
    v.push(
        Case::new(
            "SCT over a different TBS",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .embed(w.sct(default_logs::BETA).sign_over_other_tbs()),
            ),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .signatures(&["valid", "invalid"]),
    );
    v.push(
        Case::new(
            "issuer key hash of the root instead of the issuing intermediate",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .embed(w.sct(default_logs::BETA).issuer_key_hash_of(CaCert::Root)),
            ),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .signatures(&["valid", "invalid"]),
    );
    v.push(
        Case::new(
            "embedded SCT signed as an x509_entry",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .embed(w.sct(default_logs::BETA).as_x509_entry()),
            ),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .signatures(&["valid", "invalid"]),
    );
    v.push({
        let list = w.edited_list(|json| {
            for op in json["operators"].as_array_mut().unwrap() {
                op["logs"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|l| l["description"] != default_logs::BETA);
            }
        });
        Case::new(
            "unknown log (not in the list)",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, default_logs::BETA])),
        )
        .verifier(w.verifier_with_list(list))
        .policy(too_few_logs(EMB, 2, 1))
        .reasons(vec![C, not(UnknownLog)])
        .signatures(&["valid", "not_checked"])
        .tls()
    });
    v.push(
        Case::new(
            "mimic1 in the list with a valid signature never counts",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, MIMIC1])),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .reasons(vec![C, not(MimicLog)])
        .signatures(&["valid", "valid"])
        .tls(),
    );
    v.push(
        Case::new(
            "mimic1 + mimic2 + one honest log",
            w,
            leaf(&w.embedded(&[MIMIC1, MIMIC2, default_logs::ALPHA])),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .reasons(vec![not(MimicLog), not(MimicLog), C])
        .signatures(&["valid", "valid", "valid"]),
    );
    v.push(
        Case::new(
            "retired log, SCT issued before the retirement",
            w,
            leaf(
                &w.embedded(&[default_logs::BETA])
                    .embed(SctSpec::at(default_logs::DELTA, now - Duration::days(60))),
            ),
        )
        .accepted()
        .reasons(vec![C, C]),
    );
    v.push(
        Case::new(
            "retired log, SCT issued after the retirement",
            w,
            leaf(&w.embedded(&[default_logs::BETA, default_logs::DELTA])),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .reasons(vec![
            C,
            not(LogRetiredBeforeSct {
                retired_ms: w.ms(now - Duration::days(30)),
            }),
        ]),
    );
    v.push(
        Case::new(
            "only retired logs (before retirement): no current log",
            w,
            leaf(
                &w.spec()
                    .embed(SctSpec::at(default_logs::DELTA, now - Duration::days(60)))
                    .embed(SctSpec::at(ZETA, now - Duration::days(60))),
            ),
        )
        .policy(PolicyFailure::NoCurrentLog)
        .reasons(vec![C, C]),
    );
    let lifetime = |days: i64, secs: i64| {
        let nb = now - Duration::hours(1);
        (nb, nb + Duration::days(days) + Duration::seconds(secs))
    };
    let (nb, na) = lifetime(180, 0);
    v.push(
        Case::new(
            "lifetime exactly 180 days with 2 SCTs",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                    .valid(nb, na),
            ),
        )
        .accepted(),
    );
    let (nb, na) = lifetime(180, 1);
    v.push(
        Case::new(
            "lifetime 180 days + 1 s with 2 SCTs",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                    .valid(nb, na),
            ),
        )
        .policy(too_few_logs(EMB, 3, 2))
        .tls(),
    );
    let (nb, na) = lifetime(397, 0);
    v.push(
        Case::new(
            "lifetime 397 days with 3 SCTs",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, default_logs::BETA, default_logs::GAMMA])
                    .valid(nb, na),
            ),
        )
        .accepted(),
    );
    v.push(
        Case::new(
            "future SCT timestamp",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .embed(SctSpec::at(default_logs::BETA, now + Duration::hours(1))),
            ),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .reasons(vec![C, not(FutureTimestamp)])
        .signatures(&["valid", "valid"]),
    );
    v.push(
        Case::new(
            "the same SCT, checked two hours later",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .embed(SctSpec::at(default_logs::BETA, now + Duration::hours(1))),
            ),
        )
        .at(now + Duration::hours(2))
        .accepted()
        .reasons(vec![C, C]),
    );
    v.push(
        Case::new(
            "pending log",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, default_logs::PENDING])),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .reasons(vec![C, not(LogPending)]),
    );
    v.push(
        Case::new(
            "rejected log",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, default_logs::REJECTED])),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .reasons(vec![
            C,
            not(LogRejected {
                rejected_ms: w.ms(now - Duration::days(60)),
            }),
        ]),
    );
    v.push(
        Case::new(
            "previous operator: SCT from the time Operator A ran Theta",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .embed(SctSpec::at(THETA, now - Duration::days(20))),
            ),
        )
        .policy(too_few_operators(EMB, 2, 1)),
    );
    v.push(
        Case::new(
            "previous operator: SCT after the hand-over to Operator B",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, THETA])),
        )
        .accepted(),
    );

    // --- precertificate signing certificate ------------------------------------------
    let preca = |spec: LeafSpec| LeafSpec {
        precert: PrecertIssuance::PrecertSigningCert,
        ..spec
    };
    v.push(
        Case::new(
            "precert signing certificate, issuer key hash of the final issuer",
            w,
            leaf(&preca(
                w.embedded(&[default_logs::ALPHA, default_logs::BETA]),
            )),
        )
        .accepted()
        .signatures(&["valid", "valid"])
        .tls(),
    );
    v.push(
        Case::new(
            "precert signing certificate, issuer key hash of the precert signer",
            w,
            leaf(&preca(
                w.embedded(&[default_logs::ALPHA]).embed(
                    w.sct(default_logs::BETA)
                        .issuer_key_hash_of(CaCert::PrecertSigner),
                ),
            )),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .signatures(&["valid", "invalid"]),
    );
    v.push(
        Case::new(
            "precert signing certificate, naive precert TBS",
            w,
            leaf(&preca(
                w.embedded(&[default_logs::ALPHA])
                    .embed(w.sct(default_logs::BETA).naive_precert_tbs()),
            )),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .signatures(&["valid", "invalid"]),
    );

    // --- RSA log and static-ct-api ----------------------------------------------------
    v.push(
        Case::new(
            "RSA log SCT counts",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, default_logs::GAMMA])),
        )
        .accepted()
        .signatures(&["valid", "valid"])
        .tls(),
    );
    v.push(
        Case::new(
            "RSA log SCT with a corrupted signature",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .embed(w.sct(default_logs::GAMMA).corrupt_signature()),
            ),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .signatures(&["valid", "invalid"]),
    );
    v.push(
        Case::new(
            "static-ct-api log SCT with a leaf_index extension",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .embed(w.sct(TILE_B).with_leaf_index(1_234_567).unwrap()),
            ),
        )
        .accepted()
        .signatures(&["valid", "valid"])
        .tls(),
    );
    v.push(
        Case::new(
            "Chrome: two static-ct-api logs suffice",
            w,
            leaf(
                &w.spec()
                    .embed(w.sct(TILE_B).with_leaf_index(7).unwrap())
                    .embed(w.sct(TILE_C).with_leaf_index(8).unwrap()),
            ),
        )
        .accepted(),
    );

    // --- Apple policy ----------------------------------------------------------------
    let apple = || w.verifier_with_policy(CtPolicy::apple());
    v.push(
        Case::new(
            "Apple: 2 operators, short lifetime",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, default_logs::BETA])),
        )
        .verifier(apple())
        .accepted()
        .tls(),
    );
    v.push(
        Case::new(
            "Apple: per-operator cap 1 for short lifetimes",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, EPSILON, default_logs::BETA])),
        )
        .verifier(apple())
        .accepted()
        .reasons(vec![
            C,
            not(OperatorCapReached {
                operator: default_logs::OPERATOR_A.into(),
                cap: 1,
            }),
            C,
        ]),
    );
    v.push(
        Case::new(
            "Apple: one operator, cap leaves one log",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, EPSILON])),
        )
        .verifier(apple())
        .policy(too_few_logs(EMB, 2, 1)),
    );
    let (nb, na) = lifetime(300, 0);
    v.push(
        Case::new(
            "Apple: 300 days with 2 SCTs",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                    .valid(nb, na),
            ),
        )
        .verifier(apple())
        .policy(too_few_logs(EMB, 3, 2)),
    );
    v.push(
        Case::new(
            "Apple: 300 days, 3 SCTs, cap 2 per operator",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, EPSILON, default_logs::BETA])
                    .valid(nb, na),
            ),
        )
        .verifier(apple())
        .accepted(),
    );
    let (nb, na) = lifetime(400, 0);
    v.push(
        Case::new(
            "Apple: lifetime beyond 398 days",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, default_logs::BETA, default_logs::GAMMA])
                    .valid(nb, na),
            ),
        )
        .verifier(apple())
        .policy(PolicyFailure::LifetimeTooLong {
            days: 401,
            max_days: 398,
        }),
    );
    v.push(
        Case::new(
            "Apple: static-ct-api logs only",
            w,
            leaf(
                &w.spec()
                    .embed(w.sct(TILE_B).with_leaf_index(7).unwrap())
                    .embed(w.sct(TILE_C).with_leaf_index(8).unwrap()),
            ),
        )
        .verifier(apple())
        .policy(PolicyFailure::NoRfc6962Log { source: EMB }),
    );
    v.push(
        Case::new(
            "Apple: non-embedded option, 1 embedded + 1 OCSP",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .staple(w.sct(default_logs::BETA)),
            ),
        )
        .verifier(apple())
        .accepted(),
    );

    // --- raised minimums ----------------------------------------------------------------
    let raised = |logs, ops| {
        w.verifier_with_policy(ctdns::runtime::policy(PolicyName::Chrome, logs, ops).unwrap())
    };
    v.push(
        Case::new(
            "min_logs 3: two SCTs are not enough",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, default_logs::BETA])),
        )
        .verifier(raised(Some(3), None))
        .policy(too_few_logs(EMB, 3, 2)),
    );
    v.push(
        Case::new(
            "min_logs 3: three SCTs are",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, default_logs::BETA, default_logs::GAMMA])),
        )
        .verifier(raised(Some(3), None))
        .accepted(),
    );
    v.push(
        Case::new(
            "min_operators 3: three logs of two operators",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, EPSILON, default_logs::BETA])),
        )
        .verifier(raised(None, Some(3)))
        .policy(too_few_operators(EMB, 3, 2)),
    );
    v.push(
        Case::new(
            "min_logs 3 applies to OCSP SCTs too",
            w,
            leaf(
                &w.spec()
                    .staple(w.sct(default_logs::ALPHA))
                    .staple(w.sct(default_logs::BETA)),
            ),
        )
        .verifier(raised(Some(3), None))
        .policy(too_few_logs(OCSP, 3, 2)),
    );

    // --- stale log list -----------------------------------------------------------------
    let stale_list = || {
        Arc::new(
            LogList::from_json(
                w.pki
                    .log_list_json(now - Duration::days(100))
                    .unwrap()
                    .as_bytes(),
            )
            .unwrap(),
        )
    };
    let honest2 = || leaf(&w.embedded(&[default_logs::ALPHA, default_logs::BETA]));
    v.push(
        Case::new(
            "stale list (100 days), default: warn and enforce",
            w,
            honest2(),
        )
        .verifier(CtVerifier::new(
            w.roots.clone(),
            CtChecker::new(stale_list(), CtPolicy::chrome()),
        ))
        .accepted(),
    );
    v.push(
        Case::new(
            "stale list (100 days), still enforced: single SCT refused",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA])),
        )
        .verifier(CtVerifier::new(
            w.roots.clone(),
            CtChecker::new(stale_list(), CtPolicy::chrome()),
        ))
        .policy(too_few_logs(EMB, 2, 1)),
    );
    let refuse_stale = StalenessPolicy {
        refuse_when_stale: true,
        ..StalenessPolicy::default()
    };
    v.push(
        Case::new("stale list (100 days), refuse_when_stale", w, honest2())
            .verifier(
                CtVerifier::new(
                    w.roots.clone(),
                    CtChecker::new(stale_list(), CtPolicy::chrome()),
                )
                .with_staleness(refuse_stale),
            )
            .refused("log-list-stale")
            .check("StaleLogList { 100 days, max 70 }", |r| {
                matches!(
                    r,
                    Refusal::StaleLogList {
                        age_days: 100,
                        max_days: 70
                    }
                )
            })
            .tls(),
    );
    v.push(
        Case::new("fresh list, refuse_when_stale", w, honest2())
            .verifier(w.verifier().with_staleness(refuse_stale))
            .accepted(),
    );
    v.push({
        let undated = w.edited_list(|json| {
            json.as_object_mut().unwrap().remove("log_list_timestamp");
        });
        Case::new(
            "undated list, refuse_when_stale: freshness cannot be shown",
            w,
            honest2(),
        )
        .verifier(w.verifier_with_list(undated).with_staleness(refuse_stale))
        .refused("log-list-stale")
    });
    v.push({
        let undated = w.edited_list(|json| {
            json.as_object_mut().unwrap().remove("log_list_timestamp");
        });
        Case::new("undated list, default: enforce", w, honest2())
            .verifier(w.verifier_with_list(undated))
            .accepted()
    });

    // --- chain ----------------------------------------------------------------------------
    v.push(
        Case::new(
            "expired leaf",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                    .valid(now - Duration::days(100), now - Duration::days(10)),
            ),
        )
        .refused("chain")
        .check("Chain(CertExpired)", |r| {
            matches!(r, Refusal::Chain(webpki::Error::CertExpired { .. }))
        })
        .tls(),
    );
    v.push(
        Case::new(
            "leaf not yet valid",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                    .valid(now + Duration::days(1), now + Duration::days(30)),
            ),
        )
        .refused("chain")
        .check("Chain(CertNotValidYet)", |r| {
            matches!(r, Refusal::Chain(webpki::Error::CertNotValidYet { .. }))
        }),
    );
    v.push(
        Case::new(
            "rogue CA not trusted",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                    .issued_by(LeafIssuer::RogueIntermediate),
            ),
        )
        .refused("chain")
        .check("Chain(UnknownIssuer)", |r| {
            matches!(r, Refusal::Chain(webpki::Error::UnknownIssuer))
        })
        .tls(),
    );
    {
        let honest = honest2();
        let mut missing = honest.chain.clone();
        missing.truncate(1);
        v.push(
            Case::raw("intermediate not sent", w, missing)
                .refused("chain")
                .check("Chain(UnknownIssuer)", |r| {
                    matches!(r, Refusal::Chain(webpki::Error::UnknownIssuer))
                }),
        );
    }

    // --- IP SAN and DNS name ---------------------------------------------------------------
    v.push(
        Case::new(
            "IP only in the subject CN",
            w,
            leaf(&LeafSpec {
                ip_sans: Vec::new(),
                common_name: Some("127.0.0.1".into()),
                dns_sans: vec![DNS_NAME.into()],
                ..w.embedded(&[default_logs::ALPHA, default_logs::BETA])
            }),
        )
        .refused("ip-san")
        .check(
            "IpSanMismatch for 127.0.0.1",
            |r| matches!(r, Refusal::IpSanMismatch { ip, .. } if *ip == LOCALHOST),
        )
        .tls(),
    );
    v.push(
        Case::new(
            "certificate for another IP",
            w,
            leaf(
                &w.pki
                    .leaf_spec(OTHER_IP)
                    .embed(w.sct(default_logs::ALPHA))
                    .embed(w.sct(default_logs::BETA)),
            ),
        )
        .refused("ip-san")
        .check(
            "IpSanMismatch for 127.0.0.1",
            |r| matches!(r, Refusal::IpSanMismatch { ip, .. } if *ip == LOCALHOST),
        )
        .tls(),
    );
    v.push(
        Case::new(
            "offline audit without --ip skips only the IP rule",
            w,
            leaf(
                &w.pki
                    .leaf_spec(OTHER_IP)
                    .embed(w.sct(default_logs::ALPHA))
                    .embed(w.sct(default_logs::BETA)),
            ),
        )
        .ip(None)
        .accepted(),
    );
    let named = || {
        leaf(&LeafSpec {
            dns_sans: vec![DNS_NAME.into()],
            ..w.embedded(&[default_logs::ALPHA, default_logs::BETA])
        })
    };
    v.push(
        Case::new("configured DNS name matches", w, named())
            .verifier(
                w.verifier()
                    .with_dns_name(ServerName::try_from(DNS_NAME).unwrap()),
            )
            .accepted()
            .tls(),
    );
    v.push(
        Case::new("configured DNS name does not match", w, named())
            .verifier(
                w.verifier()
                    .with_dns_name(ServerName::try_from("other.ctdns.test").unwrap()),
            )
            .refused("dns-name")
            .check("DnsNameMismatch for other.ctdns.test", |r| {
                matches!(r, Refusal::DnsNameMismatch { name, .. } if name == "other.ctdns.test")
            })
            .tls(),
    );
    v.push(
        Case::new("per-call DNS name does not match", w, named())
            .dns("other.ctdns.test")
            .refused("dns-name"),
    );
    v.push(
        Case::new("SNI is a DNS name and no dialed IP is known", w, named())
            .tls_only_named(DNS_NAME)
            .refused("ip-san")
            .check(
                "NotDialedByIp(dns.ctdns.test)",
                |r| matches!(r, Refusal::NotDialedByIp(name) if name == DNS_NAME),
            ),
    );
    v.push(
        Case::new("SNI is a DNS name, dialed IP configured", w, named())
            .verifier(w.verifier().with_dialed_ip(LOCALHOST))
            .tls_only_named(DNS_NAME)
            .accepted(),
    );
    v.push(
        Case::new(
            "SNI is a DNS name, dialed IP not in the certificate",
            w,
            named(),
        )
        .verifier(w.verifier().with_dialed_ip(OTHER_IP))
        .tls_only_named(DNS_NAME)
        .refused("ip-san"),
    );
    v.push(
        Case::new(
            "SNI is the wrong DNS name, dialed IP configured",
            w,
            named(),
        )
        .verifier(w.verifier().with_dialed_ip(LOCALHOST))
        .tls_only_named("other.ctdns.test")
        .refused("dns-name"),
    );

    // --- denylist ------------------------------------------------------------------------
    {
        let honest = honest2();
        let leaf_fp = CertFingerprint::of_cert(honest.leaf());
        let inter_fp = CertFingerprint::of_cert(w.pki.intermediate().der());
        let deny = |fps: &[CertFingerprint]| Arc::new(fps.iter().copied().collect::<HashSet<_>>());
        v.push(
            Case::new("denylisted leaf", w, honest.clone())
                .verifier(w.verifier().with_denylist(deny(&[leaf_fp])))
                .refused("denylist")
                .check("Denylisted(leaf)", move |r| {
                    matches!(r, Refusal::Denylisted { fingerprint } if *fingerprint == leaf_fp)
                })
                .tls(),
        );
        v.push(
            Case::new("denylisted intermediate", w, honest.clone())
                .verifier(w.verifier().with_denylist(deny(&[inter_fp])))
                .refused("denylist")
                .check("Denylisted(intermediate)", move |r| {
                    matches!(r, Refusal::Denylisted { fingerprint } if *fingerprint == inter_fp)
                }),
        );
        v.push(
            Case::new("denylist of other certificates", w, honest)
                .verifier(w.verifier().with_denylist(deny(&[CertFingerprint::of_cert(
                    w.pki.rogue_intermediate().der(),
                )])))
                .accepted(),
        );
    }

    // --- the Fina scenario: issuer pins -------------------------------------------------------
    {
        let rogue = leaf(
            &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                .issued_by(LeafIssuer::RogueIntermediate),
        );
        let honest = honest2();
        let pins = |cas: &[CaCert]| cas.iter().map(|c| w.pin(*c)).collect::<Vec<_>>();
        let rogue_path = vec![w.pin(CaCert::RogueIntermediate), w.pin(CaCert::RogueRoot)];
        v.push(
            Case::new(
                "Fina: rogue CT-logged chain, rogue root trusted, no pins",
                w,
                rogue.clone(),
            )
            .verifier(w.verifier_trusting_rogue())
            .accepted()
            .tls(),
        );
        v.push(
            Case::new("Fina: pin on the honest intermediate", w, rogue.clone())
                .verifier(
                    w.verifier_trusting_rogue()
                        .with_pins(pins(&[CaCert::Intermediate])),
                )
                .refused("issuer-pin")
                .check("IssuerNotPinned listing the rogue path", move |r| {
                    matches!(r, Refusal::IssuerNotPinned { chain, .. } if *chain == rogue_path)
                })
                .tls(),
        );
        v.push(
            Case::new("Fina: pin on the honest root", w, rogue.clone())
                .verifier(w.verifier_trusting_rogue().with_pins(pins(&[CaCert::Root])))
                .refused("issuer-pin")
                .tls(),
        );
        v.push(
            Case::new("Fina: several pins, all on the honest CA", w, rogue.clone())
                .verifier(
                    w.verifier_trusting_rogue()
                        .with_pins(pins(&[CaCert::Root, CaCert::Intermediate])),
                )
                .refused("issuer-pin"),
        );
        v.push(
            Case::new(
                "pins: honest leaf, pin on the intermediate",
                w,
                honest.clone(),
            )
            .verifier(
                w.verifier_trusting_rogue()
                    .with_pins(pins(&[CaCert::Intermediate])),
            )
            .accepted()
            .tls(),
        );
        v.push(
            Case::new("pins: honest leaf, pin on the root", w, honest.clone())
                .verifier(w.verifier_trusting_rogue().with_pins(pins(&[CaCert::Root])))
                .accepted()
                .tls(),
        );
        v.push(
            Case::new(
                "pins: honest leaf, several pins (one unrelated)",
                w,
                honest.clone(),
            )
            .verifier(
                w.verifier_trusting_rogue()
                    .with_pins(vec![SpkiPin([7; 32]), w.pin(CaCert::Root)]),
            )
            .accepted(),
        );
        v.push(
            Case::new(
                "pins: a pin on the rogue intermediate accepts the rogue chain",
                w,
                rogue.clone(),
            )
            .verifier(
                w.verifier_trusting_rogue()
                    .with_pins(pins(&[CaCert::RogueIntermediate])),
            )
            .accepted(),
        );
        v.push(
            Case::new(
                "pins: unrelated pin only, honest leaf refused",
                w,
                honest.clone(),
            )
            .verifier(w.verifier().with_pins(vec![SpkiPin([7; 32])]))
            .refused("issuer-pin"),
        );
        v.push(
            Case::new(
                "pins: a CT failure is reported before the pin",
                w,
                leaf(
                    &w.embedded(&[default_logs::ALPHA])
                        .issued_by(LeafIssuer::RogueIntermediate),
                ),
            )
            .verifier(w.verifier_trusting_rogue().with_pins(pins(&[CaCert::Root])))
            .policy(too_few_logs(EMB, 2, 1)),
        );
    }

    // --- OCSP-stapled SCTs ---------------------------------------------------------------------
    let stapled = |logs: &[&str]| {
        leaf(
            &logs
                .iter()
                .fold(w.spec(), |spec, log| spec.staple(w.sct(log))),
        )
    };
    v.push(
        Case::new(
            "OCSP only: 2 operators",
            w,
            stapled(&[default_logs::ALPHA, default_logs::BETA]),
        )
        .accepted()
        .reasons(vec![C, C])
        .tls(),
    );
    v.push(
        Case::new(
            "OCSP only: 1 operator",
            w,
            stapled(&[default_logs::ALPHA, EPSILON]),
        )
        .policy(too_few_operators(OCSP, 2, 1))
        .tls(),
    );
    v.push(
        Case::new("OCSP only: 1 SCT", w, stapled(&[default_logs::ALPHA]))
            .policy(too_few_logs(OCSP, 2, 1)),
    );
    v.push(
        Case::new(
            "OCSP only: RSA log",
            w,
            stapled(&[default_logs::GAMMA, default_logs::BETA]),
        )
        .accepted()
        .signatures(&["valid", "valid"]),
    );
    v.push(
        Case::new(
            "OCSP only: retired log never counts for OCSP",
            w,
            leaf(
                &w.spec()
                    .staple(w.sct(default_logs::BETA))
                    .staple(SctSpec::at(default_logs::DELTA, now - Duration::days(60))),
            ),
        )
        .policy(too_few_logs(OCSP, 2, 1))
        .reasons(vec![
            C,
            not(LogNotCurrentForOcsp {
                retired_ms: w.ms(now - Duration::days(30)),
            }),
        ]),
    );
    v.push(
        Case::new(
            "OCSP only: corrupted signature",
            w,
            leaf(
                &w.spec()
                    .staple(w.sct(default_logs::ALPHA))
                    .staple(w.sct(default_logs::BETA).corrupt_signature()),
            ),
        )
        .policy(too_few_logs(OCSP, 2, 1))
        .signatures(&["valid", "invalid"]),
    );
    v.push(
        Case::new(
            "OCSP only: SCT over another certificate",
            w,
            leaf(
                &w.spec()
                    .staple(w.sct(default_logs::ALPHA))
                    .staple(w.sct(default_logs::BETA).sign_over_other_tbs()),
            ),
        )
        .policy(too_few_logs(OCSP, 2, 1))
        .signatures(&["valid", "invalid"]),
    );
    v.push(
        Case::new(
            "OCSP only: mimic log",
            w,
            stapled(&[default_logs::ALPHA, MIMIC2]),
        )
        .policy(too_few_logs(OCSP, 2, 1))
        .reasons(vec![C, not(MimicLog)]),
    );
    v.push(
        Case::new(
            "OCSP only, but the staple is not sent",
            w,
            stapled(&[default_logs::ALPHA, default_logs::BETA]),
        )
        .ocsp(Vec::new())
        .policy(PolicyFailure::NoScts),
    );
    v.push(
        Case::new(
            "mix: 1 embedded + 1 OCSP, neither set complies (Chrome)",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .staple(w.sct(default_logs::BETA)),
            ),
        )
        .policy(PolicyFailure::Neither {
            embedded: Box::new(too_few_logs(EMB, 2, 1)),
            ocsp: Box::new(too_few_logs(OCSP, 2, 1)),
        })
        .tls(),
    );
    v.push(
        Case::new(
            "mix: 2 embedded + 1 OCSP",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                    .staple(w.sct(default_logs::GAMMA)),
            ),
        )
        .accepted()
        .tls(),
    );
    v.push(
        Case::new(
            "mix: 1 embedded + 2 OCSP",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .staple(w.sct(default_logs::BETA))
                    .staple(w.sct(default_logs::GAMMA)),
            ),
        )
        .accepted()
        .reasons(vec![C, C, C]),
    );
    v.push(
        Case::new(
            "mix: embedded mimic + OCSP mimic + honest one each",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, MIMIC1])
                    .staple(w.sct(default_logs::BETA))
                    .staple(w.sct(MIMIC2)),
            ),
        )
        .policy(PolicyFailure::Neither {
            embedded: Box::new(too_few_logs(EMB, 2, 1)),
            ocsp: Box::new(too_few_logs(OCSP, 2, 1)),
        })
        .reasons(vec![C, not(MimicLog), C, not(MimicLog)]),
    );
    {
        // A staple for another certificate (its own valid SCTs) does not count for this one.
        let other = stapled(&[default_logs::ALPHA, default_logs::BETA]);
        v.push(
            Case::new("OCSP response of another certificate", w, leaf(&w.spec()))
                .ocsp(other.ocsp_response.clone().unwrap())
                .policy(PolicyFailure::NoScts),
        );
    }
    v.push(
        Case::new("OCSP tryLater staple next to embedded SCTs", w, honest2())
            .ocsp(vec![0x30, 0x03, 0x0a, 0x01, 0x03])
            .accepted(),
    );

    // --- malformed inputs: typed errors ----------------------------------------------------
    v.push(
        Case::raw(
            "garbage leaf",
            w,
            vec![CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x05])],
        )
        .refused("chain")
        .check("Chain(BadDer*)", |r| {
            matches!(
                r,
                Refusal::Chain(webpki::Error::BadDer | webpki::Error::BadDerTime)
                    | Refusal::Chain(webpki::Error::TrailingData(_))
            )
        }),
    );
    v.push(Case::raw("empty leaf", w, vec![CertificateDer::from(Vec::new())]).refused("chain"));
    {
        let honest = honest2();
        let half = honest.leaf().len() / 2;
        let truncated = CertificateDer::from(honest.leaf()[..half].to_vec());
        v.push(
            Case::raw(
                "truncated leaf",
                w,
                vec![truncated, honest.chain[1].clone()],
            )
            .refused("chain"),
        );
        let inter = honest.chain[1].as_ref();
        let truncated_inter = CertificateDer::from(inter[..inter.len() - 10].to_vec());
        v.push(
            Case::raw(
                "truncated intermediate",
                w,
                vec![honest.leaf().clone(), truncated_inter],
            )
            .refused("chain"),
        );
        // A staple that cannot be read is ignored, for revocation and for its SCTs: the
        // connection is judged on the embedded SCTs (here compliant).
        v.push(
            Case::new(
                "malformed OCSP staple (not DER): ignored",
                w,
                honest.clone(),
            )
            .ocsp(vec![0xde, 0xad, 0xbe, 0xef])
            .accepted()
            .reasons(vec![C, C])
            .staple_ignored(true, true)
            .tls(),
        );
        v.push(
            Case::new(
                "OCSP staple: successful without responseBytes: ignored",
                w,
                honest.clone(),
            )
            .ocsp(vec![0x30, 0x03, 0x0a, 0x01, 0x00])
            .accepted()
            .staple_ignored(true, true),
        );
        let bad_list = build_ocsp_response(
            w.pki.intermediate(),
            honest.leaf(),
            Some(&[0x00, 0x05, 0x00, 0x01]),
            now - Duration::hours(1),
            now + Duration::days(7),
        )
        .unwrap();
        // Signed by the issuer and good: used for revocation; its SCT list is ignored.
        v.push(
            Case::new(
                "OCSP staple with a malformed SCT list: SCTs ignored",
                w,
                honest.clone(),
            )
            .ocsp(bad_list)
            .accepted()
            .reasons(vec![C, C])
            .staple_ignored(false, true),
        );
    }
    // --- revocation from a stapled OCSP response ------------------------------------
    // Only a staple that verifies (issuer or authorized responder, this leaf, current)
    // and says revoked refuses; every other staple is ignored and reported, and the
    // connection is judged on the other rules (here: compliant embedded SCTs).
    {
        let revoked_at = now - Duration::hours(1);
        let revoked = || OcspSpec::revoked(revoked_at, Some(1));
        let with = |spec: OcspSpec| {
            leaf(
                &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                    .with_ocsp(spec),
            )
        };
        let revoked_fields = move |r: &Refusal| {
            matches!(
                r,
                Refusal::Revoked {
                    revoked_at: t,
                    reason: Some(RevocationReason(1)),
                    serial,
                } if *t == unix_ms(revoked_at) / 1000 && !serial.is_empty()
            )
        };
        v.push(
            Case::new("revoked: staple signed by the issuer", w, with(revoked()))
                .refused("revoked")
                .check("Revoked { keyCompromise }", revoked_fields)
                .tls(),
        );
        v.push(
            Case::new(
                "revoked: staple signed by a delegated responder",
                w,
                with(revoked().signed_by(OcspSigner::DelegatedResponder)),
            )
            .refused("revoked")
            .check("Revoked { keyCompromise }", revoked_fields)
            .tls(),
        );
        v.push(
            Case::new(
                "revoked: leaf issued by the root, staple signed by the root",
                w,
                leaf(
                    &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                        .issued_by(LeafIssuer::Root)
                        .with_ocsp(revoked()),
                ),
            )
            .refused("revoked"),
        );
        v.push(
            Case::new(
                "revoked: no SCTs at all (revoked comes before CT)",
                w,
                leaf(&w.spec().with_ocsp(revoked())),
            )
            .refused("revoked"),
        );
        v.push(
            Case::new(
                "revoked: dialed another IP (names come before revoked)",
                w,
                with(revoked()),
            )
            .ip(Some(OTHER_IP))
            .refused("ip-san"),
        );
        v.push(
            Case::new("staple good: accepted, used", w, with(OcspSpec::default()))
                .accepted()
                .staple_ignored(false, false)
                .tls(),
        );
        for (name, signer) in [
            ("signed by the wrong key", OcspSigner::WrongKey),
            ("garbage signature", OcspSigner::GarbageSignature),
            ("empty signature", OcspSigner::EmptySignature),
            (
                "responder not issued by the issuer",
                OcspSigner::ResponderNotIssuedByIssuer,
            ),
            (
                "responder without id-kp-OCSPSigning",
                OcspSigner::ResponderWithoutOcspEku,
            ),
        ] {
            let mut case = Case::new(
                &format!("revoked staple ignored: {name}"),
                w,
                with(revoked().signed_by(signer)),
            )
            .accepted()
            .reasons(vec![C, C])
            .staple_ignored(true, false);
            if signer == OcspSigner::WrongKey {
                case = case.tls();
            }
            v.push(case);
        }
        v.push(
            Case::new(
                "revoked staple ignored: CertID for another serial",
                w,
                with(revoked().for_serial(vec![0x42])),
            )
            .accepted()
            .staple_ignored(true, false),
        );
        v.push(
            Case::new(
                "revoked staple ignored: stale (nextUpdate passed)",
                w,
                leaf(&LeafSpec {
                    ocsp_this_update: Some(now - Duration::days(8)),
                    ..w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                        .with_ocsp(revoked())
                }),
            )
            .accepted()
            .staple_ignored(true, false)
            .tls(),
        );
        // A genuine revoked staple of another leaf of the same CA.
        let other = with(revoked());
        v.push(
            Case::new(
                "revoked staple ignored: another leaf's staple",
                w,
                leaf(&w.embedded(&[default_logs::ALPHA, default_logs::BETA])),
            )
            .ocsp(other.ocsp_response.clone().unwrap())
            .accepted()
            .staple_ignored(true, false),
        );
        // Ignored for revocation, yet its SCTs count: a staple whose signature is garbage
        // carrying two valid OCSP SCTs covers a leaf without embedded SCTs.
        v.push(
            Case::new(
                "revoked staple with garbage signature: its valid SCTs still count",
                w,
                leaf(
                    &w.spec()
                        .staple(w.sct(default_logs::ALPHA))
                        .staple(w.sct(default_logs::BETA))
                        .with_ocsp(revoked().signed_by(OcspSigner::GarbageSignature)),
                ),
            )
            .accepted()
            .reasons(vec![C, C])
            .signatures(&["valid", "valid"])
            .staple_ignored(true, false),
        );
    }
    {
        let mini = MiniCa::new(now);
        let mv = || mini.verifier(w);
        v.push(
            Case::raw(
                "mini CA: well-formed leaf without SCTs (control)",
                w,
                vec![mini.leaf(now, None)],
            )
            .verifier(mv())
            .policy(PolicyFailure::NoScts),
        );
        v.push(
            Case::raw(
                "SCT extension: list length disagrees",
                w,
                vec![mini.leaf(now, Some(octet_string(&[0x00, 0x05, 0x00, 0x01])))],
            )
            .verifier(mv())
            .refused("certificate")
            .check("Malformed(EmbeddedList(ListLength))", |r| {
                matches!(
                    r,
                    Refusal::Malformed(CtInputError::EmbeddedList(SctListError::ListLength {
                        declared: 5,
                        actual: 2
                    }))
                )
            }),
        );
        v.push(
            Case::raw(
                "SCT extension: empty list",
                w,
                vec![mini.leaf(now, Some(octet_string(&[0x00, 0x00])))],
            )
            .verifier(mv())
            .refused("certificate")
            .check("Malformed(EmbeddedList(Empty))", |r| {
                matches!(
                    r,
                    Refusal::Malformed(CtInputError::EmbeddedList(SctListError::Empty))
                )
            }),
        );
        v.push(
            Case::raw(
                "SCT extension: truncated SCT",
                w,
                vec![mini.leaf(
                    now,
                    Some(octet_string(&[0x00, 0x05, 0x00, 0x03, 0x00, 0x01, 0x02])),
                )],
            )
            .verifier(mv())
            .refused("certificate")
            .check("Malformed(EmbeddedList(Field))", |r| {
                matches!(
                    r,
                    Refusal::Malformed(CtInputError::EmbeddedList(SctListError::Field {
                        index: 0,
                        ..
                    }))
                )
            }),
        );
        v.push(
            Case::raw(
                "two SCT-list extensions",
                w,
                vec![mini.leaf_with(
                    now,
                    vec![
                        octet_string(&[0x00, 0x05, 0x00, 0x03, 0x00, 0x01, 0x02]),
                        octet_string(&[0x00, 0x05, 0x00, 0x03, 0x00, 0x01, 0x02]),
                    ],
                )],
            )
            .verifier(mv())
            // webpki refuses duplicate extensions before the CT step.
            .refused("chain")
            .check("Chain(ExtensionValueInvalid)", |r| {
                matches!(r, Refusal::Chain(webpki::Error::ExtensionValueInvalid))
            }),
        );
        v.push(
            // webpki itself parses this extension and refuses the certificate first.
            Case::raw(
                "SCT extension: value is not an OCTET STRING",
                w,
                vec![mini.leaf(now, Some(vec![0x02, 0x01, 0x05]))],
            )
            .verifier(mv())
            .refused("chain")
            .check("Chain(BadDer)", |r| {
                matches!(r, Refusal::Chain(webpki::Error::BadDer))
            }),
        );
    }
    v
}

struct Matrix {
    world: World,
    cases: Vec<Case>,
}

fn matrix() -> &'static Matrix {
    static M: OnceLock<Matrix> = OnceLock::new();
    M.get_or_init(|| {
        let world = World::new();
        let cases = cases(&world);
        Matrix { world, cases }
    })
}

#[test]
fn matrix_through_verify() {
    let m = matrix();
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in m.cases.iter().filter(|c| c.direct) {
        ran += 1;
        for e in run_direct(case) {
            failures.push(format!("[{}] {e}", case.name));
        }
    }
    assert!(ran >= 40, "only {ran} direct cases");
    let names: HashSet<&str> = m.cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), m.cases.len(), "case names are unique");
    assert!(
        failures.is_empty(),
        "{} of {ran} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Every rule name is exercised.
    let rules: HashSet<&str> = m.cases.iter().filter_map(|c| c.expect.rule).collect();
    for rule in [
        "chain",
        "ip-san",
        "dns-name",
        "revoked",
        "certificate",
        "ct-policy",
        "log-list-stale",
        "issuer-pin",
        "denylist",
    ] {
        assert!(rules.contains(rule), "no case for rule {rule}");
    }
}

// ---------------------------------------------------------------------------------------
// Real handshakes.
// ---------------------------------------------------------------------------------------

/// A server certificate that can be swapped between connections.
#[derive(Debug)]
struct Swappable(Mutex<Arc<CertifiedKey>>);

impl Swappable {
    fn new(leaf: &IssuedLeaf, ocsp: &[u8]) -> Arc<Self> {
        Arc::new(Self(Mutex::new(certified(leaf, ocsp))))
    }

    fn set(&self, leaf: &IssuedLeaf, ocsp: &[u8]) {
        *self.0.lock().unwrap() = certified(leaf, ocsp);
    }
}

impl ResolvesServerCert for Swappable {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.lock().ok().map(|k| k.clone())
    }
}

fn certified(leaf: &IssuedLeaf, ocsp: &[u8]) -> Arc<CertifiedKey> {
    let key = rustls::crypto::ring::sign::any_supported_type(&leaf.key_der()).unwrap();
    let mut ck = CertifiedKey::new(leaf.chain.clone(), key);
    ck.ocsp = (!ocsp.is_empty()).then(|| ocsp.to_vec());
    Arc::new(ck)
}

/// The test kit's ping server on 127.0.0.1:0 presenting what `resolver` holds, speaking only
/// `versions`, for `connections` connections.
async fn serve(
    resolver: Arc<Swappable>,
    connections: usize,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> PingServer {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    PingServer::start(LOCALHOST, Arc::new(config), connections)
        .await
        .unwrap()
}

/// One refusal as the observer saw it: server name, rule, chain length, OCSP bytes.
type Seen = (String, &'static str, usize, Vec<u8>);

/// Records every refusal the verifier reports.
#[derive(Debug, Default)]
struct Recorder {
    events: Mutex<Vec<Seen>>,
}

impl RefusalObserver for Recorder {
    fn refused(&self, event: &RefusalEvent<'_>) {
        let rule = event
            .decision
            .refusal
            .as_ref()
            .map_or("none", Refusal::rule);
        self.events.lock().unwrap().push((
            event.server_name.clone(),
            rule,
            event.chain.len(),
            event.ocsp.to_vec(),
        ));
    }
}

async fn run_tls(case: &Case, name: ServerName<'static>) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(leaf) = &case.leaf else {
        return vec!["handshake case without a key".into()];
    };
    let mut presented = leaf.clone();
    presented.chain = case.chain.clone();
    let server = serve(
        Swappable::new(&presented, &case.ocsp),
        1,
        rustls::DEFAULT_VERSIONS,
    )
    .await;
    let recorder = Arc::new(Recorder::default());
    let verifier = case
        .verifier
        .clone()
        .with_observer(recorder.clone())
        .with_label(case.name.clone());
    let config = client_config(Arc::new(verifier), &[]).unwrap();
    let result = ping(config, server.addr(), name.clone()).await;
    let served = server.finish().await;
    let refusal = match &result {
        Ok(()) => None,
        Err(e) => match Refusal::find_in(e) {
            Some(r) => Some(r),
            None => {
                errors.push(format!("handshake failed without a refusal: {e}"));
                return errors;
            }
        },
    };
    let report = match refusal {
        Some(Refusal::CtPolicy(report)) => Some(&**report),
        _ => None,
    };
    judge(&case.expect, refusal, report, &mut errors);
    let events = recorder.events.lock().unwrap();
    match refusal {
        None => {
            if !events.is_empty() {
                errors.push(format!("accepted, but the observer saw {events:?}"));
            }
            if !matches!(served.as_slice(), [Ok(())]) {
                errors.push(format!("accepted, but the server saw {served:?}"));
            }
        }
        Some(r) => match events.as_slice() {
            [(server_name, rule, chain_len, ocsp)] => {
                if *rule != r.rule()
                    || *chain_len != case.chain.len()
                    || *ocsp != case.ocsp
                    || *server_name != name.to_str()
                {
                    errors.push(format!(
                        "observer saw ({server_name}, {rule}, {chain_len} certs, {} OCSP bytes)",
                        ocsp.len()
                    ));
                }
            }
            other => errors.push(format!("observer saw {} events", other.len())),
        },
    }
    errors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_through_rustls_handshakes() {
    let m = matrix();
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in &m.cases {
        let Some(name) = case.tls.clone() else {
            continue;
        };
        ran += 1;
        for e in run_tls(case, name).await {
            failures.push(format!("[{} / TLS] {e}", case.name));
        }
    }
    assert!(ran >= 10, "only {ran} handshake cases");
    assert!(
        failures.is_empty(),
        "{} of {ran} handshake cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Session resumption never skips the verifier.
// ---------------------------------------------------------------------------------------

/// Two connections with one client configuration to one server (speaking only
/// `versions`) whose certificate is swapped to a rogue (CT-logged, pinned-out) one in
/// between. Returns the results and how often the verifier ran.
async fn two_connections(
    w: &World,
    mut config: rustls::ClientConfig,
    counting: Arc<ObservedVerifier>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> (std::io::Result<()>, std::io::Result<()>, usize) {
    let honest = w.issue(&w.embedded(&[default_logs::ALPHA, default_logs::BETA]));
    let rogue = w.issue(
        &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
            .issued_by(LeafIssuer::RogueIntermediate),
    );
    config
        .dangerous()
        .set_certificate_verifier(counting.clone());
    let config = Arc::new(config);
    let resolver = Swappable::new(&honest, &[]);
    let server = serve(resolver.clone(), 2, versions).await;
    let ip = ServerName::IpAddress(LOCALHOST.into());
    let first = ping(config.clone(), server.addr(), ip.clone()).await;
    resolver.set(&rogue, &[]);
    let second = ping(config, server.addr(), ip).await;
    let _ = server.finish().await;
    (first, second, counting.calls())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumption_never_skips_verification() {
    let w = &matrix().world;
    let pinned = Arc::new(
        w.verifier_trusting_rogue()
            .with_pins(vec![w.pin(CaCert::Intermediate)]),
    );
    let config = client_config(pinned.clone(), &[]).unwrap();
    // What client_config sets: no session store, no TLS 1.2 resumption, no 0-RTT.
    let resumption = format!("{:?}", config.resumption);
    assert!(
        resumption.contains("NoClientSessionStorage") && resumption.contains("Disabled"),
        "{resumption}"
    );
    assert!(!config.enable_early_data);

    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        // ctdns's configuration: the second connection is verified and refused.
        let counting = Arc::new(ObservedVerifier::new(pinned.clone()));
        let (first, second, calls) =
            two_connections(w, (*config).clone(), counting, versions).await;
        first.unwrap_or_else(|e| panic!("{versions:?}: first connection: {e}"));
        let err = second.expect_err("the rogue certificate must be refused");
        assert_eq!(
            Refusal::find_in(&err).map(Refusal::rule),
            Some("issuer-pin"),
            "{versions:?}: {err}"
        );
        assert_eq!(calls, 2, "{versions:?}: every handshake runs the verifier");

        // Control: the same test with resumption enabled does detect skipped
        // verification (the second connection resumes, the rogue certificate is never
        // seen), so the assertion above is meaningful.
        let mut resuming = (*config).clone();
        resuming.resumption = Resumption::default();
        let counting = Arc::new(ObservedVerifier::new(pinned.clone()));
        let (first, second, calls) = two_connections(w, resuming, counting, versions).await;
        first.unwrap();
        second.unwrap_or_else(|e| panic!("{versions:?}: resumed connection: {e}"));
        assert_eq!(
            calls, 1,
            "{versions:?}: a resumed handshake skips the verifier"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Typed errors outside the handshake.
// ---------------------------------------------------------------------------------------

#[test]
fn bad_log_lists_are_typed_errors() {
    let w = &matrix().world;
    assert!(matches!(
        LogList::from_json(b"{\"operators\": ["),
        Err(LogListError::Json { .. })
    ));
    assert!(matches!(
        LogList::from_json(b"{\"version\": \"1\"}"),
        Err(LogListError::UnknownSchema { .. })
    ));
    // A log whose log_id is not the hash of its key.
    let mut json: serde_json::Value = serde_json::from_str(&w.list_json).unwrap();
    json["operators"][0]["logs"][0]["log_id"] = serde_json::Value::String(base64_of(&[1u8; 32]));
    assert!(matches!(
        LogList::from_json(json.to_string().as_bytes()),
        Err(LogListError::LogIdMismatch { .. })
    ));
    // A key that is not an SPKI.
    let mut json: serde_json::Value = serde_json::from_str(&w.list_json).unwrap();
    json["operators"][0]["logs"][0]["key"] = serde_json::Value::String(base64_of(b"not a key"));
    assert!(matches!(
        LogList::from_json(json.to_string().as_bytes()),
        Err(LogListError::BadKey { .. })
    ));
    // An unknown state.
    let mut json: serde_json::Value = serde_json::from_str(&w.list_json).unwrap();
    json["operators"][0]["logs"][0]["state"] =
        serde_json::json!({"trusted": {"timestamp": "2026-01-01T00:00:00Z"}});
    assert!(matches!(
        LogList::from_json(json.to_string().as_bytes()),
        Err(LogListError::UnknownState { .. })
    ));
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The decision type is what `ctdns verify` prints; make sure a refusal's Display names
/// its rule, as the CLI's verdict line relies on.
#[test]
fn refusal_messages_name_their_rule() {
    let m = matrix();
    for case in m.cases.iter().filter(|c| c.direct) {
        let Some((ee, inter)) = case.chain.split_first() else {
            continue;
        };
        let d: Decision =
            case.verifier
                .verify(ee, inter, case.ip, case.dns.as_ref(), &case.ocsp, case.at);
        if let Some(r) = &d.refusal {
            let text = r.to_string();
            assert!(
                text.starts_with(&format!("rule {}", r.rule())),
                "[{}] {text}",
                case.name
            );
        }
    }
}
