//! The stub's query path: `message::classify` and `QueryHandler::handle`, with an
//! in-process `Transport` answering from a table, over UDP (one datagram) and TCP (a
//! stream of length-prefixed frames, as the TCP listener splits it).
//!
//! The input is split (see `ctdns_fuzz::split`) into `flags, client bytes, upstream bytes`.
//! `flags & 7` picks the table entry the transport answers with (a well-formed answer, an
//! NXDOMAIN with SOA, the upstream bytes with the query's ID, the upstream bytes as they
//! are, a transport error, SERVFAIL, an answer too big for UDP, an answer to another
//! question); `flags & 8` selects TCP; `flags & 16` disables the cache.
//!
//! Checked: never panics; a message shorter than a header and a response over UDP get no
//! answer, everything else exactly one, with the client's ID and QR set; a message that
//! does not decode as a QUERY gets FORMERR (or NOTIMP for another opcode); a query that
//! classifies as one is answered with its question echoed byte for byte (letter case
//! included), within the client's UDP size limit, and its upstream query round-trips
//! through hickory with the same question. Asking twice (the second time from the cache)
//! gives the same RCODE.
#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, OnceLock};

use ctdns::stub::message::{classify, upstream_query, Classified};
use ctdns::stub::{CacheOptions, Metrics, Protocol, QueryHandler, StubOptions};
use ctdns::upstream::{BoxFuture, Transport, UpstreamError};
use ctdns_fuzz::split;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record};
use libfuzzer_sys::fuzz_target;

/// RCODE FORMERR / NOTIMP / BADVERS-in-header (BADVERS is 16: header nibble 0 + OPT).
const FORMERR: u8 = 1;
const NOTIMP: u8 = 4;

/// An upstream answering every query from a fixed table entry.
#[derive(Debug)]
struct TableTransport {
    entry: u8,
    raw: Vec<u8>,
}

impl TableTransport {
    fn answer(&self, query: &[u8]) -> Result<Vec<u8>, UpstreamError> {
        let q = Message::from_vec(query)
            .map_err(|e| UpstreamError::ConnectionLost(format!("stub sent an undecodable query: {e}")))?;
        let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.metadata.recursion_available = true;
        m.add_queries(q.queries.iter().cloned());
        let name = q
            .queries
            .first()
            .map(|q| q.name().clone())
            .unwrap_or_else(Name::root);
        let ttl = self
            .raw
            .first_chunk::<4>()
            .map_or(300, |b| u32::from_be_bytes(*b));
        match self.entry {
            0 => {
                m.answers.push(Record::from_rdata(
                    name.clone(),
                    ttl,
                    RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
                ));
                m.answers.push(Record::from_rdata(
                    name.clone(),
                    ttl / 2,
                    RData::A(A(Ipv4Addr::new(192, 0, 2, 2))),
                ));
                m.additionals.push(Record::from_rdata(
                    name,
                    ttl,
                    RData::AAAA(AAAA(Ipv6Addr::LOCALHOST)),
                ));
            }
            1 => {
                m.metadata.response_code = ResponseCode::NXDomain;
                m.authorities.push(Record::from_rdata(
                    Name::root(),
                    ttl,
                    RData::SOA(SOA::new(
                        Name::from_ascii("ns.example.").expect("static name"),
                        Name::from_ascii("hostmaster.example.").expect("static name"),
                        1,
                        3600,
                        600,
                        86400,
                        ttl.rotate_left(7),
                    )),
                ));
            }
            2 => {
                let mut raw = self.raw.clone();
                if let (Some(dst), Some(src)) = (raw.get_mut(..2), query.get(..2)) {
                    dst.copy_from_slice(src);
                }
                return Ok(raw);
            }
            3 => return Ok(self.raw.clone()),
            4 => {
                return Err(UpstreamError::ConnectionLost(
                    "table entry: transport error".into(),
                ))
            }
            5 => m.metadata.response_code = ResponseCode::ServFail,
            6 => {
                let text = "x".repeat(200);
                for _ in 0..40 {
                    m.answers.push(Record::from_rdata(
                        name.clone(),
                        ttl,
                        RData::TXT(TXT::new(vec![text.clone()])),
                    ));
                }
            }
            _ => {
                let other = Name::from_ascii("other.example.").expect("static name");
                for query in &mut m.queries {
                    query.set_name(other.clone());
                }
            }
        }
        m.to_vec()
            .map_err(|e| UpstreamError::ConnectionLost(format!("table answer does not encode: {e}")))
    }
}

