//! The profiles `elhaz sso sync` keeps in the AWS config file: one per account and
//! role, inside a block of its own per SSO session,
//!
//! ```text
//! # BEGIN elhaz sso sync: corp
//! # Written by `elhaz sso sync corp`: changes between these two lines are replaced.
//!
//! [profile dev-administratoraccess]
//! sso_session = corp
//! ...
//! # END elhaz sso sync: corp
//! ```
//!
//! Only the block changes; every byte outside it stays as it was. Names are the account
//! name and the role, lowercased, with anything but `a-z 0-9 -` turned into `-`. When
//! entries of two accounts would get the same name, they get their account id appended;
//! an entry keeps the name the block already gives it while that is still one of its
//! names. A name that a profile outside the block, the credentials file or an elhaz
//! config already uses is skipped, never shadowed.
//! It knows the file's text and nothing of the portal or the terminal.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::accounts::AccountRole;
use super::session::SsoSession;
use crate::config::aws_ini::{self, FileKind, Ini, Named};
use crate::error::{Error, Result, display_path};

/// What the block of a session is delimited by.
fn markers(label: &str) -> (String, String) {
    (
        format!("# BEGIN elhaz sso sync: {label}"),
        format!("# END elhaz sso sync: {label}"),
    )
}

/// A profile name made of `parts`: lowercase ASCII letters, digits and single dashes.
pub(crate) fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// One profile as the block holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Section {
    name: String,
    fields: BTreeMap<String, String>,
    /// Its lines as they are in the file (header included, trailing blank lines not).
    raw: String,
}

/// A session's block in the file.
#[derive(Clone, Copy, Debug)]
struct Block {
    /// From the start of its BEGIN line to the end of its END line.
    bytes: (usize, usize),
    /// The BEGIN and END lines (1-based).
    lines: (usize, usize),
}

/// Where the block is in the text, or None.
fn find_block(text: &str, label: &str, file: &Path) -> Result<Option<Block>> {
    let (begin, end) = markers(label);
    let mut start: Option<(usize, usize)> = None;
    let mut found = None;
    let mut offset = 0;
    for (i, line) in aws_ini::split_lines(text).into_iter().enumerate() {
        let bare = aws_ini::content(line).trim_end();
        let at = format!("{}:{}", display_path(file), i + 1);
        if bare == begin {
            if start.is_some() || found.is_some() {
                return Err(broken(&at, "a second", &begin));
            }
            start = Some((offset, i + 1));
        } else if bare == end {
            let Some((s, first)) = start.take() else {
                return Err(broken(&at, "an", &end).with_hint(format!(
                    "remove that line, or put `{begin}` before the block"
                )));
            };
            found = Some(Block {
                bytes: (s, offset + line.len()),
                lines: (first, i + 1),
            });
        }
        offset += line.len();
    }
    if let Some((_, line)) = start {
        let at = format!("{}:{line}", display_path(file));
        return Err(
            Error::config(format!("{at}: `{begin}` has no `{end}` after it"))
                .with_hint(format!("add `{end}` where the generated profiles end")),
        );
    }
    Ok(found)
}

fn broken(at: &str, which: &str, line: &str) -> Error {
    Error::config(format!(
        "{at}: {which} `{line}` line; the file is not as elhaz left it"
    ))
    .with_hint("keep one BEGIN and one END line per session, in that order")
}

/// The profiles inside the block, as the reader found them: each from its header to
/// the next header or the END line.
fn parse_block(ini: &Ini, text: &str, block: Block) -> Vec<Section> {
    let (begin, end) = block.lines;
    let lines = aws_ini::split_lines(text);
    let inside: Vec<&aws_ini::Section> = ini
        .sections
        .iter()
        .filter(|s| s.line > begin && s.line < end)
        .collect();
    let mut sections = Vec::new();
    for (i, s) in inside.iter().enumerate() {
        let Named::Profile(name) = ini.named(s) else {
            continue;
        };
        let stop = inside.get(i + 1).map_or(end, |next| next.line);
        let mut raw = lines[s.line - 1..stop - 1].concat().trim_end().to_string();
        raw.push('\n');
        let fields = s
            .entries
            .iter()
            .filter(|e| e.first_line < end)
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect();
        sections.push(Section { name, fields, raw });
    }
    sections
}

