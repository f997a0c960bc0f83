//! The `ctdns` command line: one module per subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod check;
pub mod common;
pub mod config;
#[cfg(feature = "testkit")]
pub mod demo;
pub mod describe;
pub mod log_list;
pub mod logging;
#[cfg(feature = "testkit")]
pub mod pki;
pub mod reload;
pub mod serve;
pub mod startup;
pub mod systemd;
pub mod verify;

/// ctdns: a DNS-over-TLS / DNS-over-HTTPS stub resolver that refuses resolvers whose
/// certificates are not Certificate-Transparency logged.
#[derive(Debug, Parser)]
#[command(name = "ctdns", version, about)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit a certificate chain file offline (exit 0 accepted, 1 refused, 2 bad input).
    Verify(verify::VerifyArgs),
    /// Write a TEST PKI (CAs, server chain and key with IP SANs and SCTs, log list, pins,
    /// README) to a directory (exit 0 written, 2 bad input).
    #[cfg(feature = "testkit")]
    Pki(pki::PkiArgs),
    /// Show, offline on loopback, an honest resolver answered and a rogue one (valid, CT-logged
    /// certificate from another CA) refused by issuer pin (exit 0 as expected, 1 otherwise).
    #[cfg(feature = "testkit")]
    Demo(demo::DemoArgs),
    /// Run the stub resolver (exit 0 after SIGINT/SIGTERM, 1 cannot listen, 2 bad config).
    Serve(serve::ServeArgs),
    /// Connect to a DoT/DoH resolver once and audit its certificate (exit 0 accepted,
    /// 1 refused, 2 bad input or connection failure).
    Check(check::CheckArgs),
    /// Show the effective configuration, every default filled in (exit 0, 2 invalid file).
    Config(config::ConfigArgs),
    /// Vet a CT log list: `show`, `check` (exit 0 acceptable, 1 errors found, 2 unreadable)
    /// and `diff` two lists (exit 0, 2 unreadable).
    LogList(log_list::LogListArgs),
}

/// Parse the command line and run it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Verify(args) => verify::run(args),
        #[cfg(feature = "testkit")]
        Command::Pki(args) => pki::run(args),
        #[cfg(feature = "testkit")]
        Command::Demo(args) => demo::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Check(args) => check::run(args),
        Command::Config(args) => config::run(args),
        Command::LogList(args) => log_list::run(args),
    }
}
