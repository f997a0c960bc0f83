//! CT log lists: which logs exist, their keys, operators and states.
//!
//! [`LogList::from_json`] reads every public log-list flavour seen in the field:
//!
//! * Chrome's v3 `log_list.json` and `all_logs_list.json` (RFC 3339 timestamps, `logs` and
//!   `tiled_logs` with `submission_url`/`monitoring_url`, logs of `all_logs_list.json` that
//!   have no `state`);
//! * the Android variant, whose timestamps are integer milliseconds;
//! * Apple's schema, whose states carry an extra `version` and which has no
//!   `log_list_timestamp`.
//!
//! Every timestamp field accepts either form, so mixed lists load too.
//!
//! The document is read into the serde types of [`schema`] (the same ones the test PKI writes
//! its lists with), then checked into [`Log`]s. A JSON type error while reading becomes the
//! typed [`LogListError`] for its path: `operators[0].logs[1].mmd` holding a string is
//! [`LogListError::WrongType`] naming `mmd` and that log's description (or
//! `operators[0].logs[1]` when the description cannot be read).
//!
//! ## What loading checks, and why a bad entry rejects the whole list
//!
//! For every log, the `key` must be base64 of a DER `SubjectPublicKeyInfo` and the declared
//! `log_id` must equal SHA-256 of that key; log ids must be unique. Any failure rejects the
//! **whole list** with a [`LogListError`] naming the log. A log list is one trust input: an
//! entry whose id does not match its key, or whose key is not a key, means the file was
//! corrupted or edited by hand, and nothing says which of its other entries can still be
//! believed. Loading the remainder would make the set of trusted logs silently differ from
//! the file the operator reviewed; refusing it is loud, and ctdns is fail-closed either way
//! (it never falls back to plain DNS). certificate-transparency-go's `loglist3` test fixture
//! is the example: its "Racketeer" log has a `log_id` that is SHA-256 of its `key`, but the
//! key is 64 raw bytes rather than a DER SPKI, so that fixture is refused with
//! [`LogListError::BadKey`] naming "Google 'Racketeer' log".
//!
//! ## Mimic logs
//!
//! Google adds two "mimic" logs, whose private keys it published, to the lists it serves to
//! third-party libraries ([`MIMIC_LOG_IDS`]). They may load as part of a list, but
//! [`Log::is_mimic`] marks them and the policy never counts their SCTs.
//!
//! ## ctdns's own list
//!
//! [`LogList::bundled`] loads `certs/ct_log_list.json`, ctdns's own curated list (see
//! `certs/README.md`): Chrome's lists may not be used for enforcement outside Chrome.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use base64::Engine;

use crate::ct::LogId;

pub mod schema;

use schema::{LogEntry, LogListJson, Operator, StateBody, Timestamp};

/// Base64 log ids of the two "mimic" logs whose private keys Google published
/// (`mimics/mimic1.pem`, `mimics/mimic2.pem` in GoogleChrome/CertificateTransparency).
/// An SCT from either never counts, whatever list the log appears in.
pub const MIMIC_LOG_IDS: [&str; 2] = [
    "9EGV1vAOLbVUNcrdV3iS5T4VrUFwWPh44U/2uRh0FYk=",
    "si9+3rWvav5QPeBAgbLXTBJThJL+3yyypSZQPO9TztI=",
];

/// Whether `id` is one of the [`MIMIC_LOG_IDS`].
pub fn is_mimic(id: &LogId) -> bool {
    let b64 = id.to_base64();
    MIMIC_LOG_IDS.iter().any(|m| *m == b64)
}

/// The JSON of ctdns's own curated log list, compiled into the binary.
pub const BUNDLED_LOG_LIST_JSON: &[u8] = include_bytes!("../../certs/ct_log_list.json");

const DAY_MS: u64 = 86_400_000;

/// Why a log list was refused. Each variant names the field and, where there is one, the log
/// (its `description`, or its position such as `operators[2].logs[5]` when it has none).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogListError {
    /// The bytes are not JSON.
    #[error("log list: not valid JSON (line {line}, column {column})")]
    Json {
        /// 1-based line of the syntax error.
        line: usize,
        /// 1-based column of the syntax error.
        column: usize,
    },
    /// The JSON is not shaped like any known log list (no `operators` array).
    #[error("log list: unknown schema: {reason}")]
    UnknownSchema {
        /// What is missing or wrong at the top level.
        reason: &'static str,
    },
    /// A required field is absent.
    #[error("log list: {log}: missing field `{field}`")]
    MissingField {
        /// The absent field.
        field: &'static str,
        /// The log or operator it was missing from.
        log: String,
    },
    /// A field has the wrong JSON type.
    #[error("log list: {log}: field `{field}` is not {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// The log or operator, or `log list` for top-level fields.
        log: String,
        /// The JSON type expected.
        expected: &'static str,
    },
    /// A base64 field does not decode.
    #[error("log list: {log}: field `{field}` is not valid base64")]
    BadBase64 {
        /// `key` or `log_id`.
        field: &'static str,
        /// The log.
        log: String,
    },
    /// The `key` decodes but is not a DER `SubjectPublicKeyInfo`.
    #[error("log list: {log}: `key` is not a DER SubjectPublicKeyInfo ({reason})")]
    BadKey {
        /// The log.
        log: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The declared `log_id` is not SHA-256 of the log's `key`.
    #[error("log list: {log}: log_id {declared} does not match SHA-256(key) = {computed}")]
    LogIdMismatch {
        /// The log.
        log: String,
        /// The `log_id` as written in the list.
        declared: String,
        /// Base64 SHA-256 of the decoded key.
        computed: String,
    },
    /// A timestamp is neither RFC 3339 text nor non-negative integer milliseconds.
    #[error("log list: {log}: field `{field}` is not a valid timestamp")]
    BadTimestamp {
        /// The field.
        field: &'static str,
        /// The log, or `log list` for `log_list_timestamp`.
        log: String,
    },
    /// A `temporal_interval` whose start is not before its end.
    #[error("log list: {log}: temporal_interval start is not before its end")]
    BadTemporalInterval {
        /// The log.
        log: String,
    },
    /// A `state` object that does not hold exactly one known state.
    #[error("log list: {log}: unknown log state `{found}`")]
    UnknownState {
        /// The log.
        log: String,
        /// The keys found in the `state` object, comma-separated.
        found: String,
    },
    /// A JSON type error at a path no variant above covers (a fallback: every field of
    /// [`schema`] maps to one of them).
    #[error("log list: {path}: {detail}")]
    Invalid {
        /// The JSON path, e.g. `operators[0].logs[1]...`.
        path: String,
        /// What serde reported.
        detail: String,
    },
    /// Two logs share one log id.
    #[error("log list: log id {log_id} appears twice ({first} and {second})")]
    DuplicateLogId {
        /// The shared id, base64.
        log_id: String,
        /// The first log with it.
        first: String,
        /// The second log with it.
        second: String,
    },
}

/// A log's state and when it entered it (Unix milliseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum LogState {
    /// Applied for inclusion; its SCTs never count.
    Pending {
        /// When the log entered this state.
        since_ms: u64,
    },
    /// Accepted, not yet usable by CAs; its SCTs count.
    Qualified {
        /// When the log entered this state.
        since_ms: u64,
    },
    /// Accepted and in service; its SCTs count.
    Usable {
        /// When the log entered this state.
        since_ms: u64,
    },
    /// Frozen (no new entries) but trusted; its SCTs count.
    #[serde(rename = "readonly")]
    ReadOnly {
        /// When the log entered this state.
        since_ms: u64,
    },
    /// No longer trusted for new SCTs: embedded SCTs issued before `since_ms` still count.
    Retired {
        /// The retirement time.
        since_ms: u64,
    },
    /// Never trusted (or no longer at all); its SCTs never count.
    Rejected {
        /// When the log entered this state.
        since_ms: u64,
    },
}

impl LogState {
    /// When the log entered this state (Unix milliseconds).
    pub fn since_ms(&self) -> u64 {
        match *self {
            LogState::Pending { since_ms }
            | LogState::Qualified { since_ms }
            | LogState::Usable { since_ms }
            | LogState::ReadOnly { since_ms }
            | LogState::Retired { since_ms }
            | LogState::Rejected { since_ms } => since_ms,
        }
    }

    /// The state's name as log lists spell it (`readonly`, not `read_only`).
    pub fn name(&self) -> &'static str {
        match self {
            LogState::Pending { .. } => "pending",
            LogState::Qualified { .. } => "qualified",
            LogState::Usable { .. } => "usable",
            LogState::ReadOnly { .. } => "readonly",
            LogState::Retired { .. } => "retired",
            LogState::Rejected { .. } => "rejected",
        }
    }

    /// The retirement time, when the log is retired.
    pub fn retired_ms(&self) -> Option<u64> {
        match *self {
            LogState::Retired { since_ms } => Some(since_ms),
            _ => None,
        }
    }

    /// Whether the log is trusted at `now_ms`: qualified, usable or readonly — or retired
    /// with a retirement time still in the future (as Chrome treats a scheduled retirement).
    pub fn is_current_at(&self, now_ms: u64) -> bool {
        match *self {
            LogState::Qualified { .. } | LogState::Usable { .. } | LogState::ReadOnly { .. } => {
                true
            }
            LogState::Retired { since_ms } => now_ms < since_ms,
            LogState::Pending { .. } | LogState::Rejected { .. } => false,
        }
    }
}

impl fmt::Display for LogState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} since {}", self.name(), fmt_ms(self.since_ms()))
    }
}

