//! `ctdns serve` as a process, without any resolver to talk to: the built-in default
//! configuration (Cloudflare and Quad9 over DoT) on a machine without internet access must
//! start, answer SERVFAIL within its query timeout rather than hang or crash, never fall
//! back to plain DNS, and stop cleanly on SIGTERM. Startup errors exit with the documented
//! codes and messages.

#[path = "common/ctdns.rs"]
mod child;

use std::collections::HashSet;
use std::time::Duration;

use child::{run, Ctdns};

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

/// `dig` run inside the network namespace of process `pid`.
fn dig_in(pid: u32, args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let pid = pid.to_string();
    let mut all = vec!["--target", pid.as_str(), "--net", "--", "dig"];
    all.extend_from_slice(args);
    run("nsenter", &all)
}

// The built-in default dials 1.1.1.1 and 9.9.9.9: it runs in a network namespace with only
// loopback, so nothing leaves the machine and every upstream is unreachable at once.
#[test]
fn default_config_without_network_answers_servfail_and_never_uses_plain_dns() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Ctdns::serve_isolated(
        &["--listen", "127.0.0.1:0"],
        &dir.path().join("ctdns.log"),
        true,
    );
    let log = server.log();
    assert!(log.contains("upstream=dot://1.1.1.1:853"), "{log}");
    assert!(log.contains("upstream=dot://9.9.9.9:853"), "{log}");
    assert!(log.contains("CT log list"), "{log}");

    // The startup report: one line per upstream, then one ERROR that none is usable.
    let log = server.wait_for_log("NO UPSTREAM IS USABLE");
    assert!(log.contains("NO UPSTREAM IS USABLE"), "{log}");
    for up in ["1.1.1.1", "1.0.0.1", "9.9.9.9", "149.112.112.112"] {
        assert!(
            log.lines()
                .any(|l| l.contains("startup check: upstream unreachable")
                    && l.contains(&format!("dot://{up}:853"))),
            "{up}: {log}"
        );
    }

    // Query over UDP while watching the sockets the process holds.
    let port = server.addr.port().to_string();
    let pid = server.pid();
    let asker = {
        let port = port.clone();
        std::thread::spawn(move || {
            dig_in(
                pid,
                &[
                    "@127.0.0.1",
                    "-p",
                    &port,
                    "+time=15",
                    "+tries=1",
                    "example.com",
                    "A",
                ],
            )
        })
    };
    let mut remotes = HashSet::new();
    while !asker.is_finished() {
        remotes.extend(remote_endpoints(pid));
        std::thread::sleep(Duration::from_millis(5));
    }
    let (status, stdout, _) = asker.join().expect("the UDP query thread");
    assert!(status.success(), "{stdout}");
    assert!(stdout.contains("status: SERVFAIL"), "{stdout}");
    assert!(stdout.contains("ANSWER: 0"), "{stdout}");
    // Whatever it tried to reach, it was port 853 (DoT), never 53.
    assert!(
        remotes.iter().all(|(_, port)| *port == 853),
        "unexpected peers: {remotes:?}"
    );

    // TCP too, and the process is still alive after both.
    let (status, stdout, _) = dig_in(
        pid,
        &[
            "@127.0.0.1",
            "-p",
            &port,
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

// A container or hardened host without IPv6: `ctdns serve` with no arguments skips the
// built-in [::1]:53 with one WARN and serves on 127.0.0.1:53.
#[test]
fn no_arguments_start_on_a_host_without_ipv6() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Ctdns::serve_isolated(&[], &dir.path().join("ctdns.log"), false);
    assert_eq!(server.addr, "127.0.0.1:53".parse().unwrap());
    let log = server.log();
    let warns: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("not listening on [::1]:53"))
        .collect();
    assert_eq!(warns.len(), 1, "{log}");
    let (status, stdout, _) = server.in_netns(
        "dig",
        &["@127.0.0.1", "+time=10", "+tries=1", "example.com", "A"],
    );
    assert!(status.success(), "{stdout}");
    assert!(stdout.contains("status: SERVFAIL"), "{stdout}");
    assert!(server.terminate().success());
}

