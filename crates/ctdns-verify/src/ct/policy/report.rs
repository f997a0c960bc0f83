//! What a policy evaluation reports: one [`SctVerdict`] per SCT (counted, or the
//! [`NotCounted`] rule that excluded it) and the outcome, `Ok` or the [`PolicyFailure`]
//! naming the rule not met, together in a [`CtReport`].

use std::fmt;

use serde::ser::SerializeStruct;

use super::{PolicyKind, SignatureStatus};
use crate::ct::log_list::{fmt_ms, LogState};
use crate::ct::SctSource;

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
