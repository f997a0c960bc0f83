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
//! ## Chrome (default)
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
//!
//! ## Apple
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

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

use serde::ser::SerializeStruct;

use crate::ct::log_list::{fmt_ms, Log, LogList, LogState};
use crate::ct::{LogId, Sct, SctSource};

/// No policy counts fewer SCTs (from distinct logs) than this.
pub const FLOOR_LOGS: usize = 2;
/// No policy accepts SCTs from fewer distinct operators than this.
pub const FLOOR_OPERATORS: usize = 2;

const DAY_S: u64 = 86_400;
/// Chrome: lifetimes above this many seconds need the larger SCT count.
const CHROME_SHORT_LIFETIME_S: u64 = 180 * DAY_S;
/// Apple: lifetimes of at most this many days need the smaller SCT count.
const APPLE_SHORT_LIFETIME_DAYS: u64 = 180;
/// Apple: the longest lifetime its table covers.
const APPLE_MAX_LIFETIME_DAYS: u64 = 398;

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

/// Which published policy the rules follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    /// Chrome's CT policy (the default).
    Chrome,
    /// Apple's CT policy.
    Apple,
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

    fn chrome_outcome(
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

    fn apple_outcome(
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

/// Per-SCT bookkeeping during one evaluation.
struct Evaluation<'a> {
    logs: &'a LogList,
    inputs: &'a [SctInput],
    now_ms: u64,
    verdicts: Vec<SctVerdict>,
}

impl<'a> Evaluation<'a> {
    fn new(logs: &'a LogList, inputs: &'a [SctInput], now_ms: u64) -> Self {
        let verdicts = inputs
            .iter()
            .map(|input| {
                let log = logs.get(&input.sct.log_id);
                SctVerdict {
                    source: input.source,
                    log_id: input.sct.log_id.to_base64(),
                    log_description: log.map(|l| l.description.clone()),
                    operator: log.map(|l| l.operator_at(input.sct.timestamp).to_string()),
                    log_state: log.and_then(|l| l.state),
                    timestamp_ms: input.sct.timestamp,
                    signature: input.signature.clone(),
                    counted: false,
                    reason: None,
                }
            })
            .collect();
        Self {
            logs,
            inputs,
            now_ms,
            verdicts,
        }
    }

    fn has(&self, source: SctSource) -> bool {
        self.inputs.iter().any(|i| i.source == source)
    }

    fn log(&self, i: usize) -> Option<&'a Log> {
        self.inputs
            .get(i)
            .and_then(|input| self.logs.get(&input.sct.log_id))
    }

    fn source(&self, i: usize) -> SctSource {
        self.inputs.get(i).map_or(SctSource::Embedded, |s| s.source)
    }

    fn operator(&self, i: usize) -> Option<&'a str> {
        let input = self.inputs.get(i)?;
        Some(self.log(i)?.operator_at(input.sct.timestamp))
    }

    fn is_current(&self, log: &Log) -> bool {
        log.state.is_some_and(|s| s.is_current_at(self.now_ms))
    }

    /// Why SCT `input` cannot count, on its own, for its delivery source.
    fn exclusion(&self, input: &SctInput) -> Option<NotCounted> {
        let id = &input.sct.log_id;
        if crate::ct::log_list::is_mimic(id) {
            return Some(NotCounted::MimicLog);
        }
        let Some(log) = self.logs.get(id) else {
            return Some(NotCounted::UnknownLog);
        };
        match input.signature {
            SignatureStatus::Valid => {}
            SignatureStatus::Invalid { .. } => return Some(NotCounted::InvalidSignature),
            SignatureStatus::NotChecked => return Some(NotCounted::SignatureNotChecked),
        }
        if input.sct.timestamp > self.now_ms {
            return Some(NotCounted::FutureTimestamp);
        }
        let state = match log.state {
            None => return Some(NotCounted::LogHasNoState),
            Some(s) => s,
        };
        match state {
            LogState::Pending { .. } => Some(NotCounted::LogPending),
            LogState::Rejected { since_ms } => Some(NotCounted::LogRejected {
                rejected_ms: since_ms,
            }),
            LogState::Retired { since_ms } if !state.is_current_at(self.now_ms) => {
                match input.source {
                    SctSource::Ocsp => Some(NotCounted::LogNotCurrentForOcsp {
                        retired_ms: since_ms,
                    }),
                    SctSource::Embedded if input.sct.timestamp >= since_ms => {
                        Some(NotCounted::LogRetiredBeforeSct {
                            retired_ms: since_ms,
                        })
                    }
                    SctSource::Embedded => None,
                }
            }
            _ => None,
        }
    }

    /// The counted SCTs of `source` (first SCT per log; at most `per_operator_cap` per
    /// operator when given), recording every verdict of that source.
    fn select(&mut self, source: SctSource, per_operator_cap: Option<usize>) -> Selection {
        let mut counted = Vec::new();
        let mut eligible = Vec::new();
        let mut seen_logs: HashSet<LogId> = HashSet::new();
        let mut per_operator: HashMap<String, usize> = HashMap::new();
        for (i, input) in self.inputs.iter().enumerate() {
            if input.source != source {
                continue;
            }
            let mut reason = self.exclusion(input);
            if reason.is_none() && !seen_logs.insert(input.sct.log_id) {
                reason = Some(NotCounted::DuplicateLog);
            }
            if reason.is_none() {
                eligible.push(i);
                if let (Some(cap), Some(operator)) = (per_operator_cap, self.operator(i)) {
                    let n = per_operator.entry(operator.to_string()).or_insert(0);
                    if *n >= cap {
                        reason = Some(NotCounted::OperatorCapReached {
                            operator: operator.to_string(),
                            cap,
                        });
                    } else {
                        *n += 1;
                    }
                }
            }
            if let Some(v) = self.verdicts.get_mut(i) {
                v.counted = reason.is_none();
                v.reason = reason;
            }
            if self.verdicts.get(i).is_some_and(|v| v.counted) {
                counted.push(i);
            }
        }
        Selection { counted, eligible }
    }
}

/// SCTs of one option, as indices into the input.
struct Selection {
    /// Those that count towards the number of logs (first per log, within any cap).
    counted: Vec<usize>,
    /// Every SCT not excluded by a rule or as a duplicate (`counted` plus capped ones).
    eligible: Vec<usize>,
}

/// Why one SCT does not count. Each variant names the rule.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
#[non_exhaustive]
pub enum NotCounted {
    /// The log is not in the log list.
    UnknownLog,
    /// The log is a mimic log (its private key is public).
    MimicLog,
    /// The signature did not verify.
    InvalidSignature,
    /// The signature was not verified.
    SignatureNotChecked,
    /// The SCT's timestamp is after the time of check.
    FutureTimestamp,
    /// The log has no state in the list.
    LogHasNoState,
    /// The log is pending.
    LogPending,
    /// The log is rejected.
    LogRejected {
        /// When it was rejected (Unix milliseconds).
        rejected_ms: u64,
    },
    /// The log retired before (or when) it issued this embedded SCT.
    LogRetiredBeforeSct {
        /// The retirement time (Unix milliseconds).
        retired_ms: u64,
    },
    /// An OCSP-delivered SCT from a log that is retired at check time.
    LogNotCurrentForOcsp {
        /// The retirement time (Unix milliseconds).
        retired_ms: u64,
    },
    /// Another SCT from the same log, delivered the same way, already counted.
    DuplicateLog,
    /// Apple: the operator already has the most SCTs that count towards the requirement.
    OperatorCapReached {
        /// The operator.
        operator: String,
        /// SCTs counted per operator for this lifetime.
        cap: usize,
    },
}

