//! NOTIFY/LISTEN delivery on real PostgreSQL: progress at commit only,
//! control changes, and the listener surviving a server restart.

mod common;

use canton_dr_testkit::{PgCluster, fresh_database};
use common::{at, migrated};
use integration_db::control::{self, IngesterState};
use integration_db::notify::{self, ControlEvent, Event, Progress, ProgressListener};
use integration_db::{ConnectOptions, Db};
use std::time::Duration;

fn progress(offset: i64) -> Progress {
    Progress {
        ingester: "main".into(),
        offset,
        record_time: at("2025-01-01T00:00:00.123456Z"),
        offset_epoch: 0,
        update_id: Some(format!("u{offset}")),
    }
}

async fn next(listener: &mut ProgressListener) -> Event {
    tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .expect("an event within 10 s")
        .expect("listener alive")
}

#[tokio::test]
async fn progress_is_delivered_at_commit_and_not_for_rollbacks() {
    let (t, mut db) = migrated().await;
    let mut listener = ProgressListener::start(&ConnectOptions::from_url(&t.url))
        .await
        .unwrap();

    let tx = db.transaction().await.unwrap();
    notify::notify_progress(&tx, &progress(1)).await.unwrap();
    tx.rollback().await.unwrap();

    let tx = db.transaction().await.unwrap();
    notify::notify_progress(&tx, &progress(2)).await.unwrap();
    tx.commit().await.unwrap();

    assert_eq!(next(&mut listener).await, Event::Progress(progress(2)));
}

#[tokio::test]
async fn control_changes_and_acks_are_announced() {
    let (t, db) = migrated().await;
    let mut listener = ProgressListener::start(&ConnectOptions::from_url(&t.url))
        .await
        .unwrap();
    control::set_desired_state(db.client(), "main", IngesterState::Stopped, "op@host")
        .await
        .unwrap();
    let Event::Control(change) = next(&mut listener).await else {
        panic!("expected a control event")
    };
    assert_eq!(
        (change.ingester.as_str(), change.generation, change.event),
        ("main", 1, ControlEvent::Changed)
    );

    // An unchanged re-run announces nothing; the ack does.
    control::set_desired_state(db.client(), "main", IngesterState::Stopped, "op@host")
        .await
        .unwrap();
    control::ack(db.client(), "main", IngesterState::Stopped, 1)
        .await
        .unwrap();
    let Event::Control(change) = next(&mut listener).await else {
        panic!("expected a control event")
    };
    assert_eq!((change.generation, change.event), (1, ControlEvent::Acked));
}

#[tokio::test]
async fn listener_reconnects_after_a_server_restart() {
    let cluster = PgCluster::new();
    let t = fresh_database(&cluster);
    let opts = ConnectOptions::from_url(&t.url);
    let mut listener = ProgressListener::start(&opts).await.unwrap();

    cluster.restart();
    assert_eq!(next(&mut listener).await, Event::Reconnected);

    let db = Db::connect(&opts).await.unwrap();
    notify::notify_progress(db.client(), &progress(7))
        .await
        .unwrap();
    assert_eq!(next(&mut listener).await, Event::Progress(progress(7)));
}

#[tokio::test]
async fn listener_reports_a_server_that_is_down() {
    let cluster = PgCluster::new();
    let t = fresh_database(&cluster);
    cluster.stop();
    let err = ProgressListener::start(&ConnectOptions::from_url(&t.url))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code().code(), 3, "{}", err.message());
    assert!(
        err.message()
            .contains(&format!("127.0.0.1:{}", cluster.port())),
        "{}",
        err.message()
    );
}
