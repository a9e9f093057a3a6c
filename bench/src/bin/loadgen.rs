//! Closed-loop gRPC load generator for the task service: `--concurrency` callers spread over
//! `--connections` HTTP/2 connections each send one call, wait for its answer and send the
//! next, for `--warmup` then `--duration` seconds. Reports requests/s, latency percentiles and
//! every status code seen, as one JSON object on stdout (and a summary on stderr). Prints
//! `window start` and `window end` on stderr when the measured window opens and closes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use svcgen_bench::tasks::task_service_client::TaskServiceClient;
use svcgen_bench::tasks::{CreateTaskRequest, GetTaskRequest, ListTasksRequest, Task};
use tonic::transport::{Channel, Endpoint};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Workload {
    /// GetTask of tasks created before the run.
    Get,
    /// CreateTask of a new task per call (the server assigns ids).
    Create,
    /// ListTasks: the first page of `--page-size` of a project holding more tasks than that.
    List,
}

#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// Server address, e.g. http://127.0.0.1:50051.
    #[arg(long)]
    target: String,
    #[arg(long, value_enum)]
    workload: Workload,
    /// Callers in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// HTTP/2 connections the callers share (round robin).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Tasks created before a get or list run, all in one project (the list's partition).
    #[arg(long, default_value_t = 2000)]
    seed: usize,
    /// Page size of the list workload.
    #[arg(long, default_value_t = 20)]
    page_size: i32,
    /// Per-call deadline in milliseconds.
    #[arg(long, default_value_t = 5000)]
    deadline_ms: u64,
}

/// What one caller saw during the measured window.
#[derive(Default)]
struct Tally {
    /// Every call made, the warm-up's too.
    made: u64,
    latencies_us: Vec<u32>,
    codes: BTreeMap<String, u64>,
}

/// A task shaped like production's: every field set, a description of a few hundred bytes.
fn task(project: &str, n: usize) -> Task {
    Task {
        project_id: project.to_owned(),
        title: format!("Migrate the billing export, step {n}"),
        description: format!(
            "Task {n}: move the nightly billing export off the legacy cron host. Acceptance: \
             the export runs from the scheduler, writes the same CSV columns in the same order, \
             alerts the on-call channel when a run fails, and the old host's job is disabled \
             after two clean runs. Links: runbook, dashboard, the export's schema."
        ),
        assignee: format!("user-{}", n % 16),
        state: i32::try_from(n % 3 + 1).unwrap_or(1),
        labels: vec![
            "billing".to_owned(),
            "migration".to_owned(),
            format!("q{}", n % 4 + 1),
        ],
        estimate: Some(3),
        due_time: Some(prost_types::Timestamp {
            seconds: 1_800_000_000 + i64::try_from(n).unwrap_or(0) * 3600,
            nanos: 0,
        }),
        ..Task::default()
    }
}

/// Creates `args.seed` tasks in `project`, `args.concurrency` at a time; their ids.
async fn seed(
    channels: &[Channel],
    project: &str,
    args: &Args,
) -> Result<Vec<String>, tonic::Status> {
    let seeders = args.concurrency.clamp(1, args.seed.max(1));
    let mut running = tokio::task::JoinSet::new();
    for seeder in 0..seeders {
        let mut client = TaskServiceClient::new(channels[seeder % channels.len()].clone());
        let (project, count) = (project.to_owned(), args.seed.max(1));
        running.spawn(async move {
            let mut ids = Vec::new();
            for n in (seeder..count).step_by(seeders) {
                let request = CreateTaskRequest {
                    task: Some(task(&project, n)),
                };
                ids.push(client.create_task(request).await?.into_inner().id);
            }
            Ok::<_, tonic::Status>(ids)
        });
    }
    let mut ids = Vec::new();
    while let Some(seeded) = running.join_next().await {
        ids.extend(seeded.map_err(|e| tonic::Status::internal(e.to_string()))??);
    }
    Ok(ids)
}

