//! DNS over TLS (RFC 7858) with the TCP usage rules of RFC 7766: one persistent connection
//! per upstream, shared by all queries, pipelined, with responses matched out of order.
//!
//! # How a query travels
//! 1. The query is checked (one question, well-formed) and padded ([`super::query`]).
//! 2. It waits for one of `max_in_flight` slots.
//! 3. It takes the live connection, or opens one: TCP connect, then the TLS handshake with
//!    the given [`rustls::ClientConfig`]. The certificate verifier runs **inside** the
//!    handshake, and nothing is written to the connection until
//!    [`tokio_rustls::TlsConnector::connect`] has returned a finished session, so a refused
//!    certificate means no DNS byte ever left this host. Queries that arrive while a
//!    connection is being opened wait for that attempt; if it fails, they all receive its
//!    error instead of dialing again one after the other (`upstream::dial`).
//! 4. It is registered under a fresh message ID unique among the connection's outstanding
//!    queries ([`super::msgid`]), and handed to the connection's writer task.
//! 5. The reader task reads length-prefixed responses, drops any with an unknown ID or a
//!    question that differs from the query's, and hands the rest to their callers.
//! 6. The caller restores its original ID and, if an OPT record was added for padding,
//!    strips the OPT record from the response.
//!
//! Connections are opened lazily and closed when idle (`idle_timeout`), when the upstream
//! closes them or an I/O error occurs, or when they stall (a query was abandoned after
//! `stall_timeout` with no byte received since it was sent). Closing fails every query still
//! outstanding on that connection with [`UpstreamError::ConnectionLost`], so the pool can
//! retry it elsewhere; the next query opens a new connection.
//!
//! # Idle connections (RFC 7828)
//! With `keepalive` on (the default), every query carries an empty edns-tcp-keepalive
//! option ([`super::keepalive`]; stripped from the answer again when ctdns added it), and
//! the idle timeout the server announces in its answers is remembered per connection. A
//! connection then counts as expiring at its last activity plus the smaller of the server's
//! timeout (less [`keepalive_margin`]) and `idle_timeout`: it is closed then, and a query
//! arriving later opens a new connection instead of writing into one the server is about
//! to close. A server that closes silently (no keepalive option, or earlier than it said)
//! is covered too: a query whose connection had been idle for at least `idle_retry_after`
//! and is lost before its answer is sent again at once on a new connection, once, inside
//! the transport, so the pool sees no failure ([`DotTransport::idle_retries`]).

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tracing::{debug, warn};

use super::connect::{self, SessionInfo};
use super::deadline::Deadline;
use super::dial::{DialCounters, LastFailure};
use super::keepalive;
use super::msgid::IdAllocator;
use super::query::Prepared;
use super::{BoxFuture, DialStats, Transport, UpstreamError};
use crate::wire::{self, Header, Question};

type Stream = TlsStream<TcpStream>;

/// How long the writer waits to send TLS close_notify when a connection is closed.
const CLOSE_NOTIFY_TIMEOUT: Duration = Duration::from_secs(1);

/// Tuning of a [`DotTransport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotOptions {
    /// Limit on TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Limit on one query, from the call to the answer, including any connect it needs.
    pub query_timeout: Duration,
    /// A connection with no outstanding query and no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// A query abandoned (timed out or cancelled) after waiting at least this long, with no
    /// byte received on its connection since it was sent, marks the connection as stalled:
    /// it is closed and the next query opens a new one.
    pub stall_timeout: Duration,
    /// Most queries outstanding at once on this upstream; further queries wait for a slot
    /// (within their timeout). Clamped to 1..=65535.
    pub max_in_flight: usize,
    /// Pad queries with EDNS(0) Padding to 128-byte blocks (RFC 8467).
    pub padding: bool,
    /// Ask for the server's idle timeout with the edns-tcp-keepalive option (RFC 7828) and
    /// close the connection before the server would ([module docs](self)).
    pub keepalive: bool,
    /// A query lost on a connection that had been idle at least this long is retried once at
    /// once on a new connection, not reported as a failure ([module docs](self)).
    pub idle_retry_after: Duration,
}

impl Default for DotOptions {
    fn default() -> Self {
        DotOptions {
            connect_timeout: Duration::from_secs(2),
            query_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(1),
            max_in_flight: 128,
            padding: true,
            keepalive: true,
            idle_retry_after: Duration::from_secs(1),
        }
    }
}

