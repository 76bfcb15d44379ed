//! `elhaz completions SHELL`, and the hidden `elhaz __complete names PREFIX` that
//! completion scripts call for live config and profile names.

use clap::CommandFactory;

use super::Context;
use crate::cli::{Cli, CompleteArgs, CompletionsArgs};
use crate::config::AwsProfiles;
use crate::config::resolve::all_names;
use crate::error::{Error, Result};

/// The completion script for `shell`, as checked in under completions/.
pub fn generate(shell: clap_complete::Shell) -> String {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "elhaz", &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

pub fn run(args: CompletionsArgs) -> Result<i32> {
    print!("{}", generate(args.shell));
    Ok(0)
}

pub fn complete(args: CompleteArgs, ctx: &Context) -> Result<i32> {
    match args.what.as_str() {
        "names" => {
            let profiles = AwsProfiles::load_blocking().unwrap_or_default();
            for n in all_names(&ctx.store(), &profiles) {
                if n.starts_with(&args.prefix) {
                    println!("{n}");
                }
            }
            Ok(0)
        }
        other => Err(Error::usage(format!("cannot complete {other:?}: use names"))),
    }
}