impl fmt::Display for NotCounted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotCounted::UnknownLog => f.write_str("unknown log: not in the CT log list"),
            NotCounted::MimicLog => {
                f.write_str("mimic log: its private key is public, its SCTs never count")
            }
            NotCounted::InvalidSignature => f.write_str("invalid signature"),
            NotCounted::SignatureNotChecked => f.write_str("signature not checked"),
            NotCounted::FutureTimestamp => {
                f.write_str("future timestamp: SCT issued after the time of check")
            }
            NotCounted::LogHasNoState => f.write_str("log has no state in the CT log list"),
            NotCounted::LogPending => f.write_str("log pending: pending logs never count"),
            NotCounted::LogRejected { rejected_ms } => write!(
                f,
                "log rejected since {}: rejected logs never count",
                fmt_ms(*rejected_ms)
            ),
            NotCounted::LogRetiredBeforeSct { retired_ms } => write!(
                f,
                "log retired at {}, before this SCT was issued",
                fmt_ms(*retired_ms)
            ),
            NotCounted::LogNotCurrentForOcsp { retired_ms } => write!(
                f,
                "log retired at {}: OCSP-delivered SCTs count only from logs qualified, usable or readonly at check time",
                fmt_ms(*retired_ms)
            ),
            NotCounted::DuplicateLog => {
                f.write_str("duplicate log: another SCT from this log already counted")
            }
            NotCounted::OperatorCapReached { operator, cap } => write!(
                f,
                "operator cap: {cap} SCT(s) from {operator} already counted, the most that count"
            ),
        }
    }
}

/// The CT rule a certificate's SCTs did not meet.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PolicyFailure {
    /// No SCT at all: none embedded, none stapled in OCSP.
    NoScts,
    /// Fewer distinct counted logs than required.
    TooFewLogs {
        /// The set evaluated.
        source: SctSource,
        /// Distinct logs required.
        required: usize,
        /// Distinct logs counted.
        counted: usize,
    },
    /// The counted logs belong to too few distinct operators.
    TooFewOperators {
        /// The set evaluated.
        source: SctSource,
        /// Operators required.
        required: usize,
        /// Distinct operators among the counted SCTs.
        counted: usize,
    },
    /// No embedded SCT from a log qualified, usable or readonly at check time.
    NoCurrentLog,
    /// Apple: no counted SCT from an RFC 6962 (non-tiled) log.
    NoRfc6962Log {
        /// The set evaluated.
        source: SctSource,
    },
    /// Apple's non-embedded option: no counted SCT delivered by OCSP.
    NoOcspSct,
    /// Apple: the certificate lifetime is beyond its table.
    LifetimeTooLong {
        /// Lifetime in days (inclusive, any remainder counts as a day).
        days: u64,
        /// The longest lifetime covered.
        max_days: u64,
    },
    /// Both embedded and OCSP SCTs were present and neither set complies.
    Neither {
        /// Why the embedded set fails.
        embedded: Box<PolicyFailure>,
        /// Why the OCSP set fails.
        ocsp: Box<PolicyFailure>,
    },
}

impl PolicyFailure {
    /// A stable snake_case code for the rule (the `refusal` field of the JSON report).
    pub fn code(&self) -> &'static str {
        match self {
            PolicyFailure::NoScts => "no_scts",
            PolicyFailure::TooFewLogs { .. } => "too_few_logs",
            PolicyFailure::TooFewOperators { .. } => "too_few_operators",
            PolicyFailure::NoCurrentLog => "no_current_log",
            PolicyFailure::NoRfc6962Log { .. } => "no_rfc6962_log",
            PolicyFailure::NoOcspSct => "no_ocsp_sct",
            PolicyFailure::LifetimeTooLong { .. } => "lifetime_too_long",
            PolicyFailure::Neither { .. } => "neither",
        }
    }
}

fn source_name(source: SctSource) -> &'static str {
    match source {
        SctSource::Embedded => "embedded",
        SctSource::Ocsp => "OCSP",
    }
}

impl fmt::Display for PolicyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyFailure::NoScts => {
                f.write_str("no SCTs: none embedded in the certificate, none stapled in OCSP")
            }
            PolicyFailure::TooFewLogs {
                source,
                required,
                counted,
            } => write!(
                f,
                "too few logs: {counted} distinct trusted log(s) among {} SCTs, {required} required",
                source_name(*source)
            ),
            PolicyFailure::TooFewOperators {
                source,
                required,
                counted,
            } => write!(
                f,
                "too few operators: counted {} SCTs come from {counted} distinct operator(s), {required} required",
                source_name(*source)
            ),
            PolicyFailure::NoCurrentLog => f.write_str(
                "no current log: no embedded SCT from a log qualified, usable or readonly at check time",
            ),
            PolicyFailure::NoRfc6962Log { source } => write!(
                f,
                "no RFC 6962 log: no counted {} SCT from an RFC 6962 (non-tiled) log",
                source_name(*source)
            ),
            PolicyFailure::NoOcspSct => f.write_str(
                "no OCSP SCT: no SCT from a currently approved log was delivered by OCSP",
            ),
            PolicyFailure::LifetimeTooLong { days, max_days } => write!(
                f,
                "lifetime too long: {days} days, the policy covers at most {max_days}"
            ),
            PolicyFailure::Neither { embedded, ocsp } => {
                write!(f, "neither SCT set complies: embedded: {embedded}; OCSP: {ocsp}")
            }
        }
    }
}

/// The verdict on one SCT.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SctVerdict {
    /// How the SCT was delivered.
    pub source: SctSource,
    /// The log id, base64.
    pub log_id: String,
    /// The log's description, when the log is in the list.
    pub log_description: Option<String>,
    /// The log's operator as of the SCT's timestamp, when the log is in the list.
    pub operator: Option<String>,
    /// The log's state in the list, when it has one.
    pub log_state: Option<LogState>,
    /// The SCT's timestamp (Unix milliseconds).
    pub timestamp_ms: u64,
    /// The caller's signature verdict.
    pub signature: SignatureStatus,
    /// Whether the SCT counted towards its delivery path's requirement.
    pub counted: bool,
    /// Why it did not count.
    pub reason: Option<NotCounted>,
}

impl fmt::Display for SctVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} SCT from {} [{}",
            source_name(self.source),
            self.log_description.as_deref().unwrap_or("unknown log"),
            self.log_id
        )?;
        if let Some(op) = &self.operator {
            write!(f, ", {op}")?;
        }
        write!(f, "] at {}: ", fmt_ms(self.timestamp_ms))?;
        match (&self.reason, self.counted) {
            (_, true) => f.write_str("counted"),
            (Some(reason), false) => write!(f, "not counted ({reason})"),
            (None, false) => f.write_str("not counted"),
        }
    }
}

