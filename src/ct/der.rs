//! A minimal, panic-free DER reader (and the two-line writer the precertificate splice
//! needs).
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
}
