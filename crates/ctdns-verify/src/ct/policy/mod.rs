//! The CT policy: do a certificate's SCTs come from enough trusted logs of enough distinct
//! operators?
//!
//! The caller verifies each SCT's signature with the key from the [`LogList`] and hands the
//! result in as a [`SignatureStatus`]; the policy never counts an SCT whose status is not
//! [`SignatureStatus::Valid`]. [`CtPolicy::evaluate`] returns a [`CtReport`] with one
//! [`SctVerdict`] per SCT (counted, or the [`NotCounted`] rule that excluded it) and the
//! outcome (`Ok`, or the [`PolicyFailure`] naming the rule that was not met).
//!
//! Whatever the policy, an SCT never counts when its log is unknown, a mimic log, pending,
//! rejected or without a state, when its signature is not valid, or when its timestamp is
//! after the time of check; two SCTs from one log count once. No configuration goes below
//! 2 logs from 2 distinct operators ([`FLOOR_LOGS`], [`FLOOR_OPERATORS`]).
//!
//! The module is split by job: this file holds [`CtPolicy`], its floors and knobs and the
//! dispatch; `eligibility` decides per SCT whether it can count (and dedups per log);
//! `chrome` and `apple` hold each policy's rules; `report` the verdicts ([`CtReport`],
//! [`SctVerdict`], [`NotCounted`], [`PolicyFailure`]).

use std::collections::BTreeSet;
use std::fmt;

use crate::ct::log_list::LogList;
use crate::ct::{Sct, SctSource};

mod apple;
mod chrome;
mod eligibility;
mod report;
#[cfg(test)]
mod tests;

use eligibility::{Evaluation, Selection};
pub use report::{CtReport, NotCounted, PolicyFailure, SctVerdict};

/// No policy counts fewer SCTs (from distinct logs) than this.
pub const FLOOR_LOGS: usize = 2;
/// No policy accepts SCTs from fewer distinct operators than this.
pub const FLOOR_OPERATORS: usize = 2;

/// Seconds in a day.
const DAY_S: u64 = 86_400;

/// The outcome of the caller's signature check of one SCT.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SignatureStatus {
    /// Verified with the log's key from the list.
    Valid,
    /// Verification failed.
    Invalid {
        /// Why (for the report).
        reason: String,
    },
    /// Not verified: the log is not in the list, so there is no key.
    NotChecked,
}

/// One SCT handed to the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SctInput {
    /// The parsed SCT.
    pub sct: Sct,
    /// How it was delivered.
    pub source: SctSource,
    /// The caller's signature verdict.
    pub signature: SignatureStatus,
}

/// Which published policy the rules follow: `ct.policy` in the configuration and
/// `--policy` on the command line (`chrome` or `apple`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    /// Chrome's CT policy (the default).
    #[default]
    Chrome,
    /// Apple's CT policy.
    Apple,
}

/// A policy name that is neither `chrome` nor `apple`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown CT policy `{0}` (expected `chrome` or `apple`)")]
pub struct UnknownPolicy(pub String);

impl std::str::FromStr for PolicyKind {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "chrome" => Ok(PolicyKind::Chrome),
            "apple" => Ok(PolicyKind::Apple),
            other => Err(UnknownPolicy(other.to_string())),
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PolicyKind::Chrome => "chrome",
            PolicyKind::Apple => "apple",
        })
    }
}

/// A policy setting that would weaken the policy.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyConfigError {
    /// Below the ctdns floor of 2 logs / 2 operators.
    #[error("CT policy: {field} = {requested} is below the floor of {floor}")]
    BelowFloor {
        /// The setting.
        field: &'static str,
        /// The value asked for.
        requested: usize,
        /// The floor.
        floor: usize,
    },
    /// Below the value the policy already requires: settings can only be raised.
    #[error("CT policy: {field} can only be raised (currently {current}, asked for {requested})")]
    WouldLower {
        /// The setting.
        field: &'static str,
        /// The current value.
        current: usize,
        /// The value asked for.
        requested: usize,
    },
}

impl PolicyConfigError {
    /// The setting at fault, e.g. `min_logs`.
    pub fn field(&self) -> &'static str {
        match self {
            PolicyConfigError::BelowFloor { field, .. }
            | PolicyConfigError::WouldLower { field, .. } => field,
        }
    }
}

