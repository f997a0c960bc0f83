//! The systemd integration: the sd_notify messages `ctdns serve` sends (READY=1 once it
//! listens, RELOADING=1 with MONOTONIC_USEC then READY=1 around a SIGHUP reload, STOPPING=1
//! at SIGTERM, WATCHDOG=1 pings when WATCHDOG_USEC is set for its PID), read from a unix
//! datagram socket the test binds as NOTIFY_SOCKET; and `contrib/ctdns.service` checked by
//! `systemd-analyze verify` and `systemd-analyze security --offline`, and
//! `contrib/ctdns.toml` loaded as ctdns loads it.
//!
//! The upstream is a closed loopback port: queries get SERVFAIL, which is enough to show
//! that the listeners answer; nothing leaves loopback.
//!
//! `systemd-analyze` comes with Debian's `systemd` package (`scripts/test.sh` installs it
//! when missing); without it the unit tests fail (they never skip).

#[path = "common/ctdns.rs"]
mod child;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use child::{listening_addr, query, run, udp_exchange};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

const WAIT: Duration = Duration::from_secs(10);

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A config listening on a free loopback port, forwarding to a closed loopback port.
fn write_config(dir: &Path) -> PathBuf {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a loopback port")
        .port();
    let path = dir.join("ctdns.toml");
    std::fs::write(
        &path,
        format!(
            "listen = [\"127.0.0.1:0\"]\nquery_timeout_ms = 1000\n\n[[upstream]]\n\
             protocol = \"dot\"\nip = \"127.0.0.1\"\nport = {closed}\n"
        ),
    )
    .expect("write ctdns.toml");
    path
}

/// `ctdns serve --config CONFIG` with NOTIFY_SOCKET = `socket` and `env`, started through
/// `sh -c 'WATCHDOG_PID=$$ ... exec ctdns'` when `watchdog_pid_self` (so that WATCHDOG_PID is
/// the PID ctdns runs as), stderr to `log`.
struct Served {
    child: std::process::Child,
    log: PathBuf,
}

impl Served {
    fn start(
        config: &Path,
        socket: &Path,
        log: &Path,
        env: &[(&str, &str)],
        watchdog_pid_self: bool,
    ) -> Served {
        let script = if watchdog_pid_self {
            "WATCHDOG_PID=$$; export WATCHDOG_PID; exec \"$@\""
        } else {
            "exec \"$@\""
        };
        let mut command = Command::new("sh");
        command
            .args(["-c", script, "sh", child::binary(), "serve", "--config"])
            .arg(config)
            .env("NOTIFY_SOCKET", socket)
            .env_remove("WATCHDOG_PID")
            .env_remove("WATCHDOG_USEC")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log file"));
        for (k, v) in env {
            command.env(k, v);
        }
        Served {
            child: command.spawn().expect("start ctdns serve"),
            log: log.to_path_buf(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&self, sig: &str) {
        let pid = self.child.id().to_string();
        let (status, _, stderr) = run("kill", &[&format!("-{sig}"), &pid]);
        assert!(status.success(), "kill -{sig}: {stderr}");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The next notification on `socket`, or `None` within `wait`.
fn next(socket: &UnixDatagram, wait: Duration) -> Option<String> {
    socket.set_read_timeout(Some(wait)).expect("read timeout");
    let mut buf = [0u8; 4096];
    match socket.recv(&mut buf) {
        Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(_) => None,
    }
}

/// Notifications until one contains `line` (as a whole line); the others are returned too.
fn until(socket: &UnixDatagram, line: &str, served: &Served) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Some(msg) = next(socket, Duration::from_millis(200)) {
            let hit = msg.lines().any(|l| l == line);
            seen.push(msg);
            if hit {
                return seen;
            }
        }
    }
    panic!(
        "no {line} within {WAIT:?}; got {seen:?}; log:\n{}",
        served.log()
    );
}

#[test]
fn notifies_ready_reloading_stopping_and_pings_the_watchdog() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path());
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    let mut served = Served::start(
        &config,
        &socket_path,
        &dir.path().join("ctdns.log"),
        &[("WATCHDOG_USEC", "400000")],
        true,
    );
    let pid = served.child.id();

    // READY=1 comes after the listeners are up: at that moment the log names the bound
    // address and a query to it is answered.
    let first = until(&socket, "READY=1", &served);
    let log = served.log();
    let addr = listening_addr(&log)
        .unwrap_or_else(|| panic!("READY=1 before `ctdns listening`; got {first:?}; log:\n{log}"));
    let m = udp_exchange(
        addr,
        &query(7, "www.example.test.", RecordType::A, true),
        WAIT,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(
        first.iter().all(|m| !m.contains("WATCHDOG=1")),
        "no watchdog ping before READY=1: {first:?}"
    );

    // WATCHDOG_USEC = 400 ms for our PID: a ping every 200 ms.
    let t0 = Instant::now();
    let mut pings = 0;
    while t0.elapsed() < Duration::from_millis(1500) {
        if next(&socket, Duration::from_millis(300)).is_some_and(|m| m == "WATCHDOG=1\n") {
            pings += 1;
        }
    }
    assert!(
        (4..=10).contains(&pings),
        "{pings} watchdog pings in 1.5 s at a 200 ms interval"
    );
    assert!(served.log().contains("systemd watchdog on"));

    // SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1.
    served.kill("HUP");
    let around = until(&socket, "READY=1", &served);
    let around: Vec<&String> = around.iter().filter(|m| *m != "WATCHDOG=1\n").collect();
    assert_eq!(around.len(), 2, "{around:?}");
    let reloading: Vec<&str> = around[0].lines().collect();
    assert_eq!(reloading.first(), Some(&"RELOADING=1"), "{around:?}");
    let usec: u64 = reloading
        .iter()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("MONOTONIC_USEC in {around:?}"));
    assert!(usec > 0);
    assert!(around[1].lines().any(|l| l == "READY=1"));
    assert!(served.log().contains("configuration reloaded"));

