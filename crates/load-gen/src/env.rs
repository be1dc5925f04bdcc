//! Every environment variable the `load-gen` binary reads, with its default, read through
//! the [`Strings`] trait so tests use a map instead of the process environment.
//!
//! Precedence everywhere: command-line flag, then environment variable, then (for `run`) the
//! scenario file, then the default.

#[cfg(test)]
mod tests;

/// Base URL of the OpenAI-compatible server, including `/v1` (as in the upstream script).
pub(crate) const ENV_ENDPOINT: &str = "ENDPOINT";
/// Default of [`ENV_ENDPOINT`].
pub(crate) const DEFAULT_ENDPOINT: &str = load_gen::DEFAULT_ENDPOINT;
/// Model name sent in every request.
pub(crate) const ENV_MODEL_NAME: &str = "MODEL_NAME";
/// Default of [`ENV_MODEL_NAME`].
pub(crate) const DEFAULT_MODEL_NAME: &str = load_gen::DEFAULT_MODEL;

/// A source of string settings.
pub(crate) trait Strings {
    /// The value of `key`, `Ok(None)` when unset, an error when set but not UTF-8.
    fn get(&self, key: &str) -> Result<Option<String>, EnvError>;
}

/// The process environment.
pub(crate) struct Env;

impl Strings for Env {
    #[allow(clippy::disallowed_methods)] // env.rs is the one place that reads the environment
    fn get(&self, key: &str) -> Result<Option<String>, EnvError> {
        match std::env::var(key) {
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(EnvError::NotUnicode {
                key: key.to_owned(),
            }),
        }
    }
}

/// The settings taken from the environment; `None` when unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EnvConfig {
    /// `ENDPOINT`.
    pub(crate) endpoint: Option<String>,
    /// `MODEL_NAME`.
    pub(crate) model: Option<String>,
}

/// A bad environment variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum EnvError {
    #[error("{key}: value is not valid UTF-8")]
    NotUnicode { key: String },
    #[error("{key}={value:?}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: &'static str,
    },
    #[error("{} invalid environment variable(s): {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Several(Vec<EnvError>),
}

/// Reads and checks every variable, reporting all bad ones at once.
pub(crate) fn parse(strings: &dyn Strings) -> Result<EnvConfig, EnvError> {
    let mut errors = Vec::new();
    let mut read = |key: &str, check: fn(&str) -> Option<&'static str>| match strings.get(key) {
        Ok(Some(value)) if value.trim().is_empty() => None,
        Ok(Some(value)) => match check(&value) {
            None => Some(value),
            Some(reason) => {
                errors.push(EnvError::Invalid {
                    key: key.to_owned(),
                    value,
                    reason,
                });
                None
            }
        },
        Ok(None) => None,
        Err(error) => {
            errors.push(error);
            None
        }
    };
    let endpoint = read(ENV_ENDPOINT, |value| {
        (!value.starts_with("http://") && !value.starts_with("https://"))
            .then_some("expected an http:// URL such as http://localhost:8000/v1")
    });
    let model = read(ENV_MODEL_NAME, |_| None);
    match errors.len() {
        0 => Ok(EnvConfig { endpoint, model }),
        1 => Err(errors.remove(0)),
        _ => Err(EnvError::Several(errors)),
    }
}
