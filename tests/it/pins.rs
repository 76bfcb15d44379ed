//! Project pins: `.elhaz.yaml` names one of the user's own NAMEs for a tree; it is
//! obeyed only once allowed (path and content), by commands run without NAME. Checked
//! on who signed the STS calls: a pinned command runs as exactly the role its pin
//! names, and an explicit NAME wins.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::world::World;
use crate::support::*;

const OTHER_UID: u32 = 40124;

/// `elhaz ARGS` run in `dir`.
fn at(w: &World, dir: &Path, args: &[&str]) -> Output {
    let mut c = w.t.std_cmd();
    c.current_dir(dir).env("PWD", dir);
    c.args(args).stdin(std::process::Stdio::null());
    c.output().unwrap()
}

/// `~/src/NAME/modules`, with `text` as `~/src/NAME/.elhaz.yaml` (mode 0644).
fn project(w: &World, name: &str, text: &str) -> (PathBuf, PathBuf) {
    let root = w.t.home.join("src").join(name);
    let deep = root.join("modules/vpc");
    std::fs::create_dir_all(&deep).unwrap();
    let pin = write_pin(&root, text);
    (pin, deep)
}

fn write_pin(dir: &Path, text: &str) -> PathBuf {
    let pin = dir.join(".elhaz.yaml");
    std::fs::write(&pin, text).unwrap();
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o644)).unwrap();
    pin
}

fn stderr(o: &Output) -> String {
    text(&o.stderr)
}

/// Asserts that the command said which pin it uses, once, as its first line (the
/// daemon's start may follow).
#[track_caller]
fn says_once(o: &Output, line: &str) {
    let err = stderr(o);
    assert_eq!(err.lines().next(), Some(line), "{err}");
    assert_eq!(err.matches("using").count(), 1, "{err}");
}

const REGION: &[&str] = &["exec", "--", "sh", "-c", "printf %s \"$AWS_REGION\""];

