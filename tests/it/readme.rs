//! The README is a manual that cannot rot: every ```console block marked with
//! `<!-- test -->` on the line before it is run, command by command, in bash, as a
//! user with a fresh HOME and moto as STS. Each command must succeed; where the
//! README shows output, the output (stdout and stderr, as a terminal would show
//! them) must match it. In expected output, `...` stands for any text within a
//! line, and a line that is only `...` for any number of lines.
use crate::support::*;

use std::path::Path;
use std::time::Duration;

const MARK: &str = "<!-- test -->";

#[derive(Debug)]
pub(crate) struct Step {
    pub(crate) command: String,
    expected: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct Block {
    /// 1-based line of the ```console fence, for messages.
    pub(crate) line: usize,
    pub(crate) steps: Vec<Step>,
}

pub(crate) fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The marked console blocks, in order.
pub(crate) fn marked_blocks(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == MARK {
            assert_eq!(
                lines.get(i + 1).map(|l| l.trim()),
                Some("```console"),
                "README.md:{}: {MARK} must be right before a ```console fence",
                i + 1
            );
            let fence = i + 2;
            let mut steps: Vec<Step> = Vec::new();
            let mut j = i + 2;
            while j < lines.len() && lines[j].trim() != "```" {
                let l = lines[j];
                if let Some(cmd) = l.strip_prefix("$ ") {
                    steps.push(Step {
                        command: cmd.to_string(),
                        expected: Vec::new(),
                    });
                } else {
                    let step = steps.last_mut().unwrap_or_else(|| {
                        panic!("README.md:{}: output before any `$ ` command", j + 1)
                    });
                    step.expected.push(l.to_string());
                }
                j += 1;
            }
            assert!(j < lines.len(), "README.md:{fence}: unclosed block");
            blocks.push(Block { line: fence, steps });
            i = j;
        }
        i += 1;
    }
    blocks
}

/// Whether `text` matches `pattern`, where `...` matches any text.
fn line_matches(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split("...").collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Whether the output lines match the expected ones (a `...` line: any lines).
fn lines_match(expected: &[String], got: &[&str]) -> bool {
    match expected.split_first() {
        None => got.is_empty(),
        Some((e, rest)) if e.trim() == "..." => {
            (0..=got.len()).any(|skip| lines_match(rest, &got[skip..]))
        }
        Some((e, rest)) => match got.split_first() {
            Some((g, grest)) => {
                line_matches(e.trim_end(), g.trim_end()) && lines_match(rest, grest)
            }
            None => false,
        },
    }
}

/// A user who followed "Try it without an AWS account": moto as STS, source keys
/// moto accepts, `elhaz` and the aws CLI on PATH, nothing else.
fn reader() -> TestEnv {
    let mut t = TestEnv::with_sts(&moto().endpoint());
    t.unset("AWS_REGION");
    t.set("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
        .set("AWS_SECRET_ACCESS_KEY", "any");
    let bin_dir = bin().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), t.vars["PATH"]);
    t.set("PATH", &path);
    t
}

