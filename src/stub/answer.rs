//! An upstream response made ready to serve: checked against the query, normalized once
//! (RRset TTLs, clamps, negative TTL, a clean OPT record), encoded once, and then served to
//! any number of clients by copying bytes and patching the ID, RD bit, question case and
//! TTLs. The same form serves fresh answers and cached ones.

use std::borrow::Cow;
use std::collections::HashMap;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::message::{stub_edns, ClientQuery};
use super::options::CacheOptions;
use crate::wire::{self, header, WireError, HEADER_LEN, TYPE_OPT};

/// Why an upstream response was not served (the client gets SERVFAIL instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// The response does not decode.
    #[error("response does not decode: {0}")]
    Decode(#[from] hickory_proto::serialize::binary::DecodeError),
    /// QR is not set.
    #[error("upstream sent a query, not a response")]
    NotAResponse,
    /// The response's ID is not the query's.
    #[error("response ID {got} does not match query ID {expected}")]
    IdMismatch {
        /// The query's ID.
        expected: u16,
        /// The response's ID.
        got: u16,
    },
    /// The response's opcode is not QUERY.
    #[error("response opcode {0} is not QUERY")]
    OpcodeMismatch(OpCode),
    /// The response's question is not the query's.
    #[error("response question does not match the query")]
    QuestionMismatch,
    /// TC set on a response that came over a stream transport.
    #[error("upstream response is truncated")]
    Truncated,
    /// An extended RCODE (above 15), which the stub does not relay.
    #[error("upstream sent extended RCODE {0}")]
    ExtendedRcode(u16),
    /// The normalized response could not be encoded.
    #[error("response does not encode: {0}")]
    Encode(#[from] hickory_proto::ProtoError),
    /// The encoded response could not be walked (a bug, or over 65535 bytes).
    #[error("response layout: {0}")]
    Layout(#[from] WireError),
}

/// A response ready to be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The normalized response; it always ends with an OPT record.
    wire: Box<[u8]>,
    question_end: usize,
    opt_start: usize,
    ttl_offsets: Box<[u16]>,
    /// Seconds the answer may be cached; 0 when it must not be.
    lifetime: u32,
    rcode: ResponseCode,
}

/// One response to one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The message bytes.
    pub bytes: Vec<u8>,
    /// Whether it was cut to the header, question and OPT because it exceeded the limit.
    pub truncated: bool,
}

impl Answer {
    /// Checks `response` against the query `q` and normalizes it:
    /// - every RRset's TTLs are set to the RRset's smallest (RFC 2181 §5.2) and clamped to
    ///   `[min_ttl, max_ttl]` (the lower bound only for positive answers);
    /// - in a negative answer (NXDOMAIN, or NOERROR with an empty answer section), the first
    ///   SOA of the authority section gets the negative TTL `min(SOA TTL, SOA MINIMUM,
    ///   negative_max_ttl)` (RFC 2308 §5); without such an SOA the answer is not cacheable;
    /// - the OPT record is replaced by the stub's own (no upstream EDNS options such as
    ///   padding; DO as the client asked); TSIG is dropped.
    ///
    /// The answer is cacheable for the smallest TTL left when the RCODE is NOERROR or
    /// NXDOMAIN; SERVFAIL and every other RCODE are served but never cached.
    pub fn from_upstream(
        response: &[u8],
        q: &ClientQuery<'_>,
        opts: &CacheOptions,
    ) -> Result<Self, AnswerError> {
        let msg = Message::from_vec(&without_opt_options(response))?;
        let query = q.query()?;
        check_matches(&msg, q, &query)?;
        let rcode = msg.metadata.response_code;
        if rcode.high() != 0 {
            return Err(AnswerError::ExtendedRcode(u16::from(rcode)));
        }
        let negative = rcode == ResponseCode::NXDomain
            || (rcode == ResponseCode::NoError && msg.answers.is_empty());
        let cacheable_rcode = matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain);

        let mut out = Message::new(q.id, MessageType::Response, OpCode::Query);
        out.metadata = msg.metadata;
        out.metadata.id = q.id;
        out.add_query(query);
        out.answers = msg.answers;
        out.authorities = msg.authorities;
        out.additionals = msg.additionals;
        out.set_edns(stub_edns(q.dnssec_ok));

