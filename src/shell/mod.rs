//! The shells elhaz writes for: which one it is (one kind, one detector), how a value
//! is quoted for it, the lines that set and unset a variable, the prompt hook
//! (`elhaz hook`), the code its `elhaz use` evals to save and restore variables and
//! the hook's own state, and the rc text that `elhaz shell` starts a shell with.
//!
//! It owns text only: it must not know credentials, the daemon, the config or how a
//! process is started; callers hand it names and values.

pub(crate) mod startup;

use std::path::Path;

/// The shell a piece of shell code is written for. `Posix` is any other shell: it
/// gets `export`/`unset` lines, and neither the hook nor the launch rc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShellKind {
    Bash,
    Zsh,
    Fish,
    Posix,
}

impl ShellKind {
    /// The shells with a prompt hook, as `elhaz hook` names them.
    pub(crate) const HOOKED: [&'static str; 3] = ["bash", "zsh", "fish"];

    /// The kind of a shell program, from its name or path: `bash`, `bash-5.2`,
    /// `bash5`, `-bash` (a login shell's argv[0]), `/usr/bin/zsh`, `zsh-5.9`, `fish`.
    /// Anything else is `Posix`.
    pub(crate) fn detect(program: impl AsRef<Path>) -> Self {
        let name = program
            .as_ref()
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let name = name.strip_prefix('-').unwrap_or(name);
        // The name itself, or it followed by a version (`-5.2`, `5`).
        let is = |base: &str| {
            name.strip_prefix(base).is_some_and(|rest| {
                rest.is_empty()
                    || rest.starts_with('-')
                    || rest.starts_with(|c: char| c.is_ascii_digit())
            })
        };
        if is("bash") {
            Self::Bash
        } else if is("zsh") {
            Self::Zsh
        } else if is("fish") {
            Self::Fish
        } else {
            Self::Posix
        }
    }

    /// The kind of the user's shell, from `$SHELL`.
    pub(crate) fn from_env() -> Self {
        Self::detect(std::env::var_os("SHELL").unwrap_or_default())
    }

    /// A `--shell`/argument value of `elhaz hook`: one of [`Self::HOOKED`].
    pub(crate) fn parse_hooked(s: &str) -> Option<Self> {
        match s {
            "bash" => Some(Self::Bash),
            "zsh" => Some(Self::Zsh),
            "fish" => Some(Self::Fish),
            _ => None,
        }
    }

    /// The hook text of this shell, as stored in shell/ (no binary path yet).
    fn hook_text(self) -> Option<&'static str> {
        match self {
            Self::Bash => Some(BASH_HOOK),
            Self::Zsh => Some(ZSH_HOOK),
            Self::Fish => Some(FISH_HOOK),
            Self::Posix => None,
        }
    }
}

/// The hook's own variables (the same name in every shell; never exported), which
/// the binary sets in the code the hook evals: no refresh before this time (unix
/// seconds), and what the last warnings were (opaque to the scripts).
pub(crate) const RETRY_AT: &str = "_ELHAZ_RETRY_AT";
pub(crate) const WARNED: &str = "_ELHAZ_WARNED";

pub(crate) const BASH_HOOK: &str = include_str!("../../shell/elhaz.bash");
pub(crate) const ZSH_HOOK: &str = include_str!("../../shell/elhaz.zsh");
pub(crate) const FISH_HOOK: &str = include_str!("../../shell/elhaz.fish");

/// The prompt hook for `shell` with the path of the binary that runs it (so the hook
/// calls the same elhaz that printed it); `None` for a shell without one.
pub(crate) fn hook(shell: ShellKind, exe: &str) -> Option<String> {
    let text = shell.hook_text()?;
    Some(format!("{}\n{text}", set_local(shell, "_ELHAZ_BIN", exe)))
}

/// A shell variable of this shell only (global, not exported), without the line end.
pub(crate) fn set_local(shell: ShellKind, key: &str, value: &str) -> String {
    match shell {
        ShellKind::Fish => format!("set -g {key} {}", quote_fish(value)),
        _ => format!("{key}={}", quote_posix(value)),
    }
}

/// The path of this binary, for the hook to call back.
pub(crate) fn current_exe() -> String {
    std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "elhaz".into())
}

/// An exported variable, for eval.
pub fn set_line(shell: ShellKind, key: &str, value: &str) -> String {
    match shell {
        ShellKind::Fish => format!("set -gx {key} {};\n", quote_fish(value)),
        _ => format!("export {key}={};\n", quote_posix(value)),
    }
}

