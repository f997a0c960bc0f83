//! The built-in pin sets held against what the built-in resolvers serve, as recorded in the
//! public record (`tests/data/ct-vectors/real/resolvers-2026/README.md`): the real CA
//! certificates are checked to be what the record says, the real SSL.com intermediate must
//! chain to a pinned webpki-roots anchor, each recorded path must pass the issuer-pin rule
//! of the built-in configuration, a path under any other CA must not, and each operator's
//! pins must cover two independent CA lineages.

use std::path::PathBuf;

use ctdns::config::{cloudflare_doh, defaults, Config};
use ctdns::tls::lineage::{anchor_with_pin, coverage, Coverage};
use ctdns::tls::pins::{pins_admit, SpkiPin};
use x509_parser::prelude::{FromDer, X509Certificate};

fn recorded(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/ct-vectors/real/resolvers-2026")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let b64: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

fn spki_pin(der: &[u8]) -> SpkiPin {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    SpkiPin::of_spki(cert.public_key().raw)
}

fn pin(s: &str) -> SpkiPin {
    SpkiPin::parse(s).unwrap()
}

const SSLCOM_R2: &str = "zGgA4OU4DjJdvpRYUqbi5Vh2g9W5Oc/PgKihy9mkLsE=";
const SSLCOM_ECC_ROOT: &str = "oyD01TTXvpfBro3QSZc1vIlcMjrdLTiL/M9mLCPX+Zo=";
const DIGICERT_G2: &str = "i7WTqTvh0OioIruIfFR4kMPnBqrS2rdiVPl/s2uC/CY=";
const DIGICERT_G3: &str = "uUwZgwDOxcBXrQcntwu+kYFpkiVkOaezL0WYEZ3anJc=";

#[test]
fn recorded_certificates_are_what_the_record_says() {
    assert_eq!(
        spki_pin(&recorded("SSL.com-SSL-Intermediate-CA-ECC-R2.pem")),
        pin(SSLCOM_R2)
    );
    assert_eq!(
        spki_pin(&recorded("SSL.com-Root-Certification-Authority-ECC.pem")),
        pin(SSLCOM_ECC_ROOT)
    );
    assert_eq!(
        spki_pin(&recorded("DigiCert-Global-Root-G2.pem")),
        pin(DIGICERT_G2)
    );
    assert_eq!(
        spki_pin(&recorded("DigiCert-Global-Root-G3.pem")),
        pin(DIGICERT_G3)
    );
}

#[test]
fn real_sslcom_intermediate_chains_to_a_pinned_webpki_root() {
    let anchors = ctdns::tls::roots::webpki_roots();
    let der = recorded("SSL.com-SSL-Intermediate-CA-ECC-R2.pem");
    let (_, intermediate) = X509Certificate::from_der(&der).unwrap();
    // The anchor the intermediate names as its issuer, found in webpki-roots by the pin
    // that Cloudflare's built-in set holds.
    let root_pin = pin(SSLCOM_ECC_ROOT);
    assert!(defaults::CLOUDFLARE.spki_pins().contains(&root_pin));
    let anchor = anchor_with_pin(&root_pin, &anchors).expect("SSL.com ECC root in webpki-roots");
    let spki_der = webpki::spki_for_anchor(anchor);
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der.as_ref()).unwrap();
    // ecdsa-with-SHA384 by a P-384 key.
    assert_eq!(
        intermediate.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.10045.4.3.3"
    );
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P384_SHA384_ASN1,
        spki.subject_public_key.data.as_ref(),
    );
    key.verify(
        intermediate.tbs_certificate.as_ref(),
        intermediate.signature_value.data.as_ref(),
    )
    .expect("the real R2 intermediate is signed by the pinned SSL.com ECC root");
    // And the same check fails under another pinned root: the test can fail.
    let other = anchor_with_pin(&pin(DIGICERT_G3), &anchors).unwrap();
    let other_der = webpki::spki_for_anchor(other);
    let (_, other_spki) =
        x509_parser::x509::SubjectPublicKeyInfo::from_der(other_der.as_ref()).unwrap();
    let other_key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P384_SHA384_ASN1,
        other_spki.subject_public_key.data.as_ref(),
    );
    assert!(other_key
        .verify(
            intermediate.tbs_certificate.as_ref(),
            intermediate.signature_value.data.as_ref()
        )
        .is_err());
}

#[test]
fn builtin_configuration_admits_the_recorded_paths_and_no_other_ca() {
    let config = Config::default();
    let cloudflare_path = [pin(SSLCOM_R2), pin(SSLCOM_ECC_ROOT)];
    // Quad9's intermediate ("DigiCert Global G3 TLS ECC SHA384 2020 CA1") is not in the
    // record as a file; the path's root pin is what the rule can match.
    let quad9_path = [SpkiPin([0x51; 32]), pin(DIGICERT_G3)];
    // The 2025 DigiCert path of the Cloudflare post-mortem still passes (backup lineage).
    let cloudflare_2025_path = [SpkiPin([0x52; 32]), pin(DIGICERT_G2)];
    let doh = cloudflare_doh();
    let mut checked = 0;
    for up in config.upstreams.iter().chain(doh.iter()) {
        let pins = up.pins();
        let ip = up.dial_addr().unwrap().ip().to_string();
        let url = match up {
            ctdns::config::UpstreamConfig::Doh { url, .. } => url.to_string(),
            ctdns::config::UpstreamConfig::Dot { .. } => String::new(),
        };
        let is_cloudflare = ip.starts_with("1.") || url.contains("//1.");
        let path: &[SpkiPin] = if is_cloudflare {
            &cloudflare_path
        } else {
            &quad9_path
        };
        assert!(pins_admit(pins, path), "{ip}{url}: recorded path refused");
        if is_cloudflare {
            assert!(pins_admit(pins, &cloudflare_2025_path));
        }
        checked += 1;
    }
    assert_eq!(checked, 6);

    // Fina-style issuance: a valid, CT-logged chain from any other CA in the trust store is
    // refused by every built-in pin set.
    let anchors = ctdns::tls::roots::webpki_roots();
    let builtin: Vec<SpkiPin> = defaults::OPERATORS
        .iter()
        .flat_map(|op| op.spki_pins())
        .collect();
    let mut other_cas = 0;
    for anchor in &anchors {
        let root = SpkiPin::of_spki(webpki::spki_for_anchor(anchor).as_ref());
        if builtin.contains(&root) {
            continue;
        }
        for up in &config.upstreams {
            assert!(
                !pins_admit(up.pins(), &[SpkiPin([0x53; 32]), root]),
                "a path under {root} passes the built-in pins"
            );
        }
        other_cas += 1;
    }
    assert!(other_cas > 100, "{other_cas}");
}

#[test]
fn each_operator_covers_two_lineages() {
    let anchors = ctdns::tls::roots::webpki_roots();
    for op in defaults::OPERATORS {
        match coverage(&op.spki_pins(), &anchors) {
            Coverage::Several(orgs) => {
                assert!(orgs.len() >= 2, "{}: {orgs:?}", op.operator);
                assert!(orgs.iter().any(|o| o.contains("DigiCert")), "{orgs:?}");
                assert!(orgs.iter().any(|o| o.contains("SSL")), "{orgs:?}");
            }
            other => panic!("{}: {other:?}", op.operator),
        }
    }
}
