//! `ctdns log-list show | check | diff` through the built binary: the bundled list, the
//! real Chrome, Android and Apple lists of the shared vectors, and broken lists written to a
//! temporary directory (bad key hash, duplicate id, mimic logs, one operator, a future
//! timestamp, not JSON). Exit codes: show 0 / 2, check 0 acceptable / 1 errors / 2
//! unreadable, diff 0 / 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ctdns::ct::LogId;
use serde_json::Value;

const C80: &str = "chrome_log_list_v80.4_2025-12-23.json";
const C86: &str = "chrome_log_list_v86.4_2026-06-23.json";
const ANDROID: &str = "android_log_list_v85.28_2026-03-27.json";
const APPLE: &str = "apple_current_log_list_2026-04-01.json";
/// The day after Chrome 86.4 was published.
const C86_DAY: &str = "2026-06-24T00:00:00Z";

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ct-vectors")
}

fn list(name: &str) -> String {
    vectors()
        .join("loglists")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn bundled() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("crates/ctdns-verify/certs/ct_log_list.json")
        .to_string_lossy()
        .into_owned()
}

fn ctdns(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ctdns"))
        .arg("log-list")
        .args(args)
        .output()
        .expect("run ctdns")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Run; assert the exit code; return stdout.
fn run(args: &[&str], want: i32) -> String {
    let out = ctdns(args);
    assert_eq!(
        out.status.code(),
        Some(want),
        "{args:?}\nstdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Run with `--json`; assert the exit code; return the value.
fn json(args: &[&str], want: i32) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let text = run(&all, want);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON: {e}\n{text}"))
}

fn read_json(path: &str) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Number of logs in a list file, counted from its JSON.
fn count_logs(v: &Value) -> usize {
    v["operators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            ["logs", "tiled_logs"]
                .iter()
                .map(|k| o.get(*k).and_then(Value::as_array).map_or(0, Vec::len))
                .sum::<usize>()
        })
        .sum()
}

fn write(dir: &Path, name: &str, v: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

/// `(rule, severity, log)` of every problem in a `check --json` array.
fn problems(v: &Value) -> Vec<(String, String, Option<String>)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["rule"].as_str().unwrap().to_string(),
                p["severity"].as_str().unwrap().to_string(),
                p["log"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn errors(v: &Value) -> Vec<String> {
    problems(v)
        .into_iter()
        .filter(|(_, s, _)| s == "error")
        .map(|(r, _, _)| r)
        .collect()
}

#[test]
fn show_bundled_list() {
    let v = json(&["show", "--at", "2026-11-29T00:00:00Z"], 0);
    assert_eq!(v["version"], "ctdns-2026.11.2");
    assert_eq!(v["logs"], 60);
    assert_eq!(v["operators"], 8);
    assert_eq!(v["by_operator"].as_array().unwrap().len(), 8);
    assert_eq!(v["data_timestamp"], "2026-08-21T00:00:00Z");
    assert_eq!(v["log_list_timestamp"], "2026-11-26T00:00:00Z");
    assert_eq!(v["age_from"], "ctdns_data_timestamp");
    assert_eq!(v["age_days"], 100);
    assert_eq!(v["stale"], true);
    // Every log is shown once, and the counting ones are the ones flagged.
    let logs: Vec<&Value> = v["by_operator"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| o["logs"].as_array().unwrap())
        .collect();
    assert_eq!(logs.len(), 60);
    let counting = logs.iter().filter(|l| l["counts_now"] == true).count();
    assert_eq!(v["logs_counting_now"], counting);
    // No rejected, retired-in-the-past or mimic log counts.
    for l in &logs {
        if l["state"] == "rejected" || l["mimic"] == true {
            assert_eq!(l["counts_now"], false, "{l}");
        }
    }
    let argon = logs
        .iter()
        .find(|l| l["description"] == "Google 'Argon2026h2' log")
        .unwrap();
    assert_eq!(argon["counts_now"], true);
    assert_eq!(
        argon["log_id"],
        "1219ENGn9XfCx+lf1wC/+YLJM1pl4dCzAXMXwMjFaXc="
    );

    // The bundled list is the committed file: the same report from the path.
    let from_file = json(&["show", &bundled(), "--at", "2026-11-29T00:00:00Z"], 0);
    assert_eq!(from_file["by_operator"], v["by_operator"]);

    let text = run(&["show", "--at", "2026-11-29T00:00:00Z"], 0);
    assert!(text.contains("(60 logs, 8 operators)"), "{text}");
    assert!(
        text.contains("data date (ctdns_data_timestamp): 2026-08-21T00:00:00Z"),
        "{text}"
    );
    assert!(
        text.contains("age: 100 days at 2026-11-29T00:00:00Z (from ctdns_data_timestamp): STALE"),
        "{text}"
    );
    // Fresh under a larger maximum age.
    let text = run(
        &[
            "show",
            "--at",
            "2026-11-29T00:00:00Z",
            "--max-list-age-days",
            "100",
        ],
        0,
    );
    assert!(text.contains("fresh, at most 100 days"), "{text}");
}

#[test]
fn show_real_lists() {
    for (name, version) in [(C86, "86.4"), (ANDROID, "85.28"), (APPLE, "511")] {
        let path = list(name);
        let v = json(&["show", &path, "--at", C86_DAY], 0);
        assert_eq!(v["version"], version, "{name}");
        assert_eq!(v["logs"], count_logs(&read_json(&path)), "{name}");
    }
    let apple = json(&["show", &list(APPLE), "--at", C86_DAY], 0);
    assert_eq!(apple["format"], "apple");
    assert_eq!(apple["age_days"], Value::Null);
    assert_eq!(apple["stale"], Value::Null);
    let android = json(&["show", &list(ANDROID), "--at", C86_DAY], 0);
    assert_eq!(android["format"], "android");
    assert_eq!(android["log_list_timestamp"], "2026-03-27T13:44:53Z");
    // Chrome 86.4 on its own day: Argon2026h1 (interval to 2026-07-01) still counts; a week
    // into July it no longer does.
    let find = |v: &Value, d: &str| -> Value {
        v["by_operator"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|o| o["logs"].as_array().unwrap())
            .find(|l| l["description"] == d)
            .unwrap()
            .clone()
    };
    let june = json(&["show", &list(C86), "--at", C86_DAY], 0);
    let july = json(&["show", &list(C86), "--at", "2026-07-08T00:00:00Z"], 0);
    assert_eq!(find(&june, "Google 'Argon2026h1' log")["counts_now"], true);
    assert_eq!(find(&july, "Google 'Argon2026h1' log")["counts_now"], false);
    assert_eq!(june["stale"], false);
}

#[test]
fn show_bad_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.json");
    let out = ctdns(&["show", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("absent.json"), "{}", stderr(&out));
    let bad = write(dir.path(), "bad.json", &serde_json::json!({"logs": []}));
    let out = ctdns(&["show", &bad]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown schema"), "{}", stderr(&out));
    run(&["show", "--at", "yesterday"], 2);
}

#[test]
fn check_real_lists() {
    // Chrome 86.4 the day after publication: acceptable; its warnings are the placeholder
    // logs' 1-day intervals and two Let's Encrypt shards still usable after their interval.
    let v = json(&["check", &list(C86), "--at", C86_DAY], 0);
    assert!(errors(&v).is_empty(), "{v}");
    let warned: Vec<String> = problems(&v).into_iter().map(|(r, _, _)| r).collect();
    assert_eq!(
        warned,
        [
            "interval_ended",
            "interval_ended",
            "interval_unusual",
            "interval_unusual"
        ]
    );
    // A year later it is stale: a warning, or an error with --refuse-stale-list.
    let v = json(&["check", &list(C86), "--at", "2027-06-24T00:00:00Z"], 0);
    assert!(problems(&v)
        .iter()
        .any(|(r, s, _)| r == "stale" && s == "warning"));
    let v = json(
        &[
            "check",
            &list(C86),
            "--at",
            "2027-06-24T00:00:00Z",
            "--refuse-stale-list",
        ],
        1,
    );
    assert_eq!(errors(&v), ["stale"]);
    // Apple's list has no timestamp.
    let v = json(&["check", &list(APPLE), "--at", C86_DAY], 0);
    assert!(problems(&v)
        .iter()
        .any(|(r, s, _)| r == "no_timestamp" && s == "warning"));
    let v = json(
        &[
            "check",
            &list(APPLE),
            "--at",
            C86_DAY,
            "--refuse-stale-list",
        ],
        1,
    );
    assert_eq!(errors(&v), ["no_timestamp"]);
    // Android's, three months after publication.
    let v = json(&["check", &list(ANDROID), "--at", C86_DAY], 0);
    assert!(errors(&v).is_empty(), "{v}");
    assert!(problems(&v).iter().any(|(r, _, _)| r == "stale"));
}

#[test]
fn check_bundled_list() {
    // 2026-11-27: curated the day before, data 98 days old.
    let at = "2026-11-27T00:00:00Z";
    let v = json(&["check", &bundled(), "--at", at], 0);
    assert_eq!(problems(&v), [("stale".into(), "warning".into(), None)]);
    let v = json(
        &["check", &bundled(), "--at", at, "--max-list-age-days", "98"],
        0,
    );
    assert_eq!(v, serde_json::json!([]));
    // The day before curation its timestamp is in the future.
    let v = json(&["check", &bundled(), "--at", "2026-11-24T00:00:00Z"], 1);
    assert_eq!(errors(&v), ["future_timestamp"]);
    // Text: one line per problem on stdout, the verdict on stderr.
    let out = ctdns(&["check", &bundled(), "--at", at]);
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("warning: the list's data is 98 days old"));
    assert!(lines[0].ends_with("[stale]"));
    assert!(stderr(&out).contains("acceptable (1 warning(s))"));
}

/// Chrome 86.4 with edits, written to `dir`.
fn edited(dir: &Path, name: &str, f: impl FnOnce(&mut Value)) -> String {
    let mut v = read_json(&list(C86));
    f(&mut v);
    write(dir, name, &v)
}

fn mimic_entry(pem_name: &str) -> (Value, String) {
    let pem = std::fs::read_to_string(vectors().join("mimics").join(pem_name)).unwrap();
    let kp = rcgen::KeyPair::from_pem(&pem).unwrap();
    use rcgen::PublicKeyData;
    let spki = kp.subject_public_key_info();
    let id = LogId::from_spki(&spki).to_base64();
    (
        serde_json::json!({
            "description": format!("mimic {pem_name}"),
            "log_id": id,
            "key": B64.encode(&spki),
            "url": "https://mimic.invalid/",
            "state": {"usable": {"timestamp": "2020-01-01T00:00:00Z"}},
        }),
        id,
    )
}

#[test]
fn check_broken_lists() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // A log id that is not SHA-256 of the key (Argon2026h1 given Argon2026h2's id).
    let bad_hash = edited(d, "bad_hash.json", |v| {
        v["operators"][0]["logs"][0]["log_id"] =
            "1219ENGn9XfCx+lf1wC/+YLJM1pl4dCzAXMXwMjFaXc=".into();
    });
    let v = json(&["check", &bad_hash, "--at", C86_DAY], 1);
    assert_eq!(errors(&v), ["log_id_mismatch"]);
    assert_eq!(v[0]["log"], "Google 'Argon2026h1' log");
    assert!(v[0]["message"]
        .as_str()
        .unwrap()
        .contains("DleUvPOuqT4zGyyZB7P3kN+bwj1xMiXdIaklrGHFTiE="));
    // serve would refuse it too.
    let out = ctdns(&["show", &bad_hash]);
    assert_eq!(out.status.code(), Some(2));

    // A log listed twice (under another operator as well).
    let dup = edited(d, "dup.json", |v| {
        let copy = v["operators"][0]["logs"][0].clone();
        v["operators"][4]["logs"].as_array_mut().unwrap().push(copy);
    });
    let v = json(&["check", &dup, "--at", C86_DAY], 1);
    assert_eq!(errors(&v), ["duplicate_log_id"]);

    // Both mimic logs: loadable, but an error each.
    let (m1, id1) = mimic_entry("mimic1.pem");
    let (m2, id2) = mimic_entry("mimic2.pem");
    let mimics = edited(d, "mimics.json", |v| {
        let logs = v["operators"][1]["logs"].as_array_mut().unwrap();
        logs.push(m1);
        logs.push(m2);
    });
    let v = json(&["check", &mimics, "--at", C86_DAY], 1);
    assert_eq!(errors(&v), ["mimic_log", "mimic_log"]);
    let text = run(&["check", &mimics, "--at", C86_DAY], 1);
    assert!(text.contains(&id1) && text.contains(&id2), "{text}");
    let shown = json(&["show", &mimics, "--at", C86_DAY], 0);
    assert_eq!(shown["mimic_logs"], 2);

    // Google alone: no certificate can meet the 2-operator floor.
    let single = edited(d, "single.json", |v| {
        v["operators"].as_array_mut().unwrap().truncate(1);
    });
    let v = json(&["check", &single, "--at", C86_DAY], 1);
    assert_eq!(errors(&v), ["too_few_operators"]);
    // Several operators whose logs are all rejected or retired count as none.
    let none_current = edited(d, "none_current.json", |v| {
        for op in v["operators"].as_array_mut().unwrap() {
            for kind in ["logs", "tiled_logs"] {
                if let Some(logs) = op.get_mut(kind).and_then(Value::as_array_mut) {
                    for log in logs {
                        log["state"] =
                            serde_json::json!({"rejected": {"timestamp": "2026-06-01T00:00:00Z"}});
                    }
                }
            }
        }
    });
    let v = json(&["check", &none_current, "--at", C86_DAY], 1);
    assert_eq!(errors(&v), ["too_few_operators"]);

    // Dated next year.
    let future = edited(d, "future.json", |v| {
        v["log_list_timestamp"] = "2027-06-23T00:00:00Z".into();
    });
    let v = json(&["check", &future, "--at", C86_DAY], 1);
    assert_eq!(errors(&v), ["future_timestamp"]);

    // Everything at once: every problem is reported, one per line.
    let all = edited(d, "all.json", |v| {
        v["log_list_timestamp"] = "2027-06-23T00:00:00Z".into();
        v["operators"][0]["logs"][0]["log_id"] =
            "1219ENGn9XfCx+lf1wC/+YLJM1pl4dCzAXMXwMjFaXc=".into();
        v["operators"][1]["logs"][0]["key"] = "not base64!".into();
        v["operators"][2]["logs"][0]["state"] = serde_json::json!({"frozen": {"timestamp": 1}});
        let copy = v["operators"][3]["logs"][0].clone();
        v["operators"][3]["logs"].as_array_mut().unwrap().push(copy);
    });
    let out = ctdns(&["check", &all, "--at", C86_DAY]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let error_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(error_lines.len(), 5, "{text}");
    for rule in [
        "[log_id_mismatch]",
        "[schema]",
        "[unknown_state]",
        "[duplicate_log_id]",
        "[future_timestamp]",
    ] {
        assert!(
            error_lines.iter().any(|l| l.ends_with(rule)),
            "{rule}: {text}"
        );
    }
    assert!(
        stderr(&out).contains("not acceptable: 5 error(s)"),
        "{}",
        stderr(&out)
    );

    // Unreadable: not JSON, or no file.
    let not_json = d.join("not.json");
    std::fs::write(&not_json, b"{\"operators\": [").unwrap();
    run(&["check", not_json.to_str().unwrap()], 2);
    run(&["check", d.join("absent.json").to_str().unwrap()], 2);
    // JSON that is not a log list is not acceptable (exit 1), naming the schema rule.
    let other = write(d, "other.json", &serde_json::json!({"logs": []}));
    let v = json(&["check", &other, "--at", C86_DAY], 1);
    assert_eq!(errors(&v)[0], "schema");
}

#[test]
fn diff_chrome_80_to_86() {
    let v = json(&["diff", &list(C80), &list(C86)], 0);
    assert_eq!(v["old"]["version"], "80.4");
    assert_eq!(v["new"]["version"], "86.4");
    assert_eq!(v["old"]["log_list_timestamp"], "2025-12-23T12:53:43Z");
    assert_eq!(v["new"]["log_list_timestamp"], "2026-06-23T13:36:44Z");
    let names = |k: &str| -> Vec<String> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|l| l["description"].as_str().unwrap().to_string())
            .collect()
    };
    // Google's six static-ct-api shards arrived between the two.
    assert_eq!(
        names("added"),
        [
            "Google 'ParcelYard2026h2' log",
            "Google 'ParcelYard2027h1' log",
            "Google 'ParcelYard2027h2' log",
            "Google 'PlumbersArms2026h2' log",
            "Google 'PlumbersArms2027h1' log",
            "Google 'PlumbersArms2027h2' log"
        ]
    );
    // The 2025 shards left.
    let removed = names("removed");
    assert_eq!(removed.len(), 19);
    for gone in [
        "Google 'Argon2025h2' log",
        "Cloudflare 'Nimbus2025'",
        "Let's Encrypt 'Oak2025h2'",
    ] {
        assert!(removed.iter().any(|r| r == gone), "{gone}: {removed:?}");
    }
    assert_eq!(
        v["old"]["logs"].as_u64().unwrap() - 19 + 6,
        v["new"]["logs"].as_u64().unwrap()
    );
    // State changes with their timestamps.
    let changes = v["changed"].as_array().unwrap();
    assert_eq!(changes.len(), 7, "{changes:?}");
    assert!(changes.iter().all(|c| c["field"] == "state"));
    let oak = changes
        .iter()
        .find(|c| c["description"] == "Let's Encrypt 'Oak2026h1'")
        .unwrap();
    assert_eq!(oak["old"], "readonly since 2025-12-12T22:30:00Z");
    assert_eq!(oak["new"], "retired since 2026-02-28T00:00:00Z");

    let text = run(&["diff", &list(C80), &list(C86)], 0);
    assert!(text.contains("version: 80.4 -> 86.4"), "{text}");
    assert!(
        text.contains("log_list_timestamp: 2025-12-23T12:53:43Z -> 2026-06-23T13:36:44Z"),
        "{text}"
    );
    assert!(
        text.contains("logs: 75 -> 62 (6 added, 19 removed, 7 changes)"),
        "{text}"
    );
    assert!(text.contains(
        "~ TrustAsia Luoshu2027: state: qualified since 2025-12-02T18:30:00Z -> usable since 2026-02-11T18:30:00Z"
    ), "{text}");
    assert!(
        text.contains("- Google 'Argon2025h2' log [Google] usable since"),
        "{text}"
    );

    // Reversed, added and removed swap.
    let back = json(&["diff", &list(C86), &list(C80)], 0);
    assert_eq!(back["added"].as_array().unwrap().len(), 19);
    assert_eq!(back["removed"].as_array().unwrap().len(), 6);
    // A list against itself: nothing.
    let same = run(&["diff", &list(C86), &list(C86)], 0);
    assert!(same.contains("(0 added, 0 removed, 0 changes)"), "{same}");
}

#[test]
fn diff_across_schemas_and_edits() {
    // Chrome calls Gouda's operator "IPng Networks", Apple "IPng GmbH": a real operator
    // change for the same log ids.
    let v = json(&["diff", &list(C86), &list(APPLE)], 0);
    let gouda = v["changed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["log_id"] == "GoudaUpXmMiZoMqIvfSPwLRWYMzDYA0fcfRp/8fRrKM="
                && c["field"] == "operator"
        })
        .unwrap()
        .clone();
    assert_eq!(gouda["old"], "IPng Networks");
    assert_eq!(gouda["new"], "IPng GmbH");
    assert_eq!(v["new"]["log_list_timestamp"], Value::Null);

    // Edits: a log moved between operators, a URL and an interval changed.
    let dir = tempfile::tempdir().unwrap();
    let moved = edited(dir.path(), "moved.json", |v| {
        let log = v["operators"][0]["logs"].as_array_mut().unwrap().remove(0);
        v["operators"][1]["logs"].as_array_mut().unwrap().push(log);
        v["operators"][2]["logs"][0]["url"] = "https://moved.invalid/".into();
        v["operators"][2]["logs"][1]["temporal_interval"]["end_exclusive"] =
            "2028-01-01T00:00:00Z".into();
        v["version"] = "86.5".into();
    });
    let v = json(&["diff", &list(C86), &moved], 0);
    let fields: Vec<(String, String)> = v["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["description"].as_str().unwrap().to_string(),
                c["field"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(fields.len(), 3, "{fields:?}");
    assert!(fields.contains(&("Google 'Argon2026h1' log".into(), "operator".into())));
    assert!(fields.iter().any(|(_, f)| f == "url"));
    assert!(fields.iter().any(|(_, f)| f == "temporal_interval"));
    assert_eq!(v["new"]["version"], "86.5");

    // Either side unreadable: exit 2.
    run(
        &[
            "diff",
            &list(C86),
            dir.path().join("absent.json").to_str().unwrap(),
        ],
        2,
    );
    let broken = write(dir.path(), "broken.json", &serde_json::json!([1]));
    run(&["diff", &broken, &list(C86)], 2);
}
