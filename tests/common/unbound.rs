//! A real Debian `unbound` serving DoT and DoH on loopback with local-data answers, for
//! interoperability tests and benchmarks. Stopped (killed and reaped) on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running unbound.
pub struct Unbound {
    child: Child,
    /// DoT address.
    pub dot: SocketAddr,
    /// DoH address.
    pub doh: SocketAddr,
    /// Plain TCP/UDP address (for comparisons only; ctdns never uses it).
    #[allow(dead_code)]
    pub plain: SocketAddr,
    /// Its working directory.
    pub dir: PathBuf,
}

/// Where unbound lives, if installed.
pub fn unbound_binary() -> Option<PathBuf> {
    ["/usr/sbin/unbound", "/usr/bin/unbound"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

#[path = "ports.rs"]
mod ports;
pub use ports::free_port;

impl Unbound {
    /// Start unbound in `dir` serving the certificate chain `chain_pem` with `key_pem`.
    /// `local_data` lines are `"name. TTL IN TYPE rdata"`.
    #[allow(dead_code)]
    pub fn start(dir: &Path, chain_pem: &Path, key_pem: &Path, local_data: &[&str]) -> Unbound {
        Self::start_with(dir, chain_pem, key_pem, local_data, &[])
    }

    /// [`Unbound::start`] with extra `server:` options, e.g. `"log-queries: yes"` (every
    /// query it receives is logged to `unbound.log`, see [`Unbound::log`]).
    pub fn start_with(
        dir: &Path,
        chain_pem: &Path,
        key_pem: &Path,
        local_data: &[&str],
        server_options: &[&str],
    ) -> Unbound {
        let bin = unbound_binary().expect("unbound is installed (scripts/test.sh installs it)");
        let (dot, doh, plain) = (free_port(), free_port(), free_port());
        let mut conf = format!(
            "server:\n  interface: 127.0.0.1@{dot}\n  interface: 127.0.0.1@{doh}\n  interface: 127.0.0.1@{plain}\n  \
             tls-port: {dot}\n  https-port: {doh}\n  tls-service-key: \"{key}\"\n  tls-service-pem: \"{chain}\"\n  \
             http-endpoint: \"/dns-query\"\n  do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n  directory: \"{dir}\"\n  \
             pidfile: \"\"\n  use-syslog: no\n  logfile: \"\"\n  verbosity: 1\n  module-config: \"iterator\"\n  \
             do-not-query-localhost: yes\n  access-control: 127.0.0.0/8 allow\n  num-threads: 1\n  so-reuseport: no\n  \
             local-zone: \"bench.\" redirect\n  local-data: \"bench. 300 IN A 192.0.2.7\"\n  local-zone: \"test.\" static\n",
            key = key_pem.display(),
            chain = chain_pem.display(),
            dir = dir.display(),
        );
        for line in local_data {
            conf.push_str(&format!("  local-data: \"{line}\"\n"));
        }
        for option in server_options {
            conf.push_str(&format!("  {option}\n"));
        }
        conf.push_str("remote-control:\n  control-enable: no\n");
        let conf_path = dir.join("unbound.conf");
        std::fs::write(&conf_path, conf).expect("write unbound.conf");
        let log = std::fs::File::create(dir.join("unbound.log")).expect("unbound.log");
        let child = Command::new(bin)
            .arg("-d")
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start unbound");
        let ub = Unbound {
            child,
            dot: SocketAddr::from(([127, 0, 0, 1], dot)),
            doh: SocketAddr::from(([127, 0, 0, 1], doh)),
            plain: SocketAddr::from(([127, 0, 0, 1], plain)),
            dir: dir.to_path_buf(),
        };
        ub.wait_ready();
        ub
    }

    /// The process ID (to stop and continue it: `kill -STOP` / `kill -CONT`).
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What unbound has logged so far (its stderr).
    #[allow(dead_code)]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("unbound.log")).unwrap_or_default()
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(self.dot).is_ok()
                && std::net::TcpStream::connect(self.doh).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self.dir.join("unbound.log")).unwrap_or_default();
        panic!("unbound did not start listening within 10 s; log:\n{log}");
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
