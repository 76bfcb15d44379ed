//! `elhaz allow [DIR]`, `elhaz deny [DIR]`, `elhaz pin [NAME] [--region R]` and
//! `elhaz pin --show`; and the pin that commands without NAME use. The file and the
//! allow list are `crate::config::pins`'s; this layer checks that the NAME a pin
//! names is one of the user's own, and says what it does.

use std::path::{Path, PathBuf};

use super::Context;
use crate::cli::{AllowArgs, DenyArgs, PinArgs};
use crate::config::Source;
use crate::config::pins::{self, PIN_FILE, Pin, allowed, allowed::Trust};
use crate::error::{Error, Result, display_path};
use crate::terminal::escape_controls;

/// What a command without NAME runs as: the NAME, and the region its pin sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chosen {
    pub name: String,
    pub region: Option<String>,
}

/// The directory a command names (`.` when none), made absolute.
fn dir_arg(dir: Option<&Path>) -> Result<PathBuf> {
    let here = pins::working_dir()?;
    Ok(match dir {
        None => here,
        Some(d) if d.is_absolute() => d.to_path_buf(),
        Some(d) => here.join(d),
    })
}

/// The nearest pin file at or above `dir`, or the error that says there is none.
fn nearest(dir: &Path) -> Result<PathBuf> {
    pins::find_from(dir).ok_or_else(|| {
        Error::usage(format!(
            "no {PIN_FILE} in {} or any directory above it",
            display_path(dir)
        ))
        .with_hint("pin a NAME here: elhaz pin NAME")
    })
}

/// Checks that the pin names one of the user's own NAMEs that elhaz serves: a
/// config, or a profile that gives temporary credentials. The error names the pin's
/// file and line.
pub(crate) fn check(ctx: &Context, pin: &Pin) -> Result<()> {
    let at = format!("{}:{}", display_path(&pin.path), pin.name_line);
    let store = ctx.store();
    let source = crate::broker::runtime()?.block_on(crate::config::resolve(
        &store,
        &pin.name,
        &ctx.caller.source,
    ));
    match source {
        Ok(Source::Config(_)) => Ok(()),
        Ok(Source::Profile(p)) if p.is_name() => Ok(()),
        Ok(Source::Profile(p)) => Err(Error::config(format!(
            "{at}: the pin names {:?}, a profile of long-term keys only; a pin names a config or a profile elhaz serves",
            p.name
        ))
        .with_hint(format!(
            "make a role config that uses it: elhaz config add NAME --profile {} --role-arn ARN; then: elhaz pin NAME",
            p.name
        ))),
        Err(e) => {
            let mut out = Error::config(format!("{at}: the pin names {:?}: {}", pin.name, e.message));
            out.hint = e.hint;
            Err(out)
        }
    }
}

/// The error for a pin that is not (or no longer) allowed.
fn untrusted(pin: &Pin, trust: Trust) -> Error {
    let dir = pin.path.parent().unwrap_or(Path::new("/"));
    Error::config(format!(
        "{} wants {} ({}); elhaz follows a pin only once you allow it",
        display_path(&pin.path),
        pin.name,
        trust.reason()
    ))
    .with_hint(format!(
        "read it, then trust it: elhaz allow {}",
        dir.display()
    ))
}

/// The trusted pin of the working directory, checked; none when there is no pin. A
/// pin that cannot be read, is not allowed, or names no NAME of the user's is an
/// error, never a silent fallback.
pub(crate) fn here(ctx: &Context) -> Result<Option<Pin>> {
    let Some(path) = pins::find_from(&pins::working_dir()?) else {
        return Ok(None);
    };
    let pin = pins::read(&path)?;
    check(ctx, &pin)?;
    match allowed::trust(&pin)? {
        Trust::Allowed => Ok(Some(pin)),
        t => Err(untrusted(&pin, t)),
    }
}

