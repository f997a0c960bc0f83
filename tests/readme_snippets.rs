//! The README's "Use it in your app" snippets are the examples' code, verbatim: (a)
//! `ct_reqwest` in `examples/reqwest_ct.rs` (run by `tests/app_reqwest.rs`) and (b)
//! `ct_config` in `crates/ctdns-verify/examples/rustls_ct.rs` (run by the verifier crate's
//! `tests/handshake.rs`), each between `// README (x) begin` / `end` markers, each under 15
//! lines; and the README states the one dependency line per provider.

use std::path::Path;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text between `// README (tag) begin` and `// README (tag) end` in `source`.
fn region(source: &str, tag: &str) -> String {
    let begin = format!("// README ({tag}) begin\n");
    let end = format!("// README ({tag}) end");
    let from = source.find(&begin).expect("begin marker") + begin.len();
    let to = source[from..].find(&end).expect("end marker") + from;
    source[from..to].to_string()
}

/// The README section "Use it in your app", up to the next section.
fn app_section() -> String {
    let readme = read("README.md");
    let from = readme
        .find("\n## Use it in your app\n")
        .expect("the section");
    let to = readme[from + 1..]
        .find("\n## ")
        .map_or(readme.len(), |i| i + from + 1);
    readme[from..to].to_string()
}

#[test]
fn each_snippet_is_the_example_verbatim_and_under_15_lines() {
    let section = app_section();
    for (tag, example) in [
        ("a", "examples/reqwest_ct.rs"),
        ("b", "crates/ctdns-verify/examples/rustls_ct.rs"),
    ] {
        let code = region(&read(example), tag);
        let lines = code.lines().count();
        assert!(
            lines >= 5,
            "({tag}) snippet is {lines} lines: markers misplaced?"
        );
        assert!(lines < 15, "({tag}) snippet is {lines} lines, not under 15");
        assert!(
            section.contains(&format!("```rust\n{code}```\n")),
            "README ({tag}) snippet differs from {example}:\n{code}"
        );
    }
}

#[test]
fn the_readme_states_one_dependency_line_per_provider() {
    let section = app_section();
    for line in [
        r#"ctdns = { version = "0.1", default-features = false, features = ["aws-lc-rs", "reqwest"] }"#,
        r#"ctdns = { version = "0.1", default-features = false, features = ["ring", "reqwest"] }"#,
        r#"ctdns-verify = { version = "0.1", default-features = false, features = ["aws-lc-rs"] }"#,
    ] {
        assert!(section.contains(line), "missing: {line}");
    }
}
