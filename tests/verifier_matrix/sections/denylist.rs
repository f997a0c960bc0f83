//! Matrix section: denylist.

use crate::*;

/// The cases of this section.
pub(crate) fn cases(w: &World, v: &mut Vec<Case>) {
    {
        let honest = w.honest2();
        let leaf_fp = CertFingerprint::of_cert(honest.leaf());
        let inter_fp = CertFingerprint::of_cert(w.pki.intermediate().der());
        let deny = |fps: &[CertFingerprint]| Arc::new(fps.iter().copied().collect::<HashSet<_>>());
        v.push(
            Case::new("denylisted leaf", w, honest.clone())
                .verifier(w.verifier().with_denylist(deny(&[leaf_fp])))
                .refused("denylist")
                .check("Denylisted(leaf)", move |r| {
                    matches!(r, Refusal::Denylisted { fingerprint } if *fingerprint == leaf_fp)
                })
                .tls(),
        );
        v.push(
            Case::new("denylisted intermediate", w, honest.clone())
                .verifier(w.verifier().with_denylist(deny(&[inter_fp])))
                .refused("denylist")
                .check("Denylisted(intermediate)", move |r| {
                    matches!(r, Refusal::Denylisted { fingerprint } if *fingerprint == inter_fp)
                }),
        );
        v.push(
            Case::new("denylist of other certificates", w, honest)
                .verifier(w.verifier().with_denylist(deny(&[CertFingerprint::of_cert(
                    w.pki.rogue_intermediate().der(),
                )])))
                .accepted(),
        );
    }
}
