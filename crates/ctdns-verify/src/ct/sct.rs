//! The RFC 6962 v1 `SignedCertificateTimestamp` wire format.
//!
//! An SCT list arrives as the TLS-encoded `SignedCertificateTimestampList`
//! (`u16 list_len || (u16 sct_len || sct)*`). This module parses it without
//! panicking on any input, skips SCTs of unknown versions (RFC 6962 §3.3:
//! clients must ignore versions they do not understand) and can encode SCTs,
//! which the test PKI uses to mint its own.

use std::fmt;

/// The SHA-256 of a log's DER `SubjectPublicKeyInfo`: how an SCT names its log.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogId(pub [u8; 32]);

impl LogId {
    /// The log id of a log whose public key is the DER `SubjectPublicKeyInfo` `spki`.
    pub fn from_spki(spki: &[u8]) -> Self {
        Self(crate::ct::sha256(spki))
    }

    /// Standard base64, as log lists write it.
    pub fn to_base64(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }
}

impl fmt::Debug for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LogId({})", self.to_base64())
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// RFC 5246 `HashAlgorithm` value for SHA-256, the only one RFC 6962 allows.
pub const HASH_SHA256: u8 = 4;
/// RFC 5246 `SignatureAlgorithm` value for RSA (PKCS#1 v1.5).
pub const SIG_RSA: u8 = 1;
/// RFC 5246 `SignatureAlgorithm` value for ECDSA.
pub const SIG_ECDSA: u8 = 3;

/// One parsed v1 SCT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sct {
    /// The log that issued it.
    pub log_id: LogId,
    /// Milliseconds since the Unix epoch, as signed by the log.
    pub timestamp: u64,
    /// The opaque `CtExtensions` bytes (e.g. static-ct-api `leaf_index`), signed verbatim.
    pub extensions: Vec<u8>,
    /// `HashAlgorithm` of the signature (4 = SHA-256).
    pub hash_alg: u8,
    /// `SignatureAlgorithm` of the signature (1 = RSA, 3 = ECDSA).
    pub sig_alg: u8,
    /// The signature bytes (DER `Ecdsa-Sig-Value` for ECDSA).
    pub signature: Vec<u8>,
}

/// Why an SCT list could not be parsed. Each variant names the field at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SctListError {
    /// The outer `u16` list length is missing or disagrees with the bytes present.
    #[error("SCT list: list length {declared} does not match the {actual} bytes present")]
    ListLength {
        /// Length the list declares.
        declared: usize,
        /// Bytes actually present after the length.
        actual: usize,
    },
    /// The list is shorter than its two-byte length prefix.
    #[error("SCT list: truncated before the list length")]
    MissingListLength,
    /// An SCT's `u16` length prefix runs past the end of the list.
    #[error("SCT list: SCT #{index} length runs past the end of the list")]
    SctLength {
        /// Position of the SCT in the list.
        index: usize,
    },
    /// An SCT with a zero length (forbidden: `SerializedSCT<1..2^16-1>`).
    #[error("SCT list: SCT #{index} is empty")]
    EmptySct {
        /// Position of the SCT in the list.
        index: usize,
    },
    /// A v1 SCT whose body is malformed; `field` names the field that did not parse.
    #[error("SCT list: SCT #{index}: malformed field `{field}`")]
    Field {
        /// Position of the SCT in the list.
        index: usize,
        /// The SCT field that could not be read.
        field: &'static str,
    },
    /// An empty list (forbidden: `SerializedSCT sct_list <1..2^16-1>`).
    #[error("SCT list: no SCTs")]
    Empty,
}

/// The SCTs of a list, plus how many of unknown versions were skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SctList {
    /// The v1 SCTs, in list order.
    pub scts: Vec<Sct>,
    /// SCTs whose version was not v1 and were skipped as RFC 6962 requires.
    pub skipped_unknown_version: usize,
}

/// Parse a TLS-encoded `SignedCertificateTimestampList`.
pub fn parse_sct_list(input: &[u8]) -> Result<SctList, SctListError> {
    let mut r = Reader::new(input);
    let declared = r.u16().ok_or(SctListError::MissingListLength)? as usize;
    if declared != r.remaining() {
        return Err(SctListError::ListLength {
            declared,
            actual: r.remaining(),
        });
    }
    if declared == 0 {
        return Err(SctListError::Empty);
    }
    let mut out = SctList::default();
    let mut index = 0;
    while r.remaining() > 0 {
        let len = r.u16().ok_or(SctListError::SctLength { index })? as usize;
        let body = r.take(len).ok_or(SctListError::SctLength { index })?;
        if body.is_empty() {
            return Err(SctListError::EmptySct { index });
        }
        if body[0] != 0 {
            out.skipped_unknown_version += 1;
        } else {
            out.scts.push(parse_sct(body, index)?);
        }
        index += 1;
    }
    Ok(out)
}

