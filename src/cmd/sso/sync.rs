//! `elhaz sso sync [NAME] [--prefix P] [--dry-run] [--prune]`: one AWS CLI profile per
//! account and role of the SSO session, in the caller's AWS config file.

use std::collections::BTreeMap;
use std::process::ExitCode;

use crate::cli::SyncArgs;
use crate::cmd::Context;
use crate::config::aws_ini::{self, FileKind, Ini};
use crate::error::{Result, display_path};
use crate::sso::accounts::count;
use crate::sso::sync::{self, Options, Plan};

pub(crate) fn run(ctx: &Context, args: &SyncArgs) -> Result<ExitCode> {
    let source = &ctx.caller.source;
    let session = super::pick(args.name.as_deref(), source)?;
    let file = source.config_file();
    let text = aws_ini::load_text(&file, FileKind::Config)?.unwrap_or_default();
    let roles = super::roles::fetch(&session, source, args.max_age.0, args.refresh)?;
    let opts = Options {
        prefix: args.prefix.clone(),
        prune: args.prune,
    };
    let plan = sync::plan(&text, &file, &session, &roles, &taken(ctx)?, &opts)?;
    report(&plan, args, &display_path(&file), session.label());
    if args.dry_run {
        print!(
            "{}",
            crate::cmd::output::unified_diff(
                &plan.before,
                &plan.after,
                &display_path(&file),
                "elhaz sso sync"
            )
        );
        eprintln!("elhaz: dry run: nothing written");
    } else if plan.after != plan.before {
        crate::fsutil::write_keeping_mode(&file, &plan.after, &plan.before)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Profile names already used elsewhere: the shared credentials file and elhaz
/// configs (which win over a profile of the same name in every elhaz command).
fn taken(ctx: &Context) -> Result<BTreeMap<String, String>> {
    let mut taken = BTreeMap::new();
    let creds = Ini::load(&ctx.caller.source.credentials_file(), FileKind::Credentials)?;
    for p in creds.gather().profiles {
        taken.insert(
            p.name,
            format!("a profile in {}", display_path(&creds.path)),
        );
    }
    let store = ctx.store();
    for n in store.names().unwrap_or_default() {
        taken.insert(
            n,
            format!("an elhaz config in {}", display_path(store.dir())),
        );
    }
    Ok(taken)
}

/// What the sync did (or would do), on stderr: one line per profile the diff adds
/// (`+`), changes (`~`) or removes (`-`), and counts that match them.
fn report(plan: &Plan, args: &SyncArgs, file: &str, label: &str) {
    let wrote = if args.dry_run { "would write" } else { "wrote" };
    let removes = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for (name, why) in &plan.skipped {
        eprintln!("elhaz: warning: skipped profile {name}: {why}");
    }
    for (name, at) in &plan.displaced {
        eprintln!("elhaz: warning: {removes} profile {name} from the block: the name is now {at}");
    }
    if !plan.displaced.is_empty()
        || plan
            .skipped
            .iter()
            .any(|(_, why)| why.starts_with("the name"))
    {
        eprintln!("hint: pick another prefix with --prefix, or rename the other one");
    }
    if !plan.kept.is_empty() {
        eprintln!(
            "elhaz: kept {} profile(s) this sync no longer writes: {} (--prune removes them)",
            plan.kept.len(),
            plan.kept.join(", ")
        );
    }
    if plan.after == plan.before {
        eprintln!(
            "elhaz: {file} is up to date ({} profiles for SSO session '{}')",
            count(plan.written.len() + plan.kept.len()),
            label
        );
        return;
    }
    for (mark, names) in [
        ('+', &plan.added),
        ('~', &plan.changed),
        ('-', &plan.removed),
    ] {
        for n in names {
            eprintln!("{mark} {n}");
        }
    }
    eprintln!(
        "elhaz: {wrote} {} profiles to {file} ({} added, {} changed, {} removed)",
        count(plan.written.len() + plan.kept.len()),
        count(plan.added.len()),
        count(plan.changed.len()),
        count(plan.removed.len())
    );
}
