//! A minimal, panic-free DER reader, and the few writers the precertificate splice and the
//! test PKI (`crate::pki`: log SPKIs, OCSP responses, PEM) need.
//!
//! Written by hand on purpose: rebuilding the TBSCertificate a log signed for an
//! embedded SCT means removing one extension and recomputing three enclosing lengths
//! while keeping **every other byte** exactly as the CA encoded it. That needs exact
//! byte offsets of each element inside its parent, which general-purpose ASN.1 crates
//! hide behind decode/re-encode round trips (and a re-encode can silently change bytes
//! the log signed).
//!
//! Scope: single-byte tags (tag numbers 0–30, all X.509 and OCSP use), definite
//! lengths in short form or long form of at most 4 length bytes, minimal length
//! encoding as DER requires. Indefinite lengths, high tag numbers, non-minimal lengths
//! and lengths running past the end of the input are typed errors. Nothing here
//! indexes out of bounds or panics on any input.

/// Universal and context-specific tag bytes used by the CT parsers.
pub mod tag {
    /// `BOOLEAN`.
    pub const BOOLEAN: u8 = 0x01;
    /// `INTEGER`.
    pub const INTEGER: u8 = 0x02;
    /// `BIT STRING`.
    pub const BIT_STRING: u8 = 0x03;
    /// `OCTET STRING`.
    pub const OCTET_STRING: u8 = 0x04;
    /// `NULL`.
    pub const NULL: u8 = 0x05;
    /// `OBJECT IDENTIFIER`.
    pub const OID: u8 = 0x06;
    /// `ENUMERATED`.
    pub const ENUMERATED: u8 = 0x0a;
    /// `UTCTime`.
    pub const UTC_TIME: u8 = 0x17;
    /// `GeneralizedTime`.
    pub const GENERALIZED_TIME: u8 = 0x18;
    /// `SEQUENCE` / `SEQUENCE OF` (constructed).
    pub const SEQUENCE: u8 = 0x30;
    /// `SET` / `SET OF` (constructed).
    pub const SET: u8 = 0x31;

    /// A context-specific tag `[n]` (`n` < 31), constructed (EXPLICIT or implicit
    /// constructed types) or primitive (implicit primitive types).
    pub const fn context(n: u8, constructed: bool) -> u8 {
        let form = if constructed { 0x20 } else { 0 };
        0x80 | form | (n & 0x1f)
    }
}

/// Why DER input could not be read. Each variant names the encoding rule broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DerError {
    /// The input ended inside a tag/length header.
    #[error("DER: input ends inside an element header")]
    Truncated,
    /// An element was required but the input (or its parent) is exhausted.
    #[error("DER: expected an element with tag {expected:#04x}, found end of input")]
    MissingElement {
        /// The tag that was expected.
        expected: u8,
    },
    /// A multi-byte (high tag number) tag; never used by X.509 or OCSP.
    #[error("DER: high tag number form is not supported")]
    HighTagNumber,
    /// BER indefinite length (`0x80`), forbidden in DER.
    #[error("DER: indefinite length is forbidden")]
    IndefiniteLength,
    /// A long-form length with more than 4 length bytes.
    #[error("DER: length field of {0} bytes exceeds the 4-byte limit")]
    LengthTooLong(u8),
    /// A length not in its shortest form (DER requires minimal encoding).
    #[error("DER: length is not minimally encoded")]
    NonMinimalLength,
    /// The declared length runs past the end of the enclosing input.
    #[error("DER: declared length {declared} exceeds the {available} bytes available")]
    LengthPastEnd {
        /// Length the header declares.
        declared: usize,
        /// Bytes actually left after the header.
        available: usize,
    },
    /// An element has a different tag than the structure requires.
    #[error("DER: expected tag {expected:#04x}, found {found:#04x}")]
    UnexpectedTag {
        /// The tag the structure requires here.
        expected: u8,
        /// The tag actually present.
        found: u8,
    },
    /// Bytes left over after the last element of a structure.
    #[error("DER: {0} trailing bytes after the last element")]
    TrailingData(usize),
    /// A time outside the years 0000–9999 that `GeneralizedTime` can write.
    #[error("DER: year {0} does not fit a GeneralizedTime")]
    YearOutOfRange(i32),
}

