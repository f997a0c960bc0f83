//! `ctdns log-list`: vet a CT log list before rolling it out.
//!
//! * `show [FILE]` prints a list (default: the bundled one) — version, both dates, age, logs
//!   by operator, and which logs would count for an SCT issued now (exit 0; 2 when the file
//!   cannot be read or is not a valid list).
//! * `check FILE` reports every problem found, one per line (exit 0 when acceptable, 1 when
//!   any **error** is found, 2 when the file cannot be read or is not JSON). See [`Rule`]
//!   for which findings are errors and which are warnings.
//! * `diff OLD NEW` lists added and removed logs, changed fields of the same log id
//!   (state with timestamps, operator, key, URLs, interval, …), and version and date
//!   changes (exit 0 when both files parse, 2 otherwise).
//!
//! All three read lists with [`LogList::from_json`], the parser `serve`, `check` and
//! `verify` use; `check` additionally parses each log on its own when the whole list is
//! refused ([`LogList::check_entries`], same schema and checks), so that it reports every
//! broken entry rather than only the first.
//!
//! ## Which logs "count now"
//!
//! [`counts_now`] decides whether an SCT a log issues at the time of the check would count:
//! the log is not a mimic log, its state is current under
//! [`LogState::is_current_at`] — the same test the CT policy (`ctdns_verify::ct::policy`) applies to
//! SCTs (qualified, usable or readonly; retired only while the retirement is still ahead) —
//! and its `temporal_interval`, when it has one, has not ended. The interval bounds the
//! *expiry* of the certificates a log accepts, so a shard whose interval starts later (the
//! next half-year's shard) is exactly where a certificate issued now is logged; a shard
//! whose interval is over can only log certificates that have already expired. The policy
//! itself does not read the interval (the log enforces it when it issues an SCT).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine;
use serde::Serialize;

use crate::cli::common::{self, EXIT_BAD_INPUT, EXIT_REFUSED};
use crate::ct::log_list::{
    fmt_ms, Log, LogList, LogListError, LogListFormat, LogState, Staleness, StalenessError,
    StalenessPolicy,
};
use crate::ct::policy::FLOOR_OPERATORS;

const DAY_MS: u64 = 86_400_000;
/// A list or state timestamp this far ahead of the clock is still "now" (clock skew).
const FUTURE_TOLERANCE_MS: u64 = 3_600_000;
/// Shorter temporal intervals are reported as unusual (real shards span 6 to 13 months).
const MIN_SENSIBLE_INTERVAL_MS: u64 = 7 * DAY_MS;
/// Longer temporal intervals are reported as unusual (the longest real ones span 5 years).
const MAX_SENSIBLE_INTERVAL_MS: u64 = 1830 * DAY_MS;

/// Arguments of `ctdns log-list`.
#[derive(Debug, Clone, clap::Args)]
pub struct LogListArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: LogListAction,
}

