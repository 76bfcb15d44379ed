//! `elhaz use NAME` / `elhaz use --clear`: switches the current shell. The hook's
//! `elhaz` function calls this with --eval and evals what it prints; run directly,
//! it explains how to install the hook.
//!
//! It owns the command; the variables are `crate::env`'s and their shell syntax
//! `crate::shell`'s. The previous values are kept in the shell's own unexported
//! variables (the binary cannot see those), by code this prints: save these
//! variables first, or put them back (else unset them) for `--clear`; and let the
//! prompt try a refresh again at once.

use super::Context;
use crate::cli::UseArgs;
use crate::context;
use crate::env::{Carried, Delivery, SessionEnv, render_clear, use_changes};
use crate::error::{Error, Result};
use crate::shell::{RETRY_AT, ShellKind, end_line, set_global, stash, unstash_or};

pub(crate) fn run(args: UseArgs, ctx: &Context) -> Result<i32> {
    if !args.eval {
        return Err(Error::usage(
            "`elhaz use` needs the shell hook, which is not loaded in this shell",
        )
        .with_hint(
            "add to your rc file: eval \"$(elhaz hook bash)\" (zsh: eval \"$(elhaz hook zsh)\"; fish: elhaz hook fish | source), then open a new shell",
        ));
    }
    let shell = args.shell.unwrap_or_else(ShellKind::from_env);
    // Outside a session the keys in the environment are the source (see `render`).
    let outside = ctx
        .caller
        .outer_session
        .as_deref()
        .is_none_or(str::is_empty);
    if args.clear {
        print!("{}", render(shell, None, outside));
        return Ok(0);
    }
    let name = ctx.name(args.name.get())?;
    let served = ctx.credentials(&name, 0)?;
    let env = SessionEnv::build(
        &name,
        Delivery::Static(&served.credentials),
        served.region.as_deref(),
        &ctx.policy,
        Carried::of(&ctx.caller, &served),
    );
    print!("{}", render(shell, Some(&env), outside));
    Ok(0)
}

