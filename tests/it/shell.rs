//! Shell integration in real bash, zsh and fish under a pty: the hook
//! scripts, `elhaz shell`, `elhaz use`, refresh at the prompt, and what happens when a
//! refresh fails.
//!
//! Each shell gets a temp HOME whose rc file sets the prompt to end in `@P@ `, so a
//! prompt is easy to wait for. Commands are followed by `echo '@E''n@'`, whose output
//! (`@En@`) never appears in the echoed command line, so the test knows where a
//! command's output ends even when the line editor repaints.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use expectrl::process::unix::WaitStatus;

/// How long to wait for any one thing a shell prints. Generous: shells start under
/// strace, on two cores, next to other tests.
const TIMEOUT: Duration = Duration::from_secs(45);
/// Every test prompt ends with this.
const PROMPT: &str = "@P@ ";
const SOURCE_KEY: &str = "AKIASOURCEKEY0000000";

// ---------------------------------------------------------------------------
// Shells

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sh {
    Bash,
    Zsh,
    Fish,
}

impl Sh {
    fn name(self) -> &'static str {
        match self {
            Sh::Bash => "bash",
            Sh::Zsh => "zsh",
            Sh::Fish => "fish",
        }
    }

    fn path(self) -> PathBuf {
        which_on_path(self.name()).unwrap_or_else(|| panic!("{} is not installed", self.name()))
    }

    /// The last exit status.
    fn status(self) -> &'static str {
        match self {
            Sh::Fish => "$status",
            _ => "$?",
        }
    }

    /// The shell's own PID.
    fn pid_var(self) -> &'static str {
        match self {
            Sh::Fish => "$fish_pid",
            _ => "$$",
        }
    }

    fn rc_file(self, home: &Path) -> PathBuf {
        match self {
            Sh::Bash => home.join(".bashrc"),
            Sh::Zsh => home.join(".zshrc"),
            Sh::Fish => home.join(".config/fish/config.fish"),
        }
    }

    /// What a user puts in their rc file to install the hook.
    fn install_line(self) -> &'static str {
        match self {
            Sh::Bash => "eval \"$(elhaz hook bash)\"\n",
            Sh::Zsh => "eval \"$(elhaz hook zsh)\"\n",
            Sh::Fish => "elhaz hook fish | source\n",
        }
    }

    /// A user's rc file: a prompt ending in PROMPT, an alias, and a prompt command of
    /// their own that counts prompts and records the status it saw.
    fn user_rc(self) -> &'static str {
        match self {
            Sh::Bash => {
                r#"PS1='@P@ '
HISTFILE=/dev/null
alias myalias='echo ALIAS-OK'
_user_pc() { USER_LAST=$?; USER_PC=$(( ${USER_PC:-0} + 1 )); }
PROMPT_COMMAND=_user_pc
export USER_RC=loaded
"#
            }
            Sh::Zsh => {
                r#"PROMPT='@P@ '
unset HISTFILE
alias myalias='echo ALIAS-OK'
_user_precmd() { USER_LAST=$?; USER_PC=$(( ${USER_PC:-0} + 1 )); }
precmd_functions+=(_user_precmd)
export USER_RC=loaded
"#
            }
            Sh::Fish => {
                r#"set -g fish_greeting
function fish_prompt
    printf '@P@ '
end
alias myalias 'echo ALIAS-OK'
function _user_prompt_event --on-event fish_prompt
    set -g USER_LAST $status
    set -q USER_PC; or set -g USER_PC 0
    set -g USER_PC (math $USER_PC + 1)
end
set -gx USER_RC loaded
"#
            }
        }
    }
}

/// `per_shell!(check)` makes three tests of `fn check(sh: Sh)`, `check::bash`,
/// `check::zsh` and `check::fish`, so that `cargo test --test it shell::check` runs the
/// check in every shell and each shell's failure is reported on its own.
macro_rules! per_shell {
    ($check:ident) => {
        mod $check {
            use super::Sh;

            #[test]
            fn bash() {
                super::$check(Sh::Bash);
            }

            #[test]
            fn zsh() {
                super::$check(Sh::Zsh);
            }

            #[test]
            fn fish() {
                super::$check(Sh::Fish);
            }
        }
    };
}

mod pins;

// ---------------------------------------------------------------------------
// One user with a fake STS

struct User {
    t: TestEnv,
    sts: FakeSts,
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

impl User {
    /// A user whose STS issues credentials for `lifetime`, with source keys in
    /// ~/.aws/credentials (so that a daemon started from inside a session, whose
    /// injected variables elhaz ignores, still finds them), configs `prod` and `dev`,
    /// elhaz on PATH, and private TMPDIR and XDG_RUNTIME_DIR.
    fn new(sh: Sh, lifetime: Duration) -> User {
        let sts = block_on(FakeSts::start(lifetime));
        let mut t = TestEnv::with_sts(&sts.uri());
        t.unset("AWS_ACCESS_KEY_ID").unset("AWS_SECRET_ACCESS_KEY");
        std::fs::write(
            t.home.join(".aws/credentials"),
            format!("[default]\naws_access_key_id = {SOURCE_KEY}\naws_secret_access_key = source-secret\n"),
        )
        .unwrap();
        t.role_config("prod", "");
        t.role_config("dev", "");
        let bin_dir = bin().parent().unwrap().to_string_lossy().into_owned();
        t.set("PATH", &format!("{bin_dir}:{}", test_path()));
        t.set("TERM", "dumb");
        t.set("SHELL", &sh.path().to_string_lossy());
        for dir in ["tmp", "run"] {
            let p = t.dir.path().join(dir);
            std::fs::create_dir_all(&p).unwrap();
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .unwrap();
        }
        let tmp = t.dir.path().join("tmp").to_string_lossy().into_owned();
        let run = t.dir.path().join("run").to_string_lossy().into_owned();
        t.set("TMPDIR", &tmp).set("XDG_RUNTIME_DIR", &run);
        // As after fish's first run: no man-page completion generator in the background.
        std::fs::create_dir_all(t.home.join(".local/share/fish/generated_completions")).unwrap();
        std::fs::create_dir_all(t.home.join(".config/fish")).unwrap();
        User { t, sts }
    }

    fn write_rc(&self, sh: Sh, text: &str) {
        std::fs::write(sh.rc_file(&self.t.home), text).unwrap();
    }

    fn assume_role_calls(&self) -> usize {
        block_on(self.sts.calls("AssumeRole")).len()
    }

    /// Kills the daemon outright (as a crash would), leaving its socket file behind.
    fn kill_daemon(&self) {
        let pid = self.t.daemon_pid().expect("a daemon is running");
        kill(pid, nix::sys::signal::Signal::SIGKILL);
        assert!(
            wait_until(Duration::from_secs(10), || gone(pid)),
            "daemon {pid} did not die"
        );
    }

