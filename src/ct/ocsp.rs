//! SCTs stapled in an OCSP response (RFC 6962 §3.3, RFC 6960 §4.2.1).
//!
//! [`ocsp_sct_list`] walks `OCSPResponse → responseBytes (id-pkix-ocsp-basic) →
//! BasicOCSPResponse → tbsResponseData → responses`, picks the `SingleResponse` whose
//! `CertID.serialNumber` equals the leaf's serial, and returns the TLS-encoded
//! `SignedCertificateTimestampList` from its single-extension 1.3.6.1.4.1.11129.2.4.5.
//!
//! **The OCSP signature is not verified, and neither is the rest of `CertID`** (issuer
//! name/key hashes). That is deliberate: each SCT is self-authenticating — it is a log
//! signature over the *whole leaf certificate* (`x509_entry`), so an SCT lifted from a
//! forged or mismatched OCSP response verifies only if a trusted log really signed
//! this exact leaf. The response's revocation status is not judged here either.
//!
//! A staple whose SCTs cannot be read (malformed response, malformed SCT list) is not a
//! refusal: [`crate::ct::checker::CtChecker::check`] counts no stapled SCTs and records the
//! [`StapledSctError`] in the CT report, and the connection is judged on the embedded SCTs
//! (a malicious or broken staple must not turn a compliant connection into a refusal).
//!
//! A response whose `responseStatus` is not `successful` (e.g. `tryLater`) carries no
//! `responseBytes`, hence no SCTs: it yields `Ok(None)`, like a response without the
//! extension, so the CT policy simply counts no OCSP-delivered SCTs rather than
//! failing a connection that may be fully covered by embedded SCTs.

use crate::ct::cert::{find_unique, inner_octet_string, parse_extensions};
use crate::ct::der::{self, tag, DerError, Reader};

/// DER contents of OID 1.3.6.1.5.5.7.48.1.1, `id-pkix-ocsp-basic`.
pub const OID_OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
/// DER contents of OID 1.3.6.1.4.1.11129.2.4.5, the OCSP single-extension SCT list.
pub const OID_OCSP_SCT_LIST: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x05];

/// Why an OCSP response could not be read. Each variant names the field or rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OcspError {
    /// A field is not well-formed DER or has the wrong tag.
    #[error("OCSP response: malformed `{field}`: {cause}")]
    Malformed {
        /// The OCSP field that did not parse.
        field: &'static str,
        /// The DER rule it broke.
        #[source]
        cause: DerError,
    },
    /// `responseStatus` is not a one-byte ENUMERATED value.
    #[error("OCSP response: malformed `responseStatus`")]
    BadResponseStatus,
    /// A `successful` response without `responseBytes`.
    #[error("OCSP response: successful status but no `responseBytes`")]
    MissingResponseBytes,
    /// `responseType` is not `id-pkix-ocsp-basic`.
    #[error("OCSP response: `responseType` is not id-pkix-ocsp-basic")]
    UnsupportedResponseType,
    /// The matching `SingleResponse` has more than one SCT-list extension.
    #[error("OCSP response: more than one SCT-list single extension")]
    DuplicateSctExtension,
    /// The SCT-list extension's value does not wrap exactly one OCTET STRING.
    #[error("OCSP response: SCT-list extension value is not an OCTET STRING")]
    SctExtensionNotOctetString,
}

/// Why the SCTs of a stapled OCSP response were not read. The staple's SCTs are then
/// ignored, never a refusal.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StapledSctError {
    /// The OCSP response could not be walked to its SCT-list extension.
    #[error("{0}")]
    Response(#[from] OcspError),
    /// The SCT list inside it is malformed.
    #[error("OCSP SCT list: {0}")]
    List(crate::ct::sct::SctListError),
}

fn malformed(field: &'static str) -> impl Fn(DerError) -> OcspError {
    move |cause| OcspError::Malformed { field, cause }
}

/// `OCSPResponseStatus ::= ENUMERATED { successful (0), ... }`.
const STATUS_SUCCESSFUL: u8 = 0;

