//! A small in-process DNS-over-TLS server for tests, benchmarks and `ctdns demo`.
//!
//! **Not a production server.** It answers A and AAAA queries from a fixed table, one query at
//! a time per connection, and exists to be the far end of a real TLS connection whose
//! certificate ctdns has to judge. It counts what matters for that judgement: completed TLS
//! handshakes and every application (DNS) byte received after one, so a test can show that
//! a refused upstream never received a single DNS byte.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ctdns::demo::dot_server::{AnswerTable, DotTestServer};
//!
//! let (_pki, leaf) = ctdns::pki::demo_pki("127.0.0.1".parse()?)?;
//! let mut answers = AnswerTable::new();
//! answers.insert("bank.example.", "192.0.2.80".parse()?)?;
//! let server =
//!     DotTestServer::start("127.0.0.1:0".parse()?, leaf.chain.clone(), leaf.key_der(), answers)
//!         .await?;
//! // ... point a DoT client at server.addr() ...
//! let stats = server.stats();
//! server.shutdown().await;
//! # let _ = stats; Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::pki::IssuedLeaf;

/// TTL of every answer record.
pub const ANSWER_TTL: u32 = 300;

/// Why the test server could not start, or a table entry was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DotServerError {
    /// rustls refused the certificate chain or key (e.g. the key does not match the leaf).
    #[error("DoT test server: TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The listening socket could not be bound.
    #[error("DoT test server: bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A name given to [`AnswerTable::insert`] is not a DNS name.
    #[error("DoT test server: `{name}` is not a DNS name")]
    BadName {
        /// The name as given.
        name: String,
    },
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
    pub fn insert(&mut self, name: &str, ip: IpAddr) -> Result<(), DotServerError> {
        let key = table_key(name).ok_or_else(|| DotServerError::BadName {
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

/// A snapshot of the server's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DotServerStats {
    /// TCP connections accepted.
    pub tcp_accepted: u64,
    /// TLS handshakes completed (the client accepted the certificate and finished).
    pub handshakes_completed: u64,
    /// TLS handshakes that failed (e.g. the client refused the certificate and aborted).
    pub handshakes_failed: u64,
    /// Application bytes (DNS messages with their length prefixes) received after completed
    /// handshakes.
    pub dns_bytes_received: u64,
    /// Complete DNS messages received.
    pub queries_received: u64,
    /// Responses sent (answers, NXDOMAIN and error responses alike).
    pub queries_answered: u64,
}

#[derive(Debug, Default)]
struct Counters {
    tcp_accepted: AtomicU64,
    handshakes_completed: AtomicU64,
    handshakes_failed: AtomicU64,
    dns_bytes_received: AtomicU64,
    queries_received: AtomicU64,
    queries_answered: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::SeqCst);
    }

    fn snapshot(&self) -> DotServerStats {
        let get = |c: &AtomicU64| c.load(Ordering::SeqCst);
        DotServerStats {
            tcp_accepted: get(&self.tcp_accepted),
            handshakes_completed: get(&self.handshakes_completed),
            handshakes_failed: get(&self.handshakes_failed),
            dns_bytes_received: get(&self.dns_bytes_received),
            queries_received: get(&self.queries_received),
            queries_answered: get(&self.queries_answered),
        }
    }
}

/// A running test DoT server. [`DotTestServer::shutdown`] stops it and waits; dropping it
/// stops it without waiting.
#[derive(Debug)]
pub struct DotTestServer {
    addr: SocketAddr,
    counters: Arc<Counters>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl DotTestServer {
    /// Listen on `addr` (port 0 picks a free port) and serve DoT with `chain` (leaf first)
    /// and `key`, answering from `answers`. Must be called inside a Tokio runtime.
    pub async fn start(
        addr: SocketAddr,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        answers: AnswerTable,
    ) -> Result<Self, DotServerError> {
        Self::start_with_ocsp(addr, chain, key, Vec::new(), answers).await
    }

    /// As [`DotTestServer::start`], also stapling the DER OCSP response `ocsp` (ignored when
    /// empty) to every handshake.
    pub async fn start_with_ocsp(
        addr: SocketAddr,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        ocsp: Vec<u8>,
        answers: AnswerTable,
    ) -> Result<Self, DotServerError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert_with_ocsp(chain, key, ocsp)?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| DotServerError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| DotServerError::Bind { addr, source })?;
        let counters = Arc::new(Counters::default());
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(
            listener,
            acceptor,
            Arc::new(answers),
            Arc::clone(&counters),
            stop_rx,
        ));
        Ok(Self {
            addr: bound,
            counters,
            stop,
            task: Some(task),
        })
    }

    /// Serve `leaf` (its chain, key and stapled OCSP response, if any) on `addr`.
    pub async fn start_for_leaf(
        addr: SocketAddr,
        leaf: &IssuedLeaf,
        answers: AnswerTable,
    ) -> Result<Self, DotServerError> {
        Self::start_with_ocsp(
            addr,
            leaf.chain.clone(),
            leaf.key_der(),
            leaf.ocsp_response.clone().unwrap_or_default(),
            answers,
        )
        .await
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The current counters.
    pub fn stats(&self) -> DotServerStats {
        self.counters.snapshot()
    }

    /// Stop accepting, close every connection, and return when all tasks have ended.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for DotTestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    answers: Arc<AnswerTable>,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    // Dropping (or shutting down) the set aborts every connection task.
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|&s| s) => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, _)) => {
                Counters::bump(&counters.tcp_accepted, 1);
                connections.spawn(serve_connection(
                    tcp,
                    acceptor.clone(),
                    Arc::clone(&answers),
                    Arc::clone(&counters),
                ));
            }
            // Out of descriptors or similar: do not spin.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}

