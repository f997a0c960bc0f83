//! Reloading `ctdns serve` on SIGHUP without a restart (same PID, listeners kept open).
//!
//! A reload re-reads the `--config` file (with the same command-line overrides) and the
//! files it names (the CT log list, the roots file), opens the evidence store, builds new
//! verifiers, transports and a new upstream [`Pool`](crate::upstream::pool::Pool), and swaps
//! the pool in ([`SwappableTransport::swap`]): queries in flight finish on the old pool,
//! queries received after the swap use the new one. The old pool, its transports and their
//! connections (verified under the old pins, roots and log list) are dropped, and the
//! connections closed, when the last query in flight on them finishes; the answer cache is
//! emptied by the caller (`ctdns serve`) so that no answer obtained under the old trust is
//! served again.
//!
//! The new pool starts fresh: every upstream's health and dial backoff start over, whether
//! or not its settings changed.
//!
//! A configuration, log list or roots file that cannot be used leaves the running state
//! untouched; the failure is logged as one ERROR naming the key or file, and counted in
//! [`ReloadStats`].
//!
//! Some settings belong to the listeners and the process and need a restart
//! ([`RESTART_KEYS`]): a reload that changes them logs a WARN naming each key and keeps the
//! running value.

use std::sync::Arc;

use crate::cli::serve::{load_config, ServeArgs};
use crate::config::{Config, ConfigError};
use crate::metrics::ReloadStats;
use crate::runtime::{self, SetupError, Trust};
use crate::upstream::swap::SwappableTransport;

/// The configuration keys a reload cannot change: the listeners, the process's identity, and
/// the front end's settings (allow list, rate limit, cache, timeouts, connection limits)
/// and logging, fixed when the stub started. Changing them needs a restart.
pub const RESTART_KEYS: &[&str] = &[
    "listen",
    "user",
    "group",
    "allow_root",
    "allow",
    "rate_limit",
    "cache",
    "query_timeout_ms",
    "tcp_idle_timeout_ms",
    "max_tcp_connections",
    "log",
];

/// Why a reload was refused (the running configuration stays in force).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The configuration file cannot be read, does not parse, or has an invalid key.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file the configuration names (log list, roots), the evidence directory, or an
    /// upstream cannot be used.
    #[error(transparent)]
    Setup(#[from] SetupError),
}

/// What a successful reload installed.
#[derive(Debug)]
pub struct Reloaded {
    /// The swap number of the new pool (1 for the first reload).
    pub generation: u64,
    /// The new pool (for the metrics endpoint to read).
    pub pool: Arc<crate::upstream::pool::Pool>,
    /// The new trust: roots, log list, policy.
    pub trust: Trust,
    /// The keys that changed but need a restart (their running value was kept).
    pub restart_needed: Vec<&'static str>,
}

/// Holds what `ctdns serve` runs with and replaces it on [`Reloader::reload`].
#[derive(Debug)]
pub struct Reloader {
    args: ServeArgs,
    config: Config,
    upstream: Arc<SwappableTransport>,
    stats: Arc<ReloadStats>,
}

