//! What every HTTP emulator but APNs (which speaks HTTP/2 over TLS) serves its router with: one
//! task per connection, each closable by its request handlers, so a `drop_connection` fault
//! closes the socket without an answer; and the one poison-tolerant lock the emulators use.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// Closes the connection the request came on, answering nothing. Handlers take it as an axum
/// `Extension<Hangup>`.
#[derive(Clone, Debug)]
pub struct Hangup(Arc<Notify>);

impl Hangup {
    /// Closes the connection; the handler's future is dropped along with it.
    pub fn now(&self) {
        self.0.notify_one();
    }
}

/// Which HTTP versions a connection may speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocols {
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/1.1, or HTTP/2 with prior knowledge.
    Http1Or2,
}

/// Serves `router` on `listener` until the task is aborted, which closes every connection.
/// `name` labels the emulator in logs.
pub async fn serve(listener: TcpListener, router: Router, protocols: Protocols, name: &'static str) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "{name} emulator: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let hangup = Hangup(Arc::new(Notify::new()));
        let service = TowerToHyperService::new(router.clone().layer(Extension(hangup.clone())));
        connections.spawn(async move {
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if protocols == Protocols::Http1 {
                builder = builder.http1_only();
            }
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                served = connection => {
                    if let Err(e) = served {
                        tracing::debug!(error = %e, "{name} emulator: connection ended");
                    }
                }
                () = hangup.0.notified() => {}
            }
        });
    }
}

/// Locks `mutex`, whatever a panicking holder left: the emulators keep plain logs, sets and maps.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
