//! YAML in and out, with errors that name the file, line and column, and the key.
//! Text only: it must not know where the file lives or who may write it.

use std::path::Path;

use super::schema::Config;
use crate::error::{Error, Result, display_path};

/// Parses and validates a config file's text. `path` is only used in messages.
pub fn parse_config(text: &str, path: &Path) -> Result<Config> {
    let shown = display_path(path);
    if text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    }) {
        return Err(Error::config(format!(
            "{shown}: the file is empty; a config needs at least AssumeRole.RoleArn"
        ))
        .with_hint(format!(
            "see an example: elhaz config add --help; or remove it: rm {}",
            path.display()
        )));
    }
    let config: Config = serde_saphyr::from_str(text).map_err(|e| {
        let location = e.location();
        let position = location
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        let (line, column) = location
            .map(|l| (l.line() as usize, l.column() as usize))
            .unwrap_or((0, 0));
        Error::config(format!(
            "{shown}{position}: {}",
            yaml_message(&e, text, line, column)
        ))
    })?;
    let problems = config.validate();
    if let Some(first) = problems.first() {
        let line = line_of_key(text, first)
            .map(|l| format!(":{l}"))
            .unwrap_or_default();
        return Err(Error::config(format!(
            "{shown}{line}: {}",
            problems.join("; ")
        )));
    }
    Ok(config)
}

