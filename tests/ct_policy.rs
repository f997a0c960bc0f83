//! Log lists and the CT policy through the public API: every public list flavour from disk,
//! ctdns's bundled list, and a policy run over real SCT signatures on a real certificate.

use std::path::PathBuf;

use base64::Engine;
use ctdns::ct::log_list::{LogList, LogListError, Staleness, StalenessPolicy};
use ctdns::ct::policy::{CtPolicy, NotCounted, PolicyFailure, SctInput, SignatureStatus};
use ctdns::ct::sct::{encode_sct_list, parse_sct_list, HASH_SHA256, SIG_ECDSA};
use ctdns::ct::signed_data::{signed_data, SignedEntry};
use ctdns::ct::{LogId, Sct, SctSource};
use rcgen::{PublicKeyData, SigningKey};
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
use x509_parser::prelude::FromDer;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ct-vectors")
}

fn lists_dir() -> PathBuf {
    vectors_dir().join("loglists")
}

#[test]
fn every_public_list_loads_from_disk() {
    let mut loaded = 0;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(lists_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.push(vectors_dir().join("google-ct-go/loglist3-test-fixture.json"));
    for path in paths {
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match LogList::from_json(&bytes) {
            Ok(list) => {
                assert!(list.logs().len() > 50, "{name}");
                for log in list.logs() {
                    assert_eq!(log.id, LogId::from_spki(&log.key), "{name}");
                    assert_eq!(
                        list.get(&log.id).map(|l| &l.description),
                        Some(&log.description)
                    );
                    assert!(!log.is_mimic(), "{name}: {}", log.description);
                }
                loaded += 1;
            }
            Err(e) => {
                // Only the certificate-transparency-go fixture, whose "Racketeer" key is not a
                // DER SubjectPublicKeyInfo.
                assert_eq!(name, "loglist3-test-fixture.json", "{name}: {e}");
                assert!(
                    matches!(e, LogListError::BadKey { ref log, .. } if log.contains("Racketeer"))
                );
            }
        }
    }
    assert_eq!(loaded, 6);
}

#[test]
fn bundled_list_ages_from_its_data_date_not_its_curation_date() {
    let list = LogList::bundled().unwrap();
    assert_eq!(list.version(), Some("ctdns-2026.11.2"));
    let curated = list.timestamp_ms().unwrap();
    let data = list.data_timestamp_ms().unwrap();
    assert!(data < curated, "the data predates the curation");
    assert_eq!(list.freshness_timestamp_ms(), Some(data));
    let policy = StalenessPolicy::default();
    assert_eq!(policy.check(&list, data + 3_600_000), Ok(Staleness::Fresh));
    // 70 days after the data date the list is stale...
    assert!(matches!(
        policy.check(&list, data + 71 * 86_400_000),
        Ok(Staleness::Stale { .. })
    ));
    // ...which for this list was before the day it was curated: counted from the curation
    // date it would look fresh.
    assert!(matches!(
        policy.check(&list, curated + 3_600_000),
        Ok(Staleness::Stale { .. })
    ));
}

/// Three logs with real P-256 keys; "Alpha" and "Beta" share an operator.
struct Logs {
    list: LogList,
    keys: Vec<rcgen::KeyPair>,
}

fn logs() -> Logs {
    let b64 = base64::engine::general_purpose::STANDARD;
    let keys: Vec<rcgen::KeyPair> = (0..3)
        .map(|_| rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap())
        .collect();
    let entry = |i: usize, name: &str| {
        let spki = keys[i].subject_public_key_info();
        serde_json::json!({
            "description": name,
            "log_id": LogId::from_spki(&spki).to_base64(),
            "key": b64.encode(&spki),
            "url": format!("https://{name}.example/"),
            "mmd": 86400,
            "state": {"usable": {"timestamp": "2025-01-01T00:00:00Z"}}
        })
    };
    let json = serde_json::json!({
        "version": "it",
        "log_list_timestamp": "2026-11-01T00:00:00Z",
        "operators": [
            {"name": "Op One", "email": [], "logs": [entry(0, "Alpha"), entry(1, "Beta")]},
            {"name": "Op Two", "email": [], "logs": [entry(2, "Gamma")]}
        ]
    });
    let list = LogList::from_json(&serde_json::to_vec(&json).unwrap()).unwrap();
    Logs { list, keys }
}

/// What the glue code does: verify each SCT with the key the list holds.
fn verify(list: &LogList, sct: Sct, leaf: &[u8], source: SctSource) -> SctInput {
    let signature = match list.get(&sct.log_id) {
        None => SignatureStatus::NotChecked,
        Some(log) => {
            let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&log.key).unwrap();
            let data =
                signed_data(sct.timestamp, SignedEntry::X509 { leaf }, &sct.extensions).unwrap();
            match UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &spki.subject_public_key.data)
                .verify(&data, &sct.signature)
            {
                Ok(()) => SignatureStatus::Valid,
                Err(_) => SignatureStatus::Invalid {
                    reason: "ECDSA P-256 verification failed".into(),
                },
            }
        }
    };
    SctInput {
        sct,
        source,
        signature,
    }
}

