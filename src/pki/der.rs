//! DER building blocks for the test PKI, and PEM encoding.
//!
//! rcgen builds certificates but has no OCSP support, and the log keys need their
//! `SubjectPublicKeyInfo` written out; these few helpers cover exactly that, on top of the
//! one DER reader and writer of the crate (`crate::ct::der`). The reader here only adapts
//! it to walking TLVs (to cut the `TBSCertificate` out of a certificate the generator just
//! built).

use base64::Engine;
use time::OffsetDateTime;

use super::PkiError;

pub(crate) use crate::ct::der::tag::{
    BIT_STRING as TAG_BIT_STRING, ENUMERATED as TAG_ENUMERATED,
    GENERALIZED_TIME as TAG_GENERALIZED_TIME, INTEGER as TAG_INTEGER, NULL as TAG_NULL,
    OCTET_STRING as TAG_OCTET_STRING, OID as TAG_OID, SEQUENCE as TAG_SEQUENCE,
};

/// One TLV: `tag || length || content`, with a minimal definite length (the CT reader's
/// own writer, `crate::ct::der::element`).
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    crate::ct::der::element(tag, content)
}

/// A SEQUENCE of already-encoded elements.
pub(crate) fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(TAG_SEQUENCE, &parts.concat())
}

/// An explicit context tag `[n]` around already-encoded elements.
pub(crate) fn explicit(n: u8, content: &[u8]) -> Vec<u8> {
    tlv(0xa0 | n, content)
}

/// An OBJECT IDENTIFIER from its arcs (the first two arcs must be valid, as they are for
/// every constant this crate passes).
pub(crate) fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = Vec::new();
    let (first, rest) = match arcs {
        [a, b, rest @ ..] => (a.saturating_mul(40).saturating_add(*b), rest),
        [a] => (a.saturating_mul(40), &[][..]),
        [] => (0, &[][..]),
    };
    for arc in std::iter::once(first).chain(rest.iter().copied()) {
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut v = arc >> 7;
        while v > 0 {
            groups.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        body.extend(groups.iter().rev());
    }
    tlv(TAG_OID, &body)
}

/// An OCTET STRING.
pub(crate) fn octet_string(content: &[u8]) -> Vec<u8> {
    tlv(TAG_OCTET_STRING, content)
}

/// A BIT STRING with no unused bits.
pub(crate) fn bit_string(content: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(content.len() + 1);
    body.push(0);
    body.extend_from_slice(content);
    tlv(TAG_BIT_STRING, &body)
}

/// NULL.
pub(crate) fn null() -> Vec<u8> {
    tlv(TAG_NULL, &[])
}

/// GeneralizedTime `YYYYMMDDHHMMSSZ` (UTC, whole seconds), as RFC 5280 and RFC 6960 require.
pub(crate) fn generalized_time(t: OffsetDateTime, what: &'static str) -> Result<Vec<u8>, PkiError> {
    let t = t.to_offset(time::UtcOffset::UTC);
    if !(0..=9999).contains(&t.year()) {
        return Err(PkiError::Time { what });
    }
    let s = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    Ok(tlv(TAG_GENERALIZED_TIME, s.as_bytes()))
}

/// One DER element as read by [`read_tlv`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    /// The identifier octet.
    pub tag: u8,
    /// The whole element: header and content.
    pub whole: &'a [u8],
    /// The content octets.
    pub content: &'a [u8],
}

/// Reads one TLV at the start of `input` with the CT module's strict DER reader: returns
/// it and the bytes after it; `None` on anything malformed or truncated.
pub(crate) fn read_tlv(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let t = crate::ct::der::Reader::new(input).read_any().ok()?;
    Some((
        Tlv {
            tag: t.tag,
            whole: t.element,
            content: t.value,
        },
        input.get(t.end()..)?,
    ))
}

/// The elements of a constructed value's content, in order; `None` if any is malformed.
#[cfg(test)]
pub(crate) fn children(mut input: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (tlv, rest) = read_tlv(input)?;
        out.push(tlv);
        input = rest;
    }
    Some(out)
}

/// The DER `TBSCertificate` (whole TLV) of a DER certificate.
pub(crate) fn tbs_of(cert: &[u8]) -> Option<&[u8]> {
    let (cert, _) = read_tlv(cert)?;
    if cert.tag != TAG_SEQUENCE {
        return None;
    }
    let (tbs, _) = read_tlv(cert.content)?;
    (tbs.tag == TAG_SEQUENCE).then_some(tbs.whole)
}

/// PEM-encode `der` under `label`, 64 base64 characters per line.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    let mut rest = b64.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_encoding_matches_known_values() {
        // 1.3.6.1.4.1.11129.2.4.2 (embedded SCT list), as in every CT certificate.
        assert_eq!(
            oid(&[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2]),
            vec![0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02]
        );
        // 1.2.840.10045.2.1 (id-ecPublicKey)
        assert_eq!(
            oid(&[1, 2, 840, 10045, 2, 1]),
            vec![0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]
        );
    }

    #[test]
    fn long_lengths_round_trip() {
        for n in [0usize, 1, 127, 128, 255, 256, 65_535, 70_000] {
            let content = vec![0xab; n];
            let enc = tlv(TAG_OCTET_STRING, &content);
            let (got, rest) = read_tlv(&enc).unwrap();
            assert_eq!(got.tag, TAG_OCTET_STRING);
            assert_eq!(got.whole.len(), enc.len());
            assert_eq!(got.content, content.as_slice());
            assert!(rest.is_empty());
        }
    }

    #[test]
    fn reader_rejects_truncation() {
        let enc = tlv(TAG_SEQUENCE, &[1, 2, 3, 4]);
        for n in 0..enc.len() {
            assert!(read_tlv(&enc[..n]).is_none(), "prefix {n} accepted");
        }
        assert!(
            read_tlv(&[0x30, 0x80]).is_none(),
            "indefinite length accepted"
        );
    }

    #[test]
    fn generalized_time_format() {
        let t = time::macros::datetime!(2026-03-04 05:06:07.89 UTC);
        assert_eq!(
            generalized_time(t, "t").unwrap(),
            tlv(TAG_GENERALIZED_TIME, b"20260304050607Z")
        );
    }

    #[test]
    fn pem_wraps_at_64() {
        let p = pem("CERTIFICATE", &[0u8; 100]);
        let lines: Vec<&str> = p.lines().collect();
        assert_eq!(lines.first(), Some(&"-----BEGIN CERTIFICATE-----"));
        assert_eq!(lines.last(), Some(&"-----END CERTIFICATE-----"));
        assert_eq!(lines.get(1).map(|l| l.len()), Some(64));
        let body: String = lines[1..lines.len() - 1].concat();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        assert_eq!(decoded, vec![0u8; 100]);
    }
}
