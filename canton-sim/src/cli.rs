//! The `canton-sim` command line: `serve`, `backup`, `restore` and `ctl`
//! (the control client). Every flag can also come from the environment.

use crate::auth::TokenSet;
use crate::backup;
use crate::clock::ClockMode;
use crate::control_proto::sim_control_client::SimControlClient;
use crate::control_proto::{self as pb};
use crate::persistence::{StateDirLock, read_json, write_json};
use crate::server::{self, ServeOptions};
use crate::sim::{Semantics, Sim, SimConfig};
use canton_dr_cli::time::{duration_arg, format_record_time, record_time_arg};
use canton_dr_cli::{Error, ExitCode, Printer, Result};
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A Canton participant simulator speaking the real admin and ledger gRPC APIs, with backup and restore.
#[derive(Debug, Parser)]
#[command(name = "canton-sim", version, about, long_about = None)]
pub struct Cli {
    /// Output format: json (default when stdout is not a terminal) or text.
    #[arg(long, global = true, env = "CANTON_DR_OUTPUT")]
    pub output: Option<canton_dr_cli::OutputFormat>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the admin, ledger and control APIs until SIGTERM/SIGINT; prints one
    /// `{"type":"ready",...}` line when ready.
    Serve(ServeArgs),
    /// Copy the participant's local state to a new directory (online through
    /// the control API when a server is running, else offline).
    Backup {
        /// State directory.
        #[arg(long, env = "CANTON_SIM_STATE_DIR")]
        state_dir: PathBuf,
        /// Backup directory to create (must not exist).
        #[arg(long, env = "CANTON_SIM_BACKUP_DIR")]
        to: PathBuf,
    },
    /// Put a backup of the participant's state back (the server must be stopped).
    Restore {
        /// State directory.
        #[arg(long, env = "CANTON_SIM_STATE_DIR")]
        state_dir: PathBuf,
        /// Backup directory written by `backup`.
        #[arg(long, env = "CANTON_SIM_BACKUP_DIR")]
        from: PathBuf,
    },
    /// Drive a running simulator through its control API.
    Ctl(CtlArgs),
}

