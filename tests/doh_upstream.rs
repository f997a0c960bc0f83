//! DNS-over-HTTPS transport against an in-process HTTP/2 DoH server on loopback.

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ctdns::upstream::doh::{DohEndpoint, DohError, DohMethod, DohOptions, DohTransport};
use ctdns::upstream::{Transport, UpstreamError};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use ctdns::pki::PkiOptions;
use ctdns::testkit::server::{DohKnobs as Knobs, BIG_BODY};
use ctdns::testkit::{AnswerTable, Answers, Counters, Protocol, ServerCert, TestServer};

/// The test PKI (`ctdns::pki`) as these tests use it: leaves from its intermediate, and a
/// client trusting its root (ring provider, resumption disabled, ALPN `h2`).
struct TestPki(ctdns::pki::TestPki);

impl TestPki {
    /// A fresh PKI (`_cn` names it in the test only: every PKI has its own root).
    fn new(_cn: &str) -> Self {
        TestPki(ctdns::pki::TestPki::generate(&PkiOptions::default()).unwrap())
    }

    /// A leaf for `sans` (IP addresses or DNS names; none: IP 127.0.0.1).
    fn cert(&self, sans: &[&str]) -> ServerCert {
        let mut spec = self.0.leaf_spec(IpAddr::V4(Ipv4Addr::LOCALHOST));
        if !sans.is_empty() {
            spec.ip_sans = sans.iter().filter_map(|s| s.parse().ok()).collect();
            spec.dns_sans = sans
                .iter()
                .filter(|s| s.parse::<IpAddr>().is_err())
                .map(|s| s.to_string())
                .collect();
        }
        let leaf = self.0.issue_leaf(&spec).unwrap();
        ServerCert::new(leaf.chain.clone(), leaf.key_der())
    }

    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut config =
            rustls::ClientConfig::builder_with_provider(ctdns::provider::default_provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(self.0.root_store(false).unwrap())
                .with_no_client_auth();
        config.resumption = rustls::client::Resumption::disabled();
        config.alpn_protocols = vec![b"h2".to_vec()];
        Arc::new(config)
    }
}

/// The answer table: `a.test.` 192.0.2.1, `b.test.` 192.0.2.2, `qN.test.` 198.51.100.N, and
/// for the trigger names `hold.test.` 192.0.2.99, `ctype.test.` 192.0.2.3, `wrongq.test.` and
/// `other.test.` 192.0.2.4; anything else NXDOMAIN.
fn table() -> AnswerTable {
    let mut t = AnswerTable::new();
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    for (name, ip) in [
        ("a.test.", v4(192, 0, 2, 1)),
        ("b.test.", v4(192, 0, 2, 2)),
        ("hold.test.", v4(192, 0, 2, 99)),
        ("ctype.test.", v4(192, 0, 2, 3)),
        ("wrongq.test.", v4(192, 0, 2, 4)),
        ("other.test.", v4(192, 0, 2, 4)),
    ] {
        t.insert(name, ip).unwrap();
    }
    for n in 0..=u8::MAX {
        t.insert(&format!("q{n}.test."), expected_q(n)).unwrap();
    }
    t
}

/// The address the table gives for `qN.test.`.
fn expected_q(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, n))
}

/// The test kit's DoH server on 127.0.0.1:0 with a leaf for `sans` (none: 127.0.0.1),
/// answering from [`table`], trigger names on.
async fn start_for(pki: &TestPki, sans: &[&str], knobs: Knobs) -> TestServer {
    TestServer::builder(Protocol::Doh, pki.cert(sans))
        .answers(Answers::Table(table()))
        .doh_knobs(Knobs {
            trigger_names: true,
            ..knobs
        })
        .start()
        .await
        .unwrap()
}

/// As [`start_for`] with a leaf for 127.0.0.1.
async fn start(pki: &TestPki, knobs: Knobs) -> TestServer {
    start_for(pki, &[], knobs).await
}

/// Waits (bounded) until `closed` connections have finished.
async fn wait_closed(server: &TestServer, closed: usize) {
    for _ in 0..500 {
        if Counters::get(&server.counters().closed) >= closed {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "server saw {} closed connections, expected {closed}",
        Counters::get(&server.counters().closed)
    );
}

fn query(id: u16, name: &str) -> Vec<u8> {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_str(name).unwrap(), RecordType::A));
    msg.to_vec().unwrap()
}

