//! What the stub does with a client's message before any upstream is involved: sort it into
//! a query to resolve, an error to answer (FORMERR, NOTIMP, BADVERS) or something to drop;
//! and the messages the stub writes itself (the upstream query, SERVFAIL).

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};

use super::cache::CacheKey;
use super::error::Protocol;
use super::options::{MAX_UDP_PAYLOAD, MIN_UDP_PAYLOAD};
use super::wire::{self, header, HEADER_LEN};

/// A well-formed client query, borrowing the bytes it was read from.
#[derive(Debug, Clone)]
pub struct ClientQuery<'a> {
    pub(crate) id: u16,
    pub(crate) recursion_desired: bool,
    pub(crate) checking_disabled: bool,
    pub(crate) dnssec_ok: bool,
    /// Whether the query carried an OPT record (then so must the response, RFC 6891 §7).
    pub(crate) edns: bool,
    /// Largest response this client takes over UDP.
    pub(crate) udp_limit: usize,
    /// The question exactly as the client wrote it (name, type, class), so that responses
    /// echo its letter case (clients using 0x20 mixed case check it).
    pub(crate) question: &'a [u8],
    pub(crate) query: Query,
    pub(crate) key: CacheKey,
}

impl ClientQuery<'_> {
    /// The cache key of this query.
    pub fn key(&self) -> &CacheKey {
        &self.key
    }

    /// The largest response this query's client accepts over `proto`.
    pub fn size_limit(&self, proto: Protocol) -> usize {
        match proto {
            Protocol::Udp => self.udp_limit,
            Protocol::Tcp => usize::from(u16::MAX),
        }
    }
}

/// Why a message gets no response at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Shorter than the 12-byte DNS header: there is not even an ID to answer.
    ShortHeader,
    /// A response (QR=1) arriving over UDP. Answering it could start a loop between two
    /// servers answering each other's error responses (the source address of a datagram is
    /// not authenticated), so it is dropped, as BIND and Unbound do. Over TCP it gets FORMERR.
    ResponseOverUdp,
}

/// Which error the stub answers a message with, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// FORMERR: the message does not decode (RFC 1035 §4.1.1).
    Undecodable,
    /// FORMERR: QDCOUNT is not 1.
    QuestionCount,
    /// FORMERR: the question name uses compression or is otherwise not a plain name.
    BadQuestion,
    /// FORMERR: a response (QR=1) over TCP.
    NotAQuery,
    /// NOTIMP: an opcode other than QUERY (RFC 1035 §4.1.1).
    OpcodeNotQuery,
    /// BADVERS: an EDNS version other than 0 (RFC 6891 §6.1.3).
    EdnsVersion,
}

impl Refusal {
    /// The RCODE of the response.
    pub fn response_code(self) -> ResponseCode {
        match self {
            Refusal::OpcodeNotQuery => ResponseCode::NotImp,
            Refusal::EdnsVersion => ResponseCode::BADVERS,
            _ => ResponseCode::FormErr,
        }
    }
}

/// What to do with one message from a client.
#[derive(Debug)]
pub enum Classified<'a> {
    /// A query to resolve.
    Query(Box<ClientQuery<'a>>),
    /// A message answered at once with an error response.
    Refuse {
        /// The response to send.
        response: Vec<u8>,
        /// Why.
        reason: Refusal,
    },
    /// A message dropped without a response.
    Drop(DropReason),
}

