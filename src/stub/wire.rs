//! Bounds-checked walking of DNS wire format, for the byte positions that hickory's decoder
//! does not expose: where the question ends, where each record's TTL sits, where the OPT
//! record starts. It skips RDATA without decoding it; hickory does the real parsing.
//!
//! These positions let the cache serve an answer by copying bytes and patching a few fields,
//! without decoding or encoding a message on the hit path.

/// Length of the DNS header (RFC 1035 §4.1.1).
pub(crate) const HEADER_LEN: usize = 12;
/// Record type of the EDNS(0) OPT pseudo-record (RFC 6891).
pub(crate) const TYPE_OPT: u16 = 41;
/// Longest domain name in wire format (RFC 1035 §2.3.4).
const MAX_NAME_LEN: usize = 255;

/// Header field positions (RFC 1035 §4.1.1).
pub(crate) mod header {
    /// Byte holding QR, OPCODE, AA, TC, RD.
    pub(crate) const FLAGS_HI: usize = 2;
    /// Byte holding RA, Z, AD, CD, RCODE.
    pub(crate) const FLAGS_LO: usize = 3;
    /// QR bit in [`FLAGS_HI`].
    pub(crate) const QR: u8 = 0x80;
    /// TC bit in [`FLAGS_HI`].
    pub(crate) const TC: u8 = 0x02;
    /// RD bit in [`FLAGS_HI`].
    pub(crate) const RD: u8 = 0x01;
    /// AD bit in [`FLAGS_LO`].
    pub(crate) const AD: u8 = 0x20;
    /// CD bit in [`FLAGS_LO`].
    pub(crate) const CD: u8 = 0x10;
    /// Offset of QDCOUNT.
    pub(crate) const QDCOUNT: usize = 4;
    /// Offset of ANCOUNT.
    pub(crate) const ANCOUNT: usize = 6;
    /// Offset of NSCOUNT.
    pub(crate) const NSCOUNT: usize = 8;
    /// Offset of ARCOUNT.
    pub(crate) const ARCOUNT: usize = 10;
}

/// Why a message's layout could not be walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The message ends inside the header, a name, a record or its RDATA.
    #[error("message truncated at byte {at}")]
    Truncated {
        /// Where the missing bytes were expected.
        at: usize,
    },
    /// A label length byte uses the reserved 0b01/0b10 prefixes.
    #[error("reserved label type at byte {at}")]
    ReservedLabelType {
        /// The offending byte.
        at: usize,
    },
    /// A question name uses a compression pointer (a single question has nothing before it
    /// to point at except the header).
    #[error("compression pointer in the question name at byte {at}")]
    PointerInQuestion {
        /// The pointer's position.
        at: usize,
    },
    /// A name is longer than 255 bytes.
    #[error("name longer than 255 bytes at byte {at}")]
    NameTooLong {
        /// Where the name starts.
        at: usize,
    },
    /// The message is not exactly one question long in its question section.
    #[error("expected exactly one question, found {count}")]
    QuestionCount {
        /// QDCOUNT.
        count: u16,
    },
    /// An OPT record is followed by another record; the cache needs it last.
    #[error("OPT record is not the last record")]
    OptNotLast,
    /// Bytes follow the last record.
    #[error("{extra} bytes after the last record")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// The message is larger than 65535 bytes and cannot be framed.
    #[error("message of {len} bytes exceeds 65535")]
    TooLarge {
        /// Its length.
        len: usize,
    },
}

/// Reads the big-endian u16 at `pos`.
pub(crate) fn u16_at(b: &[u8], pos: usize) -> Option<u16> {
    let hi = *b.get(pos)?;
    let lo = *b.get(pos.checked_add(1)?)?;
    Some(u16::from_be_bytes([hi, lo]))
}

/// Writes `v` big-endian at `pos`; does nothing if `pos` is out of range.
pub(crate) fn put_u16(b: &mut [u8], pos: usize, v: u16) {
    if let Some(dst) = pos.checked_add(2).and_then(|end| b.get_mut(pos..end)) {
        dst.copy_from_slice(&v.to_be_bytes());
    }
}

/// Reads the big-endian u32 at `pos`.
pub(crate) fn u32_at(b: &[u8], pos: usize) -> Option<u32> {
    let s = b.get(pos..pos.checked_add(4)?)?;
    let arr: [u8; 4] = s.try_into().ok()?;
    Some(u32::from_be_bytes(arr))
}

