//! Certificate authorities of the test PKI and the [`TestPki`] that holds them with its logs.

use std::fmt;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use super::log::{LogStateKind, TestLog};
use super::PkiError;
use crate::ct::der;

/// OID of the Precertificate Signing Certificate EKU (RFC 6962 §3.1).
pub const OID_PRECERT_SIGNING_EKU: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 4];

/// Names one CA certificate of the test PKI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CaCert {
    /// The honest root CA (the trust anchor).
    Root,
    /// The honest intermediate CA, issued by [`CaCert::Root`]; issues leaves by default.
    Intermediate,
    /// The "rogue" root: another, equally trusted CA (the Fina scenario: a valid, CT-logged
    /// certificate for the same IP from a CA the operator never chose).
    RogueRoot,
    /// The rogue intermediate, issued by [`CaCert::RogueRoot`].
    RogueIntermediate,
    /// The Precertificate Signing Certificate of one issuance (only exists for leaves issued
    /// with [`super::PrecertIssuance::PrecertSigningCert`]).
    PrecertSigner,
}

/// A CA certificate with its key.
pub struct TestCa {
    cn: String,
    der: CertificateDer<'static>,
    params: CertificateParams,
    key: KeyPair,
    spki: Vec<u8>,
}

impl fmt::Debug for TestCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCa")
            .field("cn", &self.cn)
            .field("spki_sha256", &self.spki_sha256_base64())
            .finish_non_exhaustive()
    }
}

impl TestCa {
    /// A self-signed root CA named `cn` (ECDSA P-256).
    pub(crate) fn root(
        cn: &str,
        org: &str,
        nb: OffsetDateTime,
        na: OffsetDateTime,
    ) -> Result<Self, PkiError> {
        let params = ca_params(cn, org, nb, na, BasicConstraints::Unconstrained);
        let key = KeyPair::generate().map_err(PkiError::cert("root CA key"))?;
        let cert = params
            .self_signed(&key)
            .map_err(PkiError::cert("root CA"))?;
        Ok(Self::from_parts(cn, cert.der().clone(), params, key))
    }

    /// A CA named `cn` issued by `self`. `extra_eku` adds an EKU (e.g. precert signing).
    pub(crate) fn issue_ca(
        &self,
        cn: &str,
        org: &str,
        nb: OffsetDateTime,
        na: OffsetDateTime,
        extra_eku: Option<&[u64]>,
    ) -> Result<Self, PkiError> {
        let mut params = ca_params(cn, org, nb, na, BasicConstraints::Constrained(0));
        params.use_authority_key_identifier_extension = true;
        if let Some(eku) = extra_eku {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::Other(eku.to_vec()));
        }
        let key = KeyPair::generate().map_err(PkiError::cert("CA key"))?;
        let cert = params
            .signed_by(&key, &self.issuer())
            .map_err(PkiError::cert("intermediate CA"))?;
        Ok(Self::from_parts(cn, cert.der().clone(), params, key))
    }

    fn from_parts(
        cn: &str,
        der: CertificateDer<'static>,
        params: CertificateParams,
        key: KeyPair,
    ) -> Self {
        let spki = key.subject_public_key_info();
        Self {
            cn: cn.to_string(),
            der,
            params,
            key,
            spki,
        }
    }

    /// rcgen's view of this CA as an issuer.
    pub(crate) fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    /// The CA's signing key.
    pub(crate) fn key_pair(&self) -> &KeyPair {
        &self.key
    }

    /// A cross-signed twin of this CA: the same subject and key, issued by `issuer` (as
    /// CAs bridge a new root to an old one). Paths through it end at `issuer`'s root.
    pub fn cross_signed_by(&self, issuer: &TestCa) -> Result<CertificateDer<'static>, PkiError> {
        let mut params = self.params.clone();
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&self.key, &issuer.issuer())
            .map_err(PkiError::cert("cross-signed CA"))?;
        Ok(cert.der().clone())
    }

    /// The DER certificate.
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// The certificate as PEM.
    pub fn pem(&self) -> String {
        der::pem("CERTIFICATE", &self.der)
    }

    /// The DER `SubjectPublicKeyInfo` of the CA key.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// SHA-256 of the DER SPKI: the `issuer_key_hash` of leaves this CA issues.
    pub fn key_hash(&self) -> [u8; 32] {
        crate::ct::sha256(&self.spki)
    }

    /// Base64 SHA-256 of the DER SPKI, the form issuer pins are written in.
    pub fn spki_sha256_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.key_hash())
    }

    /// The subject common name.
    pub fn common_name(&self) -> &str {
        &self.cn
    }
}