/// The message ID and the A addresses of a response.
fn parse_answer(wire: &[u8]) -> (u16, ResponseCode, Vec<IpAddr>) {
    let msg = Message::from_vec(wire).unwrap();
    let addrs = msg
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect();
    (msg.metadata.id, msg.metadata.response_code, addrs)
}

fn options() -> DohOptions {
    DohOptions {
        query_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(5),
        ..DohOptions::default()
    }
}

fn transport(server: &TestServer, pki: &TestPki, opts: DohOptions) -> DohTransport {
    DohTransport::new(
        DohEndpoint::ip(server.addr(), "/dns-query"),
        pki.client_config(),
        opts,
    )
}

fn count(c: &std::sync::atomic::AtomicUsize) -> usize {
    Counters::get(c)
}

fn doh_err(err: UpstreamError) -> DohError {
    match err {
        UpstreamError::Doh(e) => e,
        other => panic!("expected a DoH error, got {other:?}"),
    }
}

#[tokio::test]
async fn answers_with_original_ids_restored_and_zero_on_the_wire() {
    let pki = TestPki::new("root");
    let server = start(&pki, Knobs::default()).await;
    let t = transport(&server, &pki, options());

    let cases = [
        (0xBEEF, "a.test.", Some(Ipv4Addr::new(192, 0, 2, 1))),
        (0x0001, "b.test.", Some(Ipv4Addr::new(192, 0, 2, 2))),
        (0xFFFF, "q7.test.", Some(Ipv4Addr::new(198, 51, 100, 7))),
        (0x0000, "A.TeSt.", Some(Ipv4Addr::new(192, 0, 2, 1))),
        (0x4242, "missing.test.", None),
    ];
    for (id, name, want) in cases {
        let resp = t.query(&query(id, name)).await.unwrap();
        let (got_id, rcode, addrs) = parse_answer(&resp);
        assert_eq!(got_id, id, "{name}");
        match want {
            Some(ip) => {
                assert_eq!(rcode, ResponseCode::NoError, "{name}");
                assert_eq!(addrs, vec![IpAddr::V4(ip)], "{name}");
            }
            None => {
                assert_eq!(rcode, ResponseCode::NXDomain, "{name}");
                assert!(addrs.is_empty());
            }
        }
    }
    let c = server.counters();
    assert_eq!(
        count(&c.nonzero_ids),
        0,
        "a query reached the server with ID != 0"
    );
    assert_eq!(count(&c.malformed), 0);
    assert_eq!(count(&c.requests), cases.len());
    assert_eq!(count(&c.posts), cases.len());
    assert_eq!(count(&c.gets), 0);
    assert_eq!(count(&c.handshakes), 1);
}

#[tokio::test]
async fn get_method_works() {
    let pki = TestPki::new("root");
    let server = start(&pki, Knobs::default()).await;
    let t = transport(
        &server,
        &pki,
        DohOptions {
            method: DohMethod::Get,
            ..options()
        },
    );
    for n in 0..5u8 {
        let id = 1000 + u16::from(n);
        let resp = t.query(&query(id, &format!("q{n}.test."))).await.unwrap();
        let (got_id, _, addrs) = parse_answer(&resp);
        assert_eq!(got_id, id);
        assert_eq!(addrs, vec![expected_q(n)]);
    }
    let c = server.counters();
    assert_eq!(count(&c.gets), 5);
    assert_eq!(count(&c.posts), 0);
    assert_eq!(count(&c.nonzero_ids), 0);
    assert_eq!(count(&c.malformed), 0);
}

/// Issue 11 item 12: an endpoint with a host name sends it as SNI and the verifier checks
/// the certificate against it, but the IP SAN is still checked against the dialed address:
/// a server on 127.0.0.1 whose certificate is valid for `doh.test` and 127.0.0.2 is
/// refused after the handshake, before any HTTP/2 request; one valid for `doh.test` and
/// 127.0.0.1 is used.
#[tokio::test]
async fn named_endpoint_still_checks_the_dialed_ip() {
    let pki = TestPki::new("root");
    let named = |addr| DohEndpoint {
        host_name: Some(
            rustls::pki_types::DnsName::try_from("doh.test")
                .unwrap()
                .to_owned(),
        ),
        authority: "doh.test".into(),
        ..DohEndpoint::ip(addr, "/dns-query")
    };
    let wrong = start_for(&pki, &["doh.test", "127.0.0.2"], Knobs::default()).await;
    let t = DohTransport::new(named(wrong.addr()), pki.client_config(), options());
    let err = t.query(&query(1, "a.test.")).await.unwrap_err();
    match doh_err(err) {
        DohError::CertNotForDialedIp { ip } => assert_eq!(ip, wrong.addr().ip()),
        other => panic!("expected CertNotForDialedIp, got {other:?}"),
    }
    assert_eq!(count(&wrong.counters().requests), 0, "no HTTP request sent");

    let right = start_for(&pki, &["doh.test", "127.0.0.1"], Knobs::default()).await;
    let t = DohTransport::new(named(right.addr()), pki.client_config(), options());
    let (_, _, addrs) = parse_answer(&t.query(&query(2, "a.test.")).await.unwrap());
    assert_eq!(addrs, vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))]);
}

