//! The four commands, wiring the library to the command line: flags in,
//! NDJSON lines out, exit code from what was found.

use crate::args::{APPLICATION_NAME, DiffArgs, InventoryArgs, RecordArgs, UploadArgs, WantedArgs};
use crate::inventory::{self, Check, Entry};
use crate::node::{AdminDarService, UploadOptions, list_all};
use crate::plan::{self, Wanted};
use crate::registry;
use crate::upload::{self, NoRecorder, Settings};
use canton_client::CantonChannel;
use canton_dr_cli::time::format_record_time;
use canton_dr_cli::{Error, ExitCode, Printer, Result};
use chrono::Utc;
use integration_db::Db;
use integration_db::audit::Outcome;
use serde_json::{Value, json};

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::usage(format!("cannot start the async runtime: {e}")))
}

/// Prints one line (NDJSON in JSON mode, `key=value` in text mode).
fn emit(printer: &Printer, v: Value) -> Result<()> {
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("result")
        .to_string();
    printer.event(&kind, v)
}

fn summary(printer: &Printer, fields: Value, exit: ExitCode) -> Result<()> {
    let mut v = fields;
    v["status"] = json!(exit.status());
    emit(printer, canton_dr_cli::output::event_object("summary", v))
}

/// `dar-sync inventory`.
pub fn inventory(args: InventoryArgs, printer: Printer) -> Result<ExitCode> {
    let check = if args.full {
        Check::Full
    } else {
        Check::MainDalf
    };
    let entries = inventory::inventory(&args.paths, check, args.threads)?;
    for e in &entries {
        emit(&printer, e.to_json())?;
    }
    let t = inventory::totals(&entries);
    let mut fields = serde_json::to_value(t).unwrap_or_default();
    fields["check"] = json!(check.as_str());
    summary(&printer, fields, ExitCode::Ok)?;
    Ok(ExitCode::Ok)
}

/// `dar-sync record`: all or nothing.
pub fn record(args: RecordArgs, printer: Printer) -> Result<ExitCode> {
    let options = args.db.connect_options(APPLICATION_NAME)?;
    let entries = inventory::inventory(&args.paths, Check::Full, 0)?;
    let invalid: Vec<&Entry> = entries
        .iter()
        .filter(|e| matches!(e, Entry::Invalid(_)))
        .collect();
    if !invalid.is_empty() {
        for e in &invalid {
            emit(&printer, e.to_json())?;
        }
        return Err(Error::usage(format!(
            "{} of {} files are not valid DARs; nothing was recorded",
            invalid.len(),
            entries.len()
        ))
        .with_hint("fix or remove the files reported as invalid, then rerun"));
    }
    let at = args.uploaded_at.unwrap_or_else(Utc::now);
    runtime()?.block_on(async {
        let mut db = Db::connect_ready(&options).await?;
        let tx = db.transaction().await?;
        let mut recorded = Vec::new();
        let mut new = 0usize;
        for e in &entries {
            let Entry::Dar(d) = e else { continue };
            let is_new = if args.dry_run {
                !registry::is_recorded(&tx, &d.main_package_id).await?
                    && !recorded.contains(&d.main_package_id)
            } else {
                registry::record(&tx, d, at).await?
            };
            new += usize::from(is_new);
            recorded.push(d.main_package_id.clone());
            let mut v = serde_json::to_value(d).unwrap_or_default();
            v["new"] = json!(is_new);
            v["uploadedAt"] = json!(format_record_time(at));
            v["dryRun"] = json!(args.dry_run);
            emit(&printer, canton_dr_cli::output::event_object("recorded", v))?;
        }
        registry::audit(
            &tx,
            "record",
            args.dry_run,
            Outcome::Ok,
            json!({"mainPackageIds": recorded, "uploadedAt": format_record_time(at), "new": new}),
        )
        .await?;
        tx.commit()
            .await
            .map_err(|e| integration_db::error::db_error(&e))?;
        summary(
            &printer,
            json!({"recorded": recorded.len(), "new": new, "dryRun": args.dry_run}),
            ExitCode::Ok,
        )?;
        Ok(ExitCode::Ok)
    })
}

/// The wanted set: DARs under `--dir` (read before any connection) and the
/// registry's entries.
struct WantedSet {
    local: Vec<Entry>,
    wanted: Vec<Wanted>,
}

fn read_dirs(args: &WantedArgs) -> Result<Vec<Entry>> {
    args.check()?;
    if args.dirs.is_empty() {
        return Ok(Vec::new());
    }
    inventory::inventory(&args.dirs, Check::MainDalf, 0)
}

async fn wanted_set(args: &WantedArgs, local: Vec<Entry>, db: Option<&Db>) -> Result<WantedSet> {
    let rows = match (args.registry, db) {
        (true, Some(db)) => registry::list(db.client(), args.since).await?,
        _ => Vec::new(),
    };
    let wanted = plan::wanted(&local, rows);
    Ok(WantedSet { local, wanted })
}

fn invalid_lines(printer: &Printer, local: &[Entry]) -> Result<usize> {
    let mut n = 0;
    for e in local {
        if matches!(e, Entry::Invalid(_)) {
            n += 1;
            emit(printer, e.to_json())?;
        }
    }
    if n > 0 {
        eprintln!(
            "warning: {n} file(s) under --dir are not valid DARs (see the \"invalid\" lines)"
        );
    }
    Ok(n)
}

