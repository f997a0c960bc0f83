//! The stub front end over real loopback sockets, forwarding to in-process upstreams: one
//! that answers from a small table (and counts its calls), one that never answers.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ctdns::stub::{self, CacheOptions, StubError, StubHandle, StubOptions};
use ctdns::upstream::{BoxFuture, Transport, UpstreamError};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Long enough that only a broken server makes a test wait for it.
const WAIT: Duration = Duration::from_secs(5);

/// What the table upstream does for one name.
#[derive(Debug, Clone)]
enum Entry {
    /// NOERROR with these A records (TTL 300).
    A(Vec<Ipv4Addr>),
    /// NXDOMAIN with the SOA of `example.`.
    NxDomain,
    /// The exchange fails.
    Fail,
    /// NOERROR with one A record, after this delay.
    Slow(Duration),
}

/// An upstream answering from a table, counting every query it receives.
#[derive(Debug, Default)]
struct TableUpstream {
    table: HashMap<String, Entry>,
    calls: AtomicUsize,
}

impl TableUpstream {
    fn new() -> Self {
        let mut table = HashMap::new();
        table.insert(
            "www.example.".into(),
            Entry::A(vec![Ipv4Addr::new(192, 0, 2, 1)]),
        );
        table.insert(
            "big.example.".into(),
            Entry::A((0..60).map(|i| Ipv4Addr::new(198, 51, 100, i)).collect()),
        );
        table.insert("nx.example.".into(), Entry::NxDomain);
        table.insert("fail.example.".into(), Entry::Fail);
        table.insert(
            "slow.example.".into(),
            Entry::Slow(Duration::from_millis(400)),
        );
        for i in 0..100u8 {
            table.insert(
                format!("n{i}.example."),
                Entry::A(vec![Ipv4Addr::new(10, 0, 0, i)]),
            );
        }
        Self {
            table,
            calls: AtomicUsize::new(0),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn answer(&self, query: &[u8]) -> Result<Vec<u8>, UpstreamError> {
        let q = Message::from_vec(query).map_err(bad_query)?;
        let question = q
            .queries
            .first()
            .cloned()
            .ok_or_else(|| bad_query("no question"))?;
        let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
        r.metadata.recursion_desired = q.metadata.recursion_desired;
        r.metadata.recursion_available = true;
        r.add_query(question.clone());
        if let Some(e) = &q.edns {
            let mut out = Edns::new();
            out.set_max_payload(1232);
            out.set_dnssec_ok(e.flags().dnssec_ok);
            r.set_edns(out);
        }
        let name = question.name().to_lowercase().to_ascii();
        match self.table.get(&name) {
            Some(Entry::A(ips)) if question.query_type() == RecordType::A => {
                for ip in ips {
                    r.add_answer(Record::from_rdata(
                        question.name().clone(),
                        300,
                        RData::A(A(*ip)),
                    ));
                }
            }
            Some(Entry::Fail) => return Err(UpstreamError::ConnectionLost("test upstream".into())),
            Some(Entry::A(_)) => {}
            Some(Entry::Slow(_)) => {
                let rdata = RData::A(A(Ipv4Addr::new(192, 0, 2, 99)));
                r.add_answer(Record::from_rdata(question.name().clone(), 300, rdata));
            }
            Some(Entry::NxDomain) | None => {
                r.metadata.response_code = ResponseCode::NXDomain;
                r.add_authority(Record::from_rdata(
                    Name::from_ascii("example.").map_err(bad_query)?,
                    900,
                    RData::SOA(SOA::new(
                        Name::from_ascii("ns.example.").map_err(bad_query)?,
                        Name::from_ascii("hostmaster.example.").map_err(bad_query)?,
                        1,
                        3600,
                        600,
                        86400,
                        300,
                    )),
                ));
            }
        }
        r.to_vec().map_err(|e| {
            UpstreamError::MalformedResponse(ctdns::wire::WireError::Reencode(e.to_string()))
        })
    }
}

/// A query this test double cannot read, as the typed error a transport would give.
fn bad_query(e: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::MalformedQuery(ctdns::wire::WireError::Reencode(e.to_string()))
}

impl Transport for TableUpstream {
    fn query<'a>(&'a self, query: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, UpstreamError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let name = Message::from_vec(query).ok().and_then(|m| {
                m.queries
                    .first()
                    .map(|q| q.name().to_lowercase().to_ascii())
            });
            if let Some(Entry::Slow(delay)) = name.and_then(|n| self.table.get(&n)) {
                tokio::time::sleep(*delay).await;
            }
            self.answer(query)
        })
    }

    fn name(&self) -> &str {
        "table"
    }
}

