//! The metrics endpoint: plain HTTP/1.1, `GET /metrics` answers the exposition text
//! ([`super::Metrics::render`]), anything else 404. At most [`MAX_CONNECTIONS`] connections
//! at once, each closed after [`CONNECTION_TIMEOUT`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use super::{Metrics, CONTENT_TYPE};

/// Connections served at once; further ones wait to be accepted.
pub const MAX_CONNECTIONS: usize = 16;
/// A connection is closed this long after it was accepted, whatever it is doing.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// `metrics.listen` could not be bound.
    #[error("config key `metrics.listen`: cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The running endpoint. Dropping it stops accepting connections.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// The bound address (the chosen port when `listen` had port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting connections and wait for the accept loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Bind `listen` and serve `metrics` on it, on the current Tokio runtime.
pub async fn serve(listen: SocketAddr, metrics: Metrics) -> Result<MetricsServer, MetricsError> {
    let bind_err = |source| MetricsError::Bind {
        addr: listen,
        source,
    };
    let listener = TcpListener::bind(listen).await.map_err(bind_err)?;
    let addr = listener.local_addr().map_err(bind_err)?;
    let (stop, mut stopped) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let task = tokio::spawn(async move {
        loop {
            let permit = tokio::select! {
                _ = stopped.wait_for(|&s| s) => break,
                p = Arc::clone(&slots).acquire_owned() => p,
            };
            let Ok(permit) = permit else { break };
            let stream = tokio::select! {
                _ = stopped.wait_for(|&s| s) => break,
                r = listener.accept() => match r {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::debug!(error = %e, "metrics: accept failed");
                        continue;
                    }
                },
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let service = hyper::service::service_fn(move |req| {
                    let metrics = metrics.clone();
                    async move { Ok::<_, Infallible>(respond(&metrics, &req)) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service);
                match tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
                    Ok(Err(e)) => tracing::debug!(error = %e, "metrics: connection failed"),
                    Err(_) => tracing::debug!("metrics: connection closed after the timeout"),
                    Ok(Ok(())) => {}
                }
            });
        }
    });
    Ok(MetricsServer {
        addr,
        stop,
        task: Some(task),
    })
}

/// Start the endpoint of `ctdns serve` on `listen` over `sources`; logs where it listens,
/// and a WARN when `listen` is not a loopback address (the endpoint has no authentication).
pub async fn start(
    listen: SocketAddr,
    sources: super::Sources,
) -> Result<(Metrics, MetricsServer), MetricsError> {
    if !listen.ip().is_loopback() {
        tracing::warn!(
            addr = %listen,
            "metrics endpoint on a non-loopback address: anyone who can reach it sees the \
             upstreams and query counts (no authentication); prefer 127.0.0.1 or a firewall"
        );
    }
    let metrics = Metrics::new(sources);
    let server = serve(listen, metrics.clone()).await?;
    tracing::info!(addr = %server.addr(), "metrics endpoint listening (GET /metrics)");
    Ok((metrics, server))
}

fn respond(metrics: &Metrics, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let plain = |status: StatusCode, text: &'static str| {
        let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
        *r.status_mut() = status;
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    };
    if req.method() != Method::GET || req.uri().path() != "/metrics" {
        return plain(StatusCode::NOT_FOUND, "not found: GET /metrics\n");
    }
    match metrics.render() {
        Ok(text) => {
            let mut r = Response::new(Full::new(Bytes::from(text)));
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(CONTENT_TYPE),
            );
            r
        }
        Err(_) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the metrics could not be encoded\n",
        ),
    }
}
