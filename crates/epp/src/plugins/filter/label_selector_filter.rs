//! `label-selector-filter` (alias `by-label-selector`): a Kubernetes label selector.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::framework::{
    CycleState, Endpoint, Filter, Handle, InferenceRequest, Plugin, PluginError, TypedName,
    registry::parameters,
};

/// Keeps endpoints whose labels match a Kubernetes label selector (all terms ANDed):
///
/// ```yaml
/// - type: label-selector-filter
///   parameters:
///     matchLabels: { llm-d.ai/role: decode }
///     matchExpressions:
///     - { key: llm-d.ai/zone, operator: In, values: [a, b] }   # In, NotIn, Exists, DoesNotExist
/// ```
#[derive(Debug)]
pub struct LabelSelectorFilter {
    typed_name: TypedName,
    selector: Parameters,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Parameters {
    /// Labels that must be present with exactly these values.
    #[serde(default)]
    match_labels: BTreeMap<String, String>,
    /// Set-based requirements.
    #[serde(default)]
    match_expressions: Vec<Expression>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Expression {
    key: String,
    operator: Operator,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl LabelSelectorFilter {
    pub const TYPE: &'static str = "label-selector-filter";
    /// The older type name llm-d still accepts.
    pub const ALIAS: &'static str = "by-label-selector";

    pub fn factory(
        name: &str,
        value: serde_norway::Value,
        _handle: &Handle,
    ) -> Result<Arc<dyn Plugin>, PluginError> {
        let selector: Parameters = parameters(value)?;
        for expression in &selector.match_expressions {
            let needs_values = matches!(expression.operator, Operator::In | Operator::NotIn);
            if needs_values == expression.values.is_empty() {
                return Err(PluginError::Invalid {
                    parameter: "matchExpressions",
                    reason: format!(
                        "key {}: operator {:?} {} values",
                        expression.key,
                        expression.operator,
                        if needs_values { "needs" } else { "takes no" }
                    ),
                });
            }
        }
        Ok(Arc::new(LabelSelectorFilter {
            typed_name: TypedName::new(Self::TYPE, name),
            selector,
        }))
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector
            .match_labels
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
            && self.selector.match_expressions.iter().all(|expression| {
                let value = labels.get(&expression.key);
                match expression.operator {
                    Operator::In => value.is_some_and(|v| expression.values.contains(v)),
                    Operator::NotIn => value.is_none_or(|v| !expression.values.contains(v)),
                    Operator::Exists => value.is_some(),
                    Operator::DoesNotExist => value.is_none(),
                }
            })
    }
}

impl Plugin for LabelSelectorFilter {
    fn typed_name(&self) -> &TypedName {
        &self.typed_name
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        Some(self)
    }
}

impl Filter for LabelSelectorFilter {
    fn filter(
        &self,
        _cycle: &mut CycleState,
        _request: &InferenceRequest,
        endpoints: Vec<Arc<Endpoint>>,
    ) -> Vec<Arc<Endpoint>> {
        endpoints
            .into_iter()
            .filter(|endpoint| self.matches(&endpoint.labels))
            .collect()
    }
}
