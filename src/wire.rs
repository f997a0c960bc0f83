//! A minimal, non-panicking walker of the DNS wire format (RFC 1035 §4), shared by the stub
//! and the upstream transports: the header, the question, where every record sits (its TTL,
//! the OPT record), and bounds-checked field readers and writers.
//!
//! Both sides edit messages at the byte level instead of decoding and re-encoding them: the
//! transports rewrite the message ID and the OPT padding so the resolver's answer reaches the
//! client byte for byte; the stub's cache serves an answer by copying bytes and patching the
//! ID, the TTLs and a few flags. hickory-proto does every real decoding; this module only finds
//! positions, skipping RDATA without looking at it. Every read is bounds-checked and returns a
//! [`WireError`] naming what did not fit.

use std::fmt;

/// Length of the fixed DNS header.
pub const HEADER_LEN: usize = 12;
/// The largest DNS message that fits a two-byte TCP/TLS length prefix (RFC 1035 §4.2.2).
pub const MAX_MESSAGE_LEN: usize = u16::MAX as usize;
/// RR type of the EDNS(0) OPT pseudo-record (RFC 6891).
pub const TYPE_OPT: u16 = 41;
/// RR type of SIG(0) signatures (RFC 2931), which must stay last in a message.
pub const TYPE_SIG: u16 = 24;
/// RR type of TSIG signatures (RFC 8945), which must stay last in a message.
pub const TYPE_TSIG: u16 = 250;

/// Longest encoded domain name (RFC 1035 §2.3.4).
const MAX_NAME_LEN: usize = 255;
/// QR bit of the header flags: set on responses.
const FLAG_QR: u16 = 0x8000;

/// Header field positions and flag bits (RFC 1035 §4.1.1, RFC 4035 §3.2 for AD and CD).
pub mod header {
    /// Offset of the message ID.
    pub const ID: usize = 0;
    /// Offset of the flags word.
    pub const FLAGS: usize = 2;
    /// Offset of the byte holding QR, OPCODE, AA, TC, RD.
    pub const FLAGS_HI: usize = 2;
    /// Offset of the byte holding RA, Z, AD, CD, RCODE.
    pub const FLAGS_LO: usize = 3;
    /// QR bit in [`FLAGS_HI`].
    pub const QR: u8 = 0x80;
    /// TC bit in [`FLAGS_HI`].
    pub const TC: u8 = 0x02;
    /// RD bit in [`FLAGS_HI`].
    pub const RD: u8 = 0x01;
    /// AD bit in [`FLAGS_LO`].
    pub const AD: u8 = 0x20;
    /// CD bit in [`FLAGS_LO`].
    pub const CD: u8 = 0x10;
    /// Offset of QDCOUNT.
    pub const QDCOUNT: usize = 4;
    /// Offset of ANCOUNT.
    pub const ANCOUNT: usize = 6;
    /// Offset of NSCOUNT.
    pub const NSCOUNT: usize = 8;
    /// Offset of ARCOUNT.
    pub const ARCOUNT: usize = 10;
}

/// A section of a DNS message, to say where a message was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The question section.
    Question,
    /// The answer section.
    Answer,
    /// The authority section.
    Authority,
    /// The additional section.
    Additional,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Section::Question => "question",
            Section::Answer => "answer",
            Section::Authority => "authority",
            Section::Additional => "additional",
        })
    }
}

