//! Test support: a real `canton-sim` process per test (testkit's
//! [`SimProcess`]) with a fixed synchronizer and virtual clock, its control
//! commands, the `offset-lookup` binary with a clean environment, and
//! throwaway TLS certificates.
//!
//! `canton-sim` is another workspace binary: `cargo test --workspace` builds
//! it; with `cargo test -p offset-lookup` alone run
//! `cargo build -p canton-sim` first (the tests say so if it is missing).

#![allow(dead_code)]

use canton_dr_testkit::SimProcess;
use serde_json::Value;
use std::io::Write;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A fixed logical synchronizer id, so that outputs are stable.
pub const SYNC: &str =
    "global-domain::1220d1f5a5bd9a1e0e2f3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9";
/// The virtual clock's start.
pub const START: &str = "2025-11-27T06:00:00Z";

/// A running simulator ([`SimProcess`]) with offset-lookup's helpers.
pub struct Sim {
    /// Holds the state directory (`state`) and test files such as backups.
    pub dir: tempfile::TempDir,
    process: SimProcess,
}

impl Deref for Sim {
    type Target = SimProcess;
    fn deref(&self) -> &SimProcess {
        &self.process
    }
}

impl DerefMut for Sim {
    fn deref_mut(&mut self) -> &mut SimProcess {
        &mut self.process
    }
}

impl Sim {
    /// `canton-sim serve` with a virtual clock at [`START`], synchronizer [`SYNC`], plus `extra`.
    pub fn start(extra: &[&str]) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--clock",
            "virtual",
            "--clock-start",
            START,
            "--synchronizer-id",
            SYNC,
        ];
        args.extend_from_slice(extra);
        let process = SimProcess::start_in(&dir.path().join("state"), &args);
        Sim { dir, process }
    }

    /// `canton-sim restore` from `backup`, then serve again (new ports).
    pub fn restore_and_restart(&mut self, backup: &Path, extra: &[&str]) {
        self.restore(backup);
        self.restart_with(extra);
    }

    /// One deposit; returns (record time, offset, update id).
    pub fn deposit(&self, account: &str, same_record_time: bool) -> Update {
        let mut args = vec!["deposit", "--account", account, "--amount", "10"];
        if same_record_time {
            args.push("--same-record-time");
        }
        let v = self.ctl(&args);
        Update {
            record_time: v["recordTime"].as_str().unwrap().to_string(),
            offset: v["offset"].as_i64().unwrap(),
            update_id: v["updateId"].as_str().unwrap().to_string(),
        }
    }

    /// Moves the virtual clock.
    pub fn advance(&self, by: &str) {
        self.ctl(&["advance-time", by]);
    }

    /// The synchronizer's updates with the offsets of the current incarnation.
    pub fn updates(&self) -> Vec<Update> {
        self.ctl_lines(&["update-ids"])
            .into_iter()
            .map(|v| Update {
                record_time: v["recordTime"].as_str().unwrap().to_string(),
                offset: v["offset"].as_i64().unwrap(),
                update_id: v["updateId"].as_str().unwrap().to_string(),
            })
            .collect()
    }

    /// `offset-lookup --admin-api <this sim> --output json` with a clean environment.
    pub fn lookup(&self) -> Lookup {
        let mut l = Lookup::new();
        l.args(["--admin-api", self.admin_api()]);
        l
    }
}

/// An update as the synchronizer sequenced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub record_time: String,
    pub offset: i64,
    pub update_id: String,
}

/// An `offset-lookup` invocation.
pub struct Lookup {
    cmd: Command,
    stdin: Option<String>,
}

/// What a run printed and returned.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// The single JSON object on stdout.
    pub fn json(&self) -> Value {
        let lines: Vec<&str> = self.stdout.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        serde_json::from_str(lines[0]).unwrap()
    }

    /// Every JSON line on stdout.
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Asserts the exit code, showing the output otherwise.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Lookup {
    /// `offset-lookup` with JSON output (CANTON_DR_OUTPUT), environment otherwise cleared (PATH kept).
    pub fn new() -> Lookup {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_offset-lookup"));
        cmd.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        cmd.env("CANTON_DR_OUTPUT", "json");
        Lookup { cmd, stdin: None }
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(&mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> &mut Self {
        self.cmd.env(key, value);
        self
    }

    /// `--synchronizer-id SYNC --timestamp ts`.
    pub fn at(&mut self, ts: &str) -> &mut Self {
        self.args(["--synchronizer-id", SYNC, "--timestamp", ts])
    }

    pub fn stdin(&mut self, text: impl Into<String>) -> &mut Self {
        self.stdin = Some(text.into());
        self
    }

    pub fn run(&mut self) -> Outcome {
        self.cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = self.cmd.spawn().unwrap();
        if let Some(text) = self.stdin.take() {
            let mut pipe = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let _ = pipe.write_all(text.as_bytes());
            });
        }
        let out = child.wait_with_output().unwrap();
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }
}

/// A port nothing listens on.
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Filters for snapshots: ports vary per run, and so do offsets (the
/// simulator interleaves internal ledger entries at random).
pub fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[port]"),
        (r#""offset":\d+"#, r#""offset":"[offset]""#),
        (r"offset[ =]\d+", "offset [n]"),
        // Canton correlation and trace ids of redacted errors.
        (r"\b[0-9a-f]{32}\b", "[correlation-id]"),
    ]
}

/// A CA and a server certificate for 127.0.0.1/localhost, plus an unrelated CA.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
            IsCa, KeyPair, KeyUsagePurpose,
        };
        let ca = |name: &str| {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
        };
        let issuer = ca("offset-lookup test CA");
        let other = ca("some other CA");
        let mut server =
            CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().unwrap();
        let server_cert = server.signed_by(&server_key, &issuer).unwrap();
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(pki.path("ca.pem"), issuer.pem()).unwrap();
        std::fs::write(pki.path("other-ca.pem"), other.pem()).unwrap();
        std::fs::write(pki.path("server.pem"), server_cert.pem()).unwrap();
        std::fs::write(pki.path("server.key"), server_key.serialize_pem()).unwrap();
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}