/// A DNS-over-TLS upstream: one persistent, pipelined connection to one resolver address.
pub struct DotTransport {
    addr: SocketAddr,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    opts: DotOptions,
    name: String,
    ids: IdAllocator,
    slots: Semaphore,
    current: tokio::sync::Mutex<Slot>,
    generations: AtomicU64,
    dials: DialCounters,
    idle_retries: AtomicU64,
}

/// The shared connection, and the last failed attempt to open one.
#[derive(Default)]
struct Slot {
    conn: Option<Arc<Connection>>,
    last_failure: LastFailure,
}

impl fmt::Debug for DotTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DotTransport")
            .field("addr", &self.addr)
            .field("server_name", &self.server_name)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl DotTransport {
    /// A transport to `addr`, authenticating it with `tls`, which carries the certificate
    /// verifier. The TLS server name is always `addr`'s IP address (no SNI is sent), so the
    /// verifier checks the certificate's IP SAN against the address actually dialed: a
    /// certificate for another address cannot pass on this socket. A DNS name the
    /// certificate must also be valid for belongs to the verifier
    /// ([`CtVerifier::with_dns_name`](crate::tls::CtVerifier::with_dns_name)).
    ///
    /// Whatever `tls` says, session resumption and 0-RTT early data are turned off on the
    /// copy used here: a resumed session would skip the verifier, and early data would send
    /// DNS bytes before the certificate is checked.
    pub fn new(addr: SocketAddr, tls: Arc<rustls::ClientConfig>, opts: DotOptions) -> Self {
        let server_name = ServerName::IpAddress(addr.ip().into());
        let max_in_flight = opts.max_in_flight.clamp(1, usize::from(u16::MAX));
        DotTransport {
            addr,
            server_name,
            connector: connect::connector(&tls, None),
            name: format!("dot://{addr}"),
            ids: IdAllocator::new(),
            slots: Semaphore::new(max_in_flight),
            current: tokio::sync::Mutex::new(Slot::default()),
            generations: AtomicU64::new(0),
            dials: DialCounters::default(),
            idle_retries: AtomicU64::new(0),
            opts: DotOptions {
                max_in_flight,
                ..opts
            },
        }
    }

    /// The upstream address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queries sent again on a new connection because the connection they were written to,
    /// idle before them for at least `idle_retry_after`, was lost before their answer.
    pub fn idle_retries(&self) -> u64 {
        self.idle_retries.load(Ordering::Relaxed)
    }

    async fn exchange(&self, query: &[u8]) -> Result<Vec<u8>, UpstreamError> {
        let deadline = Deadline::after(self.opts.query_timeout);
        let prepared = Prepared::with_keepalive(query, self.opts.padding, self.opts.keepalive)?;

        let _slot = deadline
            .run(self.slots.acquire())
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(|_| UpstreamError::ConnectionLost("transport shut down".into()))?;
        let (conn, idle) = self.connection(&deadline).await?;
        match self.send(&prepared, &deadline, Arc::clone(&conn)).await {
            Err(UpstreamError::ConnectionLost(reason))
                if idle.is_some_and(|idle| idle >= self.opts.idle_retry_after) =>
            {
                // Most likely the server closed the connection during the pause and we wrote
                // before noticing: not the upstream's failure. Once, on a new connection.
                debug!(upstream = %self.name, ?idle, %reason,
                    "connection idle before this query was lost: sending again on a new one");
                conn.close(format!("lost after {idle:?} idle: {reason}"));
                self.idle_retries.fetch_add(1, Ordering::Relaxed);
                let (conn, _) = self.connection(&deadline).await?;
                self.send(&prepared, &deadline, conn).await
            }
            other => other,
        }
    }

    /// Send `prepared` on `conn` (or, if it closed before the query was registered, on a new
    /// connection) and wait for its answer.
    async fn send(
        &self,
        prepared: &Prepared,
        deadline: &Deadline,
        mut conn: Arc<Connection>,
    ) -> Result<Vec<u8>, UpstreamError> {
        let question = prepared.question().clone();
        let (id, reply) = match conn.register(&self.ids, question.clone()) {
            Ok(registered) => registered,
            // The connection closed (e.g. idle timeout) between lookup and registration.
            // Nothing was sent, so opening a new one is safe.
            Err(_) => {
                conn = self.connection(deadline).await?.0;
                conn.register(&self.ids, question)?
            }
        };
        // From here on, dropping `in_flight` (timeout, cancellation, error) deregisters `id`.
        let in_flight = InFlight {
            conn: &conn,
            id,
            sent_at: Instant::now(),
            stall_timeout: self.opts.stall_timeout,
        };
        let frame = prepared.frame(id).map_err(UpstreamError::MalformedQuery)?;
        match deadline.run(conn.outgoing.send(frame)).await {
            Err(_) => return Err(UpstreamError::Timeout),
            Ok(Err(_)) => return Err(conn.lost()),
            Ok(Ok(())) => {}
        }
        let answer = match deadline.run(reply).await {
            Err(_) => return Err(UpstreamError::Timeout),
            Ok(Err(_)) => return Err(conn.lost()),
            Ok(Ok(answer)) => answer?,
        };
        drop(in_flight);
        prepared
            .finish(&answer)
            .map_err(UpstreamError::MalformedResponse)
    }

    /// The live connection and how long it had been idle, or a new one (`None`); or the
    /// error of the attempt this query waited for. A live connection that is expiring (its
    /// idle time, the server's keepalive timeout included, is up) is closed and replaced.
    async fn connection(
        &self,
        deadline: &Deadline,
    ) -> Result<(Arc<Connection>, Option<Duration>), UpstreamError> {
        let waiting_since = Instant::now();
        let mut current = deadline
            .run(self.current.lock())
            .await
            .map_err(|_| UpstreamError::Timeout)?;
        if let Some(conn) = current.conn.as_ref().filter(|c| c.is_open()) {
            let (expired, _) = conn.idle_check(self.opts.idle_timeout);
            if !expired {
                return Ok((Arc::clone(conn), Some(conn.idle_for())));
            }
            conn.close("idle: about to expire (keepalive or idle timeout)".into());
        }
        current.conn = None;
        let conn = current
            .last_failure
            .dial(&self.name, &self.dials, waiting_since, self.open(deadline))
            .await?;
        current.conn = Some(Arc::clone(&conn));
        Ok((conn, None))
    }

    /// The TLS server name the certificate is verified against: the dialed IP address.
    pub fn server_name(&self) -> &ServerName<'static> {
        &self.server_name
    }

    /// TCP connect and TLS handshake ([`super::connect`]), then start the reader and
    /// writer tasks.
    async fn open(&self, deadline: &Deadline) -> Result<Arc<Connection>, UpstreamError> {
        let dial = connect::Dial {
            connector: &self.connector,
            addr: self.addr,
            server_name: &self.server_name,
            connect_timeout: self.opts.connect_timeout,
        };
        // The stream is handed to the writer only after the handshake (and the verifier in
        // it) has finished: no DNS byte is written before that.
        let (stream, acks) = connect::connect(dial, deadline, QuickAck::new).await?;
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        debug!(upstream = %self.name, generation, "TLS session established");
        Ok(Connection::start(
            stream,
            acks,
            self.addr,
            generation,
            self.opts.max_in_flight,
            self.opts.idle_timeout,
            self.opts.keepalive,
        ))
    }
}

