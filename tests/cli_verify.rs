//! `ctdns verify` through the built binary: exit codes (0 accepted, 1 refused, 2 bad input
//! or usage), the `--json` object, the human report, PEM with text dumps, DER chains, a
//! real chain against webpki-roots, and the test PKI's files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ctdns::pki::{
    build_ocsp_response_with, default_logs, write_files, IssuedLeaf, OcspSigner, OcspSpec, SctSpec,
    TestPki, WrittenFiles,
};
use ctdns::tls::pins::CertFingerprint;
use serde_json::Value;

const REAL: &str = "real/rustls-bench";
/// After duckduckgo's issuance (2025-11-19), before its expiry (2026-12-20).
const AT: &str = "2026-01-15T00:00:00Z";

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ct-vectors")
}

fn read_vector(rel: &str) -> Vec<u8> {
    let path = vectors().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ctdns(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ctdns"))
        .args(args)
        .output()
        .expect("run ctdns")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Run with `--json`; assert the exit code; return the object.
fn json(args: &[&str], want_code: i32) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = ctdns(&all);
    assert_eq!(
        code(&out),
        want_code,
        "{args:?}\nstdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON: {e}"))
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// An `openssl x509 -text`-style dump before each block, and a trailing note; the first
/// line starts with `0` (byte 0x30, the DER SEQUENCE tag).
fn pem_with_text(certs: &[Vec<u8>]) -> String {
    let mut out = String::new();
    for (i, der) in certs.iter().enumerate() {
        out.push_str(&format!(
            "{i} s:certificate {i} of the chain\nCertificate:\n    Data:\n        Version: 3 (0x2)\n        \
             Serial Number:\n            02:65:69:69\n        Signature Algorithm: sha256WithRSAEncryption\n        \
             Validity\n            Not Before: Nov 19 00:00:00 2025 GMT\n    Signature Value:\n        \
             30:82:01:0a:02:82\n"
        ));
        out.push_str(&pem("CERTIFICATE", der));
    }
    out.push_str("--- end of chain (saved by hand) ---\n");
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

fn duckduckgo() -> Vec<Vec<u8>> {
    (0..2)
        .map(|i| read_vector(&format!("{REAL}/cert-duckduckgo.{i}.der")))
        .collect()
}

// ---------------------------------------------------------------------------------------
// A real chain against webpki-roots and the bundled log list.
// ---------------------------------------------------------------------------------------

#[test]
fn real_chain_pem_with_text_is_accepted_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let chain = duckduckgo();
    let file = write(dir.path(), "ddg.pem", pem_with_text(&chain).as_bytes());

    let out = ctdns(&["verify", "--chain", &file, "--at", AT]);
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}\n{}", stderr(&out));
    assert!(text.contains("VERDICT: ACCEPTED"), "{text}");
    assert!(text.contains("SCTs:"), "{text}");
    assert!(
        text.contains("signature") && text.contains("counted"),
        "SCT table header: {text}"
    );
    for log in ["Argon2026h2", "Wyvern2026h2", "Sphinx2026h2"] {
        let row = text
            .lines()
            .find(|l| l.contains(log))
            .unwrap_or_else(|| panic!("no SCT row for {log}: {text}"));
        assert!(row.trim_start().starts_with("embedded"), "{row}");
        assert!(row.contains(" valid ") && row.ends_with("yes"), "{row}");
    }
    assert!(text.contains("CT policy: compliant"), "{text}");
    assert!(text.contains("*.duckduckgo.com"), "{text}");
    // Both dates of the bundled list, and an age counted from its data date.
    let list_line = text
        .lines()
        .find(|l| l.starts_with("CT log list:"))
        .unwrap_or_else(|| panic!("no log list line: {text}"));
    assert!(list_line.contains("ctdns-2026.11.2"), "{list_line}");
    assert!(list_line.contains("curated 2026-11-26"), "{list_line}");
    assert!(list_line.contains("data from 2026-08-21"), "{list_line}");

    let v = json(&["verify", "--chain", &file, "--at", AT], 0);
    assert_eq!(v["log_list"]["timestamp"], "2026-11-26T00:00:00Z");
    assert_eq!(v["log_list"]["data_timestamp"], "2026-08-21T00:00:00Z");
    assert_eq!(v["accepted"], Value::Bool(true));
    assert_eq!(v["refusal"], Value::Null);
    let scts = v["scts"].as_array().unwrap();
    assert_eq!(scts.len(), 3);
    for s in scts {
        assert_eq!(s["source"], "embedded");
        assert_eq!(s["signature"]["status"], "valid");
        assert_eq!(s["counted"], Value::Bool(true));
        assert_eq!(B64.decode(s["log_id"].as_str().unwrap()).unwrap().len(), 32);
    }
    let certs = v["chain"].as_array().unwrap();
    assert_eq!(certs.len(), 2);
    assert!(certs[0]["subject"]
        .as_str()
        .unwrap()
        .contains("*.duckduckgo.com"));
    assert_eq!(certs[0]["issuer"], certs[1]["subject"]);
    assert!(certs[1]["issuer"]
        .as_str()
        .unwrap()
        .contains("DigiCert Global Root G2"));
    // The chain's SPKI pins are what --pin takes; the issuer's is also a path pin.
    let issuer_pin = certs[1]["spki_sha256"].as_str().unwrap();
    assert_eq!(B64.decode(issuer_pin).unwrap().len(), 32);
    let path_pins: Vec<&str> = v["path_pins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(path_pins.len(), 2);
    assert_eq!(path_pins[0], issuer_pin);

    // Pinning the issuer accepts; the anchor (root) pin in the printed form too.
    let root_pin = format!("sha256/{}", path_pins[1]);
    for pin in [issuer_pin, root_pin.as_str()] {
        let v = json(&["verify", "--chain", &file, "--at", AT, "--pin", pin], 0);
        assert_eq!(v["accepted"], Value::Bool(true), "{pin}");
    }
    // The leaf's own SPKI is not a CA of the path: issuer-pin.
    let leaf_pin = certs[0]["spki_sha256"].as_str().unwrap();
    let v = json(
        &["verify", "--chain", &file, "--at", AT, "--pin", leaf_pin],
        1,
    );
    assert_eq!(v["refusal"], "issuer-pin");

    // The DNS name rule.
    let v = json(
        &[
            "verify",
            "--chain",
            &file,
            "--at",
            AT,
            "--name",
            "duckduckgo.com",
        ],
        0,
    );
    assert_eq!(v["accepted"], Value::Bool(true));
    let out = ctdns(&[
        "verify",
        "--chain",
        &file,
        "--at",
        AT,
        "--name",
        "github.com",
    ]);
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains("VERDICT: REFUSED (dns-name)"),
        "{}",
        stdout(&out)
    );
    // A real certificate has no IP SAN.
    let v = json(
        &["verify", "--chain", &file, "--at", AT, "--ip", "1.1.1.1"],
        1,
    );
    assert_eq!(v["refusal"], "ip-san");
    // After expiry: chain.
    let v = json(
        &["verify", "--chain", &file, "--at", "2027-01-15T00:00:00Z"],
        1,
    );
    assert_eq!(v["refusal"], "chain");
    // The audit goes on: the SCTs are checked against the presented issuer.
    assert_eq!(v["ct_issuer"], "presented_chain");
    assert_eq!(v["scts"].as_array().unwrap().len(), 3);
}

