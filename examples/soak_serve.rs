//! `ctdns serve --config FILE` for branches that do not have the `serve` subcommand yet:
//! loads the TOML configuration, builds trust, the upstream pool and the stub exactly as
//! [`ctdns::runtime`] says, and serves until SIGINT or SIGTERM. Used by `bench/soak.sh`
//! when `ctdns serve` is not available.
//!
//! ```text
//! cargo run --release --example soak_serve -- --config FILE
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use ctdns::config::Config;
use ctdns::runtime::{pool, stub_options, Trust};
use ctdns::upstream::Transport;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = match args.as_slice() {
        [flag, path] if flag == "--config" => PathBuf::from(path),
        _ => {
            eprintln!("usage: soak_serve --config FILE");
            return ExitCode::from(2);
        }
    };
    let config = match Config::from_file(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("soak_serve: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("soak_serve: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let trust = match Trust::from_config(&config) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("soak_serve: {e}");
                return ExitCode::FAILURE;
            }
        };
        let upstreams = match pool(&config, &trust) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("soak_serve: {e}");
                return ExitCode::FAILURE;
            }
        };
        let stub = match ctdns::stub::bind(stub_options(&config)).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("soak_serve: {e}");
                return ExitCode::FAILURE;
            }
        };
        eprintln!("soak_serve: listening on {:?}", stub.udp_addrs());
        stub.run(upstreams as Arc<dyn Transport>, shutdown_signal())
            .await;
        ExitCode::SUCCESS
    })
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