/// NAME when given; else the trusted pin of the working directory, said on stderr;
/// else the picker.
pub(crate) fn choose(ctx: &Context, name: Option<&str>) -> Result<Chosen> {
    if let Some(n) = name {
        return Ok(Chosen {
            name: n.to_string(),
            region: None,
        });
    }
    if let Some(pin) = here(ctx)? {
        eprintln!(
            "elhaz: using {} from {}",
            escape_controls(&pin.name),
            escape_controls(&display_path(&pin.path))
        );
        return Ok(Chosen {
            name: pin.name,
            region: pin.region,
        });
    }
    Ok(Chosen {
        name: ctx.name(None)?,
        region: None,
    })
}

pub(crate) fn allow(args: AllowArgs, ctx: &Context) -> Result<i32> {
    let path = nearest(&dir_arg(args.dir.as_deref())?)?;
    let pin = pins::read(&path)?;
    check(ctx, &pin)?;
    allowed::allow(&pin)?;
    eprintln!(
        "elhaz: allowed {} ({}{})",
        escape_controls(&display_path(&pin.path)),
        escape_controls(&pin.name),
        region_note(&pin)
    );
    Ok(0)
}

fn region_note(pin: &Pin) -> String {
    pin.region
        .as_deref()
        .map(|r| format!(", region {}", escape_controls(r)))
        .unwrap_or_default()
}

pub(crate) fn deny(args: DenyArgs, _ctx: &Context) -> Result<i32> {
    let path = nearest(&dir_arg(args.dir.as_deref())?)?;
    let real = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
    let shown = escape_controls(&display_path(&path)).into_owned();
    if allowed::deny(&real)? {
        eprintln!("elhaz: denied {shown}: it is no longer followed");
    } else {
        eprintln!("elhaz: {shown} was not allowed; nothing to forget");
    }
    Ok(0)
}

pub(crate) fn pin(args: PinArgs, ctx: &Context) -> Result<i32> {
    if args.show {
        return show(ctx);
    }
    let name = ctx.name(args.name.as_deref())?;
    let text = pins::render(&name, args.region.as_deref())?;
    let path = pins::working_dir()?.join(PIN_FILE);
    // Checked before anything is written: a pin names only what the user has.
    let draft = Pin {
        real: path.clone(),
        path: path.clone(),
        name: name.clone(),
        region: args.region.clone(),
        name_line: 2,
        bytes: text.clone().into_bytes(),
    };
    check(ctx, &draft)?;
    if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_file()) {
        return Err(Error::config(format!(
            "{}: is not a regular file; elhaz will not replace it",
            display_path(&path)
        ))
        .with_hint(format!("move it away: mv {0} {0}.bak", path.display())));
    }
    crate::fsutil::write_atomic(&path, text.as_bytes(), crate::error::Kind::Config)?;
    let pin = pins::read(&path)?;
    allowed::allow(&pin)?;
    eprintln!(
        "elhaz: pinned {} to {} and allowed it",
        escape_controls(&name),
        escape_controls(&display_path(&path))
    );
    Ok(0)
}

/// `pin --show`: the pin that applies here, what it names, and whether it is obeyed.
fn show(ctx: &Context) -> Result<i32> {
    let here = pins::working_dir()?;
    let Some(path) = pins::find_from(&here) else {
        println!(
            "no pin: no {PIN_FILE} in {} or above",
            escape_controls(&display_path(&here))
        );
        return Ok(1);
    };
    let pin = pins::read(&path)?;
    check(ctx, &pin)?;
    let trust = allowed::trust(&pin)?;
    let shown = escape_controls(&display_path(&pin.path)).into_owned();
    let what = format!("{}{}", escape_controls(&pin.name), region_note(&pin));
    if trust == Trust::Allowed {
        println!("{what} from {shown}: allowed");
        return Ok(0);
    }
    let dir = pin.path.parent().unwrap_or(Path::new("/"));
    println!(
        "{what} from {shown}: not followed ({}); run: elhaz allow {}",
        trust.reason(),
        escape_controls(&dir.display().to_string())
    );
    Ok(1)
}
