//! Test harness: the real `canton-sim` and `tx-ingest` binaries, a throwaway
//! PostgreSQL per test, and the invariant every scenario ends with: every
//! update id the synchronizer holds for the treasury ingested exactly once,
//! and its effects booked exactly once.
#![allow(dead_code)]

use canton_dr_testkit::{PgCluster, SimProcess, cargo_bin, fresh_database};
use canton_proto::admin::GetHighestOffsetByTimestampRequest;
use canton_proto::admin::party_management_service_client::PartyManagementServiceClient;
use integration_db::{ConnectOptions, Db, control, deposits};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Every deposit in these tests (bulk traffic uses 100 too).
pub const DEPOSIT: &str = "100";
/// Accounts `acct-0` … `acct-48` are known deposit accounts; `acct-49` is not.
pub const KNOWN_ACCOUNTS: usize = 49;
/// The ingester name the tests use.
pub const INGESTER: &str = "tx-ingest";

/// A running simulator (testkit's [`SimProcess`]) with tx-ingest's helpers.
pub struct Sim(SimProcess);

impl Deref for Sim {
    type Target = SimProcess;
    fn deref(&self) -> &SimProcess {
        &self.0
    }
}

impl DerefMut for Sim {
    fn deref_mut(&mut self) -> &mut SimProcess {
        &mut self.0
    }
}

impl Sim {
    /// `canton-sim serve --state-dir dir <args>`, waiting for its ready line.
    pub fn start(dir: &Path, args: &[&str]) -> Sim {
        Sim(SimProcess::start_in(dir, args))
    }

    /// SIGTERM and wait.
    pub fn stop(mut self) {
        self.0.stop();
    }

    /// Bulk traffic: deposits of 100 to `acct-{seq % 50}`, withdrawals of 1, noise.
    pub fn traffic(&self, deposits: u32, withdrawals: u32, noise: u32) {
        self.ctl(&[
            "traffic",
            "--deposits",
            &deposits.to_string(),
            "--withdrawals",
            &withdrawals.to_string(),
            "--noise",
            &noise.to_string(),
        ]);
    }

    /// The synchronizer's updates visible to the treasury (the truth).
    pub fn truth(&self) -> Vec<serde_json::Value> {
        self.ctl_lines(&["update-ids", "--party", self.treasury_party()])
    }

    /// The participant's ledger end.
    pub fn ledger_end(&self) -> i64 {
        self.ctl(&["status"])["ledgerEnd"].as_i64().unwrap()
    }

    /// Waits until the node has worked off a backlog (after a restore).
    pub fn wait_caught_up(&self) {
        for _ in 0..600 {
            if self.ctl(&["status"])["catchingUp"] == false {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("the simulator never caught up");
    }

    /// Admin API `GetHighestOffsetByTimestamp`, retried while the node has
    /// not processed that far (as `offset-lookup --wait` does).
    pub async fn lookup(&self, record_time: chrono::DateTime<chrono::Utc>, force: bool) -> i64 {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{}", self.admin_api()))
                .unwrap()
                .connect()
                .await
                .unwrap();
        let mut client = PartyManagementServiceClient::new(channel);
        let (seconds, nanos) = canton_dr_cli::time::to_seconds_nanos(record_time);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = client
                .get_highest_offset_by_timestamp(GetHighestOffsetByTimestampRequest {
                    synchronizer_id: self.synchronizer_id().to_string(),
                    timestamp: Some(prost_types::Timestamp { seconds, nanos }),
                    force,
                })
                .await;
            match r {
                Ok(resp) => return resp.into_inner().ledger_offset,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("offset lookup for {record_time} failed: {e:?}"),
            }
        }
    }
}

/// A migrated Integration DB with the deposit accounts registered.
pub struct TestDb {
    pub url: String,
    pub db: Db,
}

impl TestDb {
    /// A fresh database in the binary's shared cluster.
    pub async fn fresh() -> TestDb {
        Self::in_cluster(PgCluster::shared()).await
    }

