//! The factory table: plugin type → constructor, and what constructors may use.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokenizer::Tokenizer;

use crate::framework::plugin::{Plugin, Stability};
use crate::telemetry::Metrics;

/// Builds one instance from its name and raw `parameters` (strictly deserialized by the
/// factory itself).
pub type Factory = fn(
    name: &str,
    parameters: serde_norway::Value,
    handle: &Handle,
) -> Result<Arc<dyn Plugin>, PluginError>;

/// Errors building a plugin.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("parameters: {0}")]
    Parameters(#[from] serde_norway::Error),
    #[error("parameter {parameter}: {reason}")]
    Invalid {
        parameter: &'static str,
        reason: String,
    },
    #[error("starting the kv-events subscriber")]
    Subscriber(#[source] kv_index::subscriber::Error),
    #[error("loading tokenizer {path}")]
    Tokenizer {
        path: String,
        #[source]
        source: tokenizer::Error,
    },
}

/// Shared resources a factory may use: the default tokenizer, the metric handles, and the
/// registry for metrics owned by libraries (kv-index).
#[derive(Clone)]
pub struct Handle {
    pub tokenizer: Tokenizer,
    pub metrics: Arc<Metrics>,
    pub registry: prometheus::Registry,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("tokenizer", &self.tokenizer)
            .finish()
    }
}

/// One registered type.
#[derive(Debug, Clone, Copy)]
pub struct Registration {
    pub factory: Factory,
    pub stability: Stability,
}

/// Plugin types by name.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    types: BTreeMap<&'static str, Registration>,
}

impl Registry {
    pub fn register(&mut self, plugin_type: &'static str, stability: Stability, factory: Factory) {
        let previous = self
            .types
            .insert(plugin_type, Registration { factory, stability });
        debug_assert!(
            previous.is_none(),
            "plugin type {plugin_type} registered twice"
        );
    }

    pub fn get(&self, plugin_type: &str) -> Option<&Registration> {
        self.types.get(plugin_type)
    }

    /// Every registered type, sorted.
    pub fn types(&self) -> impl Iterator<Item = (&'static str, &Registration)> {
        self.types
            .iter()
            .map(|(name, registration)| (*name, registration))
    }
}

/// Deserializes a factory's `parameters` strictly; a missing (null) value is the default.
pub fn parameters<T: serde::de::DeserializeOwned + Default>(
    value: serde_norway::Value,
) -> Result<T, PluginError> {
    if value.is_null() {
        return Ok(T::default());
    }
    Ok(serde_norway::from_value(value)?)
}
