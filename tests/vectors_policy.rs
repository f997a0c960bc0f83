//! The whole CT decision (`CtChecker`: SCT extraction, signature check against the log
//! list, policy) on the real, public vectors in `tests/data/ct-vectors`, with the log list
//! that fits each and an injected time. Expected outcomes come from the vectors' README
//! and SCT table (log states per list) and the lists themselves.

use std::path::PathBuf;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ctdns::ct::cert::{spki_of_cert, LeafCert};
use ctdns::ct::checker::CtChecker;
use ctdns::ct::log_list::{LogList, LogState};
use ctdns::ct::policy::{CtPolicy, CtReport, NotCounted, PolicyFailure, SignatureStatus};
use ctdns::ct::sct::encode_sct_list;
use ctdns::ct::{sha256, SctSource};
use ctdns::pki::{build_ocsp_response, PkiOptions, TestPki};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, SubjectPublicKeyInfoDer};

const EMB: SctSource = SctSource::Embedded;
const DAY_MS: u64 = 86_400_000;

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ct-vectors")
}

fn read(rel: &str) -> Vec<u8> {
    let path = vectors().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A certificate: `.der` as is, `.pem` → its first CERTIFICATE block (text dumps around
/// the block are skipped).
fn cert(rel: &str) -> Vec<u8> {
    let bytes = read(rel);
    if rel.ends_with(".der") {
        return bytes;
    }
    CertificateDer::pem_slice_iter(&bytes)
        .next()
        .unwrap_or_else(|| panic!("{rel}: no certificate"))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .to_vec()
}

/// A log list copy from `tests/data/loglists`.
fn list(name: &str) -> Arc<LogList> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/ct-vectors/loglists")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Arc::new(LogList::from_json(&bytes).unwrap_or_else(|e| panic!("{name}: {e}")))
}

fn bundled() -> Arc<LogList> {
    Arc::new(LogList::bundled().unwrap())
}

const CHROME_V80: &str = "chrome_log_list_v80.4_2025-12-23.json";
const CHROME_V86: &str = "chrome_log_list_v86.4_2026-06-23.json";
const ALL_LOGS_V53: &str = "chrome_all_logs_list_v53.34_2025-05-05.json";
const APPLE: &str = "apple_current_log_list_2026-04-01.json";

/// Decide `leaf_rel` issued by `issuer_rel` with `logs` and `policy` at `now_ms`.
fn decide(
    leaf_rel: &str,
    issuer_rel: &str,
    logs: Arc<LogList>,
    policy: CtPolicy,
    ocsp: &[u8],
    now_ms: u64,
) -> CtReport {
    let leaf_der = cert(leaf_rel);
    let issuer_der = cert(issuer_rel);
    let leaf = LeafCert::parse(&leaf_der).unwrap_or_else(|e| panic!("{leaf_rel}: {e}"));
    let issuer_spki = spki_of_cert(&issuer_der).unwrap_or_else(|e| panic!("{issuer_rel}: {e}"));
    CtChecker::new(logs, policy)
        .check(&leaf, issuer_spki, ocsp, now_ms)
        .unwrap_or_else(|e| panic!("{leaf_rel}: {e}"))
}

/// One day after the leaf's notBefore: just after issuance, every SCT in the past.
fn issuance(leaf_rel: &str) -> u64 {
    let der = cert(leaf_rel);
    LeafCert::parse(&der).unwrap().not_before() * 1000 + DAY_MS
}

fn bench(site: &str) -> (String, String) {
    (
        format!("real/rustls-bench/cert-{site}.0.der"),
        format!("real/rustls-bench/cert-{site}.1.der"),
    )
}

fn all_valid(report: &CtReport) -> bool {
    report
        .scts
        .iter()
        .all(|v| v.signature == SignatureStatus::Valid)
}

fn too_few_logs(required: usize, counted: usize) -> PolicyFailure {
    PolicyFailure::TooFewLogs {
        source: EMB,
        required,
        counted,
    }
}

/// The rustls-bench leaves whose SCTs all come from 2026h2 logs (or a retired log for an
/// SCT that predates the retirement): compliant with ctdns's bundled list.
const BENCH_H2: [&str; 3] = ["arstechnica", "duckduckgo", "wapo"];

/// The rustls-bench leaves relying on 2026h1 shards, which the bundled list marks rejected
/// (2026-06-25 / 2026-07-09), with the number of SCTs still counted (from non-h1 logs).
const BENCH_H1: [(&str, usize); 9] = [
    ("github", 0),
    ("google", 0),
    ("hn", 0),
    ("reddit", 0),
    ("rustlang", 0),
    ("servo", 0),
    ("stackoverflow", 0),
    ("twitter", 1),
    ("wikipedia", 1),
];

#[test]
fn real_chains_from_2026h2_logs_comply_with_the_bundled_list() {
    for site in BENCH_H2 {
        let (leaf, issuer) = bench(site);
        let report = decide(
            &leaf,
            &issuer,
            bundled(),
            CtPolicy::chrome(),
            &[],
            issuance(&leaf),
        );
        assert_eq!(report.outcome, Ok(()), "{site}: {report}");
        assert!(all_valid(&report), "{site}: {report}");
        assert_eq!(report.scts.len(), 3, "{site}");
        assert!(report.scts.iter().all(|v| v.counted), "{site}: {report}");
    }
}

#[test]
fn real_chains_relying_on_2026h1_shards_are_refused_with_the_bundled_list() {
    let logs = bundled();
    for (site, counted) in BENCH_H1 {
        let (leaf, issuer) = bench(site);
        let report = decide(
            &leaf,
            &issuer,
            logs.clone(),
            CtPolicy::chrome(),
            &[],
            issuance(&leaf),
        );
        // All these leaves live at most 180 days: 2 logs required.
        assert_eq!(
            report.outcome,
            Err(too_few_logs(2, counted)),
            "{site}: {report}"
        );
        // Signatures are fine; the logs are what the curated list distrusts.
        assert!(all_valid(&report), "{site}: {report}");
        let rejected: Vec<_> = report
            .scts
            .iter()
            .filter(|v| matches!(v.reason, Some(NotCounted::LogRejected { .. })))
            .collect();
        assert_eq!(
            rejected.len(),
            report.scts.len() - counted,
            "{site}: {report}"
        );
        for v in rejected {
            let description = v.log_description.as_deref().unwrap_or_default();
            assert!(description.contains("2026h1"), "{site}: {description}");
            // The reason carries the list's rejection time.
            let id = ctdns::ct::LogId(B64.decode(&v.log_id).unwrap().try_into().unwrap());
            let Some(LogState::Rejected { since_ms }) = logs.get(&id).and_then(|l| l.state) else {
                panic!("{site}: {description} not rejected in the bundled list");
            };
            assert_eq!(
                v.reason,
                Some(NotCounted::LogRejected {
                    rejected_ms: since_ms
                })
            );
        }
    }
}

#[test]
fn every_real_2026_chain_complies_with_chrome_v80_at_issuance() {
    let logs = list(CHROME_V80);
    for site in BENCH_H2
        .iter()
        .copied()
        .chain(BENCH_H1.iter().map(|(s, _)| *s))
    {
        let (leaf, issuer) = bench(site);
        let report = decide(
            &leaf,
            &issuer,
            logs.clone(),
            CtPolicy::chrome(),
            &[],
            issuance(&leaf),
        );
        assert_eq!(report.outcome, Ok(()), "{site}: {report}");
        assert!(all_valid(&report), "{site}: {report}");
    }
}

#[test]
fn issuance_time_matters_scts_are_future_before_it() {
    // Decided a day before notBefore, every SCT of duckduckgo is from the future.
    let (leaf, issuer) = bench("duckduckgo");
    let before = issuance(&leaf) - 2 * DAY_MS;
    let report = decide(&leaf, &issuer, bundled(), CtPolicy::chrome(), &[], before);
    assert_eq!(report.outcome, Err(too_few_logs(3, 0)), "{report}");
    assert!(report
        .scts
        .iter()
        .all(|v| v.reason == Some(NotCounted::FutureTimestamp)));
}

#[test]
fn wapo_stays_compliant_after_oak_retires_because_its_sct_predates_the_retirement() {
    // Oak2026h2 (Let's Encrypt, wapo's only non-Google SCT) is retired in v86.4.
    let (leaf, issuer) = bench("wapo");
    let logs = list(CHROME_V86);
    let oak = logs
        .logs()
        .iter()
        .find(|l| l.description.contains("Oak2026h2"))
        .unwrap();
    let Some(LogState::Retired { since_ms }) = oak.state else {
        panic!("Oak2026h2 is retired in v86.4");
    };
    let report = decide(
        &leaf,
        &issuer,
        logs.clone(),
        CtPolicy::chrome(),
        &[],
        since_ms + DAY_MS,
    );
    assert_eq!(report.outcome, Ok(()), "{report}");
    assert!(report.scts.iter().all(|v| v.counted), "{report}");
}

#[test]
fn apple_policy_on_real_long_lived_chains() {
    let logs = list(APPLE);
    for site in ["duckduckgo", "arstechnica", "wapo"] {
        let (leaf, issuer) = bench(site);
        let report = decide(
            &leaf,
            &issuer,
            logs.clone(),
            CtPolicy::apple(),
            &[],
            issuance(&leaf),
        );
        assert_eq!(report.outcome, Ok(()), "{site}: {report}");
        assert!(all_valid(&report), "{site}");
    }
}

#[test]
fn github_with_the_2025_all_logs_list_has_a_pending_log() {
    // In all_logs v53.34 (2025-05), Elephant2026h1 was still pending.
    let (leaf, issuer) = bench("github");
    let report = decide(
        &leaf,
        &issuer,
        list(ALL_LOGS_V53),
        CtPolicy::chrome(),
        &[],
        issuance(&leaf),
    );
    assert_eq!(report.outcome, Err(too_few_logs(2, 1)), "{report}");
    let pending: Vec<_> = report
        .scts
        .iter()
        .filter(|v| v.reason == Some(NotCounted::LogPending))
        .map(|v| v.log_description.clone().unwrap_or_default())
        .collect();
    assert_eq!(pending.len(), 1, "{report}");
    assert!(pending[0].contains("Elephant2026h1"), "{pending:?}");
}

/// Old real certificates whose logs were rejected long ago: valid signatures, never
/// counted.
#[test]
fn netflix_2016_and_cloudflare_dns_2021_are_refused_for_rejected_logs() {
    let logs = list(ALL_LOGS_V53);
    let cases = [
        (
            "real/webpki-netflix/ee.der",
            "real/webpki-netflix/inter.der",
            ["Symantec", "Aviator", "Rocketeer"],
        ),
        (
            "real/psanford-fetchcert/cloudflare-dns.com-2021.pem",
            "real/psanford-fetchcert/DigiCert-TLS-Hybrid-ECC-SHA384-2020-CA1.pem",
            ["Argon2022", "Nessie2022", "Nimbus2022"],
        ),
    ];
    for (leaf, issuer, names) in cases {
        let report = decide(
            leaf,
            issuer,
            logs.clone(),
            CtPolicy::chrome(),
            &[],
            issuance(leaf),
        );
        // Both live longer than 180 days: 3 logs required, none counted.
        assert_eq!(report.outcome, Err(too_few_logs(3, 0)), "{leaf}: {report}");
        assert_eq!(report.scts.len(), 3, "{leaf}");
        assert!(all_valid(&report), "{leaf}: {report}");
        for v in &report.scts {
            assert!(
                matches!(v.reason, Some(NotCounted::LogRejected { .. })),
                "{leaf}: {v}"
            );
            let d = v.log_description.as_deref().unwrap_or_default();
            assert!(names.iter().any(|n| d.contains(n)), "{leaf}: {d}");
        }
        // The bundled list does not even know these logs.
        let report = decide(
            leaf,
            issuer,
            bundled(),
            CtPolicy::chrome(),
            &[],
            issuance(leaf),
        );
        assert!(report
            .scts
            .iter()
            .all(|v| v.reason == Some(NotCounted::UnknownLog)
                && v.signature == SignatureStatus::NotChecked));
    }
}

// ---------------------------------------------------------------------------------------
// google/certificate-transparency (C++) vectors: SHA-1 / RSA-1024 test certificates, not
// path-validated; decided with lists built around the test log keys.
// ---------------------------------------------------------------------------------------

fn public_key(rel: &str) -> Vec<u8> {
    SubjectPublicKeyInfoDer::from_pem_slice(&read(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .to_vec()
}

/// A v3 log list with one log per `(operator, key PEM)` entry, usable since 2012.
fn test_log_list(logs: &[(&str, &str)]) -> Arc<LogList> {
    let operators: Vec<serde_json::Value> = logs
        .iter()
        .enumerate()
        .map(|(i, (operator, key_rel))| {
            let key = public_key(key_rel);
            serde_json::json!({
                "name": operator,
                "email": [format!("ct{i}@example.test")],
                "logs": [{
                    "description": format!("test log {key_rel}"),
                    "log_id": B64.encode(sha256(&key)),
                    "key": B64.encode(&key),
                    "url": format!("https://ct{i}.example.test/"),
                    "mmd": 86400,
                    "state": {"usable": {"timestamp": "2012-01-01T00:00:00Z"}},
                }],
            })
        })
        .collect();
    let json = serde_json::json!({
        "version": "test",
        "log_list_timestamp": "2013-04-06T00:00:00Z",
        "operators": operators,
    });
    Arc::new(LogList::from_json(json.to_string().as_bytes()).unwrap())
}

const TEST_LOG: &str = "google-ct-cpp/ct-server-key-public.pem";
const RSA_TEST_LOG: &str = "google-ct-cpp/rsa/ct-server-key-public-rsa.pem";
/// 2013-04-06T00:00:00Z: after every SCT of the C++ vectors.
const CPP_NOW_MS: u64 = 1_365_206_400_000;

#[test]
fn google_ct_cpp_embedded_vectors_single_log_is_refused_but_signature_valid() {
    let logs = test_log_list(&[("CT test", TEST_LOG)]);
    let valid = [
        (
            "google-ct-cpp/test-embedded-cert.pem",
            "google-ct-cpp/ca-cert.pem",
        ),
        (
            "google-ct-cpp/test-embedded-with-preca-cert.pem",
            "google-ct-cpp/ca-cert.pem",
        ),
        (
            "google-ct-cpp/test-embedded-with-intermediate-cert.pem",
            "google-ct-cpp/intermediate-cert.pem",
        ),
        (
            "google-ct-cpp/test-embedded-with-intermediate-preca-cert.pem",
            "google-ct-cpp/intermediate-cert.pem",
        ),
    ];
    for (leaf, issuer) in valid {
        let report = decide(
            leaf,
            issuer,
            logs.clone(),
            CtPolicy::chrome(),
            &[],
            CPP_NOW_MS,
        );
        // Ten-year certificates: 3 logs required; the single test log counts once.
        assert_eq!(report.outcome, Err(too_few_logs(3, 1)), "{leaf}: {report}");
        assert_eq!(report.scts.len(), 1);
        assert_eq!(report.scts[0].signature, SignatureStatus::Valid, "{leaf}");
        assert!(report.scts[0].counted, "{leaf}");
    }
    // The issuer key hash must be the final issuer's: with the precert signer's SPKI the
    // same SCT does not verify.
    let report = decide(
        "google-ct-cpp/test-embedded-with-preca-cert.pem",
        "google-ct-cpp/ca-pre-cert.pem",
        logs.clone(),
        CtPolicy::chrome(),
        &[],
        CPP_NOW_MS,
    );
    assert!(matches!(
        report.scts[0].signature,
        SignatureStatus::Invalid { .. }
    ));

    let invalid = [
        (
            "google-ct-cpp/test-invalid-embedded-cert.pem",
            "google-ct-cpp/ca-cert.pem",
        ),
        (
            "chromium/ct-test-embedded-with-uids.pem",
            "google-ct-cpp/ca-cert.pem",
        ),
    ];
    for (leaf, issuer) in invalid {
        let report = decide(
            leaf,
            issuer,
            logs.clone(),
            CtPolicy::chrome(),
            &[],
            CPP_NOW_MS,
        );
        assert_eq!(report.outcome, Err(too_few_logs(3, 0)), "{leaf}: {report}");
        assert!(
            matches!(report.scts[0].signature, SignatureStatus::Invalid { .. }),
            "{leaf}: {report}"
        );
        assert_eq!(report.scts[0].reason, Some(NotCounted::InvalidSignature));
    }
}

/// The two detached x509_entry SCTs for `test-cert.pem` (EC test log and RSA test log),
/// delivered in a stapled OCSP response: two logs of two operators comply, one operator
/// does not. (The OCSP response is signed by a throwaway CA: ctdns does not judge the OCSP
/// signature; each SCT authenticates itself over the whole leaf.)
#[test]
fn google_ct_cpp_x509_entry_scts_via_ocsp_with_an_rsa_log() {
    let leaf = cert("google-ct-cpp/test-cert.pem");
    let list = encode_sct_list([
        read("google-ct-cpp/test-cert.proof").as_slice(),
        read("google-ct-cpp/rsa/test-cert-rsa.proof").as_slice(),
    ]);
    let signer = TestPki::generate(&PkiOptions::default()).unwrap();
    let t = time::OffsetDateTime::from_unix_timestamp(1_365_206_400).unwrap();
    let ocsp = build_ocsp_response(
        signer.root(),
        &leaf,
        Some(&list),
        t,
        t + time::Duration::days(7),
    )
    .unwrap();

    let two_operators = test_log_list(&[("CT test", TEST_LOG), ("CT test RSA", RSA_TEST_LOG)]);
    let report = decide(
        "google-ct-cpp/test-cert.pem",
        "google-ct-cpp/ca-cert.pem",
        two_operators,
        CtPolicy::chrome(),
        &ocsp,
        CPP_NOW_MS,
    );
    assert_eq!(report.outcome, Ok(()), "{report}");
    assert_eq!(report.scts.len(), 2);
    assert!(all_valid(&report), "{report}");
    assert!(report
        .scts
        .iter()
        .all(|v| v.source == SctSource::Ocsp && v.counted));

    let one_operator = test_log_list(&[("CT test", TEST_LOG), ("CT test", RSA_TEST_LOG)]);
    let report = decide(
        "google-ct-cpp/test-cert.pem",
        "google-ct-cpp/ca-cert.pem",
        one_operator,
        CtPolicy::chrome(),
        &ocsp,
        CPP_NOW_MS,
    );
    assert_eq!(
        report.outcome,
        Err(PolicyFailure::TooFewOperators {
            source: SctSource::Ocsp,
            required: 2,
            counted: 1
        }),
        "{report}"
    );

    // Without the staple, test-cert.pem has no SCT at all.
    let report = decide(
        "google-ct-cpp/test-cert.pem",
        "google-ct-cpp/ca-cert.pem",
        test_log_list(&[("CT test", TEST_LOG)]),
        CtPolicy::chrome(),
        &[],
        CPP_NOW_MS,
    );
    assert_eq!(report.outcome, Err(PolicyFailure::NoScts));
}

/// The same real chains through the whole verifier: path validation to webpki-roots at
/// issuance time, the DNS name, then CT with the bundled list.
#[test]
fn real_chains_through_the_verifier_with_webpki_roots() {
    use ctdns::tls::CtVerifier;
    use rustls::pki_types::{ServerName, UnixTime};

    let roots = Arc::new(ctdns::tls::roots::webpki_roots());
    let verifier = CtVerifier::new(roots, CtChecker::new(bundled(), CtPolicy::chrome()));
    let cases = [
        ("duckduckgo", "duckduckgo.com", None),
        ("arstechnica", "arstechnica.com", None),
        ("wapo", "www.washingtonpost.com", None),
        ("github", "github.com", Some("ct-policy")),
        ("duckduckgo", "github.com", Some("dns-name")),
    ];
    for (site, name, rule) in cases {
        let (leaf_rel, issuer_rel) = bench(site);
        let leaf = CertificateDer::from(cert(&leaf_rel));
        let inter = [CertificateDer::from(cert(&issuer_rel))];
        let now = UnixTime::since_unix_epoch(std::time::Duration::from_millis(issuance(&leaf_rel)));
        let name = ServerName::try_from(name).unwrap();
        let decision = verifier.verify(&leaf, &inter, None, Some(&name), &[], now);
        assert_eq!(
            decision.refusal.as_ref().map(|r| r.rule()),
            rule,
            "{site}: {:?}",
            decision.refusal
        );
        // The chain verified in every case: the issuer and the anchor are pinned.
        assert_eq!(decision.path_pins.len(), 2, "{site}");
        assert_eq!(
            decision.path_pins[0],
            ctdns::tls::pins::SpkiPin::of_spki(spki_of_cert(&cert(&issuer_rel)).unwrap())
        );
        // Past the leaf's notAfter the chain rule refuses first.
        let later = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            LeafCert::parse(&leaf).unwrap().not_after() + 86_400,
        ));
        let decision = verifier.verify(&leaf, &inter, None, Some(&name), &[], later);
        assert_eq!(decision.refusal.as_ref().map(|r| r.rule()), Some("chain"));
    }
}