#[test]
fn der_chains_and_der_roots_converted_to_pem() {
    let dir = tempfile::tempdir().unwrap();
    let chain = duckduckgo();
    let both = write(
        dir.path(),
        "ddg.der",
        &[chain[0].clone(), chain[1].clone()].concat(),
    );
    let v = json(&["verify", "--chain", &both, "--at", AT], 0);
    assert_eq!(v["accepted"], Value::Bool(true));
    assert_eq!(v["chain"].as_array().unwrap().len(), 2);

    // The leaf alone: the intermediate is missing, so the chain does not verify.
    let leaf = write(dir.path(), "leaf.der", &chain[0]);
    let v = json(&["verify", "--chain", &leaf, "--at", AT], 1);
    assert_eq!(v["refusal"], "chain");
    assert_eq!(v["accepted"], Value::Bool(false));

    // Own roots: the DER root converted to PEM here (the loader takes PEM only).
    let root_der = read_vector(&format!("{REAL}/cert-duckduckgo.2.der"));
    let root_pem = write(
        dir.path(),
        "root.pem",
        pem("CERTIFICATE", &root_der).as_bytes(),
    );
    let v = json(
        &["verify", "--chain", &both, "--at", AT, "--roots", &root_pem],
        0,
    );
    assert_eq!(v["accepted"], Value::Bool(true));
    // Another root (Amazon's, from the arstechnica chain) does not anchor it.
    let other = read_vector(&format!("{REAL}/cert-arstechnica.2.der"));
    let other_pem = write(
        dir.path(),
        "other.pem",
        pem("CERTIFICATE", &other).as_bytes(),
    );
    let v = json(
        &[
            "verify", "--chain", &both, "--at", AT, "--roots", &other_pem,
        ],
        1,
    );
    assert_eq!(v["refusal"], "chain");
    // A DER roots file is bad input.
    let der_root = write(dir.path(), "root.der", &root_der);
    let out = ctdns(&["verify", "--chain", &both, "--at", AT, "--roots", &der_root]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

#[test]
fn real_chain_relying_on_rejected_logs_is_refused_with_the_bundled_list() {
    let dir = tempfile::tempdir().unwrap();
    let chain: Vec<Vec<u8>> = (0..2)
        .map(|i| read_vector(&format!("{REAL}/cert-github.{i}.der")))
        .collect();
    let file = write(dir.path(), "github.pem", pem_with_text(&chain).as_bytes());
    let out = ctdns(&["verify", "--chain", &file, "--at", "2026-02-01T00:00:00Z"]);
    let text = stdout(&out);
    assert_eq!(code(&out), 1, "{text}");
    assert!(text.contains("VERDICT: REFUSED (ct-policy)"), "{text}");
    assert!(text.contains("rejected"), "{text}");
    let v = json(
        &["verify", "--chain", &file, "--at", "2026-02-01T00:00:00Z"],
        1,
    );
    assert_eq!(v["refusal"], "ct-policy");
    for s in v["scts"].as_array().unwrap() {
        assert_eq!(s["signature"]["status"], "valid");
        assert_eq!(s["counted"], Value::Bool(false));
        assert_eq!(s["reason"]["rule"], "log_rejected");
    }
    // With Chrome's list of 2025-12 the same chain complies.
    let list = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/ct-vectors/loglists/chrome_log_list_v80.4_2025-12-23.json");
    let v = json(
        &[
            "verify",
            "--chain",
            &file,
            "--at",
            "2026-02-01T00:00:00Z",
            "--log-list",
            list.to_str().unwrap(),
        ],
        0,
    );
    assert_eq!(v["accepted"], Value::Bool(true));
}

/// The `rules` array of an audit: `(rule, result)` in order.
fn rules(v: &Value) -> Vec<(String, String)> {
    v["rules"]
        .as_array()
        .unwrap_or_else(|| panic!("no rules: {v}"))
        .iter()
        .map(|r| {
            (
                r["rule"].as_str().unwrap().to_string(),
                r["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The result of `rule` in the `rules` array.
fn result_of(v: &Value, rule: &str) -> String {
    rules(v)
        .into_iter()
        .find(|(r, _)| r == rule)
        .map(|(_, result)| result)
        .unwrap_or_else(|| panic!("no rule {rule}: {v}"))
}

const RULE_ORDER: [&str; 9] = [
    "chain",
    "ip-san",
    "dns-name",
    "revoked",
    "log-list-stale",
    "certificate",
    "ct-policy",
    "issuer-pin",
    "denylist",
];

/// Name mode: a website's chain audited offline with `--name` and no `--ip`; the IP SAN
/// rule is skipped (and said so), the SCTs are judged.
#[test]
fn website_chains_are_audited_offline_in_name_mode() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "ddg.pem",
        pem_with_text(&duckduckgo()).as_bytes(),
    );
    let args = [
        "verify",
        "--chain",
        &file,
        "--at",
        AT,
        "--name",
        "duckduckgo.com",
    ];
    let v = json(&args, 0);
    let order: Vec<String> = rules(&v).into_iter().map(|(r, _)| r).collect();
    assert_eq!(order, RULE_ORDER);
    assert_eq!(result_of(&v, "ip-san"), "skipped");
    let ip_rule = &v["rules"][1];
    assert!(
        ip_rule["reason"].as_str().unwrap().contains("name mode"),
        "{ip_rule}"
    );
    for rule in ["chain", "dns-name", "certificate", "ct-policy"] {
        assert_eq!(result_of(&v, rule), "passed", "{rule}");
    }
    assert_eq!(v["ct_issuer"], "verified_path");
    let out = ctdns(&args);
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}");
    assert!(
        text.contains("  ip-san          skipped: no IP address given (name mode)"),
        "{text}"
    );
    assert!(text.contains("  ct-policy       passed"), "{text}");

    // github.com's chain in name mode: its name holds, its SCTs are judged and refused
    // (its logs are rejected in the bundled list).
    let chain: Vec<Vec<u8>> = (0..2)
        .map(|i| read_vector(&format!("{REAL}/cert-github.{i}.der")))
        .collect();
    let file = write(dir.path(), "github.pem", pem_with_text(&chain).as_bytes());
    let v = json(
        &[
            "verify",
            "--chain",
            &file,
            "--at",
            "2026-02-01T00:00:00Z",
            "--name",
            "github.com",
        ],
        1,
    );
    assert_eq!(v["refusal"], "ct-policy");
    assert_eq!(result_of(&v, "ip-san"), "skipped");
    assert_eq!(result_of(&v, "dns-name"), "passed");
    assert_eq!(result_of(&v, "ct-policy"), "failed");
    assert_eq!(v["scts"].as_array().unwrap().len(), 2);
}

/// Every rule is reported after the first failure; the verdict (and the exit code) is the
/// first failed rule.
#[test]
fn the_audit_reports_every_rule_after_the_first_failure() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "ddg.pem",
        pem_with_text(&duckduckgo()).as_bytes(),
    );
    // Expired, no IP SAN, wrong name: three failures, then the SCTs (still valid).
    let args = [
        "verify",
        "--chain",
        &file,
        "--at",
        "2027-01-15T00:00:00Z",
        "--ip",
        "1.1.1.1",
        "--name",
        "github.com",
    ];
    let v = json(&args, 1);
    assert_eq!(v["refusal"], "chain");
    assert_eq!(
        rules(&v),
        [
            ("chain", "failed"),
            ("ip-san", "failed"),
            ("dns-name", "failed"),
            ("revoked", "skipped"),
            ("log-list-stale", "passed"),
            ("certificate", "passed"),
            ("ct-policy", "passed"),
            ("issuer-pin", "skipped"),
            ("denylist", "skipped"),
        ]
        .map(|(r, o)| (r.to_string(), o.to_string()))
    );
    assert_eq!(v["rules"][0]["reason"], v["reason"]);
    assert_eq!(v["ct_issuer"], "presented_chain");
    for s in v["scts"].as_array().unwrap() {
        assert_eq!(s["signature"]["status"], "valid");
        assert_eq!(s["counted"], Value::Bool(true));
    }
    let out = ctdns(&args);
    let text = stdout(&out);
    assert_eq!(code(&out), 1, "{text}");
    assert!(text.contains("VERDICT: REFUSED (chain)"), "{text}");
    assert!(
        text.contains("  ip-san          FAILED: rule ip-san:"),
        "{text}"
    );
    assert!(
        text.contains("  dns-name        FAILED: rule dns-name:"),
        "{text}"
    );
    assert!(
        text.contains("(the chain did not verify: checked against the presented certificate"),
        "{text}"
    );
    assert!(text.contains("CT policy: compliant"), "{text}");

    // The test PKI's chain: wrong IP, a pin that does not match, a denylisted leaf.
    let p = pki_files();
    let f = &p.files;
    let rogue_pin = p.pki.rogue_root().spki_sha256_base64();
    let fp = CertFingerprint::of_cert(p.leaf.leaf()).to_string();
    let v = json(
        &pki_args(
            f,
            &["--ip", "127.0.0.2", "--pin", &rogue_pin, "--deny", &fp],
        ),
        1,
    );
    assert_eq!(v["refusal"], "ip-san");
    for (rule, want) in [
        ("chain", "passed"),
        ("ip-san", "failed"),
        ("ct-policy", "passed"),
        ("issuer-pin", "failed"),
        ("denylist", "failed"),
    ] {
        assert_eq!(result_of(&v, rule), want, "{rule}");
    }
    assert_eq!(v["rules"][7]["refusal"], "issuer-pin");
    assert_eq!(v["ct_issuer"], "verified_path");
    assert_eq!(v["scts"].as_array().unwrap().len(), 2);
}

// ---------------------------------------------------------------------------------------
// The test PKI's files.
// ---------------------------------------------------------------------------------------

struct PkiFiles {
    _dir: tempfile::TempDir,
    pki: TestPki,
    leaf: IssuedLeaf,
    files: WrittenFiles,
    stapled: WrittenFiles,
}

fn pki_files() -> PkiFiles {
    let dir = tempfile::tempdir().unwrap();
    let (pki, leaf) = ctdns::pki::demo_pki("127.0.0.1".parse().unwrap()).unwrap();
    let files = write_files(&dir.path().join("embedded"), &pki, &leaf).unwrap();
    let ts = pki.now() - time::Duration::minutes(1);
    let stapled_leaf = pki
        .issue_leaf(
            &pki.leaf_spec("127.0.0.1".parse().unwrap())
                .staple(SctSpec::at(default_logs::ALPHA, ts))
                .staple(SctSpec::at(default_logs::GAMMA, ts)),
        )
        .unwrap();
    let stapled = write_files(&dir.path().join("stapled"), &pki, &stapled_leaf).unwrap();
    PkiFiles {
        _dir: dir,
        pki,
        leaf,
        files,
        stapled,
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `verify --chain chain.pem --roots ca.pem --log-list log_list.json` plus `extra`.
fn pki_args<'a>(f: &'a WrittenFiles, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "verify",
        "--chain",
        path(&f.chain),
        "--roots",
        path(&f.ca),
        "--log-list",
        path(&f.log_list),
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn generated_pki_files() {
    let p = pki_files();
    let f = &p.files;

    let out = ctdns(&pki_args(f, &["--ip", "127.0.0.1"]));
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}\n{}", stderr(&out));
    assert!(text.contains("VERDICT: ACCEPTED"), "{text}");
    for log in [default_logs::ALPHA, default_logs::BETA] {
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with("embedded") && l.contains(log))
            .unwrap_or_else(|| panic!("no row for {log}: {text}"));
        assert!(row.contains(" valid ") && row.ends_with("yes"), "{row}");
    }
    assert!(text.contains("IP [\"127.0.0.1\"]"), "{text}");

    let v = json(&pki_args(f, &["--ip", "127.0.0.1"]), 0);
    assert_eq!(v["accepted"], Value::Bool(true));
    assert_eq!(v["scts"].as_array().unwrap().len(), 2);
    assert_eq!(v["chain"][0]["ip_sans"][0], "127.0.0.1");
    assert_eq!(
        v["chain"][1]["spki_sha256"],
        p.pki.intermediate().spki_sha256_base64()
    );
    assert_eq!(
        v["path_pins"],
        serde_json::json!([
            p.pki.intermediate().spki_sha256_base64(),
            p.pki.root().spki_sha256_base64()
        ])
    );

    // Wrong IP.
    let out = ctdns(&pki_args(f, &["--ip", "127.0.0.2"]));
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains("VERDICT: REFUSED (ip-san)"),
        "{}",
        stdout(&out)
    );
    let v = json(&pki_args(f, &["--ip", "127.0.0.2"]), 1);
    assert_eq!(v["refusal"], "ip-san");
    assert_eq!(v["accepted"], Value::Bool(false));

    // Pins: a wrong pin refuses, the intermediate's or the root's accepts.
    let rogue_pin = p.pki.rogue_root().spki_sha256_base64();
    let v = json(&pki_args(f, &["--ip", "127.0.0.1", "--pin", &rogue_pin]), 1);
    assert_eq!(v["refusal"], "issuer-pin");
    let inter_pin = p.pki.intermediate().spki_sha256_base64();
    let root_pin = p.pki.root().spki_sha256_base64();
    let v = json(
        &pki_args(
            f,
            &["--ip", "127.0.0.1", "--pin", &rogue_pin, "--pin", &root_pin],
        ),
        0,
    );
    assert_eq!(v["accepted"], Value::Bool(true));
    let v = json(&pki_args(f, &["--pin", &inter_pin]), 0);
    assert_eq!(v["accepted"], Value::Bool(true));

    // Denylist.
    let fp = CertFingerprint::of_cert(p.leaf.leaf()).to_string();
    let v = json(&pki_args(f, &["--deny", &fp]), 1);
    assert_eq!(v["refusal"], "denylist");

    // Apple policy accepts two operators too.
    let v = json(&pki_args(f, &["--ip", "127.0.0.1", "--policy", "apple"]), 0);
    assert_eq!(v["accepted"], Value::Bool(true));

    // Trusting only the rogue root: chain.
    let v = json(
        &[
            "verify",
            "--chain",
            path(&f.chain),
            "--roots",
            path(&f.rogue_ca),
            "--log-list",
            path(&f.log_list),
        ],
        1,
    );
    assert_eq!(v["refusal"], "chain");

    // The bundled list does not know the test logs.
    let v = json(
        &["verify", "--chain", path(&f.chain), "--roots", path(&f.ca)],
        1,
    );
    assert_eq!(v["refusal"], "ct-policy");
    for s in v["scts"].as_array().unwrap() {
        assert_eq!(s["reason"]["rule"], "unknown_log");
        assert_eq!(s["signature"]["status"], "not_checked");
    }

    // Stale list: two days later with a one-day maximum: warn (accepted) or refuse.
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(2);
    let later = later
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let stale = ["--at", later.as_str(), "--max-list-age-days", "1"];
    let v = json(&pki_args(f, &stale), 0);
    assert_eq!(v["accepted"], Value::Bool(true));
    let mut refuse = stale.to_vec();
    refuse.push("--refuse-stale-list");
    let v = json(&pki_args(f, &refuse), 1);
    assert_eq!(v["refusal"], "log-list-stale");
}

#[test]
fn generated_pki_with_ocsp_stapled_scts() {
    let p = pki_files();
    let f = &p.stapled;
    let ocsp = f.ocsp.as_ref().expect("ocsp.der written");

    // Without the staple: no SCTs.
    let v = json(&pki_args(f, &["--ip", "127.0.0.1"]), 1);
    assert_eq!(v["refusal"], "ct-policy");
    assert_eq!(v["scts"], Value::Array(Vec::new()));

    let v = json(
        &pki_args(f, &["--ip", "127.0.0.1", "--ocsp", path(ocsp)]),
        0,
    );
    assert_eq!(v["accepted"], Value::Bool(true));
    let scts = v["scts"].as_array().unwrap();
    assert_eq!(scts.len(), 2);
    assert!(scts
        .iter()
        .all(|s| s["source"] == "ocsp" && s["counted"] == Value::Bool(true)));

    let out = ctdns(&pki_args(f, &["--ocsp", path(ocsp)]));
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.trim_start().starts_with("ocsp"))
            .count(),
        2,
        "{text}"
    );

    // A malformed staple is ignored, for revocation and for its SCTs, and reported; it
    // is never a refusal of its own. This leaf has no embedded SCTs, so CT refuses.
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.der", b"\xde\xad\xbe\xef");
    let v = json(&pki_args(f, &["--ocsp", &bad]), 1);
    assert_eq!(v["refusal"], "ct-policy");
    assert!(v["ocsp_scts_ignored"]
        .as_str()
        .unwrap()
        .contains("malformed `OCSPResponse`"));
    assert_eq!(v["staple"]["used"], Value::Bool(false));
    assert!(v["staple"]["ignored"]
        .as_str()
        .unwrap()
        .contains("malformed `OCSPResponse`"));
}

