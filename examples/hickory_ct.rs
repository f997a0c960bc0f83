//! A hickory-resolver `Resolver` whose DoT connections run the CT verifier: the name server's
//! certificate must be valid for TLS_NAME (hickory sends it as the server name), chain to a
//! root of CONFIG.toml, carry SCTs meeting its CT policy and match PINs, before a DNS byte
//! is sent.
//!
//! ```text
//! cargo run --example hickory_ct --features hickory-resolver -- \
//!     CONFIG.toml IP PORT TLS_NAME HOST [PIN...]
//! ```

use std::process::ExitCode;

use ctdns::{config::Config, runtime::Trust, tls::pins::SpkiPin, tls::Refusal};
use hickory_resolver::config::NameServerConfig;

async fn lookup(args: &[String]) -> Result<Vec<std::net::IpAddr>, Box<dyn std::error::Error>> {
    let [config, ip, port, tls_name, host, pins @ ..] = args else {
        return Err("usage: hickory_ct CONFIG.toml IP PORT TLS_NAME HOST [PIN...]".into());
    };
    let config = Config::from_file(std::path::Path::new(config))?;
    let pins = pins
        .iter()
        .map(|p| SpkiPin::parse(p))
        .collect::<Result<_, _>>()?;
    let verifier = Trust::without_evidence(&config)?.verifier("hickory", pins, None);
    let mut server = NameServerConfig::tls(ip.parse()?, tls_name.as_str().into());
    server.connections[0].port = port.parse()?;
    let resolver = ctdns::client::hickory::resolver(vec![server], verifier)?;
    Ok(resolver.lookup_ip(host.as_str()).await?.iter().collect())
}

#[tokio::main]
async fn main() -> ExitCode {
    // hickory reports a refused name server only as "no connections available": the
    // verifier's `refusal` event (WARN, naming the rule) says why.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("warn")
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match lookup(&args).await {
        Ok(ips) => {
            for ip in ips {
                println!("{ip}");
            }
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
