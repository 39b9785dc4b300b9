//! Admin API `PackageService` (v30) over the participant's DAR store:
//! ListDars, UploadDar (vetting flags, expected main package id, idempotent
//! re-upload, Canton's DAR error ids), GetDar, ValidateDar, GetDarContents,
//! RemoveDar, Vet/UnvetDar and the package reads. Also the DAR checks the
//! ledger API's `PackageManagementService` shares, and the built-in DAR.

use crate::errors::{bare, canton, failed_precondition, invalid_argument, not_found};
use crate::sim::{Semantics, Sim};
use crate::state::dars::{DarRecord, DarStore, PackageRecord};
use canton_client::status::category;
use canton_proto::admin::package_service_server::PackageService;
use canton_proto::admin::*;
use std::sync::Arc;
use tonic::{Code, Request, Response, Status};

/// Name of the admin-workflow DAR every participant has from the start.
pub const BUILTIN_PING_DAR: &str = "canton-builtin-admin-workflow-ping";

fn ts(us: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: (us.rem_euclid(1_000_000) * 1000) as i32,
    }
}

/// Parses and checks DAR bytes as Canton does; refusals carry Canton's ids.
pub fn parse_dar(bytes: &[u8]) -> Result<daml_dar::DarInfo, Status> {
    daml_dar::inspect_bytes(bytes).map_err(|e| {
        canton(
            e.canton_error_id(),
            category::INVALID_INDEPENDENT_OF_SYSTEM_STATE,
            e.reason(),
        )
        .metadata("reason", e.reason())
        .into_status()
    })
}

/// The store record for a parsed DAR.
pub fn record_for(
    info: &daml_dar::DarInfo,
    description: Option<String>,
    uploaded_at_us: i64,
    vetted: bool,
) -> DarRecord {
    let dar = &info.dar;
    DarRecord {
        main_package_id: dar.main_package_id.clone(),
        name: dar.name.clone(),
        version: dar.version.clone(),
        description: description.unwrap_or_else(|| format!("DAR_{}", dar.main_package_id)),
        uploaded_at_us,
        size: info.file_size,
        vetted,
        packages: dar
            .dalfs
            .iter()
            .map(|d| PackageRecord {
                path: d.path.clone(),
                package_id: d.package_id.clone(),
                name: d.name.clone().unwrap_or_default(),
                version: d.version.clone().unwrap_or_default(),
                size: d.payload_size,
                language_version: d.language_version.clone(),
            })
            .collect(),
    }
}

/// Stores the built-in admin-workflow DAR (first start of a participant).
pub fn install_builtin_dars(store: &mut DarStore, now_us: i64) -> std::io::Result<()> {
    let built = daml_dar::DarBuilder::new(BUILTIN_PING_DAR, "3.4.0")
        .seed(0x70696e67)
        .build();
    let info = daml_dar::inspect_bytes(&built.bytes).map_err(std::io::Error::other)?;
    let rec = record_for(&info, None, now_us, true);
    store.insert(rec, &built.bytes)?;
    Ok(())
}

/// Checks the synchronizer a vetting request names (3.4 rules).
pub fn check_vetting_target(
    sim: &Sim,
    vet: bool,
    synchronizer_id: Option<&str>,
) -> Result<(), Status> {
    let connected = &sim.info.connected_synchronizers;
    match synchronizer_id.filter(|s| !s.is_empty()) {
        Some(id) => {
            if !connected.iter().any(|c| c == id) {
                return Err(failed_precondition(
                    "PACKAGE_SERVICE_NOT_CONNECTED_TO_SYNCHRONIZER",
                    format!("The participant is not connected to synchronizer {id}"),
                ));
            }
        }
        None => {
            if vet && sim.config.semantics == Semantics::V34 && connected.len() != 1 {
                return Err(canton(
                    "PACKAGE_SERVICE_CANNOT_AUTODETECT_SYNCHRONIZER",
                    category::INVALID_GIVEN_CURRENT_SYSTEM_STATE_OTHER,
                    format!(
                        "Could not autodetect the synchronizer to vet on: the participant is connected to {} synchronizers ({}). Specify the synchronizer id.",
                        connected.len(),
                        connected.join(", ")
                    ),
                )
                .metadata("synchronizers", connected.join(","))
                .into_status());
            }
        }
    }
    Ok(())
}