/// The length of the EDNS(0) Padding option (code 12) in `wire`, if it has one.
fn padding_option_len(wire: &[u8]) -> Option<usize> {
    let msg = Message::from_vec(wire).unwrap();
    let edns = msg.edns.as_ref()?;
    edns.options().as_ref().iter().find_map(|(code, opt)| {
        (u16::from(*code) == 12).then(|| match opt {
            hickory_proto::rr::rdata::opt::EdnsOption::Unknown(_, data) => data.len(),
            other => panic!("padding decoded as {other:?}"),
        })
    })
}

/// Issue 11 item 9: DoH queries are padded to 128-byte blocks (RFC 8467) as DoT's are, for
/// POST bodies and GET parameters alike, with and without a client OPT record; a client that
/// sent no OPT gets none back.
#[tokio::test]
async fn queries_are_padded_to_128_byte_blocks() {
    let pki = TestPki::new("root");
    let server = start(&pki, Knobs::default()).await;
    // The third name (116 bytes on the wire) makes a query longer than one block.
    let long = format!("{}.{}.test.", "x".repeat(60), "y".repeat(48));
    let names = ["a.test.", "q7.test.", long.as_str()];
    for method in [DohMethod::Post, DohMethod::Get] {
        let t = transport(
            &server,
            &pki,
            DohOptions {
                method,
                ..options()
            },
        );
        for (i, name) in names.iter().enumerate() {
            let id = 40 + i as u16;
            let plain = query(id, name);
            let resp = t.query(&plain).await.unwrap();
            let msg = Message::from_vec(&resp).unwrap();
            assert_eq!(msg.metadata.id, id);
            assert!(msg.edns.is_none(), "the OPT added for padding is stripped");
            let mut with_opt = Message::from_vec(&plain).unwrap();
            with_opt.set_edns(hickory_proto::op::Edns::new());
            t.query(&with_opt.to_vec().unwrap()).await.unwrap();
        }
    }
    let received = server.counters().query_log();
    assert_eq!(received.len(), 2 * 2 * names.len());
    for wire in &received {
        assert_eq!(wire.len() % 128, 0, "a {}-byte query was sent", wire.len());
        let pad = padding_option_len(wire);
        assert!(pad.is_some(), "no padding option in {wire:?}");
        println!(
            "DoH query of {} bytes, {} padding bytes",
            wire.len(),
            pad.unwrap_or(0)
        );
    }
    assert!(
        received.iter().any(|w| w.len() == 256),
        "the long name crosses a block"
    );
    assert_eq!(count(&server.counters().malformed), 0);
}

/// With `padding: false` the query goes out as the client wrote it (ID aside).
#[tokio::test]
async fn padding_can_be_turned_off() {
    let pki = TestPki::new("root");
    let server = start(&pki, Knobs::default()).await;
    let t = transport(
        &server,
        &pki,
        DohOptions {
            padding: false,
            ..options()
        },
    );
    let q = query(5, "a.test.");
    t.query(&q).await.unwrap();
    let received = server.counters().query_log();
    assert_eq!(received.len(), 1);
    assert_eq!(&received[0][2..], &q[2..]);
}

/// Runs `n` concurrent queries for `qI.test.` with ID 0x1000+I and checks every answer.
async fn run_concurrent(t: Arc<DohTransport>, n: u8) {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let t = Arc::clone(&t);
        set.spawn(async move {
            let id = 0x1000 + u16::from(i);
            let resp = t.query(&query(id, &format!("q{i}.test."))).await;
            (i, id, resp)
        });
    }
    let mut answered = 0;
    while let Some(joined) = set.join_next().await {
        let (i, id, resp) = joined.unwrap();
        let resp = resp.unwrap_or_else(|e| panic!("query {i} failed: {e}"));
        let (got_id, _, addrs) = parse_answer(&resp);
        assert_eq!(got_id, id);
        assert_eq!(addrs, vec![expected_q(i)], "answer for q{i}");
        answered += 1;
    }
    assert_eq!(answered, usize::from(n));
}

