//! Configuration: the TOML file, its lookup order, environment overrides and validation.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use vaultkeeper_vaultfs::WatchConfig;
pub use vaultkeeper_vaultfs::paths::VAULT_CONFIG_NAME;

/// A configuration error; every variant names the file and, where there is one, the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key, or a value of the wrong type.
    #[error("invalid config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the key and line.
        message: String,
    },
    /// A value parsed but is not acceptable.
    #[error("invalid config {path}: key `{key}`: {message}")]
    Value {
        /// The file (or `environment`).
        path: PathBuf,
        /// The offending key, dotted.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line, for collectors.
    Json,
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The vault folder (optional when given on the command line or found from the current folder).
    pub vault: Option<PathBuf>,
    /// The vault's name in events; defaults to the folder's name.
    pub name: Option<String>,
    /// Where the journal, cache and lock live; defaults to the XDG state directory.
    pub state_dir: Option<PathBuf>,
    /// The watcher.
    pub watch: WatchConfig,
    /// The journal.
    pub journal: JournalConfig,
    /// The consumer runner.
    pub runner: RunnerConfig,
    /// Logging.
    pub log: LogConfig,
    /// RabbitMQ.
    pub amqp: vaultkeeper_amqp::AmqpConfig,
    /// The shadow cache.
    pub cache: vaultkeeper_cache::CacheConfig,
    /// Git auto-commit.
    pub git: vaultkeeper_git::GitConfig,
    /// The MCP server (`[mcp]`).
    pub mcp: vaultkeeper_mcp::McpConfig,
    /// `[rules]`: settings shared by the rules.
    pub rules: vaultkeeper_rules::RulesSection,
    /// `[api]`: the local API's TCP address and heartbeat.
    pub api: vaultkeeper_api::ApiConfig,
    /// `[[rule]]`: commands run for matching events.
    #[serde(rename = "rule")]
    pub rule: Vec<vaultkeeper_rules::RuleConfig>,
}

/// `[journal]`: the embedded bus.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JournalConfig {
    /// Events older than this and below every consumer's cursor are pruned.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// `[runner]`: how every consumer is driven.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunnerConfig {
    /// Events handed to a consumer at once.
    pub batch_size: usize,
    /// Failures of one event before it becomes a dead letter.
    pub max_attempts: u32,
    /// First retry delay.
    #[serde(with = "humantime_serde")]
    pub retry_min: Duration,
    /// Longest retry delay.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// How long consumers may take to drain on shutdown.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            batch_size: 500,
            max_attempts: 5,
            retry_min: Duration::from_millis(200),
            retry_max: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `human` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `vaultkeeper=debug`; `VAULTKEEPER_LOG` wins.
    pub filter: Option<String>,
}

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file.
    File(PathBuf),
    /// No file: built-in defaults.
    Defaults,
}

/// A loaded configuration and its source.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// The file it was read from.
    pub source: Source,
}

