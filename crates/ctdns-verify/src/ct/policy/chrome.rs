//! Chrome's CT policy.
//!
//! From Chrome's CT policy (certificates issued on or after 15 April 2022):
//!
//! * **Embedded SCTs:** SCTs from at least N distinct logs that are qualified, usable,
//!   readonly or retired at check time — a retired log only for an SCT issued before its
//!   retirement — with N = 2 when the certificate lifetime is ≤ 180 days and 3 otherwise;
//!   at least one of them from a log qualified, usable or readonly at check time; and the
//!   counted SCTs from at least 2 distinct operators (the operator as of each SCT's
//!   timestamp, through `previous_operators`).
//! * **SCTs stapled in OCSP:** at least 2 SCTs from distinct logs that are qualified,
//!   usable or readonly at check time (retired logs do not count), from 2 distinct
//!   operators.
//!
//! Compliant when either set complies. The lifetime is `notAfter − notBefore` compared
//! with 180 × 86 400 s, as Chromium computes it (`valid_expiry() − valid_start() >
//! base::Days(180)` selects 3): exactly 180 days needs 2 SCTs, one second more needs 3.
//!
//! Two deliberate differences, both stricter than Chromium's code (not its written
//! policy): a retired log's SCT counts only if *its own* timestamp predates the retirement
//! (Chromium also accepts it when the earliest SCT of the certificate does), and the OCSP
//! set must comply on its own (Chromium's code lets embedded SCTs supply the second
//! operator). As in Chromium, a retirement time still in the future leaves the log current,
//! and a log's `temporal_interval` is not checked against the certificate (the log enforces
//! it when it issues the SCT).

use super::{combine, CtPolicy, Evaluation, PolicyFailure, DAY_S};
use crate::ct::SctSource;

/// Chrome: lifetimes above this many seconds need the larger SCT count.
const CHROME_SHORT_LIFETIME_S: u64 = 180 * DAY_S;

impl CtPolicy {
    pub(super) fn chrome_outcome(
        &self,
        eval: &mut Evaluation<'_>,
        lifetime_s: u64,
    ) -> Result<(), PolicyFailure> {
        let embedded = eval.select(SctSource::Embedded, None);
        let ocsp = eval.select(SctSource::Ocsp, None);
        let required = self.required_embedded(lifetime_s > CHROME_SHORT_LIFETIME_S);
        let embedded_result =
            self.check_set(eval, SctSource::Embedded, &embedded, required, true, false);
        let ocsp_result = self.check_set(
            eval,
            SctSource::Ocsp,
            &ocsp,
            self.required_ocsp(),
            false,
            false,
        );
        combine(eval, embedded_result, ocsp_result)
    }
}