/// A CT policy: Chrome's or Apple's rules, with counts that can only be raised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtPolicy {
    kind: PolicyKind,
    min_embedded_short: usize,
    min_embedded_long: usize,
    min_ocsp: usize,
    min_operators: usize,
}

impl Default for CtPolicy {
    fn default() -> Self {
        Self::chrome()
    }
}

impl CtPolicy {
    /// Chrome's policy: 2 embedded SCTs (3 above 180 days), 2 via OCSP, 2 operators.
    pub fn chrome() -> Self {
        Self {
            kind: PolicyKind::Chrome,
            min_embedded_short: 2,
            min_embedded_long: 3,
            min_ocsp: 2,
            min_operators: FLOOR_OPERATORS,
        }
    }

    /// Apple's policy: 2 embedded SCTs (3 for 181–398 days, at most 1 resp. 2 per
    /// operator), 2 non-embedded, 2 operators.
    pub fn apple() -> Self {
        Self {
            kind: PolicyKind::Apple,
            ..Self::chrome()
        }
    }

    /// The policy with the default counts of `kind`.
    pub fn for_kind(kind: PolicyKind) -> Self {
        match kind {
            PolicyKind::Chrome => Self::chrome(),
            PolicyKind::Apple => Self::apple(),
        }
    }

    /// Which rules apply.
    pub fn kind(&self) -> PolicyKind {
        self.kind
    }

    /// Distinct logs required among embedded SCTs of a short-lived certificate.
    pub fn min_embedded_short(&self) -> usize {
        self.min_embedded_short
    }

    /// Distinct logs required among embedded SCTs of a long-lived certificate (never less
    /// than [`CtPolicy::min_embedded_short`] when evaluating).
    pub fn min_embedded_long(&self) -> usize {
        self.min_embedded_long
    }

    /// Distinct logs required among OCSP-delivered SCTs.
    pub fn min_ocsp(&self) -> usize {
        self.min_ocsp
    }

    /// Distinct operators required among counted SCTs.
    pub fn min_operators(&self) -> usize {
        self.min_operators
    }

    /// Raise the embedded-SCT count for short-lived certificates.
    pub fn set_min_embedded_short(&mut self, n: usize) -> Result<(), PolicyConfigError> {
        raise(
            "min_embedded_short",
            &mut self.min_embedded_short,
            n,
            FLOOR_LOGS,
        )
    }

    /// Raise the embedded-SCT count for long-lived certificates.
    pub fn set_min_embedded_long(&mut self, n: usize) -> Result<(), PolicyConfigError> {
        raise(
            "min_embedded_long",
            &mut self.min_embedded_long,
            n,
            FLOOR_LOGS,
        )
    }

    /// Raise the OCSP-delivered SCT count.
    pub fn set_min_ocsp(&mut self, n: usize) -> Result<(), PolicyConfigError> {
        raise("min_ocsp", &mut self.min_ocsp, n, FLOOR_LOGS)
    }

    /// Raise the distinct-operator count.
    pub fn set_min_operators(&mut self, n: usize) -> Result<(), PolicyConfigError> {
        raise("min_operators", &mut self.min_operators, n, FLOOR_OPERATORS)
    }

    /// The policy `kind` with its minimums raised as configured: `min_logs` raises every
    /// SCT count (embedded short- and long-lived, OCSP) that is lower, `min_operators` the
    /// operator count. Neither goes below the floor ([`FLOOR_LOGS`], [`FLOOR_OPERATORS`]):
    /// this is the one place the floor is enforced for a configuration.
    pub fn with_minimums(
        kind: PolicyKind,
        min_logs: Option<usize>,
        min_operators: Option<usize>,
    ) -> Result<Self, PolicyConfigError> {
        let mut policy = Self::for_kind(kind);
        if let Some(n) = min_logs {
            if n < FLOOR_LOGS {
                return Err(PolicyConfigError::BelowFloor {
                    field: "min_logs",
                    requested: n,
                    floor: FLOOR_LOGS,
                });
            }
            if n > policy.min_embedded_short {
                policy.set_min_embedded_short(n)?;
            }
            if n > policy.min_embedded_long {
                policy.set_min_embedded_long(n)?;
            }
            if n > policy.min_ocsp {
                policy.set_min_ocsp(n)?;
            }
        }
        if let Some(n) = min_operators {
            policy.set_min_operators(n)?;
        }
        Ok(policy)
    }

