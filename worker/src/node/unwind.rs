//! A panic while serving one request — a bug in a fragment's operator, a function, the
//! loader — fails that request with an `internal` status naming the panic, instead of
//! dropping the connection with no word of why; the worker goes on serving. (Stack
//! overflows are not panics: the leader's nesting limit and the runtime's stack sizes keep
//! those out.)

use std::any::Any;
use std::panic::AssertUnwindSafe;

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use tonic::Status;

/// The text of a panic's payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".into())
}

fn panicked(payload: &(dyn Any + Send)) -> Status {
    Status::internal(format!("internal error: {}", panic_message(payload)))
}

/// `request` with its panics turned into an `internal` status.
pub async fn guarded<T>(request: impl Future<Output = Result<T, Status>>) -> Result<T, Status> {
    AssertUnwindSafe(request)
        .catch_unwind()
        .await
        .unwrap_or_else(|p| Err(panicked(p.as_ref())))
}

/// `stream` ended by an `internal` status if producing an item panics.
pub fn guarded_stream<T: Send + 'static>(
    stream: BoxStream<'static, Result<T, Status>>,
) -> BoxStream<'static, Result<T, Status>> {
    ending_on_panic(stream, panicked)
}

/// `stream`, ended by the error `on_panic` makes of the panic's payload if producing an
/// item panics (a stream that panicked is in no state to be polled again).
pub fn ending_on_panic<T, E, S>(
    stream: S,
    on_panic: fn(&(dyn Any + Send)) -> E,
) -> BoxStream<'static, Result<T, E>>
where
    S: futures::Stream<Item = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    AssertUnwindSafe(stream)
        .catch_unwind()
        .scan(false, move |ended, item| {
            if *ended {
                return futures::future::ready(None);
            }
            let item = item.unwrap_or_else(|p| {
                *ended = true;
                Err(on_panic(p.as_ref()))
            });
            futures::future::ready(Some(item))
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_stream_ends_with_an_internal_status() {
        let items = futures::stream::iter([1, 2, 3]).map(|i| {
            assert!(i < 2, "row {i} is bad");
            Ok::<_, Status>(i)
        });
        let got: Vec<_> = guarded_stream(items.boxed()).collect().await;
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_ref().unwrap(), &1);
        let status = got[1].as_ref().unwrap_err();
        assert_eq!(status.code(), tonic::Code::Internal);
        assert_eq!(status.message(), "internal error: row 2 is bad");
    }
}