#[tokio::test]
async fn hundred_concurrent_queries_share_one_tls_connection() {
    let pki = TestPki::new("root");
    // No answer leaves the server until all 100 requests are being handled at once: if
    // the client did not multiplex them, this would never complete.
    let knobs = Knobs {
        barrier: Some(100),
        ..Knobs::default()
    };
    let server = start(&pki, knobs).await;
    let t = Arc::new(transport(&server, &pki, options()));
    run_concurrent(Arc::clone(&t), 100).await;
    let c = server.counters();
    assert_eq!(count(&c.handshakes), 1, "queries were not multiplexed");
    assert_eq!(count(&c.requests), 100);
    assert_eq!(count(&c.nonzero_ids), 0);
}

#[tokio::test]
async fn responses_complete_out_of_order_on_one_connection() {
    let pki = TestPki::new("root");
    let server = start(&pki, Knobs::default()).await;
    let t = Arc::new(transport(&server, &pki, options()));

    let slow = {
        let t = Arc::clone(&t);
        tokio::spawn(async move { t.query(&query(11, "hold.test.")).await })
    };
    server.hold_arrived().await;
    // Sent after the held query, answered before it, on the same connection.
    let fast = t.query(&query(22, "a.test.")).await.unwrap();
    assert_eq!(parse_answer(&fast).0, 22);
    assert!(
        !slow.is_finished(),
        "the held query finished before release"
    );
    server.release();
    let slow = slow.await.unwrap().unwrap();
    let (id, _, addrs) = parse_answer(&slow);
    assert_eq!(id, 11);
    assert_eq!(addrs, vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99))]);
    assert_eq!(count(&server.counters().handshakes), 1);
}

#[tokio::test]
async fn goaway_mid_load_loses_no_query() {
    let pki = TestPki::new("root");
    // The first connection allows 10 concurrent streams, sends GOAWAY at its 10th request
    // and answers nothing before that GOAWAY. So it can never carry all 100 queries: the
    // rest are refused (REFUSED_STREAM), above the GOAWAY's last stream, or still queued
    // in the client when the GOAWAY arrives, and must be carried by a second connection.
    let knobs = Knobs {
        first_max_streams: Some(10),
        goaway_after: Some(10),
        hold_first_until_goaway: true,
        ..Knobs::default()
    };
    let server = start(&pki, knobs).await;
    let t = Arc::new(transport(&server, &pki, options()));
    run_concurrent(Arc::clone(&t), 100).await;
    let c = server.counters();
    let on_first = count(&c.requests_on_first);
    assert!(
        (10..100).contains(&on_first),
        "{on_first} on the first connection"
    );
    // Every request that reached a handler was answered exactly once.
    assert_eq!(count(&c.requests), 100);
    assert_eq!(count(&c.handshakes), 2, "expected exactly one reconnection");
    // The transport keeps working on the new connection.
    let resp = t.query(&query(5, "a.test.")).await.unwrap();
    assert_eq!(parse_answer(&resp).0, 5);
    assert_eq!(count(&c.handshakes), 2);
}

#[tokio::test]
async fn refused_stream_is_retried_once_on_a_fresh_connection() {
    let pki = TestPki::new("root");
    let knobs = Knobs {
        refuse_first: 1,
        ..Knobs::default()
    };
    let server = start(&pki, knobs).await;
    let t = transport(&server, &pki, options());
    let resp = t.query(&query(77, "a.test.")).await.unwrap();
    assert_eq!(parse_answer(&resp).0, 77);
    assert_eq!(count(&server.counters().requests), 2);
    assert_eq!(count(&server.counters().handshakes), 2);
}

#[tokio::test]
async fn refused_twice_is_connection_lost() {
    let pki = TestPki::new("root");
    let knobs = Knobs {
        refuse_first: 2,
        ..Knobs::default()
    };
    let server = start(&pki, knobs).await;
    let t = transport(&server, &pki, options());
    let err = t.query(&query(1, "a.test.")).await.unwrap_err();
    assert!(
        matches!(&err, UpstreamError::ConnectionLost(why) if why.contains("REFUSED_STREAM")),
        "{err:?}"
    );
    // Exactly one retry.
    assert_eq!(count(&server.counters().requests), 2);
    // The next query opens a new connection and succeeds.
    let resp = t.query(&query(2, "a.test.")).await.unwrap();
    assert_eq!(parse_answer(&resp).0, 2);
}

