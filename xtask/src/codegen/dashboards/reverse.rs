//! The reverse of [`super::promql`]: reads the metric identifiers back out of a PromQL
//! expression, for the test that checks every one against `metrics_schema::all()`.

/// PromQL functions and aggregation operators the reader accepts; anything else followed by
/// `(` is a typo the reverse test reports.
const FUNCTIONS: &[&str] = &[
    "abs",
    "avg",
    "avg_over_time",
    "ceil",
    "clamp_max",
    "clamp_min",
    "count",
    "count_over_time",
    "delta",
    "deriv",
    "floor",
    "histogram_count",
    "histogram_quantile",
    "histogram_sum",
    "increase",
    "irate",
    "label_replace",
    "max",
    "max_over_time",
    "min",
    "min_over_time",
    "quantile",
    "rate",
    "round",
    "scalar",
    "sort",
    "sort_desc",
    "stddev",
    "sum",
    "sum_over_time",
    "time",
    "topk",
    "bottomk",
    "vector",
];
/// Keywords followed by a parenthesised list of label names.
const LABEL_LIST_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
/// Binary-operator keywords.
const OPERATOR_KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "inf", "nan"];

/// Every metric identifier of a PromQL expression, in order of appearance (colons allowed).
/// Label matchers, label lists, ranges, strings and numbers are skipped; an unknown function,
/// an unbalanced bracket or a `__name__` matcher is an error.
pub(super) fn metric_names(expr: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut depth: i32 = 0;
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        match c {
            c if c.is_whitespace() => index += 1,
            '"' | '\'' | '`' => index = skip_string(&chars, index)?,
            '{' => {
                let end = skip_group(&chars, index, '{', '}')?;
                let matchers: String = chars[index..end].iter().collect();
                if matchers.contains("__name__") {
                    return Err(format!("`{expr}`: __name__ matchers are not checked"));
                }
                index = end;
            }
            '[' => index = skip_group(&chars, index, '[', ']')?,
            '(' => {
                depth += 1;
                index += 1;
            }
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("`{expr}`: unbalanced `)`"));
                }
                index += 1;
            }
            '}' | ']' => return Err(format!("`{expr}`: unbalanced `{c}`")),
            '$' => {
                return Err(format!(
                    "`{expr}`: template variable outside a matcher or range"
                ));
            }
            c if c.is_ascii_digit() || c == '.' => {
                while index < chars.len()
                    && (chars[index].is_ascii_alphanumeric() || chars[index] == '.')
                {
                    index += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = index;
                while index < chars.len()
                    && (chars[index].is_ascii_alphanumeric()
                        || chars[index] == '_'
                        || chars[index] == ':')
                {
                    index += 1;
                }
                let word: String = chars[start..index].iter().collect();
                let next = chars[index..].iter().find(|c| !c.is_whitespace());
                let rest: String = chars[index..].iter().collect();
                let rest = rest.trim_start();
                let grouped = ["by", "without"].iter().any(|keyword| {
                    rest.strip_prefix(keyword)
                        .and_then(|after| after.trim_start().chars().next())
                        == Some('(')
                });
                if LABEL_LIST_KEYWORDS.contains(&word.as_str()) {
                    if next == Some(&'(') {
                        let open =
                            index + chars[index..].iter().position(|&c| c == '(').unwrap_or(0);
                        index = skip_group(&chars, open, '(', ')')?;
                    }
                } else if OPERATOR_KEYWORDS.contains(&word.as_str()) {
                } else if next == Some(&'(') || grouped {
                    if !FUNCTIONS.contains(&word.as_str()) {
                        return Err(format!("`{expr}`: unknown function `{word}`"));
                    }
                } else {
                    names.push(word);
                }
            }
            '+' | '-' | '*' | '/' | '%' | '^' | ',' | '=' | '!' | '<' | '>' | '~' | '@' => {
                index += 1;
            }
            other => return Err(format!("`{expr}`: unexpected `{other}`")),
        }
    }
    if depth != 0 {
        return Err(format!("`{expr}`: unbalanced `(`"));
    }
    Ok(names)
}

/// Index just past the string literal starting at `start`.
fn skip_string(chars: &[char], start: usize) -> Result<usize, String> {
    let quote = chars[start];
    let mut index = start + 1;
    while index < chars.len() {
        match chars[index] {
            '\\' if quote != '`' => index += 2,
            c if c == quote => return Ok(index + 1),
            _ => index += 1,
        }
    }
    Err("unterminated string".to_owned())
}

/// Index just past the `close` matching the `open` at `start`, skipping strings inside.
fn skip_group(chars: &[char], start: usize, open: char, close: char) -> Result<usize, String> {
    let mut depth = 0;
    let mut index = start;
    while index < chars.len() {
        match chars[index] {
            '"' | '\'' | '`' => {
                index = skip_string(chars, index)?;
                continue;
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return Ok(index + 1);
                }
            }
            _ => {}
        }
        index += 1;
    }
    Err(format!("unbalanced `{open}`"))
}
