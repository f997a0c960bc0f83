//! An HTTPS client (reqwest) that resolves every host name over CT-verified DoT/DoH (no
//! system resolver, no local stub) and refuses any HTTPS server whose certificate is not
//! CT-logged, the way Chrome does: the CT verifier in name mode.
//!
//! ```text
//! cargo run --example reqwest_ct --features reqwest -- CONFIG.toml URL
//! ```
//!
//! CONFIG.toml is a ctdns configuration: its `[[upstream]]`s resolve, and its `[tls]` roots,
//! denylists and `[ct]` log list and policy judge the HTTPS server's certificate too.
//!
//! `ct_reqwest` is the snippet shown in the README ("Use it in your app");
//! `tests/app_reqwest.rs` runs it against a real unbound DoT upstream and HTTPS servers on
//! loopback, under ring and under aws-lc-rs.

use std::path::Path;
use std::process::ExitCode;

use ctdns::tls::Refusal;

// README (a) begin
use ctdns::client::{name_mode_tls_config, reqwest::CtResolve, Client, ALPN_HTTPS};
use ctdns::{config::Config, runtime::Trust};

/// reqwest resolving through the config's CT-verified DoT/DoH upstreams (A + AAAA, no
/// resolv.conf) and refusing HTTPS servers whose certificates fail its `[tls]`/`[ct]` rules.
pub fn ct_reqwest(config: &Config) -> Result<reqwest::Client, Box<dyn std::error::Error>> {
    let resolver = CtResolve::new(Client::from_config(config)?);
    let verifier = Trust::without_evidence(config)?.verifier("https", Vec::new(), None);
    let http = reqwest::Client::builder()
        .dns_resolver(resolver)
        .tls_backend_preconfigured(name_mode_tls_config(verifier, ALPN_HTTPS)?)
        .build()?;
    Ok(http)
}
// README (a) end

async fn fetch(config: &Path, url: &str) -> Result<String, Box<dyn std::error::Error>> {
    let http = ct_reqwest(&Config::from_file(config)?)?;
    let response = http.get(url).send().await?.error_for_status()?;
    Ok(response.text().await?)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [config, url] = args.as_slice() else {
        eprintln!("usage: reqwest_ct CONFIG.toml URL");
        return ExitCode::from(2);
    };
    match fetch(Path::new(config), url).await {
        Ok(body) => {
            print!("{body}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            match Refusal::find_in(e.as_ref()) {
                Some(refusal) => eprintln!("refused (rule {}): {refusal}", refusal.rule()),
                None => {
                    eprint!("error: {e}");
                    let mut source = e.source();
                    while let Some(cause) = source {
                        eprint!(": {cause}");
                        source = cause.source();
                    }
                    eprintln!();
                }
            }
            ExitCode::FAILURE
        }
    }
}
