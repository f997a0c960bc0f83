//! Logging for `ctdns serve`: `tracing` events to stderr, as text or one JSON object per
//! line. The filter comes from `RUST_LOG` when set and non-empty, else from the config's
//! `log.level`.

use std::io::IsTerminal;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The environment variable that overrides `log.level`.
pub const RUST_LOG: &str = "RUST_LOG";

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoggingError {
    /// A filter directive does not parse; `source_name` says where it came from
    /// (`log.level` or `RUST_LOG`).
    #[error("{source_name} `{directive}` is not a valid log filter: {reason}")]
    Filter {
        /// `log.level` or `RUST_LOG`.
        source_name: &'static str,
        /// The directive as given.
        directive: String,
        /// The parser's message.
        reason: String,
    },
    /// A global subscriber was already installed.
    #[error("a logger is already installed: {0}")]
    AlreadyInstalled(String),
}

/// The filter in force: `rust_log` (the value of `RUST_LOG`) when set and non-empty, else
/// `level`.
pub fn filter(level: &str, rust_log: Option<&str>) -> Result<EnvFilter, LoggingError> {
    let (source_name, directive) = match rust_log.map(str::trim) {
        Some(env) if !env.is_empty() => (RUST_LOG, env),
        _ => ("log.level", level.trim()),
    };
    EnvFilter::try_new(directive).map_err(|e| LoggingError::Filter {
        source_name,
        directive: directive.to_string(),
        reason: e.to_string(),
    })
}

/// A subscriber writing `format` to `writer`, filtered by `filter`.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.with_ansi(ansi).finish()),
        LogFormat::Json => Box::new(
            builder
                .json()
                .with_current_span(false)
                .with_span_list(false)
                .finish(),
        ),
    }
}

/// Install the global logger: `format` to stderr, filtered by `RUST_LOG` or `level`.
/// Colours only when stderr is a terminal.
pub fn init(format: LogFormat, level: &str) -> Result<(), LoggingError> {
    let env = std::env::var(RUST_LOG).ok();
    let filter = filter(level, env.as_deref())?;
    let ansi = std::io::stderr().is_terminal();
    tracing::subscriber::set_global_default(subscriber(format, filter, std::io::stderr, ansi))
        .map_err(|e| LoggingError::AlreadyInstalled(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn emit(format: LogFormat, level: &str) -> String {
        let buf = Buffer::default();
        let sub = subscriber(format, filter(level, None).unwrap(), buf.clone(), false);
        tracing::subscriber::with_default(sub, || {
            tracing::debug!(detail = 1, "debug event");
            tracing::warn!(
                upstream = "dot://192.0.2.1:853",
                rule = "issuer-pin",
                "refused"
            );
        });
        buf.text()
    }

    #[test]
    fn rust_log_overrides_the_configured_level() {
        let f = filter("info", Some("debug")).unwrap();
        assert_eq!(f.to_string(), "debug");
        let f = filter("info", Some("  ")).unwrap();
        assert_eq!(f.to_string(), "info");
        let f = filter("warn", None).unwrap();
        assert_eq!(f.to_string(), "warn");
    }

    #[test]
    fn bad_filters_name_their_source() {
        let e = filter("info,ctdns=loud", None).unwrap_err();
        assert!(e.to_string().starts_with("log.level"), "{e}");
        let e = filter("info", Some("ctdns=[")).unwrap_err();
        assert!(e.to_string().starts_with("RUST_LOG"), "{e}");
    }

    #[test]
    fn text_lines_carry_level_and_fields() {
        let out = emit(LogFormat::Text, "info");
        assert!(!out.contains("debug event"), "{out}");
        let line = out.lines().find(|l| l.contains("refused")).unwrap();
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("rule=\"issuer-pin\""), "{line}");
        assert!(!line.contains('\u{1b}'), "no ANSI escapes: {line:?}");
    }

    #[test]
    fn json_lines_are_objects() {
        let out = emit(LogFormat::Json, "debug");
        let objs: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(objs.len(), 2, "{out}");
        assert_eq!(objs[0]["level"], "DEBUG");
        assert_eq!(objs[1]["level"], "WARN");
        assert_eq!(objs[1]["fields"]["rule"], "issuer-pin");
        assert_eq!(objs[1]["fields"]["message"], "refused");
    }
}
