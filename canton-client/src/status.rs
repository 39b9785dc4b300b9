//! Canton's gRPC error model, shared by the client (decoding) and the simulator
//! (building), so both sides use one definition (`canton-wire.md` §6).
//!
//! A Canton error is a gRPC status whose message is
//! `<ERROR_ID>(<category>,<first 8 chars of the correlation id>): <cause>` and whose
//! `grpc-status-details-bin` trailer is a serialized `google.rpc.Status` carrying,
//! in this order, `ErrorInfo` (reason = error id, metadata incl. `category` and
//! `tid`), `RetryInfo` (retryable categories only), `RequestInfo` (correlation id)
//! and any `ResourceInfo`. Security-sensitive categories (4, 5, 6, 7, 14) are
//! redacted: a generic message and only `RequestInfo`.

use canton_proto::google::rpc;
use prost::Message;
use std::collections::BTreeMap;
use std::time::Duration;
use tonic::{Code, Status};

/// `type_url` of a packed `google.rpc.ErrorInfo`.
pub const ERROR_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.ErrorInfo";
/// `type_url` of a packed `google.rpc.RetryInfo`.
pub const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";
/// `type_url` of a packed `google.rpc.RequestInfo`.
pub const REQUEST_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RequestInfo";
/// `type_url` of a packed `google.rpc.ResourceInfo`.
pub const RESOURCE_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.ResourceInfo";

/// Longest cause Canton puts into a status message (longer ones are cut).
pub const MAX_CAUSE_CHARS: usize = 512;

/// Canton error categories (the integer in the message and in `category` metadata).
pub mod category {
    /// TransientServerFailure → UNAVAILABLE, retryable.
    pub const TRANSIENT_SERVER_FAILURE: i32 = 1;
    /// ContentionOnSharedResources → ABORTED, retryable.
    pub const CONTENTION_ON_SHARED_RESOURCES: i32 = 2;
    /// DeadlineExceededRequestStateUnknown → DEADLINE_EXCEEDED, retryable.
    pub const DEADLINE_EXCEEDED_REQUEST_STATE_UNKNOWN: i32 = 3;
    /// SystemInternalAssumptionViolated → INTERNAL (redacted).
    pub const SYSTEM_INTERNAL_ASSUMPTION_VIOLATED: i32 = 4;
    /// MaliciousOrFaultyBehaviour → INVALID_ARGUMENT (redacted, security alert).
    pub const MALICIOUS_OR_FAULTY_BEHAVIOUR: i32 = 5;
    /// AuthInterceptorInvalidAuthenticationCredentials → UNAUTHENTICATED (redacted).
    pub const INVALID_AUTHENTICATION_CREDENTIALS: i32 = 6;
    /// InsufficientPermission → PERMISSION_DENIED (redacted).
    pub const INSUFFICIENT_PERMISSION: i32 = 7;
    /// InvalidIndependentOfSystemState → INVALID_ARGUMENT.
    pub const INVALID_INDEPENDENT_OF_SYSTEM_STATE: i32 = 8;
    /// InvalidGivenCurrentSystemStateOther → FAILED_PRECONDITION.
    pub const INVALID_GIVEN_CURRENT_SYSTEM_STATE_OTHER: i32 = 9;
    /// InvalidGivenCurrentSystemStateResourceExists → ALREADY_EXISTS.
    pub const RESOURCE_EXISTS: i32 = 10;
    /// InvalidGivenCurrentSystemStateResourceMissing → NOT_FOUND.
    pub const RESOURCE_MISSING: i32 = 11;
    /// InvalidGivenCurrentSystemStateSeekAfterEnd → OUT_OF_RANGE, retryable.
    pub const SEEK_AFTER_END: i32 = 12;
    /// InternalUnsupportedOperation → UNIMPLEMENTED (redacted).
    pub const INTERNAL_UNSUPPORTED_OPERATION: i32 = 14;
}

/// The gRPC code Canton uses for `category`, if the category is known.
pub fn category_code(category: i32) -> Option<Code> {
    Some(match category {
        1 => Code::Unavailable,
        2 => Code::Aborted,
        3 => Code::DeadlineExceeded,
        4 => Code::Internal,
        5 => Code::InvalidArgument,
        6 => Code::Unauthenticated,
        7 => Code::PermissionDenied,
        8 => Code::InvalidArgument,
        9 => Code::FailedPrecondition,
        10 => Code::AlreadyExists,
        11 => Code::NotFound,
        12 => Code::OutOfRange,
        14 => Code::Unimplemented,
        _ => return None,
    })
}

