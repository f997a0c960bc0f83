//! The RFC 6962 §3.2 `digitally-signed` input of an SCT.
//!
//! ```text
//! sct_version(1)=0 || signature_type(1)=0 (certificate_timestamp) || timestamp(u64) ||
//! entry_type(u16) || signed_entry || extensions(u16 len || bytes)
//! ```
//! where `signed_entry` is `u24 len || leaf DER` for an `x509_entry` (SCTs delivered in
//! OCSP or TLS) and `issuer_key_hash(32) || u24 len || TBSCertificate` for a
//! `precert_entry` (embedded SCTs; the TBS is the final certificate's with the SCT-list
//! extension removed).

/// What the log signed: a whole certificate or a precertificate.
#[derive(Clone, Copy, Debug)]
pub enum SignedEntry<'a> {
    /// `x509_entry`: the full DER leaf certificate.
    X509 {
        /// The DER leaf certificate.
        leaf: &'a [u8],
    },
    /// `precert_entry`: the issuer key hash and the reconstructed precert TBS.
    Precert {
        /// SHA-256 of the DER SubjectPublicKeyInfo of the certificate that issued the final leaf.
        issuer_key_hash: [u8; 32],
        /// The leaf's TBSCertificate with the SCT-list extension removed.
        tbs: &'a [u8],
    },
}

/// Why the signed data could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignedDataError {
    /// The certificate or TBS does not fit the 24-bit length of `ASN.1Cert`.
    #[error("signed entry: {0}-byte certificate exceeds the 2^24-1 byte limit")]
    EntryTooLong(usize),
    /// The SCT extensions do not fit their 16-bit length.
    #[error("SCT extensions: {0} bytes exceed the 2^16-1 byte limit")]
    ExtensionsTooLong(usize),
}

/// Build the bytes a log signs for an SCT with `timestamp` and `extensions` over `entry`.
pub fn signed_data(
    timestamp: u64,
    entry: SignedEntry<'_>,
    extensions: &[u8],
) -> Result<Vec<u8>, SignedDataError> {
    let ext_len = u16::try_from(extensions.len())
        .map_err(|_| SignedDataError::ExtensionsTooLong(extensions.len()))?;
    let body = match entry {
        SignedEntry::X509 { leaf } => leaf,
        SignedEntry::Precert { tbs, .. } => tbs,
    };
    if body.len() > 0xff_ffff {
        return Err(SignedDataError::EntryTooLong(body.len()));
    }
    let mut out = Vec::with_capacity(12 + 2 + 32 + 3 + body.len() + 2 + extensions.len());
    out.push(0); // sct_version v1
    out.push(0); // signature_type certificate_timestamp
    out.extend_from_slice(&timestamp.to_be_bytes());
    match entry {
        SignedEntry::X509 { .. } => out.extend_from_slice(&0u16.to_be_bytes()),
        SignedEntry::Precert {
            issuer_key_hash, ..
        } => {
            out.extend_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&issuer_key_hash);
        }
    }
    let len = body.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(body);
    out.extend_from_slice(&ext_len.to_be_bytes());
    out.extend_from_slice(extensions);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precert_layout() {
        let d = signed_data(
            0x0102030405060708,
            SignedEntry::Precert {
                issuer_key_hash: [9; 32],
                tbs: &[0xaa, 0xbb],
            },
            &[0xee],
        )
        .unwrap();
        let mut want = vec![0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1];
        want.extend_from_slice(&[9; 32]);
        want.extend_from_slice(&[0, 0, 2, 0xaa, 0xbb, 0, 1, 0xee]);
        assert_eq!(d, want);
    }

    #[test]
    fn x509_layout() {
        let d = signed_data(1, SignedEntry::X509 { leaf: &[0x30] }, &[]).unwrap();
        assert_eq!(
            d,
            vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0x30, 0, 0]
        );
    }

    #[test]
    fn oversized_extensions_are_refused() {
        let ext = vec![0u8; 70_000];
        assert_eq!(
            signed_data(1, SignedEntry::X509 { leaf: &[] }, &ext),
            Err(SignedDataError::ExtensionsTooLong(70_000))
        );
    }
}
