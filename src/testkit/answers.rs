//! What the test server answers: a fixed [`AnswerTable`] (`ctdns demo`, benchmarks) or
//! synthetic addresses derived from the name ([`Answers::Synthetic`], the fault tests: any name
//! resolves, `big*` and `mid*` names to many records).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::ServerError;

/// TTL of every answer record.
pub const ANSWER_TTL: u32 = 300;

/// How many A records a `big*` name gets from [`Answers::Synthetic`] (16 bytes each with
/// compression: ~4.8 kB).
pub const BIG_ANSWER_RECORDS: usize = 300;

/// How many A records a `mid*` name gets from [`Answers::Synthetic`]: an answer above the
/// 1,232-byte UDP cap for remote clients and below the stub's 4,096-byte UDP maximum.
pub const MID_ANSWER_RECORDS: usize = 100;

/// The address in every decoy response ([`decoys`]): a client that accepted one would show it.
pub const DECOY_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 66);

/// How the server answers a well-formed query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answers {
    /// From a table: A and AAAA records for its names, NXDOMAIN for other names, FORMERR for
    /// messages that are not a single-question query, NOTIMP for other opcodes.
    Table(AnswerTable),
    /// Every `A` question gets [`expected_ip`] of its name (names starting with `big` get
    /// [`BIG_ANSWER_RECORDS`] records [`big_ip`], names starting with `mid`
    /// [`MID_ANSWER_RECORDS`]); other types get an empty answer.
    Synthetic,
}

impl Answers {
    /// The response to `query`, or `None` when there is none to send (not a query, or not
    /// even a readable header).
    pub fn respond(&self, query: &[u8]) -> Option<Vec<u8>> {
        match self {
            Answers::Table(table) => respond(query, table),
            Answers::Synthetic => synthetic(query),
        }
    }
}

/// Names and the addresses the server answers for them: A queries get the IPv4 addresses,
/// AAAA queries the IPv6 ones. A name not in the table gets NXDOMAIN; a name in the table
/// asked for another type gets an empty NOERROR answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnswerTable {
    /// Lower-case fully qualified name → addresses, in insertion order.
    entries: BTreeMap<String, Vec<IpAddr>>,
}

impl AnswerTable {
    /// An empty table (every query gets NXDOMAIN).
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `ip` to the answers for `name` (case-insensitive; a missing final dot is added).
    pub fn insert(&mut self, name: &str, ip: IpAddr) -> Result<(), ServerError> {
        let key = table_key(name).ok_or_else(|| ServerError::BadName {
            name: name.to_string(),
        })?;
        self.entries.entry(key).or_default().push(ip);
        Ok(())
    }

    /// The addresses for `name`, if it is in the table.
    pub fn lookup(&self, name: &str) -> Option<&[IpAddr]> {
        self.entries.get(&table_key(name)?).map(Vec::as_slice)
    }

    /// Number of names in the table.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table has no names.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn table_key(name: &str) -> Option<String> {
    let mut n = Name::from_ascii(name).ok()?;
    n.set_fqdn(true);
    Some(n.to_lowercase().to_ascii())
}

/// The response to one query: answers from the table; FORMERR for messages that are not a
/// single-question query, NOTIMP for opcodes other than QUERY; nothing when even the header
/// is unreadable.
fn respond(query: &[u8], answers: &AnswerTable) -> Option<Vec<u8>> {
    let q = match Message::from_vec(query) {
        Ok(q) => q,
        Err(_) => {
            let id = u16::from_be_bytes(query.get(..2)?.try_into().ok()?);
            return Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
                .to_vec()
                .ok();
        }
    };
    let id = q.metadata.id;
    if q.metadata.message_type != MessageType::Query {
        return None;
    }
    if q.metadata.op_code != OpCode::Query {
        return Message::error_msg(id, q.metadata.op_code, ResponseCode::NotImp)
            .to_vec()
            .ok();
    }
    let [question] = q.queries.as_slice() else {
        return Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
            .to_vec()
            .ok();
    };
    let mut r = Message::response(id, OpCode::Query);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.recursion_available = true;
    r.add_query(question.clone());
    match answers.lookup(&question.name().to_ascii()) {
        None => r.metadata.response_code = ResponseCode::NXDomain,
        Some(ips) => {
            for ip in ips {
                let rdata = match (question.query_type(), ip) {
                    (RecordType::A, IpAddr::V4(v4)) => RData::A(A(*v4)),
                    (RecordType::AAAA, IpAddr::V6(v6)) => RData::AAAA(AAAA(*v6)),
                    _ => continue,
                };
                r.add_answer(Record::from_rdata(
                    question.name().clone(),
                    ANSWER_TTL,
                    rdata,
                ));
            }
        }
    }
    if q.edns.is_some() {
        r.set_edns(Edns::new());
    }
    r.to_vec().ok()
}

