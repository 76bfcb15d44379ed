//! `elhaz shell NAME`: the user's own shell, with their startup files, the
//! credentials and the refresh hook. elhaz replaces itself with the shell (same PID,
//! exit status passed through); no helper file outlives the shell's start.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::Context;
use super::exec::{exec, find_program, with_endpoint};
use super::hook::{BASH, FISH, ZSH};
use crate::cli::ShellArgs;
use crate::credentials::policy::DEFAULT_MIN_REMAINING_SECS;
use crate::env::{Delivery, SessionEnv, quote_fish, quote_posix};
use crate::error::{Error, Kind, Result};

/// The shells elhaz integrates with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Bash,
    Zsh,
    Fish,
    Other,
}

fn flavor(path: &Path) -> Flavor {
    match path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
    {
        n if n == "bash" || n.starts_with("bash-") || n.starts_with("bash5") => Flavor::Bash,
        n if n == "zsh" || n.starts_with("zsh-") => Flavor::Zsh,
        "fish" => Flavor::Fish,
        _ => Flavor::Other,
    }
}

/// `--shell`, else $SHELL, else the login shell from passwd, else /bin/sh.
fn pick_shell(arg: Option<&Path>) -> Result<PathBuf> {
    let chosen: OsString = match arg {
        Some(p) => p.as_os_str().to_owned(),
        None => std::env::var_os("SHELL")
            .filter(|s| !s.is_empty())
            .or_else(|| {
                nix::unistd::User::from_uid(nix::unistd::getuid())
                    .ok()
                    .flatten()
                    .map(|u| u.shell.into_os_string())
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| "/bin/sh".into()),
    };
    find_program(&chosen)
}

pub fn run(args: ShellArgs, ctx: &Context) -> Result<i32> {
    if let Some(outer) = super::outer_session()
        && !args.nested
    {
        return Err(Error::usage(format!(
            "already inside elhaz session {outer:?}; exit it first, or pass --nested"
        ))
        .with_hint("to switch this shell instead: elhaz use NAME (needs the hook)"));
    }
    let shell = pick_shell(args.shell.as_deref())?;
    let name = ctx.name(args.name.get())?;
    if args.server {
        // The endpoint keeps the credentials fresh: no hook, which would replace
        // it with static keys.
        return with_endpoint(ctx, &name, args.region.as_deref(), |env| {
            let (argv, child_env, keep) = prepare(&shell, &name, env, false, &args.args)?;
            // The rc pipe must stay open until the shell has read it; the child
            // inherits it at spawn, so ours can close after.
            std::mem::forget(keep);
            Ok((shell.clone(), argv, child_env))
        });
    }
    let served = ctx.credentials(&name, DEFAULT_MIN_REMAINING_SECS)?;
    let region = args.region.as_deref().or(served.region.as_deref());
    let env = SessionEnv::build(
        &name,
        Delivery::Static(&served.credentials),
        region,
        &ctx.policy,
    );
    let (argv, child_env, _keep) = prepare(&shell, &name, &env, true, &args.args)?;
    let failed = exec(&shell, &argv, &child_env);
    // The shell did not start, so nothing will remove its helper directory.
    if flavor(&shell) == Flavor::Zsh {
        remove_zsh_dotdir(&child_env);
    }
    failed
}

/// Removes the private ZDOTDIR that `prepare` made, if it did.
fn remove_zsh_dotdir(env: &[(OsString, OsString)]) {
    if let Some((_, dir)) = env.iter().find(|(k, _)| k == "ZDOTDIR") {
        let dir = Path::new(dir);
        let ours = dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("elhaz-zsh-"));
        if ours {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// argv, environment, and the fds that must stay open until the shell starts.
type Prepared = (Vec<OsString>, Vec<(OsString, OsString)>, Vec<OwnedFd>);

/// The secret source keys the new shell keeps for its hook: the caller's (handed on
/// by an outer shell as ELHAZ_SOURCE_*, else its own environment's), "" when unset.
const SOURCE_KEYS: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "ELHAZ_SOURCE_AWS_ACCESS_KEY_ID"),
    (
        "AWS_SECRET_ACCESS_KEY",
        "ELHAZ_SOURCE_AWS_SECRET_ACCESS_KEY",
    ),
    ("AWS_SESSION_TOKEN", "ELHAZ_SOURCE_AWS_SESSION_TOKEN"),
];

/// Shell code that sets the hook's non-exported copy of the source keys. It goes to
/// the shell only through a pipe (never argv, the environment or a file).
fn source_seed(flavor: Flavor) -> String {
    let mut out = String::new();
    let marker = match flavor {
        Flavor::Fish => "set -g _elhaz_src shell\n",
        _ => "_ELHAZ_SRC=shell\n",
    };
    out.push_str(marker);
    for (var, source) in SOURCE_KEYS {
        let value = std::env::var(source)
            .or_else(|_| std::env::var(var))
            .unwrap_or_default();
        out.push_str(&match flavor {
            Flavor::Fish => format!("set -g _elhaz_src_{var} {}\n", quote_fish(&value)),
            _ => format!("_ELHAZ_SRC_{var}={}\n", quote_posix(&value)),
        });
    }
    out
}

/// The shell's argv and environment: its own startup files, then (with `hook`) the
/// refresh hook, and the prompt prefix. The returned fd (bash's rc pipe) must stay
/// open until the shell starts.
fn prepare(
    shell: &Path,
    name: &str,
    env: &SessionEnv,
    hook: bool,
    extra: &[OsString],
) -> Result<Prepared> {
    let mut child_env = env.child_env();
    let exe = std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "elhaz".into());
    let prompt = std::env::var("ELHAZ_NO_PROMPT").ok().as_deref() != Some("1");
    let mut argv: Vec<OsString> = vec![shell.as_os_str().to_owned()];
    let mut keep: Vec<OwnedFd> = Vec::new();
    let seed = |f: Flavor, keep: &mut Vec<OwnedFd>| -> Result<Option<i32>> {
        if !hook {
            return Ok(None);
        }
        let fd = rc_pipe(&source_seed(f))?;
        let n = fd.as_raw_fd();
        keep.push(fd);
        Ok(Some(n))
    };
    match flavor(shell) {
        Flavor::Bash => {
            // All in the rc pipe, which bash reads whole before running any of it.
            let mut rc = if hook {
                source_seed(Flavor::Bash)
            } else {
                String::new()
            };
            rc.push_str(&bash_rc(&exe, prompt, hook));
            let fd = rc_pipe(&rc)?;
            argv.push("--rcfile".into());
            argv.push(format!("/dev/fd/{}", fd.as_raw_fd()).into());
            argv.push("-i".into());
            keep.push(fd);
        }
        Flavor::Zsh => {
            let fd = seed(Flavor::Zsh, &mut keep)?;
            let dir = zsh_dotdir(&exe, prompt, hook, fd)?;
            let user = std::env::var_os("ZDOTDIR").unwrap_or_default();
            child_env.retain(|(k, _)| k != "ZDOTDIR" && k != "_ELHAZ_USER_ZDOTDIR");
            child_env.push(("_ELHAZ_USER_ZDOTDIR".into(), user));
            child_env.push(("ZDOTDIR".into(), dir.into()));
            argv.push("-i".into());
        }
        Flavor::Fish => {
            let fd = seed(Flavor::Fish, &mut keep)?;
            argv.push("--interactive".into());
            argv.push("--init-command".into());
            argv.push(fish_init(&exe, prompt, hook, fd).into());
        }
        Flavor::Other if hook => {
            let expires = env
                .set
                .iter()
                .find(|(k, _)| *k == "AWS_CREDENTIAL_EXPIRATION")
                .map(|(_, v)| v.as_str())
                .unwrap_or("soon");
            eprintln!(
                "elhaz: refresh at the prompt is not available for {}; the credentials of {name} expire at {expires} (use bash, zsh or fish for refresh)",
                shell.display(),
            );
        }
        Flavor::Other => {}
    }
    argv.extend(extra.iter().cloned());
    Ok((argv, child_env, keep))
}

