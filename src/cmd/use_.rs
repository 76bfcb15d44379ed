//! `elhaz use NAME` / `elhaz use --clear`: switches the current shell. The hook's
//! `elhaz` function calls this with --eval and evals what it prints; run directly,
//! it explains how to install the hook.
//!
//! It owns the command; the variables are `crate::env`'s and their shell syntax
//! `crate::shell`'s. The stash of previous values lives in the hooks (the binary
//! cannot see a shell's unexported variables); what this prints drives it: save
//! these variables first, or put them back (else unset them) for `--clear`, and
//! let the prompt try a refresh again at once.

use super::Context;
use crate::cli::UseArgs;
use crate::env::{Delivery, SessionEnv, render_clear, use_changes};
use crate::error::{Error, Result};
use crate::shell::{RETRY_AT, ShellKind, end_line, set_global, stash_line, unstash_or};

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
    if args.clear {
        print!("{}", render(shell, None));
        return Ok(0);
    }
    let name = ctx.name(args.name.get())?;
    let served = ctx.credentials(&name, 0)?;
    let env = SessionEnv::build(
        &name,
        Delivery::Static(&served.credentials),
        served.region.as_deref(),
        &ctx.policy,
    );
    print!("{}", render(shell, Some(&env)));
    Ok(0)
}

/// What `--eval` prints: `env` applied (`None`: cleared). In the shells with a hook,
/// the hook's stash saves first what it changes (or, to clear, puts that back), and
/// the prompt may refresh the new session as soon as it is due.
fn render(shell: ShellKind, env: Option<&SessionEnv>) -> String {
    let code = match env {
        Some(env) => env.render(shell),
        None => render_clear(shell),
    };
    if shell == ShellKind::Posix {
        return code;
    }
    let code = match env {
        Some(_) => stash_line(&use_changes()) + &code,
        None => unstash_or(shell, &code),
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

    /// `use --clear` can put back only what the stash saved: the first `use` names
    /// every variable that any `use` (with or without a region) or `use --clear` sets
    /// or unsets; and the hook runs the stash before the variables change.
    #[test]
    fn use_saves_every_variable_it_or_clear_changes_before_changing_it() {
        let at = time::OffsetDateTime::now_utc() + time::Duration::HOUR;
        let c = Credentials::new("AKIANEW", "s", "t", at, at - time::Duration::HOUR);
        let policy = crate::credentials::policy::Policy::default();
        let stashed = use_changes();
        for region in [None, Some("eu-west-1")] {
            let env = SessionEnv::build("prod", Delivery::Static(&c), region, &policy);
            let code = render(ShellKind::Bash, Some(&env));
            let first = code.lines().next().unwrap_or_default();
            assert_eq!(first, format!("_elhaz_stash {};", stashed.join(" ")));
            let rest = &code[first.len()..];
            assert!(touched(rest).len() > 10, "{rest}");
            for v in touched(rest) {
                assert!(stashed.contains(&v), "use does not save {v}");
            }
        }
        let clear = render(ShellKind::Bash, None);
        assert!(clear.starts_with("_elhaz_unstash || {\n"), "{clear}");
        for v in touched(&clear) {
            assert!(
                stashed.contains(&v),
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

    #[test]
    fn a_shell_without_the_hook_gets_only_the_variables() {
        let clear = render(ShellKind::Posix, None);
        assert_eq!(clear, render_clear(ShellKind::Posix));
        for shell in [ShellKind::Bash, ShellKind::Zsh, ShellKind::Fish] {
            assert!(render(shell, None).contains("_ELHAZ_RETRY_AT"), "{shell:?}");
        }
    }
}