impl Drop for DotTransport {
    fn drop(&mut self) {
        if let Ok(mut current) = self.current.try_lock() {
            if let Some(conn) = current.conn.take() {
                conn.close("transport dropped".into());
            }
        }
    }
}

impl Transport for DotTransport {
    fn query<'a>(&'a self, query: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, UpstreamError>> {
        Box::pin(self.exchange(query))
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn dial_stats(&self) -> DialStats {
        self.dials.snapshot()
    }

    fn connect(&self) -> BoxFuture<'_, Result<Option<SessionInfo>, UpstreamError>> {
        Box::pin(async {
            let deadline = Deadline::after(self.opts.query_timeout);
            let (conn, _) = self.connection(&deadline).await?;
            Ok(Some(conn.session.clone()))
        })
    }
}

/// Deregisters a query from its connection when the caller stops waiting for any reason.
struct InFlight<'a> {
    conn: &'a Connection,
    id: u16,
    sent_at: Instant,
    stall_timeout: Duration,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.conn.abandon(self.id, self.sent_at, self.stall_timeout);
    }
}

/// What a caller receives: the raw response (ID still the connection's), or why not.
type Reply = Result<Vec<u8>, UpstreamError>;

/// A query waiting for its response.
struct Pending {
    question: Question,
    reply: oneshot::Sender<Reply>,
}

struct ConnState {
    inflight: HashMap<u16, Pending>,
    /// Why the connection closed; `None` while open.
    closed: Option<String>,
    /// When bytes last arrived.
    last_rx: Instant,
    /// When bytes last went either way.
    last_activity: Instant,
    /// The idle timeout the server last announced (RFC 7828).
    server_timeout: Option<Duration>,
}