impl Config {
    /// Parses `text` as the file `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Reads and parses a file.
    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |key: &str, message: &str| ConfigError::Value {
            path: path.to_path_buf(),
            key: key.to_string(),
            message: message.to_string(),
        };
        if self.watch.debounce > Duration::from_secs(60) {
            return Err(bad("watch.debounce", "must be at most 60s"));
        }
        if self.watch.temp_settle > Duration::from_secs(3600) {
            return Err(bad("watch.temp_settle", "must be at most 1h"));
        }
        if self.watch.max_latency < self.watch.debounce {
            return Err(bad(
                "watch.max_latency",
                "must not be shorter than watch.debounce",
            ));
        }
        if self.watch.poll_interval < Duration::from_millis(100) {
            return Err(bad("watch.poll_interval", "must be at least 100ms"));
        }
        if self.watch.queue < 16 {
            return Err(bad("watch.queue", "must be at least 16"));
        }
        if self.runner.batch_size == 0 {
            return Err(bad("runner.batch_size", "must be at least 1"));
        }
        if self.runner.max_attempts == 0 {
            return Err(bad("runner.max_attempts", "must be at least 1"));
        }
        for (i, glob) in self.watch.ignore.iter().enumerate() {
            if let Err(e) = globset::Glob::new(glob) {
                return Err(bad(&format!("watch.ignore[{i}]"), &e.to_string()));
            }
        }
        if let Some(url) = &self.amqp.url
            && let Err(e) = url::Url::parse(url.expose())
        {
            return Err(bad("amqp.url", &format!("not a URL: {e}")));
        }
        let vault = self.vault.as_deref().unwrap_or(Path::new("."));
        if let Err(e) = vaultkeeper_rules::RuleSet::compile(&self.rule, &self.rules, vault) {
            return Err(bad(&e.key, &e.message));
        }
        Ok(())
    }

    /// Refuses a secret in a config file that lives inside the vault, since that file is
    /// committed and published like any note.
    pub fn check_no_secrets_in_vault(&self, file: &Path, vault: &Path) -> Result<(), ConfigError> {
        let inside = match (file.canonicalize(), vault.canonicalize()) {
            (Ok(f), Ok(v)) => f.starts_with(v),
            _ => false,
        };
        if !inside {
            return Ok(());
        }
        if let Some(url) = &self.amqp.url
            && vaultkeeper_amqp::has_password(url.expose())
        {
            return Err(ConfigError::Value {
                path: file.to_path_buf(),
                key: "amqp.url".into(),
                message: "holds a password, but this file is inside the vault and is \
                          committed and published with it; put the URL in VAULTKEEPER_AMQP_URL \
                          or in the user config ($XDG_CONFIG_HOME/vaultkeeper/config.toml)"
                    .into(),
            });
        }
        Ok(())
    }

    /// Applies environment overrides (deployment settings and secrets).
    pub fn apply_env(&mut self) {
        if let Some(v) = env_nonempty("VAULTKEEPER_STATE_DIR") {
            self.state_dir = Some(PathBuf::from(v));
        }
        if let Some(v) =
            env_nonempty("VAULTKEEPER_AMQP_URL").or_else(|| env_nonempty("RABBITMQ_URL"))
        {
            self.amqp.url = Some(vaultkeeper_amqp::SecretUrl::new(v));
        }
        if let Some(v) = env_nonempty("VAULTKEEPER_LOG_FORMAT") {
            match v.as_str() {
                "json" => self.log.format = LogFormat::Json,
                "human" => self.log.format = LogFormat::Human,
                _ => {}
            }
        }
    }
}

fn env_nonempty(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// The user's config file: `$XDG_CONFIG_HOME/vaultkeeper/config.toml`.
pub fn user_config_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("vaultkeeper").join("config.toml"))
}

/// Finds and loads the configuration: `--config`, `$VAULTKEEPER_CONFIG`,
/// `<vault>/.vaultkeeper.toml`, then the user's config; the first that exists wins.
pub fn load(explicit: Option<&Path>, vault: Option<&Path>) -> Result<Loaded, ConfigError> {
    let from_env = env_nonempty("VAULTKEEPER_CONFIG").map(PathBuf::from);
    let chosen = explicit.map(Path::to_path_buf).or(from_env);
    let (config, source) = if let Some(path) = chosen {
        (Config::read(&path)?, Source::File(path))
    } else {
        let in_vault = vault
            .map(|v| v.join(VAULT_CONFIG_NAME))
            .filter(|p| p.is_file());
        match in_vault.or_else(|| user_config_path().filter(|p| p.is_file())) {
            Some(path) => (Config::read(&path)?, Source::File(path)),
            None => (Config::default(), Source::Defaults),
        }
    };
    let mut config = config;
    if let (Source::File(file), Some(v)) = (&source, vault.or(config.vault.as_deref())) {
        config.check_no_secrets_in_vault(file, v)?;
    }
    config.apply_env();
    Ok(Loaded { config, source })
}