/// `serve` flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// State directory (created on first start).
    #[arg(long, env = "CANTON_SIM_STATE_DIR")]
    pub state_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "CANTON_SIM_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Admin API port (0 = any free port).
    #[arg(long, env = "CANTON_SIM_ADMIN_PORT", default_value_t = 0)]
    pub admin_port: u16,
    /// Ledger API port (0 = any free port).
    #[arg(long, env = "CANTON_SIM_LEDGER_PORT", default_value_t = 0)]
    pub ledger_port: u16,
    /// Control API port (0 = any free port).
    #[arg(long, env = "CANTON_SIM_CONTROL_PORT", default_value_t = 0)]
    pub control_port: u16,
    /// Lookup and upload semantics: 3.3 or 3.4 (= 3.4.9+, exact record-time match).
    #[arg(long, env = "CANTON_SIM_SEMANTICS", default_value = "3.4")]
    pub semantics: Semantics,
    /// Allow consecutive updates with the same record time.
    #[arg(long, env = "CANTON_SIM_RECORD_TIME_TIES")]
    pub record_time_ties: bool,
    /// How far the participant's clean head trails the synchronizer (e.g. 2s).
    #[arg(long, env = "CANTON_SIM_CLEAN_HEAD_LAG", value_parser = duration_arg, default_value = "0s")]
    pub clean_head_lag: Duration,
    /// How long the participant takes to work off a backlog found at start-up.
    #[arg(long, env = "CANTON_SIM_CATCH_UP", value_parser = duration_arg, default_value = "2s")]
    pub catch_up: Duration,
    /// Offset checkpoint cadence in GetUpdates live streams.
    #[arg(long, env = "CANTON_SIM_CHECKPOINT_INTERVAL", value_parser = duration_arg, default_value = "1s")]
    pub checkpoint_interval: Duration,
    /// Memory for encoded GetUpdates responses kept for later streams, MiB (0 = none).
    #[arg(long, env = "CANTON_SIM_STREAM_CACHE_MIB", default_value_t = crate::ledger::encoded::DEFAULT_CACHE_MIB)]
    pub stream_cache_mib: usize,
    /// Record-time clock: wall, or virtual (moved by `ctl advance-time`).
    #[arg(long, env = "CANTON_SIM_CLOCK", default_value = "wall")]
    pub clock: ClockMode,
    /// Start of the virtual clock on first start (RFC 3339; default: now).
    #[arg(long, env = "CANTON_SIM_CLOCK_START", value_parser = record_time_arg)]
    pub clock_start: Option<DateTime<Utc>>,
    /// PEM certificate for TLS on the admin and ledger APIs.
    #[arg(long, env = "CANTON_SIM_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[arg(long, env = "CANTON_SIM_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Enforce bearer tokens on the admin API: the file's first line is the
    /// admin token, further lines are tokens without the admin claim.
    #[arg(long, env = "CANTON_SIM_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Enforce bearer tokens on the ledger API: first line participant_admin,
    /// further lines read-only tokens.
    #[arg(long, env = "CANTON_SIM_LEDGER_TOKEN_FILE")]
    pub ledger_token_file: Option<PathBuf>,
    /// Synchronizer id on first start (logical form name::1220<hex>).
    #[arg(long, env = "CANTON_SIM_SYNCHRONIZER_ID")]
    pub synchronizer_id: Option<String>,
    /// Treasury party on first start.
    #[arg(long, env = "CANTON_SIM_TREASURY_PARTY")]
    pub treasury_party: Option<String>,
    /// Further connected synchronizers without traffic (first start only).
    #[arg(long, env = "CANTON_SIM_EXTRA_SYNCHRONIZERS", default_value_t = 0)]
    pub extra_synchronizers: u32,
}

/// `ctl` flags.
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// Control API address (HOST:PORT, from the ready line's controlApi).
    #[arg(long, env = "CANTON_SIM_CONTROL_API")]
    pub control_api: String,
    /// Command.
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// Control commands.
#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// A customer deposits to the treasury.
    Deposit {
        /// Deposit account id (the transfer's reason metadata).
        #[arg(long)]
        account: String,
        /// Amount (decimal, at most 10 fractional digits).
        #[arg(long)]
        amount: String,
        /// Instrument admin party (default: the DSO party).
        #[arg(long)]
        instrument_admin: Option<String>,
        /// Instrument id (default: Amulet).
        #[arg(long)]
        instrument_id: Option<String>,
        /// Sending customer party (default: a generated one).
        #[arg(long)]
        customer: Option<String>,
        /// Share the previous update's record time (needs --record-time-ties).
        #[arg(long)]
        same_record_time: bool,
    },
    /// The treasury withdraws to a receiver; commits only before --trec-tgt.
    Withdraw {
        /// Withdrawal id (the transfer's reason metadata).
        #[arg(long)]
        withdrawal_id: String,
        /// Amount.
        #[arg(long)]
        amount: String,
        /// Receiving party.
        #[arg(long)]
        receiver: String,
        /// Exclusive upper bound on the record time (RFC 3339).
        #[arg(long, value_parser = record_time_arg)]
        trec_tgt: DateTime<Utc>,
        /// Instrument admin party (default: the DSO party).
        #[arg(long)]
        instrument_admin: Option<String>,
        /// Instrument id (default: Amulet).
        #[arg(long)]
        instrument_id: Option<String>,
    },
    /// Bulk traffic: N deposits, M withdrawals, K noise updates.
    Traffic {
        /// Deposits (100 each).
        #[arg(long, default_value_t = 0)]
        deposits: u32,
        /// Withdrawals (1 each).
        #[arg(long, default_value_t = 0)]
        withdrawals: u32,
        /// Transfers between other parties (invisible to the treasury).
        #[arg(long, default_value_t = 0)]
        noise: u32,
    },
    /// Move the virtual clock forward (e.g. 10s).
    AdvanceTime {
        /// How far.
        #[arg(value_parser = duration_arg)]
        by: Duration,
    },
    /// Arm or clear faults.
    Fault {
        /// Which fault.
        #[command(subcommand)]
        fault: FaultCommand,
    },
    /// The synchronizer's full list of updates (NDJSON).
    UpdateIds {
        /// Only updates this party sees.
        #[arg(long)]
        party: Option<String>,
    },
    /// Ledger end, clean record time, incarnation, counts.
    Status,
    /// Online backup of the participant's state.
    Backup {
        /// Backup directory to create (must not exist).
        #[arg(long)]
        to: PathBuf,
    },
    /// Prune the participant's ledger up to an offset (inclusive).
    Prune {
        /// Offset.
        #[arg(long)]
        up_to: i64,
    },
}

