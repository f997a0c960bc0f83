//! Leaf certificates with IP SANs, real embedded SCTs and stapled OCSP SCTs.
//!
//! Embedded SCTs are signed the way a CA and a log really do it (RFC 6962 §3.1-3.2): the
//! leaf is first built WITHOUT the SCT-list extension (fixed serial, dates and key), the logs
//! sign `precert_entry { issuer_key_hash, that TBSCertificate }`, then the final certificate
//! is built from the same parameters plus the SCT-list extension as the last extension. So
//! "final TBS minus the SCT extension" is byte for byte what the logs signed. A real
//! precertificate (with the critical poison extension) is built too, issued either by the CA
//! itself or by a Precertificate Signing Certificate.

use std::fmt;
use std::net::IpAddr;

use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use ring::rand::SecureRandom;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

use super::ca::{CaCert, TestCa, TestPki, OID_PRECERT_SIGNING_EKU};
use super::log::{pkcs8_from_pem, unix_ms};
use super::ocsp::{build_ocsp_response_with, OcspSpec};
use super::PkiError;
use crate::ct::der;
use crate::ct::sct::encode_sct_list;
use crate::ct::signed_data::SignedEntry;
use crate::ct::{Sct, SctSource};

/// OID of the embedded SCT-list certificate extension.
pub const OID_SCT_LIST: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2];
/// OID of the critical precertificate poison extension.
pub const OID_PRECERT_POISON: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 3];

/// TEST-ONLY RSA-2048 PKCS#8 key used for RSA leaves. Not a secret (ring cannot generate
/// RSA keys). Generated once with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`.
pub const RSA_TEST_LEAF_KEY_PEM: &str = include_str!("rsa_test_leaf_key.pem");

/// Which CA issues the leaf.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LeafIssuer {
    /// The honest intermediate (chain: leaf, intermediate).
    #[default]
    Intermediate,
    /// The honest root directly (chain: leaf only).
    Root,
    /// The rogue intermediate (chain: leaf, rogue intermediate).
    RogueIntermediate,
}

impl LeafIssuer {
    /// The CA certificate this choice names.
    pub fn ca(self) -> CaCert {
        match self {
            Self::Intermediate => CaCert::Intermediate,
            Self::Root => CaCert::Root,
            Self::RogueIntermediate => CaCert::RogueIntermediate,
        }
    }
}

/// The leaf's key type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LeafKeyType {
    /// ECDSA P-256 (generated).
    #[default]
    EcdsaP256,
    /// ECDSA P-384 (generated).
    EcdsaP384,
    /// Ed25519 (generated).
    Ed25519,
    /// RSA-2048, the fixed test key [`RSA_TEST_LEAF_KEY_PEM`].
    Rsa2048,
}

/// Who signs the precertificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PrecertIssuance {
    /// The issuing CA signs the precertificate itself.
    #[default]
    Direct,
    /// A Precertificate Signing Certificate (CA cert with EKU 1.3.6.1.4.1.11129.2.4.4, issued
    /// by the issuing CA) signs it. SCTs still use the final issuer's key hash and the final
    /// certificate's TBS (RFC 6962 §3.2), unless a failure knob says otherwise.
    PrecertSigningCert,
}

/// One SCT to mint, with failure knobs (all off by default: a valid SCT).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SctSpec {
    /// Name of the log (see [`TestPki::log`]).
    pub log: String,
    /// Timestamp in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Opaque `CtExtensions` bytes, signed verbatim (see [`super::leaf_index_extension`]).
    pub extensions: Vec<u8>,
    /// Flip a bit of the signature after signing.
    pub corrupt_signature: bool,
    /// Sign over another certificate (same parameters, different serial): its TBS for an
    /// embedded SCT, its whole DER for an OCSP SCT.
    pub sign_over_other_tbs: bool,
    /// Embedded only: use the SPKI hash of this CA as `issuer_key_hash` instead of the final
    /// issuer's (e.g. the root, or [`CaCert::PrecertSigner`]).
    pub issuer_key_hash_of: Option<CaCert>,
    /// Embedded only: sign an `x509_entry` over the precertificate DER instead of a
    /// `precert_entry`.
    pub as_x509_entry: bool,
    /// Embedded only, with [`PrecertIssuance::PrecertSigningCert`]: sign over the
    /// precertificate's TBS minus the poison (issuer name and AKI of the precert signing
    /// certificate) — the naive, wrong reconstruction.
    pub naive_precert_tbs: bool,
}

impl SctSpec {
    /// A valid SCT from `log` at `timestamp_ms`.
    pub fn new(log: impl Into<String>, timestamp_ms: u64) -> Self {
        Self {
            log: log.into(),
            timestamp_ms,
            extensions: Vec::new(),
            corrupt_signature: false,
            sign_over_other_tbs: false,
            issuer_key_hash_of: None,
            as_x509_entry: false,
            naive_precert_tbs: false,
        }
    }

    /// A valid SCT from `log` at time `t`.
    pub fn at(log: impl Into<String>, t: OffsetDateTime) -> Self {
        Self::new(log, unix_ms(t))
    }

    /// Set the extensions bytes.
    pub fn with_extensions(mut self, extensions: Vec<u8>) -> Self {
        self.extensions = extensions;
        self
    }

    /// Add a static-ct-api `leaf_index` extension.
    pub fn with_leaf_index(mut self, index: u64) -> Result<Self, PkiError> {
        self.extensions = super::log::leaf_index_extension(index)?;
        Ok(self)
    }

    /// Corrupt the signature.
    pub fn corrupt_signature(mut self) -> Self {
        self.corrupt_signature = true;
        self
    }