/// One TLS session and its reader and writer tasks.
struct Connection {
    peer: SocketAddr,
    session: SessionInfo,
    generation: u64,
    outgoing: mpsc::Sender<Vec<u8>>,
    state: Mutex<ConnState>,
    shutdown: watch::Sender<bool>,
    acks: QuickAck,
    /// Whether responses are read for the server's keepalive timeout.
    keepalive: bool,
}

impl Connection {
    fn start(
        stream: Stream,
        acks: QuickAck,
        peer: SocketAddr,
        generation: u64,
        capacity: usize,
        idle_timeout: Duration,
        keepalive: bool,
    ) -> Arc<Connection> {
        let (outgoing, frames) = mpsc::channel(capacity.max(1));
        let (shutdown, _) = watch::channel(false);
        let now = Instant::now();
        let conn = Arc::new(Connection {
            peer,
            session: SessionInfo::of(&stream),
            generation,
            outgoing,
            state: Mutex::new(ConnState {
                inflight: HashMap::new(),
                closed: None,
                last_rx: now,
                last_activity: now,
                server_timeout: None,
            }),
            shutdown,
            acks,
            keepalive,
        });
        let (reader, writer) = tokio::io::split(stream);
        tokio::spawn(read_loop(
            Arc::clone(&conn),
            reader,
            idle_timeout,
            conn.shutdown.subscribe(),
        ));
        tokio::spawn(write_loop(
            Arc::clone(&conn),
            writer,
            frames,
            conn.shutdown.subscribe(),
        ));
        conn
    }

    fn lock(&self) -> MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_open(&self) -> bool {
        self.lock().closed.is_none()
    }

    /// How many queries are waiting for their response (registered, not yet answered).
    fn outstanding(&self) -> usize {
        self.lock().inflight.len()
    }

    /// The error for a query that lost this connection.
    fn lost(&self) -> UpstreamError {
        let reason = self
            .lock()
            .closed
            .clone()
            .unwrap_or_else(|| "connection tasks ended".into());
        UpstreamError::ConnectionLost(format!("{}: {reason}", self.peer))
    }

    /// Register a query under a fresh message ID.
    fn register(
        &self,
        ids: &IdAllocator,
        question: Question,
    ) -> Result<(u16, oneshot::Receiver<Reply>), UpstreamError> {
        let mut state = self.lock();
        if state.closed.is_some() {
            drop(state);
            return Err(self.lost());
        }
        let id = ids
            .allocate(|id| state.inflight.contains_key(&id))
            .ok_or_else(|| UpstreamError::ConnectionLost("all 65536 message IDs in use".into()))?;
        let (reply, receiver) = oneshot::channel();
        state.inflight.insert(id, Pending { question, reply });
        state.last_activity = Instant::now();
        Ok((id, receiver))
    }

    /// The caller of `id` stopped waiting. If it had no answer, nothing arrived since it was
    /// sent, and it waited at least `stall_timeout`, the connection is declared stalled.
    fn abandon(&self, id: u16, sent_at: Instant, stall_timeout: Duration) {
        let stalled = {
            let mut state = self.lock();
            if state.inflight.remove(&id).is_none() {
                return;
            }
            state.last_rx < sent_at && sent_at.elapsed() >= stall_timeout
        };
        if stalled {
            self.close(format!(
                "nothing received for {stall_timeout:?} with a query outstanding (stalled)"
            ));
        }
    }

    /// Hand a response frame to the query it answers, or drop it.
    fn deliver(&self, frame: Vec<u8>) {
        let mut state = self.lock();
        let now = Instant::now();
        state.last_rx = now;
        state.last_activity = now;
        let header = match Header::parse(&frame) {
            Ok(h) => h,
            Err(e) => {
                warn!(upstream = %self.peer, error = %e, "dropping unreadable DNS message");
                return;
            }
        };
        if !header.is_response() {
            warn!(upstream = %self.peer, id = header.id, "dropping message without the QR bit");
            return;
        }
        let Some(pending) = state.inflight.get(&header.id) else {
            warn!(upstream = %self.peer, id = header.id, "dropping response with an unknown message ID");
            return;
        };
        match wire::question(&frame) {
            Ok(q) if q == pending.question => {}
            Ok(_) => {
                warn!(upstream = %self.peer, id = header.id,
                    "dropping response whose question differs from the query's");
                return;
            }
            Err(e) => {
                warn!(upstream = %self.peer, id = header.id, error = %e,
                    "dropping response with an unreadable question");
                return;
            }
        }
        if let Some(pending) = state.inflight.remove(&header.id) {
            if self.keepalive {
                if let Some(timeout) = keepalive::server_timeout(&frame) {
                    if state.server_timeout != Some(timeout) {
                        debug!(upstream = %self.peer, generation = self.generation, ?timeout,
                            "server announced its TCP keepalive timeout");
                    }
                    state.server_timeout = Some(timeout);
                }
            }
            drop(state);
            // The caller may have given up in the meantime; nothing to do then.
            let _ = pending.reply.send(Ok(frame));
        }
    }