/// The TLS-encoded SCT list stapled for the leaf with serial `leaf_serial` (INTEGER
/// content bytes, as [`LeafCert::serial`](crate::ct::cert::LeafCert::serial) returns).
///
/// `Ok(None)` when the response is not `successful`, no `SingleResponse` matches the
/// serial, or the matching ones carry no SCT-list extension. When several
/// `SingleResponse`s match the serial, the first one carrying the extension is used.
pub fn ocsp_sct_list(
    ocsp_response: &[u8],
    leaf_serial: &[u8],
) -> Result<Option<Vec<u8>>, OcspError> {
    let outer =
        der::parse_single(ocsp_response, tag::SEQUENCE).map_err(malformed("OCSPResponse"))?;
    let mut r = Reader::new(outer.value);
    let status = r
        .read(tag::ENUMERATED)
        .map_err(malformed("responseStatus"))?;
    let [status] = status.value else {
        return Err(OcspError::BadResponseStatus);
    };
    if *status != STATUS_SUCCESSFUL {
        return Ok(None);
    }
    let wrapper = r
        .read_optional(tag::context(0, true))
        .map_err(malformed("responseBytes"))?
        .ok_or(OcspError::MissingResponseBytes)?;
    r.finish().map_err(malformed("OCSPResponse"))?;

    let response_bytes =
        der::parse_single(wrapper.value, tag::SEQUENCE).map_err(malformed("responseBytes"))?;
    let mut r = Reader::new(response_bytes.value);
    let response_type = r.read(tag::OID).map_err(malformed("responseType"))?;
    let response = r.read(tag::OCTET_STRING).map_err(malformed("response"))?;
    r.finish().map_err(malformed("responseBytes"))?;
    if response_type.value != OID_OCSP_BASIC {
        return Err(OcspError::UnsupportedResponseType);
    }

    let basic =
        der::parse_single(response.value, tag::SEQUENCE).map_err(malformed("BasicOCSPResponse"))?;
    let mut r = Reader::new(basic.value);
    let tbs = r
        .read(tag::SEQUENCE)
        .map_err(malformed("tbsResponseData"))?;
    r.read(tag::SEQUENCE)
        .map_err(malformed("signatureAlgorithm"))?;
    r.read(tag::BIT_STRING).map_err(malformed("signature"))?;
    r.read_optional(tag::context(0, true))
        .map_err(malformed("certs"))?;
    r.finish().map_err(malformed("BasicOCSPResponse"))?;

    let mut r = Reader::new(tbs.value);
    r.read_optional(tag::context(0, true))
        .map_err(malformed("version"))?;
    let responder = r.read_any().map_err(malformed("responderID"))?;
    if responder.tag != tag::context(1, true) && responder.tag != tag::context(2, true) {
        return Err(OcspError::Malformed {
            field: "responderID",
            cause: DerError::UnexpectedTag {
                expected: tag::context(1, true),
                found: responder.tag,
            },
        });
    }
    r.read(tag::GENERALIZED_TIME)
        .map_err(malformed("producedAt"))?;
    let responses = r.read(tag::SEQUENCE).map_err(malformed("responses"))?;
    r.read_optional(tag::context(1, true))
        .map_err(malformed("responseExtensions"))?;
    r.finish().map_err(malformed("tbsResponseData"))?;

    let mut singles = Reader::new(responses.value);
    while !singles.is_empty() {
        let single = SingleResponse::parse(
            singles
                .read(tag::SEQUENCE)
                .map_err(malformed("SingleResponse"))?
                .value,
        )?;
        if single.serial != leaf_serial {
            continue;
        }
        if let Some(list) = single.sct_list()? {
            return Ok(Some(list.to_vec()));
        }
    }
    Ok(None)
}

/// The parts of a `SingleResponse` this module needs.
struct SingleResponse<'a> {
    serial: &'a [u8],
    /// Contents of the `singleExtensions` `SEQUENCE`, if present.
    extensions: Option<&'a [u8]>,
}