/// An upstream that never answers, counting the queries it receives.
#[derive(Debug, Default)]
struct StallUpstream {
    calls: AtomicUsize,
}

impl Transport for StallUpstream {
    fn query<'a>(&'a self, _query: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, UpstreamError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(std::future::pending())
    }

    fn name(&self) -> &str {
        "stall"
    }
}

fn loopback_opts() -> StubOptions {
    StubOptions {
        listen: vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))],
        ..StubOptions::default()
    }
}

async fn start(opts: StubOptions, upstream: Arc<dyn Transport>) -> StubHandle {
    stub::bind(opts)
        .await
        .expect("bind on loopback")
        .start(upstream)
}

fn query(id: u16, name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some(payload) = edns {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

async fn udp_exchange(server: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    sock.send_to(msg, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, from) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("UDP response in time")
        .unwrap();
    assert_eq!(from, server);
    buf.truncate(n);
    buf
}

async fn udp_query(server: SocketAddr, msg: &[u8]) -> Message {
    Message::from_vec(&udp_exchange(server, msg).await).unwrap()
}

async fn tcp_send(stream: &mut TcpStream, msg: &[u8]) {
    let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(msg);
    stream.write_all(&framed).await.unwrap();
}

async fn tcp_recv(stream: &mut TcpStream) -> Message {
    let mut len = [0u8; 2];
    tokio::time::timeout(WAIT, stream.read_exact(&mut len))
        .await
        .expect("TCP response in time")
        .unwrap();
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    tokio::time::timeout(WAIT, stream.read_exact(&mut body))
        .await
        .expect("TCP response body in time")
        .unwrap();
    Message::from_vec(&body).unwrap()
}

async fn tcp_query(server: SocketAddr, msg: &[u8]) -> Message {
    let mut s = TcpStream::connect(server).await.unwrap();
    tcp_send(&mut s, msg).await;
    tcp_recv(&mut s).await
}

/// Reads until the peer closes; true if it closed within `WAIT`.
async fn closed_by_peer(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(WAIT, stream.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

fn a_records(m: &Message) -> Vec<Ipv4Addr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn udp_and_tcp_answers_are_correct() {
    let upstream = Arc::new(TableUpstream::new());
    let h = start(loopback_opts(), upstream.clone()).await;
    let udp = h.udp_addrs()[0];
    let tcp = h.tcp_addrs()[0];
    assert_eq!(udp.port(), tcp.port(), "port 0 picks one port for both");

    let m = udp_query(udp, &query(0x1111, "www.example.", RecordType::A, None)).await;
    assert_eq!(m.metadata.id, 0x1111);
    assert_eq!(m.metadata.message_type, MessageType::Response);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_records(&m), vec![Ipv4Addr::new(192, 0, 2, 1)]);
    assert!(m.edns.is_none(), "no OPT for a client that sent none");

    let m = tcp_query(
        tcp,
        &query(0x2222, "nx.example.", RecordType::A, Some(1232)),
    )
    .await;
    assert_eq!(m.metadata.id, 0x2222);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m.authorities.len(), 1);
    assert_eq!(
        m.authorities[0].ttl, 300,
        "negative TTL is min(SOA TTL, MINIMUM)"
    );
    assert!(m.edns.is_some());

    let m = udp_query(udp, &query(0x3333, "fail.example.", RecordType::A, None)).await;
    assert_eq!(m.metadata.id, 0x3333);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);

    let s = h.metrics();
    assert_eq!(s.queries, 3);
    assert_eq!(s.answered, 2);
    assert_eq!(s.servfail, 1);
    assert_eq!(s.upstream_errors, 1);
    h.shutdown().await;
}

#[tokio::test]
async fn udp_truncates_big_answers_to_the_client_size() {
    let upstream = Arc::new(TableUpstream::new());
    let h = start(loopback_opts(), upstream.clone()).await;
    let udp = h.udp_addrs()[0];

    let raw = udp_exchange(udp, &query(1, "big.example.", RecordType::A, None)).await;
    assert!(raw.len() <= 512);
    let m = Message::from_vec(&raw).unwrap();
    assert!(m.metadata.truncation, "TC set without EDNS");
    assert_eq!(m.metadata.id, 1);
    assert_eq!(m.queries.len(), 1);
    assert!(m.answers.is_empty() && m.authorities.is_empty() && m.additionals.is_empty());

    let m = udp_query(udp, &query(2, "big.example.", RecordType::A, Some(512))).await;
    assert!(m.metadata.truncation);
    assert!(m.edns.is_some(), "OPT kept in a truncated response");

    let m = udp_query(udp, &query(3, "big.example.", RecordType::A, Some(4096))).await;
    assert!(!m.metadata.truncation, "fits in 4096");
    assert_eq!(a_records(&m).len(), 60);

    let m = tcp_query(
        h.tcp_addrs()[0],
        &query(4, "big.example.", RecordType::A, None),
    )
    .await;
    assert!(!m.metadata.truncation, "TCP is never truncated");
    assert_eq!(a_records(&m).len(), 60);

    assert_eq!(h.metrics().truncated, 2);
    h.shutdown().await;
}

#[tokio::test]
async fn tcp_pipelines_100_queries_on_one_connection() {
    let upstream = Arc::new(TableUpstream::new());
    let opts = StubOptions {
        max_in_flight_per_tcp_connection: 8,
        ..loopback_opts()
    };
    let h = start(opts, upstream.clone()).await;
    let mut s = TcpStream::connect(h.tcp_addrs()[0]).await.unwrap();

    // All 100 frames in one write: the server must split and answer every one.
    let mut batch = Vec::new();
    for i in 0..100u16 {
        let q = query(1000 + i, &format!("n{i}.example."), RecordType::A, None);
        batch.extend_from_slice(&(q.len() as u16).to_be_bytes());
        batch.extend_from_slice(&q);
    }
    s.write_all(&batch).await.unwrap();

    let mut seen = HashMap::new();
    for _ in 0..100 {
        let m = tcp_recv(&mut s).await;
        let i = m.metadata.id - 1000;
        assert_eq!(m.queries[0].name().to_ascii(), format!("n{i}.example."));
        assert_eq!(a_records(&m), vec![Ipv4Addr::new(10, 0, 0, i as u8)]);
        assert!(
            seen.insert(m.metadata.id, ()).is_none(),
            "one response per ID"
        );
    }
    assert_eq!(seen.len(), 100);
    assert_eq!(upstream.calls(), 100);
    h.shutdown().await;
}

#[tokio::test]
async fn slow_queries_do_not_hold_up_others() {
    // No cache, so that the TCP part reaches the slow upstream again.
    let opts = StubOptions {
        cache: CacheOptions::disabled(),
        ..loopback_opts()
    };
    let h = start(opts, Arc::new(TableUpstream::new())).await;

    // UDP: from one client socket, a slow query then a fast one; the fast one comes back first.
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let udp = h.udp_addrs()[0];
    sock.send_to(&query(1, "slow.example.", RecordType::A, None), udp)
        .await
        .unwrap();
    sock.send_to(&query(2, "www.example.", RecordType::A, None), udp)
        .await
        .unwrap();
    let mut order = Vec::new();
    let mut buf = vec![0u8; 512];
    for _ in 0..2 {
        let (n, _) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        order.push(Message::from_vec(&buf[..n]).unwrap().metadata.id);
    }
    assert_eq!(order, vec![2, 1]);

    // TCP: pipelined on one connection, answered as they complete (out of order).
    let mut s = TcpStream::connect(h.tcp_addrs()[0]).await.unwrap();
    tcp_send(&mut s, &query(3, "slow.example.", RecordType::A, None)).await;
    tcp_send(&mut s, &query(4, "n1.example.", RecordType::A, None)).await;
    let first = tcp_recv(&mut s).await;
    let second = tcp_recv(&mut s).await;
    assert_eq!((first.metadata.id, second.metadata.id), (4, 3));
    assert_eq!(a_records(&second), vec![Ipv4Addr::new(192, 0, 2, 99)]);
    h.shutdown().await;
}

#[tokio::test]
async fn tcp_in_flight_per_connection_is_capped() {
    let upstream = Arc::new(StallUpstream::default());
    let opts = StubOptions {
        query_timeout: Duration::from_millis(800),
        max_in_flight_per_tcp_connection: 2,
        ..loopback_opts()
    };
    let h = start(opts, upstream.clone()).await;
    let mut s = TcpStream::connect(h.tcp_addrs()[0]).await.unwrap();
    for id in 0..3 {
        let name = format!("n{id}.example.");
        tcp_send(&mut s, &query(id, &name, RecordType::A, None)).await;
    }
    let deadline = Instant::now() + WAIT;
    while upstream.calls.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        upstream.calls.load(Ordering::SeqCst),
        2,
        "third query waits for a free slot"
    );
    let mut ids = Vec::new();
    for _ in 0..3 {
        let m = tcp_recv(&mut s).await;
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        ids.push(m.metadata.id);
    }
    ids.sort_unstable();
    assert_eq!(ids, vec![0, 1, 2]);
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 3);
    h.shutdown().await;
}

