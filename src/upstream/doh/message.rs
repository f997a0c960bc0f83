//! The DNS side of a DoH exchange: the query as sent (message ID 0, RFC 8484 §4.1; checked
//! and padded with EDNS(0) Padding to 128-byte blocks by the same code as DoT, RFC 8467
//! §4.1, see [`crate::upstream::query`]) and the checks a response body must pass before its
//! original ID is restored (and the OPT record ctdns added for padding, if any, removed).
//!
//! Both directions use the wire checks DoT uses ([`crate::wire`]): header, QR bit, the one
//! question compared case-insensitively, and the record layout. No message is decoded into
//! a full record tree on this path (that cost more than the HTTP/2 framing per query).

use bytes::Bytes;

use super::DohError;
use crate::upstream::query::Prepared;
use crate::upstream::UpstreamError;
use crate::wire::{self, Header};

/// A validated query ready to be sent over DoH. Exported only with the feature `fuzzing`,
/// for the fuzz targets.
#[derive(Debug, Clone)]
pub struct PreparedQuery {
    /// The checked, padded query; it also holds the question the response must repeat.
    prepared: Prepared,
    /// The query bytes with the message ID set to 0.
    wire: Bytes,
}

impl PreparedQuery {
    /// Checks that `query` is a DNS query and prepares its wire form with ID 0, padded to a
    /// multiple of 128 bytes ([`Prepared::new`]). For tests and the fuzz targets (feature
    /// `fuzzing`); the transport calls [`PreparedQuery::with_padding`].
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn new(query: &[u8]) -> Result<Self, UpstreamError> {
        Self::with_padding(query, true)
    }

    /// As [`PreparedQuery::new`], padding the query only when `pad` is true.
    pub fn with_padding(query: &[u8], pad: bool) -> Result<Self, UpstreamError> {
        let prepared = Prepared::new(query, pad)?;
        let wire = Bytes::from(prepared.message(0));
        Ok(PreparedQuery { prepared, wire })
    }

    /// The bytes to send: the query with message ID 0.
    pub fn wire(&self) -> &Bytes {
        &self.wire
    }

    /// The client's original message ID.
    #[cfg(test)]
    pub(crate) fn original_id(&self) -> u16 {
        self.prepared.original_id()
    }

