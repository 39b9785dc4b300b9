//! Test support: a real `canton-sim` process per test (testkit's
//! [`SimProcess`]), an independent view of the node's DARs over gRPC, a fresh
//! Integration DB per test, test DAR files, and the `dar-sync` binary run with
//! a clean environment.
//!
//! `canton-sim` is another workspace binary: `cargo test --workspace` builds
//! it; with `cargo test -p dar-sync` alone run `cargo build -p canton-sim`
//! first (the tests say so if it is missing).

#![allow(dead_code)]

use canton_dr_testkit::SimProcess;
use canton_proto::admin::ListDarsRequest;
use canton_proto::admin::package_service_client::PackageServiceClient;
use daml_dar::{BuiltDar, DarBuilder};
use serde_json::Value;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A running simulator ([`SimProcess`]) with dar-sync's helpers.
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
    /// `canton-sim serve` on free ports, plus `extra`.
    pub fn start(extra: &[&str]) -> Sim {
        Sim(SimProcess::start(extra))
    }

    /// Stops the server, puts `backup` back, serves again (new ports).
    pub fn restore_and_restart(&mut self, backup: &Path) {
        self.restore(backup);
        self.restart();
    }

    /// The node's DARs as (main package id, name, version), straight from
    /// ListDars over gRPC (not through dar-sync), sorted.
    pub fn list_dars(&self) -> Vec<(String, String, String)> {
        let admin = self.admin_api().to_string();
        rt().block_on(async move {
            let ch = tonic::transport::Channel::from_shared(format!("http://{admin}"))
                .unwrap()
                .connect()
                .await
                .unwrap();
            let mut dars: Vec<_> = PackageServiceClient::new(ch)
                .list_dars(ListDarsRequest {
                    limit: 0,
                    filter_name: String::new(),
                })
                .await
                .unwrap()
                .into_inner()
                .dars
                .into_iter()
                .map(|d| (d.main, d.name, d.version))
                .collect();
            dars.sort();
            dars
        })
    }

    /// Main package ids of the node's DARs other than the built-in ones.
    pub fn user_dar_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .list_dars()
            .into_iter()
            .filter(|(_, name, _)| !name.starts_with("canton-builtin-"))
            .map(|(id, _, _)| id)
            .collect();
        ids.sort();
        ids
    }

    /// `dar-sync` with `--admin-api` of this node.
    pub fn dar_sync(&self, args: &[&str]) -> Run {
        // --admin-api belongs to the subcommand: put the subcommand first.
        let (sub, rest) = args.split_first().expect("a subcommand");
        let mut v = vec![*sub, "--admin-api", self.admin_api()];
        v.extend_from_slice(rest);
        dar_sync(&v)
    }
}

/// A current-thread runtime for gRPC and database calls from tests.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// One run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub lines: Vec<Value>,
    pub stderr: String,
}

impl Run {
    fn from_output(out: Output) -> Run {
        let stdout = String::from_utf8(out.stdout).unwrap();
        let lines = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
            .collect();
        Run {
            code: out.status.code().unwrap_or(-1),
            lines,
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// Lines of `type`.
    pub fn of(&self, kind: &str) -> Vec<&Value> {
        self.lines.iter().filter(|l| l["type"] == kind).collect()
    }

    /// The summary line.
    pub fn summary(&self) -> &Value {
        let s = self.of("summary");
        assert_eq!(s.len(), 1, "one summary expected: {self:#?}");
        s[0]
    }

    /// Sorted `mainPackageId`s of the lines of `type` (and `result`, if given).
    pub fn ids(&self, kind: &str, result: Option<&str>) -> Vec<String> {
        let mut ids: Vec<String> = self
            .of(kind)
            .into_iter()
            .filter(|l| result.is_none_or(|r| l["result"] == r))
            .map(|l| l["mainPackageId"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }

    /// Asserts the exit code, showing the run on failure.
    pub fn expect(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "{self:#?}");
        self
    }
}

/// A `dar-sync` command with the environment cleared of everything it reads.
pub fn command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dar-sync"));
    c.args(["--output", "json"]).args(args);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("PG")
            || k.starts_with("CANTON_")
            || k.starts_with("DAR_SYNC_")
            || k.starts_with("INTEGRATION_DB_")
            || k == "RUST_LOG"
        {
            c.env_remove(k);
        }
    }
    c.stdin(Stdio::null());
    c
}

/// Runs `dar-sync args…` to completion.
pub fn dar_sync(args: &[&str]) -> Run {
    Run::from_output(command(args).output().expect("run dar-sync"))
}

/// Writes `n` valid DARs `<prefix>-<i>.dar` into `dir` (seeded by `seed0 + i`).
pub fn write_dars(dir: &Path, prefix: &str, seed0: u64, n: u64) -> Vec<BuiltDar> {
    std::fs::create_dir_all(dir).unwrap();
    (0..n)
        .map(|i| {
            let b = DarBuilder::new(format!("{prefix}-token"), format!("1.{i}.0"))
                .seed(seed0 + i)
                .dependencies(2)
                .build();
            b.write_to(dir.join(format!("{prefix}-{i}.dar"))).unwrap();
            b
        })
        .collect()
}

/// Sorted main package ids of built DARs.
pub fn ids_of(dars: &[BuiltDar]) -> Vec<String> {
    let mut ids: Vec<String> = dars.iter().map(|d| d.main_package_id.clone()).collect();
    ids.sort();
    ids
}

/// A fresh, migrated Integration DB in the shared throwaway cluster.
pub struct TestDb {
    pub url: String,
}

impl TestDb {
    pub fn new() -> TestDb {
        let cluster = canton_dr_testkit::PgCluster::shared();
        let db = canton_dr_testkit::fresh_database(cluster);
        let url = db.url.clone();
        rt().block_on(async {
            let mut db =
                integration_db::Db::connect(&integration_db::ConnectOptions::from_url(url.clone()))
                    .await
                    .unwrap();
            db.migrate().await.unwrap();
        });
        TestDb { url }
    }

    async fn connect(&self) -> integration_db::Db {
        integration_db::Db::connect_ready(&integration_db::ConnectOptions::from_url(
            self.url.clone(),
        ))
        .await
        .unwrap()
    }

    /// Rows of `dar_uploads`, oldest first.
    pub fn registry(&self) -> Vec<integration_db::dars::DarUpload> {
        rt().block_on(async {
            let db = self.connect().await;
            integration_db::dars::list(db.client(), None).await.unwrap()
        })
    }

    /// Sorted main package ids in `dar_uploads`.
    pub fn registry_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .registry()
            .into_iter()
            .map(|r| r.main_package_id)
            .collect();
        ids.sort();
        ids
    }

    /// dar-sync's audit rows, newest first.
    pub fn audit(&self) -> Vec<integration_db::audit::AuditRecord> {
        rt().block_on(async {
            let db = self.connect().await;
            integration_db::audit::recent(db.client(), Some("dar-sync"), 100)
                .await
                .unwrap()
        })
    }
}

/// Lines made stable for snapshots: `dir` replaced by `[DIR]`, keys sorted.
pub fn normalized(lines: &[&Value], dir: &Path) -> Vec<Value> {
    let prefix = dir.display().to_string();
    lines
        .iter()
        .map(|l| {
            let text = serde_json::to_string(l).unwrap().replace(&prefix, "[DIR]");
            let mut v: Value = serde_json::from_str(&text).unwrap();
            v.sort_all_objects();
            v
        })
        .collect()
}
