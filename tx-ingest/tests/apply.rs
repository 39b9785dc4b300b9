//! The batch writer against a real PostgreSQL: dedup, deposits, withdrawals
//! (completed, recovered, expired), holdings, checkpoints, atomicity and the
//! progress notification.

use canton_dr_cli::time::parse_record_time;
use canton_dr_testkit::{PgCluster, fresh_database};
use chrono::{DateTime, Utc};
use integration_db::checkpoint::{self, Position};
use integration_db::notify::{Event, ProgressListener};
use integration_db::updates::UpdateRef;
use integration_db::withdrawals::{self, NewWithdrawal, WithdrawalStatus};
use integration_db::{ConnectOptions, Db, deposits, holdings, updates};
use tx_ingest::apply::{BatchOutcome, Statements, Target, apply_batch};
use tx_ingest::control;
use tx_ingest::parse::{
    Direction, HoldingCreated, Instrument, Outcome, ParsedTransaction, Transfer,
};
use tx_ingest::update::{Item, PositionItem, TxItem};

const TREASURY: &str = "treasury::1220aa";
const SYNC: &str = "global::1220dd";
const ING: &str = "tx-ingest";

fn t(s: &str) -> DateTime<Utc> {
    parse_record_time(s, "t").unwrap()
}

fn at(sec: u32) -> DateTime<Utc> {
    t(&format!("2025-06-01T00:00:{sec:02}Z"))
}

fn amulet() -> Instrument {
    Instrument {
        admin: "dso::1220cc".into(),
        id: "Amulet".into(),
    }
}

struct Setup {
    db: Db,
    stmts: Statements,
    url: String,
}

async fn setup() -> Setup {
    let cluster = PgCluster::shared();
    let tdb = fresh_database(cluster);
    let mut db = Db::connect(&ConnectOptions::from_url(&tdb.url))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let stmts = Statements::prepare(db.client()).await.unwrap();
    Setup {
        db,
        stmts,
        url: tdb.url,
    }
}

fn transfer(direction: Direction, node_id: i32, amount: &str, reason: Option<&str>) -> Transfer {
    let (sender, receiver) = match direction {
        Direction::Deposit => ("alice::1220bb".to_string(), TREASURY.to_string()),
        Direction::Withdrawal => (TREASURY.to_string(), "bob::1220ee".to_string()),
    };
    Transfer {
        node_id,
        direction,
        sender,
        receiver,
        instrument: amulet(),
        amount: amount.into(),
        reason: reason.map(str::to_string),
        outcome: Outcome::Completed,
    }
}

fn tx(id: &str, offset: i64, sec: u32, parsed: ParsedTransaction) -> Item {
    Item::Transaction(TxItem {
        update: UpdateRef {
            update_id: id.into(),
            offset,
            record_time: at(sec),
            synchronizer_id: SYNC.into(),
        },
        parsed,
    })
}

fn deposit_tx(id: &str, offset: i64, sec: u32, account: Option<&str>, amount: &str) -> Item {
    tx(
        id,
        offset,
        sec,
        ParsedTransaction {
            transfers: vec![transfer(Direction::Deposit, 0, amount, account)],
            holdings_created: vec![HoldingCreated {
                contract_id: format!("00h-{id}"),
                owner: TREASURY.into(),
                instrument: amulet(),
                amount: amount.into(),
            }],
            consumed: vec![format!("00customer-input-{id}")],
        },
    )
}

fn withdrawal_tx(
    id: &str,
    offset: i64,
    sec: u32,
    wid: &str,
    amount: &str,
    spends: &[&str],
) -> Item {
    tx(
        id,
        offset,
        sec,
        ParsedTransaction {
            transfers: vec![transfer(Direction::Withdrawal, 0, amount, Some(wid))],
            holdings_created: vec![],
            consumed: spends.iter().map(|s| s.to_string()).collect(),
        },
    )
}

fn checkpoint_item(offset: i64, sec: u32) -> Item {
    Item::Position(PositionItem {
        offset,
        synchronizer_times: vec![(SYNC.into(), at(sec))],
    })
}

