//! The EDNS(0) TCP keepalive option (RFC 7828, option 11) on DoT queries.
//!
//! A client MAY send the option with no data (RFC 7828 §3.2.1) to ask how long the server
//! keeps an idle connection open; a server that supports it answers with the option carrying
//! its idle timeout in units of 100 ms (§3.2.2). ctdns asks on every DoT query and treats
//! the connection as expiring when that time has passed since its last activity
//! ([`super::dot`]), so that a query after a pause opens a new connection instead of
//! writing into one the server has closed.
//!
//! Like the padding ([`super::padding`]), the option is edited in at the byte level only
//! where no other byte has to move: into the query's OPT record when it is the last record,
//! or in a new OPT record when the query has none (stripped whole from the response then).
//! When ctdns added the option to the client's own OPT record, [`strip_from_response`]
//! removes it from the response's OPT record again, so the client never sees an answer to
//! a question it did not ask. Signed queries (TSIG, SIG(0)) are left alone.

use std::time::Duration;

use crate::wire::{self, header, WireError, TYPE_OPT};

/// The EDNS(0) option code of edns-tcp-keepalive (RFC 7828).
pub const KEEPALIVE_OPTION: u16 = 11;

/// Size of an option's code and length fields.
const OPTION_HEADER_LEN: usize = 4;
/// RDLENGTH of an added OPT record holding only the empty keepalive option.
const EMPTY_OPTION_RDLENGTH: u16 = 4;

/// What [`add_to_query`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepaliveOutcome {
    /// The query had no OPT record: one was added carrying the option (strip the whole OPT
    /// record from the response, [`super::padding::strip_opt`]).
    AddedOpt,
    /// The option was appended to the query's own OPT record (strip it from the response
    /// with [`strip_from_response`]).
    AddedOption,
    /// The client's query already carried the option: left as it is.
    ClientAsked,
    /// Left out: the query is signed, or its OPT record is not its last record.
    NotAdded,
}

/// `query` with an empty edns-tcp-keepalive option, and what was done.
///
/// Errors: the [`WireError`] of a malformed query.
pub fn add_to_query(query: &[u8]) -> Result<(Vec<u8>, KeepaliveOutcome), WireError> {
    let layout = wire::layout(query)?;
    if layout.signed {
        return Ok((query.to_vec(), KeepaliveOutcome::NotAdded));
    }
    match layout.opt {
        Some(opt) if !opt.is_last => Ok((query.to_vec(), KeepaliveOutcome::NotAdded)),
        Some(opt) => {
            let rdata = query
                .get(opt.rdlength_at + 2..opt.end)
                .ok_or(WireError::BadOptOptions)?;
            if find_option(rdata, KEEPALIVE_OPTION)?.is_some() {
                return Ok((query.to_vec(), KeepaliveOutcome::ClientAsked));
            }
            let rdlength =
                u16::try_from(rdata.len() + OPTION_HEADER_LEN).map_err(|_| WireError::TooLong {
                    len: query.len() + OPTION_HEADER_LEN,
                })?;
            let mut out = query.to_vec();
            if !wire::write_u16(&mut out, opt.rdlength_at, rdlength) {
                return Err(WireError::BadOptOptions);
            }
            push_empty_option(&mut out);
            Ok((out, KeepaliveOutcome::AddedOption))
        }
        None => {
            let arcount = layout
                .header
                .arcount
                .checked_add(1)
                .ok_or(WireError::CountOverflow)?;
            let mut out = query.to_vec();
            if !wire::write_u16(&mut out, header::ARCOUNT, arcount) {
                return Err(WireError::ShortHeader { len: query.len() });
            }
            out.push(0); // root owner name
            out.extend_from_slice(&TYPE_OPT.to_be_bytes());
            out.extend_from_slice(&super::padding::ADDED_OPT_PAYLOAD.to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, 0]); // extended RCODE, version 0, no flags
            out.extend_from_slice(&EMPTY_OPTION_RDLENGTH.to_be_bytes());
            push_empty_option(&mut out);
            Ok((out, KeepaliveOutcome::AddedOpt))
        }
    }
}

/// The idle timeout a response announces in its edns-tcp-keepalive option, if it carries
/// one with a timeout (RFC 7828 §3.2.2: 16 bits, units of 100 ms). A malformed response
/// announces nothing.
pub fn server_timeout(response: &[u8]) -> Option<Duration> {
    let layout = wire::layout(response).ok()?;
    let opt = layout.opt?;
    let rdata = response.get(opt.rdlength_at + 2..opt.end)?;
    let (start, len) = find_option(rdata, KEEPALIVE_OPTION).ok()??;
    if len != 2 {
        return None;
    }
    let units = wire::read_u16(rdata, start + OPTION_HEADER_LEN)?;
    Some(Duration::from_millis(u64::from(units) * 100))
}

