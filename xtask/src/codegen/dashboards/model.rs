//! The dashboard vocabulary (dashboard, variable, row, panel, target) and its rendering to
//! Grafana's JSON model: the import envelope of llm-d's dashboards (`__inputs`, `__requires`,
//! a `DS_PROMETHEUS` datasource variable), a 24-column layout computed here so no two panels
//! overlap, and panel ids derived from the panel's row and title.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::json::to_pretty_string;
use crate::codegen::generated_header;

/// Grafana's dashboard schema version the JSON is written for (Grafana 11.x).
pub(super) const SCHEMA_VERSION: u32 = 39;
/// The Grafana version named in `__requires`, as in the upstream llm-d dashboards.
const GRAFANA_VERSION: &str = "11.3.0";
/// The datasource variable every panel and target refers to.
pub(super) const DATASOURCE_VARIABLE: &str = "DS_PROMETHEUS";
/// Dashboard grid width.
const GRID_WIDTH: u32 = 24;

/// One dashboard file.
#[derive(Debug, Clone)]
pub(super) struct Dashboard {
    /// Stable uid; also the file name without `.json`.
    pub(super) uid: &'static str,
    pub(super) title: &'static str,
    /// What the dashboard is for, after the generated-file notice.
    pub(super) summary: &'static str,
    /// Tags besides `llm-d`.
    pub(super) tags: &'static [&'static str],
    pub(super) variables: Vec<Variable>,
    pub(super) rows: Vec<Row>,
}

/// A template variable after the datasource variable.
#[derive(Debug, Clone)]
pub(super) enum Variable {
    /// `label_values(metric, label)`, multi-select with an "All" that matches anything,
    /// series without the label included.
    LabelValues {
        name: &'static str,
        label: &'static str,
        metric: &'static str,
    },
    /// A free-text regex with a default, for pod-name patterns.
    Regex {
        name: &'static str,
        label: &'static str,
        default: &'static str,
    },
}

/// A row of panels; collapsed rows hold their panels inside the row object.
#[derive(Debug, Clone)]
pub(super) struct Row {
    pub(super) title: String,
    pub(super) collapsed: bool,
    pub(super) panels: Vec<Panel>,
}

/// Grafana panel types we emit (current ones only: no `graph`, no `singlestat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum PanelType {
    Timeseries,
    Stat,
    Bargauge,
    Heatmap,
}

impl PanelType {
    pub(super) fn id(self) -> &'static str {
        match self {
            PanelType::Timeseries => "timeseries",
            PanelType::Stat => "stat",
            PanelType::Bargauge => "bargauge",
            PanelType::Heatmap => "heatmap",
        }
    }

    fn display_name(self) -> &'static str {
        match self {
            PanelType::Timeseries => "Time series",
            PanelType::Stat => "Stat",
            PanelType::Bargauge => "Bar gauge",
            PanelType::Heatmap => "Heatmap",
        }
    }

    fn default_size(self) -> (u32, u32) {
        match self {
            PanelType::Stat => (6, 4),
            PanelType::Timeseries | PanelType::Bargauge | PanelType::Heatmap => (12, 8),
        }
    }
}

/// One panel.
#[derive(Debug, Clone)]
pub(super) struct Panel {
    pub(super) title: String,
    pub(super) panel_type: PanelType,
    pub(super) description: String,
    /// Grafana unit id: `s`, `bytes`, `percentunit`, `reqps`, `short`, ...
    pub(super) unit: &'static str,
    pub(super) targets: Vec<Target>,
    pub(super) width: u32,
    pub(super) height: u32,
}

/// One PromQL query of a panel.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub(super) expr: String,
    pub(super) legend: String,
}

impl Target {
    pub(super) fn new(expr: impl Into<String>, legend: impl Into<String>) -> Target {
        Target {
            expr: expr.into(),
            legend: legend.into(),
        }
    }
}