    /// Whether an `elhaz hook SHELL --refresh` of this user (a hook refreshing) is
    /// running.
    fn refresh_running(&self) -> bool {
        let home = format!("HOME={}", self.t.home.display());
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            let dir = e.path();
            let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
            let environ = std::fs::read(dir.join("environ")).unwrap_or_default();
            cmdline.split(|b| *b == 0).any(|a| a == b"--refresh")
                && environ.split(|b| *b == 0).any(|v| v == home.as_bytes())
        })
    }

    /// `elhaz shell prod` (via $SHELL) in a pty.
    fn elhaz_shell(&self, sh: Sh, extra: &[&str]) -> Pty {
        let mut cmd = self.t.std_cmd();
        cmd.args(["shell", "prod"]).args(extra);
        Pty::spawn(cmd, &format!("elhaz shell ({})", sh.name()), 300, TIMEOUT)
    }

    /// `elhaz shell prod` under `strace -f`, which logs every process the shell starts.
    fn elhaz_shell_traced(&self, sh: Sh, trace: &Path) -> Pty {
        let strace = which_on_path("strace").expect("strace is installed");
        let mut cmd = self.t.program(strace);
        cmd.args([
            "-f",
            "-qq",
            "-e",
            "trace=execve,clone,clone3,fork,vfork",
            "-e",
            "signal=none",
            "-o",
        ])
        .arg(trace)
        .arg(bin())
        .args(["shell", "prod"]);
        Pty::spawn(
            cmd,
            &format!("strace elhaz shell ({})", sh.name()),
            300,
            TIMEOUT,
        )
    }

    /// The user's own shell, interactive, reading their rc file.
    fn plain_shell(&self, sh: Sh) -> Pty {
        let mut cmd = self.t.program(sh.path());
        cmd.arg("-i");
        Pty::spawn(cmd, &format!("plain {}", sh.name()), 300, TIMEOUT)
    }
}

fn kill(pid: u32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
}

/// Whether process `pid` has exited (gone, or a zombie nobody reaped yet).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// The processes started, as strace logged them: execve, and fork/clone that make a
/// process (not a thread).
fn processes_started(trace: &Path) -> Vec<String> {
    std::fs::read_to_string(trace)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.contains("execve(")
                || l.contains("fork(")
                || ((l.contains("clone(") || l.contains("clone3(")) && !l.contains("CLONE_THREAD"))
        })
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------
// A pty session: the shell tests' own steps on support::pty's harness

impl Pty {
    /// Waits for a prompt; returns the prompt's own text before the marker (cleaned).
    fn prompt(&mut self) -> String {
        let before = clean(&self.expect(PROMPT));
        before.rsplit('\n').next().unwrap_or_default().to_string()
    }

    /// Waits for a prompt whose text does not contain `not` (line editors repaint
    /// the current prompt as the user types); returns its text.
    fn prompt_not(&mut self, not: &str) -> String {
        loop {
            let prompt = self.prompt();
            if !prompt.contains(not) {
                return prompt;
            }
        }
    }

    fn tag(&mut self) -> (String, String) {
        self.n += 1;
        (format!("echo '@E''{}@'", self.n), format!("@E{}@", self.n))
    }

    /// Runs `cmd` and waits for the next prompt; returns the cleaned output.
    fn run(&mut self, cmd: &str) -> String {
        let (echo, tag) = self.tag();
        self.send_line(&format!("{cmd}; {echo}"));
        let out = self.expect(&tag);
        self.prompt();
        clean(&out)
    }

    /// Runs `cmd` as the last command on the line, so that its status is the one the
    /// next prompt sees; returns everything printed up to that prompt (cleaned).
    fn run_last(&mut self, cmd: &str) -> String {
        let (echo, tag) = self.tag();
        self.send_line(&format!("{echo}; {cmd}"));
        self.expect(&tag);
        clean(&self.expect(PROMPT))
    }

    /// The values of shell expressions, e.g. `$AWS_ACCESS_KEY_ID`, as `@<...>@`.
    fn values(&mut self, exprs: &[&str]) -> Vec<String> {
        let inner = exprs.join("|");
        let out = self.run(&format!("echo \"@<{inner}>@\""));
        let found = grab(&out)
            .unwrap_or_else(|| self.fail(&format!("no @<...>@ in the output of echo {inner}")));
        found.split('|').map(str::to_string).collect()
    }

    fn value(&mut self, expr: &str) -> String {
        self.values(&[expr]).remove(0)
    }