    // SIGTERM: STOPPING=1, then a clean exit with the same PID throughout.
    assert_eq!(served.child.id(), pid);
    served.kill("TERM");
    until(&socket, "STOPPING=1", &served);
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = served.child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}; log:\n{}", served.log());
}

#[test]
fn no_watchdog_pings_for_another_pid_or_without_watchdog_usec() {
    for env in [
        vec![("WATCHDOG_USEC", "200000"), ("WATCHDOG_PID", "1")],
        vec![],
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = write_config(dir.path());
        let socket_path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
        let served = Served::start(
            &config,
            &socket_path,
            &dir.path().join("ctdns.log"),
            &env,
            false,
        );
        until(&socket, "READY=1", &served);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(800) {
            if let Some(m) = next(&socket, Duration::from_millis(200)) {
                panic!("{env:?}: unexpected notification {m:?}");
            }
        }
        assert!(!served.log().contains("systemd watchdog on"), "{env:?}");
    }
}

fn systemd_analyze() -> &'static str {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "systemd-analyze is not installed: run scripts/test.sh (it installs Debian's systemd)"
    );
    "systemd-analyze"
}

/// The unit with ExecStart pointing at the binary this test run built (verify checks that
/// the command exists and is executable).
fn unit_with_built_binary(dir: &Path) -> PathBuf {
    let unit = std::fs::read_to_string(repo_file("contrib/ctdns.service")).expect("the unit");
    assert!(unit.contains("ExecStart=/usr/local/bin/ctdns serve --config /etc/ctdns/ctdns.toml"));
    let path = dir.join("ctdns.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/ctdns", child::binary()))
        .expect("write the unit");
    path
}

#[test]
fn the_unit_file_verifies_and_its_exposure_is_low() {
    let tool = systemd_analyze();
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = unit_with_built_binary(dir.path());
    let unit = unit.to_str().expect("utf-8 path");
    let (status, stdout, stderr) = run(tool, &["verify", unit]);
    assert!(
        status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stdout}{stderr}"
    );

    let text = std::fs::read_to_string(unit).expect("unit");
    for line in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WatchdogSec=30",
        "DynamicUser=yes",
        "StateDirectory=ctdns",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "ProtectSystem=strict",
        "SystemCallFilter=@system-service",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "MemoryDenyWriteExecute=yes",
        "UMask=0077",
    ] {
        assert!(text.lines().any(|l| l == line), "the unit lacks `{line}`");
    }

    // Exposure as README states it: "1.8 OK" (0 = locked down, 10 = fully exposed).
    let (status, stdout, stderr) = run(tool, &["security", "--offline=true", unit]);
    assert!(
        status.success(),
        "systemd-analyze security: {stdout}{stderr}"
    );
    let overall = stdout
        .lines()
        .chain(stderr.lines())
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall exposure level: {stdout}{stderr}"));
    let level: f64 = overall
        .rsplit(':')
        .next()
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unreadable: {overall}"));
    assert!(level <= 2.0, "exposure rose: {overall}");
    let readme = std::fs::read_to_string(repo_file("README.md")).expect("README");
    assert!(
        readme.contains(&format!("exposure level {level:.1}")),
        "README states the exposure level ({overall})"
    );
}

#[test]
fn the_production_config_is_the_builtin_upstreams_with_evidence_in_the_state_directory() {
    let path = repo_file("contrib/ctdns.toml");
    let config = ctdns::config::Config::from_file(&path).expect("contrib/ctdns.toml loads");
    config.validate().expect("contrib/ctdns.toml is valid");
    let builtin = ctdns::config::Config::default();
    assert_eq!(config.upstreams, builtin.upstreams);
    assert_eq!(config.listen, builtin.listen);
    assert!(
        config.listen_is_builtin,
        "listen left to the built-in default"
    );
    assert_eq!(
        config.evidence.dir.as_deref(),
        Some(Path::new("/var/lib/ctdns/evidence"))
    );
    assert_eq!(config.user, None, "DynamicUser= runs ctdns unprivileged");
    // ctdns itself accepts it (what `ctdns config show` prints).
    let (status, stdout, stderr) = run(
        child::binary(),
        &[
            "config",
            "show",
            "--config",
            path.to_str().expect("utf-8 path"),
        ],
    );
    assert!(status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("dir = \"/var/lib/ctdns/evidence\""),
        "{stdout}"
    );
}
