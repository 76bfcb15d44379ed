//! `elhaz config add|get|list|meta|remove|update`: one function per subcommand, the
//! prompts and the editor loop. Field patching lives in `fields`; files are written
//! only through the config store. Nothing here knows of STS or the daemon.

mod fields;
mod list;

use std::io::{IsTerminal, Read};
use std::path::Path;

use serde_json::{Value, json};

use self::fields::{apply_fields, check_flags, has_fields};
use self::list::list;
use super::{Context, obscure, print_json};
use crate::cli::{ConfigAddArgs, ConfigCommand, ConfigFields, ConfigUpdateArgs};
use crate::config::parse::{line_of_key, parse_config};
use crate::config::schema::Config;
use crate::config::store::validate_name;
use crate::config::{AwsProfiles, Store};
use crate::context::SourceContext;
use crate::error::{Error, Kind, Result, display_path};

pub(crate) fn run(cmd: ConfigCommand, ctx: &Context) -> Result<i32> {
    let store = ctx.store();
    let source = &ctx.caller.source;
    match cmd {
        ConfigCommand::Add(a) => add(a, &store, source),
        ConfigCommand::Update(a) => update(a, &store, source),
        ConfigCommand::Get(a) => get(&config_name(a.name.get(), &store)?, a.obscure, &store),
        ConfigCommand::Meta(a) => meta(&config_name(a.name.get(), &store)?, &store),
        ConfigCommand::List(a) => list(&store, a.json, source),
        ConfigCommand::Remove(a) => remove(&config_name(a.name.get(), &store)?, a.yes, &store),
    }
}

/// `config get NAME`: the config as JSON, secrets hidden with --obscure.
fn get(name: &str, obscured: bool, store: &Store) -> Result<i32> {
    validate_name(name)?;
    let config = store.load(name)?;
    let mut v = serde_json::to_value(&config).unwrap_or_default();
    if obscured {
        obscure(&mut v);
    }
    print_json(&v);
    Ok(0)
}

/// `config meta NAME`: the Meta section as JSON.
fn meta(name: &str, store: &Store) -> Result<i32> {
    validate_name(name)?;
    let config = store.load(name)?;
    print_json(&serde_json::to_value(config.meta.unwrap_or_default()).unwrap_or_default());
    Ok(0)
}

/// `config remove NAME`: asks first on a terminal, unless --yes.
fn remove(name: &str, yes: bool, store: &Store) -> Result<i32> {
    let path = store.path(name)?;
    if !store.exists(name)? {
        return Err(Error::config(format!(
            "no config named {name:?} in {}",
            display_path(store.dir())
        ))
        .with_hint("list them: elhaz config list"));
    }
    if !yes && interactive() {
        let sure = super::prompt::confirm(
            &format!("Remove config {name} ({})?", display_path(&path)),
            false,
        )?;
        if !sure {
            eprintln!("elhaz: kept {name}");
            return Ok(1);
        }
    }
    let path = store.remove(name)?;
    eprintln!("elhaz: removed {}", display_path(&path));
    Ok(0)
}

fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// A failed prompt: Ctrl-C is a quiet 130, anything else changed nothing.
fn prompt_error(e: inquire::InquireError) -> Error {
    super::prompt::prompt_error(e, "nothing was changed")
}

/// Reads a config from PATH or stdin (`-`); also says where its Session.profile_name
/// is written (`file:line`), for [`check_new_profile`].
fn read_file(path: &Path) -> Result<(Config, String)> {
    let (text, path) = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| {
            Error::config(format!(
                "cannot read stdin: {}",
                crate::error::io_reason(&e)
            ))
        })?;
        (text, Path::new("<stdin>"))
    } else {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(Kind::Config, "cannot read", path, &e))?;
        (text, path)
    };
    let config = parse_config(&text, path)?;
    Ok((config, profile_at(path, &text)))
}

/// `file:line` of Session.profile_name in a config's text (`file` alone when the line
/// is not known).
fn profile_at(path: &Path, text: &str) -> String {
    let line = line_of_key(text, "Session.profile_name")
        .map(|l| format!(":{l}"))
        .unwrap_or_default();
    format!("{}{line}", display_path(path))
}