/// Orders for `epoch` as `ingest-ctl set-offset` would leave them (the
/// fence checks them).
async fn orders(s: &Setup, epoch: i32) -> Target {
    control::register(s.db.client(), ING).await.unwrap();
    s.db.client()
        .execute(
            "UPDATE ingestion_control SET offset_epoch = $2, desired_state = 'running' WHERE ingester = $1",
            &[&ING, &epoch],
        )
        .await
        .unwrap();
    let o = control::read(s.db.client(), ING).await.unwrap();
    Target {
        ingester: ING.into(),
        offset_epoch: o.offset_epoch,
        generation: o.generation,
        dedup_from: o.dedup_from,
    }
}

async fn apply(s: &mut Setup, epoch: i32, items: &[Item]) -> BatchOutcome {
    let target = orders(s, epoch).await;
    let pos = checkpoint::get(s.db.client(), ING)
        .await
        .unwrap()
        .map(|c| Position {
            offset: c.offset,
            record_time: c.record_time,
            synchronizer_id: c.synchronizer_id,
        });
    apply_batch(s.db.client_mut(), &s.stmts, &target, pos.as_ref(), items)
        .await
        .unwrap()
        .expect("the fence let the batch through")
}

async fn request(s: &Setup, wid: &str, amount: &str, trec_tgt: DateTime<Utc>) {
    withdrawals::upsert_requested(
        s.db.client(),
        &NewWithdrawal {
            withdrawal_id: wid.into(),
            account_id: Some("acct-9".into()),
            receiver: Some("bob::1220ee".into()),
            instrument_admin: Some(amulet().admin),
            instrument_id: Some(amulet().id),
            amount: Some(amount.into()),
            trec_tgt: Some(trec_tgt),
        },
    )
    .await
    .unwrap();
}

async fn balance(s: &Setup, account: &str) -> Option<String> {
    deposits::balance(s.db.client(), account, &amulet().admin, &amulet().id)
        .await
        .unwrap()
}

#[tokio::test]
async fn deposits_credit_known_accounts_once() {
    let mut s = setup().await;
    deposits::upsert_account(s.db.client(), "abc123", "cust-1")
        .await
        .unwrap();
    let out = apply(
        &mut s,
        0,
        &[
            deposit_tx("u1", 3, 1, Some("abc123"), "200.0000000000"),
            deposit_tx("u2", 5, 2, Some("nobody"), "7.5"),
            deposit_tx("u3", 6, 3, Some("abc123"), "0.25"),
            deposit_tx("u4", 8, 4, None, "1"),
        ],
    )
    .await;
    assert_eq!((out.new_transactions, out.duplicates), (4, 0));
    assert_eq!((out.deposits, out.credited), (4, 2));
    assert_eq!(
        balance(&s, "abc123").await.as_deref(),
        Some("200.2500000000")
    );
    assert_eq!(balance(&s, "nobody").await, None);
    let unknown = deposits::list(s.db.client(), None).await.unwrap();
    assert_eq!(
        unknown
            .iter()
            .map(|d| (d.update_id.as_str(), d.account_id.as_deref()))
            .collect::<Vec<_>>(),
        [("u2", Some("nobody")), ("u4", None)]
    );

    // The same updates again (a replay after a node restore, new offsets):
    // skipped, nothing credited twice; the checkpoint follows the stream.
    let out = apply(
        &mut s,
        1,
        &[
            deposit_tx("u3", 2, 3, Some("abc123"), "0.25"),
            deposit_tx("u4", 4, 4, None, "1"),
            deposit_tx("u5", 7, 5, Some("abc123"), "1"),
        ],
    )
    .await;
    assert_eq!((out.new_transactions, out.duplicates), (1, 2));
    assert_eq!(out.earliest_duplicate, Some(at(3)));
    assert_eq!(
        balance(&s, "abc123").await.as_deref(),
        Some("201.2500000000")
    );
    assert_eq!(updates::count(s.db.client(), Some(ING)).await.unwrap(), 5);
    let cp = checkpoint::get(s.db.client(), ING).await.unwrap().unwrap();
    assert_eq!(
        (cp.offset, cp.offset_epoch, cp.update_id.as_deref()),
        (7, 1, Some("u5"))
    );
    // Dedup rows keep the epoch and offset they were first ingested with.
    let u3 = updates::get(s.db.client(), "u3").await.unwrap().unwrap();
    assert_eq!((u3.offset, u3.offset_epoch), (6, 0));
}

