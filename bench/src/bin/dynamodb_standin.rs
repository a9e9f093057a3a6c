//! A stand-in for DynamoDB: answers the DynamoDB JSON protocol (HTTP POST, `X-Amz-Target:
//! DynamoDB_20120810.<Operation>`) with canned answers after a fixed delay, so that the
//! benchmark measures what a service adds to a DynamoDB call — not DynamoDB.
//!
//! `PutItem` keeps the item it carries (each server gets its own stand-in); `GetItem` answers
//! the last item kept, `Query` a page of `Limit` (at most 1000) copies of it with a
//! `LastEvaluatedKey`; other operations are refused. Every answer carries `ConsumedCapacity`
//! when asked for. `GET /stats` answers, as JSON, the requests served by operation, the
//! connections that carried them and the time slept before answering (tokio's timer rounds a
//! sleep up to the next millisecond, so the delay actually served is measured, not assumed).
//!
//! Environment: `LISTEN_ADDR` (default 127.0.0.1:8000), `DELAY_US` (default 5000). Prints
//! `serving <addr>` on stderr when it starts; SIGTERM/SIGINT stop it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

#[derive(Default)]
struct Standin {
    delay: Duration,
    /// The last item written.
    item: Mutex<Option<Value>>,
    requests: Mutex<BTreeMap<String, u64>>,
    /// Connections that carried a DynamoDB request (not only `GET /stats`).
    connections: AtomicU64,
    /// Microseconds slept before answering, over every request.
    slept_us: AtomicU64,
}

fn reply(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    response
}

/// `__type` as DynamoDB writes it, and a message.
fn error(kind: &str, message: &str) -> Response<Full<Bytes>> {
    reply(
        StatusCode::BAD_REQUEST,
        &json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"), "message": message}),
    )
}

impl Standin {
    fn stats(&self) -> Value {
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        json!({
            "requests": requests,
            "connections": self.connections.load(Ordering::Relaxed),
            "slept_us": self.slept_us.load(Ordering::Relaxed),
        })
    }

    /// The answer to `operation` with `input`.
    fn answer(&self, operation: &str, input: &Value) -> Response<Full<Bytes>> {
        let table = input["TableName"].as_str().unwrap_or_default();
        let capacity = |units: f64| -> Value {
            if input["ReturnConsumedCapacity"]
                .as_str()
                .is_some_and(|c| c != "NONE")
            {
                json!({"TableName": table, "CapacityUnits": units})
            } else {
                Value::Null
            }
        };
        let mut kept = self.item.lock().unwrap_or_else(PoisonError::into_inner);
        let mut body = match operation {
            "PutItem" => {
                *kept = Some(input["Item"].clone());
                json!({})
            }
            "GetItem" => kept
                .as_ref()
                .map_or_else(|| json!({}), |item| json!({"Item": item})),
            "Query" => {
                let limit = input["Limit"].as_u64().unwrap_or(20).min(1000);
                let items: Vec<Value> = kept
                    .iter()
                    .cycle()
                    .take(usize::try_from(limit).unwrap_or(20))
                    .cloned()
                    .collect();
                let last_key = kept
                    .as_ref()
                    .map(|item| json!({"pk": item["pk"].clone(), "sk": item["sk"].clone()}));
                json!({
                    "Items": items,
                    "Count": items.len(),
                    "ScannedCount": items.len(),
                    "LastEvaluatedKey": last_key,
                })
            }
            other => {
                return error(
                    "UnknownOperationException",
                    &format!("the stand-in does not answer {other}"),
                );
            }
        };
        drop(kept);
        if let (Some(fields), consumed @ Value::Object(_)) = (body.as_object_mut(), capacity(1.0)) {
            fields.insert("ConsumedCapacity".into(), consumed);
        }
        if let Some(fields) = body.as_object_mut() {
            fields.retain(|_, value| !value.is_null());
        }
        reply(StatusCode::OK, &body)
    }

    /// Answers `request`, arrived on a connection that has carried a DynamoDB request when
    /// `used` is set (and sets it).
    async fn serve(
        self: Arc<Self>,
        request: Request<Incoming>,
        used: Arc<AtomicBool>,
    ) -> Response<Full<Bytes>> {
        if request.method() == hyper::Method::GET && request.uri().path() == "/stats" {
            return reply(StatusCode::OK, &self.stats());
        }
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("DynamoDB_20120810."))
            .map(str::to_owned);
        let Some(operation) = operation else {
            return error("UnknownOperationException", "no X-Amz-Target");
        };
        let input: Value = match request.into_body().collect().await {
            Ok(body) => serde_json::from_slice(&body.to_bytes()).unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        if !input.is_object() {
            return error("SerializationException", "the body is not a JSON object");
        }
        if !used.swap(true, Ordering::Relaxed) {
            self.connections.fetch_add(1, Ordering::Relaxed);
        }
        *self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(operation.clone())
            .or_default() += 1;
        let started = Instant::now();
        tokio::time::sleep(self.delay).await;
        let slept = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.slept_us.fetch_add(slept, Ordering::Relaxed);
        self.answer(&operation, &input)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let delay_us: u64 = std::env::var("DELAY_US")
        .unwrap_or_else(|_| "5000".to_owned())
        .parse()?;
    let standin = Arc::new(Standin {
        delay: Duration::from_micros(delay_us),
        ..Standin::default()
    });
    svcgen_bench::serve_http("127.0.0.1:8000", || {
        let standin = standin.clone();
        let used = Arc::new(AtomicBool::new(false));
        hyper::service::service_fn(move |request| {
            let (standin, used) = (standin.clone(), used.clone());
            async move { Ok::<_, Infallible>(standin.serve(request, used).await) }
        })
    })
    .await
}
