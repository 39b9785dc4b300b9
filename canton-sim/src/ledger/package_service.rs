//! Ledger API `PackageService`: ListPackages, GetPackage (the archive payload
//! read back from the stored DAR) and GetPackageStatus.

use crate::errors::not_found;
use crate::sim::Sim;
use canton_proto::ledger::package_service_server::PackageService;
use canton_proto::ledger::*;
use prost::Message;
use std::io::Read;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The ledger `PackageService`.
#[derive(Debug, Clone)]
pub struct LedgerPackages {
    sim: Arc<Sim>,
}

impl LedgerPackages {
    /// Serves `sim`.
    pub fn new(sim: Arc<Sim>) -> Self {
        LedgerPackages { sim }
    }
}

/// Reads the `Archive` of the dalf at `path` inside DAR `bytes`.
fn read_archive(bytes: &[u8], path: &str) -> Option<daml_dar::proto::Archive> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).ok()?;
    let mut entry = zip.by_name(path).ok()?;
    let mut buf = Vec::new();
    entry.read_to_end(&mut buf).ok()?;
    daml_dar::proto::Archive::decode(buf.as_slice()).ok()
}

fn package_not_found(id: &str) -> Status {
    not_found("PACKAGE_NOT_FOUND", format!("Could not find package {id}"))
        .resource("PACKAGE", id)
        .into_status()
}

#[tonic::async_trait]
impl PackageService for LedgerPackages {
    async fn list_packages(
        &self,
        _request: Request<ListPackagesRequest>,
    ) -> Result<Response<ListPackagesResponse>, Status> {
        let package_ids = self
            .sim
            .with_state(|st| st.part.dars.packages().into_keys().collect());
        Ok(Response::new(ListPackagesResponse { package_ids }))
    }

    async fn get_package(
        &self,
        request: Request<GetPackageRequest>,
    ) -> Result<Response<GetPackageResponse>, Status> {
        let id = request.into_inner().package_id;
        let found = self.sim.with_state(|st| {
            let dar = st.part.dars.dars_with_package(&id).into_iter().next()?;
            let path = dar
                .packages
                .iter()
                .find(|p| p.package_id == id)?
                .path
                .clone();
            Some((st.part.dars.bytes(&dar.main_package_id).ok()?, path))
        });
        let (bytes, path) = found.ok_or_else(|| package_not_found(&id))?;
        let archive = tokio::task::spawn_blocking(move || read_archive(&bytes, &path))
            .await
            .ok()
            .flatten()
            .ok_or_else(|| package_not_found(&id))?;
        Ok(Response::new(GetPackageResponse {
            hash_function: HashFunction::Sha256 as i32,
            archive_payload: archive.payload.to_vec(),
            hash: archive.hash,
        }))
    }

    async fn get_package_status(
        &self,
        request: Request<GetPackageStatusRequest>,
    ) -> Result<Response<GetPackageStatusResponse>, Status> {
        let id = request.into_inner().package_id;
        let known = self
            .sim
            .with_state(|st| st.part.dars.packages().contains_key(&id));
        Ok(Response::new(GetPackageStatusResponse {
            package_status: if known {
                PackageStatus::Registered as i32
            } else {
                PackageStatus::Unspecified as i32
            },
        }))
    }
}
