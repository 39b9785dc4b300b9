//! The connection: injected UNAVAILABLE retried, bearer-token enforcement,
//! and TLS, through the real binary against canton-sim.

mod support;

use support::{SYNC, Sim, filters};

const ADMIN_TOKEN: &str = "admin-token-6f1c2b";
const READER_TOKEN: &str = "reader-token-93ad7e";

#[test]
fn injected_unavailable_is_retried() {
    let sim = Sim::start(&[]);
    let a = sim.deposit("acct-a", false);
    sim.ctl(&["fault", "unavailable", "--calls", "2", "--api", "admin"]);
    let out = sim.lookup().at(&a.record_time).run();
    out.expect_code(0);
    assert_eq!(out.json()["offset"], a.offset);
    // Both injected failures were consumed (re-arming latency 0 lists the faults).
    let faults = sim.ctl(&["fault", "latency", "0s"]);
    assert_eq!(faults["unavailableAdminCalls"], 0, "{faults}");
    // With RUST_LOG=debug each retry is logged on stderr.
    sim.ctl(&["fault", "unavailable", "--calls", "2", "--api", "admin"]);
    let logged = sim
        .lookup()
        .at(&a.record_time)
        .env("RUST_LOG", "debug")
        .run();
    logged.expect_code(0);
    assert!(
        logged.stderr.contains("attempt 1/5 failed"),
        "{}",
        logged.stderr
    );
    assert!(
        logged.stderr.contains("attempt 2/5 failed"),
        "{}",
        logged.stderr
    );
    assert!(!logged.stderr.contains("attempt 3/5"), "{}", logged.stderr);

    sim.ctl(&["fault", "unavailable", "--calls", "100", "--api", "admin"]);
    let out = sim.lookup().at(&a.record_time).run();
    out.expect_code(3);
    let err = out.json();
    assert_eq!(err["code"], "ABORTED_DUE_TO_SHUTDOWN");
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .ends_with("(after 5 attempts)"),
        "{err}"
    );
}

#[test]
fn unavailable_during_wait_is_waited_out() {
    let sim = Sim::start(&[]);
    let a = sim.deposit("acct-a", false);
    // More failures than the retry policy's 5 attempts: only --wait gets through.
    sim.ctl(&["fault", "unavailable", "--calls", "6", "--api", "admin"]);
    let out = sim
        .lookup()
        .at(&a.record_time)
        .args(["--wait", "--timeout", "60s"])
        .run();
    out.expect_code(0);
    assert_eq!(out.json()["offset"], a.offset);
}

fn token_sim() -> (Sim, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("{ADMIN_TOKEN}\n{READER_TOKEN}\n")).unwrap();
    let sim = Sim::start(&["--admin-token-file", tokens.to_str().unwrap()]);
    (sim, dir)
}

fn token_file(dir: &tempfile::TempDir, name: &str, token: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, format!("{token}\n")).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn tokens_are_enforced_and_never_printed() {
    let (sim, dir) = token_sim();
    let a = sim.deposit("acct-a", false);

    let missing = sim.lookup().at(&a.record_time).run();
    missing.expect_code(2);
    assert_eq!(missing.json()["code"], "UNAUTHENTICATED");
    insta::with_settings!({filters => filters()}, {
        insta::assert_snapshot!("missing_token", missing.stderr);
    });

    let reader = token_file(&dir, "reader", READER_TOKEN);
    let denied = sim
        .lookup()
        .at(&a.record_time)
        .args(["--access-token-file", &reader])
        .run();
    denied.expect_code(2);
    assert_eq!(denied.json()["code"], "PERMISSION_DENIED");
    assert!(
        denied.stderr.contains("--access-token-file"),
        "{}",
        denied.stderr
    );

    let wrong = sim
        .lookup()
        .at(&a.record_time)
        .env("CANTON_ACCESS_TOKEN", "not-the-token-4242")
        .run();
    wrong.expect_code(2);

    let admin = token_file(&dir, "admin", ADMIN_TOKEN);
    let by_flag = sim
        .lookup()
        .at(&a.record_time)
        .args(["--access-token-file", &admin])
        .run();
    by_flag.expect_code(0);
    assert_eq!(by_flag.json()["offset"], a.offset);
    let by_env_file = sim
        .lookup()
        .at(&a.record_time)
        .env("CANTON_ACCESS_TOKEN_FILE", &admin)
        .run();
    by_env_file.expect_code(0);
    let by_env = sim
        .lookup()
        .at(&a.record_time)
        .env("CANTON_ACCESS_TOKEN", ADMIN_TOKEN)
        .run();
    by_env.expect_code(0);

    for out in [&missing, &denied, &wrong, &by_flag, &by_env_file, &by_env] {
        for secret in [ADMIN_TOKEN, READER_TOKEN, "not-the-token-4242"] {
            assert!(
                !out.stdout.contains(secret),
                "token on stdout: {}",
                out.stdout
            );
            assert!(
                !out.stderr.contains(secret),
                "token on stderr: {}",
                out.stderr
            );
        }
    }
}

#[test]
fn tls_with_the_node_ca() {
    let pki = support::Pki::new();
    let sim = Sim::start(&[
        "--tls-cert",
        pki.path("server.pem").to_str().unwrap(),
        "--tls-key",
        pki.path("server.key").to_str().unwrap(),
    ]);
    let a = sim.deposit("acct-a", false);
    let port = sim.admin_api().rsplit(':').next().unwrap().to_string();
    let ca = pki.path("ca.pem");

    let out = sim
        .lookup()
        .at(&a.record_time)
        .args(["--tls", "--ca-cert", ca.to_str().unwrap()])
        .run();
    out.expect_code(0);
    assert_eq!(out.json()["offset"], a.offset);

    let url = support::Lookup::new()
        .args(["--admin-api", &format!("https://localhost:{port}")])
        .args(["--ca-cert", ca.to_str().unwrap()])
        .at(&a.record_time)
        .run();
    url.expect_code(0);
    assert_eq!(url.json()["offset"], a.offset);

    // A certificate from another CA is refused, and not retried.
    let other = sim
        .lookup()
        .at(&a.record_time)
        .args([
            "--tls",
            "--ca-cert",
            pki.path("other-ca.pem").to_str().unwrap(),
        ])
        .run();
    other.expect_code(3);
    let err = other.json();
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("TLS handshake with admin API"),
        "{err}"
    );
    assert!(
        !err["error"].as_str().unwrap().contains("attempts"),
        "{err}"
    );
    assert!(err["hint"].as_str().unwrap().contains("--ca-cert"), "{err}");

    // Plaintext against a TLS node fails.
    let plain = sim.lookup().at(&a.record_time).run();
    assert_ne!(plain.code, 0, "{plain:?}");
    assert_eq!(plain.json()["type"], "error");
    assert!(plain.stdout.contains(SYNC) || !plain.stdout.contains("\"offset\""));
}
