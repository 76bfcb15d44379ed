//! The checked-in completion scripts are what the current binary generates, and the
//! completer answers with live config and profile names.
use crate::support::*;

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

/// A malformed ELHAZ_* variable must not break a shell's rc file: `eval "$(elhaz hook
/// bash)"` and the completion scripts print fixed text and need no settings.
#[test]
fn hook_and_completions_ignore_bad_settings() {
    let t = TestEnv::new();
    for args in [["hook", "bash"], ["completions", "bash"]] {
        let out = t
            .cmd()
            .env("ELHAZ_REFRESH_WINDOW", "soon")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "elhaz {} with a bad ELHAZ_REFRESH_WINDOW: {}",
            args.join(" "),
            text(&out.stderr)
        );
        assert!(!out.stdout.is_empty());
    }
    // Commands that use the setting still say it is wrong.
    let out = t
        .cmd()
        .env("ELHAZ_REFRESH_WINDOW", "soon")
        .args(["export", "prod"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("ELHAZ_REFRESH_WINDOW"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn names_complete_live_from_configs_and_profiles() {
    let t = TestEnv::new();
    t.role_config("prod", "");
    t.role_config("preview", "");
    // prod-keys holds long-term keys only: a source for other profiles, not a NAME.
    t.write_aws_config(
        "[profile prod-sso]\nsso_session = s\n[profile dev]\nrole_arn = arn:aws:iam::123456789012:role/Dev\nsource_profile = prod-keys\n\
         [profile prod-keys]\naws_access_key_id = AKIAKEYSONLY00000000\naws_secret_access_key = x\n",
    );
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

// ---------------------------------------------------------------------------
// TAB in real shells: bash, zsh and fish under a pty load the checked-in scripts and
// ask the elhaz on PATH, as a user's shell does.

use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug)]
enum Sh {
    Bash,
    Zsh,
    Fish,
}

/// A user with configs prod and preview and an SSO profile prod-sso, `elhaz` on PATH.
fn completion_user() -> TestEnv {
    let mut t = TestEnv::new();
    t.role_config("prod", "");
    t.role_config("preview", "");
    t.write_aws_config("[profile prod-sso]\nsso_session = s\n[sso-session s]\nsso_region = us-east-1\nsso_start_url = https://x.awsapps.com/start\n");
    let bin_dir = bin().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), t.vars["PATH"]);
    t.set("PATH", &path)
        .set("TERM", "xterm")
        .set("SHELL", "/bin/sh");
    t
}

fn completions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("completions")
}

impl Pty {
    /// Abandons the line being edited and waits for a fresh prompt. Ctrl-C is a
    /// signal: sent while the shell still runs a key binding, it interrupts that
    /// instead, so wait until the shell is idle.
    fn cancel_line(&mut self) {
        self.settle();
        self.buf.clear();
        self.send("\x03");
        self.expect_screen("PROMPT>");
    }
}

/// An interactive shell with the checked-in completion script loaded the way the
/// README says, a `PROMPT>` prompt, and Ctrl-T bound to print `[[<the line>]]`.
fn shell_with_completions(sh: Sh, t: &TestEnv) -> Pty {
    let dir = completions_dir();
    let (mut cmd, setup) = match sh {
        Sh::Bash => {
            let mut c = t.program("bash");
            c.args(["--norc", "--noprofile", "-i"]);
            // The README's line, in a bash without the bash-completion package.
            let setup = "PS1='PROMPT> '; source <(elhaz completions bash); bind -x '\"\\C-t\": echo \"[[$READLINE_LINE]]\"'".to_string();
            (c, setup)
        }
        Sh::Zsh => {
            let mut c = t.program("zsh");
            c.args(["-f", "-i"]);
            // _elhaz in $fpath, then compinit: the file is autoloaded at the first TAB.
            let setup = format!(
                "PROMPT='PROMPT> '; fpath=({} $fpath); autoload -Uz compinit; compinit -u; show() {{ zle -M \"[[$BUFFER]]\" }}; zle -N show; bindkey '^T' show",
                dir.display()
            );
            (c, setup)
        }
        Sh::Fish => {
            let mut c = t.program("fish");
            c.args(["--no-config", "-i"]);
            let setup = format!(
                "function fish_prompt; echo -n 'PROMPT> '; end; source {}; bind \\ct 'echo \"[[\"(commandline)\"]]\"'",
                dir.join("elhaz.fish").display()
            );
            (c, setup)
        }
    };
    cmd.current_dir(&t.home);
    let mut p = Pty::spawn(cmd, &format!("{sh:?}"), 200, TIMEOUT);
    p.send(&format!("{setup}; echo '@RE''ADY@'\r"));
    p.expect_screen("@READY@");
    p.expect_screen("PROMPT>");
    p
}