impl Reloader {
    /// A reloader for a stub started from `args` with `config`, forwarding through
    /// `upstream`, counting outcomes in `stats`.
    pub fn new(
        args: ServeArgs,
        config: Config,
        upstream: Arc<SwappableTransport>,
        stats: Arc<ReloadStats>,
    ) -> Self {
        Reloader {
            args,
            config,
            upstream,
            stats,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The reload counters.
    pub fn stats(&self) -> &Arc<ReloadStats> {
        &self.stats
    }

    /// Re-read everything and swap the new pool in; on failure keep the running state.
    /// Logs the outcome (one ERROR on failure, a WARN per key that needs a restart, an INFO
    /// on success) and counts it.
    pub fn reload(&mut self) -> Result<Reloaded, ReloadError> {
        let source = self
            .args
            .config
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "built-in default".into());
        let result = self.try_reload();
        self.stats.record(result.is_ok());
        match &result {
            Ok(done) => {
                for key in &done.restart_needed {
                    tracing::warn!(
                        key,
                        "reload: config key `{key}` changed but needs a restart to take \
                         effect; keeping the running value"
                    );
                }
                tracing::info!(
                    event = crate::events::CONFIG_RELOAD,
                    result = "success",
                    config = %source,
                    generation = done.generation,
                    upstreams = self.config.upstreams.len(),
                    "configuration reloaded: new queries use the new upstreams, pins, roots \
                     and log list; connections verified under the previous ones close once \
                     their queries finish; cache emptied; upstream backoff starts fresh"
                );
            }
            Err(e) => tracing::error!(
                event = crate::events::CONFIG_RELOAD,
                result = "failure",
                config = %source,
                error = %e,
                "reload failed; still serving with the previous configuration"
            ),
        }
        result
    }

    fn try_reload(&mut self) -> Result<Reloaded, ReloadError> {
        let mut config = load_config(&self.args)?;
        let restart_needed = keep_restart_keys(&self.config, &mut config);
        let trust = Trust::without_evidence(&config)?.open_evidence(&config)?;
        let pool = runtime::pool(&config, &trust)?;
        let generation = self.upstream.swap(pool.clone());
        let today = crate::evidence::format_time(crate::cli::serve::now_ms() / 1000);
        for warning in
            crate::cli::startup::pin_warnings(&config, &trust, today.get(..10).unwrap_or(""))
        {
            tracing::warn!("{warning}");
        }
        self.config = config;
        Ok(Reloaded {
            generation,
            pool,
            trust,
            restart_needed,
        })
    }
}

/// Copies into `new` the running value of every [`RESTART_KEYS`] key that differs, and
/// returns those keys.
pub fn keep_restart_keys(running: &Config, new: &mut Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    macro_rules! keep {
        ($($field:ident => $key:literal),* $(,)?) => {$(
            if running.$field != new.$field {
                new.$field = running.$field.clone();
                changed.push($key);
            }
        )*};
    }
    keep!(
        listen => "listen",
        user => "user",
        group => "group",
        allow_root => "allow_root",
        allow => "allow",
        rate_limit => "rate_limit",
        cache => "cache",
        query_timeout_ms => "query_timeout_ms",
        tcp_idle_timeout_ms => "tcp_idle_timeout_ms",
        max_tcp_connections => "max_tcp_connections",
        log => "log",
    );
    new.listen_is_builtin = running.listen_is_builtin;
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::Transport;

    fn write(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
        let path = dir.join("ctdns.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    const LOOPBACK_UPSTREAM: &str =
        "[[upstream]]\nprotocol = \"dot\"\nip = \"127.0.0.1\"\nport = 1\n";

    fn reloader(dir: &std::path::Path, text: &str) -> Reloader {
        let args = ServeArgs {
            config: Some(write(dir, text)),
            ..ServeArgs::default()
        };
        let config = load_config(&args).unwrap();
        let trust = Trust::from_config(&config).unwrap();
        let pool = runtime::pool(&config, &trust).unwrap();
        Reloader::new(
            args,
            config,
            Arc::new(SwappableTransport::new(pool)),
            Arc::new(ReloadStats::default()),
        )
    }

    #[test]
    fn restart_keys_keep_their_running_value_and_are_named() {
        let running = Config::default();
        let mut new = Config {
            listen: vec!["127.0.0.1:5353".parse().unwrap()],
            ..Config::default()
        };
        new.cache.enabled = false;
        new.log.level = "debug".into();
        new.ct.max_list_age_days = 5;
        let changed = keep_restart_keys(&running, &mut new);
        assert_eq!(changed, vec!["listen", "cache", "log"]);
        assert_eq!(new.listen, running.listen);
        assert!(new.cache.enabled);
        assert_eq!(new.log, running.log);
        // A swappable key keeps its new value.
        assert_eq!(new.ct.max_list_age_days, 5);
        assert!(keep_restart_keys(&running, &mut Config::default()).is_empty());
        for key in changed {
            assert!(RESTART_KEYS.contains(&key));
        }
    }

    #[tokio::test]
    async fn a_good_reload_swaps_and_a_bad_one_keeps_the_running_state() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = reloader(
            dir.path(),
            &format!("listen = [\"127.0.0.1:0\"]\n{LOOPBACK_UPSTREAM}"),
        );
        let before = r.upstream.current();

        // A second upstream and a changed listen address.
        let two = format!(
            "listen = [\"127.0.0.1:9\"]\n{LOOPBACK_UPSTREAM}{}",
            LOOPBACK_UPSTREAM.replace("port = 1", "port = 2")
        );
        write(dir.path(), &two);
        let done = r.reload().unwrap();
        assert_eq!(done.generation, 1);
        assert_eq!(done.restart_needed, vec!["listen"]);
        assert_eq!(r.config().upstreams.len(), 2);
        assert_eq!(r.config().listen, vec!["127.0.0.1:0".parse().unwrap()]);
        assert!(!Arc::ptr_eq(&before, &r.upstream.current()));
        assert_eq!((r.stats().ok(), r.stats().errors()), (1, 0));

        let installed = r.upstream.current();
        let bad = [
            ("listen = [", "TOML"),
            (
                "[[upstream]]\nprotocol = \"dot\"\nip = \"127.0.0.1\"\npins = [\"nope\"]\n",
                "upstream[0].pins[0]",
            ),
            (
                "[ct]\nlog_list = \"/nonexistent/ctdns-list.json\"\n",
                "/nonexistent/ctdns-list.json",
            ),
            (
                "[tls]\nroots = \"/nonexistent/roots.pem\"\n",
                "/nonexistent/roots.pem",
            ),
        ];
        for (i, (text, named)) in bad.iter().enumerate() {
            write(dir.path(), text);
            let e = r.reload().unwrap_err();
            assert!(e.to_string().contains(named), "{named}: {e}");
            assert!(Arc::ptr_eq(&installed, &r.upstream.current()), "{named}");
            assert_eq!(r.config().upstreams.len(), 2);
            assert_eq!(r.stats().errors(), i as u64 + 1);
        }
        assert_eq!(r.stats().ok(), 1);
        assert_eq!(r.upstream.name(), "reloadable");
    }
}
