//! Revocation from a stapled OCSP response (RFC 6960): the `revoked` rule.
//!
//! A server may staple an `OCSPResponse` to its certificate. [`check_staple`] reads it as a
//! relying party must before believing it:
//!
//! 1. parse `OCSPResponse → responseBytes (id-pkix-ocsp-basic) → BasicOCSPResponse
//!    { tbsResponseData, signatureAlgorithm, signature, [0] certs }`;
//! 2. verify `signature` over the DER `tbsResponseData` with the **issuer's** key (the
//!    first CA of the *verified* path: the intermediate that issued the leaf, or the
//!    anchor), or else with the key of a certificate in `certs` that is an authorized
//!    **delegated responder**: issued by that same CA (name and signature), valid now, with
//!    EKU id-kp-OCSPSigning (1.3.6.1.5.5.7.3.9) — checked by webpki with the issuer as the
//!    only trust anchor. The algorithms are the rustls crypto provider's, matched by the
//!    `AlgorithmIdentifier`s exactly as webpki matches them for certificates;
//! 3. find the `SingleResponse`s whose `CertID` names the leaf: `serialNumber` equal,
//!    `issuerNameHash` over the leaf's DER issuer `Name` and `issuerKeyHash` over the
//!    issuer's `subjectPublicKey` BIT STRING contents, with the hash `CertID` names (SHA-1,
//!    SHA-256, SHA-384 or SHA-512);
//! 4. keep those that are current: `thisUpdate <= now + `[`CLOCK_SKEW_SECS`] and
//!    `now <= nextUpdate`; without `nextUpdate`, `thisUpdate` must be at most
//!    [`MAX_AGE_WITHOUT_NEXT_UPDATE_SECS`] old.
//!
//! Only a staple that passes all four is [`StapleCheck::Verified`], and only a verified
//! staple saying `revoked` for the leaf refuses the connection (rule `revoked`, see
//! [`crate::tls::verifier`]). Any other staple — malformed, not `successful`, unsigned or
//! badly signed, signed by a responder the issuer did not authorize, for another
//! certificate, stale — is [`StapleCheck::Ignored`] with the reason: like Chrome, a bad
//! revocation source is ignored, never turned into a refusal, so an attacker who can
//! corrupt a staple gains nothing, and a server with a broken staple is judged on the other
//! rules. (The staple's SCTs are a separate matter: they are self-authenticating and count
//! whenever their log signatures verify; see [`crate::ct::ocsp`].)
//!
//! Not done: the delegated responder's own revocation status is not checked (RFC 6960
//! §4.2.2.2.1 lets the CA exempt it with id-pkix-ocsp-nocheck, and every public CA does);
//! `responderID` is not compared with the signer (the signature decides); nothing is
//! fetched from the network — without a staple there is no revocation check at all.

use std::fmt;

use rustls::pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};

use crate::ct::der::{self, tag, DerError};
use crate::ct::ocsp::{
    parse_response, BasicResponse, OcspError, RawStatus, Response, SingleResponse,
};
use crate::tls::pins::CertFingerprint;

/// DER contents of OID 1.3.6.1.5.5.7.3.9, id-kp-OCSPSigning.
pub const OID_KP_OCSP_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x09];
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
const OID_SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];

/// How far in the future `thisUpdate` may be (clock skew between responder and client).
pub const CLOCK_SKEW_SECS: u64 = 300;
/// How old a response without `nextUpdate` may be (`thisUpdate` to now): 7 days, the
/// validity the largest public CAs give their responses.
pub const MAX_AGE_WITHOUT_NEXT_UPDATE_SECS: u64 = 7 * 86_400;

/// A `CRLReason` code (RFC 5280 §5.3.1) from `RevokedInfo.revocationReason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RevocationReason(pub u8);

impl RevocationReason {
    /// The RFC 5280 name of the code, e.g. `keyCompromise`; `unassigned` for codes
    /// RFC 5280 does not define.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "unspecified",
            1 => "keyCompromise",
            2 => "cACompromise",
            3 => "affiliationChanged",
            4 => "superseded",
            5 => "cessationOfOperation",
            6 => "certificateHold",
            8 => "removeFromCRL",
            9 => "privilegeWithdrawn",
            10 => "aACompromise",
            _ => "unassigned",
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// What a verified staple says about a revoked certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// The certificate's serial number (INTEGER content bytes).
    pub serial: Vec<u8>,
    /// `revocationTime`, Unix seconds.
    pub revoked_at: u64,
    /// `revocationReason`, when given.
    pub reason: Option<RevocationReason>,
}

