//! The test PKI's logs as a Chrome v3 `log_list.json`
//! (schema <https://www.gstatic.com/ct/log_list/v3/log_list_schema.json>).

use base64::Engine;
use time::OffsetDateTime;

use super::ca::TestPki;
use super::log::{LogKind, LogStateKind, TestLog};
use super::PkiError;
use crate::ct::log_list::schema::{
    FinalTreeHead, LogEntry, LogListJson, Operator, PreviousOperatorJson, StateBody,
    TemporalInterval, Timestamp,
};

/// RFC 3339 in UTC with whole seconds (`2026-06-23T13:36:44Z`), as the real lists write it.
fn timestamp(t: OffsetDateTime, what: &'static str) -> Result<Timestamp, PkiError> {
    Timestamp::rfc3339_seconds(t).ok_or(PkiError::Time { what })
}

fn state(log: &TestLog) -> Result<StateBody, PkiError> {
    // The schema requires a read-only log's frozen tree head; a test log has no tree, so
    // write an empty one (size 0, SHA-256 of the empty string).
    let final_tree_head = (log.state.kind == LogStateKind::Readonly).then(|| FinalTreeHead {
        sha256_root_hash: Some(
            base64::engine::general_purpose::STANDARD.encode(crate::ct::sha256(&[])),
        ),
        tree_size: Some(0),
    });
    Ok(StateBody {
        timestamp: Some(timestamp(log.state.since, "log state timestamp")?),
        final_tree_head,
        version: None,
    })
}

fn log_entry(log: &TestLog) -> Result<LogEntry, PkiError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let tiled = log.kind == LogKind::StaticCtApi;
    let temporal_interval = log
        .temporal_interval
        .map(|(start, end)| {
            Ok::<_, PkiError>(TemporalInterval {
                start_inclusive: Some(timestamp(start, "temporal_interval.start_inclusive")?),
                end_exclusive: Some(timestamp(end, "temporal_interval.end_exclusive")?),
            })
        })
        .transpose()?;
    let previous_operators = log
        .previous_operators
        .iter()
        .map(|p| {
            Ok(PreviousOperatorJson {
                name: Some(p.name.clone()),
                end_time: Some(timestamp(p.end_time, "previous_operators.end_time")?),
            })
        })
        .collect::<Result<Vec<_>, PkiError>>()?;
    Ok(LogEntry {
        description: Some(log.name.clone()),
        log_id: Some(log.log_id().to_base64()),
        key: Some(b64.encode(log.spki_der())),
        url: (!tiled).then(|| log.url.clone()),
        submission_url: tiled.then(|| log.url.clone()),
        monitoring_url: tiled.then(|| format!("{}monitor/", log.url)),
        mmd: Some(u64::from(log.mmd)),
        state: Some(LogEntry::single_state(log.state.kind.as_str(), state(log)?)),
        temporal_interval,
        previous_operators: (!previous_operators.is_empty()).then_some(previous_operators),
        log_type: None,
    })
}

impl TestPki {
    /// The PKI's logs as a Chrome v3 log list, stamped `timestamp`, written with the schema
    /// types [`crate::ct::log_list::LogList::from_json`] reads. Operators appear in the
    /// order their first log was added; each operator's email is `ct@<operator>.test`.
    pub fn log_list_json(&self, timestamp: OffsetDateTime) -> Result<String, PkiError> {
        Ok(serde_json::to_string_pretty(
            &self.log_list_schema(timestamp)?,
        )?)
    }