#[tokio::test]
async fn garbage_does_not_stop_service_for_others() {
    let upstream = Arc::new(TableUpstream::new());
    let h = start(loopback_opts(), upstream.clone()).await;
    let udp = h.udp_addrs()[0];

    // Too short to have a header: dropped. Send from a separate socket, then prove the
    // server is still serving.
    let junk = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    junk.send_to(&[0xde, 0xad, 0xbe], udp).await.unwrap();
    // A header claiming a question that is not there: FORMERR with the same ID.
    let m = udp_query(
        udp,
        &[0xAB, 0xCD, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0xFF],
    )
    .await;
    assert_eq!(m.metadata.id, 0xABCD);
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    // Random bytes after a plausible header.
    let mut noise = vec![0x00, 0x42, 0x01, 0x00, 0x00, 0x01, 0x00, 0x05, 0, 0, 0, 0];
    noise.extend((0..200u32).map(|i| (i.wrapping_mul(37) % 251) as u8));
    let m = udp_query(udp, &noise).await;
    assert_eq!(m.metadata.id, 0x42);
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    // Opcode NOTIFY: NOTIMP.
    let mut notify = query(0x55, "www.example.", RecordType::SOA, None);
    notify[2] = (notify[2] & 0x87) | (4 << 3);
    let m = udp_query(udp, &notify).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NotImp);

    let m = udp_query(udp, &query(7, "www.example.", RecordType::A, None)).await;
    assert_eq!(m.metadata.id, 7);
    assert_eq!(a_records(&m), vec![Ipv4Addr::new(192, 0, 2, 1)]);

    // Over TCP: a garbage frame is answered FORMERR and the same connection keeps working.
    let mut s = TcpStream::connect(h.tcp_addrs()[0]).await.unwrap();
    tcp_send(
        &mut s,
        &[0x00, 0x09, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x3F],
    )
    .await;
    let m = tcp_recv(&mut s).await;
    assert_eq!(
        (m.metadata.id, m.metadata.response_code),
        (9, ResponseCode::FormErr)
    );
    tcp_send(&mut s, &query(10, "www.example.", RecordType::A, None)).await;
    let m = tcp_recv(&mut s).await;
    assert_eq!(
        (m.metadata.id, m.metadata.response_code),
        (10, ResponseCode::NoError)
    );

    let snap = h.metrics();
    assert_eq!(snap.dropped, 1);
    assert_eq!(snap.formerr, 3);
    assert_eq!(snap.notimp, 1);
    h.shutdown().await;
}

