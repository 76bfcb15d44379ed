//! The `elhaz` binary: captures the caller's sources, scrubs what an outer session
//! injected, parses the command line, sets up logging and runs the command. Everything
//! else is in the library.

use clap::FromArgMatches;

fn main() {
    quiet_stdout_failures();
    // Before any thread: the caller's source context and the outer session, once,
    // before the scrub (inside a session the context comes from the ELHAZ_SOURCE_* the
    // session carries, never from what was injected); then drop the credentials the
    // outer session injected so they are never used as source credentials.
    let caller = elhaz::context::CallerContext::capture();
    // SAFETY: no thread has been started yet.
    unsafe { elhaz::context::forget_source_carriers() };
    elhaz::env::scrub_injected();
    // Its memory may hold source keys for as long as it runs (a `--server` supervisor,
    // a login waiting for the browser): no other process of this user reads it, and
    // no core file is written. A command it execs is dumpable again.
    elhaz::harden_process();

    // `COMPLETE=bash elhaz -- ...`: the completion scripts ask here (names live).
    elhaz::cmd::answer_completion_request(&caller);

    let cli = parse();
    let daemon_run = matches!(
        cli.command,
        elhaz::cli::Command::Daemon(elhaz::cli::DaemonCommand::Run)
    );
    if daemon_run {
        // The daemon keeps its start-up context in memory (for clients that send none)
        // and nothing it spawns inherits the keys.
        // SAFETY: no thread has been started yet (the runtime and the log writer start
        // later, in the command).
        unsafe { elhaz::context::forget_secret_sources() };
    } else {
        elhaz::logging::init_cli(cli.global.verbose);
    }
    let code = match elhaz::cmd::run(cli, caller) {
        Ok(code) => code,
        Err(e) => {
            // Ctrl-C at a prompt says nothing: the user knows.
            if !(e.kind == elhaz::error::Kind::Interrupted && e.message.is_empty()) {
                eprintln!("elhaz: {e}");
            }
            e.exit_code()
        }
    };
    std::process::exit(code);
}

/// The command line, as `Cli::parse()` reads it, except that clap's command tree is
/// not freed afterwards: this process runs one command and exits, and dropping the
/// tree (hundreds of small allocations) would be a measurable part of its start.
fn parse() -> elhaz::cli::Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut command = elhaz::cli::command_for(&args);
    // A global option's variable set empty, or to what the option refuses, is left out
    // of the parse: the refusal names the variable (not the option), and `hook` and
    // `completions` work whatever the environment holds.
    let (unset, refused) = elhaz::cli::check_variables(&command, &args);
    if !unset.is_empty() {
        for var in unset {
            // SAFETY: no thread has been started yet.
            unsafe { std::env::remove_var(var) };
        }
        // clap reads a variable when the command is built: build it again without.
        command = elhaz::cli::command_for(&args);
    }
    let mut matches = command
        .try_get_matches_from_mut(args.iter())
        .unwrap_or_else(|e| {
            // The help clap shows for a command given without its subcommand is the
            // quiet one too.
            let e = match e.kind() {
                clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    elhaz::cli::command()
                        .try_get_matches_from(args.iter())
                        .err()
                        .unwrap_or(e)
                }
                _ => e,
            };
            elhaz::cli::rank_suggestions(e).exit()
        });
    let cli = elhaz::cli::Cli::from_arg_matches_mut(&mut matches)
        .unwrap_or_else(|e| e.format(&mut command).exit());
    std::mem::forget(command);
    if let Some(e) = refused {
        use elhaz::cli::Command::{Completions, Hook};
        if !matches!(cli.command, Hook(_) | Completions(_)) {
            eprintln!("elhaz: {e}");
            std::process::exit(e.exit_code());
        }
    }
    cli
}

/// print!/println! panic when stdout cannot be written ("failed printing to stdout:
/// Broken pipe (os error 32)", exit 101). A reader that stopped reading (`elhaz daemon
/// logs | head`) ends elhaz quietly, as SIGPIPE ends other tools; any other failure
/// (a full disk, /dev/full) is one line. `export` checks its writes itself and says so
/// even for a broken pipe: there, the reader did not get the credentials.
fn quiet_stdout_failures() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if let Some(reason) = payload.strip_prefix("failed printing to stdout: ") {
            if !reason.starts_with("Broken pipe") {
                let reason = reason.split(" (os error").next().unwrap_or(reason);
                eprintln!("elhaz: cannot write to stdout: {}", reason.to_lowercase());
            }
            std::process::exit(1);
        }
        default_hook(info);
        // The release build aborts on panic (smaller binary, no unwinding tables). An
        // abort raises SIGABRT, which can leave a core file holding credentials: leave
        // with the status an unwound panic has instead.
        tracing::error!("{info}");
        std::process::exit(101);
    }));
}
