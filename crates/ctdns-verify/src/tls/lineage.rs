//! CA lineages of an issuer-pin set, as far as the trust store can tell.
//!
//! A pin set that covers a single CA is an outage waiting for the operator's next CA change
//! (HPKP's rule: always hold a backup pin outside the serving chain). The trust store names
//! the organisation behind each root (`O=` of the anchor's subject), so a pin that is a
//! trust anchor's SPKI pin can be attributed to a lineage; a pin of an intermediate cannot,
//! and a set holding one is reported as [`Coverage::Unknown`] rather than guessed at.

use rustls::pki_types::TrustAnchor;
use x509_parser::prelude::{FromDer, X509Name};

use crate::tls::pins::SpkiPin;

/// Which CA organisations a pin set admits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// Every pin is a known root of this one organisation.
    Single(String),
    /// Pins of these organisations (two or more), sorted.
    Several(Vec<String>),
    /// At least one pin is not a trust anchor's, so the lineages cannot all be named.
    Unknown,
    /// No pins: every CA in the trust store is admitted.
    Unpinned,
}

fn subject_name<'a>(anchor: &'a TrustAnchor<'_>, der: &'a mut Vec<u8>) -> Option<X509Name<'a>> {
    // The anchor holds the *contents* of the subject Name SEQUENCE; wrap them again.
    let body = anchor.subject.as_ref();
    der.clear();
    der.push(0x30);
    let len = body.len();
    if len < 0x80 {
        der.push(u8::try_from(len).ok()?);
    } else if len <= 0xff {
        der.extend_from_slice(&[0x81, u8::try_from(len).ok()?]);
    } else {
        let len = u16::try_from(len).ok()?;
        der.push(0x82);
        der.extend_from_slice(&len.to_be_bytes());
    }
    der.extend_from_slice(body);
    X509Name::from_der(der).ok().map(|(_, name)| name)
}

/// The organisation (`O=`) of a trust anchor's subject.
pub fn organisation(anchor: &TrustAnchor<'_>) -> Option<String> {
    let mut der = Vec::new();
    let name = subject_name(anchor, &mut der)?;
    let org = name.iter_organization().next()?.as_str().ok()?.to_string();
    Some(org)
}

/// The common name (`CN=`) of a trust anchor's subject.
pub fn common_name(anchor: &TrustAnchor<'_>) -> Option<String> {
    let mut der = Vec::new();
    let name = subject_name(anchor, &mut der)?;
    let cn = name.iter_common_name().next()?.as_str().ok()?.to_string();
    Some(cn)
}

/// The trust anchor whose SPKI has `pin`, if any.
pub fn anchor_with_pin<'a>(
    pin: &SpkiPin,
    anchors: &'a [TrustAnchor<'static>],
) -> Option<&'a TrustAnchor<'static>> {
    anchors
        .iter()
        .find(|a| SpkiPin::of_spki(webpki::spki_for_anchor(a).as_ref()) == *pin)
}

/// The lineages `pins` cover among `anchors`.
pub fn coverage(pins: &[SpkiPin], anchors: &[TrustAnchor<'static>]) -> Coverage {
    if pins.is_empty() {
        return Coverage::Unpinned;
    }
    let mut orgs = Vec::new();
    for pin in pins {
        match anchor_with_pin(pin, anchors).and_then(organisation) {
            Some(org) => orgs.push(org),
            None => return Coverage::Unknown,
        }
    }
    orgs.sort();
    orgs.dedup();
    match orgs.len() {
        1 => Coverage::Single(orgs.remove(0)),
        _ => Coverage::Several(orgs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pins(strs: &[&str]) -> Vec<SpkiPin> {
        strs.iter().map(|s| SpkiPin::parse(s).unwrap()).collect()
    }

    #[test]
    fn a_single_ca_is_recognised() {
        let anchors = crate::tls::roots::webpki_roots();
        let digicert = pins(&[
            "i7WTqTvh0OioIruIfFR4kMPnBqrS2rdiVPl/s2uC/CY=",
            "uUwZgwDOxcBXrQcntwu+kYFpkiVkOaezL0WYEZ3anJc=",
        ]);
        assert_eq!(
            coverage(&digicert, &anchors),
            Coverage::Single("DigiCert Inc".into())
        );
        // A pin that is no root (here: SSL.com's ECC R2 intermediate) cannot be attributed.
        let with_intermediate = pins(&[
            "i7WTqTvh0OioIruIfFR4kMPnBqrS2rdiVPl/s2uC/CY=",
            "zGgA4OU4DjJdvpRYUqbi5Vh2g9W5Oc/PgKihy9mkLsE=",
        ]);
        assert_eq!(coverage(&with_intermediate, &anchors), Coverage::Unknown);
        assert_eq!(coverage(&[], &anchors), Coverage::Unpinned);
    }
}
