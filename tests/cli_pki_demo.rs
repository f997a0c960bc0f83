//! `ctdns pki` and `ctdns demo`, run as the built binary; and the `ctdns pki` chain served by
//! a real Debian unbound, queried through the configuration the generated README suggests.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ctdns::config::Config;
use ctdns::ct::log_list::LogList;
use ctdns::upstream::{Transport, UpstreamError};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[path = "common/unbound.rs"]
#[allow(dead_code)]
mod unbound;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const EXIT_OK: i32 = 0;
const EXIT_REFUSED: i32 = 1;
const EXIT_BAD_INPUT: i32 = 2;

/// Every file `ctdns pki --rogue` writes.
const PKI_FILES: &[&str] = &[
    "ca.pem",
    "chain.pem",
    "key.pem",
    "log_list.json",
    "rogue_ca.pem",
    "rogue_chain.pem",
    "rogue_key.pem",
    "pins.txt",
    "README.txt",
];

fn ctdns(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ctdns"))
        .args(args)
        .output()
        .expect("run the ctdns binary")
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// Run `ctdns pki --out DIR --ip 127.0.0.1 --rogue` into a fresh temporary directory.
fn make_pki() -> Result<tempfile::TempDir, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let out = ctdns(&[
        "pki",
        "--out",
        path_str(dir.path()),
        "--ip",
        "127.0.0.1",
        "--rogue",
    ]);
    assert_eq!(code(&out), EXIT_OK, "{}", text(&out));
    Ok(dir)
}

fn pin(dir: &Path, label: &str) -> Result<String, Box<dyn std::error::Error>> {
    let pins = std::fs::read_to_string(dir.join("pins.txt"))?;
    let line = pins
        .lines()
        .find(|l| l.split_whitespace().next() == Some(label))
        .ok_or("label missing from pins.txt")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or("pin missing")?
        .to_string())
}

fn chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, Box<dyn std::error::Error>> {
    Ok(CertificateDer::pem_file_iter(path)?.collect::<Result<_, _>>()?)
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: &Path,
) -> Result<rustls::ServerConfig, Box<dyn std::error::Error>> {
    let provider = ctdns::provider::default_provider();
    Ok(rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, PrivateKeyDer::from_pem_file(key)?)?)
}

#[test]
fn demo_exits_0_and_shows_the_rogue_refused_by_issuer_pin_with_0_dns_bytes() {
    let out = ctdns(&["demo"]);
    let t = text(&out);
    assert_eq!(code(&out), EXIT_OK, "{t}");
    assert!(t.contains("issuer-pin"), "{t}");
    assert!(t.contains("ct-policy"), "{t}");
    // The narrative line for each refused upstream, and the rogue line of the table.
    assert!(
        t.contains("completed 0 TLS handshake(s) and received 0 DNS bytes"),
        "{t}"
    );
    let rogue_row = t
        .lines()
        .find(|l| l.trim_start().starts_with("rogue "))
        .unwrap_or_default();
    assert!(rogue_row.contains("refused: issuer-pin"), "{t}");
    assert!(rogue_row.split_whitespace().any(|w| w == "0"), "{t}");
    assert!(t.contains("PASS"), "{t}");
    assert!(t.contains("NOERROR 192.0.2.80"), "{t}");
    assert!(
        !t.contains("NOERROR 203.0.113.66"),
        "the rogue answer never reaches the client\n{t}"
    );
}

#[test]
fn demo_without_the_ct_case_runs_two_upstreams() {
    let out = ctdns(&["demo", "--no-ct-case"]);
    let t = text(&out);
    assert_eq!(code(&out), EXIT_OK, "{t}");
    assert!(t.contains("issuer-pin"), "{t}");
    assert!(!t.contains("one-operator"), "{t}");
}

