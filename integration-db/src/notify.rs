//! Ingestion progress and control notifications over PostgreSQL
//! `NOTIFY`/`LISTEN`.
//!
//! The ingester sends [`notify_progress`] in the transaction that commits an
//! update (PostgreSQL delivers it at commit, never for a rolled-back one).
//! Control changes and acknowledgements are sent by [`crate::control`].
//! Waiters open a [`ProgressListener`], which LISTENs on its own connection,
//! reconnects with backoff when it drops, and says so with
//! [`Event::Reconnected`]: notifications sent while disconnected are lost, so
//! a waiter re-reads the state then (and polls as a fallback anyway).

use crate::Result;
use crate::config::{ConnectOptions, Resolved, TlsMode};
use crate::error::{PgResultExt as _, connect_error};
use canton_dr_cli::Error;
use chrono::{DateTime, Utc};
use futures::FutureExt as _;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{AsyncMessage, GenericClient, NoTls, Socket};

/// Channel of ingestion progress (payload: [`Progress`] JSON).
pub const PROGRESS_CHANNEL: &str = "canton_dr_progress";
/// Channel of control changes and acknowledgements (payload: [`ControlChange`] JSON).
pub const CONTROL_CHANNEL: &str = "canton_dr_control";

/// The channel names, for callers that LISTEN themselves.
pub fn progress_channel() -> &'static str {
    PROGRESS_CHANNEL
}

/// What an ingester has just committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Ingester name.
    pub ingester: String,
    /// Offset committed.
    pub offset: i64,
    /// Its record time.
    #[serde(with = "crate::serde_time")]
    pub record_time: DateTime<Utc>,
    /// Offset epoch.
    #[serde(default)]
    pub offset_epoch: i32,
    /// Update id, when it was a transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_id: Option<String>,
}

/// What happened to a control row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ControlEvent {
    /// Operators changed it (generation bumped).
    Changed,
    /// The ingester acknowledged a generation.
    Acked,
}

/// A control row change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlChange {
    /// Ingester name.
    pub ingester: String,
    /// The new generation (`Changed`) or the acknowledged one (`Acked`).
    pub generation: i64,
    /// Which.
    pub event: ControlEvent,
}

/// Sends a progress notification (delivered when the transaction commits).
pub async fn notify_progress(c: &impl GenericClient, progress: &Progress) -> Result<()> {
    send(c, PROGRESS_CHANNEL, progress).await
}

/// Sends a control notification (delivered when the transaction commits).
pub async fn notify_control(c: &impl GenericClient, change: &ControlChange) -> Result<()> {
    send(c, CONTROL_CHANNEL, change).await
}

async fn send<T: Serialize>(c: &impl GenericClient, channel: &str, payload: &T) -> Result<()> {
    let payload = serde_json::to_string(payload)
        .map_err(|e| Error::usage(format!("cannot encode notification: {e}")))?;
    c.execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
        .await
        .db()?;
    Ok(())
}

/// What a [`ProgressListener`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An ingester committed progress.
    Progress(Progress),
    /// A control row changed or was acknowledged.
    Control(ControlChange),
    /// The connection dropped and is back: notifications may have been
    /// missed, re-read the state.
    Reconnected,
    /// A notification whose payload did not parse (kept for diagnosis).
    Unparsed {
        /// Channel.
        channel: String,
        /// Raw payload.
        payload: String,
    },
}

/// LISTENs on the progress and control channels on its own connection and
/// yields [`Event`]s; reconnects with backoff until dropped.
#[derive(Debug)]
pub struct ProgressListener {
    rx: mpsc::Receiver<Event>,
    task: JoinHandle<()>,
}

impl ProgressListener {
    /// Connects and LISTENs; fails like [`crate::Db::connect`] if the first
    /// connection cannot be made.
    pub async fn start(options: &ConnectOptions) -> Result<ProgressListener> {
        Self::start_resolved(options.resolve()?).await
    }

    /// The same with resolved settings (e.g. `db.resolved().clone()`).
    pub async fn start_resolved(resolved: Resolved) -> Result<ProgressListener> {
        let (tx, rx) = mpsc::channel(1024);
        let (ready_tx, ready_rx) = oneshot::channel();
        let task = tokio::spawn(run(resolved, tx, ready_tx));
        match ready_rx.await {
            Ok(Ok(())) => Ok(ProgressListener { rx, task }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::transient(
                "the listener task ended before it was ready",
            )),
        }
    }

    /// The next event; `None` only if the listener task ended.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }
}

