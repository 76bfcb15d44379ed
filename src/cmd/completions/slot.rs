//! Where the word under the cursor falls on an elhaz command line: inside a command of
//! its own (`exec NAME -- CMD...`, completed as the shell completes that command), in
//! a shell's arguments (file names, completed by the shell), or anywhere else (clap's
//! engine completes it). Parsed as clap parses the line, from the built command: its
//! subcommands, which options take a value, and the positionals in order.

use std::ffi::OsString;

use clap::{Arg, Command, ValueHint};

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The words from this index on are a command line of their own.
    Command(usize),
    /// A file name, as the shell completes it.
    Files,
    /// What clap's engine completes: names, flags, option values, subcommands.
    Clap,
}

/// The parse of one (sub)command's words so far.
struct Parse<'c> {
    cmd: &'c Command,
    /// After `--`: the index of the first word after it.
    escaped: Option<usize>,
    /// An option given before waits for its value.
    pending: bool,
    /// Values given to positionals so far.
    values: usize,
    /// The ids of the options given.
    given: Vec<&'c str>,
}

impl<'c> Parse<'c> {
    fn new(cmd: &'c Command) -> Self {
        Parse {
            cmd,
            escaped: None,
            pending: false,
            values: 0,
            given: Vec::new(),
        }
    }

    /// The positional the next value goes to. The positional NAME is skipped when
    /// -n/--name gave it (as `exec -n prod terraform` means: CMD is terraform); a
    /// `last` positional only takes values after `--`.
    fn next_positional(&self) -> Option<&'c Arg> {
        let name_given = self.given.contains(&"name_flag");
        let mut left = self.values;
        for p in self.cmd.get_positionals() {
            if (p.get_id() == "name" && name_given) || (p.is_last_set() && self.escaped.is_none()) {
                continue;
            }
            let many = p.get_num_args().is_some_and(|n| n.max_values() > 1);
            if many || left == 0 {
                return Some(p);
            }
            left -= 1;
        }
        None
    }

    /// The positional that every value after `--` goes to: a command (exec's CMD, as
    /// `normalize` reads it) or a `last` one (shell's ARGS).
    fn after_dashes(&self) -> Option<&'c Arg> {
        self.cmd
            .get_positionals()
            .find(|p| is_command(p) || p.is_last_set())
    }

    /// An option named by `--long` or `-s`, as the built command knows it.
    fn option(&self, long: Option<&str>, short: Option<char>) -> Option<&'c Arg> {
        self.cmd.get_arguments().find(|a| {
            let by_long = long.is_some_and(|l| {
                a.get_long_and_visible_aliases()
                    .is_some_and(|ls| ls.contains(&l))
            });
            let by_short = short.is_some_and(|s| {
                a.get_short_and_visible_aliases()
                    .is_some_and(|ss| ss.contains(&s))
            });
            !a.is_positional() && (by_long || by_short)
        })
    }
}

fn is_command(arg: &Arg) -> bool {
    arg.get_value_hint() == ValueHint::CommandWithArguments
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.takes_values())
}

/// Where `args[index]` falls (`args[0]` is the program).
pub(crate) fn slot(cmd: &Command, args: &[OsString], index: usize) -> Slot {
    let words: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut parse = Parse::new(cmd);
    let mut i = 1;
    while i < index.min(words.len()) {
        let w = words[i].as_str();
        if let Some(first) = parse.escaped {
            return escaped_slot(&parse, first);
        }
        if parse.pending {
            parse.pending = false;
        } else if w == "--" {
            parse.escaped = Some(i + 1);
        } else if let Some(long) = w.strip_prefix("--") {
            let (flag, value) = match long.split_once('=') {
                Some((f, v)) => (f, Some(v)),
                None => (long, None),
            };
            match parse.option(Some(flag), None) {
                Some(opt) => {
                    parse.given.push(opt.get_id().as_str());
                    // Bash splits `--region=eu-west-1` into three words at `=`.
                    if takes_value(opt) && value.is_none() {
                        if words.get(i + 1).is_some_and(|n| n == "=") && i + 1 < index {
                            i += 1;
                        }
                        parse.pending = true;
                    }
                }
                None => {
                    if let Some(at) = positional_value(&mut parse, i) {
                        return Slot::Command(at);
                    }
                }
            }
        } else if w.len() > 1 && w.starts_with('-') {
            match shorts(&mut parse, &w[1..]) {
                Some(()) => {}
                None => {
                    if let Some(at) = positional_value(&mut parse, i) {
                        return Slot::Command(at);
                    }
                }
            }
        } else if let Some(sub) = (parse.values == 0)
            .then(|| parse.cmd.find_subcommand(w))
            .flatten()
        {
            parse = Parse::new(sub);
        } else if let Some(at) = positional_value(&mut parse, i) {
            return Slot::Command(at);
        }
        i += 1;
    }
    if let Some(first) = parse.escaped {
        return escaped_slot(&parse, first);
    }
    let current = words.get(index).map(String::as_str).unwrap_or_default();
    if parse.pending || current.starts_with('-') {
        return Slot::Clap;
    }
    match parse.next_positional() {
        Some(p) if is_command(p) => Slot::Command(index),
        _ => Slot::Clap,
    }
}