fn ca_params(
    cn: &str,
    org: &str,
    nb: OffsetDateTime,
    na: OffsetDateTime,
    constraints: BasicConstraints,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, org);
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.not_before = nb;
    params.not_after = na;
    params.is_ca = IsCa::Ca(constraints);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// Options for [`TestPki::generate`].
#[derive(Clone, Debug)]
pub struct PkiOptions {
    /// Reference time: CA validity and default log states are set relative to it.
    pub now: OffsetDateTime,
    /// Organization name written in the CA subjects.
    pub org: String,
    /// Whether to create the default logs (see [`TestPki::generate`]).
    pub default_logs: bool,
}

impl Default for PkiOptions {
    fn default() -> Self {
        Self {
            now: OffsetDateTime::now_utc(),
            org: "ctdns test PKI".into(),
            default_logs: true,
        }
    }
}

/// A complete test PKI: honest root + intermediate, rogue root + intermediate, and CT logs.
#[derive(Debug)]
pub struct TestPki {
    pub(crate) root: TestCa,
    pub(crate) intermediate: TestCa,
    pub(crate) rogue_root: TestCa,
    pub(crate) rogue_intermediate: TestCa,
    pub(crate) logs: Vec<TestLog>,
    pub(crate) now: OffsetDateTime,
    pub(crate) org: String,
}

/// Names of the default logs, in creation order.
pub mod default_logs {
    /// ECDSA, "Operator A", usable.
    pub const ALPHA: &str = "Alpha";
    /// ECDSA, "Operator B", usable.
    pub const BETA: &str = "Beta";
    /// RSA-2048, "Operator C", usable.
    pub const GAMMA: &str = "Gamma";
    /// ECDSA, "Operator A", retired 30 days before the PKI's reference time.
    pub const DELTA: &str = "Delta";
    /// ECDSA, "Operator B", pending.
    pub const PENDING: &str = "Pending";
    /// ECDSA, "Operator C", rejected.
    pub const REJECTED: &str = "Rejected";
    /// Operator of Alpha and Delta.
    pub const OPERATOR_A: &str = "Operator A";
    /// Operator of Beta and Pending.
    pub const OPERATOR_B: &str = "Operator B";
    /// Operator of Gamma and Rejected.
    pub const OPERATOR_C: &str = "Operator C";
}