/// The source profile of a config about to be saved, when this save brings it (it
/// differs from `before`): refused, with where it is written (`at`), when the caller's
/// AWS files (`source`'s) have no such profile. A profile kept from before is not
/// checked again: a change of another field never fails on it.
fn check_new_profile(
    config: &Config,
    before: Option<&str>,
    at: &str,
    source: &SourceContext,
) -> Result<()> {
    let Some(profile) = config
        .session
        .as_ref()
        .and_then(|s| s.profile_name.as_deref())
    else {
        return Ok(());
    };
    if Some(profile) == before {
        return Ok(());
    }
    let profiles = AwsProfiles::load_sync(source)?;
    match fields::missing_profile(profile, &profiles, source) {
        None => Ok(()),
        Some(why) => Err(Error::config(format!("{at}: Session.profile_name: {why}"))
            .with_hint(fields::profile_hint(profile, &profiles))),
    }
}

/// The Session.profile_name of a config.
fn profile_of(config: &Config) -> Option<String> {
    config.session.as_ref()?.profile_name.clone()
}

fn add(a: ConfigAddArgs, store: &Store, source: &SourceContext) -> Result<i32> {
    let name = match a.name.get() {
        Some(n) => n.to_string(),
        None if interactive() => super::line::Line::new("Config name:")
            .check(|s| validate_name(s).map_err(|e| e.message))
            .ask()?
            .to_string(),
        None => {
            return Err(Error::usage(
                "config add needs a NAME: elhaz config add NAME --role-arn ARN",
            ));
        }
    };
    let path = store.path(&name)?;
    check_flags(&a.fields, source)?;
    let mut overwrite = a.force;
    if !overwrite && store.exists(&name)? && !path.is_dir() {
        if interactive() {
            overwrite =
                super::prompt::confirm(&format!("Config {name} exists. Overwrite it?"), false)?;
            if !overwrite {
                eprintln!("elhaz: kept {name}; nothing was changed");
                return Ok(1);
            }
        } else {
            return Err(Error::config(format!("config {name:?} already exists"))
                .with_hint(format!("change it: elhaz config update {name}; or replace it: elhaz config add {name} --force")));
        }
    }
    let config = if let Some(file) = &a.from_file {
        let (mut c, at) = read_file(file)?;
        apply_fields(&mut c, &a.fields)?;
        check_new_profile(&c, a.fields.profile.as_deref(), &at, source)?;
        c
    } else if a.editor {
        edit_until_valid(store, &name, &template(), None, source)?
    } else if has_fields(&a.fields) {
        let mut c = Config::default();
        apply_fields(&mut c, &a.fields)?;
        if c.assume_role.is_none() {
            return Err(Error::usage(
                "config add needs --role-arn ARN, --from-file PATH or --editor",
            )
            .with_hint(format!(
                "elhaz config add {name} --role-arn arn:aws:iam::123456789012:role/NAME"
            )));
        }
        c
    } else if interactive() {
        prompt_new(store, &name, source)?
    } else {
        return Err(
            Error::usage("config add needs --role-arn ARN, --from-file PATH or --editor")
                .with_hint(format!(
                    "elhaz config add {name} --role-arn arn:aws:iam::123456789012:role/NAME"
                )),
        );
    };
    let path = store.save(&name, &config, overwrite)?;
    eprintln!("elhaz: saved {}", display_path(&path));
    Ok(0)
}

fn update(a: ConfigUpdateArgs, store: &Store, source: &SourceContext) -> Result<i32> {
    let name = match a.name.get() {
        Some(n) => n.to_string(),
        None => pick_config(store)?,
    };
    validate_name(&name)?;
    // Fails early, with the usual message, when the config is missing or invalid.
    let current_text = store.load_text(&name)?;
    check_flags(&a.fields, source)?;
    // The source profile it names now (none when it does not parse): kept, it is not
    // checked again.
    let before = parse_config(&current_text, &store.path(&name)?)
        .ok()
        .and_then(|c| profile_of(&c));
    let path = if let Some(file) = &a.from_file {
        let (mut replacement, at) = read_file(file)?;
        apply_fields(&mut replacement, &a.fields)?;
        let kept = a.fields.profile.as_deref().or(before.as_deref());
        check_new_profile(&replacement, kept, &at, source)?;
        store.replace(&name, &replacement)?
    } else if a.editor || (!has_fields(&a.fields) && interactive()) {
        if !a.editor {
            // No flags on a terminal: prompts, or the editor.
            let how = inquire::Select::new(
                &format!("Update {name}:"),
                vec!["Answer prompts", "Open $EDITOR"],
            )
            .prompt()
            .map_err(prompt_error)?;
            if how == "Answer prompts" {
                let current = store.load(&name)?;
                let changed = prompt_fields(Some(&current), source)?;
                return finish_update(store, &name, move |mut c| {
                    apply_fields(&mut c, &changed)?;
                    Ok(c)
                });
            }
        }
        let edited = edit_until_valid(store, &name, &current_text, before.as_deref(), source)?;
        store.replace(&name, &edited)?
    } else if has_fields(&a.fields) {
        let fields = a.fields.clone();
        store.update(&name, move |mut c| {
            apply_fields(&mut c, &fields)?;
            Ok(c)
        })?
    } else {
        return Err(Error::usage(
            "config update needs flags to change, --from-file PATH or --editor",
        )
        .with_hint(format!("elhaz config update {name} --duration 1h")));
    };
    eprintln!("elhaz: saved {}", display_path(&path));
    Ok(0)
}