/// Sorts one client message (RFC 1035 §4.1, RFC 6891).
pub fn classify(bytes: &[u8], proto: Protocol) -> Classified<'_> {
    let (Some(id), Some(&flags)) = (wire::u16_at(bytes, 0), bytes.get(header::FLAGS_HI)) else {
        return Classified::Drop(DropReason::ShortHeader);
    };
    if bytes.len() < HEADER_LEN {
        return Classified::Drop(DropReason::ShortHeader);
    }
    let op_code = OpCode::from_u8((flags >> 3) & 0x0F);
    let rd = flags & header::RD != 0;
    let refuse = |reason: Refusal| Classified::Refuse {
        response: header_only_response(id, op_code, rd, reason.response_code()),
        reason,
    };
    if flags & header::QR != 0 {
        return match proto {
            Protocol::Udp => Classified::Drop(DropReason::ResponseOverUdp),
            Protocol::Tcp => refuse(Refusal::NotAQuery),
        };
    }
    if op_code != OpCode::Query {
        return refuse(Refusal::OpcodeNotQuery);
    }
    let Ok(message) = Message::from_vec(bytes) else {
        return refuse(Refusal::Undecodable);
    };
    let mut queries = message.queries;
    let (Some(query), true) = (queries.pop(), queries.is_empty()) else {
        return refuse(Refusal::QuestionCount);
    };
    let Ok(qname_end) = wire::uncompressed_name_end(bytes, HEADER_LEN) else {
        return refuse(Refusal::BadQuestion);
    };
    let Some(question) = bytes.get(HEADER_LEN..qname_end + 4) else {
        return refuse(Refusal::BadQuestion);
    };
    let (qtype, qclass) = match (
        wire::u16_at(bytes, qname_end),
        wire::u16_at(bytes, qname_end + 2),
    ) {
        (Some(t), Some(c)) => (t, c),
        _ => return refuse(Refusal::BadQuestion),
    };

    let edns = message.edns.as_ref();
    if let Some(e) = edns {
        if e.version() != 0 {
            return Classified::Refuse {
                response: badvers_response(id, rd, &query),
                reason: Refusal::EdnsVersion,
            };
        }
    }
    let dnssec_ok = edns.is_some_and(|e| e.flags().dnssec_ok);
    let checking_disabled = message.metadata.checking_disabled;
    let udp_limit = match edns {
        Some(e) => e.max_payload().clamp(MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD),
        None => MIN_UDP_PAYLOAD,
    };
    let qname = question
        .get(..qname_end - HEADER_LEN)
        .unwrap_or_default()
        .to_ascii_lowercase();
    Classified::Query(Box::new(ClientQuery {
        id,
        recursion_desired: rd,
        checking_disabled,
        dnssec_ok,
        edns: edns.is_some(),
        udp_limit: usize::from(udp_limit),
        question,
        query,
        key: CacheKey::new(
            qname.into_boxed_slice(),
            qtype,
            qclass,
            dnssec_ok,
            checking_disabled,
        ),
    }))
}