/// The names of the profiles the file defines outside the block (`[default]`,
/// `[profile X]`, and the bare `[X]` some tools write).
fn names_outside(ini: &Ini, block: Option<Block>) -> BTreeSet<String> {
    let (begin, end) = block.map_or((0, 0), |b| b.lines);
    ini.sections
        .iter()
        .filter(|s| s.line < begin || s.line > end)
        .filter_map(|s| match ini.named(s) {
            Named::Profile(n) => Some(n),
            Named::Other if !s.header.contains(char::is_whitespace) => Some(s.header.clone()),
            _ => None,
        })
        .collect()
}

/// A profile the portal lists now, with the name it gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) role: AccountRole,
}

/// What a sync changes.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub(crate) before: String,
    pub(crate) after: String,
    /// The profiles written from the portal's list, by name.
    pub(crate) written: Vec<Entry>,
    /// Names that were not in the block before.
    pub(crate) added: Vec<String>,
    /// Names in the block before and after whose profile changed.
    pub(crate) changed: Vec<String>,
    /// Names the block held that are gone from it: the portal no longer lists them
    /// (with --prune), or the name is now used elsewhere (see `displaced`)…
    pub(crate) removed: Vec<String>,
    /// (name, where it is now used): removed from the block, as the name is taken.
    pub(crate) displaced: Vec<(String, String)>,
    /// …and kept without it.
    pub(crate) kept: Vec<String>,
    /// (name, why): not written, and not in the block before.
    pub(crate) skipped: Vec<(String, String)>,
}

/// Options of one sync.
#[derive(Debug, Default, Clone)]
pub(crate) struct Options {
    pub(crate) prefix: Option<String>,
    pub(crate) prune: bool,
}

/// The names each (account, role) gets, in `roles`' order.
fn assign_names(roles: &[AccountRole], old: &[Section], prefix: Option<&str>) -> Vec<String> {
    let base = |r: &AccountRole| {
        let account = match normalise(&r.account_name) {
            a if a.is_empty() => r.account_id.clone(),
            a => a,
        };
        let role = match normalise(&r.role_name) {
            n if n.is_empty() => "role".to_string(),
            n => n,
        };
        normalise(&format!("{}-{account}-{role}", prefix.unwrap_or_default()))
    };
    let bases: Vec<String> = roles.iter().map(base).collect();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for b in &bases {
        *count.entry(b).or_default() += 1;
    }
    // What the block already calls an entry, if that is still one of its names (the
    // base, or the base with the account id or a number appended): it keeps it, so a
    // name changes only when the account or role does.
    let held = |r: &AccountRole, b: &str| -> Option<String> {
        let suffixed = |name: &str| {
            name.strip_prefix(b)
                .and_then(|t| t.strip_prefix('-'))
                .is_some_and(|t| {
                    !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit() || c == b'-')
                })
        };
        old.iter()
            .find(|s| {
                s.fields.get("sso_account_id") == Some(&r.account_id)
                    && s.fields.get("sso_role_name") == Some(&r.role_name)
                    && (s.name == b || suffixed(&s.name))
            })
            .map(|s| s.name.clone())
    };
    // A shared name across accounts: the others get their account id appended.
    let mut accounts: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (r, b) in roles.iter().zip(&bases) {
        accounts.entry(b).or_default().insert(&r.account_id);
    }
    let mut holder = vec![false; roles.len()];
    let mut names: Vec<String> = roles
        .iter()
        .zip(&bases)
        .zip(&mut holder)
        .map(|((r, b), holder)| {
            if let Some(name) = held(r, b) {
                *holder = true;
                name
            } else if count[b.as_str()] == 1 || accounts[b.as_str()].len() == 1 {
                b.clone()
            } else {
                normalise(&format!("{b}-{}", r.account_id))
            }
        })
        .collect();
    // Anything still shared (roles of one account differing only in case or
    // punctuation): a holder keeps the name, the others get -2, -3, … in order.
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut order: Vec<usize> = (0..roles.len()).collect();
    order.sort_by_key(|&i| !holder[i]);
    for i in order {
        if !used.insert(names[i].clone()) {
            let mut n = 2;
            while used.contains(&format!("{}-{n}", names[i])) {
                n += 1;
            }
            names[i] = format!("{}-{n}", names[i]);
            used.insert(names[i].clone());
        }
    }
    names
}

