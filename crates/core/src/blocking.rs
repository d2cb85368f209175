//! Blocking work (SQLite, git2) off the async executor: the one helper every crate uses.
//!
//! The daemon gives each consumer its own current-thread runtime, where
//! `block_in_place` panics and inline blocking starves that runtime's timers and stop
//! signal, so the work goes to tokio's blocking pool.

/// The blocking task was cancelled before it finished (the runtime is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("a blocking task was cancelled: {0}")]
pub struct Cancelled(#[source] pub tokio::task::JoinError);

/// Runs `work` on the blocking pool and waits for it. Outside a tokio runtime (a test
/// polling with `futures::executor::block_on`) it runs inline: there is no executor to
/// starve. A panic in `work` is raised again here, as if it had run inline.
pub async fn off_executor<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Cancelled> {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return Ok(work());
    };
    match runtime.spawn_blocking(work).await {
        Ok(v) => Ok(v),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(Cancelled(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_inline_without_a_runtime_and_on_the_pool_with_one() {
        let here = std::thread::current().id();
        let inline = futures_lite_block_on(off_executor(move || std::thread::current().id()));
        assert_eq!(inline.expect("ran"), here);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let pooled = rt.block_on(off_executor(move || std::thread::current().id()));
        assert_ne!(
            pooled.expect("ran"),
            here,
            "ran on the runtime's own thread"
        );
    }

    #[test]
    fn a_panic_is_raised_again() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(off_executor(|| -> u8 { panic!("boom") }))
        }));
        assert!(caught.is_err());
    }

    /// Polls a future to completion on this thread, with no tokio runtime.
    fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }
}