/// `ctdns log-list` actions.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum LogListAction {
    /// Print a log list: version, dates, age, logs by operator, which logs count for an SCT
    /// issued now (exit 0; 2 when the file cannot be read or is not a valid list).
    Show {
        /// The list (Chrome v3, Android or Apple schema); default: the list bundled with ctdns.
        file: Option<PathBuf>,
        /// Time options.
        #[command(flatten)]
        when: WhenArgs,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Vet a log list: one problem per line, errors and warnings (exit 0 acceptable,
    /// 1 errors found, 2 cannot be read).
    Check {
        /// The list to check.
        file: PathBuf,
        /// Time options.
        #[command(flatten)]
        when: WhenArgs,
        /// Count a stale or undated list as an error, as `serve` with
        /// `ct.refuse_stale_list = true` would refuse it (default: a warning, as `serve` warns
        /// and keeps enforcing).
        #[arg(long)]
        refuse_stale_list: bool,
        /// Print a JSON array of problems instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Compare two log lists by log id (exit 0 when both parse, 2 otherwise).
    Diff {
        /// The list in use.
        old: PathBuf,
        /// The candidate list.
        new: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// The time a list is judged at, and its maximum age.
#[derive(Debug, Clone, clap::Args)]
pub struct WhenArgs {
    /// Judge as of this time (RFC 3339) instead of now.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// Maximum age in days of the list's data before it counts as stale.
    #[arg(long, default_value_t = 70)]
    pub max_list_age_days: u64,
}

impl WhenArgs {
    fn now_ms(&self) -> Result<u64, String> {
        match &self.at {
            Some(at) => Ok(common::parse_rfc3339(at)?.as_secs().saturating_mul(1000)),
            None => Ok(rustls::pki_types::UnixTime::now()
                .as_secs()
                .saturating_mul(1000)),
        }
    }

    fn max_age(&self) -> Duration {
        Duration::from_secs(self.max_list_age_days.saturating_mul(86_400))
    }
}

/// Run `ctdns log-list`.
pub fn run(args: LogListArgs) -> ExitCode {
    let (name, result) = match args.action {
        LogListAction::Show { file, when, json } => {
            ("show", run_show(file.as_deref(), &when, json))
        }
        LogListAction::Check {
            file,
            when,
            refuse_stale_list,
            json,
        } => ("check", run_check(&file, &when, refuse_stale_list, json)),
        LogListAction::Diff { old, new, json } => ("diff", run_diff(&old, &new, json)),
    };
    match result {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("ctdns log-list {name}: {msg}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn load(path: &Path) -> Result<LogList, String> {
    LogList::from_json(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))
}

fn to_json<T: Serialize>(value: &T) -> Result<String, String> {
    serde_json::to_string_pretty(value)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| e.to_string())
}

fn run_show(file: Option<&Path>, when: &WhenArgs, json: bool) -> Result<ExitCode, String> {
    let (list, source) = match file {
        Some(p) => (load(p)?, p.display().to_string()),
        None => (
            LogList::bundled().map_err(|e| format!("bundled list: {e}"))?,
            "bundled (crates/ctdns-verify/certs/ct_log_list.json)".to_string(),
        ),
    };
    let report = show(&list, &source, when.now_ms()?, when.max_age());
    print!(
        "{}",
        if json {
            to_json(&report)?
        } else {
            report.human()
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn run_check(
    file: &Path,
    when: &WhenArgs,
    refuse_stale_list: bool,
    json: bool,
) -> Result<ExitCode, String> {
    let bytes = read(file)?;
    let staleness = StalenessPolicy {
        max_age: when.max_age(),
        refuse_when_stale: refuse_stale_list,
    };
    let checked =
        check(&bytes, when.now_ms()?, staleness).map_err(|e| format!("{}: {e}", file.display()))?;
    let errors = checked.errors();
    let warnings = checked.problems.len() - errors;
    if json {
        print!("{}", to_json(&checked.problems)?);
    } else {
        for p in &checked.problems {
            println!("{p}");
        }
        if errors > 0 {
            eprintln!(
                "{}: not acceptable: {errors} error(s), {warnings} warning(s)",
                file.display()
            );
        } else {
            eprintln!(
                "{}: acceptable ({warnings} warning(s)): {}",
                file.display(),
                checked.summary
            );
        }
    }
    Ok(if errors > 0 {
        ExitCode::from(EXIT_REFUSED)
    } else {
        ExitCode::SUCCESS
    })
}

fn run_diff(old: &Path, new: &Path, json: bool) -> Result<ExitCode, String> {
    let d = diff(&load(old)?, &load(new)?);
    print!("{}", if json { to_json(&d)? } else { d.human() });
    Ok(ExitCode::SUCCESS)
}

/// Whether an SCT `log` issues at `now_ms` would count (see the module docs): not a mimic
/// log, state current under [`LogState::is_current_at`], temporal interval (if any) not over.
pub fn counts_now(log: &Log, now_ms: u64) -> bool {
    !log.is_mimic()
        && log.state.is_some_and(|s| s.is_current_at(now_ms))
        && log.temporal_interval.is_none_or(|(_, end)| now_ms < end)
}

fn date(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".into(), fmt_ms)
}

fn format_name(f: LogListFormat) -> &'static str {
    match f {
        LogListFormat::ChromeV3 => "chrome_v3",
        LogListFormat::ChromeAllLogs => "chrome_all_logs",
        LogListFormat::Android => "android",
        LogListFormat::Apple => "apple",
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Operators in list order with their logs.
fn by_operator(logs: &[Log]) -> Vec<(&str, Vec<&Log>)> {
    let mut groups: Vec<(&str, Vec<&Log>)> = Vec::new();
    for log in logs {
        match groups.iter_mut().find(|(name, _)| *name == log.operator) {
            Some((_, members)) => members.push(log),
            None => groups.push((log.operator.as_str(), vec![log])),
        }
    }
    groups
}

/// A `temporal_interval`, RFC 3339.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Interval {
    /// First certificate expiry the log accepts.
    pub start_inclusive: String,
    /// First certificate expiry it no longer accepts.
    pub end_exclusive: String,
}

impl Interval {
    fn of(log: &Log) -> Option<Interval> {
        log.temporal_interval.map(|(s, e)| Interval {
            start_inclusive: fmt_ms(s),
            end_exclusive: fmt_ms(e),
        })
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {})", self.start_inclusive, self.end_exclusive)
    }
}

/// One log as `show` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct ShownLog {
    /// The log's `description`.
    pub description: String,
    /// Base64 log id.
    pub log_id: String,
    /// State name (`usable`, …), or `None` when the list gives none.
    pub state: Option<&'static str>,
    /// When the log entered that state, RFC 3339.
    pub state_since: Option<String>,
    /// The accepted certificate expiry range.
    pub temporal_interval: Option<Interval>,
    /// RFC 6962 URL or tiled submission URL.
    pub url: String,
    /// A static-ct-api (tiled) log.
    pub tiled: bool,
    /// One of the mimic logs whose SCTs ctdns never counts.
    pub mimic: bool,
    /// Whether an SCT it issues now would count ([`counts_now`]).
    pub counts_now: bool,
}

/// An operator and its logs as `show` prints them.
#[derive(Clone, Debug, Serialize)]
pub struct ShownOperator {
    /// The operator's name.
    pub name: String,
    /// Its logs, in list order.
    pub logs: Vec<ShownLog>,
}

/// What `show` reports about a list.
#[derive(Clone, Debug, Serialize)]
pub struct ShowReport {
    /// Where the list came from (a path, or the bundled list).
    pub source: String,
    /// The list's `version`.
    pub version: Option<String>,
    /// The schema flavour.
    pub format: &'static str,
    /// `log_list_timestamp`: when the list was curated, RFC 3339.
    pub log_list_timestamp: Option<String>,
    /// `ctdns_data_timestamp`: the date of the newest data it was built from, RFC 3339.
    pub data_timestamp: Option<String>,
    /// Which of the two the age counts from (`ctdns_data_timestamp` when present).
    pub age_from: Option<&'static str>,
    /// The time the list was judged at, RFC 3339.
    pub now: String,
    /// Whole days since [`ShowReport::age_from`], `None` for an undated list.
    pub age_days: Option<u64>,
    /// The maximum age applied.
    pub max_age_days: u64,
    /// Older than the maximum age; `None` for an undated list.
    pub stale: Option<bool>,
    /// Number of logs.
    pub logs: usize,
    /// Number of distinct operators.
    pub operators: usize,
    /// Logs for which an SCT issued now would count.
    pub logs_counting_now: usize,
    /// Distinct operators of those logs.
    pub operators_counting_now: usize,
    /// Number of mimic logs in the list.
    pub mimic_logs: usize,
    /// Logs grouped by operator, in list order.
    pub by_operator: Vec<ShownOperator>,
}

/// Describe `list` at `now_ms` under a maximum age of `max_age`.
pub fn show(list: &LogList, source: &str, now_ms: u64, max_age: Duration) -> ShowReport {
    let stale = match (StalenessPolicy {
        max_age,
        refuse_when_stale: false,
    })
    .check(list, now_ms)
    {
        Ok(Staleness::Fresh) => Some(false),
        Ok(Staleness::Stale { .. }) | Err(StalenessError::Stale { .. }) => Some(true),
        Ok(Staleness::Unknown) | Err(StalenessError::UnknownAge) => None,
        // `StalenessError` is `#[non_exhaustive]` (ctdns-verify): an unknown refusal is not
        // a known age.
        Err(_) => None,
    };
    let age_from = if list.data_timestamp_ms().is_some() {
        Some(crate::ct::log_list::DATA_TIMESTAMP_FIELD)
    } else if list.timestamp_ms().is_some() {
        Some("log_list_timestamp")
    } else {
        None
    };
    let counting: Vec<&Log> = list
        .logs()
        .iter()
        .filter(|l| counts_now(l, now_ms))
        .collect();
    let groups = by_operator(list.logs());
    ShowReport {
        source: source.to_string(),
        version: list.version().map(str::to_string),
        format: format_name(list.format()),
        log_list_timestamp: list.timestamp_ms().map(fmt_ms),
        data_timestamp: list.data_timestamp_ms().map(fmt_ms),
        age_from,
        now: fmt_ms(now_ms),
        age_days: list.age(now_ms).map(|a| a.as_secs() / 86_400),
        max_age_days: max_age.as_secs() / 86_400,
        stale,
        logs: list.logs().len(),
        operators: groups.len(),
        logs_counting_now: counting.len(),
        operators_counting_now: counting
            .iter()
            .map(|l| l.operator.as_str())
            .collect::<BTreeSet<_>>()
            .len(),
        mimic_logs: list.logs().iter().filter(|l| l.is_mimic()).count(),
        by_operator: groups
            .into_iter()
            .map(|(name, logs)| ShownOperator {
                name: name.to_string(),
                logs: logs
                    .into_iter()
                    .map(|l| ShownLog {
                        description: l.description.clone(),
                        log_id: l.id.to_base64(),
                        state: l.state.map(|s| s.name()),
                        state_since: l.state.map(|s| fmt_ms(s.since_ms())),
                        temporal_interval: Interval::of(l),
                        url: l.url.clone(),
                        tiled: l.tiled,
                        mimic: l.is_mimic(),
                        counts_now: counts_now(l, now_ms),
                    })
                    .collect(),
            })
            .collect(),
    }
}

impl ShowReport {
    /// The text form.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let opt = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "CT log list {} ({}), {} ({} logs, {} operators)",
            self.version.as_deref().unwrap_or("(no version)"),
            self.format,
            self.source,
            self.logs,
            self.operators
        );
        let _ = writeln!(
            out,
            "  curated (log_list_timestamp):     {}",
            opt(&self.log_list_timestamp)
        );
        let _ = writeln!(
            out,
            "  data date (ctdns_data_timestamp): {}",
            opt(&self.data_timestamp)
        );
        let _ = match (self.age_days, self.age_from, self.stale) {
            (Some(days), Some(from), stale) => writeln!(
                out,
                "  age: {days} days at {} (from {from}): {}",
                self.now,
                if stale == Some(true) {
                    format!("STALE, more than {} days", self.max_age_days)
                } else {
                    format!("fresh, at most {} days", self.max_age_days)
                }
            ),
            _ => writeln!(
                out,
                "  age: unknown (the list has no timestamp); staleness cannot be checked"
            ),
        };
        let _ = writeln!(
            out,
            "  an SCT issued now would count from {} logs of {} operators{}",
            self.logs_counting_now,
            self.operators_counting_now,
            if self.mimic_logs > 0 {
                format!("; {} MIMIC log(s) present, never counted", self.mimic_logs)
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            out,
            "  (* counts now: qualified/usable/readonly, or retired later; not a mimic; \
             temporal interval not over)"
        );
        for op in &self.by_operator {
            let n = op.logs.iter().filter(|l| l.counts_now).count();
            let _ = writeln!(out, "\n{} ({} logs, {n} count now)", op.name, op.logs.len());
            for l in &op.logs {
                let state = match (l.state, &l.state_since) {
                    (Some(s), Some(since)) => format!("{s} since {since}"),
                    _ => "no state".into(),
                };
                let interval = l
                    .temporal_interval
                    .as_ref()
                    .map_or_else(|| "no interval".into(), ToString::to_string);
                let _ = writeln!(
                    out,
                    "  {} {}{}{}: {state}; {interval}",
                    if l.counts_now { '*' } else { '-' },
                    l.description,
                    if l.tiled { " (tiled)" } else { "" },
                    if l.mimic { " MIMIC" } else { "" },
                );
            }
        }
        out
    }
}

/// How bad a finding of `check` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The list must not be rolled out (exit 1).
    Error,
    /// Worth reading, but ctdns works with the list (exit 0).
    Warning,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// The rule a finding of `check` names; the docs say whether it is an error or a warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Error: not a log list, or a field missing, of the wrong type, not base64 or not a
    /// timestamp (the parser refuses the list).
    Schema,
    /// Error: a `key` that is not a DER SubjectPublicKeyInfo.
    BadKey,
    /// Error: a `log_id` that is not SHA-256 of the `key`.
    LogIdMismatch,
    /// Error: two logs with one log id.
    DuplicateLogId,
    /// Error: a `state` that is not exactly one known state.
    UnknownState,
    /// Error: a `temporal_interval` whose start is not before its end.
    BadTemporalInterval,
    /// Error: a mimic log (published private key); ctdns ignores its SCTs anyway, but the
    /// list is not a list to roll out.
    MimicLog,
    /// Error: the logs that count for an SCT issued now belong to fewer than 2 operators,
    /// so no newly issued certificate can meet the 2-operator floor.
    TooFewOperators,
    /// Error: `log_list_timestamp` or `ctdns_data_timestamp` more than an hour in the future.
    FutureTimestamp,
    /// Warning (error with `--refuse-stale-list`): the list has no timestamp, so its age
    /// cannot be checked.
    NoTimestamp,
    /// Warning (error with `--refuse-stale-list`): the list's data is older than the maximum
    /// age.
    Stale,
    /// Warning: a log without a state (it never counts).
    MissingState,
    /// Warning: a log current by its state whose temporal interval is over (it can only log
    /// expired certificates).
    IntervalEnded,
    /// Warning: a temporal interval shorter than 7 days or longer than 1830 days.
    IntervalUnusual,
    /// Warning: a state timestamp more than an hour in the future (other than a scheduled
    /// retirement).
    StateInFuture,
    /// Warning: `ctdns_data_timestamp` later than `log_list_timestamp`.
    DataAfterCuration,
}

impl Rule {
    fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// One finding of `check`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The rule.
    pub rule: Rule,
    /// The log concerned (its description or position), if any.
    pub log: Option<String>,
    /// What is wrong, for people.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} [{}]",
            self.severity,
            self.message,
            self.rule.name()
        )
    }
}

/// The outcome of `check`.
#[derive(Clone, Debug)]
pub struct Checked {
    /// Findings, errors first.
    pub problems: Vec<Problem>,
    /// One line on the list (version, logs, operators).
    pub summary: String,
}

impl Checked {
    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count()
    }

    /// Whether the list is acceptable (no errors).
    pub fn acceptable(&self) -> bool {
        self.errors() == 0
    }
}