/// A removed variable, for eval.
pub(crate) fn unset_line(shell: ShellKind, key: &str) -> String {
    match shell {
        ShellKind::Fish => format!("set -e {key};\n"),
        _ => format!("unset {key};\n"),
    }
}

/// A shell variable of this shell only (global, not exported), for eval inside the
/// hook's functions: the hook's own state, such as `_ELHAZ_RETRY_AT`.
pub(crate) fn set_global(shell: ShellKind, key: &str, value: &str) -> String {
    match shell {
        ShellKind::Fish => format!("set -g {key} {};\n", quote_fish(value)),
        // Not a bare assignment: `warn_create_global` would complain of it.
        ShellKind::Zsh => format!("typeset -g {key}={};\n", quote_posix(value)),
        _ => format!("{key}={};\n", quote_posix(value)),
    }
}

/// `use NAME`'s first part, for the hook's `elhaz` function to eval: unless a `use`
/// before did, saves each of `vars` in an unexported copy (or that it was unset)
/// and, given `keys` (a `use` outside any session), their values as the source keys
/// the hook hands to the binary, unless the shell holds some already.
pub(crate) fn stash(shell: ShellKind, vars: &[&str], keys: &[&str]) -> String {
    let mut out = String::new();
    let fish = shell == ShellKind::Fish;
    let g = if shell == ShellKind::Zsh {
        "typeset -g "
    } else {
        ""
    };
    out.push_str(if fish {
        "if not set -q _elhaz_stashed\nset -g _elhaz_stashed 1\n"
    } else {
        "if [[ -z ${_ELHAZ_STASHED-} ]]; then\n"
    });
    if !fish {
        out.push_str(&format!("{g}_ELHAZ_STASHED=1\n"));
    }
    for v in vars {
        out.push_str(&if fish {
            format!("set -e _elhaz_old_{v}; set -q {v}; and set -g _elhaz_old_{v} ${v}\n")
        } else {
            format!("unset _ELHAZ_OLD_{v}; [[ -z ${{{v}+x}} ]] || {g}_ELHAZ_OLD_{v}=\"${v}\"\n")
        });
    }
    if !keys.is_empty() {
        out.push_str(if fish {
            "if not set -q _elhaz_src\nset -g _elhaz_src use\n"
        } else {
            "if [[ -z ${_ELHAZ_SRC-} ]]; then\n"
        });
        if !fish {
            out.push_str(&format!("{g}_ELHAZ_SRC=use\n"));
        }
        for k in keys {
            out.push_str(&if fish {
                format!("set -g _elhaz_src_{k} \"${k}\"\n")
            } else {
                format!("{g}_ELHAZ_SRC_{k}=\"${{{k}-}}\"\n")
            });
        }
        out.push_str(if fish { "end\n" } else { "fi\n" });
    }
    out.push_str(if fish { "end\n" } else { "fi\n" });
    out
}

/// `use --clear`, for the hook's `elhaz` function to eval: puts back each of `vars`
/// as the first `use` saved it (or unsets it) and forgets the source keys that `use`
/// saved; with nothing saved, runs `clear` (shell code that unsets).
pub(crate) fn unstash_or(shell: ShellKind, vars: &[&str], keys: &[&str], clear: &str) -> String {
    let fish = shell == ShellKind::Fish;
    let mut out = String::from(if_stashed(shell));
    for v in vars {
        out.push_str(&restore_line(shell, v));
        out.push_str(&if fish {
            format!("; set -e _elhaz_old_{v}\n")
        } else {
            format!("; unset _ELHAZ_OLD_{v}\n")
        });
    }
    let saved: Vec<String> = keys
        .iter()
        .map(|k| match shell {
            ShellKind::Fish => format!(" _elhaz_src_{k}"),
            _ => format!(" _ELHAZ_SRC_{k}"),
        })
        .collect();
    let saved = saved.concat();
    out.push_str(&if fish {
        format!(
            "set -e _elhaz_stashed\nif test \"$_elhaz_src\" = use\nset -e _elhaz_src{saved}\nend\nelse\n{clear}end\n"
        )
    } else {
        format!(
            "unset _ELHAZ_STASHED\nif [[ ${{_ELHAZ_SRC-}} == use ]]; then unset _ELHAZ_SRC{saved}; fi\nelse\n{clear}fi\n"
        )
    });
    out
}

/// Puts back each of `vars` as the first `use` saved it (or unsets it), keeping what
/// was saved: what a session that does not set them has of them (a NAME without a
/// region after one with a region gets the shell's own, not the last one's).
pub(crate) fn from_stash(shell: ShellKind, vars: &[&str]) -> String {
    let fish = shell == ShellKind::Fish;
    let mut out = String::from(if_stashed(shell));
    for v in vars {
        out.push_str(&restore_line(shell, v));
        out.push('\n');
    }
    out.push_str(if fish { "end\n" } else { "fi\n" });
    out
}