/// `dar-sync diff`.
pub fn diff(args: DiffArgs, printer: Printer) -> Result<ExitCode> {
    let local = read_dirs(&args.wanted)?;
    let config = args.admin.client_config()?;
    let db_options = args
        .wanted
        .registry
        .then(|| args.db.connect_options(APPLICATION_NAME))
        .transpose()?;
    runtime()?.block_on(async {
        let db = match &db_options {
            Some(o) => Some(Db::connect_ready(o).await?),
            None => None,
        };
        let set = wanted_set(&args.wanted, local, db.as_ref()).await?;
        let service = AdminDarService::new(CantonChannel::new(&config)?);
        let node = list_all(&service, args.wanted.list_limit).await?;
        let invalid = invalid_lines(&printer, &set.local)?;
        let d = plan::diff(set.wanted, &node);
        for w in &d.missing {
            emit(&printer, plan::missing_line(w))?;
        }
        for (w, n) in &d.present {
            emit(&printer, plan::present_line(w, n))?;
        }
        for n in &d.extra {
            emit(&printer, plan::extra_line(n))?;
        }
        let exit = if args.check && !d.missing.is_empty() {
            ExitCode::ConditionFalse
        } else {
            ExitCode::Ok
        };
        summary(
            &printer,
            json!({
                "missing": d.missing.len(),
                "present": d.present.len(),
                "extra": d.extra.len(),
                "builtin": d.extra.iter().filter(|n| n.is_builtin()).count(),
                "invalid": invalid,
            }),
            exit,
        )?;
        if exit == ExitCode::ConditionFalse {
            return Err(Error::condition(format!(
                "{} DAR(s) missing on the node",
                d.missing.len()
            ))
            .with_hint("run `dar-sync upload` with the same --dir/--registry/--since flags"));
        }
        Ok(exit)
    })
}

/// `dar-sync upload`.
pub fn upload(args: UploadArgs, printer: Printer) -> Result<ExitCode> {
    let local = read_dirs(&args.wanted)?;
    let config = args.admin.client_config()?;
    let use_db = args.wanted.registry || args.db.db_url.is_some();
    let db_options = use_db
        .then(|| args.db.connect_options(APPLICATION_NAME))
        .transpose()?;
    let settings = Settings {
        options: UploadOptions {
            vet_all_packages: !args.no_vet,
            synchronize_vetting: !args.no_synchronize_vetting,
            synchronizer_id: args.synchronizer_id.clone().filter(|s| !s.is_empty()),
        },
        dry_run: args.dry_run,
        list_limit: args.wanted.list_limit,
        max_message_bytes: config.max_message_bytes,
    };
    runtime()?.block_on(async {
        let db = match &db_options {
            Some(o) => Some(Db::connect_ready(o).await?),
            None => None,
        };
        let set = wanted_set(&args.wanted, local, db.as_ref()).await?;
        let service = AdminDarService::new(CantonChannel::new(&config)?);
        let node = list_all(&service, args.wanted.list_limit).await?;
        let invalid_in_dirs = invalid_lines(&printer, &set.local)?;
        let d = plan::diff(set.wanted, &node);
        for (w, n) in &d.present {
            emit(&printer, plan::present_line(w, n))?;
        }
        let mut out = |v: Value| emit(&printer, v);
        let result = match (&db, settings.dry_run) {
            (Some(db), false) => {
                upload::upload_missing(&service, &d.missing, &settings, db, &mut out).await
            }
            _ => upload::upload_missing(&service, &d.missing, &settings, &NoRecorder, &mut out).await,
        };
        let report = match result {
            Ok(r) => r,
            Err(e) => {
                if let Some(db) = &db {
                    let details = json!({"error": e.message(), "errorId": e.code()});
                    if let Err(audit_err) =
                        registry::audit(db.client(), "upload", settings.dry_run, Outcome::Failed, details).await
                    {
                        tracing::warn!("cannot write the audit entry: {audit_err}");
                    }
                }
                return Err(e);
            }
        };
        let invalid = report.invalid + invalid_in_dirs;
        let still_missing = report.no_file + report.unconfirmed;
        let (exit, error) = if report.refused + invalid > 0 {
            (
                ExitCode::Usage,
                Some(
                    Error::usage(format!(
                        "{} DAR(s) not uploaded: {} refused, {} invalid file(s)",
                        report.refused + invalid,
                        report.refused,
                        invalid
                    ))
                    .with_hint("see the \"refused\" and \"invalid\" lines for each file's reason and fix"),
                ),
            )
        } else if still_missing > 0 {
            (
                ExitCode::ConditionFalse,
                Some(
                    Error::condition(format!("{still_missing} DAR(s) still missing on the node"))
                        .with_hint("see the \"no-file\" and \"unconfirmed\" lines; pass --dir with the DAR files, then rerun"),
                ),
            )
        } else {
            (ExitCode::Ok, None)
        };
        if let Some(db) = &db {
            let outcome = if exit == ExitCode::Ok { Outcome::Ok } else { Outcome::Failed };
            registry::audit(
                db.client(),
                "upload",
                settings.dry_run,
                outcome,
                json!({
                    "uploaded": report.uploaded,
                    "refused": report.refused,
                    "invalid": invalid,
                    "noFile": report.no_file,
                    "unconfirmed": report.unconfirmed,
                }),
            )
            .await?;
        }
        let uploaded = report.uploaded.len();
        summary(
            &printer,
            json!({
                "missing": d.missing.len(),
                "present": d.present.len(),
                "uploaded": if settings.dry_run { 0 } else { uploaded },
                "wouldUpload": if settings.dry_run { uploaded } else { 0 },
                "confirmed": report.confirmed,
                "unconfirmed": report.unconfirmed,
                "refused": report.refused,
                "invalid": invalid,
                "noFile": report.no_file,
                "dryRun": settings.dry_run,
            }),
            exit,
        )?;
        match error {
            Some(e) => Err(e),
            None => Ok(exit),
        }
    })
}