/// Faults.
#[derive(Debug, Subcommand)]
pub enum FaultCommand {
    /// The next N calls answer UNAVAILABLE.
    Unavailable {
        /// How many calls.
        #[arg(long)]
        calls: u32,
        /// Only this API: admin or ledger (default: both).
        #[arg(long)]
        api: Option<String>,
    },
    /// Every call waits this long first.
    Latency {
        /// Delay (e.g. 200ms).
        #[arg(value_parser = duration_arg)]
        delay: Duration,
    },
    /// The next GetUpdates streams are cut after K messages.
    CutStream {
        /// Messages before the cut.
        #[arg(long)]
        after: u32,
        /// How many streams to cut.
        #[arg(long, default_value_t = 1)]
        streams: u32,
    },
    /// The clean head lags the synchronizer by this much.
    Lag {
        /// Lag (e.g. 5s).
        #[arg(value_parser = duration_arg)]
        lag: Duration,
    },
    /// Disarm every fault (lag back to --clean-head-lag).
    Clear,
}

/// Name of the file a serving simulator writes with its addresses.
pub const SERVING_FILE: &str = "serving.json";

/// Runs the command.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let printer = Printer::new(canton_dr_cli::OutputFormat::resolve(cli.output));
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Backup { state_dir, to } => {
            let served = served_control_api(&state_dir);
            let manifest = match served {
                Some(addr) => runtime()?.block_on(online_backup(&addr, &to))?,
                None => serde_json::to_value(backup::backup_offline(&state_dir, &to)?)
                    .map_err(|e| Error::usage(e.to_string()))?,
            };
            let mut out = manifest;
            out["dir"] = json!(to.display().to_string());
            printer.result(&out, |v| {
                format!("backup written to {}", v["dir"].as_str().unwrap_or(""))
            })?;
            Ok(ExitCode::Ok)
        }
        Command::Restore { state_dir, from } => {
            let report = backup::restore(&state_dir, &from)?;
            printer.result(&report, |r| {
                format!("restored {} into {}", r.restored_from, state_dir.display())
            })?;
            Ok(ExitCode::Ok)
        }
        Command::Ctl(args) => runtime()?.block_on(ctl(args, printer)),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::usage(format!("cannot start the async runtime: {e}")))
}

/// The control API of a server holding `state_dir`, if one does.
fn served_control_api(state_dir: &Path) -> Option<String> {
    match StateDirLock::try_acquire(state_dir) {
        Ok(None) => {
            let v: serde_json::Value = read_json(&state_dir.join(SERVING_FILE)).ok()?;
            v.get("controlApi")?.as_str().map(str::to_string)
        }
        _ => None,
    }
}