impl Drop for ProgressListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(resolved: Resolved, tx: mpsc::Sender<Event>, ready: oneshot::Sender<Result<()>>) {
    let mut ready = Some(ready);
    let mut backoff = resolved.initial_backoff.max(Duration::from_millis(50));
    loop {
        let outcome = match &resolved.tls {
            TlsMode::Disabled => session(&resolved, NoTls, &tx, &mut ready).await,
            TlsMode::Verified { root_cert } => {
                match crate::tls::make_connector(root_cert.as_deref()) {
                    Ok(tls) => session(&resolved, tls, &tx, &mut ready).await,
                    Err(e) => Err(e),
                }
            }
        };
        if let Some(r) = ready.take() {
            // The first connection failed: report it and stop.
            let _ = r.send(outcome.map(|_| ()));
            return;
        }
        match outcome {
            Ok(true) => backoff = resolved.initial_backoff.max(Duration::from_millis(50)),
            Ok(false) => return, // nobody listens any more
            Err(e) => tracing::debug!("progress listener reconnect failed: {e}"),
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(crate::db::jitter(backoff)).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One LISTEN session. `Ok(true)`: it was established and later dropped;
/// `Ok(false)`: the receiver went away; `Err`: it could not be established.
async fn session<T>(
    resolved: &Resolved,
    tls: T,
    tx: &mpsc::Sender<Event>,
    ready: &mut Option<oneshot::Sender<Result<()>>>,
) -> Result<bool>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: AsyncRead + AsyncWrite + Unpin,
{
    let (client, mut conn) = resolved
        .config
        .connect(tls)
        .await
        .map_err(|e| connect_error(&e, &resolved.target, &resolved.user, &resolved.dbname))?;
    let (note_tx, mut note_rx) = mpsc::unbounded_channel();
    // The connection must be polled by hand to see notifications; this future
    // does that until the connection ends.
    let pump = async move {
        while let Some(msg) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
            match msg {
                Ok(AsyncMessage::Notification(n)) => {
                    let _ = note_tx.send((n.channel().to_string(), n.payload().to_string()));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!("progress listener connection error: {e}");
                    break;
                }
            }
        }
    }
    .fuse();
    tokio::pin!(pump);

    let listen_sql = format!("LISTEN {PROGRESS_CHANNEL}; LISTEN {CONTROL_CHANNEL}");
    let listen = client.batch_execute(&listen_sql);
    tokio::select! {
        r = listen => r.db()?,
        () = &mut pump => return Err(Error::transient("connection closed before LISTEN")),
    }
    match ready.take() {
        Some(r) => {
            let _ = r.send(Ok(()));
        }
        None => {
            if tx.send(Event::Reconnected).await.is_err() {
                return Ok(false);
            }
        }
    }
    loop {
        tokio::select! {
            () = &mut pump => {
                // Deliver what arrived before the drop, then reconnect.
                while let Ok((channel, payload)) = note_rx.try_recv() {
                    if tx.send(parse(channel, payload)).await.is_err() {
                        return Ok(false);
                    }
                }
                drop(client);
                return Ok(true);
            }
            Some((channel, payload)) = note_rx.recv() => {
                if tx.send(parse(channel, payload)).await.is_err() {
                    return Ok(false);
                }
            }
        }
    }
}

fn parse(channel: String, payload: String) -> Event {
    let parsed = match channel.as_str() {
        PROGRESS_CHANNEL => serde_json::from_str(&payload).ok().map(Event::Progress),
        CONTROL_CHANNEL => serde_json::from_str(&payload).ok().map(Event::Control),
        _ => None,
    };
    parsed.unwrap_or(Event::Unparsed { channel, payload })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        let p = Progress {
            ingester: "main".into(),
            offset: 42,
            record_time: canton_dr_cli::time::parse_record_time("2025-01-02T03:04:05.5Z", "t")
                .unwrap(),
            offset_epoch: 1,
            update_id: None,
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"ingester":"main","offset":42,"recordTime":"2025-01-02T03:04:05.500000Z","offsetEpoch":1}"#
        );
        assert_eq!(parse(PROGRESS_CHANNEL.into(), json), Event::Progress(p));
        assert_eq!(
            parse(
                CONTROL_CHANNEL.into(),
                r#"{"ingester":"a","generation":3,"event":"acked"}"#.into()
            ),
            Event::Control(ControlChange {
                ingester: "a".into(),
                generation: 3,
                event: ControlEvent::Acked
            })
        );
        assert!(matches!(
            parse(PROGRESS_CHANNEL.into(), "nope".into()),
            Event::Unparsed { .. }
        ));
    }
}
