//! Evidence of refused certificates.
//!
//! Every refusal is logged at WARN; with an evidence directory, the presented chain is also
//! saved as `<time>-<fingerprint>.pem` next to `<time>-<fingerprint>.json` (time, upstream,
//! refusal rule and reason, per-SCT verdicts, chain fingerprints), so an incident responder
//! can later tell exactly which certificate an upstream presented.
//!
//! Hardening, because the names are predictable and a refusal can be provoked by anyone on
//! the path, once per query:
//! - The directory must be owned by the user ctdns runs as and not writable by group or
//!   others ([`EvidenceDirError`]); a missing one is created with mode 0700.
//! - Files are created new, with mode 0600, never through a symlink, under a temporary name
//!   and then linked into place; an existing name (a planted symlink, say) is never reused.
//! - The size cap only counts and deletes ctdns's own evidence and temporary files
//!   ([`is_evidence_file_name`]); anything else in the directory is left alone.
//! - Writing happens on a background thread fed by a bounded queue: the TLS handshake (where
//!   [`RefusalObserver::refused`] runs) never blocks on the disk. When the queue is full the
//!   evidence is dropped and counted; identical refusals (same upstream, same chain) within
//!   [`COLLAPSE_WINDOW`] are saved once and counted as repeats.

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Serialize;

use crate::safe_file::{self, MODE_PRIVATE};
use crate::tls::pins::CertFingerprint;
use crate::tls::verifier::{RefusalEvent, RefusalObserver};

/// How many refusals may wait for the writer thread; beyond that, evidence is dropped.
pub const QUEUE_CAPACITY: usize = 64;
/// Identical refusals (same upstream, same chain) within this window are saved once.
pub const COLLAPSE_WINDOW: Duration = Duration::from_secs(60);
/// At most this many distinct recent refusals are remembered for collapsing.
const MAX_RECENT: usize = 1024;

/// Why an evidence directory cannot be used. Each variant names the rule it breaks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceDirError {
    /// The directory did not exist and could not be created.
    #[error("cannot create it: {0}")]
    Create(std::io::Error),
    /// The directory could not be resolved or inspected.
    #[error("cannot inspect it: {0}")]
    Inspect(std::io::Error),
    /// The path is not a directory.
    #[error("it is not a directory")]
    NotADirectory,
    /// The directory belongs to another user (who could plant files or links in it).
    #[error(
        "it is owned by uid {owner}, but ctdns runs as uid {euid}; it must be owned by the \
         user ctdns runs as (after dropping privileges, the configured `user`)"
    )]
    WrongOwner {
        /// The directory's owner.
        owner: u32,
        /// The effective uid of ctdns.
        euid: u32,
    },
    /// Group or others may write to the directory.
    #[error("its mode {mode:04o} lets group or others write to it; use mode 0700 (chmod go-w)")]
    Writable {
        /// The permission bits.
        mode: u32,
    },
    /// The writer thread could not be started.
    #[error("cannot start the evidence writer thread: {0}")]
    Writer(std::io::Error),
}

/// Counters of the evidence writer, for logs and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvidenceStats {
    /// Refusals saved (a `.pem` and `.json` pair each).
    pub written: u64,
    /// Refusals not saved because the queue was full.
    pub dropped: u64,
    /// Refusals not saved because an identical one was saved within [`COLLAPSE_WINDOW`].
    pub collapsed: u64,
    /// Refusals whose evidence could not be written (I/O errors).
    pub failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    collapsed: AtomicU64,
    failed: AtomicU64,
}

/// One refusal, owned, on its way to the writer thread.
#[derive(Debug)]
struct Job {
    upstream: String,
    server_name: String,
    chain: Vec<Vec<u8>>,
    ocsp: Vec<u8>,
    now_secs: u64,
    rule: &'static str,
    reason: String,
    scts: serde_json::Value,
}

#[derive(Debug)]
struct Recent {
    first: Instant,
    repeats: u64,
    /// The JSON file the first of these refusals is saved as.
    file: PathBuf,
}

/// Saves evidence files for refusals, on a background thread (see the module docs).
#[derive(Debug)]
pub struct EvidenceStore {
    dir: PathBuf,
    queue: SyncSender<Job>,
    recent: Mutex<HashMap<[u8; 32], Recent>>,
    window: Duration,
    counters: Arc<Counters>,
}

