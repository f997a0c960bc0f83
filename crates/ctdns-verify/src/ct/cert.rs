//! The leaf certificate as Certificate Transparency sees it.
//!
//! [`LeafCert::parse`] walks `Certificate → TBSCertificate` with the hand-written
//! [`der`] reader and keeps borrowed slices of the fields CT needs: the
//! whole TBS, the serial, the validity, the SPKI, the names and the extensions. It
//! validates structure only; signatures and path building are rustls-webpki's job.
//!
//! [`LeafCert::precert_tbs`] rebuilds what a log signed for an embedded SCT (RFC 6962
//! §3.2): the TBSCertificate with **only** the SCT-list extension removed, produced by
//! splicing the DER bytes and recomputing the three enclosing lengths (extensions
//! `SEQUENCE`, `[3]` wrapper, TBS `SEQUENCE`). Every other byte is kept as the CA wrote
//! it, including `issuerUniqueID` / `subjectUniqueID` and the order of the remaining
//! extensions.

use crate::ct::der::{self, tag, DerError, Reader, Tlv};

/// DER contents of OID 1.3.6.1.4.1.11129.2.4.2, the embedded SCT-list extension.
pub const OID_SCT_LIST: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02];
/// DER contents of OID 1.3.6.1.4.1.11129.2.4.3, the precertificate poison extension.
pub const OID_PRECERT_POISON: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x03];

/// Why a certificate could not be parsed or transformed. Each variant names the field
/// or rule at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// A field is not well-formed DER or has the wrong tag.
    #[error("certificate: malformed `{field}`: {cause}")]
    Malformed {
        /// The certificate field that did not parse.
        field: &'static str,
        /// The DER rule it broke.
        #[source]
        cause: DerError,
    },
    /// The `[0] version` is not v1, v2 or v3.
    #[error("certificate: unsupported version")]
    BadVersion,
    /// The serial number INTEGER is empty.
    #[error("certificate: empty serial number")]
    EmptySerial,
    /// A validity time is not a valid RFC 5280 `UTCTime`/`GeneralizedTime` (`Z` form)
    /// at or after the Unix epoch.
    #[error("certificate: invalid time in `{field}`")]
    BadTime {
        /// `notBefore` or `notAfter`.
        field: &'static str,
    },
    /// More than one SCT-list extension.
    #[error("certificate: more than one SCT-list extension")]
    DuplicateSctExtension,
    /// The SCT-list extension's value does not wrap exactly one OCTET STRING.
    #[error("certificate: SCT-list extension value is not an OCTET STRING")]
    SctExtensionNotOctetString,
    /// A precertificate TBS was requested but the certificate has no SCT-list extension.
    #[error("certificate: no SCT-list extension to remove")]
    MissingSctExtension,
    /// More than one precertificate poison extension.
    #[error("certificate: more than one precertificate poison extension")]
    DuplicatePoisonExtension,
    /// The poison was to be removed but the certificate has none.
    #[error("certificate: no precertificate poison extension")]
    MissingPoisonExtension,
}

/// One extension, located inside the extensions `SEQUENCE` contents.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Extension<'a> {
    /// `extnID` contents.
    pub(crate) oid: &'a [u8],
    /// `extnValue` OCTET STRING contents.
    pub(crate) value: &'a [u8],
    /// Byte range of the whole `Extension` element within the extensions contents.
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// A parsed X.509 certificate, borrowing from its DER.
#[derive(Clone, Debug)]
pub struct LeafCert<'a> {
    der: &'a [u8],
    tbs: &'a [u8],
    /// TBS contents before the `[3]` extensions wrapper (all of it if there is none).
    tbs_prefix: &'a [u8],
    serial: &'a [u8],
    issuer: &'a [u8],
    subject: &'a [u8],
    spki: &'a [u8],
    not_before: u64,
    not_after: u64,
    /// Contents of the extensions `SEQUENCE`, when the `[3]` field is present.
    extensions_der: &'a [u8],
    extensions: Vec<Extension<'a>>,
}

fn malformed(field: &'static str) -> impl Fn(DerError) -> CertError {
    move |cause| CertError::Malformed { field, cause }
}

