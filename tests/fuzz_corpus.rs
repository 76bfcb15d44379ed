//! Replays the checked-in fuzz corpus and regressions through the same property checks
//! the fuzz targets run (fuzz/fuzz_targets/checks.rs), so every CI run checks them.
#[path = "../fuzz/fuzz_targets/checks.rs"]
mod checks;

use std::path::Path;

fn replay(dir: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(dir);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(
            result.is_ok(),
            "fuzz input {} fails its check",
            path.display()
        );
        n += 1;
    }
    n
}

#[test]
fn protocol_corpus() {
    assert!(replay("protocol_request", checks::protocol_request) > 0);
}

#[test]
fn config_corpus() {
    assert!(replay("config_yaml", checks::config_yaml) > 0);
}

#[test]
fn duration_corpus() {
    assert!(replay("duration", checks::duration) > 0);
}
