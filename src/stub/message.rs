//! What the stub does with a client's message before any upstream is involved: sort it into
//! a query to resolve, an error to answer (FORMERR, NOTIMP, BADVERS) or something to drop;
//! and the messages the stub writes itself (the upstream query, SERVFAIL).

use hickory_proto::op::{Edns, Message, OpCode, Query, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, DecodeError};

use super::error::Protocol;
use super::options::{MAX_UDP_PAYLOAD, MIN_UDP_PAYLOAD};
use crate::wire::{self, header, HEADER_LEN};

/// What identifies a cached answer: the question name (lowercase wire format), type and
/// class, and the DO and CD bits of the query, which change what an upstream returns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    qname: Box<[u8]>,
    qtype: u16,
    qclass: u16,
    dnssec_ok: bool,
    checking_disabled: bool,
}

impl CacheKey {
    /// A key from the lowercase wire-format name and the query's type, class, DO and CD.
    pub fn new(
        qname: Box<[u8]>,
        qtype: u16,
        qclass: u16,
        dnssec_ok: bool,
        checking_disabled: bool,
    ) -> Self {
        Self {
            qname,
            qtype,
            qclass,
            dnssec_ok,
            checking_disabled,
        }
    }

    /// Length of the wire-format question name (for the cache's byte budget).
    pub fn name_len(&self) -> usize {
        self.qname.len()
    }
}

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
    pub(crate) key: CacheKey,
}

impl ClientQuery<'_> {
    /// The question as hickory-proto's [`Query`], decoded from [`Self::question`] when it is
    /// needed (not on the cache-hit path). It always decodes: [`classify`] only accepts
    /// questions hickory-proto decodes.
    pub(crate) fn query(&self) -> Result<Query, DecodeError> {
        Query::read(&mut BinDecoder::new(self.question))
    }

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

/// What [`classify`] reads from a message past its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parsed {
    /// Position just after the question name.
    qname_end: usize,
    /// The OPT record's fields, if the message has one.
    edns: Option<EdnsFields>,
}

/// The fields of an OPT record the stub uses (RFC 6891 §6.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EdnsFields {
    version: u8,
    dnssec_ok: bool,
    /// The requestor's UDP payload size (the CLASS field).
    max_payload: u16,
}

/// Sorts one client message (RFC 1035 §4.1, RFC 6891).
///
/// Queries of the usual shape (one question, no answer or authority records, at most an OPT
/// record, nothing after it) are read by a byte-level walk (`quick_parse`); anything else
/// is decoded by hickory-proto as a whole (`full_parse`). The walk accepts only messages
/// hickory-proto decodes and reads the same fields from them, so both give the same result
/// (the test `quick_and_full_parse_agree` checks this on many messages).
pub fn classify(bytes: &[u8], proto: Protocol) -> Classified<'_> {
    let (Some(id), Some(&flags)) = (
        wire::read_u16(bytes, header::ID),
        bytes.get(header::FLAGS_HI),
    ) else {
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
    let parsed = match quick_parse(bytes) {
        Some(parsed) => parsed,
        None => match full_parse(bytes) {
            Ok(parsed) => parsed,
            Err(reason) => return refuse(reason),
        },
    };
    let qname_end = parsed.qname_end;
    let Some(question) = bytes.get(HEADER_LEN..qname_end + 4) else {
        return refuse(Refusal::BadQuestion);
    };
    let (qtype, qclass) = match (
        wire::read_u16(bytes, qname_end),
        wire::read_u16(bytes, qname_end + 2),
    ) {
        (Some(t), Some(c)) => (t, c),
        _ => return refuse(Refusal::BadQuestion),
    };

    let edns = parsed.edns;
    if let Some(e) = edns {
        if e.version != 0 {
            return Classified::Refuse {
                response: badvers_response(id, rd, question),
                reason: Refusal::EdnsVersion,
            };
        }
    }
    let dnssec_ok = edns.is_some_and(|e| e.dnssec_ok);
    let checking_disabled = bytes
        .get(header::FLAGS_LO)
        .is_some_and(|lo| lo & header::CD != 0);
    let udp_limit = match edns {
        Some(e) => e.max_payload.clamp(MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD),
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
        key: CacheKey::new(
            qname.into_boxed_slice(),
            qtype,
            qclass,
            dnssec_ok,
            checking_disabled,
        ),
    }))
}

