//! How commands print: JSON (pretty, coloured on a terminal) and `--obscure`'s
//! masking. Knows nothing of where the values come from.

use super::color_stdout;

/// A unified diff of a file's text before and after `command` (3 lines of context),
/// with `name` in the headers; empty when they are equal.
pub(crate) fn unified_diff(before: &str, after: &str, name: &str, command: &str) -> String {
    if before == after {
        return String::new();
    }
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(name, &format!("{name} (after {command})"))
        .to_string()
}

/// Prints JSON: pretty, coloured on a terminal.
/// Writes `bytes` to stdout and flushes: a closed or full stdout is an error that says
/// so (a credential answer must not be cut short silently).
pub(crate) fn write_stdout(bytes: &[u8]) -> crate::error::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|_| stdout.flush())
        .map_err(|e| {
            crate::error::Error::other(format!(
                "cannot write to stdout: {}",
                crate::error::io_reason(&e)
            ))
        })
}

pub(crate) fn print_json(value: &serde_json::Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    if color_stdout() {
        println!("{}", colorize_json(&text));
    } else {
        println!("{text}");
    }
}

/// Minimal ANSI colouring of pretty JSON: keys blue, strings green, others yellow.
fn colorize_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        out.push_str(indent);
        if let Some(rest) = trimmed.strip_prefix('"')
            && let Some(end) = rest.find("\": ")
        {
            let key = &rest[..end];
            let value = &rest[end + 3..];
            out.push_str(&format!("\x1b[34m\"{key}\"\x1b[0m: {}", color_value(value)));
        } else {
            out.push_str(&color_value(trimmed));
        }
        out.push('\n');
    }
    out.pop();
    out
}

fn color_value(v: &str) -> String {
    let (body, comma) = match v.strip_suffix(',') {
        Some(b) => (b, ","),
        None => (v, ""),
    };
    if body.starts_with('"') {
        format!("\x1b[32m{body}\x1b[0m{comma}")
    } else if matches!(body, "{" | "}" | "[" | "]" | "{}" | "[]") {
        v.to_string()
    } else {
        format!("\x1b[33m{body}\x1b[0m{comma}")
    }
}

/// The values `--obscure` hides (the original's list).
pub(crate) const OBSCURED_KEYS: &[&str] = &[
    "RoleArn",
    "ExternalId",
    "SerialNumber",
    "TokenCode",
    "PolicyArns",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_account_id",
    "access_key",
    "secret_key",
    "token",
    "AccessKeyId",
    "SecretAccessKey",
    "SessionToken",
    "Account",
    "Arn",
    "UserId",
];

/// Replaces, at any depth, the values of [`OBSCURED_KEYS`] with "***".
pub(crate) fn obscure(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if OBSCURED_KEYS.contains(&k.as_str()) {
                    *v = serde_json::Value::String("***".into());
                } else {
                    obscure(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(obscure),
        _ => {}
    }
}

#[cfg(test)]
mod diff_tests {
    use super::*;

    #[test]
    fn the_diff_is_unified() {
        let d = unified_diff("a\nb\nc\n", "a\nB\nc\nd\n", "f", "elhaz sso sync");
        assert_eq!(
            d,
            "--- f\n+++ f (after elhaz sso sync)\n@@ -1,3 +1,4 @@\n a\n-b\n+B\n c\n+d\n"
        );
        let d = unified_diff("", "x\n", "f", "elhaz sso sync");
        assert!(d.contains("@@ -0,0 +1 @@\n+x\n"), "{d}");
    }
}
