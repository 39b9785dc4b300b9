//! The throwaway cluster helpers against real PostgreSQL: lifecycle, outages,
//! per-test databases, and cleanup when the owning process goes away.

use canton_dr_testkit::{ClusterOptions, PgCluster, fresh_database};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn accepts_tcp(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn cluster_stops_starts_restarts_and_is_removed_on_drop() {
    let cluster = PgCluster::new();
    let dir = cluster.dir().to_path_buf();
    let port = cluster.port();
    assert!(cluster.is_running());
    assert!(accepts_tcp(port));
    assert_eq!(cluster.query("postgres", "SELECT current_user"), "postgres");
    assert!(
        dir.join(format!(".s.PGSQL.{port}")).exists(),
        "unix socket in the cluster dir"
    );

    cluster.stop();
    assert!(!cluster.is_running());
    assert!(
        !accepts_tcp(port),
        "a stopped cluster must refuse connections"
    );

    cluster.start();
    assert!(cluster.is_running());
    assert_eq!(cluster.port(), port);
    cluster.sql("CREATE TABLE kept (x int); INSERT INTO kept VALUES (7);");

    cluster.restart();
    assert!(accepts_tcp(port), "same port after restart");
    assert_eq!(
        cluster.query("postgres", "SELECT x FROM kept"),
        "7",
        "data survives restart"
    );

    drop(cluster);
    assert!(!dir.exists(), "drop removes {}", dir.display());
    assert!(!accepts_tcp(port));
}

#[test]
fn fresh_databases_are_distinct_and_empty() {
    let cluster = PgCluster::shared();
    let a = fresh_database(cluster);
    let b = fresh_database(cluster);
    assert_ne!(a.name, b.name);
    assert!(
        a.url.ends_with(&format!(":{}/{}", cluster.port(), a.name)),
        "{}",
        a.url
    );
    cluster.query(&a.name, "CREATE TABLE only_in_a (x int)");
    assert_eq!(
        cluster.query(
            &b.name,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"
        ),
        "0"
    );
    assert_eq!(
        cluster.query(
            &a.name,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"
        ),
        "1"
    );
}

#[test]
fn shared_cluster_is_one_per_process() {
    assert_eq!(PgCluster::shared().dir(), PgCluster::shared().dir());
}

#[test]
fn password_role_needs_its_password_and_tls_has_a_ca() {
    let cluster =
        PgCluster::with_options(&ClusterOptions::default().password_role("app", "pw-1").tls());
    let ca = cluster.ca_cert().expect("tls cluster has a CA");
    assert!(ca.is_file());
    assert_eq!(
        cluster.query(
            "postgres",
            "SELECT rolname FROM pg_roles WHERE rolname = 'app' AND rolcanlogin"
        ),
        "app"
    );
    assert_eq!(cluster.query("postgres", "SHOW ssl"), "on");
    // scram for the role over TCP comes first in pg_hba.conf.
    let hba = std::fs::read_to_string(cluster.dir().join("data/pg_hba.conf")).unwrap();
    assert!(
        hba.starts_with("host all app 127.0.0.1/32 scram-sha-256"),
        "{hba}"
    );
}

#[test]
fn watchdog_removes_the_cluster_when_the_watched_process_exits() {
    let mut owner = Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn sleep");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-tmp.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(["start", "--watch-pid", &owner.id().to_string()])
        .output()
        .expect("run pg-tmp.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exports = String::from_utf8(out.stdout).unwrap();
    let field = |k: &str| {
        exports
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('=').map(str::to_string))
            .unwrap()
    };
    let dir = field("PGTEST_DIR");
    let port: u16 = field("PGPORT").parse().unwrap();
    assert!(accepts_tcp(port));

    owner.kill().unwrap();
    owner.wait().unwrap();
    wait_until(
        "the watchdog to remove the cluster",
        Duration::from_secs(10),
        || !Path::new(&dir).exists(),
    );
    assert!(!accepts_tcp(port), "server stopped");
}

#[test]
fn script_reports_missing_postgres_with_the_install_command() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-tmp.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("start")
        // No initdb on this PATH, and no Debian layout under this root.
        .env("PATH", "/usr/bin:/bin")
        .env("PGTMP_BIN", "")
        .env("PGTMP_PG_ROOT", "/nonexistent")
        .output()
        .expect("run pg-tmp.sh");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("install PostgreSQL: apt-get install postgresql"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
