//! Uploading what the node lacks: for each missing DAR, read its file, check
//! it fully as Canton will (an invalid file is never sent), record it in the
//! registry, send it alone in one `UploadDar` call with its main package id
//! as `expected_main_package_id`, and at the end list the node's DARs again
//! to confirm every upload is there.
//!
//! Reruns are safe: only what the node lacks is sent, and Canton stores a DAR
//! it already has as a no-op, so a run cut short (node down, process killed)
//! is finished by running it again, with nothing doubled.

use crate::errors::{MAIN_PACKAGE_MISMATCH, Refusal, abort_error, as_refusal, refusal_hint};
use crate::inventory::{InvalidFile, LocalDar};
use crate::node::{DarService, UploadItem, UploadOptions, list_all};
use crate::plan::Wanted;
use canton_dr_cli::Result;
use chrono::Utc;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::Path;

/// How to upload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// Vetting flags and synchronizer.
    pub options: UploadOptions,
    /// Show what would be sent; send and record nothing.
    pub dry_run: bool,
    /// First ListDars limit for the confirmation.
    pub list_limit: u32,
    /// The client's gRPC message-size limit (`--max-message-bytes`).
    pub max_message_bytes: usize,
}

/// Bytes an `UploadDarRequest` adds to the DAR itself (field tags, lengths,
/// description of at most 255 characters, expected id, flags), rounded up.
const REQUEST_OVERHEAD: u64 = 1024;

/// Refuses, before anything is sent, a run whose DARs do not fit into one
/// gRPC message under the client's limit.
fn check_sizes(missing: &[Wanted], max_message_bytes: usize) -> Result<()> {
    let limit = u64::try_from(max_message_bytes).unwrap_or(u64::MAX);
    let too_big: Vec<String> = missing
        .iter()
        .filter_map(|w| {
            let size = match (&w.file, &w.registry) {
                (Some(f), _) => f.size,
                (None, Some(r)) => u64::try_from(r.size_bytes).unwrap_or(0),
                (None, None) => 0,
            };
            (size + REQUEST_OVERHEAD > limit)
                .then(|| format!("{} ({size} bytes)", w.path().unwrap_or(&w.main_package_id)))
        })
        .collect();
    if too_big.is_empty() {
        return Ok(());
    }
    Err(canton_dr_cli::Error::usage(format!(
        "{} DAR(s) are larger than the gRPC message-size limit of {max_message_bytes} bytes: {}; nothing was uploaded",
        too_big.len(),
        too_big.join(", ")
    ))
    .with_hint(
        "raise --max-message-bytes (CANTON_MAX_MESSAGE_BYTES) above the largest DAR; the node's admin API must accept messages that large too",
    ))
}

/// Counts of one upload run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Main package ids uploaded (or, in a dry run, that would be).
    pub uploaded: Vec<String>,
    /// Refused by the node or by the local main-package check.
    pub refused: usize,
    /// Files that are not valid DARs (never sent).
    pub invalid: usize,
    /// Wanted DARs without a file to upload from.
    pub no_file: usize,
    /// Uploaded but not listed by the node afterwards.
    pub unconfirmed: usize,
    /// Uploads the node lists afterwards.
    pub confirmed: usize,
}

/// Where registry records go (the Integration DB, or nowhere).
pub trait Recorder {
    /// Records an uploaded DAR.
    fn record(&self, dar: &LocalDar) -> impl std::future::Future<Output = Result<()>>;
}

/// No registry.
#[derive(Debug, Clone, Copy)]
pub struct NoRecorder;

impl Recorder for NoRecorder {
    async fn record(&self, _dar: &LocalDar) -> Result<()> {
        Ok(())
    }
}

impl Recorder for integration_db::Db {
    async fn record(&self, dar: &LocalDar) -> Result<()> {
        crate::registry::record(self.client(), dar, Utc::now())
            .await
            .map(|_| ())
    }
}

/// What became of one missing DAR before the upload call.
enum Prepared {
    Ready(LocalDar, Vec<u8>),
    Refused(Refusal),
    Invalid(InvalidFile),
    NoFile(String),
}

