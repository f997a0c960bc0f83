//! `ctdns serve`: the local stub resolver.
//!
//! Loads the configuration (a TOML file, or the built-in default: Cloudflare and Quad9 over
//! DoT, issuer-pinned to their DigiCert roots), listens on UDP and TCP, and answers every
//! query through CT-verified upstreams only, until SIGINT or SIGTERM. SIGHUP reloads the
//! configuration in place ([`crate::cli::reload`]); under systemd the service protocol is
//! spoken ([`crate::cli::systemd`]). Exit codes: 0 after a
//! signal-initiated shutdown, 1 when the listeners cannot be bound or the runtime fails,
//! 2 for configuration errors (the message names the key).
//!
//! Startup order: resolve `user`/`group` and refuse root on a non-loopback address without
//! `user` or `allow_root`; load trust (roots, log list) with the starting privileges; bind
//! the listeners; drop to `user` (setgroups, setgid, setuid, verified); only then create and
//! check the evidence directory, as the user ctdns runs as; dial upstreams on demand.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::common::EXIT_BAD_INPUT;
use crate::cli::logging;
use crate::cli::reload::Reloader;
use crate::cli::systemd;
use crate::config::{Config, ConfigError, LogFormat};
use crate::ct::log_list::{LogList, Staleness, StalenessPolicy};
use crate::metrics::ReloadStats;
use crate::privileges::{self, PrivilegeError};
use crate::runtime::{self, Trust};
use crate::upstream::swap::SwappableTransport;

/// Exit code: the stub could not start or run (listeners not bound, runtime failure).
pub const EXIT_RUNTIME: u8 = 1;
/// Exit code: the configuration is invalid.
pub const EXIT_CONFIG: u8 = EXIT_BAD_INPUT;

/// Arguments of `ctdns serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// The TOML configuration; default: the built-in one (Cloudflare and Quad9 over DoT,
    /// issuer-pinned, listening on `127.0.0.1:53` and `[::1]:53`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Listen on this address instead of the configured ones (UDP and TCP); repeatable.
    #[arg(long = "listen", value_name = "ADDR")]
    pub listen: Vec<SocketAddr>,
    /// Log format, overriding `log.format`.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormatArg>,
    /// Do not cache answers (overrides `cache.enabled`).
    #[arg(long)]
    pub no_cache: bool,
    /// Use the built-in DoH alternative (Cloudflare, `https://1.1.1.1/dns-query` and
    /// `https://1.0.0.1/dns-query`, issuer-pinned) instead of the configured upstreams.
    #[arg(long)]
    pub doh: bool,
}

/// `--log-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(f: LogFormatArg) -> Self {
        match f {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

/// The configuration `args` select: the file (or the default) with the command-line
/// overrides applied, validated.
pub fn load_config(args: &ServeArgs) -> Result<Config, ConfigError> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if !args.listen.is_empty() {
        config.listen = args.listen.clone();
        config.listen_is_builtin = false;
    }
    if let Some(format) = args.log_format {
        config.log.format = format.into();
    }
    if args.no_cache {
        config.cache.enabled = false;
    }
    if args.doh {
        config.upstreams = crate::config::cloudflare_doh();
    }
    config.validate()?;
    Ok(config)
}

pub use crate::cli::startup::upstream_label;