/// One DER element: its tag, where it starts, and its value bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag byte.
    pub tag: u8,
    /// Offset of the tag byte within the input the [`Reader`] was created on.
    pub offset: usize,
    /// The whole element: tag, length and value.
    pub element: &'a [u8],
    /// The value (contents) bytes only.
    pub value: &'a [u8],
}

impl Tlv<'_> {
    /// Offset just past the end of this element within the reader's input.
    pub fn end(&self) -> usize {
        self.offset.saturating_add(self.element.len())
    }

    /// Length of the tag+length header.
    pub fn header_len(&self) -> usize {
        self.element.len().saturating_sub(self.value.len())
    }
}

/// A forward-only cursor over a sequence of DER elements.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `input` (typically the value of a constructed element).
    pub fn new(input: &'a [u8]) -> Self {
        Self { input, pos: 0 }
    }

    /// True when every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.input.len()
    }

    /// Offset of the next unread byte.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The tag of the next element, if any, without consuming it.
    pub fn peek_tag(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    /// Read the next element, whatever its tag.
    pub fn read_any(&mut self) -> Result<Tlv<'a>, DerError> {
        let rest = self.input.get(self.pos..).unwrap_or(&[]);
        let (tag, header_len, len) = parse_header(rest)?;
        let available = rest.len().saturating_sub(header_len);
        let end = header_len
            .checked_add(len)
            .filter(|&end| end <= rest.len())
            .ok_or(DerError::LengthPastEnd {
                declared: len,
                available,
            })?;
        let element = rest.get(..end).ok_or(DerError::Truncated)?;
        let value = element.get(header_len..).ok_or(DerError::Truncated)?;
        let tlv = Tlv {
            tag,
            offset: self.pos,
            element,
            value,
        };
        self.pos = self.pos.saturating_add(end);
        Ok(tlv)
    }

    /// Read the next element, which must carry `expected`.
    pub fn read(&mut self, expected: u8) -> Result<Tlv<'a>, DerError> {
        match self.peek_tag() {
            None => Err(DerError::MissingElement { expected }),
            Some(found) if found != expected => Err(DerError::UnexpectedTag { expected, found }),
            Some(_) => self.read_any(),
        }
    }

    /// Read the next element if it carries `tag`; leave the reader untouched otherwise.
    pub fn read_optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.read_any().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Require that every byte has been consumed.
    pub fn finish(&self) -> Result<(), DerError> {
        match self.input.len().saturating_sub(self.pos) {
            0 => Ok(()),
            n => Err(DerError::TrailingData(n)),
        }
    }
}

/// Parse `input` as exactly one element with tag `expected` and nothing after it.
pub fn parse_single(input: &[u8], expected: u8) -> Result<Tlv<'_>, DerError> {
    let mut r = Reader::new(input);
    let tlv = r.read(expected)?;
    r.finish()?;
    Ok(tlv)
}

/// Decode a tag/length header: `(tag, header_len, value_len)`.
fn parse_header(input: &[u8]) -> Result<(u8, usize, usize), DerError> {
    let (&tag, rest) = input.split_first().ok_or(DerError::Truncated)?;
    if tag & 0x1f == 0x1f {
        return Err(DerError::HighTagNumber);
    }
    let (&first, rest) = rest.split_first().ok_or(DerError::Truncated)?;
    if first < 0x80 {
        return Ok((tag, 2, usize::from(first)));
    }
    if first == 0x80 {
        return Err(DerError::IndefiniteLength);
    }
    let n = first & 0x7f;
    if n > 4 {
        return Err(DerError::LengthTooLong(n));
    }
    let bytes = rest.get(..usize::from(n)).ok_or(DerError::Truncated)?;
    if bytes.first() == Some(&0) {
        return Err(DerError::NonMinimalLength);
    }
    let len = bytes.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    if len < 0x80 {
        return Err(DerError::NonMinimalLength);
    }
    let len = usize::try_from(len).map_err(|_| DerError::LengthPastEnd {
        declared: usize::MAX,
        available: input.len(),
    })?;
    Ok((tag, 2 + usize::from(n), len))
}