/// An operator that ran a log before its current one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviousOperator {
    /// The operator's name, as in the list's `operators[].name`.
    pub name: String,
    /// The last moment (Unix milliseconds, exclusive) this operator ran the log.
    pub end_time_ms: u64,
}

/// One CT log from a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Log {
    /// SHA-256 of [`Log::key`]; how SCTs name the log.
    pub id: LogId,
    /// The log's public key, DER `SubjectPublicKeyInfo`.
    pub key: Vec<u8>,
    /// Human-readable name, e.g. `Google 'Argon2026h2' log`.
    pub description: String,
    /// The current operator (the `name` of the `operators[]` entry holding the log).
    pub operator: String,
    /// Earlier operators, sorted by `end_time_ms`.
    pub previous_operators: Vec<PreviousOperator>,
    /// The state, or `None` for lists that carry logs without one (test or
    /// monitoring-only logs in `all_logs_list.json`); such logs never count.
    pub state: Option<LogState>,
    /// `[start, end)` of the certificate expiry times the log accepts, Unix milliseconds.
    pub temporal_interval: Option<(u64, u64)>,
    /// The RFC 6962 URL, or a tiled log's `submission_url`.
    pub url: String,
    /// A tiled log's `monitoring_url`.
    pub monitoring_url: Option<String>,
    /// Whether the log is a static-ct-api (tiled) log rather than an RFC 6962 one.
    pub tiled: bool,
    /// Maximum merge delay in seconds.
    pub mmd: Option<u64>,
}

impl Log {
    /// A log named `description`, run by `operator`, with public key `key` (DER
    /// `SubjectPublicKeyInfo`) and the id SHA-256 of it; no state, URL or interval yet (set
    /// the public fields). For building lists in code ([`LogListBuilder`]).
    pub fn new(description: impl Into<String>, operator: impl Into<String>, key: Vec<u8>) -> Log {
        Log {
            id: LogId::from_spki(&key),
            key,
            description: description.into(),
            operator: operator.into(),
            previous_operators: Vec::new(),
            state: None,
            temporal_interval: None,
            url: String::new(),
            monitoring_url: None,
            tiled: false,
            mmd: None,
        }
    }

    /// The operator of this log at `timestamp_ms` (an SCT's timestamp): the first previous
    /// operator whose `end_time_ms` is after the timestamp, else the current operator.
    pub fn operator_at(&self, timestamp_ms: u64) -> &str {
        self.previous_operators
            .iter()
            .find(|p| timestamp_ms < p.end_time_ms)
            .map_or(self.operator.as_str(), |p| p.name.as_str())
    }

    /// Whether this is one of the [`MIMIC_LOG_IDS`], whose SCTs never count.
    pub fn is_mimic(&self) -> bool {
        is_mimic(&self.id)
    }
}

/// Which flavour of log list was loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogListFormat {
    /// Chrome v3 `log_list.json` (and lists in that schema, such as ctdns's own).
    ChromeV3,
    /// Chrome v3 `all_logs_list.json` (`"is_all_logs": true`).
    ChromeAllLogs,
    /// The Android variant: `log_list_timestamp` is integer milliseconds.
    Android,
    /// Apple's schema (`$schema` on valid.apple.com, states with a `version`).
    Apple,
}

/// The top-level field of a ctdns-curated list that dates its newest source data.
pub const DATA_TIMESTAMP_FIELD: &str = "ctdns_data_timestamp";

/// A loaded, checked log list with an index by log id.
#[derive(Clone, Debug)]
pub struct LogList {
    version: Option<String>,
    timestamp_ms: Option<u64>,
    data_timestamp_ms: Option<u64>,
    format: LogListFormat,
    logs: Vec<Log>,
    by_id: HashMap<LogId, usize>,
}

impl LogList {
    /// Parse and check a log list (see the module docs for what is checked).
    pub fn from_json(bytes: &[u8]) -> Result<LogList, LogListError> {
        let doc: LogListJson = read_doc(bytes)?;
        Self::from_schema(&doc)
    }

    /// Check an already deserialized list, as [`LogList::from_json`] does after reading it.
    pub fn from_schema(doc: &LogListJson) -> Result<LogList, LogListError> {
        let operators = operators_of(doc)?;
        let mut list = meta_from_schema(doc)?;
        for (oi, op) in operators.iter().enumerate() {
            let op_path = format!("operators[{oi}]");
            let op_name = op
                .name
                .as_deref()
                .ok_or_else(|| LogListError::MissingField {
                    field: "name",
                    log: op_path.clone(),
                })?;
            for (kind, tiled, entries) in [
                ("logs", false, &op.logs),
                ("tiled_logs", true, &op.tiled_logs),
            ] {
                for (li, entry) in entries.iter().flatten().enumerate() {
                    let path = format!("{op_path}.{kind}[{li}]");
                    list.logs
                        .push(log_from_entry(entry, &path, op_name, tiled)?);
                }
            }
        }
        list.index()
    }

    /// Load a list the way `ctdns log-list check` needs when [`LogList::from_json`] refuses
    /// it: the top-level fields and every log entry are checked **on their own**, so that
    /// every broken entry is reported rather than only the first. `Err` only when the
    /// document is not JSON or not shaped like a log list at the top or operator level.
    pub fn check_entries(bytes: &[u8]) -> Result<EntryReport, LogListError> {
        let doc: LogListJson<Box<serde_json::value::RawValue>> = read_doc(bytes)?;
        let operators = operators_of(&doc)?;
        let mut errors = Vec::new();
        let meta = match meta_from_schema(&doc).and_then(LogListBuilder::index) {
            Ok(meta) => Some(meta),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let mut logs: Vec<Log> = Vec::new();
        for (oi, op) in operators.iter().enumerate() {
            let op_path = format!("operators[{oi}]");
            let Some(op_name) = op.name.as_deref() else {
                errors.push(LogListError::MissingField {
                    field: "name",
                    log: op_path,
                });
                continue;
            };
            for (kind, tiled, entries) in [
                ("logs", false, &op.logs),
                ("tiled_logs", true, &op.tiled_logs),
            ] {
                for (li, raw) in entries.iter().flatten().enumerate() {
                    let path = format!("{op_path}.{kind}[{li}]");
                    let mut de = serde_json::Deserializer::from_str(raw.get());
                    let parsed = serde_path_to_error::deserialize::<_, LogEntry>(&mut de)
                        .map_err(|e| {
                            let name = serde_json::from_str::<schema_names::NamedEntry>(raw.get())
                                .ok()
                                .and_then(|n| n.description);
                            let inner: Vec<Seg<'_>> = e.path().iter().map(Seg::of).collect();
                            let full = format!("{path}{}", dotted_suffix(&e.path().to_string()));
                            entry_error(&inner, &path, name, tiled, &full, &e.inner().to_string())
                        })
                        .and_then(|entry| log_from_entry(&entry, &path, op_name, tiled));
                    match parsed {
                        Ok(log) => logs.push(log),
                        Err(e) => errors.push(e),
                    }
                }
            }
        }
        // Duplicates among the entries that loaded, as the parser reports them.
        let mut first: HashMap<LogId, usize> = HashMap::new();
        let mut unique: Vec<Log> = Vec::with_capacity(logs.len());
        for log in logs {
            match first.get(&log.id).and_then(|&i| unique.get(i)) {
                Some(earlier) => errors.push(LogListError::DuplicateLogId {
                    log_id: log.id.to_base64(),
                    first: earlier.description.clone(),
                    second: log.description.clone(),
                }),
                None => {
                    first.insert(log.id, unique.len());
                    unique.push(log);
                }
            }
        }
        Ok(EntryReport {
            meta,
            logs: unique,
            errors,
        })
    }

    /// ctdns's own curated list (`certs/ct_log_list.json`, compiled in). Its parse is
    /// covered by a unit test, so an error here means the file was edited without running
    /// the tests.
    pub fn bundled() -> Result<LogList, LogListError> {
        Self::from_json(BUNDLED_LOG_LIST_JSON)
    }

    /// The log with this id.
    pub fn get(&self, id: &LogId) -> Option<&Log> {
        self.by_id.get(id).and_then(|&i| self.logs.get(i))
    }

    /// All logs, in list order (operators in order, `logs` before `tiled_logs`).
    pub fn logs(&self) -> &[Log] {
        &self.logs
    }

    /// The list's `version`, when it has one.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The list's `log_list_timestamp` (Unix milliseconds), when it has one.
    pub fn timestamp_ms(&self) -> Option<u64> {
        self.timestamp_ms
    }

    /// The date of the newest data the list was built from (ctdns's
    /// `ctdns_data_timestamp`, Unix milliseconds), when it says; lists from elsewhere do not.
    pub fn data_timestamp_ms(&self) -> Option<u64> {
        self.data_timestamp_ms
    }

    /// What freshness counts from: the data date when the list has one, else
    /// `log_list_timestamp`. A list curated today from months-old sources is months old.
    pub fn freshness_timestamp_ms(&self) -> Option<u64> {
        self.data_timestamp_ms.or(self.timestamp_ms)
    }

    /// Which flavour of list this was.
    pub fn format(&self) -> LogListFormat {
        self.format
    }

    /// How old the list's data is at `now_ms` (zero if in the future), counted from
    /// [`LogList::freshness_timestamp_ms`], or `None` when the list has no timestamp.
    pub fn age(&self, now_ms: u64) -> Option<Duration> {
        self.freshness_timestamp_ms()
            .map(|t| Duration::from_millis(now_ms.saturating_sub(t)))
    }
}

/// What [`LogList::check_entries`] found.
#[derive(Clone, Debug)]
pub struct EntryReport {
    /// The list's top-level fields (version, dates, format) as a list without logs, when
    /// they are valid.
    pub meta: Option<LogList>,
    /// Every log entry that loads on its own (the first of each log id).
    pub logs: Vec<Log>,
    /// Every problem, in list order; duplicate log ids last.
    pub errors: Vec<LogListError>,
}

/// Builds a [`LogList`] from [`Log`] values in code (tests, tools), with the checks
/// [`LogList::from_json`] applies after reading each entry: every log id is SHA-256 of its
/// key ([`LogListError::LogIdMismatch`]) and no two logs share one
/// ([`LogListError::DuplicateLogId`]). Unlike a JSON list, the key is not required to be a
/// DER `SubjectPublicKeyInfo`: nothing but SCT signature checks reads it, and a policy test
/// hands in signature verdicts directly.
#[derive(Clone, Debug)]
pub struct LogListBuilder {
    version: Option<String>,
    timestamp_ms: Option<u64>,
    data_timestamp_ms: Option<u64>,
    format: LogListFormat,
    logs: Vec<Log>,
}

impl Default for LogListBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LogListBuilder {
    /// An empty Chrome-v3-style list without version or dates.
    pub fn new() -> Self {
        Self {
            version: None,
            timestamp_ms: None,
            data_timestamp_ms: None,
            format: LogListFormat::ChromeV3,
            logs: Vec::new(),
        }
    }

