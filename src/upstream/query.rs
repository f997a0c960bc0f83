//! One way to prepare a query for any transport, and to turn the upstream's response back
//! into an answer to the client's query.
//!
//! [`Prepared::new`] checks the client's query (a DNS message with QR=0, exactly one
//! question, well-formed records, at most 65535 bytes once padded) and pads it with EDNS(0)
//! Padding to a multiple of 128 bytes (RFC 8467 §4.1, [`super::padding`]), adding an OPT
//! record when the query had none. [`Prepared::message`] gives the bytes to send under the
//! message ID the transport chooses (a connection-unique one for DoT, 0 for DoH, RFC 8484
//! §4.1). [`Prepared::finish`] restores the client's ID on the response and removes the
//! OPT record again when it was added only to carry the padding.
//!
//! [`Prepared::with_keepalive`] also asks for the server's TCP idle timeout with an empty
//! edns-tcp-keepalive option (RFC 7828, [`super::keepalive`]; DoT only), and
//! [`Prepared::finish`] removes that option from the response again when ctdns added it.

use super::keepalive::{self, KeepaliveOutcome};
use super::padding::{self, PadOutcome};
use super::UpstreamError;
use crate::wire::{self, Header, Question, WireError};

/// A checked (and, when asked, padded) outgoing query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The message to send, with the client's ID still in it.
    bytes: Vec<u8>,
    /// The client's message ID, restored on the response.
    original_id: u16,
    /// The question, which the response must repeat.
    question: Question,
    /// Whether an OPT record was added for padding or keepalive (and is stripped from the
    /// response).
    added_opt: bool,
    /// Whether the keepalive option was added to the client's own OPT record (and is
    /// stripped from the response's).
    added_keepalive: bool,
}

impl Prepared {
    /// Checks `query` and pads it when `pad` is true. A query that cannot be padded without
    /// changing its meaning (signed with TSIG/SIG(0), OPT not last) is sent as it is.
    ///
    /// Errors: [`UpstreamError::MalformedQuery`] naming the wire rule that failed (short
    /// header, QR=1, question count, malformed record, too long).
    pub fn new(query: &[u8], pad: bool) -> Result<Self, UpstreamError> {
        Self::with_keepalive(query, pad, false)
    }

    /// [`Prepared::new`], and when `keepalive` is true, with an empty edns-tcp-keepalive
    /// option added before the padding ([`super::keepalive::add_to_query`]).
    ///
    /// Errors: as [`Prepared::new`].
    pub fn with_keepalive(query: &[u8], pad: bool, keepalive: bool) -> Result<Self, UpstreamError> {
        let header = Header::parse(query).map_err(UpstreamError::MalformedQuery)?;
        if header.is_response() {
            return Err(UpstreamError::MalformedQuery(WireError::NotAQuery));
        }
        let question = wire::question(query).map_err(UpstreamError::MalformedQuery)?;
        let (with_option, outcome) = if keepalive {
            let (bytes, outcome) =
                keepalive::add_to_query(query).map_err(UpstreamError::MalformedQuery)?;
            (Some(bytes), outcome)
        } else {
            (None, KeepaliveOutcome::NotAdded)
        };
        let keepalive_opt = outcome == KeepaliveOutcome::AddedOpt;
        let added_keepalive = outcome == KeepaliveOutcome::AddedOption;
        let query = with_option.as_deref().unwrap_or(query);
        let (bytes, added_opt) = if pad {
            let padded = padding::pad_query(query).map_err(UpstreamError::MalformedQuery)?;
            if !matches!(
                padded.outcome,
                PadOutcome::AddedOpt | PadOutcome::PaddedExistingOpt
            ) {
                tracing::debug!(outcome = ?padded.outcome, "query sent unpadded");
            }
            (padded.bytes, padded.outcome == PadOutcome::AddedOpt)
        } else {
            wire::layout(query).map_err(UpstreamError::MalformedQuery)?;
            (query.to_vec(), false)
        };
        if bytes.len() > usize::from(u16::MAX) {
            return Err(UpstreamError::MalformedQuery(WireError::TooLong {
                len: bytes.len(),
            }));
        }
        Ok(Prepared {
            bytes,
            original_id: header.id,
            question,
            added_opt: added_opt || keepalive_opt,
            added_keepalive,
        })
    }

