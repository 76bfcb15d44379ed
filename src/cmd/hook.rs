//! `elhaz hook bash|zsh|fish`: prints the prompt hook for a shell's rc file, with the
//! path of this binary so the hook runs the same elhaz that printed it. The text is
//! `crate::shell`'s; this file knows only the command.

use crate::cli::HookArgs;
use crate::error::Result;
use crate::shell::{current_exe, hook};

pub(crate) fn run(args: HookArgs) -> Result<i32> {
    print!("{}", hook(args.shell, &current_exe()).unwrap_or_default());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use crate::shell::{BASH_HOOK as BASH, FISH_HOOK as FISH, ZSH_HOOK as ZSH};

    /// `use --clear` can put back only what the hooks save: each script's list holds
    /// every variable a session sets or unsets.
    #[test]
    fn each_hook_saves_every_variable_use_changes() {
        use crate::credentials::context;
        // The carried source selectors are exported; the secret ones never are.
        let carried = context::SOURCE_VARS
            .iter()
            .zip(context::VARS)
            .filter(|(_, v)| !context::SECRET.contains(v))
            .map(|(s, _)| s);
        let changed = crate::env::UNSET
            .iter()
            .chain(crate::env::ALL_SET)
            .chain(&["AWS_REGION", "AWS_DEFAULT_REGION", context::REF_VAR])
            .chain(carried);
        for (name, script, marker) in [
            ("bash", BASH, "_ELHAZ_USE_VARS='"),
            ("zsh", ZSH, "_ELHAZ_USE_VARS='"),
            ("fish", FISH, "set -g _elhaz_use_vars "),
        ] {
            let line = script
                .lines()
                .find_map(|l| l.split_once(marker).map(|(_, rest)| rest))
                .unwrap_or_else(|| panic!("{name}: no list of variables"));
            let listed: Vec<&str> = line.trim_end_matches('\'').split(' ').collect();
            for v in changed.clone() {
                assert!(listed.contains(v), "{name} does not save {v}");
            }
        }
    }
}