    /// Set the list's `version`.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Set the list's `log_list_timestamp` (Unix milliseconds).
    pub fn timestamp_ms(mut self, ms: u64) -> Self {
        self.timestamp_ms = Some(ms);
        self
    }

    /// Set the list's data date (`ctdns_data_timestamp`, Unix milliseconds).
    pub fn data_timestamp_ms(mut self, ms: u64) -> Self {
        self.data_timestamp_ms = Some(ms);
        self
    }

    /// Add a log (kept in the order added).
    pub fn log(mut self, log: Log) -> Self {
        self.logs.push(log);
        self
    }

    /// Check the logs and index them.
    pub fn build(self) -> Result<LogList, LogListError> {
        for log in &self.logs {
            let computed = LogId::from_spki(&log.key);
            if computed != log.id {
                return Err(LogListError::LogIdMismatch {
                    log: log.description.clone(),
                    declared: log.id.to_base64(),
                    computed: computed.to_base64(),
                });
            }
        }
        self.index()
    }

    /// Index the logs by id, refusing duplicates (ids already checked against the keys).
    fn index(self) -> Result<LogList, LogListError> {
        let mut by_id: HashMap<LogId, usize> = HashMap::with_capacity(self.logs.len());
        for (i, log) in self.logs.iter().enumerate() {
            if let Some(first) = by_id.get(&log.id).and_then(|&f| self.logs.get(f)) {
                return Err(LogListError::DuplicateLogId {
                    log_id: log.id.to_base64(),
                    first: first.description.clone(),
                    second: log.description.clone(),
                });
            }
            by_id.insert(log.id, i);
        }
        Ok(LogList {
            version: self.version,
            timestamp_ms: self.timestamp_ms,
            data_timestamp_ms: self.data_timestamp_ms,
            format: self.format,
            logs: self.logs,
            by_id,
        })
    }
}

const LIST: &str = "log list";

/// Deserialize the document, mapping serde's errors to typed ones by their JSON path.
fn read_doc<L: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<LogListJson<L>, LogListError> {
    let syntax = |e: &serde_json::Error| LogListError::Json {
        line: e.line(),
        column: e.column(),
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let doc: LogListJson<L> = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        if !e.inner().is_data() {
            return syntax(e.inner());
        }
        let segs: Vec<Seg<'_>> = e.path().iter().map(Seg::of).collect();
        let detail = e.inner().to_string();
        error_at(&segs, &e.path().to_string(), &detail, |oi, tiled, li| {
            schema_names::description(bytes, oi, tiled, li)
        })
    })?;
    de.end().map_err(|e| syntax(&e))?;
    Ok(doc)
}

fn operators_of<L>(doc: &LogListJson<L>) -> Result<&[Operator<L>], LogListError> {
    doc.operators.as_deref().ok_or(LogListError::UnknownSchema {
        reason: "no `operators` member",
    })
}

/// The top-level fields as a builder without logs.
fn meta_from_schema<L>(doc: &LogListJson<L>) -> Result<LogListBuilder, LogListError> {
    let stamp = |t: &Option<Timestamp>, field: &'static str| {
        t.as_ref()
            .map(|t| {
                t.to_unix_ms().ok_or(LogListError::BadTimestamp {
                    field,
                    log: LIST.into(),
                })
            })
            .transpose()
    };
    let timestamp_ms = stamp(&doc.log_list_timestamp, "log_list_timestamp")?;
    // ctdns's own lists also say how new their *data* is (the newest source they were
    // built from), which can be months older than the day they were curated.
    let data_timestamp_ms = stamp(&doc.data_timestamp, DATA_TIMESTAMP_FIELD)?;
    let apple_schema = doc
        .schema
        .as_deref()
        .is_some_and(|s| s.contains("apple.com"));
    let format = if apple_schema || doc.asset_version.is_some() {
        LogListFormat::Apple
    } else if matches!(doc.log_list_timestamp, Some(Timestamp::Millis(_))) {
        LogListFormat::Android
    } else if doc.is_all_logs == Some(true) {
        LogListFormat::ChromeAllLogs
    } else {
        LogListFormat::ChromeV3
    };
    Ok(LogListBuilder {
        version: doc.version.clone(),
        timestamp_ms,
        data_timestamp_ms,
        format,
        logs: Vec::new(),
    })
}

/// One log entry, checked: key, id, URLs, state, interval, previous operators.
fn log_from_entry(
    entry: &LogEntry,
    path: &str,
    operator: &str,
    tiled: bool,
) -> Result<Log, LogListError> {
    let description = entry
        .description
        .clone()
        .ok_or_else(|| LogListError::MissingField {
            field: "description",
            log: path.into(),
        })?;
    let name = description.as_str();
    let missing = |field: &'static str| LogListError::MissingField {
        field,
        log: name.into(),
    };

    let key_b64 = entry.key.as_deref().ok_or_else(|| missing("key"))?;
    let key = b64(key_b64).ok_or_else(|| LogListError::BadBase64 {
        field: "key",
        log: name.into(),
    })?;
    check_spki(&key).map_err(|reason| LogListError::BadKey {
        log: name.into(),
        reason,
    })?;
    let id = LogId::from_spki(&key);
    let declared_b64 = entry.log_id.as_deref().ok_or_else(|| missing("log_id"))?;
    let declared = b64(declared_b64).ok_or_else(|| LogListError::BadBase64 {
        field: "log_id",
        log: name.into(),
    })?;
    if declared.as_slice() != id.0.as_slice() {
        return Err(LogListError::LogIdMismatch {
            log: name.into(),
            declared: declared_b64.into(),
            computed: id.to_base64(),
        });
    }

    let (url, monitoring_url) = if tiled {
        let url = entry.submission_url.clone();
        (
            url.ok_or_else(|| missing("submission_url"))?,
            entry.monitoring_url.clone(),
        )
    } else {
        (entry.url.clone().ok_or_else(|| missing("url"))?, None)
    };

    let state = entry
        .state
        .as_ref()
        .map(|s| state_from_schema(s, name))
        .transpose()?;

    let temporal_interval = match &entry.temporal_interval {
        None => None,
        Some(ti) => {
            let start = req_ms(&ti.start_inclusive, "start_inclusive", name)?;
            let end = req_ms(&ti.end_exclusive, "end_exclusive", name)?;
            if start >= end {
                return Err(LogListError::BadTemporalInterval { log: name.into() });
            }
            Some((start, end))
        }
    };

    let mut previous_operators = entry
        .previous_operators
        .iter()
        .flatten()
        .map(|p| {
            Ok(PreviousOperator {
                name: p.name.clone().ok_or_else(|| missing("name"))?,
                end_time_ms: req_ms(&p.end_time, "end_time", name)?,
            })
        })
        .collect::<Result<Vec<_>, LogListError>>()?;
    previous_operators.sort_by_key(|p| p.end_time_ms);

    Ok(Log {
        id,
        key,
        description,
        operator: operator.to_string(),
        previous_operators,
        state,
        temporal_interval,
        url,
        monitoring_url,
        tiled,
        mmd: entry.mmd,
    })
}

fn state_from_schema(
    state: &BTreeMap<String, StateBody>,
    log: &str,
) -> Result<LogState, LogListError> {
    let mut entries = state.iter();
    let (name, body) = match (entries.next(), entries.next()) {
        (Some(one), None) => one,
        _ => {
            return Err(LogListError::UnknownState {
                log: log.into(),
                found: state
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            })
        }
    };
    let since_ms = req_ms(&body.timestamp, "state.timestamp", log)?;
    Ok(match name.as_str() {
        "pending" => LogState::Pending { since_ms },
        "qualified" => LogState::Qualified { since_ms },
        "usable" => LogState::Usable { since_ms },
        "readonly" => LogState::ReadOnly { since_ms },
        "retired" => LogState::Retired { since_ms },
        "rejected" => LogState::Rejected { since_ms },
        other => {
            return Err(LogListError::UnknownState {
                log: log.into(),
                found: other.into(),
            })
        }
    })
}

/// A DER `SubjectPublicKeyInfo` with nothing after it.
fn check_spki(key: &[u8]) -> Result<(), &'static str> {
    use x509_parser::prelude::FromDer;
    match x509_parser::x509::SubjectPublicKeyInfo::from_der(key) {
        Ok(([], _)) => Ok(()),
        Ok(_) => Err("trailing bytes after the SubjectPublicKeyInfo"),
        Err(_) => Err("does not parse"),
    }
}

