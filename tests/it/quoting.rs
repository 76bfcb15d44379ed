//! Property: whatever a value holds, the `-f env` line elhaz writes for it, eval'd by
//! the real shell, gives back exactly that value. Each case runs the real bash, zsh
//! and fish once with a batch of values.
use elhaz::shell::ShellKind;
use elhaz::shell::set_line;
use proptest::prelude::*;

fn roundtrip(shell: &str, kind: ShellKind, values: &[String]) -> Vec<String> {
    let mut script = String::new();
    for (i, v) in values.iter().enumerate() {
        script.push_str(&set_line(kind, &format!("ELHAZ_Q{i}"), v));
    }
    for i in 0..values.len() {
        script.push_str(&format!("printf '%s\\0' \"$ELHAZ_Q{i}\"\n"));
    }
    let args: &[&str] = match shell {
        "bash" => &["--norc", "--noprofile", "-c"],
        "zsh" => &["-f", "-c"],
        "fish" => &["--no-config", "-c"],
        _ => &["-c"],
    };
    let out = std::process::Command::new(shell)
        .args(args)
        .arg(&script)
        .env("LANG", "C.UTF-8")
        .output()
        .unwrap_or_else(|e| panic!("{shell} is needed for this test: {e}"));
    assert!(
        out.status.success(),
        "{shell} failed on:\n{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8 back");
    let mut parts: Vec<String> = text.split('\0').map(str::to_string).collect();
    parts.pop();
    parts
}

fn tricky() -> impl Strategy<Value = String> {
    // Shell metacharacters weighted heavily, plus any other non-NUL character.
    let meta = prop::sample::select(vec![
        '\'', '"', '\\', '$', '`', ' ', '\n', '\t', ';', '&', '|', '*', '?', '~', '!', '#', '(',
        ')', '{', '}', '[', ']', '<', '>', '=', '%', '^', 'a', 'Z', '0', 'é', '€', '\u{7f}',
    ]);
    let any = any::<char>().prop_filter("no NUL", |c| *c != '\0');
    prop::collection::vec(prop_oneof![4 => meta, 1 => any], 0..24)
        .prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn env_lines_survive_bash_zsh_and_fish(values in prop::collection::vec(tricky(), 1..8)) {
        prop_assert_eq!(&roundtrip("bash", ShellKind::Bash, &values), &values);
        prop_assert_eq!(&roundtrip("zsh", ShellKind::Zsh, &values), &values);
        prop_assert_eq!(&roundtrip("sh", ShellKind::Posix, &values), &values);
        prop_assert_eq!(&roundtrip("fish", ShellKind::Fish, &values), &values);
    }
}