#[tokio::test]
async fn an_update_id_twice_in_one_batch_is_booked_once() {
    // Holdings and deposits are plain inserts: a second copy of a new update
    // in the same batch must be skipped like any duplicate, not inserted
    // again (which would fail the whole batch on the primary keys).
    let mut s = setup().await;
    deposits::upsert_account(s.db.client(), "abc123", "cust-1")
        .await
        .unwrap();
    let out = apply(
        &mut s,
        0,
        &[
            deposit_tx("u1", 3, 1, Some("abc123"), "2"),
            deposit_tx("u2", 4, 2, Some("abc123"), "3"),
            deposit_tx("u1", 5, 1, Some("abc123"), "2"),
        ],
    )
    .await;
    assert_eq!((out.new_transactions, out.duplicates), (2, 1));
    assert_eq!((out.deposits, out.credited), (2, 2));
    assert_eq!(out.earliest_duplicate, Some(at(1)));
    assert_eq!(balance(&s, "abc123").await.as_deref(), Some("5.0000000000"));
    let u1 = updates::get(s.db.client(), "u1").await.unwrap().unwrap();
    assert_eq!(u1.offset, 3, "booked at its first occurrence");
    let held = holdings::get(s.db.client(), "00h-u1").await.unwrap();
    assert!(held.is_some());
}

#[tokio::test]
async fn a_batch_of_one_and_a_batch_of_many_book_the_same() {
    let items = [
        deposit_tx("d1", 1, 1, Some("acc"), "10"),
        withdrawal_tx("w1", 2, 2, "wid-1", "3", &["00h-d1"]),
        checkpoint_item(3, 3),
        deposit_tx("d2", 4, 4, Some("acc"), "1.1"),
        withdrawal_tx("w2", 5, 5, "wid-lost", "2", &[]),
        checkpoint_item(9, 20),
    ];
    let mut states = Vec::new();
    for batch_size in [1, items.len()] {
        let mut s = setup().await;
        deposits::upsert_account(s.db.client(), "acc", "c")
            .await
            .unwrap();
        request(&s, "wid-1", "3", at(10)).await;
        request(&s, "wid-late", "4", at(15)).await;
        request(&s, "wid-open", "4", at(30)).await;
        for chunk in items.chunks(batch_size) {
            apply(&mut s, 0, chunk).await;
        }
        let ws: Vec<(String, WithdrawalStatus, Option<String>)> =
            withdrawals::list(s.db.client(), None)
                .await
                .unwrap()
                .into_iter()
                .map(|w| (w.withdrawal_id, w.status, w.completed_update_id))
                .collect();
        let hs = holdings::active(s.db.client(), TREASURY).await.unwrap();
        let cp = checkpoint::get(s.db.client(), ING).await.unwrap().unwrap();
        states.push((
            balance(&s, "acc").await,
            ws,
            hs.into_iter().map(|h| h.contract_id).collect::<Vec<_>>(),
            (
                cp.offset,
                cp.record_time,
                cp.update_id,
                cp.last_transaction.map(|l| l.update_id),
            ),
        ));
    }
    assert_eq!(states[0], states[1]);
    let (bal, mut ws, hs, cp) = states.remove(0);
    assert_eq!(bal.as_deref(), Some("11.1000000000"));
    ws.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        ws,
        [
            (
                "wid-1".into(),
                WithdrawalStatus::Completed,
                Some("w1".into())
            ),
            ("wid-late".into(), WithdrawalStatus::Failed, None),
            (
                "wid-lost".into(),
                WithdrawalStatus::Recovered,
                Some("w2".into())
            ),
            ("wid-open".into(), WithdrawalStatus::Requested, None),
        ]
    );
    assert_eq!(hs, ["00h-d2"]);
    assert_eq!(cp, (9, at(20), None, Some("w2".into())));
}

