//! The ctdns stub for benchmarks, built from the library exactly as `ctdns serve` assembles it:
//! TOML config → `runtime::Trust` → `runtime::pool` (CT-verified DoT/DoH transports) →
//! `stub::bind(runtime::stub_options)` → serve until SIGINT/SIGTERM. No logging setup beyond
//! errors, so log formatting never shows up in a profile.
//!
//! ```text
//! cargo run --release --example bench_stub -- --config FILE
//! ```
//! Prints `listening udp=ADDR,... tcp=ADDR,...` on stdout once the listeners are bound.

use std::path::PathBuf;
use std::process::ExitCode;

use ctdns::config::Config;
use ctdns::runtime::{pool, stub_options, Trust};

fn config_path() -> Option<PathBuf> {
    let mut args = std::env::args_os().skip(1);
    match (args.next(), args.next(), args.next()) {
        (Some(flag), Some(path), None) if flag == "--config" => Some(PathBuf::from(path)),
        _ => None,
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let trust = Trust::from_config(&config).map_err(|e| e.to_string())?;
    let upstream = pool(&config, &trust).map_err(|e| e.to_string())?;
    let stub = ctdns::stub::bind(stub_options(&config))
        .await
        .map_err(|e| e.to_string())?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("SIGTERM handler: {e}"))?;
    let handle = stub.start(upstream);
    let join = |addrs: &[std::net::SocketAddr]| {
        addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    println!(
        "listening udp={} tcp={}",
        join(handle.udp_addrs()),
        join(handle.tcp_addrs())
    );
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    let m = handle.metrics();
    eprintln!("bench_stub: stopping; {m:?}");
    handle.shutdown().await;
    Ok(())
}

fn main() -> ExitCode {
    let Some(path) = config_path() else {
        eprintln!("usage: bench_stub --config FILE");
        return ExitCode::from(2);
    };
    let config = match Config::from_file(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bench_stub: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench_stub: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_stub: {e}");
            ExitCode::FAILURE
        }
    }
}
