//! Policy tests, fed the way the policy is: log metadata (a list from [`LogListBuilder`]),
//! SCT timestamps and sources, and the caller's [`SignatureStatus`] for each SCT. No key is
//! generated and nothing is signed: the policy never reads a signature, only the verdict.
//! End-to-end runs with real keys and signatures are `tests/ct_policy.rs` and
//! `tests/vectors_policy.rs`.

use base64::Engine;

use super::*;
use crate::ct::log_list::{Log, LogListBuilder, LogState, PreviousOperator};
use crate::ct::LogId;

const DAY_MS: u64 = 86_400_000;
/// 2026-11-26T00:00:00Z, the time of check of most tests.
const NOW_MS: u64 = 1_795_651_200_000;
const NOW_S: u64 = NOW_MS / 1000;

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

/// Stand-in key bytes of the log `name`: the policy only needs the id (SHA-256 of them).
fn key_of(name: &str) -> Vec<u8> {
    format!("test key of log {name}").into_bytes()
}

fn id_of(name: &str) -> LogId {
    LogId::from_spki(&key_of(name))
}

fn state(name: &str, since_ms: u64) -> LogState {
    match name {
        "pending" => LogState::Pending { since_ms },
        "qualified" => LogState::Qualified { since_ms },
        "usable" => LogState::Usable { since_ms },
        "readonly" => LogState::ReadOnly { since_ms },
        "retired" => LogState::Retired { since_ms },
        "rejected" => LogState::Rejected { since_ms },
        other => panic!("no state {other}"),
    }
}

/// A log list built in code.
struct Fixture {
    list: LogList,
}

impl Fixture {
    fn new(logs: Vec<TestLog>) -> Self {
        let mut builder = LogListBuilder::new()
            .version("test")
            .timestamp_ms(NOW_MS - DAY_MS);
        for l in logs {
            let mut log = Log::new(l.name, l.operator, key_of(l.name));
            log.state = l.state.map(|(name, since)| state(name, since));
            log.tiled = l.tiled;
            log.url = if l.tiled {
                "https://tiled.example/".into()
            } else {
                "https://log.example/".into()
            };
            log.mmd = Some(86_400);
            log.previous_operators = l
                .previous
                .iter()
                .map(|&(name, end_time_ms)| PreviousOperator {
                    name: name.into(),
                    end_time_ms,
                })
                .collect();
            builder = builder.log(log);
        }
        Self {
            list: builder.build().unwrap(),
        }
    }

    /// An SCT from log `name` at `timestamp` whose signature the caller found valid (or,
    /// for a log the list does not have, could not check), as the glue code hands it in.
    fn sct(&self, name: &str, source: SctSource, timestamp: u64) -> SctInput {
        let id = id_of(name);
        let signature = if self.list.get(&id).is_some() {
            SignatureStatus::Valid
        } else {
            SignatureStatus::NotChecked
        };
        sct_input(id, source, timestamp, signature)
    }

    /// The same SCT with the caller's verdict `signature`.
    fn sct_with(
        &self,
        name: &str,
        source: SctSource,
        timestamp: u64,
        signature: SignatureStatus,
    ) -> SctInput {
        SctInput {
            signature,
            ..self.sct(name, source, timestamp)
        }
    }
}

/// An SCT by `id`; its signature bytes are a placeholder the policy never reads.
fn sct_input(id: LogId, source: SctSource, timestamp: u64, signature: SignatureStatus) -> SctInput {
    SctInput {
        sct: Sct {
            log_id: id,
            timestamp,
            extensions: Vec::new(),
            hash_alg: crate::ct::sct::HASH_SHA256,
            sig_alg: crate::ct::sct::SIG_ECDSA,
            signature: vec![0x30, 0x00],
        },
        source,
        signature,
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
fn fixture_logs_are_listed_by_id_without_real_keys() {
    let f = standard();
    assert_eq!(f.list.logs().len(), 5);
    let a1 = f.list.get(&id_of("A1")).unwrap();
    assert_eq!(a1.operator, "OpA");
    assert_eq!(a1.state, Some(LogState::Usable { since_ms: 0 }));
    assert_eq!(f.list.version(), Some("test"));
    assert!(f.list.get(&id_of("Z")).is_none());
    // Only the verdict decides: the same SCT counts when Valid, never otherwise.
    for (status, want) in [
        (SignatureStatus::Valid, None),
        (
            SignatureStatus::Invalid { reason: "r".into() },
            Some(NotCounted::InvalidSignature),
        ),
        (
            SignatureStatus::NotChecked,
            Some(NotCounted::SignatureNotChecked),
        ),
    ] {
        let sct = f.sct_with("A1", SctSource::Embedded, T, status);
        let r = eval(&CtPolicy::chrome(), &f, &[sct], 90);
        assert_eq!(reasons(&r), vec![want]);
    }
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
    let bad = f.sct_with(
        "A1",
        SctSource::Embedded,
        T,
        SignatureStatus::Invalid {
            reason: "ECDSA verification failed".into(),
        },
    );
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
    // A log the list does not have: the caller had no key, so could not check.
    let unknown = f.sct("Z", SctSource::Embedded, T);
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
    use rcgen::PublicKeyData;
    // The mimic log's id is SHA-256 of its published public key (parsed, not generated).
    let mimic_pem = include_str!("../../../../../tests/data/ct-vectors/mimics/mimic1.pem");
    let spki = rcgen::KeyPair::from_pem(mimic_pem)
        .unwrap()
        .subject_public_key_info();
    let f = standard();
    // A list that carries the mimic log as usable, from its own operator.
    let mut mimic = Log::new("mimic", "Mimic Operator", spki.clone());
    mimic.state = Some(LogState::Usable { since_ms: 0 });
    mimic.url = "https://m/".into();
    let mut builder = LogListBuilder::new().log(mimic);
    for l in f.list.logs() {
        builder = builder.log(l.clone());
    }
    let list = builder.build().unwrap();
    assert!(list.get(&LogId::from_spki(&spki)).unwrap().is_mimic());
    let mimic_sct = sct_input(
        LogId::from_spki(&spki),
        SctSource::Embedded,
        T,
        SignatureStatus::Valid,
    );
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

#[test]
fn configured_minimums_only_raise_and_name_the_setting() {
    let p = CtPolicy::with_minimums(PolicyKind::Chrome, Some(3), Some(3)).unwrap();
    assert_eq!(p.min_embedded_short(), 3);
    assert_eq!(p.min_embedded_long(), 3);
    assert_eq!(p.min_ocsp(), 3);
    assert_eq!(p.min_operators(), 3);
    // A minimum below what the policy already asks leaves it as it is.
    let p = CtPolicy::with_minimums(PolicyKind::Chrome, Some(2), None).unwrap();
    assert_eq!(
        p.min_embedded_long(),
        CtPolicy::chrome().min_embedded_long()
    );
    for (logs, ops, field) in [
        (Some(1), None, "min_logs"),
        (None, Some(1), "min_operators"),
    ] {
        let e = CtPolicy::with_minimums(PolicyKind::Apple, logs, ops).unwrap_err();
        assert_eq!(e.field(), field);
        assert!(
            matches!(e, PolicyConfigError::BelowFloor { floor: 2, .. }),
            "{e}"
        );
    }
}

#[test]
fn policy_names_parse_and_print_back() {
    for kind in [PolicyKind::Chrome, PolicyKind::Apple] {
        assert_eq!(kind.to_string().parse::<PolicyKind>(), Ok(kind));
    }
    assert_eq!(
        "Chrome".parse::<PolicyKind>(),
        Err(UnknownPolicy("Chrome".into()))
    );
}