/// Types `line`, presses TAB, then Ctrl-T: the line as the shell now holds it.
fn tab_completes(p: &mut Pty, line: &str, want: &str) {
    p.send(line);
    p.send("\t");
    // Let the completion (a process) finish before asking for the line.
    p.settle();
    p.send("\x14");
    p.expect_screen(&format!("[[{want}]]"));
    p.cancel_line();
}

fn tab_in_a_real_shell(sh: Sh) {
    let t = completion_user();
    if which_on_path(match sh {
        Sh::Bash => "bash",
        Sh::Zsh => "zsh",
        Sh::Fish => "fish",
    })
    .is_none()
    {
        panic!("{sh:?} is not installed (the CI script installs it)");
    }
    let mut p = shell_with_completions(sh, &t);

    // A unique prefix completes to the config, with a space after it.
    tab_completes(&mut p, "elhaz exec pre", "elhaz exec preview ");
    // AWS profiles are names too.
    tab_completes(&mut p, "elhaz exec prod-", "elhaz exec prod-sso ");

    // An ambiguous prefix lists every match (bash lists on the second TAB).
    p.send("elhaz exec pr");
    p.send(match sh {
        Sh::Bash => "\t\t",
        _ => "\t",
    });
    let shown = p.collect(Duration::from_millis(1500));
    let words: Vec<&str> = shown.split_whitespace().collect();
    for name in ["preview", "prod", "prod-sso"] {
        if !words.contains(&name) {
            p.fail(&format!(
                "TAB on `elhaz exec pr` did not list {name}: {shown:?}"
            ));
        }
    }
    // Each with what it is, in bash too.
    for kind in ["config", "sso"] {
        if !shown.contains(kind) {
            p.fail(&format!(
                "TAB on `elhaz exec pr` did not say which is a {kind}: {shown:?}"
            ));
        }
    }
    p.cancel_line();

    // Live: a config made after the shell started completes at once.
    t.role_config("prototype", "");
    tab_completes(&mut p, "elhaz exec prot", "elhaz exec prototype ");
    // Names complete after config subcommands too.
    tab_completes(
        &mut p,
        "elhaz config get previ",
        "elhaz config get preview ",
    );
}

#[test]
fn tab_completes_names_in_bash() {
    tab_in_a_real_shell(Sh::Bash);
}

#[test]
fn tab_completes_names_in_zsh_from_fpath() {
    tab_in_a_real_shell(Sh::Zsh);
}

#[test]
fn tab_completes_names_in_fish() {
    tab_in_a_real_shell(Sh::Fish);
}

/// What one TAB costs: the whole `elhaz` process the script starts. Printed, not
/// asserted (machines differ); the issue asks for under 20 ms.
#[test]
fn one_completion_call_takes_a_few_milliseconds() {
    let t = completion_user();
    let run = || {
        let start = Instant::now();
        let out = t
            .std_cmd()
            .env("COMPLETE", "bash")
            .env("_CLAP_IFS", "\u{b}")
            .env("_CLAP_COMPLETE_INDEX", "2")
            .env("_CLAP_COMPLETE_COMP_TYPE", "9")
            .env("_CLAP_COMPLETE_SPACE", "true")
            .args(["--", "elhaz", "exec", "p"])
            .output()
            .unwrap();
        let took = start.elapsed();
        (took, String::from_utf8_lossy(&out.stdout).into_owned())
    };
    run(); // warm the page cache
    let mut times = Vec::new();
    for _ in 0..20 {
        let (took, out) = run();
        let names: Vec<&str> = out
            .split(['\u{b}', '\n'])
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(
            names,
            [
                "preview   (config)",
                "prod      (config)",
                "prod-sso  (profile (sso))"
            ],
            "{out:?}"
        );
        times.push(took);
    }
    times.sort();
    let median = (times[9] + times[10]) / 2;
    println!(
        "one completion call (COMPLETE=bash elhaz -- elhaz exec p): median {:.1} ms, min {:.1} ms, max {:.1} ms over 20 runs ({} build)",
        median.as_secs_f64() * 1000.0,
        times[0].as_secs_f64() * 1000.0,
        times[19].as_secs_f64() * 1000.0,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
}
