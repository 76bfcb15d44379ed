//! `elhaz completions SHELL`: the completion script. The script asks the binary
//! (`COMPLETE=SHELL elhaz -- ...`) at each TAB, so flags follow the CLI and names
//! complete live (the completers are in `cli`). Bash, zsh and fish get elhaz's own
//! scripts (shell/completion.*), which also hand a command after `exec NAME --` to
//! the shell's completion of that command; elvish and PowerShell get clap_complete's.
//! It must not know of credentials or the daemon.

mod slot;

use std::ffi::OsString;
use std::io::Write;

use clap_complete::engine::CompletionCandidate;
use clap_complete::env::{Elvish, EnvCompleter, Powershell, Shells};

use crate::cli::CompletionsArgs;
use crate::context::CallerContext;
use crate::error::{Error, Result};
use crate::terminal::{escape_controls, is_unsafe_char};
use slot::Slot;

/// Answers the completion scripts (`COMPLETE=SHELL elhaz -- WORDS...`) and exits; does
/// nothing when COMPLETE is not set. Names come from `caller`'s files.
pub fn answer_completion_request(caller: &CallerContext) {
    let source = &caller.source;
    clap_complete::CompleteEnv::with_factory(|| crate::cli::completing_names(source))
        .shells(Shells(&[
            &Script::Bash,
            &Elvish,
            &Script::Fish,
            &Powershell,
            &Script::Zsh,
        ]))
        .complete();
}

/// A shell whose script is elhaz's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Script {
    Bash,
    Zsh,
    Fish,
}

const BASH_SCRIPT: &str = include_str!("../../shell/completion.bash");
const ZSH_SCRIPT: &str = include_str!("../../shell/completion.zsh");
const FISH_SCRIPT: &str = include_str!("../../shell/completion.fish");

/// What the scripts take for "the words from N on are a command of their own" and
/// "file names": no candidate holds a control character (see [`shown`]).
const COMMAND_AT: &str = "\u{1}command ";
const FILES: &str = "\u{1}files";

impl EnvCompleter for Script {
    fn name(&self) -> &'static str {
        match self {
            Script::Bash => "bash",
            Script::Zsh => "zsh",
            Script::Fish => "fish",
        }
    }

    fn is(&self, name: &str) -> bool {
        name == self.name()
    }

    fn write_registration(
        &self,
        var: &str,
        _name: &str,
        bin: &str,
        completer: &str,
        buf: &mut dyn Write,
    ) -> std::io::Result<()> {
        buf.write_all(self.registration(var, bin, completer).as_bytes())
    }

    fn write_complete(
        &self,
        cmd: &mut clap::Command,
        mut args: Vec<OsString>,
        current_dir: Option<&std::path::Path>,
        buf: &mut dyn Write,
    ) -> std::io::Result<()> {
        // Fish passes the words up to the cursor; bash and zsh all words and an index.
        let index = match self {
            Script::Fish => args.len().saturating_sub(1),
            _ => std::env::var("_CLAP_COMPLETE_INDEX")
                .ok()
                .and_then(|i| i.parse().ok())
                .unwrap_or_default(),
        };
        if args.len() <= index {
            args.resize(index + 1, OsString::new());
        }
        // The words as the command will get them: `my\ p` and `'my p` are `my p`.
        for a in args.iter_mut().skip(1) {
            if let Some(w) = a.to_str().and_then(dequote) {
                *a = OsString::from(w);
            }
        }
        // Configs come from the directory the line names, as the command will read
        // them (the completers read ELHAZ_CONFIG_DIR).
        if let Some(dir) = config_dir_on_line(&args[..index]) {
            // SAFETY: a completion request starts no thread.
            unsafe { std::env::set_var("ELHAZ_CONFIG_DIR", dir) };
        }
        cmd.build();
        let text = match slot::slot(cmd, &args, index) {
            Slot::Command(at) => format!("{COMMAND_AT}{at}"),
            Slot::Files => FILES.to_string(),
            Slot::Clap => {
                let current = args[index].to_string_lossy().into_owned();
                let mut found = clap_complete::engine::complete(cmd, args, index, current_dir)?;
                // A command's own flags before the global ones, which every command has
                // (clap_complete gives a flag's candidate the id `arg::ID`).
                let global: Vec<_> = cmd
                    .get_arguments()
                    .filter(|a| a.is_global_set())
                    .map(|a| format!("arg::{}", a.get_id()))
                    .collect();
                found.sort_by_key(|c| c.get_id().is_some_and(|id| global.contains(id)));
                let found = shown(&found, &current);
                match self {
                    Script::Bash if found.len() == 1 => bash_quoted(&found[0].0),
                    Script::Bash => bash_words(&found).join("\n"),
                    Script::Zsh => zsh_lines(&found).join("\n"),
                    Script::Fish => fish_lines(&found).join("\n"),
                }
            }
        };
        buf.write_all(text.as_bytes())
    }
}

