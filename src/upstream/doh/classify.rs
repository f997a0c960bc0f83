//! Sorting HTTP/2 failures into "the connection went away, the server did not answer: retry
//! on a fresh connection" and "the server answered badly: report it".

use std::error::Error as StdError;
use std::io;

use super::{ConnectionGone, DohError};

/// What a failed exchange means for the caller.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The connection went away before the server processed the request.
    Gone(ConnectionGone),
    /// Anything else: not retried here, the pool may fail over.
    Fatal(DohError),
}

/// The meaning of one error found in a source chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Gone(ConnectionGone),
    Reset { code: u32 },
}

/// Classifies an error from opening a stream (`send_request`): the stream was not opened
/// and nothing of the request was sent, so a failure of the connection (GOAWAY, transport
/// error, a connection this client closed) is retried. A local misuse is not.
pub(crate) fn classify_send(err: h2::Error) -> Failure {
    if err.is_go_away() || err.is_io() || err.is_remote() || err.is_reset() {
        return Failure::Gone(ConnectionGone::NotSent);
    }
    Failure::Fatal(DohError::Exchange {
        source: std::sync::Arc::new(err),
    })
}

/// Classifies an error from sending a request body, or awaiting or reading its response.
pub(crate) fn classify(err: h2::Error) -> Failure {
    match verdict(&err) {
        Some(Verdict::Gone(gone)) => Failure::Gone(gone),
        Some(Verdict::Reset { code }) => Failure::Fatal(DohError::StreamReset { code }),
        None => Failure::Fatal(DohError::Exchange {
            source: std::sync::Arc::new(err),
        }),
    }
}

/// Walks the source chain for the first HTTP/2 or I/O error that says what happened.
fn verdict(err: &(dyn StdError + 'static)) -> Option<Verdict> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(h2_err) = e.downcast_ref::<h2::Error>() {
            if let Some(found) = h2_verdict(h2_err) {
                return Some(found);
            }
        }
        if let Some(io_err) = e.downcast_ref::<io::Error>() {
            if let Some(found) = io_verdict(io_err) {
                return Some(found);
            }
        }
        current = e.source();
    }
    None
}

/// GOAWAY and RST_STREAM frames received from the server, and transport failures.
fn h2_verdict(err: &h2::Error) -> Option<Verdict> {
    if let Some(io_err) = err.get_io() {
        return io_verdict(io_err);
    }
    // Errors h2 raised itself (a protocol violation by the server) are not retried.
    if !err.is_remote() {
        return None;
    }
    let code = u32::from(err.reason()?);
    if err.is_go_away() {
        // h2 fails a stream with the GOAWAY error only when its ID is above the
        // GOAWAY's last-stream-ID, i.e. the server did not process it.
        return Some(Verdict::Gone(ConnectionGone::GoAway { code }));
    }
    if code == u32::from(h2::Reason::REFUSED_STREAM) {
        return Some(Verdict::Gone(ConnectionGone::RefusedStream));
    }
    Some(Verdict::Reset { code })
}

/// I/O failures that mean the connection is gone.
fn io_verdict(err: &io::Error) -> Option<Verdict> {
    use io::ErrorKind::*;
    match err.kind() {
        kind
        @ (ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected) => {
            Some(Verdict::Gone(ConnectionGone::Io(kind)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(io::Error);

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("wrapper")
        }
    }

    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn lost_connection_kinds_are_gone() {
        for kind in [
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::UnexpectedEof,
        ] {
            let err = io::Error::from(kind);
            assert_eq!(verdict(&err), Some(Verdict::Gone(ConnectionGone::Io(kind))));
        }
    }

    #[test]
    fn nested_io_error_is_found() {
        let err = Wrapper(io::Error::from(io::ErrorKind::ConnectionAborted));
        assert_eq!(
            verdict(&err),
            Some(Verdict::Gone(ConnectionGone::Io(
                io::ErrorKind::ConnectionAborted
            )))
        );
    }

    #[test]
    fn tls_data_error_is_not_retried() {
        let err = io::Error::new(io::ErrorKind::InvalidData, "bad record mac");
        assert_eq!(verdict(&err), None);
    }

    #[test]
    fn locally_raised_h2_error_is_not_retried() {
        let err = h2::Error::from(h2::Reason::REFUSED_STREAM);
        assert!(!err.is_remote());
        assert_eq!(verdict(&err), None);
    }
}

#[cfg(test)]
mod classify_tests {
    use super::*;

    #[test]
    fn locally_raised_errors_are_fatal_on_send_and_receive() {
        // h2 raised it itself (not the server, not the transport): neither retried.
        for f in [classify, classify_send] {
            let local = h2::Error::from(h2::Reason::PROTOCOL_ERROR);
            assert!(matches!(
                f(local),
                Failure::Fatal(DohError::Exchange { .. })
            ));
        }
    }
}
