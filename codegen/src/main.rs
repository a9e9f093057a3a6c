//! The `svcgen` binary: the command line is in [`cli`], the work in the `svcgen` library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