fn b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// A required timestamp → Unix milliseconds.
fn req_ms(t: &Option<Timestamp>, field: &'static str, log: &str) -> Result<u64, LogListError> {
    t.as_ref()
        .ok_or_else(|| LogListError::MissingField {
            field,
            log: log.into(),
        })?
        .to_unix_ms()
        .ok_or_else(|| LogListError::BadTimestamp {
            field,
            log: log.into(),
        })
}

/// One step of the JSON path of a serde error.
#[derive(Clone, Copy, Debug)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
    Other,
}

impl<'a> Seg<'a> {
    fn of(s: &'a serde_path_to_error::Segment) -> Self {
        match s {
            serde_path_to_error::Segment::Map { key } => Seg::Key(key),
            serde_path_to_error::Segment::Seq { index } => Seg::Index(*index),
            _ => Seg::Other,
        }
    }
}

/// serde_path_to_error writes the root as `.`; inside an entry, the suffix after its path.
fn dotted_suffix(inner: &str) -> String {
    match inner {
        "." | "" => String::new(),
        p if p.starts_with('[') => p.to_string(),
        p => format!(".{p}"),
    }
}

/// Top-level fields, what each must be.
const TOP_FIELDS: [(&str, &str); 4] = [
    ("version", "a string"),
    ("$schema", "a string"),
    ("assetVersion", "a non-negative integer"),
    ("is_all_logs", "a boolean"),
];
/// Top-level timestamps.
const TOP_TIMESTAMPS: [&str; 2] = ["log_list_timestamp", DATA_TIMESTAMP_FIELD];
/// Operator fields.
const OPERATOR_FIELDS: [(&str, &str); 4] = [
    ("name", "a string"),
    ("email", "an array of strings"),
    ("logs", "an array"),
    ("tiled_logs", "an array"),
];
/// Plain log-entry fields (the nested ones are matched by shape in [`entry_error`]).
const LOG_FIELDS: [(&str, &str); 8] = [
    ("description", "a string"),
    ("log_id", "a string"),
    ("key", "a string"),
    ("url", "a string"),
    ("submission_url", "a string"),
    ("monitoring_url", "a string"),
    ("log_type", "a string"),
    ("mmd", "a non-negative integer"),
];

fn lookup(
    table: &[(&'static str, &'static str)],
    key: &str,
) -> Option<(&'static str, &'static str)> {
    table.iter().copied().find(|(name, _)| *name == key)
}

/// The typed error for a serde error at `path` (`shown` is the path as text, `detail`
/// serde's message, both for [`LogListError::Invalid`]). `name` finds a log's description
/// by operator index, tiled or not, and entry index.
fn error_at(
    path: &[Seg<'_>],
    shown: &str,
    detail: &str,
    name: impl FnOnce(usize, bool, usize) -> Option<String>,
) -> LogListError {
    let invalid = || LogListError::Invalid {
        path: shown.to_string(),
        detail: detail.to_string(),
    };
    match path {
        [] => LogListError::UnknownSchema {
            reason: "top level is not a JSON object",
        },
        [Seg::Key("operators")] => LogListError::UnknownSchema {
            reason: "`operators` is not an array",
        },
        [Seg::Key(k)] => {
            if let Some(field) = TOP_TIMESTAMPS.iter().copied().find(|f| f == k) {
                return LogListError::BadTimestamp {
                    field,
                    log: LIST.into(),
                };
            }
            match lookup(&TOP_FIELDS, k) {
                Some((field, expected)) => LogListError::WrongType {
                    field,
                    log: LIST.into(),
                    expected,
                },
                None => invalid(),
            }
        }
        [Seg::Key("operators"), Seg::Index(oi), rest @ ..] => {
            let op_path = format!("operators[{oi}]");
            match rest {
                [] => LogListError::WrongType {
                    field: "operators[]",
                    log: op_path,
                    expected: "an object",
                },
                [Seg::Key(kind @ ("logs" | "tiled_logs")), Seg::Index(li), rest @ ..] => {
                    let tiled = *kind == "tiled_logs";
                    let path = format!("{op_path}.{kind}[{li}]");
                    let log = if rest.is_empty() {
                        None
                    } else {
                        name(*oi, tiled, *li)
                    };
                    entry_error(rest, &path, log, tiled, shown, detail)
                }
                [Seg::Key(k), ..] => match lookup(&OPERATOR_FIELDS, k) {
                    Some((field, expected)) => LogListError::WrongType {
                        field,
                        log: op_path,
                        expected,
                    },
                    None => invalid(),
                },
                _ => invalid(),
            }
        }
        _ => invalid(),
    }
}

/// The typed error for a serde error at `rest` inside the log entry at `path` (named `name`
/// when its description could be read).
fn entry_error(
    rest: &[Seg<'_>],
    path: &str,
    name: Option<String>,
    tiled: bool,
    shown: &str,
    detail: &str,
) -> LogListError {
    let log = name.unwrap_or_else(|| path.to_string());
    let wrong = |field: &'static str, expected: &'static str| LogListError::WrongType {
        field,
        log: log.clone(),
        expected,
    };
    let bad_time = |field: &'static str| LogListError::BadTimestamp {
        field,
        log: log.clone(),
    };
    match rest {
        [] => LogListError::WrongType {
            field: if tiled { "tiled_logs[]" } else { "logs[]" },
            log: path.to_string(),
            expected: "an object",
        },
        [Seg::Key("state")] => wrong("state", "an object"),
        [Seg::Key("state"), Seg::Key(_)] => wrong("state", "an object holding `timestamp`"),
        [Seg::Key("state"), Seg::Key(_), Seg::Key("timestamp")] => bad_time("state.timestamp"),
        [Seg::Key("state"), Seg::Key(_), Seg::Key("version")] => wrong("state.version", "a string"),
        [Seg::Key("state"), Seg::Key(_), Seg::Key("final_tree_head"), ..] => wrong(
            "state.final_tree_head",
            "an object of `sha256_root_hash` (a string) and `tree_size` (an integer)",
        ),
        [Seg::Key("temporal_interval")] => wrong("temporal_interval", "an object"),
        [Seg::Key("temporal_interval"), Seg::Key("start_inclusive")] => bad_time("start_inclusive"),
        [Seg::Key("temporal_interval"), Seg::Key("end_exclusive")] => bad_time("end_exclusive"),
        [Seg::Key("previous_operators")] => wrong("previous_operators", "an array"),
        [Seg::Key("previous_operators"), Seg::Index(_)] => {
            wrong("previous_operators[]", "an object")
        }
        [Seg::Key("previous_operators"), Seg::Index(_), Seg::Key("name")] => {
            wrong("name", "a string")
        }
        [Seg::Key("previous_operators"), Seg::Index(_), Seg::Key("end_time")] => {
            bad_time("end_time")
        }
        [Seg::Key(k)] => match lookup(&LOG_FIELDS, k) {
            Some((field, expected)) => wrong(field, expected),
            None => LogListError::Invalid {
                path: shown.to_string(),
                detail: detail.to_string(),
            },
        },
        _ => LogListError::Invalid {
            path: shown.to_string(),
            detail: detail.to_string(),
        },
    }
}

/// Just enough of the schema to name the log a serde error is in.
mod schema_names {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        operators: Vec<Op>,
    }

    #[derive(Deserialize)]
    struct Op {
        #[serde(default)]
        logs: Option<Vec<NamedEntry>>,
        #[serde(default)]
        tiled_logs: Option<Vec<NamedEntry>>,
    }

    /// A log entry's description, whatever else it holds.
    #[derive(Deserialize)]
    pub(super) struct NamedEntry {
        #[serde(default)]
        pub(super) description: Option<String>,
    }

    /// The description of entry `li` of operator `oi`, if the document is shaped well
    /// enough to find it.
    pub(super) fn description(bytes: &[u8], oi: usize, tiled: bool, li: usize) -> Option<String> {
        let doc: Doc = serde_json::from_slice(bytes).ok()?;
        let op = doc.operators.get(oi)?;
        let entries = if tiled { &op.tiled_logs } else { &op.logs };
        entries.as_ref()?.get(li)?.description.clone()
    }
}

/// Unix milliseconds as RFC 3339 (for messages); the raw number if out of range.
pub fn fmt_ms(ms: u64) -> String {
    let formatted = i128::from(ms)
        .checked_mul(1_000_000)
        .and_then(|ns| time::OffsetDateTime::from_unix_timestamp_nanos(ns).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
    formatted.unwrap_or_else(|| format!("{ms} ms"))
}

/// Result of a freshness check of a log list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Staleness {
    /// Younger than the configured maximum age.
    Fresh,
    /// Older than the maximum age: warn loudly (enforcement goes on unless configured to
    /// refuse).
    Stale {
        /// How old the list is.
        age: Duration,
    },
    /// The list has no `log_list_timestamp` (Apple's list, for one).
    Unknown,
}

/// A stale list refused under [`StalenessPolicy::refuse_when_stale`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StalenessError {
    /// The list is older than the maximum age.
    #[error("CT log list is {age_days} days old, more than the maximum of {max_age_days} days")]
    Stale {
        /// Age in whole days.
        age_days: u64,
        /// The configured maximum, in whole days.
        max_age_days: u64,
    },
    /// The list has no timestamp, so its freshness cannot be shown.
    #[error("CT log list has no log_list_timestamp, so its freshness cannot be checked")]
    UnknownAge,
}

