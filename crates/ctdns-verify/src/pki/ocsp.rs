//! Stapled OCSP responses (RFC 6960) carrying SCTs (RFC 6962 §3.3) and a revocation
//! status.
//!
//! rcgen has no OCSP support, so the response is written with the small DER writer in
//! [`crate::ct::der`]: one `SingleResponse` for the leaf, the SCT list in the single-response
//! extension 1.3.6.1.4.1.11129.2.4.5, signed by the issuing CA's ECDSA key. [`OcspSpec`]
//! holds the knobs a revocation checker must tell apart: status `revoked` (with a
//! `revocationTime` and optional reason), signed by the wrong key, an empty or garbage
//! signature, a delegated responder certificate (issued by the issuer, EKU
//! id-kp-OCSPSigning, carried in `BasicOCSPResponse.certs`), a responder certificate that
//! the issuer did not issue or that lacks the EKU, no `nextUpdate`, and a `CertID` for
//! another serial. Staleness is set with the `this_update` / `next_update` arguments.

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SigningKey,
};
use time::{Duration, OffsetDateTime};
use x509_parser::parse_x509_certificate;

use super::ca::TestCa;
use super::PkiError;
use crate::ct::der;

/// OID of the OCSP single-response extension that carries an SCT list.
pub const OID_OCSP_SCT_LIST: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 5];
const OID_OCSP_BASIC: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 1];
const OID_SHA1: &[u64] = &[1, 3, 14, 3, 2, 26];
const OID_ECDSA_WITH_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];

fn sha1(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data)
        .as_ref()
        .to_vec()
}

/// The `certStatus` a test OCSP response states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OcspCertStatus {
    /// `good [0] IMPLICIT NULL`.
    #[default]
    Good,
    /// `revoked [1] IMPLICIT RevokedInfo { revocationTime, [0] EXPLICIT CRLReason OPTIONAL }`.
    Revoked {
        /// `revocationTime`.
        at: OffsetDateTime,
        /// `revocationReason` (CRLReason code, e.g. 1 = keyCompromise), if any.
        reason: Option<u8>,
    },
    /// `unknown [2] IMPLICIT NULL`.
    Unknown,
}

/// Who signs a test OCSP response, and how.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OcspSigner {
    /// The issuing CA's own key (`responderID` byKey of the issuer).
    #[default]
    Issuer,
    /// A freshly generated key nobody certified (`responderID` still names the issuer).
    WrongKey,
    /// The issuer signs, then the signature's last byte is flipped.
    GarbageSignature,
    /// An empty `signature` BIT STRING (an "unsigned" response).
    EmptySignature,
    /// A delegated responder: a certificate issued by the issuing CA with EKU
    /// id-kp-OCSPSigning (1.3.6.1.5.5.7.3.9), included in `certs`, signs.
    DelegatedResponder,
    /// Like [`OcspSigner::DelegatedResponder`], but the responder certificate is issued by
    /// a fresh CA that is not the leaf's issuer (same subject name as the issuer, so only
    /// the signature tells).
    ResponderNotIssuedByIssuer,
    /// Like [`OcspSigner::DelegatedResponder`], but the responder certificate has no
    /// id-kp-OCSPSigning EKU (serverAuth only).
    ResponderWithoutOcspEku,
}

/// The knobs of a test OCSP response; the default is a good, issuer-signed response for
/// the leaf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OcspSpec {
    /// The status stated for the certificate.
    pub status: OcspCertStatus,
    /// Who signs and how.
    pub signer: OcspSigner,
    /// Leave `nextUpdate` out.
    pub omit_next_update: bool,
    /// Put this serial (INTEGER content bytes) in `CertID` instead of the leaf's.
    pub cert_id_serial: Option<Vec<u8>>,
}

impl OcspSpec {
    /// Status `revoked` at `at` with an optional CRLReason code.
    pub fn revoked(at: OffsetDateTime, reason: Option<u8>) -> Self {
        Self {
            status: OcspCertStatus::Revoked { at, reason },
            ..Self::default()
        }
    }

    /// Set who signs.
    pub fn signed_by(mut self, signer: OcspSigner) -> Self {
        self.signer = signer;
        self
    }

