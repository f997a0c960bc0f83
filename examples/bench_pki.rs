//! Writes the test PKI the peer benchmark (`bench/run.sh`) serves from unbound: `ca.pem`,
//! `chain.pem` (leaf then intermediate), `key.pem`, `log_list.json`, plus `pin.txt` (base64
//! SHA-256 SPKI pin of the honest root).
//!
//! The leaf is [`ctdns::pki::demo_pki`]'s (IP SAN, two embedded SCTs from logs of two
//! operators, 90 days) plus the DNS SAN `dns.bench.test`, so that peers which authenticate
//! DoT upstreams by name (unbound's `forward-addr: IP@PORT#NAME`, stubby's `tls_auth_name`)
//! verify the same certificate ctdns verifies by IP.
//!
//! ```text
//! cargo run --release --example bench_pki -- OUT_DIR [IP]
//! ```
//! IP defaults to 127.0.0.1. `ctdns pki --ip IP --dns dns.bench.test` writes the same files.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;

use ctdns::pki::{default_logs, write_files, PkiOptions, SctSpec, TestPki};

/// The DNS name in the leaf, for peers that authenticate upstreams by name.
const AUTH_NAME: &str = "dns.bench.test";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: bench_pki OUT_DIR [IP]");
        return ExitCode::from(2);
    };
    let ip: IpAddr = match args.next().map(|a| a.to_string_lossy().parse()) {
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(Ok(ip)) => ip,
        Some(Err(e)) => {
            eprintln!("bench_pki: bad IP: {e}");
            return ExitCode::from(2);
        }
    };
    let result = TestPki::generate(&PkiOptions::default()).and_then(|pki| {
        let ts = pki.now() - time::Duration::minutes(1);
        let mut spec = pki
            .leaf_spec(ip)
            .embed(SctSpec::at(default_logs::ALPHA, ts))
            .embed(SctSpec::at(default_logs::BETA, ts));
        spec.dns_sans.push(AUTH_NAME.to_string());
        let leaf = pki.issue_leaf(&spec)?;
        let files = write_files(&dir, &pki, &leaf)?;
        Ok((files, pki.root().spki_sha256_base64()))
    });
    match result {
        Ok((files, pin)) => {
            let pin_path = dir.join("pin.txt");
            if let Err(e) = std::fs::write(&pin_path, format!("{pin}\n")) {
                eprintln!("bench_pki: {}: {e}", pin_path.display());
                return ExitCode::FAILURE;
            }
            println!(
                "wrote {} {} {} {} {}",
                files.ca.display(),
                files.chain.display(),
                files.key.display(),
                files.log_list.display(),
                pin_path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench_pki: {e}");
            ExitCode::FAILURE
        }
    }
}