    /// Waits for the process to exit (reading the terminal meanwhile); its exit code.
    fn exit_code(&mut self) -> i32 {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.s.get_process().status() {
                Ok(WaitStatus::Exited(_, code)) => return code,
                Ok(WaitStatus::Signaled(_, sig, _)) => self.fail(&format!("killed by {sig:?}")),
                _ => {}
            }
            if Instant::now() > deadline {
                self.fail("did not exit");
            }
            if !self.fill(Duration::from_millis(50)) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The text of the last `@<...>@` that is output, not the echoed command line (which
/// still has its `$`).
fn grab(out: &str) -> Option<String> {
    let mut found = None;
    let mut rest = out;
    while let Some(i) = rest.find("@<") {
        let after = &rest[i + 2..];
        let Some(j) = after.find(">@") else { break };
        let inner = &after[..j];
        if !inner.contains('$') && !inner.contains('"') {
            found = Some(inner.to_string());
        }
        rest = &after[j + 2..];
    }
    found
}

/// Terminal output without escape sequences, carriage returns and other controls.
fn clean(raw: &str) -> String {
    terminal_text(raw, None)
}

/// Lines of `out` that elhaz wrote (warnings from the hook and errors).
fn elhaz_lines(out: &str) -> Vec<String> {
    out.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("elhaz:") || l.contains(" elhaz:"))
        .map(str::to_string)
        .collect()
}

fn hook_text(sh: Sh) -> String {
    let t = TestEnv::new();
    let out = t.cmd().args(["hook", sh.name()]).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

// ---------------------------------------------------------------------------
// The hook scripts on their own

/// `eval "$(elhaz hook)"`, without naming the shell: the hook of the shell `$SHELL`
/// names, installed in that shell.
#[test]
fn hook_without_a_shell_is_the_hook_of_the_shell_that_shell_names() {
    let t = TestEnv::new();
    let bin = bin().display().to_string();
    for sh in [Sh::Bash, Sh::Zsh, Sh::Fish] {
        let path = sh.path();
        let out = t.cmd().env("SHELL", &path).arg("hook").output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), hook_text(sh), "{}", sh.name());
        let script = match sh {
            Sh::Bash => format!("eval \"$({bin} hook)\"; declare -F _elhaz_hook"),
            Sh::Zsh => format!("eval \"$({bin} hook)\"; whence -w _elhaz_hook"),
            Sh::Fish => {
                format!("{bin} hook | source; and functions -q _elhaz_hook; and echo _elhaz_hook")
            }
        };
        let out = t
            .program(&path)
            .env("SHELL", &path)
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            text(&out.stdout).contains("_elhaz_hook"),
            "{}: {}{}",
            sh.name(),
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

#[test]
fn each_hook_script_passes_its_shells_checker() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let checks: [(&str, &[&str], &str); 3] = [
        ("shellcheck", &["-s", "bash"], "shell/elhaz.bash"),
        ("zsh", &["-n"], "shell/elhaz.zsh"),
        ("fish", &["--no-execute"], "shell/elhaz.fish"),
    ];
    for (tool, args, file) in checks {
        let out = Command::new(tool)
            .args(args)
            .arg(root.join(file))
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {file}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // What `elhaz hook SHELL` prints (the script plus the binary's path) as well.
    for (sh, tool, args) in [
        (Sh::Bash, "shellcheck", &["-s", "bash", "-"][..]),
        (Sh::Zsh, "zsh", &["-n"][..]),
        (Sh::Fish, "fish", &["--no-execute"][..]),
    ] {
        let mut child = Command::new(tool)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(hook_text(sh).as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{tool} on `elhaz hook {}`:\n{}{}",
            sh.name(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_bash_hook_runs_clean_under_errexit_nounset_and_pipefail() {
    let dir = tempfile::tempdir().unwrap();
    let called = dir.path().join("called");
    // elhaz behind a recorder of each call, with a daemon it cannot reach (its socket
    // directory is a file).
    let fake = dir.path().join("fake-elhaz");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            called.display(),
            bin().display()
        ),
    )
    .unwrap();
    let not_a_dir = dir.path().join("not-a-dir");
    std::fs::write(&not_a_dir, "").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let script = format!(
        r#"eval "$('{bin}' hook bash)"
_ELHAZ_BIN='{fake}'
_elhaz_hook
echo "no session: ok"
export ELHAZ_SESSION=prod ELHAZ_EXPIRES_AT=$((EPOCHSECONDS + 3600)) ELHAZ_REFRESH_AT=$((EPOCHSECONDS + 3000))
_elhaz_hook
echo "fresh: ok"
for bad in '' abc 12abc 099 -5 99999999999999999999999 '$(echo INJECTED >&2)' 'x[$(echo INJECTED >&2)]'; do
  ELHAZ_REFRESH_AT=$bad
  _elhaz_hook
done
echo "bad ELHAZ_REFRESH_AT: ok"
unset ELHAZ_REFRESH_AT
_elhaz_hook
echo "no ELHAZ_REFRESH_AT: ok"
export ELHAZ_REFRESH_AT=$((EPOCHSECONDS - 1))
_elhaz_hook
_elhaz_hook
echo "due, failing twice: ok"
"#,
        bin = bin().display(),
        fake = fake.display()
    );
    let out = Command::new(which_on_path("bash").unwrap())
        .args([
            "--norc",
            "--noprofile",
            "-eu",
            "-o",
            "pipefail",
            "-c",
            &script,
        ])
        .env_clear()
        .env("PATH", test_path())
        .env("HOME", dir.path())
        .env("ELHAZ_SOCKET_PATH", not_a_dir.join("daemon.sock"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert_eq!(
        stdout,
        "no session: ok\nfresh: ok\nbad ELHAZ_REFRESH_AT: ok\nno ELHAZ_REFRESH_AT: ok\ndue, failing twice: ok\n"
    );
    let calls = std::fs::read_to_string(&called).unwrap_or_default();
    assert_eq!(
        calls.lines().count(),
        1,
        "only the due refresh calls elhaz, and the second prompt waits: {calls:?}"
    );
    // The refresh the hook evals, with a short wait and bash's code; the session and
    // the hook's state come from the shell's variables, never a secret in argv.
    assert!(
        calls.starts_with("--client-timeout 2 hook bash --refresh --warned"),
        "{calls:?}"
    );
    // One line: the reason, not the hint; nothing from the bad values.
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {stderr}");
    assert!(
        lines[0].starts_with(
            "elhaz: cannot refresh prod, keeping the current credentials: cannot connect to the daemon"
        ),
        "stderr: {stderr}"
    );
}

/// The code `elhaz hook SHELL --refresh` prints, run by the hook in each shell with
/// its strict modes on (bash and zsh: errexit, nounset, pipefail): a due refresh
/// (the daemon having dropped the session, so that it fetches newer credentials)
/// applies them and lets the next attempt come when due; a malformed
/// ELHAZ_REFRESH_WINDOW breaks neither `elhaz hook` nor the prompt, and is one
/// warning, not one per attempt, with the shell's credentials kept.
fn a_due_refresh_applies_and_a_bad_setting_is_one_warning(sh: Sh) {
    let u = User::new(sh, Duration::from_secs(3600));
    let script = match sh {
        Sh::Bash | Sh::Zsh => {
            let (strict, hook) = match sh {
                Sh::Bash => ("set -eu -o pipefail", "eval \"$(elhaz hook bash)\""),
                _ => (
                    "setopt err_exit no_unset pipe_fail",
                    "eval \"$(elhaz hook zsh)\"",
                ),
            };
            format!(
                r#"{strict}
{hook}
elhaz use prod
k1=$AWS_ACCESS_KEY_ID
elhaz daemon remove prod 2>/dev/null
sleep 1
export ELHAZ_REFRESH_AT=1
_elhaz_hook
echo "@<$k1|$AWS_ACCESS_KEY_ID|$_ELHAZ_RETRY_AT|$ELHAZ_REFRESH_AT>@"
export ELHAZ_REFRESH_WINDOW=soon
{hook}
for i in 1 2; do
  export ELHAZ_REFRESH_AT=1
  _ELHAZ_RETRY_AT=0
  _elhaz_hook
  echo "@<$AWS_ACCESS_KEY_ID|$_ELHAZ_RETRY_AT>@"
done
"#
            )
        }
        Sh::Fish => r#"elhaz hook fish | source
elhaz use prod; or exit 9
set k1 $AWS_ACCESS_KEY_ID
elhaz daemon remove prod 2>/dev/null
sleep 1
set -gx ELHAZ_REFRESH_AT 1
_elhaz_hook
echo "@<$k1|$AWS_ACCESS_KEY_ID|$_ELHAZ_RETRY_AT|$ELHAZ_REFRESH_AT>@"
set -gx ELHAZ_REFRESH_WINDOW soon
elhaz hook fish | source
for i in 1 2
  set -gx ELHAZ_REFRESH_AT 1
  set -g _ELHAZ_RETRY_AT 0
  _elhaz_hook
  echo "@<$AWS_ACCESS_KEY_ID|$_ELHAZ_RETRY_AT>@"
end
"#
        .to_string(),
    };
    let args: &[&str] = match sh {
        Sh::Bash => &["--norc", "--noprofile", "-c"],
        Sh::Zsh => &["-f", "-c"],
        Sh::Fish => &["--no-config", "-c"],
    };
    let started = unix_now();
    let out =
        u.t.program(sh.path())
            .args(args)
            .arg(&script)
            .output()
            .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{}: {stdout}\n{stderr}", sh.name());
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("@<")?.strip_suffix(">@"))
        .map(|l| l.split('|').collect())
        .collect();
    assert_eq!(rows.len(), 3, "{}: {stdout}\n{stderr}", sh.name());
    let (k1, k2) = (rows[0][0], rows[0][1]);
    assert!(
        k1.starts_with("ASIAFAKE") && k2.starts_with("ASIAFAKE"),
        "{rows:?}"
    );
    assert_ne!(k1, k2, "{}: the due refresh applied new keys", sh.name());
    assert_eq!(
        rows[0][2],
        "0",
        "{}: the next attempt may come when due",
        sh.name()
    );
    assert!(
        rows[0][3].parse::<i64>().unwrap() > started + 3000,
        "{}: a new ELHAZ_REFRESH_AT: {rows:?}",
        sh.name()
    );
    for row in &rows[1..] {
        assert_eq!(row[0], k2, "{}: the credentials are kept", sh.name());
        let retry: i64 = row[1].parse().unwrap();
        assert!(
            retry > started + 30,
            "{}: no retry at once: {row:?}",
            sh.name()
        );
    }
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("started the daemon"))
        .collect();
    assert_eq!(lines.len(), 1, "{}: one warning: {lines:?}", sh.name());
    assert!(
        lines[0].starts_with("elhaz: cannot refresh prod, keeping the current credentials: ")
            && lines[0].contains("ELHAZ_REFRESH_WINDOW"),
        "{}: {stderr}",
        sh.name()
    );
    assert_eq!(u.assume_role_calls(), 2, "use, then the one refresh");
}

per_shell!(a_due_refresh_applies_and_a_bad_setting_is_one_warning);

#[test]
fn sourcing_the_hook_three_times_installs_one_hook_in_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    let run = |sh: Sh, args: &[&str], script: &str| -> String {
        let out = Command::new(sh.path())
            .args(args)
            .arg(script)
            .env_clear()
            .env(
                "PATH",
                format!("{}:{}", bin().parent().unwrap().display(), test_path()),
            )
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} {script}: {}",
            sh.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .trim_end()
            .to_string()
    };
    let bash = |setup: &str| {
        run(
            Sh::Bash,
            &["--norc", "--noprofile", "-c"],
            &format!(
                "{setup}\nfor i in 1 2 3; do eval \"$(elhaz hook bash)\"; done\ndeclare -p PROMPT_COMMAND"
            ),
        )
    };
    assert_eq!(bash(""), "declare -- PROMPT_COMMAND=\"_elhaz_hook\"");
    assert_eq!(
        bash("PROMPT_COMMAND='history -a'"),
        "declare -- PROMPT_COMMAND=\"_elhaz_hook;history -a\""
    );
    assert_eq!(
        bash("PROMPT_COMMAND=('history -a' 'mine; other')"),
        "declare -a PROMPT_COMMAND=([0]=\"_elhaz_hook\" [1]=\"history -a\" [2]=\"mine; other\")"
    );
    assert_eq!(
        run(
            Sh::Zsh,
            &["-f", "-c"],
            "precmd_functions=(mine); repeat 3 eval \"$(elhaz hook zsh)\"; print -r -- ${(j:,:)precmd_functions}"
        ),
        "_elhaz_hook,mine"
    );
    let fish = run(
        Sh::Fish,
        &["--no-config", "-c"],
        "for i in 1 2 3; elhaz hook fish | source; end; functions --handlers-type generic",
    );
    assert_eq!(
        fish.lines().filter(|l| l.contains("_elhaz_hook")).count(),
        1,
        "one fish_prompt handler: {fish}"
    );
    assert!(fish.contains("fish_prompt _elhaz_hook"), "{fish}");
}

// ---------------------------------------------------------------------------
// Refresh at the prompt, end to end

/// 40-second credentials, refresh window 30 s (so ELHAZ_REFRESH_AT = expiry − min(30,
/// 40/4)). The daemon's own windows are set short so that it is the hook that asks
/// for the refresh.
fn refresh_end_to_end(sh: Sh) {
    let mut u = User::new(sh, Duration::from_secs(40));
    u.t.set("ELHAZ_REFRESH_WINDOW", "30s");
    u.t.set("ELHAZ_ADVISORY_WINDOW", "4s")
        .set("ELHAZ_MANDATORY_WINDOW", "4s");
    u.write_rc(sh, sh.user_rc());
    // Started first, so that the trace holds only the shell and what it starts.
    u.t.start_daemon();
    let trace = u.t.dir.path().join("strace.log");
    let mut p = u.elhaz_shell_traced(sh, &trace);
    let started = unix_now();
    p.prompt();
    // What the daemon fetches from now on lives an hour, so that it has no reason of
    // its own to call STS during the test.
    u.sts.set_lifetime(Duration::from_secs(3600));
    let v = p.values(&[
        "$AWS_ACCESS_KEY_ID",
        "$ELHAZ_EXPIRES_AT",
        "$ELHAZ_REFRESH_AT",
    ]);
    let (key1, expires1, refresh1) = (
        v[0].clone(),
        v[1].parse::<i64>().unwrap(),
        v[2].parse::<i64>().unwrap(),
    );
    assert!(key1.starts_with("ASIAFAKE"), "{key1}");
    assert!(
        (35..=41).contains(&(expires1 - started)),
        "expires in ~40 s: {expires1} vs {started}"
    );
    // W = min(30 s, L/4), L being 40 s less the trip to STS.
    assert!(
        (9..=10).contains(&(expires1 - refresh1)),
        "{refresh1} for {expires1}"
    );
    assert_eq!(u.assume_role_calls(), 1);

    // A fresh prompt starts nothing.
    let before = processes_started(&trace).len();
    p.run_last("echo fresh");
    let early = processes_started(&trace);
    assert_eq!(
        early.len(),
        before,
        "{}: a fresh prompt started {:?}",
        sh.name(),
        &early[before..]
    );
    assert_eq!(p.value("$AWS_ACCESS_KEY_ID"), key1);

    // Past ELHAZ_REFRESH_AT: the next prompt refreshes.
    wait_until_past(refresh1);
    let before = processes_started(&trace).len();
    let out = p.run_last("false");
    let after = processes_started(&trace);
    assert!(
        after.len() > before,
        "the refresh runs elhaz (which strace must see)"
    );
    let refresh = format!("\"hook\", \"{}\", \"--refresh\"", sh.name());
    assert!(
        after[before..].iter().any(|l| l.contains(&refresh)),
        "the hook ran `elhaz hook {} --refresh`: {:?}",
        sh.name(),
        &after[before..]
    );
    assert!(elhaz_lines(&out).is_empty(), "no warning: {out}");
    assert_eq!(
        p.value(sh.status()),
        "1",
        "$? of `false` survives the refreshing prompt"
    );
    let v = p.values(&[
        "$AWS_ACCESS_KEY_ID",
        "$ELHAZ_EXPIRES_AT",
        "$ELHAZ_REFRESH_AT",
    ]);
    assert_ne!(
        v[0],
        key1,
        "{}: the prompt after ELHAZ_REFRESH_AT refreshed",
        sh.name()
    );
    let expires2: i64 = v[1].parse().unwrap();
    assert!(
        expires2 > unix_now() + 3000,
        "the new credentials: {expires2}"
    );
    assert_eq!(
        v[2].parse::<i64>().unwrap(),
        expires2 - 30,
        "W = min(30 s, L/4)"
    );
    assert_eq!(u.assume_role_calls(), 2, "one STS call for the refresh");

    // Fresh again: no STS call and no process.
    let (calls, before) = (u.assume_role_calls(), processes_started(&trace).len());
    p.run_last("echo fresh");
    p.run_last("true");
    let after = processes_started(&trace);
    assert_eq!(
        after.len(),
        before,
        "{}: fresh prompts started {:?}",
        sh.name(),
        &after[before..]
    );
    assert_eq!(u.assume_role_calls(), calls);
    assert_eq!(p.value("$AWS_ACCESS_KEY_ID"), v[0]);

    p.send_line("exit 7");
    assert_eq!(p.exit_code(), 7);
}

per_shell!(refresh_end_to_end);

// ---------------------------------------------------------------------------
// The user's shell, as they set it up

fn the_users_rc_survives(sh: Sh) {
    let u = User::new(sh, Duration::from_secs(3600));
    let zdotdir = u.t.home.join(".config/zsh");
    if sh == Sh::Zsh {
        // A common layout: ~/.zshenv moves ZDOTDIR, and the rest lives there.
        std::fs::create_dir_all(&zdotdir).unwrap();
        std::fs::write(
            u.t.home.join(".zshenv"),
            "export ZDOTDIR=$HOME/.config/zsh\n",
        )
        .unwrap();
        std::fs::write(zdotdir.join(".zshrc"), sh.user_rc()).unwrap();
    } else {
        u.write_rc(sh, sh.user_rc());
    }
    let mut p = u.elhaz_shell(sh, &[]);
    let prompt = p.prompt();
    assert!(prompt.ends_with("(prod) "), "prefix in {prompt:?}");

    // The rc file ran: prompt (seen), alias, exported variable, prompt command.
    assert!(
        p.run("myalias").contains("ALIAS-OK"),
        "{}: the alias works",
        sh.name()
    );
    assert_eq!(p.value("$USER_RC"), "loaded");
    let n1: u32 = p.value("$USER_PC").parse().unwrap();
    let n2: u32 = p.value("$USER_PC").parse().unwrap();
    assert_eq!(n2, n1 + 1, "the user's prompt command runs at each prompt");
    assert_eq!(p.value("$ELHAZ_SESSION"), "prod");
    if sh == Sh::Zsh {
        assert_eq!(
            p.value("$ZDOTDIR"),
            zdotdir.to_string_lossy(),
            "the user's ZDOTDIR is back"
        );
    }

    // $? survives the hook: for the next command line, and for the user's prompt command.
    let out = p.run_last("false");
    assert!(out.ends_with("(prod) "), "prefix on every prompt: {out:?}");
    assert_eq!(p.value(sh.status()), "1");
    p.run_last("false");
    assert_eq!(
        p.value("$USER_LAST"),
        "1",
        "the user's prompt command saw false's status"
    );

    // No secret in the shell's command line, no helper file left behind.
    let pid = p.value(sh.pid_var());
    let secrets = p.values(&[
        "$AWS_ACCESS_KEY_ID",
        "$AWS_SECRET_ACCESS_KEY",
        "$AWS_SESSION_TOKEN",
    ]);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline);
    assert!(
        cmdline.contains(sh.name()),
        "{pid} is the shell: {cmdline:?}"
    );
    for s in &secrets {
        assert!(s.len() > 8, "{secrets:?}");
        assert!(!cmdline.contains(s.as_str()), "secret in argv: {cmdline:?}");
    }
    for dir in ["tmp", "run"] {
        let left: Vec<_> = std::fs::read_dir(u.t.dir.path().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("elhaz"))
            .collect();
        assert!(
            left.is_empty(),
            "{}: left behind in {dir}: {left:?}",
            sh.name()
        );
    }

    // Nested: refused with a clear message, unless --nested.
    let out = p.run_last("elhaz shell prod");
    assert!(
        out.contains("already inside elhaz session \"prod\"") && out.contains("--nested"),
        "{out}"
    );
    assert_eq!(p.value(sh.status()), "2");
    // Allowed with --nested; ELHAZ_NO_PROMPT=1 leaves the prompt alone; the inner
    // shell's exit status comes back.
    p.send_line("ELHAZ_NO_PROMPT=1 elhaz shell --nested dev");
    let inner = p.prompt_not("(prod)");
    if inner.contains("(dev)") {
        p.fail(&format!("ELHAZ_NO_PROMPT=1: {inner:?}"));
    }
    assert_eq!(p.values(&["$ELHAZ_SESSION", "$USER_RC"]), ["dev", "loaded"]);
    p.send_line("exit 7");
    p.prompt();
    assert_eq!(p.values(&["$ELHAZ_SESSION", sh.status()]), ["prod", "7"]);

    p.send_line("exit 7");
    assert_eq!(p.exit_code(), 7, "elhaz shell exits as the shell did");
}

per_shell!(the_users_rc_survives);

// ---------------------------------------------------------------------------
// elhaz use

fn use_switches_and_clears(sh: Sh) {
    let u = User::new(sh, Duration::from_secs(3600));
    u.write_rc(sh, &format!("{}{}", sh.user_rc(), sh.install_line()));
    let mut p = u.plain_shell(sh);
    p.prompt();
    assert_eq!(p.value("$ELHAZ_SESSION"), "");

    let out = p.run_last("elhaz use prod");
    assert!(
        !out.contains("elhaz: cannot") && !out.contains("error"),
        "{out}"
    );
    assert_eq!(p.value(sh.status()), "0");
    let v = p.values(&["$ELHAZ_SESSION", "$AWS_ACCESS_KEY_ID", "$ELHAZ_REFRESH_AT"]);
    assert_eq!(v[0], "prod");
    assert!(v[1].starts_with("ASIAFAKE"), "{v:?}");
    assert!(v[2].parse::<i64>().unwrap() > unix_now(), "{v:?}");

    p.run_last("elhaz use dev");
    let w = p.values(&["$ELHAZ_SESSION", "$AWS_ACCESS_KEY_ID"]);
    assert_eq!(w[0], "dev");
    assert!(
        w[1].starts_with("ASIAFAKE") && w[1] != v[1],
        "{w:?} after {v:?}"
    );

    // An unknown name leaves the shell as it was.
    let out = p.run_last("elhaz use nosuch");
    assert!(out.contains("nosuch"), "{out}");
    assert_ne!(p.value(sh.status()), "0");
    assert_eq!(p.values(&["$ELHAZ_SESSION", "$AWS_ACCESS_KEY_ID"]), w);

    p.run_last("elhaz use --clear");
    assert_eq!(p.value(sh.status()), "0");
    let cleared = p.values(&[
        "$ELHAZ_SESSION",
        "$ELHAZ_EXPIRES_AT",
        "$ELHAZ_REFRESH_AT",
        "$AWS_ACCESS_KEY_ID",
        "$AWS_SECRET_ACCESS_KEY",
        "$AWS_SESSION_TOKEN",
    ]);
    assert!(cleared.iter().all(String::is_empty), "{cleared:?}");
    // Other subcommands go to the binary.
    assert!(p.run("elhaz --version").contains("elhaz "), "passthrough");
    assert!(p.run("myalias").contains("ALIAS-OK"));
    p.send_line("exit");
    assert_eq!(p.exit_code(), 0);
}

per_shell!(use_switches_and_clears);

/// A NAME without a region gets the shell's own region (as before the first `use`),
/// not the one the last NAME set: `use prod` lands in the same region whatever came
/// before it.
fn use_of_a_name_without_a_region_keeps_the_shells_own(sh: Sh) {
    let u = User::new(sh, Duration::from_secs(3600));
    u.t.write_config(
        "west",
        "AssumeRole:\n  RoleArn: arn:aws:iam::123456789012:role/West\nSession:\n  region_name: eu-west-1\n",
    );
    u.write_rc(sh, &format!("{}{}", sh.user_rc(), sh.install_line()));
    let mut p = u.plain_shell(sh);
    p.prompt();
    p.run_last(match sh {
        Sh::Fish => "set -gx AWS_REGION ap-south-1; set -e AWS_DEFAULT_REGION",
        _ => "export AWS_REGION=ap-south-1; unset AWS_DEFAULT_REGION",
    });
    let regions = ["$ELHAZ_SESSION", "$AWS_REGION", "$AWS_DEFAULT_REGION"];
    p.run_last("elhaz use prod");
    assert_eq!(
        p.values(&regions),
        ["prod", "ap-south-1", ""],
        "{}",
        sh.name()
    );
    p.run_last("elhaz use west");
    assert_eq!(p.values(&regions), ["west", "eu-west-1", "eu-west-1"]);
    p.run_last("elhaz use prod");
    assert_eq!(
        p.values(&regions),
        ["prod", "ap-south-1", ""],
        "{}: west's region stayed",
        sh.name()
    );
    p.run_last("elhaz use --clear");
    assert_eq!(p.values(&regions), ["", "ap-south-1", ""], "{}", sh.name());
    p.send_line("exit");
    assert_eq!(p.exit_code(), 0);
}

per_shell!(use_of_a_name_without_a_region_keeps_the_shells_own);

#[test]
fn use_without_the_hook_explains_how_to_install_it() {
    let t = TestEnv::new();
    let out = t.cmd().args(["use", "prod"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hook"), "{err}");
    assert!(err.contains("eval \"$(elhaz hook bash)\""), "{err}");
    assert!(err.contains("elhaz hook fish | source"), "{err}");
    assert!(out.stdout.is_empty(), "nothing to eval by mistake");
}

#[test]
fn elhaz_shell_refuses_to_nest_without_nested() {
    let t = TestEnv::new();
    let out = t
        .cmd()
        .env("ELHAZ_SESSION", "prod")
        .args(["shell", "dev", "--shell", "/bin/sh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already inside elhaz session \"prod\"") && err.contains("--nested"),
        "{err}"
    );
}

#[test]
fn a_zsh_that_cannot_start_leaves_no_helper_directory() {
    let u = User::new(Sh::Zsh, Duration::from_secs(3600));
    // Executable, binary, and not a format this system runs.
    let zsh = u.t.dir.path().join("zsh");
    std::fs::write(&zsh, b"\x7fELF\x00\x00garbage").unwrap();
    std::fs::set_permissions(&zsh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out =
        u.t.cmd()
            .args(["shell", "prod", "--shell"])
            .arg(&zsh)
            .output()
            .unwrap();
    assert_eq!(
        out.status.code(),
        Some(126),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for dir in ["tmp", "run"] {
        let left: Vec<_> = std::fs::read_dir(u.t.dir.path().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("elhaz-zsh-"))
            .collect();
        assert!(left.is_empty(), "left behind in {dir}: {left:?}");
    }
}

#[test]
fn a_shell_without_a_hook_gets_the_credentials_and_one_line_about_it() {
    let sts = block_on(FakeSts::start(Duration::from_secs(3600)));
    let t = TestEnv::with_sts(&sts.uri());
    t.role_config("prod", "");
    let out = t
        .cmd()
        .args([
            "shell",
            "prod",
            "--shell",
            "/bin/sh",
            "--",
            "-c",
            "echo \"$ELHAZ_SESSION $AWS_ACCESS_KEY_ID\"; exit 3",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "prod ASIAFAKE000000000001\n"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<_> = err
        .lines()
        .filter(|l| !l.contains("started the daemon"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("not available for /bin/sh"), "{err}");
}

// ---------------------------------------------------------------------------
// Failed refreshes

/// ELHAZ_REFRESH_AT as the shell has it, still ahead.
fn refresh_at(p: &mut Pty) -> i64 {
    let at: i64 = p.value("$ELHAZ_REFRESH_AT").parse().unwrap();
    assert!(
        at > unix_now(),
        "the test is too slow for its credentials: {at}"
    );
    at
}

fn wait_until_past(at: i64) {
    while unix_now() <= at {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// STS fails (500) and the daemon has died: the hook's `elhaz export` starts a new
/// daemon, which cannot get credentials. One warning line naming the failure; the
/// old credentials stay; the prompt keeps working and does not warn again.
fn sts_failing_while_the_daemon_is_down(sh: Sh) {
    let u = User::new(sh, Duration::from_secs(12));
    u.write_rc(sh, sh.user_rc());
    let mut p = u.elhaz_shell(sh, &[]);
    p.prompt();
    u.sts.set_fault(Fault::Status(500, "InternalFailure"));
    let key = p.value("$AWS_ACCESS_KEY_ID");
    let at = refresh_at(&mut p);
    u.kill_daemon();
    wait_until_past(at);

    let out = p.run_last("false");
    let warnings = elhaz_lines(&out);
    assert_eq!(
        warnings.len(),
        1,
        "{}: one warning line: {out:?}",
        sh.name()
    );
    assert!(
        warnings[0].contains("cannot refresh prod, keeping the current credentials"),
        "{warnings:?}"
    );
    assert!(
        !warnings[0].contains("started the daemon"),
        "the warning names the failure, not the daemon's start: {warnings:?}"
    );
    assert_eq!(p.value(sh.status()), "1", "$? survives a failed refresh");
    assert_eq!(p.value("$AWS_ACCESS_KEY_ID"), key, "old credentials kept");
    assert_eq!(p.value("$ELHAZ_SESSION"), "prod");
    for _ in 0..2 {
        let out = p.run_last("true");
        assert!(elhaz_lines(&out).is_empty(), "warned again: {out:?}");
    }
    assert!(
        p.run("myalias").contains("ALIAS-OK"),
        "the shell still works"
    );
    p.send_line("exit");
    assert_eq!(p.exit_code(), 0);
}

per_shell!(sts_failing_while_the_daemon_is_down);

/// The daemon dies twice. The first time, the hook's refresh starts a new one and
/// gets fresh credentials without a word. The second time no daemon can start (its
/// socket directory is gone, a file in its place): one warning, old credentials kept.
fn daemon_dies_during_refreshes(sh: Sh) {
    let u = User::new(sh, Duration::from_secs(12));
    u.write_rc(sh, sh.user_rc());
    let mut p = u.elhaz_shell(sh, &[]);
    p.prompt();
    let key1 = p.value("$AWS_ACCESS_KEY_ID");
    let at = refresh_at(&mut p);
    u.kill_daemon();
    // What the new daemon fetches lives 8 s, for a quicker second round.
    u.sts.set_lifetime(Duration::from_secs(8));
    wait_until_past(at);
    let out = p.run_last("true");
    assert!(
        elhaz_lines(&out).is_empty(),
        "{}: a restarted daemon is no failure: {out:?}",
        sh.name()
    );
    let key2 = p.value("$AWS_ACCESS_KEY_ID");
    assert_ne!(key2, key1, "refreshed through a new daemon");

    let at = refresh_at(&mut p);
    u.kill_daemon();
    let sock_dir = u.t.socket().parent().unwrap().to_path_buf();
    std::fs::remove_dir_all(&sock_dir).unwrap();
    std::fs::write(&sock_dir, "not a directory").unwrap();
    wait_until_past(at);
    let out = p.run_last("true");
    let warnings = elhaz_lines(&out);
    assert_eq!(
        warnings.len(),
        1,
        "{}: one warning line: {out:?}",
        sh.name()
    );
    // "cannot refresh prod" or, credentials this short being due a second before
    // they end, "the credentials of prod have expired"; with the reason.
    assert!(
        warnings[0].contains(" prod") && warnings[0].contains("daemon"),
        "{warnings:?}"
    );
    assert_eq!(p.value("$AWS_ACCESS_KEY_ID"), key2, "old credentials kept");
    let out = p.run_last("true");
    assert!(elhaz_lines(&out).is_empty(), "warned again: {out:?}");
    std::fs::remove_file(&sock_dir).unwrap();
    p.send_line("exit 3");
    assert_eq!(p.exit_code(), 3);
}

per_shell!(daemon_dies_during_refreshes);

/// The daemon hangs during a refresh: Ctrl-C gets the prompt back, the shell lives
/// on with its credentials, and the next prompts do not hang again.
fn ctrl_c_during_a_refresh(sh: Sh) {
    let u = User::new(sh, Duration::from_secs(3600));
    u.write_rc(sh, sh.user_rc());
    let mut p = u.elhaz_shell(sh, &[]);
    p.prompt();
    let key = p.value("$AWS_ACCESS_KEY_ID");
    let pid = u.t.daemon_pid().expect("a daemon is running");
    kill(pid, nix::sys::signal::Signal::SIGSTOP);
    // A refresh is due (as when its time has come), and the daemon does not answer.
    p.send_line(match sh {
        Sh::Fish => "set -gx ELHAZ_REFRESH_AT 1",
        _ => "export ELHAZ_REFRESH_AT=1",
    });
    assert!(
        wait_until(TIMEOUT, || u.refresh_running()),
        "{}: the hook did not start a refresh",
        sh.name()
    );
    p.send("\x03");
    let interrupted = Instant::now();
    assert_eq!(
        p.value("$AWS_ACCESS_KEY_ID"),
        key,
        "{}: the shell lives on",
        sh.name()
    );
    p.run_last("true");
    assert!(
        interrupted.elapsed() < Duration::from_secs(10),
        "{}: the next prompts hung again ({:?})",
        sh.name(),
        interrupted.elapsed()
    );
    assert!(!u.refresh_running());
    kill(pid, nix::sys::signal::Signal::SIGCONT);
    p.send_line("exit");
    assert_eq!(p.exit_code(), 0);
}

per_shell!(ctrl_c_during_a_refresh);

/// In a `--server` session the endpoint keeps credentials fresh: the hook must not
/// replace it with static keys, even when the user's rc installs the hook. Without
/// the endpoint (the control), the same due hook does call elhaz.
#[test]
fn hook_leaves_server_sessions_alone_in_every_shell() {
    let t = TestEnv::new();
    let recorder = t.dir.path().join("recorder");
    let calls = t.dir.path().join("calls");
    std::fs::write(
        &recorder,
        format!("#!/bin/sh\necho \"$@\" >> {}\nexit 1\n", calls.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        &recorder,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let bin = crate::support::bin();
    for (shell, script) in [
        (
            "bash",
            "eval \"$(ELHAZ_BIN hook bash)\"; _ELHAZ_BIN=RECORDER; export ELHAZ_SESSION=x ELHAZ_REFRESH_AT=1 ELHAZ_EXPIRES_AT=2 TOKEN; _elhaz_hook 2>/dev/null; true",
        ),
        (
            "zsh",
            "eval \"$(ELHAZ_BIN hook zsh)\"; _ELHAZ_BIN=RECORDER; export ELHAZ_SESSION=x ELHAZ_REFRESH_AT=1 ELHAZ_EXPIRES_AT=2 TOKEN; _elhaz_hook 2>/dev/null; true",
        ),
        (
            "fish",
            "ELHAZ_BIN hook fish | source; set -g _ELHAZ_BIN RECORDER; set -gx ELHAZ_SESSION x; set -gx ELHAZ_REFRESH_AT 1; set -gx ELHAZ_EXPIRES_AT 2; TOKEN; _elhaz_hook 2>/dev/null; true",
        ),
    ] {
        for (with_endpoint, expect_call) in [(true, false), (false, true)] {
            let _ = std::fs::remove_file(&calls);
            let token = match (shell, with_endpoint) {
                ("fish", true) => "set -gx AWS_CONTAINER_AUTHORIZATION_TOKEN t",
                ("fish", false) => "true",
                (_, true) => "AWS_CONTAINER_AUTHORIZATION_TOKEN=t",
                (_, false) => "NOTHING=1",
            };
            let script = script
                .replace("ELHAZ_BIN hook", &format!("{} hook", bin.display()))
                .replace("RECORDER", &recorder.display().to_string())
                .replace("TOKEN", token);
            let args: &[&str] = match shell {
                "bash" => &["--norc", "-c"],
                "zsh" => &["-f", "-c"],
                _ => &["--no-config", "-c"],
            };
            let out = t.program(shell).args(args).arg(&script).output().unwrap();
            assert!(
                out.status.success(),
                "{shell}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                calls.exists(),
                expect_call,
                "{shell}, endpoint {with_endpoint}: the hook {} elhaz",
                if calls.exists() {
                    "called"
                } else {
                    "did not call"
                }
            );
        }
    }
}

// ---------------------------------------------------------------------------
// `use --clear` puts back what `use` replaced; source keys stay out of the
// environment; tracing never shows credentials; a hung daemon costs little.

/// The variables a child process sees (exported), `unset` for absent ones.
const PROBED: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "ELHAZ_SESSION",
    "ELHAZ_SOURCE_AWS_ACCESS_KEY_ID",
    "ELHAZ_SOURCE_AWS_SECRET_ACCESS_KEY",
    "ELHAZ_SOURCE_AWS_SESSION_TOKEN",
];

const USER_KEY: &str = "AKIAUSERSOURCE000000";
const USER_SECRET: &str = "user-source-secret-0123";

/// A script printing PROBED as `@<a|b|...>@`.
fn probe_script(dir: &Path) -> PathBuf {
    let p = dir.join("probe");
    let fields: Vec<String> = PROBED.iter().map(|v| format!("${{{v}-unset}}")).collect();
    std::fs::write(
        &p,
        format!("#!/bin/sh\nprintf '@<%s>@\\n' \"{}\"\n", fields.join("|")),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p
}

fn probed(p: &mut Pty, cmd: &str) -> Vec<String> {
    let out = p.run(cmd);
    grab(&out)
        .unwrap_or_else(|| p.fail(&format!("no probe output from {cmd}")))
        .split('|')
        .map(str::to_string)
        .collect()
}

/// Runs `elhaz ARGS` through the shell's `elhaz` function with the binary replaced by
/// `probe`: what the binary is given.
fn through_function(sh: Sh, probe: &Path) -> String {
    let probe = probe.display();
    match sh {
        Sh::Fish => format!(
            "set -g _o $_ELHAZ_BIN; set -g _ELHAZ_BIN {probe}; elhaz whoami; set -g _ELHAZ_BIN $_o"
        ),
        _ => format!("_o=$_ELHAZ_BIN; _ELHAZ_BIN={probe}; elhaz whoami; _ELHAZ_BIN=$_o"),
    }
}

/// A user with source keys, a region and a profile exported in the shell, and
/// configs whose sessions set other regions.
fn user_with_exported_source(sh: Sh) -> User {
    let mut u = User::new(sh, Duration::from_secs(3600));
    u.t.set("AWS_ACCESS_KEY_ID", USER_KEY)
        .set("AWS_SECRET_ACCESS_KEY", USER_SECRET)
        .set("AWS_REGION", "eu-north-1")
        .set("AWS_PROFILE", "myprof");
    u.t.write_aws_config("[profile myprof]\nregion = eu-north-1\n");
    u.t.write_config(
        "prod",
        &format!("AssumeRole:\n  RoleArn: {ROLE_ARN}\nSession:\n  region_name: eu-west-1\n"),
    );
    u.t.write_config(
        "dev",
        &format!("AssumeRole:\n  RoleArn: {ROLE_ARN}\nSession:\n  region_name: ap-southeast-2\n"),
    );
    u.write_rc(sh, &format!("{}{}", sh.user_rc(), sh.install_line()));
    u
}

fn use_clear_restores_exactly(sh: Sh) {
    let u = user_with_exported_source(sh);
    let probe = probe_script(u.t.dir.path());
    let probe_cmd = probe.display().to_string();
    let mut p = u.plain_shell(sh);
    p.prompt();
    let before = probed(&mut p, &probe_cmd);
    assert_eq!(
        before,
        [
            USER_KEY,
            USER_SECRET,
            "unset",
            "eu-north-1",
            "unset",
            "myprof",
            "unset",
            "unset",
            "unset",
            "unset",
            "unset"
        ],
        "{}: the starting state",
        sh.name()
    );

    p.run_last("elhaz use prod");
    assert_eq!(p.value(sh.status()), "0");
    let prod = probed(&mut p, &probe_cmd);
    assert!(prod[0].starts_with("ASIAFAKE"), "{prod:?}");
    assert_eq!(prod[3], "eu-west-1", "{prod:?}");
    assert_eq!(prod[5], "unset", "use unsets AWS_PROFILE: {prod:?}");
    // The user's source keys are in no exported variable while the session is on...
    let env = p.run("env");
    assert!(
        !env.contains(USER_SECRET),
        "{}: the source secret is exported: {env}",
        sh.name()
    );
    // ...but the binary gets them, for this one command.
    let given = probed(&mut p, &through_function(sh, &probe));
    assert_eq!(
        given[8..],
        [USER_KEY, USER_SECRET, ""],
        "{}: what the binary is given",
        sh.name()
    );

    p.run_last("elhaz use dev");
    assert_eq!(p.value(sh.status()), "0");
    let dev = probed(&mut p, &probe_cmd);
    assert!(
        dev[0].starts_with("ASIAFAKE") && dev[0] != prod[0],
        "{dev:?}"
    );
    assert_eq!(dev[3], "ap-southeast-2", "{dev:?}");
    let given = probed(&mut p, &through_function(sh, &probe));
    assert_eq!(given[8..], [USER_KEY, USER_SECRET, ""], "{}", sh.name());

    p.run_last("elhaz use --clear");
    assert_eq!(p.value(sh.status()), "0");
    let after = probed(&mut p, &probe_cmd);
    assert_eq!(
        after,
        before,
        "{}: use --clear after use prod, use dev",
        sh.name()
    );
    // Back to no session: the binary is given nothing extra.
    let given = probed(&mut p, &through_function(sh, &probe));
    assert_eq!(given[8..], ["unset", "unset", "unset"], "{}", sh.name());

    // And again from there: a new first `use` saves the state anew.
    p.run_last("elhaz use dev");
    p.run_last("elhaz use --clear");
    assert_eq!(probed(&mut p, &probe_cmd), before, "{}", sh.name());
    p.send_line("exit");
    assert_eq!(p.exit_code(), 0);
}

per_shell!(use_clear_restores_exactly);

/// `elhaz shell` hands the caller's source keys to the new shell's hook without
/// exporting them or putting them in argv.
fn elhaz_shell_keeps_the_source_keys_for_its_hook(sh: Sh) {
    let u = user_with_exported_source(sh);
    u.write_rc(sh, sh.user_rc());
    let probe = probe_script(u.t.dir.path());
    let mut p = u.elhaz_shell(sh, &[]);
    p.prompt();
    let pid = p.value(sh.pid_var());
    let env = p.run("env");
    assert!(!env.contains(USER_SECRET), "{}: exported: {env}", sh.name());
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains(USER_SECRET),
        "{}: in argv",
        sh.name()
    );
    let given = probed(&mut p, &through_function(sh, &probe));
    assert_eq!(
        given[8..],
        [USER_KEY, USER_SECRET, ""],
        "{}: what the binary is given",
        sh.name()
    );
    // `use` here, then `use --clear`, comes back to this shell's own session; the
    // binary is given the source keys all along.
    let probe_cmd = probe.display().to_string();
    let session = probed(&mut p, &probe_cmd);
    assert_eq!(session[7], "prod");
    p.run_last("elhaz use dev");
    assert_eq!(p.value(sh.status()), "0");
    assert_eq!(p.value("$ELHAZ_SESSION"), "dev");
    let given = probed(&mut p, &through_function(sh, &probe));
    assert_eq!(given[8..], [USER_KEY, USER_SECRET, ""], "{}", sh.name());
    p.run_last("elhaz use --clear");
    assert_eq!(
        probed(&mut p, &probe_cmd),
        session,
        "{}: back to the shell's own session",
        sh.name()
    );
    let given = probed(&mut p, &through_function(sh, &probe));
    assert_eq!(given[8..], [USER_KEY, USER_SECRET, ""], "{}", sh.name());
    // A command elhaz starts from here gets no copy of them either.
    let env = p.run("elhaz exec dev -- env");
    assert!(env.contains("ELHAZ_SESSION=dev"), "{}: {env}", sh.name());
    assert!(
        !env.contains(USER_SECRET),
        "{}: the source secret reached a child: {env}",
        sh.name()
    );
    for dir in ["tmp", "run"] {
        for e in std::fs::read_dir(u.t.dir.path().join(dir)).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                for f in std::fs::read_dir(&path).unwrap() {
                    let text = std::fs::read(f.unwrap().path()).unwrap_or_default();
                    assert!(
                        !String::from_utf8_lossy(&text).contains(USER_SECRET),
                        "{}: in a file under {}",
                        sh.name(),
                        path.display()
                    );
                }
            }
        }
    }
    p.send_line("exit");
    assert_eq!(p.exit_code(), 0);
}

per_shell!(elhaz_shell_keeps_the_source_keys_for_its_hook);

/// Turns tracing on, and the command that says whether it is still on (`@<on>@`).
fn tracing(sh: Sh) -> (&'static str, &'static str) {
    match sh {
        Sh::Bash => ("set -x", "case $- in *x*) echo @'<on>@';; esac"),
        Sh::Zsh => ("setopt xtrace", "[[ -o xtrace ]] && echo @'<on>@'"),
        Sh::Fish => (
            "set -g fish_trace 1",
            "set -q fish_trace; and echo @'<on>@'",
        ),
    }
}

/// Makes the next prompt refresh.
fn due_now(sh: Sh) -> &'static str {
    match sh {
        Sh::Fish => "set -gx ELHAZ_REFRESH_AT 1",
        _ => "export ELHAZ_REFRESH_AT=1",
    }
}

fn tracing_never_shows_credentials(sh: Sh) {
    let u = user_with_exported_source(sh);
    let mut p = u.plain_shell(sh);
    p.prompt();
    let (on, check) = tracing(sh);
    p.run_last(on);
    p.run_last("elhaz use prod");
    let key1 = p.value("$AWS_ACCESS_KEY_ID");
    assert!(key1.starts_with("ASIAFAKE"), "{}: {key1}", sh.name());
    // The prompt after this refreshes (the same credentials come back, as they are
    // far from expiry, and are evaluated all the same).
    p.run_last(due_now(sh));
    let at = p.value("$ELHAZ_REFRESH_AT");
    assert!(
        at.parse::<i64>().unwrap() > unix_now(),
        "{}: the prompt refreshed: {at}",
        sh.name()
    );
    assert_eq!(
        grab(&p.run(check)).as_deref(),
        Some("on"),
        "{}: tracing is still on",
        sh.name()
    );
    p.run_last("elhaz use --clear");
    assert_eq!(
        grab(&p.run(check)).as_deref(),
        Some("on"),
        "{}: tracing is still on after use --clear",
        sh.name()
    );
    for secret in ["fakesecret", "faketoken", USER_SECRET] {
        if p.transcript.contains(secret) {
            p.fail(&format!("{secret} was traced"));
        }
    }
    // The trace did run, through the hook's refresh (the user never types its name).
    // The trace did run: through `use` and (fish traces no event handler) the hook.
    if !p.transcript.contains("> elhaz use prod") && !p.transcript.contains("+ elhaz use prod") {
        p.fail("`elhaz use` was not traced");
    }
    if sh != Sh::Fish && !p.transcript.contains("_elhaz_hook") {
        p.fail("the hook was not traced");
    }
    p.send_line("exit");
    assert_eq!(p.exit_code(), 0);
}

per_shell!(tracing_never_shows_credentials);

/// Continues a stopped process when dropped (also when the test fails).
struct Continue(u32);

impl Drop for Continue {
    fn drop(&mut self) {
        kill(self.0, nix::sys::signal::Signal::SIGCONT);
    }
}

fn a_stopped_daemon_costs_a_prompt_little(sh: Sh) {
    let u = User::new(sh, Duration::from_secs(3600));
    u.write_rc(sh, sh.user_rc());
    let mut p = u.elhaz_shell(sh, &[]);
    p.prompt();
    let pid = u.t.daemon_pid().expect("a daemon is running");
    let _cont = Continue(pid);
    kill(pid, nix::sys::signal::Signal::SIGSTOP);
    // The prompt after this one is due for refresh.
    let started = Instant::now();
    let out = p.run_last(due_now(sh));
    let took = started.elapsed();
    eprintln!(
        "{}: the prompt with a stopped daemon took {took:?}",
        sh.name()
    );
    assert!(
        took <= Duration::from_secs(3),
        "{}: a stopped daemon held the prompt {took:?}",
        sh.name()
    );
    let warnings = elhaz_lines(&out);
    assert_eq!(warnings.len(), 1, "{}: one warning: {out:?}", sh.name());
    assert!(
        warnings[0].contains("cannot refresh prod"),
        "{}: {warnings:?}",
        sh.name()
    );
    // The next prompt does not try again at once.
    let started = Instant::now();
    let out = p.run_last("true");
    assert!(elhaz_lines(&out).is_empty(), "warned again: {out:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    p.send_line("exit");
    assert_eq!(p.exit_code(), 0);
}

per_shell!(a_stopped_daemon_costs_a_prompt_little);