/// True for the categories Canton marks retryable (they carry `RetryInfo` of 1 s).
pub fn category_is_retryable(category: i32) -> bool {
    matches!(category, 1..=3 | 12)
}

/// True for the categories whose message and details Canton redacts.
pub fn category_is_redacted(category: i32) -> bool {
    matches!(category, 4..=7 | 14)
}

/// The upper-case gRPC name of `code` (`UNAVAILABLE`, `OUT_OF_RANGE`, …).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Builds a Canton-shaped error status; see the module docs for the layout.
///
/// ```
/// use canton_client::status::CantonStatus;
/// use std::time::Duration;
/// let status = CantonStatus::new(
///     tonic::Code::OutOfRange,
///     "INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR",
///     12,
///     "No ledger offset found for the requested timestamp",
/// )
/// .metadata("synchronizerId", "sync::1220ab")
/// .retry_after(Duration::from_secs(1))
/// .into_status();
/// assert!(status.message().starts_with("INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR(12,"));
/// ```
#[derive(Debug, Clone)]
pub struct CantonStatus {
    code: Code,
    error_id: String,
    category: i32,
    cause: String,
    metadata: BTreeMap<String, String>,
    retry_delay: Option<Duration>,
    correlation_id: Option<String>,
    trace_id: Option<String>,
    resources: Vec<(String, String)>,
}

impl CantonStatus {
    /// A new error with `code`, Canton error id, category int and cause.
    pub fn new(
        code: Code,
        error_id: impl Into<String>,
        category: i32,
        cause: impl Into<String>,
    ) -> Self {
        CantonStatus {
            code,
            error_id: error_id.into(),
            category,
            cause: cause.into(),
            metadata: BTreeMap::new(),
            retry_delay: None,
            correlation_id: None,
            trace_id: None,
            resources: Vec::new(),
        }
    }

    /// Adds one `ErrorInfo` metadata entry (camelCase key, as Canton).
    #[must_use]
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Adds a `RetryInfo` with this delay.
    #[must_use]
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_delay = Some(delay);
        self
    }

    /// Sets the correlation id (default: a random 32-hex id).
    #[must_use]
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Sets the trace id put into `tid` (default: the correlation id).
    #[must_use]
    pub fn trace_id(mut self, id: impl Into<String>) -> Self {
        self.trace_id = Some(id.into());
        self
    }

    /// Adds a `ResourceInfo` (type, name).
    #[must_use]
    pub fn resource(mut self, resource_type: impl Into<String>, name: impl Into<String>) -> Self {
        self.resources.push((resource_type.into(), name.into()));
        self
    }

    /// The `tonic::Status` with Canton's message and `grpc-status-details-bin`.
    pub fn into_status(self) -> Status {
        let correlation = self
            .correlation_id
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let tid = self.trace_id.unwrap_or_else(|| correlation.clone());
        let request_info = pack(
            REQUEST_INFO_TYPE_URL,
            &rpc::RequestInfo {
                request_id: correlation.clone(),
                serving_data: String::new(),
            },
        );
        let (message, details) = if category_is_redacted(self.category) {
            (
                format!(
                    "An error occurred. Please contact the operator and inquire about the request {correlation} with tid {tid}"
                ),
                vec![request_info],
            )
        } else {
            let corr8: String = if correlation.is_empty() {
                "0".to_string()
            } else {
                correlation.chars().take(8).collect()
            };
            let cause = truncate_chars(&self.cause, MAX_CAUSE_CHARS);
            let message = format!("{}({},{corr8}): {cause}", self.error_id, self.category);
            let mut metadata = self.metadata;
            metadata.insert("category".into(), self.category.to_string());
            metadata.entry("tid".into()).or_insert_with(|| tid.clone());
            let mut details = vec![pack(
                ERROR_INFO_TYPE_URL,
                &rpc::ErrorInfo {
                    reason: self.error_id,
                    domain: String::new(),
                    metadata: metadata.into_iter().collect(),
                },
            )];
            if let Some(delay) = self.retry_delay {
                details.push(pack(
                    RETRY_INFO_TYPE_URL,
                    &rpc::RetryInfo {
                        retry_delay: Some(prost_types::Duration {
                            seconds: delay.as_secs() as i64,
                            nanos: delay.subsec_nanos() as i32,
                        }),
                    },
                ));
            }
            details.push(request_info);
            for (resource_type, resource_name) in self.resources {
                details.push(pack(
                    RESOURCE_INFO_TYPE_URL,
                    &rpc::ResourceInfo {
                        resource_type,
                        resource_name,
                        owner: String::new(),
                        description: String::new(),
                    },
                ));
            }
            (message, details)
        };
        let body = rpc::Status {
            code: self.code as i32,
            message: message.clone(),
            details,
        };
        Status::with_details(self.code, message, body.encode_to_vec().into())
    }
}

