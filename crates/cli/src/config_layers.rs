//! Layered configuration: defaults, then a TOML file, then `TEPHRA_*` environment
//! variables, then command-line flags; later layers win, setting by setting.
//!
//! The shape and the checks of [`Config`] belong to the server crate; this module
//! only decides where values come from, so that `serve`, `demo` and `import` all
//! see the same configuration for the same inputs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::bail;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use tephra_server::Config;

/// Prefix of the environment variables that set configuration values.
pub const ENV_PREFIX: &str = "TEPHRA_";

/// Separator of nesting levels in environment variable names:
/// `TEPHRA_SERVER__LISTEN` sets `server.listen`.
pub const ENV_NESTING: &str = "__";

/// Top-level settings the environment may set. Other `TEPHRA_*` variables (for
/// example `TEPHRA_CONFIG`, read by the `--config` flag, or variables of test
/// harnesses) are not settings and must not be mistaken for misspelt ones.
fn is_setting_section(name: &str) -> bool {
    // Derived from the configuration itself, so a new section is reachable from
    // the environment without touching this file.
    match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(sections)) => {
            sections.keys().any(|s| s.eq_ignore_ascii_case(name))
        }
        _ => false,
    }
}

/// The settings given as flags; `None` leaves the lower layers' value.
#[derive(Debug, Default, Clone)]
pub struct FlagSettings {
    /// `--data-dir`
    pub data_dir: Option<PathBuf>,
    /// `--listen`
    pub listen: Option<SocketAddr>,
    /// `--api-key`
    pub api_key: Option<String>,
    /// `--store`
    pub store: Option<String>,
    /// `--cache`
    pub cache: Option<String>,
}

/// Reads and checks the configuration.
///
/// `file` is the `--config` flag (or `TEPHRA_CONFIG`); when given it must exist,
/// because silently running with defaults after a typo in its path would be worse
/// than refusing to start.
pub fn load(file: Option<&Path>, flags: &FlagSettings) -> anyhow::Result<Config> {
    let config: Config = layers(file, flags)?
        .extract()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    config.validate().map_err(|e| match &e.field {
        Some(field) => anyhow::anyhow!("invalid configuration: {field}: {}", e.message),
        None => anyhow::anyhow!("invalid configuration: {}", e.message),
    })?;
    Ok(config)
}

