//! `svcgen deploy` and `svcgen status`: run on a Tokio runtime; deploy's steps are printed as
//! they happen, then its summary; status prints its report. Exit 2 for unusable input
//! (nothing was changed), 1 when AWS refused or the rollout failed.

use std::path::Path;
use std::process::ExitCode;

use svcgen::deploy::{DeployError, Event};

/// Deploys; every step's line goes to stdout when the step is done (warnings to stderr).
pub(super) fn deploy(options: svcgen::deploy::Options) -> ExitCode {
    let mut print = |event: &Event| {
        if event.is_warning() {
            eprintln!("{event}");
        } else {
            println!("{event}");
        }
    };
    let deployed = block_on(svcgen::deploy::deploy(&options, &mut print));
    exit(deployed.map(|result| result.map(|summary| println!("{summary}"))))
}

/// Prints the deployed service's status.
pub(super) fn status(dir: &Path, environment: Option<&str>, region: Option<&str>) -> ExitCode {
    let status = block_on(svcgen::deploy::status(dir, environment, region));
    exit(status.map(|result| result.map(|report| print!("{report}"))))
}

/// Calls the deployed service through the load balancer and prints what it answered.
pub(super) fn verify(dir: &Path, environment: Option<&str>, address: Option<&str>) -> ExitCode {
    let verified = block_on(svcgen::deploy::verify(dir, environment, address));
    exit(verified.map(|result| {
        result.map(|verified| {
            println!("verified: {verified}");
            println!("call it: {}", verified.command);
        })
    }))
}

/// Runs `task` on a single-threaded Tokio runtime; `None` (reported) when there is none.
pub(super) fn block_on<T>(task: impl Future<Output = T>) -> Option<T> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Some(runtime.block_on(task)),
        Err(error) => {
            eprintln!("error: {error}");
            None
        }
    }
}

/// The exit code of a command: 2 for unusable input, 1 for a failure (or no runtime).
fn exit(result: Option<Result<(), DeployError>>) -> ExitCode {
    match result {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(DeployError::Input(error))) => {
            eprintln!("error: {error}");
            eprintln!("nothing was changed");
            super::input_error()
        }
        Some(Err(DeployError::Failed(error))) => {
            eprintln!("error: {error}");
            super::failed()
        }
        None => super::failed(),
    }
}