#[tokio::test]
async fn stalled_upstream_gets_servfail_within_the_timeout() {
    let timeout = Duration::from_millis(300);
    let opts = StubOptions {
        query_timeout: timeout,
        ..loopback_opts()
    };
    let h = start(opts, Arc::new(StallUpstream::default())).await;

    let started = Instant::now();
    let m = udp_query(
        h.udp_addrs()[0],
        &query(0x77, "www.example.", RecordType::A, Some(1232)),
    )
    .await;
    let elapsed = started.elapsed();
    assert_eq!(m.metadata.id, 0x77);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(m.queries.len(), 1);
    assert!(m.edns.is_some());
    assert!(
        elapsed >= timeout,
        "answered after {elapsed:?}, before the timeout"
    );
    assert!(
        elapsed < timeout + Duration::from_secs(2),
        "took {elapsed:?}"
    );

    let m = tcp_query(
        h.tcp_addrs()[0],
        &query(0x78, "www.example.", RecordType::A, None),
    )
    .await;
    assert_eq!(
        (m.metadata.id, m.metadata.response_code),
        (0x78, ResponseCode::ServFail)
    );

    let snap = h.metrics();
    assert_eq!(snap.upstream_timeouts, 2);
    assert_eq!(snap.servfail, 2);
    assert_eq!(h.cache_len(), 0, "SERVFAIL is not cached");
    h.shutdown().await;
}

