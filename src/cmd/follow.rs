//! `elhaz hook SHELL --pin PATH`: the hook's call when the working directory moved to
//! another pin's tree (or out of one). The hook finds the nearest `.elhaz.yaml` with
//! builtins and calls this only when that path differs from the last one; this decides
//! the rest and prints code for the hook to eval: switch the shell as `use NAME` would,
//! restore it as `use --clear` does, or leave it, and say why on stderr in one line.
//! Never fails: whatever goes wrong is the warning, and the shell keeps what it has.

use super::Context;
use super::pin::check;
use crate::cli::{GlobalArgs, HookArgs};
use crate::config::pins::{self, Pin, allowed, allowed::Trust};
use crate::context::CallerContext;
use crate::env::{Carried, Delivery, SessionEnv};
use crate::error::{Result, display_path};
use crate::shell::{ShellKind, end_line, set_global, unset_line};
use crate::terminal::escape_controls;

/// The hook's variable that names the NAME a pin switched the shell to.
pub(crate) const PINNED: &str = "_ELHAZ_PINNED";
/// The hook's variable that names the pin in whose tree an explicit `use` was made.
pub(crate) const USE_TREE: &str = "_ELHAZ_USE_TREE";
/// The hook's variable that names the NAME an explicit `use` gave the shell before a
/// pin switched it: leaving the pins' trees goes back to it.
pub(crate) const BEFORE_PIN: &str = "_ELHAZ_BEFORE_PIN";

/// What the shell holds now, as the hook tells it.
struct Held<'a> {
    /// The NAME a pin switched this shell to (empty: none).
    pinned: &'a str,
    /// The pin in whose tree the user ran `use NAME` (empty: none).
    use_tree: &'a str,
    /// Whether a `use` (or a pin) saved the shell's variables: without it, a session
    /// in the shell is `elhaz shell`'s own, which pins do not switch.
    stashed: bool,
    /// The NAME of a `use` made outside any pin's tree, before a pin switched the
    /// shell (empty: none).
    before_pin: &'a str,
}

/// What to do on this change of pin.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Nothing,
    Switch(Pin),
    Restore,
}

pub(crate) fn run(
    args: &HookArgs,
    shell: ShellKind,
    pin: &str,
    global: GlobalArgs,
    caller: CallerContext,
) {
    let held = Held {
        pinned: args.pinned.as_deref().unwrap_or_default(),
        use_tree: args.use_tree.as_deref().unwrap_or_default(),
        stashed: args.stashed.as_deref().is_some_and(|s| !s.is_empty()),
        before_pin: args.before_pin.as_deref().unwrap_or_default(),
    };
    let mut code = String::new();
    let ctx = match Context::new(global, caller) {
        Ok(ctx) => ctx,
        Err(e) => return warn_and_print(&code, shell, &e.message),
    };
    if !held.use_tree.is_empty() && held.use_tree != pin {
        // The user left the tree where they chose a NAME themselves: pins apply again.
        code.push_str(&unset_line(shell, USE_TREE));
    }
    let (step, warning) = decide(&ctx, pin, &held);
    match step {
        Step::Nothing => {}
        Step::Restore => {
            code.push_str(&restore(&ctx, shell, held.before_pin));
            code.push_str(&unset_line(shell, PINNED));
            code.push_str(&unset_line(shell, BEFORE_PIN));
        }
        Step::Switch(p) => match switch(&ctx, shell, &p.name, p.region.as_deref(), outside(&ctx)) {
            Ok(c) => {
                code.push_str(&c);
                code.push_str(&set_global(shell, PINNED, &p.name));
                if let Some(name) = used_before(&ctx, &held) {
                    code.push_str(&set_global(shell, BEFORE_PIN, name));
                }
                eprintln!(
                    "elhaz: using {} from {}",
                    escape_controls(&p.name),
                    escape_controls(&display_path(&p.path))
                );
            }
            Err(e) => {
                let first = e.message.lines().next().unwrap_or_default().to_string();
                return warn_and_print(
                    &code,
                    shell,
                    &format!("cannot switch to {}: {first}", p.name),
                );
            }
        },
    }
    if let Some(w) = warning {
        eprintln!("elhaz: {}", escape_controls(&w));
    }
    print!("{code}{}", end_line(shell));
}

fn warn_and_print(code: &str, shell: ShellKind, warning: &str) {
    eprintln!("elhaz: {}", escape_controls(warning));
    print!("{code}{}", end_line(shell));
}

