//! A small ingester that honours the control contract using only the SQL
//! statements of `docs/ingestion-contract.md`, as printed there. It "streams"
//! from an in-memory ledger the test fills, and can be frozen (heartbeats but
//! never acts or acknowledges) or made dead (no connection, no heartbeat).

use super::doc;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::{Client, NoTls};

const TICK: Duration = Duration::from_millis(25);

/// An entry of the node's update stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A transaction.
    Tx {
        offset: i64,
        update_id: String,
        record_time: DateTime<Utc>,
    },
    /// An offset checkpoint.
    Checkpoint {
        offset: i64,
        record_time: DateTime<Utc>,
    },
}

impl Item {
    /// A transaction on [`super::SYNC`].
    pub fn tx(offset: i64, update_id: &str, record_time: &str) -> Item {
        Item::Tx {
            offset,
            update_id: update_id.to_string(),
            record_time: at(record_time),
        }
    }

    /// An offset checkpoint.
    pub fn checkpoint(offset: i64, record_time: &str) -> Item {
        Item::Checkpoint {
            offset,
            record_time: at(record_time),
        }
    }

    fn offset(&self) -> i64 {
        match self {
            Item::Tx { offset, .. } | Item::Checkpoint { offset, .. } => *offset,
        }
    }
}

/// Parses an RFC 3339 time.
pub fn at(s: &str) -> DateTime<Utc> {
    canton_dr_cli::time::parse_record_time(s, "test time").unwrap()
}

/// How the ingester behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Honours the contract.
    Normal,
    /// Heartbeats, but neither acts nor acknowledges (a slow ingester).
    Frozen,
    /// Gone: no connection, no heartbeat.
    Dead,
}

struct Shared {
    url: String,
    name: String,
    sql: BTreeMap<String, String>,
    ledger: Mutex<Vec<Item>>,
    mode: Mutex<Mode>,
    quit: AtomicBool,
    applied: Mutex<Vec<String>>,
    skipped: Mutex<Vec<String>>,
    fenced: AtomicU64,
}

/// The running test ingester; stops (gracefully, acknowledging `stopped`) on drop.
pub struct TestIngester {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestIngester {
    /// Starts ingester `name` against the database at `url`.
    pub fn start(url: &str, name: &str) -> TestIngester {
        let shared = Arc::new(Shared {
            url: url.to_string(),
            name: name.to_string(),
            sql: doc::statements(),
            ledger: Mutex::new(Vec::new()),
            mode: Mutex::new(Mode::Normal),
            quit: AtomicBool::new(false),
            applied: Mutex::new(Vec::new()),
            skipped: Mutex::new(Vec::new()),
            fenced: AtomicU64::new(0),
        });
        let s = shared.clone();
        let thread = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(run(s));
        });
        TestIngester {
            shared,
            thread: Some(thread),
        }
    }

    /// Changes how it behaves.
    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// Appends to the node's update stream.
    pub fn push(&self, items: impl IntoIterator<Item = Item>) {
        self.shared.ledger.lock().unwrap().extend(items);
    }

    /// Replaces the node's update stream (a restored node with new offsets).
    pub fn replace_ledger(&self, items: Vec<Item>) {
        *self.shared.ledger.lock().unwrap() = items;
    }

    /// Update ids whose effects were applied, in order.
    pub fn applied(&self) -> Vec<String> {
        self.shared.applied.lock().unwrap().clone()
    }

    /// Update ids skipped as already ingested, in order.
    pub fn skipped(&self) -> Vec<String> {
        self.shared.skipped.lock().unwrap().clone()
    }

    /// Commits refused by `fence`.
    pub fn fenced(&self) -> u64 {
        self.shared.fenced.load(Ordering::SeqCst)
    }
}

