//! Matrix section: honest leaves.

use crate::*;

/// The cases of this section.
pub(crate) fn cases(w: &World, v: &mut Vec<Case>) {
    let leaf = |spec: &LeafSpec| w.issue(spec);
    v.push(
        Case::new(
            "honest: 2 embedded SCTs, 2 operators",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, default_logs::BETA])),
        )
        .accepted()
        .reasons(vec![C, C])
        .signatures(&["valid", "valid"])
        .tls(),
    );
    v.push(
        Case::new(
            "honest: 3 embedded SCTs, 3 operators",
            w,
            leaf(&w.embedded(&[default_logs::ALPHA, default_logs::BETA, default_logs::GAMMA])),
        )
        .accepted()
        .reasons(vec![C, C, C]),
    );
    v.push(
        Case::new(
            "honest: RSA leaf key",
            w,
            leaf(&LeafSpec {
                key_type: LeafKeyType::Rsa2048,
                ..w.embedded(&[default_logs::ALPHA, default_logs::BETA])
            }),
        )
        .accepted()
        .tls(),
    );
    v.push(
        Case::new(
            "honest: IPv6 leaf dialed at ::1",
            w,
            leaf(
                &w.pki
                    .leaf_spec(IpAddr::V6(Ipv6Addr::LOCALHOST))
                    .embed(w.sct(default_logs::ALPHA))
                    .embed(w.sct(default_logs::BETA)),
            ),
        )
        .ip(Some(IpAddr::V6(Ipv6Addr::LOCALHOST)))
        .accepted(),
    );
    v.push(
        Case::new(
            "honest: leaf issued by the root (issuer key hash from the anchor)",
            w,
            leaf(
                &w.embedded(&[default_logs::ALPHA, default_logs::BETA])
                    .issued_by(LeafIssuer::Root),
            ),
        )
        .accepted()
        .signatures(&["valid", "valid"])
        .tls(),
    );
}
