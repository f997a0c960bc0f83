//! Matrix section: malformed inputs: typed errors.

use crate::*;

/// The cases of this section.
pub(crate) fn cases(w: &World, v: &mut Vec<Case>) {
    let now = w.now;
    v.push(
        Case::raw(
            "garbage leaf",
            w,
            vec![CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x05])],
        )
        .refused("chain")
        .check("Chain(BadDer*)", |r| {
            matches!(
                r,
                Refusal::Chain(webpki::Error::BadDer | webpki::Error::BadDerTime)
                    | Refusal::Chain(webpki::Error::TrailingData(_))
            )
        }),
    );
    v.push(Case::raw("empty leaf", w, vec![CertificateDer::from(Vec::new())]).refused("chain"));
    {
        let honest = w.honest2();
        let half = honest.leaf().len() / 2;
        let truncated = CertificateDer::from(honest.leaf()[..half].to_vec());
        v.push(
            Case::raw(
                "truncated leaf",
                w,
                vec![truncated, honest.chain[1].clone()],
            )
            .refused("chain"),
        );
        let inter = honest.chain[1].as_ref();
        let truncated_inter = CertificateDer::from(inter[..inter.len() - 10].to_vec());
        v.push(
            Case::raw(
                "truncated intermediate",
                w,
                vec![honest.leaf().clone(), truncated_inter],
            )
            .refused("chain"),
        );
        // A staple that cannot be read is ignored, for revocation and for its SCTs: the
        // connection is judged on the embedded SCTs (here compliant).
        v.push(
            Case::new(
                "malformed OCSP staple (not DER): ignored",
                w,
                honest.clone(),
            )
            .ocsp(vec![0xde, 0xad, 0xbe, 0xef])
            .accepted()
            .reasons(vec![C, C])
            .staple_ignored(true, true)
            .tls(),
        );
        v.push(
            Case::new(
                "OCSP staple: successful without responseBytes: ignored",
                w,
                honest.clone(),
            )
            .ocsp(vec![0x30, 0x03, 0x0a, 0x01, 0x00])
            .accepted()
            .staple_ignored(true, true),
        );
        let bad_list = build_ocsp_response(
            w.pki.intermediate(),
            honest.leaf(),
            Some(&[0x00, 0x05, 0x00, 0x01]),
            now - Duration::hours(1),
            now + Duration::days(7),
        )
        .unwrap();
        // Signed by the issuer and good: used for revocation; its SCT list is ignored.
        v.push(
            Case::new(
                "OCSP staple with a malformed SCT list: SCTs ignored",
                w,
                honest.clone(),
            )
            .ocsp(bad_list)
            .accepted()
            .reasons(vec![C, C])
            .staple_ignored(false, true),
        );
    }
}
