//! The properties the fuzz targets check, shared with the test that replays the
//! checked-in corpus (tests/fuzz_corpus.rs), so CI checks them on every run.
#![allow(dead_code)]

use std::path::Path;

use elhaz::config::parse::{parse_config, to_yaml};
use elhaz::daemon::protocol::Request;
use elhaz::duration::Seconds;

/// The daemon's request parser never panics, and what it accepts survives a round
/// trip (payload numbers aside: JSON floats need not round-trip exactly, and no
/// action reads a float).
pub fn protocol_request(data: &[u8]) {
    if let Ok(req) = Request::parse(data) {
        let line = serde_json::to_vec(&req).expect("an accepted request serialises");
        let again = Request::parse(&line).expect("a serialised request parses");
        assert_eq!(again.version, req.version);
        assert_eq!(again.request_id, req.request_id);
        assert_eq!(again.action, req.action);
        assert_eq!(
            again.payload.keys().collect::<Vec<_>>(),
            req.payload.keys().collect::<Vec<_>>()
        );
        for (k, v) in &req.payload {
            if !v.is_number() {
                assert_eq!(&again.payload[k], v);
            }
        }
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