/// Builds a Canton-shaped error status in one call (see [`CantonStatus`]).
/// A `retry_delay` adds `RetryInfo`; Canton sends 1 s for retryable categories.
pub fn canton_status(
    code: Code,
    error_id: &str,
    category: i32,
    cause: &str,
    metadata: BTreeMap<String, String>,
    retry_delay: Option<Duration>,
) -> Status {
    let mut builder = CantonStatus::new(code, error_id, category, cause);
    builder.metadata = metadata;
    builder.retry_delay = retry_delay;
    builder.into_status()
}

fn pack<M: Message>(type_url: &str, message: &M) -> prost_types::Any {
    prost_types::Any {
        type_url: type_url.to_string(),
        value: message.encode_to_vec(),
    }
}

fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The decoded `grpc-status-details-bin` of a status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusDetails {
    /// The `google.rpc.Status` message (may differ from the gRPC status message).
    pub message: String,
    /// `ErrorInfo`, if present.
    pub error_info: Option<rpc::ErrorInfo>,
    /// `RetryInfo`'s delay, if present.
    pub retry_delay: Option<Duration>,
    /// `RequestInfo`, if present.
    pub request_info: Option<rpc::RequestInfo>,
    /// All `ResourceInfo` entries.
    pub resources: Vec<rpc::ResourceInfo>,
    /// `type_url`s of details this decoder does not know (kept for diagnostics).
    pub unknown_types: Vec<String>,
}

/// Decodes a `grpc-status-details-bin` payload. Empty input gives `Ok(None)`.
/// Details are matched by the type name after the last `/` of their `type_url`.
pub fn decode_details(bytes: &[u8]) -> Result<Option<StatusDetails>, prost::DecodeError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let status = rpc::Status::decode(bytes)?;
    let mut out = StatusDetails {
        message: status.message,
        ..Default::default()
    };
    for any in status.details {
        let name = any.type_url.rsplit('/').next().unwrap_or_default();
        match name {
            "google.rpc.ErrorInfo" => {
                out.error_info = Some(rpc::ErrorInfo::decode(any.value.as_slice())?);
            }
            "google.rpc.RetryInfo" => {
                let info = rpc::RetryInfo::decode(any.value.as_slice())?;
                out.retry_delay = Some(
                    info.retry_delay
                        .map(|d| {
                            Duration::new(
                                d.seconds.max(0) as u64,
                                d.nanos.clamp(0, 999_999_999) as u32,
                            )
                        })
                        .unwrap_or_default(),
                );
            }
            "google.rpc.RequestInfo" => {
                out.request_info = Some(rpc::RequestInfo::decode(any.value.as_slice())?);
            }
            "google.rpc.ResourceInfo" => {
                out.resources
                    .push(rpc::ResourceInfo::decode(any.value.as_slice())?);
            }
            _ => out.unknown_types.push(any.type_url),
        }
    }
    Ok(Some(out))
}

/// A status message split into Canton's `ID(category,corr): cause` parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMessage {
    /// The error id, e.g. `INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR`.
    pub error_id: String,
    /// The category int.
    pub category: i32,
    /// The correlation id prefix (up to 8 chars, or `0`).
    pub correlation: String,
    /// The part after `): `.
    pub cause: String,
}