    /// The document [`TestPki::log_list_json`] serializes.
    pub fn log_list_schema(&self, stamp: OffsetDateTime) -> Result<LogListJson, PkiError> {
        let mut operators: Vec<Operator> = Vec::new();
        for log in &self.logs {
            let idx = match operators
                .iter()
                .position(|o| o.name.as_deref() == Some(log.operator.as_str()))
            {
                Some(i) => i,
                None => {
                    operators.push(Operator {
                        name: Some(log.operator.clone()),
                        email: Some(vec![format!(
                            "ct@{}.test",
                            log.operator
                                .chars()
                                .filter(char::is_ascii_alphanumeric)
                                .collect::<String>()
                                .to_ascii_lowercase()
                        )]),
                        logs: Some(Vec::new()),
                        tiled_logs: Some(Vec::new()),
                    });
                    operators.len() - 1
                }
            };
            let entry = log_entry(log)?;
            if let Some(op) = operators.get_mut(idx) {
                let list = match log.kind {
                    LogKind::Rfc6962 => &mut op.logs,
                    LogKind::StaticCtApi => &mut op.tiled_logs,
                };
                list.get_or_insert_with(Vec::new).push(entry);
            }
        }
        Ok(LogListJson {
            schema: None,
            version: Some("1.0".into()),
            log_list_timestamp: Some(timestamp(stamp, "log_list_timestamp")?),
            data_timestamp: None,
            asset_version: None,
            is_all_logs: None,
            operators: Some(operators),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{default_logs, PkiOptions};
    use serde_json::Value;
    use time::format_description::well_known::Rfc3339;
    use time::macros::datetime;

    fn parsed(pki: &TestPki) -> Value {
        serde_json::from_str(
            &pki.log_list_json(datetime!(2026-06-23 13:36:44.5 UTC))
                .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn top_level_shape_matches_chrome_v3() {
        let pki = TestPki::generate(&PkiOptions::default()).unwrap();
        let v = parsed(&pki);
        assert_eq!(v["log_list_timestamp"], "2026-06-23T13:36:44Z");
        assert!(v["version"].is_string());
        let ops = v["operators"].as_array().unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[0]["name"], default_logs::OPERATOR_A);
        assert_eq!(ops[0]["email"][0], "ct@operatora.test");
        let names: Vec<_> = ops[0]["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["description"].as_str().unwrap())
            .collect();
        assert_eq!(names, [default_logs::ALPHA, default_logs::DELTA]);
    }

    #[test]
    fn log_entries_carry_real_keys_and_states() {
        let pki = TestPki::generate(&PkiOptions::default()).unwrap();
        let v = parsed(&pki);
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut seen = 0;
        for op in v["operators"].as_array().unwrap() {
            for l in op["logs"].as_array().unwrap() {
                let log = pki.log(l["description"].as_str().unwrap()).unwrap();
                let key = b64.decode(l["key"].as_str().unwrap()).unwrap();
                assert_eq!(key, log.spki_der());
                let id = b64.decode(l["log_id"].as_str().unwrap()).unwrap();
                assert_eq!(id, crate::ct::sha256(&key));
                assert_eq!(l["mmd"], 86400);
                assert!(l["url"].as_str().unwrap().starts_with("https://"));
                let state = l["state"].as_object().unwrap();
                assert_eq!(state.len(), 1);
                let ts = state[log.state.kind.as_str()]["timestamp"]
                    .as_str()
                    .unwrap();
                let back = OffsetDateTime::parse(ts, &Rfc3339).unwrap();
                assert_eq!(back.unix_timestamp(), log.state.since.unix_timestamp());
                seen += 1;
            }
        }
        assert_eq!(seen, pki.logs().len());
        let delta = &v["operators"][0]["logs"][1];
        assert!(delta["state"]["retired"]["timestamp"].is_string());
    }

    #[test]
    fn optional_fields_follow_the_schema() {
        let mut pki = TestPki::generate(&PkiOptions {
            default_logs: false,
            ..PkiOptions::default()
        })
        .unwrap();
        let t0 = datetime!(2026-01-01 00:00 UTC);
        let t1 = datetime!(2026-07-01 00:00 UTC);
        pki.add_log(
            TestLog::generate_ecdsa("Sharded", "New Op")
                .unwrap()
                .with_state(LogStateKind::Readonly, t0)
                .with_temporal_interval(t0, t1)
                .with_previous_operator("Old Op", t0),
        )
        .unwrap();
        pki.add_log(TestLog::generate_ecdsa("Tiles", "New Op").unwrap().tiled())
            .unwrap();
        let v = parsed(&pki);
        let op = &v["operators"][0];
        let l = &op["logs"][0];
        assert_eq!(
            l["temporal_interval"]["start_inclusive"],
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(
            l["temporal_interval"]["end_exclusive"],
            "2026-07-01T00:00:00Z"
        );
        assert_eq!(l["previous_operators"][0]["name"], "Old Op");
        assert_eq!(
            l["previous_operators"][0]["end_time"],
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(l["state"]["readonly"]["final_tree_head"]["tree_size"], 0);
        let t = &op["tiled_logs"][0];
        assert_eq!(t["description"], "Tiles");
        assert!(t["submission_url"].is_string());
        assert!(t["monitoring_url"].is_string());
        assert!(t.get("url").is_none());
        // Absent optional fields are omitted, not null.
        let plain = TestPki::generate(&PkiOptions::default()).unwrap();
        let v = parsed(&plain);
        let alpha = &v["operators"][0]["logs"][0];
        assert!(alpha.get("temporal_interval").is_none());
        assert!(alpha.get("previous_operators").is_none());
    }

    /// What the writer emits, the parser reads back: same structs on both sides.
    #[test]
    fn written_list_loads_with_the_parser() {
        use crate::ct::log_list::{LogList, LogState};
        let mut pki = TestPki::generate(&PkiOptions::default()).unwrap();
        let t0 = datetime!(2026-01-01 00:00 UTC);
        let t1 = datetime!(2026-07-01 00:00 UTC);
        pki.add_log(
            TestLog::generate_ecdsa("Sharded", "New Op")
                .unwrap()
                .with_state(LogStateKind::Readonly, t0)
                .with_temporal_interval(t0, t1)
                .with_previous_operator("Old Op", t0),
        )
        .unwrap();
        pki.add_log(TestLog::generate_ecdsa("Tiles", "New Op").unwrap().tiled())
            .unwrap();
        let stamp = datetime!(2026-06-23 13:36:44.5 UTC);
        let json = pki.log_list_json(stamp).unwrap();
        let list = LogList::from_json(json.as_bytes()).unwrap();
        assert_eq!(list.version(), Some("1.0"));
        assert_eq!(list.timestamp_ms(), Some(1_782_221_804_000));
        assert_eq!(list.logs().len(), pki.logs().len());
        for log in pki.logs() {
            let loaded = list.get(&log.log_id()).unwrap();
            assert_eq!(loaded.description, log.name);
            assert_eq!(loaded.operator, log.operator);
            assert_eq!(loaded.key, log.spki_der());
            assert_eq!(loaded.tiled, log.kind == LogKind::StaticCtApi);
            assert_eq!(loaded.state.unwrap().name(), log.state.kind.as_str());
        }
        let sharded = list
            .logs()
            .iter()
            .find(|l| l.description == "Sharded")
            .unwrap();
        assert_eq!(
            sharded.state,
            Some(LogState::ReadOnly {
                since_ms: 1_767_225_600_000
            })
        );
        assert_eq!(
            sharded.temporal_interval,
            Some((1_767_225_600_000, 1_782_864_000_000))
        );
        assert_eq!(sharded.operator_at(0), "Old Op");
        assert_eq!(sharded.operator_at(1_767_225_600_000), "New Op");
        let tiles = list
            .logs()
            .iter()
            .find(|l| l.description == "Tiles")
            .unwrap();
        assert_eq!(tiles.monitoring_url, Some(format!("{}monitor/", tiles.url)));
        // The document re-serializes to the same text.
        let doc = pki.log_list_schema(stamp).unwrap();
        let reread: crate::ct::log_list::schema::LogListJson = serde_json::from_str(&json).unwrap();
        assert_eq!(reread, doc);
        assert_eq!(serde_json::to_string_pretty(&reread).unwrap(), json);
    }
}