    /// The bytes to send under message ID `id`.
    pub fn message(&self, id: u16) -> Vec<u8> {
        let mut out = self.bytes.clone();
        super::msgid::set_message_id(&mut out, id);
        out
    }

    /// The bytes to send under message ID `id`, behind the two-byte length prefix of DNS over
    /// a stream (RFC 1035 §4.2.2, RFC 7858): one buffer, built once.
    ///
    /// Errors: [`WireError::TooLong`] if the message does not fit the prefix (never for a
    /// message [`Prepared::with_keepalive`] accepted).
    pub fn frame(&self, id: u16) -> Result<Vec<u8>, WireError> {
        let len = u16::try_from(self.bytes.len()).map_err(|_| WireError::TooLong {
            len: self.bytes.len(),
        })?;
        let mut frame = Vec::with_capacity(self.bytes.len() + 2);
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(&self.bytes);
        if let Some(message) = frame.get_mut(2..) {
            super::msgid::set_message_id(message, id);
        }
        Ok(frame)
    }

    /// The query's question, which the response must repeat.
    pub fn question(&self) -> &Question {
        &self.question
    }

    /// The client's message ID.
    pub fn original_id(&self) -> u16 {
        self.original_id
    }

    /// Whether an OPT record was added to carry the padding (or the keepalive option).
    pub fn added_opt(&self) -> bool {
        self.added_opt
    }

    /// The response as the client's answer: its original message ID restored and, when an
    /// OPT record was added for padding, the response's OPT record removed; otherwise the
    /// response is checked to be a well-formed DNS message. (Whether it answers this
    /// query's question is the transport's check: DoT matches it before delivering.)
    pub fn finish(&self, response: &[u8]) -> Result<Vec<u8>, WireError> {
        let mut out = if self.added_opt {
            padding::strip_opt(response)?
        } else if self.added_keepalive {
            keepalive::strip_from_response(response)?
        } else {
            wire::layout(response)?;
            response.to_vec()
        };
        super::msgid::set_message_id(&mut out, self.original_id);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};
    use std::str::FromStr;

    fn query(id: u16, name: &str, edns: bool) -> Vec<u8> {
        let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = true;
        msg.add_query(Query::query(Name::from_str(name).unwrap(), RecordType::A));
        if edns {
            msg.set_edns(Edns::new());
        }
        msg.to_vec().unwrap()
    }

    #[test]
    fn padded_to_128_byte_blocks_under_any_id() {
        for edns in [false, true] {
            let q = query(0xBEEF, "example.com.", edns);
            let p = Prepared::new(&q, true).unwrap();
            assert_eq!(p.added_opt(), !edns);
            assert_eq!(p.original_id(), 0xBEEF);
            for id in [0, 7, 0xFFFF] {
                let m = p.message(id);
                assert_eq!(m.len() % padding::QUERY_BLOCK, 0, "{} bytes", m.len());
                assert_eq!(&m[..2], &id.to_be_bytes());
                assert_eq!(&m[2..], &padding::pad_query(&q).unwrap().bytes[2..]);
            }
            assert_eq!(p.question(), &wire::question(&q).unwrap());
        }
    }

    #[test]
    fn frame_is_the_message_behind_its_length() {
        for pad in [false, true] {
            let q = query(0xBEEF, "example.com.", false);
            let p = Prepared::new(&q, pad).unwrap();
            let frame = p.frame(0x0102).unwrap();
            let message = p.message(0x0102);
            assert_eq!(
                &frame[..2],
                &u16::try_from(message.len()).unwrap().to_be_bytes()
            );
            assert_eq!(&frame[2..], &message[..]);
        }
    }