/// Parses `ERROR_ID(category,corr): cause`; `None` if `message` has another shape.
pub fn parse_message(message: &str) -> Option<ParsedMessage> {
    let open = message.find('(')?;
    let error_id = &message[..open];
    if error_id.is_empty()
        || !error_id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let rest = &message[open + 1..];
    let close = rest.find(')')?;
    let (category, correlation) = rest[..close].split_once(',')?;
    let category: i32 = category.trim().parse().ok()?;
    let after = &rest[close + 1..];
    let cause = after.strip_prefix(':')?.trim_start();
    Some(ParsedMessage {
        error_id: error_id.to_string(),
        category,
        correlation: correlation.trim().to_string(),
        cause: cause.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_message_splits_canton_prefix() {
        let p = parse_message(
            "INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR(12,1a2b3c4d): No ledger offset found: x (y): z",
        )
        .unwrap();
        assert_eq!(p.error_id, "INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR");
        assert_eq!(p.category, 12);
        assert_eq!(p.correlation, "1a2b3c4d");
        assert_eq!(p.cause, "No ledger offset found: x (y): z");
        assert_eq!(
            parse_message("DAR_NOT_FOUND(11,0): gone")
                .unwrap()
                .correlation,
            "0"
        );
    }

    #[test]
    fn parse_message_rejects_other_shapes() {
        for m in [
            "Invalid package ID",
            "error trying to connect (os error 111): refused",
            "lower_case(8,0): x",
            "ID(x,0): y",
            "ID(8,0) missing colon",
            "(8,0): no id",
        ] {
            assert_eq!(parse_message(m), None, "{m}");
        }
    }

    #[test]
    fn categories_map_like_canton() {
        assert_eq!(category_code(12), Some(Code::OutOfRange));
        assert_eq!(category_code(8), Some(Code::InvalidArgument));
        assert_eq!(category_code(13), None);
        assert!(category_is_retryable(1) && category_is_retryable(12));
        assert!(!category_is_retryable(9));
        assert!(category_is_redacted(6) && !category_is_redacted(8));
    }

    #[test]
    fn built_status_has_canton_layout() {
        let status = CantonStatus::new(
            Code::OutOfRange,
            "INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR",
            12,
            "not yet",
        )
        .metadata("synchronizerId", "s::1220")
        .retry_after(Duration::from_millis(1500))
        .correlation_id("abcdef0123456789")
        .resource("SYNCHRONIZER_ID", "s::1220")
        .into_status();
        assert_eq!(status.code(), Code::OutOfRange);
        assert_eq!(
            status.message(),
            "INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR(12,abcdef01): not yet"
        );
        let body = rpc::Status::decode(status.details()).unwrap();
        assert_eq!(body.code, Code::OutOfRange as i32);
        let urls: Vec<&str> = body.details.iter().map(|a| a.type_url.as_str()).collect();
        assert_eq!(
            urls,
            [
                ERROR_INFO_TYPE_URL,
                RETRY_INFO_TYPE_URL,
                REQUEST_INFO_TYPE_URL,
                RESOURCE_INFO_TYPE_URL
            ]
        );
        let info = rpc::ErrorInfo::decode(body.details[0].value.as_slice()).unwrap();
        assert_eq!(info.reason, "INVALID_TIMESTAMP_PARTY_MANAGEMENT_ERROR");
        assert_eq!(info.domain, "");
        assert_eq!(info.metadata["category"], "12");
        assert_eq!(info.metadata["synchronizerId"], "s::1220");
        assert_eq!(info.metadata["tid"], "abcdef0123456789");
        let retry = rpc::RetryInfo::decode(body.details[1].value.as_slice()).unwrap();
        let d = retry.retry_delay.unwrap();
        assert_eq!((d.seconds, d.nanos), (1, 500_000_000));
        let req = rpc::RequestInfo::decode(body.details[2].value.as_slice()).unwrap();
        assert_eq!(req.request_id, "abcdef0123456789");
    }

    #[test]
    fn no_retry_info_without_delay_and_cause_is_truncated() {
        let long = "é".repeat(600);
        let status = canton_status(
            Code::InvalidArgument,
            "INVALID_ARGUMENT_PARTY_MANAGEMENT_ERROR",
            8,
            &long,
            BTreeMap::new(),
            None,
        );
        let d = decode_details(status.details()).unwrap().unwrap();
        assert!(d.retry_delay.is_none());
        assert!(d.error_info.is_some() && d.request_info.is_some());
        let parsed = parse_message(status.message()).unwrap();
        assert_eq!(parsed.cause.chars().count(), MAX_CAUSE_CHARS);
        assert_eq!(parsed.correlation.len(), 8);
    }

    #[test]
    fn redacted_categories_hide_id_and_cause() {
        let status = CantonStatus::new(Code::Unauthenticated, "UNAUTHENTICATED", 6, "bad jwt sig")
            .correlation_id("c0ffee")
            .into_status();
        assert_eq!(
            status.message(),
            "An error occurred. Please contact the operator and inquire about the request c0ffee with tid c0ffee"
        );
        let d = decode_details(status.details()).unwrap().unwrap();
        assert!(d.error_info.is_none());
        assert_eq!(d.request_info.unwrap().request_id, "c0ffee");
    }

    #[test]
    fn unknown_detail_types_are_kept_aside() {
        let body = rpc::Status {
            code: 5,
            message: "x".into(),
            details: vec![prost_types::Any {
                type_url: "type.googleapis.com/google.rpc.DebugInfo".into(),
                value: vec![],
            }],
        };
        let d = decode_details(&body.encode_to_vec()).unwrap().unwrap();
        assert_eq!(
            d.unknown_types,
            ["type.googleapis.com/google.rpc.DebugInfo"]
        );
        assert_eq!(decode_details(&[]).unwrap(), None);
        assert!(decode_details(&[0xff, 0xff]).is_err());
    }
}
