//! `LogList::from_json` on (a) arbitrary bytes and (b) structured mutations of real lists:
//! the first input byte picks the mode; in (b) the rest drives edits (delete, replace with
//! a number / string / null / bool, duplicate, copy another node) on the JSON tree of
//! ctdns's bundled list or the test PKI's list before it is serialized and loaded.
//!
//! Never panics; a loaded list indexes every log by `SHA-256(key)`, keeps previous
//! operators sorted, and answers the staleness and operator queries.
#![no_main]

use std::sync::OnceLock;

use ctdns::ct::log_list::{LogList, StalenessPolicy};
use ctdns::ct::LogId;
use ctdns_fuzz::PKI_LOG_LIST_JSON;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const BUNDLED: &[u8] = include_bytes!("../../crates/ctdns-verify/certs/ct_log_list.json");

fn bases() -> &'static [Value; 2] {
    static BASES: OnceLock<[Value; 2]> = OnceLock::new();
    BASES.get_or_init(|| {
        [
            serde_json::from_slice(BUNDLED).expect("bundled list is JSON"),
            serde_json::from_slice(PKI_LOG_LIST_JSON).expect("test PKI list is JSON"),
        ]
    })
}

/// A byte cursor that yields zeros once exhausted.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }
    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |acc, _| acc << 8 | u64::from(self.u8()))
    }
    fn slice(&mut self) -> &[u8] {
        let n = usize::from(self.u8()).min(self.0.len());
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        s
    }
}

/// The node reached by following up to `depth` choices from `root`.
fn pick<'v>(root: &'v mut Value, b: &mut Bytes<'_>) -> &'v mut Value {
    let depth = b.u8() % 6;
    let mut node = root;
    for _ in 0..depth {
        let choice = usize::from(b.u8());
        let has_child = match &*node {
            Value::Object(m) => !m.is_empty(),
            Value::Array(a) => !a.is_empty(),
            _ => false,
        };
        if !has_child {
            break;
        }
        node = match node {
            Value::Object(m) => {
                let len = m.len();
                m.values_mut().nth(choice % len).expect("index below len")
            }
            Value::Array(a) => {
                let len = a.len();
                &mut a[choice % len]
            }
            _ => unreachable!("has_child checked"),
        };
    }
    node
}

fn mutate(root: &mut Value, b: &mut Bytes<'_>) {
    let op = b.u8() % 8;
    let donor = pick(&mut root.clone(), b).clone();
    let node = pick(root, b);
    match op {
        0 => *node = Value::Null,
        1 => *node = Value::from(b.u64()),
        2 => *node = Value::from(b.u64() as i64),
        3 => *node = Value::from(f64::from_bits(b.u64())),
        4 => *node = Value::String(String::from_utf8_lossy(b.slice()).into_owned()),
        5 => *node = Value::Bool(b.u8() & 1 == 1),
        6 => match node {
            // Duplicate an element (e.g. a log, an operator, a previous operator).
            Value::Array(a) if !a.is_empty() => {
                let i = usize::from(b.u8()) % a.len();
                let dup = a[i].clone();
                a.push(dup);
            }
            // Remove a field.
            Value::Object(m) if !m.is_empty() => {
                let i = usize::from(b.u8()) % m.len();
                let key = m.keys().nth(i).cloned().expect("index below len");
                m.remove(&key);
            }
            _ => *node = donor,
        },
        _ => *node = donor,
    }
}

fn check(list: &LogList) {
    for log in list.logs() {
        assert_eq!(
            LogId::from_spki(&log.key),
            log.id,
            "log id is not SHA-256(key)"
        );
        assert!(list.get(&log.id).is_some_and(|l| l.id == log.id));
        assert!(
            log.previous_operators
                .windows(2)
                .all(|w| w[0].end_time_ms <= w[1].end_time_ms),
            "previous operators not sorted"
        );
        for t in [0, u64::MAX, 1_700_000_000_000] {
            let _ = log.operator_at(t);
            if let Some(state) = &log.state {
                let _ = (state.is_current_at(t), state.since_ms(), state.retired_ms());
            }
        }
    }
    for now in [0, u64::MAX, 1_793_491_200_000] {
        let _ = list.age(now);
        let _ = StalenessPolicy::default().check(list, now);
    }
    let _ = (list.version(), list.timestamp_ms(), list.format());
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        if let Ok(list) = LogList::from_json(rest) {
            check(&list);
        }
        return;
    }
    let mut value = bases()[usize::from(mode >> 1) % 2].clone();
    let mut b = Bytes(rest);
    let edits = 1 + b.u8() % 4;
    for _ in 0..edits {
        mutate(&mut value, &mut b);
    }
    let json = serde_json::to_vec(&value).expect("Value serializes");
    if let Ok(list) = LogList::from_json(&json) {
        check(&list);
    }
});
