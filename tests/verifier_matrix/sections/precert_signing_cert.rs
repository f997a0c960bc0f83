//! Matrix section: precertificate signing certificate.

use crate::*;

/// The cases of this section.
pub(crate) fn cases(w: &World, v: &mut Vec<Case>) {
    let leaf = |spec: &LeafSpec| w.issue(spec);
    let preca = |spec: LeafSpec| LeafSpec {
        precert: PrecertIssuance::PrecertSigningCert,
        ..spec
    };
    v.push(
        Case::new(
            "precert signing certificate, issuer key hash of the final issuer",
            w,
            leaf(&preca(
                w.embedded(&[default_logs::ALPHA, default_logs::BETA]),
            )),
        )
        .accepted()
        .signatures(&["valid", "valid"])
        .tls(),
    );
    v.push(
        Case::new(
            "precert signing certificate, issuer key hash of the precert signer",
            w,
            leaf(&preca(
                w.embedded(&[default_logs::ALPHA]).embed(
                    w.sct(default_logs::BETA)
                        .issuer_key_hash_of(CaCert::PrecertSigner),
                ),
            )),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .signatures(&["valid", "invalid"]),
    );
    v.push(
        Case::new(
            "precert signing certificate, naive precert TBS",
            w,
            leaf(&preca(
                w.embedded(&[default_logs::ALPHA])
                    .embed(w.sct(default_logs::BETA).naive_precert_tbs()),
            )),
        )
        .policy(too_few_logs(EMB, 2, 1))
        .signatures(&["valid", "invalid"]),
    );
}