#[tokio::test]
async fn lost_connection_is_retried_once() {
    let pki = TestPki::new("root");
    let knobs = Knobs {
        kill_first_connection: true,
        ..Knobs::default()
    };
    let server = start(&pki, knobs).await;
    let t = transport(&server, &pki, options());
    let resp = t.query(&query(9, "b.test.")).await.unwrap();
    let (id, _, addrs) = parse_answer(&resp);
    assert_eq!(id, 9);
    assert_eq!(addrs, vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))]);
    assert_eq!(count(&server.counters().handshakes), 2);
}

#[tokio::test]
async fn silent_connection_is_detected_by_keepalive_and_query_retried() {
    let pki = TestPki::new("root");
    let knobs = Knobs {
        freeze_first_connection: true,
        ..Knobs::default()
    };
    let server = start(&pki, knobs).await;
    // PINGs every 0.75 s while the query waits, unanswered after 0.75 s more: the
    // frozen connection is dropped well inside the 3 s deadline and the query retried.
    let t = transport(
        &server,
        &pki,
        DohOptions {
            query_timeout: Duration::from_secs(3),
            ..options()
        },
    );
    let resp = t.query(&query(4, "a.test.")).await.unwrap();
    assert_eq!(parse_answer(&resp).0, 4);
    assert_eq!(count(&server.counters().handshakes), 2);
    assert_eq!(count(&server.counters().requests), 2);
}

#[tokio::test]
async fn stream_reset_is_a_typed_error_and_not_retried() {
    let pki = TestPki::new("root");
    let server = start(&pki, Knobs::default()).await;
    let t = transport(&server, &pki, options());
    let err = doh_err(t.query(&query(1, "reset.test.")).await.unwrap_err());
    assert!(
        matches!(err, DohError::StreamReset { code: 0x2 }),
        "{err:?}"
    );
    assert_eq!(count(&server.counters().requests), 1);
    // A reset stream leaves the connection usable.
    t.query(&query(2, "a.test.")).await.unwrap();
    assert_eq!(count(&server.counters().handshakes), 1);
}

#[tokio::test]
async fn http_500_is_a_typed_error() {
    let pki = TestPki::new("root");
    let server = start(&pki, Knobs::default()).await;
    let t = transport(&server, &pki, options());
    let err = doh_err(t.query(&query(1, "e500.test.")).await.unwrap_err());
    assert!(matches!(err, DohError::Status { status: 500 }), "{err:?}");
    assert_eq!(count(&server.counters().requests), 1);
}

#[tokio::test]
async fn wrong_content_type_is_a_typed_error() {
    let pki = TestPki::new("root");
    let server = start(&pki, Knobs::default()).await;
    let t = transport(&server, &pki, options());
    let err = doh_err(t.query(&query(1, "ctype.test.")).await.unwrap_err());
    assert!(
        matches!(&err, DohError::ContentType { content_type: Some(c) } if c == "text/plain"),
        "{err:?}"
    );
}

#[tokio::test]
async fn oversized_responses_are_refused() {
    let pki = TestPki::new("root");
    let server = start(&pki, Knobs::default()).await;
    let t = transport(&server, &pki, options());
    assert!(BIG_BODY > options().max_response_size);
    for name in ["big.test.", "bigstream.test."] {
        let err = doh_err(t.query(&query(1, name)).await.unwrap_err());
        assert!(
            matches!(err, DohError::ResponseTooLarge { limit: 65_535 }),
            "{name}: {err:?}"
        );
    }
    // Refusing a body resets only that stream.
    t.query(&query(2, "a.test.")).await.unwrap();
    assert_eq!(count(&server.counters().handshakes), 1);
}

#[tokio::test]
async fn answer_to_another_question_is_refused() {
    let pki = TestPki::new("root");
    let server = start(&pki, Knobs::default()).await;
    let t = transport(&server, &pki, options());
    let err = doh_err(t.query(&query(1, "wrongq.test.")).await.unwrap_err());
    assert!(matches!(err, DohError::QuestionMismatch), "{err:?}");
}