#[test]
fn pki_writes_files_that_load_and_verify() -> TestResult {
    let dir = make_pki()?;
    let d = dir.path();
    for f in PKI_FILES {
        let meta = std::fs::metadata(d.join(f)).map_err(|e| format!("{f}: {e}"))?;
        assert!(meta.len() > 0, "{f} is empty");
    }

    // chain.pem: leaf (IP SAN 127.0.0.1) then its issuer.
    let honest = chain(&d.join("chain.pem"))?;
    assert_eq!(honest.len(), 2);
    let (_, leaf) = x509_parser::parse_x509_certificate(&honest[0])?;
    let (_, inter) = x509_parser::parse_x509_certificate(&honest[1])?;
    assert_eq!(leaf.issuer(), inter.subject());
    let san = leaf.subject_alternative_name()?.ok_or("no SAN")?;
    assert!(san.value.general_names.iter().any(|n| matches!(
        n,
        x509_parser::extensions::GeneralName::IPAddress(b) if *b == [127, 0, 0, 1]
    )));

    // The key matches the leaf: rustls checks it when loading, and refuses the other key.
    server_config(honest.clone(), &d.join("key.pem"))?;
    assert!(server_config(honest.clone(), &d.join("rogue_key.pem")).is_err());
    let rogue = chain(&d.join("rogue_chain.pem"))?;
    server_config(rogue, &d.join("rogue_key.pem"))?;

    // The log list parses with ctdns's own parser.
    let list = LogList::from_json(&std::fs::read(d.join("log_list.json"))?)?;
    assert!(list.logs().len() >= 3);

    let (chain_pem, ca, list_path) = (
        d.join("chain.pem"),
        d.join("ca.pem"),
        d.join("log_list.json"),
    );
    let honest_pin = pin(d, "honest-root")?;
    let base = |chain: &Path, roots: &Path| -> Vec<String> {
        [
            "verify",
            "--chain",
            path_str(chain),
            "--roots",
            path_str(roots),
            "--log-list",
            path_str(&list_path),
            "--ip",
            "127.0.0.1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = |args: Vec<String>| ctdns(&args.iter().map(String::as_str).collect::<Vec<_>>());

    let out = run(base(&chain_pem, &ca));
    assert_eq!(code(&out), EXIT_OK, "{}", text(&out));
    let mut pinned = base(&chain_pem, &ca);
    pinned.extend(["--pin".to_string(), honest_pin.clone()]);
    let out = run(pinned);
    assert_eq!(code(&out), EXIT_OK, "{}", text(&out));

    // Trusting both roots, the rogue chain is chain-valid and CT-compliant ...
    let both = d.join("both_roots.pem");
    std::fs::write(
        &both,
        [
            std::fs::read_to_string(&ca)?,
            std::fs::read_to_string(d.join("rogue_ca.pem"))?,
        ]
        .concat(),
    )?;
    let rogue_chain = d.join("rogue_chain.pem");
    let out = run(base(&rogue_chain, &both));
    assert_eq!(code(&out), EXIT_OK, "{}", text(&out));
    // ... and only the honest pin refuses it.
    let mut pinned = base(&rogue_chain, &both);
    pinned.extend(["--pin".to_string(), honest_pin]);
    let out = run(pinned);
    assert_eq!(code(&out), EXIT_REFUSED, "{}", text(&out));
    assert!(text(&out).contains("issuer-pin"), "{}", text(&out));
    // Trusting only the honest root, the rogue chain fails the chain rule already.
    let out = run(base(&rogue_chain, &ca));
    assert_eq!(code(&out), EXIT_REFUSED, "{}", text(&out));
    Ok(())
}

/// Private keys are 0600 from creation, and a symlink planted at a key's name (the names are
/// fixed) is replaced by the key file, never written through.
#[test]
fn pki_keys_are_private_and_planted_symlinks_are_not_followed() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir)?;
    let victim = dir.path().join("victim.conf");
    std::fs::write(&victim, b"precious")?;
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644))?;
    std::os::unix::fs::symlink(&victim, out_dir.join("key.pem"))?;
    std::os::unix::fs::symlink(&victim, out_dir.join("rogue_key.pem"))?;
    let out = ctdns(&[
        "pki",
        "--out",
        path_str(&out_dir),
        "--ip",
        "127.0.0.1",
        "--rogue",
    ]);
    assert_eq!(code(&out), EXIT_OK, "{}", text(&out));
    assert_eq!(std::fs::read(&victim)?, b"precious");
    assert_eq!(
        std::fs::metadata(&victim)?.permissions().mode() & 0o777,
        0o644
    );
    for key in ["key.pem", "rogue_key.pem"] {
        let meta = std::fs::symlink_metadata(out_dir.join(key))?;
        assert!(meta.file_type().is_file(), "{key} is a regular file");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{key}");
        PrivateKeyDer::from_pem_file(out_dir.join(key))?;
    }
    for public in ["ca.pem", "chain.pem"] {
        let mode = std::fs::metadata(out_dir.join(public))?
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o044,
            0o044,
            "{public} is readable by the server user"
        );
    }
    Ok(())
}

