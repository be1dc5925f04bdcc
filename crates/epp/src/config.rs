//! The `EndpointPickerConfig` YAML: plugins declared once (`type`, `name`, `parameters`)
//! and scheduling profiles that reference them by name with weights.
//!
//! Parsing is strict: an unknown key anywhere, an unknown plugin type, or a profile naming a
//! missing plugin is an error that names it. Defaults follow GIE's loader (see [`defaults`]).

pub mod defaults;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::framework::{Handle, Plugin, PluginError, Registry};
use crate::scheduler::{Profile, Scheduler};

/// `apiVersion` values accepted: llm-d's current, the newest guides', and GIE's deprecated one.
pub const API_VERSIONS: &[&str] = &[
    "llm-d.ai/v1alpha1",
    "llm-d.ai/v1",
    "inference.networking.x-k8s.io/v1alpha1",
];
/// The only `kind`.
pub const KIND: &str = "EndpointPickerConfig";

/// The file as written.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EndpointPickerConfig {
    /// One of [`API_VERSIONS`]; optional.
    pub api_version: Option<String>,
    /// [`KIND`]; optional.
    pub kind: Option<String>,
    /// Feature gates; none are defined yet, so any entry is an error.
    #[serde(default)]
    pub feature_gates: Vec<String>,
    /// Every plugin instance.
    #[serde(default)]
    pub plugins: Vec<PluginSpec>,
    /// Profiles referencing the plugins; empty builds one `default` profile of every filter,
    /// scorer and picker.
    #[serde(default)]
    pub scheduling_profiles: Vec<ProfileSpec>,
}

/// One plugin instance.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PluginSpec {
    /// A registered type, e.g. `queue-scorer`.
    #[serde(rename = "type")]
    pub plugin_type: String,
    /// The instance name profiles refer to; defaults to the type.
    pub name: Option<String>,
    /// Handed to the type's factory, which parses it strictly.
    #[serde(default)]
    pub parameters: serde_norway::Value,
}

/// One scheduling profile.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProfileSpec {
    pub name: String,
    #[serde(default)]
    pub plugins: Vec<ProfilePluginRef>,
}

/// A reference from a profile to a plugin instance.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProfilePluginRef {
    pub plugin_ref: String,
    /// Scorer weight; default [`defaults::DEFAULT_WEIGHT`].
    pub weight: Option<f64>,
}

/// Errors loading a config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config is not valid YAML for EndpointPickerConfig: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("apiVersion {found:?} is not one of {API_VERSIONS:?}")]
    ApiVersion { found: String },
    #[error("kind {found:?} is not {KIND:?}")]
    Kind { found: String },
    #[error("feature gate {0:?} is unknown")]
    FeatureGate(String),
    #[error("plugin {name:?}: unknown type {plugin_type:?} (known types: {known})")]
    UnknownPluginType {
        name: String,
        plugin_type: String,
        known: String,
    },
    #[error("plugin name {0:?} is declared twice")]
    DuplicatePluginName(String),
    #[error("plugin {name:?}: {reason}")]
    Binding { name: String, reason: String },
    #[error("plugin {name:?} (type {plugin_type:?})")]
    Plugin {
        name: String,
        plugin_type: String,
        #[source]
        source: PluginError,
    },
    #[error("profile {0:?} is declared twice")]
    DuplicateProfile(String),
    #[error("profile {profile:?} references plugin {plugin_ref:?}, which is not declared")]
    MissingPluginRef { profile: String, plugin_ref: String },
    #[error("profile {profile:?}: plugin {plugin:?} is not a filter, scorer or picker")]
    NotAProfilePlugin { profile: String, plugin: String },
    #[error("profile {profile:?}: a second picker {second:?} after {first:?}")]
    TwoPickers {
        profile: String,
        first: String,
        second: String,
    },
    #[error("profile {profile:?}: weight {weight} of {plugin:?} must be a finite number >= 0")]
    BadWeight {
        profile: String,
        plugin: String,
        weight: f64,
    },
    #[error(
        "{count} profiles need a profile handler (such as pd-profile-handler); none is declared"
    )]
    NoProfileHandler { count: usize },
    #[error("profile handlers {first:?} and {second:?} are both declared; only one is allowed")]
    TwoProfileHandlers { first: String, second: String },
    #[error("profile handler {handler:?} needs profile {profile:?}, which is not declared")]
    MissingHandlerProfile { handler: String, profile: String },
    #[error("no scheduling profile")]
    NoProfiles,
}

