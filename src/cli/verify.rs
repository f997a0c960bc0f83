//! `ctdns verify`: offline audit of a certificate chain file. Every rule's outcome is
//! reported, also after the first failure ([`crate::tls::verifier::CtVerifier::audit`]);
//! the verdict and the exit code are those of the first failed rule.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use crate::cli::common::{self, CtArgs, EXIT_BAD_INPUT};
use crate::cli::describe;
use crate::tls::pins::{CertFingerprint, SpkiPin};
use crate::tls::verifier::CtVerifier;

/// Arguments of `ctdns verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The chain: PEM (leaf first; text around the blocks is ignored) or DER (one
    /// certificate, or several concatenated, leaf first).
    #[arg(long, value_name = "FILE")]
    pub chain: PathBuf,
    /// The IP the certificate must carry as an IP SAN (omit to skip that rule: name mode,
    /// e.g. for a website's chain with `--name`).
    #[arg(long)]
    pub ip: Option<IpAddr>,
    /// A DNS name the certificate must also be valid for.
    #[arg(long)]
    pub name: Option<String>,
    /// A stapled OCSP response (DER) whose SCTs count too.
    #[arg(long, value_name = "FILE")]
    pub ocsp: Option<PathBuf>,
    /// Issuer pin (base64 SHA-256 of a CA's SPKI, optionally written `sha256/BASE64` as
    /// the report prints it); repeatable.
    #[arg(long = "pin", value_name = "BASE64")]
    pub pins: Vec<String>,
    /// Denylisted certificate SHA-256 (hex); repeatable.
    #[arg(long = "deny", value_name = "SHA256")]
    pub deny: Vec<String>,
    /// Denylisted key (base64 SHA-256 of an SPKI, the pin form): no path may run through it,
    /// trust anchors included; repeatable.
    #[arg(long = "deny-spki", value_name = "BASE64")]
    pub deny_spki: Vec<String>,
    /// Decide as of this time (RFC 3339), e.g. for expired material.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// Print one JSON object instead of the human report.
    #[arg(long)]
    pub json: bool,
    /// CT options.
    #[command(flatten)]
    pub ct: CtArgs,
}

/// Run `ctdns verify`.
pub fn run(args: VerifyArgs) -> ExitCode {
    match verify(&args) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("ctdns verify: {msg}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn verify(args: &VerifyArgs) -> Result<ExitCode, String> {
    let chain = common::read_chain(&args.chain)?;
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err(format!("{}: no certificate found", args.chain.display()));
    };
    let ocsp = match &args.ocsp {
        Some(p) => std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?,
        None => Vec::new(),
    };
    let now = match &args.at {
        Some(at) => common::parse_rfc3339(at)?,
        None => UnixTime::now(),
    };
    let checker = common::checker(&args.ct)?;
    let logs = checker.logs().clone();
    let roots = common::roots(args.ct.roots.as_deref())?;
    let pins = args
        .pins
        .iter()
        .map(|p| {
            let b64 = p.trim().strip_prefix("sha256/").unwrap_or(p);
            SpkiPin::parse(b64).map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let deny = args
        .deny
        .iter()
        .map(|p| CertFingerprint::parse(p).map_err(|e| e.to_string()))
        .collect::<Result<std::collections::HashSet<_>, _>>()?;
    let deny_spki = args
        .deny_spki
        .iter()
        .map(|p| {
            let b64 = p.trim().strip_prefix("sha256/").unwrap_or(p);
            SpkiPin::parse(b64).map_err(|e| format!("--deny-spki `{p}`: {e}"))
        })
        .collect::<Result<std::collections::HashSet<_>, _>>()?;
    let name = match &args.name {
        Some(n) => Some(
            ServerName::try_from(n.clone())
                .map_err(|_| format!("--name `{n}` is not a valid DNS name"))?,
        ),
        None => None,
    };
    let verifier = CtVerifier::new(Arc::new(roots), checker)
        .with_pins(pins)
        .with_denylist(Arc::new(deny))
        .with_spki_denylist(Arc::new(deny_spki))
        .with_staleness(common::staleness(&args.ct));
    let leaf_der = CertificateDer::from(leaf.as_slice());
    let inter: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let audit = verifier.audit(&leaf_der, &inter, args.ip, name.as_ref(), &ocsp, now);
    if args.json {
        let json = describe::audit_json(&audit, &chain, &logs);
        println!(
            "{}",
            serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?
        );
    } else {
        print!(
            "{}",
            describe::log_list_line(&logs, now.as_secs().saturating_mul(1000))
        );
        print!("{}", describe::human_audit(&audit, &chain));
    }
    Ok(if audit.accepted() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(common::EXIT_REFUSED)
    })
}