fn serve(args: ServeArgs) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    std::fs::create_dir_all(&args.state_dir).map_err(|e| {
        Error::usage(format!(
            "cannot create state directory {}: {e}",
            args.state_dir.display()
        ))
    })?;
    let lock = StateDirLock::try_acquire(&args.state_dir)
        .map_err(|e| Error::usage(format!("cannot lock {}: {e}", args.state_dir.display())))?
        .ok_or_else(|| {
            Error::refused(format!(
                "another canton-sim server is serving {}",
                args.state_dir.display()
            ))
            .with_hint("stop it first, or use another --state-dir")
        })?;
    let admin_tokens = args
        .admin_token_file
        .as_deref()
        .map(|p| TokenSet::load(p, "--admin-token-file"))
        .transpose()?;
    let ledger_tokens = args
        .ledger_token_file
        .as_deref()
        .map(|p| TokenSet::load(p, "--ledger-token-file"))
        .transpose()?;
    let config = SimConfig {
        state_dir: args.state_dir.clone(),
        semantics: args.semantics,
        record_time_ties: args.record_time_ties,
        clean_head_lag: args.clean_head_lag,
        catch_up: args.catch_up,
        checkpoint_interval: args.checkpoint_interval,
        clock: args.clock,
        clock_start_us: args.clock_start.map(|t| t.timestamp_micros()),
        synchronizer_id: args.synchronizer_id,
        treasury_party: args.treasury_party,
        extra_synchronizers: args.extra_synchronizers,
        stream_cache_bytes: args.stream_cache_mib.saturating_mul(1 << 20),
    };
    let opts = ServeOptions {
        bind: args.bind,
        admin_port: args.admin_port,
        ledger_port: args.ledger_port,
        control_port: args.control_port,
        tls: args.tls_cert.zip(args.tls_key),
        admin_tokens,
        ledger_tokens,
    };
    let rt = runtime()?;
    rt.block_on(async move {
        // Listen before loading, so a stop request during start-up is not lost.
        let stop = stop_signals();
        let sim = Sim::open(config)?;
        let running = server::start(sim, opts).await?;
        let ready = running.ready_json();
        let serving_file = args.state_dir.join(SERVING_FILE);
        write_json(&serving_file, &ready)
            .map_err(|e| Error::usage(format!("cannot write {}: {e}", serving_file.display())))?;
        tracing::info!("ready after {:?}", started.elapsed());
        print_ready(&ready)?;
        stop.await;
        let result = running.stop().await;
        let _ = std::fs::remove_file(&serving_file);
        drop(lock);
        result.map(|_| ExitCode::Ok)
    })
}

/// Prints the ready object as one line with `"type"` first.
fn print_ready(ready: &serde_json::Value) -> Result<()> {
    use std::io::Write;
    let mut fields = ready.as_object().cloned().unwrap_or_default();
    fields.remove("type");
    let rest = serde_json::to_string(&fields).map_err(|e| Error::usage(e.to_string()))?;
    let line = match rest.strip_prefix('{') {
        Some(r) if r != "}" => format!("{{\"type\":\"ready\",{r}"),
        _ => "{\"type\":\"ready\"}".to_string(),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT; the handlers are installed when this is called.
fn stop_signals() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate()).ok();
    let int = signal(SignalKind::interrupt()).ok();
    async move {
        let wait = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = wait(term) => {}
            _ = wait(int) => {}
        }
    }
}

async fn connect(addr: &str) -> Result<SimControlClient<tonic::transport::Channel>> {
    let uri = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    SimControlClient::connect(uri.clone())
        .await
        .map(|c| c.max_decoding_message_size(64 * 1024 * 1024))
        .map_err(|e| {
            Error::transient(format!("cannot reach the control API at {addr}: {e}"))
                .with_hint("pass the controlApi address from the simulator's ready line")
        })
}

fn rpc_error(s: tonic::Status) -> Error {
    use tonic::Code;
    let msg = format!("control API: {}", s.message());
    match s.code() {
        Code::InvalidArgument => Error::usage(msg),
        Code::FailedPrecondition => Error::refused(msg),
        _ => Error::transient(msg),
    }
}

fn rt_str(t: &Option<prost_types::Timestamp>) -> Option<String> {
    t.as_ref()
        .and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds, t.nanos as u32))
        .map(format_record_time)
}

