//! The checked-in completion scripts are what the current binary generates, and the
//! completer answers with live config and profile names.
mod support;
use support::*;

const FILES: &[(&str, &str)] = &[
    ("bash", "elhaz.bash"),
    ("zsh", "_elhaz"),
    ("fish", "elhaz.fish"),
    ("elvish", "elhaz.elv"),
    ("powershell", "_elhaz.ps1"),
];

#[test]
fn checked_in_completions_are_current() {
    let t = TestEnv::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    for (shell, file) in FILES {
        let out = t.cmd().args(["completions", shell]).output().unwrap();
        assert!(out.status.success());
        let generated = String::from_utf8(out.stdout).unwrap();
        let checked_in = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        assert!(
            generated == checked_in,
            "completions/{file} is out of date; regenerate all with:\n  for s in bash:elhaz.bash zsh:_elhaz fish:elhaz.fish elvish:elhaz.elv powershell:_elhaz.ps1; do cargo run -q -- completions ${{s%%:*}} > completions/${{s#*:}}; done"
        );
    }
}

#[test]
fn names_complete_live_from_configs_and_profiles() {
    let t = TestEnv::new();
    t.role_config("prod", "");
    t.role_config("preview", "");
    t.write_aws_config("[profile prod-sso]\nsso_session = s\n[profile dev]\nregion = eu-west-1\n");
    let out = t
        .cmd()
        .env("COMPLETE", "fish")
        .args(["--", "elhaz", "exec", "pr"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = text
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(names, ["preview", "prod", "prod-sso"], "{text}");
    // Works after -n too, and for config subcommands.
    let out = t
        .cmd()
        .env("COMPLETE", "fish")
        .args(["--", "elhaz", "config", "get", "d"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .split('\t')
            .next()
            .unwrap(),
        "dev"
    );
}
