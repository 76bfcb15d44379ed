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
    // After -n too.
    let out = t
        .cmd()
        .env("COMPLETE", "fish")
        .args(["--", "elhaz", "export", "-n", "de"])
        .output()
        .unwrap();
    assert_eq!(first_words(&out.stdout), ["dev"]);
    // config get, meta, update and remove take configs only: a profile is no config.
    for sub in ["get", "meta", "update", "remove"] {
        for (typed, want) in [("pr", &["preview", "prod"][..]), ("d", &[])] {
            let out = t
                .cmd()
                .env("COMPLETE", "fish")
                .args(["--", "elhaz", "config", sub, typed])
                .output()
                .unwrap();
            assert_eq!(first_words(&out.stdout), want, "config {sub} {typed}");
        }
    }
    // A new config's name is new: nothing to complete.
    let out = t
        .cmd()
        .env("COMPLETE", "fish")
        .args(["--", "elhaz", "config", "add", "pr"])
        .output()
        .unwrap();
    assert_eq!(first_words(&out.stdout), Vec::<String>::new());
}

/// The first tab-separated field of each line: the candidates of a fish answer.
fn first_words(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// TAB in real shells: bash, zsh and fish under a pty load the checked-in scripts and
// ask the elhaz on PATH, as a user's shell does.

use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sh {
    Bash,
    /// Bash with the bash-completion package loaded (its _command_offset).
    BashCompletion,
    Zsh,
    Fish,
}

impl Sh {
    fn program(self) -> &'static str {
        match self {
            Sh::Bash | Sh::BashCompletion => "bash",
            Sh::Zsh => "zsh",
            Sh::Fish => "fish",
        }
    }

    fn is_bash(self) -> bool {
        matches!(self, Sh::Bash | Sh::BashCompletion)
    }
}

/// The bash-completion package's main script (Debian's place; .ci/deps installs it).
const BASH_COMPLETION: &str = "/usr/share/bash-completion/bash_completion";

/// A user with configs prod and preview, an SSO profile prod-sso, SSO sessions corp
/// and dev-center and a legacy SSO profile old-sso; `elhaz`, `terraform` and `gitish`
/// on PATH; in HOME (the shells' working directory) a file and a directory.
fn completion_user() -> TestEnv {
    let mut t = TestEnv::new();
    t.role_config("prod", "");
    t.role_config("preview", "");
    t.write_aws_config(
        "[profile prod-sso]\nsso_session = corp\nsso_account_id = 111111111111\nsso_role_name = Admin\n\
         [sso-session corp]\nsso_region = us-east-1\nsso_start_url = https://corp.awsapps.com/start\n\
         [sso-session dev-center]\nsso_region = eu-west-1\nsso_start_url = https://dev.awsapps.com/start\n\
         [profile old-sso]\nsso_start_url = https://old.awsapps.com/start\nsso_region = us-east-1\n\
         sso_account_id = 222222222222\nsso_role_name = Reader\n",
    );
    let tools = t.home.join("bin");
    std::fs::create_dir_all(&tools).unwrap();
    for tool in ["terraform", "gitish"] {
        let path = tools.join(tool);
        std::fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(t.home.join("notes-for-elhaz.txt"), "").unwrap();
    std::fs::create_dir_all(t.home.join("elhaz-dir")).unwrap();
    let bin_dir = bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}:{}",
        tools.display(),
        bin_dir.display(),
        t.vars["PATH"]
    );
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

