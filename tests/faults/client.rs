//! A minimal DNS client for driving the stub over UDP and TCP, and a classifier of the
//! responses it gets.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::expected_ip;

/// What a client query came back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// NOERROR with exactly the expected A record.
    Correct,
    /// SERVFAIL with the query's ID and question.
    ServFail,
    /// Any other response (described).
    Wrong(String),
    /// No response within the client's wait.
    NoResponse,
}

/// A recursive `A` query for `name`, with an EDNS(0) OPT advertising `edns` if given.
pub fn query(id: u16, name: &str, edns: Option<u16>) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        Name::from_ascii(name).expect("query name"),
        RecordType::A,
    ));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m.to_vec().expect("query encodes")
}

/// The A records of a response.
pub fn a_records(m: &Message) -> Vec<Ipv4Addr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

/// Classifies the response to query `id` for `name`.
pub fn classify(id: u16, name: &str, response: &[u8]) -> Outcome {
    let m = match Message::from_vec(response) {
        Ok(m) => m,
        Err(e) => return Outcome::Wrong(format!("undecodable: {e}")),
    };
    if m.metadata.id != id {
        return Outcome::Wrong(format!("ID {} for query {id}", m.metadata.id));
    }
    if m.metadata.message_type != MessageType::Response {
        return Outcome::Wrong("not a response".into());
    }
    let question_ok = m.queries.len() == 1
        && m.queries
            .first()
            .is_some_and(|q| q.name().to_ascii().eq_ignore_ascii_case(name));
    if !question_ok {
        return Outcome::Wrong(format!("question {:?}", m.queries));
    }
    match m.metadata.response_code {
        ResponseCode::ServFail => Outcome::ServFail,
        ResponseCode::NoError if a_records(&m) == vec![expected_ip(name)] => Outcome::Correct,
        code => Outcome::Wrong(format!("{code:?} with {:?}", a_records(&m))),
    }
}

/// Sends `msg` from a fresh UDP socket and waits up to `wait` for one datagram back.
/// Returns the datagram and how long it took.
pub async fn udp_exchange(
    server: SocketAddr,
    msg: &[u8],
    wait: Duration,
) -> (Option<Vec<u8>>, Duration) {
    udp_exchange_from(IpAddr::V4(Ipv4Addr::LOCALHOST), server, msg, wait).await
}

/// [`udp_exchange`] from a socket bound to `source` (e.g. 127.0.0.2: another loopback
/// address, a different client as far as the stub can tell).
pub async fn udp_exchange_from(
    source: IpAddr,
    server: SocketAddr,
    msg: &[u8],
    wait: Duration,
) -> (Option<Vec<u8>>, Duration) {
    let start = Instant::now();
    let Ok(sock) = UdpSocket::bind((source, 0)).await else {
        return (None, start.elapsed());
    };
    if sock.send_to(msg, server).await.is_err() {
        return (None, start.elapsed());
    }
    let mut buf = vec![0u8; 65_535];
    match tokio::time::timeout(wait, sock.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => {
            buf.truncate(n);
            (Some(buf), start.elapsed())
        }
        _ => (None, start.elapsed()),
    }
}

/// Writes one length-prefixed message.
pub async fn tcp_send(stream: &mut TcpStream, msg: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(msg.len()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(msg);
    stream.write_all(&framed).await
}

/// Reads one length-prefixed message.
pub async fn tcp_recv(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut body).await?;
    Ok(body)
}

/// Connects, sends `msg` and waits up to `wait` for one response.
pub async fn tcp_exchange(
    server: SocketAddr,
    msg: &[u8],
    wait: Duration,
) -> (Option<Vec<u8>>, Duration) {
    tcp_exchange_from(IpAddr::V4(Ipv4Addr::LOCALHOST), server, msg, wait).await
}

/// [`tcp_exchange`] from a socket bound to `source`.
pub async fn tcp_exchange_from(
    source: IpAddr,
    server: SocketAddr,
    msg: &[u8],
    wait: Duration,
) -> (Option<Vec<u8>>, Duration) {
    let start = Instant::now();
    let exchange = async {
        let socket = match source {
            IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.bind(SocketAddr::new(source, 0))?;
        let mut s = socket.connect(server).await?;
        tcp_send(&mut s, msg).await?;
        tcp_recv(&mut s).await
    };
    match tokio::time::timeout(wait, exchange).await {
        Ok(Ok(r)) => (Some(r), start.elapsed()),
        _ => (None, start.elapsed()),
    }
}

/// One `A` query for `name` over UDP or TCP: its outcome and latency.
pub async fn ask(
    server: SocketAddr,
    tcp: bool,
    id: u16,
    name: &str,
    wait: Duration,
) -> (Outcome, Duration) {
    let msg = query(
        id,
        name,
        if id.is_multiple_of(2) {
            Some(1232)
        } else {
            None
        },
    );
    let (response, took) = if tcp {
        tcp_exchange(server, &msg, wait).await
    } else {
        udp_exchange(server, &msg, wait).await
    };
    match response {
        Some(r) => (classify(id, name, &r), took),
        None => (Outcome::NoResponse, took),
    }
}