/// Append a DER tag/length header for a value of `len` bytes (minimal length form).
pub fn write_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let be = len.to_be_bytes();
    let skip = be.iter().take_while(|&&b| b == 0).count();
    let significant = be.get(skip..).unwrap_or(&[]);
    out.push(0x80 | significant.len() as u8);
    out.extend_from_slice(significant);
}

/// Append a whole element: header then `value`.
pub fn write_element(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    write_header(out, tag, value.len());
    out.extend_from_slice(value);
}

/// Encode one element into a fresh buffer.
pub fn element(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    write_element(&mut out, tag, value);
    out
}

/// A SEQUENCE of already-encoded elements.
pub fn seq(parts: &[&[u8]]) -> Vec<u8> {
    element(tag::SEQUENCE, &parts.concat())
}

/// An explicit context tag `[n]` (constructed) around already-encoded elements.
pub fn explicit(n: u8, content: &[u8]) -> Vec<u8> {
    element(tag::context(n, true), content)
}

/// An OBJECT IDENTIFIER from its arcs. The first two arcs are combined as `40 * a + b`
/// without range checks (every constant this crate passes is a valid OID).
pub fn oid(arcs: &[u64]) -> Vec<u8> {
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
    element(tag::OID, &body)
}

/// An OCTET STRING.
pub fn octet_string(content: &[u8]) -> Vec<u8> {
    element(tag::OCTET_STRING, content)
}

/// A BIT STRING with no unused bits.
pub fn bit_string(content: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(content.len() + 1);
    body.push(0);
    body.extend_from_slice(content);
    element(tag::BIT_STRING, &body)
}

/// NULL.
pub fn null() -> Vec<u8> {
    element(tag::NULL, &[])
}

/// GeneralizedTime `YYYYMMDDHHMMSSZ` (UTC, whole seconds), as RFC 5280 and RFC 6960 require.
pub fn generalized_time(t: time::OffsetDateTime) -> Result<Vec<u8>, DerError> {
    let t = t.to_offset(time::UtcOffset::UTC);
    if !(0..=9999).contains(&t.year()) {
        return Err(DerError::YearOutOfRange(t.year()));
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
    Ok(element(tag::GENERALIZED_TIME, s.as_bytes()))
}

/// Reads one element at the start of `input`, whatever its tag: returns it and the bytes
/// after it.
pub fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), DerError> {
    let t = Reader::new(input).read_any()?;
    let rest = input.get(t.end()..).ok_or(DerError::Truncated)?;
    Ok((t, rest))
}

/// The elements of a constructed value's content, in order.
pub fn children(input: &[u8]) -> Result<Vec<Tlv<'_>>, DerError> {
    let mut r = Reader::new(input);
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(r.read_any()?);
    }
    Ok(out)
}

/// The `TBSCertificate` (whole element) of a DER certificate, exactly as encoded.
pub fn tbs_of(cert: &[u8]) -> Result<&[u8], DerError> {
    let cert = Reader::new(cert).read(tag::SEQUENCE)?;
    Ok(Reader::new(cert.value).read(tag::SEQUENCE)?.element)
}

