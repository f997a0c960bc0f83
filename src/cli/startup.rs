//! What `ctdns serve` says about its upstreams when it starts: warnings about the pin
//! configuration before any connection, then, in the background while the listeners are
//! already answering, one connection to every upstream and one log line per upstream.
//!
//! A fail-closed resolver whose pins went stale on a CA rotation must say so once, loudly,
//! at startup — not as a stream of SERVFAILs. Each probe runs exactly the checks a query's
//! connection runs (`ctdns check` with the upstream's own verifier) and sends no DNS query.

use std::time::Duration;

use rustls::pki_types::{CertificateDer, UnixTime};

use crate::cli::check::{self, CheckError, CheckOutcome, Target};
use crate::config::{defaults, Config, UpstreamConfig};
use crate::runtime::Trust;
use crate::tls::lineage::{self, Coverage};
use crate::tls::presented::{Presented, RefusedCertificate};
use crate::tls::verifier::{RefusalEvent, RefusalObserver};

/// The label an upstream goes by in logs, verifiers and evidence.
pub fn upstream_label(up: &UpstreamConfig) -> String {
    up.label()
}

/// Warnings about pin sets, found without connecting: a set whose pins all belong to one CA
/// (the operator's next CA change refuses every connection), and built-in pins whose
/// revisit date has passed. `today` is `YYYY-MM-DD`.
pub fn pin_warnings(config: &Config, trust: &Trust, today: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, up) in config.upstreams.iter().enumerate() {
        if let Coverage::Single(org) = lineage::coverage(up.pins(), trust.roots()) {
            out.push(format!(
                "upstream[{i}] ({}): every pin is a root of one CA ({org}); when the operator \
                 changes CA every connection will be refused (issuer-pin). Add a backup pin \
                 of another CA the operator may move to",
                upstream_label(up)
            ));
        }
        if let Some(op) = defaults::operator_of(up.pins()) {
            if today > op.revisit_by {
                out.push(format!(
                    "upstream[{i}] ({}): the built-in {} pins were checked against the chain \
                     served on {}; that certificate expired on {}, and its renewal may come \
                     from another CA. If this upstream is refused below, run `ctdns check` \
                     on it and update ctdns or set the pins in a config file",
                    upstream_label(up),
                    op.operator,
                    op.evidence_date,
                    op.revisit_by
                ));
            }
        }
    }
    out
}

/// The target a probe dials for an upstream, as the runtime dials it.
pub fn target_of(up: &UpstreamConfig) -> Result<Target, CheckError> {
    match up {
        UpstreamConfig::Dot { ip, .. } => {
            Target::parse(&ip.to_string(), Some(up.effective_port()), None)
        }
        UpstreamConfig::Doh { url, ip, port, .. } => {
            let mut target = Target::parse(url.as_str(), None, *ip)?;
            if let (Some(port), Target::Doh { addr, .. }) = (port, &mut target) {
                addr.set_port(*port);
            }
            Ok(target)
        }
    }
}

/// The outcome of probing one upstream.
#[derive(Debug)]
pub enum Probe {
    /// Every rule passed.
    Accepted {
        /// The presented chain.
        presented: Presented,
        /// Descriptions of the logs whose SCTs counted.
        logs: Vec<String>,
    },
    /// The certificate was refused.
    Refused {
        /// The refusal and the presented chain.
        refused: Box<RefusedCertificate>,
        /// The evidence file written for it, if evidence is kept.
        evidence: Option<String>,
    },
    /// The upstream could not be reached or the handshake failed before a verdict.
    Unreachable(String),
}

/// One log line's worth for `outcome`, with evidence written for a refusal.
fn classify(label: &str, trust: &Trust, outcome: Result<CheckOutcome, CheckError>) -> Probe {
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return Probe::Unreachable(e.to_string()),
    };
    let mut seen = outcome.seen;
    let (leaf, rest) = match seen.chain.split_first() {
        Some(split) => split,
        None => return Probe::Unreachable("no certificate presented".into()),
    };
    let intermediates: Vec<CertificateDer<'_>> = rest
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let presented = Presented::describe(leaf, &intermediates, &seen.decision.path_pins);
    if seen.decision.accepted() {
        let logs = seen
            .decision
            .ct
            .as_ref()
            .map(|r| {
                r.scts
                    .iter()
                    .filter(|v| v.counted)
                    .map(|v| {
                        v.log_description
                            .clone()
                            .unwrap_or_else(|| v.log_id.clone())
                    })
                    .collect()
            })
            .unwrap_or_default();
        return Probe::Accepted { presented, logs };
    }
    let evidence = trust.evidence().map(|store| {
        let now = UnixTime::now();
        let mut chain = vec![CertificateDer::from(leaf.as_slice())];
        chain.extend(intermediates.iter().cloned());
        store.refused(&RefusalEvent {
            label,
            server_name: String::new(),
            chain,
            ocsp: &seen.ocsp,
            now,
            decision: &seen.decision,
        });
        store.path_for(now.as_secs(), leaf).display().to_string()
    });
    let Some(refusal) = seen.decision.refusal.take() else {
        return Probe::Unreachable("refused without a rule".into());
    };
    let refused = Box::new(RefusedCertificate { refusal, presented });
    Probe::Refused { refused, evidence }
}