/// The query the stub sends upstream for a client query: same ID and question, RD set, CD
/// and DO as the client asked, AD set (RFC 6840 §5.7: the stub understands it), and an OPT
/// record without any of the client's EDNS options (no client subnet, cookies or padding
/// leave the machine).
pub fn upstream_query(q: &ClientQuery<'_>) -> Result<Vec<u8>, hickory_proto::ProtoError> {
    let mut m = Message::new(q.id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.metadata.checking_disabled = q.checking_disabled;
    m.metadata.authentic_data = true;
    m.add_query(q.query.clone());
    m.set_edns(stub_edns(q.dnssec_ok));
    m.to_vec()
}

/// The OPT record the stub puts in its messages.
pub(crate) fn stub_edns(dnssec_ok: bool) -> Edns {
    let mut e = Edns::new();
    e.set_max_payload(MAX_UDP_PAYLOAD);
    e.set_version(0);
    e.set_dnssec_ok(dnssec_ok);
    e
}

/// SERVFAIL for a query the stub could not get answered: the client's ID, RD, CD and
/// question, RA set, and an OPT record when the client sent one.
pub fn servfail(q: &ClientQuery<'_>) -> Vec<u8> {
    let mut m = Message::error_msg(q.id, OpCode::Query, ResponseCode::ServFail);
    m.metadata.recursion_desired = q.recursion_desired;
    m.metadata.recursion_available = true;
    m.metadata.checking_disabled = q.checking_disabled;
    m.add_query(q.query.clone());
    if q.edns {
        m.set_edns(stub_edns(q.dnssec_ok));
    }
    m.to_vec().unwrap_or_else(|_| {
        header_only_response(
            q.id,
            OpCode::Query,
            q.recursion_desired,
            ResponseCode::ServFail,
        )
    })
}

/// A 12-byte response carrying only a header: the ID, QR, opcode and RD of the message it
/// answers, and `rcode`. Used when the message could not be decoded far enough to echo more.
pub fn header_only_response(id: u16, op_code: OpCode, rd: bool, rcode: ResponseCode) -> Vec<u8> {
    let mut b = vec![0u8; HEADER_LEN];
    wire::put_u16(&mut b, 0, id);
    let op: u8 = op_code.into();
    if let Some(hi) = b.get_mut(header::FLAGS_HI) {
        *hi = header::QR | ((op & 0x0F) << 3) | if rd { header::RD } else { 0 };
    }
    if let Some(lo) = b.get_mut(header::FLAGS_LO) {
        // RA: this server offers recursion (through its upstream).
        *lo = 0x80 | (rcode.low() & 0x0F);
    }
    b
}

/// BADVERS (RFC 6891 §6.1.3): the stub speaks EDNS version 0 only, and says so in its OPT.
fn badvers_response(id: u16, rd: bool, query: &Query) -> Vec<u8> {
    let mut m = Message::error_msg(id, OpCode::Query, ResponseCode::BADVERS);
    m.metadata.recursion_desired = rd;
    m.metadata.recursion_available = true;
    m.add_query(query.clone());
    m.set_edns(stub_edns(false));
    m.to_vec()
        .unwrap_or_else(|_| header_only_response(id, OpCode::Query, rd, ResponseCode::FormErr))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hickory_proto::rr::{Name, RecordType};

    /// A query for `name`/`qtype` with the given ID and, optionally, EDNS payload and DO.
    pub(crate) fn query_bytes(
        id: u16,
        name: &str,
        qtype: RecordType,
        edns: Option<(u16, bool)>,
    ) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        if let Some((payload, dnssec_ok)) = edns {
            let mut e = Edns::new();
            e.set_max_payload(payload);
            e.set_dnssec_ok(dnssec_ok);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    fn refusal(bytes: &[u8], proto: Protocol) -> (Message, Refusal) {
        match classify(bytes, proto) {
            Classified::Refuse { response, reason } => {
                (Message::from_vec(&response).unwrap(), reason)
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn short_messages_are_dropped() {
        for len in 0..HEADER_LEN {
            let b = vec![0u8; len];
            assert!(matches!(
                classify(&b, Protocol::Udp),
                Classified::Drop(DropReason::ShortHeader)
            ));
        }
    }

    #[test]
    fn undecodable_body_gets_formerr_with_same_id() {
        let mut b = query_bytes(0xBEEF, "example.com.", RecordType::A, None);
        b.truncate(b.len() - 3);
        let (m, reason) = refusal(&b, Protocol::Udp);
        assert_eq!(reason, Refusal::Undecodable);
        assert_eq!(m.metadata.id, 0xBEEF);
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
        assert_eq!(m.metadata.message_type, MessageType::Response);
        assert!(m.metadata.recursion_desired);
    }

    #[test]
    fn header_only_garbage_gets_formerr() {
        // 12-byte header claiming one question, then nothing.
        let b = [0x00, 0x07, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
        let (m, reason) = refusal(&b, Protocol::Udp);
        assert_eq!(reason, Refusal::Undecodable);
        assert_eq!(m.metadata.id, 7);
    }

    #[test]
    fn two_questions_or_none_get_formerr() {
        let mut m = Message::new(9, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(
            Name::from_ascii("a.example.").unwrap(),
            RecordType::A,
        ));
        m.add_query(Query::query(
            Name::from_ascii("b.example.").unwrap(),
            RecordType::A,
        ));
        let (r, reason) = refusal(&m.to_vec().unwrap(), Protocol::Tcp);
        assert_eq!(reason, Refusal::QuestionCount);
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        assert_eq!(r.metadata.id, 9);

        let m = Message::new(10, MessageType::Query, OpCode::Query);
        let (_, reason) = refusal(&m.to_vec().unwrap(), Protocol::Udp);
        assert_eq!(reason, Refusal::QuestionCount);
    }

    #[test]
    fn other_opcodes_get_notimp() {
        let mut b = query_bytes(11, "example.com.", RecordType::A, None);
        b[2] = (b[2] & 0x87) | (2 << 3); // STATUS
        let (m, reason) = refusal(&b, Protocol::Udp);
        assert_eq!(reason, Refusal::OpcodeNotQuery);
        assert_eq!(m.metadata.response_code, ResponseCode::NotImp);
        assert_eq!(m.metadata.op_code, OpCode::Status);
        assert_eq!(m.metadata.id, 11);
    }

    #[test]
    fn responses_dropped_over_udp_and_formerr_over_tcp() {
        let mut b = query_bytes(12, "example.com.", RecordType::A, None);
        b[2] |= header::QR;
        assert!(matches!(
            classify(&b, Protocol::Udp),
            Classified::Drop(DropReason::ResponseOverUdp)
        ));
        let (m, reason) = refusal(&b, Protocol::Tcp);
        assert_eq!(reason, Refusal::NotAQuery);
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    }

    #[test]
    fn edns_version_1_gets_badvers_with_opt() {
        let mut m = Message::new(13, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(
            Name::from_ascii("example.com.").unwrap(),
            RecordType::A,
        ));
        let mut e = Edns::new();
        e.set_version(1);
        m.set_edns(e);
        let (r, reason) = refusal(&m.to_vec().unwrap(), Protocol::Udp);
        assert_eq!(reason, Refusal::EdnsVersion);
        // RCODE 16 is both BADVERS and BADSIG; hickory decodes it as the latter.
        assert_eq!(u16::from(r.metadata.response_code), 16);
        assert_eq!(r.edns.map(|e| e.version()), Some(0));
    }

    #[test]
    fn duplicate_opt_gets_formerr() {
        let mut b = query_bytes(14, "example.com.", RecordType::A, Some((1232, false)));
        let opt = b[b.len() - 11..].to_vec();
        b.extend_from_slice(&opt);
        b[11] = 2; // ARCOUNT
        let (_, reason) = refusal(&b, Protocol::Udp);
        assert_eq!(reason, Refusal::Undecodable);
    }

    #[test]
    fn query_fields_and_cache_key() {
        let b = query_bytes(15, "ExAmPle.COM.", RecordType::AAAA, Some((1232, true)));
        let Classified::Query(q) = classify(&b, Protocol::Udp) else {
            panic!("expected a query");
        };
        assert_eq!(q.id, 15);
        assert!(q.edns && q.dnssec_ok && !q.checking_disabled);
        assert_eq!(q.udp_limit, 1232);
        assert_eq!(q.question, &b[12..12 + 13 + 4]);
        let lower = query_bytes(16, "example.com.", RecordType::AAAA, Some((4096, true)));
        let Classified::Query(q2) = classify(&lower, Protocol::Udp) else {
            panic!("expected a query");
        };
        assert_eq!(q.key, q2.key);
        let no_do = query_bytes(17, "example.com.", RecordType::AAAA, Some((4096, false)));
        let Classified::Query(q3) = classify(&no_do, Protocol::Udp) else {
            panic!("expected a query");
        };
        assert_ne!(q.key, q3.key);
    }

    #[test]
    fn udp_limit_is_clamped() {
        for (advertised, expected) in [
            (None, 512),
            (Some(100), 512),
            (Some(1232), 1232),
            (Some(65000), 4096),
        ] {
            let b = query_bytes(
                1,
                "example.com.",
                RecordType::A,
                advertised.map(|p| (p, false)),
            );
            let Classified::Query(q) = classify(&b, Protocol::Udp) else {
                panic!("expected a query");
            };
            assert_eq!(q.size_limit(Protocol::Udp), expected, "{advertised:?}");
            assert_eq!(q.size_limit(Protocol::Tcp), 65535);
        }
    }

    #[test]
    fn upstream_query_strips_client_options_and_keeps_do_cd() {
        let mut b = query_bytes(18, "example.com.", RecordType::A, Some((512, true)));
        b[3] |= 0x10; // CD
        let Classified::Query(q) = classify(&b, Protocol::Udp) else {
            panic!("expected a query");
        };
        let up = Message::from_vec(&upstream_query(&q).unwrap()).unwrap();
        assert_eq!(up.metadata.id, 18);
        assert!(up.metadata.recursion_desired && up.metadata.checking_disabled);
        let e = up.edns.unwrap();
        assert!(e.flags().dnssec_ok);
        assert_eq!(e.max_payload(), MAX_UDP_PAYLOAD);
        assert_eq!(up.queries.len(), 1);
    }

    #[test]
    fn servfail_echoes_question_and_opt() {
        let b = query_bytes(19, "Example.com.", RecordType::MX, Some((1232, false)));
        let Classified::Query(q) = classify(&b, Protocol::Udp) else {
            panic!("expected a query");
        };
        let r = Message::from_vec(&servfail(&q)).unwrap();
        assert_eq!(r.metadata.id, 19);
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(r.queries[0].name().to_ascii(), "Example.com.");
        assert!(r.edns.is_some());
        let b = query_bytes(20, "example.com.", RecordType::MX, None);
        let Classified::Query(q) = classify(&b, Protocol::Udp) else {
            panic!("expected a query");
        };
        assert!(Message::from_vec(&servfail(&q)).unwrap().edns.is_none());
    }
}
