//! Human- and JSON-facing descriptions of certificates and CT reports, shared by
//! `ctdns verify` and `ctdns check`.

use serde::Serialize;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::ct::policy::{CtReport, SignatureStatus};
use crate::tls::pins::{CertFingerprint, SpkiPin};
use crate::tls::presented::{accepting_pins, hint, Presented};
use crate::tls::verifier::{Audit, CtIssuer, Decision, RuleResult};

/// What `--json` prints for one certificate.
#[derive(Debug, Serialize)]
pub struct CertInfo {
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial number, hex.
    pub serial: String,
    /// notBefore, RFC 3339.
    pub not_before: String,
    /// notAfter, RFC 3339.
    pub not_after: String,
    /// iPAddress SANs.
    pub ip_sans: Vec<String>,
    /// dNSName SANs.
    pub dns_sans: Vec<String>,
    /// Base64 SHA-256 of the SubjectPublicKeyInfo (the issuer-pin form).
    pub spki_sha256: String,
    /// SHA-256 of the whole certificate, hex (the denylist form).
    pub sha256: String,
}

/// Describe a DER certificate; a certificate x509-parser cannot read is described by its
/// fingerprint alone.
pub fn cert_info(der: &[u8]) -> CertInfo {
    let sha256 = CertFingerprint::of_cert(der).to_string();
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => {
            let mut ip_sans = Vec::new();
            let mut dns_sans = Vec::new();
            if let Ok(Some(san)) = cert.subject_alternative_name() {
                for name in &san.value.general_names {
                    match name {
                        GeneralName::DNSName(d) => dns_sans.push(d.to_string()),
                        GeneralName::IPAddress(b) => ip_sans.push(ip_string(b)),
                        _ => {}
                    }
                }
            }
            let time = |t: x509_parser::time::ASN1Time| {
                crate::evidence::format_time(t.timestamp().max(0) as u64)
            };
            CertInfo {
                subject: cert.subject().to_string(),
                issuer: cert.issuer().to_string(),
                serial: cert.raw_serial_as_string(),
                not_before: time(cert.validity().not_before),
                not_after: time(cert.validity().not_after),
                ip_sans,
                dns_sans,
                spki_sha256: SpkiPin::of_spki(cert.public_key().raw).to_string(),
                sha256,
            }
        }
        Err(e) => CertInfo {
            subject: format!("(unparsable: {e})"),
            issuer: String::new(),
            serial: String::new(),
            not_before: String::new(),
            not_after: String::new(),
            ip_sans: Vec::new(),
            dns_sans: Vec::new(),
            spki_sha256: String::new(),
            sha256,
        },
    }
}

fn ip_string(b: &[u8]) -> String {
    match b.len() {
        4 => std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => format!("(malformed {}-byte address)", b.len()),
    }
}

/// The `--json` object of a decision.
#[derive(Debug, Serialize)]
pub struct DecisionJson<'a> {
    /// Whether every rule passed.
    pub accepted: bool,
    /// The rule that failed, or null.
    pub refusal: Option<&'static str>,
    /// The full refusal message, or null.
    pub reason: Option<String>,
    /// Per-SCT verdicts (empty when the CT step did not run).
    pub scts: serde_json::Value,
    /// The CT policy outcome, when the CT step ran.
    pub ct_outcome: Option<String>,
    /// Why the stapled OCSP response's SCTs were ignored (unreadable), or null.
    pub ocsp_scts_ignored: Option<String>,
    /// The stapled OCSP response read for revocation (see
    /// [`crate::tls::revocation::StapleCheck`]'s JSON form: `used`, `status`, `responder`,
    /// times, `ignored` with the reason, `summary`), or null when nothing was stapled or
    /// the chain or names failed first.
    pub staple: Option<&'a crate::tls::revocation::StapleCheck>,
    /// The presented chain, leaf first.
    pub chain: Vec<CertInfo>,
    /// SPKI pins of the CA certificates of the verified path (issuer first).
    pub path_pins: Vec<String>,
    /// For an issuer-pin refusal: the `pins` configuration line that accepts this chain (the
    /// configured pins plus the verified path's root).
    pub accept_with: Option<String>,
    /// The log list in force.
    pub log_list: LogListInfo<'a>,
    /// `ctdns verify` only: every rule's outcome, in the order the rules run (absent from
    /// `ctdns check`, whose handshake stops at the first failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<RuleJson>>,
    /// `ctdns verify` only, when `scts` is filled: whose key the embedded SCTs were checked
    /// against, `verified_path` or `presented_chain` (the chain did not verify).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ct_issuer: Option<&'static str>,
}

/// One rule's outcome in the `--json` object of `ctdns verify`.
#[derive(Debug, Serialize)]
pub struct RuleJson {
    /// The rule, e.g. `chain`, `ip-san`, `ct-policy`.
    pub rule: &'static str,
    /// `passed`, `failed` or `skipped`.
    pub result: &'static str,
    /// For a failed rule, the refusal's rule name (as in `refusal`; rule `chain` refuses as
    /// `denylist` when only paths through a denylisted key exist); otherwise null.
    pub refusal: Option<&'static str>,
    /// The refusal message of a failed rule, or why a rule was skipped; null when passed.
    pub reason: Option<String>,
}

