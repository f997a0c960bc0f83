//! The whole CT decision on arbitrary inputs. The input is split (see `ctdns_fuzz::split`)
//! into `flags, leaf, intermediate, ocsp`:
//! - `CtChecker::check` with the bundled log list and the Chrome or Apple policy, the
//!   issuer SPKI taken from the intermediate (or the raw bytes when they are not a
//!   certificate);
//! - `CtVerifier::verify` with the committed test PKI's root and log list, at the fixed
//!   time the PKI was generated (so chains from `examples/gen_seeds.rs` verify and the
//!   fuzzer reaches the CT step with mutated OCSP responses).
//!
//! Never panics; an accepted decision always carries a compliant CT report, a CT refusal
//! carries the non-compliant report it was made from, and a `revoked` refusal a verified
//! staple that says so.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ctdns::ct::cert::{spki_of_cert, LeafCert};
use ctdns::ct::checker::CtChecker;
use ctdns::ct::log_list::LogList;
use ctdns::ct::policy::CtPolicy;
use ctdns::tls::pins::SpkiPin;
use ctdns::tls::roots::anchors_from_der;
use ctdns::tls::verifier::{CtVerifier, Refusal};
use ctdns_fuzz::{split, LEAF_IP, PKI_LOG_LIST_JSON, PKI_NOW_SECS, PKI_ROOT_DER};
use libfuzzer_sys::fuzz_target;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

struct Fixture {
    bundled_chrome: CtChecker,
    bundled_apple: CtChecker,
    verifier: CtVerifier,
    pinned_verifier: CtVerifier,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let bundled = Arc::new(LogList::bundled().expect("bundled log list"));
        let test_logs = Arc::new(LogList::from_json(PKI_LOG_LIST_JSON).expect("test log list"));
        let root = CertificateDer::from(PKI_ROOT_DER);
        let roots = Arc::new(anchors_from_der(&[root], "fuzz/pki/root.der").expect("root"));
        let checker = CtChecker::new(test_logs, CtPolicy::chrome());
        let verifier = CtVerifier::new(Arc::clone(&roots), checker.clone());
        let root_pin = SpkiPin::of_spki(spki_of_cert(PKI_ROOT_DER).expect("root SPKI"));
        let pinned_verifier = CtVerifier::new(roots, checker).with_pins(vec![root_pin]);
        Fixture {
            bundled_chrome: CtChecker::new(Arc::clone(&bundled), CtPolicy::chrome()),
            bundled_apple: CtChecker::new(bundled, CtPolicy::apple()),
            verifier,
            pinned_verifier,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let parts = split(data, 4);
    let [flags, leaf, intermediate, ocsp] = parts.as_slice() else {
        return;
    };
    let flags = flags.first().copied().unwrap_or(0);
    let fx = fixture();
    let now_ms = PKI_NOW_SECS * 1000;

    if let Ok(parsed) = LeafCert::parse(leaf) {
        let issuer_spki = spki_of_cert(intermediate).unwrap_or(intermediate);
        let checker = if flags & 1 == 0 {
            &fx.bundled_chrome
        } else {
            &fx.bundled_apple
        };
        if let Ok(report) = checker.check(&parsed, issuer_spki, ocsp, now_ms) {
            // The bundled list holds no test-PKI log: nothing it reports may be compliant
            // on the strength of signatures it could not check.
            let _ = report.is_compliant();
        }
    }

    let verifier = if flags & 2 == 0 {
        &fx.verifier
    } else {
        &fx.pinned_verifier
    };
    let ip = (flags & 4 == 0).then_some(LEAF_IP);
    let name = ServerName::try_from("dns.example").expect("static name");
    let dns_name = (flags & 8 != 0).then_some(&name);
    let ee = CertificateDer::from(*leaf);
    let chain: Vec<CertificateDer<'_>> = if intermediate.is_empty() {
        Vec::new()
    } else {
        vec![CertificateDer::from(*intermediate)]
    };
    let now = UnixTime::since_unix_epoch(Duration::from_secs(PKI_NOW_SECS));
    let decision = verifier.verify(&ee, &chain, ip, dns_name, ocsp, now);
    match &decision.refusal {
        None => {
            let report = decision.ct.as_ref().expect("accepted without a CT report");
            assert!(report.is_compliant(), "accepted a non-compliant CT report");
            assert!(!decision.path_pins.is_empty());
        }
        Some(Refusal::CtPolicy(report)) => {
            assert!(!report.is_compliant(), "CT refusal with a compliant report");
            assert_eq!(decision.ct.as_ref(), Some(report.as_ref()));
        }
        Some(Refusal::Revoked { serial, .. }) => {
            // Only a verified staple revokes, and it names this leaf.
            let staple = decision.staple.as_ref().expect("revoked without a staple");
            let revocation = staple.revocation().expect("revoked by an unverified staple");
            assert_eq!(&revocation.serial, serial);
        }
        Some(refusal) => {
            let _ = (refusal.rule(), refusal.to_string());
        }
    }
    if let Some(staple) = &decision.staple {
        let _ = staple.to_string();
    }
});
