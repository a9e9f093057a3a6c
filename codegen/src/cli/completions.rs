//! `svcgen completions`: the shell completion script, from clap's definition of the commands.

use std::process::ExitCode;

/// Prints the completion script for `shell`.
pub(super) fn run(shell: clap_complete::Shell) -> ExitCode {
    let mut command = <super::Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut command, "svcgen", &mut std::io::stdout());
    ExitCode::SUCCESS
}
