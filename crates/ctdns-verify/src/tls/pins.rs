//! Issuer pins and the certificate denylist.
//!
//! An issuer pin is the base64 SHA-256 of the DER SubjectPublicKeyInfo of a CA certificate
//! (the same form as HPKP's `pin-sha256`). A connection passes the pin check when any CA
//! certificate in the *verified* path (an intermediate or the trust anchor) matches any pin.
//! The denylist holds SHA-256 fingerprints of whole DER certificates that are refused
//! wherever they appear in the presented chain.

use base64::Engine;

use crate::ct::sha256;

/// Why a pin or fingerprint could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PinError {
    /// The pin is not valid standard base64.
    #[error("issuer pin `{0}`: not base64")]
    NotBase64(String),
    /// The pin does not decode to 32 bytes.
    #[error("issuer pin `{pin}`: decodes to {len} bytes, a SHA-256 needs 32")]
    PinLength {
        /// The pin as given.
        pin: String,
        /// Decoded length.
        len: usize,
    },
    /// The fingerprint is not 64 hex digits (colons allowed).
    #[error("denylist fingerprint `{0}`: expected 64 hex digits (SHA-256), colons allowed")]
    BadFingerprint(String),
}

/// A SHA-256 pin of a CA's SubjectPublicKeyInfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpkiPin(pub [u8; 32]);

impl SpkiPin {
    /// Parse the base64 form, e.g. `"r/mIkG3eEpVdm+u/ko/cwxzOMo1bk4TyHIlByibiA5E="`.
    pub fn parse(pin: &str) -> Result<Self, PinError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(pin.trim())
            .map_err(|_| PinError::NotBase64(pin.to_string()))?;
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| PinError::PinLength {
                pin: pin.to_string(),
                len: bytes.len(),
            })?;
        Ok(Self(arr))
    }

    /// The pin of a DER SubjectPublicKeyInfo.
    pub fn of_spki(spki: &[u8]) -> Self {
        Self(sha256(spki))
    }
}

impl std::str::FromStr for SpkiPin {
    type Err = PinError;

    fn from_str(s: &str) -> Result<Self, PinError> {
        Self::parse(s)
    }
}

impl serde::Serialize for SpkiPin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The base64 form; a bad pin is refused with the [`PinError`] message.
impl<'de> serde::Deserialize<'de> for SpkiPin {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(FromStrVisitor::<Self>::new("a base64 SHA-256 SPKI pin"))
    }
}

impl std::fmt::Display for SpkiPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&base64::engine::general_purpose::STANDARD.encode(self.0))
    }
}

/// The issuer-pin rule: with no pins configured every path passes; otherwise some CA
/// certificate of the verified path (`path`: its CA pins, trust anchor included) must match
/// one of `pins`.
pub fn pins_admit(pins: &[SpkiPin], path: &[SpkiPin]) -> bool {
    pins.is_empty() || path.iter().any(|p| pins.contains(p))
}

/// The SHA-256 fingerprint of a whole DER certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CertFingerprint(pub [u8; 32]);

impl CertFingerprint {
    /// Parse 64 hex digits, optionally separated by colons (as `openssl x509 -fingerprint`
    /// prints them).
    pub fn parse(s: &str) -> Result<Self, PinError> {
        let hex: String = s.trim().chars().filter(|c| *c != ':').collect();
        let bad = || PinError::BadFingerprint(s.to_string());
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            let pair = hex.get(2 * i..2 * i + 2).ok_or_else(bad)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(Self(out))
    }

    /// The fingerprint of a DER certificate.
    pub fn of_cert(der: &[u8]) -> Self {
        Self(sha256(der))
    }
}

impl std::str::FromStr for CertFingerprint {
    type Err = PinError;

    fn from_str(s: &str) -> Result<Self, PinError> {
        Self::parse(s)
    }
}

impl serde::Serialize for CertFingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// 64 hex digits, colons allowed; anything else is refused with the [`PinError`] message.
impl<'de> serde::Deserialize<'de> for CertFingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(FromStrVisitor::<Self>::new(
            "a SHA-256 certificate fingerprint (64 hex digits)",
        ))
    }
}

/// A serde visitor reading a string through `T`'s `FromStr`, the error's message kept.
struct FromStrVisitor<T> {
    expecting: &'static str,
    _t: std::marker::PhantomData<T>,
}

impl<T> FromStrVisitor<T> {
    fn new(expecting: &'static str) -> Self {
        Self {
            expecting,
            _t: std::marker::PhantomData,
        }
    }
}

impl<T> serde::de::Visitor<'_> for FromStrVisitor<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(E::custom)
    }
}

impl std::fmt::Display for CertFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_round_trip() {
        let pin = SpkiPin::of_spki(b"spki");
        assert_eq!(SpkiPin::parse(&pin.to_string()), Ok(pin));
    }

    #[test]
    fn bad_pins() {
        assert!(matches!(
            SpkiPin::parse("not base64!"),
            Err(PinError::NotBase64(_))
        ));
        assert!(matches!(
            SpkiPin::parse("AAAA"),
            Err(PinError::PinLength { len: 3, .. })
        ));
    }

    #[test]
    fn serde_forms() {
        let pin = SpkiPin::of_spki(b"spki");
        let json = serde_json::to_string(&pin).unwrap();
        assert_eq!(json, format!("\"{pin}\""));
        assert_eq!(serde_json::from_str::<SpkiPin>(&json).unwrap(), pin);
        let e = serde_json::from_str::<SpkiPin>("\"AAAA\"").unwrap_err();
        assert!(e.to_string().contains("decodes to 3 bytes"), "{e}");
        let e = serde_json::from_str::<SpkiPin>("\"not base64!\"").unwrap_err();
        assert!(e.to_string().contains("not base64"), "{e}");
        assert!(serde_json::from_str::<SpkiPin>("7").is_err());

        let fp = CertFingerprint::of_cert(b"cert");
        let json = serde_json::to_string(&fp).unwrap();
        assert_eq!(serde_json::from_str::<CertFingerprint>(&json).unwrap(), fp);
        let e = serde_json::from_str::<CertFingerprint>("\"abcd\"").unwrap_err();
        assert!(e.to_string().contains("64 hex digits"), "{e}");
    }

    #[test]
    fn fingerprints() {
        let fp = CertFingerprint::of_cert(b"cert");
        assert_eq!(CertFingerprint::parse(&fp.to_string()), Ok(fp));
        let colons: Vec<String> = fp.0.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(CertFingerprint::parse(&colons.join(":")), Ok(fp));
        assert!(CertFingerprint::parse("abcd").is_err());
        assert!(CertFingerprint::parse(&"zz".repeat(32)).is_err());
        assert!(CertFingerprint::parse(&"é".repeat(32)).is_err());
    }
}