fn pb_ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

fn pb_dur(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

fn update_json(u: &Option<pb::UpdateInfo>) -> serde_json::Value {
    match u {
        Some(u) => json!({
            "updateId": u.update_id,
            "recordTime": rt_str(&u.record_time),
            "offset": u.offset,
        }),
        None => serde_json::Value::Null,
    }
}

fn instrument(admin: Option<String>, id: Option<String>) -> Option<pb::Instrument> {
    if admin.is_none() && id.is_none() {
        return None;
    }
    Some(pb::Instrument {
        admin: admin.unwrap_or_default(),
        id: id.unwrap_or_else(|| "Amulet".into()),
    })
}

fn faults_json(f: pb::FaultsResponse) -> serde_json::Value {
    let ms = |d: &Option<prost_types::Duration>| {
        d.as_ref()
            .map_or(0, |d| d.seconds * 1000 + (d.nanos / 1_000_000) as i64)
    };
    json!({
        "type": "faults",
        "unavailableAdminCalls": f.unavailable_admin_calls,
        "unavailableLedgerCalls": f.unavailable_ledger_calls,
        "latencyMs": ms(&f.latency),
        "cutStreamAfter": f.cut_stream_after,
        "cutStreams": f.cut_streams,
        "lagMs": ms(&f.lag),
    })
}

async fn online_backup(addr: &str, to: &Path) -> Result<serde_json::Value> {
    let mut c = connect(addr).await?;
    let to_abs = if to.is_absolute() {
        to.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::usage(e.to_string()))?
            .join(to)
    };
    let r = c
        .backup(pb::BackupRequest {
            to: to_abs.display().to_string(),
        })
        .await
        .map_err(rpc_error)?
        .into_inner();
    Ok(json!({
        "type": "backup",
        "dir": r.dir,
        "ledgerEnd": r.ledger_end,
        "processedUpdates": r.processed_updates,
        "dars": r.dars,
        "takenAt": rt_str(&r.taken_at),
        "online": true,
    }))
}

