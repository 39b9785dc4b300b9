//! An open connection to the Integration DB: connecting with retries, the
//! connection task, the schema's `search_path`, and the schema check tools run
//! before using the tables.

use crate::config::{ConnectOptions, Resolved, TlsMode};
use crate::error::{MIGRATE_HINT, connect_error, db_error};
use crate::migrate;
use canton_dr_cli::{Error, Result};
use rand::Rng as _;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls, Transaction};

/// A connection to the Integration DB with `search_path` set to its schema.
pub struct Db {
    client: Client,
    resolved: Resolved,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("target", &self.resolved.target)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Connects (retrying transient failures) and sets `search_path`. Does not
    /// check the schema: use [`Db::connect_ready`] for that.
    pub async fn connect(options: &ConnectOptions) -> Result<Db> {
        let resolved = options.resolve()?;
        Self::connect_resolved(resolved).await
    }

    /// Connects and checks that the schema exists at the version this build
    /// knows ([`Db::require_schema`]).
    pub async fn connect_ready(options: &ConnectOptions) -> Result<Db> {
        let db = Self::connect(options).await?;
        db.require_schema().await?;
        Ok(db)
    }

    /// Connects with already resolved settings.
    pub async fn connect_resolved(resolved: Resolved) -> Result<Db> {
        let (client, task) = open(&resolved).await?;
        let set = format!("SET search_path TO \"{}\"", resolved.schema);
        client.batch_execute(&set).await.map_err(|e| db_error(&e))?;
        Ok(Db {
            client,
            resolved,
            task,
        })
    }

    /// The client, for queries (`&Client` is a `GenericClient`).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The client, mutably (to start transactions by hand).
    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Starts a transaction.
    pub async fn transaction(&mut self) -> Result<Transaction<'_>> {
        self.client.transaction().await.map_err(|e| db_error(&e))
    }

    /// The schema name.
    pub fn schema(&self) -> &str {
        &self.resolved.schema
    }

    /// `HOST:PORT`, for messages.
    pub fn target(&self) -> &str {
        &self.resolved.target
    }

    /// The resolved settings (e.g. to open a second connection).
    pub fn resolved(&self) -> &Resolved {
        &self.resolved
    }

    /// Applies pending migrations ([`migrate::migrate`]).
    pub async fn migrate(&mut self) -> Result<migrate::MigrationReport> {
        let schema = self.resolved.schema.clone();
        migrate::migrate(&mut self.client, &schema).await
    }

    /// Fails with a usage error (hint: `ingest-ctl migrate`) unless the schema
    /// exists at exactly [`migrate::LATEST_VERSION`].
    pub async fn require_schema(&self) -> Result<()> {
        let schema = &self.resolved.schema;
        let at = format!(
            "{} (database {})",
            self.resolved.target, self.resolved.dbname
        );
        match migrate::current_version(&self.client, schema).await? {
            None => Err(Error::usage(format!(
                "the Integration DB schema \"{schema}\" does not exist at {at}"
            ))
            .with_hint(MIGRATE_HINT)),
            Some(v) if v < migrate::LATEST_VERSION => Err(Error::usage(format!(
                "the Integration DB schema \"{schema}\" at {at} is at version {v}; this tool needs version {}",
                migrate::LATEST_VERSION
            ))
            .with_hint(MIGRATE_HINT)),
            Some(v) if v > migrate::LATEST_VERSION => Err(Error::usage(format!(
                "the Integration DB schema \"{schema}\" at {at} is at version {v}, newer than this tool knows ({})",
                migrate::LATEST_VERSION
            ))
            .with_hint("upgrade the canton-dr tools")),
            Some(_) => Ok(()),
        }
    }

    /// True while the connection task is alive.
    pub fn is_connected(&self) -> bool {
        !self.client.is_closed() && !self.task.is_finished()
    }
}

/// Opens one connection (with retries) and spawns its connection task.
pub(crate) async fn open(resolved: &Resolved) -> Result<(Client, JoinHandle<()>)> {
    let mut backoff = resolved.initial_backoff;
    let mut attempt = 1;
    loop {
        match open_once(resolved).await {
            Ok(pair) => return Ok(pair),
            Err(e)
                if e.kind() == canton_dr_cli::ErrorKind::Transient
                    && attempt < resolved.attempts =>
            {
                tracing::debug!(attempt, error = %e, "PostgreSQL connect failed; retrying");
                tokio::time::sleep(jitter(backoff)).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn open_once(resolved: &Resolved) -> Result<(Client, JoinHandle<()>)> {
    let map = |e: tokio_postgres::Error| {
        connect_error(&e, &resolved.target, &resolved.user, &resolved.dbname)
    };
    match &resolved.tls {
        TlsMode::Disabled => {
            let (client, conn) = resolved.config.connect(NoTls).await.map_err(map)?;
            Ok((client, tokio::spawn(drive(conn))))
        }
        TlsMode::Verified { root_cert } => {
            let tls = crate::tls::make_connector(root_cert.as_deref())?;
            let (client, conn) = resolved.config.connect(tls).await.map_err(map)?;
            Ok((client, tokio::spawn(drive(conn))))
        }
    }
}

async fn drive<F>(conn: F)
where
    F: std::future::Future<Output = Result<(), tokio_postgres::Error>>,
{
    if let Err(e) = conn.await {
        tracing::warn!(
            "PostgreSQL connection ended: {}",
            crate::error::cause_chain(&e)
        );
    }
}

/// `d` ± 25 %.
pub(crate) fn jitter(d: Duration) -> Duration {
    let factor = rand::rng().random_range(0.75..1.25);
    d.mul_f64(factor)
}
