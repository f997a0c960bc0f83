//! Errors of the stub server: invalid settings and failures to bind a listener.

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// The transport a local listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// DNS over UDP (RFC 1035 §4.2.1).
    Udp,
    /// DNS over TCP (RFC 1035 §4.2.2, RFC 7766).
    Tcp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Udp => "UDP",
            Protocol::Tcp => "TCP",
        })
    }
}

/// Why the stub server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StubError {
    /// A setting breaks a rule.
    #[error("invalid setting {field}: {rule}")]
    InvalidOption {
        /// The setting, as named in [`StubOptions`](super::StubOptions).
        field: &'static str,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// Binding needs a privilege the process lacks (ports below 1024 on most systems).
    #[error(
        "cannot listen on {proto} {addr}: permission denied. Ports below 1024 need privilege: \
         run ctdns as root, or grant it the capability with \
         `setcap cap_net_bind_service=+ep {binary}`, or listen on another port with \
         --listen (for example --listen 127.0.0.1:5353)"
    )]
    BindPermissionDenied {
        /// The address that was refused.
        addr: SocketAddr,
        /// The listener's transport.
        proto: Protocol,
        /// The path of the running binary, for the `setcap` command.
        binary: String,
    },
    /// The address is already used by another socket.
    #[error(
        "cannot listen on {proto} {addr}: address in use (another DNS server, such as \
         systemd-resolved or dnsmasq, may be listening there); stop it or use --listen"
    )]
    BindAddressInUse {
        /// The address that is taken.
        addr: SocketAddr,
        /// The listener's transport.
        proto: Protocol,
    },
    /// Any other failure to bind.
    #[error("cannot listen on {proto} {addr}: {source}")]
    Bind {
        /// The address that failed.
        addr: SocketAddr,
        /// The listener's transport.
        proto: Protocol,
        /// The I/O error.
        source: io::Error,
    },
    /// With port 0, no free port could be found that both UDP and TCP could bind.
    #[error("no free port for both UDP and TCP on {ip} after {attempts} attempts")]
    NoCommonPort {
        /// The address asked for (with port 0).
        ip: std::net::IpAddr,
        /// How many ports were tried.
        attempts: u32,
    },
}

impl StubError {
    /// Maps an I/O error from binding `addr` to the error a user can act on: permission
    /// denied becomes [`StubError::BindPermissionDenied`] (which says how to fix it), address
    /// in use becomes [`StubError::BindAddressInUse`].
    pub fn from_bind(addr: SocketAddr, proto: Protocol, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::PermissionDenied => StubError::BindPermissionDenied {
                addr,
                proto,
                binary: current_binary(),
            },
            io::ErrorKind::AddrInUse => StubError::BindAddressInUse { addr, proto },
            _ => StubError::Bind {
                addr,
                proto,
                source,
            },
        }
    }
}

impl StubError {
    /// Whether this bind error means the host cannot have the address at all: no such local
    /// address (`EADDRNOTAVAIL`, e.g. `[::1]` with IPv6 disabled) or no such address family
    /// (`EAFNOSUPPORT`, IPv6 compiled out or disabled at boot).
    pub fn is_unavailable_address(&self) -> bool {
        match self {
            StubError::Bind { source, .. } => {
                source.kind() == io::ErrorKind::AddrNotAvailable
                    || source.raw_os_error() == Some(EAFNOSUPPORT)
            }
            _ => false,
        }
    }
}

/// Linux's `EAFNOSUPPORT` ("address family not supported by protocol").
const EAFNOSUPPORT: i32 = 97;

fn current_binary() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| String::from("/path/to/ctdns"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_denied_says_how_to_fix_it() {
        let addr: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let e = StubError::from_bind(
            addr,
            Protocol::Udp,
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert!(matches!(e, StubError::BindPermissionDenied { .. }));
        let text = e.to_string();
        assert!(text.contains("127.0.0.1:53"), "{text}");
        assert!(text.contains("root"), "{text}");
        assert!(text.contains("setcap cap_net_bind_service=+ep "), "{text}");
        assert!(text.contains("--listen"), "{text}");
    }

    #[test]
    fn other_errors_keep_their_kind() {
        let addr: SocketAddr = "[::1]:53".parse().unwrap();
        let e = StubError::from_bind(
            addr,
            Protocol::Tcp,
            io::Error::from(io::ErrorKind::AddrInUse),
        );
        assert!(matches!(
            e,
            StubError::BindAddressInUse {
                proto: Protocol::Tcp,
                ..
            }
        ));
        let e = StubError::from_bind(
            addr,
            Protocol::Tcp,
            io::Error::from(io::ErrorKind::AddrNotAvailable),
        );
        match e {
            StubError::Bind { source, .. } => {
                assert_eq!(source.kind(), io::ErrorKind::AddrNotAvailable)
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