async fn ctl(args: CtlArgs, printer: Printer) -> Result<ExitCode> {
    let mut c = connect(&args.control_api).await?;
    let text = |v: &serde_json::Value| canton_dr_cli::output::render_text_line(v);
    let out = match args.command {
        CtlCommand::Deposit {
            account,
            amount,
            instrument_admin,
            instrument_id,
            customer,
            same_record_time,
        } => {
            let r = c
                .deposit(pb::DepositRequest {
                    account: account.clone(),
                    amount,
                    instrument: instrument(instrument_admin, instrument_id),
                    customer: customer.unwrap_or_default(),
                    same_record_time,
                })
                .await
                .map_err(rpc_error)?
                .into_inner();
            let mut v = update_json(&r.update);
            v["type"] = json!("deposit");
            v["account"] = json!(account);
            v["holdingContractId"] = json!(r.holding_contract_id);
            v
        }
        CtlCommand::Withdraw {
            withdrawal_id,
            amount,
            receiver,
            trec_tgt,
            instrument_admin,
            instrument_id,
        } => {
            let r = c
                .withdraw(pb::WithdrawRequest {
                    withdrawal_id: withdrawal_id.clone(),
                    amount,
                    receiver,
                    instrument: instrument(instrument_admin, instrument_id),
                    trec_tgt: Some(pb_ts(trec_tgt)),
                })
                .await
                .map_err(rpc_error)?
                .into_inner();
            let mut v = json!({
                "type": "withdrawal",
                "withdrawalId": withdrawal_id,
                "outcome": r.outcome,
                "trecTgt": format_record_time(trec_tgt),
                "attemptedRecordTime": rt_str(&r.attempted_record_time),
            });
            if let Some(u) = &r.update {
                v["updateId"] = json!(u.update_id);
                v["recordTime"] = json!(rt_str(&u.record_time));
                v["offset"] = json!(u.offset);
            }
            v
        }
        CtlCommand::Traffic {
            deposits,
            withdrawals,
            noise,
        } => {
            let r = c
                .traffic(pb::TrafficRequest {
                    deposits,
                    withdrawals,
                    noise,
                })
                .await
                .map_err(rpc_error)?
                .into_inner();
            json!({
                "type": "traffic",
                "deposits": r.deposits,
                "withdrawals": r.withdrawals,
                "noise": r.noise,
                "first": update_json(&r.first),
                "last": update_json(&r.last),
            })
        }
        CtlCommand::AdvanceTime { by } => {
            let r = c
                .advance_time(pb::AdvanceTimeRequest {
                    by: Some(pb_dur(by)),
                })
                .await
                .map_err(rpc_error)?
                .into_inner();
            json!({"type": "time", "now": rt_str(&r.now)})
        }
        CtlCommand::Fault { fault } => {
            use pb::set_fault_request::Fault;
            let req = match fault {
                FaultCommand::Clear => None,
                FaultCommand::Unavailable { calls, api } => {
                    if let Some(a) = &api
                        && a != "admin"
                        && a != "ledger"
                    {
                        return Err(Error::usage(format!(
                            "--api must be admin or ledger, not {a}"
                        )));
                    }
                    Some(Fault::Unavailable(pb::Unavailable {
                        calls,
                        api: api.unwrap_or_default(),
                    }))
                }
                FaultCommand::Latency { delay } => Some(Fault::Latency(pb_dur(delay))),
                FaultCommand::CutStream { after, streams } => {
                    Some(Fault::CutStream(pb::CutStream { after, streams }))
                }
                FaultCommand::Lag { lag } => Some(Fault::Lag(pb_dur(lag))),
            };
            let r = match req {
                Some(f) => c.set_fault(pb::SetFaultRequest { fault: Some(f) }).await,
                None => c.clear_faults(pb::ClearFaultsRequest {}).await,
            }
            .map_err(rpc_error)?
            .into_inner();
            faults_json(r)
        }
        CtlCommand::UpdateIds { party } => {
            let mut stream = c
                .list_update_ids(pb::ListUpdateIdsRequest {
                    party: party.unwrap_or_default(),
                })
                .await
                .map_err(rpc_error)?
                .into_inner();
            while let Some(e) = stream.message().await.map_err(rpc_error)? {
                printer.emit(&json!({
                    "type": "update",
                    "updateId": e.update_id,
                    "recordTime": rt_str(&e.record_time),
                    "synchronizerId": e.synchronizer_id,
                    "kind": e.kind,
                    "offset": e.offset,
                    "reference": e.reference,
                }))?;
            }
            return Ok(ExitCode::Ok);
        }
        CtlCommand::Status => {
            let r = c
                .status(pb::StatusRequest {})
                .await
                .map_err(rpc_error)?
                .into_inner();
            json!({
                "type": "status",
                "synchronizerId": r.synchronizer_id,
                "treasuryParty": r.treasury_party,
                "ledgerEnd": r.ledger_end,
                "cleanRecordTime": rt_str(&r.clean_record_time),
                "synchronizerTime": rt_str(&r.synchronizer_time),
                "incarnation": r.incarnation,
                "synchronizerUpdates": r.synchronizer_updates,
                "processedUpdates": r.processed_updates,
                "prunedUpTo": r.pruned_up_to,
                "dars": r.dars,
                "semantics": r.semantics,
                "catchingUp": r.catching_up,
            })
        }
        CtlCommand::Backup { to } => online_backup(&args.control_api, &to).await?,
        CtlCommand::Prune { up_to } => {
            let r = c
                .prune(pb::PruneRequest {
                    up_to_inclusive: up_to,
                })
                .await
                .map_err(rpc_error)?
                .into_inner();
            json!({"type": "prune", "prunedUpTo": r.pruned_up_to})
        }
    };
    printer.result(&out, text)?;
    Ok(ExitCode::Ok)
}
