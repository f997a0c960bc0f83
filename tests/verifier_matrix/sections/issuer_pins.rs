//! Matrix section: the Fina scenario: issuer pins.

use crate::*;

/// The cases of this section.
pub(crate) fn cases(w: &World, v: &mut Vec<Case>) {
    let leaf = |spec: &LeafSpec| w.issue(spec);
    {
        let rogue = leaf(
            &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                .issued_by(LeafIssuer::RogueIntermediate),
        );
        let honest = w.honest2();
        let pins = |cas: &[CaCert]| cas.iter().map(|c| w.pin(*c)).collect::<Vec<_>>();
        let rogue_path = vec![w.pin(CaCert::RogueIntermediate), w.pin(CaCert::RogueRoot)];
        v.push(
            Case::new(
                "Fina: rogue CT-logged chain, rogue root trusted, no pins",
                w,
                rogue.clone(),
            )
            .verifier(w.verifier_trusting_rogue())
            .accepted()
            .tls(),
        );
        v.push(
            Case::new("Fina: pin on the honest intermediate", w, rogue.clone())
                .verifier(
                    w.verifier_trusting_rogue()
                        .with_pins(pins(&[CaCert::Intermediate])),
                )
                .refused("issuer-pin")
                .check("IssuerNotPinned listing the rogue path", move |r| {
                    matches!(r, Refusal::IssuerNotPinned { chain, .. } if *chain == rogue_path)
                })
                .tls(),
        );
        v.push(
            Case::new("Fina: pin on the honest root", w, rogue.clone())
                .verifier(w.verifier_trusting_rogue().with_pins(pins(&[CaCert::Root])))
                .refused("issuer-pin")
                .tls(),
        );
        v.push(
            Case::new("Fina: several pins, all on the honest CA", w, rogue.clone())
                .verifier(
                    w.verifier_trusting_rogue()
                        .with_pins(pins(&[CaCert::Root, CaCert::Intermediate])),
                )
                .refused("issuer-pin"),
        );
        v.push(
            Case::new(
                "pins: honest leaf, pin on the intermediate",
                w,
                honest.clone(),
            )
            .verifier(
                w.verifier_trusting_rogue()
                    .with_pins(pins(&[CaCert::Intermediate])),
            )
            .accepted()
            .tls(),
        );
        v.push(
            Case::new("pins: honest leaf, pin on the root", w, honest.clone())
                .verifier(w.verifier_trusting_rogue().with_pins(pins(&[CaCert::Root])))
                .accepted()
                .tls(),
        );
        v.push(
            Case::new(
                "pins: honest leaf, several pins (one unrelated)",
                w,
                honest.clone(),
            )
            .verifier(
                w.verifier_trusting_rogue()
                    .with_pins(vec![SpkiPin([7; 32]), w.pin(CaCert::Root)]),
            )
            .accepted(),
        );
        v.push(
            Case::new(
                "pins: a pin on the rogue intermediate accepts the rogue chain",
                w,
                rogue.clone(),
            )
            .verifier(
                w.verifier_trusting_rogue()
                    .with_pins(pins(&[CaCert::RogueIntermediate])),
            )
            .accepted(),
        );
        v.push(
            Case::new(
                "pins: unrelated pin only, honest leaf refused",
                w,
                honest.clone(),
            )
            .verifier(w.verifier().with_pins(vec![SpkiPin([7; 32])]))
            .refused("issuer-pin"),
        );
        v.push(
            Case::new(
                "pins: a CT failure is reported before the pin",
                w,
                leaf(
                    &w.embedded(&[default_logs::ALPHA])
                        .issued_by(LeafIssuer::RogueIntermediate),
                ),
            )
            .verifier(w.verifier_trusting_rogue().with_pins(pins(&[CaCert::Root])))
            .policy(too_few_logs(EMB, 2, 1)),
        );
    }
}
