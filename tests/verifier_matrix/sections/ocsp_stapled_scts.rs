//! Matrix section: OCSP-stapled SCTs.

use crate::*;

/// The cases of this section.
pub(crate) fn cases(w: &World, v: &mut Vec<Case>) {
    use NotCounted::*;
    let now = w.now;
    let leaf = |spec: &LeafSpec| w.issue(spec);
    let stapled = |logs: &[&str]| {
        leaf(
            &logs
                .iter()
                .fold(w.spec(), |spec, log| spec.staple(w.sct(log))),
        )
    };
    v.push(
        Case::new(
            "OCSP only: 2 operators",
            w,
            stapled(&[default_logs::ALPHA, default_logs::BETA]),
        )
        .accepted()
        .reasons(vec![C, C])
        .tls(),
    );
    v.push(
        Case::new(
            "OCSP only: 1 operator",
            w,
            stapled(&[default_logs::ALPHA, EPSILON]),
        )
        .policy(too_few_operators(OCSP, 2, 1))
        .tls(),
    );
    v.push(
        Case::new("OCSP only: 1 SCT", w, stapled(&[default_logs::ALPHA]))
            .policy(too_few_logs(OCSP, 2, 1)),
    );
    v.push(
        Case::new(
            "OCSP only: RSA log",
            w,
            stapled(&[default_logs::GAMMA, default_logs::BETA]),
        )
        .accepted()
        .signatures(&["valid", "valid"]),
    );
    v.push(
        Case::new(
            "OCSP only: retired log never counts for OCSP",
            w,
            leaf(
                &w.spec()
                    .staple(w.sct(default_logs::BETA))
                    .staple(SctSpec::at(default_logs::DELTA, now - Duration::days(60))),
            ),
        )
        .policy(too_few_logs(OCSP, 2, 1))
        .reasons(vec![
            C,
            not(LogNotCurrentForOcsp {
                retired_ms: w.ms(now - Duration::days(30)),
            }),
        ]),
    );
    v.push(
        Case::new(
            "OCSP only: corrupted signature",
            w,
            leaf(
                &w.spec()
                    .staple(w.sct(default_logs::ALPHA))
                    .staple(w.sct(default_logs::BETA).corrupt_signature()),
            ),
        )
        .policy(too_few_logs(OCSP, 2, 1))
        .signatures(&["valid", "invalid"]),
    );
    v.push(
        Case::new(
            "OCSP only: SCT over another certificate",
            w,
            leaf(
                &w.spec()
                    .staple(w.sct(default_logs::ALPHA))
                    .staple(w.sct(default_logs::BETA).sign_over_other_tbs()),
            ),
        )
        .policy(too_few_logs(OCSP, 2, 1))
        .signatures(&["valid", "invalid"]),
    );
    v.push(
        Case::new(
            "OCSP only: mimic log",
            w,
            stapled(&[default_logs::ALPHA, MIMIC2]),
        )
        .policy(too_few_logs(OCSP, 2, 1))
        .reasons(vec![C, not(MimicLog)]),
    );
    v.push(
        Case::new(
            "OCSP only, but the staple is not sent",
            w,
            stapled(&[default_logs::ALPHA, default_logs::BETA]),
        )
        .ocsp(Vec::new())
        .policy(PolicyFailure::NoScts),
    );
    v.push(
        Case::new(
            "mix: 1 embedded + 1 OCSP, neither set complies (Chrome)",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .staple(w.sct(default_logs::BETA)),
            ),
        )
        .policy(PolicyFailure::Neither {
            embedded: Box::new(too_few_logs(EMB, 2, 1)),
            ocsp: Box::new(too_few_logs(OCSP, 2, 1)),
        })
        .tls(),
    );
    v.push(
        Case::new(
            "mix: 2 embedded + 1 OCSP",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                    .staple(w.sct(default_logs::GAMMA)),
            ),
        )
        .accepted()
        .tls(),
    );
    v.push(
        Case::new(
            "mix: 1 embedded + 2 OCSP",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .staple(w.sct(default_logs::BETA))
                    .staple(w.sct(default_logs::GAMMA)),
            ),
        )
        .accepted()
        .reasons(vec![C, C, C]),
    );
    v.push(
        Case::new(
            "mix: embedded mimic + OCSP mimic + honest one each",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, MIMIC1])
                    .staple(w.sct(default_logs::BETA))
                    .staple(w.sct(MIMIC2)),
            ),
        )
        .policy(PolicyFailure::Neither {
            embedded: Box::new(too_few_logs(EMB, 2, 1)),
            ocsp: Box::new(too_few_logs(OCSP, 2, 1)),
        })
        .reasons(vec![C, not(MimicLog), C, not(MimicLog)]),
    );
    {
        // A staple for another certificate (its own valid SCTs) does not count for this one.
        let other = stapled(&[default_logs::ALPHA, default_logs::BETA]);
        v.push(
            Case::new("OCSP response of another certificate", w, leaf(&w.spec()))
                .ocsp(other.ocsp_response.clone().unwrap())
                .policy(PolicyFailure::NoScts),
        );
    }
    v.push(
        Case::new("OCSP tryLater staple next to embedded SCTs", w, w.honest2())
            .ocsp(vec![0x30, 0x03, 0x0a, 0x01, 0x03])
            .accepted(),
    );
}
