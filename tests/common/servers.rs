//! DNS servers written by others, run on loopback as DoT/DoH upstreams for interoperability
//! tests: BIND 9 (`named`), dnsdist and Knot Resolver (`kresd`). Each serves the same small
//! data set (see [`Records`]) with a given certificate chain, on ephemeral 127.0.0.1 ports,
//! and reports how many DNS queries it has received, read from the server's own statistics.
//! Every server is killed and reaped on drop (also when a test panics).
//!
//! None of them is allowed to send traffic off loopback: named is authoritative only
//! (`recursion no`, `notify no`), dnsdist answers from its own rules (no backend, security
//! polling off), kresd answers from policy rules with a catch-all DENY, its outgoing
//! addresses pinned to loopback, and the modules that query the root (priming, trust-anchor
//! updates, time-skew detection) unloaded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// ISC BIND 9 (`named`), authoritative for `example.test`.
    Named,
    /// PowerDNS dnsdist, answering from spoof rules.
    Dnsdist,
    /// Knot Resolver (`kresd`), answering from policy rules.
    Kresd,
}

impl Kind {
    /// The name used in TXT data and messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Named => "named",
            Kind::Dnsdist => "dnsdist",
            Kind::Kresd => "kresd",
        }
    }

    /// The installed binary, or a panic telling to run scripts/test.sh (tests never skip).
    pub fn binary(self) -> PathBuf {
        let (name, package) = match self {
            Kind::Named => ("named", "bind9"),
            Kind::Dnsdist => ("dnsdist", "dnsdist"),
            Kind::Kresd => ("kresd", "knot-resolver"),
        };
        ["/usr/sbin", "/usr/bin"]
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.exists())
            .unwrap_or_else(|| {
                panic!(
                    "`{name}` is not installed: run scripts/test.sh (it installs the Debian \
                     package {package}) instead of bare `cargo test`"
                )
            })
    }

    /// The first line of the server's version output.
    pub fn version(self) -> String {
        let flag = match self {
            Kind::Named => "-v",
            Kind::Dnsdist | Kind::Kresd => "--version",
        };
        let out = Command::new(self.binary())
            .arg(flag)
            .output()
            .expect("run the server's version command");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

/// The data every server answers with.
pub struct Records;

impl Records {
    /// `www.example.test. A`.
    pub const A: &'static str = "192.0.2.1";
    /// `www.example.test. AAAA`.
    pub const AAAA: &'static str = "2001:db8::1";

    /// `txt.example.test. TXT`: names the server, so an answer shows who gave it.
    pub fn txt(kind: Kind) -> String {
        format!("hello-from-{}", kind.name())
    }
}

#[path = "ports.rs"]
mod ports;
pub use ports::free_port;

/// A running server.
pub struct Server {
    child: Child,
    /// Which one.
    pub kind: Kind,
    /// DoT address.
    pub dot: SocketAddr,
    /// DoH address (path `/dns-query`).
    pub doh: SocketAddr,
    /// Plain DNS (UDP and TCP) address: for the test's own control queries, never ctdns.
    pub plain: SocketAddr,
    /// Its working directory (config, log, statistics socket).
    pub dir: PathBuf,
    /// Named: the statistics channel; dnsdist: the console; kresd: unused (a unix socket).
    control: SocketAddr,
    log_path: PathBuf,
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The key for dnsdist's console (loopback only, test processes only).
const DNSDIST_CONSOLE_KEY: &str = "MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74=";

impl Server {
    /// Start `kind` in `dir` serving the certificate chain `chain_pem` with `key_pem`.
    pub fn start(kind: Kind, dir: &Path, chain_pem: &Path, key_pem: &Path) -> Server {
        let bin = kind.binary();
        let (dot, doh, plain, control) = (free_port(), free_port(), free_port(), free_port());
        let chain = chain_pem.display().to_string();
        let key = key_pem.display().to_string();
        let d = dir.display().to_string();
        let txt = Records::txt(kind);
        let log_path = dir.join(format!("{}.log", kind.name()));
        let mut cmd = Command::new(bin);
        match kind {
            Kind::Named => {
                let zone = format!(
                    "$TTL 300\n@ IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300\n\
                     @ IN NS ns.example.test.\nns IN A 127.0.0.1\nwww IN A {a}\nwww IN AAAA {aaaa}\n\
                     txt IN TXT \"{txt}\"\n",
                    a = Records::A,
                    aaaa = Records::AAAA,
                );
                std::fs::write(dir.join("example.test.zone"), zone).expect("write the zone");
                let conf = format!(
                    "options {{\n  directory \"{d}\";\n  pid-file \"{d}/named.pid\";\n  \
                     session-keyfile \"{d}/session.key\";\n  managed-keys-directory \"{d}\";\n  \
                     listen-on port {plain} {{ 127.0.0.1; }};\n  listen-on port {dot} tls t {{ 127.0.0.1; }};\n  \
                     listen-on port {doh} tls t http h {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n  \
                     recursion no;\n  notify no;\n  dnssec-validation no;\n  querylog yes;\n}};\n\
                     tls t {{ cert-file \"{chain}\"; key-file \"{key}\"; }};\n\
                     http h {{ endpoints {{ \"/dns-query\"; }}; }};\n\
                     controls {{ }};\n\
                     statistics-channels {{ inet 127.0.0.1 port {control} allow {{ 127.0.0.1; }}; }};\n\
                     zone \"example.test\" {{ type primary; file \"{d}/example.test.zone\"; }};\n"
                );
                let path = dir.join("named.conf");
                std::fs::write(&path, conf).expect("write named.conf");
                // -g: foreground, log to stderr. As root without -u it keeps running as root,
                // reading and writing only its own directory.
                cmd.arg("-g").arg("-c").arg(path);
            }
            Kind::Dnsdist => {
                let conf = format!(
                    "setSecurityPollSuffix(\"\")\n\
                     setLocal(\"127.0.0.1:{plain}\")\n\
                     addTLSLocal(\"127.0.0.1:{dot}\", \"{chain}\", \"{key}\")\n\
                     addDOHLocal(\"127.0.0.1:{doh}\", \"{chain}\", \"{key}\", \"/dns-query\")\n\
                     controlSocket(\"127.0.0.1:{control}\")\nsetKey(\"{DNSDIST_CONSOLE_KEY}\")\n\
                     addAction(AndRule({{QNameRule(\"www.example.test.\"), QTypeRule(DNSQType.A)}}), SpoofAction(\"{a}\"))\n\
                     addAction(AndRule({{QNameRule(\"www.example.test.\"), QTypeRule(DNSQType.AAAA)}}), SpoofAction(\"{aaaa}\"))\n\
                     addAction(AndRule({{QNameRule(\"txt.example.test.\"), QTypeRule(DNSQType.TXT)}}), SpoofRawAction(\"\\{len:03}{txt}\"))\n\
                     addAction(AllRule(), RCodeAction(DNSRCode.NXDOMAIN))\n",
                    a = Records::A,
                    aaaa = Records::AAAA,
                    len = txt.len(),
                );
                let path = dir.join("dnsdist.conf");
                std::fs::write(&path, conf).expect("write dnsdist.conf");
                cmd.arg("--supervised")
                    .arg("--disable-syslog")
                    .arg("-C")
                    .arg(path);
            }
            Kind::Kresd => {
                let conf = format!(
                    "log_target('stderr')\n\
                     for _, m in ipairs({{'ta_update', 'ta_signal_query', 'priming', 'detect_time_skew', \
                     'detect_time_jump', 'ta_sentinel'}}) do modules.unload(m) end\n\
                     trust_anchors.remove('.')\n\
                     net.outgoing_v4('127.0.0.1')\nnet.outgoing_v6('::1')\nnet.ipv6 = false\n\
                     cache.open(10 * MB, 'lmdb://{d}/cache')\n\
                     net.tls('{chain}', '{key}')\n\
                     net.listen('127.0.0.1', {plain}, {{ kind = 'dns' }})\n\
                     net.listen('127.0.0.1', {dot}, {{ kind = 'tls' }})\n\
                     net.listen('127.0.0.1', {doh}, {{ kind = 'doh2' }})\n\
                     net.listen('{d}/control.sock', nil, {{ kind = 'control' }})\n\
                     modules.load('stats')\n\
                     policy.add(policy.domains(policy.ANSWER({{\n\
                       [kres.type.A] = {{ rdata = kres.str2ip('{a}'), ttl = 300 }},\n\
                       [kres.type.AAAA] = {{ rdata = kres.str2ip('{aaaa}'), ttl = 300 }},\n\
                     }}, true), policy.todnames({{'www.example.test.'}})))\n\
                     policy.add(policy.domains(policy.ANSWER({{\n\
                       [kres.type.TXT] = {{ rdata = '\\{len:03}{txt}', ttl = 300 }},\n\
                     }}, true), policy.todnames({{'txt.example.test.'}})))\n\
                     policy.add(policy.all(policy.DENY))\n",
                    a = Records::A,
                    aaaa = Records::AAAA,
                    len = txt.len(),
                );
                let path = dir.join("kresd.conf");
                std::fs::write(&path, conf).expect("write kresd.conf");
                // -n: no REPL on stdin; the last argument is the run directory.
                cmd.arg("-n").arg("-c").arg(path).arg(dir);
            }
        }
        let log = std::fs::File::create(&log_path).expect("create the server log");
        let child = cmd
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", kind.name()));
        let mut server = Server {
            child,
            kind,
            dot: loopback(dot),
            doh: loopback(doh),
            plain: loopback(plain),
            dir: dir.to_path_buf(),
            control: loopback(control),
            log_path,
        };
        server.wait_ready();
        server
    }

    /// The server's log (stderr and stdout) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before listening; log:\n{}",
                    self.kind.name(),
                    self.log()
                );
            }
            let listening = [self.dot, self.doh, self.plain]
                .iter()
                .all(|a| TcpStream::connect(a).is_ok());
            if listening && self.queries_received_now().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{} did not start listening within 15 s; log:\n{}",
            self.kind.name(),
            self.log()
        );
    }

    /// How many DNS queries the server has received over all its listeners (plain, DoT,
    /// DoH), from the server's own statistics: named's statistics channel (`opcodes.QUERY`),
    /// dnsdist's console (`dumpStats()` counter `queries`), kresd's control socket
    /// (`stats.get('request.total')`).
    pub fn queries_received(&self) -> u64 {
        self.queries_received_now().unwrap_or_else(|| {
            panic!(
                "could not read {}'s query statistics; log:\n{}",
                self.kind.name(),
                self.log()
            )
        })
    }

    fn queries_received_now(&self) -> Option<u64> {
        match self.kind {
            Kind::Named => {
                let body = http_get(self.control, "/json/v1/server")?;
                let json: serde_json::Value = serde_json::from_str(&body).ok()?;
                json["opcodes"]["QUERY"].as_u64()
            }
            Kind::Dnsdist => {
                let text = self.dnsdist_console("dumpStats()")?;
                let mut words = text.split_whitespace();
                while let Some(w) = words.next() {
                    if w == "queries" {
                        return words.next()?.parse().ok();
                    }
                }
                None
            }
            Kind::Kresd => {
                let mut sock = UnixStream::connect(self.dir.join("control.sock")).ok()?;
                sock.set_read_timeout(Some(Duration::from_millis(200)))
                    .ok()?;
                sock.write_all(b"stats.get('request.total')\n").ok()?;
                // The control socket answers with "> " prompts around the value.
                let deadline = Instant::now() + Duration::from_secs(3);
                let mut text = String::new();
                let mut buf = [0u8; 512];
                while Instant::now() < deadline {
                    if let Ok(n) = sock.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        text.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                    let value = text
                        .lines()
                        .map(|l| l.trim_start_matches("> ").trim())
                        .find_map(|l| l.parse::<u64>().ok());
                    if value.is_some() {
                        return value;
                    }
                }
                None
            }
        }
    }
}

