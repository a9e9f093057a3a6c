//! Streams that end when the server drains. At SIGTERM tonic lets calls in flight finish, and
//! most streams do; a stream that would outlive the drain (a watch, a slow export) is ended
//! shortly before the drain timeout with UNAVAILABLE, so its client retries on another task
//! and the process still exits cleanly.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

/// A boxed stream of response messages: what a hand-written streaming RPC returns.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A response stream fed through a channel of `capacity` messages: a task sends each message
/// (an error ends the call with that status) and stops when sending fails, which it does once
/// the client has gone or the server ended the stream.
pub fn response_channel<T: Send + 'static>(
    capacity: usize,
) -> (mpsc::Sender<Result<T, Status>>, ResponseStream<T>) {
    let (sender, receiver) = mpsc::channel(capacity);
    (sender, Box::pin(ReceiverStream::new(receiver)))
}

/// The message a stream is ended with when the server stops.
pub const STREAM_ENDED: &str = "the server is shutting down; retry the call";

/// The server's signal to end streams, carried in every request's extensions by the server
/// (outside it, e.g. in a unit test, [`Drain::of`] returns one that never fires).
#[derive(Clone, Debug)]
pub struct Drain {
    end: Option<watch::Receiver<bool>>,
}

impl Drain {
    /// A sender that ends every stream bound to its receivers, and the first receiver.
    pub(crate) fn channel() -> (watch::Sender<bool>, Self) {
        let (sender, receiver) = watch::channel(false);
        (
            sender,
            Self {
                end: Some(receiver),
            },
        )
    }

    /// The drain signal of the server serving the request with these extensions.
    pub fn of(extensions: &http::Extensions) -> Self {
        extensions
            .get::<Self>()
            .cloned()
            .unwrap_or(Self { end: None })
    }

    /// `call` (one that reads a client stream), answered UNAVAILABLE ([`STREAM_ENDED`]) if it
    /// is still running when the server's drain timeout is about to expire.
    pub async fn bound_call<T>(
        self,
        call: impl Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        let Some(mut end) = self.end else {
            return call.await;
        };
        tokio::select! {
            result = call => result,
            _ = end.wait_for(|ended| *ended) => Err(Status::unavailable(STREAM_ENDED)),
        }
    }

    /// `stream`, ended with UNAVAILABLE ([`STREAM_ENDED`]) if it is still running when the
    /// server's drain timeout is about to expire.
    pub fn bound<T: Send + 'static>(self, stream: ResponseStream<T>) -> ResponseStream<T> {
        let Some(mut end) = self.end else {
            return stream;
        };
        let ended = Box::pin(async move {
            // An error means the server is gone: end the stream then as well.
            let _ = end.wait_for(|ended| *ended).await;
        });
        Box::pin(Bounded {
            stream: Some(stream),
            ended,
        })
    }
}

struct Bounded<T> {
    /// `None` once the stream has ended.
    stream: Option<ResponseStream<T>>,
    ended: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl<T> Stream for Bounded<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(stream) = this.stream.as_mut() else {
            return Poll::Ready(None);
        };
        // The end first: a stream that always has an item ready is ended all the same.
        if this.ended.as_mut().poll(cx).is_ready() {
            this.stream = None;
            return Poll::Ready(Some(Err(Status::unavailable(STREAM_ENDED))));
        }
        let item = std::task::ready!(stream.as_mut().poll_next(cx));
        if item.is_none() {
            this.stream = None;
        }
        Poll::Ready(item)
    }
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt as _;

    use super::*;

    #[tokio::test]
    async fn a_finished_stream_is_not_cut_and_a_running_one_ends_unavailable() {
        let (end, drain) = Drain::channel();
        let finite: ResponseStream<u32> = Box::pin(tokio_stream::iter([Ok(1), Ok(2)]));
        let items: Vec<_> = drain.clone().bound(finite).collect().await;
        assert_eq!(items.len(), 2);
        assert!(items.iter().all(Result::is_ok));

        let endless: ResponseStream<u32> =
            Box::pin(tokio_stream::iter([Ok(1)]).chain(tokio_stream::pending()));
        let mut bounded = drain.bound(endless);
        assert_eq!(bounded.next().await.map(|r| r.ok()), Some(Some(1)));
        end.send_replace(true);
        let last = bounded.next().await;
        assert!(matches!(last, Some(Err(ref s)) if s.code() == tonic::Code::Unavailable));
        assert!(bounded.next().await.is_none());
    }

    #[tokio::test]
    async fn a_stream_that_always_has_an_item_is_ended_too() {
        let (end, drain) = Drain::channel();
        let busy: ResponseStream<u32> = Box::pin(tokio_stream::iter(std::iter::repeat(Ok(1))));
        let mut bounded = drain.clone().bound(busy);
        assert_eq!(bounded.next().await.map(|r| r.ok()), Some(Some(1)));
        end.send_replace(true);
        let last = bounded.next().await;
        assert!(matches!(last, Some(Err(ref s)) if s.code() == tonic::Code::Unavailable));
        assert!(bounded.next().await.is_none());
        let waiting = drain.bound_call(std::future::pending::<Result<(), Status>>());
        let answer = waiting.await.expect_err("ended");
        assert_eq!(answer.code(), tonic::Code::Unavailable);
    }

    #[test]
    fn outside_a_server_a_stream_is_left_alone() {
        let drain = Drain::of(&http::Extensions::new());
        assert!(drain.end.is_none());
    }
}