impl TestPki {
    /// Generate a PKI.
    ///
    /// CAs are ECDSA P-256, valid from `now - 1 day` to `now + 10 years`. With
    /// `opts.default_logs`, six logs are created (names in [`default_logs`]):
    /// Alpha (ECDSA, Operator A, usable), Beta (ECDSA, Operator B, usable), Gamma (RSA,
    /// Operator C, usable), all usable since `now - 400 days`; Delta (ECDSA, Operator A)
    /// retired at `now - 30 days`; Pending (ECDSA, Operator B) pending since `now - 10 days`;
    /// Rejected (ECDSA, Operator C) rejected at `now - 60 days`.
    pub fn generate(opts: &PkiOptions) -> Result<Self, PkiError> {
        let now = opts.now.replace_nanosecond(0).unwrap_or(opts.now);
        let nb = now - Duration::days(1);
        let na = now + Duration::days(3650);
        let org = opts.org.as_str();
        let root = TestCa::root("ctdns Test Root CA", org, nb, na)?;
        let intermediate = root.issue_ca("ctdns Test Intermediate CA", org, nb, na, None)?;
        let rogue_org = format!("{org} (rogue)");
        let rogue_root = TestCa::root("ctdns Rogue Root CA", &rogue_org, nb, na)?;
        let rogue_intermediate =
            rogue_root.issue_ca("ctdns Rogue Intermediate CA", &rogue_org, nb, na, None)?;
        let mut pki = Self {
            root,
            intermediate,
            rogue_root,
            rogue_intermediate,
            logs: Vec::new(),
            now,
            org: org.to_string(),
        };
        if opts.default_logs {
            use default_logs::*;
            let usable = now - Duration::days(400);
            let logs = [
                TestLog::generate_ecdsa(ALPHA, OPERATOR_A)?
                    .with_state(LogStateKind::Usable, usable),
                TestLog::generate_ecdsa(BETA, OPERATOR_B)?.with_state(LogStateKind::Usable, usable),
                TestLog::rsa_test_key(GAMMA, OPERATOR_C)?.with_state(LogStateKind::Usable, usable),
                TestLog::generate_ecdsa(DELTA, OPERATOR_A)?
                    .with_state(LogStateKind::Retired, now - Duration::days(30)),
                TestLog::generate_ecdsa(PENDING, OPERATOR_B)?
                    .with_state(LogStateKind::Pending, now - Duration::days(10)),
                TestLog::generate_ecdsa(REJECTED, OPERATOR_C)?
                    .with_state(LogStateKind::Rejected, now - Duration::days(60)),
            ];
            for log in logs {
                pki.add_log(log)?;
            }
        }
        Ok(pki)
    }

    /// Add a custom log. Refused if a log with the same name or key exists.
    pub fn add_log(&mut self, log: TestLog) -> Result<(), PkiError> {
        if self
            .logs
            .iter()
            .any(|l| l.name == log.name || l.log_id() == log.log_id())
        {
            return Err(PkiError::DuplicateLog { name: log.name });
        }
        self.logs.push(log);
        Ok(())
    }

    /// All logs, in the order they were added.
    pub fn logs(&self) -> &[TestLog] {
        &self.logs
    }

    /// The log named `name`.
    pub fn log(&self, name: &str) -> Option<&TestLog> {
        self.logs.iter().find(|l| l.name == name)
    }

    /// Mutable access to the log named `name` (to change its state, operators, ...).
    pub fn log_mut(&mut self, name: &str) -> Option<&mut TestLog> {
        self.logs.iter_mut().find(|l| l.name == name)
    }

    /// The reference time the PKI was generated for (whole seconds).
    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    /// A CA certificate. `None` for [`CaCert::PrecertSigner`], which belongs to one issuance
    /// (see [`super::IssuedLeaf::precert_signing_cert`]).
    pub fn ca(&self, which: CaCert) -> Option<&TestCa> {
        match which {
            CaCert::Root => Some(&self.root),
            CaCert::Intermediate => Some(&self.intermediate),
            CaCert::RogueRoot => Some(&self.rogue_root),
            CaCert::RogueIntermediate => Some(&self.rogue_intermediate),
            CaCert::PrecertSigner => None,
        }
    }

    /// The honest root CA.
    pub fn root(&self) -> &TestCa {
        &self.root
    }

    /// The honest intermediate CA.
    pub fn intermediate(&self) -> &TestCa {
        &self.intermediate
    }

    /// The rogue root CA.
    pub fn rogue_root(&self) -> &TestCa {
        &self.rogue_root
    }

    /// The rogue intermediate CA.
    pub fn rogue_intermediate(&self) -> &TestCa {
        &self.rogue_intermediate
    }