    /// Sign over another certificate's TBS (or DER, for OCSP).
    pub fn sign_over_other_tbs(mut self) -> Self {
        self.sign_over_other_tbs = true;
        self
    }

    /// Use `ca`'s key hash as `issuer_key_hash`.
    pub fn issuer_key_hash_of(mut self, ca: CaCert) -> Self {
        self.issuer_key_hash_of = Some(ca);
        self
    }

    /// Sign an `x509_entry` instead of a `precert_entry`.
    pub fn as_x509_entry(mut self) -> Self {
        self.as_x509_entry = true;
        self
    }

    /// Sign over the naive precert TBS (precert signing certificate case).
    pub fn naive_precert_tbs(mut self) -> Self {
        self.naive_precert_tbs = true;
        self
    }
}

/// What leaf to issue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafSpec {
    /// iPAddress SANs.
    pub ip_sans: Vec<IpAddr>,
    /// dNSName SANs.
    pub dns_sans: Vec<String>,
    /// Subject CN (e.g. an IP written only in the CN). `None`: empty subject.
    pub common_name: Option<String>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Issuing CA.
    pub issuer: LeafIssuer,
    /// SCTs to embed (in this order). Empty: no SCT extension, no precertificate.
    pub embedded_scts: Vec<SctSpec>,
    /// SCTs to deliver in the stapled OCSP response (`x509_entry` over the final leaf).
    pub ocsp_scts: Vec<SctSpec>,
    /// Staple an OCSP response even when `ocsp_scts` is empty.
    pub staple_ocsp: bool,
    /// OCSP `thisUpdate` (default: `not_before`); `nextUpdate` is 7 days later.
    pub ocsp_this_update: Option<OffsetDateTime>,
    /// The stapled response's status, signer and other knobs (default: good, signed by
    /// the issuing CA).
    pub ocsp: OcspSpec,
    /// Leaf key type.
    pub key_type: LeafKeyType,
    /// Who signs the precertificate.
    pub precert: PrecertIssuance,
    /// Serial number bytes (big-endian, positive). `None`: 16 random bytes.
    pub serial: Option<Vec<u8>>,
}

impl LeafSpec {
    /// A leaf for `ip` (one iPAddress SAN, no CN), issued by the intermediate, valid from
    /// `now - 1 hour` to `now + 90 days`, no SCTs.
    pub fn new(ip: IpAddr, now: OffsetDateTime) -> Self {
        let now = now.replace_nanosecond(0).unwrap_or(now);
        Self {
            ip_sans: vec![ip],
            dns_sans: Vec::new(),
            common_name: None,
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(90),
            issuer: LeafIssuer::Intermediate,
            embedded_scts: Vec::new(),
            ocsp_scts: Vec::new(),
            staple_ocsp: false,
            ocsp_this_update: None,
            ocsp: OcspSpec::default(),
            key_type: LeafKeyType::EcdsaP256,
            precert: PrecertIssuance::Direct,
            serial: None,
        }
    }

    /// Add an embedded SCT.
    pub fn embed(mut self, sct: SctSpec) -> Self {
        self.embedded_scts.push(sct);
        self
    }

    /// Add an SCT delivered in the stapled OCSP response.
    pub fn staple(mut self, sct: SctSpec) -> Self {
        self.ocsp_scts.push(sct);
        self
    }

    /// Staple an OCSP response built as `spec` says (status, signer, ...).
    pub fn with_ocsp(mut self, spec: OcspSpec) -> Self {
        self.ocsp = spec;
        self.staple_ocsp = true;
        self
    }

    /// Set the issuing CA.
    pub fn issued_by(mut self, issuer: LeafIssuer) -> Self {
        self.issuer = issuer;
        self
    }

    /// Set the validity period.
    pub fn valid(mut self, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Self {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }
}

/// An issued leaf: chain, key, stapled OCSP response and what was signed.
pub struct IssuedLeaf {
    /// Leaf first, then the issuing intermediate (never the root).
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's PKCS#8 private key.
    pub key: PrivatePkcs8KeyDer<'static>,
    /// DER OCSPResponse to staple, if OCSP SCTs (or `staple_ocsp`) were requested.
    pub ocsp_response: Option<Vec<u8>>,
    /// The embedded SCTs, as encoded in the certificate.
    pub embedded_scts: Vec<Sct>,
    /// The SCTs in the OCSP response.
    pub ocsp_scts: Vec<Sct>,
    /// The precertificate (with the poison extension), if SCTs were embedded.
    pub precertificate: Option<CertificateDer<'static>>,
    /// The Precertificate Signing Certificate that signed the precertificate, if any.
    pub precert_signing_cert: Option<CertificateDer<'static>>,
    /// The TBSCertificate a correct `precert_entry` covers: the final TBS without the SCT
    /// extension.
    pub signed_tbs: Vec<u8>,
    /// DER SPKI of the final issuer (its SHA-256 is the correct `issuer_key_hash`).
    pub issuer_spki: Vec<u8>,
    /// Which CA issued the leaf.
    pub issuer: CaCert,
    leaf: CertificateDer<'static>,
}

impl fmt::Debug for IssuedLeaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedLeaf")
            .field("chain_len", &self.chain.len())
            .field("issuer", &self.issuer)
            .field("embedded_scts", &self.embedded_scts.len())
            .field("ocsp_scts", &self.ocsp_scts.len())
            .field("ocsp_response", &self.ocsp_response.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

impl Clone for IssuedLeaf {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            ocsp_response: self.ocsp_response.clone(),
            embedded_scts: self.embedded_scts.clone(),
            ocsp_scts: self.ocsp_scts.clone(),
            precertificate: self.precertificate.clone(),
            precert_signing_cert: self.precert_signing_cert.clone(),
            signed_tbs: self.signed_tbs.clone(),
            issuer_spki: self.issuer_spki.clone(),
            issuer: self.issuer,
            leaf: self.leaf.clone(),
        }
    }
}

