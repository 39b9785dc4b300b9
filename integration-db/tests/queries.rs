//! The typed queries against real PostgreSQL, one test per table, including
//! their idempotence and their behaviour inside a caller's transaction.

mod common;

use common::{at, migrated};
use integration_db::audit::{self, AuditEntry, Outcome};
use integration_db::checkpoint::{self, Position};
use integration_db::control::{self, IngesterState};
use integration_db::dars::{self, DarUpload};
use integration_db::deposits::{self, NewDeposit};
use integration_db::gate::{self, DEFAULT_GATE, Freeze};
use integration_db::holdings::{self, Holding};
use integration_db::updates::{self, UpdateRef};
use integration_db::withdrawals::{self, NewWithdrawal, Transition, WithdrawalStatus};
use serde_json::json;

const SYNC: &str = "global-domain::1220abcd";

fn update(id: &str, offset: i64, t: &str) -> UpdateRef {
    UpdateRef {
        update_id: id.to_string(),
        offset,
        record_time: at(t),
        synchronizer_id: SYNC.to_string(),
    }
}

#[tokio::test]
async fn checkpoint_moves_with_the_transaction_that_commits_the_update() {
    let (_t, mut db) = migrated().await;

    // Rolled back: neither the dedup row nor the checkpoint exist.
    {
        let tx = db.transaction().await.unwrap();
        let new = checkpoint::record_transaction(
            &tx,
            "main",
            &update("u1", 10, "2025-01-01T00:00:01Z"),
            0,
        )
        .await
        .unwrap();
        assert!(new);
        tx.rollback().await.unwrap();
    }
    assert_eq!(checkpoint::get(db.client(), "main").await.unwrap(), None);
    assert!(!updates::contains(db.client(), "u1").await.unwrap());

    let tx = db.transaction().await.unwrap();
    assert!(
        checkpoint::record_transaction(&tx, "main", &update("u1", 10, "2025-01-01T00:00:01Z"), 0)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();

    let cp = checkpoint::get(db.client(), "main").await.unwrap().unwrap();
    assert_eq!(cp.offset, 10);
    assert_eq!(cp.update_id.as_deref(), Some("u1"));
    let last = cp.last_transaction.clone().unwrap();
    assert_eq!((last.offset, last.update_id.as_str()), (10, "u1"));

    // An offset checkpoint moves the position, clears update_id, keeps the last transaction.
    checkpoint::record_offset_checkpoint(
        db.client(),
        "main",
        &Position {
            offset: 12,
            record_time: at("2025-01-01T00:00:05.000001Z"),
            synchronizer_id: SYNC.into(),
        },
        0,
    )
    .await
    .unwrap();
    let cp = checkpoint::get(db.client(), "main").await.unwrap().unwrap();
    assert_eq!(cp.offset, 12);
    assert_eq!(cp.update_id, None);
    assert_eq!(cp.last_transaction.as_ref().unwrap().update_id, "u1");
    let j = serde_json::to_value(&cp).unwrap();
    assert_eq!(j["recordTime"], "2025-01-01T00:00:05.000001Z");
    assert_eq!(
        j["lastTransaction"]["recordTime"],
        "2025-01-01T00:00:01.000000Z"
    );
    assert_eq!(j["lastTransaction"]["synchronizerId"], SYNC);
    assert_eq!(j["updateId"], serde_json::Value::Null);

    // After a participant restore the same update comes back at a new offset
    // in a new epoch: a duplicate, but the checkpoint follows the new offset.
    let dup = checkpoint::record_transaction(
        db.client(),
        "main",
        &update("u1", 3, "2025-01-01T00:00:01Z"),
        1,
    )
    .await
    .unwrap();
    assert!(!dup);
    let cp = checkpoint::get(db.client(), "main").await.unwrap().unwrap();
    assert_eq!((cp.offset, cp.offset_epoch), (3, 1));
    let row = updates::get(db.client(), "u1").await.unwrap().unwrap();
    assert_eq!(
        (row.offset, row.offset_epoch),
        (10, 0),
        "the first ingestion is kept"
    );
    assert_eq!(checkpoint::list(db.client()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn ingested_updates_dedup_count_and_list() {
    let (_t, db) = migrated().await;
    let c = db.client();
    assert!(
        updates::insert(c, "a", &update("x1", 1, "2025-01-01T00:00:01Z"), 0)
            .await
            .unwrap()
    );
    assert!(
        updates::insert(c, "a", &update("x2", 2, "2025-01-01T00:00:03Z"), 0)
            .await
            .unwrap()
    );
    assert!(
        updates::insert(c, "b", &update("y1", 1, "2025-01-01T00:00:02Z"), 0)
            .await
            .unwrap()
    );
    assert!(
        !updates::insert(c, "a", &update("x1", 7, "2025-01-01T00:00:01Z"), 1)
            .await
            .unwrap()
    );
    assert_eq!(updates::count(c, None).await.unwrap(), 3);
    assert_eq!(updates::count(c, Some("a")).await.unwrap(), 2);
    let since = updates::list_since(c, "a", Some(at("2025-01-01T00:00:02Z")), 10)
        .await
        .unwrap();
    assert_eq!(
        since
            .iter()
            .map(|u| u.update_id.as_str())
            .collect::<Vec<_>>(),
        ["x2"]
    );
    assert_eq!(updates::list_since(c, "a", None, 1).await.unwrap().len(), 1);
    assert_eq!(
        updates::max_record_time(c, "a").await.unwrap(),
        Some(at("2025-01-01T00:00:03Z"))
    );
    assert_eq!(updates::max_record_time(c, "zzz").await.unwrap(), None);
}

#[tokio::test]
async fn control_generation_ack_and_resume() {
    let (_t, db) = migrated().await;
    let c = db.client();
    assert_eq!(control::get(c, "main").await.unwrap(), None);
    let row = control::ensure(c, "main", "op@host").await.unwrap();
    assert_eq!(
        (row.desired_state, row.generation),
        (IngesterState::Running, 0)
    );
    assert_eq!(
        control::ensure(c, "main", "other@host")
            .await
            .unwrap()
            .generation,
        0
    );

    let ch = control::set_desired_state(c, "main", IngesterState::Stopped, "op@host")
        .await
        .unwrap();
    assert!(ch.changed);
    assert_eq!(ch.value.generation, 1);
    assert!(!ch.value.acknowledged());
    let again = control::set_desired_state(c, "main", IngesterState::Stopped, "op@host")
        .await
        .unwrap();
    assert!(!again.changed);
    assert_eq!(again.value.generation, 1);

    // An ack of an older generation does not count; acks never go backwards.
    let acked = control::ack(c, "main", IngesterState::Stopped, 0)
        .await
        .unwrap();
    assert!(!acked.acknowledged());
    let acked = control::ack(c, "main", IngesterState::Stopped, 1)
        .await
        .unwrap();
    assert!(acked.acknowledged());
    assert!(acked.heartbeat_at.is_some());
    let acked = control::ack(c, "main", IngesterState::Stopped, 0)
        .await
        .unwrap();
    assert_eq!(acked.acked_generation, 1);

    let r = control::set_resume(c, "main", 42, Some(at("2025-01-01T00:00:00Z")), "op@host")
        .await
        .unwrap();
    assert!(r.changed);
    assert_eq!(
        (
            r.value.resume_offset,
            r.value.offset_epoch,
            r.value.generation
        ),
        (Some(42), 1, 2)
    );
    assert_eq!(r.value.updated_by, "op@host");
    let same = control::set_resume(c, "main", 42, Some(at("2025-01-01T00:00:00Z")), "op@host")
        .await
        .unwrap();
    assert!(!same.changed);
    assert_eq!(same.value.offset_epoch, 1);

    // The resume is owed until the ingester checkpoints in the new epoch.
    assert_eq!(r.value.pending_resume(None), Some(42));
    checkpoint::record_offset_checkpoint(
        c,
        "main",
        &Position {
            offset: 40,
            record_time: at("2025-01-01T00:00:00Z"),
            synchronizer_id: SYNC.into(),
        },
        0,
    )
    .await
    .unwrap();
    let cp = checkpoint::get(c, "main").await.unwrap();
    assert_eq!(r.value.pending_resume(cp.as_ref()), Some(42));
    checkpoint::record_offset_checkpoint(
        c,
        "main",
        &Position {
            offset: 43,
            record_time: at("2025-01-01T00:00:01Z"),
            synchronizer_id: SYNC.into(),
        },
        1,
    )
    .await
    .unwrap();
    let cp = checkpoint::get(c, "main").await.unwrap();
    assert_eq!(r.value.pending_resume(cp.as_ref()), None);

    assert!(
        control::heartbeat(c, "main", IngesterState::Running)
            .await
            .unwrap()
    );
    assert!(
        !control::heartbeat(c, "ghost", IngesterState::Running)
            .await
            .unwrap()
    );
    let err = control::ack(c, "ghost", IngesterState::Running, 1)
        .await
        .unwrap_err();
    assert_eq!(err.exit_code().code(), 2);
    let err = control::set_resume(c, "main", -1, None, "op@host")
        .await
        .unwrap_err();
    assert_eq!(err.exit_code().code(), 2);

    let j = serde_json::to_value(control::get(c, "main").await.unwrap().unwrap()).unwrap();
    assert_eq!(j["desiredState"], "stopped");
    assert_eq!(j["actualState"], "running");
    assert_eq!(j["dedupFrom"], "2025-01-01T00:00:00.000000Z");
    assert_eq!(control::list(c).await.unwrap().len(), 1);
}

#[tokio::test]
async fn withdrawals_life_cycle() {
    let (_t, db) = migrated().await;
    let c = db.client();
    let w1 = NewWithdrawal {
        withdrawal_id: "w1".into(),
        account_id: Some("acct-1".into()),
        amount: Some("100.25".into()),
        trec_tgt: Some(at("2025-01-01T01:00:00Z")),
        ..Default::default()
    };
    let row = withdrawals::upsert_requested(c, &w1).await.unwrap();
    assert_eq!(row.status, WithdrawalStatus::Requested);
    assert_eq!(row.amount.as_deref(), Some("100.2500000000"));

    // Re-upsert fills gaps and never overwrites.
    let more = NewWithdrawal {
        withdrawal_id: "w1".into(),
        receiver: Some("alice::1220".into()),
        amount: Some("999".into()),
        ..Default::default()
    };
    let row = withdrawals::upsert_requested(c, &more).await.unwrap();
    assert_eq!(row.receiver.as_deref(), Some("alice::1220"));
    assert_eq!(row.amount.as_deref(), Some("100.2500000000"));
    let unchanged = withdrawals::upsert_requested(c, &more).await.unwrap();
    assert_eq!(
        unchanged.updated_at, row.updated_at,
        "nothing to fill in: row untouched"
    );

    withdrawals::upsert_requested(
        c,
        &NewWithdrawal {
            withdrawal_id: "w2".into(),
            trec_tgt: Some(at("2025-01-01T02:00:00Z")),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    withdrawals::upsert_requested(
        c,
        &NewWithdrawal {
            withdrawal_id: "w3".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        withdrawals::max_in_flight_trec_tgt(c).await.unwrap(),
        Some(at("2025-01-01T02:00:00Z"))
    );

    assert!(
        matches!(withdrawals::mark_submitted(c, "w1").await.unwrap(), Transition::Changed(w) if w.status == WithdrawalStatus::Submitted)
    );
    assert!(matches!(
        withdrawals::mark_submitted(c, "w1").await.unwrap(),
        Transition::Unchanged(_)
    ));
    assert_eq!(
        withdrawals::mark_submitted(c, "nope").await.unwrap(),
        Transition::NotFound
    );

    let done = withdrawals::complete(c, "w2", "upd-9", at("2025-01-01T00:30:00Z"))
        .await
        .unwrap();
    let Transition::Changed(done) = done else {
        panic!("{done:?}")
    };
    assert_eq!(done.status, WithdrawalStatus::Completed);
    assert_eq!(done.completed_update_id.as_deref(), Some("upd-9"));
    assert!(matches!(
        withdrawals::complete(c, "w2", "upd-9", at("2025-01-01T00:30:00Z"))
            .await
            .unwrap(),
        Transition::Unchanged(_)
    ));
    // The in-flight maximum drops with w2 done.
    assert_eq!(
        withdrawals::max_in_flight_trec_tgt(c).await.unwrap(),
        Some(at("2025-01-01T01:00:00Z"))
    );
    assert!(
        matches!(withdrawals::fail(c, "w2", "late", None, None).await.unwrap(), Transition::Unchanged(w) if w.status == WithdrawalStatus::Completed)
    );
    let Transition::Changed(failed) = withdrawals::fail(c, "w3", "expired", None, None)
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(failed.failure_reason.as_deref(), Some("expired"));

    let in_flight = withdrawals::list_in_flight(c).await.unwrap();
    assert_eq!(
        in_flight
            .iter()
            .map(|w| w.withdrawal_id.as_str())
            .collect::<Vec<_>>(),
        ["w1"]
    );

    // Lost in a restore, seen completed on chain: recovered, needs reconciliation.
    let lost = NewWithdrawal {
        withdrawal_id: "w4".into(),
        amount: Some("5".into()),
        ..Default::default()
    };
    assert!(
        withdrawals::record_recovered(c, &lost, "upd-10", at("2025-01-01T00:40:00Z"))
            .await
            .unwrap()
    );
    assert!(
        !withdrawals::record_recovered(c, &lost, "upd-10", at("2025-01-01T00:40:00Z"))
            .await
            .unwrap()
    );
    let w4 = withdrawals::get(c, "w4").await.unwrap().unwrap();
    assert_eq!(w4.status, WithdrawalStatus::Recovered);
    assert!(w4.needs_reconciliation);
    assert!(
        withdrawals::set_needs_reconciliation(c, "w4", false)
            .await
            .unwrap()
    );
    assert!(
        !withdrawals::set_needs_reconciliation(c, "nope", false)
            .await
            .unwrap()
    );

    let counts = withdrawals::count_by_status(c).await.unwrap();
    assert_eq!(
        counts,
        vec![
            (WithdrawalStatus::Completed, 1),
            (WithdrawalStatus::Failed, 1),
            (WithdrawalStatus::Recovered, 1),
            (WithdrawalStatus::Submitted, 1),
        ]
    );
    assert_eq!(
        withdrawals::list(c, Some(WithdrawalStatus::Failed))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(withdrawals::list(c, None).await.unwrap().len(), 4);

    let j = serde_json::to_value(&w4).unwrap();
    assert_eq!(j["withdrawalId"], "w4");
    assert_eq!(j["status"], "recovered");
    assert_eq!(j["completedRecordTime"], "2025-01-01T00:40:00.000000Z");

    // A malformed amount is the caller's bad input (exit 2), one line.
    let bad = NewWithdrawal {
        withdrawal_id: "w5".into(),
        amount: Some("12abc".into()),
        ..Default::default()
    };
    let err = withdrawals::upsert_requested(c, &bad).await.unwrap_err();
    assert_eq!(err.exit_code().code(), 2);
    assert!(err.message().contains("numeric"), "{}", err.message());
}

#[tokio::test]
async fn deposits_credit_known_accounts_once() {
    let (_t, db) = migrated().await;
    let c = db.client();
    assert!(
        deposits::upsert_account(c, "acct-1", "cust-1")
            .await
            .unwrap()
    );
    assert!(
        !deposits::upsert_account(c, "acct-1", "cust-2")
            .await
            .unwrap()
    );
    assert_eq!(
        deposits::account(c, "acct-1")
            .await
            .unwrap()
            .unwrap()
            .customer_id,
        "cust-1"
    );

    let d = |update: &str, node: i32, account: Option<&str>, amount: &str| NewDeposit {
        update_id: update.into(),
        node_id: node,
        account_id: account.map(str::to_string),
        sender: "bob::1220".into(),
        instrument_admin: "dso::1220".into(),
        instrument_id: "Amulet".into(),
        amount: amount.into(),
        record_time: at("2025-01-01T00:00:00Z"),
    };
    assert!(
        deposits::record(c, &d("u1", 0, Some("acct-1"), "10.5"))
            .await
            .unwrap()
    );
    assert!(
        deposits::record(c, &d("u1", 3, Some("acct-1"), "0.0000000001"))
            .await
            .unwrap()
    );
    assert!(
        !deposits::record(c, &d("u1", 0, Some("acct-1"), "10.5"))
            .await
            .unwrap(),
        "re-ingested"
    );
    assert!(
        deposits::record(c, &d("u2", 0, Some("acct-unknown"), "7"))
            .await
            .unwrap()
    );
    assert!(deposits::record(c, &d("u3", 0, None, "8")).await.unwrap());

    assert_eq!(
        deposits::balance(c, "acct-1", "dso::1220", "Amulet")
            .await
            .unwrap()
            .as_deref(),
        Some("10.5000000001")
    );
    assert_eq!(
        deposits::balance(c, "acct-unknown", "dso::1220", "Amulet")
            .await
            .unwrap(),
        None
    );
    assert_eq!(deposits::balances(c, "acct-1").await.unwrap().len(), 1);
    assert_eq!(deposits::count(c).await.unwrap(), 4);
    let unknown = deposits::list(c, None).await.unwrap();
    assert_eq!(unknown.len(), 2);
    assert!(unknown.iter().all(|d| !d.known_account));
    assert_eq!(deposits::list(c, Some("acct-1")).await.unwrap().len(), 2);
}

#[tokio::test]
async fn holdings_created_archived_and_totalled() {
    let (_t, db) = migrated().await;
    let c = db.client();
    let h = |cid: &str, amount: &str| Holding {
        contract_id: cid.into(),
        owner: "treasury::1220".into(),
        instrument_admin: "dso::1220".into(),
        instrument_id: "Amulet".into(),
        amount: amount.into(),
        created_update_id: "u1".into(),
        archived_update_id: None,
    };
    assert!(holdings::record_created(c, &h("c1", "1.5")).await.unwrap());
    assert!(holdings::record_created(c, &h("c2", "2")).await.unwrap());
    assert!(!holdings::record_created(c, &h("c1", "1.5")).await.unwrap());
    assert_eq!(
        holdings::total(c, "treasury::1220", "dso::1220", "Amulet")
            .await
            .unwrap(),
        "3.5000000000"
    );
    assert!(holdings::record_archived(c, "c1", "u2").await.unwrap());
    assert!(!holdings::record_archived(c, "c1", "u3").await.unwrap());
    assert_eq!(
        holdings::get(c, "c1")
            .await
            .unwrap()
            .unwrap()
            .archived_update_id
            .as_deref(),
        Some("u2")
    );
    assert_eq!(
        holdings::active(c, "treasury::1220").await.unwrap().len(),
        1
    );
    assert_eq!(
        holdings::total(c, "treasury::1220", "dso::1220", "Amulet")
            .await
            .unwrap(),
        "2.0000000000"
    );
    assert_eq!(
        holdings::total(c, "nobody", "dso::1220", "Amulet")
            .await
            .unwrap(),
        "0.0000000000"
    );
}

#[tokio::test]
async fn gate_freeze_is_idempotent_and_keeps_the_first_freeze() {
    let (_t, db) = migrated().await;
    let c = db.client();
    assert_eq!(gate::get(c, DEFAULT_GATE).await.unwrap(), None);
    assert!(!gate::is_frozen(c, DEFAULT_GATE).await.unwrap());
    let thawed = gate::thaw(c, DEFAULT_GATE, "op@host", None).await.unwrap();
    assert!(!thawed.changed);
    assert_eq!(thawed.value, None);

    let f = Freeze {
        by: "op@host".into(),
        reason: Some("restore".into()),
        ttl_seconds: Some(3600),
    };
    let first = gate::freeze(c, DEFAULT_GATE, &f).await.unwrap();
    assert!(first.changed);
    let g = first.value;
    assert!(g.frozen);
    assert_eq!(
        g.ttl_deadline(),
        Some(g.frozen_at.unwrap() + chrono::Duration::hours(1))
    );

    let again = gate::freeze(
        c,
        DEFAULT_GATE,
        &Freeze {
            by: "other@host".into(),
            reason: Some("again".into()),
            ttl_seconds: Some(1),
        },
    )
    .await
    .unwrap();
    assert!(!again.changed);
    assert_eq!(again.value.frozen_at, g.frozen_at);
    assert_eq!(again.value.frozen_by.as_deref(), Some("op@host"));
    assert_eq!(again.value.reason.as_deref(), Some("restore"));

    let with_tsafe = gate::set_tsafe(c, DEFAULT_GATE, Some(at("2025-01-01T02:00:00Z")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(with_tsafe.tsafe, Some(at("2025-01-01T02:00:00Z")));
    assert_eq!(gate::set_tsafe(c, "other-gate", None).await.unwrap(), None);

    let t = gate::thaw(c, DEFAULT_GATE, "op@host", Some("caught up"))
        .await
        .unwrap();
    assert!(t.changed);
    let t = t.value.unwrap();
    assert!(!t.frozen);
    assert_eq!(t.thaw_reason.as_deref(), Some("caught up"));
    assert!(
        !gate::thaw(c, DEFAULT_GATE, "op@host", None)
            .await
            .unwrap()
            .changed
    );

    // A new freeze starts a new cycle.
    let second = gate::freeze(c, DEFAULT_GATE, &f).await.unwrap();
    assert!(second.changed);
    assert!(second.value.frozen_at >= g.frozen_at);
    assert_eq!(second.value.tsafe, None);
    assert_eq!(second.value.thawed_at, None);
    let j = serde_json::to_value(&second.value).unwrap();
    assert_eq!(j["gate"], "cn-withdrawals");
    assert_eq!(j["ttlSeconds"], 3600);
}

#[tokio::test]
async fn dar_uploads_keep_the_earliest_upload() {
    let (_t, db) = migrated().await;
    let c = db.client();
    let dar = |id: &str, t: &str| DarUpload {
        main_package_id: id.into(),
        name: Some("splice-amulet".into()),
        version: Some("0.1.9".into()),
        file_sha256: "ab".repeat(32),
        size_bytes: 1234,
        source_path: Some("/dars/a.dar".into()),
        uploaded_at: at(t),
        recorded_by: "op@host".into(),
        recorded_at: None,
    };
    assert!(
        dars::upsert(c, &dar("p1", "2025-01-01T00:00:00Z"))
            .await
            .unwrap()
    );
    assert!(
        dars::upsert(c, &dar("p2", "2025-01-02T00:00:00Z"))
            .await
            .unwrap()
    );
    assert!(
        !dars::upsert(c, &dar("p1", "2025-01-03T00:00:00Z"))
            .await
            .unwrap()
    );
    let p1 = dars::get(c, "p1").await.unwrap().unwrap();
    assert_eq!(p1.uploaded_at, at("2025-01-01T00:00:00Z"));
    assert!(p1.recorded_at.is_some());
    assert_eq!(dars::list(c, None).await.unwrap().len(), 2);
    let since = dars::list(c, Some(at("2025-01-01T12:00:00Z")))
        .await
        .unwrap();
    assert_eq!(
        since
            .iter()
            .map(|d| d.main_package_id.as_str())
            .collect::<Vec<_>>(),
        ["p2"]
    );
    assert_eq!(
        serde_json::to_value(&p1).unwrap()["fileSha256"],
        "ab".repeat(32)
    );
}

#[tokio::test]
async fn audit_log_records_commands() {
    let (_t, mut db) = migrated().await;
    let tx = db.transaction().await.unwrap();
    let id1 = audit::insert(
        &tx,
        &AuditEntry::new("ingest-ctl", "stop", json!({"ingester": "main"})),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let id2 = audit::insert(
        db.client(),
        &AuditEntry::new("withdrawal-gate", "thaw", json!({}))
            .dry_run(true)
            .outcome(Outcome::Refused),
    )
    .await
    .unwrap();
    assert!(id2 > id1);
    let all = audit::recent(db.client(), None, 10).await.unwrap();
    assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), [id2, id1]);
    assert!(all[0].dry_run);
    assert_eq!(all[0].outcome, Some(Outcome::Refused));
    assert_eq!(all[1].details["ingester"], "main");
    assert!(all[1].actor.contains('@'), "{}", all[1].actor);
    let only = audit::recent(db.client(), Some("ingest-ctl"), 10)
        .await
        .unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].command, "stop");
}