fn error(rule: Rule, log: Option<&str>, message: String) -> Problem {
    Problem {
        severity: Severity::Error,
        rule,
        log: log.map(str::to_string),
        message,
    }
}

fn warning(rule: Rule, log: Option<&str>, message: String) -> Problem {
    Problem {
        severity: Severity::Warning,
        ..error(rule, log, message)
    }
}

/// A parse error as a finding.
fn parse_problem(e: &LogListError) -> Problem {
    let (rule, log) = match e {
        LogListError::Json { .. } | LogListError::UnknownSchema { .. } => (Rule::Schema, None),
        LogListError::MissingField { log, .. }
        | LogListError::WrongType { log, .. }
        | LogListError::BadBase64 { log, .. }
        | LogListError::BadTimestamp { log, .. } => (Rule::Schema, Some(log.as_str())),
        LogListError::Invalid { .. } => (Rule::Schema, None),
        LogListError::BadKey { log, .. } => (Rule::BadKey, Some(log.as_str())),
        LogListError::LogIdMismatch { log, .. } => (Rule::LogIdMismatch, Some(log.as_str())),
        LogListError::BadTemporalInterval { log } => {
            (Rule::BadTemporalInterval, Some(log.as_str()))
        }
        LogListError::UnknownState { log, .. } => (Rule::UnknownState, Some(log.as_str())),
        LogListError::DuplicateLogId { second, .. } => {
            (Rule::DuplicateLogId, Some(second.as_str()))
        }
        // `LogListError` is `#[non_exhaustive]` (it lives in ctdns-verify): a variant added
        // there reads as a schema finding until it gets its own rule here.
        _ => (Rule::Schema, None),
    };
    error(rule, log, e.to_string())
}