/// The address a name resolves to: an FNV-1a hash of the lower-case name (without the
/// trailing dot) in 198.18.0.0/15.
pub fn expected_ip(name: &str) -> Ipv4Addr {
    let norm = name.trim_end_matches('.').to_ascii_lowercase();
    let mut h: u32 = 0x811c_9dc5;
    for b in norm.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let [_, b1, b2, b3] = h.to_be_bytes();
    Ipv4Addr::new(198, 18 + (b1 & 1), b2, b3)
}

/// The address of record `i` of a `big*` name.
pub fn big_ip(i: usize) -> Ipv4Addr {
    let [.., hi, lo] = (i as u32).to_be_bytes();
    Ipv4Addr::new(198, 19, hi, lo)
}

/// The [`Answers::Synthetic`] response to `query`, or `None` if it is not a DNS query.
pub fn synthetic(query: &[u8]) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    if q.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.recursion_available = true;
    r.add_queries(q.queries.clone());
    if q.edns.is_some() {
        let mut e = Edns::new();
        e.set_max_payload(4096);
        r.set_edns(e);
    }
    for question in &q.queries {
        if question.query_type() != RecordType::A {
            continue;
        }
        let name = question.name().to_ascii();
        let lower = name.to_ascii_lowercase();
        let many = if lower.starts_with("big") {
            Some(BIG_ANSWER_RECORDS)
        } else if lower.starts_with("mid") {
            Some(MID_ANSWER_RECORDS)
        } else {
            None
        };
        if let Some(records) = many {
            for i in 0..records {
                r.add_answer(Record::from_rdata(
                    question.name().clone(),
                    ANSWER_TTL,
                    RData::A(A(big_ip(i))),
                ));
            }
        } else {
            r.add_answer(Record::from_rdata(
                question.name().clone(),
                300,
                RData::A(A(expected_ip(&name))),
            ));
        }
    }
    r.to_vec().ok()
}