    /// Evaluate `scts` for a certificate valid from `not_before_s` to `not_after_s` (Unix
    /// seconds) at `now_ms` (Unix milliseconds), against the logs of `logs`.
    pub fn evaluate(
        &self,
        logs: &LogList,
        scts: &[SctInput],
        not_before_s: u64,
        not_after_s: u64,
        now_ms: u64,
    ) -> CtReport {
        let lifetime_s = not_after_s.saturating_sub(not_before_s);
        let mut eval = Evaluation::new(logs, scts, now_ms);
        let outcome = match self.kind {
            PolicyKind::Chrome => self.chrome_outcome(&mut eval, lifetime_s),
            PolicyKind::Apple => self.apple_outcome(&mut eval, lifetime_s),
        };
        CtReport {
            policy: self.kind,
            scts: eval.verdicts,
            outcome,
            ocsp_ignored: None,
        }
    }

    fn required_embedded(&self, long: bool) -> usize {
        let n = if long {
            self.min_embedded_long.max(self.min_embedded_short)
        } else {
            self.min_embedded_short
        };
        n.max(FLOOR_LOGS)
    }

    fn required_ocsp(&self) -> usize {
        self.min_ocsp.max(FLOOR_LOGS)
    }

    fn required_operators(&self) -> usize {
        self.min_operators.max(FLOOR_OPERATORS)
    }

    /// Check one set of SCTs: counts and operators over the counted SCTs, the "current log"
    /// and "RFC 6962 log" conditions over every eligible one (a per-operator cap limits what
    /// counts towards the number, not which SCTs are presented).
    fn check_set(
        &self,
        eval: &Evaluation<'_>,
        source: SctSource,
        sel: &Selection,
        required_logs: usize,
        need_current: bool,
        need_rfc6962: bool,
    ) -> Result<(), PolicyFailure> {
        let set = &sel.counted;
        if set.len() < required_logs {
            return Err(PolicyFailure::TooFewLogs {
                source,
                required: required_logs,
                counted: set.len(),
            });
        }
        let operators: BTreeSet<&str> = set.iter().filter_map(|&i| eval.operator(i)).collect();
        if operators.len() < self.required_operators() {
            return Err(PolicyFailure::TooFewOperators {
                source,
                required: self.required_operators(),
                counted: operators.len(),
            });
        }
        if need_current
            && !sel
                .eligible
                .iter()
                .any(|&i| eval.log(i).is_some_and(|l| eval.is_current(l)))
        {
            return Err(PolicyFailure::NoCurrentLog);
        }
        if need_rfc6962
            && !sel
                .eligible
                .iter()
                .any(|&i| eval.log(i).is_some_and(|l| !l.tiled))
        {
            return Err(PolicyFailure::NoRfc6962Log { source });
        }
        Ok(())
    }
}

fn raise(
    field: &'static str,
    current: &mut usize,
    requested: usize,
    floor: usize,
) -> Result<(), PolicyConfigError> {
    if requested < floor {
        return Err(PolicyConfigError::BelowFloor {
            field,
            requested,
            floor,
        });
    }
    if requested < *current {
        return Err(PolicyConfigError::WouldLower {
            field,
            current: *current,
            requested,
        });
    }
    *current = requested;
    Ok(())
}

/// Compliant when either set complies; otherwise the failure of the set(s) present.
fn combine(
    eval: &Evaluation<'_>,
    embedded: Result<(), PolicyFailure>,
    ocsp: Result<(), PolicyFailure>,
) -> Result<(), PolicyFailure> {
    let (has_embedded, has_ocsp) = (eval.has(SctSource::Embedded), eval.has(SctSource::Ocsp));
    match (embedded, ocsp) {
        (Ok(()), _) | (_, Ok(())) => Ok(()),
        (Err(e), Err(o)) => Err(match (has_embedded, has_ocsp) {
            (false, false) => PolicyFailure::NoScts,
            (true, false) => e,
            (false, true) => o,
            (true, true) => PolicyFailure::Neither {
                embedded: Box::new(e),
                ocsp: Box::new(o),
            },
        }),
    }
}