/// Probe every upstream once, concurrently, and log one line each; one ERROR line when
/// every upstream was refused or unreachable. Returns the outcomes in configuration order.
pub async fn report(config: &Config, trust: &Trust, timeout: Duration) -> Vec<Probe> {
    let probes = config.upstreams.iter().map(|up| {
        let label = upstream_label(up);
        let trust = trust.clone();
        let up = up.clone();
        async move {
            let outcome = match target_of(&up) {
                Ok(target) => {
                    let verifier = crate::runtime::verifier_for(&trust, &label, &up);
                    check::check(&target, verifier, None, timeout).await
                }
                Err(e) => Err(e),
            };
            let probe = classify(&label, &trust, outcome);
            (label, probe)
        }
    });
    let results = join_all(probes).await;
    let mut usable = 0;
    for (label, probe) in &results {
        match probe {
            Probe::Accepted { presented, logs } => {
                usable += 1;
                tracing::info!(
                    upstream = %label,
                    leaf_subject = %presented.leaf_subject,
                    issuer = %presented.leaf_issuer,
                    not_after = presented.leaf_not_after.as_deref().unwrap_or("-"),
                    ca_pins = %presented.pins_text(),
                    sct_logs = %logs.join(", "),
                    "startup check: upstream accepted"
                );
            }
            Probe::Refused { refused, evidence } => tracing::warn!(
                upstream = %label,
                rule = refused.refusal.rule(),
                leaf_subject = %refused.presented.leaf_subject,
                issuer = %refused.presented.leaf_issuer,
                chain_pins = %refused.presented.pins_text(),
                accept_with = refused.hint().as_deref().unwrap_or("-"),
                evidence = evidence.as_deref().unwrap_or("-"),
                "startup check: UPSTREAM REFUSED: {refused}"
            ),
            Probe::Unreachable(reason) => tracing::warn!(
                upstream = %label,
                "startup check: upstream unreachable: {reason}"
            ),
        }
    }
    if usable == 0 && !results.is_empty() {
        let refused: Vec<&str> = results
            .iter()
            .filter_map(|(_, p)| match p {
                Probe::Refused { refused, .. } => Some(refused.refusal.rule()),
                _ => None,
            })
            .collect();
        let advice = if !refused.is_empty() && refused.iter().all(|r| *r == "chain") {
            "every refused chain fails `chain`: the network is likely intercepting TLS \
             (captive portal or proxy); ctdns will not send DNS through it"
        } else if refused.contains(&"issuer-pin") {
            "an operator may have changed CA: run `ctdns check` on the upstream, and if the \
             change is genuine add the pin it prints to the upstream's `pins`"
        } else {
            "check the network path to the upstreams and the lines above"
        };
        tracing::error!(
            upstreams = results.len(),
            refused = refused.len(),
            "startup check: NO UPSTREAM IS USABLE — every query will be answered SERVFAIL \
             until one is; {advice}"
        );
    }
    results.into_iter().map(|(_, p)| p).collect()
}

/// Runs `futures` as tasks and collects their outputs in order (a task that panicked is
/// left out).
async fn join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust(config: &Config) -> Trust {
        Trust::without_evidence(config).unwrap()
    }

    #[test]
    fn builtin_pins_warn_only_after_their_revisit_date() {
        let config = Config::default();
        let t = trust(&config);
        assert!(pin_warnings(&config, &t, "2026-11-30").is_empty());
        let after = pin_warnings(&config, &t, "2026-12-22");
        // Both Cloudflare upstreams, not Quad9's (revisit 2027-03-25).
        assert_eq!(after.len(), 2, "{after:?}");
        assert!(after
            .iter()
            .all(|w| w.contains("Cloudflare") && w.contains("2026-12-21")));
        assert_eq!(pin_warnings(&config, &t, "2027-03-26").len(), 4);
    }

    #[test]
    fn a_single_ca_pin_set_is_warned_about() {
        let doc = |pins: &str| format!("[[upstream]]\nip = \"192.0.2.1\"\npins = [{pins}]\n");
        // DigiCert G2 and G3: one organisation.
        let config = Config::from_toml(&doc("\"i7WTqTvh0OioIruIfFR4kMPnBqrS2rdiVPl/s2uC/CY=\", \
             \"uUwZgwDOxcBXrQcntwu+kYFpkiVkOaezL0WYEZ3anJc=\""))
        .unwrap();
        let w = pin_warnings(&config, &trust(&config), "2026-11-30");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("DigiCert Inc") && w[0].contains("upstream[0]"),
            "{w:?}"
        );
        // DigiCert and SSL.com: two lineages, no warning.
        let config = Config::from_toml(&doc("\"i7WTqTvh0OioIruIfFR4kMPnBqrS2rdiVPl/s2uC/CY=\", \
             \"oyD01TTXvpfBro3QSZc1vIlcMjrdLTiL/M9mLCPX+Zo=\""))
        .unwrap();
        assert!(pin_warnings(&config, &trust(&config), "2026-11-30").is_empty());
        // An intermediate's pin cannot be attributed: no guess, no warning.
        let config =
            Config::from_toml(&doc("\"zGgA4OU4DjJdvpRYUqbi5Vh2g9W5Oc/PgKihy9mkLsE=\"")).unwrap();
        assert!(pin_warnings(&config, &trust(&config), "2026-11-30").is_empty());
    }

    #[test]
    fn targets_are_dialed_as_the_runtime_dials_them() {
        let config = Config::from_toml(
            "[[upstream]]\nip = \"192.0.2.1\"\nport = 8853\n\n\
             [[upstream]]\nprotocol = \"doh\"\nurl = \"https://dns.example/q\"\nip = \"192.0.2.2\"\nport = 8443\n",
        )
        .unwrap();
        assert_eq!(
            target_of(&config.upstreams[0]).unwrap().addr(),
            "192.0.2.1:8853".parse().unwrap()
        );
        assert_eq!(
            target_of(&config.upstreams[1]).unwrap().addr(),
            "192.0.2.2:8443".parse().unwrap()
        );
    }
}