/// Runs one block's commands in one bash, in order (so `cd`, variables and files
/// carry over), each with its output captured apart. Returns the failures.
fn run_block(block: &Block) -> Vec<String> {
    let t = reader();
    let out_dir = t.dir.path().join("readme-out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut script = String::from("cd ~\n");
    for (n, step) in block.steps.iter().enumerate() {
        // `{ ...\n}` runs in this shell, so state carries over; the newline ends any
        // trailing comment.
        script.push_str(&format!(
            "{{ {}\n}} > '{dir}/out.{n}' 2>&1 < /dev/null\necho $? > '{dir}/rc.{n}'\n",
            step.command,
            dir = out_dir.display()
        ));
    }
    let mut cmd = t.program("bash");
    cmd.args(["--norc", "--noprofile", "-c", &script])
        .current_dir(&t.home)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let (status, _, err) = output_within(child, Duration::from_secs(120));
    if status.is_none() {
        return vec![format!(
            "README.md:{}: the block did not finish within 120s",
            block.line
        )];
    }
    let mut failures = Vec::new();
    for (n, step) in block.steps.iter().enumerate() {
        let rc = std::fs::read_to_string(out_dir.join(format!("rc.{n}"))).unwrap_or_default();
        let out = std::fs::read_to_string(out_dir.join(format!("out.{n}"))).unwrap_or_default();
        if rc.trim() != "0" {
            failures.push(format!(
                "README.md:{}: `{}` failed (exit {}):\n{out}{err}",
                block.line,
                step.command,
                rc.trim()
            ));
            continue;
        }
        if step.expected.is_empty() {
            continue;
        }
        let got: Vec<&str> = out.lines().collect();
        if !lines_match(&step.expected, &got) {
            failures.push(format!(
                "README.md:{}: `{}` printed something else.\n--- README shows ---\n{}\n--- it printed ---\n{out}",
                block.line,
                step.command,
                step.expected.join("\n")
            ));
        }
    }
    failures
}

#[test]
fn every_marked_readme_command_runs_and_prints_what_the_readme_shows() {
    let blocks = marked_blocks(&readme());
    let commands: Vec<&str> = blocks
        .iter()
        .flat_map(|b| b.steps.iter().map(|s| s.command.as_str()))
        .collect();
    // The sections the manual promises are runnable stay marked.
    for must in [
        "elhaz config add demo",
        "elhaz exec demo --",
        "elhaz daemon list",
        "elhaz config add prod",
        "elhaz config update prod",
        "elhaz config list",
        "elhaz daemon status",
        "elhaz daemon logs",
        "echo 'source <(elhaz completions bash)'",
        "elhaz completions zsh",
        "echo 'fpath=(~/.zfunc $fpath)",
        "elhaz completions fish",
    ] {
        assert!(
            commands.iter().any(|c| c.starts_with(must)),
            "no marked README block runs `{must}...`: is its {MARK} line gone?"
        );
    }
    // Blocks are independent (each reader starts fresh): run them side by side.
    let handles: Vec<_> = blocks
        .into_iter()
        .map(|b| std::thread::spawn(move || run_block(&b)))
        .collect();
    let failures: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_matcher_treats_dots_as_wildcards_and_nothing_else() {
    assert!(line_matches("pid ..., up ...", "pid 42, up 3s"));
    assert!(line_matches(
        "\"UserId\": \"AROA...:elhaz-...\",",
        "\"UserId\": \"AROAXYZ:elhaz-tester-1\","
    ));
    assert!(!line_matches("demo  14m left", "demo  13m left"));
    assert!(!line_matches("a...b", "ab-not-b-end"));
    assert!(!line_matches("ab...ba", "aba"));
    let e = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(lines_match(&e(&["a", "...", "z"]), &["a", "b", "c", "z"]));
    assert!(lines_match(&e(&["a", "...", "z"]), &["a", "z"]));
    assert!(!lines_match(&e(&["a", "z"]), &["a", "b", "z"]));
    assert!(!lines_match(&e(&["a"]), &["a", "extra"]));
}

/// The row of the README's exit code table for `code`, as written.
pub(crate) fn exit_code_row(code: i32) -> String {
    let text = readme();
    let table = &text[text.find("## Exit codes").expect("an Exit codes section")..];
    table
        .lines()
        .find(|l| l.starts_with(&format!("| {code} |")))
        .unwrap_or_else(|| panic!("no row for {code} in the README's exit code table"))
        .to_string()
}

#[test]
fn the_exit_code_table_lists_every_code_elhaz_uses() {
    use elhaz::error::Kind;
    let kinds = [
        Kind::Other,
        Kind::Usage,
        Kind::Config,
        Kind::Daemon,
        Kind::Auth,
        Kind::MfaRequired,
        Kind::SsoLoginRequired,
        Kind::Interrupted,
        Kind::NotExecutable,
        Kind::NotFound,
    ];
    // A new Kind does not compile until it is listed above.
    for k in kinds {
        match k {
            Kind::Other
            | Kind::Usage
            | Kind::Config
            | Kind::Daemon
            | Kind::Auth
            | Kind::MfaRequired
            | Kind::SsoLoginRequired
            | Kind::Interrupted
            | Kind::NotExecutable
            | Kind::NotFound => {}
        }
    }
    let text = readme();
    let table = &text[text.find("## Exit codes").expect("an Exit codes section")..];
    let documented: std::collections::BTreeSet<i32> = table
        .lines()
        .skip_while(|l| !l.starts_with("| code"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.trim_matches('|').split('|').next()?.trim().parse().ok())
        .collect();
    let mut used: std::collections::BTreeSet<i32> = kinds.iter().map(|k| k.exit_code()).collect();
    used.insert(0);
    assert_eq!(documented, used, "README's exit code table vs src/error.rs");
    // clap's own usage errors use 2, as the table says.
    let out = TestEnv::new().cmd().arg("--no-such-flag").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// The Development section's map of the code names each directory of src/ once, as
/// a directory of its own (`sso/`), never twice: a mention inside another path
/// (`cmd/sso/`) or of a file in it (`env/chain.rs`) is not a listing.
#[test]
fn the_development_map_lists_each_module_directory_once() {
    let text = readme();
    let dev = &text[text.find("## Development").expect("a Development section")..];
    let start = dev.find("```text").expect("the map") + "```text".len();
    let map = &dev[start..start + dev[start..].find("```").unwrap()];
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut dirs: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 10, "{dirs:?}");
    for dir in dirs {
        let listed = map
            .match_indices(&format!("{dir}/"))
            .filter(|(i, m)| {
                let before = map[..*i].chars().next_back();
                let after = map[i + m.len()..].chars().next();
                !before.is_some_and(|c| c == '/' || c.is_alphanumeric() || c == '_')
                    && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
            .count();
        assert_eq!(listed, 1, "{dir}/ is listed {listed} times in:\n{map}");
    }
}

#[test]
fn every_elhaz_variable_the_code_names_is_documented() {
    let text = readme();
    let mut missing = Vec::new();
    let mut files = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    for f in files {
        let src = std::fs::read_to_string(&f).unwrap();
        for (i, _) in src.match_indices("\"ELHAZ_") {
            let name: String = src[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            // ELHAZ_SOURCE_<VAR> is documented as a family.
            let shown = if name.starts_with("ELHAZ_SOURCE_") {
                "ELHAZ_SOURCE_<VAR>".to_string()
            } else {
                name.clone()
            };
            if !text.contains(&format!("`{shown}")) && !missing.contains(&name) {
                missing.push(name);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "variables the code reads or sets that README.md does not name: {missing:?}"
    );
}
