//! The matrix cases, one module per section, in the order they run.

pub(crate) mod apple_policy;
pub(crate) mod chain;
pub(crate) mod chrome_embedded_rules;
pub(crate) mod denylist;
pub(crate) mod honest_leaves;
pub(crate) mod ip_san_and_dns_name;
pub(crate) mod issuer_pins;
pub(crate) mod malformed_inputs;
pub(crate) mod ocsp_stapled_scts;
pub(crate) mod precert_signing_cert;
pub(crate) mod raised_minimums;
pub(crate) mod revocation;
pub(crate) mod rsa_log_and_static_ct;
pub(crate) mod stale_log_list;

use crate::{Case, World};

/// Every case of every section.
pub(crate) fn all(w: &World) -> Vec<Case> {
    let mut v = Vec::new();
    honest_leaves::cases(w, &mut v);
    chrome_embedded_rules::cases(w, &mut v);
    precert_signing_cert::cases(w, &mut v);
    rsa_log_and_static_ct::cases(w, &mut v);
    apple_policy::cases(w, &mut v);
    raised_minimums::cases(w, &mut v);
    stale_log_list::cases(w, &mut v);
    chain::cases(w, &mut v);
    ip_san_and_dns_name::cases(w, &mut v);
    denylist::cases(w, &mut v);
    issuer_pins::cases(w, &mut v);
    ocsp_stapled_scts::cases(w, &mut v);
    malformed_inputs::cases(w, &mut v);
    revocation::cases(w, &mut v);
    v
}
