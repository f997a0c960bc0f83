//! EDNS(0) padding of queries (RFC 7830 option 12) with the block-length policy of
//! RFC 8467 §4.1: every query sent over an encrypted transport is padded to a multiple of
//! 128 bytes, so its length does not reveal the name asked for.
//!
//! Choice for queries **without** an OPT record: ctdns adds one (UDP payload size
//! [`ADDED_OPT_PAYLOAD`], version 0, no flags) carrying only the padding option, and removes
//! the OPT record from the response with [`strip_opt`] before returning it, so the client
//! sees what a non-EDNS server would have sent (RFC 6891 §7 forbids an OPT record in a
//! response to a query that had none). Queries that already carry an OPT record keep it:
//! any padding option in it is replaced, the other options and flags are kept, and the
//! response (with whatever OPT the server sent) is returned unchanged.
//!
//! Messages are edited at the byte level and only where no other byte has to move:
//! - a query signed with TSIG or SIG(0) is sent unpadded (padding would break the signature);
//! - a query whose OPT record is not the last record is sent unpadded (growing it would
//!   shift records whose compression pointers could then point to the wrong place).
//!
//! Both cases are reported in [`PadOutcome`]; neither occurs in what stub clients send.

use crate::wire::{self, header, WireError, TYPE_OPT};

/// The EDNS(0) option code of Padding (RFC 7830).
pub const PADDING_OPTION: u16 = 12;
/// RFC 8467's recommended block length for queries.
pub const QUERY_BLOCK: usize = 128;
/// The UDP payload size announced in an OPT record ctdns adds (the DNS Flag Day 2020 value;
/// meaningless over TLS, but it must hold something).
pub const ADDED_OPT_PAYLOAD: u16 = 1232;

/// Size of an option's code and length fields.
const OPTION_HEADER_LEN: usize = 4;
/// Size of an OPT record with a root owner name and empty RDATA.
const EMPTY_OPT_LEN: usize = 11;
/// SERVFAIL response code.
const RCODE_SERVFAIL: u16 = 2;

/// What [`pad_query`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadOutcome {
    /// The query's own OPT record now carries the padding option.
    PaddedExistingOpt,
    /// The query had no OPT record: one was added, and must be stripped from the response
    /// with [`strip_opt`].
    AddedOpt,
    /// Sent unpadded: the query is signed (TSIG or SIG(0)).
    UnpaddedSigned,
    /// Sent unpadded: the query's OPT record is not its last record.
    UnpaddedOptNotLast,
}

/// A query ready to send, and what padding did to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaddedQuery {
    /// The message bytes to send.
    pub bytes: Vec<u8>,
    /// What was done.
    pub outcome: PadOutcome,
}

/// Pad `query` to a multiple of [`QUERY_BLOCK`] bytes (see the module docs for the rules).
pub fn pad_query(query: &[u8]) -> Result<PaddedQuery, WireError> {
    let layout = wire::layout(query)?;
    if layout.signed {
        return Ok(PaddedQuery {
            bytes: query.to_vec(),
            outcome: PadOutcome::UnpaddedSigned,
        });
    }
    match layout.opt {
        Some(opt) if !opt.is_last => Ok(PaddedQuery {
            bytes: query.to_vec(),
            outcome: PadOutcome::UnpaddedOptNotLast,
        }),
        Some(opt) => {
            let rdata = query
                .get(opt.rdlength_at + 2..opt.end)
                .ok_or(WireError::BadOptOptions)?;
            let kept = options_without_padding(rdata)?;
            let prefix = query
                .get(..opt.rdlength_at)
                .ok_or(WireError::BadOptOptions)?;
            let base = prefix.len() + 2 + kept.len();
            let pad = padding_len(base)?;
            let rdlength = u16::try_from(kept.len() + OPTION_HEADER_LEN + pad)
                .map_err(|_| WireError::TooLong { len: base + pad })?;
            let mut out = Vec::with_capacity(base + OPTION_HEADER_LEN + pad);
            out.extend_from_slice(prefix);
            out.extend_from_slice(&rdlength.to_be_bytes());
            out.extend_from_slice(&kept);
            push_padding_option(&mut out, pad)?;
            Ok(PaddedQuery {
                bytes: out,
                outcome: PadOutcome::PaddedExistingOpt,
            })
        }
        None => {
            let arcount = layout
                .header
                .arcount
                .checked_add(1)
                .ok_or(WireError::CountOverflow)?;
            let base = query.len() + EMPTY_OPT_LEN;
            let pad = padding_len(base)?;
            let rdlength = u16::try_from(OPTION_HEADER_LEN + pad)
                .map_err(|_| WireError::TooLong { len: base + pad })?;
            let mut out = Vec::with_capacity(base + OPTION_HEADER_LEN + pad);
            out.extend_from_slice(query);
            if !wire::write_u16(&mut out, header::ARCOUNT, arcount) {
                return Err(WireError::ShortHeader { len: query.len() });
            }
            out.push(0); // root owner name
            out.extend_from_slice(&TYPE_OPT.to_be_bytes());
            out.extend_from_slice(&ADDED_OPT_PAYLOAD.to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, 0]); // extended RCODE, version 0, no flags
            out.extend_from_slice(&rdlength.to_be_bytes());
            push_padding_option(&mut out, pad)?;
            Ok(PaddedQuery {
                bytes: out,
                outcome: PadOutcome::AddedOpt,
            })
        }
    }
}