impl Drop for TestIngester {
    fn drop(&mut self) {
        self.shared.quit.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the ingester last acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Acted {
    generation: i64,
    running: bool,
}

struct Cursor {
    acted: Option<Acted>,
    position: i64,
    epoch: i32,
}

async fn run(shared: Arc<Shared>) {
    let mut client: Option<Client> = None;
    let mut cursor = Cursor {
        acted: None,
        position: 0,
        epoch: 0,
    };
    loop {
        if shared.quit.load(Ordering::SeqCst) {
            // Graceful shutdown: acknowledge `stopped` for what it last read.
            if let (Some(c), Some(acted)) = (&client, cursor.acted) {
                let _ = c
                    .query(
                        &shared.sql["ack"],
                        &[&shared.name, &"stopped", &acted.generation],
                    )
                    .await;
            }
            return;
        }
        let mode = *shared.mode.lock().unwrap();
        if mode == Mode::Dead {
            client = None;
            tokio::time::sleep(TICK).await;
            continue;
        }
        if client.as_ref().is_none_or(Client::is_closed) {
            client = connect(&shared).await.ok();
        }
        if let Some(c) = client.as_mut()
            && step(&shared, c, mode, &mut cursor).await.is_err()
        {
            client = None; // reconnect on the next round
        }
        tokio::time::sleep(TICK).await;
    }
}

async fn connect(shared: &Shared) -> Result<Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(&shared.url, NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
        .batch_execute("SET search_path TO canton_integration")
        .await?;
    client
        .execute(&shared.sql["register"], &[&shared.name])
        .await?;
    Ok(client)
}

async fn step(
    shared: &Shared,
    client: &mut Client,
    mode: Mode,
    cursor: &mut Cursor,
) -> Result<(), tokio_postgres::Error> {
    let sql = &shared.sql;
    let name = &shared.name;
    let row = client.query_one(&sql["read_control"], &[name]).await?;
    let generation: i64 = row.get("generation");
    let desired: String = row.get("desired_state");
    let offset_epoch: i32 = row.get("offset_epoch");
    let begin_exclusive: Option<i64> = row.get("begin_exclusive");
    client.execute(&sql["heartbeat"], &[name]).await?;
    if mode == Mode::Frozen {
        return Ok(());
    }
    let now = Acted {
        generation,
        running: desired == "running",
    };
    if cursor.acted != Some(now) {
        // Act first, then acknowledge.
        if now.running {
            cursor.position = begin_exclusive.unwrap_or(0);
            cursor.epoch = offset_epoch;
        }
        let state = if now.running { "running" } else { "stopped" };
        client
            .query(&sql["ack"], &[name, &state, &generation])
            .await?;
        cursor.acted = Some(now);
    }
    if now.running {
        ingest(shared, client, cursor, generation).await?;
    }
    Ok(())
}

async fn ingest(
    shared: &Shared,
    client: &mut Client,
    cursor: &mut Cursor,
    generation: i64,
) -> Result<(), tokio_postgres::Error> {
    let sql = &shared.sql;
    let name = &shared.name;
    let sync = super::SYNC;
    let pending: Vec<Item> = {
        let ledger = shared.ledger.lock().unwrap();
        ledger
            .iter()
            .filter(|i| i.offset() > cursor.position)
            .take(20)
            .cloned()
            .collect()
    };
    for item in pending {
        let tx = client.transaction().await?;
        if tx
            .query_opt(&sql["fence"], &[name, &generation])
            .await?
            .is_none()
        {
            tx.rollback().await?;
            shared.fenced.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
        let epoch = cursor.epoch;
        let outcome = match &item {
            Item::Tx {
                offset,
                update_id,
                record_time,
            } => {
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
                    [name, update_id, offset, record_time, &sync, &epoch];
                let new = tx
                    .query_opt(&sql["record_update"], &params)
                    .await?
                    .is_some();
                tx.execute(&sql["checkpoint_transaction"], &params).await?;
                tx.query(
                    &sql["notify_progress"],
                    &[name, offset, record_time, &epoch, &Some(update_id.as_str())],
                )
                .await?;
                Some((update_id.clone(), new))
            }
            Item::Checkpoint {
                offset,
                record_time,
            } => {
                tx.execute(
                    &sql["checkpoint_offset"],
                    &[name, offset, record_time, &sync, &epoch],
                )
                .await?;
                tx.query(
                    &sql["notify_progress"],
                    &[name, offset, record_time, &epoch, &None::<&str>],
                )
                .await?;
                None
            }
        };
        tx.commit().await?;
        cursor.position = item.offset();
        match outcome {
            Some((id, true)) => shared.applied.lock().unwrap().push(id),
            Some((id, false)) => shared.skipped.lock().unwrap().push(id),
            None => {}
        }
    }
    Ok(())
}
