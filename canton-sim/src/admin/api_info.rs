//! `ApiInfoService.GetApiInfo`: tells a client which API it reached
//! (`admin-api` or `ledger-api`), as the Canton console checks.

use canton_proto::connection::api_info_service_server::ApiInfoService;
use canton_proto::connection::{GetApiInfoRequest, GetApiInfoResponse};
use tonic::{Request, Response, Status};

/// Name the admin API answers.
pub const ADMIN_API: &str = "admin-api";
/// Name the ledger API answers.
pub const LEDGER_API: &str = "ledger-api";

/// The service, answering a fixed name.
#[derive(Debug, Clone)]
pub struct ApiInfo {
    name: &'static str,
}

impl ApiInfo {
    /// Answers `name`.
    pub fn new(name: &'static str) -> Self {
        ApiInfo { name }
    }
}

#[tonic::async_trait]
impl ApiInfoService for ApiInfo {
    async fn get_api_info(
        &self,
        _request: Request<GetApiInfoRequest>,
    ) -> Result<Response<GetApiInfoResponse>, Status> {
        Ok(Response::new(GetApiInfoResponse {
            name: self.name.to_string(),
        }))
    }
}