impl Panel {
    fn new(panel_type: PanelType, title: &str, unit: &'static str, targets: Vec<Target>) -> Panel {
        let (width, height) = panel_type.default_size();
        Panel {
            title: title.to_owned(),
            panel_type,
            description: String::new(),
            unit,
            targets,
            width,
            height,
        }
    }

    pub(super) fn timeseries(title: &str, unit: &'static str, targets: Vec<Target>) -> Panel {
        Panel::new(PanelType::Timeseries, title, unit, targets)
    }

    pub(super) fn stat(title: &str, unit: &'static str, target: Target) -> Panel {
        Panel::new(PanelType::Stat, title, unit, vec![target])
    }

    pub(super) fn bargauge(title: &str, unit: &'static str, target: Target) -> Panel {
        Panel::new(PanelType::Bargauge, title, unit, vec![target])
    }

    pub(super) fn heatmap(title: &str, unit: &'static str, target: Target) -> Panel {
        Panel::new(PanelType::Heatmap, title, unit, vec![target])
    }

    pub(super) fn describe(mut self, description: impl Into<String>) -> Panel {
        self.description = description.into();
        self
    }

    pub(super) fn size(mut self, width: u32, height: u32) -> Panel {
        self.width = width;
        self.height = height;
        self
    }
}

impl Row {
    pub(super) fn new(title: impl Into<String>, panels: Vec<Panel>) -> Row {
        Row {
            title: title.into(),
            collapsed: false,
            panels,
        }
    }

    pub(super) fn collapsed(title: impl Into<String>, panels: Vec<Panel>) -> Row {
        Row {
            collapsed: true,
            ..Row::new(title, panels)
        }
    }
}

/// `{"type": "prometheus", "uid": "${DS_PROMETHEUS}"}`.
pub(super) fn datasource() -> Value {
    json!({"type": "prometheus", "uid": format!("${{{DATASOURCE_VARIABLE}}}")})
}

impl Dashboard {
    /// The path of the generated file, relative to the workspace root.
    pub(super) fn file_name(&self) -> String {
        format!("{}.json", self.uid)
    }

    /// The dashboard as pretty JSON with a trailing newline.
    pub(super) fn render(&self) -> String {
        to_pretty_string(&self.to_json())
    }