/// Remove the OPT record from `response` (used when ctdns added the OPT to the query).
///
/// If the OPT record is the last record it is cut off at the byte level. If the server's
/// extended RCODE bits (upper 8 bits, in the OPT TTL) were set, the client could not see
/// them without the OPT record, so the header RCODE becomes SERVFAIL. If records follow the
/// OPT record, the message is decoded and re-encoded with hickory-proto instead, since
/// cutting bytes out of its middle could break compression pointers.
pub fn strip_opt(response: &[u8]) -> Result<Vec<u8>, WireError> {
    let layout = wire::layout(response)?;
    let Some(opt) = layout.opt else {
        return Ok(response.to_vec());
    };
    if !opt.is_last {
        let mut msg = hickory_proto::op::Message::from_vec(response)
            .map_err(|e| WireError::Reencode(e.to_string()))?;
        msg.edns = None;
        return msg.to_vec().map_err(|e| WireError::Reencode(e.to_string()));
    }
    let mut out = response
        .get(..opt.start)
        .ok_or(WireError::BadOptOptions)?
        .to_vec();
    // The TTL field (extended RCODE, version, flags) is the 4 bytes before RDLENGTH.
    let extended_rcode = opt
        .rdlength_at
        .checked_sub(4)
        .and_then(|at| response.get(at))
        .copied()
        .ok_or(WireError::BadOptOptions)?;
    let arcount = layout.header.arcount.saturating_sub(1);
    let mut flags = layout.header.flags;
    if extended_rcode != 0 {
        flags = (flags & !0x000F) | RCODE_SERVFAIL;
    }
    if !(wire::write_u16(&mut out, header::ARCOUNT, arcount)
        && wire::write_u16(&mut out, header::FLAGS, flags))
    {
        return Err(WireError::ShortHeader { len: out.len() });
    }
    Ok(out)
}

/// The options in `rdata` other than Padding, re-serialized verbatim.
fn options_without_padding(rdata: &[u8]) -> Result<Vec<u8>, WireError> {
    let mut kept = Vec::with_capacity(rdata.len());
    let mut pos = 0;
    while pos < rdata.len() {
        let code = wire::read_u16(rdata, pos).ok_or(WireError::BadOptOptions)?;
        let len = wire::read_u16(rdata, pos + 2).ok_or(WireError::BadOptOptions)?;
        let end = pos + OPTION_HEADER_LEN + usize::from(len);
        let option = rdata.get(pos..end).ok_or(WireError::BadOptOptions)?;
        if code != PADDING_OPTION {
            kept.extend_from_slice(option);
        }
        pos = end;
    }
    Ok(kept)
}

/// How many padding bytes make `base` bytes plus a padding option header a multiple of
/// [`QUERY_BLOCK`].
fn padding_len(base: usize) -> Result<usize, WireError> {
    let with_header = base + OPTION_HEADER_LEN;
    let total = with_header.div_ceil(QUERY_BLOCK) * QUERY_BLOCK;
    if total > wire::MAX_MESSAGE_LEN {
        return Err(WireError::TooLong { len: total });
    }
    Ok(total - with_header)
}

