//! Project pins at the prompt: `cargo bench --bench pins`. Per-prompt cost of the hook
//! with pins against the hook before pins (the scripts at ELHAZ_BENCH_BASE_REV,
//! default 3db2cbd, the last commit before pins, read with `git show`), in the same run, in bash, zsh and fish: with
//! the working directory unchanged, with a `cd` within one pin's tree, and when
//! entering or leaving a pin's tree (the one call of the binary). Each figure is a
//! whole-process run of N prompts minus the same run with `true` in place of the hook,
//! divided by N; medians of 5 turns.

#[path = "../tests/support/mod.rs"]
mod support;

/// The hook scripts before pins.
const BASE_REV: &str = "3db2cbd";

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{FakeSts, TestEnv};

/// `source FILE` and a fresh session, then `body` (with `HOOK` as the hook's call)
/// `n` times, as a script for `shell`.
fn script(shell: &str, hook: &Path, setup: &str, body: &str, n: usize) -> Vec<String> {
    let far = support::unix_now() + 3600;
    let (flags, text) = match shell {
        "fish" => (
            "--no-config",
            format!(
                "source {h}; set -gx ELHAZ_SESSION prod; set -gx ELHAZ_EXPIRES_AT {far}; set -gx ELHAZ_REFRESH_AT {far}; {setup}; for i in (seq {n}); {body}; end",
                h = hook.display()
            ),
        ),
        sh => (
            if sh == "zsh" { "-f" } else { "--norc" },
            format!(
                "source {h}; export ELHAZ_SESSION=prod ELHAZ_EXPIRES_AT={far} ELHAZ_REFRESH_AT={far}; {setup}; for ((i=0;i<{n};i++)); do {body}; done",
                h = hook.display()
            ),
        ),
    };
    vec![flags.to_string(), "-c".to_string(), text]
}

/// Median µs per hook call: `calls` hook calls per run.
fn per_call(t: &TestEnv, shell: &str, argv: &dyn Fn(&str) -> Vec<String>, calls: usize) -> f64 {
    let run = |hook: &str| {
        let mut c = t.program(shell);
        c.args(argv(hook))
            .current_dir(&t.home)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let s = Instant::now();
        let ok = c.status().map(|s| s.success()).unwrap_or(false);
        assert!(ok, "{shell}: {:?}", argv(hook));
        s.elapsed().as_secs_f64()
    };
    let mut diffs: Vec<f64> = (0..5).map(|_| run("_elhaz_hook") - run("true")).collect();
    diffs.sort_by(f64::total_cmp);
    diffs[2] / calls as f64 * 1e6
}

/// The hook scripts before pins, with this binary as theirs.
fn baseline_hook(dir: &Path, shell: &str, bin: &Path) -> Option<PathBuf> {
    let rev = std::env::var("ELHAZ_BENCH_BASE_REV").unwrap_or_else(|_| BASE_REV.into());
    let out = Command::new("git")
        .args(["show", &format!("{rev}:shell/elhaz.{shell}")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let set = match shell {
        "fish" => format!("set -g _ELHAZ_BIN '{}'\n", bin.display()),
        _ => format!("_ELHAZ_BIN='{}'\n", bin.display()),
    };
    let p = dir.join(format!("before-pins.{shell}"));
    std::fs::write(&p, format!("{set}{}", String::from_utf8_lossy(&out.stdout))).ok()?;
    Some(p)
}

fn pins_hook(t: &TestEnv, dir: &Path, shell: &str) -> PathBuf {
    let out = t.cmd().args(["hook", shell]).output().unwrap();
    assert!(out.status.success());
    let p = dir.join(format!("pins.{shell}"));
    std::fs::write(&p, out.stdout).unwrap();
    p
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sts = rt.block_on(FakeSts::start(Duration::from_secs(3600)));
    let mut t = TestEnv::with_sts(&sts.uri());
    let bin = support::bin();
    let path = format!("{}:{}", bin.parent().unwrap().display(), t.vars["PATH"]);
    t.set("PATH", &path);
    t.role_config("prod", "");
    t.start_daemon();
    let project = t.home.join("src/prod");
    std::fs::create_dir_all(project.join("a")).unwrap();
    std::fs::write(project.join(".elhaz.yaml"), "name: prod\n").unwrap();
    assert!(
        t.cmd()
            .current_dir(&project)
            .arg("allow")
            .output()
            .unwrap()
            .status
            .success()
    );
    t.cmd().args(["export", "prod"]).output().unwrap();
    let dir = t.dir.path().to_path_buf();
    let pin = project.join(".elhaz.yaml");
    let state = |shell: &str| match shell {
        "fish" => format!(
            "cd {p}; set -g _ELHAZ_PWD $PWD; set -g _ELHAZ_PIN {pin}; set -g _ELHAZ_PINNED prod",
            p = project.display(),
            pin = pin.display()
        ),
        _ => format!(
            "cd {p}; _ELHAZ_PWD=$PWD; _ELHAZ_PIN={pin}; _ELHAZ_PINNED=prod",
            p = project.display(),
            pin = pin.display()
        ),
    };
    println!(
        "hook cost per prompt, before pins ({}) and with pins, same run",
        std::env::var("ELHAZ_BENCH_BASE_REV").unwrap_or_else(|_| BASE_REV.into())
    );
    println!();
    for shell in ["bash", "zsh", "fish"] {
        if support::which_on_path(shell).is_none() {
            println!("{shell}: not installed");
            continue;
        }
        let before = baseline_hook(&dir, shell, &bin).expect("git show of the hook before pins");
        let with = pins_hook(&t, &dir, shell);
        let setup = state(shell);
        let n = 10_000;
        let unchanged =
            |hook: &Path| per_call(&t, shell, &|h| script(shell, hook, &setup, h, n), n);
        let within = |hook: &Path| {
            let body = |h: &str| format!("cd a; {h}; cd ..; {h}");
            per_call(
                &t,
                shell,
                &|h| script(shell, hook, &setup, &body(h), n / 2),
                n,
            )
        };
        let m = 20;
        let enter = |hook: &Path| {
            let body = |h: &str| {
                format!(
                    "cd {}; {h}; cd {}; {h}",
                    project.display(),
                    t.home.display()
                )
            };
            per_call(
                &t,
                shell,
                &|h| {
                    script(
                        shell,
                        hook,
                        &format!("cd {}", t.home.display()),
                        &body(h),
                        m,
                    )
                },
                2 * m,
            )
        };
        let figures = [
            ("unchanged directory", unchanged(&before), unchanged(&with)),
            ("cd within one pin's tree", within(&before), within(&with)),
            ("entering or leaving a tree", enter(&before), enter(&with)),
        ];
        for (what, b, w) in figures {
            println!(
                "{shell:<5} {what:<28} before pins {b:>9.2} µs   with pins {w:>9.2} µs   (+{:.2} µs)",
                w - b
            );
        }
    }
}