/// The `certStatus` of the leaf in a verified staple.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertStatus {
    /// `good`.
    Good,
    /// `revoked`.
    Revoked(Revocation),
    /// `unknown`: the responder does not know the certificate (not a refusal).
    Unknown,
}

/// Whose key the staple's signature verified under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Responder {
    /// The issuing CA's own key.
    Issuer,
    /// A delegated responder certificate from `certs`, issued by the issuing CA with EKU
    /// id-kp-OCSPSigning.
    Delegated {
        /// SHA-256 of the responder certificate.
        fingerprint: CertFingerprint,
    },
}

/// A staple that passed every check: signed by an authorized key, for this leaf, current.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedStaple {
    /// The leaf's status.
    pub status: CertStatus,
    /// Who signed.
    pub responder: Responder,
    /// `thisUpdate` of the `SingleResponse` used, Unix seconds.
    pub this_update: u64,
    /// `nextUpdate` of the `SingleResponse` used, Unix seconds, when present.
    pub next_update: Option<u64>,
}

/// Why a stapled OCSP response was ignored for revocation. Each variant names the field or
/// rule; none of them refuses a connection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StapleIgnored {
    /// A field is not well-formed DER or has the wrong tag.
    #[error("malformed `{field}`: {cause}")]
    Malformed {
        /// The OCSP field that did not parse.
        field: &'static str,
        /// The DER rule it broke.
        cause: DerError,
    },
    /// A field has the right DER shape but an impossible value (e.g. a time that is not
    /// `YYYYMMDDHHMMSSZ`, a `signature` BIT STRING with unused bits).
    #[error("bad value in `{field}`")]
    BadValue {
        /// The OCSP field.
        field: &'static str,
    },
    /// `responseStatus` is not `successful` (e.g. `tryLater`): there is no status to read.
    #[error("responseStatus is {0}, not successful")]
    NotSuccessful(u8),
    /// A `successful` response without `responseBytes`.
    #[error("successful status but no `responseBytes`")]
    MissingResponseBytes,
    /// `responseType` is not `id-pkix-ocsp-basic`.
    #[error("`responseType` is not id-pkix-ocsp-basic")]
    UnsupportedResponseType,
    /// No available algorithm matches `signatureAlgorithm` and the issuer's key type, and
    /// no included certificate's key verifies the signature.
    #[error("unsupported signature algorithm for the issuer's key")]
    UnsupportedSignatureAlgorithm,
    /// The signature verifies neither under the issuer's key nor under the key of any
    /// certificate in `certs`.
    #[error("signature does not verify under the issuer's key or an included responder's")]
    BadSignature,
    /// The signature verifies under the key of a certificate in `certs`, but that
    /// certificate is not an authorized responder of the issuer (not issued by it, lacking
    /// EKU id-kp-OCSPSigning, or not valid now).
    #[error("signed by a responder certificate the issuer did not authorize: {0}")]
    ResponderNotAuthorized(webpki::Error),
    /// The issuing CA could not be used as the issuer (its certificate does not parse as a
    /// trust anchor).
    #[error("the issuing CA certificate is unusable: {0}")]
    Issuer(webpki::Error),
    /// No `SingleResponse` names this certificate (serial, issuer name and key hashes).
    #[error("no response for this certificate (CertID names another serial or issuer)")]
    NotForThisCertificate,
    /// `thisUpdate` is in the future (beyond the allowed clock skew).
    #[error("thisUpdate {} is in the future", crate::timefmt::format_time(*this_update))]
    NotYetValid {
        /// `thisUpdate`, Unix seconds.
        this_update: u64,
    },
    /// `nextUpdate` has passed.
    #[error("stale: nextUpdate {} has passed", crate::timefmt::format_time(*next_update))]
    Expired {
        /// `nextUpdate`, Unix seconds.
        next_update: u64,
    },
    /// No `nextUpdate`, and `thisUpdate` is older than
    /// [`MAX_AGE_WITHOUT_NEXT_UPDATE_SECS`].
    #[error("stale: no nextUpdate and thisUpdate {} is more than 7 days old", crate::timefmt::format_time(*this_update))]
    TooOld {
        /// `thisUpdate`, Unix seconds.
        this_update: u64,
    },
}