/// Check a list's bytes at `now_ms`; `Err` only when they are not JSON at all.
///
/// A list the parser accepts is checked as loaded. A list it refuses is parsed again entry
/// by entry (each log on its own, with the same parser), so every broken entry is
/// reported; the list-wide rules then run over the logs that did parse.
pub fn check(bytes: &[u8], now_ms: u64, staleness: StalenessPolicy) -> Result<Checked, String> {
    let mut problems = Vec::new();
    let (meta, logs) = match LogList::from_json(bytes) {
        Ok(list) => {
            let logs = list.logs().to_vec();
            (Some(list), logs)
        }
        Err(LogListError::Json { line, column }) => {
            return Err(format!(
                "cannot be read: not JSON (line {line}, column {column})"
            ))
        }
        Err(whole) => match LogList::check_entries(bytes) {
            Ok(report) => {
                problems.extend(report.errors.iter().map(parse_problem));
                if problems.is_empty() {
                    problems.push(parse_problem(&whole));
                }
                (report.meta, report.logs)
            }
            Err(shape) => {
                problems.push(parse_problem(&shape));
                (None, Vec::new())
            }
        },
    };
    list_rules(meta.as_ref(), &logs, now_ms, staleness, &mut problems);
    problems.sort_by_key(|p| p.severity);
    let operators = logs
        .iter()
        .map(|l| l.operator.as_str())
        .collect::<BTreeSet<_>>()
        .len();
    let counting: Vec<&Log> = logs.iter().filter(|l| counts_now(l, now_ms)).collect();
    let summary = format!(
        "version {}, {} logs of {operators} operators; an SCT issued now would count from {} \
         logs of {} operators",
        meta.as_ref().and_then(LogList::version).unwrap_or("(none)"),
        logs.len(),
        counting.len(),
        counting
            .iter()
            .map(|l| l.operator.as_str())
            .collect::<BTreeSet<_>>()
            .len(),
    );
    Ok(Checked { problems, summary })
}

/// The rules over the whole list (and each parsed log).
fn list_rules(
    meta: Option<&LogList>,
    logs: &[Log],
    now_ms: u64,
    staleness: StalenessPolicy,
    problems: &mut Vec<Problem>,
) {
    let soon = now_ms.saturating_add(FUTURE_TOLERANCE_MS);
    for log in logs {
        let name = Some(log.description.as_str());
        if log.is_mimic() {
            problems.push(error(
                Rule::MimicLog,
                name,
                format!(
                    "{}: log id {} is a mimic log (its private key is published); ctdns never \
                     counts its SCTs",
                    log.description,
                    log.id.to_base64()
                ),
            ));
        }
        match log.state {
            None => problems.push(warning(
                Rule::MissingState,
                name,
                format!("{}: no state; its SCTs never count", log.description),
            )),
            Some(s) if !matches!(s, LogState::Retired { .. }) && s.since_ms() > soon => problems
                .push(warning(
                    Rule::StateInFuture,
                    name,
                    format!("{}: state {s}, in the future", log.description),
                )),
            Some(_) => {}
        }
        if let Some((start, end)) = log.temporal_interval {
            let len = end.saturating_sub(start);
            if !(MIN_SENSIBLE_INTERVAL_MS..=MAX_SENSIBLE_INTERVAL_MS).contains(&len) {
                problems.push(warning(
                    Rule::IntervalUnusual,
                    name,
                    format!(
                        "{}: temporal interval [{}, {}) spans {} days (expected 7 to 1830)",
                        log.description,
                        fmt_ms(start),
                        fmt_ms(end),
                        len / DAY_MS
                    ),
                ));
            }
            if end <= now_ms && log.state.is_some_and(|s| s.is_current_at(now_ms)) {
                problems.push(warning(
                    Rule::IntervalEnded,
                    name,
                    format!(
                        "{}: still {} but its temporal interval ended {}",
                        log.description,
                        log.state.map_or("-", |s| s.name()),
                        fmt_ms(end)
                    ),
                ));
            }
        }
    }

    let counting: BTreeSet<&str> = logs
        .iter()
        .filter(|l| counts_now(l, now_ms))
        .map(|l| l.operator.as_str())
        .collect();
    if counting.len() < FLOOR_OPERATORS {
        problems.push(error(
            Rule::TooFewOperators,
            None,
            format!(
                "the logs an SCT issued now would count from belong to {} operator(s){}; \
                 ctdns needs SCTs from at least {FLOOR_OPERATORS} operators, so no certificate \
                 issued now can comply",
                counting.len(),
                if counting.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({})",
                        counting.iter().copied().collect::<Vec<_>>().join(", ")
                    )
                }
            ),
        ));
    }

    let Some(meta) = meta else { return };
    for (field, ts) in [
        ("log_list_timestamp", meta.timestamp_ms()),
        (
            crate::ct::log_list::DATA_TIMESTAMP_FIELD,
            meta.data_timestamp_ms(),
        ),
    ] {
        if let Some(ts) = ts.filter(|&t| t > soon) {
            problems.push(error(
                Rule::FutureTimestamp,
                None,
                format!(
                    "{field} {} is in the future (now {})",
                    fmt_ms(ts),
                    fmt_ms(now_ms)
                ),
            ));
        }
    }
    if let (Some(curated), Some(data)) = (meta.timestamp_ms(), meta.data_timestamp_ms()) {
        if data > curated {
            problems.push(warning(
                Rule::DataAfterCuration,
                None,
                format!(
                    "ctdns_data_timestamp {} is after log_list_timestamp {}",
                    fmt_ms(data),
                    fmt_ms(curated)
                ),
            ));
        }
    }
    let max_days = staleness.max_age.as_secs() / 86_400;
    let stale = |severity: fn(Rule, Option<&str>, String) -> Problem, days: u64| {
        severity(
            Rule::Stale,
            None,
            format!(
                "the list's data is {days} days old (from {}), more than {max_days} days",
                date(meta.freshness_timestamp_ms())
            ),
        )
    };
    let undated = |severity: fn(Rule, Option<&str>, String) -> Problem| {
        severity(
            Rule::NoTimestamp,
            None,
            "no log_list_timestamp (nor ctdns_data_timestamp): the list's age cannot be checked"
                .into(),
        )
    };
    match staleness.check(meta, now_ms) {
        Ok(Staleness::Fresh) => {}
        Ok(Staleness::Stale { age }) => problems.push(stale(warning, age.as_secs() / 86_400)),
        Err(StalenessError::Stale { age_days, .. }) => problems.push(stale(error, age_days)),
        Ok(Staleness::Unknown) => problems.push(undated(warning)),
        Err(StalenessError::UnknownAge) => problems.push(undated(error)),
        // `StalenessError` is `#[non_exhaustive]` (ctdns-verify): a refusal this code does
        // not know yet is still an error, reported as an age that cannot be vouched for.
        Err(_) => problems.push(undated(error)),
    }
}