#[test]
fn ocsp_scts_over_a_real_certificate() {
    let logs = logs();
    // A real certificate, valid 90 days.
    let leaf_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["dns.example".to_string()]).unwrap();
    params.not_before = time::macros::datetime!(2026-11-01 00:00 UTC);
    params.not_after = time::macros::datetime!(2027-01-30 00:00 UTC);
    let leaf = params.self_signed(&leaf_key).unwrap();
    let leaf_der = leaf.der().as_ref().to_vec();
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf_der).unwrap();
    let not_before = cert.validity().not_before.timestamp() as u64;
    let not_after = cert.validity().not_after.timestamp() as u64;
    let now_ms = 1_795_651_200_000; // 2026-11-26
    let issued_ms = 1_762_000_000_000 + 999; // before now

    // Each log signs the x509_entry of the leaf, as for SCTs stapled in OCSP; the SCTs
    // travel as a TLS-encoded SCT list.
    let encoded: Vec<Vec<u8>> = logs
        .keys
        .iter()
        .map(|kp| {
            let data = signed_data(issued_ms, SignedEntry::X509 { leaf: &leaf_der }, &[]).unwrap();
            Sct {
                log_id: LogId::from_spki(&kp.subject_public_key_info()),
                timestamp: issued_ms,
                extensions: Vec::new(),
                hash_alg: HASH_SHA256,
                sig_alg: SIG_ECDSA,
                signature: kp.sign(&data).unwrap(),
            }
            .encode()
        })
        .collect();
    let wire = encode_sct_list(encoded.iter().map(Vec::as_slice));
    let scts = parse_sct_list(&wire).unwrap().scts;
    let inputs: Vec<SctInput> = scts
        .into_iter()
        .map(|s| verify(&logs.list, s, &leaf_der, SctSource::Ocsp))
        .collect();
    assert!(inputs.iter().all(|i| i.signature == SignatureStatus::Valid));

    let report = CtPolicy::chrome().evaluate(&logs.list, &inputs, not_before, not_after, now_ms);
    assert!(report.is_compliant(), "{report}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["refusal"], serde_json::Value::Null);
    assert_eq!(json["scts"][2]["operator"], "Op Two");

    // Alpha and Beta alone share one operator: refused, naming the rule.
    let report =
        CtPolicy::chrome().evaluate(&logs.list, &inputs[..2], not_before, not_after, now_ms);
    assert_eq!(
        report.failure(),
        Some(&PolicyFailure::TooFewOperators {
            source: SctSource::Ocsp,
            required: 2,
            counted: 1
        })
    );
    assert_eq!(
        serde_json::to_value(&report).unwrap()["refusal"],
        "too_few_operators"
    );

    // The same SCTs verified against another leaf do not verify, so they never count.
    let other = rcgen::CertificateParams::new(vec!["other.example".to_string()])
        .unwrap()
        .self_signed(&leaf_key)
        .unwrap();
    let forged: Vec<SctInput> = inputs
        .iter()
        .map(|i| verify(&logs.list, i.sct.clone(), other.der(), SctSource::Ocsp))
        .collect();
    let report = CtPolicy::apple().evaluate(&logs.list, &forged, not_before, not_after, now_ms);
    assert!(report
        .scts
        .iter()
        .all(|v| v.reason == Some(NotCounted::InvalidSignature)));
    assert!(!report.is_compliant());
}
