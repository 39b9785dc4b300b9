//! Canton-shaped errors for every answer the simulator refuses: the error id,
//! category, gRPC code, message and `google.rpc.Status` details of
//! `reference/canton-wire.md` §6, built with `canton_client::status` so the
//! tools decode exactly one format.

use canton_client::status::{CantonStatus, category};
use std::time::Duration;
use tonic::{Code, Status};

/// Canton's retry delay for retryable categories.
pub const RETRY_DELAY: Duration = Duration::from_secs(1);

/// An error of `id` with `category`, its gRPC code and (for retryable
/// categories) a 1 s RetryInfo.
pub fn canton(id: &str, cat: i32, cause: impl Into<String>) -> CantonStatus {
    let code = canton_client::status::category_code(cat).unwrap_or(Code::Internal);
    let s = CantonStatus::new(code, id, cat, cause);
    if canton_client::status::category_is_retryable(cat) {
        s.retry_after(RETRY_DELAY)
    } else {
        s
    }
}

/// INVALID_ARGUMENT (category 8) with Canton id `id`.
pub fn invalid_argument(id: &str, cause: impl Into<String>) -> Status {
    canton(id, category::INVALID_INDEPENDENT_OF_SYSTEM_STATE, cause).into_status()
}

/// `MISSING_FIELD`: a mandatory request field is absent.
pub fn missing_field(field: &str) -> Status {
    canton(
        "MISSING_FIELD",
        category::INVALID_INDEPENDENT_OF_SYSTEM_STATE,
        format!("The submitted command is missing a mandatory field: {field}"),
    )
    .metadata("field_name", field)
    .into_status()
}

/// `INVALID_FIELD`: a request field has a bad value.
pub fn invalid_field(field: &str, message: &str) -> Status {
    canton(
        "INVALID_FIELD",
        category::INVALID_INDEPENDENT_OF_SYSTEM_STATE,
        format!(
            "The submitted command has a field with invalid value: Invalid field {field}: {message}"
        ),
    )
    .metadata("field_name", field)
    .into_status()
}

/// `ABORTED_DUE_TO_SHUTDOWN` (UNAVAILABLE, retry 1 s): what an injected
/// UNAVAILABLE fault answers, as a node going down does.
pub fn unavailable() -> Status {
    canton(
        "ABORTED_DUE_TO_SHUTDOWN",
        category::TRANSIENT_SERVER_FAILURE,
        "request aborted due to shutdown",
    )
    .into_status()
}

/// `UNAUTHENTICATED` (category 6, redacted).
pub fn unauthenticated(cause: &str) -> Status {
    canton(
        "UNAUTHENTICATED",
        category::INVALID_AUTHENTICATION_CREDENTIALS,
        cause,
    )
    .into_status()
}

/// `PERMISSION_DENIED` (category 7, redacted).
pub fn permission_denied(cause: &str) -> Status {
    canton(
        "PERMISSION_DENIED",
        category::INSUFFICIENT_PERMISSION,
        cause,
    )
    .into_status()
}

/// `FAILED_PRECONDITION` (category 9) with Canton id `id`.
pub fn failed_precondition(id: &str, cause: impl Into<String>) -> Status {
    canton(
        id,
        category::INVALID_GIVEN_CURRENT_SYSTEM_STATE_OTHER,
        cause,
    )
    .into_status()
}

/// `NOT_FOUND` (category 11) with Canton id `id`.
pub fn not_found(id: &str, cause: impl Into<String>) -> CantonStatus {
    canton(id, category::RESOURCE_MISSING, cause)
}

/// A bare gRPC status without Canton details, as some admin paths answer.
pub fn bare(code: Code, message: &str) -> Status {
    Status::new(code, message)
}

/// Formats µs since the epoch as Java's `Instant.toString` does (Canton's
/// `CantonTimestamp` in messages): fraction in groups of 3 digits, omitted when zero.
pub fn instant_string(us: i64) -> String {
    let Some(t) = chrono::DateTime::<chrono::Utc>::from_timestamp_micros(us) else {
        return us.to_string();
    };
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let micros = t.timestamp_subsec_micros();
    if micros == 0 {
        format!("{base}Z")
    } else if micros % 1000 == 0 {
        format!("{base}.{:03}Z", micros / 1000)
    } else {
        format!("{base}.{micros:06}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_strings_match_java() {
        assert_eq!(instant_string(0), "1970-01-01T00:00:00Z");
        assert_eq!(instant_string(1_500_000), "1970-01-01T00:00:01.500Z");
        assert_eq!(instant_string(1_000_001), "1970-01-01T00:00:01.000001Z");
    }

    #[test]
    fn statuses_carry_codes_and_ids() {
        let s = unavailable();
        assert_eq!(s.code(), Code::Unavailable);
        assert!(s.message().starts_with("ABORTED_DUE_TO_SHUTDOWN(1,"));
        let s = missing_field("update_format");
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().contains("update_format"));
        assert_eq!(unauthenticated("x").code(), Code::Unauthenticated);
        assert_eq!(permission_denied("x").code(), Code::PermissionDenied);
    }
}