/// What went wrong, in words, naming the key (`AssumeRole.DurationSeconds`) where the
/// error is about a value. `line` and `column` are 1-based (0: unknown).
fn yaml_message(e: &serde_saphyr::Error, text: &str, line: usize, column: usize) -> String {
    use serde_saphyr::Error as E;
    let (parent, key) = key_path_at(text, line, column);
    let at_key = key.clone().map(|k| join(&parent, &k));
    let value = || value_at(text, line, column);
    let typed = |what: &str| -> String {
        let found = value().map(|v| format!(", not {v}")).unwrap_or_default();
        match &at_key {
            Some(k) => format!("{k}: expected {what}{found}"),
            None if !parent.is_empty() => format!("{parent}: expected {what}{found}"),
            None => format!("expected {what}{found}"),
        }
    };
    match e.without_snippet() {
        E::SerdeUnknownField {
            field, expected, ..
        } => {
            let within = if parent.is_empty() {
                String::new()
            } else {
                format!(" in {parent}")
            };
            format!(
                "unknown field '{field}'{within}, expected one of {}",
                expected.join(", ")
            )
        }
        E::SerdeMissingField { field, .. } => {
            format!("missing {}", join(&parent, field))
        }
        E::InvalidScalar { ty, .. } => typed(match *ty {
            "bool" | "boolean" => "true or false",
            "f32" | "f64" | "floating point" => "a number",
            "char" => "a single character",
            _ => "a whole number",
        }),
        E::InvalidBooleanStrict { .. } => typed("true or false"),
        E::Unexpected { expected, .. } => typed(match *expected {
            "mapping start" => "a mapping (KEY: VALUE lines)",
            "sequence start" => "a list",
            "string scalar" => "a string",
            other => other,
        }),
        E::SerdeInvalidType { expected, .. } | E::SerdeInvalidValue { expected, .. } => {
            typed(expected)
        }
        E::Message { msg, .. } if msg.starts_with("data did not match any variant") => {
            typed(if msg.ends_with("PolicyArn") {
                "an ARN string"
            } else if msg.ends_with("Verify") {
                "true, false or a CA bundle path"
            } else if msg.ends_with("Command") {
                "a command: a string, or a list of strings"
            } else {
                "another type"
            })
        }
        E::MultipleDocuments { .. } => {
            "the file holds more than one YAML document ('---'); keep one".to_string()
        }
        E::DuplicateMappingKey { key: Some(k), .. } => {
            format!("duplicate key '{}'", join(&parent, k))
        }
        other => {
            let text = other.to_string();
            let first = text.lines().next().unwrap_or_default().trim();
            // "... at line 3, column 5" is said by our prefix already.
            let first = match first.rfind(" at line ") {
                Some(i) => &first[..i],
                None => first,
            };
            format!("malformed YAML: {}", first.replace('`', "'"))
        }
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// The key whose value is at `line`:`column` (if the line names one before the column),
/// and the dotted path of the mappings that contain it, found from block indentation.
fn key_path_at(text: &str, line: usize, column: usize) -> (String, Option<String>) {
    let lines: Vec<&str> = text.lines().collect();
    if line == 0 || line > lines.len() {
        return (String::new(), None);
    }
    let here = lines[line - 1];
    let before: String = here.chars().take(column.saturating_sub(1)).collect();
    let (mut indent, key) = match line_key(&before) {
        Some((i, k)) => (i, Some(k)),
        None => (column.saturating_sub(1), None),
    };
    let mut parents = Vec::new();
    for l in lines[..line - 1].iter().rev() {
        if indent == 0 {
            break;
        }
        if let Some((i, k)) = line_key(l)
            && i < indent
        {
            parents.push(k);
            indent = i;
        }
    }
    parents.reverse();
    (parents.join("."), key)
}

/// The 1-based line of the key a validation problem starts with (`AssumeRole.Policy is
/// not valid JSON` → the line of `Policy:` inside `AssumeRole:`), or of the closest
/// enclosing mapping that is written; None when the problem names no written key.
pub(crate) fn line_of_key(text: &str, problem: &str) -> Option<usize> {
    let wanted: Vec<&str> = problem
        .split([' ', ':'])
        .next()
        .unwrap_or_default()
        .split('.')
        .collect();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut best: Option<(usize, usize)> = None; // (depth matched, line)
    for (i, l) in text.lines().enumerate() {
        let Some((indent, key)) = line_key(l) else {
            continue;
        };
        while stack.last().is_some_and(|(d, _)| *d >= indent) {
            stack.pop();
        }
        stack.push((indent, key));
        let path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
        if path.len() <= wanted.len()
            && path == wanted[..path.len()]
            && best.is_none_or(|(depth, _)| path.len() > depth)
        {
            best = Some((path.len(), i + 1));
        }
    }
    best.map(|(_, line)| line)
}

/// `(indent, key)` of a block mapping line such as `  - Key: a` (indent 4, `Key`).
fn line_key(line: &str) -> Option<(usize, String)> {
    let mut indent = 0;
    let mut rest = line;
    loop {
        let trimmed = rest.trim_start_matches(' ');
        indent += rest.len() - trimmed.len();
        match trimmed.strip_prefix("- ") {
            Some(r) => {
                indent += 2;
                rest = r;
            }
            None => {
                rest = trimmed;
                break;
            }
        }
    }
    if rest.starts_with('#') || rest.is_empty() {
        return None;
    }
    let colon = rest
        .find(": ")
        .or_else(|| rest.strip_suffix(':').map(|r| r.len()))?;
    let key = rest[..colon].trim().trim_matches(|c| c == '"' || c == '\'');
    if key.is_empty() || key.contains(['{', '[', ' ']) {
        return None;
    }
    Some((indent, key.to_string()))
}

/// The scalar written at `line`:`column`, quoted for a message (None for collections).
fn value_at(text: &str, line: usize, column: usize) -> Option<String> {
    let here = text.lines().nth(line.checked_sub(1)?)?;
    let rest: String = here.chars().skip(column.saturating_sub(1)).collect();
    let value = rest.split(" #").next().unwrap_or_default().trim();
    if value.is_empty()
        || value.starts_with(['[', '{', '|', '>', '-'])
        || value.contains(": ")
        || value.ends_with(':')
        || value.chars().count() > 40
    {
        return None;
    }
    Some(format!(
        "'{}'",
        value.trim_matches(|c| c == '"' || c == '\'')
    ))
}

pub fn to_yaml(config: &Config) -> Result<String> {
    serde_saphyr::to_string(config)
        .map_err(|e| Error::other(format!("cannot write the config as YAML: {e}")))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_follow_block_indentation() {
        let text = "AssumeRole:\n  RoleArn: x\n  Tags:\n  - Key: a\n    Value: [b]\nSTS:\n  use_ssl: maybe\n";
        assert_eq!(
            key_path_at(text, 2, 12),
            ("AssumeRole".into(), Some("RoleArn".into()))
        );
        assert_eq!(
            key_path_at(text, 5, 12),
            ("AssumeRole.Tags".into(), Some("Value".into()))
        );
        // At the start of a key: the key is not known yet, its mapping is.
        assert_eq!(key_path_at(text, 5, 5), ("AssumeRole.Tags".into(), None));
        assert_eq!(
            key_path_at(text, 7, 12),
            ("STS".into(), Some("use_ssl".into()))
        );
        assert_eq!(key_path_at(text, 1, 1), (String::new(), None));
        assert_eq!(key_path_at(text, 99, 1), (String::new(), None));
    }

    #[test]
    fn problems_point_at_the_line_of_their_key() {
        let text = "# c\nAssumeRole:\n  RoleArn: x\n  Policy: '{'\nSTS:\n  region_name: a\n";
        assert_eq!(
            line_of_key(text, "AssumeRole.Policy is not valid JSON"),
            Some(4)
        );
        assert_eq!(line_of_key(text, "AssumeRole.TokenCode needs it"), Some(2));
        assert_eq!(
            line_of_key(text, "AssumeRole and X are both present"),
            Some(2)
        );
        assert_eq!(line_of_key(text, "STS.aws_access_key_id and"), Some(5));
        assert_eq!(
            line_of_key(text, "missing AssumeRole.RoleArn: a config"),
            None
        );
    }

    #[test]
    fn values_are_quoted_only_when_scalar() {
        let text = "a: soon\nb: [1]\nc:\n  d: e\n";
        assert_eq!(value_at(text, 1, 4).as_deref(), Some("'soon'"));
        assert_eq!(value_at(text, 2, 4), None);
        assert_eq!(value_at(text, 4, 3), None);
    }
}
