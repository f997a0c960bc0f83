//! The built `ctdns` binary as a child process, and raw DNS queries to it. The child is
//! killed and reaped on drop (also when a test panics).
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

/// The `ctdns` binary Cargo built for this test run.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_ctdns")
}

/// A running `ctdns serve`.
pub struct Ctdns {
    child: Option<Child>,
    /// Its stderr (the log), captured to a file.
    pub log_path: PathBuf,
    /// The UDP (and TCP: same port) address it listens on.
    pub addr: SocketAddr,
}

impl Ctdns {
    /// Run `ctdns serve` with `args` (add `--listen 127.0.0.1:0` to pick a free port), its
    /// stderr going to `log_path`, and wait until it logs that it is listening.
    pub fn serve(args: &[&str], log_path: &Path) -> Ctdns {
        let mut command = Command::new(binary());
        command.arg("serve").args(args);
        Self::spawn(command, log_path)
    }

    /// Run `ctdns serve` with `args` in a network namespace of its own where only loopback
    /// is up (so nothing it dials can leave the machine: the built-in upstreams 1.1.1.1 and
    /// 9.9.9.9 are unreachable at once), and with IPv6 disabled there unless `ipv6`. Its
    /// addresses are reachable only from inside: send queries with [`Ctdns::in_netns`].
    pub fn serve_isolated(args: &[&str], log_path: &Path, ipv6: bool) -> Ctdns {
        let ipv6_off = if ipv6 {
            ""
        } else {
            "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 && \
             sysctl -qw net.ipv6.conf.lo.disable_ipv6=1 && "
        };
        let script = format!("ip link set lo up && {ipv6_off}exec \"$@\"");
        let mut command = Command::new("unshare");
        command
            .args(["--net", "--", "sh", "-c", &script, "sh", binary(), "serve"])
            .args(args);
        Self::spawn(command, log_path)
    }

    /// Run `cmd args` in the network namespace of this `ctdns` (see
    /// [`Ctdns::serve_isolated`]), returning its status, stdout and stderr.
    pub fn in_netns(&self, cmd: &str, args: &[&str]) -> (ExitStatus, String, String) {
        let pid = self.pid().to_string();
        let mut all = vec!["--target", pid.as_str(), "--net", "--", cmd];
        all.extend_from_slice(args);
        run("nsenter", &all)
    }

    /// Run `command` (which must start `ctdns serve`, possibly through `sh -c ... exec`),
    /// its stderr going to `log_path`, and wait until it logs that it is listening.
    pub fn spawn(mut command: Command, log_path: &Path) -> Ctdns {
        let log = std::fs::File::create(log_path).expect("create the ctdns log file");
        let child = command
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start ctdns serve");
        let mut me = Ctdns {
            child: Some(child),
            log_path: log_path.to_path_buf(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        me.addr = me.wait_listening();
        me
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The log once it contains `needle`, or after 15 s without it (the caller asserts).
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let log = self.log();
            if log.contains(needle) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    fn wait_listening(&mut self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let log = self.log();
            if let Some(addr) = listening_addr(&log) {
                return addr;
            }
            if !self.alive() {
                panic!("ctdns serve exited before listening; log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "ctdns serve did not listen within 20 s; log:\n{}",
            self.log()
        );
    }

    /// Send signal `sig` (a `kill` name such as `HUP`) to the process.
    pub fn signal(&self, sig: &str) {
        let pid = self.pid().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{sig} {pid} failed");
    }

    /// Send SIGTERM and wait (up to 15 s) for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.pid().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ctdns did not exit within 15 s of SIGTERM; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Ctdns {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The UDP address from the `ctdns listening udp=...` log line (text or JSON format).
pub fn listening_addr(log: &str) -> Option<SocketAddr> {
    let line = log.lines().find(|l| l.contains("ctdns listening"))?;
    let at = line.find("udp")?;
    let rest = &line[at + 3..];
    let start = rest.find(|c: char| c.is_ascii_digit() || c == '[')?;
    let addr: String = rest[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']'))
        .collect();
    addr.parse().ok()
}

/// A query message for `name`/`rtype`, recursion desired, with or without EDNS(0).
pub fn query(id: u16, name: &str, rtype: RecordType, edns: bool) -> Vec<u8> {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).expect("a name"), rtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        msg.edns = Some(e);
    }
    msg.to_vec().expect("encode the query")
}

/// One UDP exchange with `server`, waiting up to `wait` for the response with our ID.
pub fn udp_exchange(server: SocketAddr, wire: &[u8], wait: Duration) -> Message {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP client socket");
    sock.set_read_timeout(Some(wait))
        .expect("set a read timeout");
    sock.send_to(wire, server).expect("send the query");
    let mut buf = vec![0u8; 65_535];
    let (n, from) = sock
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("no UDP answer from {server} within {wait:?}: {e}"));
    assert_eq!(from, server);
    let msg = Message::from_vec(&buf[..n]).expect("a well-formed response");
    assert_eq!(
        Some(msg.metadata.id),
        wire.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    );
    msg
}

/// Run a command and return (exit status, stdout, stderr).
pub fn run(cmd: &str, args: &[&str]) -> (ExitStatus, String, String) {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {cmd}: {e} (scripts/test.sh installs the DNS tools)"));
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