    #[test]
    fn unpadded_when_not_asked() {
        let q = query(1, "example.com.", false);
        let p = Prepared::new(&q, false).unwrap();
        assert!(!p.added_opt());
        assert_eq!(p.message(1), q);
    }

    #[test]
    fn finish_restores_the_id_and_strips_the_added_opt() {
        let q = query(0x1234, "example.com.", false);
        let p = Prepared::new(&q, true).unwrap();
        let mut resp = Message::from_vec(&p.message(0)).unwrap();
        resp.metadata.message_type = MessageType::Response;
        let out = p.finish(&resp.to_vec().unwrap()).unwrap();
        let back = Message::from_vec(&out).unwrap();
        assert_eq!(back.metadata.id, 0x1234);
        assert!(back.edns.is_none(), "the OPT ctdns added is gone");
        // A response that is not a DNS message is refused, not passed on.
        assert!(p.finish(&[0u8; 5]).is_err());
        let unpadded = Prepared::new(&q, false).unwrap();
        assert!(unpadded.finish(&out[..out.len() - 1]).is_err());
    }

    #[test]
    fn keepalive_is_asked_for_and_hidden_from_the_client() {
        use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
        for edns in [false, true] {
            let q = query(0x99, "example.com.", edns);
            let p = Prepared::with_keepalive(&q, true, true).unwrap();
            let sent = Message::from_vec(&p.message(3)).unwrap();
            let opt = sent.edns.clone().unwrap();
            assert!(opt.option(EdnsCode::Keepalive).is_some(), "edns {edns}");
            assert!(opt.option(EdnsCode::Padding).is_some(), "edns {edns}");
            assert_eq!(p.message(3).len() % padding::QUERY_BLOCK, 0);
            // The server answers with its timeout (and, for the client's OPT, keeps it).
            let mut resp = sent.clone();
            resp.metadata.message_type = MessageType::Response;
            let mut e = Edns::new();
            e.options_mut()
                .insert(EdnsOption::Unknown(11, 20u16.to_be_bytes().to_vec()));
            resp.set_edns(e);
            let raw = resp.to_vec().unwrap();
            assert_eq!(
                keepalive::server_timeout(&raw),
                Some(std::time::Duration::from_secs(2))
            );
            let back = Message::from_vec(&p.finish(&raw).unwrap()).unwrap();
            assert_eq!(back.metadata.id, 0x99);
            match back.edns {
                None => assert!(!edns, "the client's own OPT record must stay"),
                Some(opt) => {
                    assert!(edns, "an OPT record ctdns added must go");
                    assert!(opt.option(EdnsCode::Keepalive).is_none());
                }
            }
        }
        // Without the flag nothing changes.
        let q = query(1, "example.com.", true);
        assert_eq!(
            Prepared::with_keepalive(&q, false, false)
                .unwrap()
                .message(1),
            Prepared::new(&q, false).unwrap().message(1)
        );
    }

    #[test]
    fn unusable_queries_name_the_rule() {
        let q = query(1, "example.com.", false);
        let rule = |bytes: &[u8]| match Prepared::new(bytes, true) {
            Err(UpstreamError::MalformedQuery(e)) => e,
            other => panic!("expected MalformedQuery, got {other:?}"),
        };
        assert!(matches!(rule(&q[..11]), WireError::ShortHeader { len: 11 }));
        let mut response = q.clone();
        response[2] |= 0x80;
        assert!(matches!(rule(&response), WireError::NotAQuery));
        assert!(matches!(
            rule(&q[..q.len() - 3]),
            WireError::Truncated { .. }
        ));
        let mut two = q.clone();
        two[5] = 2;
        assert!(matches!(rule(&two), WireError::QuestionCount(2)));
    }
}
