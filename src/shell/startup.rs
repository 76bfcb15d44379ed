//! The rc text `elhaz shell` starts bash, zsh or fish with: the user's own startup
//! files, then (with the hook) the hook's copy of the source keys and the hook, then
//! the prompt prefix. The static parts live in shell/launch.{bash,zsh,fish}, linted
//! like the hooks; this file only puts their sections together.
//!
//! It must not know how the text reaches the shell (pipes, directories, argv): the
//! caller in cmd/shell.rs owns that, and hands in the binary path and the fd numbers.

use super::{ShellKind, hook, set_local};

const BASH: &str = include_str!("../../shell/launch.bash");
const ZSH: &str = include_str!("../../shell/launch.zsh");
const FISH_PROMPT: &str = include_str!("../../shell/launch.fish");

/// The lines of `text` after `# elhaz-section: NAME`, up to the next section.
fn section(text: &'static str, name: &str) -> &'static str {
    let marker = format!("# elhaz-section: {name}\n");
    let start = text
        .find(&marker)
        .unwrap_or_else(|| panic!("no section {name}"))
        + marker.len();
    let rest = &text[start..];
    let end = rest.find("# elhaz-section: ").unwrap_or(rest.len());
    &rest[..end]
}

/// What to put in: the hook (with the binary's path) and the prompt prefix.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts<'a> {
    /// The binary the hook calls; `None`: no hook.
    pub(crate) hook: Option<&'a str>,
    pub(crate) prompt: bool,
}

/// Shell code that sets the hook's non-exported copy of the source keys, from
/// `(variable, value)` pairs ("" for unset). The caller hands it to the shell only
/// through a pipe (never argv, the environment or a file).
pub(crate) fn source_seed(shell: ShellKind, keys: &[(&str, String)]) -> String {
    let fish = shell == ShellKind::Fish;
    let mut out = String::from(if fish {
        "set -g _elhaz_src shell\n"
    } else {
        "_ELHAZ_SRC=shell\n"
    });
    for (var, value) in keys {
        let local = if fish {
            format!("_elhaz_src_{var}")
        } else {
            format!("_ELHAZ_SRC_{var}")
        };
        out.push_str(&set_local(shell, &local, value));
        out.push('\n');
    }
    out
}

/// bash's whole rc file (read from a pipe, which bash reads whole before running any
/// of it), starting with `seed` (the source keys' code, if any).
pub(crate) fn bash_rc(parts: Parts<'_>, seed: &str) -> String {
    let mut rc = seed.to_string();
    rc.push_str(section(BASH, "user"));
    if let Some(exe) = parts.hook {
        rc.push_str(&hook(ShellKind::Bash, exe).unwrap_or_default());
    }
    if parts.prompt {
        rc.push_str(section(BASH, "prompt"));
    }
    rc.push_str(section(BASH, "close"));
    rc
}

/// The files of zsh's private ZDOTDIR, as (name, text): each runs the user's own
/// (from their ZDOTDIR, else HOME); .zshrc then adds the hook, puts ZDOTDIR back and
/// removes the directory. `seed` is the fd of the source keys' pipe, read (and
/// closed) first, before any file of the user's runs.
pub(crate) fn zsh_files(parts: Parts<'_>, seed: Option<i32>) -> [(&'static str, String); 3] {
    let passthrough = |file: &str| {
        format!(
            "{}\n{}",
            set_local(ShellKind::Zsh, "_elhaz_file", file),
            section(ZSH, "passthrough")
        )
    };
    let mut zshenv = String::new();
    if let Some(fd) = seed {
        zshenv.push_str(&format!("_elhaz_fd={fd}\n{}", section(ZSH, "seed")));
    }
    zshenv.push_str(&passthrough(".zshenv"));
    let mut zshrc = section(ZSH, "zshrc").to_string();
    if let Some(exe) = parts.hook {
        zshrc.push_str(&hook(ShellKind::Zsh, exe).unwrap_or_default());
    }
    if parts.prompt {
        zshrc.push_str(section(ZSH, "prompt"));
    }
    zshrc.push_str(section(ZSH, "cleanup"));
    [
        (".zshenv", zshenv),
        (".zprofile", passthrough(".zprofile")),
        (".zshrc", zshrc),
    ]
}

/// fish's --init-command. `seed` is the fd of the source keys' pipe.
pub(crate) fn fish_init(parts: Parts<'_>, seed: Option<i32>) -> String {
    let mut init = match parts.hook {
        Some(exe) => hook(ShellKind::Fish, exe).unwrap_or_default(),
        None => String::new(),
    };
    if let Some(fd) = seed {
        // `source` takes no pipe as its file argument, and `<&N` gives builtins
        // nothing; fish cannot close it, but it is empty once read.
        init.push_str(&format!("source < /dev/fd/{fd}\n"));
    }
    if parts.prompt {
        init.push('\n');
        init.push_str(FISH_PROMPT);
    }
    init
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_is_there_and_ends_before_the_next() {
        for (text, name) in [
            (BASH, "user"),
            (BASH, "prompt"),
            (BASH, "close"),
            (ZSH, "seed"),
            (ZSH, "passthrough"),
            (ZSH, "zshrc"),
            (ZSH, "prompt"),
            (ZSH, "cleanup"),
        ] {
            let s = section(text, name);
            assert!(
                !s.trim().is_empty() && !s.contains("elhaz-section"),
                "{name}"
            );
        }
        let rc = bash_rc(
            Parts {
                hook: None,
                prompt: false,
            },
            "",
        );
        assert!(rc.contains(". ~/.bashrc") && !rc.contains("PS1="), "{rc}");
    }

    /// The launch rc files pass their shells' checkers, as the hooks do.
    #[test]
    fn the_launch_files_pass_their_shells_checkers() {
        use crate::shell::check_script;
        check_script(
            "shellcheck",
            &["--enable=all", "-s", "bash"],
            "shell/launch.bash",
        );
        check_script("zsh", &["-n"], "shell/launch.zsh");
        check_script("fish", &["--no-execute"], "shell/launch.fish");
    }
}
