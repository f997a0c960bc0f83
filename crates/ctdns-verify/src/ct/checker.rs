//! The whole CT decision for one leaf: extract SCTs (embedded and OCSP-stapled), verify
//! each signature against its log's key, and apply the policy.
//!
//! This is the one place where SCT bytes from a server meet the log list; the policy only
//! ever sees SCTs with a signature status decided here.

use std::sync::Arc;

use rustls::pki_types::SignatureVerificationAlgorithm;

use crate::ct::cert::{CertError, LeafCert};
use crate::ct::log_list::LogList;
use crate::ct::memo::SignatureMemo;
use crate::ct::ocsp::{ocsp_sct_list, StapledSctError};
use crate::ct::policy::{CtPolicy, CtReport, SctInput, SignatureStatus};
use crate::ct::sct::{parse_sct_list, SctListError};
use crate::ct::signature::{default_algorithms, verify_sct_signature_memo};
use crate::ct::signed_data::SignedEntry;
use crate::ct::{sha256, SctSource};

/// Why the CT inputs of a certificate could not even be read. Each is a refusal. (A stapled
/// OCSP response whose SCTs cannot be read is not: see [`StapledSctError`].)
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CtInputError {
    /// The leaf certificate could not be parsed far enough to find its SCTs.
    #[error("leaf certificate: {0}")]
    Certificate(#[from] CertError),
    /// The embedded SCT list is malformed.
    #[error("embedded SCT list: {0}")]
    EmbeddedList(SctListError),
}

/// Checks the CT policy for leaf certificates against one log list.
///
/// Cheap to clone; the log list is indexed once, when it is loaded. Clones share one
/// [`SignatureMemo`] of SCT signature results (see [`crate::ct::memo`]), unless it is
/// switched off with [`CtChecker::without_signature_memo`].
#[derive(Clone, Debug)]
pub struct CtChecker {
    logs: Arc<LogList>,
    policy: CtPolicy,
    algs: &'static [&'static dyn SignatureVerificationAlgorithm],
    memo: Option<Arc<SignatureMemo>>,
}

impl CtChecker {
    /// A checker applying `policy` with the logs of `logs`, with a signature memo of
    /// [`crate::ct::memo::DEFAULT_CAPACITY`] entries.
    pub fn new(logs: Arc<LogList>, policy: CtPolicy) -> Self {
        Self {
            logs,
            policy,
            algs: default_algorithms(),
            memo: Some(Arc::new(SignatureMemo::default())),
        }
    }

    /// The same checker verifying SCT signatures with `algs` (a crypto provider's
    /// `signature_verification_algorithms.all`) instead of [`default_algorithms`].
    pub fn with_algorithms(
        mut self,
        algs: &'static [&'static dyn SignatureVerificationAlgorithm],
    ) -> Self {
        self.algs = algs;
        self
    }

    /// The same checker verifying every SCT signature with a public-key operation each
    /// time, remembering nothing.
    pub fn without_signature_memo(mut self) -> Self {
        self.memo = None;
        self
    }

    /// The signature memo in use, if any.
    pub fn signature_memo(&self) -> Option<&Arc<SignatureMemo>> {
        self.memo.as_ref()
    }

    /// The log list in force.
    pub fn logs(&self) -> &Arc<LogList> {
        &self.logs
    }

    /// The policy in force.
    pub fn policy(&self) -> &CtPolicy {
        &self.policy
    }

    /// Decide the CT policy for `leaf`, issued by the certificate whose DER
    /// SubjectPublicKeyInfo is `issuer_spki` (taken from the *verified* path), with the
    /// stapled OCSP response `ocsp` (empty when none), at `now_ms` (Unix milliseconds).
    pub fn check(
        &self,
        leaf: &LeafCert<'_>,
        issuer_spki: &[u8],
        ocsp: &[u8],
        now_ms: u64,
    ) -> Result<CtReport, CtInputError> {
        let mut inputs = Vec::new();

        if let Some(list) = leaf.sct_list()? {
            let list = parse_sct_list(list).map_err(CtInputError::EmbeddedList)?;
            // Rebuild the precertificate only when there is something to check.
            let tbs = leaf.precert_tbs()?;
            let entry = SignedEntry::Precert {
                issuer_key_hash: sha256(issuer_spki),
                tbs: &tbs,
            };
            for sct in list.scts {
                let signature = self.signature_status(&sct, entry);
                inputs.push(SctInput {
                    sct,
                    source: SctSource::Embedded,
                    signature,
                });
            }
        }

        let mut ocsp_ignored = None;
        if !ocsp.is_empty() {
            match stapled_scts(ocsp, leaf.serial()) {
                Ok(scts) => {
                    let entry = SignedEntry::X509 { leaf: leaf.der() };
                    for sct in scts {
                        let signature = self.signature_status(&sct, entry);
                        inputs.push(SctInput {
                            sct,
                            source: SctSource::Ocsp,
                            signature,
                        });
                    }
                }
                Err(e) => ocsp_ignored = Some(e),
            }
        }

        let mut report = self.policy.evaluate(
            &self.logs,
            &inputs,
            leaf.not_before(),
            leaf.not_after(),
            now_ms,
        );
        report.ocsp_ignored = ocsp_ignored;
        Ok(report)
    }

    fn signature_status(&self, sct: &crate::ct::Sct, entry: SignedEntry<'_>) -> SignatureStatus {
        match self.logs.get(&sct.log_id) {
            None => SignatureStatus::NotChecked,
            Some(log) => match verify_sct_signature_memo(
                sct,
                entry,
                &log.key,
                self.algs,
                self.memo.as_deref(),
            ) {
                Ok(()) => SignatureStatus::Valid,
                Err(e) => SignatureStatus::Invalid {
                    reason: e.to_string(),
                },
            },
        }
    }
}