    /// Checks a response body against this query and returns it with the original
    /// message ID restored, and without the OPT record when ctdns added one for padding.
    ///
    /// Errors: [`DohError::MalformedDns`] (no DNS header or question),
    /// [`DohError::NotAResponse`] (QR=0), [`DohError::QuestionMismatch`], and
    /// [`DohError::MalformedOpt`] (the records do not parse, or the OPT cannot be removed).
    pub fn accept_response(&self, body: &[u8]) -> Result<Vec<u8>, DohError> {
        let header = Header::parse(body).map_err(|source| DohError::MalformedDns { source })?;
        if !header.is_response() {
            return Err(DohError::NotAResponse);
        }
        match wire::question(body) {
            Ok(q) if &q == self.prepared.question() => {}
            Ok(_) | Err(wire::WireError::QuestionCount(_)) => {
                return Err(DohError::QuestionMismatch)
            }
            Err(source) => return Err(DohError::MalformedDns { source }),
        }
        self.prepared.finish(body).map_err(DohError::MalformedOpt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::padding;
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    use std::net::Ipv4Addr;
    use std::str::FromStr;

    fn query(id: u16, name: &str) -> Vec<u8> {
        let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = true;
        msg.add_query(Query::query(Name::from_str(name).unwrap(), RecordType::A));
        msg.to_vec().unwrap()
    }

    fn response_to(wire: &[u8], addr: Ipv4Addr) -> Message {
        let q = Message::from_vec(wire).unwrap();
        let mut resp = Message::response(q.metadata.id, OpCode::Query);
        resp.add_queries(q.queries.clone());
        if let Some(first) = q.queries.first() {
            resp.add_answer(Record::from_rdata(
                first.name.clone(),
                60,
                RData::A(addr.into()),
            ));
        }
        resp
    }

    #[test]
    fn wire_id_is_zero_and_rest_unchanged_without_padding() {
        let q = query(0xBEEF, "example.com.");
        let prepared = PreparedQuery::with_padding(&q, false).unwrap();
        assert_eq!(prepared.original_id(), 0xBEEF);
        assert_eq!(&prepared.wire()[..2], &[0, 0]);
        assert_eq!(&prepared.wire()[2..], &q[2..]);
    }

    #[test]
    fn queries_are_padded_like_dot_and_the_added_opt_is_stripped() {
        let q = query(0xBEEF, "example.com.");
        let prepared = PreparedQuery::new(&q).unwrap();
        let wire = prepared.wire();
        assert_eq!(wire.len() % padding::QUERY_BLOCK, 0, "{} bytes", wire.len());
        assert_eq!(&wire[..2], &[0, 0]);
        let sent = Message::from_vec(wire).unwrap();
        let edns = sent.edns.as_ref().expect("OPT added for padding");
        assert!(edns
            .options()
            .as_ref()
            .iter()
            .any(|(code, _)| u16::from(*code) == padding::PADDING_OPTION));
        // The same bytes the DoT transport would send (ID aside).
        let dot = padding::pad_query(&q).unwrap();
        assert_eq!(&wire[2..], &dot.bytes[2..]);
        // The server echoes an OPT; the client, which sent none, gets none back.
        let mut resp = response_to(wire, Ipv4Addr::new(192, 0, 2, 1));
        resp.set_edns(hickory_proto::op::Edns::new());
        let out = prepared.accept_response(&resp.to_vec().unwrap()).unwrap();
        let back = Message::from_vec(&out).unwrap();
        assert!(back.edns.is_none());
        assert_eq!(back.metadata.id, 0xBEEF);
        assert_eq!(back.answers.len(), 1);
    }

    #[test]
    fn response_gets_original_id_back() {
        let q = query(0x1234, "example.com.");
        let prepared = PreparedQuery::new(&q).unwrap();
        let resp = response_to(prepared.wire(), Ipv4Addr::new(192, 0, 2, 1))
            .to_vec()
            .unwrap();
        assert_eq!(&resp[..2], &[0, 0]);
        let out = prepared.accept_response(&resp).unwrap();
        assert_eq!(&out[..2], &0x1234u16.to_be_bytes());
        assert_eq!(&out[2..], &resp[2..]);
    }

    #[test]
    fn question_match_ignores_case() {
        let prepared = PreparedQuery::new(&query(7, "Example.COM.")).unwrap();
        let other = query(0, "example.com.");
        let resp = response_to(&other, Ipv4Addr::LOCALHOST).to_vec().unwrap();
        assert!(prepared.accept_response(&resp).is_ok());
    }

    #[test]
    fn short_query_refused() {
        assert!(matches!(
            PreparedQuery::new(&[0u8; 11]),
            Err(UpstreamError::MalformedQuery(_))
        ));
    }

    #[test]
    fn garbage_query_refused() {
        let mut q = query(1, "example.com.");
        q.truncate(q.len() - 3);
        assert!(matches!(
            PreparedQuery::new(&q),
            Err(UpstreamError::MalformedQuery(_))
        ));
    }

    #[test]
    fn response_sent_as_query_refused() {
        let q = query(1, "example.com.");
        let resp = response_to(&q, Ipv4Addr::LOCALHOST).to_vec().unwrap();
        assert!(matches!(
            PreparedQuery::new(&resp),
            Err(UpstreamError::MalformedQuery(_))
        ));
    }

    #[test]
    fn wrong_question_refused() {
        let prepared = PreparedQuery::new(&query(1, "example.com.")).unwrap();
        let resp = response_to(&query(0, "example.net."), Ipv4Addr::LOCALHOST)
            .to_vec()
            .unwrap();
        assert!(matches!(
            prepared.accept_response(&resp),
            Err(DohError::QuestionMismatch)
        ));
    }

    #[test]
    fn response_without_the_question_is_a_mismatch() {
        let prepared = PreparedQuery::new(&query(1, "example.com.")).unwrap();
        let mut resp = Message::response(0, OpCode::Query).to_vec().unwrap();
        assert!(matches!(
            prepared.accept_response(&resp),
            Err(DohError::QuestionMismatch)
        ));
        // A header claiming a question the body does not hold is malformed, not a mismatch.
        resp[5] = 1;
        assert!(matches!(
            prepared.accept_response(&resp),
            Err(DohError::MalformedDns { .. })
        ));
        assert!(matches!(
            prepared.accept_response(&resp[..11]),
            Err(DohError::MalformedDns { .. })
        ));
    }

    #[test]
    fn echoed_query_is_not_a_response() {
        let prepared = PreparedQuery::new(&query(1, "example.com.")).unwrap();
        assert!(matches!(
            prepared.accept_response(prepared.wire()),
            Err(DohError::NotAResponse)
        ));
    }

    #[test]
    fn malformed_body_refused_at_every_length() {
        let prepared = PreparedQuery::new(&query(1, "example.com.")).unwrap();
        let resp = response_to(prepared.wire(), Ipv4Addr::LOCALHOST)
            .to_vec()
            .unwrap();
        for cut in 0..resp.len() {
            let truncated = &resp[..cut];
            assert!(
                prepared.accept_response(truncated).is_err(),
                "truncated to {cut} bytes was accepted"
            );
        }
    }
}
