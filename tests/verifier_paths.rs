//! Pins and the SPKI denylist across alternative paths (cross-signed intermediates), with
//! real keys from the test PKI: a leaf of the honest intermediate, whose twin (same subject,
//! same key) is cross-signed by the rogue root, and both roots trusted.
//!
//! - Pins hold for *any* valid path: when the path webpki finds first is not pinned, a
//!   pinned alternative is found, and an unpinned path alone is refused.
//! - A denylisted key is refused wherever it sits: as an intermediate, as a cross-signed twin
//!   (a certificate fingerprint denylist misses it), as a root (never sent by servers), and
//!   as the leaf's own key; a path avoiding the key is still accepted.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use ctdns::ct::checker::CtChecker;
use ctdns::ct::log_list::LogList;
use ctdns::ct::policy::CtPolicy;
use ctdns::pki::{default_logs, IssuedLeaf, PkiOptions, SctSpec, TestPki};
use ctdns::tls::pins::{CertFingerprint, SpkiPin};
use ctdns::tls::{CtVerifier, Refusal};
use rustls::pki_types::{CertificateDer, UnixTime};

const IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct Setup {
    pki: TestPki,
    leaf: IssuedLeaf,
    /// The honest intermediate's twin, issued by the rogue root.
    twin: CertificateDer<'static>,
}

fn setup() -> Setup {
    let pki = TestPki::generate(&PkiOptions::default()).unwrap();
    let ts = pki.now() - time::Duration::minutes(5);
    let leaf = pki
        .issue_leaf(
            &pki.leaf_spec(IP)
                .embed(SctSpec::at(default_logs::ALPHA, ts))
                .embed(SctSpec::at(default_logs::BETA, ts)),
        )
        .unwrap();
    let twin = pki
        .intermediate()
        .cross_signed_by(pki.rogue_root())
        .unwrap();
    Setup { pki, leaf, twin }
}

impl Setup {
    fn verifier(&self) -> CtVerifier {
        let roots = ctdns::tls::roots::anchors_from_der(
            &[
                self.pki.root().der().clone(),
                self.pki.rogue_root().der().clone(),
            ],
            "test",
        )
        .unwrap();
        let list =
            LogList::from_json(self.pki.log_list_json(self.pki.now()).unwrap().as_bytes()).unwrap();
        CtVerifier::new(
            Arc::new(roots),
            CtChecker::new(Arc::new(list), CtPolicy::chrome()),
        )
    }

    fn now(&self) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(
            u64::try_from(self.pki.now().unix_timestamp()).unwrap() + 60,
        ))
    }

    fn intermediate(&self) -> CertificateDer<'static> {
        self.pki.intermediate().der().clone()
    }

    /// The decision for the leaf presented with `intermediates`, in that order.
    fn decide(
        &self,
        v: &CtVerifier,
        intermediates: &[CertificateDer<'static>],
    ) -> ctdns::tls::Decision {
        v.verify(
            self.leaf.leaf(),
            intermediates,
            Some(IP),
            None,
            &[],
            self.now(),
        )
    }

    fn pin(&self, spki_b64: &str) -> SpkiPin {
        SpkiPin::parse(spki_b64).unwrap()
    }

    fn honest_root(&self) -> SpkiPin {
        self.pin(&self.pki.root().spki_sha256_base64())
    }

    fn rogue_root(&self) -> SpkiPin {
        self.pin(&self.pki.rogue_root().spki_sha256_base64())
    }

    fn intermediate_key(&self) -> SpkiPin {
        self.pin(&self.pki.intermediate().spki_sha256_base64())
    }
}

fn rule(d: &ctdns::tls::Decision) -> Option<&'static str> {
    d.refusal.as_ref().map(Refusal::rule)
}

#[test]
fn the_twin_really_leads_to_the_rogue_root() {
    let s = setup();
    // With the twin first, the path webpki finds first ends at the rogue root.
    let d = s.decide(&s.verifier(), &[s.twin.clone(), s.intermediate()]);
    assert_eq!(rule(&d), None);
    assert_eq!(d.path_pins.last(), Some(&s.rogue_root()));
    // With the honest intermediate first, at the honest root.
    let d = s.decide(&s.verifier(), &[s.intermediate(), s.twin.clone()]);
    assert_eq!(d.path_pins.last(), Some(&s.honest_root()));
}

#[test]
fn a_pinned_alternative_path_is_found() {
    let s = setup();
    let v = s.verifier().with_pins(vec![s.honest_root()]);
    // The first path found (via the twin) is not pinned; the pinned one is taken instead.
    let d = s.decide(&v, &[s.twin.clone(), s.intermediate()]);
    assert_eq!(rule(&d), None, "{:?}", d.refusal);
    assert_eq!(d.path_pins.last(), Some(&s.honest_root()));
    // Pinned to the rogue root, with the honest intermediate listed first: found too.
    let v = s.verifier().with_pins(vec![s.rogue_root()]);
    let d = s.decide(&v, &[s.intermediate(), s.twin.clone()]);
    assert_eq!(rule(&d), None, "{:?}", d.refusal);
    assert_eq!(d.path_pins.last(), Some(&s.rogue_root()));
}