    fn to_json(&self) -> Value {
        let mut ids = PanelIds::new(self.uid);
        let mut panels = Vec::new();
        let mut panel_types = BTreeSet::new();
        let mut y = 0;
        for row in &self.rows {
            let row_id = ids.take(&format!("row/{}", row.title));
            let (mut placed, bottom) = layout(&row.panels, y + 1);
            let mut rendered = Vec::new();
            for (panel, grid_pos) in row.panels.iter().zip(placed.drain(..)) {
                panel_types.insert(panel.panel_type);
                let id = ids.take(&format!("{}/{}", row.title, panel.title));
                rendered.push(panel_json(panel, id, grid_pos));
            }
            let mut row_json = json!({
                "type": "row",
                "id": row_id,
                "title": row.title,
                "collapsed": row.collapsed,
                "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
                "panels": [],
            });
            if row.collapsed {
                row_json["panels"] = Value::Array(rendered);
                panels.push(row_json);
                y += 1;
            } else {
                panels.push(row_json);
                panels.extend(rendered);
                y = bottom;
            }
        }

        let mut requires = vec![
            json!({"type": "grafana", "id": "grafana", "name": "Grafana", "version": GRAFANA_VERSION}),
            json!({"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"}),
        ];
        requires.extend(panel_types.iter().map(|panel_type| {
            json!({"type": "panel", "id": panel_type.id(), "name": panel_type.display_name(), "version": ""})
        }));

        let mut templating = vec![json!({
            "name": DATASOURCE_VARIABLE,
            "label": "datasource",
            "type": "datasource",
            "query": "prometheus",
            // "default" is the option Grafana adds for the default datasource of the type;
            // Grafana's schema requires `text` and `value`, so no empty `{}` as upstream has.
            "current": {"selected": false, "text": "default", "value": "default"},
            "options": [],
            "refresh": 1,
            "regex": "",
            "includeAll": false,
            "hide": 0,
        })];
        templating.extend(self.variables.iter().map(variable_json));

        let notice = generated_header("dashboards", ("", ""));
        let mut tags = vec!["llm-d"];
        tags.extend_from_slice(self.tags);
        json!({
            "__inputs": [{
                "name": DATASOURCE_VARIABLE,
                "label": "prometheus",
                "description": "",
                "type": "datasource",
                "pluginId": "prometheus",
                "pluginName": "Prometheus",
            }],
            "__elements": {},
            "__requires": requires,
            "annotations": {"list": [{
                "builtIn": 1,
                "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                "enable": true,
                "hide": true,
                "iconColor": "rgba(0, 211, 255, 1)",
                "name": "Annotations & Alerts",
                "type": "dashboard",
            }]},
            "description": format!("{} {}", notice.trim_end(), self.summary),
            "editable": true,
            "fiscalYearStartMonth": 0,
            "graphTooltip": 1,
            "id": null,
            "links": [{
                "asDropdown": true,
                "icon": "external link",
                "includeVars": false,
                "keepTime": true,
                "tags": ["llm-d"],
                "targetBlank": false,
                "title": "llm-d dashboards",
                "tooltip": "",
                "type": "dashboards",
                "url": "",
            }],
            "panels": panels,
            "refresh": "30s",
            "schemaVersion": SCHEMA_VERSION,
            "tags": tags,
            "templating": {"list": templating},
            "time": {"from": "now-1h", "to": "now"},
            "timepicker": {},
            "timezone": "",
            "title": self.title,
            "uid": self.uid,
            "version": 1,
            "weekStart": "",
        })
    }
}

/// Places panels left to right in rows of 24 columns starting at `top`; returns each panel's
/// `gridPos` and the first free `y` below them.
fn layout(panels: &[Panel], top: u32) -> (Vec<Value>, u32) {
    let mut placed = Vec::with_capacity(panels.len());
    let (mut x, mut y, mut line_height) = (0, top, 0);
    for panel in panels {
        let width = panel.width.min(GRID_WIDTH);
        if x + width > GRID_WIDTH {
            y += line_height;
            x = 0;
            line_height = 0;
        }
        placed.push(json!({"h": panel.height, "w": width, "x": x, "y": y}));
        x += width;
        line_height = line_height.max(panel.height);
    }
    (placed, y + line_height)
}

/// Panel ids derived from `uid/row/title` (FNV-1a), so adding a panel does not renumber the
/// others and `viewPanel=` links keep working; a collision moves to the next free id.
struct PanelIds {
    uid: &'static str,
    taken: BTreeMap<u32, String>,
}

impl PanelIds {
    fn new(uid: &'static str) -> PanelIds {
        PanelIds {
            uid,
            taken: BTreeMap::new(),
        }
    }

    fn take(&mut self, name: &str) -> u32 {
        let key = format!("{}/{name}", self.uid);
        assert!(
            !self.taken.values().any(|taken| *taken == key),
            "two panels named `{key}`"
        );
        let mut id = fnv1a(&key) % 1_000_000 + 1;
        while self.taken.contains_key(&id) {
            id = id % 1_000_000 + 1;
        }
        self.taken.insert(id, key);
        id
    }
}

fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