/// The rows of [`DecisionJson::rules`] for an audit.
pub fn rules_json(audit: &Audit) -> Vec<RuleJson> {
    audit
        .rules
        .iter()
        .map(|o| {
            let (result, refusal, reason) = match &o.result {
                RuleResult::Passed => ("passed", None, None),
                RuleResult::Failed(r) => ("failed", Some(r.rule()), Some(r.to_string())),
                RuleResult::Skipped(why) => ("skipped", None, Some(why.to_string())),
            };
            RuleJson {
                rule: o.rule.name(),
                result,
                refusal,
                reason,
            }
        })
        .collect()
}

/// The `--json` object of an audit (`ctdns verify`): the decision's fields, plus `rules`
/// and `ct_issuer`.
pub fn audit_json<'a>(
    audit: &'a Audit,
    chain: &[Vec<u8>],
    logs: &'a crate::ct::log_list::LogList,
) -> DecisionJson<'a> {
    let mut json = decision_json(&audit.decision, chain, logs);
    json.rules = Some(rules_json(audit));
    json.ct_issuer = audit.ct_issuer.map(CtIssuer::name);
    json
}

/// Which log list decided.
#[derive(Debug, Serialize)]
pub struct LogListInfo<'a> {
    /// Its version string.
    pub version: Option<&'a str>,
    /// Its `log_list_timestamp` (when it was curated), RFC 3339.
    pub timestamp: Option<String>,
    /// The date of its newest source data (ctdns's lists say), RFC 3339; freshness counts
    /// from it when present.
    pub data_timestamp: Option<String>,
    /// Number of logs.
    pub logs: usize,
}

/// One line naming the log list, both of its dates, and how old its data is at `now_ms`.
pub fn log_list_line(logs: &crate::ct::log_list::LogList, now_ms: u64) -> String {
    let date = |ms: Option<u64>| {
        ms.map(|ms| crate::evidence::format_time(ms / 1000))
            .unwrap_or_else(|| "-".into())
    };
    let age = logs
        .age(now_ms)
        .map(|a| format!("{} days", a.as_secs() / 86_400))
        .unwrap_or_else(|| "unknown".into());
    format!(
        "CT log list: {} ({} logs), curated {}, data from {}, age {age}\n",
        logs.version().unwrap_or("-"),
        logs.logs().len(),
        date(logs.timestamp_ms()),
        date(logs.data_timestamp_ms()),
    )
}

/// Build the JSON object.
pub fn decision_json<'a>(
    decision: &'a Decision,
    chain: &[Vec<u8>],
    logs: &'a crate::ct::log_list::LogList,
) -> DecisionJson<'a> {
    DecisionJson {
        accepted: decision.accepted(),
        refusal: decision.refusal.as_ref().map(|r| r.rule()),
        reason: decision.refusal.as_ref().map(|r| r.to_string()),
        scts: decision
            .ct
            .as_ref()
            .and_then(|r| serde_json::to_value(&r.scts).ok())
            .unwrap_or(serde_json::Value::Array(Vec::new())),
        ct_outcome: decision.ct.as_ref().map(outcome_text),
        ocsp_scts_ignored: decision
            .ct
            .as_ref()
            .and_then(|r| r.ocsp_ignored.as_ref())
            .map(ToString::to_string),
        staple: decision.staple.as_ref(),
        chain: chain.iter().map(|c| cert_info(c)).collect(),
        path_pins: decision.path_pins.iter().map(|p| p.to_string()).collect(),
        accept_with: decision
            .refusal
            .as_ref()
            .and_then(|r| accepting_pins(r, &presented(decision, chain))),
        log_list: LogListInfo {
            version: logs.version(),
            timestamp: logs
                .timestamp_ms()
                .map(|ms| crate::evidence::format_time(ms / 1000)),
            data_timestamp: logs
                .data_timestamp_ms()
                .map(|ms| crate::evidence::format_time(ms / 1000)),
            logs: logs.logs().len(),
        },
        rules: None,
        ct_issuer: None,
    }
}

fn outcome_text(report: &CtReport) -> String {
    match &report.outcome {
        Ok(()) => "compliant".into(),
        Err(e) => e.to_string(),
    }
}

/// The human-readable report: chain, SCT table, verdict.
pub fn human(decision: &Decision, chain: &[Vec<u8>]) -> String {
    render(decision, chain, None)
}

/// The human-readable report of an audit (`ctdns verify`): chain, SCT table, every rule's
/// outcome, verdict.
pub fn human_audit(audit: &Audit, chain: &[Vec<u8>]) -> String {
    render(&audit.decision, chain, Some(audit))
}