/// EDNS option codes hickory-proto parses into structures (and so may refuse): NSID, DAU
/// and Client Subnet. A query carrying one goes to [`full_parse`].
const PARSED_OPTION_CODES: [u16; 3] = [3, 5, 8];

/// Reads a query of the usual shape at the byte level, or `None` when the message has any
/// other shape (then [`full_parse`] decides). Accepts exactly: QDCOUNT 1, ANCOUNT 0,
/// NSCOUNT 0, ARCOUNT 0 or 1; an uncompressed question name of at most 255 bytes (labels of
/// at most 63 bytes); and, with ARCOUNT 1, an OPT record with the root as owner whose options
/// fill its RDATA exactly and include none of [`PARSED_OPTION_CODES`]; the message ends right
/// after the question or the OPT record. hickory-proto decodes every such message, with one
/// question and the same OPT fields.
fn quick_parse(bytes: &[u8]) -> Option<Parsed> {
    let counts = (
        wire::read_u16(bytes, header::QDCOUNT)?,
        wire::read_u16(bytes, header::ANCOUNT)?,
        wire::read_u16(bytes, header::NSCOUNT)?,
        wire::read_u16(bytes, header::ARCOUNT)?,
    );
    let with_opt = match counts {
        (1, 0, 0, 0) => false,
        (1, 0, 0, 1) => true,
        _ => return None,
    };
    let qname_end = wire::uncompressed_name_end(bytes, HEADER_LEN).ok()?;
    let question_end = qname_end + 4;
    if !with_opt {
        return (question_end == bytes.len()).then_some(Parsed {
            qname_end,
            edns: None,
        });
    }
    // OPT: root owner (one zero byte), TYPE 41, CLASS = payload size, TTL = extended RCODE,
    // version and flags, RDLENGTH, options.
    let opt = question_end;
    if bytes.get(opt) != Some(&0) || wire::read_u16(bytes, opt + 1)? != wire::TYPE_OPT {
        return None;
    }
    let max_payload = wire::read_u16(bytes, opt + 3)?;
    let version = *bytes.get(opt + 6)?;
    let flags = wire::read_u16(bytes, opt + 7)?;
    let rdlength = usize::from(wire::read_u16(bytes, opt + 9)?);
    let rdata_start = opt + 11;
    if rdata_start + rdlength != bytes.len() {
        return None;
    }
    let mut pos = rdata_start;
    while pos < bytes.len() {
        let code = wire::read_u16(bytes, pos)?;
        let len = usize::from(wire::read_u16(bytes, pos + 2)?);
        if PARSED_OPTION_CODES.contains(&code) {
            return None;
        }
        pos += 4 + len;
    }
    (pos == bytes.len()).then_some(Parsed {
        qname_end,
        edns: Some(EdnsFields {
            version,
            dnssec_ok: flags & 0x8000 != 0,
            // hickory-proto reads the payload size as at least 512 (RFC 6891 §6.2.3).
            max_payload: max_payload.max(512),
        }),
    })
}

/// Decodes the whole message with hickory-proto: the path for every message
/// [`quick_parse`] leaves alone.
fn full_parse(bytes: &[u8]) -> Result<Parsed, Refusal> {
    let message = Message::from_vec(bytes).map_err(|_| Refusal::Undecodable)?;
    if message.queries.len() != 1 {
        return Err(Refusal::QuestionCount);
    }
    let qname_end =
        wire::uncompressed_name_end(bytes, HEADER_LEN).map_err(|_| Refusal::BadQuestion)?;
    Ok(Parsed {
        qname_end,
        edns: message.edns.as_ref().map(|e| EdnsFields {
            version: e.version(),
            dnssec_ok: e.flags().dnssec_ok,
            max_payload: e.max_payload(),
        }),
    })
}