    /// A fresh database in `cluster`.
    pub async fn in_cluster(cluster: &PgCluster) -> TestDb {
        let t = fresh_database(cluster);
        let mut db = Db::connect(&ConnectOptions::from_url(&t.url))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        for i in 0..KNOWN_ACCOUNTS {
            deposits::upsert_account(db.client(), &format!("acct-{i}"), &format!("customer-{i}"))
                .await
                .unwrap();
        }
        TestDb { url: t.url, db }
    }

    /// Reconnects (after a PostgreSQL restart or a restore).
    pub async fn reconnect(&mut self) {
        self.db = Db::connect_ready(&ConnectOptions::from_url(&self.url))
            .await
            .unwrap();
    }

    pub async fn scalar_i64(&self, sql: &str) -> i64 {
        self.db.client().query_one(sql, &[]).await.unwrap().get(0)
    }

    /// The checkpoint offset and epoch of the test ingester.
    pub async fn checkpoint(&self) -> Option<(i64, i32)> {
        integration_db::checkpoint::get(self.db.client(), INGESTER)
            .await
            .unwrap()
            .map(|c| (c.offset, c.offset_epoch))
    }
}

/// `tx-ingest` with the environment pointing at `sim` and `db`.
pub fn tx_ingest(sim: &Sim, db_url: &str) -> Command {
    let mut c = Command::new(cargo_bin("tx-ingest"));
    c.env("CANTON_LEDGER_API", sim.ledger_api())
        .env("TREASURY_PARTY", sim.treasury_party())
        .env("INTEGRATION_DB_URL", db_url)
        .env("INGESTER_NAME", INGESTER)
        .env("TX_INGEST_PROGRESS_INTERVAL", "0s")
        .env("TX_INGEST_HEARTBEAT_INTERVAL", "200ms")
        .env("TX_INGEST_GIVE_UP_AFTER", "60s")
        .env("CANTON_DR_OUTPUT", "json")
        .env("RUST_LOG", "error")
        .stdin(Stdio::null());
    c
}

/// `tx-ingest --once <args>`; its JSON result (the run must succeed).
pub fn once(sim: &Sim, db_url: &str, args: &[&str]) -> serde_json::Value {
    let out = tx_ingest(sim, db_url)
        .arg("--once")
        .args(args)
        .output()
        .unwrap();
    assert_ok(&out, "tx-ingest --once");
    result_of(&out)
}

/// `tx-ingest --once`, which must be refused (exit 5); its stderr.
pub fn once_refused(sim: &Sim, db_url: &str) -> String {
    let out = tx_ingest(sim, db_url).arg("--once").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    stderr
}

pub fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} exited {:?}: {}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The `{"type":"result"}` line of a run's stdout.
pub fn result_of(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no output: {stdout}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["type"], "result", "{v}");
    v
}

/// A `tx-ingest` daemon.
pub struct Daemon {
    child: Option<Child>,
}

impl Daemon {
    pub fn start(sim: &Sim, db_url: &str, args: &[&str]) -> Daemon {
        let child = tx_ingest(sim, db_url)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tx-ingest");
        Daemon { child: Some(child) }
    }