/// Parses, checks and stores one DAR; returns its main package id. A DAR
/// already known is left as it is (idempotent).
pub async fn upload_one(
    sim: &Arc<Sim>,
    bytes: Vec<u8>,
    description: Option<String>,
    expected_main_package_id: Option<String>,
    vet: bool,
) -> Result<String, Status> {
    if let Some(d) = &description
        && d.chars().count() > 255
    {
        return Err(invalid_argument(
            "INVALID_DAR_FILE_NAME",
            format!(
                "Dar file name is invalid: description is {} characters long, at most 255 are allowed",
                d.chars().count()
            ),
        ));
    }
    let (info, bytes) = tokio::task::spawn_blocking(move || parse_dar(&bytes).map(|i| (i, bytes)))
        .await
        .map_err(|e| bare(Code::Internal, &format!("DAR parser failed: {e}")))??;
    let main = info.dar.main_package_id.clone();
    if let Some(expected) = expected_main_package_id.filter(|e| !e.is_empty())
        && expected != main
    {
        return Err(canton(
            "MAIN_PACKAGE_IN_DAR_DOES_NOT_MATCH_EXPECTED",
            category::INVALID_GIVEN_CURRENT_SYSTEM_STATE_OTHER,
            format!(
                "The main package of the DAR {main} does not match the expected main package {expected}"
            ),
        )
        .metadata("mainPackageId", main)
        .metadata("expectedMainPackageId", expected)
        .into_status());
    }
    let sim2 = sim.clone();
    let stored = tokio::task::spawn_blocking(move || {
        sim2.with_state(|st| {
            let now = st.clock.now_us();
            let rec = record_for(&info, description, now, vet);
            st.part.dars.insert(rec, &bytes)
        })
    })
    .await
    .map_err(|e| bare(Code::Internal, &format!("DAR store failed: {e}")))?;
    stored.map_err(|e| {
        canton(
            "PACKAGE_SERVICE_INTERNAL_ERROR",
            category::SYSTEM_INTERNAL_ASSUMPTION_VIOLATED,
            format!("cannot store the DAR: {e}"),
        )
        .into_status()
    })?;
    Ok(main)
}

fn dar_description(d: &DarRecord) -> DarDescription {
    DarDescription {
        main: d.main_package_id.clone(),
        name: d.name.clone(),
        version: d.version.clone(),
        description: d.description.clone(),
    }
}

fn package_description(p: &PackageRecord, uploaded_at_us: i64) -> PackageDescription {
    PackageDescription {
        package_id: p.package_id.clone(),
        name: p.name.clone(),
        version: p.version.clone(),
        uploaded_at: Some(ts(uploaded_at_us)),
        size: p.size.min(u32::MAX as u64) as u32,
    }
}

fn dar_not_found(id: &str) -> Status {
    not_found("DAR_NOT_FOUND", format!("No such dar: {id}"))
        .resource("DAR_ID", id)
        .into_status()
}

fn limit_of(limit: i32) -> usize {
    if limit <= 0 {
        usize::MAX
    } else {
        limit as usize
    }
}

/// The admin `PackageService`.
#[derive(Debug, Clone)]
pub struct AdminPackages {
    sim: Arc<Sim>,
}

impl AdminPackages {
    /// Serves `sim`.
    pub fn new(sim: Arc<Sim>) -> Self {
        AdminPackages { sim }
    }
}

fn internal(e: std::io::Error) -> Status {
    canton(
        "PACKAGE_SERVICE_INTERNAL_ERROR",
        category::SYSTEM_INTERNAL_ASSUMPTION_VIOLATED,
        e.to_string(),
    )
    .into_status()
}

