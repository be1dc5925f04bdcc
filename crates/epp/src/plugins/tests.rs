//! Every in-tree type builds with default parameters, and its name's suffix names its role.

use std::sync::Arc;

use crate::framework::{Handle, Plugin};
use crate::plugins::in_tree;
use crate::telemetry::Metrics;

fn roles(plugin: &Arc<dyn Plugin>) -> Vec<&'static str> {
    let mut roles = Vec::new();
    if plugin.as_filter().is_some() {
        roles.push("filter");
    }
    if plugin.as_scorer().is_some() {
        roles.push("scorer");
    }
    if plugin.as_picker().is_some() {
        roles.push("picker");
    }
    if plugin.as_profile_handler().is_some() {
        roles.push("profile-handler");
    }
    if plugin.as_admitter().is_some() {
        roles.push("admitter");
    }
    if plugin.as_pre_request().is_some() {
        roles.push("pre-request");
    }
    if plugin.as_pd_decider().is_some() {
        roles.push("decider");
    }
    roles
}

#[test]
fn type_suffixes_match_roles() {
    let handle = Handle {
        tokenizer: tokenizer::Tokenizer::embedded(),
        metrics: Arc::new(Metrics::unregistered()),
        registry: prometheus::Registry::new(),
    };
    let registry = in_tree();
    for (plugin_type, registration) in registry.types() {
        let parameters = if plugin_type == "precise-prefix-cache-scorer" {
            serde_norway::from_str("{kvEventsConfig: {zmqEndpoint: 'tcp://127.0.0.1:*'}}").unwrap()
        } else {
            serde_norway::Value::Null
        };
        let plugin = (registration.factory)(plugin_type, parameters, &handle)
            .unwrap_or_else(|error| panic!("{plugin_type} builds with defaults: {error}"));
        let roles = roles(&plugin);
        let primary = match plugin_type {
            // The header handler names what it handles, as upstream does.
            "prefill-header-handler" => "pre-request",
            "by-label-selector" => "filter",
            _ => [
                "filter",
                "scorer",
                "picker",
                "profile-handler",
                "admitter",
                "decider",
            ]
            .into_iter()
            .find(|suffix| plugin_type.ends_with(&format!("-{suffix}")))
            .unwrap_or_else(|| panic!("{plugin_type} ends in no known kind")),
        };
        assert!(
            roles.contains(&primary),
            "{plugin_type}: roles {roles:?} lack {primary}"
        );
        assert!(
            plugin.typed_name().plugin_type == plugin_type || plugin_type == "by-label-selector",
            "{plugin_type}: instance reports type {}",
            plugin.typed_name().plugin_type
        );
    }
}
