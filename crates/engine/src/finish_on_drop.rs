//! A future that runs in its caller's task but is never abandoned half-way: if the caller
//! drops it before it is done (a closed request), the rest of it runs in a task of its own.
//!
//! `tokio::spawn(fut).await` gives the same guarantee, but moves every call to another task,
//! and often to another thread: W3 in-process measured 0.328 against 0.310 ms at the median
//! of 8 alternating pairs with the hand-off spawned (docs/performance-log.md).

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::runtime::Handle;

pub(crate) struct FinishOnDrop<F: Future<Output: Send + 'static> + Send + 'static> {
    /// `None` once it has finished.
    future: Option<Pin<Box<F>>>,
    /// Where the rest runs if the caller goes away; taken when the future is made, since a
    /// drop may happen outside the runtime's context. `None` when made outside any runtime,
    /// where nothing could run the rest: the engine's callers are always inside one.
    runtime: Option<Handle>,
}

impl<F: Future<Output: Send + 'static> + Send + 'static> FinishOnDrop<F> {
    pub(crate) fn new(future: F) -> Self {
        FinishOnDrop {
            future: Some(Box::pin(future)),
            runtime: Handle::try_current().ok(),
        }
    }
}

impl<F: Future<Output: Send + 'static> + Send + 'static> Future for FinishOnDrop<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let Some(future) = self.future.as_mut() else {
            panic!("FinishOnDrop polled after it finished");
        };
        let output = std::task::ready!(future.as_mut().poll(cx));
        self.future = None;
        Poll::Ready(output)
    }
}

impl<F: Future<Output: Send + 'static> + Send + 'static> Drop for FinishOnDrop<F> {
    fn drop(&mut self) {
        if let (Some(future), Some(runtime)) = (self.future.take(), self.runtime.as_ref()) {
            runtime.spawn(future);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;

    #[tokio::test]
    async fn it_runs_in_the_callers_task_and_returns_the_output() {
        let caller = tokio::task::try_id();
        let inner = FinishOnDrop::new(async move { tokio::task::try_id() }).await;
        assert_eq!(inner, caller);
    }

    #[tokio::test]
    async fn a_dropped_future_finishes_in_a_task_of_its_own() {
        let (started_tx, started_rx) = oneshot::channel();
        let (go_tx, go_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = oneshot::channel();
        let caller = tokio::spawn(FinishOnDrop::new(async move {
            let _ = started_tx.send(());
            let _ = go_rx.await;
            let _ = done_tx.send("finished");
        }));
        started_rx.await.expect("the future started");
        caller.abort();
        assert!(caller.await.is_err_and(|e| e.is_cancelled()));
        // The caller is gone; what was left of its future goes on.
        go_tx
            .send(())
            .expect("the rest of the future is still waiting");
        let done = tokio::time::timeout(Duration::from_secs(5), done_rx).await;
        assert_eq!(done.ok().and_then(Result::ok), Some("finished"));
    }
}
