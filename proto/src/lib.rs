//! Wire-compatible Canton 3.3/3.4 protocol types, clients and servers.
//!
//! Generated at build time from `proto/proto/**.proto` (written from the
//! Canton sources' field numbers, see `reference/canton-wire.md`).
//! [`FILE_DESCRIPTOR_SET`] is the encoded descriptor set for gRPC reflection.
//!
//! The module tree mirrors the protobuf packages (generated code refers to
//! other packages by relative paths); the short aliases below are what
//! callers should use:
//!
//! | alias | protobuf package |
//! |---|---|
//! | [`admin`] | `com.digitalasset.canton.admin.participant.v30` |
//! | [`connection`] | `com.digitalasset.canton.connection.v30` |
//! | [`ledger`] | `com.daml.ledger.api.v2` |
//! | [`ledger_admin`] | `com.daml.ledger.api.v2.admin` |
//! | [`google::rpc`] | `google.rpc` |

/// Encoded `FileDescriptorSet` of every proto in this crate (imports included).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/canton_descriptor.bin"));

#[allow(clippy::all, missing_docs)]
pub mod google {
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}

#[allow(clippy::all, missing_docs)]
pub mod com {
    pub mod digitalasset {
        pub mod canton {
            pub mod connection {
                pub mod v30 {
                    tonic::include_proto!("com.digitalasset.canton.connection.v30");
                }
            }
            pub mod admin {
                pub mod participant {
                    pub mod v30 {
                        tonic::include_proto!("com.digitalasset.canton.admin.participant.v30");
                    }
                }
            }
        }
    }
    pub mod daml {
        pub mod ledger {
            pub mod api {
                pub mod v2 {
                    tonic::include_proto!("com.daml.ledger.api.v2");
                    pub mod admin {
                        tonic::include_proto!("com.daml.ledger.api.v2.admin");
                    }
                }
            }
        }
    }
}

pub use com::daml::ledger::api::v2 as ledger;
pub use com::daml::ledger::api::v2::admin as ledger_admin;
pub use com::digitalasset::canton::admin::participant::v30 as admin;
pub use com::digitalasset::canton::connection::v30 as connection;

/// Fully qualified gRPC service names (as in `/<service>/<method>` paths and
/// in reflection), taken from the generated servers.
pub mod service_names {
    /// Canton admin API party management.
    pub const PARTY_MANAGEMENT: &str = crate::admin::party_management_service_server::SERVICE_NAME;
    /// Canton admin API packages and DARs.
    pub const ADMIN_PACKAGE: &str = crate::admin::package_service_server::SERVICE_NAME;
    /// Served on both APIs; tells which API a client is connected to.
    pub const API_INFO: &str = crate::connection::api_info_service_server::SERVICE_NAME;
    /// Ledger API state (ledger end, pruning, synchronizers).
    pub const STATE: &str = crate::ledger::state_service_server::SERVICE_NAME;
    /// Ledger API update stream and lookups.
    pub const UPDATE: &str = crate::ledger::update_service_server::SERVICE_NAME;
    /// Ledger API package reads.
    pub const LEDGER_PACKAGE: &str = crate::ledger::package_service_server::SERVICE_NAME;
    /// Ledger API admin DAR upload.
    pub const PACKAGE_MANAGEMENT: &str =
        crate::ledger_admin::package_management_service_server::SERVICE_NAME;

    /// Every service this crate defines.
    pub const ALL: &[&str] = &[
        PARTY_MANAGEMENT,
        ADMIN_PACKAGE,
        API_INFO,
        STATE,
        UPDATE,
        LEDGER_PACKAGE,
        PACKAGE_MANAGEMENT,
    ];
}
