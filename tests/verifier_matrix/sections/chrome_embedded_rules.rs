//! Matrix section: Chrome embedded rules.

use crate::*;

/// The cases of this section.
pub(crate) fn cases(w: &World, v: &mut Vec<Case>) {
    use NotCounted::*;
    let now = w.now;
    let leaf = |spec: &LeafSpec| w.issue(spec);
    v.push(
        Case::new("no SCTs at all", w, leaf(&w.spec()))
            .policy(PolicyFailure::NoScts)
            .tls(),
    );
    v.push(
        Case::new("single SCT", w, leaf(&w.embedded(&[default_logs::ALPHA])))
            .policy(too_few_logs(EMB, 2, 1))
            .reasons(vec![C]),
    );
    v.push(
        Case::new(
            "two logs of one operator",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, EPSILON])),
        )
        .policy(too_few_operators(EMB, 2, 1))
        .reasons(vec![C, C])
        .tls(),
    );
    v.push(
        Case::new(
            "two SCTs from the same log count once",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, default_logs::ALPHA])),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .reasons(vec![C, not(DuplicateLog)]),
    );
    v.push(
        Case::new(
            "readonly and qualified logs count",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, IOTA, KAPPA])),
        )
        .accepted()
        .reasons(vec![C, C, C]),
    );
    v.push(
        Case::new(
            "corrupted signature",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .embed(w.sct(default_logs::BETA).corrupt_signature()),
            ),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .reasons(vec![C, not(InvalidSignature)])
        .signatures(&["valid", "invalid"])
        .tls(),
    );
    v.push(
        Case::new(
            "corrupted signature, two other operators still enough",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .embed(w.sct(default_logs::BETA).corrupt_signature())
                    .embed(w.sct(default_logs::GAMMA)),
            ),
        )
        .accepted()
        .reasons(vec![C, not(InvalidSignature), C]),
    );
    v.push(
        Case::new(
            "SCT over a different TBS",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .embed(w.sct(default_logs::BETA).sign_over_other_tbs()),
            ),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .signatures(&["valid", "invalid"]),
    );
    v.push(
        Case::new(
            "issuer key hash of the root instead of the issuing intermediate",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .embed(w.sct(default_logs::BETA).issuer_key_hash_of(CaCert::Root)),
            ),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .signatures(&["valid", "invalid"]),
    );
    v.push(
        Case::new(
            "embedded SCT signed as an x509_entry",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .embed(w.sct(default_logs::BETA).as_x509_entry()),
            ),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .signatures(&["valid", "invalid"]),
    );
    v.push({
        let list = w.edited_list(|json| {
            for op in json["operators"].as_array_mut().unwrap() {
                op["logs"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|l| l["description"] != default_logs::BETA);
            }
        });
        Case::new(
            "unknown log (not in the list)",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, default_logs::BETA])),
        )
        .verifier(w.verifier_with_list(list))
        .policy(too_few_logs(EMB, 2, 1))
        .reasons(vec![C, not(UnknownLog)])
        .signatures(&["valid", "not_checked"])
        .tls()
    });
    v.push(
        Case::new(
            "mimic1 in the list with a valid signature never counts",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, MIMIC1])),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .reasons(vec![C, not(MimicLog)])
        .signatures(&["valid", "valid"])
        .tls(),
    );
    v.push(
        Case::new(
            "mimic1 + mimic2 + one honest log",
            w,
            leaf(&w.embedded(&[MIMIC1, MIMIC2, default_logs::ALPHA])),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .reasons(vec![not(MimicLog), not(MimicLog), C])
        .signatures(&["valid", "valid", "valid"]),
    );
    v.push(
        Case::new(
            "retired log, SCT issued before the retirement",
            w,
            leaf(
                &w.embedded(&[default_logs::BETA])
                    .embed(SctSpec::at(default_logs::DELTA, now - Duration::days(60))),
            ),
        )
        .accepted()
        .reasons(vec![C, C]),
    );
    v.push(
        Case::new(
            "retired log, SCT issued after the retirement",
            w,
            leaf(&w.embedded(&[default_logs::BETA, default_logs::DELTA])),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .reasons(vec![
            C,
            not(LogRetiredBeforeSct {
                retired_ms: w.ms(now - Duration::days(30)),
            }),
        ]),
    );
    v.push(
        Case::new(
            "only retired logs (before retirement): no current log",
            w,
            leaf(
                &w.spec()
                    .embed(SctSpec::at(default_logs::DELTA, now - Duration::days(60)))
                    .embed(SctSpec::at(ZETA, now - Duration::days(60))),
            ),
        )
        .policy(PolicyFailure::NoCurrentLog)
        .reasons(vec![C, C]),
    );
    let (nb, na) = lifetime(now, 180, 0);
    v.push(
        Case::new(
            "lifetime exactly 180 days with 2 SCTs",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                    .valid(nb, na),
            ),
        )
        .accepted(),
    );
    let (nb, na) = lifetime(now, 180, 1);
    v.push(
        Case::new(
            "lifetime 180 days + 1 s with 2 SCTs",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                    .valid(nb, na),
            ),
        )
        .policy(too_few_logs(EMB, 3, 2))
        .tls(),
    );
    let (nb, na) = lifetime(now, 397, 0);
    v.push(
        Case::new(
            "lifetime 397 days with 3 SCTs",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, default_logs::BETA, default_logs::GAMMA])
                    .valid(nb, na),
            ),
        )
        .accepted(),
    );
    v.push(
        Case::new(
            "future SCT timestamp",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .embed(SctSpec::at(default_logs::BETA, now + Duration::hours(1))),
            ),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .reasons(vec![C, not(FutureTimestamp)])
        .signatures(&["valid", "valid"]),
    );
    v.push(
        Case::new(
            "the same SCT, checked two hours later",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .embed(SctSpec::at(default_logs::BETA, now + Duration::hours(1))),
            ),
        )
        .at(now + Duration::hours(2))
        .accepted()
        .reasons(vec![C, C]),
    );
    v.push(
        Case::new(
            "pending log",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, default_logs::PENDING])),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .reasons(vec![C, not(LogPending)]),
    );
    v.push(
        Case::new(
            "rejected log",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, default_logs::REJECTED])),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .reasons(vec![
            C,
            not(LogRejected {
                rejected_ms: w.ms(now - Duration::days(60)),
            }),
        ]),
    );
    v.push(
        Case::new(
            "previous operator: SCT from the time Operator A ran Theta",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .embed(SctSpec::at(THETA, now - Duration::days(20))),
            ),
        )
        .policy(too_few_operators(EMB, 2, 1)),
    );
    v.push(
        Case::new(
            "previous operator: SCT after the hand-over to Operator B",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, THETA])),
        )
        .accepted(),
    );
}