/// Why the listening setup exposes an open resolver, if it does: a listen address that is
/// not loopback while `allow` is still the loopback-only default (remote clients then get
/// REFUSED: probably not what was meant, and a sign the operator has not thought about who
/// may query), or an `allow` network of prefix length 0 (every address on the Internet may
/// use the stub, which makes it an amplifier for spoofed queries).
pub fn open_resolver_risk(config: &Config) -> Option<String> {
    if let Some(net) = config.allow.iter().find(|n| n.prefix_len() == 0) {
        return Some(format!(
            "allow contains {net}: every address may query this resolver (an open resolver \
             can be used to amplify spoofed-source attacks); list the client networks instead"
        ));
    }
    let exposed: Vec<String> = config
        .listen
        .iter()
        .filter(|a| !a.ip().is_loopback())
        .map(|a| a.to_string())
        .collect();
    if !exposed.is_empty() && config.allow == crate::stub::options::default_allow() {
        return Some(format!(
            "listening on non-loopback {} with the default allow list (127.0.0.0/8, ::1/128): \
             remote clients get REFUSED. Set `allow` to the client networks that may query; \
             never 0.0.0.0/0, which makes an open resolver usable for amplification attacks",
            exposed.join(", ")
        ));
    }
    None
}

/// The freshness of the log list at startup, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListFreshness {
    /// Within the maximum age.
    Fresh {
        /// Age in whole days.
        age_days: u64,
    },
    /// Older than the maximum age; ctdns keeps enforcing with it.
    Stale {
        /// Age in whole days.
        age_days: u64,
    },
    /// Older than the maximum age (or undated) and `ct.refuse_stale_list` is set: every
    /// upstream will be refused.
    Refusing(String),
    /// The list has no timestamp.
    Undated,
}

/// Classify `list` at `now_ms` under `policy`.
pub fn list_freshness(list: &LogList, policy: &StalenessPolicy, now_ms: u64) -> ListFreshness {
    let days = |d: Duration| d.as_secs() / 86_400;
    match policy.check(list, now_ms) {
        Ok(Staleness::Fresh) => ListFreshness::Fresh {
            age_days: list.age(now_ms).map(days).unwrap_or(0),
        },
        Ok(Staleness::Stale { age }) => ListFreshness::Stale {
            age_days: days(age),
        },
        Ok(Staleness::Unknown) => ListFreshness::Undated,
        Err(e) => ListFreshness::Refusing(e.to_string()),
    }
}

/// Run `ctdns serve`.
pub fn run(args: ServeArgs) -> ExitCode {
    let config = match load_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ctdns serve: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(e) = logging::init(config.log.format, &config.log.level) {
        eprintln!("ctdns serve: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ctdns")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ctdns serve: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    runtime.block_on(serve(config, args))
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn log_startup(config: &Config, trust: &Trust) {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        policy = ?config.ct.policy,
        cache = config.cache.enabled,
        "ctdns starting"
    );
    for up in &config.upstreams {
        tracing::info!(
            upstream = %upstream_label(up),
            name = up.name().map_or("-", |n| n.as_str()),
            pins = up.pins().len(),
            "upstream (CT-verified before any query is sent; no plain-DNS fallback)"
        );
    }
    let logs = trust.checker().logs();
    let now = now_ms();
    let source = config
        .ct
        .log_list
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "bundled".into());
    let timestamp = logs
        .timestamp_ms()
        .map(|ms| crate::evidence::format_time(ms / 1000))
        .unwrap_or_else(|| "-".into());
    let data_timestamp = logs
        .data_timestamp_ms()
        .map(|ms| crate::evidence::format_time(ms / 1000))
        .unwrap_or_else(|| "-".into());
    let version = logs.version().unwrap_or("-");
    let policy = StalenessPolicy {
        max_age: Duration::from_secs(config.ct.max_list_age_days.saturating_mul(86_400)),
        refuse_when_stale: config.ct.refuse_stale_list,
    };
    let max_days = config.ct.max_list_age_days;
    match list_freshness(logs, &policy, now) {
        ListFreshness::Fresh { age_days } => tracing::info!(
            source = %source, version, timestamp = %timestamp, data_timestamp = %data_timestamp, age_days, max_days,
            logs = logs.logs().len(), "CT log list"
        ),
        ListFreshness::Stale { age_days } => tracing::warn!(
            event = crate::events::LOG_LIST_STALE,
            source = %source, version, timestamp = %timestamp, data_timestamp = %data_timestamp, age_days, max_days,
            logs = logs.logs().len(),
            "CT log list: STALE — its data is {age_days} days old (max {max_days}); logs may have \
             been added, retired or distrusted since. ctdns keeps enforcing with it. Update \
             ctdns or point ct.log_list at a fresh list."
        ),
        ListFreshness::Refusing(reason) => tracing::error!(
            event = crate::events::LOG_LIST_STALE,
            source = %source, version, timestamp = %timestamp, data_timestamp = %data_timestamp, max_days,
            "{reason}; ct.refuse_stale_list is set, so EVERY upstream will be refused and \
             every query answered SERVFAIL until the list is updated"
        ),
        ListFreshness::Undated => tracing::warn!(
            event = crate::events::LOG_LIST_STALE,
            source = %source, version,
            "CT log list has no timestamp; its freshness cannot be checked"
        ),
    }
}

