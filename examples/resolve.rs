//! Library usage: resolve one name through a CT-verified DNS-over-TLS upstream.
//!
//! ```text
//! cargo run --example resolve -- IP PORT ROOTS.pem LOG_LIST.json NAME [TYPE] [PIN...]
//! cargo run --example resolve -- 127.0.0.1 8853 ca.pem log_list.json www.example.test. A
//! ```
//!
//! The upstream's certificate must chain to a root in ROOTS.pem, carry IP as an IP SAN, and
//! have SCTs from two logs of distinct operators in LOG_LIST.json (and, with PINs, be issued
//! under a pinned CA) before the query is sent.

use std::process::ExitCode;

use ctdns::client::Client;
use ctdns::config::{Config, CtConfig, TlsConfig, UpstreamConfig};
use ctdns::tls::pins::SpkiPin;
use hickory_proto::rr::RecordType;

const USAGE: &str = "usage: resolve IP PORT ROOTS.pem LOG_LIST.json NAME [TYPE] [PIN...]";

fn config(args: &[String]) -> Result<(Config, String, RecordType), String> {
    let [ip, port, roots, log_list, name, rest @ ..] = args else {
        return Err(USAGE.into());
    };
    let ip = ip.parse().map_err(|_| format!("`{ip}` is not an IP"))?;
    let port = port
        .parse()
        .map_err(|_| format!("`{port}` is not a port"))?;
    let (rtype, pins) = match rest {
        [] => (RecordType::A, &[][..]),
        [t, pins @ ..] => (
            t.to_ascii_uppercase()
                .parse()
                .map_err(|_| format!("`{t}` is not a record type"))?,
            pins,
        ),
    };
    let pins = pins
        .iter()
        .map(|p| SpkiPin::parse(p).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let config = Config {
        upstreams: vec![UpstreamConfig::Dot {
            ip,
            port: Some(port),
            name: None,
            pins,
        }],
        tls: TlsConfig {
            roots: Some(roots.into()),
            ..TlsConfig::default()
        },
        ct: CtConfig {
            log_list: Some(log_list.into()),
            ..CtConfig::default()
        },
        ..Config::default()
    };
    Ok((config, name.clone(), rtype))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (config, name, rtype) = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let client = match Client::from_config(&config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("configuration: {e}");
            return ExitCode::from(2);
        }
    };
    match client.query(&name, rtype).await {
        Ok(answer) => {
            println!(";; {:?}", answer.metadata.response_code);
            for record in &answer.answers {
                println!("{record}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            // A refused certificate lands here too (nothing was sent to that upstream);
            // the refusal names the rule that failed.
            match ctdns::tls::verifier::Refusal::find_in(&e) {
                Some(refusal) => eprintln!("upstream refused: {refusal}"),
                None => eprintln!("query failed: {e}"),
            }
            ExitCode::from(1)
        }
    }
}