/// `response` without its edns-tcp-keepalive option (for a query whose own OPT record got
/// the option from ctdns). A response whose OPT record is not its last record is returned
/// unchanged: cutting bytes out of its middle could break compression pointers.
///
/// Errors: the [`WireError`] of a malformed response.
pub fn strip_from_response(response: &[u8]) -> Result<Vec<u8>, WireError> {
    let layout = wire::layout(response)?;
    let Some(opt) = layout.opt.filter(|o| o.is_last) else {
        return Ok(response.to_vec());
    };
    let rdata_at = opt.rdlength_at + 2;
    let rdata = response
        .get(rdata_at..opt.end)
        .ok_or(WireError::BadOptOptions)?;
    let Some((start, len)) = find_option(rdata, KEEPALIVE_OPTION)? else {
        return Ok(response.to_vec());
    };
    let cut_from = rdata_at + start;
    let cut_to = cut_from + OPTION_HEADER_LEN + len;
    let rdlength = u16::try_from(rdata.len() - (OPTION_HEADER_LEN + len))
        .map_err(|_| WireError::BadOptOptions)?;
    let mut out = Vec::with_capacity(response.len());
    out.extend_from_slice(response.get(..cut_from).ok_or(WireError::BadOptOptions)?);
    out.extend_from_slice(response.get(cut_to..).ok_or(WireError::BadOptOptions)?);
    if !wire::write_u16(&mut out, opt.rdlength_at, rdlength) {
        return Err(WireError::BadOptOptions);
    }
    Ok(out)
}

/// The offset (within `rdata`) and data length of the first option `code`, if present.
fn find_option(rdata: &[u8], code: u16) -> Result<Option<(usize, usize)>, WireError> {
    let mut pos = 0;
    while pos < rdata.len() {
        let this = wire::read_u16(rdata, pos).ok_or(WireError::BadOptOptions)?;
        let len = usize::from(wire::read_u16(rdata, pos + 2).ok_or(WireError::BadOptOptions)?);
        let end = pos + OPTION_HEADER_LEN + len;
        if end > rdata.len() {
            return Err(WireError::BadOptOptions);
        }
        if this == code {
            return Ok(Some((pos, len)));
        }
        pos = end;
    }
    Ok(None)
}

fn push_empty_option(out: &mut Vec<u8>) {
    out.extend_from_slice(&KEEPALIVE_OPTION.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    use hickory_proto::rr::{Name, RecordType};

    fn query(edns: Option<Edns>) -> Vec<u8> {
        let mut m = Message::new(7, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(
            Name::from_ascii("a.test.").unwrap(),
            RecordType::A,
        ));
        if let Some(e) = edns {
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    fn keepalive_of(msg: &[u8]) -> Option<Vec<u8>> {
        let m = Message::from_vec(msg).unwrap();
        match m.edns?.option(EdnsCode::Keepalive)? {
            EdnsOption::Unknown(_, data) => Some(data.clone()),
            other => panic!("unexpected keepalive option {other:?}"),
        }
    }

    /// A response to `query` carrying a keepalive option with `units` (and a cookie-like
    /// unknown option before it).
    fn response_with(units: Option<u16>) -> Vec<u8> {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(
            Name::from_ascii("a.test.").unwrap(),
            RecordType::A,
        ));
        let mut edns = Edns::new();
        edns.options_mut()
            .insert(EdnsOption::Unknown(65001, vec![1, 2, 3]));
        if let Some(u) = units {
            edns.options_mut().insert(EdnsOption::Unknown(
                KEEPALIVE_OPTION,
                u.to_be_bytes().to_vec(),
            ));
        }
        m.set_edns(edns);
        m.to_vec().unwrap()
    }

    #[test]
    fn added_empty_to_a_query_without_opt() {
        let (out, outcome) = add_to_query(&query(None)).unwrap();
        assert_eq!(outcome, KeepaliveOutcome::AddedOpt);
        assert_eq!(keepalive_of(&out), Some(vec![]));
        assert_eq!(Message::from_vec(&out).unwrap().additionals.len(), 0);
    }

    #[test]
    fn appended_to_the_clients_opt_once() {
        let (out, outcome) = add_to_query(&query(Some(Edns::new()))).unwrap();
        assert_eq!(outcome, KeepaliveOutcome::AddedOption);
        assert_eq!(keepalive_of(&out), Some(vec![]));
        let (again, outcome) = add_to_query(&out).unwrap();
        assert_eq!(outcome, KeepaliveOutcome::ClientAsked);
        assert_eq!(again, out);
        // Padding still fits after it.
        let padded = super::super::padding::pad_query(&out).unwrap();
        assert_eq!(padded.bytes.len() % 128, 0);
        assert_eq!(keepalive_of(&padded.bytes), Some(vec![]));
    }

    #[test]
    fn reads_the_servers_timeout() {
        assert_eq!(
            server_timeout(&response_with(Some(15))),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(server_timeout(&response_with(None)), None);
        assert_eq!(server_timeout(&query(None)), None);
        assert_eq!(server_timeout(&[1, 2, 3]), None);
    }

    #[test]
    fn stripped_from_the_response_and_nothing_else() {
        let stripped = strip_from_response(&response_with(Some(100))).unwrap();
        assert_eq!(keepalive_of(&stripped), None);
        let m = Message::from_vec(&stripped).unwrap();
        let edns = m.edns.unwrap();
        assert!(edns.option(EdnsCode::Unknown(65001)).is_some());
        let plain = response_with(None);
        assert_eq!(strip_from_response(&plain).unwrap(), plain);
        assert!(strip_from_response(&[0u8; 5]).is_err());
    }
}
