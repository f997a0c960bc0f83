//! The v3 log-list JSON as serde types: what [`LogList::from_json`](super::LogList::from_json)
//! reads and what the test PKI (`crate::pki`) writes.
//!
//! One schema covers every flavour [`super`] accepts: Chrome's v3 `log_list.json` and
//! `all_logs_list.json` (<https://www.gstatic.com/ct/log_list/v3/log_list_schema.json>), the
//! Android variant (integer-millisecond timestamps) and Apple's (`$schema`, `assetVersion`,
//! states with a `version`), plus ctdns's own `ctdns_data_timestamp`.
//!
//! These types describe the **shape** of the document only. Fields the schema requires are
//! still `Option` here, so that their absence is reported by the checks of
//! [`super::LogList::from_json`] as a [`LogListError::MissingField`](super::LogListError)
//! naming the log, rather than as a bare serde message; timestamps keep the form they were
//! written in ([`Timestamp`]) and are checked there too. Unknown fields are ignored when
//! reading; absent (`None`) fields are omitted when writing.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A whole log list. `L` is the type of each log entry: [`LogEntry`] for a full parse;
/// `ctdns log-list check` reads entries as raw JSON first so that one broken entry does not
/// hide the others.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct LogListJson<L = LogEntry> {
    /// Apple's schema URL (`$schema`).
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The list's version, e.g. `86.4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// When the list was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_list_timestamp: Option<Timestamp>,
    /// ctdns's own lists: the date of the newest source data
    /// ([`DATA_TIMESTAMP_FIELD`](super::DATA_TIMESTAMP_FIELD)).
    #[serde(
        rename = "ctdns_data_timestamp",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub data_timestamp: Option<Timestamp>,
    /// Apple's `assetVersion`.
    #[serde(
        rename = "assetVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub asset_version: Option<u64>,
    /// `true` in Chrome's `all_logs_list.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_all_logs: Option<bool>,
    /// The operators and their logs (required: a document without it is no log list).
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub operators: Option<Vec<Operator<L>>>,
}

/// One entry of `operators`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct Operator<L = LogEntry> {
    /// The operator's name (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Contact addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Vec<String>>,
    /// RFC 6962 logs.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub logs: Option<Vec<L>>,
    /// Static-ct-api (tiled) logs.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub tiled_logs: Option<Vec<L>>,
}

/// One log, under `logs` or `tiled_logs`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct LogEntry {
    /// Human-readable name (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Base64 SHA-256 of the key (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_id: Option<String>,
    /// Base64 DER `SubjectPublicKeyInfo` (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// An RFC 6962 log's URL (required under `logs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A tiled log's submission URL (required under `tiled_logs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_url: Option<String>,
    /// A tiled log's monitoring URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring_url: Option<String>,
    /// Maximum merge delay, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mmd: Option<u64>,
    /// The state: an object holding exactly one of `pending`, `qualified`, `usable`,
    /// `readonly`, `retired`, `rejected` (checked when the list is loaded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<BTreeMap<String, StateBody>>,
    /// `[start_inclusive, end_exclusive)` of the certificate expiry times the log accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporal_interval: Option<TemporalInterval>,
    /// Operators that ran the log before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_operators: Option<Vec<PreviousOperatorJson>>,
    /// `test` or `monitoring_only` in `all_logs_list.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_type: Option<String>,
}

impl LogEntry {
    /// A `state` object holding the one state `name` with `body`.
    pub fn single_state(name: &str, body: StateBody) -> BTreeMap<String, StateBody> {
        BTreeMap::from([(name.to_string(), body)])
    }
}

/// The body of a state: when the log entered it, and what some states add.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct StateBody {
    /// When the log entered the state (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    /// `readonly`: the frozen tree head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_tree_head: Option<FinalTreeHead>,
    /// Apple: the list version that set the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A read-only log's final tree head.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct FinalTreeHead {
    /// Base64 SHA-256 root hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256_root_hash: Option<String>,
    /// Number of entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree_size: Option<u64>,
}

/// A log's `temporal_interval`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct TemporalInterval {
    /// First expiry time accepted (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_inclusive: Option<Timestamp>,
    /// First expiry time no longer accepted (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_exclusive: Option<Timestamp>,
}

/// One entry of a log's `previous_operators`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct PreviousOperatorJson {
    /// The earlier operator's name (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When it stopped running the log (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
}

/// A timestamp as written: RFC 3339 text (Chrome, Apple) or a JSON number of milliseconds
/// (Android). Whether it is a valid instant is checked by [`Timestamp::to_unix_ms`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Timestamp {
    /// RFC 3339 text, e.g. `2026-06-23T13:36:44Z`.
    Rfc3339(String),
    /// Unix milliseconds (any JSON number is kept; only non-negative integers are valid).
    Millis(serde_json::Number),
}

impl Timestamp {
    /// `t` as RFC 3339 in UTC with whole seconds (`2026-06-23T13:36:44Z`), as the real lists
    /// write it; `None` when `t` cannot be formatted (outside years 0000–9999).
    pub fn rfc3339_seconds(t: OffsetDateTime) -> Option<Timestamp> {
        let t = t.to_offset(time::UtcOffset::UTC);
        let t = t.replace_nanosecond(0).unwrap_or(t);
        if !(0..=9999).contains(&t.year()) {
            return None;
        }
        t.format(&Rfc3339).ok().map(Timestamp::Rfc3339)
    }

    /// Unix milliseconds as an Android-style number.
    pub fn millis(ms: u64) -> Timestamp {
        Timestamp::Millis(ms.into())
    }