fn variable_json(variable: &Variable) -> Value {
    match variable {
        Variable::LabelValues {
            name,
            label,
            metric,
        } => {
            // No `definition` key: Grafana's schema has none (the UI derives it from `query`).
            let definition = format!("label_values({metric},{name})");
            json!({
                "name": name,
                "label": label,
                "type": "query",
                "datasource": datasource(),
                "query": {
                    "qryType": 1,
                    "query": definition,
                    "refId": "PrometheusVariableQueryEditor-VariableQuery",
                },
                "includeAll": true,
                "allValue": ".*",
                "multi": true,
                "refresh": 2,
                "regex": "",
                "sort": 1,
                "current": {"selected": true, "text": ["All"], "value": ["$__all"]},
                "options": [],
                "hide": 0,
            })
        }
        Variable::Regex {
            name,
            label,
            default,
        } => json!({
            "name": name,
            "label": label,
            "type": "textbox",
            "query": default,
            "current": {"selected": false, "text": default, "value": default},
            "options": [{"selected": true, "text": default, "value": default}],
            "hide": 0,
        }),
    }
}

fn panel_json(panel: &Panel, id: u32, grid_pos: Value) -> Value {
    let targets: Vec<Value> = panel
        .targets
        .iter()
        .enumerate()
        .map(|(index, target)| target_json(panel.panel_type, index, target))
        .collect();
    let (defaults, options) = match panel.panel_type {
        PanelType::Timeseries => (
            json!({
                "unit": panel.unit,
                "color": {"mode": "palette-classic"},
                "custom": {
                    "drawStyle": "line",
                    "lineInterpolation": "smooth",
                    "lineWidth": 2,
                    "fillOpacity": 20,
                    "showPoints": "never",
                    "spanNulls": false,
                    "axisPlacement": "auto",
                },
            }),
            json!({
                "legend": {
                    "displayMode": "table",
                    "placement": "bottom",
                    "showLegend": true,
                    "calcs": ["mean", "max", "min"],
                },
                "tooltip": {"mode": "single", "sort": "none"},
            }),
        ),
        PanelType::Stat => (
            json!({
                "unit": panel.unit,
                "color": {"mode": "thresholds"},
                "mappings": [{
                    "type": "special",
                    "options": {"match": "null", "result": {"index": 0, "text": "No Data"}},
                }],
                "thresholds": {"mode": "absolute", "steps": [{"color": "blue", "value": null}]},
            }),
            json!({
                "colorMode": "value",
                "graphMode": "none",
                "justifyMode": "auto",
                "orientation": "auto",
                "textMode": "auto",
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false},
            }),
        ),
        PanelType::Bargauge => (
            json!({
                "unit": panel.unit,
                "min": 0,
                "color": {"mode": "continuous-GrYlRd"},
                "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": null}]},
            }),
            json!({
                "displayMode": "gradient",
                "orientation": "horizontal",
                "showUnfilled": true,
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false},
            }),
        ),
        PanelType::Heatmap => (
            json!({"unit": panel.unit}),
            json!({
                "calculate": false,
                "cellGap": 1,
                "color": {"mode": "scheme", "scheme": "Spectral", "steps": 64, "exponent": 0.5},
                "rowsFrame": {"layout": "auto"},
                "yAxis": {"axisPlacement": "left", "unit": panel.unit},
                "tooltip": {"mode": "single", "yHistogram": true},
                "legend": {"show": true},
            }),
        ),
    };
    json!({
        "id": id,
        "type": panel.panel_type.id(),
        "title": panel.title,
        "description": panel.description,
        "datasource": datasource(),
        "gridPos": grid_pos,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": targets,
    })
}

fn target_json(panel_type: PanelType, index: usize, target: &Target) -> Value {
    let ref_id = char::from(b'A' + u8::try_from(index).expect("fewer than 26 targets"));
    let mut value = json!({
        "datasource": datasource(),
        "editorMode": "code",
        "expr": target.expr,
        "legendFormat": target.legend,
        "refId": ref_id.to_string(),
        "range": true,
    });
    match panel_type {
        PanelType::Stat | PanelType::Bargauge => {
            value["range"] = json!(false);
            value["instant"] = json!(true);
        }
        PanelType::Heatmap => value["format"] = json!("heatmap"),
        PanelType::Timeseries => {}
    }
    value
}
