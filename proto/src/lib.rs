//! Wire-compatible Canton 3.3/3.4 protocol types, clients and servers.
//!
//! Generated at build time from `proto/proto/**.proto` (written from the
//! Canton sources' field numbers, see `reference/canton-wire.md`).
//! [`FILE_DESCRIPTOR_SET`] is the encoded descriptor set for gRPC reflection.

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
        }
    }
}

pub use com::digitalasset::canton::connection::v30 as connection;
