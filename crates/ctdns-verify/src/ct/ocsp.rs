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

//!
//! The structural walk of an OCSP response (`parse_response`: `BasicOCSPResponse`, its
//! signature parts, included certificates and every `SingleResponse` with its `CertID`,
//! status, times and extensions) lives here and serves both readers of a staple: this
//! module's SCT extraction and the revocation check (`crate::tls::revocation`), which
//! verifies the signature and judges the status.

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
    /// A field has the right DER shape but an impossible value (a time that is not
    /// `YYYYMMDDHHMMSSZ`, a `signature` BIT STRING with unused bits, a multi-byte reason).
    #[error("OCSP response: bad value in `{field}`")]
    BadValue {
        /// The OCSP field.
        field: &'static str,
    },
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
    let basic = match parse_response(ocsp_response)? {
        Response::NotSuccessful(_) => return Ok(None),
        Response::Basic(basic) => basic,
    };
    for single in basic.singles.iter().filter(|s| s.serial == leaf_serial) {
        if let Some(list) = single.sct_list()? {
            return Ok(Some(list.to_vec()));
        }
    }
    Ok(None)
}

/// An OCSP response, walked.
#[derive(Debug)]
pub(crate) enum Response<'a> {
    /// `responseStatus` is not `successful` (the code, e.g. 3 for `tryLater`): no
    /// `responseBytes` to read.
    NotSuccessful(u8),
    /// A `successful` `id-pkix-ocsp-basic` response.
    Basic(BasicResponse<'a>),
}

/// The parts of a `BasicOCSPResponse` its readers need, borrowed from the DER.
#[derive(Debug)]
pub(crate) struct BasicResponse<'a> {
    /// The whole DER `tbsResponseData` element: what the signature covers.
    pub(crate) tbs: &'a [u8],
    /// Contents of the `signatureAlgorithm` `AlgorithmIdentifier`.
    pub(crate) signature_alg: &'a [u8],
    /// The signature bytes (BIT STRING without the unused-bits octet).
    pub(crate) signature: &'a [u8],
    /// Each certificate of `certs`, as a whole DER element.
    pub(crate) certs: Vec<&'a [u8]>,
    /// Every `SingleResponse`, in order.
    pub(crate) singles: Vec<SingleResponse<'a>>,
}

/// `certStatus` as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RawStatus {
    /// `good`.
    Good,
    /// `revoked`, at Unix seconds `at`, with the `CRLReason` code when given.
    Revoked { at: u64, reason: Option<u8> },
    /// `unknown`.
    Unknown,
}

/// One `SingleResponse`.
#[derive(Debug)]
pub(crate) struct SingleResponse<'a> {
    /// OID contents of `CertID.hashAlgorithm`.
    pub(crate) hash_alg: &'a [u8],
    /// `CertID.issuerNameHash`.
    pub(crate) name_hash: &'a [u8],
    /// `CertID.issuerKeyHash`.
    pub(crate) key_hash: &'a [u8],
    /// `CertID.serialNumber` INTEGER contents.
    pub(crate) serial: &'a [u8],
    /// `certStatus`.
    pub(crate) status: RawStatus,
    /// `thisUpdate`, Unix seconds.
    pub(crate) this_update: u64,
    /// `nextUpdate`, Unix seconds, when present.
    pub(crate) next_update: Option<u64>,
    /// Contents of the `singleExtensions` `SEQUENCE`, if present.
    extensions: Option<&'a [u8]>,
}

/// Walk `OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT
/// ResponseBytes OPTIONAL }`, `ResponseBytes ::= SEQUENCE { responseType OID, response OCTET
/// STRING }`, and the `BasicOCSPResponse` inside. Structure and values only: nothing is
/// verified here.
pub(crate) fn parse_response(ocsp: &[u8]) -> Result<Response<'_>, OcspError> {
    let outer = der::parse_single(ocsp, tag::SEQUENCE).map_err(malformed("OCSPResponse"))?;
    let mut r = Reader::new(outer.value);
    let status = r
        .read(tag::ENUMERATED)
        .map_err(malformed("responseStatus"))?;
    let [status] = status.value else {
        return Err(OcspError::BadResponseStatus);
    };
    if *status != STATUS_SUCCESSFUL {
        return Ok(Response::NotSuccessful(*status));
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
    BasicResponse::parse(response.value).map(Response::Basic)
}