/// The opening of what runs only when a `use` saved the shell's variables.
fn if_stashed(shell: ShellKind) -> &'static str {
    if shell == ShellKind::Fish {
        "if set -q _elhaz_stashed\n"
    } else {
        "if [[ -n ${_ELHAZ_STASHED-} ]]; then\n"
    }
}

/// `v` set back to the value the first `use` saved, or unset if it saved none (no
/// line end).
fn restore_line(shell: ShellKind, v: &str) -> String {
    if shell == ShellKind::Fish {
        format!("if set -q _elhaz_old_{v}; set -gx {v} $_elhaz_old_{v}; else; set -e {v}; end")
    } else {
        format!(
            "if [[ -n ${{_ELHAZ_OLD_{v}+x}} ]]; then export {v}=\"$_ELHAZ_OLD_{v}\"; else unset {v}; fi"
        )
    }
}

/// fish's `set` keeps the previous $status, and `set -e` of an unset variable makes it
/// 4: without this, `elhaz export NAME -f env --shell fish | source; and CMD` never
/// runs CMD. POSIX shells need nothing.
pub(crate) fn end_line(shell: ShellKind) -> &'static str {
    match shell {
        ShellKind::Fish => "true;\n",
        _ => "",
    }
}

/// 'value' for POSIX shells: inside single quotes only ' needs care.
pub(crate) fn quote_posix(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// 'value' for fish: inside single quotes, \ and ' are escaped with a backslash.
pub(crate) fn quote_fish(value: &str) -> String {
    format!("'{}'", value.replace('\\', r"\\").replace('\'', r"\'"))
}

/// Runs a checker on a file of shell/ and fails with what it said.
#[cfg(test)]
pub(crate) fn check_script(tool: &str, args: &[&str], file: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(tool)
        .args(args)
        .arg(root.join(file))
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e} (.ci/deps installs it)"));
    assert!(
        out.status.success(),
        "{tool} {file}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bash hook passes shellcheck with every optional check, the bash scripts
    /// are as shfmt formats them (style in shell/.editorconfig), and the fish ones
    /// as fish_indent does. (zsh has no such tools; `zsh -n` checks its syntax.)
    #[test]
    fn the_scripts_pass_the_strict_linter_and_the_formatters() {
        check_script(
            "shellcheck",
            &["--enable=all", "-s", "bash"],
            "shell/elhaz.bash",
        );
        for file in ["shell/elhaz.bash", "shell/launch.bash"] {
            check_script("shfmt", &["-d"], file);
        }
        for file in ["shell/elhaz.fish", "shell/launch.fish"] {
            check_script("fish_indent", &["--check"], file);
        }
    }

    #[test]
    fn one_detector_names_every_form_of_a_shell_alike() {
        for (name, kind) in [
            ("bash", ShellKind::Bash),
            ("bash-5.2", ShellKind::Bash),
            ("bash5", ShellKind::Bash),
            ("-bash", ShellKind::Bash),
            ("/usr/local/bin/bash-5.2", ShellKind::Bash),
            ("/usr/bin/zsh", ShellKind::Zsh),
            ("zsh-5.9", ShellKind::Zsh),
            ("-zsh", ShellKind::Zsh),
            ("fish", ShellKind::Fish),
            ("/usr/bin/fish", ShellKind::Fish),
            ("/bin/sh", ShellKind::Posix),
            ("dash", ShellKind::Posix),
            ("bashful", ShellKind::Posix),
            ("", ShellKind::Posix),
        ] {
            assert_eq!(ShellKind::detect(name), kind, "{name}");
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_posix("a'b $c"), r"'a'\''b $c'");
        assert_eq!(quote_fish(r"a'b\c $d"), r"'a\'b\\c $d'");
    }

    #[test]
    fn the_hook_starts_with_the_binary_path_quoted_for_its_shell() {
        let bash = hook(ShellKind::Bash, "/opt/it's/elhaz").unwrap();
        assert!(
            bash.starts_with("_ELHAZ_BIN='/opt/it'\\''s/elhaz'\n"),
            "{bash}"
        );
        let fish = hook(ShellKind::Fish, "/opt/it's/elhaz").unwrap();
        assert!(
            fish.starts_with("set -g _ELHAZ_BIN '/opt/it\\'s/elhaz'\n"),
            "{fish}"
        );
        assert!(hook(ShellKind::Posix, "elhaz").is_none());
    }
}
