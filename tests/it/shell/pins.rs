//! Project pins in the hooks: the shell follows `cd` into and out of trusted pins'
//! trees, under a real pty, in bash, zsh and fish. Every switch is checked on who
//! signed (the shell's key is the one STS issued for the pin's role, from the user's
//! source key), and strace shows that unchanged prompts and `cd`s within one tree
//! start no process.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{SOURCE_KEY, Sh, TIMEOUT, User, block_on, elhaz_lines, processes_started};
use crate::support::*;

/// `~/src/DIR` with a pin naming `name` (and sub-directories `a/b`); allowed when
/// `allow`.
fn project(u: &User, dir: &str, body: &str, allow: bool) -> PathBuf {
    let root = u.t.home.join("src").join(dir);
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    std::fs::write(root.join(".elhaz.yaml"), body).unwrap();
    if allow {
        let out = u.t.cmd().current_dir(&root).arg("allow").output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    root
}

/// The user's own shell, interactive, under `strace -f`.
fn plain_shell_traced(u: &User, sh: Sh, trace: &Path) -> Pty {
    let strace = which_on_path("strace").expect("strace is installed");
    let mut cmd = u.t.program(strace);
    cmd.args(["-f", "-qq", "-e", "trace=execve,clone,clone3,fork,vfork"])
        .args(["-e", "signal=none", "-o"])
        .arg(trace)
        .arg(sh.path())
        .arg("-i")
        .current_dir(&u.t.home);
    Pty::spawn(cmd, &format!("strace {}", sh.name()), 300, TIMEOUT)
}

/// The role and signer of the last AssumeRole, and the key it issued.
fn last_assume(u: &User) -> (String, String, String) {
    let log = block_on(u.sts.log());
    let c = log
        .iter()
        .rev()
        .find(|c| c.action == "AssumeRole")
        .expect("an AssumeRole");
    (c.role.clone(), c.signer.clone(), c.issued.clone())
}

fn export(sh: Sh, k: &str, v: &str) -> String {
    match sh {
        Sh::Fish => format!("set -gx {k} {v}"),
        _ => format!("export {k}={v}"),
    }
}

/// What elhaz said, without what zsh and fish draw before a line that follows a
/// partial one.
fn said(out: &str) -> Vec<String> {
    elhaz_lines(out)
        .into_iter()
        .map(|l| l[l.find("elhaz:").unwrap_or_default()..].to_string())
        .collect()
}

/// A user with configs prod (111111111111/Prod) and dev (222222222222/Dev).
fn prod_and_dev(sh: Sh) -> User {
    let u = User::new(sh, Duration::from_secs(3600));
    u.t.write_config(
        "prod",
        "AssumeRole:\n  RoleArn: arn:aws:iam::111111111111:role/Prod\n",
    );
    u.t.write_config(
        "dev",
        "AssumeRole:\n  RoleArn: arn:aws:iam::222222222222:role/Dev\n",
    );
    u
}

const SEEN: &[&str] = &["$ELHAZ_SESSION", "$AWS_REGION", "$AWS_ACCESS_KEY_ID"];

fn the_shell_follows_cd_into_and_out_of_pins(sh: Sh) {
    let u = prod_and_dev(sh);
    let prod = project(&u, "prod-infra", "name: prod\nregion: eu-west-3\n", true);
    let dev = project(&u, "dev-app", "name: dev\n", true);
    let new = project(&u, "new", "name: prod\n", false);
    u.write_rc(sh, &format!("{}{}", sh.user_rc(), sh.install_line()));
    u.t.start_daemon();
    let trace = u.t.dir.path().join("strace.log");
    let mut p = plain_shell_traced(&u, sh, &trace);
    p.prompt();
    p.run_last(&export(sh, "AWS_REGION", "ca-central-1"));
    let before = p.values(SEEN);
    assert_eq!(before, ["", "ca-central-1", ""]);

    // Entering a trusted pin's tree switches, as `use prod` would.
    let out = p.run_last(&format!("cd {}", prod.join("a").display()));
    assert_eq!(
        said(&out),
        ["elhaz: using prod from ~/src/prod-infra/.elhaz.yaml"],
        "{}: {out}",
        sh.name()
    );
    let v = p.values(SEEN);
    let (role, signer, issued) = last_assume(&u);
    assert_eq!((role.as_str(), signer.as_str()), ("Prod", SOURCE_KEY));
    assert_eq!(v, ["prod", "eu-west-3", issued.as_str()], "{}", sh.name());

    // Unchanged prompts and cds within the tree: no process, no STS call.
    let calls = u.assume_role_calls();
    let n = processes_started(&trace).len();
    for i in 0..10 {
        let blank = "\n".repeat(99);
        p.send_line(&format!("{blank}echo batch{i}"));
        p.expect(&format!("batch{i}\r\n"));
        p.prompt();
    }
    for i in 0..50 {
        p.send_line(&format!("cd {}", prod.join("a/b").display()));
        p.prompt();
        p.send_line(if i % 2 == 0 { "cd .." } else { "cd ../.." });
        p.prompt();
    }
    p.run_last("true");
    let after = processes_started(&trace);
    assert_eq!(
        after.len(),
        n,
        "{}: 1,000 prompts and 100 cds in one tree started {:?}",
        sh.name(),
        &after[n..]
    );
    assert_eq!(u.assume_role_calls(), calls);
    assert_eq!(p.value("$ELHAZ_SESSION"), "prod");

    // From one tree straight into another: one call of the binary.
    let n = processes_started(&trace).len();
    let out = p.run_last(&format!("cd {}", dev.join("a/b").display()));
    let bin = format!("execve(\"{}\"", bin().display());
    let calls: Vec<String> = processes_started(&trace)[n..]
        .iter()
        .filter(|l| l.contains(&bin))
        .cloned()
        .collect();
    assert_eq!(calls.len(), 1, "{}: {calls:?}", sh.name());
    assert!(calls[0].contains("\"--pin\""), "{calls:?}");
    assert_eq!(
        said(&out),
        ["elhaz: using dev from ~/src/dev-app/.elhaz.yaml"]
    );
    let (role, signer, issued) = last_assume(&u);
    assert_eq!((role.as_str(), signer.as_str()), ("Dev", SOURCE_KEY));
    assert_eq!(p.value("$AWS_ACCESS_KEY_ID"), issued);
    assert_eq!(p.value("$ELHAZ_SESSION"), "dev");

    // Leaving restores exactly what was there before.
    let out = p.run_last("cd ~");
    assert!(said(&out).is_empty(), "{out}");
    assert_eq!(p.values(SEEN), before, "{}", sh.name());

    // An untrusted pin: one warning with the command, no switch, not again in its tree.
    let out = p.run_last(&format!("cd {}", new.display()));
    let wanted = format!(
        "elhaz: ~/src/new/.elhaz.yaml wants prod (new); run: elhaz allow {}",
        new.display()
    );
    assert_eq!(said(&out), [wanted], "{}", sh.name());
    assert_eq!(p.values(SEEN), before);
    let out = p.run_last("cd a");
    assert!(said(&out).is_empty(), "{out}");

    // An explicit `use` wins inside the tree, until the user leaves it.
    p.run_last(&format!("cd {}", prod.display()));
    assert_eq!(p.value("$ELHAZ_SESSION"), "prod");
    p.run_last("elhaz use dev");
    assert_eq!(p.value("$ELHAZ_SESSION"), "dev");
    let n = processes_started(&trace).len();
    p.run_last("cd a/b");
    assert_eq!(processes_started(&trace).len(), n, "a cd within the tree");
    assert_eq!(p.value("$ELHAZ_SESSION"), "dev");
    p.run_last("cd ~");
    assert_eq!(p.values(SEEN), before, "{}", sh.name());

    // A pin edited since it was allowed is not followed: a warning, no switch.
    std::fs::write(prod.join(".elhaz.yaml"), "name: dev\n").unwrap();
    let calls = u.assume_role_calls();
    let out = p.run_last(&format!("cd {}", prod.join("a").display()));
    let wanted = format!(
        "elhaz: ~/src/prod-infra/.elhaz.yaml wants dev (changed since allowed); run: elhaz allow {}",
        prod.display()
    );
    assert_eq!(said(&out), [wanted], "{}", sh.name());
    assert_eq!(p.values(SEEN), before, "{}", sh.name());
    assert_eq!(u.assume_role_calls(), calls, "{}: STS was asked", sh.name());

    p.send_line("exit");
    assert_eq!(p.exit_code(), 0);
}

per_shell!(the_shell_follows_cd_into_and_out_of_pins);

/// The strict modes and tracing a user may have on, in their rc file.
fn strict(sh: Sh) -> &'static str {
    match sh {
        Sh::Bash => "set -euo pipefail\nset -x\n",
        Sh::Zsh => "setopt errexit nounset pipefail\nsetopt xtrace\n",
        Sh::Fish => "set -g fish_trace 1\n",
    }
}

