//! The CT-enforcing verifier end to end: a generated matrix of cases from the test PKI
//! (real keys, real certificate and SCT signatures) run through `CtVerifier::verify`, and a
//! subset through real rustls handshakes on loopback with the client configuration ctdns
//! builds (`ctdns::tls::client_config`). Every case asserts the verdict and, when refused,
//! the exact rule (`Refusal::rule()`), and where it matters the policy failure and the
//! per-SCT reasons.
//!
//! Plus: session resumption never skips the verifier, and typed errors for bad log lists.
//!
//! Layout: this file has the world, the case type and the direct run; `sections/` the cases,
//! one module per section of the matrix; `handshakes.rs` the rustls run (the test kit's ping
//! server), `resumption.rs` and `typed_errors.rs` the rest.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration as StdDuration;

use ctdns::ct::checker::{CtChecker, CtInputError};
use ctdns::ct::log_list::{LogList, LogListError, StalenessPolicy};
use ctdns::ct::policy::PolicyKind;
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

mod handshakes;
mod resumption;
mod sections;
mod typed_errors;

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
    ctdns::provider::default_provider()
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

    /// The honest leaf: embedded SCTs from Alpha and Beta.
    fn honest2(&self) -> IssuedLeaf {
        self.issue(&self.embedded(&[default_logs::ALPHA, default_logs::BETA]))
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
    sections::all(w)
}

/// `(not before, not after)` of a leaf valid `days` days and `secs` seconds from an hour before `now`.
fn lifetime(now: OffsetDateTime, days: i64, secs: i64) -> (OffsetDateTime, OffsetDateTime) {
    let nb = now - Duration::hours(1);
    (nb, nb + Duration::days(days) + Duration::seconds(secs))
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