impl IssuedLeaf {
    /// The leaf certificate as issued.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.leaf
    }

    /// The intermediates of [`Self::chain`] (everything after the leaf).
    pub fn intermediates(&self) -> &[CertificateDer<'static>] {
        self.chain.get(1..).unwrap_or(&[])
    }

    /// The private key as rustls takes it.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }

    /// SHA-256 of the final issuer's SPKI: the correct `issuer_key_hash`.
    pub fn issuer_key_hash(&self) -> [u8; 32] {
        crate::ct::sha256(&self.issuer_spki)
    }

    /// The leaf as PEM.
    pub fn leaf_pem(&self) -> String {
        der::pem("CERTIFICATE", &self.leaf)
    }

    /// The whole chain as concatenated PEM (leaf first), as servers load it.
    pub fn chain_pem(&self) -> String {
        self.chain
            .iter()
            .map(|c| der::pem("CERTIFICATE", c))
            .collect()
    }

    /// The private key as PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        der::pem("PRIVATE KEY", self.key.secret_pkcs8_der())
    }
}

/// Context for one issuance.
struct Build<'a> {
    pki: &'a TestPki,
    issuer: &'a TestCa,
    key: KeyPair,
    base: CertificateParams,
}

impl Build<'_> {
    fn sign(
        &self,
        params: &CertificateParams,
        by: &TestCa,
        what: &'static str,
    ) -> Result<CertificateDer<'static>, PkiError> {
        Ok(params
            .signed_by(&self.key, &by.issuer())
            .map_err(PkiError::cert(what))?
            .der()
            .clone())
    }

    /// The same leaf with another serial number (for `sign_over_other_tbs`).
    fn sibling(&self) -> Result<CertificateDer<'static>, PkiError> {
        let mut params = self.base.clone();
        let mut serial = params
            .serial_number
            .as_ref()
            .map(SerialNumber::to_bytes)
            .unwrap_or_else(|| vec![1]);
        if let Some(last) = serial.last_mut() {
            *last ^= 0x01;
        }
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        self.sign(&params, self.issuer, "sibling leaf")
    }

    fn key_hash_of(&self, ca: CaCert, signer: Option<&TestCa>) -> Result<[u8; 32], PkiError> {
        match ca {
            CaCert::PrecertSigner => {
                signer
                    .map(TestCa::key_hash)
                    .ok_or(PkiError::KnobNotApplicable {
                        knob: "issuer_key_hash_of",
                        delivery: SctSource::Embedded,
                        detail: ": PrecertSigner needs PrecertIssuance::PrecertSigningCert",
                    })
            }
            other => self
                .pki
                .ca(other)
                .map(TestCa::key_hash)
                .ok_or(PkiError::KnobNotApplicable {
                    knob: "issuer_key_hash_of",
                    delivery: SctSource::Embedded,
                    detail: "",
                }),
        }
    }
}

fn tbs(cert: &[u8], what: &'static str) -> Result<Vec<u8>, PkiError> {
    der::tbs_of(cert)
        .map(<[u8]>::to_vec)
        .map_err(|_| PkiError::Parse { what })
}

fn corrupt(sig: &mut [u8]) {
    if let Some(b) = sig.last_mut() {
        *b ^= 0x01;
    }
}

fn random_serial() -> Result<Vec<u8>, PkiError> {
    let mut serial = vec![0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| PkiError::Random {
            what: "serial number",
        })?;
    if let Some(first) = serial.first_mut() {
        *first = (*first & 0x7f) | 0x10;
    }
    Ok(serial)
}

fn leaf_key(kind: LeafKeyType) -> Result<KeyPair, PkiError> {
    let err = PkiError::cert("leaf key");
    match kind {
        LeafKeyType::EcdsaP256 => {
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)
        }
        LeafKeyType::EcdsaP384 => {
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).map_err(err)
        }
        LeafKeyType::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(err),
        LeafKeyType::Rsa2048 => {
            let pkcs8 = pkcs8_from_pem(RSA_TEST_LEAF_KEY_PEM, "rsa_test_leaf_key.pem")?;
            KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256).map_err(err)
        }
    }
}