/// A loaded config: the scheduler and the request-control plugins.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub scheduler: Scheduler,
    /// Every plugin instance, declared and defaulted.
    pub plugins: Vec<Arc<dyn Plugin>>,
}

impl Loaded {
    pub fn admitters(&self) -> impl Iterator<Item = &Arc<dyn Plugin>> {
        self.plugins.iter().filter(|p| p.as_admitter().is_some())
    }
    pub fn pre_requests(&self) -> impl Iterator<Item = &Arc<dyn Plugin>> {
        self.plugins.iter().filter(|p| p.as_pre_request().is_some())
    }
}

/// Parses `text` strictly (empty text is the default config).
pub fn parse(text: &str) -> Result<EndpointPickerConfig, ConfigError> {
    if text.trim().is_empty() {
        return parse(defaults::DEFAULT_CONFIG);
    }
    let config: EndpointPickerConfig = serde_norway::from_str(text)?;
    if let Some(version) = &config.api_version
        && !API_VERSIONS.contains(&version.as_str())
    {
        return Err(ConfigError::ApiVersion {
            found: version.clone(),
        });
    }
    if let Some(kind) = &config.kind
        && kind != KIND
    {
        return Err(ConfigError::Kind {
            found: kind.clone(),
        });
    }
    if let Some(gate) = config.feature_gates.first() {
        return Err(ConfigError::FeatureGate(gate.clone()));
    }
    Ok(config)
}

/// Builds every plugin and the scheduler, applying GIE's defaults.
pub fn load(
    config: &EndpointPickerConfig,
    registry: &Registry,
    handle: &Handle,
) -> Result<Loaded, ConfigError> {
    let mut config = config.clone();
    if config.plugins.is_empty() && config.scheduling_profiles.is_empty() {
        config = parse(defaults::DEFAULT_CONFIG)?;
    }
    let mut plugins: BTreeMap<String, Arc<dyn Plugin>> = BTreeMap::new();
    let mut order = Vec::new();
    for spec in &config.plugins {
        let name = spec
            .name
            .clone()
            .unwrap_or_else(|| spec.plugin_type.clone());
        if plugins.contains_key(&name) {
            return Err(ConfigError::DuplicatePluginName(name));
        }
        let plugin = instantiate(
            registry,
            handle,
            &spec.plugin_type,
            &name,
            spec.parameters.clone(),
        )?;
        order.push(name.clone());
        plugins.insert(name, plugin);
    }
    if config.scheduling_profiles.is_empty() {
        config.scheduling_profiles = vec![defaults::default_profile(&order, &plugins)];
    }
    let handler = handler(&config, registry, handle, &mut plugins, &mut order)?;
    for (name, plugin) in &plugins {
        plugin
            .bind(&plugins)
            .map_err(|reason| ConfigError::Binding {
                name: name.clone(),
                reason,
            })?;
    }
    let mut profiles = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for spec in &config.scheduling_profiles {
        if !seen.insert(spec.name.clone()) {
            return Err(ConfigError::DuplicateProfile(spec.name.clone()));
        }
        profiles.push(profile(spec, registry, handle, &mut plugins, &mut order)?);
    }
    let required = handler
        .as_profile_handler()
        .map(|h| h.required_profiles())
        .unwrap_or_default();
    for needed in required {
        if !seen.contains(&needed) {
            return Err(ConfigError::MissingHandlerProfile {
                handler: handler.typed_name().name.clone(),
                profile: needed,
            });
        }
    }
    let scheduler = Scheduler::new(profiles, handler, Arc::clone(&handle.metrics));
    Ok(Loaded {
        scheduler,
        plugins: order
            .iter()
            .filter_map(|name| plugins.get(name).cloned())
            .collect(),
    })
}