    /// Both roots as trust anchors (honest first, then rogue): in the Fina scenario the
    /// client trusts both, and only an issuer pin tells them apart.
    pub fn trust_anchors(&self) -> Vec<CertificateDer<'static>> {
        vec![self.root.der.clone(), self.rogue_root.der.clone()]
    }

    /// A rustls root store with the honest root, plus the rogue root if `include_rogue`.
    pub fn root_store(&self, include_rogue: bool) -> Result<rustls::RootCertStore, PkiError> {
        let mut store = rustls::RootCertStore::empty();
        let mut roots = vec![self.root.der.clone()];
        if include_rogue {
            roots.push(self.rogue_root.der.clone());
        }
        for root in roots {
            store
                .add(root)
                .map_err(|_| PkiError::Parse { what: "root CA" })?;
        }
        Ok(store)
    }

    /// Base64 SHA-256 of the SPKI of every CA (for issuer pins).
    pub fn spki_pins(&self) -> Vec<(CaCert, String)> {
        [
            CaCert::Root,
            CaCert::Intermediate,
            CaCert::RogueRoot,
            CaCert::RogueIntermediate,
        ]
        .into_iter()
        .filter_map(|c| Some((c, self.ca(c)?.spki_sha256_base64())))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::parse_x509_certificate;

    fn pki() -> TestPki {
        TestPki::generate(&PkiOptions::default()).unwrap()
    }

    #[test]
    fn ca_chain_is_well_formed() {
        let pki = pki();
        let (_, root) = parse_x509_certificate(pki.root().der()).unwrap();
        let (_, inter) = parse_x509_certificate(pki.intermediate().der()).unwrap();
        let (_, rogue) = parse_x509_certificate(pki.rogue_intermediate().der()).unwrap();
        assert!(root.is_ca());
        assert!(inter.is_ca());
        assert_eq!(root.subject(), root.issuer());
        assert_eq!(inter.issuer(), root.subject());
        assert_ne!(rogue.issuer(), root.subject());
        let root_key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            root.public_key().subject_public_key.data.as_ref(),
        );
        root_key
            .verify(inter.tbs_certificate.as_ref(), &inter.signature_value.data)
            .expect("intermediate signed by root");
        assert!(root_key
            .verify(rogue.tbs_certificate.as_ref(), &rogue.signature_value.data)
            .is_err());
        assert_eq!(
            root.public_key().raw,
            pki.root().spki_der(),
            "spki_der is the certificate's SPKI"
        );
        assert_eq!(pki.root().common_name(), "ctdns Test Root CA");
    }

    #[test]
    fn default_logs_cover_states_operators_and_algorithms() {
        use super::super::log::LogKeyAlgorithm;
        let pki = pki();
        assert!(pki.logs().len() >= 4);
        let ops: std::collections::HashSet<_> =
            pki.logs().iter().map(|l| l.operator.as_str()).collect();
        assert!(ops.len() >= 2);
        assert!(pki
            .logs()
            .iter()
            .any(|l| l.key_algorithm() == LogKeyAlgorithm::RsaPkcs1Sha256));
        let delta = pki.log(default_logs::DELTA).unwrap();
        assert_eq!(delta.state.kind, LogStateKind::Retired);
        assert!(delta.state.since < pki.now());
        let ids: std::collections::HashSet<_> = pki.logs().iter().map(|l| l.log_id()).collect();
        assert_eq!(ids.len(), pki.logs().len(), "log ids are distinct");
    }

    #[test]
    fn duplicate_logs_are_refused() {
        let mut pki = pki();
        let dup_name = TestLog::generate_ecdsa(default_logs::ALPHA, "X").unwrap();
        assert!(matches!(
            pki.add_log(dup_name),
            Err(PkiError::DuplicateLog { .. })
        ));
        // Same RSA key as Gamma -> same log id.
        let dup_key = TestLog::rsa_test_key("Other", "X").unwrap();
        assert!(pki.add_log(dup_key).is_err());
        pki.add_log(TestLog::mimic1().unwrap()).unwrap();
        assert!(pki.log("Mimic1").is_some());
    }

    #[test]
    fn pins_are_distinct_and_match_spki() {
        let pki = pki();
        let pins = pki.spki_pins();
        assert_eq!(pins.len(), 4);
        let set: std::collections::HashSet<_> = pins.iter().map(|(_, p)| p.clone()).collect();
        assert_eq!(set.len(), 4);
        let (_, root) = parse_x509_certificate(pki.root().der()).unwrap();
        let want = base64::engine::general_purpose::STANDARD
            .encode(crate::ct::sha256(root.public_key().raw));
        assert!(pins.contains(&(CaCert::Root, want)));
        assert_eq!(pki.root_store(false).unwrap().len(), 1);
        assert_eq!(pki.root_store(true).unwrap().len(), 2);
    }
}
