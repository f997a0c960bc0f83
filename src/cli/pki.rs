//! `ctdns pki`: write a TEST PKI to a directory, for lab setups with unbound, dnsdist or
//! ctdns itself: honest and rogue CAs, a server chain and key with IP SANs and real SCTs, the
//! matching CT log list, issuer pins, and a README with configuration snippets.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use time::Duration;

use crate::cli::common::EXIT_BAD_INPUT;
use crate::pki::{
    default_logs, write_files, CaCert, IssuedLeaf, LeafIssuer, LeafSpec, PkiError, PkiOptions,
    SctSpec, TestPki,
};

/// Longest certificate lifetime `--days` accepts (the CA/Browser Forum maximum).
pub const MAX_DAYS: u32 = 398;
/// Above this many days of lifetime, CT policies require 3 embedded SCTs instead of 2.
pub const SHORT_LIFETIME_DAYS: u32 = 180;

/// Arguments of `ctdns pki`.
#[derive(Debug, Clone, clap::Args)]
pub struct PkiArgs {
    /// Directory to write into (created if missing; ctdns's files in it are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// IP address the server certificate is for (iPAddress SAN); repeatable, at least one.
    #[arg(long = "ip", value_name = "IP", required = true)]
    pub ips: Vec<IpAddr>,
    /// Also a DNS name (dNSName SAN); repeatable.
    #[arg(long = "dns", value_name = "NAME")]
    pub dns_names: Vec<String>,
    /// Certificate lifetime in days (1 to 398). Above 180 days, 3 SCTs are embedded.
    #[arg(long, value_name = "N", default_value_t = 90)]
    pub days: u32,
    /// Also write a rogue chain and key: a valid, CT-logged certificate for the same IPs
    /// from the rogue CA (only an issuer pin tells it apart).
    #[arg(long)]
    pub rogue: bool,
    /// Deliver the SCTs in a stapled OCSP response (`ocsp.der`) instead of embedding them.
    #[arg(long)]
    pub ocsp: bool,
}

/// Why `ctdns pki` failed; [`PkiCliError::exit_code`] tells bad input from failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiCliError {
    /// No `--ip` was given.
    #[error("at least one --ip is required: ctdns dials resolvers by IP address")]
    NoIp,
    /// `--days` is out of range.
    #[error("--days {days}: must be between 1 and {MAX_DAYS}")]
    Days {
        /// The value given.
        days: u32,
    },
    /// A `--dns` value is not a DNS name.
    #[error("--dns `{name}`: not a valid DNS name")]
    DnsName {
        /// The value given.
        name: String,
    },
    /// The output directory cannot be created or written.
    #[error("--out {path}: {source}")]
    Output {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The PKI could not be generated.
    #[error(transparent)]
    Pki(PkiError),
}

impl From<PkiError> for PkiCliError {
    fn from(e: PkiError) -> Self {
        match e {
            PkiError::Io { path, source } => PkiCliError::Output { path, source },
            other => PkiCliError::Pki(other),
        }
    }
}

impl PkiCliError {
    /// 2 for bad input (arguments, output directory), 1 for a generation failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            PkiCliError::Pki(_) => 1,
            _ => EXIT_BAD_INPUT,
        }
    }
}

/// What `ctdns pki` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiSummary {
    /// The output directory.
    pub dir: PathBuf,
    /// File names written, in order.
    pub files: Vec<String>,
    /// Files of an earlier run removed because this run does not produce them.
    pub removed: Vec<String>,
    /// Labelled pins, as in `pins.txt`.
    pub pins: Vec<(&'static str, String)>,
    /// `log (operator)` of every SCT of the server certificate.
    pub scts: Vec<String>,
}

/// Files written only by some runs; removed when this run does not write them, so the
/// directory never mixes two runs.
const OPTIONAL_FILES: &[&str] = &[
    "ocsp.der",
    "rogue_chain.pem",
    "rogue_key.pem",
    "rogue_ocsp.der",
];

