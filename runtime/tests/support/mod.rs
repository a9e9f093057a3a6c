//! DynamoDB endpoints for the tests: a loopback HTTP server that plays one from a script (each
//! request's `X-Amz-Target` operation and body go to a handler that returns the HTTP status and
//! the JSON body to answer with, shaped like AWS's: error bodies carry `__type` and `message`),
//! and the DynamoDB-API server of the test run (moto, started by scripts/test.sh).
#![allow(dead_code, unreachable_pub)] // each test file uses a part

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Answers a request: `(operation, body)` → `(status, JSON body)`.
pub type Handler = Arc<dyn Fn(&str, &str) -> (u16, String) + Send + Sync>;

/// An AWS JSON error body.
pub fn error_body(error_type: &str, message: &str) -> String {
    format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{error_type}","message":"{message}"}}"#)
}

/// Starts the endpoint; returns its URL.
pub async fn scripted_endpoint(handler: Handler) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let Some((head, body)) = read_request(&mut socket).await else {
                    return;
                };
                let operation = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(name, _)| name.eq_ignore_ascii_case("x-amz-target"))
                    .and_then(|(_, value)| value.trim().rsplit('.').next())
                    .unwrap_or_default()
                    .to_owned();
                let (status, reply) = handler(&operation, &body);
                let error_type = error_type_header(&reply);
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.0\r\n{error_type}content-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{address}")
}

/// `x-amzn-errortype: …` for an error body.
fn error_type_header(body: &str) -> String {
    body.split('#')
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(|t| format!("x-amzn-errortype: {t}\r\n"))
        .unwrap_or_default()
}

/// Reads the head and the body announced by content-length.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<(String, String)> {
    let mut buffer = vec![0; 64 * 1024];
    let mut read = 0;
    loop {
        let n = socket.read(&mut buffer[read..]).await.ok()?;
        if n == 0 {
            return None;
        }
        read += n;
        let text = String::from_utf8_lossy(&buffer[..read]).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text
                .lines()
                .find_map(|l| {
                    l.to_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0usize);
            if read >= head_end + 4 + length {
                let body = text[head_end + 4..].to_owned();
                return Some((text[..head_end].to_owned(), body));
            }
        }
    }
}

/// A client configuration for `endpoint` with test credentials.
pub fn config(endpoint: &str) -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(svcgen_runtime::store::http_client())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
}

/// The DynamoDB-API server of the test run.
pub fn moto_endpoint() -> String {
    std::env::var("SVCGEN_DYNAMODB_ENDPOINT").expect(
        "SVCGEN_DYNAMODB_ENDPOINT names the DynamoDB-API server (scripts/test.sh starts moto)",
    )
}

/// Clears every table of the test run's server.
pub async fn reset_moto() {
    let url = format!("{}/moto-api/reset", moto_endpoint());
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-sf", "-X", "POST", &url])
            .status()
    })
    .await
    .expect("join")
    .expect("curl runs");
    assert!(status.success(), "moto reset failed");
}

/// A DynamoDB client for `endpoint` with test credentials and at most two attempts.
pub fn client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = config(endpoint)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(2)
                .with_initial_backoff(Duration::from_millis(5)),
        )
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}