/// Writes `v` big-endian at `pos`; does nothing if `pos` is out of range.
pub(crate) fn put_u32(b: &mut [u8], pos: usize, v: u32) {
    if let Some(dst) = pos.checked_add(4).and_then(|end| b.get_mut(pos..end)) {
        dst.copy_from_slice(&v.to_be_bytes());
    }
}

/// Sets or clears `bit` in the byte at `pos`; does nothing if `pos` is out of range.
pub(crate) fn set_bit(b: &mut [u8], pos: usize, bit: u8, on: bool) {
    if let Some(byte) = b.get_mut(pos) {
        if on {
            *byte |= bit;
        } else {
            *byte &= !bit;
        }
    }
}

/// Walks an uncompressed name starting at `start` and returns the position just after it.
/// Used for the question of a query, which has nothing earlier to point at.
pub(crate) fn uncompressed_name_end(b: &[u8], start: usize) -> Result<usize, WireError> {
    let mut pos = start;
    loop {
        let len = *b.get(pos).ok_or(WireError::Truncated { at: pos })?;
        match len & 0xC0 {
            0x00 => {}
            0xC0 => return Err(WireError::PointerInQuestion { at: pos }),
            _ => return Err(WireError::ReservedLabelType { at: pos }),
        }
        pos += 1 + usize::from(len);
        if pos - start > MAX_NAME_LEN {
            return Err(WireError::NameTooLong { at: start });
        }
        if len == 0 {
            return Ok(pos);
        }
    }
}

/// Skips a possibly compressed name starting at `start` and returns the position just after
/// it in this message (a pointer ends the name; its target is not followed).
fn skip_name(b: &[u8], start: usize) -> Result<usize, WireError> {
    let mut pos = start;
    loop {
        let len = *b.get(pos).ok_or(WireError::Truncated { at: pos })?;
        match len & 0xC0 {
            0x00 => {}
            0xC0 => {
                return if pos + 2 <= b.len() {
                    Ok(pos + 2)
                } else {
                    Err(WireError::Truncated { at: pos })
                };
            }
            _ => return Err(WireError::ReservedLabelType { at: pos }),
        }
        pos += 1 + usize::from(len);
        if pos - start > MAX_NAME_LEN {
            return Err(WireError::NameTooLong { at: start });
        }
        if len == 0 {
            return if pos <= b.len() {
                Ok(pos)
            } else {
                Err(WireError::Truncated { at: pos })
            };
        }
    }
}

/// Byte positions in a message with one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Position just after the question (name, type, class).
    pub(crate) question_end: usize,
    /// Position of the TTL field of every record except OPT, in message order.
    pub(crate) ttl_offsets: Vec<u16>,
    /// Position of the OPT record, when there is one; it is then the last record.
    pub(crate) opt_start: Option<usize>,
}

