//! Matrix section: RSA log and static-ct-api.

use crate::*;

/// The cases of this section.
pub(crate) fn cases(w: &World, v: &mut Vec<Case>) {
    let leaf = |spec: &LeafSpec| w.issue(spec);
    v.push(
        Case::new(
            "RSA log SCT counts",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, default_logs::GAMMA])),
        )
        .accepted()
        .signatures(&["valid", "valid"])
        .tls(),
    );
    v.push(
        Case::new(
            "RSA log SCT with a corrupted signature",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .embed(w.sct(default_logs::GAMMA).corrupt_signature()),
            ),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .signatures(&["valid", "invalid"]),
    );
    v.push(
        Case::new(
            "static-ct-api log SCT with a leaf_index extension",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA])
                    .embed(w.sct(TILE_B).with_leaf_index(1_234_567).unwrap()),
            ),
        )
        .accepted()
        .signatures(&["valid", "valid"])
        .tls(),
    );
    v.push(
        Case::new(
            "Chrome: two static-ct-api logs suffice",
            w,
            leaf(
                &w.spec()
                    .embed(w.sct(TILE_B).with_leaf_index(7).unwrap())
                    .embed(w.sct(TILE_C).with_leaf_index(8).unwrap()),
            ),
        )
        .accepted(),
    );
}