/// A pipe holding `content`, whose read end survives exec: the shell reads it as a
/// file under /dev/fd. The content fits the pipe buffer, so no writer must stay.
fn rc_pipe(content: &str) -> Result<OwnedFd> {
    let fail = |e: nix::Error| {
        Error::new(
            Kind::Other,
            format!("cannot set up the shell: {}", e.desc()),
        )
    };
    let (read, write) = nix::unistd::pipe().map_err(fail)?;
    if content.len() > 60 * 1024 {
        return Err(Error::other("the shell's rc file is too large for a pipe"));
    }
    nix::unistd::write(&write, content.as_bytes()).map_err(fail)?;
    drop(write);
    // Clear FD_CLOEXEC on the read end so bash inherits it.
    nix::fcntl::fcntl(
        &read,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .map_err(fail)?;
    Ok(read)
}

fn bash_rc(exe: &str, prompt: bool, hook: bool) -> String {
    let mut rc = String::new();
    rc.push_str("# elhaz shell: your ~/.bashrc, then the elhaz hook.\n");
    rc.push_str("if [ -f ~/.bashrc ]; then . ~/.bashrc; fi\n");
    if hook {
        rc.push_str(&format!("_ELHAZ_BIN={}\n", quote_posix(exe)));
        rc.push_str(BASH);
    }
    if prompt {
        rc.push_str("PS1='${ELHAZ_SESSION:+(${ELHAZ_SESSION}) }'\"${PS1-}\"\n");
    }
    // This file is a pipe elhaz handed over: close it.
    rc.push_str("case ${BASH_SOURCE[0]-} in /dev/fd/*) eval \"exec ${BASH_SOURCE[0]#/dev/fd/}<&-\";; esac\n");
    rc
}

/// A private ZDOTDIR whose files run the user's own (from their ZDOTDIR, else HOME)
/// and then the hook; its .zshrc puts ZDOTDIR back and removes the directory.
fn zsh_dotdir(exe: &str, prompt: bool, hook: bool, seed: Option<i32>) -> Result<PathBuf> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("elhaz-zsh-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(&base)
        .map_err(|e| Error::io(Kind::Other, "cannot create a directory in", &base, &e))?
        .keep();
    let user = r#"${_ELHAZ_USER_ZDOTDIR:-$HOME}"#;
    // Runs the user's own file from their ZDOTDIR (which it may change), then points
    // ZDOTDIR back here for the next file.
    let passthrough = |file: &str| {
        format!(
            "# elhaz shell: runs your own {file}.\n_elhaz_zd=$ZDOTDIR\nZDOTDIR={user}\n[[ -f $ZDOTDIR/{file} ]] && builtin source $ZDOTDIR/{file}\nexport _ELHAZ_USER_ZDOTDIR=$ZDOTDIR\nZDOTDIR=$_elhaz_zd\nunset _elhaz_zd\n"
        )
    };
    let mut zshrc = "# elhaz shell: your own .zshrc, then the elhaz hook.\n_elhaz_zd=$ZDOTDIR\nif [[ -n ${_ELHAZ_USER_ZDOTDIR-} ]]; then ZDOTDIR=$_ELHAZ_USER_ZDOTDIR; else unset ZDOTDIR; fi\nunset _ELHAZ_USER_ZDOTDIR\n[[ -f ${ZDOTDIR:-$HOME}/.zshrc ]] && builtin source ${ZDOTDIR:-$HOME}/.zshrc\n".to_string();
    if hook {
        zshrc.push_str(&format!("_ELHAZ_BIN={}\n{ZSH}", quote_posix(exe)));
    }
    if prompt {
        zshrc.push_str("PROMPT=\"${ELHAZ_SESSION:+(${ELHAZ_SESSION}) }${PROMPT-}\"\n");
    }
    zshrc.push_str(
        "if zmodload -F zsh/files b:zf_rm 2>/dev/null; then zf_rm -rf -- $_elhaz_zd; else command rm -rf -- $_elhaz_zd; fi\nunset _elhaz_zd\n",
    );
    let write = |file: &str, text: &str| {
        let p = dir.join(file);
        std::fs::write(&p, text).map_err(|e| Error::io(Kind::Other, "cannot write", &p, &e))
    };
    // The source keys' pipe is read (and closed) first, before any file of the user's
    // runs.
    let mut zshenv = String::new();
    if let Some(fd) = seed {
        zshenv.push_str(&format!(
            "# elhaz shell: the hook's copy of your source keys.\n_elhaz_fd={fd}\nbuiltin source /dev/fd/$_elhaz_fd\nexec {{_elhaz_fd}}<&-\nunset _elhaz_fd\n"
        ));
    }
    zshenv.push_str(&passthrough(".zshenv"));
    write(".zshenv", &zshenv)?;
    write(".zprofile", &passthrough(".zprofile"))?;
    write(".zshrc", &zshrc)?;
    Ok(dir)
}

fn fish_init(exe: &str, prompt: bool, hook: bool, seed: Option<i32>) -> String {
    let mut init = if hook {
        format!("set -g _ELHAZ_BIN {}\n{FISH}", quote_fish(exe))
    } else {
        String::new()
    };
    if let Some(fd) = seed {
        // The hook's copy of the source keys, from a pipe (`source` takes no pipe as
        // its file argument, and `<&N` gives builtins nothing; fish cannot close it,
        // but it is empty once read).
        init.push_str(&format!("source < /dev/fd/{fd}\n"));
    }
    if prompt {
        init.push_str(
            r#"
function _elhaz_status --argument-names s
    return $s
end
if functions -q fish_prompt
    functions -c fish_prompt _elhaz_user_fish_prompt
else
    function _elhaz_user_fish_prompt
        printf '%s> ' (prompt_pwd)
    end
end
function fish_prompt
    set -l s $status
    if set -q ELHAZ_SESSION; and test -n "$ELHAZ_SESSION"
        printf '(%s) ' $ELHAZ_SESSION
    end
    _elhaz_status $s
    _elhaz_user_fish_prompt
end
"#,
        );
    }
    init
}