/// An interactive `sh` in HOME, with a `PROMPT>` prompt, Ctrl-T bound to print
/// `[[<the line>]]`, and `load` run (what loads the completions). With `rc`, the
/// shell reads the user's rc files as it starts; else none.
fn interactive_shell(sh: Sh, t: &TestEnv, rc: bool, load: &str) -> Pty {
    if which_on_path(sh.program()).is_none() {
        panic!(
            "{} is not installed (the CI script installs it)",
            sh.program()
        );
    }
    let mut cmd = t.program(sh.program());
    let prompt = match sh {
        Sh::Bash | Sh::BashCompletion => {
            cmd.args(if rc {
                &["-i"][..]
            } else {
                &["--norc", "--noprofile", "-i"]
            });
            "PS1='PROMPT> '; bind -x '\"\\C-t\": echo \"[[$READLINE_LINE]]\"'"
        }
        Sh::Zsh => {
            cmd.args(if rc { &["-i"][..] } else { &["-f", "-i"] });
            "PROMPT='PROMPT> '; show() { zle -M \"[[$BUFFER]]\" }; zle -N show; bindkey '^T' show"
        }
        Sh::Fish => {
            cmd.args(if rc {
                &["-i"][..]
            } else {
                &["--no-config", "-i"]
            });
            "function fish_prompt; echo -n 'PROMPT> '; end; bind \\ct 'echo \"[[\"(commandline)\"]]\"'"
        }
    };
    cmd.current_dir(&t.home);
    let mut p = Pty::spawn(cmd, &format!("{sh:?}"), 200, TIMEOUT);
    let load = if load.is_empty() {
        String::new()
    } else {
        format!("; {load}")
    };
    p.send(&format!("{prompt}{load}; echo '@RE''ADY@'\r"));
    p.expect_screen("@READY@");
    p.expect_screen("PROMPT>");
    p
}

/// An interactive shell with the checked-in completion script loaded the way the
/// README says, and completions of `terraform` (its words: plan, apply) and
/// `gitish` (status, stash; in bash by a function) registered the shell's own way.
fn shell_with_completions(sh: Sh, t: &TestEnv) -> Pty {
    let dir = completions_dir();
    let load = match sh {
        // The README's line, in a bash without the bash-completion package.
        Sh::Bash => format!("source <(elhaz completions bash); {BASH_TOOLS}"),
        // The package loads the file of its user directory at the first TAB.
        Sh::BashCompletion => format!(
            "mkdir -p ~/.local/share/bash-completion/completions; elhaz completions bash > ~/.local/share/bash-completion/completions/elhaz; source {BASH_COMPLETION}; {BASH_TOOLS}"
        ),
        // _elhaz in $fpath, then compinit: the file is autoloaded at the first TAB.
        Sh::Zsh => format!(
            "fpath=({} $fpath); autoload -Uz compinit; compinit -u; _tf() {{ compadd plan apply }}; compdef _tf terraform; _gi() {{ compadd status stash }}; compdef _gi gitish",
            dir.display()
        ),
        Sh::Fish => format!(
            "source {}; complete -c terraform -f -a 'plan apply'; complete -c gitish -f -a 'status stash'",
            dir.join("elhaz.fish").display()
        ),
    };
    if sh == Sh::BashCompletion && !Path::new(BASH_COMPLETION).exists() {
        panic!(
            "{BASH_COMPLETION} is missing: the bash-completion package (the CI script installs it)"
        );
    }
    let mut p = interactive_shell(sh, t, false, &load);
    if sh == Sh::BashCompletion {
        // The package's _command_offset is what the script hands the command to.
        p.send("echo \"@HAS-$(type -t _command_offset)@\"\r");
        p.expect_screen("@HAS-function@");
        p.expect_screen("PROMPT>");
    }
    p
}

/// How bash completes the fake tools: by a word list, and by a function (as most
/// commands' completions do).
const BASH_TOOLS: &str = "complete -W 'plan apply' terraform; _gi() { COMPREPLY=($(compgen -W 'status stash' -- \"$2\")); }; complete -F _gi gitish";

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

/// What the shell lists for `line` (bash lists on the second TAB), as the screen
/// shows it.
fn tab_lists(p: &mut Pty, sh: Sh, line: &str) -> String {
    p.send(line);
    p.send(if sh.is_bash() { "\t\t" } else { "\t" });
    let shown = p.collect(Duration::from_millis(1500));
    p.cancel_line();
    shown
}

/// Fails unless `shown` lists every word of `must` and none of `not`.
fn lists(p: &Pty, what: &str, shown: &str, must: &[&str], not: &[&str]) {
    let words: Vec<&str> = shown
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .collect();
    for w in must {
        if !words.contains(w) {
            p.fail(&format!("{what} did not list {w}: {shown:?}"));
        }
    }
    for w in not {
        if words.contains(w) {
            p.fail(&format!("{what} listed {w}: {shown:?}"));
        }
    }
}