/// Revocation through `ctdns verify --ocsp`: a revoked staple signed by the issuer refuses
/// with rule `revoked`; the same staple signed by the wrong key is ignored and reported,
/// and the leaf (compliant embedded SCTs) is accepted.
#[test]
fn revoked_staple_refuses_and_unverifiable_staple_is_ignored() {
    let p = pki_files();
    let f = &p.files;
    let now = p.pki.now();
    let dir = tempfile::tempdir().unwrap();
    let staple = |spec: &OcspSpec| {
        build_ocsp_response_with(
            p.pki.intermediate(),
            p.leaf.leaf(),
            None,
            now - time::Duration::hours(1),
            now + time::Duration::days(7),
            spec,
        )
        .unwrap()
    };
    let revoked = OcspSpec::revoked(now - time::Duration::minutes(30), Some(1));
    let good = write(dir.path(), "good.der", &staple(&OcspSpec::default()));
    let rev = write(dir.path(), "revoked.der", &staple(&revoked));
    let forged = write(
        dir.path(),
        "forged.der",
        &staple(&revoked.clone().signed_by(OcspSigner::WrongKey)),
    );

    let v = json(&pki_args(f, &["--ip", "127.0.0.1", "--ocsp", &good]), 0);
    assert_eq!(v["staple"]["used"], Value::Bool(true));
    assert_eq!(v["staple"]["status"], "good");
    assert_eq!(v["staple"]["responder"], "issuer");
    assert_eq!(v["ocsp_scts_ignored"], Value::Null);

    let v = json(&pki_args(f, &["--ip", "127.0.0.1", "--ocsp", &rev]), 1);
    assert_eq!(v["refusal"], "revoked");
    assert_eq!(v["staple"]["status"], "revoked");
    assert_eq!(v["staple"]["revocation_reason"], "keyCompromise");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason
            .starts_with("rule revoked: a verified stapled OCSP response says certificate serial"),
        "{reason}"
    );
    let out = ctdns(&pki_args(f, &["--ip", "127.0.0.1", "--ocsp", &rev]));
    let text = stdout(&out);
    assert_eq!(code(&out), 1, "{text}");
    assert!(text.contains("VERDICT: REFUSED (revoked)"), "{text}");
    assert!(
        text.contains("Stapled OCSP (revocation): revoked at"),
        "{text}"
    );

    let v = json(&pki_args(f, &["--ip", "127.0.0.1", "--ocsp", &forged]), 0);
    assert_eq!(v["accepted"], Value::Bool(true));
    assert_eq!(v["staple"]["used"], Value::Bool(false));
    assert!(v["staple"]["ignored"]
        .as_str()
        .unwrap()
        .contains("signature does not verify"));
    let out = ctdns(&pki_args(f, &["--ip", "127.0.0.1", "--ocsp", &forged]));
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}");
    assert!(
        text.contains("Stapled OCSP (revocation): ignored (signature does not verify"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------
// Bad input and usage: exit 2.
// ---------------------------------------------------------------------------------------

#[test]
fn bad_input_and_usage_exit_2() {
    let p = pki_files();
    let f = &p.files;
    let dir = tempfile::tempdir().unwrap();
    let garbage = write(dir.path(), "garbage.txt", b"this is not a certificate\n");
    let truncated_der = write(dir.path(), "trunc.der", &[0x30, 0x82, 0x05, 0x00, 0x01]);
    let bad_list = write(dir.path(), "list.json", b"{\"operators\": [");
    let empty = write(dir.path(), "empty.pem", b"");

    let chain = path(&f.chain);
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("no arguments", vec!["verify"]),
        ("unknown subcommand", vec!["frobnicate"]),
        ("unknown flag", vec!["verify", "--chain", chain, "--frob"]),
        (
            "missing file",
            vec!["verify", "--chain", "/nonexistent/chain.pem"],
        ),
        ("not PEM nor DER", vec!["verify", "--chain", &garbage]),
        ("truncated DER", vec!["verify", "--chain", &truncated_der]),
        ("empty file", vec!["verify", "--chain", &empty]),
        (
            "bad --ip",
            vec!["verify", "--chain", chain, "--ip", "127.0.0"],
        ),
        (
            "bad --at",
            vec!["verify", "--chain", chain, "--at", "yesterday"],
        ),
        (
            "--at before 1970",
            vec!["verify", "--chain", chain, "--at", "1969-12-31T00:00:00Z"],
        ),
        (
            "bad --pin",
            vec!["verify", "--chain", chain, "--pin", "abc"],
        ),
        (
            "bad --deny",
            vec!["verify", "--chain", chain, "--deny", "abc"],
        ),
        (
            "bad --policy",
            vec!["verify", "--chain", chain, "--policy", "firefox"],
        ),
        (
            "bad --log-list",
            vec!["verify", "--chain", chain, "--log-list", &bad_list],
        ),
        (
            "missing --roots",
            vec!["verify", "--chain", chain, "--roots", "/nonexistent.pem"],
        ),
        (
            "missing --ocsp",
            vec!["verify", "--chain", chain, "--ocsp", "/nonexistent.der"],
        ),
        (
            "bad --name",
            vec!["verify", "--chain", chain, "--name", "not a name!"],
        ),
    ];
    for (what, args) in cases {
        let out = ctdns(&args);
        assert_eq!(
            code(&out),
            2,
            "{what}: stdout {} stderr {}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            !stderr(&out).trim().is_empty(),
            "{what}: says why on stderr"
        );
        assert!(
            !stdout(&out).contains("VERDICT"),
            "{what}: no verdict on bad input"
        );
    }
    // --help is not an error.
    assert_eq!(code(&ctdns(&["verify", "--help"])), 0);
}