/// The SCTs stapled for the leaf with serial `serial` (none when the response carries no
/// list for it).
fn stapled_scts(ocsp: &[u8], serial: &[u8]) -> Result<Vec<crate::ct::Sct>, StapledSctError> {
    match ocsp_sct_list(ocsp, serial)? {
        None => Ok(Vec::new()),
        Some(list) => Ok(parse_sct_list(&list).map_err(StapledSctError::List)?.scts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::cert::LeafCert;
    use crate::pki::{default_logs, unix_ms, PkiOptions, SctSpec, TestPki};
    use std::net::{IpAddr, Ipv4Addr};

    /// Repeated checks with the signature memo give exactly the reports of checks without
    /// it (valid and invalid SCTs alike), and the repeats are answered from the memo.
    #[test]
    fn memo_changes_no_report() {
        let pki = TestPki::generate(&PkiOptions::default()).unwrap();
        let ts = pki.now() - time::Duration::minutes(5);
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let good = pki
            .issue_leaf(
                &pki.leaf_spec(ip)
                    .embed(SctSpec::at(default_logs::ALPHA, ts))
                    .embed(SctSpec::at(default_logs::BETA, ts))
                    .embed(SctSpec::at(default_logs::GAMMA, ts)),
            )
            .unwrap();
        let one_bad = pki
            .issue_leaf(
                &pki.leaf_spec(ip)
                    .embed(SctSpec::at(default_logs::ALPHA, ts))
                    .embed(SctSpec::at(default_logs::BETA, ts).corrupt_signature()),
            )
            .unwrap();
        let logs =
            Arc::new(LogList::from_json(pki.log_list_json(pki.now()).unwrap().as_bytes()).unwrap());
        let memo_checker = CtChecker::new(logs.clone(), CtPolicy::chrome());
        let plain = CtChecker::new(logs, CtPolicy::chrome()).without_signature_memo();
        assert!(plain.signature_memo().is_none());
        let now = unix_ms(pki.now());
        for (leaf, compliant) in [(&good, true), (&one_bad, false)] {
            let cert = LeafCert::parse(leaf.leaf().as_ref()).unwrap();
            let expected = plain.check(&cert, &leaf.issuer_spki, &[], now).unwrap();
            assert_eq!(expected.is_compliant(), compliant);
            for _ in 0..3 {
                let report = memo_checker
                    .check(&cert, &leaf.issuer_spki, &[], now)
                    .unwrap();
                assert_eq!(report, expected);
            }
        }
        let stats = memo_checker.signature_memo().unwrap().stats();
        // 3 + 2 SCTs verified once each, then answered from the memo twice each.
        assert_eq!((stats.misses, stats.hits, stats.entries), (5, 10, 5));
        // Clones share the memo.
        let clone = memo_checker.clone();
        let cert = LeafCert::parse(good.leaf().as_ref()).unwrap();
        clone.check(&cert, &good.issuer_spki, &[], now).unwrap();
        assert_eq!(memo_checker.signature_memo().unwrap().stats().hits, 13);
    }
}