fn instantiate(
    registry: &Registry,
    handle: &Handle,
    plugin_type: &str,
    name: &str,
    parameters: serde_norway::Value,
) -> Result<Arc<dyn Plugin>, ConfigError> {
    let Some(registration) = registry.get(plugin_type) else {
        return Err(ConfigError::UnknownPluginType {
            name: name.to_owned(),
            plugin_type: plugin_type.to_owned(),
            known: registry
                .types()
                .map(|(t, _)| t)
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    (registration.factory)(name, parameters, handle).map_err(|source| ConfigError::Plugin {
        name: name.to_owned(),
        plugin_type: plugin_type.to_owned(),
        source,
    })
}

fn handler(
    config: &EndpointPickerConfig,
    registry: &Registry,
    handle: &Handle,
    plugins: &mut BTreeMap<String, Arc<dyn Plugin>>,
    order: &mut Vec<String>,
) -> Result<Arc<dyn Plugin>, ConfigError> {
    let mut handlers = order
        .iter()
        .filter(|name| plugins[*name].as_profile_handler().is_some());
    match (handlers.next(), handlers.next()) {
        (Some(first), Some(second)) => Err(ConfigError::TwoProfileHandlers {
            first: first.clone(),
            second: second.clone(),
        }),
        (Some(only), None) => Ok(Arc::clone(&plugins[only])),
        (None, _) if config.scheduling_profiles.len() == 1 => defaults::ensure(
            registry,
            handle,
            plugins,
            order,
            defaults::DEFAULT_PROFILE_HANDLER,
        ),
        (None, _) => Err(ConfigError::NoProfileHandler {
            count: config.scheduling_profiles.len(),
        }),
    }
}

fn profile(
    spec: &ProfileSpec,
    registry: &Registry,
    handle: &Handle,
    plugins: &mut BTreeMap<String, Arc<dyn Plugin>>,
    order: &mut Vec<String>,
) -> Result<Profile, ConfigError> {
    let mut filters = Vec::new();
    let mut scorers = Vec::new();
    let mut picker: Option<Arc<dyn Plugin>> = None;
    for reference in &spec.plugins {
        let Some(plugin) = plugins.get(&reference.plugin_ref) else {
            return Err(ConfigError::MissingPluginRef {
                profile: spec.name.clone(),
                plugin_ref: reference.plugin_ref.clone(),
            });
        };
        let mut role = false;
        if plugin.as_filter().is_some() {
            filters.push(Arc::clone(plugin));
            role = true;
        }
        if plugin.as_scorer().is_some() {
            let weight = reference.weight.unwrap_or(defaults::DEFAULT_WEIGHT);
            if !weight.is_finite() || weight < 0.0 {
                return Err(ConfigError::BadWeight {
                    profile: spec.name.clone(),
                    plugin: reference.plugin_ref.clone(),
                    weight,
                });
            }
            scorers.push((Arc::clone(plugin), weight));
            role = true;
        }
        if plugin.as_picker().is_some() {
            if let Some(first) = &picker {
                return Err(ConfigError::TwoPickers {
                    profile: spec.name.clone(),
                    first: first.typed_name().name.clone(),
                    second: reference.plugin_ref.clone(),
                });
            }
            picker = Some(Arc::clone(plugin));
            role = true;
        }
        if !role {
            return Err(ConfigError::NotAProfilePlugin {
                profile: spec.name.clone(),
                plugin: reference.plugin_ref.clone(),
            });
        }
    }
    let picker = match picker {
        Some(picker) => picker,
        None => defaults::ensure(registry, handle, plugins, order, defaults::DEFAULT_PICKER)?,
    };
    Ok(Profile {
        name: spec.name.clone(),
        filters,
        scorers,
        picker,
    })
}
