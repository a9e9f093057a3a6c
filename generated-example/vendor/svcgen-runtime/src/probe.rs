//! `<binary> health-probe`: a gRPC health probe built into every service binary, so that a
//! `scratch` image needs no extra download. Flags and exit codes follow `grpc_health_probe`:
//!
//! | exit | meaning |
//! | --- | --- |
//! | 0 | SERVING |
//! | 1 | invalid arguments |
//! | 2 | connection failed or timed out |
//! | 3 | the RPC failed or timed out |
//! | 4 | the service is not SERVING |

use std::process::ExitCode;
use std::time::Duration;

use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::health::NOT_SERVING;

/// The first argument that selects the probe instead of serving.
pub const SUBCOMMAND: &str = "health-probe";

const USAGE: &str =
    "usage: health-probe -addr=HOST:PORT [-service=NAME] [-connect-timeout=1s] [-rpc-timeout=1s]";

#[derive(Debug, PartialEq)]
struct Flags {
    addr: String,
    service: String,
    connect_timeout: Duration,
    rpc_timeout: Duration,
}

/// `500ms`, `1s`, `2m`, as Go durations are commonly written.
fn duration(text: &str) -> Option<Duration> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit() && c != '.')?);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return None,
    };
    (seconds.is_finite() && seconds > 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// Why the probe's arguments are unusable (exit code 1).
#[derive(Debug, thiserror::Error)]
enum FlagError {
    #[error("flag -{0} needs a value")]
    MissingValue(String),
    #[error("bad duration {0:?}")]
    BadDuration(String),
    #[error("unknown flag -{0}")]
    Unknown(String),
    #[error("-addr is required")]
    NoAddr,
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Flags, FlagError> {
    let mut flags = Flags {
        addr: String::new(),
        service: String::new(),
        connect_timeout: Duration::from_secs(1),
        rpc_timeout: Duration::from_secs(1),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let trimmed = arg.trim_start_matches('-');
        let (name, value) = match trimmed.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => (
                trimmed.to_owned(),
                args.next()
                    .ok_or_else(|| FlagError::MissingValue(trimmed.to_owned()))?,
            ),
        };
        match name.as_str() {
            "addr" => flags.addr = value,
            "service" => flags.service = value,
            "connect-timeout" => {
                flags.connect_timeout = duration(&value).ok_or(FlagError::BadDuration(value))?
            }
            "rpc-timeout" => {
                flags.rpc_timeout = duration(&value).ok_or(FlagError::BadDuration(value))?
            }
            other => return Err(FlagError::Unknown(other.to_owned())),
        }
    }
    if flags.addr.is_empty() {
        return Err(FlagError::NoAddr);
    }
    if flags.addr.starts_with(':') {
        flags.addr = format!("127.0.0.1{}", flags.addr);
    }
    Ok(flags)
}

/// Runs the probe with the arguments after the subcommand; never panics.
pub async fn run(args: impl IntoIterator<Item = String>) -> ExitCode {
    let flags = match parse(args) {
        Ok(flags) => flags,
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::from(1);
        }
    };
    let endpoint = match Endpoint::from_shared(format!("http://{}", flags.addr)) {
        Ok(endpoint) => endpoint.connect_timeout(flags.connect_timeout),
        Err(error) => {
            eprintln!("error: bad -addr {:?}: {error}\n{USAGE}", flags.addr);
            return ExitCode::from(1);
        }
    };
    let channel = match tokio::time::timeout(flags.connect_timeout, endpoint.connect()).await {
        Ok(Ok(channel)) => channel,
        Ok(Err(error)) => {
            eprintln!("error: connection to {} failed: {error}", flags.addr);
            return ExitCode::from(2);
        }
        Err(_) => {
            eprintln!(
                "error: connection to {} timed out after {:?}",
                flags.addr, flags.connect_timeout
            );
            return ExitCode::from(2);
        }
    };
    let request = HealthCheckRequest {
        service: flags.service.clone(),
    };
    let reply =
        tokio::time::timeout(flags.rpc_timeout, HealthClient::new(channel).check(request)).await;
    match reply {
        Ok(Ok(response)) if response.get_ref().status == ServingStatus::Serving as i32 => {
            println!("status: SERVING");
            ExitCode::SUCCESS
        }
        Ok(Ok(response)) => {
            let status = ServingStatus::try_from(response.get_ref().status)
                .unwrap_or(ServingStatus::Unknown);
            println!(
                "service unhealthy (responded with {:?})",
                status.as_str_name()
            );
            ExitCode::from(4)
        }
        Ok(Err(status))
            if status.code() == tonic::Code::Unavailable && status.message() == NOT_SERVING =>
        {
            println!("service unhealthy (responded with \"NOT_SERVING\")");
            ExitCode::from(4)
        }
        Ok(Err(status)) => {
            eprintln!(
                "error: health rpc failed: {} {}",
                status.code(),
                status.message()
            );
            ExitCode::from(3)
        }
        Err(_) => {
            eprintln!("error: health rpc timed out after {:?}", flags.rpc_timeout);
            ExitCode::from(3)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_grpc_health_probe_flags() {
        let flags = parse(args(&[
            "-addr=:50051",
            "-service",
            "tasks.TaskService",
            "-rpc-timeout=500ms",
        ]))
        .expect("valid");
        assert_eq!(flags.addr, "127.0.0.1:50051");
        assert_eq!(flags.service, "tasks.TaskService");
        assert_eq!(flags.rpc_timeout, Duration::from_millis(500));
        assert_eq!(flags.connect_timeout, Duration::from_secs(1));
    }

    #[test]
    fn rejects_bad_flags() {
        for bad in [
            &[][..],
            &["-addr"],
            &["-addr=:1", "-nope=1"],
            &["-addr=:1", "-rpc-timeout=soon"],
            &["-addr=:1", "-connect-timeout=0s"],
        ] {
            assert!(parse(args(bad)).is_err(), "{bad:?}");
        }
    }
}
