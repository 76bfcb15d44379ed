//! The properties the fuzz targets check, shared with the test that replays the
//! checked-in corpus (tests/it/fuzz_corpus.rs), so CI checks them on every run.
#![allow(dead_code)]

use std::path::Path;

use elhaz::config::aws_ini::{self, FileKind, Ini};
use elhaz::config::parse::{parse_config, to_yaml};
use elhaz::context::SourceContext;
use elhaz::daemon::protocol::Envelope;
use elhaz::duration::Seconds;
use elhaz::env::chain;
use elhaz::terminal::escape_controls;

/// The daemon's request parser never panics, and what it understood from a line
/// survives its own wire form (the typed request re-parses to the same value; JSON
/// floats in a caller context aside, which need not round-trip exactly).
pub fn protocol_request(data: &[u8]) {
    if let Ok(req) = Envelope::parse(data) {
        let line = req.to_line();
        let again = Envelope::parse(&line[..line.len() - 1]).expect("a serialised request parses");
        assert_eq!(again.version, req.version);
        assert_eq!(again.request_id, req.request_id);
        assert_eq!(again.request.action(), req.request.action());
        assert!(again.request == req.request, "{:?}", req.request.action());
        assert_eq!(again.caller.extended, req.caller.extended);
        assert_eq!(again.caller.config_dir, req.caller.config_dir);
        assert_eq!(again.caller.context_ref, req.caller.context_ref);
        assert_eq!(
            again.caller.context.as_ref().map(without_numbers),
            req.caller.context.as_ref().map(without_numbers)
        );
        // A caller context the daemon accepts survives its own wire form.
        if let Some(v) = &req.caller.context
            && let Ok(ctx) = SourceContext::from_json(v)
        {
            let again = SourceContext::from_json(&ctx.to_json()).expect("a context re-parses");
            assert_eq!(again.to_json(), ctx.to_json());
        }
        // Whatever a peer sends, the log line made of it holds no control character.
        for field in [req.request.action(), req.request_id.as_str()] {
            let logged = escape_controls(field);
            assert!(!logged.chars().any(char::is_control), "{logged:?}");
        }
    }
}

/// The value with every number, at any depth, replaced by null.
fn without_numbers(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Number(_) => serde_json::Value::Null,
        serde_json::Value::Array(a) => a.iter().map(without_numbers).collect(),
        serde_json::Value::Object(o) => o
            .iter()
            .map(|(k, v)| (k.clone(), without_numbers(v)))
            .collect(),
        other => other.clone(),
    }
}

/// The config parser never panics, and a config it accepts is written back as YAML
/// that parses to the same config.
pub fn config_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = parse_config(text, Path::new("fuzz.yaml")) {
        let yaml = to_yaml(&config).expect("an accepted config serialises");
        let again = parse_config(&yaml, Path::new("fuzz.yaml")).expect("written YAML parses");
        assert_eq!(again, config);
    }
}

/// Duration parsing (flags and ELHAZ_* variables) never panics or overflows.
pub fn duration(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = s.parse::<Seconds>();
    }
}

/// The AWS INI reader never panics and gives sane line numbers, in either file kind.
/// The `--server` child's copy of a config is refused exactly when the reader refuses
/// the file; otherwise it reads again, keeps only lines of the original, is its own
/// copy, and holds no credential setting that could reach the default profile and no
/// secret anywhere, as the reader sees it and as a naive line reader (any `[x]` line a
/// header, any line with `=` a key of the current section) would.
pub fn aws_ini(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz/config");
    let lines = aws_ini::split_lines(text);
    assert_eq!(lines.concat(), text);
    for kind in [FileKind::Config, FileKind::Credentials] {
        if let Ok(ini) = Ini::parse(text, path, kind) {
            check_lines(&ini, lines.len());
            let _ = ini.gather();
        }
    }
    let read = Ini::parse(text, path, FileKind::Config);
    let copy = match (read, chain::sanitize(text, path)) {
        (Ok(_), Ok(copy)) => copy,
        (Err(_), Err(_)) => return,
        (r, c) => panic!("reader {:?} but copy {:?}", r.is_ok(), c.is_ok()),
    };
    let again = Ini::parse(&copy, path, FileKind::Config).expect("the copy reads");
    let mut rest = lines.iter();
    for line in aws_ini::split_lines(&copy) {
        assert!(
            rest.any(|l| *l == line),
            "the copy holds a line not in order in the original: {line:?}"
        );
    }
    assert_eq!(
        chain::sanitize(&copy, path).unwrap(),
        copy,
        "not its own copy"
    );
    let copy_lines = aws_ini::split_lines(&copy);
    for s in &again.sections {
        let default = chain::feeds_default(&s.header);
        for e in &s.entries {
            for &n in &e.lines {
                let line = aws_ini::content(copy_lines[n - 1]);
                if n != e.first_line {
                    assert!(aws_ini::header_of(line).is_none(), "{line:?}");
                }
                if let Some((key, _)) = aws_ini::key_value(line) {
                    assert!(!chain::is_secret_key(&key), "{line:?}");
                    assert!(!(default && chain::is_credential_key(&key)), "{line:?}");
                }
            }
        }
    }
    for p in again.gather().profiles {
        if p.name == "default" {
            assert!(!p.settings.keys().any(|k| chain::is_credential_key(k)));
        }
    }
    naive_reader_sees_no_credential(&copy);
}