impl<'a> LeafCert<'a> {
    /// Parse a DER `Certificate`. Serial number 0 and negative serials are accepted
    /// (test CAs use them); the walk is `[0] version, serialNumber, signature, issuer,
    /// validity, subject, subjectPublicKeyInfo, [1] issuerUniqueID, [2] subjectUniqueID,
    /// [3] extensions`, with nothing after the certificate.
    pub fn parse(der: &'a [u8]) -> Result<LeafCert<'a>, CertError> {
        let cert = der::parse_single(der, tag::SEQUENCE).map_err(malformed("Certificate"))?;
        let mut outer = Reader::new(cert.value);
        let tbs = outer
            .read(tag::SEQUENCE)
            .map_err(malformed("tbsCertificate"))?;
        outer
            .read(tag::SEQUENCE)
            .map_err(malformed("signatureAlgorithm"))?;
        outer
            .read(tag::BIT_STRING)
            .map_err(malformed("signatureValue"))?;
        outer.finish().map_err(malformed("Certificate"))?;

        let mut r = Reader::new(tbs.value);
        if let Some(v) = r
            .read_optional(tag::context(0, true))
            .map_err(malformed("version"))?
        {
            let int = der::parse_single(v.value, tag::INTEGER).map_err(malformed("version"))?;
            if !matches!(int.value, [0] | [1] | [2]) {
                return Err(CertError::BadVersion);
            }
        }
        let serial = r.read(tag::INTEGER).map_err(malformed("serialNumber"))?;
        if serial.value.is_empty() {
            return Err(CertError::EmptySerial);
        }
        r.read(tag::SEQUENCE).map_err(malformed("signature"))?;
        let issuer = r.read(tag::SEQUENCE).map_err(malformed("issuer"))?;
        let validity = r.read(tag::SEQUENCE).map_err(malformed("validity"))?;
        let (not_before, not_after) = parse_validity(validity.value)?;
        let subject = r.read(tag::SEQUENCE).map_err(malformed("subject"))?;
        let spki = r
            .read(tag::SEQUENCE)
            .map_err(malformed("subjectPublicKeyInfo"))?;
        r.read_optional(tag::context(1, false))
            .map_err(malformed("issuerUniqueID"))?;
        r.read_optional(tag::context(2, false))
            .map_err(malformed("subjectUniqueID"))?;
        let prefix_end = r.position();
        let wrapper = r
            .read_optional(tag::context(3, true))
            .map_err(malformed("extensions"))?;
        r.finish().map_err(malformed("tbsCertificate"))?;

        let (extensions_der, extensions) = match wrapper {
            None => (&[][..], Vec::new()),
            Some(w) => {
                let seq =
                    der::parse_single(w.value, tag::SEQUENCE).map_err(malformed("extensions"))?;
                let exts = parse_extensions(seq.value)
                    .map_err(|(field, cause)| CertError::Malformed { field, cause })?;
                (seq.value, exts)
            }
        };

        Ok(LeafCert {
            der,
            tbs: tbs.element,
            tbs_prefix: tbs.value.get(..prefix_end).unwrap_or(tbs.value),
            serial: serial.value,
            issuer: issuer.element,
            subject: subject.element,
            spki: spki.element,
            not_before,
            not_after,
            extensions_der,
            extensions,
        })
    }

    /// The whole certificate DER this was parsed from.
    pub fn der(&self) -> &'a [u8] {
        self.der
    }