/// Three wrong responses to `query`: unknown ID (the ID xor 0x5A5A), another name
/// (`decoy.test.`), another type (AAAA). Each carries an A record with [`DECOY_IP`]. Empty
/// when `query` is not a DNS message with a question.
pub fn decoys(query: &[u8]) -> Vec<Vec<u8>> {
    let Ok(q) = Message::from_vec(query) else {
        return Vec::new();
    };
    let Some(question) = q.queries.first() else {
        return Vec::new();
    };
    let id = q.metadata.id;
    let other_name = Name::from_ascii("decoy.test.").ok();
    let variants = [
        (id ^ 0x5A5A, question.name().clone(), question.query_type()),
        (
            id,
            other_name.unwrap_or_else(Name::root),
            question.query_type(),
        ),
        (id, question.name().clone(), RecordType::AAAA),
    ];
    variants
        .into_iter()
        .filter_map(|(id, name, qtype)| {
            let mut r = Message::response(id, OpCode::Query);
            r.add_query(Query::query(name.clone(), qtype));
            r.add_answer(Record::from_rdata(name, ANSWER_TTL, RData::A(A(DECOY_IP))));
            r.to_vec().ok()
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A recursive query for `name`/`qtype` with message ID `id`.
    pub(crate) fn query(name: &str, qtype: RecordType, id: u16) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        m.to_vec().unwrap()
    }

    fn table() -> AnswerTable {
        let mut t = AnswerTable::new();
        t.insert("Bank.Example", "192.0.2.80".parse().unwrap())
            .unwrap();
        t.insert("bank.example.", "2001:db8::80".parse().unwrap())
            .unwrap();
        t
    }

    #[test]
    fn table_is_case_insensitive_and_rejects_bad_names() {
        let t = table();
        assert_eq!(t.len(), 1);
        assert_eq!(t.lookup("BANK.example.").map(<[IpAddr]>::len), Some(2));
        assert!(t.lookup("other.example.").is_none());
        let mut t = AnswerTable::new();
        assert!(t.is_empty());
        let long_label = "a".repeat(64);
        assert!(matches!(
            t.insert(&long_label, "192.0.2.1".parse().unwrap()),
            Err(ServerError::BadName { .. })
        ));
    }

    #[test]
    fn responses_follow_the_table() {
        let t = table();
        let r = Message::from_vec(&respond(&query("bank.example.", RecordType::A, 7), &t).unwrap())
            .unwrap();
        assert_eq!(r.metadata.id, 7);
        assert_eq!(r.metadata.message_type, MessageType::Response);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert_eq!(r.answers.len(), 1);
        assert_eq!(
            r.answers[0].data,
            RData::A(A("192.0.2.80".parse().unwrap()))
        );

        let r =
            Message::from_vec(&respond(&query("bank.example.", RecordType::AAAA, 8), &t).unwrap())
                .unwrap();
        assert_eq!(
            r.answers[0].data,
            RData::AAAA(AAAA("2001:db8::80".parse().unwrap()))
        );

        let r =
            Message::from_vec(&respond(&query("bank.example.", RecordType::MX, 9), &t).unwrap())
                .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.answers.is_empty());

        let r =
            Message::from_vec(&respond(&query("nope.example.", RecordType::A, 10), &t).unwrap())
                .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    }

    #[test]
    fn malformed_messages_get_formerr_or_nothing() {
        let t = table();
        assert!(respond(&[0x12], &t).is_none());
        let r = Message::from_vec(&respond(&[0x12, 0x34, 0xff], &t).unwrap()).unwrap();
        assert_eq!(r.metadata.id, 0x1234);
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        // Two questions.
        let mut m = Message::new(3, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(Name::from_ascii("a.").unwrap(), RecordType::A));
        m.add_query(Query::query(Name::from_ascii("b.").unwrap(), RecordType::A));
        let r = Message::from_vec(&respond(&m.to_vec().unwrap(), &t).unwrap()).unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        // A response is not answered.
        let resp = Message::response(4, OpCode::Query).to_vec().unwrap();
        assert!(respond(&resp, &t).is_none());
    }

    #[test]
    fn synthetic_answers_follow_the_name() {
        let r = Message::from_vec(&synthetic(&query("Host.Example.", RecordType::A, 5)).unwrap())
            .unwrap();
        assert_eq!(r.metadata.id, 5);
        assert_eq!(r.answers[0].data, RData::A(A(expected_ip("host.example"))));
        let r = Message::from_vec(&synthetic(&query("big1.example.", RecordType::A, 6)).unwrap())
            .unwrap();
        assert_eq!(r.answers.len(), BIG_ANSWER_RECORDS);
        assert_eq!(r.answers[7].data, RData::A(A(big_ip(7))));
        let r = Message::from_vec(&synthetic(&query("mid.example.", RecordType::A, 6)).unwrap())
            .unwrap();
        assert_eq!(r.answers.len(), MID_ANSWER_RECORDS);
        let r = Message::from_vec(&synthetic(&query("x.example.", RecordType::AAAA, 6)).unwrap())
            .unwrap();
        assert!(r.answers.is_empty());
        assert!(synthetic(&[1, 2, 3]).is_none());
        assert!(
            u32::from(expected_ip("a.example")) >> 17
                == u32::from(Ipv4Addr::new(198, 18, 0, 0)) >> 17
        );
    }
}