#[tokio::test]
async fn shutdown_still_answers_queries_in_flight() {
    let opts = StubOptions {
        query_timeout: Duration::from_millis(300),
        ..loopback_opts()
    };
    let h = start(opts, Arc::new(StallUpstream::default())).await;
    let udp = h.udp_addrs()[0];
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    sock.send_to(&query(5, "www.example.", RecordType::A, None), udp)
        .await
        .unwrap();
    // Wait until the server has taken the query in, then stop it.
    let deadline = Instant::now() + WAIT;
    while h.metrics().queries == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::timeout(WAIT, h.shutdown())
        .await
        .expect("shutdown completes");
    let mut buf = vec![0u8; 512];
    let (n, _) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(
        (m.metadata.id, m.metadata.response_code),
        (5, ResponseCode::ServFail)
    );
    // The port is released.
    assert!(UdpSocket::bind(udp).await.is_ok());
}

#[tokio::test]
async fn idle_tcp_connection_is_closed() {
    let opts = StubOptions {
        tcp_idle_timeout: Duration::from_millis(200),
        ..loopback_opts()
    };
    let h = start(opts, Arc::new(TableUpstream::new())).await;
    let mut s = TcpStream::connect(h.tcp_addrs()[0]).await.unwrap();
    tcp_send(&mut s, &query(1, "www.example.", RecordType::A, None)).await;
    assert_eq!(tcp_recv(&mut s).await.metadata.id, 1);
    let idle_from = Instant::now();
    assert!(closed_by_peer(&mut s).await, "idle connection closed");
    assert!(idle_from.elapsed() >= Duration::from_millis(150));

    // A partial frame does not keep a connection alive either.
    let mut s = TcpStream::connect(h.tcp_addrs()[0]).await.unwrap();
    s.write_all(&[0x00, 0x20, 0x00]).await.unwrap();
    assert!(closed_by_peer(&mut s).await, "stalled partial frame closed");
    h.shutdown().await;
}

#[tokio::test]
async fn tcp_connection_cap_is_enforced() {
    let opts = StubOptions {
        max_tcp_connections: 2,
        ..loopback_opts()
    };
    let h = start(opts, Arc::new(TableUpstream::new())).await;
    let addr = h.tcp_addrs()[0];
    let mut first = TcpStream::connect(addr).await.unwrap();
    let mut second = TcpStream::connect(addr).await.unwrap();
    for (i, s) in [&mut first, &mut second].into_iter().enumerate() {
        tcp_send(s, &query(i as u16, "www.example.", RecordType::A, None)).await;
        assert_eq!(tcp_recv(s).await.metadata.id, i as u16);
    }
    let mut third = TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_by_peer(&mut third).await,
        "connection over the cap closed"
    );
    assert_eq!(h.metrics().tcp_connections_refused, 1);

    // The existing connections still work, and closing one frees a place.
    tcp_send(&mut first, &query(20, "www.example.", RecordType::A, None)).await;
    assert_eq!(tcp_recv(&mut first).await.metadata.id, 20);
    drop(second);
    let deadline = Instant::now() + WAIT;
    let answered = loop {
        let mut s = TcpStream::connect(addr).await.unwrap();
        tcp_send(&mut s, &query(21, "www.example.", RecordType::A, None)).await;
        let mut len = [0u8; 2];
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(500), s.read_exact(&mut len)).await
        {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(answered, "a place freed by a closed connection is reused");
    h.shutdown().await;
}

