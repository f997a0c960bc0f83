//! Which SCTs can count: per-SCT exclusion rules (unknown, mimic, pending, rejected or
//! stateless logs; invalid signatures; future timestamps; retired logs after retirement),
//! one count per log, and an optional per-operator cap. Both policies select through here.

use std::collections::{HashMap, HashSet};

use super::report::{NotCounted, SctVerdict};
use super::{SctInput, SignatureStatus};
use crate::ct::log_list::{Log, LogList, LogState};
use crate::ct::{LogId, SctSource};

/// Per-SCT bookkeeping during one evaluation.
pub(super) struct Evaluation<'a> {
    pub(super) logs: &'a LogList,
    pub(super) inputs: &'a [SctInput],
    pub(super) now_ms: u64,
    pub(super) verdicts: Vec<SctVerdict>,
}

impl<'a> Evaluation<'a> {
    pub(super) fn new(logs: &'a LogList, inputs: &'a [SctInput], now_ms: u64) -> Self {
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

    pub(super) fn has(&self, source: SctSource) -> bool {
        self.inputs.iter().any(|i| i.source == source)
    }

    pub(super) fn log(&self, i: usize) -> Option<&'a Log> {
        self.inputs
            .get(i)
            .and_then(|input| self.logs.get(&input.sct.log_id))
    }

    pub(super) fn source(&self, i: usize) -> SctSource {
        self.inputs.get(i).map_or(SctSource::Embedded, |s| s.source)
    }

    pub(super) fn operator(&self, i: usize) -> Option<&'a str> {
        let input = self.inputs.get(i)?;
        Some(self.log(i)?.operator_at(input.sct.timestamp))
    }

    pub(super) fn is_current(&self, log: &Log) -> bool {
        log.state.is_some_and(|s| s.is_current_at(self.now_ms))
    }

    /// Why SCT `input` cannot count, on its own, for its delivery source.
    pub(super) fn exclusion(&self, input: &SctInput) -> Option<NotCounted> {
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
    pub(super) fn select(
        &mut self,
        source: SctSource,
        per_operator_cap: Option<usize>,
    ) -> Selection {
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
pub(super) struct Selection {
    /// Those that count towards the number of logs (first per log, within any cap).
    pub(super) counted: Vec<usize>,
    /// Every SCT not excluded by a rule or as a duplicate (`counted` plus capped ones).
    pub(super) eligible: Vec<usize>,
}