fn privilege_exit(e: &PrivilegeError) -> ExitCode {
    eprintln!("ctdns serve: {e}");
    ExitCode::from(if e.is_config_error() {
        EXIT_CONFIG
    } else {
        EXIT_RUNTIME
    })
}

async fn serve(config: Config, args: ServeArgs) -> ExitCode {
    // SIGHUP reloads (below); watched from the start so that an early one cannot kill ctdns.
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ctdns serve: cannot watch for SIGHUP: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    // Before binding: who to become, and whether staying root is acceptable.
    let target = match config.user.as_deref() {
        Some(user) => match privileges::resolve(user, config.group.as_deref()) {
            Ok(t) => Some(t),
            Err(e) => return privilege_exit(&e),
        },
        None => None,
    };
    if let Err(e) = privileges::check_root_listen(
        &config.listen,
        config.user.as_deref(),
        config.allow_root,
        nix::unistd::geteuid().is_root(),
    ) {
        return privilege_exit(&e);
    }
    // Roots, log list and pins are read with the privileges ctdns was started with.
    let trust = match Trust::without_evidence(&config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ctdns serve: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Some(risk) = open_resolver_risk(&config) {
        tracing::warn!(risk = %risk, "open resolver risk");
    }
    let stub = match crate::stub::bind(runtime::stub_options(&config)).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ctdns serve: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    // Listeners bound: drop root now, before any upstream is dialed or evidence written.
    if let Some(target) = &target {
        match privileges::drop_to(target) {
            Ok(how) => tracing::info!(
                user = %target.user,
                uid = target.uid,
                gid = target.gid,
                already = how == privileges::Dropped::AlreadyTarget,
                "running unprivileged (supplementary groups cleared)"
            ),
            Err(e) => return privilege_exit(&e),
        }
    } else if nix::unistd::geteuid().is_root() {
        tracing::warn!(
            "running as root: set `user` to drop privileges after binding the listeners"
        );
    }
    // The evidence directory is created and checked as the user ctdns now runs as.
    let trust = match trust.open_evidence(&config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ctdns serve: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    log_startup(&config, &trust);
    let today = crate::evidence::format_time(now_ms() / 1000);
    for warning in crate::cli::startup::pin_warnings(&config, &trust, today.get(..10).unwrap_or(""))
    {
        tracing::warn!("{warning}");
    }
    let pool = match runtime::pool(&config, &trust) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ctdns serve: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("ctdns serve: cannot watch for SIGTERM: {e}");
                return ExitCode::from(EXIT_RUNTIME);
            }
        };
    // The stub reaches the pool through a swappable upstream: SIGHUP replaces the pool
    // (crate::cli::reload). `reload_stats` counts the outcomes.
    // Only the swappable upstream (and the metrics endpoint, until a reload replaces its
    // sources) may hold the pool: a reload drops the old one, closing its connections.
    let metrics_pool = config.metrics.as_ref().map(|_| pool.clone());
    let upstream = Arc::new(SwappableTransport::new(pool));
    let reload_stats = Arc::new(ReloadStats::default());
    let mut reloader = Reloader::new(
        args,
        config.clone(),
        Arc::clone(&upstream),
        Arc::clone(&reload_stats),
    );
    let handle = stub.start(upstream);
    // Prometheus metrics (`[metrics]`), read at scrape time from the stub, pool and list;
    // a reload points them at the new pool and list.
    let metrics = match (&config.metrics, metrics_pool) {
        (Some(m), Some(pool)) => {
            let sources = crate::metrics::Sources {
                stub: handle.handler(),
                pool,
                log_list: crate::metrics::LogListInfo::of(trust.checker().logs()),
                reloads: Arc::clone(&reload_stats),
            };
            match crate::metrics::http::start(m.listen, sources).await {
                Ok(started) => Some(started),
                Err(e) => {
                    eprintln!("ctdns serve: {e}");
                    return ExitCode::from(EXIT_RUNTIME);
                }
            }
        }
        _ => None,
    };
    let join = |addrs: &[SocketAddr]| {
        addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    tracing::info!(
        udp = %join(handle.udp_addrs()),
        tcp = %join(handle.tcp_addrs()),
        "ctdns listening"
    );
    // The startup report: every upstream dialed once in the background (listeners already
    // answer), one line each.
    let probe_timeout = Duration::from_millis(config.query_timeout_ms).max(Duration::from_secs(3));
    let report = {
        let config = config.clone();
        let trust = trust.clone();
        tokio::spawn(async move {
            crate::cli::startup::report(&config, &trust, probe_timeout).await;
        })
    };
    systemd::ready("serving");
    let watchdog = systemd::spawn_watchdog();
    // After a reload the cache is emptied at once, and again when every query that started
    // on the old pool has ended (each ends within the query timeout), so that no answer it
    // got under the old trust stays cached.
    let query_timeout = Duration::from_millis(config.query_timeout_ms);
    let mut clear_again: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    let signal = loop {
        tokio::select! {
            r = tokio::signal::ctrl_c() => break match r {
                Ok(()) => "SIGINT",
                Err(e) => {
                    tracing::error!("cannot watch for SIGINT: {e}; shutting down");
                    "error"
                }
            },
            _ = terminate.recv() => break "SIGTERM",
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading the configuration");
                systemd::reloading();
                let reloaded = reloader.reload();
                if let (Some((metrics, _)), Ok(done)) = (&metrics, &reloaded) {
                    metrics.set_sources(crate::metrics::Sources {
                        stub: handle.handler(),
                        pool: done.pool.clone(),
                        log_list: crate::metrics::LogListInfo::of(done.trust.checker().logs()),
                        reloads: Arc::clone(&reload_stats),
                    });
                }
                if reloaded.is_ok() {
                    handle.clear_cache();
                    clear_again = Some(Box::pin(tokio::time::sleep(
                        query_timeout + Duration::from_millis(100),
                    )));
                }
                systemd::ready("serving");
            }
            _ = async { clear_again.as_mut()?.await; Some(()) }, if clear_again.is_some() => {
                clear_again = None;
                handle.clear_cache();
            }
        }
    };
    systemd::stopping();
    let grace = Duration::from_millis(config.query_timeout_ms) + Duration::from_secs(1);
    tracing::info!(
        signal,
        grace_ms = grace.as_millis() as u64,
        "shutting down: answering queries in flight"
    );
    if tokio::time::timeout(grace, handle.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("queries still in flight after the grace period; stopping anyway");
    }
    report.abort();
    if let Some(w) = watchdog {
        w.abort();
    }
    tracing::info!("ctdns stopped");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(timestamp: Option<&str>) -> LogList {
        let ts = timestamp
            .map(|t| format!(r#""log_list_timestamp": "{t}","#))
            .unwrap_or_default();
        let json = format!(r#"{{"version": "1.0", {ts} "operators": []}}"#);
        LogList::from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn overrides_apply_and_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctdns.toml");
        std::fs::write(
            &path,
            "listen = [\"127.0.0.1:5300\"]\n[log]\nformat = \"text\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        let c = load_config(&args).unwrap();
        assert_eq!(c.listen, vec!["127.0.0.1:5300".parse().unwrap()]);
        assert!(c.cache.enabled);

        let args = ServeArgs {
            config: Some(path),
            listen: vec![
                "127.0.0.1:5301".parse().unwrap(),
                "[::1]:5301".parse().unwrap(),
            ],
            log_format: Some(LogFormatArg::Json),
            no_cache: true,
            doh: true,
        };
        let c = load_config(&args).unwrap();
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.listen[0].port(), 5301);
        assert_eq!(c.log.format, LogFormat::Json);
        assert!(!c.cache.enabled);
        assert_eq!(c.upstreams, crate::config::cloudflare_doh());
    }

    #[test]
    fn exposed_listen_with_default_allow_is_a_named_risk() {
        let mut c = Config::default();
        assert_eq!(open_resolver_risk(&c), None, "loopback only");
        c.listen = vec!["0.0.0.0:53".parse().unwrap()];
        let risk = open_resolver_risk(&c).expect("risk");
        assert!(
            risk.contains("0.0.0.0:53") && risk.contains("allow"),
            "{risk}"
        );
        c.allow = vec!["192.0.2.0/24".parse().unwrap()];
        assert_eq!(open_resolver_risk(&c), None, "allow chosen by the operator");
        c.allow.push("0.0.0.0/0".parse().unwrap());
        let risk = open_resolver_risk(&c).expect("risk");
        assert!(
            risk.contains("0.0.0.0/0") && risk.contains("open resolver"),
            "{risk}"
        );
    }

    #[test]
    fn no_file_is_the_builtin_default() {
        let c = load_config(&ServeArgs::default()).unwrap();
        assert_eq!(c, Config::default());
        assert!(c.upstreams.iter().all(|u| !u.pins().is_empty()));
    }

    #[test]
    fn config_errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[cache]\nmax_entries = 0\n").unwrap();
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let e = load_config(&args).unwrap_err();
        assert!(e.to_string().contains("cache.max_entries"), "{e}");
        let args = ServeArgs {
            config: Some(dir.path().join("missing.toml")),
            ..ServeArgs::default()
        };
        assert!(matches!(load_config(&args), Err(ConfigError::Read { .. })));
    }

    #[test]
    fn labels_match_the_runtime() {
        let c = Config::default();
        assert_eq!(upstream_label(&c.upstreams[0]), "dot://1.1.1.1:853");
        assert_eq!(
            upstream_label(&crate::config::cloudflare_doh()[0]),
            "https://1.1.1.1/dns-query"
        );
    }

    #[test]
    fn freshness() {
        let day = 86_400_000u64;
        let l = list(Some("2024-01-01T00:00:00Z"));
        let t0 = l.timestamp_ms().unwrap();
        let warn = StalenessPolicy {
            max_age: Duration::from_secs(70 * 86_400),
            refuse_when_stale: false,
        };
        let refuse = StalenessPolicy {
            refuse_when_stale: true,
            ..warn
        };
        assert_eq!(
            list_freshness(&l, &warn, t0 + 3 * day),
            ListFreshness::Fresh { age_days: 3 }
        );
        assert_eq!(
            list_freshness(&l, &warn, t0 + 71 * day),
            ListFreshness::Stale { age_days: 71 }
        );
        assert!(matches!(
            list_freshness(&l, &refuse, t0 + 71 * day),
            ListFreshness::Refusing(_)
        ));
        let undated = list(None);
        assert_eq!(list_freshness(&undated, &warn, t0), ListFreshness::Undated);
        assert!(matches!(
            list_freshness(&undated, &refuse, t0),
            ListFreshness::Refusing(_)
        ));
    }
}
