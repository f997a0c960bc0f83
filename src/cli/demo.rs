//! `ctdns demo`: the rogue-resolver scenario, offline on loopback, told for a person.
//! See [`crate::demo::scenario`] for what runs.

use std::fmt::Write as _;
use std::process::ExitCode;

use crate::cli::common::EXIT_REFUSED;
use crate::demo::scenario::{self, CaseResult, DemoOptions, DemoReport, Expected, DEMO_NAME};

/// Arguments of `ctdns demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Skip the third upstream (SCTs from one operator only, refused by the CT policy).
    #[arg(long)]
    pub no_ct_case: bool,
    /// Also print ctdns's own log lines (refusal warnings) on stderr.
    #[arg(long)]
    pub verbose: bool,
}

/// Run `ctdns demo`: exit 0 when every upstream behaved as expected, 1 otherwise.
pub fn run(args: DemoArgs) -> ExitCode {
    if args.verbose {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter("ctdns=info")
            .try_init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ctdns demo: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    let opts = DemoOptions {
        one_operator_case: !args.no_ct_case,
        ..DemoOptions::default()
    };
    match runtime.block_on(scenario::run(&opts)) {
        Ok(report) => {
            print!("{}", render(&report));
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_REFUSED)
            }
        }
        Err(e) => {
            eprintln!("ctdns demo: {e}");
            ExitCode::from(EXIT_REFUSED)
        }
    }
}

fn expected_text(e: &Expected) -> String {
    match e {
        Expected::Answer(ip) => format!("answer {ip}"),
        Expected::Refusal(rule) => format!("refuse: {rule}"),
    }
}

fn got_text(c: &CaseResult) -> String {
    match c.refusals.first() {
        Some(r) => format!("refused: {} ({})", r.rule, c.dns),
        None => format!("answered: {}", c.dns),
    }
}

fn narrate(out: &mut String, n: usize, c: &CaseResult) {
    let scts: Vec<String> = c
        .case
        .scts
        .iter()
        .map(|s| format!("{} ({})", s.log, s.operator))
        .collect();
    let _ = writeln!(
        out,
        "{n}. {} upstream at dot://{}",
        c.case.label, c.upstream
    );
    let _ = writeln!(out, "   {}.", c.case.story);
    let _ = writeln!(
        out,
        "   certificate: issued by \"{}\" for {}, SCTs from {}",
        c.case.issuer,
        c.upstream.ip(),
        scts.join(" and ")
    );
    let _ = writeln!(
        out,
        "   it would answer {DEMO_NAME} A = {}",
        c.case.would_answer
    );
    let _ = writeln!(
        out,
        "   query {DEMO_NAME} A over UDP to the stub at {}: {}",
        c.stub, c.dns
    );
    match c.refusals.first() {
        Some(r) => {
            let _ = writeln!(out, "   ctdns refused the certificate, {}", r.message);
        }
        None => {
            let _ = writeln!(
                out,
                "   every rule passed (chain, ip-san, revoked, ct-policy, issuer-pin, denylist)"
            );
        }
    }
    let _ = writeln!(
        out,
        "   the upstream completed {} TLS handshake(s) and received {} DNS bytes",
        c.server.handshakes, c.server.app_bytes
    );
    let deviations = c.deviations();
    if deviations.is_empty() {
        let _ = writeln!(
            out,
            "   => as expected ({})",
            expected_text(&c.case.expected)
        );
    } else {
        let _ = writeln!(out, "   => NOT as expected:");
        for d in deviations {
            let _ = writeln!(out, "      - {d}");
        }
    }
    out.push('\n');
}

/// The whole human-readable report.
pub fn render(report: &DemoReport) -> String {
    let mut out = String::new();
    out.push_str(
        "ctdns demo: a resolver certificate that is chain-valid and CT-logged, but from the\n\
         wrong CA, is refused before a single DNS byte is sent. Offline, on loopback.\n\n",
    );
    let _ = writeln!(out, "Setup");
    let _ = writeln!(
        out,
        "  - test PKI: honest root \"{}\", rogue root \"{}\"",
        report.honest_root, report.rogue_root
    );
    let logs: Vec<String> = report
        .logs
        .iter()
        .map(|(name, op, state)| format!("{name}/{op}/{state}"))
        .collect();
    let _ = writeln!(
        out,
        "  - CT logs (name/operator/state): {}",
        logs.join(", ")
    );
    let _ = writeln!(
        out,
        "  - trust: BOTH roots are trusted (so the rogue chain is chain-valid), Chrome CT policy,"
    );
    let _ = writeln!(out, "    issuer pin on the honest root: {}", report.pin);
    let _ = writeln!(
        out,
        "  - for each upstream: the real ctdns stub (UDP/TCP on 127.0.0.1, port 0) -> pool ->\n\
         \x20   DoT transport -> CT verifier, and one A query for {DEMO_NAME}\n"
    );
    for (i, c) in report.cases.iter().enumerate() {
        narrate(&mut out, i + 1, c);
    }

    let rows: Vec<[String; 5]> = report
        .cases
        .iter()
        .map(|c| {
            [
                c.case.label.to_string(),
                expected_text(&c.case.expected),
                got_text(c),
                c.server.app_bytes.to_string(),
                if c.as_expected() { "yes" } else { "NO" }.to_string(),
            ]
        })
        .collect();
    let header = ["upstream", "expected", "got", "DNS bytes at upstream", "ok"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut l = String::from(" ");
        for (cell, w) in cells.iter().zip(widths) {
            let _ = write!(l, " {cell:<w$} ");
        }
        l.trim_end().to_string()
    };
    let _ = writeln!(out, "Summary");
    let _ = writeln!(out, "{}", line(header));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row.each_ref().map(String::as_str)));
    }
    out.push('\n');
    if report.passed() {
        let rogue_bytes = report
            .case("rogue")
            .map(|c| c.server.app_bytes)
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "PASS: the honest upstream answered. The rogue upstream was refused by rule issuer-pin\n\
             and received {rogue_bytes} DNS bytes: its certificate chains to a trusted root and is\n\
             logged by two operators, so only the issuer pin tells it apart."
        );
    } else {
        let _ = writeln!(
            out,
            "FAIL: an upstream did not behave as expected (see above)."
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_report_tells_pass_and_fail_apart() {
        let mut report = scenario::run(&DemoOptions::default()).await.unwrap();
        let text = render(&report);
        assert!(text.contains("PASS"), "{text}");
        assert!(text.contains("rule issuer-pin"), "{text}");
        assert!(text.contains("rule ct-policy"), "{text}");
        assert!(text.contains("received 0 DNS bytes"), "{text}");
        assert!(!text.contains("NOT as expected"), "{text}");

        // Had the rogue upstream received DNS bytes, the report must say so and fail.
        let rogue = report
            .cases
            .iter_mut()
            .find(|c| c.case.label == "rogue")
            .unwrap();
        rogue.server.app_bytes = 41;
        let text = render(&report);
        assert!(!report.passed());
        assert!(text.contains("FAIL"), "{text}");
        assert!(text.contains("NOT as expected"), "{text}");
        assert!(text.contains("received 41 DNS bytes"), "{text}");
    }
}