/// Reads and fully checks the file for `w`.
fn prepare(w: &Wanted) -> Prepared {
    let Some(path) = w.path() else {
        return Prepared::NoFile("no file is known for this DAR".into());
    };
    let path = Path::new(path);
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Prepared::NoFile(format!("{} does not exist", path.display()));
        }
        Err(e) => {
            return Prepared::Invalid(InvalidFile::from_error(
                path,
                &daml_dar::InspectError::Io {
                    path: path.to_path_buf(),
                    source: e,
                },
            ));
        }
    };
    // Full check of exactly the bytes that will be sent.
    let info = match daml_dar::inspect_bytes(&bytes) {
        Ok(i) => i,
        Err(e) => {
            return Prepared::Invalid(InvalidFile {
                path: path.display().to_string(),
                reason: e.reason(),
                error_id: Some(e.canton_error_id().to_string()),
            });
        }
    };
    if info.dar.main_package_id != w.main_package_id {
        return Prepared::Refused(Refusal {
            error_id: MAIN_PACKAGE_MISMATCH.into(),
            error: format!(
                "{MAIN_PACKAGE_MISMATCH}: {} holds the DAR with main package id {}, not the expected {}",
                path.display(),
                info.dar.main_package_id,
                w.main_package_id
            ),
            hint: refusal_hint(MAIN_PACKAGE_MISMATCH).into(),
        });
    }
    Prepared::Ready(LocalDar::from_info(path, &info), bytes)
}

fn line(result: &str, w: &Wanted, extra: Value) -> Value {
    let mut v = w.fields();
    v["result"] = json!(result);
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        m.extend(e);
    }
    canton_dr_cli::output::event_object("upload", v)
}