impl Transport for TableTransport {
    fn query<'a>(&'a self, query: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, UpstreamError>> {
        Box::pin(async move { self.answer(query) })
    }

    fn name(&self) -> &str {
        "table"
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("tokio runtime")
    })
}

/// Offset just past the uncompressed question name starting at byte 12, if it is one.
fn question_end(msg: &[u8]) -> Option<usize> {
    let mut pos = 12;
    loop {
        let len = usize::from(*msg.get(pos)?);
        if len == 0 {
            return Some(pos + 1 + 4).filter(|&end| end <= msg.len());
        }
        if len & 0xC0 != 0 {
            return None;
        }
        pos += 1 + len;
    }
}

fn rcode(response: &[u8]) -> u8 {
    response.get(3).map_or(0xFF, |b| b & 0x0F)
}

fn check_one(handler: &QueryHandler, msg: &[u8], proto: Protocol) -> Option<Vec<u8>> {
    let classified = classify(msg, proto);
    let response = runtime().block_on(handler.handle(msg, proto));
    let Some(response) = response else {
        assert!(
            msg.len() < 12 || (proto == Protocol::Udp && msg[2] & 0x80 != 0),
            "a message other than a short one or a UDP response got no answer"
        );
        assert!(matches!(classified, Classified::Drop(_)));
        return None;
    };
    assert!(msg.len() >= 12, "answered a message shorter than a header");
    assert!(response.len() >= 12, "response shorter than a header");
    assert_eq!(
        response[..2],
        msg[..2],
        "response does not carry the client's ID"
    );
    assert!(response[2] & 0x80 != 0, "response without QR");
    let opcode = (msg[2] >> 3) & 0x0F;
    if msg[2] & 0x80 == 0 && opcode == 0 && Message::from_vec(msg).is_err() {
        assert_eq!(rcode(&response), FORMERR, "undecodable query not FORMERR");
    }
    if msg[2] & 0x80 == 0 && opcode != 0 {
        assert_eq!(rcode(&response), NOTIMP, "non-QUERY opcode not NOTIMP");
    }
    match classified {
        Classified::Query(q) => {
            let limit = q.size_limit(proto);
            assert!(response.len() <= limit, "response over the client's limit");
            let end = question_end(msg).expect("a classified query has a plain question");
            assert_eq!(
                response.get(12..end),
                msg.get(12..end),
                "question not echoed byte for byte"
            );
            let parsed = Message::from_vec(&response).expect("stub response decodes");
            assert_eq!(parsed.metadata.message_type, MessageType::Response);
            let client = Message::from_vec(msg).expect("classified query decodes");
            assert_eq!(parsed.queries, client.queries, "question changed");
            let upstream = upstream_query(&q);
            let again = Message::from_vec(&upstream).expect("upstream query decodes");
            assert_eq!(
                again.queries, client.queries,
                "upstream query changed the question"
            );
            assert_eq!(again.metadata.id, client.metadata.id);
        }
        Classified::Refuse { response: r, .. } => {
            assert_eq!(r, response, "handler answered differently from classify");
        }
        Classified::Drop(_) => panic!("dropped message got an answer"),
    }
    Some(response)
}

fn frames(mut stream: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((len, rest)) = stream.split_first_chunk::<2>() {
        let len = usize::from(u16::from_be_bytes(*len));
        let Some(frame) = rest.get(..len) else { break };
        out.push(frame);
        stream = &rest[len..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let parts = split(data, 3);
    let [flags, client, upstream] = parts.as_slice() else {
        return;
    };
    let flags = flags.first().copied().unwrap_or(0);
    let transport = Arc::new(TableTransport {
        entry: flags & 7,
        raw: upstream.to_vec(),
    });
    let mut opts = StubOptions::default();
    if flags & 16 != 0 {
        opts.cache = CacheOptions::disabled();
    }
    let handler = QueryHandler::new(transport, &opts, Arc::new(Metrics::default()));
    let (proto, messages) = if flags & 8 == 0 {
        (Protocol::Udp, vec![*client])
    } else {
        (Protocol::Tcp, frames(client))
    };
    for msg in messages.into_iter().take(8) {
        let first = check_one(&handler, msg, proto);
        let second = check_one(&handler, msg, proto);
        assert_eq!(
            first.as_deref().map(rcode),
            second.as_deref().map(rcode),
            "a repeated query got another RCODE"
        );
    }
});
