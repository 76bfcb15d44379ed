//! The properties the fuzz targets check, shared with the test that replays the
//! checked-in corpus (tests/it/fuzz_corpus.rs), so CI checks them on every run.
#![allow(dead_code)]

use std::path::Path;

use elhaz::config::parse::{parse_config, to_yaml};
use elhaz::context::SourceContext;
use elhaz::daemon::protocol::Envelope;
use elhaz::duration::Seconds;
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
