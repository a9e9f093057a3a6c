//! `svcgen cost`: the DynamoDB requests and capacity units of one call of each RPC, estimated
//! from the model or measured from a run's log.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use svcgen::cost::{self, DEFAULT_ITEM_BYTES};

/// `ENTITY=BYTES`.
pub(super) fn item_bytes(value: &str) -> Result<(String, usize), String> {
    let (entity, bytes) = value
        .split_once('=')
        .ok_or_else(|| format!("`{value}`: write ENTITY=BYTES, e.g. Task=2500"))?;
    match bytes.parse::<usize>() {
        Ok(bytes @ 1..=409_600) => Ok((entity.to_owned(), bytes)),
        _ => Err(format!(
            "`{bytes}`: an item's size is 1 to 409600 bytes (DynamoDB's 400 KB)"
        )),
    }
}

pub(super) fn run(dir: &Path, item_bytes: &[(String, usize)], from_log: Option<&Path>) -> ExitCode {
    let project = match svcgen::load(dir) {
        Ok(project) => project,
        Err(error) => {
            super::report(error);
            return super::input_error();
        }
    };
    let entities: Vec<&str> = project
        .model
        .entities
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    if let Some((unknown, _)) = item_bytes
        .iter()
        .find(|(e, _)| !entities.contains(&e.as_str()))
    {
        eprintln!(
            "error: --item-bytes {unknown}=…: no entity `{unknown}` (entities: {})",
            entities.join(", ")
        );
        return super::input_error();
    }
    if let Some(path) = from_log {
        if !item_bytes.is_empty() {
            eprintln!("note: --item-bytes is for estimates; --from-log measures");
        }
        return match std::fs::read_to_string(path) {
            Ok(log) => print_measured(&cost::measured(&log), path),
            Err(error) => {
                eprintln!("error: reading {}: {error}", path.display());
                super::input_error()
            }
        };
    }
    let sizes: BTreeMap<String, usize> = item_bytes.iter().cloned().collect();
    let sized: Vec<String> = entities
        .iter()
        .map(|e| {
            format!(
                "{e} {} B",
                sizes.get(*e).copied().unwrap_or(DEFAULT_ITEM_BYTES)
            )
        })
        .collect();
    let costs = cost::estimate(&project.model, &sizes);
    let width = costs.iter().map(|c| c.rpc.len()).max().unwrap_or(3);
    let mut out = format!(
        "Per call, estimated for items of {} (--item-bytes ENTITY=BYTES):\n\n{:<width$} {:>7} {:>7}  store requests\n",
        sized.join(", "),
        "rpc",
        "RCU",
        "WCU"
    );
    for rpc in &costs {
        let requests: Vec<String> = rpc
            .requests
            .iter()
            .map(|r| format!("{} {}", r.operation, r.subject))
            .collect();
        let requests = match (rpc.hand_written, requests.is_empty()) {
            (true, true) => "hand-written, declares none".to_owned(),
            (true, false) => format!("hand-written, each declared once: {}", requests.join(", ")),
            (false, _) => requests.join(", "),
        };
        let (read, write) = (rpc.read(), rpc.write());
        out.push_str(&format!(
            "{:<width$} {read:>7} {write:>7}  {requests}\n",
            rpc.rpc
        ));
    }
    out.push_str(
        "\nOn-demand tables bill these as request units: per million calls, RCU million read and WCU million write request units.\n",
    );
    print(&out)
}

/// Writes `text` to stdout; a closed pipe (`| head`) is not an error, a full disk is.
fn print(text: &str) -> ExitCode {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("error: writing the table: {error}");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}

#[allow(clippy::cast_precision_loss)] // call counts of one log
fn print_measured(totals: &BTreeMap<String, cost::Measured>, path: &Path) -> ExitCode {
    if totals.is_empty() {
        eprintln!(
            "error: {} holds no per-call log lines (target svcgen::access)",
            path.display()
        );
        return super::input_error();
    }
    let width = totals.keys().map(String::len).max().unwrap_or(3);
    let mut out = format!(
        "Per call, measured from {}:\n\n{:<width$} {:>7} {:>9} {:>7} {:>7}\n",
        path.display(),
        "rpc",
        "calls",
        "requests",
        "RCU",
        "WCU"
    );
    for (rpc, total) in totals {
        let per_call = |value: f64| value / total.calls as f64;
        out.push_str(&format!(
            "{rpc:<width$} {:>7} {:>9.2} {:>7.2} {:>7.2}\n",
            total.calls,
            per_call(total.requests as f64),
            per_call(total.read),
            per_call(total.write)
        ));
    }
    print(&out)
}