        let (min_ttl, max_ttl, negative_max_ttl) = opts.ttl_bounds();
        for section in [&mut out.answers, &mut out.authorities, &mut out.additionals] {
            normalize_rrsets(section, if negative { 0 } else { min_ttl }, max_ttl);
        }
        let mut negative_ok = false;
        if negative {
            if let Some(soa) = out
                .authorities
                .iter_mut()
                .find(|r| r.record_type() == RecordType::SOA)
            {
                if let RData::SOA(data) = &soa.data {
                    soa.ttl = soa.ttl.min(data.minimum).min(negative_max_ttl);
                    negative_ok = true;
                }
            }
        }
        let lifetime = if cacheable_rcode && (!negative || negative_ok) {
            out.all_sections().map(|r| r.ttl).min().unwrap_or(0)
        } else {
            0
        };

        let wire = out.to_vec()?;
        let (question_end, opt_start, ttl_offsets) = serving_positions(&wire)?;
        if question_end.checked_sub(HEADER_LEN) != Some(q.question.len()) {
            return Err(AnswerError::QuestionMismatch);
        }
        Ok(Self {
            wire: wire.into_boxed_slice(),
            question_end,
            opt_start,
            ttl_offsets: ttl_offsets.into_boxed_slice(),
            lifetime,
            rcode,
        })
    }

    /// Bytes this answer holds in memory: its encoded response, its TTL positions and the
    /// struct itself. What the cache counts against its byte budget.
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Self>()
            .saturating_add(self.wire.len())
            .saturating_add(self.ttl_offsets.len().saturating_mul(2))
    }

    /// Seconds this answer may be cached; 0 when it must not be.
    pub fn cache_lifetime(&self) -> u32 {
        self.lifetime
    }

    /// The RCODE of the answer.
    pub fn response_code(&self) -> ResponseCode {
        self.rcode
    }

    /// The response for client query `q`, `age` seconds after the answer was received, cut
    /// to header, question and OPT with TC set if it is longer than `limit` bytes. The ID, RD
    /// bit and question bytes are the client's; every TTL is decreased by `age`; the OPT
    /// record is left out when the client sent none.
    pub fn render(&self, q: &ClientQuery<'_>, age: u32, limit: usize) -> Rendered {
        self.render_with(q, TtlPatch::Age(age), limit)
    }

    /// The response for client query `q` from a stale answer (RFC 8767 §4): as
    /// [`Answer::render`], but every TTL is set to `ttl` (the stub uses
    /// [`STALE_TTL`](super::cache::STALE_TTL)).
    pub fn render_stale(&self, q: &ClientQuery<'_>, ttl: u32, limit: usize) -> Rendered {
        self.render_with(q, TtlPatch::Fixed(ttl), limit)
    }

    fn render_with(&self, q: &ClientQuery<'_>, ttls: TtlPatch, limit: usize) -> Rendered {
        let mut bytes = Vec::new();
        let truncated = self.render_into(q, ttls, limit, &mut bytes);
        Rendered { bytes, truncated }
    }

    /// [`Answer::render`] into `out` (cleared first), so that a caller serving many queries
    /// reuses one buffer instead of allocating a response each time. Returns whether the
    /// response was truncated.
    pub fn render_fresh_into(
        &self,
        q: &ClientQuery<'_>,
        age: u32,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> bool {
        self.render_into(q, TtlPatch::Age(age), limit, out)
    }

    /// Copies the stored bytes into `out` (cleared first) and patches them in place: ID, RD,
    /// the client's question bytes, the TTLs, ARCOUNT without OPT, or the cut to header,
    /// question and OPT with TC. Returns whether the response was truncated.
    fn render_into(
        &self,
        q: &ClientQuery<'_>,
        ttls: TtlPatch,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> bool {
        out.clear();
        let wire = &self.wire[..];
        let body_end = if q.edns { wire.len() } else { self.opt_start };
        let full = wire.get(..body_end).unwrap_or_default();
        let truncated = full.len() > limit;
        if !truncated {
            out.extend_from_slice(full);
            match ttls {
                TtlPatch::Age(0) => {}
                TtlPatch::Age(age) => {
                    for &off in self.ttl_offsets.iter() {
                        let off = usize::from(off);
                        if let Some(ttl) = wire::read_u32(wire, off) {
                            wire::write_u32(out, off, ttl.saturating_sub(age));
                        }
                    }
                }
                TtlPatch::Fixed(ttl) => {
                    for &off in self.ttl_offsets.iter() {
                        wire::write_u32(out, usize::from(off), ttl);
                    }
                }
            }
            if !q.edns {
                let ar = wire::read_u16(wire, header::ARCOUNT).unwrap_or(1);
                wire::write_u16(out, header::ARCOUNT, ar.saturating_sub(1));
            }
        } else {
            out.extend_from_slice(wire.get(..self.question_end).unwrap_or_default());
            if q.edns {
                out.extend_from_slice(wire.get(self.opt_start..).unwrap_or_default());
            }
            wire::write_u16(out, header::ANCOUNT, 0);
            wire::write_u16(out, header::NSCOUNT, 0);
            wire::write_u16(out, header::ARCOUNT, u16::from(q.edns));
            wire::set_bits(out, header::FLAGS_HI, header::TC, true);
        }
        wire::write_u16(out, header::ID, q.id);
        wire::set_bits(out, header::FLAGS_HI, header::RD, q.recursion_desired);
        if let Some(dst) = out.get_mut(HEADER_LEN..self.question_end) {
            if dst.len() == q.question.len() {
                dst.copy_from_slice(q.question);
            }
        }
        truncated
    }
}

/// How [`Answer::render_with`] patches the TTLs.
#[derive(Debug, Clone, Copy)]
enum TtlPatch {
    /// Decrease each by the answer's age in seconds (saturating at zero).
    Age(u32),
    /// Set each to this value (a stale answer).
    Fixed(u32),
}

/// The response must answer the query: QR set, same ID, opcode QUERY, same single question
/// (name compared case-insensitively), and not truncated.
fn check_matches(msg: &Message, q: &ClientQuery<'_>, query: &Query) -> Result<(), AnswerError> {
    let md = &msg.metadata;
    if md.message_type != MessageType::Response {
        return Err(AnswerError::NotAResponse);
    }
    if md.id != q.id {
        return Err(AnswerError::IdMismatch {
            expected: q.id,
            got: md.id,
        });
    }
    if md.op_code != OpCode::Query {
        return Err(AnswerError::OpcodeMismatch(md.op_code));
    }
    if md.truncation {
        return Err(AnswerError::Truncated);
    }
    match msg.queries.as_slice() {
        [rq] if rq.name() == query.name()
            && rq.query_type() == query.query_type()
            && rq.query_class() == query.query_class() =>
        {
            Ok(())
        }
        _ => Err(AnswerError::QuestionMismatch),
    }
}

/// `response` with the RDATA of its OPT record emptied, when the OPT record is the last
/// record and has a root owner name (what every resolver sends); otherwise `response` as it
/// is.
///
/// The stub replaces the upstream's OPT record with its own and never looks at the upstream's
/// EDNS options, but hickory-proto decodes them anyway, byte by byte: the padding option a
/// DoT/DoH resolver adds to every response (RFC 8467: 468-byte blocks) cost a quarter of
/// the stub's per-query instructions. Everything else of the OPT record (its place in the
/// additional section, its owner name, the UDP payload size, the extended RCODE, version and
/// flags in its TTL, that there is only one) is decoded and checked by hickory-proto; only
/// the content of the options is not interpreted, and it is discarded either way.
fn without_opt_options(response: &[u8]) -> Cow<'_, [u8]> {
    let Some(opt) = wire::layout(response)
        .ok()
        .and_then(|l| l.opt)
        .filter(|o| o.is_last)
    else {
        return Cow::Borrowed(response);
    };
    // A root owner name is one zero byte (the walk put RDLENGTH right after it, TYPE, CLASS
    // and TTL).
    let rdlength_at = opt.rdlength_at;
    if response.get(opt.start) != Some(&0)
        || wire::read_u16(response, rdlength_at).is_none_or(|n| n == 0)
    {
        return Cow::Borrowed(response);
    }
    let Some(head) = response.get(..rdlength_at + 2) else {
        return Cow::Borrowed(response);
    };
    let mut out = head.to_vec();
    wire::write_u16(&mut out, rdlength_at, 0);
    Cow::Owned(out)
}