fn render(decision: &Decision, chain: &[Vec<u8>], audit: Option<&Audit>) -> String {
    let mut out = String::new();
    out.push_str("Chain (as presented, leaf first):\n");
    for (i, der) in chain.iter().enumerate() {
        let c = cert_info(der);
        out.push_str(&format!(
            "  [{i}] subject: {}\n      issuer:  {}\n",
            c.subject, c.issuer
        ));
        out.push_str(&format!(
            "      valid:   {} .. {}\n",
            c.not_before, c.not_after
        ));
        if !c.ip_sans.is_empty() || !c.dns_sans.is_empty() {
            out.push_str(&format!(
                "      SANs:    IP {:?} DNS {:?}\n",
                c.ip_sans, c.dns_sans
            ));
        }
        out.push_str(&format!(
            "      SPKI pin sha256/{}\n      cert sha256 {}\n",
            c.spki_sha256, c.sha256
        ));
    }
    if !decision.path_pins.is_empty() {
        let pins: Vec<String> = decision.path_pins.iter().map(|p| p.to_string()).collect();
        out.push_str(&format!(
            "Verified path CA pins (issuer first): {}\n",
            pins.join(", ")
        ));
    }
    if let Some(staple) = &decision.staple {
        out.push_str(&format!("Stapled OCSP (revocation): {staple}\n"));
    }
    if let Some(report) = &decision.ct {
        out.push_str("\nSCTs:\n");
        if audit.and_then(|a| a.ct_issuer) == Some(CtIssuer::PresentedChain) {
            out.push_str(
                "  (the chain did not verify: checked against the presented certificate named \
                 as the leaf's issuer)\n",
            );
        }
        out.push_str(&format!(
            "  {:<8} {:<34} {:<14} {:<24} {:<9} {}\n",
            "source", "log", "operator", "timestamp", "signature", "counted"
        ));
        for v in &report.scts {
            let value = serde_json::to_value(v).unwrap_or_default();
            let get = |k: &str| match value.get(k) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Null) | None => "-".into(),
                Some(other) => other.to_string(),
            };
            let ts = value
                .get("timestamp_ms")
                .and_then(|t| t.as_u64())
                .map(|ms| crate::evidence::format_time(ms / 1000))
                .unwrap_or_else(|| "-".into());
            let counted = if v.counted {
                "yes".to_string()
            } else {
                format!(
                    "no: {}",
                    v.reason.as_ref().map(|r| r.to_string()).unwrap_or_default()
                )
            };
            let log = match &v.log_description {
                Some(d) => d.clone(),
                None => get("log_id"),
            };
            let sig = sig_text(&v.signature);
            out.push_str(&format!(
                "  {:<8} {:<34} {:<14} {:<24} {:<9} {}\n",
                get("source"),
                log,
                v.operator.clone().unwrap_or_else(|| "-".into()),
                ts,
                sig,
                counted
            ));
        }
        if let Some(e) = &report.ocsp_ignored {
            out.push_str(&format!("Stapled OCSP SCTs: ignored ({e})\n"));
        }
        out.push_str(&format!("CT policy: {}\n", outcome_text(report)));
    }
    if let Some(audit) = audit {
        out.push_str("\nRules (in order; the verdict names the first that failed):\n");
        for o in &audit.rules {
            let result = match &o.result {
                RuleResult::Passed => "passed".to_string(),
                RuleResult::Failed(r) => format!("FAILED: {r}"),
                RuleResult::Skipped(why) => format!("skipped: {why}"),
            };
            out.push_str(&format!("  {:<15} {result}\n", o.rule.name()));
        }
    }
    out.push('\n');
    match &decision.refusal {
        None => out.push_str("VERDICT: ACCEPTED\n"),
        Some(r) => {
            out.push_str(&format!("VERDICT: REFUSED ({}): {r}\n", r.rule()));
            let presented = presented(decision, chain);
            if let Some(line) = accepting_pins(r, &presented) {
                out.push_str(&format!(
                    "If this CA change is genuine, this configuration line accepts the chain:\n  {line}\n"
                ));
            } else if let Some(hint) = hint(r, &presented) {
                out.push_str(&format!("Note: {hint}\n"));
            }
        }
    }
    out
}

/// The presented chain, summarised as refusals name it.
fn presented(decision: &Decision, chain: &[Vec<u8>]) -> Presented {
    let leaf = chain.first().map(Vec::as_slice).unwrap_or(&[]);
    let rest: Vec<rustls::pki_types::CertificateDer<'_>> = chain
        .iter()
        .skip(1)
        .map(|c| rustls::pki_types::CertificateDer::from(c.as_slice()))
        .collect();
    Presented::describe(leaf, &rest, &decision.path_pins)
}

fn sig_text(status: &SignatureStatus) -> &'static str {
    match status {
        SignatureStatus::Valid => "valid",
        SignatureStatus::Invalid { .. } => "invalid",
        SignatureStatus::NotChecked => "unchecked",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::policy::SignatureStatus;

    #[test]
    fn signature_column_shows_the_status() {
        let text = |s: SignatureStatus| sig_text(&s);
        assert_eq!(text(SignatureStatus::Valid), "valid");
        assert_eq!(text(SignatureStatus::NotChecked), "unchecked");
        assert_eq!(
            text(SignatureStatus::Invalid {
                reason: "bad".into()
            }),
            "invalid"
        );
    }
}