#[tokio::test]
async fn cache_hit_avoids_the_upstream() {
    let upstream = Arc::new(TableUpstream::new());
    let h = start(loopback_opts(), upstream.clone()).await;
    let udp = h.udp_addrs()[0];

    let m1 = udp_query(udp, &query(100, "www.example.", RecordType::A, None)).await;
    let m2 = udp_query(udp, &query(200, "WWW.EXAMPLE.", RecordType::A, None)).await;
    let m3 = tcp_query(
        h.tcp_addrs()[0],
        &query(300, "www.Example.", RecordType::A, None),
    )
    .await;
    assert_eq!(upstream.calls(), 1, "second and third from the cache");
    assert_eq!(m2.metadata.id, 200);
    assert_eq!(m3.metadata.id, 300);
    assert_eq!(
        m2.queries[0].name().to_ascii(),
        "WWW.EXAMPLE.",
        "client's case echoed"
    );
    assert_eq!(a_records(&m1), a_records(&m2));
    assert!(m2.answers[0].ttl <= 300 && m2.answers[0].ttl >= 298);

    // Negative answers are cached too; a different type is a different key.
    udp_query(udp, &query(1, "nx.example.", RecordType::A, None)).await;
    let m = udp_query(udp, &query(2, "nx.example.", RecordType::A, None)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(upstream.calls(), 2);
    udp_query(udp, &query(3, "www.example.", RecordType::AAAA, None)).await;
    assert_eq!(upstream.calls(), 3);

    let snap = h.metrics();
    assert_eq!(snap.cache_hits, 3);
    assert_eq!(snap.cache_misses, 3);
    h.shutdown().await;
}

#[tokio::test]
async fn disabled_cache_asks_the_upstream_every_time() {
    let upstream = Arc::new(TableUpstream::new());
    let opts = StubOptions {
        cache: CacheOptions::disabled(),
        ..loopback_opts()
    };
    let h = start(opts, upstream.clone()).await;
    for id in 0..3 {
        let m = udp_query(
            h.udp_addrs()[0],
            &query(id, "www.example.", RecordType::A, None),
        )
        .await;
        assert_eq!(m.metadata.id, id);
    }
    assert_eq!(upstream.calls(), 3);
    assert_eq!(h.metrics().cache_hits, 0);
    assert_eq!(h.cache_len(), 0);
    h.shutdown().await;
}

#[tokio::test]
async fn ipv6_loopback_is_served_when_available() {
    let opts = StubOptions {
        listen: vec!["[::1]:0".parse().unwrap()],
        ..StubOptions::default()
    };
    let stub = match stub::bind(opts).await {
        Ok(s) => s,
        // A machine without ::1 cannot run this test; the error must then name the address.
        Err(e) => {
            assert!(e.to_string().contains("[::1]"), "{e}");
            return;
        }
    };
    let h = stub.start(Arc::new(TableUpstream::new()));
    let server = h.udp_addrs()[0];
    let sock = UdpSocket::bind("[::1]:0").await.unwrap();
    sock.send_to(&query(6, "www.example.", RecordType::A, None), server)
        .await
        .unwrap();
    let mut buf = vec![0u8; 512];
    let (n, _) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Message::from_vec(&buf[..n]).unwrap().metadata.id, 6);
    let m = tcp_query(
        h.tcp_addrs()[0],
        &query(7, "www.example.", RecordType::A, None),
    )
    .await;
    assert_eq!(m.metadata.id, 7);
    h.shutdown().await;
}

fn assert_explains_privilege(e: &StubError) {
    let text = e.to_string();
    assert!(matches!(e, StubError::BindPermissionDenied { .. }), "{e:?}");
    assert!(text.contains("root"), "{text}");
    assert!(text.contains("setcap cap_net_bind_service=+ep "), "{text}");
    assert!(text.contains("--listen"), "{text}");
}

#[tokio::test]
async fn privileged_port_without_privilege_explains_the_fix() {
    // Whatever this process may do, the mapping of EACCES must explain the fix.
    let addr: SocketAddr = "127.0.0.1:53".parse().unwrap();
    let e = StubError::from_bind(
        addr,
        stub::Protocol::Udp,
        std::io::Error::from(std::io::ErrorKind::PermissionDenied),
    );
    assert_explains_privilege(&e);
    assert!(e.to_string().contains("127.0.0.1:53"));

    // And a real bind of a privileged port, when this process lacks the privilege.
    let opts = StubOptions {
        listen: vec!["127.0.0.1:1".parse().unwrap()],
        ..StubOptions::default()
    };
    match stub::bind(opts).await {
        Ok(stub) => {
            // Running privileged (root or CAP_NET_BIND_SERVICE, or a lowered
            // ip_unprivileged_port_start): the real refusal cannot happen here. Release.
            drop(stub);
        }
        Err(e @ StubError::BindPermissionDenied { .. }) => assert_explains_privilege(&e),
        Err(StubError::BindAddressInUse { .. }) => {}
        Err(other) => panic!("unexpected bind error: {other}"),
    }
}

