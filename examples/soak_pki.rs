//! Writes a test PKI for the soak benchmark (`bench/soak.sh`): `ca.pem`, `chain.pem`,
//! `key.pem`, `log_list.json`, `rogue_ca.pem` and `pins.txt` (labelled issuer pins, the
//! same format as `ctdns pki`), for a leaf with IP SAN `IP` (default 127.0.0.1).
//!
//! ```text
//! cargo run --release --example soak_pki -- DIR [IP]
//! ```

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use ctdns::pki::{demo_pki, write_files, CaCert};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: soak_pki DIR [IP]");
        return ExitCode::from(2);
    };
    let ip: IpAddr = match args.next().map(|a| a.to_string_lossy().parse()) {
        None => IpAddr::from([127, 0, 0, 1]),
        Some(Ok(ip)) => ip,
        Some(Err(e)) => {
            eprintln!("soak_pki: bad IP: {e}");
            return ExitCode::from(2);
        }
    };
    let (pki, leaf) = match demo_pki(ip) {
        Ok(generated) => generated,
        Err(e) => {
            eprintln!("soak_pki: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = write_files(&dir, &pki, &leaf) {
        eprintln!("soak_pki: {e}");
        return ExitCode::FAILURE;
    }
    let mut pins = String::new();
    for (ca, pin) in pki.spki_pins() {
        let label = match ca {
            CaCert::Root => "honest-root",
            CaCert::Intermediate => "honest-intermediate",
            CaCert::RogueRoot => "rogue-root",
            CaCert::RogueIntermediate => "rogue-intermediate",
            _ => continue,
        };
        let _ = writeln!(pins, "{label:<20} {pin}");
    }
    if let Err(e) = std::fs::write(dir.join("pins.txt"), &pins) {
        eprintln!("soak_pki: pins.txt: {e}");
        return ExitCode::FAILURE;
    }
    print!("{pins}");
    ExitCode::SUCCESS
}