/// Walks a whole message with exactly one question and locates its question end, TTL fields
/// and OPT record. Fails on anything that does not walk cleanly to the last byte.
pub(crate) fn layout(b: &[u8]) -> Result<Layout, WireError> {
    if b.len() > usize::from(u16::MAX) {
        return Err(WireError::TooLarge { len: b.len() });
    }
    let count = |pos| u16_at(b, pos).ok_or(WireError::Truncated { at: pos });
    let qd = count(header::QDCOUNT)?;
    if qd != 1 {
        return Err(WireError::QuestionCount { count: qd });
    }
    let records = usize::from(count(header::ANCOUNT)?)
        + usize::from(count(header::NSCOUNT)?)
        + usize::from(count(header::ARCOUNT)?);

    let qname_end = skip_name(b, HEADER_LEN)?;
    let question_end = qname_end + 4;
    if question_end > b.len() {
        return Err(WireError::Truncated { at: qname_end });
    }

    let mut pos = question_end;
    let mut ttl_offsets = Vec::with_capacity(records.min(64));
    let mut opt_start = None;
    for _ in 0..records {
        if opt_start.is_some() {
            return Err(WireError::OptNotLast);
        }
        let rr_start = pos;
        let name_end = skip_name(b, pos)?;
        let rtype = u16_at(b, name_end).ok_or(WireError::Truncated { at: name_end })?;
        let ttl_at = name_end + 4;
        let rdlen_at = name_end + 8;
        let rdlen = u16_at(b, rdlen_at).ok_or(WireError::Truncated { at: rdlen_at })?;
        let end = rdlen_at + 2 + usize::from(rdlen);
        if end > b.len() {
            return Err(WireError::Truncated { at: rdlen_at + 2 });
        }
        if rtype == TYPE_OPT {
            opt_start = Some(rr_start);
        } else {
            // Lossless: the message is at most 65535 bytes long (checked above).
            ttl_offsets
                .push(u16::try_from(ttl_at).map_err(|_| WireError::TooLarge { len: b.len() })?);
        }
        pos = end;
    }
    if pos != b.len() {
        return Err(WireError::TrailingBytes {
            extra: b.len() - pos,
        });
    }
    Ok(Layout {
        question_end,
        ttl_offsets,
        opt_start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header with the given counts, id 0x1234, QR set.
    fn header(qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
        let mut h = vec![0x12, 0x34, 0x80, 0x00];
        for c in [qd, an, ns, ar] {
            h.extend_from_slice(&c.to_be_bytes());
        }
        h
    }

    fn question(b: &mut Vec<u8>) {
        b.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
    }

    fn a_record(b: &mut Vec<u8>, ttl: u32) {
        b.extend_from_slice(&[0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01]);
        b.extend_from_slice(&ttl.to_be_bytes());
        b.extend_from_slice(&[0x00, 0x04, 192, 0, 2, 1]);
    }

    fn opt_record(b: &mut Vec<u8>) {
        b.extend_from_slice(&[0x00, 0x00, 0x29, 0x10, 0x00, 0, 0, 0, 0, 0x00, 0x00]);
    }

    #[test]
    fn finds_ttls_and_trailing_opt() {
        let mut b = header(1, 2, 0, 1);
        question(&mut b);
        let q_end = b.len();
        a_record(&mut b, 300);
        a_record(&mut b, 60);
        let opt = b.len();
        opt_record(&mut b);
        let l = layout(&b).unwrap();
        assert_eq!(l.question_end, q_end);
        assert_eq!(l.opt_start, Some(opt));
        assert_eq!(l.ttl_offsets.len(), 2);
        assert_eq!(u32_at(&b, usize::from(l.ttl_offsets[0])), Some(300));
        assert_eq!(u32_at(&b, usize::from(l.ttl_offsets[1])), Some(60));
    }

    #[test]
    fn rejects_truncated_rdata_and_trailing_bytes() {
        let mut b = header(1, 1, 0, 0);
        question(&mut b);
        a_record(&mut b, 1);
        let full = b.clone();
        b.pop();
        assert!(matches!(layout(&b), Err(WireError::Truncated { .. })));
        let mut t = full;
        t.push(0);
        assert_eq!(layout(&t), Err(WireError::TrailingBytes { extra: 1 }));
    }

    #[test]
    fn rejects_opt_before_another_record() {
        let mut b = header(1, 0, 0, 2);
        question(&mut b);
        opt_record(&mut b);
        a_record(&mut b, 1);
        assert_eq!(layout(&b), Err(WireError::OptNotLast));
    }

    #[test]
    fn rejects_wrong_question_count_and_reserved_labels() {
        let mut b = header(2, 0, 0, 0);
        question(&mut b);
        question(&mut b);
        assert_eq!(layout(&b), Err(WireError::QuestionCount { count: 2 }));
        let mut b = header(1, 0, 0, 0);
        b.extend_from_slice(b"\x40abc\x00\x00\x01\x00\x01");
        assert_eq!(layout(&b), Err(WireError::ReservedLabelType { at: 12 }));
    }

    #[test]
    fn question_name_must_not_be_compressed_or_too_long() {
        let b = b"\xC0\x0C\x00\x01";
        assert_eq!(
            uncompressed_name_end(b, 0),
            Err(WireError::PointerInQuestion { at: 0 })
        );
        let mut long = Vec::new();
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.push(0);
        assert_eq!(
            uncompressed_name_end(&long, 0),
            Err(WireError::NameTooLong { at: 0 })
        );
        assert_eq!(uncompressed_name_end(b"\x01a\x00", 0), Ok(3));
    }

    #[test]
    fn field_writers_ignore_out_of_range_positions() {
        let mut b = vec![0u8; 4];
        put_u16(&mut b, 3, 0xFFFF);
        put_u32(&mut b, 1, 0xFFFF_FFFF);
        set_bit(&mut b, 9, 0x80, true);
        assert_eq!(b, vec![0, 0, 0, 0]);
        put_u16(&mut b, 2, 0xABCD);
        assert_eq!(u16_at(&b, 2), Some(0xABCD));
        assert_eq!(u16_at(&b, 3), None);
    }
}