/// Lines and entries in order, within the text.
fn check_lines(ini: &Ini, count: usize) {
    for s in &ini.sections {
        assert!((1..=count).contains(&s.line));
        for e in &s.entries {
            assert!(s.line < e.first_line && e.first_line <= e.last_line && e.last_line <= count);
            assert_eq!(e.lines.first(), Some(&e.first_line));
            assert_eq!(e.lines.last(), Some(&e.last_line));
            assert!(e.lines.windows(2).all(|w| w[0] < w[1]));
            assert_eq!(e.key, e.key.to_lowercase());
        }
    }
}

/// A reader that knows no continuation lines: `[x]` starts section x (a comment after
/// it dropped), and `k = v` is key k of the current section.
fn naive_reader_sees_no_credential(text: &str) {
    let mut default = false;
    for line in aws_ini::split_lines(text) {
        let line = aws_ini::content(line);
        if let Some(h) = aws_ini::header_of(line) {
            default = chain::feeds_default(h);
            continue;
        }
        let Some((key, _)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().to_lowercase();
        assert!(!chain::is_secret_key(&key), "{line:?}");
        let credential = key.starts_with("sso_")
            || [
                "credential_process",
                "role_arn",
                "source_profile",
                "credential_source",
            ]
            .contains(&key.as_str());
        assert!(!(default && credential), "{line:?}");
    }
}

/// The SSO token cache reader never panics; what it writes back reads back the same,
/// with every key it does not know kept as it was; its Debug form shows no secret.
pub fn sso_token_cache(data: &[u8]) {
    const SECRETS: [&str; 3] = ["accessToken", "refreshToken", "clientSecret"];
    const MARK: &str = "SECRET-MARK";
    let _ = elhaz::sso::cache::reread(data);
    let Ok(serde_json::Value::Object(mut input)) = serde_json::from_slice(data) else {
        return;
    };
    let others = serde_json::Value::Object(input.clone()).to_string();
    for k in SECRETS {
        if input.get(k).is_some_and(serde_json::Value::is_string) {
            input.insert(k.into(), format!("{MARK}-{k}").into());
        }
    }
    let bytes = serde_json::to_vec(&input).unwrap();
    let Some((written, debug)) = elhaz::sso::cache::reread(&bytes) else {
        return;
    };
    if !others.contains(MARK) {
        assert!(!debug.contains(MARK), "{debug}");
    }
    let (again, _) = elhaz::sso::cache::reread(&serde_json::to_vec(&written).unwrap())
        .expect("what it writes reads back");
    assert_eq!(again, written);
    for k in ["startUrl", "accessToken"] {
        assert_eq!(written.get(k), input.get(k), "{k}");
    }
    let known = [
        "startUrl",
        "region",
        "accessToken",
        "expiresAt",
        "clientId",
        "clientSecret",
        "registrationExpiresAt",
        "refreshToken",
    ];
    // (JSON floats need not round-trip exactly.)
    for (k, v) in &input {
        if !known.contains(&k.as_str()) {
            let kept = written.get(k).map(without_numbers);
            assert_eq!(kept, Some(without_numbers(v)), "{k}");
        }
    }
}
