//! `guides/monitoring/dashboards.yaml`: every dashboard as a ConfigMap that Grafana's
//! dashboard sidecar (kube-prometheus-stack, as llm-d installs it) loads by label.

use crate::codegen::{dashboards, generated_header};

/// The label and folder annotation Grafana's sidecar watches.
pub(super) const DASHBOARD_LABEL: (&str, &str) = ("grafana_dashboard", "1");
const FOLDER_ANNOTATION: (&str, &str) = ("grafana_folder", "llm-d");

pub(super) fn files() -> Vec<(String, String)> {
    vec![("dashboards.yaml".to_owned(), dashboards_yaml())]
}

fn dashboards_yaml() -> String {
    let mut text = generated_header("guides", ("# ", ""));
    text.push_str(
        "# Grafana dashboards for Grafana's sidecar:\n\
         #   kubectl apply -n llm-d-monitoring -f dashboards.yaml\n",
    );
    for (path, json) in dashboards::render() {
        let file = path.rsplit('/').next().unwrap_or(&path);
        let stem = file.trim_end_matches(".json");
        // Compact JSON keeps each object under kubectl's 256 KiB last-applied annotation.
        let value: serde_json::Value =
            serde_json::from_str(&json).expect("dashboards render valid JSON");
        let compact = serde_json::to_string(&value).expect("serialize");
        // A JSON string is a valid YAML double-quoted scalar.
        let quoted = serde_json::to_string(&compact).expect("serialize");
        text.push_str(&format!(
            "---
apiVersion: v1
kind: ConfigMap
metadata:
  name: llmd-{stem}
  labels:
    {label}: \"{label_value}\"
  annotations:
    {folder}: {folder_value}
data:
  {file}: {quoted}
",
            label = DASHBOARD_LABEL.0,
            label_value = DASHBOARD_LABEL.1,
            folder = FOLDER_ANNOTATION.0,
            folder_value = FOLDER_ANNOTATION.1,
        ));
    }
    text
}