#[test]
fn pki_bad_arguments_exit_2() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out_dir = path_str(dir.path()).to_string();
    let a_file = dir.path().join("a-file");
    std::fs::write(&a_file, b"not a directory")?;
    let under_file = a_file.join("sub");
    let cases: Vec<Vec<&str>> = vec![
        vec!["pki", "--out", &out_dir],
        vec!["pki", "--ip", "127.0.0.1"],
        vec!["pki", "--out", &out_dir, "--ip", "not-an-ip"],
        vec!["pki", "--out", &out_dir, "--ip", "127.0.0.1", "--days", "0"],
        vec![
            "pki",
            "--out",
            &out_dir,
            "--ip",
            "127.0.0.1",
            "--days",
            "399",
        ],
        vec![
            "pki",
            "--out",
            &out_dir,
            "--ip",
            "127.0.0.1",
            "--days",
            "-5",
        ],
        vec![
            "pki",
            "--out",
            &out_dir,
            "--ip",
            "127.0.0.1",
            "--dns",
            "bad name",
        ],
        vec![
            "pki",
            "--out",
            &out_dir,
            "--ip",
            "127.0.0.1",
            "--dns",
            "10.0.0.1",
        ],
        vec!["pki", "--out", path_str(&under_file), "--ip", "127.0.0.1"],
        vec!["pki", "--out", &out_dir, "--ip", "127.0.0.1", "--bogus"],
    ];
    for args in cases {
        let out = ctdns(&args);
        assert_eq!(code(&out), EXIT_BAD_INPUT, "{args:?}\n{}", text(&out));
        assert!(!out.stderr.is_empty(), "{args:?}: a message on stderr");
    }
    // Only the file made above exists: bad input writes nothing.
    assert_eq!(std::fs::read_dir(dir.path())?.count(), 1);
    Ok(())
}

fn a_query(name: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name)?, RecordType::A));
    Ok(m.to_vec()?)
}