/// What `--eval` prints: `env` applied (`None`: cleared). In the shells with a hook,
/// the hook's stash saves first what it changes (or, to clear, puts that back), and
/// the prompt may refresh the new session as soon as it is due. `outside`: this
/// process runs outside an elhaz session.
pub(crate) fn render(shell: ShellKind, env: Option<&SessionEnv>, outside: bool) -> String {
    let code = match env {
        Some(env) => env.render(shell),
        None => render_clear(shell),
    };
    if shell == ShellKind::Posix {
        return code;
    }
    // Outside a session the keys in the environment are the source: the stash keeps
    // them for the binary (they are replaced, and a source key is never exported).
    let keys = if outside { context::SECRET } else { &[] };
    let code = match env {
        // A NAME without a region: the shell's own region, as before the first `use`
        // (not the one the last NAME or pin set).
        Some(env) if !env.set.iter().any(|(k, _)| *k == "AWS_REGION") => {
            stash(shell, &use_changes(), keys)
                + &code
                + &crate::shell::from_stash(shell, &["AWS_REGION", "AWS_DEFAULT_REGION"])
        }
        Some(_) => stash(shell, &use_changes(), keys) + &code,
        None => unstash_or(shell, &use_changes(), context::SECRET, &code),
    };
    code + &set_global(shell, RETRY_AT, "0") + end_line(shell)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Credentials;

    /// The variables a piece of bash code sets or unsets.
    fn touched(code: &str) -> Vec<&str> {
        code.split([';', '\n', '{', '}'])
            .filter_map(|s| {
                let s = s.trim();
                s.strip_prefix("unset ")
                    .or_else(|| s.strip_prefix("export "))
                    .map(|v| v.split('=').next().unwrap_or_default())
            })
            .collect()
    }

    /// `use --clear` can put back only what the stash saved: the first `use` saves
    /// every variable that any `use` (with or without a region) or `use --clear` sets
    /// or unsets, before the variables change, and `--clear` restores each of them.
    #[test]
    fn use_saves_every_variable_it_or_clear_changes_before_changing_it() {
        let at = time::OffsetDateTime::now_utc() + time::Duration::HOUR;
        let c = Credentials::new("AKIANEW", "s", "t", at, at - time::Duration::HOUR);
        let policy = crate::credentials::policy::Policy::default();
        let source = context::SourceContext::from_process();
        let carried = Carried {
            source: &source,
            context_ref: None,
        };
        let stashed = use_changes();
        let ours = |code: &str| -> Vec<String> {
            touched(code)
                .into_iter()
                .filter(|v| !v.starts_with("_ELHAZ"))
                .map(str::to_string)
                .collect()
        };
        for region in [None, Some("eu-west-1")] {
            let env = SessionEnv::build("prod", Delivery::Static(&c), region, &policy, carried);
            let code = render(ShellKind::Bash, Some(&env), true);
            let (stash, rest) = code.split_at(code.find("\nfi\nunset ").unwrap() + 4);
            let saved: Vec<&str> = stash
                .lines()
                .filter_map(|l| l.strip_prefix("unset _ELHAZ_OLD_")?.split(';').next())
                .collect();
            assert_eq!(saved, stashed, "{stash}");
            assert!(ours(rest).len() > 10, "{rest}");
            for v in ours(rest) {
                assert!(stashed.contains(&v.as_str()), "use does not save {v}");
            }
        }
        let clear = render(ShellKind::Bash, None, true);
        let (restore, unset) = clear.split_at(clear.find("\nelse\n").unwrap());
        for v in &stashed {
            assert!(
                restore.contains(&format!("export {v}=\"$_ELHAZ_OLD_{v}\"; else unset {v};")),
                "clear does not restore {v}"
            );
        }
        for v in ours(unset) {
            assert!(
                stashed.contains(&v.as_str()),
                "use does not save {v}, which clear unsets"
            );
        }
        // Each the binary may name is one the hooks can save (a plain name).
        for v in stashed {
            assert!(
                v.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{v}"
            );
        }
    }

    /// What `use` and `use --clear` print is code each shell reads without error.
    #[test]
    fn the_code_use_prints_parses_in_each_shell() {
        let at = time::OffsetDateTime::now_utc() + time::Duration::HOUR;
        let c = Credentials::new("AKIANEW", "s'x", "t", at, at - time::Duration::HOUR);
        let policy = crate::credentials::policy::Policy::default();
        let source = context::SourceContext::from_process();
        let carried = Carried {
            source: &source,
            context_ref: None,
        };
        let region = Some("eu-west-1");
        let env = SessionEnv::build("prod", Delivery::Static(&c), region, &policy, carried);
        for (shell, program, args) in [
            (ShellKind::Bash, "bash", &["-n"][..]),
            (ShellKind::Zsh, "zsh", &["-n"][..]),
            (ShellKind::Fish, "fish", &["--no-execute"][..]),
        ] {
            let keys = context::SECRET;
            let code = [
                stash(shell, &use_changes(), keys),
                render(shell, Some(&env), true),
                render(shell, None, true),
            ]
            .concat();
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("use");
            std::fs::write(&file, &code).unwrap();
            let out = std::process::Command::new(program)
                .args(args)
                .arg(&file)
                .output()
                .unwrap_or_else(|e| panic!("{program}: {e}"));
            assert!(
                out.status.success(),
                "{program}: {}\n{code}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn a_shell_without_the_hook_gets_only_the_variables() {
        let clear = render(ShellKind::Posix, None, true);
        assert_eq!(clear, render_clear(ShellKind::Posix));
        for shell in [ShellKind::Bash, ShellKind::Zsh, ShellKind::Fish] {
            assert!(
                render(shell, None, true).contains("_ELHAZ_RETRY_AT"),
                "{shell:?}"
            );
        }
    }
}
