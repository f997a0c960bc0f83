//! `check_staple` (revocation from a stapled OCSP response) on arbitrary bytes: the input
//! is split (see `ctdns_fuzz::split`) into `leaf, issuer, response`. The issuer is taken as
//! a trust anchor from its certificate, or the committed test PKI's root when the bytes
//! are not one; the leaf must parse as an end-entity certificate. Never panics; a result
//! is either verified or ignored with a reason, and its text and JSON forms build.
#![no_main]

use std::time::Duration;

use ctdns::tls::revocation::{check_staple, StapleCheck};
use ctdns_fuzz::{split, PKI_NOW_SECS, PKI_ROOT_DER};
use libfuzzer_sys::fuzz_target;
use rustls_pki_types::{CertificateDer, UnixTime};

fuzz_target!(|data: &[u8]| {
    let parts = split(data, 3);
    let [leaf, issuer, response] = parts.as_slice() else {
        return;
    };
    let leaf_der = CertificateDer::from(*leaf);
    let Ok(ee) = webpki::EndEntityCert::try_from(&leaf_der) else {
        return;
    };
    let issuer_der = CertificateDer::from(*issuer);
    let root_der = CertificateDer::from(PKI_ROOT_DER);
    let anchor = match webpki::anchor_from_trusted_cert(&issuer_der) {
        Ok(a) => a,
        Err(_) => webpki::anchor_from_trusted_cert(&root_der).expect("committed root"),
    };
    let algs = ctdns::ct::signature::default_algorithms();
    let now = UnixTime::since_unix_epoch(Duration::from_secs(PKI_NOW_SECS));
    let check = check_staple(response, &ee, &anchor, algs, now);
    match &check {
        StapleCheck::Verified(_) => assert!(check.ignored().is_none()),
        StapleCheck::Ignored(_) => assert!(check.revocation().is_none()),
    }
    let _ = check.to_string();
    let _ = serde_json::to_string(&check);
});