/// The config the README suggests, pointed at `port`.
fn readme_config(dir: &Path, port: u16) -> Result<Config, Box<dyn std::error::Error>> {
    let snippet = ctdns::cli::pki::config_snippet(
        dir,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        &pin(dir, "honest-root")?,
    );
    let readme = std::fs::read_to_string(dir.join("README.txt"))?;
    let abs = std::path::absolute(dir)?;
    let abs_snippet = ctdns::cli::pki::config_snippet(
        &abs,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        &pin(dir, "honest-root")?,
    );
    assert!(
        readme.contains(&abs_snippet),
        "README holds the config snippet"
    );
    let mut config = Config::from_toml(&snippet)?;
    config.upstreams[0].set_port(Some(port));
    config.query_timeout_ms = 3000;
    Ok(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbound_serves_dot_with_the_pki_chain_and_ctdns_accepts_it() -> TestResult {
    assert!(
        unbound::unbound_binary().is_some(),
        "unbound is not installed: this interop test needs Debian's unbound \
         (scripts/test.sh installs it: apt-get install unbound)"
    );
    let dir = make_pki()?;
    let d = dir.path().to_path_buf();
    let work: PathBuf = d.join("unbound-honest");
    std::fs::create_dir_all(&work)?;
    let (chain_pem, key_pem) = (d.join("chain.pem"), d.join("key.pem"));
    let ub = tokio::task::spawn_blocking(move || {
        unbound::Unbound::start(
            &work,
            &chain_pem,
            &key_pem,
            &["bank.test. 300 IN A 192.0.2.80"],
        )
    })
    .await?;

    let config = readme_config(&d, ub.dot.port())?;
    let trust = ctdns::runtime::Trust::from_config(&config)?;
    let pool = ctdns::runtime::pool(&config, &trust)?;
    let response = Message::from_vec(&pool.query(&a_query("bank.test.")?).await?)?;
    assert_eq!(response.metadata.id, 0x4242);
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    let addrs: Vec<Ipv4Addr> = response
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    assert_eq!(addrs, vec![Ipv4Addr::new(192, 0, 2, 80)]);
    drop(ub);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbound_serving_the_rogue_chain_is_refused_by_issuer_pin() -> TestResult {
    assert!(
        unbound::unbound_binary().is_some(),
        "unbound is not installed: this interop test needs Debian's unbound \
         (scripts/test.sh installs it: apt-get install unbound)"
    );
    let dir = make_pki()?;
    let d = dir.path().to_path_buf();
    let work: PathBuf = d.join("unbound-rogue");
    std::fs::create_dir_all(&work)?;
    let (chain_pem, key_pem) = (d.join("rogue_chain.pem"), d.join("rogue_key.pem"));
    let ub = tokio::task::spawn_blocking(move || {
        unbound::Unbound::start(
            &work,
            &chain_pem,
            &key_pem,
            &["bank.test. 300 IN A 203.0.113.66"],
        )
    })
    .await?;

    // The README config, but trusting both roots: the rogue chain is chain-valid and
    // CT-logged by two operators; only the pin on the honest root refuses it.
    let both = d.join("both_roots.pem");
    std::fs::write(
        &both,
        [
            std::fs::read_to_string(d.join("ca.pem"))?,
            std::fs::read_to_string(d.join("rogue_ca.pem"))?,
        ]
        .concat(),
    )?;
    let mut config = readme_config(&d, ub.dot.port())?;
    config.tls.roots = Some(both);
    let trust = ctdns::runtime::Trust::from_config(&config)?;
    let upstream = ctdns::runtime::transport(
        &trust,
        0,
        &config.upstreams[0],
        std::time::Duration::from_secs(3),
    )?;
    let err = upstream
        .query(&a_query("bank.test.")?)
        .await
        .expect_err("the rogue chain must be refused");
    let UpstreamError::Refused { refusal, .. } = &err else {
        panic!("expected a certificate refusal, got {err}");
    };
    let refusal = &refusal.refusal;
    assert_eq!(refusal.rule(), "issuer-pin", "{refusal}");

    // Without the pin, the same unbound is accepted: the pin is what refused it.
    config.upstreams[0].pins_mut().clear();
    let trust = ctdns::runtime::Trust::from_config(&config)?;
    let unpinned = ctdns::runtime::transport(
        &trust,
        0,
        &config.upstreams[0],
        std::time::Duration::from_secs(3),
    )?;
    let response = Message::from_vec(&unpinned.query(&a_query("bank.test.")?).await?)?;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    drop(ub);
    Ok(())
}

#[test]
fn pki_ocsp_delivers_the_scts_in_a_stapled_response() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let out = ctdns(&[
        "pki",
        "--out",
        path_str(d),
        "--ip",
        "192.0.2.53",
        "--ip",
        "2001:db8::53",
        "--dns",
        "dns.example.test",
        "--ocsp",
        "--days",
        "200",
    ]);
    assert_eq!(code(&out), EXIT_OK, "{}", text(&out));
    assert!(d.join("ocsp.der").exists());
    let verify = |ip: &str, ocsp: bool| {
        let mut args = vec![
            "verify".to_string(),
            "--chain".into(),
            path_str(&d.join("chain.pem")).into(),
            "--roots".into(),
            path_str(&d.join("ca.pem")).into(),
            "--log-list".into(),
            path_str(&d.join("log_list.json")).into(),
            "--ip".into(),
            ip.into(),
            "--name".into(),
            "dns.example.test".into(),
        ];
        if ocsp {
            args.extend(["--ocsp".into(), path_str(&d.join("ocsp.der")).into()]);
        }
        ctdns(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    for ip in ["192.0.2.53", "2001:db8::53"] {
        let out = verify(ip, true);
        assert_eq!(code(&out), EXIT_OK, "{ip}: {}", text(&out));
    }
    // Without the stapled response there is no SCT at all: refused by the CT policy.
    let out = verify("192.0.2.53", false);
    assert_eq!(code(&out), EXIT_REFUSED, "{}", text(&out));
    assert!(text(&out).contains("ct-policy"), "{}", text(&out));
    // An IP the certificate does not carry is refused by the IP SAN rule.
    let out = verify("192.0.2.54", true);
    assert_eq!(code(&out), EXIT_REFUSED, "{}", text(&out));
    assert!(text(&out).contains("ip-san"), "{}", text(&out));
    Ok(())
}
