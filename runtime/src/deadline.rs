//! Client deadlines (`grpc-timeout`) answered the way gRPC specifies: DEADLINE_EXCEEDED.
//!
//! tonic enforces the header itself, but answers an expired call with CANCELLED ("Timeout
//! expired"), which clients and retry policies read as "the caller gave up". This layer sits
//! inside tonic's and fires one millisecond earlier (tokio's timer resolution), so an expired
//! call is answered DEADLINE_EXCEEDED and its work — the store call included — is dropped.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::body::Body;

const GRPC_TIMEOUT: http::HeaderName = http::HeaderName::from_static("grpc-timeout");

/// How much earlier than tonic's own timer the deadline fires.
const MARGIN: Duration = Duration::from_millis(1);

/// The [`tower::Layer`] of [`Deadline`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DeadlineLayer;

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline { inner }
    }
}

/// Answers DEADLINE_EXCEEDED when the request's `grpc-timeout` passes.
#[derive(Clone, Debug)]
pub(crate) struct Deadline<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for Deadline<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let timeout = request
            .headers()
            .get(&GRPC_TIMEOUT)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_timeout);
        let response = self.inner.call(request);
        match timeout {
            None => Box::pin(response),
            Some(timeout) => Box::pin(async move {
                let deadline = timeout.saturating_sub(MARGIN);
                match tokio::time::timeout(deadline, response).await {
                    Ok(result) => result,
                    Err(_) => Ok(tonic::Status::deadline_exceeded("deadline exceeded").into_http()),
                }
            }),
        }
    }
}

/// `grpc-timeout`: at most 8 digits and a unit (H, M, S, m, u, n), per the gRPC HTTP/2 spec.
fn parse_timeout(value: &str) -> Option<Duration> {
    let unit_start = value.len().checked_sub(1)?;
    if !value.is_char_boundary(unit_start) {
        return None;
    }
    let (digits, unit) = value.split_at(unit_start);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_as_the_spec_writes_them() {
        assert_eq!(parse_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_timeout("1999m"), Some(Duration::from_millis(1999)));
        assert_eq!(parse_timeout("3H"), Some(Duration::from_secs(3 * 3600)));
        assert_eq!(parse_timeout("15u"), Some(Duration::from_micros(15)));
        assert_eq!(
            parse_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "S", "123456789S", "5x", "-1S", "1.5S", "٣S", "5٣"] {
            assert_eq!(parse_timeout(bad), None, "{bad}");
        }
    }
}