/// A value for the next positional, at word `i`: where a command starts when it is
/// the first word of one (everything after it is the command's).
fn positional_value(parse: &mut Parse, i: usize) -> Option<usize> {
    match parse.next_positional() {
        Some(p) if is_command(p) => Some(i),
        Some(_) => {
            parse.values += 1;
            None
        }
        None => None,
    }
}

/// A cluster of short flags (`-vn`, `-nprod`): None when one is unknown (then the
/// word may be a value, as `exec prod -la` runs `-la`).
fn shorts(parse: &mut Parse, cluster: &str) -> Option<()> {
    for (at, c) in cluster.char_indices() {
        let opt = parse.option(None, Some(c))?;
        parse.given.push(opt.get_id().as_str());
        if takes_value(opt) {
            // `-nprod` holds its value; `-n` takes the next word.
            parse.pending = at + c.len_utf8() == cluster.len();
            return Some(());
        }
    }
    Some(())
}

/// The cursor is after `--`, whose next word is `first`.
fn escaped_slot(parse: &Parse, first: usize) -> Slot {
    match parse.after_dashes() {
        Some(p) if is_command(p) => Slot::Command(first),
        Some(p) if matches!(p.get_value_hint(), ValueHint::AnyPath | ValueHint::FilePath) => {
            Slot::Files
        }
        _ => Slot::Clap,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot_of(line: &str) -> Slot {
        let mut cmd = crate::cli::completing_names(&crate::context::SourceContext::from_process());
        cmd.build();
        let mut args: Vec<OsString> = line.split(' ').map(OsString::from).collect();
        if line.ends_with(' ') {
            args.pop();
            args.push(OsString::new());
        }
        let index = args.len() - 1;
        slot(&cmd, &args, index)
    }

    #[test]
    fn a_command_starts_after_dashes_or_after_name() {
        for (line, want) in [
            ("elhaz exec prod -- terr", Slot::Command(4)),
            ("elhaz exec prod -- ", Slot::Command(4)),
            ("elhaz exec prod -- terraform pl", Slot::Command(4)),
            ("elhaz exec -- terr", Slot::Command(3)),
            ("elhaz exec -- prod terr", Slot::Command(3)),
            ("elhaz exec prod terr", Slot::Command(3)),
            ("elhaz exec prod terraform -- pl", Slot::Command(3)),
            ("elhaz exec prod ls --server", Slot::Command(3)),
            ("elhaz exec -n prod terr", Slot::Command(4)),
            ("elhaz exec -nprod terr", Slot::Command(3)),
            ("elhaz exec --name prod terr", Slot::Command(4)),
            ("elhaz exec --name=prod terr", Slot::Command(3)),
            ("elhaz exec --region eu-west-1 prod terr", Slot::Command(5)),
            (
                "elhaz exec --region = eu-west-1 prod terr",
                Slot::Command(6),
            ),
            (
                "elhaz -v --config-dir /x exec --server prod -- terr",
                Slot::Command(8),
            ),
            ("elhaz exec prod --unknown x", Slot::Command(3)),
            ("elhaz exec prod -la ", Slot::Command(3)),
        ] {
            assert_eq!(slot_of(line), want, "{line:?}");
            // clap, given the whole line, runs the same command (bash's ` = ` aside:
            // bash splits `--region=eu-west-1` so, the process never sees it).
            let Slot::Command(at) = want else { continue };
            if line.contains(" = ") {
                continue;
            }
            let mut words: Vec<String> = line.split(' ').map(str::to_string).collect();
            if line.ends_with(' ') {
                *words.last_mut().unwrap() = "x".into();
            }
            let raw: Vec<OsString> = words.iter().map(OsString::from).collect();
            let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(&raw).unwrap();
            let crate::cli::Command::Exec(mut exec) = cli.command else {
                panic!("{line:?} is no exec");
            };
            exec.normalize(&raw);
            assert_eq!(exec.command, raw[at..], "{line:?}");
        }
    }

    #[test]
    fn names_flags_and_option_values_stay_with_clap() {
        for line in [
            "elhaz exec ",
            "elhaz exec pr",
            "elhaz exec -",
            "elhaz exec prod -",
            "elhaz exec prod --se",
            "elhaz exec --region ",
            "elhaz exec prod --region ",
            "elhaz exec -n ",
            "elhaz shell prod ",
            "elhaz config get ",
            "elhaz sso login ",
            "elhaz daemon share prod -- ",
            "elhaz ",
        ] {
            assert_eq!(slot_of(line), Slot::Clap, "{line:?}");
        }
    }

    #[test]
    fn a_shells_arguments_are_files() {
        for line in [
            "elhaz shell prod -- ",
            "elhaz shell prod -- -c scr",
            "elhaz shell -- ",
            "elhaz shell -n prod -- x",
        ] {
            assert_eq!(slot_of(line), Slot::Files, "{line:?}");
        }
    }
}