/// Parse one serialized v1 SCT (the body of a list entry, version byte first).
pub fn parse_sct(body: &[u8], index: usize) -> Result<Sct, SctListError> {
    let field = |field| SctListError::Field { index, field };
    let mut r = Reader::new(body);
    let version = r.u8().ok_or(field("version"))?;
    if version != 0 {
        return Err(field("version"));
    }
    let id = r.take(32).ok_or(field("id"))?;
    let mut log_id = [0u8; 32];
    log_id.copy_from_slice(id);
    let timestamp = r.u64().ok_or(field("timestamp"))?;
    let ext_len = r.u16().ok_or(field("extensions"))? as usize;
    let extensions = r.take(ext_len).ok_or(field("extensions"))?.to_vec();
    let hash_alg = r.u8().ok_or(field("signature.hash"))?;
    let sig_alg = r.u8().ok_or(field("signature.signature"))?;
    let sig_len = r.u16().ok_or(field("signature"))? as usize;
    let signature = r.take(sig_len).ok_or(field("signature"))?.to_vec();
    if r.remaining() != 0 {
        return Err(field("trailing data"));
    }
    if signature.is_empty() {
        return Err(field("signature"));
    }
    Ok(Sct {
        log_id: LogId(log_id),
        timestamp,
        extensions,
        hash_alg,
        sig_alg,
        signature,
    })
}

impl Sct {
    /// Serialize this SCT as a v1 `SignedCertificateTimestamp` (no list framing).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(47 + self.extensions.len() + self.signature.len());
        out.push(0);
        out.extend_from_slice(&self.log_id.0);
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        put_u16_len(&mut out, &self.extensions);
        out.push(self.hash_alg);
        out.push(self.sig_alg);
        put_u16_len(&mut out, &self.signature);
        out
    }
}

/// Serialize SCTs as a `SignedCertificateTimestampList`.
pub fn encode_sct_list<'a>(scts: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut body = Vec::new();
    for sct in scts {
        put_u16_len(&mut body, sct);
    }
    let mut out = Vec::with_capacity(body.len() + 2);
    put_u16_len(&mut out, &body);
    out
}

fn put_u16_len(out: &mut Vec<u8>, bytes: &[u8]) {
    // Callers only pass SCT-sized data; saturate instead of panicking on absurd input.
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&bytes[..usize::from(len)]);
}

/// A bounds-checked big-endian byte reader.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }
    fn remaining(&self) -> usize {
        self.buf.len()
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_be_bytes(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Sct {
        Sct {
            log_id: LogId([7; 32]),
            timestamp: 1_700_000_000_000,
            extensions: vec![0, 0, 0, 0, 0, 5],
            hash_alg: HASH_SHA256,
            sig_alg: SIG_ECDSA,
            signature: vec![0x30, 0x02, 0x01, 0x00],
        }
    }

    #[test]
    fn round_trip() {
        let sct = sample();
        let enc = sct.encode();
        let list = encode_sct_list([enc.as_slice()]);
        let parsed = parse_sct_list(&list).unwrap();
        assert_eq!(parsed.scts, vec![sct]);
        assert_eq!(parsed.skipped_unknown_version, 0);
    }

    #[test]
    fn unknown_version_is_skipped() {
        let v1 = sample().encode();
        let v2 = [1u8, 2, 3];
        let list = encode_sct_list([v2.as_slice(), v1.as_slice()]);
        let parsed = parse_sct_list(&list).unwrap();
        assert_eq!(parsed.scts.len(), 1);
        assert_eq!(parsed.skipped_unknown_version, 1);
    }

    #[test]
    fn malformed_inputs_are_typed_errors() {
        assert_eq!(parse_sct_list(&[]), Err(SctListError::MissingListLength));
        assert_eq!(parse_sct_list(&[0, 0]), Err(SctListError::Empty));
        assert!(matches!(
            parse_sct_list(&[0, 5, 0]),
            Err(SctListError::ListLength {
                declared: 5,
                actual: 1
            })
        ));
        assert_eq!(
            parse_sct_list(&[0, 2, 0, 0]),
            Err(SctListError::EmptySct { index: 0 })
        );
        assert_eq!(
            parse_sct_list(&[0, 3, 0, 9, 0]),
            Err(SctListError::SctLength { index: 0 })
        );
        let mut enc = sample().encode();
        enc.pop();
        let list = encode_sct_list([enc.as_slice()]);
        assert_eq!(
            parse_sct_list(&list),
            Err(SctListError::Field {
                index: 0,
                field: "signature"
            })
        );
        let list = encode_sct_list([[0u8; 10].as_slice()]);
        assert_eq!(
            parse_sct_list(&list),
            Err(SctListError::Field {
                index: 0,
                field: "id"
            })
        );
    }

    #[test]
    fn never_panics_on_prefixes() {
        let enc = sample().encode();
        let list = encode_sct_list([enc.as_slice(), enc.as_slice()]);
        for n in 0..list.len() {
            let _ = parse_sct_list(&list[..n]);
        }
    }
}