/// Where a normalized response is patched when it is served: the end of its single question,
/// the start of its OPT record (which must be the last record), and the TTL field of every
/// other record.
fn serving_positions(wire: &[u8]) -> Result<(usize, usize, Vec<u16>), WireError> {
    let mut ttl_offsets = Vec::new();
    let mut too_far = false;
    let layout = wire::walk(wire, |r| {
        if r.rtype != TYPE_OPT {
            match u16::try_from(r.ttl_at) {
                Ok(at) => ttl_offsets.push(at),
                Err(_) => too_far = true,
            }
        }
    })?;
    if layout.header.qdcount != 1 {
        return Err(WireError::QuestionCount(layout.header.qdcount));
    }
    let opt = layout
        .opt
        .filter(|o| o.is_last)
        .ok_or(WireError::OptNotLast)?;
    if too_far {
        // `walk` refuses messages over 65535 bytes, so no offset inside one exceeds u16.
        return Err(WireError::TooLong { len: wire.len() });
    }
    Ok((layout.question_end, opt.start, ttl_offsets))
}

/// Sets every RRset's TTLs to the set's smallest, then clamps each to `[lo, hi]`. An RRset is
/// the records of one owner name (compared case-insensitively, as hickory-proto's `Name`
/// equality and hashing do), type and class.
fn normalize_rrsets(records: &mut [Record], lo: u32, hi: u32) {
    let mins = if records.len() <= SMALL_SECTION {
        small_set_minimums(records)
    } else {
        hashed_set_minimums(records)
    };
    for (r, set_min) in records.iter_mut().zip(mins) {
        r.ttl = set_min.clamp(lo, hi);
    }
}

