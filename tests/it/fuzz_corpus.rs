//! Replays the checked-in fuzz corpus and regressions through the same property checks
//! the fuzz targets run (fuzz/fuzz_targets/checks.rs), so every CI run checks them.
#[path = "../../fuzz/fuzz_targets/checks.rs"]
mod checks;

use std::path::Path;

/// Replays the regressions in tests/fixtures/fuzz/NAME/ and the minimized corpus in
/// tests/fixtures/fuzz/NAME.hex (one input per line, hex-encoded).
fn replay(name: &str, check: fn(&[u8])) -> usize {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    let pack = std::fs::read_to_string(base.join(format!("{name}.hex"))).unwrap();
    for (i, line) in pack.lines().enumerate() {
        let data = (0..line.len())
            .step_by(2)
            .map(|j| u8::from_str_radix(&line[j..j + 2], 16).expect("hex"))
            .collect();
        inputs.push((format!("{name}.hex line {}", i + 1), data));
    }
    for entry in std::fs::read_dir(base.join(name)).unwrap() {
        let path = entry.unwrap().path();
        inputs.push((path.display().to_string(), std::fs::read(&path).unwrap()));
    }
    for (what, data) in &inputs {
        let result = std::panic::catch_unwind(|| check(data));
        assert!(result.is_ok(), "fuzz input {what} fails its check");
    }
    inputs.len()
}

#[test]
fn protocol_corpus() {
    assert!(replay("protocol_request", checks::protocol_request) > 1000);
}

#[test]
fn config_corpus() {
    assert!(replay("config_yaml", checks::config_yaml) > 1000);
}

#[test]
fn duration_corpus() {
    assert!(replay("duration", checks::duration) > 0);
}

#[test]
fn aws_ini_corpus() {
    assert!(replay("aws_ini", checks::aws_ini) > 100);
}

#[test]
fn sso_token_cache_corpus() {
    assert!(replay("sso_token_cache", checks::sso_token_cache) > 100);
}