/// Why a DNS message could not be read or edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The message is shorter than the 12-byte header.
    #[error("message is {len} bytes, shorter than the 12-byte header")]
    ShortHeader {
        /// The message length.
        len: usize,
    },
    /// The message does not fit a two-byte length prefix (65535 bytes).
    #[error("message would be {len} bytes, above the 65535-byte limit")]
    TooLong {
        /// The (would-be) message length.
        len: usize,
    },
    /// A record or question runs past the end of the message.
    #[error("{section} section runs past the end of the message")]
    Truncated {
        /// The section being read.
        section: Section,
    },
    /// A domain name uses a reserved label type (0x40 or 0x80 prefix).
    #[error("domain name uses reserved label type {0:#04x}")]
    ReservedLabelType(u8),
    /// A domain name is longer than 255 bytes.
    #[error("domain name is longer than 255 bytes")]
    NameTooLong,
    /// A compression pointer does not point strictly backwards (which could loop).
    #[error("domain name compression pointer at offset {at} does not point backwards")]
    ForwardPointer {
        /// Offset of the pointer.
        at: usize,
    },
    /// The name reached through a compression pointer runs up to or past the pointer
    /// itself: it is not a prior occurrence (RFC 1035 §4.1.4), and cutting bytes after the
    /// pointer (as [`strip_opt`](crate::upstream::padding::strip_opt) does) would change it.
    #[error(
        "domain name reached through the compression pointer at offset {at} runs past the pointer"
    )]
    PointerOverrun {
        /// Offset of the pointer.
        at: usize,
    },
    /// The message must carry exactly one question.
    #[error("expected exactly one question, found {0}")]
    QuestionCount(u16),
    /// A message sent upstream as a query has QR=1 (it is a response).
    #[error("message has QR=1 (a response, not a query)")]
    NotAQuery,
    /// A question name uses a compression pointer where nothing may be compressed (the
    /// question of a client query: there is nothing before it to point at).
    #[error("compression pointer in the question name at offset {at}")]
    PointerInQuestion {
        /// Offset of the pointer.
        at: usize,
    },
    /// The OPT record is followed by another record where it must be the last one (the
    /// stub's cache cuts it off and appends its own).
    #[error("OPT record is not the last record")]
    OptNotLast,
    /// Bytes remain after the last record the header announced.
    #[error("{0} trailing bytes after the last record")]
    TrailingBytes(usize),
    /// More than one OPT record (RFC 6891 §6.1.1).
    #[error("more than one OPT record")]
    MultipleOpt,
    /// An OPT record outside the additional section (RFC 6891 §6.1.1 places it there).
    /// Accepting it would let [`strip_opt`](crate::upstream::padding::strip_opt) cut a record that
    /// ANCOUNT or NSCOUNT still counts.
    #[error("OPT record in the {0} section (only allowed in the additional section)")]
    OptOutsideAdditional(Section),
    /// The OPT record's RDATA is not a well-formed list of options.
    #[error("OPT record options are malformed")]
    BadOptOptions,
    /// A header count would overflow.
    #[error("additional record count would overflow")]
    CountOverflow,
    /// The message had to be re-encoded (OPT not last) and hickory-proto could not do it.
    #[error("re-encoding the message failed: {0}")]
    Reencode(String),
}

/// The fixed DNS header (RFC 1035 §4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Message ID.
    pub id: u16,
    /// The flags word (QR, opcode, AA, TC, RD, RA, Z, AD, CD, RCODE).
    pub flags: u16,
    /// Number of questions.
    pub qdcount: u16,
    /// Number of answer records.
    pub ancount: u16,
    /// Number of authority records.
    pub nscount: u16,
    /// Number of additional records.
    pub arcount: u16,
}

impl Header {
    /// Read the header of `msg`.
    pub fn parse(msg: &[u8]) -> Result<Header, WireError> {
        let short = WireError::ShortHeader { len: msg.len() };
        let word = |at: usize| read_u16(msg, at).ok_or_else(|| short.clone());
        Ok(Header {
            id: word(header::ID)?,
            flags: word(header::FLAGS)?,
            qdcount: word(header::QDCOUNT)?,
            ancount: word(header::ANCOUNT)?,
            nscount: word(header::NSCOUNT)?,
            arcount: word(header::ARCOUNT)?,
        })
    }

    /// Whether the QR bit marks this message as a response.
    pub fn is_response(&self) -> bool {
        self.flags & FLAG_QR != 0
    }
}

