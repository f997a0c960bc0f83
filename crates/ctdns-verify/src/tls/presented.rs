//! What a refused server presented, in the terms an operator acts on.
//!
//! A refusal alone (`rule chain: UnknownIssuer`) tells neither an interception proxy from a
//! CA change nor which pin would accept the certificate. [`RefusedCertificate`] carries the
//! refusal together with a [`Presented`] summary of the chain — the leaf's subject, issuer
//! and expiry, and the SPKI pins of its CA certificates — and, where one exists, the action
//! that would accept it. It is the error the verifier hands rustls, so every log line and
//! message built from a handshake error names the presented chain.

use std::fmt;

use rustls::pki_types::CertificateDer;
use rustls::CertificateError;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::tls::pins::SpkiPin;
use crate::tls::verifier::Refusal;

/// A summary of a presented chain for logs and messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presented {
    /// The leaf's subject DN (or why it could not be read).
    pub leaf_subject: String,
    /// The leaf's issuer DN.
    pub leaf_issuer: String,
    /// The leaf's notAfter, RFC 3339, when readable.
    pub leaf_not_after: Option<String>,
    /// SPKI pins of the chain's CA certificates, issuer first: the verified path's (trust
    /// anchor last) when the chain verified, else those of the presented intermediates.
    pub ca_pins: Vec<SpkiPin>,
    /// Whether `ca_pins` come from a verified path.
    pub path_verified: bool,
}

impl Presented {
    /// Summarise a presented chain. `path_pins` are the verified path's CA pins (empty when
    /// the chain did not verify).
    pub fn describe(
        end_entity: &[u8],
        intermediates: &[CertificateDer<'_>],
        path_pins: &[SpkiPin],
    ) -> Self {
        let (leaf_subject, leaf_issuer, leaf_not_after) =
            match X509Certificate::from_der(end_entity) {
                Ok((_, cert)) => (
                    cert.subject().to_string(),
                    cert.issuer().to_string(),
                    Some(crate::timefmt::format_time(
                        cert.validity().not_after.timestamp().max(0).unsigned_abs(),
                    )),
                ),
                Err(e) => (
                    format!("(unreadable leaf: {e})"),
                    String::from("(unknown)"),
                    None,
                ),
            };
        let (ca_pins, path_verified) = if path_pins.is_empty() {
            let presented = intermediates
                .iter()
                .filter_map(|c| X509Certificate::from_der(c.as_ref()).ok())
                .map(|(_, c)| SpkiPin::of_spki(c.public_key().raw))
                .collect();
            (presented, false)
        } else {
            (path_pins.to_vec(), true)
        };
        Self {
            leaf_subject,
            leaf_issuer,
            leaf_not_after,
            ca_pins,
            path_verified,
        }
    }

    /// The pin of the verified path's trust anchor: the one pin that admits this chain and
    /// any other the same root issues.
    pub fn anchor_pin(&self) -> Option<SpkiPin> {
        self.path_verified
            .then(|| self.ca_pins.last().copied())
            .flatten()
    }

    /// The CA pins, comma-separated (`none` when there are none).
    pub fn pins_text(&self) -> String {
        if self.ca_pins.is_empty() {
            return "none".into();
        }
        self.ca_pins
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Presented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "leaf `{}` issued by `{}`",
            self.leaf_subject, self.leaf_issuer
        )?;
        if let Some(t) = &self.leaf_not_after {
            write!(f, " (notAfter {t})")?;
        }
        let source = if self.path_verified {
            "verified path, issuer first"
        } else {
            "as presented, unverified"
        };
        write!(f, ", chain CA pins [{}] ({source})", self.pins_text())
    }
}

/// A certificate refusal with what was presented: the error the verifier returns to rustls.
#[derive(Clone, Debug)]
pub struct RefusedCertificate {
    /// The rule that failed.
    pub refusal: Refusal,
    /// What the server presented.
    pub presented: Presented,
}

impl RefusedCertificate {
    /// What would make this chain acceptable, when a configuration change can: for an
    /// issuer-pin refusal, the pin of the verified path's root; for an untrusted chain, the
    /// fact that no pin can (a proxy, a captive portal, or a missing root).
    pub fn hint(&self) -> Option<String> {
        hint(&self.refusal, &self.presented)
    }

    /// For an issuer-pin refusal, the upstream's `pins` line with the presented chain's root
    /// added: the exact configuration that accepts it.
    pub fn accepting_pins(&self) -> Option<String> {
        accepting_pins(&self.refusal, &self.presented)
    }