fn finish_update(
    store: &Store,
    name: &str,
    change: impl FnOnce(Config) -> Result<Config>,
) -> Result<i32> {
    let path = store.update(name, change)?;
    eprintln!("elhaz: saved {}", display_path(&path));
    Ok(0)
}

/// NAME, else a picker over the configs (never profiles: these commands read and
/// change config files).
fn config_name(name: Option<&str>, store: &Store) -> Result<String> {
    match name {
        Some(n) => Ok(n.to_string()),
        None => pick_config(store),
    }
}

/// A picker over elhaz configs only (for commands that change files).
fn pick_config(store: &Store) -> Result<String> {
    let names = store.names()?;
    if names.is_empty() {
        return Err(Error::usage("there are no configs")
            .with_hint("create one: elhaz config add NAME --role-arn ARN"));
    }
    if !interactive() {
        return Err(Error::usage(format!(
            "no NAME given; choose one of: {}",
            names.join(", ")
        )));
    }
    inquire::Select::new("Which config?", names)
        .prompt()
        .map_err(prompt_error)
}

/// The role name the editor template leaves for the user to replace.
const PLACEHOLDER_ROLE: &str = "role/CHANGE-ME";

fn template() -> String {
    "# elhaz config: only AssumeRole.RoleArn is required.\n\
AssumeRole:\n  RoleArn: arn:aws:iam::123456789012:role/CHANGE-ME\n  # RoleSessionName: me\n  # DurationSeconds: 3600\n  # ExternalId: id\n  # SerialNumber: arn:aws:iam::123456789012:mfa/me\n\
# MFA:\n#   command: ykman oath accounts code -s aws\n\
# Session:\n#   region_name: eu-west-1\n#   profile_name: my-sso\n\
# Meta:\n#   description: what this role is for\n"
        .to_string()
}

/// Opens $VISUAL/$EDITOR on `initial` until the text is a valid config, or the user
/// gives up (then nothing is changed). The file lives in the config directory (0600,
/// 0700 directory) and is removed afterwards. A new source profile is checked against
/// `source`'s AWS files.
fn edit_until_valid(
    store: &Store,
    name: &str,
    initial: &str,
    before_profile: Option<&str>,
    source: &SourceContext,
) -> Result<Config> {
    if !interactive() {
        return Err(Error::usage("--editor needs a terminal"));
    }
    crate::fsutil::ensure_private_dir(store.dir(), Kind::Config)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.edit-"))
        .suffix(".yaml")
        .tempfile_in(store.dir())
        .map_err(|e| Error::io(Kind::Config, "cannot create a file in", store.dir(), &e))?;
    std::io::Write::write_all(&mut tmp, initial.as_bytes())
        .map_err(|e| Error::io(Kind::Config, "cannot write", tmp.path(), &e))?;
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| {
            std::env::var("EDITOR")
                .ok()
                .filter(|s| !s.trim().is_empty())
        })
        .unwrap_or_else(|| "vi".into());
    loop {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{editor} \"$1\""))
            .arg("sh")
            .arg(tmp.path())
            .status()
            .map_err(|e| {
                Error::usage(format!(
                    "cannot run the editor {editor:?}: {}",
                    crate::error::io_reason(&e)
                ))
            })?;
        if !status.success() {
            return Err(Error::usage(format!(
                "the editor {editor:?} failed ({status}); nothing was changed"
            )));
        }
        let text = std::fs::read_to_string(tmp.path())
            .map_err(|e| Error::io(Kind::Config, "cannot read", tmp.path(), &e))?;
        if text == initial {
            // Quitting the editor without a change means no (as git commit takes it).
            return Err(Error::other(format!(
                "{name}: the file was not changed; nothing was saved"
            )));
        }
        let path = store.path(name)?;
        let parsed = parse_config(&text, &path).and_then(|c| {
            if c.role_arn().is_some_and(|a| a.ends_with(PLACEHOLDER_ROLE)) {
                return Err(Error::config(format!(
                    "{name}: AssumeRole.RoleArn is still the template's {PLACEHOLDER_ROLE}"
                )));
            }
            check_new_profile(&c, before_profile, &profile_at(&path, &text), source)?;
            Ok(c)
        });
        match parsed {
            Ok(c) => return Ok(c),
            Err(e) => {
                eprintln!("elhaz: {e}");
                let again =
                    super::prompt::confirm("Edit again? (no: discard, nothing is changed)", true)?;
                if !again {
                    return Err(Error::config("edit discarded; nothing was changed"));
                }
            }
        }
    }
}