/// PEM-encode `der` under `label`, 64 base64 characters per line.
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
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
    fn short_and_long_form_lengths() {
        let short = element(tag::OCTET_STRING, &[1, 2, 3]);
        assert_eq!(short, vec![0x04, 3, 1, 2, 3]);
        let tlv = parse_single(&short, tag::OCTET_STRING).unwrap();
        assert_eq!(tlv.value, &[1, 2, 3]);
        assert_eq!(tlv.header_len(), 2);
        assert_eq!(tlv.end(), 5);

        for len in [0x80usize, 0xff, 0x100, 0xffff, 0x1_0000, 0x12_3456] {
            let value = vec![0xab; len];
            let enc = element(tag::SEQUENCE, &value);
            let tlv = parse_single(&enc, tag::SEQUENCE).unwrap();
            assert_eq!(tlv.value.len(), len);
            assert_eq!(tlv.element, enc.as_slice());
        }
        let enc = element(tag::SEQUENCE, &[0; 0x100]);
        assert_eq!(&enc[..4], &[0x30, 0x82, 0x01, 0x00]);
    }

    #[test]
    fn offsets_track_position_in_parent() {
        let mut input = element(tag::INTEGER, &[5]);
        input.extend(element(tag::OCTET_STRING, &[0; 200]));
        input.extend(element(tag::NULL, &[]));
        let mut r = Reader::new(&input);
        let a = r.read(tag::INTEGER).unwrap();
        let b = r.read(tag::OCTET_STRING).unwrap();
        let c = r.read(tag::NULL).unwrap();
        r.finish().unwrap();
        assert_eq!((a.offset, b.offset, c.offset), (0, 3, 3 + 3 + 200));
        assert_eq!(b.header_len(), 3);
        assert_eq!(&input[b.offset..b.end()], b.element);
        assert!(r.is_empty());
    }

    #[test]
    fn optional_element_leaves_reader_untouched_when_absent() {
        let input = element(tag::INTEGER, &[1]);
        let mut r = Reader::new(&input);
        assert_eq!(r.read_optional(tag::context(0, true)).unwrap(), None);
        assert_eq!(r.position(), 0);
        assert!(r.read_optional(tag::INTEGER).unwrap().is_some());
        assert_eq!(r.read_optional(tag::INTEGER).unwrap(), None);
    }

    #[test]
    fn malformed_inputs_are_typed_errors() {
        fn read(b: &[u8]) -> Result<Tlv<'_>, DerError> {
            Reader::new(b).read_any()
        }
        assert_eq!(read(&[]), Err(DerError::Truncated));
        assert_eq!(read(&[0x30]), Err(DerError::Truncated));
        assert_eq!(read(&[0x30, 0x80, 0, 0]), Err(DerError::IndefiniteLength));
        assert_eq!(
            read(&[0x30, 0x85, 1, 0, 0, 0, 0]),
            Err(DerError::LengthTooLong(5))
        );
        assert_eq!(read(&[0x30, 0x81, 0x05]), Err(DerError::NonMinimalLength));
        assert_eq!(
            read(&[0x30, 0x82, 0x00, 0x90]),
            Err(DerError::NonMinimalLength)
        );
        assert_eq!(read(&[0x30, 0x82, 0x01]), Err(DerError::Truncated));
        assert_eq!(read(&[0x1f, 0x01, 0x00]), Err(DerError::HighTagNumber));
        assert_eq!(
            read(&[0x04, 0x05, 1, 2]),
            Err(DerError::LengthPastEnd {
                declared: 5,
                available: 2
            })
        );
        assert_eq!(
            read(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff, 0]),
            Err(DerError::LengthPastEnd {
                declared: 0xffff_ffff,
                available: 1
            })
        );
        assert_eq!(
            parse_single(&[0x02, 0x01, 0x00], tag::SEQUENCE),
            Err(DerError::UnexpectedTag {
                expected: tag::SEQUENCE,
                found: tag::INTEGER
            })
        );
        assert_eq!(
            parse_single(&[0x05, 0x00, 0xaa], tag::NULL),
            Err(DerError::TrailingData(1))
        );
        assert_eq!(
            Reader::new(&[]).read(tag::INTEGER),
            Err(DerError::MissingElement {
                expected: tag::INTEGER
            })
        );
    }

    #[test]
    fn context_tags() {
        assert_eq!(tag::context(0, true), 0xa0);
        assert_eq!(tag::context(3, true), 0xa3);
        assert_eq!(tag::context(1, false), 0x81);
    }

    #[test]
    fn never_panics_on_arbitrary_short_inputs() {
        // Every 3-byte input, plus a 4th byte varied over the interesting values.
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                for c in [0u8, 1, 0x7f, 0x80, 0x81, 0xff] {
                    let input = [a, b, c, 0x81];
                    for n in 0..=input.len() {
                        let mut r = Reader::new(&input[..n]);
                        while let Ok(t) = r.read_any() {
                            assert!(t.end() <= n);
                        }
                    }
                }
            }
        }
    }

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
    fn builders_round_trip_through_the_reader() {
        for n in [0usize, 1, 127, 128, 255, 256, 65_535, 70_000] {
            let content = vec![0xab; n];
            let enc = octet_string(&content);
            let (got, rest) = read_tlv(&enc).unwrap();
            assert_eq!(got.tag, tag::OCTET_STRING);
            assert_eq!(got.element.len(), enc.len());
            assert_eq!(got.value, content.as_slice());
            assert!(rest.is_empty());
        }
        let s = seq(&[&null(), &bit_string(&[7]), &explicit(2, &null())]);
        let (outer, rest) = read_tlv(&s).unwrap();
        assert!(rest.is_empty());
        let kids = children(outer.value).unwrap();
        let tags: Vec<u8> = kids.iter().map(|k| k.tag).collect();
        assert_eq!(tags, [tag::NULL, tag::BIT_STRING, 0xa2]);
        assert_eq!(kids[1].value, &[0, 7]);
        assert_eq!(
            children(&[0x30, 0x05, 1]),
            Err(DerError::LengthPastEnd {
                declared: 5,
                available: 1
            })
        );
    }

    #[test]
    fn read_tlv_rejects_truncation() {
        let enc = seq(&[&[1, 2, 3, 4]]);
        for n in 0..enc.len() {
            assert!(read_tlv(&enc[..n]).is_err(), "prefix {n} accepted");
        }
        assert_eq!(
            read_tlv(&[0x30, 0x80]).unwrap_err(),
            DerError::IndefiniteLength
        );
    }

    #[test]
    fn tbs_of_cuts_the_first_inner_sequence() {
        let tbs = seq(&[&element(tag::INTEGER, &[2])]);
        let cert = seq(&[&tbs, &seq(&[&oid(&[1, 2, 3])]), &bit_string(&[0])]);
        assert_eq!(tbs_of(&cert).unwrap(), tbs.as_slice());
        assert_eq!(
            tbs_of(&octet_string(&tbs)),
            Err(DerError::UnexpectedTag {
                expected: tag::SEQUENCE,
                found: tag::OCTET_STRING
            })
        );
        assert!(tbs_of(&seq(&[&null()])).is_err());
    }

    #[test]
    fn generalized_time_format() {
        let t = time::macros::datetime!(2026-03-04 05:06:07.89 UTC);
        assert_eq!(
            generalized_time(t).unwrap(),
            element(tag::GENERALIZED_TIME, b"20260304050607Z")
        );
        let t = time::macros::datetime!(2026-03-04 05:06:07 +02:00);
        assert_eq!(
            generalized_time(t).unwrap(),
            element(tag::GENERALIZED_TIME, b"20260304030607Z")
        );
        let before_year_0 = time::macros::datetime!(-0001-12-31 00:00 UTC);
        assert_eq!(
            generalized_time(before_year_0),
            Err(DerError::YearOutOfRange(-1))
        );
    }

    #[test]
    fn pem_wraps_at_64() {
        use base64::Engine;
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
