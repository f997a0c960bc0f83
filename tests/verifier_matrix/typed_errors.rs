//! Typed errors outside the handshake.

use crate::*;

#[test]
fn bad_log_lists_are_typed_errors() {
    let w = &matrix().world;
    assert!(matches!(
        LogList::from_json(b"{\"operators\": ["),
        Err(LogListError::Json { .. })
    ));
    assert!(matches!(
        LogList::from_json(b"{\"version\": \"1\"}"),
        Err(LogListError::UnknownSchema { .. })
    ));
    // A log whose log_id is not the hash of its key.
    let mut json: serde_json::Value = serde_json::from_str(&w.list_json).unwrap();
    json["operators"][0]["logs"][0]["log_id"] = serde_json::Value::String(base64_of(&[1u8; 32]));
    assert!(matches!(
        LogList::from_json(json.to_string().as_bytes()),
        Err(LogListError::LogIdMismatch { .. })
    ));
    // A key that is not an SPKI.
    let mut json: serde_json::Value = serde_json::from_str(&w.list_json).unwrap();
    json["operators"][0]["logs"][0]["key"] = serde_json::Value::String(base64_of(b"not a key"));
    assert!(matches!(
        LogList::from_json(json.to_string().as_bytes()),
        Err(LogListError::BadKey { .. })
    ));
    // An unknown state.
    let mut json: serde_json::Value = serde_json::from_str(&w.list_json).unwrap();
    json["operators"][0]["logs"][0]["state"] =
        serde_json::json!({"trusted": {"timestamp": "2026-01-01T00:00:00Z"}});
    assert!(matches!(
        LogList::from_json(json.to_string().as_bytes()),
        Err(LogListError::UnknownState { .. })
    ));
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The decision type is what `ctdns verify` prints; make sure a refusal's Display names
/// its rule, as the CLI's verdict line relies on.
#[test]
fn refusal_messages_name_their_rule() {
    let m = matrix();
    for case in m.cases.iter().filter(|c| c.direct) {
        let Some((ee, inter)) = case.chain.split_first() else {
            continue;
        };
        let d: Decision =
            case.verifier
                .verify(ee, inter, case.ip, case.dns.as_ref(), &case.ocsp, case.at);
        if let Some(r) = &d.refusal {
            let text = r.to_string();
            assert!(
                text.starts_with(&format!("rule {}", r.rule())),
                "[{}] {text}",
                case.name
            );
        }
    }
}