fn leaf_params(spec: &LeafSpec, serial: &[u8]) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.serial_number = Some(SerialNumber::from_slice(serial));
    params.not_before = spec.not_before;
    params.not_after = spec.not_after;
    let mut dn = DistinguishedName::new();
    if let Some(cn) = &spec.common_name {
        dn.push(DnType::CommonName, cn.as_str());
    }
    params.distinguished_name = dn;
    params.subject_alt_names = spec
        .ip_sans
        .iter()
        .map(|ip| Ok(SanType::IpAddress(*ip)))
        .chain(spec.dns_sans.iter().map(|name| {
            name.as_str()
                .try_into()
                .map(SanType::DnsName)
                .map_err(PkiError::cert("leaf (dNSName SAN)"))
        }))
        .collect::<Result<_, PkiError>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if spec.key_type == LeafKeyType::Rsa2048 {
        params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

impl TestPki {
    /// A [`LeafSpec`] for `ip` relative to this PKI's reference time (see [`LeafSpec::new`]).
    pub fn leaf_spec(&self, ip: IpAddr) -> LeafSpec {
        LeafSpec::new(ip, self.now)
    }

    /// Issue a leaf as `spec` says: build it without SCTs, have the logs sign the precert
    /// entry (or whatever the failure knobs ask), issue the final certificate with the
    /// SCT-list extension last, and staple an OCSP response with the OCSP SCTs.
    pub fn issue_leaf(&self, spec: &LeafSpec) -> Result<IssuedLeaf, PkiError> {
        let issuer_choice = spec.issuer.ca();
        let issuer = match spec.issuer {
            LeafIssuer::Intermediate => &self.intermediate,
            LeafIssuer::Root => &self.root,
            LeafIssuer::RogueIntermediate => &self.rogue_intermediate,
        };
        let serial = match &spec.serial {
            Some(s) => s.clone(),
            None => random_serial()?,
        };
        let b = Build {
            pki: self,
            issuer,
            key: leaf_key(spec.key_type)?,
            base: leaf_params(spec, &serial)?,
        };

        // 1. The leaf without the SCT extension: its TBS is what the logs sign.
        let plain = b.sign(&b.base, issuer, "leaf (without SCTs)")?;
        let signed_tbs = tbs(&plain, "leaf TBS")?;
        let wants_sibling = spec
            .embedded_scts
            .iter()
            .chain(&spec.ocsp_scts)
            .any(|s| s.sign_over_other_tbs);
        let sibling = if wants_sibling {
            Some(b.sibling()?)
        } else {
            None
        };
        let sibling_der = || {
            sibling.as_ref().ok_or(PkiError::Parse {
                what: "sibling leaf",
            })
        };

        // 2. The precertificate (poison last), directly or via a precert signing cert.
        let mut precertificate = None;
        let mut signer = None;
        let mut embedded_scts = Vec::with_capacity(spec.embedded_scts.len());
        if !spec.embedded_scts.is_empty() {
            let mut poisoned = b.base.clone();
            let mut poison = CustomExtension::from_oid_content(OID_PRECERT_POISON, der::null());
            poison.set_criticality(true);
            poisoned.custom_extensions.push(poison);
            let precert_by = match spec.precert {
                PrecertIssuance::Direct => issuer,
                PrecertIssuance::PrecertSigningCert => {
                    let s = issuer.issue_ca(
                        "ctdns Test Precertificate Signing CA",
                        &self.org,
                        self.now - Duration::days(1),
                        self.now + Duration::days(3650),
                        Some(OID_PRECERT_SIGNING_EKU),
                    )?;
                    &*signer.insert(s)
                }
            };
            let precert = b.sign(&poisoned, precert_by, "precertificate")?;

            // 3. The embedded SCTs.
            for s in &spec.embedded_scts {
                let log = self
                    .log(&s.log)
                    .ok_or_else(|| PkiError::UnknownLog(s.log.clone()))?;
                let key_hash = match s.issuer_key_hash_of {
                    None => issuer.key_hash(),
                    Some(ca) => b.key_hash_of(ca, signer.as_ref())?,
                };
                let other_tbs;
                let tbs_bytes: &[u8] = if s.sign_over_other_tbs {
                    other_tbs = tbs(sibling_der()?, "sibling TBS")?;
                    &other_tbs
                } else if s.naive_precert_tbs {
                    let Some(signer) = signer.as_ref() else {
                        return Err(PkiError::KnobNotApplicable {
                            knob: "naive_precert_tbs",
                            delivery: SctSource::Embedded,
                            detail: ": needs PrecertIssuance::PrecertSigningCert",
                        });
                    };
                    other_tbs = tbs(&b.sign(&b.base, signer, "naive precert TBS")?, "naive TBS")?;
                    &other_tbs
                } else {
                    &signed_tbs
                };
                let entry = if s.as_x509_entry {
                    SignedEntry::X509 { leaf: &precert }
                } else {
                    SignedEntry::Precert {
                        issuer_key_hash: key_hash,
                        tbs: tbs_bytes,
                    }
                };
                let mut sct = log.sign_sct(s.timestamp_ms, entry, &s.extensions)?;
                if s.corrupt_signature {
                    corrupt(&mut sct.signature);
                }
                embedded_scts.push(sct);
            }
            precertificate = Some(precert);
        }

        // 4. The final certificate: same parameters, SCT list as the last extension.
        let leaf = if embedded_scts.is_empty() {
            plain
        } else {
            let list = sct_list(&embedded_scts)?;
            let mut params = b.base.clone();
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    OID_SCT_LIST,
                    der::octet_string(&list),
                ));
            b.sign(&params, issuer, "leaf")?
        };

        // 5. OCSP SCTs (x509_entry over the final leaf) and the stapled response.
        let mut ocsp_scts = Vec::with_capacity(spec.ocsp_scts.len());
        for s in &spec.ocsp_scts {
            let not_applicable = |knob| PkiError::KnobNotApplicable {
                knob,
                delivery: SctSource::Ocsp,
                detail: "",
            };
            if s.issuer_key_hash_of.is_some() {
                return Err(not_applicable("issuer_key_hash_of"));
            }
            if s.as_x509_entry {
                return Err(not_applicable("as_x509_entry"));
            }
            if s.naive_precert_tbs {
                return Err(not_applicable("naive_precert_tbs"));
            }
            let log = self
                .log(&s.log)
                .ok_or_else(|| PkiError::UnknownLog(s.log.clone()))?;
            let signed_leaf: &[u8] = if s.sign_over_other_tbs {
                sibling_der()?
            } else {
                &leaf
            };
            let mut sct = log.sign_sct(
                s.timestamp_ms,
                SignedEntry::X509 { leaf: signed_leaf },
                &s.extensions,
            )?;
            if s.corrupt_signature {
                corrupt(&mut sct.signature);
            }
            ocsp_scts.push(sct);
        }
        let ocsp_response = if ocsp_scts.is_empty() && !spec.staple_ocsp {
            None
        } else {
            let list = if ocsp_scts.is_empty() {
                None
            } else {
                Some(sct_list(&ocsp_scts)?)
            };
            let this_update = spec.ocsp_this_update.unwrap_or(spec.not_before);
            Some(build_ocsp_response_with(
                issuer,
                &leaf,
                list.as_deref(),
                this_update,
                this_update + Duration::days(7),
                &spec.ocsp,
            )?)
        };

        let mut chain = vec![leaf.clone()];
        if issuer_choice != CaCert::Root {
            chain.push(issuer.der().clone());
        }
        Ok(IssuedLeaf {
            chain,
            key: PrivatePkcs8KeyDer::from(b.key.serialize_der()),
            ocsp_response,
            embedded_scts,
            ocsp_scts,
            precertificate,
            precert_signing_cert: signer.map(|s| s.der().clone()),
            signed_tbs,
            issuer_spki: issuer.spki_der().to_vec(),
            issuer: issuer_choice,
            leaf,
        })
    }
}