    /// `kill -9`.
    pub fn kill9(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM; waits and returns the process output (its result line).
    pub fn terminate(mut self) -> Output {
        let child = self.child.take().unwrap();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait_with_output().unwrap()
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until the checkpoint is at or past `offset` in `epoch`.
pub async fn wait_checkpoint(db: &mut TestDb, offset: i64, epoch: i32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        match integration_db::checkpoint::get(db.db.client(), INGESTER).await {
            Ok(Some(c)) if c.offset_epoch == epoch && c.offset >= offset => return,
            Ok(_) => {}
            Err(_) => db.reconnect().await,
        }
        assert!(
            Instant::now() < deadline,
            "the checkpoint did not reach offset {offset} in epoch {epoch} within {timeout:?}: {:?}",
            db.checkpoint().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the ingester acknowledged its control row's generation.
pub async fn wait_acknowledged(db: &TestDb, timeout: Duration) -> control::Control {
    let deadline = Instant::now() + timeout;
    loop {
        let c = control::get(db.db.client(), INGESTER)
            .await
            .unwrap()
            .unwrap();
        if c.acknowledged() {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "not acknowledged within {timeout:?}: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the truth says was booked.
#[derive(Debug, Default)]
pub struct Booked {
    pub updates: usize,
    pub deposits: usize,
    pub withdrawals: usize,
}

/// The invariant: every treasury update id on the synchronizer is in
/// `ingested_updates` exactly once (and nothing else is); one deposit row per
/// deposit update; each known account credited exactly 100 per deposit; one
/// completed-or-recovered withdrawal per withdrawal update, by that update.
pub async fn assert_exactly_once(db: &TestDb, sim: &Sim) -> Booked {
    let truth = sim.truth();
    let mut ids = HashSet::new();
    let mut deposit_ids = HashSet::new();
    let mut withdrawal_ids = HashSet::new();
    let mut per_account: BTreeMap<String, usize> = BTreeMap::new();
    for u in &truth {
        let id = u["updateId"].as_str().unwrap().to_string();
        assert!(ids.insert(id.clone()), "the truth repeats {id}");
        match u["kind"].as_str().unwrap() {
            "deposit" => {
                deposit_ids.insert(id);
                *per_account
                    .entry(u["reference"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
            "withdrawal" => {
                withdrawal_ids.insert(id);
            }
            _ => {}
        }
    }
    let c = db.db.client();
    let ingested: Vec<String> = c
        .query("SELECT update_id FROM ingested_updates", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let ingested_set: HashSet<String> = ingested.iter().cloned().collect();
    let missing: Vec<_> = ids.difference(&ingested_set).take(5).collect();
    let extra: Vec<_> = ingested_set.difference(&ids).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "ingested updates differ from the synchronizer's: missing {missing:?}, extra {extra:?} ({} vs {})",
        ingested_set.len(),
        ids.len()
    );
    assert_eq!(ingested.len(), ids.len());

    let dep_rows: Vec<String> = c
        .query("SELECT update_id FROM deposits", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        dep_rows.len(),
        deposit_ids.len(),
        "one deposit row per deposit update"
    );
    assert_eq!(dep_rows.into_iter().collect::<HashSet<_>>(), deposit_ids);
    let balances: BTreeMap<String, String> = c
        .query(
            "SELECT account_id, balance::text FROM account_balances",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected: BTreeMap<String, String> = per_account
        .iter()
        .filter(|(account, _)| {
            account
                .strip_prefix("acct-")
                .and_then(|n| n.parse::<usize>().ok())
                .is_some_and(|i| i < KNOWN_ACCOUNTS)
        })
        .map(|(account, n)| (account.clone(), format!("{}.0000000000", 100 * n)))
        .collect();
    assert_eq!(
        balances, expected,
        "known accounts credited 100 per deposit, unknown ones never"
    );

    let wd_rows: Vec<(String, String)> = c
        .query(
            "SELECT completed_update_id, status FROM withdrawals WHERE status IN ('completed', 'recovered')",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut by_update: HashMap<String, usize> = HashMap::new();
    for (u, _) in &wd_rows {
        *by_update.entry(u.clone()).or_default() += 1;
    }
    assert!(
        by_update.values().all(|n| *n == 1),
        "a withdrawal update completed two rows"
    );
    assert_eq!(
        by_update.keys().cloned().collect::<HashSet<_>>(),
        withdrawal_ids,
        "one completed or recovered withdrawal per withdrawal update"
    );
    Booked {
        updates: ids.len(),
        deposits: deposit_ids.len(),
        withdrawals: withdrawal_ids.len(),
    }
}