    /// The whole `TBSCertificate` element (tag, length, contents).
    pub fn tbs(&self) -> &'a [u8] {
        self.tbs
    }

    /// The serial number's INTEGER content bytes, as encoded (OCSP `CertID` compares
    /// these bytes).
    pub fn serial(&self) -> &'a [u8] {
        self.serial
    }

    /// `notBefore` in Unix seconds.
    pub fn not_before(&self) -> u64 {
        self.not_before
    }

    /// `notAfter` in Unix seconds.
    pub fn not_after(&self) -> u64 {
        self.not_after
    }

    /// The full DER `SubjectPublicKeyInfo` element (what `issuer_key_hash` and SPKI pins
    /// hash).
    pub fn spki(&self) -> &'a [u8] {
        self.spki
    }

    /// The DER subject `Name` element.
    pub fn subject_raw(&self) -> &'a [u8] {
        self.subject
    }

    /// The DER issuer `Name` element.
    pub fn issuer_raw(&self) -> &'a [u8] {
        self.issuer
    }

    /// The TLS-encoded `SignedCertificateTimestampList` from the SCT-list extension
    /// (1.3.6.1.4.1.11129.2.4.2), whose `extnValue` OCTET STRING wraps a second OCTET
    /// STRING holding the list. `Ok(None)` when the extension is absent.
    pub fn sct_list(&self) -> Result<Option<&'a [u8]>, CertError> {
        let Some(ext) = self.unique_extension(OID_SCT_LIST, CertError::DuplicateSctExtension)?
        else {
            return Ok(None);
        };
        inner_octet_string(ext.value)
            .map(Some)
            .ok_or(CertError::SctExtensionNotOctetString)
    }

    /// The TBSCertificate a log signed for this certificate's embedded SCTs: this TBS
    /// with only the SCT-list extension removed, all other bytes kept, the extensions
    /// `SEQUENCE`, `[3]` wrapper and TBS `SEQUENCE` lengths recomputed. If the SCT list
    /// was the only extension, the `[3]` wrapper is dropped entirely (RFC 5280 forbids
    /// an empty `Extensions`; this is what a precertificate whose only extension was the
    /// poison becomes once a log strips the poison).
    ///
    /// Implementations disagree on that last corner: static-ct's (Tessera)
    /// `BuildPrecertTBS` omits the empty field as done here, while Chromium's
    /// `GetPrecertSignedEntry` and certificate-transparency-go's `x509.RemoveSCTList`
    /// emit an empty `[3] { SEQUENCE {} }`. No publicly trusted certificate has the SCT
    /// list as its only extension (a subjectAltName is always present).
    pub fn precert_tbs(&self) -> Result<Vec<u8>, CertError> {
        match self.unique_extension(OID_SCT_LIST, CertError::DuplicateSctExtension)? {
            Some(ext) => Ok(self.tbs_without(ext)),
            None => Err(CertError::MissingSctExtension),
        }
    }

    /// For a precertificate: its TBS with the poison extension removed (what a log
    /// signs when a CA submits the precertificate), built by the same byte splice as
    /// [`precert_tbs`](Self::precert_tbs). No issuer/AKI rewriting is done for
    /// precertificates signed by a Precertificate Signing Certificate.
    pub fn tbs_without_poison(&self) -> Result<Vec<u8>, CertError> {
        match self.unique_extension(OID_PRECERT_POISON, CertError::DuplicatePoisonExtension)? {
            Some(ext) => Ok(self.tbs_without(ext)),
            None => Err(CertError::MissingPoisonExtension),
        }
    }

    /// The extension with `oid`, `duplicate` if it occurs more than once.
    fn unique_extension(
        &self,
        oid: &[u8],
        duplicate: CertError,
    ) -> Result<Option<&Extension<'a>>, CertError> {
        find_unique(&self.extensions, oid).map_err(|()| duplicate)
    }

    /// Re-encode the TBS without `ext`, splicing bytes.
    fn tbs_without(&self, ext: &Extension<'a>) -> Vec<u8> {
        let before = self.extensions_der.get(..ext.start).unwrap_or(&[]);
        let after = self.extensions_der.get(ext.end..).unwrap_or(&[]);
        let ext_len = before.len() + after.len();

        let mut body = Vec::with_capacity(self.tbs.len());
        body.extend_from_slice(self.tbs_prefix);
        if ext_len > 0 {
            let mut seq_header = Vec::with_capacity(6);
            der::write_header(&mut seq_header, tag::SEQUENCE, ext_len);
            der::write_header(&mut body, tag::context(3, true), seq_header.len() + ext_len);
            body.extend_from_slice(&seq_header);
            body.extend_from_slice(before);
            body.extend_from_slice(after);
        }
        let mut out = Vec::with_capacity(body.len() + 6);
        der::write_element(&mut out, tag::SEQUENCE, &body);
        out
    }
}

/// The DER `SubjectPublicKeyInfo` of a certificate (e.g. an issuer, for
/// `issuer_key_hash`).
pub fn spki_of_cert(der: &[u8]) -> Result<&[u8], CertError> {
    LeafCert::parse(der).map(|c| c.spki())
}

