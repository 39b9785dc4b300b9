//! Ledger API `PackageManagementService` (admin): ListKnownPackages,
//! UploadDarFile and ValidateDarFile, sharing the participant's DAR store
//! with the admin API.

use crate::admin::package_service::{check_vetting_target, parse_dar, upload_one};
use crate::sim::Sim;
use canton_proto::ledger_admin::package_management_service_server::PackageManagementService;
use canton_proto::ledger_admin::upload_dar_file_request::VettingChange;
use canton_proto::ledger_admin::*;
use std::sync::Arc;
use tonic::{Code, Request, Response, Status};

/// Description Canton gives DARs uploaded through the ledger API.
pub const LEDGER_UPLOAD_DESCRIPTION: &str = "uploaded-via-ledger-api";

/// The ledger `PackageManagementService`.
#[derive(Debug, Clone)]
pub struct PackageManagement {
    sim: Arc<Sim>,
}

impl PackageManagement {
    /// Serves `sim`.
    pub fn new(sim: Arc<Sim>) -> Self {
        PackageManagement { sim }
    }
}

fn ts(us: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: (us.rem_euclid(1_000_000) * 1000) as i32,
    }
}

#[tonic::async_trait]
impl PackageManagementService for PackageManagement {
    async fn list_known_packages(
        &self,
        _request: Request<ListKnownPackagesRequest>,
    ) -> Result<Response<ListKnownPackagesResponse>, Status> {
        let package_details = self.sim.with_state(|st| {
            st.part
                .dars
                .packages()
                .values()
                .map(|(p, t)| PackageDetails {
                    package_id: p.package_id.clone(),
                    package_size: p.size,
                    known_since: Some(ts(*t)),
                    name: p.name.clone(),
                    version: p.version.clone(),
                })
                .collect()
        });
        Ok(Response::new(ListKnownPackagesResponse { package_details }))
    }

    async fn upload_dar_file(
        &self,
        request: Request<UploadDarFileRequest>,
    ) -> Result<Response<UploadDarFileResponse>, Status> {
        let r = request.into_inner();
        let vet = !matches!(
            VettingChange::try_from(r.vetting_change),
            Ok(VettingChange::DontVetAnyPackages)
        );
        check_vetting_target(&self.sim, vet, Some(r.synchronizer_id.as_str()))?;
        upload_one(
            &self.sim,
            r.dar_file,
            Some(LEDGER_UPLOAD_DESCRIPTION.to_string()),
            None,
            vet,
        )
        .await?;
        Ok(Response::new(UploadDarFileResponse {}))
    }

    async fn validate_dar_file(
        &self,
        request: Request<ValidateDarFileRequest>,
    ) -> Result<Response<ValidateDarFileResponse>, Status> {
        let r = request.into_inner();
        check_vetting_target(&self.sim, false, Some(r.synchronizer_id.as_str()))?;
        tokio::task::spawn_blocking(move || parse_dar(&r.dar_file))
            .await
            .map_err(|e| Status::new(Code::Internal, e.to_string()))??;
        Ok(Response::new(ValidateDarFileResponse {}))
    }
}