    /// The instant in Unix milliseconds; `None` for text that is not RFC 3339, a number that
    /// is negative or not an integer, or an instant before 1970.
    pub fn to_unix_ms(&self) -> Option<u64> {
        match self {
            Timestamp::Millis(n) => n.as_u64(),
            Timestamp::Rfc3339(s) => {
                let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
                u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
            }
        }
    }
}

fn none<T>() -> Option<T> {
    None
}

/// The derived (`remote = "Self"`) deserializer of a schema struct.
trait Repr<'de>: Sized {
    fn repr<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}

/// Deserialize `T` from a JSON object only. serde's derived structs also accept an array of
/// the fields in order; a log list never holds one, so that form is refused as the wrong
/// type. The object's entries go to the derived deserializer ([`Repr`]).
fn object<'de, D: Deserializer<'de>, T: Repr<'de>>(d: D) -> Result<T, D::Error> {
    struct ObjectOnly<T>(PhantomData<T>);
    impl<'de, T: Repr<'de>> Visitor<'de> for ObjectOnly<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::repr(MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_map(ObjectOnly(PhantomData))
}

/// `Serialize` and object-only `Deserialize` for a schema struct from its derived ones.
macro_rules! object_only {
    ($($t:ident),*) => {$(
        impl<'de> Repr<'de> for $t {
            fn repr<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $t::deserialize(d)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                object(d)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $t::serialize(self, s)
            }
        }
    )*};
}

object_only!(
    LogEntry,
    StateBody,
    FinalTreeHead,
    TemporalInterval,
    PreviousOperatorJson
);

impl<'de, L: Deserialize<'de>> Repr<'de> for LogListJson<L> {
    fn repr<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        LogListJson::deserialize(d)
    }
}
impl<'de, L: Deserialize<'de>> Deserialize<'de> for LogListJson<L> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        object(d)
    }
}
impl<L: Serialize> Serialize for LogListJson<L> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        LogListJson::serialize(self, s)
    }
}

impl<'de, L: Deserialize<'de>> Repr<'de> for Operator<L> {
    fn repr<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Operator::deserialize(d)
    }
}
impl<'de, L: Deserialize<'de>> Deserialize<'de> for Operator<L> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        object(d)
    }
}
impl<L: Serialize> Serialize for Operator<L> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Operator::serialize(self, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn timestamps_keep_their_form_and_check_their_value() {
        let text: Timestamp = serde_json::from_str("\"2026-06-23T13:36:44Z\"").unwrap();
        assert_eq!(text.to_unix_ms(), Some(1_782_221_804_000));
        assert_eq!(
            serde_json::to_string(&text).unwrap(),
            "\"2026-06-23T13:36:44Z\""
        );
        let ms: Timestamp = serde_json::from_str("1782221804000").unwrap();
        assert_eq!(ms, Timestamp::millis(1_782_221_804_000));
        assert_eq!(ms.to_unix_ms(), text.to_unix_ms());
        assert_eq!(serde_json::to_string(&ms).unwrap(), "1782221804000");
        for bad in ["\"yesterday\"", "-5", "1.5", "\"1969-12-31T23:59:59Z\""] {
            let t: Timestamp = serde_json::from_str(bad).unwrap();
            assert_eq!(t.to_unix_ms(), None, "{bad}");
        }
        assert!(serde_json::from_str::<Timestamp>("true").is_err());
    }

    #[test]
    fn rfc3339_seconds_truncates_and_refuses_out_of_range_years() {
        assert_eq!(
            Timestamp::rfc3339_seconds(datetime!(2026-06-23 15:36:44.9 +02:00)),
            Some(Timestamp::Rfc3339("2026-06-23T13:36:44Z".into()))
        );
        assert_eq!(
            Timestamp::rfc3339_seconds(datetime!(-0001-01-01 00:00 UTC)),
            None
        );
    }

    #[test]
    fn absent_fields_are_omitted_and_unknown_fields_ignored() {
        let entry = LogEntry {
            description: Some("L".into()),
            state: Some(LogEntry::single_state(
                "usable",
                StateBody {
                    timestamp: Some(Timestamp::millis(5)),
                    ..StateBody::default()
                },
            )),
            ..LogEntry::default()
        };
        assert_eq!(
            serde_json::to_value(&entry).unwrap(),
            serde_json::json!({"description": "L", "state": {"usable": {"timestamp": 5}}})
        );
        let doc: LogListJson = serde_json::from_str(
            r#"{"operators": [{"name": "Op", "logs": [{"description": "L", "dns": "x"}]}],
                "future_field": 1}"#,
        )
        .unwrap();
        let ops = doc.operators.unwrap();
        assert_eq!(ops[0].name.as_deref(), Some("Op"));
        assert_eq!(ops[0].tiled_logs, None);
        let logs = ops[0].logs.as_ref().unwrap();
        assert_eq!(logs[0].description.as_deref(), Some("L"));
        assert_eq!(logs[0].key, None);
    }

    #[test]
    fn wrong_json_types_are_serde_errors() {
        for bad in [
            r#"{"operators": [{"name": 5}]}"#,
            r#"{"operators": [{"name": "Op", "logs": [{"mmd": "a day"}]}]}"#,
            r#"{"operators": [{"name": "Op", "logs": [{"state": {"usable": 5}}]}]}"#,
            r#"{"version": 1, "operators": []}"#,
            // serde's derived structs would take these arrays as the fields in order.
            r#"["schema", "1", null, null, null, null, []]"#,
            r#"{"operators": [["Op", null, [], []]]}"#,
            r#"{"operators": [{"name": "Op", "logs": [["L"]]}]}"#,
            r#"{"operators": [{"name": "Op", "logs": [{"temporal_interval": [1, 2]}]}]}"#,
        ] {
            assert!(serde_json::from_str::<LogListJson>(bad).is_err(), "{bad}");
        }
    }
}
