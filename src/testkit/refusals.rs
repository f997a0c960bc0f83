//! A [`RefusalObserver`] that records every refusal a verifier reports, for tests and the
//! demo to show which rule refused which upstream.

use std::sync::{Mutex, PoisonError};

use crate::tls::verifier::{RefusalEvent, RefusalObserver};

/// A refusal the verifier reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedRefusal {
    /// The verifier's label (e.g. `dot://127.0.0.1:853`).
    pub label: String,
    /// The rule that failed, e.g. `issuer-pin`.
    pub rule: &'static str,
    /// The full refusal message.
    pub message: String,
}

/// Collects the refusals of one or more verifiers.
#[derive(Debug, Default)]
pub struct RefusalLog {
    seen: Mutex<Vec<ObservedRefusal>>,
}

impl RefusalLog {
    /// Every refusal so far, oldest first.
    pub fn refusals(&self) -> Vec<ObservedRefusal> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every refusal so far as `(label, rule, message)`, oldest first.
    pub fn entries(&self) -> Vec<(String, &'static str, String)> {
        self.refusals()
            .into_iter()
            .map(|r| (r.label, r.rule, r.message))
            .collect()
    }
}

impl RefusalObserver for RefusalLog {
    fn refused(&self, event: &RefusalEvent<'_>) {
        if let Some(r) = &event.decision.refusal {
            self.seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(ObservedRefusal {
                    label: event.label.to_owned(),
                    rule: r.rule(),
                    message: r.to_string(),
                });
        }
    }
}