impl Script {
    /// The script, for the command `bin`, asking `completer` (the binary) through
    /// the environment variable `var`.
    fn registration(self, var: &str, bin: &str, completer: &str) -> String {
        let (script, quote): (&str, fn(&str) -> String) = match self {
            Script::Bash => (BASH_SCRIPT, sh_quote),
            Script::Zsh => (ZSH_SCRIPT, sh_quote),
            Script::Fish => (FISH_SCRIPT, fish_quote),
        };
        script
            .replace("@VAR@", var)
            .replace("@COMPLETER@", &quote(completer))
            .replace("@BIN@", &quote(bin))
    }
}

/// `word` as one word for bash and zsh: bare when it needs no quotes (`elhaz`).
fn sh_quote(word: &str) -> String {
    if is_plain(word) {
        return word.to_string();
    }
    crate::shell::quote_posix(word)
}

/// `word` as one word for fish.
fn fish_quote(word: &str) -> String {
    if is_plain(word) {
        return word.to_string();
    }
    crate::shell::quote_fish(word)
}

fn is_plain(word: &str) -> bool {
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./+".contains(c))
}

/// The candidates a user sees for the word `current`: flags only once a `-` is typed;
/// none whose value a terminal would obey rather than show (a profile named with an
/// escape sequence cannot be offered as typed text); each description on one line,
/// its control characters made inert.
fn shown(found: &[CompletionCandidate], current: &str) -> Vec<(String, Option<String>)> {
    found
        .iter()
        .map(|c| {
            let value = c.get_value().to_string_lossy().into_owned();
            let help = c.get_help().map(|h| {
                // As written: Display would drop escape sequences, not show them.
                let h = h.ansi().to_string();
                escape_controls(h.lines().next().unwrap_or_default().trim()).into_owned()
            });
            (value, help.filter(|h| !h.is_empty()))
        })
        .filter(|(value, _)| current.starts_with('-') || !value.starts_with('-'))
        .filter(|(value, _)| !value.chars().any(is_unsafe_char))
        .collect()
}

/// The `--config-dir DIR` (or `--config-dir=DIR`) given on the line before the cursor
/// and before `--`, the last one winning; `~/` is the home directory, as the shell
/// will expand it.
fn config_dir_on_line(words: &[OsString]) -> Option<OsString> {
    let mut found = None;
    let mut words = words.iter().skip(1).map(|w| w.to_string_lossy());
    while let Some(w) = words.next() {
        if w == "--" {
            break;
        }
        if w == "--config-dir" {
            found = words.next().map(|d| d.into_owned());
        } else if let Some(d) = w.strip_prefix("--config-dir=") {
            found = Some(d.to_string());
        }
    }
    let dir = found.filter(|d| !d.is_empty())?;
    Some(match (dir.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => std::path::Path::new(&home).join(rest).into_os_string(),
        _ => OsString::from(dir),
    })
}

/// `word` as the shell reads it, when it is quoted or escaped (a word being typed may
/// lack its closing quote); None when it is plain or not shell words at all.
fn dequote(word: &str) -> Option<String> {
    if !word.contains(['\\', '\'', '"']) {
        return None;
    }
    ["", "'", "\""].iter().find_map(|close| {
        let words = shlex::split(&format!("{word}{close}"))?;
        match words.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        }
    })
}

/// The one candidate, as bash inserts it: quoted when the shell would split or expand
/// it (a profile named `my prod`).
fn bash_quoted(word: &str) -> String {
    let plain = word
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@%+,".contains(&b));
    if plain {
        return word.to_string();
    }
    shlex::try_quote(word).map_or_else(|_| word.to_string(), |q| q.into_owned())
}

/// The COMPREPLY words: bare when there is one (bash inserts it), else each padded to
/// a column and followed by what it is in parentheses, as zsh and fish show it beside.
fn bash_words(found: &[(String, Option<String>)]) -> Vec<String> {
    if found.len() < 2 {
        return found.iter().map(|(w, _)| w.clone()).collect();
    }
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|(w, h)| match h {
            Some(h) => {
                let h = match h.char_indices().nth(60) {
                    Some((at, _)) => format!("{}…", &h[..at]),
                    None => h.clone(),
                };
                vec![w.clone(), format!("({h})")]
            }
            None => vec![w.clone()],
        })
        .collect();
    super::table::columns(&rows)
}

/// `value:description` lines for zsh's _describe (a `:` or `\` in the value escaped).
fn zsh_lines(found: &[(String, Option<String>)]) -> Vec<String> {
    found
        .iter()
        .map(|(w, h)| {
            let w = w.replace('\\', r"\\").replace(':', r"\:");
            match h {
                Some(h) => format!("{w}:{}", h.replace('\\', r"\\")),
                None => w,
            }
        })
        .collect()
}

/// `value<TAB>description` lines for fish.
fn fish_lines(found: &[(String, Option<String>)]) -> Vec<String> {
    found
        .iter()
        .map(|(w, h)| match h {
            Some(h) => format!("{w}\t{h}"),
            None => w.clone(),
        })
        .collect()
}

