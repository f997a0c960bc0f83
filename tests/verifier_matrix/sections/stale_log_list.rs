//! Matrix section: stale log list.

use crate::*;

/// The cases of this section.
pub(crate) fn cases(w: &World, v: &mut Vec<Case>) {
    let now = w.now;
    let leaf = |spec: &LeafSpec| w.issue(spec);
    let stale_list = || {
        Arc::new(
            LogList::from_json(
                w.pki
                    .log_list_json(now - Duration::days(100))
                    .unwrap()
                    .as_bytes(),
            )
            .unwrap(),
        )
    };
    v.push(
        Case::new(
            "stale list (100 days), default: warn and enforce",
            w,
            w.honest2(),
        )
        .verifier(CtVerifier::new(
            w.roots.clone(),
            CtChecker::new(stale_list(), CtPolicy::chrome()),
        ))
        .accepted(),
    );
    v.push(
        Case::new(
            "stale list (100 days), still enforced: single SCT refused",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA])),
        )
        .verifier(CtVerifier::new(
            w.roots.clone(),
            CtChecker::new(stale_list(), CtPolicy::chrome()),
        ))
        .policy(too_few_logs(EMB, 2, 1)),
    );
    let refuse_stale = StalenessPolicy {
        refuse_when_stale: true,
        ..StalenessPolicy::default()
    };
    v.push(
        Case::new("stale list (100 days), refuse_when_stale", w, w.honest2())
            .verifier(
                CtVerifier::new(
                    w.roots.clone(),
                    CtChecker::new(stale_list(), CtPolicy::chrome()),
                )
                .with_staleness(refuse_stale),
            )
            .refused("log-list-stale")
            .check("StaleLogList { 100 days, max 70 }", |r| {
                matches!(
                    r,
                    Refusal::StaleLogList {
                        age_days: 100,
                        max_days: 70
                    }
                )
            })
            .tls(),
    );
    v.push(
        Case::new("fresh list, refuse_when_stale", w, w.honest2())
            .verifier(w.verifier().with_staleness(refuse_stale))
            .accepted(),
    );
    v.push({
        let undated = w.edited_list(|json| {
            json.as_object_mut().unwrap().remove("log_list_timestamp");
        });
        Case::new(
            "undated list, refuse_when_stale: freshness cannot be shown",
            w,
            w.honest2(),
        )
        .verifier(w.verifier_with_list(undated).with_staleness(refuse_stale))
        .refused("log-list-stale")
    });
    v.push({
        let undated = w.edited_list(|json| {
            json.as_object_mut().unwrap().remove("log_list_timestamp");
        });
        Case::new("undated list, default: enforce", w, w.honest2())
            .verifier(w.verifier_with_list(undated))
            .accepted()
    });
}
