//! Matrix section: revocation from a stapled OCSP response.

use crate::*;

/// The cases of this section.
pub(crate) fn cases(w: &World, v: &mut Vec<Case>) {
    let now = w.now;
    let leaf = |spec: &LeafSpec| w.issue(spec);
    // Only a staple that verifies (issuer or authorized responder, this leaf, current)
    // and says revoked refuses; every other staple is ignored and reported, and the
    // connection is judged on the other rules (here: compliant embedded SCTs).
    {
        let revoked_at = now - Duration::hours(1);
        let revoked = || OcspSpec::revoked(revoked_at, Some(1));
        let with = |spec: OcspSpec| {
            leaf(
                &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                    .with_ocsp(spec),
            )
        };
        let revoked_fields = move |r: &Refusal| {
            matches!(
                r,
                Refusal::Revoked {
                    revoked_at: t,
                    reason: Some(RevocationReason(1)),
                    serial,
                } if *t == unix_ms(revoked_at) / 1000 && !serial.is_empty()
            )
        };
        v.push(
            Case::new("revoked: staple signed by the issuer", w, with(revoked()))
                .refused("revoked")
                .check("Revoked { keyCompromise }", revoked_fields)
                .tls(),
        );
        v.push(
            Case::new(
                "revoked: staple signed by a delegated responder",
                w,
                with(revoked().signed_by(OcspSigner::DelegatedResponder)),
            )
            .refused("revoked")
            .check("Revoked { keyCompromise }", revoked_fields)
            .tls(),
        );
        v.push(
            Case::new(
                "revoked: leaf issued by the root, staple signed by the root",
                w,
                leaf(
                    &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                        .issued_by(LeafIssuer::Root)
                        .with_ocsp(revoked()),
                ),
            )
            .refused("revoked"),
        );
        v.push(
            Case::new(
                "revoked: no SCTs at all (revoked comes before CT)",
                w,
                leaf(&w.spec().with_ocsp(revoked())),
            )
            .refused("revoked"),
        );
        v.push(
            Case::new(
                "revoked: dialed another IP (names come before revoked)",
                w,
                with(revoked()),
            )
            .ip(Some(OTHER_IP))
            .refused("ip-san"),
        );
        v.push(
            Case::new("staple good: accepted, used", w, with(OcspSpec::default()))
                .accepted()
                .staple_ignored(false, false)
                .tls(),
        );
        for (name, signer) in [
            ("signed by the wrong key", OcspSigner::WrongKey),
            ("garbage signature", OcspSigner::GarbageSignature),
            ("empty signature", OcspSigner::EmptySignature),
            (
                "responder not issued by the issuer",
                OcspSigner::ResponderNotIssuedByIssuer,
            ),
            (
                "responder without id-kp-OCSPSigning",
                OcspSigner::ResponderWithoutOcspEku,
            ),
        ] {
            let mut case = Case::new(
                &format!("revoked staple ignored: {name}"),
                w,
                with(revoked().signed_by(signer)),
            )
            .accepted()
            .reasons(vec![C, C])
            .staple_ignored(true, false);
            if signer == OcspSigner::WrongKey {
                case = case.tls();
            }
            v.push(case);
        }
        v.push(
            Case::new(
                "revoked staple ignored: CertID for another serial",
                w,
                with(revoked().for_serial(vec![0x42])),
            )
            .accepted()
            .staple_ignored(true, false),
        );
        v.push(
            Case::new(
                "revoked staple ignored: stale (nextUpdate passed)",
                w,
                leaf(&LeafSpec {
                    ocsp_this_update: Some(now - Duration::days(8)),
                    ..w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                        .with_ocsp(revoked())
                }),
            )
            .accepted()
            .staple_ignored(true, false)
            .tls(),
        );
        // A genuine revoked staple of another leaf of the same CA.
        let other = with(revoked());
        v.push(
            Case::new(
                "revoked staple ignored: another leaf's staple",
                w,
                leaf(&w.embedded(&[default_logs::ALPHA, default_logs::BETA])),
            )
            .ocsp(other.ocsp_response.clone().unwrap())
            .accepted()
            .staple_ignored(true, false),
        );
        // Ignored for revocation, yet its SCTs count: a staple whose signature is garbage
        // carrying two valid OCSP SCTs covers a leaf without embedded SCTs.
        v.push(
            Case::new(
                "revoked staple with garbage signature: its valid SCTs still count",
                w,
                leaf(
                    &w.spec()
                        .staple(w.sct(default_logs::ALPHA))
                        .staple(w.sct(default_logs::BETA))
                        .with_ocsp(revoked().signed_by(OcspSigner::GarbageSignature)),
                ),
            )
            .accepted()
            .reasons(vec![C, C])
            .signatures(&["valid", "valid"])
            .staple_ignored(true, false),
        );
    }
    {
        let mini = MiniCa::new(now);
        let mv = || mini.verifier(w);
        v.push(
            Case::raw(
                "mini CA: well-formed leaf without SCTs (control)",
                w,
                vec![mini.leaf(now, None)],
            )
            .verifier(mv())
            .policy(PolicyFailure::NoScts),
        );
        v.push(
            Case::raw(
                "SCT extension: list length disagrees",
                w,
                vec![mini.leaf(now, Some(octet_string(&[0x00, 0x05, 0x00, 0x01])))],
            )
            .verifier(mv())
            .refused("certificate")
            .check("Malformed(EmbeddedList(ListLength))", |r| {
                matches!(
                    r,
                    Refusal::Malformed(CtInputError::EmbeddedList(SctListError::ListLength {
                        declared: 5,
                        actual: 2
                    }))
                )
            }),
        );
        v.push(
            Case::raw(
                "SCT extension: empty list",
                w,
                vec![mini.leaf(now, Some(octet_string(&[0x00, 0x00])))],
            )
            .verifier(mv())
            .refused("certificate")
            .check("Malformed(EmbeddedList(Empty))", |r| {
                matches!(
                    r,
                    Refusal::Malformed(CtInputError::EmbeddedList(SctListError::Empty))
                )
            }),
        );
        v.push(
            Case::raw(
                "SCT extension: truncated SCT",
                w,
                vec![mini.leaf(
                    now,
                    Some(octet_string(&[0x00, 0x05, 0x00, 0x03, 0x00, 0x01, 0x02])),
                )],
            )
            .verifier(mv())
            .refused("certificate")
            .check("Malformed(EmbeddedList(Field))", |r| {
                matches!(
                    r,
                    Refusal::Malformed(CtInputError::EmbeddedList(SctListError::Field {
                        index: 0,
                        ..
                    }))
                )
            }),
        );
        v.push(
            Case::raw(
                "two SCT-list extensions",
                w,
                vec![mini.leaf_with(
                    now,
                    vec![
                        octet_string(&[0x00, 0x05, 0x00, 0x03, 0x00, 0x01, 0x02]),
                        octet_string(&[0x00, 0x05, 0x00, 0x03, 0x00, 0x01, 0x02]),
                    ],
                )],
            )
            .verifier(mv())
            // webpki refuses duplicate extensions before the CT step.
            .refused("chain")
            .check("Chain(ExtensionValueInvalid)", |r| {
                matches!(r, Refusal::Chain(webpki::Error::ExtensionValueInvalid))
            }),
        );
        v.push(
            // webpki itself parses this extension and refuses the certificate first.
            Case::raw(
                "SCT extension: value is not an OCTET STRING",
                w,
                vec![mini.leaf(now, Some(vec![0x02, 0x01, 0x05]))],
            )
            .verifier(mv())
            .refused("chain")
            .check("Chain(BadDer)", |r| {
                matches!(r, Refusal::Chain(webpki::Error::BadDer))
            }),
        );
    }
}