/// The part that touches the disk: runs on the writer thread.
#[derive(Debug)]
struct Writer {
    dir: PathBuf,
    max_bytes: u64,
    counters: Arc<Counters>,
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

/// Create `dir` (mode 0700) if missing, resolve it, and check it is a directory owned by the
/// effective user and not writable by group or others. Returns the resolved path.
pub fn prepare_dir(dir: &Path) -> Result<PathBuf, EvidenceDirError> {
    if std::fs::symlink_metadata(dir).is_err() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(EvidenceDirError::Create)?;
    }
    let dir = std::fs::canonicalize(dir).map_err(EvidenceDirError::Inspect)?;
    let meta = std::fs::metadata(&dir).map_err(EvidenceDirError::Inspect)?;
    if !meta.is_dir() {
        return Err(EvidenceDirError::NotADirectory);
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(EvidenceDirError::WrongOwner {
            owner: meta.uid(),
            euid,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(EvidenceDirError::Writable { mode });
    }
    Ok(dir)
}

impl EvidenceStore {
    /// Store evidence in `dir` (created with mode 0700 if missing; it must be owned by the
    /// effective user and not writable by group or others), keeping ctdns's evidence in it
    /// under `max_bytes`. Starts the writer thread, which stops when the store is dropped.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> Result<Self, EvidenceDirError> {
        let (store, rx, writer) = Self::unstarted(&dir.into(), max_bytes, QUEUE_CAPACITY)?;
        std::thread::Builder::new()
            .name("ctdns-evidence".into())
            .spawn(move || writer.run(rx))
            .map_err(EvidenceDirError::Writer)?;
        Ok(store)
    }

    /// The store and its writer, not yet connected by a thread.
    fn unstarted(
        dir: &Path,
        max_bytes: u64,
        capacity: usize,
    ) -> Result<(Self, Receiver<Job>, Writer), EvidenceDirError> {
        let dir = prepare_dir(dir)?;
        let (queue, rx) = std::sync::mpsc::sync_channel(capacity);
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            dir: dir.clone(),
            max_bytes,
            counters: counters.clone(),
        };
        let store = Self {
            dir,
            queue,
            recent: Mutex::new(HashMap::new()),
            window: COLLAPSE_WINDOW,
            counters,
        };
        Ok((store, rx, writer))
    }

    /// The evidence directory (resolved).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The JSON file the evidence of a refusal of `leaf` at `now_secs` is saved as (written
    /// in the background; a name already taken gets a `-N` suffix, and a repeat of the same
    /// refusal within the collapse window is not written again).
    pub fn path_for(&self, now_secs: u64, leaf: &[u8]) -> PathBuf {
        self.dir
            .join(format!("{}.json", evidence_stem(now_secs, leaf)))
    }

    /// The writer's counters so far.
    pub fn stats(&self) -> EvidenceStats {
        let c = &self.counters;
        EvidenceStats {
            written: c.written.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            collapsed: c.collapsed.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }

    /// Queue `job` unless an identical refusal was queued within the window. Never blocks
    /// on I/O: only a short in-memory lock.
    fn submit(&self, key: [u8; 32], job: Job) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if let Some(r) = recent.get_mut(&key) {
            if now.duration_since(r.first) < self.window {
                r.repeats += 1;
                self.counters.collapsed.fetch_add(1, Ordering::Relaxed);
                let repeats = r.repeats;
                // One line per doubling keeps the log readable under a flood.
                if repeats.is_power_of_two() {
                    tracing::warn!(
                        upstream = %job.upstream,
                        repeats,
                        window_s = self.window.as_secs(),
                        "same certificate refused again; evidence already saved, not rewritten"
                    );
                }
                return;
            }
        }
        let upstream = job.upstream.clone();
        let file = self.path_for(
            job.now_secs,
            job.chain.first().map(Vec::as_slice).unwrap_or(&[]),
        );
        match self.queue.try_send(job) {
            Ok(()) => {
                if recent.len() >= MAX_RECENT {
                    recent.retain(|_, r| now.duration_since(r.first) < self.window);
                }
                if recent.len() < MAX_RECENT {
                    recent.insert(
                        key,
                        Recent {
                            first: now,
                            repeats: 0,
                            file,
                        },
                    );
                }
            }
            Err(TrySendError::Full(_)) => {
                let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        upstream = %upstream,
                        dropped,
                        dir = %self.dir.display(),
                        "evidence queue full: evidence of this refusal dropped"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    upstream = %upstream,
                    dir = %self.dir.display(),
                    "evidence writer has stopped: evidence of this refusal not saved"
                );
            }
        }
    }
}