/// Uploads `missing` (the wanted DARs the node lacks), emitting one line per
/// DAR and one per unconfirmed upload. Stops with an error on failures that
/// would hit every upload (node unreachable after retries, no synchronizer
/// to vet on); refusals of one DAR are reported and the run goes on.
pub async fn upload_missing(
    service: &impl DarService,
    missing: &[Wanted],
    settings: &Settings,
    recorder: &impl Recorder,
    emit: &mut dyn FnMut(Value) -> Result<()>,
) -> Result<Report> {
    if !settings.dry_run {
        check_sizes(missing, settings.max_message_bytes)?;
    }
    let mut report = Report::default();
    for w in missing {
        let (local, bytes) = match prepare(w) {
            Prepared::Ready(l, b) => (l, b),
            Prepared::Refused(r) => {
                report.refused += 1;
                emit(line(
                    "refused",
                    w,
                    json!({"errorId": r.error_id, "error": r.error, "hint": r.hint}),
                ))?;
                continue;
            }
            Prepared::Invalid(i) => {
                report.invalid += 1;
                let mut v = serde_json::to_value(&i).unwrap_or_default();
                v["mainPackageId"] = json!(w.main_package_id);
                emit(canton_dr_cli::output::event_object("invalid", v))?;
                continue;
            }
            Prepared::NoFile(why) => {
                report.no_file += 1;
                emit(line(
                    "no-file",
                    w,
                    json!({
                        "error": why,
                        "hint": "pass --dir with a directory holding this DAR",
                    }),
                ))?;
                continue;
            }
        };
        if settings.dry_run {
            report.uploaded.push(local.main_package_id.clone());
            emit(line("dry-run", w, json!({"path": local.path})))?;
            continue;
        }
        // Recorded before the upload: the registry says what the node must
        // hold, so a run cut short between the two still knows to retry it.
        recorder.record(&local).await?;
        let item = UploadItem {
            bytes,
            description: Path::new(&local.path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned()),
            expected_main_package_id: local.main_package_id.clone(),
        };
        match service.upload_dar(item, &settings.options).await {
            Ok(ids) => {
                if !ids.is_empty() && !ids.contains(&local.main_package_id) {
                    tracing::warn!(
                        "the node answered the upload of {} with ids {ids:?}",
                        local.main_package_id
                    );
                }
                report.uploaded.push(local.main_package_id.clone());
                emit(line(
                    "uploaded",
                    w,
                    json!({"path": local.path, "sha256": local.sha256, "size": local.size}),
                ))?;
            }
            Err(e) => match as_refusal(&e) {
                Some(r) => {
                    report.refused += 1;
                    emit(line(
                        "refused",
                        w,
                        json!({"errorId": r.error_id, "error": r.error, "hint": r.hint}),
                    ))?;
                }
                None => return Err(abort_error(&e)),
            },
        }
    }

    if !settings.dry_run && !report.uploaded.is_empty() {
        let listed = list_all(service, settings.list_limit)
            .await
            .map_err(|e| abort_error(&e))?;
        let on_node: HashSet<&str> = listed.iter().map(|d| d.main_package_id.as_str()).collect();
        for id in &report.uploaded {
            if on_node.contains(id.as_str()) {
                report.confirmed += 1;
            } else {
                report.unconfirmed += 1;
                let w = missing.iter().find(|w| &w.main_package_id == id);
                let mut v = w
                    .map(Wanted::fields)
                    .unwrap_or_else(|| json!({"mainPackageId": id}));
                v["error"] = json!("uploaded, but the node does not list it");
                emit(canton_dr_cli::output::event_object("unconfirmed", v))?;
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Check, Entry, inventory};
    use crate::node::fake::FakeNode;
    use crate::plan::{diff, wanted};
    use canton_client::status::{CantonStatus, category};
    use daml_dar::DarBuilder;

    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn settings() -> Settings {
        Settings {
            list_limit: 2,
            max_message_bytes: 64 << 20,
            ..Settings::default()
        }
    }

    fn dars(dir: &Path, n: u64) -> Vec<Entry> {
        for i in 0..n {
            DarBuilder::new(format!("pkg{i}"), "1.0.0")
                .seed(i)
                .build()
                .write_to(dir.join(format!("pkg{i}.dar")))
                .unwrap();
        }
        inventory(&[dir.to_path_buf()], Check::MainDalf, 1).unwrap()
    }

    fn run(node: &FakeNode, local: &[Entry], s: &Settings) -> (Report, Vec<Value>) {
        let d = diff(wanted(local, vec![]), &node.dars.lock().unwrap().clone());
        let mut lines = Vec::new();
        let report = block(upload_missing(node, &d.missing, s, &NoRecorder, &mut |v| {
            lines.push(v);
            Ok(())
        }))
        .unwrap();
        (report, lines)
    }

    #[test]
    fn uploads_what_is_missing_then_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let local = dars(dir.path(), 3);
        let node = FakeNode::default();
        let (report, lines) = run(&node, &local, &settings());
        assert_eq!(report.uploaded.len(), 3);
        assert_eq!((report.confirmed, report.unconfirmed), (3, 0));
        assert!(lines.iter().all(|l| l["result"] == "uploaded"), "{lines:?}");
        let uploads = node.uploads.lock().unwrap().clone();
        assert_eq!(uploads.len(), 3);
        assert!(
            uploads
                .iter()
                .all(|(_, o)| o.vet_all_packages && o.synchronize_vetting)
        );

        let (again, lines) = run(&node, &local, &settings());
        assert_eq!(again, Report::default());
        assert!(lines.is_empty());
        assert_eq!(node.uploads.lock().unwrap().len(), 3, "nothing sent twice");
    }

    #[test]
    fn dry_run_sends_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let local = dars(dir.path(), 2);
        let node = FakeNode::default();
        let s = Settings {
            dry_run: true,
            ..settings()
        };
        let (report, lines) = run(&node, &local, &s);
        assert_eq!(report.uploaded.len(), 2);
        assert_eq!(report.confirmed, 0);
        assert!(lines.iter().all(|l| l["result"] == "dry-run"));
        assert!(node.uploads.lock().unwrap().is_empty());
        assert!(node.list_limits.lock().unwrap().is_empty());
    }

    #[test]
    fn a_file_damaged_after_the_inventory_is_never_sent() {
        let dir = tempfile::tempdir().unwrap();
        let local = dars(dir.path(), 1);
        std::fs::write(dir.path().join("pkg0.dar"), b"truncated").unwrap();
        let node = FakeNode::default();
        let (report, lines) = run(&node, &local, &settings());
        assert_eq!(report.invalid, 1);
        assert_eq!(lines[0]["type"], "invalid");
        assert_eq!(lines[0]["errorId"], "INVALID_DAR");
        assert!(node.uploads.lock().unwrap().is_empty());
    }

    #[test]
    fn a_file_replaced_by_another_dar_is_refused_locally() {
        let dir = tempfile::tempdir().unwrap();
        let local = dars(dir.path(), 1);
        DarBuilder::new("other", "9.9.9")
            .build()
            .write_to(dir.path().join("pkg0.dar"))
            .unwrap();
        let node = FakeNode::default();
        let (report, lines) = run(&node, &local, &settings());
        assert_eq!(report.refused, 1);
        assert_eq!(lines[0]["errorId"], MAIN_PACKAGE_MISMATCH);
        assert!(node.uploads.lock().unwrap().is_empty());
    }

    #[test]
    fn a_refusal_by_the_node_is_reported_and_the_run_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let local = dars(dir.path(), 2);
        let first = match &local[0] {
            Entry::Dar(d) => d.main_package_id.clone(),
            Entry::Invalid(i) => panic!("{i:?}"),
        };
        let node = FakeNode::default();
        node.refuse.lock().unwrap().push((
            first.clone(),
            CantonStatus::new(
                tonic::Code::InvalidArgument,
                "DAR_DEPENDENCIES_NOT_VALID",
                category::INVALID_INDEPENDENT_OF_SYSTEM_STATE,
                "missing dependency",
            )
            .into_status(),
        ));
        let (report, lines) = run(&node, &local, &settings());
        assert_eq!((report.refused, report.uploaded.len()), (1, 1));
        let refused = lines.iter().find(|l| l["result"] == "refused").unwrap();
        assert_eq!(refused["mainPackageId"], first.as_str());
        assert_eq!(refused["errorId"], "DAR_DEPENDENCIES_NOT_VALID");
        assert!(refused["hint"].as_str().unwrap().contains("depends on"));
    }

    #[test]
    fn a_synchronizer_error_stops_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let local = dars(dir.path(), 2);
        let node = FakeNode::default();
        for e in &local {
            if let Entry::Dar(d) = e {
                node.refuse.lock().unwrap().push((
                    d.main_package_id.clone(),
                    CantonStatus::new(
                        tonic::Code::FailedPrecondition,
                        "PACKAGE_SERVICE_CANNOT_AUTODETECT_SYNCHRONIZER",
                        category::INVALID_GIVEN_CURRENT_SYSTEM_STATE_OTHER,
                        "2 synchronizers",
                    )
                    .into_status(),
                ));
            }
        }
        let d = diff(wanted(&local, vec![]), &[]);
        let mut n = 0;
        let e = block(upload_missing(
            &node,
            &d.missing,
            &settings(),
            &NoRecorder,
            &mut |_| {
                n += 1;
                Ok(())
            },
        ))
        .unwrap_err();
        assert_eq!(n, 0);
        assert!(e.hint().unwrap().contains("--synchronizer-id"));
    }

    #[test]
    fn dars_over_the_message_limit_stop_the_run_before_anything_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let local = dars(dir.path(), 2);
        let node = FakeNode::default();
        let d = diff(wanted(&local, vec![]), &[]);
        let s = Settings {
            max_message_bytes: 2048,
            ..settings()
        };
        let e = block(upload_missing(
            &node,
            &d.missing,
            &s,
            &NoRecorder,
            &mut |_| Ok(()),
        ))
        .unwrap_err();
        assert_eq!(e.exit_code().code(), 2);
        assert!(
            e.message().contains("2 DAR(s) are larger"),
            "{}",
            e.message()
        );
        assert!(e.hint().unwrap().contains("--max-message-bytes"));
        assert!(node.uploads.lock().unwrap().is_empty());
    }

    #[test]
    fn vetting_flags_are_sent() {
        let dir = tempfile::tempdir().unwrap();
        let local = dars(dir.path(), 1);
        let node = FakeNode::default();
        let s = Settings {
            options: UploadOptions {
                vet_all_packages: false,
                synchronize_vetting: false,
                synchronizer_id: Some("sync::1220ab".into()),
            },
            ..settings()
        };
        run(&node, &local, &s);
        let (_, o) = node.uploads.lock().unwrap()[0].clone();
        assert_eq!(o, s.options);
    }
}
