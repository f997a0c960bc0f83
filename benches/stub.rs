//! Micro-benchmarks of the stub's per-query work: message ID rewrite and allocation, EDNS(0)
//! padding, the cache-hit path of `QueryHandler::handle` (warm cache, in-process upstream),
//! and DNS wire parsing (ctdns' layout walk and client-message classification, next to a full
//! hickory-proto decode for scale).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use ctdns::stub::message::{classify, Classified};
use ctdns::stub::{Metrics, Protocol, QueryHandler, StubOptions};
use ctdns::upstream::msgid::{message_id, set_message_id, IdAllocator};
use ctdns::upstream::padding::{pad_query, strip_opt, QUERY_BLOCK};
use ctdns::upstream::{BoxFuture, Transport, UpstreamError};
use ctdns::wire::layout;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

fn quick(c: &mut Criterion) -> BenchmarkGroup<'_, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group("stub");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    g
}

fn query(id: u16, name: &str, edns: bool) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        Name::from_ascii(name).expect("name"),
        RecordType::A,
    ));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m.to_vec().expect("query encodes")
}

/// A response to `query` with `n` A records (TTL 300) and, if the query had one, an OPT record.
fn response(query: &[u8], n: u8) -> Result<Vec<u8>, UpstreamError> {
    let q = Message::from_vec(query).map_err(|e| {
        UpstreamError::MalformedQuery(ctdns::wire::WireError::Reencode(e.to_string()))
    })?;
    let question =
        q.queries.first().cloned().ok_or_else(|| {
            UpstreamError::MalformedQuery(ctdns::wire::WireError::QuestionCount(0))
        })?;
    let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.recursion_available = true;
    r.add_query(question.clone());
    for i in 0..n {
        r.add_answer(Record::from_rdata(
            question.name().clone(),
            300,
            RData::A(A(Ipv4Addr::new(192, 0, 2, i))),
        ));
    }
    if q.edns.is_some() {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        r.set_edns(e);
    }
    r.to_vec().map_err(|e| {
        UpstreamError::MalformedResponse(ctdns::wire::WireError::Reencode(e.to_string()))
    })
}

/// An in-process upstream answering every A query with two records, counting its calls.
#[derive(Debug, Default)]
struct Answering {
    calls: AtomicUsize,
}

impl Transport for Answering {
    fn query<'a>(&'a self, query: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, UpstreamError>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move { response(query, 2) })
    }

    fn name(&self) -> &str {
        "in-process"
    }
}

fn bench_msgid(c: &mut Criterion) {
    let mut msg = query(0x1234, "www.example.", true);
    let alloc = IdAllocator::new();
    let mut g = quick(c);
    g.bench_function("msgid/rewrite+restore", |b| {
        b.iter(|| {
            let original = message_id(black_box(&msg));
            let ok = set_message_id(&mut msg, black_box(0xBEEF));
            let restored = original.is_some_and(|id| set_message_id(&mut msg, id));
            ok && restored
        })
    });
    g.bench_function("msgid/allocate(64 in use)", |b| {
        let in_use: std::collections::HashSet<u16> = (0..64u16).map(|i| i * 997).collect();
        b.iter(|| alloc.allocate(|id| in_use.contains(&id)))
    });
    g.finish();
}

fn bench_padding(c: &mut Criterion) {
    let plain = query(7, "www.example.", false);
    let with_opt = query(7, "www.example.", true);
    for q in [&plain, &with_opt] {
        let padded = pad_query(q).expect("pads");
        assert_eq!(padded.bytes.len() % QUERY_BLOCK, 0);
    }
    let resp = response(&with_opt, 2).expect("response");
    let stripped = strip_opt(&resp).expect("strips");
    assert!(stripped.len() < resp.len());
    let mut g = quick(c);
    g.bench_function("padding/pad_query(add OPT)", |b| {
        b.iter(|| pad_query(black_box(&plain)))
    });
    g.bench_function("padding/pad_query(existing OPT)", |b| {
        b.iter(|| pad_query(black_box(&with_opt)))
    });
    g.bench_function("padding/strip_opt(response)", |b| {
        b.iter(|| strip_opt(black_box(&resp)))
    });
    g.finish();
}

fn bench_cache_hit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let upstream = Arc::new(Answering::default());
    let handler = QueryHandler::new(
        upstream.clone(),
        &StubOptions::default(),
        Arc::new(Metrics::default()),
    );
    let udp = query(0x4242, "www.example.", true);
    let tcp = query(0x4343, "www.example.", false);
    // Warm the cache, then check that further queries are answered without the upstream.
    let first = rt
        .block_on(handler.handle(&udp, Protocol::Udp))
        .expect("answer");
    let again = rt
        .block_on(handler.handle(&tcp, Protocol::Tcp))
        .expect("answer");
    assert_eq!(upstream.calls.load(Ordering::Relaxed), 1);
    assert_eq!(message_id(&first), Some(0x4242));
    assert_eq!(message_id(&again), Some(0x4343));
    let mut g = quick(c);
    g.bench_function("cache_hit/handle(udp, edns)", |b| {
        b.iter(|| rt.block_on(handler.handle(black_box(&udp), Protocol::Udp)))
    });
    g.bench_function("cache_hit/handle(tcp)", |b| {
        b.iter(|| rt.block_on(handler.handle(black_box(&tcp), Protocol::Tcp)))
    });
    g.finish();
    assert_eq!(
        upstream.calls.load(Ordering::Relaxed),
        1,
        "every benchmarked query was a hit"
    );
}

fn bench_wire(c: &mut Criterion) {
    let q = query(9, "www.example.", true);
    let resp = response(&q, 8).expect("response");
    assert!(layout(&resp).is_ok_and(|l| l.opt.is_some()));
    assert!(matches!(classify(&q, Protocol::Udp), Classified::Query(_)));
    let mut g = quick(c);
    g.bench_function("wire/layout(response, 8 A + OPT)", |b| {
        b.iter(|| layout(black_box(&resp)))
    });
    g.bench_function("wire/classify(query, udp)", |b| {
        b.iter(|| matches!(classify(black_box(&q), Protocol::Udp), Classified::Query(_)))
    });
    g.bench_function("wire/hickory_decode(response, 8 A + OPT)", |b| {
        b.iter(|| Message::from_vec(black_box(&resp)).is_ok())
    });
    g.finish();
}

criterion_group!(
    stub_benches,
    bench_msgid,
    bench_padding,
    bench_cache_hit,
    bench_wire
);
criterion_main!(stub_benches);