/// The result of a policy evaluation.
///
/// JSON form (for `--json`):
///
/// ```json
/// {
///   "policy": "chrome",
///   "compliant": false,
///   "refusal": "too_few_operators",
///   "message": "too few operators: counted embedded SCTs come from 1 distinct operator(s), 2 required",
///   "details": {"rule": "too_few_operators", "source": "embedded", "required": 2, "counted": 1},
///   "scts": [ { "source": "embedded", "log_id": "…", "counted": true, "reason": null, … } ],
///   "ocsp_scts_ignored": null
/// }
/// ```
///
/// `refusal`, `message` and `details` are `null` when compliant; `refusal` is
/// [`PolicyFailure::code`], `details` the failure with its numbers. `ocsp_scts_ignored`
/// says why a stapled OCSP response's SCTs could not be read (else `null`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtReport {
    /// The policy applied.
    pub policy: PolicyKind,
    /// One verdict per input SCT, in input order.
    pub scts: Vec<SctVerdict>,
    /// `Ok` when compliant, else the rule not met.
    pub outcome: Result<(), PolicyFailure>,
    /// Why the stapled OCSP response's SCTs were not read, when they were not (set by
    /// [`crate::ct::checker::CtChecker::check`]; the staple then contributes no SCTs).
    pub ocsp_ignored: Option<crate::ct::ocsp::StapledSctError>,
}

impl CtReport {
    /// Whether the SCTs satisfy the policy.
    pub fn is_compliant(&self) -> bool {
        self.outcome.is_ok()
    }

    /// The rule not met, if any.
    pub fn failure(&self) -> Option<&PolicyFailure> {
        self.outcome.as_ref().err()
    }
}

impl serde::Serialize for CtReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let failure = self.failure();
        let mut s = serializer.serialize_struct("CtReport", 7)?;
        s.serialize_field("policy", &self.policy)?;
        s.serialize_field("compliant", &self.is_compliant())?;
        s.serialize_field("refusal", &failure.map(PolicyFailure::code))?;
        s.serialize_field("message", &failure.map(ToString::to_string))?;
        s.serialize_field("details", &failure)?;
        s.serialize_field("scts", &self.scts)?;
        s.serialize_field(
            "ocsp_scts_ignored",
            &self.ocsp_ignored.as_ref().map(ToString::to_string),
        )?;
        s.end()
    }
}