#[tokio::test]
async fn lost_withdrawal_is_recovered_from_the_chain_with_unknown_fields_empty() {
    let mut s = setup().await;
    let out = apply(
        &mut s,
        0,
        &[withdrawal_tx("u9", 4, 4, "wid-77", "100.0000000000", &[])],
    )
    .await;
    assert_eq!(out.recovered, ["wid-77"]);
    let w = withdrawals::get(s.db.client(), "wid-77")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w.status, WithdrawalStatus::Recovered);
    assert!(w.needs_reconciliation);
    assert_eq!(w.receiver.as_deref(), Some("bob::1220ee"));
    assert_eq!(w.amount.as_deref(), Some("100.0000000000"));
    assert_eq!(w.instrument_id.as_deref(), Some("Amulet"));
    assert_eq!((w.account_id, w.trec_tgt), (None, None));
    assert_eq!(w.completed_update_id.as_deref(), Some("u9"));
    assert_eq!(w.completed_record_time, Some(at(4)));
}

#[tokio::test]
async fn expiry_fails_in_flight_withdrawals_but_not_one_completed_first() {
    let mut s = setup().await;
    request(&s, "early", "1", at(10)).await;
    request(&s, "boundary", "1", at(12)).await;
    request(&s, "later", "1", at(40)).await;
    withdrawals::mark_submitted(s.db.client(), "later")
        .await
        .unwrap();
    // `early` commits at 9 (< its trec_tgt 10); the batch then reaches 12.
    let out = apply(
        &mut s,
        0,
        &[
            withdrawal_tx("a", 1, 9, "early", "1", &[]),
            deposit_tx("b", 2, 12, None, "1"),
        ],
    )
    .await;
    assert_eq!(out.completed, ["early"]);
    // trec_tgt == record time is not below it: still in flight.
    assert!(out.failed.is_empty(), "{:?}", out.failed);
    // An offset checkpoint past 12 fails `boundary`.
    let out = apply(&mut s, 0, &[checkpoint_item(5, 13)]).await;
    assert_eq!(out.failed, ["boundary"]);
    let w = withdrawals::get(s.db.client(), "boundary")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w.status, WithdrawalStatus::Failed);
    assert_eq!(
        w.failure_reason.as_deref(),
        Some(tx_ingest::apply::EXPIRED_REASON)
    );
    assert_eq!(w.completed_record_time, Some(at(13)));
    let w = withdrawals::get(s.db.client(), "later")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w.status, WithdrawalStatus::Submitted);
    assert_eq!(
        withdrawals::get(s.db.client(), "early")
            .await
            .unwrap()
            .unwrap()
            .status,
        WithdrawalStatus::Completed
    );
}

#[tokio::test]
async fn failed_then_completed_and_paid_twice_are_flagged() {
    let mut s = setup().await;
    request(&s, "w-failed", "1", at(50)).await;
    withdrawals::fail(s.db.client(), "w-failed", "no preapproval", None, None)
        .await
        .unwrap();
    request(&s, "w-twice", "1", at(50)).await;
    let out = apply(
        &mut s,
        0,
        &[
            withdrawal_tx("x1", 1, 1, "w-failed", "1", &[]),
            withdrawal_tx("x2", 2, 2, "w-twice", "1", &[]),
            withdrawal_tx("x3", 3, 3, "w-twice", "1", &[]),
        ],
    )
    .await;
    let mut flagged = out.flagged.clone();
    flagged.sort();
    assert_eq!(flagged, ["w-failed", "w-twice"]);
    let w = withdrawals::get(s.db.client(), "w-failed")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (w.status, w.needs_reconciliation),
        (WithdrawalStatus::Completed, true)
    );
    let w = withdrawals::get(s.db.client(), "w-twice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w.completed_update_id.as_deref(), Some("x2"));
    assert!(w.needs_reconciliation);
    // A later batch paying it again is flagged too (it stays completed by x2).
    let out = apply(&mut s, 0, &[withdrawal_tx("x4", 4, 4, "w-twice", "1", &[])]).await;
    assert_eq!(out.flagged, ["w-twice"]);
    assert!(out.recovered.is_empty());
}

