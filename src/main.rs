use clap::Parser;

fn main() {
    // Before any thread: remember the outer session, then drop credentials it injected
    // so they are never used as source credentials.
    elhaz::cmd::set_outer_session(std::env::var("ELHAZ_SESSION").ok());
    elhaz::env::scrub_injected();

    // `COMPLETE=bash elhaz -- ...`: the completion scripts ask here (names live).
    clap_complete::CompleteEnv::with_factory(|| {
        <elhaz::cli::Cli as clap::CommandFactory>::command()
    })
    .complete();

    let cli = elhaz::cli::Cli::parse();
    let daemon_run = matches!(
        cli.command,
        elhaz::cli::Command::Daemon(elhaz::cli::DaemonCommand::Run)
    );
    if !daemon_run {
        elhaz::logging::init_cli(cli.global.verbose);
    }
    let code = match elhaz::cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("elhaz: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
