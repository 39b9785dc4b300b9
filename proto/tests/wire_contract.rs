//! Wire contract: the compiled descriptor set must match Canton 3.4's
//! package, service, method, message and field layout.
//!
//! The tables below are written by hand from `reference/canton-wire.md`
//! (not derived from our `.proto` files), so a renamed field, a shifted
//! number, a changed scalar kind (e.g. `int64` vs `sint64`), a lost proto3
//! `optional` or a moved file fails this test with a message naming it.

use prost::Message as _;
use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use std::collections::BTreeSet;

macro_rules! adm {
    ($n:literal) => {
        concat!("com.digitalasset.canton.admin.participant.v30.", $n)
    };
}
macro_rules! led {
    ($n:literal) => {
        concat!("com.daml.ledger.api.v2.", $n)
    };
}
macro_rules! ladm {
    ($n:literal) => {
        concat!("com.daml.ledger.api.v2.admin.", $n)
    };
}

/// Expected protobuf kind of a field.
#[derive(Debug, Clone, Copy)]
enum Ty {
    Str,
    Bytes,
    Bool,
    I32,
    I64,
    U32,
    U64,
    Sint64,
    Sfixed64,
    Msg(&'static str),
    Enum(&'static str),
    Map(&'static Ty, &'static Ty),
}
use Ty::*;

const TS: Ty = Msg("google.protobuf.Timestamp");
const EMPTY: Ty = Msg("google.protobuf.Empty");
const IDENT: Ty = Msg(led!("Identifier"));
const VALUE: Ty = Msg(led!("Value"));
const RECORD: Ty = Msg(led!("Record"));
const TRACE: Ty = Msg(led!("TraceContext"));
const UPDATE_FORMAT: Ty = Msg(led!("UpdateFormat"));
const PERMISSION: Ty = Enum(led!("ParticipantPermission"));

/// How the field is declared.
#[derive(Debug, Clone, Copy)]
enum Card {
    Singular,
    Repeated,
    /// proto3 `optional` (explicit presence, synthetic oneof).
    Optional,
    /// Member of the named real oneof.
    OneOf(&'static str),
}

struct F {
    name: &'static str,
    number: u32,
    ty: Ty,
    card: Card,
}

const fn f(name: &'static str, number: u32, ty: Ty) -> F {
    F {
        name,
        number,
        ty,
        card: Card::Singular,
    }
}
const fn rep(name: &'static str, number: u32, ty: Ty) -> F {
    F {
        name,
        number,
        ty,
        card: Card::Repeated,
    }
}
const fn opt(name: &'static str, number: u32, ty: Ty) -> F {
    F {
        name,
        number,
        ty,
        card: Card::Optional,
    }
}
const fn one(oneof: &'static str, name: &'static str, number: u32, ty: Ty) -> F {
    F {
        name,
        number,
        ty,
        card: Card::OneOf(oneof),
    }
}

struct M {
    name: &'static str,
    fields: &'static [F],
}
const fn m(name: &'static str, fields: &'static [F]) -> M {
    M { name, fields }
}

struct E {
    name: &'static str,
    values: &'static [(&'static str, i32)],
}

struct Rpc {
    name: &'static str,
    input: &'static str,
    output: &'static str,
    server_streaming: bool,
}
const fn unary(name: &'static str, input: &'static str, output: &'static str) -> Rpc {
    Rpc {
        name,
        input,
        output,
        server_streaming: false,
    }
}

struct S {
    name: &'static str,
    rpcs: &'static [Rpc],
}

/// One `.proto` file in Canton's path layout and what it declares.
struct File {
    path: &'static str,
    package: &'static str,
    services: &'static [S],
    messages: &'static [M],
    enums: &'static [E],
}

const FILES: &[File] = &[
    // ---------------------------------------------------------------- google.rpc
    File {
        path: "google/rpc/status.proto",
        package: "google.rpc",
        services: &[],
        messages: &[m(
            "google.rpc.Status",
            &[
                f("code", 1, I32),
                f("message", 2, Str),
                rep("details", 3, Msg("google.protobuf.Any")),
            ],
        )],
        enums: &[],
    },
    File {
        path: "google/rpc/error_details.proto",
        package: "google.rpc",
        services: &[],
        messages: &[
            m(
                "google.rpc.ErrorInfo",
                &[
                    f("reason", 1, Str),
                    f("domain", 2, Str),
                    f("metadata", 3, Map(&Str, &Str)),
                ],
            ),
            m(
                "google.rpc.RetryInfo",
                &[f("retry_delay", 1, Msg("google.protobuf.Duration"))],
            ),
            m(
                "google.rpc.RequestInfo",
                &[f("request_id", 1, Str), f("serving_data", 2, Str)],
            ),
            m(
                "google.rpc.ResourceInfo",
                &[
                    f("resource_type", 1, Str),
                    f("resource_name", 2, Str),
                    f("owner", 3, Str),
                    f("description", 4, Str),
                ],
            ),
        ],
        enums: &[],
    },
    // ---------------------------------------------------------------- connection
    File {
        path: "com/digitalasset/canton/connection/v30/api_info.proto",
        package: "com.digitalasset.canton.connection.v30",
        services: &[S {
            name: "com.digitalasset.canton.connection.v30.ApiInfoService",
            rpcs: &[unary(
                "GetApiInfo",
                "com.digitalasset.canton.connection.v30.GetApiInfoRequest",
                "com.digitalasset.canton.connection.v30.GetApiInfoResponse",
            )],
        }],
        messages: &[
            m(
                "com.digitalasset.canton.connection.v30.GetApiInfoRequest",
                &[],
            ),
            m(
                "com.digitalasset.canton.connection.v30.GetApiInfoResponse",
                &[f("name", 1, Str)],
            ),
        ],
        enums: &[],
    },
    // ---------------------------------------------------------------- admin §1
    File {
        path: "com/digitalasset/canton/admin/participant/v30/party_management_service.proto",
        package: "com.digitalasset.canton.admin.participant.v30",
        services: &[S {
            name: adm!("PartyManagementService"),
            rpcs: &[unary(
                "GetHighestOffsetByTimestamp",
                adm!("GetHighestOffsetByTimestampRequest"),
                adm!("GetHighestOffsetByTimestampResponse"),
            )],
        }],
        messages: &[
            m(
                adm!("GetHighestOffsetByTimestampRequest"),
                &[
                    f("synchronizer_id", 1, Str),
                    f("timestamp", 2, TS),
                    f("force", 3, Bool),
                ],
            ),
            m(
                adm!("GetHighestOffsetByTimestampResponse"),
                &[f("ledger_offset", 1, I64)],
            ),
        ],
        enums: &[],
    },
    // ---------------------------------------------------------------- admin §2
    File {
        path: "com/digitalasset/canton/admin/participant/v30/package_service.proto",
        package: "com.digitalasset.canton.admin.participant.v30",
        services: &[S {
            name: adm!("PackageService"),
            rpcs: &[
                unary(
                    "ListPackages",
                    adm!("ListPackagesRequest"),
                    adm!("ListPackagesResponse"),
                ),
                unary(
                    "GetPackageContents",
                    adm!("GetPackageContentsRequest"),
                    adm!("GetPackageContentsResponse"),
                ),
                unary(
                    "GetPackageReferences",
                    adm!("GetPackageReferencesRequest"),
                    adm!("GetPackageReferencesResponse"),
                ),
                unary(
                    "RemovePackage",
                    adm!("RemovePackageRequest"),
                    adm!("RemovePackageResponse"),
                ),
                unary(
                    "ValidateDar",
                    adm!("ValidateDarRequest"),
                    adm!("ValidateDarResponse"),
                ),
                unary(
                    "UploadDar",
                    adm!("UploadDarRequest"),
                    adm!("UploadDarResponse"),
                ),
                unary(
                    "RemoveDar",
                    adm!("RemoveDarRequest"),
                    adm!("RemoveDarResponse"),
                ),
                unary("GetDar", adm!("GetDarRequest"), adm!("GetDarResponse")),
                unary(
                    "ListDars",
                    adm!("ListDarsRequest"),
                    adm!("ListDarsResponse"),
                ),
                unary(
                    "GetDarContents",
                    adm!("GetDarContentsRequest"),
                    adm!("GetDarContentsResponse"),
                ),
                unary("VetDar", adm!("VetDarRequest"), adm!("VetDarResponse")),
                unary(
                    "UnvetDar",
                    adm!("UnvetDarRequest"),
                    adm!("UnvetDarResponse"),
                ),
            ],
        }],
        messages: &[
            m(
                adm!("ListPackagesRequest"),
                &[f("limit", 1, I32), f("filter_name", 2, Str)],
            ),
            m(
                adm!("ListPackagesResponse"),
                &[rep(
                    "package_descriptions",
                    1,
                    Msg(adm!("PackageDescription")),
                )],
            ),
            m(
                adm!("PackageDescription"),
                &[
                    f("package_id", 1, Str),
                    f("name", 2, Str),
                    f("version", 3, Str),
                    f("uploaded_at", 4, TS),
                    f("size", 5, U32),
                ],
            ),
            m(adm!("ModuleDescription"), &[f("name", 1, Str)]),
            m(
                adm!("GetPackageContentsRequest"),
                &[f("package_id", 1, Str)],
            ),
            m(
                adm!("GetPackageContentsResponse"),
                &[
                    f("description", 1, Msg(adm!("PackageDescription"))),
                    rep("modules", 2, Msg(adm!("ModuleDescription"))),
                    f("is_utility_package", 3, Bool),
                    f("language_version", 4, Str),
                ],
            ),
            m(
                adm!("GetPackageReferencesRequest"),
                &[f("package_id", 1, Str)],
            ),
            m(
                adm!("GetPackageReferencesResponse"),
                &[rep("dars", 1, Msg(adm!("DarDescription")))],
            ),
            m(
                adm!("RemovePackageRequest"),
                &[f("package_id", 1, Str), f("force", 2, Bool)],
            ),
            m(adm!("RemovePackageResponse"), &[f("success", 1, EMPTY)]),
            m(
                adm!("ValidateDarRequest"),
                &[
                    f("data", 1, Bytes),
                    f("filename", 2, Str),
                    opt("synchronizer_id", 3, Str),
                ],
            ),
            m(adm!("ValidateDarResponse"), &[f("main_package_id", 1, Str)]),
            m(
                adm!("UploadDarRequest"),
                &[
                    rep("dars", 1, Msg(adm!("UploadDarRequest.UploadDarData"))),
                    f("vet_all_packages", 2, Bool),
                    f("synchronize_vetting", 3, Bool),
                    opt("synchronizer_id", 4, Str),
                ],
            ),
            m(
                adm!("UploadDarRequest.UploadDarData"),
                &[
                    f("bytes", 1, Bytes),
                    opt("description", 2, Str),
                    opt("expected_main_package_id", 3, Str),
                ],
            ),
            m(adm!("UploadDarResponse"), &[rep("dar_ids", 1, Str)]),
            m(adm!("RemoveDarRequest"), &[f("main_package_id", 1, Str)]),
            m(adm!("RemoveDarResponse"), &[]),
            m(adm!("GetDarRequest"), &[f("main_package_id", 1, Str)]),
            m(
                adm!("GetDarResponse"),
                &[
                    f("payload", 1, Bytes),
                    f("data", 2, Msg(adm!("DarDescription"))),
                ],
            ),
            m(
                adm!("DarDescription"),
                &[
                    f("main", 1, Str),
                    f("name", 2, Str),
                    f("version", 3, Str),
                    f("description", 4, Str),
                ],
            ),
            m(
                adm!("ListDarsRequest"),
                &[f("limit", 1, I32), f("filter_name", 2, Str)],
            ),
            m(
                adm!("ListDarsResponse"),
                &[rep("dars", 1, Msg(adm!("DarDescription")))],
            ),
            m(
                adm!("GetDarContentsRequest"),
                &[f("main_package_id", 1, Str)],
            ),
            m(
                adm!("GetDarContentsResponse"),
                &[
                    f("description", 1, Msg(adm!("DarDescription"))),
                    rep("packages", 2, Msg(adm!("PackageDescription"))),
                ],
            ),
            m(
                adm!("VetDarRequest"),
                &[
                    f("main_package_id", 1, Str),
                    f("synchronize", 2, Bool),
                    opt("synchronizer_id", 3, Str),
                ],
            ),
            m(adm!("VetDarResponse"), &[]),
            m(
                adm!("UnvetDarRequest"),
                &[f("main_package_id", 1, Str), opt("synchronizer_id", 2, Str)],
            ),
            m(adm!("UnvetDarResponse"), &[]),
        ],
        enums: &[],
    },
    // ---------------------------------------------------------------- ledger §4b values
    File {
        path: "com/daml/ledger/api/v2/value.proto",
        package: "com.daml.ledger.api.v2",
        services: &[],
        messages: &[
            m(
                led!("Value"),
                &[
                    one("sum", "unit", 1, EMPTY),
                    one("sum", "bool", 2, Bool),
                    one("sum", "int64", 3, Sint64),
                    one("sum", "date", 4, I32),
                    one("sum", "timestamp", 5, Sfixed64),
                    one("sum", "numeric", 6, Str),
                    one("sum", "party", 7, Str),
                    one("sum", "text", 8, Str),
                    one("sum", "contract_id", 9, Str),
                    one("sum", "optional", 10, Msg(led!("Optional"))),
                    one("sum", "list", 11, Msg(led!("List"))),
                    one("sum", "text_map", 12, Msg(led!("TextMap"))),
                    one("sum", "gen_map", 13, Msg(led!("GenMap"))),
                    one("sum", "record", 14, RECORD),
                    one("sum", "variant", 15, Msg(led!("Variant"))),
                    one("sum", "enum", 16, Msg(led!("Enum"))),
                ],
            ),
            m(
                led!("Record"),
                &[
                    f("record_id", 1, IDENT),
                    rep("fields", 2, Msg(led!("RecordField"))),
                ],
            ),
            m(
                led!("RecordField"),
                &[f("label", 1, Str), f("value", 2, VALUE)],
            ),
            m(
                led!("Identifier"),
                &[
                    f("package_id", 1, Str),
                    f("module_name", 2, Str),
                    f("entity_name", 3, Str),
                ],
            ),
            m(
                led!("Variant"),
                &[
                    f("variant_id", 1, IDENT),
                    f("constructor", 2, Str),
                    f("value", 3, VALUE),
                ],
            ),
            m(
                led!("Enum"),
                &[f("enum_id", 1, IDENT), f("constructor", 2, Str)],
            ),
            m(led!("List"), &[rep("elements", 1, VALUE)]),
            m(led!("Optional"), &[f("value", 1, VALUE)]),
            m(
                led!("TextMap"),
                &[rep("entries", 1, Msg(led!("TextMap.Entry")))],
            ),
            m(
                led!("TextMap.Entry"),
                &[f("key", 1, Str), f("value", 2, VALUE)],
            ),
            m(
                led!("GenMap"),
                &[rep("entries", 1, Msg(led!("GenMap.Entry")))],
            ),
            m(
                led!("GenMap.Entry"),
                &[f("key", 1, VALUE), f("value", 2, VALUE)],
            ),
        ],
        enums: &[],
    },
    // ---------------------------------------------------------------- ledger §4b events
    File {
        path: "com/daml/ledger/api/v2/event.proto",
        package: "com.daml.ledger.api.v2",
        services: &[],
        messages: &[
            m(
                led!("Event"),
                &[
                    one("event", "created", 1, Msg(led!("CreatedEvent"))),
                    one("event", "archived", 2, Msg(led!("ArchivedEvent"))),
                    one("event", "exercised", 3, Msg(led!("ExercisedEvent"))),
                ],
            ),
            m(
                led!("CreatedEvent"),
                &[
                    f("offset", 1, I64),
                    f("node_id", 2, I32),
                    f("contract_id", 3, Str),
                    f("template_id", 4, IDENT),
                    f("contract_key", 5, VALUE),
                    f("create_arguments", 6, RECORD),
                    f("created_event_blob", 7, Bytes),
                    rep("interface_views", 8, Msg(led!("InterfaceView"))),
                    rep("witness_parties", 9, Str),
                    rep("signatories", 10, Str),
                    rep("observers", 11, Str),
                    f("created_at", 12, TS),
                    f("package_name", 13, Str),
                    f("acs_delta", 14, Bool),
                    f("representative_package_id", 15, Str),
                ],
            ),
            m(
                led!("InterfaceView"),
                &[
                    f("interface_id", 1, IDENT),
                    f("view_status", 2, Msg("google.rpc.Status")),
                    f("view_value", 3, RECORD),
                ],
            ),
            m(
                led!("ArchivedEvent"),
                &[
                    f("offset", 1, I64),
                    f("node_id", 2, I32),
                    f("contract_id", 3, Str),
                    f("template_id", 4, IDENT),
                    rep("witness_parties", 5, Str),
                    f("package_name", 6, Str),
                    rep("implemented_interfaces", 7, IDENT),
                ],
            ),
            m(
                led!("ExercisedEvent"),
                &[
                    f("offset", 1, I64),
                    f("node_id", 2, I32),
                    f("contract_id", 3, Str),
                    f("template_id", 4, IDENT),
                    f("interface_id", 5, IDENT),
                    f("choice", 6, Str),
                    f("choice_argument", 7, VALUE),
                    rep("acting_parties", 8, Str),
                    f("consuming", 9, Bool),
                    rep("witness_parties", 10, Str),
                    f("last_descendant_node_id", 11, I32),
                    f("exercise_result", 12, VALUE),
                    f("package_name", 13, Str),
                    rep("implemented_interfaces", 14, IDENT),
                    f("acs_delta", 15, Bool),
                ],
            ),
        ],
        enums: &[],
    },
    // ---------------------------------------------------------------- ledger §4 updates
    File {
        path: "com/daml/ledger/api/v2/trace_context.proto",
        package: "com.daml.ledger.api.v2",
        services: &[],
        messages: &[m(
            led!("TraceContext"),
            &[opt("traceparent", 1, Str), opt("tracestate", 2, Str)],
        )],
        enums: &[],
    },
    File {
        path: "com/daml/ledger/api/v2/transaction.proto",
        package: "com.daml.ledger.api.v2",
        services: &[],
        messages: &[m(
            led!("Transaction"),
            &[
                f("update_id", 1, Str),
                f("command_id", 2, Str),
                f("workflow_id", 3, Str),
                f("effective_at", 4, TS),
                rep("events", 5, Msg(led!("Event"))),
                f("offset", 6, I64),
                f("synchronizer_id", 7, Str),
                f("trace_context", 8, TRACE),
                f("record_time", 9, TS),
                opt("external_transaction_hash", 10, Bytes),
                opt("paid_traffic_cost", 11, I64),
            ],
        )],
        enums: &[],
    },
    File {
        path: "com/daml/ledger/api/v2/offset_checkpoint.proto",
        package: "com.daml.ledger.api.v2",
        services: &[],
        messages: &[
            m(
                led!("OffsetCheckpoint"),
                &[
                    f("offset", 1, I64),
                    rep("synchronizer_times", 2, Msg(led!("SynchronizerTime"))),
                ],
            ),
            m(
                led!("SynchronizerTime"),
                &[f("synchronizer_id", 1, Str), f("record_time", 2, TS)],
            ),
        ],
        enums: &[],
    },
    File {
        path: "com/daml/ledger/api/v2/reassignment.proto",
        package: "com.daml.ledger.api.v2",
        services: &[],
        messages: &[
            m(
                led!("Reassignment"),
                &[
                    f("update_id", 1, Str),
                    f("command_id", 2, Str),
                    f("workflow_id", 3, Str),
                    f("offset", 4, I64),
                    rep("events", 5, Msg(led!("ReassignmentEvent"))),
                    f("trace_context", 6, TRACE),
                    f("record_time", 7, TS),
                    f("synchronizer_id", 8, Str),
                    opt("paid_traffic_cost", 9, I64),
                ],
            ),
            m(
                led!("ReassignmentEvent"),
                &[
                    one("event", "unassigned", 1, Msg(led!("UnassignedEvent"))),
                    one("event", "assigned", 2, Msg(led!("AssignedEvent"))),
                ],
            ),
            m(
                led!("UnassignedEvent"),
                &[
                    f("reassignment_id", 1, Str),
                    f("contract_id", 2, Str),
                    f("template_id", 3, IDENT),
                    f("source", 4, Str),
                    f("target", 5, Str),
                    f("submitter", 6, Str),
                    f("reassignment_counter", 7, U64),
                    f("assignment_exclusivity", 8, TS),
                    rep("witness_parties", 9, Str),
                    f("package_name", 10, Str),
                    f("offset", 11, I64),
                    f("node_id", 12, I32),
                ],
            ),
            m(
                led!("AssignedEvent"),
                &[
                    f("source", 1, Str),
                    f("target", 2, Str),
                    f("reassignment_id", 3, Str),
                    f("submitter", 4, Str),
                    f("reassignment_counter", 5, U64),
                    f("created_event", 6, Msg(led!("CreatedEvent"))),
                ],
            ),
        ],
        enums: &[],
    },
    File {
        path: "com/daml/ledger/api/v2/topology_transaction.proto",
        package: "com.daml.ledger.api.v2",
        services: &[],
        messages: &[
            m(
                led!("TopologyTransaction"),
                &[
                    f("update_id", 1, Str),
                    f("offset", 2, I64),
                    f("synchronizer_id", 3, Str),
                    f("record_time", 4, TS),
                    rep("events", 5, Msg(led!("TopologyEvent"))),
                    f("trace_context", 6, TRACE),
                ],
            ),
            m(
                led!("TopologyEvent"),
                &[
                    one(
                        "event",
                        "participant_authorization_changed",
                        1,
                        Msg(led!("ParticipantAuthorizationChanged")),
                    ),
                    one(
                        "event",
                        "participant_authorization_revoked",
                        2,
                        Msg(led!("ParticipantAuthorizationRevoked")),
                    ),
                    one(
                        "event",
                        "participant_authorization_added",
                        3,
                        Msg(led!("ParticipantAuthorizationAdded")),
                    ),
                ],
            ),
            m(
                led!("ParticipantAuthorizationAdded"),
                &[
                    f("party_id", 1, Str),
                    f("participant_id", 2, Str),
                    f("participant_permission", 3, PERMISSION),
                ],
            ),
            m(
                led!("ParticipantAuthorizationChanged"),
                &[
                    f("party_id", 1, Str),
                    f("participant_id", 2, Str),
                    f("participant_permission", 3, PERMISSION),
                ],
            ),
            m(
                led!("ParticipantAuthorizationRevoked"),
                &[f("party_id", 1, Str), f("participant_id", 2, Str)],
            ),
        ],
        enums: &[],
    },
    File {
        path: "com/daml/ledger/api/v2/transaction_filter.proto",
        package: "com.daml.ledger.api.v2",
        services: &[],
        messages: &[
            m(
                led!("Filters"),
                &[rep("cumulative", 1, Msg(led!("CumulativeFilter")))],
            ),
            m(
                led!("CumulativeFilter"),
                &[
                    one(
                        "identifier_filter",
                        "wildcard_filter",
                        1,
                        Msg(led!("WildcardFilter")),
                    ),
                    one(
                        "identifier_filter",
                        "interface_filter",
                        2,
                        Msg(led!("InterfaceFilter")),
                    ),
                    one(
                        "identifier_filter",
                        "template_filter",
                        3,
                        Msg(led!("TemplateFilter")),
                    ),
                ],
            ),
            m(
                led!("WildcardFilter"),
                &[f("include_created_event_blob", 1, Bool)],
            ),
            m(
                led!("InterfaceFilter"),
                &[
                    f("interface_id", 1, IDENT),
                    f("include_interface_view", 2, Bool),
                    f("include_created_event_blob", 3, Bool),
                ],
            ),
            m(
                led!("TemplateFilter"),
                &[
                    f("template_id", 1, IDENT),
                    f("include_created_event_blob", 2, Bool),
                ],
            ),
            m(
                led!("EventFormat"),
                &[
                    f("filters_by_party", 1, Map(&Str, &Msg(led!("Filters")))),
                    f("filters_for_any_party", 2, Msg(led!("Filters"))),
                    f("verbose", 3, Bool),
                ],
            ),
            m(
                led!("TransactionFormat"),
                &[
                    f("event_format", 1, Msg(led!("EventFormat"))),
                    f("transaction_shape", 2, Enum(led!("TransactionShape"))),
                ],
            ),
            m(
                led!("UpdateFormat"),
                &[
                    f("include_transactions", 1, Msg(led!("TransactionFormat"))),
                    f("include_reassignments", 2, Msg(led!("EventFormat"))),
                    f("include_topology_events", 3, Msg(led!("TopologyFormat"))),
                ],
            ),
            m(
                led!("TopologyFormat"),
                &[f(
                    "include_participant_authorization_events",
                    1,
                    Msg(led!("ParticipantAuthorizationTopologyFormat")),
                )],
            ),
            m(
                led!("ParticipantAuthorizationTopologyFormat"),
                &[rep("parties", 1, Str)],
            ),
        ],
        enums: &[E {
            name: led!("TransactionShape"),
            values: &[
                ("TRANSACTION_SHAPE_UNSPECIFIED", 0),
                ("TRANSACTION_SHAPE_ACS_DELTA", 1),
                ("TRANSACTION_SHAPE_LEDGER_EFFECTS", 2),
            ],
        }],
    },
    File {
        path: "com/daml/ledger/api/v2/state_service.proto",
        package: "com.daml.ledger.api.v2",
        services: &[S {
            name: led!("StateService"),
            rpcs: &[
                unary(
                    "GetConnectedSynchronizers",
                    led!("GetConnectedSynchronizersRequest"),
                    led!("GetConnectedSynchronizersResponse"),
                ),
                unary(
                    "GetLedgerEnd",
                    led!("GetLedgerEndRequest"),
                    led!("GetLedgerEndResponse"),
                ),
                unary(
                    "GetLatestPrunedOffsets",
                    led!("GetLatestPrunedOffsetsRequest"),
                    led!("GetLatestPrunedOffsetsResponse"),
                ),
            ],
        }],
        messages: &[
            m(
                led!("GetConnectedSynchronizersRequest"),
                &[
                    f("party", 1, Str),
                    f("participant_id", 2, Str),
                    f("identity_provider_id", 3, Str),
                ],
            ),
            m(
                led!("GetConnectedSynchronizersResponse"),
                &[rep(
                    "connected_synchronizers",
                    1,
                    Msg(led!(
                        "GetConnectedSynchronizersResponse.ConnectedSynchronizer"
                    )),
                )],
            ),
            m(
                led!("GetConnectedSynchronizersResponse.ConnectedSynchronizer"),
                &[
                    f("synchronizer_alias", 1, Str),
                    f("synchronizer_id", 2, Str),
                    f("permission", 3, PERMISSION),
                ],
            ),
            m(led!("GetLedgerEndRequest"), &[]),
            m(led!("GetLedgerEndResponse"), &[f("offset", 1, I64)]),
            m(led!("GetLatestPrunedOffsetsRequest"), &[]),
            m(
                led!("GetLatestPrunedOffsetsResponse"),
                &[
                    f("participant_pruned_up_to_inclusive", 1, I64),
                    f("all_divulged_contracts_pruned_up_to_inclusive", 2, I64),
                ],
            ),
        ],
        enums: &[E {
            name: led!("ParticipantPermission"),
            values: &[
                ("PARTICIPANT_PERMISSION_UNSPECIFIED", 0),
                ("PARTICIPANT_PERMISSION_SUBMISSION", 1),
                ("PARTICIPANT_PERMISSION_CONFIRMATION", 2),
                ("PARTICIPANT_PERMISSION_OBSERVATION", 3),
            ],
        }],
    },
    File {
        path: "com/daml/ledger/api/v2/update_service.proto",
        package: "com.daml.ledger.api.v2",
        services: &[S {
            name: led!("UpdateService"),
            rpcs: &[
                Rpc {
                    name: "GetUpdates",
                    input: led!("GetUpdatesRequest"),
                    output: led!("GetUpdatesResponse"),
                    server_streaming: true,
                },
                unary(
                    "GetUpdateByOffset",
                    led!("GetUpdateByOffsetRequest"),
                    led!("GetUpdateResponse"),
                ),
                unary(
                    "GetUpdateById",
                    led!("GetUpdateByIdRequest"),
                    led!("GetUpdateResponse"),
                ),
            ],
        }],
        messages: &[
            m(
                led!("GetUpdatesRequest"),
                &[
                    f("begin_exclusive", 1, I64),
                    opt("end_inclusive", 2, I64),
                    f("update_format", 5, UPDATE_FORMAT),
                ],
            ),
            m(
                led!("GetUpdatesResponse"),
                &[
                    one("update", "transaction", 1, Msg(led!("Transaction"))),
                    one("update", "reassignment", 2, Msg(led!("Reassignment"))),
                    one(
                        "update",
                        "offset_checkpoint",
                        3,
                        Msg(led!("OffsetCheckpoint")),
                    ),
                    one(
                        "update",
                        "topology_transaction",
                        4,
                        Msg(led!("TopologyTransaction")),
                    ),
                ],
            ),
            m(
                led!("GetUpdateByOffsetRequest"),
                &[f("offset", 1, I64), f("update_format", 2, UPDATE_FORMAT)],
            ),
            m(
                led!("GetUpdateByIdRequest"),
                &[f("update_id", 1, Str), f("update_format", 2, UPDATE_FORMAT)],
            ),
            m(
                led!("GetUpdateResponse"),
                &[
                    one("update", "transaction", 1, Msg(led!("Transaction"))),
                    one("update", "reassignment", 2, Msg(led!("Reassignment"))),
                    one(
                        "update",
                        "topology_transaction",
                        3,
                        Msg(led!("TopologyTransaction")),
                    ),
                ],
            ),
        ],
        enums: &[],
    },
    // ---------------------------------------------------------------- ledger §3 packages
    File {
        path: "com/daml/ledger/api/v2/package_service.proto",
        package: "com.daml.ledger.api.v2",
        services: &[S {
            name: led!("PackageService"),
            rpcs: &[
                unary(
                    "ListPackages",
                    led!("ListPackagesRequest"),
                    led!("ListPackagesResponse"),
                ),
                unary(
                    "GetPackage",
                    led!("GetPackageRequest"),
                    led!("GetPackageResponse"),
                ),
                unary(
                    "GetPackageStatus",
                    led!("GetPackageStatusRequest"),
                    led!("GetPackageStatusResponse"),
                ),
            ],
        }],
        messages: &[
            m(led!("ListPackagesRequest"), &[]),
            m(led!("ListPackagesResponse"), &[rep("package_ids", 1, Str)]),
            m(led!("GetPackageRequest"), &[f("package_id", 1, Str)]),
            m(
                led!("GetPackageResponse"),
                &[
                    f("hash_function", 1, Enum(led!("HashFunction"))),
                    f("archive_payload", 2, Bytes),
                    f("hash", 3, Str),
                ],
            ),
            m(led!("GetPackageStatusRequest"), &[f("package_id", 1, Str)]),
            m(
                led!("GetPackageStatusResponse"),
                &[f("package_status", 1, Enum(led!("PackageStatus")))],
            ),
        ],
        enums: &[
            E {
                name: led!("HashFunction"),
                values: &[("HASH_FUNCTION_SHA256", 0)],
            },
            E {
                name: led!("PackageStatus"),
                values: &[
                    ("PACKAGE_STATUS_UNSPECIFIED", 0),
                    ("PACKAGE_STATUS_REGISTERED", 1),
                ],
            },
        ],
    },
    File {
        path: "com/daml/ledger/api/v2/admin/package_management_service.proto",
        package: "com.daml.ledger.api.v2.admin",
        services: &[S {
            name: ladm!("PackageManagementService"),
            rpcs: &[
                unary(
                    "ListKnownPackages",
                    ladm!("ListKnownPackagesRequest"),
                    ladm!("ListKnownPackagesResponse"),
                ),
                unary(
                    "UploadDarFile",
                    ladm!("UploadDarFileRequest"),
                    ladm!("UploadDarFileResponse"),
                ),
                unary(
                    "ValidateDarFile",
                    ladm!("ValidateDarFileRequest"),
                    ladm!("ValidateDarFileResponse"),
                ),
            ],
        }],
        messages: &[
            m(ladm!("ListKnownPackagesRequest"), &[]),
            m(
                ladm!("ListKnownPackagesResponse"),
                &[rep("package_details", 1, Msg(ladm!("PackageDetails")))],
            ),
            m(
                ladm!("PackageDetails"),
                &[
                    f("package_id", 1, Str),
                    f("package_size", 2, U64),
                    f("known_since", 3, TS),
                    f("name", 4, Str),
                    f("version", 5, Str),
                ],
            ),
            m(
                ladm!("UploadDarFileRequest"),
                &[
                    f("dar_file", 1, Bytes),
                    f("submission_id", 2, Str),
                    f(
                        "vetting_change",
                        3,
                        Enum(ladm!("UploadDarFileRequest.VettingChange")),
                    ),
                    f("synchronizer_id", 4, Str),
                ],
            ),
            m(ladm!("UploadDarFileResponse"), &[]),
            m(
                ladm!("ValidateDarFileRequest"),
                &[
                    f("dar_file", 1, Bytes),
                    f("submission_id", 2, Str),
                    f("synchronizer_id", 4, Str),
                ],
            ),
            m(ladm!("ValidateDarFileResponse"), &[]),
        ],
        enums: &[E {
            name: ladm!("UploadDarFileRequest.VettingChange"),
            values: &[
                ("VETTING_CHANGE_UNSPECIFIED", 0),
                ("VETTING_CHANGE_VET_ALL_PACKAGES", 1),
                ("VETTING_CHANGE_DONT_VET_ANY_PACKAGES", 2),
            ],
        }],
    },
];

fn pool() -> DescriptorPool {
    DescriptorPool::decode(canton_proto::FILE_DESCRIPTOR_SET)
        .expect("FILE_DESCRIPTOR_SET decodes into a descriptor pool")
}

fn describe_ty(ty: &Ty) -> String {
    match ty {
        Str => "string".into(),
        Bytes => "bytes".into(),
        Bool => "bool".into(),
        I32 => "int32".into(),
        I64 => "int64".into(),
        U32 => "uint32".into(),
        U64 => "uint64".into(),
        Sint64 => "sint64".into(),
        Sfixed64 => "sfixed64".into(),
        Msg(n) => format!("message {n}"),
        Enum(n) => format!("enum {n}"),
        Map(k, v) => format!("map<{}, {}>", describe_ty(k), describe_ty(v)),
    }
}

fn describe_kind(kind: &Kind) -> String {
    match kind {
        Kind::Double => "double".into(),
        Kind::Float => "float".into(),
        Kind::Int32 => "int32".into(),
        Kind::Int64 => "int64".into(),
        Kind::Uint32 => "uint32".into(),
        Kind::Uint64 => "uint64".into(),
        Kind::Sint32 => "sint32".into(),
        Kind::Sint64 => "sint64".into(),
        Kind::Fixed32 => "fixed32".into(),
        Kind::Fixed64 => "fixed64".into(),
        Kind::Sfixed32 => "sfixed32".into(),
        Kind::Sfixed64 => "sfixed64".into(),
        Kind::Bool => "bool".into(),
        Kind::String => "string".into(),
        Kind::Bytes => "bytes".into(),
        Kind::Message(m) => format!("message {}", m.full_name()),
        Kind::Enum(e) => format!("enum {}", e.full_name()),
    }
}

fn describe_field_type(field: &FieldDescriptor) -> String {
    match field.kind() {
        Kind::Message(entry) if field.is_map() => format!(
            "map<{}, {}>",
            describe_kind(&entry.map_entry_key_field().kind()),
            describe_kind(&entry.map_entry_value_field().kind())
        ),
        kind => describe_kind(&kind),
    }
}

fn describe_card(card: &Card, ty: &Ty) -> String {
    match (card, ty) {
        (_, Map(..)) => "map".into(),
        (Card::Singular, _) => "singular".into(),
        (Card::Repeated, _) => "repeated".into(),
        (Card::Optional, _) => "proto3 optional".into(),
        (Card::OneOf(o), _) => format!("in oneof {o}"),
    }
}

fn describe_field_card(field: &FieldDescriptor) -> String {
    if field.is_map() {
        return "map".into();
    }
    if field.is_list() {
        return "repeated".into();
    }
    if field.field_descriptor_proto().proto3_optional() {
        return "proto3 optional".into();
    }
    match field.containing_oneof() {
        Some(o) if !o.is_synthetic() => format!("in oneof {}", o.name()),
        _ => "singular".into(),
    }
}

fn check_message(msg: &MessageDescriptor, spec: &M, errors: &mut Vec<String>) {
    let name = spec.name;
    for want in spec.fields {
        let Some(field) = msg.get_field_by_name(want.name) else {
            errors.push(format!(
                "{name}: field `{}` (number {}) is missing",
                want.name, want.number
            ));
            continue;
        };
        if field.number() != want.number {
            errors.push(format!(
                "{name}.{}: expected field number {}, found {}",
                want.name,
                want.number,
                field.number()
            ));
        }
        let (want_ty, got_ty) = (describe_ty(&want.ty), describe_field_type(&field));
        if want_ty != got_ty {
            errors.push(format!(
                "{name}.{}: expected type {want_ty}, found {got_ty}",
                want.name
            ));
        }
        let (want_card, got_card) = (
            describe_card(&want.card, &want.ty),
            describe_field_card(&field),
        );
        if want_card != got_card {
            errors.push(format!(
                "{name}.{}: expected {want_card}, found {got_card}",
                want.name
            ));
        }
    }
    for field in msg.fields() {
        if !spec.fields.iter().any(|w| w.name == field.name()) {
            errors.push(format!(
                "{name}: unexpected field `{}` = {}",
                field.name(),
                field.number()
            ));
        }
    }
}

/// Top-level names (without package) declared in `file` of one kind, compared
/// against the spec's top-level names.
fn check_top_level(
    what: &str,
    path: &str,
    package: &str,
    found: impl Iterator<Item = String>,
    expected: impl Iterator<Item = &'static str>,
    errors: &mut Vec<String>,
) {
    let found: BTreeSet<String> = found.collect();
    let expected: BTreeSet<String> = expected
        .filter_map(|full| full.strip_prefix(package)?.strip_prefix('.'))
        .filter(|local| !local.contains('.'))
        .map(str::to_owned)
        .collect();
    if found != expected {
        errors.push(format!(
            "{path}: top-level {what} differ: expected {expected:?}, found {found:?}"
        ));
    }
}

fn check_file(pool: &DescriptorPool, spec: &File, errors: &mut Vec<String>) {
    let Some(file) = pool.get_file_by_name(spec.path) else {
        errors.push(format!(
            "file {} is missing from the descriptor set",
            spec.path
        ));
        return;
    };
    if file.package_name() != spec.package {
        errors.push(format!(
            "{}: expected package {}, found {}",
            spec.path,
            spec.package,
            file.package_name()
        ));
    }
    check_top_level(
        "messages",
        spec.path,
        spec.package,
        file.messages().map(|m| m.name().to_owned()),
        spec.messages.iter().map(|m| m.name),
        errors,
    );
    check_top_level(
        "enums",
        spec.path,
        spec.package,
        file.enums().map(|e| e.name().to_owned()),
        spec.enums.iter().map(|e| e.name),
        errors,
    );
    check_top_level(
        "services",
        spec.path,
        spec.package,
        file.services().map(|s| s.name().to_owned()),
        spec.services.iter().map(|s| s.name),
        errors,
    );

    for want in spec.messages {
        match pool.get_message_by_name(want.name) {
            None => errors.push(format!("message {} is missing", want.name)),
            Some(msg) if msg.parent_file().name() != spec.path => errors.push(format!(
                "message {} is declared in {}, expected {}",
                want.name,
                msg.parent_file().name(),
                spec.path
            )),
            Some(msg) => check_message(&msg, want, errors),
        }
    }

    for want in spec.enums {
        let Some(en) = pool.get_enum_by_name(want.name) else {
            errors.push(format!("enum {} is missing", want.name));
            continue;
        };
        if en.parent_file().name() != spec.path {
            errors.push(format!(
                "enum {} is not declared in {}",
                want.name, spec.path
            ));
        }
        let found: Vec<(String, i32)> = en
            .values()
            .map(|v| (v.name().to_owned(), v.number()))
            .collect();
        let expected: Vec<(String, i32)> = want
            .values
            .iter()
            .map(|(n, v)| ((*n).to_owned(), *v))
            .collect();
        if found != expected {
            errors.push(format!(
                "enum {}: expected values {expected:?}, found {found:?}",
                want.name
            ));
        }
    }

    for want in spec.services {
        let Some(svc) = pool.get_service_by_name(want.name) else {
            errors.push(format!("service {} is missing", want.name));
            continue;
        };
        if svc.parent_file().name() != spec.path {
            errors.push(format!(
                "service {} is not declared in {}",
                want.name, spec.path
            ));
        }
        let found: BTreeSet<String> = svc.methods().map(|m| m.name().to_owned()).collect();
        let expected: BTreeSet<String> = want.rpcs.iter().map(|r| r.name.to_owned()).collect();
        if found != expected {
            errors.push(format!(
                "service {}: expected methods {expected:?}, found {found:?}",
                want.name
            ));
        }
        for rpc in want.rpcs {
            let Some(method) = svc.methods().find(|m| m.name() == rpc.name) else {
                continue;
            };
            let path = format!("/{}/{}", want.name, rpc.name);
            if method.input().full_name() != rpc.input {
                errors.push(format!(
                    "{path}: expected input {}, found {}",
                    rpc.input,
                    method.input().full_name()
                ));
            }
            if method.output().full_name() != rpc.output {
                errors.push(format!(
                    "{path}: expected output {}, found {}",
                    rpc.output,
                    method.output().full_name()
                ));
            }
            if method.is_client_streaming() {
                errors.push(format!("{path}: must not be client-streaming"));
            }
            if method.is_server_streaming() != rpc.server_streaming {
                errors.push(format!(
                    "{path}: expected server_streaming = {}, found {}",
                    rpc.server_streaming,
                    method.is_server_streaming()
                ));
            }
        }
    }
}

fn fail_on(errors: Vec<String>) {
    assert!(
        errors.is_empty(),
        "wire contract violated ({} problems):\n  {}",
        errors.len(),
        errors.join("\n  ")
    );
}

#[test]
fn descriptor_set_matches_the_canton_fact_sheet() {
    let pool = pool();
    let mut errors = Vec::new();
    for file in FILES {
        check_file(&pool, file, &mut errors);
    }
    fail_on(errors);
}

#[test]
fn every_proto_file_of_the_crate_is_covered_by_the_contract() {
    let pool = pool();
    let covered: BTreeSet<&str> = FILES.iter().map(|f| f.path).collect();
    let uncovered: Vec<String> = pool
        .files()
        .map(|f| f.name().to_owned())
        .filter(|name| !name.starts_with("google/protobuf/") && !covered.contains(name.as_str()))
        .collect();
    assert!(
        uncovered.is_empty(),
        "files without a contract entry: {uncovered:?}"
    );
}

#[test]
fn get_updates_request_reserves_the_3_3_filter_and_verbose_fields() {
    let msg = pool()
        .get_message_by_name(led!("GetUpdatesRequest"))
        .expect("GetUpdatesRequest exists");
    let proto = msg.descriptor_proto();
    let reserved_numbers: BTreeSet<i32> = proto
        .reserved_range
        .iter()
        .flat_map(|r| r.start()..r.end())
        .collect();
    assert_eq!(reserved_numbers, BTreeSet::from([3, 4]), "reserved numbers");
    let names: BTreeSet<&str> = proto.reserved_name.iter().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from(["filter", "verbose"]),
        "reserved names"
    );
}