#[tokio::test]
async fn holdings_are_created_and_spent() {
    let mut s = setup().await;
    apply(
        &mut s,
        0,
        &[
            deposit_tx("d1", 1, 1, None, "5"),
            deposit_tx("d2", 2, 2, None, "6"),
        ],
    )
    .await;
    assert_eq!(
        holdings::total(s.db.client(), TREASURY, &amulet().admin, &amulet().id)
            .await
            .unwrap(),
        "11.0000000000"
    );
    apply(
        &mut s,
        0,
        &[withdrawal_tx(
            "w",
            3,
            3,
            "wx",
            "5",
            &["00h-d1", "00unknown"],
        )],
    )
    .await;
    let h = holdings::get(s.db.client(), "00h-d1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h.archived_update_id.as_deref(), Some("w"));
    assert_eq!(
        holdings::total(s.db.client(), TREASURY, &amulet().admin, &amulet().id)
            .await
            .unwrap(),
        "6.0000000000"
    );
}

#[tokio::test]
async fn a_failing_batch_commits_nothing() {
    let mut s = setup().await;
    deposits::upsert_account(s.db.client(), "acc", "c")
        .await
        .unwrap();
    apply(&mut s, 0, &[deposit_tx("ok", 1, 1, Some("acc"), "1")]).await;
    // 29 integer digits do not fit numeric(38,10): the deposits statement fails.
    let too_big = "1".repeat(29);
    let target = orders(&s, 0).await;
    let err = apply_batch(
        s.db.client_mut(),
        &s.stmts,
        &target,
        None,
        &[
            deposit_tx("a", 2, 2, Some("acc"), "1"),
            deposit_tx("b", 3, 3, Some("acc"), &too_big),
        ],
    )
    .await
    .unwrap_err();
    assert!(err.message().contains("numeric"), "{}", err.message());
    assert!(!updates::contains(s.db.client(), "a").await.unwrap());
    assert_eq!(balance(&s, "acc").await.as_deref(), Some("1.0000000000"));
    let cp = checkpoint::get(s.db.client(), ING).await.unwrap().unwrap();
    assert_eq!(cp.update_id.as_deref(), Some("ok"));
}

#[tokio::test]
async fn progress_is_notified_at_commit() {
    let mut s = setup().await;
    let mut listener = ProgressListener::start(&ConnectOptions::from_url(&s.url))
        .await
        .unwrap();
    apply(
        &mut s,
        3,
        &[deposit_tx("n1", 11, 7, None, "1"), checkpoint_item(12, 8)],
    )
    .await;
    let ev = tokio::time::timeout(std::time::Duration::from_secs(10), listener.recv())
        .await
        .unwrap()
        .unwrap();
    let Event::Progress(p) = ev else {
        panic!("expected progress, got {ev:?}")
    };
    assert_eq!(
        (p.ingester.as_str(), p.offset, p.offset_epoch),
        (ING, 12, 3)
    );
    assert_eq!(p.record_time, at(8));
    assert_eq!(p.update_id, None);
}

#[tokio::test]
async fn the_fence_refuses_a_stale_generation_or_a_stop() {
    let mut s = setup().await;
    let target = orders(&s, 0).await;
    assert_eq!(
        control::fence(s.db.client(), ING, target.generation)
            .await
            .unwrap(),
        Some(0)
    );
    // An operator change bumps the generation: the old orders are stale.
    integration_db::control::set_desired_state(
        s.db.client(),
        ING,
        integration_db::control::IngesterState::Stopped,
        "op@host",
    )
    .await
    .unwrap();
    let r = apply_batch(
        s.db.client_mut(),
        &s.stmts,
        &target,
        None,
        &[deposit_tx("f1", 1, 1, None, "1")],
    )
    .await
    .unwrap();
    assert_eq!(r, None);
    assert_eq!(
        control::fence(s.db.client(), ING, target.generation)
            .await
            .unwrap(),
        None
    );
    assert!(!updates::contains(s.db.client(), "f1").await.unwrap());
    assert!(checkpoint::get(s.db.client(), ING).await.unwrap().is_none());
    // Re-read while stopped: still refused.
    let o = control::read(s.db.client(), ING).await.unwrap();
    let stopped = Target {
        generation: o.generation,
        ..target
    };
    let r = apply_batch(
        s.db.client_mut(),
        &s.stmts,
        &stopped,
        None,
        &[deposit_tx("f1", 1, 1, None, "1")],
    )
    .await
    .unwrap();
    assert_eq!(r, None);
}
