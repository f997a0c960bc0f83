//! `ctdns serve` startup hardening, as a process: an unsafe evidence directory is a startup
//! error naming `evidence.dir`; root on a non-loopback address needs `user` or `allow_root`;
//! with `user = "nobody"` the process drops to nobody's uid and gid with no supplementary
//! groups after binding, and still answers. Everything stays on loopback: the only upstream
//! is a closed loopback port (every query is answered SERVFAIL).

#[path = "common/ctdns.rs"]
mod child;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use child::{query, udp_exchange, Ctdns};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// A loopback TCP port with nothing listening on it.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A config file in `dir`: `top` (top-level keys), listen on `listen`, and one DoT upstream on
/// a closed loopback port.
fn config(dir: &Path, top: &str, listen: &str, evidence: Option<&Path>) -> PathBuf {
    let evidence = evidence
        .map(|p| format!("[evidence]\ndir = {:?}\n\n", p.display().to_string()))
        .unwrap_or_default();
    let text = format!(
        "{top}\nlisten = [\"{listen}\"]\nquery_timeout_ms = 1000\n\n{evidence}\
         [[upstream]]\nprotocol = \"dot\"\nip = \"127.0.0.1\"\nport = {}\n",
        closed_port()
    );
    let path = dir.join("ctdns.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Run `ctdns serve --config CONFIG` expecting it to exit on its own within 15 s; returns
/// (exit code, stderr). A process still running then is killed and the test fails.
fn serve_expecting_exit(config: &Path) -> (Option<i32>, String) {
    let dir = config.parent().unwrap();
    let err_path = dir.join("stderr.log");
    let err = std::fs::File::create(&err_path).unwrap();
    let mut proc = Command::new(child::binary())
        .args(["serve", "--config", config.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = proc.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = proc.kill();
            let _ = proc.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let status = status.unwrap_or_else(|| panic!("ctdns serve kept running; stderr:\n{stderr}"));
    (status.code(), stderr)
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn an_evidence_directory_writable_by_others_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let evidence = dir.path().join("evidence");
    std::fs::create_dir(&evidence).unwrap();
    std::fs::set_permissions(&evidence, std::fs::Permissions::from_mode(0o777)).unwrap();
    let cfg = config(dir.path(), "", "127.0.0.1:0", Some(&evidence));
    let (code, stderr) = serve_expecting_exit(&cfg);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("evidence.dir"), "{stderr}");
    assert!(stderr.contains("group or others"), "{stderr}");
    assert!(stderr.contains(&evidence.display().to_string()), "{stderr}");

    // A missing directory is created private, and ctdns starts.
    let fresh = dir.path().join("fresh-evidence");
    let cfg = config(dir.path(), "", "127.0.0.1:0", Some(&fresh));
    let mut server = Ctdns::serve(
        &["--config", cfg.to_str().unwrap()],
        &dir.path().join("ctdns.log"),
    );
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    assert!(server.terminate().success());
}

#[test]
fn root_on_a_non_loopback_address_needs_user_or_allow_root() {
    let dir = tempfile::tempdir().unwrap();
    if is_root() {
        // Refused before anything is bound.
        let addr = format!("0.0.0.0:{}", closed_port());
        let cfg = config(dir.path(), "", &addr, None);
        let (code, stderr) = serve_expecting_exit(&cfg);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("allow_root"), "{stderr}");
        assert!(stderr.contains(&addr), "{stderr}");
        // An unknown user is a configuration error naming the key.
        let cfg = config(
            dir.path(),
            "user = \"no-such-user-ctdns\"",
            "127.0.0.1:0",
            None,
        );
        let (code, stderr) = serve_expecting_exit(&cfg);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("`user`"), "{stderr}");
    } else {
        // Not root: switching user is impossible, and said so.
        let cfg = config(dir.path(), "user = \"nobody\"", "127.0.0.1:0", None);
        let (code, stderr) = serve_expecting_exit(&cfg);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("not running as root"), "{stderr}");
    }
}

/// `Key:` line of a /proc status file, as whitespace-separated fields.
fn status_fields(status: &str, key: &str) -> Vec<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} line in:\n{status}"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn serve_drops_to_the_configured_user_after_binding_and_still_answers() {
    if !is_root() {
        // Covered by root_on_a_non_loopback_address_needs_user_or_allow_root.
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), "user = \"nobody\"", "127.0.0.1:0", None);
        assert_eq!(serve_expecting_exit(&cfg).0, Some(2));
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("a nobody user");
    let (uid, gid) = (nobody.uid.to_string(), nobody.gid.to_string());
    let dir = tempfile::tempdir().unwrap();
    // The evidence directory must belong to the user ctdns runs as after the drop.
    let evidence = dir.path().join("evidence");
    std::fs::create_dir(&evidence).unwrap();
    std::fs::set_permissions(&evidence, std::fs::Permissions::from_mode(0o700)).unwrap();
    // Still root's: refused, after the drop, naming evidence.dir and the owner rule.
    let cfg = config(
        dir.path(),
        "user = \"nobody\"",
        "127.0.0.1:0",
        Some(&evidence),
    );
    let (code, stderr) = serve_expecting_exit(&cfg);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("evidence.dir"), "{stderr}");
    assert!(stderr.contains("owned by uid 0"), "{stderr}");

    std::os::unix::fs::chown(&evidence, Some(nobody.uid.as_raw()), None).unwrap();
    // nobody must be able to reach the directory through the (root-owned 0700) tempdir.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let mut server = Ctdns::serve(
        &["--config", cfg.to_str().unwrap()],
        &dir.path().join("ctdns.log"),
    );
    let pid = server.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(
        status_fields(&status, "Uid:"),
        vec![uid.clone(); 4],
        "{status}"
    );
    assert_eq!(
        status_fields(&status, "Gid:"),
        vec![gid.clone(); 4],
        "{status}"
    );
    assert!(status_fields(&status, "Groups:").is_empty(), "{status}");
    // Every thread, not just the main one (the runtime's workers predate the drop).
    let mut threads = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
        assert_eq!(
            status_fields(&status, "Uid:"),
            vec![uid.clone(); 4],
            "{status}"
        );
        assert_eq!(
            status_fields(&status, "Gid:"),
            vec![gid.clone(); 4],
            "{status}"
        );
        assert!(status_fields(&status, "Groups:").is_empty(), "{status}");
        threads += 1;
    }
    assert!(threads > 1, "the runtime has worker threads");

    // Still answers: the only upstream is closed, so SERVFAIL, within the query timeout.
    let answer = udp_exchange(
        server.addr,
        &query(0x4242, "example.test.", RecordType::A, true),
        Duration::from_secs(10),
    );
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
    let log = server.log();
    assert!(log.contains("running unprivileged"), "{log}");
    assert!(server.terminate().success());
}