/// Bursts of cached queries from several clients at once (so that the listener reads and
/// answers them in batches): every query gets exactly one answer, sent to the socket that
/// asked, with its own ID, its question's letter case and the right record, and none of
/// them reaches the upstream again.
#[tokio::test]
async fn udp_bursts_of_cache_hits_are_answered_each_to_its_sender() {
    let upstream = Arc::new(TableUpstream::new());
    let h = start(loopback_opts(), Arc::clone(&upstream) as Arc<dyn Transport>).await;
    let udp = h.udp_addrs()[0];
    for i in 0..50u8 {
        let m = udp_query(
            udp,
            &query(1, &format!("n{i}.example."), RecordType::A, None),
        )
        .await;
        assert_eq!(a_records(&m), vec![Ipv4Addr::new(10, 0, 0, i)]);
    }
    assert_eq!(upstream.calls(), 50);

    const CLIENTS: usize = 4;
    const PER_CLIENT: u16 = 200;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap());
    }
    // Every client sends its whole burst before anyone reads.
    for (c, sock) in clients.iter().enumerate() {
        for n in 0..PER_CLIENT {
            let id = (c as u16) * 1000 + n;
            let i = n % 50;
            // Mixed case (0x20): the answer must echo it.
            let name = if n.is_multiple_of(2) {
                format!("N{i}.Example.")
            } else {
                format!("n{i}.example.")
            };
            sock.send_to(&query(id, &name, RecordType::A, Some(1232)), udp)
                .await
                .unwrap();
        }
    }
    for (c, sock) in clients.iter().enumerate() {
        let mut seen = vec![false; usize::from(PER_CLIENT)];
        let mut buf = vec![0u8; 4096];
        for _ in 0..PER_CLIENT {
            let (len, from) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
                .await
                .expect("every query answered in time")
                .unwrap();
            assert_eq!(from, udp);
            let m = Message::from_vec(&buf[..len]).unwrap();
            let n = m
                .metadata
                .id
                .checked_sub((c as u16) * 1000)
                .expect("an ID this client sent");
            assert!(n < PER_CLIENT, "ID {} is not this client's", m.metadata.id);
            assert!(!seen[usize::from(n)], "ID {} answered twice", m.metadata.id);
            seen[usize::from(n)] = true;
            let i = n % 50;
            let expected_name = if n.is_multiple_of(2) {
                format!("N{i}.Example.")
            } else {
                format!("n{i}.example.")
            };
            assert_eq!(m.queries[0].name().to_ascii(), expected_name);
            assert_eq!(a_records(&m), vec![Ipv4Addr::new(10, 0, 0, i as u8)]);
            assert!(m.answers[0].ttl <= 300);
            assert!(m.edns.is_some(), "the client sent EDNS");
        }
    }
    assert_eq!(upstream.calls(), 50, "every burst query was a cache hit");
    let snap = h.metrics();
    assert_eq!(snap.cache_hits, CLIENTS as u64 * u64::from(PER_CLIENT));
    h.shutdown().await;
}

/// A cache hit needs no in-flight slot: with every slot taken by slow upstream queries, a
/// cached name is still answered at once, before them.
#[tokio::test]
async fn udp_cache_hits_do_not_wait_for_in_flight_slots() {
    let opts = StubOptions {
        max_udp_in_flight: 2,
        ..loopback_opts()
    };
    let h = start(opts, Arc::new(TableUpstream::new())).await;
    let udp = h.udp_addrs()[0];
    udp_query(udp, &query(1, "www.example.", RecordType::A, None)).await;

    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    // Two slow misses take both slots (400 ms each), then the cached name.
    for id in [10, 11] {
        sock.send_to(&query(id, "slow.example.", RecordType::A, None), udp)
            .await
            .unwrap();
    }
    // Let the listener take the slow queries first.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let sent = Instant::now();
    sock.send_to(&query(12, "www.example.", RecordType::A, None), udp)
        .await
        .unwrap();
    let mut order = Vec::new();
    let mut buf = vec![0u8; 512];
    for _ in 0..3 {
        let (n, _) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let m = Message::from_vec(&buf[..n]).unwrap();
        if m.metadata.id == 12 {
            assert!(sent.elapsed() < Duration::from_millis(300), "hit waited");
            assert_eq!(a_records(&m), vec![Ipv4Addr::new(192, 0, 2, 1)]);
        }
        order.push(m.metadata.id);
    }
    assert_eq!(order[0], 12, "the hit came first: {order:?}");
    h.shutdown().await;
}
