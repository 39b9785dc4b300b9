//! The admin API services (`com.digitalasset.canton.admin.participant.v30`
//! and `com.digitalasset.canton.connection.v30`).

pub mod api_info;
pub mod package_service;
pub mod party_management;
