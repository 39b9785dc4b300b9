//! The ledger API services (`com.daml.ledger.api.v2` and its `admin` package).

pub mod encoded;
pub mod package_management;
pub mod package_service;
pub mod state_service;
pub mod update_service;
pub mod wire;
