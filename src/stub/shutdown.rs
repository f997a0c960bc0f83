//! How the stub's tasks learn of shutdown and how shutdown waits for them: every listener,
//! connection and query task holds a [`TaskGuard`] and watches the stop signal with
//! [`stopped`].

use tokio::sync::{mpsc, watch};

/// Held by every listener, connection and query task;
/// [`StubHandle::shutdown`](crate::stub::server::StubHandle::shutdown) waits until all are
/// dropped.
#[derive(Debug, Clone)]
pub(crate) struct TaskGuard(#[allow(dead_code)] mpsc::Sender<()>);

impl TaskGuard {
    /// A guard on the channel whose closing tells shutdown every task is done.
    pub(crate) fn new(done: mpsc::Sender<()>) -> Self {
        Self(done)
    }
}

/// Completes once shutdown is signalled or the
/// [`StubHandle`](crate::stub::server::StubHandle) is gone. Cancel-safe.
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|&stop| stop).await;
}
