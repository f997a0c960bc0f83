//! Matrix section: chain.

use crate::*;

/// The cases of this section.
pub(crate) fn cases(w: &World, v: &mut Vec<Case>) {
    let now = w.now;
    let leaf = |spec: &LeafSpec| w.issue(spec);
    v.push(
        Case::new(
            "expired leaf",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                    .valid(now - Duration::days(100), now - Duration::days(10)),
            ),
        )
        .refused("chain")
        .check("Chain(CertExpired)", |r| {
            matches!(r, Refusal::Chain(webpki::Error::CertExpired { .. }))
        })
        .tls(),
    );
    v.push(
        Case::new(
            "leaf not yet valid",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                    .valid(now + Duration::days(1), now + Duration::days(30)),
            ),
        )
        .refused("chain")
        .check("Chain(CertNotValidYet)", |r| {
            matches!(r, Refusal::Chain(webpki::Error::CertNotValidYet { .. }))
        }),
    );
    v.push(
        Case::new(
            "rogue CA not trusted",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                    .issued_by(LeafIssuer::RogueIntermediate),
            ),
        )
        .refused("chain")
        .check("Chain(UnknownIssuer)", |r| {
            matches!(r, Refusal::Chain(webpki::Error::UnknownIssuer))
        })
        .tls(),
    );
    {
        let honest = w.honest2();
        let mut missing = honest.chain.clone();
        missing.truncate(1);
        v.push(
            Case::raw("intermediate not sent", w, missing)
                .refused("chain")
                .check("Chain(UnknownIssuer)", |r| {
                    matches!(r, Refusal::Chain(webpki::Error::UnknownIssuer))
                }),
        );
    }
}