#[tonic::async_trait]
impl PackageService for AdminPackages {
    async fn list_packages(
        &self,
        request: Request<ListPackagesRequest>,
    ) -> Result<Response<ListPackagesResponse>, Status> {
        let r = request.into_inner();
        let package_descriptions = self.sim.with_state(|st| {
            st.part
                .dars
                .packages()
                .values()
                .filter(|(p, _)| p.name.starts_with(&r.filter_name))
                .take(limit_of(r.limit))
                .map(|(p, t)| package_description(p, *t))
                .collect()
        });
        Ok(Response::new(ListPackagesResponse {
            package_descriptions,
        }))
    }

    async fn get_package_contents(
        &self,
        request: Request<GetPackageContentsRequest>,
    ) -> Result<Response<GetPackageContentsResponse>, Status> {
        let id = request.into_inner().package_id;
        let found = self
            .sim
            .with_state(|st| st.part.dars.packages().get(&id).cloned());
        let Some((p, t)) = found else {
            return Err(not_found(
                "PACKAGE_CONTENT_NOT_FOUND",
                format!("Could not find a package with id {id}"),
            )
            .resource("PACKAGE", &id)
            .into_status());
        };
        Ok(Response::new(GetPackageContentsResponse {
            description: Some(package_description(&p, t)),
            modules: vec![],
            is_utility_package: false,
            language_version: p.language_version.clone(),
        }))
    }

    async fn get_package_references(
        &self,
        request: Request<GetPackageReferencesRequest>,
    ) -> Result<Response<GetPackageReferencesResponse>, Status> {
        let id = request.into_inner().package_id;
        let dars = self.sim.with_state(|st| {
            st.part
                .dars
                .dars_with_package(&id)
                .into_iter()
                .map(dar_description)
                .collect()
        });
        Ok(Response::new(GetPackageReferencesResponse { dars }))
    }

    async fn remove_package(
        &self,
        request: Request<RemovePackageRequest>,
    ) -> Result<Response<RemovePackageResponse>, Status> {
        let id = request.into_inner().package_id;
        if !daml_dar::is_package_id(&id) {
            return Err(bare(Code::InvalidArgument, "Invalid package ID"));
        }
        let refs = self
            .sim
            .with_state(|st| st.part.dars.dars_with_package(&id).len());
        if refs == 0 {
            return Err(
                not_found("PACKAGE_NOT_FOUND", format!("Package {id} is not known"))
                    .resource("PACKAGE", &id)
                    .into_status(),
            );
        }
        Err(failed_precondition(
            "PACKAGE_OR_DAR_REMOVAL_ERROR",
            format!("Package {id} is referenced by {refs} DAR(s); remove the DAR instead"),
        ))
    }

    async fn validate_dar(
        &self,
        request: Request<ValidateDarRequest>,
    ) -> Result<Response<ValidateDarResponse>, Status> {
        let r = request.into_inner();
        check_vetting_target(&self.sim, false, r.synchronizer_id.as_deref())?;
        let info = tokio::task::spawn_blocking(move || parse_dar(&r.data))
            .await
            .map_err(|e| bare(Code::Internal, &e.to_string()))??;
        Ok(Response::new(ValidateDarResponse {
            main_package_id: info.dar.main_package_id,
        }))
    }

    async fn upload_dar(
        &self,
        request: Request<UploadDarRequest>,
    ) -> Result<Response<UploadDarResponse>, Status> {
        let r = request.into_inner();
        check_vetting_target(&self.sim, r.vet_all_packages, r.synchronizer_id.as_deref())?;
        let mut dar_ids = Vec::with_capacity(r.dars.len());
        for d in r.dars {
            let id = upload_one(
                &self.sim,
                d.bytes,
                d.description,
                d.expected_main_package_id,
                r.vet_all_packages,
            )
            .await?;
            dar_ids.push(id);
        }
        Ok(Response::new(UploadDarResponse { dar_ids }))
    }

