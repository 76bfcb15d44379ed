//! Text: terminal output as plain text, command output for messages, and hashes.

use std::io::Write;
use std::process::{Command, Stdio};

/// Terminal output as text: escape sequences (CSI, OSC, charset) and carriage returns
/// become `gap` (None: removed), other controls are dropped, newlines kept.
pub fn terminal_text(raw: &str, gap: Option<char>) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                match chars.next() {
                    Some('[') => {
                        for c in chars.by_ref() {
                            if ('\x40'..='\x7e').contains(&c) {
                                break;
                            }
                        }
                    }
                    Some(']') => {
                        while let Some(c) = chars.next() {
                            if c == '\x07' {
                                break;
                            }
                            if c == '\x1b' {
                                chars.next();
                                break;
                            }
                        }
                    }
                    Some('(') | Some(')') => {
                        chars.next();
                    }
                    _ => {}
                }
                out.extend(gap);
            }
            '\n' => out.push('\n'),
            '\r' => out.extend(gap),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The SHA-1 of `s` in hex, as the AWS CLI names its SSO token cache files.
pub fn sha1_hex(s: &str) -> String {
    let out = Command::new("sha1sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(s.as_bytes())?;
            c.wait_with_output()
        })
        .expect("sha1sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Output bytes as text, for messages and comparisons.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts a command succeeded, showing its status and both streams when it did not.
#[track_caller]
pub fn ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The JSON of a successful `export` (fails the test with stderr otherwise).
pub fn export_json(o: &std::process::Output) -> serde_json::Value {
    assert!(o.status.success(), "export failed: {}", text(&o.stderr));
    serde_json::from_str(&text(&o.stdout)).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stdout)))
}

pub fn expiry_unix(v: &serde_json::Value) -> i64 {
    let s = v["expiry_time"].as_str().unwrap();
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

/// Asserts a failure with `code` whose stderr holds `message`.
pub fn assert_fails(o: &std::process::Output, code: i32, message: &str) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(
        err.contains(message),
        "expected {message:?} in stderr:\n{err}"
    );
    assert!(
        text(&o.stdout).is_empty(),
        "nothing on stdout on failure: {}",
        text(&o.stdout)
    );
}
