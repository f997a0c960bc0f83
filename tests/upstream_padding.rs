//! Both transports send the query `upstream::query` prepared: checked, padded with EDNS(0)
//! Padding to 128-byte blocks (RFC 8467) and re-IDed (DoH: ID 0). Observed on the wire by
//! loopback DoT and DoH servers holding a CT-logged certificate from the crate's test PKI,
//! dialed by transports built with the runtime assembly `ctdns serve` uses.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use ctdns::ct::log_list::LogList;
use ctdns::ct::policy::CtPolicy;
use ctdns::pki::{demo_pki, IssuedLeaf, TestPki};
use ctdns::runtime::{self, Trust};
use ctdns::upstream::doh::{DohEndpoint, DohOptions};
use ctdns::upstream::dot::DotOptions;
use ctdns::upstream::Transport;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// EDNS(0) Padding option code (RFC 7830).
const PADDING: u16 = 12;

/// What a server received, one entry per DNS query.
type Seen = Arc<Mutex<Vec<Vec<u8>>>>;

/// Aborts the server task when the test ends, however it ends.
struct Stop(JoinHandle<()>);

impl Drop for Stop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn trust(pki: &TestPki) -> Trust {
    let list = LogList::from_json(pki.log_list_json(pki.now()).unwrap().as_bytes()).unwrap();
    let roots = ctdns::tls::roots::anchors_from_der(&pki.trust_anchors(), "test").unwrap();
    Trust::from_parts(roots, list, CtPolicy::chrome())
}

fn server_config(leaf: &IssuedLeaf, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(ctdns::provider::default_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(leaf.chain.clone(), leaf.key_der())
        .unwrap();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

/// The query echoed back as its own answer (QR set): the same question, the same OPT.
fn echo(query: &[u8]) -> Vec<u8> {
    let mut response = query.to_vec();
    if let Some(flags) = response.get_mut(2) {
        *flags |= 0x80;
    }
    response
}

/// A DoT server answering every query on every connection by echoing it.
async fn dot_server(leaf: &IssuedLeaf) -> (SocketAddr, Seen, Stop) {
    let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(server_config(leaf, &[]));
    let seen = Seen::default();
    let recorded = Arc::clone(&seen);
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            loop {
                let mut len = [0u8; 2];
                if tls.read_exact(&mut len).await.is_err() {
                    break;
                }
                let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if tls.read_exact(&mut query).await.is_err() {
                    break;
                }
                recorded.lock().unwrap().push(query.clone());
                let response = echo(&query);
                let mut frame = (response.len() as u16).to_be_bytes().to_vec();
                frame.extend_from_slice(&response);
                if tls.write_all(&frame).await.is_err() {
                    break;
                }
            }
        }
    });
    (addr, seen, Stop(task))
}

/// A DoH (HTTP/2, POST) server answering every query by echoing it.
async fn doh_server(leaf: &IssuedLeaf) -> (SocketAddr, Seen, Stop) {
    let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(server_config(leaf, &[b"h2"]));
    let seen = Seen::default();
    let recorded = Arc::clone(&seen);
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let recorded = Arc::clone(&recorded);
            let service = service_fn(move |req: Request<Incoming>| {
                let recorded = Arc::clone(&recorded);
                async move {
                    let body = req.into_body().collect().await?.to_bytes();
                    recorded.lock().unwrap().push(body.to_vec());
                    Ok::<_, hyper::Error>(
                        Response::builder()
                            .header(http::header::CONTENT_TYPE, "application/dns-message")
                            .body(Full::new(Bytes::from(echo(&body))))
                            .unwrap(),
                    )
                }
            });
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        }
    });
    (addr, seen, Stop(task))
}

fn query(id: u16, name: &str) -> Vec<u8> {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_str(name).unwrap(), RecordType::A));
    msg.to_vec().unwrap()
}

/// The length of the padding option of `wire`'s OPT record, if it has one.
fn padding_len(wire: &[u8]) -> Option<usize> {
    let msg = Message::from_vec(wire).unwrap();
    let edns = msg.edns.as_ref()?;
    edns.options().as_ref().iter().find_map(|(code, opt)| {
        (u16::from(*code) == PADDING).then(|| match opt {
            hickory_proto::rr::rdata::opt::EdnsOption::Unknown(_, data) => data.len(),
            other => panic!("padding decoded as {other:?}"),
        })
    })
}

#[tokio::test]
async fn dot_and_doh_send_the_same_padded_query() {
    let (pki, leaf) = demo_pki(LOOPBACK).unwrap();
    let trust = trust(&pki);
    let (dot_addr, dot_seen, _dot) = dot_server(&leaf).await;
    let (doh_addr, doh_seen, _doh) = doh_server(&leaf).await;
    let dot = runtime::dot_transport(
        dot_addr,
        trust.verifier("dot", Vec::new(), None),
        // The RFC 7828 keepalive option is DoT's own (tests/idle_keepalive.rs): off here, so
        // that the rest of the preparation can be compared byte for byte.
        DotOptions {
            keepalive: false,
            ..DotOptions::default()
        },
    )
    .unwrap();
    let doh = runtime::doh_transport(
        DohEndpoint::ip(doh_addr, "/dns-query"),
        trust.verifier("doh", Vec::new(), None),
        DohOptions::default(),
    )
    .unwrap();

    // A short name (one block) and a long one (116 bytes: more than one block).
    let long = format!("{}.{}.test.", "x".repeat(60), "y".repeat(48));
    let names = ["a.example.test.", long.as_str()];
    for (i, name) in names.iter().enumerate() {
        let id = 0x4240 + i as u16;
        let q = query(id, name);
        for answer in [dot.query(&q).await.unwrap(), doh.query(&q).await.unwrap()] {
            let msg = Message::from_vec(&answer).unwrap();
            assert_eq!(msg.metadata.id, id, "the client's ID is restored");
            assert!(msg.edns.is_none(), "the OPT added for padding is stripped");
            assert_eq!(msg.queries.len(), 1);
        }
    }

    let dot_seen = dot_seen.lock().unwrap().clone();
    let doh_seen = doh_seen.lock().unwrap().clone();
    assert_eq!(dot_seen.len(), names.len());
    assert_eq!(doh_seen.len(), names.len());
    for (sent_dot, sent_doh) in dot_seen.iter().zip(&doh_seen) {
        for sent in [sent_dot, sent_doh] {
            assert_eq!(sent.len() % 128, 0, "a {}-byte query left", sent.len());
            assert!(padding_len(sent).is_some(), "no padding option");
        }
        assert_eq!(&sent_doh[..2], &[0, 0], "DoH sends ID 0 (RFC 8484 §4.1)");
        assert_eq!(sent_dot[2..], sent_doh[2..], "one preparation for both");
    }
    assert_eq!(dot_seen[0].len(), 128);
    assert_eq!(dot_seen[1].len(), 256, "the long name crosses a block");
}