/// TLS-encode SCTs as a `SignedCertificateTimestampList`, refusing oversize lists.
pub(crate) fn sct_list(scts: &[Sct]) -> Result<Vec<u8>, PkiError> {
    let encoded: Vec<Vec<u8>> = scts.iter().map(Sct::encode).collect();
    let total: usize = encoded.iter().map(|e| e.len() + 2).sum();
    if total > usize::from(u16::MAX) || encoded.iter().any(|e| e.len() > usize::from(u16::MAX)) {
        return Err(PkiError::SctListTooLong(total));
    }
    Ok(encode_sct_list(encoded.iter().map(Vec::as_slice)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::der::{children, element as tlv, read_tlv, tag::SEQUENCE as TAG_SEQUENCE};
    use crate::ct::sct::parse_sct_list;
    use crate::pki::log::tests::verify_sct;
    use crate::pki::{default_logs, PkiOptions};
    use x509_parser::extensions::GeneralName;
    use x509_parser::parse_x509_certificate;

    const IP4: &str = "192.0.2.53";

    fn pki() -> TestPki {
        TestPki::generate(&PkiOptions::default()).unwrap()
    }

    fn ts(pki: &TestPki) -> u64 {
        unix_ms(pki.now()) - 60_000
    }

    /// Rebuild `cert`'s TBSCertificate without the extension `oid` (splicing the DER and
    /// re-encoding the enclosing lengths), independently of how the generator built it.
    fn tbs_without_extension(cert: &[u8], oid: &[u64]) -> (Vec<u8>, bool) {
        let (cert, _) = read_tlv(cert).unwrap();
        let (tbs, _) = read_tlv(cert.value).unwrap();
        let want_oid = der::oid(oid);
        let mut removed = false;
        let mut out = Vec::new();
        for field in children(tbs.value).unwrap() {
            if field.tag != 0xa3 {
                out.extend_from_slice(field.element);
                continue;
            }
            let (exts, _) = read_tlv(field.value).unwrap();
            let mut kept = Vec::new();
            for ext in children(exts.value).unwrap() {
                let ext_oid = children(ext.value).unwrap().first().unwrap().element;
                if ext_oid == want_oid.as_slice() {
                    removed = true;
                } else {
                    kept.extend_from_slice(ext.element);
                }
            }
            out.extend(tlv(0xa3, &tlv(TAG_SEQUENCE, &kept)));
        }
        (tlv(TAG_SEQUENCE, &out), removed)
    }

    /// The embedded SCT list, read with x509-parser and decoded with the crate's parser.
    fn embedded_scts(cert: &[u8]) -> Vec<Sct> {
        let (_, x) = parse_x509_certificate(cert).unwrap();
        let want = der::oid(OID_SCT_LIST);
        let exts = x.extensions();
        let pos = exts
            .iter()
            .position(|e| der::oid(&oid_arcs(&e.oid)) == want)
            .expect("SCT list extension present");
        assert_eq!(pos, exts.len() - 1, "SCT list is the last extension");
        assert!(!exts[pos].critical);
        // extnValue = OCTET STRING { TLS list }
        let (inner, rest) = read_tlv(exts[pos].value).unwrap();
        assert_eq!(inner.tag, der::tag::OCTET_STRING);
        assert!(rest.is_empty());
        parse_sct_list(inner.value).unwrap().scts
    }

    fn oid_arcs(oid: &x509_parser::der_parser::oid::Oid<'_>) -> Vec<u64> {
        oid.iter().unwrap().collect()
    }

    fn issuer_spki(pki: &TestPki, leaf: &IssuedLeaf) -> Vec<u8> {
        let issuer_der = leaf
            .intermediates()
            .first()
            .cloned()
            .unwrap_or_else(|| pki.root().der().clone());
        let (_, x) = parse_x509_certificate(&issuer_der).unwrap();
        x.public_key().raw.to_vec()
    }

    fn log_spki<'a>(pki: &'a TestPki, sct: &Sct) -> &'a [u8] {
        pki.logs()
            .iter()
            .find(|l| l.log_id() == sct.log_id)
            .expect("SCT from a known log")
            .spki_der()
    }

    /// Verify every embedded SCT of `leaf` the RFC 6962 way. Returns one bool per SCT.
    fn verify_embedded(pki: &TestPki, leaf: &IssuedLeaf) -> Vec<bool> {
        let (tbs, removed) = tbs_without_extension(leaf.leaf(), OID_SCT_LIST);
        assert!(removed);
        let key_hash = crate::ct::sha256(&issuer_spki(pki, leaf));
        embedded_scts(leaf.leaf())
            .iter()
            .map(|sct| {
                verify_sct(
                    log_spki(pki, sct),
                    sct,
                    SignedEntry::Precert {
                        issuer_key_hash: key_hash,
                        tbs: &tbs,
                    },
                )
            })
            .collect()
    }

    fn ocsp_scts(leaf: &IssuedLeaf) -> Vec<Sct> {
        let resp = leaf.ocsp_response.as_ref().expect("stapled OCSP response");
        let parsed = crate::pki::ocsp::tests::parse_ocsp(resp).expect("OCSP parses");
        parse_sct_list(parsed.sct_list.expect("OCSP SCT extension"))
            .unwrap()
            .scts
    }

    fn verify_ocsp(pki: &TestPki, leaf: &IssuedLeaf) -> Vec<bool> {
        ocsp_scts(leaf)
            .iter()
            .map(|sct| {
                verify_sct(
                    log_spki(pki, sct),
                    sct,
                    SignedEntry::X509 { leaf: leaf.leaf() },
                )
            })
            .collect()
    }

    #[test]
    fn honest_leaf_parses_and_all_scts_verify() {
        let pki = pki();
        let t = ts(&pki);
        let spec = pki
            .leaf_spec(IP4.parse().unwrap())
            .embed(SctSpec::new(default_logs::ALPHA, t))
            .embed(SctSpec::new(default_logs::BETA, t + 1))
            .embed(SctSpec::new(default_logs::GAMMA, t + 2));
        let leaf = pki.issue_leaf(&spec).unwrap();
        let (_, x) = parse_x509_certificate(leaf.leaf()).unwrap();
        let san = x.subject_alternative_name().unwrap().unwrap();
        assert!(san
            .value
            .general_names
            .contains(&GeneralName::IPAddress(&[192, 0, 2, 53])));
        assert!(!x.is_ca());
        assert_eq!(leaf.chain.len(), 2);
        assert_eq!(&leaf.chain[1], pki.intermediate().der());
        assert_eq!(
            x.issuer(),
            parse_x509_certificate(&leaf.chain[1]).unwrap().1.subject()
        );
        assert_eq!(verify_embedded(&pki, &leaf), vec![true, true, true]);
        let scts = embedded_scts(leaf.leaf());
        assert_eq!(scts, leaf.embedded_scts);
        assert_eq!(scts[2].sig_alg, crate::ct::sct::SIG_RSA);
        assert_eq!(scts[0].sig_alg, crate::ct::sct::SIG_ECDSA);
        assert_eq!(scts[1].timestamp, t + 1);
        assert!(leaf.ocsp_response.is_none());
    }

    #[test]
    fn final_tbs_minus_sct_extension_is_what_the_logs_signed() {
        let pki = pki();
        let spec = pki
            .leaf_spec(IP4.parse().unwrap())
            .embed(SctSpec::new(default_logs::ALPHA, ts(&pki)));
        let leaf = pki.issue_leaf(&spec).unwrap();
        let (spliced, removed) = tbs_without_extension(leaf.leaf(), OID_SCT_LIST);
        assert!(removed);
        assert_eq!(
            spliced, leaf.signed_tbs,
            "final TBS minus SCT ext == signed TBS"
        );
        // The precertificate's TBS minus the poison is the same bytes (direct issuance).
        let precert = leaf.precertificate.as_ref().unwrap();
        let (pre, removed) = tbs_without_extension(precert, OID_PRECERT_POISON);
        assert!(removed);
        assert_eq!(pre, leaf.signed_tbs);
        // The poison is critical and the precert parses.
        let (_, px) = parse_x509_certificate(precert).unwrap();
        let poison = px
            .extensions()
            .iter()
            .find(|e| der::oid(&oid_arcs(&e.oid)) == der::oid(OID_PRECERT_POISON))
            .unwrap();
        assert!(poison.critical);
        // And leaving the SCT extension in makes the signature fail.
        let sct = &leaf.embedded_scts[0];
        let full_tbs = der::tbs_of(leaf.leaf()).unwrap();
        assert!(!verify_sct(
            log_spki(&pki, sct),
            sct,
            SignedEntry::Precert {
                issuer_key_hash: leaf.issuer_key_hash(),
                tbs: full_tbs,
            }
        ));
    }

    #[test]
    fn failure_knobs_fail_verification() {
        let pki = pki();
        let t = ts(&pki);
        let a = default_logs::ALPHA;
        let spec = pki
            .leaf_spec(IP4.parse().unwrap())
            .embed(SctSpec::new(a, t))
            .embed(SctSpec::new(a, t).corrupt_signature())
            .embed(SctSpec::new(a, t).sign_over_other_tbs())
            .embed(SctSpec::new(a, t).issuer_key_hash_of(CaCert::Root))
            .embed(SctSpec::new(a, t).as_x509_entry())
            .embed(SctSpec::new(default_logs::GAMMA, t).corrupt_signature())
            .embed(SctSpec::new(a, t).issuer_key_hash_of(CaCert::Intermediate));
        let leaf = pki.issue_leaf(&spec).unwrap();
        assert_eq!(
            verify_embedded(&pki, &leaf),
            vec![true, false, false, false, false, false, true]
        );
        // The x509-entry SCT really is a valid x509_entry over the precertificate: only the
        // entry type is wrong.
        let sct = &leaf.embedded_scts[4];
        assert!(verify_sct(
            log_spki(&pki, sct),
            sct,
            SignedEntry::X509 {
                leaf: leaf.precertificate.as_ref().unwrap()
            }
        ));
        // The root-key-hash SCT verifies if (and only if) one uses the root's key hash.
        let sct = &leaf.embedded_scts[3];
        assert!(verify_sct(
            log_spki(&pki, sct),
            sct,
            SignedEntry::Precert {
                issuer_key_hash: pki.root().key_hash(),
                tbs: &leaf.signed_tbs,
            }
        ));
    }

    #[test]
    fn precert_signing_certificate_issuance() {
        let pki = pki();
        let t = ts(&pki);
        let a = default_logs::ALPHA;
        let mut spec = pki
            .leaf_spec(IP4.parse().unwrap())
            .embed(SctSpec::new(a, t))
            .embed(SctSpec::new(default_logs::GAMMA, t))
            .embed(SctSpec::new(a, t).issuer_key_hash_of(CaCert::PrecertSigner))
            .embed(SctSpec::new(a, t).naive_precert_tbs());
        spec.precert = PrecertIssuance::PrecertSigningCert;
        let leaf = pki.issue_leaf(&spec).unwrap();
        assert_eq!(verify_embedded(&pki, &leaf), vec![true, true, false, false]);

        let signer = leaf.precert_signing_cert.as_ref().unwrap();
        let (_, sx) = parse_x509_certificate(signer).unwrap();
        assert!(sx.is_ca());
        let eku = sx.extended_key_usage().unwrap().unwrap();
        assert!(eku
            .value
            .other
            .iter()
            .any(|o| oid_arcs(o) == OID_PRECERT_SIGNING_EKU));
        let (_, inter) = parse_x509_certificate(pki.intermediate().der()).unwrap();
        assert_eq!(sx.issuer(), inter.subject());
        // The precert is issued by the signer; the final cert by the intermediate.
        let precert = leaf.precertificate.as_ref().unwrap();
        let (_, px) = parse_x509_certificate(precert).unwrap();
        assert_eq!(px.issuer(), sx.subject());
        // The naive reconstruction (precert TBS minus poison) is what the wrong SCT signed.
        let (naive, _) = tbs_without_extension(precert, OID_PRECERT_POISON);
        assert_ne!(naive, leaf.signed_tbs);
        let sct = &leaf.embedded_scts[3];
        assert!(verify_sct(
            log_spki(&pki, sct),
            sct,
            SignedEntry::Precert {
                issuer_key_hash: leaf.issuer_key_hash(),
                tbs: &naive,
            }
        ));
    }

    #[test]
    fn knobs_that_need_a_precert_signer_are_refused_without_one() {
        let pki = pki();
        for s in [
            SctSpec::new(default_logs::ALPHA, 1).naive_precert_tbs(),
            SctSpec::new(default_logs::ALPHA, 1).issuer_key_hash_of(CaCert::PrecertSigner),
        ] {
            let spec = pki.leaf_spec(IP4.parse().unwrap()).embed(s);
            assert!(matches!(
                pki.issue_leaf(&spec),
                Err(PkiError::KnobNotApplicable { .. })
            ));
        }
    }

    #[test]
    fn ocsp_scts_verify_and_their_knobs_fail() {
        let pki = pki();
        let t = ts(&pki);
        let spec = pki
            .leaf_spec(IP4.parse().unwrap())
            .staple(SctSpec::new(default_logs::ALPHA, t))
            .staple(SctSpec::new(default_logs::GAMMA, t))
            .staple(SctSpec::new(default_logs::BETA, t).corrupt_signature())
            .staple(SctSpec::new(default_logs::BETA, t).sign_over_other_tbs());
        let leaf = pki.issue_leaf(&spec).unwrap();
        assert!(leaf.embedded_scts.is_empty());
        assert!(leaf.precertificate.is_none());
        assert_eq!(ocsp_scts(&leaf), leaf.ocsp_scts);
        assert_eq!(verify_ocsp(&pki, &leaf), vec![true, true, false, false]);
        // The response is about this leaf and signed by its issuer.
        let parsed =
            crate::pki::ocsp::tests::parse_ocsp(leaf.ocsp_response.as_ref().unwrap()).unwrap();
        let (_, x) = parse_x509_certificate(leaf.leaf()).unwrap();
        assert_eq!(parsed.serial, x.raw_serial());
        let key_bits =
            crate::pki::log::tests::spki_key_bits(pki.intermediate().spki_der()).unwrap();
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, key_bits)
            .verify(parsed.tbs_response_data, parsed.signature)
            .unwrap();

        for bad in [
            SctSpec::new(default_logs::ALPHA, t).as_x509_entry(),
            SctSpec::new(default_logs::ALPHA, t).issuer_key_hash_of(CaCert::Root),
        ] {
            let spec = pki.leaf_spec(IP4.parse().unwrap()).staple(bad);
            assert!(matches!(
                pki.issue_leaf(&spec),
                Err(PkiError::KnobNotApplicable {
                    delivery: SctSource::Ocsp,
                    ..
                })
            ));
        }
    }

    #[test]
    fn embedded_and_ocsp_together_with_leaf_index() {
        let pki = pki();
        let t = ts(&pki);
        let spec = pki
            .leaf_spec("2001:db8::53".parse().unwrap())
            .embed(
                SctSpec::new(default_logs::ALPHA, t)
                    .with_leaf_index(123_456)
                    .unwrap(),
            )
            .embed(SctSpec::new(default_logs::BETA, t))
            .staple(SctSpec::new(default_logs::GAMMA, t));
        let leaf = pki.issue_leaf(&spec).unwrap();
        assert_eq!(verify_embedded(&pki, &leaf), vec![true, true]);
        assert_eq!(verify_ocsp(&pki, &leaf), vec![true]);
        assert_eq!(
            leaf.embedded_scts[0].extensions,
            vec![0, 0, 5, 0, 0, 0x01, 0xe2, 0x40]
        );
        let (_, x) = parse_x509_certificate(leaf.leaf()).unwrap();
        let san = x.subject_alternative_name().unwrap().unwrap();
        let v6: std::net::Ipv6Addr = "2001:db8::53".parse().unwrap();
        assert!(san
            .value
            .general_names
            .contains(&GeneralName::IPAddress(&v6.octets())));
    }

    #[test]
    fn issuers_and_chains() {
        let pki = pki();
        let ip: IpAddr = IP4.parse().unwrap();
        let t = ts(&pki);
        let rogue = pki
            .issue_leaf(
                &pki.leaf_spec(ip)
                    .issued_by(LeafIssuer::RogueIntermediate)
                    .embed(SctSpec::new(default_logs::ALPHA, t))
                    .embed(SctSpec::new(default_logs::BETA, t)),
            )
            .unwrap();
        assert_eq!(rogue.issuer, CaCert::RogueIntermediate);
        assert_eq!(&rogue.chain[1], pki.rogue_intermediate().der());
        assert_eq!(rogue.issuer_spki, pki.rogue_intermediate().spki_der());
        assert_eq!(verify_embedded(&pki, &rogue), vec![true, true]);

        let by_root = pki
            .issue_leaf(
                &pki.leaf_spec(ip)
                    .issued_by(LeafIssuer::Root)
                    .embed(SctSpec::new(default_logs::ALPHA, t)),
            )
            .unwrap();
        assert_eq!(by_root.chain.len(), 1);
        assert!(by_root.intermediates().is_empty());
        assert_eq!(verify_embedded(&pki, &by_root), vec![true]);
    }

    #[test]
    fn key_types_and_subject_variants() {
        let pki = pki();
        let t = ts(&pki);
        for key_type in [
            LeafKeyType::EcdsaP256,
            LeafKeyType::EcdsaP384,
            LeafKeyType::Ed25519,
            LeafKeyType::Rsa2048,
        ] {
            let mut spec = pki
                .leaf_spec(IP4.parse().unwrap())
                .embed(SctSpec::new(default_logs::ALPHA, t));
            spec.key_type = key_type;
            let leaf = pki.issue_leaf(&spec).unwrap();
            assert!(parse_x509_certificate(leaf.leaf()).is_ok(), "{key_type:?}");
            assert_eq!(verify_embedded(&pki, &leaf), vec![true], "{key_type:?}");
            // The key matches the certificate.
            let kp = KeyPair::try_from(leaf.key.secret_pkcs8_der()).unwrap();
            let (_, x) = parse_x509_certificate(leaf.leaf()).unwrap();
            use rcgen::PublicKeyData;
            assert_eq!(
                kp.subject_public_key_info(),
                x.public_key().raw,
                "{key_type:?}"
            );
        }

        // "IP only in the CN": no SAN extension at all.
        let mut spec = pki.leaf_spec(IP4.parse().unwrap());
        spec.ip_sans.clear();
        spec.common_name = Some(IP4.to_string());
        let leaf = pki.issue_leaf(&spec).unwrap();
        let (_, x) = parse_x509_certificate(leaf.leaf()).unwrap();
        assert!(x.subject_alternative_name().unwrap().is_none());
        let cn = x.subject().iter_common_name().next().unwrap();
        assert_eq!(cn.as_str().unwrap(), IP4);

        // DNS SANs alongside the IP.
        let mut spec = pki.leaf_spec(IP4.parse().unwrap());
        spec.dns_sans.push("dns.example.test".into());
        let leaf = pki.issue_leaf(&spec).unwrap();
        let (_, x) = parse_x509_certificate(leaf.leaf()).unwrap();
        let san = x.subject_alternative_name().unwrap().unwrap();
        assert!(san
            .value
            .general_names
            .contains(&GeneralName::DNSName("dns.example.test")));
    }

    #[test]
    fn fixed_serial_and_validity_are_honoured() {
        let pki = pki();
        let nb = time::macros::datetime!(2030-01-02 03:04:05 UTC);
        let na = nb + Duration::days(10);
        let mut spec = pki.leaf_spec(IP4.parse().unwrap()).valid(nb, na);
        spec.serial = Some(vec![0x12, 0x34, 0x56]);
        let leaf = pki.issue_leaf(&spec).unwrap();
        let (_, x) = parse_x509_certificate(leaf.leaf()).unwrap();
        assert_eq!(x.raw_serial(), &[0x12, 0x34, 0x56]);
        assert_eq!(x.validity().not_before.to_datetime(), nb);
        assert_eq!(x.validity().not_after.to_datetime(), na);
    }

    #[test]
    fn unknown_log_is_a_typed_error() {
        let pki = pki();
        let spec = pki
            .leaf_spec(IP4.parse().unwrap())
            .embed(SctSpec::new("Nope", 1));
        assert!(matches!(pki.issue_leaf(&spec), Err(PkiError::UnknownLog(n)) if n == "Nope"));
        let spec = pki
            .leaf_spec(IP4.parse().unwrap())
            .staple(SctSpec::new("Nope", 1));
        assert!(matches!(
            pki.issue_leaf(&spec),
            Err(PkiError::UnknownLog(_))
        ));
    }

    #[test]
    fn pem_accessors_round_trip() {
        use rustls_pki_types::pem::PemObject;
        let pki = pki();
        let leaf = pki
            .issue_leaf(&pki.leaf_spec(IP4.parse().unwrap()))
            .unwrap();
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(leaf.chain_pem().as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(chain, leaf.chain);
        assert_eq!(
            CertificateDer::from_pem_slice(leaf.leaf_pem().as_bytes()).unwrap(),
            *leaf.leaf()
        );
        let key = PrivateKeyDer::from_pem_slice(leaf.key_pem().as_bytes()).unwrap();
        assert_eq!(key.secret_der(), leaf.key_der().secret_der());
    }
}
