//! The parts of an `InferencePool` that decide its endpoints, read from either API version.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use kube::discovery::ApiResource;
use serde_json::Value;

/// The API group of `InferencePool` v1 (GA).
pub const GROUP_V1: &str = "inference.networking.k8s.io";
/// The API group of the older `v1alpha2` pools.
pub const GROUP_V1ALPHA2: &str = "inference.networking.x-k8s.io";
/// The namespace a pool reference without one means, as upstream.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A spec that cannot select endpoints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("spec is missing")]
    MissingSpec,
    #[error("spec.{field}: {reason}")]
    Field { field: &'static str, reason: String },
    #[error("pool reference {0:?} is not `name` or `namespace/name`")]
    Reference(String),
    #[error("API group {0:?} is neither {GROUP_V1} nor {GROUP_V1ALPHA2}")]
    Group(String),
}

/// Which pool to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRef {
    pub namespace: String,
    pub name: String,
    /// [`GROUP_V1`] or [`GROUP_V1ALPHA2`].
    pub group: String,
}

impl PoolRef {
    /// `namespace/name`, or `name` in `default_namespace`, as the sidecar's `--inference-pool`.
    pub fn parse(text: &str, default_namespace: &str, group: &str) -> Result<PoolRef, SpecError> {
        let (namespace, name) = match text.split_once('/') {
            Some((namespace, name)) => (namespace, name),
            None => (default_namespace, text),
        };
        let valid = |part: &str| {
            !part.is_empty()
                && part.len() <= 253
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        };
        if !valid(namespace) || !valid(name) {
            return Err(SpecError::Reference(text.to_owned()));
        }
        PoolRef::new(namespace, name, group)
    }

    pub fn new(namespace: &str, name: &str, group: &str) -> Result<PoolRef, SpecError> {
        if group != GROUP_V1 && group != GROUP_V1ALPHA2 {
            return Err(SpecError::Group(group.to_owned()));
        }
        Ok(PoolRef {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            group: group.to_owned(),
        })
    }

    /// The served version of the group.
    pub fn version(&self) -> &'static str {
        if self.group == GROUP_V1ALPHA2 {
            "v1alpha2"
        } else {
            "v1"
        }
    }

    /// The resource for a dynamic API client.
    pub fn api_resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.clone(),
            version: self.version().to_owned(),
            api_version: format!("{}/{}", self.group, self.version()),
            kind: "InferencePool".to_owned(),
            plural: "inferencepools".to_owned(),
        }
    }
}

impl std::fmt::Display for PoolRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What selects a pool's endpoints: pods whose labels include `selector`, each once per
/// target port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSpec {
    pub selector: BTreeMap<String, String>,
    /// In order: a port's position is its data-parallel rank.
    pub target_ports: Vec<u16>,
}

impl PoolSpec {
    /// Reads `spec` of an `InferencePool` object of `version` (`v1` or `v1alpha2`).
    ///
    /// v1: `selector.matchLabels` and `targetPorts[].number` (1 to 8, unique). v1alpha2: a
    /// plain `selector` map and `targetPortNumber`. Other fields (`endpointPickerRef`,
    /// `appProtocol`, ...) do not change the endpoints and are left to the API server's
    /// validation.
    pub fn from_object(object: &Value, version: &str) -> Result<PoolSpec, SpecError> {
        let spec = object.get("spec").ok_or(SpecError::MissingSpec)?;
        let field = |field: &'static str, reason: &str| SpecError::Field {
            field,
            reason: reason.to_owned(),
        };
        let (selector, ports) = if version == "v1alpha2" {
            let selector = spec.get("selector");
            let port = spec
                .get("targetPortNumber")
                .ok_or_else(|| field("targetPortNumber", "missing"))?;
            (selector, vec![port])
        } else {
            let selector = spec.get("selector").map(|selector| {
                if selector.get("matchExpressions").is_some() {
                    return Err(field(
                        "selector",
                        "matchExpressions is not supported by InferencePool; use matchLabels",
                    ));
                }
                Ok(selector.get("matchLabels"))
            });
            let selector = selector.transpose()?.flatten();
            let ports = spec
                .get("targetPorts")
                .and_then(Value::as_array)
                .ok_or_else(|| field("targetPorts", "missing or not a list"))?;
            let ports = ports
                .iter()
                .map(|port| port.get("number").unwrap_or(&Value::Null))
                .collect();
            (selector, ports)
        };
        let selector = match selector {
            Some(Value::Object(map)) if !map.is_empty() => map
                .iter()
                .map(|(key, value)| match value {
                    Value::String(value) => Ok((key.clone(), value.clone())),
                    _ => Err(field("selector", &format!("label {key:?} is not a string"))),
                })
                .collect::<Result<BTreeMap<_, _>, _>>()?,
            _ => return Err(field("selector", "missing or empty; it must name labels")),
        };
        let mut target_ports = Vec::with_capacity(ports.len());
        for port in ports {
            let number = port
                .as_u64()
                .and_then(|number| u16::try_from(number).ok())
                .filter(|number| *number > 0)
                .ok_or_else(|| field("targetPorts", &format!("{port} is not a port number")))?;
            if target_ports.contains(&number) {
                return Err(field("targetPorts", &format!("{number} is listed twice")));
            }
            target_ports.push(number);
        }
        if target_ports.is_empty() || target_ports.len() > 8 {
            return Err(field("targetPorts", "must list 1 to 8 ports"));
        }
        Ok(PoolSpec {
            selector,
            target_ports,
        })
    }

    /// Whether a pod with `labels` belongs to the pool.
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
    }
}