/// A starter configuration for `vaultkeeper init`.
pub fn starter(vault_name: &str) -> String {
    format!(
        "# vaultkeeper configuration for the vault \"{vault_name}\".\n\
         # Every key, with its default, is documented in config/vaultkeeper.example.toml.\n\
         # This file lives inside the vault and is committed with it: keep secrets out\n\
         # (put the AMQP URL with its password in VAULTKEEPER_AMQP_URL instead).\n\
         \n\
         [watch]\n\
         debounce = \"100ms\"\n\
         # ignore = [\"drafts/**\"]\n"
    )
}

impl From<&RunnerConfig> for vaultkeeper_runner::RunnerSettings {
    fn from(c: &RunnerConfig) -> Self {
        vaultkeeper_runner::RunnerSettings {
            batch_size: c.batch_size,
            max_attempts: c.max_attempts,
            retry_min: c.retry_min,
            retry_max: c.retry_max,
        }
    }
}

impl vaultkeeper_rules::RulesSource for Config {
    fn rule_list(&self) -> &[vaultkeeper_rules::RuleConfig] {
        &self.rule
    }
    fn section(&self) -> &vaultkeeper_rules::RulesSection {
        &self.rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_file_error_names_file_and_key() {
        let text = "[[rule]]\nrun = [\"a\"]\n[[rule]]\nrun = [\"b\"]\n[[rule]]\nrun = []\n";
        let err = Config::parse(text, Path::new("/x/c.toml")).expect_err("bad");
        let msg = err.to_string();
        assert!(msg.contains("/x/c.toml"), "{msg}");
        assert!(msg.contains("rule[2].run"), "{msg}");
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let err = Config::parse("[watch]\ndebounse = \"1s\"\n", Path::new("/x/c.toml"))
            .expect_err("unknown key");
        let msg = err.to_string();
        assert!(msg.contains("/x/c.toml"), "{msg}");
        assert!(msg.contains("debounse"), "{msg}");
    }

    #[test]
    fn bad_values_are_refused() {
        let err = Config::parse("[watch]\ndebounce = \"soon\"\n", Path::new("c.toml"))
            .expect_err("bad duration");
        assert!(err.to_string().contains("debounce"), "{err}");
        let err = Config::parse("[runner]\nbatch_size = 0\n", Path::new("c.toml"))
            .expect_err("zero batch");
        assert!(err.to_string().contains("runner.batch_size"), "{err}");
        let err = Config::parse("[watch]\nignore = [\"a[\"]\n", Path::new("c.toml"))
            .expect_err("bad glob");
        assert!(err.to_string().contains("watch.ignore[0]"), "{err}");
    }

    #[test]
    fn durations_parse() {
        let c = Config::parse(
            "[watch]\ndebounce = \"250ms\"\nmax_latency = \"5s\"\n",
            Path::new("c"),
        )
        .expect("valid");
        assert_eq!(c.watch.debounce, Duration::from_millis(250));
        assert_eq!(c.watch.max_latency, Duration::from_secs(5));
    }

    #[test]
    fn secret_inside_vault_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join(VAULT_CONFIG_NAME);
        std::fs::write(&file, "[amqp]\nurl = \"amqp://u:hunter2@h/\"\n").expect("write");
        let c = Config::read(&file).expect("parses");
        let err = c
            .check_no_secrets_in_vault(&file, dir.path())
            .expect_err("secret in vault");
        let msg = err.to_string();
        assert!(msg.contains("VAULTKEEPER_AMQP_URL"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        // Without a password it is fine.
        std::fs::write(&file, "[amqp]\nurl = \"amqp://u@h/\"\n").expect("write");
        let c = Config::read(&file).expect("parses");
        c.check_no_secrets_in_vault(&file, dir.path())
            .expect("no secret");
    }

    #[test]
    fn example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/vaultkeeper.example.toml");
        Config::read(&path).expect("example config is valid");
    }

    #[test]
    fn starter_parses() {
        Config::parse(&starter("v"), Path::new("starter")).expect("starter is valid");
    }
}