async fn serve_connection(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    answers: Arc<AnswerTable>,
    counters: Arc<Counters>,
) {
    let mut tls = match acceptor.accept(tcp).await {
        Ok(tls) => tls,
        Err(_) => {
            Counters::bump(&counters.handshakes_failed, 1);
            return;
        }
    };
    Counters::bump(&counters.handshakes_completed, 1);
    let mut frames = FrameReader::default();
    loop {
        let Some(query) = frames.next(&mut tls, &counters).await else {
            return;
        };
        Counters::bump(&counters.queries_received, 1);
        let Some(response) = respond(&query, &answers) else {
            continue;
        };
        let Ok(len) = u16::try_from(response.len()) else {
            continue;
        };
        let mut frame = Vec::with_capacity(response.len() + 2);
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(&response);
        if tls.write_all(&frame).await.is_err() || tls.flush().await.is_err() {
            return;
        }
        Counters::bump(&counters.queries_answered, 1);
    }
}

/// Reads length-prefixed DNS messages, counting every byte as it arrives.
#[derive(Default)]
struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    /// The next complete message, or `None` when the stream ends or fails.
    async fn next<R: AsyncRead + Unpin>(
        &mut self,
        stream: &mut R,
        counters: &Counters,
    ) -> Option<Vec<u8>> {
        loop {
            if let Some(msg) = self.take_frame() {
                return Some(msg);
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            Counters::bump(&counters.dns_bytes_received, n as u64);
            self.buf.extend_from_slice(chunk.get(..n)?);
        }
    }

    fn take_frame(&mut self) -> Option<Vec<u8>> {
        let len_bytes: [u8; 2] = self.buf.get(..2)?.try_into().ok()?;
        let len = usize::from(u16::from_be_bytes(len_bytes));
        let msg = self.buf.get(2..2 + len)?.to_vec();
        self.buf.drain(..2 + len);
        Some(msg)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use rustls::pki_types::ServerName;
    use tokio_rustls::TlsConnector;

    fn query(name: &str, qtype: RecordType, id: u16) -> Vec<u8> {
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
            Err(DotServerError::BadName { .. })
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
    fn frames_split_across_reads_are_reassembled() {
        let mut f = FrameReader::default();
        f.buf.extend_from_slice(&[0, 3, 1, 2]);
        assert!(f.take_frame().is_none());
        f.buf.extend_from_slice(&[3, 0, 1, 9]);
        assert_eq!(f.take_frame(), Some(vec![1, 2, 3]));
        assert_eq!(f.take_frame(), Some(vec![9]));
        assert!(f.take_frame().is_none());
        assert!(f.buf.is_empty());
    }

    #[tokio::test]
    async fn serves_dot_and_counts_bytes_then_shuts_down() {
        let (pki, leaf) = crate::pki::demo_pki("127.0.0.1".parse().unwrap()).unwrap();
        let server = DotTestServer::start_for_leaf("127.0.0.1:0".parse().unwrap(), &leaf, table())
            .await
            .unwrap();
        let addr = server.addr();
        assert_ne!(addr.port(), 0);

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(pki.root_store(false).unwrap())
            .with_no_client_auth();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = TlsConnector::from(Arc::new(client))
            .connect(ServerName::IpAddress(addr.ip().into()), tcp)
            .await
            .unwrap();
        let q = query("bank.example.", RecordType::A, 42);
        let mut frame = (q.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(&q);
        tls.write_all(&frame).await.unwrap();
        let mut len = [0u8; 2];
        tls.read_exact(&mut len).await.unwrap();
        let mut resp = vec![0u8; usize::from(u16::from_be_bytes(len))];
        tls.read_exact(&mut resp).await.unwrap();
        let r = Message::from_vec(&resp).unwrap();
        assert_eq!(r.metadata.id, 42);
        assert_eq!(r.answers.len(), 1);

        let stats = server.stats();
        assert_eq!(stats.tcp_accepted, 1);
        assert_eq!(stats.handshakes_completed, 1);
        assert_eq!(stats.handshakes_failed, 0);
        assert_eq!(stats.dns_bytes_received, frame.len() as u64);
        assert_eq!(stats.queries_received, 1);
        assert_eq!(stats.queries_answered, 1);

        server.shutdown().await;
        // The connection was closed by the server: the next read sees EOF or an error.
        let mut buf = [0u8; 1];
        let closed = matches!(tls.read(&mut buf).await, Ok(0) | Err(_));
        assert!(closed);
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn a_key_that_does_not_match_the_leaf_is_refused() {
        let (pki, leaf) = crate::pki::demo_pki("127.0.0.1".parse().unwrap()).unwrap();
        let other = pki
            .issue_leaf(&pki.leaf_spec("127.0.0.1".parse().unwrap()))
            .unwrap();
        let err = DotTestServer::start(
            "127.0.0.1:0".parse().unwrap(),
            leaf.chain.clone(),
            other.key_der(),
            AnswerTable::new(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, DotServerError::Tls(_)));
    }
}