impl<'a> BasicResponse<'a> {
    /// `BasicOCSPResponse ::= SEQUENCE { tbsResponseData, signatureAlgorithm, signature BIT
    /// STRING, certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }`, and `ResponseData ::=
    /// SEQUENCE { version [0] EXPLICIT DEFAULT v1, responderID, producedAt, responses
    /// SEQUENCE OF SingleResponse, responseExtensions [1] EXPLICIT OPTIONAL }`.
    fn parse(der_bytes: &'a [u8]) -> Result<Self, OcspError> {
        let basic =
            der::parse_single(der_bytes, tag::SEQUENCE).map_err(malformed("BasicOCSPResponse"))?;
        let mut r = Reader::new(basic.value);
        let tbs = r
            .read(tag::SEQUENCE)
            .map_err(malformed("tbsResponseData"))?;
        let alg = r
            .read(tag::SEQUENCE)
            .map_err(malformed("signatureAlgorithm"))?;
        let bits = r.read(tag::BIT_STRING).map_err(malformed("signature"))?;
        let certs_wrapper = r
            .read_optional(tag::context(0, true))
            .map_err(malformed("certs"))?;
        r.finish().map_err(malformed("BasicOCSPResponse"))?;
        let signature = match bits.value.split_first() {
            Some((0, sig)) => sig,
            _ => return Err(OcspError::BadValue { field: "signature" }),
        };
        let mut certs = Vec::new();
        if let Some(w) = certs_wrapper {
            let seq = der::parse_single(w.value, tag::SEQUENCE).map_err(malformed("certs"))?;
            let mut c = Reader::new(seq.value);
            while !c.is_empty() {
                certs.push(c.read(tag::SEQUENCE).map_err(malformed("certs"))?.element);
            }
        }

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
        let mut singles = Vec::new();
        let mut s = Reader::new(responses.value);
        while !s.is_empty() {
            let single = s.read(tag::SEQUENCE).map_err(malformed("SingleResponse"))?;
            singles.push(SingleResponse::parse(single.value)?);
        }
        Ok(Self {
            tbs: tbs.element,
            signature_alg: alg.value,
            signature,
            certs,
            singles,
        })
    }
}

/// A GeneralizedTime element as Unix seconds.
fn time_of(t: &der::Tlv<'_>, field: &'static str) -> Result<u64, OcspError> {
    crate::ct::cert::parse_time(tag::GENERALIZED_TIME, t.value).ok_or(OcspError::BadValue { field })
}

impl<'a> SingleResponse<'a> {
    /// `SingleResponse ::= SEQUENCE { certID CertID, certStatus, thisUpdate, nextUpdate
    /// [0] EXPLICIT OPTIONAL, singleExtensions [1] EXPLICIT OPTIONAL }`, `CertID ::=
    /// SEQUENCE { hashAlgorithm AlgorithmIdentifier, issuerNameHash OCTET STRING,
    /// issuerKeyHash OCTET STRING, serialNumber INTEGER }`.
    fn parse(contents: &'a [u8]) -> Result<Self, OcspError> {
        let mut r = Reader::new(contents);
        let cert_id = r.read(tag::SEQUENCE).map_err(malformed("certID"))?;
        let mut c = Reader::new(cert_id.value);
        let alg = c
            .read(tag::SEQUENCE)
            .map_err(malformed("certID.hashAlgorithm"))?;
        let hash_alg = Reader::new(alg.value)
            .read(tag::OID)
            .map_err(malformed("certID.hashAlgorithm"))?
            .value;
        let name_hash = c
            .read(tag::OCTET_STRING)
            .map_err(malformed("certID.issuerNameHash"))?
            .value;
        let key_hash = c
            .read(tag::OCTET_STRING)
            .map_err(malformed("certID.issuerKeyHash"))?
            .value;
        let serial = c
            .read(tag::INTEGER)
            .map_err(malformed("certID.serialNumber"))?
            .value;
        c.finish().map_err(malformed("certID"))?;

        // good [0] IMPLICIT NULL | revoked [1] IMPLICIT RevokedInfo | unknown [2] IMPLICIT NULL
        let status_tlv = r.read_any().map_err(malformed("certStatus"))?;
        let status = match status_tlv.tag {
            t if t == tag::context(0, false) => RawStatus::Good,
            t if t == tag::context(2, false) => RawStatus::Unknown,
            t if t == tag::context(1, true) => {
                // RevokedInfo ::= SEQUENCE { revocationTime GeneralizedTime,
                //   revocationReason [0] EXPLICIT CRLReason OPTIONAL }
                let mut info = Reader::new(status_tlv.value);
                let at = info
                    .read(tag::GENERALIZED_TIME)
                    .map_err(malformed("revocationTime"))?;
                let at = time_of(&at, "revocationTime")?;
                let reason = match info
                    .read_optional(tag::context(0, true))
                    .map_err(malformed("revocationReason"))?
                {
                    None => None,
                    Some(w) => {
                        let e = der::parse_single(w.value, tag::ENUMERATED)
                            .map_err(malformed("revocationReason"))?;
                        match e.value {
                            [code] => Some(*code),
                            _ => {
                                return Err(OcspError::BadValue {
                                    field: "revocationReason",
                                })
                            }
                        }
                    }
                };
                info.finish().map_err(malformed("RevokedInfo"))?;
                RawStatus::Revoked { at, reason }
            }
            found => {
                return Err(OcspError::Malformed {
                    field: "certStatus",
                    cause: DerError::UnexpectedTag {
                        expected: tag::context(0, false),
                        found,
                    },
                })
            }
        };
        let this_update = r
            .read(tag::GENERALIZED_TIME)
            .map_err(malformed("thisUpdate"))?;
        let this_update = time_of(&this_update, "thisUpdate")?;
        let next_update = match r
            .read_optional(tag::context(0, true))
            .map_err(malformed("nextUpdate"))?
        {
            None => None,
            Some(w) => {
                let t = der::parse_single(w.value, tag::GENERALIZED_TIME)
                    .map_err(malformed("nextUpdate"))?;
                Some(time_of(&t, "nextUpdate")?)
            }
        };
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
            hash_alg,
            name_hash,
            key_hash,
            serial,
            status,
            this_update,
            next_update,
            extensions,
        })
    }

    /// The TLS-encoded SCT list of the single extension 1.3.6.1.4.1.11129.2.4.5, if any.
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
