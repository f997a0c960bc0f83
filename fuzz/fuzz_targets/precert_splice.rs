//! `LeafCert::parse` + `precert_tbs` / `tbs_without_poison` + `sct_list` on arbitrary bytes.
//! Never panics; a spliced TBS is itself one DER SEQUENCE, and put back into the
//! certificate in place of the original TBS it parses again, without the removed extension
//! and with every other TBS field unchanged.
#![no_main]

use ctdns::ct::cert::LeafCert;
use ctdns::ct::der::{self, tag, Reader};
use ctdns::ct::sct::parse_sct_list;
use libfuzzer_sys::fuzz_target;

/// The certificate `original` with its TBS replaced by `tbs`.
fn with_tbs(original: &[u8], tbs: &[u8]) -> Vec<u8> {
    let cert = der::parse_single(original, tag::SEQUENCE).expect("parsed before");
    let mut r = Reader::new(cert.value);
    r.read(tag::SEQUENCE).expect("parsed before");
    let alg = r.read(tag::SEQUENCE).expect("parsed before");
    let sig = r.read(tag::BIT_STRING).expect("parsed before");
    let mut body = tbs.to_vec();
    body.extend_from_slice(alg.element);
    body.extend_from_slice(sig.element);
    der::element(tag::SEQUENCE, &body)
}

fn check_splice(leaf: &LeafCert<'_>, spliced: &[u8], removed_sct: bool) {
    let tlv = der::parse_single(spliced, tag::SEQUENCE)
        .unwrap_or_else(|e| panic!("spliced TBS is not one DER SEQUENCE: {e}"));
    assert_eq!(tlv.element.len(), spliced.len());
    assert!(spliced.len() <= leaf.tbs().len(), "splice grew the TBS");
    let rebuilt = with_tbs(leaf.der(), spliced);
    let again = LeafCert::parse(&rebuilt)
        .unwrap_or_else(|e| panic!("certificate with spliced TBS does not parse: {e}"));
    assert_eq!(again.tbs(), spliced);
    assert_eq!(again.serial(), leaf.serial());
    assert_eq!(again.issuer_raw(), leaf.issuer_raw());
    assert_eq!(again.subject_raw(), leaf.subject_raw());
    assert_eq!(again.spki(), leaf.spki());
    assert_eq!(again.not_before(), leaf.not_before());
    assert_eq!(again.not_after(), leaf.not_after());
    if removed_sct {
        assert_eq!(again.sct_list().ok(), Some(None), "SCT extension survived");
        // Nothing left to remove: a second splice is refused, not repeated.
        assert!(again.precert_tbs().is_err());
    } else {
        assert!(again.tbs_without_poison().is_err(), "poison survived");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(leaf) = LeafCert::parse(data) else {
        return;
    };
    if let Ok(Some(list)) = leaf.sct_list() {
        let _ = parse_sct_list(list);
    }
    if let Ok(tbs) = leaf.precert_tbs() {
        check_splice(&leaf, &tbs, true);
    }
    if let Ok(tbs) = leaf.tbs_without_poison() {
        check_splice(&leaf, &tbs, false);
    }
});
