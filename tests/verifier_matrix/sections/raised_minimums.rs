//! Matrix section: raised minimums.

use crate::*;

/// The cases of this section.
pub(crate) fn cases(w: &World, v: &mut Vec<Case>) {
    let leaf = |spec: &LeafSpec| w.issue(spec);
    let raised = |logs, ops| {
        w.verifier_with_policy(ctdns::runtime::policy(PolicyKind::Chrome, logs, ops).unwrap())
    };
    v.push(
        Case::new(
            "min_logs 3: two SCTs are not enough",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, default_logs::BETA])),
        )
        .verifier(raised(Some(3), None))
        .policy(too_few_logs(EMB, 3, 2)),
    );
    v.push(
        Case::new(
            "min_logs 3: three SCTs are",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, default_logs::BETA, default_logs::GAMMA])),
        )
        .verifier(raised(Some(3), None))
        .accepted(),
    );
    v.push(
        Case::new(
            "min_operators 3: three logs of two operators",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, EPSILON, default_logs::BETA])),
        )
        .verifier(raised(None, Some(3)))
        .policy(too_few_operators(EMB, 3, 2)),
    );
    v.push(
        Case::new(
            "min_logs 3 applies to OCSP SCTs too",
            w,
            leaf(
                &w.spec()
                    .staple(w.sct(default_logs::ALPHA))
                    .staple(w.sct(default_logs::BETA)),
            ),
        )
        .verifier(raised(Some(3), None))
        .policy(too_few_logs(OCSP, 3, 2)),
    );
}
