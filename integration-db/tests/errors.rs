//! Connection and schema errors on real PostgreSQL: each has its exit code, a
//! one-line message naming the server, a hint, and never the password.

mod common;

use canton_dr_cli::Error;
use canton_dr_testkit::{ClusterOptions, PgCluster, fresh_database};
use integration_db::{ConnectOptions, Db, checkpoint, error::MIGRATE_HINT};
use std::sync::OnceLock;

const PASSWORD: &str = "c0rrect-h0rse";
const WRONG: &str = "wr0ng-pa55w0rd";

/// One cluster with TLS and a password-protected role `app`.
fn secure() -> &'static PgCluster {
    static SECURE: OnceLock<PgCluster> = OnceLock::new();
    SECURE.get_or_init(|| {
        PgCluster::with_options(
            &ClusterOptions::default()
                .tls()
                .password_role("app", PASSWORD),
        )
    })
}

async fn connect_err(url: &str) -> Error {
    Db::connect(&ConnectOptions::from_url(url).attempts(1))
        .await
        .expect_err("connect must fail")
}

fn assert_one_line_without_secrets(e: &Error) {
    for text in [e.message(), e.hint().unwrap_or("")] {
        assert!(!text.contains('\n'), "{text}");
        assert!(
            !text.contains(PASSWORD) && !text.contains(WRONG),
            "secret leaked: {text}"
        );
    }
}

#[tokio::test]
async fn postgres_down_is_transient_and_names_the_server() {
    let cluster = PgCluster::new();
    let t = fresh_database(&cluster);
    cluster.stop();
    // The default retries apply (3 attempts) and still fail.
    let err = Db::connect(&ConnectOptions::from_url(&t.url))
        .await
        .unwrap_err();
    let target = format!("127.0.0.1:{}", cluster.port());
    assert_eq!(err.exit_code().code(), 3, "{}", err.message());
    assert_eq!(
        err.message(),
        format!("cannot connect to PostgreSQL at {target}: connection refused")
    );
    assert_eq!(
        err.hint(),
        Some(format!("is PostgreSQL running at {target}?").as_str())
    );

    // Back up: the same options work again.
    cluster.start();
    Db::connect(&ConnectOptions::from_url(&t.url))
        .await
        .expect("connects after start");
}

