//! GIE's loader defaults (`pkg/epp/config/loader/defaults.go`): the config used when none is
//! given, the `default` profile, the implicit profile handler and picker, the scorer weight.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{ConfigError, ProfilePluginRef, ProfileSpec};
use crate::framework::{Handle, Plugin, Registry};

/// Weight of a scorer reference without one.
pub const DEFAULT_WEIGHT: f64 = 1.0;
/// Name of the profile built when none is declared.
pub const DEFAULT_PROFILE_NAME: &str = "default";
/// Added when exactly one profile exists and no handler is declared.
pub const DEFAULT_PROFILE_HANDLER: &str = "single-profile-handler";
/// Added to every profile without a picker.
pub const DEFAULT_PICKER: &str = "max-score-picker";

/// The config with no config at all: queue and KV-utilization scorers (weight 2) and the
/// approximate prefix scorer (weight 3).
pub const DEFAULT_CONFIG: &str = "\
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: prefix-cache-scorer
    weight: 3
";

/// The `default` profile: every declared filter, scorer and picker, in declaration order.
pub fn default_profile(
    order: &[String],
    plugins: &BTreeMap<String, Arc<dyn Plugin>>,
) -> ProfileSpec {
    ProfileSpec {
        name: DEFAULT_PROFILE_NAME.to_owned(),
        plugins: order
            .iter()
            .filter(|name| {
                let plugin = &plugins[*name];
                plugin.as_filter().is_some()
                    || plugin.as_scorer().is_some()
                    || plugin.as_picker().is_some()
            })
            .map(|name| ProfilePluginRef {
                plugin_ref: name.clone(),
                weight: None,
            })
            .collect(),
    }
}

/// The instance named `plugin_type` (created with default parameters if not declared).
pub fn ensure(
    registry: &Registry,
    handle: &Handle,
    plugins: &mut BTreeMap<String, Arc<dyn Plugin>>,
    order: &mut Vec<String>,
    plugin_type: &str,
) -> Result<Arc<dyn Plugin>, ConfigError> {
    if let Some(plugin) = plugins.get(plugin_type)
        && plugin.typed_name().plugin_type == plugin_type
    {
        return Ok(Arc::clone(plugin));
    }
    let plugin = super::instantiate(
        registry,
        handle,
        plugin_type,
        plugin_type,
        serde_norway::Value::Null,
    )?;
    plugins.insert(plugin_type.to_owned(), Arc::clone(&plugin));
    order.push(plugin_type.to_owned());
    Ok(plugin)
}