/// Append a Padding option of `pad` zero bytes (RFC 7830 §4).
fn push_padding_option(out: &mut Vec<u8>, pad: usize) -> Result<(), WireError> {
    let len = u16::try_from(pad).map_err(|_| WireError::TooLong { len: pad })?;
    out.extend_from_slice(&PADDING_OPTION.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.resize(out.len() + pad, 0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    fn query(name: &str, edns: Option<Edns>) -> Vec<u8> {
        let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        if let Some(e) = edns {
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    fn padding_of(msg: &[u8]) -> Option<usize> {
        let m = Message::from_vec(msg).unwrap();
        match m.edns?.option(EdnsCode::Padding)? {
            EdnsOption::Unknown(_, data) => Some(data.len()),
            other => panic!("unexpected padding option {other:?}"),
        }
    }

    #[test]
    fn adds_opt_and_pads_to_block() {
        for name in [
            "a.",
            "example.com.",
            "a-much-longer-label.example.org.",
            &"x.".repeat(60),
        ] {
            let q = query(name, None);
            let padded = pad_query(&q).unwrap();
            assert_eq!(padded.outcome, PadOutcome::AddedOpt);
            assert_eq!(padded.bytes.len() % QUERY_BLOCK, 0, "{name}");
            assert!(padded.bytes.len() >= q.len() + EMPTY_OPT_LEN + OPTION_HEADER_LEN);
            let m = Message::from_vec(&padded.bytes).unwrap();
            assert_eq!(m.metadata.id, 0x4242);
            assert_eq!(m.queries.len(), 1);
            assert_eq!(m.edns.as_ref().unwrap().max_payload(), ADDED_OPT_PAYLOAD);
            assert!(padding_of(&padded.bytes).is_some());
        }
    }

    #[test]
    fn replaces_existing_padding_and_keeps_flags() {
        let mut edns = Edns::new();
        edns.set_dnssec_ok(true);
        edns.set_max_payload(4096);
        edns.options_mut().insert(EdnsOption::Unknown(
            u16::from(EdnsCode::Padding),
            vec![0; 7],
        ));
        edns.options_mut()
            .insert(EdnsOption::Unknown(65001, vec![1, 2, 3]));
        let q = query("example.com.", Some(edns));
        let padded = pad_query(&q).unwrap();
        assert_eq!(padded.outcome, PadOutcome::PaddedExistingOpt);
        assert_eq!(padded.bytes.len() % QUERY_BLOCK, 0);
        let m = Message::from_vec(&padded.bytes).unwrap();
        let e = m.edns.unwrap();
        assert!(e.flags().dnssec_ok);
        assert_eq!(e.max_payload(), 4096);
        assert_eq!(
            e.option(EdnsCode::Unknown(65001)),
            Some(&EdnsOption::Unknown(65001, vec![1, 2, 3]))
        );
        // Padding again is stable: the old padding option is replaced, not added to.
        let again = pad_query(&padded.bytes).unwrap();
        assert_eq!(again.bytes, padded.bytes);
    }

    #[test]
    fn signed_queries_stay_unpadded() {
        let mut q = query("example.com.", None);
        q[11] = 1;
        q.extend_from_slice(&[0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 0]);
        let padded = pad_query(&q).unwrap();
        assert_eq!(padded.outcome, PadOutcome::UnpaddedSigned);
        assert_eq!(padded.bytes, q);
    }

    #[test]
    fn opt_not_last_stays_unpadded() {
        let mut q = query("example.com.", Some(Edns::new()));
        q[11] = 2;
        q.extend_from_slice(&[0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 127, 0, 0, 1]);
        let padded = pad_query(&q).unwrap();
        assert_eq!(padded.outcome, PadOutcome::UnpaddedOptNotLast);
        assert_eq!(padded.bytes, q);
    }

    #[test]
    fn malformed_options_are_rejected() {
        let mut q = query("example.com.", None);
        q[11] = 1;
        // OPT with rdlength 3: a truncated option header.
        q.extend_from_slice(&[0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 3, 0, 12, 0]);
        assert_eq!(pad_query(&q), Err(WireError::BadOptOptions));
    }

    #[test]
    fn too_large_queries_are_rejected() {
        let mut q = query("example.com.", None);
        q[11] = 1;
        // An unknown-type additional record that takes the message near the limit.
        let rdlen = 65_400usize;
        q.extend_from_slice(&[0, 0, 99, 0, 1, 0, 0, 0, 0]);
        q.extend_from_slice(&(rdlen as u16).to_be_bytes());
        q.resize(q.len() + rdlen, 0);
        assert!(matches!(pad_query(&q), Err(WireError::TooLong { .. })));
    }

    fn response_with_opt(extended_rcode: u8, extra_after_opt: bool) -> Vec<u8> {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        let name = Name::from_ascii("example.com.").unwrap();
        m.add_query(Query::query(name.clone(), RecordType::A));
        m.add_answer(Record::from_rdata(
            name.clone(),
            60,
            RData::A("192.0.2.1".parse().unwrap()),
        ));
        m.set_edns(Edns::new());
        let mut bytes = m.to_vec().unwrap();
        // hickory derives the extended RCODE from the header's: set the OPT TTL byte here.
        let opt = wire::layout(&bytes).unwrap().opt.unwrap();
        bytes[opt.rdlength_at - 4] = extended_rcode;
        if extra_after_opt {
            // Append an A record (owner: pointer to the question name) after the OPT.
            let ar = wire::read_u16(&bytes, 10).unwrap() + 1;
            wire::write_u16(&mut bytes, 10, ar);
            bytes.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 9, 0, 4, 192, 0, 2, 9]);
        }
        bytes
    }

    #[test]
    fn strip_cuts_a_last_opt() {
        let r = response_with_opt(0, false);
        let stripped = strip_opt(&r).unwrap();
        assert!(stripped.len() < r.len());
        // Everything but ARCOUNT is the original prefix, byte for byte.
        assert_eq!(stripped[..10], r[..10]);
        assert_eq!(stripped[12..], r[12..stripped.len()]);
        let m = Message::from_vec(&stripped).unwrap();
        assert!(m.edns.is_none());
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.metadata.id, 7);
        assert_eq!(wire::layout(&stripped).unwrap().header.arcount, 0);
    }

    #[test]
    fn strip_turns_extended_rcode_into_servfail() {
        let r = response_with_opt(1, false);
        let stripped = strip_opt(&r).unwrap();
        assert_eq!(
            wire::read_u16(&stripped, 2).unwrap() & 0x000F,
            RCODE_SERVFAIL
        );
    }

    #[test]
    fn strip_reencodes_when_opt_not_last() {
        let r = response_with_opt(0, true);
        assert!(!wire::layout(&r).unwrap().opt.unwrap().is_last);
        let stripped = strip_opt(&r).unwrap();
        let m = Message::from_vec(&stripped).unwrap();
        assert!(m.edns.is_none());
        assert_eq!(m.additionals.len(), 1);
        assert_eq!(m.answers.len(), 1);
        assert!(wire::layout(&stripped).unwrap().opt.is_none());
    }

    /// Regression (fuzz/regressions/upstream_response/opt-in-authority): a response whose
    /// only OPT record sits in the authority section must be refused, not cut into a
    /// message with NSCOUNT=1 and no authority record.
    #[test]
    fn strip_refuses_opt_in_the_authority_section() {
        let mut r = response_with_opt(0, false);
        let arcount = u16::from_be_bytes([r[10], r[11]]);
        let nscount = u16::from_be_bytes([r[8], r[9]]);
        assert_eq!((arcount, nscount), (1, 0));
        r[9] = 1;
        r[11] = 0;
        assert_eq!(
            strip_opt(&r),
            Err(WireError::OptOutsideAdditional(wire::Section::Authority))
        );
        assert_eq!(
            pad_query(&r),
            Err(WireError::OptOutsideAdditional(wire::Section::Authority))
        );
    }

    #[test]
    fn strip_leaves_opt_less_responses_alone() {
        let mut m = Message::new(9, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(Name::from_ascii("a.").unwrap(), RecordType::A));
        let bytes = m.to_vec().unwrap();
        assert_eq!(strip_opt(&bytes).unwrap(), bytes);
    }

    #[test]
    fn padding_len_hits_blocks() {
        for base in 12..2000 {
            let pad = padding_len(base).unwrap();
            assert_eq!((base + OPTION_HEADER_LEN + pad) % QUERY_BLOCK, 0);
            assert!(pad < QUERY_BLOCK);
        }
        assert!(padding_len(65_500).is_err());
    }
}