#[tokio::test]
async fn losing_the_server_mid_session_is_transient() {
    let cluster = PgCluster::new();
    let t = fresh_database(&cluster);
    let mut db = Db::connect(&ConnectOptions::from_url(&t.url))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    cluster.restart();
    let err = checkpoint::get(db.client(), "main").await.unwrap_err();
    assert_eq!(err.exit_code().code(), 3, "{}", err.message());
    assert!(
        err.message()
            .starts_with("lost the connection to PostgreSQL"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn wrong_host_or_port_is_transient() {
    // Port 1 on loopback: nothing listens there.
    let err = connect_err("postgresql://postgres@127.0.0.1:1/postgres").await;
    assert_eq!(err.exit_code().code(), 3);
    assert!(err.message().contains("127.0.0.1:1"), "{}", err.message());
    assert!(
        err.hint()
            .unwrap()
            .contains("is PostgreSQL running at 127.0.0.1:1?")
    );

    let err = connect_err("postgresql://postgres@no-such-host.invalid:5432/postgres").await;
    assert_eq!(err.exit_code().code(), 3, "{}", err.message());
    assert!(
        err.message().contains("no-such-host.invalid:5432"),
        "{}",
        err.message()
    );
    assert_one_line_without_secrets(&err);
}

#[tokio::test]
async fn garbage_urls_are_usage_errors() {
    for url in [
        format!("postgresql://app:{WRONG}@127.0.0.1:notaport/db"),
        "this is not a connection string".to_string(),
        "postgresql://u@h/db?sslmode=sometimes".to_string(),
        "postgresql://u@h/db?no_such_option=1".to_string(),
    ] {
        let err = connect_err(&url).await;
        assert_eq!(err.exit_code().code(), 2, "{url}: {}", err.message());
        assert_one_line_without_secrets(&err);
    }
}

#[tokio::test]
async fn wrong_password_is_a_usage_error_without_the_password() {
    let c = secure();
    let good = format!(
        "postgresql://app:{PASSWORD}@127.0.0.1:{}/postgres",
        c.port()
    );
    Db::connect(&ConnectOptions::from_url(&good))
        .await
        .expect("the right password works");

    let err = connect_err(&format!(
        "postgresql://app:{WRONG}@127.0.0.1:{}/postgres",
        c.port()
    ))
    .await;
    assert_eq!(err.exit_code().code(), 2, "{}", err.message());
    assert_eq!(
        err.message(),
        format!(
            "PostgreSQL at 127.0.0.1:{} rejected the password for user \"app\"",
            c.port()
        )
    );
    assert!(err.hint().unwrap().contains("PGPASSWORD"));
    assert_one_line_without_secrets(&err);

    // No password at all.
    let err = connect_err(&format!("postgresql://app@127.0.0.1:{}/postgres", c.port())).await;
    assert_eq!(err.exit_code().code(), 2, "{}", err.message());
    assert!(
        err.message().contains("asks for a password"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn password_from_pgpassword_environment() {
    let c = secure();
    let opts =
        ConnectOptions::from_url(format!("postgresql://app@127.0.0.1:{}/postgres", c.port()));
    let env = |k: &str| (k == "PGPASSWORD").then(|| PASSWORD.to_string());
    let resolved = opts.resolve_with(&env).unwrap();
    assert!(
        !format!("{resolved:?}").contains(PASSWORD),
        "Debug must not show the password"
    );
    Db::connect_resolved(resolved)
        .await
        .expect("PGPASSWORD is used");
}

#[tokio::test]
async fn unknown_role_and_missing_database_are_usage_errors() {
    let cluster = PgCluster::shared();
    let err = connect_err(&format!(
        "postgresql://nobody@127.0.0.1:{}/postgres",
        cluster.port()
    ))
    .await;
    assert_eq!(err.exit_code().code(), 2, "{}", err.message());
    assert!(
        err.message().contains("refused user \"nobody\""),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("role \"nobody\" does not exist"),
        "{}",
        err.message()
    );

    let err = connect_err(&cluster.url_for("no_such_db")).await;
    assert_eq!(err.exit_code().code(), 2, "{}", err.message());
    assert_eq!(
        err.message(),
        format!(
            "PostgreSQL at 127.0.0.1:{}: database \"no_such_db\" does not exist",
            cluster.port()
        )
    );
    assert!(
        err.hint()
            .unwrap()
            .contains("create database \"no_such_db\"")
    );
}

#[tokio::test]
async fn tls_required_against_a_server_without_tls_fails_the_handshake() {
    let cluster = PgCluster::shared();
    let err = connect_err(&format!("{}?sslmode=require", cluster.url())).await;
    assert_eq!(err.exit_code().code(), 2, "{}", err.message());
    assert_eq!(
        err.message(),
        format!(
            "PostgreSQL at 127.0.0.1:{} does not offer TLS, but sslmode requires it",
            cluster.port()
        )
    );
    assert_one_line_without_secrets(&err);
}

#[tokio::test]
async fn tls_verifies_the_server_certificate() {
    let c = secure();
    let ca = c.ca_cert().unwrap();
    let url = format!(
        "postgresql://app:{PASSWORD}@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={}",
        c.port(),
        ca.display()
    );
    let db = Db::connect(&ConnectOptions::from_url(&url))
        .await
        .expect("TLS with the private CA");
    let ssl: bool = db
        .client()
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ssl, "the session is encrypted");

    // Without the private CA the Mozilla roots do not trust the server.
    let url = format!(
        "postgresql://app:{PASSWORD}@127.0.0.1:{}/postgres?sslmode=require",
        c.port()
    );
    let err = connect_err(&url).await;
    assert_eq!(err.exit_code().code(), 2, "{}", err.message());
    assert!(
        err.message()
            .starts_with("TLS handshake with PostgreSQL at"),
        "{}",
        err.message()
    );
    assert!(err.message().contains("UnknownIssuer"), "{}", err.message());
    assert!(err.hint().unwrap().contains("PGSSLROOTCERT"));
    assert_one_line_without_secrets(&err);

    // A CA file that does not exist is named.
    let url = format!(
        "{}?sslmode=require&sslrootcert=/nonexistent/ca.pem",
        c.url()
    );
    let err = connect_err(&url).await;
    assert_eq!(err.exit_code().code(), 2);
    assert!(
        err.message().contains("/nonexistent/ca.pem"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn missing_schema_is_a_usage_error_with_the_migrate_hint() {
    let t = fresh_database(PgCluster::shared());
    let err = Db::connect_ready(&ConnectOptions::from_url(&t.url))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code().code(), 2);
    assert_eq!(err.hint(), Some(MIGRATE_HINT));

    // A query against the unmigrated schema says the same.
    let db = Db::connect(&ConnectOptions::from_url(&t.url))
        .await
        .unwrap();
    let err = checkpoint::get(db.client(), "main").await.unwrap_err();
    assert_eq!(err.exit_code().code(), 2);
    assert!(
        err.message().contains("schema is missing or out of date"),
        "{}",
        err.message()
    );
    assert_eq!(err.hint(), Some(MIGRATE_HINT));
}