/// The NAME to go back to when the shell leaves the pins' trees: the one an explicit
/// `use` outside any tree gave it, when this is the first pin to switch it.
fn used_before<'a>(ctx: &'a Context, held: &Held) -> Option<&'a str> {
    let first_switch =
        held.pinned.is_empty() && held.use_tree.is_empty() && held.before_pin.is_empty();
    let session = ctx.caller.outer_session.as_deref()?;
    (first_switch && held.stashed && !session.is_empty()).then_some(session)
}

/// The code that gives the shell back what it had before the pins: `use --clear`'s,
/// then, when it used a NAME then, `use NAME`'s as if typed anew (credentials asked as
/// the prompt asks). When NAME cannot be had now, the shell stays cleared and a line
/// says how to get it.
fn restore(ctx: &Context, shell: ShellKind, before: &str) -> String {
    let clear = super::use_::render(shell, None, outside(ctx));
    if before.is_empty() {
        return clear;
    }
    match switch(ctx, shell, before, None, true) {
        Ok(code) => clear + &code,
        Err(e) => {
            let first = e.message.lines().next().unwrap_or_default();
            eprintln!(
                "elhaz: {}",
                escape_controls(&format!(
                    "cannot go back to {before}: {first}; run: elhaz use {before}"
                ))
            );
            clear
        }
    }
}

/// Outside an elhaz session (before the first `use`): the keys in the environment
/// are the source, as for `use`.
fn outside(ctx: &Context) -> bool {
    ctx.caller
        .outer_session
        .as_deref()
        .is_none_or(str::is_empty)
}

/// The step for the pin at `path` (empty: no pin), and a warning line, if any.
fn decide(ctx: &Context, path: &str, held: &Held) -> (Step, Option<String>) {
    let leave = || {
        if held.pinned.is_empty() && (held.use_tree.is_empty() || held.use_tree == path) {
            Step::Nothing
        } else {
            Step::Restore
        }
    };
    if !held.use_tree.is_empty() && held.use_tree == path {
        return (Step::Nothing, None);
    }
    if path.is_empty() {
        return (leave(), None);
    }
    let pin = match pins::read(std::path::Path::new(path)).and_then(|p| check(ctx, &p).map(|()| p))
    {
        Ok(p) => p,
        Err(e) => return (leave(), Some(one_line(&e.message, "not followed"))),
    };
    match allowed::trust(&pin) {
        Ok(Trust::Allowed) => {}
        Ok(t) => {
            let w = format!(
                "{} wants {} ({}); run: elhaz allow {}",
                display_path(&pin.path),
                pin.name,
                t.reason(),
                pin.path
                    .parent()
                    .unwrap_or(std::path::Path::new("/"))
                    .display()
            );
            return (leave(), Some(w));
        }
        Err(e) => return (leave(), Some(one_line(&e.message, "not followed"))),
    }
    let own_session = ctx
        .caller
        .outer_session
        .as_deref()
        .filter(|s| !s.is_empty());
    if let Some(session) = own_session
        && !held.stashed
        && held.pinned.is_empty()
    {
        // An `elhaz shell NAME` session: not switched by pins.
        let w = (session != pin.name).then(|| {
            format!(
                "{} wants {}, but this is elhaz shell {session}: not switched",
                display_path(&pin.path),
                pin.name
            )
        });
        return (Step::Nothing, w);
    }
    if held.pinned == pin.name && held.use_tree.is_empty() {
        return (Step::Nothing, None);
    }
    (Step::Switch(pin), None)
}

fn one_line(message: &str, suffix: &str) -> String {
    format!("{}; {suffix}", message.lines().next().unwrap_or_default())
}

/// `use NAME`'s code for `name` (in `region`, else its own), from credentials asked
/// for as the prompt asks: never reading the terminal. `fresh`: as outside a session
/// (the shell's variables are saved first).
fn switch(
    ctx: &Context,
    shell: ShellKind,
    name: &str,
    region: Option<&str>,
    fresh: bool,
) -> Result<String> {
    let served = {
        let _quiet = crate::sys::mute_stderr();
        ctx.broker_for(name).credentials_at_prompt(name, 0)?
    };
    let region = region.or(served.region.as_deref());
    let env = SessionEnv::build(
        name,
        Delivery::Static(&served.credentials),
        region,
        &ctx.policy,
        Carried::of(&ctx.caller, &served),
    );
    Ok(super::use_::render(shell, Some(&env), fresh))
}