/// Dates and size of one side of a diff.
#[derive(Clone, Debug, Serialize)]
pub struct ListSummary {
    /// `version`.
    pub version: Option<String>,
    /// Schema flavour.
    pub format: &'static str,
    /// `log_list_timestamp`, RFC 3339.
    pub log_list_timestamp: Option<String>,
    /// `ctdns_data_timestamp`, RFC 3339.
    pub data_timestamp: Option<String>,
    /// Number of logs.
    pub logs: usize,
    /// Number of distinct operators.
    pub operators: usize,
}

impl ListSummary {
    fn of(list: &LogList) -> Self {
        ListSummary {
            version: list.version().map(str::to_string),
            format: format_name(list.format()),
            log_list_timestamp: list.timestamp_ms().map(fmt_ms),
            data_timestamp: list.data_timestamp_ms().map(fmt_ms),
            logs: list.logs().len(),
            operators: by_operator(list.logs()).len(),
        }
    }
}

/// A log present on one side only.
#[derive(Clone, Debug, Serialize)]
pub struct DiffLog {
    /// Base64 log id.
    pub log_id: String,
    /// Its `description`.
    pub description: String,
    /// Its operator.
    pub operator: String,
    /// Its state with timestamp (`usable since …`), or `None`.
    pub state: Option<String>,
    /// Its temporal interval.
    pub temporal_interval: Option<Interval>,
    /// Its URL.
    pub url: String,
}

impl DiffLog {
    fn of(log: &Log) -> Self {
        DiffLog {
            log_id: log.id.to_base64(),
            description: log.description.clone(),
            operator: log.operator.clone(),
            state: log.state.map(|s| s.to_string()),
            temporal_interval: Interval::of(log),
            url: log.url.clone(),
        }
    }
}

/// A field of a log that can change between lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The state and its timestamp.
    State,
    /// The operator holding the log (it moved between operators).
    Operator,
    /// The `previous_operators` history.
    PreviousOperators,
    /// The key (cannot change for one log id in lists the parser accepts, as the id is
    /// SHA-256 of the key; compared all the same).
    Key,
    /// The RFC 6962 URL or tiled submission URL.
    Url,
    /// A tiled log's monitoring URL.
    MonitoringUrl,
    /// The temporal interval.
    TemporalInterval,
    /// The description.
    Description,
    /// The maximum merge delay.
    Mmd,
    /// RFC 6962 versus tiled.
    Tiled,
}

/// One changed field of a log present in both lists.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    /// Base64 log id.
    pub log_id: String,
    /// The log's description in the new list.
    pub description: String,
    /// What changed.
    pub field: Field,
    /// The old value, as text.
    pub old: String,
    /// The new value, as text.
    pub new: String,
}

/// What `diff` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Diff {
    /// The old list.
    pub old: ListSummary,
    /// The new list.
    pub new: ListSummary,
    /// Logs only in the new list, in its order.
    pub added: Vec<DiffLog>,
    /// Logs only in the old list, in its order.
    pub removed: Vec<DiffLog>,
    /// Changed fields of logs in both, in the new list's order.
    pub changed: Vec<Change>,
}

fn state_text(s: Option<LogState>) -> String {
    s.map_or_else(|| "no state".into(), |s| s.to_string())
}

fn interval_text(log: &Log) -> String {
    Interval::of(log).map_or_else(|| "none".into(), |i| i.to_string())
}