/// The global flags, none of which may be offered before a `-` is typed.
const GLOBAL_FLAGS: &[&str] = &["--config-dir", "--socket-path", "--no-daemon", "--verbose"];

fn tab_in_a_real_shell(sh: Sh) {
    let t = completion_user();
    let mut p = shell_with_completions(sh, &t);

    // A unique prefix completes to the config, with a space after it.
    tab_completes(&mut p, "elhaz exec pre", "elhaz exec preview ");
    // AWS profiles are names too.
    tab_completes(&mut p, "elhaz exec prod-", "elhaz exec prod-sso ");

    // An ambiguous prefix lists every match, each with what it is (in bash too, in
    // parentheses that read cleanly: `(sso profile)`).
    let shown = tab_lists(&mut p, sh, "elhaz exec pr");
    lists(
        &p,
        "TAB on `elhaz exec pr`",
        &shown,
        &["preview", "prod", "prod-sso"],
        &[],
    );
    for kind in ["config", "sso profile"] {
        if !shown.contains(kind) {
            p.fail(&format!(
                "TAB on `elhaz exec pr` did not say which is a {kind}: {shown:?}"
            ));
        }
    }
    if sh.is_bash() && (!shown.contains("(sso profile)") || shown.contains("((")) {
        p.fail(&format!(
            "bash's descriptions are not `(sso profile)`: {shown:?}"
        ));
    }

    // Before a `-`, names and no flags; after one, flags (the command's own first).
    let shown = tab_lists(&mut p, sh, "elhaz exec ");
    lists(
        &p,
        "TAB on `elhaz exec `",
        &shown,
        &["preview", "prod", "prod-sso", "old-sso"],
        GLOBAL_FLAGS,
    );
    let shown = tab_lists(&mut p, sh, "elhaz sso ");
    lists(
        &p,
        "TAB on `elhaz sso `",
        &shown,
        &["login", "logout", "roles", "sync"],
        GLOBAL_FLAGS,
    );
    let shown = tab_lists(&mut p, sh, "elhaz exec -");
    lists(
        &p,
        "TAB on `elhaz exec -`",
        &shown,
        &["--region", "--server", "--config-dir"],
        &["prod"],
    );
    tab_completes(&mut p, "elhaz exec --ser", "elhaz exec --server ");

    // Live: a config made after the shell started completes at once.
    t.role_config("prototype", "");
    tab_completes(&mut p, "elhaz exec prot", "elhaz exec prototype ");

    // config get, update and remove offer configs, never AWS profiles.
    tab_completes(
        &mut p,
        "elhaz config get previ",
        "elhaz config get preview ",
    );
    tab_completes(
        &mut p,
        "elhaz config update prod-",
        "elhaz config update prod-",
    );
    let shown = tab_lists(&mut p, sh, "elhaz config remove pr");
    lists(
        &p,
        "TAB on `elhaz config remove pr`",
        &shown,
        &["preview", "prod", "prototype"],
        &["prod-sso"],
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

/// After `exec NAME --` (or `exec NAME`), the rest is a command of its own: TAB
/// completes commands from PATH, then that command's words as the shell completes
/// them (terraform's own completion), and file names; `shell NAME --` takes the
/// shell's arguments: file names.
fn tab_after_dashes(sh: Sh) {
    let t = completion_user();
    let mut p = shell_with_completions(sh, &t);

    tab_completes(
        &mut p,
        "elhaz exec prod -- terr",
        "elhaz exec prod -- terraform ",
    );
    tab_completes(
        &mut p,
        "elhaz exec prod -- terraform pl",
        "elhaz exec prod -- terraform plan ",
    );
    tab_completes(
        &mut p,
        "elhaz exec prod -- gitish stas",
        "elhaz exec prod -- gitish stash ",
    );
    tab_completes(&mut p, "elhaz exec prod terr", "elhaz exec prod terraform ");
    tab_completes(
        &mut p,
        "elhaz exec -n prod -- terraform ap",
        "elhaz exec -n prod -- terraform apply ",
    );
    tab_completes(
        &mut p,
        "elhaz exec --region eu-west-1 prod terraform ap",
        "elhaz exec --region eu-west-1 prod terraform apply ",
    );
    tab_completes(&mut p, "elhaz exec -- terr", "elhaz exec -- terraform ");
    tab_completes(
        &mut p,
        "elhaz exec prod -- cat notes-f",
        "elhaz exec prod -- cat notes-for-elhaz.txt ",
    );
    // A directory takes a slash and no space: the path goes on.
    tab_completes(
        &mut p,
        "elhaz exec prod -- ls elhaz-d",
        "elhaz exec prod -- ls elhaz-dir/",
    );
    tab_completes(
        &mut p,
        "elhaz shell prod -- notes-f",
        "elhaz shell prod -- notes-for-elhaz.txt ",
    );
    // The command's words are its own: no elhaz flags in them.
    let shown = tab_lists(&mut p, sh, "elhaz exec prod -- terraform ");
    lists(
        &p,
        "TAB on `elhaz exec prod -- terraform `",
        &shown,
        &["plan", "apply"],
        GLOBAL_FLAGS,
    );
}

#[test]
fn tab_after_dashes_completes_the_command_in_bash() {
    tab_after_dashes(Sh::Bash);
}

#[test]
fn tab_after_dashes_completes_the_command_in_bash_with_bash_completion() {
    tab_after_dashes(Sh::BashCompletion);
}

#[test]
fn tab_after_dashes_completes_the_command_in_zsh() {
    tab_after_dashes(Sh::Zsh);
}

#[test]
fn tab_after_dashes_completes_the_command_in_fish() {
    tab_after_dashes(Sh::Fish);
}

/// sso login, logout, roles and sync take an SSO session: the `[sso-session]`
/// sections and the legacy SSO profiles, never configs or other profiles.
fn tab_completes_sso_sessions(sh: Sh) {
    let t = completion_user();
    let mut p = shell_with_completions(sh, &t);

    tab_completes(&mut p, "elhaz sso login co", "elhaz sso login corp ");
    tab_completes(&mut p, "elhaz sso logout old", "elhaz sso logout old-sso ");
    tab_completes(&mut p, "elhaz sso roles dev", "elhaz sso roles dev-center ");
    tab_completes(&mut p, "elhaz sso sync co", "elhaz sso sync corp ");
    // prod is a config, prod-sso a profile using corp: neither is offered.
    tab_completes(&mut p, "elhaz sso login pro", "elhaz sso login pro");
    for sub in ["login", "logout", "roles", "sync"] {
        let line = format!("elhaz sso {sub} ");
        let shown = tab_lists(&mut p, sh, &line);
        let mut not = vec!["prod", "preview", "prod-sso"];
        not.extend(GLOBAL_FLAGS);
        lists(
            &p,
            &format!("TAB on `{line}`"),
            &shown,
            &["corp", "dev-center", "old-sso"],
            &not,
        );
        if !shown.contains("https://corp.awsapps.com/start") {
            p.fail(&format!(
                "TAB on `{line}` did not show corp's start URL: {shown:?}"
            ));
        }
    }
    // Live, from the caller's AWS config file.
    let mut config = std::fs::read_to_string(t.home.join(".aws/config")).unwrap();
    config.push_str("[sso-session added-later]\nsso_region = us-east-1\nsso_start_url = https://later.awsapps.com/start\n");
    t.write_aws_config(&config);
    tab_completes(
        &mut p,
        "elhaz sso login add",
        "elhaz sso login added-later ",
    );
}

#[test]
fn tab_completes_sso_sessions_in_bash() {
    tab_completes_sso_sessions(Sh::Bash);
}

#[test]
fn tab_completes_sso_sessions_in_zsh() {
    tab_completes_sso_sessions(Sh::Zsh);
}

#[test]
fn tab_completes_sso_sessions_in_fish() {
    tab_completes_sso_sessions(Sh::Fish);
}

/// Descriptions come from the user's files (a config's Meta.description, a session's
/// start URL): a terminal shows their escape sequences, never obeys them; a name
/// holding one is not offered at all (it cannot be typed as it is).
fn text_from_files_is_inert(sh: Sh) {
    let t = completion_user();
    t.write_config(
        "evil",
        &format!("AssumeRole:\n  RoleArn: {ROLE_ARN}\nMeta:\n  description: \"x\\e]0;pwned\\a\"\n"),
    );
    t.role_config("even", "");
    let mut config = std::fs::read_to_string(t.home.join(".aws/config")).unwrap();
    config.push_str(
        "[sso-session esc]\nsso_region = us-east-1\nsso_start_url = https://e\x1b[7mvil.example\n",
    );
    config.push_str("[profile bad\x1b]0;pwned\x07name]\nrole_arn = arn:aws:iam::123456789012:role/X\nsource_profile = prod-sso\n");
    t.write_aws_config(&config);
    let mut p = shell_with_completions(sh, &t);

    let shown = tab_lists(&mut p, sh, "elhaz exec ev");
    lists(&p, "TAB on `elhaz exec ev`", &shown, &["evil", "even"], &[]);
    if !shown.contains(r"\x1b]0;pwned\x07") {
        p.fail(&format!(
            "the description's escape sequence is not shown as text: {shown:?}"
        ));
    }
    let shown = tab_lists(&mut p, sh, "elhaz sso login ");
    if !shown.contains(r"https://e\x1b[7mvil.example") {
        p.fail(&format!(
            "the start URL's escape sequence is not shown as text: {shown:?}"
        ));
    }
    tab_completes(&mut p, "elhaz exec ba", "elhaz exec ba");
    for raw in ["\x1b]0;pwned", "\x1b[7mvil"] {
        if p.transcript.contains(raw) {
            p.fail(&format!("{raw:?} reached the terminal as it is"));
        }
    }
}

#[test]
fn text_from_files_is_inert_in_bash() {
    text_from_files_is_inert(Sh::Bash);
}

#[test]
fn text_from_files_is_inert_in_zsh() {
    text_from_files_is_inert(Sh::Zsh);
}

#[test]
fn text_from_files_is_inert_in_fish() {
    text_from_files_is_inert(Sh::Fish);
}

/// The README's completion block, followed as written by a new user: its commands
/// run, then each shell, started as a user starts it (reading its rc files),
/// completes `elhaz exec pre` with no other setup.
#[test]
fn the_readme_completion_setup_works_as_written() {
    let block = crate::readme::marked_blocks(&crate::readme::readme())
        .into_iter()
        .find(|b| {
            b.steps
                .iter()
                .any(|s| s.command.starts_with("elhaz completions zsh"))
        })
        .expect("a marked README block installs the completions");
    let t = completion_user();
    let script: Vec<&str> = block.steps.iter().map(|s| s.command.as_str()).collect();
    let out = t
        .program("bash")
        .args(["--norc", "--noprofile", "-e", "-c", &script.join("\n")])
        .current_dir(&t.home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "README.md:{}: {}",
        block.line,
        text(&out.stderr)
    );
    for sh in [Sh::Bash, Sh::Zsh, Sh::Fish] {
        let mut p = interactive_shell(sh, &t, true, "");
        tab_completes(&mut p, "elhaz exec pre", "elhaz exec preview ");
        tab_completes(
            &mut p,
            "elhaz exec prod -- terr",
            "elhaz exec prod -- terraform ",
        );
    }
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
            .env("_CLAP_COMPLETE_INDEX", "2")
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
        let names: Vec<&str> = out.split('\n').filter(|s| !s.is_empty()).collect();
        assert_eq!(
            names,
            [
                "preview   (config)",
                "prod      (config)",
                "prod-sso  (sso profile)"
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

/// A profile named with a space (`[profile "my prod"]`, which botocore reads as `my
/// prod`) completes quoted, so the line runs as that NAME; and a word the user began
/// quoted or escaped completes too.
fn a_name_with_a_space_completes_quoted(sh: Sh) {
    let t = completion_user();
    t.write_aws_config("[profile \"my prod\"]\nrole_arn = arn:aws:iam::123456789012:role/P\nsource_profile = keys\n[profile keys]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = x\n");
    let mut p = shell_with_completions(sh, &t);
    // bash inserts the quoted word elhaz gives; zsh and fish quote in their own way.
    let (bare, escaped) = match sh {
        Sh::Bash | Sh::BashCompletion => ("'my prod'", "'my prod'"),
        Sh::Zsh | Sh::Fish => ("my\\ prod", "my\\ prod"),
    };
    tab_completes(&mut p, "elhaz exec my", &format!("elhaz exec {bare} "));
    tab_completes(&mut p, "elhaz exec 'my p", "elhaz exec 'my prod' ");
    tab_completes(
        &mut p,
        "elhaz exec my\\ p",
        &format!("elhaz exec {escaped} "),
    );
}

#[test]
fn a_name_with_a_space_completes_quoted_in_bash() {
    a_name_with_a_space_completes_quoted(Sh::Bash);
}

#[test]
fn a_name_with_a_space_completes_quoted_in_zsh() {
    a_name_with_a_space_completes_quoted(Sh::Zsh);
}

#[test]
fn a_name_with_a_space_completes_quoted_in_fish() {
    a_name_with_a_space_completes_quoted(Sh::Fish);
}

/// `--config-dir DIR` typed on the line (before or after the command, `=` or not)
/// decides which configs complete, as it decides which the command reads.
#[test]
fn config_names_complete_from_the_config_dir_on_the_line() {
    let t = completion_user();
    let other = t.home.join("other-configs");
    let out = t
        .cmd()
        .arg("--config-dir")
        .arg(&other)
        .args([
            "config",
            "add",
            "elsewhere",
            "--role-arn",
            "arn:aws:iam::123456789012:role/E",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dir = other.to_str().unwrap();
    let with_flag = format!("--config-dir={dir}");
    for words in [
        vec!["elhaz", "--config-dir", dir, "config", "get", ""],
        vec!["elhaz", &with_flag, "config", "get", ""],
        vec!["elhaz", "config", "get", "--config-dir", dir, ""],
    ] {
        let out = t
            .std_cmd()
            .env("COMPLETE", "bash")
            .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
            .arg("--")
            .args(&words)
            .output()
            .unwrap();
        let offered = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(offered.trim(), "elsewhere", "{words:?}");
    }
    // Without it, the default directory's.
    let out = t
        .std_cmd()
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", "3")
        .args(["--", "elhaz", "config", "get", ""])
        .output()
        .unwrap();
    let offered = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        offered.contains("prod") && !offered.contains("elsewhere"),
        "{offered}"
    );
}

/// bash splits words at the `:` and `=` of COMP_WORDBREAKS; a NAME holding them
/// (`team:prod`, `a=b`) still completes as one word, and so does `--config-dir=DIR`.
fn names_with_colons_and_equals_complete_in(sh: Sh) {
    let t = completion_user();
    t.write_aws_config("[profile team:prod]\nrole_arn = arn:aws:iam::123456789012:role/P\nsource_profile = keys\n[profile a=b]\nrole_arn = arn:aws:iam::123456789012:role/Q\nsource_profile = keys\n[profile keys]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = x\n");
    let mut p = shell_with_completions(sh, &t);
    tab_completes(&mut p, "elhaz exec team:p", "elhaz exec team:prod ");
    tab_completes(&mut p, "elhaz exec team", "elhaz exec team:prod ");
    tab_completes(&mut p, "elhaz exec a=", "elhaz exec a=b ");
    tab_completes(
        &mut p,
        "elhaz exec team:prod -- terr",
        "elhaz exec team:prod -- terraform ",
    );
    tab_completes(
        &mut p,
        "elhaz --config-dir=/nowhere exec team:p",
        "elhaz --config-dir=/nowhere exec team:prod ",
    );
}

#[test]
fn names_with_colons_and_equals_complete_in_bash() {
    names_with_colons_and_equals_complete_in(Sh::Bash);
}

#[test]
fn names_with_colons_and_equals_complete_in_bash_with_bash_completion() {
    names_with_colons_and_equals_complete_in(Sh::BashCompletion);
}

#[test]
fn names_with_colons_and_equals_complete_in_zsh() {
    names_with_colons_and_equals_complete_in(Sh::Zsh);
}

#[test]
fn names_with_colons_and_equals_complete_in_fish() {
    names_with_colons_and_equals_complete_in(Sh::Fish);
}