/// Identity of a refusal for collapsing: the upstream and every certificate of the chain.
fn refusal_key(upstream: &str, chain: &[Vec<u8>]) -> [u8; 32] {
    use sha2::Digest;
    let mut ctx = sha2::Sha256::new();
    ctx.update((upstream.len() as u64).to_be_bytes());
    ctx.update(upstream.as_bytes());
    for cert in chain {
        ctx.update(CertFingerprint::of_cert(cert).0);
    }
    ctx.finalize().into()
}

impl RefusalObserver for EvidenceStore {
    fn refused(&self, event: &RefusalEvent<'_>) {
        let refusal = event.decision.refusal.as_ref();
        let job = Job {
            upstream: event.label.to_string(),
            server_name: event.server_name.clone(),
            chain: event.chain.iter().map(|c| c.as_ref().to_vec()).collect(),
            ocsp: event.ocsp.to_vec(),
            now_secs: event.now.as_secs(),
            rule: refusal.map(|r| r.rule()).unwrap_or("unknown"),
            reason: refusal.map(|r| r.to_string()).unwrap_or_default(),
            scts: event
                .decision
                .ct
                .as_ref()
                .and_then(|r| serde_json::to_value(&r.scts).ok())
                .unwrap_or(serde_json::Value::Null),
        };
        self.submit(refusal_key(&job.upstream, &job.chain), job);
    }

    /// [`EvidenceStore::path_for`] of the refused leaf at the refusal's time; for a repeat
    /// within the collapse window (not written again), the file of the first. (A name
    /// already taken on disk gets a `-N` suffix.)
    fn evidence_file(&self, event: &RefusalEvent<'_>) -> Option<PathBuf> {
        let leaf = event.chain.first()?;
        let chain: Vec<Vec<u8>> = event.chain.iter().map(|c| c.as_ref().to_vec()).collect();
        let key = refusal_key(event.label, &chain);
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        // A repeat within the collapse window is in the file of the first.
        if let Some(r) = recent.get(&key) {
            if r.first.elapsed() < self.window {
                return Some(r.file.clone());
            }
        }
        Some(self.path_for(event.now.as_secs(), leaf.as_ref()))
    }
}

impl Writer {
    fn run(self, rx: Receiver<Job>) {
        for job in rx {
            self.handle(&job);
        }
    }

    fn handle(&self, job: &Job) {
        match self.write(job) {
            Ok(path) => {
                self.counters.written.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(upstream = %job.upstream, evidence = %path.display(), "refused certificate saved as evidence");
            }
            Err(e) => {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(upstream = %job.upstream, dir = %self.dir.display(), "could not save evidence: {e}");
            }
        }
    }

    /// Write the `.pem` and `.json` of `job`; returns the JSON path.
    fn write(&self, job: &Job) -> std::io::Result<PathBuf> {
        let leaf = job.chain.first().map(Vec::as_slice).unwrap_or(&[]);
        let time = format_time(job.now_secs);
        let record = EvidenceRecord {
            time: time.clone(),
            upstream: &job.upstream,
            server_name: &job.server_name,
            refusal: job.rule,
            reason: job.reason.clone(),
            chain_sha256: job
                .chain
                .iter()
                .map(|c| CertFingerprint::of_cert(c).to_string())
                .collect(),
            scts: job.scts.clone(),
            ocsp_base64: base64::engine::general_purpose::STANDARD.encode(&job.ocsp),
        };
        let pem: String = job
            .chain
            .iter()
            .map(|c| pem_block("CERTIFICATE", c))
            .collect();
        let json = serde_json::to_vec_pretty(&record).map_err(std::io::Error::other)?;
        let base = evidence_stem(job.now_secs, leaf);
        let json_path = self.publish_pair(&base, pem.as_bytes(), &json)?;
        self.enforce_cap()?;
        Ok(json_path)
    }