/// Prompts for a new config (or the editor).
fn prompt_new(store: &Store, name: &str, source: &SourceContext) -> Result<Config> {
    let how = inquire::Select::new(
        &format!("Create {name}:"),
        vec!["Answer prompts", "Open $EDITOR"],
    )
    .prompt()
    .map_err(prompt_error)?;
    if how == "Open $EDITOR" {
        return edit_until_valid(store, name, &template(), None, source);
    }
    let fields = prompt_fields(None, source)?;
    let mut c = Config::default();
    apply_fields(&mut c, &fields)?;
    Ok(c)
}

/// One prompt whose answer is checked as it is given: a bad one is asked again at once,
/// with the reason, so a typo never costs the answers given before it. Empty, or the
/// current value unchanged, is None (keep).
fn ask(
    label: &str,
    cur: Option<String>,
    help: &str,
    check: impl Fn(&str) -> std::result::Result<(), String> + Clone + 'static,
) -> Result<Option<String>> {
    let cur = cur.unwrap_or_default();
    let v = super::line::Line::new(label)
        .help(help)
        .initial(&cur)
        .check(move |s| check(s.trim()))
        .ask()?;
    Ok(Some(v.trim().to_string()).filter(|s| !s.is_empty() && *s != cur))
}

/// The source profile prompt: one of the caller's AWS profiles (those of `source`'s
/// files, listed in its help), or empty for the default chain. The current one may
/// stay as it is.
fn ask_profile(current: Option<String>, source: &SourceContext) -> Result<Option<String>> {
    let profiles = AwsProfiles::load_sync(source).unwrap_or_default();
    let help = if profiles.profiles.is_empty() {
        let config = source.config_file();
        let missing = if config.exists() {
            String::new()
        } else {
            format!(": {} does not exist", display_path(&config))
        };
        format!("empty: the default credential chain (there are no AWS profiles{missing})")
    } else {
        format!(
            "empty: the default chain; profiles: {}",
            profiles
                .names()
                .map(crate::terminal::escape_controls)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let keep = current.clone();
    let source = source.clone();
    ask("Source AWS profile:", current, &help, move |s: &str| {
        if s.is_empty() || Some(s) == keep.as_deref() {
            return Ok(());
        }
        fields::missing_profile(s, &profiles, &source).map_or(Ok(()), Err)
    })
}

/// Asks for the common fields; empty answers keep what is there.
fn prompt_fields(current: Option<&Config>, source: &SourceContext) -> Result<ConfigFields> {
    let ar = current.and_then(|c| c.assume_role.clone());
    let session = current.and_then(|c| c.session.clone()).unwrap_or_default();
    let role_arn = ask(
        "Role ARN:",
        ar.as_ref().map(|a| a.role_arn.clone()),
        "arn:aws:iam::ACCOUNT:role/NAME",
        if ar.is_some() {
            fields::role_arn_or_empty
        } else {
            fields::role_arn
        },
    )?;
    let profile = ask_profile(session.profile_name.clone(), source)?;
    let region = ask(
        "Region:",
        session.region_name.clone(),
        "e.g. eu-west-1; empty: none",
        fields::region,
    )?;
    let duration = ask(
        "Duration:",
        ar.as_ref()
            .and_then(|a| a.duration_seconds)
            .map(|d| d.to_string()),
        "900 to 43200 seconds, or 1h; empty: STS default (1h)",
        fields::duration,
    )?
    .map(|d| d.parse().map_err(|e: String| Error::usage(e)))
    .transpose()?;
    let serial = ask(
        "MFA device ARN:",
        ar.as_ref().and_then(|a| a.serial_number.clone()),
        "empty: no MFA",
        fields::mfa_serial,
    )?;
    let description = ask(
        "Description:",
        current.and_then(|c| c.description().map(str::to_string)),
        "for people; never sent to AWS",
        fields::anything,
    )?;
    Ok(ConfigFields {
        role_arn,
        duration,
        serial_number: serial,
        region,
        profile,
        description,
        ..ConfigFields::default()
    })
}