/// The question of a message: what a response must echo to answer a query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Question {
    /// The name in uncompressed wire form, ASCII-lowercased (length bytes are all below
    /// `b'A'`, so lowercasing the whole encoding is lossless), so that `==` compares names
    /// case-insensitively as RFC 4343 requires.
    pub name: Vec<u8>,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
}

/// Read the single question of `msg` (QDCOUNT must be 1). Only the header and the question
/// are read, so this works on messages whose later sections are damaged.
pub fn question(msg: &[u8]) -> Result<Question, WireError> {
    let header = Header::parse(msg)?;
    if header.qdcount != 1 {
        return Err(WireError::QuestionCount(header.qdcount));
    }
    let mut name = Vec::new();
    let end = read_name(msg, HEADER_LEN, Some(&mut name), Section::Question)?;
    let truncated = WireError::Truncated {
        section: Section::Question,
    };
    let qtype = read_u16(msg, end).ok_or_else(|| truncated.clone())?;
    let qclass = read_u16(msg, end + 2).ok_or(truncated)?;
    Ok(Question {
        name,
        qtype,
        qclass,
    })
}

/// Where the OPT pseudo-record sits in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptRecord {
    /// Offset of the record's owner name (its first byte).
    pub start: usize,
    /// Offset of the RDLENGTH field.
    pub rdlength_at: usize,
    /// Offset just past the RDATA.
    pub end: usize,
    /// Whether no record follows the OPT record.
    pub is_last: bool,
}

/// Where one resource record sits, as [`walk`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordPos {
    /// The section holding it.
    pub section: Section,
    /// Offset of its owner name (its first byte).
    pub start: usize,
    /// Its TYPE.
    pub rtype: u16,
    /// Offset of its TTL field (for OPT: extended RCODE, version and flags).
    pub ttl_at: usize,
    /// Offset of its RDLENGTH field.
    pub rdlength_at: usize,
    /// Offset just past its RDATA.
    pub end: usize,
}

/// The shape of a whole message: its header, where the question section ends and where the
/// OPT record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The header.
    pub header: Header,
    /// Offset just past the question section.
    pub question_end: usize,
    /// The OPT record, if any.
    pub opt: Option<OptRecord>,
    /// Whether the last record is a TSIG or SIG(0) signature, which covers the bytes before
    /// it: such a message must not be edited.
    pub signed: bool,
}

/// Walk the whole of `msg`: every question and record must lie within it, no bytes may
/// follow the last record, and at most one OPT record may appear, in the additional section.
pub fn layout(msg: &[u8]) -> Result<Layout, WireError> {
    walk(msg, |_| {})
}

