//! Writing a test PKI to disk (for `ctdns pki`, unbound, dnsdist) and the demo PKI.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use time::{Duration, OffsetDateTime};

use crate::safe_file::{MODE_PRIVATE as PRIVATE, MODE_PUBLIC as PUBLIC};
use ctdns_verify::pki::{default_logs, IssuedLeaf, PkiError, PkiOptions, SctSpec, TestPki};

/// The files [`write_files`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenFiles {
    /// `ca.pem`: the honest root (trust anchor).
    pub ca: PathBuf,
    /// `chain.pem`: leaf then intermediate (unbound's `tls-service-pem`, dnsdist).
    pub chain: PathBuf,
    /// `key.pem`: the leaf's PKCS#8 private key.
    pub key: PathBuf,
    /// `log_list.json`: the logs as a Chrome v3 log list.
    pub log_list: PathBuf,
    /// `rogue_ca.pem`: the rogue root.
    pub rogue_ca: PathBuf,
    /// `ocsp.der`: the stapled OCSP response, when the leaf has one.
    pub ocsp: Option<PathBuf>,
}

/// Replace `path` with a new file of `mode` holding `bytes` (see [`crate::safe_file::replace`]:
/// a symlink at `path` is replaced, not followed, and the mode holds from the first byte).
fn write(path: PathBuf, bytes: &[u8], mode: u32) -> Result<PathBuf, PkiError> {
    crate::safe_file::replace(&path, bytes, mode).map_err(|source| PkiError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Write `ca.pem`, `chain.pem`, `key.pem`, `log_list.json` (stamped now), `rogue_ca.pem` and,
/// if the leaf has a stapled response, `ocsp.der` into `dir` (created if missing). `key.pem`
/// is created with mode 0600 (never readable by others, not even for a moment); the other
/// files with 0644. Each file is written under a temporary name and renamed into place, so a
/// symlink planted at one of these names is replaced, not written through.
pub fn write_files(dir: &Path, pki: &TestPki, leaf: &IssuedLeaf) -> Result<WrittenFiles, PkiError> {
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let log_list = pki.log_list_json(OffsetDateTime::now_utc())?;
    Ok(WrittenFiles {
        ca: write(dir.join("ca.pem"), pki.root().pem().as_bytes(), PUBLIC)?,
        chain: write(dir.join("chain.pem"), leaf.chain_pem().as_bytes(), PUBLIC)?,
        key: write(dir.join("key.pem"), leaf.key_pem().as_bytes(), PRIVATE)?,
        log_list: write(dir.join("log_list.json"), log_list.as_bytes(), PUBLIC)?,
        rogue_ca: write(
            dir.join("rogue_ca.pem"),
            pki.rogue_root().pem().as_bytes(),
            PUBLIC,
        )?,
        ocsp: leaf
            .ocsp_response
            .as_deref()
            .map(|r| write(dir.join("ocsp.der"), r, PUBLIC))
            .transpose()?,
    })
}

/// A default PKI and an honest leaf for `ip`: issued by the intermediate, valid from one
/// hour ago for 90 days, with two embedded SCTs from logs of two distinct operators
/// (Alpha / Operator A and Beta / Operator B, timestamped one minute ago).
pub fn demo_pki(ip: IpAddr) -> Result<(TestPki, IssuedLeaf), PkiError> {
    let pki = TestPki::generate(&PkiOptions::default())?;
    let ts = pki.now() - Duration::minutes(1);
    let spec = pki
        .leaf_spec(ip)
        .embed(SctSpec::at(default_logs::ALPHA, ts))
        .embed(SctSpec::at(default_logs::BETA, ts));
    let leaf = pki.issue_leaf(&spec)?;
    Ok((pki, leaf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    #[test]
    fn demo_leaf_has_two_operators() {
        let (pki, leaf) = demo_pki("127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(leaf.embedded_scts.len(), 2);
        let ops: std::collections::HashSet<_> = leaf
            .embedded_scts
            .iter()
            .map(|s| {
                &pki.logs()
                    .iter()
                    .find(|l| l.log_id() == s.log_id)
                    .unwrap()
                    .operator
            })
            .collect();
        assert_eq!(ops.len(), 2);
        assert_eq!(leaf.chain.len(), 2);
        let (_, x) = x509_parser::parse_x509_certificate(leaf.leaf()).unwrap();
        let days = (x.validity().not_after.to_datetime() - x.validity().not_before.to_datetime())
            .whole_days();
        assert_eq!(days, 90);
    }

    #[test]
    fn written_files_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let (pki, leaf) = demo_pki("::1".parse().unwrap()).unwrap();
        let files = write_files(dir.path(), &pki, &leaf).unwrap();
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.chain)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(chain, leaf.chain);
        let ca = CertificateDer::from_pem_file(&files.ca).unwrap();
        assert_eq!(&ca, pki.root().der());
        let rogue = CertificateDer::from_pem_file(&files.rogue_ca).unwrap();
        assert_eq!(&rogue, pki.rogue_root().der());
        let key = PrivateKeyDer::from_pem_file(&files.key).unwrap();
        assert_eq!(key.secret_der(), leaf.key.secret_pkcs8_der());
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&files.key), 0o600, "key.pem must be private");
            assert_eq!(mode(&files.ca) & 0o077, 0o044, "ca.pem is public");
        }
        let list: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&files.log_list).unwrap()).unwrap();
        assert!(list["operators"].as_array().unwrap().len() >= 2);
        assert!(files.ocsp.is_none());

        // With a stapled response, ocsp.der is written too.
        let ts = pki.now() - Duration::minutes(1);
        let stapled = pki
            .issue_leaf(
                &pki.leaf_spec("::1".parse().unwrap())
                    .staple(SctSpec::at(default_logs::ALPHA, ts))
                    .staple(SctSpec::at(default_logs::BETA, ts)),
            )
            .unwrap();
        let files = write_files(&dir.path().join("sub"), &pki, &stapled).unwrap();
        let ocsp = std::fs::read(files.ocsp.unwrap()).unwrap();
        assert_eq!(Some(ocsp), stapled.ocsp_response);
    }

    #[test]
    fn a_planted_symlink_is_replaced_not_written_through() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("pki");
        std::fs::create_dir(&out).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(&victim, out.join("key.pem")).unwrap();
        let (pki, leaf) = demo_pki("127.0.0.1".parse().unwrap()).unwrap();
        let files = write_files(&out, &pki, &leaf).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(
            std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777,
            0o644
        );
        let meta = std::fs::symlink_metadata(&files.key).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn pki_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<TestPki>();
        check::<IssuedLeaf>();
        check::<PkiError>();
    }
}