#[tokio::test(flavor = "multi_thread")]
async fn a_pin_is_obeyed_only_once_allowed_and_as_it_was_allowed() {
    let w = World::new().await;
    let (_, deep) = project(&w, "prod-infra", "name: prod\nregion: eu-west-3\n");
    let m = w.mark().await;
    let o = at(&w, &deep, REGION);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("~/src/prod-infra/.elhaz.yaml wants prod (new)"),
        "{err}"
    );
    let dir = w.t.home.join("src/prod-infra");
    assert!(
        err.contains(&format!(
            "hint: read it, then trust it: elhaz allow {}",
            dir.display()
        )),
        "{err}"
    );
    assert!(text(&o.stdout).is_empty());
    assert_eq!(
        w.since(m).await,
        Vec::<String>::new(),
        "nothing was asked of STS"
    );

    let o = at(&w, &deep, &["pin", "--show"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stdout).contains("not followed (new)"),
        "{}",
        text(&o.stdout)
    );

    ok(&at(&w, &deep, &["allow"]));
    let o = at(&w, &deep, &["pin", "--show"]);
    ok(&o);
    assert_eq!(
        text(&o.stdout),
        "prod, region eu-west-3 from ~/src/prod-infra/.elhaz.yaml: allowed\n"
    );

    let m = w.mark().await;
    let o = at(&w, &deep, REGION);
    ok(&o);
    assert_eq!(text(&o.stdout), "eu-west-3");
    says_once(&o, "elhaz: using prod from ~/src/prod-infra/.elhaz.yaml");
    assert_eq!(w.since(m).await, ["Admin<-AKIADEFAULTWORLD0001"]);

    // An explicit NAME wins, and says nothing of the pin.
    let m = w.mark().await;
    let o = at(
        &w,
        &deep,
        &[
            "exec",
            "plain",
            "--",
            "sh",
            "-c",
            "printf %s \"$AWS_REGION\"",
        ],
    );
    ok(&o);
    assert_eq!(text(&o.stdout), "eu-west-2", "plain's own region");
    assert!(!stderr(&o).contains("using"), "{}", stderr(&o));
    assert_eq!(w.since(m).await, ["Plain<-AKIADEFAULTWORLD0001"]);

    // Changed since allowed: refused again, with the reason.
    write_pin(&dir, "name: plain\n");
    let m = w.mark().await;
    let o = at(&w, &deep, REGION);
    assert!(
        stderr(&o).contains("wants plain (changed since allowed)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(w.since(m).await, Vec::<String>::new());
    ok(&at(&w, &dir, &["allow", "."]));
    let m = w.mark().await;
    ok(&at(&w, &deep, &["whoami"]));
    // The daemon still holds plain's session from the explicit exec above.
    assert_eq!(w.since(m).await, ["GetCallerIdentity<-Plain"]);

    // Denied: new again.
    let o = at(&w, &w.t.home, &["deny", dir.to_str().unwrap()]);
    ok(&o);
    assert!(
        stderr(&o).contains("denied ~/src/prod-infra/.elhaz.yaml"),
        "{}",
        stderr(&o)
    );
    let o = at(&w, &deep, &["export"]);
    assert!(stderr(&o).contains("wants plain (new)"), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_nearest_pin_wins_and_a_symlinked_tree_is_the_same_pin() {
    let w = World::new().await;
    let (_, deep) = project(&w, "infra", "name: prod\n");
    let inner = w.t.home.join("src/infra/modules");
    write_pin(&inner, "name: plain\n");
    ok(&at(&w, &deep, &["allow"]));
    let o = at(&w, &deep, &["pin", "--show"]);
    assert!(
        text(&o.stdout).starts_with("plain from ~/src/infra/modules/.elhaz.yaml: allowed"),
        "{}",
        text(&o.stdout)
    );
    // The outer pin is not allowed by allowing the inner one.
    let o = at(&w, &w.t.home.join("src/infra"), &["pin", "--show"]);
    assert!(text(&o.stdout).contains("prod from ~/src/infra/.elhaz.yaml: not followed (new)"));

    let link = w.t.home.join("work");
    std::os::unix::fs::symlink(&inner, &link).unwrap();
    let m = w.mark().await;
    let o = at(&w, &link, &["whoami"]);
    ok(&o);
    says_once(&o, "elhaz: using plain from ~/work/.elhaz.yaml");
    assert_eq!(
        w.since(m).await,
        ["Plain<-AKIADEFAULTWORLD0001", "GetCallerIdentity<-Plain"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pin_writes_allows_and_names_only_what_the_user_has() {
    let w = World::new().await;
    let dir = w.t.home.join("src/new");
    std::fs::create_dir_all(&dir).unwrap();
    let o = at(&w, &dir, &["pin", "nosuch"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("~/src/new/.elhaz.yaml:2: the pin names \"nosuch\""),
        "{}",
        stderr(&o)
    );
    let o = at(&w, &dir, &["pin", "other"]);
    assert!(stderr(&o).contains("long-term keys only"), "{}", stderr(&o));
    assert!(!dir.join(".elhaz.yaml").exists(), "nothing written");

    let o = at(&w, &dir, &["pin", "plain", "--region", "ap-south-1"]);
    ok(&o);
    let mode = std::fs::metadata(dir.join(".elhaz.yaml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o022, 0, "writable by no one else: {mode:o}");
    let o = at(&w, &dir, &["pin", "--show"]);
    assert_eq!(
        text(&o.stdout),
        "plain, region ap-south-1 from ~/src/new/.elhaz.yaml: allowed\n"
    );
    let m = w.mark().await;
    let o = at(&w, &dir, &["export", "-f", "env", "--shell", "bash"]);
    ok(&o);
    assert!(
        text(&o.stdout).contains("export AWS_REGION='ap-south-1';"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(w.since(m).await, ["Plain<-AKIADEFAULTWORLD0001"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_pins_are_refused_with_file_and_line_and_nothing_runs() {
    let w = World::new().await;
    let m = w.mark().await;
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown",
            "name: prod\nrole_arn: arn:aws:iam::1:role/Evil\n",
            ".elhaz.yaml:2:",
        ),
        (
            "noname",
            "# pinned\nregion: eu-west-1\n",
            "the pin has no name",
        ),
        ("yaml", "name: [prod\n", ".elhaz.yaml:1:"),
        (
            "nosuch",
            "\nname: prdo\n",
            ".elhaz.yaml:2: the pin names \"prdo\"",
        ),
        ("keys", "name: other\n", "a profile of long-term keys only"),
        (
            "region",
            "name: prod\nregion: moon-1\n",
            ".elhaz.yaml:2: region: \"moon-1\" is not an AWS region",
        ),
    ];
    for (dirname, body, wanted) in cases {
        let (_, deep) = project(&w, dirname, body);
        for args in [&["allow"][..], &["exec", "--", "true"], &["pin", "--show"]] {
            let o = at(&w, &deep, args);
            assert_eq!(
                o.status.code(),
                Some(3),
                "{dirname} {args:?}: {}",
                stderr(&o)
            );
            assert!(
                stderr(&o).contains(wanted),
                "{dirname} {args:?}: {}",
                stderr(&o)
            );
            assert!(stderr(&o).contains("\nhint: "), "{dirname}: {}", stderr(&o));
        }
    }
    assert_eq!(
        w.since(m).await,
        Vec::<String>::new(),
        "STS was never asked"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pins_that_are_no_file_huge_or_others_are_refused_like_configs() {
    let w = World::new().await;
    let (pin, deep) = project(&w, "odd", "name: prod\n");
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o664)).unwrap();
    let refused = |wanted: &str| {
        let o = at(&w, &deep, &["allow"]);
        assert_eq!(o.status.code(), Some(3), "{wanted}: {}", stderr(&o));
        assert!(stderr(&o).contains(wanted), "{wanted}: {}", stderr(&o));
        let o = at(&w, &deep, &["exec", "--", "true"]);
        assert!(stderr(&o).contains(wanted), "{wanted}: {}", stderr(&o));
    };
    refused("~/src/odd/.elhaz.yaml: the pin file is writable by other users (mode 0664)");
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(&pin, Some(OTHER_UID), Some(OTHER_UID))
        .expect("chown (tests run as root)");
    refused(&format!("the pin file is owned by uid {OTHER_UID}"));
    std::fs::remove_file(&pin).unwrap();
    nix::unistd::mkfifo(&pin, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    refused("the pin is a FIFO, not a regular file");
    std::fs::remove_file(&pin).unwrap();
    std::fs::create_dir(&pin).unwrap();
    refused("the pin is a directory, not a regular file");
    std::fs::remove_dir(&pin).unwrap();
    write_pin(
        pin.parent().unwrap(),
        &format!("name: prod\n#{}\n", "x".repeat(10 << 20)),
    );
    refused("larger than 64 KiB");
}

/// kubectl runs `eks token` in the user's working directory: without NAME it signs with
/// the trusted pin's role, and an untrusted pin is refused with the allow command,
/// stdout empty (kubectl shows stderr), STS never asked.
#[tokio::test(flavor = "multi_thread")]
async fn eks_token_without_name_signs_as_the_trusted_pins_role() {
    let w = World::new().await;
    let (_, deep) = project(&w, "k8s", "name: plain\n");
    let args = ["eks", "token", "--cluster", "demo"];
    let m = w.mark().await;
    let o = at(&w, &deep, &args);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "{}", text(&o.stdout));
    assert!(stderr(&o).contains("wants plain (new)"), "{}", stderr(&o));
    assert_eq!(w.since(m).await, Vec::<String>::new());

    ok(&at(&w, &deep, &["allow"]));
    let m = w.mark().await;
    let o = at(&w, &deep, &args);
    ok(&o);
    says_once(&o, "elhaz: using plain from ~/src/k8s/.elhaz.yaml");
    assert_eq!(w.since(m).await, ["Plain<-AKIADEFAULTWORLD0001"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let url = crate::support::eks::url_of(v["status"]["token"].as_str().unwrap());
    let key = crate::support::eks::params_of(&url)
        .into_iter()
        .find(|(k, _)| k == "X-Amz-Credential")
        .unwrap()
        .1;
    // The token is signed with the session plain's AssumeRole gave.
    let o = at(&w, &w.t.home, &["export", "plain"]);
    ok(&o);
    let exported: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let session_key = exported["AccessKeyId"]
        .as_str()
        .or(exported["access_key"].as_str())
        .unwrap()
        .to_string();
    assert!(
        key.starts_with(&format!("{session_key}/")),
        "{key} vs {session_key}"
    );
}

/// `elhaz shell` without NAME opens the shell as the trusted pin's NAME.
#[tokio::test(flavor = "multi_thread")]
async fn shell_without_name_opens_as_the_trusted_pins_name() {
    use std::io::Write;
    let w = World::new().await;
    let (_, deep) = project(&w, "sh", "name: plain\n");
    ok(&at(&w, &deep, &["allow"]));
    let m = w.mark().await;
    let mut c = w.t.std_cmd();
    c.current_dir(&deep)
        .env("PWD", &deep)
        .env("SHELL", "/bin/sh")
        .arg("shell")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"printf '%s\\n' \"$ELHAZ_SESSION\"\nexit\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    ok(&o);
    assert_eq!(text(&o.stdout), "plain\n");
    says_once(&o, "elhaz: using plain from ~/src/sh/.elhaz.yaml");
    assert_eq!(w.since(m).await, ["Plain<-AKIADEFAULTWORLD0001"]);
}