/// The outcome of reading a stapled OCSP response for revocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StapleCheck {
    /// Every check passed; the status counts.
    Verified(VerifiedStaple),
    /// The staple was ignored for revocation, for this reason.
    Ignored(StapleIgnored),
}

impl StapleCheck {
    /// The revocation a verified staple states, if it says `revoked`.
    pub fn revocation(&self) -> Option<&Revocation> {
        match self {
            StapleCheck::Verified(VerifiedStaple {
                status: CertStatus::Revoked(r),
                ..
            }) => Some(r),
            _ => None,
        }
    }

    /// Why the staple was ignored, if it was.
    pub fn ignored(&self) -> Option<&StapleIgnored> {
        match self {
            StapleCheck::Ignored(reason) => Some(reason),
            StapleCheck::Verified(_) => None,
        }
    }
}

impl fmt::Display for StapleCheck {
    /// One line: `good (signed by the issuer, thisUpdate …, nextUpdate …)`,
    /// `revoked at … (keyCompromise (1)) (signed by …)`, or `ignored (reason)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StapleCheck::Ignored(reason) => write!(f, "ignored ({reason})"),
            StapleCheck::Verified(v) => {
                match &v.status {
                    CertStatus::Good => f.write_str("good")?,
                    CertStatus::Unknown => f.write_str("unknown")?,
                    CertStatus::Revoked(r) => {
                        write!(
                            f,
                            "revoked at {}",
                            crate::timefmt::format_time(r.revoked_at)
                        )?;
                        if let Some(reason) = r.reason {
                            write!(f, " ({reason})")?;
                        }
                    }
                }
                match &v.responder {
                    Responder::Issuer => f.write_str(" (signed by the issuer")?,
                    Responder::Delegated { fingerprint } => {
                        write!(f, " (signed by delegated responder {fingerprint}")?
                    }
                }
                write!(
                    f,
                    ", thisUpdate {}",
                    crate::timefmt::format_time(v.this_update)
                )?;
                if let Some(next) = v.next_update {
                    write!(f, ", nextUpdate {}", crate::timefmt::format_time(next))?;
                }
                f.write_str(")")
            }
        }
    }
}

impl serde::Serialize for StapleCheck {
    /// `{"used": bool, "status": "good"|"revoked"|"unknown"|null, "responder":
    /// "issuer"|"delegated"|null, "this_update", "next_update", "revoked_at",
    /// "revocation_reason", "ignored": reason|null, "summary"}`; times RFC 3339.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let time = |t: u64| crate::timefmt::format_time(t);
        let verified = match self {
            StapleCheck::Verified(v) => Some(v),
            StapleCheck::Ignored(_) => None,
        };
        let revocation = self.revocation();
        let mut s = serializer.serialize_struct("StapleCheck", 9)?;
        s.serialize_field("used", &verified.is_some())?;
        s.serialize_field(
            "status",
            &verified.map(|v| match v.status {
                CertStatus::Good => "good",
                CertStatus::Revoked(_) => "revoked",
                CertStatus::Unknown => "unknown",
            }),
        )?;
        s.serialize_field(
            "responder",
            &verified.map(|v| match v.responder {
                Responder::Issuer => "issuer",
                Responder::Delegated { .. } => "delegated",
            }),
        )?;
        s.serialize_field("this_update", &verified.map(|v| time(v.this_update)))?;
        s.serialize_field(
            "next_update",
            &verified.and_then(|v| v.next_update.map(time)),
        )?;
        s.serialize_field("revoked_at", &revocation.map(|r| time(r.revoked_at)))?;
        s.serialize_field(
            "revocation_reason",
            &revocation.and_then(|r| r.reason.map(|c| c.name())),
        )?;
        s.serialize_field("ignored", &self.ignored().map(ToString::to_string))?;
        s.serialize_field("summary", &self.to_string())?;
        s.end()
    }
}

/// Lower-case hex of a serial number, for messages.
pub fn serial_hex(serial: &[u8]) -> String {
    serial.iter().map(|b| format!("{b:02x}")).collect()
}

