//! Apple's CT policy.
//!
//! From Apple's "Certificate Transparency policy" (support.apple.com/103214):
//!
//! * **Embedded:** at least one embedded SCT from a currently approved log, and SCTs from
//!   at least N distinct once-or-currently approved logs, counting at most C SCTs per
//!   operator: lifetime ≤ 180 days → N = 2, C = 1; 181 to 398 days → N = 3, C = 2.
//! * **Non-embedded:** at least 2 SCTs from currently approved logs, at least one of them
//!   delivered by OCSP (the others may be embedded).
//! * Either way, at least one SCT from an RFC 6962 (not tiled) log.
//!
//! The per-operator cap limits how many SCTs count towards N; the "currently approved" and
//! "RFC 6962" conditions are met by any eligible SCT presented, capped or not. Apple's older
//! table for certificates issued before 2021-04-21 is not implemented (all such
//! certificates have expired); the current table applies to every certificate.
//!
//! The lifetime is RFC 5280's "notBefore through notAfter, inclusive", in days of
//! 86 400 s where any remainder counts as one more day. A certificate longer than 398
//! days is outside Apple's table and refused ([`PolicyFailure::LifetimeTooLong`]).
//! "Currently approved" is qualified, usable or readonly at check time; "once approved"
//! adds retired logs for SCTs issued before the retirement. The ctdns floor also applies to
//! the non-embedded option: its SCTs must come from 2 distinct operators.

use std::collections::HashSet;

use super::{combine, CtPolicy, Evaluation, PolicyFailure, Selection, DAY_S};
use crate::ct::{LogId, SctSource};

/// Apple: lifetimes of at most this many days need the smaller SCT count.
const APPLE_SHORT_LIFETIME_DAYS: u64 = 180;
/// Apple: the longest lifetime its table covers.
const APPLE_MAX_LIFETIME_DAYS: u64 = 398;

impl CtPolicy {
    pub(super) fn apple_outcome(
        &self,
        eval: &mut Evaluation<'_>,
        lifetime_s: u64,
    ) -> Result<(), PolicyFailure> {
        // RFC 5280 validity is inclusive of notAfter: one second more than the difference.
        let days = lifetime_s.saturating_add(1).div_ceil(DAY_S);
        let long = days > APPLE_SHORT_LIFETIME_DAYS;
        let cap = if long { 2 } else { 1 };
        let embedded = eval.select(SctSource::Embedded, Some(cap));
        // Records the verdicts of OCSP SCTs; the non-embedded option builds its own pool.
        let _ = eval.select(SctSource::Ocsp, None);
        if days > APPLE_MAX_LIFETIME_DAYS {
            return Err(PolicyFailure::LifetimeTooLong {
                days,
                max_days: APPLE_MAX_LIFETIME_DAYS,
            });
        }
        let required = self.required_embedded(long);
        let embedded_result =
            self.check_set(eval, SctSource::Embedded, &embedded, required, true, true);
        // Non-embedded option: currently approved logs from either delivery path, at least
        // one SCT via OCSP; each log counts once.
        // (When no SCT came by OCSP, `combine` reports the embedded result alone.)
        // The per-operator cap is part of the embedded option only, so the pool takes every
        // eligible SCT, OCSP ones first.
        let mut pool: Vec<usize> = Vec::new();
        let mut seen: HashSet<LogId> = HashSet::new();
        let by_source = |src: SctSource| {
            eval.inputs
                .iter()
                .enumerate()
                .filter(move |(_, input)| input.source == src)
        };
        for (i, input) in by_source(SctSource::Ocsp).chain(by_source(SctSource::Embedded)) {
            let current = eval.log(i).is_some_and(|l| eval.is_current(l));
            if current && eval.exclusion(input).is_none() && seen.insert(input.sct.log_id) {
                pool.push(i);
            }
        }
        let pool = Selection {
            eligible: pool.clone(),
            counted: pool,
        };
        let ocsp_result = if pool
            .counted
            .iter()
            .any(|&i| eval.source(i) == SctSource::Ocsp)
        {
            self.check_set(
                eval,
                SctSource::Ocsp,
                &pool,
                self.required_ocsp(),
                false,
                true,
            )
        } else {
            Err(PolicyFailure::NoOcspSct)
        };
        combine(eval, embedded_result, ocsp_result)
    }
}