    async fn remove_dar(
        &self,
        request: Request<RemoveDarRequest>,
    ) -> Result<Response<RemoveDarResponse>, Status> {
        let id = request.into_inner().main_package_id;
        if !daml_dar::is_package_id(&id) {
            return Err(bare(Code::InvalidArgument, "Invalid DAR main package-id"));
        }
        self.sim.with_state(|st| {
            let Some(d) = st.part.dars.get(&id) else {
                return Err(dar_not_found(&id));
            };
            if d.name == BUILTIN_PING_DAR {
                return Err(failed_precondition(
                    "PACKAGE_OR_DAR_REMOVAL_ERROR",
                    format!("DAR {id} is an admin workflow DAR and cannot be removed"),
                ));
            }
            st.part.dars.remove(&id).map_err(internal)?;
            Ok(())
        })?;
        Ok(Response::new(RemoveDarResponse {}))
    }

    async fn get_dar(
        &self,
        request: Request<GetDarRequest>,
    ) -> Result<Response<GetDarResponse>, Status> {
        let id = request.into_inner().main_package_id;
        let (rec, payload) = self.sim.with_state(|st| {
            let rec = st
                .part
                .dars
                .get(&id)
                .cloned()
                .ok_or_else(|| dar_not_found(&id))?;
            let bytes = st.part.dars.bytes(&id).map_err(internal)?;
            Ok::<_, Status>((rec, bytes))
        })?;
        Ok(Response::new(GetDarResponse {
            payload,
            data: Some(dar_description(&rec)),
        }))
    }

    async fn list_dars(
        &self,
        request: Request<ListDarsRequest>,
    ) -> Result<Response<ListDarsResponse>, Status> {
        let r = request.into_inner();
        let dars = self.sim.with_state(|st| {
            let mut all: Vec<&DarRecord> = st
                .part
                .dars
                .all()
                .filter(|d| d.name.starts_with(&r.filter_name))
                .collect();
            all.sort_by(|a, b| {
                (&a.name, &a.version, &a.main_package_id).cmp(&(
                    &b.name,
                    &b.version,
                    &b.main_package_id,
                ))
            });
            all.into_iter()
                .take(limit_of(r.limit))
                .map(dar_description)
                .collect()
        });
        Ok(Response::new(ListDarsResponse { dars }))
    }

    async fn get_dar_contents(
        &self,
        request: Request<GetDarContentsRequest>,
    ) -> Result<Response<GetDarContentsResponse>, Status> {
        let id = request.into_inner().main_package_id;
        let rec = self
            .sim
            .with_state(|st| st.part.dars.get(&id).cloned())
            .ok_or_else(|| dar_not_found(&id))?;
        Ok(Response::new(GetDarContentsResponse {
            description: Some(dar_description(&rec)),
            packages: rec
                .packages
                .iter()
                .map(|p| package_description(p, rec.uploaded_at_us))
                .collect(),
        }))
    }

    async fn vet_dar(
        &self,
        request: Request<VetDarRequest>,
    ) -> Result<Response<VetDarResponse>, Status> {
        let r = request.into_inner();
        if !daml_dar::is_package_id(&r.main_package_id) {
            return Err(bare(Code::InvalidArgument, "Invalid DAR main package-id"));
        }
        check_vetting_target(&self.sim, true, r.synchronizer_id.as_deref())?;
        let known = self
            .sim
            .with_state(|st| st.part.dars.set_vetted(&r.main_package_id, true))
            .map_err(internal)?;
        if !known {
            return Err(dar_not_found(&r.main_package_id));
        }
        Ok(Response::new(VetDarResponse {}))
    }

    async fn unvet_dar(
        &self,
        request: Request<UnvetDarRequest>,
    ) -> Result<Response<UnvetDarResponse>, Status> {
        let r = request.into_inner();
        if !daml_dar::is_package_id(&r.main_package_id) {
            return Err(bare(Code::InvalidArgument, "Invalid DAR main package-id"));
        }
        check_vetting_target(&self.sim, true, r.synchronizer_id.as_deref())?;
        let known = self
            .sim
            .with_state(|st| st.part.dars.set_vetted(&r.main_package_id, false))
            .map_err(internal)?;
        if !known {
            return Err(dar_not_found(&r.main_package_id));
        }
        Ok(Response::new(UnvetDarResponse {}))
    }
}