/// The query the stub sends upstream for a client query: same ID and question, RD set, CD
/// and DO as the client asked, AD set (RFC 6840 §5.7: the stub understands it), and an OPT
/// record without any of the client's EDNS options (no client subnet, cookies or padding
/// leave the machine). Written at the byte level; the bytes are those hickory-proto encodes
/// for the same message (the test `upstream_query_bytes_match_hickory` checks this).
pub fn upstream_query(q: &ClientQuery<'_>) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_LEN + q.question.len() + STUB_OPT_LEN);
    b.extend_from_slice(&q.id.to_be_bytes());
    b.push(header::RD);
    b.push(header::AD | if q.checking_disabled { header::CD } else { 0 });
    b.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1]); // QDCOUNT 1, ARCOUNT 1
    b.extend_from_slice(q.question);
    push_stub_opt(&mut b, q.dnssec_ok);
    b
}

/// Length of the stub's OPT record (root owner, no options).
const STUB_OPT_LEN: usize = 11;

/// Appends the stub's OPT record: root owner, payload [`MAX_UDP_PAYLOAD`], version 0, DO as
/// given, no options. The same record as [`stub_edns`] encodes to.
fn push_stub_opt(b: &mut Vec<u8>, dnssec_ok: bool) {
    b.push(0);
    b.extend_from_slice(&wire::TYPE_OPT.to_be_bytes());
    b.extend_from_slice(&MAX_UDP_PAYLOAD.to_be_bytes());
    b.extend_from_slice(&[0, 0]); // extended RCODE, version
    b.extend_from_slice(&(if dnssec_ok { 0x8000u16 } else { 0 }).to_be_bytes());
    b.extend_from_slice(&[0, 0]); // RDLENGTH
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
    let Ok(query) = q.query() else {
        return header_only_response(
            q.id,
            OpCode::Query,
            q.recursion_desired,
            ResponseCode::ServFail,
        );
    };
    m.add_query(query);
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

/// A response made of the header and the client's question exactly as sent, nothing else:
/// ID, opcode QUERY, RD and CD as the client set them, RA, TC as given, and `rcode`. It is
/// never longer than the query (which holds the same header and question, and perhaps
/// more), so sending it amplifies nothing. Used for REFUSED to clients outside `allow` and
/// for the truncated "slip" responses of the rate limit.
pub fn question_only_response(
    q: &ClientQuery<'_>,
    rcode: ResponseCode,
    truncated: bool,
) -> Vec<u8> {
    let mut b = vec![0u8; HEADER_LEN];
    b.reserve(q.question.len());
    wire::write_u16(&mut b, header::ID, q.id);
    if let Some(hi) = b.get_mut(header::FLAGS_HI) {
        *hi = header::QR
            | if truncated { header::TC } else { 0 }
            | if q.recursion_desired { header::RD } else { 0 };
    }
    if let Some(lo) = b.get_mut(header::FLAGS_LO) {
        *lo = 0x80 | if q.checking_disabled { header::CD } else { 0 } | (rcode.low() & 0x0F);
    }
    wire::write_u16(&mut b, header::QDCOUNT, 1);
    b.extend_from_slice(q.question);
    b
}

/// A 12-byte response carrying only a header: the ID, QR, opcode and RD of the message it
/// answers, and `rcode`. Used when the message could not be decoded far enough to echo more.
pub fn header_only_response(id: u16, op_code: OpCode, rd: bool, rcode: ResponseCode) -> Vec<u8> {
    let mut b = vec![0u8; HEADER_LEN];
    wire::write_u16(&mut b, header::ID, id);
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
fn badvers_response(id: u16, rd: bool, question: &[u8]) -> Vec<u8> {
    let mut m = Message::error_msg(id, OpCode::Query, ResponseCode::BADVERS);
    m.metadata.recursion_desired = rd;
    m.metadata.recursion_available = true;
    let Ok(query) = Query::read(&mut BinDecoder::new(question)) else {
        return header_only_response(id, OpCode::Query, rd, ResponseCode::FormErr);
    };
    m.add_query(query);
    m.set_edns(stub_edns(false));
    m.to_vec()
        .unwrap_or_else(|_| header_only_response(id, OpCode::Query, rd, ResponseCode::FormErr))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hickory_proto::op::MessageType;
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
        let up = Message::from_vec(&upstream_query(&q)).unwrap();
        assert_eq!(up.metadata.id, 18);
        assert!(up.metadata.recursion_desired && up.metadata.checking_disabled);
        let e = up.edns.unwrap();
        assert!(e.flags().dnssec_ok);
        assert_eq!(e.max_payload(), MAX_UDP_PAYLOAD);
        assert_eq!(up.queries.len(), 1);
    }

    #[test]
    fn question_only_response_is_never_longer_than_the_query() {
        for edns in [None, Some((1232, true))] {
            let mut qb = query_bytes(0x4242, "wWw.Example.", RecordType::TXT, edns);
            qb[3] |= header::CD;
            let q = match classify(&qb, Protocol::Udp) {
                Classified::Query(q) => q,
                other => panic!("{other:?}"),
            };
            for (rcode, tc) in [
                (ResponseCode::Refused, false),
                (ResponseCode::NoError, true),
            ] {
                let r = question_only_response(&q, rcode, tc);
                assert!(r.len() <= qb.len(), "{} > {}", r.len(), qb.len());
                let m = Message::from_vec(&r).unwrap();
                assert_eq!(m.metadata.id, 0x4242);
                assert_eq!(m.metadata.message_type, MessageType::Response);
                assert_eq!(m.metadata.response_code, rcode);
                assert_eq!(m.metadata.truncation, tc);
                assert!(m.metadata.recursion_desired && m.metadata.checking_disabled);
                assert!(m.answers.is_empty() && m.edns.is_none());
                assert_eq!(
                    &r[HEADER_LEN..],
                    q.question,
                    "question echoed byte for byte"
                );
            }
        }
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

    /// A query with `name`, the given counts left as encoded, and an OPT record built from
    /// raw parts (owner byte, payload, TTL, RDATA) when `opt` is given.
    fn raw_query(name: &[u8], opt: Option<(u8, u16, u32, &[u8])>) -> Vec<u8> {
        let mut b = vec![
            0x12,
            0x34,
            0x01,
            0x00,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            u8::from(opt.is_some()),
        ];
        b.extend_from_slice(name);
        b.extend_from_slice(&[0, 1, 0, 1]);
        if let Some((owner, payload, ttl, rdata)) = opt {
            b.push(owner);
            b.extend_from_slice(&41u16.to_be_bytes());
            b.extend_from_slice(&payload.to_be_bytes());
            b.extend_from_slice(&ttl.to_be_bytes());
            b.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            b.extend_from_slice(rdata);
        }
        b
    }

    /// Queries of many shapes: the usual ones, edge cases of names and OPT records, and
    /// shapes only the full decoder handles.
    fn query_corpus() -> Vec<Vec<u8>> {
        let www = b"\x03www\x07ExAmple\x03com\x00".as_slice();
        let mut label63 = vec![63u8];
        label63.extend_from_slice(&[b'a'; 63]);
        let mut longest = Vec::new(); // 255 bytes: 3 x 64 + 62 + root
        for _ in 0..3 {
            longest.extend_from_slice(&label63);
        }
        longest.push(61);
        longest.extend_from_slice(&[b'b'; 61]);
        longest.push(0);
        assert_eq!(longest.len(), 255);
        let mut too_long = longest.clone();
        too_long.pop();
        too_long.extend_from_slice(&[1, b'c', 0]);
        let mut label64 = vec![64u8];
        label64.extend_from_slice(&[b'a'; 64]);
        label64.push(0);
        let cookie: &[u8] = &[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        let padding: &[u8] = &[0, 12, 0, 3, 0, 0, 0];
        let ecs: &[u8] = &[0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2];
        let bad_ecs: &[u8] = &[0, 8, 0, 2, 0, 9];
        let nsid: &[u8] = &[0, 3, 0, 0];
        let overlong_option: &[u8] = &[0, 10, 0, 9, 1, 2];
        let short_option: &[u8] = &[0, 10];
        let mut c = vec![
            raw_query(www, None),
            raw_query(b"\x00", None),
            raw_query(&longest, None),
            raw_query(&too_long, None),
            raw_query(&label64, None),
            raw_query(
                &label63.iter().copied().chain([0]).collect::<Vec<_>>(),
                None,
            ),
            raw_query(b"\xC0\x0C", None),
            raw_query(b"\x01a\xC0\x0C", None),
            raw_query(b"\x41a\x00", None),
            raw_query(www, Some((0, 1232, 0, &[]))),
            raw_query(www, Some((0, 4096, 0x0000_8000, cookie))),
            raw_query(www, Some((0, 100, 0, padding))),
            raw_query(www, Some((0, 65535, 0x0001_0000, &[]))),
            raw_query(www, Some((0, 1232, 0x0100_0000, &[]))),
            raw_query(www, Some((0, 1232, 0, ecs))),
            raw_query(www, Some((0, 1232, 0, bad_ecs))),
            raw_query(www, Some((0, 1232, 0, nsid))),
            raw_query(www, Some((0, 1232, 0, overlong_option))),
            raw_query(www, Some((0, 1232, 0, short_option))),
            raw_query(www, Some((1, 1232, 0, &[]))),
            query_bytes(1, "a.example.", RecordType::AAAA, Some((1232, true))),
            query_bytes(2, "example.", RecordType::MX, None),
        ];
        // Trailing bytes, wrong counts, an extra answer record, a second OPT.
        let mut trailing = raw_query(www, Some((0, 1232, 0, &[])));
        trailing.push(0);
        c.push(trailing);
        let mut answer = raw_query(www, None);
        answer[7] = 1;
        answer.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        c.push(answer);
        let mut two_opts = raw_query(www, Some((0, 1232, 0, &[])));
        two_opts.extend_from_slice(&[0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]);
        two_opts[11] = 2;
        c.push(two_opts);
        let mut no_question = raw_query(www, None);
        no_question[5] = 0;
        c.push(no_question);
        c
    }

    /// Every message [`quick_parse`] reads is one the full hickory-proto decode accepts,
    /// with the same fields; and the usual queries do take the quick path. Checked on the
    /// corpus and on 30,000 deterministic random mutations of it (a few thousand of which
    /// still take the quick path).
    #[test]
    fn quick_and_full_parse_agree() {
        let mut quick = 0;
        let mut check = |b: &[u8]| {
            if let Some(p) = quick_parse(b) {
                quick += 1;
                assert_eq!(full_parse(b), Ok(p), "{b:02x?}");
            }
        };
        let corpus = query_corpus();
        for b in &corpus {
            check(b);
        }
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..30_000 {
            let mut b = corpus[next() as usize % corpus.len()].clone();
            for _ in 0..=(next() % 3) {
                let at = next() as usize % b.len();
                match next() % 4 {
                    0 => b[at] = next() as u8,
                    1 => b[at] ^= 1 << (next() % 8),
                    2 => b.truncate(at.max(HEADER_LEN)),
                    _ => b.insert(at, next() as u8),
                }
            }
            check(&b);
        }
        assert!(quick > 1_000, "quick path taken {quick} times");

        for (b, expect_quick) in [
            (query_bytes(1, "www.example.", RecordType::A, None), true),
            (
                query_bytes(1, "www.example.", RecordType::A, Some((1232, true))),
                true,
            ),
            (corpus[14].clone(), false), // client subnet: hickory parses it
            (corpus[6].clone(), false),  // compressed question
        ] {
            assert_eq!(quick_parse(&b).is_some(), expect_quick, "{b:02x?}");
        }
    }

    /// The classification as it was before the quick path: a full hickory-proto decode of
    /// every message. Returns what `classify` returns, flattened for comparison.
    fn reference_classify(bytes: &[u8], proto: Protocol) -> String {
        let (Some(id), Some(&flags)) = (
            wire::read_u16(bytes, header::ID),
            bytes.get(header::FLAGS_HI),
        ) else {
            return format!("drop {:?}", DropReason::ShortHeader);
        };
        if bytes.len() < HEADER_LEN {
            return format!("drop {:?}", DropReason::ShortHeader);
        }
        let op_code = OpCode::from_u8((flags >> 3) & 0x0F);
        let rd = flags & header::RD != 0;
        let refuse = |reason: Refusal| {
            let response = header_only_response(id, op_code, rd, reason.response_code());
            format!("refuse {reason:?} {response:02x?}")
        };
        if flags & header::QR != 0 {
            return match proto {
                Protocol::Udp => format!("drop {:?}", DropReason::ResponseOverUdp),
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
        let edns = message.edns.as_ref();
        if let Some(e) = edns {
            if e.version() != 0 {
                let mut m = Message::error_msg(id, OpCode::Query, ResponseCode::BADVERS);
                m.metadata.recursion_desired = rd;
                m.metadata.recursion_available = true;
                m.add_query(query.clone());
                m.set_edns(stub_edns(false));
                let response = m.to_vec().unwrap();
                return format!("refuse {:?} {response:02x?}", Refusal::EdnsVersion);
            }
        }
        let dnssec_ok = edns.is_some_and(|e| e.flags().dnssec_ok);
        let udp_limit = match edns {
            Some(e) => e.max_payload().clamp(MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD),
            None => MIN_UDP_PAYLOAD,
        };
        format!(
            "query id={id} rd={rd} cd={} do={dnssec_ok} edns={} limit={udp_limit} \
             question={question:02x?} query={query:?}",
            message.metadata.checking_disabled,
            edns.is_some(),
        )
    }

    fn flatten(c: Classified<'_>) -> String {
        match c {
            Classified::Drop(reason) => format!("drop {reason:?}"),
            Classified::Refuse { response, reason } => {
                format!("refuse {reason:?} {response:02x?}")
            }
            Classified::Query(q) => format!(
                "query id={} rd={} cd={} do={} edns={} limit={} question={:02x?} query={:?}",
                q.id,
                q.recursion_desired,
                q.checking_disabled,
                q.dnssec_ok,
                q.edns,
                q.udp_limit,
                q.question,
                q.query().unwrap()
            ),
        }
    }

    /// `classify` gives exactly what the full-decode classification gave (outcome, refusal
    /// response bytes, every query field), over UDP and TCP, on the corpus and on 20,000
    /// deterministic random mutations of it.
    #[test]
    fn classify_matches_the_full_decode_classification() {
        let corpus = query_corpus();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut messages = corpus.clone();
        for _ in 0..20_000 {
            let mut b = corpus[next() as usize % corpus.len()].clone();
            for _ in 0..=(next() % 3) {
                if b.is_empty() {
                    break;
                }
                let at = next() as usize % b.len();
                match next() % 4 {
                    0 => b[at] = next() as u8,
                    1 => b[at] ^= 1 << (next() % 8),
                    2 => b.truncate(at),
                    _ => b.insert(at, next() as u8),
                }
            }
            messages.push(b);
        }
        let mut kinds = std::collections::HashSet::new();
        for b in &messages {
            for proto in [Protocol::Udp, Protocol::Tcp] {
                let got = flatten(classify(b, proto));
                assert_eq!(got, reference_classify(b, proto), "{b:02x?}");
                kinds.insert(got.split(' ').take(2).collect::<Vec<_>>().join(" "));
            }
        }
        // The corpus and its mutations reach every outcome.
        for kind in [
            "drop ShortHeader",
            "drop ResponseOverUdp",
            "refuse NotAQuery",
            "refuse OpcodeNotQuery",
            "refuse Undecodable",
            "refuse QuestionCount",
            "refuse BadQuestion",
            "refuse EdnsVersion",
        ] {
            assert!(kinds.contains(kind), "{kind} never reached: {kinds:?}");
        }
        assert!(kinds.iter().any(|k| k.starts_with("query id=")));
    }

    /// The byte-level upstream query is what hickory-proto encodes for the same message.
    #[test]
    fn upstream_query_bytes_match_hickory() {
        for (name, qtype, edns, cd) in [
            ("www.example.", RecordType::A, Some((1232, false)), false),
            ("WwW.ExAmPlE.", RecordType::AAAA, Some((512, true)), true),
            ("example.", RecordType::MX, None, false),
            (".", RecordType::NS, None, true),
            (
                "x.example.",
                RecordType::Unknown(65000),
                Some((4096, true)),
                false,
            ),
        ] {
            let mut b = query_bytes(0xA1B2, name, qtype, edns);
            if cd {
                b[3] |= header::CD;
            }
            let Classified::Query(q) = classify(&b, Protocol::Udp) else {
                panic!("expected a query");
            };
            let mut m = Message::new(q.id, MessageType::Query, OpCode::Query);
            m.metadata.recursion_desired = true;
            m.metadata.checking_disabled = q.checking_disabled;
            m.metadata.authentic_data = true;
            m.add_query(q.query().unwrap());
            m.set_edns(stub_edns(q.dnssec_ok));
            assert_eq!(upstream_query(&q), m.to_vec().unwrap(), "{name}");
        }
    }
}