/// Parse the `Extensions` contents: `SEQUENCE { extnID OID, critical BOOLEAN DEFAULT
/// FALSE, extnValue OCTET STRING }*`. Shared with the OCSP single-extension walk; the
/// error names the part of the `Extension` that did not parse.
pub(crate) fn parse_extensions(
    contents: &[u8],
) -> Result<Vec<Extension<'_>>, (&'static str, DerError)> {
    let mut out = Vec::new();
    let mut r = Reader::new(contents);
    while !r.is_empty() {
        let ext: Tlv<'_> = r.read(tag::SEQUENCE).map_err(|e| ("extension", e))?;
        let mut e = Reader::new(ext.value);
        let oid = e.read(tag::OID).map_err(|e| ("extension.extnID", e))?;
        e.read_optional(tag::BOOLEAN)
            .map_err(|e| ("extension.critical", e))?;
        let value = e
            .read(tag::OCTET_STRING)
            .map_err(|e| ("extension.extnValue", e))?;
        e.finish().map_err(|e| ("extension", e))?;
        out.push(Extension {
            oid: oid.value,
            value: value.value,
            start: ext.offset,
            end: ext.end(),
        });
    }
    Ok(out)
}

/// The extension with `oid` among `exts`; `Err(())` if it occurs more than once.
pub(crate) fn find_unique<'e, 'a>(
    exts: &'e [Extension<'a>],
    oid: &[u8],
) -> Result<Option<&'e Extension<'a>>, ()> {
    let mut found = None;
    for ext in exts.iter().filter(|e| e.oid == oid) {
        if found.is_some() {
            return Err(());
        }
        found = Some(ext);
    }
    Ok(found)
}

/// The SCT list inside an SCT-list extension value: `extnValue` is an OCTET STRING
/// whose contents are exactly one more OCTET STRING holding the TLS-encoded list.
pub(crate) fn inner_octet_string(extn_value: &[u8]) -> Option<&[u8]> {
    der::parse_single(extn_value, tag::OCTET_STRING)
        .ok()
        .map(|t| t.value)
}

fn parse_validity(contents: &[u8]) -> Result<(u64, u64), CertError> {
    let mut r = Reader::new(contents);
    let not_before = read_time(&mut r, "notBefore")?;
    let not_after = read_time(&mut r, "notAfter")?;
    r.finish().map_err(malformed("validity"))?;
    Ok((not_before, not_after))
}

fn read_time(r: &mut Reader<'_>, field: &'static str) -> Result<u64, CertError> {
    let t = r.read_any().map_err(malformed(field))?;
    match t.tag {
        tag::UTC_TIME | tag::GENERALIZED_TIME => {}
        found => {
            return Err(CertError::Malformed {
                field,
                cause: DerError::UnexpectedTag {
                    expected: tag::UTC_TIME,
                    found,
                },
            })
        }
    }
    parse_time(t.tag, t.value).ok_or(CertError::BadTime { field })
}

/// RFC 5280 §4.1.2.5: `UTCTime` is `YYMMDDHHMMSSZ` (YY ≥ 50 → 19YY, else 20YY);
/// `GeneralizedTime` is `YYYYMMDDHHMMSSZ` without fractional seconds. Returns Unix
/// seconds; `None` for any other form, an impossible date, or a time before 1970.
pub(crate) fn parse_time(tag_byte: u8, s: &[u8]) -> Option<u64> {
    let (year, rest) = match (tag_byte, s.len()) {
        (tag::UTC_TIME, 13) => {
            let yy = digits(s.get(..2)?)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, s.get(2..)?)
        }
        (tag::GENERALIZED_TIME, 15) => (digits(s.get(..4)?)?, s.get(4..)?),
        _ => return None,
    };
    if rest.get(10) != Some(&b'Z') {
        return None;
    }
    let month = digits(rest.get(0..2)?)?;
    let day = digits(rest.get(2..4)?)?;
    let hour = digits(rest.get(4..6)?)?;
    let minute = digits(rest.get(6..8)?)?;
    let second = digits(rest.get(8..10)?)?;
    // The calendar (month lengths, leap years) is the `time` crate's.
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?)
            .ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
    )
    .ok()?;
    let secs = time::PrimitiveDateTime::new(date, clock)
        .assume_utc()
        .unix_timestamp();
    u64::try_from(secs).ok()
}