/// Run `ctdns pki`.
pub fn run(args: PkiArgs) -> ExitCode {
    match generate(&args) {
        Ok(summary) => {
            print!("{}", render_summary(&args, &summary));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ctdns pki: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn check_args(args: &PkiArgs) -> Result<(Vec<IpAddr>, Vec<String>), PkiCliError> {
    if args.days == 0 || args.days > MAX_DAYS {
        return Err(PkiCliError::Days { days: args.days });
    }
    let mut ips = Vec::new();
    for ip in &args.ips {
        if !ips.contains(ip) {
            ips.push(*ip);
        }
    }
    if ips.is_empty() {
        return Err(PkiCliError::NoIp);
    }
    let mut names = Vec::new();
    for name in &args.dns_names {
        let bad = || PkiCliError::DnsName { name: name.clone() };
        if name.parse::<IpAddr>().is_ok() {
            return Err(bad());
        }
        let dns = rustls::pki_types::DnsName::try_from(name.as_str()).map_err(|_| bad())?;
        let dns = dns.as_ref().trim_end_matches('.').to_ascii_lowercase();
        if dns.is_empty() {
            return Err(bad());
        }
        if !names.contains(&dns) {
            names.push(dns);
        }
    }
    Ok((ips, names))
}

/// The logs whose SCTs the server certificate carries: two operators, three logs above
/// [`SHORT_LIFETIME_DAYS`] (embedded); always two operators for OCSP delivery.
fn sct_logs(days: u32, ocsp: bool, rogue: bool) -> Vec<&'static str> {
    use default_logs::*;
    let second = if rogue { GAMMA } else { BETA };
    if !ocsp && days > SHORT_LIFETIME_DAYS {
        vec![ALPHA, BETA, GAMMA]
    } else {
        vec![ALPHA, second]
    }
}

fn issue(
    pki: &TestPki,
    args: &PkiArgs,
    ips: &[IpAddr],
    names: &[String],
    issuer: LeafIssuer,
) -> Result<(IssuedLeaf, Vec<&'static str>), PkiCliError> {
    let first = ips.first().copied().ok_or(PkiCliError::NoIp)?;
    let mut spec: LeafSpec = pki.leaf_spec(first).issued_by(issuer);
    spec.ip_sans = ips.to_vec();
    spec.dns_sans = names.to_vec();
    spec.not_after = spec.not_before + Duration::days(i64::from(args.days));
    let ts = pki.now() - Duration::minutes(1);
    let logs = sct_logs(
        args.days,
        args.ocsp,
        issuer == LeafIssuer::RogueIntermediate,
    );
    for log in &logs {
        let sct = SctSpec::at(*log, ts);
        spec = if args.ocsp {
            spec.staple(sct)
        } else {
            spec.embed(sct)
        };
    }
    Ok((pki.issue_leaf(&spec)?, logs))
}

fn write_mode(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<String, PkiCliError> {
    let path = dir.join(name);
    crate::safe_file::replace(&path, bytes, mode)
        .map_err(|source| PkiCliError::Output { path, source })?;
    Ok(name.to_string())
}

/// Write a public file (0644), replacing whatever has its name (never through a symlink).
fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<String, PkiCliError> {
    write_mode(dir, name, bytes, crate::safe_file::MODE_PUBLIC)
}

/// Write a private key file: created 0600 from the first byte, replacing whatever has its
/// name (never through a symlink).
fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> Result<String, PkiCliError> {
    write_mode(dir, name, bytes, crate::safe_file::MODE_PRIVATE)
}

fn pin_label(ca: CaCert) -> &'static str {
    match ca {
        CaCert::Root => "honest-root",
        CaCert::Intermediate => "honest-intermediate",
        CaCert::RogueRoot => "rogue-root",
        CaCert::RogueIntermediate => "rogue-intermediate",
        CaCert::PrecertSigner => "precert-signer",
    }
}

/// Generate the PKI and write every file into `args.out`.
pub fn generate(args: &PkiArgs) -> Result<PkiSummary, PkiCliError> {
    let (ips, names) = check_args(args)?;
    let pki = TestPki::generate(&PkiOptions::default())?;
    let (leaf, logs) = issue(&pki, args, &ips, &names, LeafIssuer::Intermediate)?;
    let dir = args.out.as_path();
    let written = write_files(dir, &pki, &leaf)?;
    let name_of = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut files: Vec<String> = [
        &written.ca,
        &written.chain,
        &written.key,
        &written.log_list,
        &written.rogue_ca,
    ]
    .into_iter()
    .map(|p| name_of(p))
    .collect();
    files.extend(written.ocsp.as_deref().map(name_of));

    if args.rogue {
        let (rogue, _) = issue(&pki, args, &ips, &names, LeafIssuer::RogueIntermediate)?;
        files.push(write(dir, "rogue_chain.pem", rogue.chain_pem().as_bytes())?);
        files.push(write_private(
            dir,
            "rogue_key.pem",
            rogue.key_pem().as_bytes(),
        )?);
        if let Some(ocsp) = &rogue.ocsp_response {
            files.push(write(dir, "rogue_ocsp.der", ocsp)?);
        }
    }

    let pins: Vec<(&'static str, String)> = pki
        .spki_pins()
        .into_iter()
        .map(|(ca, pin)| (pin_label(ca), pin))
        .collect();
    let mut pins_txt = String::from(
        "# Issuer pins of the ctdns TEST PKI: base64 SHA-256 of each CA's SubjectPublicKeyInfo.\n\
         # Use one in a ctdns upstream (`pins = [\"...\"]`) or `ctdns verify --pin`. A connection\n\
         # passes when ANY CA certificate of its verified chain matches ANY configured pin.\n",
    );
    for (ca, pin) in pki.spki_pins() {
        let cn = pki.ca(ca).map(|c| c.common_name()).unwrap_or_default();
        let _ = writeln!(pins_txt, "{:<20} {pin}  # {cn}", pin_label(ca));
    }
    files.push(write(dir, "pins.txt", pins_txt.as_bytes())?);

    let mut removed = Vec::new();
    for name in OPTIONAL_FILES {
        let path = dir.join(name);
        if !files.iter().any(|f| f == name) && path.exists() {
            std::fs::remove_file(&path).map_err(|source| PkiCliError::Output { path, source })?;
            removed.push(name.to_string());
        }
    }

    let scts: Vec<String> = logs
        .iter()
        .map(|l| {
            let op = pki.log(l).map(|x| x.operator.as_str()).unwrap_or("?");
            format!("{l} ({op})")
        })
        .collect();
    let honest_pin = pins
        .iter()
        .find(|(l, _)| *l == "honest-root")
        .map(|(_, p)| p.clone())
        .unwrap_or_default();
    let readme = readme(dir, args, &ips, &names, &scts, &honest_pin);
    files.push(write(dir, "README.txt", readme.as_bytes())?);

    Ok(PkiSummary {
        dir: dir.to_path_buf(),
        files,
        removed,
        pins,
        scts,
    })
}

/// A TOML / unbound string literal for a path.
fn quoted(path: &Path) -> String {
    serde_json::to_string(&path.display().to_string()).unwrap_or_else(|_| "\"\"".into())
}

/// The ctdns configuration snippet of the README: the first IP as a DoT upstream, trusting
/// only the honest root, with the honest root pinned.
pub fn config_snippet(dir: &Path, ip: IpAddr, pin: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "listen = [\"127.0.0.1:5353\"]\n");
    let _ = writeln!(
        s,
        "[ct]\nlog_list = {}\n",
        quoted(&dir.join("log_list.json"))
    );
    let _ = writeln!(s, "[tls]\nroots = {}\n", quoted(&dir.join("ca.pem")));
    let _ = writeln!(
        s,
        "[[upstream]]\nprotocol = \"dot\"\nip = \"{ip}\"\nport = 853\npins = [\"{pin}\"]"
    );
    s
}

/// The unbound snippet of the README.
pub fn unbound_snippet(dir: &Path, ip: IpAddr) -> String {
    format!(
        "server:\n    interface: {ip}@853\n    tls-port: 853\n    tls-service-pem: {}\n    tls-service-key: {}\n",
        quoted(&dir.join("chain.pem")),
        quoted(&dir.join("key.pem")),
    )
}

fn readme(
    dir: &Path,
    args: &PkiArgs,
    ips: &[IpAddr],
    names: &[String],
    scts: &[String],
    honest_pin: &str,
) -> String {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let ip = ips
        .first()
        .copied()
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let ip_list: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
    let delivery = if args.ocsp {
        "delivered in the stapled OCSP response ocsp.der (not embedded)"
    } else {
        "embedded in the certificate"
    };
    let mut r = String::new();
    let _ = write!(
        r,
        "ctdns TEST PKI — for labs and tests only. Never add these CAs to a real trust store.\n\
         The CA private keys were discarded after signing: nobody can issue more certificates\n\
         from these CAs. The CT logs are test logs; their SCTs verify only against log_list.json.\n\n\
         Server certificate: IP SANs {ips}; DNS SANs {dns}; valid {days} days from one hour\n\
         before generation; {n} SCTs from logs of distinct operators ({scts}), {delivery}.\n\n\
         FILES\n\
         ca.pem          honest root CA (the trust anchor: ctdns `tls.roots`, `verify --roots`).\n\
         chain.pem       server certificate then the intermediate CA that issued it: what unbound's\n\
         \x20               `tls-service-pem` and dnsdist's `addTLSLocal` certificate want.\n\
         key.pem         the server's private key (PKCS#8 PEM, mode 0600; chown it to the server's\n\
         \x20               user, e.g. `unbound`, if that user must read it).\n\
         log_list.json   the test CT logs as a Chrome v3 log list (ctdns `ct.log_list`). Stamped at\n\
         \x20               generation: ctdns warns when it is older than 70 days; regenerate then.\n\
         rogue_ca.pem    the rogue root CA. Trusting it too (cat ca.pem rogue_ca.pem) models a\n\
         \x20               client that trusts every public CA: the rogue chain is then chain-valid.\n",
        ips = ip_list.join(", "),
        dns = if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        },
        days = args.days,
        n = scts.len(),
        scts = scts.join(", "),
    );
    if args.ocsp {
        r.push_str(
            "ocsp.der        stapled OCSP response (DER) carrying the SCTs. The server must staple it\n\
             \x20               (dnsdist: `ocspResponses`; unbound cannot staple). Valid 7 days.\n",
        );
    }
    if args.rogue {
        r.push_str(
            "rogue_chain.pem a VALID, CT-logged chain for the same IPs/names from the rogue CA (the\n\
             \x20               Fina scenario). Serve it to see ctdns refuse it by issuer pin.\n\
             rogue_key.pem   its private key.\n",
        );
        if args.ocsp {
            r.push_str("rogue_ocsp.der  its stapled OCSP response.\n");
        }
    }
    let _ = write!(
        r,
        "pins.txt        base64 SPKI SHA-256 pin of each CA, labelled (honest-root, ...).\n\
         README.txt      this file.\n\n\
         CTDNS CONFIGURATION (TOML for `ctdns serve`), the first IP as the upstream:\n\n{config}\n\
         UNBOUND (unbound.conf), serving DoT on the first IP:\n\n{unbound}\n\
         CHECK A CHAIN OFFLINE:\n\n\
         \x20   ctdns verify --chain {chain} --roots {ca} --log-list {list} --ip {ip}{ocsp_arg} --pin {pin}\n",
        config = config_snippet(&abs, ip, honest_pin),
        unbound = unbound_snippet(&abs, ip),
        chain = abs.join("chain.pem").display(),
        ca = abs.join("ca.pem").display(),
        list = abs.join("log_list.json").display(),
        ocsp_arg = if args.ocsp {
            format!(" --ocsp {}", abs.join("ocsp.der").display())
        } else {
            String::new()
        },
        pin = honest_pin,
    );
    if args.rogue {
        let _ = write!(
            r,
            "\nThe rogue chain passes chain and CT checks when both roots are trusted, and is refused\n\
             only by the pin (exit 1, rule issuer-pin):\n\n\
             \x20   cat {ca} {rogue_ca} > both_roots.pem\n\
             \x20   ctdns verify --chain {rogue} --roots both_roots.pem --log-list {list} --ip {ip}{ocsp_arg} --pin {pin}\n",
            ca = abs.join("ca.pem").display(),
            rogue_ca = abs.join("rogue_ca.pem").display(),
            rogue = abs.join("rogue_chain.pem").display(),
            list = abs.join("log_list.json").display(),
            ocsp_arg = if args.ocsp {
                format!(" --ocsp {}", abs.join("rogue_ocsp.der").display())
            } else {
                String::new()
            },
            pin = honest_pin,
        );
    }
    r
}

fn render_summary(args: &PkiArgs, s: &PkiSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ctdns pki: wrote a TEST PKI to {} (labs and tests only)",
        s.dir.display()
    );
    let ips: Vec<String> = args.ips.iter().map(IpAddr::to_string).collect();
    let _ = writeln!(
        out,
        "  server certificate: IP {}{}, {} days, SCTs {} from {}",
        ips.join(", "),
        if args.dns_names.is_empty() {
            String::new()
        } else {
            format!(", DNS {}", args.dns_names.join(", "))
        },
        args.days,
        if args.ocsp {
            "stapled (ocsp.der)"
        } else {
            "embedded"
        },
        s.scts.join(", "),
    );
    let _ = writeln!(out, "  files: {}", s.files.join(" "));
    if !s.removed.is_empty() {
        let _ = writeln!(
            out,
            "  removed from an earlier run: {}",
            s.removed.join(" ")
        );
    }
    for (label, pin) in &s.pins {
        let _ = writeln!(out, "  pin {label:<20} {pin}");
    }
    let _ = writeln!(
        out,
        "  next: {} (config snippets for ctdns and unbound)",
        s.dir.join("README.txt").display()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn args(dir: &Path) -> PkiArgs {
        PkiArgs {
            out: dir.to_path_buf(),
            ips: vec!["127.0.0.1".parse().unwrap()],
            dns_names: Vec::new(),
            days: 90,
            rogue: false,
            ocsp: false,
        }
    }

    #[test]
    fn bad_days_and_names_are_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        for days in [0, MAX_DAYS + 1] {
            let e = generate(&PkiArgs {
                days,
                ..args(dir.path())
            })
            .unwrap_err();
            assert!(matches!(e, PkiCliError::Days { .. }));
            assert_eq!(e.exit_code(), EXIT_BAD_INPUT);
        }
        let e = generate(&PkiArgs {
            ips: Vec::new(),
            ..args(dir.path())
        })
        .unwrap_err();
        assert!(matches!(e, PkiCliError::NoIp));
        assert_eq!(e.exit_code(), EXIT_BAD_INPUT);
        for name in ["bad name", "127.0.0.1", "", "a..b"] {
            let e = generate(&PkiArgs {
                dns_names: vec![name.into()],
                ..args(dir.path())
            })
            .unwrap_err();
            assert!(matches!(e, PkiCliError::DnsName { .. }), "{name}: {e}");
        }
        // Nothing was written for bad input.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_unwritable_output_is_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        let e = generate(&args(&file.join("sub"))).unwrap_err();
        assert!(matches!(e, PkiCliError::Output { .. }), "{e}");
        assert_eq!(e.exit_code(), EXIT_BAD_INPUT);
    }

    #[test]
    fn sct_count_follows_lifetime_and_delivery() {
        assert_eq!(sct_logs(180, false, false).len(), 2);
        assert_eq!(sct_logs(181, false, false).len(), 3);
        assert_eq!(sct_logs(398, true, false).len(), 2);
        assert_ne!(sct_logs(90, false, true), sct_logs(90, false, false));
    }

    #[test]
    fn long_lived_and_ocsp_certificates_pass_the_policy() {
        use crate::cli::common::{checker, CtArgs};
        use crate::tls::verifier::CtVerifier;
        use std::sync::Arc;
        for (days, ocsp) in [(181, false), (398, false), (90, true)] {
            let dir = tempfile::tempdir().unwrap();
            let a = PkiArgs {
                days,
                ocsp,
                dns_names: vec!["dns.Example.test.".into()],
                ips: vec![
                    "192.0.2.53".parse().unwrap(),
                    "2001:db8::53".parse().unwrap(),
                ],
                ..args(dir.path())
            };
            let summary = generate(&a).unwrap();
            assert_eq!(summary.files.contains(&"ocsp.der".to_string()), ocsp);
            let chain = crate::cli::common::read_chain(&dir.path().join("chain.pem")).unwrap();
            let (_, cert) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
            let v = cert.validity();
            let lifetime = v.not_after.to_datetime() - v.not_before.to_datetime();
            assert_eq!(lifetime.whole_days(), i64::from(days));
            let ct = CtArgs {
                log_list: Some(dir.path().join("log_list.json")),
                roots: Some(dir.path().join("ca.pem")),
                policy: crate::ct::policy::PolicyKind::Chrome,
                max_list_age_days: 70,
                refuse_stale_list: false,
            };
            let roots = crate::cli::common::roots(ct.roots.as_deref()).unwrap();
            let verifier = CtVerifier::new(Arc::new(roots), checker(&ct).unwrap());
            let ocsp_bytes = if ocsp {
                std::fs::read(dir.path().join("ocsp.der")).unwrap()
            } else {
                Vec::new()
            };
            let inter: Vec<_> = chain[1..]
                .iter()
                .map(|c| rustls::pki_types::CertificateDer::from(c.as_slice()))
                .collect();
            let name = rustls::pki_types::ServerName::try_from("dns.example.test").unwrap();
            for ip in &a.ips {
                let d = verifier.verify(
                    &rustls::pki_types::CertificateDer::from(chain[0].as_slice()),
                    &inter,
                    Some(*ip),
                    Some(&name),
                    &ocsp_bytes,
                    rustls::pki_types::UnixTime::now(),
                );
                assert!(d.accepted(), "days {days} ocsp {ocsp}: {:?}", d.refusal);
            }
        }
    }

    #[test]
    fn key_files_are_never_written_through_planted_symlinks() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let mut victims = Vec::new();
        for key in ["key.pem", "rogue_key.pem", "README.txt"] {
            let victim = dir.path().join(format!("victim-{key}"));
            std::fs::write(&victim, b"precious").unwrap();
            std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
            std::os::unix::fs::symlink(&victim, out.join(key)).unwrap();
            victims.push(victim);
        }
        generate(&PkiArgs {
            rogue: true,
            ..args(&out)
        })
        .unwrap();
        for victim in &victims {
            assert_eq!(std::fs::read(victim).unwrap(), b"precious", "{victim:?}");
            let mode = std::fs::metadata(victim).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644, "{victim:?}");
        }
        for key in ["key.pem", "rogue_key.pem"] {
            let meta = std::fs::symlink_metadata(out.join(key)).unwrap();
            assert!(meta.file_type().is_file(), "{key}");
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{key}");
        }
    }

    #[test]
    fn readme_snippets_are_valid_config_and_stale_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let first = generate(&PkiArgs {
            rogue: true,
            ocsp: true,
            ..args(dir.path())
        })
        .unwrap();
        for f in [
            "rogue_chain.pem",
            "rogue_key.pem",
            "rogue_ocsp.der",
            "ocsp.der",
        ] {
            assert!(first.files.iter().any(|x| x == f), "{f}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for key in ["key.pem", "rogue_key.pem"] {
                let mode = std::fs::metadata(dir.path().join(key))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{key}");
            }
        }
        let second = generate(&args(dir.path())).unwrap();
        assert_eq!(second.removed.len(), 4, "{:?}", second.removed);
        for f in OPTIONAL_FILES {
            assert!(!dir.path().join(f).exists(), "{f}");
        }

        let pin = &second.pins[0].1;
        let snippet = config_snippet(dir.path(), "127.0.0.1".parse().unwrap(), pin);
        let config = Config::from_toml(&snippet).unwrap();
        assert_eq!(config.upstreams.len(), 1);
        assert_eq!(
            config.upstreams[0].pins(),
            [crate::tls::pins::SpkiPin::parse(pin).unwrap()]
        );
        assert_eq!(
            config.tls.roots.as_deref(),
            Some(dir.path().join("ca.pem").as_path())
        );
        let readme = std::fs::read_to_string(dir.path().join("README.txt")).unwrap();
        assert!(readme.contains(&snippet));
        assert!(readme.contains("tls-service-pem"));
        let pins = std::fs::read_to_string(dir.path().join("pins.txt")).unwrap();
        let honest = pins
            .lines()
            .find(|l| l.starts_with("honest-root"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap();
        assert_eq!(honest, pin);
    }
}