    /// Name another serial in `CertID`.
    pub fn for_serial(mut self, serial: Vec<u8>) -> Self {
        self.cert_id_serial = Some(serial);
        self
    }

    /// Leave `nextUpdate` out.
    pub fn without_next_update(mut self) -> Self {
        self.omit_next_update = true;
        self
    }
}

/// Build a DER `OCSPResponse` (status successful, `id-pkix-ocsp-basic`) saying `leaf` is
/// good, from `this_update` to `next_update`, signed by `issuer` (which must have issued
/// `leaf`). With `sct_list` (a TLS-encoded `SignedCertificateTimestampList`) the single
/// response carries it in extension 1.3.6.1.4.1.11129.2.4.5, whose `extnValue` is
/// `OCTET STRING { OCTET STRING { sct_list } }` exactly as in a certificate.
pub fn build_ocsp_response(
    issuer: &TestCa,
    leaf: &[u8],
    sct_list: Option<&[u8]>,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
) -> Result<Vec<u8>, PkiError> {
    build_ocsp_response_with(
        issuer,
        leaf,
        sct_list,
        this_update,
        next_update,
        &OcspSpec::default(),
    )
}

/// [`build_ocsp_response`] with the knobs of `spec` (status, signer, `nextUpdate`,
/// `CertID` serial).
pub fn build_ocsp_response_with(
    issuer: &TestCa,
    leaf: &[u8],
    sct_list: Option<&[u8]>,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    spec: &OcspSpec,
) -> Result<Vec<u8>, PkiError> {
    let (_, leaf_cert) = parse_x509_certificate(leaf).map_err(|_| PkiError::Parse {
        what: "leaf certificate (for OCSP)",
    })?;
    let (_, issuer_cert) = parse_x509_certificate(issuer.der()).map_err(|_| PkiError::Parse {
        what: "issuer certificate (for OCSP)",
    })?;
    let issuer_key_bits = issuer_cert.public_key().subject_public_key.data.as_ref();
    let issuer_key_sha1 = sha1(issuer_key_bits);

    // CertID: issuer name hash over the DER Name as it appears in the leaf's issuer field.
    let serial = spec
        .cert_id_serial
        .as_deref()
        .unwrap_or(leaf_cert.raw_serial());
    let cert_id = der::seq(&[
        &der::seq(&[&der::oid(OID_SHA1), &der::null()]),
        &der::octet_string(&sha1(leaf_cert.issuer().as_raw())),
        &der::octet_string(&issuer_key_sha1),
        &der::element(der::tag::INTEGER, serial),
    ]);
    let cert_status = match spec.status {
        OcspCertStatus::Good => vec![0x80, 0x00], // [0] IMPLICIT NULL
        OcspCertStatus::Unknown => vec![0x82, 0x00], // [2] IMPLICIT NULL
        OcspCertStatus::Revoked { at, reason } => {
            let mut info = der::generalized_time(at).map_err(|_| PkiError::Time {
                what: "OCSP revocationTime",
            })?;
            if let Some(code) = reason {
                info.extend(der::explicit(
                    0,
                    &der::element(der::tag::ENUMERATED, &[code]),
                ));
            }
            der::element(0xa1, &info) // [1] IMPLICIT RevokedInfo
        }
    };
    let mut single_parts: Vec<Vec<u8>> = vec![
        cert_id,
        cert_status,
        der::generalized_time(this_update).map_err(|_| PkiError::Time {
            what: "OCSP thisUpdate",
        })?,
    ];
    if !spec.omit_next_update {
        single_parts.push(der::explicit(
            0,
            &der::generalized_time(next_update).map_err(|_| PkiError::Time {
                what: "OCSP nextUpdate",
            })?,
        ));
    }
    if let Some(list) = sct_list {
        let ext = der::seq(&[
            &der::oid(OID_OCSP_SCT_LIST),
            &der::octet_string(&der::octet_string(list)),
        ]);
        single_parts.push(der::explicit(1, &der::seq(&[&ext])));
    }
    let single = der::seq(&single_parts.iter().map(Vec::as_slice).collect::<Vec<_>>());

    // The signing key, and the responder certificate to include, if any.
    let delegated = match spec.signer {
        OcspSigner::DelegatedResponder => Some(responder(issuer, true, this_update)?),
        OcspSigner::ResponderWithoutOcspEku => Some(responder(issuer, false, this_update)?),
        OcspSigner::ResponderNotIssuedByIssuer => {
            // A CA with the issuer's name but another key.
            let impostor = TestCa::root(
                issuer.common_name(),
                &issuer_org(&issuer_cert),
                this_update - Duration::days(30),
                this_update + Duration::days(3650),
            )?;
            Some(responder(&impostor, true, this_update)?)
        }
        _ => None,
    };
    let wrong_key;
    let signing_key: &KeyPair = match (&delegated, spec.signer) {
        (Some((_, key)), _) => key,
        (None, OcspSigner::WrongKey) => {
            wrong_key = KeyPair::generate().map_err(PkiError::cert("wrong OCSP key"))?;
            &wrong_key
        }
        (None, _) => issuer.key_pair(),
    };
    let responder_id = match &delegated {
        // byKey: SHA-1 of the responder's subjectPublicKey BIT STRING contents.
        Some((cert, _)) => {
            let (_, parsed) = parse_x509_certificate(cert).map_err(|_| PkiError::Parse {
                what: "OCSP responder certificate",
            })?;
            der::explicit(
                2,
                &der::octet_string(&sha1(&parsed.public_key().subject_public_key.data)),
            )
        }
        None => der::explicit(2, &der::octet_string(&issuer_key_sha1)),
    };
    let produced_at = der::generalized_time(this_update).map_err(|_| PkiError::Time {
        what: "OCSP producedAt",
    })?;
    let tbs_response_data = der::seq(&[&responder_id, &produced_at, &der::seq(&[&single])]);

    let mut signature = signing_key
        .sign(&tbs_response_data)
        .map_err(|_| PkiError::Signing {
            what: "OCSP response",
        })?;
    match spec.signer {
        OcspSigner::GarbageSignature => {
            if let Some(b) = signature.last_mut() {
                *b ^= 0x01;
            }
        }
        OcspSigner::EmptySignature => signature.clear(),
        _ => {}
    }
    let mut basic_parts = vec![
        tbs_response_data,
        der::seq(&[&der::oid(OID_ECDSA_WITH_SHA256)]),
        der::bit_string(&signature),
    ];
    if let Some((cert, _)) = &delegated {
        basic_parts.push(der::explicit(0, &der::seq(&[cert])));
    }
    let basic = der::seq(&basic_parts.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let response_bytes = der::seq(&[&der::oid(OID_OCSP_BASIC), &der::octet_string(&basic)]);
    let status_successful = der::element(der::tag::ENUMERATED, &[0]);
    Ok(der::seq(&[
        &status_successful,
        &der::explicit(0, &response_bytes),
    ]))
}

/// The organization name of a CA certificate (to copy its subject into an impostor).
fn issuer_org(cert: &x509_parser::certificate::X509Certificate<'_>) -> String {
    cert.subject()
        .iter_organization()
        .next()
        .and_then(|o| o.as_str().ok())
        .unwrap_or("ctdns test PKI")
        .to_string()
}

/// A delegated OCSP responder certificate issued by `by` (end entity; EKU
/// id-kp-OCSPSigning when `ocsp_eku`, else serverAuth), valid around `at`, with its key.
fn responder(
    by: &TestCa,
    ocsp_eku: bool,
    at: OffsetDateTime,
) -> Result<(Vec<u8>, KeyPair), PkiError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "ctdns Test OCSP Responder");
    params.distinguished_name = dn;
    params.not_before = at - Duration::days(1);
    params.not_after = at + Duration::days(30);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![if ocsp_eku {
        ExtendedKeyUsagePurpose::OcspSigning
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().map_err(PkiError::cert("OCSP responder key"))?;
    let cert = params
        .signed_by(&key, &by.issuer())
        .map_err(PkiError::cert("OCSP responder"))?;
    Ok((cert.der().to_vec(), key))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ct::der::{children, read_tlv};

    /// The parts of an OCSP response a test needs, found by walking the DER.
    #[derive(Debug)]
    pub(crate) struct ParsedOcsp<'a> {
        pub tbs_response_data: &'a [u8],
        pub signature: &'a [u8],
        pub issuer_name_hash: &'a [u8],
        pub issuer_key_hash: &'a [u8],
        pub serial: &'a [u8],
        pub cert_status_tag: u8,
        pub sct_list: Option<&'a [u8]>,
    }

    /// The content of the single element in `input`.
    fn content(input: &[u8]) -> Option<&[u8]> {
        Some(read_tlv(input).ok()?.0.value)
    }

    pub(crate) fn parse_ocsp(resp: &[u8]) -> Option<ParsedOcsp<'_>> {
        let top = children(content(resp)?).ok()?;
        let status = top.first()?;
        if status.tag != der::tag::ENUMERATED || status.value != [0] {
            return None;
        }
        // [0] EXPLICIT ResponseBytes
        let rb = children(content(top.get(1)?.value)?).ok()?;
        if rb.first()?.element != der::oid(OID_OCSP_BASIC).as_slice() {
            return None;
        }
        let basic = children(content(rb.get(1)?.value)?).ok()?;
        let tbs = basic.first()?;
        let signature = basic.get(2)?.value.get(1..)?;
        // ResponseData: responderID, producedAt, responses
        let rd = children(tbs.value).ok()?;
        let responses = children(rd.get(2)?.value).ok()?;
        let single = children(responses.first()?.value).ok()?;
        let cert_id = children(single.first()?.value).ok()?;
        let cert_status_tag = single.get(1)?.tag;
        let mut sct_list = None;
        for field in single.iter().skip(2).filter(|f| f.tag == 0xa1) {
            for ext in children(content(field.value)?).ok()? {
                let parts = children(ext.value).ok()?;
                if parts.first()?.element == der::oid(OID_OCSP_SCT_LIST).as_slice() {
                    sct_list = Some(content(parts.last()?.value)?);
                }
            }
        }
        Some(ParsedOcsp {
            tbs_response_data: tbs.element,
            signature,
            issuer_name_hash: cert_id.get(1)?.value,
            issuer_key_hash: cert_id.get(2)?.value,
            serial: cert_id.get(3)?.value,
            cert_status_tag,
            sct_list,
        })
    }

    #[test]
    fn ocsp_response_is_well_formed_and_signed() {
        use crate::pki::{PkiOptions, TestPki};
        let pki = TestPki::generate(&PkiOptions {
            default_logs: false,
            ..PkiOptions::default()
        })
        .unwrap();
        // Any certificate issued by the root will do: the intermediate.
        let leaf = pki.intermediate().der();
        let now = pki.now();
        let list = crate::ct::sct::encode_sct_list([[1u8, 2, 3].as_slice()]);
        let resp = build_ocsp_response(
            pki.root(),
            leaf,
            Some(&list),
            now,
            now + time::Duration::days(7),
        )
        .unwrap();
        let parsed = parse_ocsp(&resp).expect("OCSP response parses");
        let (_, leaf_x) = parse_x509_certificate(leaf).unwrap();
        let (_, root_x) = parse_x509_certificate(pki.root().der()).unwrap();
        assert_eq!(parsed.serial, leaf_x.raw_serial());
        assert_eq!(parsed.issuer_name_hash, sha1(root_x.subject().as_raw()));
        assert_eq!(
            parsed.issuer_key_hash,
            sha1(&root_x.public_key().subject_public_key.data)
        );
        assert_eq!(parsed.cert_status_tag, 0x80, "status good");
        assert_eq!(parsed.sct_list, Some(list.as_slice()));
        let key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            root_x.public_key().subject_public_key.data.as_ref(),
        );
        key.verify(parsed.tbs_response_data, parsed.signature)
            .expect("OCSP signature verifies with the issuer key");
        // Signed by the wrong CA: verification must fail.
        let (_, rogue) = parse_x509_certificate(pki.rogue_root().der()).unwrap();
        let wrong = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            rogue.public_key().subject_public_key.data.as_ref(),
        );
        assert!(wrong
            .verify(parsed.tbs_response_data, parsed.signature)
            .is_err());

        let no_scts =
            build_ocsp_response(pki.root(), leaf, None, now, now + time::Duration::days(1))
                .unwrap();
        assert_eq!(parse_ocsp(&no_scts).unwrap().sct_list, None);
    }
}
