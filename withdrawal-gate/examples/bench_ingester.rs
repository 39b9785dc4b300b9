//! The ingester of `scripts/bench-withdrawal-gate.sh`: commits an offset
//! checkpoint exactly as the ingestion contract says (checkpoint, heartbeat
//! and progress NOTIFY in one transaction) and prints when the COMMIT was
//! sent, so the script can time the gate's reaction from that instant.
//!
//! ```text
//! bench-ingester migrate                 # create the schema in INTEGRATION_DB_URL
//! bench-ingester checkpoint RECORD_TIME  # prints "<µs before COMMIT> <µs after COMMIT>" (Unix epoch)
//! ```

use canton_dr_cli::time::parse_record_time;
use canton_dr_cli::{Error, ExitCode, OutputFormat, Result, run_main};
use integration_db::checkpoint::{self, Position};
use integration_db::control::{self, IngesterState};
use integration_db::notify::{self, Progress};
use integration_db::{ConnectOptions, Db};
use std::time::{SystemTime, UNIX_EPOCH};

const INGESTER: &str = "tx-ingest";
const SYNCHRONIZER: &str = "bench-domain::1220bbbb";

fn epoch_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

async fn run(args: &[String]) -> Result<ExitCode> {
    let options = ConnectOptions::from_url(std::env::var("INTEGRATION_DB_URL").unwrap_or_default())
        .application_name("bench-ingester");
    let mut db = Db::connect(&options).await?;
    match args {
        [cmd] if cmd == "migrate" => {
            db.migrate().await?;
            control::ensure(db.client(), INGESTER, "bench").await?;
        }
        [cmd, record_time] if cmd == "checkpoint" => {
            let record_time = parse_record_time(record_time, "RECORD_TIME")?;
            // The offset only has to grow; the clock does that across runs.
            let offset = i64::try_from(epoch_micros()).unwrap_or(i64::MAX);
            let tx = db.transaction().await?;
            checkpoint::record_offset_checkpoint(
                &tx,
                INGESTER,
                &Position {
                    offset,
                    record_time,
                    synchronizer_id: SYNCHRONIZER.into(),
                },
                0,
            )
            .await?;
            control::heartbeat(&tx, INGESTER, IngesterState::Running).await?;
            notify::notify_progress(
                &tx,
                &Progress {
                    ingester: INGESTER.into(),
                    offset,
                    record_time,
                    offset_epoch: 0,
                    update_id: None,
                },
            )
            .await?;
            let before = epoch_micros();
            tx.commit()
                .await
                .map_err(|e| integration_db::error::db_error(&e))?;
            println!("{before} {}", epoch_micros());
        }
        _ => {
            return Err(Error::usage(
                "usage: bench-ingester migrate | bench-ingester checkpoint RECORD_TIME",
            ));
        }
    }
    Ok(ExitCode::Ok)
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run_main(OutputFormat::Text, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::usage(format!("cannot start the async runtime: {e}")))?
            .block_on(run(&args))
    })
}
