//! `ctdns serve` as a process, without any resolver to talk to: the built-in default
//! configuration (Cloudflare and Quad9 over DoT) on a machine without internet access must
//! start, answer SERVFAIL within its query timeout rather than hang or crash, never fall
//! back to plain DNS, and stop cleanly on SIGTERM. Startup errors exit with the documented
//! codes and messages.

#[path = "common/ctdns.rs"]
mod child;

use std::collections::HashSet;
use std::time::Duration;

use child::{query, run, udp_exchange, Ctdns};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// Remote (address, port) pairs of the TCP and UDP sockets `pid` holds, from /proc.
fn remote_endpoints(pid: u32) -> HashSet<(String, u16)> {
    let mut inodes = HashSet::new();
    if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let t = target.to_string_lossy().into_owned();
                if let Some(inode) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                    inodes.insert(inode.to_string());
                }
            }
        }
    }
    let mut out = HashSet::new();
    for table in ["tcp", "tcp6", "udp", "udp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(remote), Some(inode)) = (cols.get(2), cols.get(9)) else {
                continue;
            };
            if !inodes.contains(*inode) {
                continue;
            }
            let Some((addr, port)) = remote.split_once(':') else {
                continue;
            };
            let port = u16::from_str_radix(port, 16).unwrap_or(0);
            if port != 0 {
                out.insert((addr.to_string(), port));
            }
        }
    }
    out
}

#[test]
fn default_config_without_network_answers_servfail_and_never_uses_plain_dns() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Ctdns::serve(&["--listen", "127.0.0.1:0"], &dir.path().join("ctdns.log"));
    let log = server.log();
    assert!(log.contains("upstream=dot://1.1.1.1:853"), "{log}");
    assert!(log.contains("upstream=dot://9.9.9.9:853"), "{log}");
    assert!(log.contains("CT log list"), "{log}");

    // Query over UDP while watching the sockets the process holds.
    let addr = server.addr;
    let pid = server.pid();
    let asker = std::thread::spawn(move || {
        udp_exchange(
            addr,
            &query(0x5151, "example.com.", RecordType::A, true),
            Duration::from_secs(15),
        )
    });
    let mut remotes = HashSet::new();
    while !asker.is_finished() {
        remotes.extend(remote_endpoints(pid));
        std::thread::sleep(Duration::from_millis(5));
    }
    let answer = asker.join().expect("the UDP query thread");
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
    assert!(answer.answers.is_empty());
    // Whatever it tried to reach, it was port 853 (DoT), never 53.
    assert!(
        remotes.iter().all(|(_, port)| *port == 853),
        "unexpected peers: {remotes:?}"
    );

    // TCP too, and the process is still alive after both.
    let (status, stdout, _) = run(
        "dig",
        &[
            "@127.0.0.1",
            "-p",
            &addr.port().to_string(),
            "+tcp",
            "+time=15",
            "+tries=1",
            "example.com",
            "A",
        ],
    );
    assert!(status.success(), "{stdout}");
    assert!(stdout.contains("status: SERVFAIL"), "{stdout}");
    assert!(server.alive(), "ctdns died; log:\n{}", server.log());
    assert!(
        remote_endpoints(pid).iter().all(|(_, port)| *port == 853),
        "a non-DoT peer"
    );

    let status = server.terminate();
    assert!(status.success(), "exit after SIGTERM: {status:?}");
    let log = server.log();
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("signal=\"SIGTERM\""), "{log}");
    assert!(log.contains("ctdns stopped"), "{log}");
}

#[test]
fn json_log_format_writes_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Ctdns::serve(
        &[
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--no-cache",
        ],
        &dir.path().join("ctdns.log"),
    );
    assert!(server.terminate().success());
    let log = server.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let starting = lines
        .iter()
        .find(|l| l["fields"]["message"] == "ctdns starting")
        .expect("a starting line");
    assert_eq!(starting["level"], "INFO");
    assert_eq!(starting["fields"]["cache"], false);
    assert!(lines
        .iter()
        .any(|l| l["fields"]["message"] == "ctdns listening"));
}

#[test]
fn config_errors_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[[upstream]]\nprotocol = \"dot\"\nport = 853\n").unwrap();
    let (status, _, stderr) = run(
        child::binary(),
        &["serve", "--config", path.to_str().unwrap()],
    );
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("upstream[0].ip"), "{stderr}");

    std::fs::write(&path, "[log]\nlevel = \"ctdns=loud\"\n").unwrap();
    let (status, _, stderr) = run(
        child::binary(),
        &[
            "serve",
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("log.level"), "{stderr}");

    let (status, _, stderr) = run(
        child::binary(),
        &[
            "serve",
            "--config",
            dir.path().join("missing.toml").to_str().unwrap(),
        ],
    );
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("missing.toml"), "{stderr}");
}

#[test]
fn a_taken_port_exits_1_with_advice() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (status, _, stderr) = run(child::binary(), &["serve", "--listen", &addr]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&addr), "{stderr}");
    assert!(stderr.contains("address in use"), "{stderr}");
    assert!(stderr.contains("--listen"), "{stderr}");
}