async fn call(
    client: &mut TaskServiceClient<Channel>,
    workload: Workload,
    ids: &[String],
    project: &str,
    n: usize,
    args: &Args,
) -> Result<(), tonic::Status> {
    let deadline = Duration::from_millis(args.deadline_ms);
    match workload {
        Workload::Get => {
            let mut request = tonic::Request::new(GetTaskRequest {
                project_id: project.to_owned(),
                id: ids[n % ids.len()].clone(),
            });
            request.set_timeout(deadline);
            client.get_task(request).await.map(drop)
        }
        Workload::Create => {
            let mut request = tonic::Request::new(CreateTaskRequest {
                task: Some(task(project, n)),
            });
            request.set_timeout(deadline);
            client.create_task(request).await.map(drop)
        }
        Workload::List => {
            let mut request = tonic::Request::new(ListTasksRequest {
                project_id: project.to_owned(),
                page_size: args.page_size,
                page_token: String::new(),
            });
            request.set_timeout(deadline);
            let page = client.list_tasks(request).await?.into_inner();
            if page.tasks.len() != usize::try_from(args.page_size).unwrap_or(0) {
                return Err(tonic::Status::data_loss(format!(
                    "page of {} tasks",
                    page.tasks.len()
                )));
            }
            Ok(())
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let endpoint = Endpoint::from_shared(args.target.clone())?;
    let mut channels = Vec::new();
    for _ in 0..args.connections.max(1) {
        channels.push(endpoint.connect().await?);
    }
    // One project per run, so repeated runs against one store do not see each other's tasks.
    let project = format!("bench-{}", uuid::Uuid::now_v7());
    let ids = if matches!(args.workload, Workload::Get | Workload::List) {
        seed(&channels, &project, &args).await?
    } else {
        Vec::new()
    };
    let ids = std::sync::Arc::new(ids);
    let args = std::sync::Arc::new(args);
    let project = std::sync::Arc::new(project);
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let stop_at = measure_from + Duration::from_secs_f64(args.duration);
    let mut callers = Vec::new();
    for caller in 0..args.concurrency.max(1) {
        let mut client = TaskServiceClient::new(channels[caller % channels.len()].clone());
        let (ids, args, project) = (ids.clone(), args.clone(), project.clone());
        callers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut n = caller * 1_000_000;
            loop {
                let sent = Instant::now();
                if sent >= stop_at {
                    return tally;
                }
                let result = call(&mut client, args.workload, &ids, &project, n, &args).await;
                n += 1;
                tally.made += 1;
                if sent < measure_from {
                    continue;
                }
                let code = match result {
                    Ok(()) => "OK".to_owned(),
                    Err(status) => format!("{:?}", status.code()),
                };
                *tally.codes.entry(code).or_default() += 1;
                let micros = sent.elapsed().as_micros();
                tally
                    .latencies_us
                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
            }
        }));
    }
    // Markers for whoever samples the server (CPU time) around the measured window.
    let markers = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        eprintln!("window start");
        tokio::time::sleep_until(stop_at.into()).await;
        eprintln!("window end");
    });
    let mut latencies = Vec::new();
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    let mut made = ids.len() as u64;
    for caller in callers {
        let tally = caller.await?;
        made += tally.made;
        latencies.extend(tally.latencies_us);
        for (code, count) in tally.codes {
            *codes.entry(code).or_default() += count;
        }
    }
    // Both markers are out before the report (the process would otherwise exit first).
    markers.await?;
    latencies.sort_unstable();
    let requests = latencies.len();
    let report = serde_json::json!({
        "workload": format!("{:?}", args.workload).to_lowercase(),
        "concurrency": args.concurrency,
        "connections": args.connections,
        "duration_s": args.duration,
        "requests": requests,
        // Every call made, seeding and warm-up included.
        "calls_made": made,
        "rps": requests as f64 / args.duration,
        "latency_ms": {
            "p50": percentile(&latencies, 50.0),
            "p90": percentile(&latencies, 90.0),
            "p99": percentile(&latencies, 99.0),
            "max": percentile(&latencies, 100.0),
        },
        "codes": codes,
    });
    eprintln!(
        "{:?}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, codes {:?}",
        args.workload,
        requests as f64 / args.duration,
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        codes
    );
    println!("{report}");
    Ok(())
}