    /// Whether the connection has been idle for `idle_timeout`, or for the server's keepalive
    /// timeout less [`keepalive_margin`] if that is shorter, and when to look again.
    fn idle_check(&self, idle_timeout: Duration) -> (bool, Instant) {
        let state = self.lock();
        let now = Instant::now();
        let idle_timeout = match state.server_timeout {
            Some(server) => idle_timeout.min(server.saturating_sub(keepalive_margin(server))),
            None => idle_timeout,
        };
        // An idle timeout too large to add means "never": look again in a day.
        let later = |from: Instant| {
            from.checked_add(idle_timeout)
                .unwrap_or_else(|| now + Duration::from_secs(86_400))
        };
        if !state.inflight.is_empty() {
            return (false, later(now));
        }
        let due = later(state.last_activity);
        (due <= now, due)
    }

    /// How long the connection has been idle (zero while a query is outstanding).
    fn idle_for(&self) -> Duration {
        let state = self.lock();
        if state.inflight.is_empty() {
            state.last_activity.elapsed()
        } else {
            Duration::ZERO
        }
    }

    fn touch(&self) {
        self.lock().last_activity = Instant::now();
    }

    /// Close the connection: fail every outstanding query and stop both tasks.
    fn close(&self, reason: String) {
        let pending = {
            let mut state = self.lock();
            if state.closed.is_some() {
                return;
            }
            state.closed = Some(reason.clone());
            std::mem::take(&mut state.inflight)
        };
        debug!(upstream = %self.peer, generation = self.generation, %reason,
            failed = pending.len(), "DoT connection closed");
        for (_, p) in pending {
            let _ = p.reply.send(Err(UpstreamError::ConnectionLost(format!(
                "{}: {reason}",
                self.peer
            ))));
        }
        self.shutdown.send_replace(true);
    }
}

/// How long before the server's announced keepalive timeout ctdns closes an idle connection:
/// a quarter of it, at most one second (time for a query written just before to arrive).
pub fn keepalive_margin(server_timeout: Duration) -> Duration {
    (server_timeout / 4).min(Duration::from_secs(1))
}

/// Prompt TCP acknowledgements of what the resolver sends.
///
/// A resolver that leaves Nagle's algorithm on for its DoT sockets (unbound 1.17 does: it
/// sets `TCP_NODELAY` only on DoH sockets, and writes a response's length prefix and
/// message separately) holds back each small segment until its previous one is
/// acknowledged, and Linux delays acknowledgements by up to 40 ms when the receiver has
/// nothing to send back. So every answer waited for the next query (or 40 ms), the first
/// answer on a new connection waited 40 ms behind the unacknowledged TLS session tickets
/// (which reach no reader as data), and with queries pipelined on one connection, more so
/// when the writer batches them, the whole pipeline stalled: on loopback against unbound,
/// throughput was capped near 18k QPS with the CPUs far from busy. Asking the kernel
/// (`TCP_QUICKACK`, which it resets on its own) to acknowledge at once after every write
/// (sending puts Linux back into delayed-ACK mode) and after every read removes the
/// stalls: one `setsockopt` per write batch and per read, each carrying many queries or
/// responses under load. It changes nothing about what is sent or verified. Linux only;
/// elsewhere a no-op.
struct QuickAck {
    /// A duplicate of the connection's socket descriptor, used only for `setsockopt`.
    #[cfg(target_os = "linux")]
    socket: Option<socket2::Socket>,
}

impl QuickAck {
    fn new(tcp: &TcpStream) -> Self {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsFd;
            QuickAck {
                socket: tcp
                    .as_fd()
                    .try_clone_to_owned()
                    .ok()
                    .map(socket2::Socket::from),
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = tcp;
            QuickAck {}
        }
    }