impl<'a> SingleResponse<'a> {
    /// `SingleResponse ::= SEQUENCE { certID, certStatus, thisUpdate, [0] nextUpdate
    /// OPTIONAL, [1] singleExtensions OPTIONAL }`.
    fn parse(contents: &'a [u8]) -> Result<Self, OcspError> {
        let mut r = Reader::new(contents);
        let cert_id = r.read(tag::SEQUENCE).map_err(malformed("certID"))?;
        let mut c = Reader::new(cert_id.value);
        c.read(tag::SEQUENCE)
            .map_err(malformed("certID.hashAlgorithm"))?;
        c.read(tag::OCTET_STRING)
            .map_err(malformed("certID.issuerNameHash"))?;
        c.read(tag::OCTET_STRING)
            .map_err(malformed("certID.issuerKeyHash"))?;
        let serial = c
            .read(tag::INTEGER)
            .map_err(malformed("certID.serialNumber"))?;
        c.finish().map_err(malformed("certID"))?;

        // good [0] IMPLICIT NULL | revoked [1] IMPLICIT RevokedInfo | unknown [2] IMPLICIT NULL
        let status = r.read_any().map_err(malformed("certStatus"))?;
        if ![
            tag::context(0, false),
            tag::context(1, true),
            tag::context(2, false),
        ]
        .contains(&status.tag)
        {
            return Err(OcspError::Malformed {
                field: "certStatus",
                cause: DerError::UnexpectedTag {
                    expected: tag::context(0, false),
                    found: status.tag,
                },
            });
        }
        r.read(tag::GENERALIZED_TIME)
            .map_err(malformed("thisUpdate"))?;
        r.read_optional(tag::context(0, true))
            .map_err(malformed("nextUpdate"))?;
        let extensions = match r
            .read_optional(tag::context(1, true))
            .map_err(malformed("singleExtensions"))?
        {
            Some(w) => Some(
                der::parse_single(w.value, tag::SEQUENCE)
                    .map_err(malformed("singleExtensions"))?
                    .value,
            ),
            None => None,
        };
        r.finish().map_err(malformed("SingleResponse"))?;
        Ok(Self {
            serial: serial.value,
            extensions,
        })
    }

    fn sct_list(&self) -> Result<Option<&'a [u8]>, OcspError> {
        let Some(contents) = self.extensions else {
            return Ok(None);
        };
        let exts = parse_extensions(contents)
            .map_err(|(field, cause)| OcspError::Malformed { field, cause })?;
        match find_unique(&exts, OID_OCSP_SCT_LIST) {
            Err(()) => Err(OcspError::DuplicateSctExtension),
            Ok(None) => Ok(None),
            Ok(Some(ext)) => inner_octet_string(ext.value)
                .map(Some)
                .ok_or(OcspError::SctExtensionNotOctetString),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::der::element;

    fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
        element(tag::SEQUENCE, &parts.concat())
    }

    fn sct_ext(oid: &[u8], list: &[u8]) -> Vec<u8> {
        seq(&[
            element(tag::OID, oid),
            element(tag::OCTET_STRING, &element(tag::OCTET_STRING, list)),
        ])
    }

    fn sha1_alg() -> Vec<u8> {
        seq(&[
            element(tag::OID, &[0x2b, 0x0e, 0x03, 0x02, 0x1a]),
            element(tag::NULL, &[]),
        ])
    }

    /// A `SingleResponse` for `serial` with optional single extensions.
    fn single(serial: &[u8], exts: Option<Vec<Vec<u8>>>, next_update: bool) -> Vec<u8> {
        let cert_id = seq(&[
            sha1_alg(),
            element(tag::OCTET_STRING, &[1; 20]),
            element(tag::OCTET_STRING, &[2; 20]),
            element(tag::INTEGER, serial),
        ]);
        let mut parts = vec![
            cert_id,
            element(tag::context(0, false), &[]),
            element(tag::GENERALIZED_TIME, b"20260101000000Z"),
        ];
        if next_update {
            parts.push(element(
                tag::context(0, true),
                &element(tag::GENERALIZED_TIME, b"20260108000000Z"),
            ));
        }
        if let Some(exts) = exts {
            parts.push(element(tag::context(1, true), &seq(&exts)));
        }
        seq(&parts)
    }