/// How old a log list may be.
///
/// Chrome stops *enforcing* CT when its list is more than 70 days old; ctdns never stops
/// enforcing. By default a stale list is reported as [`Staleness::Stale`] (the caller warns
/// loudly) and enforcement continues with it; with `refuse_when_stale` the check fails
/// instead, and so does a list without a timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StalenessPolicy {
    /// Maximum age before the list counts as stale (default 70 days, as Chrome).
    pub max_age: Duration,
    /// Refuse (rather than warn about) a stale or undated list. Default `false`.
    pub refuse_when_stale: bool,
}

impl Default for StalenessPolicy {
    fn default() -> Self {
        Self {
            max_age: Duration::from_millis(70 * DAY_MS),
            refuse_when_stale: false,
        }
    }
}

impl StalenessPolicy {
    /// Check `list` at `now_ms` (Unix milliseconds).
    pub fn check(&self, list: &LogList, now_ms: u64) -> Result<Staleness, StalenessError> {
        match list.age(now_ms) {
            None if self.refuse_when_stale => Err(StalenessError::UnknownAge),
            None => Ok(Staleness::Unknown),
            Some(age) if age <= self.max_age => Ok(Staleness::Fresh),
            Some(age) if self.refuse_when_stale => Err(StalenessError::Stale {
                age_days: age.as_secs() / 86_400,
                max_age_days: self.max_age.as_secs() / 86_400,
            }),
            Some(age) => Ok(Staleness::Stale { age }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    macro_rules! list_file {
        ($name:literal) => {
            include_bytes!(concat!(
                "../../../../tests/data/ct-vectors/loglists/",
                $name
            ))
            .as_slice()
        };
    }

    const C86: &[u8] = list_file!("chrome_log_list_v86.4_2026-06-23.json");
    const C80: &[u8] = list_file!("chrome_log_list_v80.4_2025-12-23.json");
    const A53: &[u8] = list_file!("chrome_all_logs_list_v53.34_2025-05-05.json");
    const A26: &[u8] = list_file!("chrome_all_logs_list_2026-08_mcpherrinm_noversion.json");
    const ANDROID: &[u8] = list_file!("android_log_list_v85.28_2026-03-27.json");
    const APPLE: &[u8] = list_file!("apple_current_log_list_2026-04-01.json");
    const FIXTURE: &[u8] =
        include_bytes!("../../../../tests/data/ct-vectors/google-ct-go/loglist3-test-fixture.json");

    fn id(b64: &str) -> LogId {
        let v = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        LogId(v.try_into().unwrap())
    }

    fn ms(rfc3339: &str) -> u64 {
        schema::Timestamp::Rfc3339(rfc3339.into())
            .to_unix_ms()
            .unwrap()
    }

    fn count_logs(json: &[u8]) -> usize {
        let v: Value = serde_json::from_slice(json).unwrap();
        v["operators"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                o.get("logs").and_then(Value::as_array).map_or(0, Vec::len)
                    + o.get("tiled_logs")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len)
            })
            .sum()
    }

    const ARGON_2026H1: &str = "DleUvPOuqT4zGyyZB7P3kN+bwj1xMiXdIaklrGHFTiE=";
    const OAK_2026H2: &str = "rKswcGzr7IQx9BPS9JFfER5CJEOx8qaMTzwrO6ceAsM=";

    #[test]
    fn chrome_v86_log_list() {
        let l = LogList::from_json(C86).unwrap();
        assert_eq!(l.format(), LogListFormat::ChromeV3);
        assert_eq!(l.version(), Some("86.4"));
        assert_eq!(l.timestamp_ms(), Some(ms("2026-06-23T13:36:44Z")));
        assert_eq!(l.logs().len(), count_logs(C86));
        assert_eq!(l.logs().len(), 62);
        let argon = l.get(&id(ARGON_2026H1)).unwrap();
        assert_eq!(argon.description, "Google 'Argon2026h1' log");
        assert_eq!(argon.operator, "Google");
        assert!(!argon.tiled);
        assert_eq!(argon.mmd, Some(86400));
        assert_eq!(
            argon.state,
            Some(LogState::Usable {
                since_ms: ms("2024-09-30T22:19:27Z")
            })
        );
        assert_eq!(
            argon.temporal_interval,
            Some((ms("2026-01-01T00:00:00Z"), ms("2026-07-01T00:00:00Z")))
        );
        let oak = l.get(&id(OAK_2026H2)).unwrap();
        assert_eq!(
            oak.state.unwrap().retired_ms(),
            Some(ms("2026-02-28T00:00:00Z"))
        );
        // Tiled logs: submission_url becomes `url`, monitoring_url is kept.
        let parcel = l
            .get(&id("utuIpG+cr6QJDoLlk1bbbni0pT9YLbCBl5UkLym2jJg="))
            .unwrap();
        assert!(parcel.tiled);
        assert_eq!(
            parcel.url,
            "https://parcelyard2026h2.prod.certificate.transparency.goog/"
        );
        assert!(parcel
            .monitoring_url
            .as_deref()
            .unwrap()
            .contains("storage.googleapis.com"));
        assert!(matches!(parcel.state, Some(LogState::Qualified { .. })));
        assert_eq!(l.logs().iter().filter(|l| l.tiled).count(), 27);
        // The index agrees with the vector for every log.
        for log in l.logs() {
            assert_eq!(l.get(&log.id), Some(log));
            assert_eq!(log.id, LogId::from_spki(&log.key));
        }
    }

    #[test]
    fn chrome_v80_log_list() {
        let l = LogList::from_json(C80).unwrap();
        assert_eq!(l.version(), Some("80.4"));
        assert_eq!(l.logs().len(), count_logs(C80));
        assert_eq!(l.logs().len(), 75);
        let oak = l.get(&id(OAK_2026H2)).unwrap();
        assert!(matches!(oak.state, Some(LogState::ReadOnly { .. })));
    }

    #[test]
    fn chrome_all_logs_lists() {
        let l = LogList::from_json(A53).unwrap();
        assert_eq!(l.format(), LogListFormat::ChromeAllLogs);
        assert_eq!(l.version(), Some("53.34"));
        assert_eq!(l.logs().len(), count_logs(A53));
        assert_eq!(l.logs().len(), 181);
        // all_logs_list.json carries logs without a state.
        assert!(l.logs().iter().any(|log| log.state.is_none()));
        let rocketeer = l
            .get(&id("7ku9t3XOYLrhQmkfq+GeZqMPfl+wctiDAMR7iXqo/cs="))
            .unwrap();
        assert!(matches!(rocketeer.state, Some(LogState::Rejected { .. })));

        let l = LogList::from_json(A26).unwrap();
        assert_eq!(l.format(), LogListFormat::ChromeAllLogs);
        assert_eq!(l.version(), None);
        assert_eq!(l.timestamp_ms(), None);
        assert_eq!(l.age(1), None);
        assert_eq!(l.logs().len(), count_logs(A26));
        assert_eq!(l.logs().len(), 117);
        assert_eq!(
            l.get(&id(ARGON_2026H1)).unwrap().state,
            Some(LogState::Rejected {
                since_ms: ms("2026-07-09T13:40:00Z")
            })
        );
    }

    #[test]
    fn android_log_list_uses_integer_milliseconds() {
        let l = LogList::from_json(ANDROID).unwrap();
        assert_eq!(l.format(), LogListFormat::Android);
        assert_eq!(l.version(), Some("85.28"));
        assert_eq!(l.timestamp_ms(), Some(1_774_619_093_000));
        assert_eq!(l.logs().len(), count_logs(ANDROID));
        assert_eq!(l.logs().len(), 56);
        // Same instants as Chrome's RFC 3339 text for the same log.
        let chrome = LogList::from_json(C86).unwrap();
        let a = l.get(&id(ARGON_2026H1)).unwrap();
        let c = chrome.get(&id(ARGON_2026H1)).unwrap();
        assert_eq!(a.state, c.state);
        assert_eq!(a.temporal_interval, c.temporal_interval);
        assert_eq!(a.key, c.key);
    }

    #[test]
    fn apple_log_list_with_state_versions_and_no_timestamp() {
        let l = LogList::from_json(APPLE).unwrap();
        assert_eq!(l.format(), LogListFormat::Apple);
        assert_eq!(l.version(), Some("511"));
        assert_eq!(l.timestamp_ms(), None);
        assert_eq!(l.logs().len(), count_logs(APPLE));
        assert_eq!(l.logs().len(), 166);
        let argon = l.get(&id(ARGON_2026H1)).unwrap();
        assert_eq!(
            argon.state,
            Some(LogState::Usable {
                since_ms: ms("2024-11-26T18:08:02Z")
            })
        );
        let luoshu = l
            .get(&id("VzRIzG4dLA3JS2nyh9Hv5IPHolxQxTILuzrep29usEE="))
            .unwrap();
        assert!(matches!(luoshu.state, Some(LogState::Pending { .. })));
        assert!(luoshu.tiled);
        // Apple names this operator differently from Chrome.
        let gouda = l
            .get(&id("GoudaUpXmMiZoMqIvfSPwLRWYMzDYA0fcfRp/8fRrKM="))
            .unwrap();
        assert_eq!(gouda.operator, "IPng GmbH");
    }

    /// The Go fixture's "Racketeer" key is 64 raw bytes, not a DER SPKI (its log_id is
    /// SHA-256 of those bytes): the whole list is refused, naming the log.
    #[test]
    fn go_fixture_racketeer_rejects_the_whole_list() {
        let err = LogList::from_json(FIXTURE).unwrap_err();
        assert_eq!(
            err,
            LogListError::BadKey {
                log: "Google 'Racketeer' log".into(),
                reason: "does not parse"
            }
        );
        assert!(err.to_string().contains("Racketeer"));
    }

    #[test]
    fn go_fixture_without_racketeer_loads() {
        let mut v: Value = serde_json::from_slice(FIXTURE).unwrap();
        let logs = v["operators"][0]["logs"].as_array_mut().unwrap();
        logs.retain(|l| l["description"] != "Google 'Racketeer' log");
        let l = LogList::from_json(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(l.version(), Some("9.4"));
        assert_eq!(l.logs().len(), 5);
        // Fractional seconds in a timestamp: 13:24:18.33.
        let aviator = l
            .get(&id("aPaY+B9kgr46jO65KB1M/HFRXWeT1ETRCmesu09P+8Q="))
            .unwrap();
        assert_eq!(
            aviator.state,
            Some(LogState::ReadOnly {
                since_ms: ms("2016-11-30T13:24:18Z") + 330
            })
        );
        let bob = l
            .get(&id("zbUXm3/BwEb+6jETaj+PAC5hgvr4iW/syLL1tatgSQA="))
            .unwrap();
        assert_eq!(bob.operator, "Bob's CT Log Shop");
        assert_eq!(bob.url, "https://log.bob.io");
        assert_eq!(
            bob.state.unwrap().retired_ms(),
            Some(ms("2016-04-15T00:00:00Z"))
        );
    }

    fn edit(json: &[u8], f: impl FnOnce(&mut Value)) -> Vec<u8> {
        let mut v: Value = serde_json::from_slice(json).unwrap();
        f(&mut v);
        serde_json::to_vec(&v).unwrap()
    }

    fn first_log(v: &mut Value) -> &mut Value {
        &mut v["operators"][0]["logs"][0]
    }

    #[test]
    fn log_id_mismatch_names_the_log() {
        let bad = edit(C86, |v| {
            first_log(v)["log_id"] = "1219ENGn9XfCx+lf1wC/+YLJM1pl4dCzAXMXwMjFaXc=".into();
        });
        assert_eq!(
            LogList::from_json(&bad).unwrap_err(),
            LogListError::LogIdMismatch {
                log: "Google 'Argon2026h1' log".into(),
                declared: "1219ENGn9XfCx+lf1wC/+YLJM1pl4dCzAXMXwMjFaXc=".into(),
                computed: ARGON_2026H1.into(),
            }
        );
        // A declared id of the wrong length is a mismatch too.
        let short = edit(C86, |v| first_log(v)["log_id"] = "AAAA".into());
        assert!(matches!(
            LogList::from_json(&short),
            Err(LogListError::LogIdMismatch { .. })
        ));
    }

    #[test]
    fn duplicate_log_id_is_refused() {
        let dup = edit(C86, |v| {
            let copy = v["operators"][0]["logs"][0].clone();
            v["operators"][1]["logs"].as_array_mut().unwrap().push(copy);
        });
        assert_eq!(
            LogList::from_json(&dup).unwrap_err(),
            LogListError::DuplicateLogId {
                log_id: ARGON_2026H1.into(),
                first: "Google 'Argon2026h1' log".into(),
                second: "Google 'Argon2026h1' log".into(),
            }
        );
    }

    #[test]
    fn malformed_fields_are_typed_errors() {
        let argon = || "Google 'Argon2026h1' log".to_string();
        let cases: Vec<(Vec<u8>, LogListError)> = vec![
            (
                edit(C86, |v| first_log(v)["key"] = "not base64!".into()),
                LogListError::BadBase64 {
                    field: "key",
                    log: argon(),
                },
            ),
            (
                edit(C86, |v| first_log(v)["log_id"] = "%%%".into()),
                LogListError::BadBase64 {
                    field: "log_id",
                    log: argon(),
                },
            ),
            (
                edit(C86, |v| {
                    first_log(v).as_object_mut().unwrap().remove("url");
                }),
                LogListError::MissingField {
                    field: "url",
                    log: argon(),
                },
            ),
            (
                edit(C86, |v| {
                    first_log(v).as_object_mut().unwrap().remove("description");
                }),
                LogListError::MissingField {
                    field: "description",
                    log: "operators[0].logs[0]".into(),
                },
            ),
            (
                edit(C86, |v| {
                    v["operators"][0]["tiled_logs"][0]
                        .as_object_mut()
                        .unwrap()
                        .remove("submission_url");
                }),
                LogListError::MissingField {
                    field: "submission_url",
                    log: "Google 'ParcelYard2026h2' log".into(),
                },
            ),
            (
                edit(C86, |v| {
                    first_log(v)["state"] =
                        serde_json::json!({"usable": {"timestamp": "yesterday"}})
                }),
                LogListError::BadTimestamp {
                    field: "state.timestamp",
                    log: argon(),
                },
            ),
            (
                edit(C86, |v| {
                    first_log(v)["state"] = serde_json::json!({"usable": {"timestamp": -5}})
                }),
                LogListError::BadTimestamp {
                    field: "state.timestamp",
                    log: argon(),
                },
            ),
            (
                edit(C86, |v| {
                    first_log(v)["state"] = serde_json::json!({"expired": {"timestamp": 5}})
                }),
                LogListError::UnknownState {
                    log: argon(),
                    found: "expired".into(),
                },
            ),
            (
                edit(C86, |v| {
                    first_log(v)["state"] = serde_json::json!({
                        "usable": {"timestamp": 5}, "retired": {"timestamp": 6}})
                }),
                LogListError::UnknownState {
                    log: argon(),
                    found: "retired,usable".into(),
                },
            ),
            (
                edit(C86, |v| {
                    first_log(v)["state"] = serde_json::json!({"usable": {}})
                }),
                LogListError::MissingField {
                    field: "state.timestamp",
                    log: argon(),
                },
            ),
            (
                edit(C86, |v| first_log(v)["mmd"] = "a day".into()),
                LogListError::WrongType {
                    field: "mmd",
                    log: argon(),
                    expected: "a non-negative integer",
                },
            ),
            (
                edit(C86, |v| {
                    first_log(v)["temporal_interval"] = serde_json::json!({
                        "start_inclusive": "2027-01-01T00:00:00Z",
                        "end_exclusive": "2026-01-01T00:00:00Z"})
                }),
                LogListError::BadTemporalInterval { log: argon() },
            ),
            (
                edit(C86, |v| v["log_list_timestamp"] = "June".into()),
                LogListError::BadTimestamp {
                    field: "log_list_timestamp",
                    log: "log list".into(),
                },
            ),
            (
                edit(C86, |v| {
                    v["operators"][0].as_object_mut().unwrap().remove("name");
                }),
                LogListError::MissingField {
                    field: "name",
                    log: "operators[0]".into(),
                },
            ),
            (
                // A key that is valid base64 but a truncated SPKI.
                edit(C86, |v| {
                    first_log(v)["key"] = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE".into()
                }),
                LogListError::BadKey {
                    log: argon(),
                    reason: "does not parse",
                },
            ),
        ];
        for (json, want) in cases {
            assert_eq!(LogList::from_json(&json).unwrap_err(), want);
        }
    }

    /// serde's type errors become the typed errors, named by field and log (the log's
    /// description, or its position when the description cannot be read).
    #[test]
    fn json_type_errors_name_the_field_and_the_log() {
        let argon2 = || "Google 'Argon2026h2' log".to_string();
        fn second(v: &mut Value) -> &mut Value {
            &mut v["operators"][0]["logs"][1]
        }
        let wrong =
            |field: &'static str, log: String, expected: &'static str| LogListError::WrongType {
                field,
                log,
                expected,
            };
        let list = || "log list".to_string();
        let cases: Vec<(Vec<u8>, LogListError)> = vec![
            (
                edit(C86, |v| v["version"] = 86.into()),
                wrong("version", list(), "a string"),
            ),
            (
                edit(C86, |v| v["is_all_logs"] = "yes".into()),
                wrong("is_all_logs", list(), "a boolean"),
            ),
            (
                edit(C86, |v| v["log_list_timestamp"] = true.into()),
                LogListError::BadTimestamp {
                    field: "log_list_timestamp",
                    log: list(),
                },
            ),
            (
                edit(C86, |v| v["operators"][2] = 5.into()),
                wrong("operators[]", "operators[2]".into(), "an object"),
            ),
            (
                edit(C86, |v| {
                    v["operators"][2] = serde_json::json!(["DigiCert", [], []])
                }),
                wrong("operators[]", "operators[2]".into(), "an object"),
            ),
            (
                edit(C86, |v| v["operators"][1]["name"] = 5.into()),
                wrong("name", "operators[1]".into(), "a string"),
            ),
            (
                edit(C86, |v| v["operators"][1]["logs"] = serde_json::json!({})),
                wrong("logs", "operators[1]".into(), "an array"),
            ),
            (
                edit(C86, |v| v["operators"][0]["tiled_logs"][3] = "x".into()),
                wrong(
                    "tiled_logs[]",
                    "operators[0].tiled_logs[3]".into(),
                    "an object",
                ),
            ),
            (
                edit(C86, |v| second(v)["key"] = 5.into()),
                wrong("key", argon2(), "a string"),
            ),
            (
                // No readable description: the position names the log.
                edit(C86, |v| {
                    second(v).as_object_mut().unwrap().remove("description");
                    second(v)["key"] = 5.into();
                }),
                wrong("key", "operators[0].logs[1]".into(), "a string"),
            ),
            (
                edit(C86, |v| second(v)["description"] = 5.into()),
                wrong("description", "operators[0].logs[1]".into(), "a string"),
            ),
            (
                edit(C86, |v| second(v)["state"] = serde_json::json!([])),
                wrong("state", argon2(), "an object"),
            ),
            (
                edit(C86, |v| {
                    second(v)["state"] = serde_json::json!({"usable": 5})
                }),
                wrong("state", argon2(), "an object holding `timestamp`"),
            ),
            (
                edit(C86, |v| {
                    second(v)["state"] = serde_json::json!({"usable": {"timestamp": false}})
                }),
                LogListError::BadTimestamp {
                    field: "state.timestamp",
                    log: argon2(),
                },
            ),
            (
                edit(C86, |v| {
                    second(v)["state"] = serde_json::json!({"readonly": {
                        "timestamp": 5, "final_tree_head": {"tree_size": "big"}}})
                }),
                wrong(
                    "state.final_tree_head",
                    argon2(),
                    "an object of `sha256_root_hash` (a string) and `tree_size` (an integer)",
                ),
            ),
            (
                edit(C86, |v| {
                    second(v)["temporal_interval"]["end_exclusive"] = serde_json::json!({})
                }),
                LogListError::BadTimestamp {
                    field: "end_exclusive",
                    log: argon2(),
                },
            ),
            (
                edit(C86, |v| {
                    second(v)["temporal_interval"]
                        .as_object_mut()
                        .unwrap()
                        .remove("start_inclusive");
                }),
                LogListError::MissingField {
                    field: "start_inclusive",
                    log: argon2(),
                },
            ),
            (
                edit(C86, |v| second(v)["previous_operators"] = 5.into()),
                wrong("previous_operators", argon2(), "an array"),
            ),
            (
                edit(C86, |v| {
                    second(v)["previous_operators"] = serde_json::json!([7])
                }),
                wrong("previous_operators[]", argon2(), "an object"),
            ),
            (
                edit(C86, |v| {
                    second(v)["previous_operators"] =
                        serde_json::json!([{"name": "Old", "end_time": "then"}])
                }),
                LogListError::BadTimestamp {
                    field: "end_time",
                    log: argon2(),
                },
            ),
            (
                edit(C86, |v| {
                    second(v)["previous_operators"] = serde_json::json!([{"end_time": 5}])
                }),
                LogListError::MissingField {
                    field: "name",
                    log: argon2(),
                },
            ),
            (
                edit(C86, |v| {
                    second(v)["state"] = serde_json::json!({"usable": {
                        "timestamp": 5, "version": 477}})
                }),
                wrong("state.version", argon2(), "a string"),
            ),
        ];
        for (json, want) in cases {
            assert_eq!(LogList::from_json(&json).unwrap_err(), want);
        }
        // The message names the field and the log.
        let e = LogList::from_json(&edit(C86, |v| second(v)["mmd"] = (-1).into())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "log list: Google 'Argon2026h2' log: field `mmd` is not a non-negative integer"
        );
        // Trailing bytes after the document are a JSON error, as serde_json::from_slice has it.
        assert_eq!(
            LogList::from_json(b"{\"operators\": []} x").unwrap_err(),
            LogListError::Json {
                line: 1,
                column: 19
            }
        );
    }

    #[test]
    fn unmapped_paths_fall_back_to_the_path_and_serde_message() {
        let e = error_at(&[Seg::Other], "x.y", "boom", |_, _, _| None);
        assert_eq!(
            e,
            LogListError::Invalid {
                path: "x.y".into(),
                detail: "boom".into()
            }
        );
        assert_eq!(e.to_string(), "log list: x.y: boom");
        let deep = [
            Seg::Key("operators"),
            Seg::Index(1),
            Seg::Key("logs"),
            Seg::Index(0),
            Seg::Key("state"),
            Seg::Key("usable"),
            Seg::Key("timestamp"),
            Seg::Key("deeper"),
        ];
        assert!(matches!(
            error_at(&deep, "p", "d", |_, _, _| Some("L".into())),
            LogListError::Invalid { .. }
        ));
        // The name lookup runs only for errors inside an entry.
        let entry = [
            Seg::Key("operators"),
            Seg::Index(0),
            Seg::Key("logs"),
            Seg::Index(2),
        ];
        assert_eq!(
            error_at(&entry, "p", "d", |_, _, _| panic!("not needed")),
            LogListError::WrongType {
                field: "logs[]",
                log: "operators[0].logs[2]".into(),
                expected: "an object"
            }
        );
    }

    #[test]
    fn check_entries_reports_every_broken_entry() {
        let json = edit(C86, |v| {
            v["log_list_timestamp"] = "June".into();
            v["operators"][0]["logs"][1]["mmd"] = "a day".into();
            v["operators"][2]["logs"][0]["key"] = "%%".into();
            v["operators"][3]["logs"][0]["state"] = serde_json::json!({"usable": [1]});
            v["operators"][4]["name"] = serde_json::Value::Null;
            let copy = v["operators"][5]["logs"][0].clone();
            v["operators"][6]["logs"].as_array_mut().unwrap().push(copy);
        });
        let whole = LogList::from_json(&json).unwrap_err();
        // JSON types are checked while reading, first: the whole list stops at the `mmd`.
        assert!(
            matches!(whole, LogListError::WrongType { field: "mmd", .. }),
            "{whole:?}"
        );
        let report = LogList::check_entries(&json).unwrap();
        let original: Value = serde_json::from_slice(C86).unwrap();
        let dup_id = original["operators"][5]["logs"][0]["log_id"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(report.meta.is_none());
        assert_eq!(
            report.errors,
            vec![
                LogListError::BadTimestamp {
                    field: "log_list_timestamp",
                    log: "log list".into()
                },
                LogListError::WrongType {
                    field: "mmd",
                    log: "Google 'Argon2026h2' log".into(),
                    expected: "a non-negative integer"
                },
                LogListError::BadBase64 {
                    field: "key",
                    log: "DigiCert 'Wyvern2026h1'".into(),
                },
                LogListError::WrongType {
                    field: "state",
                    log: "Sectigo 'Mammoth2026h1'".into(),
                    expected: "an object holding `timestamp`"
                },
                LogListError::MissingField {
                    field: "name",
                    log: "operators[4]".into()
                },
                LogListError::DuplicateLogId {
                    log_id: dup_id,
                    first: "TrustAsia 'log2026a'".into(),
                    second: "TrustAsia 'log2026a'".into(),
                },
            ]
        );
        // Operator 4's 10 logs are skipped, 3 broken entries and 1 duplicate are not loaded.
        assert_eq!(report.logs.len(), 62 - 10 - 3);
        // A well-formed list: no errors, the same logs as the parser, and its metadata.
        let report = LogList::check_entries(C86).unwrap();
        assert!(report.errors.is_empty());
        assert_eq!(report.logs, LogList::from_json(C86).unwrap().logs());
        assert_eq!(report.meta.unwrap().version(), Some("86.4"));
        // Not JSON, or not a log list at the top: one error.
        assert!(matches!(
            LogList::check_entries(b"{").unwrap_err(),
            LogListError::Json { .. }
        ));
        assert!(matches!(
            LogList::check_entries(b"{\"operators\": 5}").unwrap_err(),
            LogListError::UnknownSchema { .. }
        ));
    }

    #[test]
    fn builder_checks_ids_and_duplicates() {
        let a = Log::new("A", "OpA", b"key a".to_vec());
        assert_eq!(a.id, LogId::from_spki(b"key a"));
        let list = LogListBuilder::new()
            .version("v")
            .timestamp_ms(5)
            .data_timestamp_ms(4)
            .log(a.clone())
            .log(Log::new("B", "OpB", b"key b".to_vec()))
            .build()
            .unwrap();
        assert_eq!(list.logs().len(), 2);
        assert_eq!(list.get(&a.id), Some(&a));
        assert_eq!(list.version(), Some("v"));
        assert_eq!(list.timestamp_ms(), Some(5));
        assert_eq!(list.freshness_timestamp_ms(), Some(4));
        assert_eq!(list.format(), LogListFormat::ChromeV3);
        assert!(LogListBuilder::default().build().unwrap().logs().is_empty());

        let mut forged = Log::new("Forged", "OpF", b"key f".to_vec());
        forged.id = a.id;
        assert_eq!(
            LogListBuilder::new().log(forged).build().unwrap_err(),
            LogListError::LogIdMismatch {
                log: "Forged".into(),
                declared: a.id.to_base64(),
                computed: LogId::from_spki(b"key f").to_base64(),
            }
        );
        let again = Log::new("A again", "OpB", b"key a".to_vec());
        assert_eq!(
            LogListBuilder::new().log(a).log(again).build().unwrap_err(),
            LogListError::DuplicateLogId {
                log_id: LogId::from_spki(b"key a").to_base64(),
                first: "A".into(),
                second: "A again".into(),
            }
        );
    }

    #[test]
    fn unknown_schemas_and_bad_json() {
        assert_eq!(
            LogList::from_json(b"[1,2]").unwrap_err(),
            LogListError::UnknownSchema {
                reason: "top level is not a JSON object"
            }
        );
        assert_eq!(
            LogList::from_json(b"{\"logs\": []}").unwrap_err(),
            LogListError::UnknownSchema {
                reason: "no `operators` member"
            }
        );
        assert_eq!(
            LogList::from_json(b"{\"operators\": {}}").unwrap_err(),
            LogListError::UnknownSchema {
                reason: "`operators` is not an array"
            }
        );
        assert_eq!(
            LogList::from_json(b"{\n  \"operators\": [,]}").unwrap_err(),
            LogListError::Json {
                line: 2,
                column: 17
            }
        );
        // An empty list is a valid (if useless) list.
        let empty = LogList::from_json(b"{\"operators\": []}").unwrap();
        assert!(empty.logs().is_empty());
    }

    #[test]
    fn never_panics_on_truncated_or_garbled_input() {
        for n in (0..C86.len()).step_by(61) {
            assert!(LogList::from_json(&C86[..n]).is_err());
            assert!(LogList::check_entries(&C86[..n]).is_err());
        }
        let mut garbled = C86.to_vec();
        for i in (0..garbled.len()).step_by(389) {
            garbled[i] ^= 0x55;
            let whole = LogList::from_json(&garbled);
            // What the whole parse accepts, the entry-by-entry check accepts without errors.
            if let (Ok(list), Ok(report)) = (&whole, LogList::check_entries(&garbled)) {
                assert!(report.errors.is_empty());
                assert_eq!(report.logs, list.logs());
            }
        }
    }

    #[test]
    fn operator_at_follows_previous_operators() {
        let json = edit(C86, |v| {
            first_log(v)["previous_operators"] = serde_json::json!([
                {"name": "Later Co", "end_time": "2025-01-01T00:00:00Z"},
                {"name": "Founder Co", "end_time": 1_600_000_000_000u64},
            ]);
        });
        let l = LogList::from_json(&json).unwrap();
        let log = l.get(&id(ARGON_2026H1)).unwrap();
        // Sorted by end time whatever the list order.
        assert_eq!(log.previous_operators[0].name, "Founder Co");
        assert_eq!(log.operator_at(1_599_999_999_999), "Founder Co");
        assert_eq!(log.operator_at(1_600_000_000_000), "Later Co");
        assert_eq!(log.operator_at(ms("2024-12-31T23:59:59Z")), "Later Co");
        assert_eq!(log.operator_at(ms("2025-01-01T00:00:00Z")), "Google");
        assert_eq!(log.operator_at(u64::MAX), "Google");
    }

    #[test]
    fn state_helpers() {
        let retired = LogState::Retired { since_ms: 1000 };
        assert!(retired.is_current_at(999));
        assert!(!retired.is_current_at(1000));
        assert_eq!(retired.retired_ms(), Some(1000));
        assert_eq!(retired.name(), "retired");
        assert!(LogState::ReadOnly { since_ms: 1 }.is_current_at(u64::MAX));
        assert!(!LogState::Pending { since_ms: 0 }.is_current_at(5));
        assert!(!LogState::Rejected { since_ms: 9 }.is_current_at(5));
        assert_eq!(LogState::Usable { since_ms: 42 }.since_ms(), 42);
        assert_eq!(LogState::ReadOnly { since_ms: 0 }.name(), "readonly");
        assert_eq!(
            LogState::Qualified { since_ms: 0 }.to_string(),
            "qualified since 1970-01-01T00:00:00Z"
        );
        assert_eq!(
            serde_json::to_value(LogState::ReadOnly { since_ms: 7 }).unwrap(),
            serde_json::json!({"state": "readonly", "since_ms": 7})
        );
    }

    #[test]
    fn mimic_ids_are_the_published_keys() {
        // The constants are SHA-256 of the public halves of the published private keys.
        for (pem, want) in [
            (
                include_str!("../../../../tests/data/ct-vectors/mimics/mimic1.pem"),
                MIMIC_LOG_IDS[0],
            ),
            (
                include_str!("../../../../tests/data/ct-vectors/mimics/mimic2.pem"),
                MIMIC_LOG_IDS[1],
            ),
        ] {
            use rcgen::PublicKeyData;
            let kp = rcgen::KeyPair::from_pem(pem).unwrap();
            let id = LogId::from_spki(&kp.subject_public_key_info());
            assert_eq!(id.to_base64(), want);
            assert!(is_mimic(&id));
        }
        assert!(!is_mimic(&id(ARGON_2026H1)));
    }

    #[test]
    fn a_mimic_log_loads_but_is_marked() {
        use rcgen::PublicKeyData;
        let kp = rcgen::KeyPair::from_pem(include_str!(
            "../../../../tests/data/ct-vectors/mimics/mimic1.pem"
        ))
        .unwrap();
        let spki = kp.subject_public_key_info();
        let key = base64::engine::general_purpose::STANDARD.encode(&spki);
        let json = edit(C86, |v| {
            v["operators"][0]["logs"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                    "description": "Mimic 1",
                    "log_id": MIMIC_LOG_IDS[0],
                    "key": key,
                    "url": "https://mimic.example/",
                    "state": {"usable": {"timestamp": "2020-01-01T00:00:00Z"}}
                }));
        });
        let l = LogList::from_json(&json).unwrap();
        let mimic = l.get(&LogId::from_spki(&spki)).unwrap();
        assert!(mimic.is_mimic());
        assert_eq!(l.logs().iter().filter(|l| l.is_mimic()).count(), 1);
    }

    /// Logs behind the SCTs of the real certificates in the shared vectors
    /// (`sct-table.tsv`): 2025h2/2026h1/2026h2 shards must stay in ctdns's list.
    const REAL_VECTOR_LOGS: [(&str, &str); 13] = [
        ("yzj3FYl8hKFEX1vB3fvJbvKaWc1HCmkFhbDLFMMUWOc=", "usable"), // Nimbus2026
        ("SZybad4dfOz8Nt7Nh2SmuFuvCoeAGdFVUvvp6ynd+MM=", "rejected"), // Sphinx2026h1
        ("lE5Dh/rswe+B8xkkJqgYZQHH0184AgE/cmd9VTcuGdg=", "usable"), // Sphinx2026h2
        ("ZBHEbKQS7KeJHKICLgC8q08oB9QeNSer6v7VA8l9zfA=", "rejected"), // Wyvern2026h1
        ("wjF+V0UZo0XufzjespBB68fCIVoiv3/Vta12mtkOUs0=", "usable"), // Wyvern2026h2
        (ARGON_2026H1, "rejected"),
        ("1219ENGn9XfCx+lf1wC/+YLJM1pl4dCzAXMXwMjFaXc=", "usable"), // Argon2026h2
        ("lpdkv1VYl633Q4doNwhCd+nwOtX2pPM2bkakPw/KqcY=", "rejected"), // Xenon2026h1
        ("2AlVO5RPev/IFhlvlE+Fq7D4/F6HVSYPFdEucrtFSxQ=", "usable"), // Xenon2026h2
        (OAK_2026H2, "retired"),
        ("pcl4kl1XRheChw3YiWYLXFVki30AQPLsB2hR0YhpGfc=", "rejected"), // Sycamore2026h1
        ("0W6ppWgHfmY1oD83pd28A6U8QRIU1IgY9ekxsyPLlQQ=", "rejected"), // Elephant2026h1
        ("FoMtq/CpJQ8P8DqlRf/Iv8gj0IdL9gQpJ/jnHzMT9fo=", "rejected"), // Tiger2026h1
    ];

    #[test]
    fn bundled_list_parses_and_is_curated() {
        let l = LogList::bundled().unwrap();
        assert_eq!(l.format(), LogListFormat::ChromeV3);
        assert_eq!(l.version(), Some("ctdns-2026.11.2"));
        assert_eq!(l.timestamp_ms(), Some(ms("2026-11-26T00:00:00Z")));
        assert_eq!(l.data_timestamp_ms(), Some(ms("2026-08-21T00:00:00Z")));
        assert_eq!(l.logs().len(), 60);
        assert!(l.logs().iter().all(|log| !log.is_mimic()));
        assert!(l.logs().iter().all(|log| log.state.is_some()));
        assert!(!l.logs().iter().any(|log| log.description.contains("Bogus")));
        for (b64, state) in REAL_VECTOR_LOGS {
            let log = l.get(&id(b64)).unwrap_or_else(|| panic!("{b64} missing"));
            assert_eq!(log.state.unwrap().name(), state, "{}", log.description);
        }
        // Every key/state is the same as in Chrome 86.4, except the newer restrictive states.
        let base = LogList::from_json(C86).unwrap();
        for log in l.logs() {
            let b = base.get(&log.id).unwrap();
            assert_eq!(
                (&b.key, &b.operator, b.tiled),
                (&log.key, &log.operator, log.tiled)
            );
            if b.state != log.state {
                assert!(matches!(log.state, Some(LogState::Rejected { .. })));
            }
        }
        let operators: std::collections::BTreeSet<_> =
            l.logs().iter().map(|log| log.operator.as_str()).collect();
        assert_eq!(operators.len(), 8);
    }

    #[test]
    fn staleness() {
        let l = LogList::bundled().unwrap();
        let t = l.freshness_timestamp_ms().unwrap();
        assert_eq!(Some(t), l.data_timestamp_ms());
        let warn = StalenessPolicy::default();
        assert_eq!(warn.max_age, Duration::from_secs(70 * 86_400));
        assert!(!warn.refuse_when_stale);
        assert_eq!(warn.check(&l, t), Ok(Staleness::Fresh));
        assert_eq!(warn.check(&l, t - 5), Ok(Staleness::Fresh));
        assert_eq!(warn.check(&l, t + 70 * DAY_MS), Ok(Staleness::Fresh));
        assert_eq!(
            warn.check(&l, t + 70 * DAY_MS + 1),
            Ok(Staleness::Stale {
                age: Duration::from_millis(70 * DAY_MS + 1)
            })
        );
        let refuse = StalenessPolicy {
            refuse_when_stale: true,
            ..StalenessPolicy::default()
        };
        assert_eq!(refuse.check(&l, t + DAY_MS), Ok(Staleness::Fresh));
        assert_eq!(
            refuse.check(&l, t + 100 * DAY_MS),
            Err(StalenessError::Stale {
                age_days: 100,
                max_age_days: 70
            })
        );
        let apple = LogList::from_json(APPLE).unwrap();
        assert_eq!(warn.check(&apple, t), Ok(Staleness::Unknown));
        assert_eq!(refuse.check(&apple, t), Err(StalenessError::UnknownAge));
    }
}