#[test]
fn no_unpinned_path_is_accepted() {
    let s = setup();
    // Only the twin is presented: the only valid path ends at the rogue root.
    let v = s.verifier().with_pins(vec![s.honest_root()]);
    let d = s.decide(&v, std::slice::from_ref(&s.twin));
    assert_eq!(rule(&d), Some("issuer-pin"));
    // A pin that matches nothing on any path.
    let v = s.verifier().with_pins(vec![SpkiPin([9; 32])]);
    let d = s.decide(&v, &[s.twin.clone(), s.intermediate()]);
    assert_eq!(rule(&d), Some("issuer-pin"));
}

#[test]
fn a_denylisted_intermediate_key_is_refused_even_cross_signed() {
    let s = setup();
    // The fingerprint denylist names the honest intermediate certificate; its twin (same
    // key, another certificate) slips past it. That is why keys can be denylisted.
    let fp = CertFingerprint::of_cert(s.intermediate().as_ref());
    let by_cert = s.verifier().with_denylist(Arc::new(HashSet::from([fp])));
    assert_eq!(
        rule(&s.decide(&by_cert, &[s.intermediate()])),
        Some("denylist")
    );
    assert_eq!(
        rule(&s.decide(&by_cert, std::slice::from_ref(&s.twin))),
        None
    );

    let by_key = s
        .verifier()
        .with_spki_denylist(Arc::new(HashSet::from([s.intermediate_key()])));
    for chain in [
        vec![s.intermediate()],
        vec![s.twin.clone()],
        vec![s.twin.clone(), s.intermediate()],
    ] {
        let d = s.decide(&by_key, &chain);
        assert_eq!(rule(&d), Some("denylist"), "{:?}", d.refusal);
        assert!(
            matches!(d.refusal, Some(Refusal::SpkiDenylisted { pin }) if pin == s.intermediate_key())
        );
    }
}

#[test]
fn a_denylisted_root_is_refused_though_never_sent_and_avoided_when_possible() {
    let s = setup();
    // Servers do not send roots: a fingerprint denylist of the root never matches.
    let root_fp = CertFingerprint::of_cert(s.pki.root().der().as_ref());
    let by_cert = s
        .verifier()
        .with_denylist(Arc::new(HashSet::from([root_fp])));
    assert_eq!(rule(&s.decide(&by_cert, &[s.intermediate()])), None);
    // The root's key on the SPKI denylist: refused...
    let by_key = s
        .verifier()
        .with_spki_denylist(Arc::new(HashSet::from([s.honest_root()])));
    let d = s.decide(&by_key, &[s.intermediate()]);
    assert_eq!(rule(&d), Some("denylist"), "{:?}", d.refusal);
    // ...unless another valid path avoids it (the key is distrusted, not the leaf).
    let d = s.decide(&by_key, &[s.intermediate(), s.twin.clone()]);
    assert_eq!(rule(&d), None, "{:?}", d.refusal);
    assert_eq!(d.path_pins.last(), Some(&s.rogue_root()));
    // A pin on the denylisted root cannot bring it back.
    let pinned = by_key.clone().with_pins(vec![s.honest_root()]);
    let d = s.decide(&pinned, &[s.intermediate(), s.twin.clone()]);
    assert_eq!(rule(&d), Some("issuer-pin"), "{:?}", d.refusal);
}

#[test]
fn a_denylisted_leaf_key_is_refused() {
    let s = setup();
    let spki = ctdns::ct::cert::spki_of_cert(s.leaf.leaf().as_ref()).unwrap();
    let v = s
        .verifier()
        .with_spki_denylist(Arc::new(HashSet::from([SpkiPin::of_spki(spki)])));
    assert_eq!(rule(&s.decide(&v, &[s.intermediate()])), Some("denylist"));
}

#[test]
fn serve_drops_denylisted_roots_from_the_trust_store() {
    // DigiCert Global Root G2, a webpki-roots anchor.
    let g2 = "i7WTqTvh0OioIruIfFR4kMPnBqrS2rdiVPl/s2uC/CY=";
    let pin = SpkiPin::parse(g2).unwrap();
    let has = |trust: &ctdns::runtime::Trust| {
        trust
            .roots()
            .iter()
            .any(|a| SpkiPin::of_spki(webpki::spki_for_anchor(a).as_ref()) == pin)
    };
    let config = ctdns::config::Config::default();
    assert!(has(
        &ctdns::runtime::Trust::without_evidence(&config).unwrap()
    ));
    let config =
        ctdns::config::Config::from_toml(&format!("[tls]\ndeny_spki = [\"{g2}\"]\n")).unwrap();
    let trust = ctdns::runtime::Trust::without_evidence(&config).unwrap();
    assert!(!has(&trust));
    assert!(trust.roots().len() > 100);
}