    /// Publish `<stem>.pem` and `<stem>.json` under the first stem (`base`, `base-1`, ...)
    /// whose names are both free. Existing names are never overwritten or followed.
    fn publish_pair(&self, base: &str, pem: &[u8], json: &[u8]) -> std::io::Result<PathBuf> {
        let taken = |p: &Path| std::fs::symlink_metadata(p).is_ok();
        for n in 0..MAX_SUFFIX {
            let stem = if n == 0 {
                base.to_string()
            } else {
                format!("{base}-{n}")
            };
            let pem_path = self.dir.join(format!("{stem}.pem"));
            let json_path = self.dir.join(format!("{stem}.json"));
            if taken(&pem_path) || taken(&json_path) {
                continue;
            }
            match safe_file::publish_new(&pem_path, pem, MODE_PRIVATE) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
            match safe_file::publish_new(&json_path, json, MODE_PRIVATE) {
                Ok(()) => return Ok(json_path),
                Err(e) => {
                    let _ = std::fs::remove_file(&pem_path);
                    if e.kind() != std::io::ErrorKind::AlreadyExists {
                        return Err(e);
                    }
                }
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("every evidence name for {base} is taken"),
        ))
    }

    /// Delete the oldest of ctdns's own evidence (and temporary) files until they add up to
    /// at most `max_bytes`. Other files, symlinks and directories are neither counted nor
    /// touched.
    fn enforce_cap(&self) -> std::io::Result<()> {
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name();
                let name = name.to_str()?;
                if !is_evidence_file_name(name) {
                    return None;
                }
                // DirEntry::metadata does not follow symlinks.
                let meta = e.metadata().ok()?;
                meta.file_type().is_file().then(|| {
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

/// Collision suffixes tried per second and leaf (`-1` ... `-99`).
const MAX_SUFFIX: u32 = 100;

/// Whether `name` is one of ctdns's evidence files: `<time>-<fingerprint>[-<n>].pem` or
/// `.json`, with `<time>` as `YYYY-MM-DDTHHMMSSZ` and `<fingerprint>` 16 lowercase hex
/// digits, or a temporary file of one (see [`crate::safe_file`]).
pub fn is_evidence_file_name(name: &str) -> bool {
    is_final_evidence_name(name) || safe_file::is_temp_name_for(name, is_final_evidence_name)
}

fn is_final_evidence_name(name: &str) -> bool {
    let Some(stem) = name
        .strip_suffix(".pem")
        .or_else(|| name.strip_suffix(".json"))
    else {
        return false;
    };
    let b = stem.as_bytes();
    // YYYY-MM-DDTHHMMSSZ-<16 hex>
    const TIME: &[u8] = b"dddd-dd-ddTddddddZ-";
    if b.len() < TIME.len() + 16 {
        return false;
    }
    let time_ok = TIME.iter().zip(b).all(|(&want, &got)| match want {
        b'd' => got.is_ascii_digit(),
        other => got == other,
    });
    let (fp, rest) = b[TIME.len()..].split_at(16);
    let fp_ok = fp
        .iter()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
    let rest_ok = match rest {
        [] => true,
        [b'-', digits @ ..] => {
            (1..=2).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    };
    time_ok && fp_ok && rest_ok
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

pub use ctdns_verify::timefmt::format_time;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::verifier::{Decision, Refusal};
    use rustls::pki_types::{CertificateDer, UnixTime};
    use std::os::unix::fs::PermissionsExt;

    const T0: u64 = 1_700_000_000;

    fn leaf_chain() -> Vec<Vec<u8>> {
        let (_pki, leaf) = crate::pki::demo_pki("127.0.0.1".parse().unwrap()).unwrap();
        leaf.chain.iter().map(|c| c.as_ref().to_vec()).collect()
    }

    fn decision() -> Decision {
        Decision {
            ct: None,
            path_pins: Vec::new(),
            staple: None,
            refusal: Some(Refusal::NotDialedByIp("rogue.example".into())),
        }
    }

    fn event<'a>(
        label: &'a str,
        chain: &'a [Vec<u8>],
        secs: u64,
        decision: &'a Decision,
    ) -> RefusalEvent<'a> {
        RefusalEvent {
            label,
            server_name: "rogue.example".into(),
            chain: chain
                .iter()
                .map(|c| CertificateDer::from(c.as_slice()))
                .collect(),
            ocsp: &[],
            now: UnixTime::since_unix_epoch(Duration::from_secs(secs)),
            decision,
        }
    }

    fn refuse(store: &EvidenceStore, label: &str, chain: &[Vec<u8>], secs: u64) {
        let d = decision();
        store.refused(&event(label, chain, secs, &d));
    }

    fn private_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    /// Run every queued job on this thread.
    fn drain(rx: &Receiver<Job>, writer: &Writer) {
        while let Ok(job) = rx.try_recv() {
            writer.handle(&job);
        }
    }

    fn stem_of(chain: &[Vec<u8>], secs: u64) -> String {
        evidence_stem(secs, &chain[0])
    }

    #[test]
    fn evidence_names_are_recognised_strictly() {
        let fp = "0123456789abcdef";
        for ok in [
            format!("2024-01-01T000000Z-{fp}.pem"),
            format!("2024-01-01T000000Z-{fp}.json"),
            format!("2024-01-01T000000Z-{fp}-7.json"),
            format!(".2024-01-01T000000Z-{fp}.pem.123-4.tmp"),
        ] {
            assert!(is_evidence_file_name(&ok), "{ok}");
        }
        for bad in [
            "precious.db".to_string(),
            "notes.json".to_string(),
            format!("2024-01-01T000000Z-{fp}.db"),
            format!("2024-01-01T000000Z-{}.pem", fp.to_uppercase()),
            format!("2024-01-01T000000Z-{fp}x.pem"),
            format!("2024-01-01T000000Z-{fp}-123.pem"),
            format!("x2024-01-01T000000Z-{fp}.pem"),
            format!(".2024-01-01T000000Z-{fp}.pem.tmp"),
        ] {
            assert!(!is_evidence_file_name(&bad), "{bad}");
        }
        let stem = stem_of(&leaf_chain(), T0);
        assert!(is_evidence_file_name(&format!("{stem}.pem")), "{stem}");
    }

    #[test]
    fn the_cap_never_touches_other_files() {
        let dir = private_dir();
        let precious = dir.path().join("precious.db");
        std::fs::write(&precious, vec![7u8; 4096]).unwrap();
        let (store, rx, writer) = EvidenceStore::unstarted(dir.path(), 1, 8).unwrap();
        let chain = leaf_chain();
        refuse(&store, "dot://127.0.0.1:853", &chain, T0);
        drain(&rx, &writer);
        assert_eq!(store.stats().written, 1);
        // The cap (1 byte) removed the new evidence, never precious.db.
        assert_eq!(std::fs::read(&precious).unwrap(), vec![7u8; 4096]);
        assert_eq!(names(dir.path()), vec!["precious.db".to_string()]);

        // With room for one pair, the older pair goes first; precious.db stays.
        let (store, rx, mut writer) = EvidenceStore::unstarted(dir.path(), 1, 8).unwrap();
        writer.max_bytes = 1_000_000;
        refuse(&store, "a", &chain, T0);
        refuse(&store, "b", &chain, T0 + 5);
        drain(&rx, &writer);
        assert_eq!(names(dir.path()).len(), 5);
        let pair: u64 = names(dir.path())
            .iter()
            .filter(|n| n.ends_with(".pem") || n.ends_with(".json"))
            .map(|n| std::fs::metadata(dir.path().join(n)).unwrap().len())
            .sum::<u64>()
            / 2;
        writer.max_bytes = pair + 10;
        writer.enforce_cap().unwrap();
        let left = names(dir.path());
        assert!(left.contains(&"precious.db".to_string()), "{left:?}");
        assert_eq!(left.len(), 3, "{left:?}");
    }

    #[test]
    fn planted_symlinks_are_neither_followed_nor_reused() {
        let dir = private_dir();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let chain = leaf_chain();
        let stem = stem_of(&chain, T0);
        for ext in ["pem", "json"] {
            std::os::unix::fs::symlink(&victim, dir.path().join(format!("{stem}.{ext}"))).unwrap();
        }
        let (store, rx, writer) = EvidenceStore::unstarted(dir.path(), 1 << 20, 8).unwrap();
        refuse(&store, "dot://127.0.0.1:853", &chain, T0);
        drain(&rx, &writer);
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let pem = dir.path().join(format!("{stem}-1.pem"));
        let meta = std::fs::symlink_metadata(&pem).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let json: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join(format!("{stem}-1.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(json["refusal"], "ip-san");
        assert_eq!(json["upstream"], "dot://127.0.0.1:853");
        // The planted links are still links, and no temporary file is left.
        for ext in ["pem", "json"] {
            let p = dir.path().join(format!("{stem}.{ext}"));
            assert!(std::fs::symlink_metadata(p)
                .unwrap()
                .file_type()
                .is_symlink());
        }
        assert_eq!(names(dir.path()).len(), 4, "{:?}", names(dir.path()));
    }

    #[test]
    fn unsafe_directories_are_refused_and_missing_ones_created_private() {
        let base = private_dir();
        let open = base.path().join("open");
        std::fs::create_dir(&open).unwrap();
        for mode in [0o777, 0o770, 0o702, 0o1777] {
            std::fs::set_permissions(&open, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = EvidenceStore::new(&open, 1).unwrap_err();
            assert!(
                matches!(e, EvidenceDirError::Writable { .. }),
                "{mode:o}: {e}"
            );
            assert!(e.to_string().contains("group or others"), "{e}");
        }
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(EvidenceStore::new(&open, 1).is_ok());

        let file = base.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(matches!(
            EvidenceStore::new(&file, 1),
            Err(EvidenceDirError::NotADirectory)
        ));

        let fresh = base.path().join("a/b/evidence");
        let store = EvidenceStore::new(&fresh, 1).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(store.dir(), std::fs::canonicalize(&fresh).unwrap());

        // Another owner (only root can hand a directory to someone else).
        if nix::unistd::geteuid().is_root() {
            let theirs = base.path().join("theirs");
            std::fs::create_dir(&theirs).unwrap();
            std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).unwrap();
            std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
            let e = EvidenceStore::new(&theirs, 1).unwrap_err();
            assert!(
                matches!(
                    e,
                    EvidenceDirError::WrongOwner {
                        owner: 65534,
                        euid: 0
                    }
                ),
                "{e}"
            );
        }
    }

    #[test]
    fn identical_refusals_collapse_and_a_full_queue_drops_without_blocking() {
        let dir = private_dir();
        let (store, rx, writer) = EvidenceStore::unstarted(dir.path(), 1 << 20, 2).unwrap();
        let chain = leaf_chain();
        let start = Instant::now();
        for _ in 0..100 {
            refuse(&store, "dot://127.0.0.1:853", &chain, T0);
        }
        // Same chain, another upstream: its own evidence.
        refuse(&store, "dot://127.0.0.2:853", &chain, T0);
        // A third distinct refusal does not fit in the queue of 2: dropped, not waited for.
        refuse(&store, "dot://127.0.0.3:853", &chain, T0);
        assert!(start.elapsed() < Duration::from_secs(5));
        let s = store.stats();
        assert_eq!((s.collapsed, s.dropped, s.written), (99, 1, 0), "{s:?}");
        drain(&rx, &writer);
        assert_eq!(store.stats().written, 2);
        assert_eq!(names(dir.path()).len(), 4);
        // The dropped one was not remembered: it is saved on its next occurrence.
        refuse(&store, "dot://127.0.0.3:853", &chain, T0 + 1);
        drain(&rx, &writer);
        assert_eq!(store.stats().written, 3);

        // Outside the window, the same refusal is saved again.
        let (mut store, rx, writer) = EvidenceStore::unstarted(dir.path(), 1 << 20, 2).unwrap();
        store.window = Duration::ZERO;
        refuse(&store, "dot://127.0.0.1:853", &chain, T0 + 2);
        drain(&rx, &writer);
        refuse(&store, "dot://127.0.0.1:853", &chain, T0 + 3);
        drain(&rx, &writer);
        assert_eq!(store.stats().written, 2);
        assert_eq!(store.stats().collapsed, 0);
    }

    #[test]
    fn the_writer_thread_saves_in_the_background() {
        let dir = private_dir();
        let store = EvidenceStore::new(dir.path(), 1 << 20).unwrap();
        refuse(&store, "dot://127.0.0.1:853", &leaf_chain(), T0);
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.stats().written == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(store.stats().written, 1);
        let names = names(dir.path());
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.iter().all(|n| is_evidence_file_name(n)), "{names:?}");
    }

    #[test]
    fn a_collapsed_repeat_names_the_file_of_the_first() {
        let dir = private_dir();
        let store = EvidenceStore::new(dir.path(), 1 << 20).unwrap();
        let chain = leaf_chain();
        let d = decision();
        let first = event("dot://127.0.0.1:853", &chain, T0, &d);
        store.refused(&first);
        let first_file = store.evidence_file(&first).unwrap();
        assert_eq!(first_file, store.path_for(T0, &chain[0]));
        // Seconds later the same chain again: not written again, and it names the first file.
        let repeat = event("dot://127.0.0.1:853", &chain, T0 + 5, &d);
        store.refused(&repeat);
        assert_eq!(store.evidence_file(&repeat), Some(first_file.clone()));
        assert_ne!(store.path_for(T0 + 5, &chain[0]), first_file);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !first_file.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(first_file.exists());
        assert_eq!(store.stats().collapsed, 1);
    }
}
