use std::os::unix::fs::PermissionsExt;

use super::allowed::{Trust, allow_in, deny_in, trust_in};
use super::*;

fn write(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join(PIN_FILE);
    fs::write(&p, text).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    p
}

#[test]
fn the_nearest_pin_wins_and_the_walk_stops_at_home() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("home");
    let deep = home.join("src/prod/modules/vpc");
    fs::create_dir_all(&deep).unwrap();
    assert_eq!(find(&deep, Some(&home)), None);
    let top = write(&home.join("src/prod"), "name: prod\n");
    assert_eq!(find(&deep, Some(&home)), Some(top.clone()));
    let near = write(&home.join("src/prod/modules"), "name: staging\n");
    assert_eq!(find(&deep, Some(&home)), Some(near));
    // Above home is not looked at, even when a pin is there.
    write(t.path(), "name: outside\n");
    let other = home.join("elsewhere");
    fs::create_dir_all(&other).unwrap();
    assert_eq!(find(&other, Some(&home)), None);
    assert_eq!(find(&other, None), Some(t.path().join(PIN_FILE)));
}

#[test]
fn a_pin_holds_a_name_and_a_region() {
    let t = tempfile::tempdir().unwrap();
    let p = write(
        t.path(),
        "# the prod account\nname: prod\nregion: eu-west-1\n",
    );
    let pin = read(&p).unwrap();
    assert_eq!(pin.name, "prod");
    assert_eq!(pin.region.as_deref(), Some("eu-west-1"));
    assert_eq!(pin.name_line, 2);
}

#[test]
fn bad_pins_are_refused_with_file_and_line() {
    let t = tempfile::tempdir().unwrap();
    for (text, wanted) in [
        ("name: prod\nrole_arn: arn:aws:iam::1:role/X\n", ":2:"),
        ("region: eu-west-1\n", "no name"),
        ("", "no name"),
        ("name: [unclosed\n", ":1:"),
        ("name: prod\nname: dev\n", ":2:"),
        (
            "name: prod\n\nregion: eu-wst-1\n",
            ":3: region: \"eu-wst-1\" is not an AWS region; did you mean: eu-west-1",
        ),
    ] {
        let p = write(t.path(), text);
        let e = read(&p).unwrap_err();
        assert!(e.message.contains(wanted), "{text:?}: {}", e.message);
        assert!(e.message.contains(PIN_FILE), "{text:?}: {}", e.message);
    }
    let p = write(t.path(), "name: prod\nrole_arn: x\n");
    let e = read(&p).unwrap_err();
    assert!(e.message.contains("only name and region"), "{}", e.message);
}

#[test]
fn a_pin_others_can_write_or_that_is_no_file_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let p = write(t.path(), "name: prod\n");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o664)).unwrap();
    let e = read(&p).unwrap_err();
    assert!(
        e.message.contains("writable by other users"),
        "{}",
        e.message
    );
    fs::remove_file(&p).unwrap();
    fs::create_dir(&p).unwrap();
    let e = read(&p).unwrap_err();
    assert!(e.message.contains("a directory"), "{}", e.message);
    fs::remove_dir(&p).unwrap();
    nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let e = read(&p).unwrap_err();
    assert!(
        e.message.contains("FIFO") || e.message.contains("fifo"),
        "{}",
        e.message
    );
    fs::remove_file(&p).unwrap();
    let big = format!("name: prod\n#{}\n", "x".repeat(10 << 20));
    let p = write(t.path(), &big);
    let e = read(&p).unwrap_err();
    assert!(e.message.contains("larger than"), "{}", e.message);
}

#[test]
fn trust_follows_the_content_and_deny_forgets_it() {
    let t = tempfile::tempdir().unwrap();
    let list = t.path().join("allowed");
    let p = write(t.path(), "name: prod\n");
    let pin = read(&p).unwrap();
    assert_eq!(trust_in(&list, &pin).unwrap(), Trust::New);
    allow_in(&list, &pin).unwrap();
    assert_eq!(trust_in(&list, &pin).unwrap(), Trust::Allowed);
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&list), 0o700);
    for entry in fs::read_dir(&list).unwrap() {
        assert_eq!(mode(&entry.unwrap().path()), 0o600);
    }
    write(t.path(), "name: staging\n");
    let changed = read(&p).unwrap();
    assert_eq!(trust_in(&list, &changed).unwrap(), Trust::Changed);
    assert!(deny_in(&list, &pin.real).unwrap());
    assert_eq!(trust_in(&list, &pin).unwrap(), Trust::New);
    assert!(!deny_in(&list, &pin.real).unwrap());
}

#[test]
fn the_same_content_elsewhere_is_not_allowed() {
    let t = tempfile::tempdir().unwrap();
    let list = t.path().join("allowed");
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    fs::create_dir_all(&a).unwrap();
    fs::create_dir_all(&b).unwrap();
    let pa = read(&write(&a, "name: prod\n")).unwrap();
    let pb = read(&write(&b, "name: prod\n")).unwrap();
    allow_in(&list, &pa).unwrap();
    assert_eq!(trust_in(&list, &pb).unwrap(), Trust::New);
}

#[test]
fn what_pin_writes_reads_back() {
    let t = tempfile::tempdir().unwrap();
    let text = render("prod", Some("eu-west-1")).unwrap();
    let pin = read(&write(t.path(), &text)).unwrap();
    assert_eq!(
        (pin.name.as_str(), pin.region.as_deref()),
        ("prod", Some("eu-west-1"))
    );
    assert_eq!(pin.name_line, 2);
}