impl Server {
    /// dnsdist only: the (GET, POST) DoH request counts of its DoH frontend, from the
    /// console's `showDOHFrontends()`. `None` for the other servers or if unreadable.
    pub fn dnsdist_doh_methods(&self) -> Option<(u64, u64)> {
        if self.kind != Kind::Dnsdist {
            return None;
        }
        let text = self.dnsdist_console("showDOHFrontends()")?;
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next()?.split_whitespace().collect();
        let row: Vec<&str> = lines.next()?.split_whitespace().collect();
        let column = |name: &str| -> Option<u64> {
            let i = header.iter().position(|h| *h == name)?;
            row.get(i)?.parse().ok()
        };
        Some((column("GET")?, column("POST")?))
    }

    /// Run one command on dnsdist's console (`dnsdist -c -e CMD`) and return its output.
    fn dnsdist_console(&self, command: &str) -> Option<String> {
        let conf = self.dir.join("console.conf");
        std::fs::write(
            &conf,
            format!(
                "controlSocket(\"{}\")\nsetKey(\"{DNSDIST_CONSOLE_KEY}\")\n",
                self.control
            ),
        )
        .ok()?;
        let out = Command::new(self.kind.binary())
            .arg("-C")
            .arg(&conf)
            .arg("-c")
            .arg("-e")
            .arg(command)
            .stdin(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// A minimal HTTP/1.0 GET on loopback (named's statistics channel): the body, if 200.
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.")
        .then_some(())
        .filter(|_| head.lines().next().is_some_and(|l| l.contains(" 200")))?;
    Some(body.to_string())
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
