//! The runtime that heartbeats run on, apart from the one that runs queries.
//!
//! Planning and running a statement is CPU work on the query runtime's threads — DataFusion
//! plans, fragment decoding, COPY conversion — and a big statement can keep every one of
//! them busy for seconds. Heartbeats sent or received on those threads would then wait
//! behind it, and a busy node would be declared dead (its queries failing with 08006) for
//! being busy. So the worker's heartbeat loop and the leader's cluster endpoint run here:
//! one thread of their own, with its own reactor, that never runs a query.

use std::sync::OnceLock;

use tokio::runtime::Handle;

static LIVENESS: OnceLock<Handle> = OnceLock::new();

/// The liveness runtime, started on first use.
pub fn handle() -> &'static Handle {
    LIVENESS.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("basalt-liveness".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the liveness runtime builds");
                let _ = tx.send(runtime.handle().clone());
                runtime.block_on(std::future::pending::<()>());
            })
            .expect("the liveness thread starts");
        rx.recv().expect("the liveness runtime reports its handle")
    })
}

/// Run `task` on the liveness runtime.
pub fn spawn<F>(task: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    handle().spawn(task)
}