/// Sections up to this many records find their RRsets by comparing every pair: cheaper than
/// hashing (and cloning) names for the handful of records a typical section holds, and
/// bounded, since larger sections are hashed.
const SMALL_SECTION: usize = 16;

fn same_rrset(a: &Record, b: &Record) -> bool {
    a.record_type() == b.record_type() && a.dns_class == b.dns_class && a.name == b.name
}

/// For each record, the smallest TTL of its RRset, by pairwise comparison.
fn small_set_minimums(records: &[Record]) -> Vec<u32> {
    records
        .iter()
        .map(|r| {
            records
                .iter()
                .filter(|other| same_rrset(r, other))
                .map(|other| other.ttl)
                .min()
                .unwrap_or(r.ttl)
        })
        .collect()
}

/// For each record, the smallest TTL of its RRset, through a hash map.
fn hashed_set_minimums(records: &[Record]) -> Vec<u32> {
    let mut min: HashMap<(&Name, RecordType, DNSClass), u32> = HashMap::new();
    for r in records {
        let e = min
            .entry((&r.name, r.record_type(), r.dns_class))
            .or_insert(r.ttl);
        *e = (*e).min(r.ttl);
    }
    records
        .iter()
        .map(|r| {
            min.get(&(&r.name, r.record_type(), r.dns_class))
                .copied()
                .unwrap_or(r.ttl)
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::stub::error::Protocol;
    use crate::stub::message::tests::query_bytes;
    use crate::stub::message::{classify, Classified};
    use hickory_proto::op::Edns;
    use hickory_proto::rr::rdata::opt::EdnsCode;
    use hickory_proto::rr::rdata::{A, SOA};
    use std::net::Ipv4Addr;

    pub(crate) fn client(bytes: &[u8]) -> Box<ClientQuery<'_>> {
        match classify(bytes, Protocol::Udp) {
            Classified::Query(q) => q,
            other => panic!("expected a query, got {other:?}"),
        }
    }

    pub(crate) fn a(name: &str, ttl: u32, last: u8) -> Record {
        Record::from_rdata(
            Name::from_ascii(name).unwrap(),
            ttl,
            RData::A(A(Ipv4Addr::new(192, 0, 2, last))),
        )
    }

    pub(crate) fn soa(zone: &str, ttl: u32, minimum: u32) -> Record {
        Record::from_rdata(
            Name::from_ascii(zone).unwrap(),
            ttl,
            RData::SOA(SOA::new(
                Name::from_ascii("ns.example.").unwrap(),
                Name::from_ascii("hostmaster.example.").unwrap(),
                1,
                3600,
                600,
                86400,
                minimum,
            )),
        )
    }

    /// An upstream-style response to `query` with the given sections.
    pub(crate) fn response(
        query: &[u8],
        rcode: ResponseCode,
        answers: Vec<Record>,
        authorities: Vec<Record>,
    ) -> Vec<u8> {
        let q = Message::from_vec(query).unwrap();
        let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.metadata.recursion_available = true;
        m.metadata.response_code = rcode;
        m.add_queries(q.queries.iter().cloned());
        m.answers = answers;
        m.authorities = authorities;
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
        m.to_vec().unwrap()
    }

    fn opts() -> CacheOptions {
        CacheOptions::default()
    }

    #[test]
    fn rrset_ttls_become_the_set_minimum_and_lifetime_the_overall_minimum() {
        let qb = query_bytes(1, "www.example.", RecordType::A, Some((1232, false)));
        let q = client(&qb);
        let resp = response(
            &qb,
            ResponseCode::NoError,
            vec![a("www.example.", 300, 1), a("www.example.", 100, 2)],
            vec![],
        );
        let ans = Answer::from_upstream(&resp, &q, &opts()).unwrap();
        assert_eq!(ans.cache_lifetime(), 100);
        let m = Message::from_vec(&ans.render(&q, 0, 65535).bytes).unwrap();
        assert!(m.answers.iter().all(|r| r.ttl == 100));
    }

    #[test]
    fn render_decrements_ttls_and_uses_client_id_rd_and_case() {
        let qb = query_bytes(1, "www.example.", RecordType::A, Some((1232, false)));
        let q = client(&qb);
        let resp = response(
            &qb,
            ResponseCode::NoError,
            vec![a("www.example.", 300, 1)],
            vec![],
        );
        let ans = Answer::from_upstream(&resp, &q, &opts()).unwrap();

        let mut other = query_bytes(0x4242, "WWW.Example.", RecordType::A, Some((1232, false)));
        other[2] &= !header::RD;
        let q2 = client(&other);
        let r = ans.render(&q2, 42, 65535);
        assert!(!r.truncated);
        let m = Message::from_vec(&r.bytes).unwrap();
        assert_eq!(m.metadata.id, 0x4242);
        assert!(!m.metadata.recursion_desired);
        assert_eq!(m.queries[0].name().to_ascii(), "WWW.Example.");
        assert_eq!(m.answers[0].ttl, 258);
        // Past the TTL the value saturates at zero instead of wrapping.
        let m = Message::from_vec(&ans.render(&q2, 1000, 65535).bytes).unwrap();
        assert_eq!(m.answers[0].ttl, 0);
    }

    /// Rendering into a reused buffer (what the UDP listener does for every cache hit)
    /// gives exactly the bytes of a fresh render, whatever the buffer held before: full and
    /// truncated responses, with and without EDNS, aged and not.
    #[test]
    fn render_into_a_reused_buffer_matches_render() {
        let qb = query_bytes(7, "big.example.", RecordType::A, Some((512, false)));
        let q = client(&qb);
        let ans = Answer::from_upstream(&big_answer(&qb), &q, &opts()).unwrap();
        let with_edns = query_bytes(0x1234, "BIG.example.", RecordType::A, Some((4096, true)));
        let without = query_bytes(0x4321, "big.EXAMPLE.", RecordType::A, None);
        let mut buf = vec![0xAA; 9000];
        let mut seen_truncated = 0;
        for bytes in [&qb, &with_edns, &without] {
            let q = client(bytes);
            for limit in [q.size_limit(Protocol::Udp), 65535] {
                for age in [0, 17, 1000] {
                    let expected = ans.render(&q, age, limit);
                    let truncated = ans.render_fresh_into(&q, age, limit, &mut buf);
                    assert_eq!(truncated, expected.truncated);
                    assert_eq!(buf, expected.bytes, "limit {limit} age {age}");
                    seen_truncated += usize::from(truncated);
                    // And the patches are right: client ID, case, TTLs.
                    let m = Message::from_vec(&buf).unwrap();
                    assert_eq!(m.metadata.id, q.id);
                    assert_eq!(m.metadata.truncation, truncated);
                    assert_eq!(&buf[HEADER_LEN..HEADER_LEN + q.question.len()], q.question);
                    assert_eq!(m.edns.is_some(), q.edns);
                    if !truncated {
                        assert_eq!(m.answers.len(), 60);
                        assert!(m
                            .answers
                            .iter()
                            .all(|r| r.ttl == 300u32.saturating_sub(age)));
                    }
                }
                // Shrinking from a long response to a short one leaves nothing behind.
                buf.resize(20_000, 0x55);
            }
        }
        assert!(seen_truncated > 0, "some renders were truncated");
    }

    #[test]
    fn stale_render_sets_every_ttl_including_the_soa() {
        let qb = query_bytes(5, "www.example.", RecordType::A, Some((1232, false)));
        let q = client(&qb);
        let resp = response(
            &qb,
            ResponseCode::NoError,
            vec![a("www.example.", 300, 1), a("www.example.", 300, 2)],
            vec![soa("example.", 3600, 300)],
        );
        let ans = Answer::from_upstream(&resp, &q, &opts()).unwrap();
        let r = ans.render_stale(&q, 30, 65535);
        assert!(!r.truncated);
        let m = Message::from_vec(&r.bytes).unwrap();
        assert_eq!(m.metadata.id, 5);
        assert_eq!(m.answers.len(), 2);
        assert!(m.answers.iter().all(|r| r.ttl == 30));
        assert_eq!(m.authorities[0].ttl, 30);
        // The OPT record's TTL field (extended RCODE, version, DO) is left alone.
        assert!(m.edns.is_some());
        // The cached bytes are unchanged: a fresh render still shows the real TTLs.
        let m = Message::from_vec(&ans.render(&q, 0, 65535).bytes).unwrap();
        assert_eq!(m.answers[0].ttl, 300);
    }

    #[test]
    fn ttls_are_clamped_to_bounds() {
        let qb = query_bytes(1, "www.example.", RecordType::A, None);
        let q = client(&qb);
        let resp = response(
            &qb,
            ResponseCode::NoError,
            vec![a("www.example.", 5, 1)],
            vec![],
        );
        let o = CacheOptions {
            min_ttl: std::time::Duration::from_secs(30),
            max_ttl: std::time::Duration::from_secs(60),
            ..opts()
        };
        assert_eq!(
            Answer::from_upstream(&resp, &q, &o)
                .unwrap()
                .cache_lifetime(),
            30
        );
        let resp = response(
            &qb,
            ResponseCode::NoError,
            vec![a("www.example.", 90_000, 1)],
            vec![],
        );
        assert_eq!(
            Answer::from_upstream(&resp, &q, &o)
                .unwrap()
                .cache_lifetime(),
            60
        );
    }

    #[test]
    fn negative_answers_use_soa_minimum_and_need_an_soa() {
        let qb = query_bytes(1, "nx.example.", RecordType::A, Some((1232, false)));
        let q = client(&qb);
        for rcode in [ResponseCode::NXDomain, ResponseCode::NoError] {
            let resp = response(&qb, rcode, vec![], vec![soa("example.", 3600, 300)]);
            let ans = Answer::from_upstream(&resp, &q, &opts()).unwrap();
            assert_eq!(ans.cache_lifetime(), 300, "{rcode:?}");
            let m = Message::from_vec(&ans.render(&q, 0, 65535).bytes).unwrap();
            assert_eq!(m.metadata.response_code, rcode);
            assert_eq!(m.authorities[0].ttl, 300);

            let resp = response(&qb, rcode, vec![], vec![soa("example.", 60, 300)]);
            assert_eq!(
                Answer::from_upstream(&resp, &q, &opts())
                    .unwrap()
                    .cache_lifetime(),
                60
            );

            let resp = response(&qb, rcode, vec![], vec![]);
            assert_eq!(
                Answer::from_upstream(&resp, &q, &opts())
                    .unwrap()
                    .cache_lifetime(),
                0
            );
        }
        let capped = CacheOptions {
            negative_max_ttl: std::time::Duration::from_secs(10),
            ..opts()
        };
        let resp = response(
            &qb,
            ResponseCode::NXDomain,
            vec![],
            vec![soa("example.", 3600, 300)],
        );
        assert_eq!(
            Answer::from_upstream(&resp, &q, &capped)
                .unwrap()
                .cache_lifetime(),
            10
        );
    }

    #[test]
    fn servfail_and_refused_are_served_but_not_cacheable() {
        let qb = query_bytes(1, "www.example.", RecordType::A, None);
        let q = client(&qb);
        for rcode in [ResponseCode::ServFail, ResponseCode::Refused] {
            let resp = response(&qb, rcode, vec![], vec![soa("example.", 3600, 300)]);
            let ans = Answer::from_upstream(&resp, &q, &opts()).unwrap();
            assert_eq!(ans.cache_lifetime(), 0);
            assert_eq!(ans.response_code(), rcode);
        }
    }

    #[test]
    fn mismatched_responses_are_rejected() {
        let qb = query_bytes(1, "www.example.", RecordType::A, None);
        let q = client(&qb);
        let other = query_bytes(1, "other.example.", RecordType::A, None);
        let resp = response(&other, ResponseCode::NoError, vec![], vec![]);
        assert!(matches!(
            Answer::from_upstream(&resp, &q, &opts()),
            Err(AnswerError::QuestionMismatch)
        ));
        let wrong_id = query_bytes(2, "www.example.", RecordType::A, None);
        let resp = response(&wrong_id, ResponseCode::NoError, vec![], vec![]);
        assert!(matches!(
            Answer::from_upstream(&resp, &q, &opts()),
            Err(AnswerError::IdMismatch {
                expected: 1,
                got: 2
            })
        ));
        assert!(matches!(
            Answer::from_upstream(&qb, &q, &opts()),
            Err(AnswerError::NotAResponse)
        ));
        assert!(matches!(
            Answer::from_upstream(&qb[..20], &q, &opts()),
            Err(AnswerError::Decode(_))
        ));
        let mut tc = response(&qb, ResponseCode::NoError, vec![], vec![]);
        tc[2] |= header::TC;
        assert!(matches!(
            Answer::from_upstream(&tc, &q, &opts()),
            Err(AnswerError::Truncated)
        ));
    }

    fn big_answer(qb: &[u8]) -> Vec<u8> {
        let answers = (0..60).map(|i| a("big.example.", 300, i)).collect();
        response(qb, ResponseCode::NoError, answers, vec![])
    }

    #[test]
    fn oversized_udp_answer_is_truncated_keeping_question_and_opt() {
        let qb = query_bytes(7, "big.example.", RecordType::A, Some((512, false)));
        let q = client(&qb);
        let ans = Answer::from_upstream(&big_answer(&qb), &q, &opts()).unwrap();
        let r = ans.render(&q, 0, q.size_limit(Protocol::Udp));
        assert!(r.truncated);
        assert!(r.bytes.len() <= 512);
        let m = Message::from_vec(&r.bytes).unwrap();
        assert!(m.metadata.truncation);
        assert_eq!(m.metadata.id, 7);
        assert!(m.answers.is_empty() && m.authorities.is_empty() && m.additionals.is_empty());
        assert_eq!(m.queries.len(), 1);
        assert!(m.edns.is_some());

        let full = ans.render(&q, 0, q.size_limit(Protocol::Tcp));
        assert!(!full.truncated);
        assert_eq!(Message::from_vec(&full.bytes).unwrap().answers.len(), 60);
    }

    #[test]
    fn without_edns_the_opt_is_left_out_and_limit_is_512() {
        let qb = query_bytes(8, "big.example.", RecordType::A, None);
        let q = client(&qb);
        let ans = Answer::from_upstream(&big_answer(&qb), &q, &opts()).unwrap();
        let r = ans.render(&q, 0, q.size_limit(Protocol::Udp));
        assert!(r.truncated);
        let m = Message::from_vec(&r.bytes).unwrap();
        assert!(m.edns.is_none() && m.metadata.truncation);
        let r = ans.render(&q, 0, 65535);
        let m = Message::from_vec(&r.bytes).unwrap();
        assert!(m.edns.is_none());
        assert_eq!(m.answers.len(), 60);

        let qb4096 = query_bytes(9, "big.example.", RecordType::A, Some((4096, false)));
        let q = client(&qb4096);
        let r = ans.render(&q, 0, q.size_limit(Protocol::Udp));
        assert!(!r.truncated);
        let m = Message::from_vec(&r.bytes).unwrap();
        assert_eq!(m.answers.len(), 60);
        assert_eq!(m.edns.map(|e| e.max_payload()), Some(4096));
    }

    #[test]
    fn upstream_edns_options_and_payload_are_replaced() {
        let qb = query_bytes(1, "www.example.", RecordType::A, Some((1232, true)));
        let q = client(&qb);
        let resp = response(
            &qb,
            ResponseCode::NoError,
            vec![a("www.example.", 60, 1)],
            vec![],
        );
        let ans = Answer::from_upstream(&resp, &q, &opts()).unwrap();
        let m = Message::from_vec(&ans.render(&q, 0, 65535).bytes).unwrap();
        let e = m.edns.unwrap();
        assert_eq!(e.max_payload(), 4096);
        assert!(e.flags().dnssec_ok);
    }

    /// `resp` (whose OPT record is last and empty) with its OPT record carrying a padding
    /// option of `pad` bytes and extended RCODE bits `rcode_high`.
    fn with_padded_opt(resp: &[u8], pad: usize, rcode_high: u8) -> Vec<u8> {
        let mut b = resp.to_vec();
        let opt = wire::layout(&b).unwrap().opt.unwrap().start;
        assert_eq!(b.len(), opt + 11, "OPT record without options");
        b[opt + 5] = rcode_high;
        wire::write_u16(&mut b, opt + 9, (4 + pad) as u16);
        b.extend_from_slice(&12u16.to_be_bytes());
        b.extend_from_slice(&(pad as u16).to_be_bytes());
        b.extend(std::iter::repeat_n(0u8, pad));
        b
    }

    #[test]
    fn upstream_padding_does_not_change_the_answer() {
        let qb = query_bytes(1, "www.example.", RecordType::A, Some((1232, true)));
        let q = client(&qb);
        let plain = response(
            &qb,
            ResponseCode::NoError,
            vec![a("www.example.", 300, 1), a("www.example.", 60, 2)],
            vec![],
        );
        let padded = with_padded_opt(&plain, 400, 0);
        // hickory-proto sees the padding option in the original bytes...
        let decoded = Message::from_vec(&padded).unwrap();
        assert!(decoded.edns.unwrap().option(EdnsCode::Padding).is_some());
        // ...and not in what the stub decodes, which is otherwise the same message.
        let stripped = without_opt_options(&padded);
        assert_eq!(stripped.len(), plain.len());
        assert_eq!(&stripped[..], &plain[..]);
        assert_eq!(
            Answer::from_upstream(&padded, &q, &opts()).unwrap(),
            Answer::from_upstream(&plain, &q, &opts()).unwrap()
        );
        // Nothing to strip: the bytes are used as they are.
        assert!(matches!(without_opt_options(&plain), Cow::Borrowed(_)));
    }

    #[test]
    fn extended_rcode_is_seen_through_padding() {
        let qb = query_bytes(1, "www.example.", RecordType::A, Some((1232, false)));
        let q = client(&qb);
        let plain = response(&qb, ResponseCode::NoError, vec![], vec![]);
        let padded = with_padded_opt(&plain, 100, 1);
        assert!(matches!(
            Answer::from_upstream(&padded, &q, &opts()),
            Err(AnswerError::ExtendedRcode(16))
        ));
    }

    #[test]
    fn opt_with_a_non_root_owner_is_still_refused() {
        let qb = query_bytes(1, "www.example.", RecordType::A, Some((1232, false)));
        let q = client(&qb);
        let plain = response(
            &qb,
            ResponseCode::NoError,
            vec![a("www.example.", 60, 1)],
            vec![],
        );
        let mut padded = with_padded_opt(&plain, 40, 0);
        let opt = wire::layout(&padded).unwrap().opt.unwrap().start;
        // Owner "a." instead of the root.
        padded.splice(opt..opt + 1, [1, b'a', 0]);
        assert!(matches!(without_opt_options(&padded), Cow::Borrowed(_)));
        assert!(matches!(
            Answer::from_upstream(&padded, &q, &opts()),
            Err(AnswerError::Decode(_))
        ));
    }

    /// The positions the cache patches: TTLs of every record but OPT, and an OPT record
    /// that must come last in a message with one question.
    #[test]
    fn serving_positions_need_one_question_and_a_last_opt() {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 1];
        m.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
        let question_end = m.len();
        for ttl in [300u32, 60] {
            m.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1]);
            m.extend_from_slice(&ttl.to_be_bytes());
            m.extend_from_slice(&[0, 4, 192, 0, 2, 1]);
        }
        let opt = m.len();
        m.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
        let (q_end, opt_start, ttls) = serving_positions(&m).unwrap();
        assert_eq!((q_end, opt_start), (question_end, opt));
        let read: Vec<_> = ttls
            .iter()
            .map(|&at| wire::read_u32(&m, usize::from(at)))
            .collect();
        assert_eq!(read, vec![Some(300), Some(60)]);

        // OPT first, then an A record: refused.
        let mut not_last = m[..question_end].to_vec();
        not_last[7] = 0; // ancount
        not_last[11] = 2; // arcount
        not_last.extend_from_slice(&m[opt..]);
        not_last.extend_from_slice(&m[question_end..question_end + 16]);
        assert_eq!(serving_positions(&not_last), Err(WireError::OptNotLast));
        // No OPT at all: refused the same way (the normalized answer always has one).
        let mut no_opt = m[..opt].to_vec();
        no_opt[11] = 0;
        assert_eq!(serving_positions(&no_opt), Err(WireError::OptNotLast));
        // Two questions: refused.
        let mut two = m.clone();
        two[5] = 2;
        two.splice(question_end..question_end, m[12..question_end].to_vec());
        assert_eq!(serving_positions(&two), Err(WireError::QuestionCount(2)));
    }

    #[test]
    fn rrsets_are_matched_case_insensitively_in_small_and_large_sections() {
        let mixed = |n: usize| -> Vec<Record> {
            (0..n)
                .map(|i| {
                    let name = match i % 3 {
                        0 => "www.example.",
                        1 => "WWW.Example.",
                        _ => "other.example.",
                    };
                    a(name, 1000 - (i as u32) * 7, i as u8)
                })
                .collect()
        };
        for n in [1, 2, 5, SMALL_SECTION, SMALL_SECTION + 1, 60] {
            let records = mixed(n);
            let small = small_set_minimums(&records);
            assert_eq!(small, hashed_set_minimums(&records), "{n} records");
            for (r, min) in records.iter().zip(&small) {
                let expected = records
                    .iter()
                    .filter(|o| o.name.to_lowercase() == r.name.to_lowercase())
                    .map(|o| o.ttl)
                    .min()
                    .unwrap();
                assert_eq!(*min, expected);
            }
            let mut normalized = records.clone();
            normalize_rrsets(&mut normalized, 0, u32::MAX);
            assert_eq!(normalized.iter().map(|r| r.ttl).collect::<Vec<_>>(), small);
        }
    }
}