    fn response_with(status: u8, response_type: &[u8], singles: &[Vec<u8>]) -> Vec<u8> {
        let responder = element(tag::context(2, true), &element(tag::OCTET_STRING, &[3; 20]));
        let tbs = seq(&[
            element(tag::context(0, true), &element(tag::INTEGER, &[0])),
            responder,
            element(tag::GENERALIZED_TIME, b"20260101000000Z"),
            seq(singles),
        ]);
        let basic = seq(&[
            tbs,
            seq(&[element(
                tag::OID,
                &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],
            )]),
            element(tag::BIT_STRING, &[0, 0xde, 0xad]),
        ]);
        let response_bytes = seq(&[
            element(tag::OID, response_type),
            element(tag::OCTET_STRING, &basic),
        ]);
        seq(&[
            element(tag::ENUMERATED, &[status]),
            element(tag::context(0, true), &response_bytes),
        ])
    }

    fn response(singles: &[Vec<u8>]) -> Vec<u8> {
        response_with(0, OID_OCSP_BASIC, singles)
    }

    const LIST: &[u8] = &[0, 4, 0, 2, 0xaa, 0xbb];

    #[test]
    fn extracts_the_list_for_the_matching_serial() {
        let other = single(
            &[9],
            Some(vec![sct_ext(OID_OCSP_SCT_LIST, &[0, 1, 0xee])]),
            true,
        );
        let unrelated_ext = seq(&[
            element(
                tag::OID,
                &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02],
            ),
            element(tag::OCTET_STRING, &element(tag::OCTET_STRING, &[7; 8])),
        ]);
        let mine = single(
            &[0x01, 0x02],
            Some(vec![unrelated_ext, sct_ext(OID_OCSP_SCT_LIST, LIST)]),
            false,
        );
        let resp = response(&[other, mine]);
        assert_eq!(ocsp_sct_list(&resp, &[0x01, 0x02]), Ok(Some(LIST.to_vec())));
        assert_eq!(ocsp_sct_list(&resp, &[9]), Ok(Some(vec![0, 1, 0xee])));
        assert_eq!(ocsp_sct_list(&resp, &[0x02]), Ok(None));
    }

    #[test]
    fn no_extension_or_wrong_oid_is_none() {
        let resp = response(&[single(&[5], None, true)]);
        assert_eq!(ocsp_sct_list(&resp, &[5]), Ok(None));
        // The certificate SCT OID (.2) is not the OCSP one (.5).
        let cert_oid = crate::ct::cert::OID_SCT_LIST;
        let resp = response(&[single(&[5], Some(vec![sct_ext(cert_oid, LIST)]), true)]);
        assert_eq!(ocsp_sct_list(&resp, &[5]), Ok(None));
    }

    #[test]
    fn first_matching_single_response_with_the_extension_wins() {
        let bare = single(&[5], None, false);
        let with = single(&[5], Some(vec![sct_ext(OID_OCSP_SCT_LIST, LIST)]), false);
        assert_eq!(
            ocsp_sct_list(&response(&[bare, with]), &[5]),
            Ok(Some(LIST.to_vec()))
        );
    }

    #[test]
    fn non_successful_status_is_none() {
        // tryLater (3): no responseBytes at all, as responders send it.
        let try_later = seq(&[element(tag::ENUMERATED, &[3])]);
        assert_eq!(ocsp_sct_list(&try_later, &[5]), Ok(None));
        let resp = response_with(1, OID_OCSP_BASIC, &[single(&[5], None, false)]);
        assert_eq!(ocsp_sct_list(&resp, &[5]), Ok(None));
    }

    #[test]
    fn typed_errors() {
        let ok = single(&[5], Some(vec![sct_ext(OID_OCSP_SCT_LIST, LIST)]), false);
        assert_eq!(
            ocsp_sct_list(&seq(&[element(tag::ENUMERATED, &[0])]), &[5]),
            Err(OcspError::MissingResponseBytes)
        );
        assert_eq!(
            ocsp_sct_list(&seq(&[element(tag::ENUMERATED, &[0, 0])]), &[5]),
            Err(OcspError::BadResponseStatus)
        );
        assert_eq!(
            ocsp_sct_list(
                &response_with(0, &[0x2a, 0x03], std::slice::from_ref(&ok)),
                &[5]
            ),
            Err(OcspError::UnsupportedResponseType)
        );
        let dup = single(
            &[5],
            Some(vec![
                sct_ext(OID_OCSP_SCT_LIST, LIST),
                sct_ext(OID_OCSP_SCT_LIST, LIST),
            ]),
            false,
        );
        assert_eq!(
            ocsp_sct_list(&response(&[dup]), &[5]),
            Err(OcspError::DuplicateSctExtension)
        );
        let flat = seq(&[
            element(tag::OID, OID_OCSP_SCT_LIST),
            element(tag::OCTET_STRING, LIST),
        ]);
        assert_eq!(
            ocsp_sct_list(&response(&[single(&[5], Some(vec![flat]), false)]), &[5]),
            Err(OcspError::SctExtensionNotOctetString)
        );
        // Indefinite length on the outer SEQUENCE.
        let mut indef = response(std::slice::from_ref(&ok));
        indef[1] = 0x80;
        assert_eq!(
            ocsp_sct_list(&indef, &[5]),
            Err(OcspError::Malformed {
                field: "OCSPResponse",
                cause: DerError::IndefiniteLength
            })
        );
        // Serial that is not an INTEGER.
        let bad_single = {
            let s = single(&[5], None, false);
            let pos = s.windows(3).position(|w| w == [2, 1, 5]).unwrap();
            let mut s = s;
            s[pos] = tag::OCTET_STRING;
            s
        };
        assert!(matches!(
            ocsp_sct_list(&response(&[bad_single]), &[5]),
            Err(OcspError::Malformed {
                field: "certID.serialNumber",
                cause: DerError::UnexpectedTag { .. }
            })
        ));
        // Truncated.
        let full = response(&[ok]);
        assert!(matches!(
            ocsp_sct_list(&full[..full.len() - 3], &[5]),
            Err(OcspError::Malformed {
                field: "OCSPResponse",
                ..
            })
        ));
        assert!(matches!(
            ocsp_sct_list(&[], &[5]),
            Err(OcspError::Malformed { .. })
        ));
    }

    /// A response encoded by OpenSSL (see `testdata/README.md`): two SingleResponses,
    /// a nonce in `responseExtensions`, `certs`; no SCTs.
    const OPENSSL_RESPONSE: &[u8] = include_bytes!("testdata/openssl-ocsp-response.der");

    #[test]
    fn walks_a_real_openssl_response() {
        assert_eq!(ocsp_sct_list(OPENSSL_RESPONSE, &[1, 2, 3, 4]), Ok(None));
        assert_eq!(ocsp_sct_list(OPENSSL_RESPONSE, &[0x0a, 0x0b]), Ok(None));
        assert_eq!(ocsp_sct_list(OPENSSL_RESPONSE, &[0x0c]), Ok(None));
        // Damage the second SingleResponse's serial tag: the walk must reach it.
        let pos = OPENSSL_RESPONSE
            .windows(4)
            .position(|w| w == [0x02, 0x02, 0x0a, 0x0b])
            .unwrap();
        let mut bad = OPENSSL_RESPONSE.to_vec();
        bad[pos] = tag::OCTET_STRING;
        assert!(matches!(
            ocsp_sct_list(&bad, &[1, 2, 3, 4]),
            Err(OcspError::Malformed {
                field: "certID.serialNumber",
                ..
            })
        ));
        // Change the last byte of the responseType OID (basic → nonce).
        let pos = OPENSSL_RESPONSE
            .windows(OID_OCSP_BASIC.len())
            .position(|w| w == OID_OCSP_BASIC)
            .unwrap();
        let mut other = OPENSSL_RESPONSE.to_vec();
        other[pos + OID_OCSP_BASIC.len() - 1] = 2;
        assert_eq!(
            ocsp_sct_list(&other, &[1, 2, 3, 4]),
            Err(OcspError::UnsupportedResponseType)
        );
    }

    #[test]
    fn never_panics_on_prefixes_or_mutations() {
        let resp = response(&[
            single(&[7], None, true),
            single(&[5], Some(vec![sct_ext(OID_OCSP_SCT_LIST, LIST)]), true),
        ]);
        for n in 0..resp.len() {
            assert!(ocsp_sct_list(&resp[..n], &[5]).is_err());
        }
        let mut m = resp.clone();
        for i in 0..resp.len() {
            for x in [0x01u8, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff] {
                m[i] ^= x;
                let _ = ocsp_sct_list(&m, &[5]);
                m[i] ^= x;
            }
        }
        assert_eq!(ocsp_sct_list(&m, &[5]), Ok(Some(LIST.to_vec())));
    }
}