#[tokio::test]
async fn refused_certificate_means_no_http_at_all() {
    let trusted = TestPki::new("trusted root");
    let other = TestPki::new("untrusted root");
    // The server's certificate chains to a root the client does not trust.
    let server = start(&other, Knobs::default()).await;
    let t = transport(&server, &trusted, options());
    let err = t.query(&query(1, "a.test.")).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Tls { .. }), "{err:?}");
    wait_closed(&server, 1).await;
    let c = server.counters();
    assert_eq!(count(&c.handshake_failures), 1);
    assert_eq!(count(&c.handshakes), 0);
    assert_eq!(count(&c.requests), 0);
    assert_eq!(c.app_bytes.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// Queries waiting while the handshake is refused share that refusal: one handshake for
/// the burst; a query arriving afterwards dials again.
#[tokio::test]
async fn a_burst_waiting_on_a_refused_handshake_shares_it() {
    let trusted = TestPki::new("trusted root");
    let other = TestPki::new("untrusted root");
    let server = start(&other, Knobs::default()).await;
    let t = Arc::new(transport(&server, &trusted, options()));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20u16 {
        let t = Arc::clone(&t);
        set.spawn(async move { t.query(&query(i, "a.test.")).await });
    }
    let mut refused = 0;
    while let Some(joined) = set.join_next().await {
        let err = joined.unwrap().unwrap_err();
        assert!(matches!(err, UpstreamError::Tls { .. }), "{err:?}");
        refused += 1;
    }
    assert_eq!(refused, 20);
    wait_closed(&server, 1).await;
    assert_eq!(
        count(&server.counters().handshake_failures),
        1,
        "one handshake for the burst"
    );

    let err = t.query(&query(21, "a.test.")).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Tls { .. }), "{err:?}");
    wait_closed(&server, 2).await;
    let c = server.counters();
    assert_eq!(count(&c.handshake_failures), 2);
    assert_eq!(count(&c.handshakes), 0);
    assert_eq!(count(&c.requests), 0);
}

#[tokio::test]
async fn server_without_h2_alpn_gets_nothing() {
    let pki = TestPki::new("root");
    let knobs = Knobs {
        no_alpn: true,
        ..Knobs::default()
    };
    let server = start(&pki, knobs).await;
    let t = transport(&server, &pki, options());
    let err = doh_err(t.query(&query(1, "a.test.")).await.unwrap_err());
    assert!(
        matches!(err, DohError::AlpnNotH2 { negotiated: None }),
        "{err:?}"
    );
    wait_closed(&server, 1).await;
    let c = server.counters();
    assert_eq!(count(&c.handshakes), 1, "the handshake itself completes");
    assert_eq!(count(&c.requests), 0);
    assert_eq!(
        c.app_bytes.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "bytes were sent on a connection without h2"
    );
}

#[tokio::test]
async fn alpn_is_forced_to_h2_whatever_the_config_says() {
    let pki = TestPki::new("root");
    let server = start(&pki, Knobs::default()).await;
    let mut config = (*pki.client_config()).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let t = DohTransport::new(
        DohEndpoint::ip(server.addr(), "/dns-query"),
        Arc::new(config),
        options(),
    );
    let resp = t.query(&query(3, "a.test.")).await.unwrap();
    assert_eq!(parse_answer(&resp).0, 3);
}

#[tokio::test]
async fn query_past_its_deadline_times_out() {
    let pki = TestPki::new("root");
    let server = start(&pki, Knobs::default()).await;
    let t = transport(
        &server,
        &pki,
        DohOptions {
            query_timeout: Duration::from_millis(200),
            ..options()
        },
    );
    let err = t.query(&query(1, "hold.test.")).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Timeout), "{err:?}");
}

#[tokio::test]
async fn idle_connection_is_closed_and_replaced() {
    let pki = TestPki::new("root");
    let server = start(&pki, Knobs::default()).await;
    let t = transport(
        &server,
        &pki,
        DohOptions {
            idle_timeout: Duration::from_millis(100),
            ..options()
        },
    );
    t.query(&query(1, "a.test.")).await.unwrap();
    wait_closed(&server, 1).await;
    t.query(&query(2, "a.test.")).await.unwrap();
    assert_eq!(count(&server.counters().handshakes), 2);
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    // Bind then drop a listener to get a loopback port with nothing on it.
    let port = {
        let l = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        l.local_addr().unwrap().port()
    };
    let pki = TestPki::new("root");
    let t = DohTransport::new(
        DohEndpoint::ip((Ipv4Addr::LOCALHOST, port).into(), "/dns-query"),
        pki.client_config(),
        options(),
    );
    let err = t.query(&query(1, "a.test.")).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Connect { .. }), "{err:?}");
}