// An address the user lists must work: on the same host, `--listen [::1]:5353` (or a
// config file listing [::1]) exits 1 naming the address.
#[test]
fn an_explicit_ipv6_listen_fails_on_a_host_without_ipv6() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ctdns.toml");
    std::fs::write(&config, "listen = [\"127.0.0.1:5353\", \"[::1]:5353\"]\n").unwrap();
    let script = "ip link set lo up && sysctl -qw net.ipv6.conf.all.disable_ipv6=1 && \
                  sysctl -qw net.ipv6.conf.lo.disable_ipv6=1 && exec \"$@\"";
    for args in [
        vec!["--listen", "[::1]:5353"],
        vec!["--config", config.to_str().unwrap()],
    ] {
        let mut all = vec![
            "--net",
            "--",
            "sh",
            "-c",
            script,
            "sh",
            child::binary(),
            "serve",
        ];
        all.extend(args.iter().copied());
        let (status, _, stderr) = run("unshare", &all);
        assert_eq!(status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("[::1]:5353"), "{args:?}: {stderr}");
    }
}

#[test]
fn json_log_format_writes_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Ctdns::serve_isolated(
        &[
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--no-cache",
        ],
        &dir.path().join("ctdns.log"),
        true,
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

    // Keys that only a DoH upstream has, a DoH upstream without its URL, and bad values
    // further down the list: refused when the file is read, naming the key of the entry.
    // (The first entry alone loads: `good` is checked below, so each case fails for its own
    // key.)
    let good = "[[upstream]]\nip = \"127.0.0.1\"\nport = 1\n";
    for (doc, key) in [
        (
            format!("{good}[[upstream]]\nip = \"127.0.0.1\"\nurl = \"https://127.0.0.1/q\"\n"),
            "config key `upstream[1].url`: only for protocol = \"doh\"",
        ),
        (
            format!("{good}[[upstream]]\nprotocol = \"doh\"\nip = \"127.0.0.1\"\n"),
            "config key `upstream[1].url`: required for a DoH upstream",
        ),
        (
            format!("{good}[[upstream]]\nprotocol = \"quic\"\nip = \"127.0.0.1\"\n"),
            "config key `upstream[1].protocol`",
        ),
        (
            format!("{good}[[upstream]]\nip = \"127.0.0.1\"\nname = \"-x-.\"\npins = []\n"),
            "config key `upstream[1].name`",
        ),
        (
            format!("{good}[tls]\ndeny_spki = [\"AAAA\"]\n"),
            "config key `tls.deny_spki[0]`",
        ),
        (
            format!("{good}[ct]\npolicy = \"edge\"\n"),
            "config key `ct.policy`",
        ),
    ] {
        std::fs::write(&path, &doc).unwrap();
        // `config show` reads the file as `serve` does, and exits whether or not it loads.
        let (status, _, stderr) = run(
            child::binary(),
            &["config", "show", "--config", path.to_str().unwrap()],
        );
        assert_eq!(status.code(), Some(2), "{doc}: {stderr}");
        assert!(stderr.contains(key), "{doc}: {stderr}");
    }
    std::fs::write(&path, good).unwrap();
    let (status, shown, stderr) = run(
        child::binary(),
        &["config", "show", "--config", path.to_str().unwrap()],
    );
    assert!(status.success(), "{stderr}");
    assert!(shown.contains("port = 1\n"), "{shown}");

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

#[test]
fn config_show_prints_the_builtin_pin_sets() {
    let (status, stdout, stderr) = run(child::binary(), &["config", "show", "--json"]);
    assert!(status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let pins = |i: usize| -> Vec<String> {
        v["upstream"][i]["pins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(v["upstream"][0]["ip"], "1.1.1.1");
    // Cloudflare: SSL.com ECC (serving) first; Quad9: DigiCert G3 first.
    assert_eq!(pins(0)[0], "oyD01TTXvpfBro3QSZc1vIlcMjrdLTiL/M9mLCPX+Zo=");
    assert_eq!(pins(2)[0], "uUwZgwDOxcBXrQcntwu+kYFpkiVkOaezL0WYEZ3anJc=");
    assert_eq!(v["upstream"][3]["port"], 853);

    // The TOML form, read back by `serve --config`, is the same configuration.
    let (status, toml, _) = run(child::binary(), &["config", "show"]);
    assert!(status.success());
    assert!(toml.contains("revisit by 2026-12-21"), "{toml}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shown.toml");
    std::fs::write(&path, &toml).unwrap();
    let (status, again, stderr) = run(
        child::binary(),
        &[
            "config",
            "show",
            "--json",
            "--config",
            path.to_str().unwrap(),
        ],
    );
    assert!(status.success(), "{stderr}");
    assert_eq!(again, stdout);

    std::fs::write(&path, "[[upstream]]\nip = \"1.1.1.1\"\npins = [\"xx\"]\n").unwrap();
    let (status, _, stderr) = run(
        child::binary(),
        &["config", "show", "--config", path.to_str().unwrap()],
    );
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("upstream[0].pins[0]"), "{stderr}");
}
