//! `ctdns config show`: the effective configuration, every default filled in.
//!
//! What `serve` would run with — the built-in upstreams and their pins included — in the
//! configuration file's own keys: TOML that `serve --config` reads back as the same
//! configuration, or JSON with the same names. The TOML form starts with comments naming
//! the evidence behind each built-in pin set and when it must be revisited.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::common::EXIT_BAD_INPUT;
use crate::config::{defaults, Config};

/// Arguments of `ctdns config`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: ConfigAction,
}

/// `ctdns config` actions.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ConfigAction {
    /// Print the effective configuration (exit 0, or 2 for an invalid file).
    Show {
        /// The TOML file `serve --config` would read; default: the built-in configuration.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Print JSON instead of TOML.
        #[arg(long)]
        json: bool,
    },
}

/// Run `ctdns config`.
pub fn run(args: ConfigArgs) -> ExitCode {
    let ConfigAction::Show { config, json } = args.action;
    let loaded = match &config {
        Some(path) => Config::from_file(path),
        None => Ok(Config::default()),
    };
    let effective = match loaded {
        Ok(c) => c.effective(),
        Err(e) => {
            eprintln!("ctdns config show: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    match render(&effective, json) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ctdns config show: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// The effective configuration as TOML (with provenance comments) or JSON.
pub fn render(config: &Config, json: bool) -> Result<String, String> {
    if json {
        return serde_json::to_string_pretty(config)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(|e| e.to_string());
    }
    let body = toml::to_string(config).map_err(|e| e.to_string())?;
    let mut out = String::from("# ctdns effective configuration (`ctdns config show`)\n");
    for op in defaults::OPERATORS {
        let users: Vec<String> = config
            .upstreams
            .iter()
            .enumerate()
            .filter(|(_, up)| defaults::operator_of(up.pins()) == Some(op))
            .map(|(i, _)| format!("upstream[{i}]"))
            .collect();
        if users.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "# {}: built-in {} pins, checked against the served chain on {}; revisit by {} \
             (certs/README.md)\n",
            users.join(", "),
            op.operator,
            op.evidence_date,
            op.revisit_by
        ));
        for p in op.pins {
            out.push_str(&format!("#   {} = {} ({:?})\n", p.pin, p.ca, p.role));
        }
    }
    out.push('\n');
    out.push_str(&body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trips_to_the_same_configuration() {
        let builtin = Config::default().effective();
        let text = render(&builtin, false).unwrap();
        assert!(text.contains("[[upstream]]"), "{text}");
        assert!(
            text.contains("oyD01TTXvpfBro3QSZc1vIlcMjrdLTiL/M9mLCPX+Zo="),
            "{text}"
        );
        assert!(text.contains("revisit by 2026-12-21"), "{text}");
        let back = Config::from_toml(&text).unwrap();
        // Written out, `listen` is no longer the unwritten default; all else is equal.
        assert_eq!(
            Config {
                listen_is_builtin: true,
                ..back
            },
            builtin
        );
    }

    #[test]
    fn json_has_the_same_names() {
        let text = render(&Config::default().effective(), true).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["upstream"][0]["ip"], "1.1.1.1");
        assert_eq!(v["upstream"][0]["port"], 853);
        assert_eq!(v["upstream"][2]["pins"][0], defaults::QUAD9.pins[0].pin);
        assert_eq!(v["ct"]["max_list_age_days"], 70);
        assert!(v.get("listen_is_builtin").is_none());
    }
}