    /// Find the refusal with its chain summary inside a handshake error, if the verifier
    /// refused.
    pub fn find_in<'a>(
        err: &'a (dyn std::error::Error + 'static),
    ) -> Option<&'a RefusedCertificate> {
        let mut cur: Option<&'a (dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = cur {
            if let Some(r) = e.downcast_ref::<RefusedCertificate>() {
                return Some(r);
            }
            // As `UpstreamError::Refused` holds it.
            if let Some(r) = e.downcast_ref::<std::sync::Arc<RefusedCertificate>>() {
                return Some(r);
            }
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if let Some(found) = io.get_ref().and_then(|inner| Self::find_in(inner)) {
                    return Some(found);
                }
            }
            if let Some(rustls::Error::InvalidCertificate(CertificateError::Other(other))) =
                e.downcast_ref::<rustls::Error>()
            {
                if let Some(r) = other.0.downcast_ref::<RefusedCertificate>() {
                    return Some(r);
                }
            }
            cur = e.source();
        }
        None
    }
}

/// For an issuer-pin refusal of `presented`, the upstream's `pins` line with the verified
/// path's root added (TOML, as in the configuration file).
pub fn accepting_pins(refusal: &Refusal, presented: &Presented) -> Option<String> {
    let Refusal::IssuerNotPinned { pins, .. } = refusal else {
        return None;
    };
    let anchor = presented.anchor_pin()?;
    let mut all: Vec<String> = pins.iter().map(|p| format!("\"{p}\"")).collect();
    all.push(format!("\"{anchor}\""));
    Some(format!("pins = [{}]", all.join(", ")))
}

/// What would make `presented` acceptable after `refusal`, when a configuration change can
/// (see [`RefusedCertificate::hint`]).
pub fn hint(refusal: &Refusal, presented: &Presented) -> Option<String> {
    match refusal {
        Refusal::IssuerNotPinned { .. } => accepting_pins(refusal, presented).map(|line| {
            format!(
                "if this CA change is genuine (check with `ctdns check`), this upstream \
                 accepts it with: {line}"
            )
        }),
        Refusal::Chain(webpki::Error::UnknownIssuer) => Some(
            "no issuer pin can accept this: the chain does not lead to a trusted root \
             (a TLS-intercepting proxy or captive portal, or a root missing from tls.roots)"
                .into(),
        ),
        _ => None,
    }
}

impl fmt::Display for RefusedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; presented {}", self.refusal, self.presented)?;
        if let Some(hint) = self.hint() {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RefusedCertificate {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.refusal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{default_logs, PkiOptions, SctSpec, TestPki};
    use std::net::IpAddr;

    #[test]
    fn names_leaf_issuer_and_pins_and_suggests_the_root_pin() {
        let pki = TestPki::generate(&PkiOptions::default()).unwrap();
        let ts = pki.now() - time::Duration::minutes(1);
        let leaf = pki
            .issue_leaf(
                &pki.leaf_spec(IpAddr::from([127, 0, 0, 1]))
                    .embed(SctSpec::at(default_logs::ALPHA, ts)),
            )
            .unwrap();
        let path = vec![SpkiPin([7; 32]), SpkiPin([8; 32])];
        let presented = Presented::describe(leaf.leaf().as_ref(), leaf.intermediates(), &path);
        assert!(presented.path_verified);
        assert_eq!(presented.anchor_pin(), Some(SpkiPin([8; 32])));
        assert!(presented.leaf_not_after.is_some());
        let refused = RefusedCertificate {
            refusal: Refusal::IssuerNotPinned {
                chain: path.clone(),
                pins: vec![SpkiPin([9; 32])],
            },
            presented,
        };
        let text = refused.to_string();
        assert!(text.starts_with("rule issuer-pin: "), "{text}");
        assert!(
            text.contains("127.0.0.1") || text.contains("leaf `"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "pins = [\"{}\", \"{}\"]",
                SpkiPin([9; 32]),
                SpkiPin([8; 32])
            )),
            "{text}"
        );
        // Without a verified path the pins are the presented intermediates' and nothing is
        // suggested as a root pin.
        let unverified = Presented::describe(leaf.leaf().as_ref(), leaf.intermediates(), &[]);
        assert!(!unverified.path_verified);
        assert_eq!(unverified.ca_pins.len(), leaf.intermediates().len());
        assert_eq!(unverified.anchor_pin(), None);
        let refused = RefusedCertificate {
            refusal: Refusal::Chain(webpki::Error::UnknownIssuer),
            presented: unverified,
        };
        assert!(refused
            .to_string()
            .contains("no issuer pin can accept this"));
    }

    #[test]
    fn unreadable_leaf_is_described_not_panicked_on() {
        let p = Presented::describe(b"\x30\x03\x02\x01\x01", &[], &[]);
        assert!(p.leaf_subject.starts_with("(unreadable leaf"), "{p}");
        assert_eq!(p.pins_text(), "none");
    }

    #[test]
    fn found_inside_a_handshake_error() {
        let refused = RefusedCertificate {
            refusal: Refusal::Denylisted {
                fingerprint: crate::tls::pins::CertFingerprint([1; 32]),
            },
            presented: Presented::describe(b"", &[], &[]),
        };
        let tls = rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
            std::sync::Arc::new(refused),
        )));
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let found = RefusedCertificate::find_in(&io).unwrap();
        assert_eq!(found.refusal.rule(), "denylist");
        assert_eq!(Refusal::find_in(&io).map(Refusal::rule), Some("denylist"));
    }
}