fn previous_text(log: &Log) -> String {
    if log.previous_operators.is_empty() {
        return "none".into();
    }
    log.previous_operators
        .iter()
        .map(|p| format!("{} until {}", p.name, fmt_ms(p.end_time_ms)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Compare two lists by log id.
pub fn diff(old: &LogList, new: &LogList) -> Diff {
    let added = new
        .logs()
        .iter()
        .filter(|l| old.get(&l.id).is_none())
        .map(DiffLog::of)
        .collect();
    let removed = old
        .logs()
        .iter()
        .filter(|l| new.get(&l.id).is_none())
        .map(DiffLog::of)
        .collect();
    let mut changed = Vec::new();
    for n in new.logs() {
        let Some(o) = old.get(&n.id) else { continue };
        let fields: [(Field, String, String); 10] = [
            (Field::State, state_text(o.state), state_text(n.state)),
            (Field::Operator, o.operator.clone(), n.operator.clone()),
            (Field::PreviousOperators, previous_text(o), previous_text(n)),
            (Field::Key, b64(&o.key), b64(&n.key)),
            (Field::Url, o.url.clone(), n.url.clone()),
            (
                Field::MonitoringUrl,
                o.monitoring_url.clone().unwrap_or_else(|| "none".into()),
                n.monitoring_url.clone().unwrap_or_else(|| "none".into()),
            ),
            (Field::TemporalInterval, interval_text(o), interval_text(n)),
            (
                Field::Description,
                o.description.clone(),
                n.description.clone(),
            ),
            (
                Field::Mmd,
                o.mmd.map_or_else(|| "none".into(), |m| m.to_string()),
                n.mmd.map_or_else(|| "none".into(), |m| m.to_string()),
            ),
            (Field::Tiled, o.tiled.to_string(), n.tiled.to_string()),
        ];
        for (field, was, now) in fields {
            if was != now {
                changed.push(Change {
                    log_id: n.id.to_base64(),
                    description: n.description.clone(),
                    field,
                    old: was,
                    new: now,
                });
            }
        }
    }
    Diff {
        old: ListSummary::of(old),
        new: ListSummary::of(new),
        added,
        removed,
        changed,
    }
}

impl Diff {
    /// The text form: header lines, then `+` added, `-` removed, `~` changed.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let pair = |out: &mut String, label: &str, o: &Option<String>, n: &Option<String>| {
            let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            let _ = if o == n {
                writeln!(out, "{label}: {} (unchanged)", show(o))
            } else {
                writeln!(out, "{label}: {} -> {}", show(o), show(n))
            };
        };
        pair(&mut out, "version", &self.old.version, &self.new.version);
        pair(
            &mut out,
            "log_list_timestamp",
            &self.old.log_list_timestamp,
            &self.new.log_list_timestamp,
        );
        pair(
            &mut out,
            "ctdns_data_timestamp",
            &self.old.data_timestamp,
            &self.new.data_timestamp,
        );
        let _ = writeln!(
            out,
            "logs: {} -> {} ({} added, {} removed, {} changes); operators: {} -> {}",
            self.old.logs,
            self.new.logs,
            self.added.len(),
            self.removed.len(),
            self.changed.len(),
            self.old.operators,
            self.new.operators
        );
        for (mark, logs) in [('+', &self.added), ('-', &self.removed)] {
            for l in logs {
                let _ = writeln!(
                    out,
                    "{mark} {} [{}] {}; {}; id {}",
                    l.description,
                    l.operator,
                    l.state.as_deref().unwrap_or("no state"),
                    l.temporal_interval
                        .as_ref()
                        .map_or_else(|| "no interval".into(), ToString::to_string),
                    l.log_id
                );
            }
        }
        for c in &self.changed {
            let field = serde_json::to_value(c.field)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(out, "~ {}: {field}: {} -> {}", c.description, c.old, c.new);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    macro_rules! list_file {
        ($name:literal) => {
            include_bytes!(concat!("../../tests/data/ct-vectors/loglists/", $name)).as_slice()
        };
    }

    const C80: &[u8] = list_file!("chrome_log_list_v80.4_2025-12-23.json");
    const C86: &[u8] = list_file!("chrome_log_list_v86.4_2026-06-23.json");
    const APPLE: &[u8] = list_file!("apple_current_log_list_2026-04-01.json");
    const ALL_LOGS: &[u8] = list_file!("chrome_all_logs_list_v53.34_2025-05-05.json");

    fn ms(rfc3339: &str) -> u64 {
        common::parse_rfc3339(rfc3339).unwrap().as_secs() * 1000
    }

    fn edit(json: &[u8], f: impl FnOnce(&mut Value)) -> Vec<u8> {
        let mut v: Value = serde_json::from_slice(json).unwrap();
        f(&mut v);
        serde_json::to_vec(&v).unwrap()
    }

    fn rules(c: &Checked, severity: Severity) -> Vec<Rule> {
        c.problems
            .iter()
            .filter(|p| p.severity == severity)
            .map(|p| p.rule)
            .collect()
    }

    /// The day after Chrome 86.4 was published.
    fn c86_day() -> u64 {
        ms("2026-06-24T00:00:00Z")
    }

    fn log<'a>(list: &'a LogList, description: &str) -> &'a Log {
        list.logs()
            .iter()
            .find(|l| l.description == description)
            .unwrap()
    }

    #[test]
    fn counts_now_follows_state_mimic_and_interval() {
        let list = LogList::from_json(C86).unwrap();
        let now = c86_day();
        // Usable, interval [2026-07-01, 2027-01-01) not over: counts.
        assert!(counts_now(log(&list, "Google 'Argon2026h2' log"), now));
        // Usable but its interval [2026-01-01, 2026-07-01) is over a week later.
        let h1 = log(&list, "Google 'Argon2026h1' log");
        assert!(counts_now(h1, now));
        assert!(!counts_now(h1, ms("2026-07-01T00:00:00Z")));
        // Retired 2026-02-28: no longer counts for new SCTs.
        assert!(!counts_now(log(&list, "Let's Encrypt 'Oak2026h2'"), now));
        // Qualified counts.
        let parcel = log(&list, "Google 'ParcelYard2026h2' log");
        assert!(matches!(parcel.state, Some(LogState::Qualified { .. })));
        assert!(counts_now(parcel, now));
        // A scheduled retirement still ahead leaves the log counting.
        let mut scheduled = parcel.clone();
        scheduled.state = Some(LogState::Retired {
            since_ms: now + DAY_MS,
        });
        assert!(counts_now(&scheduled, now));
        assert!(!counts_now(&scheduled, now + DAY_MS));
        let mut pending = parcel.clone();
        pending.state = Some(LogState::Pending { since_ms: 0 });
        assert!(!counts_now(&pending, now));
        let mut none = parcel.clone();
        none.state = None;
        assert!(!counts_now(&none, now));
    }

    #[test]
    fn show_bundled_list() {
        let list = LogList::bundled().unwrap();
        let now = ms("2026-11-29T00:00:00Z");
        let r = show(&list, "bundled", now, Duration::from_secs(70 * 86_400));
        assert_eq!(r.version.as_deref(), Some("ctdns-2026.11.2"));
        assert_eq!(r.logs, 60);
        assert_eq!(r.operators, 8);
        assert_eq!(r.by_operator.len(), 8);
        assert_eq!(
            r.by_operator.iter().map(|o| o.logs.len()).sum::<usize>(),
            60
        );
        assert_eq!(r.data_timestamp.as_deref(), Some("2026-08-21T00:00:00Z"));
        assert_eq!(
            r.log_list_timestamp.as_deref(),
            Some("2026-11-26T00:00:00Z")
        );
        assert_eq!(r.age_from, Some("ctdns_data_timestamp"));
        // 2026-08-21 to 2026-11-29 is 100 days: stale under 70, fresh under 100.
        assert_eq!(r.age_days, Some(100));
        assert_eq!(r.stale, Some(true));
        let lenient = show(&list, "bundled", now, Duration::from_secs(100 * 86_400));
        assert_eq!(lenient.stale, Some(false));
        // Counting logs: exactly those whose state is current and interval not over.
        let argon_h2 = r.by_operator[0]
            .logs
            .iter()
            .find(|l| l.description == "Google 'Argon2026h2' log")
            .unwrap();
        assert!(argon_h2.counts_now);
        let argon_h1 = r.by_operator[0]
            .logs
            .iter()
            .find(|l| l.description == "Google 'Argon2026h1' log")
            .unwrap();
        assert_eq!(argon_h1.state, Some("rejected"));
        assert!(!argon_h1.counts_now);
        let counted = r
            .by_operator
            .iter()
            .flat_map(|o| &o.logs)
            .filter(|l| l.counts_now)
            .count();
        assert_eq!(counted, r.logs_counting_now);
        assert!(r.logs_counting_now > 0 && r.logs_counting_now < r.logs);
        assert_eq!(r.mimic_logs, 0);
        let text = r.human();
        assert!(text.contains("STALE, more than 70 days"), "{text}");
        assert!(text.contains("(60 logs, 8 operators)"), "{text}");
        assert!(
            text.contains("  * Google 'Argon2026h2' log: usable since 2024-09-30T22:19:27Z"),
            "{text}"
        );
        assert!(
            text.contains("  - Google 'Argon2026h1' log: rejected since"),
            "{text}"
        );
    }

    #[test]
    fn show_undated_list() {
        let list = LogList::from_json(APPLE).unwrap();
        let r = show(&list, "apple", c86_day(), Duration::from_secs(70 * 86_400));
        assert_eq!((r.age_days, r.stale, r.age_from), (None, None, None));
        assert!(r.human().contains("age: unknown"));
    }

    #[test]
    fn real_chrome_list_is_acceptable_when_fresh() {
        let c = check(C86, c86_day(), StalenessPolicy::default()).unwrap();
        assert!(c.acceptable(), "{:?}", c.problems);
        // Its two placeholder logs have 1-day intervals; two Let's Encrypt 2026h1 shards are
        // still usable although their intervals ended on 2026-06-17 and 2026-06-18.
        let about = |rule: Rule| {
            c.problems
                .iter()
                .filter(|p| p.rule == rule)
                .map(|p| p.log.clone().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            about(Rule::IntervalUnusual),
            [
                "Bogus placeholder log to unbreak misbehaving CT libraries",
                "Bogus RFC6962 log to avoid breaking misbehaving CT libraries"
            ]
        );
        assert_eq!(
            about(Rule::IntervalEnded),
            [
                "Let's Encrypt 'Sycamore2026h1'",
                "Let's Encrypt 'Willow2026h1'"
            ]
        );
        assert_eq!(c.problems.len(), 4, "{:?}", c.problems);
        // A year later it is stale: a warning, or an error when refusing stale lists.
        let later = c86_day() + 365 * DAY_MS;
        let c = check(C86, later, StalenessPolicy::default()).unwrap();
        assert!(c.acceptable(), "{:?}", c.problems);
        assert!(rules(&c, Severity::Warning).contains(&Rule::Stale));
        let refuse = StalenessPolicy {
            refuse_when_stale: true,
            ..StalenessPolicy::default()
        };
        let c = check(C86, later, refuse).unwrap();
        assert!(rules(&c, Severity::Error).contains(&Rule::Stale));
    }

    #[test]
    fn apple_list_has_no_timestamp() {
        let c = check(APPLE, c86_day(), StalenessPolicy::default()).unwrap();
        assert!(c.acceptable(), "{:?}", c.problems);
        assert!(rules(&c, Severity::Warning).contains(&Rule::NoTimestamp));
        let refuse = StalenessPolicy {
            refuse_when_stale: true,
            ..StalenessPolicy::default()
        };
        let c = check(APPLE, c86_day(), refuse).unwrap();
        assert_eq!(rules(&c, Severity::Error), vec![Rule::NoTimestamp]);
    }

    #[test]
    fn logs_without_state_are_warnings() {
        let c = check(
            ALL_LOGS,
            ms("2025-05-06T00:00:00Z"),
            StalenessPolicy::default(),
        )
        .unwrap();
        assert!(c.acceptable(), "{:?}", c.problems);
        let missing = c
            .problems
            .iter()
            .filter(|p| p.rule == Rule::MissingState)
            .count();
        let list = LogList::from_json(ALL_LOGS).unwrap();
        assert_eq!(
            missing,
            list.logs().iter().filter(|l| l.state.is_none()).count()
        );
        assert!(missing > 0);
    }

    #[test]
    fn every_broken_entry_is_reported() {
        // Two broken entries and a duplicate in one list: the parser stops at the first,
        // check reports all three.
        let json = edit(C86, |v| {
            v["operators"][0]["logs"][0]["log_id"] =
                "1219ENGn9XfCx+lf1wC/+YLJM1pl4dCzAXMXwMjFaXc=".into();
            v["operators"][1]["logs"][0]["state"] =
                serde_json::json!({"expired": {"timestamp": 5}});
            let copy = v["operators"][2]["logs"][0].clone();
            v["operators"][3]["logs"].as_array_mut().unwrap().push(copy);
        });
        let c = check(&json, c86_day(), StalenessPolicy::default()).unwrap();
        assert_eq!(
            rules(&c, Severity::Error),
            vec![
                Rule::LogIdMismatch,
                Rule::UnknownState,
                Rule::DuplicateLogId
            ]
        );
        assert_eq!(
            c.problems[0].log.as_deref(),
            Some("Google 'Argon2026h1' log")
        );
        assert!(c.problems[0].to_string().starts_with("error: "));
        assert!(c.problems[0].to_string().ends_with("[log_id_mismatch]"));
    }

    #[test]
    fn broken_top_level_and_entries() {
        let json = edit(C86, |v| {
            v["log_list_timestamp"] = "June".into();
            v["operators"][0]["logs"][1]
                .as_object_mut()
                .unwrap()
                .remove("description");
            v["operators"][1]["logs"][0]["temporal_interval"] = serde_json::json!({
                "start_inclusive": "2027-01-01T00:00:00Z",
                "end_exclusive": "2026-01-01T00:00:00Z"});
        });
        let c = check(&json, c86_day(), StalenessPolicy::default()).unwrap();
        assert_eq!(
            rules(&c, Severity::Error),
            vec![Rule::Schema, Rule::Schema, Rule::BadTemporalInterval]
        );
        assert_eq!(c.problems[1].log.as_deref(), Some("operators[0].logs[1]"));
        assert!(check(b"{\"operators\": 5}", 0, StalenessPolicy::default())
            .unwrap()
            .problems
            .iter()
            .any(|p| p.rule == Rule::Schema));
        assert!(check(b"not json", 0, StalenessPolicy::default()).is_err());
    }

    #[test]
    fn single_operator_and_future_timestamp() {
        let json = edit(C86, |v| {
            v["operators"].as_array_mut().unwrap().truncate(1);
            v["log_list_timestamp"] = "2030-01-01T00:00:00Z".into();
        });
        let c = check(&json, c86_day(), StalenessPolicy::default()).unwrap();
        assert_eq!(
            rules(&c, Severity::Error),
            vec![Rule::TooFewOperators, Rule::FutureTimestamp]
        );
        assert!(c.problems[0].message.contains("1 operator(s) (Google)"));
        // An hour of clock skew is tolerated.
        let json = edit(C86, |v| {
            v["log_list_timestamp"] = "2026-06-24T00:59:00Z".into();
        });
        let c = check(&json, c86_day(), StalenessPolicy::default()).unwrap();
        assert!(c.acceptable(), "{:?}", c.problems);
    }

    #[test]
    fn mimic_log_is_an_error() {
        use rcgen::PublicKeyData;
        let kp = rcgen::KeyPair::from_pem(include_str!(
            "../../tests/data/ct-vectors/mimics/mimic2.pem"
        ))
        .unwrap();
        let spki = kp.subject_public_key_info();
        let json = edit(C86, |v| {
            v["operators"][1]["logs"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                    "description": "Mimic 2",
                    "log_id": crate::ct::log_list::MIMIC_LOG_IDS[1],
                    "key": b64(&spki),
                    "url": "https://mimic.example/",
                    "state": {"usable": {"timestamp": "2020-01-01T00:00:00Z"}}
                }));
        });
        let c = check(&json, c86_day(), StalenessPolicy::default()).unwrap();
        assert_eq!(rules(&c, Severity::Error), vec![Rule::MimicLog]);
        let list = LogList::from_json(&json).unwrap();
        let r = show(&list, "x", c86_day(), Duration::from_secs(70 * 86_400));
        assert_eq!(r.mimic_logs, 1);
        assert!(r.human().contains("Mimic 2 MIMIC: usable"));
    }

    #[test]
    fn interval_and_state_warnings() {
        let json = edit(C86, |v| {
            // Argon2026h2 qualified from a future date; Argon2026h1 usable with its interval
            // over; a 10-year interval; data newer than curation.
            v["operators"][0]["logs"][1]["state"] =
                serde_json::json!({"qualified": {"timestamp": "2027-01-01T00:00:00Z"}});
            v["operators"][0]["logs"][2]["temporal_interval"] = serde_json::json!({
                "start_inclusive": "2026-01-01T00:00:00Z",
                "end_exclusive": "2036-01-01T00:00:00Z"});
            v["ctdns_data_timestamp"] = "2026-06-24T00:00:00Z".into();
        });
        let c = check(
            &json,
            ms("2026-07-02T00:00:00Z"),
            StalenessPolicy::default(),
        )
        .unwrap();
        assert!(c.acceptable(), "{:?}", c.problems);
        let w = rules(&c, Severity::Warning);
        for rule in [
            Rule::IntervalEnded,
            Rule::StateInFuture,
            Rule::IntervalUnusual,
            Rule::DataAfterCuration,
        ] {
            assert!(w.contains(&rule), "{rule:?} missing from {w:?}");
        }
    }

    #[test]
    fn diff_chrome_80_to_86() {
        let old = LogList::from_json(C80).unwrap();
        let new = LogList::from_json(C86).unwrap();
        let d = diff(&old, &new);
        assert_eq!(d.old.version.as_deref(), Some("80.4"));
        assert_eq!(d.new.version.as_deref(), Some("86.4"));
        assert_eq!(d.old.logs - d.removed.len() + d.added.len(), d.new.logs);
        let names = |v: &[DiffLog]| v.iter().map(|l| l.description.clone()).collect::<Vec<_>>();
        assert!(names(&d.added).contains(&"Google 'ParcelYard2026h2' log".to_string()));
        assert!(names(&d.removed).contains(&"Google 'Argon2025h2' log".to_string()));
        let argon27 = d
            .changed
            .iter()
            .find(|c| c.description == "Google 'Argon2027h1'")
            .unwrap();
        assert_eq!(argon27.field, Field::State);
        assert_eq!(argon27.old, "qualified since 2025-10-18T00:30:00Z");
        assert_eq!(argon27.new, "usable since 2025-12-28T00:30:00Z");
        // Diff against itself is empty.
        let same = diff(&new, &new);
        assert!(same.added.is_empty() && same.removed.is_empty() && same.changed.is_empty());
        let text = d.human();
        assert!(text.contains("version: 80.4 -> 86.4"), "{text}");
        assert!(
            text.contains("ctdns_data_timestamp: - (unchanged)"),
            "{text}"
        );
        assert!(
            text.contains("+ Google 'ParcelYard2026h2' log [Google]"),
            "{text}"
        );
    }

    #[test]
    fn diff_operator_move_and_fields() {
        let moved = edit(C86, |v| {
            let log = v["operators"][0]["logs"].as_array_mut().unwrap().remove(1);
            v["operators"][1]["logs"].as_array_mut().unwrap().push(log);
            v["operators"][2]["logs"][0]["url"] = "https://moved.example/".into();
        });
        let d = diff(
            &LogList::from_json(C86).unwrap(),
            &LogList::from_json(&moved).unwrap(),
        );
        assert!(d.added.is_empty() && d.removed.is_empty());
        let fields: Vec<Field> = d.changed.iter().map(|c| c.field).collect();
        assert_eq!(fields.len(), 2, "{:?}", d.changed);
        assert!(fields.contains(&Field::Operator) && fields.contains(&Field::Url));
        let op = d
            .changed
            .iter()
            .find(|c| c.field == Field::Operator)
            .unwrap();
        assert_eq!(op.old, "Google");
        assert_ne!(op.new, "Google");
    }
}
