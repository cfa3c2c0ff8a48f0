//! What every HTTP emulator but APNs (which keeps its own HTTP/2 connections) serves its router
//! with: one task per connection, on plain TCP or on TLS from the test CA, each closable by its
//! request handlers, so a `drop_connection` fault closes the socket without an answer; every
//! request stamped with the moment it arrived ([`crate::faults::arrival_us`]); and the one
//! poison-tolerant lock the emulators use.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::{Extension, Router};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::faults::arrived;

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
    /// HTTP/1.1, or HTTP/2 (with prior knowledge on plain TCP; over TLS when ALPN chose `h2`).
    Http1Or2,
}

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener`, plain TCP, until the task is aborted, which closes every
/// connection. `name` labels the emulator in logs.
pub async fn serve(listener: TcpListener, router: Router, protocols: Protocols, name: &'static str) {
    serve_with(listener, router, protocols, None, name).await;
}

/// Serves `router` on `listener` as [`serve`] does, over TLS with `tls` when given (its ALPN
/// offer should match `protocols`).
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    protocols: Protocols,
    tls: Option<TlsAcceptor>,
    name: &'static str,
) {
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
        let router = router.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            match tls {
                None => serve_connection(stream, router, protocols, name).await,
                Some(tls) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                    Ok(Ok(stream)) => serve_connection(stream, router, protocols, name).await,
                    Ok(Err(e)) => tracing::debug!(error = %e, "{name} emulator: TLS handshake failed"),
                    Err(_) => tracing::debug!("{name} emulator: TLS handshake timed out"),
                },
            }
        });
    }
}

/// Serves one connection until it ends or a handler hangs up.
async fn serve_connection<S>(stream: S, router: Router, protocols: Protocols, name: &'static str)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let hangup = Hangup(Arc::new(Notify::new()));
    let service = TowerToHyperService::new(router.layer(Extension(hangup.clone())));
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        arrived(hyper::service::Service::call(&service, request))
    });
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
}

/// Locks `mutex`, whatever a panicking holder left: the emulators keep plain logs, sets and maps.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