impl fmt::Display for CtReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Ok(()) => write!(f, "CT policy {}: compliant", self.policy)?,
            Err(e) => write!(f, "CT policy {}: refused: {e}", self.policy)?,
        }
        for v in &self.scts {
            write!(f, "\n  {v}")?;
        }
        if let Some(e) = &self.ocsp_ignored {
            write!(f, "\n  stapled OCSP SCTs ignored: {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::signed_data::{signed_data, SignedEntry};
    use base64::Engine;
    use rcgen::{PublicKeyData, SigningKey};
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};

    const DAY_MS: u64 = 86_400_000;
    /// 2026-11-26T00:00:00Z, the time of check of most tests.
    const NOW_MS: u64 = 1_795_651_200_000;
    const NOW_S: u64 = NOW_MS / 1000;
    /// The leaf the test logs sign (`x509_entry`): any fixed bytes do.
    const LEAF: &[u8] = b"0\x82 test leaf certificate bytes";

    struct TestLog {
        name: &'static str,
        operator: &'static str,
        state: Option<(&'static str, u64)>,
        tiled: bool,
        previous: Vec<(&'static str, u64)>,
    }

    fn log(name: &'static str, operator: &'static str, state: &'static str, since: u64) -> TestLog {
        TestLog {
            name,
            operator,
            state: Some((state, since)),
            tiled: false,
            previous: Vec::new(),
        }
    }

    /// A log list of real P-256 keys, with the key pairs to sign SCTs.
    struct Fixture {
        list: LogList,
        keys: HashMap<&'static str, rcgen::KeyPair>,
    }

    impl Fixture {
        fn new(logs: Vec<TestLog>) -> Self {
            let b64 = base64::engine::general_purpose::STANDARD;
            let mut keys = HashMap::new();
            let mut operators: Vec<(&str, Vec<serde_json::Value>, Vec<serde_json::Value>)> =
                Vec::new();
            for l in logs {
                let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
                let spki = kp.subject_public_key_info();
                let mut entry = serde_json::json!({
                    "description": l.name,
                    "log_id": LogId::from_spki(&spki).to_base64(),
                    "key": b64.encode(&spki),
                    "mmd": 86400,
                });
                if let Some((state, since)) = l.state {
                    entry["state"] = serde_json::json!({ state: { "timestamp": since } });
                }
                if !l.previous.is_empty() {
                    entry["previous_operators"] = l
                        .previous
                        .iter()
                        .map(|(n, end)| serde_json::json!({"name": n, "end_time": end}))
                        .collect();
                }
                if l.tiled {
                    entry["submission_url"] = "https://tiled.example/".into();
                    entry["monitoring_url"] = "https://tiled.example/mon/".into();
                } else {
                    entry["url"] = "https://log.example/".into();
                }
                let pos = match operators.iter().position(|(n, _, _)| *n == l.operator) {
                    Some(p) => p,
                    None => {
                        operators.push((l.operator, Vec::new(), Vec::new()));
                        operators.len() - 1
                    }
                };
                if l.tiled {
                    operators[pos].2.push(entry);
                } else {
                    operators[pos].1.push(entry);
                }
                keys.insert(l.name, kp);
            }
            let json = serde_json::json!({
                "version": "test",
                "log_list_timestamp": "2026-11-25T00:00:00Z",
                "operators": operators
                    .into_iter()
                    .map(|(name, logs, tiled)| serde_json::json!({
                        "name": name, "email": [], "logs": logs, "tiled_logs": tiled
                    }))
                    .collect::<Vec<_>>(),
            });
            let list = LogList::from_json(&serde_json::to_vec(&json).unwrap()).unwrap();
            Self { list, keys }
        }

        /// A real SCT from log `name` at `timestamp`, its signature verified with the
        /// list's key exactly as the glue code does.
        fn sct(&self, name: &str, source: SctSource, timestamp: u64) -> SctInput {
            let kp = &self.keys[name];
            let data = signed_data(timestamp, SignedEntry::X509 { leaf: LEAF }, &[]).unwrap();
            let sct = Sct {
                log_id: LogId::from_spki(&kp.subject_public_key_info()),
                timestamp,
                extensions: Vec::new(),
                hash_alg: crate::ct::sct::HASH_SHA256,
                sig_alg: crate::ct::sct::SIG_ECDSA,
                signature: kp.sign(&data).unwrap(),
            };
            self.verified(sct, source)
        }

        /// Verify `sct` against the list (NotChecked for unknown logs).
        fn verified(&self, sct: Sct, source: SctSource) -> SctInput {
            let signature = match self.list.get(&sct.log_id) {
                None => SignatureStatus::NotChecked,
                Some(log) => {
                    let spki = x509_parser::prelude::FromDer::from_der(&log.key)
                        .map(|(_, s): (_, x509_parser::x509::SubjectPublicKeyInfo)| {
                            s.subject_public_key.data.to_vec()
                        })
                        .unwrap();
                    let data = signed_data(
                        sct.timestamp,
                        SignedEntry::X509 { leaf: LEAF },
                        &sct.extensions,
                    )
                    .unwrap();
                    match UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, spki)
                        .verify(&data, &sct.signature)
                    {
                        Ok(()) => SignatureStatus::Valid,
                        Err(_) => SignatureStatus::Invalid {
                            reason: "ECDSA verification failed".into(),
                        },
                    }
                }
            };
            SctInput {
                sct,
                source,
                signature,
            }
        }
    }

    fn embedded(f: &Fixture, name: &str, ts: u64) -> SctInput {
        f.sct(name, SctSource::Embedded, ts)
    }

    fn ocsp(f: &Fixture, name: &str, ts: u64) -> SctInput {
        f.sct(name, SctSource::Ocsp, ts)
    }

    /// Issued 10 days ago, valid `days` days.
    fn cert(days: u64) -> (u64, u64) {
        let nb = NOW_S - 10 * 86_400;
        (nb, nb + days * 86_400)
    }

    const T: u64 = NOW_MS - 10 * DAY_MS; // SCT time

    fn standard() -> Fixture {
        Fixture::new(vec![
            log("A1", "OpA", "usable", 0),
            log("A2", "OpA", "qualified", 0),
            log("B1", "OpB", "usable", 0),
            log("B2", "OpB", "readonly", 0),
            log("C1", "OpC", "usable", 0),
        ])
    }

    fn eval(p: &CtPolicy, f: &Fixture, scts: &[SctInput], days: u64) -> CtReport {
        let (nb, na) = cert(days);
        p.evaluate(&f.list, scts, nb, na, NOW_MS)
    }

    fn reasons(r: &CtReport) -> Vec<Option<NotCounted>> {
        r.scts.iter().map(|v| v.reason.clone()).collect()
    }

    #[test]
    fn test_signatures_are_real() {
        let f = standard();
        let good = embedded(&f, "A1", T);
        assert_eq!(good.signature, SignatureStatus::Valid);
        let mut tampered = good.sct.clone();
        tampered.timestamp += 1;
        assert!(matches!(
            f.verified(tampered, SctSource::Embedded).signature,
            SignatureStatus::Invalid { .. }
        ));
    }

    #[test]
    fn chrome_embedded_short_lived_two_operators_passes() {
        let f = standard();
        let p = CtPolicy::chrome();
        let r = eval(&p, &f, &[embedded(&f, "A1", T), embedded(&f, "B1", T)], 90);
        assert_eq!(r.outcome, Ok(()));
        assert!(r.scts.iter().all(|v| v.counted && v.reason.is_none()));
        assert_eq!(r.scts[0].operator.as_deref(), Some("OpA"));
        assert_eq!(r.scts[1].log_description.as_deref(), Some("B1"));
    }

    #[test]
    fn chrome_embedded_same_operator_fails() {
        let f = standard();
        let r = eval(
            &CtPolicy::chrome(),
            &f,
            &[embedded(&f, "A1", T), embedded(&f, "A2", T)],
            90,
        );
        assert_eq!(
            r.outcome,
            Err(PolicyFailure::TooFewOperators {
                source: SctSource::Embedded,
                required: 2,
                counted: 1
            })
        );
        assert!(r.scts.iter().all(|v| v.counted));
    }

    #[test]
    fn chrome_embedded_long_lived_needs_three_logs() {
        let f = standard();
        let p = CtPolicy::chrome();
        let two = [embedded(&f, "A1", T), embedded(&f, "B1", T)];
        assert_eq!(
            eval(&p, &f, &two, 200).outcome,
            Err(PolicyFailure::TooFewLogs {
                source: SctSource::Embedded,
                required: 3,
                counted: 2
            })
        );
        let three = [
            embedded(&f, "A1", T),
            embedded(&f, "A2", T),
            embedded(&f, "B1", T),
        ];
        assert_eq!(eval(&p, &f, &three, 200).outcome, Ok(()));
    }

    #[test]
    fn chrome_180_day_boundary() {
        let f = standard();
        let p = CtPolicy::chrome();
        let two = [embedded(&f, "A1", T), embedded(&f, "B1", T)];
        let nb = NOW_S - 86_400;
        // notAfter − notBefore = 180 days exactly: 2 SCTs suffice.
        let r = p.evaluate(&f.list, &two, nb, nb + 180 * 86_400, NOW_MS);
        assert_eq!(r.outcome, Ok(()));
        // One second more: 3 are needed.
        let r = p.evaluate(&f.list, &two, nb, nb + 180 * 86_400 + 1, NOW_MS);
        assert_eq!(
            r.outcome,
            Err(PolicyFailure::TooFewLogs {
                source: SctSource::Embedded,
                required: 3,
                counted: 2
            })
        );
    }

    #[test]
    fn chrome_embedded_needs_one_current_log() {
        let retired_at = T + DAY_MS;
        let f = Fixture::new(vec![
            log("R1", "OpA", "retired", retired_at),
            log("R2", "OpB", "retired", retired_at),
            log("U1", "OpC", "usable", 0),
        ]);
        let p = CtPolicy::chrome();
        let r = eval(&p, &f, &[embedded(&f, "R1", T), embedded(&f, "R2", T)], 90);
        // Both retired SCTs predate the retirement and count, but neither log is current.
        assert!(r.scts.iter().all(|v| v.counted));
        assert_eq!(r.outcome, Err(PolicyFailure::NoCurrentLog));
        let r = eval(&p, &f, &[embedded(&f, "R1", T), embedded(&f, "U1", T)], 90);
        assert_eq!(r.outcome, Ok(()));
    }

    #[test]
    fn retired_log_counts_only_before_retirement() {
        let retired_at = T + DAY_MS;
        let f = Fixture::new(vec![
            log("R1", "OpA", "retired", retired_at),
            log("U1", "OpB", "usable", 0),
        ]);
        let p = CtPolicy::chrome();
        let before = eval(
            &p,
            &f,
            &[embedded(&f, "R1", retired_at - 1), embedded(&f, "U1", T)],
            90,
        );
        assert_eq!(before.outcome, Ok(()));
        let at = eval(
            &p,
            &f,
            &[embedded(&f, "R1", retired_at), embedded(&f, "U1", T)],
            90,
        );
        assert_eq!(
            reasons(&at),
            vec![
                Some(NotCounted::LogRetiredBeforeSct {
                    retired_ms: retired_at
                }),
                None
            ]
        );
        assert_eq!(
            at.outcome,
            Err(PolicyFailure::TooFewLogs {
                source: SctSource::Embedded,
                required: 2,
                counted: 1
            })
        );
        // A retirement still in the future: the log is current.
        let scheduled = p.evaluate(
            &f.list,
            &[embedded(&f, "R1", T), embedded(&f, "U1", T)],
            cert(90).0,
            cert(90).1,
            retired_at - 1,
        );
        assert_eq!(scheduled.outcome, Ok(()));
    }

    #[test]
    fn chrome_ocsp_two_current_logs_two_operators() {
        let retired_at = T + DAY_MS;
        let f = Fixture::new(vec![
            log("A1", "OpA", "usable", 0),
            log("A2", "OpA", "usable", 0),
            log("B1", "OpB", "readonly", 0),
            log("R1", "OpC", "retired", retired_at),
        ]);
        let p = CtPolicy::chrome();
        let ok = eval(&p, &f, &[ocsp(&f, "A1", T), ocsp(&f, "B1", T)], 300);
        assert_eq!(ok.outcome, Ok(()));
        let same_op = eval(&p, &f, &[ocsp(&f, "A1", T), ocsp(&f, "A2", T)], 300);
        assert_eq!(
            same_op.outcome,
            Err(PolicyFailure::TooFewOperators {
                source: SctSource::Ocsp,
                required: 2,
                counted: 1
            })
        );
        // Retired logs never count for OCSP, even for SCTs before the retirement.
        let retired = eval(&p, &f, &[ocsp(&f, "A1", T), ocsp(&f, "R1", T)], 300);
        assert_eq!(
            reasons(&retired),
            vec![
                None,
                Some(NotCounted::LogNotCurrentForOcsp {
                    retired_ms: retired_at
                })
            ]
        );
        assert_eq!(
            retired.outcome,
            Err(PolicyFailure::TooFewLogs {
                source: SctSource::Ocsp,
                required: 2,
                counted: 1
            })
        );
    }

    #[test]
    fn compliance_is_embedded_or_ocsp() {
        let f = standard();
        let p = CtPolicy::chrome();
        // Embedded set fails (one operator), OCSP set complies.
        let r = eval(
            &p,
            &f,
            &[
                embedded(&f, "A1", T),
                embedded(&f, "A2", T),
                ocsp(&f, "B1", T),
                ocsp(&f, "C1", T),
            ],
            90,
        );
        assert_eq!(r.outcome, Ok(()));
        // Both fail: both reasons are reported.
        let r = eval(&p, &f, &[embedded(&f, "A1", T), ocsp(&f, "B1", T)], 90);
        assert_eq!(
            r.outcome,
            Err(PolicyFailure::Neither {
                embedded: Box::new(PolicyFailure::TooFewLogs {
                    source: SctSource::Embedded,
                    required: 2,
                    counted: 1
                }),
                ocsp: Box::new(PolicyFailure::TooFewLogs {
                    source: SctSource::Ocsp,
                    required: 2,
                    counted: 1
                }),
            })
        );
        // Chrome's OCSP set must comply on its own: an embedded SCT does not lend it an
        // operator.
        let r = eval(
            &p,
            &f,
            &[embedded(&f, "B1", T), ocsp(&f, "A1", T), ocsp(&f, "A2", T)],
            90,
        );
        assert!(matches!(r.outcome, Err(PolicyFailure::Neither { .. })));
    }

    #[test]
    fn no_scts() {
        let f = standard();
        let r = eval(&CtPolicy::chrome(), &f, &[], 90);
        assert_eq!(r.outcome, Err(PolicyFailure::NoScts));
        let r = eval(&CtPolicy::apple(), &f, &[], 90);
        assert_eq!(r.outcome, Err(PolicyFailure::NoScts));
    }

    #[test]
    fn duplicate_scts_from_one_log_count_once() {
        let f = standard();
        let p = CtPolicy::chrome();
        let r = eval(
            &p,
            &f,
            &[
                embedded(&f, "A1", T),
                embedded(&f, "A1", T + 5),
                embedded(&f, "B1", T),
            ],
            200,
        );
        assert_eq!(
            reasons(&r),
            vec![None, Some(NotCounted::DuplicateLog), None]
        );
        assert_eq!(
            r.outcome,
            Err(PolicyFailure::TooFewLogs {
                source: SctSource::Embedded,
                required: 3,
                counted: 2
            })
        );
        // A duplicate after an invalid SCT from the same log still counts once.
        let mut bad = embedded(&f, "A1", T);
        bad.sct.signature = embedded(&f, "A1", T + 9).sct.signature;
        let bad = f.verified(bad.sct, SctSource::Embedded);
        let r = eval(
            &p,
            &f,
            &[bad, embedded(&f, "A1", T), embedded(&f, "B1", T)],
            90,
        );
        assert_eq!(
            reasons(&r),
            vec![Some(NotCounted::InvalidSignature), None, None]
        );
        assert_eq!(r.outcome, Ok(()));
    }

    #[test]
    fn pending_rejected_no_state_unknown_never_count() {
        let f = Fixture::new(vec![
            log("P", "OpA", "pending", 0),
            log("X", "OpB", "rejected", 77),
            TestLog {
                name: "N",
                operator: "OpC",
                state: None,
                tiled: false,
                previous: Vec::new(),
            },
            log("U", "OpD", "usable", 0),
        ]);
        let other = Fixture::new(vec![log("Z", "OpZ", "usable", 0)]);
        let unknown = other.sct("Z", SctSource::Embedded, T);
        let unknown = f.verified(unknown.sct, SctSource::Embedded);
        assert_eq!(unknown.signature, SignatureStatus::NotChecked);
        let r = eval(
            &CtPolicy::chrome(),
            &f,
            &[
                embedded(&f, "P", T),
                embedded(&f, "X", T),
                embedded(&f, "N", T),
                unknown,
                embedded(&f, "U", T),
            ],
            90,
        );
        assert_eq!(
            reasons(&r),
            vec![
                Some(NotCounted::LogPending),
                Some(NotCounted::LogRejected { rejected_ms: 77 }),
                Some(NotCounted::LogHasNoState),
                Some(NotCounted::UnknownLog),
                None
            ]
        );
        assert_eq!(r.scts[3].log_description, None);
        assert_eq!(r.scts[3].operator, None);
        assert_eq!(
            r.outcome,
            Err(PolicyFailure::TooFewLogs {
                source: SctSource::Embedded,
                required: 2,
                counted: 1
            })
        );
    }

    #[test]
    fn signature_must_be_valid() {
        let f = standard();
        let mut a = embedded(&f, "A1", T);
        a.signature = SignatureStatus::Invalid {
            reason: "bad".into(),
        };
        let mut b = embedded(&f, "B1", T);
        b.signature = SignatureStatus::NotChecked;
        let r = eval(&CtPolicy::chrome(), &f, &[a, b, embedded(&f, "C1", T)], 90);
        assert_eq!(
            reasons(&r),
            vec![
                Some(NotCounted::InvalidSignature),
                Some(NotCounted::SignatureNotChecked),
                None
            ]
        );
        assert!(r.failure().is_some());
    }

    #[test]
    fn future_timestamps_never_count() {
        let f = standard();
        let r = eval(
            &CtPolicy::chrome(),
            &f,
            &[embedded(&f, "A1", NOW_MS + 1), embedded(&f, "B1", NOW_MS)],
            90,
        );
        assert_eq!(reasons(&r), vec![Some(NotCounted::FutureTimestamp), None]);
        assert!(!r.is_compliant());
    }

    #[test]
    fn mimic_logs_never_count_even_when_listed() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mimic_pem = include_str!("../../tests/data/ct-vectors/mimics/mimic1.pem");
        let mimic = rcgen::KeyPair::from_pem(mimic_pem).unwrap();
        let spki = mimic.subject_public_key_info();
        let f = standard();
        // A list that carries the mimic log as usable, from its own operator.
        let mut json: serde_json::Value = serde_json::json!({"operators": [{
            "name": "Mimic Operator", "email": [],
            "logs": [{
                "description": "mimic", "log_id": LogId::from_spki(&spki).to_base64(),
                "key": b64.encode(&spki), "url": "https://m/",
                "state": {"usable": {"timestamp": 0}}
            }]
        }]});
        for l in f.list.logs() {
            json["operators"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                    "name": l.operator, "email": [], "logs": [{
                        "description": l.description, "log_id": l.id.to_base64(),
                        "key": b64.encode(&l.key), "url": l.url,
                        "state": {"usable": {"timestamp": 0}}
                    }]
                }));
        }
        // Operators repeat in this list; that is allowed (distinctness is by name).
        let list = LogList::from_json(&serde_json::to_vec(&json).unwrap()).unwrap();
        let data = signed_data(T, SignedEntry::X509 { leaf: LEAF }, &[]).unwrap();
        let mimic_sct = SctInput {
            sct: Sct {
                log_id: LogId::from_spki(&spki),
                timestamp: T,
                extensions: Vec::new(),
                hash_alg: 4,
                sig_alg: 3,
                signature: mimic.sign(&data).unwrap(),
            },
            source: SctSource::Embedded,
            signature: SignatureStatus::Valid,
        };
        let (nb, na) = cert(90);
        let r = CtPolicy::chrome().evaluate(
            &list,
            &[mimic_sct.clone(), embedded(&f, "A1", T)],
            nb,
            na,
            NOW_MS,
        );
        assert_eq!(reasons(&r), vec![Some(NotCounted::MimicLog), None]);
        assert_eq!(r.scts[0].log_description.as_deref(), Some("mimic"));
        assert!(!r.is_compliant());
        // Also refused when the list does not know it.
        let r = eval(&CtPolicy::chrome(), &f, &[mimic_sct], 90);
        assert_eq!(reasons(&r), vec![Some(NotCounted::MimicLog)]);
    }

    #[test]
    fn operator_is_taken_at_sct_time() {
        let change = T;
        let f = Fixture::new(vec![
            TestLog {
                name: "Moved",
                operator: "OpB",
                state: Some(("usable", 0)),
                tiled: false,
                previous: vec![("OpA", change)],
            },
            log("A1", "OpA", "usable", 0),
        ]);
        let p = CtPolicy::chrome();
        // Before the change the moved log was OpA's: same operator as A1.
        let r = eval(
            &p,
            &f,
            &[embedded(&f, "Moved", change - 1), embedded(&f, "A1", T)],
            90,
        );
        assert_eq!(r.scts[0].operator.as_deref(), Some("OpA"));
        assert_eq!(
            r.outcome,
            Err(PolicyFailure::TooFewOperators {
                source: SctSource::Embedded,
                required: 2,
                counted: 1
            })
        );
        // From the change on it is OpB's.
        let r = eval(
            &p,
            &f,
            &[embedded(&f, "Moved", change), embedded(&f, "A1", T)],
            90,
        );
        assert_eq!(r.scts[0].operator.as_deref(), Some("OpB"));
        assert_eq!(r.outcome, Ok(()));
    }

    #[test]
    fn setters_only_raise_and_never_go_below_the_floor() {
        let mut p = CtPolicy::chrome();
        assert_eq!(
            p.set_min_operators(1),
            Err(PolicyConfigError::BelowFloor {
                field: "min_operators",
                requested: 1,
                floor: 2
            })
        );
        assert_eq!(
            p.set_min_embedded_short(0),
            Err(PolicyConfigError::BelowFloor {
                field: "min_embedded_short",
                requested: 0,
                floor: 2
            })
        );
        assert_eq!(
            p.set_min_ocsp(1),
            Err(PolicyConfigError::BelowFloor {
                field: "min_ocsp",
                requested: 1,
                floor: 2
            })
        );
        assert_eq!(
            p.set_min_embedded_long(2),
            Err(PolicyConfigError::WouldLower {
                field: "min_embedded_long",
                current: 3,
                requested: 2
            })
        );
        assert_eq!(p, CtPolicy::chrome());
        p.set_min_embedded_long(3).unwrap();
        p.set_min_embedded_short(3).unwrap();
        p.set_min_ocsp(3).unwrap();
        p.set_min_operators(3).unwrap();
        assert_eq!(
            (
                p.min_embedded_short(),
                p.min_embedded_long(),
                p.min_ocsp(),
                p.min_operators()
            ),
            (3, 3, 3, 3)
        );
        assert_eq!(
            p.set_min_operators(2),
            Err(PolicyConfigError::WouldLower {
                field: "min_operators",
                current: 3,
                requested: 2
            })
        );
        // The raised policy is enforced.
        let f = standard();
        let scts = [
            embedded(&f, "A1", T),
            embedded(&f, "A2", T),
            embedded(&f, "B1", T),
        ];
        assert_eq!(eval(&CtPolicy::chrome(), &f, &scts, 90).outcome, Ok(()));
        assert_eq!(
            eval(&p, &f, &scts, 90).outcome,
            Err(PolicyFailure::TooFewOperators {
                source: SctSource::Embedded,
                required: 3,
                counted: 2
            })
        );
        let scts = [
            embedded(&f, "A1", T),
            embedded(&f, "B1", T),
            embedded(&f, "C1", T),
        ];
        assert_eq!(eval(&p, &f, &scts, 90).outcome, Ok(()));
        // A raised short count also raises the long one.
        let mut q = CtPolicy::chrome();
        q.set_min_embedded_short(4).unwrap();
        let four = [
            embedded(&f, "A1", T),
            embedded(&f, "A2", T),
            embedded(&f, "B1", T),
            embedded(&f, "C1", T),
        ];
        assert_eq!(
            eval(&q, &f, &four[..3], 300).outcome,
            Err(PolicyFailure::TooFewLogs {
                source: SctSource::Embedded,
                required: 4,
                counted: 3
            })
        );
        assert_eq!(eval(&q, &f, &four, 300).outcome, Ok(()));
    }

    #[test]
    fn apple_short_lived_caps_one_sct_per_operator() {
        let f = standard();
        let p = CtPolicy::apple();
        let r = eval(&p, &f, &[embedded(&f, "A1", T), embedded(&f, "A2", T)], 90);
        assert_eq!(
            reasons(&r),
            vec![
                None,
                Some(NotCounted::OperatorCapReached {
                    operator: "OpA".into(),
                    cap: 1
                })
            ]
        );
        assert_eq!(
            r.outcome,
            Err(PolicyFailure::TooFewLogs {
                source: SctSource::Embedded,
                required: 2,
                counted: 1
            })
        );
        let r = eval(&p, &f, &[embedded(&f, "A1", T), embedded(&f, "B1", T)], 90);
        assert_eq!(r.outcome, Ok(()));
    }

    #[test]
    fn apple_long_lived_needs_three_with_two_per_operator() {
        let f = standard();
        let p = CtPolicy::apple();
        let r = eval(
            &p,
            &f,
            &[
                embedded(&f, "A1", T),
                embedded(&f, "A2", T),
                embedded(&f, "B1", T),
            ],
            300,
        );
        assert_eq!(r.outcome, Ok(()));
        // Three from one operator: only two count.
        let f3 = Fixture::new(vec![
            log("A1", "OpA", "usable", 0),
            log("A2", "OpA", "usable", 0),
            log("A3", "OpA", "usable", 0),
            log("B1", "OpB", "usable", 0),
        ]);
        let r = eval(
            &p,
            &f3,
            &[
                embedded(&f3, "A1", T),
                embedded(&f3, "A2", T),
                embedded(&f3, "A3", T),
            ],
            300,
        );
        assert_eq!(
            r.scts[2].reason,
            Some(NotCounted::OperatorCapReached {
                operator: "OpA".into(),
                cap: 2
            })
        );
        assert_eq!(
            r.outcome,
            Err(PolicyFailure::TooFewLogs {
                source: SctSource::Embedded,
                required: 3,
                counted: 2
            })
        );
    }

    #[test]
    fn apple_lifetime_is_inclusive_days() {
        let f = standard();
        let p = CtPolicy::apple();
        let two = [embedded(&f, "A1", T), embedded(&f, "B1", T)];
        let nb = NOW_S - 86_400;
        // notBefore through notAfter inclusive = 180 days exactly: short-lived.
        let r = p.evaluate(&f.list, &two, nb, nb + 180 * 86_400 - 1, NOW_MS);
        assert_eq!(r.outcome, Ok(()));
        // A difference of exactly 180 days is 180 days and one second inclusive: 181 days.
        // (Chrome calls the same certificate short-lived.)
        let r = p.evaluate(&f.list, &two, nb, nb + 180 * 86_400, NOW_MS);
        assert_eq!(
            r.outcome,
            Err(PolicyFailure::TooFewLogs {
                source: SctSource::Embedded,
                required: 3,
                counted: 2
            })
        );
        assert!(CtPolicy::chrome()
            .evaluate(&f.list, &two, nb, nb + 180 * 86_400, NOW_MS)
            .is_compliant());
        // 398 days inclusive is covered, 399 is not.
        let three = [
            embedded(&f, "A1", T),
            embedded(&f, "B1", T),
            embedded(&f, "C1", T),
        ];
        let r = p.evaluate(&f.list, &three, nb, nb + 398 * 86_400 - 1, NOW_MS);
        assert_eq!(r.outcome, Ok(()));
        let r = p.evaluate(&f.list, &three, nb, nb + 398 * 86_400, NOW_MS);
        assert_eq!(
            r.outcome,
            Err(PolicyFailure::LifetimeTooLong {
                days: 399,
                max_days: 398
            })
        );
    }

    #[test]
    fn apple_cap_does_not_hide_the_current_or_rfc6962_sct() {
        let retired_at = T + DAY_MS;
        let f = Fixture::new(vec![
            log("RA", "OpA", "retired", retired_at),
            log("UA", "OpA", "usable", 0),
            log("RB", "OpB", "retired", retired_at),
            TestLog {
                name: "TA",
                operator: "OpC",
                state: Some(("usable", 0)),
                tiled: true,
                previous: Vec::new(),
            },
            TestLog {
                name: "TB",
                operator: "OpD",
                state: Some(("usable", 0)),
                tiled: true,
                previous: Vec::new(),
            },
            log("RC", "OpC", "usable", 0),
        ]);
        let p = CtPolicy::apple();
        // UA (current) is capped behind RA for OpA, but it is still an embedded SCT from a
        // currently approved log: Apple's first condition holds.
        let r = eval(
            &p,
            &f,
            &[
                embedded(&f, "RA", T),
                embedded(&f, "UA", T),
                embedded(&f, "RB", T),
            ],
            90,
        );
        assert!(matches!(
            r.scts[1].reason,
            Some(NotCounted::OperatorCapReached { .. })
        ));
        assert_eq!(r.outcome, Ok(()));
        // RC (RFC 6962) is capped behind the tiled TA for OpC: still presented, still fine.
        let r = eval(
            &p,
            &f,
            &[
                embedded(&f, "TA", T),
                embedded(&f, "RC", T),
                embedded(&f, "TB", T),
            ],
            90,
        );
        assert!(matches!(
            r.scts[1].reason,
            Some(NotCounted::OperatorCapReached { .. })
        ));
        assert_eq!(r.outcome, Ok(()));
        // Chrome counts both retired SCTs but needs a current log among them.
        let r = eval(
            &CtPolicy::chrome(),
            &f,
            &[embedded(&f, "RA", T), embedded(&f, "RB", T)],
            90,
        );
        assert_eq!(r.outcome, Err(PolicyFailure::NoCurrentLog));
    }

    #[test]
    fn apple_needs_an_rfc6962_log() {
        let f = Fixture::new(vec![
            TestLog {
                name: "T1",
                operator: "OpA",
                state: Some(("usable", 0)),
                tiled: true,
                previous: Vec::new(),
            },
            TestLog {
                name: "T2",
                operator: "OpB",
                state: Some(("usable", 0)),
                tiled: true,
                previous: Vec::new(),
            },
            log("R", "OpC", "usable", 0),
        ]);
        let p = CtPolicy::apple();
        let tiled_only = [embedded(&f, "T1", T), embedded(&f, "T2", T)];
        assert_eq!(
            eval(&p, &f, &tiled_only, 90).outcome,
            Err(PolicyFailure::NoRfc6962Log {
                source: SctSource::Embedded
            })
        );
        // Chrome has no such rule.
        assert_eq!(
            eval(&CtPolicy::chrome(), &f, &tiled_only, 90).outcome,
            Ok(())
        );
        assert_eq!(
            eval(&p, &f, &[embedded(&f, "T1", T), embedded(&f, "R", T)], 90).outcome,
            Ok(())
        );
    }

    #[test]
    fn apple_non_embedded_option_mixes_sources() {
        let retired_at = T + DAY_MS;
        let f = Fixture::new(vec![
            log("A1", "OpA", "usable", 0),
            log("A2", "OpA", "usable", 0),
            log("B1", "OpB", "usable", 0),
            log("R1", "OpC", "retired", retired_at),
        ]);
        let p = CtPolicy::apple();
        // One OCSP SCT plus one embedded SCT from current logs of distinct operators.
        let r = eval(&p, &f, &[embedded(&f, "A1", T), ocsp(&f, "B1", T)], 90);
        assert_eq!(r.outcome, Ok(()));
        // Chrome would refuse the same SCTs: neither set complies alone.
        assert!(!eval(
            &CtPolicy::chrome(),
            &f,
            &[embedded(&f, "A1", T), ocsp(&f, "B1", T)],
            90
        )
        .is_compliant());
        // The floor: two SCTs from one operator are not enough.
        let r = eval(&p, &f, &[embedded(&f, "A1", T), ocsp(&f, "A2", T)], 90);
        assert_eq!(
            r.outcome,
            Err(PolicyFailure::Neither {
                embedded: Box::new(PolicyFailure::TooFewLogs {
                    source: SctSource::Embedded,
                    required: 2,
                    counted: 1
                }),
                ocsp: Box::new(PolicyFailure::TooFewOperators {
                    source: SctSource::Ocsp,
                    required: 2,
                    counted: 1
                }),
            })
        );
        // The OCSP SCT must itself come from a currently approved log.
        let r = eval(
            &p,
            &f,
            &[
                ocsp(&f, "R1", T),
                embedded(&f, "A1", T),
                embedded(&f, "B1", T),
            ],
            90,
        );
        assert_eq!(r.outcome, Ok(())); // the embedded option complies
        let r = eval(&p, &f, &[ocsp(&f, "R1", T), embedded(&f, "A1", T)], 90);
        assert_eq!(
            r.outcome,
            Err(PolicyFailure::Neither {
                embedded: Box::new(PolicyFailure::TooFewLogs {
                    source: SctSource::Embedded,
                    required: 2,
                    counted: 1
                }),
                ocsp: Box::new(PolicyFailure::NoOcspSct),
            })
        );
    }

    #[test]
    fn apple_operator_cap_does_not_limit_the_non_embedded_option() {
        let f = standard();
        let mut p = CtPolicy::apple();
        p.set_min_ocsp(3).unwrap();
        // Short-lived: the embedded option counts one SCT per operator, so A2 is capped …
        let scts = [
            embedded(&f, "A1", T),
            embedded(&f, "A2", T),
            ocsp(&f, "B1", T),
        ];
        let r = eval(&p, &f, &scts, 90);
        assert_eq!(
            r.scts[1].reason,
            Some(NotCounted::OperatorCapReached {
                operator: "OpA".into(),
                cap: 1
            })
        );
        // … but the non-embedded option (3 current logs, one via OCSP) has no cap.
        assert_eq!(r.outcome, Ok(()));
        p.set_min_ocsp(4).unwrap();
        assert_eq!(
            eval(&p, &f, &scts, 90).outcome,
            Err(PolicyFailure::Neither {
                embedded: Box::new(PolicyFailure::TooFewLogs {
                    source: SctSource::Embedded,
                    required: 2,
                    counted: 1
                }),
                ocsp: Box::new(PolicyFailure::TooFewLogs {
                    source: SctSource::Ocsp,
                    required: 4,
                    counted: 3
                }),
            })
        );
    }

    #[test]
    fn report_serializes_with_refusal_and_displays_rules() {
        let f = standard();
        let r = eval(
            &CtPolicy::chrome(),
            &f,
            &[embedded(&f, "A1", T), embedded(&f, "A2", T)],
            90,
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["policy"], "chrome");
        assert_eq!(v["compliant"], false);
        assert_eq!(v["refusal"], "too_few_operators");
        assert_eq!(
            v["details"],
            serde_json::json!({"rule": "too_few_operators", "source": "embedded",
                               "required": 2, "counted": 1})
        );
        assert!(v["message"]
            .as_str()
            .unwrap()
            .starts_with("too few operators"));
        assert_eq!(v["scts"][0]["counted"], true);
        assert_eq!(v["scts"][0]["reason"], serde_json::Value::Null);
        assert_eq!(
            v["scts"][0]["signature"],
            serde_json::json!({"status": "valid"})
        );
        assert_eq!(v["scts"][0]["log_state"]["state"], "usable");
        assert_eq!(v["scts"][0]["operator"], "OpA");
        let text = r.to_string();
        assert!(text.starts_with("CT policy chrome: refused: too few operators"));
        assert!(text.contains("embedded SCT from A1"));
        assert!(text.contains(": counted"));

        let ok = eval(
            &CtPolicy::chrome(),
            &f,
            &[embedded(&f, "A1", T), embedded(&f, "B1", T)],
            90,
        );
        let v = serde_json::to_value(&ok).unwrap();
        assert_eq!(v["compliant"], true);
        assert_eq!(v["refusal"], serde_json::Value::Null);
        assert_eq!(v["details"], serde_json::Value::Null);
        assert!(ok.to_string().starts_with("CT policy chrome: compliant"));

        let dup = eval(
            &CtPolicy::chrome(),
            &f,
            &[embedded(&f, "A1", T), embedded(&f, "A1", T)],
            90,
        );
        let v = serde_json::to_value(&dup).unwrap();
        assert_eq!(
            v["scts"][1]["reason"],
            serde_json::json!({"rule": "duplicate_log"})
        );
        assert!(dup.to_string().contains("not counted (duplicate log"));
    }

    #[test]
    fn every_failure_display_names_its_rule() {
        let failures = [
            (PolicyFailure::NoScts, "no SCTs"),
            (
                PolicyFailure::TooFewLogs {
                    source: SctSource::Ocsp,
                    required: 2,
                    counted: 0,
                },
                "too few logs",
            ),
            (
                PolicyFailure::TooFewOperators {
                    source: SctSource::Embedded,
                    required: 2,
                    counted: 1,
                },
                "too few operators",
            ),
            (PolicyFailure::NoCurrentLog, "no current log"),
            (
                PolicyFailure::NoRfc6962Log {
                    source: SctSource::Embedded,
                },
                "no RFC 6962 log",
            ),
            (PolicyFailure::NoOcspSct, "no OCSP SCT"),
            (
                PolicyFailure::LifetimeTooLong {
                    days: 400,
                    max_days: 398,
                },
                "lifetime too long",
            ),
        ];
        for (failure, prefix) in failures {
            assert!(failure.to_string().starts_with(prefix), "{failure}");
            assert_eq!(
                serde_json::to_value(&failure).unwrap()["rule"],
                failure.code()
            );
        }
        let reasons = [
            (NotCounted::UnknownLog, "unknown log"),
            (NotCounted::MimicLog, "mimic log"),
            (NotCounted::InvalidSignature, "invalid signature"),
            (NotCounted::SignatureNotChecked, "signature not checked"),
            (NotCounted::FutureTimestamp, "future timestamp"),
            (NotCounted::LogHasNoState, "log has no state"),
            (NotCounted::LogPending, "log pending"),
            (NotCounted::LogRejected { rejected_ms: 0 }, "log rejected"),
            (
                NotCounted::LogRetiredBeforeSct { retired_ms: 0 },
                "log retired",
            ),
            (
                NotCounted::LogNotCurrentForOcsp { retired_ms: 0 },
                "log retired",
            ),
            (NotCounted::DuplicateLog, "duplicate log"),
            (
                NotCounted::OperatorCapReached {
                    operator: "X".into(),
                    cap: 1,
                },
                "operator cap",
            ),
        ];
        for (reason, prefix) in reasons {
            assert!(reason.to_string().starts_with(prefix), "{reason}");
        }
    }

    /// The bundled list, at a time when the logs of a real 2025 certificate were current:
    /// cert-duckduckgo (2025-11-19 → 2026-12-20, 3 SCTs: Argon2026h2, Wyvern2026h2,
    /// Sphinx2026h2) complies at 2026-11-26; cert-github's Argon2026h1 / Elephant2026h1
    /// SCTs do not count any more (those shards are rejected in the curated list).
    #[test]
    fn real_log_ids_with_the_bundled_list() {
        let list = LogList::bundled().unwrap();
        let input = |b64: &str, ts: u64| SctInput {
            sct: Sct {
                log_id: LogId(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .unwrap()
                        .try_into()
                        .unwrap(),
                ),
                timestamp: ts,
                extensions: Vec::new(),
                hash_alg: 4,
                sig_alg: 3,
                signature: vec![0x30, 0],
            },
            source: SctSource::Embedded,
            // These are the verified outcomes recorded in the shared vectors' sct-table.
            signature: SignatureStatus::Valid,
        };
        let ddg = [
            input(
                "1219ENGn9XfCx+lf1wC/+YLJM1pl4dCzAXMXwMjFaXc=",
                1_763_553_465_890,
            ),
            input(
                "wjF+V0UZo0XufzjespBB68fCIVoiv3/Vta12mtkOUs0=",
                1_763_553_465_939,
            ),
            input(
                "lE5Dh/rswe+B8xkkJqgYZQHH0184AgE/cmd9VTcuGdg=",
                1_763_553_465_959,
            ),
        ];
        // 2025-11-19T00:00:00Z → 2026-12-20T23:59:59Z.
        let r = CtPolicy::chrome().evaluate(&list, &ddg, 1_763_510_400, 1_797_811_199, NOW_MS);
        assert_eq!(r.outcome, Ok(()), "{r}");
        assert_eq!(r.scts[1].operator.as_deref(), Some("DigiCert"));
        let github = [
            input(
                "DleUvPOuqT4zGyyZB7P3kN+bwj1xMiXdIaklrGHFTiE=",
                1_767_657_802_478,
            ),
            input(
                "0W6ppWgHfmY1oD83pd28A6U8QRIU1IgY9ekxsyPLlQQ=",
                1_767_657_802_656,
            ),
        ];
        let r = CtPolicy::chrome().evaluate(&list, &github, 1_767_657_000, 1_775_347_200, NOW_MS);
        assert!(matches!(
            r.scts[0].reason,
            Some(NotCounted::LogRejected { .. })
        ));
        assert!(!r.is_compliant());
    }
}
