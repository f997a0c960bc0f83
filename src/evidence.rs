//! Evidence of refused certificates.
//!
//! Every refusal is logged at WARN; with an evidence directory, the presented chain is also
//! saved as `<time>-<fingerprint>.pem` next to `<time>-<fingerprint>.json` (time, upstream,
//! refusal rule and reason, per-SCT verdicts, chain fingerprints), so an incident responder
//! can later tell exactly which certificate an upstream presented. The directory is kept
//! under a size cap by deleting the oldest evidence first.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine;
use serde::Serialize;

use crate::tls::pins::CertFingerprint;
use crate::tls::verifier::{RefusalEvent, RefusalObserver};

/// Writes evidence files for refusals.
#[derive(Debug)]
pub struct EvidenceStore {
    dir: PathBuf,
    max_bytes: u64,
    lock: Mutex<()>,
}

/// The JSON evidence record.
#[derive(Debug, Serialize)]
pub struct EvidenceRecord<'a> {
    /// RFC 3339 time of the refusal.
    pub time: String,
    /// The upstream (verifier label).
    pub upstream: &'a str,
    /// The TLS server name used.
    pub server_name: &'a str,
    /// The rule that failed.
    pub refusal: &'static str,
    /// The full refusal message.
    pub reason: String,
    /// SHA-256 fingerprints of the presented certificates, leaf first.
    pub chain_sha256: Vec<String>,
    /// Per-SCT verdicts, when the CT step ran.
    pub scts: serde_json::Value,
    /// The stapled OCSP response, base64 (empty when none).
    pub ocsp_base64: String,
}

impl EvidenceStore {
    /// Store evidence in `dir` (created if missing), keeping it under `max_bytes`.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            max_bytes,
            lock: Mutex::new(()),
        })
    }

    /// The evidence directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The JSON evidence file a refusal of `leaf` at `now_secs` is written to.
    pub fn path_for(&self, now_secs: u64, leaf: &[u8]) -> PathBuf {
        self.dir
            .join(format!("{}.json", evidence_stem(now_secs, leaf)))
    }

    fn write(&self, event: &RefusalEvent<'_>) -> std::io::Result<PathBuf> {
        let leaf = event.chain.first().map(|c| c.as_ref()).unwrap_or(&[]);
        let time = format_time(event.now.as_secs());
        let refusal = event.decision.refusal.as_ref();
        let record = EvidenceRecord {
            time: time.clone(),
            upstream: event.label,
            server_name: &event.server_name,
            refusal: refusal.map(|r| r.rule()).unwrap_or("unknown"),
            reason: refusal.map(|r| r.to_string()).unwrap_or_default(),
            chain_sha256: event
                .chain
                .iter()
                .map(|c| CertFingerprint::of_cert(c.as_ref()).to_string())
                .collect(),
            scts: event
                .decision
                .ct
                .as_ref()
                .and_then(|r| serde_json::to_value(&r.scts).ok())
                .unwrap_or(serde_json::Value::Null),
            ocsp_base64: base64::engine::general_purpose::STANDARD.encode(event.ocsp),
        };
        let stem = evidence_stem(event.now.as_secs(), leaf);
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let pem_path = self.dir.join(format!("{stem}.pem"));
        let mut pem = std::fs::File::create(&pem_path)?;
        for cert in &event.chain {
            pem.write_all(pem_block("CERTIFICATE", cert.as_ref()).as_bytes())?;
        }
        let json_path = self.dir.join(format!("{stem}.json"));
        let json = serde_json::to_vec_pretty(&record).map_err(std::io::Error::other)?;
        std::fs::write(&json_path, json)?;
        self.enforce_cap()?;
        Ok(json_path)
    }

    fn enforce_cap(&self) -> std::io::Result<()> {
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                meta.is_file().then(|| {
                    (
                        meta.modified().unwrap_or(std::time::UNIX_EPOCH),
                        meta.len(),
                        e.path(),
                    )
                })
            })
            .collect();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        files.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.2.cmp(&b.2)));
        for (_, len, path) in files {
            if total <= self.max_bytes {
                break;
            }
            std::fs::remove_file(&path)?;
            total = total.saturating_sub(len);
        }
        Ok(())
    }
}

impl RefusalObserver for EvidenceStore {
    fn refused(&self, event: &RefusalEvent<'_>) {
        match self.write(event) {
            Ok(path) => {
                tracing::warn!(upstream = event.label, evidence = %path.display(), "refused certificate saved as evidence")
            }
            Err(e) => {
                tracing::error!(upstream = event.label, dir = %self.dir.display(), "could not save evidence: {e}")
            }
        }
    }
}

/// The file name stem of the evidence of a refusal of `leaf` at `now_secs`:
/// `<RFC 3339 time without colons>-<first 16 hex digits of the leaf's SHA-256>`.
fn evidence_stem(now_secs: u64, leaf: &[u8]) -> String {
    let fingerprint = CertFingerprint::of_cert(leaf).to_string();
    let short = fingerprint.get(..16).unwrap_or(&fingerprint);
    format!("{}-{short}", format_time(now_secs).replace(':', ""))
}

/// A PEM block with 64-column base64.
pub fn pem_block(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// RFC 3339 UTC time for Unix seconds.
pub fn format_time(secs: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| secs.to_string())
}