/// [`layout`], calling `visit` with the position of every record, in message order, as it is
/// reached (so a message that fails later may already have reported some records).
pub fn walk(msg: &[u8], mut visit: impl FnMut(&RecordPos)) -> Result<Layout, WireError> {
    if msg.len() > MAX_MESSAGE_LEN {
        return Err(WireError::TooLong { len: msg.len() });
    }
    let header = Header::parse(msg)?;
    let mut pos = HEADER_LEN;
    for _ in 0..header.qdcount {
        pos = read_name(msg, pos, None, Section::Question)?;
        pos = pos
            .checked_add(4)
            .filter(|&p| p <= msg.len())
            .ok_or(WireError::Truncated {
                section: Section::Question,
            })?;
    }
    let question_end = pos;
    let sections = [
        (Section::Answer, header.ancount),
        (Section::Authority, header.nscount),
        (Section::Additional, header.arcount),
    ];
    let mut opt: Option<OptRecord> = None;
    let mut last_type = None;
    for (section, count) in sections {
        for _ in 0..count {
            let start = pos;
            let fixed = read_name(msg, pos, None, section)?;
            let truncated = WireError::Truncated { section };
            let rtype = read_u16(msg, fixed).ok_or_else(|| truncated.clone())?;
            let rdlength_at = fixed + 8;
            let rdlength = read_u16(msg, rdlength_at).ok_or_else(|| truncated.clone())?;
            let end = (rdlength_at + 2)
                .checked_add(usize::from(rdlength))
                .filter(|&e| e <= msg.len())
                .ok_or(truncated)?;
            visit(&RecordPos {
                section,
                start,
                rtype,
                ttl_at: fixed + 4,
                rdlength_at,
                end,
            });
            if rtype == TYPE_OPT {
                if section != Section::Additional {
                    return Err(WireError::OptOutsideAdditional(section));
                }
                if opt.is_some() {
                    return Err(WireError::MultipleOpt);
                }
                opt = Some(OptRecord {
                    start,
                    rdlength_at,
                    end,
                    is_last: false,
                });
            }
            last_type = Some(rtype);
            pos = end;
        }
    }
    if pos != msg.len() {
        return Err(WireError::TrailingBytes(msg.len() - pos));
    }
    if let Some(o) = opt.as_mut() {
        o.is_last = o.end == msg.len();
    }
    let signed = header.arcount > 0 && matches!(last_type, Some(TYPE_TSIG | TYPE_SIG));
    Ok(Layout {
        header,
        question_end,
        opt,
        signed,
    })
}

/// Read a big-endian u16 at `at`, or `None` past the end.
pub fn read_u16(msg: &[u8], at: usize) -> Option<u16> {
    let bytes = msg.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]))
}

/// Write a big-endian u16 at `at`; `false` (and nothing written) past the end.
pub fn write_u16(msg: &mut [u8], at: usize, value: u16) -> bool {
    write_bytes(msg, at, &value.to_be_bytes())
}

