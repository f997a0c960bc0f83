//! Matrix section: Apple policy.

use crate::*;

/// The cases of this section.
pub(crate) fn cases(w: &World, v: &mut Vec<Case>) {
    use NotCounted::*;
    let now = w.now;
    let leaf = |spec: &LeafSpec| w.issue(spec);
    let apple = || w.verifier_with_policy(CtPolicy::apple());
    v.push(
        Case::new(
            "Apple: 2 operators, short lifetime",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, default_logs::BETA])),
        )
        .verifier(apple())
        .accepted()
        .tls(),
    );
    v.push(
        Case::new(
            "Apple: per-operator cap 1 for short lifetimes",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, EPSILON, default_logs::BETA])),
        )
        .verifier(apple())
        .accepted()
        .reasons(vec![
            C,
            not(OperatorCapReached {
                operator: default_logs::OPERATOR_A.into(),
                cap: 1,
            }),
            C,
        ]),
    );
    v.push(
        Case::new(
            "Apple: one operator, cap leaves one log",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, EPSILON])),
        )
        .verifier(apple())
        .policy(too_few_logs(EMB, 2, 1)),
    );
    let (nb, na) = lifetime(now, 300, 0);
    v.push(
        Case::new(
            "Apple: 300 days with 2 SCTs",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                    .valid(nb, na),
            ),
        )
        .verifier(apple())
        .policy(too_few_logs(EMB, 3, 2)),
    );
    v.push(
        Case::new(
            "Apple: 300 days, 3 SCTs, cap 2 per operator",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, EPSILON, default_logs::BETA])
                    .valid(nb, na),
            ),
        )
        .verifier(apple())
        .accepted(),
    );
    let (nb, na) = lifetime(now, 400, 0);
    v.push(
        Case::new(
            "Apple: lifetime beyond 398 days",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, default_logs::BETA, default_logs::GAMMA])
                    .valid(nb, na),
            ),
        )
        .verifier(apple())
        .policy(PolicyFailure::LifetimeTooLong {
            days: 401,
            max_days: 398,
        }),
    );
    v.push(
        Case::new(
            "Apple: static-ct-api logs only",
            w,
            leaf(
                &w.spec()
                    .embed(w.sct(TILE_B).with_leaf_index(7).unwrap())
                    .embed(w.sct(TILE_C).with_leaf_index(8).unwrap()),
            ),
        )
        .verifier(apple())
        .policy(PolicyFailure::NoRfc6962Log { source: EMB }),
    );
    v.push(
        Case::new(
            "Apple: non-embedded option, 1 embedded + 1 OCSP",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .staple(w.sct(default_logs::BETA)),
            ),
        )
        .verifier(apple())
        .accepted(),
    );
}
