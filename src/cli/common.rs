//! Pieces shared by the subcommands: reading chains, times, CT options.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, TrustAnchor, UnixTime};

use crate::ct::checker::CtChecker;
use crate::ct::log_list::StalenessPolicy;
use crate::ct::policy::PolicyKind;
use crate::runtime;

/// Exit code: the certificate was refused.
pub const EXIT_REFUSED: u8 = 1;
/// Exit code: bad input or usage.
pub const EXIT_BAD_INPUT: u8 = 2;

/// CT options shared by `verify` and `check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CtArgs {
    /// A log list (Chrome v3 or Apple schema); default: the list bundled with ctdns.
    #[arg(long, value_name = "FILE")]
    pub log_list: Option<PathBuf>,
    /// Trusted roots (PEM); default: webpki-roots.
    #[arg(long, value_name = "FILE.pem")]
    pub roots: Option<PathBuf>,
    /// CT policy.
    #[arg(long, default_value = "chrome", value_parser = policy_parser())]
    pub policy: PolicyKind,
    /// Maximum log list age in days before warning (or refusing with --refuse-stale-list).
    #[arg(long, default_value_t = 70)]
    pub max_list_age_days: u64,
    /// Refuse when the log list is older than --max-list-age-days.
    #[arg(long)]
    pub refuse_stale_list: bool,
}

/// `chrome` or `apple`, listed in `--help` and completions.
fn policy_parser() -> impl clap::builder::TypedValueParser<Value = PolicyKind> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["chrome", "apple"])
        .try_map(|s| s.parse::<PolicyKind>())
}

/// The checker for CLI options.
pub fn checker(args: &CtArgs) -> Result<CtChecker, String> {
    let logs = runtime::load_log_list(args.log_list.as_deref()).map_err(|e| e.to_string())?;
    let policy = runtime::policy(args.policy, None, None).map_err(|e| e.to_string())?;
    Ok(CtChecker::new(Arc::new(logs), policy))
}

/// The staleness policy for CLI options.
pub fn staleness(args: &CtArgs) -> StalenessPolicy {
    StalenessPolicy {
        max_age: Duration::from_secs(args.max_list_age_days.saturating_mul(86_400)),
        refuse_when_stale: args.refuse_stale_list,
    }
}

/// Trust anchors from a PEM file, or webpki-roots.
pub fn roots(path: Option<&Path>) -> Result<Vec<TrustAnchor<'static>>, String> {
    match path {
        Some(p) => crate::tls::roots::from_pem_file(p).map_err(|e| e.to_string()),
        None => Ok(crate::tls::roots::webpki_roots()),
    }
}

/// Read a chain file: PEM blocks (text around them ignored, as in `openssl x509 -text`
/// dumps) or DER (one certificate, or several concatenated, leaf first).
pub fn read_chain(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_chain(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parse PEM or DER chain bytes.
///
/// Bytes that are entirely a sequence of well-formed DER `SEQUENCE`s are DER; anything
/// else is read as PEM. (A text file may well start with `0`, byte 0x30, the DER
/// `SEQUENCE` tag, so the first byte alone does not decide.)
pub fn parse_chain(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if let Some(certs) = split_der(bytes) {
        return Ok(certs);
    }
    let certs: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(bytes)
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no CERTIFICATE block and not DER".into());
    }
    Ok(certs)
}

/// Split concatenated DER `SEQUENCE`s; `None` unless the bytes are exactly that.
fn split_der(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut reader = crate::ct::der::Reader::new(bytes);
    let mut certs = Vec::new();
    while !reader.is_empty() {
        let tlv = reader.read(crate::ct::der::tag::SEQUENCE).ok()?;
        certs.push(tlv.element.to_vec());
    }
    (!certs.is_empty()).then_some(certs)
}

/// Parse an RFC 3339 time.
pub fn parse_rfc3339(s: &str) -> Result<UnixTime, String> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("--at `{s}`: not an RFC 3339 time ({e})"))?;
    let secs = u64::try_from(t.unix_timestamp()).map_err(|_| format!("--at `{s}`: before 1970"))?;
    Ok(UnixTime::since_unix_epoch(Duration::from_secs(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct WithCt {
        #[command(flatten)]
        ct: CtArgs,
    }

    #[test]
    fn policy_flag_is_the_config_policy_enum() {
        use clap::Parser;
        let parse = |args: &[&str]| WithCt::try_parse_from([&["t"], args].concat());
        assert_eq!(parse(&[]).unwrap().ct.policy, PolicyKind::Chrome);
        assert_eq!(
            parse(&["--policy", "apple"]).unwrap().ct.policy,
            PolicyKind::Apple
        );
        assert!(parse(&["--policy", "firefox"]).is_err());
        // The same names as `ct.policy` in the configuration file.
        let from_file = crate::config::Config::from_toml("[ct]\npolicy = \"apple\"").unwrap();
        assert_eq!(from_file.ct.policy, PolicyKind::Apple);
    }

    #[test]
    fn times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:01:00Z").unwrap().as_secs(), 60);
        assert!(parse_rfc3339("yesterday").is_err());
        assert!(parse_rfc3339("1969-12-31T23:59:59Z").is_err());
    }

    #[test]
    fn chains() {
        assert!(parse_chain(b"hello").is_err());
        assert_eq!(parse_chain(&[0x30, 0x00]).unwrap(), vec![vec![0x30, 0x00]]);
        let pem = "junk\n-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\nmore junk\n";
        assert_eq!(parse_chain(pem.as_bytes()).unwrap(), vec![vec![0x30, 0x00]]);
        // Text starting with `0` (0x30) is still PEM.
        let pem = format!("0 s:CN=leaf\n{pem}");
        assert_eq!(parse_chain(pem.as_bytes()).unwrap(), vec![vec![0x30, 0x00]]);
        // Concatenated DER is a chain.
        assert_eq!(
            parse_chain(&[0x30, 0x01, 0x05, 0x30, 0x00]).unwrap(),
            vec![vec![0x30, 0x01, 0x05], vec![0x30, 0x00]]
        );
        // Truncated DER is not DER (nor PEM).
        assert!(parse_chain(&[0x30, 0x05, 0x01]).is_err());
    }
}