/// Read a big-endian u32 at `at`, or `None` past the end.
pub fn read_u32(msg: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = msg.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// Write a big-endian u32 at `at`; `false` (and nothing written) past the end.
pub fn write_u32(msg: &mut [u8], at: usize, value: u32) -> bool {
    write_bytes(msg, at, &value.to_be_bytes())
}

/// Overwrite `msg` from `at` with `bytes`; `false` (and nothing written) past the end.
fn write_bytes(msg: &mut [u8], at: usize, bytes: &[u8]) -> bool {
    match at
        .checked_add(bytes.len())
        .and_then(|end| msg.get_mut(at..end))
    {
        Some(slot) => {
            slot.copy_from_slice(bytes);
            true
        }
        None => false,
    }
}

/// Set or clear the bits `mask` in the byte at `at`; `false` (and nothing changed) past the
/// end.
pub fn set_bits(msg: &mut [u8], at: usize, mask: u8, on: bool) -> bool {
    match msg.get_mut(at) {
        Some(byte) => {
            if on {
                *byte |= mask;
            } else {
                *byte &= !mask;
            }
            true
        }
        None => false,
    }
}

/// The offset just past the uncompressed name at `start`: the question name of a client
/// query, which has nothing before it to point at, so a compression pointer there is an
/// error ([`WireError::PointerInQuestion`]).
pub fn uncompressed_name_end(msg: &[u8], start: usize) -> Result<usize, WireError> {
    let mut pos = start;
    loop {
        let len = *msg.get(pos).ok_or(WireError::Truncated {
            section: Section::Question,
        })?;
        match len & 0xC0 {
            0x00 => {}
            0xC0 => return Err(WireError::PointerInQuestion { at: pos }),
            other => return Err(WireError::ReservedLabelType(other)),
        }
        pos += 1 + usize::from(len);
        if pos - start > MAX_NAME_LEN {
            return Err(WireError::NameTooLong);
        }
        if len == 0 {
            return Ok(pos);
        }
    }
}

/// Read the domain name at `pos`, following compression pointers (which must point strictly
/// backwards, so the walk always ends). Returns the offset just past the name as it sits at
/// `pos`. When `out` is given, the uncompressed, lowercased name is appended to it.
fn read_name(
    msg: &[u8],
    pos: usize,
    mut out: Option<&mut Vec<u8>>,
    section: Section,
) -> Result<usize, WireError> {
    let truncated = WireError::Truncated { section };
    let mut cursor = pos;
    // Offset just past the name in place: set at the first pointer or the root label.
    let mut end_in_place = None;
    let mut name_len = 0usize;
    // Every jump must land strictly below the previous jump target (or below the name's
    // own start), so the walk cannot loop; real compression chains always do.
    let mut floor = pos;
    // After a jump, the rest of the name must lie before the pointer just followed.
    let mut limit = msg.len();
    let mut last_pointer = pos;
    loop {
        let len_byte = *msg.get(cursor).ok_or_else(|| truncated.clone())?;
        match len_byte & 0xC0 {
            0x00 => {
                let len = usize::from(len_byte);
                name_len += len + 1;
                if name_len > MAX_NAME_LEN {
                    return Err(WireError::NameTooLong);
                }
                let label_end = cursor + 1 + len;
                let label = msg
                    .get(cursor..label_end)
                    .ok_or_else(|| truncated.clone())?;
                if label_end > limit {
                    return Err(WireError::PointerOverrun { at: last_pointer });
                }
                if let Some(out) = out.as_deref_mut() {
                    out.extend(label.iter().map(u8::to_ascii_lowercase));
                }
                if len == 0 {
                    return Ok(end_in_place.unwrap_or(label_end));
                }
                cursor = label_end;
            }
            0xC0 => {
                let low = *msg.get(cursor + 1).ok_or_else(|| truncated.clone())?;
                let target = (usize::from(len_byte & 0x3F) << 8) | usize::from(low);
                if target >= floor {
                    return Err(WireError::ForwardPointer { at: cursor });
                }
                if cursor + 2 > limit {
                    return Err(WireError::PointerOverrun { at: last_pointer });
                }
                if end_in_place.is_none() {
                    end_in_place = Some(cursor + 2);
                }
                floor = target;
                limit = cursor;
                last_pointer = cursor;
                cursor = target;
            }
            other => return Err(WireError::ReservedLabelType(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `www.Example.com. A IN` with ID 0x1234, no additional records.
    fn query() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(b"\x03www\x07Example\x03com\x00");
        m.extend_from_slice(&[0, 1, 0, 1]);
        m
    }

    /// A response to [`query`] with one compressed A answer and an OPT record.
    fn response() -> Vec<u8> {
        let mut m = query();
        m[2] = 0x81;
        m[3] = 0x80;
        m[7] = 1; // ancount
        m[11] = 1; // arcount
        m.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        m.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]);
        m
    }

    #[test]
    fn reads_header_and_question() {
        let q = query();
        let h = Header::parse(&q).unwrap();
        assert_eq!(h.id, 0x1234);
        assert!(!h.is_response());
        let question = question(&q).unwrap();
        assert_eq!(question.name, b"\x03www\x07example\x03com\x00".to_vec());
        assert_eq!((question.qtype, question.qclass), (1, 1));
    }

    #[test]
    fn question_compares_case_insensitively() {
        let mut upper = query();
        upper[13..16].copy_from_slice(b"WWW");
        assert_eq!(question(&upper).unwrap(), question(&query()).unwrap());
        let mut other = query();
        other[13] = b'x';
        assert_ne!(question(&other).unwrap(), question(&query()).unwrap());
    }

    #[test]
    fn layout_finds_last_opt() {
        let r = response();
        let l = layout(&r).unwrap();
        let opt = l.opt.unwrap();
        assert!(opt.is_last);
        assert_eq!(opt.end, r.len());
        assert_eq!(opt.start, r.len() - 11);
        assert!(!l.signed);
        assert!(l.header.is_response());
    }

    #[test]
    fn layout_rejects_trailing_bytes_and_truncation() {
        let mut r = response();
        r.push(0);
        assert_eq!(layout(&r), Err(WireError::TrailingBytes(1)));
        let r = response();
        for cut in 0..r.len() {
            assert!(layout(&r[..cut]).is_err(), "cut at {cut} accepted");
        }
    }

    #[test]
    fn rejects_two_opts() {
        let mut r = response();
        r[11] = 2;
        r.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(layout(&r), Err(WireError::MultipleOpt));
    }

    /// Found by the `upstream_response` fuzz target
    /// (fuzz/regressions/upstream_response/opt-in-authority): an OPT record counted by
    /// NSCOUNT was taken for the additional section's OPT, and `strip_opt` then cut it
    /// while decrementing ARCOUNT, leaving a message whose NSCOUNT promised a missing record.
    #[test]
    fn rejects_opt_outside_the_additional_section() {
        let mut in_authority = response();
        in_authority[9] = 1; // nscount
        in_authority[11] = 0; // arcount
        assert_eq!(
            layout(&in_authority),
            Err(WireError::OptOutsideAdditional(Section::Authority))
        );
        let mut in_answer = query();
        in_answer[2] = 0x81;
        in_answer[7] = 1; // ancount
        in_answer.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            layout(&in_answer),
            Err(WireError::OptOutsideAdditional(Section::Answer))
        );
    }

    /// Found by the `upstream_response` fuzz target
    /// (fuzz/regressions/upstream_response/pointer-into-opt): a pointer to an earlier
    /// offset whose labels ran on past the pointer, into the OPT record's root name, so
    /// `strip_opt` cut the end of a name still in use.
    #[test]
    fn rejects_names_running_past_their_pointer() {
        // A pointer to a suffix of an earlier name (`com.` in the question) stays fine.
        let mut m = response();
        m[12 + 17 + 4 + 1] = 24;
        assert!(layout(&m).is_ok());
        // The fuzzer's message: answer 2's owner points into answer 1's RDATA, whose
        // last label runs over the pointer and ends at the OPT owner's root byte.
        let regression = [
            0, 11, 129, 166, 0, 1, 0, 2, 0, 0, 0, 1, 0, 0, 2, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 60, 0,
            20, 6, 116, 97, 114, 103, 101, 116, 7, 101, 120, 97, 109, 112, 108, 101, 3, 110, 101,
            116, 16, 192, 28, 0, 1, 0, 1, 0, 0, 1, 172, 0, 4, 192, 0, 2, 3, 0, 0, 41, 14, 0, 0, 0,
            0, 0, 0, 0,
        ];
        assert_eq!(
            layout(&regression),
            Err(WireError::PointerOverrun { at: 48 })
        );
    }

    #[test]
    fn rejects_pointer_loops_and_forward_pointers() {
        // Question name is a pointer to itself.
        let mut m = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C, 0, 1, 0, 1];
        assert_eq!(question(&m), Err(WireError::ForwardPointer { at: 12 }));
        // Forward pointer.
        m[13] = 0x20;
        assert_eq!(question(&m), Err(WireError::ForwardPointer { at: 12 }));
        // Answer name pointing to a pointer pointing to itself.
        let mut r = query();
        r[7] = 1;
        let self_ptr = r.len() as u8;
        r.extend_from_slice(&[0xC0, self_ptr, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            layout(&r),
            Err(WireError::ForwardPointer {
                at: usize::from(self_ptr)
            })
        );
    }

    #[test]
    fn rejects_reserved_labels_and_long_names() {
        let mut m = query();
        m[12] = 0x43;
        assert_eq!(question(&m), Err(WireError::ReservedLabelType(0x40)));
        let mut long = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(question(&long), Err(WireError::NameTooLong));
    }

    #[test]
    fn question_count_must_be_one() {
        let mut m = query();
        m[5] = 2;
        assert_eq!(question(&m), Err(WireError::QuestionCount(2)));
        assert_eq!(question(&m[..5]), Err(WireError::ShortHeader { len: 5 }));
    }

    #[test]
    fn detects_signed_messages() {
        let mut m = query();
        m[11] = 1;
        // A TSIG-typed record with empty RDATA is enough for the layout walk.
        m.extend_from_slice(&[0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 0]);
        assert!(layout(&m).unwrap().signed);
    }

    #[test]
    fn never_panics_on_arbitrary_prefixes_and_mutations() {
        let base = response();
        for i in 0..base.len() {
            for v in [0x00, 0x3F, 0x40, 0xC0, 0xFF] {
                let mut m = base.clone();
                m[i] = v;
                let _ = layout(&m);
                let _ = question(&m);
            }
        }
    }

    #[test]
    fn u16_helpers_are_bounds_checked() {
        let mut b = [0u8; 3];
        assert!(write_u16(&mut b, 1, 0xABCD));
        assert_eq!(read_u16(&b, 1), Some(0xABCD));
        assert!(!write_u16(&mut b, 2, 1));
        assert_eq!(read_u16(&b, 2), None);
        assert_eq!(read_u16(&b, usize::MAX), None);
    }

    #[test]
    fn walk_reports_every_record_with_its_ttl() {
        let r = response();
        let mut seen = Vec::new();
        let l = walk(&r, |rec| seen.push(*rec)).unwrap();
        assert_eq!(l.question_end, 12 + 17 + 4);
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].section, Section::Answer);
        assert_eq!(seen[0].start, l.question_end);
        assert_eq!(read_u32(&r, seen[0].ttl_at), Some(60));
        assert_eq!(seen[1].rtype, TYPE_OPT);
        assert_eq!(seen[1].section, Section::Additional);
        assert_eq!(Some(seen[1].start), l.opt.map(|o| o.start));
        assert_eq!(seen[1].rdlength_at, seen[1].ttl_at + 4);
        assert_eq!(seen[1].end, r.len());
    }

    #[test]
    fn reports_an_opt_record_that_is_not_last() {
        let mut r = query();
        r[2] = 0x81;
        r[11] = 2; // arcount: OPT, then an A record
        r.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]);
        r.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        let opt = layout(&r).unwrap().opt.unwrap();
        assert!(!opt.is_last);
        assert_eq!(opt.start, 12 + 17 + 4);
    }

    #[test]
    fn question_name_of_a_query_must_not_be_compressed_or_too_long() {
        assert_eq!(
            uncompressed_name_end(b"\xC0\x0C\x00\x01", 0),
            Err(WireError::PointerInQuestion { at: 0 })
        );
        assert_eq!(
            uncompressed_name_end(b"\x01a\x80", 0),
            Err(WireError::ReservedLabelType(0x80))
        );
        assert_eq!(
            uncompressed_name_end(b"\x03abc", 0),
            Err(WireError::Truncated {
                section: Section::Question
            })
        );
        let mut long = Vec::new();
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.push(0);
        assert_eq!(uncompressed_name_end(&long, 0), Err(WireError::NameTooLong));
        assert_eq!(uncompressed_name_end(b"\x01a\x00", 0), Ok(3));
    }

    #[test]
    fn u32_and_bit_helpers_are_bounds_checked() {
        let mut b = vec![0u8; 4];
        assert!(!write_u32(&mut b, 1, 0xFFFF_FFFF));
        assert!(!set_bits(&mut b, 9, 0x80, true));
        assert_eq!(b, vec![0, 0, 0, 0]);
        assert!(write_u32(&mut b, 0, 0x0102_0304));
        assert_eq!(read_u32(&b, 0), Some(0x0102_0304));
        assert_eq!(read_u32(&b, 1), None);
        assert!(set_bits(&mut b, 3, 0x80, true));
        assert_eq!(b[3], 0x84);
        assert!(set_bits(&mut b, 3, 0x04, false));
        assert_eq!(b[3], 0x80);
    }
}
