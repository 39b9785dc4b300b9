//! What Canton's answers to `UploadDar` mean for a sync run: refusals of one
//! DAR (reported on its line, the run goes on with the others) versus
//! failures that would hit every upload (the run stops), each shown by
//! Canton's error id with a hint naming the fix.

use canton_client::CantonError;
use canton_dr_cli::Error;

/// Canton refuses the DAR itself: the other DARs may still go up.
const PER_DAR_IDS: &[&str] = &[
    "INVALID_DAR",
    "INVALID_DAR_FILE_NAME",
    "INVALID_ZIP_ENTRY",
    "INVALID_LEGACY_DAR",
    "ZIP_BOMB",
    "DAR_PARSE_ERROR",
    "DAR_VALIDATION_ERROR",
    "DAR_DEPENDENCIES_NOT_VALID",
    "NOT_VALID_UPGRADE_PACKAGE",
    "PROTO_DESERIALIZATION_FAILURE",
    MAIN_PACKAGE_MISMATCH,
];

/// The id Canton answers with when `expected_main_package_id` differs from
/// the DAR's main package id (dar-sync uses it for its own check too).
pub const MAIN_PACKAGE_MISMATCH: &str = "MAIN_PACKAGE_IN_DAR_DOES_NOT_MATCH_EXPECTED";

/// A refusal of one DAR, for its output line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Canton's error id.
    pub error_id: String,
    /// One line: what the node (or the local check) said.
    pub error: String,
    /// What to do about it.
    pub hint: String,
}

/// The hint for a refusal of one DAR, by error id.
pub fn refusal_hint(error_id: &str) -> &'static str {
    match error_id {
        MAIN_PACKAGE_MISMATCH => {
            "the file is not the DAR expected under this main package id (replaced or mislabelled): find the right file, or correct the registry entry with `dar-sync record`"
        }
        "DAR_DEPENDENCIES_NOT_VALID" => {
            "the DAR depends on packages the node does not have: upload the DARs it depends on first"
        }
        "NOT_VALID_UPGRADE_PACKAGE" => {
            "the package is not a valid upgrade of a package with the same name on the node: check the DAR's version against what the node holds"
        }
        "ZIP_BOMB" => "Canton refuses zip entries of 1 GiB or more: rebuild the DAR",
        "INVALID_DAR_FILE_NAME" => {
            "the description is too long: rename the file (at most 255 characters)"
        }
        _ => {
            "the node cannot read this DAR: check it with `dar-sync inventory --full PATH` and rebuild it with `daml build`"
        }
    }
}

/// `Some(refusal)` when `e` refuses only this DAR; `None` when it would hit
/// every upload and the run must stop (see [`abort_error`]).
pub fn as_refusal(e: &CantonError) -> Option<Refusal> {
    let id = e.error_id.as_deref()?;
    PER_DAR_IDS.contains(&id).then(|| Refusal {
        error_id: id.to_string(),
        error: e.to_string(),
        hint: refusal_hint(id).to_string(),
    })
}

/// The error that stops an upload run, with a hint for the ids that name a
/// flag of dar-sync.
pub fn abort_error(e: &CantonError) -> Error {
    let err = e.to_cli_error();
    match e.error_id.as_deref() {
        Some("PACKAGE_SERVICE_CANNOT_AUTODETECT_SYNCHRONIZER") => err.with_hint(
            "the node is connected to several synchronizers: name the one to vet on with --synchronizer-id ID (DAR_SYNC_SYNCHRONIZER_ID), or upload without vetting with --no-vet",
        ),
        Some("PACKAGE_SERVICE_NOT_CONNECTED_TO_SYNCHRONIZER") => err.with_hint(
            "pass the id of a synchronizer the node is connected to with --synchronizer-id, or upload without vetting with --no-vet",
        ),
        _ => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canton_client::status::{CantonStatus, category};
    use tonic::Code;

    fn canton(code: Code, id: &str, cat: i32, cause: &str) -> CantonError {
        CantonError::from_status(&CantonStatus::new(code, id, cat, cause).into_status())
    }

    #[test]
    fn dar_refusals_are_per_dar_with_a_hint() {
        let e = canton(
            Code::FailedPrecondition,
            MAIN_PACKAGE_MISMATCH,
            category::INVALID_GIVEN_CURRENT_SYSTEM_STATE_OTHER,
            "The main package of the DAR abc does not match the expected main package def",
        );
        let r = as_refusal(&e).expect("per-DAR");
        assert_eq!(r.error_id, MAIN_PACKAGE_MISMATCH);
        assert!(
            r.error
                .starts_with("MAIN_PACKAGE_IN_DAR_DOES_NOT_MATCH_EXPECTED: The main package")
        );
        assert!(r.hint.contains("find the right file"), "{}", r.hint);

        let e = canton(
            Code::InvalidArgument,
            "INVALID_DAR",
            category::INVALID_INDEPENDENT_OF_SYSTEM_STATE,
            "no manifest",
        );
        let r = as_refusal(&e).expect("per-DAR");
        assert!(r.hint.contains("dar-sync inventory --full"), "{}", r.hint);
    }

    #[test]
    fn synchronizer_errors_stop_the_run_and_name_the_flag() {
        let e = canton(
            Code::FailedPrecondition,
            "PACKAGE_SERVICE_CANNOT_AUTODETECT_SYNCHRONIZER",
            category::INVALID_GIVEN_CURRENT_SYSTEM_STATE_OTHER,
            "connected to 2 synchronizers",
        );
        assert_eq!(as_refusal(&e), None);
        let cli = abort_error(&e);
        assert_eq!(cli.exit_code().code(), 2);
        assert_eq!(
            cli.code(),
            Some("PACKAGE_SERVICE_CANNOT_AUTODETECT_SYNCHRONIZER")
        );
        assert!(
            cli.hint().unwrap().contains("--synchronizer-id"),
            "{:?}",
            cli.hint()
        );
    }

    #[test]
    fn unavailable_stops_the_run_as_transient() {
        let e = CantonError::from_status(&tonic::Status::unavailable("node down"));
        assert_eq!(as_refusal(&e), None);
        assert_eq!(abort_error(&e).exit_code().code(), 3);
    }
}
