//! Turning a [`Config`] into running parts: trust (roots, log list, policy, pins,
//! denylist, evidence) → one CT verifier per upstream → transports → pool → stub.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{DnsName, ServerName, TrustAnchor};

use crate::config::{Config, UpstreamConfig};
use crate::ct::checker::CtChecker;
use crate::ct::log_list::{LogList, StalenessPolicy};
use crate::ct::policy::{CtPolicy, PolicyKind};
use crate::evidence::EvidenceStore;
use crate::stub::{CacheOptions, StubOptions};
use crate::tls::pins::{CertFingerprint, SpkiPin};
use crate::tls::{client_config, CtVerifier};
use crate::upstream::doh::{DohEndpoint, DohOptions, DohTransport};
use crate::upstream::dot::{DotOptions, DotTransport};
use crate::upstream::pool::{Pool, PoolOptions};
use crate::upstream::Transport;

/// Why the configured parts could not be assembled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The log list could not be loaded.
    #[error("CT log list {path}: {reason}")]
    LogList {
        /// The file, or `bundled`.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The roots file could not be loaded.
    #[error(transparent)]
    Roots(#[from] crate::tls::roots::RootsError),
    /// A policy setting is below the floor.
    #[error("CT policy: {0}")]
    Policy(String),
    /// The evidence directory (`evidence.dir`) is unusable or unsafe.
    #[error("config key `evidence.dir`: {path}: {source}")]
    Evidence {
        /// The directory.
        path: String,
        /// Which rule it breaks.
        source: crate::evidence::EvidenceDirError,
    },
    /// The TLS configuration could not be built.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// An upstream entry cannot be used.
    #[error("upstream[{index}]: {reason}")]
    Upstream {
        /// Position in the config.
        index: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Everything a verifier needs, loaded once and shared by all upstreams.
#[derive(Clone, Debug)]
pub struct Trust {
    roots: Arc<Vec<TrustAnchor<'static>>>,
    checker: CtChecker,
    staleness: StalenessPolicy,
    denylist: Arc<HashSet<CertFingerprint>>,
    deny_spki: Arc<HashSet<SpkiPin>>,
    evidence: Option<Arc<EvidenceStore>>,
}

/// Build a CT policy by name, raising the minimums when asked (never below the floor).
pub fn policy(
    name: PolicyKind,
    min_logs: Option<usize>,
    min_operators: Option<usize>,
) -> Result<CtPolicy, SetupError> {
    CtPolicy::with_minimums(name, min_logs, min_operators)
        .map_err(|e| SetupError::Policy(e.to_string()))
}

/// Load a log list file, or the list bundled with ctdns.
pub fn load_log_list(path: Option<&std::path::Path>) -> Result<LogList, SetupError> {
    match path {
        Some(p) => {
            let shown = p.display().to_string();
            let bytes = std::fs::read(p).map_err(|e| SetupError::LogList {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            LogList::from_json(&bytes).map_err(|e| SetupError::LogList {
                path: shown,
                reason: e.to_string(),
            })
        }
        None => LogList::bundled().map_err(|e| SetupError::LogList {
            path: "bundled".into(),
            reason: e.to_string(),
        }),
    }
}

impl Trust {
    /// Load roots, log list, policy, denylist and the evidence store from `config`.
    pub fn from_config(config: &Config) -> Result<Self, SetupError> {
        Self::without_evidence(config)?.open_evidence(config)
    }

    /// Open the evidence store of `config` (`evidence.dir`, created and checked as the
    /// current user: owned by it, not writable by group or others) for every verifier built
    /// from now on. `ctdns serve` calls this after dropping privileges, so the directory
    /// belongs to the user it runs as.
    pub fn open_evidence(mut self, config: &Config) -> Result<Self, SetupError> {
        self.evidence = match &config.evidence.dir {
            Some(dir) => Some(Arc::new(
                EvidenceStore::new(dir, config.evidence.max_bytes).map_err(|source| {
                    SetupError::Evidence {
                        path: dir.display().to_string(),
                        source,
                    }
                })?,
            )),
            None => None,
        };
        Ok(self)
    }

    /// Load roots, log list, policy and denylist from `config`, without the evidence store
    /// (see [`Trust::open_evidence`]).
    pub fn without_evidence(config: &Config) -> Result<Self, SetupError> {
        let deny_spki: HashSet<SpkiPin> = config.tls.deny_spki.iter().copied().collect();
        let mut roots = match &config.tls.roots {
            Some(p) => crate::tls::roots::from_pem_file(p)?,
            None => crate::tls::roots::webpki_roots(),
        };
        // A denylisted key is not an anchor either.
        roots.retain(|a| {
            !deny_spki.contains(&SpkiPin::of_spki(webpki::spki_for_anchor(a).as_ref()))
        });
        let logs = load_log_list(config.ct.log_list.as_deref())?;
        let policy = policy(
            config.ct.policy,
            config.ct.min_logs,
            config.ct.min_operators,
        )?;
        let denylist: HashSet<CertFingerprint> = config.tls.denylist.iter().copied().collect();
        Ok(Self {
            roots: Arc::new(roots),
            checker: CtChecker::new(Arc::new(logs), policy),
            staleness: StalenessPolicy {
                max_age: Duration::from_secs(config.ct.max_list_age_days.saturating_mul(86_400)),
                refuse_when_stale: config.ct.refuse_stale_list,
            },
            denylist: Arc::new(denylist),
            deny_spki: Arc::new(deny_spki),
            evidence: None,
        })
    }

    /// Trust built from parts already in memory (tests, benchmarks, `ctdns demo`): `roots`
    /// as trust anchors, `logs` as the log list, `policy`; no denylist, no evidence store,
    /// the default staleness policy (warn at 70 days, keep enforcing).
    pub fn from_parts(roots: Vec<TrustAnchor<'static>>, logs: LogList, policy: CtPolicy) -> Self {
        Self {
            roots: Arc::new(roots),
            checker: CtChecker::new(Arc::new(logs), policy),
            staleness: StalenessPolicy::default(),
            denylist: Arc::new(HashSet::new()),
            deny_spki: Arc::new(HashSet::new()),
            evidence: None,
        }
    }

    /// Trust from parts already loaded (`ctdns check`): `roots` as trust anchors, `checker`
    /// (log list and policy), `staleness`, and the two denylists; no evidence store.
    pub fn from_checker(
        roots: Vec<TrustAnchor<'static>>,
        checker: CtChecker,
        staleness: StalenessPolicy,
        denylist: HashSet<CertFingerprint>,
        deny_spki: HashSet<SpkiPin>,
    ) -> Self {
        Self {
            roots: Arc::new(roots),
            checker,
            staleness,
            denylist: Arc::new(denylist),
            deny_spki: Arc::new(deny_spki),
            evidence: None,
        }
    }

    /// The trust anchors.
    pub fn roots(&self) -> &[TrustAnchor<'static>] {
        &self.roots
    }

    /// The evidence store, when evidence is kept.
    pub fn evidence(&self) -> Option<&Arc<EvidenceStore>> {
        self.evidence.as_ref()
    }

    /// The CT checker in force.
    pub fn checker(&self) -> &CtChecker {
        &self.checker
    }

    /// A verifier for one upstream: shared trust plus the upstream's own pins and name.
    pub fn verifier(
        &self,
        label: &str,
        pins: Vec<SpkiPin>,
        dns_name: Option<ServerName<'static>>,
    ) -> CtVerifier {
        let mut v = CtVerifier::new(self.roots.clone(), self.checker.clone())
            .with_pins(pins)
            .with_denylist(self.denylist.clone())
            .with_spki_denylist(self.deny_spki.clone())
            .with_staleness(self.staleness)
            .with_label(label);
        if let Some(name) = dns_name {
            v = v.with_dns_name(name);
        }
        if let Some(e) = &self.evidence {
            v = v.with_observer(e.clone());
        }
        v
    }
}

/// The verifier of one configured upstream: shared trust plus its pins and name, labelled
/// `label`. (A DoH URL with a host name adds the dialed IP; see [`transport`].)
pub fn verifier_for(trust: &Trust, label: &str, up: &UpstreamConfig) -> CtVerifier {
    let name = up.name().map(|n| ServerName::DnsName(n.dns_name()));
    trust.verifier(label, up.pins().to_vec(), name)
}

/// The DoT transport to `addr` guarded by `verifier`: the assembly `ctdns serve` and
/// `ctdns check` share.
pub fn dot_transport(
    addr: std::net::SocketAddr,
    verifier: CtVerifier,
    opts: DotOptions,
) -> Result<Arc<DotTransport>, SetupError> {
    let tls = client_config(Arc::new(verifier), &[])?;
    Ok(Arc::new(DotTransport::new(addr, tls, opts)))
}

/// The DoH transport to `endpoint` guarded by `verifier`: the assembly `ctdns serve` and
/// `ctdns check` share. For a name URL the verifier is told the dialed IP, so it checks the
/// IP SAN against it and the certificate against the name (sent as SNI); the transport
/// checks the IP SAN again against the socket. (An endpoint whose authority or path is
/// unusable fails every query; check it first with [`DohEndpoint::check`].)
pub fn doh_transport(
    endpoint: DohEndpoint,
    mut verifier: CtVerifier,
    opts: DohOptions,
) -> Result<Arc<DohTransport>, SetupError> {
    if endpoint.host_name.is_some() {
        verifier = verifier.with_dialed_ip(endpoint.addr.ip());
    }
    let tls = client_config(Arc::new(verifier), &[crate::tls::config::ALPN_H2])?;
    Ok(Arc::new(DohTransport::new(endpoint, tls, opts)))
}

/// Build the transport for one configured upstream.
pub fn transport(
    trust: &Trust,
    index: usize,
    up: &UpstreamConfig,
    query_timeout: Duration,
) -> Result<Arc<dyn Transport>, SetupError> {
    let bad = |reason: String| SetupError::Upstream { index, reason };
    let addr = up
        .dial_addr()
        .map_err(|rule| bad(format!("`{}`: {rule}", rule.key())))?;
    let label = up.label();
    match up {
        UpstreamConfig::Dot { .. } => {
            let verifier = verifier_for(trust, &label, up);
            let opts = DotOptions {
                query_timeout,
                ..DotOptions::default()
            };
            Ok(dot_transport(addr, verifier, opts)?)
        }
        UpstreamConfig::Doh { url, method, .. } => {
            let target = url.target();
            let verifier = verifier_for(trust, &label, up);
            let host_name = match &target.host_name {
                Some(host) => Some(
                    DnsName::try_from(host.clone())
                        .map_err(|_| bad(format!("`{host}` is not a DNS name")))?,
                ),
                None => None,
            };
            let endpoint = DohEndpoint {
                addr,
                host_name,
                authority: target.authority.clone(),
                path: target.path.clone(),
            };
            endpoint.check().map_err(|e| bad(e.to_string()))?;
            let opts = DohOptions {
                method: *method,
                query_timeout,
                ..DohOptions::default()
            };
            Ok(doh_transport(endpoint, verifier, opts)?)
        }
    }
}

/// Build the upstream pool of `config`.
pub fn pool(config: &Config, trust: &Trust) -> Result<Arc<Pool>, SetupError> {
    let query_timeout = Duration::from_millis(config.query_timeout_ms);
    let transports = config
        .upstreams
        .iter()
        .enumerate()
        .map(|(i, up)| transport(trust, i, up, query_timeout))
        .collect::<Result<Vec<_>, _>>()?;
    let opts = PoolOptions {
        query_timeout,
        per_attempt_timeout: query_timeout / 2,
        strategy: config.strategy,
        ..PoolOptions::default()
    };
    Ok(Arc::new(Pool::new(transports, opts)))
}

/// The stub front-end options of `config`.
pub fn stub_options(config: &Config) -> StubOptions {
    let defaults = StubOptions::default();
    StubOptions {
        listen: config.listen.clone(),
        query_timeout: Duration::from_millis(config.query_timeout_ms),
        tcp_idle_timeout: Duration::from_millis(config.tcp_idle_timeout_ms),
        max_tcp_connections: config.max_tcp_connections,
        skip_unavailable_listen: config.listen_is_builtin,
        allow: config.allow.clone(),
        rate_limit: config.rate_limit.options(),
        cache: CacheOptions {
            enabled: config.cache.enabled,
            max_entries: config.cache.max_entries,
            max_bytes: config.cache.max_bytes,
            serve_stale: Duration::from_secs(config.cache.serve_stale_secs),
            stale_answer_client_timeout: Duration::from_millis(
                config.cache.stale_answer_client_timeout_ms,
            ),
            prefetch: config.cache.prefetch,
            ..defaults.cache.clone()
        },
        ..defaults
    }
}