#[test]
fn service_name_constants_match_the_contract() {
    let expected: BTreeSet<&str> = FILES
        .iter()
        .flat_map(|f| f.services.iter().map(|s| s.name))
        .collect();
    let exported: BTreeSet<&str> = canton_proto::service_names::ALL.iter().copied().collect();
    assert_eq!(exported, expected);
}

#[test]
fn descriptor_set_is_self_contained_for_reflection() {
    let set = prost_types::FileDescriptorSet::decode(canton_proto::FILE_DESCRIPTOR_SET)
        .expect("FILE_DESCRIPTOR_SET is a FileDescriptorSet");
    let names: BTreeSet<&str> = set.file.iter().map(|f| f.name()).collect();
    for needed in [
        "google/protobuf/timestamp.proto",
        "google/protobuf/empty.proto",
        "google/protobuf/any.proto",
        "google/protobuf/duration.proto",
    ] {
        assert!(
            names.contains(needed),
            "{needed} missing from the descriptor set"
        );
    }
    // Reflection clients resolve imports by file name from the server, so
    // every dependency must be served too.
    for file in &set.file {
        for dep in &file.dependency {
            assert!(
                names.contains(dep.as_str()),
                "{} imports {dep}, which is not in the set",
                file.name()
            );
        }
    }
}
