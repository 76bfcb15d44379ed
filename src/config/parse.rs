//! YAML in and out, with errors that name the file, line and column.

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
        .with_hint(format!("see an example: elhaz config add --help; or remove it: rm {}", path.display())));
    }
    let config: Config = serde_saphyr::from_str(text).map_err(|e| {
        let location = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        Error::config(format!("{shown}{location}: {}", yaml_message(&e)))
    })?;
    let problems = config.validate();
    if !problems.is_empty() {
        return Err(Error::config(format!("{shown}: {}", problems.join("; "))));
    }
    Ok(config)
}

/// The error's own words, without the snippet and position the crate adds.
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let first = text.lines().next().unwrap_or_default().trim();
    // "... at line 3, column 5" is said by our prefix already.
    let first = match first.rfind(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    let first = first.replace('`', "'");
    match first.as_str() {
        "invalid i64" | "invalid u64" | "invalid i32" | "invalid u32" => {
            "expected a whole number".to_string()
        }
        "invalid bool" => "expected true or false".to_string(),
        m if m.starts_with("expected ") || m.starts_with("did not find") => {
            format!("malformed YAML: {m}")
        }
        _ => first,
    }
}

pub fn to_yaml(config: &Config) -> Result<String> {
    serde_saphyr::to_string(config)
        .map_err(|e| Error::other(format!("cannot write the config as YAML: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse_config(text, Path::new("/cfg/prod.yaml"))
            .unwrap_err()
            .message
    }

    #[test]
    fn messages() {
        for t in [
            "AssumeRole:\n  RoleARN: x\n",
            "AssumeRole:\n  RoleArn: arn:aws:iam::1:role/a\n  DurationSeconds: soon\n",
            "AssumeRole: [\n",
            "AssumeRole:\n  RoleSessionName: x\n",
            "Bogus: 1\n",
            "AssumeRole:\n  RoleArn: arn:aws:iam::1:role/a\n  Tags:\n    - Key: a\n      Valu: b\n",
        ] {
            eprintln!("{t:?} => {}", err(t));
        }
    }
}