    /// Acknowledge what has been received without delay.
    fn now(&self) {
        #[cfg(target_os = "linux")]
        if let Some(socket) = &self.socket {
            // Best effort: without it, acknowledgements are merely delayed.
            let _ = socket.set_tcp_quickack(true);
        }
    }
}

/// Split one complete length-prefixed frame off the front of `buf`, if there is one.
/// Exported for the fuzz targets as `ctdns::fuzzing::take_frame` (feature `fuzzing`).
pub(crate) fn take_frame(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let len = usize::from(wire::read_u16(buf, 0)?);
    let end = 2 + len;
    let frame = buf.get(2..end)?.to_vec();
    buf.drain(..end);
    Some(frame)
}

async fn read_loop(
    conn: Arc<Connection>,
    mut reader: ReadHalf<Stream>,
    idle_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        while let Some(frame) = take_frame(&mut buf) {
            conn.deliver(frame);
        }
        let (_, next_check) = conn.idle_check(idle_timeout);
        tokio::select! {
            biased;
            _ = shutdown.changed() => return,
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) if buf.is_empty() => {
                    conn.close("upstream closed the connection".into());
                    return;
                }
                Ok(0) => {
                    conn.close("upstream closed the connection mid-message".into());
                    return;
                }
                Ok(_) => conn.acks.now(),
                Err(e) => {
                    conn.close(format!("read failed: {e}"));
                    return;
                }
            },
            _ = tokio::time::sleep_until(next_check) => {
                if conn.idle_check(idle_timeout).0 {
                    conn.close("idle timeout".into());
                    return;
                }
            }
        }
    }
}

/// Most bytes of queued queries the writer gathers into one write (one TLS record, one
/// system call): about 100 padded queries, well below the 16 KiB TLS record limit.
const WRITE_BATCH: usize = 12 * 1024;

async fn write_loop(
    conn: Arc<Connection>,
    mut writer: WriteHalf<Stream>,
    mut frames: mpsc::Receiver<Vec<u8>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut batch: Vec<u8> = Vec::with_capacity(WRITE_BATCH);
    loop {
        let frame = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            frame = frames.recv() => frame,
        };
        let Some(frame) = frame else { break };
        // Queries that queue up together go out together: under load this saves a TLS
        // record and a system call per query. With other queries outstanding (a sign of
        // load), the writer first lets the tasks that are ready to run (typically more
        // queries just read from clients) queue theirs; a lone query is written at once.
        if conn.outstanding() > 1 {
            tokio::task::yield_now().await;
        }
        batch.clear();
        batch.extend_from_slice(&frame);
        while batch.len() < WRITE_BATCH {
            match frames.try_recv() {
                Ok(more) => batch.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        let write = async {
            writer.write_all(&batch).await?;
            writer.flush().await
        };
        let written = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            written = write => written,
        };
        match written {
            Ok(()) => {
                // Sending data right after receiving some puts Linux back into delayed-ACK
                // mode; the answers to what was just sent are to be acknowledged at once.
                conn.acks.now();
                conn.touch();
            }
            Err(e) => {
                conn.close(format!("write failed: {e}"));
                break;
            }
        }
    }
    // Best effort: send close_notify and FIN.
    let _ = tokio::time::timeout(CLOSE_NOTIFY_TIMEOUT, writer.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_split_only_when_complete() {
        let mut buf = vec![0, 3, 1, 2];
        assert_eq!(take_frame(&mut buf), None);
        buf.extend_from_slice(&[3, 0, 0, 0, 1, 9]);
        assert_eq!(take_frame(&mut buf), Some(vec![1, 2, 3]));
        assert_eq!(take_frame(&mut buf), Some(vec![]));
        assert_eq!(buf, vec![0, 1, 9]);
        assert_eq!(take_frame(&mut buf), Some(vec![9]));
        assert_eq!(take_frame(&mut buf), None);
        assert!(buf.is_empty());
    }

    #[test]
    fn options_are_clamped() {
        let config =
            rustls::ClientConfig::builder_with_provider(crate::provider::default_provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
        let t = DotTransport::new(
            "127.0.0.1:853".parse().unwrap(),
            Arc::new(config),
            DotOptions {
                max_in_flight: 0,
                ..DotOptions::default()
            },
        );
        assert_eq!(t.opts.max_in_flight, 1);
        assert_eq!(t.name(), "dot://127.0.0.1:853");
        assert!(!t.connector.config().enable_early_data);
    }
}
