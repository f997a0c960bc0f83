//! The test PKI's logs as a Chrome v3 `log_list.json`
//! (schema <https://www.gstatic.com/ct/log_list/v3/log_list_schema.json>).

use base64::Engine;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::ca::TestPki;
use super::log::{LogKind, LogStateKind, TestLog};
use super::PkiError;

#[derive(Serialize)]
struct LogList<'a> {
    version: &'a str,
    log_list_timestamp: String,
    operators: Vec<Operator<'a>>,
}

#[derive(Serialize)]
struct Operator<'a> {
    name: &'a str,
    email: Vec<String>,
    logs: Vec<Log<'a>>,
    tiled_logs: Vec<Log<'a>>,
}

#[derive(Serialize)]
struct Log<'a> {
    description: &'a str,
    log_id: String,
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    submission_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    monitoring_url: Option<String>,
    mmd: u32,
    state: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    temporal_interval: Option<TemporalInterval>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    previous_operators: Vec<PreviousOperator<'a>>,
}

#[derive(Serialize)]
struct TemporalInterval {
    start_inclusive: String,
    end_exclusive: String,
}

#[derive(Serialize)]
struct PreviousOperator<'a> {
    name: &'a str,
    end_time: String,
}

/// RFC 3339 in UTC with whole seconds (`2026-06-23T13:36:44Z`), as the real lists write it.
pub(crate) fn rfc3339(t: OffsetDateTime, what: &'static str) -> Result<String, PkiError> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).map_err(|_| PkiError::Time { what })
}

fn state_json(log: &TestLog) -> Result<serde_json::Value, PkiError> {
    let mut body = serde_json::Map::new();
    body.insert(
        "timestamp".into(),
        rfc3339(log.state.since, "log state timestamp")?.into(),
    );
    if log.state.kind == LogStateKind::Readonly {
        // The schema requires the frozen tree head; a test log has no tree, so write an
        // empty one (size 0, SHA-256 of the empty string).
        let empty = crate::ct::sha256(&[]);
        body.insert(
            "final_tree_head".into(),
            serde_json::json!({
                "sha256_root_hash": base64::engine::general_purpose::STANDARD.encode(empty),
                "tree_size": 0,
            }),
        );
    }
    let mut state = serde_json::Map::new();
    state.insert(log.state.kind.as_str().into(), body.into());
    Ok(state.into())
}

fn log_json(log: &TestLog) -> Result<Log<'_>, PkiError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let tiled = log.kind == LogKind::StaticCtApi;
    Ok(Log {
        description: &log.name,
        log_id: log.log_id().to_base64(),
        key: b64.encode(log.spki_der()),
        url: (!tiled).then_some(log.url.as_str()),
        submission_url: tiled.then_some(log.url.as_str()),
        monitoring_url: tiled.then(|| format!("{}monitor/", log.url)),
        mmd: log.mmd,
        state: state_json(log)?,
        temporal_interval: log
            .temporal_interval
            .map(|(start, end)| {
                Ok::<_, PkiError>(TemporalInterval {
                    start_inclusive: rfc3339(start, "temporal_interval.start_inclusive")?,
                    end_exclusive: rfc3339(end, "temporal_interval.end_exclusive")?,
                })
            })
            .transpose()?,
        previous_operators: log
            .previous_operators
            .iter()
            .map(|p| {
                Ok(PreviousOperator {
                    name: &p.name,
                    end_time: rfc3339(p.end_time, "previous_operators.end_time")?,
                })
            })
            .collect::<Result<_, PkiError>>()?,
    })
}

impl TestPki {
    /// The PKI's logs as a Chrome v3 log list, stamped `timestamp`. Operators appear in the
    /// order their first log was added; each operator's email is `ct@<operator>.test`.
    pub fn log_list_json(&self, timestamp: OffsetDateTime) -> Result<String, PkiError> {
        let mut operators: Vec<Operator<'_>> = Vec::new();
        for log in &self.logs {
            let idx = match operators.iter().position(|o| o.name == log.operator) {
                Some(i) => i,
                None => {
                    operators.push(Operator {
                        name: &log.operator,
                        email: vec![format!(
                            "ct@{}.test",
                            log.operator
                                .chars()
                                .filter(char::is_ascii_alphanumeric)
                                .collect::<String>()
                                .to_ascii_lowercase()
                        )],
                        logs: Vec::new(),
                        tiled_logs: Vec::new(),
                    });
                    operators.len() - 1
                }
            };
            let entry = log_json(log)?;
            if let Some(op) = operators.get_mut(idx) {
                match log.kind {
                    LogKind::Rfc6962 => op.logs.push(entry),
                    LogKind::StaticCtApi => op.tiled_logs.push(entry),
                }
            }
        }
        let list = LogList {
            version: "1.0",
            log_list_timestamp: rfc3339(timestamp, "log_list_timestamp")?,
            operators,
        };
        Ok(serde_json::to_string_pretty(&list)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{default_logs, PkiOptions};
    use serde_json::Value;
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
}