/// With errexit, nounset, pipefail and tracing on, and source keys exported: the
/// switches happen, the shell survives each, leaving restores every variable, no
/// secret is traced, and tracing is still on.
fn pins_under_strict_modes_and_tracing(sh: Sh) {
    let u = super::user_with_exported_source(sh);
    u.t.write_config(
        "prod",
        "AssumeRole:\n  RoleArn: arn:aws:iam::111111111111:role/Prod\n",
    );
    let prod = project(&u, "prod", "name: prod\nregion: eu-west-3\n", true);
    let new = project(&u, "new", "name: prod\n", false);
    u.write_rc(
        sh,
        &format!("{}{}{}", sh.user_rc(), sh.install_line(), strict(sh)),
    );
    let mut p = u.plain_shell(sh);
    p.prompt();
    // No secret is printed before the trace is checked: the probe comes last.
    let all = ["$AWS_ACCESS_KEY_ID", "$AWS_PROFILE", "$AWS_REGION"];
    let before = p.values(&all);
    assert_eq!(before, [super::USER_KEY, "myprof", "eu-north-1"]);
    let out = p.run_last(&format!("cd {}", prod.join("a").display()));
    assert!(
        said(&out).contains(&"elhaz: using prod from ~/src/prod/.elhaz.yaml".to_string()),
        "{}: {out}",
        sh.name()
    );
    let (role, signer, issued) = last_assume(&u);
    assert_eq!((role.as_str(), signer.as_str()), ("Prod", super::USER_KEY));
    assert_eq!(
        p.values(&["$AWS_ACCESS_KEY_ID", "$AWS_REGION"]),
        [issued.as_str(), "eu-west-3"]
    );
    p.run_last("cd b");
    p.run_last(&format!("cd {}", new.display()));
    assert_eq!(p.values(&all), before, "{}: restored", sh.name());
    p.run_last("cd ~");
    let (_, check) = super::tracing(sh);
    assert_eq!(
        super::grab(&p.run(check)).as_deref(),
        Some("on"),
        "{}",
        sh.name()
    );
    for secret in ["fakesecret", "faketoken", super::USER_SECRET] {
        if p.transcript.contains(secret) {
            p.fail(&format!("{secret} was traced"));
        }
    }
    if !p.transcript.contains("_elhaz_pin") && sh != Sh::Fish {
        p.fail("the pin walk was not traced");
    }
    let probe = super::probe_script(u.t.dir.path());
    let seen = super::probed(&mut p, &probe.display().to_string());
    assert_eq!(
        seen,
        [
            super::USER_KEY,
            super::USER_SECRET,
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
        "{}: exactly what was there before",
        sh.name()
    );
    p.send_line("exit");
    assert_eq!(p.exit_code(), 0, "{}: the shell survived", sh.name());
}

per_shell!(pins_under_strict_modes_and_tracing);

/// An `elhaz shell prod` session is not switched by pins: one warning when a pin
/// disagrees, then nothing in that tree.
fn elhaz_shell_sessions_are_not_switched(sh: Sh) {
    let u = User::new(sh, Duration::from_secs(3600));
    let dev = project(&u, "dev", "name: dev\n", true);
    let same = project(&u, "same", "name: prod\n", true);
    u.write_rc(sh, sh.user_rc());
    let mut p = u.elhaz_shell(sh, &[]);
    p.prompt();
    let key = p.value("$AWS_ACCESS_KEY_ID");
    let out = p.run_last(&format!("cd {}", dev.display()));
    assert_eq!(
        said(&out),
        ["elhaz: ~/src/dev/.elhaz.yaml wants dev, but this is elhaz shell prod: not switched"],
        "{}",
        sh.name()
    );
    assert_eq!(
        p.values(&["$ELHAZ_SESSION", "$AWS_ACCESS_KEY_ID"]),
        ["prod", key.as_str()]
    );
    let out = p.run_last("cd a/b");
    assert!(said(&out).is_empty(), "{out}");
    let out = p.run_last(&format!("cd {}", same.display()));
    assert!(said(&out).is_empty(), "{out}");
    assert_eq!(
        p.values(&["$ELHAZ_SESSION", "$AWS_ACCESS_KEY_ID"]),
        ["prod", key.as_str()]
    );
    p.send_line("exit");
    assert_eq!(p.exit_code(), 0);
}

per_shell!(elhaz_shell_sessions_are_not_switched);

/// The nearest pin wins, and a tree reached through a symbolic link is the same
/// allowed pin.
fn nested_and_symlinked_pins(sh: Sh) {
    let u = prod_and_dev(sh);
    let mono = project(&u, "mono", "name: prod\n", true);
    let svc = mono.join("a");
    std::fs::write(svc.join(".elhaz.yaml"), "name: dev\n").unwrap();
    let allowed = u.t.cmd().current_dir(&svc).arg("allow").output().unwrap();
    assert!(allowed.status.success(), "{}", text(&allowed.stderr));
    let link = u.t.home.join("svc-link");
    std::os::unix::fs::symlink(&svc, &link).unwrap();
    u.write_rc(sh, &format!("{}{}", sh.user_rc(), sh.install_line()));
    let mut p = u.plain_shell(sh);
    p.prompt();
    let steps: [(String, &str, Option<&str>); 5] = [
        (
            format!("cd {}", mono.display()),
            "prod",
            Some("~/src/mono/.elhaz.yaml"),
        ),
        ("cd a/b".into(), "dev", Some("~/src/mono/a/.elhaz.yaml")),
        ("cd ../..".into(), "prod", Some("~/src/mono/.elhaz.yaml")),
        (
            format!("cd {}", link.display()),
            "dev",
            Some("~/svc-link/.elhaz.yaml"),
        ),
        ("cd ~".into(), "", None),
    ];
    for (cmd, session, from) in steps {
        let out = p.run_last(&cmd);
        let wanted: Vec<String> = from
            .map(|f| format!("elhaz: using {session} from {f}"))
            .into_iter()
            .collect();
        assert_eq!(said(&out), wanted, "{}: {cmd}", sh.name());
        assert_eq!(p.value("$ELHAZ_SESSION"), session, "{}: {cmd}", sh.name());
        if !session.is_empty() {
            let role = if session == "prod" { "Prod" } else { "Dev" };
            let key = p.value("$AWS_ACCESS_KEY_ID");
            let log = block_on(u.sts.log());
            let issued = log
                .iter()
                .find(|c| c.issued == key)
                .expect("a key STS issued");
            assert_eq!(
                (issued.role.as_str(), issued.signer.as_str()),
                (role, SOURCE_KEY)
            );
        }
    }
    p.send_line("exit");
    assert_eq!(p.exit_code(), 0);
}

per_shell!(nested_and_symlinked_pins);

/// `elhaz use dev` outside any pin's tree, then into prod's tree and out again: the
/// shell goes back to dev (signed as Dev from the user's source key), not to what it
/// had before `use`; `use --clear` inside the tree ends that, and leaving then clears.
fn leaving_the_pins_goes_back_to_the_name_used_before(sh: Sh) {
    let u = prod_and_dev(sh);
    let prod = project(&u, "prod-infra", "name: prod\nregion: eu-west-3\n", true);
    u.write_rc(sh, &format!("{}{}", sh.user_rc(), sh.install_line()));
    u.t.start_daemon();
    let trace = u.t.dir.path().join("strace.log");
    let mut p = plain_shell_traced(&u, sh, &trace);
    p.prompt();
    let before = p.values(SEEN);

    p.run_last("elhaz use dev");
    let (role, signer, dev_key) = last_assume(&u);
    assert_eq!((role.as_str(), signer.as_str()), ("Dev", SOURCE_KEY));
    let with_dev = p.values(SEEN);
    assert_eq!(with_dev[0], "dev");
    assert_eq!(with_dev[2], dev_key);

    p.run_last(&format!("cd {}", prod.join("a").display()));
    let (role, signer, prod_key) = last_assume(&u);
    assert_eq!((role.as_str(), signer.as_str()), ("Prod", SOURCE_KEY));
    assert_eq!(p.values(SEEN), ["prod", "eu-west-3", prod_key.as_str()]);

    let out = p.run_last("cd ~");
    assert!(said(&out).is_empty(), "{}: {out}", sh.name());
    assert_eq!(p.values(SEEN), with_dev, "{}: not back to dev", sh.name());

    // Twice, to be sure the first return left nothing behind; then --clear in the
    // tree ends dev for good.
    p.run_last(&format!("cd {}", prod.display()));
    assert_eq!(p.value("$ELHAZ_SESSION"), "prod");
    p.run_last("cd ~");
    assert_eq!(p.values(SEEN), with_dev, "{}", sh.name());
    p.run_last(&format!("cd {}", prod.display()));
    p.run_last("elhaz use --clear");
    p.run_last("cd ~");
    assert_eq!(p.values(SEEN), before, "{}", sh.name());

    p.send_line("exit");
    assert_eq!(p.exit_code(), 0);
}

per_shell!(leaving_the_pins_goes_back_to_the_name_used_before);