/// The message of a `revoked` refusal (used by [`crate::tls::Refusal`]).
pub fn describe_revocation(
    serial: &[u8],
    revoked_at: &u64,
    reason: &Option<RevocationReason>,
) -> String {
    let mut out = format!(
        "a verified stapled OCSP response says certificate serial {} was revoked at {}",
        serial_hex(serial),
        crate::timefmt::format_time(*revoked_at)
    );
    if let Some(reason) = reason {
        out.push_str(&format!(" ({reason})"));
    }
    out
}

/// [`check_staple`] for the leaf of a verified path, with the path's first CA (the
/// intermediate that issued the leaf, or the anchor) as the issuer. `None` when nothing was
/// stapled.
pub fn check_path(
    ocsp: &[u8],
    leaf: &webpki::EndEntityCert<'_>,
    path: &webpki::VerifiedPath<'_>,
    algs: &[&'static dyn SignatureVerificationAlgorithm],
    now: UnixTime,
) -> Option<StapleCheck> {
    if ocsp.is_empty() {
        return None;
    }
    let issuer = match path.intermediate_certificates().next() {
        Some(cert) => {
            let der = cert.der();
            match webpki::anchor_from_trusted_cert(&der) {
                Ok(anchor) => anchor.to_owned(),
                Err(e) => return Some(StapleCheck::Ignored(StapleIgnored::Issuer(e))),
            }
        }
        None => path.anchor().to_owned(),
    };
    Some(check_staple(ocsp, leaf, &issuer, algs, now))
}

/// Read the stapled OCSP response `ocsp` for `leaf`, issued by `issuer` (the CA that
/// signed the leaf, as a trust anchor: its subject and key), at `now`, verifying signatures
/// with `algs`. See the module documentation for every check.
pub fn check_staple(
    ocsp: &[u8],
    leaf: &webpki::EndEntityCert<'_>,
    issuer: &TrustAnchor<'_>,
    algs: &[&'static dyn SignatureVerificationAlgorithm],
    now: UnixTime,
) -> StapleCheck {
    match check(ocsp, leaf, issuer, algs, now) {
        Ok(v) => StapleCheck::Verified(v),
        Err(e) => StapleCheck::Ignored(e),
    }
}

fn check(
    ocsp: &[u8],
    leaf: &webpki::EndEntityCert<'_>,
    issuer: &TrustAnchor<'_>,
    algs: &[&'static dyn SignatureVerificationAlgorithm],
    now: UnixTime,
) -> Result<VerifiedStaple, StapleIgnored> {
    let basic = match parse_response(ocsp)? {
        Response::NotSuccessful(code) => return Err(StapleIgnored::NotSuccessful(code)),
        Response::Basic(basic) => basic,
    };
    let issuer_spki = webpki::spki_for_anchor(issuer);
    let responder = basic.signer(issuer_spki.as_ref(), issuer, algs, now)?;

    // The leaf's CertID parts.
    let issuer_name = der::element(tag::SEQUENCE, leaf.issuer());
    let issuer_key = crate::ct::signature::split_spki(issuer_spki.as_ref())
        .map(|(_, key)| key)
        .map_err(|_| StapleIgnored::UnsupportedSignatureAlgorithm)?;
    let serial = leaf.serial();
    let mine: Vec<&SingleResponse<'_>> = basic
        .singles
        .iter()
        .filter(|s| s.names(serial, &issuer_name, issuer_key))
        .collect();
    if mine.is_empty() {
        return Err(StapleIgnored::NotForThisCertificate);
    }

    // Current ones only; a current `revoked` wins over any `good`.
    let now_s = now.as_secs();
    let mut first_stale = None;
    let mut current = Vec::new();
    for single in mine {
        match single.currency(now_s) {
            Ok(()) => current.push(single),
            Err(e) => {
                first_stale.get_or_insert(e);
            }
        }
    }
    let chosen = current
        .iter()
        .find(|s| matches!(s.status, RawStatus::Revoked { .. }))
        .or_else(|| current.first())
        .ok_or_else(|| first_stale.unwrap_or(StapleIgnored::NotForThisCertificate))?;
    let status = match chosen.status {
        RawStatus::Good => CertStatus::Good,
        RawStatus::Unknown => CertStatus::Unknown,
        RawStatus::Revoked { at, reason } => CertStatus::Revoked(Revocation {
            serial: serial.to_vec(),
            revoked_at: at,
            reason: reason.map(RevocationReason),
        }),
    };
    Ok(VerifiedStaple {
        status,
        responder,
        this_update: chosen.this_update,
        next_update: chosen.next_update,
    })
}

impl From<OcspError> for StapleIgnored {
    fn from(e: OcspError) -> Self {
        match e {
            OcspError::Malformed { field, cause } => StapleIgnored::Malformed { field, cause },
            OcspError::BadValue { field } => StapleIgnored::BadValue { field },
            OcspError::BadResponseStatus => StapleIgnored::BadValue {
                field: "responseStatus",
            },
            OcspError::MissingResponseBytes => StapleIgnored::MissingResponseBytes,
            OcspError::UnsupportedResponseType => StapleIgnored::UnsupportedResponseType,
            // Only the SCT reader meets these; any other shape problem is a bad value.
            _ => StapleIgnored::BadValue {
                field: "singleExtensions",
            },
        }
    }
}

impl BasicResponse<'_> {
    /// Whose key verifies the signature: the issuer's, else an authorized delegated
    /// responder's from `certs`.
    fn signer(
        &self,
        issuer_spki: &[u8],
        issuer: &TrustAnchor<'_>,
        algs: &[&'static dyn SignatureVerificationAlgorithm],
        now: UnixTime,
    ) -> Result<Responder, StapleIgnored> {
        let by_issuer = verify_with(
            issuer_spki,
            self.signature_alg,
            self.tbs,
            self.signature,
            algs,
        );
        if by_issuer.is_ok() {
            return Ok(Responder::Issuer);
        }
        let mut unauthorized = None;
        for cert in &self.certs {
            let der = CertificateDer::from(*cert);
            let Ok(ee) = webpki::EndEntityCert::try_from(&der) else {
                continue;
            };
            let spki = ee.subject_public_key_info();
            if verify_with(
                spki.as_ref(),
                self.signature_alg,
                self.tbs,
                self.signature,
                algs,
            )
            .is_err()
            {
                continue;
            }
            match ee.verify_for_usage(
                algs,
                std::slice::from_ref(issuer),
                &[],
                now,
                webpki::KeyUsage::required(OID_KP_OCSP_SIGNING),
                None,
                None,
            ) {
                Ok(_) => {
                    return Ok(Responder::Delegated {
                        fingerprint: CertFingerprint::of_cert(cert),
                    })
                }
                Err(e) => {
                    unauthorized.get_or_insert(e);
                }
            }
        }
        Err(match (unauthorized, by_issuer) {
            (Some(e), _) => StapleIgnored::ResponderNotAuthorized(e),
            (None, Err(SignatureFailure::Unsupported)) => {
                StapleIgnored::UnsupportedSignatureAlgorithm
            }
            (None, _) => StapleIgnored::BadSignature,
        })
    }
}

impl SingleResponse<'_> {
    /// Whether this `CertID` names the certificate with `serial` issued under
    /// `issuer_name` (whole DER `Name`) with key `issuer_key` (BIT STRING contents).
    fn names(&self, serial: &[u8], issuer_name: &[u8], issuer_key: &[u8]) -> bool {
        use sha2::Digest;
        let digest: fn(&[u8]) -> Vec<u8> = match self.hash_alg {
            OID_SHA1 => |d| sha1::Sha1::digest(d).to_vec(),
            OID_SHA256 => |d| sha2::Sha256::digest(d).to_vec(),
            OID_SHA384 => |d| sha2::Sha384::digest(d).to_vec(),
            OID_SHA512 => |d| sha2::Sha512::digest(d).to_vec(),
            _ => return false,
        };
        self.serial == serial
            && digest(issuer_name) == self.name_hash
            && digest(issuer_key) == self.key_hash
    }

    /// `Ok` when current at `now` (Unix seconds), else why not.
    fn currency(&self, now: u64) -> Result<(), StapleIgnored> {
        if self.this_update > now.saturating_add(CLOCK_SKEW_SECS) {
            return Err(StapleIgnored::NotYetValid {
                this_update: self.this_update,
            });
        }
        match self.next_update {
            Some(next) if next < now => Err(StapleIgnored::Expired { next_update: next }),
            Some(_) => Ok(()),
            None if self
                .this_update
                .saturating_add(MAX_AGE_WITHOUT_NEXT_UPDATE_SECS)
                < now =>
            {
                Err(StapleIgnored::TooOld {
                    this_update: self.this_update,
                })
            }
            None => Ok(()),
        }
    }
}

/// Why a signature did not verify under one key.
#[derive(Debug, PartialEq, Eq)]
enum SignatureFailure {
    /// No algorithm of `algs` matches the key type and `signatureAlgorithm`.
    Unsupported,
    /// A matching algorithm rejected the signature.
    Invalid,
}

/// Verify `signature` over `message` with the key of DER SPKI `spki`, by the algorithm of
/// `algs` whose key and signature `AlgorithmIdentifier`s match (as webpki matches them).
fn verify_with(
    spki: &[u8],
    signature_alg: &[u8],
    message: &[u8],
    signature: &[u8],
    algs: &[&'static dyn SignatureVerificationAlgorithm],
) -> Result<(), SignatureFailure> {
    let (key_alg, key) =
        crate::ct::signature::split_spki(spki).map_err(|_| SignatureFailure::Unsupported)?;
    let mut matched = false;
    for alg in algs.iter().filter(|a| {
        a.public_key_alg_id().as_ref() == key_alg && a.signature_alg_id().as_ref() == signature_alg
    }) {
        matched = true;
        if alg.verify_signature(key, message, signature).is_ok() {
            return Ok(());
        }
    }
    Err(if matched {
        SignatureFailure::Invalid
    } else {
        SignatureFailure::Unsupported
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{
        default_logs, IssuedLeaf, LeafIssuer, OcspSigner, OcspSpec, PkiOptions, SctSpec, TestPki,
    };
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::OnceLock;
    use time::Duration;

    fn pki() -> &'static TestPki {
        static PKI: OnceLock<TestPki> = OnceLock::new();
        PKI.get_or_init(|| TestPki::generate(&PkiOptions::default()).unwrap())
    }

    fn algs() -> &'static [&'static dyn SignatureVerificationAlgorithm] {
        crate::ct::signature::default_algorithms()
    }

    fn at(t: time::OffsetDateTime) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(t.unix_timestamp()).unwrap(),
        ))
    }

    fn issue(edit: impl FnOnce(crate::pki::LeafSpec) -> crate::pki::LeafSpec) -> IssuedLeaf {
        let p = pki();
        let ts = p.now() - Duration::minutes(5);
        let spec = p
            .leaf_spec(IpAddr::V4(Ipv4Addr::LOCALHOST))
            .embed(SctSpec::at(default_logs::ALPHA, ts));
        p.issue_leaf(&edit(spec)).unwrap()
    }

    /// Check `leaf`'s own staple (or `ocsp`) against its real issuer at the PKI's now.
    fn run(leaf: &IssuedLeaf, ocsp: Option<&[u8]>) -> StapleCheck {
        let p = pki();
        let issuer_der = p.ca(leaf.issuer).unwrap().der().clone();
        let anchor = webpki::anchor_from_trusted_cert(&issuer_der).unwrap();
        let ee = webpki::EndEntityCert::try_from(leaf.leaf()).unwrap();
        let ocsp = ocsp.unwrap_or_else(|| leaf.ocsp_response.as_deref().unwrap());
        check_staple(ocsp, &ee, &anchor, algs(), at(p.now()))
    }

    fn revoked_spec() -> OcspSpec {
        OcspSpec::revoked(pki().now() - Duration::minutes(30), Some(1))
    }

    #[test]
    fn good_staple_signed_by_the_issuer_verifies() {
        let leaf = issue(|s| s.with_ocsp(OcspSpec::default()));
        let check = run(&leaf, None);
        let StapleCheck::Verified(v) = &check else {
            panic!("{check:?}");
        };
        assert_eq!(v.status, CertStatus::Good);
        assert_eq!(v.responder, Responder::Issuer);
        assert!(v.next_update.is_some());
        assert_eq!(check.revocation(), None);
        assert!(check.to_string().starts_with("good (signed by the issuer"));
    }

    #[test]
    fn revoked_by_the_issuer_and_by_the_root_issuer() {
        for issuer in [LeafIssuer::Intermediate, LeafIssuer::Root] {
            let leaf = issue(|s| s.issued_by(issuer).with_ocsp(revoked_spec()));
            let check = run(&leaf, None);
            let r = check.revocation().unwrap_or_else(|| panic!("{check:?}"));
            let ee = webpki::EndEntityCert::try_from(leaf.leaf()).unwrap();
            assert_eq!(r.serial, ee.serial());
            assert_eq!(
                r.revoked_at,
                u64::try_from((pki().now() - Duration::minutes(30)).unix_timestamp()).unwrap()
            );
            assert_eq!(r.reason, Some(RevocationReason(1)));
            assert!(check.to_string().contains("keyCompromise (1)"), "{check}");
        }
    }

    #[test]
    fn revoked_by_a_delegated_responder() {
        let leaf = issue(|s| s.with_ocsp(revoked_spec().signed_by(OcspSigner::DelegatedResponder)));
        let check = run(&leaf, None);
        assert!(check.revocation().is_some(), "{check:?}");
        assert!(matches!(
            check,
            StapleCheck::Verified(VerifiedStaple {
                responder: Responder::Delegated { .. },
                ..
            })
        ));
    }

    #[test]
    fn unauthorized_or_bad_signatures_are_ignored() {
        type Expected = fn(&StapleIgnored) -> bool;
        let cases: [(OcspSigner, Expected); 5] = [
            (OcspSigner::WrongKey, |e| *e == StapleIgnored::BadSignature),
            (OcspSigner::GarbageSignature, |e| {
                *e == StapleIgnored::BadSignature
            }),
            (OcspSigner::EmptySignature, |e| {
                *e == StapleIgnored::BadSignature
            }),
            (OcspSigner::ResponderNotIssuedByIssuer, |e| {
                matches!(e, StapleIgnored::ResponderNotAuthorized(_))
            }),
            (OcspSigner::ResponderWithoutOcspEku, |e| {
                matches!(
                    e,
                    StapleIgnored::ResponderNotAuthorized(
                        webpki::Error::RequiredEkuNotFoundContext(_)
                    )
                )
            }),
        ];
        for (signer, ok) in cases {
            let leaf = issue(|s| s.with_ocsp(revoked_spec().signed_by(signer)));
            let check = run(&leaf, None);
            match check.ignored() {
                Some(e) if ok(e) => {}
                _ => panic!("{signer:?}: {check:?}"),
            }
            assert_eq!(check.revocation(), None);
        }
    }

    #[test]
    fn staple_for_another_leaf_is_ignored() {
        let leaf = issue(|s| s.with_ocsp(revoked_spec().for_serial(vec![0x42])));
        assert_eq!(
            run(&leaf, None),
            StapleCheck::Ignored(StapleIgnored::NotForThisCertificate)
        );
        // Another leaf's genuine revoked staple.
        let other = issue(|s| s.with_ocsp(revoked_spec()));
        let leaf = issue(|s| s);
        assert_eq!(
            run(&leaf, other.ocsp_response.as_deref()),
            StapleCheck::Ignored(StapleIgnored::NotForThisCertificate)
        );
        // The rogue intermediate's staple, checked against the honest intermediate: the
        // signature fails first.
        let rogue = issue(|s| {
            s.issued_by(LeafIssuer::RogueIntermediate)
                .with_ocsp(revoked_spec())
        });
        let p = pki();
        let anchor = webpki::anchor_from_trusted_cert(p.intermediate().der()).unwrap();
        let ee = webpki::EndEntityCert::try_from(rogue.leaf()).unwrap();
        assert_eq!(
            check_staple(
                rogue.ocsp_response.as_deref().unwrap(),
                &ee,
                &anchor,
                algs(),
                at(p.now())
            ),
            StapleCheck::Ignored(StapleIgnored::BadSignature)
        );
    }

    #[test]
    fn stale_or_future_staples_are_ignored() {
        let now = pki().now();
        // nextUpdate (thisUpdate + 7 days) passed a day ago.
        let stale = issue(|s| {
            let mut s = s.with_ocsp(revoked_spec());
            s.ocsp_this_update = Some(now - Duration::days(8));
            s
        });
        assert!(matches!(
            run(&stale, None),
            StapleCheck::Ignored(StapleIgnored::Expired { .. })
        ));
        let future = issue(|s| {
            let mut s = s.with_ocsp(revoked_spec());
            s.ocsp_this_update = Some(now + Duration::hours(1));
            s
        });
        assert!(matches!(
            run(&future, None),
            StapleCheck::Ignored(StapleIgnored::NotYetValid { .. })
        ));
        // Within the skew: fine.
        let skewed = issue(|s| {
            let mut s = s.with_ocsp(revoked_spec());
            s.ocsp_this_update = Some(now + Duration::minutes(2));
            s
        });
        assert!(run(&skewed, None).revocation().is_some());
        // No nextUpdate: 7 days of validity from thisUpdate.
        let undated_old = issue(|s| {
            let mut s = s.with_ocsp(revoked_spec().without_next_update());
            s.ocsp_this_update = Some(now - Duration::days(8));
            s
        });
        assert!(matches!(
            run(&undated_old, None),
            StapleCheck::Ignored(StapleIgnored::TooOld { .. })
        ));
        let undated_fresh = issue(|s| s.with_ocsp(revoked_spec().without_next_update()));
        assert!(run(&undated_fresh, None).revocation().is_some());
    }

    #[test]
    fn unknown_status_verifies_but_does_not_revoke() {
        let leaf = issue(|s| {
            s.with_ocsp(OcspSpec {
                status: crate::pki::OcspCertStatus::Unknown,
                ..OcspSpec::default()
            })
        });
        let check = run(&leaf, None);
        assert!(matches!(
            &check,
            StapleCheck::Verified(VerifiedStaple {
                status: CertStatus::Unknown,
                ..
            })
        ));
        assert_eq!(check.revocation(), None);
    }

    #[test]
    fn malformed_and_unsuccessful_staples_are_typed() {
        let leaf = issue(|s| s.with_ocsp(revoked_spec()));
        assert!(matches!(
            run(&leaf, Some(&[0xde, 0xad, 0xbe, 0xef])),
            StapleCheck::Ignored(StapleIgnored::Malformed {
                field: "OCSPResponse",
                ..
            })
        ));
        assert_eq!(
            run(&leaf, Some(&[0x30, 0x03, 0x0a, 0x01, 0x03])),
            StapleCheck::Ignored(StapleIgnored::NotSuccessful(3))
        );
        assert_eq!(
            run(&leaf, Some(&[0x30, 0x03, 0x0a, 0x01, 0x00])),
            StapleCheck::Ignored(StapleIgnored::MissingResponseBytes)
        );
        // Every prefix is ignored, and no single-bit corruption of a revoked staple still
        // revokes (every byte is either structure or signed or the signature).
        assert!(run(&leaf, None).revocation().is_some());
        let resp = leaf.ocsp_response.clone().unwrap();
        for n in 0..resp.len() {
            assert!(
                run(&leaf, Some(&resp[..n])).ignored().is_some(),
                "prefix {n}"
            );
        }
        let mut m = resp.clone();
        for i in 0..resp.len() {
            for bit in [0x01u8, 0x80] {
                m[i] ^= bit;
                let check = run(&leaf, Some(&m));
                assert!(
                    check.revocation().is_none(),
                    "byte {i} ^ {bit:#x}: {check:?}"
                );
                m[i] ^= bit;
            }
        }
    }

    #[test]
    fn json_summary_names_the_reason() {
        let leaf = issue(|s| s.with_ocsp(revoked_spec().signed_by(OcspSigner::WrongKey)));
        let json = serde_json::to_value(run(&leaf, None)).unwrap();
        assert_eq!(json["used"], false);
        assert_eq!(json["status"], serde_json::Value::Null);
        assert!(json["ignored"]
            .as_str()
            .unwrap()
            .contains("signature does not verify"));
        let leaf = issue(|s| s.with_ocsp(revoked_spec()));
        let json = serde_json::to_value(run(&leaf, None)).unwrap();
        assert_eq!(json["used"], true);
        assert_eq!(json["status"], "revoked");
        assert_eq!(json["responder"], "issuer");
        assert_eq!(json["revocation_reason"], "keyCompromise");
    }

    #[test]
    fn reason_names() {
        assert_eq!(RevocationReason(1).to_string(), "keyCompromise (1)");
        assert_eq!(RevocationReason(7).name(), "unassigned");
        assert_eq!(serial_hex(&[0x01, 0xab]), "01ab");
    }
}