/// The registration script for `shell`, as checked in under completions/.
pub(crate) fn generate(shell: clap_complete::Shell) -> Result<String> {
    let script = match shell {
        clap_complete::Shell::Bash => Script::Bash,
        clap_complete::Shell::Zsh => Script::Zsh,
        clap_complete::Shell::Fish => Script::Fish,
        clap_complete::Shell::Elvish => return clap_registration(&Elvish),
        clap_complete::Shell::PowerShell => return clap_registration(&Powershell),
        other => return Err(Error::usage(format!("no completions for {other}"))),
    };
    Ok(script.registration("COMPLETE", "elhaz", "elhaz"))
}

fn clap_registration(completer: &dyn EnvCompleter) -> Result<String> {
    let mut buf = Vec::new();
    completer
        .write_registration("COMPLETE", "elhaz", "elhaz", "elhaz", &mut buf)
        .map_err(|e| Error::other(format!("cannot write the completion script: {e}")))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

pub(crate) fn run(args: CompletionsArgs) -> Result<i32> {
    print!("{}", generate(args.shell)?);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(v: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        v.iter()
            .map(|(w, h)| (w.to_string(), h.map(str::to_string)))
            .collect()
    }

    #[test]
    fn quoted_words_are_read_as_the_shell_reads_them_and_one_name_is_quoted_for_bash() {
        for (typed, read) in [
            ("my\\ p", Some("my p")),
            ("'my p", Some("my p")),
            ("\"my p", Some("my p")),
            ("'my prod'", Some("my prod")),
            ("prod", None),
            ("a b", None),
        ] {
            assert_eq!(dequote(typed).as_deref(), read, "{typed}");
        }
        assert_eq!(bash_quoted("prod-sso"), "prod-sso");
        assert_eq!(bash_quoted("my prod"), "'my prod'");
        assert_eq!(bash_quoted("it's"), "\"it's\"");
    }

    #[test]
    fn bash_lists_kinds_beside_several_words_and_inserts_one_bare() {
        assert_eq!(bash_words(&found(&[("prod", Some("config"))])), ["prod"]);
        assert_eq!(
            bash_words(&found(&[
                ("prod", Some("config")),
                ("prod-sso", Some("sso profile"))
            ])),
            ["prod      (config)", "prod-sso  (sso profile)"]
        );
    }

    #[test]
    fn flags_wait_for_a_dash_and_text_from_files_is_inert() {
        let c = |v: &str, h: &str| CompletionCandidate::new(v).help(Some(h.to_string().into()));
        let all = [
            c("prod", "config: \u{1b}]0;pwned\u{7}"),
            c("bad\u{1b}[2Jname", "role profile"),
            c("--region", "Set AWS_REGION\nand more"),
        ];
        assert_eq!(
            shown(&all, "p"),
            found(&[("prod", Some(r"config: \x1b]0;pwned\x07"))])
        );
        assert_eq!(
            shown(&all, "-"),
            found(&[
                ("prod", Some(r"config: \x1b]0;pwned\x07")),
                ("--region", Some("Set AWS_REGION"))
            ])
        );
    }

    /// What a checker says of `text` on its stdin; fails unless it is content.
    fn check_text(tool: &str, args: &[&str], text: &str, what: &str) {
        let mut child = std::process::Command::new(tool)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{tool}: {e} (.ci/deps installs it)"));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{tool} on {what}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The scripts as generated pass their shell's strictest checker; the sources
    /// are as shfmt and fish_indent format them, as the hooks are.
    #[test]
    fn the_scripts_pass_their_checkers_and_formatters() {
        for (shell, tool, args) in [
            (
                clap_complete::Shell::Bash,
                "shellcheck",
                &["--enable=all", "-s", "bash", "-"][..],
            ),
            (clap_complete::Shell::Zsh, "zsh", &["-n"]),
            (clap_complete::Shell::Fish, "fish", &["--no-execute"]),
        ] {
            let script = generate(shell).unwrap();
            check_text(tool, args, &script, &format!("`elhaz completions {shell}`"));
        }
        crate::shell::check_script("shfmt", &["-d"], "shell/completion.bash");
        crate::shell::check_script("fish_indent", &["--check"], "shell/completion.fish");
    }

    #[test]
    fn the_scripts_name_the_binary_quoted_for_their_shell() {
        let bash = Script::Bash.registration("COMPLETE", "elhaz", "/opt/my tools/elhaz");
        assert!(
            bash.contains("COMPLETE=bash '/opt/my tools/elhaz' --"),
            "{bash}"
        );
        for script in [
            &bash,
            &Script::Zsh.registration("COMPLETE", "elhaz", "elhaz"),
        ] {
            for placeholder in ["@VAR@", "@BIN@", "@COMPLETER@"] {
                assert!(
                    !script.contains(placeholder),
                    "{placeholder} is left: {script}"
                );
            }
        }
        let fish = Script::Fish.registration("COMPLETE", "elhaz", r"/opt/it's\elhaz");
        assert!(
            fish.contains(r"COMPLETE=fish '/opt/it\'s\\elhaz' --"),
            "{fish}"
        );
        let zsh = Script::Zsh.registration("COMPLETE", "elhaz", "elhaz");
        assert!(zsh.starts_with("#compdef elhaz\n"), "{zsh}");
    }
}