/// The providers in order of precedence, lowest first.
fn layers(file: Option<&Path>, flags: &FlagSettings) -> anyhow::Result<Figment> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = file {
        if !path.is_file() {
            bail!(
                "configuration file `{}` does not exist (given by --config or TEPHRA_CONFIG)",
                path.display()
            );
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment.merge(environment());
    for (key, var) in TEXT_SETTINGS {
        if let Some(value) = std::env::var_os(var) {
            let value = value
                .into_string()
                .map_err(|_| anyhow::anyhow!("invalid configuration: {var} is not valid UTF-8"))?;
            figment = figment.merge(Serialized::default(key, value));
        }
    }
    if let Some(dir) = &flags.data_dir {
        figment = figment.merge(Serialized::default("data_dir", dir));
    }
    if let Some(listen) = &flags.listen {
        figment = figment.merge(Serialized::default("server.listen", listen.to_string()));
    }
    if let Some(key) = &flags.api_key {
        figment = figment.merge(Serialized::default("server.api_key", key));
    }
    if let Some(url) = &flags.store {
        figment = figment.merge(Serialized::default("cluster.store", url));
    }
    if let Some(url) = &flags.cache {
        figment = figment.merge(Serialized::default("cluster.cache", url));
    }
    Ok(figment)
}

/// Settings that are free text. Environment values are otherwise parsed (`123`
/// becomes a number, `true` a boolean), which would refuse an all-digit API key
/// or data directory; these are read verbatim instead.
const TEXT_SETTINGS: [(&str, &str); 5] = [
    ("data_dir", "TEPHRA_DATA_DIR"),
    ("server.api_key", "TEPHRA_SERVER__API_KEY"),
    ("server.admin_key", "TEPHRA_SERVER__ADMIN_KEY"),
    ("cluster.store", "TEPHRA_CLUSTER__STORE"),
    ("cluster.cache", "TEPHRA_CLUSTER__CACHE"),
];

/// `TEPHRA_*` variables naming a setting, nested by `__`.
fn environment() -> Env {
    Env::prefixed(ENV_PREFIX)
        .filter(|key| {
            let key = key.as_str();
            let top = key.split(ENV_NESTING).next().unwrap_or_default();
            is_setting_section(top)
                && !TEXT_SETTINGS
                    .iter()
                    .any(|(_, var)| var[ENV_PREFIX.len()..].eq_ignore_ascii_case(key))
        })
        .split(ENV_NESTING)
}

#[cfg(test)]
// `figment::Jail` closures must return `figment::Error`, a large type.
#[allow(clippy::result_large_err)]
mod tests {
    use figment::Jail;

    use super::*;

    fn write_file(jail: &mut Jail, text: &str) -> PathBuf {
        jail.create_file("tephra.toml", text).unwrap();
        jail.directory().join("tephra.toml")
    }

    #[test]
    fn defaults_without_file_env_or_flags() {
        Jail::expect_with(|_jail| {
            assert_eq!(
                load(None, &FlagSettings::default()).unwrap(),
                Config::default()
            );
            Ok(())
        });
    }

    #[test]
    fn file_overrides_defaults() {
        Jail::expect_with(|jail| {
            let file = write_file(jail, "data_dir = \"from-file\"\n[server]\nmax_batch = 7\n");
            let c = load(Some(&file), &FlagSettings::default()).unwrap();
            assert_eq!(c.data_dir, PathBuf::from("from-file"));
            assert_eq!(c.server.max_batch, 7);
            assert_eq!(c.server.listen, Config::default().server.listen);
            Ok(())
        });
    }

    #[test]
    fn environment_overrides_file_and_flags_override_environment() {
        Jail::expect_with(|jail| {
            let file = write_file(
                jail,
                "data_dir = \"from-file\"\n[server]\nlisten = \"127.0.0.1:1000\"\nmax_batch = 7\n",
            );
            jail.set_env("TEPHRA_SERVER__LISTEN", "127.0.0.1:2000");
            jail.set_env("TEPHRA_DATA_DIR", "from-env");
            let c = load(Some(&file), &FlagSettings::default()).unwrap();
            assert_eq!(c.server.listen.port(), 2000);
            assert_eq!(c.data_dir, PathBuf::from("from-env"));
            assert_eq!(
                c.server.max_batch, 7,
                "settings the environment does not name keep the file's value"
            );

            let flags = FlagSettings {
                data_dir: Some("from-flag".into()),
                listen: Some(SocketAddr::from(([127, 0, 0, 1], 3000))),
                api_key: None,
                store: Some("postgres://db/x".into()),
                cache: Some("redis://cache:6379".into()),
            };
            let c = load(Some(&file), &flags).unwrap();
            assert_eq!(c.server.listen.port(), 3000);
            assert_eq!(c.data_dir, PathBuf::from("from-flag"));
            assert_eq!(c.cluster.store.as_deref(), Some("postgres://db/x"));
            assert_eq!(c.cluster.cache.as_deref(), Some("redis://cache:6379"));
            Ok(())
        });
    }

    #[test]
    fn api_key_from_environment_even_if_it_looks_like_a_number() {
        Jail::expect_with(|jail| {
            jail.set_env("TEPHRA_SERVER__API_KEY", "12345678901234567890");
            let c = load(None, &FlagSettings::default()).unwrap();
            assert_eq!(c.server.api_key.as_deref(), Some("12345678901234567890"));
            Ok(())
        });
    }

    #[test]
    fn lists_and_numbers_from_environment() {
        Jail::expect_with(|jail| {
            jail.set_env("TEPHRA_EVENTS__POSITIVE", "[click, add_to_cart]");
            jail.set_env("TEPHRA_RECOMMEND__TRENDING_HALF_LIFE_HOURS", "6.5");
            jail.set_env("TEPHRA_SERVER__CREATE_UNKNOWN_ITEMS", "false");
            jail.set_env("TEPHRA_TRAINING__MIN_NEW_EVENTS", "7");
            let c = load(None, &FlagSettings::default()).unwrap();
            assert_eq!(c.training.min_new_events, 7);
            assert_eq!(c.events.positive, ["click", "add_to_cart"]);
            assert_eq!(c.recommend.trending_half_life_hours, 6.5);
            assert!(!c.server.create_unknown_items);
            Ok(())
        });
    }

    #[test]
    fn unrelated_tephra_variables_are_ignored() {
        Jail::expect_with(|jail| {
            jail.set_env("TEPHRA_CONFIG", "somewhere.toml");
            jail.set_env("TEPHRA_REQUIRE_SERVICES", "1");
            assert_eq!(
                load(None, &FlagSettings::default()).unwrap(),
                Config::default()
            );
            Ok(())
        });
    }

    #[test]
    fn misspelt_nested_setting_is_an_error_naming_it() {
        Jail::expect_with(|jail| {
            jail.set_env("TEPHRA_SERVER__LISTN", "127.0.0.1:1");
            let err = load(None, &FlagSettings::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("listn"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn missing_explicit_file_is_an_error_naming_it() {
        Jail::expect_with(|jail| {
            let missing = jail.directory().join("nope.toml");
            let err = load(Some(&missing), &FlagSettings::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("nope.toml"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn invalid_value_names_the_setting() {
        Jail::expect_with(|jail| {
            jail.set_env("TEPHRA_SERVER__MAX_BATCH", "0");
            let err = load(None, &FlagSettings::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("server.max_batch"), "{err}");
            let file = write_file(jail, "[recommend]\ntrending_half_life_hours = -1.0\n");
            jail.set_env("TEPHRA_SERVER__MAX_BATCH", "5");
            let err = load(Some(&file), &FlagSettings::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("recommend.trending_half_life_hours"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn wrong_type_in_file_names_the_file_and_setting() {
        Jail::expect_with(|jail| {
            let file = write_file(jail, "[server]\nmax_batch = \"many\"\n");
            let err = load(Some(&file), &FlagSettings::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("max_batch"), "{err}");
            Ok(())
        });
    }
}