/// Why an entry cannot be written as it is (a portal that sends what AWS never does
/// must not be able to add lines to the file).
fn unwritable(r: &AccountRole) -> Option<String> {
    let id_ok = r.account_id.len() == 12 && r.account_id.bytes().all(|b| b.is_ascii_digit());
    let role_ok = (1..=128).contains(&r.role_name.len())
        && r.role_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    match (id_ok, role_ok) {
        (true, true) => None,
        (false, _) => Some(format!(
            "the portal sent an invalid account id {:?}",
            r.account_id
        )),
        (true, false) => Some(format!(
            "the portal sent an invalid role name {:?}",
            r.role_name
        )),
    }
}

/// The text of one generated profile.
fn render(entry: &Entry, session: &SsoSession) -> String {
    let r = &entry.role;
    let mut s = format!("[profile {}]\n", entry.name);
    match &session.name {
        Some(name) => s.push_str(&format!("sso_session = {name}\n")),
        None => s.push_str(&format!(
            "sso_start_url = {}\nsso_region = {}\n",
            session.start_url, session.region
        )),
    }
    s.push_str(&format!(
        "sso_account_id = {}\nsso_role_name = {}\nregion = {}\n",
        r.account_id, r.role_name, session.region
    ));
    s
}

/// Computes the new text of the config file. `taken` maps names used outside the
/// block (another file, an elhaz config) to where they are.
pub(crate) fn plan(
    text: &str,
    file: &Path,
    session: &SsoSession,
    roles: &[AccountRole],
    taken: &BTreeMap<String, String>,
    opts: &Options,
) -> Result<Plan> {
    let label = session.label();
    let ini = Ini::parse(text, file, FileKind::Config)?;
    let found = find_block(text, label, file)?;
    let (head, tail) = match found {
        Some(Block { bytes: (s, e), .. }) => (&text[..s], &text[e..]),
        None => (text, ""),
    };
    let old = found.map_or_else(Vec::new, |b| parse_block(&ini, text, b));
    let outside = names_outside(&ini, found);
    let where_taken = |name: &str| -> Option<String> {
        if outside.contains(name) {
            Some(format!(
                "a profile outside the block in {}",
                display_path(file)
            ))
        } else {
            taken.get(name).cloned()
        }
    };

    let mut sorted = roles.to_vec();
    sorted.sort();
    sorted.dedup();
    let names = assign_names(&sorted, &old, opts.prefix.as_deref());
    let mut plan = Plan {
        before: text.to_string(),
        ..Plan::default()
    };
    let old_names: BTreeSet<&str> = old.iter().map(|s| s.name.as_str()).collect();
    let mut sections: BTreeMap<String, String> = BTreeMap::new();
    for (name, role) in names.into_iter().zip(sorted) {
        if let Some(why) = unwritable(&role) {
            plan.skipped.push((name, why));
            continue;
        }
        if let Some(why) = where_taken(&name) {
            if !old_names.contains(name.as_str()) {
                plan.skipped
                    .push((name, format!("the name is already {why}")));
            }
            continue;
        }
        let entry = Entry { name, role };
        sections.insert(entry.name.clone(), render(&entry, session));
        plan.written.push(entry);
    }
    for s in &old {
        if let Some(new) = sections.get(&s.name) {
            if *new != s.raw {
                plan.changed.push(s.name.clone());
            }
            continue;
        }
        if let Some(why) = where_taken(&s.name) {
            plan.removed.push(s.name.clone());
            plan.displaced.push((s.name.clone(), why));
        } else if opts.prune || plan.skipped.iter().any(|(n, _)| *n == s.name) {
            plan.removed.push(s.name.clone());
        } else {
            plan.kept.push(s.name.clone());
            sections.insert(s.name.clone(), s.raw.clone());
        }
    }
    plan.added = plan
        .written
        .iter()
        .filter(|e| !old_names.contains(e.name.as_str()))
        .map(|e| e.name.clone())
        .collect();
    plan.written.sort_by(|a, b| a.name.cmp(&b.name));

    let (begin, end) = markers(label);
    let mut block = format!(
        "{begin}\n# Written by `elhaz sso sync {label}`: changes between these two lines are replaced.\n"
    );
    for s in sections.values() {
        block.push('\n');
        block.push_str(s);
    }
    block.push_str(&end);
    block.push('\n');

    let mut after = String::with_capacity(text.len() + block.len() + 2);
    after.push_str(head);
    if found.is_none() && !head.is_empty() {
        if !head.ends_with('\n') {
            after.push('\n');
        }
        after.push('\n');
    }
    after.push_str(&block);
    after.push_str(tail);
    plan.after = after;
    Ok(plan)
}

#[cfg(test)]
mod tests;