fn digits(s: &[u8]) -> Option<u32> {
    s.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::der::element;

    fn vector(rel: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../tests/data/ct-vectors/{rel}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn ext(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
        let mut body = element(tag::OID, oid);
        if critical {
            body.extend(element(tag::BOOLEAN, &[0xff]));
        }
        body.extend(element(tag::OCTET_STRING, value));
        element(tag::SEQUENCE, &body)
    }

    fn sct_ext(list: &[u8]) -> Vec<u8> {
        ext(OID_SCT_LIST, false, &element(tag::OCTET_STRING, list))
    }

    const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];
    const OID_BC: &[u8] = &[0x55, 0x1d, 0x13];

    /// A structurally valid certificate with the given extensions (None: no `[3]`).
    fn build_cert(exts: Option<&[Vec<u8>]>, unique_ids: bool) -> (Vec<u8>, Vec<u8>) {
        let mut tbs = element(tag::context(0, true), &element(tag::INTEGER, &[2]));
        tbs.extend(element(tag::INTEGER, &[0]));
        let alg = element(tag::SEQUENCE, &element(tag::OID, &[0x2a, 0x86, 0x48]));
        tbs.extend(&alg);
        let name = |cn: &[u8]| {
            let atv = [element(tag::OID, &[0x55, 0x04, 0x03]), element(0x0c, cn)].concat();
            element(
                tag::SEQUENCE,
                &element(tag::SET, &element(tag::SEQUENCE, &atv)),
            )
        };
        tbs.extend(name(b"issuer"));
        let validity = [
            element(tag::UTC_TIME, b"130405170416Z"),
            element(tag::GENERALIZED_TIME, b"20500101000000Z"),
        ]
        .concat();
        tbs.extend(element(tag::SEQUENCE, &validity));
        tbs.extend(name(b"subject"));
        let spki = [alg.clone(), element(tag::BIT_STRING, &[0, 4, 1, 2])].concat();
        tbs.extend(element(tag::SEQUENCE, &spki));
        if unique_ids {
            tbs.extend(element(tag::context(1, false), &[0, 0xaa]));
            tbs.extend(element(tag::context(2, false), &[0, 0xbb]));
        }
        if let Some(exts) = exts {
            let seq = element(tag::SEQUENCE, &exts.concat());
            tbs.extend(element(tag::context(3, true), &seq));
        }
        let tbs = element(tag::SEQUENCE, &tbs);
        let cert = [tbs.clone(), alg, element(tag::BIT_STRING, &[0, 1, 2, 3])].concat();
        (element(tag::SEQUENCE, &cert), tbs)
    }

    #[test]
    fn parses_fields_of_a_synthetic_cert() {
        let (der, tbs) = build_cert(Some(&[ext(OID_BC, true, &[0x30, 0])]), true);
        let c = LeafCert::parse(&der).unwrap();
        assert_eq!(c.der(), der.as_slice());
        assert_eq!(c.tbs(), tbs.as_slice());
        assert_eq!(c.serial(), &[0]);
        assert_eq!(c.not_before(), 1_365_181_456);
        assert_eq!(c.not_after(), 2_524_608_000);
        assert_eq!(c.spki()[0], tag::SEQUENCE);
        assert!(c.subject_raw().windows(7).any(|w| w == b"subject"));
        assert!(c.issuer_raw().windows(6).any(|w| w == b"issuer"));
        assert_eq!(c.sct_list(), Ok(None));
        assert_eq!(c.precert_tbs(), Err(CertError::MissingSctExtension));
    }

    #[test]
    fn precert_tbs_removes_only_the_sct_extension_wherever_it_is() {
        let san = ext(OID_SAN, false, &[0x30, 0x03, 0x82, 0x01, b'a']);
        let bc = ext(OID_BC, true, &[0x30, 0]);
        // Big enough that removing it changes the long-form length bytes.
        let sct = sct_ext(&[0x5a; 300]);
        let (_, want) = build_cert(Some(&[san.clone(), bc.clone()]), true);
        for exts in [
            vec![sct.clone(), san.clone(), bc.clone()],
            vec![san.clone(), sct.clone(), bc.clone()],
            vec![san.clone(), bc.clone(), sct.clone()],
        ] {
            let (der, _) = build_cert(Some(&exts), true);
            let c = LeafCert::parse(&der).unwrap();
            assert_eq!(c.sct_list().unwrap(), Some(&[0x5a; 300][..]));
            assert_eq!(c.precert_tbs().unwrap(), want);
        }
    }

    #[test]
    fn sct_as_only_extension_drops_the_wrapper() {
        let (der, _) = build_cert(Some(&[sct_ext(&[1, 2, 3])]), false);
        let (_, want) = build_cert(None, false);
        let c = LeafCert::parse(&der).unwrap();
        assert_eq!(c.precert_tbs().unwrap(), want);
        let (no_ext, _) = build_cert(None, false);
        assert_eq!(LeafCert::parse(&no_ext).unwrap().tbs(), want.as_slice());
    }

    #[test]
    fn poison_removal_matches_final_cert_splice() {
        let san = ext(OID_SAN, false, &[0x30, 0x03, 0x82, 0x01, b'a']);
        let poison = ext(OID_PRECERT_POISON, true, &[0x05, 0x00]);
        let (pre, _) = build_cert(Some(&[san.clone(), poison.clone()]), false);
        let (fin, _) = build_cert(Some(&[san.clone(), sct_ext(&[9; 10])]), false);
        let pre = LeafCert::parse(&pre).unwrap();
        let fin = LeafCert::parse(&fin).unwrap();
        assert_eq!(
            pre.tbs_without_poison().unwrap(),
            fin.precert_tbs().unwrap()
        );
        assert_eq!(
            fin.tbs_without_poison(),
            Err(CertError::MissingPoisonExtension)
        );
        let (two, _) = build_cert(Some(&[poison.clone(), san, poison]), false);
        assert_eq!(
            LeafCert::parse(&two).unwrap().tbs_without_poison(),
            Err(CertError::DuplicatePoisonExtension)
        );
    }

    #[test]
    fn sct_extension_errors() {
        let (der, _) = build_cert(Some(&[sct_ext(&[1]), sct_ext(&[2])]), false);
        let c = LeafCert::parse(&der).unwrap();
        assert_eq!(c.sct_list(), Err(CertError::DuplicateSctExtension));
        assert_eq!(c.precert_tbs(), Err(CertError::DuplicateSctExtension));

        // extnValue holds the list directly, not wrapped in a second OCTET STRING.
        let (der, _) = build_cert(Some(&[ext(OID_SCT_LIST, false, &[0, 1, 2])]), false);
        let c = LeafCert::parse(&der).unwrap();
        assert_eq!(c.sct_list(), Err(CertError::SctExtensionNotOctetString));
        // Inner OCTET STRING followed by junk.
        let mut v = element(tag::OCTET_STRING, &[1]);
        v.push(0);
        let (der, _) = build_cert(Some(&[ext(OID_SCT_LIST, false, &v)]), false);
        let c = LeafCert::parse(&der).unwrap();
        assert_eq!(c.sct_list(), Err(CertError::SctExtensionNotOctetString));
    }

    #[test]
    fn malformed_certificates_are_typed_errors() {
        let (der, _) = build_cert(Some(&[sct_ext(&[1])]), false);
        // Truncated.
        assert!(matches!(
            LeafCert::parse(&der[..der.len() - 1]),
            Err(CertError::Malformed {
                field: "Certificate",
                cause: DerError::LengthPastEnd { .. }
            })
        ));
        // Trailing data after the certificate.
        let mut long = der.clone();
        long.push(0);
        assert_eq!(
            LeafCert::parse(&long).unwrap_err(),
            CertError::Malformed {
                field: "Certificate",
                cause: DerError::TrailingData(1)
            }
        );
        // Indefinite length on the outer SEQUENCE.
        let mut indef = der.clone();
        indef[1] = 0x80;
        assert_eq!(
            LeafCert::parse(&indef).unwrap_err(),
            CertError::Malformed {
                field: "Certificate",
                cause: DerError::IndefiniteLength
            }
        );
        // Wrong outer tag.
        let mut wrong = der.clone();
        wrong[0] = tag::SET;
        assert!(matches!(
            LeafCert::parse(&wrong),
            Err(CertError::Malformed {
                field: "Certificate",
                cause: DerError::UnexpectedTag { .. }
            })
        ));
        // Serial that is not an INTEGER: find `02 01 00` after the version.
        let pos = der.windows(3).position(|w| w == [2, 1, 0]).unwrap();
        let mut bad = der.clone();
        bad[pos] = tag::OCTET_STRING;
        assert_eq!(
            LeafCert::parse(&bad).unwrap_err(),
            CertError::Malformed {
                field: "serialNumber",
                cause: DerError::UnexpectedTag {
                    expected: tag::INTEGER,
                    found: tag::OCTET_STRING
                }
            }
        );
        // Bad time: month 13.
        let pos = der.windows(4).position(|w| w == b"1304").unwrap();
        let mut bad = der.clone();
        bad[pos + 2] = b'1';
        bad[pos + 3] = b'3';
        assert_eq!(
            LeafCert::parse(&bad).unwrap_err(),
            CertError::BadTime { field: "notBefore" }
        );
        // Version 4.
        let pos = der
            .windows(5)
            .position(|w| w == [0xa0, 3, 2, 1, 2])
            .unwrap();
        let mut bad = der.clone();
        bad[pos + 4] = 3;
        assert_eq!(LeafCert::parse(&bad).unwrap_err(), CertError::BadVersion);
        assert!(LeafCert::parse(&[]).is_err());
    }

    #[test]
    fn time_parsing() {
        assert_eq!(parse_time(tag::UTC_TIME, b"700101000000Z"), Some(0));
        assert_eq!(
            parse_time(tag::UTC_TIME, b"491231235959Z"),
            Some(2_524_607_999)
        );
        assert_eq!(parse_time(tag::UTC_TIME, b"500101000000Z"), None); // 1950
        assert_eq!(
            parse_time(tag::GENERALIZED_TIME, b"20000229120000Z"),
            Some(951_825_600)
        );
        assert_eq!(parse_time(tag::GENERALIZED_TIME, b"21000229120000Z"), None);
        assert_eq!(
            parse_time(tag::GENERALIZED_TIME, b"20000229120000.5Z"),
            None
        );
        assert_eq!(parse_time(tag::UTC_TIME, b"130405170416+0100"), None);
        assert_eq!(parse_time(tag::UTC_TIME, b"13040517041 Z"), None);
        assert_eq!(parse_time(tag::UTC_TIME, b"130405240000Z"), None);
        assert_eq!(parse_time(tag::UTC_TIME, b"130405235960Z"), None);
        assert_eq!(parse_time(tag::UTC_TIME, b"130431000000Z"), None);
        assert_eq!(
            parse_time(tag::GENERALIZED_TIME, b"99991231235959Z"),
            Some(253_402_300_799)
        );
    }

    #[test]
    fn real_cert_figures() {
        let der = vector("real/rustls-bench/cert-duckduckgo.0.der");
        let c = LeafCert::parse(&der).unwrap();
        assert_eq!(c.tbs().len(), 1499);
        assert_eq!(c.precert_tbs().unwrap().len(), 1111);
        assert!(c.sct_list().unwrap().is_some());
        assert!(c.not_before() < c.not_after());
        let issuer = vector("real/rustls-bench/cert-duckduckgo.1.der");
        let hash = crate::ct::sha256(spki_of_cert(&issuer).unwrap());
        assert_eq!(
            hash[..4],
            [0x59, 0xe7, 0x38, 0xe6],
            "issuer_key_hash prefix from the vectors README"
        );
    }

    #[test]
    fn serial_zero_is_accepted() {
        let pem = String::from_utf8(vector("google-ct-cpp/ca-cert.pem")).unwrap();
        let b64: String = pem
            .split("-----BEGIN CERTIFICATE-----")
            .nth(1)
            .and_then(|s| s.split("-----END CERTIFICATE-----").next())
            .unwrap()
            .split_whitespace()
            .collect();
        use base64::Engine;
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let c = LeafCert::parse(&der).unwrap();
        assert_eq!(c.serial(), &[0]);
        assert_eq!(c.not_before(), 1_338_508_800); // 2012-06-01T00:00:00Z
    }

    #[test]
    fn never_panics_on_prefixes_or_byte_mutations_of_a_real_cert() {
        let der = vector("real/rustls-bench/cert-duckduckgo.0.der");
        let exercise = |input: &[u8]| {
            if let Ok(c) = LeafCert::parse(input) {
                let _ = c.sct_list();
                if let Ok(tbs) = c.precert_tbs() {
                    assert!(tbs.len() < c.tbs().len());
                }
                let _ = c.tbs_without_poison();
            }
            let _ = spki_of_cert(input);
        };
        for n in 0..der.len() {
            assert!(LeafCert::parse(&der[..n]).is_err());
            exercise(&der[..n]);
        }
        let mut m = der.clone();
        for i in 0..der.len() {
            for x in [0x01u8, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff] {
                m[i] ^= x;
                exercise(&m);
                m[i] ^= x;
            }
        }
        assert_eq!(m, der);
    }
}
