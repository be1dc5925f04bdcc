//! `trait Plugin`, its typed name and stability, and the role accessors.

use crate::framework::request_control::{Admitter, PreRequest};
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::framework::scheduling::{Filter, PdDecider, Picker, ProfileHandler, Scorer};

/// A plugin's type (kebab-case, ending in its kind) and its instance name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedName {
    pub plugin_type: &'static str,
    pub name: String,
}

impl TypedName {
    pub fn new(plugin_type: &'static str, name: &str) -> TypedName {
        TypedName {
            plugin_type,
            name: name.to_owned(),
        }
    }
}

impl std::fmt::Display for TypedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.plugin_type, self.name)
    }
}

/// How settled a plugin type is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stability {
    Stable,
    Beta,
    Alpha,
}

/// One configured plugin instance. Every role accessor defaults to `None`; an instance
/// overrides the ones it implements.
pub trait Plugin: Send + Sync + 'static {
    fn typed_name(&self) -> &TypedName;

    fn as_filter(&self) -> Option<&dyn Filter> {
        None
    }
    fn as_scorer(&self) -> Option<&dyn Scorer> {
        None
    }
    fn as_picker(&self) -> Option<&dyn Picker> {
        None
    }
    fn as_profile_handler(&self) -> Option<&dyn ProfileHandler> {
        None
    }
    fn as_admitter(&self) -> Option<&dyn Admitter> {
        None
    }
    fn as_pre_request(&self) -> Option<&dyn PreRequest> {
        None
    }
    fn as_pd_decider(&self) -> Option<&dyn PdDecider> {
        None
    }

    /// Called once every plugin of the config is built, so an instance can resolve the
    /// other instances its parameters name; an error names the bad reference.
    fn bind(&self, _plugins: &BTreeMap<String, Arc<dyn Plugin>>) -> Result<(), String> {
        Ok(())
    }

    /// The endpoint `address` left the pool; plugins with per-endpoint state drop it.
    fn endpoint_removed(&self, _address: &str) {}

    /// The ZMQ endpoint this plugin receives KV events on, once bound (real port resolved).
    fn kv_events_endpoint(&self) -> Option<String> {
        None
    }
}

impl std::fmt::Debug for dyn Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plugin({})", self.typed_name())
    }
}
